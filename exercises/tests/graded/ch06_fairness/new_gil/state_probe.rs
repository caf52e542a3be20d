//! The forced checks that hold the GIL's state busy: a [`StateProbe`]
//! formats the GIL with `{:?}` and asks `drop_requested()` and `waiting()`
//! meanwhile.

use std::fmt::{self, Write as _};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use exercises::ch06_fairness::NewGil;

use course::grader::task;

use super::frozen_waiter::a_waiter_in_its_interval;

/// Runs `ask` on a thread of its own, and waits until it has its answer or
/// is asleep (blocked: on the GIL's state, say), or has used
/// [`task::BUSY_TICKS`] of CPU time (it spins: that only ends the forcing,
/// never the trial). Returns the thread, and whether it was asleep.
fn ask_on_a_thread<'scope, T: Send + 'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    ask: impl FnOnce() -> T + Send + 'scope,
) -> (thread::ScopedJoinHandle<'scope, T>, bool) {
    let (tell, told) = mpsc::channel();
    let asker = scope.spawn(move || {
        tell.send(task::me()).unwrap();
        ask()
    });
    let me = told.recv().unwrap();
    let mut asleep = false;
    task::watch_until(me.tid, || {
        asleep = task::asleep(me.tid);
        asleep || asker.is_finished()
    });
    (asker, asleep)
}

/// What [`StateProbe`] does once it finds the GIL's state busy.
#[derive(Clone, Copy)]
enum WhileBusy {
    /// Asks `drop_requested()`, and keeps the answer.
    AskForARequest,
    /// Starts a thread that takes the free GIL (and lets it go at once),
    /// waits until it is asleep or done, and asks `waiting()`.
    TakeTheFreeGil,
    /// Waits until the waiter, asleep in its first interval
    /// when the state was found busy, has woken and waits for the state,
    /// and then asks `drop_requested()`. The state is found busy by a
    /// thread that asks `waiting()`, not `drop_requested()`.
    AskOnceTheWaiterWaitsForTheState(task::Me),
}

/// A sink for `{:?}` that, at every write, asks `drop_requested()` on a
/// thread of its own and waits until it has its answer or is asleep: the
/// GIL's `Debug` writes some of its output while it holds the GIL's state
/// (std's `Mutex` does, around its data), and the asker then has to wait
/// for it. Once one asker blocks, the state is busy: the probe does what
/// `busy` says, keeps the answers, and stops asking.
struct StateProbe<'scope, 'env> {
    scope: &'scope thread::Scope<'scope, 'env>,
    gil: &'env NewGil,
    busy: WhileBusy,
    requests: Vec<thread::ScopedJoinHandle<'scope, bool>>,
    waiting: Option<thread::ScopedJoinHandle<'scope, usize>>,
    found_busy: bool,
}

impl fmt::Write for StateProbe<'_, '_> {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        if self.found_busy {
            return Ok(());
        }
        let gil = self.gil;
        if let WhileBusy::AskOnceTheWaiterWaitsForTheState(waiter) = self.busy {
            let sleeps = task::sleeps(waiter.tid);
            let (asker, asleep) =
                ask_on_a_thread(self.scope, move || gil.waiting());
            drop(asker); // Joined with the scope.
            if !asleep {
                return Ok(());
            }
            self.found_busy = true;
            // Still in its first interval's wait, with no request yet; if
            // not (a slow machine), this attempt says nothing.
            let first = task::sleeps(waiter.tid) == sleeps
                && matches!(
                    task::wait(waiter.tid),
                    Some((task::Wait::UntilADeadline, _))
                );
            if !first {
                return Ok(());
            }
            // Its interval runs out, and it waits for the state (untimed).
            while !matches!(
                task::wait(waiter.tid),
                Some((task::Wait::UntilWoken, _))
            ) {
                thread::yield_now();
            }
            let (asker, _) =
                ask_on_a_thread(self.scope, move || gil.drop_requested());
            self.requests.push(asker);
            return Ok(());
        }
        let (asker, asleep) =
            ask_on_a_thread(self.scope, move || gil.drop_requested());
        self.requests.push(asker);
        if !asleep {
            return Ok(());
        }
        self.found_busy = true;
        if matches!(self.busy, WhileBusy::TakeTheFreeGil) {
            let (taker, _) =
                ask_on_a_thread(self.scope, move || drop(gil.acquire()));
            drop(taker); // Joined with the scope.
            let (waiting, _) =
                ask_on_a_thread(self.scope, move || gil.waiting());
            self.waiting = Some(waiting);
        }
        Ok(())
    }
}

/// Formats `gil` with a [`StateProbe`] that does what `busy` says; returns
/// every answer of `drop_requested()`, and that of `waiting()` if asked.
fn probe_the_state(
    gil: &NewGil,
    busy: WhileBusy,
) -> (Vec<bool>, Option<usize>) {
    thread::scope(|s| {
        let mut probe = StateProbe {
            scope: s,
            gil,
            busy,
            requests: Vec::new(),
            waiting: None,
            found_busy: false,
        };
        write!(probe, "{gil:?}").expect("the probe never fails");
        let requests = probe.requests.into_iter();
        let requests = requests.map(|asker| asker.join().unwrap()).collect();
        let waiting = probe.waiting.map(|asker| asker.join().unwrap());
        (requests, waiting)
    })
}

/// A waiter has asked for the GIL; `drop_requested()`, asked while another
/// thread holds the GIL's state (it formats the GIL with `{:?}`, and is
/// held at each write it makes), still says so: it waits for the state
/// rather than answer `false`.
pub(super) fn asks_drop_requested_while_the_state_is_busy() {
    let gil = NewGil::new(Duration::from_millis(1));
    let held = gil.acquire();
    thread::scope(|s| {
        s.spawn(|| drop(gil.acquire()));
        while !gil.drop_requested() {
            thread::yield_now();
        }
        let (requests, _) = probe_the_state(&gil, WhileBusy::AskForARequest);
        for asked in requests {
            assert!(
                asked,
                "drop_requested() said false while a waiter had asked for \
                 the GIL, asked while another thread was formatting the GIL \
                 with {{:?}} (and so held its state): it must wait for the \
                 state (lock, not try_lock) rather than say false"
            );
        }
        drop(held);
    });
}

/// A waiter sleeps in its first interval when another thread takes the
/// GIL's state (it formats the GIL with `{:?}`); the interval runs out
/// meanwhile, and the waiter waits for the state to record its request.
/// Only then is `drop_requested()` asked: it waits for the state too,
/// behind the waiter (std's `Mutex` wakes its waiters in turn), and says
/// `true`. An answer read apart from the state (an atomic) says `false` at
/// once, as if the waiter had not asked yet. An attempt in which the
/// waiter's interval ran out before the state was taken (a slow machine)
/// says nothing; there are five.
pub(super) fn asks_drop_requested_as_a_request_waits_for_the_state() {
    const INTERVAL: Duration = Duration::from_millis(100);
    const ATTEMPTS: usize = 5;
    let gil = NewGil::new(INTERVAL);
    for _ in 0..ATTEMPTS {
        let held = gil.acquire();
        let answers = thread::scope(|s| {
            let waiter = a_waiter_in_its_interval(s, &gil);
            let busy = WhileBusy::AskOnceTheWaiterWaitsForTheState(waiter);
            let (answers, _) = probe_the_state(&gil, busy);
            drop(held);
            answers
        });
        let Some(&asked) = answers.first() else {
            continue;
        };
        assert!(
            asked,
            "drop_requested() said false while a waiter whose interval had \
             run out waited for the GIL's state (another thread was \
             formatting the GIL with {{:?}}) to record its request: it must \
             wait for the state too, behind that waiter, rather than read \
             a flag kept apart from it. Keep the request in the state, \
             under its mutex"
        );
        return;
    }
}

/// A thread calls `acquire` while the GIL is free, but another thread holds
/// the GIL's state (it formats the GIL with `{:?}`): `waiting()`, asked
/// meanwhile, says `0`. A thread that finds the GIL free never waits for
/// it; a count kept apart from the state (an atomic bumped before locking
/// it and dropped after) counts it, and so can also count a new holder
/// together with the thread in `check` that handed the GIL over.
pub(super) fn counts_no_thread_that_found_the_gil_free() {
    let gil = NewGil::new(Duration::from_millis(1));
    let (_, waiting) = probe_the_state(&gil, WhileBusy::TakeTheFreeGil);
    if let Some(waiting) = waiting {
        assert_eq!(
            waiting, 0,
            "waiting() was {waiting} while the GIL was free and one thread \
             was in acquire, held up only by the GIL's state (another thread \
             was formatting the GIL with {{:?}}): a thread that finds the GIL \
             free never waits for it. Count the waiters in the state, under \
             its mutex, from the moment a thread finds the GIL held"
        );
    }
}
