//! Checks of `pipeline` about how its stages end: a write after the next
//! stage has let go of its stdin, and a failed wait for a stage in the
//! middle.

use super::*;

use course::grader::task;

/// The last stage closes its stdin and goes on (as a stage that exits
/// would, for the pipe); the first stage writes a single byte, which the
/// pipe has room for, only once that is done and the thread that called
/// `pipeline` sleeps (reading the output, or waiting): it has started
/// every stage, so a right `pipeline` holds no stage's `Command` any more.
/// No read end of the pipe between the two is left open, so that write
/// fails with a broken pipe, and the first stage exits with 70. A parent
/// that still holds a read end (in the stage's `Command`, dropped only once
/// the output is read) takes the byte instead, and the first stage
/// succeeds.
pub(super) fn a_write_after_the_reader_left() {
    let scratch = scratch();
    let [closed, go, written] = ["stdin-closed", "may-write", "byte-written"]
        .map(|name| scratch.path().join(name));
    let mut first = shell(
        r#"trap '' PIPE
        while [ ! -e "$1" ]; do sleep 0.01; done
        if printf x; then wrote=0; else wrote=70; fi
        : >"$2"
        exit "$wrote""#,
    );
    first.arg("sh").arg(&go).arg(&written);
    let mut last = shell(
        r#"exec 0<&-
        : >"$1"
        while [ ! -e "$2" ]; do sleep 0.01; done
        printf 'done\n'"#,
    );
    last.arg("sh").arg(&closed).arg(&written);
    let (tid_sender, tid) = std::sync::mpsc::channel();
    let running = std::thread::spawn(move || {
        tid_sender.send(task::me().tid).unwrap();
        pipeline(vec![quiet(first), last])
    });
    let tid = tid.recv().unwrap();
    // The last stage runs its script only once it has replaced the
    // starting process (`exec`), which is what the parent's spawn waits
    // for: a sleep seen after that is one after the last spawn. A thread
    // that never sleeps ends the watch too, once it has returned.
    while !closed.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    task::watch_until(tid, || {
        running.is_finished()
            || task::state(tid).is_some_and(|s| s == 'S' || s == 'D')
    });
    fs::write(&go, "").expect("cannot create the flag");
    let (output, exits) = running.join().unwrap().expect("pipeline failed");
    assert_eq!(
        String::from_utf8_lossy(&output),
        "done\n",
        "the output is what the last stage wrote"
    );
    assert_eq!(
        exits,
        vec![Exit::Code(70), Exit::Code(0)],
        "the last stage closed its stdin (as a stage that exits does), then \
         the first stage wrote a byte to the pipe between them: that write \
         should fail with a broken pipe (the stage then exits with 70), \
         yet it did not, so a read end of that pipe was still open, the \
         parent's: a Command keeps the Stdio you give it, so drop each \
         stage's Command as soon as the stage has started, not once the \
         output is read"
    );
}

/// The pid of the child of this process, still running, whose command line
/// holds `marker` (a path): waits until there is one.
fn running_child(marker: &Path) -> u32 {
    let marker = marker.as_os_str().as_encoded_bytes();
    loop {
        let found = unwaited_children().into_iter().find(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .windows(marker.len())
                .any(|w| w == marker)
        });
        match found {
            Some(pid) => break pid,
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Whether thread `tid` of this process is asleep in a system call that
/// waits for a child or another thread (`wait4`, `waitid`, `futex`), or in
/// a sleep between asks (`nanosleep`, `clock_nanosleep`): not in a read.
fn asleep_in_a_wait(tid: i32) -> bool {
    #[cfg(target_arch = "x86_64")]
    const WAITING: Option<[i64; 5]> = Some([61, 247, 202, 35, 230]);
    #[cfg(target_arch = "aarch64")]
    const WAITING: Option<[i64; 5]> = Some([260, 95, 98, 101, 115]);
    // Elsewhere, any sleep counts.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const WAITING: Option<[i64; 5]> = None;
    let asleep = task::state(tid).is_some_and(|s| s == 'S' || s == 'D');
    asleep
        && WAITING
            .zip(task::syscall(tid))
            .is_none_or(|(waiting, number)| waiting.contains(&number))
}

/// Waiting for the middle one of three stages fails: the trial reaps that
/// stage itself once it has ended, while `pipeline` still reads the last
/// stage's output. The last stage then closes its stdout, so the read
/// ends, and goes on until the trial lets it end, which it does once the
/// thread that called `pipeline` sleeps in a wait (or has returned).
/// `pipeline` returns an error, but only once it has waited for the first
/// stage and the last, and the last one ends by itself: it is not killed.
pub(super) fn a_failed_wait_in_the_middle() {
    unsafe extern "C" {
        fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    }
    let scratch = scratch();
    let [may_exit, may_close, may_end, ended] = [
        "middle-may-exit",
        "last-may-close",
        "last-may-end",
        "last-ended",
    ]
    .map(|name| scratch.path().join(name));
    let mut middle = shell(r#"while [ ! -e "$1" ]; do sleep 0.01; done"#);
    middle.arg("sh").arg(&may_exit);
    let mut last = shell(
        r#"while [ ! -e "$1" ]; do sleep 0.01; done
        exec >&-
        while [ ! -e "$2" ]; do sleep 0.01; done
        : >"$3""#,
    );
    last.arg("sh").arg(&may_close).arg(&may_end).arg(&ended);
    let (tid_sender, tid) = std::sync::mpsc::channel();
    let running = std::thread::spawn(move || {
        tid_sender.send(task::me().tid).unwrap();
        pipeline(vec![shell(":"), middle, last])
    });
    let tid = tid.recv().unwrap();
    let middle = running_child(&may_exit);
    fs::write(&may_exit, "").expect("cannot create the flag");
    until_ended_or_zombie(middle);
    // `pipeline` cannot have waited for the middle stage unless it waits
    // before it reads: then there is nothing to check.
    let mut status = 0;
    // SAFETY: `waitpid` only writes the status through a pointer to a
    // local; it reaps a child of this process that has ended.
    let reaped =
        unsafe { waitpid(middle as i32, &raw mut status, 0) } == middle as i32;
    fs::write(&may_close, "").expect("cannot create the flag");
    if reaped {
        // Twice in a row, so that a thread that only passes through a lock
        // does not count. A thread that never sleeps ends the watch too.
        let mut in_a_row = 0;
        task::watch_until(tid, || {
            in_a_row = if asleep_in_a_wait(tid) {
                in_a_row + 1
            } else {
                0
            };
            running.is_finished() || in_a_row >= 2
        });
    }
    fs::write(&may_end, "").expect("cannot create the flag");
    let result = running.join().unwrap();
    if !reaped {
        return;
    }
    // A stage left unwaited counts, still running or a zombie.
    let left = unwaited_children();
    assert!(
        result.is_err(),
        "the second of three stages had been reaped by someone else, so \
         waiting for it failed, yet pipeline returned {result:?}"
    );
    assert!(
        left.is_empty(),
        "waiting for the second of three stages failed (someone else had \
         reaped it), and pipeline returned the error, but left {} other \
         stage(s) behind unwaited for (processes {left:?}): wait for every \
         other stage, the ones before the failed one and the ones after \
         it, whatever order you wait in, then return the error",
        left.len()
    );
    assert!(
        ended.exists(),
        "waiting for the second of three stages failed (someone else had \
         reaped it), and pipeline killed the last stage, which had closed \
         its stdout and was still running: a failed wait says nothing of \
         the other stages; wait for each of them to end by itself, do not \
         kill it"
    );
}

/// The first stage writes lines until its pipe breaks, then makes a file;
/// the second exits at once, without reading; the third is slow to start:
/// its child waits, between fork and exec (so its `spawn` has not
/// returned), until that file exists. A `pipeline` that lets go of each
/// stage's `Command` as soon as it has started holds no read end of the
/// first pipe by then, so the first stage's write breaks and the third
/// stage starts. One that keeps the `Command`s until every stage has
/// started (`iter_mut`, then a `drop` of them all) still holds one: the
/// first stage blocks on the full pipe, the third never starts, and the
/// trial's timeout says why.
pub(super) fn a_slow_start_after_the_reader_left() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let scratch = scratch();
    let broken = scratch.path().join("first-stage-ended");
    let mut first = shell(r#""$1" lines 18446744073709551615; : >"$2""#);
    first.arg("sh").arg(WORKER).arg(&broken);
    let mut last = shell("cat >/dev/null");
    let flag = std::ffi::CString::new(broken.as_os_str().as_bytes())
        .expect("a temporary path has no NUL byte");
    // SAFETY: the closure runs in the child between fork and exec, and only
    // calls `access` and `usleep`, which are async-signal-safe, on a path
    // made before the fork.
    unsafe {
        last.pre_exec(move || {
            while libc::access(flag.as_ptr(), libc::F_OK) != 0 {
                libc::usleep(1000);
            }
            Ok(())
        });
    }
    let (output, exits) =
        pipeline(vec![quiet(first), quiet(shell("exit 0")), quiet(last)])
            .expect("pipeline failed");
    assert!(output.is_empty(), "the last stage writes nothing");
    assert_eq!(
        exits,
        vec![Exit::Code(0); 3],
        "the first stage writes until its reader is gone, the second exits \
         at once, the third reads nothing: each succeeds"
    );
}
