//! The ticket lock: no increment is lost, threads are served in the
//! order they came, and `queue_len` counts the holder and the waiters.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, MutexGuard};
use std::thread;

use exercises::ch06_fairness::{TicketGuard, TicketLock};

/// Threads that take the ticket lock over and over at once. Few, and
/// few rounds: a fair lock hands over to one particular thread, which on
/// a busy machine may first have to wait for a core, so every hand-over
/// can cost a time slice (the convoy of the chapter, in a spin lock).
const THREADS: usize = 4;

/// Lock, read, yield, write: rounds per thread. The yield between the read
/// and the write gives other threads every chance to slip in.
const INCREMENTS: usize = 100;

/// Each of `THREADS` threads adds one to a plain `u64` `INCREMENTS` times
/// through the lock, with a yield between the read and the write: no
/// increment is lost.
pub(super) fn excludes_other_threads() {
    let lock = TicketLock::new(0_u64);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..INCREMENTS {
                    let mut count = lock.lock();
                    let seen = *count;
                    thread::yield_now(); // Another thread could slip in.
                    *count = seen + 1;
                }
            });
        }
    });
    let total = lock.into_inner();
    let expected = (THREADS * INCREMENTS) as u64;
    assert_eq!(
        total, expected,
        "{THREADS} threads each made {INCREMENTS} increments through the \
         lock, but the total is {total}, not {expected}: two threads held \
         the lock at once"
    );
}

/// While the main thread holds the lock, waiters queue one at a time;
/// when it unlocks and at once locks again, every waiter goes first, in
/// the order they came, and the main thread last.
pub(super) fn serves_threads_in_arrival_order() {
    const WAITERS: usize = 4;
    const ROUNDS: usize = 5;
    for round in 1..=ROUNDS {
        let lock = TicketLock::new(Vec::new());
        thread::scope(|s| {
            let held = lock.lock();
            for waiter in 0..WAITERS {
                let lock = &lock;
                s.spawn(move || lock.lock().push(format!("waiter {waiter}")));
                // This waiter has its place in the queue before the next
                // one is even started: the holder plus `waiter + 1`.
                while lock.queue_len() < waiter + 2 {
                    thread::yield_now();
                }
            }
            drop(held);
            // Straight back: it must queue behind the waiters.
            lock.lock().push("main".to_string());
        });
        let order = lock.into_inner();
        let expected: Vec<String> = (0..WAITERS)
            .map(|waiter| format!("waiter {waiter}"))
            .chain(["main".to_string()])
            .collect();
        assert_eq!(
            order, expected,
            "round {round}: {WAITERS} threads queued, one after another, \
             while the main thread held the lock; it let go and locked \
             again at once, so the waiters should have had the lock first, \
             in the order they came, and the main thread last"
        );
    }
}

/// `queue_len` counts the holder and every waiter, and drops back to 0.
pub(super) fn counts_the_queue() {
    let lock = TicketLock::new("order book");
    assert_eq!(lock.queue_len(), 0, "a new lock has no queue");
    {
        let _held = lock.lock();
        assert_eq!(lock.queue_len(), 1, "one thread holds the lock");
    }
    assert_eq!(lock.queue_len(), 0, "the holder has let go");
    thread::scope(|s| {
        let held = lock.lock();
        for _ in 0..2 {
            s.spawn(|| drop(lock.lock()));
        }
        while lock.queue_len() < 3 {
            thread::yield_now();
        }
        assert_eq!(lock.queue_len(), 3, "one holder and two waiters");
        drop(held);
    });
    assert_eq!(
        lock.queue_len(),
        0,
        "every thread has had the lock and let go"
    );
    assert_eq!(
        lock.into_inner(),
        "order book",
        "into_inner gives the value"
    );
    let token = Arc::new(());
    {
        // Dropped here, at the end of its block, with the Arc inside.
        let _lock = TicketLock::new(Arc::clone(&token));
    }
    let owners = Arc::strong_count(&token);
    assert_eq!(
        owners, 1,
        "a TicketLock around an Arc was dropped without into_inner, and the \
         Arc still has {owners} owners: dropping the lock must drop its \
         value (keep it in an UnsafeCell inside the lock, not in a leaked \
         Box)"
    );
}

/// A thread panics while it holds the lock: its guard is dropped as the
/// panic unwinds, and that drop serves the next ticket like any other, so
/// the queue is empty again and the next thread gets in. The lock is not
/// poisoned.
pub(super) fn a_panicking_holder_serves_the_next_ticket() {
    let lock = TicketLock::new(0_u32);
    let failed = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut count = lock.lock();
        *count += 1;
        panic!("a holder panics on purpose (expected)");
    }));
    assert!(failed.is_err(), "the panic should reach the caller");
    let left = lock.queue_len();
    assert_eq!(
        left, 0,
        "a thread panicked while it held the lock, and then queue_len() was \
         {left}, not 0: dropping the guard must serve the next ticket even \
         while the thread unwinds (std::thread::panicking()), or every \
         thread that comes later waits forever for a number never called"
    );
    thread::scope(|s| {
        s.spawn(|| *lock.lock() += 1);
    });
    assert_eq!(
        lock.into_inner(),
        2,
        "the next thread got in and saw the panicking holder's write"
    );
}

/// The lock is `Sync` whenever its value is `Send`, as `std::sync::Mutex`
/// is: it exists precisely to share a value that is not `Sync` itself.
/// A `Cell` behind it can be shared; an `Rc` cannot leave its thread, so
/// neither shares nor sends the lock around it.
pub(super) fn is_sync_for_send_values() {
    assert!(
        course::is_sync!(TicketLock<u64>),
        "TicketLock<u64> must be Sync, or no thread can share it"
    );
    assert!(
        course::is_sync!(TicketLock<Cell<u32>>),
        "TicketLock<Cell<u32>> is not Sync: only one thread at a time reaches \
         the value, so a lock around a Send value can be shared even if the \
         value is not Sync (as Mutex<Cell<u32>> can). The `unsafe impl Sync` \
         needs `T: Send`, not `T: Send + Sync`"
    );
    assert!(
        !course::is_sync!(TicketLock<Rc<u8>>),
        "TicketLock<Rc<u8>> is Sync: a thread that locks it could clone the \
         Rc another thread made, and an Rc may not leave its thread"
    );
    assert!(
        !course::is_sync!(TicketLock<MutexGuard<'static, u8>>),
        "TicketLock<MutexGuard<u8>> is Sync: a guard is Sync but not Send, \
         and the lock hands `&mut T` to each holder in turn, on its own \
         thread, which could move the guard there"
    );
    assert!(
        course::is_sync!(TicketGuard<'static, u64>),
        "TicketGuard<u64> must be Sync: threads that share a guard share \
         only `&u64`, as with a MutexGuard<u64>"
    );
    assert!(
        !course::is_sync!(TicketGuard<'static, Cell<u32>>),
        "TicketGuard<Cell<u32>> is Sync: threads that share a guard each get \
         `&Cell<u32>` through it, at the same time, and could set the Cell \
         together. A guard is Sync only when T is, as MutexGuard is \
         (PhantomData<&mut T> gives exactly that; no `unsafe impl Sync` \
         for the guard)"
    );
    assert!(
        !course::is_send!(TicketGuard<'static, Rc<u8>>),
        "TicketGuard<Rc<u8>> is Send: the thread a guard is sent to gets \
         `&mut Rc<u8>` through it, and can clone the Rc there while its \
         own thread keeps other clones. A guard may be Send only when T is \
         (PhantomData<&mut T> gives exactly that: leave Send to the \
         compiler, with no `unsafe impl Send` for the guard)"
    );
    assert!(
        course::is_send!(TicketLock<u64>),
        "TicketLock<u64> must be Send, or no thread can hand it to another"
    );
    assert!(
        course::is_send!(TicketLock<Cell<u32>>),
        "TicketLock<Cell<u32>> must be Send: a Cell may move to another \
         thread (it is Send, only not Sync), and sending the lock only moves \
         it. An `unsafe impl Send` bounded by `T: Send + Sync` wrongly \
         refuses it; leave Send to the compiler (UnsafeCell<T> is Send when \
         T is), or bound it by `T: Send`, as Mutex<T>'s is"
    );
    assert!(
        !course::is_send!(TicketLock<Rc<u8>>),
        "TicketLock<Rc<u8>> is Send: sending the lock sends the Rc inside it, \
         and an Rc may not leave its thread. The `unsafe impl Send` needs \
         `T: Send`, as Mutex<T>'s does (or leave Send to the compiler: \
         UnsafeCell<T> is Send when T is)"
    );
}
