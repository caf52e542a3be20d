//! `spawn_all` when jobs panic: the caller panics too, with a job's own
//! payload, once every other job's thread has ended, whichever job
//! panicked.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use course::grader::task;
use exercises::ch01_threads::spawn_all;

use super::spawn_all::{AT_THREAD_END, AtThreadEnd};
use super::{count_panics_where, my_tid};

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
    a_panic_still_waits_for_an_earlier_job();
    a_literal_message_is_passed_on_as_it_is();
}

/// A job that panics with a message written out (`panic!("...")`, whose
/// payload is a `&'static str`): `spawn_all` passes that very payload on,
/// still a `&'static str`, not a `String` made of it.
fn a_literal_message_is_passed_on_as_it_is() {
    let jobs: Vec<fn() -> u8> = vec![|| 1, || panic!("the job's own message")];
    let outcome = panic::catch_unwind(|| spawn_all(jobs));
    let payload =
        outcome.expect_err("a job panicked, yet spawn_all returned results");
    assert_eq!(
        payload.downcast_ref::<&'static str>(),
        Some(&"the job's own message"),
        "a job panicked with panic!(\"the job's own message\"), whose \
         payload is a &'static str, and spawn_all panicked with another \
         payload (a String of the same text, say): pass the job's payload \
         on as it is, with panic::resume_unwind, whatever its type; a \
         caller may downcast it to the type the job panicked with"
    );
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

/// The second of two jobs panics at once; the first is still running then,
/// and ends only once the panicking job's thread is gone and the caller
/// sleeps: in `join`, waiting for it. A `spawn_all` that joins from the
/// last job back (`pop`) and passes the panic on as soon as it gets it
/// never waits for the first job, whatever the scheduling: the first
/// trial above, whose panicking job comes first, cannot tell it apart.
fn a_panic_still_waits_for_an_earlier_job() {
    let caller = my_tid();
    let (tell, told) = mpsc::channel();
    let first_job_done = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&first_job_done);
    let caller_is_back = Arc::new(AtomicBool::new(false));
    let back = Arc::clone(&caller_is_back);
    let jobs: Vec<Box<dyn FnOnce() -> u32 + Send>> = vec![
        Box::new(move || {
            let failed = told.recv().expect("the panicking job vanished");
            while task::state(failed).is_some_and(|s| !matches!(s, 'Z' | 'X')) {
                thread::sleep(Duration::from_millis(1));
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
            1
        }),
        Box::new(move || {
            tell.send(my_tid()).expect("the first job vanished");
            panic::panic_any(TheJobsOwnPanic)
        }),
    ];
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| spawn_all(jobs)));
    let first_job_was_done = first_job_done.load(Ordering::SeqCst);
    caller_is_back.store(true, Ordering::SeqCst);
    match outcome {
        Ok(results) => panic!(
            "the second of two jobs panicked, but spawn_all returned \
             {results:?}"
        ),
        Err(payload) => assert!(
            payload.is::<TheJobsOwnPanic>(),
            "the second of two jobs panicked, and spawn_all panicked, but \
             not with the job's own panic"
        ),
    }
    assert!(
        first_job_was_done,
        "the second of two jobs panicked, and spawn_all panicked while the \
         first was still running: a job before the panicking one is waited \
         for too; join every thread (in the order of the jobs, say) before \
         passing the panic on, not only those after it"
    );
}
