//! A scratch copy of what the registry and mirror checks read (the
//! chapters' code, trials (loom's too), hints, book pages, mutants and the
//! recorded checksums), for tests that change it: `tests/registry.rs` and
//! `tests/mirror.rs`.

use std::fs;
use std::path::Path;

/// Copies the course's checked files into `to`.
pub fn copy_of_the_course(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [
        "exercises/src",
        "solutions/src",
        "exercises/tests/graded",
        "exercises/hints",
        "tests/mutants",
        "chapters",
    ] {
        copy_dir(&from.join(dir), &to.join(dir));
    }
    for file in ["exercises/tests/graded.sums", "exercises/tests/loom.rs"] {
        fs::copy(from.join(file), to.join(file)).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}
