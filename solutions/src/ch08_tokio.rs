//! Chapter 8, Async: asyncio and tokio: four exercises with tokio.
//!
//! asyncio's high-level APIs have tokio counterparts. Fetch many URLs at
//! once with at most `limit` in flight (`gather` with a `Semaphore`); serve
//! many clients from one echo server (`start_server`); connect a producer
//! and a consumer through a bounded queue (`asyncio.Queue(maxsize)`); and
//! run subprocesses at once under a deadline (`create_subprocess_exec` and
//! `wait_for`).
//!
//! - Book: chapter 8, "Async: asyncio and tokio", section "Exercises".
//! - Graded by `exercises/tests/graded/ch08_tokio.rs`:
//!   `cargo course grade ch08`.
//!
//! The tests check behaviour, and where the chapter is about concurrency,
//! that the work really runs concurrently: on tokio's paused clock, the
//! fetches must fill the limit and the whole batch must take the time of
//! the ideal schedule; a hundred clients wait for each other between two
//! lines; the producer must run ahead of a slow consumer, but no further
//! than the queue allows; and child processes wait for each other before
//! they exit. A version that does one thing at a time times out and is
//! told why.

// Compiled while this module is on: `course grade` leaves out, or stubs
// out again, what does not compile, so that it costs only its own points.
// tokio built with `--cfg loom` (the .ci/loom step) has no `net` or
// `process`; the loom models do not need this module.
#![cfg(all(module = "ch08_tokio", not(loom)))]

use std::future::Future;
use std::io;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

/// Fetches every URL with `fetch`, running up to `limit` fetches at once,
/// and returns the bodies in the order of `urls`, whichever finishes
/// first: one body per entry, from that entry's own fetch, so a URL listed
/// twice is fetched twice. A fetch starts as soon as one in flight ends.
///
/// The limit counts calls: `fetch` is called for a URL only once fewer
/// than `limit` fetches are in flight, and a fetch is in flight from that
/// call until its future has finished. So a `fetch` that starts its work
/// when it is called, before its future is polled, keeps the limit too.
///
/// Panics if `limit` is 0, as `asyncio.Semaphore(0)` would wait forever,
/// even with no URLs to fetch, and only then: any larger `limit`, up to
/// `usize::MAX`, is fine, and one of at least `urls.len()` means no limit
/// at all. A fetch that panics makes `fetch_all` panic too, with the
/// fetch's own payload, unchanged.
///
/// The check of `limit` is the caller's contract, so it holds in every
/// build: an `assert!`, not a `debug_assert!`, which a release build
/// leaves out (and then a `limit` of 0 waits forever). That is not
/// graded: the graded tests are built in debug mode, where both panic.
///
/// Not graded either: a limit of your own making that can miss a wake,
/// such as a count of fetches in flight, checked, and then a
/// `Notify::notified()` made to wait for the next `notify_waiters` from a
/// fetch that ends. A fetch that ends between the check and the
/// `notified()` wakes nobody, and with every slot taken `fetch_all` waits
/// forever; but that window lies between two lines of `fetch_all`'s own
/// code, where no fetch and no trial can step in, and on one thread (the
/// paused clock's) it cannot open at all, so only luck on a runtime of
/// several threads would show it. A `Semaphore` loses no wake.
///
/// # Graded promises
///
/// - Never more than `limit` fetches are in flight, counting each from the
///   call of `fetch` (not the first poll of its future) until its future
///   has finished: `fetch` is called for a URL only once a slot is free.
///   The limit is one for the whole batch, whatever the URLs' hosts: with
///   8 URLs on 8 different hosts and a limit of 3, never more than 3 are
///   in flight (not `limit` per host, as aiohttp's `limit_per_host`).
///   Trials: `ch08::fetch_all::never_exceeds_the_limit`,
///   `ch08::fetch_all::calls_fetch_only_within_the_limit`.
/// - With at least `limit` URLs, `limit` fetches are in flight at once at
///   some moment. Trial: `ch08::fetch_all::fills_the_limit`.
/// - A fetch starts the moment a slot is free, so a batch takes the time
///   of the ideal schedule: six fetches of 10 ms, 3 at a time, take 20 ms;
///   one of 40 ms and six of 10 ms, 3 at a time, take 40 ms.
///   Trial: `ch08::fetch_all::takes_the_time_of_the_ideal_schedule`.
/// - The bodies come in the order of `urls`, whatever order the fetches
///   finish in, one per entry from that entry's own fetch: a URL listed
///   twice is fetched twice, and each entry gets its own fetch's body; no
///   URLs give no bodies. `fetch` gets each URL as it is given, not
///   trimmed, its `#fragment` kept (what to send is `fetch`'s business):
///   a URL with spaces around it is fetched with them, and an
///   empty entry or one of blanks only is fetched too, as it is (not
///   skipped, nor given an empty body of `fetch_all`'s own). Each body
///   is returned as its fetch gave it: not trimmed (a trailing newline
///   stays), a leading byte order mark kept, an empty body too, and each entry is fetched once, an entry
///   whose body is empty included (an empty body is not retried). A fetch
///   is waited for however long it takes, with no timeout of
///   `fetch_all`'s own, however long (not even a century's): one that
///   takes a thousand years of virtual time (on tokio's paused clock)
///   still gives its body.
///   Trials: `ch08::fetch_all::returns_bodies_in_url_order`,
///   `ch08::fetch_all::calls_fetch_only_within_the_limit`.
/// - A `limit` of 0 panics before any `fetch` is called, also with no
///   URLs at all; a `limit` of `usize::MAX` does not panic and means no
///   limit: 8 fetches of 10 ms all run at once, in 10 ms. So does every
///   other `limit` above `Semaphore::MAX_PERMITS` (`MAX_PERMITS + 1`,
///   `usize::MAX - 1`: clamp them all, not one value only), and any
///   `limit` of at least `urls.len()`, however many URLs: 300 fetches of
///   10 ms, with a limit of `usize::MAX` or of 300, all run at once, and
///   so do 70 000 with a limit of `usize::MAX`, whatever the machine (no
///   cap of your own, not even one that grows with the number of cores,
///   nor the 65 535 ports a machine has).
///   Trial: `ch08::fetch_all::checks_its_limit`.
/// - A fetch that panics makes `fetch_all` panic with that fetch's own
///   payload, as it is (not a message that wraps it, as a `JoinError`'s
///   `unwrap` gives, nor a new panic with the same text): a fetch that
///   panics with a `&'static str` makes `fetch_all` panic with that
///   `&'static str`, not a `String`, and one that panics with a value of
///   its own type (`panic_any(FetchError(503))`) makes `fetch_all` panic
///   with that value, not a message. A fetch that panics is not called
///   again (not even when a second call would succeed), and its slot is
///   free again: with a limit of 1, `fetch_all` panics rather than wait
///   forever for the slot the panicked fetch held. Pass the panic on as
///   soon as you see it, not after the whole batch: whether a fetch after
///   it has started by then is up to you, but none runs on to its end
///   (the next promise).
///   Trial: `ch08::fetch_all::passes_a_fetch_panic_on`.
/// - A `fetch_all` that ends early leaves no fetch running: once its
///   future is dropped (cancelled, by an outer `timeout` say), or once it
///   has panicked because a fetch panicked, none of the other fetches runs
///   on to its end. Nor does a `fetch_all` that has returned leave
///   anything allocated behind it: a thousand calls in a row, on one
///   runtime, give back every byte they took, to within 4 KiB in all (no
///   semaphore made `'static` with `Box::leak`, for one).
///   Trial: `ch08::fetch_all::leaves_no_fetch_running`.
pub async fn fetch_all<F, Fut>(
    urls: &[String],
    limit: usize,
    fetch: F,
) -> Vec<String>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = String> + Send + 'static,
{
    assert!(limit > 0, "fetch_all needs a limit of at least one");
    // A permit per fetch in flight. Only the loop below asks for them, one
    // URL after the other.
    // `Semaphore::new` panics above `Semaphore::MAX_PERMITS` (about
    // `usize::MAX >> 3`); no batch of URLs comes near that, so a larger
    // limit is clamped to it and still means "no limit".
    let permits = Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS)));
    // A JoinSet, not loose `JoinHandle`s: if the caller drops this future,
    // the set aborts the fetches still running.
    let mut fetches = JoinSet::new();
    for (index, url) in urls.iter().enumerate() {
        // The permit first, then the call. Calling `fetch` may already do
        // the work (an `async fn` only builds a future, but a plain `fn`
        // that returns one may start a request, or a thread, right away),
        // so a URL's `fetch` is not even called until a slot is free.
        // Waiting here, in the caller's task, also starts the fetches in
        // URL order. `acquire_owned` takes an `Arc`: the permit must move
        // into the task, and outlive this loop's borrow of the semaphore.
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let body = fetch(url.clone());
        fetches.spawn(async move {
            // Held until the fetch is done: the task drops it when it
            // ends, and the loop above gets its next slot. (Had the task
            // panicked, the permit would be dropped all the same.)
            let _permit = permit;
            (index, body.await)
        });
    }
    // The set yields in completion order; the index puts each body back
    // in its URL's place.
    let mut bodies = vec![String::new(); urls.len()];
    while let Some(done) = fetches.join_next().await {
        let (index, body) = done.unwrap_or_else(|error| {
            // A fetch that panicked: go on panicking with its own payload,
            // as it is (`unwrap` would wrap it in a message about the
            // `JoinError`).
            std::panic::resume_unwind(error.into_panic())
        });
        bodies[index] = body;
    }
    bodies
}

/// Echoes every line each client sends, back to that client, byte for
/// byte (its line ending as sent, bytes that are not UTF-8 too, and a last
/// line without a newline as it is), serving each connection in a task of
/// its own, until `shutdown` completes. Then it
/// stops accepting, closes every open connection, and returns `Ok`: by
/// the time it returns, its listener and every connection it served are
/// closed.
///
/// An error from `accept` ends `serve` with that error, its connections
/// closed as well; an error on one connection ends that connection only.
///
/// A line has no length limit: however long, it comes back whole once it
/// has ended (the server holds it in memory until then). The trial checks
/// this with a line of 80 MiB; a limit above that is not graded, as a
/// longer line would take a trial more memory than it should.
///
/// The accept loop waits for nothing from a new client before it goes
/// back to `accept`. A wait for `readable()` on a socket just accepted is
/// not graded, though it is as wrong: tokio takes an accepted socket as
/// readable at once (a readiness it may assume), so that wait ends at
/// once, whatever the client does, and no trial can see it; a wait for
/// the client's first byte (`peek`, a read) is graded.
///
/// # Graded promises
///
/// - Each line a client sends comes back to that client, newline and all,
///   with several clients connected; several lines sent in one write come
///   back as as many lines. Trial: `ch08::serve::echoes_every_line`.
/// - The echo is the bytes sent, unchanged: a `\r\n` ending, bytes that
///   are not UTF-8, a line of 80 MiB (whole, though no socket takes it in
///   one write, and not cut off or refused by a limit on a line's length),
///   and a last line without a newline, echoed when the client closes its
///   side; then `serve` closes that connection. A line comes back once
///   it has ended, not in pieces before: a client that sends it all,
///   through sockets with small buffers, before it reads anything, gets
///   it all back.
///   Trial: `ch08::serve::echoes_bytes_as_sent`.
/// - Every connection is served at the same time: 100 clients connected
///   at once each get their first line back before any of them sends a
///   second one, and so do 1,100 (no cap on the connections served at
///   once, not even at 1024; where the process may not open 4096 file
///   descriptors, this part is skipped). Trial:
///   `ch08::serve::answers_clients_at_once`.
/// - A client that connects first and sends nothing holds up no one: the
///   clients after it are served, and the accept loop waits for no word
///   from it, nor for any timeout (on tokio's paused clock, held still,
///   the clients after it are served all the same).
///   Trial: `ch08::serve::a_silent_client_blocks_no_one`.
/// - `serve` runs until `shutdown` completes, then returns `Ok(())`, also
///   with a client still connected; until then it serves every client,
///   however long it stays silent (no idle timeout): one silent for an
///   hour, on tokio's paused clock, still gets its next line back. Nor
///   does it give up on a client slow to read its echoes (no write
///   timeout): one that sends a line of 2 MiB, through sockets with small
///   buffers, and reads its echo only a year later, on the paused clock,
///   gets it all.
///   Clients that keep connecting do not put the shutdown off: with 200 of
///   them waiting to be accepted when it completes, `serve` accepts at
///   most 50 more before it returns, all of them before it has seen the
///   shutdown complete: once the shutdown future has returned `Ready`,
///   `serve` accepts no client (no drain of the queue; a client never
///   accepted finds its connection reset). Nor does a burst of accepts:
///   with 200 clients waiting, and a shutdown that completes as `serve`
///   accepts the first of them, `serve` accepts at most 50 more before it
///   returns (it looks at the shutdown between two clients, and takes no
///   batch of queued clients in one go).
///   Trial: `ch08::serve::returns_ok_on_shutdown`.
/// - When `serve` returns after the shutdown, its listener is closed
///   already, not due to close later: no client can connect any more.
///   Trial: `ch08::serve::closes_its_listener_on_shutdown`.
/// - When `serve` returns, every connection still open is closed already,
///   not due to close later: its client finds the end of the stream (or a
///   reset) at once, also a client that the server was in the middle of
///   writing a long line to (no half of the socket lives on in a task of
///   its own).
///   Trial: `ch08::serve::closes_open_connections_on_shutdown`.
/// - While it runs, `serve` keeps nothing of a connection that has ended,
///   not even a few bytes (no statistics per peer, no list of the errors
///   connections ended with, no finished tasks kept to be reaped in
///   batches later): after 1000 clients, one after the other, the first
///   that server ever had, have connected, had a line back and reset the
///   connection (so each ends with an error on the server's side), the
///   memory they took is given back, to within 4 KiB in all, before the
///   shutdown, not at it. So it is after a burst of 100 clients connected
///   at once, who all reset their connections, with no client after them:
///   a connection's task is reaped as it ends (a `join_next` branch in the
///   `select!`), not only when the next client arrives.
///   Trial: `ch08::serve::forgets_connections_that_ended`.
/// - An error on one connection (a client that resets it) ends that
///   connection only: other clients are still served, and the shutdown
///   still gives `Ok(())`. So does a client that resets its connection
///   while it still waits to be accepted: `accept` gives it, already
///   closed, and what then fails on it (a read, or `peer_addr`, which
///   gives `ENOTCONN`) is that connection's error, not the server's.
///   Trial: `ch08::serve::a_reset_ends_one_connection_only`.
/// - An error from `accept` (such as `EMFILE`: no file descriptor left)
///   ends `serve` with that very error, at once, with no pause and no
///   retry (on tokio's paused clock, no time passes), and by the time it
///   has returned, the connections it was serving are closed. So does a
///   transient one, such as `ConnectionAborted` (a client that gave up
///   while it waited in the queue) or `Interrupted` (a signal came during
///   the call, which std's blocking `accept` retries itself); the trial
///   makes `accept` fail so with a seccomp filter on its own thread: no
///   error is skipped, none retried.
///   Trial: `ch08::serve::an_accept_error_ends_serve`.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    // `select!` polls the same shutdown future on every round, so it must
    // stay put in memory between polls: pin it here, once.
    let mut shutdown = std::pin::pin!(shutdown);
    // The connections' tasks, kept so that `serve` can end them: nothing
    // it started outlives it.
    let mut connections = JoinSet::new();
    let ended = loop {
        tokio::select! {
            // Checked first, so that a shutdown is not put off by clients
            // that keep connecting.
            biased;
            () = &mut shutdown => break Ok(()),
            accepted = listener.accept() => match accepted {
                // A task per connection: a client that sends nothing
                // holds up its own task only, never the accept loop.
                Ok((socket, _peer)) => {
                    connections.spawn(echo_lines(socket));
                }
                Err(error) => break Err(error),
            },
            // Reap the tasks of closed connections as they end, so the
            // set does not grow with every client ever served. With an
            // empty set `join_next` is `None`, and `select!` skips this
            // branch on this round.
            Some(_) = connections.join_next() => {}
        }
    };
    // Dropping the set would only ask its tasks to stop: each is dropped,
    // and its socket closed, the next time the runtime gets to it, after
    // `serve` has returned (on a one-thread runtime, not before the caller
    // awaits something). `shutdown` aborts them all and waits until each
    // is gone, so every connection is closed when `serve` returns. A task
    // aborted in the middle of a write leaves its client half a line:
    // that is what closing an open connection means.
    connections.shutdown().await;
    // The listener is dropped, and closed, as `serve` returns: the accept
    // loop runs here, in `serve` itself. Moved into a task of its own, it
    // would stay open after `serve` returned, and clients could still
    // connect.
    ended
}

/// Copies lines from the client back to it, byte for byte, until it
/// closes its side.
async fn echo_lines(socket: TcpStream) -> io::Result<()> {
    let (reader, mut writer) = socket.into_split();
    let mut reader = BufReader::new(reader);
    // Bytes, not a `String`: `read_line` would fail on bytes that are not
    // UTF-8, and `lines()` would drop the `\r` of a `\r\n`. `read_until`
    // keeps the newline, so the echo has it too, and a last line without
    // one comes back without one; it returns 0 at end of file, when the
    // client is done.
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).await? > 0 {
        writer.write_all(&line).await?;
        line.clear();
    }
    Ok(())
}

/// Feeds `items` from a producer task into a channel that holds at most
/// `capacity` items, and consumes them with `consume` in a consumer task.
/// Returns what `consume` returned for each item, in the order of `items`.
///
/// The producer takes the items one at a time, and waits with the one in
/// hand while the channel is full (back-pressure): it is never more than
/// `capacity` items, plus that one, ahead of the consumer. When `items`
/// ends the producer ends, and the consumer finishes the items still in
/// the channel before it ends too (graceful shutdown).
///
/// The two tasks belong to the returned future: if it is dropped before
/// it completes (cancelled), both are aborted with it. From then on no
/// item is taken from `items`, and a `consume` future under way is
/// dropped where it waits, not run to its end.
///
/// The consumer waits for the next item as long as the producer takes to
/// send it: no idle timeout of its own ends the stream early. That is not
/// graded: the producer takes its items in its task, between two sends,
/// without an `.await`, so a paused clock cannot move while it does; and
/// in real time a trial would have to keep it busy for longer than any
/// timeout a consumer might pick.
///
/// If `consume` panics, `pipeline` panics too, with `consume`'s own
/// payload; the consumer is gone, its end of the channel closed, and the
/// producer stops: it takes no item from `items` after that. If `items`
/// panics, `pipeline` panics too, with the iterator's own payload.
///
/// Panics if `capacity` is 0, or above `Semaphore::MAX_PERMITS`
/// (`usize::MAX >> 3`), as `tokio::sync::mpsc::channel` does: either is
/// the caller's mistake, which no clamp hides (unlike `fetch_all`'s
/// limit, where `usize::MAX` means "no limit"). Any other `capacity` is
/// the channel's, however large: `pipeline` caps it at no queue length of
/// its own, and reserves nothing from it.
///
/// The items stream through: nothing is reserved in advance from the
/// length `items` announces (its `size_hint`), which may be more than any
/// memory holds. Graded only where such a reservation panics, with
/// `0..u64::MAX`: a smaller one the allocator grants costs memory that a
/// trial sharing the process with others cannot tell from theirs. Nor is a
/// reservation from the capacity under 1 KiB graded if it is shrunk to fit
/// before `pipeline` returns: the runtime's own allocations, as large,
/// hide it, and the results then come back in the room they need.
///
/// # Graded promises
///
/// - Returns `consume`'s result for every item, each item consumed once,
///   in the order of `items`, also when the consumer is the slower one and
///   the channel is full when `items` ends, for a `capacity` of 1, and for
///   an `items` that cannot tell its length in advance (a `filter`, whose
///   `size_hint` is only a lower bound of 0); no items give no results.
///   Any `u64` is an item: items in no order, repeated ones, and
///   `u64::MAX` (no value marks the end of the stream) each give a result
///   of their own, in their place. One `consume` at a time: each
///   `consume` future has finished before `consume` is called for the
///   next item (never two under way at once, even when the next item is
///   waiting in the channel). Also with the largest capacity a channel
///   takes, `Semaphore::MAX_PERMITS`: nothing is reserved from the
///   capacity either, neither room for that many results nor for a part
///   of them (a clamp such as `capacity.min(1024)`, even one shrunk at
///   the end): while 3 items go through a channel of that capacity, on a
///   one-thread runtime, its thread makes no allocation larger than those
///   it makes for 3 items through a channel of 3 (from 1 KiB up, room for
///   128 results: the runtime's own reach 512 bytes), and the results
///   come back in no more room than those of 3 items through a channel of
///   3 (a `Vec` that grew as they came; not one made with
///   `Vec::with_capacity(capacity.min(16))`, even so small a part).
///   Trial: `ch08::pipeline::keeps_every_item_in_order`.
/// - The producer is never more than `capacity` + 1 items ahead of the
///   consumer (taken from `items` and not yet given to `consume`:
///   `capacity` in the channel, one in hand), however long the consumer
///   is held up; and it waits for room as long as that takes, with no
///   timeout of its own, however long (not even a century's): held up a
///   thousand years of virtual time at each item (on tokio's paused
///   clock), the consumer still gets every item.
///   Trial: `ch08::pipeline::producer_waits_when_the_channel_is_full`.
/// - While the consumer is held up, the producer goes on until the channel
///   is full, and takes one more item to hold: whenever both wait, with
///   items left in `items`, `capacity` + 1 items have been taken from
///   `items` and not yet given to `consume` (a channel of `capacity`,
///   full, and one in hand; not a channel one short), with a `capacity`
///   of 3 and with one of 2^20 + 2^18, 1,310,720 (no cap on the capacity
///   given, not even at a million or 2^20; a cap above 1,310,720 is not
///   graded, as a trial cannot fill a channel of every size in its time).
///   The
///   producer and the consumer are tasks of their own, not loops in
///   `pipeline`'s own future: polled once and then left unpolled for a
///   second of virtual time while its caller sleeps, `pipeline` over
///   `0..5`, at 1 ms an item, takes and consumes all five meanwhile.
///   Trial: `ch08::pipeline::producer_runs_ahead_of_a_slow_consumer`.
/// - If the returned future is dropped before it completes, both tasks
///   stop with it: from then on no item is taken from `items`, and no
///   `consume` future runs to its end, even with an endless `items`
///   (`0..u64::MAX`, whose `size_hint` is exact: `pipeline` does not
///   panic, nor reserve room for that many results).
///   Trial: `ch08::pipeline::dropping_it_stops_both_tasks`.
/// - If `consume` panics, `pipeline` panics with that payload, as it is
///   (a `&'static str` stays a `&'static str`, not a new `String` of the
///   same text, and a payload of another type, `panic_any(DiskFull(3))`,
///   stays that value), and the producer stops once the consumer is gone,
///   quietly, with no panic of its own (not an `unwrap` of the failed
///   `send`: on a runtime of several threads that second panic may be
///   joined first, and `pipeline` would pass on the wrong payload): no
///   more than `capacity` + 1 items have been taken beyond those given to
///   `consume`, out of a source of ten thousand. Likewise, if `items`
///   panics (in the producer), `pipeline` panics with that payload, as it
///   is, and does not return the results of the items before it.
///   Trial: `ch08::pipeline::a_consume_panic_stops_the_producer`.
/// - A `capacity` of 0 panics before any item is taken or consumed, and
///   with no items at all too. So does a `capacity` above
///   `Semaphore::MAX_PERMITS` (`MAX_PERMITS + 1`, `usize::MAX`): it is
///   not clamped to the largest a channel takes.
///   Trial: `ch08::pipeline::panics_on_a_capacity_the_channel_refuses`.
pub async fn pipeline<I, C, Fut>(
    items: I,
    capacity: usize,
    consume: C,
) -> Vec<u64>
where
    I: IntoIterator<Item = u64>,
    I::IntoIter: Send + 'static,
    C: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = u64> + Send,
{
    let (sender, mut receiver) = mpsc::channel(capacity);
    // Each task in a `JoinSet` of its own, not behind a bare `JoinHandle`:
    // dropping a handle detaches its task, so a caller that dropped this
    // future (a `select!` that went the other way, a `timeout`) would leave
    // the producer and the consumer running with nobody to read their
    // results. Dropping a set aborts its task instead: the two end with
    // `pipeline`'s future, wherever it is dropped.
    let mut producer = JoinSet::new();
    let mut consumer = JoinSet::new();
    // The iterator moves into the producer as it is, not collected first:
    // taking the next item only once the last one is in the channel is
    // what carries the back-pressure back to the source. (So the producer
    // holds one item while it waits: `capacity` + 1 ahead at most.)
    let items = items.into_iter();
    producer.spawn(async move {
        for item in items {
            // Waits while the channel is full. An error means the
            // consumer is gone, and nobody wants the rest.
            if sender.send(item).await.is_err() {
                break;
            }
        }
        // The sender is dropped here, and with it the channel's only
        // sender: that drop is the shutdown signal the consumer sees.
    });
    let mut consume = consume;
    consumer.spawn(async move {
        let mut results = Vec::new();
        // `recv` returns the items still buffered after the sender has
        // gone, and `None` only once the channel is both closed and
        // empty: the loop drains what is left, then ends.
        while let Some(item) = receiver.recv().await {
            results.push(consume(item).await);
        }
        results
    });
    // A panic in either task goes on from here with its own payload, as
    // in `fetch_all`: `expect` would replace it with a message about the
    // `JoinError`.
    if let Some(Err(error)) = producer.join_next().await {
        std::panic::resume_unwind(error.into_panic());
    }
    match consumer.join_next().await {
        Some(Ok(results)) => results,
        Some(Err(error)) => std::panic::resume_unwind(error.into_panic()),
        None => unreachable!("the set holds the consumer until it is joined"),
    }
}

/// How a command run by [`run_all`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The command exited, and its stdout ended, before the deadline.
    Finished {
        /// Its exit status, `None` if a signal ended it.
        code: Option<i32>,
        /// Everything it wrote to stdout (lossily decoded as UTF-8).
        stdout: String,
    },
    /// The command was still running at the deadline, or its stdout was
    /// still open (a process it started held it), and it was killed (and
    /// waited for).
    TimedOut,
}

/// Runs every command at once, each with its stdout captured, and gives
/// each `deadline` from its own start: a command still running at its
/// deadline is killed, whatever the others do. Returns one result per
/// command, in the order of `commands`: an `Err` for a command that could
/// not be started, like `asyncio.gather(..., return_exceptions=True)`.
/// When `run_all` returns, none of the processes it started is left,
/// running or zombie.
///
/// Not graded: one deadline instant taken for the whole batch, before the
/// first command starts, where each command's should count from its own
/// start. It is as wrong, but it differs only by the real time that
/// starting the commands before it took, which tokio's paused clock does
/// not count and no trial can bound without a real clock.
///
/// `tokio::time::timeout`, given what is left of a command's deadline, is
/// as right as `timeout_at`: for a duration too large to add to the
/// clock's reading it sets no timer at all (it is `sleep` that cuts such a
/// wait short, at about 30 years).
///
/// # Graded promises
///
/// - Returns one result per command, in the order of `commands`:
///   `Finished` with the exit code and everything the command wrote to
///   stdout; `code` is `None` for a command a signal ended, stdout that is
///   not UTF-8 is decoded lossily (`U+FFFD`), stdout that is valid UTF-8
///   comes back as written, a leading byte order mark (`U+FEFF`), `\r\n`
///   and a lone `\r` included (no "text mode" that strips the one or
///   turns the others into `\n`, as Python's `utf-8-sig` and
///   `text=True` do), and a command that cannot
///   start gives an `Err`: the error its start gave, unchanged (its kind,
///   OS error number and message: `NotFound` for no such program,
///   `PermissionDenied` for a file that is not executable), not a new
///   error that wraps it, with a `deadline` of zero too (every command is
///   started, whatever the deadline; whether one that starts is then
///   `Finished` or `TimedOut` depends on how soon it exits). A `deadline`
///   too large to
///   add to a clock's reading (`Duration::MAX`) is no deadline: it does
///   not panic, and the command finishes. Only stdout is piped: a command
///   whose stdin and stderr the caller set to files (`cat`, then a line
///   to stderr) reads the one to its end and writes to the other.
///   Trial: `ch08::run_all::reports_code_and_output`.
/// - The results keep the order of `commands` when a later command ends,
///   and is waited for, before an earlier one.
///   Trial: `ch08::run_all::keeps_command_order_when_the_last_ends_first`.
/// - The commands run at the same time: every one is started before
///   `run_all` waits for any of them to end, however many there are (no
///   cap of your own on the children alive at once: 70 children that
///   wait until all 70 run all finish).
///   Trial: `ch08::run_all::runs_the_commands_at_once`.
/// - Every child's stdout is read while `run_all` waits, all children's
///   at once: a child that writes far more than a pipe holds (1 MiB)
///   finishes while another command is still running, and all it wrote is
///   returned, intact: valid UTF-8 (`aé` over and over, so that reads of
///   the pipe split some `é`s in two) comes back unchanged. Only stdout
///   is piped: a command's stderr stays as the caller set it, and one
///   that writes 1 MiB to a stderr set to `Stdio::null()` finishes. There
///   is no cap on what is kept: a command that writes 80 MiB (more than
///   a cap of 16 or 64 MiB) gets all 80 MiB back.
///   Trial: `ch08::run_all::drains_every_pipe_while_it_waits`.
/// - Stdout is read to its end, the end of the pipe, not only until the
///   command exits: what a background process the command started writes
///   to it after the command has exited (40 000 bytes, once `run_all` has
///   seen the exit) is returned too.
///   Trial: `ch08::run_all::reads_stdout_to_its_end`.
/// - A command still running at `deadline` is killed (SIGKILL, as
///   `Child::kill` sends: a command that ignores or traps SIGTERM is
///   killed all the same) and reported as `Ok(Outcome::TimedOut)`, also
///   one that has sent its stdout elsewhere (its pipe ends at once) and
///   runs on: the deadline covers the wait for its exit, not only the read
///   of its stdout, and `run_all` waits for that exit, not spins on it
///   (`try_wait` and `yield_now` in a loop keep tokio's paused clock from
///   ever moving on to the deadline); when `run_all` returns, none of
///   the processes it started is left, running or zombie. A command that has
///   exited but whose stdout has not ended at the deadline (a background
///   process it started holds the pipe) is `TimedOut` too, not `Finished`
///   with a part of its output, nor an `Err`: if `run_all` has waited for
///   its exit already, there is no process left to kill (tokio's
///   `Child::kill` then kills nothing and returns `Ok`).
///   When `run_all` returns, nothing of it is
///   left either: not even a reader of a command's stdout (a background
///   process that writes to that pipe then finds no one at the other
///   end). And if the `run_all` future is dropped (cancelled) while its
///   commands run, every one of them is killed: none is left running.
///   Trial: `ch08::run_all::kills_commands_past_the_deadline`.
/// - Each command's deadline counts from its own start, not from when
///   `run_all` gets round to waiting for it, nor from when another command
///   ended: of two commands started together, one that exits halfway to
///   the deadline is `Finished`, and the other, still running at the
///   deadline, is killed then and `TimedOut`: killed at the deadline
///   itself, with SIGKILL at once (no SIGTERM first and a grace period
///   before the SIGKILL: on tokio's paused clock, held at the deadline,
///   a command that ignores SIGTERM dies all the same). Nor does it count
///   from the command's latest output: the one still running wrote 1 MiB
///   halfway to its deadline, and is killed at its deadline all the same (a
///   deadline is not an idle timeout that each read starts again). And a
///   `deadline` too large to add to a clock's reading (`Duration::MAX`, or
///   `u64::MAX` seconds) is no deadline at all, however long the command
///   runs: one that exits after tokio's paused clock has moved a thousand
///   years on is `Finished` (no cap of a day, of `u32::MAX` seconds, or of
///   any other length, stands in for it); and a finite one, however far,
///   is kept as given: with a deadline of two thousand years, that command
///   is `Finished` too (`tokio::time::sleep` cuts every sleep short at
///   about 30 years; `Instant::checked_add` and `tokio::time::timeout_at`
///   keep any deadline).
///   Trial: `ch08::run_all::counts_each_deadline_from_its_own_start`.
pub async fn run_all(
    commands: Vec<Command>,
    deadline: Duration,
) -> Vec<io::Result<Outcome>> {
    let count = commands.len();
    // A task per command: the processes run at once whatever we do, but
    // their deadlines and their pipes need watching at once too.
    let mut runs = JoinSet::new();
    for (index, command) in commands.into_iter().enumerate() {
        runs.spawn(async move { (index, run_one(command, deadline).await) });
    }
    let mut outcomes: Vec<Option<io::Result<Outcome>>> =
        (0..count).map(|_| None).collect();
    while let Some(done) = runs.join_next().await {
        let (index, outcome) = done.unwrap_or_else(|error| {
            std::panic::resume_unwind(error.into_panic())
        });
        outcomes[index] = Some(outcome);
    }
    outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every task reports its command"))
        .collect()
}

/// Runs one command to its end or its deadline.
async fn run_one(
    mut command: Command,
    deadline: Duration,
) -> io::Result<Outcome> {
    // Piped, or the child would write to our own stdout. `kill_on_drop`
    // is the safety net should this future be dropped early (when the
    // caller drops `run_all`): the child is killed rather than left
    // running.
    let mut child =
        command.stdout(Stdio::piped()).kill_on_drop(true).spawn()?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    // Reading the pipe, waiting and killing can fail too, though only
    // rarely (the system short of resources); each `?` makes that
    // command's result an `Err` as well. The doc promises an `Err` only
    // for a command that cannot start, the one failure a caller can
    // provoke at will.
    let finish = async {
        // Read to the end before waiting: a child that fills the pipe
        // blocks until someone reads it, and would never exit.
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).await?;
        let status = child.wait().await?;
        Ok(Outcome::Finished {
            code: status.code(),
            stdout: String::from_utf8_lossy(&bytes).into_owned(),
        })
    };
    // The deadline is set here, right after this command's spawn, in
    // this command's own task: it counts from this command's start,
    // whatever the others do and whenever `run_all` collects the result.
    match tokio::time::timeout(deadline, finish).await {
        Ok(finished) => finished,
        Err(_elapsed) => {
            // `kill` sends SIGKILL and then waits for the child, so no
            // zombie is left. Dropping the child would only send the
            // signal; the zombie would stay until tokio reaps it, some
            // time later.
            child.kill().await?;
            Ok(Outcome::TimedOut)
        }
    }
}
