//! For trials that check what a solution does when a thread cannot start
//! (Linux only): a process in which only a few new threads can start, or
//! none, as when a machine runs out of memory or threads part-way through.
//!
//! The limit is `RLIMIT_DATA`, the private writable memory a process may
//! map, thread stacks and the heap included (Linux 4.7 and later). Each
//! trial runs in a process of its own (see [`crate::grader`]), so a limit
//! set here holds for that one trial only, and it is lifted again before
//! these functions return.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// At most this many threads are started to use up the C library's cache
/// of stacks: far more than it holds (it keeps 40 MiB of stacks, 20 of
/// 2 MiB).
const PROBED: usize = 64;

/// Runs `f` while no new thread can start: the same as
/// [`while_only_threads_can_start`] with `0`.
pub fn while_no_thread_can_start<T>(
    f: impl FnOnce() -> T,
) -> Option<thread::Result<T>> {
    while_only_threads_can_start(0, f)
}

/// Runs `f` while exactly `n` new threads can start, and no more: the
/// process may map only 1 MiB more private memory, less than a thread's
/// stack (2 MiB unless told otherwise) and plenty for the small
/// allocations `f` makes, and `n` stacks of ended threads are left in the
/// C library's cache for new threads to take (any other cached stack is
/// taken by a thread of this function's, held asleep until `f` has
/// returned). Returns how `f` ended, or `None` when the limit is not
/// enforced here, or the stacks are not cached, and the check cannot be
/// made.
pub fn while_only_threads_can_start<T>(
    n: usize,
    f: impl FnOnce() -> T,
) -> Option<thread::Result<T>> {
    // `n` threads alive at once, then ended, leave (at least) `n` stacks in
    // the cache (one after the other, they would all take the same one).
    let start = Arc::new(Barrier::new(n + 1));
    let ended: Vec<_> = (0..n)
        .map(|_| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
            })
        })
        .collect();
    start.wait();
    for handle in ended {
        handle.join().expect("a thread that only waited panicked");
    }
    let (soft, hard) = getrlimit(Resource::RLIMIT_DATA)
        .expect("getrlimit(RLIMIT_DATA) failed");
    let tight = (data_in_use() + (1 << 20)).min(soft);
    setrlimit(Resource::RLIMIT_DATA, tight, hard)
        .expect("setrlimit(RLIMIT_DATA) failed");
    // Threads that stay asleep until their channel's sender is dropped,
    // each on a cached stack, until no more can start.
    let mut held = Vec::new();
    while held.len() < PROBED {
        let (release, wait) = mpsc::channel::<()>();
        match thread::Builder::new().spawn(move || {
            let _ = wait.recv();
        }) {
            Ok(handle) => held.push((release, handle)),
            Err(_) => break,
        }
    }
    let outcome = if held.len() < n || held.len() == PROBED {
        None
    } else {
        // `n` of them end, and give their stacks back to the cache.
        for (release, handle) in held.drain(..n) {
            drop(release);
            handle.join().expect("a held thread panicked");
        }
        Some(panic::catch_unwind(AssertUnwindSafe(f)))
    };
    for (release, handle) in held {
        drop(release);
        handle.join().expect("a held thread panicked");
    }
    setrlimit(Resource::RLIMIT_DATA, soft, hard)
        .expect("setrlimit(RLIMIT_DATA) failed");
    outcome
}

/// The private writable memory this process has mapped now, in bytes
/// (`VmData` in `/proc/self/status`).
fn data_in_use() -> u64 {
    let status = fs::read_to_string("/proc/self/status")
        .expect("cannot read /proc/self/status");
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmData:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .expect("no VmData in /proc/self/status");
    kib * 1024
}
