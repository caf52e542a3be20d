//! One writer frozen wherever a signal finds it: the trial sends the
//! writer `SIGUSR1`, whose handler holds it, on its own thread, at the very
//! instruction it had reached, until the trial lets it go. Meanwhile a
//! reader takes a snapshot, which must either come back consistent or go
//! to sleep (waiting for a lock the frozen writer holds). A reader that
//! spins waiting for the writer neither returns nor sleeps: once it has
//! used a fifth of a second of CPU time inside that one snapshot, the
//! trial lets the writer go and fails. Many freezes land halfway through
//! `record`, between the count's update and the total's.
//!
//! Before that, one `record` overflows and panics: a write that panics must
//! leave nothing behind (a sequence number left odd, which would make every
//! later write look finished to the readers while it is under way).
//!
//! Whether a thread sleeps is read from Linux's `/proc` (see `transit.rs`).

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

use exercises::ch04_refcount::Stats;

use super::transit::{Tid, asleep, gettid};

/// A thread, as `pthread_self` returns it (`pthread_t`, an unsigned
/// long on Linux).
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
    fn signal(signum: i32, handler: usize) -> usize;
    fn pthread_self() -> PthreadT;
    fn pthread_kill(thread: PthreadT, signum: i32) -> i32;
    fn nanosleep(wanted: *const Timespec, left: *mut Timespec) -> i32;
}

/// Set by the trial to freeze the writer, cleared to let it go.
static FROZEN: AtomicBool = AtomicBool::new(false);
/// Set by the handler once the writer is held.
static HELD: AtomicBool = AtomicBool::new(false);

/// Runs on the writer's thread, in the middle of whatever it was doing:
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

/// What the reader saw: a snapshot, or that it went to sleep in it.
enum Seen {
    Snapshot(u64, u64),
    Asleep,
    /// The reader used `SPIN_TICKS` of CPU time inside one `snapshot`
    /// without returning or sleeping.
    Spinning,
}

/// CPU time, in the clock ticks of `/proc` (`USER_HZ`, 100 a second on
/// Linux), after which a reader inside one `snapshot` counts as spinning:
/// a fifth of a second of its own CPU time, which a snapshot that reads
/// two numbers or sleeps on a lock never comes near, however loaded the
/// machine (time the thread waits for a CPU is not counted).
const SPIN_TICKS: u64 = 20;

/// The CPU time thread `tid` of this process has used, user and system,
/// in clock ticks (fields 14 and 15 of `/proc/self/task/<tid>/stat`).
fn cpu_ticks(tid: Tid) -> u64 {
    let stat = fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .expect("no /proc/self/task/<tid>/stat for the reader");
    // The fields after the parenthesised name (which may hold spaces)
    // start with the state, field 3; utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, after)| after);
    after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|ticks| ticks.parse::<u64>().expect("a number of ticks"))
        .sum()
}

/// One writer records requests of 1 ms each, after one that overflowed,
/// so every consistent snapshot has total == count; the trial freezes it
/// again and again, each time while a reader takes a snapshot.
pub fn snapshots_while_a_writer_is_frozen() {
    const FREEZES: usize = 1_000;
    let stats = Stats::new();
    stats.record(1);
    let overflowed =
        thread::scope(|s| s.spawn(|| stats.record(u64::MAX)).join());
    assert!(
        overflowed.is_err(),
        "record(u64::MAX) after record(1) must panic: the total overflows"
    );
    // SAFETY: `hold` only uses atomics and `nanosleep`.
    unsafe { signal(SIGUSR1, hold as extern "C" fn(i32) as usize) };
    let stop = AtomicBool::new(false);
    let records = AtomicU64::new(0);
    let started = AtomicUsize::new(0);
    let mut torn = 0_usize;
    let mut example = None;
    let mut spun = false;
    thread::scope(|s| {
        let (tell_writer, writer) = mpsc::channel();
        let (stop, records, stats) = (&stop, &records, &stats);
        s.spawn(move || {
            // SAFETY: `pthread_self` has no preconditions.
            tell_writer.send(unsafe { pthread_self() }).unwrap();
            while !stop.load(Ordering::SeqCst) {
                stats.record(1);
                records.fetch_add(1, Ordering::SeqCst);
            }
        });
        let writer = writer.recv().expect("the writer ended at once");
        let (ask, asked) = mpsc::channel::<()>();
        let (answer, answers) = mpsc::channel();
        let (tell_reader, reader) = mpsc::channel::<Tid>();
        let started = &started;
        s.spawn(move || {
            // SAFETY: `gettid` has no preconditions.
            tell_reader.send(unsafe { gettid() }).unwrap();
            for () in asked {
                started.fetch_add(1, Ordering::SeqCst);
                answer.send(stats.snapshot()).unwrap();
            }
        });
        let reader = reader.recv().expect("the reader ended at once");
        for freeze in 1..=FREEZES {
            // Let the writer record once more, so that it is frozen at a
            // new place each time.
            let before = records.load(Ordering::SeqCst);
            while records.load(Ordering::SeqCst) < before + 2 {
                thread::yield_now();
            }
            HELD.store(false, Ordering::SeqCst);
            FROZEN.store(true, Ordering::SeqCst);
            // SAFETY: `writer` is a thread of this process, still running:
            // it loops until `stop`.
            let sent = unsafe { pthread_kill(writer, SIGUSR1) };
            assert_eq!(sent, 0, "pthread_kill failed");
            // No deadline: a pause until the handler holds the writer.
            while !HELD.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            ask.send(()).unwrap();
            // Until the reader is inside `snapshot` (or done with it): it
            // sleeps on the channel before.
            while started.load(Ordering::SeqCst) < freeze {
                thread::yield_now();
            }
            // No deadline: a reader that spins on the frozen writer
            // (neither answers nor sleeps) is told by the CPU time it uses.
            let spent = cpu_ticks(reader);
            let seen = loop {
                if let Ok((count, total)) = answers.try_recv() {
                    break Seen::Snapshot(count, total);
                }
                // It answers before it waits for the next question: asleep
                // with no answer yet is asleep inside `snapshot`.
                if asleep(reader) {
                    match answers.try_recv() {
                        Ok((count, total)) => {
                            break Seen::Snapshot(count, total);
                        }
                        Err(_) => break Seen::Asleep,
                    }
                }
                if cpu_ticks(reader) - spent > SPIN_TICKS {
                    break Seen::Spinning;
                }
                thread::yield_now();
            };
            FROZEN.store(false, Ordering::SeqCst);
            let (count, total) = match seen {
                Seen::Snapshot(count, total) => (count, total),
                Seen::Asleep => answers.recv().expect("the reader ended"),
                Seen::Spinning => {
                    spun = true;
                    answers.recv().expect("the reader ended")
                }
            };
            if count != total {
                torn += 1;
                example = Some((count, total));
            }
        }
        stop.store(true, Ordering::SeqCst);
    });
    assert!(
        !spun,
        "a reader spent a fifth of a second of CPU time inside one \
         snapshot while the one writer was frozen by a signal: snapshot \
         spins while a writer that cannot run holds the numbers. With one \
         lock around both numbers the reader sleeps on it instead"
    );
    assert_eq!(
        torn, 0,
        "{torn} snapshots had a count and a total from different moments \
         (for example {example:?}, while the one writer was frozen by a \
         signal, many times halfway through record, after a record that \
         overflowed and panicked): a panicking record must leave nothing \
         behind; guard both numbers with one lock"
    );
    let (count, total) = stats.snapshot();
    assert_eq!(count, total, "no update lost");
}
