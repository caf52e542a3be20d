//! A process in which no new thread can start, as when a machine runs out
//! of memory or threads: there, a job or a chunk still never runs on the
//! calling thread. (The same limit as chapter 5's trials set.)
//!
//! Each trial runs in a process of its own (see `course::grader`), so a
//! limit set here holds for that one trial only.

use std::ffi::c_int;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
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

/// Runs `f` while no new thread can start: the process may map only 1 MiB
/// more private memory, less than a thread's stack, and every stack of an
/// ended thread that the C library keeps for new threads is taken by a
/// thread of this helper's, held asleep until `f` has returned (so threads
/// the trial started before do not matter). Returns how `f` ended, or
/// `None` when the limit is not enforced here, and the check cannot be
/// made.
pub(super) fn while_no_thread_can_start<T>(
    f: impl FnOnce() -> T,
) -> Option<thread::Result<T>> {
    // At most this many threads are probed for: far more than any cache
    // holds (the C library keeps 40 MiB of stacks, 16 of 2.5 MiB).
    const PROBED: usize = 64;
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
        let (release, wait) = mpsc::channel::<()>();
        match thread::Builder::new().spawn(move || {
            let _ = wait.recv();
        }) {
            Ok(handle) => held.push((release, handle)),
            Err(_) => break,
        }
    }
    let outcome =
        (held.len() < PROBED).then(|| panic::catch_unwind(AssertUnwindSafe(f)));
    for (release, handle) in held {
        drop(release);
        handle.join().expect("a held thread panicked");
    }
    set_data_limit(&before);
    outcome
}
