//! The grader's own cost per trial: what a learner waits for on top of
//! their code. `cargo bench --bench grader` (divan).
//!
//! - `spawn_and_wait`: re-executing this binary and waiting for it, the
//!   floor under any process-per-trial grader;
//! - `run_trial`: a whole trial that passes at once: spawn, resource limits,
//!   pipes, the record file, the verdict, the search for leftover processes.
//!
//! The binary is its own trial child, like the graded suites.

use std::process::{Command, Stdio};

use course::grader::{self, Trial};

/// Set when this binary is started only to exit.
const JUST_EXIT: &str = "GRADER_BENCH_JUST_EXIT";

fn trials() -> Vec<Trial> {
    vec![Trial::new("bench::passes", 1, || {
        assert_eq!(std::hint::black_box(6) * 7, 42);
    })]
}

fn main() -> std::process::ExitCode {
    if std::env::var_os(JUST_EXIT).is_some() {
        return std::process::ExitCode::SUCCESS;
    }
    if let Some(code) = grader::run_child_if_requested(&trials()) {
        return code;
    }
    divan::main();
    std::process::ExitCode::SUCCESS
}

#[divan::bench(sample_count = 50)]
fn spawn_and_wait() {
    let status = Command::new(std::env::current_exe().unwrap())
        .env(JUST_EXIT, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

#[divan::bench(sample_count = 50)]
fn run_trial(bencher: divan::Bencher) {
    let trials = trials();
    bencher.bench(|| {
        let outcome = grader::run_trial(&trials[0]);
        assert_eq!(outcome.verdict, grader::Verdict::Pass);
    });
}
