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
//! once, readers race writers, and eight threads transfer money in opposite
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
///
/// # Graded promises
///
/// - `MyRc::new(value)` has a count of one; each clone counts one more owner
///   and each drop one fewer, as `strong_count` shows. Clones share one value,
///   which `*rc` gives, and `ptr_eq` is true for clones of one `MyRc` and false
///   for two `MyRc`s made apart, even from equal values, and even for a
///   zero-sized value (two `MyRc::new(())`). The value sits at an address
///   aligned for its type, also when that is more than a `usize`'s (a
///   `#[repr(align(64))]` value). Trial: `ch04::my_rc::counts_owners`.
/// - The value is dropped exactly once, when the last owner is dropped and not
///   before, and that last drop also frees the heap allocation: no bytes are
///   left allocated, even when the value's destructor panics (that very
///   panic, its payload unchanged, goes on to the caller, as with std's
///   `Rc`: not another panic raised in its place, not even one with the same
///   message, whose payload is a new `String`; pass a caught panic on with
///   `panic::resume_unwind`), and also for a `MyRc`
///   whose last owner is dropped inside another `MyRc`'s value
///   (`MyRc<MyRc<T>>`).
///   Owners dropped while their thread unwinds from a panic count down, drop
///   and free like any other. Trial:
///   `ch04::my_rc::drops_the_value_once`.
/// - `MyRc` is neither `Send` nor `Sync`, even for a value that is both
///   (`MyRc<u32>`). Trial: `ch04::my_rc::stays_on_one_thread`.
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
    ///
    /// # Graded promises
    ///
    /// - `set_strong_count_for_tests` sets the very count that `strong_count`
    ///   reads and `clone` adds to. Trials:
    ///   `ch04::my_rc::aborts_before_the_count_wraps`,
    ///   `ch04::my_rc::counts_up_to_usize_max`.
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
    ///
    /// Not graded: a check that only debug builds make (`if
    /// cfg!(debug_assertions)`, `debug_assert!`) before a wrapping `+ 1`. The
    /// trials run in a debug build, where it aborts just as a check made in
    /// every build does, so they cannot tell the two apart; it still breaks
    /// this promise, since a release build skips it and wraps the count to 0,
    /// and a clone and its drop then free a value that other `MyRc`s still
    /// point to.
    ///
    /// Not graded either: a count kept in a type wider than `usize` (a `u64`)
    /// that aborts only at that type's maximum. The trials run on a 64-bit
    /// target, where a `u64` is a `usize`, so they cannot tell the two apart;
    /// it still breaks this promise on a 32-bit target, where such a count
    /// goes on past `usize::MAX` and `strong_count` (a truncating `as usize`)
    /// reads it as 0. Keep the count in a `usize`.
    ///
    /// # Graded promises
    ///
    /// - Cloning a `MyRc` whose count is `usize::MAX` aborts the process
    ///   (`std::process::abort`, which ends it by the signal `SIGABRT`, what
    ///   the trial checks: an exit status of 134 is not an abort): it does not
    ///   panic, return, or wrap the count to `0`. Nor does it panic before
    ///   aborting, not even a panic it catches and turns into the abort: an
    ///   overflowing `+ 1` panics only in debug builds, and a release build
    ///   would wrap the count silently.
    ///   Trial: `ch04::my_rc::aborts_before_the_count_wraps`.
    /// - Cloning at any smaller count, even above `isize::MAX` (up to
    ///   `usize::MAX - 1`), returns and makes the count one larger. Trial:
    ///   `ch04::my_rc::counts_up_to_usize_max`.
    fn clone(&self) -> Self {
        let strong = &self.inner().strong;
        // `mem::forget` on clones counts up without ever counting down, so
        // safe code can take the count to `usize::MAX`; one more would wrap
        // it to 0, and a clone and its drop would free a value in use. Like
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
    /// allocation that held it, even if the value's destructor panics.
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
///
/// The trials named `ch04::my_arc::loom_*` below are graded and worth
/// points, but only by `cargo course grade --loom` (`cargo course grade
/// --loom ch04` for this chapter), which builds the crate with
/// `--cfg loom`: `cargo course grade ch04` does not run them, and its
/// table leaves their points out. A wrong memory ordering costs points
/// there, and nowhere else.
///
/// # Graded promises
///
/// - As with `MyRc`: a new `MyArc` has a count of one, a clone adds one and a
///   drop takes one off (`strong_count`), clones share the value, and `ptr_eq`
///   tells clones from `MyArc`s made apart, also of a zero-sized value. Trial:
///   `ch04::my_arc::counts_owners`.
/// - `MyArc<T>` is `Send` and `Sync` when `T` is both (`MyArc<u32>`), and
///   neither when `T` is only `Send` (`Cell<u32>`), only `Sync`
///   (`MutexGuard<u32>`), or neither (`Rc<u32>`). Trial:
///   `ch04::my_arc::shares_only_send_and_sync_values`.
/// - Clones can be moved to other threads and dropped there; the value is
///   dropped exactly once, by whichever owner goes last. Trial:
///   `ch04::my_arc::can_cross_threads`.
/// - Two threads that clone one `MyArc` at the same moment, both reading the
///   count before either writes it, leave it at three, and two that drop a
///   clone each in that order leave it at one; when they are the last two
///   owners, the value is dropped exactly once; eight threads that clone and
///   drop one `MyArc` as fast as they can, all at the same time, lose no
///   update: afterwards the count is back to one, the value was never dropped
///   meanwhile, and it is dropped exactly once with the last owner. Trial:
///   `ch04::my_arc::survives_eight_threads`.
/// - Clones and drops on two threads at once leave the count exact, in every
///   interleaving of the two threads (checked with loom). Trial:
///   `ch04::my_arc::loom_concurrent_clones_are_all_counted`.
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
    ///
    /// # Graded promises
    ///
    /// - `set_strong_count_for_tests` sets the very count that `strong_count`
    ///   reads and `clone` adds to. Trial:
    ///   `ch04::my_arc::aborts_before_the_count_wraps`.
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
    /// One more owner, counted atomically.
    ///
    /// Not graded: a limit that only debug builds check (`if
    /// cfg!(debug_assertions)`, `debug_assert!`), to keep a release build's
    /// clone to one atomic add. The trials run in a debug build, where it
    /// aborts just as a check made in every build does, so they cannot tell
    /// the two apart; it still breaks the promise below, since a release
    /// build lets the count run past `isize::MAX` and, with enough forgotten
    /// clones, wrap to 0, and a clone and its drop then free a value that
    /// other `MyArc`s still point to. Check the limit in every build.
    ///
    /// Not graded either: a limit written in a type of a fixed width
    /// (`i64::MAX as usize`) rather than `isize::MAX`. The trials run on a 64-bit target,
    /// where the two are equal, so they cannot tell them apart; it still
    /// breaks the promise below on a 32-bit target, where `i64::MAX as usize`
    /// truncates to `usize::MAX`, the check never fires, and the count wraps
    /// to 0.
    ///
    /// # Graded promises
    ///
    /// - Cloning a `MyArc` whose count is already above `isize::MAX`, by one or
    ///   by any more up to `usize::MAX`, aborts the process
    ///   (`std::process::abort`, the signal `SIGABRT`, as for `MyRc`): it does
    ///   not panic or return. Trial:
    ///   `ch04::my_arc::aborts_before_the_count_wraps`.
    /// - Cloning at any count up to `isize::MAX` itself, however large, returns
    ///   and makes the count one larger. Trial:
    ///   `ch04::my_arc::counts_up_to_isize_max`.
    /// - When two threads clone a `MyArc` whose count is `isize::MAX` at the
    ///   same moment, one of them aborts the process, in every order, also
    ///   when both read the count before either writes it; and a clone of a
    ///   `MyArc` whose count is above `isize::MAX` aborts also when another
    ///   thread drops a clone right after the clone's increment, before its
    ///   check: the check is on the value the increment itself returned, not
    ///   on the count read again (that drop is forced on x86-64 Linux, where
    ///   the trial can stop the clone right after its increment). Trial:
    ///   `ch04::my_arc::racing_clones_at_the_limit_abort`.
    fn clone(&self) -> Self {
        // Relaxed: a clone is made from a live `MyArc`, so the count is at
        // least one and cannot reach zero meanwhile; nothing else is
        // published by the increment.
        let old = self.inner().strong.fetch_add(1, Ordering::Relaxed);
        // `mem::forget` on clones counts up without ever counting down; a
        // count that wrapped to 0 would let a clone and drop free a value
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
    ///
    /// # Graded promises
    ///
    /// - The last owner's drop also frees the heap allocation that held the
    ///   count and the value: no bytes are left allocated, also for a
    ///   zero-sized value (`MyArc::new(())`), whose allocation still holds
    ///   the count. Trial: `ch04::my_arc::frees_its_allocation`.
    /// - When the last two owners let go at the same moment on two threads,
    ///   exactly one of them drops the value, in every interleaving (checked
    ///   with loom). Trial:
    ///   `ch04::my_arc::loom_the_last_two_owners_drop_the_value_once`.
    /// - Every thread's uses of the value happen before the last owner drops
    ///   it (its destructor included, not only the free) and frees its
    ///   allocation, also for a value without a destructor (a `u32`, a
    ///   reference), whose free is then all that the last owner does: under
    ///   Rust's memory model and not only on x86, in every interleaving
    ///   (checked with loom, which sees only the atomics and fences of
    ///   `crate::sync`: a fence from `std::sync::atomic` orders nothing
    ///   there; loom cannot see the allocator's free itself, so the model
    ///   watches for it and then writes memory that stands for the value's
    ///   bytes, as the allocator reusing them would, on the thread that
    ///   freed them). Trial:
    ///   `ch04::my_arc::loom_the_last_owner_drops_after_every_use`.
    fn drop(&mut self) {
        // Release: this thread's uses of the value happen before the
        // decrement. Its partner is the Acquire fence below, taken by the
        // thread whose decrement reaches zero.
        if self.inner().strong.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Acquire: pairs with every other thread's Release decrement, so
        // all their uses of the value happen before it is dropped and its
        // allocation freed here. Needed for every `T`, also one without a
        // destructor: once freed, the allocator may hand the bytes to a
        // thread that writes them while another still reads the value.
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
/// includes a request whose latency the total does not, nor a total that
/// includes a latency whose request the count does not.
///
/// Use std's `Mutex` (`std::sync::Mutex`) here, as `Bank` must (its
/// `try_lock_for_tests` returns std's guard): `crate::sync` is for the
/// atomics of `MyArc`, which `.ci/loom` model-checks, and no loom model
/// uses a `Stats` or a `Bank`.
///
/// The page's rule that no two records interleave is the simplest way to
/// keep the promises below (one lock around both numbers), not a promise
/// of its own: a `Stats` whose records share a lock and update atomics,
/// each check and update one atomic step, while `snapshot` keeps them all
/// out, keeps them too.
///
/// Not graded: the memory orderings of a `Stats` built from atomics (a
/// seqlock, say). The trials run on x86, whose hardware shows none of the
/// reorderings a weaker ordering allows, and the loom suite cannot model a
/// `Stats` (`crate::sync` has no `AtomicU64`). Such a seqlock is still wrong
/// on other hardware without a `Release` fence after the writer makes the
/// sequence odd and an `Acquire` fence before the reader loads it again;
/// one lock around both numbers needs no orderings at all.
///
/// Not graded either: a count kept in fewer bits than the `u64` that
/// `snapshot` returns (a `u32`). Its `+= 1` panics or wraps after 2^32
/// records, losing them, but no trial can record four billion requests in
/// its time, and nothing lets a trial set the count: keep it in a `u64`.
///
/// Not graded either: a `snapshot` that spins a bounded number of times (on
/// `try_lock`, say) before it sleeps on the lock. The trials tell a reader
/// that spins from one that sleeps by the CPU time it burns meanwhile, which
/// `/proc` counts in hundredths of a second, and on a loaded machine they
/// allow a fifth of a second of it; std's `Mutex::lock` itself spins a
/// hundred rounds or so before it sleeps. A reader that spins for
/// thousands of rounds still breaks the promise on interrupted writers
/// below: against a writer that cannot run (frozen, or preempted on the
/// reader's own CPU), every round is wasted. Sleep on the lock (`lock()`).
///
/// # Graded promises
///
/// - `Stats::new().snapshot()` is `(0, 0)`. While several threads record and
///   several take snapshots, all at the same time, every snapshot has its count
///   and its total from the same moment, and no record is lost. Trial:
///   `ch04::stats::snapshots_are_consistent`.
/// - The same holds while one writer, after a `record` that overflowed and
///   panicked, is frozen by a signal wherever it is, again and again (often
///   halfway through `record`), and while many writers (64, sharing one CPU)
///   are interrupted halfway through `record`: snapshots stay consistent, and
///   `snapshot` either returns or sleeps (on a lock the frozen writer holds):
///   it does not spin waiting for a writer that cannot run, nor poll (sleep
///   a while and try again, with `thread::sleep` or a wait with a timeout),
///   but sleeps in a wait with no timeout, until the writer's unlock wakes it
///   (on Linux, the trial reads the system call it sleeps in). And two
///   readers that go to sleep in `snapshot` while the one writer is frozen
///   inside `record` are both woken when that record ends, though no other
///   record follows: a wakeup that reaches only one sleeper
///   (`Condvar::notify_one` after a write) leaves the other asleep. Nor may
///   the wakeup fall between a reader's last check that a record is under
///   way and its wait: a reader stopped there while the record ends, and
///   let go after, is woken too (the trial stops it at each of its first
///   accesses to the `Stats` in turn). A `notify_all` sent without holding
///   the `Condvar`'s mutex can come while such a reader has checked but not
///   yet begun to wait, and then wakes nobody; notify while holding that
///   mutex, or sleep on the lock around both numbers. Trial:
///   `ch04::stats::consistent_while_writers_are_interrupted`.
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
    /// If the total would overflow a `u64`, in every build: an overflow
    /// check that only debug builds make (`+=`, `debug_assert!`) is not
    /// enough. Neither number changes then, and the `Stats` stays usable on
    /// every thread. Any total that fits in a `u64` is recorded, however
    /// large.
    ///
    /// Not graded: a check of your own that only debug builds make
    /// (`debug_assert!`). The trials run in a debug build, where it panics
    /// just as `assert!` does, so they cannot tell the two apart; it still
    /// breaks this promise, since a release build skips it and wraps the
    /// total.
    ///
    /// Not graded either: a `record` that checks the total under the lock,
    /// lets the lock go, and takes it again to add (a check on `snapshot()`,
    /// say). Two records racing on a nearly full total can then both pass
    /// the check, which breaks the promise on racing overflows below, but
    /// the trials hold a thread only at a write to the `Stats`, and between
    /// reading the total and adding to it such a `record` writes only the
    /// lock, once to let it go and once to take it again: the trials cannot
    /// hold it between the two, so they cannot force that order. Check and
    /// add under one lock.
    ///
    /// # Graded promises
    ///
    /// - A latency that would overflow the total makes `record` panic, with a
    ///   check of its own that release builds make too (not the debug-only
    ///   "attempt to add with overflow"), and changes neither number;
    ///   afterwards `record` and `snapshot` work as before, on any thread:
    ///   also on one already waiting for the lock when `record` panics, and on
    ///   one that finds the lock poisoned while another overflowing `record`
    ///   takes it and panics too. A `record` that panics with its
    ///   guard held poisons the lock, and a thread waiting in `lock()` then
    ///   gets `Err(PoisonError)`, however early the poison is cleared
    ///   (`clear_poison` before `lock().unwrap()` comes too late for it);
    ///   clearing it after that `Err` and locking again leaves a gap for the
    ///   other `record`'s panic. Take the guard out of the error
    ///   (`PoisonError::into_inner`), or let go of the lock before panicking.
    ///   Trial: `ch04::stats::an_overflow_changes_nothing`.
    /// - Any total that fits in a `u64` is recorded, above `u32::MAX` and up to
    ///   `u64::MAX` itself, and a latency of `0` is recorded (one more request)
    ///   even on a total of `u64::MAX`. Trial:
    ///   `ch04::stats::totals_reach_u64_max`.
    /// - Two threads recording at the same moment latencies that fit the total
    ///   one at a time but not together: exactly one of them panics, in every
    ///   order, also when both read the total before either adds to it, and the
    ///   total stays at most `u64::MAX`. Trial:
    ///   `ch04::stats::racing_overflows_are_refused`.
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
    /// overflow check that only debug builds make (`+`, `sum`,
    /// `debug_assert!`) is not enough. Transfers only move money, so then no
    /// balance, and no credit, can ever overflow.
    ///
    /// Not graded: a check of your own that only debug builds make
    /// (`debug_assert!`). The trials run in a debug build, where it panics
    /// just as `assert!` does, so they cannot tell the two apart; it still
    /// breaks this promise, since a release build skips it and makes the
    /// bank.
    ///
    /// # Graded promises
    ///
    /// - Balances that add up to more than `u64::MAX` make `new` panic with a
    ///   check of its own, which release builds make too (not the debug-only
    ///   "attempt to add with overflow"), also when the total wraps and lands
    ///   above every balance (`[2^63, 2^63, 2^63 + 1]`); a total of exactly
    ///   `u64::MAX` is accepted. Trial:
    ///   `ch04::bank::refuses_a_total_over_u64_max`.
    pub fn new(balances: &[u64]) -> Self {
        let total = balances
            .iter()
            .try_fold(0_u64, |sum, &b| sum.checked_add(b));
        assert!(total.is_some(), "the bank's total must fit in a u64");
        Bank {
            accounts: balances.iter().map(|&b| Mutex::new(b)).collect(),
        }
    }

    /// The balance of one account, read under that account's lock alone:
    /// it waits for no other account, so only for a transfer that uses
    /// this one.
    pub fn balance(&self, account: usize) -> Option<u64> {
        let lock = self.accounts.get(account)?;
        Some(*Bank::locked(lock))
    }

    /// For the graded tests only: the account's lock if no thread holds it
    /// now (`Mutex::try_lock`), else `None`, also for an account that does
    /// not exist. A trial holds an account with it to stop a transfer
    /// halfway, and looks at the others meanwhile. (What it gives for a
    /// poisoned lock is not graded: no trial poisons an account. Nor does
    /// any trial set a balance through it that takes the bank's total above
    /// `u64::MAX`.)
    ///
    /// # Graded promises
    ///
    /// - `try_lock_for_tests` gives the account's lock, and through it the
    ///   balance, when no thread holds it, and `None` only while another
    ///   thread holds it: when it says `None`, `balance` of that account, on
    ///   another thread, must wait for the lock too (or show the balance
    ///   unchanged). Trials: `ch04::bank::no_money_in_transit`,
    ///   `ch04::bank::disjoint_transfers_run_at_once`.
    /// - `try_lock_for_tests` of an account that does not exist is `None`. A
    ///   balance set through the lock it gives is the one that `balance` reads
    ///   and `transfer` moves once the lock is let go: `balance` reads the
    ///   account under its lock, not a copy kept beside it. Trial:
    ///   `ch04::bank::moves_money`.
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
    ///
    /// # Graded promises
    ///
    /// - A transfer the source can pay, up to its whole balance, moves `amount`
    ///   and returns `Ok(())`, whatever the amount: above `i64::MAX` too, up to
    ///   `u64::MAX` (an amount is never a negative number). One larger than the
    ///   source's balance returns `Err(TransferError::InsufficientFunds)` and
    ///   leaves both balances as they were, also when the target holds nearly
    ///   the bank's whole total, so that `target + amount` would overflow
    ///   (`Bank::new(&[0, u64::MAX])`, then `transfer(0, 1, 1)`): check the
    ///   source's balance before computing the target's. One from or to an
    ///   account that does not exist, the number of accounts itself too
    ///   (account `3` of three), one from such an account to itself
    ///   (`transfer(3, 3, 1)`), and any account of a bank with no accounts
    ///   (`Bank::new(&[])`), returns `Err(TransferError::NoSuchAccount)`
    ///   without panicking and changes nothing, whatever the amount (`0` too,
    ///   or more than the source holds), and `balance` of such an account is
    ///   `None`. Trial:
    ///   `ch04::bank::moves_money`.
    /// - Many threads transferring between the same two accounts in opposite
    ///   directions, all at the same time, all finish (no deadlock), and no
    ///   money is created or destroyed. Nor can three transfers around a cycle
    ///   (`0` to `1`, `1` to `2`, `2` to `0`) deadlock: stopped one at a time
    ///   on its target account, which the trial holds, at least one of them
    ///   holds no other account while it waits (lock the two accounts in one
    ///   global order; making two opposite transfers take turns is not
    ///   enough). Trial: `ch04::bank::opposite_transfers_finish`.
    /// - A transfer from an account to itself finishes: `Ok(())` with the
    ///   balance unchanged when the balance covers `amount`, up to the whole
    ///   balance as for any transfer, else
    ///   `Err(TransferError::InsufficientFunds)`. Trial:
    ///   `ch04::bank::self_transfer_finishes`.
    /// - A transfer that needs an account another thread holds waits by
    ///   blocking (sleeping) on that account's lock until it is let go, not
    ///   by spinning, nor by sleeping a while and trying again. Meanwhile
    ///   its other account is either locked or still at its old balance: no
    ///   thread sees the money in neither account or in both, whichever account
    ///   is held and whichever the direction. Two transfers out of one account
    ///   that holds enough for only one of them, one of them blocked on its
    ///   target's lock meanwhile, are not both paid: the other goes first and
    ///   the blocked one is refused (or the other way round), and neither
    ///   panics. Check the source's balance under both accounts' locks, right
    ///   before the debit, not before taking them: another transfer can take
    ///   the money in between. Trial:
    ///   `ch04::bank::no_money_in_transit`.
    /// - A transfer waits only for the accounts it uses: while one between
    ///   accounts `0` and `1`, in either direction, is blocked on a held
    ///   account, transfers in both directions between every other pair of a
    ///   bank of 1024 accounts (`2` and `3`, ..., `1022` and `1023`) go
    ///   through, so no lock may be shared by accounts that a transfer does not
    ///   use (one per direction, or one per `n % 4`); and while one from
    ///   account `0` to account `3` is blocked on account `3`, transfers
    ///   between accounts `1` and `2`, which lie between them, go through too.
    ///   Meanwhile `balance` of each of those other accounts returns, on a
    ///   thread that holds the account the blocked transfer waits for:
    ///   `balance` locks only the account it reads. Trial:
    ///   `ch04::bank::disjoint_transfers_run_at_once`.
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
