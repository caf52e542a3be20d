//! The graded suite in miniature, which this binary runs when it is
//! started with `SUITE_DIR` set, and the `suite::` checks of what an
//! instructor sees when it runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use course::grader::Trial;
use libtest_mimic::Failed;

use crate::corpus::{HANG, fails_an_assertion};
use crate::expectations::mentions;

/// Set in the environment of the suite run; names a folder the suite's
/// trials share, to see which of them run at the same time.
pub(crate) const SUITE_DIR: &str = "FAULTS_SUITE_DIR";

/// A graded suite in miniature: two chapters, one failing trial, and an
/// exclusive trial among ordinary ones.
pub(crate) fn suite() -> Vec<Trial> {
    if std::env::var_os(NOT_RUN_SUITE).is_some() {
        return vec![
            Trial::new("ch93::plain::passes", 1, || {}),
            Trial::not_run(
                "ch93::python::needs_python",
                2,
                "no Python found; install one",
            ),
        ];
    }
    if std::env::var_os(HANGING_SUITE).is_some() {
        return vec![
            Trial::new("ch92::hang::a", 1, hangs_and_tells).timeout(HANG * 30),
            Trial::new("ch92::hang::b", 1, hangs_and_tells).timeout(HANG * 30),
        ];
    }
    let mut trials = vec![
        Trial::new("ch90::alone::runs_alone", 3, runs_alone).exclusive(),
        Trial::new("ch91::broken::fails", 2, fails_an_assertion),
    ];
    for name in ["a", "b", "c", "d", "e", "f"] {
        trials.push(Trial::new(
            format!("ch90::crowd::member_{name}"),
            1,
            crowd_member,
        ));
    }
    trials
}

fn suite_dir() -> PathBuf {
    PathBuf::from(std::env::var_os(SUITE_DIR).expect("no suite folder"))
}

/// Set with `SUITE_DIR`: the suite is a trial that passes and one that
/// this machine cannot run.
const NOT_RUN_SUITE: &str = "FAULTS_NOT_RUN_SUITE";

/// Set with `SUITE_DIR`: the suite is two trials that hang.
const HANGING_SUITE: &str = "FAULTS_HANGING_SUITE";

/// Starts a child, writes both pids to the suite folder, and hangs.
#[allow(clippy::zombie_processes, reason = "the grader must kill it")]
fn hangs_and_tells() {
    let child = Command::new("sleep").arg("300").spawn().unwrap();
    let pids = format!("{} {}\n", std::process::id(), child.id());
    let file = suite_dir().join(format!("pids-{}", std::process::id()));
    fs::write(file.with_extension("tmp"), pids).unwrap();
    fs::rename(file.with_extension("tmp"), file).unwrap();
    loop {
        thread::park();
    }
}

/// Whether a process is still alive (a zombie is not).
fn alive(pid: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

/// Marks itself running, and fails if it ever sees the exclusive trial.
fn crowd_member() {
    let me = suite_dir().join(format!("running-{}", std::process::id()));
    fs::write(&me, "").unwrap();
    for _ in 0..20 {
        let alone = suite_dir().join("running-alone");
        assert!(!alone.exists(), "ran beside an exclusive trial");
        thread::sleep(Duration::from_millis(5));
    }
    fs::remove_file(&me).unwrap();
}

/// Fails if any other trial runs while it does. The sleeps give overlaps
/// time to show; without them the check is weaker, never wrong.
fn runs_alone() {
    let me = suite_dir().join("running-alone");
    fs::write(&me, "").unwrap();
    for _ in 0..20 {
        let others = fs::read_dir(suite_dir())
            .unwrap()
            .filter(|entry| entry.as_ref().unwrap().path() != me)
            .count();
        assert_eq!(others, 0, "another trial ran beside an exclusive one");
        thread::sleep(Duration::from_millis(5));
    }
    fs::remove_file(&me).unwrap();
}

/// Runs this binary as the suite with `args`; returns (exit code, stdout).
fn run_suite(args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(args)
        .env(SUITE_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), stdout)
}

/// The `suite::` checks, each a run of this binary as the suite.
pub(crate) fn suite_checks() -> Vec<libtest_mimic::Trial> {
    let check = |name: &str, body: fn() -> Result<(), String>| {
        libtest_mimic::Trial::test(name, move || body().map_err(Failed::from))
    };
    vec![
        check(
            "suite::score_table_follows_the_test_result",
            score_table_follows_the_test_result,
        ),
        check(
            "suite::exclusive_trials_run_alone",
            exclusive_trials_run_alone,
        ),
        check(
            "suite::list_shows_trials_and_no_score",
            list_shows_trials_and_no_score,
        ),
        check(
            "suite::ctrl_c_kills_the_running_trials",
            ctrl_c_kills_the_running_trials,
        ),
        check(
            "suite::a_filter_grades_only_what_it_names",
            a_filter_grades_only_what_it_names,
        ),
        check(
            "suite::a_trial_that_cannot_run_is_not_run_never_passed",
            a_trial_that_cannot_run_is_not_run_never_passed,
        ),
    ]
}

/// A trial this machine cannot run (chapter 9 without a CPython to embed)
/// earns nothing and says why; libtest counts it as ignored, so the suite
/// passes, unless `COURSE_REQUIRE_PYTHON` is set, which makes it fail.
fn a_trial_that_cannot_run_is_not_run_never_passed() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let run = |required: bool| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.env(SUITE_DIR, dir.path()).env(NOT_RUN_SUITE, "1");
        if required {
            command.env("COURSE_REQUIRE_PYTHON", "1");
        } else {
            command.env_remove("COURSE_REQUIRE_PYTHON");
        }
        let output = command.output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), text)
    };
    let (code, out) = run(false);
    if code != Some(0) {
        return Err(format!("a suite with a NOT-RUN trial failed:\n{out}"));
    }
    mentions(&out, "1 passed; 0 failed; 1 ignored")?;
    mentions(&out, "NOT-RUN: no Python found; install one")?;
    mentions(&out, "score: 1/3 points (33 %)")?;
    let (code, out) = run(true);
    if code == Some(0) {
        return Err(format!("COURSE_REQUIRE_PYTHON did not fail it:\n{out}"));
    }
    mentions(&out, "1 passed; 1 failed")?;
    mentions(&out, "score: 1/3 points (33 %)")
}

/// A failing suite exits non-zero, and its score table comes after the
/// libtest summary.
fn score_table_follows_the_test_result() -> Result<(), String> {
    let (code, out) = run_suite(&["--test-threads", "4"]);
    if code == Some(0) {
        return Err(format!("a failing suite exited 0:\n{out}"));
    }
    let result = out
        .find("test result: FAILED. 7 passed; 1 failed")
        .ok_or(format!("no libtest summary:\n{out}"))?;
    let table = out
        .find("score by chapter and exercise")
        .ok_or(format!("no score table:\n{out}"))?;
    if table < result {
        return Err(format!("the table comes first:\n{out}"));
    }
    mentions(&out, "score: 9/11 points (81 %)")?;
    mentions(&out, "ch91")
}

/// The exclusive trial and the crowd all pass, run after run: none saw
/// another beside the exclusive one.
fn exclusive_trials_run_alone() -> Result<(), String> {
    for _ in 0..3 {
        let (_, out) = run_suite(&["--test-threads", "4", "ch90"]);
        mentions(&out, "score: 9/9 points (100 %)")?;
    }
    Ok(())
}

/// `--list` lists the trials and prints no score.
fn list_shows_trials_and_no_score() -> Result<(), String> {
    let (code, out) = run_suite(&["--list"]);
    if code != Some(0) {
        return Err(format!("--list failed:\n{out}"));
    }
    mentions(&out, "ch90::alone::runs_alone: test")?;
    if out.contains("score") {
        return Err(format!("--list printed a score:\n{out}"));
    }
    Ok(())
}

/// Ctrl-C on a suite of two hanging trials: the suite exits non-zero, and
/// neither the trials' processes nor their children are left alive.
fn ctrl_c_kills_the_running_trials() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut suite = Command::new(std::env::current_exe().unwrap())
        .args(["--test-threads", "2"])
        .env(SUITE_DIR, dir.path())
        .env(HANGING_SUITE, "1")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Both trials have started their children (no timing: a hang
    // here is caught by the trials' own long deadline).
    let pids = told_pids(dir.path());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(suite.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = suite.wait().unwrap();
    if status.success() {
        return Err("the interrupted suite exited 0".into());
    }
    // The suite waits for its trials' processes to die before it
    // exits: none may be alive now.
    let left: Vec<&String> = pids.iter().filter(|pid| alive(pid)).collect();
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!("still running after Ctrl-C: {left:?}"))
    }
}

/// Waits until both trials of the hanging suite have written their pids
/// to `dir` (see [`hangs_and_tells`]); returns them all.
fn told_pids(dir: &Path) -> Vec<String> {
    loop {
        let told: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("pids-"))
            .filter(|e| e.path().extension().is_none())
            .map(|e| fs::read_to_string(e.path()).unwrap())
            .collect();
        if told.len() == 2 {
            break told
                .iter()
                .flat_map(|t| t.split_whitespace())
                .map(str::to_string)
                .collect();
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A filter runs only the trials it names, and the score counts only
/// their points.
fn a_filter_grades_only_what_it_names() -> Result<(), String> {
    let (code, out) = run_suite(&["ch91"]);
    if code == Some(0) {
        return Err(format!("the failing trial passed:\n{out}"));
    }
    mentions(&out, "7 filtered out")?;
    mentions(&out, "score: 0/2 points (0 %)")
}
