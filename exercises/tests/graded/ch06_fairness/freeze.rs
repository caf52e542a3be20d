//! Holding one thread still, and reading what Linux's `/proc` says about a
//! thread: whether it sleeps, how much CPU time it has used, how often it
//! has gone to sleep.
//!
//! A thread is frozen by sending it `SIGUSR1`, whose handler holds it, on
//! its own thread, at the very instruction it had reached, until the trial
//! lets it go. Freeze a thread only while it sleeps in a wait that holds no
//! lock (a `Condvar` wait releases its mutex): frozen there, it takes no
//! part in what the others do until it is thawed, as a thread the operating
//! system does not get round to waking.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

/// A thread id, as Linux's `gettid` returns it.
pub(super) type Tid = i32;

/// A thread, as `pthread_self` returns it (`pthread_t`, an unsigned long
/// on Linux).
type PthreadT = usize;

/// Linux's `SIGUSR1`.
const SIGUSR1: i32 = 10;

/// `struct timespec`.
#[repr(C)]
struct Timespec {
    seconds: i64,
    nanoseconds: i64,
}

// The C library's, which every Rust program on Linux links.
unsafe extern "C" {
    fn gettid() -> Tid;
    fn signal(signum: i32, handler: usize) -> usize;
    fn pthread_self() -> PthreadT;
    fn pthread_kill(thread: PthreadT, signum: i32) -> i32;
    fn nanosleep(wanted: *const Timespec, left: *mut Timespec) -> i32;
}

/// Set by the trial to freeze a thread, cleared to let it go.
static FROZEN: AtomicBool = AtomicBool::new(false);
/// Set by the handler once the thread is held.
static HELD: AtomicBool = AtomicBool::new(false);

/// Runs on the frozen thread, in the middle of whatever it was doing:
/// holds it there while `FROZEN` is set. Only atomics and `nanosleep`,
/// which a signal handler may use.
extern "C" fn hold(_: i32) {
    HELD.store(true, Ordering::SeqCst);
    let pause = Timespec {
        seconds: 0,
        nanoseconds: 20_000,
    };
    while FROZEN.load(Ordering::SeqCst) {
        // SAFETY: `pause` is a valid timespec; the remainder is not wanted.
        unsafe { nanosleep(&pause, std::ptr::null_mut()) };
    }
}

/// A thread as the trial names it: for `/proc` and for signals.
#[derive(Clone, Copy, Debug)]
pub(super) struct Me {
    pub(super) tid: Tid,
    pthread: PthreadT,
}

/// The calling thread.
pub(super) fn me() -> Me {
    // SAFETY: neither call has preconditions.
    unsafe {
        Me {
            tid: gettid(),
            pthread: pthread_self(),
        }
    }
}

/// Freezes `thread` (still running: not yet joined) until [`thaw`]; returns
/// once its handler holds it. One thread at a time: the trials that freeze
/// run alone (`.exclusive()`).
pub(super) fn freeze(thread: Me) {
    // SAFETY: `hold` only uses atomics and `nanosleep`.
    unsafe { signal(SIGUSR1, hold as extern "C" fn(i32) as usize) };
    HELD.store(false, Ordering::SeqCst);
    FROZEN.store(true, Ordering::SeqCst);
    // SAFETY: the caller passes a thread of this process that still runs.
    let sent = unsafe { pthread_kill(thread.pthread, SIGUSR1) };
    assert_eq!(sent, 0, "pthread_kill failed");
    // No deadline: a pause until the handler holds the thread.
    while !HELD.load(Ordering::SeqCst) {
        thread::yield_now();
    }
}

/// Lets the frozen thread go on.
pub(super) fn thaw() {
    FROZEN.store(false, Ordering::SeqCst);
}

/// The fields of `/proc/self/task/<tid>/stat` from the state (field 3) on:
/// they follow the parenthesised name, which may hold spaces.
fn stat_fields(tid: Tid) -> Vec<String> {
    let stat = fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .expect("no /proc/self/task/<tid>/stat");
    let after = stat.rsplit_once(')').map_or("", |(_, after)| after);
    after.split_whitespace().map(str::to_string).collect()
}

/// Whether thread `tid` of this process sleeps (state `S`): blocked in a
/// wait, not running nor waiting for a CPU.
pub(super) fn asleep(tid: Tid) -> bool {
    stat_fields(tid).first().is_some_and(|state| state == "S")
}

/// The CPU time thread `tid` has used, user and system, in the clock ticks
/// of `/proc` (`USER_HZ`, 100 a second): fields 14 and 15. Time the thread
/// waits for a CPU is not counted, however loaded the machine.
pub(super) fn cpu_ticks(tid: Tid) -> u64 {
    stat_fields(tid)[11..13]
        .iter()
        .map(|ticks| ticks.parse::<u64>().expect("a number of ticks"))
        .sum()
}

/// How many times thread `tid` has gone to sleep of its own accord
/// (`voluntary_ctxt_switches` in `/proc/self/task/<tid>/status`): one more
/// for each wait it blocks in, so one for a wait that lasts until it is
/// woken, and one per slice for a wait in slices.
pub(super) fn sleeps(tid: Tid) -> u64 {
    let status = fs::read_to_string(format!("/proc/self/task/{tid}/status"))
        .expect("no /proc/self/task/<tid>/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("no voluntary_ctxt_switches in /proc/self/task/<tid>/status")
}
