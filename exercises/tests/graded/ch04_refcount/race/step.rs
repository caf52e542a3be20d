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

use std::ffi::{c_int, c_void};
use std::hint;
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use exercises::ch04_refcount::MyArc;

use super::super::overflow::{Ended, in_a_copy};
use super::{Page, around, page_size};

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
        let dropper = thread::spawn(move || {
            while !DROP_NOW.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            drop(theirs);
            DROPPED.store(true, Ordering::SeqCst);
        });
        let forced = step_over_the_first_write(around(&arc), || {
            mem::forget(arc.clone());
        });
        // The clone returned: let the other thread go, if it has not
        // dropped its clone yet, and wait for it.
        DROP_NOW.store(true, Ordering::SeqCst);
        dropper
            .join()
            .expect("the thread that drops a clone panicked");
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

/// Set when the other thread must drop its clone; then `DROPPED`, when it
/// has.
static DROP_NOW: AtomicBool = AtomicBool::new(false);
static DROPPED: AtomicBool = AtomicBool::new(false);

/// The read-only pages, for the handlers: start and end.
static START: AtomicUsize = AtomicUsize::new(0);
static END: AtomicUsize = AtomicUsize::new(0);
/// Set by the `SIGSEGV` handler when it lets the first write run, with
/// the trap flag set.
static STEPPING: AtomicBool = AtomicBool::new(false);

/// `SIGTRAP`, what the trap flag raises after one instruction, and
/// `SIGSEGV`, what a write to a read-only page raises: 5 and 11 on Linux.
const SIGTRAP: c_int = 5;
const SIGSEGV: c_int = 11;
/// `SA_SIGINFO`: the handler takes the fault's address and the registers.
const SA_SIGINFO: c_int = 4;
/// `SIG_DFL`, a signal's default action (for `SIGSEGV`: end the process).
const SIG_DFL: usize = 0;
/// `PROT_READ` and `PROT_WRITE`, for `mprotect`.
const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;

/// `struct sigaction` of the C library on Linux.
#[repr(C)]
struct SigAction {
    handler: usize,
    mask: [u64; 16],
    flags: c_int,
    restorer: usize,
}

// The C library's, which every Rust program on Linux links.
unsafe extern "C" {
    fn sigaction(
        signum: c_int,
        action: *const SigAction,
        old: *mut SigAction,
    ) -> c_int;
    fn mprotect(addr: *mut c_void, len: usize, prot: c_int) -> c_int;
}

/// The trap flag, in the saved `eflags`.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const TRAP_FLAG: u64 = 0x100;

/// Where the saved `eflags` lie in a `ucontext_t` on x86-64 Linux: after
/// `uc_flags`, `uc_link` and `uc_stack` (40 bytes), register 17 of the
/// saved registers (`REG_EFL`).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const EFLAGS_AT: usize = 40 + 17 * 8;

/// Where the fault's address lies in a `siginfo_t` on Linux (`si_addr`).
const FAULT_ADDRESS_AT: usize = 16;

/// Sets or clears the trap flag in the registers a handler returns to.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn set_trap_flag(context: *mut c_void, on: bool) {
    // SAFETY: `context` is the `ucontext_t` the kernel passed to an
    // `SA_SIGINFO` handler; `EFLAGS_AT` is within it and aligned.
    let eflags =
        unsafe { &mut *context.cast::<u8>().add(EFLAGS_AT).cast::<u64>() };
    if on {
        *eflags |= TRAP_FLAG;
    } else {
        *eflags &= !TRAP_FLAG;
    }
}

/// Elsewhere, no write is stepped over: the write runs, and nothing
/// comes between it and what follows.
#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn set_trap_flag(_context: *mut c_void, _on: bool) {}

/// Makes the pages that hold `[start, end)` read-only or writable again.
fn protect(start: usize, end: usize, prot: c_int, page: usize) {
    let mut at = start / page * page;
    while at < end {
        // SAFETY: only the protection of heap pages changes, and only
        // while no other thread writes them (the other thread waits for
        // `DROP_NOW`, and this one writes no heap memory meanwhile).
        unsafe { mprotect(at as *mut c_void, page, prot) };
        at += page;
    }
}

/// How large a page is, for the handlers.
static PAGE: AtomicUsize = AtomicUsize::new(0);

/// The `SIGSEGV` handler: the first write to the read-only pages makes
/// them writable and runs again single-stepped. Any other fault is a real
/// one: it restores the default action, so that the write, run again,
/// ends the copy.
extern "C" fn step(_signal: c_int, info: *mut c_void, context: *mut c_void) {
    // SAFETY: `info` is the `siginfo_t` of a fault; `si_addr` is within it
    // and aligned.
    let address =
        unsafe { *info.cast::<u8>().add(FAULT_ADDRESS_AT).cast::<usize>() };
    let (start, end) =
        (START.load(Ordering::SeqCst), END.load(Ordering::SeqCst));
    let page = PAGE.load(Ordering::SeqCst);
    let ours = (start / page * page..end).contains(&address);
    if !ours || STEPPING.swap(true, Ordering::SeqCst) {
        let default = SigAction {
            handler: SIG_DFL,
            mask: [0; 16],
            flags: 0,
            restorer: 0,
        };
        // SAFETY: restores the default action; only atomics and these
        // calls run in the handler.
        unsafe { sigaction(SIGSEGV, &default, std::ptr::null_mut()) };
        return;
    }
    protect(start, end, PROT_READ | PROT_WRITE, page);
    set_trap_flag(context, true);
}

/// The `SIGTRAP` handler, right after the stepped write: clears the trap
/// flag, then lets the other thread drop its clone and waits until it has.
extern "C" fn trap(_signal: c_int, _info: *mut c_void, context: *mut c_void) {
    set_trap_flag(context, false);
    DROP_NOW.store(true, Ordering::SeqCst);
    while !DROPPED.load(Ordering::SeqCst) {
        hint::spin_loop();
        thread::yield_now();
    }
}

/// In the copy: runs `body` with the pages of `[start, end)` read-only
/// until its first write to them, which runs single-stepped, with the
/// other thread's drop right after it. Whether that drop came before
/// `body` returned.
fn step_over_the_first_write(
    (start, end): (usize, usize),
    body: impl FnOnce(),
) -> bool {
    let page = page_size();
    PAGE.store(page, Ordering::SeqCst);
    START.store(start, Ordering::SeqCst);
    END.store(end, Ordering::SeqCst);
    for (signal, handler) in [
        (
            SIGSEGV,
            step as extern "C" fn(c_int, *mut c_void, *mut c_void),
        ),
        (SIGTRAP, trap),
    ] {
        let action = SigAction {
            handler: handler as usize,
            mask: [0; 16],
            flags: SA_SIGINFO,
            restorer: 0,
        };
        // SAFETY: installs a handler that touches only atomics, `mprotect`
        // and `sigaction`; this copy is ended with `_exit` and never
        // returns to the trial.
        let set = unsafe { sigaction(signal, &action, std::ptr::null_mut()) };
        assert_eq!(set, 0, "sigaction failed");
    }
    protect(start, end, PROT_READ, page);
    body();
    protect(start, end, PROT_READ | PROT_WRITE, page);
    DROPPED.load(Ordering::SeqCst)
}
