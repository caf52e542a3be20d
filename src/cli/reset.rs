//! `course reset <exercise>`: put an exercise back as the course shipped
//! it. The function bodies of the exercise (its function, or its type's
//! methods) become the stub's again; everything else in the file, and
//! the other exercises, stay as the learner has them.
//!
//! The stub as shipped is found in the repository's history: the version
//! of the file whose SHA-256 `exercises/tests/graded.sums` records.

use std::fs;
use std::ops::Range;
use std::path::Path;
use std::process::Command;

use super::items::{Kind, items, same_name};
use super::sums;

/// What resetting `exercise` (`ch01::spawn_all`) changes, before it does:
/// the file and the functions whose bodies would go back to the stub's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `ch01::spawn_all`.
    pub exercise: String,
    /// `exercises/src/ch01_threads.rs`.
    pub file: String,
    /// The functions whose bodies go back to the stub's.
    pub functions: Vec<String>,
    text: String,
}

/// Works out what a reset of `wanted` (`ch01::spawn_all`, or `spawn_all`
/// when unambiguous) would change.
pub fn plan(root: &Path, wanted: &str) -> Result<Plan, String> {
    let exercise = super::hint::exercise(root, wanted)?;
    let (chapter, name) = exercise.split_once("::").unwrap_or(("", &exercise));
    let chapter = crate::registry::chapters(root)
        .into_iter()
        .find(|c| c.id == chapter)
        .ok_or_else(|| format!("no chapter {chapter}"))?;
    for module in &chapter.modules {
        let file = format!("exercises/src/{module}.rs");
        let mine = fs::read_to_string(root.join(&file))
            .map_err(|e| format!("cannot read {file}: {e}"))?;
        if !owns(&mine, name) {
            continue;
        }
        let shipped = shipped(root, &file)?;
        let (text, functions) = restored(&mine, &shipped, name);
        return Ok(Plan {
            exercise,
            file,
            functions,
            text,
        });
    }
    Err(format!(
        "no code of {exercise} in exercises/src/{}_*.rs",
        chapter.id
    ))
}

/// Carries the plan out.
pub fn apply(root: &Path, plan: &Plan) -> Result<(), String> {
    fs::write(root.join(&plan.file), &plan.text)
        .map_err(|e| format!("cannot write {}: {e}", plan.file))
}

/// Whether `text` has an item of the exercise with a function body.
fn owns(text: &str, exercise: &str) -> bool {
    items(text)
        .iter()
        .any(|i| same_name(exercise, &i.name) && !i.bodies.is_empty())
}

/// `mine` with the exercise's function bodies replaced by `shipped`'s
/// bodies of the same functions; the names of those that changed.
fn restored(
    mine: &str,
    shipped: &str,
    exercise: &str,
) -> (String, Vec<String>) {
    let bodies = |text: &str| -> Vec<(String, Range<usize>)> {
        items(text)
            .into_iter()
            .filter(|i| same_name(exercise, &i.name) && i.kind != Kind::Other)
            .flat_map(|i| i.bodies)
            .collect()
    };
    let originals = bodies(shipped);
    let mut mine_bodies = bodies(mine);
    mine_bodies.sort_by_key(|(_, range)| std::cmp::Reverse(range.start));
    let mut text = mine.to_string();
    let mut changed = Vec::new();
    for (function, range) in mine_bodies {
        let Some((_, original)) =
            originals.iter().find(|(f, _)| *f == function)
        else {
            continue;
        };
        let original = &shipped[original.clone()];
        if &mine[range.clone()] != original {
            text.replace_range(range, original);
            changed.push(function);
        }
    }
    changed.reverse();
    (text, changed)
}

/// The file as the course shipped it: the version in the repository's
/// history whose SHA-256 the record gives.
fn shipped(root: &Path, file: &str) -> Result<String, String> {
    let wanted = sums::recorded_stub(root, file)
        .ok_or_else(|| format!("{} records no stub of {file}", sums::SUMS))?;
    let current = fs::read(root.join(file)).unwrap_or_default();
    if sums::sha256_hex(&current) == wanted {
        return Ok(String::from_utf8_lossy(&current).into_owned());
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| o.stdout)
    };
    let commits = git(&["log", "--format=%H", "--", file])
        .ok_or("cannot read the repository's history (is git installed?)")?;
    for commit in String::from_utf8_lossy(&commits).lines() {
        let Some(text) = git(&["show", &format!("{commit}:{file}")]) else {
            continue;
        };
        if sums::sha256_hex(&text) == wanted {
            return Ok(String::from_utf8_lossy(&text).into_owned());
        }
    }
    Err(format!(
        "the stub of {file} as shipped is not in this repository's history"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exercise_s_bodies_go_back() {
        let shipped = "pub fn a() -> u8 {\n    todo!()\n}\n\
                       pub struct B;\nimpl B {\n    pub fn new() -> B {\n        todo!()\n    }\n}\n";
        let mine = "pub fn a() -> u8 {\n    1\n}\n\
                    pub struct B;\nimpl B {\n    pub fn new() -> B {\n        B\n    }\n    \
                    fn extra(&self) {}\n}\n";
        let (text, changed) = restored(mine, shipped, "b");
        assert_eq!(changed, ["new"]);
        assert!(text.contains("pub fn a() -> u8 {\n    1\n}"), "{text}");
        assert!(
            text.contains("pub fn new() -> B {\n        todo!()\n    }"),
            "{text}"
        );
        assert!(text.contains("fn extra(&self) {}"), "{text}");
    }
}
