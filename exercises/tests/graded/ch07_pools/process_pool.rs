//! The process pool: long-lived workers (this crate's `worker` binary in
//! its `pool` mode), answers in job order, every worker busy at once, none
//! left behind, and a worker that died, a job with a newline or a size of
//! zero is an error.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use exercises::ch07_pools::ProcessPool;

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

/// The device and inode of the file that `/proc/{process}/fd/2` opens:
/// equal for two processes whose stderr is the same open file.
fn stderr_of(process: &str) -> (u64, u64) {
    let path = format!("/proc/{process}/fd/2");
    let meta = fs::metadata(&path)
        .unwrap_or_else(|error| panic!("cannot look at {path}: {error}"));
    (meta.dev(), meta.ino())
}

/// `new` starts `size` distinct child processes, each from its own call of
/// `command` and with this process's stderr, and every `map` uses those
/// same processes.
pub(super) fn starts_size_long_lived_workers() {
    const SIZE: usize = 3;
    let built = Cell::new(0);
    let command = || {
        built.set(built.get() + 1);
        pool_worker()
    };
    let mut pool =
        ProcessPool::new(command, SIZE).expect("cannot start the pool");
    assert_eq!(
        built.get(),
        SIZE,
        "a pool of {SIZE} called `command` {} times: call it once for \
         each worker (a `Command` built once and spawned {SIZE} times loses \
         whatever the closure does for each worker)",
        built.get()
    );
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
    let ours = stderr_of("self");
    for &pid in &pids {
        assert_eq!(
            stderr_of(&pid.to_string()),
            ours,
            "worker {pid}'s stderr is not this process's: leave stderr \
             inherited (a piped stderr that nobody reads hides the \
             workers' messages, and blocks a worker that writes more than \
             a pipe holds)"
        );
    }
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
/// unwaited for.
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
}

/// Dropping the pool ends even a worker that is blocked writing output that
/// nobody will read. Each worker here is the helper in its `lines` mode: it
/// writes 100,000 lines (over 1 MB, far more than a pipe holds) without
/// ever reading its stdin, so closing its stdin does not stop it, and it
/// blocks on its full stdout pipe.
pub(super) fn stops_a_worker_blocked_on_a_full_pipe() {
    let chatty = || {
        let mut command = Command::new(WORKER);
        // A worker whose write fails reports it on stderr: keep the
        // grader's output clean.
        command.args(["lines", "100000"]).stderr(Stdio::null());
        command
    };
    let pool = ProcessPool::new(chatty, 2).expect("cannot start the pool");
    let pids = pool.pids();
    drop(pool);
    let left: Vec<u32> =
        pids.into_iter().filter(|&pid| is_our_child(pid)).collect();
    assert!(
        left.is_empty(),
        "after the pool was dropped, its workers {left:?} were still \
         running, or exited but were never waited for (zombies)"
    );
}

/// A worker that dies without answering (the pool worker exits on a job
/// it does not know) makes `map` fail rather than make an answer up.
pub(super) fn reports_a_worker_that_died() {
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

/// A pool of no workers could answer no job: `new` panics when `size` is 0.
pub(super) fn rejects_a_size_of_zero() {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        ProcessPool::new(pool_worker, 0)
    }));
    assert!(
        outcome.is_err(),
        "ProcessPool::new(command, 0) returned {outcome:?}: it must panic, \
         as the doc says (a pool of no workers fails every job it gets)"
    );
}

/// A job is one line: `map` fails on a job that holds a newline, wherever
/// it is among the jobs, rather than send the worker two jobs for one.
pub(super) fn rejects_a_job_with_a_newline() {
    let mut pool =
        ProcessPool::new(pool_worker, 2).expect("cannot start the pool");
    let batches = [
        vec!["countdown 1\ncountdown 2".to_string()],
        countdown_jobs(1..=3)
            .into_iter()
            .chain(["countdown 4\ncountdown 5".to_string()])
            .collect(),
        vec!["countdown 6\n".to_string()],
    ];
    for jobs in batches {
        let result = pool.map(&jobs);
        assert!(
            result.is_err(),
            "map({jobs:?}) returned {result:?}: a job that holds a newline \
             must make map fail (a worker would take it for two jobs and \
             send two answers, the second one read as the answer to a later \
             job)"
        );
    }
}

/// Workers that start before another fails to spawn are waited for:
/// `command` builds three workers (each the helper in its `rendezvous`
/// mode, which creates `DIR/PID` and exits), then a command for a program
/// that does not exist, so `new` fails after starting three workers.
pub(super) fn leaves_no_worker_behind_when_a_spawn_fails() {
    const STARTED: usize = 3;
    let scratch = scratch();
    let dir = scratch.path().join("pids");
    fs::create_dir(&dir).expect("cannot create the pid folder");
    let built = Cell::new(0);
    let command = || {
        built.set(built.get() + 1);
        if built.get() > STARTED {
            return Command::new(scratch.path().join("no-such-program"));
        }
        let mut command = Command::new(WORKER);
        // Its stdout may be closed by the time it prints its pid: keep its
        // complaint about that out of the grader's output.
        command
            .arg("rendezvous")
            .arg(&dir)
            .arg("1")
            .stderr(Stdio::null());
        command
    };
    let result = ProcessPool::new(command, 2 * STARTED);
    assert!(
        result.is_err(),
        "the fourth worker's program does not exist, yet new returned \
         {result:?}"
    );
    // Each worker that started creates its file, even if nobody waited for
    // it; the trial's deadline ends a wait for workers that never started.
    let pids: Vec<u32> = loop {
        let pids: Vec<u32> = fs::read_dir(&dir)
            .expect("cannot list the pid folder")
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        if pids.len() >= STARTED {
            break pids;
        }
        thread::sleep(Duration::from_millis(1));
    };
    let left: Vec<u32> =
        pids.into_iter().filter(|&pid| is_our_child(pid)).collect();
    assert!(
        left.is_empty(),
        "new failed to start the fourth worker and returned the error, but \
         the {STARTED} workers it had started, {left:?}, were still running \
         or never waited for (zombies): before returning the error, close \
         their stdins and wait for them (dropping a `Child` does neither)"
    );
}
