//! `spawn_all`: the results come back in input order, every job runs on
//! a thread of its own, and a job's panic reaches the caller once every
//! thread has ended.

use std::cell::RefCell;
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread::{self, ThreadId};
use std::time::Duration;

use course::grader::spawn_limit;
use course::grader::task::{self, Tid};
use exercises::ch01_threads::spawn_all;

use super::{
    STACK_SLACK, count_panics_where, my_tid, raise_the_default_stack,
    stack_size_of_this_thread,
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

/// The payload of the panicking job: a type of the trial's own, so that a
/// panic `spawn_all` raises itself cannot pass for the job's.
#[derive(Debug)]
struct TheJobsOwnPanic;

/// A job that panics must not disappear silently, nor leave the other
/// jobs running behind the caller's back. The first job panics at once;
/// the second is still running then, and ends only once the first job's
/// thread is gone and the caller sleeps: in `join`, waiting for it. A
/// `spawn_all` that raises the panic as soon as it has joined the first
/// job never sleeps before it does, so the second job is still running
/// when the panic reaches the trial, whatever the scheduling. The second
/// job's thread, once the job has returned, ends only when the caller
/// sleeps again: a `spawn_all` that lets a scope wait for the second job
/// (which wakes it as soon as the job has returned, before the thread's
/// thread-local values are dropped) panics while that thread still runs.
pub(super) fn a_panicking_job_panics_the_caller() {
    let calm: Vec<fn() -> u32> = vec![|| 1, || 3];
    assert_eq!(spawn_all(calm), vec![1, 3], "two jobs that return 1 and 3");
    let caller = my_tid();
    let slow_job_done = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&slow_job_done);
    let (tell, told) = mpsc::channel();
    // The second job's thread-local value: its drop, as the thread ends,
    // waits until the caller sleeps (in `join`, as it must).
    let (at_end, ended, returned) = AtThreadEnd::new(caller);
    let jobs: Vec<Box<dyn FnOnce() -> u32 + Send>> = vec![
        Box::new(move || {
            tell.send(my_tid()).expect("the second job vanished");
            panic::panic_any(TheJobsOwnPanic)
        }),
        Box::new(move || {
            AT_THREAD_END.with(|slot| *slot.borrow_mut() = Some(at_end));
            let failed = told.recv().expect("the first job never started");
            // Until the failed job's thread is gone: from then on, joining
            // it gives its panic at once, without sleeping.
            while task::state(failed).is_some_and(|s| !matches!(s, 'Z' | 'X')) {
                thread::sleep(Duration::from_millis(1));
            }
            // Until the caller sleeps (or is gone, having failed the
            // trial): a caller that waits for this job, as it must.
            while task::state(caller).is_some_and(|state| state != 'S') {
                thread::sleep(Duration::from_millis(1));
            }
            done.store(true, Ordering::SeqCst);
            2
        }),
    ];
    let (outcome, hooked) = count_panics_where(
        |info| info.payload().is::<TheJobsOwnPanic>(),
        || panic::catch_unwind(AssertUnwindSafe(|| spawn_all(jobs))),
    );
    // Read before anything that could let the second job go on.
    let slow_job_was_done = slow_job_done.load(Ordering::SeqCst);
    let slow_job_ended = ended.load(Ordering::SeqCst);
    returned.store(true, Ordering::SeqCst);
    let payload = match outcome {
        Ok(results) => panic!(
            "one job panicked, but spawn_all returned {results:?}; a lost \
             panic hides a failed job (see JoinHandle::join and \
             panic::resume_unwind)"
        ),
        Err(payload) => payload,
    };
    assert!(
        slow_job_was_done,
        "spawn_all panicked while another job was still running; join every \
         thread first, then re-raise the panic (panic::resume_unwind)"
    );
    assert!(
        slow_job_ended,
        "spawn_all panicked once the other job had returned, but while its \
         thread was still ending (its thread-local values not yet dropped): \
         join every thread before passing the panic on; a scope that joins \
         the rest implicitly waits only for the jobs to return, not for \
         their threads to end"
    );
    assert!(
        payload.is::<TheJobsOwnPanic>(),
        "spawn_all panicked, but not with the job's own panic: it raised \
         one of its own (an unwrap or a panic! with a new message) instead \
         of passing the job's payload on with panic::resume_unwind"
    );
    assert_eq!(
        hooked, 1,
        "the job panicked once, and the panic hook that was set saw that \
         panic {hooked} times: the panic is reported as usual (the hook is \
         the program's, not spawn_all's to replace or silence)"
    );
    two_panicking_jobs_panic_the_caller_once();
    a_second_panic_still_waits_for_the_rest();
}

/// A panic payload that counts how many times one was dropped: `spawn_all`
/// passes one payload on and drops the other, and the trial drops the one
/// it gets.
#[derive(Debug)]
struct CountedPanic;

/// How many `CountedPanic`s were dropped so far.
static COUNTED_PANICS_DROPPED: AtomicUsize = AtomicUsize::new(0);

impl Drop for CountedPanic {
    fn drop(&mut self) {
        COUNTED_PANICS_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

/// The result of the job that succeeds, counting its drops like
/// `CountedPanic`: `spawn_all` owns it once the job is joined, and drops it
/// as its panic unwinds.
#[derive(Debug)]
struct CountedResult;

/// How many `CountedResult`s were dropped so far.
static COUNTED_RESULTS_DROPPED: AtomicUsize = AtomicUsize::new(0);

impl Drop for CountedResult {
    fn drop(&mut self) {
        COUNTED_RESULTS_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

/// Jobs 1 and 3 of three panic: `spawn_all` panics once, with one of their
/// payloads, and drops the other one (a payload forgotten with
/// `mem::forget` is never freed, nor what it owns: a leak), and the result
/// of job 2, which succeeded, too. A panic raised
/// while another unwinds aborts the process (a guard that joins the other
/// jobs with `expect` as the first panic leaves `spawn_all`), and then this
/// trial dies without a verdict: that fails.
fn two_panicking_jobs_panic_the_caller_once() {
    let jobs: Vec<fn() -> CountedResult> =
        vec![|| panic::panic_any(CountedPanic), || CountedResult, || {
            panic::panic_any(CountedPanic)
        }];
    let before = COUNTED_PANICS_DROPPED.load(Ordering::SeqCst);
    let results_before = COUNTED_RESULTS_DROPPED.load(Ordering::SeqCst);
    let outcome = panic::catch_unwind(|| spawn_all(jobs));
    match outcome {
        Ok(results) => panic!(
            "two of three jobs panicked, but spawn_all returned {results:?}"
        ),
        Err(payload) => {
            assert!(
                payload.is::<CountedPanic>(),
                "two of three jobs panicked, and spawn_all panicked, but not \
                 with a job's own panic: pass one of their payloads on with \
                 panic::resume_unwind, once every job has been joined"
            );
            drop(payload);
        }
    }
    let dropped = COUNTED_PANICS_DROPPED.load(Ordering::SeqCst) - before;
    assert_eq!(
        dropped, 2,
        "two jobs panicked, spawn_all passed one payload on, and the trial \
         dropped it; of the two payloads, {dropped} were dropped: the one \
         spawn_all does not pass on is dropped, never kept or forgotten \
         (mem::forget leaks it and all it owns; dropping a payload is safe)"
    );
    let results_dropped =
        COUNTED_RESULTS_DROPPED.load(Ordering::SeqCst) - results_before;
    assert_eq!(
        results_dropped, 1,
        "two of three jobs panicked and the other returned a value, which \
         spawn_all owned once it joined that job; as spawn_all panicked, \
         that value was dropped {results_dropped} times instead of once: \
         the results of the jobs that succeeded are dropped as the panic \
         unwinds, never forgotten (mem::forget leaks them and all they own)"
    );
}

/// Jobs 1 and 2 of three panic at once; job 3 is still running, and ends
/// only once both panicked threads are gone and the caller sleeps: in
/// `join`, waiting for it. A `spawn_all` that stops joining at the second
/// panic (one payload is all it can pass on) panics while job 3 still
/// runs, whatever the scheduling: it never sleeps once both are gone.
fn a_second_panic_still_waits_for_the_rest() {
    let caller = my_tid();
    let (tell, told) = mpsc::channel();
    let tell_too = tell.clone();
    let last_job_done = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&last_job_done);
    let caller_is_back = Arc::new(AtomicBool::new(false));
    let back = Arc::clone(&caller_is_back);
    let jobs: Vec<Box<dyn FnOnce() -> u32 + Send>> = vec![
        Box::new(move || {
            tell.send(my_tid()).expect("the third job vanished");
            panic::panic_any(TheJobsOwnPanic)
        }),
        Box::new(move || {
            tell_too.send(my_tid()).expect("the third job vanished");
            panic::panic_any(TheJobsOwnPanic)
        }),
        Box::new(move || {
            for _ in 0..2 {
                let failed = told.recv().expect("a panicking job vanished");
                while task::state(failed)
                    .is_some_and(|s| !matches!(s, 'Z' | 'X'))
                {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            // Until the caller sleeps, or is back in the trial (having
            // failed it: this thread must still end).
            while !back.load(Ordering::SeqCst) {
                if task::state(caller) == Some('S') {
                    done.store(true, Ordering::SeqCst);
                    break;
                }
                thread::sleep(Duration::from_millis(1));
            }
            3
        }),
    ];
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| spawn_all(jobs)));
    let last_job_was_done = last_job_done.load(Ordering::SeqCst);
    caller_is_back.store(true, Ordering::SeqCst);
    assert!(
        outcome.is_err(),
        "two of three jobs panicked, but spawn_all returned"
    );
    assert!(
        last_job_was_done,
        "two of three jobs panicked, and spawn_all panicked while the third \
         was still running: after a second panic too, join every other \
         thread before passing one payload on (drop the other; do not stop \
         joining)"
    );
}
