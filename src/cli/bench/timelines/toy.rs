//! The toy GIL's own traces: a CPU-bound thread beside an I/O-bound one
//! under the old and the new GIL, and two CPU-bound threads under the new
//! one.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::{durations, median, ms, share};
use crate::gil::{EveryTicks, Gil, SwitchInterval};
use crate::trace::{Activity, Moment, Timeline};

/// The old GIL's check interval, as in the bench's convoy table.
const OLD_TICKS: u64 = 100;

/// Running spans of one thread closer than this, with no other thread
/// running between them, are drawn as one: the old GIL's release and
/// immediate retake every hundred ticks.
const JOIN_GAP: u64 = 50_000;

/// How long the I/O thread's "I/O" takes, with the GIL released.
const IO: Duration = Duration::from_millis(1);

/// Counts down with the GIL held, one tick per step, until `stop`.
fn cpu_bound(gil: &Gil, lane: usize, name: &str, stop: &AtomicBool) {
    gil.name_lane(lane, name);
    let mut held = gil.acquire();
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n = black_box(n).wrapping_add(1);
        held.tick();
    }
}

/// Takes the GIL, works a few ticks, releases it for 1 ms of "I/O", and
/// again, until `stop`.
fn io_bound(gil: &Gil, stop: &AtomicBool) {
    gil.name_lane(1, "I/O thread");
    while !stop.load(Ordering::Relaxed) {
        let mut held = gil.acquire();
        for _ in 0..10 {
            held.tick();
        }
        drop(held);
        thread::sleep(IO);
    }
}

/// Runs a CPU-bound thread (lane 0, holding the GIL first) beside
/// `second` (lane 1) for `length`; the GIL's timeline at the end.
fn record(
    gil: &Gil,
    title: &str,
    length: Duration,
    second: impl FnOnce(&Gil, &AtomicBool) + Send,
) -> Timeline {
    let stop = AtomicBool::new(false);
    let (holding, held) = mpsc::channel();
    let timeline = thread::scope(|s| {
        s.spawn(|| {
            gil.name_lane(0, "CPU thread");
            let mut guard = gil.acquire();
            let _ = holding.send(());
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                n = black_box(n).wrapping_add(1);
                guard.tick();
            }
        });
        // The CPU thread holds the GIL before the other one starts.
        let _ = held.recv();
        s.spawn(|| second(gil, &stop));
        thread::sleep(length);
        let timeline = gil.timeline(title);
        stop.store(true, Ordering::Relaxed);
        timeline
    });
    let mut timeline = timeline.expect("the GIL was traced");
    timeline.join_running(JOIN_GAP);
    timeline
}

/// The I/O thread's numbers: its waits (ns) and its CPU neighbour's share.
fn io_numbers(timeline: &Timeline) -> (Vec<u64>, f64) {
    (
        durations(timeline, 1, Activity::Waiting),
        share(timeline, 0),
    )
}

/// `toy_old_gil_io`: the old GIL releases every 100 ticks and takes it
/// straight back; the I/O thread, woken by each release, mostly finds it
/// taken again.
pub(super) fn old_gil_io(length: Duration) -> Timeline {
    let gil = Gil::with_policy(EveryTicks(OLD_TICKS)).traced();
    let title = format!(
        "Toy GIL, old style (release every {OLD_TICKS} ticks): a CPU-bound \
         thread and an I/O-bound thread"
    );
    let mut timeline = record(&gil, &title, length, io_bound);
    let (waits, cpu) = io_numbers(&timeline);
    let lost = gil.lost_races().get(1).copied().unwrap_or(0);
    let won = timeline.count(1, Moment::Handover);
    timeline.summary = format!(
        "Under the old GIL the I/O thread, back from 1 ms of I/O, took the \
         GIL from the CPU thread {won} times; it waited for the GIL {} \
         times ({} each, median; {} at most), and {lost} times it woke to a \
         release only to find the GIL taken back by the CPU thread, which \
         held it {cpu:.0} % of the time.",
        waits.len(),
        ms(median(&waits)),
        ms(waits.iter().copied().max().unwrap_or(0) as f64),
    );
    timeline
}

/// `toy_new_gil_io_5ms`, `toy_new_gil_io_1ms`: under the new GIL the I/O
/// thread waits one interval, asks, and gets the GIL: the convoy.
pub(super) fn new_gil_io(policy: SwitchInterval, length: Duration) -> Timeline {
    let interval = ms(policy.0.as_nanos() as f64);
    let gil = Gil::with_policy(policy).traced();
    let title = format!(
        "Toy GIL, new style ({interval} switch interval): a CPU-bound thread \
         and an I/O-bound thread"
    );
    let mut timeline = record(&gil, &title, length, io_bound);
    let (waits, cpu) = io_numbers(&timeline);
    timeline.summary = format!(
        "With a {interval} switch interval the I/O thread waited for the GIL \
         {} times after its 1 ms of I/O, {} each (median), asking the CPU \
         thread to drop it {} times, while the CPU thread held it {cpu:.0} % \
         of the time.",
        waits.len(),
        ms(median(&waits)),
        timeline.count(1, Moment::Request),
    );
    timeline
}

/// `toy_new_gil_cpu_5ms`: two CPU-bound threads take turns in slices of
/// one interval.
pub(super) fn new_gil_cpu(
    policy: SwitchInterval,
    length: Duration,
) -> Timeline {
    let interval = ms(policy.0.as_nanos() as f64);
    let gil = Gil::with_policy(policy).traced();
    let title = format!(
        "Toy GIL, new style ({interval} switch interval): two CPU-bound \
         threads"
    );
    let mut timeline =
        record(&gil, &title, length, |gil, stop: &AtomicBool| {
            cpu_bound(gil, 1, "CPU thread 2", stop);
        });
    timeline.lanes[0] = "CPU thread 1".into();
    let mut slices = durations(&timeline, 0, Activity::Running);
    slices.extend(durations(&timeline, 1, Activity::Running));
    let requests =
        timeline.count(0, Moment::Request) + timeline.count(1, Moment::Request);
    timeline.summary = format!(
        "Two CPU-bound threads under a {interval} switch interval took turns \
         in {} slices of {} each (median): each waited an interval, asked \
         the other to drop the GIL ({requests} requests in all) and got it.",
        slices.len(),
        ms(median(&slices)),
    );
    timeline
}
