//! `VisitCounter` across `u32::MAX`, with the visit that carries the count
//! held right after each of its writes in turn: `total()` read meanwhile is
//! a count the counter really had.
//!
//! The counter lies on a page of the trial's own, made read-only. The
//! visit that takes the count from `u32::MAX` to `1 << 32` faults at its
//! first write to the counter; the `SIGSEGV` handler lets that write
//! through, single-stepped, and holds the thread right after it (a
//! [`FaultHold::after_the_first_write`]); in the next round, after its
//! second write, and so on. While the visit is held, another thread reads
//! `total()`. A count kept as two 32-bit halves, written one after the
//! other under a lock and read without it, gives that reader the new high
//! half with the old low half: `0x1_FFFF_FFFF`. Holding a thread is only a
//! delay, one of the orders the threads could have run in, so a correct
//! counter passes whatever is held; a reader that waits for a lock the
//! held visit holds is seen asleep (or spinning), and the visit is let go.
//! Only on x86-64, where a write can be single-stepped; elsewhere the visit
//! just runs.

use std::mem;
use std::panic;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread;

use course::grader::fault_hold::{FaultHold, Pages, ProtFlags};
use course::grader::task::{self, Tid};
use exercises::ch01_threads::VisitCounter;

/// How many writes of the visit are held after, one per round: a lock
/// taken, two halves written, the lock let go, and some to spare. A visit
/// with fewer writes just ends in the later rounds.
const WRITES: usize = 6;

/// One round per write of the carrying visit: the `total()` read while the
/// visit is held right after that write must be `u32::MAX` or `1 << 32`.
pub(super) fn total_is_never_half_carried() {
    // Before any page is protected: the stub panics here.
    let _: VisitCounter = VisitCounter::new();
    let pages = Pages::new(1);
    if mem::size_of::<VisitCounter>() > pages.bytes() {
        return;
    }
    let before = u64::from(u32::MAX);
    for writes in 1..=WRITES {
        let seen = read_while_held(&pages, writes);
        assert!(
            seen == before || seen == before + 1,
            "the count was u32::MAX ({before}), and while one visit took it \
             to 2^32, held right after its write number {writes} to the \
             counter, another thread read total() = {seen:#x}: neither \
             u32::MAX nor 2^32, a count the counter never had. Is the count \
             two 32-bit halves, written one after the other and read \
             without the lock, so that a reader sees the high half of one \
             count and the low half of the other? Read both under the lock, \
             or keep the count in one AtomicU64"
        );
    }
}

/// A new counter at `u32::MAX` on `pages`; one visit held right after its
/// `writes`-th write to it (or ended, if it makes fewer), while another
/// thread reads `total()`, until that read returns or the reader sleeps
/// or spins (waiting for a lock the held visit holds); then the visit
/// goes on. Returns what the reader read.
fn read_while_held(pages: &Pages, writes: usize) -> u64 {
    let counter = pages.start() as *mut VisitCounter;
    // SAFETY: the page is writable, the trial's alone, page-aligned and
    // large enough for a `VisitCounter`.
    unsafe { ptr::write(counter, VisitCounter::new()) };
    // SAFETY: as above; the counter is used only by reference until it is
    // dropped in place below, after every thread using it has ended.
    let shared: &VisitCounter = unsafe { &*counter };
    shared.set_total_for_tests(u64::from(u32::MAX));
    let hold = FaultHold::after_the_first_write(
        pages.start(),
        pages.start() + pages.bytes(),
    );
    let writable = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
    let visitor = AtomicI32::new(0);
    let visited = AtomicBool::new(false);
    let reader = AtomicI32::new(0);
    let read = AtomicBool::new(false);
    let tid = |slot: &AtomicI32| -> Tid {
        loop {
            match slot.load(Ordering::SeqCst) {
                0 => thread::yield_now(),
                tid => break tid,
            }
        }
    };
    hold.protect(ProtFlags::PROT_READ);
    let seen = thread::scope(|s| {
        let visit = s.spawn(|| {
            visitor.store(task::me().tid, Ordering::SeqCst);
            let ticket = shared.record();
            visited.store(true, Ordering::SeqCst);
            ticket
        });
        for write in 1..=writes {
            // Until the visit is held after this write, or has returned.
            while hold.holds() < write && !visited.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            if write < writes && !visited.load(Ordering::SeqCst) {
                // Held after an earlier write: on to the next one.
                hold.protect(ProtFlags::PROT_READ);
                hold.step_again();
                hold.let_go(tid(&visitor));
            }
        }
        // Held (the handler gave the page its access back) or ended.
        hold.protect(writable);
        let read_total = s.spawn(|| {
            reader.store(task::me().tid, Ordering::SeqCst);
            let total = shared.total();
            read.store(true, Ordering::SeqCst);
            total
        });
        let reading = tid(&reader);
        // No deadline: a reader that spins is told by its CPU time.
        task::watch_until(reading, || {
            read.load(Ordering::SeqCst) || task::asleep(reading)
        });
        hold.let_go_all();
        // A panic in `record` or `total` is passed on, now that no thread
        // is held.
        visit.join().unwrap_or_else(|p| panic::resume_unwind(p));
        read_total
            .join()
            .unwrap_or_else(|p| panic::resume_unwind(p))
    });
    // The handler is put back before the counter is dropped.
    drop(hold);
    // SAFETY: every thread that used the counter has ended; the page is
    // writable.
    unsafe { ptr::drop_in_place(counter) };
    seen
}
