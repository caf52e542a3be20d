//! The `course` commands a learner and an instructor use, run as they
//! would run them, on a small fixture course: two chapters, one of which
//! does not compile. The fixture's exercises crate depends on this very
//! `course` crate, so the grader under test is the real one.
//!
//! The fixture builds in `target/cli-fixture`, which later runs reuse.

use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use wait_timeout::ChildExt as _;

// The fixture and its helpers.
#[path = "cli/fixture.rs"]
mod fixture;

use fixture::*;

/// An error inside one exercise's code costs that exercise only: it is
/// stubbed out again, and the chapter's other exercises are graded.
#[test]
fn an_exercise_that_does_not_compile_costs_only_that_exercise() {
    let dir = fixture();
    let broken = CH01_SOLVED.replace("n + n", "n + \"n\"");
    fs::write(
        dir.path().join("exercises/src/ch01_fixture.rs"),
        gated("ch01_fixture", &broken),
    )
    .unwrap();
    let mut command = course(dir.path());
    command.args(["grade", "ch01"]);
    let output = finish(command);
    let stdout = text(&output.stdout);
    let all = format!("{stdout}\n{}", text(&output.stderr));
    for line in [
        "BUILD-ERROR   ch01::double::doubles  error[E0277]",
        "    answer                       3/3   points  (1 of 1 tests passed)  done",
        "    double                       0/2   points  (0 of 1 tests passed)",
        "score: 3/5 points (60 %)",
        "next: ch01::double does not compile",
        "exercises/src/ch01_fixture.rs:9",
    ] {
        assert!(stdout.contains(line), "{line:?} not in:\n{all}");
    }
    // The learner's file is theirs: the stubbed-out copy is elsewhere.
    let file =
        fs::read_to_string(dir.path().join("exercises/src/ch01_fixture.rs"));
    assert_eq!(file.unwrap(), gated("ch01_fixture", &broken));
}

/// `reset` puts one exercise's code back as the course shipped it, from
/// the repository's history, and leaves the other exercise alone; without
/// a terminal it asks for --yes instead of guessing.
#[test]
fn reset_restores_one_exercise_as_shipped() {
    let dir = fixture();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .current_dir(dir.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap();
        assert!(status.status.success(), "git {args:?}: {status:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "as shipped"]);
    let file = dir.path().join("exercises/src/ch01_fixture.rs");
    let solved = gated("ch01_fixture", CH01_SOLVED).replace("42", "43");
    fs::write(&file, &solved).unwrap();
    git(&["commit", "-q", "-am", "my work"]);
    let mut asked = course(dir.path());
    asked.args(["reset", "double"]);
    let refused = finish(asked);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("add --yes"));
    let mut reset = course(dir.path());
    reset.args(["reset", "double", "--yes"]);
    let output = finish(reset);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let now = fs::read_to_string(&file).unwrap();
    assert!(
        now.contains("n + n + 1"),
        "double is the shipped one: {now}"
    );
    assert!(now.contains("43"), "answer is the learner's still: {now}");
}

/// `list` gives every exercise its status and points; `next` names the
/// first unfinished one with its file and hint command.
#[test]
fn list_and_next_say_where_the_learner_stands() {
    let dir = fixture();
    let run = |command: &str| {
        let mut course = course(dir.path());
        course.arg(command);
        text(&finish(course).stdout)
    };
    let listed = run("list");
    for line in [
        "ch01::answer                         3/3   points  done",
        "ch01::double                         0/2   points  in progress (0 \
         of 1 trials pass)",
        "ch02::broken                         -/-   points  does not compile",
        "(ch02: 0/5 points until it compiles: error[E0308]",
    ] {
        assert!(listed.contains(line), "{line:?} not in:\n{listed}");
    }
    let next = run("next");
    assert!(next.starts_with("next: ch01::double\n"), "{next}");
    assert!(
        next.contains("hint:  cargo course hint ch01::double"),
        "{next}"
    );
}

#[test]
fn a_chapter_that_does_not_compile_costs_only_that_chapter() {
    let dir = fixture();
    let report = dir.path().join("report.json");
    let mut command = course(dir.path());
    command.arg("grade").arg("--json").arg(&report);
    let output = finish(command);
    let stdout = text(&output.stdout);
    let all = format!("{stdout}\n{}", text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        stdout.contains("BUILD-ERROR: error[E0308]: mismatched types at exercises/src/ch02_fixture.rs:5"),
        "{all}"
    );
    assert!(
        stdout.contains("    answer                       3/3   points"),
        "{all}"
    );
    assert!(
        stdout.contains("FAIL          ch01::double::doubles"),
        "{all}"
    );
    assert!(stdout.contains("score: 3/10 points (30 %)"), "{all}");
    // The next exercise, where it is and where to read about it.
    assert!(stdout.contains("next: ch01::double"), "{all}");
    assert!(
        stdout.contains("code:  exercises/src/ch01_fixture.rs:8"),
        "{all}"
    );
    assert!(
        stdout.contains("01-fixture/fixture.html#exercises"),
        "{all}"
    );
    assert!(!stdout.contains("warning:"), "nothing was edited:\n{all}");

    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["score"]["earned"], 3, "{json}");
    assert_eq!(json["score"]["possible"], 10, "{json}");
    assert_eq!(json["build_errors"][0]["chapter"], "ch02", "{json}");
    let trials = json["trials"].as_array().unwrap();
    let verdicts: Vec<(&str, &str)> = trials
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("ch01::answer::is_42", "PASS"),
            ("ch01::double::doubles", "FAIL")
        ]
    );
    assert!(
        trials[1]["reason"].as_str().unwrap().contains("left: 5"),
        "{json}"
    );
    assert!(trials[0]["duration_ms"].is_u64(), "{json}");
    assert_eq!(json["edited_files"], serde_json::json!([]), "{json}");
}

#[test]
fn an_exercise_is_graded_by_its_bare_name() {
    let dir = fixture();
    let mut command = course(dir.path());
    command.args(["grade", "double"]);
    let output = finish(command);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("score: 0/2 points"), "{stdout}");
    let mut command = course(dir.path());
    command.args(["grade", "ch01::no_such_exercise"]);
    let output = finish(command);
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a typo is not a pass: {stderr}"
    );
    assert!(stderr.contains("no trial matches"), "{stderr}");
}

#[test]
fn an_edited_graded_file_is_named() {
    let dir = fixture();
    let graded = dir.path().join("exercises/tests/graded.rs");
    let mut edited = fs::read_to_string(&graded).unwrap();
    edited.push_str("// Made easier.\n");
    fs::write(&graded, edited).unwrap();
    let mut command = course(dir.path());
    command.args(["grade", "ch01"]);
    let output = finish(command);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("warning: exercises/tests/graded.rs differ(s)"),
        "{stdout}\n{}",
        text(&output.stderr)
    );
}

#[test]
fn hints_come_one_at_a_time() {
    let dir = fixture();
    let hint = |args: &[&str]| {
        let mut command = course(dir.path());
        command.arg("hint").args(args);
        let output = finish(command);
        (
            output.status.code(),
            text(&output.stdout) + &text(&output.stderr),
        )
    };
    let (code, first) = hint(&["double"]);
    assert_eq!(code, Some(0), "{first}");
    assert!(
        first.contains("(1 of 2)") && first.contains("Add it to itself"),
        "{first}"
    );
    assert!(!first.contains("Without the"), "{first}");
    let (_, second) = hint(&["ch01::double"]);
    assert!(
        second.contains("(2 of 2)") && second.contains("Without the"),
        "{second}"
    );
    assert!(second.contains("last hint"), "{second}");
    let (_, again) = hint(&["double"]);
    assert!(again.contains("(2 of 2)"), "{again}");
    hint(&["double", "--reset"]);
    let (_, reset) = hint(&["double"]);
    assert!(reset.contains("(1 of 2)"), "{reset}");
    // The id of a trial, as a report prints it, names its exercise.
    let (_, by_trial) = hint(&["ch01::double::doubles"]);
    assert!(by_trial.contains("hints for ch01::double"), "{by_trial}");
    let (code, unknown) = hint(&["triple"]);
    assert_eq!(code, Some(2), "{unknown}");
    assert!(unknown.contains("no exercise \"triple\""), "{unknown}");
}

/// Reads stdout lines on a thread, so the test can wait for a line
/// without blocking forever.
fn lines_of(
    stdout: impl std::io::Read + Send + 'static,
) -> mpsc::Receiver<String> {
    let (send, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if send.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    lines
}

/// Waits for a line containing `needle`; the lines before it.
fn wait_for(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    let mut seen = String::new();
    loop {
        match lines.recv_timeout(HANG) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(needle) {
                    return seen;
                }
            }
            Err(_) => panic!("no line with {needle:?}; saw:\n{seen}"),
        }
    }
}

#[test]
fn watch_grades_again_when_a_file_is_saved() {
    let dir = fixture();
    let mut child = course(dir.path())
        .args(["watch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    let first = wait_for(&lines, "score:");
    assert!(first.contains("grading every chapter"), "{first}");
    assert!(first.contains("score: 3/10 points"), "{first}");
    // Save a fix: the watcher notices and grades that chapter alone.
    fs::write(
        dir.path().join("exercises/src/ch01_fixture.rs"),
        gated("ch01_fixture", CH01_SOLVED),
    )
    .unwrap();
    let second = wait_for(&lines, "score:");
    assert!(second.contains("grading ch01"), "{second}");
    assert!(second.contains("score: 5/5 points (100 %)"), "{second}");
    // A chapter at 100 % points to the next one.
    let next = wait_for(&lines, "then:");
    assert!(next.contains("next: chapter ch02"), "{next}");
    assert!(next.contains("cargo course watch ch02"), "{next}");
    // Enter grades again at once; q stops.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\n").unwrap();
    let third = wait_for(&lines, "score:");
    assert!(third.contains("score: 5/5 points"), "{third}");
    stdin.write_all(b"q\n").unwrap();
    let status = child.wait_timeout(HANG).unwrap();
    if status.is_none() {
        let _ = child.kill();
    }
    assert!(
        status.is_some_and(|s| s.success()),
        "watch did not stop on q"
    );
}

/// Without a standard input (a background job, an IDE's task runner),
/// watch says the keys are off and goes on grading each save.
#[test]
fn watch_goes_on_without_a_standard_input() {
    let dir = fixture();
    let mut child = course(dir.path())
        .args(["watch", "ch01"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    let said = lines_of(child.stderr.take().unwrap());
    let first = wait_for(&lines, "score:");
    assert!(first.contains("score: 3/5 points"), "{first}");
    wait_for(&said, "standard input is closed");
    fs::write(
        dir.path().join("exercises/src/ch01_fixture.rs"),
        gated("ch01_fixture", CH01_SOLVED),
    )
    .unwrap();
    let second = wait_for(&lines, "score:");
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(second.contains("score: 5/5 points (100 %)"), "{second}");
    assert!(still_running, "watch stopped");
}

/// The exercises as the Classroom workflow lists them, which
/// `course verify` keeps current.
fn exercises() -> Vec<String> {
    let workflow = fs::read_to_string(
        Path::new(ROOT).join(".github/workflows/classroom.yml"),
    )
    .unwrap();
    workflow
        .lines()
        .filter_map(|line| line.trim().strip_prefix("test-name: "))
        // The loom models' steps grade the same exercises again.
        .filter(|name| !name.ends_with(" (loom)"))
        .map(str::to_string)
        .collect()
}

/// Every exercise the trials grade has at least two hints, read by the
/// same parser `course hint` uses, in the order of the Classroom steps.
#[test]
fn every_exercise_has_hints() {
    let root = Path::new(ROOT);
    let all = course::cli::hint::all(root);
    for hints in &all {
        assert!(
            hints.hints.len() >= 2,
            "{} has {} hint(s)",
            hints.exercise,
            hints.hints.len()
        );
    }
    let hinted: Vec<String> = all.into_iter().map(|h| h.exercise).collect();
    let graded: Vec<String> = course::registry::chapters(root)
        .iter()
        .flat_map(|chapter| chapter.exercises(root))
        .collect();
    assert_eq!(hinted, exercises());
    assert_eq!(hinted, graded);
}

/// `course bench --write` on a copy of the book's chapters: every figure a
/// chapter quotes is written, the tables and charts exist. (The figures of
/// a smoke run mean nothing; only their presence is checked.)
#[test]
fn bench_writes_every_figure_the_chapters_quote() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = course(dir.path());
    command.args(["bench", "--smoke", "--write"]);
    let output = finish(command);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("### The convoy effect"), "{stdout}");
    // Built with an embeddable CPython, the run embedded it; built
    // without, it says why instead.
    let detached = stdout.contains("| Rust, inside `py.detach` | ");
    assert_eq!(detached, cfg!(python), "{stdout}");
    let figures = dir.path().join("chapters/appendix/measurements");
    for chart in ["countdown.svg", "convoy.svg", "python-calls-rust.svg"] {
        let svg = fs::read_to_string(figures.join(chart)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<rect"), "{chart}");
    }
    let written = fs::read_to_string(figures.join("figures.md")).unwrap();
    let mut quoted = 0;
    for page in fs::read_dir(Path::new(ROOT).join("chapters")).unwrap() {
        let page = page.unwrap().path();
        let Ok(pages) = fs::read_dir(&page) else {
            continue;
        };
        for file in pages.map(|f| f.unwrap().path()) {
            let Ok(text) = fs::read_to_string(&file) else {
                continue;
            };
            for rest in text.split("figures.md:").skip(1) {
                let anchor = rest.split("}}").next().unwrap();
                assert!(
                    written.contains(&format!("ANCHOR: {anchor} ")),
                    "{}: quotes {anchor:?}, which bench does not write",
                    file.display()
                );
                quoted += 1;
            }
        }
    }
    assert!(quoted >= 10, "only {quoted} quotes found");
    assert!(
        dir.path()
            .join("chapters/appendix/measurements.md")
            .exists()
    );
}

/// `course trace <name>` records that timeline now and prints its lanes
/// and summary; an unknown name fails with the list of names.
#[test]
fn trace_prints_a_timeline_and_names_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = course(dir.path());
    command
        .args(["trace", "toy_new_gil_cpu_5ms"])
        .env("COLUMNS", "60");
    let output = finish(command);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let lanes: Vec<&str> = (stdout.lines())
        .filter(|l| l.contains(" |") && l.ends_with('|'))
        .collect();
    assert_eq!(lanes.len(), 2, "{stdout}");
    assert!(
        lanes[0].trim_start().starts_with("CPU thread 1 |"),
        "{stdout}"
    );
    assert!(stdout.contains("took turns"), "{stdout}");

    let mut command = course(dir.path());
    command.args(["trace", "no_such_trace"]);
    let output = finish(command);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("no_such_trace"), "{stderr}");
    assert!(stderr.contains("toy_old_gil_io, "), "{stderr}");

    let mut command = course(dir.path());
    command.arg("trace");
    let output = finish(command);
    assert!(output.status.success());
    assert!(text(&output.stdout).contains("\ntokio_spawn_blocking\n"));
}
