//! The deadline: commands past it are killed and waited for, and each
//! counts from its own command's start.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use exercises::ch08_tokio::{Outcome, run_all};

use super::super::{paused_runtime, runtime};
use super::{
    GiveUpOnDrop, NEVER, WORKER, blocking, child_mentioning, is_our_child,
    is_running, our_children, scratch, shell, wait_until, worker,
};

/// Four children never exit, one of them with its stdout sent to
/// `/dev/null`, so that its pipe ends at once, and one that ignores
/// SIGTERM, so that only a kill (SIGKILL) ends it; with a deadline of
/// 200 ms all four are reported as timed out, and none of the processes
/// is left, running or zombie.
/// Then a command that exits at once, leaving a background process that
/// holds its stdout: it is timed out too, and once `run_all` has returned,
/// nothing of it holds the pipe's other end.
/// Then two children that would run for a minute, and the `run_all`
/// future is dropped once both run: both are killed (and tokio reaps
/// them); one left running never goes, and the trial times out.
/// Last, on a paused clock, a command that closes its stdout and runs on:
/// `run_all` must wait for its exit without spinning (see
/// `waits_without_spinning`).
pub(crate) fn kills_commands_past_the_deadline() {
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
            // Ignores SIGTERM (an ignored signal stays ignored across
            // `exec`), as a command that traps it to clean up may, for
            // ever: only SIGKILL, which nothing can ignore, ends it.
            shell(
                r#"trap '' TERM; exec "$1" emit-then-wait "$2""#,
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
    assert_eq!(outcomes.len(), 4, "one result per command");
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
    waits_without_spinning();
}

/// A command that closes its stdout and runs on, on tokio's paused clock:
/// held still until the command has closed its stdout and the runtime
/// has run (so `run_all` has seen the end of the pipe), then let go. A
/// `run_all` that waits for the exit lets the runtime idle, the clock
/// moves on to the deadline, and the command is killed: `TimedOut`. One
/// that spins on `try_wait` and `yield_now` keeps the runtime busy, so
/// the clock never moves, and the trial times out.
fn waits_without_spinning() {
    let scratch = scratch();
    let closed = scratch.path().join("closed");
    let closed = closed.to_str().expect("a UTF-8 temporary path").to_string();
    let command = shell(r#"exec >&-; : > "$1"; exec sleep 60"#, &[&closed]);
    let outcomes = paused_runtime().block_on(async {
        let given_up = Arc::new(AtomicBool::new(false));
        let _give_up = GiveUpOnDrop(Arc::clone(&given_up));
        let (release, hold) = hold_the_clock();
        let test = async {
            let given_up = Arc::clone(&given_up);
            blocking(move || {
                wait_until(&given_up, || Path::new(&closed).exists());
            })
            .await;
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            drop(release);
        };
        let (outcomes, ()) =
            tokio::join!(run_all(vec![command], Duration::from_secs(10)), test);
        hold.await.expect("the clock's holder panicked");
        outcomes
    });
    assert!(
        matches!(outcomes.as_slice(), [Ok(Outcome::TimedOut)]),
        "a command closed its stdout and ran on past its deadline: \
         expected Ok(TimedOut), got {outcomes:?}"
    );
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
/// deadline, and is killed: `TimedOut`; the first is `Finished`. It
/// ignores SIGTERM, and the test waits, the clock still at 11 s, until it
/// has died: a SIGTERM first, and a SIGKILL only after a grace period,
/// leaves it running for as long as the clock is held. A
/// deadline counted from the first command's end would fall at 15 s,
/// which the clock never reaches; one deadline on the whole batch would
/// report the first command, which finished in time, as `TimedOut` too.
/// The second command writes 1 MiB at 5 s, and the test waits until that
/// write has ended, so `run_all` has read it by then: a deadline that
/// starts again at each read (an idle timeout) would also fall at 15 s.
/// Once it has died, the test lets it exit all the same (a no-op).
/// Then, with a deadline of `Duration::MAX`, a command that exits only
/// after the clock has moved a thousand years on is `Finished`.
pub(crate) fn counts_each_deadline_from_its_own_start() {
    const DEADLINE: Duration = Duration::from_secs(10);
    let scratch = scratch();
    let path = |name: &str| {
        let path = scratch.path().join(name);
        path.to_str().expect("a UTF-8 temporary path").to_string()
    };
    let (early_started, go) = (path("early-started"), path("go"));
    let (late_started, never) = (path("late-started"), path("never"));
    let (talk, talked) = (path("talk"), path("talked"));
    // Each marks that it runs, then becomes `worker emit-then-wait`, the
    // same process: it prints ping and exits once its file appears.
    let marked = r#": > "$1"; exec "$2" emit-then-wait "$3""#;
    // The second one talks first: once `talk` appears, it writes 1 MiB,
    // more than a pipe holds, so its write ends only once `run_all` has
    // read most of it, and then marks that it has. It ignores SIGTERM (an
    // ignored signal stays ignored across `exec`): only SIGKILL ends it.
    let talker = r#"trap '' TERM
: > "$1"
while [ ! -e "$4" ]; do sleep 0.01; done
head -c 1048576 /dev/zero
: > "$5"
exec "$2" emit-then-wait "$3""#;
    let commands = vec![
        shell(marked, &[&early_started, WORKER, &go]),
        shell(talker, &[&late_started, WORKER, &never, &talk, &talked]),
    ];
    let outcomes = paused_runtime().block_on(async {
        let given_up = Arc::new(AtomicBool::new(false));
        let _give_up = GiveUpOnDrop(Arc::clone(&given_up));
        // Runs until `release` is dropped, after `run_all` has returned:
        // the clock stays where the test puts it.
        let (release, hold) = hold_the_clock();
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
            fs::write(&talk, "").expect("cannot create the talk file");
            let late = blocking({
                let (never, given_up) = (never.clone(), Arc::clone(&given_up));
                move || {
                    wait_until(&given_up, || {
                        !is_our_child(early) && Path::new(&talked).exists()
                    });
                    child_mentioning(&never)
                }
            })
            .await
            .expect("the second command runs until it is let go");
            tokio::time::advance(Duration::from_secs(6)).await;
            // The second command is past its deadline: killed (SIGKILL)
            // at once in a right solution, with the clock still at 11 s.
            // One that is only sent SIGTERM ignores it, and a grace period
            // before the SIGKILL never ends on a clock held still: the
            // wait never ends, and the trial times out.
            let given_up = Arc::clone(&given_up);
            blocking(move || wait_until(&given_up, || !is_running(late))).await;
            fs::write(&never, "").expect("cannot create the never file");
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
    let second = match &outcomes[1] {
        Ok(Outcome::Finished { code, stdout }) => {
            format!("Finished with code {code:?} and {} bytes", stdout.len())
        }
        other => format!("{other:?}"),
    };
    assert!(
        matches!(&outcomes[1], Ok(Outcome::TimedOut)),
        "the second command ran 11 s with a deadline of 10 s, and wrote \
         1 MiB at 5 s: expected Ok(TimedOut), got {second} (it exits only \
         when the test lets it, after 11 s). A deadline counts from the \
         command's start, not from its latest output: one timeout around \
         the whole run (the reads and the wait), not one per read"
    );
    // `Duration::MAX`, and `u64::MAX` seconds (less by a second's
    // nanoseconds, and as far from any clock's reach): no deadline. Then a
    // finite deadline of two thousand years, which a command that exits
    // after one thousand meets.
    for deadline in [
        Duration::MAX,
        Duration::from_secs(u64::MAX),
        Duration::from_secs(2000 * 365 * 24 * 60 * 60),
    ] {
        no_deadline_reached(deadline);
    }
}

/// A `deadline` too large to add to a clock's reading is no deadline, and
/// one of two thousand years is not reached in one thousand: on tokio's
/// paused clock, held still, a command waits for the test; the test moves
/// the clock a thousand years on (more than `u32::MAX` seconds, 136
/// years, and than the 30 years at which tokio cuts a single sleep
/// short), lets the runtime run, and only then lets the command exit. It
/// is `Finished`: no deadline of a day, a year or any other length stood
/// in for the one given.
fn no_deadline_reached(deadline: Duration) {
    const MILLENNIUM: Duration = Duration::from_secs(1000 * 365 * 24 * 60 * 60);
    let scratch = scratch();
    let go = scratch.path().join("go");
    let go = go.to_str().expect("a UTF-8 temporary path").to_string();
    let commands = vec![worker(&["emit-then-wait", &go])];
    let outcomes = paused_runtime().block_on(async {
        let given_up = Arc::new(AtomicBool::new(false));
        let _give_up = GiveUpOnDrop(Arc::clone(&given_up));
        // Runs until `release` is dropped, after `run_all` has returned:
        // the clock moves only when the test moves it.
        let (release, hold) = hold_the_clock();
        let test = async {
            let pid = blocking({
                let (go, given_up) = (go.clone(), Arc::clone(&given_up));
                move || {
                    wait_until(&given_up, || child_mentioning(&go).is_some());
                    child_mentioning(&go)
                }
            })
            .await
            .expect("the command runs until it is let go");
            tokio::task::yield_now().await;
            tokio::time::advance(MILLENNIUM).await;
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            fs::write(&go, "").expect("cannot create the go file");
            let given_up = Arc::clone(&given_up);
            blocking(move || wait_until(&given_up, || !is_our_child(pid)))
                .await;
        };
        let (outcomes, ()) = tokio::join!(run_all(commands, deadline), test);
        drop(release);
        hold.await.expect("the clock's holder panicked");
        outcomes
    });
    assert!(
        matches!(
            outcomes.as_slice(),
            [Ok(Outcome::Finished { code: Some(0), stdout })] if stdout == "ping\n"
        ),
        "a command with a deadline of {deadline:?} (a Duration too large \
         to add to a clock's reading is no deadline at all) ran a thousand \
         years on tokio's paused clock, then exited: expected Finished with \
         code 0 and \"ping\\n\", got {outcomes:?}. Do not cap the \
         deadline at a length of your own, nor let tokio::time::sleep cap \
         it (it cuts every sleep short at about 30 years): take the \
         deadline's instant with Instant::checked_add, and wait with \
         tokio::time::timeout_at, or with no timeout at all if there is no \
         such instant"
    );
}

/// Holds tokio's paused clock where the test puts it: a blocking task that
/// runs until the returned sender is dropped, so the runtime is never idle
/// meanwhile and never moves the clock on by itself. Call it on the
/// runtime; drop the sender, then await the handle.
fn hold_the_clock() -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>)
{
    let (release, held) = std::sync::mpsc::channel::<()>();
    let hold = tokio::task::spawn_blocking(move || {
        let _ = held.recv();
    });
    (release, hold)
}
