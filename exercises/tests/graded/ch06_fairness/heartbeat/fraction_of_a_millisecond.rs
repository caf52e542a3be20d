//! A heartbeat whose period is not a whole number of milliseconds, on
//! tokio's paused clock.

use std::cell::RefCell;
use std::sync::mpsc;
use std::time::Duration;

use exercises::ch06_fairness::with_heartbeat;

use super::paused_runtime;

/// On the paused clock, with a period of 1.9 ms, then one of 0.4 ms, the
/// clock moving on 100 µs at a time for 40 ms (see [`keeps_the_period`]).
pub(super) fn keeps_a_period_of_a_fraction_of_a_millisecond() {
    keeps_the_period(Duration::from_micros(1_900));
    keeps_the_period(Duration::from_micros(400));
}

/// On the paused clock, with a period of `period`, the clock moving on
/// 100 µs at a time for 40 ms: the `k`-th beat after the first comes no
/// sooner than `k` periods after it (tokio's timer counts in whole
/// milliseconds and rounds a deadline up, so two beats may come a little
/// closer than a period, but never ahead of the schedule). A period rounded
/// down to whole milliseconds beats every millisecond. Nor does the `k`-th
/// beat come later than `k` periods and the millisecond of that rounding: a
/// period of 1.9 ms rounded up to whole milliseconds (2 ms) falls behind
/// the schedule by 100 µs a beat, more than a millisecond by the 11th; one
/// of 0.4 ms raised to a millisecond (tokio's resolution) by 600 µs a beat,
/// more than a millisecond by the 2nd. The clock here is tokio's paused
/// one, which no load on the machine can hold up.
fn keeps_the_period(period: Duration) {
    let runtime = paused_runtime();
    let beats = RefCell::new(Vec::new());
    runtime.block_on(async {
        let start = tokio::time::Instant::now();
        let (stop, stopped) = mpsc::channel::<()>();
        let heartbeat = with_heartbeat(
            move || {
                let _ = stopped.recv();
            },
            period,
            || beats.borrow_mut().push(start.elapsed()),
        );
        let clock = async {
            for _ in 0..400 {
                tokio::time::advance(Duration::from_micros(100)).await;
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
    assert!(
        beats.len() >= 10,
        "only {} beats in 40 ms of virtual time with a period of \
         {period:?}: {beats:?}",
        beats.len()
    );
    for (k, beat) in beats.iter().enumerate() {
        let due = period * u32::try_from(k).expect("a few dozen beats");
        assert!(
            *beat - beats[0] >= due,
            "with a period of {period:?}, beat {k} after the first came \
             {:?} after it, before {k} periods ({due:?}) were over \
             ({beats:?}): the beats come faster than once per period. Give \
             tokio::time::interval the period as it is, not rounded down \
             to whole milliseconds",
            *beat - beats[0]
        );
        let late = due + Duration::from_millis(1);
        assert!(
            *beat - beats[0] <= late,
            "with a period of {period:?}, beat {k} after the first came \
             {:?} after it, later than {k} periods and tokio's rounding of \
             a deadline up to the next millisecond ({late:?}), on a paused \
             clock that nothing held up ({beats:?}): the beats come slower \
             than once per period. Give tokio::time::interval the period as \
             it is, not rounded up to whole milliseconds, nor raised to one \
             millisecond when it is shorter (tokio fires the ticks due \
             within a millisecond together)",
            *beat - beats[0]
        );
    }
}
