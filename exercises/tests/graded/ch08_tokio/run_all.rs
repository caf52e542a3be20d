//! `run_all`, with this crate's `worker` binary as the commands: codes
//! and output in command order, the commands run at once, and those past
//! the deadline are killed and waited for.

mod deadlines;
mod pipes;

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use exercises::ch08_tokio::{Outcome, run_all};
use tokio::process::Command;

use super::runtime;

pub(super) use deadlines::{
    counts_each_deadline_from_its_own_start, kills_commands_past_the_deadline,
};
pub(super) use pipes::{
    drains_every_pipe_while_it_waits, reads_stdout_to_its_end,
};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

/// A deadline for `run_all` that no command of a right solution reaches:
/// longer than any trial runs, so only the trial's timeout ends a wait.
const NEVER: Duration = Duration::from_secs(60);

/// A `worker` command with these arguments.
fn worker(args: &[&str]) -> Command {
    let mut command = Command::new(WORKER);
    command.args(args);
    command
}

/// A fresh, empty folder, removed when the value is dropped.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("cannot create a temporary folder")
}

/// Whether process `pid` is a child of this one that nobody has waited
/// for yet: running, or a zombie.
fn is_our_child(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false; // Gone, waited for.
    };
    // After the parenthesised command name: state, then the parent.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after_name.split_whitespace().nth(1)
        == Some(std::process::id().to_string().as_str())
}

/// Whether process `pid` is a child of this one that has not died yet
/// (a zombie has).
fn is_running(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false; // Gone, waited for.
    };
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut fields = after_name.split_whitespace();
    let (state, parent) = (fields.next(), fields.next());
    state != Some("Z")
        && parent == Some(std::process::id().to_string().as_str())
}

/// The child processes of this one that nobody has waited for yet:
/// running, or zombies.
fn our_children() -> Vec<u32> {
    let entries = fs::read_dir("/proc").expect("cannot list /proc");
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| is_our_child(pid))
        .collect()
}

/// A `/bin/sh -c SCRIPT` command, with `args` as `$1`, `$2`...
fn shell(script: &str, args: &[&str]) -> Command {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(script).arg("sh").args(args);
    command
}

/// Exit statuses and stdout come back in command order, and a command
/// that cannot start is an error of its own: the error its start gave,
/// unchanged (`NotFound` for a program that does not exist,
/// `PermissionDenied` for a file that is not executable). A child killed by a signal
/// has no code (`None`), and output that is not UTF-8 is decoded lossily.
/// Only stdout is piped: `cat`, whose stdin and stderr the caller set to
/// files, reads the one to its end and writes to the other. Output that
/// is valid UTF-8 comes back as written: a byte order mark and `\r`s too.
/// With a deadline of zero too, a command that cannot start gives its
/// error.
pub(super) fn reports_code_and_output() {
    // The last command's stdin and stderr are files the caller chose: it
    // reads the one to its end and writes to the other.
    let scratch = scratch();
    let (input, errors) =
        (scratch.path().join("input"), scratch.path().join("errors"));
    fs::write(&input, "from the caller's file\n").expect("cannot write input");
    // A file that is not executable: it cannot start either, for
    // another reason.
    let not_a_program = scratch.path().join("notes.txt");
    fs::write(&not_a_program, "not a program\n").expect("cannot write notes");
    let mut cat = shell("cat && echo oops >&2", &[]);
    cat.stdin(fs::File::open(&input).expect("cannot open the input"))
        .stderr(fs::File::create(&errors).expect("cannot create a file"));
    let outcomes = runtime().block_on(run_all(
        vec![
            worker(&["exit", "3"]),
            worker(&["lines", "2"]),
            Command::new("/nonexistent/report-generator"),
            worker(&["abort"]),
            shell("printf 'caf\\351\\n'", &[]),
            cat,
            Command::new(&not_a_program),
            // Valid UTF-8 that a decoder in "text mode" would change: a
            // byte order mark first, then `\r\n` and a lone `\r`.
            shell(r"printf '\357\273\277one\r\ntwo\rthree\n'", &[]),
        ],
        NEVER,
    ));
    assert_eq!(outcomes.len(), 8, "one result per command");
    assert!(
        matches!(
            &outcomes[7],
            Ok(Outcome::Finished { code: Some(0), stdout })
                if stdout == "\u{FEFF}one\r\ntwo\rthree\n"
        ),
        "a child that prints a byte order mark (U+FEFF), then \
         \"one\\r\\ntwo\\rthree\\n\": expected that text exactly as it \
         was written, got {:?}. Its stdout is valid UTF-8, so it comes \
         back unchanged: keep the BOM (no \"utf-8-sig\" decoding) and \
         every \\r (no universal newlines, as Python's text=True reads \
         them)",
        outcomes[7]
    );
    assert!(
        matches!(
            &outcomes[5],
            Ok(Outcome::Finished { code: Some(0), stdout })
                if stdout == "from the caller's file\n"
        ),
        "`cat`, with its stdin set by the caller to a file that holds one \
         line: expected Finished with code 0 and that line, got {:?} \
         (pipe stdout only: a stdin of yours replaces the caller's)",
        outcomes[5]
    );
    let written = fs::read_to_string(&errors).expect("cannot read a file");
    assert!(
        written == "oops\n",
        "a command wrote oops to its stderr, which the caller set to a \
         file, and the file holds {written:?}: pipe stdout only, and leave \
         stderr (and stdin) as the caller set them"
    );
    assert!(
        matches!(&outcomes[3], Ok(Outcome::Finished { code: None, .. })),
        "`worker abort` is ended by a signal (SIGABRT), so it has no exit \
         code: expected Finished with code None, got {:?} (no -1 for a \
         signal: that is Python's habit, not ExitStatus::code)",
        outcomes[3]
    );
    assert!(
        matches!(
            &outcomes[4],
            Ok(Outcome::Finished { code: Some(0), stdout })
                if stdout == "caf\u{FFFD}\n"
        ),
        "a child that prints the bytes `caf\\xe9\\n` (Latin-1, not \
         UTF-8): expected its stdout decoded lossily, \"caf\\u{{FFFD}}\\n\", \
         got {:?} (read the bytes, then String::from_utf8_lossy: \
         read_to_string fails on bytes that are not UTF-8)",
        outcomes[4]
    );
    assert!(
        matches!(
            &outcomes[0],
            Ok(Outcome::Finished { code: Some(3), stdout }) if stdout.is_empty()
        ),
        "`worker exit 3` exits with status 3 and prints nothing, got \
         {:?} (results in command order)",
        outcomes[0]
    );
    assert!(
        matches!(
            &outcomes[1],
            Ok(Outcome::Finished { code: Some(0), stdout })
                if stdout == "line 1\nline 2\n"
        ),
        "`worker lines 2` prints two lines and exits with 0, got {:?} \
         (is its stdout piped and read to the end?)",
        outcomes[1]
    );
    // Each error is the one starting the program gives, as it is: its
    // kind, its OS error number and its message.
    for (index, program) in [
        (2, Path::new("/nonexistent/report-generator")),
        (6, not_a_program.as_path()),
    ] {
        let expected = std::process::Command::new(program)
            .spawn()
            .expect_err("the program cannot start");
        let same = match &outcomes[index] {
            Err(error) => {
                error.kind() == expected.kind()
                    && error.raw_os_error() == expected.raw_os_error()
                    && error.to_string() == expected.to_string()
            }
            Ok(_) => false,
        };
        assert!(
            same,
            "{program:?} cannot start: expected the error that starting it \
             gives, as it is, Err({expected:?}), got {:?}. Pass spawn's \
             error on unchanged (`?`): a new io::Error::other that names \
             the program loses its kind ({:?}), which the caller matches on",
            outcomes[index],
            expected.kind()
        );
    }
    // A deadline too far off for any clock to reach, `Duration::MAX`, is
    // no deadline: the command finishes, and nothing overflows.
    let unbounded = std::panic::catch_unwind(|| {
        runtime().block_on(run_all(vec![worker(&["exit", "3"])], Duration::MAX))
    });
    let Ok(unbounded) = unbounded else {
        panic!(
            "run_all panicked with a deadline of Duration::MAX, which means \
             no deadline at all (Instant::now() + deadline overflows: \
             tokio::time::timeout(deadline, ..) takes any Duration)"
        );
    };
    assert!(
        matches!(
            unbounded.as_slice(),
            [Ok(Outcome::Finished { code: Some(3), .. })]
        ),
        "`worker exit 3` with a deadline of Duration::MAX: expected \
         Finished with code 3, got {unbounded:?}"
    );
    // A deadline of zero: a program that does not exist still cannot
    // start, and gives its error; the one that starts gives an `Ok` (which
    // one, `Finished` or `TimedOut`, depends on how soon it exits).
    let zero = runtime().block_on(run_all(
        vec![
            Command::new("/nonexistent/report-generator"),
            worker(&["exit", "0"]),
        ],
        Duration::ZERO,
    ));
    assert!(
        matches!(
            zero.as_slice(),
            [Err(error), Ok(_)] if error.kind() == std::io::ErrorKind::NotFound
        ),
        "a program that does not exist and `worker exit 0`, with a deadline \
         of zero: expected [Err(NotFound), Ok(..)], got {zero:?}. Start \
         every command, whatever the deadline: an answer of your own for a \
         zero deadline (TimedOut for all) hides the error of a command \
         that cannot start"
    );
}

/// Three children each wait until all three have started; they finish
/// and print their pids, three different ones. Then 70 children, more
/// than a cap of 64 children at once lets run, wait until all 70 run.
pub(super) fn runs_the_commands_at_once() {
    const CHILDREN: usize = 3;
    let scratch = scratch();
    let dir = scratch.path().to_str().expect("a UTF-8 temporary path");
    let count = CHILDREN.to_string();
    let commands = (0..CHILDREN)
        .map(|_| worker(&["rendezvous", dir, &count]))
        .collect();
    let outcomes = runtime().block_on(run_all(commands, NEVER));
    let mut pids = HashSet::new();
    for outcome in &outcomes {
        match outcome {
            Ok(Outcome::Finished {
                code: Some(0),
                stdout,
            }) => pids.insert(stdout.clone()),
            other => panic!(
                "each child exits with 0 once all {CHILDREN} have started, \
                 got {other:?}"
            ),
        };
    }
    assert_eq!(
        pids.len(),
        CHILDREN,
        "{CHILDREN} commands, {CHILDREN} processes: got {outcomes:?}"
    );
    many_at_once();
}

/// More commands than a cap a pool of processes might pick (64) run at
/// once too: 70 children each print a line and wait for a file that the
/// test creates only once all 70 are running.
fn many_at_once() {
    const MANY: usize = 70;
    let scratch = scratch();
    let go = scratch.path().join("go");
    let go = go.to_str().expect("a UTF-8 temporary path").to_string();
    let commands = (0..MANY)
        .map(|_| worker(&["emit-then-wait", &go]))
        .collect();
    let outcomes = runtime().block_on(async {
        let given_up = Arc::new(AtomicBool::new(false));
        let _give_up = GiveUpOnDrop(Arc::clone(&given_up));
        let test = blocking({
            let (go, given_up) = (go.clone(), Arc::clone(&given_up));
            move || {
                wait_until(&given_up, || children_mentioning(&go) >= MANY);
                fs::write(&go, "").expect("cannot create the go file");
            }
        });
        let (outcomes, ()) = tokio::join!(run_all(commands, NEVER), test);
        outcomes
    });
    for outcome in &outcomes {
        assert!(
            matches!(
                outcome,
                Ok(Outcome::Finished { code: Some(0), stdout }) if stdout == "ping\n"
            ),
            "each of {MANY} children prints ping and exits with 0 once all \
             {MANY} run: got {outcome:?}"
        );
    }
}

/// How many children of this process that nobody has waited for yet
/// mention `needle` on their command line.
fn children_mentioning(needle: &str) -> usize {
    our_children()
        .into_iter()
        .filter(|&pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|line| {
                String::from_utf8_lossy(&line).contains(needle)
            })
        })
        .count()
}

/// The second command ends, and is waited for, before the first may end:
/// the results still come back in command order, not in the order the
/// commands finished. The test runs beside `run_all` on its runtime
/// (`tokio::join!`, `run_all` polled first), and orders the commands: the
/// second marks that it runs and waits for `go`; the test finds its pid
/// among this process's children, lets it go, and waits on tokio's
/// blocking pool until `run_all` has waited for it (reaped it: it is no
/// longer a child). A task that reaps its child has its result ready, and
/// the test yields to the runtime before it lets the first command end:
/// by then `run_all` has been polled with the second's result in hand,
/// and the first, still running, can only end later. No pause decides it.
pub(super) fn keeps_command_order_when_the_last_ends_first() {
    let scratch = scratch();
    let path = |name: &str| {
        let path = scratch.path().join(name);
        path.to_str().expect("a UTF-8 temporary path").to_string()
    };
    let (release, started, go) = (path("release"), path("started"), path("go"));
    let commands = vec![
        worker(&["emit-then-wait", &release]),
        shell(
            r#": > "$1"; while [ ! -e "$2" ]; do sleep 0.01; done; exit 3"#,
            &[&started, &go],
        ),
    ];
    let outcomes = runtime().block_on(async {
        let given_up = Arc::new(AtomicBool::new(false));
        let _give_up = GiveUpOnDrop(Arc::clone(&given_up));
        let test = async {
            let second = blocking({
                let (started, given_up) =
                    (started.clone(), Arc::clone(&given_up));
                move || {
                    wait_until(&given_up, || Path::new(&started).exists());
                    child_mentioning(&started)
                }
            })
            .await
            .expect("the second command runs until it is let go");
            fs::write(&go, "").expect("cannot create the go file");
            let given_up = Arc::clone(&given_up);
            blocking(move || wait_until(&given_up, || !is_our_child(second)))
                .await;
            // Whatever is left of the second command's task, and is ready,
            // runs before this goes on; and `run_all` is polled each time.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            fs::write(&release, "").expect("cannot create the release file");
        };
        let (outcomes, ()) =
            tokio::join!(biased; run_all(commands, NEVER), test);
        outcomes
    });
    assert!(
        matches!(
            &outcomes[0],
            Ok(Outcome::Finished { code: Some(0), stdout }) if stdout == "ping\n"
        ),
        "the first command (which ended last) prints ping and exits with \
         0; got {:?} (results in command order, not in the order the \
         commands finished)",
        outcomes[0]
    );
    assert!(
        matches!(&outcomes[1], Ok(Outcome::Finished { code: Some(3), .. })),
        "the second command (which ended first) exits with 3; got {:?}",
        outcomes[1]
    );
}

/// The child of this process whose command line holds `needle`, if one
/// runs (a child only: a shell's own children, forked but not yet
/// running their program, show the shell's command line too).
///
/// A process in the middle of `exec` shows an empty command line for a
/// moment (its new memory has no arguments in it yet), so the search is
/// made again while a running child of ours shows one.
fn child_mentioning(needle: &str) -> Option<u32> {
    let command_line = |pid: u32| {
        fs::read(format!("/proc/{pid}/cmdline"))
            .map(|line| String::from_utf8_lossy(&line).into_owned())
    };
    loop {
        let children = our_children();
        if let Some(&pid) = children.iter().find(|&&pid| {
            command_line(pid).is_ok_and(|line| line.contains(needle))
        }) {
            return Some(pid);
        }
        let in_exec = children.iter().any(|&pid| {
            is_running(pid)
                && command_line(pid).is_ok_and(|line| line.is_empty())
        });
        if !in_exec {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `wait` on a thread of tokio's blocking pool: the runtime's own
/// thread goes on driving `run_all` meanwhile.
async fn blocking<T: Send + 'static>(
    wait: impl FnOnce() -> T + Send + 'static,
) -> T {
    tokio::task::spawn_blocking(wait)
        .await
        .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
}

/// Waits until `done`, or until the wait is given up.
fn wait_until(given_up: &AtomicBool, done: impl Fn() -> bool) {
    while !done() && !given_up.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Gives up the waits on the blocking pool when it is dropped: at the end
/// of the trial's future, or as a panic in `run_all` unwinds through it.
/// Dropping a runtime waits for its blocking threads, so a wait left
/// running would turn that panic into a hang.
struct GiveUpOnDrop(Arc<AtomicBool>);

impl Drop for GiveUpOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
