//! Nothing a run starts outlives it: the one way the grader's trials and
//! the Run button's snippets find, measure and kill every process they
//! started.
//!
//! A run's processes are its [`Family`]: its process group, every process
//! carrying its tag in the environment (found even after `setsid`), and,
//! where the run asks for it, every orphan this process adopted as a child
//! subreaper (found even after `setsid` and `env_clear`). [`kill_all`]
//! kills them until none is left and reaps the orphans; [`usage`] adds up
//! their memory and tasks for a watchdog.

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

#[cfg(target_os = "linux")]
#[path = "os_linux.rs"]
mod os;
#[cfg(not(target_os = "linux"))]
#[path = "os_other.rs"]
mod os;

pub(crate) use os::user_tasks;
pub use os::{adopt_orphans, die_with_parent, kill_orphans};

/// Stays in the environment of a tagged run and everything it starts; the
/// parent finds escaped processes by it. Named for the grader, which
/// tagged its trials first; the Run button's snippets carry it too.
pub const ENV_TAG: &str = "COURSE_GRADER_TAG";

/// The processes of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// The run's process group (its first process's pid).
    pub group: Pid,
    /// The value of [`ENV_TAG`] the run was started with, if any.
    pub tag: Option<String>,
    /// Whether the orphans this process adopted belong to the run: true
    /// where this process is a subreaper ([`adopt_orphans`]) and starts
    /// one run at a time.
    pub orphans: bool,
}

/// What a run's processes use together, as the kernel counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Proportional set size in bytes, shared pages split among their
    /// users (resident size where the kernel gives no Pss).
    pub memory: u64,
    /// Threads, every process's main thread included.
    pub tasks: u64,
}

/// The live processes of `family` (zombies do not count).
pub fn members(family: &Family) -> Vec<Pid> {
    os::members(family, &live_groups())
}

/// What the live processes of `family` use together.
pub fn usage(family: &Family) -> Usage {
    os::usage(&members(family))
}

/// Kills every process of `family`, and waits until none is alive.
/// SIGKILL is delivered at once but a process takes a moment to die,
/// longer on a loaded machine; one may fork while it is being killed, so
/// look again until none is left. Reaps the family's orphans. Gives up
/// after 5 s rather than hang the caller.
pub fn kill_all(family: &Family) {
    let _ = signal::killpg(family.group, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive = members(family);
        if family.orphans {
            os::reap_orphans(family, &live_groups());
        }
        if alive.is_empty() || Instant::now() >= deadline {
            return;
        }
        for pid in alive {
            let _ = signal::kill(pid, Signal::SIGKILL);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// How many processes of `family` are still running. A process the run
/// killed without waiting for may take a moment to die, longer on a
/// loaded machine: only those still alive after a short grace count.
pub fn still_running(family: &Family) -> usize {
    let mut alive = members(family).len();
    for _ in 0..20 {
        if alive == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(5));
        alive = members(family).len();
    }
    alive
}

/// The runs going on now in this process, as (process group, tag): what a
/// Ctrl-C must kill, and whose processes are no other run's orphans.
static LIVE: Mutex<Vec<(Pid, Option<String>)>> = Mutex::new(Vec::new());

/// Counts a run as going on until the guard drops.
#[derive(Debug)]
pub(crate) struct Live(Pid);

impl Live {
    pub(crate) fn new(group: Pid, tag: Option<&str>) -> Live {
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((group, tag.map(str::to_string)));
        Live(group)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(live, _)| *live != self.0);
    }
}

fn live_groups() -> Vec<Pid> {
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.iter().map(|(group, _)| *group).collect()
}

/// On Ctrl-C (or SIGTERM, SIGHUP), kills every run going on and what it
/// started, and the orphans this process adopted, then exits: the runs
/// are in process groups of their own, so the terminal's Ctrl-C does not
/// reach them.
pub fn kill_runs_on_interrupt() {
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
                kill_all(&Family {
                    group,
                    tag,
                    orphans: false,
                });
            }
            kill_orphans();
            std::process::exit(128 + number);
        }
    });
}
