//! Graded trials of chapter 8, Async: asyncio and tokio: the tokio
//! exercises (`ch08_futures.rs` grades the low-level ones).
//!
//! The fetches and the pipeline run on tokio's paused clock, where time
//! moves only when every task waits and then jumps to the next timer:
//! virtual durations are exact, so the fetches' total time is checked
//! against the ideal schedule, and a one-millisecond sleep means "until
//! everyone else is stuck". The "how" checks: a hundred echo clients wait
//! for each other between two lines; a client that sends nothing is
//! connected first; and child processes wait, through files, until all of
//! them have started. A version that does one thing at a time times out
//! and is told why.

// Compiled while its chapter is on: `course grade` leaves out a chapter
// that does not compile, so that it costs only its own points.
#![cfg(chapter = "ch08")]

// The trials' bodies, one module per exercise, in `ch08_tokio/`; the
// runtimes they run on are below.
mod fetch_all;
mod pipeline;
mod run_all;
mod serve;

use std::time::Duration;

use course::grader::Trial;
use fetch_all::{
    calls_fetch_only_within_the_limit, checks_its_limit, fills_the_limit,
    leaves_no_fetch_running, never_exceeds_the_limit, passes_a_fetch_panic_on,
    returns_bodies_in_url_order, takes_the_time_of_the_ideal_schedule,
};
use pipeline::{
    a_consume_panic_stops_the_producer, dropping_it_stops_both_tasks,
    keeps_every_item_in_order, panics_on_a_capacity_the_channel_refuses,
    producer_runs_ahead_of_a_slow_consumer,
    producer_waits_when_the_channel_is_full,
};
use run_all::{
    counts_each_deadline_from_its_own_start, drains_every_pipe_while_it_waits,
    keeps_command_order_when_the_last_ends_first,
    kills_commands_past_the_deadline, reads_stdout_to_its_end,
    reports_code_and_output, runs_the_commands_at_once,
};
use serve::{
    a_reset_ends_one_connection_only, a_silent_client_blocks_no_one,
    an_accept_error_ends_serve, answers_clients_at_once,
    closes_its_listener_on_shutdown, closes_open_connections_on_shutdown,
    echoes_bytes_as_sent, echoes_every_line, forgets_connections_that_ended,
    returns_ok_on_shutdown,
};
use tokio::runtime::{Builder, Runtime};

/// Deadline for trials whose only way to hang is missing concurrency, or
/// a shutdown that never comes.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

/// What a `pipeline` that never returns is told, beyond its first trial.
const PIPELINE_HUNG: &str = "pipeline never returned (if \
                             keeps_every_item_in_order timed out too, start \
                             there)";

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    vec![
        Trial::new("ch08::fetch_all::fills_the_limit", 2, fills_the_limit),
        Trial::new(
            "ch08::fetch_all::never_exceeds_the_limit",
            2,
            never_exceeds_the_limit,
        ),
        Trial::new(
            "ch08::fetch_all::calls_fetch_only_within_the_limit",
            1,
            calls_fetch_only_within_the_limit,
        ),
        Trial::new(
            "ch08::fetch_all::returns_bodies_in_url_order",
            1,
            returns_bodies_in_url_order,
        ),
        Trial::new(
            "ch08::fetch_all::takes_the_time_of_the_ideal_schedule",
            1,
            takes_the_time_of_the_ideal_schedule,
        ),
        // A longer timeout: 32 768 fetches take a second or two in a
        // debug build on a busy machine.
        Trial::new("ch08::fetch_all::checks_its_limit", 1, checks_its_limit)
            .timeout(Duration::from_secs(30))
            .on_timeout(
                "fetch_all never returned for a limit of 0: it must panic \
                 (assert!), not wait forever for a permit (or it never \
                 returned for 32 768 fetches with a limit of usize::MAX)",
            ),
        Trial::new(
            "ch08::fetch_all::passes_a_fetch_panic_on",
            1,
            passes_a_fetch_panic_on,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "fetch_all never returned after a fetch panicked, with a limit \
             of 1 and URLs left to fetch: the panicked fetch never gave its \
             slot back. Move an OwnedSemaphorePermit into its task, which \
             drops it however the task ends, even in a panic (a forgotten \
             permit and add_permits after the fetch miss that case)",
        ),
        // Exclusive: it counts the bytes left allocated, and another
        // trial's allocations meanwhile would count too.
        Trial::new(
            "ch08::fetch_all::leaves_no_fetch_running",
            1,
            leaves_no_fetch_running,
        )
        .exclusive(),
        Trial::new("ch08::serve::echoes_every_line", 1, echoes_every_line)
            .timeout(HANG_TIMEOUT)
            .on_timeout(
                "a client never got its line back: echo each line with its \
                 newline (read_line keeps it; lines() drops it), and keep \
                 reading until the client closes the connection",
            ),
        Trial::new(
            "ch08::serve::answers_clients_at_once",
            2,
            answers_clients_at_once,
        )
        // 1,100 clients connect at once, on a loaded machine.
        .timeout(Duration::from_secs(30))
        .on_timeout(
            "the clients (100, then 1,100) never all got their first line \
             back: each waits for all the others before it sends its second \
             line, so the server must serve every connection at once (a \
             task per connection, spawned and not awaited in the accept \
             loop), however many there are (no cap, not even at 1024)",
        ),
        Trial::new(
            "ch08::serve::a_silent_client_blocks_no_one",
            1,
            a_silent_client_blocks_no_one,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "a client that connected first and sends nothing held up the \
             clients behind it: serve each connection in a task of its \
             own, so the accept loop goes straight back to accept (with \
             no wait for the client to speak, however short: the trial's \
             paused clock is held still, so a timeout never ends)",
        ),
        Trial::new(
            "ch08::serve::returns_ok_on_shutdown",
            1,
            returns_ok_on_shutdown,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "serve never returned after the shutdown future completed, \
             while a client was still connected: select! between shutdown \
             and accept in the accept loop, and do not wait for open \
             connections to end (a client may never hang up)",
        ),
        Trial::new(
            "ch08::serve::closes_its_listener_on_shutdown",
            1,
            closes_its_listener_on_shutdown,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "serve never returned after the shutdown future completed, \
             with a client still connected (if returns_ok_on_shutdown \
             timed out too, start there)",
        ),
        Trial::new(
            "ch08::serve::closes_open_connections_on_shutdown",
            1,
            closes_open_connections_on_shutdown,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "a client that was still connected when serve shut down was \
             not disconnected by the time serve returned (or serve never \
             returned): keep the connections' tasks in a \
             tokio::task::JoinSet, and call its shutdown().await before \
             you return. Dropping the set only asks the tasks to stop, and \
             they close their sockets after serve has returned. A half of \
             the socket kept by a task of its own (a writer started with \
             tokio::spawn) keeps the connection open after the set's tasks \
             are gone",
        ),
        // Exclusive: it counts the bytes left allocated, and another
        // trial's allocations meanwhile would count too.
        Trial::new(
            "ch08::serve::forgets_connections_that_ended",
            1,
            forgets_connections_that_ended,
        )
        .timeout(HANG_TIMEOUT)
        .exclusive()
        .on_timeout(
            "1000 clients connected to serve one after the other, or 100 \
             at once with no client after them, and closed, and serve kept \
             something of each of them until its shutdown: a long-running \
             server would grow without end. Join the tasks of the \
             connections that ended as they end (a select! branch on \
             connections.join_next(), not only a sweep when the next \
             client arrives), and keep no record of each client (a map of \
             peer addresses)",
        ),
        Trial::new(
            "ch08::serve::a_reset_ends_one_connection_only",
            1,
            a_reset_ends_one_connection_only,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout("serve, or a client after the reset, never got an answer"),
        Trial::new(
            "ch08::serve::an_accept_error_ends_serve",
            1,
            an_accept_error_ends_serve,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "accept failed with EMFILE (no descriptor left), and serve \
             never returned, or left its open connection to be closed \
             later: an error from accept ends serve with that error, \
             once every connection is closed (break out of the loop, then \
             JoinSet::shutdown().await)",
        ),
        Trial::new(
            "ch08::serve::echoes_bytes_as_sent",
            1,
            echoes_bytes_as_sent,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the client closed its side after a last line without a \
             newline, and never got its echo and the end of the stream; \
             or it never got to send everything: it reads nothing until \
             it has, through small socket buffers, and a server that \
             echoes a line before it has ended (tokio::io::copy) fills \
             them and stops reading (read_until(b'\\n'), then write_all)",
        ),
        Trial::new(
            "ch08::pipeline::keeps_every_item_in_order",
            1,
            keeps_every_item_in_order,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "pipeline never returned: the consumer's recv() returns None \
             only once every Sender is dropped, so the producer's must be \
             the only one, dropped when the items run out",
        ),
        Trial::new(
            "ch08::pipeline::producer_waits_when_the_channel_is_full",
            2,
            producer_waits_when_the_channel_is_full,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(PIPELINE_HUNG),
        Trial::new(
            "ch08::pipeline::producer_runs_ahead_of_a_slow_consumer",
            1,
            producer_runs_ahead_of_a_slow_consumer,
        )
        // Over a million items through a channel, on a loaded machine.
        .timeout(Duration::from_secs(60))
        .on_timeout(PIPELINE_HUNG),
        Trial::new(
            "ch08::pipeline::dropping_it_stops_both_tasks",
            1,
            dropping_it_stops_both_tasks,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the test never got past dropping pipeline: it ran on a \
             paused clock, with an endless source and a consumer that \
             sleeps 1 ms an item",
        ),
        Trial::new(
            "ch08::pipeline::a_consume_panic_stops_the_producer",
            1,
            a_consume_panic_stops_the_producer,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "pipeline never returned after consume panicked: the consumer \
             is gone, so the producer's send fails; stop the producer then, \
             and pass the consumer's panic on",
        ),
        Trial::new(
            "ch08::pipeline::panics_on_a_capacity_the_channel_refuses",
            1,
            panics_on_a_capacity_the_channel_refuses,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "pipeline never returned for a capacity of 0, or for one above \
             Semaphore::MAX_PERMITS: it must panic, as \
             tokio::sync::mpsc::channel does",
        ),
        Trial::new(
            "ch08::run_all::reports_code_and_output",
            1,
            reports_code_and_output,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "run_all never returned for commands that exit at once: read \
             each child's stdout to its end, then wait for the child (and \
             a command that cannot start is an Err, not a wait); and pipe \
             stdout only: `cat`, whose stdin the caller set to a file, \
             waits forever for the end of a stdin pipe nobody closes",
        ),
        Trial::new(
            "ch08::run_all::keeps_command_order_when_the_last_ends_first",
            1,
            keeps_command_order_when_the_last_ends_first,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "run_all never returned, or never waited for the second of two \
             commands after it exited while the first still ran: wait for \
             every command at once (a task each), not one after the other",
        ),
        Trial::new(
            "ch08::run_all::runs_the_commands_at_once",
            2,
            runs_the_commands_at_once,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the commands did not run at the same time: each of the 3 \
             children waits until all 3 have started, and each of 70 \
             until all 70 run, so start every command (a task each) \
             before you wait for any, with no cap of your own on the \
             children alive at once",
        ),
        Trial::new(
            "ch08::run_all::kills_commands_past_the_deadline",
            2,
            kills_commands_past_the_deadline,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "run_all never returned for commands that never exit, with a \
             deadline of 200 ms (wrap each wait in tokio::time::timeout, \
             and when it elapses, kill the child; one of them sends its \
             stdout to /dev/null, so its pipe ends at once: the deadline \
             covers the wait for its exit too, not only the read; \
             another ignores SIGTERM, so kill it with SIGKILL, as \
             Child::kill does, not terminate it); or, once the run_all \
             future was dropped, its children went on running (set \
             kill_on_drop(true) on each Command: dropping run_all drops \
             its tasks, and with them each Child, which then kills its \
             process); or, for a command that closed its stdout and ran \
             on, on a paused clock, run_all spun on try_wait and \
             yield_now instead of awaiting child.wait(), so the runtime \
             never idled and the clock never moved to the deadline",
        ),
        Trial::new(
            "ch08::run_all::counts_each_deadline_from_its_own_start",
            1,
            counts_each_deadline_from_its_own_start,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "run_all never returned, on a paused clock that the test moved \
             to 11 s after the commands started, with a deadline of 10 s: \
             the first command had exited at 5 s, and the second was past \
             its deadline but never killed (it ignores SIGTERM: kill it \
             with Child::kill, SIGKILL, at the deadline, with no grace \
             period before). Give each command its deadline \
             from its own start (a tokio::time::timeout around its whole \
             run, in a task of its own), not from when you get round to \
             waiting for it or from when another command ended (and if \
             the first command was never waited for, wait for every \
             command at once)",
        ),
        Trial::new(
            "ch08::run_all::drains_every_pipe_while_it_waits",
            2,
            drains_every_pipe_while_it_waits,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "run_all never returned for a child that writes 1 MiB, more \
             than a pipe holds, while another waits for it to finish: a \
             child blocks on a full pipe until someone reads it, so read \
             each child's stdout while you wait for it (tokio::join!, or \
             read to the end first), and every child's at once, not one \
             child after the other; and pipe stdout only (a third child \
             writes 1 MiB to a stderr the caller set to Stdio::null(): a \
             pipe of yours that nobody reads blocks it)",
        ),
        Trial::new(
            "ch08::run_all::reads_stdout_to_its_end",
            1,
            reads_stdout_to_its_end,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "run_all never returned for a command whose background process \
             writes to its stdout after the command exited: read stdout to \
             its end, then wait for the command",
        ),
    ]
}

/// A one-thread runtime whose clock is paused: time moves only when every
/// task waits, and then jumps straight to the next timer. Durations
/// measured on it are exact, however busy the machine.
fn paused_runtime() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("cannot build a tokio runtime")
}

/// A one-thread runtime on the real clock, for sockets and processes.
fn runtime() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot build a tokio runtime")
}
