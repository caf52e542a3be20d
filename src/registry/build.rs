// The build script of `exercises` and `solutions` (each crate's `build.rs`
// is one `include!` of this file; so is the test fixture's in
// `tests/cli.rs`).
//
// It turns the chapter modules found in `src/` into two cfgs:
// `cfg(module = "ch03_gil")` gates a module's file (its first line is
// `#![cfg(module = "ch03_gil")]`), `cfg(chapter = "ch03")` gates the
// chapter's graded suites. Both are on for every chapter, unless
// `COURSE_CHAPTERS` lists the chapters to build (`ch01,ch02`): `course
// grade` sets it to leave out a chapter that does not compile, and
// `.ci/mutants` to build one chapter.
//
// `COURSE_SHADOW` (`ch01_threads=/path/to/copy.rs;...`) replaces a module
// by a copy `course grade` wrote, in which the exercises that do not
// compile are stubbed out again: the module's own file is then off and
// `$OUT_DIR/shadow.rs` declares the copy, so one exercise's compile error
// costs only that exercise.
//
// The graded suite's list of trials is written to `$OUT_DIR/suites.rs`
// from the files in `tests/graded/`.

include!("modules.rs");
include!("python.rs");

fn main() {
    let manifest = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo::rerun-if-changed=src");
    println!("cargo::rerun-if-changed=../exercises/tests/graded");
    println!("cargo::rerun-if-env-changed=COURSE_CHAPTERS");
    println!("cargo::rerun-if-env-changed=COURSE_SHADOW");

    // Chapter 9 embeds CPython: link it where there is one.
    link_python();

    let modules = chapter_modules(&manifest.join("src"));
    let mut chapters: Vec<&str> = modules.iter().map(|(c, _)| c.as_str()).collect();
    chapters.dedup();
    let quoted = |names: &mut dyn Iterator<Item = &str>| {
        names.map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
    };
    println!(
        "cargo::rustc-check-cfg=cfg(chapter, values({}))",
        quoted(&mut chapters.iter().copied())
    );
    println!(
        "cargo::rustc-check-cfg=cfg(module, values({}))",
        quoted(&mut modules.iter().map(|(_, m)| m.as_str()))
    );

    let wanted = std::env::var("COURSE_CHAPTERS").ok();
    let on = |chapter: &str| {
        wanted
            .as_deref()
            .is_none_or(|list| list.split(',').any(|w| w.trim() == chapter))
    };
    let shadows = shadows();
    let mut declared = String::new();
    for chapter in chapters.iter().filter(|c| on(c)) {
        println!("cargo::rustc-cfg=chapter={chapter:?}");
    }
    for (chapter, module) in modules.iter().filter(|(c, _)| on(c)) {
        match shadows.iter().find(|(m, _)| m == module) {
            Some((_, copy)) => {
                println!("cargo::rerun-if-changed={copy}");
                declared.push_str(&format!("#[path = {copy:?}]\npub mod {module};\n"));
            }
            None => println!("cargo::rustc-cfg=module={module:?}"),
        }
        let _ = chapter;
    }
    std::fs::write(out.join("shadow.rs"), declared).expect("cannot write shadow.rs");
    let graded = manifest.join("../exercises/tests/graded");
    std::fs::write(out.join("suites.rs"), suites(&graded)).expect("cannot write suites.rs");
}

/// The modules `COURSE_SHADOW` replaces, and the copies that replace them.
fn shadows() -> Vec<(String, String)> {
    let list = std::env::var("COURSE_SHADOW").unwrap_or_default();
    list.split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(module, copy)| (module.trim().to_string(), copy.trim().to_string()))
        .collect()
}

/// One line per suite file, in the order of the files.
fn suites(graded: &std::path::Path) -> String {
    let mut suites = String::from(
        "/// Every trial of the chapters that are on, chapter by chapter.\n\
         pub fn all_trials() -> Vec<course::grader::Trial> {\n    \
         #[allow(unused_mut, reason = \"with every chapter off, none is added\")]\n    \
         let mut trials = Vec::new();\n",
    );
    for (chapter, module) in chapter_modules(graded) {
        suites.push_str(&format!(
            "    #[cfg(chapter = {chapter:?})]\n    trials.extend(graded::{module}::trials());\n"
        ));
    }
    suites.push_str("    trials\n}\n");
    suites
}
