//! tokio on one thread: a heartbeat task beside a computation that never
//! awaits, and beside the same computation moved to `spawn_blocking`.
//! Each task's future is wrapped in [`Timed`], which records every poll
//! as a running span; the heartbeat records, as a wait, each tick's lag
//! from when it was due to when it ran.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use super::{durations, median, ms};
use crate::cli::bench::results::Effort;
use crate::trace::{Activity, Span, Timeline};

/// The heartbeat's period.
const BEAT: Duration = Duration::from_millis(10);

/// How long the heartbeat beats alone before and after the computation.
const ALONE: Duration = Duration::from_millis(30);

/// How long the computation computes.
fn computation(effort: Effort) -> Duration {
    match effort {
        Effort::Full | Effort::Quick => Duration::from_millis(100),
        Effort::Smoke => Duration::from_millis(30),
    }
}

/// The spans of one recording, from one start.
#[derive(Debug)]
struct Log {
    start: Instant,
    spans: Mutex<Vec<Span>>,
}

impl Log {
    /// `instant` in ns since the start (0 before it).
    fn ns(&self, instant: Instant) -> u64 {
        let since = instant.saturating_duration_since(self.start);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Now, in ns since the start.
    fn now(&self) -> u64 {
        self.ns(Instant::now())
    }

    fn push(&self, lane: usize, start: u64, end: u64, activity: Activity) {
        let span = Span {
            lane,
            start,
            end: end.max(start),
            activity,
        };
        self.spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(span);
    }
}

/// A task's future, timed: each poll is a running span on `lane`.
struct Timed {
    lane: usize,
    log: Arc<Log>,
    inner: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Timed {
    fn new(
        lane: usize,
        log: &Arc<Log>,
        inner: impl Future<Output = ()> + Send + 'static,
    ) -> Timed {
        Timed {
            lane,
            log: Arc::clone(log),
            inner: Box::pin(inner),
        }
    }
}

impl Future for Timed {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let start = this.log.now();
        let polled = this.inner.as_mut().poll(cx);
        this.log
            .push(this.lane, start, this.log.now(), Activity::Running);
        polled
    }
}

/// Ticks every [`BEAT`] forever; each tick's lag behind its due time is a
/// waiting span on `lane`. A missed tick is delayed, not made up in a
/// burst, so that one starvation is one long wait.
async fn heartbeat(lane: usize, log: Arc<Log>) {
    let mut interval = tokio::time::interval(BEAT);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let due = log.ns(interval.tick().await.into_std());
        log.push(lane, due, log.now(), Activity::Waiting);
    }
}

/// Spins for `length` without awaiting.
fn compute(length: Duration) {
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < length {
        n = black_box(n).wrapping_add(1);
    }
}

/// Runs `main` on a current-thread runtime with the heartbeat (lane 0)
/// beside it; the timeline when `main` is done.
fn record<F: Future<Output = ()>>(
    title: &str,
    lanes: &[&str],
    main: impl FnOnce(Arc<Log>) -> F,
) -> Result<Timeline, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    let log = Arc::new(Log {
        start: Instant::now(),
        spans: Mutex::new(vec![]),
    });
    let length = runtime.block_on(async {
        let beating =
            tokio::spawn(Timed::new(0, &log, heartbeat(0, Arc::clone(&log))));
        tokio::time::sleep(ALONE).await;
        main(Arc::clone(&log)).await;
        tokio::time::sleep(ALONE).await;
        beating.abort();
        log.now()
    });
    let spans = std::mem::take(
        &mut *log.spans.lock().unwrap_or_else(|e| e.into_inner()),
    );
    Ok(Timeline {
        title: title.to_string(),
        lanes: lanes.iter().map(ToString::to_string).collect(),
        length,
        spans: spans.into_iter().filter(|s| s.start < length).collect(),
        marks: vec![],
        summary: String::new(),
    })
}

/// The heartbeat's ticks and waits: (how many, longest, median), in ns.
fn beats(timeline: &Timeline) -> (usize, u64, f64) {
    let waits = durations(timeline, 0, Activity::Waiting);
    let longest = waits.iter().copied().max().unwrap_or(0);
    (waits.len(), longest, median(&waits))
}

/// `tokio_starved`: the computation runs in one poll of its task, and the
/// heartbeat, on the same thread, waits for it to end.
pub(super) fn starved(effort: Effort) -> Result<Timeline, String> {
    let work = computation(effort);
    let title = format!(
        "tokio, current thread: a heartbeat every 10 ms beside a task that \
         computes for {} without awaiting",
        ms(work.as_nanos() as f64)
    );
    let mut timeline =
        record(&title, &["heartbeat", "computation"], |log| async move {
            let computing = Timed::new(1, &log, async move { compute(work) });
            let _ = tokio::spawn(computing).await;
        })?;
    let (ticks, longest, typical) = beats(&timeline);
    let polls = durations(&timeline, 1, Activity::Running);
    let due = (timeline.spans.iter())
        .filter(|s| s.lane == 0 && s.activity == Activity::Waiting)
        .max_by_key(|s| s.end - s.start)
        .map_or(0, |s| s.start);
    timeline.summary = format!(
        "The computation ran {} in {} poll without awaiting; the heartbeat, \
         due every 10 ms on the same thread, ran its tick due at {} only \
         once the computation had ended, {} late, and the ticks due \
         meanwhile never came (its interval is set to \
         `MissedTickBehavior::Delay`, which delays after a late tick, where \
         tokio's default, `Burst`, would catch up); its {ticks} ticks ran {} \
         late (median).",
        ms(polls.iter().copied().max().unwrap_or(0) as f64),
        polls.len(),
        ms(due as f64),
        ms(longest as f64),
        ms(typical),
    );
    Ok(timeline)
}

/// `tokio_spawn_blocking`: the same computation on tokio's blocking pool;
/// the heartbeat keeps its beat.
pub(super) fn spawn_blocking(effort: Effort) -> Result<Timeline, String> {
    let work = computation(effort);
    let title = format!(
        "tokio, current thread: a heartbeat every 10 ms beside a task that \
         awaits a {} computation in spawn_blocking",
        ms(work.as_nanos() as f64)
    );
    let lanes = ["heartbeat", "awaiting task", "blocking thread"];
    let mut timeline = record(&title, &lanes, |log| async move {
        let blocking_log = Arc::clone(&log);
        let awaiting = Timed::new(1, &log, async move {
            let _ = tokio::task::spawn_blocking(move || {
                let start = blocking_log.now();
                compute(work);
                blocking_log.push(
                    2,
                    start,
                    blocking_log.now(),
                    Activity::Running,
                );
            })
            .await;
        });
        let _ = tokio::spawn(awaiting).await;
    })?;
    let (ticks, longest, typical) = beats(&timeline);
    timeline.summary = format!(
        "With the computation on a blocking thread ({} there), the awaiting \
         task was polled {} times for {} in all, and the heartbeat ticked \
         {ticks} times, each at most {} late ({} median: tokio's timers \
         count in whole milliseconds).",
        ms(timeline.total(2, Activity::Running) as f64),
        durations(&timeline, 1, Activity::Running).len(),
        ms(timeline.total(1, Activity::Running) as f64),
        ms(longest as f64),
        ms(typical),
    );
    Ok(timeline)
}
