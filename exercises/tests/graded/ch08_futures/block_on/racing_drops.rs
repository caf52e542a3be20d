//! Two clones of `block_on`'s waker dropped on two threads at once, in the
//! one order that shows a reference count that is not atomic (an `Rc`
//! under a hand-made `RawWaker`, say): both threads read the count before
//! either writes it back, and one decrement is lost. The signal is then
//! never freed, which `returns_the_output`'s count of live bytes shows.
//!
//! The order is forced as chapter 4's `race.rs` forces it: the pages that
//! hold the count (which `Waker::from(Arc)`, like `Rc`, keeps just before
//! the data the waker points to) are made read-only while the threads
//! drop their clones. A load still reads them, but a write faults, and the
//! `SIGSEGV` handler holds the thread there until both threads are held
//! or done; then the pages are made writable again and the threads let
//! go, and each redoes the write that faulted. A thread held before a
//! write is only delayed, so a correct waker (whose `fetch_sub`, one
//! locked instruction, faults before it reads anything) counts right
//! whatever is held. A thread that is neither held nor done after a
//! grace (it waits for something else) ends the forcing, not the trial.
//!
//! Each trial runs in a process of its own, so the handler is this
//! process's for the while; while the pages are read-only, the polling
//! thread touches nothing but static memory, as does the handler.

use std::ffi::{c_int, c_long, c_void};
use std::hint;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::task::{Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use course::grader::task;

/// A thread id, as Linux's `gettid` returns it.
type Tid = i32;

// The C library's, which every Rust program on Linux links.
unsafe extern "C" {
    fn gettid() -> Tid;
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

/// How many threads drop a clone at once.
const THREADS: usize = 2;

/// How long the polling thread waits for a thread that is neither held
/// nor done before it lets the others go: it only ends the forcing.
const GRACE: Duration = Duration::from_secs(2);

/// What became of a racing thread: not started, ready, or done. Held
/// threads are in `HELD`.
const READY: u8 = 1;
const DONE: u8 = 2;

static STATE: [AtomicU8; THREADS] = [const { AtomicU8::new(0) }; THREADS];
/// Each thread's id, for the handler to know which thread it holds.
static TIDS: [AtomicI32; THREADS] = [const { AtomicI32::new(0) }; THREADS];
/// Set by the handler while it holds that thread.
static HELD: [AtomicBool; THREADS] =
    [const { AtomicBool::new(false) }; THREADS];
/// Set when the pages are read-only: the threads may drop their clones.
static GO: AtomicBool = AtomicBool::new(false);
/// Set when the pages are writable again: held threads go on.
static RELEASED: AtomicBool = AtomicBool::new(false);

/// The `SIGSEGV` handler: holds the thread until `RELEASED`, then
/// returns, and the write that faulted runs again, on a writable page. A
/// fault once the pages are writable again is a real one: it restores the
/// default action, so that the write, run again, ends the process.
extern "C" fn hold(_signal: c_int) {
    if RELEASED.load(Ordering::SeqCst) {
        // SAFETY: restores the default action for `SIGSEGV`; only atomics
        // and this call run in the handler.
        unsafe { signal(SIGSEGV, SIG_DFL) };
        return;
    }
    // SAFETY: `gettid` has no preconditions.
    let tid = unsafe { gettid() };
    let me = TIDS.iter().position(|t| t.load(Ordering::SeqCst) == tid);
    if let Some(me) = me {
        HELD[me].store(true, Ordering::SeqCst);
    }
    while !RELEASED.load(Ordering::SeqCst) {
        hint::spin_loop();
    }
}

/// Makes the pages that hold `[start, end)` read-only or writable again.
fn protect(start: usize, end: usize, prot: c_int) {
    // SAFETY: `sysconf` has no preconditions.
    let page = usize::try_from(unsafe { sysconf(SC_PAGESIZE) })
        .expect("sysconf(_SC_PAGESIZE) failed");
    let mut at = start / page * page;
    while at < end {
        // SAFETY: only the protection of heap pages changes, and only
        // while no thread but the racing ones writes them.
        unsafe { mprotect(at as *mut c_void, page, prot) };
        at += page;
    }
}

/// Whether every racing thread is held at a write, or done.
fn all_settled() -> bool {
    (0..THREADS).all(|i| {
        STATE[i].load(Ordering::SeqCst) == DONE
            || HELD[i].load(Ordering::SeqCst)
    })
}

/// Polled by `block_on`, once: clones the waker twice, and drops the two
/// clones on two threads at once with the count's pages read-only (see the
/// module's doc); then answers `Ready`. By then the waker's count is back
/// to what it was before the clones, if its decrements are atomic.
pub(super) fn drop_two_clones_at_once(waker: &Waker) -> Poll<()> {
    let clones: [Waker; THREADS] = [waker.clone(), waker.clone()];
    // The count, for `Waker::from(Arc)` as for `Rc`, is in the two words
    // before the data; the data's first word is protected too.
    let data = waker.data() as usize;
    let pages = (data.saturating_sub(16), data + 8);
    // SAFETY: `hold` only uses atomics, `gettid` and `signal`, which a
    // signal handler may.
    let before = unsafe { signal(SIGSEGV, hold as *const () as usize) };
    // Joined, not scoped: a scope ends before its threads have freed what
    // they keep for themselves, and the trial counts every byte.
    let mut i = 0;
    let threads = clones.map(|clone| {
        let me = i;
        i += 1;
        thread::spawn(move || {
            TIDS[me].store(task::me().tid, Ordering::SeqCst);
            STATE[me].store(READY, Ordering::SeqCst);
            while !GO.load(Ordering::SeqCst) {
                hint::spin_loop();
            }
            drop(clone);
            STATE[me].store(DONE, Ordering::SeqCst);
        })
    });
    while (0..THREADS).any(|i| STATE[i].load(Ordering::SeqCst) != READY) {
        thread::yield_now();
    }
    protect(pages.0, pages.1, PROT_READ);
    GO.store(true, Ordering::SeqCst);
    // Only static memory and the stack from here to `RELEASED`.
    let started = Instant::now();
    while !all_settled() && started.elapsed() < GRACE {
        thread::yield_now();
    }
    protect(pages.0, pages.1, PROT_READ | PROT_WRITE);
    RELEASED.store(true, Ordering::SeqCst);
    for thread in threads {
        thread
            .join()
            .expect("a thread that drops a clone of the waker");
    }
    // SAFETY: puts back the handler that was there before (std's).
    unsafe { signal(SIGSEGV, before) };
    Poll::Ready(())
}
