//! Chapter 4's costs of counting: a plain, an atomic and a locked
//! increment, an atomic one that two threads share, and the updates a
//! count split into a load and a store loses.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Barrier, Mutex};
use std::thread;

use super::{median, seconds};
use crate::cli::bench::results::{Budget, Increments, LostUpdates};

/// How many threads add to the one shared count at once.
pub(crate) const SHARED_THREADS: u64 = 2;

/// Nanoseconds per increment, each the median of three rounds, the four
/// kinds interleaved; the program of chapter 4, "Counts that race".
pub(super) fn increments(budget: Budget, say: &dyn Fn(&str)) -> Increments {
    say("increments: plain, atomic, locked, shared by two threads");
    let n = budget.increments;
    let nanos_each = |spent: f64| spent * 1e9 / n as f64;
    let per_op = |threads: u64, op: &(dyn Fn() + Sync)| {
        nanos_each(seconds(|| {
            thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| (0..n / threads).for_each(|_| op()));
                }
            });
        }))
    };
    let (atomic, locked) = (AtomicU64::new(0), Mutex::new(0u64));
    let (mut a, mut b, mut c, mut d) = (vec![], vec![], vec![], vec![]);
    for _ in 0..3 {
        a.push(nanos_each(seconds(|| {
            black_box(plain_count(n));
        })));
        b.push(per_op(1, &|| {
            atomic.fetch_add(1, Relaxed);
        }));
        c.push(per_op(1, &|| {
            if let Ok(mut count) = locked.lock() {
                *count += 1;
            }
        }));
        d.push(per_op(SHARED_THREADS, &|| {
            atomic.fetch_add(1, Relaxed);
        }));
    }
    Increments {
        count: n,
        plain_ns: median(&a),
        atomic_ns: median(&b),
        mutex_ns: median(&c),
        shared_ns: median(&d),
    }
}

/// `n` plain increments. Never inlined: a loop this tight runs at a speed
/// that depends on where it lies in memory, and a copy inlined into the
/// measuring function moves whenever the rest of the program changes.
#[inline(never)]
fn plain_count(n: u64) -> u64 {
    let mut plain = 0u64;
    for _ in 0..n {
        plain = black_box(plain) + 1;
    }
    plain
}

/// Threads and steps of chapter 4's split count, as its listing has them.
const SPLIT_THREADS: u64 = 4;
const SPLIT_STEPS: u64 = 100_000;

/// Runs chapter 4's split count (a load, then a store) `budget.pairs`
/// times: how many updates each run lost.
pub(super) fn lost_updates(budget: Budget, say: &dyn Fn(&str)) -> LostUpdates {
    say("lost updates: a count split into a load and a store");
    let lost = (0..budget.pairs)
        .map(|_| {
            let count = AtomicU64::new(0);
            let start = Barrier::new(SPLIT_THREADS as usize);
            thread::scope(|s| {
                for _ in 0..SPLIT_THREADS {
                    s.spawn(|| {
                        start.wait();
                        for _ in 0..SPLIT_STEPS {
                            let seen = count.load(Relaxed);
                            count.store(seen + 1, Relaxed);
                        }
                    });
                }
            });
            SPLIT_THREADS * SPLIT_STEPS - count.into_inner()
        })
        .collect();
    LostUpdates {
        threads: SPLIT_THREADS,
        steps: SPLIT_STEPS,
        lost,
    }
}
