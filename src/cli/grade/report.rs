//! What one grading run found out, as a learner reads it (the score table,
//! what to do next) and as an instructor's scripts read it (JSON).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::build::error_headline;
use super::{Judged, Report, sums};
use crate::grader::Verdict;
use crate::grader::score::{Scored, Unbuilt, score_table};
use crate::registry::contract;

impl Report {
    /// Points earned and possible; a chapter that did not compile counts
    /// its recorded points as possible.
    pub fn score(&self, root: &Path) -> (u32, u32) {
        let earned = self
            .judged
            .iter()
            .filter(|t| t.verdict.passed())
            .map(|t| t.points)
            .sum();
        let recorded = sums::chapter_points(root);
        let lost: u32 = self
            .chapters_left_out()
            .map(|b| recorded.get(&b.chapter).copied().unwrap_or(0))
            .sum();
        let possible = self.judged.iter().map(|t| t.points).sum::<u32>() + lost;
        (earned, possible)
    }

    /// The chapters left out whole (not those with one exercise stubbed
    /// out: their trials ran).
    fn chapters_left_out(&self) -> impl Iterator<Item = &super::BuildError> {
        self.broken.iter().filter(|b| b.exercise.is_none())
    }

    /// Every trial passed and every chapter compiled.
    pub fn all_passed(&self) -> bool {
        self.broken.is_empty() && self.judged.iter().all(|t| t.verdict.passed())
    }

    /// The report as a learner reads it.
    pub fn render(&self, root: &Path) -> String {
        let mut out = String::new();
        let failed: Vec<&Judged> =
            self.judged.iter().filter(|t| !t.verdict.passed()).collect();
        // The first few; the table counts the rest.
        const LISTED: usize = 8;
        if !failed.is_empty() {
            let _ = writeln!(out, "trials that did not pass:");
            for trial in failed.iter().take(LISTED) {
                let _ = writeln!(
                    out,
                    "  {:<13} {}  {}",
                    trial.verdict.label(),
                    trial.id,
                    first_line(trial.verdict.reason())
                );
            }
            if failed.len() > LISTED {
                let _ =
                    writeln!(out, "  ... and {} more", failed.len() - LISTED);
            }
            out.push('\n');
        }
        out.push_str(&self.table(root));
        for (chapter, (count, first)) in &self.warnings {
            let _ = writeln!(
                out,
                "{chapter}: {count} compiler warning(s), the first: {first} \
                 (`cargo build -p exercises` shows them all; they often \
                 point at the bug)"
            );
        }
        if !self.edited.is_empty() {
            let _ = writeln!(
                out,
                "warning: {} differ(s) from the version the course recorded \
                 (exercises/tests/graded.sums): this grade may not be what \
                 your instructor's copy gives",
                self.edited.join(", ")
            );
        }
        if let Some(next) = self.next(root) {
            out.push('\n');
            out.push_str(&next);
        }
        out
    }

    fn table(&self, root: &Path) -> String {
        let recorded = sums::chapter_points(root);
        let unbuilt: Vec<Unbuilt<'_>> = self
            .chapters_left_out()
            .map(|b| Unbuilt {
                chapter: &b.chapter,
                points: recorded.get(&b.chapter).copied().unwrap_or(0),
                headline: error_headline(&b.message),
            })
            .collect();
        let scores: Vec<Scored<'_>> = self
            .judged
            .iter()
            .map(|t| Scored {
                id: &t.id,
                points: t.points,
                passed: t.verdict.passed(),
            })
            .collect();
        score_table(&scores, &unbuilt)
    }

    /// What to do next: fix the first broken chapter, or work on the first
    /// exercise not yet done, with its file, book page and the first
    /// failing trial's report.
    pub fn next(&self, root: &Path) -> Option<String> {
        let unsolved = self.judged.iter().find(|t| !t.verdict.passed());
        let broken = self.chapters_left_out().next();
        let broken_first = match (broken, unsolved) {
            (Some(b), Some(t)) => b.chapter.as_str() <= t.id.chapter(),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if broken_first {
            let broken = broken?;
            return Some(format!(
                "next: {} does not compile; its other exercises cannot be \
                 graded until it does. The first error:\n\n{}\n",
                broken.chapter, broken.message
            ));
        }
        let Some(trial) = unsolved else {
            return self.after_all_passed(root);
        };
        let exercise = trial.id.exercise();
        let mut out = format!("next: {exercise}\n");
        if let Verdict::BuildError(_) = trial.verdict {
            out = format!(
                "next: {exercise} does not compile (the chapter's other \
                 exercises are graded)\n"
            );
        }
        if let Some((file, line)) = locate(root, exercise) {
            let _ = writeln!(out, "  code:  {file}:{line}");
        }
        if let Some(page) = book_page(root, trial.id.chapter()) {
            let _ = writeln!(out, "  read:  {page}");
        }
        let _ = writeln!(out, "  hint:  cargo course hint {exercise}");
        let _ = writeln!(out, "  first failing trial: {}", trial.id);
        if let Some(promise) = contract::promise_of(root, trial.id.as_str()) {
            let _ = writeln!(out, "  it checks: {promise}");
            let _ = writeln!(
                out,
                "  (every promise: cargo course hint --spec {exercise})"
            );
        }
        for line in trial.report.lines() {
            let _ = writeln!(out, "    {line}");
        }
        Some(out)
    }

    /// What to do once everything selected passes: the next chapter, or
    /// nothing left.
    fn after_all_passed(&self, root: &Path) -> Option<String> {
        if self.judged.is_empty() {
            return None;
        }
        let chapters = crate::registry::chapters(root);
        if let Some((chapter, _)) =
            self.selection.as_deref().and_then(|s| s.split_once("::"))
        {
            return Some(format!(
                "next: the rest of the chapter: cargo course grade {chapter}\n"
            ));
        }
        let done = self.selection.as_deref();
        let next = match done {
            // One chapter (or one of its exercises) passes: the next one.
            Some(done) => chapters.iter().skip_while(|c| c.id != done).nth(1),
            None => None,
        };
        let Some(next) = next else {
            return Some(if done.is_some() {
                "next: this was the last chapter; `cargo course grade` \
                 grades them all\n"
                    .to_string()
            } else {
                "every exercise passes: the course is done\n".to_string()
            });
        };
        let mut out = format!("next: chapter {}\n", next.id);
        if let Some(page) = book_page(root, &next.id) {
            let _ = writeln!(out, "  read:  {page}");
        }
        let _ = writeln!(out, "  then:  cargo course watch {}", next.id);
        Some(out)
    }

    /// Every exercise with its status and points, as `course list` prints
    /// them: done, in progress, not started (every trial reached a
    /// `todo!()`), or does not compile.
    pub fn list(&self, root: &Path) -> String {
        let mut out = String::new();
        let shown = crate::cli::hint::shown(root);
        for chapter in crate::registry::chapter_ids(root) {
            if let Some(broken) =
                self.chapters_left_out().find(|b| b.chapter == chapter)
            {
                out.push_str(&self.list_broken(root, broken));
                continue;
            }
            let mut exercises: Vec<&str> = Vec::new();
            for trial in
                self.judged.iter().filter(|t| t.id.chapter() == chapter)
            {
                if !exercises.contains(&trial.id.exercise()) {
                    exercises.push(trial.id.exercise());
                }
            }
            for exercise in exercises {
                let hints =
                    shown.get(exercise).map(|n| format!(", {n} hint(s) seen"));
                let _ = writeln!(
                    out,
                    "  {exercise:<34} {}{}",
                    self.status(exercise),
                    hints.unwrap_or_default()
                );
            }
        }
        if !shown.is_empty() {
            let _ = writeln!(
                out,
                "(hints seen are kept in target/course-hints.txt; `cargo \
                 course hint <exercise> --reset` hides an exercise's again)"
            );
        }
        out
    }

    /// One exercise's points and status.
    fn status(&self, exercise: &str) -> String {
        let trials: Vec<&Judged> = self
            .judged
            .iter()
            .filter(|t| t.id.exercise() == exercise)
            .collect();
        let passing = || trials.iter().filter(|t| t.verdict.passed());
        let got: u32 = passing().map(|t| t.points).sum();
        let of: u32 = trials.iter().map(|t| t.points).sum();
        let passed = passing().count();
        let untouched = trials
            .iter()
            .all(|t| matches!(t.verdict, Verdict::NotImplemented(_)));
        let unbuilt = trials
            .iter()
            .all(|t| matches!(t.verdict, Verdict::BuildError(_)));
        let status = if passed == trials.len() {
            "done".to_string()
        } else if unbuilt {
            "does not compile".to_string()
        } else if untouched {
            "not started".to_string()
        } else {
            format!("in progress ({passed} of {} trials pass)", trials.len())
        };
        format!("{got:>3}/{of:<3} points  {status}")
    }

    /// The exercises of a chapter that does not compile (by its hints).
    fn list_broken(&self, root: &Path, broken: &super::BuildError) -> String {
        let points = sums::chapter_points(root)
            .get(&broken.chapter)
            .copied()
            .unwrap_or(0);
        let mut out = String::new();
        let hinted = crate::cli::hint::all(root);
        let prefix = format!("{}::", broken.chapter);
        for hints in hinted.iter().filter(|h| h.exercise.starts_with(&prefix)) {
            let _ = writeln!(
                out,
                "  {:<34} {:>3}/{:<3} points  does not compile",
                hints.exercise, "-", "-"
            );
        }
        let _ = writeln!(
            out,
            "  ({}: 0/{points} points until it compiles: {})",
            broken.chapter,
            error_headline(&broken.message)
        );
        out
    }

    /// The report as JSON, for an instructor's scripts.
    pub fn to_json(&self, root: &Path) -> Value {
        let (earned, possible) = self.score(root);
        json!({
            "course": env!("CARGO_PKG_VERSION"),
            "package": self.package.name(),
            "suite": self.suite.target(),
            "selection": self.selection,
            "score": { "earned": earned, "possible": possible },
            "build_errors": self.broken.iter().map(|b| json!({
                "exercise": b.exercise,
                "chapter": b.chapter,
                "message": b.message,
            })).collect::<Vec<_>>(),
            "trials": self.judged.iter().map(|t| json!({
                "id": t.id.as_str(),
                "points": t.points,
                "verdict": t.verdict.label(),
                "reason": t.verdict.reason(),
                "promise": contract::promise_of(root, t.id.as_str()),
                "duration_ms": t.duration_ms,
            })).collect::<Vec<_>>(),
            "edited_files": self.edited,
        })
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// The file and line where an exercise (`ch06::ticket_lock`) is defined:
/// the item whose name, without underscores and case, is the exercise's,
/// else the first that starts with it.
fn locate(root: &Path, exercise: &str) -> Option<(String, usize)> {
    let (chapter, name) = exercise.split_once("::")?;
    let wanted = name.replace('_', "");
    let mut files: Vec<PathBuf> = fs::read_dir(root.join("exercises/src"))
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(chapter))
        })
        .collect();
    files.sort();
    let mut prefixed = None;
    for file in &files {
        let text = fs::read_to_string(file).ok()?;
        for (at, line) in text.lines().enumerate() {
            let Some(item) = defined_item(line) else {
                continue;
            };
            let item = item.replace('_', "").to_lowercase();
            let place = || {
                let shown = file.strip_prefix(root).unwrap_or(file);
                (shown.display().to_string(), at + 1)
            };
            if item == wanted {
                return Some(place());
            }
            if prefixed.is_none() && item.starts_with(&wanted) {
                prefixed = Some(place());
            }
        }
    }
    prefixed
}

/// The name a line defines at the top level: `pub fn spawn_all<...>(` →
/// `spawn_all`.
fn defined_item(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("pub ")?;
    let rest = rest.strip_prefix("async ").unwrap_or(rest);
    let rest = ["fn ", "struct ", "enum ", "trait "]
        .iter()
        .find_map(|keyword| rest.strip_prefix(keyword))?;
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The book page with the chapter's `## Exercises` section.
fn book_page(root: &Path, chapter: &str) -> Option<String> {
    let chapter = crate::registry::chapters(root)
        .into_iter()
        .find(|c| c.id == chapter)?;
    let page = chapter.exercises_page(root)?;
    let relative = page.strip_prefix(root.join("chapters")).ok()?;
    let html = relative.with_extension("html");
    Some(format!(
        "{} (in the book: {}#exercises)",
        page.strip_prefix(root).unwrap_or(&page).display(),
        html.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_found_by_their_definitions() {
        assert_eq!(defined_item("pub fn spawn_all<T>("), Some("spawn_all"));
        assert_eq!(defined_item("pub struct TicketLock {"), Some("TicketLock"));
        assert_eq!(defined_item("pub async fn serve("), Some("serve"));
        assert_eq!(defined_item("    pub fn lock(&self)"), None);
        assert_eq!(defined_item("fn helper()"), None);
    }
}
