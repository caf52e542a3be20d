//! The new GIL: one holder at a time, a drop request after one interval,
//! and `check` hands the GIL over only when asked.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use exercises::ch06_fairness::NewGil;

/// Four threads take the new GIL over and over with a 1 ms interval, and
/// call `check` while they hold it, so drop requests come and are served:
/// never are two threads inside at once, `check` included.
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
}

/// With a 30 ms interval, the drop request comes no sooner than 30 ms
/// after the waiter started waiting.
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
}

/// Round after round: the main thread holds the GIL, a waiter asks for
/// it, and the main thread's `check` returns only after the waiter has
/// had the GIL, with the request reset.
pub(super) fn check_hands_over_after_a_drop_request() {
    const ROUNDS: usize = 20;
    let gil = NewGil::new(Duration::from_millis(2));
    for round in 1..=ROUNDS {
        let served = AtomicBool::new(false);
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
            assert!(
                served.load(Ordering::SeqCst),
                "round {round}: check() returned before the thread that \
                 asked for the GIL had it: after releasing, wait until \
                 another thread has taken the GIL (CPython's forced \
                 switching), or the releasing thread wins it straight back"
            );
            assert!(
                !gil.drop_requested(),
                "round {round}: the drop request was served, so it should \
                 be reset"
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

/// Two threads each hold the GIL and loop, calling only `check`, until
/// both have made progress: that takes the GIL changing hands both ways.
pub(super) fn cpu_threads_take_turns() {
    let gil = NewGil::new(Duration::from_millis(1));
    let progress = [AtomicUsize::new(0), AtomicUsize::new(0)];
    thread::scope(|s| {
        for me in 0..2 {
            let (gil, progress) = (&gil, &progress);
            s.spawn(move || {
                let mut held = gil.acquire();
                loop {
                    let mine = progress[me].fetch_add(1, Ordering::SeqCst);
                    let theirs = progress[1 - me].load(Ordering::SeqCst);
                    // Both, not just the other: the first to stop would
                    // leave the other spinning alone forever.
                    if mine >= 3 && theirs >= 3 {
                        break;
                    }
                    held.check();
                }
            });
        }
    });
}
