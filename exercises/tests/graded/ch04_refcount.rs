//! Graded trials of chapter 4, Why the GIL exists.
//!
//! The "how" checks: `MyRc` must stay on one thread, neither `Send` nor
//! `Sync`, and `MyArc` be `Send` and `Sync` only for values that are both
//! (checked at run time with `course::is_send!`, so a wrong answer costs
//! one trial, not the whole crate's compilation); the last `MyRc` frees
//! its allocation, and so does the last `MyArc` (the graded binary counts
//! live bytes); eight threads
//! clone and drop one `MyArc` at once; readers snapshot `Stats` while
//! writers update it, also with one writer frozen by a signal
//! (`ch04_refcount/freeze.rs`) and with 64 writers interrupted on one CPU
//! (`ch04_refcount/one_core.rs`); eight threads move money in opposite
//! directions at once, which deadlocks a bank that locks accounts in the
//! order the transfer names them; and a transfer stopped halfway on a
//! held account shows no money in transit and holds up no transfer
//! between other accounts (`ch04_refcount/transit.rs`). At the edges of the
//! numbers: a clone that would wrap a count must abort the process, and
//! one that would not must not, for `MyRc` and `MyArc` alike (seen from a
//! forked copy, in
//! `ch04_refcount/overflow.rs`); a latency that would overflow the total
//! must change nothing, and any total that fits must be recorded; and
//! balances whose total overflows are refused in release builds too.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch04")]

// The trials of `MyRc` and of `Bank`, and those at the edges of the
// numbers, with a writer frozen, with writers interrupted on one CPU, with
// a snapshot waiting while records overflow, and with a transfer stopped
// halfway, in `ch04_refcount/`.
mod bank;
mod freeze;
mod my_rc;
mod one_core;
mod overflow;
mod poison;
mod race;
mod transit;
mod wakeup;

use std::cell::Cell;
use std::panic;
use std::rc::Rc;
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use bank::{moves_money, opposite_transfers_finish, self_transfer};
use course::grader::{Trial, alloc};
use course::{is_send, is_sync};
use exercises::ch04_refcount::{MyArc, Stats};
use my_rc::{rc_counts_owners, rc_drops_once, rc_stays_home};
use one_core::snapshots_while_writers_are_interrupted;
use overflow::{
    an_overflow_changes_nothing, arc_aborts_before_the_count_wraps,
    arc_counts_up_to_isize_max, bank_refuses_a_total_over_u64_max,
    rc_aborts_before_the_count_wraps, rc_counts_up_to_usize_max,
    totals_reach_u64_max,
};
use race::{
    arc_racing_clones_abort, arc_racing_updates_are_counted,
    racing_overflows_are_refused,
};
use transit::{disjoint_transfers_run_at_once, no_money_in_transit};

/// Deadline for trials whose only way to hang is a deadlock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Deadline for a trial whose many threads share one CPU: it only detects
/// a hang, and a loaded machine may be slow.
const SLOW_TIMEOUT: Duration = Duration::from_secs(120);

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new("ch04::my_rc::counts_owners", 1, rc_counts_owners),
        Trial::new("ch04::my_rc::drops_the_value_once", 2, rc_drops_once),
        Trial::new("ch04::my_rc::stays_on_one_thread", 1, rc_stays_home),
        Trial::new(
            "ch04::my_rc::aborts_before_the_count_wraps",
            1,
            rc_aborts_before_the_count_wraps,
        ),
        Trial::new(
            "ch04::my_rc::counts_up_to_usize_max",
            1,
            rc_counts_up_to_usize_max,
        ),
        Trial::new("ch04::my_arc::counts_owners", 1, arc_counts_owners),
        Trial::new(
            "ch04::my_arc::survives_eight_threads",
            3,
            arc_survives_eight_threads,
        ),
        Trial::new("ch04::my_arc::frees_its_allocation", 1, arc_frees),
        Trial::new("ch04::my_arc::can_cross_threads", 1, arc_crosses),
        Trial::new(
            "ch04::my_arc::shares_only_send_and_sync_values",
            1,
            arc_bounds,
        ),
        Trial::new(
            "ch04::my_arc::aborts_before_the_count_wraps",
            2,
            arc_aborts_before_the_count_wraps,
        ),
        Trial::new(
            "ch04::my_arc::racing_clones_at_the_limit_abort",
            1,
            arc_racing_clones_abort,
        ),
        Trial::new(
            "ch04::my_arc::counts_up_to_isize_max",
            1,
            arc_counts_up_to_isize_max,
        ),
        Trial::new(
            "ch04::stats::snapshots_are_consistent",
            3,
            snapshots_are_consistent,
        )
        // Alone, so that readers and writers really overlap.
        .exclusive(),
        Trial::new(
            "ch04::stats::consistent_while_writers_are_interrupted",
            2,
            snapshots_while_writers_are_interrupted,
        )
        // Its threads share one CPU; readers take their turns between
        // many writers'.
        .timeout(SLOW_TIMEOUT)
        .on_timeout(
            "a reader never finished its snapshot while one writer was \
             frozen by a signal, or while 64 writers shared its CPU: does \
             snapshot spin while a writer that cannot run holds the \
             numbers? (one lock around both numbers does not: the reader \
             sleeps on it)",
        ),
        Trial::new(
            "ch04::stats::an_overflow_changes_nothing",
            1,
            an_overflow_changes_nothing,
        ),
        Trial::new(
            "ch04::stats::racing_overflows_are_refused",
            1,
            racing_overflows_are_refused,
        ),
        Trial::new(
            "ch04::stats::totals_reach_u64_max",
            1,
            totals_reach_u64_max,
        ),
        Trial::new("ch04::bank::moves_money", 1, moves_money),
        Trial::new(
            "ch04::bank::opposite_transfers_finish",
            3,
            opposite_transfers_finish,
        )
        // Alone, so the eight threads really overlap and a bad lock order
        // shows as the deadlock it is.
        .exclusive()
        .timeout(LOCK_TIMEOUT)
        .on_timeout(
            "two threads transferring in opposite directions deadlocked: \
             each held one account and waited for the other's (lock the \
             two accounts in one fixed order)",
        ),
        Trial::new("ch04::bank::self_transfer_finishes", 1, self_transfer)
            .timeout(LOCK_TIMEOUT)
            .on_timeout(
                "a transfer from an account to itself never finished: a \
                 std Mutex locked twice by one thread waits for itself",
            ),
        Trial::new(
            "ch04::bank::refuses_a_total_over_u64_max",
            1,
            bank_refuses_a_total_over_u64_max,
        ),
        Trial::new("ch04::bank::no_money_in_transit", 2, no_money_in_transit)
            .timeout(LOCK_TIMEOUT)
            .on_timeout(
                "a transfer that needs an account the trial holds locked \
                 never went to sleep waiting for it (it must block on the \
                 account's lock, not spin), a transfer never finished, or \
                 balance() of an account try_lock_for_tests said was locked \
                 neither returned nor went to sleep",
            ),
        Trial::new(
            "ch04::bank::disjoint_transfers_run_at_once",
            2,
            disjoint_transfers_run_at_once,
        )
        .timeout(LOCK_TIMEOUT)
        .on_timeout(
            "a transfer between two other accounts (2 and 3, or 4 and 5, \
             ...) waited for a transfer between accounts 0 and 1 (one lock \
             around every transfer, or every transfer in one direction? a \
             lock shared by several accounts, such as account % 4?), \
             or one between accounts 1 and 2 waited for a transfer from 0 \
             to 3 (locking every account from the lower to the higher?), \
             or balance() of another account waited for one the trial \
             held (does balance lock more than its own account?): \
             transfers and balances that share no account must not wait \
             for each other; lock only the accounts you use, lower number \
             first",
        ),
    ]
}

/// A value that counts how many times it is dropped.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn tracked() -> (Tracked, Arc<AtomicUsize>) {
    let drops = Arc::new(AtomicUsize::new(0));
    (Tracked(Arc::clone(&drops)), drops)
}

fn arc_counts_owners() {
    let first = MyArc::new(vec![1, 2, 3]);
    let second = first.clone();
    assert_eq!(MyArc::strong_count(&first), 2);
    assert!(MyArc::ptr_eq(&first, &second), "clones share one value");
    assert!(!MyArc::ptr_eq(&first, &MyArc::new(vec![1, 2, 3])));
    assert!(
        !MyArc::ptr_eq(&MyArc::new(()), &MyArc::new(())),
        "two MyArc::new(()) are two owners of two values, yet ptr_eq says \
         they share one: a zero-sized value has no address of its own, so \
         compare the pointers to the allocations that hold the counts"
    );
    assert_eq!(second.len(), 3);
    drop(first);
    assert_eq!(MyArc::strong_count(&second), 1);
}

/// Two racing clones and two racing drops, in the order that loses an
/// update of a count kept in two steps (`race`); then eight threads start
/// together and clone and drop one `MyArc` as fast as they can, and
/// afterwards the count is back to one and the value alive. Without the
/// forced order a lost update needs two threads inside `clone` or `drop`
/// at the same instant, so the round is repeated: more rounds only make a
/// broken count likelier to show, never a correct one fail.
fn arc_survives_eight_threads() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 20;
    const CLONES: usize = 2_000;
    // First the one order that loses an update of a two-step count, forced
    // in copies of this process while it has no thread but its own.
    arc_racing_updates_are_counted();
    for round in 1..=ROUNDS {
        let (value, drops) = tracked();
        let shared = MyArc::new(value);
        let start = Barrier::new(THREADS);
        thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..CLONES {
                        let clone = shared.clone();
                        drop(clone);
                    }
                });
            }
        });
        let count = MyArc::strong_count(&shared);
        assert_eq!(
            count, 1,
            "after every clone was dropped the count should be 1 again, not \
             {count} (round {round}): lost updates; use atomic \
             read-modify-write operations such as fetch_add"
        );
        assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while owned");
        drop(shared);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped exactly once");
    }
}

/// `MyArc<T>` is `Send` and `Sync` exactly when `T` is both: a value that
/// is only `Send` (a `Cell`) would be used from two threads at once, and
/// one that is only `Sync` (a `MutexGuard`) dropped on another thread.
fn arc_bounds() {
    assert!(
        is_send!(MyArc<u32>) && is_sync!(MyArc<u32>),
        "MyArc<u32> must be Send and Sync"
    );
    assert!(
        !is_send!(MyArc<Cell<u32>>) && !is_sync!(MyArc<Cell<u32>>),
        "MyArc<Cell<u32>> is Send or Sync, yet clones on two threads would \
         change one Cell at once: Cell is Send but not Sync; require \
         T: Send + Sync for both impls, as std's Arc does"
    );
    assert!(
        !is_send!(MyArc<MutexGuard<'static, u32>>)
            && !is_sync!(MyArc<MutexGuard<'static, u32>>),
        "MyArc<MutexGuard<u32>> is Send or Sync, yet the last clone, on \
         any thread, would drop the guard there, and a MutexGuard must be \
         dropped on the thread that locked: it is Sync but not Send; \
         require T: Send + Sync for both impls, as std's Arc does"
    );
    assert!(
        !is_send!(MyArc<Rc<u32>>) && !is_sync!(MyArc<Rc<u32>>),
        "MyArc<Rc<u32>> must be neither Send nor Sync"
    );
}

/// The last `MyArc` frees the allocation that held the count and the
/// value, as the last `MyRc` does: the graded binary counts live bytes.
/// Also for a zero-sized value, whose block still holds the count.
fn arc_frees() {
    let leaked = alloc::left_allocated_by(|| {
        let first = MyArc::new([7_u8; 512]);
        let clones: Vec<_> = (0..5).map(|_| first.clone()).collect();
        drop(clones);
        drop(first);
    });
    assert_eq!(
        leaked, 0,
        "after the last MyArc of a 512-byte value was dropped, {leaked} \
         bytes were still allocated: the last owner must free every \
         allocation new made, the count's too. Dropping the value in place \
         (drop_in_place) does not free the heap allocation that held it, \
         and a count made &'static with Box::leak is never freed; keep the \
         count and the value in one allocation, and rebuild its Box \
         (Box::from_raw) to drop it"
    );
    let leaked = alloc::left_allocated_by(|| {
        let first = MyArc::new(());
        let clones: Vec<_> = (0..5).map(|_| first.clone()).collect();
        drop(clones);
        drop(first);
    });
    assert_eq!(
        leaked, 0,
        "after the last MyArc of a zero-sized value (MyArc::new(())) was \
         dropped, {leaked} bytes were still allocated: the value takes no \
         memory, but the block also holds the count, and Box::new of it \
         did allocate; free it as for any other value (drop a rebuilt Box, \
         Box::from_raw), with no special case for a zero-sized T"
    );
}

fn arc_crosses() {
    assert!(is_send!(MyArc<u32>), "MyArc<u32> must be Send");
    let (value, drops) = tracked();
    let shared = MyArc::new(value);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let mine = shared.clone();
            thread::spawn(move || drop(mine))
        })
        .collect();
    for handle in handles {
        // The thread's own panic, not a generic "called unwrap on Err".
        if let Err(payload) = handle.join() {
            panic::resume_unwind(payload);
        }
    }
    drop(shared);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped exactly once");
}

/// Writers record requests of 1 ms each, so every consistent snapshot has
/// total == count; readers check thousands of snapshots meanwhile. A torn
/// snapshot needs a read between a writer's two updates, so the round is
/// repeated until one shows or enough rounds came out clean; a correct
/// `Stats` never tears, so more rounds only make the check stronger.
fn snapshots_are_consistent() {
    const WRITERS: usize = 4;
    const READERS: usize = 4;
    const RECORDS: u64 = 5_000;
    const ROUNDS: usize = 20;
    assert_eq!(Stats::new().snapshot(), (0, 0), "no requests yet");
    for round in 1..=ROUNDS {
        let stats = Stats::new();
        let start = Barrier::new(WRITERS + READERS);
        let torn = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..WRITERS {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..RECORDS {
                        stats.record(1);
                    }
                });
            }
            for _ in 0..READERS {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..RECORDS {
                        let (count, total) = stats.snapshot();
                        if count != total {
                            torn.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        let torn = torn.load(Ordering::SeqCst);
        assert_eq!(
            torn, 0,
            "{torn} snapshots had a count and a total from different \
             moments (round {round}): two atomics are each correct but not \
             correct together (guard both numbers with one lock)"
        );
        let expected = WRITERS as u64 * RECORDS;
        assert_eq!(stats.snapshot(), (expected, expected), "no update lost");
    }
}
