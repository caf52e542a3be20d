//! `VisitCounter`: from any number of threads, every visit is counted
//! and gets a ticket of its own, in a `u64` count that each counter keeps
//! for itself.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use course::grader::alloc;
use exercises::ch01_threads::VisitCounter;

const VISITORS: usize = 8;
const VISITS_EACH: u64 = 5_000;

/// A lost update needs two threads inside `record` at the same instant, so
/// one round may miss it: the counting is repeated, each round starting all
/// threads together at a barrier, until a round comes out wrong or enough
/// rounds came out right. A correct counter is never wrong; more rounds
/// only make a broken one likelier to show.
const ROUNDS: usize = 20;

/// One round: every visitor records `VISITS_EACH` visits on a fresh
/// counter, then waits, still alive, until the trial has read `total()`.
/// Returns the counter, every ticket handed out, sorted, and the total
/// read while the visitors were still alive.
fn one_round() -> (VisitCounter, Vec<u64>, u64) {
    let counter = VisitCounter::new();
    let start = Barrier::new(VISITORS);
    // The visitors and the trial: every visit is recorded, then the trial
    // reads the total, then the visitors end.
    let recorded = Barrier::new(VISITORS + 1);
    let read = Barrier::new(VISITORS + 1);
    let (mut tickets, total_meanwhile): (Vec<u64>, u64) =
        thread::scope(|scope| {
            let handles: Vec<_> = (0..VISITORS)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        // A panic in `record` is passed on, but only once
                        // the others no longer wait for this thread.
                        // `AssertUnwindSafe`: a counter with an `UnsafeCell`
                        // inside is not `RefUnwindSafe`, and the trial
                        // looks at nothing it may have left half done.
                        let tickets =
                            panic::catch_unwind(AssertUnwindSafe(|| {
                                (0..VISITS_EACH)
                                    .map(|_| counter.record())
                                    .collect::<Vec<_>>()
                            }));
                        recorded.wait();
                        read.wait();
                        tickets.unwrap_or_else(|p| panic::resume_unwind(p))
                    })
                })
                .collect();
            recorded.wait();
            // Nothing here may panic: the visitors wait for `read`.
            let total_meanwhile = counter.total();
            read.wait();
            let tickets = handles
                .into_iter()
                .flat_map(|handle| handle.join().unwrap())
                .collect();
            (tickets, total_meanwhile)
        });
    tickets.sort_unstable();
    (counter, tickets, total_meanwhile)
}

/// Eight threads start together and record visits as fast as they can.
/// The total is read while they are all still alive (their visits done),
/// and again after they ended: "so far" is not "once the threads ended".
pub(super) fn counts_every_visit() {
    assert_eq!(VisitCounter::new().total(), 0, "a new counter starts at 0");
    let expected = VISITORS as u64 * VISITS_EACH;
    for round in 1..=ROUNDS {
        let (counter, _, meanwhile) = one_round();
        let total = counter.total();
        assert_eq!(
            total,
            expected,
            "{VISITORS} threads recorded {VISITS_EACH} visits each, but the \
             total is {total} (round {round}): {}",
            if total < expected {
                "lost updates, from a read and a write that are two steps"
            } else {
                "more visits than were recorded"
            }
        );
        assert_eq!(
            meanwhile, expected,
            "{VISITORS} threads recorded {VISITS_EACH} visits each, and \
             while they were still alive, total() said {meanwhile} (round \
             {round}): total() counts the visits recorded so far, not only \
             those of threads that have ended"
        );
    }
    total_never_goes_back();
    super::held_visit::ticket_never_ahead_of_total();
}

/// While eight threads record visits, a ninth reads `total()` again and
/// again: the count it sees never goes down. (A count that each `record`
/// overwrites with its own ticket goes back whenever two of them cross.)
fn total_never_goes_back() {
    // More threads than cores: a thread paused between two steps of its
    // `record` is then likely, and the reader sees what it left behind.
    let cores = thread::available_parallelism().map_or(4, |n| n.get());
    let recorders = (4 * cores).min(32);
    let counter = VisitCounter::new();
    let start = Barrier::new(recorders + 1);
    let done = AtomicUsize::new(0);
    let seen_back = AtomicBool::new(false);
    let went_back = thread::scope(|scope| {
        for _ in 0..recorders {
            scope.spawn(|| {
                start.wait();
                for _ in 0..50_000 {
                    if seen_back.load(Ordering::Relaxed) {
                        break;
                    }
                    counter.record();
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        start.wait();
        let mut last = 0;
        let mut went_back = None;
        while done.load(Ordering::SeqCst) < recorders {
            let now = counter.total();
            if now < last && went_back.is_none() {
                went_back = Some((last, now));
                seen_back.store(true, Ordering::Relaxed);
            }
            last = now;
        }
        went_back
    });
    if let Some((before, after)) = went_back {
        panic!(
            "while threads recorded visits, total() said {before}, then \
             {after}: a count of visits never goes back (is the count one \
             atomic that record adds to, or a value each record overwrites?)"
        );
    }
}

/// Every visit gets its own ticket: 1, 2, ..., n, each exactly once; also
/// when one visit is held at its first write while another is recorded
/// (forced, not hoped for: see `held_visit`).
pub(super) fn hands_out_each_ticket_once() {
    super::held_visit::held_visits_get_tickets_1_and_2();
    for round in 1..=ROUNDS {
        let (_, tickets, _) = one_round();
        let n = tickets.len() as u64;
        if tickets.first() == Some(&0) {
            panic!(
                "the first visit got ticket 0, but tickets start at 1 \
                 (fetch_add returns the value from before the addition)"
            );
        }
        if let Some(pair) = tickets.windows(2).find(|p| p[0] == p[1]) {
            panic!(
                "ticket {} was handed out twice (round {round}): two \
                 visits read the same count before either wrote it back",
                pair[0]
            );
        }
        assert!(
            tickets.iter().copied().eq(1..=n),
            "tickets must be exactly 1..={n}; got {}..={}",
            tickets[0],
            tickets[tickets.len() - 1]
        );
    }
}

/// `VisitCounter::default()` is a counter at zero, the same as `new()`,
/// and every counter counts its own visits: making a counter, with `new()`
/// or `default()`, changes no other counter.
pub(super) fn default_starts_at_zero() {
    let first = VisitCounter::new();
    for _ in 0..3 {
        first.record();
    }
    let counter = VisitCounter::default();
    assert_eq!(
        counter.total(),
        0,
        "a default counter starts at 0, even after another counter has \
         counted visits (is the count a static that every counter shares?)"
    );
    let first_ticket = counter.record();
    assert_eq!(
        first_ticket, 1,
        "the first visit to VisitCounter::default() got ticket \
         {first_ticket}, not 1: a default counter must be the same as \
         VisitCounter::new()"
    );
    assert_eq!(counter.record(), 2, "the second visit gets ticket 2");
    assert_eq!(counter.total(), 2, "two visits recorded");
    let other = VisitCounter::new();
    assert_eq!(other.total(), 0, "a new counter starts at 0");
    assert_eq!(
        (first.total(), counter.total()),
        (3, 2),
        "three visits to one counter and two to another, then a third \
         counter was made: each counter counts its own visits, and making \
         one leaves the others alone (the count is a field of the counter, \
         not a static they all share)"
    );
    let leaked = alloc::left_allocated_by(|| {
        // Each counter is dropped at the end of its statement.
        for _ in 0..100 {
            VisitCounter::new().record();
            VisitCounter::default().record();
        }
    });
    assert_eq!(
        leaked, 0,
        "200 counters were made, used and dropped, and {leaked} bytes they \
         allocated were never freed: a counter owns its count, and dropping \
         the counter frees it (a count made 'static with Box::leak is never \
         freed; a plain atomic field needs no allocation at all)"
    );
}

/// The count is a `u64`: it goes on past `u32::MAX`, where a 32-bit count
/// would wrap to 0. The test hook starts the count there; then four
/// threads carry it on from far beyond.
pub(super) fn counts_past_u32_max() {
    let counter = VisitCounter::new();
    let near = u64::from(u32::MAX) - 1;
    counter.set_total_for_tests(near);
    assert_eq!(
        counter.total(),
        near,
        "after set_total_for_tests({near}), total() must be {near}"
    );
    assert_eq!(counter.record(), near + 1, "the visit after {near}");
    let past = counter.record();
    assert_eq!(
        past,
        1 << 32,
        "visit number 2^32 got ticket {past}: the count wrapped (a u32 \
         holds at most {}; the count is a u64)",
        u32::MAX
    );
    assert_eq!(counter.total(), 1 << 32, "2^32 visits recorded");
    every_bit_of_the_count(&counter);
    super::carry_held::total_is_never_half_carried();
    const FAR: u64 = 1 << 40;
    counter.set_total_for_tests(FAR);
    assert_eq!(counter.total(), FAR, "after set_total_for_tests(2^40)");
    thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..1_000 {
                    counter.record();
                }
            });
        }
    });
    assert_eq!(
        counter.total(),
        FAR + 4_000,
        "four threads recorded 1000 visits each after 2^40"
    );
    // Down as well as up: the hook sets the count, whatever it was.
    counter.set_total_for_tests(5);
    assert_eq!(
        counter.total(),
        5,
        "after 2^40 + 4000 visits, set_total_for_tests(5) must set the \
         count to 5, lower than it was (a store, not a fetch_max)"
    );
    assert_eq!(
        counter.record(),
        6,
        "the visit after set_total_for_tests(5)"
    );
    for round in 1..=WRAP_ROUNDS {
        across_u32_max(round);
    }
}

/// The count is a whole `u64`, every one of its 64 bits: it is set to the
/// visit before 2^48, 2^63 and `u64::MAX`, and one more visit gets the next
/// ticket and leaves `total()` at that ticket. A count that keeps a tag in
/// its top bits wraps at 2^48; a signed `i64` count stops at `i64::MAX`.
fn every_bit_of_the_count(counter: &VisitCounter) {
    for (visits, name) in [
        ((1 << 48) - 1, "2^48 - 1"),
        ((1 << 63) - 1, "2^63 - 1 (i64::MAX)"),
        (1 << 63, "2^63"),
        (u64::MAX - 1, "u64::MAX - 1"),
    ] {
        counter.set_total_for_tests(visits);
        let total = counter.total();
        assert_eq!(
            total, visits,
            "after set_total_for_tests({visits}), that is {name}, total() \
             is {total}: the count is a full u64, every one of its 64 bits \
             (not an i64 that stops at i64::MAX, nor fewer bits with a tag \
             on top)"
        );
        let ticket = counter.record();
        let total = counter.total();
        assert_eq!(
            (ticket, total),
            (visits + 1, visits + 1),
            "the visit after {visits} ({name}) got ticket {ticket} and left \
             total() at {total}; both must be {}: the count is a full u64 \
             and goes on without wrapping (not an i64, nor fewer bits with \
             a tag on top)",
            visits + 1
        );
    }
}

/// A count kept as two 32-bit halves must carry from one to the other as
/// it passes `u32::MAX`, and a visit that comes between the low half's
/// wrap and the carry gets a wrong ticket. That needs two threads inside
/// `record` at the same instant, so one round may miss it: the rounds are
/// repeated, as for lost updates, until one comes out wrong or enough came
/// out right. A `u64` count is never wrong.
const WRAP_ROUNDS: usize = 200;

/// One round: two threads start together at a barrier and record 10,000
/// visits each, from 10,000 visits before `u32::MAX` to 10,000 after it;
/// their tickets must be exactly the next 20,000 numbers. (Two threads
/// meet inside `record` more often than four on a machine of two cores,
/// where four keep taking turns.)
fn across_u32_max(round: usize) {
    const THREADS: usize = 2;
    const EACH: u64 = 10_000;
    let visits = THREADS as u64 * EACH;
    let start = u64::from(u32::MAX) - visits / 2;
    let counter = VisitCounter::new();
    counter.set_total_for_tests(start);
    let barrier = Barrier::new(THREADS);
    let mut tickets: Vec<u64> = thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    (0..EACH).map(|_| counter.record()).collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap())
            .collect()
    });
    tickets.sort_unstable();
    let expected = start + 1..=start + visits;
    if let Some((got, want)) = tickets
        .iter()
        .zip(expected.clone())
        .find(|&(&got, want)| got != want)
    {
        panic!(
            "{THREADS} threads recorded {visits} visits at once across \
             u32::MAX (round {round}), from ticket {} on: the tickets should \
             be exactly {}..={}, but ticket {want} is missing (ticket {got} \
             came instead, in sorted order): a count made of two 32-bit \
             halves carries from one to the other in a separate step, and a \
             visit in between reads a half that is not up to date; keep the \
             count in one AtomicU64",
            start + 1,
            expected.start(),
            expected.end()
        );
    }
    assert_eq!(
        counter.total(),
        start + visits,
        "{visits} visits recorded across u32::MAX (round {round})"
    );
}
