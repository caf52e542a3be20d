//! The process pool's failures: a worker that dies without answering, a
//! size of zero, a job with a newline, and a worker that cannot start
//! after others did.

use std::cell::Cell;
use std::fs;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use exercises::ch07_pools::ProcessPool;

use super::finishing::{
    finished, finishing_worker, release_once_waited_for, why_unfinished,
};
use super::{
    countdown_jobs, every_other_thread_asleep, is_our_child, parse,
    pool_worker, scratch,
};

/// What a dying worker runs (`sh -c SCRIPT sh DIR`): it reads one job,
/// writes its pid to `DIR/taken` (whole, by a rename), and exits without
/// an answer.
const DYING_SCRIPT: &str = "read -r _; echo $$ > \"$1/pid\"; \
    mv \"$1/pid\" \"$1/taken\"; exit 70";

/// Whether process `pid` has exited: a zombie, or already waited for.
fn has_exited(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        after_name.split_whitespace().next() == Some("Z")
    })
}

/// Starts a thread that creates `DIR/go` once the dying worker (see
/// [`DYING_SCRIPT`]) has taken a job and exited, and then every other
/// thread of this process is asleep: by then the pool has seen the worker's
/// stdout end and done all it does about it (a pool that gives the job to
/// another worker has queued it again), since a thread that reads the end
/// of a pipe is woken, not left asleep, when its writer exits. The thread
/// gives up once `done` is set.
fn release_once_the_pool_saw_a_death(
    dir: PathBuf,
    done: Arc<AtomicBool>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let taken = dir.join("taken");
        let pid = loop {
            if let Ok(pid) = fs::read_to_string(&taken) {
                break pid.trim().parse().expect("the dying worker's pid");
            }
            if done.load(Ordering::SeqCst) {
                return;
            }
            thread::sleep(Duration::from_millis(1));
        };
        while !has_exited(pid) || !every_other_thread_asleep() {
            if done.load(Ordering::SeqCst) {
                return;
            }
            thread::sleep(Duration::from_millis(1));
        }
        fs::write(dir.join("go"), "").expect("cannot create the go file");
    })
}

/// A worker that dies without answering (the pool worker exits on a job
/// it does not know) makes `map` fail rather than make an answer up. It
/// does so too when only one worker of two dies, on whatever job it takes
/// first, and the other could do every job: `map` fails rather than give
/// the dead worker's job to the other. Every job waits until the pool has
/// seen the death, so the other worker is still busy with its first job
/// then, and the dying worker always gets a job.
pub(crate) fn reports_a_worker_that_died() {
    let mut pool =
        ProcessPool::new(pool_worker, 2).expect("cannot start the pool");
    let pids = pool.pids();
    let jobs = ["countdown 1".to_string(), "crash".to_string()];
    let result = pool.map(&jobs);
    assert!(
        result.is_err(),
        "the worker that got the job `crash` exited without answering, yet \
         map returned {result:?}: reading 0 bytes means the worker is gone \
         and its job has no answer (return an error)"
    );
    let after = pool.pids();
    assert_eq!(
        after, pids,
        "after a map that failed because a worker died, pids() gave {after:?} \
         rather than {pids:?}, the workers that new started: pids() gives \
         the same ids before and after any map, a failed one too (a worker \
         that died stays in the pool, to be waited for when the pool is \
         dropped)"
    );
    drop(pool);
    the_only_worker_dies_with_jobs_left();
    a_part_of_a_line_is_no_answer();

    let scratch = scratch();
    let first = Cell::new(true);
    let one_dies = || {
        if first.replace(false) {
            let mut command = Command::new("/bin/sh");
            command
                .arg("-c")
                .arg(DYING_SCRIPT)
                .arg("sh")
                .arg(scratch.path());
            command
        } else {
            pool_worker()
        }
    };
    let mut pool =
        ProcessPool::new(one_dies, 2).expect("cannot start the pool");
    let done = Arc::new(AtomicBool::new(false));
    let release = release_once_the_pool_saw_a_death(
        scratch.path().into(),
        Arc::clone(&done),
    );
    let go = format!("wait {}", scratch.path().join("go").display());
    let jobs = [go.clone(), go.clone(), go];
    let result = pool.map(&jobs);
    done.store(true, Ordering::SeqCst);
    release.join().expect("the releasing thread panicked");
    assert!(
        result.is_err(),
        "one of the two workers exited without answering the first job it \
         took, yet map returned {result:?}: a job whose worker died has no \
         answer, and map fails rather than hand that job to another worker \
         (which may run it twice, or die of it too)"
    );
}

/// The one worker of a pool dies on the first of three jobs: `map` returns
/// an error, and does not panic, though no worker is left to take the other
/// two.
fn the_only_worker_dies_with_jobs_left() {
    let mut pool =
        ProcessPool::new(pool_worker, 1).expect("cannot start the pool");
    let jobs = ["crash", "countdown 1", "countdown 2"].map(String::from);
    let failed =
        panic::catch_unwind(AssertUnwindSafe(|| pool.map(&jobs).is_err()));
    assert_eq!(
        failed.ok(),
        Some(true),
        "the one worker of a pool exited without answering the first of \
         three jobs: map must return an error, and not panic, also when no \
         worker is left to take the other two (does map expect that a \
         worker takes every job?)"
    );
}

/// A worker that writes part of a line, with no newline after it, and then
/// exits has not answered: `map` fails rather than take that part for the
/// answer.
fn a_part_of_a_line_is_no_answer() {
    let halting = || {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg("read -r _; printf 'half an answer'; exit 0");
        command
    };
    let mut pool = ProcessPool::new(halting, 1).expect("cannot start the pool");
    let result = pool.map(&["a job".to_string()]);
    assert!(
        result.is_err(),
        "the worker wrote `half an answer`, with no newline after it, and \
         exited, yet map returned {result:?}: only a newline ends an answer, \
         so a line the worker never ended is no answer (read_line gives what \
         it read up to the end of the pipe: check that it ends with \\n)"
    );
}

/// A pool of no workers could answer no job: `new` panics when `size` is 0.
pub(crate) fn rejects_a_size_of_zero() {
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
/// it is among the jobs, rather than send the worker two jobs for one. It
/// checks every job before it sends any: the jobs in front of the bad one
/// create files, and none may exist after the failed `map`; the workers are
/// then still in step, and the next `map` gets the right answers.
pub(crate) fn rejects_a_job_with_a_newline() {
    let scratch = scratch();
    let mut pool =
        ProcessPool::new(pool_worker, 2).expect("cannot start the pool");
    let touched: Vec<_> = (1..=3)
        .map(|n| scratch.path().join(format!("job-{n}")))
        .collect();
    let batches = [
        vec!["countdown 1\ncountdown 2".to_string()],
        touched
            .iter()
            .map(|file| format!("touch {}", file.display()))
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
        let sent: Vec<_> =
            touched.iter().filter(|file| file.exists()).collect();
        assert!(
            sent.is_empty(),
            "map({jobs:?}) failed, but only after it had sent the jobs in \
             front of the one with a newline ({sent:?} were created): check \
             every job before sending any"
        );
    }
    let answers = pool.map(&countdown_jobs(1..=4)).expect("map failed");
    let answers: Vec<&str> = answers.iter().map(|a| parse(a).1).collect();
    assert_eq!(
        answers,
        ["counted 1", "counted 2", "counted 3", "counted 4"],
        "after maps that failed on a newline without sending anything, the \
         workers should still be in step"
    );
}

/// Workers that start before another fails to spawn are let finish and
/// waited for: `command` builds three finishing workers (see
/// [`FINISHING_SCRIPT`], let go only once a child is waited for), then a
/// command for a program that does not exist, so `new` fails after starting
/// three workers, with the error that starting the fourth gave (of kind
/// `NotFound`), not a new one. By the time it returns, each of the three has finished
/// (none was killed, or left waiting for a `wait` that never came), and none
/// is left running or a zombie.
pub(crate) fn leaves_no_worker_behind_when_a_spawn_fails() {
    const STARTED: usize = 3;
    let scratch = scratch();
    let dir = scratch.path().join("meet");
    fs::create_dir(&dir).expect("cannot create the meeting folder");
    let built = Cell::new(0);
    let command = || {
        built.set(built.get() + 1);
        if built.get() > STARTED {
            return Command::new(scratch.path().join("no-such-program"));
        }
        finishing_worker(&dir)
    };
    let done = Arc::new(AtomicBool::new(false));
    let releaser = release_once_waited_for(dir.clone(), Arc::clone(&done));
    let result = ProcessPool::new(command, 2 * STARTED);
    done.store(true, Ordering::SeqCst);
    let released = releaser.join().expect("the releasing thread failed");
    let finished = finished(&dir);
    // Lets any worker left behind end, before the verdict.
    let _ = fs::write(dir.join("go"), "");
    let error = match &result {
        Ok(pool) => panic!(
            "the fourth worker's program does not exist, yet new returned \
             {pool:?}"
        ),
        Err(error) => error,
    };
    let kind = error.kind();
    assert_eq!(
        kind,
        io::ErrorKind::NotFound,
        "the fourth worker's program does not exist, and new returned an \
         error of kind {kind:?}: return the error that starting the worker \
         gave (of kind NotFound), itself, not a new error that only quotes \
         it: the caller decides what to do by its kind"
    );
    // What starting that program gives, here and now.
    let expected = Command::new(scratch.path().join("no-such-program"))
        .spawn()
        .expect_err("a program that does not exist started");
    assert!(
        error.raw_os_error() == expected.raw_os_error()
            && error.to_string() == expected.to_string(),
        "the fourth worker's program does not exist, and new returned the \
         error `{error}` ({:?}), not the one that starting it gave, `{expected}` \
         ({:?}): return that error itself, with `?`, not a new error of the \
         same kind that adds words of its own (which loses the OS error \
         code that raw_os_error gives)",
        error.raw_os_error(),
        expected.raw_os_error()
    );
    assert_eq!(
        finished.len(),
        STARTED,
        "new failed to start the fourth worker and returned the error, but \
         only {} of the {STARTED} workers it had started had finished what \
         they do at the end of their input: {}",
        finished.len(),
        why_unfinished(released)
    );
    let left: Vec<u32> = finished
        .into_iter()
        .filter(|&pid| is_our_child(pid))
        .collect();
    assert!(
        left.is_empty(),
        "new failed to start the fourth worker and returned the error, but \
         the workers it had started, {left:?}, were still running or never \
         waited for (zombies): before returning the error, close their \
         stdins and wait for every one of them"
    );
}
