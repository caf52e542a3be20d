//! The countdown: `split` shares the count out evenly, every share is
//! counted once, and the shares are counted at the same time.

use std::sync::{Barrier, Mutex};

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

/// Each share is counted exactly once, on its own call of `countdown`,
/// and the results add up.
pub(super) fn counts_every_share_once() {
    for (count, threads, expected) in
        [(10, 4, vec![2, 2, 3, 3]), (2, 4, vec![0, 0, 1, 1])]
    {
        let seen = Mutex::new(Vec::new());
        let total = countdown_threads(count, threads, |share| {
            seen.lock().unwrap().push(share);
            countdown(share)
        });
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(
            seen, expected,
            "{count} in {threads} threads: one countdown per share, empty \
             shares included (sorted here)"
        );
        assert_eq!(total, count, "the countdowns' results add up to {count}");
    }
    assert_eq!(countdown_threads(1_000_003, 3, countdown), 1_000_003);
}

/// The shares' countdowns wait at a barrier for each other.
pub(super) fn counts_the_shares_at_once() {
    const THREADS: usize = 4;
    let barrier = Barrier::new(THREADS);
    let total = countdown_threads(1_000, THREADS, |share| {
        barrier.wait(); // Every share has started.
        countdown(share)
    });
    assert_eq!(total, 1_000);
}
