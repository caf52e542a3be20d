//! A drop on another thread that lands between a clone's increment and
//! the clone's check, forced rather than hoped for.
//!
//! A `MyArc` whose count is above `isize::MAX` is cloned, and another
//! thread drops a clone of it right after the clone's increment, before
//! the clone does anything else. A correct `clone` checks the value its
//! own `fetch_add` returned, which is above `isize::MAX` whatever happens
//! next, and aborts. A `clone` that reads the count again after its
//! increment (to check the count now, less the one it added) reads it one
//! lower, at or below the limit, and goes on.
//!
//! How the drop is put there, in a forked copy of the process
//! (`overflow::in_a_copy`): the pages that hold the count (`race::around`)
//! are made read-only, so the clone's first write to them, its increment,
//! faults. The `SIGSEGV` handler makes them writable again and returns
//! with the processor's trap flag set in the saved registers, so that the
//! write runs again, alone, and is followed at once by a `SIGTRAP` (one
//! instruction, single-stepped). The `SIGTRAP` handler clears the flag,
//! lets the other thread drop its clone, waits until it has, and returns:
//! the clone goes on with the count one lower than its increment left it.
//! Only a delay of the cloning thread, one of the orders the two threads
//! could have run in, so a correct solution aborts all the same. The trap
//! flag and the saved registers' layout are x86-64 Linux's; elsewhere the
//! drop is not forced, and the trial checks only that the clone aborts.

use std::mem;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use course::grader::fault_hold::{FaultHold, ProtFlags};
use exercises::ch04_refcount::MyArc;

use super::super::overflow::{Ended, in_a_copy};
use super::{Page, around};

/// The copy's answer when the clone returned after the forced drop.
pub(in super::super) const RETURNED_AFTER_THE_DROP: u8 = 1;
/// The copy's answer when the clone returned and no drop came between
/// (the count is not near the value, or this is not x86-64 Linux).
pub(in super::super) const RETURNED_UNFORCED: u8 = 2;

/// Clones a `MyArc` whose count is `isize::MAX + 1` in a copy of the
/// process, with a clone dropped on another thread right after the
/// clone's increment (see the module's comment), and tells how the copy
/// ended: it must abort.
pub(in super::super) fn clone_with_a_drop_after_the_increment() -> Ended {
    const PAST_THE_LIMIT: usize = isize::MAX as usize + 1;
    let arc = MyArc::new(Page([7; 4096]));
    let theirs = arc.clone();
    // SAFETY: the count stays at least the two `MyArc`s there are, no
    // other thread exists, and it is put back to exactly two before either
    // is dropped.
    unsafe { MyArc::set_strong_count_for_tests(&arc, PAST_THE_LIMIT) };
    let ended = in_a_copy(|| {
        let (start, end) = around(&arc);
        let hold = FaultHold::after_the_first_write(start, end);
        let returned = AtomicBool::new(false);
        let forced = thread::scope(|s| {
            let dropper = s.spawn(|| {
                // Until the clone is held right after its increment, or
                // has returned.
                while hold.held() == 0 && !returned.load(Ordering::SeqCst) {
                    thread::yield_now();
                }
                let forced = hold.held() > 0;
                drop(theirs);
                hold.let_go_all();
                forced
            });
            hold.protect(ProtFlags::PROT_READ);
            mem::forget(arc.clone());
            // The clone returned: the pages are made writable again, if
            // no write to them has been stepped over, and the other thread
            // is let go, if it has not dropped its clone yet.
            hold.protect(ProtFlags::PROT_READ | ProtFlags::PROT_WRITE);
            returned.store(true, Ordering::SeqCst);
            dropper
                .join()
                .expect("the thread that drops a clone panicked")
        });
        if forced {
            RETURNED_AFTER_THE_DROP
        } else {
            RETURNED_UNFORCED
        }
    });
    // SAFETY: two `MyArc`s point to the value: `arc`, and `theirs`, which
    // this process still holds (only the copy moved it to a thread).
    unsafe { MyArc::set_strong_count_for_tests(&arc, 2) };
    ended
}
