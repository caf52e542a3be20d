//! For trials that force an interleaving (Linux only): a thread is held at
//! its access to memory the trial has protected, until the trial lets it
//! go.
//!
//! The trial makes some pages read-only (or unreadable) with `mprotect`. A
//! thread that writes to them (or reads them) faults, and the `SIGSEGV`
//! handler of a [`FaultHold`] holds it there, inside the handler, until the
//! trial lets it go: all held threads at once, one of them, or those held
//! below an address. The trial gives the pages their access back first;
//! the handler then returns, and the access that faulted runs again and
//! succeeds. Holding a thread before an access is only a delay, one of the
//! orders the threads could have run in, so correct code gives a correct
//! result whatever is held.
//!
//! The handler uses only atomics in static memory, `gettid`, `nanosleep`
//! (inside `thread::sleep`), `mprotect` and `sigaction`, which a signal
//! handler may: it allocates nothing and takes no lock. Nor does anything
//! a trial calls while threads are held ([`FaultHold::held`],
//! [`FaultHold::is_held`], the letting go, [`protect`], [`race`]'s
//! watching), so the protected pages may be the heap's own.
//!
//! A fault outside the pages, or one after [`FaultHold::let_go_all`], is a
//! real one: the handler puts back the action that was set before (std's
//! report of a stack overflow, say) and returns, and the access, run
//! again, gets that action.

use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::hint;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU8, AtomicUsize, Ordering,
};
use std::thread;
use std::time::Duration;

use nix::libc;
pub use nix::sys::mman::ProtFlags;
use nix::sys::mman::{MapFlags, mmap_anonymous, mprotect, munmap};
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction,
};
use nix::unistd::{SysconfVar, gettid, sysconf};

use super::task::{self, BUSY_TICKS, Tid};

/// How many held threads are told apart by their ids; more are held all
/// the same, but only [`FaultHold::held`] counts them.
const SLOTS: usize = 16;

/// Set while a [`FaultHold`] exists: there is one handler, so one at a time.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The pages whose faults are held, whole pages: start and end.
static START: AtomicUsize = AtomicUsize::new(0);
static END: AtomicUsize = AtomicUsize::new(0);
/// A held thread whose fault lies below this address goes on.
static FLOOR: AtomicUsize = AtomicUsize::new(0);
/// The size of a page, for the handler.
static PAGE: AtomicUsize = AtomicUsize::new(0);
/// Set when every held thread may go on, and no new one is held.
static RELEASED: AtomicBool = AtomicBool::new(false);
/// Set for [`FaultHold::after_the_first_write`]; then `STEPPED` once that
/// write has been let through, single-stepped.
static STEPPING: AtomicBool = AtomicBool::new(false);
static STEPPED: AtomicBool = AtomicBool::new(false);
/// The ids of the held threads, 0 in a free slot, and the slots to let go.
static HELD_TIDS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
static LET_GO: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
/// How many threads are held now.
static HELD: AtomicUsize = AtomicUsize::new(0);
/// How many times a thread has been held since the [`FaultHold`] was made.
static HOLDS: AtomicUsize = AtomicUsize::new(0);

/// The actions a [`FaultHold`] replaced, for its handlers to put back.
struct Previous {
    /// Set once `actions` holds them, cleared before they are replaced.
    set: AtomicBool,
    /// For `SIGSEGV` and `SIGTRAP`.
    actions: UnsafeCell<[Option<SigAction>; 2]>,
}

// SAFETY: `actions` is written only by `FaultHold::new`, while `set` is
// clear (so no handler reads it), and read only once `set` is seen set.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous {
    set: AtomicBool::new(false),
    actions: UnsafeCell::new([None, None]),
};

/// The size of a memory page.
///
/// # Panics
///
/// If `sysconf` does not say.
pub fn page_size() -> usize {
    sysconf(SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|size| usize::try_from(size).ok())
        .expect("sysconf(_SC_PAGESIZE) failed")
}

/// Sets the access of the pages that hold `[start, end)`, one page at a
/// time: a page that is not mapped (beyond the heap's end, say) is left
/// alone. Allocates nothing, and a signal handler may call it.
pub fn protect(start: usize, end: usize, prot: ProtFlags) {
    let page = match PAGE.load(Ordering::SeqCst) {
        0 => page_size(),
        page => page,
    };
    let mut at = start / page * page;
    while at < end {
        if let Some(address) = NonNull::new(at as *mut c_void) {
            // SAFETY: only the access of whole pages changes; the caller
            // owns what lies on them, and no one else uses them meanwhile
            // (or is held when they do). An unmapped page is an error,
            // ignored.
            let _ = unsafe { mprotect(address, page, prot) };
        }
        at += page;
    }
}

/// Read and write access, what the pages had before.
fn writable() -> ProtFlags {
    ProtFlags::PROT_READ | ProtFlags::PROT_WRITE
}

/// Puts back the action that was set for `signal` before the
/// [`FaultHold`], or the default action if it is not known yet.
fn put_back(signal: Signal) {
    let previous = if PREVIOUS.set.load(Ordering::SeqCst) {
        // SAFETY: `set` is set, so `actions` is written and stays as is.
        unsafe {
            (*PREVIOUS.actions.get())[usize::from(signal == Signal::SIGTRAP)]
        }
    } else {
        None
    };
    let action = previous.unwrap_or_else(|| {
        SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty())
    });
    // SAFETY: an action that was set before, or the default one.
    let _ = unsafe { sigaction(signal, &action) };
}

/// Holds the calling thread, in a handler, until it is let go: all at
/// once, its slot, or (for a fault at `address`) those below `FLOOR`.
fn hold_here(address: usize) {
    let tid = gettid().as_raw();
    let slot = (0..SLOTS).find(|&i| {
        HELD_TIDS[i]
            .compare_exchange(0, tid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    });
    HOLDS.fetch_add(1, Ordering::SeqCst);
    HELD.fetch_add(1, Ordering::SeqCst);
    while !RELEASED.load(Ordering::SeqCst)
        && address >= FLOOR.load(Ordering::SeqCst)
        && !slot.is_some_and(|i| LET_GO[i].load(Ordering::SeqCst))
    {
        thread::sleep(Duration::from_micros(20));
    }
    if let Some(i) = slot {
        LET_GO[i].store(false, Ordering::SeqCst);
        HELD_TIDS[i].store(0, Ordering::SeqCst);
    }
    HELD.fetch_sub(1, Ordering::SeqCst);
}

/// A handler that is told the fault's address and the registers.
type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void);

/// The `SIGSEGV` handler: holds a thread that faulted in the pages, or,
/// for [`FaultHold::after_the_first_write`], gives the pages write access
/// back and lets the first such access run again single-stepped. Any other
/// fault is a real one (see the module's comment).
extern "C" fn on_fault(
    _signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut c_void,
) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an `SA_SIGINFO`
    // handler, and a fault's holds its address.
    let address = unsafe { (*info).si_addr() } as usize;
    let ours = (START.load(Ordering::SeqCst)..END.load(Ordering::SeqCst))
        .contains(&address);
    if !ours || RELEASED.load(Ordering::SeqCst) {
        put_back(Signal::SIGSEGV);
        return;
    }
    if !STEPPING.load(Ordering::SeqCst) {
        hold_here(address);
        return;
    }
    if STEPPED.swap(true, Ordering::SeqCst) {
        put_back(Signal::SIGSEGV);
        return;
    }
    protect(
        START.load(Ordering::SeqCst),
        END.load(Ordering::SeqCst),
        writable(),
    );
    set_trap_flag(context, true);
}

/// The `SIGTRAP` handler, right after the single-stepped access: clears
/// the trap flag and holds the thread there.
extern "C" fn on_trap(
    _signal: libc::c_int,
    _info: *mut libc::siginfo_t,
    context: *mut c_void,
) {
    set_trap_flag(context, false);
    hold_here(usize::MAX);
}

/// Sets or clears the processor's trap flag in the registers a handler
/// returns to: set, the thread runs one instruction and gets a `SIGTRAP`.
#[cfg(target_arch = "x86_64")]
fn set_trap_flag(context: *mut c_void, on: bool) {
    const TRAP_FLAG: libc::greg_t = 0x100;
    // SAFETY: `context` is the `ucontext_t` the kernel passed to an
    // `SA_SIGINFO` handler, the registers the thread returns to.
    let eflags = unsafe {
        &mut (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs
            [libc::REG_EFL as usize]
    };
    if on {
        *eflags |= TRAP_FLAG;
    } else {
        *eflags &= !TRAP_FLAG;
    }
}

/// Elsewhere, no access is single-stepped: it runs again, and nothing comes
/// between it and what follows.
#[cfg(not(target_arch = "x86_64"))]
fn set_trap_flag(_context: *mut c_void, _on: bool) {}

/// Faults in some pages held until the trial lets them go, from
/// [`FaultHold::new`] until it is dropped. The trial protects the pages
/// itself ([`FaultHold::protect`], [`protect`]).
#[derive(Debug)]
pub struct FaultHold {
    start: usize,
    end: usize,
    stepping: bool,
}

impl FaultHold {
    /// Holds every thread that faults in the pages that hold `[start,
    /// end)` (whole pages), at the access that faulted, until it is let
    /// go. Protects nothing itself.
    ///
    /// # Panics
    ///
    /// If another `FaultHold` exists, or the handler cannot be installed.
    pub fn new(start: usize, end: usize) -> FaultHold {
        FaultHold::install(start, end, false)
    }

    /// Lets the first access that faults in the pages that hold `[start,
    /// end)` run: the handler gives the pages read and write access back
    /// and runs that access again, single-stepped, then holds the thread
    /// right after it, until it is let go. Only on x86-64 (the trap flag);
    /// elsewhere the access runs and nothing is held. Protects nothing
    /// itself.
    ///
    /// # Panics
    ///
    /// As [`FaultHold::new`].
    pub fn after_the_first_write(start: usize, end: usize) -> FaultHold {
        FaultHold::install(start, end, true)
    }

    fn install(start: usize, end: usize, stepping: bool) -> FaultHold {
        assert!(
            !ACTIVE.swap(true, Ordering::SeqCst),
            "only one FaultHold at a time"
        );
        let page = page_size();
        let (start, end) = (start / page * page, end.div_ceil(page) * page);
        PAGE.store(page, Ordering::SeqCst);
        START.store(start, Ordering::SeqCst);
        END.store(end, Ordering::SeqCst);
        STEPPING.store(stepping, Ordering::SeqCst);
        STEPPED.store(false, Ordering::SeqCst);
        HOLDS.store(0, Ordering::SeqCst);
        let hold = FaultHold {
            start,
            end,
            stepping,
        };
        hold.hold_again();
        let mut replaced = [None, None];
        let handlers = [
            (Signal::SIGSEGV, on_fault as Handler),
            (Signal::SIGTRAP, on_trap),
        ];
        for (slot, (signal, handler)) in handlers.into_iter().enumerate() {
            if signal == Signal::SIGTRAP && !stepping {
                continue;
            }
            let action = SigAction::new(
                SigHandler::SigAction(handler),
                SaFlags::empty(),
                SigSet::empty(),
            );
            // SAFETY: the handlers use only what a signal handler may (see
            // the module's comment), and put back the replaced action on a
            // fault that is not theirs.
            let old = unsafe { sigaction(signal, &action) }
                .expect("cannot install the signal handler");
            replaced[slot] = Some(old);
        }
        // SAFETY: `set` is clear, so no handler reads `actions` now.
        unsafe { *PREVIOUS.actions.get() = replaced };
        PREVIOUS.set.store(true, Ordering::SeqCst);
        hold
    }

    /// The pages whose faults are held, whole pages: start and end.
    pub fn pages(&self) -> (usize, usize) {
        (self.start, self.end)
    }

    /// Sets the access of all the pages: [`ProtFlags::PROT_READ`] holds a
    /// write, [`ProtFlags::PROT_NONE`] a read too.
    pub fn protect(&self, prot: ProtFlags) {
        protect(self.start, self.end, prot);
    }

    /// Holds faults again, after [`FaultHold::let_go_all`] or
    /// [`FaultHold::let_go_below`], for another round: the threads of the
    /// last one should have gone on by now.
    pub fn hold_again(&self) {
        FLOOR.store(self.start, Ordering::SeqCst);
        RELEASED.store(false, Ordering::SeqCst);
    }

    /// For a hold made by [`FaultHold::after_the_first_write`]: single-steps
    /// the next write that faults as well, and holds its thread right after
    /// it. Call it while the thread held after the last such write is still
    /// held, with the pages protected again; then [`FaultHold::let_go`] that
    /// thread, and its next write to the pages is held.
    pub fn step_again(&self) {
        self.hold_again();
        STEPPED.store(false, Ordering::SeqCst);
    }

    /// How many times a thread has been held since this hold was made
    /// (whether or not it has been let go since).
    pub fn holds(&self) -> usize {
        HOLDS.load(Ordering::SeqCst)
    }

    /// How many threads are held now.
    pub fn held(&self) -> usize {
        HELD.load(Ordering::SeqCst)
    }

    /// Whether thread `tid` is held now.
    pub fn is_held(&self, tid: Tid) -> bool {
        HELD_TIDS.iter().any(|t| t.load(Ordering::SeqCst) == tid)
    }

    /// Lets every held thread go on, and holds no new one until
    /// [`FaultHold::hold_again`]: a fault in the pages meanwhile is a real
    /// one. Give the pages their access back first.
    pub fn let_go_all(&self) {
        RELEASED.store(true, Ordering::SeqCst);
    }

    /// Lets thread `tid` go on, if it is held. Give its page its access
    /// back first.
    pub fn let_go(&self, tid: Tid) {
        for (slot, held) in HELD_TIDS.iter().enumerate() {
            if held.load(Ordering::SeqCst) == tid {
                LET_GO[slot].store(true, Ordering::SeqCst);
            }
        }
    }

    /// Lets the threads held at faults below `address` go on, and any that
    /// faults there later: give that memory its access back first. Those
    /// held at or above it stay held.
    pub fn let_go_below(&self, address: usize) {
        FLOOR.store(address, Ordering::SeqCst);
    }
}

impl Drop for FaultHold {
    /// Gives the pages read and write access back, lets every held thread
    /// go on, waits until each has left the handler, and puts back the
    /// actions that were set before.
    fn drop(&mut self) {
        self.protect(writable());
        self.let_go_all();
        while HELD.load(Ordering::SeqCst) > 0 {
            thread::yield_now();
        }
        put_back(Signal::SIGSEGV);
        if self.stepping {
            put_back(Signal::SIGTRAP);
        }
        PREVIOUS.set.store(false, Ordering::SeqCst);
        STEPPING.store(false, Ordering::SeqCst);
        ACTIVE.store(false, Ordering::SeqCst);
    }
}

/// Fresh pages of memory of the trial's own, readable and writable, for
/// something placed where the trial chooses (across a page boundary, say);
/// unmapped when dropped.
#[derive(Debug)]
pub struct Pages {
    start: NonNull<c_void>,
    bytes: usize,
}

impl Pages {
    /// `count` new pages, zeroed.
    ///
    /// # Panics
    ///
    /// If `count` is 0, or `mmap` fails.
    pub fn new(count: usize) -> Pages {
        let bytes = count * page_size();
        let len = NonZeroUsize::new(bytes).expect("no pages asked for");
        // SAFETY: a new private mapping, which nothing else uses.
        let start = unsafe {
            mmap_anonymous(None, len, writable(), MapFlags::MAP_PRIVATE)
        }
        .expect("mmap failed");
        Pages { start, bytes }
    }

    /// Where the pages start.
    pub fn start(&self) -> usize {
        self.start.as_ptr() as usize
    }

    /// How many bytes the pages span.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: the pages were mapped by `Pages::new`, and whatever the
        // trial placed on them is no longer used once it drops them.
        let _ = unsafe { munmap(self.start, self.bytes) };
    }
}

/// Runs each of `bodies` on a thread of its own, started together, with
/// the pages that hold `[start, end)` read-only from the moment they start
/// until every thread is held at a write to them (a [`FaultHold`]), asleep
/// (waiting for a lock a held thread holds, say) or finished, or one that
/// is not held has used [`BUSY_TICKS`] of CPU time (it spins without
/// writing: that ends the forcing, never the trial). Then gives the pages
/// write access back, lets the threads go and joins each one (a real
/// join: the thread's own memory is freed by then), passing a panic on.
///
/// From protecting the pages to letting the threads go, the calling
/// thread allocates nothing and writes only its stack, so the pages may
/// be the heap's: it reads atomics and `/proc` (`task`'s readers of `stat`
/// allocate nothing).
pub fn race<F: FnOnce() + Send, const N: usize>(
    (start, end): (usize, usize),
    bodies: [F; N],
) {
    const READY: u8 = 1;
    const FINISHED: u8 = 2;
    let hold = FaultHold::new(start, end);
    let state: [AtomicU8; N] = [const { AtomicU8::new(0) }; N];
    let tids: [AtomicI32; N] = [const { AtomicI32::new(0) }; N];
    let go = AtomicBool::new(false);
    thread::scope(|s| {
        let (state, tids, go) = (&state, &tids, &go);
        let threads = bodies.map(|body| {
            // Each thread takes the first slot left.
            s.spawn(move || {
                let i = tids
                    .iter()
                    .position(|t| {
                        t.compare_exchange(
                            0,
                            task::me().tid,
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        )
                        .is_ok()
                    })
                    .expect("a slot for each thread");
                state[i].store(READY, Ordering::SeqCst);
                while !go.load(Ordering::SeqCst) {
                    hint::spin_loop();
                }
                body();
                state[i].store(FINISHED, Ordering::SeqCst);
            })
        });
        while state.iter().any(|s| s.load(Ordering::SeqCst) != READY) {
            thread::yield_now();
        }
        let tid = |i: usize| tids[i].load(Ordering::SeqCst);
        let spent: [u64; N] = std::array::from_fn(|i| task::cpu_ticks(tid(i)));
        hold.protect(ProtFlags::PROT_READ);
        go.store(true, Ordering::SeqCst);
        let settled = |i: usize| {
            state[i].load(Ordering::SeqCst) == FINISHED
                || hold.is_held(tid(i))
                || task::asleep(tid(i))
        };
        let spins = |i: usize| {
            !hold.is_held(tid(i))
                && task::cpu_ticks(tid(i)).saturating_sub(spent[i]) > BUSY_TICKS
        };
        // No deadline: a thread that spins is told by the CPU time it
        // uses, not by the clock.
        while !(0..N).all(settled) && !(0..N).any(spins) {
            thread::yield_now();
        }
        hold.protect(writable());
        hold.let_go_all();
        for thread in threads {
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
    });
    drop(hold);
}
