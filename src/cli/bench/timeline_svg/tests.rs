//! The pictures checked against the timelines they draw: bars where the
//! spans are on the axis, marks counted, the text alternative present.

use super::*;
use crate::trace::Mark;

const MS: u64 = 1_000_000;

fn span(lane: usize, from_ms: u64, to_ms: u64, activity: Activity) -> Span {
    Span {
        lane,
        start: from_ms * MS,
        end: to_ms * MS,
        activity,
    }
}

fn mark(lane: usize, at_ms: u64, moment: Moment) -> Mark {
    Mark {
        lane,
        at: at_ms * MS,
        moment,
    }
}

/// Two lanes over 100 ms, handing a lock back and forth: on the 580 px
/// axis from x = 150, one ms is 5.8 px.
fn handing_over() -> Timeline {
    use Activity::{Running, Waiting};
    Timeline {
        title: "Tabs & workers <test>".into(),
        lanes: vec!["render".into(), "network".into()],
        length: 100 * MS,
        spans: vec![
            span(0, 0, 20, Running),
            span(0, 20, 50, Waiting),
            span(0, 50, 60, Running),
            span(1, 0, 20, Waiting),
            span(1, 20, 50, Running),
            span(1, 70, 100, Running),
        ],
        marks: vec![
            mark(1, 10, Moment::Request),
            mark(1, 20, Moment::Handover),
            mark(0, 50, Moment::Handover),
        ],
        summary: "The network lane waited 20 ms for the lock.".into(),
    }
}

/// The value of `name="..."` in an element's text.
fn attribute<'a>(element: &'a str, name: &str) -> &'a str {
    element
        .split(&format!(" {name}=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in {element}"))
}

/// The `(x, width)` of every `<rect>` filled with `fill` whose top is `y`,
/// in document order.
fn rects(svg: &str, fill: &str, y: i32) -> Vec<(i32, i32)> {
    svg.split("<rect")
        .skip(1)
        .map(|rest| rest.split("/>").next().unwrap())
        .filter(|r| attribute(r, "fill") == fill)
        .filter(|r| attribute(r, "y") == y.to_string())
        .map(|r| {
            let number = |name| attribute(r, name).parse::<i32>().unwrap();
            (number("x"), number("width"))
        })
        .collect()
}

const BLUE: &str = "#466EB4";
const AMBER: &str = "#F2C98A";

/// Lane `lane`'s running bar top (64 + 40 per lane + 12) and waiting bar
/// top (5 px lower).
fn tops(lane: i32) -> (i32, i32) {
    (64 + 40 * lane + 12, 64 + 40 * lane + 17)
}

#[test]
fn bars_sit_where_their_spans_are_on_the_axis() {
    let svg = svg(&handing_over()).unwrap();
    let (running, waiting) = tops(0);
    assert_eq!(rects(&svg, BLUE, running), [(150, 116), (440, 58)]);
    assert_eq!(rects(&svg, AMBER, waiting), [(266, 174)]);
    let (running, waiting) = tops(1);
    assert_eq!(rects(&svg, BLUE, running), [(266, 174), (556, 174)]);
    assert_eq!(rects(&svg, AMBER, waiting), [(150, 116)]);
}

#[test]
fn every_mark_is_drawn_once_beside_the_legend() {
    let svg = svg(&handing_over()).unwrap();
    // One triangle in the legend, one drop request.
    assert_eq!(svg.matches("<polygon").count(), 2, "{svg}");
    // One tick in the legend, two hand-overs, all 2 px wide and black.
    let ticks = svg
        .split("<rect")
        .filter(|r| r.contains(r#"width="2""#) && r.contains("#000000"))
        .count();
    assert_eq!(ticks, 3, "{svg}");
}

#[test]
fn the_svg_carries_its_title_summary_and_lane_count() {
    let svg = svg(&handing_over()).unwrap();
    let root = svg.split('>').next().unwrap();
    assert!(root.starts_with("<svg "), "{root}");
    assert!(root.contains(r#" role="img""#), "{root}");
    assert!(root.contains(r#"aria-label="Tabs &amp; workers &lt;test&gt;""#));
    assert!(root.contains(r#" data-lanes="2""#), "{root}");
    assert!(svg.contains("<title>Tabs &amp; workers &lt;test&gt;</title>"));
    assert!(
        svg.contains(
            "<desc>The network lane waited 20 ms for the lock.</desc>"
        )
    );
    assert!(svg.contains(">\nrender\n<") && svg.contains(">\nnetwork\n<"));
}

#[test]
fn the_order_of_spans_and_marks_does_not_change_a_byte() {
    let timeline = handing_over();
    let mut shuffled = timeline.clone();
    shuffled.spans.reverse();
    shuffled.marks.reverse();
    assert_eq!(svg(&timeline).unwrap(), svg(&shuffled).unwrap());
}

#[test]
fn spans_and_marks_past_the_end_are_clipped_to_it() {
    let mut timeline = handing_over();
    timeline.spans = vec![span(0, 80, 150, Activity::Running)];
    timeline.marks = vec![mark(1, 120, Moment::Handover)];
    let svg = svg(&timeline).unwrap();
    // From 80 ms (x = 614) to the axis' end at 100 ms (x = 730).
    assert_eq!(rects(&svg, BLUE, tops(0).0), [(614, 116)]);
    assert!(svg.contains(r#"<rect x="729" y="112" width="2""#), "{svg}");
}

#[test]
fn thousands_of_short_spans_make_one_bar() {
    let mut timeline = handing_over();
    timeline.spans = (0..1000)
        .map(|i| Span {
            lane: 1,
            start: i * 20_000,
            end: i * 20_000 + 10_000,
            activity: Activity::Running,
        })
        .collect();
    let svg = svg(&timeline).unwrap();
    // 0 to 20 ms, the last 10 µs span widened to 2 px.
    assert_eq!(rects(&svg, BLUE, tops(1).0), [(150, 118)]);
}

#[test]
fn an_empty_or_inconsistent_timeline_is_an_error() {
    let mut empty = handing_over();
    empty.lanes.clear();
    assert!(svg(&empty).unwrap_err().contains("empty timeline"));
    let mut instant = handing_over();
    instant.length = 0;
    assert!(svg(&instant).unwrap_err().contains("empty timeline"));
    let mut stray = handing_over();
    stray.spans.push(span(2, 0, 10, Activity::Running));
    assert!(svg(&stray).unwrap_err().contains("bad span"));
    let mut backwards = handing_over();
    backwards.spans.push(span(0, 10, 5, Activity::Running));
    assert!(svg(&backwards).unwrap_err().contains("bad span"));
    let mut lost = handing_over();
    lost.marks.push(mark(3, 10, Moment::Request));
    assert!(svg(&lost).unwrap_err().contains("bad mark"));
}

#[test]
fn write_timelines_draws_each_and_returns_its_captioned_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let named = vec![("handing_over".to_string(), handing_over())];
    let anchors = write_timelines(dir.path(), &named).unwrap();
    let drawn = fs::read_to_string(dir.path().join("handing_over.svg"));
    assert_eq!(drawn.unwrap(), svg(&handing_over()).unwrap());
    assert_eq!(
        anchors,
        "<!-- ANCHOR: timeline_handing_over -->\n\
         ![Tabs & workers \\<test>](../appendix/measurements/timelines/\
         handing_over.svg)\n\n\
         *The network lane waited 20 ms for the lock.*\n\
         <!-- ANCHOR_END: timeline_handing_over -->\n\n"
    );
}

#[test]
fn new_timeline_anchors_replace_the_old_and_keep_the_rest() {
    let old = "<!-- top -->\n\n\
               <!-- ANCHOR: machine -->\n2 CPUs\n\
               <!-- ANCHOR_END: machine -->\n\n\
               <!-- ANCHOR: timeline_gone -->\nold\n\
               <!-- ANCHOR_END: timeline_gone -->\n\n\
               <!-- ANCHOR: memory -->\n4 KiB\n\
               <!-- ANCHOR_END: memory -->\n\n";
    let new = "<!-- ANCHOR: timeline_new -->\nnew\n\
               <!-- ANCHOR_END: timeline_new -->\n\n";
    let merged = with_timeline_anchors(old, new);
    assert_eq!(
        merged,
        "<!-- top -->\n\n\
         <!-- ANCHOR: machine -->\n2 CPUs\n\
         <!-- ANCHOR_END: machine -->\n\n\
         <!-- ANCHOR: memory -->\n4 KiB\n\
         <!-- ANCHOR_END: memory -->\n\n\
         <!-- ANCHOR: timeline_new -->\nnew\n\
         <!-- ANCHOR_END: timeline_new -->\n\n"
    );
    assert_eq!(with_timeline_anchors(&merged, new), merged);
}

/// The book's pictures are the recordings next to them, drawn by this
/// code: after a new recording or a change here, `course draw-timelines`.
#[test]
fn the_books_timeline_pictures_match_their_recordings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let timelines = read_timelines(&root.join(TIMELINES)).unwrap();
    assert!(timelines.len() >= 9, "only {} recordings", timelines.len());
    let figures = fs::read_to_string(root.join(FIGURES)).unwrap();
    for (name, timeline) in &timelines {
        let file = root.join(TIMELINES).join(format!("{name}.svg"));
        let drawn = fs::read_to_string(&file).unwrap_or_default();
        assert!(
            drawn == svg(timeline).unwrap(),
            "{} is not drawn from {name}.json: run `cargo run -- \
             draw-timelines`",
            file.display()
        );
        assert!(
            figures.contains(&format!("ANCHOR: timeline_{name} ")),
            "{FIGURES} has no caption for {name}: run `cargo run -- \
             draw-timelines`"
        );
    }
}
