//! A GIL whose interval is longer than a `u64` count of microseconds can
//! hold: its waiters never ask.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use exercises::ch06_fairness::NewGil;

use course::grader::task;

/// How long the waiter must be seen asleep in one wait, without waking,
/// before the trial calls its wait a long one: far longer than any wait
/// with a deadline already past lasts, however loaded the machine (the
/// kernel ends such a wait from its timer interrupt, a few microseconds
/// after the deadline, and the thread's turn on a CPU is no part of its
/// sleep).
const ONE_LONG_SLEEP: Duration = Duration::from_millis(200);

/// A waiter with an interval of 2^64 µs (some 585,000 years) sleeps behind
/// the holder and never asks. An interval kept as a `u64` count of
/// microseconds (`as_micros() as u64`) wraps around to 0 there, and the
/// waiter asks as soon as its first wait ends. The trial watches the waiter
/// until it asks (wrong), or until it has slept [`ONE_LONG_SLEEP`] in one
/// and the same wait (`/proc` counts no new sleep, and it is asleep at both
/// looks), which a waiter with a zero interval never does; then it must
/// not have asked.
pub(super) fn keeps_an_interval_beyond_a_u64_of_microseconds() {
    let interval = Duration::from_micros(u64::MAX) + Duration::from_micros(1);
    let gil = NewGil::new(interval);
    let held = gil.acquire();
    let asked = thread::scope(|s| {
        let (tell, told) = mpsc::channel();
        let gil = &gil;
        s.spawn(move || {
            tell.send(task::me()).unwrap();
            drop(gil.acquire());
        });
        let waiter = told.recv().unwrap();
        while gil.waiting() == 0 {
            thread::yield_now();
        }
        // The start of the current sleep, if the waiter is asleep: when it
        // was first seen so, and how many sleeps `/proc` had counted.
        let mut sleep: Option<(Instant, u64)> = None;
        let asked = loop {
            if gil.drop_requested() {
                break true;
            }
            let count = task::sleeps(waiter.tid);
            let now = Instant::now();
            let asleep = task::asleep(waiter.tid);
            // The count read again: a sleep that began between the two
            // reads starts the watch afresh.
            let same = task::sleeps(waiter.tid) == count;
            sleep = match sleep {
                Some((since, seen)) if asleep && same && seen == count => {
                    if now - since >= ONE_LONG_SLEEP {
                        break gil.drop_requested();
                    }
                    Some((since, seen))
                }
                _ if asleep && same => Some((now, count)),
                _ => None,
            };
            thread::sleep(Duration::from_millis(1));
        };
        drop(held);
        asked
    });
    assert!(
        !asked,
        "a waiter asked for the GIL though its interval was 2^64 µs (some \
         585,000 years): the interval was cut short. Keep it as the \
         Duration it was given; a count of microseconds in a u64 wraps \
         around to 0 there, and the waiter asks at once"
    );
}
