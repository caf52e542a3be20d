//! The trials that freeze a waiter once it has asked for the GIL, and
//! watch threads sleep and spend CPU time through `/proc`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use exercises::ch06_fairness::NewGil;

use course::grader::task;

/// The interval of the trials that freeze a waiter: long, so that a waiter
/// that has just asked sleeps a whole second before its next slice, and
/// the trial freezes it in that sleep, holding no lock.
const FROZEN_INTERVAL: Duration = Duration::from_secs(1);

/// Starts a thread that waits for `gil` (held by someone else) and takes
/// it once it can, then lets it go; returns that thread once it has asked
/// for the GIL (the drop request is set).
pub(super) fn a_waiter_that_asked<'s>(
    s: &'s thread::Scope<'s, '_>,
    gil: &'s NewGil,
) -> task::Me {
    let waiter = a_waiter(s, gil);
    while !gil.drop_requested() {
        thread::yield_now();
    }
    waiter
}

/// Starts a thread that takes `gil` (held by someone else) and lets it go;
/// returns the thread as soon as it runs.
fn a_waiter<'s>(s: &'s thread::Scope<'s, '_>, gil: &'s NewGil) -> task::Me {
    let (tell, told) = mpsc::channel();
    s.spawn(move || {
        tell.send(task::me()).unwrap();
        drop(gil.acquire());
    });
    told.recv().unwrap()
}

/// Starts a thread that waits for `gil` (held by someone else), and returns
/// once it sleeps in a wait with a deadline: in its first interval.
pub(super) fn a_waiter_in_its_interval<'s>(
    s: &'s thread::Scope<'s, '_>,
    gil: &'s NewGil,
) -> task::Me {
    let waiter = a_waiter(s, gil);
    while !matches!(
        task::wait(waiter.tid),
        Some((task::Wait::UntilADeadline, _))
    ) {
        thread::yield_now();
    }
    waiter
}

/// Starts a thread that waits for `gil` (held by someone else), and once
/// it has asked for the GIL and sleeps in its next slice, freezes it: it
/// stays a waiter that never takes the GIL until [`task::thaw`]. Returns
/// at once with the thread frozen; the thread takes the GIL once thawed,
/// and lets it go.
fn a_frozen_waiter<'s>(s: &'s thread::Scope<'s, '_>, gil: &'s NewGil) {
    let waiter = a_waiter_that_asked(s, gil);
    // It asked, and sleeps until its next slice, a second away: it holds
    // no lock while it sleeps.
    while !task::asleep(waiter.tid) {
        thread::yield_now();
    }
    task::freeze(waiter);
}

/// A waiter asks, and is frozen while it waits on; the holder drops its
/// guard. The main thread then finds the GIL free and takes it at once,
/// without waiting: taking it ends the request all the same, so its
/// `check` keeps the GIL.
pub(super) fn a_thread_that_finds_the_gil_free_is_not_asked() {
    let gil = NewGil::new(FROZEN_INTERVAL);
    thread::scope(|s| {
        let held = gil.acquire();
        a_frozen_waiter(s, &gil);
        drop(held);
        let mut again = gil.acquire();
        let asked = gil.drop_requested();
        if !asked {
            // No request: this returns at once, GIL held.
            again.check();
        }
        drop(again);
        task::thaw();
        assert!(
            !asked,
            "a waiter asked for the GIL, the holder dropped its guard, and \
             another thread found the GIL free and took it straight away \
             (the waiter had not woken yet), yet drop_requested() was still \
             true: its first check() would hand the GIL over though nobody \
             had asked it. Taking the GIL ends the request, also for a \
             thread that did not have to wait"
        );
    });
}

/// A waiter sleeps behind the holder, with the longest interval there is
/// (`Duration::MAX`: it never asks, and a deadline of now plus that
/// interval would not fit in an `Instant`), and is frozen there; the holder
/// drops its guard. The waiter, woken but frozen, is still counted by
/// `waiting()`, and the GIL is free: a thread that calls `acquire` now
/// takes it at once. One that queues behind the counted waiters (counting
/// itself: `waiting()` says 2) waits for a waiter that cannot run.
pub(super) fn a_thread_that_finds_the_gil_free_takes_it() {
    let gil = NewGil::new(Duration::MAX);
    let took = AtomicBool::new(false);
    let (release, released) = mpsc::channel::<()>();
    let queued = thread::scope(|s| {
        let (gil, took) = (&gil, &took);
        let held = gil.acquire();
        let (tell, told) = mpsc::channel();
        let waiter = s.spawn(move || {
            tell.send(task::me()).unwrap();
            drop(gil.acquire());
        });
        let me = told.recv().unwrap();
        // Counted, and then asleep in its wait, which holds no lock (if it
        // never sleeps so, the trial times out).
        let waits = || gil.waiting() == 1 && task::asleep(me.tid);
        while !(waiter.is_finished() || waits()) {
            thread::yield_now();
        }
        if waiter.is_finished() {
            drop(held);
            assert!(
                waiter.join().is_ok(),
                "a thread that waited for a GIL whose interval is \
                 Duration::MAX panicked: a waiter waits one interval at a \
                 time (wait_timeout(interval) waits without a limit when \
                 the interval does not fit), it does not add the interval \
                 to Instant::now(), which overflows"
            );
            panic!("a thread waiting for a held GIL returned from acquire");
        }
        task::freeze(me);
        drop(held);
        s.spawn(move || {
            let _held = gil.acquire();
            took.store(true, Ordering::SeqCst);
            let _ = released.recv();
        });
        // Until the newcomer has the GIL, or has counted itself as a waiter
        // (either comes without any help from the frozen waiter).
        let queued = loop {
            if took.load(Ordering::SeqCst) {
                break false;
            }
            if gil.waiting() >= 2 {
                break true;
            }
            thread::yield_now();
        };
        // The newcomer lets go; thawed, the waiter takes the GIL in turn
        // (and lets a newcomer that queued in after it).
        drop(release);
        task::thaw();
        queued
    });
    assert!(
        !queued,
        "the holder dropped its guard while a waiter, woken but not yet \
         running, was counted by waiting(), and a thread that then called \
         acquire() found the GIL free but queued behind that waiter \
         (waiting() said 2) instead of taking it: a thread that finds the \
         GIL free takes it at once, it never waits for the GIL (CPython's \
         take_gil waits only while the GIL is locked)"
    );
}

/// A waiter asks, and is frozen while it waits on; the holder calls
/// `check`, which lets go and waits for a switch that cannot come while
/// the waiter is frozen. While it waits, the request is already reset,
/// and it sleeps until told of the switch, not waking again and again to
/// look. Then the main thread takes the GIL, finding it free: the thread in
/// `check` is told, waits for the GIL again (counted by `waiting()`), takes
/// it back once the main thread lets go, and the waiter is thawed.
pub(crate) fn check_ends_the_request_as_it_lets_go() {
    // How long the trial watches the thread in `check` sleep: a pause,
    // only as long as it must be for a thread that wakes every millisecond
    // to wake many times; a longer one never fails a right GIL.
    const WATCH: Duration = Duration::from_millis(200);
    // Wake-ups allowed in `WATCH`: a wait in slices of the interval (a
    // second here) wakes none.
    const WAKE_UPS: u64 = 5;
    let gil = NewGil::new(FROZEN_INTERVAL);
    let checking = AtomicBool::new(false);
    let (holding, holds) = mpsc::channel();
    let (go, check_now) = mpsc::channel::<()>();
    let (asked, woke, polling) = thread::scope(|s| {
        let (gil, checking) = (&gil, &checking);
        s.spawn(move || {
            let mut held = gil.acquire();
            holding.send(task::me()).unwrap();
            check_now.recv().unwrap();
            checking.store(true, Ordering::SeqCst);
            held.check();
        });
        let holder = holds.recv().unwrap();
        a_frozen_waiter(s, gil);
        go.send(()).unwrap();
        while !checking.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        // Nobody else takes the state's lock from here on (the waiter is
        // frozen, this thread only reads /proc): asleep, the holder waits
        // in `check`, for the switch. A `check` that waits without sleeping
        // is not judged here; the waiter is thawed and the trial ends.
        let spent = task::cpu_ticks(holder.tid);
        while !task::asleep(holder.tid) {
            if task::cpu_ticks(holder.tid) - spent > 20 {
                task::thaw();
                return (false, 0, None);
            }
            thread::yield_now();
        }
        // The wait it sleeps in: one with a time limit (a `wait_timeout`
        // kept as a safety net) wakes by itself, however long the limit.
        let polling = match task::wait(holder.tid) {
            Some((task::Wait::UntilADeadline, line)) => Some(line),
            _ => None,
        };
        let asked = gil.drop_requested();
        let before = task::sleeps(holder.tid);
        thread::sleep(WATCH);
        let woke = task::sleeps(holder.tid) - before;
        // The switch: the main thread finds the GIL free and takes it
        // without waiting. The holder is told at once and waits for the
        // GIL again, counted by `waiting()` beside the frozen waiter (if it
        // is never told, the trial times out); then the main thread lets
        // go, and the holder takes it back and returns from `check`.
        let switched = gil.acquire();
        while gil.waiting() < 2 {
            thread::yield_now();
        }
        drop(switched);
        task::thaw();
        (asked, woke, polling)
    });
    assert!(
        !asked,
        "the holder called check() after a waiter had asked, let go of the \
         GIL, and waited for the switch, yet drop_requested() was still \
         true: the holder has done what was asked. check() resets the \
         request as it lets go, not the waiter when it takes the GIL (until \
         then the request would say the holder has not let go)"
    );
    assert!(
        woke <= WAKE_UPS,
        "the thread in check() woke {woke} times in {WATCH:?} while it \
         waited for another thread to take the GIL (nobody did): it looks \
         again and again instead of being told. Taking the GIL should \
         notify the thread waiting in check() (CPython's switch_cond), \
         which waits on its Condvar without a timeout"
    );
    if let Some(line) = polling {
        panic!(
            "the thread in check() waited for another thread to take the GIL \
             in a wait with a time limit (/proc/self/task/<tid>/syscall: \
             {line}): it wakes by itself to look again, however long the \
             limit. Taking the GIL notifies the thread in check() (CPython's \
             switch_cond), which waits on its Condvar with Condvar::wait, no \
             timeout kept as a safety net"
        );
    }
}

/// A waiter asks for the GIL, and the holder keeps it, working without a
/// `check`, for a second of its own CPU time. The waiter sleeps
/// between its slices, after it has asked as before: it uses next to no
/// CPU time meanwhile. CPU time, not time on a clock: a loaded machine
/// slows both threads alike.
pub(crate) fn a_waiter_sleeps_between_its_intervals() {
    // The holder's work, in the clock ticks of `/proc` (100 a second).
    const WORK: u64 = 100;
    // The waiter's allowance: a twentieth of the holder's.
    const ALLOWED: u64 = 5;
    // A sleeping waiter wakes once an interval, and on a loaded machine
    // the holder's second of CPU time can take ten seconds on the clock:
    // with 5 ms intervals, 2,000 wake-ups cost a right waiter its whole
    // allowance. With 50 ms, 200 cost it a tick or less, while a waiter
    // that spins after it asks still burns a core's share.
    let gil = NewGil::new(Duration::from_millis(50));
    let held = gil.acquire();
    let main = task::me();
    let used = thread::scope(|s| {
        let waiter = a_waiter_that_asked(s, &gil);
        let (mine, its) =
            (task::cpu_ticks(main.tid), task::cpu_ticks(waiter.tid));
        // The holder's work: yielding, so that a waiter that spins on the
        // same core gets its share.
        while task::cpu_ticks(main.tid) - mine < WORK {
            thread::yield_now();
        }
        let used = task::cpu_ticks(waiter.tid) - its;
        drop(held);
        used
    });
    assert!(
        used < ALLOWED,
        "a waiter that had asked for the GIL used {used} ticks of CPU time \
         (of 100 a second) while the holder worked for {WORK} without \
         calling check(): it spins instead of sleeping. After it asks, it \
         waits a whole interval again (a new wait_timeout of one interval, \
         or a deadline pushed back by one), not a timeout already past"
    );
}
