//! Graded trials of chapter 3, The GIL.
//!
//! The "how" checks: an I/O that completes only after another thread has
//! taken the GIL, and native jobs that wait for each other at a barrier,
//! so holding the GIL through them deadlocks and the grader says why; and
//! two interpreter threads whose bytecodes must interleave in turns of
//! exactly `check_interval`, even on a GIL whose own policy would switch
//! more often.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch03")]

// The trials' bodies, one module per exercise, in `ch03_gil/`; what
// several of them share is below.
mod blocking_io;
mod detach;
mod detach_native;
mod run_bytecodes;
mod run_bytecodes_memory;
mod with_gil;

use std::any::Any;
use std::panic;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use blocking_io::{lets_others_run_while_waiting, returns_with_the_gil_held};
use course::gil::SwitchPolicy;
use course::grader::Trial;
use detach::{
    passes_a_job_panic_on, runs_native_jobs_at_once,
    takes_the_gil_before_and_after,
};
use run_bytecodes::{
    executes_every_bytecode_holding_the_gil,
    switches_only_every_check_interval, takes_turns_every_check_interval,
};
use with_gil::{
    lets_every_thread_in, lets_one_thread_in_at_a_time,
    still_one_at_a_time_after_a_panic, survives_a_panic,
};

/// Deadline for trials whose only way to hang is a GIL held too long.
const GIL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a `detach` trial whose jobs meet at a barrier timed out.
const DETACH_AT_ONCE: &str = "the jobs wait for each other at a barrier, so \
                              they must run at the same time, each on its \
                              own thread, without the GIL";

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new(
            "ch03::with_gil::lets_one_thread_in_at_a_time",
            2,
            lets_one_thread_in_at_a_time,
        )
        .timeout(4 * GIL_TIMEOUT)
        .on_timeout(
            "a thread never got the lock: a thread inside one ToyGil's \
             with_gil called another ToyGil's, which a third thread held, \
             and waited for it forever (is each ToyGil its own lock, not \
             one shared by every ToyGil?); or a thread inside stayed until \
             the thread waiting for it had woken by itself twice, and it \
             never did (a waiter's deadlines, if it sets any, are a second \
             or two at most)",
        ),
        Trial::new(
            "ch03::with_gil::lets_every_thread_in",
            1,
            lets_every_thread_in,
        )
        .timeout(4 * GIL_TIMEOUT)
        .on_timeout(
            "a thread never got the lock: is it released? (and is each \
             ToyGil its own lock, not one shared by every ToyGil? and is \
             ToyGil::default() a free lock, like new()? and when a waiting \
             thread was interrupted by a signal and went back to waiting \
             behind another, was the thread whose turn it was woken, or \
             only one that went back to sleep? notify_one wakes whichever \
             thread the Condvar likes; and with 300 threads asleep waiting \
             at once, does a count of them wrap round, as a u8 does, so \
             that the unlock thinks nobody waits and wakes nobody?)",
        ),
        Trial::new("ch03::with_gil::survives_a_panic", 1, survives_a_panic)
            .timeout(GIL_TIMEOUT)
            .on_timeout(
                "a thread that waited for the lock while f panicked never \
                 got in: is the lock released when f panics, and the \
                 waiting thread woken?",
            ),
        Trial::new(
            "ch03::with_gil::still_one_at_a_time_after_a_panic",
            1,
            still_one_at_a_time_after_a_panic,
        )
        .timeout(GIL_TIMEOUT)
        .on_timeout(
            "after a panic inside with_gil, a thread never got the lock: \
             is it released when f panics?",
        ),
        Trial::new(
            "ch03::run_bytecodes::executes_every_bytecode_holding_the_gil",
            1,
            executes_every_bytecode_holding_the_gil,
        ),
        Trial::new(
            "ch03::run_bytecodes::takes_turns_every_check_interval",
            3,
            takes_turns_every_check_interval,
        )
        .timeout(GIL_TIMEOUT),
        Trial::new(
            "ch03::run_bytecodes::switches_only_every_check_interval",
            1,
            switches_only_every_check_interval,
        )
        .timeout(2 * GIL_TIMEOUT)
        .on_timeout(
            "two threads ran run_bytecodes on the same Gil, and one never \
             got it: does run_bytecodes hand the GIL over every \
             check_interval bytecodes, and release it when it is done?",
        ),
        Trial::new(
            "ch03::blocking_io::returns_with_the_gil_held",
            1,
            returns_with_the_gil_held,
        )
        .timeout(2 * GIL_TIMEOUT)
        .on_timeout(
            "after the I/O, blocking_io never got the GIL back: another \
             thread held the GIL until two threads waited for it, and one \
             thread waited already, so blocking_io, waiting too, would have \
             made two; it must ask for the GIL at once (Gil::acquire), like \
             any thread, not wait until no other thread waits",
        ),
        Trial::new(
            "ch03::blocking_io::lets_others_run_while_waiting",
            3,
            lets_others_run_while_waiting,
        )
        // Thousands of threads to start: slow on a loaded machine.
        .timeout(4 * GIL_TIMEOUT)
        .on_timeout(
            "the I/O waited for a thread that needed the GIL, and the GIL \
             was held through the I/O: release it while you wait; or many \
             threads' I/Os (4, then 4,100) waited for each other at a \
             barrier, and they never all got there: do the I/Os run one at \
             a time, or only a few at a time (a lock, or a cap on the I/Os \
             at once such as 16, a few per core or 1,024, of \
             blocking_io's own around io)? Any number of I/Os may wait at \
             once",
        ),
        Trial::new(
            "ch03::detach::runs_native_jobs_at_once",
            3,
            runs_native_jobs_at_once,
        )
        // Thousands of threads to start: slow on a loaded machine.
        .timeout(4 * GIL_TIMEOUT)
        .on_timeout(DETACH_AT_ONCE),
        Trial::new(
            "ch03::detach::takes_the_gil_before_and_after",
            2,
            takes_the_gil_before_and_after,
        )
        .timeout(GIL_TIMEOUT)
        .on_timeout(DETACH_AT_ONCE),
        Trial::new(
            "ch03::detach::passes_a_job_panic_on",
            1,
            passes_a_job_panic_on,
        )
        .timeout(GIL_TIMEOUT)
        .on_timeout(
            "the jobs that do not panic wait until the one that does has \
             panicked, so they must run at the same time as it, each on its \
             own thread, without the GIL; or, only two of four jobs' threads \
             able to start, detach hung instead of panicking (do the threads \
             that started wait for the others, at a start barrier?)",
        ),
    ]
}

/// The payload of the panic inside `with_gil`: a type of the trial's own,
/// so that a panic `with_gil` raises itself cannot pass for `f`'s.
#[derive(Debug)]
struct ThePythonCodeRaised;

/// Wraps the process's panic hook in one that also counts the panics whose
/// payload is a `ThePythonCodeRaised`, and passes every panic on to the
/// hook it wraps. Returns the count.
fn count_hook_calls() -> &'static AtomicUsize {
    count_hook_calls_of(|payload| payload.is::<ThePythonCodeRaised>())
}

/// Wraps the process's panic hook in one that also counts the panics whose
/// payload `is_counted` accepts, and passes every panic on to the hook it
/// wraps. Returns the count. A panic that is passed on with
/// `panic::resume_unwind` is not counted again; a new one raised with the
/// same payload (`panic::panic_any`) is.
fn count_hook_calls_of(
    is_counted: impl Fn(&(dyn Any + Send)) -> bool + Send + Sync + 'static,
) -> &'static AtomicUsize {
    let count: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if is_counted(info.payload()) {
            count.fetch_add(1, Ordering::SeqCst);
        }
        hook(info);
    }));
    count
}

/// Whether a panic's payload is the `&'static str` that `panic!(text)`
/// with a literal gives.
fn is_the_str(payload: &(dyn Any + Send), text: &str) -> bool {
    payload.downcast_ref::<&'static str>() == Some(&text)
}

/// Where the process's panic hook lives: the same address before and after
/// a call that left the hook alone, another one if the call set a hook of
/// its own (even one that wraps the hook it found). Puts the hook back as
/// it was. Meaningful once [`count_hook_calls`] has set a hook, which has
/// data of its own (a hook with none has no address of its own).
fn current_hook() -> usize {
    let hook = panic::take_hook();
    let at = std::ptr::from_ref(&*hook).cast::<()>() as usize;
    panic::set_hook(hook);
    at
}

/// A policy that hands the GIL over to a waiting thread every so many
/// ticks: at every third, a `run_bytecodes` that ticks switches in the
/// middle of its turns; at every one, a `blocking_io` that ticks hands the
/// GIL over before it returns.
#[derive(Debug)]
struct HandOverEvery(u64);

impl SwitchPolicy for HandOverEvery {
    fn should_switch(&self, ticks: u64) -> bool {
        ticks >= self.0
    }

    fn hands_off(&self) -> bool {
        true
    }
}
