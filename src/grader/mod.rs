//! The grader: runs graded trials, each in a child process of its own.
//!
//! A graded test binary (`exercises/tests/graded.rs`, `harness = false`)
//! hands its [`Trial`]s to [`main`]. The parent side is libtest-mimic, so
//! filters, `--list` and `--test-threads` work as in any `cargo test`. For
//! each trial the parent re-executes its own binary with the trial's id, a
//! fresh nonce and the path of a record file in the environment; the child
//! runs that one trial and writes `PASS <nonce>` (or `FAIL <nonce> <why>`) to
//! the record file (see [`events`] for what `course grade` reads). Learner code cannot hang, crash or fool the parent:
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
//!   learner code is reported as EXITED-EARLY, not as a pass;
//! - a `todo!()` reached on any thread ends the trial at once as TODO.
//!
//! The threat model is a learner's mistakes, not an attacker: code that
//! wants to cheat can edit the tests themselves.

//!
//! The parts, by role: [`Trial`] and [`main`] here; `child` (the trial's
//! side), `suite` (the parent: libtest-mimic, the score table), `judge`
//! (one trial's run and verdict), [`crate::reap`] (finding and killing
//! what a trial left, shared with the Run button), [`alloc`] (live bytes, for
//! leak checks), `task` (a trial's own threads as `/proc` sees them, and
//! freezing one; Linux only), `spawn_limit` (a process in which only a few
//! new threads can start, or none; Linux only), [`stack`] (a raised default
//! stack for new threads), [`fault_hold`] (a thread held at its access to
//! memory the trial protects, until the trial lets it go; Linux only),
//! [`events`], [`score`],
//! [`TrialId`] and [`Verdict`].

pub mod alloc;
mod child;
pub mod events;
#[cfg(target_os = "linux")]
pub mod fault_hold;
mod id;
mod judge;
pub mod score;
#[cfg(target_os = "linux")]
pub mod spawn_limit;
pub mod stack;
mod suite;
#[cfg(target_os = "linux")]
pub mod task;
pub mod traits;
mod verdict;

use std::process::ExitCode;
use std::time::Duration;

pub use child::run_child_if_requested;
pub use events::ENV_EVENTS;
pub use id::TrialId;
pub use judge::run_trial;
pub use verdict::{Outcome, Verdict};

// The tag in the environment of the trial and everything it starts: the
// parent finds escaped processes by it. Unlike the nonce, it is no secret.
use crate::reap::ENV_TAG;

const ENV_TRIAL: &str = "COURSE_GRADER_TRIAL";
const ENV_NONCE: &str = "COURSE_GRADER_NONCE";
const ENV_RECORD: &str = "COURSE_GRADER_RECORD";
/// The suite's pid, in the trial's environment: a trial whose suite is
/// gone stops at once.
const ENV_PARENT: &str = "COURSE_GRADER_PARENT";

/// A trial that does not say otherwise gets this long before TIMEOUT.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A trial may write this much to stdout and stderr together.
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// A trial's processes may each map this much private writable memory
/// (see [`crate::spawn::MEMORY_LIMIT`]).
pub const MEMORY_LIMIT: u64 = crate::spawn::MEMORY_LIMIT;

/// One graded check: an id such as `ch01::parallel_sum::uses_every_thread`,
/// the points it is worth, and the function that panics when it fails.
#[derive(Debug, Clone)]
pub struct Trial {
    id: TrialId,
    points: u32,
    timeout: Duration,
    exclusive: bool,
    on_timeout: Option<&'static str>,
    not_run: Option<String>,
    body: fn(),
}

impl Trial {
    /// A trial worth `points`, run with [`DEFAULT_TIMEOUT`].
    ///
    /// # Panics
    ///
    /// If `id` is not `chapter::exercise::behaviour`: a suite with a
    /// malformed id must not run at all.
    pub fn new(id: impl AsRef<str>, points: u32, body: fn()) -> Self {
        let id =
            TrialId::parse(id.as_ref()).unwrap_or_else(|why| panic!("{why}"));
        Trial {
            id,
            points,
            timeout: DEFAULT_TIMEOUT,
            exclusive: false,
            on_timeout: None,
            not_run: None,
            body,
        }
    }

    /// A trial this machine cannot run, and what to install so that it can
    /// ("no shared libpython; install libpython3.11-dev"). It is reported
    /// as NOT-RUN with that reason and earns nothing; libtest counts it as
    /// ignored, so the suite still passes, unless `COURSE_REQUIRE_PYTHON`
    /// is set (as `.ci/run` sets it), which makes it a failure.
    ///
    /// # Panics
    ///
    /// As [`Trial::new`], on a malformed id.
    pub fn not_run(
        id: impl AsRef<str>,
        points: u32,
        why: impl Into<String>,
    ) -> Self {
        let mut trial = Trial::new(id, points, || {});
        trial.not_run = Some(why.into());
        trial
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

    /// The trial's id.
    pub fn id(&self) -> &TrialId {
        &self.id
    }
}

/// Runs the graded trials: as the parent, the whole suite with a score
/// table; as a re-executed child, the single trial it was started for.
pub fn main(trials: Vec<Trial>) -> ExitCode {
    if let Some(code) = run_child_if_requested(&trials) {
        return code;
    }
    suite::run_suite(trials)
}
