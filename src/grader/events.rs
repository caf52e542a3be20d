//! The machine-readable side of a suite run, for `course grade`: the
//! suite appends one JSON line per event to the file named by
//! [`ENV_EVENTS`], and `course grade` reads them back as the same types.
//!
//! - with `--list`, per trial the filter selects:
//!   `{"event":"listed","id","points"}`;
//! - as each trial ends: `{"event":"judged","id","points","verdict",
//!   "reason","duration_ms","report"}`, where `verdict` is a label of
//!   [`Verdict`] and `report` is empty for a pass.

use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{TrialId, Verdict};

/// Set by `course grade`: a file the suite appends one JSON line to per
/// event.
pub const ENV_EVENTS: &str = "COURSE_GRADER_EVENTS";

/// One event of a suite run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A trial the filter selects (with `--list`).
    Listed {
        /// The trial.
        id: TrialId,
        /// What it is worth.
        points: u32,
    },
    /// A trial's end.
    Judged(Judged),
}

/// One trial's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The trial.
    pub id: TrialId,
    /// What it is worth.
    pub points: u32,
    /// How it ended.
    pub verdict: Verdict,
    /// The verdict with the tail of the trial's output (empty for a pass).
    pub report: String,
    /// How long the trial took, spawn to verdict.
    pub duration_ms: u64,
}

/// An event as one line of the file.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    event: String,
    id: String,
    points: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verdict: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    report: Option<String>,
}

impl Event {
    fn to_line(&self) -> Line {
        match self {
            Event::Listed { id, points } => Line {
                event: "listed".into(),
                id: id.to_string(),
                points: *points,
                verdict: None,
                reason: None,
                duration_ms: None,
                report: None,
            },
            Event::Judged(judged) => Line {
                event: "judged".into(),
                id: judged.id.to_string(),
                points: judged.points,
                verdict: Some(judged.verdict.label().into()),
                reason: Some(judged.verdict.reason().into()),
                duration_ms: Some(judged.duration_ms),
                report: Some(judged.report.clone()),
            },
        }
    }

    fn from_line(line: Line) -> Option<Event> {
        let id = TrialId::parse(&line.id).ok()?;
        match line.event.as_str() {
            "listed" => Some(Event::Listed {
                id,
                points: line.points,
            }),
            "judged" => {
                let label = line.verdict?;
                let reason = line.reason.unwrap_or_default();
                Some(Event::Judged(Judged {
                    id,
                    points: line.points,
                    verdict: Verdict::from_parts(&label, &reason)?,
                    report: line.report.unwrap_or_default(),
                    duration_ms: line.duration_ms.unwrap_or(0),
                }))
            }
            _ => None,
        }
    }
}

/// The suite's events file, if `course grade` asked for one.
#[derive(Debug)]
pub(crate) struct Events(Option<Mutex<fs::File>>);

impl Events {
    pub(crate) fn from_env() -> Self {
        let file = std::env::var_os(ENV_EVENTS).and_then(|path| {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
        });
        Events(file.map(Mutex::new))
    }

    pub(crate) fn write(&self, event: &Event) {
        let Some(file) = &self.0 else {
            return;
        };
        let Ok(mut text) = serde_json::to_string(&event.to_line()) else {
            return;
        };
        text.push('\n');
        let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
        // One write per line, so that a reader never sees half of one.
        let _ = file.write_all(text.as_bytes());
    }
}

/// The events in a file so far (a line being written is skipped).
pub fn read(path: &Path) -> Vec<Event> {
    let Ok(file) = fs::File::open(path) else {
        return Vec::new();
    };
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<Line>(&line).ok())
        .filter_map(Event::from_line)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let id = TrialId::parse("ch01::sum::adds").unwrap();
        let events = [
            Event::Listed {
                id: id.clone(),
                points: 2,
            },
            Event::Judged(Judged {
                id,
                points: 2,
                verdict: Verdict::Timeout("slow".into()),
                report: "TIMEOUT: slow".into(),
                duration_ms: 7,
            }),
        ];
        let file = Events(Some(Mutex::new(fs::File::create(&path).unwrap())));
        for event in &events {
            file.write(event);
        }
        assert_eq!(read(&path), events);
    }
}
