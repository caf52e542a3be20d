//! The toy GIL's behaviour: one holder, hand-overs, the policies.

use super::*;
use std::sync::Barrier;
use std::sync::atomic::AtomicUsize;

// A guard stays on the thread that took the GIL. This compiles only
// while `GilGuard` is not `Send`: if it were, both impls below would
// apply to it, the `_` could be either `()` or `u8`, and the path
// would be ambiguous (error E0283). The trick is the one of the
// static_assertions crate's `assert_not_impl_any!`.
const _: fn() = || {
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
    let _ = <GilGuard<'static> as AmbiguousIfSend<_>>::some_item;
};

// ...and it is still `Sync`: a shared `&GilGuard` only reads the GIL.
const _: fn() = || {
    fn sync<T: Sync>() {}
    sync::<GilGuard<'static>>();
};

/// However many threads want it, at most one holds it.
#[test]
fn one_holder_at_a_time() {
    let gil = Gil::new();
    let inside = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..200 {
                    let _held = gil.acquire();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(most.load(Ordering::SeqCst), 1);
    assert_eq!(gil.stats().acquisitions, 1600);
}

/// `yield_now` lets a waiting thread run before the yielder goes on.
#[test]
fn yield_now_hands_the_gil_to_a_waiter() {
    let gil = Gil::new();
    let started = Barrier::new(2);
    let mut held = gil.acquire();
    thread::scope(|s| {
        s.spawn(|| {
            started.wait();
            let _held = gil.acquire();
        });
        started.wait();
        // Wait until the other thread is blocked in `acquire`.
        while gil.lock_state().waiting == 0 {
            thread::yield_now();
        }
        held.yield_now();
        assert_eq!(gil.stats().acquisitions, 3, "it ran in between");
        drop(held);
    });
}

#[test]
fn yield_now_alone_keeps_the_gil() {
    let gil = Gil::new();
    let mut held = gil.acquire();
    held.yield_now();
    assert!(gil.is_held_by_current_thread());
    assert_eq!(gil.stats().acquisitions, 1);
}

#[test]
#[should_panic(expected = "already holds the GIL")]
fn acquiring_twice_on_one_thread_panics() {
    let gil = Gil::new();
    let _first = gil.acquire();
    let _second = gil.acquire();
}

/// With `EveryTicks`, two counting threads both make progress.
#[test]
fn every_ticks_releases_on_schedule() {
    let gil = Gil::with_policy(EveryTicks(10));
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut held = gil.acquire();
                for _ in 0..1000 {
                    held.tick();
                }
            });
        }
    });
    // Two first acquisitions, plus one retake per 10 ticks.
    assert_eq!(gil.stats().acquisitions, 2 + 2 * 100);
}

/// Under the new GIL, a waiting thread's drop request makes the
/// holder's next tick hand the GIL over before returning.
#[test]
fn a_drop_request_hands_the_gil_over() {
    let gil = Gil::with_policy(SwitchInterval(Duration::from_millis(1)));
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
        held.tick();
        assert!(served.load(Ordering::SeqCst), "it ran in between");
        assert!(!gil.drop_requested(), "the request was served");
        drop(held);
    });
    assert_eq!(gil.stats().drop_requests, 1);
}

/// Two threads that tick under the new GIL take turns: whichever
/// holds the GIL ticks until both have run, which only a switch
/// allows.
#[test]
fn cpu_bound_threads_take_turns() {
    let gil = Gil::with_policy(SwitchInterval(Duration::from_millis(1)));
    let progress = [AtomicUsize::new(0), AtomicUsize::new(0)];
    thread::scope(|s| {
        for me in 0..2 {
            let (gil, progress) = (&gil, &progress);
            s.spawn(move || {
                let mut held = gil.acquire();
                loop {
                    let mine = progress[me].fetch_add(1, Ordering::SeqCst);
                    let theirs = progress[1 - me].load(Ordering::SeqCst);
                    if mine >= 3 && theirs >= 3 {
                        break; // Both have run, so the GIL switched.
                    }
                    held.tick();
                }
            });
        }
    });
    assert!(gil.stats().switches >= 3);
}

/// Without a drop request, ticking under the new GIL never lets a
/// waiting thread in.
#[test]
fn no_request_no_switch() {
    let gil = Gil::with_policy(SwitchInterval(Duration::from_secs(60)));
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
        for _ in 0..10_000 {
            held.tick();
        }
        assert!(!served.load(Ordering::SeqCst));
        drop(held);
    });
    assert!(served.load(Ordering::SeqCst));
}
