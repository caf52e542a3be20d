//! exercises/ and solutions/ are one course in two states: the same chapter
//! files, the same headers and public signatures, stubs marked `TODO(chNN)`
//! and solutions without a single TODO (`course::registry::mirror`).
//!
//! A stub a learner has worked in is theirs: these checks compare only the
//! pristine ones, so `cargo test` stays green at every stage of a
//! learner's progress. The last tests prove it on a scratch copy.

use std::fs;
use std::path::Path;

use course::cli::sums::pristine_stubs;
use course::registry::{chapters, mirror, missing_pieces};

mod scratch;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn stubs_and_solutions_mirror_each_other() {
    let root = Path::new(ROOT);
    let pristine = pristine_stubs(root);
    let problems = mirror::problems(root, &pristine);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_fresh_clone_has_every_stub_pristine() {
    // On a fresh clone (CI), every stub is compared. If this fails after
    // changing a stub on purpose: `cargo run -- verify --write-sums`.
    if std::env::var_os("CI").is_none() {
        eprintln!("not CI: a learner's edited stubs are allowed here");
        return;
    }
    let root = Path::new(ROOT);
    let all = course::cli::sums::stub_files(root);
    assert_eq!(pristine_stubs(root), all);
}

/// A learner finishes the course chapter by chapter (the solutions copied
/// over the stubs, as a learner who got everything right would have them):
/// at every stage the checks that read `exercises/` stay green.
#[test]
fn a_learner_s_progress_never_turns_the_checks_red() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    scratch::copy_of_the_course(root);
    let all = chapters(root);
    for (done, chapter) in all.iter().enumerate() {
        for module in &chapter.modules {
            fs::copy(
                root.join(format!("solutions/src/{module}.rs")),
                root.join(format!("exercises/src/{module}.rs")),
            )
            .unwrap();
        }
        let pristine = pristine_stubs(root);
        let left: usize = all[done + 1..].iter().map(|c| c.modules.len()).sum();
        assert_eq!(pristine.len(), left, "after {}", chapter.id);
        assert_eq!(mirror::problems(root, &pristine), Vec::<String>::new());
        assert_eq!(missing_pieces(root), Vec::<String>::new());
    }
}

/// The checks still see what they are for: a solution with a TODO, a
/// pristine stub whose signature differs from its solution's.
#[test]
fn a_broken_mirror_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    scratch::copy_of_the_course(root);
    let solution = root.join("solutions/src/ch01_threads.rs");
    let text = fs::read_to_string(&solution).unwrap();
    let changed =
        text.replacen("pub fn ", "pub fn renamed_", 1) + "\n// TODO\n";
    fs::write(&solution, changed).unwrap();
    let pristine = pristine_stubs(root);
    assert_eq!(
        mirror::problems(root, &pristine),
        [
            "solutions/src/ch01_threads.rs still has a TODO",
            "exercises/src/ch01_threads.rs: the public signatures of stub and \
             solution differ",
        ]
    );
}
