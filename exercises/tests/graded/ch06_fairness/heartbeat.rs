//! The heartbeat: `with_heartbeat` returns the work's result, beats while
//! CPU-bound work runs off the runtime's thread, does not make up missed
//! beats in a burst, and passes a panic on.

mod fraction_of_a_millisecond;
mod returns_at_once;

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use exercises::ch06_fairness::with_heartbeat;
use fraction_of_a_millisecond::keeps_a_period_of_a_fraction_of_a_millisecond;
use returns_at_once::returns_as_soon_as_the_work_ends;
use tokio::runtime::{Builder, Handle, Runtime};

/// A runtime with one thread, the one that calls `block_on`, and timers.
fn current_thread_runtime() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime")
}

/// The name the runtime of [`returns_the_result`] gives its threads, the
/// blocking pool's included: a thread of its own has another name, or none.
const POOL_THREAD: &str = "ch06-heartbeat-pool";

/// `with_heartbeat` returns what the work returned, whether the work ends
/// before the first period or after several; and the work runs on a thread
/// of the runtime's blocking pool, which (unlike a thread of its own) is
/// inside the runtime: `Handle::try_current` finds it there, and the thread
/// has the name the runtime gives its threads.
pub(super) fn returns_the_result() {
    let runtime = Builder::new_current_thread()
        .enable_all()
        .thread_name(POOL_THREAD)
        .build()
        .expect("cannot build a tokio runtime");
    let period = Duration::from_millis(5);
    let (answer, in_the_runtime, name) = runtime.block_on(with_heartbeat(
        || {
            let name = thread::current().name().map(String::from);
            (6 * 7, Handle::try_current().is_ok(), name)
        },
        period,
        || {},
    ));
    assert_eq!(answer, 42, "with_heartbeat returns what the work returned");
    assert!(
        in_the_runtime,
        "the work ran on a thread outside the tokio runtime (no \
         Handle::try_current there): run it on the runtime's blocking pool \
         with tokio::task::spawn_blocking, which the runtime knows about \
         (its paused test clock, for one, does not jump ahead while the \
         work runs), not on a std::thread of its own"
    );
    assert_eq!(
        name.as_deref(),
        Some(POOL_THREAD),
        "the work ran on a thread the runtime did not start (the runtime \
         names its threads {POOL_THREAD:?}): a std::thread that enters the \
         runtime's Handle finds the runtime, but is not one of its blocking \
         pool's threads. Run the work with tokio::task::spawn_blocking"
    );
    let report = runtime.block_on(with_heartbeat(
        || {
            thread::sleep(Duration::from_millis(20)); // Several periods.
            String::from("quarterly report")
        },
        period,
        || {},
    ));
    assert_eq!(report, "quarterly report");
    ends_while_a_beat_runs();
    returns_as_soon_as_the_work_ends();
}

/// How many beats [`ends_while_a_beat_runs`] allows once the work is over:
/// a loop that still looks at the work beats once or twice more at most
/// (only when a whole period has passed and the tick wins the draw), one
/// that missed the end beats for ever.
const BEATS_AFTER_THE_END: usize = 100;

/// The work ends while a beat runs: the work waits for the first beat to
/// begin, and that beat waits until the work's thread has stopped (the runtime keeps no idle thread in its blocking
/// pool), so the work is over, to its last instruction, before the loop
/// looks again. A loop that is only told of the end by a signal nobody
/// was waiting for at that moment (`Notify::notify_waiters`, which keeps
/// no permit) never learns of it, and beats for ever.
fn ends_while_a_beat_runs() {
    let (stopped, stop) = mpsc::channel();
    let stopped = Mutex::new(stopped);
    let runtime = Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(Duration::ZERO)
        .on_thread_stop(move || {
            // The trial may be over already; then nobody listens.
            let _ = stopped.lock().unwrap().send(());
        })
        .build()
        .expect("cannot build a tokio runtime");
    // The work ends only once a beat has begun.
    let (beating, beat_begun) = mpsc::channel();
    let mut ended = false;
    let mut beats_after = 0;
    let answer = runtime.block_on(with_heartbeat(
        move || {
            beat_begun.recv().expect("the beat never began");
            42
        },
        Duration::from_millis(1),
        || {
            if !ended {
                beating.send(()).expect("the work is over already");
                // The work's thread stops only once the work has returned.
                stop.recv().expect("the work's thread never stopped");
                ended = true;
                return;
            }
            beats_after += 1;
            assert!(
                beats_after < BEATS_AFTER_THE_END,
                "the work ended while a beat ran, and with_heartbeat then \
                 beat {beats_after} more times without returning: it missed \
                 the end. A signal sent while nobody waits for it (as \
                 Notify::notify_waiters is, between two turns of the loop) \
                 is lost; select! on the JoinHandle itself, which keeps its \
                 result until it is polled"
            );
        },
    ));
    assert_eq!(
        answer, 42,
        "with_heartbeat returns what the work returned, also when the work \
         ends while a beat runs"
    );
}

/// The work spins until the third beat, which only comes if the work runs
/// off the runtime's one thread; and the third beat is at least two
/// periods after the start, since beats wait for their period. Then the
/// same on a runtime with worker threads: `tokio::task::block_in_place`
/// there runs the work on the very thread that polls `with_heartbeat`,
/// which cannot beat again until the work is over.
pub(super) fn beats_while_the_work_runs() {
    beats_while_spinning(&current_thread_runtime());
    let multi_thread = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime");
    beats_while_spinning(&multi_thread);
    keeps_a_period_of_a_fraction_of_a_millisecond();
}

/// On `runtime`, the work spins until the third beat (see
/// [`beats_while_the_work_runs`]).
fn beats_while_spinning(runtime: &Runtime) {
    const PERIOD: Duration = Duration::from_millis(20);
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

/// The period of the paused-clock runs of [`does_not_burst_after_a_stall`].
const STALL_PERIOD: Duration = Duration::from_millis(10);

/// A runtime with one thread, timers, and a paused clock: the clock moves
/// only when a test advances it (or when the runtime has nothing to do).
pub(super) fn paused_runtime() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("cannot build a tokio runtime")
}

/// The runtime held up by another task for several periods, then for less
/// than a period (but more than 5 ms past a beat), then by a long beat: see
/// [`after_a_stall_of_the_runtime`] and [`after_a_long_beat`].
pub(super) fn does_not_burst_after_a_stall() {
    after_a_stall_of_the_runtime(STALL_PERIOD, STALL_PERIOD * 7 / 2);
    after_a_stall_of_the_runtime(
        SHORT_STALL_PERIOD,
        SHORT_STALL_PERIOD * 7 / 5,
    );
    after_a_long_beat();
}

/// The period of the paused-clock run of [`does_not_burst_after_a_stall`]
/// whose stall lasts less than a period: 28 ms, so that the beat due at
/// 20 ms comes 8 ms late, more than tokio's 5 ms and less than a period.
const SHORT_STALL_PERIOD: Duration = Duration::from_millis(20);

/// On the paused clock, with a period of `period`: the first beat comes at
/// once; then the clock jumps `stall` in one step, as if the runtime's
/// thread had been held up that long, and then moves on 1 ms at a time for
/// 50 ms more. With a period of 10 ms and a stall of 35 ms, the beat due at
/// 10 ms comes late, at 35 ms; the ones due at 20 and 30 ms must not follow
/// it in a burst, the next must not come at 40 ms on the original grid, and
/// no two beats may ever be less than a period apart. With a period of
/// 20 ms and a stall of 28 ms, the beat due at 20 ms comes 8 ms late, at
/// 28 ms, and the next at 48 ms, not at 40 ms on the grid: a beat more than
/// 5 ms late moves the schedule, even one less than a period late.
fn after_a_stall_of_the_runtime(period: Duration, stall: Duration) {
    let runtime = paused_runtime();
    // Shared by the beat and the clock: both run on the runtime's thread.
    let beats = RefCell::new(Vec::new());
    runtime.block_on(async {
        let start = tokio::time::Instant::now();
        let (stop, stopped) = mpsc::channel::<()>();
        // The work waits for the test: while it runs, the paused clock
        // moves only when the test advances it.
        let heartbeat = with_heartbeat(
            move || {
                let _ = stopped.recv();
            },
            period,
            || beats.borrow_mut().push(start.elapsed()),
        );
        let clock = async {
            // `join!` polls the heartbeat first: its first beat is in.
            tokio::time::advance(stall).await;
            // The late beat comes at once (35 ms, or 28 ms), between two
            // ticks of the original grid, before the clock moves on: then a
            // beat that keeps to the grid (`Skip`) would come 5 ms, or
            // 12 ms, after it.
            while beats.borrow().len() < 2 {
                tokio::task::yield_now().await;
            }
            for _ in 0..50 {
                tokio::time::advance(Duration::from_millis(1)).await;
                // Every beat due by now has come before the next step.
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
            }
            stop.send(()).expect("the work ended early");
        };
        tokio::join!(heartbeat, clock);
    });
    let beats = beats.into_inner();
    assert_eq!(
        beats.first(),
        Some(&Duration::ZERO),
        "the first beat comes at once"
    );
    assert!(
        beats.len() >= 3,
        "only {} beats in {:?} of virtual time with a period of \
         {period:?}: {beats:?}",
        beats.len(),
        stall + Duration::from_millis(50)
    );
    let late = stall - period;
    for pair in beats.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= period,
            "two beats came {gap:?} apart (at {:?} and {:?}, of {beats:?}), \
             less than the period of {period:?}: after the runtime was \
             held up for {stall:?} (the beat due at {period:?} came {late:?} \
             late), the interval made up the missed ticks at once (tokio's \
             default, MissedTickBehavior::Burst), or kept to its original \
             grid after the late beat (Skip, or a schedule of your own that \
             moves only once a beat is a whole period late). A beat more \
             than 5 ms late moves the schedule, and a burst of beats claims \
             a liveness the stall denied: set the interval's \
             MissedTickBehavior to Delay",
            pair[0],
            pair[1]
        );
    }
}

/// On the paused clock, with a period of 10 ms: the first beat itself
/// lasts two and a half periods (it lets the clock run meanwhile, and stops
/// it again before it returns). The beat due at 10 ms is overdue by then,
/// so it must come as soon as the loop runs again, at the very moment the
/// long beat ended, before the clock moves on; not a period after the long
/// beat ended, as a loop that waits a period after each beat
/// (`tokio::time::timeout` or `sleep`) would give. Then the clock moves on
/// 1 ms at a time for 30 ms, and no two beats may be less than a period
/// apart.
fn after_a_long_beat() {
    const PERIOD: Duration = STALL_PERIOD;
    let runtime = paused_runtime();
    // When each beat began and ended, on the paused clock.
    let beats = RefCell::new(Vec::new());
    runtime.block_on(async {
        let start = tokio::time::Instant::now();
        let (stop, stopped) = mpsc::channel::<()>();
        let heartbeat = with_heartbeat(
            move || {
                let _ = stopped.recv();
            },
            PERIOD,
            || {
                let began = start.elapsed();
                if beats.borrow().is_empty() {
                    // The clock runs with real time while the beat sleeps.
                    tokio::time::resume();
                    thread::sleep(PERIOD * 5 / 2);
                    tokio::time::pause();
                }
                beats.borrow_mut().push((began, start.elapsed()));
            },
        );
        let clock = async {
            // The clock stands still here: a beat that is due comes all
            // the same, one that waits for a later time does not.
            for _ in 0..100 {
                if beats.borrow().len() >= 2 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            for _ in 0..30 {
                tokio::time::advance(Duration::from_millis(1)).await;
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
            }
            stop.send(()).expect("the work ended early");
        };
        tokio::join!(heartbeat, clock);
    });
    let beats = beats.into_inner();
    assert!(
        beats.len() >= 2,
        "only {} beats in 30 ms of virtual time after a beat that lasted \
         {:?}, with a period of {PERIOD:?}: {beats:?}",
        beats.len(),
        PERIOD * 5 / 2
    );
    let (long_began, long_ended) = beats[0];
    assert_eq!(long_began, Duration::ZERO, "the first beat comes at once");
    let next = beats[1].0;
    assert_eq!(
        next, long_ended,
        "the first beat lasted from {long_began:?} to {long_ended:?} \
         (longer than the period of {PERIOD:?}), and the next beat came at \
         {next:?}, not as soon as the loop ran again, at {long_ended:?}: \
         the beat that fell due meanwhile must come late, at once. Counting \
         each period from the end of the last beat (a timeout or a sleep \
         after each beat) makes a slow heartbeat drift; the ticks of \
         tokio::time::interval keep their time"
    );
    for pair in beats.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= PERIOD,
            "two beats began {gap:?} apart (of {beats:?}, each as (began, \
             ended)), less than the period of {PERIOD:?}, after a beat that \
             lasted {:?}: the missed ticks were made up in a burst \
             (MissedTickBehavior::Burst), or kept to the original grid \
             (Skip); set the interval's MissedTickBehavior to Delay",
            PERIOD * 5 / 2
        );
    }
}

/// The waker handed to the heartbeat by [`sleeps_between_beats`]: it counts
/// each wake-up the heartbeat asks for, and passes it on to the task that
/// polls the heartbeat.
#[derive(Default)]
struct WakeCounter {
    wakes: AtomicUsize,
    /// The waker of the task that polls the heartbeat, as of its last poll.
    task: Mutex<Option<Waker>>,
}

impl Wake for WakeCounter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        if let Some(task) = &*self.task.lock().unwrap() {
            task.wake_by_ref();
        }
    }
}

/// How many rounds the test's own task runs, on the paused clock, while the
/// heartbeat has nothing to do.
const IDLE_ROUNDS: usize = 1000;

/// On the paused clock, once the first beat is in: the clock stands still,
/// so no beat is due, and the work waits for the test, so it is not done.
/// Meanwhile the test's own task yields a thousand times, and the heartbeat
/// must not ask to be woken once: a loop that checks the handle and yields
/// (`yield_now`) wakes itself on every round, and keeps its thread busy for
/// the whole run, where a heartbeat that waits in `select!` sleeps. The
/// count does not depend on timing: on the paused clock nothing else can
/// wake the heartbeat.
pub(super) fn sleeps_between_beats() {
    let runtime = paused_runtime();
    let beats = AtomicUsize::new(0);
    let counter = Arc::new(WakeCounter::default());
    let waker = Waker::from(Arc::clone(&counter));
    let idle_wakes = runtime.block_on(async {
        let (stop, stopped) = mpsc::channel::<()>();
        let mut heartbeat = pin!(with_heartbeat(
            move || {
                let _ = stopped.recv();
            },
            STALL_PERIOD,
            || {
                beats.fetch_add(1, Ordering::SeqCst);
            },
        ));
        // Polls the heartbeat with the counting waker.
        let counted = std::future::poll_fn(|cx| {
            *counter.task.lock().unwrap() = Some(cx.waker().clone());
            heartbeat.as_mut().poll(&mut Context::from_waker(&waker))
        });
        let idle = async {
            // `join!` polls the heartbeat first: its first beat is in.
            assert_eq!(
                beats.load(Ordering::SeqCst),
                1,
                "the first beat comes at once"
            );
            let before = counter.wakes.load(Ordering::SeqCst);
            for _ in 0..IDLE_ROUNDS {
                tokio::task::yield_now().await;
            }
            let idle_wakes = counter.wakes.load(Ordering::SeqCst) - before;
            stop.send(()).expect("the work ended early");
            idle_wakes
        };
        tokio::join!(counted, idle).1
    });
    assert!(
        idle_wakes < 10,
        "with no beat due (the clock was paused) and the work still \
         running, with_heartbeat woke itself {idle_wakes} times while \
         another task yielded {IDLE_ROUNDS} times: it polls in a loop \
         (check the handle, tokio::task::yield_now, again) and keeps the \
         runtime's thread busy for as long as the work runs, as `while not \
         fut.done(): await asyncio.sleep(0)` would. Wait for whichever \
         comes first, the next tick or the end of the work, with \
         tokio::select!: the task then sleeps until one of them wakes it"
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
/// own payload, of the work's own type: a `&'static str` stays one (not a
/// `String` with the same text), and a number stays that number.
pub(super) fn passes_a_panic_on() {
    const MESSAGE: &str = "the backup failed on purpose (expected)";
    const CODE: u32 = 42;
    let runtime = current_thread_runtime();
    let payload_of = |work: fn() -> u64| {
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(with_heartbeat(
                work,
                Duration::from_millis(5),
                || {},
            ))
        }));
        let Err(payload) = caught else {
            panic!("the work panicked, but with_heartbeat returned a value");
        };
        payload
    };
    let payload = payload_of(|| panic::panic_any(MESSAGE));
    assert_eq!(
        payload.downcast_ref::<&'static str>(),
        Some(&MESSAGE),
        "the work panicked with the &'static str {MESSAGE:?}, but the payload \
         that came out of with_heartbeat is not that &'static str (its text: \
         {:?}): pass the work's own payload on, unchanged, with \
         std::panic::resume_unwind(error.into_panic()), rather than \
         unwrapping the JoinError or panicking again with its text",
        panic_text(&*payload)
    );
    let payload = payload_of(|| panic::panic_any(CODE));
    assert_eq!(
        payload.downcast_ref::<u32>(),
        Some(&CODE),
        "the work panicked with panic_any({CODE}_u32), but the payload that \
         came out of with_heartbeat is not that u32 (its text: {:?}): pass \
         the work's own payload on with \
         std::panic::resume_unwind(error.into_panic())",
        panic_text(&*payload)
    );
    a_panicking_beat_is_not_hidden(&runtime);
}

/// A panic in `beat`, the caller's own callback, comes out of
/// `with_heartbeat` with its own payload, as a panic in `work` does: it
/// is not caught and logged while the beats go on, nor held back until
/// `work` ends. The work here ends only once the panic has reached the
/// caller, which then lets it go (as a caller might, cancelling it).
fn a_panicking_beat_is_not_hidden(runtime: &Runtime) {
    const MESSAGE: &str = "the heartbeat failed on purpose (expected)";
    let released = Arc::new(AtomicBool::new(false));
    let work = {
        let released = Arc::clone(&released);
        move || {
            // Ends once the caller has its panic, so the runtime has no
            // work left when it is dropped.
            while !released.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            7_u64
        }
    };
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(with_heartbeat(work, Duration::from_millis(5), || {
            panic::panic_any(MESSAGE);
        }))
    }));
    released.store(true, Ordering::SeqCst);
    let Err(payload) = caught else {
        panic!(
            "beat panicked, but with_heartbeat returned the work's value: \
             the caller's own callback failed, and that must reach the \
             caller, not be caught and logged while the beats go on"
        );
    };
    assert_eq!(
        payload.downcast_ref::<&'static str>(),
        Some(&MESSAGE),
        "beat panicked with the &'static str {MESSAGE:?}, but the payload \
         that came out of with_heartbeat is not that (its text: {:?}): let \
         the beat's panic go on as it is",
        panic_text(&*payload)
    );
}
