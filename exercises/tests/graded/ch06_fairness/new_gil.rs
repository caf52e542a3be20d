//! The new GIL: one holder at a time, a drop request after one interval,
//! and `check` hands the GIL over only when asked.

mod frozen_waiter;
mod huge_interval;
mod own_retake;
mod state_probe;
mod taken_back;
mod timed_out_at_the_release;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use exercises::ch06_fairness::NewGil;

use course::grader::task;
use frozen_waiter::{
    a_thread_that_finds_the_gil_free_is_not_asked,
    a_thread_that_finds_the_gil_free_takes_it, a_waiter_that_asked,
};
pub(super) use frozen_waiter::{
    a_waiter_sleeps_between_its_intervals, check_ends_the_request_as_it_lets_go,
};
use huge_interval::keeps_an_interval_beyond_a_u64_of_microseconds;
use own_retake::a_retake_by_the_same_holder_restarts_the_interval;
use state_probe::{
    asks_drop_requested_as_a_request_waits_for_the_state,
    asks_drop_requested_while_the_state_is_busy,
    counts_no_thread_that_found_the_gil_free,
};
use taken_back::taking_it_back_in_check_ends_the_request;
use timed_out_at_the_release::a_waiter_whose_interval_ends_at_the_release_is_not_asked;

/// Four threads take the new GIL over and over with a 1 ms interval, and
/// call `check` while they hold it, so drop requests come and are served:
/// never are two threads inside at once, `check` included. Then a holder
/// panics: its guard, dropped as it unwinds, releases the GIL too (see
/// [`a_panicking_holder_releases_the_gil`]).
pub(super) fn one_holder_at_a_time() {
    const HOLDERS: usize = 4;
    const TURNS: usize = 10;
    const HOLD: Duration = Duration::from_millis(2);
    let gil = NewGil::new(Duration::from_millis(1));
    let inside = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    let enter = || {
        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(now, Ordering::SeqCst);
    };
    let leave = || inside.fetch_sub(1, Ordering::SeqCst);
    thread::scope(|s| {
        for _ in 0..HOLDERS {
            s.spawn(|| {
                for _ in 0..TURNS {
                    let mut held = gil.acquire();
                    enter();
                    // Longer than the interval: the others ask meanwhile.
                    let start = Instant::now();
                    while start.elapsed() < HOLD {
                        thread::yield_now();
                        leave(); // `check` may let go, and take it back.
                        held.check();
                        enter();
                    }
                    leave();
                    drop(held);
                }
            });
        }
    });
    let most = most.load(Ordering::SeqCst);
    assert_eq!(
        most, 1,
        "{most} threads held the GIL at once (counting a thread as holding \
         it from acquire to the guard's drop, except inside check): does \
         acquire wait while the GIL is held, after every wake-up, and does \
         check take the GIL back before it returns?"
    );
    a_panicking_holder_releases_the_gil(&gil);
}

/// A thread panics while it holds the GIL: the guard dropped as it unwinds
/// releases the GIL, as one dropped on any other path does, so that another
/// thread takes it. (The GIL is not a `Mutex` that poisons: CPython's
/// interpreter lets every thread go on after an exception.) A guard that
/// keeps the GIL while its thread panics makes that thread wait forever, and
/// the trial times out.
fn a_panicking_holder_releases_the_gil(gil: &NewGil) {
    thread::scope(|s| {
        let failed = s
            .spawn(|| {
                let _held = gil.acquire();
                panic!("a holder panics on purpose (expected)");
            })
            .join();
        assert!(failed.is_err(), "the panic should reach the joiner");
        s.spawn(|| drop(gil.acquire()));
    });
}

/// With a 30 ms interval, the drop request comes no sooner than 30 ms
/// after the waiter started waiting. Then the same waiter's slices with a
/// 900 µs interval (see [`keeps_an_interval_under_a_millisecond`]), and a
/// waiter with an interval of 2^64 µs that never asks (see
/// [`keeps_an_interval_beyond_a_u64_of_microseconds`]); and
/// `drop_requested()`, asked while the GIL's state is busy, still sees a
/// pending request (see [`asks_drop_requested_while_the_state_is_busy`]),
/// and one that waits for the state to be recorded (see
/// [`asks_drop_requested_as_a_request_waits_for_the_state`]).
pub(super) fn waits_an_interval_before_asking() {
    const INTERVAL: Duration = Duration::from_millis(30);
    let gil = NewGil::new(INTERVAL);
    let held = gil.acquire();
    let (started, start) = mpsc::channel();
    thread::scope(|s| {
        s.spawn(|| {
            started.send(Instant::now()).unwrap();
            drop(gil.acquire());
        });
        let start = start.recv().unwrap();
        while !gil.drop_requested() {
            thread::yield_now();
        }
        let asked_after = start.elapsed();
        drop(held);
        assert!(
            asked_after >= INTERVAL,
            "the waiter asked for the GIL after {asked_after:?}, before a \
             whole interval ({INTERVAL:?}) had passed: wait one interval, \
             and ask only if the wait timed out"
        );
    });
    keeps_an_interval_under_a_millisecond();
    keeps_an_interval_beyond_a_u64_of_microseconds();
    asks_drop_requested_while_the_state_is_busy();
    asks_drop_requested_as_a_request_waits_for_the_state();
}

/// A waiter with a 900 µs interval, once it has asked, waits in slices of
/// 900 µs, not of 0 (the interval rounded down to whole milliseconds),
/// which would have it wake again at once, over and over. While it goes
/// to sleep `SLICES + 1` times (the sleeps `/proc` counts), at least
/// `SLICES` of those sleeps begin and end, and each of a right waiter's
/// lasts a whole interval: so it spends at least `SLICES - 1` intervals
/// asleep, counted as the clock's time less the time it ran or waited for
/// a CPU (`task::scheduled`). That holds however loaded the machine, and a
/// waiter whose waits end at once spends next to none of it asleep.
/// Nobody else touches the GIL's state meanwhile, so a right waiter sleeps
/// only in its slices.
fn keeps_an_interval_under_a_millisecond() {
    const INTERVAL: Duration = Duration::from_micros(900);
    const SLICES: u32 = 100;
    let gil = NewGil::new(INTERVAL);
    let held = gil.acquire();
    thread::scope(|s| {
        let waiter = a_waiter_that_asked(s, &gil);
        // The clock is read outside the two readings of the waiter's
        // schedule, so that the stretch it measures contains them.
        let start = Instant::now();
        let before = task::scheduled(waiter.tid);
        let first = task::sleeps(waiter.tid);
        while task::sleeps(waiter.tid) < first + u64::from(SLICES) + 1 {
            thread::yield_now();
        }
        let after = task::scheduled(waiter.tid);
        let took = start.elapsed();
        drop(held);
        let awake = (after.running - before.running)
            + (after.runnable - before.runnable);
        let asleep = took.saturating_sub(awake);
        let least = INTERVAL * (SLICES - 1);
        assert!(
            asleep >= least,
            "a waiter with a {INTERVAL:?} interval went to sleep {} times \
             and slept only {asleep:?} in all, less than {least:?}: its \
             slices are shorter than the interval. Keep the interval as a \
             Duration (a number of whole milliseconds makes 900 µs a zero \
             interval, and the waiter wakes again at once)",
            SLICES + 1
        );
    });
}

/// Two threads wait for the GIL while the main thread holds it; half an
/// interval later the main thread lets go, and one of them takes the GIL
/// and keeps it. The other saw that switch, so its interval starts again:
/// it asks the new holder no sooner than a whole interval after the
/// switch, not when the interval it began before the switch runs out.
/// Only lower bounds on time: a slow machine can make an attempt say
/// nothing (a request before the switch), never fail a right GIL. Then the
/// same after the holder's own taking (see
/// [`a_retake_by_the_same_holder_restarts_the_interval`]).
pub(super) fn a_switch_restarts_the_interval() {
    const INTERVAL: Duration = Duration::from_secs(1);
    const ATTEMPTS: usize = 5;
    let gil = NewGil::new(INTERVAL);
    for _ in 0..ATTEMPTS {
        let Some(asked_after) = asked_after_a_switch(&gil, INTERVAL) else {
            continue;
        };
        assert!(
            asked_after >= INTERVAL,
            "a waiter that saw another thread take the GIL asked the new \
             holder to drop it {asked_after:?} after that switch, before a \
             whole interval ({INTERVAL:?}) had passed: the interval it \
             began before the switch does not count; after every wake-up \
             that finds the GIL taken by someone new, wait a whole \
             interval again (keep the number of switches seen, as \
             CPython's switch_number)"
        );
        break;
    }
    a_retake_by_the_same_holder_restarts_the_interval();
}

/// One attempt of `a_switch_restarts_the_interval`: how long after the
/// switch the losing waiter asked, or `None` if a waiter asked before the
/// switch (the main thread was slower than half an interval).
fn asked_after_a_switch(gil: &NewGil, interval: Duration) -> Option<Duration> {
    let held = gil.acquire();
    let release = AtomicBool::new(false);
    let (took, taken) = mpsc::channel();
    thread::scope(|s| {
        for _ in 0..2 {
            let (took, release) = (took.clone(), &release);
            s.spawn(move || {
                let _held = gil.acquire();
                took.send(()).unwrap();
                // Holds the GIL until the test has looked.
                while !release.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(1));
                }
            });
        }
        while gil.waiting() < 2 {
            thread::yield_now();
        }
        // A pause, not a deadline: both waiters are half an interval into
        // their first interval, or further.
        thread::sleep(interval / 2);
        let before_the_switch = gil.drop_requested();
        let switch = Instant::now();
        drop(held);
        taken.recv().unwrap();
        // One waiter holds the GIL; the other waits on, and asks.
        while !gil.drop_requested() {
            thread::sleep(Duration::from_millis(1));
        }
        let asked_after = switch.elapsed();
        release.store(true, Ordering::SeqCst);
        (!before_the_switch).then_some(asked_after)
    })
}

/// Round after round: the main thread holds the GIL, a waiter asks for
/// it, and the main thread's `check` returns only after the waiter has
/// had the GIL, with the request reset.
pub(super) fn check_hands_over_after_a_drop_request() {
    hand_over_rounds(
        &NewGil::new(Duration::from_millis(2)),
        20,
        "check() returned before the thread that asked for the GIL had it: \
         after releasing, wait until another thread has taken the GIL \
         (CPython's forced switching), or the releasing thread wins it \
         straight back",
        true,
    );
}

/// Round after round: the main thread holds `gil`, a waiter asks for it,
/// and the main thread's `check` must return only after the waiter has
/// had the GIL (`early` says what went wrong when it did not). With
/// `reset`, the served request must be reset too.
fn hand_over_rounds(gil: &NewGil, rounds: usize, early: &str, reset: bool) {
    for round in 1..=rounds {
        let served = AtomicBool::new(false);
        let got_in = AtomicBool::new(false);
        let mut held = gil.acquire();
        thread::scope(|s| {
            s.spawn(|| {
                let _held = gil.acquire();
                served.store(true, Ordering::SeqCst);
            });
            while !gil.drop_requested() {
                thread::yield_now();
            }
            held.check();
            assert!(served.load(Ordering::SeqCst), "round {round}: {early}");
            if reset {
                assert!(
                    !gil.drop_requested(),
                    "round {round}: the drop request was served, so it \
                     should be reset"
                );
            }
            // `check` has returned: this thread holds the GIL again, so
            // a newcomer must wait for it (`waiting()` counts it), not
            // find it free and get in.
            s.spawn(|| {
                let _held = gil.acquire();
                got_in.store(true, Ordering::SeqCst);
            });
            while gil.waiting() == 0 && !got_in.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            assert!(
                !got_in.load(Ordering::SeqCst),
                "round {round}: check() returned, yet another thread found \
                 the GIL free and took it: check() must return holding the \
                 GIL (an assignment `*self = gil.acquire()` drops the old \
                 guard, whose drop releases the GIL just taken)"
            );
            drop(held);
        });
    }
}

/// With a 60 s interval nobody asks, so thousands of `check`s keep the
/// GIL from a thread that waits for it; dropping the guard lets it in.
pub(super) fn check_without_a_request_keeps_the_gil() {
    const CHECKS: usize = 10_000;
    let gil = NewGil::new(Duration::from_secs(60));
    let served = AtomicBool::new(false);
    let mut held = gil.acquire();
    thread::scope(|s| {
        s.spawn(|| {
            let _held = gil.acquire();
            served.store(true, Ordering::SeqCst);
        });
        while gil.waiting() == 0 {
            thread::yield_now();
        }
        for _ in 0..CHECKS {
            held.check();
        }
        assert!(
            !served.load(Ordering::SeqCst),
            "the waiting thread got the GIL during {CHECKS} checks, though \
             nobody had asked for it (the interval is 60 s): check() lets \
             go only when a drop request is set"
        );
        assert!(!gil.drop_requested(), "nobody has asked yet");
        drop(held);
    });
    assert!(
        served.load(Ordering::SeqCst),
        "dropping the guard let the waiting thread in"
    );
}

/// How many times the GIL must change hands in [`cpu_threads_take_turns`].
const SWITCHES: usize = 10;

/// Two threads each hold the GIL and loop, calling only `check`, until the
/// GIL has changed hands `SWITCHES` times: both must keep asking for it, the
/// thread that gave it up in `check` as much as the one that waited in
/// `acquire`, or the one holding it never hears of the other again.
pub(super) fn cpu_threads_take_turns() {
    let gil = NewGil::new(Duration::from_millis(1));
    // Which thread made the last step, and how often that changed: only
    // the holder steps, so each change is a switch.
    let last = AtomicUsize::new(usize::MAX);
    let switches = AtomicUsize::new(0);
    thread::scope(|s| {
        for me in 0..2 {
            let (gil, last, switches) = (&gil, &last, &switches);
            s.spawn(move || {
                let mut held = gil.acquire();
                loop {
                    let before = last.swap(me, Ordering::SeqCst);
                    if before != me && before != usize::MAX {
                        switches.fetch_add(1, Ordering::SeqCst);
                    }
                    // The first to stop lets the other in, which stops too.
                    if switches.load(Ordering::SeqCst) >= SWITCHES {
                        break;
                    }
                    held.check();
                }
            });
        }
    });
}

/// Two threads wait for the GIL while the main thread holds it, long
/// enough that both have asked for it; then the main thread lets go. One of
/// them takes the GIL and keeps it until someone asks for it; the other,
/// which asked the old holder, must ask the new one too, an interval after
/// the switch. A waiter that asked once and then waited without asking
/// again would leave the new holder the GIL for good (the trial times out).
pub(super) fn a_waiter_that_lost_asks_again() {
    const INTERVAL: Duration = Duration::from_millis(5);
    const ROUNDS: usize = 3;
    let gil = NewGil::new(INTERVAL);
    for _ in 0..ROUNDS {
        let held = gil.acquire();
        let taken = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let _held = gil.acquire();
                    if taken.fetch_add(1, Ordering::SeqCst) == 0 {
                        // The first in keeps the GIL until the other asks.
                        while !gil.drop_requested() {
                            thread::yield_now();
                        }
                    }
                });
            }
            while gil.waiting() < 2 || !gil.drop_requested() {
                thread::yield_now();
            }
            // A pause of ten intervals, in which both waiters time out and
            // ask. If it is too short (a slow machine), a waiter that asks
            // only once may slip through; a right one never fails.
            thread::sleep(INTERVAL * 10);
            drop(held);
        });
    }
}

/// Round after round, a waiter asks for the GIL and the holder's `check`
/// hands it over, while another thread reads `waiting()` without pause. It
/// must never see 2: the waiter counts until it takes the GIL, and the
/// thread in `check` only from then on, not while it waits for the switch.
/// First, forced: a thread that finds the GIL free never counts (see
/// [`counts_no_thread_that_found_the_gil_free`]).
pub(super) fn check_counts_as_waiting_only_after_the_switch() {
    counts_no_thread_that_found_the_gil_free();
    const ROUNDS: usize = 100;
    let gil = NewGil::new(Duration::from_millis(1));
    let most = AtomicUsize::new(0);
    let watching = AtomicBool::new(true);
    thread::scope(|s| {
        s.spawn(|| {
            while watching.load(Ordering::SeqCst) {
                most.fetch_max(gil.waiting(), Ordering::SeqCst);
                // Without a pause, this thread would take the state's
                // mutex over and over, ahead of the threads that need it.
                thread::yield_now();
            }
        });
        for _ in 0..ROUNDS {
            let mut held = gil.acquire();
            thread::scope(|s| {
                s.spawn(|| drop(gil.acquire()));
                while !gil.drop_requested() {
                    thread::yield_now();
                }
                held.check();
            });
            drop(held);
        }
        watching.store(false, Ordering::SeqCst);
    });
    let most = most.load(Ordering::SeqCst);
    assert!(
        most <= 1,
        "waiting() was {most} with one thread in acquire and one in check(): \
         the thread in check() counted itself as waiting while it still \
         waited for the other one to take the GIL. It counts only once \
         another thread has taken the GIL and it waits to take it back"
    );
}
/// The holder lets go by dropping its guard, not in `check`, after a
/// waiter has asked: the waiter takes the GIL, and its taking ends the
/// request. Nobody has asked the new holder to drop it. Then the same with
/// a thread that finds the GIL free and takes it without waiting, while
/// the waiter that asked is frozen; and with the thread in `check` that
/// takes the GIL back (see [`taking_it_back_in_check_ends_the_request`]).
pub(super) fn taking_the_gil_resets_the_request() {
    let gil = NewGil::new(Duration::from_millis(1));
    let held = gil.acquire();
    let (took, taken) = mpsc::channel();
    let (done, finish) = mpsc::channel::<()>();
    thread::scope(|s| {
        let gil = &gil;
        s.spawn(move || {
            let _held = gil.acquire();
            took.send(()).unwrap();
            // Holds the GIL until the test has looked.
            let _ = finish.recv();
        });
        while !gil.drop_requested() {
            thread::yield_now();
        }
        drop(held);
        taken.recv().unwrap();
        let asked = gil.drop_requested();
        done.send(()).unwrap();
        assert!(
            !asked,
            "the waiter that asked for the GIL has taken it, yet \
             drop_requested() is still true: the new holder would hand the \
             GIL over at its next check() though nobody asked it to. Taking \
             the GIL ends the request, however the last holder let go"
        );
    });
    a_thread_that_finds_the_gil_free_is_not_asked();
    a_thread_that_finds_the_gil_free_takes_it();
    a_waiter_whose_interval_ends_at_the_release_is_not_asked();
    taking_it_back_in_check_ends_the_request();
}

/// Three threads: `holder` holds the GIL, and two more wait for it, the
/// second half an interval after the first. When the first waiter's
/// interval runs out it asks, and the holder calls `check`. Once one
/// waiter has taken the GIL (and keeps it), the holder must be back
/// among the waiters: `waiting()` counts it and the other waiter.
pub(super) fn check_waits_to_take_it_back_like_any_waiter() {
    const INTERVAL: Duration = Duration::from_secs(1);
    let gil = NewGil::new(INTERVAL);
    let release = AtomicBool::new(false);
    let (holding, holds) = mpsc::channel();
    let (go, check_now) = mpsc::channel::<()>();
    let (took, taken) = mpsc::channel();
    thread::scope(|s| {
        let (gil, release) = (&gil, &release);
        s.spawn(move || {
            let mut held = gil.acquire();
            holding.send(()).unwrap();
            check_now.recv().unwrap();
            held.check();
        });
        holds.recv().unwrap();
        for waiter in 0..2 {
            let took = took.clone();
            s.spawn(move || {
                let _held = gil.acquire();
                took.send(waiter).unwrap();
                while !release.load(Ordering::SeqCst) {
                    thread::yield_now();
                }
            });
            while gil.waiting() < waiter + 1 {
                thread::yield_now();
            }
            if waiter == 0 {
                // The first waiter's intervals end half an interval apart
                // from the second's: it asks alone.
                thread::sleep(INTERVAL / 2);
            }
        }
        while !gil.drop_requested() {
            thread::yield_now();
        }
        // Time for the waiter that asked to go back to waiting, a quarter
        // of an interval before the other one's runs out. A wrong GIL may
        // slip through if this pause is too short; a right one never fails
        // because of it.
        thread::sleep(INTERVAL / 4);
        go.send(()).unwrap();
        let first = taken.recv().unwrap();
        // The holder waits for the GIL again, with the other waiter. (If
        // it never does, the trial times out.)
        while gil.waiting() < 2 {
            thread::yield_now();
        }
        release.store(true, Ordering::SeqCst);
        let second = taken.recv().unwrap();
        assert_ne!(first, second, "each waiter took the GIL once");
    });
}

/// With a zero interval, the waiter asks at once, and it may be slower to
/// wake than the interval: `check` must still wait until another thread
/// has taken the GIL, however long that takes, before it competes again.
pub(super) fn check_waits_for_the_switch_however_long() {
    hand_over_rounds(
        &NewGil::new(Duration::ZERO),
        100,
        "with a zero interval, check() took the GIL back before the thread \
         that asked for it had it: wait until another thread has taken the \
         GIL, without a time limit (the waiter may be slower to wake than \
         an interval), and only then compete for it again",
        false,
    );
}
