//! `course bench-worker python-calls-rust`: chapter 9's payoff, measured.
//! The notes' countdown in Python threads, in pure Python and calling
//! Rust, timed inside one embedded CPython in this fresh process.
//!
//! The Rust side is the module `course_bench` of two `#[pyfunction]`s:
//! `countdown_holding(n)` counts down with the GIL held throughout, as a
//! native function does unless it says otherwise, and
//! `countdown_detached(n)` counts down inside `py.detach`, so that other
//! Python threads run meanwhile. A Python script starts the threads and
//! times them with `time.perf_counter`; this side sizes the counts and
//! interleaves the runs.
//!
//! The report it prints, which `measure::python_calls_rust` reads:
//! `version 3.11.7`, `steps <python> <rust>`, then one `pair` line per pair
//! with six times in seconds: pure Python with 1 thread and with 2,
//! holding with 1 and 2, detached with 1 and 2. Two threads each count
//! half the steps of one.

use std::time::Duration;

/// Runs the comparisons, each run at least `target` long with one thread,
/// `pairs` times, and prints the report.
#[cfg(python)]
pub(crate) fn python_calls_rust(
    target: Duration,
    pairs: usize,
) -> Result<(), String> {
    embedded::run(target, pairs)
}

/// Without an embeddable CPython at build time, the reason why.
#[cfg(not(python))]
pub(crate) fn python_calls_rust(_: Duration, _: usize) -> Result<(), String> {
    Err(env!("COURSE_NO_PYTHON").to_string())
}

#[cfg(python)]
mod embedded {
    use std::time::Duration;

    use pyo3::prelude::*;
    use pyo3::types::PyDict;

    use crate::cli::bench::measure::calibrate;

    /// What Python imports as `course_bench`.
    #[pymodule]
    mod course_bench {
        use pyo3::prelude::*;

        use crate::cli::bench::worker::countdown;

        /// Counts down from `n` without letting go of the GIL: no other
        /// Python thread runs until it returns.
        #[pyfunction]
        fn countdown_holding(n: u64) {
            countdown(n);
        }

        /// Counts down from `n` with the GIL released: other Python
        /// threads run meanwhile, on other cores.
        #[pyfunction]
        fn countdown_detached(py: Python<'_>, n: u64) {
            py.detach(|| countdown(n));
        }
    }

    /// Defines `timed(kind, n, threads)`: seconds for `threads` Python
    /// threads, each counting down `n // threads` steps with `kind`.
    const SCRIPT: &std::ffi::CStr = cr#"
import sys, threading, time
from course_bench import countdown_detached, countdown_holding

def countdown(n):
    while n > 0:
        n -= 1

KINDS = {"python": countdown, "holding": countdown_holding,
         "detached": countdown_detached}

def timed(kind, n, threads):
    work = KINDS[kind]
    workers = [threading.Thread(target=work, args=(n // threads,))
               for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - start

version = "%d.%d.%d" % sys.version_info[:3]
"#;

    /// Starts the interpreter with `course_bench` importable, sizes the
    /// counts, then prints the report, one pair at a time.
    pub(super) fn run(target: Duration, pairs: usize) -> Result<(), String> {
        pyo3::append_to_inittab!(course_bench);
        Python::initialize();
        Python::attach(|py| {
            let globals = PyDict::new(py);
            py.run(SCRIPT, Some(&globals), None)
                .map_err(|e| format!("the timing script failed: {e}"))?;
            let get = |name: &str| match globals.get_item(name) {
                Ok(Some(item)) => Ok(item),
                _ => Err(format!("the timing script defines no {name}")),
            };
            let (timed, version) = (get("timed")?, get("version")?);
            let time = |kind: &str, n: u64, threads: usize| {
                (timed.call1((kind, n, threads)))
                    .and_then(|seconds| seconds.extract::<f64>())
                    .map_err(|e| format!("timing {kind}: {e}"))
            };
            // A failed run (NaN) ends the sizing; the first pair reports it.
            let size = |kind| {
                calibrate(target, |n| time(kind, n, 1).unwrap_or(f64::NAN))
            };
            let (python, rust) = (size("python"), size("holding"));
            println!("version {version}");
            println!("steps {python} {rust}");
            for _ in 0..pairs {
                let mut line = String::from("pair");
                for (kind, n) in
                    [("python", python), ("holding", rust), ("detached", rust)]
                {
                    for threads in [1, 2] {
                        line += &format!(" {}", time(kind, n, threads)?);
                    }
                }
                println!("{line}");
            }
            Ok(())
        })
    }
}
