//! Checks of `supervise`'s `returns_a_start_error` beyond a worker whose
//! program does not exist: one that is not executable, a start that fails
//! for a moment (`EAGAIN`, `EINTR`), a wait that fails, and a panic in
//! `start`.

use super::*;

/// A program that exists but is not executable cannot be started either
/// (`EACCES`, `ErrorKind::PermissionDenied`): that error is returned at
/// once, as it is, on the first run and on a restart after a crash. It is
/// no exit of the worker (a shell's `126`).
pub(super) fn an_unrunnable_program_is_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = scratch();
    let program = scratch.path().join("not-executable");
    fs::write(&program, "#!/bin/sh\nexit 0\n").expect("cannot write a file");
    fs::set_permissions(&program, fs::Permissions::from_mode(0o644))
        .expect("cannot set a file's mode");
    for crashes_first in [false, true] {
        let mut starts = 0;
        let result = supervise(
            || {
                starts += 1;
                if crashes_first && starts == 1 {
                    worker(&["abort"])
                } else {
                    Command::new(&program)
                }
            },
            3,
        );
        let run = if crashes_first {
            "a restart"
        } else {
            "the first run"
        };
        match result {
            Ok(exits) => panic!(
                "the worker's program is not executable (PermissionDenied), \
                 so {run} could not be started, yet supervise returned \
                 Ok({exits:?}): any error of a start is returned, not only \
                 NotFound; a process that never started has no exit"
            ),
            Err(error) => assert_eq!(
                error.kind(),
                std::io::ErrorKind::PermissionDenied,
                "the worker's program is not executable, and supervise \
                 returned another error than the start's own: {error}"
            ),
        }
        assert_eq!(
            starts,
            1 + usize::from(crashes_first),
            "{run} could not be started, and supervise tried again: \
             return the error at once"
        );
    }
}

/// A start that fails for a moment, as `fork` does with `EAGAIN` on a
/// machine out of processes, is returned at once too, and so is one that
/// fails with `EINTR`, `ETXTBSY` (its program is still open for writing,
/// "Text file busy") or `ENOMEM`: it is not tried again. The worker's start fails
/// once, the first time only (a hook that runs in the new process before
/// its program, `CommandExt::pre_exec`, makes a file and fails), so a
/// supervisor that tries again starts the worker, and it succeeds.
pub(super) fn a_failed_fork_is_not_tried_again() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    unsafe extern "C" {
        fn open(path: *const std::ffi::c_char, flags: i32, ...) -> i32;
        fn close(fd: i32) -> i32;
    }
    const O_WRONLY: i32 = 0o1;
    const O_CREAT: i32 = 0o100;
    const O_EXCL: i32 = 0o200;
    let scratch = scratch();
    for (errno, name, kind) in [
        (11, "EAGAIN", std::io::ErrorKind::WouldBlock),
        (4, "EINTR", std::io::ErrorKind::Interrupted),
        (26, "ETXTBSY", std::io::ErrorKind::ExecutableFileBusy),
        (12, "ENOMEM", std::io::ErrorKind::OutOfMemory),
    ] {
        let failed = scratch.path().join(format!("failed-{name}"));
        let failed = std::ffi::CString::new(failed.as_os_str().as_bytes())
            .expect("a path has no NUL");
        let mut starts = 0;
        let result = supervise(
            || {
                starts += 1;
                let mut command = worker(&["exit", "0"]);
                let failed = failed.clone();
                // SAFETY: the hook runs in the new process between fork and
                // exec, and only calls `open` and `close`, which are
                // async-signal-safe, on a path made before the fork.
                unsafe {
                    command.pre_exec(move || {
                        let fd = open(
                            failed.as_ptr(),
                            O_WRONLY | O_CREAT | O_EXCL,
                            0o644,
                        );
                        if fd < 0 {
                            return Ok(());
                        }
                        close(fd);
                        Err(std::io::Error::from_raw_os_error(errno))
                    });
                }
                command
            },
            3,
        );
        match result {
            Ok(exits) => panic!(
                "the worker's start failed ({name}), yet supervise returned \
                 Ok({exits:?}) after {starts} call(s) of start: a start that \
                 fails, for whatever reason, is returned at once, not tried \
                 again (not even when it might work a moment later) nor made \
                 into an exit"
            ),
            Err(error) => assert_eq!(
                (error.kind(), error.raw_os_error()),
                (kind, Some(errno)),
                "the worker's start failed with {name}, and supervise \
                 returned another error than the start's own: {error}"
            ),
        }
        assert_eq!(starts, 1, "the worker's start failed ({name}) once");
    }
}

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
        Err(error) => {
            assert_eq!(
                starts.get(),
                1,
                "waiting for the worker failed ({error}), and supervise \
                 started it again: return the error at once"
            );
            assert_eq!(
                error.raw_os_error(),
                Some(10),
                "waiting for the worker failed with ECHILD, and supervise \
                 returned another error: {error:?}; return wait's own error \
                 as it is (`?`), not a new one, even of the same kind with a \
                 clearer message"
            );
        }
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
