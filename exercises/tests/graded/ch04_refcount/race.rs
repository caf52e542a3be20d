//! Two clones racing at the limit: a `MyArc` whose count is `isize::MAX`
//! is cloned on two threads at once, in a forked copy of the process. One
//! of the two increments finds the count above `isize::MAX`, whatever the
//! order, so a correct `clone`, which checks the value its own `fetch_add`
//! returned, always aborts the copy. A `clone` that loads the count, checks
//! it, and only then adds (two steps, not one) aborts only if the other
//! thread's increment came between them; in the order where both threads
//! load before either adds, neither aborts and the count goes past the
//! limit unchecked.
//!
//! That order is forced rather than hoped for. The value is alone on its
//! memory page (it is page-aligned and a page long), so the count lies on a
//! neighbouring page, or on the value's own if a page holds both; the copy
//! makes those pages read-only (`mprotect`) before the threads clone. A
//! load still reads them, but the first write to the count, the increment,
//! faults: the copy's `SIGSEGV` handler holds the thread there until both
//! threads are held (or have finished). The pages are then made writable
//! again and both threads let go; each redoes the write that faulted. By
//! then both have done whatever they do before their first write. Holding a
//! thread before a write is only a delay, one of the orders the threads
//! could have run in, so a correct `clone` still aborts. A count kept away
//! from the value (a separate allocation) is not on those pages: its
//! threads are not held, and the trial cannot force the order then, but a
//! correct `clone` still aborts.

use std::ffi::{c_int, c_long, c_void};
use std::hint;
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use exercises::ch04_refcount::MyArc;

use super::overflow::{Ended, in_a_copy};

// The C library's, which every Rust program on Linux links.
unsafe extern "C" {
    fn mprotect(addr: *mut c_void, len: usize, prot: c_int) -> c_int;
    fn signal(signum: c_int, handler: usize) -> usize;
    fn sysconf(name: c_int) -> c_long;
}

/// `SIGSEGV`, what a write to a read-only page raises: 11 on Linux.
const SIGSEGV: c_int = 11;
/// `SIG_DFL`, a signal's default action (for `SIGSEGV`: end the process).
const SIG_DFL: usize = 0;
/// `PROT_READ` and `PROT_WRITE`, for `mprotect`.
const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;
/// `_SC_PAGESIZE`, for `sysconf`, on Linux.
const SC_PAGESIZE: c_int = 30;

/// How many threads clone at once.
const THREADS: usize = 2;

/// A value alone on its page: no count, no other allocation shares it.
/// Its bytes are never read: only its size and alignment matter.
#[repr(align(4096))]
struct Page(#[allow(dead_code)] [u8; 4096]);

/// Threads ready to clone, once they have started (a started thread has
/// done the writes of its start-up, which may touch the held pages).
static READY: AtomicUsize = AtomicUsize::new(0);
/// Set when the pages are read-only: the threads may clone.
static GO: AtomicBool = AtomicBool::new(false);
/// Threads held by the handler, at a write to a read-only page.
static HELD: AtomicUsize = AtomicUsize::new(0);
/// Threads whose clone returned.
static DONE: AtomicUsize = AtomicUsize::new(0);
/// Set when the pages are writable again: held threads go on.
static RELEASED: AtomicBool = AtomicBool::new(false);

/// The copy's `SIGSEGV` handler: holds the thread until `RELEASED`, then
/// returns, and the write that faulted runs again, on a writable page. A
/// fault once the pages are writable again is a real one: it restores the
/// default action, so that the write, run again, ends the copy.
extern "C" fn hold(_signal: c_int) {
    if RELEASED.load(Ordering::SeqCst) {
        // SAFETY: restores the default action for `SIGSEGV`; only atomics
        // and this call run in the handler.
        unsafe { signal(SIGSEGV, SIG_DFL) };
        return;
    }
    HELD.fetch_add(1, Ordering::SeqCst);
    while !RELEASED.load(Ordering::SeqCst) {
        hint::spin_loop();
    }
}

/// Makes the pages that hold `[start, end)` read-only or writable again.
/// Pages that are not mapped (beyond the heap's end) are left alone.
fn protect(start: usize, end: usize, prot: c_int) {
    // SAFETY: `sysconf` has no preconditions.
    let page = usize::try_from(unsafe { sysconf(SC_PAGESIZE) })
        .expect("sysconf(_SC_PAGESIZE) failed");
    let mut at = start / page * page;
    while at < end {
        // SAFETY: only the protection of heap pages changes, and only
        // between writes of this trial's own threads, which the handler
        // holds; nothing else writes them meanwhile (see `race`).
        unsafe { mprotect(at as *mut c_void, page, prot) };
        at += page;
    }
}

/// In the copy: clones `arc` (whose count is `isize::MAX`) on two threads
/// at once, each held before its first write to the pages around the value
/// until both are, and answers 1 if the copy is still alive afterwards.
fn race(arc: &MyArc<Page>) -> u8 {
    let value = &**arc as *const Page as usize;
    let (start, end) =
        (value - size_of::<Page>(), value + 2 * size_of::<Page>());
    // SAFETY: `hold` only touches atomics and `signal`; this copy is ended
    // with `_exit` and never returns to the trial.
    unsafe { signal(SIGSEGV, hold as extern "C" fn(c_int) as usize) };
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                READY.fetch_add(1, Ordering::SeqCst);
                while !GO.load(Ordering::SeqCst) {
                    hint::spin_loop();
                }
                mem::forget(arc.clone());
                DONE.fetch_add(1, Ordering::SeqCst);
            });
        }
        while READY.load(Ordering::SeqCst) < THREADS {
            thread::yield_now();
        }
        // From here until `RELEASED`, this thread writes no heap memory:
        // it only reads atomics in static memory and yields.
        protect(start, end, PROT_READ);
        GO.store(true, Ordering::SeqCst);
        while HELD.load(Ordering::SeqCst) + DONE.load(Ordering::SeqCst)
            < THREADS
        {
            thread::yield_now();
        }
        protect(start, end, PROT_READ | PROT_WRITE);
        RELEASED.store(true, Ordering::SeqCst);
    });
    1
}

/// Two threads clone a `MyArc` whose count is `isize::MAX` at the same
/// moment, both having read the count before either adds to it: one of
/// them must abort the process.
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
    let ended = in_a_copy(|| race(&arc));
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
}
