//! The trials of `capture`.

use super::*;

pub(super) fn returns_output_and_status() {
    // The parent has a secret; a command set up without it runs without
    // it, whether it removes that variable or clears everything.
    set_secret();
    let mut removed = worker(&["env"]);
    removed.env_remove("COURSE_SECRET_TOKEN");
    let captured = capture(&mut removed).expect("capture failed to run");
    let env = String::from_utf8_lossy(&captured.stdout);
    assert!(
        !env.contains("COURSE_SECRET_TOKEN"),
        "the command removed COURSE_SECRET_TOKEN (Command::env_remove), yet \
         the child had it: run the command as it was set up, not a copy \
         rebuilt from its program, arguments and added variables"
    );
    let mut cleared = worker(&["env"]);
    cleared.env_clear().env("COURSE_ONLY_VARIABLE", "1");
    let captured = capture(&mut cleared).expect("capture failed to run");
    assert_eq!(
        String::from_utf8_lossy(&captured.stdout),
        "COURSE_ONLY_VARIABLE=1\n",
        "the command cleared its environment (Command::env_clear) and set \
         one variable: the child's environment is that variable alone"
    );
    let scratch = scratch();
    let dir = scratch.path();
    let captured = capture(worker(&["pwd"]).current_dir(dir))
        .expect("capture failed to run the worker");
    let printed = String::from_utf8_lossy(&captured.stdout);
    assert_eq!(
        Path::new(printed.trim()).canonicalize().unwrap(),
        dir.canonicalize().unwrap(),
        "stdout should hold the worker's working directory"
    );
    assert!(captured.status.success());
    let failed = capture(&mut worker(&["exit", "3"])).unwrap();
    assert_eq!(failed.status.code(), Some(3), "the worker exits with 3");
    assert!(failed.stdout.is_empty() && failed.stderr.is_empty());
    late_stderr::reads_stderr_that_a_grandchild_holds();
    late_stderr::waits_for_a_child_that_closed_its_output(capture, "capture");
}

/// How a trial runs a command and captures what it wrote: `capture`
/// itself, or `run_isolated`, which promises to capture as `capture` does.
pub(super) type Runner = fn(&mut Command) -> std::io::Result<Captured>;

pub(super) fn drains_both_pipes_at_once() {
    captures_everything(capture, "capture");
}

/// The checks of `drains_both_pipes_at_once`, for `run`, called `name` in
/// the messages: 1 MiB on each stream, reads interrupted by a signal, and
/// 64 MiB and a byte on each stream.
pub(super) fn captures_everything(run: Runner, name: &str) {
    const MIB: usize = 1 << 20;
    let captured =
        run(&mut worker(&["flood", "1048576"])).unwrap_or_else(|error| {
            panic!("{name} failed to run the worker: {error}")
        });
    assert!(captured.status.success(), "the worker should succeed");
    assert_eq!(captured.stdout.len(), MIB, "stdout should be 1 MiB");
    assert_eq!(captured.stderr.len(), MIB, "stderr should be 1 MiB");
    assert!(
        captured.stdout.iter().all(|&b| b == b'o'),
        "stdout mixed up"
    );
    assert!(
        captured.stderr.iter().all(|&b| b == b'e'),
        "stderr mixed up"
    );
    an_interrupted_read(run, name);
    // However much it is: 64 MiB and a byte more to each stream, the last
    // byte a letter, all come back.
    const BIG: usize = 64 * MIB;
    let captured = run(Command::new("sh").args([
        "-c",
        "{ head -c 67108864 /dev/zero; printf o; }; \
         { head -c 67108864 /dev/zero; printf e; } >&2",
    ]))
    .unwrap_or_else(|error| panic!("{name} failed to run sh: {error}"));
    assert!(captured.status.success(), "sh should succeed");
    for (stream, bytes, last) in [
        ("stdout", &captured.stdout, b'o'),
        ("stderr", &captured.stderr, b'e'),
    ] {
        assert_eq!(
            (bytes.len(), bytes.last()),
            (BIG + 1, Some(&last)),
            "the child wrote 64 MiB and then `{}` to {stream}; all of it \
             should come back from {name}, with no cap on how much",
            last as char
        );
    }
}

/// A signal that arrives while `run` (`capture`, or `run_isolated`) waits
/// for output interrupts the read (`ErrorKind::Interrupted`, EINTR): that
/// is no failure, the read is tried again, and what was read before it is
/// kept. The child writes to both streams and then waits, and the trial
/// interrupts the reads of `run`'s threads only after that, so each
/// interrupted read comes after the first bytes were read: a `run` that
/// starts reading over with an empty buffer loses them.
fn an_interrupted_read(run: Runner, name: &str) {
    let scratch = scratch();
    let written = scratch.path().join("written");
    let go = scratch.path().join("go");
    let mut command = shell(
        r#"printf out; printf err >&2; : >"$1"
        while [ ! -e "$2" ]; do sleep 0.01; done
        printf OUT; printf ERR >&2"#,
    );
    command.arg("sh").arg(&written).arg(&go);
    let result =
        with_interrupted_reads(&written, &go, move || run(&mut command));
    match result {
        Ok(captured) => assert_eq!(
            (&captured.stdout[..], &captured.stderr[..]),
            (&b"outOUT"[..], &b"errERR"[..]),
            "a read interrupted by a signal is tried again, and all the \
             output comes back, what was read before the signal included \
             (the child wrote `out` and `err`, and after the signals, `OUT` \
             and `ERR`) from {name}: keep the bytes read so far when you \
             retry"
        ),
        Err(error) => panic!(
            "a signal interrupted a read of {name} (EINTR), and {name} \
             returned {error:?}: an interrupted read has not failed, try it \
             again (ErrorKind::Interrupted; read_to_end does)"
        ),
    }
}

/// Runs `run` on a thread of its own. It reads the output of a child that
/// writes its first bytes, then creates the file `written`, and then waits
/// for the file `go`. Once `written` exists, the trial interrupts ten times
/// a thread that `run` started (or its own) asleep in a read or a poll,
/// with a handler installed without `SA_RESTART`. A reader that the child's
/// write woke is no longer asleep, so every read interrupted then began
/// after those first bytes had been read. Then the trial creates `go`, and
/// returns what `run` returned.
pub(super) fn with_interrupted_reads<T: Send + 'static>(
    written: &Path,
    go: &Path,
    run: impl FnOnce() -> T + Send + 'static,
) -> T {
    interrupt_reads_with(SIGUSR1);
    let before = threads();
    let running = std::thread::spawn(run);
    while !written.exists() && !running.is_finished() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut interrupted = 0;
    while interrupted < 10 && !running.is_finished() {
        let mut waiting_for_the_child = false;
        for tid in threads().into_iter().filter(|t| !before.contains(t)) {
            match blocked_in(tid) {
                Blocked::OnInput => {
                    send_to_thread(tid, SIGUSR1);
                    interrupted += 1;
                }
                Blocked::OnTheChild => waiting_for_the_child = true,
                Blocked::Otherwise => {}
            }
        }
        // Reading has ended (it failed): let the child end too.
        if waiting_for_the_child {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    fs::write(go, "").expect("cannot create the flag");
    running
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
}

const SIGUSR1: i32 = 10;

/// Installs a handler that does nothing for `signal`, without
/// `SA_RESTART`, so that the signal interrupts a blocked read.
fn interrupt_reads_with(number: i32) {
    extern "C" fn nothing(_: i32) {}
    unsafe extern "C" {
        fn signal(signal: i32, handler: usize) -> usize;
        fn siginterrupt(signal: i32, flag: i32) -> i32;
    }
    // SAFETY: the handler does nothing, so it is async-signal-safe; the
    // trial runs in its own process, and nothing else there uses `signal`.
    unsafe {
        signal(number, nothing as extern "C" fn(i32) as usize);
        siginterrupt(number, 1);
    }
}

/// Sends `signal` to thread `tid` of this process.
fn send_to_thread(tid: i32, signal: i32) {
    unsafe extern "C" {
        fn getpid() -> i32;
        fn tgkill(pid: i32, tid: i32, signal: i32) -> i32;
    }
    // SAFETY: `tgkill` only sends a signal to one thread of this process,
    // whose handler does nothing; a thread that has ended makes it fail
    // harmlessly.
    unsafe { tgkill(getpid(), tid, signal) };
}

/// The ids of this process's threads.
pub(super) fn threads() -> Vec<i32> {
    fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// What a thread is asleep on.
pub(super) enum Blocked {
    /// A read or a poll of input.
    OnInput,
    /// A wait for a child.
    OnTheChild,
    /// Something else, or it does not sleep.
    Otherwise,
}

/// What thread `tid` of this process is asleep on, from its system call.
pub(super) fn blocked_in(tid: i32) -> Blocked {
    // read, readv, poll, select, ppoll, pselect6, epoll_wait, epoll_pwait;
    // then wait4, waitid.
    #[cfg(target_arch = "x86_64")]
    const CALLS: Option<([i64; 8], [i64; 2])> =
        Some(([0, 19, 7, 23, 271, 270, 232, 281], [61, 247]));
    #[cfg(target_arch = "aarch64")]
    const CALLS: Option<([i64; 8], [i64; 2])> =
        Some(([63, 65, 73, 73, 73, 72, 22, 22], [260, 95]));
    // Elsewhere, any sleep counts as a read.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const CALLS: Option<([i64; 8], [i64; 2])> = None;
    if course::grader::task::state(tid) != Some('S') {
        return Blocked::Otherwise;
    }
    let number = course::grader::task::syscall(tid);
    match (CALLS, number) {
        (Some((input, _)), Some(number)) if input.contains(&number) => {
            Blocked::OnInput
        }
        (Some((_, child)), Some(number)) if child.contains(&number) => {
            Blocked::OnTheChild
        }
        (Some(_), Some(_)) => Blocked::Otherwise,
        // It woke between the two looks: it sleeps on nothing just now.
        (Some(_), None) => Blocked::Otherwise,
        (None, _) => Blocked::OnInput,
    }
}

/// Output that is not text, with `\r\n` and a final newline, must come
/// back byte for byte.
pub(super) fn returns_the_bytes_unchanged() {
    let captured = capture(
        Command::new("sh")
            .args(["-c", r"printf 'a\377b\r\nc\n'; printf '\376\r\n\n' >&2"]),
    )
    .expect("capture failed to run sh");
    assert!(captured.status.success(), "sh should succeed");
    assert_eq!(
        captured.stdout, b"a\xffb\r\nc\n",
        "stdout should come back byte for byte: not decoded as text, \
         `\\r\\n` kept, final newline kept"
    );
    assert_eq!(
        captured.stderr, b"\xfe\r\n\n",
        "stderr should come back byte for byte"
    );
}

/// Makes this trial process's own stdin a pipe that holds `data` and then
/// ends, so that a child that inherits it reads `data`.
pub(super) fn give_the_parent_a_stdin(data: &[u8]) {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn dup2(old: i32, new: i32) -> i32;
    }
    let (reader, mut writer) = std::io::pipe().expect("cannot make a pipe");
    writer.write_all(data).expect("cannot fill the pipe");
    drop(writer);
    // SAFETY: `dup2` only replaces file descriptor 0 with a copy of the
    // pipe's read end, which is open; the trial runs in its own process,
    // and nothing else in it uses stdin.
    let done = unsafe { dup2(reader.as_raw_fd(), 0) };
    assert_eq!(done, 0, "cannot replace stdin");
}

/// The parent's stdin holds a line; a child that reads its stdin must see
/// nothing, and at once.
pub(super) fn gives_the_child_an_empty_stdin() {
    give_the_parent_a_stdin(b"the parent's input\n");
    let captured =
        capture(&mut worker(&["upper"])).expect("capture failed to run");
    assert!(captured.status.success(), "the worker should succeed");
    assert_eq!(
        String::from_utf8_lossy(&captured.stdout),
        "",
        "the child read the parent's own stdin: a child inherits it unless \
         you give it another (Stdio::null())"
    );
    // A stdin open for writing only is no empty stdin: `cat` fails to read
    // it (EBADF, "Bad file descriptor") where it sees its end in an empty
    // one. (The worker's Rust stdin reads EBADF as an end.)
    let captured = capture(&mut shell("cat")).expect("capture failed to run");
    assert!(
        captured.status.success() && captured.stderr.is_empty(),
        "`cat` could not read its stdin (status {}, stderr {:?}): the \
         child's stdin must be open for reading and at its end, as \
         Stdio::null() gives it; /dev/null opened for writing \
         (File::create) cannot be read",
        captured.status,
        String::from_utf8_lossy(&captured.stderr)
    );
}

/// The pipe that a file descriptor is, as `pipe:[inode]`, if it is one.
pub(super) fn pipe_of(link: &Path) -> Option<String> {
    let target = fs::read_link(link).ok()?;
    let target = target.to_str()?;
    target.starts_with("pipe:").then(|| target.to_string())
}

/// Makes reading stdout fail, then stderr: once the child runs, the trial
/// makes its own end of that pipe non-blocking, so the first read that
/// finds the pipe empty fails with `WouldBlock` instead of waiting. The
/// child then writes a byte there a while until the pipe breaks, so it
/// ends once the parent drops its end. The child must not be left a zombie.
pub(super) fn waits_even_when_a_read_fails() {
    failed_capture::waits_when_no_reader_can_start(capture, "capture");
    waits_after_a_failed_read(capture, "capture");
    failed_capture::reads_the_other_pipe_after_a_failed_read(
        capture, "capture",
    );
}

/// The checks of `waits_even_when_a_read_fails`, for `run`, called `name`
/// in the messages.
pub(super) fn waits_after_a_failed_read(run: Runner, name: &str) {
    a_failed_read(1, "stdout", run, name);
    a_failed_read(2, "stderr", run, name);
    returns_once_the_child_is_reaped(run, name);
}

/// Reading stdout fails, and the child can end only once the trial lets
/// it. So a `capture` that returns at once, leaving the child to be reaped
/// in the background, returns while the child still runs.
fn returns_once_the_child_is_reaped(run: Runner, name: &str) {
    let (result, ended) =
        returns_once_reaped(move |mut command| run(&mut command));
    assert!(
        result.is_err(),
        "reading the child's stdout failed, yet {name} returned {result:?}"
    );
    assert!(
        ended,
        "{name} returned when reading stdout failed while the child was \
         still running (it could not end yet): wait for the child before \
         returning, not in the background, so that it is gone when {name} \
         returns"
    );
}

/// Runs `run` on a thread of its own, with a command for a child whose
/// stdout `run` reads (its last stage, for a pipeline). Reading it fails,
/// and the child can end only once the trial lets it: after its write
/// fails, it waits for a second flag. The trial creates that flag only
/// once the thread that called `run` waits (for a thread, a lock or a
/// child, or in a sleep between asks), or has returned. Returns what `run` returned, and whether the
/// flag existed when it returned: if not, it returned while the child still
/// ran. The child has ended when this returns, by itself: one killed
/// (`Child::kill`) never makes the file it makes last, and this panics.
pub(super) fn returns_once_reaped<T: Send + 'static>(
    run: impl FnOnce(Command) -> T + Send + 'static,
) -> (T, bool) {
    let scratch = scratch();
    let go = scratch.path().join("go");
    let end = scratch.path().join("end");
    let ended = scratch.path().join("ended");
    let mut command = shell(
        r#"trap '' PIPE
        while [ ! -e "$1" ]; do sleep 0.01; done
        while printf x; do sleep 0.01; done
        while [ ! -e "$2" ]; do sleep 0.01; done
        : >"$3""#,
    );
    command.arg("sh").arg(&go).arg(&end).arg(&ended);
    let (tid_sender, tid) = std::sync::mpsc::channel();
    let running = {
        let end = end.clone();
        std::thread::spawn(move || {
            tid_sender.send(own_thread_id()).unwrap();
            let result = run(command);
            (result, end.exists())
        })
    };
    let tid = tid.recv().unwrap();
    let (child, pipe) = child_running(&go, 1);
    make_reads_fail(&pipe);
    fs::write(&go, "").expect("cannot create the flag");
    // Twice in a row, so that a thread that only passes through a lock
    // does not count.
    let mut waiting = 0;
    while waiting < 2 && !running.is_finished() {
        waiting = if waits(tid) { waiting + 1 } else { 0 };
        std::thread::sleep(Duration::from_millis(1));
    }
    fs::write(&end, "").expect("cannot create the flag");
    let returned = running
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
    until_ended_or_zombie(child);
    // The flag `end` is created only after the read failed, so a child
    // killed then never gets to make its own last file.
    assert!(
        ended.exists(),
        "reading the child's stdout (a pipeline's last stage's) failed, and \
         the child was killed (it never got to its end, which it reaches by \
         itself once the pipe is let go and the trial lets it): do not kill \
         it, drop the pipe and wait for the child, which then ends as it \
         would"
    );
    returned
}

/// The id of the calling thread, as `/proc/self/task` names it.
fn own_thread_id() -> i32 {
    course::grader::task::me().tid
}

/// Whether thread `tid` of this process is asleep in a system call that
/// waits for another thread or a child: `futex` (a join, a lock, a
/// channel), `wait4` or `waitid`; or in a sleep (`nanosleep`,
/// `clock_nanosleep`), as a loop that asks `try_wait` with a pause in
/// between does, which waits for the child too.
fn waits(tid: i32) -> bool {
    #[cfg(target_arch = "x86_64")]
    const WAITING: Option<[i64; 5]> = Some([202, 61, 247, 35, 230]);
    #[cfg(target_arch = "aarch64")]
    const WAITING: Option<[i64; 5]> = Some([98, 260, 95, 101, 115]);
    // Elsewhere, any sleep counts.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const WAITING: Option<[i64; 5]> = None;
    let number = course::grader::task::syscall(tid);
    let asleep = course::grader::task::state(tid)
        .is_some_and(|state| state == 'S' || state == 'D');
    // Where the system call cannot be read, any sleep counts too.
    asleep
        && WAITING
            .zip(number)
            .is_none_or(|(waiting, number)| waiting.contains(&number))
}

/// One run of `waits_even_when_a_read_fails`, where reading the child's
/// file descriptor `fd` (`stream`) fails.
fn a_failed_read(fd: i32, stream: &str, run: Runner, name: &str) {
    let scratch = scratch();
    let go = scratch.path().join("go");
    let mut command = writes_after(&go, fd);
    let running = std::thread::spawn(move || run(&mut command));
    let (child, pipe) = child_running(&go, fd);
    make_reads_fail(&pipe);
    fs::write(&go, "").expect("cannot create the flag");
    let result = running.join().unwrap();
    let error = result.as_ref().err().unwrap_or_else(|| {
        panic!(
            "reading the child's {stream} failed, yet {name} returned \
             {result:?}"
        )
    });
    // The trial's non-blocking read fails with `EAGAIN` (`WouldBlock`).
    assert!(
        error.kind() == std::io::ErrorKind::WouldBlock
            && error.raw_os_error() == Some(libc::EAGAIN),
        "reading the child's {stream} failed with \"{}\", and {name} \
         returned another error: {error:?}; return the read's error as it \
         is (its kind and OS error code kept), not a new one (not even \
         with context added)",
        std::io::Error::from_raw_os_error(libc::EAGAIN)
    );
    // Let a child left behind end: its pipe `fd` is closed by now.
    until_ended_or_zombie(child);
    assert_eq!(
        state_of(child),
        None,
        "{name} returned when reading {stream} failed, but never waited \
         for the child, which stays a zombie: wait for it first, then \
         return the error"
    );
}

/// A shell that waits until the file `go` exists, then writes a byte to its
/// file descriptor `fd` every hundredth of a second until that fails.
pub(super) fn writes_after(go: &Path, fd: i32) -> Command {
    let script = r#"while [ ! -e "$1" ]; do sleep 0.01; done
        while printf x >&"$2"; do sleep 0.01; done"#;
    let mut command = shell(script);
    command.arg("sh").arg(go).arg(fd.to_string());
    command
}

/// Waits for the child that runs `writes_after(go, fd)`, and returns its
/// pid and the pipe its `fd` is.
pub(super) fn child_running(go: &Path, fd: i32) -> (u32, String) {
    loop {
        let found = unwaited_children().into_iter().find_map(|pid| {
            let cmdline =
                fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let runs_script = cmdline
                .windows(go.as_os_str().len())
                .any(|w| w == go.as_os_str().as_encoded_bytes());
            let pipe = pipe_of(Path::new(&format!("/proc/{pid}/fd/{fd}")))?;
            runs_script.then_some((pid, pipe))
        });
        match found {
            Some(found) => break found,
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Makes this process's own ends of `pipe` non-blocking, so that the first
/// read that finds it empty fails with `WouldBlock` instead of waiting.
pub(super) fn make_reads_fail(pipe: &str) {
    unsafe extern "C" {
        fn fcntl(fd: i32, cmd: i32, ...) -> i32;
    }
    const F_GETFL: i32 = 3;
    const F_SETFL: i32 = 4;
    const O_NONBLOCK: i32 = 0o4000;
    for entry in fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(Result::ok)
    {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if fd > 2 && pipe_of(&entry.path()).as_deref() == Some(pipe) {
            // SAFETY: `fcntl` with F_GETFL and F_SETFL only reads and sets
            // the flags of an open descriptor of this process; a closed one
            // makes it fail harmlessly.
            unsafe {
                let flags = fcntl(fd, F_GETFL);
                if flags >= 0 {
                    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
                }
            }
        }
    }
}

/// The state letter of process `pid` (`Z` for a zombie), or `None` once it
/// is gone.
pub(super) fn state_of(pid: u32) -> Option<char> {
    let stat =
        fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, r)| r).trim();
    after_name.chars().next()
}

/// Waits until process `pid` is gone or a zombie.
pub(super) fn until_ended_or_zombie(pid: u32) {
    while !matches!(state_of(pid), None | Some('Z')) {
        std::thread::sleep(Duration::from_millis(1));
    }
}
