//! Graded trials of chapter 9, Rust inside Python: leaving the GIL behind
//! with PyO3.
//!
//! Each trial starts a real CPython inside its own process (the learner's
//! module is importable as `ch09`) and runs a Python script that calls the
//! learner's functions, from Python threads where the exercise is about
//! them. The "how" checks are rendezvous that a version holding the GIL
//! cannot reach: two Python threads inside `crunch` at once, a Python
//! thread that lets `par_map`'s workers go on, callbacks that wait for
//! each other at a `threading.Barrier`, and a heartbeat that writes the
//! bytes `read_exact` waits for. Such a version times out and is told why.
//!
//! Without a CPython to embed (`src/registry/python.rs` looks for one as
//! PyO3 does), every trial is NOT-RUN, with what to install.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch09")]

// The trials' bodies, one module per exercise, in `ch09_python/`, and the
// embedded interpreter they share. They use the learner's functions, so
// they are linked only where libpython is.
#[cfg(python)]
mod call_each;
#[cfg(python)]
mod counter;
#[cfg(python)]
mod crunch;
#[cfg(python)]
mod embed;
#[cfg(python)]
mod par_map;
#[cfg(python)]
mod read_exact;

use std::time::Duration;

use course::grader::Trial;

/// Deadline for trials whose only way to hang is a rendezvous that a
/// version holding the GIL, or a lock, never reaches. Starting the
/// interpreter takes a few hundredths of a second.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

/// A trial: the real one where there is a CPython to embed, NOT-RUN with
/// what to install where there is none.
macro_rules! trial {
    ($id:literal, $points:literal, $body:path) => {{
        #[cfg(python)]
        let trial = Trial::new($id, $points, $body);
        #[cfg(not(python))]
        let trial = Trial::not_run($id, $points, env!("COURSE_NO_PYTHON"));
        trial.timeout(HANG_TIMEOUT)
    }};
}

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        trial!("ch09::crunch::sums_the_kernel", 1, crunch::sums_the_kernel),
        trial!(
            "ch09::crunch::releases_the_gil",
            3,
            crunch::releases_the_gil
        )
        .on_timeout(
            "the second Python thread never got into the kernel: does crunch \
             run the whole loop inside py.detach?",
        ),
        trial!(
            "ch09::crunch::counts_primes_from_python_threads",
            1,
            crunch::counts_primes_from_python_threads
        ),
        trial!("ch09::par_map::maps_in_order", 2, par_map::maps_in_order)
            .on_timeout(
                "par_map never returned: do the workers compute their values \
                 at the same time (the first value waits for the last), and \
                 is a huge workers (2**62 for 3 values) served by 3 threads, \
                 with no loop over every worker?",
            ),
        trial!(
            "ch09::par_map::converts_before_it_computes",
            1,
            par_map::converts_before_it_computes
        ),
        trial!(
            "ch09::par_map::uses_every_worker",
            2,
            par_map::uses_every_worker
        )
        .on_timeout(
            "the workers were never all inside the kernel at once: does \
             par_map start min(workers, len) threads together, and let the \
             calling thread only wait?",
        ),
        trial!(
            "ch09::par_map::releases_the_gil",
            2,
            par_map::releases_the_gil
        )
        .on_timeout(
            "a Python thread could not run while the workers worked: does \
             par_map wait for them inside py.detach?",
        ),
        trial!("ch09::counter::counts", 1, counter::counts),
        trial!(
            "ch09::counter::python_threads_lose_nothing",
            1,
            counter::python_threads_lose_nothing
        ),
        trial!(
            "ch09::counter::no_lost_update_without_the_gil",
            1,
            counter::no_lost_update_without_the_gil
        ),
        trial!(
            "ch09::counter::racing_adds_are_counted",
            2,
            counter::racing_adds_are_counted
        ),
        trial!(
            "ch09::call_each::returns_results_in_order",
            1,
            call_each::returns_results_in_order
        )
        .on_timeout(
            "call_each never returned: its workers' Python::attach waits for \
             the GIL, so the calling thread must wait for them inside \
             py.detach; and a huge workers (2**62 for 3 items) is served by \
             3 threads, with no loop over every worker",
        ),
        trial!(
            "ch09::call_each::calls_from_its_workers",
            2,
            call_each::calls_from_its_workers
        )
        .on_timeout(
            "six callbacks were never running at once on six workers: \
                 does call_each start a thread per worker, and wait for them \
                 inside py.detach?",
        ),
        trial!(
            "ch09::call_each::callbacks_overlap",
            2,
            call_each::callbacks_overlap
        )
        .on_timeout(
            "two callbacks never ran at the same time: is a Rust lock held \
             while a callback runs? A callback lets the GIL go now and then; \
             take the lock only to store a result",
        ),
        trial!(
            "ch09::call_each::raises_the_first_error",
            1,
            call_each::raises_the_first_error
        )
        .on_timeout(
            "call_each never returned: the callback of item 3 waits until \
             item 6's has begun, so does each worker go on calling its \
             items after one of them raised?",
        ),
        trial!(
            "ch09::read_exact::reads_across_writes",
            2,
            read_exact::reads_across_writes
        )
        .on_timeout(
            "read_exact never returned: does it read until it has n \
                 bytes, with the GIL released while it waits?",
        ),
        trial!(
            "ch09::read_exact::heartbeat_keeps_ticking",
            2,
            read_exact::heartbeat_keeps_ticking
        )
        .on_timeout(
            "the heartbeat never ticked while read_exact waited: does it \
                 read inside py.detach?",
        ),
        trial!(
            "ch09::read_exact::leaves_the_fd_open",
            1,
            read_exact::leaves_the_fd_open
        )
        .on_timeout(
            "read_exact never returned: does it read until it has n bytes, \
             with the GIL released while it waits?",
        ),
        trial!(
            "ch09::read_exact::errors_are_exceptions",
            1,
            read_exact::errors_are_exceptions
        ),
    ]
}
