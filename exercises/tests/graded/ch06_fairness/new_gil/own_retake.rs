//! The last holder takes the GIL straight back: a waiter that sees that
//! taking starts its interval again, as for any other thread's.

use std::thread;
use std::time::{Duration, Instant};

use exercises::ch06_fairness::NewGil;

use course::grader::task;

use super::frozen_waiter::a_waiter_in_its_interval;

/// The interval of [`a_retake_by_the_same_holder_restarts_the_interval`]:
/// long, so that the waiter's request, made at once by a waiter that did
/// not restart its interval, is seen well before an interval is over.
const INTERVAL: Duration = Duration::from_secs(1);

/// The main thread holds the GIL; a waiter waits for it in its first
/// interval and is frozen there, holding no lock, for a whole interval.
/// Meanwhile the main thread lets go and takes the GIL straight back (no
/// other thread can take it: the waiter is frozen). Thawed, the waiter
/// finds the GIL held by the same thread as before, but taken anew: its
/// interval starts again, and it asks no sooner than a whole interval
/// later. A waiter that compares who holds the GIL sees no change, finds
/// its first interval long over, and asks at once. Only a lower bound on
/// time: a right GIL never fails here, however slow the machine.
pub(super) fn a_retake_by_the_same_holder_restarts_the_interval() {
    let gil = NewGil::new(INTERVAL);
    let held = gil.acquire();
    thread::scope(|s| {
        let gil = &gil;
        let waiter = a_waiter_in_its_interval(s, gil);
        task::freeze(waiter);
        // A pause, not a deadline: the waiter's first interval is over.
        thread::sleep(INTERVAL);
        drop(held);
        let held = gil.acquire();
        let retaken = Instant::now();
        task::thaw();
        while !gil.drop_requested() {
            thread::yield_now();
        }
        let asked_after = retaken.elapsed();
        drop(held);
        assert!(
            asked_after >= INTERVAL,
            "the holder let go of the GIL and took it straight back; a \
             waiter that saw it held again asked for it {asked_after:?} \
             later, before a whole interval ({INTERVAL:?}) had passed: a \
             holder's own taking is a switch too, and starts the waiter's \
             interval again. Count the acquisitions (CPython's \
             switch_number) rather than compare who holds the GIL"
        );
    });
}
