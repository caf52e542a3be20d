//! `course grade` and `course verify`: build the graded suite, leaving out
//! the chapters that do not compile; run it with a progress bar; report.
//!
//! The suite itself is `cargo test -p exercises --test graded`. This module
//! builds that test binary through cargo (`--message-format=json`, so the
//! compiler's errors arrive with their files), runs it with
//! [`course::grader::ENV_EVENTS`] set, and reads the trials' verdicts from
//! the events file as they come.
//!
//! The parts: `build` (cargo, and which chapters do not compile), `run`
//! (the suite and its events), `report` (what a learner and an
//! instructor read).

mod build;
mod isolate;
mod report;
mod run;

use std::path::Path;
use std::time::Duration;

use indicatif::ProgressBar;

use super::sums;
use crate::grader::Verdict;
pub use crate::grader::events::Judged;
pub use build::Warnings;

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

/// Code that does not compile: a whole chapter left out, or one exercise
/// stubbed out again while the rest of its chapter is graded.
#[derive(Debug, Clone)]
pub struct BuildError {
    /// `ch03`.
    pub chapter: String,
    /// `ch03::with_gil` when only that exercise was stubbed out; `None`
    /// when the whole chapter was left out.
    pub exercise: Option<String>,
    /// The first compiler error, as rustc renders it.
    pub message: String,
}

/// Everything one grading run found out.
#[derive(Debug, Clone)]
pub struct Report {
    /// The crate graded.
    pub package: Package,
    /// The trials, or the loom models.
    pub suite: Suite,
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
    /// Grade the loom models (`exercises/tests/loom.rs`, built with
    /// `--cfg loom`) instead of the graded suite.
    pub loom: bool,
}

/// The suite a grading run builds and runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// `tests/graded.rs`: the trials.
    Graded,
    /// `tests/loom.rs` under `--cfg loom`, in release and a target dir of
    /// its own: the model checks of the atomics exercises.
    Loom,
}

impl Suite {
    fn of(options: Options) -> Self {
        if options.loom {
            Suite::Loom
        } else {
            Suite::Graded
        }
    }

    /// The test target's name.
    pub fn target(self) -> &'static str {
        match self {
            Suite::Graded => "graded",
            Suite::Loom => "loom",
        }
    }
}

/// Builds and runs the graded suite of `package` for `selection` (a
/// chapter such as `ch03`, a trial id prefix, or everything).
pub fn grade(
    root: &Path,
    package: Package,
    selection: Option<&str>,
    options: Options,
) -> Result<Report, Fatal> {
    let selection = resolve(root, selection)?;
    let selection = selection.as_deref();
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
    let suite = Suite::of(options);
    let (binary, broken, warnings) = build::build_leaving_out_broken(
        root,
        (package, suite),
        &wanted,
        spinner.as_ref(),
    )?;
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    let mut judged = match binary {
        Some(binary) => {
            run::run_suite(root, (package, suite), &binary, selection, options)?
        }
        None => Vec::new(),
    };
    // A place in a copy of a module is the same place in the learner's
    // file: name that one.
    let copies = format!("{}/", isolate::copies_dir(root, package).display());
    let theirs = format!("{}/src/", package.name());
    for trial in &mut judged {
        if trial.report.contains(&copies) {
            trial.report = trial.report.replace(&copies, &theirs);
            let reason = trial.verdict.reason().replace(&copies, &theirs);
            if let Some(v) = Verdict::from_parts(trial.verdict.label(), &reason)
            {
                trial.verdict = v;
            }
        }
    }
    // The trials of an exercise that was stubbed out again reached its
    // `todo!()`: what they report is the compile error.
    for trial in &mut judged {
        let stubbed = broken
            .iter()
            .find(|b| b.exercise.as_deref() == Some(trial.id.exercise()));
        if let Some(error) = stubbed {
            trial.verdict =
                Verdict::BuildError(build::error_headline(&error.message));
            trial.report = format!("BUILD-ERROR:\n{}", error.message);
        }
    }
    Ok(Report {
        package,
        suite,
        selection: selection.map(str::to_string),
        broken,
        warnings,
        judged,
        edited: sums::edited(root),
    })
}

/// A bare exercise name (`spawn_all`) means its chapter's exercise; any
/// other selection stands as it is.
fn resolve(
    root: &Path,
    selection: Option<&str>,
) -> Result<Option<String>, Fatal> {
    let Some(name) = selection else {
        return Ok(None);
    };
    if name.starts_with("ch") {
        return Ok(Some(name.to_string()));
    }
    let found: Vec<String> = super::hint::all(root)
        .into_iter()
        .map(|hints| hints.exercise)
        .filter(|exercise| exercise.ends_with(&format!("::{name}")))
        .collect();
    match found.as_slice() {
        [one] => Ok(Some(one.clone())),
        [] => Err(Fatal(format!(
            "no exercise {name:?}: name a chapter (ch01) or an exercise \
             (ch01::spawn_all)"
        ))),
        several => Err(Fatal(format!(
            "{name:?} is in more than one chapter: {}",
            several.join(", ")
        ))),
    }
}

pub use crate::spawn::cargo;
