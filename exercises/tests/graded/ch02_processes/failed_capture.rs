//! Checks of `capture`'s `waits_even_when_a_read_fails` beyond the failed
//! read itself: stderr is still read to its end after reading stdout
//! failed, by a reader that is joined, and a reader thread that cannot
//! start leaves no zombie either.

use super::*;

use course::grader::{spawn_limit, task};

/// Reading stdout fails; meanwhile a process the child started in the
/// background holds the child's stderr, and writes 4 MiB there (far more
/// than a pipe holds) only once the trial lets it, then makes a file. It
/// is let go once the child has ended and the thread that called `run`
/// sleeps in a join, a lock or a read (not in a wait for the child), or
/// once `run` has returned. So `run` must go on reading stderr to its end
/// after the failed read of stdout, not stop at the first bytes (the
/// writer would then fail on a broken pipe and never make its file), and
/// must not return while a thread of its own still reads stderr (a reader
/// left running after the call, with the pipe open).
pub(super) fn reads_stderr_after_a_failed_read(run: Runner, name: &str) {
    let scratch = scratch();
    let go = scratch.path().join("go");
    let late = scratch.path().join("late");
    let ended = scratch.path().join("ended");
    let mut command = shell(
        r#"trap '' PIPE
        ( exec >/dev/null
        while [ ! -e "$2" ]; do sleep 0.01; done
        head -c 4194304 /dev/zero >&2 && : >"$3" ) &
        while [ ! -e "$1" ]; do sleep 0.01; done
        while printf x 2>/dev/null; do sleep 0.01; done"#,
    );
    command.arg("sh").arg(&go).arg(&late).arg(&ended);
    let (tid_sender, tid) = std::sync::mpsc::channel();
    let running = std::thread::spawn(move || {
        tid_sender.send(task::me().tid).expect("the trial is gone");
        run(&mut command)
    });
    let tid = tid.recv().expect("the capturing thread is gone");
    let (child, stdout) = child_running(&go, 1);
    let stderr = pipe_of(Path::new(&format!("/proc/{child}/fd/2")))
        .expect("the child's stderr is no pipe");
    make_reads_fail(&stdout);
    fs::write(&go, "").expect("cannot create the flag");
    // Twice in a row, so that a thread that only passes through a lock
    // does not count.
    let mut asleep = 0;
    while asleep < 2 && !running.is_finished() {
        let child_ended = matches!(state_of(child), None | Some('Z'));
        let in_join =
            matches!(task::wait(tid), Some((task::Wait::UntilWoken, _)));
        let in_read = matches!(blocked_in(tid), Blocked::OnInput);
        asleep = if child_ended && (in_join || in_read) {
            asleep + 1
        } else {
            0
        };
        std::thread::sleep(Duration::from_millis(1));
    }
    // Before the background process writes: is the stderr pipe still open
    // here, though `run` has returned?
    let returned_early = running.is_finished();
    let still_open = returned_early && holds_a_read_end_of(&stderr);
    fs::write(&late, "").expect("cannot create the flag");
    let result = running
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
    assert!(
        !still_open,
        "reading the child's stdout failed, and {name} returned while a \
         thread it started still held the child's stderr open, reading it \
         (a process the child started kept it open): join the thread that \
         reads stderr before returning, on an error too, so that nothing \
         {name} started is left running"
    );
    assert!(
        !returned_early,
        "reading the child's stdout failed, and {name} returned before the \
         end of its stderr, which a process the child started still held \
         open and had not written to yet: read stderr to its end all the \
         same (let go only of the pipe whose read failed)"
    );
    assert!(
        result.is_err(),
        "reading the child's stdout failed, yet {name} returned {result:?}"
    );
    assert!(
        ended.exists(),
        "reading the child's stdout failed, and then a process the child \
         started wrote 4 MiB to its stderr, but could not write it all (a \
         broken pipe): {name} stopped reading stderr once stdout failed; \
         go on reading it to its end, so that the child and what it started \
         run to their end as they would"
    );
}

/// Whether this process holds a read end (or any end) of `pipe`.
fn holds_a_read_end_of(pipe: &str) -> bool {
    fs::read_dir("/proc/self/fd")
        .expect("cannot list this process's file descriptors")
        .filter_map(Result::ok)
        .any(|entry| pipe_of(&entry.path()).as_deref() == Some(pipe))
}

/// While no new thread can start, `run` cannot start a thread to read
/// stderr: it returns that error, but first lets go of both pipes and waits
/// for the child it has started, which is not left behind, running or a
/// zombie. The child writes 1 MiB to stdout, then 1 MiB to stderr, far
/// more than a pipe holds: a `run` that waits while it still holds either
/// pipe waits forever, and the trial's timeout says why. A `run` that
/// starts its thread before the child, or reads both pipes on its own
/// thread, leaves no child either. Where threads still start under the
/// limit, nothing is checked.
pub(super) fn waits_when_no_reader_can_start(run: Runner, name: &str) {
    assert!(
        unwaited_children().is_empty(),
        "the trial starts with a child of its own"
    );
    let mut command = shell(
        "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2; exit 3",
    );
    let Some(outcome) =
        spawn_limit::while_no_thread_can_start(move || run(&mut command))
    else {
        eprintln!(
            "note: threads still start under RLIMIT_DATA here, so a reader \
             thread that cannot start is not checked"
        );
        return;
    };
    let left = unwaited_children();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(_) => panic!(
            "no new thread could start, and {name} panicked{}: return the \
             error of the thread's start (thread::Builder::spawn gives it), \
             once the child has been waited for",
            if left.is_empty() {
                ""
            } else {
                ", leaving its child unwaited for"
            }
        ),
    };
    assert!(
        left.is_empty(),
        "no new thread could start, and {name} returned {outcome:?} without \
         waiting for the child it had started (process {left:?} is left, \
         running or a zombie): when the reader thread cannot start, let go \
         of the pipes and wait for the child, then return the error"
    );
}
