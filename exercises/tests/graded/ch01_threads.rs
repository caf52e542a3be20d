//! Graded trials of chapter 1, Threads.
//!
//! The "how" checks: jobs and chunks wait for each other at barriers and
//! channels, so a version that runs them one after another never gets past
//! the first one, and the grader reports a TIMEOUT that says why.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch01")]

mod carry_held;
mod default_stack;
mod held_visit;
mod parallel_sum;
mod spawn_all;
mod spawn_all_panic;
mod spawn_worker;
mod visit_counter;

use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use course::grader::Trial;
use course::grader::stack::raise_the_default_stack;
use course::grader::task::{self, Tid};
use default_stack::{
    gives_each_chunk_the_default_stack, gives_each_job_the_default_stack,
};
use parallel_sum::{
    adds_every_element_once, borrows_balanced_chunks,
    gives_every_chunk_a_new_thread, passes_a_chunk_panic_on,
    sums_the_chunks_at_once, sums_the_started_chunks_when_a_thread_is_refused,
};
use spawn_all::{
    returns_results_in_input_order, runs_every_job_on_its_own_thread,
};
use spawn_all_panic::a_panicking_job_panics_the_caller;
use spawn_worker::{
    gives_the_requested_stack, names_the_thread,
    reports_a_stack_too_big_to_create,
};
use visit_counter::{
    counts_every_visit, counts_past_u32_max, default_starts_at_zero,
    hands_out_each_ticket_once,
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
             a pool of fewer threads, or let at most so many run at once?); \
             or, while only two threads could start, the two jobs whose \
             threads started never ran (do they wait at a start line for a \
             thread that was refused?)",
        ),
        Trial::new(
            "ch01::spawn_all::gives_each_job_the_default_stack",
            1,
            gives_each_job_the_default_stack,
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
            "ch01::parallel_sum::gives_each_chunk_the_default_stack",
            1,
            gives_each_chunk_the_default_stack,
        ),
        Trial::new(
            "ch01::parallel_sum::sums_the_started_chunks_when_a_thread_is_refused",
            1,
            sums_the_started_chunks_when_a_thread_is_refused,
        )
        .on_timeout(
            "while only two of three threads could start, parallel_sum never \
             returned nor panicked: do the chunks whose threads started wait, \
             at a start line, for a thread that was refused? (Scope::spawn \
             panics at the refused one, and the scope then waits for the \
             chunks already started to end)",
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
        // Its 200 rounds of two threads that meet at a barrier take a few
        // seconds on a machine whose cores other processes keep busy: the
        // deadline only catches a counter that never returns.
        Trial::new(
            "ch01::visit_counter::counts_past_u32_max",
            1,
            counts_past_u32_max,
        )
        .timeout(Duration::from_secs(30)),
    ]
}

/// The calling thread's id, as `/proc/self/task/<tid>` names it.
fn my_tid() -> Tid {
    task::me().tid
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
