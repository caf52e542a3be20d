//! What a child may use. Per process, the kernel enforces resource limits
//! the child sets on itself before its program runs ([`ProcessLimits`]);
//! across all the processes of a run, the parent's watchdog in
//! [`super::Running::wait`] adds up what they use ([`RunLimits`]).
//!
//! Not cgroups: they would count a run's processes together in the kernel,
//! but need a delegated cgroup v2 tree, which a container on cgroup v1 (as
//! here) or a plain user session does not have.

use std::fmt;
use std::io;
use std::process::Command;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::reap::Usage;

/// A child's processes may each map this much private writable memory
/// (`RLIMIT_DATA`: heap and thread stacks). Thread stacks take 2 MiB each,
/// so it also caps a child at about two thousand threads.
pub const MEMORY_LIMIT: u64 = 4 << 30;

/// What all the processes of one run may use together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Bytes of memory, shared memory included (the sum of Pss).
    pub memory: u64,
    /// Tasks: threads, each process's main thread included.
    pub tasks: u64,
}

/// How a run went past its [`RunLimits`]: what it used when the watchdog
/// saw it, and the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overrun {
    /// Bytes of memory.
    Memory {
        /// What the run's processes used together.
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// Tasks.
    Tasks {
        /// What the run's processes ran together.
        used: u64,
        /// The limit.
        limit: u64,
    },
}

impl RunLimits {
    /// The first limit `usage` is past, if any.
    pub fn exceeded_by(&self, usage: Usage) -> Option<Overrun> {
        if usage.memory > self.memory {
            Some(Overrun::Memory {
                used: usage.memory,
                limit: self.memory,
            })
        } else if usage.tasks > self.tasks {
            Some(Overrun::Tasks {
                used: usage.tasks,
                limit: self.tasks,
            })
        } else {
            None
        }
    }
}

impl fmt::Display for Overrun {
    /// The end of a sentence that starts "its processes used".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Overrun::Memory { used, limit } => write!(
                f,
                "more than {} MiB of memory together ({} MiB when stopped)",
                limit >> 20,
                used >> 20
            ),
            Overrun::Tasks { used, limit } => write!(
                f,
                "more than {limit} threads and processes together ({used} \
                 when stopped)"
            ),
        }
    }
}

/// The limits a child sets on itself, each no higher than the hard limit
/// it inherited (only a privileged process may raise a hard limit; asking
/// for more would fail the start with `EPERM`), and no core files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessLimits {
    /// `RLIMIT_DATA`: private writable memory (heap and thread stacks).
    data: u64,
    /// `RLIMIT_AS`: all the address space, shared mappings included.
    address_space: Option<u64>,
    /// `RLIMIT_NPROC`: the tasks of the whole user, this run's included.
    tasks: Option<u64>,
}

impl ProcessLimits {
    /// A graded trial's: [`MEMORY_LIMIT`] of private writable memory.
    pub const TRIAL: ProcessLimits = ProcessLimits {
        data: MEMORY_LIMIT,
        address_space: None,
        tasks: None,
    };

    /// Each process of a run under `limits`. `RLIMIT_DATA` skips shared
    /// memory, so `RLIMIT_AS` covers it. The address space also holds
    /// what a process reserves but does not use, so it gets twice the
    /// memory limit plus [`arenas`]: the 2 MiB stack of each thread
    /// (counted by `RLIMIT_DATA` too, so about 2 000 threads at 4 GiB;
    /// the book's examples start at most eight, and a multi-threaded
    /// tokio runtime one per core), the program and its libraries, and
    /// glibc's malloc arenas, which would otherwise take the room of the
    /// stacks (at 2 × 256 MiB alone, a snippet failed to start its
    /// twentieth thread). `RLIMIT_NPROC` counts every task of the user,
    /// so it is what the user runs now plus the run's share; the kernel
    /// does not apply it to a root that holds `CAP_SYS_RESOURCE` or
    /// `CAP_SYS_ADMIN`, so there only the watchdog counts tasks.
    pub fn of_run(limits: RunLimits) -> ProcessLimits {
        ProcessLimits {
            data: limits.memory,
            address_space: Some(
                limits.memory.saturating_mul(2).saturating_add(arenas()),
            ),
            tasks: Some(crate::reap::user_tasks() + limits.tasks),
        }
    }

    /// Sets the limits on the calling process and all it starts.
    pub fn apply(self) -> nix::Result<()> {
        lower(Resource::RLIMIT_DATA, self.data)?;
        if let Some(bytes) = self.address_space {
            lower(Resource::RLIMIT_AS, bytes)?;
        }
        if let Some(tasks) = self.tasks {
            lower(Resource::RLIMIT_NPROC, tasks)?;
        }
        setrlimit(Resource::RLIMIT_CORE, 0, 0)
    }

    /// Makes `command`'s child set the limits before it runs its program.
    pub fn apply_to(self, command: &mut Command) {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: the closure runs in the forked child before exec, where
        // only async-signal-safe calls are allowed; it calls getrlimit(2)
        // and setrlimit(2) only, and allocates nothing.
        unsafe {
            command.pre_exec(move || self.apply().map_err(io::Error::from));
        }
    }
}

/// The address space glibc's malloc may reserve for its arenas: 64 MiB
/// each (`HEAP_MAX_SIZE`), up to eight per core (`M_ARENA_MAX`), only
/// reserved (`PROT_NONE`) until used. 1 GiB on two cores.
pub fn arenas() -> u64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores as u64) * 8 * (64 << 20)
}

/// Sets both limits of `resource` to `wanted`, or to the inherited hard
/// limit where that is lower.
fn lower(resource: Resource, wanted: u64) -> nix::Result<()> {
    let (_, hard) = getrlimit(resource)?;
    let value = wanted.min(hard);
    setrlimit(resource, value, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_limit_passed_is_named() {
        let limits = RunLimits {
            memory: 100 << 20,
            tasks: 10,
        };
        let within = Usage {
            memory: 100 << 20,
            tasks: 10,
        };
        assert_eq!(limits.exceeded_by(within), None);
        let tasks = Usage {
            tasks: 11,
            ..within
        };
        assert_eq!(
            limits.exceeded_by(tasks),
            Some(Overrun::Tasks {
                used: 11,
                limit: 10
            })
        );
        let memory = Usage {
            memory: 150 << 20,
            ..tasks
        };
        assert_eq!(
            limits.exceeded_by(memory).unwrap().to_string(),
            "more than 100 MiB of memory together (150 MiB when stopped)"
        );
    }
}
