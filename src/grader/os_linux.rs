//! The grader's Linux-only parts: the process table from `/proc`, the
//! tag in a process's environment, subreaping and the parent-death signal.

use std::fs;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use super::ENV_TAG;

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

/// The live processes a trial started (zombies do not count): those in its
/// process group, and those that left it but carry its tag.
pub(super) fn trial_processes(group: Pid, tag: &str) -> Vec<Pid> {
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

/// Makes the suite the parent of every orphan its trials leave (a daemon
/// whose middle process exited), instead of init: so [`kill_orphans`] can
/// find even one that left the group and dropped the tag.
pub(super) fn adopt_orphans() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// Kills and reaps every process still adopted by the suite. Called when
/// no trial runs any more, so every child left is an orphan of one.
pub(super) fn kill_orphans() {
    let me = nix::unistd::getpid();
    for process in processes().into_iter().filter(|p| p.ppid == me) {
        let _ = signal::kill(process.pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(process.pid, None);
    }
}

/// Asks the kernel to kill this trial if the suite dies (Ctrl-C, a crash),
/// and checks the suite was not already gone. `false` if it was.
pub(super) fn die_with_the_suite(suite: Option<&str>) -> bool {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    suite.is_none_or(|pid| pid == nix::unistd::getppid().to_string())
}
