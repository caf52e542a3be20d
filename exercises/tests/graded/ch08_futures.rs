//! Graded trials of chapter 8, Async: from asyncio to tokio: futures by
//! hand.
//!
//! The "how" checks: the countdown is polled with wakers that count their
//! wakes, a fresh one each poll, so a `Pending` without a wake (or with
//! two, or to an old waker) shows; `block_on` is given a future that counts
//! its polls and its wakes, and a busy loop polls far more often than it is
//! woken; and several lookups on a one-thread runtime must all be waiting
//! before the first is answered, which a `resolve` that blocks the thread
//! cannot do. Versions that never wake up or block the thread time out and
//! are told why.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch08")]

// The trials' bodies, one module per exercise, in `ch08_futures/`; the
// helpers that several use are below.
mod block_on;
mod countdown;
mod resolve;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Wake, Waker};
use std::time::Duration;

use block_on::{
    keeps_the_wakes_of_each_call_apart, polls_only_when_woken,
    returns_the_output, runs_a_oneshot_receiver, sleeps_while_it_waits,
    survives_a_poll_that_parks, survives_a_spurious_unpark,
    wakes_up_when_woken_from_another_thread,
};
use countdown::{
    is_pending_n_times_then_ready, never_blocks_the_thread, runs_on_tokio,
    wakes_itself_each_time_it_is_pending, zero_is_ready_at_once,
};
use course::grader::Trial;
use resolve::{
    a_dropped_callback_is_an_error, an_answer_after_cancelling_is_ignored,
    does_not_block_the_runtime, returns_what_the_callback_gives,
    waits_for_a_callback_from_another_thread,
};
use tokio::runtime::{Builder, Runtime};

/// Deadline for trials whose only way to hang is a future that is never
/// polled again, or a thread that waits for what it blocks.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

/// A pause that lets the thread in `block_on` go to sleep before it is
/// woken. Too short a pause (a slow machine) may let a wrong answer pass;
/// it never fails a right one.
const SETTLE: Duration = Duration::from_millis(50);

/// What a `block_on` that hangs after a wake-up from another thread is
/// told.
const BLOCK_ON_SLEPT: &str = "block_on slept on after another thread woke \
                              the future: the waker must unpark the thread \
                              that runs block_on";

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        // Exclusive: it counts the bytes the countdown's polls leave
        // allocated, and another trial's allocations meanwhile would count
        // too.
        Trial::new(
            "ch08::countdown::is_pending_n_times_then_ready",
            1,
            is_pending_n_times_then_ready,
        )
        .timeout(HANG_TIMEOUT)
        .exclusive(),
        Trial::new(
            "ch08::countdown::wakes_itself_each_time_it_is_pending",
            1,
            wakes_itself_each_time_it_is_pending,
        )
        .timeout(HANG_TIMEOUT),
        Trial::new("ch08::countdown::runs_on_tokio", 1, runs_on_tokio)
            .timeout(HANG_TIMEOUT)
            .on_timeout(
                "tokio never polled the countdown again: it returned \
                 Pending without waking: nobody will poll it again. Call \
                 cx.waker().wake_by_ref() each time you answer Pending",
            ),
        Trial::new(
            "ch08::countdown::zero_is_ready_at_once",
            1,
            zero_is_ready_at_once,
        )
        .timeout(HANG_TIMEOUT),
        Trial::new(
            "ch08::countdown::never_blocks_the_thread",
            1,
            never_blocks_the_thread,
        )
        .timeout(HANG_TIMEOUT),
        // Exclusive: it counts the bytes left allocated, and another
        // trial's allocations meanwhile would count too.
        Trial::new("ch08::block_on::returns_the_output", 1, returns_the_output)
            .timeout(HANG_TIMEOUT)
            .exclusive()
            .on_timeout(
                "block_on never returned for a future that is ready, or that \
             wakes itself: poll first, and park only after a Pending",
            ),
        Trial::new(
            "ch08::block_on::wakes_up_when_woken_from_another_thread",
            1,
            wakes_up_when_woken_from_another_thread,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "block_on slept on after another thread woke the future: the \
             waker must unpark the thread that runs block_on (take its \
             handle with thread::current() in block_on, not in wake)",
        ),
        Trial::new(
            "ch08::block_on::polls_only_when_woken",
            2,
            polls_only_when_woken,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(BLOCK_ON_SLEPT),
        Trial::new(
            "ch08::block_on::survives_a_spurious_unpark",
            1,
            survives_a_spurious_unpark,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(BLOCK_ON_SLEPT),
        Trial::new(
            "ch08::block_on::survives_a_poll_that_parks",
            1,
            survives_a_poll_that_parks,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "block_on slept on after the future was woken: the poll parked \
             the thread for a moment (or ran a nested block_on) and took \
             the unpark token the wake had left, and block_on parked \
             waiting for another. Let the waker set a flag (an AtomicBool) \
             before it unparks, and poll again whenever the flag is set, \
             without parking; and give each call a flag of its own (in the \
             Arc that makes its Waker, not in a thread_local or a static), \
             or a nested call takes the outer call's wake",
        ),
        Trial::new(
            "ch08::block_on::sleeps_while_it_waits",
            1,
            sleeps_while_it_waits,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the thread in block_on never went to sleep while its future \
             was pending (a block_on of its own, or one nested in the poll \
             of another): it spins (yield_now, spin_loop, or polling in a \
             loop) and burns a core. Park it with thread::park() until the \
             waker unparks it, in a loop that checks the woken flag, in a \
             nested call too: the flag, not the unpark token, says whether \
             it was woken",
        ),
        Trial::new(
            "ch08::block_on::keeps_the_wakes_of_each_call_apart",
            1,
            keeps_the_wakes_of_each_call_apart,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "two block_on calls ran at once on two threads, and one of \
             them never returned: either it never went to sleep while its \
             future was pending (if sleeps_while_it_waits timed out too, \
             start there), or the other call took its wake. Keep the woken \
             flag in the Arc that makes each call's Waker, not in a static",
        ),
        Trial::new(
            "ch08::block_on::runs_a_oneshot_receiver",
            1,
            runs_a_oneshot_receiver,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "block_on never returned after another thread sent on the \
             oneshot channel: the receiver's poll keeps the waker, the \
             sender calls it, and that must unpark block_on's thread",
        ),
        Trial::new(
            "ch08::resolve::returns_what_the_callback_gives",
            1,
            returns_what_the_callback_gives,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "resolve never returned, though the callback was called at \
             once, inside lookup",
        ),
        Trial::new(
            "ch08::resolve::waits_for_a_callback_from_another_thread",
            1,
            waits_for_a_callback_from_another_thread,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "a poll of resolve never returned: the first blocks the \
             thread until the callback is called, and the callback was \
             to be called after that poll; or one run during the \
             answer's wake waits for a lock the callback holds while it \
             wakes. Await a tokio::sync::oneshot receiver instead, or \
             let go of the lock before waking",
        ),
        Trial::new(
            "ch08::resolve::a_dropped_callback_is_an_error",
            1,
            a_dropped_callback_is_an_error,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "resolve never returned after the resolver dropped the \
             callback: when the oneshot sender is dropped unsent, the \
             receiver completes with an error; return one then",
        ),
        Trial::new(
            "ch08::resolve::does_not_block_the_runtime",
            2,
            does_not_block_the_runtime,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "three lookups never all started on a current-thread runtime: \
             resolve blocks the runtime's thread: await a oneshot instead",
        ),
        Trial::new(
            "ch08::resolve::an_answer_after_cancelling_is_ignored",
            1,
            an_answer_after_cancelling_is_ignored,
        )
        .timeout(HANG_TIMEOUT),
    ]
}

/// A waker that counts its wakes.
#[derive(Debug, Default)]
struct WakeCount(AtomicUsize);

impl WakeCount {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A fresh waker, and its count of wakes.
fn counting_waker() -> (Arc<WakeCount>, Waker) {
    let count = Arc::new(WakeCount::default());
    (Arc::clone(&count), Waker::from(count))
}

/// A runtime on the calling thread alone, with neither timers nor
/// sockets.
fn current_thread_runtime() -> Runtime {
    Builder::new_current_thread()
        .build()
        .expect("a current-thread tokio runtime")
}
