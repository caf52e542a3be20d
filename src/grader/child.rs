//! The trial's side: this binary re-executed with a trial's id in its
//! environment runs that one trial and writes its record.
//!
//! The record is `PASS <nonce>`, `FAIL <nonce> <why>` or `TODO <nonce>
//! <where>`. It is written last, so a trial that dies before has none and
//! cannot count as a pass. A `todo!()` reached on any thread ends the
//! trial at once: a stub whose worker threads wait for each other would
//! otherwise sit at a barrier until the deadline.

use std::fs;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};
use std::thread;

use super::{ENV_NONCE, ENV_PARENT, ENV_RECORD, ENV_TRIAL, Trial};

/// Where the trial's own panic happened, set by the panic hook.
static FAILED_AT: Mutex<Option<String>> = Mutex::new(None);

/// The record file and the nonce, for the panic hook.
static RECORD: OnceLock<(PathBuf, String)> = OnceLock::new();

/// What `todo!()` says first.
const TODO_PREFIX: &str = "not yet implemented";

/// If this process is a trial child, runs its trial and returns the exit
/// code; otherwise returns `None`. Call it first thing in `main`, before
/// any thread exists.
pub fn run_child_if_requested(trials: &[Trial]) -> Option<ExitCode> {
    let id = std::env::var(ENV_TRIAL).ok()?;
    let nonce = std::env::var(ENV_NONCE).unwrap_or_default();
    let record = PathBuf::from(std::env::var_os(ENV_RECORD)?);
    let suite = std::env::var(ENV_PARENT).ok();
    // SAFETY: called at the start of `main`, before this process has
    // started any thread, so nothing can read the environment concurrently.
    // Removing the variables keeps them away from learner code and from the
    // processes it starts.
    unsafe {
        std::env::remove_var(ENV_TRIAL);
        std::env::remove_var(ENV_NONCE);
        std::env::remove_var(ENV_RECORD);
        std::env::remove_var(ENV_PARENT);
    }
    let Some(trial) = trials.iter().find(|trial| trial.id.as_str() == id)
    else {
        eprintln!("grader: no trial named {id}");
        return Some(ExitCode::from(2));
    };
    if let Err(error) = crate::spawn::ProcessLimits::TRIAL.apply() {
        eprintln!("grader: cannot set resource limits: {error}");
        return Some(ExitCode::from(2));
    }
    if !crate::reap::die_with_parent(suite.as_deref()) {
        return Some(ExitCode::from(2));
    }
    let _ = RECORD.set((record.clone(), nonce.clone()));
    install_panic_hook();
    let (line, code) = match panic::catch_unwind(AssertUnwindSafe(trial.body)) {
        Ok(()) => (format!("PASS {nonce}\n"), ExitCode::SUCCESS),
        Err(payload) => {
            let mut message = panic_message(payload.as_ref());
            let at = FAILED_AT.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(at) = at {
                message.push_str(&format!(" (at {at})"));
            }
            let message = message.replace('\n', "\n  ");
            (format!("FAIL {nonce} {message}\n"), ExitCode::FAILURE)
        }
    };
    if let Err(error) = fs::write(&record, line) {
        eprintln!("grader: cannot write {}: {error}", record.display());
        return Some(ExitCode::from(2));
    }
    Some(code)
}

/// The trial's own failure is reported in the record, with where it
/// happened; printing it to stderr as well would only repeat it. Panics on
/// other threads (the learner's workers) are printed as usual, backtrace
/// and all if the learner asked for one, except a `todo!()`, which ends
/// the trial at once, and the trials' own deliberate panics (a job that
/// panics on purpose, raised in a graded suite's file), which are not the
/// learner's and would only bury their output.
fn install_panic_hook() {
    let default_hook = panic::take_hook();
    let trial_thread = thread::current().id();
    panic::set_hook(Box::new(move |info| {
        let at = place(info);
        if let Some(message) = todo_message(info) {
            not_yet_implemented(&message, at.as_deref());
        }
        if thread::current().id() == trial_thread {
            *FAILED_AT.lock().unwrap_or_else(|e| e.into_inner()) = at;
        } else if !raised_by_a_suite(info) {
            default_hook(info);
        }
    }));
}

/// Where a panic happened, unless inside the standard library
/// (`/rustc/<hash>/...`), which means nothing to a learner.
fn place(info: &PanicHookInfo<'_>) -> Option<String> {
    info.location()
        .filter(|at| !at.file().starts_with("/rustc/"))
        .map(|at| format!("{}:{}", at.file(), at.line()))
}

/// Whether a panic was raised by a graded suite's own code (the trials
/// live in `tests/graded/`), not by the code under test.
fn raised_by_a_suite(info: &PanicHookInfo<'_>) -> bool {
    info.location().is_some_and(|at| {
        at.file().replace('\\', "/").contains("tests/graded/")
    })
}

/// The message of a `todo!()` panic.
fn todo_message(info: &PanicHookInfo<'_>) -> Option<String> {
    let message = panic_message(info.payload());
    message.starts_with(TODO_PREFIX).then_some(message)
}

/// Writes the `TODO` record and ends the trial's process.
fn not_yet_implemented(message: &str, at: Option<&str>) -> ! {
    if let Some((record, nonce)) = RECORD.get() {
        let place = at.map(|at| format!(" (at {at})")).unwrap_or_default();
        let _ = fs::write(record, format!("TODO {nonce} {message}{place}\n"));
    }
    std::process::exit(1)
}

pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "the trial panicked with a non-text payload".to_string()
    }
}
