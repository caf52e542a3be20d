//! Graded trials of chapter 2, Processes.
//!
//! The child process is always this crate's `worker` binary (see
//! `course::worker`). The "how" checks: the worker fills both pipes, so a
//! reader that drains one before the other blocks; the first stage of a
//! pipeline waits for a file that only the last stage creates, so stages
//! started one after another never finish; in another pipeline the first
//! stage writes forever and the last exits after a line, so a parent that
//! keeps a read end of a pipe between stages never finishes either.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch02")]

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use course::grader::Trial;
use exercises::ch02_processes::{
    Exit, capture, exit_of, pipeline, run_isolated, supervise,
};
use tempfile::TempDir;

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

/// Deadline for trials whose only way to hang is a blocked pipe or stage.
const PIPE_TIMEOUT: Duration = Duration::from_secs(5);

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new(
            "ch02::capture::returns_output_and_status",
            2,
            returns_output_and_status,
        ),
        Trial::new(
            "ch02::capture::drains_both_pipes_at_once",
            3,
            drains_both_pipes_at_once,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "the worker wrote 1 MiB to stdout and 1 MiB to stderr and \
             blocked on a full pipe: read both pipes at the same time \
             (a thread for one of them), not one after the other",
        ),
        Trial::new(
            "ch02::capture::returns_the_bytes_unchanged",
            1,
            returns_the_bytes_unchanged,
        ),
        Trial::new(
            "ch02::capture::gives_the_child_an_empty_stdin",
            1,
            gives_the_child_an_empty_stdin,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "the child read its stdin and never saw its end: give it an \
             empty stdin (Stdio::null()), not a pipe the parent keeps open",
        ),
        Trial::new(
            "ch02::capture::waits_even_when_a_read_fails",
            1,
            waits_even_when_a_read_fails,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "reading stdout failed, but capture kept its end of the pipe \
             open, so the child could not end: drop the pipe, then wait",
        ),
        Trial::new(
            "ch02::exit_of::tells_codes_from_signals",
            2,
            tells_codes_from_signals,
        ),
        Trial::new(
            "ch02::exit_of::reads_the_signal_not_the_raw_status",
            1,
            reads_the_signal_not_the_raw_status,
        ),
        Trial::new(
            "ch02::exit_of::keeps_a_code_above_128",
            1,
            keeps_a_code_above_128,
        ),
        Trial::new(
            "ch02::supervise::restarts_until_success",
            2,
            restarts_until_success,
        ),
        Trial::new(
            "ch02::supervise::gives_up_after_the_last_restart",
            1,
            gives_up_after_the_last_restart,
        ),
        Trial::new(
            "ch02::supervise::leaves_a_success_alone",
            1,
            leaves_a_success_alone,
        ),
        Trial::new(
            "ch02::supervise::restarts_a_killed_worker",
            1,
            restarts_a_killed_worker,
        ),
        Trial::new(
            "ch02::supervise::returns_a_start_error",
            1,
            returns_a_start_error,
        ),
        Trial::new("ch02::supervise::takes_any_limit", 1, takes_any_limit),
        Trial::new(
            "ch02::pipeline::runs_the_stages_at_once",
            3,
            runs_the_stages_at_once,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "the first stage waits until the last stage has read its \
             first line: start every stage before waiting for any",
        ),
        Trial::new(
            "ch02::pipeline::streams_more_than_a_pipe_holds",
            2,
            streams_more_than_a_pipe_holds,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "1.3 MB flow through the pipeline, more than a pipe holds: \
             every stage must run while the others do",
        ),
        Trial::new(
            "ch02::pipeline::reports_every_stage",
            1,
            reports_every_stage,
        ),
        Trial::new(
            "ch02::pipeline::an_early_exit_stops_the_stages_before",
            2,
            an_early_exit_stops_the_stages_before,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "the last stage exited after one line, but the stages before \
             it kept writing forever, as if `yes | head -n 1` never ended: \
             a writer learns that its reader is gone only when no read end \
             of the pipe is left open, and a Command keeps the Stdio you \
             give it, so drop each stage's Command once it has started",
        ),
        Trial::new(
            "ch02::pipeline::stops_the_started_stages_on_a_failed_start",
            1,
            stops_the_started_stages_on_a_failed_start,
        ),
        Trial::new(
            "ch02::pipeline::the_first_stage_reads_nothing",
            1,
            the_first_stage_reads_nothing,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "the first stage read its stdin and never saw its end: give it \
             an empty stdin (Stdio::null())",
        ),
        Trial::new("ch02::pipeline::takes_no_stages", 1, takes_no_stages),
        Trial::new(
            "ch02::pipeline::leaves_stderr_to_the_stage",
            1,
            leaves_stderr_to_the_stage,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "the stage wrote 1 MiB to its stderr and blocked: leave each \
             stage's stderr as its Command has it, do not pipe it unread",
        ),
        Trial::new(
            "ch02::run_isolated::hides_the_parents_secret",
            2,
            hides_the_parents_secret,
        ),
        Trial::new("ch02::run_isolated::keeps_path", 1, keeps_path),
        Trial::new(
            "ch02::run_isolated::starts_in_the_given_directory",
            1,
            starts_in_the_given_directory,
        ),
        Trial::new(
            "ch02::run_isolated::keeps_the_parents_directory_meanwhile",
            1,
            keeps_the_parents_directory_meanwhile,
        )
        .timeout(PIPE_TIMEOUT),
        Trial::new(
            "ch02::run_isolated::keeps_a_path_that_is_not_text",
            1,
            keeps_a_path_that_is_not_text,
        ),
        Trial::new(
            "ch02::run_isolated::drains_both_pipes_at_once",
            1,
            run_isolated_drains_both_pipes,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "the worker wrote 1 MiB to stdout and 1 MiB to stderr and \
             blocked on a full pipe: read both pipes at the same time",
        ),
    ]
}

fn worker(args: &[&str]) -> Command {
    let mut command = Command::new(WORKER);
    command.args(args);
    command
}

/// A fresh, empty folder, removed when the value is dropped.
fn scratch() -> TempDir {
    tempfile::tempdir().expect("cannot create a temporary folder")
}

fn returns_output_and_status() {
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
}

fn drains_both_pipes_at_once() {
    const MIB: usize = 1 << 20;
    let captured = capture(&mut worker(&["flood", "1048576"]))
        .expect("capture failed to run the worker");
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
}

/// Output that is not text, with `\r\n` and a final newline, must come
/// back byte for byte.
fn returns_the_bytes_unchanged() {
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
fn give_the_parent_a_stdin(data: &[u8]) {
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
fn gives_the_child_an_empty_stdin() {
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
}

/// The pipe that a file descriptor is, as `pipe:[inode]`, if it is one.
fn pipe_of(link: &Path) -> Option<String> {
    let target = fs::read_link(link).ok()?;
    let target = target.to_str()?;
    target.starts_with("pipe:").then(|| target.to_string())
}

/// Makes reading stdout fail: once the child runs, the trial makes its own
/// end of the child's stdout pipe non-blocking, so the first read that
/// finds the pipe empty fails with `WouldBlock` instead of waiting. The
/// child then writes a byte a while until its stdout pipe breaks, so it
/// ends once the parent drops its end. The child must not be left a zombie.
fn waits_even_when_a_read_fails() {
    unsafe extern "C" {
        fn fcntl(fd: i32, cmd: i32, ...) -> i32;
    }
    const F_GETFL: i32 = 3;
    const F_SETFL: i32 = 4;
    const O_NONBLOCK: i32 = 0o4000;
    let scratch = scratch();
    let go = scratch.path().join("go");
    let script = r#"while [ ! -e "$1" ]; do sleep 0.01; done
        while printf x; do sleep 0.01; done"#;
    let mut command = shell(script);
    command.arg("sh").arg(&go);
    let running = std::thread::spawn(move || capture(&mut command));
    // Find the child once it runs the script, and its stdout pipe.
    let (child, pipe) = loop {
        let found = unwaited_children().into_iter().find_map(|pid| {
            let cmdline =
                fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let runs_script = cmdline
                .windows(go.as_os_str().len())
                .any(|w| w == go.as_os_str().as_encoded_bytes());
            let pipe = pipe_of(Path::new(&format!("/proc/{pid}/fd/1")))?;
            runs_script.then_some((pid, pipe))
        });
        match found {
            Some(found) => break found,
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    for entry in fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(Result::ok)
    {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if fd > 2 && pipe_of(&entry.path()).as_ref() == Some(&pipe) {
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
    fs::write(&go, "").expect("cannot create the flag");
    let result = running.join().unwrap();
    assert!(
        result.is_err(),
        "reading the child's stdout failed, yet capture returned {result:?}"
    );
    // Let a child left behind end: its stdout pipe is closed by now.
    let state = || {
        let stat = fs::read_to_string(format!("/proc/{child}/stat"))
            .unwrap_or_default();
        let after_name = stat.rsplit_once(')').map_or("", |(_, r)| r).trim();
        after_name.chars().next()
    };
    while !matches!(state(), None | Some('Z')) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        state(),
        None,
        "capture returned when reading stdout failed, but never waited for \
         the child, which stays a zombie: wait for it first, then return \
         the error"
    );
}

fn tells_codes_from_signals() {
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
}

/// A process killed by a signal that dumped core has the core-dump bit
/// (0x80) set in its raw wait status, next to the signal number. The
/// grader forbids core files, so the statuses are built by hand.
fn reads_the_signal_not_the_raw_status() {
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
}

/// A code above 128 is a code: only a shell's `$?` folds signals into it.
fn keeps_a_code_above_128() {
    let status = |args: &[&str]| worker(args).status().unwrap();
    for code in ["134", "137", "139", "255"] {
        assert_eq!(
            exit_of(status(&["exit", code])),
            Exit::Code(code.parse().unwrap()),
            "the worker called exit({code}); no signal killed it (only a \
             shell reports a killed child as 128 + signal)"
        );
    }
}

/// A worker that runs a script of outcomes, one per run.
fn scripted(outcomes: &[&str]) -> impl FnMut() -> Command {
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

fn restarts_until_success() {
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
}

fn gives_up_after_the_last_restart() {
    let exits = supervise(scripted(&["abort"]), 2).expect("supervise failed");
    assert_eq!(
        exits,
        vec![Exit::Signal(6); 3],
        "max_restarts = 2 means one first run and two restarts"
    );
    let exits = supervise(scripted(&["exit:1"]), 0).expect("supervise failed");
    assert_eq!(exits, vec![Exit::Code(1)], "max_restarts = 0: one run");
}

fn leaves_a_success_alone() {
    let exits = supervise(scripted(&["ok", "abort"]), 3).unwrap();
    assert_eq!(exits, vec![Exit::Code(0)], "a success is not restarted");
}

/// SIGKILL and SIGTERM are failures like any other signal: the first run
/// kills itself with SIGKILL, the second with SIGTERM, the third succeeds.
fn restarts_a_killed_worker() {
    let mut runs = 0;
    let start = move || {
        runs += 1;
        match runs {
            1 => shell("kill -KILL $$"),
            2 => shell("kill -TERM $$"),
            _ => worker(&["exit", "0"]),
        }
    };
    let exits = supervise(start, 5).expect("supervise failed");
    assert_eq!(
        exits,
        vec![Exit::Signal(9), Exit::Signal(15), Exit::Code(0)],
        "a worker killed by SIGKILL or SIGTERM failed too (\"a non-zero \
         code or a signal\"), so it is started again"
    );
}

fn shell(script: &str) -> Command {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    command
}

/// A worker that cannot be started has no exit: the error is returned at
/// once, without a made-up exit and without another try.
fn returns_a_start_error() {
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
}

/// The limit is a limit, not a size: a worker that succeeds at once is run
/// once, however many restarts it was allowed.
fn takes_any_limit() {
    for limit in [usize::MAX, usize::MAX - 1, 1 << 40] {
        let exits =
            supervise(scripted(&["ok"]), limit).expect("supervise failed");
        assert_eq!(
            exits,
            vec![Exit::Code(0)],
            "max_restarts = {limit}: the first run succeeds"
        );
    }
}

fn runs_the_stages_at_once() {
    let scratch = scratch();
    let flag = scratch.path().join("first-line-arrived");
    let flag = flag.to_str().unwrap();
    let (output, exits) = pipeline(vec![
        worker(&["emit-then-wait", flag]),
        worker(&["upper"]),
        worker(&["flag-on-first-line", flag]),
    ])
    .expect("pipeline failed");
    assert_eq!(String::from_utf8_lossy(&output), "PING\n");
    assert_eq!(exits, vec![Exit::Code(0); 3]);
}

fn streams_more_than_a_pipe_holds() {
    const LINES: usize = 100_000;
    let (output, exits) = pipeline(vec![
        worker(&["lines", "100000"]),
        worker(&["upper"]),
        worker(&["upper"]),
    ])
    .expect("pipeline failed");
    let text = String::from_utf8(output).expect("the output is text");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), LINES, "expected {LINES} lines out");
    assert_eq!(lines[0], "LINE 1");
    assert_eq!(lines[LINES - 1], format!("LINE {LINES}"));
    assert_eq!(exits, vec![Exit::Code(0); 3]);
}

fn reports_every_stage() {
    let (output, exits) = pipeline(vec![
        worker(&["lines", "3"]),
        worker(&["upper"]),
        worker(&["drain-then-exit", "5"]),
    ])
    .expect("pipeline failed");
    assert!(output.is_empty(), "the last stage prints nothing");
    assert_eq!(
        exits,
        vec![Exit::Code(0), Exit::Code(0), Exit::Code(5)],
        "one exit per stage, in stage order"
    );
}

/// The parent's stdin holds a line; the first stage must not see it.
fn the_first_stage_reads_nothing() {
    give_the_parent_a_stdin(b"the parent's input\n");
    let (output, exits) =
        pipeline(vec![worker(&["upper"]), worker(&["upper"])])
            .expect("pipeline failed");
    assert_eq!(
        String::from_utf8_lossy(&output),
        "",
        "the first stage read the parent's own stdin: a child inherits it \
         unless you give it another (Stdio::null())"
    );
    assert_eq!(exits, vec![Exit::Code(0); 2]);
}

fn takes_no_stages() {
    let (output, exits) = pipeline(Vec::new()).expect("pipeline failed");
    assert!(output.is_empty(), "no stages print nothing");
    assert!(exits.is_empty(), "no stages have no exits");
}

/// A stage whose stderr goes to a file writes 1 MiB there: the pipeline
/// must not take that stderr over (a pipe nobody reads fills up).
fn leaves_stderr_to_the_stage() {
    const MIB: usize = 1 << 20;
    let scratch = scratch();
    let path = scratch.path().join("stderr");
    let file = fs::File::create(&path).expect("cannot create a file");
    let mut flood = worker(&["flood", "1048576"]);
    flood.stderr(file);
    let (output, exits) = pipeline(vec![flood]).expect("pipeline failed");
    assert_eq!(exits, vec![Exit::Code(0)]);
    assert_eq!(output.len(), MIB, "the output should be 1 MiB");
    let written = fs::read(&path).expect("cannot read the file");
    assert_eq!(
        written.len(),
        MIB,
        "the first stage's stderr should have gone to its file, as its \
         Command said"
    );
}

/// A stage whose stderr goes nowhere: a stage stopped by a broken pipe
/// reports it there, and the grader's output would only repeat it.
fn quiet(mut command: Command) -> Command {
    command.stderr(Stdio::null());
    command
}

/// `yes | head -n 1`: the first stage writes lines forever, the middle one
/// copies them and flags the first, and the last stage exits once that
/// first line has passed. Each earlier stage must then fail to write and
/// end, as in a shell.
fn an_early_exit_stops_the_stages_before() {
    let scratch = scratch();
    let flag = scratch.path().join("first-line-arrived");
    let flag = flag.to_str().unwrap();
    let forever = u64::MAX.to_string();
    let (output, exits) = pipeline(vec![
        quiet(worker(&["lines", &forever])),
        quiet(worker(&["flag-on-first-line", flag])),
        quiet(worker(&["emit-then-wait", flag])),
    ])
    .expect("pipeline failed");
    assert_eq!(
        String::from_utf8_lossy(&output),
        "ping\n",
        "the output is what the last stage wrote"
    );
    assert_eq!(exits.len(), 3, "one exit per stage, got {exits:?}");
    assert_eq!(exits[2], Exit::Code(0), "the last stage succeeds");
    for (stage, exit) in exits[..2].iter().enumerate() {
        assert!(
            matches!(exit, Exit::Code(70) | Exit::Signal(13)),
            "stage {stage} should end on its broken pipe: the worker exits \
             with 70 when a write fails (a program that does not handle \
             SIGPIPE, like yes, dies of signal 13); got {exits:?}"
        );
    }
}

/// The processes this one started that nobody has waited for yet: still
/// running, or zombies. The trial runs in a process of its own, so they
/// are the trial's.
fn unwaited_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default();
            // After the parenthesised command name: state, then the
            // parent's pid.
            let after_name = stat.rsplit_once(')').map_or("", |(_, r)| r);
            after_name.split_whitespace().nth(1) == Some(me.as_str())
        })
        .collect()
}

/// The second stage's program does not exist, so `pipeline` fails; the
/// first stage, which waits for a file that never comes, must not be left
/// running or unwaited for.
fn stops_the_started_stages_on_a_failed_start() {
    let scratch = scratch();
    let flag = scratch.path().join("never");
    let result = pipeline(vec![
        worker(&["emit-then-wait", flag.to_str().unwrap()]),
        Command::new(scratch.path().join("no-such-program")),
    ]);
    let left = unwaited_children();
    // Let a stage left behind end, now that it has been counted.
    fs::write(&flag, "").expect("cannot create the flag");
    assert!(
        result.is_err(),
        "the second stage cannot start, yet pipeline returned {result:?}"
    );
    assert!(
        left.is_empty(),
        "pipeline failed, but left the stage it had started behind \
         (processes {left:?}, running or never waited for): kill and wait \
         for the stages already started before returning the error"
    );
}

/// The secret is set in this trial's own environment, so a child inherits
/// it unless its environment is cleared.
fn set_secret() {
    // SAFETY: the grader runs this trial alone in its own process, on the
    // main thread, before anything has started another thread.
    unsafe { std::env::set_var("COURSE_SECRET_TOKEN", "hunter2") };
}

fn child_environment() -> String {
    set_secret();
    let captured = run_isolated(&mut worker(&["env"]), Path::new("/"))
        .expect("run_isolated failed");
    assert!(captured.status.success());
    String::from_utf8_lossy(&captured.stdout).into_owned()
}

fn hides_the_parents_secret() {
    let env = child_environment();
    assert!(
        !env.contains("hunter2"),
        "the child saw COURSE_SECRET_TOKEN: a child inherits the parent's \
         whole environment unless you clear it"
    );
    let names: Vec<&str> =
        env.lines().filter_map(|l| l.split('=').next()).collect();
    assert_eq!(
        names,
        ["PATH"],
        "the child's environment should hold PATH only"
    );
}

fn keeps_path() {
    let env = child_environment();
    let path = std::env::var("PATH").unwrap();
    assert!(
        env.lines().any(|line| line == format!("PATH={path}")),
        "the child should get the parent's PATH, to find programs"
    );
}

/// Another thread looks at the parent's directory while the child runs: the
/// child waits for a flag that the trial creates only after looking.
fn keeps_the_parents_directory_meanwhile() {
    let scratch = scratch();
    let dir = scratch.path().join("child");
    fs::create_dir(&dir).unwrap();
    let flag = scratch.path().join("looked");
    let before = std::env::current_dir().unwrap();
    let running = {
        let (dir, flag) = (dir.clone(), flag.clone());
        std::thread::spawn(move || {
            run_isolated(
                &mut worker(&["emit-then-wait", flag.to_str().unwrap()]),
                &dir,
            )
        })
    };
    // The child cannot end before the flag exists.
    while unwaited_children().is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let meanwhile = std::env::current_dir().unwrap();
    fs::write(&flag, "").expect("cannot create the flag");
    let captured = running.join().unwrap().expect("run_isolated failed");
    assert_eq!(String::from_utf8_lossy(&captured.stdout), "ping\n");
    assert_eq!(
        meanwhile, before,
        "while the child ran, the parent's own working directory was the \
         child's: every thread of the parent saw it; set the child's with \
         Command::current_dir instead"
    );
    let missing = scratch.path().join("no-such-program");
    let result = run_isolated(&mut Command::new(missing), &dir);
    assert!(result.is_err(), "the program does not exist: {result:?}");
    assert_eq!(
        std::env::current_dir().unwrap(),
        before,
        "a failed start changed the parent's working directory"
    );
}

/// A `PATH` is bytes, like any variable: one that is not UTF-8 reaches the
/// child unchanged (the worker prints it with U+FFFD for the bad byte).
fn keeps_a_path_that_is_not_text() {
    use std::os::unix::ffi::OsStringExt;
    let mut path = b"/not-text-\xff:".to_vec();
    path.extend(std::env::var_os("PATH").unwrap().into_vec());
    let path = std::ffi::OsString::from_vec(path);
    // SAFETY: the grader runs this trial alone in its own process, on the
    // main thread, before anything has started another thread.
    unsafe { std::env::set_var("PATH", &path) };
    let captured = run_isolated(&mut worker(&["env"]), Path::new("/"))
        .expect("run_isolated failed");
    let env = String::from_utf8_lossy(&captured.stdout);
    let expected = format!("PATH={}", path.to_string_lossy());
    assert!(
        env.lines().any(|line| line == expected),
        "the parent's PATH is not UTF-8; the child should get it all the \
         same (std::env::var_os, not var), but its environment was {env:?}"
    );
}

fn run_isolated_drains_both_pipes() {
    const MIB: usize = 1 << 20;
    let captured =
        run_isolated(&mut worker(&["flood", "1048576"]), Path::new("/"))
            .expect("run_isolated failed");
    assert!(captured.status.success(), "the worker should succeed");
    assert_eq!(captured.stdout.len(), MIB, "stdout should be 1 MiB");
    assert_eq!(captured.stderr.len(), MIB, "stderr should be 1 MiB");
}

fn starts_in_the_given_directory() {
    let scratch = scratch();
    let dir = scratch.path();
    let before = std::env::current_dir().unwrap();
    let captured =
        run_isolated(&mut worker(&["pwd"]), dir).expect("run_isolated failed");
    let printed = String::from_utf8_lossy(&captured.stdout);
    assert_eq!(
        Path::new(printed.trim()).canonicalize().unwrap(),
        dir.canonicalize().unwrap(),
        "the child should start in the given directory"
    );
    assert_eq!(
        std::env::current_dir().unwrap(),
        before,
        "the parent's own working directory changed: set the child's with \
         Command::current_dir instead"
    );
}
