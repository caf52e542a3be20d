//! Chapter 2, Processes: five exercises.
//!
//! Start child processes, read everything they write, tell an exit code
//! from a signal, keep a crashing worker going, wire three processes into a
//! pipeline, and keep a secret out of a child's environment.
//!
//! - Book: chapter 2, "Processes", section "Exercises".
//! - Graded by `exercises/tests/graded/ch02_processes.rs`:
//!   `cargo course grade ch02`. The tests run the `worker` binary of
//!   this crate (see `course::worker`) as the child process.
//!
//! The tests check behaviour, and where the chapter is about concurrency,
//! that the work really runs concurrently: a pipeline whose stages run one
//! after another, or a reader that drains one pipe before the other, times
//! out and is told why.

// Compiled while this module is on: `course grade` leaves out, or stubs
// out again, what does not compile, so that it costs only its own points.
#![cfg(module = "ch02_processes")]

use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::panic;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;

/// Everything a finished child process left behind.
#[derive(Debug)]
pub struct Captured {
    /// All the bytes it wrote to its standard output.
    pub stdout: Vec<u8>,
    /// All the bytes it wrote to its standard error.
    pub stderr: Vec<u8>,
    /// How it ended.
    pub status: ExitStatus,
}

/// How a child process ended: it exited with a code, or a signal killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called `exit` (or returned from `main`) with this code.
    Code(i32),
    /// This signal ended it (6 is SIGABRT, 9 SIGKILL, 11 SIGSEGV).
    Signal(i32),
}

/// Runs `command` to its end with stdin empty, and returns everything it
/// wrote to stdout and stderr, byte for byte (text or not) and however much
/// that is, and its status. The
/// child is waited for even when reading its output fails, so it never
/// stays behind as a zombie. The trials write at most 64 MiB and a byte to
/// each stream, so a cap on how much is kept is caught only up to that size;
/// a larger cap is not graded, but it breaks the promise all the same.
/// There is no time limit either: the child runs to its end, however long
/// that takes. A deadline that kills a child still running after a long
/// while (thirty seconds, say) breaks this promise too, but is not graded:
/// every child of the trials ends within seconds, and only a trial that
/// runs longer than the deadline could tell, which no trial can do for
/// every deadline a learner might pick. When two things fail at once (both
/// reads, or a read and the wait), which of their errors comes back is not
/// graded: any one of them, as it is. Nor is what stays set on `command`
/// afterwards: the stdin, stdout and stderr that `capture` gives the child
/// may stay set on it.
///
/// # Graded promises
///
/// - Returns the child's stdout, stderr and status, running `command` as it was
///   set up (a working directory set on it is the child's, and so is an
///   environment changed with `Command::env_remove` or `Command::env_clear`): a
///   child that exits with code `3` and prints nothing gives empty `stdout` and
///   `stderr` and a status whose `code()` is `Some(3)`. Each stream is read to
///   its end, however long after the child's exit that comes: when a process
///   the child started in the background still holds its stderr open, what it
///   writes there later comes back too (no grace period after the exit, of
///   any length: the wait for the rest has no deadline). The end of the
///   output is not the child's end: a child that closes its stdout and stderr
///   and goes on running is waited for until it exits by itself, not killed,
///   and its status is its own exit's. It is waited for asleep, in
///   `Child::wait` (or in a pause between asks of `try_wait`), not in a loop
///   that asks again and again, which the trial cannot tell from a hang.
///   Trial: `ch02::capture::returns_output_and_status`.
/// - Reads stdout and stderr at the same time, so a child that writes 1 MiB to
///   each (far more than a pipe holds) finishes, and each comes back whole and
///   unmixed. There is no cap on how much: 64 MiB and a byte more to each also
///   come back whole. A read that a signal interrupts (`EINTR`,
///   `ErrorKind::Interrupted`), of either pipe and on whichever thread reads
///   it, has not failed and is tried again: the output still comes back
///   whole, the bytes read before the signal included (the read goes on
///   where it was, it does not start over). Trial:
///   `ch02::capture::drains_both_pipes_at_once`.
/// - The bytes come back unchanged, text or not: bytes that are not UTF-8,
///   every `\r\n` and the final newline are kept. Trial:
///   `ch02::capture::returns_the_bytes_unchanged`.
/// - The child's stdin is empty and at its end from the start, even when the
///   parent's own stdin holds input: a child that reads its stdin sees nothing
///   and goes on at once. It is open for reading: `cat` reads it to its end
///   and succeeds (a `/dev/null` opened for writing only, as `File::create`
///   opens it, fails its read with "Bad file descriptor"). Trial:
///   `ch02::capture::gives_the_child_an_empty_stdin`.
/// - If reading the child's stdout fails, or reading its stderr does, `capture`
///   returns that read's error as it is (kind and `raw_os_error()` kept, not a
///   new one with context added), but first lets go of that pipe (so a child
///   that keeps writing to it ends) and waits for the child, which is not left
///   behind as a zombie: when `capture` returns, the child has ended and been
///   waited for (not handed to a thread that waits in the background). The
///   child ends by itself, as it would: it is not killed (a child that goes on
///   after its writes to stdout fail still gets to its end). Only that pipe is
///   let go: after reading stdout failed, stderr is still read to its end, and
///   after reading stderr failed, stdout is, so a process the child started
///   that then writes 4 MiB to the other pipe gets it all written (no broken
///   pipe), and a thread that reads it is joined, not left running with the
///   pipe open after `capture` returns. If a thread to read a pipe cannot start
///   (the only one, or any one where there are more: the second of two, say,
///   after the first has started), `capture` returns that error as it is (the
///   one `thread::Builder::spawn` gave, kind and `raw_os_error()` kept, not a
///   new one with a clearer message); it does not panic, nor read one pipe and
///   then the other instead. It first lets go of both pipes, unread (neither
///   the calling thread nor a reader that did start reads either: hand a pipe
///   to a thread only once every reader has started), and then waits for the
///   child, which is not left behind, and not killed: it ends by itself, as it
///   would. A child that writes 128 KiB to stdout, then to stderr, then to
///   stdout again ends (each of those writes fails), where a wait with either
///   pipe still open, or a read of one pipe to its end before the other, would
///   never return. Trial: `ch02::capture::waits_even_when_a_read_fails`.
pub fn capture(command: &mut Command) -> io::Result<Captured> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // A pipe holds 64 KiB on Linux. A child that fills the stderr pipe
    // blocks until someone reads it, so reading stdout to its end first
    // would wait forever: stderr is drained on a thread of its own.
    // (`Command::output` solves the same problem without a second thread:
    // on Unix, std waits on both pipes at once with `poll(2)` and reads
    // whichever one has data. A thread per pipe is simpler to write.)
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    // `Builder::spawn` returns an error where `thread::spawn` would panic
    // (the machine is out of threads or memory), and drops the closure,
    // stderr pipe and all.
    let started = thread::Builder::new().spawn(move || {
        let mut stderr = Vec::new();
        stderr_pipe.read_to_end(&mut stderr).map(|_| stderr)
    });
    let stderr_reader = match started {
        Ok(reader) => reader,
        Err(error) => {
            // Nobody will read: let go of stdout too, so that a child that
            // writes ends (its writes fail), and wait for it before
            // returning the error, so that it is no zombie.
            drop(child.stdout.take());
            child.wait()?;
            return Err(error);
        }
    };
    let mut stdout = Vec::new();
    // The pipe is dropped at the end of this statement, even on an error.
    let stdout_read = child
        .stdout
        .take()
        .expect("stdout is piped")
        .read_to_end(&mut stdout);
    // The reader only reads, so it should never panic; if it does, its own
    // panic, message and all, goes on rather than a new one that hides it.
    let stderr_read = stderr_reader
        .join()
        .unwrap_or_else(|payload| panic::resume_unwind(payload));
    // Wait before looking at the errors: returning early with `?` would
    // drop the `Child` unwaited, and it would stay a zombie until this
    // program exits. If a read failed, its pipe is closed by now, so the
    // child's next write there fails instead of blocking forever.
    let status = child.wait()?;
    stdout_read?;
    Ok(Captured {
        stdout,
        stderr: stderr_read?,
        status,
    })
}

/// Tells an exit code from a killing signal. A code above 128 is a code
/// (only a shell folds signals into its `$?`), and a signal is its number
/// alone, whether or not the process dumped core.
///
/// It is given the status of a process that has ended, as `Child::wait`
/// returns it. A stopped or continued status, which `wait` never returns,
/// is outside what it is asked, but it is no success, whatever signal
/// stopped it: `exit_of` may panic on one, or give any `Exit` but
/// `Exit::Code(0)`; beyond that, what it does with one is not graded.
///
/// Read the status through its own methods (`ExitStatus::code`,
/// `ExitStatusExt::signal`, or `into_raw` decoded as `<sys/wait.h>` does),
/// not through its `Debug` text (`{:?}`), whose form std does not promise:
/// digits picked out of today's `ExitStatus(unix_wait_status(N))` decode
/// every status `wait` returns correctly, so no trial can tell them apart,
/// and that is not graded, but it breaks this contract all the same and
/// may give wrong exits with any new Rust.
///
/// # Graded promises
///
/// - A process that exited gives `Exit::Code` with its code (`0`, `42`); one
///   that a signal killed gives `Exit::Signal` with the signal's number
///   (`Exit::Signal(6)` for an abort, `Exit::Signal(11)` for a segmentation
///   fault). Every code from `0` to `255` gives `Exit::Code` with that code,
///   `127` (a shell's "command not found") included. A status that is not an
///   end is no success: it never gives `Exit::Code(0)`, whatever stopped the
///   process (SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU, SIGTRAP at a debugger's
///   breakpoint, a real-time signal: any signal from `1` to `64`), and also
///   when it was continued. Trial: `ch02::exit_of::tells_codes_from_signals`.
/// - A signal that dumped core is still just its number: `Exit::Signal(6)`,
///   `9`, `11` or `15`, not the raw wait status. So is any other signal, with
///   or without a core dump: every number from `1` to `64` gives
///   `Exit::Signal` with that number, SIGPIPE (`13`) and SIGINT (`2`) included,
///   and so do `32` and `33` (which glibc keeps for itself) and the real-time
///   signals above them. Trial:
///   `ch02::exit_of::reads_the_signal_not_the_raw_status`.
/// - An exit code above 128 is a code, not a signal: `exit(134)`, `137`, `139`
///   and `255` give `Exit::Code(134)` and so on, and so does every code from
///   `129` to `255`, `130`, `141` and `143` (a shell's 128 + SIGINT, SIGPIPE
///   and SIGTERM) included. Trial: `ch02::exit_of::keeps_a_code_above_128`.
pub fn exit_of(status: ExitStatus) -> Exit {
    // On Unix a status holds either an exit code or a signal number;
    // `code()` is `None` exactly when a signal ended the process.
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => {
            unreachable!("a finished process has a code or a signal")
        }
    }
}

/// Runs the worker that `start` builds, and starts it again each time it
/// fails (a non-zero code or a signal), at most `max_restarts` times.
/// Returns every exit in order; the last one is a success unless the
/// restarts ran out. A crash of the worker never harms the supervisor.
/// A failed worker is started again at once, with no delay between runs:
/// a real supervisor backs off, waiting longer after each crash, but this
/// one leaves that out. A fixed pause between runs is caught only when it
/// makes forty restarts take far longer than forty-one runs: a short one
/// could only be told from a slow machine by a wall-clock upper bound,
/// which the trials do not use, so it is not graded. Nor is a worker's end
/// noticed late: the supervisor waits for the worker, asleep until it ends,
/// rather than asking `try_wait` now and then with a pause in between
/// (a sleep, or a `recv_timeout`), or again and again with none. Either is
/// caught, whatever the pause: while the worker runs, the trial finds the
/// supervisor asleep in a wait with a deadline, which wakes by itself, or
/// never asleep in a wait at all. `start` is called once for each run; the
/// worker's stdout and stderr are left as `start` set them, and its stdin
/// is `Stdio::null()`, whatever `start` set, so that a worker never reads
/// the supervisor's own input.
/// A worker that cannot be started has no exit: that error is returned at
/// once. Any `max_restarts` works, up to `usize::MAX`: it is a limit, not
/// a size.
/// A worker runs as long as it takes: one still running has not failed,
/// so a watchdog that kills a worker after some time and starts it again
/// breaks this contract, but is not graded, for the reason given for
/// `capture`: every worker of the trials ends within seconds, and no trial
/// can outlast every deadline.
/// A limit cut down to `u32::MAX`, or restarts counted in a `u32` that
/// wraps, breaks the promise that any `max_restarts` works, but is not
/// graded: it shows only after more than four billion failed runs, far
/// more than a trial can make.
///
/// A worker that a signal killed is reported as `exit_of` reports it: its
/// signal's number alone, also when it dumped core. The trials cannot check
/// that last part here: the grader runs every process with a core-file
/// limit of 0 that no process can raise, so no worker ever dumps core, and
/// a decoding that keeps the core-dump bit (`into_raw() & 0xff`, which
/// gives `Signal(134)` for an abort that dumped core) looks right. It is
/// wrong all the same, and not graded here: `exit_of`'s trials check it,
/// with statuses built by hand, so use `exit_of`.
///
/// # Graded promises
///
/// - Restarts the worker after each failure, whether a signal (an abort, a
///   segmentation fault) or a non-zero code, and stops after the first success:
///   a worker that aborts, segfaults, exits with `3` and then succeeds gives
///   `[Signal(6), Signal(11), Code(3), Code(0)]`. Every non-zero code is a
///   failure, each of the sysexits.h codes `64` to `78` (`EX_USAGE` to
///   `EX_CONFIG`) included, `EX_NOINPUT` (`66`) and `EX_NOPERM` (`77`) too,
///   though running again may not help: a worker that exits with `1`, each
///   code from `64` to `78`, `127` and `255` in turn and then succeeds is
///   restarted after each. Trial: `ch02::supervise::restarts_until_success`.
/// - A worker that always fails runs `1 + max_restarts` times, and all its
///   exits are returned: with `max_restarts` of `2`, three exits; with `0`,
///   one; with `40`, forty-one, each run started at once after the one before
///   (no delay between restarts, let alone one that grows); with `2047`, all
///   2048 exits, the first included (no cap on how many are kept; the trials
///   make at most 2048 runs, so a larger cap is not graded, but it breaks
///   this promise all the same). While a worker runs, the supervisor sleeps in
///   its wait until the worker ends, and does not wake now and then to ask
///   whether it has: it sleeps in a wait with no deadline (`Child::wait`, or a
///   channel's `recv` from a thread that waits), not in a sleep or a
///   `recv_timeout` between asks, however long; and a loop that asks without
///   sleeping (`try_wait` and `yield_now`) never sleeps in a wait. All of
///   these are caught. Trial:
///   `ch02::supervise::gives_up_after_the_last_restart`.
/// - A worker that succeeds at once is run once and not restarted: the exits
///   are `[Code(0)]`. `start` is called once per run and no more: once for
///   that worker, three times for one that aborts, exits with `3` and then
///   succeeds. Trial: `ch02::supervise::leaves_a_success_alone`.
/// - The worker's stdout and stderr are left as `start` set them, not piped: a
///   worker whose `start` sends them to files writes 1 MiB to each there and
///   ends, and one whose `start` leaves them alone writes to the supervisor's
///   own stdout and stderr (the same open files). Its stdin is empty, even
///   when the supervisor's own stdin holds input: a worker that reads its stdin
///   sees nothing, on every run, each restart included. It is `/dev/null`
///   (`Stdio::null()`), not a pipe, even one that nobody writes to and that
///   is closed before the wait: the worker's fd 0 is `/dev/null`. It is open
///   for reading: a worker's `cat` reads it to its end and succeeds (a
///   `/dev/null` opened for writing only, as `File::create` opens it, fails
///   its read with "Bad file descriptor"). Trial:
///   `ch02::supervise::leaves_the_workers_output_alone`.
/// - A worker killed by SIGKILL, SIGTERM or SIGINT (as Ctrl-C would), by
///   SIGHUP or SIGPIPE (which a service manager may count as a clean end), or
///   by SIGQUIT (the quit signal, which asks nothing of the supervisor), has
///   failed like any other and is started again: `[Signal(9), Signal(15),
///   Signal(2), Signal(1), Signal(13), Signal(3), Code(0)]`. Trial:
///   `ch02::supervise::restarts_a_killed_worker`.
/// - A worker that cannot be started, whatever the reason, makes `supervise`
///   return that `io::Error`, as it is (its kind and `raw_os_error()` kept,
///   not a new error of the same kind whose message says more), at once,
///   without another try, also when it is a restart after a crash: its
///   program does not exist (kind `NotFound`) or is not executable
///   (`PermissionDenied`; not made into a shell's exit `126`), or the start
///   fails for a moment (`EAGAIN`, kind `WouldBlock`, when the machine runs
///   out of processes, `EINTR`, `ENOMEM`, or `ETXTBSY`, "Text file busy",
///   while its program is still open for writing), though it might work if
///   tried again. So does an error from waiting for the worker (`ECHILD`,
///   when the supervisor's process ignores SIGCHLD): it is returned at once,
///   as it is (`raw_os_error()` gives `Some(10)`), not made into an exit, and
///   the worker is not started again. A panic in `start` is a bug in the caller's
///   code, not a crash of the worker: it goes on out of `supervise` as it is,
///   on the first run or a restart, not caught and made into an exit. Trial:
///   `ch02::supervise::returns_a_start_error`.
/// - Any `max_restarts` works, up to `usize::MAX`: it is a limit, not a size (a
///   worker that succeeds at once is run once), and it is neither cut to 32
///   bits nor read as a signed number: with `1 << 32`, `1 << 33`, `usize::MAX`
///   or `1 << 63`, a worker that aborts and then succeeds is restarted once,
///   `[Signal(6), Code(0)]`. Trial: `ch02::supervise::takes_any_limit`.
pub fn supervise(
    mut start: impl FnMut() -> Command,
    max_restarts: usize,
) -> io::Result<Vec<Exit>> {
    let mut exits = Vec::new();
    // One first run, then up to `max_restarts` more.
    for _ in 0..=max_restarts {
        // An empty stdin, so that the worker never reads ours. `status`
        // starts the worker and waits for it; `?` returns an error of
        // either step as it is, since neither is an exit of the worker. A
        // panic in `start` is not caught: it is the caller's bug.
        let status = start().stdin(Stdio::null()).status()?;
        let exit = exit_of(status);
        exits.push(exit);
        if exit == Exit::Code(0) {
            break;
        }
    }
    Ok(exits)
}

/// Runs the commands as a pipeline, `a | b | c`: each stage's stdout feeds
/// the next stage's stdin, the first reads nothing, and all stages run at
/// the same time. Returns the last stage's output, byte for byte (text or
/// not), and every stage's exit, in stage order (no stages: no output and
/// no exits). Each stage's stderr is left as its `Command` has it: the
/// parent's own stderr unless set.
///
/// As in a shell, a stage that exits early stops the stage before it: that
/// stage's next write to the pipe between them fails with a broken pipe
/// (the write returns `EPIPE`, or `SIGPIPE` kills the writer), so even
/// `yes | head -n 1` ends. If a stage cannot be started, the stages
/// already started are killed and waited for, and the error is returned.
///
/// When two things fail at once (reading the output and waiting for a
/// stage, or waiting for two stages), `pipeline` returns one of those
/// errors, once it has waited for every stage it can; which one is not
/// graded.
///
/// A stage that a signal killed is reported as `exit_of` reports it: its
/// signal's number alone, also when it dumped core. The trials cannot check
/// that last part here: the grader runs every process with a core-file
/// limit of 0 that no process can raise, so no stage ever dumps core, and a
/// decoding that keeps the core-dump bit (`Signal(134)` for an abort that
/// dumped core) looks right. It is wrong all the same, and not graded here:
/// `exit_of`'s trials check it, with statuses built by hand, so use
/// `exit_of`.
///
/// There is no time limit: every stage runs to its own end, however long
/// after the last stage's that comes, and its own exit is reported. A
/// deadline after which the stages still running are killed (a "grace
/// period" of five seconds after the last stage ends, say, against a stage
/// that ignores its broken pipe) breaks this promise, but is not graded,
/// for the reason given for `capture`: every stage of the trials ends
/// within seconds, and no trial can outlast every deadline a learner might
/// pick.
///
/// # Graded promises
///
/// - All the stages run at the same time: a first stage that waits until the
///   last stage has read its output still finishes, and the output is the last
///   stage's stdout. Trial: `ch02::pipeline::runs_the_stages_at_once`.
/// - Data streams through the stages while they run: 100,000 lines (1.3 MB, far
///   more than a pipe holds) pass through three stages and all come out, in
///   order. So does a pipeline of one stage: its 1 MiB is read while it runs
///   (a stage that fills its pipe waits until it is read, so waiting for it
///   before reading never ends). There is no cap on how much: 64 MiB and a
///   byte more through a last stage `cat` all come out, and both stages
///   succeed. A read of the last
///   stage's output that a signal interrupts
///   (`EINTR`, `ErrorKind::Interrupted`) has not failed and is tried again, as
///   in `capture`: the output still comes out whole, the bytes read before the
///   signal included. Trial: `ch02::pipeline::streams_more_than_a_pipe_holds`.
/// - Returns one exit per stage, in stage order, with each stage's own code
///   (`[Code(0), Code(0), Code(5)]`), and an empty output when the last stage
///   prints nothing. A stage that a signal killed gives `Exit::Signal`, as
///   `exit_of` does, SIGPIPE too: a first stage that kills itself with SIGPIPE
///   before a `cat` gives `[Signal(13), Code(0)]`, not a success. The output is the last stage's bytes as they are, also
///   when they are not UTF-8. Trial: `ch02::pipeline::reports_every_stage`.
/// - When the last stage exits early, the stages before it end at their next
///   write, by a broken pipe (`Exit::Code(70)` from the worker, or
///   `Exit::Signal(13)`, SIGPIPE), as `yes | head -n 1` ends in a shell; the
///   output is what the last stage wrote. The very next write fails, even of a
///   single byte that the pipe has room for: when the last stage has closed
///   its stdin (as one that exits does) and goes on, a first stage that then
///   writes a byte gets `EPIPE` and exits with `70`, not `0` (the parent holds
///   no read end of a pipe between stages, not even until the output is
///   read: it lets go of each as soon as the stage that reads it has
///   started). Trial:
///   `ch02::pipeline::an_early_exit_stops_the_stages_before`.
/// - If reading the last stage's output fails, `pipeline` returns that
///   read's error as it is (kind and `raw_os_error()` kept, not a new one
///   with context added), but first lets go of that pipe (so a last stage
///   that keeps writing to it ends) and waits for every stage, none of which
///   is left behind as a zombie: when `pipeline` returns, every stage has
///   ended and been waited for (not handed to a thread that waits in the
///   background). The last stage ends by itself: it is not killed. So it is when waiting for a stage
///   fails (another part of the program reaped it first, and `wait` returns
///   `ECHILD`): `pipeline` returns an `Err`, but only once it has waited for
///   every other stage, the ones before it and the ones after it, whatever
///   order it waits in (when the wait for the middle one of three stages
///   fails, the first and the last are still waited for), and each of them
///   ends by itself: none is killed, not even a last stage that has closed
///   its stdout and goes on (it is waited for until it ends). Trial:
///   `ch02::pipeline::waits_even_when_the_read_fails`.
/// - If a stage cannot be started, `pipeline` returns the error and leaves no
///   stage it had started behind, neither running nor unwaited for: whether
///   the first stage fails (none started yet), the second, or the third (the
///   two before it started). The error is the start's own, as it is (for a
///   program that does not exist, its kind `NotFound` and its code `ENOENT`:
///   `raw_os_error()` gives `Some(2)`), not a new one, not even one of the same
///   kind whose message names the stage. Trial:
///   `ch02::pipeline::stops_the_started_stages_on_a_failed_start`.
/// - The first stage's stdin is empty, even when the parent's own stdin holds
///   input, and so is the stdin of the only stage of a pipeline of one stage.
///   It is open for reading: a first stage `cat` reads it to its end and
///   succeeds (a `/dev/null` opened for writing only, as `File::create` opens
///   it, fails its read with "Bad file descriptor"). Trial:
///   `ch02::pipeline::the_first_stage_reads_nothing`.
/// - No stages give no output and no exits. Trial:
///   `ch02::pipeline::takes_no_stages`.
/// - Each stage's stderr is left as its `Command` has it: a stage whose stderr
///   goes to a file writes 1 MiB there and finishes. A pipeline of one stage
///   returns that stage's stdout. Every stage whose `Command` leaves stderr
///   alone, the last one included, and the only one of a pipeline of one stage
///   too, writes to the parent's own stderr (the same open file). `pipeline`
///   sets a stage's stdin and stdout and leaves the rest of its `Command` as it
///   is: the stages stay in the parent's process group (a shell's job control,
///   a new group for the pipeline, is not asked for, and a Ctrl-C for the
///   parent's job still reaches them), and a stage whose `Command` asks for a
///   group of its own (`CommandExt::process_group(0)`) leads one. Trial:
///   `ch02::pipeline::leaves_stderr_to_the_stage`.
pub fn pipeline(mut stages: Vec<Command>) -> io::Result<(Vec<u8>, Vec<Exit>)> {
    let mut children: Vec<Child> = Vec::with_capacity(stages.len());
    let mut previous_stdout: Option<Stdio> = None;
    let last = stages.len().saturating_sub(1);
    for (index, mut stage) in stages.drain(..).enumerate() {
        // The pipe from the previous stage becomes this stage's stdin.
        stage.stdin(previous_stdout.take().unwrap_or_else(Stdio::null));
        stage.stdout(Stdio::piped());
        let spawned = stage.spawn();
        // A `Command` keeps the `Stdio` it was given (`spawn` only borrows
        // it), so while `stage` lives, the parent holds a read end of the
        // pipe from the previous stage. Dropping it now leaves this child
        // the only reader: when it exits, the previous stage's next write
        // fails. Were the parent still holding a read end, that stage would
        // block on the full pipe instead, and the pipeline would never end.
        drop(stage);
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => {
                // Leave no stage behind: stop the ones already running.
                for mut started in children {
                    let _ = started.kill();
                    let _ = started.wait();
                }
                return Err(error);
            }
        };
        if index < last {
            let stdout = child.stdout.take().expect("stdout is piped");
            previous_stdout = Some(Stdio::from(stdout));
        }
        children.push(child);
    }
    // Every stage is running; now read the end of the pipeline.
    let mut output = Vec::new();
    let read = match children.last_mut() {
        // The pipe is dropped at the end of this arm, even on an error.
        Some(last) => last
            .stdout
            .take()
            .expect("stdout is piped")
            .read_to_end(&mut output),
        None => Ok(0),
    };
    // Wait for every stage before looking at any error, so that none is
    // left a zombie. If the read failed, its pipe is closed by now, so the
    // last stage's next write fails instead of blocking forever.
    let statuses: Vec<io::Result<ExitStatus>> =
        children.iter_mut().map(Child::wait).collect();
    read?;
    let exits = statuses
        .into_iter()
        .map(|status| status.map(exit_of))
        .collect::<io::Result<Vec<Exit>>>()?;
    Ok((output, exits))
}

/// Runs `command` in `dir` with an empty environment but for `PATH`, copied
/// as it is, bytes and all (so it can still find programs), and captures
/// what it wrote. The parent's own environment and working directory do
/// not change, not even while the child runs.
///
/// The environment is empty whatever the parent's or `command`'s own: a
/// variable set on `command` with `Command::env` does not reach the child
/// either, nor does one that another thread of the parent sets while
/// `run_isolated` runs. If `dir` does not exist, the command is not run
/// (not in another directory): the error of its start comes back. Checking
/// `dir` first (`fs::metadata(dir)?`) is not needed, and not graded apart
/// from the start: its error, returned as it is, has the same kind and code.
///
/// `run_isolated` changes `command` itself (its environment, working
/// directory and stdio), and those settings stay on it after it returns, as
/// `capture`'s stdio settings do: that is expected, and not graded.
///
/// It captures as `capture` does, and what `capture` leaves ungraded is
/// ungraded here too, for the same reasons: a cap on the output larger than
/// the trials' 64 MiB and a byte, and a time limit that kills a child still
/// running after a long while (a "sandbox budget" of thirty seconds, say).
/// Both break this contract all the same: the child runs to its end, however
/// long that takes, and all its output comes back.
///
/// # Graded promises
///
/// - The child's environment holds `PATH` and nothing else: a variable set in
///   the parent, such as a secret token, does not reach it, nor does one set
///   on `command` itself (`Command::env`), nor one whose name is `PATH` in
///   another case (`path`, `Path`: Linux tells names apart by case), nor one
///   that another thread of the parent sets while `run_isolated` runs, after
///   it has looked at the parent's variables and before the child starts.
///   (std reads the parent's environment again as it starts a child whose
///   environment was not cleared, so removing the parent's variables one by
///   one, as listed before, lets that one through: `Command::env_clear` does
///   not.) Trial: `ch02::run_isolated::hides_the_parents_secret`.
/// - The child's `PATH` is the parent's as it is when `run_isolated` is called
///   (read at each call, not kept from an earlier one), bytes and all (empty
///   and relative entries kept: `/usr/bin::bin:.:` stays that), also when it
///   is set but empty, and also when `command` sets a `PATH` of its own
///   (`Command::env`); when the
///   parent has no `PATH`, the child has none either (its environment is
///   empty, no default is made up, and a `PATH` set on `command` does not
///   stand in). Trial: `ch02::run_isolated::keeps_path`.
/// - The child starts in `dir`, and the parent's working directory is the same
///   afterwards. So does a `command` that has a working directory of its own
///   (`Command::current_dir`): `dir` replaces it, and a relative `dir` is
///   relative to the parent's working directory, not to the command's own
///   (`sub` is the parent's `sub`, not `own/sub`), and a `dir` whose name is
///   not UTF-8 is that name, byte for byte (a relative `sub-\xff` too). When
///   `dir` does not exist, the command does not run at all (not in another
///   directory, not in its own) and `run_isolated` returns the error of its
///   start, as it is (its kind `NotFound` and its code `ENOENT`:
///   `raw_os_error()` gives `Some(2)`), not a new one of its own. Trial:
///   `ch02::run_isolated::starts_in_the_given_directory`.
/// - Only the environment and the working directory change: the rest of
///   `command` is run as it was set up, not a copy rebuilt from its program and
///   arguments. The child stays in the parent's process group (isolating it
///   from the parent's job is not asked for: a Ctrl-C for that job still
///   reaches it), a command that asks for a group of its own
///   (`CommandExt::process_group(0)`) leads one, and an `argv[0]` set with
///   `CommandExt::arg0` is the child's. Trial:
///   `ch02::run_isolated::leaves_the_rest_of_the_command`.
/// - The parent's working directory never changes, not even while the child
///   runs (another thread of the parent sees it unchanged meanwhile), nor for
///   a moment before the child starts (to find `dir`'s absolute name, as `cd
///   "$dir" && pwd` does: `Command::current_dir` takes a relative `dir` from
///   the parent's directory by itself), nor when the command cannot be
///   started, which returns an `Err`. Trial:
///   `ch02::run_isolated::keeps_the_parents_directory_meanwhile`.
/// - The parent's own environment never changes, not even while the child
///   runs: another thread of the parent sees every variable, a secret
///   included, as it was, meanwhile and afterwards. Trial:
///   `ch02::run_isolated::keeps_the_parents_environment`.
/// - A parent's `PATH` that is not UTF-8 reaches the child as it is, byte for
///   byte. Trial: `ch02::run_isolated::keeps_a_path_that_is_not_text`.
/// - It captures as `capture` does: the child's stdin is empty, even when the
///   parent's own stdin holds input, and it reads the child's stdout and
///   stderr at the same time: a child that writes 1 MiB to each finishes, and
///   both come back whole. There is no cap on how much: 64 MiB and a byte more
///   to each also come back whole. A read that a signal interrupts (`EINTR`,
///   `ErrorKind::Interrupted`) is tried again, and the output still comes back
///   whole, the bytes read before the signal included. The end of the output
///   is not the child's end: a child that closes its stdout and stderr and
///   goes on running is waited for until it exits by itself, not killed, and
///   its status is its own exit's. Trial:
///   `ch02::run_isolated::drains_both_pipes_at_once`.
/// - If reading the child's stdout or stderr fails, `run_isolated` returns an
///   `Err`, as `capture` does, but first lets go of that pipe and waits for the
///   child, which is not left behind as a zombie: when `run_isolated`
///   returns, the child has ended (by itself: it is not killed) and been
///   waited for. If a thread to read a pipe cannot start, it returns that
///   error as it is, as `capture` does: it does not panic (as
///   `thread::scope`'s `Scope::spawn` does), and it lets go of both pipes
///   and waits for the child, not killed. Trial:
///   `ch02::run_isolated::waits_even_when_a_read_fails`.
pub fn run_isolated(command: &mut Command, dir: &Path) -> io::Result<Captured> {
    // `env_clear` and `current_dir` describe the child only: they take
    // effect between fork and exec, in the child's own copy of the process.
    command.env_clear().current_dir(dir);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    capture(command)
}
