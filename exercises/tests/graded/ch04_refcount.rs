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

// The trials at the edges of the numbers, with a writer frozen, with
// writers interrupted on one CPU, and with a transfer stopped halfway, in
// `ch04_refcount/`.
mod freeze;
mod one_core;
mod overflow;
mod race;
mod transit;

use std::cell::Cell;
use std::panic;
use std::rc::Rc;
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use course::grader::{Trial, alloc};
use course::{is_send, is_sync};
use exercises::ch04_refcount::{Bank, MyArc, MyRc, Stats, TransferError};
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
            "a transfer between accounts 2 and 3 waited for a transfer \
             between accounts 0 and 1 (one lock around every transfer?): \
             transfers that share no account must not wait for each other; \
             lock only the two accounts, lower number first",
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

fn rc_counts_owners() {
    let first = MyRc::new(String::from("tab"));
    assert_eq!(MyRc::strong_count(&first), 1, "a new MyRc has one owner");
    let second = first.clone();
    let third = second.clone();
    assert_eq!(MyRc::strong_count(&first), 3, "three owners after 2 clones");
    assert!(MyRc::ptr_eq(&first, &third), "clones share one value");
    assert!(!MyRc::ptr_eq(&first, &MyRc::new(String::from("tab"))));
    assert!(
        !MyRc::ptr_eq(&MyRc::new(()), &MyRc::new(())),
        "two MyRc::new(()) are two owners of two values, yet ptr_eq says \
         they share one: a zero-sized value has no address of its own \
         (every Box<()> is the same dangling pointer), so compare the \
         pointers to the allocations that hold the counts"
    );
    assert_eq!(*third, "tab");
    drop(second);
    assert_eq!(
        MyRc::strong_count(&third),
        2,
        "dropping a clone counts down"
    );
    // In a copy of the process: a misaligned value may abort it (debug
    // builds check the alignment of what a pointer reads or writes).
    let ended = overflow::in_a_copy(|| {
        let rc = MyRc::new(Aligned64([7; 64]));
        let address = (&raw const *rc).addr();
        u8::from(address.is_multiple_of(64) && rc.0[63] == 7)
    });
    assert!(
        ended == overflow::Ended::Returned(1),
        "MyRc::new of a #[repr(align(64))] value put it at an address that \
         is not a multiple of 64 ({ended:?}): a block laid out by hand as a \
         count then the value (size_of::<usize>() + size_of::<T>(), aligned \
         as a usize) misaligns any value aligned above 8; let a struct of \
         the two and Box::new (or Layout::new) lay it out"
    );
}

fn rc_drops_once() {
    let (value, drops) = tracked();
    let first = MyRc::new(value);
    let clones: Vec<_> = (0..5).map(|_| first.clone()).collect();
    drop(first);
    assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while still owned");
    drop(clones);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the value must be dropped exactly once, when the last owner goes"
    );
    let leaked = alloc::left_allocated_by(|| {
        let first = MyRc::new([7_u8; 512]);
        let clones: Vec<_> = (0..5).map(|_| first.clone()).collect();
        drop(clones);
        drop(first);
    });
    assert_eq!(
        leaked, 0,
        "after the last MyRc of a 512-byte value was dropped, {leaked} bytes \
         were still allocated: dropping the value (drop_in_place) does not \
         free the heap allocation that held it and the count; rebuild the \
         Box (Box::from_raw) and drop that"
    );
    let leaked = alloc::left_allocated_by(|| {
        let first = MyRc::new(PanicsOnDrop([7_u8; 512]));
        let second = first.clone();
        drop(first);
        let dropped =
            panic::catch_unwind(panic::AssertUnwindSafe(|| drop(second)));
        assert!(
            dropped.is_err(),
            "the value's destructor panicked, yet dropping its last MyRc did \
             not pass the panic on"
        );
    });
    assert_eq!(
        leaked, 0,
        "after the last MyRc of a 512-byte value whose destructor panics was \
         dropped, {leaked} bytes were still allocated: the panic unwound past \
         the deallocation (drop_in_place, then dealloc?); free the block even \
         then, as std's Rc does: drop a rebuilt Box (Box::from_raw), which \
         frees its block while the panic unwinds, or a guard that deallocates"
    );
    let leaked = alloc::left_allocated_by(rc_drops_while_unwinding);
    assert_eq!(
        leaked, 0,
        "after the last MyRc was dropped by a thread unwinding from a panic, \
         {leaked} bytes were still allocated: a drop during unwinding must \
         count down and free like any other (std's Rc does)"
    );
}

/// Owners dropped while the thread unwinds from a panic (`resume_unwind`,
/// so no message), first one of two, then the last: each counts one owner
/// fewer, and the last drops the value.
fn rc_drops_while_unwinding() {
    let (value, drops) = tracked();
    let kept = MyRc::new(value);
    let moved = kept.clone();
    let unwound = panic::catch_unwind(panic::AssertUnwindSafe(move || {
        let _held = moved;
        panic::resume_unwind(Box::new(()));
    }));
    assert!(unwound.is_err());
    assert_eq!(
        MyRc::strong_count(&kept),
        1,
        "a clone dropped while its thread unwound from a panic was not \
         counted down: the drop must do its work during unwinding too \
         (thread::panicking() is no reason to skip it)"
    );
    assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while still owned");
    let unwound = panic::catch_unwind(panic::AssertUnwindSafe(move || {
        let _last = kept;
        panic::resume_unwind(Box::new(()));
    }));
    assert!(unwound.is_err());
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the last MyRc, dropped while its thread unwound from a panic, did \
         not drop the value: the drop must do its work during unwinding too"
    );
}

/// A value whose destructor panics, without the panic hook's message
/// (`resume_unwind`).
struct PanicsOnDrop([u8; 512]);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic::resume_unwind(Box::new(self.0[0]));
    }
}

/// A value that needs an address that is a multiple of 64.
#[repr(align(64))]
struct Aligned64([u8; 64]);

fn rc_stays_home() {
    let rc = MyRc::new(5);
    assert_eq!(*rc, 5);
    assert!(
        !is_send!(MyRc<u32>),
        "MyRc is Send, so it could cross to another thread, where two \
         threads could update its plain count at once; keep it !Send (a raw \
         or NonNull pointer does that; Arc inside does not)"
    );
    assert!(
        !is_sync!(MyRc<u32>),
        "MyRc is Sync, so threads could share a &MyRc and clone it at \
         once, updating its plain count together (clone takes &self); keep \
         it !Sync (a raw or NonNull pointer does that, with no unsafe impl)"
    );
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

/// The three balances of a bank of three accounts.
fn balances(bank: &Bank) -> [Option<u64>; 3] {
    [0, 1, 2].map(|account| bank.balance(account))
}

fn moves_money() {
    let bank = Bank::new(&[100, 50, 0]);
    assert_eq!(bank.transfer(0, 2, 30), Ok(()));
    assert_eq!(balances(&bank), [70, 50, 30].map(Some));
    assert_eq!(
        bank.transfer(1, 0, 51),
        Err(TransferError::InsufficientFunds),
        "account 1 holds only 50"
    );
    assert_eq!(
        balances(&bank),
        [70, 50, 30].map(Some),
        "a refused transfer of 51 from account 1 (50) to account 0 (70) \
         must change neither account: refuse before writing either"
    );
    assert_eq!(
        bank.transfer(1, 2, 50),
        Ok(()),
        "account 1 holds exactly 50, so it can pay 50"
    );
    assert_eq!(balances(&bank), [70, 0, 80].map(Some));
    assert_eq!(bank.transfer(0, 9, 1), Err(TransferError::NoSuchAccount));
    for (from, to) in [(0, 9), (2, 9)] {
        assert_eq!(
            bank.transfer(from, to, 1_000),
            Err(TransferError::NoSuchAccount),
            "a transfer of 1000 from {from} to 9: account 9 does not exist, \
             whatever the amount (more than account {from} holds too); \
             check the accounts before the funds"
        );
    }
    for (from, to) in [(0, 9), (9, 0), (9, 9)] {
        assert_eq!(
            bank.transfer(from, to, 0),
            Err(TransferError::NoSuchAccount),
            "a transfer of 0 from {from} to {to}: account 9 does not exist, \
             whatever the amount; check the accounts before anything else"
        );
    }
    assert_eq!(
        bank.transfer(9, 0, 1),
        Err(TransferError::NoSuchAccount),
        "account 9 does not exist, so it cannot pay"
    );
    // Account 3, one past the last of three: the fence post.
    for (from, to) in [(0, 3), (3, 0), (3, 3)] {
        let moved = match panic::catch_unwind(|| bank.transfer(from, to, 1)) {
            Ok(Err(TransferError::NoSuchAccount)) => continue,
            Ok(other) => format!("{other:?}"),
            Err(_) => String::from("a panic"),
        };
        panic!(
            "a transfer of 1 from {from} to {to} in a bank of three \
             accounts (0, 1 and 2) must return Err(NoSuchAccount), not \
             {moved}: account 3 does not exist (an index equal to the \
             number of accounts is already out of bounds: `>=`, not `>`)"
        );
    }
    assert_eq!(
        balances(&bank),
        [70, 0, 80].map(Some),
        "a transfer from or to an account that does not exist changes \
         nothing"
    );
    assert_eq!(bank.balance(9), None);
    assert_eq!(bank.balance(3), None, "account 3 does not exist");
    assert!(
        bank.try_lock_for_tests(9).is_none(),
        "try_lock_for_tests(9) of a bank of three accounts must be None"
    );
    // The balance behind the account's lock is the one `balance` reads and
    // `transfer` moves: no copy kept beside it can go stale.
    *bank
        .try_lock_for_tests(2)
        .expect("try_lock_for_tests: nobody holds account 2") = 60;
    assert_eq!(
        bank.balance(2),
        Some(60),
        "account 2's balance was set to 60 through its lock \
         (try_lock_for_tests), yet balance(2) did not read 60: balance must \
         read the account under its lock, not a copy published beside it \
         (a copy that transfers publish after letting go of the locks can \
         be overwritten by a slower transfer's older numbers, and stay \
         wrong for good)"
    );
    assert_eq!(bank.transfer(2, 0, 60), Ok(()), "account 2 holds 60");
    assert_eq!(balances(&bank), [130, 0, 0].map(Some));
}

/// Eight threads move money back and forth between the same two accounts,
/// four in each direction, restarting together at a barrier for every batch
/// so that opposite transfers keep overlapping. More threads than cores
/// means threads are preempted between their two locks, which is when a
/// bad lock order deadlocks, even on a loaded machine.
fn opposite_transfers_finish() {
    const BATCHES: usize = 100;
    const PER_BATCH: usize = 2_000;
    let bank = Bank::new(&[1_000, 1_000]);
    let directions = [(0, 1), (1, 0)].repeat(4);
    let start = Barrier::new(directions.len());
    thread::scope(|s| {
        for (from, to) in directions {
            let (bank, start) = (&bank, &start);
            s.spawn(move || {
                for _ in 0..BATCHES {
                    start.wait();
                    for _ in 0..PER_BATCH {
                        let _ = bank.transfer(from, to, 7);
                    }
                }
            });
        }
    });
    let total = bank.balance(0).unwrap() + bank.balance(1).unwrap();
    assert_eq!(total, 2_000, "money was created or destroyed");
}

fn self_transfer() {
    let bank = Bank::new(&[40]);
    assert_eq!(bank.transfer(0, 0, 25), Ok(()), "to itself: allowed");
    assert_eq!(bank.balance(0), Some(40), "and changes nothing");
    assert_eq!(
        bank.transfer(0, 0, 41),
        Err(TransferError::InsufficientFunds),
        "still limited by the balance"
    );
}
