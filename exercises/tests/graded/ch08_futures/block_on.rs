//! `block_on`: it returns the output, sleeps until another thread wakes
//! the future, polls only when woken, is not fooled by an unpark without
//! a wake, does not sleep through a wake whose unpark was eaten, and
//! keeps the wakes of calls on different threads apart.

use std::future::{self, poll_fn};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Barrier};
use std::task::{Poll, Waker};
use std::thread::{self, Thread};

use course::grader::alloc;
use course::grader::task::{self, Wait};
use exercises::ch08_futures::block_on;
use tokio::sync::oneshot;

use super::SETTLE;

/// The payload of the panic of the future in [`returns_the_output`].
#[derive(Debug)]
struct FuturePanicked;

/// `block_on` returns the output of ready futures, of an async block that
/// awaits another, and of a future that wakes itself three times before
/// it is ready; and a call whose future clones its waker and wakes the
/// clones leaves no byte allocated when it returns. A future that panics
/// at its second poll makes `block_on` panic with that panic's payload.
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
    let mut polls = 0;
    let panicked = panic::catch_unwind(AssertUnwindSafe(|| {
        block_on(poll_fn(|cx| {
            polls += 1;
            if polls > 1 {
                panic::panic_any(FuturePanicked);
            }
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        }));
    }));
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
    let mut hand_over = Some(hand_over);
    let answer = block_on(poll_fn(|cx| {
        if rung.load(Ordering::SeqCst) {
            return Poll::Ready("ding");
        }
        if let Some(hand_over) = hand_over.take() {
            hand_over.send(cx.waker().clone()).unwrap();
        }
        Poll::Pending
    }));
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
}

/// The first poll hands its waker to a thread that wakes the future, and
/// waits until it has; then the poll parks the thread itself for a
/// moment, as a nested `block_on` or a blocking channel may, and that
/// eats the unpark of the wake. The future was woken all the same, and
/// `block_on` must poll it again: one that waits for an unpark sleeps on.
/// Then the same with a nested `block_on` in the poll, after the outer
/// future woke itself: a `block_on` whose flag is shared by the calls on
/// a thread (a `thread_local`) lets the inner call take the outer wake.
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

/// `block_on` runs on a thread of its own; its future is pending, and
/// tells the test its thread's id and its waker; then the same with the
/// pending future in a nested `block_on`, run inside the poll of another. The test waits until the
/// kernel reports that thread asleep (`S` in `/proc`), and only then
/// wakes the future. A `block_on` that spins (`yield_now` in a loop, or
/// polling again and again) is never asleep: it is always running or
/// ready to run, so the wake never comes and the trial times out. Once
/// asleep, the thread must be in a wait with no deadline (`/proc` shows a
/// `park_timeout`'s, however long), and stay asleep while the test watches
/// it: one that gets up by itself and sleeps again shows in the kernel's
/// count of its sleeps.
pub(super) fn sleeps_while_it_waits() {
    sleeps_while_a_call_waits(false);
    sleeps_while_a_call_waits(true);
}

/// [`sleeps_while_it_waits`], with the pending future run by a `block_on`
/// of its own (`nested` false), or by one inside the poll of another
/// (`nested`): a nested call must sleep as well, not spin on its flag.
fn sleeps_while_a_call_waits(nested: bool) {
    let (hand_over, handed) = mpsc::channel::<(String, Waker)>();
    let rung = Arc::new(AtomicBool::new(false));
    let bell = Arc::clone(&rung);
    // Not a scoped thread: see `wakes_up_when_woken_from_another_thread`.
    let runner = thread::spawn(move || {
        let mut hand_over = Some(hand_over);
        let pending = poll_fn(move |cx| {
            if bell.load(Ordering::SeqCst) {
                return Poll::Ready("woken");
            }
            if let Some(hand_over) = hand_over.take() {
                hand_over.send((my_tid(), cx.waker().clone())).unwrap();
            }
            Poll::Pending
        });
        if nested {
            block_on(async move { block_on(pending) })
        } else {
            block_on(pending)
        }
    });
    let which = if nested {
        "a block_on nested in the poll of another"
    } else {
        "block_on"
    };
    let (tid, waker) = handed
        .recv()
        .expect("block_on never polled the future (did it panic?)");
    // Until the thread sleeps. A spinning one never does: the trial's
    // timeout ends the wait, and says why. A thread whose state cannot be
    // read has ended (its `block_on` panicked, or returned a future that
    // was pending): that ends the trial at once, with its own report.
    loop {
        match thread_state(&tid) {
            Ok('S') => break,
            Ok(_) => thread::sleep(std::time::Duration::from_millis(1)),
            Err(why) if runner.is_finished() => match runner.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(answer) => panic!(
                    "{which} returned {answer:?} for a future that was \
                     pending and never woken ({why})"
                ),
            },
            Err(why) => panic!("cannot tell whether block_on sleeps: {why}"),
        }
    }
    // Asleep in a wait with no deadline, as `park` is: a timed wait
    // (`park_timeout`, `Condvar::wait_timeout`, `sleep` in a loop) gets up
    // by itself, however long its timeout, and `/proc` shows its deadline.
    // Read until the thread is seen in its wait: it may be between two
    // timed waits just then.
    let number: task::Tid = tid.parse().expect("a thread id");
    let timed = loop {
        match task::wait(number) {
            Some((Wait::UntilADeadline, line)) => break Some(line),
            Some(_) => break None,
            None if runner.is_finished() => break None,
            None => thread::sleep(std::time::Duration::from_millis(1)),
        }
    };
    // Asleep, it sleeps on until the wake: a thread that gets up by itself
    // now and then (a `park_timeout` "safety net") goes back to sleep each
    // time, and the kernel counts each of those sleeps. One is allowed,
    // for a thread that was seen asleep just before it parked.
    let asleep = voluntary_switches_of(&tid);
    thread::sleep(HEARTBEAT_WATCH);
    let got_up = voluntary_switches_of(&tid) - asleep;
    rung.store(true, Ordering::SeqCst);
    waker.wake();
    let answer = runner.join().expect("block_on panicked");
    if let Some(line) = timed {
        panic!(
            "the thread in {which} waited with a deadline while its future \
             was pending and nothing woke it (system call {line}): it gets \
             up by itself when the deadline comes, however far off. Park \
             with thread::park(), not park_timeout (nor a timed wait of a \
             Condvar, nor sleep in a loop), and let only the waker get it \
             up (a timeout is no safety net: a lost wake is a bug to fix)"
        );
    }
    assert!(
        got_up <= 1,
        "the thread in {which} got up {got_up} times in {} ms while its \
         future was pending and nothing woke it: park with \
         thread::park(), not park_timeout, and let only the waker get it \
         up (a timeout is no safety net: a lost wake is a bug to fix)",
        HEARTBEAT_WATCH.as_millis()
    );
    assert_eq!(answer, "woken", "the future's output");
}

/// How long [`sleeps_while_it_waits`] watches the sleeping thread for
/// wake-ups of its own: a thread that gets up every 100 ms or more often
/// shows.
const HEARTBEAT_WATCH: std::time::Duration =
    std::time::Duration::from_millis(300);

/// How many times this process's thread `tid` has gone to sleep, as
/// `/proc/self/task/<tid>/status` counts them.
fn voluntary_switches_of(tid: &str) -> u64 {
    let path = format!("/proc/self/task/{tid}/status");
    let status = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no voluntary_ctxt_switches in {path}"))
}

/// Two calls of `block_on`, one after the other, on a thread of their
/// own. The first's future keeps a clone of its waker. The second's
/// future, at its first poll, wakes that clone, then answers `Pending`:
/// that is no wake of its own, and the test waits until the thread has
/// polled it again or gone to sleep, and only then wakes it. A `block_on`
/// that keeps its signal for the next call on the thread (a
/// `thread_local` spare) lets the old clone wake the new call, which
/// polls its future unwoken, without going to sleep first.
fn a_waker_of_an_earlier_call_is_no_wake() {
    let polls = Arc::new(AtomicUsize::new(0));
    let rung = Arc::new(AtomicBool::new(false));
    let (hand_over, handed) = mpsc::channel::<(String, Waker)>();
    // Not a scoped thread: see `wakes_up_when_woken_from_another_thread`.
    let caller = thread::spawn({
        let (polls, rung) = (Arc::clone(&polls), Arc::clone(&rung));
        move || {
            let mut kept = None;
            block_on(poll_fn(|cx| {
                kept = Some(cx.waker().clone());
                Poll::Ready(())
            }));
            let old = kept.expect("block_on never polled the future");
            block_on(poll_fn(move |cx| {
                if polls.fetch_add(1, Ordering::SeqCst) == 0 {
                    old.wake_by_ref();
                    hand_over.send((my_tid(), cx.waker().clone())).unwrap();
                    return Poll::Pending;
                }
                Poll::Ready(if rung.load(Ordering::SeqCst) {
                    "woken"
                } else {
                    "polled unwoken"
                })
            }))
        }
    });
    let (tid, waker) = handed
        .recv()
        .expect("block_on never polled the future (did it panic?)");
    // Until it polls again, or sleeps (one that never does times out, and
    // `sleeps_while_it_waits` says why), or has ended.
    loop {
        if polls.load(Ordering::SeqCst) > 1 {
            break;
        }
        match thread_state(&tid) {
            Ok('S') | Err(_) => break,
            Ok(_) => thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
    rung.store(true, Ordering::SeqCst);
    waker.wake();
    let answer = caller.join().expect("block_on panicked");
    let polls = polls.load(Ordering::SeqCst);
    assert!(
        answer == "woken" && polls == 2,
        "a future kept a clone of its waker from one block_on call, and the \
         future of the next call on that thread woke it, then answered \
         Pending: block_on polled it {polls} times ({answer}) for one wake \
         of its own. The old clone's wake was for a call that has returned, \
         and is no wake for the new one: give each call a signal of its \
         own, a new Arc (not one kept for the next call in a thread_local)"
    );
}

/// Two calls of `block_on` at once, on threads of their own. The second's
/// future is pending, and that thread asleep (`S` in `/proc`). Then the
/// first's future, during its first poll, wakes itself, and its poll does
/// not return until the test has unparked the sleeping thread (an unpark
/// that is no wake) and seen what it did: it must go back to sleep
/// without polling its future, whose waker nobody called. A `block_on`
/// whose "woken" flag is shared by every call (a `static`) finds the
/// first call's wake there instead: the second call takes it and polls
/// its future unwoken, and the first, its wake gone, sleeps on. Then
/// calls one after the other on one thread: see
/// [`a_waker_of_an_earlier_call_is_no_wake`].
pub(super) fn keeps_the_wakes_of_each_call_apart() {
    a_waker_of_an_earlier_call_is_no_wake();
    // The second call: pending until the test wakes it, and told so.
    let polls = Arc::new(AtomicUsize::new(0));
    let rung = Arc::new(AtomicBool::new(false));
    let (hand_over, handed) = mpsc::channel::<(String, Thread, Waker)>();
    // Not scoped threads: see `wakes_up_when_woken_from_another_thread`.
    let sleeper = thread::spawn({
        let (polls, rung) = (Arc::clone(&polls), Arc::clone(&rung));
        move || {
            block_on(poll_fn(move |cx| {
                if polls.fetch_add(1, Ordering::SeqCst) == 0 {
                    let handle =
                        (my_tid(), thread::current(), cx.waker().clone());
                    hand_over.send(handle).unwrap();
                    return Poll::Pending;
                }
                Poll::Ready(if rung.load(Ordering::SeqCst) {
                    "woken"
                } else {
                    "polled unwoken"
                })
            }))
        }
    });
    let (tid, sleeping, waker) = handed
        .recv()
        .expect("block_on never polled the future (did it panic?)");
    // Until it sleeps; one that never does times out (and
    // `sleeps_while_it_waits` says why).
    loop {
        match thread_state(&tid) {
            Ok('S') => break,
            Ok(_) => thread::sleep(std::time::Duration::from_millis(1)),
            Err(why) => match sleeper.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(answer) => panic!(
                    "block_on returned {answer:?} for a future that was \
                     pending and never woken ({why})"
                ),
            },
        }
    }
    // The first call: it wakes its own future during the first poll, and
    // that poll returns only when the test lets it.
    let (woke, woken) = mpsc::channel::<Waker>();
    let (go, gone) = mpsc::channel::<()>();
    let waker_itself = thread::spawn(move || {
        let mut polls = 0;
        block_on(poll_fn(move |cx| {
            polls += 1;
            if polls > 1 {
                return Poll::Ready(polls);
            }
            cx.waker().wake_by_ref();
            woke.send(cx.waker().clone()).unwrap();
            // An error: the test gave up (a panic).
            let _ = gone.recv();
            Poll::Pending
        }))
    });
    let first_waker = woken
        .recv()
        .expect("block_on never polled the future (did it panic?)");
    // An unpark that is no wake: the sleeping call must go back to sleep,
    // or poll its future unwoken. The kernel reports the thread running
    // (`R`) from the unpark on, and asleep again only once it has parked
    // anew.
    sleeping.unpark();
    let stolen = loop {
        if polls.load(Ordering::SeqCst) > 1 {
            break true;
        }
        match thread_state(&tid) {
            Ok('S') => break false,
            Ok(_) => thread::sleep(std::time::Duration::from_millis(1)),
            // The thread has ended: `block_on` returned.
            Err(_) => break polls.load(Ordering::SeqCst) > 1,
        }
    };
    go.send(()).unwrap();
    if stolen {
        // Let the first call end too: it lost its wake.
        first_waker.wake();
    } else {
        rung.store(true, Ordering::SeqCst);
        waker.wake();
    }
    let first = waker_itself.join().expect("block_on panicked");
    let second = sleeper.join().expect("block_on panicked");
    assert!(
        !stolen && second == "woken" && polls.load(Ordering::SeqCst) == 2,
        "two block_on calls ran at once on two threads, and while the first \
         was woken, the second polled its own future, which nobody had \
         woken ({second}): the second call took the first call's wake. \
         Keep the woken flag in the Arc that makes each call's Waker, not \
         in a static that every call shares"
    );
    assert_eq!(first, 2, "the first call's future is ready at its 2nd poll");
}
