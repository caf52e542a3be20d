//! `block_on` sleeps while it waits, in a wait with no deadline, also
//! when nested; and a waker kept from an earlier call on the thread is no
//! wake of a later one.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::task::{Poll, Waker};
use std::thread::{self, Thread};

use course::grader::task::{self, Wait};
use exercises::ch08_futures::block_on;

use super::{my_tid, thread_state};

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
/// count of its sleeps. Nor may another thread get it up now and then: the
/// process has no thread more while `block_on` sleeps than it had before
/// the call (the first of the trial's process), so a watchdog that
/// `block_on` starts to unpark it shows however seldom it does.
pub(crate) fn sleeps_while_it_waits() {
    sleeps_while_a_call_waits(false);
    sleeps_while_a_call_waits(true);
}

/// [`sleeps_while_it_waits`], with the pending future run by a `block_on`
/// of its own (`nested` false), or by one inside the poll of another
/// (`nested`): a nested call must sleep as well, not spin on its flag.
fn sleeps_while_a_call_waits(nested: bool) {
    let (hand_over, handed) = mpsc::channel::<(String, Waker, Vec<String>)>();
    let rung = Arc::new(AtomicBool::new(false));
    let bell = Arc::clone(&rung);
    // Not a scoped thread: see `wakes_up_when_woken_from_another_thread`.
    let runner = thread::spawn(move || {
        let mut hand_over = Some(hand_over);
        // The process's threads before the call: this one and the test's.
        let mut before = Some(threads());
        let pending = poll_fn(move |cx| {
            if bell.load(Ordering::SeqCst) {
                return Poll::Ready("woken");
            }
            if let (Some(hand_over), Some(before)) =
                (hand_over.take(), before.take())
            {
                let waker = cx.waker().clone();
                hand_over.send((my_tid(), waker, before)).unwrap();
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
    let (tid, waker, before) = handed
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
    // Threads started since the call began, and still running.
    let started = threads()
        .into_iter()
        .filter(|t| !before.contains(t))
        .count();
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
    assert!(
        started == 0,
        "{which} started {started} thread(s) of its own that still ran \
         while its future was pending: run the future on the calling \
         thread and start none. Nothing but the future's waker may get \
         the thread up: a watchdog that unparks it now and then, in case \
         a wake were lost, is a timeout by another name (a lost wake is a \
         bug to fix)"
    );
    assert_eq!(answer, "woken", "the future's output");
}

/// The ids of this process's threads, as `/proc/self/task` lists them.
fn threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("cannot read /proc/self/task")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect()
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
pub(crate) fn keeps_the_wakes_of_each_call_apart() {
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
