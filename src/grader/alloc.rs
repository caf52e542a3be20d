//! Memory a solution never frees: the graded binary counts the bytes it
//! has allocated and not yet freed, so a trial can check that dropping
//! what an exercise owns gives every byte back (a reference count that
//! never reaches zero, a cycle, a `mem::forget`).
//!
//! `exercises/tests/graded.rs` installs [`Counting`] as the global
//! allocator; a trial reads [`live_bytes`] before and after.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Bytes allocated and not yet freed, by every thread of this process.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting live bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

// SAFETY: every method forwards to `System` with the same arguments, so
// `Counting` keeps every promise `System` makes; the counter is a plain
// atomic that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's promises for `alloc` hold for `System` too.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from `alloc` above, which is `System`'s.
        unsafe { System.dealloc(pointer, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn realloc(
        &self,
        pointer: *mut u8,
        layout: Layout,
        new_size: usize,
    ) -> *mut u8 {
        // SAFETY: `pointer` and `layout` came from this allocator, which is
        // `System`'s, and the caller's promises for `new_size` hold.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            let change = new_size as isize - layout.size() as isize;
            LIVE.fetch_add(change, Ordering::Relaxed);
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

/// Whether this binary counts (installed [`Counting`]): a trial that
/// checks for leaks fails loudly rather than pass on a count of zero.
pub fn counting() -> bool {
    let before = live_bytes();
    let probe = std::hint::black_box(Box::new([0u8; 64]));
    let during = live_bytes();
    drop(probe);
    during - before >= 64
}
