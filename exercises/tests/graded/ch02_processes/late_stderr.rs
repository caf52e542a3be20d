//! Checks of `capture`'s `returns_output_and_status`: stderr that a
//! grandchild holds open after the child has exited is read to its end,
//! and a child that closed its output and goes on is waited for, not
//! killed (that last check serves `run_isolated` too).

use super::*;

use course::grader::task;

/// The child starts a grandchild in the background and exits at once; the
/// grandchild keeps the child's stderr open, and writes `late` there only
/// once the trial lets it, then ends. `capture` must read stderr to its
/// end, however long that takes, not give up on it a while after the child
/// has exited. The trial lets the grandchild go once the thread that called
/// `capture` has slept in a wait with no deadline 100 times in a row, a
/// millisecond apart (a join, or a channel's `recv`); or has returned. A
/// wait with a deadline (a `recv_timeout`, a sleep) is seen before that,
/// and caught whatever its length; one too short to be seen has returned
/// before `late` could be written.
pub(super) fn reads_stderr_that_a_grandchild_holds() {
    let scratch = scratch();
    let go = scratch.path().join("go");
    let mut command = shell(
        r#"( exec >/dev/null
        while [ ! -e "$1" ]; do sleep 0.01; done
        printf late >&2 ) &
        printf early >&2"#,
    );
    command.arg("sh").arg(&go);
    let (tid_sender, tid) = std::sync::mpsc::channel();
    let running = std::thread::spawn(move || {
        tid_sender.send(task::me().tid).expect("the trial is gone");
        capture(&mut command)
    });
    let tid = tid.recv().expect("the capturing thread is gone");
    let mut deadline = None;
    let mut untimed_in_a_row = 0;
    while untimed_in_a_row < 100 && deadline.is_none() && !running.is_finished()
    {
        match task::wait(tid) {
            Some((task::Wait::UntilWoken, _)) => untimed_in_a_row += 1,
            Some((task::Wait::UntilADeadline, line)) => deadline = Some(line),
            Some((task::Wait::Elsewhere, _)) | None => untimed_in_a_row = 0,
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let the grandchild write and end, whatever happens next.
    fs::write(&go, "").expect("cannot create the flag");
    let captured = running
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
    if let Some(line) = deadline {
        panic!(
            "the child had exited, but a process it started still held its \
             stderr open, and capture waited for the rest with a deadline \
             (/proc said `{line}`: a timed futex or a sleep): read stderr to \
             its end, with no time limit (join the thread that reads it)"
        );
    }
    let captured = captured.expect("capture failed to run sh");
    assert_eq!(
        String::from_utf8_lossy(&captured.stderr),
        "earlylate",
        "the child wrote `early` to stderr and exited, and a process it \
         started wrote `late` there later, before it closed stderr: capture \
         returns all of it, read to the end of the pipe, not what had come \
         when the child exited or a while after"
    );
    assert!(captured.status.success(), "sh exits with 0");
}

/// The child closes its stdout and stderr at once and goes on running: the
/// end of its output is not its end. It exits with `5` only once the trial
/// lets it, and the trial does so once a thread that `run` started, or
/// the one that called it, sleeps in a wait for the child (`wait4`,
/// `waitid`) or in a pause between asks (`nanosleep`); or once `run` has
/// returned. A `run` that kills a child still running after the end of
/// its output (`try_wait`, then `kill`) does so before any of that, and
/// returns the status of a kill, not the child's own exit. `run` is
/// `capture`, or `run_isolated`, called `name` in the messages.
pub(super) fn waits_for_a_child_that_closed_its_output(
    run: Runner,
    name: &str,
) {
    let scratch = scratch();
    let go = scratch.path().join("go");
    let mut command = shell(
        r#"exec >&- 2>&-
        while [ ! -e "$1" ]; do sleep 0.01; done
        exit 5"#,
    );
    command.arg("sh").arg(&go);
    let before = threads();
    let running = std::thread::spawn(move || run(&mut command));
    while !running.is_finished()
        && !threads()
            .into_iter()
            .filter(|tid| !before.contains(tid))
            .any(waits_for_the_child)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let the child end, whatever happens next.
    fs::write(&go, "").expect("cannot create the flag");
    let captured = running
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
        .unwrap_or_else(|error| panic!("{name} failed to run sh: {error}"));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        (captured.status.code(), captured.status.signal()),
        (Some(5), None),
        "the child closed its stdout and stderr and went on running, then \
         exited with 5 by itself, but {name} returned the status {}: the \
         end of a child's output is not its end, so do not kill a child \
         still running then; wait for it (Child::wait), however long it \
         goes on",
        captured.status
    );
}

/// Whether thread `tid` of this process sleeps in a wait for a child
/// (`wait4`, `waitid`) or in a sleep (`nanosleep`, `clock_nanosleep`), as
/// a loop that asks `try_wait` with a pause in between does.
fn waits_for_the_child(tid: i32) -> bool {
    #[cfg(target_arch = "x86_64")]
    const WAITING: Option<[i64; 4]> = Some([61, 247, 35, 230]);
    #[cfg(target_arch = "aarch64")]
    const WAITING: Option<[i64; 4]> = Some([260, 95, 101, 115]);
    // Elsewhere, any sleep but a futex wait counts.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const WAITING: Option<[i64; 4]> = None;
    task::asleep(tid)
        && match (WAITING, task::syscall(tid)) {
            (Some(waiting), Some(number)) => waiting.contains(&number),
            (None, _) => {
                !matches!(task::wait(tid), Some((task::Wait::UntilWoken, _)))
            }
            (Some(_), None) => false,
        }
}
