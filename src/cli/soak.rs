//! `course soak N`: hunt flaky tests. Runs the solutions' graded suite and
//! the book's examples N times each while busy threads keep the other
//! cores saturated (as a noisy CI machine does), and counts failures per
//! test.
//!
//! The book's examples run through skeptic (`cargo test --test skeptic`),
//! which runs every ```rust block as a program, the same programs rustdoc's
//! doc-tests compile; rustdoc adds only compile-time proof, which cannot
//! flake.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::grade::cargo;

/// The suites soaked: a name and the `cargo test` arguments.
const SUITES: [(&str, &[&str]); 2] = [
    ("graded", &["--package", "solutions", "--test", "graded"]),
    ("examples", &["--package", "course", "--test", "skeptic"]),
];

/// Threads that spin until dropped, one per core but one.
struct Burners {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Burners {
    fn start() -> Self {
        let cores = thread::available_parallelism().map_or(2, |n| n.get());
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (1..cores.max(2))
            .map(|_| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n = std::hint::black_box(n.wrapping_add(1));
                    }
                })
            })
            .collect();
        Burners { stop, threads }
    }
}

impl Drop for Burners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A run that takes this long has hung (a whole run takes seconds).
const HANG: Duration = Duration::from_secs(20 * 60);

/// One `cargo test` run: whether it passed, and its stdout. A run that
/// hangs is killed with everything it started, and fails.
fn run_once(root: &Path, args: &[&str]) -> Result<(bool, String), String> {
    let mut command = cargo();
    command
        .current_dir(root)
        .arg("test")
        .args(args)
        .stdin(Stdio::null());
    let limit = crate::spawn::OutputLimit::keep_first(usize::MAX);
    let ran = crate::spawn::run(command, HANG, limit)
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let mut text = ran.stdout_text();
    if ran.status().is_none() {
        text.push_str("\ntest the whole run ... FAILED (hung; killed)\n");
    }
    Ok((ran.status().is_some_and(|s| s.success()), text))
}

/// Runs each suite `runs` times under load; the report.
pub fn soak(root: &Path, runs: u32) -> Result<String, String> {
    for (name, args) in SUITES {
        let built = cargo()
            .current_dir(root)
            .args(["test", "--quiet", "--no-run"])
            .args(args)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !built.success() {
            return Err(format!("the {name} suite does not build"));
        }
    }
    let burners = Burners::start();
    let busy = burners.threads.len();
    let bar = ProgressBar::new(u64::from(runs) * SUITES.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut failures: BTreeMap<String, u32> = BTreeMap::new();
    let mut failed_runs = [0u32; SUITES.len()];
    for _ in 0..runs {
        for (at, (name, args)) in SUITES.iter().enumerate() {
            bar.set_message(format!(
                "{name}, {} failures so far",
                failures.len()
            ));
            let (passed, stdout) = run_once(root, args)?;
            if !passed {
                failed_runs[at] += 1;
                let mut named = false;
                for line in stdout.lines() {
                    if let Some(test) = line
                        .strip_prefix("test ")
                        .and_then(|l| l.strip_suffix(" ... FAILED"))
                    {
                        *failures
                            .entry(format!("{name}: {}", test.trim()))
                            .or_default() += 1;
                        named = true;
                    }
                }
                if !named {
                    *failures
                        .entry(format!("{name}: the run itself failed"))
                        .or_default() += 1;
                }
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    drop(burners);
    let mut out = format!(
        "soak: {runs} runs of each suite with {busy} busy thread(s) on the \
         other core(s), in {:.0} s\n",
        started.elapsed().as_secs_f64()
    );
    for (at, (name, _)) in SUITES.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {name:<10} {} of {runs} runs failed",
            failed_runs[at]
        );
    }
    if failures.is_empty() {
        out.push_str("no test failed\n");
    } else {
        out.push_str("failures per test:\n");
        for (test, count) in &failures {
            let _ = writeln!(out, "  {count:>4}  {test}");
        }
    }
    Ok(out)
}
