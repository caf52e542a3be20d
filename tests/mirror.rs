//! exercises/ and solutions/ are one course in two states: the same files,
//! the same headers and public signatures, stubs marked `TODO(chNN)` and
//! solutions without a single TODO.

use std::fs;
use std::path::{Path, PathBuf};

fn sources(crate_dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(crate_dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .map(|path| path.strip_prefix(&dir).unwrap().to_path_buf())
        .collect();
    files.sort();
    files
}

fn read(crate_dir: &str, file: &Path) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(crate_dir)
        .join(file);
    fs::read_to_string(path).unwrap()
}

/// The `//!` header of a file.
fn header(source: &str) -> Vec<&str> {
    source
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect()
}

/// Each public item's signature: from `pub` to the `{` or `;` that ends it,
/// with whitespace normalised.
fn signatures(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("pub ") {
        let item = &rest[start..];
        let end = item.find(['{', ';']).unwrap_or(item.len());
        let signature: Vec<&str> = item[..end].split_whitespace().collect();
        found.push(signature.join(" "));
        rest = &item[end..];
    }
    found
}

#[test]
fn both_crates_have_the_same_files() {
    assert_eq!(sources("exercises/src"), sources("solutions/src"));
}

#[test]
fn headers_and_public_signatures_match() {
    for file in sources("exercises/src") {
        if file == Path::new("lib.rs") {
            continue;
        }
        let stub = read("exercises/src", &file);
        let solution = read("solutions/src", &file);
        assert_eq!(
            header(&stub),
            header(&solution),
            "{}: the //! headers differ",
            file.display()
        );
        assert_eq!(
            signatures(&stub),
            signatures(&solution),
            "{}: the public signatures differ",
            file.display()
        );
    }
}

#[test]
fn stubs_are_marked_and_solutions_are_done() {
    for file in sources("exercises/src") {
        let name = file.to_string_lossy();
        let Some(chapter) = name.strip_prefix("ch").and_then(|n| n.get(..2))
        else {
            continue;
        };
        let marker = format!("TODO(ch{chapter})");
        let stub = read("exercises/src", &file);
        assert!(stub.contains(&marker), "{name}: no {marker} marker");
        assert!(stub.contains("todo!("), "{name}: no todo!() stub");
        let solution = read("solutions/src", &file);
        assert!(
            !solution.contains("TODO") && !solution.contains("todo!("),
            "{name}: the solution still has a TODO"
        );
    }
}
