//! Chapter 2, Processes: five exercises.
//!
//! Start child processes, read everything they write, tell an exit code
//! from a signal, keep a crashing worker going, wire three processes into a
//! pipeline, and keep a secret out of a child's environment.
//!
//! - Book: chapter 2, "Processes", section "Exercises".
//! - Graded by `exercises/tests/graded/ch02_processes.rs`:
//!   `cargo course grade ch02`. The tests run the `worker` binary of
//!   this crate (see `course::worker`) as the child process.
//!
//! The tests check behaviour, and where the chapter is about concurrency,
//! that the work really runs concurrently: a pipeline whose stages run one
//! after another, or a reader that drains one pipe before the other, times
//! out and is told why.

// Compiled while this module is on: `course grade` leaves out, or stubs
// out again, what does not compile, so that it costs only its own points.
#![cfg(module = "ch02_processes")]

use std::io;
use std::path::Path;
use std::process::{Command, ExitStatus};

/// Everything a finished child process left behind.
#[derive(Debug)]
pub struct Captured {
    /// All the bytes it wrote to its standard output.
    pub stdout: Vec<u8>,
    /// All the bytes it wrote to its standard error.
    pub stderr: Vec<u8>,
    /// How it ended.
    pub status: ExitStatus,
}

/// How a child process ended: it exited with a code, or a signal killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit` (or returned from `main`) with this code.
    Code(i32),
    /// This signal ended it (6 is SIGABRT, 9 SIGKILL, 11 SIGSEGV).
    Signal(i32),
}

/// Runs `command` to its end with stdin empty, and returns everything it
/// wrote to stdout and stderr, however much that is, and its status. The
/// child is waited for even when reading its output fails, so it never
/// stays behind as a zombie.
pub fn capture(command: &mut Command) -> io::Result<Captured> {
    // TODO(ch02): pipe stdout and stderr, and read both to their end.
    let _ = command;
    todo!("ch02: capture")
}

/// Tells an exit code from a killing signal.
pub fn exit_of(status: ExitStatus) -> Exit {
    // TODO(ch02): see std::os::unix::process::ExitStatusExt.
    let _ = status;
    todo!("ch02: exit_of")
}

/// Runs the worker that `start` builds, and starts it again each time it
/// fails (a non-zero code or a signal), at most `max_restarts` times.
/// Returns every exit in order; the last one is a success unless the
/// restarts ran out. A crash of the worker never harms the supervisor.
pub fn supervise(
    mut start: impl FnMut() -> Command,
    max_restarts: usize,
) -> io::Result<Vec<Exit>> {
    // TODO(ch02): run, record the exit, restart while it fails.
    let _ = (&mut start, max_restarts);
    todo!("ch02: supervise")
}

/// Runs the commands as a pipeline, `a | b | c`: each stage's stdout feeds
/// the next stage's stdin, the first reads nothing, and all stages run at
/// the same time. Returns the last stage's output and every stage's exit,
/// in stage order.
///
/// As in a shell, a stage that exits early stops the stage before it: that
/// stage's next write to the pipe between them fails with a broken pipe
/// (the write returns `EPIPE`, or `SIGPIPE` kills the writer), so even
/// `yes | head -n 1` ends. If a stage cannot be started, the stages
/// already started are killed and waited for, and the error is returned.
pub fn pipeline(mut stages: Vec<Command>) -> io::Result<(Vec<u8>, Vec<Exit>)> {
    // TODO(ch02): start every stage, each reading the previous one's pipe.
    let _ = &mut stages;
    todo!("ch02: pipeline")
}

/// Runs `command` in `dir` with an empty environment but for `PATH` (so it
/// can still find programs), and captures what it wrote. The parent's own
/// environment and working directory do not change.
pub fn run_isolated(command: &mut Command, dir: &Path) -> io::Result<Captured> {
    // TODO(ch02): configure the child's environment and directory.
    let _ = (command, dir);
    todo!("ch02: run_isolated")
}
