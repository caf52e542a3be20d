//! Timelines: who ran when, one lane per thread or task, as a recording
//! made on the reader's machine shows it. `course bench --write` draws
//! them as SVG for the book; `course trace <name>` prints them as text.
//!
//! A timeline is spans (a lane running, or waiting for a lock) and marks
//! (a lane asked the holder to drop the lock; a lane was handed the lock
//! by another), in nanoseconds from the start of the recording.

use serde::{Deserialize, Serialize};

/// What a lane was doing during a [`Span`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activity {
    /// Running: holding the GIL, or being polled, or simply on a core.
    Running,
    /// Blocked, waiting for the lock (or for its turn on the runtime).
    Waiting,
}

/// A moment worth a mark on a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Moment {
    /// The lane asked the holder to drop the lock (a drop request).
    Request,
    /// The lane took the lock right after another lane held it.
    Handover,
}

/// A lane doing one thing from `start` to `end` (ns, `start <= end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// The index of the lane in [`Timeline::lanes`].
    pub lane: usize,
    /// When it started, in ns from the start of the recording.
    pub start: u64,
    /// When it ended, in ns from the start of the recording.
    pub end: u64,
    /// What the lane was doing.
    pub activity: Activity,
}

/// A moment on a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The index of the lane in [`Timeline::lanes`].
    pub lane: usize,
    /// When, in ns from the start of the recording.
    pub at: u64,
    /// What happened.
    pub moment: Moment,
}

/// One recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// What was recorded, e.g. "Toy GIL, SwitchInterval(5 ms)".
    pub title: String,
    /// The lanes' names, top to bottom, e.g. "CPU thread", "I/O thread".
    pub lanes: Vec<String>,
    /// How long the recording lasted, in ns.
    pub length: u64,
    /// The spans, in any order.
    pub spans: Vec<Span>,
    /// The marks, in any order.
    pub marks: Vec<Mark>,
    /// One sentence that says what the picture shows, with its numbers:
    /// the text alternative printed under the picture.
    pub summary: String,
}

impl Timeline {
    /// How long `lane` spent doing `activity`, in ns.
    pub fn total(&self, lane: usize, activity: Activity) -> u64 {
        self.spans
            .iter()
            .filter(|s| s.lane == lane && s.activity == activity)
            .map(|s| s.end.saturating_sub(s.start))
            .sum()
    }

    /// How many marks of kind `moment` `lane` has.
    pub fn count(&self, lane: usize, moment: Moment) -> usize {
        self.marks
            .iter()
            .filter(|m| m.lane == lane && m.moment == moment)
            .count()
    }

    /// Joins each run of a lane's running spans that no other lane's
    /// running span starts within, where each gap is at most `max_gap`
    /// ns: a thread that released a lock and took it straight back, as
    /// the old GIL does every hundred ticks, draws as one span. Returns
    /// how many spans were joined away.
    pub fn join_running(&mut self, max_gap: u64) -> usize {
        let (mut running, others): (Vec<Span>, Vec<Span>) = (self.spans)
            .drain(..)
            .partition(|s| s.activity == Activity::Running);
        running.sort_by_key(|s| (s.start, s.lane));
        let before = running.len();
        let mut joined: Vec<Span> = Vec::with_capacity(before);
        for span in running {
            match joined.last_mut() {
                Some(last)
                    if last.lane == span.lane
                        && span.start.saturating_sub(last.end) <= max_gap =>
                {
                    last.end = last.end.max(span.end);
                }
                _ => joined.push(span),
            }
        }
        let gone = before - joined.len();
        self.spans = others;
        self.spans.extend(joined);
        gone
    }

    /// The timeline as text lanes `columns` characters wide: `#` running,
    /// `.` waiting, a space for neither, `!` where a lane asked for the
    /// lock, `>` where it was handed the lock; then a time axis and the
    /// summary.
    pub fn text(&self, columns: usize) -> String {
        let columns = columns.max(10);
        let width = self.lanes.iter().map(String::len).max().unwrap_or(0);
        let column_of = |ns: u64| -> usize {
            let scaled = u128::from(ns) * columns as u128
                / u128::from(self.length.max(1));
            usize::try_from(scaled).unwrap_or(columns).min(columns - 1)
        };
        let mut out = format!("{}\n", self.title);
        for (lane, name) in self.lanes.iter().enumerate() {
            let mut row = vec![' '; columns];
            // Waiting first, so that running wins where both fall in one
            // column.
            for activity in [Activity::Waiting, Activity::Running] {
                let glyph = match activity {
                    Activity::Running => '#',
                    Activity::Waiting => '.',
                };
                for span in self.spans.iter().filter(|s| {
                    s.lane == lane && s.activity == activity && s.end > s.start
                }) {
                    let (from, to) =
                        (column_of(span.start), column_of(span.end));
                    for cell in &mut row[from..=to.max(from)] {
                        *cell = glyph;
                    }
                }
            }
            for mark in self.marks.iter().filter(|m| m.lane == lane) {
                row[column_of(mark.at)] = match mark.moment {
                    Moment::Request => '!',
                    Moment::Handover => '>',
                };
            }
            let row: String = row.into_iter().collect();
            out.push_str(&format!("{name:>width$} |{row}|\n"));
        }
        let ms = self.length as f64 / 1e6;
        out.push_str(&format!(
            "{:>width$}  0 ms{:>pad$}\n",
            "",
            format!("{ms:.1} ms"),
            pad = columns.saturating_sub(4)
        ));
        out.push_str(&self.summary);
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_lanes() -> Timeline {
        Timeline {
            title: "test".into(),
            lanes: vec!["a".into(), "b".into()],
            length: 100,
            spans: vec![
                Span {
                    lane: 0,
                    start: 0,
                    end: 50,
                    activity: Activity::Running,
                },
                Span {
                    lane: 1,
                    start: 0,
                    end: 50,
                    activity: Activity::Waiting,
                },
                Span {
                    lane: 1,
                    start: 50,
                    end: 100,
                    activity: Activity::Running,
                },
            ],
            marks: vec![Mark {
                lane: 1,
                at: 50,
                moment: Moment::Handover,
            }],
            summary: "b waited 50 ns".into(),
        }
    }

    #[test]
    fn totals_and_counts_add_up_per_lane() {
        let timeline = two_lanes();
        assert_eq!(timeline.total(0, Activity::Running), 50);
        assert_eq!(timeline.total(1, Activity::Waiting), 50);
        assert_eq!(timeline.total(1, Activity::Running), 50);
        assert_eq!(timeline.count(1, Moment::Handover), 1);
        assert_eq!(timeline.count(0, Moment::Handover), 0);
    }

    #[test]
    fn running_spans_join_only_when_no_other_lane_ran_between() {
        let run = |lane, start, end| Span {
            lane,
            start,
            end,
            activity: Activity::Running,
        };
        let mut timeline = two_lanes();
        timeline.spans = vec![
            run(0, 0, 10),
            run(0, 11, 20),
            run(1, 21, 22),
            run(0, 23, 30),
            run(0, 60, 70),
        ];
        assert_eq!(timeline.join_running(5), 1);
        timeline.spans.sort_by_key(|s| s.start);
        assert_eq!(
            timeline.spans,
            [
                run(0, 0, 20),
                run(1, 21, 22),
                run(0, 23, 30),
                run(0, 60, 70)
            ]
        );
    }

    #[test]
    fn text_lanes_show_who_ran_when() {
        let text = two_lanes().text(10);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "a |######    |");
        assert_eq!(lines[2], "b |.....>####|");
        assert!(text.ends_with("b waited 50 ns\n"));
    }
}
