//! `ToyGil::with_gil`: one thread inside at a time, even across two
//! `ToyGil`s; every thread gets in; and a panic inside reaches the caller
//! and leaves a lock that still lets in, and keeps out, as before.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use course::grader::task::{self, Tid};
use exercises::ch03_gil::ToyGil;

use super::{ThePythonCodeRaised, count_hook_calls_of, is_the_str};

// A waiter woken as another thread calls `with_gil`, held at its writes.
mod woken;

const THREADS: usize = 8;

pub(super) fn lets_one_thread_in_at_a_time() {
    let gil = ToyGil::new();
    let most = most_inside_at_once(&gil);
    assert_eq!(
        most, 1,
        "{most} threads were inside with_gil at the same time; a GIL lets \
         exactly one in (is every call using the same lock?)"
    );
    a_nested_call_waits_its_turn();
    a_long_stay_inside();
    let most = woken::a_waiter_woken_as_another_calls();
    assert_eq!(
        most, 1,
        "{most} threads were inside with_gil at the same time: a waiting \
         thread woke as the lock was freed, found it free, and claimed it, \
         while another thread that had just called with_gil took it too. A \
         claim made by reading \"free\" and then storing \"held\" lets in \
         anyone who takes the lock between the two, even when a mutex \
         guards the check and the store from the other sleepers (a \
         spinning thread takes no mutex): claim the lock with one \
         compare-exchange (or swap) on every path, the sleeping one too"
    );
}

/// Thread H stays inside `with_gil` while thread W waits for the lock, for
/// as long as W's waiting might end by itself: until W is seen asleep with
/// no deadline (then for `SETTLE` more), or, if W waits with a deadline (a
/// `wait_timeout`, a sleep), until it has woken by itself twice and `STAY`
/// has passed; or until it has burnt `task::BUSY_TICKS` of CPU time without
/// being seen asleep (a spin lock). A waiter that takes
/// the lock over once its wait times out ("the holder must be gone") gets
/// in while H is still inside. H's stay is bounded by those events, not by
/// a clock alone: a lock whose waiters wait with deadlines of up to a
/// second or two passes in some eight seconds.
fn a_long_stay_inside() {
    let gil = ToyGil::new();
    let (h_inside, w_inside) = (AtomicBool::new(false), AtomicBool::new(false));
    let (inside, is_inside) = mpsc::channel();
    let (calling, is_calling) = mpsc::channel();
    let both_inside = thread::scope(|s| {
        let (gil, h_inside, w_inside) = (&gil, &h_inside, &w_inside);
        let waiter = s.spawn(move || {
            is_inside.recv().expect("thread H vanished");
            calling.send(task::me().tid).expect("thread H vanished");
            gil.with_gil(|| {
                w_inside.store(true, Ordering::SeqCst);
                let both = h_inside.load(Ordering::SeqCst);
                // Stay until H has seen this thread inside and left.
                while h_inside.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_micros(100));
                }
                both
            })
        });
        gil.with_gil(|| {
            h_inside.store(true, Ordering::SeqCst);
            inside.send(()).expect("thread W vanished");
            let w = is_calling.recv().expect("thread W vanished");
            stay_while_it_waits(w, w_inside);
            h_inside.store(false, Ordering::SeqCst);
        });
        waiter.join().unwrap()
    });
    assert!(
        !both_inside,
        "a thread that waited for the lock got in while another thread was \
         still inside with_gil: a holder may stay inside as long as it \
         likes, and a waiter whose wait times out (wait_timeout, a sleep) \
         must check again and wait on, never take the lock over as if the \
         holder were gone"
    );
}

/// How long, at least, a holder stays inside while a thread waits for the
/// lock with deadlines: a waiter that gives up (takes the lock over) after
/// many short waits, or one long one, gets in meanwhile if it gives up
/// sooner than this.
const STAY: Duration = Duration::from_secs(8);

/// Returns once thread `w` has been seen asleep with no deadline (then
/// after `SETTLE` more), or has used `task::BUSY_TICKS` of CPU time without
/// sleeping (a spin lock); or, seen in a wait with a deadline (or a sleep,
/// as it is once it has wrongly got in), once it has got in (`w_inside`),
/// or has woken by itself twice and `STAY` has passed since. The watch is
/// bounded by `w`'s own CPU time and sleeps, not by the clock: on a loaded
/// machine, a `w` that has not run yet is waited for.
fn stay_while_it_waits(w: Tid, w_inside: &AtomicBool) {
    match task::watch_until_asleep(w) {
        task::Watched::AsleepUntilWoken => {
            thread::sleep(SETTLE);
            return;
        }
        task::Watched::Busy => return,
        task::Watched::Polling(_) => {}
    }
    let (then, when) = (task::sleeps(w), Instant::now());
    while !w_inside.load(Ordering::SeqCst) {
        // Two more sleeps: it woke by itself twice (nobody woke it).
        if task::sleeps(w) >= then + 2 && when.elapsed() >= STAY {
            return;
        }
        thread::sleep(Duration::from_micros(200));
    }
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
/// for `SETTLE` once T is about to call. Then the same with two locks made
/// by `ToyGil::default()`: a lock that tells itself from the others by an
/// id that `new()` hands out, and that a derived `Default` leaves at the
/// same value in every lock, takes `b` for `a`, which T already holds.
fn a_nested_call_waits_its_turn() {
    let new: fn() -> ToyGil = ToyGil::new;
    let default: fn() -> ToyGil = ToyGil::default;
    for (make, made_by) in [(new, "new()"), (default, "default()")] {
        a_nested_call_waits_its_turn_on(make(), make(), made_by);
    }
}

fn a_nested_call_waits_its_turn_on(a: ToyGil, b: ToyGil, made_by: &str) {
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
         with_gil, and got in while a third thread was inside that one (both \
         made by ToyGil::{made_by}): each ToyGil is a lock of its own, and a \
         thread that holds one must still take the other's lock (no flag or \
         count shared by every ToyGil, such as a thread_local!, may let it \
         skip the lock, nor an id that every ToyGil::default() shares)"
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

pub(super) fn lets_every_thread_in() {
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
    many_waiters_asleep_at_once_all_get_in();
    a_waiter_interrupted_in_its_wait_still_gets_in();
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

/// How many threads wait for the lock at once in
/// `many_waiters_asleep_at_once_all_get_in`: more than a `u8` counts.
const MANY_WAITERS: usize = 300;

/// The stack of each of the waiting threads: plenty for a call of
/// `with_gil`, and small enough that `MANY_WAITERS` take little memory.
const SMALL_STACK: usize = 256 << 10;

/// This thread is inside `with_gil` while [`MANY_WAITERS`] threads call it,
/// and stays inside until every one of them has been seen asleep in its
/// wait on many looks in a row (then none of them is
/// between its check and its wait: a lock that counts its sleepers has
/// counted them all). Then it leaves, and every call must get in. A count
/// of sleepers too narrow for them (a `u8`) overflows: a panic in the
/// waiter that counts itself in, or, wrapped round to 0, an unlock that
/// wakes nobody.
fn many_waiters_asleep_at_once_all_get_in() {
    let gil = ToyGil::new();
    let entered = AtomicUsize::new(0);
    let (calling, is_calling) = mpsc::channel();
    let failed = thread::scope(|s| {
        let (gil, entered) = (&gil, &entered);
        let waiters: Vec<_> = gil.with_gil(|| {
            let waiters: Vec<_> = (0..MANY_WAITERS)
                .map(|_| {
                    let calling = calling.clone();
                    thread::Builder::new()
                        .stack_size(SMALL_STACK)
                        .spawn_scoped(s, move || {
                            calling
                                .send(task::me().tid)
                                .expect("the trial vanished");
                            gil.with_gil(|| {
                                entered.fetch_add(1, Ordering::SeqCst)
                            });
                        })
                        .expect("the trial could not start a thread")
                })
                .collect();
            let tids: Vec<Tid> = (0..MANY_WAITERS)
                .map(|_| is_calling.recv().expect("a waiter vanished"))
                .collect();
            all_seen_asleep(&tids);
            waiters
        });
        waiters
            .into_iter()
            .filter_map(|waiter| waiter.join().err())
            .count()
    });
    assert_eq!(
        failed, 0,
        "{MANY_WAITERS} threads waited for the lock at once, all asleep, and \
         {failed} of them panicked instead of getting in: does a count of the \
         waiting threads overflow (a u8 holds at most 255)? Count them in a \
         usize, or let the Condvar keep track of them"
    );
    assert_eq!(
        entered.load(Ordering::SeqCst),
        MANY_WAITERS,
        "all the waiting calls got in"
    );
}

/// Looks at threads `tids` a millisecond apart until each has been seen
/// asleep (or ended) on 100 looks in a row: asleep that long, it is not
/// between its check and its wait, and nothing wakes it while the lock is
/// held. Or until they have used, together, twice `task::BUSY_TICKS` of
/// CPU time since the first look (they spin, or poll in short sleeps: then
/// there is no long sleep to wait for). Bounded by the threads' own
/// progress, not by the clock. A look reads the thread's state only (its
/// `stat`), which is quick, however many threads there are.
fn all_seen_asleep(tids: &[Tid]) {
    let cpu = || tids.iter().map(|&tid| task::cpu_ticks(tid)).sum::<u64>();
    let spent = cpu();
    let mut in_a_row = vec![0_u32; tids.len()];
    for look in 1_u64.. {
        if in_a_row.iter().all(|&looks| looks >= 100) {
            return;
        }
        for (looks, &tid) in in_a_row.iter_mut().zip(tids) {
            if *looks < 100 {
                let asleep = matches!(task::state(tid), None | Some('S'));
                *looks = if asleep { *looks + 1 } else { 0 };
            }
        }
        // The CPU time now and then only: it takes a look at every thread.
        if look % 20 == 0 && cpu().saturating_sub(spent) > 2 * task::BUSY_TICKS
        {
            return;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// This thread is inside `with_gil` while thread B, then thread C, call it
/// and block. Then a signal holds B for a moment (as the operating system
/// may interrupt any waiting thread), and B goes back to waiting, now
/// behind C. A lock that, when freed, wakes one waiter and takes it for
/// the one whose turn has come (a ticket lock with `notify_one`) wakes C,
/// whose turn it is not, and leaves B asleep for ever. Both calls must get
/// in once this thread has left.
fn a_waiter_interrupted_in_its_wait_still_gets_in() {
    let gil = ToyGil::new();
    let entered = AtomicUsize::new(0);
    thread::scope(|s| {
        let (gil, entered) = (&gil, &entered);
        let (calling, is_calling) = mpsc::channel();
        gil.with_gil(|| {
            let mut waiters = Vec::new();
            for _ in 0..2 {
                let calling = calling.clone();
                s.spawn(move || {
                    calling.send(task::me()).expect("the trial vanished");
                    gil.with_gil(|| entered.fetch_add(1, Ordering::SeqCst));
                });
                let waiter = is_calling.recv().expect("a waiter vanished");
                task::watch_until_asleep(waiter.tid);
                waiters.push(waiter);
            }
            // Held in its signal handler, B has left its wait; let go, it
            // waits again, behind C. It is seen back in that wait (one with
            // no deadline), not in the handler's own sleep, which it may
            // still be in just after the thaw: leaving before B waits again
            // would let it find the lock handed on and walk in.
            task::freeze(waiters[0]);
            task::thaw();
            let b = waiters[0].tid;
            task::watch_until(b, || {
                matches!(task::wait(b), Some((task::Wait::UntilWoken, _)))
            });
        });
    });
    assert_eq!(entered.load(Ordering::SeqCst), 2, "both calls got in");
}

pub(super) fn survives_a_panic() {
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
    a_panic_with_a_message_is_passed_on(&gil);
    let after = panic::catch_unwind(AssertUnwindSafe(|| gil.with_gil(|| 7)));
    assert_eq!(
        after.ok(),
        Some(7),
        "after a panic inside with_gil, the next call failed: a panic \
         poisons a std Mutex (see PoisonError::into_inner)"
    );
    a_waiting_thread_gets_in_after_a_panic();
}

/// `f` panics with `panic!("the Python code raised")`: the panic that
/// reaches the caller carries that `&'static str`, and the process's panic
/// hook reports it once. A `with_gil` that catches it and raises a new
/// panic with the same payload (`panic::panic_any`, say to free the lock
/// first) keeps the payload but has the hook report it twice.
fn a_panic_with_a_message_is_passed_on(gil: &ToyGil) {
    const RAISED: &str = "the Python code raised";
    let hook_saw_it =
        count_hook_calls_of(|payload| is_the_str(payload, RAISED));
    let failed = panic::catch_unwind(AssertUnwindSafe(|| {
        gil.with_gil(|| panic!("the Python code raised"))
    }));
    assert!(
        failed.is_err_and(|payload| is_the_str(&*payload, RAISED)),
        "f panicked with panic!(\"{RAISED}\"), and the panic that reached \
         the caller of with_gil was not that one: pass f's own panic on, \
         payload unchanged"
    );
    let seen = hook_saw_it.load(Ordering::SeqCst);
    assert_eq!(
        seen, 1,
        "f panicked with panic!(\"{RAISED}\"), and the process's panic hook \
         reported that panic {seen} times, not once: with_gil caught it and \
         raised a new panic with the same payload (panic::panic_any), which \
         the hook reports again, from with_gil rather than from f. Let f's \
         own panic go on: a guard that frees the lock in its Drop does so as \
         the panic passes, and after catch_unwind, panic::resume_unwind \
         raises it again without a second report"
    );
}

/// Thread W calls `with_gil` while this thread is inside, and this
/// thread's `f` panics only once W is asleep, blocked waiting for the lock
/// (or, if it spins, once it has burnt a fifth of a second of CPU time; if
/// it polls, once it is seen in a wait with a deadline): W was already
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
                // Asleep in its wait for the lock (or spinning, or
                // polling: then the panic comes all the same).
                task::watch_until_asleep(task);
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

/// A panic inside `with_gil` poisons a `std::sync::Mutex` for good: the
/// calls after it must still exclude each other.
pub(super) fn still_one_at_a_time_after_a_panic() {
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
