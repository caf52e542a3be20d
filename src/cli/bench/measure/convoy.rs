//! The convoy effect: an I/O thread's round trips, alone and beside a
//! CPU-bound thread, under each toy lock and under CPython's GIL.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use super::{python, quantile};
use crate::cli::bench::results::{
    Budget, Convoy, ConvoyRow, Latency, Lock, Machine,
};
use crate::gil::{EveryTicks, Gil, SwitchInterval};

/// What the "I/O" thread waits for each time: a peer that answers after
/// this long (an immediate echo makes the results bimodal).
pub(super) const PEER_DELAY: Duration = Duration::from_millis(1);

/// One row per toy lock, then CPython's.
pub(super) fn measure(
    budget: Budget,
    machine: &Machine,
    say: &dyn Fn(&str),
) -> Vec<ConvoyRow> {
    let trips = budget.trips;
    let mut rows = Vec::new();
    for lock in Lock::ROWS {
        say(&format!("convoy: {lock}"));
        // Alone and busy interleaved: alone, busy, alone, busy.
        let mut alone = Vec::new();
        let mut busy = Vec::new();
        for _ in 0..2 {
            alone.push(convoy_rust(lock, false, trips / 2));
            busy.push(convoy_rust(lock, true, trips / 2));
        }
        rows.push(ConvoyRow {
            variant: Convoy::Rust(lock),
            alone: Ok(merge(&alone)),
            busy: Ok(merge(&busy)),
        });
    }
    let variant = Convoy::Python {
        version: machine.python.clone().ok(),
    };
    rows.push(match &machine.python {
        Err(why) => ConvoyRow {
            variant,
            alone: Err(why.clone()),
            busy: Err(why.clone()),
        },
        Ok(_) => {
            say("convoy: Python");
            ConvoyRow {
                variant,
                alone: convoy_python(false, trips),
                busy: convoy_python(true, trips),
            }
        }
    });
    rows
}

impl Latency {
    /// The percentiles of some round trips.
    fn of(trips: &[f64]) -> Latency {
        Latency {
            p10: quantile(trips, 0.1),
            p50: quantile(trips, 0.5),
            p90: quantile(trips, 0.9),
            max: quantile(trips, 1.0),
        }
    }
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

/// The toy GIL that `lock` stands for, if any.
fn toy_gil(lock: Lock) -> Option<Gil> {
    match lock {
        Lock::None => None,
        Lock::OldStyle { every } => Some(Gil::with_policy(EveryTicks(every))),
        Lock::NewStyle { interval } => {
            Some(Gil::with_policy(SwitchInterval(interval)))
        }
    }
}

/// A peer thread that answers each request after [`PEER_DELAY`].
fn peer() -> (Sender<()>, Receiver<()>) {
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

/// The round trips of an I/O thread under a fresh `lock`, with or without
/// a CPU-bound thread beside it.
fn convoy_rust(lock: Lock, with_cpu: bool, trips: usize) -> Latency {
    let gil = toy_gil(lock).map(Arc::new);
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

/// The same round trips in CPython, whose peer is a Python thread.
fn convoy_python(with_cpu: bool, trips: usize) -> Result<Latency, String> {
    let args = [
        trips.to_string(),
        u8::from(with_cpu).to_string(),
        PEER_DELAY.as_secs_f64().to_string(),
    ];
    let took: Vec<f64> = python(PY_CONVOY, &args)?
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    Ok(Latency::of(&took))
}
