//! `run_all`, with this crate's `worker` binary as the commands: codes
//! and output in command order, the commands run at once, and those past
//! the deadline are killed and waited for.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use exercises::ch08_tokio::{Outcome, run_all};
use tokio::process::Command;

use super::{paused_runtime, runtime};

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
/// that cannot start is an error of its own. A child killed by a signal
/// has no code (`None`), and output that is not UTF-8 is decoded lossily.
/// Only stdout is piped: `cat`, whose stdin and stderr the caller set to
/// files, reads the one to its end and writes to the other.
pub(super) fn reports_code_and_output() {
    // The last command's stdin and stderr are files the caller chose: it
    // reads the one to its end and writes to the other.
    let scratch = scratch();
    let (input, errors) =
        (scratch.path().join("input"), scratch.path().join("errors"));
    fs::write(&input, "from the caller's file\n").expect("cannot write input");
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
        ],
        NEVER,
    ));
    assert_eq!(outcomes.len(), 6, "one result per command");
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
    assert!(
        outcomes[2].is_err(),
        "a program that does not exist cannot start: expected an Err, \
         got {:?}",
        outcomes[2]
    );
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
}

/// Three children each wait until all three have started; they finish
/// and print their pids, three different ones.
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
}

/// Three children never exit, one of them with its stdout sent to
/// `/dev/null`, so that its pipe ends at once; with a deadline of 200 ms
/// all three are reported as timed out, and none of the processes is
/// left, running or zombie.
/// Then a command that exits at once, leaving a background process that
/// holds its stdout: it is timed out too, and once `run_all` has returned,
/// nothing of it holds the pipe's other end.
/// Then two children that would run for a minute, and the `run_all`
/// future is dropped once both run: both are killed (and tokio reaps
/// them); one left running never goes, and the trial times out.
pub(super) fn kills_commands_past_the_deadline() {
    let scratch = scratch();
    // A file that never appears: `emit-then-wait` waits for it forever.
    let never = scratch.path().join("never");
    let never = never.to_str().expect("a UTF-8 temporary path");
    let outcomes = runtime().block_on(run_all(
        vec![
            worker(&["emit-then-wait", never]),
            worker(&["emit-then-wait", never]),
            // Sends its stdout elsewhere, so its pipe ends at once, and
            // runs on: the deadline covers its exit, not only its output.
            shell(
                r#"exec "$1" emit-then-wait "$2" > /dev/null"#,
                &[WORKER, never],
            ),
        ],
        Duration::from_millis(200),
    ));
    for (index, outcome) in outcomes.iter().enumerate() {
        assert!(
            matches!(outcome, Ok(Outcome::TimedOut)),
            "command {index} never exits, so it runs into the deadline: \
             expected Ok(TimedOut), got {outcome:?}"
        );
    }
    assert_eq!(outcomes.len(), 3, "one result per command");
    let left = our_children();
    assert!(
        left.is_empty(),
        "run_all returned, but processes {left:?} it started are still \
         running, or exited and were never waited for (zombies): at the \
         deadline, Child::kill().await, which kills and then waits"
    );
    let path = |name: &str| {
        let path = scratch.path().join(name);
        path.to_str().expect("a UTF-8 temporary path").to_string()
    };
    // A command that exits at once, but whose background process holds
    // its stdout, and writes to it once the test says so: at the deadline
    // its output has not ended, so it is `TimedOut`, not `Finished` with
    // a part of it. Once `run_all` has returned (its runtime still alive,
    // and idle), the background process writes again, and finds that
    // nobody holds the pipe's other end any more: `run_all` left no
    // reader behind. A write may also succeed while another process of
    // ours is being started (between its `fork` and its `exec`, it holds
    // a copy of every descriptor), so the background process tries 50
    // times before it says the pipe is still read.
    let (go_on, pipe) = (path("go-on"), path("pipe"));
    let script = r#"printf early
(
    trap '' PIPE
    i=0
    while [ ! -e "$1" ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i + 1)); done
    i=0
    while [ $i -lt 50 ]; do
        if ! printf late 2> /dev/null; then
            echo closed > "$2.new" && mv "$2.new" "$2"
            exit
        fi
        sleep 0.02
        i=$((i + 1))
    done
    echo open > "$2.new" && mv "$2.new" "$2"
) &"#;
    let kept = runtime();
    let outcomes = kept.block_on(run_all(
        vec![shell(script, &[&go_on, &pipe])],
        Duration::from_millis(200),
    ));
    fs::write(&go_on, "").expect("cannot write to the scratch directory");
    assert!(
        matches!(outcomes.as_slice(), [Ok(Outcome::TimedOut)]),
        "a command printed early and exited at once, but a background \
         process it started held its stdout open past the deadline: \
         expected Ok(TimedOut), got {outcomes:?}. Its stdout had not \
         ended, so Finished, which promises all of it, would be a part; \
         read stdout to its end within the deadline, or report TimedOut"
    );
    while !Path::new(&pipe).exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let state = fs::read_to_string(&pipe).expect("cannot read the result");
    drop(kept);
    assert_eq!(
        state.trim(),
        "closed",
        "run_all had returned, its runtime still alive, and a background \
         process of its command could still write to the command's stdout \
         pipe: something of run_all (a reader task, spawned and detached) \
         still held the pipe's other end. When run_all returns, it leaves \
         nothing behind: read stdout in the command's own task, or keep \
         the reader in a JoinSet"
    );
    // Cancelled: the `run_all` future is dropped while two commands, each
    // of which would run for a minute, are running. Each writes its pid
    // to a file of its own, then becomes `sleep` (the same process).
    let (first, second) = (path("first-pid"), path("second-pid"));
    let record = r#"echo $$ > "$1.new" && mv "$1.new" "$1" && exec sleep 60"#;
    let commands = vec![shell(record, &[&first]), shell(record, &[&second])];
    runtime().block_on(async {
        let given_up = Arc::new(AtomicBool::new(false));
        let _give_up = GiveUpOnDrop(Arc::clone(&given_up));
        let started = blocking({
            let (first, second) = (first.clone(), second.clone());
            let given_up = Arc::clone(&given_up);
            move || {
                wait_until(&given_up, || {
                    Path::new(&first).exists() && Path::new(&second).exists()
                });
            }
        });
        // Whichever ends first, the other is dropped: `run_all`, here.
        tokio::select! {
            outcomes = run_all(commands, NEVER) => panic!(
                "run_all returned {outcomes:?} for commands that run for a \
                 minute"
            ),
            () = started => {}
        }
        let pids = [&first, &second].map(|file| {
            let pid = fs::read_to_string(file).expect("a pid file");
            pid.trim().parse::<u32>().expect("a pid")
        });
        // Until both have died: gone, or zombies (tokio reaps the
        // children it killed on drop in the background, some time
        // later). One left running never dies.
        let given_up = Arc::clone(&given_up);
        blocking(move || {
            wait_until(&given_up, || pids.iter().all(|&p| !is_running(p)));
        })
        .await;
    });
}

/// Two children: the first waits until a file appears; the second
/// writes 1 MiB, far more than a pipe holds, and only then creates the
/// file. The second finishes only if its pipe is read while `run_all`
/// waits for the first, and the first only once the second has finished.
/// What it writes is valid UTF-8, `aé` (three bytes) over and over, in
/// writes whose sizes are no multiple of 3, so that some pipe reads end in
/// the middle of an `é`: it must come back intact (decode the whole
/// output, not each read on its own). A fourth writes 20 MiB, all of
/// which must come back.
pub(super) fn drains_every_pipe_while_it_waits() {
    const BYTES: usize = 1 << 20;
    // More than any "safety cap" a reader might pick: 20 MiB.
    const LARGE: usize = 20 << 20;
    // `aé`s, three bytes each, to make up (almost) `BYTES` bytes.
    const PAIRS: usize = BYTES / 3;
    let scratch = scratch();
    let flag = scratch.path().join("written");
    let flag = flag.to_str().expect("a UTF-8 temporary path");
    let bytes = (3 * PAIRS).to_string();
    // A third writes as much to its stderr, which the caller sends
    // nowhere: no pipe for `run_all` to drain, unless it makes one.
    let mut noisy = shell(
        r#"head -c "$1" /dev/zero >&2 && echo quiet"#,
        &[&BYTES.to_string()],
    );
    noisy.stderr(Stdio::null());
    // A fourth writes 20 MiB of zeros, then a line: all of it is kept,
    // with no cap of the reader's own.
    let flood = shell(
        r#"head -c "$1" /dev/zero && echo end"#,
        &[&LARGE.to_string()],
    );
    let outcomes = runtime().block_on(run_all(
        vec![
            worker(&["emit-then-wait", flag]),
            shell(
                r#"yes "$3" | tr -d '\n' | head -c "$1" && : > "$2""#,
                &[&bytes, flag, "a\u{e9}"],
            ),
            noisy,
            flood,
        ],
        NEVER,
    ));
    assert!(
        matches!(
            &outcomes[3],
            Ok(Outcome::Finished { code: Some(0), stdout })
                if stdout.len() == LARGE + 4
                    && stdout.ends_with("\0end\n")
                    && stdout.bytes().take(LARGE).all(|byte| byte == 0)
        ),
        "the fourth command writes {LARGE} zero bytes and then end, and \
         exits with 0: got {} (stdout is everything the command wrote, \
         however much: no cap)",
        match &outcomes[3] {
            Ok(Outcome::Finished { code, stdout }) => format!(
                "code {code:?} and {} bytes of stdout, ending in {:?}",
                stdout.len(),
                &stdout[stdout.len().saturating_sub(4)..]
            ),
            other => format!("{other:?}"),
        }
    );
    assert!(
        matches!(
            &outcomes[2],
            Ok(Outcome::Finished { code: Some(0), stdout }) if stdout == "quiet\n"
        ),
        "the third command writes 1 MiB to its stderr, which the caller \
         set to Stdio::null(), then prints quiet: got {:?} (pipe stdout \
         only, and leave stderr as the caller set it)",
        outcomes[2]
    );
    assert!(
        matches!(
            &outcomes[0],
            Ok(Outcome::Finished { code: Some(0), stdout }) if stdout == "ping\n"
        ),
        "the first command prints ping and exits once the file appears: \
         got {:?}",
        outcomes[0]
    );
    assert!(
        matches!(
            &outcomes[1],
            Ok(Outcome::Finished { code: Some(0), stdout })
                if *stdout == "a\u{e9}".repeat(PAIRS)
        ),
        "the second command writes `a\u{e9}` {PAIRS} times ({} bytes of \
         valid UTF-8) and exits with 0: got {}",
        3 * PAIRS,
        match &outcomes[1] {
            Ok(Outcome::Finished { code, stdout }) => format!(
                "code {code:?} and {} bytes of stdout, with {} replacement \
                 characters (U+FFFD: each is an `\u{e9}` cut in two by a \
                 read, and decoded in halves)",
                stdout.len(),
                stdout.chars().filter(|&c| c == '\u{fffd}').count()
            ),
            other => format!("{other:?}"),
        }
    );
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
fn child_mentioning(needle: &str) -> Option<u32> {
    our_children().into_iter().find(|pid| {
        fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|line| String::from_utf8_lossy(&line).contains(needle))
    })
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

/// One command finishes early and the other runs past its deadline; each
/// deadline counts from its own command's start, not from when `run_all`
/// gets round to waiting for the command, nor from when another one ended.
///
/// On tokio's paused clock, held still: while a `spawn_blocking` task
/// runs, tokio does not move a paused clock on its own, so virtual time
/// moves only when the test advances it, and the children meanwhile run
/// in real time. Both commands start at virtual 0 s, with a deadline of
/// 10 s. At 5 s the test lets the first one exit, and waits until
/// `run_all` has waited for it (the process is reaped: its result is in);
/// then it moves the clock to 11 s. The second command is now past its
/// deadline, and is killed: `TimedOut`; the first is `Finished`. A
/// deadline counted from the first command's end would fall at 15 s,
/// which the clock never reaches; one deadline on the whole batch would
/// report the first command, which finished in time, as `TimedOut` too.
pub(super) fn counts_each_deadline_from_its_own_start() {
    const DEADLINE: Duration = Duration::from_secs(10);
    let scratch = scratch();
    let path = |name: &str| {
        let path = scratch.path().join(name);
        path.to_str().expect("a UTF-8 temporary path").to_string()
    };
    let (early_started, go) = (path("early-started"), path("go"));
    let (late_started, never) = (path("late-started"), path("never"));
    // Each marks that it runs, then becomes `worker emit-then-wait`, the
    // same process: it prints ping and exits once its file appears.
    let marked = r#": > "$1"; exec "$2" emit-then-wait "$3""#;
    let commands = vec![
        shell(marked, &[&early_started, WORKER, &go]),
        shell(marked, &[&late_started, WORKER, &never]),
    ];
    let outcomes = paused_runtime().block_on(async {
        let given_up = Arc::new(AtomicBool::new(false));
        let _give_up = GiveUpOnDrop(Arc::clone(&given_up));
        // Runs until `release` is dropped, after `run_all` has returned:
        // the clock stays where the test puts it.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let hold = tokio::task::spawn_blocking(move || {
            let _ = held.recv();
        });
        let test = async {
            let early = blocking({
                let (go, given_up) = (go.clone(), Arc::clone(&given_up));
                move || {
                    wait_until(&given_up, || {
                        Path::new(&early_started).exists()
                            && Path::new(&late_started).exists()
                    });
                    child_mentioning(&go)
                }
            })
            .await
            .expect("the first command runs until it is let go");
            // Both commands have started, and with them, in a right
            // solution, their deadlines. The tasks that are ready run
            // before the clock moves.
            tokio::task::yield_now().await;
            tokio::time::advance(Duration::from_secs(5)).await;
            fs::write(&go, "").expect("cannot create the go file");
            let given_up = Arc::clone(&given_up);
            blocking(move || wait_until(&given_up, || !is_our_child(early)))
                .await;
            tokio::time::advance(Duration::from_secs(6)).await;
        };
        let (outcomes, ()) = tokio::join!(run_all(commands, DEADLINE), test);
        drop(release);
        hold.await.expect("the clock's holder panicked");
        outcomes
    });
    assert_eq!(outcomes.len(), 2, "one result per command");
    assert!(
        matches!(
            &outcomes[0],
            Ok(Outcome::Finished { code: Some(0), stdout }) if stdout == "ping\n"
        ),
        "the first command exited 5 s after it started, 5 s before its \
         deadline, and run_all waited for it then: expected Finished with \
         code 0 and \"ping\\n\", got {:?} (one deadline on the whole batch, \
         as asyncio.wait_for(gather(...)) would put, loses the results \
         that came in time: give each command a deadline of its own)",
        outcomes[0]
    );
    assert!(
        matches!(&outcomes[1], Ok(Outcome::TimedOut)),
        "the second command never exits, and ran 11 s with a deadline of \
         10 s: expected Ok(TimedOut), got {:?}",
        outcomes[1]
    );
}

/// A command whose output comes after it exited: the shell starts a
/// background process that holds its stdout, writes its pid to a file,
/// and exits at once. Its output is read to the end of the pipe, which
/// comes when the background process is done too: a `run_all` that stops
/// reading when the command exits loses what comes after.
///
/// The background process writes only once `run_all` has had its chance
/// to see the shell exit, and then 40 000 bytes, more than one read
/// takes. The test watches from a thread of its own: it waits until the
/// shell is a zombie (or reaped already), and then until the runtime has
/// gone to sleep twice: before the first sleep the runtime looks for
/// events anew, the shell's exit among them, and before the second it
/// has run every task that exit woke. The test keeps waking the runtime
/// meanwhile (a task that takes pings), so those sleeps come. Then it
/// lets the background process write. No pause decides it.
pub(super) fn reads_stdout_to_its_end() {
    const BYTES: usize = 40_000;
    let scratch = scratch();
    let path = |name: &str| {
        let path = scratch.path().join(name);
        path.to_str().expect("a UTF-8 temporary path").to_string()
    };
    let (pid_file, go) = (path("pid"), path("go"));
    let script = r#"(while [ ! -e "$2" ]; do sleep 0.01; done; head -c "$3" /dev/zero) &
echo $$ > "$1.new" && mv "$1.new" "$1""#;
    let command = shell(script, &[&pid_file, &go, &BYTES.to_string()]);
    let parks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park({
            let parks = Arc::clone(&parks);
            move || {
                parks.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .expect("cannot build a tokio runtime");
    let given_up = Arc::new(AtomicBool::new(false));
    let (ping, mut pinged) = tokio::sync::mpsc::unbounded_channel::<()>();
    let watcher = std::thread::spawn({
        let (parks, given_up) = (Arc::clone(&parks), Arc::clone(&given_up));
        move || {
            wait_until(&given_up, || Path::new(&pid_file).exists());
            let Ok(pid) = fs::read_to_string(&pid_file) else {
                return;
            };
            let pid: u32 = pid.trim().parse().expect("a pid");
            wait_until(&given_up, || !is_running(pid));
            let seen = parks.load(Ordering::SeqCst);
            wait_until(&given_up, || {
                // An error: the runtime is gone, and so is the trial.
                let _ = ping.send(());
                parks.load(Ordering::SeqCst) >= seen + 2
            });
            let _ = fs::write(&go, "");
        }
    });
    let outcomes = runtime.block_on(async {
        let _give_up = GiveUpOnDrop(Arc::clone(&given_up));
        let pings =
            tokio::spawn(async move { while pinged.recv().await.is_some() {} });
        let outcomes = run_all(vec![command], NEVER).await;
        pings.abort();
        outcomes
    });
    given_up.store(true, Ordering::SeqCst);
    watcher.join().expect("the watcher panicked");
    assert!(
        matches!(
            outcomes.as_slice(),
            [Ok(Outcome::Finished { code: Some(0), stdout })]
                if stdout.len() == BYTES
        ),
        "a command's background process wrote {BYTES} bytes to its stdout \
         after the command itself had exited: expected Finished with code \
         0 and all {BYTES} bytes, got {} (read stdout to its end, until \
         the read gives 0, and only then wait: the pipe is the command's \
         output, and its exit is not the end of it)",
        match outcomes.as_slice() {
            [Ok(Outcome::Finished { code, stdout })] =>
                format!("code {code:?} and {} bytes", stdout.len()),
            other => format!("{other:?}"),
        }
    );
}
