//! Memory a solution never frees: the graded binary counts the bytes it
//! has allocated and not yet freed, so a trial can check that dropping
//! what an exercise owns gives every byte back (a reference count that
//! never reaches zero, a cycle, a `mem::forget`).
//!
//! `exercises/tests/graded.rs` installs [`Counting`] as the global
//! allocator; a trial reads [`live_bytes`] before and after.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::process;
use std::sync::atomic::{AtomicIsize, Ordering};

/// Bytes allocated and not yet freed, by every thread of this process.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// The most bytes [`LIVE`] has held since [`peak_during`] last reset it.
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// A hook set by [`before_this_thread_allocates`]: the least size of an
/// allocation that calls it, and the hook. Constant-initialised, with no
/// destructor, so the allocator can read it without allocating.
type Hook = (usize, *const (dyn Fn() + Sync + 'static));

thread_local! {
    static HOOK: Cell<Option<Hook>> = const { Cell::new(None) };
}

/// Counts `size` more live bytes, and keeps the peak.
fn count(size: isize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

/// Calls this thread's hook, if it has one and `size` is large enough: once,
/// for it is taken out first (so the allocations the hook makes are
/// ordinary ones). A hook that panics aborts the process: a panic must not
/// unwind out of an allocator.
fn call_hook(size: usize) {
    let hook = HOOK.try_with(|slot| match slot.get() {
        Some((least, hook)) if size >= least => slot.take().map(|_| hook),
        _ => None,
    });
    if let Ok(Some(hook)) = hook {
        // SAFETY: `before_this_thread_allocates` clears the slot before the
        // hook it borrows goes out of scope, so the pointer is still valid.
        let hook = unsafe { &*hook };
        if panic::catch_unwind(AssertUnwindSafe(hook)).is_err() {
            process::abort();
        }
    }
}

/// The system allocator, counting live bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

// SAFETY: every method forwards to `System` with the same arguments, so
// `Counting` keeps every promise `System` makes; the counter is a plain
// atomic that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        call_hook(layout.size());
        // SAFETY: the caller's promises for `alloc` hold for `System` too.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            count(layout.size() as isize);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from `alloc` above, which is `System`'s.
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        call_hook(layout.size());
        // SAFETY: as for `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            count(layout.size() as isize);
        }
        pointer
    }

    unsafe fn realloc(
        &self,
        pointer: *mut u8,
        layout: Layout,
        new_size: usize,
    ) -> *mut u8 {
        call_hook(new_size);
        // SAFETY: `pointer` and `layout` came from this allocator, which is
        // `System`'s, and the caller's promises for `new_size` hold.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        moved
    }
}

/// Bytes allocated and not yet freed, now. Only meaningful in a binary
/// that installed [`Counting`]; elsewhere it stays 0.
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// The bytes that `f` allocated and left allocated: live bytes after it
/// minus before. Panics (failing the trial loudly, rather than passing on
/// a count of zero) when this binary does not count.
pub fn left_allocated_by(f: impl FnOnce()) -> isize {
    assert!(counting(), "the graded binary counts live bytes");
    let before = live_bytes();
    f();
    live_bytes() - before
}

/// What `f` returns, and the most bytes that were live at once while it
/// ran (on any thread), above those live when it started: a buffer made
/// and freed inside `f` shows in it, and so does one copied into another
/// while both live. Panics when this binary does not count.
pub fn peak_during<R>(f: impl FnOnce() -> R) -> (R, isize) {
    assert!(counting(), "the graded binary counts live bytes");
    let before = live_bytes();
    PEAK.store(before, Ordering::Relaxed);
    let result = f();
    (result, PEAK.load(Ordering::Relaxed) - before)
}

/// Runs `f` and returns what it returns, calling `hook` once, on this
/// thread, just before the first allocation of `least` bytes or more that
/// this thread makes inside `f`; that allocation waits until `hook`
/// returns. So a trial can pause a thread at the moment it copies a key or
/// grows a buffer (a pause that blocks on a barrier or a channel), and do
/// something meanwhile. The allocations `hook` makes are ordinary ones; if
/// `hook` panics, the process aborts (a panic must not unwind out of the
/// allocator). Only in a binary that installed [`Counting`]; elsewhere the
/// hook is never called.
pub fn before_this_thread_allocates<R>(
    least: usize,
    hook: &(dyn Fn() + Sync),
    f: impl FnOnce() -> R,
) -> R {
    /// Clears the slot as `f` returns or unwinds, while `hook` still lives.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            HOOK.with(|slot| slot.set(None));
        }
    }
    // SAFETY: only the lifetime changes; `Clear` takes the pointer out of
    // the slot before `hook` goes out of scope, and the allocator calls it
    // only on this thread, inside `f`.
    let hook: *const (dyn Fn() + Sync + 'static) =
        unsafe { std::mem::transmute(hook as *const (dyn Fn() + Sync)) };
    HOOK.with(|slot| slot.set(Some((least, hook))));
    let _clear = Clear;
    f()
}

/// Whether this binary counts (installed [`Counting`]): a trial that
/// checks for leaks fails loudly rather than pass on a count of zero.
pub fn counting() -> bool {
    let before = live_bytes();
    let probe = std::hint::black_box(Box::new([0u8; 64]));
    let during = live_bytes();
    drop(probe);
    during - before >= 64
}
