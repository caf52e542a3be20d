//! The grader: runs graded trials, each in a child process of its own.
//!
//! A graded test binary (`exercises/tests/graded.rs`, `harness = false`)
//! hands its [`Trial`]s to [`main`]. The parent side is libtest-mimic, so
//! filters, `--list` and `--test-threads` work as in any `cargo test`. For
//! each trial the parent re-executes its own binary with the trial's id, a
//! fresh nonce and the path of a record file in the environment; the child
//! runs that one trial and writes `PASS <nonce>` (or `FAIL <nonce> <why>`) to
//! the record file. Learner code cannot hang, crash or fool the parent:
//!
//! - the child runs in a process group of its own, so a timeout kills every
//!   process the learner started, grandchildren included;
//! - stdin is `/dev/null`, stdout and stderr are drained concurrently and
//!   capped, and the parent never echoes them unprefixed;
//! - every process the trial starts carries a random tag in its
//!   environment, so one that leaves the group (`setsid`, a double fork)
//!   is still found and killed;
//! - the child runs under resource limits ([`MEMORY_LIMIT`], no core
//!   files), so a thread bomb or a huge allocation fails in the trial
//!   instead of exhausting the machine;
//! - a pass needs exit status 0 *and* the record, so `process::exit(0)` in
//!   learner code is reported as EXITED-EARLY, not as a pass.
//!
//! The threat model is a learner's mistakes, not an attacker: code that
//! wants to cheat can edit the tests themselves.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use wait_timeout::ChildExt as _;

const ENV_TRIAL: &str = "COURSE_GRADER_TRIAL";
const ENV_NONCE: &str = "COURSE_GRADER_NONCE";
const ENV_RECORD: &str = "COURSE_GRADER_RECORD";
/// Set by `course grade`: a file the suite appends one JSON line to per
/// trial (see [`Events`]).
pub const ENV_EVENTS: &str = "COURSE_GRADER_EVENTS";
/// Stays in the environment of the trial and everything it starts; the
/// parent finds escaped processes by it. Unlike the nonce, it is no secret.
const ENV_TAG: &str = "COURSE_GRADER_TAG";

/// The suite's pid, in the trial's environment: a trial whose suite is
/// gone stops at once.
const ENV_PARENT: &str = "COURSE_GRADER_PARENT";

/// The trials running now, as (process group, tag): what a Ctrl-C must
/// kill before the suite exits.
static LIVE: Mutex<Vec<(Pid, String)>> = Mutex::new(Vec::new());

/// Where the trial's own panic happened, set by the child's panic hook.
static FAILED_AT: Mutex<Option<String>> = Mutex::new(None);

/// A trial that does not say otherwise gets this long before TIMEOUT.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A trial may write this much to stdout and stderr together.
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// A trial's processes may each map this much private writable memory
/// (`RLIMIT_DATA`: heap and thread stacks). Thread stacks take 2 MiB each,
/// so it also caps a trial at about two thousand threads.
pub const MEMORY_LIMIT: u64 = 4 << 30;

/// How much of a failed trial's output the report shows.
const SHOWN_LINES: usize = 12;

/// Longer output lines are cut to this many characters in the report.
const SHOWN_WIDTH: usize = 160;

/// One graded check: an id such as `ch01::parallel_sum::uses_every_thread`,
/// the points it is worth, and the function that panics when it fails.
#[derive(Debug, Clone)]
pub struct Trial {
    id: String,
    points: u32,
    timeout: Duration,
    exclusive: bool,
    on_timeout: Option<&'static str>,
    body: fn(),
}

impl Trial {
    /// A trial worth `points`, run with [`DEFAULT_TIMEOUT`].
    pub fn new(id: impl Into<String>, points: u32, body: fn()) -> Self {
        Trial {
            id: id.into(),
            points,
            timeout: DEFAULT_TIMEOUT,
            exclusive: false,
            on_timeout: None,
            body,
        }
    }

    /// Gives the trial a different deadline. The deadline only detects hangs;
    /// it is never a performance requirement.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs the trial while no other trial runs (for timing-sensitive checks).
    pub fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }

    /// Says what a timeout means for this trial, in the learner's terms:
    /// "did not run concurrently (timed out waiting at the barrier)".
    pub fn on_timeout(mut self, explanation: &'static str) -> Self {
        self.on_timeout = Some(explanation);
        self
    }

    /// The trial's id, `chapter::exercise::behaviour`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The points the trial is worth.
    pub fn points(&self) -> u32 {
        self.points
    }
}

/// How a trial ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exit status 0 and the nonce'd pass record.
    Pass,
    /// The trial's checks failed; the message says which and why.
    Fail(String),
    /// Still running at the deadline; the whole process group was killed.
    Timeout(String),
    /// Killed by a signal (abort, segfault, stack overflow).
    Crash(String),
    /// Exited without a record, e.g. `process::exit(0)` in learner code.
    ExitedEarly(String),
    /// Wrote more than [`OUTPUT_LIMIT`] bytes; killed.
    OutputLimit(String),
}

impl Verdict {
    /// The verdict's name as the report prints it: `PASS`, `TIMEOUT`, ...
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail(_) => "FAIL",
            Verdict::Timeout(_) => "TIMEOUT",
            Verdict::Crash(_) => "CRASH",
            Verdict::ExitedEarly(_) => "EXITED-EARLY",
            Verdict::OutputLimit(_) => "OUTPUT-LIMIT",
        }
    }

    /// Why the trial did not pass, in one sentence; empty for a pass.
    pub fn reason(&self) -> &str {
        match self {
            Verdict::Pass => "",
            Verdict::Fail(why)
            | Verdict::Timeout(why)
            | Verdict::Crash(why)
            | Verdict::ExitedEarly(why)
            | Verdict::OutputLimit(why) => why,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass => f.write_str("PASS"),
            other => write!(f, "{}: {}", other.label(), other.reason()),
        }
    }
}

/// What the parent saw of one trial.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// Everything the trial wrote to stdout, up to the limit.
    pub stdout: String,
    /// Everything the trial wrote to stderr, up to the limit.
    pub stderr: String,
}

impl Outcome {
    /// The one-line verdict and the tail of the output, each output line
    /// prefixed with `|` so that nothing the trial printed can pass for a
    /// line of the grader's own (such as a fake `test result: ok`).
    pub fn report(&self) -> String {
        let mut report = self.verdict.to_string();
        for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)]
        {
            let lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                continue;
            }
            let skipped = lines.len().saturating_sub(SHOWN_LINES);
            report.push_str(&format!("\n  {name} (last lines):"));
            if skipped > 0 {
                report.push_str(&format!("\n    | ... {skipped} more lines"));
            }
            for line in &lines[skipped..] {
                report.push_str("\n    | ");
                match line.char_indices().nth(SHOWN_WIDTH) {
                    Some((cut, _)) => {
                        report.push_str(&line[..cut]);
                        report.push_str(" ...");
                    }
                    None => report.push_str(line),
                }
            }
        }
        report
    }
}

/// Runs the graded trials: as the parent, the whole suite with a score
/// table; as a re-executed child, the single trial it was started for.
pub fn main(trials: Vec<Trial>) -> ExitCode {
    if let Some(code) = run_child_if_requested(&trials) {
        return code;
    }
    run_suite(trials)
}

/// If this process is a trial child, runs its trial and returns the exit
/// code; otherwise returns `None`. Call it first thing in `main`, before
/// any thread exists.
pub fn run_child_if_requested(trials: &[Trial]) -> Option<ExitCode> {
    let id = std::env::var(ENV_TRIAL).ok()?;
    let nonce = std::env::var(ENV_NONCE).unwrap_or_default();
    let record = PathBuf::from(std::env::var_os(ENV_RECORD)?);
    // SAFETY: called at the start of `main`, before this process has
    // started any thread, so nothing can read the environment concurrently.
    // Removing the variables keeps them away from learner code and from the
    // processes it starts.
    unsafe {
        std::env::remove_var(ENV_TRIAL);
        std::env::remove_var(ENV_NONCE);
        std::env::remove_var(ENV_RECORD);
        std::env::remove_var(ENV_PARENT);
    }
    let Some(trial) = trials.iter().find(|trial| trial.id == id) else {
        eprintln!("grader: no trial named {id}");
        return Some(ExitCode::from(2));
    };
    if let Err(error) = limit_resources() {
        eprintln!("grader: cannot set resource limits: {error}");
        return Some(ExitCode::from(2));
    }
    if !die_with_the_suite() {
        return Some(ExitCode::from(2));
    }
    // The trial's own failure is reported in the record, with where it
    // happened; printing it to stderr as well would only repeat it. Panics
    // on other threads (the learner's workers) are printed as usual.
    let default_hook = panic::take_hook();
    let trial_thread = thread::current().id();
    panic::set_hook(Box::new(move |info| {
        if thread::current().id() == trial_thread {
            // A place inside the standard library (`/rustc/<hash>/...`)
            // means nothing to a learner; their own line is in the message.
            *FAILED_AT.lock().unwrap_or_else(|e| e.into_inner()) = info
                .location()
                .filter(|at| !at.file().starts_with("/rustc/"))
                .map(|at| format!("{}:{}", at.file(), at.line()));
        } else {
            default_hook(info);
        }
    }));
    let result = panic::catch_unwind(AssertUnwindSafe(trial.body));
    let (line, code) = match result {
        Ok(()) => (format!("PASS {nonce}\n"), ExitCode::SUCCESS),
        Err(payload) => {
            let mut message = panic_message(payload.as_ref());
            let at = FAILED_AT.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(at) = at {
                message.push_str(&format!(" (at {at})"));
            }
            let message = message.replace('\n', "\n  ");
            (format!("FAIL {nonce} {message}\n"), ExitCode::FAILURE)
        }
    };
    // The record is written last, so a trial that dies before this point
    // has no record and cannot be counted as a pass.
    if let Err(error) = fs::write(&record, line) {
        eprintln!("grader: cannot write {}: {error}", record.display());
        return Some(ExitCode::from(2));
    }
    Some(code)
}

/// Asks the kernel to kill this trial if the suite dies (Ctrl-C, a crash),
/// and checks the suite was not already gone. `false` if it was.
#[cfg(target_os = "linux")]
fn die_with_the_suite() -> bool {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let parent = std::env::var(ENV_PARENT).ok();
    parent.is_none_or(|pid| pid == nix::unistd::getppid().to_string())
}

#[cfg(not(target_os = "linux"))]
fn die_with_the_suite() -> bool {
    true
}

/// Limits what this trial process, and every process it starts, may take:
/// memory (and so threads) and core files.
fn limit_resources() -> nix::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_DATA)?;
    let data = MEMORY_LIMIT.min(hard);
    setrlimit(Resource::RLIMIT_DATA, data, data)?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "the trial panicked with a non-text payload".to_string()
    }
}

/// One line of the score table.
#[derive(Debug, Clone)]
struct Scored {
    /// Where the trial stands in the suite's list.
    position: usize,
    id: String,
    points: u32,
    passed: bool,
}

/// The machine-readable side of a suite run, for `course grade`: with
/// `--list`, one `{"event":"listed","id","points"}` line per trial the
/// filter selects; otherwise one `{"event":"judged","id","points",
/// "verdict","reason","duration_ms"}` line as each trial ends.
#[derive(Debug)]
struct Events(Option<Mutex<fs::File>>);

impl Events {
    fn from_env() -> Self {
        let file = std::env::var_os(ENV_EVENTS).and_then(|path| {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
        });
        Events(file.map(Mutex::new))
    }

    fn write(&self, event: serde_json::Value) {
        use std::io::Write as _;
        if let Some(file) = &self.0 {
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            // One write per line, so that a reader never sees half of one.
            let _ = file.write_all(format!("{event}\n").as_bytes());
        }
    }
}

fn run_suite(trials: Vec<Trial>) -> ExitCode {
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
        for trial in &trials {
            let probe = libtest_mimic::Trial::test(trial.id.clone(), || Ok(()));
            if !args.is_filtered_out(&probe) {
                events.write(serde_json::json!({
                    "event": "listed",
                    "id": trial.id,
                    "points": trial.points,
                }));
            }
        }
    }
    let scores = Arc::new(Mutex::new(Vec::<Scored>::new()));
    // Ordinary trials share this lock; exclusive trials take it alone.
    let turn = Arc::new(RwLock::new(()));
    let tests = trials
        .into_iter()
        .enumerate()
        .map(|(position, trial)| {
            let scores = Arc::clone(&scores);
            let turn = Arc::clone(&turn);
            let events = Arc::clone(&events);
            let name = trial.id.clone();
            libtest_mimic::Trial::test(name, move || {
                let started = Instant::now();
                let outcome = if trial.exclusive {
                    let _alone = turn.write();
                    run_trial(&trial)
                } else {
                    let _shared = turn.read();
                    run_trial(&trial)
                };
                let passed = outcome.verdict == Verdict::Pass;
                events.write(serde_json::json!({
                    "event": "judged",
                    "id": trial.id,
                    "points": trial.points,
                    "verdict": outcome.verdict.label(),
                    "reason": outcome.verdict.reason(),
                    "duration_ms": started.elapsed().as_millis() as u64,
                    "report": if passed { String::new() } else { outcome.report() },
                }));
                scores.lock().unwrap().push(Scored {
                    position,
                    id: trial.id.clone(),
                    points: trial.points,
                    passed,
                });
                if passed {
                    Ok(())
                } else {
                    Err(outcome.report().into())
                }
            })
        })
        .collect();
    let listing = args.list;
    adopt_orphans();
    kill_trials_on_interrupt();
    let conclusion = libtest_mimic::run(&args, tests);
    kill_orphans();
    if !listing {
        let mut scores = scores.lock().unwrap();
        scores.sort_by_key(|scored| scored.position);
        print!("{}", score_table(&scores));
    }
    conclusion.exit_code()
}

/// Makes the suite the parent of every orphan its trials leave (a daemon
/// whose middle process exited), instead of init: so [`kill_orphans`] can
/// find even one that left the group and dropped the tag.
fn adopt_orphans() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// Kills and reaps every process still adopted by the suite. Called when
/// no trial runs any more, so every child left is an orphan of one.
fn kill_orphans() {
    for pid in children_of(nix::unistd::getpid()) {
        let _ = signal::kill(pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    }
}

/// The processes whose parent is `parent` (zombies included).
fn children_of(parent: Pid) -> Vec<Pid> {
    processes()
        .into_iter()
        .filter(|process| process.ppid == parent)
        .map(|process| process.pid)
        .collect()
}

/// One line of the kernel's process table, as `/proc/<pid>/stat` has it.
#[derive(Debug)]
struct Process {
    pid: Pid,
    /// `R`, `S`, `Z` (a zombie: dead, not yet reaped), ...
    state: String,
    ppid: Pid,
    pgrp: Pid,
}

/// Every process the kernel lists in `/proc` (none where there is none).
fn processes() -> Vec<Process> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            // Fields after the parenthesised command name: state, ppid, pgrp.
            let after = stat.rsplit_once(')')?.1;
            let mut fields = after.split_whitespace();
            let state = fields.next()?.to_string();
            let mut number = || fields.next()?.parse().ok().map(Pid::from_raw);
            let (ppid, pgrp) = (number()?, number()?);
            Some(Process {
                pid: Pid::from_raw(pid),
                state,
                ppid,
                pgrp,
            })
        })
        .collect()
}

/// On Ctrl-C (or SIGTERM, SIGHUP), kills every running trial and what it
/// started, then exits: the trials run in process groups of their own, so
/// the terminal's Ctrl-C does not reach them.
fn kill_trials_on_interrupt() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
    else {
        return;
    };
    thread::spawn(move || {
        if let Some(number) = signals.forever().next() {
            let live = LIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
            for (group, tag) in live {
                kill_all(group, &tag);
            }
            kill_orphans();
            std::process::exit(128 + number);
        }
    });
}

/// Points earned, points possible, tests passed, tests: of one exercise.
type Tally = [u32; 4];

/// The table printed after `test result:`: points per chapter and
/// exercise, in the order the suite lists them, then one machine-readable
/// `score:` line. `scores` must be in that order too.
fn score_table(scores: &[Scored]) -> String {
    if scores.is_empty() {
        return String::new();
    }
    let mut table: Vec<(&str, Vec<(&str, Tally)>)> = Vec::new();
    for scored in scores {
        let mut parts = scored.id.splitn(3, "::");
        let chapter = parts.next().unwrap_or("");
        let exercise = parts.next().unwrap_or("");
        if table.last().is_none_or(|(c, _)| *c != chapter) {
            table.push((chapter, Vec::new()));
        }
        let exercises = &mut table.last_mut().unwrap().1;
        if exercises.last().is_none_or(|(e, _)| *e != exercise) {
            exercises.push((exercise, [0; 4]));
        }
        let cell = &mut exercises.last_mut().unwrap().1;
        cell[0] += if scored.passed { scored.points } else { 0 };
        cell[1] += scored.points;
        cell[2] += u32::from(scored.passed);
        cell[3] += 1;
    }
    let mut out = String::from("\nscore by chapter and exercise\n");
    let (mut earned, mut possible) = (0, 0);
    for (chapter, exercises) in &table {
        let chapter_earned: u32 = exercises.iter().map(|(_, c)| c[0]).sum();
        let chapter_possible: u32 = exercises.iter().map(|(_, c)| c[1]).sum();
        out.push_str(&format!(
            "  {chapter:<28} {chapter_earned:>3}/{chapter_possible:<3} points\n"
        ));
        for (exercise, [got, of, passed, tests]) in exercises {
            let mark = if got == of { "  done" } else { "" };
            out.push_str(&format!(
                "    {exercise:<26} {got:>3}/{of:<3} points  \
                 ({passed} of {tests} tests passed){mark}\n"
            ));
        }
        earned += chapter_earned;
        possible += chapter_possible;
    }
    let percent = earned * 100 / possible.max(1);
    out.push_str(&format!(
        "score: {earned}/{possible} points ({percent} %)\n"
    ));
    out
}

/// Runs one trial in a child process (this very binary, re-executed) and
/// judges how it ended. Never hangs: the child and everything it started
/// are killed at the trial's deadline.
pub fn run_trial(trial: &Trial) -> Outcome {
    match spawn_and_judge(trial) {
        Ok(outcome) => outcome,
        Err(error) => Outcome {
            verdict: Verdict::Fail(format!(
                "the grader could not run this trial: {error}"
            )),
            stdout: String::new(),
            stderr: String::new(),
        },
    }
}

fn spawn_and_judge(trial: &Trial) -> io::Result<Outcome> {
    let nonce = fresh_nonce();
    let tag = fresh_nonce();
    let record = std::env::temp_dir()
        .join(format!("course-grader-{}-{nonce}", std::process::id()));
    let _cleanup = RemoveOnDrop(record.clone());
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command
        .env(ENV_TRIAL, &trial.id)
        .env(ENV_NONCE, &nonce)
        .env(ENV_RECORD, &record)
        .env(ENV_TAG, &tag)
        .env(ENV_PARENT, std::process::id().to_string())
        // Not the suite's events file: learner code must not write there.
        .env_remove(ENV_EVENTS)
        // Backtraces only when the learner asks for them.
        .env(
            "RUST_BACKTRACE",
            std::env::var("RUST_BACKTRACE").unwrap_or_else(|_| "0".into()),
        )
        // Trials about stack sizes assume the default stack.
        .env_remove("RUST_MIN_STACK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn()?;
    let group = Pid::from_raw(child.id() as i32);
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((group, tag.clone()));
    let outcome = judge(trial, &mut child, group, &tag, &record, &nonce);
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(live, _)| *live != group);
    outcome
}

/// Waits for a started trial, kills whatever it leaves, and judges it.
fn judge(
    trial: &Trial,
    child: &mut Child,
    group: Pid,
    tag: &str,
    record: &Path,
    nonce: &str,
) -> io::Result<Outcome> {
    let budget = Arc::new(OutputBudget::new(OUTPUT_LIMIT));
    let (done_tx, done_rx) = mpsc::channel();
    let drains = [
        drain(child.stdout.take(), Arc::clone(&budget), done_tx.clone()),
        drain(child.stderr.take(), Arc::clone(&budget), done_tx),
    ];

    let ended = match wait_until(child, trial.timeout, &budget) {
        Ok(ended) => ended,
        Err(error) => {
            let _ = signal::killpg(group, Signal::SIGKILL);
            let _ = child.wait();
            return Err(error);
        }
    };
    let leftovers = match ended {
        Ended::Exited(_) => still_running(group, tag),
        _ => 0,
    };
    // Whatever happened, nothing the trial started may outlive it.
    let _ = signal::killpg(group, Signal::SIGKILL);
    if !matches!(ended, Ended::Exited(_)) {
        let _ = child.wait();
    }
    kill_all(group, tag);
    // Both pipes reach end of file once every holder is dead. A process
    // that escaped the group could hold them open: stop waiting after a
    // while rather than hang the grader.
    let drain_deadline = Instant::now() + Duration::from_secs(2);
    for _ in 0..2 {
        let left = drain_deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let [stdout, stderr] = drains.map(|captured| {
        String::from_utf8_lossy(&captured.lock().unwrap()).into_owned()
    });

    // A fast writer can finish before the limit is noticed: judge the
    // output by what was counted, not by when the child ended.
    let ended = match ended {
        Ended::Exited(_) if budget.exceeded() => Ended::OutputLimit,
        other => other,
    };
    let verdict = match ended {
        Ended::TimedOut => Verdict::Timeout(match trial.on_timeout {
            Some(why) => format!(
                "{why} (still running after {} s; killed)",
                trial.timeout.as_secs_f32()
            ),
            None => format!(
                "still running after {} s; killed (a deadlock, or a \
                 loop that never ends?)",
                trial.timeout.as_secs_f32()
            ),
        }),
        Ended::OutputLimit => Verdict::OutputLimit(format!(
            "wrote more than {} KiB to stdout and stderr; killed",
            OUTPUT_LIMIT / 1024
        )),
        Ended::Exited(status) => {
            judge_exit(status, &read_record(record), nonce, &stderr)
        }
    };
    let verdict = match verdict {
        // `handle.join().unwrap()` on a panicked thread says only
        // `Any { .. }`: add what the thread itself said.
        Verdict::Fail(why) if why.contains("Any { .. }") => {
            match thread_panic(&stderr) {
                Some(said) => {
                    Verdict::Fail(format!("{why} (the thread {said})"))
                }
                None => Verdict::Fail(why),
            }
        }
        Verdict::Fail(why) if why.contains("failed to spawn thread") => {
            Verdict::Fail(format!(
                "{why} (each trial may use {} GiB, which is about {} \
                 threads, and the system limits processes per user: does \
                 the code start a thread per item?)",
                MEMORY_LIMIT >> 30,
                MEMORY_LIMIT >> 21
            ))
        }
        other => other,
    };
    let verdict = match verdict {
        Verdict::Pass if leftovers > 0 => Verdict::Fail(format!(
            "the checks passed, but {leftovers} process(es) started by the \
             trial were still running when it ended (the grader killed \
             them): wait for every child you start"
        )),
        other => other,
    };
    Ok(Outcome {
        verdict,
        stdout,
        stderr,
    })
}

/// The first panic of another thread in a trial's stderr, as `'name'
/// panicked at file:line: message`.
fn thread_panic(stderr: &str) -> Option<String> {
    let mut lines = stderr.lines();
    let first = lines
        .find(|l| l.starts_with("thread '") && l.contains("panicked at"))?;
    let said = first.strip_prefix("thread ")?.trim_end_matches(':');
    let message = lines.next().unwrap_or("").trim();
    Some(format!("{said}: {message}"))
}

/// Kills a trial's process group and every process carrying its tag, and
/// waits until none is alive. SIGKILL is delivered at once but a process
/// takes a moment to die, longer on a loaded machine; one may fork while it
/// is being killed, so look again until none is left. Gives up after 5 s
/// rather than hang the grader.
fn kill_all(group: Pid, tag: &str) {
    let _ = signal::killpg(group, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive = trial_processes(group, tag);
        if alive.is_empty() || Instant::now() >= deadline {
            return;
        }
        for pid in alive {
            let _ = signal::kill(pid, Signal::SIGKILL);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// How many processes the trial left running when it ended. A process the
/// trial killed without waiting for may take a moment to die, longer on a
/// loaded machine: only those still alive after a short grace count.
fn still_running(group: Pid, tag: &str) -> usize {
    let mut alive = trial_processes(group, tag).len();
    for _ in 0..20 {
        if alive == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(5));
        alive = trial_processes(group, tag).len();
    }
    alive
}

enum Ended {
    Exited(ExitStatus),
    TimedOut,
    OutputLimit,
}

fn wait_until(
    child: &mut Child,
    timeout: Duration,
    budget: &OutputBudget,
) -> io::Result<Ended> {
    let deadline = Instant::now() + timeout;
    loop {
        if budget.exceeded() {
            return Ok(Ended::OutputLimit);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Ended::TimedOut);
        }
        let slice = left.min(Duration::from_millis(20));
        if let Some(status) = child.wait_timeout(slice)? {
            return Ok(Ended::Exited(status));
        }
    }
}

fn judge_exit(
    status: ExitStatus,
    record: &str,
    nonce: &str,
    stderr: &str,
) -> Verdict {
    use std::os::unix::process::ExitStatusExt as _;
    if let Some(number) = status.signal() {
        return Verdict::Crash(describe_signal(number, stderr));
    }
    let pass = format!("PASS {nonce}");
    let fail = format!("FAIL {nonce} ");
    if status.success() && record.trim_end() == pass {
        Verdict::Pass
    } else if let Some(message) = record.strip_prefix(&fail) {
        Verdict::Fail(message.trim_end().to_string())
    } else if status.success() {
        Verdict::ExitedEarly(
            "the process exited with status 0 before the trial finished \
             (does the code call process::exit(0)?)"
                .to_string(),
        )
    } else {
        let code = status.code().unwrap_or(-1);
        Verdict::Crash(format!(
            "the process exited with status {code} before the trial \
             finished (process::exit({code}), or a fatal error)"
        ))
    }
}

fn describe_signal(number: i32, stderr: &str) -> String {
    if let Some(line) =
        stderr.lines().find(|l| l.contains("overflowed its stack"))
    {
        return format!("stack overflow: {}", line.trim());
    }
    if let Some(line) = stderr.lines().find(|l| {
        l.starts_with("memory allocation of") && l.ends_with("failed")
    }) {
        return format!(
            "out of memory: {} (each trial may use {} GiB)",
            line.trim(),
            MEMORY_LIMIT >> 30
        );
    }
    match Signal::try_from(number) {
        Ok(Signal::SIGABRT) => {
            "the process aborted (SIGABRT): std::process::abort, a panic \
             while panicking, or a failed runtime check"
                .to_string()
        }
        Ok(Signal::SIGSEGV) => {
            "segmentation fault (SIGSEGV): invalid memory access".to_string()
        }
        Ok(Signal::SIGKILL) => "killed (SIGKILL)".to_string(),
        Ok(other) => format!("killed by signal {other}"),
        Err(_) => format!("killed by signal {number}"),
    }
}

fn read_record(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// The live processes a trial started (zombies do not count): those in its
/// process group, and those that left it but carry its tag.
#[cfg(target_os = "linux")]
fn trial_processes(group: Pid, tag: &str) -> Vec<Pid> {
    let marker = format!("{ENV_TAG}={tag}");
    let tagged = |pid: Pid| {
        fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
            env.split(|&byte| byte == 0)
                .any(|var| var == marker.as_bytes())
        })
    };
    processes()
        .into_iter()
        .filter(|p| p.state != "Z" && (p.pgrp == group || tagged(p.pid)))
        .map(|p| p.pid)
        .collect()
}

/// The live processes a trial started: only its group can be seen here.
#[cfg(not(target_os = "linux"))]
fn trial_processes(group: Pid, _tag: &str) -> Vec<Pid> {
    if signal::killpg(group, None).is_ok() {
        vec![group]
    } else {
        Vec::new()
    }
}

/// Output shared by the two drain threads, with one limit for both.
struct OutputBudget {
    used: Mutex<usize>,
    limit: usize,
}

impl OutputBudget {
    fn new(limit: usize) -> Self {
        OutputBudget {
            used: Mutex::new(0),
            limit,
        }
    }

    /// Takes up to `wanted` bytes from the budget; returns how many fit.
    fn take(&self, wanted: usize) -> usize {
        let mut used = self.used.lock().unwrap();
        let granted = wanted.min(self.limit.saturating_sub(*used));
        // Count everything, so the limit is seen as exceeded.
        *used = used.saturating_add(wanted);
        granted
    }

    fn exceeded(&self) -> bool {
        *self.used.lock().unwrap() > self.limit
    }
}

/// Reads a pipe to its end on a thread of its own, keeping what fits in
/// the budget; signals `done` at end of file.
fn drain<R: Read + Send + 'static>(
    pipe: Option<R>,
    budget: Arc<OutputBudget>,
    done: mpsc::Sender<()>,
) -> Arc<Mutex<Vec<u8>>> {
    let captured = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&captured);
    thread::spawn(move || {
        if let Some(mut pipe) = pipe {
            let mut buffer = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                let kept = budget.take(n);
                sink.lock().unwrap().extend_from_slice(&buffer[..kept]);
            }
        }
        let _ = done.send(());
    });
    captured
}

fn fresh_nonce() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    // RandomState is seeded from the OS; mixing in the time and pid makes
    // two nonces of one run differ even with the same seed.
    let mut hasher =
        std::collections::hash_map::RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_table_sums_points_per_exercise_and_chapter() {
        let scored = |id: &str, points, passed| Scored {
            position: 0,
            id: id.to_string(),
            points,
            passed,
        };
        let table = score_table(&[
            scored("ch01::sum::a", 3, true),
            scored("ch01::spawn::a", 2, true),
            scored("ch01::spawn::b", 1, false),
        ]);
        assert!(table.contains("spawn"), "{table}");
        assert!(table.contains("(1 of 2 tests passed)"), "{table}");
        assert!(table.find("sum") < table.find("spawn"), "{table}");
        assert!(table.ends_with("score: 5/6 points (83 %)\n"), "{table}");
    }

    #[test]
    fn a_record_without_the_nonce_is_not_a_pass() {
        use std::os::unix::process::ExitStatusExt as _;
        let ok = ExitStatus::from_raw(0);
        assert_eq!(judge_exit(ok, "PASS n1", "n1", ""), Verdict::Pass);
        assert!(matches!(
            judge_exit(ok, "PASS n2", "n1", ""),
            Verdict::ExitedEarly(_)
        ));
        assert!(matches!(
            judge_exit(ok, "", "n1", ""),
            Verdict::ExitedEarly(_)
        ));
        // `process::exit(1)`: a wait status of 1 << 8.
        let one = ExitStatus::from_raw(1 << 8);
        assert!(matches!(judge_exit(one, "", "n1", ""), Verdict::Crash(_)));
    }

    #[test]
    fn output_budget_is_shared_and_reports_overflow() {
        let budget = OutputBudget::new(10);
        assert_eq!(budget.take(6), 6);
        assert!(!budget.exceeded());
        assert_eq!(budget.take(6), 4);
        assert!(budget.exceeded());
    }
}
