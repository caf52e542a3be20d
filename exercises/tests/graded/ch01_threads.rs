//! Graded trials of chapter 1, Threads.
//!
//! The "how" checks: jobs and chunks wait for each other at barriers and
//! channels, so a version that runs them one after another never gets past
//! the first one, and the grader reports a TIMEOUT that says why.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch01")]

use std::cell::RefCell;
use std::collections::HashSet;
use std::hint::black_box;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread::{self, ThreadId};
use std::time::Duration;

use course::grader::task::{self, Tid};
use course::grader::{Trial, alloc};
use exercises::ch01_threads::{
    VisitCounter, parallel_sum, spawn_all, spawn_worker,
};

/// Deadline for trials whose only way to hang is a missing thread.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(5);

const NOT_AT_ONCE: &str = "did not run the jobs at the same time: each \
    job waits for another one that was never started (did you join each \
    thread inside the loop that spawns them?)";

const CHUNKS_NOT_AT_ONCE: &str = "did not sum the chunks at the same time: \
    each chunk waits at a barrier until every chunk has started";

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new(
            "ch01::spawn_all::returns_results_in_input_order",
            2,
            returns_results_in_input_order,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(NOT_AT_ONCE),
        Trial::new(
            "ch01::spawn_all::runs_every_job_on_its_own_thread",
            2,
            runs_every_job_on_its_own_thread,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(
            "did not run the jobs at the same time: 1100 jobs wait at a \
             barrier until every one of them has started (did you join \
             each thread inside the loop that spawns them, run the jobs on \
             a pool of fewer threads, or let at most so many run at once?)",
        ),
        Trial::new(
            "ch01::spawn_all::a_panicking_job_panics_the_caller",
            1,
            a_panicking_job_panics_the_caller,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(
            "one job panicked, and the other waits until spawn_all's caller \
             sleeps waiting for it to end; the caller never did: does \
             spawn_all wait for the jobs with JoinHandle::join, or with a \
             loop that never sleeps (or a channel that never closes)?",
        ),
        Trial::new(
            "ch01::parallel_sum::adds_every_element_once",
            1,
            adds_every_element_once,
        ),
        Trial::new(
            "ch01::parallel_sum::sums_the_chunks_at_once",
            2,
            sums_the_chunks_at_once,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(CHUNKS_NOT_AT_ONCE),
        Trial::new(
            "ch01::parallel_sum::borrows_balanced_chunks",
            2,
            borrows_balanced_chunks,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(CHUNKS_NOT_AT_ONCE),
        Trial::new(
            "ch01::parallel_sum::gives_every_chunk_a_new_thread",
            1,
            gives_every_chunk_a_new_thread,
        ),
        Trial::new(
            "ch01::parallel_sum::passes_a_chunk_panic_on",
            1,
            passes_a_chunk_panic_on,
        )
        .timeout(BARRIER_TIMEOUT)
        .on_timeout(
            "one chunk panicked, and another waits for that chunk's thread \
             to end and for parallel_sum's caller to sleep waiting for it; \
             that never happened: are the chunks summed on threads of their \
             own, all at once, and joined with ScopedJoinHandle::join?",
        ),
        Trial::new("ch01::spawn_worker::names_the_thread", 1, names_the_thread),
        Trial::new(
            "ch01::spawn_worker::gives_the_requested_stack",
            2,
            gives_the_requested_stack,
        ),
        Trial::new(
            "ch01::spawn_worker::reports_a_stack_too_big_to_create",
            1,
            reports_a_stack_too_big_to_create,
        ),
        Trial::new(
            "ch01::visit_counter::counts_every_visit",
            2,
            counts_every_visit,
        ),
        Trial::new(
            "ch01::visit_counter::hands_out_each_ticket_once",
            2,
            hands_out_each_ticket_once,
        ),
        Trial::new(
            "ch01::visit_counter::default_starts_at_zero",
            1,
            default_starts_at_zero,
        ),
        Trial::new(
            "ch01::visit_counter::counts_past_u32_max",
            1,
            counts_past_u32_max,
        ),
    ]
}

/// Sends on its channel when dropped: as the thread whose thread-local
/// value it is ends, after its job has returned and handed its result over.
struct TellAtEnd(mpsc::Sender<()>);

impl Drop for TellAtEnd {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

thread_local! {
    static TELL_AT_END: RefCell<Option<TellAtEnd>> =
        const { RefCell::new(None) };
}

/// Job `i` finishes only after job `i + 1`'s thread has ended, so the jobs
/// finish in reverse order, each result handed over before the job before
/// it finishes (whatever the scheduler does); the results must still come
/// back in input order.
fn returns_results_in_input_order() {
    const JOBS: usize = 4;
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..JOBS).map(|_| mpsc::channel::<()>()).unzip();
    let mut senders: Vec<Option<mpsc::Sender<()>>> =
        senders.into_iter().map(Some).collect();
    let mut jobs = Vec::new();
    for (index, done_after_me) in receivers.into_iter().enumerate() {
        // Job `index` tells job `index - 1` when it is done.
        let tell_previous =
            index.checked_sub(1).and_then(|p| senders[p].take());
        let wait_for_next = (index + 1 < JOBS).then_some(done_after_me);
        jobs.push(move || {
            if let Some(next) = wait_for_next {
                next.recv().expect("the next job vanished");
            }
            if let Some(previous) = tell_previous {
                TELL_AT_END.with(|slot| {
                    *slot.borrow_mut() = Some(TellAtEnd(previous));
                });
            }
            index * 10
        });
    }
    let results = spawn_all(jobs);
    assert_eq!(
        results,
        vec![0, 10, 20, 30],
        "the jobs finished last-to-first; results must still be in the \
         order of the jobs (join the handles in order)"
    );
}

/// The stack a thread that `thread::spawn` starts is given: `RUST_MIN_STACK`
/// bytes if that variable is set, else 2 MiB (std's default).
fn default_stack_bytes() -> usize {
    std::env::var("RUST_MIN_STACK")
        .ok()
        .and_then(|bytes| bytes.parse().ok())
        .unwrap_or(2 << 20)
}

/// The stack the trials that check it have `thread::spawn` give: 2.5 MiB,
/// more than std's 2 MiB, so that a thread whose stack size is spelled out
/// as "the default" (2 MiB) shows up as too small. (1100 threads with this
/// stack still fit in the 4 GiB a trial may map.)
const RAISED_STACK: usize = 5 << 19;

/// Sets `RUST_MIN_STACK` to [`RAISED_STACK`] unless it is set already, and
/// returns the stack `thread::spawn` then gives. The standard library reads
/// the variable once, when it first starts a thread without a stack size
/// of its own; a trial runs in a process of its own, so it does that first
/// thing, while this thread is still the only one.
fn raise_the_default_stack() -> usize {
    let alone = std::fs::read_dir("/proc/self/task")
        .is_ok_and(|threads| threads.count() == 1);
    if alone && std::env::var_os("RUST_MIN_STACK").is_none() {
        // SAFETY: this process has no thread but this one, so nothing can
        // read or write the environment meanwhile.
        unsafe {
            std::env::set_var("RUST_MIN_STACK", RAISED_STACK.to_string())
        };
    }
    default_stack_bytes()
}

/// 1100 jobs, more than any machine has cores and more than a "safe" cap
/// of 1024 lets run at once, meet at a barrier of 1100, each reporting the
/// thread it ran on and the size of its stack: a pool of a few workers, or
/// a limit on how many jobs run at a time, never gets them all to the
/// barrier, and a thread with a smaller stack than `thread::spawn` gives is
/// not what a job expects. (Each job does almost nothing, and 1100 stacks
/// of 2.5 MiB fit in the 4 GiB a trial may map.) Then one job alone, and
/// 1100 jobs that end at once.
fn runs_every_job_on_its_own_thread() {
    // First thing: no thread has been started yet.
    let default = raise_the_default_stack();
    const JOBS: usize = 1100;
    let barrier = Arc::new(Barrier::new(JOBS));
    let jobs: Vec<_> = (0..JOBS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            move || {
                barrier.wait();
                (thread::current().id(), stack_size_of_this_thread())
            }
        })
        .collect();
    let seen: Vec<(ThreadId, usize)> = spawn_all(jobs);
    let distinct: HashSet<_> = seen.iter().map(|&(id, _)| id).collect();
    assert_eq!(seen.len(), JOBS, "expected one result per job");
    assert_eq!(
        distinct.len(),
        JOBS,
        "expected {JOBS} distinct worker threads, saw {}",
        distinct.len()
    );
    assert!(
        !distinct.contains(&thread::current().id()),
        "a job ran on the calling thread; each job needs a thread of its own"
    );
    let smallest = seen.iter().map(|&(_, size)| size).min().unwrap();
    assert!(
        smallest + STACK_SLACK >= default,
        "a job's thread had a stack of {smallest} bytes, less than the \
         {default} that thread::spawn gives: a job may need all of it, and \
         overflowing a stack aborts the whole process (leave the stack size \
         alone: thread::spawn gives RUST_MIN_STACK bytes when it is set)"
    );
    one_job_gets_a_thread_that_ends_first();
    quick_jobs_get_threads_of_their_own();
}

/// What a job's thread-local value sees as the thread ends: the flags it
/// sets, and the thread that called `spawn_all`.
struct AtThreadEnd {
    caller: Tid,
    ended: Arc<AtomicBool>,
    returned: Arc<AtomicBool>,
}

impl AtThreadEnd {
    /// A value for a job's thread, and its two flags: the thread has
    /// ended, and `spawn_all` has returned (which the trial sets).
    fn new(caller: Tid) -> (Self, Arc<AtomicBool>, Arc<AtomicBool>) {
        let ended = Arc::new(AtomicBool::new(false));
        let returned = Arc::new(AtomicBool::new(false));
        let value = AtThreadEnd {
            caller,
            ended: Arc::clone(&ended),
            returned: Arc::clone(&returned),
        };
        (value, ended, returned)
    }
}

impl Drop for AtThreadEnd {
    /// Runs as the job's thread ends, after the job has returned: waits
    /// until the caller sleeps (in `join`, waiting for this thread, as it
    /// must), or until `spawn_all` has returned without waiting.
    fn drop(&mut self) {
        while !self.returned.load(Ordering::SeqCst)
            && task::state(self.caller).is_some_and(|state| state != 'S')
        {
            thread::sleep(Duration::from_millis(1));
        }
        self.ended.store(true, Ordering::SeqCst);
    }
}

thread_local! {
    static AT_THREAD_END: RefCell<Option<AtThreadEnd>> =
        const { RefCell::new(None) };
}

/// One job alone also gets a thread of its own, and `spawn_all` returns only
/// once that thread has ended: its thread-local values dropped, which the
/// standard library does after the job has returned and its result is
/// ready. A `spawn_all` that takes the results from a channel and never
/// joins returns while the thread is still ending (the value's drop waits
/// until the caller sleeps, which such a caller does not do).
fn one_job_gets_a_thread_that_ends_first() {
    let caller = my_tid();
    let (at_end, ended, returned) = AtThreadEnd::new(caller);
    let job = move || {
        AT_THREAD_END.with(|slot| *slot.borrow_mut() = Some(at_end));
        thread::current().id()
    };
    let ids = spawn_all(vec![job]);
    let ended_first = ended.load(Ordering::SeqCst);
    returned.store(true, Ordering::SeqCst);
    assert_eq!(ids.len(), 1, "one job, one result");
    assert_ne!(
        ids[0],
        thread::current().id(),
        "a single job ran on the calling thread; every job needs a thread \
         of its own, however many there are, one included"
    );
    assert!(
        ended_first,
        "spawn_all returned the only job's result while its thread was \
         still running (its thread-local values not yet dropped): join \
         every thread before returning; a result that arrives on a channel \
         does not mean its thread is done"
    );
}

/// 1100 jobs that return at once, each the thread it ran on: every job gets
/// a new thread, also when its job is so short that a thread could finish
/// it and take another before the next thread has started.
fn quick_jobs_get_threads_of_their_own() {
    const JOBS: usize = 1100;
    let jobs: Vec<fn() -> ThreadId> = vec![|| thread::current().id(); JOBS];
    let ids = spawn_all(jobs);
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        JOBS,
        "{JOBS} jobs that end at once ran on only {} distinct threads: \
         some thread ran several jobs, one after another; each job gets a \
         new thread of its own (no threads that take jobs from a shared \
         queue)",
        distinct.len()
    );
}

/// The payload of the panicking job: a type of the trial's own, so that a
/// panic `spawn_all` raises itself cannot pass for the job's.
#[derive(Debug)]
struct TheJobsOwnPanic;

/// The calling thread's id, as `/proc/self/task/<tid>` names it.
fn my_tid() -> Tid {
    task::me().tid
}

/// A job that panics must not disappear silently, nor leave the other
/// jobs running behind the caller's back. The first job panics at once;
/// the second is still running then, and ends only once the first job's
/// thread is gone and the caller sleeps: in `join`, waiting for it. A
/// `spawn_all` that raises the panic as soon as it has joined the first
/// job never sleeps before it does, so the second job is still running
/// when the panic reaches the trial, whatever the scheduling. The second
/// job's thread, once the job has returned, ends only when the caller
/// sleeps again: a `spawn_all` that lets a scope wait for the second job
/// (which wakes it as soon as the job has returned, before the thread's
/// thread-local values are dropped) panics while that thread still runs.
fn a_panicking_job_panics_the_caller() {
    let calm: Vec<fn() -> u32> = vec![|| 1, || 3];
    assert_eq!(spawn_all(calm), vec![1, 3], "two jobs that return 1 and 3");
    let caller = my_tid();
    let slow_job_done = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&slow_job_done);
    let (tell, told) = mpsc::channel();
    // The second job's thread-local value: its drop, as the thread ends,
    // waits until the caller sleeps (in `join`, as it must).
    let (at_end, ended, returned) = AtThreadEnd::new(caller);
    let jobs: Vec<Box<dyn FnOnce() -> u32 + Send>> = vec![
        Box::new(move || {
            tell.send(my_tid()).expect("the second job vanished");
            panic::panic_any(TheJobsOwnPanic)
        }),
        Box::new(move || {
            AT_THREAD_END.with(|slot| *slot.borrow_mut() = Some(at_end));
            let failed = told.recv().expect("the first job never started");
            // Until the failed job's thread is gone: from then on, joining
            // it gives its panic at once, without sleeping.
            while task::state(failed).is_some_and(|s| !matches!(s, 'Z' | 'X')) {
                thread::sleep(Duration::from_millis(1));
            }
            // Until the caller sleeps (or is gone, having failed the
            // trial): a caller that waits for this job, as it must.
            while task::state(caller).is_some_and(|state| state != 'S') {
                thread::sleep(Duration::from_millis(1));
            }
            done.store(true, Ordering::SeqCst);
            2
        }),
    ];
    let (outcome, hooked) = count_panics_where(
        |info| info.payload().is::<TheJobsOwnPanic>(),
        || panic::catch_unwind(AssertUnwindSafe(|| spawn_all(jobs))),
    );
    // Read before anything that could let the second job go on.
    let slow_job_was_done = slow_job_done.load(Ordering::SeqCst);
    let slow_job_ended = ended.load(Ordering::SeqCst);
    returned.store(true, Ordering::SeqCst);
    let payload = match outcome {
        Ok(results) => panic!(
            "one job panicked, but spawn_all returned {results:?}; a lost \
             panic hides a failed job (see JoinHandle::join and \
             panic::resume_unwind)"
        ),
        Err(payload) => payload,
    };
    assert!(
        slow_job_was_done,
        "spawn_all panicked while another job was still running; join every \
         thread first, then re-raise the panic (panic::resume_unwind)"
    );
    assert!(
        slow_job_ended,
        "spawn_all panicked once the other job had returned, but while its \
         thread was still ending (its thread-local values not yet dropped): \
         join every thread before passing the panic on; a scope that joins \
         the rest implicitly waits only for the jobs to return, not for \
         their threads to end"
    );
    assert!(
        payload.is::<TheJobsOwnPanic>(),
        "spawn_all panicked, but not with the job's own panic: it raised \
         one of its own (an unwrap or a panic! with a new message) instead \
         of passing the job's payload on with panic::resume_unwind"
    );
    assert_eq!(
        hooked, 1,
        "the job panicked once, and the panic hook that was set saw that \
         panic {hooked} times: the panic is reported as usual (the hook is \
         the program's, not spawn_all's to replace or silence)"
    );
    two_panicking_jobs_panic_the_caller_once();
}

/// Jobs 1 and 3 of three panic: `spawn_all` panics once, with one of their
/// payloads. A panic raised while another unwinds aborts the process (a
/// guard that joins the other jobs with `expect` as the first panic leaves
/// `spawn_all`), and then this trial dies without a verdict: that fails.
fn two_panicking_jobs_panic_the_caller_once() {
    let jobs: Vec<fn() -> u32> =
        vec![|| panic::panic_any(TheJobsOwnPanic), || 2, || {
            panic::panic_any(TheJobsOwnPanic)
        }];
    let outcome = panic::catch_unwind(|| spawn_all(jobs));
    match outcome {
        Ok(results) => panic!(
            "two of three jobs panicked, but spawn_all returned {results:?}"
        ),
        Err(payload) => assert!(
            payload.is::<TheJobsOwnPanic>(),
            "two of three jobs panicked, and spawn_all panicked, but not \
             with a job's own panic: pass one of their payloads on with \
             panic::resume_unwind, once every job has been joined"
        ),
    }
}

/// Every chunk, empty or not, gets its own call of `sum_chunk`, each on a
/// new thread and none on the caller's: 64 threads on 10 elements leave 54
/// chunks empty, and 1100 threads are more than a "safe" cap of 1024.
/// Thread ids are never reused, so the calls need not overlap to show up as
/// distinct threads. Each call also reports its thread's stack, which must
/// be at least what `thread::spawn` gives.
fn gives_every_chunk_a_new_thread() {
    // First thing: no thread has been started yet.
    let default = raise_the_default_stack();
    let data: Vec<u64> = (1..=10).collect();
    let caller = thread::current().id();
    for (data, threads) in [
        (&data[..], 1),
        (&data, 3),
        (&data, 64),
        (&[], 4),
        (&data, 1100),
    ] {
        let calls = Mutex::new(Vec::new());
        let smallest_stack = AtomicUsize::new(usize::MAX);
        let total = parallel_sum(data, threads, |chunk| {
            calls.lock().unwrap().push(thread::current().id());
            smallest_stack
                .fetch_min(stack_size_of_this_thread(), Ordering::SeqCst);
            chunk.iter().sum()
        });
        let expected: u64 = data.iter().sum();
        assert_eq!(
            total,
            expected,
            "{} elements on {threads} threads",
            data.len()
        );
        let calls = calls.into_inner().unwrap();
        assert_eq!(
            calls.len(),
            threads,
            "{} elements on {threads} threads: expected {threads} calls of \
             sum_chunk, one per chunk, got {}; an empty chunk still gets its \
             own thread and its own call",
            data.len(),
            calls.len()
        );
        assert!(
            !calls.contains(&caller),
            "{} elements on {threads} threads: a chunk was summed on the \
             thread that called parallel_sum; every chunk gets a new thread, \
             and the caller only waits for them",
            data.len()
        );
        let distinct: HashSet<_> = calls.iter().collect();
        assert_eq!(
            distinct.len(),
            threads,
            "{} elements on {threads} threads: sum_chunk ran on only {} \
             distinct threads; each chunk needs a thread of its own",
            data.len(),
            distinct.len()
        );
        let smallest = smallest_stack.into_inner();
        assert!(
            smallest + STACK_SLACK >= default,
            "{} elements on {threads} threads: a chunk's thread had a stack \
             of {smallest} bytes, less than the {default} that \
             thread::spawn gives: sum_chunk may need all of it, and \
             overflowing a stack aborts the whole process (leave the stack \
             size alone: thread::spawn gives RUST_MIN_STACK bytes when it \
             is set)",
            data.len()
        );
    }
}

fn adds_every_element_once() {
    let data: Vec<u64> = (1..=1000).collect();
    for threads in [1, 2, 3, 7, 16] {
        let total = parallel_sum(&data, threads, |chunk| chunk.iter().sum());
        assert_eq!(
            total, 500_500,
            "sum of 1..=1000 with {threads} threads: expected 500500"
        );
    }
    let short = [5, 6];
    let total = parallel_sum(&short, 4, |chunk| chunk.iter().sum());
    assert_eq!(total, 11, "2 elements on 4 threads: two chunks are empty");
    assert_eq!(parallel_sum(&[], 3, |chunk| chunk.iter().sum()), 0);
}

/// Every chunk waits at a barrier until all chunks have started: of 4
/// chunks, and of 1100, more than a batch of a few dozen threads at a time
/// or a "safe" cap of 1024 ever has running at once.
fn sums_the_chunks_at_once() {
    for threads in [4, 1100] {
        sums_the_chunks_at_once_on(threads);
    }
}

/// 400 elements on `threads` threads, which meet at a barrier.
fn sums_the_chunks_at_once_on(threads: usize) {
    let data: Vec<u64> = (0..400).collect();
    let barrier = Barrier::new(threads);
    let callers = Mutex::new(HashSet::new());
    let total = parallel_sum(&data, threads, |chunk| {
        callers.lock().unwrap().insert(thread::current().id());
        barrier.wait();
        chunk.iter().sum()
    });
    assert_eq!(total, (0..400).sum::<u64>(), "on {threads} threads");
    let callers = callers.into_inner().unwrap();
    assert_eq!(
        callers.len(),
        threads,
        "expected {threads} distinct threads, saw {}",
        callers.len()
    );
}

/// The chunks must be pieces of the caller's slice (not copies), tile it
/// without gaps or overlaps, and differ in length by at most one: on 4
/// threads, and on 3 and 7, which are not powers of two (halving the slice
/// and the threads again and again cuts 10 elements on 3 threads into 5, 2
/// and 3).
fn borrows_balanced_chunks() {
    // 12 threads on 10 elements: two chunks are empty, and even those are
    // pieces of `data` (`&data[10..10]`), not a `&[]` from elsewhere.
    for threads in [4, 3, 7, 12] {
        borrows_balanced_chunks_on(threads);
    }
}

/// 10 elements on `threads` threads, which meet at a barrier.
fn borrows_balanced_chunks_on(threads: usize) {
    let data: Vec<u64> = (0..10).collect();
    let start = data.as_ptr() as usize;
    let size = std::mem::size_of::<u64>();
    let seen = Mutex::new(Vec::new());
    let barrier = Barrier::new(threads);
    parallel_sum(&data, threads, |chunk| {
        let address = chunk.as_ptr() as usize;
        seen.lock().unwrap().push((address, chunk.len()));
        barrier.wait();
        0
    });
    let mut seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), threads, "expected one call per thread");
    seen.sort();
    let mut expected_offset = 0;
    for &(address, len) in &seen {
        let borrowed = address >= start
            && address <= start + data.len() * size
            && (address - start).is_multiple_of(size);
        assert!(
            borrowed,
            "a chunk is not part of the caller's slice: it was copied \
             (scoped threads can borrow the slice itself)"
        );
        if len == 0 {
            assert_eq!(
                address,
                start + data.len() * size,
                "10 elements on {threads} threads: an empty chunk starts at \
                 element {} of data, not at its end (&data[10..10]), where \
                 the chunks before it stop",
                (address - start) / size
            );
            continue;
        }
        assert_eq!(
            (address - start) / size,
            expected_offset,
            "the chunks leave a gap or overlap"
        );
        expected_offset += len;
    }
    assert_eq!(expected_offset, data.len(), "the chunks miss elements");
    // In the order they lie in `data`, the longer chunks come first.
    let lengths: Vec<usize> = seen
        .iter()
        .map(|&(_, len)| len)
        .filter(|&len| len > 0)
        .collect();
    let expected: Vec<usize> = (0..threads)
        .map(|index| {
            data.len() / threads + usize::from(index < data.len() % threads)
        })
        .filter(|&len| len > 0)
        .collect();
    assert_eq!(
        lengths,
        expected,
        "10 elements on {threads} threads should give chunks of {}, in that \
         order along the data (the longer chunks first); got the non-empty \
         lengths {lengths:?} in data order",
        match threads {
            4 => "3, 3, 2 and 2",
            3 => "4, 3 and 3",
            7 => "2, 2, 2, 1, 1, 1 and 1",
            _ => "ten of 1 and two empty ones",
        }
    );
}

/// The payload of a panicking `sum_chunk`: a type of the trial's own, so
/// that a panic `parallel_sum` raises itself cannot pass for the chunk's.
#[derive(Debug)]
struct TheChunksOwnPanic;

/// One chunk of four panics: `parallel_sum` must panic too, with that
/// chunk's own payload, rather than return a total that misses the chunk
/// or raise a panic of its own. The first chunk panics at once; the second
/// is still running then, and ends only once the first chunk's thread is
/// gone and the caller sleeps, waiting for it. A `parallel_sum` that raises
/// the panic as soon as it has joined the first chunk's thread never sleeps
/// before it does, so the second chunk would still be reading `data` after
/// `parallel_sum` has given it back (no scope would have stopped it).
fn passes_a_chunk_panic_on() {
    let data: Vec<u64> = (1..=8).collect();
    let caller = my_tid();
    let failed = AtomicI32::new(0);
    let slow_chunk_done = AtomicBool::new(false);
    let returned = AtomicBool::new(false);
    // Whether the trial has gone on without this chunk.
    let gave_up = || returned.load(Ordering::SeqCst);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        parallel_sum(&data, 4, |chunk| {
            if chunk.contains(&1) {
                failed.store(my_tid(), Ordering::SeqCst);
                panic::panic_any(TheChunksOwnPanic);
            }
            if chunk.contains(&3) {
                while failed.load(Ordering::SeqCst) == 0 && !gave_up() {
                    thread::sleep(Duration::from_millis(1));
                }
                // Until the failed chunk's thread is gone, then until the
                // caller sleeps: waiting for this chunk, as it must.
                let failed = failed.load(Ordering::SeqCst);
                while !gave_up()
                    && task::state(failed)
                        .is_some_and(|state| !matches!(state, 'Z' | 'X'))
                {
                    thread::sleep(Duration::from_millis(1));
                }
                while !gave_up()
                    && task::state(caller).is_some_and(|state| state != 'S')
                {
                    thread::sleep(Duration::from_millis(1));
                }
                slow_chunk_done.store(true, Ordering::SeqCst);
            }
            chunk.iter().sum()
        })
    }));
    // Read before anything that could let the second chunk go on.
    let slow_chunk_was_done = slow_chunk_done.load(Ordering::SeqCst);
    returned.store(true, Ordering::SeqCst);
    let payload = match outcome {
        Ok(total) => panic!(
            "the chunk [1, 2] panicked, yet parallel_sum returned {total}: a \
             total that misses a chunk is wrong, and nothing says so \
             (ScopedJoinHandle::join returns the panic as an Err; \
             panic::resume_unwind raises it again)"
        ),
        Err(payload) => payload,
    };
    assert!(
        slow_chunk_was_done,
        "parallel_sum panicked while the chunk [3, 4] was still being \
         summed: its thread could go on reading data after parallel_sum \
         gave it back; the threads must all be joined first (thread::scope \
         joins them, also when a panic leaves the scope)"
    );
    assert!(
        payload.is::<TheChunksOwnPanic>(),
        "parallel_sum panicked, but not with the chunk's own panic: it \
         raised one of its own (an unwrap or an expect on the join, or the \
         scope's \"a scoped thread panicked\") instead of passing the \
         chunk's payload on with panic::resume_unwind"
    );
}

/// A short name, one longer than the 15 bytes Linux keeps, one with
/// letters outside ASCII, one with spaces around it and an empty one:
/// inside the job,
/// `thread::current().name()` must still give the whole name, as it was
/// given, and the operating system's own name of the thread (`/proc`'s
/// `comm`, what `top` and `ps` show) its first 15 bytes.
fn names_the_thread() {
    // Every name twice: a second worker of the same name is named the same.
    for name in [
        "pixel-worker-7",
        "pixel-worker-for-the-second-monitor-7",
        "café-wörker",
        "  spaced out ",
        "",
    ]
    .into_iter()
    .flat_map(|name| [name, name])
    {
        let handle = spawn_worker(name, 1 << 20, || {
            let comm = std::fs::read_to_string("/proc/thread-self/comm")
                .expect("cannot read /proc/thread-self/comm");
            (thread::current().name().map(str::to_owned), comm)
        })
        .expect("spawn_worker failed");
        let (seen_inside, comm) = handle.join().unwrap();
        assert_eq!(
            seen_inside.as_deref(),
            Some(name),
            "inside the job, thread::current().name() must be the name given \
             to spawn_worker, whole and unchanged, also when it is empty, \
             not ASCII or has spaces around it, and also for a second \
             worker of the same name (see thread::Builder::name, which \
             keeps it whole even where the OS shows only its first 15 \
             bytes, and does not make names unique)"
        );
        let shown = &name[..name.len().min(15)];
        assert_eq!(
            comm.trim_end_matches('\n'),
            shown,
            "the operating system's name of the thread (/proc's comm, what \
             top and ps show) should be the name's first 15 bytes"
        );
    }
}

/// What the C library may take off a stack for itself: a guard page and
/// its thread descriptor, among others.
const STACK_SLACK: usize = 64 << 10;

/// The size of the calling thread's stack, as the C library that made the
/// thread reports it (`pthread_getattr_np`).
fn stack_size_of_this_thread() -> usize {
    /// Room for a `pthread_attr_t`: 56 bytes on x86-64 Linux, 64 on
    /// AArch64.
    type Attributes = [u64; 8];
    // The C library's, which every Rust program on Linux links.
    unsafe extern "C" {
        fn pthread_self() -> usize;
        fn pthread_getattr_np(thread: usize, attr: *mut Attributes) -> i32;
        fn pthread_attr_getstack(
            attr: *const Attributes,
            address: *mut *mut u8,
            size: *mut usize,
        ) -> i32;
        fn pthread_attr_destroy(attr: *mut Attributes) -> i32;
    }
    let mut attributes: Attributes = [0; 8];
    let mut address = std::ptr::null_mut();
    let mut size = 0;
    // SAFETY: `pthread_getattr_np` fills the attributes of the calling
    // thread (`pthread_self`, always valid) into room large enough for
    // them; `pthread_attr_getstack` reads them into two valid places; and
    // `pthread_attr_destroy` frees what `pthread_getattr_np` allocated.
    unsafe {
        assert_eq!(pthread_getattr_np(pthread_self(), &mut attributes), 0);
        let got = pthread_attr_getstack(&attributes, &mut address, &mut size);
        pthread_attr_destroy(&mut attributes);
        assert_eq!(got, 0, "pthread_attr_getstack failed");
    }
    size
}

/// Recursion that needs about 16 MiB of stack: far more than the 2 MiB a
/// spawned thread gets by default, far less than the 64 MiB requested.
/// Then the size of the stack itself, for 64 MiB, for 48 MiB (not a power
/// of two) and for 512 KiB: the C
/// library may hand a thread a stack it kept from an ended thread, up to
/// four times the size asked for (glibc does), but never more, and never
/// less than asked for (give or take a few pages of its own).
fn gives_the_requested_stack() {
    fn descend(depth: u32) -> u64 {
        let frame = black_box([depth as u8; 16 * 1024]);
        if depth == 0 {
            return u64::from(frame[0]);
        }
        u64::from(frame[100]) + descend(black_box(depth - 1))
    }
    let handle = spawn_worker("deep-recursion", 64 << 20, || descend(1000))
        .expect("spawn_worker failed");
    assert!(handle.join().is_ok());
    for asked in [64 << 20, 48 << 20, 512 << 10] {
        let handle =
            spawn_worker("stack-size", asked, stack_size_of_this_thread)
                .expect("spawn_worker failed");
        let size = handle.join().unwrap();
        // glibc keeps the stacks of ended threads for reuse, up to 40 MiB in
        // all, and may hand a kept one over if it is at most four times as
        // large; a 64 MiB stack is never kept, so that one is new.
        let most = if asked > 40 << 20 {
            asked + (1 << 20)
        } else {
            4 * asked + STACK_SLACK
        };
        assert!(
            size + STACK_SLACK >= asked && size <= most,
            "spawn_worker was asked for a stack of {asked} bytes, and the \
             thread got {size}: give the thread the size it asks for \
             (thread::Builder::stack_size(stack_bytes)), no fixed size and \
             no minimum of your own"
        );
    }
    for asked in [0, 4 << 10] {
        gives_the_smallest_stack_for(asked);
    }
}

/// A stack of 0 bytes, or of 4 KiB, is less than the platform allows: the
/// standard library raises it to the platform's minimum (some 16 KiB on
/// Linux, a few times that with what the C library keeps for itself) and
/// starts the thread. The thread gets that small stack, far less than the
/// default 2 MiB (0 does not mean "the default", as it does in Python's
/// `threading.stack_size`), and no error of `spawn_worker`'s own.
fn gives_the_smallest_stack_for(asked: usize) {
    let handle = spawn_worker("tiny-stack", asked, stack_size_of_this_thread)
        .unwrap_or_else(|error| {
            panic!(
                "spawn_worker was asked for a stack of {asked} bytes and \
                 returned {error:?}, but thread::Builder::spawn creates that \
                 thread (it raises the size to the platform's minimum): pass \
                 stack_bytes on as it is, and refuse nothing of your own"
            )
        });
    let size = handle.join().unwrap();
    assert!(
        size < 1 << 20,
        "spawn_worker was asked for a stack of {asked} bytes, and the thread \
         got {size}: the smallest stack the platform allows is far less \
         than 1 MiB; 0 is a size like any other, not \"the default\" \
         (pass stack_bytes to thread::Builder::stack_size as it is)"
    );
}

/// Runs `body` and counts the panics raised on this thread meanwhile, even
/// ones caught before they reach `body`'s caller.
fn count_panics_on_this_thread<R>(body: impl FnOnce() -> R) -> (R, usize) {
    let this_thread = thread::current().id();
    count_panics_where(move |_| thread::current().id() == this_thread, body)
}

/// Runs `body` and counts the panics, on any thread, that the panic hook
/// sees meanwhile and `counts`. The hook that was set before (the
/// grader's) still sees every panic, and is set again after.
fn count_panics_where<R>(
    counts: impl Fn(&PanicHookInfo<'_>) -> bool + Send + Sync + 'static,
    body: impl FnOnce() -> R,
) -> (R, usize) {
    type Hook = dyn Fn(&PanicHookInfo<'_>) + Send + Sync;
    let previous: Arc<Hook> = Arc::from(panic::take_hook());
    let panics = Arc::new(AtomicUsize::new(0));
    {
        let previous = Arc::clone(&previous);
        let panics = Arc::clone(&panics);
        panic::set_hook(Box::new(move |info| {
            if counts(info) {
                panics.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    }
    let outcome = panic::catch_unwind(AssertUnwindSafe(body));
    panic::set_hook(Box::new(move |info| previous(info)));
    match outcome {
        Ok(result) => (result, panics.load(Ordering::SeqCst)),
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// The payload of a panicking worker's job: a type of the trial's own, so
/// that a panic `spawn_worker` raises itself cannot pass for the job's.
#[derive(Debug)]
struct TheWorkersOwnPanic;

/// The handle joins to the job's result, or to the job's own panic. 256 TiB
/// of stack cannot be mapped, nor `usize::MAX` bytes: the operating
/// system's error must come back as `Err`, with no panic on the way, not
/// even a caught one.
fn reports_a_stack_too_big_to_create() {
    let handle = spawn_worker("small", 1 << 20, || 7).expect("a 1 MiB stack");
    assert_eq!(handle.join().unwrap(), 7, "the job's result");
    let handle = spawn_worker("failing", 1 << 20, || -> u32 {
        panic::panic_any(TheWorkersOwnPanic)
    })
    .expect("a 1 MiB stack");
    match handle.join() {
        Ok(result) => panic!("the job panicked, yet join returned {result}"),
        Err(payload) => assert!(
            payload.is::<TheWorkersOwnPanic>(),
            "the job panicked, and joining its handle gave a panic, but not \
             the job's own: a panic of spawn_worker's own (a catch_unwind \
             and a new panic! with a message) hides the job's payload; \
             start the job itself on the thread"
        ),
    }
    for asked in [1 << 48, usize::MAX] {
        refuses_a_stack_of(asked);
    }
}

/// `spawn_worker` asked for a stack of `asked` bytes, too many to map, must
/// return the operating system's error, as `thread::Builder::spawn` does.
fn refuses_a_stack_of(asked: usize) {
    let (outcome, panics) = count_panics_on_this_thread(|| {
        panic::catch_unwind(|| spawn_worker("huge", asked, || ()))
    });
    let error = match outcome {
        Ok(Err(error)) => error,
        Ok(Ok(_)) => panic!(
            "spawn_worker was asked for a stack of {asked} bytes, too many \
             to map, and started a thread anyway: did it change the size \
             (an addition or a rounding that wrapped around)? Pass \
             stack_bytes on as it is"
        ),
        Err(_) => panic!(
            "spawn_worker was asked for a stack of {asked} bytes and \
             panicked; it must return the io::Error instead \
             (thread::Builder::spawn returns a Result, and an arithmetic \
             overflow on the size is a panic of spawn_worker's own)"
        ),
    };
    assert_eq!(
        panics, 0,
        "spawn_worker returned an error, but it panicked on the way and \
         caught its own panic: the panic hook ran, and under panic = \
         \"abort\" the process would have died (thread::Builder::spawn \
         returns a Result; there is nothing to unwrap)"
    );
    assert!(
        error.raw_os_error().is_some(),
        "spawn_worker returned {error:?} for a stack of {asked} bytes, not \
         the operating system's error: \
         return the io::Error that thread::Builder::spawn gives, as it is"
    );
    // The error the operating system gives for the same request.
    let refused = thread::Builder::new()
        .name("huge".to_string())
        .stack_size(asked)
        .spawn(|| ())
        .expect_err("a thread with so large a stack cannot exist");
    assert_eq!(
        error.raw_os_error(),
        refused.raw_os_error(),
        "spawn_worker returned {error:?}, but creating that thread fails \
         with {refused:?}: return the io::Error that thread::Builder::spawn \
         gives, as it is (errno, io::Error::last_os_error, is not how \
         pthread_create reports its error, and may be left over from \
         another call)"
    );
}

const VISITORS: usize = 8;
const VISITS_EACH: u64 = 5_000;

/// A lost update needs two threads inside `record` at the same instant, so
/// one round may miss it: the counting is repeated, each round starting all
/// threads together at a barrier, until a round comes out wrong or enough
/// rounds came out right. A correct counter is never wrong; more rounds
/// only make a broken one likelier to show.
const ROUNDS: usize = 20;

/// One round: every visitor records `VISITS_EACH` visits on a fresh
/// counter, then waits, still alive, until the trial has read `total()`.
/// Returns the counter, every ticket handed out, sorted, and the total
/// read while the visitors were still alive.
fn one_round() -> (VisitCounter, Vec<u64>, u64) {
    let counter = VisitCounter::new();
    let start = Barrier::new(VISITORS);
    // The visitors and the trial: every visit is recorded, then the trial
    // reads the total, then the visitors end.
    let recorded = Barrier::new(VISITORS + 1);
    let read = Barrier::new(VISITORS + 1);
    let (mut tickets, total_meanwhile): (Vec<u64>, u64) =
        thread::scope(|scope| {
            let handles: Vec<_> = (0..VISITORS)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        // A panic in `record` is passed on, but only once
                        // the others no longer wait for this thread.
                        // `AssertUnwindSafe`: a counter with an `UnsafeCell`
                        // inside is not `RefUnwindSafe`, and the trial
                        // looks at nothing it may have left half done.
                        let tickets =
                            panic::catch_unwind(AssertUnwindSafe(|| {
                                (0..VISITS_EACH)
                                    .map(|_| counter.record())
                                    .collect::<Vec<_>>()
                            }));
                        recorded.wait();
                        read.wait();
                        tickets.unwrap_or_else(|p| panic::resume_unwind(p))
                    })
                })
                .collect();
            recorded.wait();
            // Nothing here may panic: the visitors wait for `read`.
            let total_meanwhile = counter.total();
            read.wait();
            let tickets = handles
                .into_iter()
                .flat_map(|handle| handle.join().unwrap())
                .collect();
            (tickets, total_meanwhile)
        });
    tickets.sort_unstable();
    (counter, tickets, total_meanwhile)
}

/// Eight threads start together and record visits as fast as they can.
/// The total is read while they are all still alive (their visits done),
/// and again after they ended: "so far" is not "once the threads ended".
fn counts_every_visit() {
    assert_eq!(VisitCounter::new().total(), 0, "a new counter starts at 0");
    let expected = VISITORS as u64 * VISITS_EACH;
    for round in 1..=ROUNDS {
        let (counter, _, meanwhile) = one_round();
        let total = counter.total();
        assert_eq!(
            total,
            expected,
            "{VISITORS} threads recorded {VISITS_EACH} visits each, but the \
             total is {total} (round {round}): {}",
            if total < expected {
                "lost updates, from a read and a write that are two steps"
            } else {
                "more visits than were recorded"
            }
        );
        assert_eq!(
            meanwhile, expected,
            "{VISITORS} threads recorded {VISITS_EACH} visits each, and \
             while they were still alive, total() said {meanwhile} (round \
             {round}): total() counts the visits recorded so far, not only \
             those of threads that have ended"
        );
    }
    total_never_goes_back();
}

/// While eight threads record visits, a ninth reads `total()` again and
/// again: the count it sees never goes down. (A count that each `record`
/// overwrites with its own ticket goes back whenever two of them cross.)
fn total_never_goes_back() {
    // More threads than cores: a thread paused between two steps of its
    // `record` is then likely, and the reader sees what it left behind.
    let cores = thread::available_parallelism().map_or(4, |n| n.get());
    let recorders = (4 * cores).min(32);
    let counter = VisitCounter::new();
    let start = Barrier::new(recorders + 1);
    let done = AtomicUsize::new(0);
    let seen_back = AtomicBool::new(false);
    let went_back = thread::scope(|scope| {
        for _ in 0..recorders {
            scope.spawn(|| {
                start.wait();
                for _ in 0..50_000 {
                    if seen_back.load(Ordering::Relaxed) {
                        break;
                    }
                    counter.record();
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        start.wait();
        let mut last = 0;
        let mut went_back = None;
        while done.load(Ordering::SeqCst) < recorders {
            let now = counter.total();
            if now < last && went_back.is_none() {
                went_back = Some((last, now));
                seen_back.store(true, Ordering::Relaxed);
            }
            last = now;
        }
        went_back
    });
    if let Some((before, after)) = went_back {
        panic!(
            "while threads recorded visits, total() said {before}, then \
             {after}: a count of visits never goes back (is the count one \
             atomic that record adds to, or a value each record overwrites?)"
        );
    }
}

/// Every visit gets its own ticket: 1, 2, ..., n, each exactly once.
fn hands_out_each_ticket_once() {
    for round in 1..=ROUNDS {
        let (_, tickets, _) = one_round();
        let n = tickets.len() as u64;
        if tickets.first() == Some(&0) {
            panic!(
                "the first visit got ticket 0, but tickets start at 1 \
                 (fetch_add returns the value from before the addition)"
            );
        }
        if let Some(pair) = tickets.windows(2).find(|p| p[0] == p[1]) {
            panic!(
                "ticket {} was handed out twice (round {round}): two \
                 visits read the same count before either wrote it back",
                pair[0]
            );
        }
        assert!(
            tickets.iter().copied().eq(1..=n),
            "tickets must be exactly 1..={n}; got {}..={}",
            tickets[0],
            tickets[tickets.len() - 1]
        );
    }
}

/// `VisitCounter::default()` is a counter at zero, the same as `new()`,
/// and every counter counts its own visits: making a counter, with `new()`
/// or `default()`, changes no other counter.
fn default_starts_at_zero() {
    let first = VisitCounter::new();
    for _ in 0..3 {
        first.record();
    }
    let counter = VisitCounter::default();
    assert_eq!(
        counter.total(),
        0,
        "a default counter starts at 0, even after another counter has \
         counted visits (is the count a static that every counter shares?)"
    );
    let first_ticket = counter.record();
    assert_eq!(
        first_ticket, 1,
        "the first visit to VisitCounter::default() got ticket \
         {first_ticket}, not 1: a default counter must be the same as \
         VisitCounter::new()"
    );
    assert_eq!(counter.record(), 2, "the second visit gets ticket 2");
    assert_eq!(counter.total(), 2, "two visits recorded");
    let other = VisitCounter::new();
    assert_eq!(other.total(), 0, "a new counter starts at 0");
    assert_eq!(
        (first.total(), counter.total()),
        (3, 2),
        "three visits to one counter and two to another, then a third \
         counter was made: each counter counts its own visits, and making \
         one leaves the others alone (the count is a field of the counter, \
         not a static they all share)"
    );
    let leaked = alloc::left_allocated_by(|| {
        // Each counter is dropped at the end of its statement.
        for _ in 0..100 {
            VisitCounter::new().record();
            VisitCounter::default().record();
        }
    });
    assert_eq!(
        leaked, 0,
        "200 counters were made, used and dropped, and {leaked} bytes they \
         allocated were never freed: a counter owns its count, and dropping \
         the counter frees it (a count made 'static with Box::leak is never \
         freed; a plain atomic field needs no allocation at all)"
    );
}

/// The count is a `u64`: it goes on past `u32::MAX`, where a 32-bit count
/// would wrap to 0. The test hook starts the count there; then four
/// threads carry it on from far beyond.
fn counts_past_u32_max() {
    let counter = VisitCounter::new();
    let near = u64::from(u32::MAX) - 1;
    counter.set_total_for_tests(near);
    assert_eq!(
        counter.total(),
        near,
        "after set_total_for_tests({near}), total() must be {near}"
    );
    assert_eq!(counter.record(), near + 1, "the visit after {near}");
    let past = counter.record();
    assert_eq!(
        past,
        1 << 32,
        "visit number 2^32 got ticket {past}: the count wrapped (a u32 \
         holds at most {}; the count is a u64)",
        u32::MAX
    );
    assert_eq!(counter.total(), 1 << 32, "2^32 visits recorded");
    const FAR: u64 = 1 << 40;
    counter.set_total_for_tests(FAR);
    assert_eq!(counter.total(), FAR, "after set_total_for_tests(2^40)");
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..1_000 {
                    counter.record();
                }
            });
        }
    });
    assert_eq!(
        counter.total(),
        FAR + 4_000,
        "four threads recorded 1000 visits each after 2^40"
    );
    // Down as well as up: the hook sets the count, whatever it was.
    counter.set_total_for_tests(5);
    assert_eq!(
        counter.total(),
        5,
        "after 2^40 + 4000 visits, set_total_for_tests(5) must set the \
         count to 5, lower than it was (a store, not a fetch_max)"
    );
    assert_eq!(
        counter.record(),
        6,
        "the visit after set_total_for_tests(5)"
    );
    for round in 1..=WRAP_ROUNDS {
        across_u32_max(round);
    }
}

/// A count kept as two 32-bit halves must carry from one to the other as
/// it passes `u32::MAX`, and a visit that comes between the low half's
/// wrap and the carry gets a wrong ticket. That needs two threads inside
/// `record` at the same instant, so one round may miss it: the rounds are
/// repeated, as for lost updates, until one comes out wrong or enough came
/// out right. A `u64` count is never wrong.
const WRAP_ROUNDS: usize = 200;

/// One round: two threads start together at a barrier and record 10,000
/// visits each, from 10,000 visits before `u32::MAX` to 10,000 after it;
/// their tickets must be exactly the next 20,000 numbers. (Two threads
/// meet inside `record` more often than four on a machine of two cores,
/// where four keep taking turns.)
fn across_u32_max(round: usize) {
    const THREADS: usize = 2;
    const EACH: u64 = 10_000;
    let visits = THREADS as u64 * EACH;
    let start = u64::from(u32::MAX) - visits / 2;
    let counter = VisitCounter::new();
    counter.set_total_for_tests(start);
    let barrier = Barrier::new(THREADS);
    let mut tickets: Vec<u64> = thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    (0..EACH).map(|_| counter.record()).collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect()
    });
    tickets.sort_unstable();
    let expected = start + 1..=start + visits;
    if let Some((got, want)) = tickets
        .iter()
        .zip(expected.clone())
        .find(|&(&got, want)| got != want)
    {
        panic!(
            "{THREADS} threads recorded {visits} visits at once across \
             u32::MAX (round {round}), from ticket {} on: the tickets should \
             be exactly {}..={}, but ticket {want} is missing (ticket {got} \
             came instead, in sorted order): a count made of two 32-bit \
             halves carries from one to the other in a separate step, and a \
             visit in between reads a half that is not up to date; keep the \
             count in one AtomicU64",
            start + 1,
            expected.start(),
            expected.end()
        );
    }
    assert_eq!(
        counter.total(),
        start + visits,
        "{visits} visits recorded across u32::MAX (round {round})"
    );
}
