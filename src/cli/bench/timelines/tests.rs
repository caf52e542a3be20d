//! Each recorder's structure on a real, short recording: lanes, spans and
//! marks that any run has, never how long anything took.

use super::*;
use crate::trace::Moment;

/// Records `name` with the smoke effort.
fn smoke(name: &str) -> Timeline {
    record(name, Effort::Smoke).unwrap_or_else(|why| panic!("{name}: {why}"))
}

/// Whether `python3` runs here; says so when it does not.
fn have_python() -> bool {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: no python3 on PATH");
    }
    found
}

/// Every span lies within the recording, on a lane that exists.
fn well_formed(timeline: &Timeline) {
    for span in &timeline.spans {
        assert!(span.lane < timeline.lanes.len(), "{span:?}");
        assert!(span.start <= span.end, "{span:?}");
        assert!(span.end <= timeline.length, "{span:?}");
    }
    for mark in &timeline.marks {
        assert!(mark.lane < timeline.lanes.len(), "{mark:?}");
    }
    assert!(!timeline.summary.is_empty());
}

#[test]
fn an_unknown_name_lists_the_names() {
    let why = record("nope", Effort::Smoke).unwrap_err();
    assert!(
        why.contains("nope") && why.contains("tokio_starved"),
        "{why}"
    );
}

#[test]
fn the_old_gil_hands_the_io_thread_the_gil() {
    let timeline = smoke("toy_old_gil_io");
    well_formed(&timeline);
    assert_eq!(timeline.lanes, ["CPU thread", "I/O thread"]);
    assert!(timeline.count(1, Moment::Handover) >= 1);
    assert!(timeline.total(0, Activity::Running) > 0);
    assert!(timeline.summary.contains("woke to a release"));
}

#[test]
fn the_new_gil_io_thread_asks_for_the_gil() {
    let timeline = smoke("toy_new_gil_io_1ms");
    well_formed(&timeline);
    assert_eq!(timeline.lanes, ["CPU thread", "I/O thread"]);
    // The CPU thread never lets go on its own: each time the I/O thread
    // got the GIL, it asked for it first.
    let handovers = timeline.count(1, Moment::Handover);
    assert!(handovers >= 1);
    assert!(timeline.count(1, Moment::Request) >= handovers);
    assert_eq!(timeline.count(0, Moment::Request), 0);
}

#[test]
fn two_cpu_threads_under_the_new_gil_take_turns() {
    let timeline = smoke("toy_new_gil_cpu_5ms");
    well_formed(&timeline);
    assert_eq!(timeline.lanes, ["CPU thread 1", "CPU thread 2"]);
    assert!(timeline.total(0, Activity::Running) > 0);
    assert!(timeline.count(1, Moment::Request) >= 1);
}

#[test]
fn two_rust_threads_both_run() {
    let timeline = smoke("rust_two_cpu");
    well_formed(&timeline);
    assert_eq!(timeline.lanes.len(), 2);
    for lane in 0..2 {
        assert!(timeline.total(lane, Activity::Running) > 0);
    }
}

#[test]
fn python_threads_are_inferred_and_say_so() {
    if !have_python() {
        return;
    }
    for name in ["python_two_cpu", "python_cpu_and_io"] {
        let timeline = smoke(name);
        well_formed(&timeline);
        assert_eq!(timeline.lanes.len(), 2, "{name}");
        assert!(timeline.total(0, Activity::Running) > 0, "{name}");
        assert!(timeline.summary.contains("inferred"), "{name}");
        assert!(timeline.title.starts_with("Python 3"), "{name}");
    }
}

#[test]
fn a_starved_heartbeat_waits_for_the_computation() {
    let timeline = smoke("tokio_starved");
    well_formed(&timeline);
    assert_eq!(timeline.lanes, ["heartbeat", "computation"]);
    // The computation never awaits: one poll.
    let polls = durations(&timeline, 1, Activity::Running);
    assert_eq!(polls.len(), 1);
    // The heartbeat was due during it, so one of its waits covers the
    // poll's end.
    let poll = (timeline.spans.iter())
        .find(|s| s.lane == 1)
        .copied()
        .unwrap();
    assert!(timeline.spans.iter().any(|s| s.lane == 0
        && s.activity == Activity::Waiting
        && s.start <= poll.end
        && s.end >= poll.end));
}

#[test]
fn spawn_blocking_runs_the_computation_off_the_runtime() {
    let timeline = smoke("tokio_spawn_blocking");
    well_formed(&timeline);
    assert_eq!(timeline.lanes.len(), 3);
    assert_eq!(durations(&timeline, 2, Activity::Running).len(), 1);
    assert!(timeline.total(0, Activity::Running) > 0);
}

#[test]
fn traces_are_written_as_json_that_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let timeline = smoke("toy_new_gil_cpu_5ms");
    let traces = vec![("toy_new_gil_cpu_5ms".to_string(), timeline)];
    write_traces(dir.path(), &traces).unwrap();
    let file = dir.path().join(TIMELINES).join("toy_new_gil_cpu_5ms.json");
    let text = fs::read_to_string(file).unwrap();
    let back: Timeline = serde_json::from_str(&text).unwrap();
    assert_eq!(back, traces[0].1);
}
