//! A waiter woken as the lock is freed, and a thread that calls `with_gil`
//! just then: the interleaving forced, not hoped for.
//!
//! Thread H is inside `with_gil` while thread S waits, asleep. A signal
//! holds S still in its wait, as a thread the operating system does not
//! get round to waking, and H leaves. The `ToyGil` lies on memory of the
//! trial's own, part of which the trial then makes read-only: the next
//! write a thread makes there faults, and the thread is held at it (see
//! `course::grader::fault_hold`). S is let go, and is held at its first
//! write there, or gets in, or sleeps again; then thread P calls
//! `with_gil`, and is held at its first write there, or gets in, or sleeps.
//! P's write is let through first, then S's. Holding a thread before a
//! write is only a delay, one of the orders the threads could have run in,
//! so a right lock still lets one thread in at a time. A lock whose woken
//! waiter reads "free" and then claims the lock with a plain store (a
//! check and a claim that its sleepers' mutex guards from other sleepers,
//! but not from a thread that takes the lock with a compare-exchange
//! without that mutex) is held between the two: P takes the free lock
//! meanwhile, and the store lets S in as well.
//!
//! Which of the lock's words the read-only memory holds is the lock's
//! own layout, so the trial tries each split: the `ToyGil` lies across a
//! page boundary, cut at each multiple of its alignment, and either page
//! is made read-only.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use course::grader::fault_hold::{self, FaultHold, Pages, ProtFlags};
use course::grader::task::{self, Tid, Wait};
use exercises::ch03_gil::ToyGil;

/// Runs the trial for every split of the `ToyGil` (see the module's
/// comment), and returns the most threads seen inside at once.
pub(in super::super) fn a_waiter_woken_as_another_calls() -> usize {
    let (size, align) = (size_of::<ToyGil>(), align_of::<ToyGil>());
    if size == 0 {
        return 1;
    }
    // The bytes before the cut lie on the first page, the rest on the
    // second; `true` makes the first page read-only, `false` the second.
    let mut splits = vec![(0, false)];
    for cut in (align..size).step_by(align) {
        splits.extend([(cut, true), (cut, false)]);
    }
    splits
        .into_iter()
        .map(|(cut, first)| woken_as_another_calls(cut, first))
        .max()
        .unwrap_or(1)
}

/// How many threads are inside `with_gil` now and the most seen at once,
/// whether threads S and P have got in, and whether P may leave.
struct Inside {
    now: AtomicUsize,
    most: AtomicUsize,
    s_entered: AtomicBool,
    p_entered: AtomicBool,
    leave: AtomicBool,
}

impl Inside {
    fn enter(&self, entered: &AtomicBool) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        entered.store(true, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One round, with the `ToyGil` cut at byte `cut` and the first page (or
/// the second) read-only. Returns the most threads seen inside at once.
fn woken_as_another_calls(cut: usize, first: bool) -> usize {
    let page = fault_hold::page_size();
    let pages = Pages::new(2);
    let at = (pages.start() + page - cut) as *mut ToyGil;
    // SAFETY: `at` is aligned (the page is, and `cut` is a multiple of the
    // alignment), and the two pages, the trial's own, hold the whole
    // `ToyGil`; it is dropped in place before they are unmapped.
    unsafe { at.write(ToyGil::new()) };
    // SAFETY: just written, and dropped only after the last use.
    let gil = unsafe { &*at };
    let read_only = if first {
        (pages.start(), pages.start() + page)
    } else {
        (pages.start() + page, pages.start() + 2 * page)
    };
    let inside = Inside {
        now: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
        s_entered: AtomicBool::new(false),
        p_entered: AtomicBool::new(false),
        leave: AtomicBool::new(false),
    };
    thread::scope(|s| {
        let inside = &inside;
        let (h_in, h_is_in) = mpsc::channel();
        let (h_may_go, h_go) = mpsc::channel::<()>();
        let h = s.spawn(move || {
            gil.with_gil(|| {
                h_in.send(task::me().tid).expect("the trial vanished");
                let _ = h_go.recv();
            });
        });
        let h_tid = h_is_in.recv().expect("thread H vanished");
        let (s_calling, s_is_calling) = mpsc::channel();
        s.spawn(move || {
            s_calling.send(task::me()).expect("the trial vanished");
            gil.with_gil(|| {
                inside.enter(&inside.s_entered);
                inside.leave();
            });
        });
        let sleeper = s_is_calling.recv().expect("thread S vanished");
        let asleep = task::watch_until_asleep(sleeper.tid);
        if asleep != task::Watched::AsleepUntilWoken {
            // S spins or polls: no sleeper to hold in its wait.
            let _ = h_may_go.send(());
            return;
        }
        task::freeze(sleeper);
        let _ = h_may_go.send(());
        let h_left =
            task::watch_until(h_tid, || h.is_finished() || untimed_wait(h_tid))
                && h.is_finished();
        if !h_left {
            // H's way out needs S (blocked, or spinning): no forcing.
            task::thaw();
            return;
        }
        let hold = FaultHold::new(read_only.0, read_only.1);
        hold.protect(ProtFlags::PROT_READ);
        task::thaw();
        settle(&hold, sleeper.tid, &inside.s_entered);
        let (p_calling, p_is_calling) = mpsc::channel();
        s.spawn(move || {
            p_calling.send(task::me().tid).expect("the trial vanished");
            gil.with_gil(|| {
                inside.enter(&inside.p_entered);
                while !inside.leave.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_micros(50));
                }
                inside.leave();
            });
        });
        let p = p_is_calling.recv().expect("thread P vanished");
        settle(&hold, p, &inside.p_entered);
        // P's write first, then S's.
        hold.protect(ProtFlags::PROT_READ | ProtFlags::PROT_WRITE);
        let_go(&hold, p, &inside.p_entered);
        let_go(&hold, sleeper.tid, &inside.s_entered);
        inside.leave.store(true, Ordering::SeqCst);
        drop(hold);
    });
    // SAFETY: every thread that used it has been joined.
    unsafe { ptr::drop_in_place(at) };
    drop(pages);
    inside.most.load(Ordering::SeqCst)
}

/// Lets thread `tid` go on if it is held, waits until it has left the
/// handler that held it, and then as [`settle`] does.
fn let_go(hold: &FaultHold, tid: Tid, entered: &AtomicBool) {
    hold.let_go(tid);
    while hold.is_held(tid) {
        thread::yield_now();
    }
    settle(hold, tid, entered);
}

/// Whether thread `tid` sleeps (state `S`) in a wait with no deadline: a
/// thread that goes back to a wait whose futex has changed meanwhile
/// (as after a signal's handler) leaves it at once, without sleeping.
fn untimed_wait(tid: Tid) -> bool {
    task::asleep(tid) && matches!(task::wait(tid), Some((Wait::UntilWoken, _)))
}

/// Watches thread `tid` until it is held at a write to the read-only
/// memory, has got in (`entered`), has ended, or has been seen asleep in a
/// wait with no deadline on 10 looks in a row, a millisecond apart; or
/// until it has used `task::BUSY_TICKS` of CPU time (it spins).
fn settle(hold: &FaultHold, tid: Tid, entered: &AtomicBool) {
    let mut asleep_in_a_row = 0;
    task::watch_until(tid, || {
        if hold.is_held(tid)
            || entered.load(Ordering::SeqCst)
            || task::state(tid).is_none()
        {
            return true;
        }
        asleep_in_a_row = if untimed_wait(tid) {
            asleep_in_a_row + 1
        } else {
            0
        };
        thread::sleep(Duration::from_millis(1));
        asleep_in_a_row >= 10
    });
}
