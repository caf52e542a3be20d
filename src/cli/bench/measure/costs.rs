//! What a thread, a process and a task cost: to create, to hand data to,
//! to keep waiting.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::{Read as _, Write as _};
use std::process::Stdio;
use std::thread;

use super::{median, paired, seconds};
use crate::cli::bench::results::{Budget, Creation, Memory, Transfer};
use crate::cli::bench::worker::{self, WorkerMode};

/// How many numbers the transfer sums.
const TRANSFER_COUNT: u64 = 1_000_000;

/// Creation costs: the median of three rounds of each kind, interleaved.
pub(super) fn creation(budget: Budget, say: &dyn Fn(&str)) -> Creation {
    say("creation: threads, processes, tasks");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let threads = budget.creations;
    let processes = (budget.creations / 10).max(10);
    let tasks = budget.creations * 100;
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
                    .filter_map(|_| {
                        worker::command(WorkerMode::Noop, 0).spawn().ok()
                    })
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

/// Summing [`TRANSFER_COUNT`] numbers on a thread and in a child process,
/// interleaved.
pub(super) fn transfer(budget: Budget, say: &dyn Fn(&str)) -> Transfer {
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
            black_box(sum_in_child(&numbers));
        })
    };
    let ratio = paired(budget.pairs, by_thread, by_process);
    Transfer {
        thread_ms: ratio.a * 1e3,
        process_ms: ratio.b * 1e3,
    }
}

/// Starts a `sum` worker, sends it `numbers` as text, and returns its
/// answer (empty when it could not start).
fn sum_in_child(numbers: &[u64]) -> String {
    let Ok(mut child) = worker::command(WorkerMode::Sum, 0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        return String::new();
    };
    let mut text = String::with_capacity(8 * numbers.len());
    for n in numbers {
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
    answer
}

/// Memory per parked thread and per pending task, from four fresh
/// workers (none and many of each); nothing if a worker did not answer.
pub(super) fn memory(budget: Budget, say: &dyn Fn(&str)) -> Option<Memory> {
    say("memory: threads and tasks");
    let threads = budget.creations;
    let tasks = budget.creations * 100;
    // The worker's two numbers: resident and kernel-stack KiB.
    let sample = |mode: WorkerMode, n: usize| -> Option<(f64, f64)> {
        let output = worker::command(mode, n as u64).output().ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let mut numbers = text
            .split_whitespace()
            .filter_map(|n| n.parse::<f64>().ok());
        Some((numbers.next()?, numbers.next()?))
    };
    let (base_rss, base_kernel) = sample(WorkerMode::Threads, 0)?;
    let (rss, kernel) = sample(WorkerMode::Threads, threads)?;
    let (task_base, _) = sample(WorkerMode::Tasks, 0)?;
    let (task_rss, _) = sample(WorkerMode::Tasks, tasks)?;
    Some(Memory {
        thread_rss_kib: (rss - base_rss) / threads as f64,
        thread_kernel_kib: (kernel - base_kernel) / threads as f64,
        task_rss_kib: (task_rss - task_base) / tasks as f64,
        threads,
        tasks,
    })
}
