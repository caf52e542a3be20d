//! The chapter registry: every chapter has all its pieces, and a chapter
//! added by halves is caught with a message that names each missing piece.
//! The chapters are the files `exercises/src/chNN_topic.rs`; everything
//! else is checked against them (`course::registry`).

use std::fs;
use std::path::Path;

use course::registry::{chapter_ids, missing_pieces};

mod scratch;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn every_chapter_has_all_its_pieces() {
    let root = Path::new(ROOT);
    assert!(chapter_ids(root).len() >= 8, "{:?}", chapter_ids(root));
    let missing = missing_pieces(root);
    assert!(
        missing.is_empty(),
        "a chapter lacks pieces (see ARCHITECTURE.md, \"Adding a chapter\"):\n  {}",
        missing.join("\n  ")
    );
}

/// Adds a file to the copy.
fn add(root: &Path, file: &str, text: &str) {
    let path = root.join(file);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// Chapter 9 is added one piece at a time, in the order of the checklist
/// in ARCHITECTURE.md. Before each piece, the check names exactly that
/// piece among what is missing; after the last, nothing is.
#[test]
fn a_half_added_chapter_names_each_missing_piece() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    scratch::copy_of_the_course(root);
    assert_eq!(missing_pieces(root), Vec::<String>::new());

    let gate = "#![cfg(module = \"ch09_pyo3\")]\n";
    let steps = chapter_9_steps(gate);
    // The stub comes first: until it exists, the book folder and the
    // hints file of a chapter 9 would be named as strays instead.
    add(
        root,
        "exercises/src/ch09_pyo3.rs",
        &format!("{gate}// TODO(ch09): release the GIL.\n"),
    );
    for (expected, file, text) in steps.iter().skip(1) {
        let missing = missing_pieces(root);
        assert!(
            missing
                .iter()
                .any(|m| m.starts_with("ch09: ") && m.contains(expected)),
            "expected a message with {expected:?} among {missing:#?}"
        );
        add(root, file, text);
        let after = missing_pieces(root);
        assert!(
            !after.iter().any(|m| m.contains(expected)),
            "still missing after adding {file}: {after:#?}"
        );
    }
    // The last piece: the points, which `course verify --write-sums`
    // records.
    let missing = missing_pieces(root);
    assert_eq!(
        missing,
        [
            "ch09: exercises/tests/graded.sums records no points for it \
          (run `cargo run -- verify --write-sums`)"
        ]
    );
    let sums = root.join("exercises/tests/graded.sums");
    let record = fs::read_to_string(&sums).unwrap() + "points ch09 2\n";
    fs::write(&sums, record).unwrap();
    assert_eq!(missing_pieces(root), Vec::<String>::new());
}

/// Chapter 9's pieces, in the order of the checklist: what the check names
/// while the piece is missing, the file, and its text. `gate` is the line
/// that puts a file under chapter 9's cfg.
fn chapter_9_steps(gate: &str) -> [(&'static str, &'static str, String); 11] {
    let trials = "#![cfg(chapter = \"ch09\")]\npub fn trials() -> Vec<Trial> {\n    \
                  vec![Trial::new(\"ch09::detach::runs_at_once\", 2, f)]\n}\n";
    let promise = "/// # Graded promises\n///\n/// - Two threads run it at once.\n\
                   ///   Trial: `ch09::detach::runs_at_once`.\n";
    [
        ("no stub", "", String::new()),
        (
            "no solution solutions/src/ch09_pyo3.rs",
            "solutions/src/ch09_pyo3.rs",
            gate.to_string(),
        ),
        (
            "no trials exercises/tests/graded/ch09_pyo3.rs",
            "exercises/tests/graded/ch09_pyo3.rs",
            trials.to_string(),
        ),
        (
            "trial `ch09::detach::runs_at_once` is named by no promise of \
             exercises/src/ch09_pyo3.rs",
            "exercises/src/ch09_pyo3.rs",
            format!("{gate}{promise}// TODO(ch09): release the GIL.\n"),
        ),
        (
            "solutions/src/ch09_pyo3.rs does not state the promises of \
             exercises/src/ch09_pyo3.rs word for word",
            "solutions/src/ch09_pyo3.rs",
            format!("{gate}{promise}"),
        ),
        (
            "no book folder chapters/09-topic/",
            "chapters/09-pyo3/pyo3.md",
            "# PyO3\n".to_string(),
        ),
        (
            "chapters/SUMMARY.md has no page of chapters/09-pyo3/",
            "chapters/SUMMARY.md",
            fs::read_to_string(Path::new(ROOT).join("chapters/SUMMARY.md"))
                .unwrap()
                .replace("\n---", "- [PyO3](09-pyo3/pyo3.md)\n\n---"),
        ),
        (
            "no page of chapters/09-pyo3/ has a `## Exercises` section",
            "chapters/09-pyo3/pyo3.md",
            "# PyO3\n\n## Exercises\n".to_string(),
        ),
        (
            "has 0 self-check question(s)",
            "chapters/09-pyo3/pyo3.md",
            "# PyO3\n\n## Exercises\n".to_string() + &"````quiz\n````\n".repeat(3),
        ),
        (
            "no hints file exercises/hints/ch09.md",
            "exercises/hints/ch09.md",
            "# Hints\n\n## detach\n\n1. Release it.\n".to_string(),
        ),
        (
            "no wrong solution in tests/mutants/ patches solutions/src/ch09_pyo3.rs",
            "tests/mutants/ch09_pyo3-holds_the_gil.patch",
            "expect-fail: ch09::detach::runs_at_once\n\
             --- a/solutions/src/ch09_pyo3.rs\n+++ b/solutions/src/ch09_pyo3.rs\n"
                .to_string(),
        ),
    ]
}

#[test]
fn a_stray_piece_without_its_stub_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    scratch::copy_of_the_course(root);
    add(root, "exercises/hints/ch09.md", "# Hints\n");
    add(root, "solutions/src/ch09_pyo3.rs", "");
    let missing = missing_pieces(root);
    assert_eq!(
        missing,
        [
            "ch09: solutions/src/ch09_pyo3.rs exists but the stub \
             exercises/src/ch09_pyo3.rs does not",
            "ch09: exercises/hints/ch09.md exists but no stub \
             exercises/src/ch09_topic.rs does",
        ]
    );
}
