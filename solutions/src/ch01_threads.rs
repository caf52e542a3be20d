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
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};

/// Runs every job on a thread of its own, all at the same time, and returns
/// their results in the order of `jobs` (not the order they finish in).
///
/// If a job panics, `spawn_all` panics too, after the other jobs finished.
pub fn spawn_all<F, T>(jobs: Vec<F>) -> Vec<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // Start every thread before joining any: joining inside this loop would
    // run the jobs one after another.
    let handles: Vec<JoinHandle<T>> =
        jobs.into_iter().map(thread::spawn).collect();
    // Joining in the order of the handles gives the results in input order,
    // whatever order the threads finish in.
    let mut results = Vec::with_capacity(handles.len());
    let mut first_panic = None;
    for handle in handles {
        match handle.join() {
            Ok(result) => results.push(result),
            // Keep joining the others, then re-raise the first panic.
            Err(payload) => {
                first_panic.get_or_insert(payload);
            }
        }
    }
    if let Some(payload) = first_panic {
        std::panic::resume_unwind(payload);
    }
    results
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
    assert!(threads >= 1, "parallel_sum needs at least one thread");
    let base = data.len() / threads;
    let longer = data.len() % threads;
    thread::scope(|scope| {
        let mut rest = data;
        let mut handles = Vec::with_capacity(threads);
        for index in 0..threads {
            // The first `longer` chunks take one extra element.
            let length = base + usize::from(index < longer);
            let (chunk, tail) = rest.split_at(length);
            rest = tail;
            let sum_chunk = &sum_chunk;
            handles.push(scope.spawn(move || sum_chunk(chunk)));
        }
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a chunk's thread panicked"))
            .sum()
    })
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
    // `thread::spawn` is `Builder::new().spawn(..).unwrap()` with the
    // defaults: no name and a 2 MiB stack (unless RUST_MIN_STACK says
    // otherwise). The builder is how a thread gets anything else. It keeps
    // the whole name for `thread::current().name()`, and cuts only the copy
    // it hands to the operating system to that system's limit (15 bytes on
    // Linux). Its `spawn` returns the operating system's error as it is.
    thread::Builder::new()
        .name(name.to_string())
        .stack_size(stack_bytes)
        .spawn(job)
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
    /// One atomic read-modify-write per visit: no lock, no lost update.
    visits: AtomicU64,
}

impl VisitCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        VisitCounter {
            visits: AtomicU64::new(0),
        }
    }

    /// Records one visit and returns its ticket: the number of visits
    /// counted so far, this one included (the first visit gets 1).
    pub fn record(&self) -> u64 {
        // `fetch_add` reads and writes in one indivisible step, so two
        // threads can never both see the same old value. Relaxed suffices:
        // the count guards no other memory, it is only a number.
        self.visits.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The number of visits recorded so far.
    pub fn total(&self) -> u64 {
        // Relaxed, like `record`: callers that need every visit counted
        // join the visiting threads first, and joining orders memory.
        self.visits.load(Ordering::Relaxed)
    }

    /// Sets the count to `visits`, as if that many visits had been
    /// recorded: the graded tests start near `u32::MAX` this way instead of
    /// recording four billion visits. Call it only before sharing the
    /// counter.
    #[doc(hidden)]
    pub fn set_total_for_tests(&self, visits: u64) {
        // Relaxed, like the others: the graded tests set the count before
        // they start any thread that records.
        self.visits.store(visits, Ordering::Relaxed);
    }
}
