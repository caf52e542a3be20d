//! The process pool: long-lived workers (this crate's `worker` binary in
//! its `pool` mode), answers in job order, every worker busy at once, none
//! left behind, and a worker that died, a job with a newline or a size of
//! zero is an error.

mod failures;
mod finishing;
mod long_job;
mod starting;

use std::cell::Cell;
use std::collections::HashSet;
use std::fs;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use exercises::ch07_pools::ProcessPool;

pub(super) use failures::{
    leaves_no_worker_behind_when_a_spawn_fails, rejects_a_job_with_a_newline,
    rejects_a_size_of_zero, reports_a_worker_that_died,
};
pub(super) use long_job::sends_a_long_job_whole;
pub(super) use starting::starts_size_long_lived_workers;

use finishing::{
    finished, finishing_worker, release_once_waited_for, why_unfinished,
};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

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

/// The first job waits for a file that the third job creates, so it
/// finishes after the jobs behind it; its answer still comes first.
pub(super) fn returns_answers_in_job_order() {
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
    drop(pool);
    answers_as_the_worker_answered();
}

/// A worker that answers each job `[JOB]`, then a carriage return and a
/// newline: each answer keeps its `\r`, and an empty job is sent to it
/// like any other, and answered `[]`.
fn answers_as_the_worker_answered() {
    let bracketing = || {
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(
            r#"while IFS= read -r job; do printf '[%s]\r\n' "$job"; done"#,
        );
        command
    };
    let mut pool =
        ProcessPool::new(bracketing, 2).expect("cannot start the pool");
    // Only `\n` ends a line for the worker: a `\r`, a vertical tab, a form
    // feed or the other separators of Python's `str.splitlines` are
    // characters of a one-line job like any other.
    let jobs = ["a", "", "b c", "", "d\re", "\x0b\x0c\x1c\u{85}\u{2028}"]
        .map(String::from);
    let answers = pool.map(&jobs).expect(
        "map failed on one-line jobs (a job that holds a \\r, a form feed \
         or a U+2028 is still one line: only a \\n ends a line)",
    );
    assert_eq!(
        answers,
        [
            "[a]\r",
            "[]\r",
            "[b c]\r",
            "[]\r",
            "[d\re]\r",
            "[\x0b\x0c\x1c\u{85}\u{2028}]\r",
        ],
        "a worker that answers each job JOB with `[JOB]\\r\\n`: each \
         answer is the line the worker wrote without its newline, and only \
         that (BufRead::lines takes a \\r off too), and an empty job is \
         sent to a worker like any other (answering it yourself makes an \
         answer up)"
    );
    drop(pool);
    empty_answers_are_answers();
    answers_that_are_not_utf8_are_an_error();
}

/// A worker that answers each job with the job itself: an empty job gets an
/// empty line, `\n` alone, which is an answer like any other, the empty
/// string, not a worker that has gone.
fn empty_answers_are_answers() {
    let echoing = || {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(r#"while IFS= read -r job; do printf '%s\n' "$job"; done"#);
        command
    };
    let mut pool = ProcessPool::new(echoing, 2).expect("cannot start the pool");
    let jobs = ["", "a", "", ""].map(String::from);
    let answers = pool.map(&jobs);
    assert!(
        answers.as_ref().is_ok_and(|answers| *answers == jobs),
        "a worker that answers each job with the job itself, an empty job \
         with an empty line (just a newline), gave {answers:?} for the jobs \
         {jobs:?}: an empty line is an answer, the empty string; only the \
         end of the worker's output, or a last part with no newline, means \
         it has gone"
    );
}

/// A worker that answers each job with the byte `0xff`, which is not
/// UTF-8: `map` returns an error, it does not panic.
fn answers_that_are_not_utf8_are_an_error() {
    let garbling = || {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(r#"while IFS= read -r job; do printf '\377\n'; done"#);
        command
    };
    let mut pool =
        ProcessPool::new(garbling, 1).expect("cannot start the pool");
    // Jobs left behind the first, which the pool's one worker, once its
    // answer was found wrong, will not take.
    let jobs = ["a", "b", "c"].map(String::from);
    let answered =
        panic::catch_unwind(AssertUnwindSafe(|| pool.map(&jobs).is_err()));
    assert_eq!(
        answered.ok(),
        Some(true),
        "the one worker of a pool answered its first job of three with a \
         line that is not UTF-8 (the byte 0xff): map must return an \
         io::Error (read_line gives one of kind InvalidData), not panic, \
         nor make an answer up, also when no worker is left to take the \
         other jobs (does map expect that a worker takes every job?)"
    );
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
pub(super) fn keeps_every_worker_busy_at_once() {
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
/// unwaited for: after `map`s that succeeded, and after a `map` that failed
/// because a worker died, whose dead worker is waited for too.
pub(super) fn leaves_no_worker_behind() {
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

    let mut pool =
        ProcessPool::new(pool_worker, 2).expect("cannot start the pool");
    let pids = pool.pids();
    let jobs = ["countdown 1".to_string(), "crash".to_string()];
    let result = pool.map(&jobs);
    assert!(
        result.is_err(),
        "a worker died, yet map returned {result:?}"
    );
    drop(pool);
    let left: Vec<u32> =
        pids.into_iter().filter(|&pid| is_our_child(pid)).collect();
    assert!(
        left.is_empty(),
        "after a map failed because a worker died (on the job `crash`), \
         and the pool was then dropped, its workers {left:?} were still \
         running, or exited but were never waited for (zombies): the pool \
         keeps every worker, a dead one too, until its drop waits for it \
         (dropping a Child does not wait for the process)"
    );
}

/// Dropping the pool lets every worker finish: it closes their stdins and
/// waits, and kills none of them. Each worker is a finishing worker (see
/// [`FINISHING_SCRIPT`]), which is let go only once the pool waits for a
/// child.
pub(super) fn lets_every_worker_finish() {
    const SIZE: usize = 3;
    let scratch = scratch();
    let dir = scratch.path().to_path_buf();
    let pool = ProcessPool::new(|| finishing_worker(&dir), SIZE)
        .expect("cannot start the pool");
    let pids = pool.pids();
    let done = Arc::new(AtomicBool::new(false));
    let releaser = release_once_waited_for(dir.clone(), Arc::clone(&done));
    drop(pool);
    done.store(true, Ordering::SeqCst);
    let released = releaser.join().expect("the releasing thread failed");
    let finished = finished(&dir);
    // Lets any worker left behind end, before the verdict.
    let _ = fs::write(dir.join("go"), "");
    let unfinished: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|pid| !finished.contains(pid))
        .collect();
    assert!(
        unfinished.is_empty(),
        "when dropping the pool returned, its workers {unfinished:?} had not \
         finished what they do at the end of their input: {}",
        why_unfinished(released)
    );
    assert_no_worker_left(pids);
}

/// Dropping the pool ends even a worker that is blocked writing output that
/// nobody will read. Each worker here is the helper in its `lines` mode: it
/// writes `u64::MAX` lines, without end in practice (far more than a pipe
/// holds), without ever reading its stdin, so closing its stdin does not
/// stop it, and it blocks on its full stdout pipe. Reading its output to
/// its end never ends either: only closing the pool's end of the pipe
/// stops it (its next write fails). So too when `new` fails to start a
/// third worker after two such workers: it stops them as the drop does.
pub(super) fn stops_a_worker_blocked_on_a_full_pipe() {
    let chatty = || {
        let mut command = Command::new(WORKER);
        // A worker whose write fails reports it on stderr: keep the
        // grader's output clean.
        command
            .args(["lines", &u64::MAX.to_string()])
            .stderr(Stdio::null());
        command
    };
    let pool = ProcessPool::new(chatty, 2).expect("cannot start the pool");
    let pids = pool.pids();
    drop(pool);
    assert_no_worker_left(pids);
    // The same workers, then a program that does not exist: `new` stops
    // the two it started as the drop does, their stdouts closed too.
    let scratch = scratch();
    let built = Cell::new(0);
    let failing = || {
        built.set(built.get() + 1);
        if built.get() > 2 {
            return Command::new(scratch.path().join("no-such-program"));
        }
        chatty()
    };
    let kind = ProcessPool::new(failing, 3).map(drop).map_err(|e| e.kind());
    assert_eq!(
        kind,
        Err(io::ErrorKind::NotFound),
        "the third worker's program does not exist: new must fail with the \
         error that starting it gave"
    );
}

/// Whether every thread of this process other than the calling one is
/// asleep (waiting for something), none running or ready to run.
fn every_other_thread_asleep() -> bool {
    let me = fs::read_link("/proc/thread-self")
        .expect("cannot read /proc/thread-self");
    let me = me.file_name().expect("a thread id");
    fs::read_dir("/proc/self/task")
        .expect("cannot list this process's threads")
        .filter_map(Result::ok)
        .filter(|task| task.file_name() != me)
        .all(|task| {
            // A thread that has just ended counts as asleep.
            fs::read_to_string(task.path().join("stat")).map_or(true, |stat| {
                let after_name =
                    stat.rsplit_once(')').map_or("", |(_, rest)| rest);
                after_name.split_whitespace().next() != Some("R")
            })
        })
}

/// After the pool was dropped, none of its workers `pids` is still our
/// child: not running, and not a zombie that was never waited for.
fn assert_no_worker_left(pids: Vec<u32>) {
    let left: Vec<u32> =
        pids.into_iter().filter(|&pid| is_our_child(pid)).collect();
    assert!(
        left.is_empty(),
        "after the pool was dropped, its workers {left:?} were still \
         running, or exited but were never waited for (zombies)"
    );
}

/// `map` starts no thread per job, nor two per worker: on a pool of three
/// workers, with 64 jobs the first three of which hold every worker until
/// each has announced its job and every other thread of this process is
/// asleep (by then every worker is busy, the jobs that wait for a worker
/// are waiting, and each thread a `map` starts is there), the `map` never
/// runs more than four threads at once besides the one that called it: one
/// per worker, and one more. Jobs each on a thread of its own would also
/// race each other for the workers, later jobs before earlier ones; a
/// writer and a reader thread for each worker's pipes are six.
pub(super) fn feeds_the_workers_without_a_thread_per_job() {
    const SIZE: usize = 3;
    const JOBS: u64 = 64;
    let most_allowed = SIZE + 1;
    let scratch = scratch();
    let mut pool =
        ProcessPool::new(pool_worker, SIZE).expect("cannot start the pool");
    let mut jobs = vec![format!("meet 0 {}", scratch.path().display()); SIZE];
    jobs.extend(countdown_jobs(SIZE as u64..JOBS));
    let before = super::thread_pool::thread_ids();
    let mapper = thread::spawn(move || {
        let answers = pool.map(&jobs);
        (pool, answers)
    });
    // Besides the one that calls `map`.
    let map_threads = || {
        super::thread_pool::thread_ids()
            .difference(&before)
            .count()
            .saturating_sub(1)
    };
    let mut most = 0;
    loop {
        most = most.max(map_threads());
        let announced = fs::read_dir(scratch.path())
            .expect("cannot list the scratch folder")
            .count()
            >= SIZE;
        if most > most_allowed || (announced && every_other_thread_asleep()) {
            break;
        }
        thread::yield_now();
    }
    fs::write(scratch.path().join("go-0"), "").expect("cannot create go-0");
    while !mapper.is_finished() {
        most = most.max(map_threads());
        thread::yield_now();
    }
    let (pool, answers) = mapper.join().expect("map panicked");
    drop(pool);
    assert!(
        most <= most_allowed,
        "map ran {most} threads at once for a pool of {SIZE} workers and \
         {JOBS} jobs, at most {most_allowed} allowed: feed each worker from \
         one thread of its own, which sends the worker its next job from a \
         queue as soon as it has read its answer, not from a thread per job \
         (which also lets later jobs take a worker before earlier ones), \
         nor from a writer and a reader thread per worker"
    );
    let answers = answers.expect("map failed");
    assert_eq!(answers.len(), JOBS as usize, "one answer per job");
}
