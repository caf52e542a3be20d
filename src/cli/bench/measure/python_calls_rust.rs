//! Python threads calling Rust (chapter 9): a fresh `course bench-worker
//! python-calls-rust` process embeds CPython and times the countdowns
//! (see `bench::embed`); this side starts it and reads its report into
//! paired ratios.

use std::time::Duration;

use super::ratio_of;
use crate::cli::bench::results::{Budget, PythonCallsRust};
use crate::cli::bench::worker::{self, WorkerMode};
use crate::spawn::OutputLimit;

/// A worker that takes this long has hung (a full run takes seconds).
const HANG: Duration = Duration::from_secs(600);

/// Measures Python threads calling Rust, or says why it could not: this
/// program was built without an embeddable CPython, or the worker failed.
pub(super) fn measure(
    budget: Budget,
    say: &dyn Fn(&str),
) -> Result<PythonCallsRust, String> {
    if !cfg!(python) {
        return Err(env!("COURSE_NO_PYTHON").to_string());
    }
    say("Python calling Rust");
    let millis = budget.run.as_millis().max(1) as u64;
    let mut command = worker::command(WorkerMode::PythonCallsRust, millis);
    command.arg("--pairs").arg(budget.pairs.to_string());
    let ran = crate::spawn::run(command, HANG, OutputLimit::kill_past(1 << 20))
        .map_err(|e| format!("cannot start the worker: {e}"))?;
    match ran.status() {
        Some(status) if status.success() => parse(&ran.stdout_text()),
        Some(_) => {
            let stderr = ran.stderr_text();
            let why = stderr.trim();
            Err(why.strip_prefix("error: ").unwrap_or(why).to_string())
        }
        None => Err(format!("the worker did not finish ({:?})", ran.ended)),
    }
}

/// The worker's report: `version V`, `steps P R`, then `pair` lines of
/// six seconds (Python, holding, detached; 1 thread, then 2).
fn parse(report: &str) -> Result<PythonCallsRust, String> {
    let bad = |line: &str| format!("the worker reported {line:?}");
    let (mut version, mut steps) = (None, None);
    let mut pairs: Vec<[f64; 6]> = Vec::new();
    for line in report.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("version") => version = words.next().map(str::to_string),
            Some("steps") => {
                let counts: Vec<u64> =
                    words.map_while(|w| w.parse().ok()).collect();
                steps = match counts[..] {
                    [python, rust] => Some((python, rust)),
                    _ => return Err(bad(line)),
                };
            }
            Some("pair") => {
                let times: Vec<f64> =
                    words.map_while(|w| w.parse().ok()).collect();
                pairs.push(times.try_into().map_err(|_| bad(line))?);
            }
            _ => return Err(bad(line)),
        }
    }
    let (Some(version), Some((python_count, rust_count))) = (version, steps)
    else {
        return Err(format!("the worker's report is incomplete: {report:?}"));
    };
    if pairs.is_empty() {
        return Err("the worker timed no pair".into());
    }
    let of = |one: usize| {
        let times: Vec<(f64, f64)> =
            pairs.iter().map(|p| (p[one], p[one + 1])).collect();
        ratio_of(&times)
    };
    Ok(PythonCallsRust {
        version,
        python: of(0),
        python_count,
        holding: of(2),
        detached: of(4),
        rust_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ratio_pairs_its_own_two_runs() {
        let report = "version 3.11.7\nsteps 1000 50000\n\
                      pair 1.0 1.1 2.0 2.0 2.0 1.0\n\
                      pair 1.0 1.0 2.0 2.2 4.0 2.0\n\
                      pair 2.0 2.0 2.0 2.0 2.0 1.2\n";
        let measured = parse(report).unwrap();
        assert_eq!(measured.version, "3.11.7");
        assert_eq!((measured.python_count, measured.rust_count), (1000, 50000));
        // Ratios 1.1, 1.0, 1.0: the median is 1.0.
        assert_eq!(measured.python.ratio, 1.0);
        assert_eq!(measured.holding.ratio, 1.0);
        assert_eq!(measured.holding.b, 2.0);
        // Ratios 0.5, 0.5, 0.6; the one-thread times' median is 2.0.
        assert_eq!(measured.detached.ratio, 0.5);
        assert_eq!(measured.detached.a, 2.0);
    }

    #[test]
    fn a_short_or_strange_report_is_an_error() {
        let no_pair = parse("version 3.11.7\nsteps 1 2\n").unwrap_err();
        assert_eq!(no_pair, "the worker timed no pair");
        let short = parse("version 3\nsteps 1 2\npair 1 2 3\n").unwrap_err();
        assert!(short.contains("\"pair 1 2 3\""), "{short}");
        let strange = parse("Traceback (most recent call last):").unwrap_err();
        assert!(strange.starts_with("the worker reported"), "{strange}");
        assert!(
            parse("pair 1 1 1 1 1 1\n")
                .unwrap_err()
                .contains("incomplete")
        );
    }
}
