//! The heartbeat returns as soon as the work has ended: it does not wait
//! for the next beat first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use exercises::ch06_fairness::with_heartbeat;

use super::paused_runtime;

/// The period of [`returns_as_soon_as_the_work_ends`]: long, so that a
/// heartbeat that waits for the next tick before it returns is seen doing
/// so on the paused clock.
const LONG_PERIOD: Duration = Duration::from_secs(60);

/// On the paused clock: the first beat comes at once, and the work ends
/// right after it. `with_heartbeat` returns then: the clock has not moved,
/// and no second beat came. A loop that looks at the work only between
/// beats (`while !handle.is_finished() { tick; beat }`) is not woken by the
/// end of the work; it waits for the next tick, which the paused clock
/// reaches as soon as the runtime has nothing else to do, beats once more,
/// and only then returns.
pub(super) fn returns_as_soon_as_the_work_ends() {
    let runtime = paused_runtime();
    let beats = AtomicUsize::new(0);
    let (answer, waited) = runtime.block_on(async {
        let start = tokio::time::Instant::now();
        let (stop, stopped) = mpsc::channel::<()>();
        let heartbeat = with_heartbeat(
            move || {
                let _ = stopped.recv();
                42
            },
            LONG_PERIOD,
            || {
                beats.fetch_add(1, Ordering::SeqCst);
            },
        );
        // `join!` polls the heartbeat first: its first beat is in when the
        // work is told to end.
        let end = async { stop.send(()).expect("the work ended early") };
        let (answer, ()) = tokio::join!(heartbeat, end);
        (answer, start.elapsed())
    });
    assert_eq!(answer, 42, "with_heartbeat returns what the work returned");
    let beats = beats.into_inner();
    assert!(
        waited.is_zero() && beats == 1,
        "the work ended right after the first beat, and with_heartbeat \
         returned {waited:?} later on the paused clock, after {beats} \
         beats (period {LONG_PERIOD:?}): it waited for the next tick before \
         it looked at the work again, as a `while not fut.done()` loop \
         around the tick does. Wait for whichever comes first, the next \
         tick or the end of the work (tokio::select! on both), and return \
         as soon as the work has ended"
    );
}
