//! The course's chapters, derived from one place: the files
//! `exercises/src/chNN_topic.rs`. Everything that needs the list of
//! chapters reads it here (grade, watch, hint, verify, the checksums, the
//! Classroom workflow, the tests) or, in the exercises' and solutions'
//! build scripts, from the same `modules.rs`.
//!
//! [`missing_pieces`] lists what a chapter lacks, so a half-added chapter
//! fails `cargo test` (`tests/registry.rs`) with a message naming the
//! piece. ARCHITECTURE.md, "Adding a chapter", is the checklist.

use std::fs;
use std::path::{Path, PathBuf};

pub mod contract;
pub mod mirror;
#[path = "modules.rs"]
mod modules;

pub use modules::chapter_of_module;

/// One chapter: `ch03` and its modules (`ch03_gil`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chapter {
    /// `ch03`.
    pub id: String,
    /// The modules of the chapter, each a file in `exercises/src`,
    /// `solutions/src` and `exercises/tests/graded`.
    pub modules: Vec<String>,
}

impl Chapter {
    /// The chapter's number as the book's folders spell it: `03`.
    pub fn number(&self) -> &str {
        self.id.strip_prefix("ch").unwrap_or(&self.id)
    }

    /// The chapter's folder of the book, `chapters/03-gil`, if it has one.
    pub fn book_dir(&self, root: &Path) -> Option<PathBuf> {
        let prefix = format!("{}-", self.number());
        let mut dirs: Vec<PathBuf> = fs::read_dir(root.join("chapters"))
            .ok()?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.is_dir()
                    && path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(&prefix))
            })
            .collect();
        dirs.sort();
        dirs.into_iter().next()
    }

    /// The chapter's pages, sorted.
    pub fn pages(&self, root: &Path) -> Vec<PathBuf> {
        let Some(dir) = self.book_dir(root) else {
            return Vec::new();
        };
        let mut pages = markdown_in(&dir);
        pages.sort();
        pages
    }

    /// The page with the chapter's `## Exercises` section.
    pub fn exercises_page(&self, root: &Path) -> Option<PathBuf> {
        self.pages(root).into_iter().find(|page| {
            fs::read_to_string(page)
                .is_ok_and(|text| text.lines().any(|l| l == "## Exercises"))
        })
    }

    /// The exercises the chapter's trials grade, in the order the suites
    /// name them: `ch03::with_gil` for trial `ch03::with_gil::...`.
    pub fn exercises(&self, root: &Path) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        for module in &self.modules {
            let suite =
                root.join(format!("exercises/tests/graded/{module}.rs"));
            let text = fs::read_to_string(suite).unwrap_or_default();
            for id in quoted_trial_ids(&text, &self.id) {
                if let Some((exercise, _)) = id.rsplit_once("::")
                    && !found.iter().any(|f| f == exercise)
                {
                    found.push(exercise.to_string());
                }
            }
        }
        found
    }
}

/// Every chapter, in order.
pub fn chapters(root: &Path) -> Vec<Chapter> {
    let mut chapters: Vec<Chapter> = Vec::new();
    for (id, module) in modules::chapter_modules(&root.join("exercises/src")) {
        match chapters.last_mut() {
            Some(last) if last.id == id => last.modules.push(module),
            _ => chapters.push(Chapter {
                id,
                modules: vec![module],
            }),
        }
    }
    chapters
}

/// The chapters' ids, in order: `ch01`, `ch02`, ...
pub fn chapter_ids(root: &Path) -> Vec<String> {
    chapters(root).into_iter().map(|c| c.id).collect()
}

fn markdown_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|e| e == "md"))
                .collect()
        })
        .unwrap_or_default()
}

/// The string literals in `text` that look like a trial id of `chapter`
/// (`"ch03::with_gil::runs_one_at_a_time"`).
fn quoted_trial_ids<'t>(text: &'t str, chapter: &str) -> Vec<&'t str> {
    let prefix = format!("\"{chapter}::");
    text.match_indices(&prefix)
        .filter_map(|(at, _)| {
            let rest = &text[at + 1..];
            let end = rest.find('"')?;
            let id = &rest[..end];
            (id.matches("::").count() == 2).then_some(id)
        })
        .collect()
}

/// What each chapter lacks, one sentence per missing piece, naming the
/// chapter and the file to add or edit. Empty when the course is whole.
pub fn missing_pieces(root: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    let chapters = chapters(root);
    if chapters.is_empty() {
        missing.push("no chapter: exercises/src has no chNN_topic.rs".into());
    }
    let summary = fs::read_to_string(root.join("chapters/SUMMARY.md"))
        .unwrap_or_default();
    for chapter in &chapters {
        missing.extend(missing_code(root, chapter));
        missing.extend(missing_book(root, chapter, &summary));
        missing.extend(missing_grading(root, chapter));
        missing.extend(contract::gaps(root, chapter));
    }
    missing.extend(unregistered(root, &chapters));
    missing
}

/// The stub, solution and trials of each module, each compiled only while
/// its chapter is on.
fn missing_code(root: &Path, chapter: &Chapter) -> Vec<String> {
    let id = &chapter.id;
    let mut missing = Vec::new();
    for module in &chapter.modules {
        let module_gate = format!("#![cfg(module = \"{module}\")]");
        let module_gate_loom =
            format!("#![cfg(all(module = \"{module}\", not(loom)))]");
        let suite_gate = format!("#![cfg(chapter = \"{id}\")]");
        let files = [
            ("stub", format!("exercises/src/{module}.rs")),
            ("solution", format!("solutions/src/{module}.rs")),
            ("trials", format!("exercises/tests/graded/{module}.rs")),
        ];
        for (what, file) in files {
            let Ok(text) = fs::read_to_string(root.join(&file)) else {
                missing.push(format!("{id}: no {what} {file}"));
                continue;
            };
            let gated = match what {
                "trials" => text.contains(&suite_gate),
                _ => {
                    text.contains(&module_gate)
                        || text.contains(&module_gate_loom)
                }
            };
            if !gated {
                let gate = if what == "trials" {
                    &suite_gate
                } else {
                    &module_gate
                };
                missing.push(format!(
                    "{id}: {file} does not start with `{gate}` (so `course \
                     grade` cannot leave it out when it does not compile)"
                ));
            }
            if what == "trials" && !text.contains("pub fn trials()") {
                missing.push(format!("{id}: {file} has no `pub fn trials()`"));
            }
        }
    }
    missing
}

/// The chapter's folder, SUMMARY entry, exercises section and questions.
fn missing_book(root: &Path, chapter: &Chapter, summary: &str) -> Vec<String> {
    let id = &chapter.id;
    let Some(dir) = chapter.book_dir(root) else {
        return vec![format!(
            "{id}: no book folder chapters/{}-topic/",
            chapter.number()
        )];
    };
    let mut missing = Vec::new();
    let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !summary.contains(&format!("]({folder}/")) {
        missing.push(format!(
            "{id}: chapters/SUMMARY.md has no page of chapters/{folder}/"
        ));
    }
    if chapter.exercises_page(root).is_none() {
        missing.push(format!(
            "{id}: no page of chapters/{folder}/ has a `## Exercises` section"
        ));
    }
    let questions: usize = chapter
        .pages(root)
        .iter()
        .map(|page| {
            let text = fs::read_to_string(page).unwrap_or_default();
            text.lines().filter(|l| is_quiz_fence(l)).count()
        })
        .sum();
    if questions < 3 {
        missing.push(format!(
            "{id}: chapters/{folder}/ has {questions} self-check question(s) \
             (````quiz blocks); a chapter needs at least 3"
        ));
    }
    missing
}

/// The opening fence of a self-check question: ````quiz (see
/// tests/quiz.rs).
fn is_quiz_fence(line: &str) -> bool {
    let line = line.trim();
    line.starts_with("```") && line.trim_start_matches('`') == "quiz"
}

/// Hints for every exercise, recorded points, and wrong solutions that
/// prove the trials catch something.
fn missing_grading(root: &Path, chapter: &Chapter) -> Vec<String> {
    let id = &chapter.id;
    let mut missing = Vec::new();
    let exercises = chapter.exercises(root);
    if exercises.is_empty() {
        missing.push(format!(
            "{id}: its trials name no exercise (ids \"{id}::exercise::behaviour\")"
        ));
    }
    let hints_file = format!("exercises/hints/{id}.md");
    match fs::read_to_string(root.join(&hints_file)) {
        Err(_) => missing.push(format!("{id}: no hints file {hints_file}")),
        Ok(hints) => {
            for exercise in &exercises {
                let name = exercise.rsplit("::").next().unwrap_or(exercise);
                if !hints.lines().any(|l| l.trim() == format!("## {name}")) {
                    missing.push(format!(
                        "{id}: {hints_file} has no `## {name}` section"
                    ));
                }
            }
        }
    }
    let sums = fs::read_to_string(root.join("exercises/tests/graded.sums"))
        .unwrap_or_default();
    if !sums
        .lines()
        .any(|l| l.starts_with(&format!("points {id} ")))
    {
        missing.push(format!(
            "{id}: exercises/tests/graded.sums records no points for it \
             (run `cargo run -- verify --write-sums`)"
        ));
    }
    for module in &chapter.modules {
        if !mutated(root, module) {
            missing.push(format!(
                "{id}: no wrong solution in tests/mutants/ patches \
                 solutions/src/{module}.rs"
            ));
        }
    }
    missing
}

/// Whether a patch of `tests/mutants/` changes the module's solution.
fn mutated(root: &Path, module: &str) -> bool {
    let target = format!("+++ b/solutions/src/{module}.rs");
    fs::read_dir(root.join("tests/mutants"))
        .map(|entries| {
            entries.filter_map(Result::ok).any(|entry| {
                fs::read_to_string(entry.path())
                    .is_ok_and(|text| text.lines().any(|l| l == target))
            })
        })
        .unwrap_or(false)
}

/// Pieces of a chapter that exist without its stub: a book folder, a
/// hints file, a solution or trials of a chapter `exercises/src` lacks.
fn unregistered(root: &Path, chapters: &[Chapter]) -> Vec<String> {
    let known = |id: &str| chapters.iter().any(|c| c.id == id);
    let mut missing = Vec::new();
    for dir in ["solutions/src", "exercises/tests/graded"] {
        for (id, module) in modules::chapter_modules(&root.join(dir)) {
            let stub = root.join(format!("exercises/src/{module}.rs"));
            if !stub.exists() {
                missing.push(format!(
                    "{id}: {dir}/{module}.rs exists but the stub \
                     exercises/src/{module}.rs does not"
                ));
            }
        }
    }
    let entries = fs::read_dir(root.join("chapters")).into_iter().flatten();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((number, _)) = name.split_once('-') else {
            continue;
        };
        if number.len() == 2 && number.bytes().all(|b| b.is_ascii_digit()) {
            let id = format!("ch{number}");
            if !known(&id) {
                missing.push(format!(
                    "{id}: chapters/{name}/ exists but no stub \
                     exercises/src/{id}_topic.rs does"
                ));
            }
        }
    }
    let hints = fs::read_dir(root.join("exercises/hints"))
        .into_iter()
        .flatten();
    for entry in hints.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".md")
            && !known(id)
        {
            missing.push(format!(
                "{id}: exercises/hints/{name} exists but no stub \
                 exercises/src/{id}_topic.rs does"
            ));
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_say_their_chapter() {
        assert_eq!(chapter_of_module("ch03_gil"), Some("ch03"));
        assert_eq!(chapter_of_module("ch08_tokio"), Some("ch08"));
        assert_eq!(chapter_of_module("sync"), None);
        assert_eq!(chapter_of_module("ch3_gil"), None);
        assert_eq!(chapter_of_module("ch03_"), None);
    }

    #[test]
    fn trial_ids_are_found_in_a_suite() {
        let suite = r#"Trial::new("ch03::with_gil::one", 1, f),
            Trial::new(
                "ch03::detach::two",
            "ch03::not_an_id""#;
        assert_eq!(
            quoted_trial_ids(suite, "ch03"),
            ["ch03::with_gil::one", "ch03::detach::two"]
        );
    }
}
