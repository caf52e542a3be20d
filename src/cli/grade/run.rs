//! Running the built suite: list first, so the progress bar knows its
//! length, then follow the events file as trials end.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::{Fatal, Judged, Options, Package};
use crate::grader::events::{self, Event};
use crate::grader::{TrialId, Verdict};

/// The suite binary, run from the package's folder as `cargo test` would,
/// with its output in a log file.
struct Running<'a> {
    root: &'a Path,
    package: Package,
    suite: super::Suite,
    binary: &'a Path,
    selection: Option<&'a str>,
    log: PathBuf,
}

impl Running<'_> {
    fn start(&self, events: &Path, list: bool) -> Result<Child, Fatal> {
        let cannot = |e: std::io::Error| {
            Fatal(format!("cannot write {}: {e}", self.log.display()))
        };
        let output = fs::File::create(&self.log).map_err(cannot)?;
        let errors = output.try_clone().map_err(cannot)?;
        let mut command = Command::new(self.binary);
        if self.suite == super::Suite::Loom {
            // The bound .ci/loom uses: two preemptions per thread explore
            // the orderings the models are about in seconds.
            command.env("LOOM_MAX_PREEMPTIONS", "2");
        }
        command
            .current_dir(self.root.join(self.package.name()))
            .env(crate::grader::ENV_EVENTS, events)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors);
        if list {
            command.arg("--list");
        }
        if let Some(selection) = self.selection {
            command.arg(selection);
        }
        command.spawn().map_err(|error| {
            Fatal(format!("cannot run {}: {error}", self.binary.display()))
        })
    }

    /// The last lines the suite printed.
    fn last_words(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n  ")
    }
}

/// Runs the built suite; the verdicts in the suite's order.
pub(super) fn run_suite(
    root: &Path,
    (package, suite): (Package, super::Suite),
    binary: &Path,
    selection: Option<&str>,
    options: Options,
) -> Result<Vec<Judged>, Fatal> {
    let scratch = tempfile::tempdir().map_err(|error| {
        Fatal(format!("cannot make a temporary dir: {error}"))
    })?;
    let suite = Running {
        root,
        package,
        suite,
        binary,
        selection,
        log: scratch.path().join("suite.log"),
    };
    let listed = list(&suite, &scratch.path().join("listed.jsonl"))?;
    let bar = progress_bar(options, listed.len());
    let events = scratch.path().join("judged.jsonl");
    let mut child = suite.start(&events, false)?;
    // The suite appends a line per trial; follow the file until it exits.
    let mut seen = 0;
    loop {
        let finished = child
            .try_wait()
            .map_err(|error| Fatal(format!("lost the suite: {error}")))?;
        let judged = judged_in(&events);
        for trial in &judged[seen..] {
            let mark = match &trial.verdict {
                Verdict::Pass => "ok",
                other => other.label(),
            };
            bar.set_message(format!("{} {mark}", trial.id));
            bar.inc(1);
        }
        seen = judged.len();
        if let Some(status) = finished {
            bar.finish_and_clear();
            return Ok(in_listed_order(judged, &listed, status, &suite));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The trials the selection names, as `--list` reports them.
fn list(
    suite: &Running<'_>,
    file: &Path,
) -> Result<Vec<(TrialId, u32)>, Fatal> {
    let status = suite.start(file, true)?.wait();
    let listed: Vec<(TrialId, u32)> = events::read(file)
        .into_iter()
        .filter_map(|event| match event {
            Event::Listed { id, points } => Some((id, points)),
            Event::Judged(_) => None,
        })
        .collect();
    if !status.is_ok_and(|status| status.success()) {
        return Err(Fatal(format!("{} --list failed", suite.binary.display())));
    }
    if listed.is_empty() {
        return Err(Fatal(format!(
            "no trial matches {:?}; `cargo test -p exercises -- --list` \
             lists them",
            suite.selection.unwrap_or("")
        )));
    }
    Ok(listed)
}

fn progress_bar(options: Options, trials: usize) -> ProgressBar {
    if !options.interactive {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(trials as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} trials  {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn judged_in(file: &Path) -> Vec<Judged> {
    events::read(file)
        .into_iter()
        .filter_map(|event| match event {
            Event::Judged(judged) => Some(judged),
            Event::Listed { .. } => None,
        })
        .collect()
}

/// Trials finish in any order; report them in the suite's. A suite that
/// died (it should not) leaves trials unjudged: they count as not run,
/// never as missing.
fn in_listed_order(
    mut judged: Vec<Judged>,
    listed: &[(TrialId, u32)],
    status: ExitStatus,
    suite: &Running<'_>,
) -> Vec<Judged> {
    let order: BTreeMap<&TrialId, usize> = listed
        .iter()
        .enumerate()
        .map(|(at, (id, _))| (id, at))
        .collect();
    for (id, points) in listed {
        if !judged.iter().any(|j| j.id == *id) {
            let why = format!(
                "the suite stopped ({status}) before this trial ran; its \
                 last words:\n  {}",
                suite.last_words()
            );
            judged.push(Judged {
                id: id.clone(),
                points: *points,
                report: format!("NOT-RUN: {why}"),
                verdict: Verdict::NotRun(why),
                duration_ms: 0,
            });
        }
    }
    judged.sort_by_key(|trial| order.get(&trial.id).copied());
    judged
}
