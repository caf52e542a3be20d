//! Graded trials of chapter 3, The GIL.
//!
//! The "how" checks: an I/O that completes only after another thread has
//! taken the GIL, and native jobs that wait for each other at a barrier,
//! so holding the GIL through them deadlocks and the grader says why; and
//! two interpreter threads whose bytecodes must interleave in turns of
//! exactly `check_interval`, even on a GIL whose own policy would switch
//! more often.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch03")]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use course::gil::{Gil, SwitchInterval, SwitchPolicy};
use course::grader::Trial;
use course::grader::task::{self, Tid};
use exercises::ch03_gil::{ToyGil, blocking_io, detach, run_bytecodes};

/// Deadline for trials whose only way to hang is a GIL held too long.
const GIL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a `detach` trial whose jobs meet at a barrier timed out.
const DETACH_AT_ONCE: &str = "the jobs wait for each other at a barrier, so \
                              they must run at the same time, each on its \
                              own thread, without the GIL";

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new(
            "ch03::with_gil::lets_one_thread_in_at_a_time",
            2,
            lets_one_thread_in_at_a_time,
        )
        .timeout(GIL_TIMEOUT)
        .on_timeout(
            "a thread never got the lock: a thread inside one ToyGil's \
             with_gil called another ToyGil's, which a third thread held, \
             and waited for it forever (is each ToyGil its own lock, not \
             one shared by every ToyGil?)",
        ),
        Trial::new(
            "ch03::with_gil::lets_every_thread_in",
            1,
            lets_every_thread_in,
        )
        .timeout(GIL_TIMEOUT)
        .on_timeout(
            "a thread never got the lock: is it released? (and is each \
             ToyGil its own lock, not one shared by every ToyGil? and is \
             ToyGil::default() a free lock, like new()?)",
        ),
        Trial::new("ch03::with_gil::survives_a_panic", 1, survives_a_panic)
            .timeout(GIL_TIMEOUT)
            .on_timeout(
                "a thread that waited for the lock while f panicked never \
                 got in: is the lock released when f panics, and the \
                 waiting thread woken?",
            ),
        Trial::new(
            "ch03::with_gil::still_one_at_a_time_after_a_panic",
            1,
            still_one_at_a_time_after_a_panic,
        )
        .timeout(GIL_TIMEOUT)
        .on_timeout(
            "after a panic inside with_gil, a thread never got the lock: \
             is it released when f panics?",
        ),
        Trial::new(
            "ch03::run_bytecodes::executes_every_bytecode_holding_the_gil",
            1,
            executes_every_bytecode_holding_the_gil,
        ),
        Trial::new(
            "ch03::run_bytecodes::takes_turns_every_check_interval",
            3,
            takes_turns_every_check_interval,
        )
        .timeout(GIL_TIMEOUT),
        Trial::new(
            "ch03::run_bytecodes::switches_only_every_check_interval",
            1,
            switches_only_every_check_interval,
        )
        .timeout(GIL_TIMEOUT)
        .on_timeout(
            "two threads ran run_bytecodes on the same Gil, and one never \
             got it: does run_bytecodes hand the GIL over every \
             check_interval bytecodes, and release it when it is done?",
        ),
        Trial::new(
            "ch03::blocking_io::returns_with_the_gil_held",
            1,
            returns_with_the_gil_held,
        )
        .timeout(GIL_TIMEOUT)
        .on_timeout(
            "after the I/O, blocking_io never got the GIL back: another \
             thread held the GIL until two threads waited for it, and one \
             thread waited already, so blocking_io, waiting too, would have \
             made two; it must ask for the GIL at once (Gil::acquire), like \
             any thread, not wait until no other thread waits",
        ),
        Trial::new(
            "ch03::blocking_io::lets_others_run_while_waiting",
            3,
            lets_others_run_while_waiting,
        )
        .timeout(GIL_TIMEOUT)
        .on_timeout(
            "the I/O waited for a thread that needed the GIL, and the GIL \
             was held through the I/O: release it while you wait",
        ),
        Trial::new(
            "ch03::detach::runs_native_jobs_at_once",
            3,
            runs_native_jobs_at_once,
        )
        .timeout(GIL_TIMEOUT)
        .on_timeout(DETACH_AT_ONCE),
        Trial::new(
            "ch03::detach::takes_the_gil_before_and_after",
            2,
            takes_the_gil_before_and_after,
        )
        .timeout(GIL_TIMEOUT)
        .on_timeout(DETACH_AT_ONCE),
        Trial::new(
            "ch03::detach::passes_a_job_panic_on",
            1,
            passes_a_job_panic_on,
        )
        .timeout(GIL_TIMEOUT)
        .on_timeout(
            "the jobs that do not panic wait until the one that does has \
             panicked, so they must run at the same time as it, each on its \
             own thread, without the GIL",
        ),
    ]
}

const THREADS: usize = 8;

fn lets_one_thread_in_at_a_time() {
    let gil = ToyGil::new();
    let most = most_inside_at_once(&gil);
    assert_eq!(
        most, 1,
        "{most} threads were inside with_gil at the same time; a GIL lets \
         exactly one in (is every call using the same lock?)"
    );
    a_nested_call_waits_its_turn();
}

/// A pause in which a thread that wrongly got in would be seen inside.
/// Too short a pause (a slow machine) may let a wrong `with_gil` pass; it
/// never fails a right one.
const SETTLE: Duration = Duration::from_millis(200);

/// Thread U is inside `b.with_gil`; thread T, inside `a.with_gil`, then
/// calls `b.with_gil` too. T must wait until U has left: a `with_gil` that
/// lets a thread already inside some `ToyGil` in at once (a thread-local
/// "already holding" flag shared by every `ToyGil`, as if re-entrant like
/// `PyGILState_Ensure`) lets both in. U stays inside until T gets in, or
/// for `SETTLE` once T is about to call.
fn a_nested_call_waits_its_turn() {
    let (a, b) = (ToyGil::new(), ToyGil::new());
    let u_inside = AtomicBool::new(false);
    let (u_in, u_is_in) = mpsc::channel();
    let (calling, t_is_calling) = mpsc::channel();
    let (t_in, t_is_in) = mpsc::channel();
    let both_inside = thread::scope(|s| {
        let (b, u_inside) = (&b, &u_inside);
        s.spawn(move || {
            b.with_gil(|| {
                u_inside.store(true, Ordering::SeqCst);
                u_in.send(()).expect("thread T vanished");
                t_is_calling.recv().expect("thread T vanished");
                // Cut short if T gets in meanwhile: then both are inside.
                let _ = t_is_in.recv_timeout(SETTLE);
                u_inside.store(false, Ordering::SeqCst);
            });
        });
        let t = s.spawn(move || {
            u_is_in.recv().expect("thread U vanished");
            a.with_gil(|| {
                calling.send(()).expect("thread U vanished");
                b.with_gil(|| {
                    let both = u_inside.load(Ordering::SeqCst);
                    let _ = t_in.send(());
                    both
                })
            })
        });
        t.join().unwrap()
    });
    assert!(
        !both_inside,
        "a thread inside one ToyGil's with_gil called another ToyGil's \
         with_gil, and got in while a third thread was inside that one: \
         each ToyGil is a lock of its own, and a thread that holds one must \
         still take the other's lock (no flag or count shared by every \
         ToyGil, such as a thread_local!, may let it skip the lock)"
    );
}

/// Eight threads, released together by a barrier, call `with_gil` over
/// and over; inside, each pauses, so two threads inside at once would be
/// seen. Returns the most threads seen inside at once.
fn most_inside_at_once(gil: &ToyGil) -> usize {
    let start = Barrier::new(THREADS);
    let inside = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                start.wait();
                for _ in 0..50 {
                    gil.with_gil(|| {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        thread::sleep(Duration::from_micros(50));
                        inside.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            });
        }
    });
    most.load(Ordering::SeqCst)
}

fn lets_every_thread_in() {
    let gil = ToyGil::new();
    let calls = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..100 {
                    gil.with_gil(|| calls.fetch_add(1, Ordering::SeqCst));
                }
            });
        }
    });
    assert_eq!(calls.load(Ordering::SeqCst), THREADS * 100);
    assert_eq!(gil.with_gil(|| "result"), "result", "returns f's result");
    // Two interpreters, two GILs: holding one does not block the other.
    let other = ToyGil::new();
    assert_eq!(gil.with_gil(|| other.with_gil(|| 7)), 7);
    // `default()` is the same free lock as `new()`.
    let default = ToyGil::default();
    assert_eq!(
        default.with_gil(|| 8),
        8,
        "ToyGil::default() is a free lock"
    );
}

/// The payload of the panic inside `with_gil`: a type of the trial's own,
/// so that a panic `with_gil` raises itself cannot pass for `f`'s.
#[derive(Debug)]
struct ThePythonCodeRaised;

fn survives_a_panic() {
    let gil = ToyGil::new();
    let failed = panic::catch_unwind(AssertUnwindSafe(|| {
        gil.with_gil(|| panic::panic_any(ThePythonCodeRaised))
    }));
    let payload = match failed {
        Ok(()) => panic!(
            "f panicked inside with_gil; the panic should reach \
                          the caller"
        ),
        Err(payload) => payload,
    };
    assert!(
        payload.is::<ThePythonCodeRaised>(),
        "with_gil panicked, but not with f's own panic: it raised one of its \
         own (a panic! with a new message after catching f's) instead of \
         letting f's panic go on (a guard that unlocks in its Drop lets it \
         go on by itself; after catch_unwind, panic::resume_unwind raises it \
         again)"
    );
    let after = panic::catch_unwind(AssertUnwindSafe(|| gil.with_gil(|| 7)));
    assert_eq!(
        after.ok(),
        Some(7),
        "after a panic inside with_gil, the next call failed: a panic \
         poisons a std Mutex (see PoisonError::into_inner)"
    );
    a_waiting_thread_gets_in_after_a_panic();
}

/// Thread W calls `with_gil` while this thread is inside, and this
/// thread's `f` panics only once W is asleep, blocked waiting for the lock
/// (or, where the kernel does not say so, a while later): W was already
/// waiting when `f` panicked, so a check for poison made before W waited
/// (`is_poisoned`, `clear_poison`) cannot help it. Its call must still get
/// in and return its own result.
fn a_waiting_thread_gets_in_after_a_panic() {
    let gil = ToyGil::new();
    let (inside, is_inside) = mpsc::channel();
    let (calling, is_calling) = mpsc::channel();
    thread::scope(|s| {
        let gil = &gil;
        let waiter = s.spawn(move || {
            is_inside.recv().expect("the panicking thread vanished");
            calling
                .send(task::me().tid)
                .expect("the panicking thread vanished");
            gil.with_gil(|| 7)
        });
        let failed = panic::catch_unwind(AssertUnwindSafe(|| {
            gil.with_gil(|| {
                inside.send(()).expect("the waiting thread vanished");
                let task =
                    is_calling.recv().expect("the waiting thread vanished");
                wait_until_asleep(task);
                panic::panic_any(ThePythonCodeRaised)
            })
        }));
        assert!(failed.is_err(), "the panic should reach the caller");
        let theirs = waiter.join();
        assert!(
            matches!(theirs, Ok(7)),
            "a thread that was waiting for the lock while f panicked {}: its \
             own f never ran, so its call must get in once the lock is free \
             and return its result (a poison check before waiting, such as \
             is_poisoned() then clear_poison(), does not help a thread that \
             is already waiting: take the guard out of the PoisonError that \
             lock() returns, PoisonError::into_inner)",
            if theirs.is_ok() {
                "got the wrong result"
            } else {
                "panicked instead of getting in"
            }
        );
    });
}

/// Returns once thread `tid` is asleep (blocked, as a thread waiting for
/// a `Mutex` is), or after a second where it never sleeps (a spin lock):
/// then the panic comes a second after the call instead.
fn wait_until_asleep(tid: Tid) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        if task::asleep(tid) {
            return;
        }
        thread::sleep(Duration::from_micros(200));
    }
}

/// A panic inside `with_gil` poisons a `std::sync::Mutex` for good: the
/// calls after it must still exclude each other.
fn still_one_at_a_time_after_a_panic() {
    let gil = ToyGil::new();
    let failed = panic::catch_unwind(AssertUnwindSafe(|| {
        gil.with_gil(|| panic!("the Python code raised"))
    }));
    assert!(failed.is_err(), "the panic should reach the caller");
    let most = most_inside_at_once(&gil);
    assert_eq!(
        most, 1,
        "after a panic inside with_gil, {most} threads were inside at the \
         same time: a poisoned Mutex is still a lock, so take its guard \
         (PoisonError::into_inner) rather than run f without it"
    );
}

fn executes_every_bytecode_holding_the_gil() {
    let gil = Gil::new();
    let mut seen = Vec::new();
    run_bytecodes(&gil, 25, 10, |bytecode| {
        assert!(
            gil.is_held_by_current_thread(),
            "bytecode {bytecode} ran without the GIL"
        );
        seen.push(bytecode);
    });
    assert_eq!(
        seen,
        (0..25).collect::<Vec<_>>(),
        "every bytecode, in order"
    );
    assert!(
        !gil.is_held_by_current_thread(),
        "run_bytecodes must release the GIL when it is done"
    );
    // No bytecodes: the GIL is still taken first, once, and released.
    let before = gil.stats().acquisitions;
    run_bytecodes(&gil, 0, 10, |bytecode| {
        panic!("bytecode {bytecode} ran, but there were none to run")
    });
    let taken = gil.stats().acquisitions - before;
    assert_eq!(
        taken, 1,
        "run_bytecodes with 0 bytecodes took the GIL {taken} times: it takes \
         the GIL first, even with nothing to run (as a Python call of an empty \
         function does), and releases it when done"
    );
    assert!(
        !gil.is_held_by_current_thread(),
        "run_bytecodes must release the GIL when it is done, also with 0 \
         bytecodes"
    );
    // The largest check interval there is: "never switch". No sum of it
    // and anything else fits in a u64.
    let mut seen = Vec::new();
    let ran = panic::catch_unwind(AssertUnwindSafe(|| {
        run_bytecodes(&gil, 3, u64::MAX, |bytecode| seen.push(bytecode));
    }));
    assert!(
        ran.is_ok() && seen == [0, 1, 2],
        "with check_interval = u64::MAX (any check_interval of at least 1 is \
         allowed), run_bytecodes of 3 bytecodes ran {seen:?}{}: an addition \
         such as bytecodes + check_interval - 1 (a rounded-up division) \
         overflows, so count the bytecodes and compare (bytecode + 1) % \
         check_interval with 0 instead",
        if ran.is_ok() {
            ""
        } else {
            " and then panicked"
        }
    );
}

const BYTECODES: u64 = 200;
const INTERVAL: u64 = 10;

fn takes_turns_every_check_interval() {
    let runs = turns(Gil::new(), false);
    let longest = *runs.iter().max().unwrap();
    assert!(
        longest as u64 <= INTERVAL,
        "one thread ran {longest} bytecodes in a row while the other \
         waited; with check_interval = {INTERVAL} it must let the other \
         in every {INTERVAL} (GilGuard::yield_now)"
    );
    let shortest = *runs[..runs.len() - 1].iter().min().unwrap();
    assert!(
        shortest as u64 >= INTERVAL,
        "a thread handed over after only {shortest} bytecodes; hand over \
         every check_interval = {INTERVAL}, not more often"
    );
}

/// A policy that hands the GIL over to a waiting thread every so many
/// ticks: at every third, a `run_bytecodes` that ticks switches in the
/// middle of its turns; at every one, a `blocking_io` that ticks hands the
/// GIL over before it returns.
#[derive(Debug)]
struct HandOverEvery(u64);

impl SwitchPolicy for HandOverEvery {
    fn should_switch(&self, ticks: u64) -> bool {
        ticks >= self.0
    }

    fn hands_off(&self) -> bool {
        true
    }
}

/// The same two threads on a GIL whose own policy would switch every three
/// ticks, then on Python 3's GIL (`SwitchInterval`), whose waiting thread
/// asks the holder for the GIL after a millisecond: each bytecode runs only
/// once the waiting thread has asked (a drop request is pending), so a
/// `run_bytecodes` that lets the request through switches after one
/// bytecode. `run_bytecodes` is the eval loop and decides alone.
fn switches_only_every_check_interval() {
    let runs = turns(Gil::with_policy(HandOverEvery(3)), false);
    let shortest = *runs[..runs.len() - 1].iter().min().unwrap();
    assert!(
        shortest as u64 >= INTERVAL,
        "on a Gil whose policy switches every 3 ticks, a thread handed \
         over after only {shortest} bytecodes, not check_interval = \
         {INTERVAL}: run_bytecodes does the switching itself, so it must \
         not call GilGuard::tick"
    );
    let longest = *runs.iter().max().unwrap();
    assert!(
        longest as u64 <= INTERVAL,
        "one thread ran {longest} bytecodes in a row while the other \
         waited; with check_interval = {INTERVAL} it must let the other \
         in every {INTERVAL} (GilGuard::yield_now)"
    );
    let asking = SwitchInterval(Duration::from_millis(1));
    let runs = turns(Gil::with_policy(asking), true);
    let shortest = *runs[..runs.len() - 1].iter().min().unwrap();
    assert!(
        shortest as u64 >= INTERVAL,
        "on Python 3's GIL (SwitchInterval), with the waiting thread's drop \
         request pending, a thread handed over after only {shortest} \
         bytecodes, not check_interval = {INTERVAL}: run_bytecodes does the \
         switching itself, so it neither calls GilGuard::tick nor honours \
         drop requests"
    );
    let longest = *runs.iter().max().unwrap();
    assert!(
        longest as u64 <= INTERVAL,
        "on Python 3's GIL (SwitchInterval), one thread ran {longest} \
         bytecodes in a row while the other waited; with check_interval = \
         {INTERVAL} it must let the other in every {INTERVAL}"
    );
    a_waiter_in_the_middle_of_a_turn();
    no_hand_over_when_the_bytecodes_run_out();
    one_hand_over_for_two_waiters();
}

/// Thread A runs 20 bytecodes with `check_interval` 10; at its 10th
/// (`execute(9)`, the end of its first turn) it goes on only once two
/// threads wait for the GIL: B, which, once in, keeps handing the GIL over
/// (`yield_now`) until A has run its 11th bytecode, and C, which takes it
/// once. At the end of its turn A hands the GIL over once, however many
/// wait. Whenever A gets the GIL back, B is waiting (B holds it or waits
/// for it until then), so a second hand-over, a turn of no bytecodes, would
/// always find a taker: at its 11th bytecode, A must have taken the GIL
/// exactly once since its 10th (the acquisitions since, less B's and C's).
fn one_hand_over_for_two_waiters() {
    let gil = Gil::new();
    let resumed = AtomicBool::new(false);
    let others = AtomicU64::new(0);
    let a_took = AtomicU64::new(0);
    let (start_b, b_may_start) = mpsc::channel();
    let (start_c, c_may_start) = mpsc::channel();
    thread::scope(|s| {
        let (gil, resumed, others) = (&gil, &resumed, &others);
        s.spawn(move || {
            b_may_start.recv().expect("thread A vanished");
            let mut held = gil.acquire();
            others.fetch_add(1, Ordering::SeqCst);
            while !resumed.load(Ordering::SeqCst) {
                // A waits meanwhile, so this hands the GIL over.
                held.yield_now();
                others.fetch_add(1, Ordering::SeqCst);
            }
        });
        s.spawn(move || {
            c_may_start.recv().expect("thread A vanished");
            let _held = gil.acquire();
            others.fetch_add(1, Ordering::SeqCst);
        });
        let a_took = &a_took;
        s.spawn(move || {
            let mut since = 0;
            run_bytecodes(gil, 2 * INTERVAL, INTERVAL, |bytecode| {
                if bytecode == INTERVAL - 1 {
                    start_b.send(()).expect("thread B vanished");
                    start_c.send(()).expect("thread C vanished");
                    while gil.waiting() < 2 {
                        thread::sleep(Duration::from_micros(100));
                    }
                    since = gil.stats().acquisitions;
                }
                if bytecode == INTERVAL {
                    let taken = gil.stats().acquisitions - since;
                    a_took.store(
                        taken - others.load(Ordering::SeqCst),
                        Ordering::SeqCst,
                    );
                    resumed.store(true, Ordering::SeqCst);
                }
            });
        });
    });
    let a_took = a_took.load(Ordering::SeqCst);
    assert_eq!(
        a_took, 1,
        "thread A ran 20 bytecodes with check_interval = {INTERVAL}, and two \
         threads waited for the GIL at the end of its first turn; between \
         its 10th and 11th bytecodes A took the GIL {a_took} times, not \
         once: it handed the GIL over again as soon as it got it back (a \
         turn of no bytecodes, such as one yield_now per waiting thread). \
         Hand over once (one yield_now) at the end of each turn, however \
         many threads wait"
    );
}

/// Thread A runs 25 bytecodes with `check_interval` 10; at its 21st
/// (`execute(20)`, the start of its last turn, a partial one), thread B
/// starts waiting for the GIL, and A goes on only once B is counted by
/// `Gil::waiting`. That last turn ends because the bytecodes ran out, not
/// after `check_interval` of them: A returns and releases the GIL without
/// handing it over first (B taking it, A taking it back only to release
/// it). The GIL is taken twice in all: by A, then by B. Then the same with
/// 30 bytecodes, whose last turn is a full one: it ends with the call too,
/// not with a hand-over.
fn no_hand_over_when_the_bytecodes_run_out() {
    for bytecodes in [25, 30] {
        no_hand_over_after_the_last_of(bytecodes);
    }
}

fn no_hand_over_after_the_last_of(bytecodes: u64) {
    let gil = Gil::new();
    let (start_b, b_may_start) = mpsc::channel();
    thread::scope(|s| {
        let gil = &gil;
        s.spawn(move || {
            b_may_start.recv().expect("thread A vanished");
            drop(gil.acquire());
        });
        s.spawn(move || {
            run_bytecodes(gil, bytecodes, INTERVAL, |bytecode| {
                if bytecode == 20 {
                    start_b.send(()).expect("thread B vanished");
                    while gil.waiting() == 0 {
                        thread::sleep(Duration::from_micros(100));
                    }
                }
            });
        });
    });
    let taken = gil.stats().acquisitions;
    let last = if bytecodes.is_multiple_of(INTERVAL) {
        "full"
    } else {
        "partial"
    };
    assert_eq!(
        taken, 2,
        "thread A ran {bytecodes} bytecodes with check_interval = \
         {INTERVAL}, and thread B started waiting for the GIL at A's 21st: \
         the GIL was taken {taken} times, not 2 (once by A, once by B after \
         A was done). A handed the GIL over (yield_now) after its last \
         turn, a {last} one, and took it back only to release it: hand \
         over after every check_interval bytecodes while bytecodes remain, \
         and nowhere else, not when the bytecodes run out"
    );
}

/// Thread A runs 40 bytecodes alone, nobody waiting at the end of its first
/// turn; at its 16th bytecode (`execute(15)`, the middle of its second
/// turn), thread B starts waiting for the GIL, and A goes on only once B is
/// counted by `Gil::waiting`. The turns are counted from the start of
/// `run_bytecodes`, so A hands the GIL over after its 20th bytecode, at the
/// end of that turn, not at once.
///
/// Each time, thread A first makes a call of `earlier` bytecodes on another
/// GIL: the turns count from this call's own start, not from what earlier
/// calls left in a counter shared by every call (Python 2's global ticker)
/// or by every call on the same thread (a `thread_local!` one).
fn a_waiter_in_the_middle_of_a_turn() {
    for earlier in [1, 2] {
        a_waiter_in_the_middle_of_a_turn_after(earlier);
    }
}

fn a_waiter_in_the_middle_of_a_turn_after(earlier: u64) {
    let gil = Gil::new();
    let log = Mutex::new(Vec::new());
    let (start_b, b_may_start) = mpsc::channel();
    thread::scope(|s| {
        let (gil, log) = (&gil, &log);
        s.spawn(move || {
            b_may_start.recv().expect("thread A vanished");
            run_bytecodes(gil, INTERVAL, INTERVAL, |_| {
                log.lock().unwrap().push('B');
            });
        });
        s.spawn(move || {
            run_bytecodes(&Gil::new(), earlier, INTERVAL, |_| {});
            run_bytecodes(gil, 40, INTERVAL, |bytecode| {
                if bytecode == 15 {
                    start_b.send(()).expect("thread B vanished");
                    while gil.waiting() == 0 {
                        thread::sleep(Duration::from_micros(100));
                    }
                }
                log.lock().unwrap().push('A');
            });
        });
    });
    let log = log.into_inner().unwrap();
    let before_b = log.iter().take_while(|&&name| name == 'A').count();
    assert_eq!(
        before_b,
        2 * INTERVAL as usize,
        "thread A ran alone through its first turn, and thread B started \
         waiting at A's 16th bytecode, in the middle of its second turn; A \
         should have handed the GIL over after its 20th bytecode, at the end \
         of that turn (the turns are counted from the start: every \
         check_interval = {INTERVAL} bytecodes, whether or not anyone \
         waits, from the start of this call, not from what an earlier call \
         of {earlier} bytecodes on the same thread left in a shared or \
         thread-local counter), but it ran \
         {before_b} bytecodes first"
    );
}

/// Two threads run `BYTECODES` each on `gil` with a check interval of
/// `INTERVAL`; both are waiting for the GIL before either starts. With
/// `until_asked`, each bytecode waits until a drop request is pending (the
/// other thread, waiting, has asked for the GIL) or the other thread is
/// done. Returns the lengths of the runs of bytecodes that one thread
/// executed while the other waited, in order.
fn turns(gil: Gil, until_asked: bool) -> Vec<usize> {
    let log = Mutex::new(Vec::new());
    let done = [AtomicBool::new(false), AtomicBool::new(false)];
    let starting = gil.acquire();
    thread::scope(|s| {
        for (me, name) in ['A', 'B'].into_iter().enumerate() {
            let (gil, log, done) = (&gil, &log, &done);
            s.spawn(move || {
                run_bytecodes(gil, BYTECODES, INTERVAL, |_| {
                    while until_asked
                        && !gil.drop_requested()
                        && !done[1 - me].load(Ordering::SeqCst)
                    {
                        thread::sleep(Duration::from_micros(100));
                    }
                    log.lock().unwrap().push(name);
                });
                done[me].store(true, Ordering::SeqCst);
            });
        }
        while gil.waiting() < 2 {
            thread::yield_now();
        }
        drop(starting); // Both are waiting: let them go.
    });
    let log = log.into_inner().unwrap();
    assert_eq!(log.len() as u64, 2 * BYTECODES, "every bytecode ran");
    log.chunk_by(|a, b| a == b).map(|run| run.len()).collect()
}

fn returns_with_the_gil_held() {
    let gil = Gil::new();
    let guard = gil.acquire();
    let (guard, answer) = blocking_io(guard, || {
        assert!(
            !gil.is_held_by_current_thread(),
            "the I/O ran while this thread held the GIL"
        );
        42
    });
    assert_eq!(answer, 42, "blocking_io returns the I/O's result");
    assert!(
        gil.is_held_by_current_thread(),
        "the GIL is held again after"
    );
    drop(guard);
    // A panic in the I/O reaches the caller, and the GIL is not held after
    // it: the caller gave its guard up, and no new one reached it.
    let guard = gil.acquire();
    let before = gil.stats().acquisitions;
    let failed = panic::catch_unwind(AssertUnwindSafe(|| {
        blocking_io(guard, || panic::panic_any(ThePythonCodeRaised))
    }));
    let taken = gil.stats().acquisitions - before;
    assert!(
        failed.is_err_and(|payload| payload.is::<ThePythonCodeRaised>()),
        "the I/O panicked, and blocking_io did not pass its panic on"
    );
    assert!(
        !gil.is_held_by_current_thread(),
        "the I/O panicked, and the GIL was still held by the calling thread \
         afterwards, with no guard left to release it: nobody could take it \
         ever again. Gave the guard up before the I/O, blocking_io takes the \
         GIL back only once the I/O has returned; a panic skips that"
    );
    assert_eq!(
        taken, 0,
        "the I/O panicked, and blocking_io took the GIL {taken} times on the \
         panic's way out (a guard whose Drop takes the GIL back, say): if \
         the I/O panics, it does not take the GIL back at all, not even to \
         release it at once, so that the panic reaches the caller at once \
         (a thread that holds the GIL and waits for this one would \
         otherwise wait forever)"
    );
    thread::scope(|s| {
        s.spawn(|| drop(gil.acquire()));
    });
    back_in_the_queue(Gil::new(), false);
    // Python 3's GIL: the thread that waits for it asks its holder to drop
    // it (a drop request), and the I/O ends only once it has asked.
    let asking = SwitchInterval(Duration::from_millis(1));
    back_in_the_queue(Gil::with_policy(asking), true);
    no_extra_turn(Gil::new(), "Manual");
    // A policy that would hand the GIL over at the next tick: a blocking_io
    // that ticks after taking the GIL back hands it to the waiting thread.
    no_extra_turn(Gil::with_policy(HandOverEvery(1)), "hand-over-every-tick");
}

/// A thread waits for the GIL before `blocking_io` starts; it takes the
/// GIL while `io` runs and keeps it until `blocking_io` waits for it
/// again, then hands it over (`yield_now`). `blocking_io` must return with
/// that thread still waiting: it yields neither before `io` (handing the
/// GIL to the waiter instead of letting go of it) nor after taking it back,
/// and it does not tick, which on `gil`'s policy would hand the GIL over.
fn no_extra_turn(gil: Gil, policy: &str) {
    let took = AtomicBool::new(false);
    let got_back = AtomicBool::new(false);
    thread::scope(|s| {
        let guard = gil.acquire();
        s.spawn(|| {
            let mut held = gil.acquire();
            took.store(true, Ordering::SeqCst);
            while gil.waiting() == 0 {
                thread::sleep(Duration::from_millis(1));
            }
            held.yield_now();
            got_back.store(true, Ordering::SeqCst);
        });
        while gil.waiting() == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        let before = gil.stats().acquisitions;
        let (guard, ()) = blocking_io(guard, || {
            while !took.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(1));
            }
        });
        let extra = got_back.load(Ordering::SeqCst);
        let taken = gil.stats().acquisitions - before;
        drop(guard);
        assert!(
            !extra && taken == 2,
            "another thread got an extra turn with the GIL during \
             blocking_io (the GIL was taken {taken} times during the call, \
             not 2: once by the waiting thread, once by blocking_io) on a \
             Gil with the {policy} policy: it yields the GIL (yield_now) \
             before the I/O or after taking it back, or ticks \
             (GilGuard::tick, which lets the policy switch), instead of just \
             dropping the guard and acquiring the GIL again"
        );
    });
}

/// While the "I/O" waits, one thread takes the GIL and keeps it until two
/// threads wait for it, and another thread starts waiting. After the I/O,
/// `blocking_io` must wait for the GIL like any other thread (it is the
/// second one waiting), not wait until no one else does. With `asked`,
/// the I/O ends only once the waiting thread has asked the holder to drop
/// the GIL (`gil`'s policy is `SwitchInterval`); the holder never does, so
/// the request is pending until `blocking_io` waits too: it must not wait
/// for the request to be served before it asks for the GIL.
fn back_in_the_queue(gil: Gil, asked: bool) {
    thread::scope(|s| {
        let guard = gil.acquire();
        let (guard, ()) = blocking_io(guard, || {
            let (holding, held) = mpsc::channel();
            let gil = &gil;
            s.spawn(move || {
                let _held = gil.acquire();
                holding.send(()).expect("the I/O vanished");
                while gil.waiting() < 2 {
                    thread::sleep(Duration::from_millis(1));
                }
            });
            held.recv().expect("the holding thread vanished");
            s.spawn(move || drop(gil.acquire()));
            while gil.waiting() == 0 || (asked && !gil.drop_requested()) {
                thread::sleep(Duration::from_millis(1));
            }
        });
        assert!(
            gil.is_held_by_current_thread(),
            "the GIL is held again after the I/O"
        );
        drop(guard);
    });
}

/// The "I/O" is a message that another thread sends only once it has
/// taken the GIL itself.
fn lets_others_run_while_waiting() {
    let gil = Gil::new();
    let (reply, response) = mpsc::channel();
    thread::scope(|s| {
        let guard = gil.acquire();
        s.spawn(|| {
            let _held = gil.acquire(); // The other Python thread runs...
            reply.send("data").unwrap(); // ...and answers the "socket".
        });
        let (guard, data) =
            blocking_io(guard, || response.recv().expect("no reply"));
        assert_eq!(data, "data");
        drop(guard);
    });
}

/// How much stack the first job uses: half of the 2 MiB a new thread gets
/// by default (the grader unsets `RUST_MIN_STACK`), and far more than a
/// stack cut down to make hundreds of threads cheap (64 KiB, say) holds.
const JOB_STACK: usize = 1 << 20;

/// Fills `JOB_STACK` bytes of the calling thread's stack. On a stack too
/// small for them, the thread overflows it, which aborts the process.
#[inline(never)]
fn use_a_native_amount_of_stack() {
    let frame = [1_u8; JOB_STACK];
    std::hint::black_box(&frame);
}

/// More jobs than any machine has cores, and more than a cap on the
/// threads such as 16 or 64 would start at once: each waits for all the
/// others at a barrier. The first job needs 1 MiB of stack, as a native
/// call may: a thread with the default stack has room for it.
fn runs_native_jobs_at_once() {
    const JOBS: usize = 200;
    let gil = Gil::new();
    let barrier = Barrier::new(JOBS);
    let jobs: Vec<_> = (0..JOBS)
        .map(|n| {
            let barrier = &barrier;
            move || {
                if n == 0 {
                    use_a_native_amount_of_stack();
                }
                barrier.wait(); // Every job is running at this moment.
                n * 10
            }
        })
        .collect();
    let expected: Vec<_> = (0..JOBS).map(|n| n * 10).collect();
    assert!(detach(&gil, jobs) == expected, "the results, in job order");
}

/// Three jobs meet at a barrier, then count the GIL's acquisitions, then
/// meet again: meanwhile every job has started and none has ended, so the
/// GIL has been taken exactly once per job, before it. After `detach`, it
/// has been taken once more per job, after it.
fn takes_the_gil_before_and_after() {
    const JOBS: usize = 3;
    let gil = Gil::new();
    // The calling thread takes the GIL once first: every later acquisition
    // it made itself would then be no switch (`stats().switches`).
    drop(gil.acquire());
    let held_during_job = AtomicUsize::new(0);
    let all_started = Barrier::new(JOBS);
    let all_counted = Barrier::new(JOBS);
    let taken_meanwhile = Mutex::new(Vec::new());
    let jobs: Vec<_> = (0..JOBS)
        .map(|_| {
            let (gil, held) = (&gil, &held_during_job);
            let (all_started, all_counted) = (&all_started, &all_counted);
            let taken_meanwhile = &taken_meanwhile;
            move || {
                if gil.is_held_by_current_thread() {
                    held.fetch_add(1, Ordering::SeqCst);
                }
                all_started.wait();
                let stats = gil.stats();
                taken_meanwhile
                    .lock()
                    .unwrap()
                    .push((stats.acquisitions, stats.switches));
                all_counted.wait();
            }
        })
        .collect();
    detach(&gil, jobs);
    assert_eq!(
        held_during_job.load(Ordering::SeqCst),
        0,
        "a job ran while its thread held the GIL"
    );
    let taken_meanwhile = taken_meanwhile.into_inner().unwrap();
    let once = JOBS as u64 + 1;
    assert!(
        taken_meanwhile.iter().all(|&(taken, _)| taken == once),
        "while all {JOBS} jobs were running, none of them done yet, the GIL \
         had been taken {taken_meanwhile:?} times (as each job saw it, \
         counting the trial's own acquisition first), not {once}: each \
         thread takes it once before its job, to pick the job up, and once \
         after, to hand the result back"
    );
    assert!(
        taken_meanwhile
            .iter()
            .all(|&(_, switches)| switches == once),
        "while all {JOBS} jobs were running, the GIL had changed hands \
         {taken_meanwhile:?} times (as each job saw it: acquisitions, \
         switches), not {once}: each job's own thread takes it before its \
         job, not the thread that called detach"
    );
    let stats = gil.stats();
    assert_eq!(
        stats.acquisitions,
        2 * JOBS as u64 + 1,
        "each of the {JOBS} threads should take the GIL twice, before and \
         after its job, as a call from Python into native code does; the \
         GIL was taken {} times (counting the trial's own acquisition first)",
        stats.acquisitions
    );
    assert!(
        stats.switches >= 2 * JOBS as u64,
        "the GIL changed hands only {} times: after its job, each job's own \
         thread takes the GIL to hand its result back, not the thread that \
         called detach (3 threads taking it one after another make at \
         least 2 more switches)",
        stats.switches
    );
    queued_pickups_take_the_gil_once(Gil::new(), "Manual");
    // A policy that would hand the GIL over at the next tick: a thread that
    // ticks at pickup hands it to the threads queued behind it.
    queued_pickups_take_the_gil_once(
        Gil::with_policy(HandOverEvery(1)),
        "hand-over-every-tick",
    );
}

/// Another thread holds the GIL until the threads of all three jobs wait
/// for it to pick their jobs up; the jobs then meet at a barrier and count
/// the GIL's acquisitions. Each thread took it once to pick its job up,
/// even with the others queued behind it: it did not hand it over to them
/// (`yield_now`) and take it back before its job, nor tick, which on
/// `gil`'s policy hands the GIL over.
fn queued_pickups_take_the_gil_once(gil: Gil, policy: &str) {
    const JOBS: usize = 3;
    let all_started = Barrier::new(JOBS);
    let all_counted = Barrier::new(JOBS);
    let taken_meanwhile = Mutex::new(Vec::new());
    thread::scope(|s| {
        let gil = &gil;
        let (holding, held) = mpsc::channel();
        s.spawn(move || {
            let _held = gil.acquire();
            holding.send(()).expect("the trial vanished");
            while gil.waiting() < JOBS {
                thread::sleep(Duration::from_millis(1));
            }
        });
        held.recv().expect("the holding thread vanished");
        let jobs: Vec<_> = (0..JOBS)
            .map(|_| {
                let (all_started, all_counted) = (&all_started, &all_counted);
                let taken_meanwhile = &taken_meanwhile;
                move || {
                    all_started.wait();
                    let taken = gil.stats().acquisitions;
                    taken_meanwhile.lock().unwrap().push(taken);
                    all_counted.wait();
                }
            })
            .collect();
        detach(gil, jobs);
    });
    let taken_meanwhile = taken_meanwhile.into_inner().unwrap();
    let once = JOBS as u64 + 1;
    assert!(
        taken_meanwhile.iter().all(|&taken| taken == once),
        "another thread held the GIL until the threads of all {JOBS} jobs \
         waited for it; while the jobs ran, none done yet, the GIL had been \
         taken {taken_meanwhile:?} times (as each job saw it, counting that \
         thread's acquisition first), not {once}, on a Gil with the \
         {policy} policy: each thread takes it once to pick its job up and \
         lets it go, without handing it to the threads queued behind it \
         (yield_now) and taking it back, and without ticking \
         (GilGuard::tick, which lets the policy switch)"
    );
}

/// The payload of the panicking job: a type of the trial's own, so that a
/// panic `detach` raises itself cannot pass for the job's.
#[derive(Debug)]
struct NativeJobFailed;

/// Sets its flag when dropped: in a panicking job, while it unwinds.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A job's result that counts its own drop.
struct Counted<'a>(usize, &'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

/// Two jobs of five panic (jobs 1 and 2), and the three others wait until
/// one has: they are still running when it panics. `detach` must panic
/// too, with a job's own panic, after the others have run to the end,
/// rather than return fewer results or raise a panic of its own; and the
/// results of the jobs that did not panic are dropped, not leaked.
fn passes_a_job_panic_on() {
    const JOBS: usize = 5;
    const PANICKING: [usize; 2] = [1, 2];
    let gil = Gil::new();
    let finished = AtomicUsize::new(0);
    let dropped = AtomicUsize::new(0);
    let panicked = AtomicBool::new(false);
    let jobs: Vec<_> = (0..JOBS)
        .map(|n| {
            let (finished, dropped) = (&finished, &dropped);
            let panicked = &panicked;
            move || {
                if PANICKING.contains(&n) {
                    let _unwinding = SetOnDrop(panicked);
                    panic::panic_any(NativeJobFailed);
                }
                while !panicked.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(1));
                }
                finished.fetch_add(1, Ordering::SeqCst);
                Counted(n, dropped)
            }
        })
        .collect();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| detach(&gil, jobs)));
    let payload = match outcome {
        Ok(results) => panic!(
            "jobs {PANICKING:?} of {JOBS} panicked, yet detach returned the \
             results of jobs {:?}: a job's panic must reach the caller \
             (JoinHandle::join returns it as an Err; \
             std::panic::resume_unwind raises it again)",
            results.iter().map(|result| result.0).collect::<Vec<_>>()
        ),
        Err(payload) => payload,
    };
    let others = JOBS - PANICKING.len();
    assert_eq!(
        finished.load(Ordering::SeqCst),
        others,
        "detach panicked before the other jobs had ended"
    );
    assert!(
        payload.is::<NativeJobFailed>(),
        "detach panicked, but not with a job's own panic: it raised one of \
         its own (an unwrap or an expect on the join, or a panic! with a new \
         message) instead of passing the payload of a job's panic on with \
         std::panic::resume_unwind; or, two jobs having panicked, it stopped \
         joining at the first panic it met (a collect into a Result, say) \
         while still in thread::scope's closure, and the scope, finding a \
         panicked thread nobody joined, raised its own \"a scoped thread \
         panicked\""
    );
    let dropped = dropped.load(Ordering::SeqCst);
    assert_eq!(
        dropped, others,
        "the {others} jobs that did not panic returned their results, and \
         only {dropped} were dropped by the time detach's panic reached the \
         caller: the others were leaked (a result may hold a file, a lock or \
         memory), as with MaybeUninit slots that a panic leaves unread; let \
         them be dropped"
    );
    assert!(
        !gil.is_held_by_current_thread(),
        "the GIL is free after detach"
    );
}
