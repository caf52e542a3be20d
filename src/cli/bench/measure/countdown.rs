//! The countdown: the same loop on one thread and split among threads or
//! processes, in Rust, under the toy GIL and in Python.

use std::hint::black_box;
use std::thread;

use super::{calibrate, paired, python, ratio_of, seconds};
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
        gil_count,
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
    let trial = machine.python.clone().and_then(|_| py_run(1000));
    if let Err(why) = trial {
        return (Err(why), 0);
    }
    say("countdown: Python");
    let sequential = py_countdown;
    let count = calibrate(budget.run, sequential);
    // The pairs are timed inside one interpreter, warmed up, one after the
    // other: separate `python3` processes for one side and the other made
    // the one-thread side slower on a virtual machine (a fresh process
    // counting at once), and two threads looked faster than one.
    match py_pairs(count, budget.pairs) {
        Ok(pairs) => {
            let threads: Vec<(f64, f64)> =
                pairs.iter().map(|p| (p[0], p[1])).collect();
            let processes: Vec<(f64, f64)> =
                pairs.iter().map(|p| (p[2], p[3])).collect();
            (Ok((ratio_of(&threads), ratio_of(&processes))), count)
        }
        Err(why) => (Err(why), 0),
    }
}

/// Times `pairs` rounds of (one thread, two threads, one thread, two
/// processes) for `count` steps in one `python3`: four seconds a line.
fn py_pairs(count: u64, pairs: usize) -> Result<Vec<[f64; 4]>, String> {
    let args = [
        "pairs".to_string(),
        count.to_string(),
        "2".to_string(),
        pairs.to_string(),
    ];
    python(PY_COUNTDOWN, &args)?
        .lines()
        .map(|line| {
            let times: Vec<f64> = line
                .split_whitespace()
                .map(|t| t.parse::<f64>().map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            <[f64; 4]>::try_from(times)
                .map_err(|_| format!("python3 printed {line:?}, not 4 times"))
        })
        .collect::<Result<_, String>>()
        .map_err(|e| format!("python3 printed no times: {e}"))
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

/// The Python countdown: `seq N 1` times one thread counting N steps;
/// `pairs N 2 P` times P rounds of one thread, two threads, one thread and
/// two processes (fork), a line each.
const PY_COUNTDOWN: &str = r#"
import multiprocessing, sys, threading, time

def countdown(n):
    while n > 0:
        n -= 1

def timed(mode, n, parts):
    start = time.perf_counter()
    if mode == "seq":
        countdown(n)
    else:
        # fork: the notes' Linux default until 3.14, and -c scripts cannot
        # be re-imported by spawn or forkserver.
        make = {"threads": threading.Thread,
                "processes": multiprocessing.get_context("fork").Process}[mode]
        workers = [make(target=countdown, args=(n // parts,))
                   for _ in range(parts)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    return time.perf_counter() - start

mode, n, parts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if mode == "pairs":
    timed("seq", n // 4, 1)  # Warm up, untimed.
    for _ in range(int(sys.argv[4])):
        print(timed("seq", n, 1), timed("threads", n, parts),
              timed("seq", n, 1), timed("processes", n, parts))
else:
    print(timed(mode, n, parts))
"#;

/// Seconds for `count` Python steps on one thread, or why the script
/// failed.
fn py_run(count: u64) -> Result<f64, String> {
    let args = ["seq".to_string(), count.to_string(), "1".to_string()];
    python(PY_COUNTDOWN, &args)?
        .trim()
        .parse()
        .map_err(|e| format!("python3 printed no time: {e}"))
}

/// Seconds for `count` Python steps on one thread (NaN when the script
/// failed).
fn py_countdown(count: u64) -> f64 {
    py_run(count).unwrap_or(f64::NAN)
}
