//! Two threads racing at a limit, in the one order that shows a check made
//! apart from the write it guards: both threads read before either writes.
//!
//! - Two threads clone one `MyArc`, or drop a clone each, at once; the
//!   last two owners of one are dropped on two threads at once (see
//!   `arc_racing_updates_are_counted`).
//! - A `MyArc` whose count is `isize::MAX` is cloned on two threads at
//!   once. One of the two increments finds the count above `isize::MAX`,
//!   whatever the order, so a correct `clone`, which checks the value its
//!   own `fetch_add` returned, always aborts. A `clone` that loads the
//!   count, checks it, and only then adds aborts only if the other thread's
//!   increment came between them; when both load before either adds,
//!   neither aborts, and the count goes past the limit unchecked. (Then a
//!   drop on another thread is forced between a clone's increment and its
//!   check, another order, single-stepped: see `race/step.rs`.)
//! - A `Stats` whose total is 10 below `u64::MAX` records 10 on two threads
//!   at once. Only one of the two fits, whatever the order, so a correct
//!   `record`, whose check and update are one step under one lock, panics
//!   on exactly one thread. A `record` whose writers do not keep each other
//!   out (a check on a loaded total, then a separate `fetch_add`) lets
//!   both through when both load before either adds, and the total wraps.
//!
//! That order is forced rather than hoped for, in a forked copy of the
//! process (`overflow::in_a_copy`). The copy makes the memory the threads
//! write read-only (`mprotect`) before they start: a load still reads it,
//! but a write faults, and a `SIGSEGV` handler holds the thread there
//! (`course::grader::fault_hold::race`) until every thread is held, asleep (waiting for a lock another
//! holds), or finished. The memory is then made writable again and the
//! held threads let go; each redoes the write that faulted. Holding a
//! thread before a write is only a delay, one of the orders the threads
//! could have run in, so a correct solution gives a correct result
//! whatever is held. (A thread that spins without writing is never held;
//! once it has used a fifth of a second of its own CPU time,
//! `course::grader::task::BUSY_TICKS`, the trial stops waiting for it and
//! lets the others go: that ends the forcing, never the trial.)
//!
//! Which memory? For `MyArc`, the value is alone on its page (page-aligned
//! and a page long), so the count lies on a neighbouring page, or on the
//! value's own if a page holds both: those pages. A count kept apart from
//! the value (a separate allocation) is not there: its threads are not
//! held, and the order is not forced, but a correct `clone` still aborts.
//! For `Stats`, whose fields the trial cannot name, the `Stats` is placed
//! across the boundary of two pages of its own, at every offset its
//! alignment allows, and one page or the other is made read-only: at some
//! offset, its lock lies on the writable page and its total on the
//! read-only one, and both threads are held after taking the lock and
//! reading the total, before adding to it.

use std::array;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use course::grader::fault_hold::{page_size, race};
use exercises::ch04_refcount::{MyArc, Stats};

use super::overflow::{Ended, in_a_copy};

// A drop forced between a clone's increment and its check.
mod step;

/// How many threads race.
const THREADS: usize = 2;

/// A value alone on its page: no count, no other allocation shares it.
/// Its bytes are never read: only its size and alignment matter.
#[repr(align(4096))]
struct Page(#[allow(dead_code)] [u8; 4096]);

/// A `Page` that counts its drops, in static memory (the heap may be
/// read-only when it is dropped).
#[repr(align(4096))]
struct CountedPage(#[allow(dead_code)] [u8; 4096]);

/// How many `CountedPage`s were dropped.
static PAGE_DROPS: AtomicUsize = AtomicUsize::new(0);

impl Drop for CountedPage {
    fn drop(&mut self) {
        PAGE_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

/// The pages around a `MyArc`'s value, a page long and page-aligned, where
/// its count lies unless it is kept in an allocation of its own.
fn around<T>(arc: &MyArc<T>) -> (usize, usize) {
    const PAGE: usize = size_of::<Page>();
    let value = &raw const **arc as usize;
    (value - PAGE, value + 2 * PAGE)
}

/// Two threads clone one `MyArc` at the same moment, and then, in another
/// copy, two threads drop a clone each, both having read the count before
/// either writes it: the count must be three after the clones and one
/// after the drops. A `clone` or `drop` that loads the count and then
/// stores a new one, in two steps rather than one `fetch_add` or
/// `fetch_sub`, loses one of the two updates in this order, on any machine,
/// where eight threads at full speed only lose one by chance. Then, in a
/// third copy, the last two owners are dropped the same way: the value must
/// be dropped once, which a `drop` that loads the count to decide who
/// frees and then decrements it fails in this order. (A
/// `compare_exchange(1, 0)` fast path is held at the `compare_exchange`
/// itself, which writes even when it fails, so this order is not forced
/// for it: the loom model `the_last_two_owners_drop_the_value_once` is.)
pub fn arc_racing_updates_are_counted() {
    let arc = MyArc::new(Page([7; 4096]));
    // Plain clones and drops first, so that a `todo!()` ends the trial here
    // as TODO rather than in a copy.
    drop(arc.clone());
    let counted = |ended: Ended| match ended {
        Ended::Returned(count) => usize::from(count),
        other => panic!(
            "two threads cloning or dropping one MyArc at the same moment \
             ended the process ({other:?}) instead of counting"
        ),
    };
    let cloned = counted(in_a_copy(|| {
        race(
            around(&arc),
            array::from_fn::<_, THREADS, _>(|_| || mem::forget(arc.clone())),
        );
        MyArc::strong_count(&arc).min(99) as u8
    }));
    assert_eq!(
        cloned, 3,
        "one MyArc was cloned by two threads at the same moment, each \
         reading the count before either wrote it, and the count came out \
         {cloned}, not 3: an update was lost. Loading the count and then \
         storing it plus one is two steps another thread can come between; \
         fetch_add reads and writes in one indivisible step"
    );
    let dropped = counted(in_a_copy(|| {
        let clones = [arc.clone(), arc.clone()];
        race(around(&arc), clones.map(|clone| move || drop(clone)));
        MyArc::strong_count(&arc).min(99) as u8
    }));
    assert_eq!(
        dropped, 1,
        "two clones of a MyArc whose count was 3 were dropped by two threads \
         at the same moment, each reading the count before either wrote it, \
         and the count came out {dropped}, not 1: an update was lost. \
         Loading the count and then storing it minus one is two steps \
         another thread can come between; fetch_sub reads and writes in one \
         indivisible step"
    );
    // The last two owners, on two threads at once: one of the two
    // decrements takes the count to zero, whatever the order, and that
    // thread, and it alone, drops the value.
    let drops = counted(in_a_copy(|| {
        let mine = MyArc::new(CountedPage([7; 4096]));
        let owners = [mine.clone(), mine];
        race(around(&owners[0]), owners.map(|owner| move || drop(owner)));
        PAGE_DROPS.load(Ordering::SeqCst).min(99) as u8
    }));
    assert_eq!(
        drops, 1,
        "the last two owners of a MyArc were dropped by two threads at the \
         same moment, each reading the count before either wrote it, and \
         the value was dropped {drops} times, not once. Whoever frees must \
         be decided by what fetch_sub itself returned (1: this thread was \
         the last): a check made apart from the decrement (a load before a \
         fetch_sub whose result is ignored) sees 2 on both threads, and \
         then neither frees"
    );
}

/// Two threads clone a `MyArc` whose count is `isize::MAX` at the same
/// moment, both having read the count before either adds to it: one of
/// them must abort the process. Then a clone of a `MyArc` whose count is
/// `isize::MAX + 1`, with a drop on another thread right after the clone's
/// increment (`step`), must abort too.
pub fn arc_racing_clones_abort() {
    const LIMIT: usize = isize::MAX as usize;
    let arc = MyArc::new(Page([7; 4096]));
    // A plain clone first, so that a `todo!()` in `clone` ends the trial
    // here as TODO rather than in the copy.
    drop(arc.clone());
    // SAFETY: the count stays at least the one `MyArc` there is, no other
    // thread exists, and it is put back to exactly one before that `MyArc`
    // is dropped.
    unsafe { MyArc::set_strong_count_for_tests(&arc, LIMIT) };
    let ended = in_a_copy(|| {
        race(
            around(&arc),
            array::from_fn::<_, THREADS, _>(|_| || mem::forget(arc.clone())),
        );
        1
    });
    // SAFETY: one `MyArc` points to the value: this one.
    unsafe { MyArc::set_strong_count_for_tests(&arc, 1) };
    match ended {
        Ended::Aborted => {}
        Ended::Returned(_) => panic!(
            "two threads cloned a MyArc whose count was isize::MAX at the \
             same moment, each reading the count before either added to \
             it, and neither aborted: the count went past isize::MAX \
             unchecked. A check on a count loaded before the increment \
             (load, compare, then fetch_add) can be passed by every thread \
             at once; check the value fetch_add itself returned, which no \
             other thread can share"
        ),
        Ended::Panicked => panic!(
            "two threads cloning a MyArc whose count was isize::MAX at the \
             same moment panicked instead of aborting (std::process::abort)"
        ),
        Ended::Otherwise(status) => panic!(
            "two threads cloning a MyArc whose count was isize::MAX at the \
             same moment ended the process with {status}, not with an \
             abort (std::process::abort)"
        ),
    }
    match step::clone_with_a_drop_after_the_increment() {
        Ended::Aborted => {}
        Ended::Returned(step::RETURNED_AFTER_THE_DROP) => panic!(
            "a MyArc whose count was isize::MAX + 1 was cloned, and another \
             thread dropped a clone of it right after the clone's \
             increment, and the clone did not abort: it checked the count \
             read again after its increment (one lower by then, back at the \
             limit) rather than the value fetch_add itself returned, which \
             no other thread can change"
        ),
        Ended::Returned(_) => panic!(
            "cloning a MyArc whose count was isize::MAX + 1 returned without \
             aborting; abort whenever fetch_add returns more than isize::MAX"
        ),
        Ended::Panicked => panic!(
            "cloning a MyArc whose count was isize::MAX + 1, with a clone \
             dropped on another thread meanwhile, panicked instead of \
             aborting (std::process::abort)"
        ),
        Ended::Otherwise(status) => panic!(
            "cloning a MyArc whose count was isize::MAX + 1, with a clone \
             dropped on another thread meanwhile, ended the process with \
             {status}, not with an abort (std::process::abort)"
        ),
    }
}

/// Two pages of memory of their own, page-aligned, for a `Stats` placed
/// across their boundary.
#[repr(C, align(4096))]
struct TwoPages([u8; 8192]);

/// What the copy answers: the overflow was refused once, as it must be;
/// both latencies were recorded (the total wrapped); or something else.
const REFUSED_ONCE: u8 = 1;
const BOTH_RECORDED: u8 = 2;
const OTHERWISE: u8 = 3;

/// In the copy: a `Stats` whose first `split` bytes end one page and whose
/// others start the next, with one of the two pages (`first` or not)
/// read-only while two threads each record a latency of 10 on a total 10
/// below `u64::MAX`.
fn record_across(split: usize, first: bool) -> u8 {
    const PAGE: usize = 4096;
    assert!(page_size() <= PAGE, "pages larger than 4096 bytes");
    let mut pages = Box::new(TwoPages([0; 8192]));
    let base = pages.0.as_mut_ptr();
    // SAFETY: `PAGE - split` is within the two pages, leaves room for a
    // whole `Stats` (`split` is below its size), and is a multiple of its
    // alignment (as `split` is, and the pages are page-aligned).
    let stats = unsafe {
        let at = base.add(PAGE - split).cast::<Stats>();
        ptr::write(at, Stats::new());
        &*at
    };
    stats.record(u64::MAX - 10);
    let page = base as usize + if first { 0 } else { PAGE };
    let refused: [AtomicBool; THREADS] = Default::default();
    race(
        (page, page + PAGE),
        array::from_fn::<_, THREADS, _>(|i| {
            let refused = &refused[i];
            move || {
                let recorded =
                    panic::catch_unwind(AssertUnwindSafe(|| stats.record(10)));
                refused.store(recorded.is_err(), Ordering::SeqCst);
            }
        }),
    );
    let refusals = refused.iter().filter(|r| r.load(Ordering::SeqCst)).count();
    match (refusals, stats.snapshot()) {
        (1, (2, u64::MAX)) => REFUSED_ONCE,
        (0, _) => BOTH_RECORDED,
        _ => OTHERWISE,
    }
}

/// Two threads record latencies that fit one at a time but not together,
/// both having read the total before either adds to it: exactly one of
/// them must panic, and the total must stay at `u64::MAX`.
pub fn racing_overflows_are_refused() {
    let stats = Stats::new();
    stats.record(1);
    assert_eq!(stats.snapshot(), (1, 1));
    let align = align_of::<Stats>();
    for split in (align..size_of::<Stats>()).step_by(align) {
        for first in [true, false] {
            let ended = in_a_copy(|| record_across(split, first));
            match ended {
                Ended::Returned(REFUSED_ONCE) => {}
                Ended::Returned(BOTH_RECORDED) => panic!(
                    "two threads recorded 10 ms at the same moment on a \
                     total 10 ms below u64::MAX, each reading the total \
                     before either added to it, and both were recorded: \
                     the total wrapped. A check on a total loaded before a \
                     separate fetch_add can be passed by every writer at \
                     once (a read lock lets writers in together); writers \
                     must keep each other out, not only keep readers out: \
                     check and update under one lock"
                ),
                Ended::Returned(_) => panic!(
                    "two threads recorded 10 ms at the same moment on a \
                     total 10 ms below u64::MAX: exactly one must panic, \
                     and the snapshot afterwards must be (2, u64::MAX); \
                     both panicked, or the snapshot was another"
                ),
                Ended::Panicked => panic!(
                    "recording on a total 10 ms below u64::MAX panicked \
                     outside the two racing records"
                ),
                Ended::Aborted | Ended::Otherwise(_) => panic!(
                    "two threads recording 10 ms at the same moment on a \
                     total 10 ms below u64::MAX ended the process \
                     ({ended:?}); one of them must panic, and the other \
                     record"
                ),
            }
        }
    }
}
