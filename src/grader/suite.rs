//! The parent's side of the whole suite: libtest-mimic runs the trials
//! (filters, `--list`, `--test-threads` as in any `cargo test`), each in a
//! child of its own; the score table follows `test result:`.

use std::process::ExitCode;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use super::events::{Event, Events, Judged};
use super::score::{Scored, score_table};
use super::{ENV_TAG, Trial, Verdict, judge};
use crate::reap;

/// Runs the suite as the parent.
pub(super) fn run_suite(trials: Vec<Trial>) -> ExitCode {
    if std::env::var_os(ENV_TAG).is_some() {
        // Learner code ran this binary again (as Python's multiprocessing
        // does with `sys.executable`): a suite inside a trial would grade
        // everything again, recursively.
        eprintln!(
            "grader: the graded suite was started from inside a trial (does \
             the code run std::env::current_exe()?)"
        );
        return ExitCode::from(2);
    }
    let args = libtest_mimic::Arguments::from_args();
    let events = Arc::new(Events::from_env());
    if args.list {
        list(&args, &trials, &events);
    }
    let judged = Arc::new(Mutex::new(Vec::<(usize, Judged)>::new()));
    // Ordinary trials share this lock; exclusive trials take it alone.
    let turn = Arc::new(RwLock::new(()));
    let required = std::env::var_os("COURSE_REQUIRE_PYTHON").is_some();
    let mut last_reason = None;
    let tests = trials
        .into_iter()
        .enumerate()
        .map(|(position, trial)| {
            let judged = Arc::clone(&judged);
            let turn = Arc::clone(&turn);
            let events = Arc::clone(&events);
            let name = trial.id.to_string();
            let ignored = trial.not_run.is_some() && !required;
            if ignored && !args.list {
                let judged = &judged;
                report_not_run(
                    &args,
                    &trial,
                    position,
                    judged,
                    &events,
                    &mut last_reason,
                );
            }
            libtest_mimic::Trial::test(name, move || {
                let result = run_one(&trial, &turn);
                events.write(&Event::Judged(result.clone()));
                let passed = result.verdict.passed();
                let report = result.report.clone();
                let mut all = judged.lock().unwrap_or_else(|e| e.into_inner());
                all.push((position, result));
                if passed { Ok(()) } else { Err(report.into()) }
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    reap::adopt_orphans();
    reap::kill_runs_on_interrupt();
    let conclusion = libtest_mimic::run(&args, tests);
    reap::kill_orphans();
    if !args.list {
        let mut judged = judged.lock().unwrap_or_else(|e| e.into_inner());
        judged.sort_by_key(|(position, _)| *position);
        let scores: Vec<Scored<'_>> = judged
            .iter()
            .map(|(_, j)| Scored {
                id: &j.id,
                points: j.points,
                passed: j.verdict.passed(),
            })
            .collect();
        if !scores.is_empty() {
            print!("\n{}", score_table(&scores, &[]));
        }
    }
    conclusion.exit_code()
}

/// With `--list`: the trials the filter selects, as events.
fn list(args: &libtest_mimic::Arguments, trials: &[Trial], events: &Events) {
    for trial in trials {
        let probe = libtest_mimic::Trial::test(trial.id.to_string(), || Ok(()));
        if !args.is_filtered_out(&probe) {
            events.write(&Event::Listed {
                id: trial.id.clone(),
                points: trial.points,
            });
        }
    }
}

/// A trial this machine cannot run, which libtest will not call: judged
/// NOT-RUN here, unless the filter leaves it out. Its reason goes to
/// standard error once, not once per trial.
fn report_not_run(
    args: &libtest_mimic::Arguments,
    trial: &Trial,
    position: usize,
    judged: &Mutex<Vec<(usize, Judged)>>,
    events: &Events,
    last_reason: &mut Option<String>,
) {
    let probe = libtest_mimic::Trial::test(trial.id.to_string(), || Ok(()));
    if args.is_filtered_out(&probe) {
        return;
    }
    let result = not_run(trial, trial.not_run.clone().unwrap_or_default());
    if *last_reason != trial.not_run {
        eprintln!("{} and the trials after it: {}", trial.id, result.report);
        last_reason.clone_from(&trial.not_run);
    }
    events.write(&Event::Judged(result.clone()));
    let mut all = judged.lock().unwrap_or_else(|e| e.into_inner());
    all.push((position, result));
}

/// The judgement of a trial that did not run.
fn not_run(trial: &Trial, why: String) -> Judged {
    Judged {
        id: trial.id.clone(),
        points: trial.points,
        report: format!("NOT-RUN: {why}"),
        verdict: Verdict::NotRun(why),
        duration_ms: 0,
    }
}

/// Runs one trial in its turn (alone if it is exclusive) and judges it.
fn run_one(trial: &Trial, turn: &RwLock<()>) -> Judged {
    if let Some(why) = &trial.not_run {
        return not_run(trial, why.clone());
    }
    let started = Instant::now();
    let outcome = if trial.exclusive {
        let _alone = turn.write();
        judge::run_trial(trial)
    } else {
        let _shared = turn.read();
        judge::run_trial(trial)
    };
    let report = if outcome.verdict.passed() {
        String::new()
    } else {
        outcome.report()
    };
    Judged {
        id: trial.id.clone(),
        points: trial.points,
        verdict: outcome.verdict,
        report,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}
