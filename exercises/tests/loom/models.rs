//! Loom models of `ToyGil` (chapter 3), `MyArc` (chapter 4) and
//! `TicketLock` (chapter 6): every interleaving of two threads (up to
//! loom's preemption bound) is run.
//! `MyArc` must drop the value exactly once, after every use, with the
//! count right; `TicketLock` must order each holder's accesses to the value
//! before the next holder's. A `Relaxed` decrement or unlock, or a
//! load-then-store count or ticket, fails here even where the graded tests
//! pass.
//!
//! Each model is a graded trial of `../loom.rs`: `cargo course grade
//! --loom`, or `.ci/loom` for the solutions and the loom mutants.

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

use exercises::ch04_refcount::MyArc;
use exercises::ch06_fairness::TicketLock;

/// A value whose reads and final write loom watches: a read that does not
/// happen before the drop's write is reported as a data race.
struct Page(UnsafeCell<u64>);

// SAFETY: threads only read the cell while they hold a `MyArc`; the one
// write is in `drop`, which runs when no `MyArc` is left.
unsafe impl Sync for Page {}

impl Page {
    fn read(&self) -> u64 {
        // SAFETY: see the `Sync` impl: no write can run concurrently.
        self.0.with(|value| unsafe { *value })
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: the last owner, alone.
        self.0.with_mut(|value| unsafe { *value = 0 });
    }
}

/// The value is used on both threads and dropped by whichever lets go
/// last: every use must happen before the drop. Then the same with a value
/// that has no destructor, so that freeing its allocation is all the last
/// owner does: every use must happen before the free too.
pub(crate) fn the_last_owner_drops_after_every_use() {
    loom::model(|| {
        let page = MyArc::new(Page(UnsafeCell::new(7)));
        let other = page.clone();
        let reader = thread::spawn(move || {
            assert_eq!(other.read(), 7);
        });
        assert_eq!(page.read(), 7);
        drop(page);
        reader.join().unwrap();
    });
    loom::model(|| {
        // Leaked: the value borrows it on both threads, for `'static`.
        let memory: &'static Memory =
            Box::leak(Box::new(Memory(UnsafeCell::new(7))));
        let mine = MyArc::new(memory);
        free_watch::watch(&*mine);
        let theirs = mine.clone();
        let reader = thread::spawn(move || {
            assert_eq!(theirs.read(), 7);
            drop(theirs);
            if free_watch::freed() {
                memory.reuse();
            }
        });
        assert_eq!(mine.read(), 7);
        drop(mine);
        if free_watch::freed() {
            memory.reuse();
        }
        reader.join().unwrap();
    });
}

/// Memory that a value without a destructor (`&Memory`) reads, standing
/// for the value's own bytes: loom cannot see reads of plain memory, nor
/// the allocator's free, but it sees these. Once its allocation is freed,
/// the allocator may hand the bytes to any thread, which writes them:
/// `reuse` is that write, by the thread that freed it. A read that does
/// not happen before the free is then reported as a data race.
struct Memory(UnsafeCell<u64>);

// SAFETY: threads only read the cell while they hold a `MyArc`; the one
// write is by the thread that freed the last `MyArc`'s allocation.
unsafe impl Sync for Memory {}

impl Memory {
    fn read(&self) -> u64 {
        // SAFETY: see the `Sync` impl: no write can run concurrently.
        self.0.with(|value| unsafe { *value })
    }

    fn reuse(&self) {
        // SAFETY: see the `Sync` impl; whether the free really comes after
        // every read is what loom checks.
        self.0.with_mut(|value| unsafe { *value = 0 });
    }
}

/// Which thread freed the allocation of a `MyArc`'s value: this test
/// binary's allocator, which is the system's, notes when the block that
/// holds the watched address is freed.
mod free_watch {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// The address of the watched value; 0 for none.
    static WATCHED: AtomicUsize = AtomicUsize::new(0);
    /// Whether the block holding it was freed and nobody asked since.
    static FREED: AtomicBool = AtomicBool::new(false);

    /// Watches the block that holds `value` (until another is watched).
    pub(super) fn watch<T>(value: &T) {
        FREED.store(false, Ordering::SeqCst);
        WATCHED.store(std::ptr::from_ref(value).addr(), Ordering::SeqCst);
    }

    /// Whether the watched block was freed since the last call. Loom runs
    /// its threads one at a time and switches only at its own operations,
    /// and a `MyArc`'s drop ends with the free: right after a drop, this
    /// says whether that very drop freed it.
    pub(super) fn freed() -> bool {
        FREED.swap(false, Ordering::SeqCst)
    }

    /// The system's allocator, noting frees of the watched block.
    struct Watching;

    // SAFETY: every call goes to the system's allocator unchanged.
    unsafe impl GlobalAlloc for Watching {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller's promises are `System`'s.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
            let watched = WATCHED.load(Ordering::SeqCst);
            let start = block.addr();
            if watched != 0 && (start..start + layout.size()).contains(&watched)
            {
                WATCHED.store(0, Ordering::SeqCst);
                FREED.store(true, Ordering::SeqCst);
            }
            // SAFETY: the caller's promises are `System`'s.
            unsafe { System.dealloc(block, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Watching = Watching;
}

/// Clones and drops on two threads at once leave the count exact.
pub(crate) fn concurrent_clones_are_all_counted() {
    loom::model(|| {
        let shared = MyArc::new(5_u8);
        let theirs = shared.clone();
        let other = thread::spawn(move || {
            let again = theirs.clone();
            drop(again);
            drop(theirs);
        });
        let mine = shared.clone();
        drop(mine);
        other.join().unwrap();
        assert_eq!(MyArc::strong_count(&shared), 1);
    });
}

/// A tally that lives inside a `TicketLock`: loom reports two increments
/// that do not happen one before the other as a data race.
struct Tally(UnsafeCell<u64>);

impl Tally {
    fn add_one(&mut self) {
        // SAFETY: `&mut self` comes from a held `TicketGuard`; whether the
        // lock really orders the holders is what loom checks.
        self.0.with_mut(|count| unsafe { *count += 1 });
    }
}

/// Two threads each lock and add one: both increments land, and each
/// holder's write happens before the next holder's read. At most 100 steps
/// per interleaving (the reference solution takes about 35): a waiter that
/// yields at every turn of its wait lets the holder run at once, while one
/// that spins several turns between yields, in the interleaving where loom
/// lets it spin, takes more and fails. Then a waiter that looks twice between
/// two yields: see [`a_waiter_yields_after_every_look`].
pub(crate) fn ticket_lock_orders_the_holders() {
    let mut model = loom::model::Builder::new();
    model.max_branches = 100;
    model.check(|| {
        let lock = Arc::new(TicketLock::new(Tally(UnsafeCell::new(0))));
        let theirs = Arc::clone(&lock);
        let other = thread::spawn(move || theirs.lock().add_one());
        lock.lock().add_one();
        other.join().unwrap();
        assert_eq!(lock.queue_len(), 0, "both have let go");
        let mut tally = lock.lock();
        tally.add_one();
        // SAFETY: this thread holds the lock, and the other has ended.
        let total = tally.0.with(|count| unsafe { *count });
        assert_eq!(total, 3, "every holder's increment landed");
    });
    a_waiter_yields_after_every_look();
}

/// How many times the holder yields before it unlocks, in
/// [`a_waiter_yields_after_every_look`].
const HOLDER_YIELDS: usize = 50;

/// One thread holds the lock and yields [`HOLDER_YIELDS`] times before it
/// unlocks, while another waits: each of the holder's yields gives the
/// waiter one turn. The reference solution takes about 4 loom steps for each
/// (the holder's yield, the waiter's look and its yield), 222 in all; a
/// waiter that looks twice between two of its yields takes about 6, 324 in
/// all. The model allows 270, so that a right waiter may take a step or two
/// more than the reference (a first look before its loop, say) but not one
/// more look at every turn.
fn a_waiter_yields_after_every_look() {
    let mut model = loom::model::Builder::new();
    model.max_branches = 270;
    model.check(|| {
        let lock = Arc::new(TicketLock::new(0_u8));
        let held = lock.lock();
        let theirs = Arc::clone(&lock);
        let waiter = thread::spawn(move || drop(theirs.lock()));
        for _ in 0..HOLDER_YIELDS {
            thread::yield_now();
        }
        drop(held);
        waiter.join().unwrap();
    });
}

// Chapter 3: `ToyGil`. Everything the interpreter's data needs is that
// the GIL orders each holder's accesses before the next holder's; a spin
// lock with `Relaxed` orderings lets only one thread in at a time, yet
// orders nothing, and fails here.

use exercises::ch03_gil::ToyGil;

/// An interpreter: objects that only its GIL protects. Loom reports two
/// accesses to them that the GIL does not order as a data race.
struct Interpreter {
    gil: ToyGil,
    objects: UnsafeCell<u64>,
}

// SAFETY: the objects are only touched inside `gil.with_gil`; whether the
// GIL really orders the threads that do so is what loom checks.
unsafe impl Sync for Interpreter {}

impl Interpreter {
    /// Runs one "bytecode" that changes an object, holding the GIL.
    fn increment(&self) {
        // SAFETY: see the `Sync` impl: only while holding the GIL.
        self.gil
            .with_gil(|| self.objects.with_mut(|count| unsafe { *count += 1 }));
    }

    /// Reads the object, holding the GIL.
    fn read(&self) -> u64 {
        // SAFETY: see the `Sync` impl: only while holding the GIL.
        self.gil
            .with_gil(|| self.objects.with(|count| unsafe { *count }))
    }
}

/// Two threads each run a bytecode under the GIL: both increments land,
/// and each holder's write happens before the next holder's read.
pub(crate) fn toy_gil_orders_the_holders() {
    loom::model(|| {
        let interpreter = Arc::new(Interpreter {
            gil: ToyGil::new(),
            objects: UnsafeCell::new(0),
        });
        let theirs = Arc::clone(&interpreter);
        let other = thread::spawn(move || theirs.increment());
        interpreter.increment();
        other.join().unwrap();
        assert_eq!(interpreter.read(), 2, "every holder's increment landed");
    });
}

/// One thread locks and unlocks twice while another reads `queue_len`:
/// whatever the moment, the count never wraps around. It is at most 2, the
/// tickets the other thread draws: that thread can take its second ticket
/// between the two loads, so even a right count can say 2 with one thread.
/// Tickets served read after tickets taken could exceed them, and so could
/// tickets taken read stale after tickets served, if nothing orders the
/// second load after the first (`Relaxed` on both).
pub(crate) fn ticket_lock_queue_len_counts_at_most_the_threads() {
    loom::model(|| {
        let lock = Arc::new(TicketLock::new(0_u8));
        let theirs = Arc::clone(&lock);
        let other = thread::spawn(move || {
            drop(theirs.lock());
            drop(theirs.lock());
        });
        // Lets the other thread run first (loom still preempts it at every
        // step): without this, loom never has the `Relaxed` load of
        // `now_serving` see the other thread's unlocks and then the load of
        // `next_ticket` an older ticket, the stale read it allows.
        thread::yield_now();
        let seen = lock.queue_len();
        other.join().unwrap();
        assert!(
            seen <= 2,
            "queue_len was {seen} while one other thread took two tickets: \
             it wrapped around. Read now_serving first, with Acquire, so \
             that the load of next_ticket after it sees every ticket served"
        );
    });
}

/// The lock is held at every moment while a third thread reads
/// `queue_len`: this thread holds it, another draws the next ticket and
/// holds it in turn until the reading is done. The count is at least 1
/// whenever the loads run, so `queue_len` says at least 1. Tickets taken
/// read before tickets served can pair an old `next_ticket` with a newer
/// `now_serving` (the hand-over between the loads), and say 0 however the
/// difference is clamped. The next holder, once in, reads exactly 1: a
/// count of its own that a guard lowers only after serving the next ticket
/// still counts the last holder then.
pub(crate) fn ticket_lock_queue_len_counts_a_held_lock() {
    loom::model(|| {
        let lock = Arc::new(TicketLock::new(0_u8));
        let read = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let held = lock.lock();
        let reader = {
            let (lock, read) = (Arc::clone(&lock), Arc::clone(&read));
            thread::spawn(move || {
                let seen = lock.queue_len();
                read.store(true, loom::sync::atomic::Ordering::SeqCst);
                seen
            })
        };
        let next = {
            let (lock, read) = (Arc::clone(&lock), Arc::clone(&read));
            thread::spawn(move || {
                let _held = lock.lock();
                // Held by this thread alone, with nobody else drawing a
                // ticket: exactly 1, even if the last holder has not yet
                // returned from its guard's `drop`.
                let mine = lock.queue_len();
                while !read.load(loom::sync::atomic::Ordering::SeqCst) {
                    thread::yield_now();
                }
                mine
            })
        };
        // Hands over only once the next thread has its ticket: the lock
        // is held at every moment until the reader is done.
        while lock.queue_len() < 2 {
            thread::yield_now();
        }
        drop(held);
        let seen = reader.join().unwrap();
        let mine = next.join().unwrap();
        assert_eq!(
            mine, 1,
            "queue_len was {mine} for a lock one thread held while nobody \
             waited: it must count tickets drawn minus tickets served, \
             not a counter of its own that the last holder lowers only \
             after serving the next ticket"
        );
        assert!(
            seen >= 1,
            "queue_len was {seen} while the lock was held at every moment: \
             read now_serving first, with Acquire, then next_ticket, so \
             that the two loads never pair an old ticket drawn with a \
             newer ticket served"
        );
    });
}

/// A value that counts its drops.
struct Counted(Arc<loom::sync::atomic::AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
    }
}

/// The last two owners let go on two threads at once: exactly one of them
/// drops the value, in every interleaving, also the one where both read
/// the count before either changes it (a `load` and then a `fetch_sub`:
/// both see 2, and neither frees).
pub(crate) fn the_last_two_owners_drop_the_value_once() {
    loom::model(|| {
        let drops = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let mine = MyArc::new(Counted(Arc::clone(&drops)));
        let theirs = mine.clone();
        let other = thread::spawn(move || drop(theirs));
        drop(mine);
        other.join().unwrap();
        assert_eq!(
            drops.load(loom::sync::atomic::Ordering::SeqCst),
            1,
            "the value must be dropped exactly once"
        );
    });
}
