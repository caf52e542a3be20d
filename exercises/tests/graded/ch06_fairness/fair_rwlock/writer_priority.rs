//! The fair read-write lock's writer priority: a waiting writer keeps new
//! readers out, also while none is inside, and `try_read` still gives a
//! guard once no writer holds the lock or waits for it.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, mpsc};
use std::thread;
use std::time::Duration;

use exercises::ch06_fairness::FairRwLock;

use course::grader::task;

use super::super::{futex_of, start};
use super::{SETTLE, a_writer_behind, until_asleep};

/// How many times a writer may wake while it waits for a reader who stays
/// for two `SETTLE`s: a writer that is woken when the reader leaves wakes
/// none; one that looks every millisecond, about a hundred.
const WAKE_UPS: u64 = 5;

/// While a reader holds the lock and a writer waits for it, `try_read`
/// fails and a new reader blocks until the writer has written.
pub(crate) fn a_waiting_writer_blocks_new_readers() {
    let lock = FairRwLock::new(0_u32);
    thread::scope(|s| {
        let held = lock.read();
        let lock = &lock;
        let writer = a_writer_behind(s, lock, 1);
        assert_eq!(lock.writers_waiting(), 1, "one writer waits");
        // Watched until it sleeps: from then on, its wake-ups are counted
        // until the reader lets go: it is told when to go on, and does not
        // wake to look. (A writer that waits without sleeping is not judged
        // on this.)
        let watched = task::watch_until_asleep(writer.tid);
        let sleeps = task::sleeps(writer.tid);
        // Time for the writer to settle into waiting: a lock built on
        // another that spins a little before it blocks (std's RwLock
        // does) may count a writer a moment before it keeps readers out.
        thread::sleep(SETTLE);
        if let task::Watched::Polling(line) = &watched {
            panic!(
                "the writer waiting for the reader to leave sleeps in a wait \
                 with a time limit (a wait_timeout, or a sleep; \
                 /proc/self/task/<tid>/syscall: {line}): it looks again now \
                 and then instead of being woken. The last reader out \
                 notifies the writers' Condvar, under the state's mutex, and \
                 the writer waits on it with Condvar::wait, no timeout as a \
                 safety net"
            );
        }
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
            watched == task::Watched::Busy || woke <= WAKE_UPS,
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
    a_writer_queued_after_a_reader_is_woken();
}

/// Waits until thread `tid` sleeps on futex `address` (then `true`); or
/// until it sleeps in a wait with a time limit, or `done()` says it has
/// finished, or it has used [`task::BUSY_TICKS`] of CPU time (one that
/// spins): then `false`.
fn until_on_futex(
    tid: task::Tid,
    address: &str,
    done: impl Fn() -> bool,
) -> bool {
    let mut on_it = false;
    task::watch_until(tid, || {
        on_it = futex_of(tid).as_deref() == Some(address);
        on_it
            || done()
            || matches!(task::wait(tid), Some((task::Wait::UntilADeadline, _)))
    });
    on_it
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
        let mut futex = None;
        let mut free = false;
        task::watch_until(tryer.tid, || {
            // Asleep first, and then still not past `try_read`: it sleeps
            // in `try_read`, on the state's mutex.
            futex = futex_of(tryer.tid);
            free = tried.load(Ordering::SeqCst);
            free || futex.is_some()
                || matches!(
                    task::wait(tryer.tid),
                    Some((task::Wait::UntilADeadline, _))
                )
        });
        if free {
            return Ok(()); // The state is free at this write.
        }
        let Some(state) = futex else {
            // A `try_read` that spins, or polls: no forcing with this lock.
            self.done = true;
            return Ok(());
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
        let (reader, queued) = start(s, || *lock.read());
        until_asleep(queued);
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

/// A writer holds the lock, a reader queues behind it (asleep in `read`),
/// and only then a second writer (asleep in `write`). When the first writer
/// leaves, the waiting writer must be woken, whoever queued first: it goes
/// in, and the reader reads what it wrote. A lock whose readers and writers
/// wait on one `Condvar`, woken with `notify_one` where one writer is
/// meant, wakes the reader (the first asleep), which goes back to its wait
/// while a writer waits; the writer is never woken, and the trial times
/// out.
fn a_writer_queued_after_a_reader_is_woken() {
    let lock = FairRwLock::new(0_u32);
    thread::scope(|s| {
        let mut first = lock.write();
        let (reader, queued) = start(s, || *lock.read());
        until_asleep(queued);
        let (writer, waits) = start(s, || *lock.write() = 2);
        while lock.writers_waiting() == 0 && !writer.is_finished() {
            thread::yield_now();
        }
        until_asleep(waits);
        *first = 1;
        drop(first);
        let seen = reader.join().unwrap();
        assert_eq!(
            seen, 2,
            "a reader queued while a writer held the lock, and a second \
             writer queued after it; when the first writer left, the reader \
             read {seen}, not the waiting writer's 2: a waiting writer goes \
             before the readers, also those that queued before it"
        );
    });
}

/// Rounds of `try_read_does_not_defer_to_queued_readers`: a wrong lock
/// passes one only if its queued readers all got in before `try_read`.
const QUEUED_ROUNDS: usize = 20;

/// Readers blocked in `read` behind a writer are woken when it leaves, but
/// may not have run yet: `try_read`, called at once by the writer's thread,
/// still gets a guard, since no writer holds the lock or waits for it.
pub(crate) fn try_read_does_not_defer_to_queued_readers() {
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
pub(crate) fn a_writer_is_not_starved_by_readers() {
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
        until_asleep(writer);
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
