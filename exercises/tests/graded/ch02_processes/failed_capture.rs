//! Checks of `capture`'s `waits_even_when_a_read_fails` beyond the failed
//! read itself: the other pipe is still read to its end after reading
//! stdout or stderr failed, by a reader that is joined, and a reader thread
//! that cannot start leaves no zombie either.

use super::*;

use course::grader::{spawn_limit, task};

/// Reading stdout fails, then (in a second run) reading stderr does;
/// meanwhile a process the child started in the background holds the
/// other pipe, and writes 4 MiB there (far more than a pipe holds) only
/// once the trial lets it, then makes a file. It is let go once the child
/// has ended and the thread that called `run` sleeps in a join, a lock or
/// a read (not in a wait for the child), or once `run` has returned. So
/// `run` must go on reading the other pipe to its end after the failed
/// read, not stop at the next bytes (the writer would then fail on a
/// broken pipe and never make its file), and must not return while a
/// thread of its own still reads it (a reader left running after the call,
/// with the pipe open).
pub(super) fn reads_the_other_pipe_after_a_failed_read(
    run: Runner,
    name: &str,
) {
    a_failed_read_then_the_other(1, run, name);
    a_failed_read_then_the_other(2, run, name);
}

/// One run of `reads_the_other_pipe_after_a_failed_read`, where reading the
/// child's file descriptor `fails` (1 or 2) fails.
fn a_failed_read_then_the_other(fails: i32, run: Runner, name: &str) {
    let other = 3 - fails;
    let [failed, kept] = if fails == 1 {
        ["stdout", "stderr"]
    } else {
        ["stderr", "stdout"]
    };
    let scratch = scratch();
    let go = scratch.path().join("go");
    let late = scratch.path().join("late");
    let ended = scratch.path().join("ended");
    let mut command = shell(&format!(
        r#"trap '' PIPE
        ( exec {fails}>/dev/null
        while [ ! -e "$2" ]; do sleep 0.01; done
        head -c 4194304 /dev/zero >&{other} && : >"$3" ) &
        while [ ! -e "$1" ]; do sleep 0.01; done
        while printf x >&{fails} 2>/dev/null; do sleep 0.01; done"#
    ));
    command.arg("sh").arg(&go).arg(&late).arg(&ended);
    let (tid_sender, tid) = std::sync::mpsc::channel();
    let running = std::thread::spawn(move || {
        tid_sender.send(task::me().tid).expect("the trial is gone");
        run(&mut command)
    });
    let tid = tid.recv().expect("the capturing thread is gone");
    let (child, failing) = child_running(&go, fails);
    let held = pipe_of(Path::new(&format!("/proc/{child}/fd/{other}")))
        .unwrap_or_else(|| panic!("the child's {kept} is no pipe"));
    make_reads_fail(&failing);
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
    // Before the background process writes: is the other pipe still open
    // here, though `run` has returned?
    let returned_early = running.is_finished();
    let still_open = returned_early && holds_a_read_end_of(&held);
    fs::write(&late, "").expect("cannot create the flag");
    let result = running
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
    assert!(
        !still_open,
        "reading the child's {failed} failed, and {name} returned while a \
         thread it started still held the child's {kept} open, reading it \
         (a process the child started kept it open): join the thread that \
         reads it before returning, on an error too, so that nothing \
         {name} started is left running"
    );
    assert!(
        !returned_early,
        "reading the child's {failed} failed, and {name} returned before \
         the end of its {kept}, which a process the child started still \
         held open and had not written to yet: read {kept} to its end all \
         the same (let go only of the pipe whose read failed)"
    );
    assert!(
        result.is_err(),
        "reading the child's {failed} failed, yet {name} returned {result:?}"
    );
    assert!(
        ended.exists(),
        "reading the child's {failed} failed, and then a process the child \
         started wrote 4 MiB to its {kept}, but could not write it all (a \
         broken pipe): {name} stopped reading {kept} once {failed} failed; \
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

/// While no new thread can start (`threads` is 0), or only one (`threads`
/// is 1: a `run` with a thread for each pipe starts the first but not the
/// second), `run` cannot start a thread to read a pipe: it returns that
/// error, but first lets go of both pipes, unread, and waits for the child
/// it has started, which is not left behind, running or a zombie, nor
/// killed. The child writes 128 KiB to stdout, then to stderr, then to
/// stdout again, more than a pipe holds each time, and notes each write
/// that succeeds: none may (a `run` that reads stdout itself, or lets a
/// thread that did start read it, lets them succeed). A `run` that waits
/// while it still holds either pipe waits forever, and so does one that
/// reads one pipe to its end and then the other; the trial's timeout says
/// why. The child then waits for a flag, which a thread of the trial's
/// makes once the thread that called `run` sleeps (in a wait, a join or a
/// read), and only then gets to its end: a child killed after its writes
/// never does. A `run` that starts its threads before the child, or reads
/// both pipes at once on its own thread (and so returns `Ok`), leaves no
/// child either. An error it returns is the start's own (as a probe's start
/// under the same limit gives it), not a new one. Where threads still
/// start under the limit, nothing is checked.
pub(super) fn waits_when_no_reader_can_start(run: Runner, name: &str) {
    no_reader_can_start(0, run, name);
    no_reader_can_start(1, run, name);
}

/// One run of `waits_when_no_reader_can_start`, while only `threads` new
/// threads can start.
fn no_reader_can_start(threads: usize, run: Runner, name: &str) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    assert!(
        unwaited_children().is_empty(),
        "the trial starts with a child of its own"
    );
    let scratch = scratch();
    let dir = scratch.path().to_path_buf();
    let mut command = shell(
        r#"head -c 131072 /dev/zero && : >"$1/stdout"
        head -c 131072 /dev/zero >&2 && : >"$1/stderr"
        head -c 131072 /dev/zero && : >"$1/stdout"
        : >"$1/written"
        while [ ! -e "$1/go" ]; do sleep 0.01; done
        : >"$1/ended"
        exit 3"#,
    );
    command.arg("sh").arg(&dir);
    mark_when_spawned(&mut command, &dir.join("spawned"));
    // The thread that lets the child end, started before the limit.
    let tid = task::me().tid;
    let returned = Arc::new(AtomicBool::new(false));
    let (ready, is_ready) = std::sync::mpsc::channel();
    let letting_go = {
        let dir = dir.clone();
        let returned = Arc::clone(&returned);
        std::thread::spawn(move || {
            let written = dir.join("written");
            ready.send(()).expect("the trial is gone");
            // Twice in a row, so that a thread that only passes through a
            // lock does not count.
            let mut asleep = 0;
            while asleep < 2 && !returned.load(Ordering::SeqCst) {
                let sleeps = task::state(tid) == Some('S');
                asleep = if sleeps && written.exists() {
                    asleep + 1
                } else {
                    0
                };
                std::thread::sleep(Duration::from_millis(1));
            }
            fs::write(dir.join("go"), "").expect("cannot create the flag");
        })
    };
    is_ready.recv().expect("the trial's thread is gone");
    // What a thread's start gives under the limit, as a learner's
    // `thread::Builder::spawn` would get it (no probe where one thread
    // can start: it would take that one).
    let result = spawn_limit::while_only_threads_can_start(threads, {
        let returned = Arc::clone(&returned);
        move || {
            let probe = (threads == 0)
                .then(|| std::thread::Builder::new().spawn(|| {}).err())
                .flatten();
            let outcome = run(&mut command);
            returned.store(true, Ordering::SeqCst);
            (probe, outcome)
        }
    });
    returned.store(true, Ordering::SeqCst);
    let Some(outcome) = result else {
        letting_go.join().expect("the trial's thread panicked");
        eprintln!(
            "note: threads still start under RLIMIT_DATA here, so a reader \
             thread that cannot start is not checked"
        );
        return;
    };
    let left = unwaited_children();
    letting_go.join().expect("the trial's thread panicked");
    let (refused, outcome) = match outcome {
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
        "no new thread could start, and {name} returned {} without \
         waiting for the child it had started (process {left:?} is left, \
         running or a zombie): when the reader thread cannot start, let go \
         of the pipes and wait for the child, then return the error",
        if outcome.is_ok() { "Ok" } else { "an error" }
    );
    // `Ok` comes from a `run` that reads both pipes at once on its own
    // thread (one that reads them in turn never returns); an error must be
    // the one a thread's start gave.
    let Err(error) = outcome else { return };
    if let Some(refused) = refused {
        assert!(
            error.kind() == refused.kind()
                && error.raw_os_error() == refused.raw_os_error(),
            "no new thread could start ({refused}), and {name} returned \
             another error: {error:?}; return the error of the thread's \
             start as thread::Builder::spawn gives it, not a new one (not \
             even with a clearer message)"
        );
    }
    if !dir.join("spawned").exists() {
        return;
    }
    assert!(
        !dir.join("stdout").exists() && !dir.join("stderr").exists(),
        "a thread to read a pipe could not start, and {name} returned \
         {error:?}, but read the child's output first (its writes \
         succeeded): let go of both pipes unread, and then wait, do not \
         read one on the calling thread nor let a thread that did start \
         read it (start the readers first, and hand them the pipes only \
         once every one has started)"
    );
    assert!(
        dir.join("ended").exists(),
        "a thread to read a pipe could not start, and {name} killed the \
         child it had started (it never got to its end, which it reaches by \
         itself once its writes fail): do not kill it, let go of both \
         pipes and wait for the child, which then ends as it would"
    );
}

/// Makes `command`'s child create the file `marker` as it starts (between
/// fork and exec), so that the trial knows a child was started, even one
/// killed before it ran a line of its own.
fn mark_when_spawned(command: &mut Command, marker: &Path) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let marker = std::ffi::CString::new(marker.as_os_str().as_bytes())
        .expect("a temporary path has no NUL byte");
    // SAFETY: the closure runs in the child between fork and exec, and only
    // calls `open` and `close`, which are async-signal-safe, on a path made
    // before the fork.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(
                marker.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
                0o600,
            );
            if fd >= 0 {
                libc::close(fd);
            }
            Ok(())
        });
    }
}
