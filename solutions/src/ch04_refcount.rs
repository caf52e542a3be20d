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
use std::ptr::NonNull;
use std::sync::Mutex;

use crate::sync::{AtomicUsize, Ordering, fence};

/// The shared allocation behind a [`MyRc`]: the count and the value.
struct RcInner<T> {
    strong: Cell<usize>,
    value: T,
}

/// A reference-counted pointer for one thread, like `std::rc::Rc`: clones
/// share one value, which is dropped when the last clone is.
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

    fn inner(&self) -> &RcInner<T> {
        // SAFETY: the allocation lives while any `MyRc` points to it, and
        // `self` is one of them.
        unsafe { self.inner.as_ref() }
    }
}

impl<T> Clone for MyRc<T> {
    fn clone(&self) -> Self {
        let strong = &self.inner().strong;
        strong.set(strong.get() + 1);
        MyRc {
            inner: self.inner,
            owns: PhantomData,
        }
    }
}

impl<T> Drop for MyRc<T> {
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

    fn inner(&self) -> &ArcInner<T> {
        // SAFETY: the allocation lives while any `MyArc` points to it.
        unsafe { self.inner.as_ref() }
    }
}

impl<T> Clone for MyArc<T> {
    fn clone(&self) -> Self {
        // Relaxed: a clone is made from a live `MyArc`, so the count is at
        // least one and cannot reach zero meanwhile; nothing else is
        // published by the increment.
        self.inner().strong.fetch_add(1, Ordering::Relaxed);
        MyArc {
            inner: self.inner,
            owns: PhantomData,
        }
    }
}

impl<T> Drop for MyArc<T> {
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
    pub fn record(&self, latency_ms: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.0 += 1;
        inner.1 += latency_ms;
    }

    /// `(requests, total latency in ms)`, both from the same moment.
    pub fn snapshot(&self) -> (u64, u64) {
        *self.inner.lock().unwrap_or_else(|e| e.into_inner())
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
/// accounts run at the same time.
#[derive(Debug)]
pub struct Bank {
    accounts: Vec<Mutex<u64>>,
}

impl Bank {
    /// A bank with one account per balance.
    pub fn new(balances: &[u64]) -> Self {
        Bank {
            accounts: balances.iter().map(|&b| Mutex::new(b)).collect(),
        }
    }

    /// The balance of one account.
    pub fn balance(&self, account: usize) -> Option<u64> {
        let lock = self.accounts.get(account)?;
        Some(*lock.lock().unwrap_or_else(|e| e.into_inner()))
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
            let balance = self.accounts[from].lock().unwrap();
            return if *balance >= amount {
                Ok(())
            } else {
                Err(TransferError::InsufficientFunds)
            };
        }
        // Every thread takes the two locks in the same order (lower account
        // first), so no two threads can each hold the lock the other needs.
        let (first, second) = (from.min(to), from.max(to));
        let mut low = self.accounts[first].lock().unwrap();
        let mut high = self.accounts[second].lock().unwrap();
        let (source, target) = if from < to {
            (&mut *low, &mut *high)
        } else {
            (&mut *high, &mut *low)
        };
        if *source < amount {
            return Err(TransferError::InsufficientFunds);
        }
        *source -= amount;
        *target += amount;
        Ok(())
    }
}
