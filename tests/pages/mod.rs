//! The book's source files, for the tests that read them (`book.rs`,
//! `prose.rs`, `quiz.rs`): no build and no feature needed.

use std::fs;
use std::path::{Path, PathBuf};

/// Every file below `dir` whose name ends in `.{extension}`, sorted.
pub fn files_under(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path, extension));
        } else if path.extension().is_some_and(|e| e == extension) {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every markdown page under `chapters/`, sorted.
pub fn markdown_pages() -> Vec<PathBuf> {
    files_under(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("chapters"),
        "md",
    )
}
