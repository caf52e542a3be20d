//! The timelines of the GIL story, recorded on this machine: who ran when,
//! one lane per thread or task. `course trace <name>` prints one as text;
//! `course bench --write` records them all and writes them as JSON into
//! the Measurements appendix, where the book draws them.
//!
//! Three kinds of recording: the toy GIL traces itself exactly
//! ([`crate::gil::Gil::traced`]); CPython and plain Rust threads are
//! inferred from timestamps each thread takes as it runs (`sampled`);
//! tokio tasks are timed by a wrapper around each task's future
//! (`tasks`).

mod sampled;
mod tasks;
mod toy;

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::results::Effort;
use crate::trace::{Activity, Timeline};

/// Every timeline, in the order `course trace` lists them.
pub const NAMES: &[&str] = &[
    "toy_old_gil_io",
    "toy_new_gil_io_5ms",
    "toy_new_gil_io_1ms",
    "toy_new_gil_cpu_5ms",
    "python_two_cpu",
    "python_cpu_and_io",
    "rust_two_cpu",
    "tokio_starved",
    "tokio_spawn_blocking",
];

/// Where `course bench --write` puts the timelines, one JSON file each.
pub const TIMELINES: &str = "chapters/appendix/measurements/timelines";

/// How long the thread recordings last: tens of milliseconds.
fn length(effort: Effort) -> Duration {
    match effort {
        Effort::Full | Effort::Quick => Duration::from_millis(60),
        Effort::Smoke => Duration::from_millis(20),
    }
}

/// Records the timeline called `name` now, or says why it cannot (an
/// unknown name, no `python3`).
pub fn record(name: &str, effort: Effort) -> Result<Timeline, String> {
    let length = length(effort);
    let interval = |ms| crate::gil::SwitchInterval(Duration::from_millis(ms));
    match name {
        "toy_old_gil_io" => Ok(toy::old_gil_io(length)),
        "toy_new_gil_io_5ms" => Ok(toy::new_gil_io(interval(5), length)),
        "toy_new_gil_io_1ms" => Ok(toy::new_gil_io(interval(1), length)),
        "toy_new_gil_cpu_5ms" => Ok(toy::new_gil_cpu(interval(5), length)),
        "python_two_cpu" => sampled::python(sampled::Second::Cpu, length),
        "python_cpu_and_io" => sampled::python(sampled::Second::Io, length),
        "rust_two_cpu" => Ok(sampled::rust_two_cpu(length)),
        "tokio_starved" => tasks::starved(effort),
        "tokio_spawn_blocking" => tasks::spawn_blocking(effort),
        _ => Err(format!(
            "no timeline called {name:?}; the timelines are: {}",
            NAMES.join(", ")
        )),
    }
}

/// Records every timeline, one after the other; one that cannot be
/// recorded (no `python3`) is left out, with a word on standard error.
pub fn record_all(effort: Effort) -> Vec<(String, Timeline)> {
    let mut all = vec![];
    for name in NAMES {
        match record(name, effort) {
            Ok(timeline) => all.push((name.to_string(), timeline)),
            Err(why) => eprintln!("timeline {name} not recorded: {why}"),
        }
    }
    all
}

/// Writes each timeline as `<name>.json` (pretty) into `dir`.
pub fn write_json(
    dir: &Path,
    traces: &[(String, Timeline)],
) -> Result<(), String> {
    fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, timeline) in traces {
        let file = dir.join(format!("{name}.json"));
        let text = serde_json::to_string_pretty(timeline)
            .map_err(|e| format!("{name}: {e}"))?;
        fs::write(&file, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    }
    Ok(())
}

/// Writes the timelines into the book's Measurements appendix
/// ([`TIMELINES`] under `root`).
pub fn write_traces(
    root: &Path,
    traces: &[(String, Timeline)],
) -> Result<(), String> {
    write_json(&root.join(TIMELINES), traces)?;
    eprintln!("wrote {} timelines into {TIMELINES}", traces.len());
    Ok(())
}

/// `course trace`: without a name, the list of names; with one, that
/// timeline recorded now, as text lanes `columns` wide. With `json_dir`,
/// records the named timeline (or all of them) and writes them there as
/// JSON instead.
pub fn trace(
    name: Option<&str>,
    json_dir: Option<&Path>,
    columns: usize,
) -> Result<String, String> {
    let effort = Effort::Full;
    if let Some(dir) = json_dir {
        let traces = match name {
            Some(name) => vec![(name.to_string(), record(name, effort)?)],
            None => record_all(effort),
        };
        write_json(dir, &traces)?;
        let names: Vec<&str> = traces.iter().map(|(n, _)| n.as_str()).collect();
        return Ok(format!(
            "wrote {} into {}\n",
            names.join(", "),
            dir.display()
        ));
    }
    match name {
        None => Ok(format!(
            "The timelines (`course trace <name>` records one and prints \
             it):\n{}\n",
            NAMES.join("\n")
        )),
        Some(name) => Ok(record(name, effort)?.text(columns)),
    }
}

/// Nanoseconds as milliseconds, `4.9 ms`, or, below a tenth of one, as
/// microseconds, `40 µs`, so that a short wait does not read as none.
fn ms(ns: f64) -> String {
    if ns < 100_000.0 {
        format!("{:.0} µs", ns / 1e3)
    } else {
        format!("{:.1} ms", ns / 1e6)
    }
}

/// The median (the lower middle) of some durations in ns; 0 when none.
fn median(values: &[u64]) -> f64 {
    let values: Vec<f64> = values.iter().map(|&ns| ns as f64).collect();
    // The bench's own median; it is NaN for no values, which `max` drops.
    super::measure::median(&values).max(0.0)
}

/// The durations of `lane`'s spans doing `activity`, in ns, in order.
fn durations(timeline: &Timeline, lane: usize, activity: Activity) -> Vec<u64> {
    let mut spans: Vec<_> = (timeline.spans.iter())
        .filter(|s| s.lane == lane && s.activity == activity)
        .collect();
    spans.sort_by_key(|s| s.start);
    spans.iter().map(|s| s.end - s.start).collect()
}

/// The share of the recording that `lane` spent running, in percent.
fn share(timeline: &Timeline, lane: usize) -> f64 {
    timeline.total(lane, Activity::Running) as f64 * 100.0
        / timeline.length.max(1) as f64
}

#[cfg(test)]
mod tests;
