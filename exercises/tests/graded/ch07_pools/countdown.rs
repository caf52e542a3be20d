//! The countdown: `split` shares the count out evenly and exactly, every
//! share is counted once, on a thread of its own, and the shares are
//! counted at the same time.

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Barrier, Mutex};
use std::thread::{self, ThreadId};

use course::grader::spawn_limit;
use exercises::ch07_pools::{countdown, countdown_threads, split};

/// `split` gives balanced shares, larger first, that add up to the count.
pub(super) fn split_is_balanced() {
    let cases: [(u64, usize, &[u64]); 5] = [
        (10, 4, &[3, 3, 2, 2]),
        (12, 3, &[4, 4, 4]),
        (5, 1, &[5]),
        (3, 5, &[1, 1, 1, 0, 0]),
        (0, 2, &[0, 0]),
    ];
    for (count, parts, expected) in cases {
        assert_eq!(
            split(count, parts),
            expected,
            "split({count}, {parts}): {parts} shares that differ by at \
             most one and add up to {count}, the larger ones first"
        );
    }
    let shares = split(50_000_000, 7);
    assert_eq!(shares.iter().sum::<u64>(), 50_000_000, "the shares add up");
    assert_eq!(shares[0] - shares[6], 1, "7 shares of 50 million");
}

/// `split` is exact for counts that a float cannot hold (above 2^53) and
/// for counts whose products with a part number overflow a `u64`.
pub(super) fn split_is_exact_for_huge_counts() {
    const MAX: u64 = u64::MAX;
    const TWO_53: u64 = 1 << 53;
    let cases: [(u64, usize, Vec<u64>); 6] = [
        (MAX, 1, vec![MAX]),
        (MAX, 3, vec![MAX / 3; 3]),
        (TWO_53 + 3, 1, vec![TWO_53 + 3]),
        (TWO_53 + 3, 2, vec![TWO_53 / 2 + 2, TWO_53 / 2 + 1]),
        (
            MAX / 2,
            4,
            vec![MAX / 8 + 1, MAX / 8 + 1, MAX / 8 + 1, MAX / 8],
        ),
        (MAX, 64, {
            let mut shares = vec![MAX / 64 + 1; 63];
            shares.push(MAX / 64);
            shares
        }),
    ];
    for (count, parts, expected) in cases {
        assert_eq!(
            split(count, parts),
            expected,
            "split({count}, {parts}): exact for every u64 count (integer \
             arithmetic: a float rounds above 2^53, and part * count \
             overflows)"
        );
    }
}

/// `0` parts count as one: `split` gives one share, and `countdown_threads`
/// counts the whole count on one thread.
pub(super) fn zero_parts_count_as_one() {
    for count in [7, 0] {
        assert_eq!(
            split(count, 0),
            [count],
            "split({count}, 0): 0 parts count as one, so one share of {count}"
        );
    }
    let seen = Mutex::new(Vec::new());
    let total = countdown_threads(7, 0, |share| {
        seen.lock().unwrap().push(share);
        countdown(share)
    });
    assert_eq!(
        seen.into_inner().unwrap(),
        [7],
        "countdown_threads(7, 0, ..): 0 threads count as one, so one call \
         of countdown, with the whole count"
    );
    assert_eq!(total, 7, "countdown_threads(7, 0, ..) counts all 7");
}

/// Each share is counted exactly once, on its own call of `countdown`,
/// and what the calls return is added up. The closure here returns
/// `2 * share + 1`, not its share, so that a version that returns `count`
/// instead of the sum (which the notes' `countdown` would make equal) is
/// told apart. And so with [`MANY_THREADS`] threads: as many calls, one per
/// share.
pub(super) fn counts_every_share_once() {
    // 550 shares of 2 and 550 of 1, sorted.
    let many: Vec<u64> = [1, 2]
        .into_iter()
        .flat_map(|share| [share; MANY_THREADS / 2])
        .collect();
    for (count, threads, expected, sum) in [
        (10, 4, vec![2, 2, 3, 3], 24),
        (2, 4, vec![0, 0, 1, 1], 8),
        (0, 4, vec![0, 0, 0, 0], 4),
        (1650, MANY_THREADS, many, 2 * 1650 + MANY_THREADS as u64),
    ] {
        let seen = Mutex::new(Vec::new());
        let total = countdown_threads(count, threads, |share| {
            seen.lock().unwrap().push(share);
            2 * countdown(share) + 1
        });
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert!(
            seen == expected,
            "{count} in {threads} threads: one countdown per share, empty \
             shares included, {} calls in all, but there were {}, with the \
             shares {}: every share of split({count}, {threads}) gets a call \
             on a thread of its own, however many threads that makes (no cap \
             on the threads, not even one by the number of cores)",
            expected.len(),
            seen.len(),
            shown(&seen)
        );
        assert_eq!(
            total, sum,
            "countdown_threads({count}, {threads}, ..) with a countdown that \
             returns 2 * share + 1 for the shares {expected:?}: return the \
             sum of what the calls returned ({sum}), not {count}"
        );
    }
    assert_eq!(countdown_threads(1_000_003, 3, countdown), 1_000_003);
}

/// The shares' countdowns wait at a barrier for each other, 4 of them,
/// and [`MANY_THREADS`].
pub(super) fn counts_the_shares_at_once() {
    for threads in [4, MANY_THREADS] {
        let barrier = Barrier::new(threads);
        let total = countdown_threads(10_000, threads, |share| {
            barrier.wait(); // Every share has started.
            countdown(share)
        });
        assert_eq!(total, 10_000);
    }
}

/// Far more threads than any grading machine has cores, and more than a
/// "safe" cap of 1024. (Each share does almost nothing, and 1100 stacks of
/// 2 MiB fit in the memory a trial may map.)
const MANY_THREADS: usize = 1100;

/// The shares a `countdown_threads` counted, short enough for a message:
/// how many calls had each share.
fn shown(seen: &[u64]) -> String {
    let mut calls = std::collections::BTreeMap::new();
    for &share in seen {
        *calls.entry(share).or_insert(0) += 1;
    }
    let calls: Vec<String> = calls
        .into_iter()
        .map(|(share, calls)| format!("{calls} x {share}"))
        .collect();
    calls.join(", ")
}

/// Every share is counted on a thread of its own, none on the calling
/// thread, even when there is only one share (one thread, or 0 threads,
/// which count as one), and even when the share is empty (a count smaller
/// than the threads, or a count of 0).
pub(super) fn counts_each_share_on_a_thread_of_its_own() {
    let caller = thread::current().id();
    for (count, threads) in [(10, 4), (10, 1), (7, 0), (2, 4), (0, 3)] {
        let shares = threads.max(1);
        let seen = Mutex::new(Vec::<ThreadId>::new());
        let total = countdown_threads(count, threads, |share| {
            seen.lock().unwrap().push(thread::current().id());
            countdown(share)
        });
        assert_eq!(total, count, "countdown_threads({count}, {threads}, ..)");
        let seen = seen.into_inner().unwrap();
        assert!(
            !seen.contains(&caller),
            "countdown_threads({count}, {threads}, ..): a share was counted \
             on the calling thread; every share, an empty one too, and the \
             one share of 0 threads, gets a new thread of its own, and the \
             calling thread only waits for them"
        );
        assert_eq!(
            seen.iter().collect::<HashSet<_>>().len(),
            shares,
            "countdown_threads({count}, {threads}, ..): {shares} shares, \
             empty ones included, should be counted on {shares} different \
             threads"
        );
    }
    no_share_on_the_caller_when_no_thread_starts();
}

/// While no new thread can start, no share is counted on the calling
/// thread either: `countdown_threads` panics, as `Scope::spawn` does,
/// rather than count a share itself when its thread is refused.
fn no_share_on_the_caller_when_no_thread_starts() {
    let caller = thread::current().id();
    let calls = Mutex::new(Vec::new());
    let outcome = spawn_limit::while_no_thread_can_start(|| {
        countdown_threads(10, 2, |share| {
            calls.lock().unwrap().push(thread::current().id());
            countdown(share)
        })
    });
    let Some(outcome) = outcome else {
        eprintln!(
            "note: threads still start under RLIMIT_DATA here, so a share \
             counted on the calling thread when its thread is refused is not \
             checked"
        );
        return;
    };
    let calls = calls.into_inner().unwrap_or_else(|e| e.into_inner());
    assert!(
        !calls.contains(&caller),
        "no new thread could start, and countdown_threads(10, 2, ..) counted \
         a share on the calling thread: every share is counted on a new \
         thread of its own, and when one cannot start, countdown_threads \
         panics (as Scope::spawn does) rather than count that share itself"
    );
    assert!(
        outcome.is_err(),
        "no new thread could start, yet countdown_threads(10, 2, ..) \
         returned {outcome:?}: a share whose thread cannot start has no \
         count, so panic (as Scope::spawn does) rather than return"
    );
}

/// What a countdown's panic carries in [`passes_a_panic_on`], the second
/// time: neither a `&str` nor a `String`, as with `panic_any`.
struct NotAMessage;

/// A panic in `countdown` reaches the caller: the countdown has no sum.
/// So too when the panic carries no message but another value, as
/// `panic_any` can.
pub(super) fn passes_a_panic_on() {
    // `split(7, 3)` is `[3, 2, 2]`: the share of 3 panics, the others count.
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        countdown_threads(7, 3, |share| {
            if share == 3 {
                panic!("a countdown that fails on purpose");
            }
            countdown(share)
        })
    }));
    if let Ok(total) = result {
        panic!(
            "a call of countdown panicked, yet countdown_threads returned \
             {total}: the panic must reach the caller (a panicked thread's \
             join gives an Err, which is not a count)"
        );
    }
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        countdown_threads(7, 3, |share| {
            if share == 3 {
                panic::panic_any(NotAMessage);
            }
            countdown(share)
        })
    }));
    if let Ok(total) = result {
        panic!(
            "a call of countdown panicked with a value that is not a message \
             (std::panic::panic_any(value)), yet countdown_threads returned \
             {total}: a panic is a panic whatever it carries, not only a &str \
             or a String (pass it on as it is, with \
             std::panic::resume_unwind, or panic with a message of your own \
             when it carries none)"
        );
    }
}
