//! `run_bytecodes`: every bytecode with the GIL held, and turns of
//! exactly `check_interval` bytecodes, counted from the call's start,
//! whatever the GIL's own policy or drop requests, with one hand-over per
//! turn and none when the bytecodes run out.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::Duration;

use course::gil::{Gil, SwitchInterval};
use exercises::ch03_gil::run_bytecodes;

use super::run_bytecodes_memory::no_plan_of_the_turns;
use super::{HandOverEvery, ThePythonCodeRaised, count_hook_calls};

pub(super) fn executes_every_bytecode_holding_the_gil() {
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
    a_panicking_bytecode_stops_the_run(&gil);
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

/// The 4th of 25 bytecodes panics: the panic reaches the caller of
/// `run_bytecodes` as the bytecode's own (its payload, not a new panic),
/// no bytecode after it runs, and the GIL is released on the way out, as
/// an exception that nothing catches ends a Python thread's eval loop. A
/// loop that catches the panic, reports it and goes on to the next
/// bytecode hides it from the caller.
fn a_panicking_bytecode_stops_the_run(gil: &Gil) {
    let hook_saw = count_hook_calls();
    let mut seen = Vec::new();
    let ran = panic::catch_unwind(AssertUnwindSafe(|| {
        run_bytecodes(gil, 25, 10, |bytecode| {
            seen.push(bytecode);
            if bytecode == 3 {
                panic::panic_any(ThePythonCodeRaised);
            }
        });
    }));
    assert!(
        ran.is_err_and(|payload| payload.is::<ThePythonCodeRaised>()),
        "bytecode 3 panicked, and run_bytecodes did not pass its panic on to \
         the caller (it ran bytecodes {seen:?}): a panic in execute ends the \
         run and reaches the caller as it is, as an uncaught exception ends \
         the eval loop; do not catch it and carry on"
    );
    assert_eq!(
        seen,
        [0, 1, 2, 3],
        "bytecode 3 panicked, and run_bytecodes ran more bytecodes after it: \
         a panic in execute ends the run"
    );
    assert!(
        !gil.is_held_by_current_thread(),
        "bytecode 3 panicked, and the GIL was still held by the calling \
         thread afterwards: release it on the panic's way out too (a guard \
         does so in its Drop)"
    );
    let seen = hook_saw.load(Ordering::SeqCst);
    assert_eq!(
        seen, 1,
        "bytecode 3 panicked, and the process's panic hook saw that panic \
         {seen} times, not once: run_bytecodes swapped the hook (panic::\
         set_hook) around the bytecodes, which silences every thread's \
         panics meanwhile, not only execute's; the hook is the whole \
         process's, so leave it alone and let the panic pass"
    );
    no_hand_over_on_a_panic(Gil::new());
    no_hand_over_on_a_panic(Gil::with_policy(HandOverEvery(1)));
    no_plan_of_the_turns();
}

/// Bytecode 3 of 25 panics while another thread waits for the GIL: the
/// panic goes on to the caller at once, releasing the GIL on its way, with
/// no hand-over first (`yield_now`, then waiting to get the GIL back,
/// which holds the panic up behind the other thread's whole turn). The GIL
/// is taken twice in all: by `run_bytecodes`, then by the waiting thread.
/// Then on a `gil` whose policy hands the GIL over at every tick: no tick
/// on the panic's way out either.
fn no_hand_over_on_a_panic(gil: Gil) {
    thread::scope(|s| {
        let gil = &gil;
        let ran = panic::catch_unwind(AssertUnwindSafe(|| {
            run_bytecodes(gil, 25, 10, |bytecode| {
                if bytecode == 0 {
                    s.spawn(move || drop(gil.acquire()));
                }
                if bytecode == 3 {
                    while gil.waiting() == 0 {
                        thread::sleep(Duration::from_micros(100));
                    }
                    panic::panic_any(ThePythonCodeRaised);
                }
            });
        }));
        assert!(
            ran.is_err_and(|payload| payload.is::<ThePythonCodeRaised>()),
            "bytecode 3 panicked while another thread waited for the GIL, \
             and run_bytecodes did not pass its panic on to the caller"
        );
    });
    let taken = gil.stats().acquisitions;
    assert_eq!(
        taken, 2,
        "bytecode 3 panicked while another thread waited for the GIL, and \
         the GIL was taken {taken} times in all, not 2 (by run_bytecodes, \
         then by the waiting thread): on the panic's way out, run_bytecodes \
         handed the GIL over (yield_now, or a tick, which may hand it over) \
         and took it back before letting the panic go on; a panic is not a \
         turn's end: release the GIL and let the panic reach the caller at \
         once"
    );
}

const BYTECODES: u64 = 200;
const INTERVAL: u64 = 10;

/// Checks that no thread ran more than `INTERVAL` bytecodes in a row
/// while the other waited.
fn assert_no_turn_too_long(runs: &[usize]) {
    let longest = *runs.iter().max().unwrap();
    assert!(
        longest as u64 <= INTERVAL,
        "one thread ran {longest} bytecodes in a row while the other \
         waited; with check_interval = {INTERVAL} it must let the other \
         in every {INTERVAL} (GilGuard::yield_now)"
    );
}

pub(super) fn takes_turns_every_check_interval() {
    let runs = turns(Gil::new(), BYTECODES, false);
    assert_no_turn_too_long(&runs);
    let shortest = *runs[..runs.len() - 1].iter().min().unwrap();
    assert!(
        shortest as u64 >= INTERVAL,
        "a thread handed over after only {shortest} bytecodes; hand over \
         every check_interval = {INTERVAL}, not more often"
    );
    a_short_last_turn_of_its_own(INTERVAL / 2);
    a_short_last_turn_of_its_own(1);
}

/// The same two threads with `tail` bytecodes each more, not a multiple
/// of `INTERVAL`: they take full turns until each has only a partial turn
/// left, and then run that alone, one thread, then the other. A thread that runs
/// its partial turn straight on after its last full one (no hand-over when
/// fewer than `INTERVAL` bytecodes remain, or fewer than half a turn)
/// runs more than `INTERVAL` in a row while the other waits.
fn a_short_last_turn_of_its_own(tail: u64) {
    let short_tail = BYTECODES + tail;
    let runs = turns(Gil::new(), short_tail, false);
    let full = (2 * BYTECODES / INTERVAL) as usize;
    let tail = tail as usize;
    let mut expected = vec![INTERVAL as usize; full];
    expected.extend([tail, tail]);
    assert!(
        runs == expected,
        "two threads ran {short_tail} bytecodes each with check_interval = \
         {INTERVAL}, so their turns should have been {full} full turns of \
         {INTERVAL}, then a partial turn of {tail} each; they were \
         {runs:?}: hand over after every check_interval bytecodes while any \
         bytecodes remain, however few (a last turn of fewer than \
         check_interval is a turn of its own, not run straight on after the \
         one before, however short)"
    );
}

/// The same two threads on a GIL whose own policy would switch every three
/// ticks, then on Python 3's GIL (`SwitchInterval`), whose waiting thread
/// asks the holder for the GIL after a millisecond: each bytecode runs only
/// once the waiting thread has asked (a drop request is pending), so a
/// `run_bytecodes` that lets the request through switches after one
/// bytecode. `run_bytecodes` is the eval loop and decides alone.
pub(super) fn switches_only_every_check_interval() {
    let runs = turns(Gil::with_policy(HandOverEvery(3)), BYTECODES, false);
    let shortest = *runs[..runs.len() - 1].iter().min().unwrap();
    assert!(
        shortest as u64 >= INTERVAL,
        "on a Gil whose policy switches every 3 ticks, a thread handed \
         over after only {shortest} bytecodes, not check_interval = \
         {INTERVAL}: run_bytecodes does the switching itself, so it must \
         not call GilGuard::tick"
    );
    assert_no_turn_too_long(&runs);
    let asking = SwitchInterval(Duration::from_millis(1));
    let runs = turns(Gil::with_policy(asking), BYTECODES, true);
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
/// not with a hand-over; and with 21 bytecodes and `check_interval` 1, so
/// that B starts waiting at the last bytecode, a turn of its own (a loop of
/// its own for an interval of 1 must not hand over after the last one
/// either).
fn no_hand_over_when_the_bytecodes_run_out() {
    for (bytecodes, interval) in [(25, INTERVAL), (30, INTERVAL), (21, 1)] {
        no_hand_over_after_the_last_of(bytecodes, interval);
    }
}

fn no_hand_over_after_the_last_of(bytecodes: u64, interval: u64) {
    let gil = Gil::new();
    let (start_b, b_may_start) = mpsc::channel();
    thread::scope(|s| {
        let gil = &gil;
        s.spawn(move || {
            b_may_start.recv().expect("thread A vanished");
            drop(gil.acquire());
        });
        s.spawn(move || {
            run_bytecodes(gil, bytecodes, interval, |bytecode| {
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
    let last = if bytecodes.is_multiple_of(interval) {
        "full"
    } else {
        "partial"
    };
    assert_eq!(
        taken, 2,
        "thread A ran {bytecodes} bytecodes with check_interval = \
         {interval}, and thread B started waiting for the GIL at A's 21st: \
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
/// GIL (the third time on this very one, B not waiting yet): the turns
/// count from this call's own start, not from what earlier calls left in a
/// counter shared by every call (Python 2's global ticker) or by every call
/// on the same thread (a `thread_local!` one, even one kept per GIL, as
/// CPython keeps its countdown in the thread's state). The first
/// time, the bytecode at which B starts waiting lasts `LONG_BYTECODE`: a
/// turn cut short by the clock (a time slice as well as the count) hands
/// the GIL over right after it. Then the same with a check interval of
/// `WIDE_INTERVAL`, B starting to wait in the middle of A's second turn.
fn a_waiter_in_the_middle_of_a_turn() {
    a_waiter_in_the_middle_of_a_turn_after(1, INTERVAL, LONG_BYTECODE, false);
    a_waiter_in_the_middle_of_a_turn_after(2, INTERVAL, Duration::ZERO, false);
    a_waiter_in_the_middle_of_a_turn_after(2, INTERVAL, Duration::ZERO, true);
    a_waiter_in_the_middle_of_a_turn_after(
        1,
        WIDE_INTERVAL,
        Duration::ZERO,
        false,
    );
}

/// Over a second: a turn that also ends after a second (or less) ends here.
const LONG_BYTECODE: Duration = Duration::from_millis(1200);

/// More than a `u16` counts: a turn's count kept in one never reaches it.
const WIDE_INTERVAL: u64 = 70_000;

fn a_waiter_in_the_middle_of_a_turn_after(
    earlier: u64,
    interval: u64,
    slow: Duration,
    same_gil: bool,
) {
    let gil = Gil::new();
    let other = Gil::new();
    let log = Mutex::new(Vec::new());
    let (start_b, b_may_start) = mpsc::channel();
    thread::scope(|s| {
        let (gil, log) = (&gil, &log);
        s.spawn(move || {
            b_may_start.recv().expect("thread A vanished");
            run_bytecodes(gil, interval, interval, |_| {
                log.lock().unwrap().push('B');
            });
        });
        s.spawn(move || {
            // The earlier call, on another `Gil` or on this one.
            run_bytecodes(
                if same_gil { gil } else { &other },
                earlier,
                interval,
                |_| {},
            );
            // B starts waiting in the middle of A's second turn: at its
            // 16th bytecode with an interval of 10.
            run_bytecodes(gil, 4 * interval, interval, |bytecode| {
                if bytecode == interval + interval / 2 {
                    start_b.send(()).expect("thread B vanished");
                    while gil.waiting() == 0 {
                        thread::sleep(Duration::from_micros(100));
                    }
                    thread::sleep(slow);
                }
                log.lock().unwrap().push('A');
            });
        });
    });
    let log = log.into_inner().unwrap();
    let before_b = log.iter().take_while(|&&name| name == 'A').count();
    let (waited_at, turn_end) = (interval + interval / 2 + 1, 2 * interval);
    let lasting = slow.as_millis();
    let on = if same_gil {
        ", on this GIL"
    } else {
        ", on another GIL"
    };
    assert_eq!(
        before_b as u64, turn_end,
        "thread A ran alone through its first turn, and thread B started \
         waiting at A's bytecode number {waited_at} (which lasted {lasting} \
         ms or more), in the middle of its second turn; A should have \
         handed the GIL over after bytecode number {turn_end}, at the end \
         of that turn (the turns are \
         counted from the start: every check_interval = {interval} \
         bytecodes, whether or not anyone waits, from the start of this \
         call, not from what an earlier call of {earlier} bytecodes on the \
         same thread{on} left in a shared or thread-local counter, even one \
         kept per thread and GIL; however long \
         a turn lasts, it ends only after check_interval bytecodes, not \
         after some time; and the count of a turn's bytecodes must count up \
         to any check_interval: a u16 wraps at 65,536), but it ran \
         {before_b} bytecodes first"
    );
}

/// Two threads run `bytecodes` each on `gil` with a check interval of
/// `INTERVAL`; both are waiting for the GIL before either starts. With
/// `until_asked`, each bytecode waits until a drop request is pending (the
/// other thread, waiting, has asked for the GIL) or the other thread is
/// done. Returns the lengths of the runs of bytecodes that one thread
/// executed while the other waited, in order.
fn turns(gil: Gil, bytecodes: u64, until_asked: bool) -> Vec<usize> {
    let log = Mutex::new(Vec::new());
    let done = [AtomicBool::new(false), AtomicBool::new(false)];
    let starting = gil.acquire();
    thread::scope(|s| {
        for (me, name) in ['A', 'B'].into_iter().enumerate() {
            let (gil, log, done) = (&gil, &log, &done);
            s.spawn(move || {
                run_bytecodes(gil, bytecodes, INTERVAL, |_| {
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
    assert_eq!(log.len() as u64, 2 * bytecodes, "every bytecode ran");
    log.chunk_by(|a, b| a == b).map(|run| run.len()).collect()
}
