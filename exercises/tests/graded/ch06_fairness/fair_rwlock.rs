//! The fair read-write lock: readers share it, writers hold it alone, and
//! a waiting writer keeps new readers out, so readers cannot starve it.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::fs;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, MutexGuard, RwLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use exercises::ch06_fairness::FairRwLock;

use course::grader::task;

/// A pause that gives a thread time to get where it is going. If it is too
/// short (a slow machine), a wrong answer may slip through; a right answer
/// never fails because of it.
const SETTLE: Duration = Duration::from_millis(50);

/// How many times a writer may wake while it waits for a reader who stays
/// for two `SETTLE`s: a writer that is woken when the reader leaves wakes
/// none; one that looks every millisecond, about a hundred.
const WAKE_UPS: u64 = 5;

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
/// the other still waits). If it never says 2, the trial times out.
fn two_waiting_writers_are_both_counted() {
    let lock = FairRwLock::new(0_u64);
    thread::scope(|s| {
        let held = lock.read();
        for _ in 0..2 {
            s.spawn(|| *lock.write() += 1);
        }
        while lock.writers_waiting() < 2 {
            thread::yield_now();
        }
        drop(held);
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
        let start = Instant::now();
        while !task::asleep(reader.tid) && start.elapsed() < SPINNER_GRACE {
            thread::yield_now();
        }
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

/// While a reader holds the lock and a writer waits for it, `try_read`
/// fails and a new reader blocks until the writer has written.
pub(super) fn a_waiting_writer_blocks_new_readers() {
    let lock = FairRwLock::new(0_u32);
    thread::scope(|s| {
        let held = lock.read();
        let lock = &lock;
        let writer = a_writer_behind(s, lock, 1);
        assert_eq!(lock.writers_waiting(), 1, "one writer waits");
        // From the moment it sleeps, the writer's wake-ups are counted
        // until the reader lets go: it is told when to go on, and does not
        // wake to look. (A writer that waits without sleeping is not judged
        // on this.)
        let spent = task::cpu_ticks(writer.tid);
        let mut asleep = true;
        while !task::asleep(writer.tid) {
            if task::cpu_ticks(writer.tid) - spent > 20 {
                asleep = false;
                break;
            }
            thread::yield_now();
        }
        let sleeps = task::sleeps(writer.tid);
        // Time for the writer to settle into waiting: a lock built on
        // another that spins a little before it blocks (std's RwLock
        // does) may count a writer a moment before it keeps readers out.
        thread::sleep(SETTLE);
        assert!(
            !asleep || !waits_with_a_deadline(writer.tid),
            "the writer waiting for the reader to leave sleeps in a wait \
             with a time limit (a wait_timeout, or a sleep): it looks again \
             now and then instead of being woken. The last reader out \
             notifies the writers' Condvar, under the state's mutex, and the \
             writer waits on it with Condvar::wait, no timeout as a safety net"
        );
        assert!(
            lock.try_read().is_none(),
            "try_read gave a new reader a guard while a writer waited: \
             with a stream of readers, the writer would wait forever"
        );
        let (trying, tries) = mpsc::channel();
        let reader = s.spawn(move || {
            trying.send(()).unwrap();
            *lock.read()
        });
        tries.recv().unwrap();
        // Time for the reader to get in if the lock wrongly lets it. Too
        // short a pause lets a wrong lock pass; it never fails a right one.
        thread::sleep(SETTLE);
        let woke = task::sleeps(writer.tid) - sleeps;
        drop(held);
        assert!(
            !asleep || woke <= WAKE_UPS,
            "the writer woke {woke} times while it waited for the reader \
             to leave (about {:?}): it looks again and again (a \
             wait_timeout in a loop) instead of being woken. The last \
             reader out notifies the writers' Condvar, under the state's \
             mutex, and the writer waits on it without a timeout",
            SETTLE * 2
        );
        let seen = reader.join().unwrap();
        assert_eq!(
            seen, 1,
            "a reader that came while a writer waited read {seen}, not the \
             writer's 1: read() let it in ahead of the waiting writer"
        );
    });
    assert_eq!(lock.writers_waiting(), 0, "the writer is done");
    counts_the_writer_while_the_state_is_busy();
    no_pass_for_readers_queued_behind_a_writer();
}

/// Whether thread `tid`, asleep, waits with a time limit: it is blocked in
/// a `futex` wait with a timeout (`Condvar::wait_timeout`), or in a sleep.
/// Asked again while `/proc` shows it running, for up to
/// [`SPINNER_GRACE`]; `false` if it never shows a wait this function knows.
fn waits_with_a_deadline(tid: task::Tid) -> bool {
    let start = Instant::now();
    while start.elapsed() < SPINNER_GRACE {
        if let Some((wait, _)) = task::wait(tid) {
            return wait == task::Wait::UntilADeadline;
        }
        thread::yield_now();
    }
    false
}

/// How long [`until_asleep`] and [`Probe`] wait for a thread that neither
/// blocks nor finishes (one that spins): it only ends the forcing, never
/// the trial.
const SPINNER_GRACE: Duration = Duration::from_secs(2);

/// Waits until the thread of this process named `name` is asleep (state
/// `S` in Linux's `/proc`: blocked, on a lock or a condition variable), or
/// until [`SPINNER_GRACE`] has passed.
fn until_asleep(name: &str) {
    let start = Instant::now();
    while !asleep(name) && start.elapsed() < SPINNER_GRACE {
        thread::yield_now();
    }
}

/// Whether a thread of this process named `name` is asleep (state `S`).
fn asleep(name: &str) -> bool {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return false;
    };
    tasks.flatten().any(|task| {
        let path = task.path();
        let named = fs::read_to_string(path.join("comm"))
            .is_ok_and(|comm| comm.trim_end() == name);
        let stat = fs::read_to_string(path.join("stat")).unwrap_or_default();
        // The state follows the parenthesised name, which may hold spaces.
        named
            && stat.rfind(')').is_some_and(|close| {
                stat[close + 1..].trim_start().starts_with('S')
            })
    })
}

/// Starts `run` on a thread of its own, and returns it with its id.
fn start<'scope, T: Send + 'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    run: impl FnOnce() -> T + Send + 'scope,
) -> (thread::ScopedJoinHandle<'scope, T>, task::Me) {
    let (tell, told) = mpsc::channel();
    let handle = scope.spawn(move || {
        tell.send(task::me()).unwrap();
        run()
    });
    (handle, told.recv().unwrap())
}

/// The address of the futex thread `tid` sleeps on, in a wait with no
/// time limit (a `Mutex` or a `Condvar` of std, say); `None` if it does
/// not sleep so.
fn futex_of(tid: task::Tid) -> Option<String> {
    match task::wait(tid)? {
        (task::Wait::UntilWoken, line) => {
            line.split_whitespace().nth(1).map(str::to_string)
        }
        _ => None,
    }
}

/// Waits until thread `tid` sleeps on futex `address`, or until
/// [`SPINNER_GRACE`] has passed (then `false`); `false` at once if `done()`
/// says it has finished.
fn until_on_futex(
    tid: task::Tid,
    address: &str,
    done: impl Fn() -> bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < SPINNER_GRACE && !done() {
        if futex_of(tid).as_deref() == Some(address) {
            return true;
        }
        thread::yield_now();
    }
    false
}

/// A sink for `{:?}` that finds the moment the lock's `Debug` holds the
/// lock's state (std's `Mutex` does around its data, as it writes it), and
/// then queues a writer for the state and asks `writers_waiting()` behind
/// it.
///
/// At every write it starts a thread that calls `try_read`: on a free state
/// that returns at once; on a busy one the thread sleeps on the state's
/// mutex. Once one does, a writer comes (the caller holds a read guard, so
/// it will have to wait) and the probe waits until the writer too sleeps
/// on that mutex, not yet counted; then it asks `writers_waiting()` on a
/// third thread. A mutex hands itself to its sleepers in the order they
/// came (Linux wakes a futex's waiters first in, first out), so once the
/// state is free the writer counts itself before the question is answered:
/// `1`. A count read without the state says `0` at once. The threads that
/// called `try_read` keep what they got until `gate` opens: a guard dropped
/// meanwhile would take the state again and could send the writer to the
/// back of the queue.
struct Probe<'scope, 'env> {
    scope: &'scope thread::Scope<'scope, 'env>,
    lock: &'env FairRwLock<u32>,
    gate: &'env RwLock<()>,
    answer: Option<thread::ScopedJoinHandle<'scope, usize>>,
    done: bool,
}

impl fmt::Write for Probe<'_, '_> {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        if self.done {
            return Ok(());
        }
        let (lock, gate) = (self.lock, self.gate);
        let tried = Arc::new(AtomicBool::new(false));
        let (_, tryer) = start(self.scope, {
            let tried = Arc::clone(&tried);
            move || {
                let guard = lock.try_read();
                tried.store(true, Ordering::SeqCst);
                drop(gate.read());
                drop(guard);
            }
        });
        let began = Instant::now();
        let state = loop {
            // Asleep first, and then still not past `try_read`: it sleeps
            // in `try_read`, on the state's mutex.
            let futex = futex_of(tryer.tid);
            if tried.load(Ordering::SeqCst) {
                return Ok(()); // The state is free at this write.
            }
            if let Some(futex) = futex {
                break futex;
            }
            if began.elapsed() >= SPINNER_GRACE {
                // A `try_read` that spins: no forcing with this lock.
                self.done = true;
                return Ok(());
            }
            thread::yield_now();
        };
        self.done = true;
        let (writer, me) = start(self.scope, move || *lock.write() = 1);
        if !until_on_futex(me.tid, &state, || writer.is_finished()) {
            return Ok(());
        }
        let (answer, me) = start(self.scope, move || lock.writers_waiting());
        // Until it has its answer, or sleeps waiting for the state.
        until_on_futex(me.tid, &state, || answer.is_finished());
        self.answer = Some(answer);
        Ok(())
    }
}

/// A reader holds the lock; while another thread formats the lock with
/// `{:?}` and holds its state, a writer comes and sleeps waiting for the
/// state, and then `writers_waiting()` is asked (see [`Probe`]): it must
/// wait for the state, and so count the writer, rather than answer `0`.
fn counts_the_writer_while_the_state_is_busy() {
    let lock = FairRwLock::new(0_u32);
    let gate = RwLock::new(());
    let held = lock.read();
    let closed = gate.write().unwrap();
    let answer = thread::scope(|probes| {
        let mut probe = Probe {
            scope: probes,
            lock: &lock,
            gate: &gate,
            answer: None,
            done: false,
        };
        write!(probe, "{lock:?}").expect("the probe never fails");
        let answer = probe.answer.map(|answer| answer.join().unwrap());
        // The threads that called `try_read` go, and then the writer.
        drop(closed);
        drop(held);
        answer
    });
    if let Some(counted) = answer {
        assert_eq!(
            counted, 1,
            "writers_waiting() said {counted} while one writer waited for \
             the lock's state, asked while another thread was formatting \
             the lock with {{:?}} (and so held its state): it must wait for \
             the state (lock, not try_lock, nor an atomic copy of the \
             count) rather than say 0"
        );
    }
}

/// The name of the reader [`no_pass_for_readers_queued_behind_a_writer`]
/// queues.
const QUEUED_READER: &str = "ch06-queued";

/// A writer holds the lock, a second writer waits, and a reader then queues
/// behind them (asleep in `read`). When the first writer leaves, the
/// waiting writer goes first: the reader reads what it wrote. A lock that
/// lets the queued readers in first, as a pass for having waited a whole
/// write, lets this reader in ahead of a writer that was there before it.
fn no_pass_for_readers_queued_behind_a_writer() {
    let lock = FairRwLock::new(0_u32);
    thread::scope(|s| {
        let mut first = lock.write();
        s.spawn(|| *lock.write() = 2);
        while lock.writers_waiting() == 0 {
            thread::yield_now();
        }
        let reader = thread::Builder::new()
            .name(QUEUED_READER.to_string())
            .spawn_scoped(s, || *lock.read())
            .expect("cannot start a thread");
        until_asleep(QUEUED_READER);
        *first = 1;
        drop(first);
        let seen = reader.join().unwrap();
        assert_eq!(
            seen, 2,
            "a reader came while one writer held the lock and a second \
             waited; when the first left, the reader read {seen}, not the \
             second writer's 2: it got in ahead of a writer that was \
             waiting before it came"
        );
    });
}

/// Rounds of `try_read_does_not_defer_to_queued_readers`: a wrong lock
/// passes one only if its queued readers all got in before `try_read`.
const QUEUED_ROUNDS: usize = 20;

/// Readers blocked in `read` behind a writer are woken when it leaves, but
/// may not have run yet: `try_read`, called at once by the writer's thread,
/// still gets a guard, since no writer holds the lock or waits for it.
pub(super) fn try_read_does_not_defer_to_queued_readers() {
    let lock = FairRwLock::new(0_u32);
    for _ in 0..QUEUED_ROUNDS {
        thread::scope(|s| {
            let written = lock.write();
            let (trying, tries) = mpsc::channel();
            for _ in 0..2 {
                let (trying, lock) = (trying.clone(), &lock);
                s.spawn(move || {
                    trying.send(()).unwrap();
                    drop(lock.read());
                });
            }
            tries.recv().unwrap();
            tries.recv().unwrap();
            // Time for both readers to block in read().
            thread::sleep(Duration::from_millis(5));
            drop(written);
            assert!(
                lock.try_read().is_some(),
                "try_read refused right after the writer left, while readers \
                 it had kept out were still waking up: no writer held the \
                 lock or waited for it, so try_read must give a guard (it \
                 need not wait its turn behind readers, who all share the \
                 lock anyway)"
            );
        });
    }
}

/// One thread holds a read guard at every moment, taking the next with
/// `try_read` before dropping the last, until `try_read` refuses because
/// a writer waits; then the writer gets in.
pub(super) fn a_writer_is_not_starved_by_readers() {
    let lock = FairRwLock::new(false);
    thread::scope(|s| {
        let mut held = lock.read();
        s.spawn(|| *lock.write() = true);
        // The old guard drops only after the new one is taken, so the
        // lock always has a reader.
        while let Some(next) = lock.try_read() {
            held = next;
        }
        assert!(!*held, "the writer wrote while a reader held the lock");
        drop(held);
    });
    assert!(*lock.read(), "the writer got in and wrote");
    no_reader_slips_in_before_the_woken_writer();
}

/// A writer waits behind a reader and is frozen (as a thread the system
/// does not get round to running) while the reader leaves: in that gap no
/// reader is inside, yet the writer still waits, so `try_read` refuses. A
/// lock that keeps new readers out only while other readers are inside
/// lets one in here, and readers arriving in such gaps starve the writer.
fn no_reader_slips_in_before_the_woken_writer() {
    let lock = FairRwLock::new(false);
    thread::scope(|s| {
        let held = lock.read();
        let lock = &lock;
        let writer = a_writer_behind(s, lock, true);
        // Asleep in its wait, which holds no lock; frozen there.
        let start = Instant::now();
        while !task::asleep(writer.tid) && start.elapsed() < SPINNER_GRACE {
            thread::yield_now();
        }
        task::freeze(writer);
        drop(held);
        let slipped_in = lock.try_read().is_some();
        task::thaw();
        assert!(
            !slipped_in,
            "the last reader left while a writer waited, and before the \
             writer had run again, try_read gave a new reader a guard: a \
             waiting writer keeps new readers out also while no reader is \
             inside, or readers that come in each such gap starve it"
        );
    });
    assert!(*lock.read(), "the writer got in and wrote");
}
