//! Timelines as pictures: a [`Timeline`] drawn as an SVG for the book, one
//! lane per thread or task, with plotters like the other charts.
//!
//! Each lane has its name at the left, running spans as solid blue bars,
//! waiting spans as thinner amber bars, drop requests as red triangles
//! above the bar and hand-overs as black ticks across it; a time axis in
//! ms runs along the bottom. Like the Measurements charts, the picture is
//! drawn on its own white panel, so it reads the same in the book's light
//! and dark themes. The root `<svg>` carries `role="img"`, an `aria-label`
//! (the title), `data-lanes` (the lane count), and a `<title>` and a
//! `<desc>` (the timeline's summary sentence).
//!
//! `course draw-timelines` draws every recording in [`TIMELINES`] and puts
//! its caption into the figures the chapters quote.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::figures::FIGURES;
use crate::trace::{Activity, Moment, Span, Timeline};

/// The recordings (`<name>.json`) and their pictures (`<name>.svg`),
/// relative to the repository.
pub use super::timelines::TIMELINES;

/// The picture's width in pixels: the book's column.
const WIDTH: i32 = 760;
/// Where the time axis starts: the lane names are to its left.
const LEFT: i32 = 150;
/// The margin right of the time axis.
const RIGHT: i32 = 30;
/// The time axis' length in pixels.
const PLOT: i32 = WIDTH - LEFT - RIGHT;
/// The top of the first lane, below the title and the legend.
const TOP: i32 = 64;
/// One lane's height.
const LANE: i32 = 40;
/// Room under the lanes for the time axis and its labels.
const BOTTOM: i32 = 40;

/// The narrowest bar, in pixels: a 50 µs poll in a 150 ms recording.
const MIN_BAR: i32 = 2;

/// Running: the Measurements charts' blue.
const RUNNING: RGBColor = RGBColor(70, 110, 180);
/// Waiting: a light amber, with a darker outline.
const WAITING: RGBColor = RGBColor(242, 201, 138);
/// The outline of waiting bars.
const WAITING_EDGE: RGBColor = RGBColor(176, 122, 42);
/// Drop requests.
const REQUEST: RGBColor = RGBColor(192, 57, 43);
/// A lane's baseline, and the axis' grid lines.
const FAINT: RGBColor = RGBColor(220, 220, 220);

/// The vertical extent of a bar of `activity` in lane `lane`: running bars
/// are 20 px high, waiting bars 10 px, centred on the same line.
fn bar_rows(lane: usize, activity: Activity) -> (i32, i32) {
    let top = TOP + lane as i32 * LANE;
    match activity {
        Activity::Running => (top + 12, top + 32),
        Activity::Waiting => (top + 17, top + 27),
    }
}

/// The timeline, checked and clipped: spans and marks past `length` are
/// cut at `length`, so a recorder's last span that ended a little after
/// it stopped the clock still draws. An empty timeline, a lane index out
/// of range or a span that ends before it starts is an error.
fn checked(timeline: &Timeline) -> Result<Timeline, String> {
    let title = &timeline.title;
    if timeline.lanes.is_empty() || timeline.length == 0 {
        return Err(format!("{title}: an empty timeline has nothing to draw"));
    }
    let lanes = timeline.lanes.len();
    let mut clipped = timeline.clone();
    for span in &mut clipped.spans {
        if span.lane >= lanes || span.start > span.end {
            return Err(format!("{title}: a bad span {span:?}"));
        }
        span.start = span.start.min(timeline.length);
        span.end = span.end.min(timeline.length);
    }
    for mark in &mut clipped.marks {
        if mark.lane >= lanes {
            return Err(format!("{title}: a bad mark {mark:?}"));
        }
        mark.at = mark.at.min(timeline.length);
    }
    Ok(clipped)
}

/// Maps nanoseconds to pixels on the time axis.
#[derive(Debug, Clone, Copy)]
struct Scale {
    /// The recording's length in ns: the axis' right end.
    length: u64,
}

impl Scale {
    /// The x coordinate of `ns`, rounded to the nearest pixel.
    fn x(self, ns: u64) -> i32 {
        let length = u128::from(self.length);
        let scaled = (u128::from(ns) * PLOT as u128 + length / 2) / length;
        LEFT + i32::try_from(scaled).unwrap_or(PLOT).min(PLOT)
    }
}

/// The bars of one lane and activity, in pixels `(from, to)`: spans that
/// touch or overlap once rounded to pixels are one bar, so that thousands
/// of short spans make at most one bar per pixel. A span shorter than
/// [`MIN_BAR`] pixels still gets that many.
fn bars(spans: &[Span], scale: Scale) -> Vec<(i32, i32)> {
    let mut pixels: Vec<(i32, i32)> = spans
        .iter()
        .filter(|s| s.end > s.start)
        .map(|s| {
            let from = scale.x(s.start);
            (from, scale.x(s.end).max(from + MIN_BAR))
        })
        .collect();
    pixels.sort_unstable();
    let mut merged: Vec<(i32, i32)> = Vec::new();
    for (from, to) in pixels {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

/// A round step for the time axis, in ns: 1, 2 or 5 times a power of ten,
/// so that there are at most ten steps.
fn tick_step(length: u64) -> u64 {
    let mut power = 1u64;
    loop {
        for factor in [1, 2, 5] {
            let step = power.saturating_mul(factor);
            if length / step <= 10 {
                return step;
            }
        }
        power = power.saturating_mul(10);
    }
}

/// `ns` in ms, with as many decimals as `step` needs.
fn ms_label(ns: u64, step: u64) -> String {
    let decimals = match step {
        1_000_000.. => 0,
        100_000.. => 1,
        10_000.. => 2,
        _ => 3,
    };
    format!("{:.decimals$}", ns as f64 / 1e6)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Turns plotters' drawing errors into the module's.
fn err<E: std::error::Error + Send + Sync>(
    e: DrawingAreaErrorKind<E>,
) -> String {
    e.to_string()
}

/// A drop request: a small red triangle pointing down at the bar.
fn request_mark(x: i32, lane: usize) -> Polygon<(i32, i32)> {
    let tip = bar_rows(lane, Activity::Running).0 - 1;
    Polygon::new(vec![(x - 4, tip - 7), (x + 4, tip - 7), (x, tip)], REQUEST)
}

/// A hand-over: a black tick across the bar.
fn handover_mark(x: i32, lane: usize) -> Rectangle<(i32, i32)> {
    let (top, bottom) = bar_rows(lane, Activity::Running);
    Rectangle::new([(x - 1, top - 4), (x + 1, bottom + 4)], BLACK.filled())
}

/// The legend, on one row under the title: only the marks the timeline
/// has.
fn legend(area: &Area, timeline: &Timeline) -> Result<(), String> {
    let font = ("sans-serif", 15).into_font();
    let has = |moment| timeline.marks.iter().any(|m| m.moment == moment);
    let (y, mut x) = (36, LEFT);
    area.draw(&Rectangle::new(
        [(x, y), (x + 16, y + 12)],
        RUNNING.filled(),
    ))
    .map_err(err)?;
    area.draw(&Text::new("running", (x + 22, y), font.clone()))
        .map_err(err)?;
    x += 100;
    area.draw(&Rectangle::new(
        [(x, y + 3), (x + 16, y + 9)],
        WAITING.filled(),
    ))
    .map_err(err)?;
    area.draw(&Text::new("waiting", (x + 22, y), font.clone()))
        .map_err(err)?;
    x += 100;
    if has(Moment::Request) {
        let tip = y + 11;
        area.draw(&Polygon::new(
            vec![(x + 4, tip - 8), (x + 12, tip - 8), (x + 8, tip)],
            REQUEST,
        ))
        .map_err(err)?;
        area.draw(&Text::new("drop request", (x + 22, y), font.clone()))
            .map_err(err)?;
        x += 130;
    }
    if has(Moment::Handover) {
        area.draw(&Rectangle::new(
            [(x + 7, y - 2), (x + 9, y + 14)],
            BLACK.filled(),
        ))
        .map_err(err)?;
        area.draw(&Text::new("handed the lock", (x + 22, y), font))
            .map_err(err)?;
    }
    Ok(())
}

/// Faint grid lines up through the lanes at every round step, drawn
/// first so that the bars cover them.
fn grid(area: &Area, timeline: &Timeline, scale: Scale) -> Result<(), String> {
    let bottom = TOP + timeline.lanes.len() as i32 * LANE + 4;
    let step = tick_step(timeline.length) as usize;
    for tick in (0..=timeline.length).step_by(step) {
        let x = scale.x(tick);
        area.draw(&PathElement::new(vec![(x, TOP), (x, bottom)], FAINT))
            .map_err(err)?;
    }
    Ok(())
}

/// The time axis under the lanes: a line, a tick and a label every round
/// step, and the unit.
fn axis(area: &Area, timeline: &Timeline, scale: Scale) -> Result<(), String> {
    let bottom = TOP + timeline.lanes.len() as i32 * LANE + 4;
    let step = tick_step(timeline.length);
    let label = TextStyle::from(("sans-serif", 14).into_font())
        .pos(Pos::new(HPos::Center, VPos::Top));
    for tick in (0..=timeline.length).step_by(step as usize) {
        let x = scale.x(tick);
        area.draw(&PathElement::new(vec![(x, bottom), (x, bottom + 5)], BLACK))
            .map_err(err)?;
        let text = ms_label(tick, step);
        area.draw(&Text::new(text, (x, bottom + 8), label.clone()))
            .map_err(err)?;
    }
    area.draw(&PathElement::new(
        vec![(LEFT, bottom), (LEFT + PLOT, bottom)],
        BLACK,
    ))
    .map_err(err)?;
    let unit = ("sans-serif", 14).into_font();
    area.draw(&Text::new("time (ms)", (10, bottom + 8), unit))
        .map_err(err)
}

/// One lane: its name, a faint baseline, its bars (waiting under
/// running), then its marks on top.
fn lane(
    area: &Area,
    timeline: &Timeline,
    lane: usize,
    scale: Scale,
) -> Result<(), String> {
    let (top, bottom) = bar_rows(lane, Activity::Running);
    let middle = (top + bottom) / 2;
    let name = TextStyle::from(("sans-serif", 15).into_font())
        .pos(Pos::new(HPos::Left, VPos::Center));
    area.draw(&Text::new(timeline.lanes[lane].clone(), (10, middle), name))
        .map_err(err)?;
    area.draw(&PathElement::new(
        vec![(LEFT, middle), (LEFT + PLOT, middle)],
        FAINT,
    ))
    .map_err(err)?;
    for activity in [Activity::Waiting, Activity::Running] {
        let spans: Vec<Span> = timeline
            .spans
            .iter()
            .filter(|s| s.lane == lane && s.activity == activity)
            .copied()
            .collect();
        let (y0, y1) = bar_rows(lane, activity);
        for (from, to) in bars(&spans, scale) {
            let corners = [(from, y0), (to, y1)];
            let bar = match activity {
                Activity::Running => Rectangle::new(corners, RUNNING.filled()),
                Activity::Waiting => Rectangle::new(corners, WAITING.filled()),
            };
            area.draw(&bar).map_err(err)?;
            if activity == Activity::Waiting {
                area.draw(&Rectangle::new(corners, WAITING_EDGE))
                    .map_err(err)?;
            }
        }
    }
    let mut marks: Vec<_> =
        timeline.marks.iter().filter(|m| m.lane == lane).collect();
    marks.sort_by_key(|m| (m.at, m.moment == Moment::Handover));
    for mark in marks {
        let x = scale.x(mark.at);
        match mark.moment {
            Moment::Request => area.draw(&request_mark(x, lane)),
            Moment::Handover => area.draw(&handover_mark(x, lane)),
        }
        .map_err(err)?;
    }
    Ok(())
}

/// `text` with XML's special characters escaped, for the attributes and
/// elements added to plotters' output.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The timeline as an SVG document: the same timeline gives the same
/// bytes. Spans and marks past the timeline's length are clipped to it;
/// an empty timeline or a span or mark on a lane it does not have is an
/// error.
pub fn svg(timeline: &Timeline) -> Result<String, String> {
    let timeline = checked(timeline)?;
    let height = TOP + timeline.lanes.len() as i32 * LANE + BOTTOM;
    let scale = Scale {
        length: timeline.length,
    };
    let mut out = String::new();
    {
        let size = (WIDTH as u32, height as u32);
        let area = SVGBackend::with_string(&mut out, size).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        let title = ("sans-serif", 18).into_font();
        area.draw(&Text::new(timeline.title.clone(), (10, 10), title))
            .map_err(err)?;
        legend(&area, &timeline)?;
        grid(&area, &timeline, scale)?;
        for index in 0..timeline.lanes.len() {
            lane(&area, &timeline, index, scale)?;
        }
        axis(&area, &timeline, scale)?;
        area.present().map_err(err)?;
    }
    let close = out.find('>').ok_or("plotters wrote no <svg> tag")?;
    let title = xml(&timeline.title);
    let attributes = format!(
        r#" role="img" aria-label="{title}" data-lanes="{}""#,
        timeline.lanes.len()
    );
    let elements = format!(
        "\n<title>{title}</title>\n<desc>{}</desc>",
        xml(&timeline.summary)
    );
    out.insert_str(close + 1, &elements);
    out.insert_str(close, &attributes);
    Ok(out)
}

/// `text` with the markdown that could change its meaning in an emphasis
/// or an image's alt text escaped.
fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '_' | '[' | ']' | '`' | '\\' | '<') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The anchor a chapter quotes to show timeline `name`.
fn anchor(name: &str) -> String {
    format!("timeline_{name}")
}

/// Draws each `(name, timeline)` into `dir/<name>.svg`; returns the text
/// for `figures.md`: per name, between the anchors `timeline_<name>`, the
/// picture and its summary as a caption. The picture's link is relative
/// to a page one folder deep (`chapters/NN-topic/page.md`), where mdBook
/// resolves it, as every chapter is.
pub fn write_timelines(
    dir: &Path,
    timelines: &[(String, Timeline)],
) -> Result<String, String> {
    fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let folder = TIMELINES.trim_start_matches("chapters/");
    let mut anchors = String::new();
    for (name, timeline) in timelines {
        let file = dir.join(format!("{name}.svg"));
        fs::write(&file, svg(timeline)?)
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        let anchor = anchor(name);
        let _ = write!(
            anchors,
            "<!-- ANCHOR: {anchor} -->\n\
             ![{}](../{folder}/{name}.svg)\n\n\
             *{}*\n\
             <!-- ANCHOR_END: {anchor} -->\n\n",
            markdown(&timeline.title),
            markdown(&timeline.summary),
        );
    }
    Ok(anchors)
}

/// Every `<name>.json` in `dir` as a timeline, sorted by name.
fn read_timelines(dir: &Path) -> Result<Vec<(String, Timeline)>, String> {
    let entries = fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut timelines = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let text = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let timeline = serde_json::from_str(&text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        timelines.push((name.to_string(), timeline));
    }
    timelines.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(timelines)
}

/// `figures` with its `timeline_*` anchors replaced by `anchors`, which
/// go at the end.
fn with_timeline_anchors(figures: &str, anchors: &str) -> String {
    let mut kept = String::new();
    let mut rest = figures;
    while let Some(at) = rest.find("<!-- ANCHOR: timeline_") {
        kept.push_str(&rest[..at]);
        let end = rest[at..].find("<!-- ANCHOR_END: timeline_").map(|end| {
            let close = rest[at + end..].find("-->\n").map_or(0, |c| c + 4);
            at + end + close
        });
        let Some(end) = end else { break };
        rest = rest[end..].trim_start_matches('\n');
    }
    kept.push_str(rest);
    format!("{}\n\n{anchors}", kept.trim_end())
}

/// `course draw-timelines`: draws every recording in [`TIMELINES`] next to
/// it and puts their captions into the chapters' figures.
pub fn draw_timelines(root: &Path) -> Result<(), String> {
    let dir = root.join(TIMELINES);
    let timelines = read_timelines(&dir)?;
    if timelines.is_empty() {
        return Err(format!("no recordings (*.json) in {}", dir.display()));
    }
    let anchors = write_timelines(&dir, &timelines)?;
    let file = root.join(FIGURES);
    let figures = fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    fs::write(&file, with_timeline_anchors(&figures, &anchors))
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    eprintln!("drew {} timelines into {TIMELINES}", timelines.len());
    Ok(())
}

#[cfg(test)]
mod tests;
