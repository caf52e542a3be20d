//! One writer frozen wherever a signal finds it: the trial sends the
//! writer `SIGUSR1`, whose handler holds it, on its own thread, at the very
//! instruction it had reached, until the trial lets it go. Meanwhile a
//! reader takes a snapshot, which must either come back consistent or go
//! to sleep (waiting for a lock the frozen writer holds). A reader that
//! spins waiting for the writer neither returns nor sleeps: once it has
//! used a fifth of a second of CPU time inside that one snapshot, the
//! trial lets the writer go and fails. A reader that polls, sleeping a
//! while and trying again (`thread::sleep`, a wait with a timeout), does
//! sleep, but not until it is woken: the system call it sleeps in, which
//! `/proc` shows, is not a futex wait without a timeout (what a `Mutex`,
//! an `RwLock` or a `Condvar` sleeps in), and the trial fails at once,
//! however long the poller's pause. Many freezes land halfway through
//! `record`, between the count's update and the total's.
//!
//! Before that, one `record` overflows and panics: a write that panics must
//! leave nothing behind (a sequence number left odd, which would make every
//! later write look finished to the readers while it is under way).
//!
//! Freezing, and whether a thread sleeps, are `course::grader::task`'s.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

use course::grader::task::{self, Tid, asleep, cpu_ticks};
use exercises::ch04_refcount::Stats;

/// What the reader saw: a snapshot, or that it went to sleep in it.
enum Seen {
    Snapshot(u64, u64),
    Asleep,
    /// The reader used `SPIN_TICKS` of CPU time inside one `snapshot`
    /// without returning or sleeping.
    Spinning,
    /// The reader slept inside `snapshot` in a wait that ends by itself:
    /// the line of `/proc/self/task/<tid>/syscall` it was seen in.
    Polling(String),
}

/// CPU time, in the clock ticks of `/proc` (`USER_HZ`, 100 a second on
/// Linux), after which a reader inside one `snapshot` counts as spinning:
/// a fifth of a second of its own CPU time, which a snapshot that reads
/// two numbers or sleeps on a lock never comes near, however loaded the
/// machine (time the thread waits for a CPU is not counted).
const SPIN_TICKS: u64 = 20;

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
    let stop = AtomicBool::new(false);
    let records = AtomicU64::new(0);
    let started = AtomicUsize::new(0);
    let mut torn = 0_usize;
    let mut example = None;
    let mut spun = false;
    let mut polled = None;
    thread::scope(|s| {
        let (tell_writer, writer) = mpsc::channel();
        let (stop, records, stats) = (&stop, &records, &stats);
        s.spawn(move || {
            tell_writer.send(task::me()).unwrap();
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
            tell_reader.send(task::me().tid).unwrap();
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
            // The writer still runs: it loops until `stop`.
            task::freeze(writer);
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
                    let waits = task::wait(reader);
                    match answers.try_recv() {
                        Ok((count, total)) => {
                            break Seen::Snapshot(count, total);
                        }
                        Err(_) => match waits {
                            // On a lock or a condition variable, until
                            // another thread wakes it.
                            Some((task::Wait::UntilWoken, _)) => {
                                break Seen::Asleep;
                            }
                            // A `thread::sleep`, a wait with a timeout.
                            Some((_, line)) => break Seen::Polling(line),
                            // It woke meanwhile: look again.
                            None => {}
                        },
                    }
                }
                if cpu_ticks(reader) - spent > SPIN_TICKS {
                    break Seen::Spinning;
                }
                thread::yield_now();
            };
            task::thaw();
            let (count, total) = match seen {
                Seen::Snapshot(count, total) => (count, total),
                Seen::Asleep => answers.recv().expect("the reader ended"),
                Seen::Spinning => {
                    spun = true;
                    answers.recv().expect("the reader ended")
                }
                Seen::Polling(line) => {
                    polled = Some(line);
                    answers.recv().expect("the reader ended")
                }
            };
            if count != total {
                torn += 1;
                example = Some((count, total));
            }
            // One spin or poll is the verdict: more freezes would only
            // cost a fifth of a second of CPU time each.
            if spun || polled.is_some() {
                break;
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
    if let Some(line) = polled {
        panic!(
            "while the one writer was frozen by a signal, holding the \
             numbers, a reader slept inside snapshot in a wait that ends by \
             itself (/proc/self/task/<tid>/syscall: {line}), not in a wait \
             on a lock until the writer lets it go: snapshot polls (a \
             try_lock and thread::sleep, or a wait with a timeout?). Sleep \
             on the lock itself (lock(), not try_lock in a loop), so that \
             the writer's unlock wakes the reader"
        );
    }
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

/// Two readers that go to sleep while the one writer is frozen inside
/// `record` must both be woken when it finishes, though it records nothing
/// more: a writer that wakes only one sleeper (`Condvar::notify_one`) leaves
/// the other asleep for good. The writer is frozen again and again until
/// both readers are seen asleep inside `snapshot` at once; then it is told
/// to stop after this record and let go. Once it has ended, nothing else
/// can wake a reader: if every reader left is then seen asleep in a wait
/// with no deadline, 100 times in a row, none ever will be. (A reader that
/// the writer's unlock woke is running, or waiting for a CPU, until it
/// returns: never asleep.) The readers may have gone to sleep on a lock the
/// writer held around a flag rather than behind the flag itself, which
/// does not lose them, so this is done `ROUNDS` times, each with a writer
/// of its own. Freezes that do not put both readers to sleep only cost
/// time, and a correct `Stats` passes whether or not any does.
pub fn sleeping_readers_are_all_woken() {
    const ROUNDS: usize = 50;
    for _ in 0..ROUNDS {
        let left_asleep = readers_left_asleep();
        assert_eq!(
            left_asleep, 0,
            "{left_asleep} of two readers that went to sleep in snapshot \
             while the one writer was frozen inside record were never woken \
             when that record finished (the writer recorded nothing more): \
             the writer's wakeup reached only one sleeper \
             (Condvar::notify_one?). Wake every waiter (notify_all), or \
             sleep on the lock itself, whose unlock passes the turn on"
        );
    }
}

/// One round of `sleeping_readers_are_all_woken`: how many readers were
/// left asleep after the writer had ended.
fn readers_left_asleep() -> usize {
    const FREEZES: usize = 1_000;
    const READERS: usize = 2;
    let stats = Stats::new();
    let stop = AtomicBool::new(false);
    let records = AtomicU64::new(0);
    let mut left_asleep = 0;
    thread::scope(|s| {
        let (tell_writer, writer) = mpsc::channel();
        let (stop, records, stats) = (&stop, &records, &stats);
        let writing = s.spawn(move || {
            tell_writer.send(task::me()).unwrap();
            while !stop.load(Ordering::SeqCst) {
                stats.record(1);
                records.fetch_add(1, Ordering::SeqCst);
            }
        });
        let writer = writer.recv().expect("the writer ended at once");
        let mut readers = Vec::new();
        for _ in 0..FREEZES {
            // Let the writer record once more, so that it is frozen at a
            // new place each time.
            let before = records.load(Ordering::SeqCst);
            while records.load(Ordering::SeqCst) < before + 2 {
                thread::yield_now();
            }
            task::freeze(writer);
            readers = (0..READERS)
                .map(|_| {
                    let (tell, told) = mpsc::channel();
                    let handle = s.spawn(move || {
                        tell.send(task::me().tid).unwrap();
                        stats.snapshot()
                    });
                    let tid = told.recv().expect("a reader ended at once");
                    // No deadline: `snapshots_while_a_writer_is_frozen`
                    // already failed a reader that spins.
                    while !handle.is_finished() && !asleep(tid) {
                        thread::yield_now();
                    }
                    (tid, handle)
                })
                .collect();
            if readers.iter().all(|(_, handle)| !handle.is_finished()) {
                break;
            }
            task::thaw();
            for (_, handle) in readers.drain(..) {
                handle.join().expect("a reader panicked");
            }
        }
        // Both readers asleep, or no freeze put them to sleep: the writer
        // stops after the record it is in.
        stop.store(true, Ordering::SeqCst);
        task::thaw();
        writing.join().expect("the writer panicked");
        let mut in_a_row = 0;
        while in_a_row < 100 {
            let waiting: Vec<_> = readers
                .iter()
                .filter(|(_, handle)| !handle.is_finished())
                .collect();
            if waiting.is_empty() {
                break;
            }
            let all_asleep = waiting.iter().all(|(tid, _)| {
                matches!(task::wait(*tid), Some((task::Wait::UntilWoken, _)))
            });
            in_a_row = if all_asleep { in_a_row + 1 } else { 0 };
            thread::sleep(std::time::Duration::from_millis(1));
        }
        // Wake the readers left asleep, one record at a time, so that the
        // round can end.
        while readers.iter().any(|(_, handle)| !handle.is_finished()) {
            left_asleep = readers
                .iter()
                .filter(|(_, handle)| !handle.is_finished())
                .count();
            stats.record(1);
            thread::yield_now();
        }
    });
    left_asleep
}
