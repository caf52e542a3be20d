//! For trials that watch their own threads (Linux only): what `/proc` says
//! of a thread (whether it sleeps, the CPU time it has used, how often it
//! has gone to sleep), and holding one thread still.
//!
//! A thread is frozen by sending it `SIGUSR1`, whose handler holds it, on
//! its own thread, at the very instruction it had reached, until the trial
//! lets it go. A thread frozen in a wait that holds no lock (a `Condvar`
//! wait releases its mutex) takes no part in what the others do until it
//! is thawed, as a thread the operating system does not get round to
//! waking; one frozen halfway through an update shows what a reader sees
//! of a writer that cannot run.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::str::{self, SplitWhitespace};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use nix::libc;
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction, signal,
};
use nix::unistd::{getpid, gettid};

/// A thread id, as Linux's `gettid` returns it.
pub type Tid = i32;

/// Set by the trial to freeze a thread, cleared to let it go.
static FROZEN: AtomicBool = AtomicBool::new(false);
/// Set by the handler once the thread is held.
static HELD: AtomicBool = AtomicBool::new(false);

/// Runs on the frozen thread, in the middle of whatever it was doing:
/// holds it there while `FROZEN` is set. Only atomics and `nanosleep`
/// (inside `thread::sleep`), which a signal handler may use.
extern "C" fn hold(_: i32) {
    HELD.store(true, Ordering::SeqCst);
    while FROZEN.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_micros(20));
    }
}

/// A thread of this process as a trial names it: for `/proc` and for
/// signals.
#[derive(Clone, Copy, Debug)]
pub struct Me {
    /// Its id in `/proc/self/task/`.
    pub tid: Tid,
}

/// The calling thread.
pub fn me() -> Me {
    Me {
        tid: gettid().as_raw(),
    }
}

/// Freezes `thread` (still running: not yet joined) until [`thaw`], and
/// returns once its handler holds it. A thread blocked in a system call
/// leaves it first: a `write` to a pipe that has taken some bytes returns
/// how many (a short write), and one that has taken none is restarted
/// once the handler returns. One thread at a time, in a trial
/// that runs alone (`.exclusive()`) or whose other threads it knows.
///
/// # Panics
///
/// If the signal cannot be sent.
pub fn freeze(thread: Me) {
    // SAFETY: `hold` only uses atomics and `nanosleep`, which a signal
    // handler may. (glibc's `signal` sets `SA_RESTART`.)
    unsafe { signal(Signal::SIGUSR1, SigHandler::Handler(hold)) }
        .expect("cannot install the SIGUSR1 handler");
    FROZEN.store(true, Ordering::SeqCst);
    signal_and_wait(thread);
}

/// Interrupts `thread`'s system call as a signal whose handler was set
/// without `SA_RESTART` does, and returns once the handler has run: a call
/// that has done nothing yet (a `write` blocked on a full pipe before it
/// wrote a byte) fails with `EINTR` (`ErrorKind::Interrupted`) instead of
/// being restarted; one that has done part of its work returns that part,
/// as with [`freeze`]. The thread is not held. One thread at a time, as
/// with [`freeze`].
///
/// # Panics
///
/// If the signal cannot be sent.
pub fn interrupt(thread: Me) {
    let action = SigAction::new(
        SigHandler::Handler(hold),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: as in `freeze`; with `FROZEN` clear, `hold` returns at once.
    unsafe { sigaction(Signal::SIGUSR1, &action) }
        .expect("cannot install the SIGUSR1 handler");
    FROZEN.store(false, Ordering::SeqCst);
    signal_and_wait(thread);
}

/// Sends `SIGUSR1` to `thread` and waits until its handler has run.
fn signal_and_wait(thread: Me) {
    HELD.store(false, Ordering::SeqCst);
    // `tgkill` signals one thread, by the id `/proc` knows it by, as
    // `pthread_kill` does: a thread the trial did not start can be named.
    // SAFETY: `tgkill` takes three integers and touches no memory.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            getpid().as_raw(),
            thread.tid,
            Signal::SIGUSR1 as libc::c_int,
        )
    };
    assert_eq!(
        sent,
        0,
        "tgkill failed: {}",
        std::io::Error::last_os_error()
    );
    // No deadline: a pause until the handler holds the thread.
    while !HELD.load(Ordering::SeqCst) {
        thread::yield_now();
    }
}

/// Lets the frozen thread go on.
pub fn thaw() {
    FROZEN.store(false, Ordering::SeqCst);
}

/// Calls `fields` with the fields of `/proc/self/task/<tid>/stat` from the
/// state (field 3) on: they follow the parenthesised name, which may hold
/// spaces. No fields if the thread has ended. Allocates nothing (the path
/// and the contents are read onto the stack, `stat` being some 300 bytes
/// long), so a trial may call it, and the functions built on it, while
/// the heap is read-only.
fn with_stat<R>(tid: Tid, fields: impl FnOnce(SplitWhitespace<'_>) -> R) -> R {
    const PATH_LEN: usize = 64;
    let mut path = [0_u8; PATH_LEN];
    let mut rest = &mut path[..];
    write!(rest, "/proc/self/task/{tid}/stat").expect("a short path");
    let len = PATH_LEN - rest.len();
    let mut stat = [0_u8; 1024];
    let read = File::open(OsStr::from_bytes(&path[..len]))
        .and_then(|mut file| file.read(&mut stat))
        .unwrap_or(0);
    let stat = &stat[..read];
    let after = stat
        .iter()
        .rposition(|&b| b == b')')
        .map_or(&[][..], |close| &stat[close + 1..]);
    fields(str::from_utf8(after).unwrap_or_default().split_whitespace())
}

/// How long thread `tid` has run on a CPU, and how long it has waited in
/// a run queue for one, since it started
/// (`/proc/self/task/<tid>/schedstat`). The rest of its time it spent
/// blocked, asleep: over a stretch of time, the clock's time less these
/// two is how long the thread slept, however loaded the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    /// Time on a CPU.
    pub running: Duration,
    /// Time ready to run, waiting for a CPU.
    pub runnable: Duration,
}

/// [`Scheduled`] for thread `tid`.
///
/// # Panics
///
/// If the thread has ended, or this kernel keeps no `schedstat`
/// (`CONFIG_SCHED_INFO`).
pub fn scheduled(tid: Tid) -> Scheduled {
    let text = fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .expect("no /proc/self/task/<tid>/schedstat (CONFIG_SCHED_INFO)");
    let mut nanos = text
        .split_whitespace()
        .map(|field| field.parse::<u64>().expect("schedstat holds numbers"));
    let mut next =
        || Duration::from_nanos(nanos.next().expect("schedstat has 3 fields"));
    let running = next();
    Scheduled {
        running,
        runnable: next(),
    }
}

/// Thread `tid`'s state letter: `R` running or waiting for a CPU, `S`
/// asleep in a wait, and so on; `None` once it has ended. Allocates
/// nothing.
pub fn state(tid: Tid) -> Option<char> {
    with_stat(tid, |mut fields| fields.next()?.chars().next())
}

/// Whether thread `tid` of this process sleeps (state `S`): blocked in a
/// wait, neither running nor waiting for a CPU. Allocates nothing.
pub fn asleep(tid: Tid) -> bool {
    state(tid) == Some('S')
}

/// The CPU time thread `tid` has used, user and system, in the clock ticks
/// of `/proc` (`USER_HZ`, 100 a second): fields 14 and 15; 0 once it has
/// ended. Time the thread waits for a CPU is not counted, however loaded
/// the machine: a bound on it is no bound on the clock. Allocates nothing.
pub fn cpu_ticks(tid: Tid) -> u64 {
    with_stat(tid, |fields| {
        fields
            .skip(11)
            .take(2)
            .map(|ticks| ticks.parse::<u64>().expect("a number of ticks"))
            .sum()
    })
}

/// How many times thread `tid` has gone to sleep of its own accord
/// (`voluntary_ctxt_switches` in `/proc/self/task/<tid>/status`): one more
/// for each wait it blocks in, so one for a wait that lasts until it is
/// woken, and one per slice for a wait in slices.
///
/// # Panics
///
/// If the thread has ended, or `/proc` does not say.
pub fn sleeps(tid: Tid) -> u64 {
    let status = fs::read_to_string(format!("/proc/self/task/{tid}/status"))
        .expect("no /proc/self/task/<tid>/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("no voluntary_ctxt_switches in /proc/self/task/<tid>/status")
}

/// How a thread blocked in a system call waits, as
/// `/proc/self/task/<tid>/syscall` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A `futex` wait with no timeout: it sleeps until another thread wakes
    /// it, as std's `Mutex`, `RwLock`, `Condvar::wait` and `park` do. On an
    /// architecture whose call numbers this module does not know, every
    /// wait counts as this one.
    UntilWoken,
    /// A `futex` wait with a timeout, or a sleep (`nanosleep`,
    /// `clock_nanosleep`): it wakes by itself.
    UntilADeadline,
    /// Any other system call.
    Elsewhere,
}

/// The numbers of `futex`, `nanosleep` and `clock_nanosleep`.
#[cfg(target_arch = "x86_64")]
const WAIT_CALLS: Option<[i64; 3]> = Some([202, 35, 230]);
#[cfg(target_arch = "aarch64")]
const WAIT_CALLS: Option<[i64; 3]> = Some([98, 101, 115]);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const WAIT_CALLS: Option<[i64; 3]> = None;

/// How thread `tid` waits, with the line `/proc` gave; `None` if it is not
/// blocked in a system call just now (it runs, has ended, or `/proc` does
/// not say).
pub fn wait(tid: Tid) -> Option<(Wait, String)> {
    let line =
        fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    // The call's number, then its six arguments in hexadecimal; `running`,
    // or -1 when blocked outside a system call.
    let fields: Vec<&str> = line.split_whitespace().collect();
    let number: i64 = fields.first()?.parse().ok()?;
    if number < 0 {
        return None;
    }
    let line = line.trim().to_string();
    let Some([futex, nanosleep, clock_nanosleep]) = WAIT_CALLS else {
        return Some((Wait::UntilWoken, line));
    };
    // A futex wait's fourth argument points to its timeout: 0 for none.
    let timeout = fields.get(4).map(|arg| arg.trim_start_matches("0x"));
    let untimed =
        timeout.and_then(|t| u64::from_str_radix(t, 16).ok()) == Some(0);
    let wait = match number {
        _ if number == futex && untimed => Wait::UntilWoken,
        _ if [futex, nanosleep, clock_nanosleep].contains(&number) => {
            Wait::UntilADeadline
        }
        _ => Wait::Elsewhere,
    };
    Some((wait, line))
}

/// The number of the system call thread `tid` is blocked in (the first
/// field of `/proc/self/task/<tid>/syscall`), as the machine numbers them;
/// `None` if it runs, has ended, or `/proc` does not say.
pub fn syscall(tid: Tid) -> Option<i64> {
    fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time, in `/proc`'s ticks (hundredths of a second), after which
/// [`watch_until_asleep`] calls a thread busy: a fifth of a second, which a
/// thread that starts two threads and then sleeps never comes near,
/// however loaded the machine (time a thread waits for a CPU is not
/// counted).
pub const BUSY_TICKS: u64 = 20;

/// What [`watch_until_asleep`] saw a thread do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// Asleep in a wait with no deadline, 100 times in a row.
    AsleepUntilWoken,
    /// In a sleep or a wait with a deadline: the `/proc` line.
    Polling(String),
    /// It used [`BUSY_TICKS`] of CPU time.
    Busy,
}

/// Watches thread `tid` until it has been seen in a wait with no deadline
/// 100 times in a row, a millisecond apart; or in a sleep or a wait with
/// a deadline once; or it has used [`BUSY_TICKS`] of CPU time. A look that
/// finds it running, or in another system call, starts the count again.
/// For a trial that holds other threads until the one that waits for them
/// is seen asleep, the way `join` or a channel's `recv` sleeps.
pub fn watch_until_asleep(tid: Tid) -> Watched {
    let spent = cpu_ticks(tid);
    let mut untimed_in_a_row = 0;
    while untimed_in_a_row < 100 {
        if cpu_ticks(tid).saturating_sub(spent) > BUSY_TICKS {
            return Watched::Busy;
        }
        match wait(tid) {
            Some((Wait::UntilWoken, _)) => untimed_in_a_row += 1,
            Some((Wait::UntilADeadline, line)) => {
                return Watched::Polling(line);
            }
            Some((Wait::Elsewhere, _)) | None => untimed_in_a_row = 0,
        }
        thread::sleep(Duration::from_millis(1));
    }
    Watched::AsleepUntilWoken
}

/// The numbers of `write` and `writev`.
#[cfg(target_arch = "x86_64")]
const WRITE_CALLS: [i64; 2] = [1, 20];
#[cfg(target_arch = "aarch64")]
const WRITE_CALLS: [i64; 2] = [64, 66];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
// No call has this number: `-1` is a thread blocked outside any call.
const WRITE_CALLS: [i64; 2] = [i64::MIN, i64::MIN];

/// A thread of this process asleep in a `write` or `writev` to a file
/// descriptor that opens `file` (the target of its `/proc/self/fd/` link,
/// `pipe:[INODE]` for a pipe), as a writer to a full pipe sleeps until
/// its reader reads; `None` if there is none just now, or the machine's
/// call numbers are not known here. The thread that calls it is never the
/// one.
pub fn asleep_writing_to(file: &std::path::Path) -> Option<Me> {
    let tasks = fs::read_dir("/proc/self/task").ok()?;
    tasks
        .filter_map(|task| task.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&tid| asleep(tid))
        .find(|&tid| {
            let Ok(line) =
                fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
            else {
                return false;
            };
            let mut fields = line.split_whitespace();
            let number = fields.next().and_then(|n| n.parse::<i64>().ok());
            let fd = fields.next().and_then(|fd| {
                i32::from_str_radix(fd.trim_start_matches("0x"), 16).ok()
            });
            match (number, fd) {
                (Some(number), Some(fd)) if WRITE_CALLS.contains(&number) => {
                    fs::read_link(format!("/proc/self/fd/{fd}"))
                        .is_ok_and(|opened| opened == file)
                }
                _ => false,
            }
        })
        .map(|tid| Me { tid })
}

/// Watches thread `tid`, yielding between looks, until `seen()` says it has
/// got where the trial waits for it (then `true`), or it has used
/// [`BUSY_TICKS`] of CPU time since the call (then `false`: it spins). For
/// a trial that waits for something else than [`watch_until_asleep`] does
/// (asleep once, in a given wait, or finished), bounded as that one is by
/// the thread's own CPU time, never by the clock. A thread that has ended,
/// or sleeps in a wait `seen` does not accept, uses no CPU time: `seen`
/// must accept both, or the watch lasts until the trial's timeout.
pub fn watch_until(tid: Tid, mut seen: impl FnMut() -> bool) -> bool {
    let spent = cpu_ticks(tid);
    loop {
        if seen() {
            return true;
        }
        if cpu_ticks(tid).saturating_sub(spent) > BUSY_TICKS {
            return false;
        }
        thread::yield_now();
    }
}
