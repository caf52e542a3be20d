//! A reader stopped between its last look at the `Stats` and its sleep is
//! still woken by the record that ends meanwhile.
//!
//! A `snapshot` that sleeps on a `Condvar` while a record is under way
//! checks that the record is still under way, then waits. If the record
//! ends and its `notify_all` comes between that check and the wait, nobody
//! is waiting yet: the reader then sleeps until the next record, for ever
//! if none follows. A wakeup sent while holding the `Condvar`'s mutex,
//! after the record has ended, cannot fall in that gap; nor has a lock
//! around both numbers, slept on, any such gap.
//!
//! The gap is a few instructions wide, so the trial forces it, in a copy of
//! the process (`in_a_copy`), with the `Stats` alone on pages of the
//! trial's own: one writer's `record` is held right after its first write
//! to the `Stats`, then (in the next copy) right after its second, and so
//! on (`FaultHold::after_the_first_write`); meanwhile a `snapshot` on
//! another thread is held right after its first access to the `Stats` (a
//! read too: the pages are unreadable then), then after its second, and so
//! on. At each such pair of points the record is let go until it has
//! ended (or sleeps, waiting for the held reader), then the reader: it
//! must return. Each hold is only a delay, one of the orders the threads
//! could have run in, so a correct `Stats` returns every time.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::thread;

use course::grader::fault_hold::{FaultHold, Pages, ProtFlags, page_size};
use course::grader::task::{self, Tid, Wait, Watched, asleep};
use exercises::ch04_refcount::Stats;

use super::overflow::{Ended, in_a_copy};

/// The copy's answers: the reader returned a consistent snapshot; the
/// writer finished before its `writes`-th write, or the reader before its
/// `accesses`-th access (so no later point exists); the reader was left
/// asleep after the writer had finished; it returned a torn snapshot.
const WOKEN: u8 = 1;
const FEWER_WRITES: u8 = 2;
const FEWER_ACCESSES: u8 = 3;
const LEFT_ASLEEP: u8 = 4;
const TORN: u8 = 5;

/// How many writes of the `record`, and accesses of the `snapshot`, are
/// tried in turn.
const WRITES: usize = 8;
const ACCESSES: usize = 24;

/// A thread of the copy: its id once it runs, and whether it has finished.
#[derive(Default)]
struct Seen {
    tid: AtomicI32,
    done: AtomicBool,
}

impl Seen {
    /// The thread's id, once it has started.
    fn tid(&self) -> Tid {
        loop {
            match self.tid.load(Ordering::SeqCst) {
                0 => thread::yield_now(),
                tid => return tid,
            }
        }
    }

    fn done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }
}

/// Runs `body` on a new thread that notes its id in `seen`, and when it
/// has finished. The thread is never joined: a reader left asleep ends
/// with the copy.
fn start(seen: &'static Seen, body: impl FnOnce() + Send + 'static) {
    thread::spawn(move || {
        seen.tid.store(task::me().tid, Ordering::SeqCst);
        body();
        seen.done.store(true, Ordering::SeqCst);
    });
}

/// Whether thread `tid` sleeps in a wait with no deadline, outside the
/// hold (where a thread sleeps too, until it leaves).
fn waits(hold: &FaultHold, tid: Tid) -> bool {
    asleep(tid)
        && !hold.is_held(tid)
        && matches!(task::wait(tid), Some((Wait::UntilWoken, _)))
}

/// Lets `tid`, held now, make its next access to the pages, and waits
/// until it is held right after it (`true`), or has finished or sleeps
/// outside the pages (`false`).
fn step(hold: &FaultHold, tid: Tid, seen: &Seen, prot: ProtFlags) -> bool {
    let holds = hold.holds();
    hold.protect(prot);
    hold.step_again();
    hold.let_go(tid);
    task::watch_until(tid, || {
        hold.holds() > holds || seen.done() || waits(hold, tid)
    }) && hold.holds() > holds
}

/// In the copy: a `Stats` of `(1, 1)` alone on pages of its own; a
/// `record(1)` held right after its `writes`-th write to it; a `snapshot`
/// on another thread held right after its `accesses`-th access to it; then
/// the `record` let go until it has finished (or sleeps), then the
/// `snapshot`, which must return.
fn stopped_reader(writes: usize, accesses: usize) -> u8 {
    assert!(
        align_of::<Stats>() <= page_size(),
        "a Stats aligned to a page"
    );
    let pages = Pages::new(size_of::<Stats>().div_ceil(page_size()).max(1));
    let (first, end) = (pages.start(), pages.start() + pages.bytes());
    // SAFETY: the pages are page-aligned, zeroed, large enough for a
    // `Stats`, and used for nothing else; the copy ends (`_exit`) without
    // unmapping them while a thread may still use the `Stats`.
    let stats: &'static Stats = unsafe {
        let at = first as *mut Stats;
        ptr::write(at, Stats::new());
        &*at
    };
    std::mem::forget(pages);
    stats.record(1);
    let writer: &'static Seen = Box::leak(Box::default());
    let reader: &'static Seen = Box::leak(Box::default());
    let answer: &'static AtomicU8 = Box::leak(Box::default());
    let hold = FaultHold::after_the_first_write(first, end);
    hold.protect(ProtFlags::PROT_READ);
    start(writer, move || stats.record(1));
    let wtid = writer.tid();
    let mut held =
        task::watch_until(wtid, || hold.holds() > 0 || writer.done())
            && hold.holds() > 0;
    for _ in 1..writes {
        held = held && step(&hold, wtid, writer, ProtFlags::PROT_READ);
    }
    if !held {
        return FEWER_WRITES;
    }
    // The writer is held inside `record`; now the reader, whose reads are
    // held too.
    let holds = hold.holds();
    hold.protect(ProtFlags::PROT_NONE);
    hold.step_again();
    start(reader, move || {
        let (count, total) = stats.snapshot();
        let seen = if count == total { WOKEN } else { TORN };
        answer.store(seen, Ordering::SeqCst);
    });
    let rtid = reader.tid();
    let mut held = task::watch_until(rtid, || {
        hold.holds() > holds || reader.done() || waits(&hold, rtid)
    }) && hold.holds() > holds;
    for _ in 1..accesses {
        held = held && step(&hold, rtid, reader, ProtFlags::PROT_NONE);
    }
    hold.protect(ProtFlags::PROT_READ | ProtFlags::PROT_WRITE);
    if !held {
        hold.let_go_all();
        return FEWER_ACCESSES;
    }
    // The record ends, or waits for the held reader.
    hold.let_go(wtid);
    task::watch_until(wtid, || writer.done() || waits(&hold, wtid));
    hold.let_go_all();
    // No deadline: a reader that neither returns nor sleeps is the
    // trial's timeout.
    let left_asleep = || writer.done() && waits(&hold, rtid);
    while !reader.done() && !left_asleep() {
        thread::yield_now();
    }
    if !reader.done()
        && task::watch_until_asleep(rtid) == Watched::AsleepUntilWoken
        && !reader.done()
    {
        return LEFT_ASLEEP;
    }
    while !reader.done() {
        thread::yield_now();
    }
    answer.load(Ordering::SeqCst)
}

/// A `snapshot` stopped at each of its first accesses to the `Stats`,
/// while a `record` is stopped at each of its writes (see the module's
/// comment): once the `record` ends, the `snapshot` returns, consistent.
pub(super) fn a_reader_stopped_before_its_wait_is_woken() {
    for writes in 1..=WRITES {
        for accesses in 1..=ACCESSES {
            match in_a_copy(|| stopped_reader(writes, accesses)) {
                Ended::Returned(WOKEN) => {}
                Ended::Returned(FEWER_ACCESSES) => break,
                Ended::Returned(FEWER_WRITES) => return,
                Ended::Returned(LEFT_ASLEEP) => panic!(
                    "a snapshot that found a record under way was stopped \
                     right after its access number {accesses} to the Stats \
                     (the writer right after its write number {writes}); \
                     the record then ended, and the snapshot, let go, went \
                     to sleep and was never woken, though no record was \
                     under way any more: the writer's wakeup came between \
                     the reader's last check and its wait, when nobody was \
                     waiting yet. Send the wakeup while holding the \
                     Condvar's mutex, after the record has ended (then it \
                     cannot fall between a reader's check and its wait), \
                     or sleep on one lock around both numbers"
                ),
                Ended::Returned(TORN) => panic!(
                    "a snapshot taken while a record(1) was stopped right \
                     after its write number {writes} returned a count and \
                     a total from different moments (every record was of \
                     1 ms): guard both numbers with one lock"
                ),
                ended => panic!(
                    "a snapshot taken while a record(1) was stopped right \
                     after its write number {writes}, itself stopped right \
                     after its access number {accesses} to the Stats, did \
                     not return a snapshot once both were let go \
                     ({ended:?}): record and snapshot must work whatever \
                     order they run in"
                ),
            }
        }
    }
}
