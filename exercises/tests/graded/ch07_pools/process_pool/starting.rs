//! The process pool starts its workers as their calls of `command` built
//! them: each from its own `Command`, with the environment, the folder and
//! the stderr that call chose, and nothing the pool adds.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use exercises::ch07_pools::ProcessPool;

use super::{countdown_jobs, is_our_child, parse, pool_worker, scratch};

/// The variable that a Python worker reads to run unbuffered.
const UNBUFFERED: &str = "PYTHONUNBUFFERED";

/// The process group of `process` (a pid, or `self`), from the fields of
/// `/proc/{process}/stat` after the parenthesised command name: state,
/// parent's pid, then process group.
fn process_group_of(process: &str) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{process}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    after_name.split_whitespace().nth(2)?.parse().ok()
}

/// The device and inode of the file that `/proc/{process}/fd/2` opens:
/// equal for two processes whose stderr is the same open file.
fn stderr_of(process: &str) -> (u64, u64) {
    stderr_of_path(format!("/proc/{process}/fd/2"))
}

/// The device and inode of the file at `path`.
fn stderr_of_path(path: impl AsRef<Path>) -> (u64, u64) {
    let path = path.as_ref();
    let meta = fs::metadata(path).unwrap_or_else(|error| {
        panic!("cannot look at {}: {error}", path.display())
    });
    (meta.dev(), meta.ino())
}

/// The environment process `pid` started with, one `KEY=VALUE` each.
fn environment_of(pid: u32) -> HashSet<Vec<u8>> {
    let path = format!("/proc/{pid}/environ");
    let environ = fs::read(&path)
        .unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
    environ
        .split(|&byte| byte == 0)
        .filter(|pair| !pair.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// `new` starts `size` distinct child processes, each from its own call of
/// `command`, as that call built it (the variables it set, and this
/// process's environment, which it inherits, and nothing more), and with
/// the stderr that call chose (this process's own, or a file for the
/// third), and every `map` uses those same processes.
pub(crate) fn starts_size_long_lived_workers() {
    const SIZE: usize = 3;
    let built = Cell::new(0);
    // Each call chooses a folder of its own for its worker to start in.
    let homes = scratch();
    let homes = homes
        .path()
        .canonicalize()
        .expect("cannot resolve a folder");
    let command = || {
        built.set(built.get() + 1);
        let home = homes.join(built.get().to_string());
        fs::create_dir(&home).expect("cannot create a folder");
        let mut command = pool_worker();
        // A value of the caller's choosing, which the pool must not change
        // (a Python worker run unbuffered is the caller's decision); the
        // second call chooses none, and the pool must add none. (It starts
        // from this process's variables but that one, set one by one, as
        // this process may have one of its own; first, as env_clear also
        // clears what was set before it.)
        if built.get() == 2 {
            command.env_clear();
            command
                .envs(std::env::vars_os().filter(|(key, _)| key != UNBUFFERED));
        } else {
            command.env(UNBUFFERED, "0");
        }
        command.env("CH07_WORKER", built.get().to_string());
        // The third call chooses a stderr of its own, a file in its
        // folder, which its worker keeps.
        if built.get() == 3 {
            let file = fs::File::create(home.join("stderr"))
                .expect("cannot create a file");
            command.stderr(file);
        }
        command.current_dir(home);
        command
    };
    let mut pool =
        ProcessPool::new(command, SIZE).expect("cannot start the pool");
    assert_eq!(
        built.get(),
        SIZE,
        "a pool of {SIZE} called `command` {} times: call it once for \
         each worker (a `Command` built once and spawned {SIZE} times loses \
         whatever the closure does for each worker)",
        built.get()
    );
    let pids = pool.pids();
    let distinct: HashSet<u32> = pids.iter().copied().collect();
    assert_eq!(
        (pids.len(), distinct.len()),
        (SIZE, SIZE),
        "a pool of {SIZE} should have {SIZE} distinct workers, got pids \
         {pids:?}"
    );
    assert!(
        pids.iter().all(|&pid| is_our_child(pid)),
        "every pid should be a child process of this one: {pids:?}"
    );
    let jobs = countdown_jobs(1..=12);
    for batch in 1..=2 {
        let answers = pool.map(&jobs).expect("map failed");
        assert_eq!(answers.len(), jobs.len(), "one answer per job");
        for answer in &answers {
            let (pid, _) = parse(answer);
            assert!(
                distinct.contains(&pid),
                "map {batch}: an answer came from process {pid}, which is \
                 not one of the pool's workers {pids:?}: start the workers \
                 once, in new, and send them every job"
            );
        }
    }
    assert_eq!(pool.pids(), pids, "the workers changed between maps");
    // This process's variables but PYTHONUNBUFFERED, which the calls of
    // `command` set, or not.
    let ours: Vec<Vec<u8>> = std::env::vars_os()
        .filter(|(key, _)| key != UNBUFFERED)
        .map(|(key, value)| {
            let mut pair = key.into_encoded_bytes();
            pair.push(b'=');
            pair.extend(value.into_encoded_bytes());
            pair
        })
        .collect();
    let mut numbers = HashSet::new();
    for &pid in &pids {
        let theirs = environment_of(pid);
        let number = (1..=SIZE).find(|number| {
            theirs.contains(format!("CH07_WORKER={number}").as_bytes())
        });
        assert!(
            number.is_some_and(|number| numbers.insert(number))
                && ours.iter().all(|pair| theirs.contains(pair)),
            "worker {pid} was not started as `command` built it: each call \
             sets CH07_WORKER to its own number, and the workers inherit \
             this process's environment, but worker {pid} has {} of this \
             process's {} variables, and CH07_WORKER={number:?} (start each \
             worker from the Command that `command` returns, with no \
             env_clear)",
            ours.iter().filter(|pair| theirs.contains(*pair)).count(),
            ours.len()
        );
        let own = format!("CH07_WORKER={}", number.unwrap_or_default());
        let added: Vec<String> = theirs
            .iter()
            .filter(|pair| {
                !ours.contains(*pair)
                    && **pair != own.as_bytes()
                    && (number == Some(2) || **pair != b"PYTHONUNBUFFERED=0")
            })
            .map(|pair| String::from_utf8_lossy(pair).into_owned())
            .collect();
        assert!(
            added.is_empty(),
            "worker {pid} has variables that neither its call of `command` \
             set (CH07_WORKER, and PYTHONUNBUFFERED=0 but for worker 2, \
             whose call set none) nor this process has: {added:?}; start \
             each worker with the environment its Command was built with, \
             and add or change nothing (PYTHONUNBUFFERED and the like are \
             for the caller to set, or not)"
        );
        let home = homes.join(number.unwrap_or_default().to_string());
        let (stderr, chosen) = if number == Some(3) {
            let file = home.join("stderr");
            (stderr_of_path(&file), "the file its call chose")
        } else {
            (stderr_of("self"), "this process's stderr")
        };
        assert_eq!(
            stderr_of(&pid.to_string()),
            stderr,
            "worker {pid}'s stderr (CH07_WORKER={number:?}) is not {chosen}: \
             set only the workers' stdin and stdout, and leave stderr as its \
             Command has it (inherited, unless the call chose a stderr of \
             its own, which it keeps; a piped stderr that nobody reads \
             hides the workers' messages, and blocks a worker that writes \
             more than a pipe holds)"
        );
        assert_eq!(
            process_group_of(&pid.to_string()),
            process_group_of("self"),
            "worker {pid} (CH07_WORKER={number:?}) is in a process group of \
             its own, not in this process's: start each worker from its \
             Command as it was built (no call of `command` chose a process \
             group, so the pool chooses none either: a group of its own \
             keeps a Ctrl-C, and every other signal sent to the caller's \
             group, from reaching the workers)"
        );
        let cwd = fs::read_link(format!("/proc/{pid}/cwd"));
        assert!(
            cwd.as_ref().is_ok_and(|cwd| *cwd == home),
            "worker {pid} (CH07_WORKER={number:?}) runs in {cwd:?}, not in \
             {home:?}, the folder its call of `command` chose with \
             current_dir: start each worker from its Command as it was \
             built, in the folder it chose (the pool chooses none)"
        );
    }
}
