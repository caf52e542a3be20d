//! Graded trials of chapter 7, Processes instead of threads.
//!
//! The process pool's workers are this crate's `worker` binary in its `pool`
//! mode (see `course::worker`). The "how" checks: countdown shares, thread
//! pool jobs and mappers wait at a barrier for each other, and the process
//! pool's workers wait, through files, until every worker has announced a
//! job of the same round, so a version that does one piece at a time, or
//! has one worker, times out and is told why.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch07")]

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use course::grader::Trial;
use crossbeam::channel;
use exercises::ch07_pools::{
    ProcessPool, ThreadPool, countdown, countdown_threads, split, word_count,
    words,
};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

/// Deadline for trials whose only way to hang is missing concurrency (or a
/// drop that never returns).
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

/// Steps each thread pool job counts down after it is let go: enough work
/// that the jobs are still running when a `Drop` that does not wait
/// returns.
const JOB_STEPS: u64 = 10_000_000;

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new("ch07::countdown::split_is_balanced", 1, split_is_balanced),
        Trial::new(
            "ch07::countdown::counts_every_share_once",
            1,
            counts_every_share_once,
        ),
        Trial::new(
            "ch07::countdown::counts_the_shares_at_once",
            2,
            counts_the_shares_at_once,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the shares were not counted at the same time: each share's \
             countdown waits at a barrier until every share has started",
        ),
        Trial::new(
            "ch07::process_pool::starts_size_long_lived_workers",
            1,
            starts_size_long_lived_workers,
        )
        .on_timeout(
            "map or dropping the pool never returned (if \
             leaves_no_worker_behind timed out too, it is the drop)",
        ),
        Trial::new(
            "ch07::process_pool::returns_answers_in_job_order",
            1,
            returns_answers_in_job_order,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the first job waits for a file that the third job creates: \
             with two workers, the third job must go to whichever worker \
             is free (a queue the workers take jobs from), not wait behind \
             the first (if leaves_no_worker_behind timed out too, dropping \
             the pool is what hangs)",
        ),
        Trial::new(
            "ch07::process_pool::keeps_every_worker_busy_at_once",
            2,
            keeps_every_worker_busy_at_once,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the workers were not all busy at once: no job of a round can \
             finish until every worker has taken a job of that round, so \
             send every worker a job before waiting for any answer (if \
             leaves_no_worker_behind timed out too, dropping the pool is \
             what hangs)",
        ),
        Trial::new(
            "ch07::process_pool::leaves_no_worker_behind",
            1,
            leaves_no_worker_behind,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "dropping the pool never returned: a worker stops at the end \
             of its input, so close every worker's stdin before waiting \
             for it",
        ),
        Trial::new(
            "ch07::process_pool::reports_a_worker_that_died",
            1,
            reports_a_worker_that_died,
        )
        .on_timeout(
            "map or dropping the pool never returned after a worker died: \
             a worker whose stdout has ended (read_line returns 0) will \
             never answer (if leaves_no_worker_behind timed out too, it is \
             the drop)",
        ),
        Trial::new(
            "ch07::thread_pool::runs_every_job_before_drop_returns",
            1,
            runs_every_job_before_drop_returns,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "dropping the pool never returned: close the job channel \
             (drop its Sender) before joining the workers, or they wait \
             for another job forever",
        ),
        Trial::new(
            "ch07::thread_pool::survives_a_panicking_job",
            1,
            survives_a_panicking_job,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the jobs after a panicking job never ran: a panic in a job \
             must not end its worker thread (run each job under \
             std::panic::catch_unwind; if \
             runs_every_job_before_drop_returns timed out too, dropping \
             the pool is what hangs)",
        ),
        Trial::new(
            "ch07::thread_pool::runs_size_jobs_at_once",
            2,
            runs_size_jobs_at_once,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the pool did not run its 4 jobs at once: each waits at a \
             barrier until all 4 have started (are there 4 worker threads, \
             and does a worker hold a lock while it runs a job? If \
             runs_every_job_before_drop_returns timed out too, dropping \
             the pool is what hangs)",
        ),
        Trial::new(
            "ch07::thread_pool::never_runs_more_than_size_jobs",
            1,
            never_runs_more_than_size_jobs,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "3 jobs of a pool of 3 threads never all started: the pool \
             must run as many jobs at once as it has threads (if \
             runs_every_job_before_drop_returns timed out too, dropping \
             the pool is what hangs)",
        ),
        Trial::new(
            "ch07::word_count::matches_the_sequential_count",
            1,
            matches_the_sequential_count,
        ),
        Trial::new(
            "ch07::word_count::maps_the_texts_at_once",
            2,
            maps_the_texts_at_once,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the mappers did not run at the same time: each calls on_map, \
             which waits at a barrier until every mapper has started",
        ),
        Trial::new(
            "ch07::word_count::handles_more_mappers_than_texts",
            1,
            handles_more_mappers_than_texts,
        ),
    ]
}

/// `split` gives balanced shares, larger first, that add up to the count.
fn split_is_balanced() {
    let cases: [(u64, usize, &[u64]); 5] = [
        (10, 4, &[3, 3, 2, 2]),
        (12, 3, &[4, 4, 4]),
        (5, 1, &[5]),
        (3, 5, &[1, 1, 1, 0, 0]),
        (0, 2, &[0, 0]),
    ];
    for (count, parts, expected) in cases {
        assert_eq!(
            split(count, parts),
            expected,
            "split({count}, {parts}): {parts} shares that differ by at \
             most one and add up to {count}, the larger ones first"
        );
    }
    let shares = split(50_000_000, 7);
    assert_eq!(shares.iter().sum::<u64>(), 50_000_000, "the shares add up");
    assert_eq!(shares[0] - shares[6], 1, "7 shares of 50 million");
}

/// Each share is counted exactly once, on its own call of `countdown`,
/// and the results add up.
fn counts_every_share_once() {
    for (count, threads, expected) in
        [(10, 4, vec![2, 2, 3, 3]), (2, 4, vec![0, 0, 1, 1])]
    {
        let seen = Mutex::new(Vec::new());
        let total = countdown_threads(count, threads, |share| {
            seen.lock().unwrap().push(share);
            countdown(share)
        });
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(
            seen, expected,
            "{count} in {threads} threads: one countdown per share, empty \
             shares included (sorted here)"
        );
        assert_eq!(total, count, "the countdowns' results add up to {count}");
    }
    assert_eq!(countdown_threads(1_000_003, 3, countdown), 1_000_003);
}

/// The shares' countdowns wait at a barrier for each other.
fn counts_the_shares_at_once() {
    const THREADS: usize = 4;
    let barrier = Barrier::new(THREADS);
    let total = countdown_threads(1_000, THREADS, |share| {
        barrier.wait(); // Every share has started.
        countdown(share)
    });
    assert_eq!(total, 1_000);
}

/// A `worker pool` command: the pool worker of `course::worker`.
fn pool_worker() -> Command {
    let mut command = Command::new(WORKER);
    command.arg("pool");
    command
}

/// A fresh, empty folder, removed when the value is dropped.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("cannot create a temporary folder")
}

/// Splits a worker's reply `PID ANSWER`.
fn parse(reply: &str) -> (u32, &str) {
    reply
        .split_once(' ')
        .and_then(|(pid, answer)| Some((pid.parse().ok()?, answer)))
        .unwrap_or_else(|| {
            panic!("a worker's reply is `PID ANSWER`, got {reply:?}")
        })
}

/// Whether `pid` is a child process of this one that nobody has waited
/// for yet: still running, or a zombie.
fn is_our_child(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // After the parenthesised command name: state, then the parent's pid.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name.split_whitespace().nth(1)
        == Some(&std::process::id().to_string())
}

/// One `countdown N` job per count.
fn countdown_jobs(counts: impl IntoIterator<Item = u64>) -> Vec<String> {
    counts
        .into_iter()
        .map(|n| format!("countdown {n}"))
        .collect()
}

/// `new` starts `size` distinct child processes, and every `map` uses
/// those same processes.
fn starts_size_long_lived_workers() {
    const SIZE: usize = 3;
    let mut pool =
        ProcessPool::new(pool_worker, SIZE).expect("cannot start the pool");
    let pids = pool.pids();
    let distinct: HashSet<u32> = pids.iter().copied().collect();
    assert_eq!(
        (pids.len(), distinct.len()),
        (SIZE, SIZE),
        "a pool of {SIZE} should have {SIZE} distinct workers, got pids \
         {pids:?}"
    );
    assert!(
        pids.iter().all(|&pid| is_our_child(pid)),
        "every pid should be a child process of this one: {pids:?}"
    );
    let jobs = countdown_jobs(1..=12);
    for batch in 1..=2 {
        let answers = pool.map(&jobs).expect("map failed");
        assert_eq!(answers.len(), jobs.len(), "one answer per job");
        for answer in &answers {
            let (pid, _) = parse(answer);
            assert!(
                distinct.contains(&pid),
                "map {batch}: an answer came from process {pid}, which is \
                 not one of the pool's workers {pids:?}: start the workers \
                 once, in new, and send them every job"
            );
        }
    }
    assert_eq!(pool.pids(), pids, "the workers changed between maps");
}

/// The first job waits for a file that the third job creates, so it
/// finishes after the jobs behind it; its answer still comes first.
fn returns_answers_in_job_order() {
    let scratch = scratch();
    let flag = scratch.path().join("flag");
    let flag = flag.display();
    let mut pool =
        ProcessPool::new(pool_worker, 2).expect("cannot start the pool");
    let jobs = [
        format!("wait {flag}"),
        "countdown 3".to_string(),
        format!("touch {flag}"),
        "countdown 1".to_string(),
        "countdown 2".to_string(),
    ];
    let answers = pool.map(&jobs).expect("map failed");
    let answers: Vec<&str> = answers.iter().map(|a| parse(a).1).collect();
    assert_eq!(
        answers,
        ["waited", "counted 3", "touched", "counted 1", "counted 2"],
        "answers must come in the order of the jobs, not in the order the \
         jobs finish (the first job finishes after the third)"
    );
    let answers = pool.map(&countdown_jobs(0..40)).expect("map failed");
    let expected: Vec<String> =
        (0..40).map(|n| format!("counted {n}")).collect();
    let answers: Vec<&str> = answers.iter().map(|a| parse(a).1).collect();
    assert_eq!(answers, expected, "40 jobs, answers in job order");
    assert!(pool.map(&[]).expect("map failed").is_empty(), "no jobs");
}

/// Creates `DIR/go-ROUND` for each round in turn, once `size` distinct
/// workers have announced that round (by creating `DIR/ROUND-PID`).
fn release_rounds(dir: &Path, size: usize, rounds: usize) {
    for round in 0..rounds {
        let prefix = format!("{round}-");
        loop {
            let announced = fs::read_dir(dir)
                .expect("cannot list the meeting folder")
                .filter_map(Result::ok)
                .filter(|entry| {
                    entry.file_name().to_string_lossy().starts_with(&prefix)
                })
                .count();
            if announced >= size {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        fs::write(dir.join(format!("go-{round}")), "")
            .expect("cannot release the round");
    }
}

/// Jobs come in rounds of `SIZE`; no job of a round finishes until `SIZE`
/// distinct workers hold a job of that round.
fn keeps_every_worker_busy_at_once() {
    const SIZE: usize = 3;
    const ROUNDS: usize = 3;
    let scratch = scratch();
    let dir = scratch.path().to_path_buf();
    let mut pool =
        ProcessPool::new(pool_worker, SIZE).expect("cannot start the pool");
    let jobs: Vec<String> = (0..ROUNDS * SIZE)
        .map(|job| format!("meet {} {}", job / SIZE, dir.display()))
        .collect();
    let releaser = thread::spawn(move || release_rounds(&dir, SIZE, ROUNDS));
    let answers = pool.map(&jobs).expect("map failed");
    releaser.join().expect("the releasing thread failed");
    for (round, answers) in answers.chunks(SIZE).enumerate() {
        let pids: HashSet<u32> = answers.iter().map(|a| parse(a).0).collect();
        assert!(
            answers.iter().all(|a| parse(a).1 == format!("met {round}")),
            "round {round}: answers in job order, got {answers:?}"
        );
        assert_eq!(
            pids.len(),
            SIZE,
            "round {round}: the {SIZE} jobs should be answered by {SIZE} \
             different workers, got {answers:?}"
        );
    }
}

/// After the pool is dropped, none of its workers is left running or
/// unwaited for.
fn leaves_no_worker_behind() {
    let mut pool =
        ProcessPool::new(pool_worker, 3).expect("cannot start the pool");
    let pids = pool.pids();
    pool.map(&countdown_jobs(1..=6)).expect("map failed");
    drop(pool);
    let left: Vec<u32> =
        pids.into_iter().filter(|&pid| is_our_child(pid)).collect();
    assert!(
        left.is_empty(),
        "after the pool was dropped, its workers {left:?} were still \
         running, or exited but were never waited for (zombies): close \
         every worker's stdin, then wait for it"
    );
}

/// A worker that dies without answering (the pool worker exits on a job
/// it does not know) makes `map` fail rather than make an answer up.
fn reports_a_worker_that_died() {
    let mut pool =
        ProcessPool::new(pool_worker, 2).expect("cannot start the pool");
    let jobs = ["countdown 1".to_string(), "crash".to_string()];
    let result = pool.map(&jobs);
    assert!(
        result.is_err(),
        "the worker that got the job `crash` exited without answering, yet \
         map returned {result:?}: reading 0 bytes means the worker is gone \
         and its job has no answer (return an error)"
    );
}

/// Every queued job has finished by the time dropping the pool returns.
fn runs_every_job_before_drop_returns() {
    const JOBS: usize = 12;
    let pool = ThreadPool::new(3);
    let finished = Arc::new(AtomicUsize::new(0));
    let (open, gate) = channel::bounded::<()>(0);
    for _ in 0..JOBS {
        let (finished, gate) = (Arc::clone(&finished), gate.clone());
        pool.execute(move || {
            let _ = gate.recv(); // Until the gate opens, just before drop.
            countdown(JOB_STEPS);
            finished.fetch_add(1, Ordering::SeqCst);
        });
    }
    drop(open);
    drop(pool);
    let finished = finished.load(Ordering::SeqCst);
    assert_eq!(
        finished, JOBS,
        "only {finished} of {JOBS} jobs had finished when dropping the pool \
         returned: Drop must close the job channel, then join every worker \
         (which finishes the queued jobs first)"
    );
}

/// A pool of one thread runs the jobs queued after a job that panicked.
fn survives_a_panicking_job() {
    let pool = ThreadPool::new(1);
    let (report, ran) = channel::unbounded();
    for job in 0..3 {
        pool.execute(|| panic!("a job panics on purpose (expected)"));
        let report = report.clone();
        pool.execute(move || report.send(job).unwrap());
    }
    drop(report);
    let ran: Vec<i32> = ran.iter().take(3).collect();
    assert_eq!(
        ran,
        [0, 1, 2],
        "the jobs queued after a panicking job were dropped without \
         running: a panic in a job must not end its worker thread"
    );
    drop(pool);
}

/// `size` jobs wait at a barrier for each other.
fn runs_size_jobs_at_once() {
    const SIZE: usize = 4;
    let pool = ThreadPool::new(SIZE);
    let barrier = Arc::new(Barrier::new(SIZE));
    let (report, met) = channel::unbounded();
    for job in 0..SIZE {
        let (barrier, report) = (Arc::clone(&barrier), report.clone());
        pool.execute(move || {
            barrier.wait(); // Every job is running.
            report.send(job).unwrap();
        });
    }
    drop(report);
    let mut met: Vec<usize> = met.iter().collect();
    met.sort();
    assert_eq!(met, [0, 1, 2, 3], "every job ran once");
    drop(pool);
}

/// The threads of this process, from Linux's `/proc`.
fn threads_of_this_process() -> usize {
    fs::read_dir("/proc/self/task")
        .expect("cannot list this process's threads")
        .count()
}

/// What the jobs of [`never_runs_more_than_size_jobs`] saw.
#[derive(Default)]
struct Seen {
    running: usize,
    most_at_once: usize,
    threads: HashSet<thread::ThreadId>,
}

/// While `SIZE` jobs are held at a gate, the pool has at most `SIZE`
/// threads; over all jobs, at most `SIZE` ran at once, on at most `SIZE`
/// threads.
fn never_runs_more_than_size_jobs() {
    const SIZE: usize = 3;
    const JOBS: usize = 4 * SIZE;
    let before = threads_of_this_process();
    let pool = ThreadPool::new(SIZE);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (open, gate) = channel::bounded::<()>(0);
    let (started, starts) = channel::unbounded();
    for _ in 0..JOBS {
        let (seen, gate, started) =
            (Arc::clone(&seen), gate.clone(), started.clone());
        pool.execute(move || {
            {
                let mut seen = seen.lock().unwrap();
                seen.running += 1;
                seen.most_at_once = seen.most_at_once.max(seen.running);
                seen.threads.insert(thread::current().id());
            }
            let _ = started.send(());
            let _ = gate.recv(); // Held until the gate opens.
            seen.lock().unwrap().running -= 1;
        });
    }
    for _ in 0..SIZE {
        starts.recv().expect("the jobs ended without starting");
    }
    let started_threads = threads_of_this_process() - before;
    drop(open);
    drop(pool);
    assert!(
        started_threads <= SIZE,
        "a pool of {SIZE} threads had started {started_threads} threads: \
         start the workers once, in new, and send them the jobs"
    );
    let seen = seen.lock().unwrap();
    assert!(
        seen.most_at_once <= SIZE,
        "{} jobs ran at once in a pool of {SIZE} threads",
        seen.most_at_once
    );
    assert!(
        seen.threads.len() <= SIZE,
        "the jobs ran on {} different threads in a pool of {SIZE}",
        seen.threads.len()
    );
}

/// Some real-looking text, in paragraphs.
const TEXTS: [&str; 7] = [
    "The GIL lets one thread run Python bytecode at a time. Threads still \
     help when they wait: for the disk, for the network, for a child.",
    "A process has an interpreter of its own, and so a GIL of its own. \
     That is why multiprocessing can use every core, at the price of \
     pickling every argument and every result.",
    "multiprocessing.Pool starts its workers once and keeps them: starting \
     a process costs far more than sending it a job.",
    "Pool.map hands the jobs out to the workers and gives the results back \
     in the order of the jobs, whatever order they finish in.",
    "In Rust, threads run at once without a GIL; a pool of threads saves \
     only the cost of starting them, and bounds how many run at once.",
    "The countdown, once more: while n > 0, n -= 1. Split it in two, \
     count each half in a process of its own, and it takes half the time.",
    "Don't share what you can send; don't send what you can share. \
     Channels carry the jobs in, and the results out.",
];

fn sequential_count(texts: &[&str]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in texts.iter().flat_map(|text| words(text)) {
        *counts.entry(word).or_insert(0) += 1;
    }
    counts
}

/// For several numbers of mappers, most of which share the texts out
/// unevenly, the counts equal the sequential count.
fn matches_the_sequential_count() {
    let expected = sequential_count(&TEXTS);
    for mappers in [1, 2, 3, 4, 7] {
        assert_eq!(
            word_count(&TEXTS, mappers, |_| {}),
            expected,
            "{} texts, {mappers} mappers: the counts should equal those of \
             one thread counting every text (every text counted once, and \
             the mappers' counts added, not overwritten)",
            TEXTS.len()
        );
    }
}

/// Every mapper waits at a barrier in `on_map` until all have started.
fn maps_the_texts_at_once() {
    const MAPPERS: usize = 5;
    let barrier = Barrier::new(MAPPERS);
    let counts = word_count(&TEXTS, MAPPERS, |_| {
        barrier.wait(); // Every mapper has started.
    });
    assert_eq!(counts, sequential_count(&TEXTS));
}

/// With more mappers than texts, every mapper still runs (some count
/// nothing), and no texts at all count no words.
fn handles_more_mappers_than_texts() {
    for (texts, mappers) in [(&TEXTS[..2], 5), (&TEXTS[..0], 3)] {
        let called = Mutex::new(Vec::new());
        let counts = word_count(texts, mappers, |mapper| {
            called.lock().unwrap().push(mapper);
        });
        assert_eq!(
            counts,
            sequential_count(texts),
            "{} texts, {mappers} mappers",
            texts.len()
        );
        let mut called = called.into_inner().unwrap();
        called.sort();
        assert_eq!(
            called,
            (0..mappers).collect::<Vec<_>>(),
            "{} texts, {mappers} mappers: on_map should be called once by \
             each mapper, 0 to {}, even by those with no text",
            texts.len(),
            mappers - 1
        );
    }
}
