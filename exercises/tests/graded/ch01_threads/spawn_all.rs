//! `spawn_all`: the results come back in input order, and every job runs
//! on a thread of its own (its panics are in `spawn_all_panic`).

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread::{self, ThreadId};
use std::time::Duration;

use course::grader::spawn_limit;
use course::grader::task::{self, Tid};
use exercises::ch01_threads::spawn_all;

use super::{
    STACK_SLACK, my_tid, raise_the_default_stack, stack_size_of_this_thread,
};

/// Sends on its channel when dropped: as the thread whose thread-local
/// value it is ends, after its job has returned and handed its result over.
struct TellAtEnd(mpsc::Sender<()>);

impl Drop for TellAtEnd {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

thread_local! {
    static TELL_AT_END: RefCell<Option<TellAtEnd>> =
        const { RefCell::new(None) };
}

/// Job `i` finishes only after job `i + 1`'s thread has ended, so the jobs
/// finish in reverse order, each result handed over before the job before
/// it finishes (whatever the scheduler does); the results must still come
/// back in input order.
pub(super) fn returns_results_in_input_order() {
    const JOBS: usize = 4;
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..JOBS).map(|_| mpsc::channel::<()>()).unzip();
    let mut senders: Vec<Option<mpsc::Sender<()>>> =
        senders.into_iter().map(Some).collect();
    let mut jobs = Vec::new();
    for (index, done_after_me) in receivers.into_iter().enumerate() {
        // Job `index` tells job `index - 1` when it is done.
        let tell_previous =
            index.checked_sub(1).and_then(|p| senders[p].take());
        let wait_for_next = (index + 1 < JOBS).then_some(done_after_me);
        jobs.push(move || {
            if let Some(next) = wait_for_next {
                next.recv().expect("the next job vanished");
            }
            if let Some(previous) = tell_previous {
                TELL_AT_END.with(|slot| {
                    *slot.borrow_mut() = Some(TellAtEnd(previous));
                });
            }
            index * 10
        });
    }
    let results = spawn_all(jobs);
    assert_eq!(
        results,
        vec![0, 10, 20, 30],
        "the jobs finished last-to-first; results must still be in the \
         order of the jobs (join the handles in order)"
    );
}

/// 1100 jobs, more than any machine has cores and more than a "safe" cap
/// of 1024 lets run at once, meet at a barrier of 1100, each reporting the
/// thread it ran on and the size of its stack: a pool of a few workers, or
/// a limit on how many jobs run at a time, never gets them all to the
/// barrier, and a thread with a smaller stack than `thread::spawn` gives is
/// not what a job expects. (Each job does almost nothing, and 1100 stacks
/// of 2.5 MiB fit in the 4 GiB a trial may map.) Then one job alone, and
/// 1100 jobs that end at once.
pub(super) fn runs_every_job_on_its_own_thread() {
    // First thing: no thread has been started yet.
    let default = raise_the_default_stack();
    const JOBS: usize = 1100;
    let barrier = Arc::new(Barrier::new(JOBS));
    let jobs: Vec<_> = (0..JOBS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            move || {
                barrier.wait();
                (thread::current().id(), stack_size_of_this_thread())
            }
        })
        .collect();
    let seen: Vec<(ThreadId, usize)> = spawn_all(jobs);
    let distinct: HashSet<_> = seen.iter().map(|&(id, _)| id).collect();
    assert_eq!(seen.len(), JOBS, "expected one result per job");
    assert_eq!(
        distinct.len(),
        JOBS,
        "expected {JOBS} distinct worker threads, saw {}",
        distinct.len()
    );
    assert!(
        !distinct.contains(&thread::current().id()),
        "a job ran on the calling thread; each job needs a thread of its own"
    );
    let smallest = seen.iter().map(|&(_, size)| size).min().unwrap();
    assert!(
        smallest + STACK_SLACK >= default,
        "a job's thread had a stack of {smallest} bytes, less than the \
         {default} that thread::spawn gives: a job may need all of it, and \
         overflowing a stack aborts the whole process (leave the stack size \
         alone: thread::spawn gives RUST_MIN_STACK bytes when it is set)"
    );
    one_job_gets_a_thread_that_ends_first();
    quick_jobs_get_threads_of_their_own();
    no_job_on_the_caller_when_no_thread_starts();
}

/// While no new thread can start, a job still never runs on the calling
/// thread: `spawn_all` panics, as `thread::spawn` does, rather than run a
/// job itself when its thread is refused.
fn no_job_on_the_caller_when_no_thread_starts() {
    let caller = thread::current().id();
    let ran_on = Arc::new(std::sync::Mutex::new(Vec::new()));
    let jobs: Vec<_> = (0..3)
        .map(|_| {
            let ran_on = Arc::clone(&ran_on);
            move || ran_on.lock().unwrap().push(thread::current().id())
        })
        .collect();
    let outcome = spawn_limit::while_no_thread_can_start(|| spawn_all(jobs));
    let on_caller = ran_on
        .lock()
        .unwrap()
        .iter()
        .filter(|&&id| id == caller)
        .count();
    match outcome {
        None => eprintln!(
            "note: threads still start under RLIMIT_DATA here, so a job \
             whose thread cannot start is not checked"
        ),
        Some(outcome) => {
            assert!(
                on_caller == 0,
                "no new thread could start, and spawn_all {} after running \
                 {on_caller} of its 3 jobs on the thread that called it: \
                 every job runs on a new thread of its own, and when the \
                 operating system refuses one, spawn_all panics (as \
                 thread::spawn does) rather than run the job itself",
                if outcome.is_ok() {
                    "returned"
                } else {
                    "panicked"
                }
            );
            if let Ok(results) = outcome {
                panic!(
                    "no new thread could start, and spawn_all returned {} \
                     results for its 3 jobs: a job whose thread the \
                     operating system refuses is not skipped; spawn_all \
                     panics, as thread::spawn does",
                    results.len()
                );
            }
        }
    }
    started_jobs_run_when_a_later_thread_is_refused();
}

/// While only two new threads can start, `spawn_all` of three jobs starts
/// two and panics at the third, as `thread::spawn` does; the two jobs whose
/// threads started still run to their end, on those threads. A version that
/// holds every job at a start line until all their threads exist leaves
/// the two waiting there forever: the trial then waits for them until its
/// deadline.
fn started_jobs_run_when_a_later_thread_is_refused() {
    let (ran, runs) = mpsc::channel();
    let jobs: Vec<_> = (0..3)
        .map(|index| {
            let ran = ran.clone();
            move || {
                let _ = ran.send(index);
            }
        })
        .collect();
    drop(ran);
    let outcome =
        spawn_limit::while_only_threads_can_start(2, || spawn_all(jobs));
    match outcome {
        None => eprintln!(
            "note: the number of threads that can start cannot be limited \
             here, so a thread refused part-way is not checked"
        ),
        Some(Ok(results)) => panic!(
            "only two new threads could start, and spawn_all of 3 jobs \
             returned {} results: a job whose thread the operating system \
             refuses is not skipped; spawn_all panics, as thread::spawn does",
            results.len()
        ),
        Some(Err(_)) => {
            // No deadline: a job that never runs hangs the trial, which
            // its timeout reports.
            for _ in 0..2 {
                runs.recv().expect(
                    "only two new threads could start, and spawn_all \
                     panicked (as it should) but ran fewer than two of its \
                     jobs",
                );
            }
        }
    }
}

/// What a job's thread-local value sees as the thread ends: the flags it
/// sets, and the thread that called `spawn_all` (or `parallel_sum`, whose
/// trial uses it too).
pub(super) struct AtThreadEnd {
    caller: Tid,
    ended: Arc<AtomicBool>,
    returned: Arc<AtomicBool>,
}

impl AtThreadEnd {
    /// A value for a job's thread, and its two flags: the thread has
    /// ended, and `spawn_all` has returned (which the trial sets).
    pub(super) fn new(caller: Tid) -> (Self, Arc<AtomicBool>, Arc<AtomicBool>) {
        let ended = Arc::new(AtomicBool::new(false));
        let returned = Arc::new(AtomicBool::new(false));
        let value = AtThreadEnd {
            caller,
            ended: Arc::clone(&ended),
            returned: Arc::clone(&returned),
        };
        (value, ended, returned)
    }
}

impl Drop for AtThreadEnd {
    /// Runs as the job's thread ends, after the job has returned: waits
    /// until the caller sleeps (in `join`, waiting for this thread, as it
    /// must), or until `spawn_all` has returned without waiting.
    fn drop(&mut self) {
        while !self.returned.load(Ordering::SeqCst)
            && task::state(self.caller).is_some_and(|state| state != 'S')
        {
            thread::sleep(Duration::from_millis(1));
        }
        self.ended.store(true, Ordering::SeqCst);
    }
}

thread_local! {
    pub(super) static AT_THREAD_END: RefCell<Option<AtThreadEnd>> =
        const { RefCell::new(None) };
}

/// One job alone also gets a thread of its own, and `spawn_all` returns only
/// once that thread has ended: its thread-local values dropped, which the
/// standard library does after the job has returned and its result is
/// ready. A `spawn_all` that takes the results from a channel and never
/// joins returns while the thread is still ending (the value's drop waits
/// until the caller sleeps, which such a caller does not do).
fn one_job_gets_a_thread_that_ends_first() {
    let caller = my_tid();
    let (at_end, ended, returned) = AtThreadEnd::new(caller);
    let job = move || {
        AT_THREAD_END.with(|slot| *slot.borrow_mut() = Some(at_end));
        thread::current().id()
    };
    let ids = spawn_all(vec![job]);
    let ended_first = ended.load(Ordering::SeqCst);
    returned.store(true, Ordering::SeqCst);
    assert_eq!(ids.len(), 1, "one job, one result");
    assert_ne!(
        ids[0],
        thread::current().id(),
        "a single job ran on the calling thread; every job needs a thread \
         of its own, however many there are, one included"
    );
    assert!(
        ended_first,
        "spawn_all returned the only job's result while its thread was \
         still running (its thread-local values not yet dropped): join \
         every thread before returning; a result that arrives on a channel \
         does not mean its thread is done"
    );
}

/// 1100 jobs that return at once, each the thread it ran on: every job gets
/// a new thread, also when its job is so short that a thread could finish
/// it and take another before the next thread has started.
fn quick_jobs_get_threads_of_their_own() {
    const JOBS: usize = 1100;
    let jobs: Vec<fn() -> ThreadId> = vec![|| thread::current().id(); JOBS];
    let ids = spawn_all(jobs);
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        JOBS,
        "{JOBS} jobs that end at once ran on only {} distinct threads: \
         some thread ran several jobs, one after another; each job gets a \
         new thread of its own (no threads that take jobs from a shared \
         queue)",
        distinct.len()
    );
}
