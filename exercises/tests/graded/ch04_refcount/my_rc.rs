//! The `MyRc` trials: it counts its owners, drops its value once (also
//! while unwinding, and when that drop panics), and stays on its thread.

use std::panic;
use std::sync::atomic::Ordering;

use course::grader::alloc;
use course::{is_send, is_sync};
use exercises::ch04_refcount::MyRc;

use super::{overflow, tracked};

pub(super) fn rc_counts_owners() {
    let first = MyRc::new(String::from("tab"));
    assert_eq!(MyRc::strong_count(&first), 1, "a new MyRc has one owner");
    let second = first.clone();
    let third = second.clone();
    assert_eq!(MyRc::strong_count(&first), 3, "three owners after 2 clones");
    assert!(MyRc::ptr_eq(&first, &third), "clones share one value");
    assert!(!MyRc::ptr_eq(&first, &MyRc::new(String::from("tab"))));
    assert!(
        !MyRc::ptr_eq(&MyRc::new(()), &MyRc::new(())),
        "two MyRc::new(()) are two owners of two values, yet ptr_eq says \
         they share one: a zero-sized value has no address of its own \
         (every Box<()> is the same dangling pointer), so compare the \
         pointers to the allocations that hold the counts"
    );
    assert_eq!(*third, "tab");
    drop(second);
    assert_eq!(
        MyRc::strong_count(&third),
        2,
        "dropping a clone counts down"
    );
    // In a copy of the process: a misaligned value may abort it (debug
    // builds check the alignment of what a pointer reads or writes).
    let ended = overflow::in_a_copy(|| {
        let rc = MyRc::new(Aligned64([7; 64]));
        let address = (&raw const *rc).addr();
        u8::from(address.is_multiple_of(64) && rc.0[63] == 7)
    });
    assert!(
        ended == overflow::Ended::Returned(1),
        "MyRc::new of a #[repr(align(64))] value put it at an address that \
         is not a multiple of 64 ({ended:?}): a block laid out by hand as a \
         count then the value (size_of::<usize>() + size_of::<T>(), aligned \
         as a usize) misaligns any value aligned above 8; let a struct of \
         the two and Box::new (or Layout::new) lay it out"
    );
}

pub(super) fn rc_drops_once() {
    let (value, drops) = tracked();
    let first = MyRc::new(value);
    let clones: Vec<_> = (0..5).map(|_| first.clone()).collect();
    drop(first);
    assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while still owned");
    drop(clones);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the value must be dropped exactly once, when the last owner goes"
    );
    let leaked = alloc::left_allocated_by(|| {
        let first = MyRc::new([7_u8; 512]);
        let clones: Vec<_> = (0..5).map(|_| first.clone()).collect();
        drop(clones);
        drop(first);
    });
    assert_eq!(
        leaked, 0,
        "after the last MyRc of a 512-byte value was dropped, {leaked} bytes \
         were still allocated: dropping the value (drop_in_place) does not \
         free the heap allocation that held it and the count; rebuild the \
         Box (Box::from_raw) and drop that"
    );
    let leaked = alloc::left_allocated_by(|| {
        let first = MyRc::new(PanicsOnDrop([7_u8; 512]));
        let second = first.clone();
        drop(first);
        let dropped =
            panic::catch_unwind(panic::AssertUnwindSafe(|| drop(second)));
        let Err(payload) = dropped else {
            panic!(
                "the value's destructor panicked, yet dropping its last MyRc \
                 did not pass the panic on"
            );
        };
        assert_eq!(
            payload.downcast_ref::<u8>(),
            Some(&7),
            "the value's destructor panicked, and dropping its last MyRc \
             passed on another panic instead: the caller must get the \
             destructor's own panic, as with std's Rc. Let it unwind through \
             your drop (a rebuilt Box frees its block meanwhile) rather than \
             catching it and panicking anew"
        );
    });
    assert_eq!(
        leaked, 0,
        "after the last MyRc of a 512-byte value whose destructor panics was \
         dropped, {leaked} bytes were still allocated: the panic unwound past \
         the deallocation (drop_in_place, then dealloc?); free the block even \
         then, as std's Rc does: drop a rebuilt Box (Box::from_raw), which \
         frees its block while the panic unwinds, or a guard that deallocates"
    );
    let leaked = alloc::left_allocated_by(rc_drops_nested);
    assert_eq!(
        leaked, 0,
        "after the last MyRc of a MyRc<MyRc<[u8; 512]>> was dropped, \
         {leaked} bytes were still allocated: the inner MyRc, whose last \
         owner the outer value was, must be dropped and freed too"
    );
    let leaked = alloc::left_allocated_by(rc_drops_while_unwinding);
    assert_eq!(
        leaked, 0,
        "after the last MyRc was dropped by a thread unwinding from a panic, \
         {leaked} bytes were still allocated: a drop during unwinding must \
         count down and free like any other (std's Rc does)"
    );
}

/// A `MyRc` whose value holds the last owner of another `MyRc`, three
/// deep: dropping the outer one drops each value once, the innermost last,
/// from inside the outer values' destructors.
fn rc_drops_nested() {
    let (value, drops) = tracked();
    let outer = MyRc::new(MyRc::new(MyRc::new(value)));
    let second = MyRc::clone(&outer);
    drop(outer);
    assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while still owned");
    drop(second);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "a MyRc<MyRc<MyRc<value>>> was dropped by its last owner, yet the \
         value was dropped {} times, not once: a MyRc whose last owner goes \
         inside another MyRc's destructor must drop its value like any \
         other (no flag that skips drops made while another one runs)",
        drops.load(Ordering::SeqCst)
    );
    drop(MyRc::new(MyRc::new([7_u8; 512])));
}

/// Owners dropped while the thread unwinds from a panic (`resume_unwind`,
/// so no message), first one of two, then the last: each counts one owner
/// fewer, and the last drops the value.
fn rc_drops_while_unwinding() {
    let (value, drops) = tracked();
    let kept = MyRc::new(value);
    let moved = kept.clone();
    let unwound = panic::catch_unwind(panic::AssertUnwindSafe(move || {
        let _held = moved;
        panic::resume_unwind(Box::new(()));
    }));
    assert!(unwound.is_err());
    assert_eq!(
        MyRc::strong_count(&kept),
        1,
        "a clone dropped while its thread unwound from a panic was not \
         counted down: the drop must do its work during unwinding too \
         (thread::panicking() is no reason to skip it)"
    );
    assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while still owned");
    let unwound = panic::catch_unwind(panic::AssertUnwindSafe(move || {
        let _last = kept;
        panic::resume_unwind(Box::new(()));
    }));
    assert!(unwound.is_err());
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the last MyRc, dropped while its thread unwound from a panic, did \
         not drop the value: the drop must do its work during unwinding too"
    );
}

/// A value whose destructor panics, without the panic hook's message
/// (`resume_unwind`).
struct PanicsOnDrop([u8; 512]);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic::resume_unwind(Box::new(self.0[0]));
    }
}

/// A value that needs an address that is a multiple of 64.
#[repr(align(64))]
struct Aligned64([u8; 64]);

pub(super) fn rc_stays_home() {
    let rc = MyRc::new(5);
    assert_eq!(*rc, 5);
    assert!(
        !is_send!(MyRc<u32>),
        "MyRc is Send, so it could cross to another thread, where two \
         threads could update its plain count at once; keep it !Send (a raw \
         or NonNull pointer does that; Arc inside does not)"
    );
    assert!(
        !is_sync!(MyRc<u32>),
        "MyRc is Sync, so threads could share a &MyRc and clone it at \
         once, updating its plain count together (clone takes &self); keep \
         it !Sync (a raw or NonNull pointer does that, with no unsafe impl)"
    );
}
