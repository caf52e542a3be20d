//! A check of `capture`'s `returns_output_and_status`: stderr that a
//! grandchild holds open after the child has exited is read to its end.

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
