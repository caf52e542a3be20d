//! Turns every markdown file under `chapters/` into doc-tests, twice.
//!
//! 1. skeptic writes `$OUT_DIR/skeptic-tests.rs` (included by
//!    `tests/skeptic.rs`): each ```rust block is compiled and run as a
//!    standalone program against the real crate graph.
//! 2. This script writes `$OUT_DIR/book_doctests.rs` (included by
//!    `src/lib.rs` under `cfg(doctest)`): one item per markdown file whose
//!    doc comment is that file, so rustdoc compiles the same blocks at
//!    edition 2024 and proves that every ```compile_fail block fails.
//!
//! Files are discovered, not listed, so a new chapter needs no edit here.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

// The course's own measurements embed CPython (`course bench`'s chapter 9
// rows): link it where there is one.
include!("src/registry/python.rs");

fn main() {
    link_python();
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let chapters = root.join("chapters");

    // A directory here makes cargo rerun the script when a file is added.
    println!("cargo:rerun-if-changed=chapters");

    let mut files = Vec::new();
    collect_markdown(&chapters, &mut files);
    files.sort();

    skeptic::generate_doc_tests(&files);

    let mut items = String::new();
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap_or(file);
        let name = item_name(relative);
        writeln!(
            items,
            "#[doc = include_str!({file:?})]\npub struct {name};\n"
        )
        .unwrap();
    }
    fs::write(out_dir.join("book_doctests.rs"), items).unwrap();
}

/// Pushes every `*.md` file below `dir`, depth first.
fn collect_markdown(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|error| {
        panic!("cannot read {}: {error}", dir.display())
    });
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_markdown(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "md") {
            files.push(path);
        }
    }
}

/// `chapters/01-threads/index.md` becomes `Chapters01ThreadsIndexMd`, a
/// name that says in rustdoc's output which file a failing block is in.
fn item_name(relative: &Path) -> String {
    let mut name = String::new();
    for word in relative
        .to_string_lossy()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
    {
        let mut chars = word.chars();
        let first = chars.next().unwrap();
        name.push(first.to_ascii_uppercase());
        name.extend(chars);
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, 'N');
    }
    name
}
