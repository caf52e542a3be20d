//! The grader's own proof: a corpus of trials that misbehave the way learner
//! code does, each run through `course::grader::run_trial` exactly as the
//! graded suites are, and the verdict it must get.
//!
//! This binary is its own trial child: when the grader re-executes it with
//! a trial id, `run_child_if_requested` runs that one faulty trial.
//!
//! It is also a whole graded suite: started with `SUITE_DIR` set, it runs
//! `grader::main` over `suite()`, and the `suite::` tests check what an
//! instructor sees: the score table after `test result:`, the exit status,
//! `--list`, filters, and exclusive trials running alone.

use std::fs;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use course::grader::{self, Outcome, Trial};
use libtest_mimic::{Arguments, Failed};

/// Short deadlines: these trials hang on purpose.
const HANG: Duration = Duration::from_secs(2);

fn corpus() -> Vec<Trial> {
    vec![
        Trial::new("faults::passes", 1, passes),
        Trial::new("faults::fails_an_assertion", 1, fails_an_assertion),
        Trial::new("faults::deadlocks", 1, deadlocks)
            .timeout(HANG)
            .on_timeout("did not run concurrently"),
        Trial::new("faults::loops_forever", 1, loops_forever).timeout(HANG),
        Trial::new("faults::panics_in_a_thread", 1, panics_in_a_thread),
        Trial::new("faults::aborts", 1, aborts),
        Trial::new("faults::overflows_a_thread_stack", 1, overflows_stack),
        Trial::new("faults::exits_zero_early", 1, exits_zero_early),
        Trial::new("faults::exits_from_a_thread", 1, exits_from_a_thread),
        Trial::new("faults::prints_ten_mib", 1, prints_ten_mib),
        Trial::new("faults::prints_forever", 1, prints_forever).timeout(HANG),
        Trial::new("faults::fakes_a_test_result", 1, fakes_a_test_result),
        Trial::new("faults::leaves_a_child", 1, leaves_a_child),
        Trial::new("faults::hangs_with_a_child", 1, hangs_with_a_child)
            .timeout(HANG),
    ]
}

fn passes() {
    let answer = thread::spawn(|| 6 * 7).join().unwrap();
    assert_eq!(answer, 42);
}

fn fails_an_assertion() {
    assert_eq!(2 + 2, 5, "expected 5 workers, saw 4");
}

fn deadlocks() {
    let lock = Mutex::new(0);
    let _held = lock.lock().unwrap();
    let _again = lock.lock(); // Same thread, same lock: never returns.
}

fn loops_forever() {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn panics_in_a_thread() {
    thread::spawn(|| panic!("worker 3 gave up"))
        .join()
        .expect("a worker thread panicked");
}

fn aborts() {
    std::process::abort();
}

fn overflows_stack() {
    fn depth(n: u64) -> u64 {
        if n == u64::MAX {
            return n;
        }
        let frame = black_box([n; 64]);
        frame[0] + depth(black_box(n + 1))
    }
    thread::Builder::new()
        .name("deep".into())
        .stack_size(64 * 1024)
        .spawn(|| depth(0))
        .unwrap()
        .join()
        .unwrap();
}

fn exits_zero_early() {
    std::process::exit(0);
}

fn exits_from_a_thread() {
    thread::spawn(|| std::process::exit(0)).join().unwrap();
}

fn prints_ten_mib() {
    let line = "x".repeat(1023);
    for _ in 0..10 * 1024 {
        println!("{line}");
    }
}

fn prints_forever() {
    loop {
        eprintln!("still going");
    }
}

fn fakes_a_test_result() {
    println!("test result: ok. 99 passed; 0 failed; 0 ignored");
    panic!("the real check failed");
}

/// Starts `sleep` and does not wait for it; prints its pid.
#[allow(clippy::zombie_processes, reason = "leaving it behind is the fault")]
fn leaves_a_child() {
    let child = Command::new("sleep").arg("300").spawn().unwrap();
    println!("leftover pid {}", child.id());
}

/// Starts `sleep`, prints its pid, then hangs.
fn hangs_with_a_child() {
    leaves_a_child();
    loop {
        thread::park();
    }
}

/// Set in the environment of the suite run; names a folder the suite's
/// trials share, to see which of them run at the same time.
const SUITE_DIR: &str = "FAULTS_SUITE_DIR";

/// A graded suite in miniature: two chapters, one failing trial, and an
/// exclusive trial among ordinary ones.
fn suite() -> Vec<Trial> {
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

fn suite_checks() -> Vec<libtest_mimic::Trial> {
    let check = |name: &str, body: fn() -> Result<(), String>| {
        libtest_mimic::Trial::test(name, move || body().map_err(Failed::from))
    };
    vec![
        check("suite::score_table_follows_the_test_result", || {
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
        }),
        check("suite::exclusive_trials_run_alone", || {
            for _ in 0..3 {
                let (_, out) = run_suite(&["--test-threads", "4", "ch90"]);
                mentions(&out, "score: 9/9 points (100 %)")?;
            }
            Ok(())
        }),
        check("suite::list_shows_trials_and_no_score", || {
            let (code, out) = run_suite(&["--list"]);
            if code != Some(0) {
                return Err(format!("--list failed:\n{out}"));
            }
            mentions(&out, "ch90::alone::runs_alone: test")?;
            if out.contains("score") {
                return Err(format!("--list printed a score:\n{out}"));
            }
            Ok(())
        }),
        check("suite::a_filter_grades_only_what_it_names", || {
            let (code, out) = run_suite(&["ch91"]);
            if code == Some(0) {
                return Err(format!("the failing trial passed:\n{out}"));
            }
            mentions(&out, "7 filtered out")?;
            mentions(&out, "score: 0/2 points (0 %)")
        }),
    ]
}

type Check = fn(&Outcome) -> Result<(), String>;

/// The verdict each trial must get, and any further check of the outcome.
fn expectations() -> Vec<(&'static str, &'static str, Check)> {
    vec![
        ("faults::passes", "PASS", no_check),
        ("faults::fails_an_assertion", "FAIL", |o| {
            mentions(&o.verdict.to_string(), "expected 5 workers, saw 4")
        }),
        ("faults::deadlocks", "TIMEOUT", |o| {
            mentions(&o.verdict.to_string(), "did not run concurrently")
        }),
        ("faults::loops_forever", "TIMEOUT", no_check),
        ("faults::panics_in_a_thread", "FAIL", |o| {
            mentions(&o.stderr, "worker 3 gave up")
        }),
        ("faults::aborts", "CRASH", |o| {
            mentions(&o.verdict.to_string(), "SIGABRT")
        }),
        ("faults::overflows_a_thread_stack", "CRASH", |o| {
            mentions(&o.verdict.to_string(), "stack overflow")
        }),
        ("faults::exits_zero_early", "EXITED-EARLY", no_check),
        ("faults::exits_from_a_thread", "EXITED-EARLY", no_check),
        ("faults::prints_ten_mib", "OUTPUT-LIMIT", |o| {
            let kept = o.stdout.len() + o.stderr.len();
            if kept <= grader::OUTPUT_LIMIT {
                Ok(())
            } else {
                Err(format!("kept {kept} bytes of output"))
            }
        }),
        ("faults::prints_forever", "OUTPUT-LIMIT", no_check),
        ("faults::fakes_a_test_result", "FAIL", |o| {
            let report = o.report();
            match report.lines().find(|l| l.starts_with("test result")) {
                Some(line) => Err(format!("unprefixed fake line: {line}")),
                None => mentions(&report, "| test result: ok. 99 passed"),
            }
        }),
        ("faults::leaves_a_child", "FAIL", |o| {
            mentions(&o.verdict.to_string(), "still running")?;
            leftover_is_gone(o)
        }),
        ("faults::hangs_with_a_child", "TIMEOUT", leftover_is_gone),
    ]
}

fn no_check(_: &Outcome) -> Result<(), String> {
    Ok(())
}

fn mentions(text: &str, needle: &str) -> Result<(), String> {
    if text.contains(needle) {
        Ok(())
    } else {
        Err(format!("expected {needle:?} in:\n{text}"))
    }
}

/// The trial's grandchild must have been killed with its process group.
fn leftover_is_gone(outcome: &Outcome) -> Result<(), String> {
    let pid: u32 = outcome
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("leftover pid "))
        .and_then(|pid| pid.trim().parse().ok())
        .ok_or_else(|| format!("no pid printed:\n{}", outcome.report()))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
    match stat {
        // A killed process may linger as a zombie until it is reaped.
        Ok(stat)
            if !stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z')) =>
        {
            Err(format!("process {pid} survived the trial: {stat}"))
        }
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    if std::env::var_os(SUITE_DIR).is_some() {
        return grader::main(suite());
    }
    let trials = corpus();
    if let Some(code) = grader::run_child_if_requested(&trials) {
        return code;
    }
    let expected = expectations();
    assert_eq!(
        expected.len(),
        trials.len(),
        "every trial of the corpus needs an expected verdict"
    );
    let trials = Arc::new(trials);
    let tests: Vec<_> = expected
        .into_iter()
        .map(|(id, label, check)| {
            let trials = Arc::clone(&trials);
            libtest_mimic::Trial::test(id, move || {
                let trial = trials
                    .iter()
                    .find(|t| t.id() == id)
                    .ok_or_else(|| Failed::from("no such trial"))?;
                let outcome = grader::run_trial(trial);
                if outcome.verdict.label() != label {
                    return Err(format!(
                        "expected {label}, got {}",
                        outcome.report()
                    )
                    .into());
                }
                check(&outcome).map_err(Failed::from)
            })
        })
        .chain(suite_checks())
        .collect();
    libtest_mimic::run(&Arguments::from_args(), tests).exit_code()
}
