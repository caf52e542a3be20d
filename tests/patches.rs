//! Every wrong solution in `tests/mutants/` and `tests/mutants/loom/` still
//! applies to the solution it changes. An edit to a solution, even to one
//! of its comments, can move the lines a patch expects; `.ci/mutants` and
//! `.ci/loom` would then stop at that patch, late in CI, while a plain
//! `cargo test` finds it in a second.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `.patch` files of `dir`, sorted.
fn patches_in(dir: &Path) -> Vec<PathBuf> {
    let mut patches: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|error| {
            panic!("cannot list {}: {error}", dir.display())
        })
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "patch"))
        .collect();
    patches.sort();
    patches
}

#[test]
fn every_mutant_patch_applies_to_its_solution() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let has_git = Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !has_git {
        // The same choice as for python3: a machine without the tool
        // cannot run this check, and says so.
        eprintln!("git is not on PATH: the mutant patches were not checked");
        return;
    }
    let mutants = root.join("tests/mutants");
    let mut patches = patches_in(&mutants);
    patches.extend(patches_in(&mutants.join("loom")));
    assert!(patches.len() > 100, "too few patches: {}", patches.len());
    let broken: Vec<String> = patches
        .iter()
        .filter_map(|patch| {
            // `git apply --check` works in a plain folder too.
            let output = Command::new("git")
                .args(["apply", "--check"])
                .arg(patch)
                .current_dir(root)
                .output()
                .expect("cannot run git apply");
            (!output.status.success()).then(|| {
                format!(
                    "{}: {}",
                    patch.strip_prefix(root).unwrap_or(patch).display(),
                    String::from_utf8_lossy(&output.stderr).trim()
                )
            })
        })
        .collect();
    assert!(
        broken.is_empty(),
        "these patches no longer apply (rebuild their context lines, or \
         undo the edit to the solution):\n{}",
        broken.join("\n")
    );
}
