//! The fair read-write lock: readers share it, writers hold it alone, and
//! a waiting writer keeps new readers out, so readers cannot starve it.

mod writer_priority;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use exercises::ch06_fairness::FairRwLock;

use course::grader::task;

pub(super) use writer_priority::{
    a_waiting_writer_blocks_new_readers, a_writer_is_not_starved_by_readers,
    try_read_does_not_defer_to_queued_readers,
};

/// A pause that gives a thread time to get where it is going. If it is too
/// short (a slow machine), a wrong answer may slip through; a right answer
/// never fails because of it.
const SETTLE: Duration = Duration::from_millis(50);

/// Three readers hold the lock at once (they meet at a barrier inside
/// their read guards), and `try_read` succeeds on a lock that readers
/// share, also while other threads take and drop read guards without
/// pause.
pub(super) fn readers_share_the_lock() {
    const READERS: usize = 3;
    let lock = FairRwLock::new(vec!["spring", "summer"]);
    let barrier = Barrier::new(READERS);
    thread::scope(|s| {
        for _ in 0..READERS {
            s.spawn(|| {
                let seasons = lock.read();
                barrier.wait(); // Every reader holds the lock now.
                assert_eq!(seasons.len(), 2);
            });
        }
    });
    let first = lock.try_read();
    assert!(first.is_some(), "try_read on a free lock gives a guard");
    let second = lock.try_read();
    assert!(
        second.is_some(),
        "try_read gives a guard while another reader holds the lock"
    );
    drop((first, second));
    let refused = try_read_while_readers_come_and_go(&lock);
    assert_eq!(
        refused, 0,
        "try_read returned None {refused} times while other threads were \
         only taking and dropping read guards, with no writer anywhere: \
         None means a writer holds the lock or waits for it, nothing else. \
         Wait for the state's mutex (it is held only for a few \
         instructions) rather than give up when another reader has it"
    );
}

/// Least number of times each side of
/// [`try_read_while_readers_come_and_go`] goes round.
const CHURN: usize = 20_000;

/// Least time [`try_read_while_readers_come_and_go`] goes on for: the
/// rounds of both sides would fit in one time slice, and the threads must
/// overlap however the machine schedules them.
const CHURN_TIME: Duration = Duration::from_millis(200);

/// Two threads take and drop read guards as fast as they can while this
/// one calls `try_read`, for `CHURN_TIME` at least and until each side has
/// gone round `CHURN` times since both were running; no writer ever comes.
/// Returns how often `try_read` said `None`.
fn try_read_while_readers_come_and_go(lock: &FairRwLock<Vec<&str>>) -> usize {
    let stop = AtomicBool::new(false);
    let rounds = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    drop(lock.read());
                    rounds.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        while rounds.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        let (start, first) = (Instant::now(), rounds.load(Ordering::SeqCst));
        let (mut tries, mut refused) = (0, 0);
        while tries < CHURN
            || rounds.load(Ordering::SeqCst) - first < CHURN
            || start.elapsed() < CHURN_TIME
        {
            if lock.try_read().is_none() {
                refused += 1;
            }
            tries += 1;
        }
        stop.store(true, Ordering::SeqCst);
        refused
    })
}

/// Writes of +2 that each of the two writers makes in
/// [`writers_exclude_everyone`].
const WRITES: usize = 300;

/// Two writers add 2 in two steps with a yield between, while two readers
/// check that they never see an odd value or one that changes under them:
/// no update is lost, and `try_read` fails while a writer holds the lock.
/// First, forced: a reader woken as a writer leaves does not go in beside
/// the next writer (see [`a_woken_reader_looks_again_for_a_writer`]).
pub(super) fn writers_exclude_everyone() {
    a_woken_reader_looks_again_for_a_writer();
    two_waiting_writers_are_both_counted();
    let lock = FairRwLock::new(0_u64);
    // First, one reader inside and one writer asking: the writer must wait
    // until the reader has left.
    a_writer_waits_behind(
        &lock,
        lock.read(),
        "a writer got in while a reader held the lock: write() must wait \
         until no reader is inside",
    );
    assert_eq!(*lock.read(), 2);
    // Then one writer inside and another asking: the second must wait
    // until the first has left.
    a_writer_waits_behind(
        &lock,
        lock.write(),
        "a second writer got in while a writer held the lock: write() must \
         also wait while another writer is inside",
    );
    assert_eq!(*lock.read(), 4);
    *lock.write() = 0;
    let (odd, changed) = write_while_readers_watch(&lock);
    let total = *lock.read();
    let expected = 2 * 2 * WRITES as u64;
    assert_eq!(
        total, expected,
        "two writers each made {WRITES} writes of +2, but the total is \
         {total}, not {expected}: two writers held the lock at once"
    );
    assert_eq!(
        odd, 0,
        "readers saw a half-done write {odd} times: a writer must hold the \
         lock alone, with no reader and no other writer inside"
    );
    assert_eq!(
        changed, 0,
        "the value changed {changed} times under a reader's guard: a writer \
         got in while a reader held the lock"
    );
    let held = lock.write();
    assert!(
        lock.try_read().is_none(),
        "try_read gave a guard while a writer held the lock"
    );
    assert_eq!(
        lock.writers_waiting(),
        0,
        "writers_waiting() counts the writer that holds the lock: a writer \
         waits only until it gets in (the `writer` flag keeps readers out \
         while it writes)"
    );
    drop(held);
}

/// Two writers wait behind a reader: `writers_waiting()` counts both (a
/// flag would say 1, and the first writer to get in would lower it while
/// the other still waits). If it never says 2, the trial times out. Once
/// the reader has left and one writer is inside (it says so, and waits for
/// the go), the other still waits: the count is 1, not 0 (a writer that
/// goes in lowers the count by one, it does not reset it).
fn two_waiting_writers_are_both_counted() {
    let lock = FairRwLock::new(0_u64);
    let (inside, entered) = mpsc::channel();
    let (go, gone) = mpsc::channel::<()>();
    // Only the writer inside takes it, so the writers never contend for it.
    let gone = Mutex::new(gone);
    thread::scope(|s| {
        let held = lock.read();
        for _ in 0..2 {
            let (inside, lock, gone) = (inside.clone(), &lock, &gone);
            s.spawn(move || {
                let mut written = lock.write();
                inside.send(()).unwrap();
                gone.lock().unwrap().recv().unwrap();
                *written += 1;
            });
        }
        while lock.writers_waiting() < 2 {
            thread::yield_now();
        }
        drop(held);
        entered.recv().unwrap();
        let counted = lock.writers_waiting();
        go.send(()).unwrap();
        entered.recv().unwrap();
        go.send(()).unwrap();
        assert_eq!(
            counted, 1,
            "two writers waited behind a reader; once the reader left and \
             one of them went in, writers_waiting() said {counted}, not 1, \
             while the other still waited: a writer that goes in takes \
             itself off the count (writers_waiting -= 1), it does not reset \
             it, or the readers that queue meanwhile go before the writer \
             still waiting"
        );
    });
    assert_eq!(*lock.read(), 2, "both writers wrote");
}

/// A reader waits behind a waiting writer and is frozen there (as a thread
/// the system does not get round to waking); the writer gets in, writes and
/// leaves, which wakes the readers, and a second writer walks straight in.
/// Thawed, the reader finds the lock held by that writer: it must wait
/// again, not go in because no writer waits any more.
fn a_woken_reader_looks_again_for_a_writer() {
    let lock = FairRwLock::new(0_u64);
    let inside = AtomicBool::new(false);
    thread::scope(|s| {
        let held = lock.read();
        let (lock, inside) = (&lock, &inside);
        a_writer_behind(s, lock, 1);
        let (tell, told) = mpsc::channel();
        s.spawn(move || {
            tell.send(task::me()).unwrap();
            let read = lock.read();
            inside.store(true, Ordering::SeqCst);
            drop(read);
        });
        let reader = told.recv().unwrap();
        // Nobody else takes the lock's state now: once asleep, the reader
        // waits for the writer, holding no lock; frozen there.
        until_asleep(reader);
        task::freeze(reader);
        drop(held);
        // Waits until the first writer has written and left.
        assert_eq!(*lock.read(), 1, "the waiting writer got in and wrote");
        let second = lock.write();
        task::thaw();
        // The reader goes back to its wait (untimed, as the writer's), or
        // in beside the second writer.
        while !inside.load(Ordering::SeqCst)
            && !matches!(
                task::wait(reader.tid),
                Some((task::Wait::UntilWoken, _))
            )
        {
            thread::yield_now();
        }
        let slipped_in = inside.load(Ordering::SeqCst);
        drop(second);
        assert!(
            !slipped_in,
            "a reader woken when a writer left found another writer inside, \
             and went in beside it: after every wake-up, a reader checks \
             again both that no writer is inside and that none waits (one \
             loop, `while writer || writers_waiting > 0`, not a loop for \
             each)"
        );
    });
}

/// The lock is `Sync` exactly when its value is `Send + Sync`, as
/// `std::sync::RwLock` is: readers on several threads share `&T` at once,
/// so a `Cell` inside must not be shareable.
pub(super) fn is_sync_only_for_sync_values() {
    // Shared by two threads, which needs `Sync`; a `Cell` one thread owns.
    // The reader may come before or after the writer.
    let shared = FairRwLock::new(vec![1_u8, 2]);
    thread::scope(|s| {
        s.spawn(|| assert!(matches!(shared.read().len(), 2 | 3)));
        s.spawn(|| shared.write().push(3));
    });
    let counter = FairRwLock::new(Cell::new(1_u8));
    counter.read().set(2);
    assert_eq!(counter.read().get(), 2, "a reader set the Cell");
    assert!(
        course::is_sync!(FairRwLock<Vec<u8>>),
        "FairRwLock<Vec<u8>> must be Sync, or no thread can share it"
    );
    assert!(
        !course::is_sync!(FairRwLock<Cell<u8>>),
        "FairRwLock<Cell<u8>> is Sync: several readers would share one \
         `&Cell` and could all set it at once. Readers share `&T`, so the \
         `unsafe impl Sync` needs `T: Send + Sync`, not only `T: Send`"
    );
    assert!(
        !course::is_sync!(FairRwLock<Rc<u8>>),
        "FairRwLock<Rc<u8>> is Sync: an Rc may not leave its thread"
    );
    assert!(
        !course::is_sync!(FairRwLock<MutexGuard<'static, u8>>),
        "FairRwLock<MutexGuard<u8>> is Sync: a guard is Sync but not Send, \
         and a writer on another thread gets `&mut T`, enough to move the \
         guard there (std::mem::replace) and unlock the mutex from a thread \
         that does not hold it. The `unsafe impl Sync` needs `T: Send + \
         Sync`, not only `T: Sync`"
    );
    assert!(
        course::is_send!(FairRwLock<Vec<u8>>),
        "FairRwLock<Vec<u8>> must be Send, or no thread can hand it to another"
    );
    assert!(
        course::is_send!(FairRwLock<Cell<u8>>),
        "FairRwLock<Cell<u8>> must be Send: a Cell may move to another \
         thread (it is Send, only not Sync), and sending the lock only moves \
         it; nobody else can hold a guard then. An `unsafe impl Send` bounded \
         by `T: Send + Sync` wrongly refuses it; leave Send to the compiler \
         (UnsafeCell<T> is Send when T is), or bound it by `T: Send`, as \
         RwLock<T>'s is"
    );
    assert!(
        !course::is_send!(FairRwLock<Rc<u8>>),
        "FairRwLock<Rc<u8>> is Send: sending the lock sends the Rc inside it, \
         and an Rc may not leave its thread while its clones stay behind. \
         Leave Send to the compiler (UnsafeCell<T> is Send when T is), or \
         bound an `unsafe impl Send` by `T: Send`, as RwLock<T>'s is"
    );
    let token = Arc::new(());
    {
        // Dropped here, at the end of its block, with the Arc inside.
        let _lock = FairRwLock::new(Arc::clone(&token));
    }
    let owners = Arc::strong_count(&token);
    assert_eq!(
        owners, 1,
        "a FairRwLock around an Arc was dropped, and the Arc still has \
         {owners} owners: dropping the lock must drop its value (keep it in \
         an UnsafeCell inside the lock, not in a leaked Box)"
    );
}

/// While the calling thread holds `held` (a read guard or a write guard
/// of `lock`), a writer asks to add 2: it must not get in until `held` is
/// dropped, or the trial fails with `refusal`.
fn a_writer_waits_behind<G>(lock: &FairRwLock<u64>, held: G, refusal: &str) {
    let wrote = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            *lock.write() += 2;
            wrote.store(true, Ordering::SeqCst);
        });
        while lock.writers_waiting() == 0 && !wrote.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        // A pause that can only give a wrong lock more time to let the
        // writer in; a right one keeps it out however long it lasts.
        thread::sleep(SETTLE);
        assert!(!wrote.load(Ordering::SeqCst), "{refusal}");
        drop(held);
    });
}

/// Two writers each make `WRITES` writes of +2, the value odd for a moment
/// in each, while two readers read until the writers are done. Returns how
/// often a reader saw an odd value, and how often the value changed under
/// a reader's guard.
fn write_while_readers_watch(lock: &FairRwLock<u64>) -> (usize, usize) {
    let odd_seen = AtomicUsize::new(0);
    let changed_seen = AtomicUsize::new(0);
    let writing = AtomicBool::new(true);
    thread::scope(|s| {
        let writers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..WRITES {
                        let mut total = lock.write();
                        let seen = *total;
                        *total = seen + 1; // Odd for a moment.
                        thread::yield_now();
                        *total = seen + 2;
                    }
                })
            })
            .collect();
        for _ in 0..2 {
            s.spawn(|| {
                while writing.load(Ordering::SeqCst) {
                    let total = lock.read();
                    let seen = *total;
                    if seen % 2 == 1 {
                        odd_seen.fetch_add(1, Ordering::SeqCst);
                    }
                    thread::yield_now();
                    if *total != seen {
                        changed_seen.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
        for writer in writers {
            writer.join().unwrap();
        }
        writing.store(false, Ordering::SeqCst);
    });
    (
        odd_seen.load(Ordering::SeqCst),
        changed_seen.load(Ordering::SeqCst),
    )
}

/// Starts a writer of `value` on `s`, behind the reader the caller is, and
/// returns its thread once it waits.
fn a_writer_behind<'scope, T: Send + Sync>(
    s: &'scope thread::Scope<'scope, '_>,
    lock: &'scope FairRwLock<T>,
    value: T,
) -> task::Me {
    let (tell, told) = mpsc::channel();
    s.spawn(move || {
        tell.send(task::me()).unwrap();
        *lock.write() = value;
    });
    let writer = told.recv().unwrap();
    while lock.writers_waiting() == 0 {
        thread::yield_now();
    }
    writer
}

/// Watches `thread` until it sleeps (state `S`), or has ended (a lock that
/// wrongly lets it through), or has used [`task::BUSY_TICKS`] of CPU time
/// (it spins): no deadline on the clock. What the trial does next judges
/// the lock in each case.
fn until_asleep(thread: task::Me) {
    task::watch_until(thread.tid, || {
        task::asleep(thread.tid) || task::state(thread.tid).is_none()
    });
}
