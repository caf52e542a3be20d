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

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::process;
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::sync::{AtomicUsize, Ordering, fence};

/// The shared allocation behind a [`MyRc`]: the count and the value.
struct RcInner<T> {
    strong: Cell<usize>,
    value: T,
}

/// A reference-counted pointer for one thread, like `std::rc::Rc`: clones
/// share one value, which is dropped when the last clone is. Its count is a
/// plain `Cell`, so `MyRc` is neither `Send` nor `Sync`: no other thread
/// may hold one, nor a `&MyRc` (through which it could `clone`).
pub struct MyRc<T> {
    /// `NonNull` is neither `Send` nor `Sync`, so neither is `MyRc`: the
    /// compiler keeps it on one thread, where `Cell` needs no atomics.
    inner: NonNull<RcInner<T>>,
    /// Tells the compiler that a `MyRc` owns (and may drop) an `RcInner`.
    owns: PhantomData<RcInner<T>>,
}

impl<T> MyRc<T> {
    /// Moves `value` to the heap with a count of one.
    pub fn new(value: T) -> Self {
        let inner = Box::new(RcInner {
            strong: Cell::new(1),
            value,
        });
        MyRc {
            inner: NonNull::from(Box::leak(inner)),
            owns: PhantomData,
        }
    }

    /// How many `MyRc`s point to this value (`sys.getrefcount` minus the
    /// reference the call itself holds).
    pub fn strong_count(this: &Self) -> usize {
        this.inner().strong.get()
    }

    /// Whether two `MyRc`s point to the same value.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.inner == b.inner
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
        this.inner().strong.set(count);
    }

    fn inner(&self) -> &RcInner<T> {
        // SAFETY: the allocation lives while any `MyRc` points to it, and
        // `self` is one of them.
        unsafe { self.inner.as_ref() }
    }
}

impl<T> Clone for MyRc<T> {
    /// One more owner. A count already at `usize::MAX` must not wrap to 0:
    /// the process aborts (`std::process::abort`), as with std's `Rc`. Any
    /// smaller count, however large, just goes up by one (only `MyArc`
    /// stops sooner).
    fn clone(&self) -> Self {
        let strong = &self.inner().strong;
        // `mem::forget` on clones counts up without ever counting down, so
        // safe code can take the count to `usize::MAX`; one more would wrap
        // it to 0, and the next drop would free a value still in use. Like
        // std's `Rc`, abort instead (a plain `+ 1` panics in a debug build
        // but wraps silently in a release build).
        let count = strong.get().checked_add(1);
        strong.set(count.unwrap_or_else(|| process::abort()));
        MyRc {
            inner: self.inner,
            owns: PhantomData,
        }
    }
}

impl<T> Drop for MyRc<T> {
    /// One owner fewer; the last one drops the value and frees the heap
    /// allocation that held it.
    fn drop(&mut self) {
        let strong = &self.inner().strong;
        strong.set(strong.get() - 1);
        if strong.get() == 0 {
            // SAFETY: the count reached zero, so this was the last pointer;
            // the allocation came from `Box::leak` in `new`.
            drop(unsafe { Box::from_raw(self.inner.as_ptr()) });
        }
    }
}

impl<T> Deref for MyRc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T: fmt::Debug> fmt::Debug for MyRc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The shared allocation behind a [`MyArc`].
struct ArcInner<T> {
    strong: AtomicUsize,
    value: T,
}

/// A reference-counted pointer for many threads, like `std::sync::Arc`.
/// It is `Send` and `Sync` when `T` is both `Send` and `Sync`, and neither
/// otherwise: clones on several threads share `&T` (so `T: Sync`), and the
/// value is dropped on whichever thread lets go last (so `T: Send`).
pub struct MyArc<T> {
    inner: NonNull<ArcInner<T>>,
    /// Tells the compiler that a `MyArc` owns (and may drop) an `ArcInner`.
    owns: PhantomData<ArcInner<T>>,
}

// SAFETY: a `MyArc<T>` hands out `&T` on any thread and drops `T` on
// whichever thread lets go last, so sending one needs `T: Send + Sync`.
unsafe impl<T: Send + Sync> Send for MyArc<T> {}
// SAFETY: sharing `&MyArc<T>` lets other threads clone it, which has the
// same requirements as sending it.
unsafe impl<T: Send + Sync> Sync for MyArc<T> {}

impl<T> MyArc<T> {
    /// Moves `value` to the heap with a count of one.
    pub fn new(value: T) -> Self {
        let inner = Box::new(ArcInner {
            strong: AtomicUsize::new(1),
            value,
        });
        MyArc {
            inner: NonNull::from(Box::leak(inner)),
            owns: PhantomData,
        }
    }

    /// How many `MyArc`s point to this value right now.
    pub fn strong_count(this: &Self) -> usize {
        // Only a snapshot: other threads may change it at once.
        this.inner().strong.load(Ordering::Relaxed)
    }

    /// Whether two `MyArc`s point to the same value.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.inner == b.inner
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
        this.inner().strong.store(count, Ordering::Relaxed);
    }

    fn inner(&self) -> &ArcInner<T> {
        // SAFETY: the allocation lives while any `MyArc` points to it.
        unsafe { self.inner.as_ref() }
    }
}

/// A clone that finds more owners than this aborts, as std's `Arc` does.
const MAX_REFCOUNT: usize = isize::MAX as usize;

impl<T> Clone for MyArc<T> {
    fn clone(&self) -> Self {
        // Relaxed: a clone is made from a live `MyArc`, so the count is at
        // least one and cannot reach zero meanwhile; nothing else is
        // published by the increment.
        let old = self.inner().strong.fetch_add(1, Ordering::Relaxed);
        // `mem::forget` on clones counts up without ever counting down; a
        // count that wrapped to 0 would let the next drop free a value
        // still in use. The increment has already happened, and other
        // threads may be incrementing too, so check far from the edge: to
        // wrap a count found above `isize::MAX`, about 2^63 threads would
        // have to be between their increment and this check at once. Abort
        // rather than panic: a panic unwinds only this thread, slowly, and
        // can be caught, while the others go on cloning.
        if old > MAX_REFCOUNT {
            process::abort();
        }
        MyArc {
            inner: self.inner,
            owns: PhantomData,
        }
    }
}

impl<T> Drop for MyArc<T> {
    /// One owner fewer; exactly one of the last owners, even when several
    /// let go at the same moment, drops the value and frees its allocation.
    fn drop(&mut self) {
        // Release: this thread's uses of the value happen before the
        // decrement. Its partner is the Acquire fence below, taken by the
        // thread whose decrement reaches zero.
        if self.inner().strong.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Acquire: pairs with every other thread's Release decrement, so
        // all their uses of the value happen before it is dropped here.
        fence(Ordering::Acquire);
        // SAFETY: the count reached zero: no other pointer exists, and the
        // fence orders every earlier use before this drop.
        drop(unsafe { Box::from_raw(self.inner.as_ptr()) });
    }
}

impl<T> Deref for MyArc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T: fmt::Debug> fmt::Debug for MyArc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Request statistics shared by many threads: how many requests, and their
/// total latency. A snapshot must always be consistent: never a count that
/// includes a request whose latency the total does not.
#[derive(Debug, Default)]
pub struct Stats {
    /// Both numbers under one lock: two separate atomics could each be
    /// right and still be read between one update and the other.
    inner: Mutex<(u64, u64)>,
}

impl Stats {
    /// No requests yet.
    pub fn new() -> Self {
        Stats::default()
    }

    /// Records one request that took `latency_ms`.
    ///
    /// # Panics
    ///
    /// If the total would overflow a `u64`. Neither number changes then,
    /// and the `Stats` stays usable on every thread. Any total that fits in
    /// a `u64` is recorded, however large.
    pub fn record(&self, latency_ms: u64) {
        let mut inner = self.lock();
        // Everything that can fail comes before the first write, so that a
        // panic cannot leave the count updated and the total not.
        let (Some(count), Some(total)) =
            (inner.0.checked_add(1), inner.1.checked_add(latency_ms))
        else {
            // Let go first: a panic while holding the guard would poison
            // the lock, a warning that the pair may be half-written, which
            // it is not.
            drop(inner);
            panic!("the total latency overflowed a u64 (+{latency_ms} ms)");
        };
        *inner = (count, total);
    }

    /// `(requests, total latency in ms)`, both from the same moment, however
    /// many threads record at once.
    pub fn snapshot(&self) -> (u64, u64) {
        *self.lock()
    }

    /// The pair, locked. Poison means a thread panicked while holding the
    /// guard; `record` never does, and the pair is only ever written whole,
    /// so even a poisoned lock would hold a consistent pair: take it.
    fn lock(&self) -> MutexGuard<'_, (u64, u64)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
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
    accounts: Vec<Mutex<u64>>,
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
        let total = balances
            .iter()
            .try_fold(0_u64, |sum, &b| sum.checked_add(b));
        assert!(total.is_some(), "the bank's total must fit in a u64");
        Bank {
            accounts: balances.iter().map(|&b| Mutex::new(b)).collect(),
        }
    }

    /// The balance of one account.
    pub fn balance(&self, account: usize) -> Option<u64> {
        let lock = self.accounts.get(account)?;
        Some(*Bank::locked(lock))
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
        self.accounts.get(account)?.try_lock().ok()
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
        let n = self.accounts.len();
        if from >= n || to >= n {
            return Err(TransferError::NoSuchAccount);
        }
        if from == to {
            // One lock only: locking a std Mutex twice on one thread would
            // wait forever.
            let balance = Bank::locked(&self.accounts[from]);
            return if *balance >= amount {
                Ok(())
            } else {
                Err(TransferError::InsufficientFunds)
            };
        }
        // Every thread takes the two locks in the same order (lower account
        // first), so no two threads can each hold the lock the other needs.
        let (first, second) = (from.min(to), from.max(to));
        let mut low = Bank::locked(&self.accounts[first]);
        let mut high = Bank::locked(&self.accounts[second]);
        let (source, target) = if from < to {
            (&mut *low, &mut *high)
        } else {
            (&mut *high, &mut *low)
        };
        // Every check before the first write: a refused transfer changes
        // nothing.
        if *source < amount {
            return Err(TransferError::InsufficientFunds);
        }
        *source -= amount;
        // Cannot overflow: the two accounts held at least `target + amount`
        // before the debit, and at most the bank's total, which `new`
        // checked fits in a u64.
        *target += amount;
        Ok(())
    }

    /// One account, locked. A lock is poisoned when a thread panics while
    /// holding it; nothing here can (the arithmetic cannot overflow, see
    /// `new`), so poison would mean a transfer stopped between its debit
    /// and its credit, with money missing. Unlike `Stats`, whose pair is
    /// always written whole, the bank cannot vouch for its balances then,
    /// so it panics rather than go on with them.
    fn locked(account: &Mutex<u64>) -> MutexGuard<'_, u64> {
        account.lock().unwrap_or_else(|_| {
            panic!("an account's lock is poisoned: a transfer was cut short")
        })
    }
}
