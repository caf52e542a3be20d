//! Unparks of `block_on`'s thread: many that are no wake, each one taken
//! while the thread sleeps; and a wake whose thread is held right after
//! its unpark, before it does anything more.
//!
//! Each trial runs in a process of its own, so the `SIGSEGV` handler of
//! `course::grader::fault_hold`, and the statics here, are this trial's
//! for the while.

use std::future::poll_fn;
use std::panic;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc::{self, TryRecvError};
use std::task::{Poll, Waker};
use std::thread::{self, Thread};

use course::grader::fault_hold::{FaultHold, ProtFlags};
use course::grader::task::{self, Tid};
use exercises::ch08_futures::block_on;

/// How many times the prankster of [`many_unparks_while_it_sleeps`]
/// unparks the sleeping thread without a wake.
const UNPARKS: usize = 64;

/// The future hands its thread and its waker to a prankster thread, and
/// is pending. [`UNPARKS`] times, the prankster waits until the thread is
/// asleep (`S` in `/proc`, in its `park`) and unparks it, without waking
/// the future: each unpark gets the thread up, and the kernel reports it
/// running until it sleeps again, so each is taken on its own. Then the
/// prankster wakes the future. `block_on` must have polled it twice in
/// all, the second time after the wake: one that polls after a number of
/// unparks without a wake (a "safety net" against lost wakes) polls early.
pub(super) fn many_unparks_while_it_sleeps() {
    let woken = Arc::new(AtomicBool::new(false));
    let (hand_over, handed) = mpsc::channel::<(Tid, Thread, Waker)>();
    // Dropped once `block_on` has returned: then the prankster stops.
    let (polling, returned) = mpsc::channel::<()>();
    let ready = Arc::clone(&woken);
    // Not a scoped thread: see `wakes_up_when_woken_from_another_thread`.
    let prankster = thread::spawn(move || {
        // An error: block_on dropped the future unpolled (a panic).
        let Ok((tid, blocked, waker)) = handed.recv() else {
            return;
        };
        let gone = || returned.try_recv() == Err(TryRecvError::Disconnected);
        for _ in 0..UNPARKS {
            // A thread that never sleeps is another trial's business: then
            // the wake comes at once.
            if !task::watch_until(tid, || task::asleep(tid) || gone()) {
                break;
            }
            if gone() {
                return;
            }
            blocked.unpark(); // No wake: a spurious wake-up.
        }
        task::watch_until(tid, || task::asleep(tid) || gone());
        ready.store(true, Ordering::SeqCst);
        waker.wake();
    });
    let mut hand_over = Some(hand_over);
    let mut polls = 0;
    let answer = block_on(poll_fn(|cx| {
        polls += 1;
        if woken.load(Ordering::SeqCst) {
            return Poll::Ready("on time");
        }
        if polls > 1 {
            return Poll::Ready("early");
        }
        if let Some(hand_over) = hand_over.take() {
            let me = (task::me().tid, thread::current(), cx.waker().clone());
            hand_over.send(me).unwrap();
        }
        Poll::Pending
    }));
    drop(polling);
    prankster.join().unwrap();
    assert!(
        answer == "on time" && polls == 2,
        "block_on polled the future {polls} times ({answer}), for one wake \
         that came after the first poll: another thread unparked block_on's \
         thread {UNPARKS} times while it slept, without waking the future, \
         and block_on polled it before the wake came. An unpark is no wake, \
         however many come: poll again only when the waker's flag is set, \
         and park again while it is not (no count of unparks after which \
         it polls anyway)"
    );
}

/// The runner thread's id, and whether its `block_on` has returned.
static RUNNER: AtomicI32 = AtomicI32::new(0);
static RETURNED: AtomicBool = AtomicBool::new(false);
/// The ringer's id; set to make it wake the future; set once it has.
static RINGER: AtomicI32 = AtomicI32::new(0);
static RING: AtomicBool = AtomicBool::new(false);
static RANG: AtomicBool = AtomicBool::new(false);

/// `block_on` runs on a thread of its own, with a future that hands its
/// waker over and is pending; once that thread is asleep, a ringer thread
/// wakes the future (`wake_by_ref`) with the page of the waker's data (its
/// signal, flag and all) read-only. Its first write to that page faults,
/// and `course::grader::fault_hold` holds it there. The page is made
/// writable again, and the ringer held, until the runner thread is asleep
/// and not held; only then is the ringer let go, and its wake goes on.
/// A waker that sets its flag first is held before its unpark: the runner
/// sleeps on meanwhile, and then gets the unpark. One that unparks first
/// and sets its flag second is held after its unpark: the runner gets up,
/// finds the flag clear and parks again, before the flag is set; then
/// nothing unparks it, and the trial times out. Holding the ringer is only
/// a delay, one of the orders the threads could have run in.
pub(super) fn a_wake_held_after_its_unpark() {
    let rung = Arc::new(AtomicBool::new(false));
    let bell = Arc::clone(&rung);
    let (hand_over, handed) = mpsc::channel::<Waker>();
    // Not a scoped thread: see `wakes_up_when_woken_from_another_thread`.
    let runner = thread::spawn(move || {
        RUNNER.store(task::me().tid, Ordering::SeqCst);
        let answer = super::until_rung(&bell, hand_over, "heard");
        RETURNED.store(true, Ordering::SeqCst);
        answer
    });
    // An error: block_on dropped the future unpolled (a panic).
    let Ok(waker) = handed.recv() else {
        let _ = runner.join().map_err(panic::resume_unwind);
        return;
    };
    let runner_tid = RUNNER.load(Ordering::SeqCst);
    // Asleep in its `park`; one that never sleeps is another trial's
    // business.
    task::watch_until(runner_tid, || task::asleep(runner_tid));
    rung.store(true, Ordering::SeqCst);
    // The page of the waker's data: for `Waker::from(Arc<impl Wake>)`, the
    // signal, with its flag.
    let signal = waker.data() as usize;
    let ringer = thread::spawn(move || {
        RINGER.store(task::me().tid, Ordering::SeqCst);
        while !RING.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        waker.wake_by_ref();
        RANG.store(true, Ordering::SeqCst);
        waker
    });
    while RINGER.load(Ordering::SeqCst) == 0 {
        thread::yield_now();
    }
    let ringer_tid = RINGER.load(Ordering::SeqCst);
    let hold = FaultHold::new(signal, signal + 64);
    hold.protect(ProtFlags::PROT_READ);
    RING.store(true, Ordering::SeqCst);
    // Held at its first write to the signal's page, or done: a waker whose
    // flag is elsewhere is not held.
    task::watch_until(ringer_tid, || {
        hold.is_held(ringer_tid) || RANG.load(Ordering::SeqCst)
    });
    hold.protect(ProtFlags::PROT_READ | ProtFlags::PROT_WRITE);
    // The runner, if the unpark got it up, takes the flag (redoing a write
    // that faulted, if it was held) and goes back to sleep, or returns.
    task::watch_until(runner_tid, || {
        hold.let_go(runner_tid);
        (task::asleep(runner_tid) && !hold.is_held(runner_tid))
            || RETURNED.load(Ordering::SeqCst)
    });
    // Lets the ringer go on.
    drop(hold);
    let waker = ringer.join().unwrap();
    let answer = runner
        .join()
        .unwrap_or_else(|panic| panic::resume_unwind(panic));
    drop(waker);
    assert_eq!(answer, "heard", "the future's output");
}
