//! `course verify`: the course is whole and consistent. Every chapter has
//! all its pieces (`course::registry`), every stub scores 0, every
//! solution 100 %, and the recorded checksums, points and Classroom
//! workflow are current; `--write-sums` records them instead.

use std::collections::BTreeMap;
use std::path::Path;

use super::grade::{self, Options, Package, Report};
use super::sums;

/// `course verify`. With `write_sums`, records the checksums, points and
/// workflow instead of checking them. `Ok(true)` when all holds.
pub fn verify(root: &Path, write_sums: bool) -> Result<bool, String> {
    let mut ok = check_pieces(root);
    ok &= check_stubs(root, false)?;
    let (solved_ok, solved) = check_solutions(root, false)?;
    ok &= solved_ok;
    // The loom models, graded as `cargo course grade --loom` does.
    ok &= check_stubs(root, true)?;
    let (loom_ok, loom) = check_solutions(root, true)?;
    ok &= loom_ok;
    let points = chapter_points(&solved);
    let mut steps = exercise_points(&solved);
    steps.extend(exercise_points(&loom));
    let classroom = classroom_workflow(&steps);
    if write_sums {
        write_records(root, classroom, &points)?;
        return Ok(ok);
    }
    Ok(ok & check_records(root, &classroom, &points))
}

fn quiet(loom: bool) -> Options {
    Options {
        interactive: false,
        loom,
    }
}

/// "the stubs", or "the stubs' loom models".
fn what(crate_: &str, loom: bool) -> String {
    if loom {
        format!("{crate_} (loom models)")
    } else {
        crate_.to_string()
    }
}

fn check_pieces(root: &Path) -> bool {
    let mut missing = crate::registry::missing_pieces(root);
    let pristine = sums::pristine_stubs(root);
    missing.extend(crate::registry::mirror::problems(root, &pristine));
    if missing.is_empty() {
        println!(
            "ok: every chapter has all its pieces, stubs mirror solutions"
        );
    }
    for piece in &missing {
        println!("FAILED: {piece}");
    }
    missing.is_empty()
}

/// Every stub compiles and fails every trial.
fn check_stubs(root: &Path, loom: bool) -> Result<bool, String> {
    println!("grading the stubs ({}) ...", what("exercises", loom));
    let stubs = grade::grade(root, Package::Exercises, None, quiet(loom))
        .map_err(|fatal| fatal.to_string())?;
    let mut ok = true;
    for broken in &stubs.broken {
        println!(
            "  FAILED: {} does not compile:\n{}",
            broken.chapter, broken.message
        );
        ok = false;
    }
    let passing: Vec<&str> = stubs
        .judged
        .iter()
        .filter(|t| t.verdict.passed())
        .map(|t| t.id.as_str())
        .collect();
    if passing.is_empty() {
        println!("  ok: all {} trials fail on the stubs", stubs.judged.len());
    } else {
        println!(
            "  FAILED: these trials pass on the stubs: {}",
            passing.join(", ")
        );
        ok = false;
    }
    Ok(ok)
}

/// Every solution compiles and passes every trial; the report.
fn check_solutions(root: &Path, loom: bool) -> Result<(bool, Report), String> {
    println!("grading {} ...", what("the solutions", loom));
    let solved = grade::grade(root, Package::Solutions, None, quiet(loom))
        .map_err(|fatal| fatal.to_string())?;
    let (earned, possible) = solved.score(root);
    if solved.all_passed() && earned == possible {
        println!("  ok: {earned}/{possible} points (100 %)");
        return Ok((true, solved));
    }
    for trial in solved.judged.iter().filter(|t| !t.verdict.passed()) {
        println!(
            "  FAILED: {} {}: {}",
            trial.verdict.label(),
            trial.id,
            trial.verdict.reason()
        );
    }
    for broken in &solved.broken {
        println!(
            "  FAILED: {} does not compile:\n{}",
            broken.chapter, broken.message
        );
    }
    Ok((false, solved))
}

fn chapter_points(solved: &Report) -> BTreeMap<String, u32> {
    let mut points: BTreeMap<String, u32> = BTreeMap::new();
    for trial in &solved.judged {
        *points.entry(trial.id.chapter().to_string()).or_default() +=
            trial.points;
    }
    points
}

/// Each exercise and its points, in the suite's order, as a Classroom
/// step grades it: `ch04::my_arc`, or `--loom ch04::my_arc` for its loom
/// models.
fn exercise_points(solved: &Report) -> Vec<(String, u32)> {
    let loom = solved.suite == grade::Suite::Loom;
    let mut exercises: Vec<(String, u32)> = Vec::new();
    for trial in &solved.judged {
        let exercise = if loom {
            format!("--loom {}", trial.id.exercise())
        } else {
            trial.id.exercise().to_string()
        };
        match exercises.last_mut() {
            Some((last, points)) if *last == exercise => {
                *points += trial.points
            }
            _ => exercises.push((exercise, trial.points)),
        }
    }
    exercises
}

fn write_records(
    root: &Path,
    classroom: String,
    points: &BTreeMap<String, u32>,
) -> Result<(), String> {
    let write = |file: &str, text: String| {
        let path = root.join(file);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(&path, text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {file}");
        Ok::<(), String>(())
    };
    // The workflow first: the checksums cover it.
    write(CLASSROOM, classroom)?;
    write(sums::SUMS, sums::render(root, points))
}

fn check_records(
    root: &Path,
    classroom: &str,
    points: &BTreeMap<String, u32>,
) -> bool {
    let mut ok = true;
    let current =
        std::fs::read_to_string(root.join(CLASSROOM)).unwrap_or_default();
    if current != classroom {
        println!("FAILED: {CLASSROOM} does not list the current exercises");
        ok = false;
    }
    let mut edited = sums::edited(root);
    let pristine = sums::pristine_stubs(root);
    edited.extend(
        sums::stub_files(root)
            .into_iter()
            .filter(|stub| !pristine.contains(stub)),
    );
    let recorded = sums::chapter_points(root);
    if edited.is_empty() && recorded == *points {
        println!("ok: {} records the graded files and points", sums::SUMS);
        return ok;
    }
    for file in edited {
        println!("FAILED: {file} differs from {}", sums::SUMS);
    }
    if recorded != *points {
        println!(
            "FAILED: the recorded points {recorded:?} are not the suites' \
             {points:?}"
        );
    }
    println!(
        "(after changing the tests on purpose: course verify --write-sums)"
    );
    false
}

/// The GitHub Classroom autograding workflow.
pub const CLASSROOM: &str = ".github/workflows/classroom.yml";

/// One autograding step per exercise, worth its points: the step passes
/// when `course grade` passes every trial of the exercise, so a student
/// earns each exercise's points separately.
fn classroom_workflow(exercises: &[(String, u32)]) -> String {
    // `--loom ch04::my_arc` is the step `ch04::my_arc (loom)`, id
    // `ch04-my-arc-loom`, with time to build the loom models.
    let loom = |step: &str| step.strip_prefix("--loom ").map(str::to_string);
    let id = |step: &str| match loom(step) {
        Some(exercise) => {
            format!("{}-loom", exercise.replace("::", "-").replace('_', "-"))
        }
        None => step.replace("::", "-").replace('_', "-"),
    };
    let name = |step: &str| match loom(step) {
        Some(exercise) => format!("{exercise} (loom)"),
        None => step.to_string(),
    };
    let mut out = String::from(
        "# GitHub Classroom autograding: one step per exercise, worth its \
         points.\n# Written by `course verify --write-sums`; do not edit.\n\
         name: Autograding Tests\n\"on\":\n  - push\n  - workflow_dispatch\n\
         permissions:\n  checks: write\n  actions: read\n  contents: read\n\
         jobs:\n  run-autograding-tests:\n    runs-on: ubuntu-latest\n    \
         if: github.actor != 'github-classroom[bot]'\n    steps:\n      \
         - name: Checkout code\n        uses: actions/checkout@v4\n      \
         - name: Build the grader\n        \
         run: cargo build --release --package course --no-default-features \
         --features cli\n",
    );
    for (exercise, points) in exercises {
        let minutes = if loom(exercise).is_some() { 30 } else { 10 };
        out.push_str(&format!(
            "      - name: {name}\n        id: {id}\n        \
             uses: classroom-resources/autograding-command-grader@v1\n        \
             with:\n          test-name: {name}\n          \
             setup-command: \"\"\n          \
             command: cargo course grade {exercise}\n          \
             timeout: {minutes}\n          max-score: {points}\n",
            id = id(exercise),
            name = name(exercise),
        ));
    }
    out.push_str(
        "      - name: Autograding Reporter\n        \
         uses: classroom-resources/autograding-grading-reporter@v1\n        \
         env:\n",
    );
    for (exercise, _) in exercises {
        let id = id(exercise);
        out.push_str(&format!(
            "          {}_RESULTS: \"${{{{steps.{id}.outputs.result}}}}\"\n",
            id.to_uppercase()
        ));
    }
    let ids: Vec<String> = exercises.iter().map(|(e, _)| id(e)).collect();
    out.push_str(&format!(
        "        with:\n          runners: {}\n",
        ids.join(",")
    ));
    out
}
