//! The Linux parts: the process table from `/proc`, the tag in a
//! process's environment, memory and task counts, subreaping and the
//! parent-death signal.

use std::fs;
use std::os::unix::fs::MetadataExt as _;

use nix::sys::signal::{self, Signal};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{Pid, getpgrp, getpid};

use super::{ENV_TAG, Family, Usage};

/// One line of the kernel's process table, as `/proc/<pid>/stat` has it.
#[derive(Debug)]
struct Process {
    pid: Pid,
    /// `R`, `S`, `Z` (a zombie: dead, not yet reaped), ...
    state: String,
    ppid: Pid,
    pgrp: Pid,
    threads: u64,
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
            // The fields after the parenthesised command name: state
            // (field 3 of proc(5)), ppid, pgrp, ..., num_threads (20).
            let after = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let number = |at: usize| fields.get(at)?.parse::<i64>().ok();
            Some(Process {
                pid: Pid::from_raw(pid),
                state: fields.first()?.to_string(),
                ppid: Pid::from_raw(number(1)? as i32),
                pgrp: Pid::from_raw(number(2)? as i32),
                threads: number(17)? as u64,
            })
        })
        .collect()
}

/// Whether `pid`'s environment holds `tag` as [`ENV_TAG`].
fn tagged(pid: Pid, tag: &str) -> bool {
    let marker = format!("{ENV_TAG}={tag}");
    fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
        env.split(|&byte| byte == 0)
            .any(|var| var == marker.as_bytes())
    })
}

/// Whether `process` is an orphan of `family` that this process adopted:
/// our child, but neither one we started in our own process group (a
/// plain `Command`) nor one in the group of another run going on
/// (`live`). Only such orphans are ever killed or reaped, so no other
/// code's child loses its exit status to us.
fn adopted(process: &Process, family: &Family, live: &[Pid]) -> bool {
    family.orphans
        && process.ppid == getpid()
        && process.pgrp != getpgrp()
        && (process.pgrp == family.group || !live.contains(&process.pgrp))
}

/// The live processes of `family`: those in its process group, those that
/// carry its tag, if it takes them the orphans we adopted, and every
/// descendant of those (a child that left the group and cleared its
/// environment while its parent lives).
pub(super) fn members(family: &Family, live: &[Pid]) -> Vec<Pid> {
    let table = processes();
    let mut found: std::collections::HashSet<Pid> = table
        .iter()
        .filter(|p| {
            p.pgrp == family.group
                || adopted(p, family, live)
                || family.tag.as_deref().is_some_and(|t| tagged(p.pid, t))
        })
        .map(|p| p.pid)
        .collect();
    // Children of members, until a pass adds none.
    loop {
        let before = found.len();
        for process in &table {
            if found.contains(&process.ppid) {
                found.insert(process.pid);
            }
        }
        if found.len() == before {
            break;
        }
    }
    table
        .into_iter()
        .filter(|p| p.state != "Z" && found.contains(&p.pid))
        .map(|p| p.pid)
        .collect()
}

/// Reaps the zombies among `family`'s orphans.
pub(super) fn reap_orphans(family: &Family, live: &[Pid]) {
    for process in processes() {
        if process.state == "Z" && adopted(&process, family, live) {
            let _ = waitpid(process.pid, Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// What the processes `pids` use together: Pss from `smaps_rollup`
/// (which counts shared memory, split among its users), else `VmRSS`;
/// and their threads. A process that ends meanwhile counts as nothing.
pub(super) fn usage(pids: &[Pid]) -> Usage {
    let mut total = Usage::default();
    for pid in pids {
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status"))
        else {
            continue;
        };
        let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup"));
        let memory = rollup
            .ok()
            .and_then(|text| kibibytes(&text, "Pss:"))
            .or_else(|| kibibytes(&status, "VmRSS:"))
            .unwrap_or(0);
        total.memory += memory * 1024;
        total.tasks += kibibytes(&status, "Threads:").unwrap_or(0);
    }
    total
}

/// The number after `key` at the start of a line of a `/proc` file.
fn kibibytes(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The tasks (threads) this user runs now: what `RLIMIT_NPROC` counts.
pub(crate) fn user_tasks() -> u64 {
    let me = nix::unistd::getuid().as_raw();
    processes()
        .iter()
        .filter(|p| {
            fs::metadata(format!("/proc/{}", p.pid))
                .is_ok_and(|meta| meta.uid() == me)
        })
        .map(|p| p.threads)
        .sum()
}

/// Makes this process the parent of every orphan its runs leave (a daemon
/// whose middle process exited), instead of init: so [`kill_orphans`] and
/// a [`Family`] that takes orphans can find even one that left the group
/// and dropped the tag.
pub fn adopt_orphans() {
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// Kills and reaps every process still adopted by this one. Called when
/// no run goes on any more, so every child left is an orphan of one.
pub fn kill_orphans() {
    let me = getpid();
    for process in processes().into_iter().filter(|p| p.ppid == me) {
        let _ = signal::kill(process.pid, Signal::SIGKILL);
        let _ = waitpid(process.pid, None);
    }
}

/// Asks the kernel to kill this process if its parent dies (Ctrl-C, a
/// crash), and checks the parent, whose pid is `parent`, was not already
/// gone. `false` if it was.
pub fn die_with_parent(parent: Option<&str>) -> bool {
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    parent.is_none_or(|pid| pid == nix::unistd::getppid().to_string())
}
