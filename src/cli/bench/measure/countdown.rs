//! The countdown: the same loop on one thread and split among threads or
//! processes, in Rust, under the toy GIL and in Python.

use std::hint::black_box;
use std::thread;

use super::{calibrate, paired, python, seconds};
use crate::cli::bench::results::{Budget, Countdown, Machine, Ratio};
use crate::cli::bench::worker::{self, WorkerMode, countdown};
use crate::gil::{Gil, SwitchInterval, SwitchPolicy};

/// Measures the countdowns in Rust, under the toy GIL, then in Python.
pub(super) fn measure(
    budget: Budget,
    machine: &Machine,
    say: &dyn Fn(&str),
) -> Countdown {
    let n = machine.workers();
    say("countdown: Rust");
    let rust_count = calibrate(budget.run, |count| rust_threads(count, 1));
    let rust_threads_ratio = paired(
        budget.pairs,
        || rust_threads(rust_count, 1),
        || rust_threads(rust_count, n),
    );
    let rust_processes_ratio = paired(
        budget.pairs,
        || rust_threads(rust_count, 1),
        || rust_processes(rust_count, n),
    );
    say("countdown: toy GIL");
    let policy = SwitchInterval::PYTHON_DEFAULT;
    let gil_count =
        calibrate(budget.run, |count| gil_threads(policy, count, 1));
    let gil_ratio = paired(
        budget.pairs,
        || gil_threads(policy, gil_count, 1),
        || gil_threads(policy, gil_count, 2),
    );
    let (python, python_count) = measure_python(budget, machine, say);
    let per_step_python = python
        .as_ref()
        .ok()
        .map(|(threads, _)| threads.a / python_count as f64 * 1e9);
    Countdown {
        per_step: (
            per_step_python,
            rust_threads_ratio.a / rust_count as f64 * 1e9,
        ),
        python,
        python_count,
        rust_threads: rust_threads_ratio,
        rust_processes: rust_processes_ratio,
        rust_count,
        gil_threads: gil_ratio,
    }
}

/// Python's two ratios (threads, processes) and its steps per run, or why
/// Python was not measured (and 0).
fn measure_python(
    budget: Budget,
    machine: &Machine,
    say: &dyn Fn(&str),
) -> (Result<(Ratio, Ratio), String>, u64) {
    // One short run first: a python3 that cannot run the script (too old,
    // broken) is reported, not timed.
    let trial = machine
        .python
        .clone()
        .and_then(|_| py_run(PyCountdown::Sequential, 1000, 1));
    if let Err(why) = trial {
        return (Err(why), 0);
    }
    say("countdown: Python");
    let sequential = |count| py_countdown(PyCountdown::Sequential, count, 1);
    let count = calibrate(budget.run, sequential);
    let threads = paired(
        budget.pairs,
        || sequential(count),
        || py_countdown(PyCountdown::Threads, count, 2),
    );
    let processes = paired(
        budget.pairs,
        || sequential(count),
        || py_countdown(PyCountdown::Processes, count, 2),
    );
    (Ok((threads, processes)), count)
}

/// The countdown under the toy GIL: one tick per step, as CPython's eval
/// loop checks its GIL between bytecodes.
pub(super) fn countdown_with_gil(gil: &Gil, mut n: u64) {
    let mut held = gil.acquire();
    while n > 0 {
        n = black_box(n) - 1;
        held.tick();
    }
}

/// Seconds for `count` steps shared among `threads` scoped threads.
fn rust_threads(count: u64, threads: usize) -> f64 {
    let share = count / threads as u64;
    seconds(|| {
        thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(move || countdown(share));
            }
        });
    })
}

/// Seconds for `count` steps shared among `processes` workers.
fn rust_processes(count: u64, processes: usize) -> f64 {
    let share = count / processes as u64;
    seconds(|| {
        let children: Vec<_> = (0..processes)
            .filter_map(|_| {
                worker::command(WorkerMode::Countdown, share).spawn().ok()
            })
            .collect();
        for mut child in children {
            let _ = child.wait();
        }
    })
}

/// Seconds for `count` steps shared among `threads` threads that take
/// turns at one toy GIL.
fn gil_threads(
    policy: impl SwitchPolicy + 'static,
    count: u64,
    threads: usize,
) -> f64 {
    let gil = Gil::with_policy(policy);
    let share = count / threads as u64;
    seconds(|| {
        thread::scope(|s| {
            for _ in 0..threads {
                let gil = &gil;
                s.spawn(move || countdown_with_gil(gil, share));
            }
        });
    })
}

/// How [`PY_COUNTDOWN`] counts.
#[derive(Debug, Clone, Copy)]
enum PyCountdown {
    /// On the main thread.
    Sequential,
    /// Split among threads.
    Threads,
    /// Split among processes started with fork.
    Processes,
}

impl PyCountdown {
    /// The script's first argument.
    fn arg(self) -> &'static str {
        match self {
            PyCountdown::Sequential => "seq",
            PyCountdown::Threads => "threads",
            PyCountdown::Processes => "processes",
        }
    }
}

const PY_COUNTDOWN: &str = r#"
import multiprocessing, sys, threading, time

def countdown(n):
    while n > 0:
        n -= 1

mode, n, parts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start = time.perf_counter()
if mode == "seq":
    countdown(n)
else:
    # fork: the notes' Linux default until 3.14, and -c scripts cannot be
    # re-imported by spawn or forkserver.
    make = {"threads": threading.Thread,
            "processes": multiprocessing.get_context("fork").Process}[mode]
    workers = [make(target=countdown, args=(n // parts,)) for _ in range(parts)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
print(time.perf_counter() - start)
"#;

/// Seconds for `count` Python steps, or why the script failed.
fn py_run(mode: PyCountdown, count: u64, parts: usize) -> Result<f64, String> {
    let args = [mode.arg().to_string(), count.to_string(), parts.to_string()];
    python(PY_COUNTDOWN, &args)?
        .trim()
        .parse()
        .map_err(|e| format!("python3 printed no time: {e}"))
}

/// Seconds for `count` Python steps (NaN when the script failed).
fn py_countdown(mode: PyCountdown, count: u64, parts: usize) -> f64 {
    py_run(mode, count, parts).unwrap_or(f64::NAN)
}
