//! Chapter 6, Fairness: starvation and the new GIL: four exercises.
//!
//! A lock is fair when a thread that waits is eventually served, whoever
//! else keeps asking. Build a spin lock that serves threads in the order
//! they arrive; the hand-off of Python 3.2's new GIL; a heartbeat that
//! keeps beating on a one-thread tokio runtime while CPU-bound work runs;
//! and a read-write lock that a stream of readers cannot starve a writer of.
//!
//! - Book: chapter 6, "Fairness: starvation and the new GIL", section
//!   "Exercises".
//! - Graded by `exercises/tests/graded/ch06_fairness.rs`:
//!   `cargo course grade ch06`. The ticket lock is also model-checked
//!   by loom: see `exercises/tests/loom.rs`.
//!
//! The tests check behaviour, and where the chapter is about concurrency,
//! that the work really runs concurrently: threads queue for the ticket
//! lock while it is held, two CPU-bound threads must take turns under the
//! new GIL, the heartbeat must beat while the work spins, and a writer must
//! get in while a reader always holds the lock. An unfair version times
//! out and is told why.

// Compiled while this module is on: `course grade` leaves out, or stubs
// out again, what does not compile, so that it costs only its own points.
#![cfg(module = "ch06_fairness")]

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// A spin lock that serves threads first come, first served, like the
/// number dispenser at a bakery counter: each thread takes the next ticket
/// and waits until its number is called. No thread can barge in ahead of
/// one that arrived earlier, not even the one that just unlocked.
#[derive(Debug)]
pub struct TicketLock<T> {
    // TODO(ch06): two counters, the next ticket and the ticket now served
    // (`crate::sync::AtomicUsize`, so that .ci/loom can check them), and
    // the value in an `UnsafeCell`. The lock is `Sync` when `T: Send` (an
    // `unsafe impl`: say why it is sound).
    value: PhantomData<T>,
}

impl<T> TicketLock<T> {
    /// A free lock around `value`.
    pub fn new(value: T) -> Self {
        // TODO(ch06): both counters at zero.
        let _ = value;
        todo!("ch06: TicketLock::new")
    }

    /// Takes a ticket and waits until it is served; the lock is held until
    /// the guard is dropped.
    pub fn lock(&self) -> TicketGuard<'_, T> {
        // TODO(ch06): take a ticket in one atomic step, then wait for your
        // number, calling `crate::sync::yield_now` while you wait.
        todo!("ch06: TicketLock::lock")
    }

    /// How many threads hold the lock or wait for it, right now: a snapshot
    /// that may be stale by the time the caller looks at it.
    pub fn queue_len(&self) -> usize {
        // TODO(ch06): tickets taken minus tickets served.
        let _ = self.value;
        todo!("ch06: TicketLock::queue_len")
    }

    /// The value, out of the lock: `self` is owned, so nobody holds it.
    pub fn into_inner(self) -> T {
        // TODO(ch06): `UnsafeCell::into_inner`.
        todo!("ch06: TicketLock::into_inner")
    }
}

/// Access to the value of a [`TicketLock`]; dropping it serves the next
/// ticket.
#[derive(Debug)]
pub struct TicketGuard<'a, T> {
    lock: &'a TicketLock<T>,
    /// Makes the guard `Sync` only when `T` is, as `MutexGuard` is: threads
    /// that share a guard share `&T`. The reference alone would make it
    /// `Sync` whenever `T: Send`, and a `Cell` could then be shared.
    value: PhantomData<&'a mut T>,
}

impl<T> Deref for TicketGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // TODO(ch06): the value, through the `UnsafeCell`.
        let _ = self.lock;
        todo!("ch06: TicketGuard::deref")
    }
}

impl<T> DerefMut for TicketGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // TODO(ch06): the value, mutably.
        todo!("ch06: TicketGuard::deref_mut")
    }
}

impl<T> Drop for TicketGuard<'_, T> {
    fn drop(&mut self) {
        // TODO(ch06): serve the next ticket, publishing your writes to the
        // value to its holder (which ordering?).
    }
}

/// Python 3.2's "new GIL" (`Python/ceval_gil.c`): a thread that has waited
/// a whole switch interval, without seeing any other thread get in, asks
/// the holder to drop the GIL; the holder's next [`NewGilGuard::check`]
/// hands it over and makes sure another thread really took it.
#[derive(Debug)]
pub struct NewGil {
    // TODO(ch06): a Mutex around the state (held or not, how many
    // acquisitions so far, how many waiting, the drop request), a Condvar
    // or two, and the interval. `course::gil` shows one way.
}

impl NewGil {
    /// A free GIL whose waiters ask for a switch after `interval`.
    pub fn new(interval: Duration) -> Self {
        // TODO(ch06): a free GIL.
        let _ = interval;
        todo!("ch06: NewGil::new")
    }

    /// Blocks until this thread holds the GIL, asking the holder to drop it
    /// after every interval in which nobody else got it.
    pub fn acquire(&self) -> NewGilGuard<'_> {
        // TODO(ch06): while the GIL is held, wait with `wait_timeout`; if
        // a wait times out and nobody took the GIL meanwhile, set the drop
        // request. Then take it (and reset the request).
        todo!("ch06: NewGil::acquire")
    }

    /// Whether a waiter has asked the holder to drop the GIL and the holder
    /// has not done so yet.
    pub fn drop_requested(&self) -> bool {
        // TODO(ch06): read the request.
        todo!("ch06: NewGil::drop_requested")
    }

    /// How many threads are waiting to take the GIL right now. A thread in
    /// [`NewGilGuard::check`] counts once another thread has taken the GIL
    /// and it waits to take it back.
    pub fn waiting(&self) -> usize {
        // TODO(ch06): count them in acquire.
        todo!("ch06: NewGil::waiting")
    }
}

/// Proof that this thread holds a [`NewGil`]; dropping it releases the GIL.
#[derive(Debug)]
pub struct NewGilGuard<'g> {
    gil: &'g NewGil,
}

impl NewGilGuard<'_> {
    /// What CPython's eval loop does between bytecodes: if a waiter asked
    /// for the GIL, resets the request, releases the GIL, waits until
    /// another thread has taken it (however long that takes: not just an
    /// interval), then waits to take it back like any other waiter.
    /// Without a request, returns at once, GIL held.
    pub fn check(&mut self) {
        // TODO(ch06): no request, nothing to do. Otherwise release, wait
        // until the number of acquisitions has moved on, then take the GIL
        // as acquire does.
        let _ = self.gil;
        todo!("ch06: NewGilGuard::check")
    }
}

impl Drop for NewGilGuard<'_> {
    fn drop(&mut self) {
        // TODO(ch06): release the GIL and wake the waiters.
    }
}

/// Runs `work` on a thread of tokio's blocking pool and calls `beat` once
/// every `period` while it runs, the first time at once; returns what
/// `work` returned. If `work` panics, the panic goes on from here with its
/// original payload.
///
/// Beats are never less than `period` apart. If something holds the
/// runtime up past a beat (a long `beat`, or another task that blocks the
/// thread), that beat comes late, as soon as the loop runs again, and the
/// next one a full `period` after it: the beats missed meanwhile are not
/// made up in a burst.
pub async fn with_heartbeat<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
    period: Duration,
    beat: impl FnMut(),
) -> T {
    // TODO(ch06): run `work` with `tokio::task::spawn_blocking`, and
    // `tokio::select!` between its handle and the ticks of a
    // `tokio::time::interval` (mind its `MissedTickBehavior`); resume a
    // panic with its own payload.
    let _ = (work, period, beat);
    todo!("ch06: with_heartbeat")
}

/// A read-write lock that prefers writers: once a writer waits, new readers
/// wait behind it, so a stream of readers cannot starve it. (A stream of
/// writers can starve the readers instead.)
///
/// `std::sync::RwLock` leaves the policy to the platform: "a writer which
/// is waiting to acquire the lock in `write` might or might not block
/// concurrent calls to `read`". This one promises it.
#[derive(Debug)]
pub struct FairRwLock<T> {
    // TODO(ch06): a Mutex around the state (readers inside, a writer
    // inside or not, writers waiting), a Condvar or two, and the value in
    // an `UnsafeCell`. The lock is `Sync` when `T: Send + Sync` (an
    // `unsafe impl`: say why it is sound).
    value: PhantomData<T>,
}

impl<T> FairRwLock<T> {
    /// A free lock around `value`.
    pub fn new(value: T) -> Self {
        // TODO(ch06): no readers, no writer.
        let _ = value;
        todo!("ch06: FairRwLock::new")
    }

    /// Shared access: waits while a writer holds the lock or waits for it.
    pub fn read(&self) -> ReadGuard<'_, T> {
        // TODO(ch06): wait while a writer is inside or waiting.
        todo!("ch06: FairRwLock::read")
    }

    /// Shared access if it can be had at once: `None` while a writer holds
    /// the lock or waits for it.
    pub fn try_read(&self) -> Option<ReadGuard<'_, T>> {
        // TODO(ch06): the test of `read`, without the wait.
        todo!("ch06: FairRwLock::try_read")
    }

    /// Exclusive access: waits until no reader and no writer holds the
    /// lock, keeping new readers out meanwhile.
    pub fn write(&self) -> WriteGuard<'_, T> {
        // TODO(ch06): count yourself as waiting, wait until nobody is
        // inside, then go in.
        todo!("ch06: FairRwLock::write")
    }

    /// How many writers are waiting in [`FairRwLock::write`] right now; a
    /// writer that holds the lock no longer counts.
    pub fn writers_waiting(&self) -> usize {
        // TODO(ch06): read the count.
        let _ = self.value;
        todo!("ch06: FairRwLock::writers_waiting")
    }
}

/// Shared access to the value of a [`FairRwLock`].
#[derive(Debug)]
pub struct ReadGuard<'a, T> {
    lock: &'a FairRwLock<T>,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // TODO(ch06): the value, shared.
        let _ = self.lock;
        todo!("ch06: ReadGuard::deref")
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        // TODO(ch06): one reader fewer; the last one lets a writer in.
    }
}

/// Exclusive access to the value of a [`FairRwLock`].
#[derive(Debug)]
pub struct WriteGuard<'a, T> {
    lock: &'a FairRwLock<T>,
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // TODO(ch06): the value.
        let _ = self.lock;
        todo!("ch06: WriteGuard::deref")
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // TODO(ch06): the value, mutably.
        todo!("ch06: WriteGuard::deref_mut")
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // TODO(ch06): the writer is out: wake a waiting writer first, or
        // else every waiting reader.
    }
}
