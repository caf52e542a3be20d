//! The heartbeat: `with_heartbeat` returns the work's result, beats while
//! CPU-bound work runs off the runtime's thread, and passes a panic on.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use exercises::ch06_fairness::with_heartbeat;
use tokio::runtime::{Builder, Runtime};

/// A runtime with one thread, the one that calls `block_on`, and timers.
fn current_thread_runtime() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime")
}

/// `with_heartbeat` returns what the work returned, whether the work ends
/// before the first period or after several.
pub(super) fn returns_the_result() {
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
pub(super) fn beats_while_the_work_runs() {
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
pub(super) fn passes_a_panic_on() {
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
