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
            "ch02::exit_of::tells_codes_from_signals",
            2,
            tells_codes_from_signals,
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
