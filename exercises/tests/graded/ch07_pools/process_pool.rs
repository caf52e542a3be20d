//! The process pool: long-lived workers (this crate's `worker` binary in
//! its `pool` mode), answers in job order, every worker busy at once, none
//! left behind, and a worker that died is an error.

use std::collections::HashSet;
use std::fs;
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

/// `new` starts `size` distinct child processes, and every `map` uses
/// those same processes.
pub(super) fn starts_size_long_lived_workers() {
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
