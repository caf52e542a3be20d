//! Timelines inferred from timestamps: each thread, as it runs, notes the
//! time every so many loop iterations. Where a thread's consecutive
//! timestamps are close, it ran; a gap much longer than its usual one
//! means it did not run then (in CPython: it did not hold the GIL; in
//! Rust: it was off its core). CPython's threads and plain Rust threads
//! are recorded the same way, so that their pictures compare.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{durations, median, ms, share};
use crate::cli::bench::measure::{self, python_version};
use crate::trace::{Activity, Span, Timeline};

/// Python loop iterations between two timestamps.
const PY_EVERY: u64 = 200;

/// Rust loop iterations between two timestamps.
const RUST_EVERY: u64 = 20_000;

/// A gap this many times a lane's median gap means the lane did not run.
const GAP_FACTOR: u64 = 10;

/// ... and never a gap shorter than this (ns).
const MIN_GAP: u64 = 50_000;

/// The second Python thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Second {
    /// CPU-bound, like the first.
    Cpu,
    /// I/O-bound: sleeps 1 ms, again and again.
    Io,
}

/// Two threads, the first CPU-bound, the second CPU- or I/O-bound, each
/// noting `perf_counter_ns()` (from a common start) as it runs; printed
/// as JSON.
const SCRIPT: &str = r#"
import json, sys, threading, time

length, every, second = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
now = time.perf_counter_ns
t0 = now()
end = t0 + length

def cpu(out):
    i = 0
    while True:
        i += 1
        if i % every == 0:
            t = now()
            out.append(t - t0)
            if t >= end:
                break

def io(out):
    while True:
        before = now()
        time.sleep(0.001)
        after = now()
        sum(range(100))
        out.append([before - t0, after - t0])
        if after >= end:
            break

lanes = [[], []]
threads = [threading.Thread(target=cpu, args=(lanes[0],)),
           threading.Thread(target=cpu if second == "cpu" else io,
                            args=(lanes[1],))]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"interval": sys.getswitchinterval(), "lanes": lanes}))
"#;

/// What [`SCRIPT`] prints.
#[derive(Debug, Deserialize)]
struct Recorded {
    /// `sys.getswitchinterval()`, in seconds.
    interval: f64,
    /// The CPU-bound thread's timestamps, then the second thread's:
    /// timestamps too, or (before, after) each sleep.
    lanes: (Vec<u64>, serde_json::Value),
}

/// Spans inferred from one lane's timestamps: running through each run
/// of close timestamps, waiting over each long gap. Also the threshold
/// that told them apart.
fn infer(lane: usize, stamps: &[u64]) -> (Vec<Span>, u64) {
    let gaps: Vec<u64> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    let threshold = (median(&gaps) as u64 * GAP_FACTOR).max(MIN_GAP);
    let mut spans = vec![];
    let Some(&first) = stamps.first() else {
        return (spans, threshold);
    };
    let mut run_start = first;
    for pair in stamps.windows(2) {
        if pair[1] - pair[0] > threshold {
            let span = |start, end, activity| Span {
                lane,
                start,
                end,
                activity,
            };
            spans.push(span(run_start, pair[0], Activity::Running));
            spans.push(span(pair[0], pair[1], Activity::Waiting));
            run_start = pair[1];
        }
    }
    let last = stamps.last().copied().unwrap_or(first);
    spans.push(Span {
        lane,
        start: run_start,
        end: last,
        activity: Activity::Running,
    });
    (spans, threshold)
}

/// The I/O thread's spans: running from each wake-up to the next sleep;
/// waiting (inferred) from where its 1 ms sleep should have ended to its
/// wake-up, when later.
fn infer_io(lane: usize, trips: &[(u64, u64)]) -> Vec<Span> {
    let mut spans = vec![];
    for (i, &(before, after)) in trips.iter().enumerate() {
        let due = before + 1_000_000;
        if after > due {
            spans.push(Span {
                lane,
                start: due,
                end: after,
                activity: Activity::Waiting,
            });
        }
        if let Some(&(next, _)) = trips.get(i + 1) {
            spans.push(Span {
                lane,
                start: after,
                end: next.max(after),
                activity: Activity::Running,
            });
        }
    }
    spans
}

/// `python_two_cpu` and `python_cpu_and_io`: CPython's real GIL.
pub(super) fn python(
    second: Second,
    length: Duration,
) -> Result<Timeline, String> {
    let version = python_version()?;
    let args = [
        length.as_nanos().to_string(),
        PY_EVERY.to_string(),
        match second {
            Second::Cpu => "cpu".into(),
            Second::Io => "io".into(),
        },
    ];
    let printed = measure::python(SCRIPT, &args)?;
    let recorded: Recorded = serde_json::from_str(printed.trim())
        .map_err(|e| format!("python3 printed no timeline: {e}"))?;
    let (first, threshold) = infer(0, &recorded.lanes.0);
    let mut spans = first;
    let interval = ms(recorded.interval * 1e9);
    let (lanes, title, waits_on);
    match second {
        Second::Cpu => {
            let stamps: Vec<u64> = serde_json::from_value(recorded.lanes.1)
                .map_err(|e| format!("python3's second lane: {e}"))?;
            spans.extend(infer(1, &stamps).0);
            lanes = vec!["CPU thread 1".to_string(), "CPU thread 2".into()];
            title = format!("{version}: two CPU-bound threads");
            waits_on = 0;
        }
        Second::Io => {
            let trips: Vec<(u64, u64)> =
                serde_json::from_value(recorded.lanes.1)
                    .map_err(|e| format!("python3's second lane: {e}"))?;
            spans.extend(infer_io(1, &trips));
            lanes = vec!["CPU thread".to_string(), "I/O thread".into()];
            title = format!(
                "{version}: a CPU-bound thread and an I/O-bound thread"
            );
            waits_on = 1;
        }
    }
    let length = spans.iter().map(|s| s.end).max().unwrap_or(0);
    let mut timeline = Timeline {
        title,
        lanes,
        length,
        spans,
        marks: vec![],
        summary: String::new(),
    };
    let waits = durations(&timeline, waits_on, Activity::Waiting);
    let gap = ms(threshold as f64);
    timeline.summary = match second {
        Second::Cpu => format!(
            "In {version} (switch interval {interval}) the two CPU-bound \
             threads ran {:.0} % and {:.0} % of the time and took {} and {} \
             turns (inferred from timestamps each thread took every \
             {PY_EVERY} loop iterations: a gap over {gap} counts as not \
             running, almost always for want of the GIL).",
            share(&timeline, 0),
            share(&timeline, 1),
            turns(&timeline, 0),
            turns(&timeline, 1),
        ),
        Second::Io => format!(
            "In {version} (switch interval {interval}) the I/O thread's 1 ms \
             sleeps overran {} times by {} each (median): its wait for the \
             GIL, while the CPU thread ran {:.0} % of the time (inferred: the \
             CPU thread's lane from timestamps it took every {PY_EVERY} loop \
             iterations, a gap over {gap} counting as not running; the I/O \
             thread's waits from how far each sleep overran 1 ms).",
            waits.len(),
            ms(median(&waits)),
            share(&timeline, 0),
        ),
    };
    Ok(timeline)
}

/// How many turns `lane` took: its running spans that began after another
/// lane's (a pause with nobody else running is no new turn).
fn turns(timeline: &Timeline, lane: usize) -> usize {
    let mut running: Vec<&Span> = (timeline.spans.iter())
        .filter(|s| s.activity == Activity::Running)
        .collect();
    running.sort_by_key(|s| s.start);
    let mut previous = None;
    let mut turns = 0;
    for span in running {
        if span.lane == lane && previous != Some(lane) {
            turns += 1;
        }
        previous = Some(span.lane);
    }
    turns
}

/// One Rust thread's loop: the same shape as the Python one, timestamps
/// every [`RUST_EVERY`] iterations until `end`.
fn rust_cpu(start: Instant, end: Duration) -> Vec<u64> {
    let mut stamps = vec![];
    let mut i: u64 = 0;
    loop {
        i = black_box(i) + 1;
        if i.is_multiple_of(RUST_EVERY) {
            let t = start.elapsed();
            stamps.push(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
            if t >= end {
                return stamps;
            }
        }
    }
}

/// `rust_two_cpu`: two Rust threads, no lock, the same loop.
pub(super) fn rust_two_cpu(length: Duration) -> Timeline {
    let start = Instant::now();
    let lanes: Vec<Vec<u64>> = thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|_| s.spawn(move || rust_cpu(start, length)))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_default())
            .collect()
    });
    let mut spans = vec![];
    let mut threshold = 0;
    for (lane, stamps) in lanes.iter().enumerate() {
        let (inferred, t) = infer(lane, stamps);
        // No lock to wait for: time off the core is a gap, not a wait.
        spans.extend(
            inferred
                .into_iter()
                .filter(|s| s.activity == Activity::Running),
        );
        threshold = threshold.max(t);
    }
    let length = spans.iter().map(|s| s.end).max().unwrap_or(0);
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let mut timeline = Timeline {
        title: "Rust: two CPU-bound threads, no lock".into(),
        lanes: vec!["thread 1".into(), "thread 2".into()],
        length,
        spans,
        marks: vec![],
        summary: String::new(),
    };
    timeline.summary = format!(
        "Two Rust threads with no lock between them ran {:.0} % and {:.0} % \
         of the time on this machine's {cores} cores, at once wherever both \
         lanes are busy; a gap is the OS running something else (inferred \
         as for Python, from timestamps every {RUST_EVERY} loop iterations, \
         a gap over {} counting as off the core).",
        share(&timeline, 0),
        share(&timeline, 1),
        ms(threshold as f64),
    );
    timeline
}
