//! The trials of `supervise`.

use super::*;

use course::grader::task;

/// A worker that runs a script of outcomes, one per run.
pub(super) fn scripted(outcomes: &[&str]) -> impl FnMut() -> Command {
    let scratch = scratch();
    let outcomes: Vec<String> =
        outcomes.iter().map(|s| s.to_string()).collect();
    // The closure owns the folder, so it lives as long as the supervisor.
    move || {
        let mut command = Command::new(WORKER);
        let state = scratch.path().join("runs");
        command.arg("script").arg(state).args(&outcomes);
        command
    }
}

pub(super) fn restarts_until_success() {
    let start = scripted(&["abort", "segfault", "exit:3", "ok"]);
    let exits = supervise(start, 5).expect("supervise failed");
    assert_eq!(
        exits,
        vec![
            Exit::Signal(6),
            Exit::Signal(11),
            Exit::Code(3),
            Exit::Code(0)
        ],
        "the worker aborts, segfaults, exits with 3, then succeeds; the \
         supervisor must record each exit and stop after the success"
    );
    // Every non-zero code is a failure that is restarted: each of the
    // sysexits.h codes (64 `EX_USAGE` to 78 `EX_CONFIG`), which some service
    // managers take as "do not restart", too, and so are 1, 127 and 255.
    let codes: Vec<i32> =
        [1].into_iter().chain(64..=78).chain([127, 255]).collect();
    let mut outcomes: Vec<String> =
        codes.iter().map(|code| format!("exit:{code}")).collect();
    outcomes.push("ok".to_string());
    let outcomes: Vec<&str> = outcomes.iter().map(String::as_str).collect();
    let exits = supervise(scripted(&outcomes), 20).expect("supervise failed");
    let mut expected: Vec<Exit> = codes.into_iter().map(Exit::Code).collect();
    expected.push(Exit::Code(0));
    assert_eq!(
        exits, expected,
        "the worker exits with each of these codes in turn, then succeeds: \
         every non-zero code is a failure and is restarted, also each of \
         the sysexits.h codes 64 to 78, EX_NOINPUT (66) and EX_NOPERM (77) \
         included, though running again may not help (no exit code means \"do not restart\" \
         here, whatever systemd's RestartPreventExitStatus or \
         supervisord's exitcodes allow)"
    );
}

/// Two restarts, none, then forty in a row: a worker is started again at
/// once, so forty restarts take no longer than forty-one runs (a delay
/// that doubles at each restart would take days).
pub(super) fn gives_up_after_the_last_restart() {
    let exits = supervise(scripted(&["abort"]), 2).expect("supervise failed");
    assert_eq!(
        exits,
        vec![Exit::Signal(6); 3],
        "max_restarts = 2 means one first run and two restarts"
    );
    let exits = supervise(scripted(&["exit:1"]), 0).expect("supervise failed");
    assert_eq!(exits, vec![Exit::Code(1)], "max_restarts = 0: one run");
    let exits = supervise(scripted(&["exit:2"]), 40).expect("supervise failed");
    assert_eq!(
        exits,
        vec![Exit::Code(2); 41],
        "max_restarts = 40, and the worker always fails: 41 runs"
    );
    // Many runs: every exit is kept, the earliest too. The first run exits
    // with 1, every other one with 2.
    const RESTARTS: usize = 2047;
    let mut runs = 0;
    let start = move || {
        runs += 1;
        shell(if runs == 1 { "exit 1" } else { "exit 2" })
    };
    let exits = supervise(start, RESTARTS).expect("supervise failed");
    let mut expected = vec![Exit::Code(2); RESTARTS + 1];
    expected[0] = Exit::Code(1);
    assert!(
        exits == expected,
        "max_restarts = {RESTARTS}, and the worker always fails: {} runs, \
         and every exit is returned, the first (Code(1)) included, but \
         supervise returned {} exits, the first {:?}: keep them all, \
         however many",
        RESTARTS + 1,
        exits.len(),
        exits.first()
    );
    waits_without_asking_again_and_again();
}

/// While a worker runs, the supervisor sleeps in its wait until the worker
/// ends: it does not wake now and then to ask whether it has (`try_wait`
/// and a pause, in a loop, or a `recv_timeout` in a loop), which puts up to
/// a pause between a worker's end and its restart. The worker runs until
/// the trial lets it go. Meanwhile the trial looks at what the supervisor's
/// thread sleeps in (`course::grader::task`), once it sleeps: a wait with a
/// deadline (a sleep, a timed futex) wakes by itself, whatever its length,
/// and is caught at once. Then it reads how many times the thread has gone
/// to sleep, and again at least a second later, once it sleeps again: a
/// thread blocked in its wait all along has not woken. A thread that never
/// sleeps in a wait while its worker runs (it asks again and again, with
/// `try_wait`, whose `WNOHANG` wait returns at once, and a yield or
/// nothing in between) never lets the trial go on, and the timeout says
/// why.
fn waits_without_asking_again_and_again() {
    let scratch = scratch();
    let started = scratch.path().join("started");
    let go = scratch.path().join("go");
    let (tid_sender, tid) = std::sync::mpsc::channel();
    let supervisor = {
        let (started, go) = (started.clone(), go.clone());
        std::thread::spawn(move || {
            tid_sender.send(task::me().tid).expect("the trial is gone");
            supervise(
                move || {
                    let mut command =
                        worker(&["emit-then-wait", go.to_str().unwrap()]);
                    let out = fs::File::create(&started)
                        .expect("cannot create a file");
                    command.stdout(out);
                    command
                },
                0,
            )
        })
    };
    let tid = tid.recv().expect("the supervisor's thread is gone");
    // Waits until `ready`, or until the supervisor is done, which it may not
    // be while its worker runs: then its panic goes on, or its result is
    // reported.
    let until = |ready: &dyn Fn() -> bool| {
        while !ready() {
            if supervisor.is_finished() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    };
    // The worker has printed, so it runs its own program: the supervisor's
    // start has returned, and it now watches the worker. It sleeps (state
    // `S`) only in a wait of its own from then on.
    let printed = || fs::metadata(&started).is_ok_and(|file| file.len() > 0);
    let deadline = std::cell::RefCell::new(None);
    let asleep = || match sleep_of(tid) {
        Sleep::Awake => false,
        Sleep::UntilWoken => true,
        Sleep::UntilADeadline(line) => {
            deadline.replace(Some(line));
            true
        }
    };
    let mut woken = None;
    if until(&printed) && until(&asleep) && deadline.borrow().is_none() {
        let before = task::sleeps(tid);
        // A lower bound only: at least this long, however loaded the
        // machine.
        std::thread::sleep(Duration::from_secs(1));
        if until(&asleep) {
            woken = Some(task::sleeps(tid) - before);
        }
    }
    fs::write(&go, "").expect("cannot create the flag");
    let result = supervisor
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
    if let Some(line) = deadline.take() {
        panic!(
            "while its worker ran, the supervisor's thread slept in a wait \
             with a deadline (/proc said `{line}`: a sleep or a timed \
             futex), which wakes by itself to ask again: wait for the \
             worker (Child::wait, or status()), which sleeps until it ends, \
             rather than asking try_wait, or recv_timeout, in a loop"
        );
    }
    let woken = woken.unwrap_or_else(|| {
        panic!(
            "supervise returned {result:?} while its worker still ran: it \
             must wait until the worker ends"
        )
    });
    let exits = result.expect("supervise failed");
    assert_eq!(
        exits,
        vec![Exit::Code(0)],
        "the worker succeeds once let go"
    );
    assert_eq!(
        woken, 0,
        "while its worker ran, the supervisor's thread woke {woken} time(s) \
         in a second or a little more: wait for the worker (Child::wait, or \
         status()), which sleeps until it ends, rather than asking try_wait \
         now and then with a pause in between, which restarts a crashed \
         worker only at the end of the pause"
    );
}

/// How a thread is asleep, if it is.
enum Sleep {
    /// It runs, waits for a CPU, or only passes through a wait that returns
    /// at once (`try_wait`'s `WNOHANG`).
    Awake,
    /// It sleeps until something wakes it: a child's end, another thread.
    UntilWoken,
    /// It sleeps until a deadline at the latest (the line `/proc` gave):
    /// it wakes by itself.
    UntilADeadline(String),
}

/// How thread `tid` is asleep just now, from its state and its system call.
fn sleep_of(tid: task::Tid) -> Sleep {
    // The numbers of wait4 and waitid, and where their options are among
    // the fields of `/proc/<tid>/syscall` (the number first, then the
    // arguments).
    #[cfg(target_arch = "x86_64")]
    const WAITS: Option<[(i64, usize); 2]> = Some([(61, 3), (247, 4)]);
    #[cfg(target_arch = "aarch64")]
    const WAITS: Option<[(i64, usize); 2]> = Some([(260, 3), (95, 4)]);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const WAITS: Option<[(i64, usize); 2]> = None;
    const WNOHANG: u64 = 1;
    if !task::asleep(tid) {
        return Sleep::Awake;
    }
    match task::wait(tid) {
        None => Sleep::Awake,
        Some((task::Wait::UntilADeadline, line)) => Sleep::UntilADeadline(line),
        Some((task::Wait::UntilWoken, _)) => Sleep::UntilWoken,
        Some((task::Wait::Elsewhere, line)) => {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let number = fields.first().and_then(|n| n.parse::<i64>().ok());
            let options = |at: usize| {
                fields.get(at).and_then(|arg| {
                    u64::from_str_radix(arg.trim_start_matches("0x"), 16).ok()
                })
            };
            // A wait for a child that returns at once if none has ended
            // sleeps only for an instant, if at all.
            let at_once = WAITS.into_iter().flatten().any(|(call, at)| {
                number == Some(call)
                    && options(at).is_some_and(|o| o & WNOHANG != 0)
            });
            if at_once {
                Sleep::Awake
            } else {
                Sleep::UntilWoken
            }
        }
    }
}

/// `start` is called once per run, no more: a `start` with side effects
/// (one that counts, or reserves a port) sees only real runs.
pub(super) fn leaves_a_success_alone() {
    let starts = std::cell::Cell::new(0);
    let mut script = scripted(&["ok", "abort"]);
    let exits = supervise(
        || {
            starts.set(starts.get() + 1);
            script()
        },
        3,
    )
    .unwrap();
    assert_eq!(exits, vec![Exit::Code(0)], "a success is not restarted");
    assert_eq!(
        starts.get(),
        1,
        "the worker ran once, yet start was called {} times: build a \
         command only for a run that happens",
        starts.get()
    );
    let starts = std::cell::Cell::new(0);
    let mut script = scripted(&["abort", "exit:3", "ok"]);
    let exits = supervise(
        || {
            starts.set(starts.get() + 1);
            script()
        },
        5,
    )
    .unwrap();
    assert_eq!(exits.len(), 3, "abort, exit 3, then a success: {exits:?}");
    assert_eq!(
        starts.get(),
        3,
        "the worker ran three times, yet start was called {} times: call \
         it once per run",
        starts.get()
    );
}

/// The worker's stdout and stderr are left as `start` set them, and the
/// supervisor does not pipe them: a worker that writes far more than a
/// pipe holds still ends.
pub(super) fn leaves_the_workers_output_alone() {
    const MIB: usize = 1 << 20;
    let scratch = scratch();
    for size in [5, MIB] {
        let (out, err) =
            (scratch.path().join("out"), scratch.path().join("err"));
        let exits = supervise(
            || {
                let mut command = worker(&["flood", &size.to_string()]);
                command
                    .stdout(fs::File::create(&out).unwrap())
                    .stderr(fs::File::create(&err).unwrap());
                command
            },
            0,
        )
        .expect("supervise failed");
        assert_eq!(exits, vec![Exit::Code(0)]);
        for (name, file) in [("stdout", &out), ("stderr", &err)] {
            assert_eq!(
                fs::read(file).unwrap().len(),
                size,
                "the worker's {name} goes to a file (set by start) and it \
                 wrote {size} bytes there; the supervisor must leave the \
                 worker's {name} as start set it"
            );
        }
    }
    // The worker's stdin is empty, even when the supervisor's own holds
    // input: it never reads the supervisor's input, on a restart neither.
    // It is open for reading: `cat` reads it to its end and succeeds. The
    // first two runs fail (exit 1) once `cat` is done, the third succeeds.
    give_the_parent_a_stdin(b"the supervisor's input\n");
    let read = scratch.path().join("read");
    let errors = scratch.path().join("errors");
    let mut runs = 0;
    let exits = supervise(
        || {
            runs += 1;
            let mut command =
                shell(r#"cat >>"$1" 2>>"$2" || exit 2; exit "$3""#);
            let code = if runs < 3 { "1" } else { "0" };
            command.arg("sh").arg(&read).arg(&errors).arg(code);
            command
        },
        5,
    )
    .expect("supervise failed");
    let errors = fs::read_to_string(&errors).unwrap_or_default();
    assert!(
        errors.is_empty(),
        "the worker's `cat` could not read its stdin ({}): the worker's \
         stdin must be open for reading and at its end, as Stdio::null() \
         gives it; /dev/null opened for writing (File::create) cannot be \
         read",
        errors.trim()
    );
    assert_eq!(
        fs::read_to_string(&read).unwrap_or_default(),
        "",
        "a worker read the supervisor's own stdin (the worker failed twice \
         and was started three times): give every run, each restart \
         included, an empty stdin (Stdio::null())"
    );
    assert_eq!(
        exits,
        vec![Exit::Code(1), Exit::Code(1), Exit::Code(0)],
        "the worker reads its stdin, then fails twice and succeeds"
    );
    // A `start` that leaves stdout and stderr alone: the worker writes to
    // the supervisor's own (the same open files), and says which they are,
    // and what its stdin is: `/dev/null`, not a pipe.
    let seen = scratch.path().join("seen");
    let exits = supervise(
        || {
            // The shell reads where its own stdin, stdout and stderr go before it
            // opens the file (`$$` is the shell, also in `$(...)`).
            let mut command = shell(
                r#"out=$(readlink /proc/$$/fd/1); err=$(readlink /proc/$$/fd/2)
                input=$(readlink /proc/$$/fd/0)
                printf '%s\n%s\n%s\n' "$out" "$err" "$input" >"$1""#,
            );
            command.arg("sh").arg(&seen);
            command
        },
        0,
    )
    .expect("supervise failed");
    assert_eq!(exits, vec![Exit::Code(0)]);
    let own = |fd: u32| {
        fs::read_link(format!("/proc/self/fd/{fd}"))
            .expect("cannot read this process's own file descriptor")
            .to_string_lossy()
            .into_owned()
    };
    let seen = fs::read_to_string(&seen).expect("the worker said nothing");
    let seen: Vec<&str> = seen.lines().collect();
    assert_eq!(
        seen.get(2).copied(),
        Some("/dev/null"),
        "the worker's stdin is not /dev/null but {:?}: give every run \
         Stdio::null(), not a pipe (even one nobody writes to and that is \
         closed before the wait)",
        seen.get(2)
    );
    assert_eq!(
        seen[..2],
        [own(1), own(2)],
        "the worker's start left its stdout and stderr alone, so they are \
         the supervisor's own ({} and {}); the lines are where the worker's \
         went: do not take them over (Command::output pipes them, and \
         throws what it collects away)",
        own(1),
        own(2)
    );
}

/// SIGKILL, SIGTERM and SIGINT are failures like any other signal, and so
/// are SIGHUP and SIGPIPE, which systemd counts as a clean end: the first
/// run kills itself with SIGKILL, the second with SIGTERM, the third with
/// SIGINT (as Ctrl-C would), the fourth with SIGHUP, the fifth with
/// SIGPIPE, the sixth succeeds.
pub(super) fn restarts_a_killed_worker() {
    let mut runs = 0;
    let start = move || {
        runs += 1;
        match runs {
            1 => shell("kill -KILL $$"),
            2 => shell("kill -TERM $$"),
            3 => interrupted_shell(),
            4 => shell_killed_by(1, "HUP"),
            5 => shell_killed_by(13, "PIPE"),
            6 => shell_killed_by(3, "QUIT"),
            _ => worker(&["exit", "0"]),
        }
    };
    let exits = supervise(start, 7).expect("supervise failed");
    assert_eq!(
        exits,
        vec![
            Exit::Signal(9),
            Exit::Signal(15),
            Exit::Signal(2),
            Exit::Signal(1),
            Exit::Signal(13),
            Exit::Signal(3),
            Exit::Code(0)
        ],
        "a worker killed by SIGKILL, SIGTERM, SIGINT, SIGHUP, SIGPIPE or \
         SIGQUIT failed too (\"a non-zero code or a signal\"), so it is started \
         again: no signal is a clean end here, whatever systemd counts as one"
    );
}

/// A shell that kills itself with SIGINT (as Ctrl-C would).
fn interrupted_shell() -> Command {
    shell_killed_by(2, "INT")
}

/// A shell that kills itself with signal `number`, named `name` for
/// `kill`. A shell keeps ignoring a signal that was ignored when it
/// started, so the child's action for that signal is set back to its
/// default before the shell starts, whatever the grader's was.
pub(super) fn shell_killed_by(number: i32, name: &str) -> Command {
    use std::os::unix::process::CommandExt;
    unsafe extern "C" {
        fn signal(signal: i32, handler: usize) -> usize;
    }
    const SIG_DFL: usize = 0;
    let mut command = shell(&format!("kill -{name} $$"));
    // SAFETY: the closure runs in the child between fork and exec, and only
    // calls `signal`, which is async-signal-safe and touches no memory of
    // the parent's.
    unsafe {
        command.pre_exec(move || {
            signal(number, SIG_DFL);
            Ok(())
        });
    }
    command
}

pub(super) fn shell(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    command
}

/// A worker that cannot be started has no exit: the error is returned at
/// once, without a made-up exit and without another try.
pub(super) fn returns_a_start_error() {
    let scratch = scratch();
    let missing = scratch.path().join("no-such-program");
    let starts = std::cell::Cell::new(0);
    let result = supervise(
        || {
            starts.set(starts.get() + 1);
            Command::new(&missing)
        },
        3,
    );
    let error = match result {
        Ok(exits) => panic!(
            "the worker cannot be started, yet supervise returned \
             Ok({exits:?}): return the io::Error, a process that never \
             started has no exit"
        ),
        Err(error) => error,
    };
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound, "{error}");
    assert_eq!(starts.get(), 1, "a failed start is not retried");
    // A failed start after a crash: the crash is not enough to go on.
    let mut runs = 0;
    let result = supervise(
        || {
            runs += 1;
            if runs == 1 {
                worker(&["abort"])
            } else {
                Command::new(&missing)
            }
        },
        3,
    );
    assert!(
        result.is_err(),
        "the restart cannot be started, yet supervise returned {result:?}"
    );
    supervise_errors::an_unrunnable_program_is_an_error();
    supervise_errors::a_failed_fork_is_not_tried_again();
    supervise_errors::a_failed_wait_is_an_error();
    supervise_errors::a_panic_in_start_goes_on();
}

/// The limit is a limit, not a size: a worker that succeeds at once is run
/// once, however many restarts it was allowed. A limit that does not fit
/// in 32 bits still allows restarts: `1 << 32` cut to a `u32` is `0`. So
/// does one that does not fit in an `i64`: `usize::MAX` read as an `i64` is
/// `-1`, and `1 << 63` is the most negative `i64`.
pub(super) fn takes_any_limit() {
    for limit in [usize::MAX, usize::MAX - 1, 1 << 40] {
        let exits =
            supervise(scripted(&["ok"]), limit).expect("supervise failed");
        assert_eq!(
            exits,
            vec![Exit::Code(0)],
            "max_restarts = {limit}: the first run succeeds"
        );
    }
    for limit in [1 << 32, 1 << 33, usize::MAX, 1 << 63] {
        let exits = supervise(scripted(&["abort", "ok"]), limit)
            .expect("supervise failed");
        assert_eq!(
            exits,
            vec![Exit::Signal(6), Exit::Code(0)],
            "max_restarts = {limit}: the worker aborts, then succeeds; a \
             limit of {limit} allows that restart (counted in a u32, it \
             would be {}; read as an i64, {})",
            limit as u32,
            limit as i64
        );
    }
}
