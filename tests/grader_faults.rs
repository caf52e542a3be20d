//! The grader's own proof: a corpus of trials that misbehave the way learner
//! code does, each run through `course::grader::run_trial` exactly as the
//! graded suites are, and the verdict it must get.
//!
//! This binary is its own trial child: when the grader re-executes it with
//! a trial id, `run_child_if_requested` runs that one faulty trial.
//!
//! It is also a whole graded suite: started with `SUITE_DIR` set, it runs
//! `grader::main` over `suite()`, and the `suite::` tests check what an
//! instructor sees: the score table after `test result:`, the exit status,
//! `--list`, filters, and exclusive trials running alone.
//!
//! The parts: `corpus` (the faulty trials), `expectations` (the verdict
//! each must get) and `suite` (the suite in miniature and its checks).

// A test target's root is a `mod.rs`-like file: without `path`, these
// would be looked for in `tests/`, beside the other test targets.
#[path = "grader_faults/corpus.rs"]
mod corpus;
#[path = "grader_faults/expectations.rs"]
mod expectations;
#[path = "grader_faults/suite.rs"]
mod suite;

use std::fs;
use std::process::ExitCode;
use std::sync::Arc;

use corpus::corpus;
use course::grader;
use expectations::expectations;
use libtest_mimic::{Arguments, Failed};
use suite::{SUITE_DIR, suite, suite_checks};

/// As in the graded suites: trials can see memory that is never freed.
#[global_allocator]
static ALLOCATOR: grader::alloc::Counting = grader::alloc::Counting;

fn main() -> ExitCode {
    if std::env::var_os(SUITE_DIR).is_some() {
        return grader::main(suite());
    }
    let trials = corpus();
    if let Some(code) = grader::run_child_if_requested(&trials) {
        return code;
    }
    let expected = expectations();
    assert_eq!(
        expected.len(),
        trials.len(),
        "every trial of the corpus needs an expected verdict"
    );
    let trials = Arc::new(trials);
    let tests: Vec<_> = expected
        .into_iter()
        .map(|(id, label, check)| {
            let trials = Arc::clone(&trials);
            libtest_mimic::Trial::test(id, move || {
                let trial = trials
                    .iter()
                    .find(|t| t.id() == id)
                    .ok_or_else(|| Failed::from("no such trial"))?;
                let started = std::time::Instant::now();
                let outcome = grader::run_trial(trial);
                if std::env::var_os("FAULTS_TABLE").is_some() {
                    // One row of the fault table for the report.
                    let reason = outcome.verdict.to_string();
                    let reason = reason.lines().next().unwrap_or("");
                    eprintln!(
                        "| {id} | {:.1} s | {reason} |",
                        started.elapsed().as_secs_f32()
                    );
                }
                if outcome.verdict.label() != label {
                    return Err(format!(
                        "expected {label}, got {}",
                        outcome.report()
                    )
                    .into());
                }
                check(&outcome).map_err(Failed::from)
            })
        })
        .chain(suite_checks())
        .collect();
    let conclusion = libtest_mimic::run(&Arguments::from_args(), tests);
    // The grader's own memory stays bounded whatever the trials write:
    // 400 MiB of floods above must not have been buffered.
    let peak = peak_memory_kib();
    if std::env::var_os("FAULTS_TABLE").is_some() {
        eprintln!("the grader's peak memory: {peak} KiB");
    }
    if peak > GRADER_MEMORY_KIB {
        eprintln!("the grader's peak memory was {peak} KiB");
        return ExitCode::FAILURE;
    }
    conclusion.exit_code()
}

/// The most memory this process may have used while judging the corpus.
const GRADER_MEMORY_KIB: u64 = 128 * 1024;

/// This process's peak resident memory (`VmHWM`), in KiB.
fn peak_memory_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
