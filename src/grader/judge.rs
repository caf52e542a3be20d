//! The parent's side of one trial: start the child, wait for it under the
//! trial's deadline, kill whatever it leaves, and judge how it ended.

use std::fs;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use super::{
    ENV_EVENTS, ENV_NONCE, ENV_PARENT, ENV_RECORD, ENV_TAG, ENV_TRIAL,
    OUTPUT_LIMIT, Outcome, Trial, Verdict,
};
use crate::reap;
use crate::spawn::{Ended, MEMORY_LIMIT, OutputLimit, Running};

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

/// The child's command: this binary, with the trial's id, a fresh nonce,
/// its record file and its tag in the environment.
fn command(
    trial: &Trial,
    nonce: &str,
    tag: &str,
    record: &Path,
) -> std::io::Result<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .env(ENV_TRIAL, trial.id.as_str())
        .env(ENV_NONCE, nonce)
        .env(ENV_RECORD, record)
        .env(ENV_TAG, tag)
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
        .stdin(Stdio::null());
    Ok(command)
}

fn spawn_and_judge(trial: &Trial) -> std::io::Result<Outcome> {
    let nonce = fresh_nonce();
    let tag = fresh_nonce();
    let record = std::env::temp_dir()
        .join(format!("course-grader-{}-{nonce}", std::process::id()));
    let _cleanup = RemoveOnDrop(record.clone());
    let command = command(trial, &nonce, &tag, &record)?;
    let mut running =
        Running::start(command, OutputLimit::kill_past(OUTPUT_LIMIT))?;
    let ended = match running.wait(trial.timeout) {
        Ok(ended) => ended,
        Err(error) => {
            running.finish(Ended::TimedOut);
            return Err(error);
        }
    };
    let leftovers = match ended {
        Ended::Exited(_) => reap::still_running(running.family()),
        _ => 0,
    };
    // Whatever happened, nothing the trial started may outlive it.
    let captured = running.finish(ended);
    let stdout = captured.stdout_text();
    let stderr = captured.stderr_text();
    let record = fs::read_to_string(&record).unwrap_or_default();
    let verdict = match ended {
        Ended::TimedOut => timed_out(trial, &stderr),
        Ended::OutputLimit => Verdict::OutputLimit(format!(
            "wrote more than {} KiB to stdout and stderr; killed",
            OUTPUT_LIMIT / 1024
        )),
        // A trial is not watched ([`Running::watched`]): its limits are
        // per process, and the kernel's.
        Ended::Overran(overrun) => {
            Verdict::Crash(format!("its processes used {overrun}; killed"))
        }
        Ended::Exited(status) => judge_exit(status, &record, &nonce, &stderr),
    };
    let verdict = explain(verdict, &stderr);
    let verdict = match verdict {
        Verdict::Pass if leftovers > 0 => Verdict::LeftRunning(format!(
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

/// A hang; but if a thread of the code under test panicked first, the
/// panic is what happened (a lock it poisoned, a barrier it never reached,
/// a channel nobody sends on any more), and the verdict names it.
fn timed_out(trial: &Trial, stderr: &str) -> Verdict {
    let seconds = trial.timeout.as_secs_f32();
    if let Some(said) = thread_panic(stderr) {
        return Verdict::Fail(format!(
            "the thread {said}; after that the trial hung and was killed \
             after {seconds} s (waiting for a thread that had died: a \
             poisoned lock, a barrier or a channel it never reached?)"
        ));
    }
    Verdict::Timeout(match trial.on_timeout {
        Some(why) => format!("{why} (still running after {seconds} s; killed)"),
        None => format!(
            "still running after {seconds} s; killed (a deadlock, or a loop \
             that never ends?)"
        ),
    })
}

/// Adds what a learner needs to a failure whose message alone says little.
fn explain(verdict: Verdict, stderr: &str) -> Verdict {
    match verdict {
        // `handle.join().unwrap()` on a panicked thread says only
        // `Any { .. }`: add what the thread itself said.
        Verdict::Fail(why) if why.contains("Any { .. }") => {
            match thread_panic(stderr) {
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
    }
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

/// The verdict of a child that exited (or was killed by a signal), from
/// its status and its record.
pub(super) fn judge_exit(
    status: ExitStatus,
    record: &str,
    nonce: &str,
    stderr: &str,
) -> Verdict {
    let todo = format!("TODO {nonce} ");
    if let Some(message) = record.strip_prefix(&todo) {
        return Verdict::NotImplemented(message.trim_end().to_string());
    }
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
    fn a_record_without_the_nonce_is_not_a_pass() {
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
        assert_eq!(
            judge_exit(one, "TODO n1 not yet implemented: x\n", "n1", ""),
            Verdict::NotImplemented("not yet implemented: x".into())
        );
        assert!(matches!(
            judge_exit(one, "TODO n2 not yet implemented", "n1", ""),
            Verdict::Crash(_)
        ));
    }
}
