// The build script of `exercises` and `solutions` (each crate's `build.rs`
// is one `include!` of this file; so is the test fixture's in
// `tests/cli.rs`).
//
// It turns the chapter modules found in `src/` into the `chapter` cfg:
// `cfg(chapter = "ch03")` is on for every chapter, unless the environment
// variable `COURSE_CHAPTERS` lists the chapters to build (`ch01,ch02`):
// `course grade` sets it to leave out a chapter that does not compile,
// and `.ci/mutants` to build one chapter. Each chapter file starts with
// `#![cfg(chapter = "chNN")]`, and the graded suite's list of trials is
// written to `$OUT_DIR/suites.rs` from the files in `tests/graded/`.

include!("modules.rs");

fn main() {
    let manifest = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let src = manifest.join("src");
    // The graded suites are the exercises' (solutions reuse the file).
    let graded = manifest.join("../exercises/tests/graded");
    println!("cargo::rerun-if-changed=src");
    println!("cargo::rerun-if-changed=../exercises/tests/graded");
    println!("cargo::rerun-if-env-changed=COURSE_CHAPTERS");

    let modules = chapter_modules(&src);
    let mut chapters: Vec<&str> = modules.iter().map(|(c, _)| c.as_str()).collect();
    chapters.dedup();
    let values: Vec<String> = chapters.iter().map(|c| format!("{c:?}")).collect();
    println!("cargo::rustc-check-cfg=cfg(chapter, values({}))", values.join(", "));

    let wanted = std::env::var("COURSE_CHAPTERS").ok();
    let on = |chapter: &str| {
        wanted
            .as_deref()
            .is_none_or(|list| list.split(',').any(|w| w.trim() == chapter))
    };
    for chapter in chapters.iter().filter(|c| on(c)) {
        println!("cargo::rustc-cfg=chapter={chapter:?}");
    }

    // One line per suite file, in the order of the files.
    let mut suites = String::from(
        "/// Every trial of the chapters that are on, chapter by chapter.\n\
         pub fn all_trials() -> Vec<course::grader::Trial> {\n    \
         #[allow(unused_mut, reason = \"with every chapter off, none is added\")]\n    \
         let mut trials = Vec::new();\n",
    );
    for (chapter, module) in chapter_modules(&graded) {
        suites.push_str(&format!(
            "    #[cfg(chapter = {chapter:?})]\n    trials.extend(graded::{module}::trials());\n"
        ));
    }
    suites.push_str("    trials\n}\n");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("suites.rs"), suites).expect("cannot write suites.rs");
}
