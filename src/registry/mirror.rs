//! exercises/ and solutions/ are one course in two states: the same chapter
//! files, the same headers and public signatures, stubs marked `TODO(chNN)`
//! with a `todo!()`, and solutions without a single TODO.
//!
//! A stub is compared only while it is pristine (as the course recorded
//! it, see `course::cli::sums::pristine_stubs`): once a learner works in
//! it, it is theirs, and the project's own tests must stay green.

use std::fs;
use std::path::Path;

use super::chapters;

/// What differs between the stubs and the solutions, one sentence each.
/// `pristine` lists the stub files (`exercises/src/ch01_threads.rs`) that
/// are still as recorded; only those are compared line by line.
pub fn problems(root: &Path, pristine: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for chapter in chapters(root) {
        for module in &chapter.modules {
            let stub_file = format!("exercises/src/{module}.rs");
            let solution_file = format!("solutions/src/{module}.rs");
            let Ok(solution) = fs::read_to_string(root.join(&solution_file))
            else {
                found.push(format!("{solution_file} is missing"));
                continue;
            };
            if solution.contains("TODO") || solution.contains("todo!(") {
                found.push(format!("{solution_file} still has a TODO"));
            }
            if !pristine.contains(&stub_file) {
                continue;
            }
            let stub =
                fs::read_to_string(root.join(&stub_file)).unwrap_or_default();
            found.extend(compare(&chapter.id, &stub_file, &stub, &solution));
        }
    }
    found
}

/// The checks of one pristine stub against its solution.
fn compare(
    chapter: &str,
    file: &str,
    stub: &str,
    solution: &str,
) -> Vec<String> {
    let mut found = Vec::new();
    if header(stub) != header(solution) {
        found.push(format!(
            "{file}: the //! headers of stub and solution differ"
        ));
    }
    if signatures(stub) != signatures(solution) {
        found.push(format!(
            "{file}: the public signatures of stub and solution differ"
        ));
    }
    let marker = format!("TODO({chapter})");
    if !stub.contains(&marker) {
        found.push(format!("{file}: no {marker} marker"));
    }
    if !stub.contains("todo!(") {
        found.push(format!("{file}: no todo!() stub"));
    }
    found
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
