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

/// Chapter 10 is added one piece at a time, in the order of the checklist
/// in ARCHITECTURE.md. Before each piece, the check names exactly that
/// piece among what is missing; after the last, nothing is.
#[test]
fn a_half_added_chapter_names_each_missing_piece() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    scratch::copy_of_the_course(root);
    assert_eq!(missing_pieces(root), Vec::<String>::new());

    let gate = "#![cfg(module = \"ch10_more\")]\n";
    let steps = chapter_10_steps(gate);
    // The stub comes first: until it exists, the book folder and the
    // hints file of a chapter 10 would be named as strays instead.
    add(
        root,
        "exercises/src/ch10_more.rs",
        &format!("{gate}// TODO(ch10): release the GIL.\n"),
    );
    for (expected, file, text) in steps.iter().skip(1) {
        let missing = missing_pieces(root);
        assert!(
            missing
                .iter()
                .any(|m| m.starts_with("ch10: ") && m.contains(expected)),
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
            "ch10: exercises/tests/graded.sums records no points for it \
          (run `cargo run -- verify --write-sums`)"
        ]
    );
    let sums = root.join("exercises/tests/graded.sums");
    let record = fs::read_to_string(&sums).unwrap() + "points ch10 2\n";
    fs::write(&sums, record).unwrap();
    assert_eq!(missing_pieces(root), Vec::<String>::new());
}

/// Chapter 10's pieces, in the order of the checklist: what the check names
/// while the piece is missing, the file, and its text. `gate` is the line
/// that puts a file under chapter 10's cfg.
fn chapter_10_steps(gate: &str) -> [(&'static str, &'static str, String); 11] {
    let trials = "#![cfg(chapter = \"ch10\")]\npub fn trials() -> Vec<Trial> {\n    \
                  vec![Trial::new(\"ch10::detach::runs_at_once\", 2, f)]\n}\n";
    let promise = "/// # Graded promises\n///\n/// - Two threads run it at once.\n\
                   ///   Trial: `ch10::detach::runs_at_once`.\n";
    [
        ("no stub", "", String::new()),
        (
            "no solution solutions/src/ch10_more.rs",
            "solutions/src/ch10_more.rs",
            gate.to_string(),
        ),
        (
            "no trials exercises/tests/graded/ch10_more.rs",
            "exercises/tests/graded/ch10_more.rs",
            trials.to_string(),
        ),
        (
            "trial `ch10::detach::runs_at_once` is named by no promise of \
             exercises/src/ch10_more.rs",
            "exercises/src/ch10_more.rs",
            format!("{gate}{promise}// TODO(ch10): release the GIL.\n"),
        ),
        (
            "solutions/src/ch10_more.rs does not state the promises of \
             exercises/src/ch10_more.rs word for word",
            "solutions/src/ch10_more.rs",
            format!("{gate}{promise}"),
        ),
        (
            "no book folder chapters/10-topic/",
            "chapters/10-more/pyo3.md",
            "# More\n".to_string(),
        ),
        (
            "chapters/SUMMARY.md has no page of chapters/10-more/",
            "chapters/SUMMARY.md",
            fs::read_to_string(Path::new(ROOT).join("chapters/SUMMARY.md"))
                .unwrap()
                .replace("\n---", "- [More](10-more/pyo3.md)\n\n---"),
        ),
        (
            "no page of chapters/10-more/ has a `## Exercises` section",
            "chapters/10-more/pyo3.md",
            "# More\n\n## Exercises\n".to_string(),
        ),
        (
            "has 0 self-check question(s)",
            "chapters/10-more/pyo3.md",
            "# More\n\n## Exercises\n".to_string() + &"````quiz\n````\n".repeat(3),
        ),
        (
            "no hints file exercises/hints/ch10.md",
            "exercises/hints/ch10.md",
            "# Hints\n\n## detach\n\n1. Release it.\n".to_string(),
        ),
        (
            "no wrong solution in tests/mutants/ patches solutions/src/ch10_more.rs",
            "tests/mutants/ch10_more-holds_the_gil.patch",
            "expect-fail: ch10::detach::runs_at_once\n\
             --- a/solutions/src/ch10_more.rs\n+++ b/solutions/src/ch10_more.rs\n"
                .to_string(),
        ),
    ]
}

#[test]
fn a_stray_piece_without_its_stub_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    scratch::copy_of_the_course(root);
    add(root, "exercises/hints/ch10.md", "# Hints\n");
    add(root, "solutions/src/ch10_more.rs", "");
    let missing = missing_pieces(root);
    assert_eq!(
        missing,
        [
            "ch10: solutions/src/ch10_more.rs exists but the stub \
             exercises/src/ch10_more.rs does not",
            "ch10: exercises/hints/ch10.md exists but no stub \
             exercises/src/ch10_topic.rs does",
        ]
    );
}
