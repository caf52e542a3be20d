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

/// One top-level item with braces: its name, and the ranges of the
/// function bodies it holds (between their braces).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    name: String,
    kind: Kind,
    bodies: Vec<Range<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Function,
    Impl,
    Other,
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
    let item = items(text)
        .into_iter()
        .find(|item| item.bodies.iter().any(|body| body.contains(&offset)))?;
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
        .flat_map(|item| item.bodies)
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

/// `spawn_all` and `spawn_all`, `visit_counter` and `VisitCounter`.
fn same_name(exercise: &str, item: &str) -> bool {
    let squash = |s: &str| s.replace('_', "").to_lowercase();
    squash(exercise) == squash(item)
}

/// The byte offset where line `line` (1-based) starts.
fn line_start(text: &str, line: usize) -> Option<usize> {
    if line == 1 {
        return Some(0);
    }
    text.match_indices('\n')
        .nth(line.checked_sub(2)?)
        .map(|(at, _)| at + 1)
}

/// The top-level items of a file that have braces.
fn items(text: &str) -> Vec<Item> {
    let braces = braces(text);
    let mut found = Vec::new();
    let mut header_start = 0;
    let mut depth = 0usize;
    let mut open = 0;
    let mut inner: Vec<(usize, usize)> = Vec::new();
    for (at, brace) in braces {
        match brace {
            b'{' => {
                if depth == 0 {
                    open = at;
                    inner.clear();
                } else if depth == 1 {
                    inner.push((at, 0));
                }
                depth += 1;
            }
            _ => {
                depth = depth.saturating_sub(1);
                if depth == 1
                    && let Some(last) = inner.last_mut()
                {
                    last.1 = at;
                }
                if depth == 0 {
                    let header = header_of(text, header_start, open);
                    found.push(item(text, header, open, at, &inner));
                    header_start = at + 1;
                }
            }
        }
    }
    found
}

/// The header of the item whose brace opens at `open`: from the end of
/// the previous item or `;` to the brace.
fn header_of(text: &str, from: usize, open: usize) -> &str {
    let before = &text[from..open];
    let start = before.rfind(';').map_or(0, |at| at + 1);
    &before[start..]
}

fn item(
    text: &str,
    header: &str,
    open: usize,
    close: usize,
    inner: &[(usize, usize)],
) -> Item {
    let code = strip_comments(header);
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let after = |keyword: &str| {
        words
            .iter()
            .position(|w| *w == keyword)
            .and_then(|at| words.get(at + 1))
            .map(|w| w.to_string())
    };
    let (kind, name) = if let Some(name) = after("fn") {
        (Kind::Function, name)
    } else if words.contains(&"impl") {
        (Kind::Impl, impl_self_type(&code))
    } else {
        let name = ["struct", "enum", "trait", "mod", "union"]
            .iter()
            .find_map(|k| after(k))
            .unwrap_or_default();
        (Kind::Other, name)
    };
    let bodies = match kind {
        Kind::Function => std::iter::once(open + 1..close).collect(),
        // The bodies of the impl's functions: braces one level in whose
        // header says `fn`.
        Kind::Impl => inner
            .iter()
            .filter(|(start, end)| {
                *end > *start && method_header(text, open, *start)
            })
            .map(|(start, end)| start + 1..*end)
            .collect(),
        Kind::Other => Vec::new(),
    };
    Item { name, kind, bodies }
}

/// Whether the brace at `start`, inside the impl that opens at `open`,
/// opens a function body (its header, back to the previous `;` or `}`,
/// holds `fn`).
fn method_header(text: &str, open: usize, start: usize) -> bool {
    let before = &text[open + 1..start];
    let from = before.rfind([';', '}']).map_or(0, |at| at + 1);
    strip_comments(&before[from..])
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|w| w == "fn")
}

/// The type an `impl` is for: `impl<T> Drop for MyArc<T>` → `MyArc`.
fn impl_self_type(header: &str) -> String {
    let mut plain = String::new();
    let mut angle = 0usize;
    for c in header.chars() {
        match c {
            '<' => angle += 1,
            '>' if angle > 0 => angle -= 1,
            _ if angle == 0 => plain.push(c),
            _ => {}
        }
    }
    let plain = plain.split(" where ").next().unwrap_or(&plain);
    let target = match plain.split_once(" for ") {
        Some((_, target)) => target,
        None => plain.split_once("impl").map_or(plain, |(_, rest)| rest),
    };
    target
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .find(|w| !w.is_empty())
        .and_then(|path| path.rsplit("::").next())
        .unwrap_or_default()
        .to_string()
}

fn strip_comments(code: &str) -> String {
    code.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every brace of the code, outside comments, strings and character
/// literals, with its byte offset.
fn braces(text: &str) -> Vec<(usize, u8)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        at = match bytes[at] {
            b'/' if bytes.get(at + 1) == Some(&b'/') => skip_line(bytes, at),
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                skip_block_comment(bytes, at)
            }
            b'"' => skip_string(bytes, at + 1),
            b'r' if raw_string_start(bytes, at).is_some() => skip_raw_string(
                bytes,
                at,
                raw_string_start(bytes, at).unwrap_or(0),
            ),
            b'\'' => skip_char(bytes, at),
            brace @ (b'{' | b'}') => {
                found.push((at, brace));
                at + 1
            }
            _ => at + 1,
        };
    }
    found
}

fn skip_line(bytes: &[u8], at: usize) -> usize {
    bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |n| at + n + 1)
}

fn skip_block_comment(bytes: &[u8], mut at: usize) -> usize {
    let mut depth = 0;
    while at + 1 < bytes.len() {
        match (bytes[at], bytes[at + 1]) {
            (b'/', b'*') => {
                depth += 1;
                at += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                at += 2;
                if depth == 0 {
                    return at;
                }
            }
            _ => at += 1,
        }
    }
    bytes.len()
}

/// From just after an opening `"` to just after its closing one.
fn skip_string(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() {
        match bytes[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// The number of `#` of a raw string starting at `at` (`r"`, `r#"`), if
/// one does; not an identifier ending in `r`.
fn raw_string_start(bytes: &[u8], at: usize) -> Option<usize> {
    let previous = at.checked_sub(1).map(|p| bytes[p]);
    if previous.is_some_and(|p| p.is_ascii_alphanumeric() || p == b'_') {
        return None;
    }
    let hashes = bytes[at + 1..].iter().take_while(|&&b| b == b'#').count();
    (bytes.get(at + 1 + hashes) == Some(&b'"')).then_some(hashes)
}

fn skip_raw_string(bytes: &[u8], at: usize, hashes: usize) -> usize {
    let body = at + 2 + hashes;
    let mut closing = vec![b'"'];
    closing.extend(std::iter::repeat_n(b'#', hashes));
    bytes[body.min(bytes.len())..]
        .windows(closing.len())
        .position(|w| w == closing.as_slice())
        .map_or(bytes.len(), |n| body + n + closing.len())
}

/// A character literal (`'{'`, `'\''`, `'\u{7b}'`) is skipped; a
/// lifetime (`'a`, `'static`) is one quote.
fn skip_char(bytes: &[u8], at: usize) -> usize {
    match (bytes.get(at + 1), bytes.get(at + 2)) {
        (Some(b'\\'), _) => bytes[at + 2..]
            .iter()
            .position(|&b| b == b'\'')
            .map_or(bytes.len(), |n| at + 2 + n + 1),
        (Some(_), Some(b'\'')) => at + 3,
        _ => {
            // A multi-byte character: its closing quote within 5 bytes.
            let end = (at + 6).min(bytes.len());
            match bytes[at + 1..end].iter().position(|&b| b == b'\'') {
                Some(n) if !bytes[at + 1].is_ascii() => at + 1 + n + 1,
                _ => at + 1,
            }
        }
    }
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

    #[test]
    fn impl_blocks_belong_to_their_type() {
        assert_eq!(impl_self_type("impl<T: Send> Drop for MyArc<T> "), "MyArc");
        assert_eq!(impl_self_type("impl<T> MyArc<T> where T: Sync "), "MyArc");
        assert_eq!(
            impl_self_type("impl std::ops::Deref for crate::x::Pool "),
            "Pool"
        );
    }
}
