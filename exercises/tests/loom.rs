//! Loom models of `MyArc`: every interleaving of two threads (up to loom's
//! preemption bound) is run, and each must drop the value exactly once,
//! after every use, with the count right. A `Relaxed` decrement or a
//! load-then-store increment fails here even where the graded tests pass.
//!
//! Run with `.ci/loom` (or `RUSTFLAGS="--cfg loom" cargo test --release
//! -p exercises --test loom`).

#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::thread;

use exercises::ch04_refcount::MyArc;

/// A value whose reads and final write loom watches: a read that does not
/// happen before the drop's write is reported as a data race.
struct Page(UnsafeCell<u64>);

// SAFETY: threads only read the cell while they hold a `MyArc`; the one
// write is in `drop`, which runs when no `MyArc` is left.
unsafe impl Sync for Page {}

impl Page {
    fn read(&self) -> u64 {
        // SAFETY: see the `Sync` impl: no write can run concurrently.
        self.0.with(|value| unsafe { *value })
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: the last owner, alone.
        self.0.with_mut(|value| unsafe { *value = 0 });
    }
}

/// The value is used on both threads and dropped by whichever lets go
/// last: every use must happen before the drop.
#[test]
fn the_last_owner_drops_after_every_use() {
    loom::model(|| {
        let page = MyArc::new(Page(UnsafeCell::new(7)));
        let other = page.clone();
        let reader = thread::spawn(move || {
            assert_eq!(other.read(), 7);
        });
        assert_eq!(page.read(), 7);
        drop(page);
        reader.join().unwrap();
    });
}

/// Clones and drops on two threads at once leave the count exact.
#[test]
fn concurrent_clones_are_all_counted() {
    loom::model(|| {
        let shared = MyArc::new(5_u8);
        let theirs = shared.clone();
        let other = thread::spawn(move || {
            let again = theirs.clone();
            drop(again);
            drop(theirs);
        });
        let mine = shared.clone();
        drop(mine);
        other.join().unwrap();
        assert_eq!(MyArc::strong_count(&shared), 1);
    });
}
