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
    Captured, Exit, capture, exit_of, pipeline, run_isolated, supervise,
};
use tempfile::TempDir;

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

/// Deadline for trials whose only way to hang is a blocked pipe or stage.
const PIPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Deadline for a supervisor that restarts a failing worker forty times:
/// only a delay between restarts makes it hang.
const RESTARTS_TIMEOUT: Duration = Duration::from_secs(30);

mod capture;
mod exit_of;
mod failed_capture;
mod late_stderr;
mod pipeline;
mod pipeline_ends;
mod run_isolated;
mod supervise;
mod supervise_errors;
use capture::*;
use exit_of::*;
use pipeline::*;
use run_isolated::*;
use supervise::*;

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new(
            "ch02::capture::returns_output_and_status",
            2,
            returns_output_and_status,
        )
        .on_timeout(
            "the child closed its stdout and stderr and went on running, \
             and capture never slept in a wait for it (nor in a pause \
             between asks): once both pipes are at their end, wait for the \
             child (Child::wait), do not ask try_wait again and again",
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
            "reading stdout or stderr failed (or no thread could start to \
             read one), but capture kept its end of that pipe open while it \
             waited, so the child, blocked writing to it, could not end: \
             drop the pipes you no longer read, then wait; or, with no \
             thread to read stderr, capture read one pipe to its end and \
             then the other, while the child filled the other and waited \
             for it to be read: return the thread's error instead",
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
        )
        .timeout(RESTARTS_TIMEOUT)
        .on_timeout(
            "a worker that always fails, with max_restarts = 40, was still \
             being supervised: restart a failed worker at once, without a \
             delay (a delay that doubles at each restart soon takes hours); \
             or, while a worker ran, the supervisor's thread never slept: \
             wait for the worker (Child::wait), do not ask try_wait again \
             and again (a yield_now in between is no sleep)",
        ),
        Trial::new(
            "ch02::supervise::leaves_a_success_alone",
            1,
            leaves_a_success_alone,
        ),
        Trial::new(
            "ch02::supervise::leaves_the_workers_output_alone",
            1,
            leaves_the_workers_output_alone,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "a worker that writes 1 MiB to its stdout and stderr, which \
             start sends to files, was still running: do not pipe the \
             worker's output (a pipe nobody reads fills up and blocks it)",
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
             every stage must run while the others do, and the last \
             stage's output is read while it runs, also when it is the \
             only stage (a stage that fills its pipe waits until it is \
             read, so waiting for it first never ends)",
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
             give it, so drop each stage's Command once it has started \
             (not once every stage has: a stage slow to start must not \
             keep the stages before it writing)",
        ),
        Trial::new(
            "ch02::pipeline::stops_the_started_stages_on_a_failed_start",
            1,
            stops_the_started_stages_on_a_failed_start,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "a stage could not start, and pipeline waited for the stages it \
             had started without stopping them first: they wait for input \
             that never comes; kill them, then wait for them",
        ),
        Trial::new(
            "ch02::pipeline::waits_even_when_the_read_fails",
            1,
            waits_even_when_the_read_fails,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "reading the last stage's output failed, but pipeline kept its \
             end of that pipe open, so the stage could not end: drop the \
             pipe, then wait for every stage",
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
            "ch02::run_isolated::leaves_the_rest_of_the_command",
            1,
            leaves_the_rest_of_the_command,
        ),
        Trial::new(
            "ch02::run_isolated::keeps_the_parents_directory_meanwhile",
            1,
            keeps_the_parents_directory_meanwhile,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "the child run_isolated started waits for a file that the trial \
             creates once it has looked at its own directory, and it never \
             ended after that: does run_isolated read the child's output to \
             its end and wait for it?",
        ),
        Trial::new(
            "ch02::run_isolated::keeps_the_parents_environment",
            1,
            keeps_the_parents_environment,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "the child run_isolated started waits for a file that the trial \
             creates once it has read its own environment, and it never \
             ended after that: does run_isolated read the child's output to \
             its end and wait for it?",
        ),
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
             blocked on a full pipe: read both pipes at the same time; or \
             the child closed its stdout and stderr and went on running, \
             and run_isolated never slept in a wait for it: once both pipes \
             are at their end, wait for the child (Child::wait)",
        ),
        Trial::new(
            "ch02::run_isolated::waits_even_when_a_read_fails",
            1,
            run_isolated_waits_when_a_read_fails,
        )
        .timeout(PIPE_TIMEOUT)
        .on_timeout(
            "reading stdout or stderr failed (or no thread could start to \
             read one), but run_isolated kept its end of that pipe open, so \
             the child could not end: drop the pipe, then wait, as capture \
             does",
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
