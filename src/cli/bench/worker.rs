//! The helper side of `course bench`: `course bench-worker <mode> <n>`, a
//! hidden command that the measurements start as a fresh process when they
//! need one (to count down, to be created, to sum, to be weighed, to
//! embed CPython).

use std::hint::black_box;
use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

/// What a `bench-worker` process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkerMode {
    /// Counts down from N, as one of the countdown's processes.
    Countdown,
    /// Nothing: the cost of creating a process.
    Noop,
    /// Adds the numbers on stdin, one per line, and prints the sum.
    Sum,
    /// Parks N threads and prints its resident KiB and the KiB of kernel
    /// stack they added.
    Threads,
    /// Starts N tokio tasks that wait and prints its resident KiB (and 0:
    /// tasks have no kernel stack).
    Tasks,
    /// Embeds CPython and times Python threads counting down, in Python
    /// and calling Rust (see `embed`): each one-thread run at least N ms,
    /// `--pairs` times.
    PythonCallsRust,
}

/// The notes' countdown, as Rust: `black_box` stops the optimiser from
/// replacing the loop by its result. Never inlined, so that the threads
/// and the worker processes run the very same machine code: a loop this
/// tight runs at speeds that depend on where it lies in memory, and two
/// inlined copies can differ by half.
#[inline(never)]
pub(crate) fn countdown(mut n: u64) {
    while n > 0 {
        n = black_box(n) - 1;
    }
}

/// This binary again as `course bench-worker <mode> <n>`, its stdin closed.
pub(crate) fn command(mode: WorkerMode, n: u64) -> Command {
    use clap::ValueEnum as _;
    let exe = std::env::current_exe().unwrap_or_else(|_| "course".into());
    let name = mode.to_possible_value().expect("no worker mode is hidden");
    let mut command = Command::new(exe);
    command
        .arg("bench-worker")
        .arg(name.get_name())
        .arg(n.to_string())
        .stdin(Stdio::null());
    command
}

/// `course bench-worker`: runs one [`WorkerMode`] with its count `n`
/// (which `noop` and `sum` ignore) and `pairs` (which only
/// `python-calls-rust` reads).
pub fn worker(mode: WorkerMode, n: u64, pairs: usize) -> Result<(), String> {
    match mode {
        WorkerMode::Countdown => countdown(n),
        WorkerMode::Noop => {}
        WorkerMode::Sum => println!("{}", sum_stdin()),
        WorkerMode::Threads => park_threads(n),
        WorkerMode::Tasks => pend_tasks(n)?,
        WorkerMode::PythonCallsRust => {
            super::embed::python_calls_rust(Duration::from_millis(n), pairs)?
        }
    }
    Ok(())
}

/// The sum of the numbers on stdin, one per line; other lines count as
/// nothing.
fn sum_stdin() -> u64 {
    std::io::stdin()
        .lock()
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| line.parse::<u64>().ok())
        .sum()
}

/// Parks `n` threads, prints the resident and kernel-stack KiB, then lets
/// them finish.
fn park_threads(n: u64) {
    let before = kernel_stack_kib();
    let parked: Vec<_> = (0..n).map(|_| thread::spawn(thread::park)).collect();
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

/// Starts `n` tokio tasks that wait, prints the resident KiB (and 0 for
/// the kernel stack: tasks have none), then lets them finish.
fn pend_tasks(n: u64) -> Result<(), String> {
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
    Ok(())
}

/// A `key: N kB` line of a /proc file, in KiB (NaN when there is none).
fn status_kib(file: &str, key: &str) -> f64 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// This process's resident memory.
fn rss_kib() -> f64 {
    status_kib("/proc/self/status", "VmRSS:")
}

/// The kernel stacks of every thread on the machine.
fn kernel_stack_kib() -> f64 {
    status_kib("/proc/meminfo", "KernelStack:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum as _;

    #[test]
    fn every_worker_mode_has_its_name_on_the_command_line() {
        let names: Vec<String> = WorkerMode::value_variants()
            .iter()
            .map(|mode| command(*mode, 7))
            .map(|c| {
                let args: Vec<_> =
                    c.get_args().map(|a| a.to_string_lossy()).collect();
                args.join(" ")
            })
            .collect();
        assert_eq!(
            names,
            [
                "bench-worker countdown 7",
                "bench-worker noop 7",
                "bench-worker sum 7",
                "bench-worker threads 7",
                "bench-worker tasks 7",
                "bench-worker python-calls-rust 7",
            ]
        );
    }
}
