//! Nothing a trial starts outlives it: its process group and every
//! process carrying its tag are killed at its end, and on Ctrl-C.

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use super::os;

/// The trials running now, as (process group, tag): what a Ctrl-C must
/// kill before the suite exits.
static LIVE: Mutex<Vec<(Pid, String)>> = Mutex::new(Vec::new());

/// Counts a trial as running until the guard drops.
pub(super) struct Live(Pid);

impl Live {
    pub(super) fn new(group: Pid, tag: &str) -> Live {
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((group, tag.to_string()));
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

/// Kills a trial's process group and every process carrying its tag, and
/// waits until none is alive. SIGKILL is delivered at once but a process
/// takes a moment to die, longer on a loaded machine; one may fork while it
/// is being killed, so look again until none is left. Gives up after 5 s
/// rather than hang the grader.
pub(super) fn kill_all(group: Pid, tag: &str) {
    let _ = signal::killpg(group, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive = os::trial_processes(group, tag);
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
pub(super) fn still_running(group: Pid, tag: &str) -> usize {
    let mut alive = os::trial_processes(group, tag).len();
    for _ in 0..20 {
        if alive == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(5));
        alive = os::trial_processes(group, tag).len();
    }
    alive
}

/// On Ctrl-C (or SIGTERM, SIGHUP), kills every running trial and what it
/// started, then exits: the trials run in process groups of their own, so
/// the terminal's Ctrl-C does not reach them.
pub(super) fn kill_trials_on_interrupt() {
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
            os::kill_orphans();
            std::process::exit(128 + number);
        }
    });
}
