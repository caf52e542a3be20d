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
use std::panic;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};

/// Runs every job on a thread of its own, all at the same time, and returns
/// their results in the order of `jobs` (not the order they finish in).
/// However many jobs there are, each gets a new thread (no pool of a few
/// threads taking turns), with at least the stack `thread::spawn` gives
/// (2 MiB unless `RUST_MIN_STACK` says otherwise).
///
/// If a job panics, `spawn_all` panics too, after the other jobs finished,
/// with the job's own panic: its payload, as `JoinHandle::join` hands it
/// over, not a new panic with a message of `spawn_all`'s own.
///
/// One mistake is wrong but not graded: `spawn_all` waits for its jobs
/// however long they run, and a deadline of its own (give up after 5 s,
/// say) is wrong, but only a job that runs longer than the deadline shows
/// it, and a trial cannot wait that long on every run. Nor is a cap on
/// the threads started at once that lies above the 1100 the trials start
/// (waves of 4096, say): no cap is right, but a trial cannot start more
/// threads than every grading machine allows.
///
/// # Graded promises
///
/// - All the jobs run at the same time, so a job may wait for a later one to
///   finish; the results still come back in the order of `jobs`, even when the
///   jobs finish last to first. Trial:
///   `ch01::spawn_all::returns_results_in_input_order`.
/// - Every job runs on a new thread of its own, never on the calling thread,
///   and all of them are running at once, however many there are: a job may
///   wait until every other job has started, also with 1100 jobs (no limit
///   on how many run at a time, not even a generous one). That holds for
///   one job alone too, and for 1100 jobs that return at once: no thread
///   runs a second job after its first. `spawn_all` returns only once every
///   job's thread has ended, its thread-local values dropped (a result that
///   has arrived is not a thread that has been joined). Each job's thread
///   has at least the stack `thread::spawn` gives (2 MiB unless
///   `RUST_MIN_STACK` says otherwise; the trial sets it to 2.5 MiB, so a
///   stack of 2 MiB spelled out is too small). When the operating system
///   refuses a thread (none can start), `spawn_all` panics, as
///   `thread::spawn` does (it returns no shorter list of results), and runs
///   no job on the calling thread instead; when it refuses one part-way
///   (only two of three can start), `spawn_all` panics too, and the jobs
///   whose threads did start still run (none waits, at a start line, for a
///   thread that was refused). Trial:
///   `ch01::spawn_all::runs_every_job_on_its_own_thread`.
/// - Each job's thread has at least the stack `thread::spawn` gives, also
///   when `RUST_MIN_STACK` asks for more than any size spelled out looks
///   like it needs: the trial sets it to 16 MiB, so 4 MiB or 8 MiB "to be
///   safe" is too small (and 1100 threads of a size that large do not fit
///   in the memory a trial has): leave the stack size alone. Trial:
///   `ch01::spawn_all::gives_each_job_the_default_stack`.
/// - If a job panics, `spawn_all` panics too, with the job's own panic (its
///   payload passed on, not a new panic: a `panic!("...")`'s `&'static str`
///   stays a `&'static str`, not made a `String`), but only once every
///   other job has
///   finished (a job still running when the panic happens is waited for,
///   whether it comes before or after the panicking job in `jobs`, and its
///   thread has ended, its thread-local values dropped, as on success: a
///   scope that joins the rest implicitly waits only for the jobs to
///   return); when two jobs panic, it panics once, with one of their
///   payloads (a second panic while the first unwinds would abort the
///   process), still only once every other job has finished (it does not
///   stop joining at the second panic), and drops the other payload
///   (never forgets it: a leak), and
///   the results of the jobs that succeeded too, as the panic unwinds
///   (never forgotten either); jobs that all succeed give all their
///   results. A job's panic reaches
///   the panic hook that was set, once, like any other panic: the hook is
///   the program's, not `spawn_all`'s to replace or silence. Trial:
///   `ch01::spawn_all::a_panicking_job_panics_the_caller`.
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
        panic::resume_unwind(payload);
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
/// Empty chunks are pieces of `data` too (an empty slice at its end), and
/// along `data` the longer chunks come first.
///
/// If `sum_chunk` panics, `parallel_sum` panics too, with that panic's own
/// payload (not a new panic of its own), and returns no total.
///
/// Not graded: a cap on the threads, or batches of them, larger than the
/// 1100 threads the trials ask for: no cap is right, but a trial cannot
/// start more threads than every grading machine allows. Nor is a total
/// past `u64::MAX`: no promise says what happens then, and the trials'
/// totals are small.
///
/// # Graded promises
///
/// - Returns the sum of all of `data`, every element counted once, for any
///   `threads` from `1` up, also when `data` has fewer elements than `threads`
///   (some chunks are empty) and when it is empty (`0`). Trial:
///   `ch01::parallel_sum::adds_every_element_once`.
/// - The `threads` calls of `sum_chunk` all run at the same time, each on a
///   thread of its own: a `sum_chunk` may wait until every chunk has started,
///   on 4 threads and on 1100 (no batches of a few threads at a time, and no
///   cap on `threads`, not even a generous one). Trial:
///   `ch01::parallel_sum::sums_the_chunks_at_once`.
/// - Each chunk passed to `sum_chunk` is a piece of `data` itself, not a copy;
///   empty chunks included, which lie at the end of `data` (`&data[10..10]`,
///   never `&data[..0]` nor a `&[]` from elsewhere), and when `data` itself
///   is empty, every chunk is `data` (at its address, also when it is an
///   empty piece of a longer slice, such as `&v[3..3]`);
///   together the chunks cover `data` without gaps or overlaps, and their
///   lengths differ by at most one, the longer ones first along `data`,
///   whatever the number of threads (10 elements on 4 threads are chunks of
///   3, 3, 2 and 2, in that order; on 3 threads, 4, 3 and 3; on 7, 2, 2, 2,
///   1, 1, 1 and 1; on 12, ten of 1 and then two empty ones) and however
///   long the chunks (1000 elements on 3 threads are 334, 333 and 333: no
///   chunk's start moved to a cache line's edge). Trial:
///   `ch01::parallel_sum::borrows_balanced_chunks`.
/// - `sum_chunk` is called exactly `threads` times, once per chunk, empty
///   chunks included, each time on a different new thread and never on the
///   thread that called `parallel_sum`: also when `threads` is `1`, when it is
///   larger than `data.len()` (64 threads, and 1100, on 10 elements) and when
///   `data` is empty. Each of those threads has at least the stack
///   `thread::spawn` gives (2 MiB unless `RUST_MIN_STACK` says otherwise;
///   the trial sets it to 2.5 MiB, so a stack of 2 MiB spelled out is too
///   small). When the operating system refuses a thread (none can start),
///   `parallel_sum` panics, as `Scope::spawn` does (it returns no total
///   that leaves the chunk out), and sums no chunk on the calling thread
///   instead. Trial: `ch01::parallel_sum::gives_every_chunk_a_new_thread`.
/// - Each chunk's thread has at least the stack `thread::spawn` gives, also
///   when `RUST_MIN_STACK` asks for more than any size spelled out looks
///   like it needs: the trial sets it to 16 MiB, so 4 MiB or 8 MiB "to be
///   safe" is too small (and 1100 threads of a size that large do not fit
///   in the memory a trial has): leave the stack size alone. Trial:
///   `ch01::parallel_sum::gives_each_chunk_the_default_stack`.
/// - When the operating system refuses a thread part-way (only two of three
///   can start), `parallel_sum` panics too, and the chunks whose threads did
///   start are still summed (none waits, at a start line, for a thread that
///   was refused). Trial:
///   `ch01::parallel_sum::sums_the_started_chunks_when_a_thread_is_refused`.
/// - If a call of `sum_chunk` panics, `parallel_sum` panics too, with that
///   panic's own payload, not a new panic (a `panic!("...")`'s
///   `&'static str` stays a `&'static str`, not made a `String`), and
///   returns no total, even when
///   that chunk would sum without a panic if called again: it is not called
///   again (no retry, whose success would hide the panic); but only
///   once every other chunk's thread has ended (a chunk still being summed
///   when the first chunk panics is waited for, whether it lies before or
///   after the panicking chunk: it borrows `data`; and its
///   thread has ended, its thread-local values dropped, as on success: a
///   scope that joins the rest implicitly, as the panic leaves it, waits
///   only for the chunks to return). An empty chunk's panic is passed on
///   the same way (2 elements on 4 threads, the two empty chunks panicking:
///   their own payload, not the scope's "a scoped thread panicked"). Trial:
///   `ch01::parallel_sum::passes_a_chunk_panic_on`.
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
        // Every thread is joined, even after a chunk has panicked: a
        // panic raised while some handles are left unjoined would make the
        // scope wait for those chunks only until they return, not until
        // their threads have ended (their thread-local values dropped).
        let mut total = 0;
        let mut first_panic = None;
        for handle in handles {
            match handle.join() {
                Ok(partial) => total += partial,
                Err(payload) => {
                    first_panic.get_or_insert(payload);
                }
            }
        }
        // A chunk's panic goes on with its own payload: `expect` would
        // raise a new panic that hides it.
        if let Some(payload) = first_panic {
            panic::resume_unwind(payload);
        }
        total
    })
}

/// Starts `job` on a new thread called `name` with a stack of
/// `stack_bytes` bytes, and returns its handle. Fails (rather than panics)
/// when the operating system cannot create the thread.
///
/// The name is kept whole, however long: inside the job,
/// `thread::current().name()` is `Some(name)`, even where the operating
/// system shows only the first 15 bytes of it. Every character is kept as
/// it is, a tab or a newline too; only a NUL byte cannot be in a thread's
/// name: `thread::Builder` panics on it, and `spawn_worker` may too (that
/// name is the caller's mistake, and no trial passes one). The error on
/// failure is the operating system's own, as `thread::Builder::spawn`
/// returns it, so its `raw_os_error()` says why the thread was refused: no
/// panic happens on the way to it, not even one that `spawn_worker`
/// catches itself.
///
/// Not graded: a stack a little larger than asked (one more page, or
/// rounded up to 16 KiB; std already rounds up to whole pages; never a
/// smaller one, which is graded), and a cap
/// on live workers above the 1100 a trial starts, which no trial can reach
/// on every grading machine.
///
/// # Graded promises
///
/// - Inside the job, `thread::current().name()` is `Some(name)`, the whole
///   name as it was given, also when it is longer than the 15 bytes Linux
///   shows (a 37-byte name), when it has letters outside ASCII
///   (`café-wörker`), when it has spaces around it (`"  spaced out "`, not
///   trimmed), when it has a tab and a newline in it (`"\tcontrol\nchars"`,
///   kept, not replaced), when it ends in a line ending (`"line end\r\n"`,
///   kept, not trimmed), when it is empty (`Some("")`, not `None`) and for a second
///   worker of the same name (names are not made unique); the name
///   the operating system shows (`/proc`'s `comm`) is the name's first 15
///   bytes. Trial: `ch01::spawn_worker::names_the_thread`.
/// - The job gets the stack it asked for, not the default 2 MiB, nor a size of
///   `spawn_worker`'s own: with `stack_bytes` of 64 MiB it can recurse through
///   some 16 MiB of stack frames, and a thread asked for 64 MiB, 48 MiB,
///   42 MiB and 4 KiB (no whole number of MiB) or 512 KiB gets a stack of
///   that size, not one rounded up to a power of two, to whole MiB or to
///   whole 2 MiB (the C library may hand over a stack it kept from an ended
///   thread, at most four times as large, but it keeps none over 40 MiB:
///   the stacks of the threads asked for more are of that size, give or
///   take 64 KiB); one asked for 42 MiB and 10,000 bytes (no whole number
///   of pages) gets at least the stack `thread::Builder::stack_size` gives
///   for that size, not less (no rounding down to whole pages). A
///   `stack_bytes` of 0 or 4 KiB, below what the platform allows, is passed
///   on too: the standard library raises it to the platform's minimum and
///   starts the thread, so `spawn_worker` returns `Ok` (no error of its own)
///   and the stack is that minimum, under 1 MiB (0 is a size, not "the
///   default" as in Python's `threading.stack_size(0)`): exactly the stack
///   `thread::Builder::stack_size` gives a thread for the same size, with no
///   floor of `spawn_worker`'s own, not even a small one such as 64 KiB.
///   Two calls at once, for 64 MiB and 48 MiB, each held at its first read
///   of its name until both are (then the first goes on and ends before the
///   second does), give each thread its own call's size (no process-wide
///   setting, as Python's `threading.stack_size(n)` is, that one call sets
///   and the other then uses). Trial:
///   `ch01::spawn_worker::gives_the_requested_stack`.
/// - The returned handle joins to the job's result, and to the job's own panic
///   payload when the job panics (not a panic of `spawn_worker`'s own). When
///   the operating system cannot create the thread (a stack of `1 << 48`
///   bytes, 256 TiB, or of `usize::MAX` bytes, passed on as it is: a size
///   `spawn_worker` adds to or rounds up overflows), it returns
///   `Err` with the operating system's own `io::Error`, the one
///   `thread::Builder::spawn` returns for the same thread (same
///   `raw_os_error()`), and no panic happens on the way, not even one
///   `spawn_worker` catches itself; and it fails only then: 1100 workers
///   alive at once, each with a 64 KiB stack, all start (no cap of its own
///   on live workers, not even a generous one). Trial:
///   `ch01::spawn_worker::reports_a_stack_too_big_to_create`.
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
/// and its first visit gets ticket 1. Each counter counts its own visits:
/// making one leaves every other counter as it was. The count is a full
/// `u64`: it goes on past `u32::MAX` (about four billion visits) without
/// wrapping, even while several threads record visits across it.
///
/// `total()` is the count itself, never a copy that each `record`
/// overwrites with its own ticket (two such writes can cross, and the copy
/// then goes back and can end below the real count), nor a second count
/// that `record` adds to, or raises to its ticket (`fetch_max`), after it
/// has taken its ticket from the first (in between, a ticket handed out is
/// ahead of `total()`). Both show only while a thread is paused between
/// the two steps of its `record`: the trials hold one there to see them.
///
/// Three more mistakes are wrong but not graded, because the grader's
/// machine cannot show them. A count in an `AtomicUsize` is a full `u64`
/// only where `usize` has 64 bits: on a 32-bit machine it wraps at
/// `u32::MAX`. A `compare_exchange_weak` loop must retry with the value
/// the failure returns (or a fresh load), never with a guess such as
/// `seen + 1`: the weak form may fail although the count was `seen`, which
/// x86 never does but ARM may, and the guess then runs ahead of the count
/// and `record` never ends. And a spin lock of your own around a plain
/// `u64` must take the lock with `Acquire` and free it with `Release`:
/// with `Relaxed`, two `record`s may overlap, a data race that the trials
/// do not show on x86, and that loom cannot see either (it does not see
/// std's `UnsafeCell`). A `Release` fence placed after a relaxed store that
/// frees the lock is the same mistake: a fence orders only what comes
/// before it against the atomic writes after it, so it must come before
/// that store (or the store be `Release`). An `Acquire` fence placed before
/// a relaxed swap that takes the lock is the mirror mistake: a fence orders
/// only the atomic reads before it against what comes after it, so it must
/// come after that swap (or the swap be `Acquire`); it is not graded either,
/// for the same reasons. So is a `total()` that reads that plain `u64`
/// without taking the lock (a volatile read, say, because x86-64 reads 8
/// aligned bytes at once): a read beside a write is a data race, undefined
/// behaviour, yet x86-64 hands it the right number, so no trial sees it.
/// `fetch_add` on an `AtomicU64` avoids all of these. A lock around the
/// count (a `Mutex<u64>`) is right too, if slower, and so is a `total()`
/// that reads with a read-modify-write (`fetch_add(0)`): the trials that
/// hold a visit at a write accept both.
///
/// One more is wrong but not graded, because no trial can force it: a
/// `compare_exchange` loop that gives up after so many lost races (64, say)
/// and returns without counting the visit loses that visit and repeats a
/// ticket, but only when one thread loses that many races in a row. A
/// trial can hold a thread before one write, so that it loses one race,
/// not 64 in a row; the trials that record many visits at once catch it
/// only by luck, on some runs and not others. Retry until the exchange
/// succeeds, or use `fetch_add`, which never fails.
///
/// # Graded promises
///
/// - A `new()` counter's `total()` is `0`; when many threads call `record` at
///   the same time, `total()` counts every visit, none lost (eight threads
///   recording 5,000 visits each at once make 40,000), both while those
///   threads are still alive, their visits done, and after they ended; and
///   while they record, a thread reading `total()` again and again never
///   sees it go down. And while one visit is held halfway through `record`
///   (at a write to memory the trial made read-only: its first write, and,
///   with the counter laid across two pages at each offset it can lie at,
///   its first write to the one page or to the other), a second visit's ticket is at most
///   `total()` read right after it, and, the held visit changing nothing
///   meanwhile, one more than `total()` read right before it (a ticket the
///   held visit has taken already is counted in `total()`); once both are
///   done, their tickets are `1` and `2` (not a ticket read from the count
///   in one step and a count raised in another, which gives both the same
///   ticket) and `total()` is `2`. Trial:
///   `ch01::visit_counter::counts_every_visit`.
/// - The tickets that concurrent calls of `record` return are exactly `1`, `2`,
///   ..., `n` for `n` visits: each is handed out once, and the first is `1`;
///   also when one visit is held at its first write (to memory the trial
///   made read-only) while a second is recorded: their tickets are `1` and
///   `2`. Trial: `ch01::visit_counter::hands_out_each_ticket_once`.
/// - `VisitCounter::default()` behaves as `new()`: `total()` is `0`, also
///   after another counter has counted visits, the first two visits get
///   tickets `1` and `2`, and `total()` is then `2`. Each counter counts its
///   own visits: making another counter, with `new()` or `default()`, leaves
///   the others' totals as they were; and dropping a counter frees all it
///   allocated (200 counters made, used and dropped leave no byte
///   allocated). Trial: `ch01::visit_counter::default_starts_at_zero`.
/// - After `set_total_for_tests(visits)`, `total()` is `visits` and the next
///   ticket is `visits + 1`, also when `visits` is lower than the count was
///   (it sets the count, down as well as up); the count goes on past
///   `u32::MAX` without wrapping (the visit after visit `u32::MAX` gets
///   ticket `1 << 32`), and every one of its 64 bits counts: set to the
///   visit before `1 << 48`, `1 << 63` or `u64::MAX`, it hands out that
///   ticket next and `total()` then says so (no tag in the top bits, no
///   `i64`); visits that several threads record at once from `1 << 40` on
///   are all counted. Two
///   threads recording 20,000 visits at once across `u32::MAX` get exactly
///   the next 20,000 tickets, each once (checked over many rounds). And
///   while the visit that takes the count from `u32::MAX` to `1 << 32` is
///   held right after any one of its writes to the counter (on x86-64,
///   where the trial can single-step it), `total()` read meanwhile by
///   another thread is `u32::MAX` or `1 << 32`, a count the counter really
///   had, never the high half of one and the low half of the other (as two
///   32-bit halves, written under a lock but read without it, give). Trial:
///   `ch01::visit_counter::counts_past_u32_max`.
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
