//! Tamper evidence: `exercises/tests/graded.sums` records the SHA-256 of
//! every file that decides a grade, and the points of each chapter (so a
//! chapter that does not compile still counts in the total). It also
//! records each stub as the course ships it (`stub` lines), so the
//! project's own checks compare only the stubs no learner has touched.
//!
//! `course grade` names the files that differ from the record;
//! `course verify` checks the record is current and `course verify
//! --write-sums` rewrites it. This is evidence, not a lock: a learner who
//! edits the tests can edit this file too, but then it differs from the
//! instructor's copy, which is what an instructor compares.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// Where the record lives, relative to the repository.
pub const SUMS: &str = "exercises/tests/graded.sums";

/// The files that decide a grade: the suites, the grader and the worker
/// process some trials start, how children are run and reaped, the
/// commands that score and their alias, the exercises' manifest and build
/// script (which chapters compile), and the Classroom workflow (its
/// points).
pub fn graded_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = [
        "exercises/tests/graded.rs",
        "exercises/tests/loom.rs",
        "src/worker.rs",
        "exercises/src/bin/worker.rs",
        "src/main.rs",
        "exercises/Cargo.toml",
        "exercises/build.rs",
        ".cargo/config.toml",
        super::CLASSROOM,
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect();
    for dir in [
        "src/grader",
        "src/spawn",
        "src/reap",
        "src/cli/grade",
        "src/registry",
        "exercises/tests/graded",
        "exercises/tests/loom",
    ] {
        files.extend(rust_files_in(root, dir));
    }
    files
}

/// The `.rs` files of a folder and its subfolders (a suite's helper
/// modules), relative to the repository, sorted.
fn rust_files_in(root: &Path, dir: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root.join(dir)) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = Vec::new();
    for path in entries.filter_map(Result::ok).map(|entry| entry.path()) {
        let Ok(relative) = path.strip_prefix(root) else {
            continue;
        };
        if path.is_dir() {
            found.extend(rust_files_in(root, &relative.to_string_lossy()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(relative.to_path_buf());
        }
    }
    found.sort();
    found
}

/// The SHA-256 of a file, in hex; `missing` if it cannot be read.
fn sum(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => sha256_hex(&bytes),
        Err(_) => "missing".to_string(),
    }
}

/// The SHA-256 of some bytes, in hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// The SHA-256 the record gives a stub file, if any.
pub(crate) fn recorded_stub(root: &Path, file: &str) -> Option<String> {
    recorded_sums(root, "stub").remove(file)
}

/// The record as `course verify --write-sums` writes it.
pub fn render(root: &Path, points: &BTreeMap<String, u32>) -> String {
    let mut out = String::from(
        "# The SHA-256 of each file that decides a grade, and each \
         chapter's points.\n# Written by `course verify --write-sums`; \
         `course grade` warns when a file differs.\n",
    );
    for file in graded_files(root) {
        let _ = writeln!(
            out,
            "sha256 {} {}",
            sum(&root.join(&file)),
            file.display()
        );
    }
    for (chapter, points) in points {
        let _ = writeln!(out, "points {chapter} {points}");
    }
    for file in stub_files(root) {
        let _ = writeln!(out, "stub {} {file}", sum(&root.join(&file)));
    }
    out
}

/// The chapters' stub files, `exercises/src/ch01_threads.rs`, ...
pub fn stub_files(root: &Path) -> Vec<String> {
    crate::registry::chapters(root)
        .iter()
        .flat_map(|chapter| &chapter.modules)
        .map(|module| format!("exercises/src/{module}.rs"))
        .collect()
}

/// The stub files still as the course recorded them (`stub` lines): the
/// ones no learner has worked in yet, which the mirror checks compare.
pub fn pristine_stubs(root: &Path) -> Vec<String> {
    let recorded = recorded_sums(root, "stub");
    stub_files(root)
        .into_iter()
        .filter(|file| recorded.get(file) == Some(&sum(&root.join(file))))
        .collect()
}

fn recorded(root: &Path) -> String {
    fs::read_to_string(root.join(SUMS)).unwrap_or_default()
}

/// The record's `KIND HEX FILE` lines of one kind (`sha256`, `stub`), as
/// file → hex.
fn recorded_sums(root: &Path, kind: &str) -> BTreeMap<String, String> {
    let prefix = format!("{kind} ");
    recorded(root)
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix)?.split_once(' '))
        .map(|(hex, file)| (file.to_string(), hex.to_string()))
        .collect()
}

/// The graded files whose checksum is not the recorded one (or that the
/// record does not know).
pub fn edited(root: &Path) -> Vec<String> {
    let known = recorded_sums(root, "sha256");
    graded_files(root)
        .into_iter()
        .map(|file| file.display().to_string())
        .filter(|file| known.get(file) != Some(&sum(&root.join(file))))
        .collect()
}

/// Each chapter's points, as recorded.
pub fn chapter_points(root: &Path) -> BTreeMap<String, u32> {
    recorded(root)
        .lines()
        .filter_map(|line| line.strip_prefix("points "))
        .filter_map(|rest| {
            let (chapter, points) = rest.split_once(' ')?;
            Some((chapter.to_string(), points.trim().parse().ok()?))
        })
        .collect()
}
