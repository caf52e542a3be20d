//! A `Stats` stays usable on the threads that were already waiting for it
//! when a `record` overflowed, and while other records overflow.
//!
//! A `record` may panic with its lock held: the lock is then poisoned, and
//! whoever takes it next gets `Err(PoisonError)`. Clearing the poison
//! before locking (`is_poisoned`, `clear_poison`, then `lock().unwrap()`)
//! comes too late for a thread that is already waiting in `lock()` when
//! the panic happens; and clearing it after an `Err` and locking again
//! leaves a gap in which another overflowing `record` can take the lock and
//! poison it once more. Only taking the guard out of the error itself
//! (`PoisonError::into_inner`), or letting go of the lock before
//! panicking, keeps every thread's `snapshot` working.
//!
//! Both orders are forced, in copies of the process (`in_a_copy`), whose
//! panic hook holds the overflowing `record`s: a panic hook runs before
//! the panic unwinds, so a `record` that panics with its guard held still
//! holds the lock there. First, a `snapshot` on another thread is started
//! while the first overflowing `record` is held in the hook, and let go
//! once it sleeps (waiting for the lock) or has returned. Then, in one
//! copy after another, the same waiting `snapshot` is also held right after
//! its first write to the `Stats`, then right after its second, and so on
//! (`FaultHold::after_the_first_write`, the `Stats` alone on pages of the
//! trial's own), and at that point a second overflowing `record` runs until
//! it is held in the hook, or sleeps, or has returned; the `snapshot` is
//! let go, and the second `record` once the `snapshot` sleeps or has
//! returned. Each hold is only a delay, one of the orders the threads could
//! have run in, so a correct `Stats` gives `(1, 5)` to every `snapshot`.
//! (A `Stats` that keeps its lock in an allocation of its own is not on
//! those pages: its waiting `snapshot` is not held, nor the order forced.)

use std::cell::Cell;
use std::hint;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::thread;
use std::time::Duration;

use course::grader::fault_hold::{FaultHold, Pages, ProtFlags, page_size};
use course::grader::task::{self, Tid, asleep};
use exercises::ch04_refcount::Stats;

use super::overflow::{Ended, in_a_copy};

/// The copy's answers: the waiting `snapshot` gave `(1, 5)`, after its
/// `step`-th write was held (`FORCED`) or having made fewer writes than
/// that (`FEWER`); it panicked; or something else went wrong.
const FORCED: u8 = 1;
const FEWER: u8 = 2;
const WAITER_PANICKED: u8 = 3;
const OTHERWISE: u8 = 4;

/// How many writes of the waiting `snapshot` are tried in turn.
const STEPS: usize = 8;

/// The overflowing `record`s held in the panic hook: the first and the
/// second.
const RECORDS: usize = 2;

thread_local! {
    /// Which overflowing `record` this thread runs, if it runs one.
    static RECORD: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Set by an overflowing `record`'s thread once it is in the panic hook.
static IN_HOOK: [AtomicBool; RECORDS] =
    [const { AtomicBool::new(false) }; RECORDS];
/// Set by the trial to let that thread's panic go on.
static GO_ON: [AtomicBool; RECORDS] =
    [const { AtomicBool::new(false) }; RECORDS];

/// In the copy: a panic on a thread that runs an overflowing `record`
/// waits in the hook until the trial lets it go on; any other panic (the
/// waiting `snapshot`'s) goes on at once. Nothing is printed.
fn hold_overflows_in_the_hook() {
    panic::set_hook(Box::new(|_| {
        if let Some(i) = RECORD.with(Cell::get) {
            IN_HOOK[i].store(true, Ordering::SeqCst);
            while !GO_ON[i].load(Ordering::SeqCst) {
                thread::sleep(Duration::from_micros(20));
            }
        }
    }));
}

/// What a thread of the copy did: its id once it runs, and whether it has
/// finished.
#[derive(Default)]
struct Seen {
    tid: AtomicI32,
    done: AtomicBool,
}

impl Seen {
    /// Notes the calling thread's id.
    fn start(&self) {
        self.tid.store(task::me().tid, Ordering::SeqCst);
    }

    /// The thread's id, once it has started.
    fn tid(&self) -> Tid {
        loop {
            match self.tid.load(Ordering::SeqCst) {
                0 => hint::spin_loop(),
                tid => return tid,
            }
        }
    }

    fn done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }
}

/// Runs overflowing `record` number `i` on the calling thread: it must
/// panic.
fn overflow(stats: &Stats, i: usize, seen: &Seen, refused: &AtomicBool) {
    seen.start();
    RECORD.with(|record| record.set(Some(i)));
    let recorded =
        panic::catch_unwind(AssertUnwindSafe(|| stats.record(u64::MAX)));
    refused.store(recorded.is_err(), Ordering::SeqCst);
    seen.done.store(true, Ordering::SeqCst);
}

/// In the copy: a `Stats` of `(1, 5)`, alone on pages of its own; the
/// first overflowing `record` held in the hook; a `snapshot` on another
/// thread meanwhile; and, for a `step` above 0, a second overflowing
/// `record` right after the `snapshot`'s `step`-th write to the `Stats`.
fn waiting_snapshot(step: usize) -> u8 {
    assert!(
        align_of::<Stats>() <= page_size(),
        "a Stats aligned to a page"
    );
    let pages = Pages::new(size_of::<Stats>().div_ceil(page_size()).max(1));
    let (start, end) = (pages.start(), pages.start() + pages.bytes());
    // SAFETY: the pages are page-aligned, zeroed, large enough for a
    // `Stats`, and used for nothing else; the `Stats` is dropped before
    // they are.
    let stats = unsafe {
        let at = start as *mut Stats;
        ptr::write(at, Stats::new());
        &*at
    };
    stats.record(5);
    hold_overflows_in_the_hook();
    let (first, waiter, second) =
        (Seen::default(), Seen::default(), Seen::default());
    let refused: [AtomicBool; RECORDS] = Default::default();
    // 0 until the waiting `snapshot` returns: then 1 with `(1, 5)`, 2 with
    // another, 3 if it panicked.
    let snapshot = AtomicU8::new(0);
    let mut forced = false;
    thread::scope(|s| {
        s.spawn(|| overflow(stats, 0, &first, &refused[0]));
        task::watch_until(first.tid(), || {
            IN_HOOK[0].load(Ordering::SeqCst) || first.done()
        });
        s.spawn(|| {
            waiter.start();
            let answer = match panic::catch_unwind(|| stats.snapshot()) {
                Ok((1, 5)) => 1,
                Ok(_) => 2,
                Err(_) => 3,
            };
            snapshot.store(answer, Ordering::SeqCst);
            waiter.done.store(true, Ordering::SeqCst);
        });
        let tid = waiter.tid();
        task::watch_until(tid, || waiter.done() || asleep(tid));
        if step == 0 {
            GO_ON[0].store(true, Ordering::SeqCst);
            return;
        }
        let hold = FaultHold::after_the_first_write(start, end);
        hold.protect(ProtFlags::PROT_READ);
        GO_ON[0].store(true, Ordering::SeqCst);
        let mut writes = 0;
        // Each write to the `Stats`, of either thread, is let through
        // alone, until the `snapshot` is held after its `step`-th. A
        // thread let go leaves the hold a little later: a hold is new only
        // once the count of holds has gone up.
        let mut holds = 0;
        // Asleep, but not in the hold (where a thread sleeps too, until it
        // leaves).
        let waits = || asleep(tid) && !hold.is_held(tid);
        let held = loop {
            let settled = || {
                hold.holds() > holds
                    || first.done() && (waiter.done() || waits())
            };
            if !task::watch_until(tid, settled) || hold.holds() == holds {
                break false;
            }
            holds += 1;
            let who = if hold.is_held(tid) { tid } else { first.tid() };
            if who == tid {
                writes += 1;
                if writes == step {
                    break true;
                }
            }
            hold.protect(ProtFlags::PROT_READ);
            hold.step_again();
            hold.let_go(who);
        };
        hold.protect(ProtFlags::PROT_READ | ProtFlags::PROT_WRITE);
        if held {
            forced = true;
            s.spawn(|| overflow(stats, 1, &second, &refused[1]));
            let other = second.tid();
            task::watch_until(other, || {
                IN_HOOK[1].load(Ordering::SeqCst)
                    || second.done()
                    || asleep(other)
            });
        }
        hold.let_go_all();
        // The `snapshot` sleeps, waiting for the second `record` (held in
        // the hook, or about to be), or has returned.
        let second_waits = || !held || second.done() || asleep(second.tid());
        task::watch_until(tid, || waiter.done() || waits() && second_waits());
        GO_ON[1].store(true, Ordering::SeqCst);
        drop(hold);
    });
    GO_ON[1].store(true, Ordering::SeqCst);
    let answer = match snapshot.load(Ordering::SeqCst) {
        3 => WAITER_PANICKED,
        1 if refused[0].load(Ordering::SeqCst)
            && (!forced || refused[1].load(Ordering::SeqCst))
            && stats.snapshot() == (1, 5) =>
        {
            if forced {
                FORCED
            } else {
                FEWER
            }
        }
        _ => OTHERWISE,
    };
    // SAFETY: no thread uses the `Stats` any more.
    unsafe { ptr::drop_in_place(ptr::from_ref(stats).cast_mut()) };
    answer
}

/// A `snapshot` that waits for the lock while an overflowing `record`
/// panics, and one that another overflowing `record` comes between, each
/// in the order forced in a copy of the process (see the module's
/// comment): every `snapshot` returns `(1, 5)`.
pub(super) fn a_waiting_snapshot_survives_overflows() {
    for step in 0..=STEPS {
        match in_a_copy(|| waiting_snapshot(step)) {
            // The first copy holds no write: it is the plain order.
            Ended::Returned(FORCED) => {}
            Ended::Returned(FEWER) if step > 0 => break,
            Ended::Returned(FEWER) => {}
            Ended::Returned(WAITER_PANICKED) if step == 0 => panic!(
                "a snapshot that was already waiting for the lock when an \
                 overflowing record panicked with the lock held panicked \
                 itself: the Stats must stay usable on every thread. A \
                 thread waiting in lock() gets Err(PoisonError) when the \
                 holder panics, however early the poison is cleared \
                 (clear_poison before lock() comes too late for it); take \
                 the guard out of the error \
                 (unwrap_or_else(PoisonError::into_inner)), or let go of \
                 the lock before panicking in record"
            ),
            Ended::Returned(WAITER_PANICKED) => panic!(
                "a snapshot found the lock poisoned by an overflowing \
                 record, and while it cleared the poison and took the lock \
                 again, another record overflowed and panicked with the \
                 lock held: the snapshot panicked. Clearing the poison and \
                 locking again are two steps another thread can come \
                 between; take the guard out of the first error itself \
                 (unwrap_or_else(PoisonError::into_inner)), or let go of \
                 the lock before panicking in record"
            ),
            ended => panic!(
                "a snapshot that waited for the lock while overflowing \
                 records panicked (on a Stats of (1, 5)) did not return \
                 (1, 5), a record(u64::MAX) did not panic, or the Stats \
                 was not (1, 5) afterwards ({ended:?}): an overflowing \
                 record must change nothing, and every thread's snapshot \
                 must go on working"
            ),
        }
    }
}
