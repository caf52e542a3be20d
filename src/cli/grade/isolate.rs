//! One exercise's compile error costs that exercise only. When a chapter
//! module does not compile, `course grade` finds the exercise whose code
//! holds each error and writes a copy of the module in which that
//! exercise's function bodies are `todo!()` again; the build script
//! compiles the copy instead (`COURSE_SHADOW`, see
//! `src/registry/build.rs`), the chapter's other exercises are graded,
//! and the stubbed-out one is reported as BUILD-ERROR.
//!
//! The code is read with a small lexer that knows comments, strings and
//! character literals, enough to match braces; items are found at the top
//! level of the file. An error anywhere else (a `use`, a struct's fields,
//! a helper the learner added) still leaves the whole chapter out.

use std::collections::BTreeMap;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::build::Located;
use super::{BuildError, Fatal, Package};
use crate::cli::items::{Kind, items, line_start, same_name};

/// What the body of a stubbed-out function becomes.
pub(super) const STUBBED: &str =
    "not yet implemented: this exercise does not compile";

/// The modules compiled from a copy, and the exercises stubbed out in it.
#[derive(Debug)]
pub(super) struct Shadows<'r> {
    root: &'r Path,
    package: Package,
    /// Module (`ch01_threads`) → exercises stubbed out (`spawn_all`).
    stubbed: BTreeMap<String, Vec<String>>,
}

impl<'r> Shadows<'r> {
    pub(super) fn new(root: &'r Path, package: Package) -> Self {
        Shadows {
            root,
            package,
            stubbed: BTreeMap::new(),
        }
    }

    /// Where the copy of a module goes.
    fn copy_of(&self, module: &str) -> PathBuf {
        copies_dir(self.root, self.package).join(format!("{module}.rs"))
    }

    /// The learner's own file of a module.
    fn original(&self, module: &str) -> PathBuf {
        self.root
            .join(self.package.name())
            .join(format!("src/{module}.rs"))
    }

    /// Writes the copies; the value of `COURSE_SHADOW` that names them.
    pub(super) fn env(&self) -> Result<String, Fatal> {
        let mut pairs = Vec::new();
        for (module, exercises) in &self.stubbed {
            let text =
                fs::read_to_string(self.original(module)).map_err(|e| {
                    Fatal(format!(
                        "cannot read {}: {e}",
                        self.original(module).display()
                    ))
                })?;
            let copy = self.copy_of(module);
            let written = copy
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|()| fs::write(&copy, stub_out(&text, exercises)));
            written.map_err(|e| {
                Fatal(format!("cannot write {}: {e}", copy.display()))
            })?;
            pairs.push(format!("{module}={}", copy.display()));
        }
        Ok(pairs.join(";"))
    }

    /// Stubs out the exercises that hold a chapter's errors: the build
    /// errors to report, one per exercise. `None` when an error lies
    /// outside every exercise's function bodies, or in one already stubbed
    /// out (so stubbing does not help): then the chapter must go.
    pub(super) fn stub_out(
        &mut self,
        chapter: &str,
        errors: &[Located],
    ) -> Option<Vec<BuildError>> {
        let exercises = exercises_of(self.root, chapter);
        let mut found: Vec<(String, String, &Located)> = Vec::new();
        for error in errors {
            let module =
                Path::new(&error.file).file_stem()?.to_str()?.to_string();
            let text = fs::read_to_string(self.root.join(&error.file)).ok()?;
            let exercise = exercise_at(&text, &exercises, error.line)?;
            let done = self
                .stubbed
                .get(&module)
                .is_some_and(|s| s.contains(&exercise));
            if done {
                return None;
            }
            if !found.iter().any(|(m, e, _)| *m == module && *e == exercise) {
                found.push((module, exercise, error));
            }
        }
        if found.is_empty() {
            return None;
        }
        let mut reported = Vec::new();
        for (module, exercise, error) in found {
            self.stubbed
                .entry(module)
                .or_default()
                .push(exercise.clone());
            reported.push(BuildError {
                chapter: chapter.to_string(),
                exercise: Some(format!("{chapter}::{exercise}")),
                message: error.message.clone(),
            });
        }
        Some(reported)
    }

    /// A chapter left out whole needs no copies.
    pub(super) fn forget(&mut self, chapter: &str) {
        self.stubbed.retain(|module, _| {
            crate::registry::chapter_of_module(module) != Some(chapter)
        });
    }
}

/// The exercises of a chapter, as bare names (`spawn_all`): those its
/// trials grade, or else those its hints name.
fn exercises_of(root: &Path, chapter: &str) -> Vec<String> {
    let graded: Vec<String> = crate::registry::chapters(root)
        .into_iter()
        .filter(|c| c.id == chapter)
        .flat_map(|c| c.exercises(root))
        .collect();
    let named = if graded.is_empty() {
        let prefix = format!("{chapter}::");
        crate::cli::hint::all(root)
            .into_iter()
            .map(|h| h.exercise)
            .filter(|e| e.starts_with(&prefix))
            .collect()
    } else {
        graded
    };
    named
        .iter()
        .map(|e| e.rsplit("::").next().unwrap_or(e).to_string())
        .collect()
}

/// The exercise whose code holds line `line` (1-based) of `text`: the
/// top-level function, type or impl named after it (`spawn_all`,
/// `VisitCounter` for `visit_counter`). Only lines inside a function body
/// count, since only a body can be stubbed out again.
pub(super) fn exercise_at(
    text: &str,
    exercises: &[String],
    line: usize,
) -> Option<String> {
    let offset = line_start(text, line)?;
    let item = items(text).into_iter().find(|item| {
        item.bodies.iter().any(|(_, body)| body.contains(&offset))
    })?;
    exercises
        .iter()
        .find(|exercise| same_name(exercise, &item.name))
        .cloned()
}

/// `text` with every function body of the named exercises' items replaced
/// by a `todo!()`, and the module's own `#![cfg(module = ...)]` line
/// emptied (the copy is declared by the build script instead). Every line
/// stays where it was, so a place in the copy is the same place in the
/// learner's file.
pub(super) fn stub_out(text: &str, exercises: &[String]) -> String {
    let mut bodies: Vec<Range<usize>> = items(text)
        .into_iter()
        .filter(|item| exercises.iter().any(|e| same_name(e, &item.name)))
        .filter(|item| item.kind != Kind::Other)
        .flat_map(|item| item.bodies.into_iter().map(|(_, body)| body))
        .collect();
    bodies.sort_by_key(|body| std::cmp::Reverse(body.start));
    let mut copy = text.to_string();
    for body in bodies {
        let lines = "\n".repeat(copy[body.clone()].matches('\n').count());
        copy.replace_range(body, &format!(" todo!({STUBBED:?}); {lines}"));
    }
    copy.lines()
        .map(|line| {
            let gate =
                line.starts_with("#![cfg(") && line.contains("module = \"");
            if gate {
                "\n".to_string()
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

/// Where `Shadows` writes the copies of `package`'s modules.
pub(super) fn copies_dir(root: &Path, package: Package) -> PathBuf {
    root.join("target/course-shadow").join(package.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &str = r##"//! A chapter.
#![cfg(module = "ch01_x")]

use std::thread;

/// Sums, on threads.
pub fn parallel_sum(data: &[u64]) -> u64 {
    let brace = '{'; // a } in a comment
    let text = "a { in a string";
    let raw = r#"}"#;
    data.iter().sum::<u64>() + brace as u64 * 0 + text.len() as u64 * 0
}

/// Counts visits.
#[derive(Debug, Default)]
pub struct VisitCounter {
    count: u64,
}

impl<'a> VisitCounter {
    /// Records one.
    pub fn record(&mut self) -> u64 {
        self.count += 1;
        self.count
    }
}

fn helper() -> u32 {
    1
}
"##;

    fn exercises() -> Vec<String> {
        vec!["parallel_sum".into(), "visit_counter".into()]
    }

    fn line_of(needle: &str) -> usize {
        MODULE.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn an_error_in_a_body_names_its_exercise() {
        let at = |needle| exercise_at(MODULE, &exercises(), line_of(needle));
        assert_eq!(at("data.iter()"), Some("parallel_sum".into()));
        assert_eq!(at("self.count += 1"), Some("visit_counter".into()));
        // Not in a body: a field, an import, a helper of the learner's.
        assert_eq!(at("count: u64,"), None);
        assert_eq!(at("use std::thread"), None);
        assert_eq!(at("    1"), None);
    }

    #[test]
    fn stubbing_out_keeps_signatures_and_drops_the_gate() {
        let copy = stub_out(MODULE, &["visit_counter".into()]);
        assert!(
            copy.contains("pub fn record(&mut self) -> u64 { todo!("),
            "{copy}"
        );
        assert!(!copy.contains("self.count += 1"), "{copy}");
        assert!(copy.contains("data.iter().sum::<u64>()"), "{copy}");
        assert!(!copy.contains("#![cfg(module"), "{copy}");
        assert!(copy.contains("count: u64,"), "{copy}");
        // Every line where it was.
        assert_eq!(copy.lines().count(), MODULE.lines().count());
        let at =
            |text: &str| text.lines().position(|l| l.contains("count: u64,"));
        assert_eq!(at(&copy), at(MODULE));
    }
}
