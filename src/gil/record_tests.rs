//! The traced GIL's recordings, on threads ordered by channels and by
//! the GIL itself (never by how long something took).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::{Gil, SwitchInterval};
use crate::trace::{Activity, Moment, Span, Timeline};

/// The spans of `lane` doing `activity`, in order.
fn spans(timeline: &Timeline, lane: usize, activity: Activity) -> Vec<Span> {
    let mut spans: Vec<Span> = (timeline.spans.iter())
        .filter(|s| s.lane == lane && s.activity == activity)
        .copied()
        .collect();
    spans.sort_by_key(|s| s.start);
    spans
}

/// Blocks until some thread is blocked in `acquire`.
fn until_someone_waits(gil: &Gil) {
    while gil.waiting() == 0 {
        thread::yield_now();
    }
}

#[test]
fn an_untraced_gil_records_nothing() {
    let gil = Gil::new();
    gil.name_lane(0, "main");
    drop(gil.acquire());
    assert_eq!(gil.timeline("untraced"), None);
    assert!(gil.lost_races().is_empty());
}

/// B waits while A holds the GIL; its wait ends where its run starts,
/// with a hand-over mark there.
#[test]
fn a_waiting_thread_takes_over_where_its_wait_ends() {
    let gil = Gil::new().traced();
    gil.name_lane(0, "A");
    let held = gil.acquire();
    thread::scope(|s| {
        s.spawn(|| {
            gil.name_lane(1, "B");
            drop(gil.acquire());
        });
        until_someone_waits(&gil);
        drop(held);
    });
    let timeline = gil.timeline("two threads").unwrap();
    assert_eq!(timeline.lanes, ["A", "B"]);
    let a = spans(&timeline, 0, Activity::Running);
    let b_wait = spans(&timeline, 1, Activity::Waiting);
    let b_run = spans(&timeline, 1, Activity::Running);
    assert_eq!((a.len(), b_wait.len(), b_run.len()), (1, 1, 1));
    assert!(spans(&timeline, 0, Activity::Waiting).is_empty());
    assert!(b_wait[0].start <= a[0].end, "B waited while A held it");
    assert!(a[0].end <= b_wait[0].end);
    assert_eq!(b_wait[0].end, b_run[0].start);
    assert_eq!(timeline.count(0, Moment::Handover), 0);
    assert_eq!(timeline.count(1, Moment::Handover), 1);
    assert_eq!(timeline.marks[0].at, b_run[0].start);
    assert!(b_run[0].end <= timeline.length);
}

/// Under the new GIL the waiting thread asks (a request mark on its
/// lane), the ticking holder hands over and waits in turn, and takes the
/// GIL back when the other is done.
#[test]
fn a_drop_request_is_marked_on_the_asking_lane() {
    let gil =
        Gil::with_policy(SwitchInterval(Duration::from_millis(1))).traced();
    let served = AtomicBool::new(false);
    gil.name_lane(0, "holder");
    let mut held = gil.acquire();
    thread::scope(|s| {
        s.spawn(|| {
            gil.name_lane(1, "asker");
            let _held = gil.acquire();
            served.store(true, Ordering::SeqCst);
        });
        // The holder ticks until the asker has run: only a hand-over
        // lets it, after a request.
        while !served.load(Ordering::SeqCst) {
            held.tick();
        }
        drop(held);
    });
    let timeline = gil.timeline("request").unwrap();
    assert_eq!(timeline.count(1, Moment::Request), 1);
    assert_eq!(timeline.count(0, Moment::Request), 0);
    assert_eq!(timeline.count(1, Moment::Handover), 1);
    assert_eq!(timeline.count(0, Moment::Handover), 1, "took it back");
    let request = timeline.marks.iter().find(|m| m.moment == Moment::Request);
    let asker_wait = spans(&timeline, 1, Activity::Waiting);
    assert_eq!(asker_wait.len(), 1);
    let at = request.unwrap().at;
    assert!(asker_wait[0].start <= at && at <= asker_wait[0].end);
    let holder_runs = spans(&timeline, 0, Activity::Running);
    let holder_wait = spans(&timeline, 0, Activity::Waiting);
    assert_eq!((holder_runs.len(), holder_wait.len()), (2, 1));
    assert!(holder_runs[0].end <= holder_wait[0].start, "forced off");
    assert_eq!(holder_wait[0].end, holder_runs[1].start);
    let asker_run = spans(&timeline, 1, Activity::Running);
    assert!(asker_run[0].end <= holder_runs[1].start);
}

/// Threads that name no lane get one each, in order of first appearance,
/// the first free lane first.
#[test]
fn unnamed_threads_get_lanes_in_order() {
    let gil = Gil::new().traced();
    gil.name_lane(1, "second");
    drop(gil.acquire());
    let (first, done) = mpsc::channel();
    thread::scope(|s| {
        s.spawn(|| {
            drop(gil.acquire());
            first.send(()).unwrap();
        });
        done.recv().unwrap();
        s.spawn(|| drop(gil.acquire()));
    });
    let timeline = gil.timeline("lanes").unwrap();
    assert_eq!(timeline.lanes, ["thread 1", "second", "thread 3"]);
    for lane in 0..3 {
        assert_eq!(spans(&timeline, lane, Activity::Running).len(), 1);
    }
    assert_eq!(timeline.count(2, Moment::Handover), 1);
}
