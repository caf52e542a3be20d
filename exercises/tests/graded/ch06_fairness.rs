//! Graded trials of chapter 6, Fairness: starvation and the new GIL.
//!
//! The "how" checks: threads queue for the ticket lock one by one while it
//! is held, and the thread that lets go and asks again at once must come
//! last; two CPU-bound threads under the new GIL can only both progress if
//! the holder hands over when asked; work that spins until the third
//! heartbeat can only finish if it runs off the runtime's one thread; and a
//! writer must get in while one thread keeps a read lock held at every
//! moment. Unfair or blocking versions time out and are told why.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch06")]

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use course::grader::Trial;
use exercises::ch06_fairness::{
    FairRwLock, NewGil, TicketLock, with_heartbeat,
};
use tokio::runtime::{Builder, Runtime};

/// Deadline for trials whose only way to hang is a lock that never lets a
/// waiting thread in.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

/// A pause that gives a thread time to get where it is going. If it is too
/// short (a slow machine), a wrong answer may slip through; a right answer
/// never fails because of it.
const SETTLE: Duration = Duration::from_millis(50);

/// Threads that take the ticket lock over and over at once. Few, and
/// few rounds: a fair lock hands over to one particular thread, which on
/// a busy machine may first have to wait for a core, so every hand-over
/// can cost a time slice (the convoy of the chapter, in a spin lock).
const THREADS: usize = 4;

/// Lock, read, yield, write: rounds per thread. The yield between the read
/// and the write gives other threads every chance to slip in.
const INCREMENTS: usize = 100;

/// Deadline for the ticket lock's busiest trial: generous, since each of
/// its hand-overs may wait for a time slice on a loaded machine.
const CONVOY_TIMEOUT: Duration = Duration::from_secs(10);

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new(
            "ch06::ticket_lock::excludes_other_threads",
            2,
            excludes_other_threads,
        )
        .timeout(CONVOY_TIMEOUT)
        .on_timeout(
            "a thread waited forever for its turn: does dropping the guard \
             serve the next ticket, and does every thread get a ticket of \
             its own?",
        ),
        Trial::new(
            "ch06::ticket_lock::serves_threads_in_arrival_order",
            3,
            serves_threads_in_arrival_order,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "a thread never got the lock, or queue_len never counted a \
             waiting thread (if counts_the_queue failed too, start there)",
        ),
        Trial::new("ch06::ticket_lock::counts_the_queue", 1, counts_the_queue)
            .timeout(HANG_TIMEOUT)
            .on_timeout(
                "queue_len never reached 3 with one thread holding the \
                 lock and two waiting for it: it counts the tickets drawn \
                 but not yet served (next ticket minus now serving)",
            ),
        Trial::new(
            "ch06::new_gil::one_holder_at_a_time",
            1,
            one_holder_at_a_time,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "a thread never got the GIL: is it released when the guard \
                 drops, and does check() take it back once another thread \
                 has had it?",
        ),
        Trial::new(
            "ch06::new_gil::waits_an_interval_before_asking",
            1,
            waits_an_interval_before_asking,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the waiting thread never asked for the GIL: wait in slices of \
             one interval (Condvar::wait_timeout), and when a wait times \
             out with no switch meanwhile, set the drop request",
        ),
        Trial::new(
            "ch06::new_gil::check_hands_over_after_a_drop_request",
            3,
            check_hands_over_after_a_drop_request,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the waiting thread never asked for the GIL, or check() never \
             returned: it waits until another thread has taken the GIL, \
             then takes it back once it is free",
        ),
        Trial::new(
            "ch06::new_gil::check_without_a_request_keeps_the_gil",
            1,
            check_without_a_request_keeps_the_gil,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "waiting() never showed the waiting thread, or dropping the \
             guard did not let it in",
        ),
        Trial::new(
            "ch06::new_gil::cpu_threads_take_turns",
            2,
            cpu_threads_take_turns,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "two threads that only call check() never both made progress: \
             the waiting one asks after an interval, and the holder's \
             check() must then hand the GIL over",
        ),
        Trial::new(
            "ch06::heartbeat::returns_the_result",
            1,
            returns_the_result,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "with_heartbeat never returned: does it stop beating once the \
             work has finished?",
        ),
        Trial::new(
            "ch06::heartbeat::beats_while_the_work_runs",
            3,
            beats_while_the_work_runs,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the heartbeat stopped while the work ran: the work spins until \
             the third beat, and on a current-thread runtime, work that runs \
             on the runtime's thread (called inline, or in tokio::spawn) \
             leaves no time for the beats. Run it with \
             tokio::task::spawn_blocking",
        ),
        Trial::new("ch06::heartbeat::passes_a_panic_on", 1, passes_a_panic_on)
            .timeout(HANG_TIMEOUT)
            .on_timeout(
                "with_heartbeat never returned after the work panicked: the \
                 JoinHandle completes with an error then, which ends the \
                 wait just as a result would",
            ),
        Trial::new(
            "ch06::fair_rwlock::readers_share_the_lock",
            1,
            readers_share_the_lock,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "3 readers never held the lock at the same time: each waits at \
             a barrier while it holds a read guard, so read() must let \
             readers in together",
        ),
        Trial::new(
            "ch06::fair_rwlock::writers_exclude_everyone",
            2,
            writers_exclude_everyone,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "a reader or a writer never got in: is the lock released when \
             each guard drops, and is a waiting thread woken then?",
        ),
        Trial::new(
            "ch06::fair_rwlock::a_waiting_writer_blocks_new_readers",
            2,
            a_waiting_writer_blocks_new_readers,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "writers_waiting() never counted the writer blocked in write(), \
             or a thread never got in once the read guard was dropped",
        ),
        Trial::new(
            "ch06::fair_rwlock::a_writer_is_not_starved_by_readers",
            3,
            a_writer_is_not_starved_by_readers,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the writer starved: one thread always holds a read guard and \
             takes a new one with try_read before it drops the old one, \
             stopping only when try_read returns None. While a writer \
             waits, try_read (and read) must refuse new readers",
        ),
    ]
}

/// Each of `THREADS` threads adds one to a plain `u64` `INCREMENTS` times
/// through the lock, with a yield between the read and the write: no
/// increment is lost.
fn excludes_other_threads() {
    let lock = TicketLock::new(0_u64);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..INCREMENTS {
                    let mut count = lock.lock();
                    let seen = *count;
                    thread::yield_now(); // Another thread could slip in.
                    *count = seen + 1;
                }
            });
        }
    });
    let total = lock.into_inner();
    let expected = (THREADS * INCREMENTS) as u64;
    assert_eq!(
        total, expected,
        "{THREADS} threads each made {INCREMENTS} increments through the \
         lock, but the total is {total}, not {expected}: two threads held \
         the lock at once"
    );
}

/// While the main thread holds the lock, waiters queue one at a time;
/// when it unlocks and at once locks again, every waiter goes first, in
/// the order they came, and the main thread last.
fn serves_threads_in_arrival_order() {
    const WAITERS: usize = 4;
    const ROUNDS: usize = 5;
    for round in 1..=ROUNDS {
        let lock = TicketLock::new(Vec::new());
        thread::scope(|s| {
            let held = lock.lock();
            for waiter in 0..WAITERS {
                let lock = &lock;
                s.spawn(move || lock.lock().push(format!("waiter {waiter}")));
                // This waiter has its place in the queue before the next
                // one is even started: the holder plus `waiter + 1`.
                while lock.queue_len() < waiter + 2 {
                    thread::yield_now();
                }
            }
            drop(held);
            // Straight back: it must queue behind the waiters.
            lock.lock().push("main".to_string());
        });
        let order = lock.into_inner();
        let expected: Vec<String> = (0..WAITERS)
            .map(|waiter| format!("waiter {waiter}"))
            .chain(["main".to_string()])
            .collect();
        assert_eq!(
            order, expected,
            "round {round}: {WAITERS} threads queued, one after another, \
             while the main thread held the lock; it let go and locked \
             again at once, so the waiters should have had the lock first, \
             in the order they came, and the main thread last"
        );
    }
}

/// `queue_len` counts the holder and every waiter, and drops back to 0.
fn counts_the_queue() {
    let lock = TicketLock::new("order book");
    assert_eq!(lock.queue_len(), 0, "a new lock has no queue");
    {
        let _held = lock.lock();
        assert_eq!(lock.queue_len(), 1, "one thread holds the lock");
    }
    assert_eq!(lock.queue_len(), 0, "the holder has let go");
    thread::scope(|s| {
        let held = lock.lock();
        for _ in 0..2 {
            s.spawn(|| drop(lock.lock()));
        }
        while lock.queue_len() < 3 {
            thread::yield_now();
        }
        assert_eq!(lock.queue_len(), 3, "one holder and two waiters");
        drop(held);
    });
    assert_eq!(
        lock.queue_len(),
        0,
        "every thread has had the lock and let go"
    );
    assert_eq!(
        lock.into_inner(),
        "order book",
        "into_inner gives the value"
    );
}

/// Four threads take the new GIL over and over with a 1 ms interval, and
/// call `check` while they hold it, so drop requests come and are served:
/// never are two threads inside at once, `check` included.
fn one_holder_at_a_time() {
    const HOLDERS: usize = 4;
    const TURNS: usize = 10;
    const HOLD: Duration = Duration::from_millis(2);
    let gil = NewGil::new(Duration::from_millis(1));
    let inside = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    let enter = || {
        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(now, Ordering::SeqCst);
    };
    let leave = || inside.fetch_sub(1, Ordering::SeqCst);
    thread::scope(|s| {
        for _ in 0..HOLDERS {
            s.spawn(|| {
                for _ in 0..TURNS {
                    let mut held = gil.acquire();
                    enter();
                    // Longer than the interval: the others ask meanwhile.
                    let start = Instant::now();
                    while start.elapsed() < HOLD {
                        thread::yield_now();
                        leave(); // `check` may let go, and take it back.
                        held.check();
                        enter();
                    }
                    leave();
                    drop(held);
                }
            });
        }
    });
    let most = most.load(Ordering::SeqCst);
    assert_eq!(
        most, 1,
        "{most} threads held the GIL at once (counting a thread as holding \
         it from acquire to the guard's drop, except inside check): does \
         acquire wait while the GIL is held, after every wake-up, and does \
         check take the GIL back before it returns?"
    );
}

/// With a 30 ms interval, the drop request comes no sooner than 30 ms
/// after the waiter started waiting.
fn waits_an_interval_before_asking() {
    const INTERVAL: Duration = Duration::from_millis(30);
    let gil = NewGil::new(INTERVAL);
    let held = gil.acquire();
    let (started, start) = mpsc::channel();
    thread::scope(|s| {
        s.spawn(|| {
            started.send(Instant::now()).unwrap();
            drop(gil.acquire());
        });
        let start = start.recv().unwrap();
        while !gil.drop_requested() {
            thread::yield_now();
        }
        let asked_after = start.elapsed();
        drop(held);
        assert!(
            asked_after >= INTERVAL,
            "the waiter asked for the GIL after {asked_after:?}, before a \
             whole interval ({INTERVAL:?}) had passed: wait one interval, \
             and ask only if the wait timed out"
        );
    });
}

/// Round after round: the main thread holds the GIL, a waiter asks for
/// it, and the main thread's `check` returns only after the waiter has
/// had the GIL, with the request reset.
fn check_hands_over_after_a_drop_request() {
    const ROUNDS: usize = 20;
    let gil = NewGil::new(Duration::from_millis(2));
    for round in 1..=ROUNDS {
        let served = AtomicBool::new(false);
        let mut held = gil.acquire();
        thread::scope(|s| {
            s.spawn(|| {
                let _held = gil.acquire();
                served.store(true, Ordering::SeqCst);
            });
            while !gil.drop_requested() {
                thread::yield_now();
            }
            held.check();
            assert!(
                served.load(Ordering::SeqCst),
                "round {round}: check() returned before the thread that \
                 asked for the GIL had it: after releasing, wait until \
                 another thread has taken the GIL (CPython's forced \
                 switching), or the releasing thread wins it straight back"
            );
            assert!(
                !gil.drop_requested(),
                "round {round}: the drop request was served, so it should \
                 be reset"
            );
            drop(held);
        });
    }
}

/// With a 60 s interval nobody asks, so thousands of `check`s keep the
/// GIL from a thread that waits for it; dropping the guard lets it in.
fn check_without_a_request_keeps_the_gil() {
    const CHECKS: usize = 10_000;
    let gil = NewGil::new(Duration::from_secs(60));
    let served = AtomicBool::new(false);
    let mut held = gil.acquire();
    thread::scope(|s| {
        s.spawn(|| {
            let _held = gil.acquire();
            served.store(true, Ordering::SeqCst);
        });
        while gil.waiting() == 0 {
            thread::yield_now();
        }
        for _ in 0..CHECKS {
            held.check();
        }
        assert!(
            !served.load(Ordering::SeqCst),
            "the waiting thread got the GIL during {CHECKS} checks, though \
             nobody had asked for it (the interval is 60 s): check() lets \
             go only when a drop request is set"
        );
        assert!(!gil.drop_requested(), "nobody has asked yet");
        drop(held);
    });
    assert!(
        served.load(Ordering::SeqCst),
        "dropping the guard let the waiting thread in"
    );
}

/// Two threads each hold the GIL and loop, calling only `check`, until
/// both have made progress: that takes the GIL changing hands both ways.
fn cpu_threads_take_turns() {
    let gil = NewGil::new(Duration::from_millis(1));
    let progress = [AtomicUsize::new(0), AtomicUsize::new(0)];
    thread::scope(|s| {
        for me in 0..2 {
            let (gil, progress) = (&gil, &progress);
            s.spawn(move || {
                let mut held = gil.acquire();
                loop {
                    let mine = progress[me].fetch_add(1, Ordering::SeqCst);
                    let theirs = progress[1 - me].load(Ordering::SeqCst);
                    // Both, not just the other: the first to stop would
                    // leave the other spinning alone forever.
                    if mine >= 3 && theirs >= 3 {
                        break;
                    }
                    held.check();
                }
            });
        }
    });
}

/// A runtime with one thread, the one that calls `block_on`, and timers.
fn current_thread_runtime() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime")
}

/// `with_heartbeat` returns what the work returned, whether the work ends
/// before the first period or after several.
fn returns_the_result() {
    let runtime = current_thread_runtime();
    let period = Duration::from_millis(5);
    let answer = runtime.block_on(with_heartbeat(|| 6 * 7, period, || {}));
    assert_eq!(answer, 42, "with_heartbeat returns what the work returned");
    let report = runtime.block_on(with_heartbeat(
        || {
            thread::sleep(Duration::from_millis(20)); // Several periods.
            String::from("quarterly report")
        },
        period,
        || {},
    ));
    assert_eq!(report, "quarterly report");
}

/// The work spins until the third beat, which only comes if the work runs
/// off the runtime's one thread; and the third beat is at least two
/// periods after the start, since beats wait for their period.
fn beats_while_the_work_runs() {
    const PERIOD: Duration = Duration::from_millis(20);
    let runtime = current_thread_runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let mut beats = Vec::new();
    let start = Instant::now();
    let spins = {
        let stop = Arc::clone(&stop);
        move || {
            let mut spins = 0_u64;
            while !stop.load(Ordering::SeqCst) {
                spins += 1; // CPU-bound, and never awaits.
                thread::yield_now();
            }
            spins
        }
    };
    runtime.block_on(with_heartbeat(spins, PERIOD, || {
        beats.push(start.elapsed());
        if beats.len() == 3 {
            stop.store(true, Ordering::SeqCst);
        }
    }));
    assert!(beats.len() >= 3, "the work ran until the third beat");
    assert!(
        beats[2] >= 2 * PERIOD,
        "the third beat came {:?} after the start, before two periods \
         ({:?}) were over: beat once per period (tokio::time::interval), \
         not as often as the loop comes round",
        beats[2],
        2 * PERIOD
    );
}

/// The text of a panic payload, if it is text.
fn panic_text(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// A panic in the work reaches the caller of `block_on` with the work's
/// own message.
fn passes_a_panic_on() {
    const MESSAGE: &str = "the backup failed on purpose (expected)";
    let runtime = current_thread_runtime();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(with_heartbeat(
            || -> u64 { panic::panic_any(MESSAGE) },
            Duration::from_millis(5),
            || {},
        ))
    }));
    let Err(payload) = caught else {
        panic!("the work panicked, but with_heartbeat returned a value");
    };
    assert_eq!(
        panic_text(&*payload),
        Some(MESSAGE),
        "the panic that came out of with_heartbeat is not the work's own: \
         resume it with std::panic::resume_unwind(error.into_panic()) \
         rather than unwrapping the JoinError"
    );
}

/// Three readers hold the lock at once (they meet at a barrier inside
/// their read guards), and `try_read` succeeds on a lock that readers
/// share.
fn readers_share_the_lock() {
    const READERS: usize = 3;
    let lock = FairRwLock::new(vec!["spring", "summer"]);
    let barrier = Barrier::new(READERS);
    thread::scope(|s| {
        for _ in 0..READERS {
            s.spawn(|| {
                let seasons = lock.read();
                barrier.wait(); // Every reader holds the lock now.
                assert_eq!(seasons.len(), 2);
            });
        }
    });
    let first = lock.try_read();
    assert!(first.is_some(), "try_read on a free lock gives a guard");
    let second = lock.try_read();
    assert!(
        second.is_some(),
        "try_read gives a guard while another reader holds the lock"
    );
}

/// Two writers add 2 in two steps with a yield between, while two readers
/// check that they never see an odd value or one that changes under them:
/// no update is lost, and `try_read` fails while a writer holds the lock.
fn writers_exclude_everyone() {
    const WRITES: usize = 300;
    let lock = FairRwLock::new(0_u64);
    // First, one reader inside and one writer asking: the writer must wait
    // until the reader has left.
    let reader = lock.read();
    let wrote = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            *lock.write() += 2;
            wrote.store(true, Ordering::SeqCst);
        });
        while lock.writers_waiting() == 0 && !wrote.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        // A pause that can only give a wrong lock more time to let the
        // writer in; a right one keeps it out however long it lasts.
        thread::sleep(SETTLE);
        assert!(
            !wrote.load(Ordering::SeqCst),
            "a writer got in while a reader held the lock: write() must \
             wait until no reader is inside"
        );
        drop(reader);
    });
    assert_eq!(*lock.read(), 2);
    *lock.write() = 0;
    let odd_seen = AtomicUsize::new(0);
    let changed_seen = AtomicUsize::new(0);
    let writing = AtomicBool::new(true);
    thread::scope(|s| {
        let writers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..WRITES {
                        let mut total = lock.write();
                        let seen = *total;
                        *total = seen + 1; // Odd for a moment.
                        thread::yield_now();
                        *total = seen + 2;
                    }
                })
            })
            .collect();
        for _ in 0..2 {
            s.spawn(|| {
                while writing.load(Ordering::SeqCst) {
                    let total = lock.read();
                    let seen = *total;
                    if seen % 2 == 1 {
                        odd_seen.fetch_add(1, Ordering::SeqCst);
                    }
                    thread::yield_now();
                    if *total != seen {
                        changed_seen.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
        for writer in writers {
            writer.join().unwrap();
        }
        writing.store(false, Ordering::SeqCst);
    });
    let total = *lock.read();
    let expected = 2 * 2 * WRITES as u64;
    assert_eq!(
        total, expected,
        "two writers each made {WRITES} writes of +2, but the total is \
         {total}, not {expected}: two writers held the lock at once"
    );
    let (odd, changed) = (
        odd_seen.load(Ordering::SeqCst),
        changed_seen.load(Ordering::SeqCst),
    );
    assert_eq!(
        odd, 0,
        "readers saw a half-done write {odd} times: a writer must hold the \
         lock alone, with no reader and no other writer inside"
    );
    assert_eq!(
        changed, 0,
        "the value changed {changed} times under a reader's guard: a writer \
         got in while a reader held the lock"
    );
    let held = lock.write();
    assert!(
        lock.try_read().is_none(),
        "try_read gave a guard while a writer held the lock"
    );
    drop(held);
}

/// While a reader holds the lock and a writer waits for it, `try_read`
/// fails and a new reader blocks until the writer has written.
fn a_waiting_writer_blocks_new_readers() {
    let lock = FairRwLock::new(0_u32);
    thread::scope(|s| {
        let held = lock.read();
        s.spawn(|| *lock.write() = 1);
        while lock.writers_waiting() == 0 {
            thread::yield_now();
        }
        assert_eq!(lock.writers_waiting(), 1, "one writer waits");
        // Time for the writer to settle into waiting: a lock built on
        // another that spins a little before it blocks (std's RwLock
        // does) may count a writer a moment before it keeps readers out.
        thread::sleep(SETTLE);
        assert!(
            lock.try_read().is_none(),
            "try_read gave a new reader a guard while a writer waited: \
             with a stream of readers, the writer would wait forever"
        );
        let (trying, tries) = mpsc::channel();
        let lock = &lock;
        let reader = s.spawn(move || {
            trying.send(()).unwrap();
            *lock.read()
        });
        tries.recv().unwrap();
        // Time for the reader to get in if the lock wrongly lets it. Too
        // short a pause lets a wrong lock pass; it never fails a right one.
        thread::sleep(SETTLE);
        drop(held);
        let seen = reader.join().unwrap();
        assert_eq!(
            seen, 1,
            "a reader that came while a writer waited read {seen}, not the \
             writer's 1: read() let it in ahead of the waiting writer"
        );
    });
    assert_eq!(lock.writers_waiting(), 0, "the writer is done");
}

/// One thread holds a read guard at every moment, taking the next with
/// `try_read` before dropping the last, until `try_read` refuses because
/// a writer waits; then the writer gets in.
fn a_writer_is_not_starved_by_readers() {
    let lock = FairRwLock::new(false);
    thread::scope(|s| {
        let mut held = lock.read();
        s.spawn(|| *lock.write() = true);
        // The old guard drops only after the new one is taken, so the
        // lock always has a reader.
        while let Some(next) = lock.try_read() {
            held = next;
        }
        assert!(!*held, "the writer wrote while a reader held the lock");
        drop(held);
    });
    assert!(*lock.read(), "the writer got in and wrote");
}
