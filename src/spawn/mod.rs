//! Running a child process with limits, the one way the course does it: in
//! a process group of its own, stdout and stderr drained at once on their
//! own threads (so a chatty child never blocks on a full pipe, the
//! deadlock chapter 2 teaches) under one output budget, a deadline, and
//! every process of the run killed at the end ([`crate::reap`]). The
//! grader, the Run button's runner, `course soak` and the tests' helpers
//! use it.
//!
//! [`run`] does it all at once. The grader needs a look between the end
//! and the kill (did the trial leave processes running?), so the steps are
//! also open: [`Running::start`], [`Running::wait`], [`Running::finish`].
//! The runner also counts a run's orphans as its own
//! ([`Running::with_orphans`]) and has a watchdog stop a run whose
//! processes together pass its [`RunLimits`] ([`Running::watched`]); what
//! each process may use alone is [`ProcessLimits`].

use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use wait_timeout::ChildExt as _;

use crate::reap::{self, ENV_TAG, Family, Live};

mod limits;

pub use limits::{MEMORY_LIMIT, Overrun, ProcessLimits, RunLimits, arenas};

/// What to do with output past a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    bytes: usize,
    per_stream: bool,
    kill: bool,
}

impl OutputLimit {
    /// Stdout and stderr together may carry `bytes`; past that the child is
    /// killed ([`Ended::OutputLimit`]). The grader's policy.
    pub fn kill_past(bytes: usize) -> Self {
        OutputLimit {
            bytes,
            per_stream: false,
            kill: true,
        }
    }

    /// Keeps the first `bytes` of each stream and reads the rest to
    /// nowhere, so a chatty child still runs to its end. The Run button's
    /// policy.
    pub fn keep_first(bytes: usize) -> Self {
        OutputLimit {
            bytes,
            per_stream: true,
            kill: false,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The child exited (or was killed by a signal it did not get from us).
    Exited(ExitStatus),
    /// Still running at the deadline; killed.
    TimedOut,
    /// Wrote more than the output budget; killed.
    OutputLimit,
    /// Its processes together went past the [`RunLimits`] it was
    /// [`Running::watched`] under; killed.
    Overran(Overrun),
}

/// What a finished run left: how it ended and what it wrote, each stream
/// cut at the budget.
#[derive(Debug, Clone)]
pub struct Captured {
    /// How it ended.
    pub ended: Ended,
    /// Its standard output, as far as the budget kept it.
    pub stdout: Vec<u8>,
    /// Its standard error, as far as the budget kept it.
    pub stderr: Vec<u8>,
    /// A process that left the group still held a pipe open after the
    /// kill, so the output may lack its end.
    pub held_open: bool,
}

impl Captured {
    /// Standard output as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The exit status, if the child exited by itself.
    pub fn status(&self) -> Option<ExitStatus> {
        match self.ended {
            Ended::Exited(status) => Some(status),
            _ => None,
        }
    }
}

/// Runs `command` to its end under a deadline and an output limit; kills
/// every process of the run at the end. Stdin is `/dev/null` unless the command
/// set it.
pub fn run(
    command: Command,
    timeout: Duration,
    output_limit: OutputLimit,
) -> io::Result<Captured> {
    let mut running = Running::start(command, output_limit)?;
    let ended = running.wait(timeout)?;
    Ok(running.finish(ended))
}

/// cargo: the one that runs us if cargo does (`CARGO`), else the one on
/// `PATH`.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// A started child whose output is being drained.
#[derive(Debug)]
pub struct Running {
    child: Child,
    family: Family,
    /// The run's [`RunLimits`], if a watchdog checks them.
    watch: Option<RunLimits>,
    /// Keeps the run among those going on until it is finished.
    _live: Live,
    budgets: [Arc<Budget>; 2],
    kill_past_limit: bool,
    drains: [Arc<Mutex<Vec<u8>>>; 2],
    done: mpsc::Receiver<()>,
}

impl Running {
    /// Starts `command` in a process group of its own, stdout and stderr
    /// piped and drained at once; stdin is `/dev/null` unless set. If the
    /// command sets [`ENV_TAG`], the processes carrying the tag are the
    /// run's too.
    pub fn start(mut command: Command, limit: OutputLimit) -> io::Result<Self> {
        use std::os::unix::process::CommandExt as _;
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        command.process_group(0);
        let tag = command
            .get_envs()
            .find(|(name, _)| *name == ENV_TAG)
            .and_then(|(_, value)| Some(value?.to_str()?.to_string()));
        let mut child = command.spawn()?;
        let group = Pid::from_raw(child.id() as i32);
        let live = Live::new(group, tag.as_deref());
        let first = Arc::new(Budget::new(limit.bytes));
        let second = if limit.per_stream {
            Arc::new(Budget::new(limit.bytes))
        } else {
            Arc::clone(&first)
        };
        let (done_tx, done) = mpsc::channel();
        let drains = [
            drain(child.stdout.take(), Arc::clone(&first), done_tx.clone()),
            drain(child.stderr.take(), Arc::clone(&second), done_tx),
        ];
        Ok(Running {
            child,
            family: Family {
                group,
                tag,
                orphans: false,
            },
            watch: None,
            _live: live,
            budgets: [first, second],
            kill_past_limit: limit.kill,
            drains,
            done,
        })
    }

    /// Whether the output passed a limit that kills.
    fn over_limit(&self) -> bool {
        self.kill_past_limit && self.budgets.iter().any(|b| b.exceeded())
    }

    /// The run's processes.
    pub fn family(&self) -> &Family {
        &self.family
    }

    /// Counts the orphans this process adopts as the run's: for a caller
    /// that is a subreaper ([`reap::adopt_orphans`]) and starts one run at
    /// a time, so that even a process that left the group and cleared its
    /// environment is found.
    pub fn with_orphans(mut self) -> Self {
        self.family.orphans = true;
        self
    }

    /// Has [`Running::wait`] check, every 10 ms, what the run's processes
    /// use together, and end the run as [`Ended::Overran`] past `limits`.
    pub fn watched(mut self, limits: RunLimits) -> Self {
        self.watch = Some(limits);
        self
    }

    /// Waits until the child exits, the deadline passes, its output passes
    /// the budget, or its processes pass the watched limits, whichever
    /// comes first. Kills nothing.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<Ended> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.over_limit() {
                return Ok(Ended::OutputLimit);
            }
            if let Some(limits) = self.watch
                && let Some(overrun) =
                    limits.exceeded_by(reap::usage(&self.family))
            {
                return Ok(Ended::Overran(overrun));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Ended::TimedOut);
            }
            let slice = left.min(Duration::from_millis(10));
            if let Some(status) = self.child.wait_timeout(slice)? {
                // A fast writer can exit before the limit is noticed:
                // judge the output by what was counted.
                if self.over_limit() {
                    return Ok(Ended::OutputLimit);
                }
                return Ok(Ended::Exited(status));
            }
        }
    }

    /// Kills the process group and the child, reaps the child, kills every other
    /// process of the run ([`reap::kill_all`]) and collects the output:
    /// the pipes reach end of file once every holder is dead, but one that
    /// escaped may hold them open, so wait at most two seconds for them.
    pub fn finish(mut self, ended: Ended) -> Captured {
        let _ = signal::killpg(self.family.group, Signal::SIGKILL);
        if !matches!(ended, Ended::Exited(_)) {
            // The child itself too: it may have moved to another group of
            // its session (`setpgid`), where the group's kill misses it
            // and a wait for it would never end.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        reap::kill_all(&self.family);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut held_open = false;
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.done.recv_timeout(left).is_err() {
                held_open = true;
                break;
            }
        }
        let [stdout, stderr] = self.drains.map(|kept| {
            std::mem::take(&mut *kept.lock().unwrap_or_else(|e| e.into_inner()))
        });
        Captured {
            ended,
            stdout,
            stderr,
            held_open,
        }
    }
}

/// Output counted across both pipes, with one limit for both.
#[derive(Debug)]
struct Budget {
    used: Mutex<usize>,
    limit: usize,
}

impl Budget {
    fn new(limit: usize) -> Self {
        Budget {
            used: Mutex::new(0),
            limit,
        }
    }

    /// Takes up to `wanted` bytes from the budget; returns how many fit.
    fn take(&self, wanted: usize) -> usize {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let granted = wanted.min(self.limit.saturating_sub(*used));
        // Count everything, so the limit is seen as exceeded.
        *used = used.saturating_add(wanted);
        granted
    }

    fn exceeded(&self) -> bool {
        *self.used.lock().unwrap_or_else(|e| e.into_inner()) > self.limit
    }
}

/// Reads a pipe to its end on a thread of its own, keeping what fits in
/// the budget and reading the rest to nowhere, so the writer never blocks;
/// signals `done` at end of file.
fn drain<R: Read + Send + 'static>(
    pipe: Option<R>,
    budget: Arc<Budget>,
    done: mpsc::Sender<()>,
) -> Arc<Mutex<Vec<u8>>> {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&kept);
    thread::spawn(move || {
        if let Some(mut pipe) = pipe {
            let mut buffer = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut buffer) {
                let fits = budget.take(n);
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buffer[..fits]);
            }
        }
        let _ = done.send(());
    });
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_shared_and_reports_overflow() {
        let budget = Budget::new(10);
        assert_eq!(budget.take(6), 6);
        assert!(!budget.exceeded());
        assert_eq!(budget.take(6), 4);
        assert!(budget.exceeded());
    }

    #[test]
    fn output_larger_than_a_pipe_does_not_block_the_child() {
        // 1 MiB on each stream: far more than a pipe holds (64 KiB).
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2; echo done",
        ]);
        let limit = OutputLimit::kill_past(4 << 20);
        let captured = run(command, Duration::from_secs(60), limit).unwrap();
        assert!(matches!(captured.ended, Ended::Exited(s) if s.success()));
        assert_eq!(captured.stdout.len(), (1 << 20) + 5);
        assert_eq!(captured.stderr.len(), 1 << 20);
    }

    #[test]
    fn a_flood_past_the_budget_is_stopped() {
        let mut command = Command::new("sh");
        command.args(["-c", "yes"]);
        let limit = OutputLimit::kill_past(1000);
        let captured = run(command, Duration::from_secs(60), limit).unwrap();
        assert_eq!(captured.ended, Ended::OutputLimit);
        assert_eq!(captured.stdout.len(), 1000);
    }

    #[test]
    fn a_chatty_child_keeps_running_past_a_keep_first_limit() {
        let mut command = Command::new("sh");
        command.args(["-c", "head -c 1000000 /dev/zero; echo finished >&2"]);
        let limit = OutputLimit::keep_first(1000);
        let captured = run(command, Duration::from_secs(60), limit).unwrap();
        assert!(matches!(captured.ended, Ended::Exited(s) if s.success()));
        assert_eq!(captured.stdout.len(), 1000);
        assert_eq!(captured.stderr_text(), "finished\n");
    }

    #[test]
    fn a_hang_is_killed_with_its_group() {
        let mut command = Command::new("sh");
        // The shell starts a grandchild that holds the pipes too.
        command.args(["-c", "sleep 300 & sleep 300"]);
        let limit = OutputLimit::kill_past(1000);
        let captured = run(command, Duration::from_millis(200), limit).unwrap();
        assert_eq!(captured.ended, Ended::TimedOut);
        assert!(!captured.held_open);
    }

    /// A shell that holds 64 MiB, under a 32 MiB limit for its run.
    #[test]
    fn a_watched_run_past_its_memory_is_stopped() {
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "x=$(head -c 67108864 /dev/zero | tr '\\0' a); sleep 60",
        ]);
        let limits = RunLimits {
            memory: 32 << 20,
            tasks: 100,
        };
        let limit = OutputLimit::kill_past(1000);
        let mut running =
            Running::start(command, limit).unwrap().watched(limits);
        let ended = running.wait(Duration::from_secs(60)).unwrap();
        let family = running.family().clone();
        running.finish(ended);
        assert!(
            matches!(ended, Ended::Overran(Overrun::Memory { .. })),
            "{ended:?}"
        );
        assert!(reap::members(&family).is_empty());
    }

    /// A shell that starts twenty sleepers, under a limit of eight tasks.
    #[test]
    fn a_watched_run_past_its_tasks_is_stopped() {
        let mut command = Command::new("sh");
        command.args(["-c", "for i in $(seq 20); do sleep 60 & done; wait"]);
        let limits = RunLimits {
            memory: 1 << 30,
            tasks: 8,
        };
        let limit = OutputLimit::kill_past(1000);
        let mut running =
            Running::start(command, limit).unwrap().watched(limits);
        let ended = running.wait(Duration::from_secs(60)).unwrap();
        running.finish(ended);
        assert!(
            matches!(ended, Ended::Overran(Overrun::Tasks { limit: 8, .. })),
            "{ended:?}"
        );
    }
}
