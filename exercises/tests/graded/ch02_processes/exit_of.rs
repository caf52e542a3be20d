//! The trials of `exit_of`.

use super::*;

pub(super) fn tells_codes_from_signals() {
    use std::os::unix::process::ExitStatusExt;
    let status = |args: &[&str]| worker(args).status().unwrap();
    assert_eq!(exit_of(status(&["exit", "0"])), Exit::Code(0));
    assert_eq!(exit_of(status(&["exit", "42"])), Exit::Code(42));
    assert_eq!(
        exit_of(status(&["abort"])),
        Exit::Signal(6),
        "an aborted process is killed by SIGABRT (6); it has no exit code"
    );
    assert_eq!(
        exit_of(status(&["segfault"])),
        Exit::Signal(11),
        "a segmentation fault is SIGSEGV (11)"
    );
    // Every code is a code, 127 (a shell's "command not found") included:
    // an exit's raw wait status is the code in its second byte and 0 in
    // its first, as `wait` gives it.
    for code in 0..=255 {
        let status = std::process::ExitStatus::from_raw(code << 8);
        assert_eq!(
            exit_of(status),
            Exit::Code(code),
            "the process exited with code {code} (raw wait status {}): \
             every code from 0 to 255 is a code; use ExitStatus::code",
            code << 8
        );
    }
    a_stop_is_no_success();
}

/// A stopped or continued status, which `wait` never returns, is no
/// success: `exit_of` may panic on one, or give any `Exit` but `Code(0)`.
/// Stopped by any signal: SIGSTOP (19), SIGTSTP (20, Ctrl-Z), SIGTTIN and
/// SIGTTOU (21 and 22, a background job that touched the terminal),
/// SIGTRAP (5, a debugger's breakpoint), a real-time signal (up to 64), or
/// a debugger's stop at a system call or an event (SIGTRAP with more bits
/// set); and continued.
fn a_stop_is_no_success() {
    use std::os::unix::process::ExitStatusExt;
    // A stop: a low byte of 0x7f, the signal above it (and, for a
    // debugger's event, the event above that); continued: 0xffff.
    let mut stops: Vec<(i32, String)> = (1..=64)
        .map(|signal| {
            (signal << 8 | 0x7f, format!("stopped by signal {signal}"))
        })
        .collect();
    stops.push((
        0x85 << 8 | 0x7f,
        "stopped at a system call by a debugger (SIGTRAP | 0x80)".into(),
    ));
    stops.push((
        4 << 16 | 5 << 8 | 0x7f,
        "stopped at an exec by a debugger (SIGTRAP, event 4)".into(),
    ));
    stops.push((0xffff, "continued".into()));
    for (raw, what) in stops {
        let status = std::process::ExitStatus::from_raw(raw);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let exit = std::panic::catch_unwind(|| exit_of(status));
        std::panic::set_hook(hook);
        assert!(
            !matches!(exit, Ok(Exit::Code(0))),
            "exit_of was given the status of a process {what} (raw wait \
             status {raw:#x}), which has neither a code nor a killing \
             signal, and said Code(0), a success: a process that has not \
             ended has not succeeded, whatever stopped it; panic \
             (unreachable!) or tell it apart, but never make it a success"
        );
    }
}

/// A process killed by a signal that dumped core has the core-dump bit
/// (0x80) set in its raw wait status, next to the signal number. The
/// grader forbids core files, so the statuses are built by hand.
pub(super) fn reads_the_signal_not_the_raw_status() {
    use std::os::unix::process::ExitStatusExt;
    const CORE_DUMPED: i32 = 0x80;
    for signal in [6, 9, 11, 15] {
        let status = std::process::ExitStatus::from_raw(signal | CORE_DUMPED);
        assert_eq!(
            exit_of(status),
            Exit::Signal(signal),
            "signal {signal} ended the process and it dumped core (raw wait \
             status {}): the signal is {signal}, not the raw status nor its \
             low byte; use ExitStatusExt::signal",
            signal | CORE_DUMPED
        );
    }
    // Every signal counts, SIGPIPE (13) and SIGINT (2) included, and so do
    // 32 and 33, which glibc keeps for itself but the kernel delivers like
    // any other. Real-time signals go up to 64: they do not fit in five
    // bits.
    for signal in 1..=64 {
        for raw in [signal, signal | CORE_DUMPED] {
            let status = std::process::ExitStatus::from_raw(raw);
            assert_eq!(
                exit_of(status),
                Exit::Signal(signal),
                "signal {signal} ended the process (raw wait status {raw}): \
                 every signal from 1 to 64 is a signal, whatever it means, \
                 and signal numbers go above 31, so they take seven bits, \
                 not five; use ExitStatusExt::signal"
            );
        }
    }
}

/// A code above 128 is a code: only a shell's `$?` folds signals into it.
pub(super) fn keeps_a_code_above_128() {
    use std::os::unix::process::ExitStatusExt;
    let status = |args: &[&str]| worker(args).status().unwrap();
    for code in ["134", "137", "139", "255"] {
        assert_eq!(
            exit_of(status(&["exit", code])),
            Exit::Code(code.parse().unwrap()),
            "the worker called exit({code}); no signal killed it (only a \
             shell reports a killed child as 128 + signal)"
        );
    }
    // So is every other code above 128, a shell's 130 (128 + SIGINT), 141
    // (+ SIGPIPE) and 143 (+ SIGTERM) included.
    for code in 129..=255 {
        let status = std::process::ExitStatus::from_raw(code << 8);
        assert_eq!(
            exit_of(status),
            Exit::Code(code),
            "the process exited with code {code}; no signal killed it, \
             whatever a shell would mean by that code"
        );
    }
}
