//! `course bench`: the notes' claims about speed, measured on the reader's
//! machine, Python and Rust side by side.
//!
//! Every comparison is a ratio from one interleaved run: A, B, A, B, ...,
//! and the median of the paired ratios B/A, so that a machine that slows
//! down halfway (a shared VM, a laptop's turbo) slows both sides of most
//! pairs alike. Each variant runs long enough to dwarf timer noise (0.5 s
//! of counting; a tenth of that with `--quick`).
//!
//! The Rust variants that need a fresh process run this binary again as
//! `course bench-worker ...` (see [`worker`]); the Python variants run
//! small scripts with `python3 -c`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::gil::{EveryTicks, Gil, SwitchInterval, SwitchPolicy};

/// How hard to measure.
#[derive(Debug, Clone, Copy)]
pub struct Effort {
    /// Each countdown variant runs at least this long.
    pub run: Duration,
    /// Pairs per comparison.
    pub pairs: usize,
    /// Round trips per convoy variant.
    pub trips: usize,
    /// Threads (and a hundred times as many tasks) per creation round.
    pub creations: usize,
}

impl Effort {
    /// The reference run.
    pub const FULL: Effort = Effort {
        run: Duration::from_millis(500),
        pairs: 5,
        trips: 200,
        creations: 1000,
    };

    /// For the tests: every code path, no meaningful figure.
    pub const SMOKE: Effort = Effort {
        run: Duration::from_millis(5),
        pairs: 1,
        trips: 4,
        creations: 20,
    };

    /// `--quick`: the shape in well under a minute.
    pub const QUICK: Effort = Effort {
        run: Duration::from_millis(60),
        pairs: 3,
        trips: 40,
        creations: 200,
    };
}

/// The machine a run measured.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Logical CPUs available to us.
    pub cores: usize,
    /// `/proc/cpuinfo`'s model name.
    pub cpu: String,
    /// `Python 3.11.2`, or why there is none.
    pub python: Result<String, String>,
    /// The kernel (`uname -sr`).
    pub os: String,
}

impl Machine {
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

    /// One line: cores, CPU, kernel, Python.
    pub fn describe(&self) -> String {
        let python = match &self.python {
            Ok(version) => version.clone(),
            Err(why) => format!("no Python ({why})"),
        };
        format!("{} CPUs, {}, {}, {python}", self.cores, self.cpu, self.os)
    }
}

fn python_version() -> Result<String, String> {
    let output = Command::new("python3")
        .arg("--version")
        .output()
        .map_err(|e| format!("python3 not found: {e}"))?;
    if !output.status.success() {
        return Err("python3 --version failed".into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The median of some numbers (the lower middle for an even count).
pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// The `q` quantile (0 to 1) by nearest rank.
pub fn quantile(values: &[f64], q: f64) -> f64 {
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
    let (mut ratios, mut a_times, mut b_times) = (vec![], vec![], vec![]);
    for _ in 0..pairs {
        let (ta, tb) = (a(), b());
        ratios.push(tb / ta);
        a_times.push(ta);
        b_times.push(tb);
    }
    Ratio {
        ratio: median(&ratios),
        a: median(&a_times),
        b: median(&b_times),
    }
}

/// One interleaved comparison: B took `ratio` times as long as A.
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    /// Median of the paired ratios B/A.
    pub ratio: f64,
    /// Median seconds of A.
    pub a: f64,
    /// Median seconds of B.
    pub b: f64,
}

// ---------------------------------------------------------------------
// Countdown.

/// The notes' countdown, as Rust: `black_box` stops the optimiser from
/// replacing the loop by its result.
pub fn countdown(mut n: u64) {
    while n > 0 {
        n = black_box(n) - 1;
    }
}

/// The countdown under the toy GIL: one tick per step, as CPython's eval
/// loop checks its GIL between bytecodes.
fn countdown_with_gil(gil: &Gil, mut n: u64) {
    let mut held = gil.acquire();
    while n > 0 {
        n = black_box(n) - 1;
        held.tick();
    }
}

fn seconds(work: impl FnOnce()) -> f64 {
    let started = Instant::now();
    work();
    started.elapsed().as_secs_f64()
}

/// A count that makes `run(count)` take at least `target`.
fn calibrate(target: Duration, mut run: impl FnMut(u64) -> f64) -> u64 {
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

fn rust_processes(count: u64, processes: usize) -> f64 {
    let share = (count / processes as u64).to_string();
    seconds(|| {
        let children: Vec<_> = (0..processes)
            .filter_map(|_| worker_command(&["countdown", &share]).spawn().ok())
            .collect();
        for mut child in children {
            let _ = child.wait();
        }
    })
}

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

fn python(script: &str, args: &[String]) -> Result<f64, String> {
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("python3 printed no time: {e}"))
}

fn py_countdown(mode: &str, count: u64, parts: usize) -> f64 {
    let args = [mode.to_string(), count.to_string(), parts.to_string()];
    python(PY_COUNTDOWN, &args).unwrap_or(f64::NAN)
}

/// The countdown comparisons.
#[derive(Debug, Clone)]
pub struct Countdown {
    /// Python: (2 threads / sequential, 2 processes / sequential), or why
    /// there is no Python.
    pub python: Result<(Ratio, Ratio), String>,
    /// Python's steps per run.
    pub python_count: u64,
    /// Rust: N threads / 1 thread.
    pub rust_threads: Ratio,
    /// Rust: N processes / 1 thread.
    pub rust_processes: Ratio,
    /// Rust steps per run.
    pub rust_count: u64,
    /// Toy GIL (new style, 5 ms): 2 threads / 1 thread.
    pub gil_threads: Ratio,
    /// Nanoseconds per step: Python, Rust.
    pub per_step: (Option<f64>, f64),
}

fn measure_countdown(
    effort: Effort,
    machine: &Machine,
    say: &dyn Fn(&str),
) -> Countdown {
    let n = machine.cores.max(2);
    say("countdown: Rust");
    let rust_count = calibrate(effort.run, |count| rust_threads(count, 1));
    let rust_threads_ratio = paired(
        effort.pairs,
        || rust_threads(rust_count, 1),
        || rust_threads(rust_count, n),
    );
    let rust_processes_ratio = paired(
        effort.pairs,
        || rust_threads(rust_count, 1),
        || rust_processes(rust_count, n),
    );
    say("countdown: toy GIL");
    let gil_count = calibrate(effort.run, |count| {
        gil_threads(SwitchInterval::PYTHON_DEFAULT, count, 1)
    });
    let gil_ratio = paired(
        effort.pairs,
        || gil_threads(SwitchInterval::PYTHON_DEFAULT, gil_count, 1),
        || gil_threads(SwitchInterval::PYTHON_DEFAULT, gil_count, 2),
    );
    let mut python_count = 0;
    // One short run first: a python3 that cannot run the script (too old,
    // broken) is reported, not timed.
    let trial = machine.python.clone().and_then(|_| {
        let args = ["seq".to_string(), "1000".to_string(), "1".to_string()];
        python(PY_COUNTDOWN, &args)
    });
    let python = match trial {
        Err(why) => Err(why),
        Ok(_) => {
            say("countdown: Python");
            python_count =
                calibrate(effort.run, |count| py_countdown("seq", count, 1));
            let threads = paired(
                effort.pairs,
                || py_countdown("seq", python_count, 1),
                || py_countdown("threads", python_count, 2),
            );
            let processes = paired(
                effort.pairs,
                || py_countdown("seq", python_count, 1),
                || py_countdown("processes", python_count, 2),
            );
            Ok((threads, processes))
        }
    };
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

// ---------------------------------------------------------------------
// The convoy effect.

/// What the "I/O" thread waits for each time: a peer that answers after
/// this long (an immediate echo makes the results bimodal).
const PEER_DELAY: Duration = Duration::from_millis(1);

/// Round trips of an I/O thread in milliseconds: p10, p50, p90 and the
/// slowest (the tail is where an unfair lock shows).
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// 10th percentile.
    pub p10: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile: nine trips in ten were faster.
    pub p90: f64,
    /// The slowest trip.
    pub max: f64,
}

impl Latency {
    fn of(trips: &[f64]) -> Latency {
        Latency {
            p10: quantile(trips, 0.1),
            p50: quantile(trips, 0.5),
            p90: quantile(trips, 0.9),
            max: quantile(trips, 1.0),
        }
    }
}

/// A peer thread that answers each request after [`PEER_DELAY`].
fn peer() -> (std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>) {
    let (ask, asked) = std::sync::mpsc::channel::<()>();
    let (answer, answers) = std::sync::mpsc::channel::<()>();
    thread::spawn(move || {
        for () in asked {
            thread::sleep(PEER_DELAY);
            if answer.send(()).is_err() {
                return;
            }
        }
    });
    (ask, answers)
}

/// A CPU-bound thread that runs until `stop`, holding the GIL if there is
/// one (ticking as the eval loop does).
fn spinner(
    gil: Option<Arc<Gil>>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || match gil {
        Some(gil) => {
            let mut held = gil.acquire();
            while !stop.load(Ordering::Relaxed) {
                black_box(0u64);
                held.tick();
            }
        }
        None => {
            while !stop.load(Ordering::Relaxed) {
                black_box(0u64);
            }
        }
    })
}

/// The I/O thread's round trips: send, release the GIL while waiting,
/// take it back to handle the answer. Milliseconds each.
fn io_trips(gil: Option<&Gil>, trips: usize) -> Vec<f64> {
    let (ask, answers) = peer();
    let mut held = gil.map(Gil::acquire);
    let mut took = Vec::with_capacity(trips);
    for _ in 0..trips {
        let started = Instant::now();
        let _ = ask.send(());
        drop(held.take()); // Blocking I/O releases the GIL.
        let _ = answers.recv();
        held = gil.map(Gil::acquire);
        took.push(started.elapsed().as_secs_f64() * 1e3);
    }
    took
}

fn convoy_rust(
    policy: Option<Box<dyn Fn() -> Gil>>,
    with_cpu: bool,
    trips: usize,
) -> Latency {
    let gil = policy.map(|make| Arc::new(make()));
    let stop = Arc::new(AtomicBool::new(false));
    let spinning = with_cpu.then(|| spinner(gil.clone(), Arc::clone(&stop)));
    // Let the spinner take the GIL first, as a running program would.
    thread::sleep(Duration::from_millis(20));
    let took = io_trips(gil.as_deref(), trips);
    stop.store(true, Ordering::Relaxed);
    if let Some(spinning) = spinning {
        let _ = spinning.join();
    }
    Latency::of(&took)
}

const PY_CONVOY: &str = r#"
import socket, sys, threading, time

trips, with_cpu, delay = int(sys.argv[1]), sys.argv[2] == "1", float(sys.argv[3])
here, there = socket.socketpair()

def peer():
    # A separate thread answers after the delay; its sleep releases the GIL,
    # its reply needs the GIL like any Python code.
    while there.recv(1):
        time.sleep(delay)
        there.send(b"x")

stop = False
def spin():
    while not stop:
        pass

threading.Thread(target=peer, daemon=True).start()
if with_cpu:
    threading.Thread(target=spin, daemon=True).start()
    time.sleep(0.02)
took = []
for _ in range(trips):
    start = time.perf_counter()
    here.send(b"x")
    here.recv(1)
    took.append((time.perf_counter() - start) * 1e3)
stop = True
print(" ".join(f"{t:.4f}" for t in took))
"#;

fn convoy_python(with_cpu: bool, trips: usize) -> Result<Latency, String> {
    let args = [
        trips.to_string(),
        u8::from(with_cpu).to_string(),
        PEER_DELAY.as_secs_f64().to_string(),
    ];
    let output = Command::new("python3")
        .arg("-c")
        .arg(PY_CONVOY)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
    }
    let took: Vec<f64> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    Ok(Latency::of(&took))
}

/// One row of the convoy table.
#[derive(Debug, Clone)]
pub struct ConvoyRow {
    /// What ran.
    pub label: String,
    /// Round trips alone.
    pub alone: Result<Latency, String>,
    /// Round trips beside a CPU-bound thread.
    pub busy: Result<Latency, String>,
}

fn measure_convoy(
    effort: Effort,
    machine: &Machine,
    say: &dyn Fn(&str),
) -> Vec<ConvoyRow> {
    let trips = effort.trips;
    type Make = fn() -> Gil;
    let variants: [(&str, Option<Make>); 5] = [
        ("Rust, no lock", None),
        (
            "toy GIL, old style (every 100 ticks)",
            Some(|| Gil::with_policy(EveryTicks(100))),
        ),
        (
            "toy GIL, new style, 5 ms",
            Some(|| Gil::with_policy(SwitchInterval::PYTHON_DEFAULT)),
        ),
        (
            "toy GIL, new style, 1 ms",
            Some(|| Gil::with_policy(SwitchInterval(Duration::from_millis(1)))),
        ),
        (
            "toy GIL, new style, 0.2 ms",
            Some(|| {
                Gil::with_policy(SwitchInterval(Duration::from_micros(200)))
            }),
        ),
    ];
    let mut rows = Vec::new();
    for (label, make) in variants {
        say(&format!("convoy: {label}"));
        let boxed = |make: Option<Make>| {
            make.map(|m| Box::new(m) as Box<dyn Fn() -> Gil>)
        };
        // Alone and busy interleaved: alone, busy, alone, busy.
        let mut alone = Vec::new();
        let mut busy = Vec::new();
        for _ in 0..2 {
            alone.push(convoy_rust(boxed(make), false, trips / 2));
            busy.push(convoy_rust(boxed(make), true, trips / 2));
        }
        rows.push(ConvoyRow {
            label: label.to_string(),
            alone: Ok(merge(&alone)),
            busy: Ok(merge(&busy)),
        });
    }
    let python_label = match &machine.python {
        Ok(version) => format!("{version}, real GIL"),
        Err(_) => "Python".to_string(),
    };
    match &machine.python {
        Err(why) => rows.push(ConvoyRow {
            label: python_label,
            alone: Err(why.clone()),
            busy: Err(why.clone()),
        }),
        Ok(_) => {
            say("convoy: Python");
            rows.push(ConvoyRow {
                label: python_label,
                alone: convoy_python(false, trips),
                busy: convoy_python(true, trips),
            });
        }
    }
    rows
}

/// Two halves' percentiles, averaged (each half is a run of its own), and
/// the slowest trip of either.
fn merge(halves: &[Latency]) -> Latency {
    let mean = |f: fn(&Latency) -> f64| {
        halves.iter().map(f).sum::<f64>() / halves.len() as f64
    };
    Latency {
        p10: mean(|l| l.p10),
        p50: mean(|l| l.p50),
        p90: mean(|l| l.p90),
        max: halves.iter().map(|l| l.max).fold(f64::NAN, f64::max),
    }
}

// ---------------------------------------------------------------------
// Creation cost and memory.

/// Microseconds to create and finish one of each, and their ratios.
#[derive(Debug, Clone, Copy)]
pub struct Creation {
    /// A thread: spawn and join (many started, then all joined).
    pub thread_us: f64,
    /// A process (this binary, doing nothing): spawn and wait.
    pub process_us: f64,
    /// A tokio task: spawn and await, on a multi-thread runtime.
    pub task_us: f64,
}

fn measure_creation(effort: Effort, say: &dyn Fn(&str)) -> Creation {
    say("creation: threads, processes, tasks");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let threads = effort.creations;
    let processes = (effort.creations / 10).max(10);
    let tasks = effort.creations * 100;
    let (mut t, mut p, mut k) = (vec![], vec![], vec![]);
    // Start them all, then wait for them all, as a program that wants
    // many at once does; the three kinds interleaved, three rounds.
    for _ in 0..3 {
        t.push(
            seconds(|| {
                let started: Vec<_> = (0..threads)
                    .map(|_| thread::spawn(|| black_box(1)))
                    .collect();
                for handle in started {
                    let _ = handle.join();
                }
            }) / threads as f64,
        );
        p.push(
            seconds(|| {
                let started: Vec<_> = (0..processes)
                    .filter_map(|_| worker_command(&["noop"]).spawn().ok())
                    .collect();
                for mut child in started {
                    let _ = child.wait();
                }
            }) / processes as f64,
        );
        k.push(
            seconds(|| {
                runtime.block_on(async {
                    let started: Vec<_> = (0..tasks)
                        .map(|_| tokio::spawn(async { black_box(1) }))
                        .collect();
                    for task in started {
                        let _ = task.await;
                    }
                });
            }) / tasks as f64,
        );
    }
    Creation {
        thread_us: median(&t) * 1e6,
        process_us: median(&p) * 1e6,
        task_us: median(&k) * 1e6,
    }
}

/// Summing a million numbers on a thread, and in a child process that
/// gets them as text over a pipe (chapter 7's serialisation cost).
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    /// Milliseconds on a scoped thread that borrows the numbers.
    pub thread_ms: f64,
    /// Milliseconds through a child: format, write, parse, sum, answer.
    pub process_ms: f64,
}

/// How many numbers the transfer sums.
const TRANSFER_COUNT: u64 = 1_000_000;

fn measure_transfer(effort: Effort, say: &dyn Fn(&str)) -> Transfer {
    use std::io::{Read as _, Write as _};
    say("transfer: a million numbers to a thread and to a process");
    let numbers: Vec<u64> = (0..TRANSFER_COUNT).collect();
    let by_thread = || {
        seconds(|| {
            let sum = thread::scope(|s| {
                s.spawn(|| numbers.iter().sum::<u64>()).join()
            });
            black_box(sum.ok());
        })
    };
    let by_process = || {
        seconds(|| {
            let Ok(mut child) = worker_command(&["sum"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
            else {
                return;
            };
            let mut text = String::with_capacity(8 * numbers.len());
            for n in &numbers {
                let _ = writeln!(text, "{n}");
            }
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(text.as_bytes());
            }
            let mut answer = String::new();
            if let Some(mut stdout) = child.stdout.take() {
                let _ = stdout.read_to_string(&mut answer);
            }
            let _ = child.wait();
            black_box(answer);
        })
    };
    let ratio = paired(effort.pairs, by_thread, by_process);
    Transfer {
        thread_ms: ratio.a * 1e3,
        process_ms: ratio.b * 1e3,
    }
}

/// Memory per thread and per task, in KiB, from fresh processes.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Resident memory each parked thread adds (its stack's touched pages,
    /// its bookkeeping).
    pub thread_rss_kib: f64,
    /// Kernel memory for each thread's kernel stack (`KernelStack` in
    /// /proc/meminfo; system-wide, so other programs add noise).
    pub thread_kernel_kib: f64,
    /// Resident memory each pending tokio task adds.
    pub task_rss_kib: f64,
    /// How many threads were parked.
    pub threads: usize,
    /// How many tasks were pending.
    pub tasks: usize,
}

fn measure_memory(effort: Effort, say: &dyn Fn(&str)) -> Option<Memory> {
    say("memory: threads and tasks");
    let threads = effort.creations;
    let tasks = effort.creations * 100;
    let sample = |args: &[&str]| -> Option<(f64, f64)> {
        let output =
            worker_command(args).stdout(Stdio::piped()).output().ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let mut numbers = text
            .split_whitespace()
            .filter_map(|n| n.parse::<f64>().ok());
        Some((numbers.next()?, numbers.next()?))
    };
    let thread_count = threads.to_string();
    let task_count = tasks.to_string();
    let (base_rss, base_kernel) = sample(&["threads", "0"])?;
    let (rss, kernel) = sample(&["threads", &thread_count])?;
    let (task_base, _) = sample(&["tasks", "0"])?;
    let (task_rss, _) = sample(&["tasks", &task_count])?;
    Some(Memory {
        thread_rss_kib: (rss - base_rss) / threads as f64,
        thread_kernel_kib: (kernel - base_kernel) / threads as f64,
        task_rss_kib: (task_rss - task_base) / tasks as f64,
        threads,
        tasks,
    })
}

// ---------------------------------------------------------------------
// The worker side: `course bench-worker <mode> <n>`.

fn worker_command(args: &[&str]) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "course".into());
    let mut command = Command::new(exe);
    command.arg("bench-worker").args(args).stdin(Stdio::null());
    command
}

/// Runs one worker mode: `countdown N`, `noop`, `sum` (adds the numbers
/// on stdin, one per line), `threads N` (prints
/// resident and kernel-stack KiB with N parked threads), `tasks N` (the
/// same with N pending tokio tasks).
pub fn worker(mode: &str, n: u64) -> Result<(), String> {
    match mode {
        "countdown" => countdown(n),
        "noop" => {}
        "sum" => {
            use std::io::BufRead as _;
            let sum: u64 = std::io::stdin()
                .lock()
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| line.parse::<u64>().ok())
                .sum();
            println!("{sum}");
        }
        "threads" => {
            let before = kernel_stack_kib();
            let parked: Vec<_> =
                (0..n).map(|_| thread::spawn(thread::park)).collect();
            // Every thread has started once it is in the kernel's count.
            thread::sleep(Duration::from_millis(100));
            println!("{} {}", rss_kib(), kernel_stack_kib() - before);
            for handle in &parked {
                handle.thread().unpark();
            }
            for handle in parked {
                let _ = handle.join();
            }
        }
        "tasks" => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let (release, released) = tokio::sync::watch::channel(false);
                let tasks: Vec<_> = (0..n)
                    .map(|_| {
                        let mut released = released.clone();
                        tokio::spawn(async move {
                            let _ = released.wait_for(|go| *go).await;
                        })
                    })
                    .collect();
                // Let every task run to its first await.
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                println!("{} 0", rss_kib());
                let _ = release.send(true);
                for task in tasks {
                    let _ = task.await;
                }
            });
        }
        other => return Err(format!("no bench worker mode {other:?}")),
    }
    Ok(())
}

fn status_kib(file: &str, key: &str) -> f64 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn rss_kib() -> f64 {
    status_kib("/proc/self/status", "VmRSS:")
}

fn kernel_stack_kib() -> f64 {
    status_kib("/proc/meminfo", "KernelStack:")
}

// ---------------------------------------------------------------------
// The whole run and its report.

/// Everything one `course bench` measured.
#[derive(Debug, Clone)]
pub struct Results {
    /// Where.
    pub machine: Machine,
    /// `--quick` or the full run.
    pub quick: bool,
    /// How hard it measured.
    pub effort: Effort,
    /// Countdown ratios.
    pub countdown: Countdown,
    /// Convoy latencies.
    pub convoy: Vec<ConvoyRow>,
    /// Creation costs.
    pub creation: Creation,
    /// Moving data to a thread and to a process.
    pub transfer: Transfer,
    /// Memory per thread and task.
    pub memory: Option<Memory>,
}

/// Measures everything; `say` reports progress.
pub fn run(effort: Effort, quick: bool, say: &dyn Fn(&str)) -> Results {
    let machine = Machine::detect();
    let countdown = measure_countdown(effort, &machine, say);
    let convoy = measure_convoy(effort, &machine, say);
    let creation = measure_creation(effort, say);
    let transfer = measure_transfer(effort, say);
    let memory = measure_memory(effort, say);
    Results {
        machine,
        quick,
        effort,
        countdown,
        convoy,
        creation,
        transfer,
        memory,
    }
}

fn x(ratio: f64) -> String {
    format!("{ratio:.2}×")
}

fn ms(latency: &Result<Latency, String>) -> String {
    match latency {
        Ok(l) => {
            format!("{:.2} / {:.2} / {:.2} / {:.2}", l.p10, l.p50, l.p90, l.max)
        }
        Err(_) => "—".to_string(),
    }
}

impl Results {
    /// The tables, as Markdown (also readable as plain text).
    pub fn markdown(&self) -> String {
        let c = &self.countdown;
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Measured by `cargo course bench{}` on {}.\n",
            if self.quick { " --quick" } else { "" },
            m.describe()
        );
        let _ = writeln!(out, "### Countdown: time relative to one thread\n");
        let _ = writeln!(out, "| program | time | per step |\n|---|---|---|");
        match &c.python {
            Ok((threads, processes)) => {
                let _ = writeln!(
                    out,
                    "| Python, 1 thread ({} steps) | {:.2} s | {:.1} ns |",
                    super::figures::grouped(c.python_count),
                    threads.a,
                    c.per_step.0.unwrap_or(f64::NAN)
                );
                let _ = writeln!(
                    out,
                    "| Python, 2 threads | {} ({:.2} s) |  |",
                    x(threads.ratio),
                    threads.b
                );
                let _ = writeln!(
                    out,
                    "| Python, 2 processes (fork) | {} ({:.2} s) |  |",
                    x(processes.ratio),
                    processes.b
                );
            }
            Err(why) => {
                let _ = writeln!(out, "| Python | not measured: {why} |  |");
            }
        }
        let n = m.cores.max(2);
        let _ = writeln!(
            out,
            "| Rust, 1 thread ({} steps) | {:.2} s | {:.2} ns |",
            super::figures::grouped(c.rust_count),
            c.rust_threads.a,
            c.per_step.1
        );
        let _ = writeln!(
            out,
            "| Rust, {n} threads | {} ({:.2} s) |  |",
            x(c.rust_threads.ratio),
            c.rust_threads.b
        );
        let _ = writeln!(
            out,
            "| Rust, {n} processes | {} ({:.2} s) |  |",
            x(c.rust_processes.ratio),
            c.rust_processes.b
        );
        let _ = writeln!(
            out,
            "| toy GIL (5 ms switch interval), 1 thread | {:.2} s |  |\n\
             | toy GIL, 2 threads | {} ({:.2} s) |  |",
            c.gil_threads.a,
            x(c.gil_threads.ratio),
            c.gil_threads.b
        );
        if let Some(python) = c.per_step.0 {
            let _ = writeln!(
                out,
                "\nOne Python step (8 bytecodes in CPython 3.11) costs as \
                 much as {:.0} Rust steps.",
                python / c.per_step.1
            );
        }
        let _ = writeln!(
            out,
            "\n### The convoy effect: an I/O thread's round trips (ms, p10 / p50 / p90 / slowest)\n\n\
             A round trip: ask a peer that answers after {} ms, wait for \
             the answer with the GIL released, take the GIL back. In the \
             toy rows the peer holds no lock; in the Python row the peer \
             is a Python thread, whose reply needs the GIL too.\n\n\
             | lock | alone | beside a CPU-bound thread |\n|---|---|---|",
            PEER_DELAY.as_secs_f64() * 1e3
        );
        for row in &self.convoy {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                row.label,
                ms(&row.alone),
                ms(&row.busy)
            );
        }
        let k = &self.creation;
        let _ = writeln!(
            out,
            "\n### Starting and finishing a task, a thread or a process \
             (average over many started at once, then all awaited; a process \
             is this program started again to do nothing)\n\n| what | time | relative to a task |\n|---|---|---|\n\
             | tokio task | {:.2} µs | 1× |\n| thread | {:.1} µs | {:.0}× |\n| process | {:.0} µs | {:.0}× |",
            k.task_us,
            k.thread_us,
            k.thread_us / k.task_us,
            k.process_us,
            k.process_us / k.task_us
        );
        let t = &self.transfer;
        let _ = writeln!(
            out,
            "\n### Summing a million numbers\n\n| where | time |\n|---|---|\n\
             | a thread that borrows them | {:.1} ms |\n\
             | a child process, sent as text over a pipe | {:.0} ms ({:.0}×) |",
            t.thread_ms,
            t.process_ms,
            t.process_ms / t.thread_ms
        );
        if let Some(mem) = &self.memory {
            let _ = writeln!(
                out,
                "\n### Memory per waiting thread or task\n\n\
                 Resident: the program's VmRSS with {} parked threads (or {} \
                 pending tasks) minus with none, divided by the count. Kernel \
                 stack: the system-wide `KernelStack` of /proc/meminfo, before \
                 and after, so other programs add noise.\n\n\
                 | what | resident | kernel stack |\n|---|---|---|\n\
                 | parked thread | {:.1} KiB | {:.1} KiB |\n| pending tokio task | {:.2} KiB | none |",
                mem.threads,
                mem.tasks,
                mem.thread_rss_kib,
                mem.thread_kernel_kib,
                mem.task_rss_kib
            );
        }
        out
    }
}

/// `course bench`: measures, prints, and with `write` puts the result in
/// the book's Measurements appendix.
pub fn bench(root: &Path, effort: Effort, write: bool) -> Result<(), String> {
    let quick = effort.run < Effort::FULL.run;
    let started = Instant::now();
    let say = |what: &str| {
        eprintln!("[{:>5.1} s] {what}", started.elapsed().as_secs_f64())
    };
    let results = run(effort, quick, &say);
    let markdown = results.markdown();
    println!("{markdown}");
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    if write {
        super::figures::write(root, &results)?;
    }
    Ok(())
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
