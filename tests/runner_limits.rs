//! What a snippet run by the Run button may leave and use: nothing it
//! starts outlives the run, a `setsid` daemon that cleared its environment
//! included; its processes together stay under the run's memory and task
//! limits, shared memory included; and a lower hard limit inherited from
//! the shell is respected rather than failing every run.
//!
//! The runner drives `Runner::evaluate` directly, with small limits, in
//! the scratch package `tests/runner.rs` uses (`target/runner-test`); the
//! tests take turns, since one of them starts a second runner in a child
//! process on the same package.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use course::runner::{Evaluated, RunLimits, Runner};

/// Small limits, so the tests stay light: 256 MiB and 64 threads and
/// processes for a run's processes together.
const LIMITS: RunLimits = RunLimits {
    memory: 256 << 20,
    tasks: 64,
};

/// Only detects a hang: every snippet here ends, or is stopped, sooner.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Set in the child process of
/// [`a_lower_inherited_hard_limit_is_respected_not_fatal`].
const SCENARIO: &str = "COURSE_RUNNER_LIMITS_SCENARIO";

/// One test at a time (see the file's comment).
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn runner() -> &'static Arc<Runner> {
    static RUNNER: OnceLock<Arc<Runner>> = OnceLock::new();
    RUNNER.get_or_init(|| new_runner(LIMITS))
}

fn new_runner(limits: RunLimits) -> Arc<Runner> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/runner-test");
    Runner::with_limits(root, dir, RUN_TIMEOUT, limits).unwrap()
}

fn evaluate(runner: &Arc<Runner>, code: &str) -> Evaluated {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(runner.evaluate(code.to_string()))
}

/// A snippet that starts `daemon` (a `sh -c` script that prints the
/// daemon's pid after `daemon `) with `Command::new(shell)`; with an
/// absolute path to the shell, in an empty environment.
fn daemon_snippet(shell: &str, daemon: &str) -> String {
    format!(
        "fn main() {{\n    let mut command = std::process::Command::new({shell:?});\n    \
         command.args([\"-c\", {daemon:?}]);\n{setup}    \
         let status = command.status().unwrap();\n    \
         println!(\"started it: {{status}}\");\n}}\n",
        setup = if shell.starts_with('/') {
            "    command.env_clear();\n"
        } else {
            ""
        }
    )
}

/// The pid the snippet printed after `daemon `.
fn daemon_pid(result: &str) -> i32 {
    let after = result
        .split("daemon ")
        .nth(1)
        .unwrap_or_else(|| panic!("no daemon pid in: {result}"));
    let pid = after.split_whitespace().next().unwrap_or("");
    pid.parse()
        .unwrap_or_else(|_| panic!("no daemon pid in: {result}"))
}

/// Whether `pid` is in the process table at all (a zombie counts: it was
/// not reaped). Kills it if so, so a failing test leaves nothing behind.
fn exists_then_kill(pid: i32) -> bool {
    let exists = Path::new(&format!("/proc/{pid}")).exists();
    if exists {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL);
    }
    exists
}

/// A snippet that starts `count` copies of itself, each holding `mib` MiB
/// for five seconds, with `setup` applied to each child's `Command`, waits
/// for them and then prints `finished`.
fn children_holding_memory(
    count: u32,
    mib: u32,
    setup: &str,
    finished: &str,
) -> String {
    format!(
        "#[allow(unused_imports)]\n\
         use std::os::unix::process::CommandExt;\n\
         use std::process::Command;\n\
         fn main() {{\n    \
         if std::env::args().nth(1).as_deref() == Some(\"child\") {{\n        \
         let block = vec![1u8; {mib} << 20];\n        \
         std::thread::sleep(std::time::Duration::from_secs(5));\n        \
         std::hint::black_box(block);\n        return;\n    }}\n    \
         let me = std::env::current_exe().unwrap();\n    \
         let children: Vec<_> = (0..{count})\n        \
         .map(|_| Command::new(&me).arg(\"child\"){setup}.spawn().unwrap())\n        \
         .collect();\n    \
         for mut child in children {{\n        child.wait().unwrap();\n    }}\n    \
         println!(\"{finished}\");\n}}\n"
    )
}

/// A daemon that left the group with `setsid` (it keeps the run's tag) is
/// killed and reaped when the run ends, and what the snippet printed is
/// shown without waiting for the pipe the daemon held.
#[test]
fn a_setsid_daemon_does_not_outlive_the_run() {
    let _turn = turn();
    let code = daemon_snippet("sh", "setsid sleep 1000 & echo daemon $!");
    let done = evaluate(runner(), &code);
    let pid = daemon_pid(&done.result);
    assert!(!exists_then_kill(pid), "the daemon {pid} outlived the run");
    assert!(done.result.contains("started it"), "{}", done.result);
    assert!(!done.result.contains("held open"), "{}", done.result);
    assert_eq!(done.error, None, "{}", done.result);
}

/// A daemon that cleared its environment (no tag) and left the group is
/// found as an orphan the runner adopted: killed and reaped too.
#[test]
fn a_daemon_without_environment_does_not_outlive_the_run() {
    let _turn = turn();
    let code = daemon_snippet(
        "/bin/sh",
        "/usr/bin/setsid /bin/sleep 1000 & echo daemon $!",
    );
    let done = evaluate(runner(), &code);
    let pid = daemon_pid(&done.result);
    assert!(!exists_then_kill(pid), "the daemon {pid} outlived the run");
    assert!(done.result.contains("started it"), "{}", done.result);
    assert!(!done.result.contains("held open"), "{}", done.result);
}

/// Four processes of 100 MiB each stay under the per-process limit (256
/// MiB) but not, together, under the run's: the run is stopped, and says
/// why.
#[test]
fn processes_over_the_memory_limit_together_are_stopped() {
    let _turn = turn();
    let code = children_holding_memory(4, 100, "", "all four finished");
    let done = evaluate(runner(), &code);
    eprintln!("{}", done.result);
    assert!(
        !done.result.contains("all four finished"),
        "{}",
        done.result
    );
    assert!(
        done.result.contains(
            "stopped: the program's processes used more than 256 MiB of \
             memory together"
        ),
        "{}",
        done.result
    );
    assert!(done.error.is_some());
}

/// A shared mapping is memory too: one larger than the run's limit but
/// within a process's address space is stopped by the watchdog (Pss counts
/// it), and one as large as the address space (`RLIMIT_AS`) cannot even
/// be made. Python maps it (`mmap(-1, n)` is `MAP_SHARED`); std has no
/// `mmap`, and a file in `/dev/shm` would outlive the run.
#[test]
fn shared_memory_counts() {
    let _turn = turn();
    // `mib`: a Python expression for the size of the mapping in MiB.
    let snippet = |mib: &str| {
        format!(
            "fn main() {{\n    let python = if std::path::Path::new(\"/usr/bin/python3\").exists() \
             {{ \"/usr/bin/python3\" }} else {{ \"python3\" }};\n    \
             let script = \"import mmap, resource, time\\nmib = {mib}\\n\
             m = mmap.mmap(-1, mib << 20)\\n\
             chunk = b'x' * (1 << 20)\\nfor i in range(mib):\\n    \
             m[i << 20:(i + 1) << 20] = chunk\\nprint('touched', flush=True)\\n\
             time.sleep(5)\\n\";\n    \
             let status = std::process::Command::new(python).args([\"-c\", script]).status();\n    \
             println!(\"python: {{status:?}}\");\n}}\n"
        )
    };
    const SPACE: &str = "resource.getrlimit(resource.RLIMIT_AS)[0] >> 20";
    let within_space = evaluate(runner(), &snippet("384"));
    eprintln!("{}", within_space.result);
    assert!(
        within_space.result.contains(
            "stopped: the program's processes used more than 256 MiB"
        ),
        "{}",
        within_space.result
    );
    let beyond_space = evaluate(runner(), &snippet(SPACE));
    assert!(
        beyond_space.result.contains("Cannot allocate memory"),
        "{}",
        beyond_space.result
    );
    assert!(!beyond_space.result.contains("touched"));
}

/// Whether the task limit stopped the run: the watchdog, or for a user the
/// kernel enforces `RLIMIT_NPROC` on, the kernel (a root that holds
/// `CAP_SYS_ADMIN` is exempt, as here).
fn stopped_by_the_task_limit(result: &str) -> bool {
    result.contains(
        "stopped: the program's processes used more than 64 threads and \
         processes together",
    ) || (!nix::unistd::geteuid().is_root()
        && result.contains("Resource temporarily unavailable"))
}

/// A snippet that starts processes in a loop is stopped by the task limit.
#[test]
fn a_process_bomb_is_stopped() {
    let _turn = turn();
    let code = "fn main() {\n    let mut sleepers = Vec::new();\n    \
        for _ in 0..1000 {\n        \
        sleepers.push(std::process::Command::new(\"sleep\").arg(\"1000\").spawn().unwrap());\n    }\n    \
        println!(\"started {} sleepers\", sleepers.len());\n}\n";
    let done = evaluate(runner(), code);
    assert!(stopped_by_the_task_limit(&done.result), "{}", done.result);
}

/// A snippet that starts threads in a loop is stopped by the task limit
/// before its 2 MiB stacks exhaust `RLIMIT_DATA` (about 128 at 256 MiB):
/// each new thread waits 5 ms, so the watchdog, which looks every 10 ms,
/// sees 65 with time to spare.
#[test]
fn a_thread_bomb_is_stopped() {
    let _turn = turn();
    let code = "fn main() {\n    let mut sleepers = Vec::new();\n    \
        for _ in 0..1000 {\n        \
        std::thread::sleep(std::time::Duration::from_millis(5));\n        \
        sleepers.push(std::thread::spawn(|| std::thread::park()));\n    }\n    \
        println!(\"started {} threads\", sleepers.len());\n}\n";
    let done = evaluate(runner(), code);
    assert!(stopped_by_the_task_limit(&done.result), "{}", done.result);
}

/// A snippet that prints its own limits, as the kernel has them.
const PRINT_LIMITS: &str = "fn main() {\n    \
    print!(\"{}\", std::fs::read_to_string(\"/proc/self/limits\").unwrap());\n}\n";

/// The hard limits the child of this test inherits: lower than the
/// reader's (4 GiB of data, 8 GiB of address space), as a shell's `ulimit
/// -d` or `prlimit` may set them.
const INHERITED_DATA: u64 = 2_000_000_000;
const INHERITED_SPACE: u64 = 6 << 30;

/// With hard limits lower than the runner's inherited from the shell, a
/// snippet still runs (a child may not raise a hard limit: asking for more
/// fails the start with EPERM), under the lower limit of each pair; and
/// its task limit is set. The runner runs in a child process of this test
/// binary, started with the lower limits.
#[test]
fn a_lower_inherited_hard_limit_is_respected_not_fatal() {
    if std::env::var_os(SCENARIO).is_some() {
        let runner = new_runner(course::runner::READER_LIMITS);
        let done = evaluate(&runner, PRINT_LIMITS);
        println!("{}\nerror: {:?}", done.result, done.error);
        return;
    }
    let _turn = turn();
    let mut command =
        std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "a_lower_inherited_hard_limit_is_respected_not_fatal",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SCENARIO, "1");
    // SAFETY: runs in the forked child before exec; setrlimit(2) only,
    // which is async-signal-safe, and no allocation.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            use nix::sys::resource::{Resource, setrlimit};
            setrlimit(Resource::RLIMIT_DATA, INHERITED_DATA, INHERITED_DATA)?;
            setrlimit(Resource::RLIMIT_AS, INHERITED_SPACE, INHERITED_SPACE)?;
            Ok(())
        });
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let hard = |name: &str| -> Option<u64> {
        let line = stdout.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().nth(1)?.parse().ok()
    };
    assert_eq!(hard("Max data size"), Some(INHERITED_DATA), "{stdout}");
    assert_eq!(hard("Max address space"), Some(INHERITED_SPACE), "{stdout}");
    // The user's tasks plus the run's 2048, far below what this machine
    // allows a user.
    let (_, ours) = nix::sys::resource::getrlimit(
        nix::sys::resource::Resource::RLIMIT_NPROC,
    )
    .unwrap();
    let tasks = hard("Max processes").unwrap_or(u64::MAX);
    assert!(tasks < ours, "no task limit: {stdout}");
}

/// Children that left the run's group and cleared their environment (so
/// they carry no tag) while their parent lives are the run's too: each
/// under the per-process limits, together over the run's, they are
/// stopped. Found by a security review: the watchdog once did not see
/// them.
#[test]
fn hidden_children_of_a_live_parent_count() {
    let _turn = turn();
    let code = children_holding_memory(
        2,
        150,
        ".env_clear().process_group(0)",
        "both finished",
    );
    let done = evaluate(runner(), &code);
    assert!(!done.result.contains("both finished"), "{}", done.result);
    assert!(
        done.result
            .contains("used more than 256 MiB of memory together"),
        "{}",
        done.result
    );
}

/// A snippet that moves itself into another process group of its session
/// (here the server's own) is still stopped at the deadline and killed:
/// the group's kill misses it, so the runner kills it by its pid. Found by
/// a security review: the runner once waited for it forever.
#[test]
fn a_snippet_that_joins_another_group_is_still_stopped() {
    let _turn = turn();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/runner-test");
    let short =
        Runner::with_limits(root, dir, Duration::from_secs(2), LIMITS).unwrap();
    let code = "unsafe extern \"C\" {\n    \
        fn setpgid(pid: i32, group: i32) -> i32;\n    \
        fn getpgid(pid: i32) -> i32;\n    fn getppid() -> i32;\n}\n\
        fn main() {\n    \
        // SAFETY: plain system calls on this process.\n    \
        let moved = unsafe { setpgid(0, getpgid(getppid())) };\n    \
        println!(\"moved {moved} pid {}\", std::process::id());\n    \
        loop {\n        std::hint::spin_loop();\n    }\n}\n";
    let done = evaluate(&short, code);
    assert!(done.result.contains("moved 0"), "{}", done.result);
    assert!(done.result.contains("timed out"), "{}", done.result);
    let pid: i32 = done
        .result
        .split("pid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no pid in: {}", done.result));
    assert!(!exists_then_kill(pid), "the snippet {pid} outlived its run");
}
