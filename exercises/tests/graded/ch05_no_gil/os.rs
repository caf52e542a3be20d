//! What the trials of chapter 5 ask Linux: whether a thread is asleep, how
//! much CPU time it has used, and a process in which no new thread can
//! start, or only a few.
//!
//! Each trial runs in a process of its own (see `course::grader`), so a
//! limit set here holds for that one trial only.

use std::ffi::c_int;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::thread;

/// `struct rlimit` of a 64-bit Linux: the soft limit, then the hard one.
#[repr(C)]
struct Rlimit {
    soft: u64,
    hard: u64,
}

/// `RLIMIT_DATA`: the private writable memory a process may map, thread
/// stacks and the heap included (Linux 4.7 and later).
const RLIMIT_DATA: c_int = 2;

unsafe extern "C" {
    fn getrlimit(resource: c_int, limit: *mut Rlimit) -> c_int;
    fn setrlimit(resource: c_int, limit: *const Rlimit) -> c_int;
}

pub use course::grader::task::{Tid, asleep, cpu_ticks};

/// The id of the calling thread.
pub fn current_tid() -> Tid {
    course::grader::task::me().tid
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

fn get_data_limit() -> Rlimit {
    let mut limit = Rlimit { soft: 0, hard: 0 };
    // SAFETY: `limit` is a valid `struct rlimit` to write to.
    let status = unsafe { getrlimit(RLIMIT_DATA, &mut limit) };
    assert_eq!(status, 0, "getrlimit(RLIMIT_DATA) failed");
    limit
}

fn set_data_limit(limit: &Rlimit) {
    // SAFETY: `limit` is a valid `struct rlimit` to read.
    let status = unsafe { setrlimit(RLIMIT_DATA, limit) };
    assert_eq!(status, 0, "setrlimit(RLIMIT_DATA) failed");
}

/// Runs `f` while no new thread can start, as when a machine runs out of
/// memory or threads: the process may map only 1 MiB more private memory,
/// less than a thread's stack (2 MiB unless told otherwise), and plenty
/// for the small allocations `f` makes. Returns how `f` ended, or `None`
/// when a thread still starts under that limit (it is not enforced here),
/// and the check cannot be made.
///
/// Call it before this process has started and ended any thread: the C
/// library keeps the stacks of ended threads for new ones, which then
/// need no memory.
pub fn while_no_thread_can_start<T>(
    f: impl FnOnce() -> T,
) -> Option<thread::Result<T>> {
    let before = get_data_limit();
    let tight = Rlimit {
        soft: (data_in_use() + (1 << 20)).min(before.soft),
        hard: before.hard,
    };
    set_data_limit(&tight);
    let outcome = match thread::Builder::new().spawn(|| ()) {
        Ok(probe) => {
            let _ = probe.join();
            None
        }
        Err(_) => Some(panic::catch_unwind(AssertUnwindSafe(f))),
    };
    set_data_limit(&before);
    outcome
}

/// Runs `f` while exactly `n` new threads can start, and no more, as when
/// a machine runs out of memory or threads part-way through: the process
/// may map only 1 MiB more private memory, less than a thread's stack, and
/// `n` stacks of ended threads are left in the C library's cache for new
/// threads to take (any other cached stack is taken by a thread of this
/// helper's, held asleep until `f` has returned). Returns how `f` ended,
/// or `None` when the limit is not enforced here, or the stacks are not
/// cached, and the check cannot be made.
pub fn while_only_threads_can_start<T>(
    n: usize,
    f: impl FnOnce() -> T,
) -> Option<thread::Result<T>> {
    // At most this many threads are probed for: far more than any cache
    // holds (the C library keeps 40 MiB of stacks, 20 of 2 MiB).
    const PROBED: usize = 64;
    // `n` threads alive at once, then ended, leave (at least) `n` stacks in
    // the cache (one after the other, they would all take the same one).
    let start = std::sync::Arc::new(std::sync::Barrier::new(n + 1));
    let ended: Vec<_> = (0..n)
        .map(|_| {
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
            })
        })
        .collect();
    start.wait();
    for handle in ended {
        handle.join().expect("a thread that only waited panicked");
    }
    let before = get_data_limit();
    let tight = Rlimit {
        soft: (data_in_use() + (1 << 20)).min(before.soft),
        hard: before.hard,
    };
    set_data_limit(&tight);
    // Threads that stay asleep until their channel's sender is dropped,
    // each on a cached stack, until no more can start.
    let mut held = Vec::new();
    while held.len() < PROBED {
        let (release, wait) = std::sync::mpsc::channel::<()>();
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
    set_data_limit(&before);
    outcome
}
