//! Checks of `supervise`'s `returns_a_start_error` beyond a worker that
//! cannot be started: a wait that fails, and a panic in `start`.

use super::*;

/// Waiting for the worker fails when this process ignores SIGCHLD: the
/// kernel then reaps each child itself, and `wait` fails with `ECHILD` once
/// the child has ended. That error is the supervisor's, returned at once,
/// as a start error is: it is no exit of the worker, and no reason to start
/// another.
pub(super) fn a_failed_wait_is_an_error() {
    unsafe extern "C" {
        fn signal(signal: i32, handler: usize) -> usize;
    }
    const SIGCHLD: i32 = 17;
    const SIG_IGN: usize = 1;
    let starts = std::cell::Cell::new(0);
    // SAFETY: `signal` only sets how this process treats SIGCHLD; the
    // trial runs in its own process, and the old action is put back below.
    let old = unsafe { signal(SIGCHLD, SIG_IGN) };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        supervise(
            || {
                starts.set(starts.get() + 1);
                worker(&["exit", "1"])
            },
            3,
        )
    }));
    // SAFETY: as above; `old` is the action `signal` returned.
    unsafe { signal(SIGCHLD, old) };
    let result =
        result.unwrap_or_else(|payload| std::panic::resume_unwind(payload));
    match result {
        Ok(exits) => panic!(
            "waiting for the worker failed (ECHILD: this process ignores \
             SIGCHLD, so nobody can wait for a child), yet supervise returned \
             Ok({exits:?}), with {} run(s): an error from wait is the \
             supervisor's, return it (`?`), as a start error; it is no exit \
             of the worker",
            starts.get()
        ),
        Err(error) => assert_eq!(
            starts.get(),
            1,
            "waiting for the worker failed ({error}), and supervise started \
             it again: return the error at once"
        ),
    }
}

/// A panic in `start` is a bug in the caller's code, not a crash of the
/// worker: it goes on out of `supervise`, as it is, whether it comes on the
/// first run or on a restart.
pub(super) fn a_panic_in_start_goes_on() {
    struct StartPanicked;
    for panics_on in [1, 2] {
        let mut runs = 0;
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                supervise(
                    || {
                        runs += 1;
                        if runs == panics_on {
                            std::panic::panic_any(StartPanicked);
                        }
                        worker(&["abort"])
                    },
                    3,
                )
            }));
        std::panic::set_hook(hook);
        match outcome {
            Err(payload) => assert!(
                payload.is::<StartPanicked>(),
                "start panicked on run {panics_on}, and supervise panicked \
                 with another payload: let start's own panic go on"
            ),
            Ok(result) => panic!(
                "start panicked on run {panics_on}, yet supervise returned \
                 {result:?}: a panic in start is a bug in the caller's code, \
                 not a crash of the worker; do not catch it (catch_unwind), \
                 let it go on"
            ),
        }
    }
}
