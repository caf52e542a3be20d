//! `course bench --write`: puts a run's figures into the book.
//!
//! - `chapters/appendix/measurements.md`: the Measurements appendix, with
//!   the tables and three SVG charts (`measurements/*.svg`, drawn with
//!   plotters; chapter 9's in `python_calls_rust`);
//! - `chapters/appendix/measurements/figures.md`: short sentences between
//!   `ANCHOR` markers, which the chapters quote with mdBook's
//!   `{{#include ...:anchor}}`, so no figure in the prose is typed by hand.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use plotters::prelude::*;

mod counting;
mod python_calls_rust;

use super::report::{grouped, markdown};
use super::results::{Convoy, Latency, Lock, Results};

/// The appendix page, relative to the repository.
pub(crate) const PAGE: &str = "chapters/appendix/measurements.md";
/// The quotable sentences.
pub(crate) const FIGURES: &str = "chapters/appendix/measurements/figures.md";

/// Writes the appendix, the figures and the charts.
pub(crate) fn write(root: &Path, results: &Results) -> Result<(), String> {
    let dir = root.join("chapters/appendix/measurements");
    fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let put = |file: &Path, text: String| {
        fs::write(file, text)
            .map_err(|e| format!("cannot write {}: {e}", file.display()))
    };
    countdown_chart(&dir.join("countdown.svg"), results)?;
    convoy_chart(&dir.join("convoy.svg"), results)?;
    python_calls_rust::chart(&dir.join(python_calls_rust::CHART), results)?;
    put(&root.join(FIGURES), figures(results))?;
    put(&root.join(PAGE), page(results))?;
    super::timelines::write_traces(
        root,
        &super::timelines::record_all(results.effort),
    )?;
    // The timelines' pictures and captions, from the recordings just
    // written.
    super::timeline_svg::draw_timelines(root)?;
    eprintln!("wrote {PAGE}, {FIGURES}, three charts and the timelines");
    Ok(())
}

/// The Measurements appendix: how the run measured, then its tables and
/// charts under a `## Results` heading (the tables' own headings are
/// `###`, and a page's headings must not skip a level).
fn page(results: &Results) -> String {
    format!(
        "# Measurements\n\n\
         The notes make claims about speed; this page measures them. \
         `cargo course bench` (under a minute; `--quick`, about ten seconds) \
         runs every comparison on your machine and prints these tables; \
         `cargo course bench --write` puts them here, and where a chapter \
         quotes a figure it quotes a sentence this command writes, so those \
         figures all come from one run. The run below is the book's \
         reference.\n\n\
         How. Each countdown is sized so that one thread, in a fresh \
         process, takes at least half a second; the countdowns and the \
         transfer are {pairs} interleaved pairs (A, B, A, B, ...), reported \
         as the median of the pairs' ratios, so a machine that slows down \
         for a while slows both sides of a pair alike; the time in brackets \
         is the median of the B runs, so it need not equal the ratio times \
         the A time. Python's pairs run \
         one after the other in one interpreter, warmed up first, where \
         counting goes faster than in a fresh one. Convoy rows give percentiles of {trips} round \
         trips in two interleaved halves: p50 is the median, and nine trips \
         in ten were faster than p90. Creation costs are the median of three \
         rounds; memory is one sample. The toy GIL is `course::gil` \
         (chapters 3 and 6), and one of its ticks is one countdown step. \
         Python is whatever `python3` is on your PATH; its processes are \
         started with `fork`, whatever the version. Python threads calling \
         Rust run in CPython embedded in a fresh `course bench-worker` \
         process (the Python that `PYO3_PYTHON` names, or `python3`, found \
         when this program was built), where Python itself times one \
         thread against two, in {pairs} interleaved pairs.\n\n\
         ## Results\n\n\
         {}\n\
         ![Countdown ratios](measurements/countdown.svg)\n\n\
         ![Convoy round trips](measurements/convoy.svg)\n\n\
         ![Python threads calling Rust](measurements/{chart})\n",
        markdown(results),
        pairs = results.effort.budget().pairs,
        trips = results.effort.budget().trips,
        chart = python_calls_rust::CHART,
    )
}

/// Three significant figures: 21.5, 0.255, 1.10.
fn sig3(value: f64) -> String {
    if !value.is_finite() || value == 0.0 {
        return format!("{value}");
    }
    let decimals = (2 - value.abs().log10().floor() as i32).max(0) as usize;
    format!("{value:.decimals$}")
}

/// The sentences the chapters quote, each between its anchors.
fn figures(results: &Results) -> String {
    let mut anchors = Anchors(String::from(
        "<!-- Written by `cargo course bench --write`; the chapters include \
         these sentences by anchor. Do not edit by hand. -->\n\n",
    ));
    anchors.put("machine", results.machine.describe());
    python_countdown(&mut anchors, results);
    rust_countdown(&mut anchors, results);
    python_calls_rust::anchors(&mut anchors, results);
    convoy(&mut anchors, results);
    counting::anchors(&mut anchors, results);
    costs(&mut anchors, results);
    anchors.0
}

/// The figures file as it is written: named sentences, each between its
/// `ANCHOR` and `ANCHOR_END` markers.
struct Anchors(String);

impl Anchors {
    /// Appends the sentence `text` under the anchor `name`.
    fn put(&mut self, name: &str, text: String) {
        let _ = write!(
            self.0,
            "<!-- ANCHOR: {name} -->\n{text}\n<!-- ANCHOR_END: {name} -->\n\n"
        );
    }
}

/// Python's countdown, or why it was not measured.
fn python_countdown(anchors: &mut Anchors, results: &Results) {
    let c = &results.countdown;
    let (threads, processes) = match &c.python {
        Ok(ratios) => ratios,
        Err(why) => {
            for name in [
                "python_countdown",
                "python_threads",
                "python_processes",
                "per_step",
            ] {
                anchors.put(name, format!("Python was not measured ({why})"));
            }
            return;
        }
    };
    anchors.put(
        "python_countdown",
        format!(
            "one Python thread counted down {} steps in {:.2} s; two \
             threads took {:.2}× as long, and two processes \
             (started with fork) {:.2}×",
            grouped(c.python_count),
            threads.a,
            threads.ratio,
            processes.ratio
        ),
    );
    anchors.put(
        "python_threads",
        format!(
            "two Python threads took {:.2}× as long as one",
            threads.ratio
        ),
    );
    anchors.put(
        "python_processes",
        format!(
            "two Python processes took {:.2}× as long as one thread",
            processes.ratio
        ),
    );
    let (python, rust) = (c.per_step.0.unwrap_or(f64::NAN), c.per_step.1);
    anchors.put(
        "per_step",
        format!(
            "a countdown step took {} ns in Python and {} ns in Rust: a \
             Python step took {:.0} times as long as a Rust one",
            sig3(python),
            sig3(rust),
            python / rust
        ),
    );
}

/// Rust's countdowns, plain and under the toy GIL.
fn rust_countdown(anchors: &mut Anchors, results: &Results) {
    let c = &results.countdown;
    let n = results.machine.workers();
    anchors.put(
        "rust_threads",
        format!(
            "{n} Rust threads took {:.2}× as long as one",
            c.rust_threads.ratio
        ),
    );
    anchors.put(
        "rust_processes",
        format!(
            "{n} Rust processes took {:.2}× as long as one thread",
            c.rust_processes.ratio
        ),
    );
    anchors.put(
        "gil_countdown",
        format!(
            "two threads sharing the new-style toy GIL (a 5 ms switch \
             interval, as in Python 3.2 and later) took {:.2}× as long as one",
            c.gil_threads.ratio
        ),
    );
}

/// The convoy under the toy locks, then in CPython.
fn convoy(anchors: &mut Anchors, results: &Results) {
    let row = |lock: Lock| results.convoy_row(&Convoy::Rust(lock));
    let get = |latency: &Result<Latency, String>, f: fn(&Latency) -> f64| {
        latency.as_ref().map_or(f64::NAN, f)
    };
    if let (Some(none), Some(old), Some(new5), Some(new1), Some(new02)) = (
        row(Lock::None),
        row(Lock::OLD),
        row(Lock::NEW_5MS),
        row(Lock::NEW_1MS),
        row(Lock::NEW_02MS),
    ) {
        let alone = get(&none.alone, |l| l.p50);
        anchors.put(
            "convoy_nolock",
            format!(
                "with no lock, a round trip took {:.2} ms alone and {:.2} ms \
                 beside a spinning thread (medians)",
                alone,
                get(&none.busy, |l| l.p50)
            ),
        );
        anchors.put(
            "convoy_old",
            format!(
                "a round trip took {:.2} ms alone (median); beside a CPU-bound \
                 thread under the old-style toy GIL it took {:.2} ms, one trip \
                 in ten took more than {:.2} ms, and the slowest {:.2} ms",
                get(&old.alone, |l| l.p50),
                get(&old.busy, |l| l.p50),
                get(&old.busy, |l| l.p90),
                get(&old.busy, |l| l.max)
            ),
        );
        anchors.put(
            "convoy_new",
            format!(
                "beside a CPU-bound thread, a round trip took {:.2}, {:.2} and \
                 {:.2} ms (medians) at switch intervals of 5, 1 and 0.2 ms, \
                 against {:.2} ms alone; at 5 ms the slowest took {:.2} ms",
                get(&new5.busy, |l| l.p50),
                get(&new1.busy, |l| l.p50),
                get(&new02.busy, |l| l.p50),
                alone,
                get(&new5.busy, |l| l.max)
            ),
        );
    }
    if let Some(python) = results.python_convoy() {
        anchors.put(
            "python_convoy",
            match (&python.alone, &python.busy) {
                (Ok(alone), Ok(busy)) => format!(
                    "in CPython, where the peer is itself a Python thread, a \
                     round trip took {:.2} ms alone and {:.2} ms beside a \
                     spinning thread (medians; the slowest {:.2} ms)",
                    alone.p50, busy.p50, busy.max
                ),
                (Err(why), _) | (_, Err(why)) => {
                    format!("Python was not measured ({why})")
                }
            },
        );
    }
}

/// Starting, feeding and keeping threads, processes and tasks.
fn costs(anchors: &mut Anchors, results: &Results) {
    let k = &results.creation;
    anchors.put(
        "creation",
        format!(
            "a tokio task took {} µs to start and finish, a thread {} µs \
             ({:.0}× a task) and a process {:.0} µs ({:.0}× a task, {:.0}× \
             a thread), each the average over many started at a time and \
             then all awaited (a process being the benchmark program started \
             again to do nothing)",
            sig3(k.task_us),
            sig3(k.thread_us),
            k.thread_us / k.task_us,
            k.process_us,
            k.process_us / k.task_us,
            k.process_us / k.thread_us
        ),
    );
    let t = &results.transfer;
    anchors.put(
        "transfer",
        format!(
            "summing a million numbers took {:.1} ms on a thread that borrows \
             them and {:.0} ms ({:.0}×) in a child process that gets them as \
             text over a pipe, starting the thread or the process included",
            t.thread_ms,
            t.process_ms,
            t.process_ms / t.thread_ms
        ),
    );
    if let Some(mem) = &results.memory {
        anchors.put(
            "memory",
            format!(
                "each thread left waiting (parked) added {:.1} KiB of \
                 resident memory and {:.1} KiB of kernel stack, and each \
                 pending tokio task {:.2} KiB",
                mem.thread_rss_kib, mem.thread_kernel_kib, mem.task_rss_kib
            ),
        );
    }
}

type Chart<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// One bar: a label, a value, and optionally a low-to-high whisker.
type Bar = (String, f64, Option<(f64, f64)>);

/// Horizontal bars with labels on the left, a value label at each bar's
/// end, and a line at `mark`.
fn bars(
    area: &Chart,
    title: &str,
    rows: &[Bar],
    mark: f64,
    unit: &str,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<_>| e.to_string();
    area.fill(&WHITE).map_err(err)?;
    let (width, _) = area.dim_in_pixel();
    let (left, top, row_h) = (300i32, 40i32, 30i32);
    let span = (width as i32 - left - 80).max(100);
    let max = rows
        .iter()
        .map(|(_, v, range)| range.map_or(*v, |(_, high)| high.max(*v)))
        .filter(|v| v.is_finite())
        .fold(mark, f64::max)
        .max(1e-9);
    let px = |v: f64| left + (v / max * span as f64) as i32;
    let font = |size| ("sans-serif", size).into_font();
    area.draw(&Text::new(title.to_string(), (10, 10), font(16)))
        .map_err(err)?;
    let bottom = top + rows.len() as i32 * row_h;
    // The mark first, so that bars and labels are drawn over it.
    area.draw(&PathElement::new(
        vec![(px(mark), top - 6), (px(mark), bottom)],
        BLACK.stroke_width(1),
    ))
    .map_err(err)?;
    for (i, (label, value, range)) in rows.iter().enumerate() {
        let y = top + i as i32 * row_h;
        area.draw(&Text::new(label.clone(), (10, y + 6), font(13)))
            .map_err(err)?;
        if !value.is_finite() {
            continue;
        }
        area.draw(&Rectangle::new(
            [(left, y), (px(*value), y + row_h - 8)],
            RGBColor(70, 110, 180).filled(),
        ))
        .map_err(err)?;
        let mut end = px(*value);
        if let Some((low, high)) = range {
            let middle = y + (row_h - 8) / 2;
            area.draw(&PathElement::new(
                vec![(px(*low), middle), (px(*high), middle)],
                BLACK.stroke_width(2),
            ))
            .map_err(err)?;
            end = end.max(px(*high));
        }
        area.draw(&Text::new(
            format!("{value:.2}{unit}"),
            (end + 6, y + 6),
            font(13),
        ))
        .map_err(err)?;
    }
    Ok(())
}

fn countdown_chart(file: &Path, results: &Results) -> Result<(), String> {
    let c = &results.countdown;
    let n = results.machine.workers();
    let mut rows: Vec<Bar> = Vec::new();
    if let Ok((threads, processes)) = &c.python {
        rows.push(("Python, 2 threads".into(), threads.ratio, None));
        rows.push(("Python, 2 processes".into(), processes.ratio, None));
    }
    rows.push((format!("Rust, {n} threads"), c.rust_threads.ratio, None));
    rows.push((format!("Rust, {n} processes"), c.rust_processes.ratio, None));
    rows.push(("toy GIL, 2 threads".into(), c.gil_threads.ratio, None));
    let height = 60 + rows.len() as u32 * 30;
    let area = SVGBackend::new(file, (720, height)).into_drawing_area();
    bars(
        &area,
        "Countdown: time relative to one thread (line: 1×)",
        &rows,
        1.0,
        "×",
    )?;
    area.present().map_err(|e| e.to_string())
}

fn convoy_chart(file: &Path, results: &Results) -> Result<(), String> {
    let rows: Vec<Bar> = results
        .convoy
        .iter()
        .map(|row| match &row.busy {
            Ok(l) => (row.variant.to_string(), l.p50, Some((l.p10, l.p90))),
            Err(_) => (row.variant.to_string(), f64::NAN, None),
        })
        .collect();
    let idle = results
        .convoy
        .first()
        .and_then(|row| row.alone.as_ref().ok())
        .map_or(1.0, |l| l.p50);
    let height = 60 + rows.len() as u32 * 30;
    let area = SVGBackend::new(file, (720, height)).into_drawing_area();
    bars(
        &area,
        "I/O round trip beside a CPU-bound thread, ms: median, p10 to p90 \
         (line: alone)",
        &rows,
        idle,
        " ms",
    )?;
    area.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::results::sample;
    use super::*;

    /// The anchors the chapters may quote, in the order they are written.
    const ANCHORS: [&str; 18] = [
        "machine",
        "python_countdown",
        "python_threads",
        "python_processes",
        "per_step",
        "rust_threads",
        "rust_processes",
        "gil_countdown",
        "python_calls_rust",
        "python_detach",
        "convoy_nolock",
        "convoy_old",
        "convoy_new",
        "python_convoy",
        "increments",
        "lost_updates",
        "creation",
        "transfer",
    ];

    /// Screen readers and Lighthouse's audit expect a page's headings
    /// never to skip a level (`#` then `###`).
    #[test]
    fn the_page_headings_skip_no_level() {
        let page = page(&sample(true));
        let mut level = 0;
        for line in page.lines().filter(|l| l.starts_with('#')) {
            let depth = line.chars().take_while(|&c| c == '#').count();
            assert!(depth <= level + 1, "{line:?} comes after a level {level}");
            level = depth;
        }
        assert!(level >= 3, "the page has no tables' headings");
    }

    #[test]
    fn every_anchor_is_written_once_and_in_order() {
        let written = figures(&sample(true));
        let mut from = 0;
        for name in ANCHORS.iter().chain(&["memory"]) {
            let start = format!("<!-- ANCHOR: {name} -->\n");
            let at = written[from..].find(&start).expect(name) + from;
            assert_eq!(written.matches(&start).count(), 1, "{name}");
            assert!(written.contains(&format!("<!-- ANCHOR_END: {name} -->")));
            from = at;
        }
    }

    #[test]
    fn convoy_figures_come_from_their_own_rows() {
        let written = figures(&sample(true));
        assert!(written.contains(
            "beside a CPU-bound thread, a round trip took 3.50, 4.50 and \
             5.50 ms (medians) at switch intervals of 5, 1 and 0.2 ms, \
             against 1.00 ms alone; at 5 ms the slowest took 14.00 ms\n"
        ));
        assert!(written.contains(
            "in CPython, where the peer is itself a Python thread, a round \
             trip took 1.10 ms alone and 6.00 ms beside a spinning thread \
             (medians; the slowest 24.00 ms)\n"
        ));
    }

    #[test]
    fn without_python_the_python_anchors_say_why() {
        let written = figures(&sample(false));
        let why = "Python was not measured (python3 not found: no such file)";
        assert_eq!(written.matches(why).count(), 5, "{written}");
        for name in ANCHORS {
            assert!(written.contains(&format!("<!-- ANCHOR: {name} -->\n")));
        }
        assert!(!written.contains("ANCHOR: memory "));
    }

    #[test]
    fn three_significant_figures() {
        assert_eq!(sig3(21.54), "21.5");
        assert_eq!(sig3(0.2549), "0.255");
        assert_eq!(sig3(1.1), "1.10");
        assert_eq!(sig3(735.2), "735");
    }
}
