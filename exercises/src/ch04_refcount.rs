//! Chapter 4, Why the GIL exists: reference counting: four exercises.
//!
//! Build the reference counts that CPython keeps in every object, first for
//! one thread (`MyRc`), then for many (`MyArc`); keep two numbers consistent
//! under concurrent updates; and move money between accounts with one lock
//! per account without ever deadlocking.
//!
//! - Book: chapter 4, "Why the GIL exists", section "Exercises".
//! - Graded by `exercises/tests/graded/ch04_refcount.rs`:
//!   `cargo course grade ch04`.
//!
//! The tests check behaviour, and where the chapter is about concurrency,
//! that the work really runs concurrently: eight threads clone and drop at
//! once, readers race writers, and four threads transfer money in opposite
//! directions at the same time.

// Compiled while this module is on: `course grade` leaves out, or stubs
// out again, what does not compile, so that it costs only its own points.
#![cfg(module = "ch04_refcount")]

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::MutexGuard;

/// A reference-counted pointer for one thread, like `std::rc::Rc`: clones
/// share one value, which is dropped when the last clone is. Its count is a
/// plain `Cell`, so `MyRc` is neither `Send` nor `Sync`: no other thread
/// may hold one, nor a `&MyRc` (through which it could `clone`).
#[derive(Debug)]
pub struct MyRc<T> {
    // TODO(ch04): a pointer to a heap allocation holding a count and the
    // value. `MyRc` must be neither `Send` nor `Sync` (see the chapter).
    value: PhantomData<T>,
}

impl<T> MyRc<T> {
    /// Moves `value` to the heap with a count of one.
    pub fn new(value: T) -> Self {
        // TODO(ch04): allocate the count and the value.
        let _ = value;
        todo!("ch04: MyRc::new")
    }

    /// How many `MyRc`s point to this value (`sys.getrefcount` minus the
    /// reference the call itself holds).
    pub fn strong_count(this: &Self) -> usize {
        // TODO(ch04): read the count.
        let _ = this.value;
        todo!("ch04: MyRc::strong_count")
    }

    /// Whether two `MyRc`s point to the same value.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        // TODO(ch04): compare the pointers.
        let _ = (a, b);
        todo!("ch04: MyRc::ptr_eq")
    }

    /// For the graded tests only: sets the count, so that a trial can
    /// clone at the limit without cloning `usize::MAX` times first.
    ///
    /// # Safety
    ///
    /// `count` must be at least the number of `MyRc`s pointing to the
    /// value: with fewer, the last of them would be dropped after the value
    /// was freed. (More only leaks the value.)
    #[doc(hidden)]
    pub unsafe fn set_strong_count_for_tests(this: &Self, count: usize) {
        // TODO(ch04): store `count` in the count.
        let _ = (this, count);
        todo!("ch04: MyRc::set_strong_count_for_tests")
    }
}

impl<T> Clone for MyRc<T> {
    /// One more owner. A count already at `usize::MAX` must not wrap to 0:
    /// the process aborts (`std::process::abort`), as with std's `Rc`. Any
    /// smaller count, however large, just goes up by one (only `MyArc`
    /// stops sooner).
    fn clone(&self) -> Self {
        // TODO(ch04): one more owner. A count already at `usize::MAX` must
        // not wrap to 0: abort the process (`std::process::abort`), as
        // std's `Rc` does.
        todo!("ch04: MyRc::clone")
    }
}

impl<T> Deref for MyRc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // TODO(ch04): the shared value.
        todo!("ch04: MyRc::deref")
    }
}

impl<T> Drop for MyRc<T> {
    /// One owner fewer; the last one drops the value and frees the heap
    /// allocation that held it.
    fn drop(&mut self) {
        // TODO(ch04): one owner fewer; the last one drops the value and
        // frees the allocation.
    }
}

/// A reference-counted pointer for many threads, like `std::sync::Arc`.
/// It is `Send` and `Sync` when `T` is both `Send` and `Sync`, and neither
/// otherwise: clones on several threads share `&T` (so `T: Sync`), and the
/// value is dropped on whichever thread lets go last (so `T: Send`).
#[derive(Debug)]
pub struct MyArc<T> {
    // TODO(ch04): like MyRc, with an atomic count from `crate::sync` (so
    // that .ci/loom can check it); `Send` and `Sync` when `T: Send + Sync`.
    value: PhantomData<T>,
}

impl<T> MyArc<T> {
    /// Moves `value` to the heap with a count of one.
    pub fn new(value: T) -> Self {
        // TODO(ch04): allocate the count and the value.
        let _ = value;
        todo!("ch04: MyArc::new")
    }

    /// How many `MyArc`s point to this value right now.
    pub fn strong_count(this: &Self) -> usize {
        // TODO(ch04): read the count.
        let _ = this.value;
        todo!("ch04: MyArc::strong_count")
    }

    /// Whether two `MyArc`s point to the same value.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        // TODO(ch04): compare the pointers.
        let _ = (a, b);
        todo!("ch04: MyArc::ptr_eq")
    }

    /// For the graded tests only: sets the count, so that a trial can
    /// clone at the limit without cloning 2^63 times first.
    ///
    /// # Safety
    ///
    /// `count` must be at least the number of `MyArc`s pointing to the
    /// value, and no other thread may clone or drop one meanwhile: with
    /// fewer, the last of them would be dropped after the value was freed.
    /// (More only leaks the value.)
    #[doc(hidden)]
    pub unsafe fn set_strong_count_for_tests(this: &Self, count: usize) {
        // TODO(ch04): store `count` in the count.
        let _ = (this, count);
        todo!("ch04: MyArc::set_strong_count_for_tests")
    }
}

impl<T> Clone for MyArc<T> {
    fn clone(&self) -> Self {
        // TODO(ch04): one more owner, counted atomically. If the count was
        // already above `isize::MAX`, abort the process (see the chapter:
        // std's `Arc` does the same).
        todo!("ch04: MyArc::clone")
    }
}

impl<T> Deref for MyArc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // TODO(ch04): the shared value.
        todo!("ch04: MyArc::deref")
    }
}

impl<T> Drop for MyArc<T> {
    /// One owner fewer; exactly one of the last owners, even when several
    /// let go at the same moment, drops the value and frees its allocation.
    fn drop(&mut self) {
        // TODO(ch04): one owner fewer, with the orderings the chapter
        // explains; the last one frees the value.
    }
}

/// Request statistics shared by many threads: how many requests, and their
/// total latency. A snapshot must always be consistent: never a count that
/// includes a request whose latency the total does not.
#[derive(Debug, Default)]
pub struct Stats {
    // TODO(ch04): the two numbers, kept consistent.
}

impl Stats {
    /// No requests yet.
    pub fn new() -> Self {
        // TODO(ch04): start at zero.
        todo!("ch04: Stats::new")
    }

    /// Records one request that took `latency_ms`.
    ///
    /// # Panics
    ///
    /// If the total would overflow a `u64`. Neither number changes then,
    /// and the `Stats` stays usable on every thread. Any total that fits in
    /// a `u64` is recorded, however large.
    pub fn record(&self, latency_ms: u64) {
        // TODO(ch04): update both numbers as one step, or neither.
        let _ = latency_ms;
        todo!("ch04: Stats::record")
    }

    /// `(requests, total latency in ms)`, both from the same moment, however
    /// many threads record at once.
    pub fn snapshot(&self) -> (u64, u64) {
        // TODO(ch04): read both numbers as one step.
        todo!("ch04: Stats::snapshot")
    }
}

/// Why a transfer did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferError {
    /// An account number that does not exist.
    NoSuchAccount,
    /// The source account holds less than the amount.
    InsufficientFunds,
}

/// Accounts, each behind a lock of its own, so transfers between different
/// accounts run at the same time: a transfer waits only for those that
/// share an account with it, and waits by blocking on that account's lock.
#[derive(Debug)]
pub struct Bank {
    // TODO(ch04): one lock per account.
}

impl Bank {
    /// A bank with one account per balance.
    ///
    /// # Panics
    ///
    /// If the balances add up to more than `u64::MAX`, in every build: an
    /// overflow check that only debug builds make (`+`, `sum`) is not
    /// enough. Transfers only move money, so then no balance, and no
    /// credit, can ever overflow.
    pub fn new(balances: &[u64]) -> Self {
        // TODO(ch04): one account per balance.
        let _ = balances;
        todo!("ch04: Bank::new")
    }

    /// The balance of one account.
    pub fn balance(&self, account: usize) -> Option<u64> {
        // TODO(ch04): read one account.
        let _ = account;
        todo!("ch04: Bank::balance")
    }

    /// For the graded tests only: the account's lock if no thread holds it
    /// now (`Mutex::try_lock`), else `None`, also for an account that does
    /// not exist or whose lock is poisoned. A trial holds an account with
    /// it to stop a transfer halfway, and looks at the others meanwhile.
    #[doc(hidden)]
    pub fn try_lock_for_tests(
        &self,
        account: usize,
    ) -> Option<MutexGuard<'_, u64>> {
        // TODO(ch04): `try_lock` the account's lock.
        let _ = account;
        todo!("ch04: Bank::try_lock_for_tests")
    }

    /// Moves `amount` from one account to another, atomically: no thread
    /// sees the money in both accounts or in neither. Never deadlocks, even
    /// with transfers in opposite directions at once or `from == to`.
    pub fn transfer(
        &self,
        from: usize,
        to: usize,
        amount: u64,
    ) -> Result<(), TransferError> {
        // TODO(ch04): lock both accounts without risking a deadlock.
        let _ = (from, to, amount);
        todo!("ch04: Bank::transfer")
    }
}
