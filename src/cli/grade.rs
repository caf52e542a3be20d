//! `course grade` and `course verify`: build the graded suite, leaving out
//! the chapters that do not compile; run it with a progress bar; report.
//!
//! The suite itself is `cargo test -p exercises --test graded`. This module
//! builds that test binary through cargo (`--message-format=json`, so the
//! compiler's errors arrive with their files), runs it with
//! [`course::grader::ENV_EVENTS`] set, and reads the trials' verdicts from
//! the events file as they come.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::sums;

/// The crate under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Package {
    /// The learner's stubs (what `course grade` grades).
    Exercises,
    /// The reference solutions (what `course verify` checks too).
    Solutions,
}

impl Package {
    fn name(self) -> &'static str {
        match self {
            Package::Exercises => "exercises",
            Package::Solutions => "solutions",
        }
    }
}

/// A chapter left out because its code does not compile.
#[derive(Debug, Clone)]
pub struct BuildError {
    /// `ch03`.
    pub chapter: String,
    /// The first compiler error in the chapter's files, as rustc renders it.
    pub message: String,
}

/// One trial's verdict, as the suite's events file reports it.
#[derive(Debug, Clone)]
pub struct Judged {
    /// `ch01::spawn_all::returns_results_in_input_order`.
    pub id: String,
    /// What the trial is worth.
    pub points: u32,
    /// `PASS`, `FAIL`, `TIMEOUT`, ...
    pub verdict: String,
    /// Why it did not pass (one sentence; empty for a pass).
    pub reason: String,
    /// The verdict with the tail of the trial's output.
    pub report: String,
    /// How long the trial took, spawn to verdict.
    pub duration_ms: u64,
}

impl Judged {
    fn passed(&self) -> bool {
        self.verdict == "PASS"
    }

    /// `ch01::spawn_all`.
    fn exercise(&self) -> &str {
        match self.id.rmatch_indices("::").next() {
            Some((cut, _)) => &self.id[..cut],
            None => &self.id,
        }
    }

    fn chapter(&self) -> &str {
        self.id.split("::").next().unwrap_or("")
    }
}

/// Everything one grading run found out.
#[derive(Debug, Clone)]
pub struct Report {
    /// The crate graded.
    pub package: Package,
    /// `ch03`, `ch03::with_gil`, or none for the whole course.
    pub selection: Option<String>,
    /// Chapters that did not compile.
    pub broken: Vec<BuildError>,
    /// Compiler warnings in the chapters' code.
    pub warnings: Warnings,
    /// The trials that ran, in the suite's order.
    pub judged: Vec<Judged>,
    /// Graded files whose checksum differs from the recorded one.
    pub edited: Vec<String>,
}

/// Why grading could not even start.
#[derive(Debug)]
pub struct Fatal(pub String);

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `grade` should do beyond grading.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Show a progress bar and the table (off for `verify`'s quiet runs).
    pub interactive: bool,
}

/// Builds and runs the graded suite of `package` for `selection` (a
/// chapter such as `ch03`, a trial id prefix, or everything).
pub fn grade(
    root: &Path,
    package: Package,
    selection: Option<&str>,
    options: Options,
) -> Result<Report, Fatal> {
    // A bare exercise name (`spawn_all`) means its chapter's exercise.
    let resolved;
    let selection = match selection {
        Some(name) if !name.starts_with("ch") => {
            let found: Vec<String> = super::hint::all(root)
                .into_iter()
                .map(|hints| hints.exercise)
                .filter(|exercise| exercise.ends_with(&format!("::{name}")))
                .collect();
            match found.as_slice() {
                [one] => {
                    resolved = one.clone();
                    Some(resolved.as_str())
                }
                [] => {
                    return Err(Fatal(format!(
                        "no exercise {name:?}: name a chapter (ch01) or an \
                         exercise (ch01::spawn_all)"
                    )));
                }
                several => {
                    return Err(Fatal(format!(
                        "{name:?} is in more than one chapter: {}",
                        several.join(", ")
                    )));
                }
            }
        }
        other => other,
    };
    let known = crate::registry::chapter_ids(root);
    let wanted: Vec<&str> = match selection {
        Some(selection) => {
            let chapter = selection.split("::").next().unwrap_or(selection);
            if !known.iter().any(|k| k == chapter) {
                return Err(Fatal(format!(
                    "no chapter {chapter:?}: the chapters are {}",
                    known.join(", ")
                )));
            }
            vec![chapter]
        }
        None => known.iter().map(String::as_str).collect(),
    };
    let spinner = options.interactive.then(|| {
        let bar = ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    });
    let (binary, broken, warnings) =
        build_leaving_out_broken(root, package, &wanted, spinner.as_ref())?;
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    let judged = match binary {
        Some(binary) => run_suite(root, package, &binary, selection, options)?,
        None => Vec::new(),
    };
    Ok(Report {
        package,
        selection: selection.map(str::to_string),
        broken,
        warnings,
        judged,
        edited: sums::edited(root),
    })
}

/// Builds the suite with `chapters` on; when a chapter's files have
/// errors, turns it off and tries again. The test binary (none if no
/// chapter compiles) and the chapters left out.
fn build_leaving_out_broken(
    root: &Path,
    package: Package,
    chapters: &[&str],
    spinner: Option<&ProgressBar>,
) -> Result<(Option<PathBuf>, Vec<BuildError>, Warnings), Fatal> {
    let mut on: Vec<&str> = chapters.to_vec();
    let mut broken: Vec<BuildError> = Vec::new();
    while !on.is_empty() {
        if let Some(spinner) = spinner {
            spinner.set_message(format!(
                "building the {} ({})",
                package.name(),
                on.join(" ")
            ));
        }
        match build(root, package, &on)? {
            Built::Binary(binary, warnings) => {
                broken.sort_by(|a, b| a.chapter.cmp(&b.chapter));
                return Ok((Some(binary), broken, warnings));
            }
            Built::Errors(errors) => {
                let before = on.len();
                for error in errors {
                    on.retain(|chapter| *chapter != error.chapter);
                    broken.push(error);
                }
                if on.len() == before {
                    return Err(Fatal(
                        "the build fails in a chapter that is already off"
                            .to_string(),
                    ));
                }
            }
        }
    }
    broken.sort_by(|a, b| a.chapter.cmp(&b.chapter));
    Ok((None, broken, Warnings::new()))
}

/// A chapter's compiler warnings: how many, and the first's headline.
pub type Warnings = BTreeMap<String, (usize, String)>;

enum Built {
    Binary(PathBuf, Warnings),
    /// The first error of each chapter that did not compile.
    Errors(Vec<BuildError>),
}

/// cargo, the one that runs us if cargo does.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn build(
    root: &Path,
    package: Package,
    chapters: &[&str],
) -> Result<Built, Fatal> {
    let output = cargo()
        .current_dir(root)
        .args(["test", "--quiet", "--package", package.name()])
        .args(["--test", "graded", "--no-run", "--message-format=json"])
        // The chapters to compile (see src/registry/build.rs).
        .env("COURSE_CHAPTERS", chapters.join(","))
        .stdin(Stdio::null())
        .output()
        .map_err(|error| Fatal(format!("cannot run cargo: {error}")))?;
    let mut binary = None;
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    let mut elsewhere = None;
    let mut warnings = Warnings::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match message["reason"].as_str() {
            Some("compiler-artifact")
                if message["target"]["name"] == "graded" =>
            {
                binary = message["executable"].as_str().map(PathBuf::from);
            }
            Some("compiler-message")
                if message["message"]["level"] == "error" =>
            {
                let diagnostic = &message["message"];
                let rendered =
                    diagnostic["rendered"].as_str().unwrap_or("").trim_end();
                match chapter_of(diagnostic) {
                    Some(chapter) => {
                        errors.entry(chapter).or_insert(rendered.to_string());
                    }
                    None if has_span(diagnostic) => {
                        elsewhere.get_or_insert(rendered.to_string());
                    }
                    // "aborting due to 2 previous errors" and the like.
                    None => {}
                }
            }
            Some("compiler-message")
                if message["message"]["level"] == "warning" =>
            {
                let diagnostic = &message["message"];
                let in_src =
                    diagnostic["spans"].as_array().is_some_and(|spans| {
                        spans.iter().any(|span| {
                            span["file_name"]
                                .as_str()
                                .is_some_and(|f| f.contains("/src/"))
                        })
                    });
                if let Some(chapter) = chapter_of(diagnostic).filter(|_| in_src)
                {
                    let rendered =
                        diagnostic["rendered"].as_str().unwrap_or("");
                    let entry = warnings
                        .entry(chapter)
                        .or_insert((0, error_headline(rendered)));
                    entry.0 += 1;
                }
            }
            _ => {}
        }
    }
    if output.status.success() {
        return binary.map(|b| Built::Binary(b, warnings)).ok_or_else(|| {
            Fatal("cargo built the suite but named no test binary".into())
        });
    }
    if let Some(message) = elsewhere {
        return Err(Fatal(format!(
            "the {} crate does not compile outside a chapter's files:\n\
             {message}",
            package.name()
        )));
    }
    if errors.is_empty() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Fatal(format!("cargo failed:\n{}", stderr.trim_end())));
    }
    Ok(Built::Errors(
        errors
            .into_iter()
            .map(|(chapter, message)| BuildError { chapter, message })
            .collect(),
    ))
}

fn has_span(diagnostic: &Value) -> bool {
    diagnostic["spans"]
        .as_array()
        .is_some_and(|spans| !spans.is_empty())
}

/// The chapter whose file the diagnostic's primary span is in: a part of
/// the file's path starts with `chNN` (`src/ch05_no_gil.rs`, or a
/// learner's `src/ch05_no_gil/helpers.rs`). An error inside a macro of a
/// dependency is placed where the macro was called.
fn chapter_of(diagnostic: &Value) -> Option<String> {
    let spans = diagnostic["spans"].as_array()?;
    let mut span = spans
        .iter()
        .find(|span| span["is_primary"] == true)
        .or(spans.first())?;
    loop {
        let file = Path::new(span["file_name"].as_str()?);
        let found = file.components().find_map(|part| {
            let part = part.as_os_str().to_str()?;
            let stem = part.strip_suffix(".rs").unwrap_or(part);
            crate::registry::chapter_of_module(stem)
        });
        if let Some(chapter) = found {
            return Some(chapter.to_string());
        }
        span = span["expansion"]["span"]
            .as_object()
            .map(|_| &span["expansion"]["span"])?;
    }
}

/// Runs the built suite, listing first so the progress bar knows its length.
fn run_suite(
    root: &Path,
    package: Package,
    binary: &Path,
    selection: Option<&str>,
    options: Options,
) -> Result<Vec<Judged>, Fatal> {
    let scratch = tempfile::tempdir().map_err(|error| {
        Fatal(format!("cannot make a temporary dir: {error}"))
    })?;
    let log = scratch.path().join("suite.log");
    let run = |events: &Path, list: bool| {
        let output = fs::File::create(&log).map_err(|error| {
            Fatal(format!("cannot write {}: {error}", log.display()))
        })?;
        let errors = output.try_clone().map_err(|error| {
            Fatal(format!("cannot write {}: {error}", log.display()))
        })?;
        let mut command = Command::new(binary);
        // As `cargo test` would: from the package's folder.
        command
            .current_dir(root.join(package.name()))
            .env(crate::grader::ENV_EVENTS, events)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors);
        if list {
            command.arg("--list");
        }
        if let Some(selection) = selection {
            command.arg(selection);
        }
        command.spawn().map_err(|error| {
            Fatal(format!("cannot run {}: {error}", binary.display()))
        })
    };
    let listing = scratch.path().join("listed.jsonl");
    let status = run(&listing, true)?.wait();
    let listed = read_events(&listing);
    if !status.is_ok_and(|status| status.success()) {
        return Err(Fatal(format!("{} --list failed", binary.display())));
    }
    if listed.is_empty() {
        return Err(Fatal(format!(
            "no trial matches {:?}; `cargo test -p exercises -- --list` \
             lists them",
            selection.unwrap_or("")
        )));
    }
    let bar = if options.interactive {
        let bar = ProgressBar::new(listed.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} trials  {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let events = scratch.path().join("judged.jsonl");
    let mut child = run(&events, false)?;
    // The suite appends a line per trial; follow the file until it exits.
    let mut seen = 0;
    loop {
        let finished = child
            .try_wait()
            .map_err(|error| Fatal(format!("lost the suite: {error}")))?;
        let judged = read_events(&events);
        for trial in &judged[seen..] {
            let mark = if trial.passed() { "ok" } else { &trial.verdict };
            bar.set_message(format!("{} {mark}", trial.id));
            bar.inc(1);
        }
        seen = judged.len();
        if finished.is_some() {
            bar.finish_and_clear();
            // Trials finish in any order; report them in the suite's.
            let order: BTreeMap<&str, usize> = listed
                .iter()
                .enumerate()
                .map(|(at, trial)| (trial.id.as_str(), at))
                .collect();
            let mut judged = judged;
            // A suite that died (it should not) leaves trials unjudged:
            // they count as failed, never as missing.
            let tail = || {
                let log = fs::read_to_string(&log).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                lines[lines.len().saturating_sub(5)..].join("\n  ")
            };
            for trial in &listed {
                if !judged.iter().any(|j| j.id == trial.id) {
                    judged.push(Judged {
                        verdict: "NOT-RUN".to_string(),
                        reason: format!(
                            "the suite stopped ({}) before this trial ran; \
                             its last words:\n  {}",
                            finished.map_or("?".into(), |s| s.to_string()),
                            tail()
                        ),
                        ..trial.clone()
                    });
                }
            }
            judged.sort_by_key(|trial| order.get(trial.id.as_str()).copied());
            return Ok(judged);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn read_events(path: &Path) -> Vec<Judged> {
    let Ok(file) = fs::File::open(path) else {
        return Vec::new();
    };
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
        .filter(|event| event["id"].is_string())
        .map(|event| Judged {
            id: event["id"].as_str().unwrap_or("").to_string(),
            points: event["points"].as_u64().unwrap_or(0) as u32,
            verdict: event["verdict"].as_str().unwrap_or("").to_string(),
            reason: event["reason"].as_str().unwrap_or("").to_string(),
            report: event["report"].as_str().unwrap_or("").to_string(),
            duration_ms: event["duration_ms"].as_u64().unwrap_or(0),
        })
        .collect()
}

impl Report {
    /// Points earned and possible; a chapter that did not compile counts
    /// its recorded points as possible.
    pub fn score(&self, root: &Path) -> (u32, u32) {
        let earned = self
            .judged
            .iter()
            .filter(|t| t.passed())
            .map(|t| t.points)
            .sum();
        let recorded = sums::chapter_points(root);
        let lost: u32 = self
            .broken
            .iter()
            .map(|b| recorded.get(&b.chapter).copied().unwrap_or(0))
            .sum();
        let possible = self.judged.iter().map(|t| t.points).sum::<u32>() + lost;
        (earned, possible)
    }

    /// Every trial passed and every chapter compiled.
    pub fn all_passed(&self) -> bool {
        self.broken.is_empty() && self.judged.iter().all(Judged::passed)
    }

    /// The report as a learner reads it.
    pub fn render(&self, root: &Path) -> String {
        let mut out = String::new();
        let failed: Vec<&Judged> =
            self.judged.iter().filter(|t| !t.passed()).collect();
        // The first few; the table counts the rest.
        const LISTED: usize = 8;
        if !failed.is_empty() {
            let _ = writeln!(out, "trials that did not pass:");
            for trial in failed.iter().take(LISTED) {
                let _ = writeln!(
                    out,
                    "  {:<13} {}  {}",
                    trial.verdict,
                    trial.id,
                    first_line(&trial.reason)
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
        let mut chapters: BTreeMap<&str, Vec<(&str, [u32; 4])>> =
            BTreeMap::new();
        for trial in &self.judged {
            let exercises = chapters.entry(trial.chapter()).or_default();
            let name = trial.exercise().split("::").nth(1).unwrap_or("");
            if exercises.last().is_none_or(|(e, _)| *e != name) {
                exercises.push((name, [0; 4]));
            }
            let cell = &mut exercises.last_mut().unwrap().1;
            cell[0] += if trial.passed() { trial.points } else { 0 };
            cell[1] += trial.points;
            cell[2] += u32::from(trial.passed());
            cell[3] += 1;
        }
        let recorded = sums::chapter_points(root);
        let mut out = String::from("score by chapter and exercise\n");
        for chapter in crate::registry::chapter_ids(root) {
            let chapter = chapter.as_str();
            if let Some(error) =
                self.broken.iter().find(|b| b.chapter == chapter)
            {
                let points = recorded.get(chapter).copied().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "  {chapter:<28}   0/{points:<3} points  BUILD-ERROR: {}",
                    error_headline(&error.message)
                );
                continue;
            }
            let Some(exercises) = chapters.get(chapter) else {
                continue;
            };
            let got: u32 = exercises.iter().map(|(_, c)| c[0]).sum();
            let of: u32 = exercises.iter().map(|(_, c)| c[1]).sum();
            let _ = writeln!(out, "  {chapter:<28} {got:>3}/{of:<3} points");
            for (exercise, [got, of, passed, tests]) in exercises {
                let mark = if got == of { "  done" } else { "" };
                let _ = writeln!(
                    out,
                    "    {exercise:<26} {got:>3}/{of:<3} points  \
                     ({passed} of {tests} tests passed){mark}"
                );
            }
        }
        let (earned, possible) = self.score(root);
        let percent = earned * 100 / possible.max(1);
        let _ =
            writeln!(out, "score: {earned}/{possible} points ({percent} %)");
        out
    }

    /// What to do next: fix the first broken chapter, or work on the first
    /// exercise not yet done, with its file, book page and the first
    /// failing trial's report.
    fn next(&self, root: &Path) -> Option<String> {
        let unsolved = self.judged.iter().find(|t| !t.passed());
        let broken = self.broken.first();
        let broken_first = match (broken, unsolved) {
            (Some(b), Some(t)) => b.chapter.as_str() <= t.chapter(),
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
        let trial = unsolved?;
        let exercise = trial.exercise();
        let mut out = format!("next: {exercise}\n");
        if let Some((file, line)) = locate(root, exercise) {
            let _ = writeln!(out, "  code:  {file}:{line}");
        }
        if let Some(page) = book_page(root, trial.chapter()) {
            let _ = writeln!(out, "  read:  {page}");
        }
        let _ = writeln!(out, "  hint:  cargo course hint {exercise}");
        let _ = writeln!(out, "  first failing trial: {}", trial.id);
        for line in trial.report.lines() {
            let _ = writeln!(out, "    {line}");
        }
        Some(out)
    }

    /// The report as JSON, for an instructor's scripts.
    pub fn to_json(&self, root: &Path) -> Value {
        let (earned, possible) = self.score(root);
        json!({
            "course": env!("CARGO_PKG_VERSION"),
            "package": self.package.name(),
            "selection": self.selection,
            "score": { "earned": earned, "possible": possible },
            "build_errors": self.broken.iter().map(|b| json!({
                "chapter": b.chapter,
                "message": b.message,
            })).collect::<Vec<_>>(),
            "trials": self.judged.iter().map(|t| json!({
                "id": t.id,
                "points": t.points,
                "verdict": t.verdict,
                "reason": t.reason,
                "duration_ms": t.duration_ms,
            })).collect::<Vec<_>>(),
            "edited_files": self.edited,
        })
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// `error[E0308]: mismatched types --> exercises/src/ch03_gil.rs:40:5`.
fn error_headline(message: &str) -> String {
    let headline = first_line(message);
    let place = message
        .lines()
        .find_map(|line| line.trim_start().strip_prefix("--> "))
        .unwrap_or("");
    format!("{headline} at {place}")
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

    #[test]
    fn headline_names_the_error_and_its_place() {
        let message = "error[E0308]: mismatched types\n  --> \
                       exercises/src/ch03_gil.rs:40:5\n   |";
        assert_eq!(
            error_headline(message),
            "error[E0308]: mismatched types at exercises/src/ch03_gil.rs:40:5"
        );
    }
}
