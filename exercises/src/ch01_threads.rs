//! Chapter 1, Threads: four exercises.
//!
//! Start threads, give them what they need (a name, a big enough stack, a
//! borrowed slice), and share one counter between them exactly.
//!
//! - Book: chapter 1, "Threads", section "Exercises".
//! - Graded by `exercises/tests/graded/ch01_threads.rs`:
//!   `cargo course grade ch01`.
//!
//! The tests check behaviour, and where the chapter is about concurrency,
//! that the work really runs concurrently: a version that does the work one
//! piece after another times out at a barrier that needs every thread.

// Compiled while this module is on: `course grade` leaves out, or stubs
// out again, what does not compile, so that it costs only its own points.
#![cfg(module = "ch01_threads")]

use std::io;
use std::thread::JoinHandle;

/// Runs every job on a thread of its own, all at the same time, and returns
/// their results in the order of `jobs` (not the order they finish in).
///
/// If a job panics, `spawn_all` panics too, after the other jobs finished.
pub fn spawn_all<F, T>(jobs: Vec<F>) -> Vec<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // TODO(ch01): spawn one thread per job, then join them in order.
    let _ = jobs;
    todo!("ch01: spawn_all")
}

/// Splits `data` into `threads` contiguous chunks whose lengths differ by at
/// most one, sums each chunk with `sum_chunk` on a thread of its own, all at
/// once, and returns the total. `threads` is at least 1. When `data` has
/// fewer elements than `threads`, some chunks are empty; every chunk, empty
/// or not, still gets its own thread and its own call of `sum_chunk`. Those
/// are `threads` new threads: the calling thread sums no chunk itself, it
/// only waits for them (even when `threads` is 1).
///
/// The chunks are borrowed from `data`, not copied: scoped threads may
/// borrow from the caller because the scope joins them before it returns.
pub fn parallel_sum<S>(data: &[u64], threads: usize, sum_chunk: S) -> u64
where
    S: Fn(&[u64]) -> u64 + Sync,
{
    // TODO(ch01): split `data` and sum the chunks in `thread::scope`.
    let _ = (data, threads, sum_chunk);
    todo!("ch01: parallel_sum")
}

/// Starts `job` on a new thread called `name` with a stack of
/// `stack_bytes` bytes, and returns its handle. Fails (rather than panics)
/// when the operating system cannot create the thread.
///
/// The name is kept whole, however long: inside the job,
/// `thread::current().name()` is `Some(name)`, even where the operating
/// system shows only the first 15 bytes of it. The error on failure is the
/// operating system's own, so its `raw_os_error()` says why the thread was
/// refused. No panic happens on the way, not even one that `spawn_worker`
/// catches itself.
pub fn spawn_worker<F, T>(
    name: &str,
    stack_bytes: usize,
    job: F,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // TODO(ch01): configure a `thread::Builder`.
    let _ = (name, stack_bytes, job);
    todo!("ch01: spawn_worker")
}

/// Counts visits from many threads at once, losing none.
///
/// Shared by reference (`&VisitCounter` in scoped threads, or an
/// `Arc<VisitCounter>`), so every method takes `&self`. A counter made by
/// `VisitCounter::default()` is the same as one made by `new()`: at zero,
/// and its first visit gets ticket 1. The count is a full `u64`: it goes on
/// past `u32::MAX` (about four billion visits) without wrapping.
#[derive(Debug, Default)]
pub struct VisitCounter {
    // TODO(ch01): a field that many threads can update through `&self`.
}

impl VisitCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        // TODO(ch01): start at zero.
        todo!("ch01: VisitCounter::new")
    }

    /// Records one visit and returns its ticket: the number of visits
    /// counted so far, this one included (the first visit gets 1).
    pub fn record(&self) -> u64 {
        // TODO(ch01): count the visit without losing a concurrent one.
        todo!("ch01: VisitCounter::record")
    }

    /// The number of visits recorded so far.
    pub fn total(&self) -> u64 {
        // TODO(ch01): read the count.
        todo!("ch01: VisitCounter::total")
    }

    /// Sets the count to `visits`, as if that many visits had been
    /// recorded: the graded tests start near `u32::MAX` this way instead of
    /// recording four billion visits. Call it only before sharing the
    /// counter.
    #[doc(hidden)]
    pub fn set_total_for_tests(&self, visits: u64) {
        // TODO(ch01): store `visits` in the count.
        let _ = visits;
        todo!("ch01: VisitCounter::set_total_for_tests")
    }
}
