//! The fixture course the `course` commands run on, and how to run them.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub(crate) const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Only a hang detector: building the fixture cold takes a minute or two.
pub(crate) const HANG: Duration = Duration::from_secs(600);

pub(crate) const CH01_RIGHT_AND_WRONG: &str = "\
/// Always the answer.
pub fn answer() -> u32 {
    42
}

/// Twice `n` (wrong by one).
pub fn double(n: u32) -> u32 {
    n + n + 1
}
";

pub(crate) const CH01_SOLVED: &str = "\
/// Always the answer.
pub fn answer() -> u32 {
    42
}

/// Twice `n`.
pub fn double(n: u32) -> u32 {
    n + n
}
";

pub(crate) const GRADED: &str = r#"
use course::grader::Trial;

pub(crate) fn main() -> std::process::ExitCode {
    #[allow(unused_mut)]
    let mut trials = Vec::new();
    #[cfg(chapter = "ch01")]
    {
        trials.push(Trial::new("ch01::answer::is_42", 3, || {
            assert_eq!(exercises::ch01_fixture::answer(), 42)
        }));
        trials.push(Trial::new("ch01::double::doubles", 2, || {
            assert_eq!(exercises::ch01_fixture::double(2), 4)
        }));
    }
    #[cfg(chapter = "ch02")]
    trials.push(Trial::new("ch02::broken::works", 5, || {
        assert_eq!(exercises::ch02_fixture::broken(), 1)
    }));
    course::grader::main(trials)
}
"#;

/// Writes the fixture course into a fresh temporary folder.
pub(crate) fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |path: &str, text: &str| {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[workspace]\nmembers = [\"exercises\"]\nresolver = \"3\"\n",
    );
    // The same versions as the course itself, so the build is shared.
    fs::copy(Path::new(ROOT).join("Cargo.lock"), root.join("Cargo.lock"))
        .unwrap();
    // The same build script as the real exercises: the chapters are the
    // files `src/chNN_topic.rs`, each gated by `cfg(chapter = ...)`.
    write(
        "exercises/Cargo.toml",
        &format!(
            "[package]\nname = \"exercises\"\nversion = \"0.1.0\"\n\
             edition = \"2024\"\nbuild = \"build.rs\"\n\n\
             [dependencies]\nautomod = \"1\"\ncourse = {{ path = {ROOT:?}, \
             default-features = false }}\n\n\
             [[test]]\nname = \"graded\"\nharness = false\n"
        ),
    );
    write(
        "exercises/build.rs",
        &format!("include!({:?});\n", format!("{ROOT}/src/registry/build.rs")),
    );
    write(
        "exercises/src/lib.rs",
        "automod::dir!(pub \"src\");\n\
         include!(concat!(env!(\"OUT_DIR\"), \"/shadow.rs\"));\n",
    );
    write(
        "exercises/src/ch01_fixture.rs",
        &gated("ch01_fixture", CH01_RIGHT_AND_WRONG),
    );
    write(
        "exercises/src/ch02_fixture.rs",
        &gated(
            "ch02_fixture",
            // The error is outside any exercise's body: the chapter goes.
            "pub fn broken() -> u32 {\n    WIDTH\n}\n\
             const WIDTH: u32 = \"not a number\";\n",
        ),
    );
    write("exercises/tests/graded.rs", GRADED);
    write(
        "exercises/hints/ch01.md",
        "# Hints\n\n## answer\n\n1. Think.\n\n## double\n\n\
         1. Add it to itself.\n\n2. Without the `+ 1`.\n",
    );
    write(
        "exercises/hints/ch02.md",
        "# Hints\n\n## broken\n\n1. Return a number.\n",
    );
    write(
        "chapters/01-fixture/fixture.md",
        "# Fixture\n\n## Exercises\n",
    );
    // The record `course verify --write-sums` would write, made by the
    // same code (the fixture's own files; most are missing there).
    let points = [("ch01".to_string(), 5), ("ch02".to_string(), 5)].into();
    write(
        course::cli::sums::SUMS,
        &course::cli::sums::render(root, &points),
    );
    dir
}

/// A chapter file as the course has it: compiled while its module is on.
pub(crate) fn gated(module: &str, code: &str) -> String {
    format!("#![cfg(module = {module:?})]\n{code}")
}

pub(crate) fn course(root: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_course"));
    command
        .arg("--root")
        .arg(root)
        .env(
            "CARGO_TARGET_DIR",
            Path::new(ROOT).join("target/cli-fixture"),
        )
        .stdin(Stdio::null());
    command
}

/// Runs a command to its end (course::spawn: pipes drained at once); a
/// hang fails the test instead of blocking it.
pub(crate) fn finish(command: Command) -> Output {
    let shown = format!("{command:?}");
    let limit = course::spawn::OutputLimit::kill_past(64 << 20);
    let ran = course::spawn::run(command, HANG, limit).unwrap();
    let Some(status) = ran.status() else {
        panic!("the command hung or flooded ({:?}): {shown}", ran.ended);
    };
    Output {
        status,
        stdout: ran.stdout,
        stderr: ran.stderr,
    }
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
