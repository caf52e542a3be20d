//! `blocking_io`: the I/O runs without the GIL, which is taken back after
//! it (not after a panic), like any thread's, with no extra turn given
//! away; and other threads run while it waits.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use course::gil::{Gil, SwitchInterval};
use course::grader::task;
use exercises::ch03_gil::blocking_io;

use super::{
    HandOverEvery, ThePythonCodeRaised, count_hook_calls, count_hook_calls_of,
    current_hook, is_the_str,
};

pub(super) fn returns_with_the_gil_held() {
    // The process's panic hook, which sees every panic; `blocking_io` leaves
    // it alone, so it is still this very hook after each call.
    let hook_saw = count_hook_calls();
    let hook = current_hook();
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
    // it: the caller gave its guard up, and no new one reached it. The
    // process's panic hook sees it, as it sees every panic.
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
    let seen = hook_saw.load(Ordering::SeqCst);
    assert_eq!(
        seen, 1,
        "the I/O panicked, and the process's panic hook saw that panic \
         {seen} times, not once: blocking_io swapped the hook (panic::\
         set_hook) around the I/O, which silences every thread's panics \
         meanwhile, not only the I/O's; the hook is the whole process's, \
         so leave it alone"
    );
    assert!(
        current_hook() == hook,
        "after blocking_io, the process's panic hook was no longer the one \
         set before the call: blocking_io set a hook of its own (panic::\
         set_hook), wrapping the one it found, say, to label panics during \
         the I/O, and left it there; every later panic of any thread then \
         goes through it, a new wrapper per call, and two calls at once can \
         lose the hook set before them. The hook is the whole process's: \
         leave it alone"
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
    // A panic with a message is passed on as it is too: its payload is
    // still the `&'static str` that `panic!` with a literal gives, not a
    // `String` of a new panic raised with the same text; and it is not
    // raised again as a new panic with that same `&'static str`, which the
    // hook would see a second time.
    let hook_saw_it = count_hook_calls_of(|payload| {
        is_the_str(payload, "the disk went away")
    });
    let failed = panic::catch_unwind(AssertUnwindSafe(|| {
        blocking_io(gil.acquire(), || panic!("the disk went away"))
    }));
    // The I/O never returns (its type is `!`), so neither can blocking_io.
    let Err(payload) = failed;
    assert!(
        payload.downcast_ref::<&'static str>() == Some(&"the disk went away"),
        "the I/O panicked with panic!(\"the disk went away\"), and the panic \
         that reached the caller was not that one ({}): blocking_io raised \
         a new panic (with the same text?) instead of passing the I/O's on, \
         payload unchanged (panic::resume_unwind, or no catch_unwind at all)",
        if payload.is::<String>() {
            "its payload is a String: a new panic! with the same text"
        } else {
            "its payload is of another type"
        }
    );
    let seen = hook_saw_it.load(Ordering::SeqCst);
    assert_eq!(
        seen, 1,
        "the I/O panicked with panic!(\"the disk went away\"), and the \
         process's panic hook reported that panic {seen} times, not once: \
         blocking_io caught it and raised a new panic with the same payload \
         (panic::panic_any), which the hook reports again, from blocking_io \
         rather than from the I/O. Pass the I/O's own panic on instead: \
         panic::resume_unwind(payload) does not report it again (or do not \
         catch it at all)"
    );
    back_in_the_queue(Gil::new(), false);
    // Python 3's GIL: the thread that waits for it asks its holder to drop
    // it (a drop request), and the I/O ends only once it has asked.
    let asking = SwitchInterval(Duration::from_millis(1));
    back_in_the_queue(Gil::with_policy(asking), true);
    no_extra_turn(Gil::new(), "Manual", Duration::ZERO);
    // A policy that would hand the GIL over at the next tick: a blocking_io
    // that ticks after taking the GIL back hands it to the waiting thread;
    // also one that ticks only after a long I/O ("a drop request is surely
    // pending by now").
    let every_tick = || Gil::with_policy(HandOverEvery(1));
    no_extra_turn(every_tick(), "hand-over-every-tick", Duration::ZERO);
    no_extra_turn(every_tick(), "hand-over-every-tick", LONG_IO);
    no_turn_for_a_waiter_that_did_not_run(Gil::new(), false, SLOW_IO);
    // The same after an I/O that lasts long enough for any "yield after a
    // long I/O" rule (a forced switch after twenty switch intervals, say).
    no_turn_for_a_waiter_that_did_not_run(Gil::new(), false, LONG_IO);
    // Python 3's GIL: the waiting thread has asked for the GIL (a drop
    // request) before it is held still, and nobody serves the request.
    let asking = SwitchInterval(Duration::from_millis(1));
    no_turn_for_a_waiter_that_did_not_run(
        Gil::with_policy(asking),
        true,
        SLOW_IO,
    );
    io_inside_io();
}

/// The I/O calls back into Python (native code that takes the GIL), and
/// that Python code does blocking I/O of its own: a `blocking_io` inside
/// another's `io`, on the same thread, works like any other, and so does
/// the outer one after it.
fn io_inside_io() {
    let gil = Gil::new();
    let (guard, answer) = blocking_io(gil.acquire(), || {
        panic::catch_unwind(AssertUnwindSafe(|| {
            let (inner, answer) = blocking_io(gil.acquire(), || {
                assert!(
                    !gil.is_held_by_current_thread(),
                    "the inner I/O ran while this thread held the GIL"
                );
                7
            });
            assert!(
                gil.is_held_by_current_thread(),
                "the GIL is held again after the inner I/O"
            );
            drop(inner);
            answer
        }))
    });
    assert!(
        answer.is_ok_and(|answer| answer == 7),
        "an I/O took the GIL (as native code calling back into Python does) \
         and did blocking I/O again with blocking_io, on the same thread, \
         and that inner call did not return the inner I/O's result (it \
         panicked?): a blocking_io made inside another's I/O is a call like \
         any other, as Python code called from native code may block again; \
         keep no per-thread \"in I/O\" state that refuses it"
    );
    assert!(
        gil.is_held_by_current_thread(),
        "the GIL is held again after the outer I/O"
    );
    drop(guard);
}

/// How long the I/O that `no_turn_for_a_waiter_that_did_not_run` does
/// lasts: ten of Python's switch intervals.
const SLOW_IO: Duration = Duration::from_millis(50);

/// How long a long I/O lasts: longer than a second, so that a
/// `blocking_io` that yields or ticks only after an I/O of a second or
/// less (two hundred of Python's switch intervals) does so here.
const LONG_IO: Duration = Duration::from_millis(1200);

/// Thread W waits for the GIL before `blocking_io` starts, and a signal
/// holds it through the call, a slow one ([`SLOW_IO`]), as a thread the
/// operating system does not get round to waking: the GIL is free during
/// `io` and nobody takes it, so `blocking_io` takes it back once `io` is
/// done, W still waiting; `io` lasts `slow`. It must not
/// hand the GIL to W then (`yield_now`, "W got nothing out of my
/// release"): W's turn comes when the caller lets go. A watcher lets W go
/// once `blocking_io` has returned, or once the calling thread blocks in
/// it (waiting for W to take the GIL), so that a wrong `blocking_io` fails
/// rather than hangs. With `asked`, W is held only once it has asked for
/// the GIL (`gil`'s policy is `SwitchInterval`), so a drop request is
/// pending through the call: `blocking_io` must not serve it either.
fn no_turn_for_a_waiter_that_did_not_run(
    gil: Gil,
    asked: bool,
    slow: Duration,
) {
    let returned = AtomicBool::new(false);
    thread::scope(|s| {
        let (gil, returned) = (&gil, &returned);
        let guard = gil.acquire();
        let asked_by_then = if asked { "asked for" } else { "waited for" };
        let (calling, is_calling) = mpsc::channel();
        s.spawn(move || {
            calling.send(task::me()).expect("the trial vanished");
            drop(gil.acquire());
        });
        let w = is_calling.recv().expect("thread W vanished");
        while gil.waiting() == 0 || (asked && !gil.drop_requested()) {
            thread::sleep(Duration::from_millis(1));
        }
        freeze_outside_the_gil_s_lock(s, gil, w);
        let me = task::me();
        s.spawn(move || {
            while !returned.load(Ordering::SeqCst)
                && !matches!(
                    task::wait(me.tid),
                    Some((task::Wait::UntilWoken, _))
                )
            {
                thread::sleep(Duration::from_micros(200));
            }
            task::thaw();
        });
        let before = gil.stats().acquisitions;
        // A slow I/O, longer than Python's switch interval (5 ms): W has
        // waited all that time, and still gets no turn from blocking_io. It
        // spins rather than sleeps, so that the watcher, which may not tell
        // a sleep from a wait for W, does not let W go during the I/O.
        let (guard, ()) = blocking_io(guard, || {
            let until = Instant::now() + slow;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        });
        returned.store(true, Ordering::SeqCst);
        let taken = gil.stats().acquisitions - before;
        let waiting = gil.waiting();
        drop(guard);
        assert!(
            taken == 1 && waiting == 1,
            "a thread {asked_by_then} the GIL before blocking_io and did not \
             run during it (the GIL stayed free through the I/O, and nobody took \
             it); blocking_io took the GIL back, and during the call the GIL \
             was taken {taken} times, not once, and {waiting} threads were \
             waiting for it when blocking_io returned, not 1: after the I/O \
             it takes the GIL back and returns, handing it to no waiting \
             thread (yield_now), even one that got nothing out of its \
             release, that has waited through a slow I/O ({} ms, however \
             long) or whose drop request is pending, and it does not wait \
             for that thread to take it first",
            slow.as_millis()
        );
    });
}

/// Freezes thread `w`, which waits for `gil`, at a moment when it does not
/// hold the lock inside `gil` that `Gil::waiting` takes: a thread that
/// asks for that lock meanwhile gets it. Frozen while holding it (between
/// two waits with a deadline, say), `w` is let go and frozen again. Only a
/// pause until that thread gets the lock or blocks: no deadline.
fn freeze_outside_the_gil_s_lock<'s>(
    s: &'s thread::Scope<'s, '_>,
    gil: &'s Gil,
    w: task::Me,
) {
    loop {
        task::freeze(w);
        let (started, probe_started) = mpsc::channel();
        let probe = s.spawn(move || {
            started.send(task::me().tid).expect("the trial vanished");
            gil.waiting()
        });
        let probe_tid = probe_started.recv().expect("the probe vanished");
        let free = loop {
            if probe.is_finished() {
                break true;
            }
            if matches!(
                task::wait(probe_tid),
                Some((task::Wait::UntilWoken, _))
            ) {
                break false;
            }
            thread::sleep(Duration::from_micros(200));
        };
        if free {
            probe.join().expect("the probe panicked");
            return;
        }
        // `w` holds the lock: let it go on, and once the probe has the lock
        // (so `w` has left its handler), try again.
        task::thaw();
        probe.join().expect("the probe panicked");
    }
}

/// A thread waits for the GIL before `blocking_io` starts; it takes the
/// GIL while `io` runs and keeps it until `blocking_io` waits for it
/// again, then hands it over (`yield_now`). `blocking_io` must return with
/// that thread still waiting: it yields neither before `io` (handing the
/// GIL to the waiter instead of letting go of it) nor after taking it back,
/// and it does not tick, which on `gil`'s policy would hand the GIL over,
/// not even after a long I/O: `io` lasts `lasting` at least.
fn no_extra_turn(gil: Gil, policy: &str, lasting: Duration) {
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
        let call = Instant::now();
        let (guard, ()) = blocking_io(guard, || {
            let started = Instant::now();
            while !took.load(Ordering::SeqCst) || started.elapsed() < lasting {
                thread::sleep(Duration::from_millis(1));
            }
        });
        let started_to_end = call.elapsed();
        let extra = got_back.load(Ordering::SeqCst);
        let taken = gil.stats().acquisitions - before;
        drop(guard);
        assert!(
            !extra && taken == 2,
            "another thread got an extra turn with the GIL during \
             blocking_io (the GIL was taken {taken} times during the call, \
             not 2: once by the waiting thread, once by blocking_io) on a \
             Gil with the {policy} policy, after an I/O of {} ms: it yields \
             the GIL (yield_now) before the I/O or after taking it back, or \
             ticks (GilGuard::tick, which lets the policy switch), instead \
             of just dropping the guard and acquiring the GIL again, \
             however long the I/O took",
            started_to_end.as_millis()
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
pub(super) fn lets_others_run_while_waiting() {
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
    blocked_at_the_same_time();
}

/// Four threads, then [`MANY_IOS`], each holding the GIL, call
/// `blocking_io` with an I/O that waits for all the I/Os at a barrier: they
/// are all blocked at the same time, not one after another (no lock of
/// `blocking_io`'s own lets only one I/O run at a time, nor a cap on the
/// I/Os at once lets only a few: 16, or a few per core).
fn blocked_at_the_same_time() {
    blocked_at_once(4);
    blocked_at_once(MANY_IOS);
}

/// More I/Os at once than any cap on them that a pool would set (16, 64,
/// a few per core), or one taken from a limit of the machine's (1,024,
/// `ulimit -n`'s usual soft limit, or its hard one, 4,096: a cap of exactly
/// that lets all of them in, which is why the trial starts more).
const MANY_IOS: usize = 4100;

/// The stack of each of the trial's own threads in `blocked_at_once`:
/// plenty for a call of `blocking_io`, and small enough that `MANY_IOS` of
/// them take little memory.
const SMALL_STACK: usize = 256 << 10;

fn blocked_at_once(threads: usize) {
    let gil = Gil::new();
    let all_in_io = Barrier::new(threads);
    thread::scope(|s| {
        for _ in 0..threads {
            thread::Builder::new()
                .stack_size(SMALL_STACK)
                .spawn_scoped(s, || {
                    let guard = gil.acquire();
                    let (guard, ()) = blocking_io(guard, || {
                        all_in_io.wait();
                    });
                    drop(guard);
                })
                .expect("the trial could not start a thread");
        }
    });
}
