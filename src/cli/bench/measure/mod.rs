//! The measuring half of `course bench`: runs every comparison and returns
//! the [`Results`], reporting only its progress.
//!
//! The Rust variants that need a fresh process run this binary again as
//! `course bench-worker ...` (see [`super::worker`]); the Python variants
//! run small scripts with `python3 -c`.

mod convoy;
mod costs;
mod countdown;
mod counting;
pub(crate) use counting::SHARED_THREADS;
mod python_calls_rust;
mod tracing;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::results::{Effort, Machine, Ratio, Results};

/// Measures everything, in the order of the report; `say` reports
/// progress.
pub(crate) fn run(effort: Effort, say: &dyn Fn(&str)) -> Results {
    let budget = effort.budget();
    let machine = Machine::detect();
    let countdown = countdown::measure(budget, &machine, say);
    let python_calls_rust = python_calls_rust::measure(budget, say);
    let convoy = convoy::measure(budget, &machine, say);
    let increments = counting::increments(budget, say);
    let lost_updates = counting::lost_updates(budget, say);
    let creation = costs::creation(budget, say);
    let transfer = costs::transfer(budget, say);
    let memory = costs::memory(budget, say);
    let tracing = tracing::measure(budget, say);
    Results {
        machine,
        effort,
        countdown,
        python_calls_rust,
        peer_delay: convoy::PEER_DELAY,
        convoy,
        increments,
        lost_updates,
        creation,
        transfer,
        memory,
        tracing,
    }
}

impl Machine {
    /// This machine: its cores, CPU, kernel and `python3`.
    fn detect() -> Machine {
        let cpuinfo =
            std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
        let os = Command::new("uname")
            .arg("-sr")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        Machine {
            cores: thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            python: python_version(),
            os,
        }
    }
}

/// `python3 --version`, or why there is none.
pub(super) fn python_version() -> Result<String, String> {
    let output = Command::new("python3")
        .arg("--version")
        .output()
        .map_err(|e| format!("python3 not found: {e}"))?;
    if !output.status.success() {
        return Err("python3 --version failed".into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A Python measurement that takes this long has hung (a full one takes
/// seconds).
const PYTHON_HANG: Duration = Duration::from_secs(600);

/// Runs `script` with `python3 -c` and these arguments (through
/// `course::spawn`, so a hang ends): its standard output, or its standard
/// error when it fails.
pub(super) fn python(script: &str, args: &[String]) -> Result<String, String> {
    let mut command = Command::new("python3");
    command.arg("-c").arg(script).args(args);
    let limit = crate::spawn::OutputLimit::kill_past(16 << 20);
    let ran = crate::spawn::run(command, PYTHON_HANG, limit)
        .map_err(|e| format!("python3: {e}"))?;
    match ran.status() {
        Some(status) if status.success() => Ok(ran.stdout_text()),
        Some(_) => Err(ran.stderr_text().trim().to_string()),
        None => Err(format!("python3 did not finish ({:?})", ran.ended)),
    }
}

/// The median of some numbers (the lower middle for an even count).
pub(super) fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// The `q` quantile (0 to 1) by nearest rank.
fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank =
        ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Runs `a` and `b` alternately `pairs` times (each returns seconds);
/// the median of the ratios b/a, and the median of each side.
fn paired(
    pairs: usize,
    mut a: impl FnMut() -> f64,
    mut b: impl FnMut() -> f64,
) -> Ratio {
    let times: Vec<(f64, f64)> = (0..pairs).map(|_| (a(), b())).collect();
    ratio_of(&times)
}

/// The median of the ratios b/a of pairs of times (a, b), and the median
/// of each side.
fn ratio_of(times: &[(f64, f64)]) -> Ratio {
    let ratios: Vec<f64> = times.iter().map(|(a, b)| b / a).collect();
    let a_times: Vec<f64> = times.iter().map(|(a, _)| *a).collect();
    let b_times: Vec<f64> = times.iter().map(|(_, b)| *b).collect();
    Ratio {
        ratio: median(&ratios),
        a: median(&a_times),
        b: median(&b_times),
    }
}

/// How many seconds `work` took.
fn seconds(work: impl FnOnce()) -> f64 {
    let started = Instant::now();
    work();
    started.elapsed().as_secs_f64()
}

/// A count that makes `run(count)` take at least `target`.
pub(in crate::cli::bench) fn calibrate(
    target: Duration,
    mut run: impl FnMut(u64) -> f64,
) -> u64 {
    let mut count: u64 = 100_000;
    loop {
        let took = run(count);
        // A failed run (NaN) ends the search; the caller reports it.
        if took >= target.as_secs_f64() || !took.is_finite() {
            return count;
        }
        // Aim a little past the target, at most 100 times further.
        let scale =
            (target.as_secs_f64() * 1.2 / took.max(1e-6)).clamp(2.0, 100.0);
        count = (count as f64 * scale) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(median(&v), 3.0);
        assert_eq!(quantile(&v, 0.1), 1.0);
        assert_eq!(quantile(&v, 0.9), 5.0);
        assert_eq!(median(&[2.0, 1.0]), 1.0);
    }

    #[test]
    fn paired_ratios_are_medians_of_pairs() {
        let mut a = [1.0, 2.0, 1.0].into_iter();
        let mut b = [2.0, 2.0, 3.0].into_iter();
        let r = paired(3, || a.next().unwrap(), || b.next().unwrap());
        assert_eq!(r.ratio, 2.0);
        assert_eq!(r.a, 1.0);
    }
}
