//! Finishing workers: a worker that still has work to do after its stdin
//! ends, and the watch that lets such workers finish only once the code
//! under test waits for them (so a pool that kills them instead is seen).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What a finishing worker runs (`sh -c SCRIPT sh DIR`): it reads its stdin
/// to its end, like the pool worker, but then still has work to do, as a
/// real worker may (results to save, files to close). It closes its stdout,
/// waits until `DIR/go` exists, and creates `DIR/finished-PID` before it
/// exits; a worker that is killed instead never creates that file. It gives
/// up, without the file, once `DIR` is gone (the trial is over).
const FINISHING_SCRIPT: &str = "while read -r _; do :; done; \
    exec >/dev/null; \
    while [ ! -e \"$1/go\" ]; do [ -d \"$1\" ] || exit 1; sleep 0.001; done; \
    : > \"$1/finished-$$\"";

/// A finishing worker (see [`FINISHING_SCRIPT`]) that meets in `dir`.
pub(super) fn finishing_worker(dir: &Path) -> Command {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(FINISHING_SCRIPT).arg("sh").arg(dir);
    command
}

/// The pids of the finishing workers that have finished, from the files
/// `DIR/finished-PID`.
pub(super) fn finished(dir: &Path) -> Vec<u32> {
    fs::read_dir(dir)
        .expect("cannot list the meeting folder")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            name.to_str()?.strip_prefix("finished-")?.parse().ok()
        })
        .collect()
}

/// The numbers of the system calls `wait4` and `waitid`, which
/// `Child::wait` makes to wait for a child process.
#[cfg(target_arch = "x86_64")]
const WAIT4_WAITID: (u64, u64) = (61, 247);
#[cfg(target_arch = "aarch64")]
const WAIT4_WAITID: (u64, u64) = (260, 95);

/// `waitid`'s `idtype` for "the child whose pid is `id`".
const P_PID: u64 = 1;

/// Whether a thread of this process other than the calling one is blocked
/// waiting for a live finishing worker that meets in `dir`, from
/// `/proc/self/task/TID/syscall`: the number of the system call the thread
/// is blocked in (or `running`), then its arguments, in hexadecimal. A wait
/// for some other child (`Command::spawn` reaps a child that could not run
/// its program) does not count; a wait for any child does.
fn a_thread_waits_for_a_worker(dir: &Path) -> bool {
    // `/proc/thread-self` is `<pid>/task/<tid>`.
    let me = fs::read_link("/proc/thread-self")
        .expect("cannot read /proc/thread-self");
    let me = me.file_name().expect("a thread id");
    let is_a_worker = |pid: u64| {
        // A worker's command line holds `dir`; a zombie's is empty.
        let dir = dir.as_os_str().as_encoded_bytes();
        fs::read(format!("/proc/{}/cmdline", pid as i32)).is_ok_and(|line| {
            line.windows(dir.len()).any(|window| window == dir)
        })
    };
    fs::read_dir("/proc/self/task")
        .expect("cannot list this process's threads")
        .filter_map(Result::ok)
        .filter(|task| task.file_name() != me)
        .any(|task| {
            let Ok(call) = fs::read_to_string(task.path().join("syscall"))
            else {
                return false;
            };
            let fields: Vec<u64> = call
                .split_whitespace()
                .take(3)
                .map_while(|field| {
                    let hex = field.strip_prefix("0x");
                    hex.map_or(field.parse().ok(), |hex| {
                        u64::from_str_radix(hex, 16).ok()
                    })
                })
                .collect();
            let (wait4, waitid) = WAIT4_WAITID;
            match fields[..] {
                // `wait4(pid, ..)`: a pid of 0 or less is any child.
                [number, pid, _] if number == wait4 => {
                    pid as i32 <= 0 || is_a_worker(pid)
                }
                [number, idtype, id] if number == waitid => {
                    idtype != P_PID || is_a_worker(id)
                }
                _ => false,
            }
        })
}

/// Starts a thread that creates `DIR/go`, which lets the finishing workers
/// finish, as soon as a thread of this process waits for one of them that
/// is still alive, and so only after the code under test has stopped the
/// workers, or not: a worker killed before it is waited for is killed
/// before `go` exists, and never finishes. The thread gives up once `done`
/// is set; it returns whether it created `go`.
pub(super) fn release_once_waited_for(
    dir: PathBuf,
    done: Arc<AtomicBool>,
) -> JoinHandle<bool> {
    thread::spawn(move || {
        loop {
            if a_thread_waits_for_a_worker(&dir) {
                fs::write(dir.join("go"), "").expect("cannot create go");
                return true;
            }
            if done.load(Ordering::SeqCst) {
                return false;
            }
            thread::sleep(Duration::from_millis(1));
        }
    })
}

/// Why some finishing workers did not finish: `released` says whether a
/// thread was ever seen waiting for a live one.
pub(super) fn why_unfinished(released: bool) -> &'static str {
    if released {
        "they were killed: close their stdins, which tells them to finish, \
         and wait for them, without kill (Python's terminate() is not what \
         the doc promises)"
    } else {
        "nothing ever waited for a worker that was still alive: they were \
         never waited for (dropping a `Child` does not wait for it), or \
         killed first; close their stdins, which tells them to finish, and \
         wait for them (Child::wait), without kill"
    }
}
