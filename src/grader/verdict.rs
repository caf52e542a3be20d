//! How a trial ended, and what the report shows of it.

use std::fmt;

/// How many of a failed trial's output lines the report shows.
const SHOWN_LINES: usize = 12;

/// Longer output lines are cut to this many characters in the report.
const SHOWN_WIDTH: usize = 160;

/// How a trial ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exit status 0 and the nonce'd pass record.
    Pass,
    /// The trial's checks failed; the message says which and why.
    Fail(String),
    /// The code under test reached a `todo!()`: the exercise is not done.
    /// Reported at once, even from a thread the trial waits for.
    NotImplemented(String),
    /// Still running at the deadline; the whole process group was killed.
    Timeout(String),
    /// Killed by a signal (abort, segfault, stack overflow), or exited
    /// with a failure status before the trial finished.
    Crash(String),
    /// Exited with status 0 without a record: `process::exit(0)`.
    ExitedEarly(String),
    /// Wrote more than the grader's output limit; killed.
    OutputLimit(String),
    /// The checks passed, but processes the trial started were still
    /// running when it ended (the grader killed them).
    LeftRunning(String),
    /// The suite stopped before this trial ran (never written by the
    /// grader itself; `course grade` uses it for a suite that died).
    NotRun(String),
    /// The exercise's code does not compile; `course grade` stubbed it out
    /// again to grade the rest of its chapter (never written by the
    /// grader itself).
    BuildError(String),
}

/// Every verdict's label, as the events file and the report spell it.
const LABELS: [&str; 10] = [
    "PASS",
    "FAIL",
    "TODO",
    "TIMEOUT",
    "CRASH",
    "EXITED-EARLY",
    "OUTPUT-LIMIT",
    "LEFT-RUNNING",
    "NOT-RUN",
    "BUILD-ERROR",
];

impl Verdict {
    /// The verdict's name as the report prints it: `PASS`, `TIMEOUT`, ...
    pub fn label(&self) -> &'static str {
        LABELS[match self {
            Verdict::Pass => 0,
            Verdict::Fail(_) => 1,
            Verdict::NotImplemented(_) => 2,
            Verdict::Timeout(_) => 3,
            Verdict::Crash(_) => 4,
            Verdict::ExitedEarly(_) => 5,
            Verdict::OutputLimit(_) => 6,
            Verdict::LeftRunning(_) => 7,
            Verdict::NotRun(_) => 8,
            Verdict::BuildError(_) => 9,
        }]
    }

    /// Why the trial did not pass, in one sentence; empty for a pass.
    pub fn reason(&self) -> &str {
        match self {
            Verdict::Pass => "",
            Verdict::Fail(why)
            | Verdict::NotImplemented(why)
            | Verdict::Timeout(why)
            | Verdict::Crash(why)
            | Verdict::ExitedEarly(why)
            | Verdict::OutputLimit(why)
            | Verdict::LeftRunning(why)
            | Verdict::NotRun(why)
            | Verdict::BuildError(why) => why,
        }
    }

    /// The verdict a label and a reason name; `None` for an unknown label.
    pub fn from_parts(label: &str, reason: &str) -> Option<Verdict> {
        let why = reason.to_string();
        Some(match label {
            "PASS" => Verdict::Pass,
            "FAIL" => Verdict::Fail(why),
            "TODO" => Verdict::NotImplemented(why),
            "TIMEOUT" => Verdict::Timeout(why),
            "CRASH" => Verdict::Crash(why),
            "EXITED-EARLY" => Verdict::ExitedEarly(why),
            "OUTPUT-LIMIT" => Verdict::OutputLimit(why),
            "LEFT-RUNNING" => Verdict::LeftRunning(why),
            "NOT-RUN" => Verdict::NotRun(why),
            "BUILD-ERROR" => Verdict::BuildError(why),
            _ => return None,
        })
    }

    /// Whether the trial passed.
    pub fn passed(&self) -> bool {
        *self == Verdict::Pass
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass => f.write_str("PASS"),
            other => write!(f, "{}: {}", other.label(), other.reason()),
        }
    }
}

/// What the parent saw of one trial.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Everything the trial wrote to stdout, up to the limit.
    pub stdout: String,
    /// Everything the trial wrote to stderr, up to the limit.
    pub stderr: String,
}

impl Outcome {
    /// The one-line verdict and the tail of the output, each output line
    /// prefixed with `|` so that nothing the trial printed can pass for a
    /// line of the grader's own (such as a fake `test result: ok`).
    pub fn report(&self) -> String {
        let mut report = self.verdict.to_string();
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)]
        {
            let lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                continue;
            }
            let skipped = lines.len().saturating_sub(SHOWN_LINES);
            report.push_str(&format!("\n  {name} (last lines):"));
            if skipped > 0 {
                report.push_str(&format!("\n    | ... {skipped} more lines"));
            }
            for line in &lines[skipped..] {
                report.push_str("\n    | ");
                match line.char_indices().nth(SHOWN_WIDTH) {
                    Some((cut, _)) => {
                        report.push_str(&line[..cut]);
                        report.push_str(" ...");
                    }
                    None => report.push_str(line),
                }
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verdict_survives_its_label_and_reason() {
        let all = [
            Verdict::Pass,
            Verdict::Fail("a".into()),
            Verdict::NotImplemented("b".into()),
            Verdict::Timeout("c".into()),
            Verdict::Crash("d".into()),
            Verdict::ExitedEarly("e".into()),
            Verdict::OutputLimit("f".into()),
            Verdict::LeftRunning("g".into()),
            Verdict::NotRun("h".into()),
            Verdict::BuildError("i".into()),
        ];
        for verdict in all {
            let back = Verdict::from_parts(verdict.label(), verdict.reason());
            assert_eq!(back, Some(verdict));
        }
        assert_eq!(Verdict::from_parts("MAYBE", ""), None);
    }
}
