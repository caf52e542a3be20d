//! `block_on`: it returns the output, sleeps until another thread wakes
//! the future, polls only when woken, is not fooled by an unpark without
//! a wake, does not sleep through a wake whose unpark was eaten, and
//! keeps the wakes of calls on different threads apart.

// Two clones of the waker dropped at once, in the order that loses a
// decrement of a count that is not atomic.
mod racing_drops;
mod sleeping;
// Many unparks without a wake, and a wake held after its unpark.
mod unparks;

use std::future::{self, poll_fn};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier};
use std::task::{Poll, Waker};
use std::thread;

use course::grader::alloc;
use exercises::ch08_futures::block_on;
use tokio::sync::oneshot;

use super::SETTLE;

pub(super) use sleeping::{
    keeps_the_wakes_of_each_call_apart, sleeps_while_it_waits,
};

/// The payload of the panic of the future in [`returns_the_output`].
#[derive(Debug)]
struct FuturePanicked;

/// `block_on` returns the output of ready futures, of an async block that
/// awaits another, and of a future that wakes itself three times before
/// it is ready; and a call whose future clones its waker and wakes the
/// clones leaves no byte allocated when it returns. A future that panics
/// at its second poll makes `block_on` panic with that panic's payload,
/// and leaves no byte allocated either.
/// And the waker, and a clone of it that the future keeps, point to
/// memory that outlives the call, not into `block_on`'s stack frame.
pub(super) fn returns_the_output() {
    thread::Builder::new()
        .stack_size(WAKER_THREAD_STACK)
        .spawn(wakers_do_not_point_into_the_stack)
        .expect("cannot spawn a thread")
        .join()
        .unwrap_or_else(|panic| panic::resume_unwind(panic));
    assert_eq!(block_on(future::ready(42)), 42, "block_on(ready(42))");
    let order = block_on(async {
        let pages = async { 20 }.await;
        pages + 22
    });
    assert_eq!(order, 42, "block_on of an async block that awaits another");
    let mut polls = 0;
    let polled = block_on(poll_fn(|cx| {
        polls += 1;
        if polls <= 3 {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(polls)
        }
    }));
    assert_eq!(
        polled, 4,
        "a future that wakes itself three times is ready at its 4th poll"
    );
    // Every byte a call allocates is freed by the time it returns: its
    // future kept no waker, and the wakers it cloned are dropped. (The
    // first call above made this thread's `Thread` handle, which stays.)
    let leaked = alloc::left_allocated_by(|| {
        let mut polls = 0;
        block_on(poll_fn(|cx| {
            polls += 1;
            if polls > 1 {
                return Poll::Ready(());
            }
            let clones: Vec<Waker> =
                (0..10).map(|_| cx.waker().clone()).collect();
            for clone in clones {
                clone.wake();
            }
            Poll::Pending
        }));
    });
    assert_eq!(
        leaked, 0,
        "block_on left {leaked} bytes allocated after it returned, for a \
         future that cloned its waker 10 times and woke each clone: the \
         waker (or its clones) never gives back its reference to the shared \
         state. Make the Waker with Waker::from(Arc<impl Wake>), which \
         counts the references for you, rather than a RawWakerVTable"
    );
    // Two clones dropped on two threads at once, both reading the count
    // before either writes it: a count that is not atomic loses one of
    // the two decrements, and the signal is never freed. (A thread first,
    // for what std allocates once, at the first.)
    thread::spawn(|| ()).join().expect("an empty thread");
    let leaked = alloc::left_allocated_by(|| {
        block_on(poll_fn(|cx| {
            racing_drops::drop_two_clones_at_once(cx.waker())
        }));
    });
    assert_eq!(
        leaked, 0,
        "block_on left {leaked} bytes allocated after it returned, for a \
         future that cloned its waker twice and dropped the two clones on \
         two threads at once, both reading the count of references before \
         either wrote it back: the count is not atomic (an Rc, or a Cell), \
         so one drop was lost. A waker may be cloned, dropped and woken on \
         any thread at any moment: make it with Waker::from(Arc<impl \
         Wake>), with an AtomicBool for its flag, not an Rc and a Cell"
    );
    let panicked = runs_a_future_that_panics();
    match panicked {
        Err(payload) if payload.is::<FuturePanicked>() => {}
        Err(_) => panic!(
            "the future panicked (with a payload of a type of the test's \
             own), and block_on panicked with another payload: let the \
             future's panic go on as it is, as asyncio.run raises the \
             coroutine's own exception (no catch_unwind and a new panic)"
        ),
        Ok(()) => panic!("block_on returned, though its future panicked"),
    }
    // Once more, counting the bytes: the unwinding drops what block_on
    // holds, so its waker and signal are freed on the way out, though no
    // line after the loop runs. (The first panic above made what a
    // panic makes once.)
    let leaked = alloc::left_allocated_by(|| {
        let _ = runs_a_future_that_panics();
    });
    assert_eq!(
        leaked, 0,
        "block_on left {leaked} bytes allocated after its future panicked \
         and the panic went on out of it: a reference to the signal is \
         given back only by a line after the poll loop, which a panic \
         skips. Hold every reference in a value whose drop gives it back \
         (an Arc, a Waker), so that the unwinding frees it"
    );
}

/// Runs `block_on` on a future that wakes itself at its first poll and
/// panics, with [`FuturePanicked`], at its second, and catches the panic
/// that comes out of `block_on`.
fn runs_a_future_that_panics() -> std::thread::Result<()> {
    let mut polls = 0;
    panic::catch_unwind(AssertUnwindSafe(|| {
        block_on(poll_fn(|cx| {
            polls += 1;
            if polls > 1 {
                panic::panic_any(FuturePanicked);
            }
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        }));
    }))
}

/// The stack of the thread of [`wakers_do_not_point_into_the_stack`]:
/// far more than its few calls use.
const WAKER_THREAD_STACK: usize = 1 << 20;

/// How far below the deepest frame that the future sees the test still
/// takes an address for one on the stack: a frame of `block_on`'s own
/// lies above it, whatever the compiler inlined, and the thread's stack
/// goes on that far below.
const STACK_SLACK: usize = 64 << 10;

/// On a thread of the test's own, with a stack of
/// [`WAKER_THREAD_STACK`]: `block_on` runs, a few frames down, a future
/// that clones its waker and keeps the clone; neither the waker's data
/// pointer nor the clone's (`Waker::data`) may lie between the frame of
/// the future's poll and a frame above the call: that is the thread's
/// stack, and `block_on`'s frame, which is gone once it returns, while a
/// clone may be kept (and woken, from any thread) for as long as its
/// holder likes. A waker whose data is a pointer to a signal on the stack,
/// with no reference count, is used after free.
fn wakers_do_not_point_into_the_stack() {
    let above = 0_u8;
    let top = std::hint::black_box(&above) as *const u8 as usize;
    let (deepest, pointers, kept) = runs_a_future_that_keeps_a_clone();
    // Between the future's frame (with some slack below it) and the
    // frame above the call, all is this thread's stack.
    let stack = deepest.saturating_sub(STACK_SLACK)..=top;
    for (which, data) in
        ["the waker", "a clone of it"].into_iter().zip(pointers)
    {
        assert!(
            !stack.contains(&data),
            "{which} that block_on gave the future points into the stack of \
             the thread that runs block_on ({data:#x}, between {:#x} and \
             {top:#x}): to a frame that is gone once block_on returns, while \
             a clone may be kept and woken later, from any thread. Make the \
             Waker from an Arc (Waker::from(Arc<impl Wake>)), so that every \
             clone keeps the signal alive",
            stack.start()
        );
    }
    drop(kept);
}

/// The frames below [`wakers_do_not_point_into_the_stack`]'s: runs a
/// future that keeps a clone of its waker, and returns the address of a
/// local of its poll, the data pointers of the waker and of the clone, and
/// the clone.
#[inline(never)]
fn runs_a_future_that_keeps_a_clone() -> (usize, [usize; 2], Option<Waker>) {
    let mut seen = None;
    let mut kept = None;
    block_on(poll_fn(|cx| {
        let here = 0_u8;
        let deepest = std::hint::black_box(&here) as *const u8 as usize;
        let clone = cx.waker().clone();
        seen = Some((
            deepest,
            [cx.waker().data() as usize, clone.data() as usize],
        ));
        kept = Some(clone);
        Poll::Ready(())
    }));
    let (deepest, pointers) = seen.expect("block_on never polled the future");
    (deepest, pointers, kept)
}

/// A future hands its waker to a doorbell thread and is pending until the
/// bell rings; the doorbell waits a moment, so that `block_on` is likely
/// asleep, then rings and wakes the future.
pub(super) fn wakes_up_when_woken_from_another_thread() {
    let rung = Arc::new(AtomicBool::new(false));
    let (hand_over, handed) = mpsc::channel::<Waker>();
    let bell = Arc::clone(&rung);
    // Not a scoped thread, here and below: when the last thread of a
    // scope ends, it unparks the thread that opened the scope, and that
    // would wake even a `block_on` whose waker wakes nobody.
    let doorbell = thread::spawn(move || {
        // An error: block_on dropped the future unpolled (a panic).
        let Ok(waker) = handed.recv() else { return };
        thread::sleep(SETTLE);
        bell.store(true, Ordering::SeqCst);
        waker.wake();
    });
    let answer = until_rung(&rung, hand_over, "ding");
    doorbell.join().unwrap();
    assert_eq!(answer, "ding", "the future's output");
}

/// A clock thread chimes three times, each chime a wake, after a pause in
/// which the future is pending; it chimes again only once the future has
/// been polled and heard the last chime. `block_on` polls once at the
/// start and then at most once per wake: a busy loop polls thousands of
/// times meanwhile, and one that polls only twice misses a chime.
pub(super) fn polls_only_when_woken() {
    const CHIMES: usize = 3;
    let chimed = Arc::new(AtomicUsize::new(0));
    let wakes = Arc::new(AtomicUsize::new(0));
    let (hear, heard) = mpsc::channel();
    let mut heard = Some(heard);
    let mut clock = None;
    let mut last_heard = 0;
    let mut polls = 0;
    block_on(poll_fn(|cx| {
        polls += 1;
        let now = chimed.load(Ordering::SeqCst);
        if now > last_heard {
            last_heard = now;
            // An error: the clock gave up already.
            let _ = hear.send(now);
        }
        if now == CHIMES {
            return Poll::Ready(());
        }
        if clock.is_none() {
            let waker = cx.waker().clone();
            let (chimed, wakes) = (Arc::clone(&chimed), Arc::clone(&wakes));
            let heard = heard.take().unwrap();
            clock = Some(thread::spawn(move || {
                thread::sleep(SETTLE);
                for chime in 1..=CHIMES {
                    chimed.store(chime, Ordering::SeqCst);
                    wakes.fetch_add(1, Ordering::SeqCst);
                    waker.wake_by_ref();
                    // An error: the future was dropped (a panic).
                    if heard.recv() != Ok(chime) {
                        return;
                    }
                }
            }));
        }
        Poll::Pending
    }));
    if let Some(clock) = clock {
        clock.join().unwrap();
    }
    let wakes = wakes.load(Ordering::SeqCst);
    assert!(
        polls <= wakes + 1,
        "block_on polled the future {polls} times, but it was woken only \
         {wakes} times: an executor polls once, then once per wake at most. \
         Polling in a loop is a busy wait that burns a core; park the thread \
         until the waker unparks it"
    );
}

/// A prankster thread unparks `block_on`'s thread during the first poll,
/// without waking the future, and the poll ends only once it has; a
/// moment later the prankster wakes the future for real. `block_on` must
/// take the unpark for no wake: it polls once at the start and once after
/// the wake, twice in all. One that polls whenever `park` returns polls a
/// second time at once, before the wake, since the unpark left a token.
/// Then many unparks while the thread sleeps (see
/// [`unparks::many_unparks_while_it_sleeps`]).
pub(super) fn survives_a_spurious_unpark() {
    let woken = Arc::new(AtomicBool::new(false));
    let unparked = Arc::new(Barrier::new(2));
    // Dropped once `block_on` has returned: then the prankster wakes
    // nobody.
    let (polling, returned) = mpsc::channel::<()>();
    let mut returned = Some(returned);
    let mut prankster = None;
    let mut polls = 0;
    let answer = block_on(poll_fn(|cx| {
        polls += 1;
        if woken.load(Ordering::SeqCst) {
            return Poll::Ready("on time");
        }
        if polls > 1 {
            return Poll::Ready("early");
        }
        let blocked = thread::current();
        let waker = cx.waker().clone();
        let (ready, done) = (Arc::clone(&woken), Arc::clone(&unparked));
        let returned = returned.take().unwrap();
        prankster = Some(thread::spawn(move || {
            blocked.unpark(); // No wake: a spurious wake-up.
            done.wait();
            // A pause, cut short if `block_on` returns meanwhile.
            if returned.recv_timeout(SETTLE) == Err(RecvTimeoutError::Timeout) {
                ready.store(true, Ordering::SeqCst);
                waker.wake();
            }
        }));
        // A `Barrier` waits on a condition variable, not with `park`: the
        // unpark's token is still there when this poll returns.
        unparked.wait();
        Poll::Pending
    }));
    drop(polling);
    if let Some(prankster) = prankster {
        prankster.join().unwrap();
    }
    assert!(
        answer == "on time" && polls == 2,
        "block_on polled the future {polls} times ({answer}), for one wake \
         that came after the first poll: another thread unparked block_on's \
         thread without waking the future, and block_on polled it again. \
         park() returns for any unpark, so let the waker set a flag (an \
         AtomicBool) before it unparks, and poll again only when the flag \
         is set"
    );
    unparks::many_unparks_while_it_sleeps();
}

/// The first poll hands its waker to a thread that wakes the future, and
/// waits until it has; then the poll parks the thread itself for a
/// moment, as a nested `block_on` or a blocking channel may, and that
/// eats the unpark of the wake. The future was woken all the same, and
/// `block_on` must poll it again: one that waits for an unpark sleeps on.
/// Then the same with a nested `block_on` in the poll, after the outer
/// future woke itself: a `block_on` whose flag is shared by the calls on
/// a thread (a `thread_local`) lets the inner call take the outer wake.
/// Then a wake whose thread is held right after its unpark (see
/// [`unparks::a_wake_held_after_its_unpark`]).
pub(super) fn survives_a_poll_that_parks() {
    let rung = Arc::new(Barrier::new(2));
    let mut bell = None;
    let answer = block_on(poll_fn(|cx| {
        if bell.is_some() {
            return Poll::Ready("heard");
        }
        let waker = cx.waker().clone();
        let ringer = Arc::clone(&rung);
        bell = Some(thread::spawn(move || {
            waker.wake();
            ringer.wait();
        }));
        // The wake, and its unpark, are done when this returns.
        rung.wait();
        // Eats the token that the wake left. A waker that does not unpark
        // costs a pause here, no more.
        thread::park_timeout(SETTLE);
        Poll::Pending
    }));
    if let Some(bell) = bell {
        bell.join().unwrap();
    }
    assert_eq!(answer, "heard", "the future's output");
    // The same with a nested `block_on`: the poll wakes its own future,
    // then runs another future to its end with `block_on`, which parks
    // (its future wakes itself once) and takes whatever wake is its own.
    // The outer wake is not its own: the outer call must still find it.
    let mut polls = 0;
    let answer = block_on(poll_fn(|cx| {
        polls += 1;
        if polls > 1 {
            return Poll::Ready("heard");
        }
        cx.waker().wake_by_ref();
        let mut inner_polls = 0;
        block_on(poll_fn(|cx| {
            inner_polls += 1;
            if inner_polls > 1 {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }));
        Poll::Pending
    }));
    assert_eq!(answer, "heard", "the future's output");
    unparks::a_wake_held_after_its_unpark();
}

/// `block_on` runs a tokio oneshot receiver, no runtime needed: it gets
/// the value another thread sends, and an error when the sender is
/// dropped unsent.
pub(super) fn runs_a_oneshot_receiver() {
    let (sender, receiver) = oneshot::channel();
    let courier = thread::spawn(move || {
        thread::sleep(SETTLE);
        let _ = sender.send("parcel");
    });
    assert_eq!(
        block_on(receiver),
        Ok("parcel"),
        "the receiver's output, after another thread sent \"parcel\""
    );
    courier.join().unwrap();
    let (sender, receiver) = oneshot::channel::<&str>();
    let courier = thread::spawn(move || {
        thread::sleep(SETTLE);
        drop(sender);
    });
    assert!(
        block_on(receiver).is_err(),
        "the receiver's output, after another thread dropped the sender"
    );
    courier.join().unwrap();
}

/// The state letter of this process's thread `tid`, from
/// `/proc/self/task/<tid>/stat`: `R` running or runnable, `S` asleep.
/// An error if the file cannot be read (the thread has ended) or has no
/// state in it.
/// `block_on` of a future that hands its first poll's waker over and is
/// ready, with `answer`, once `bell` has rung.
fn until_rung(
    bell: &AtomicBool,
    hand_over: mpsc::Sender<Waker>,
    answer: &'static str,
) -> &'static str {
    let mut hand_over = Some(hand_over);
    block_on(poll_fn(|cx| {
        if bell.load(Ordering::SeqCst) {
            return Poll::Ready(answer);
        }
        if let Some(hand_over) = hand_over.take() {
            hand_over.send(cx.waker().clone()).unwrap();
        }
        Poll::Pending
    }))
}

fn thread_state(tid: &str) -> Result<char, String> {
    let path = format!("/proc/self/task/{tid}/stat");
    let stat = std::fs::read_to_string(&path)
        .map_err(|error| format!("cannot read {path}: {error}"))?;
    // After the parenthesised command name: the state.
    stat.rsplit_once(')')
        .and_then(|(_, after_name)| after_name.split_whitespace().next())
        .and_then(|state| state.chars().next())
        .ok_or_else(|| format!("no state in {path}: {stat:?}"))
}

/// The calling thread's id, as `/proc/self/task` names it.
fn my_tid() -> String {
    // `/proc/thread-self` is `<pid>/task/<tid>`.
    let me = std::fs::read_link("/proc/thread-self")
        .expect("cannot read /proc/thread-self");
    me.file_name()
        .and_then(|name| name.to_str())
        .expect("a thread id")
        .to_string()
}
