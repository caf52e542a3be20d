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

use std::collections::{HashMap, HashSet};
use std::fs;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use course::grader::Trial;
use exercises::ch08_tokio::{Outcome, fetch_all, pipeline, run_all, serve};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::runtime::{Builder, Runtime};
use tokio::sync::{Barrier, Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

/// Deadline for trials whose only way to hang is missing concurrency, or
/// a shutdown that never comes.
const HANG_TIMEOUT: Duration = Duration::from_secs(5);

/// A deadline for `run_all` that no command of a right solution reaches:
/// longer than any trial runs, so only the trial's timeout ends a wait.
const NEVER: Duration = Duration::from_secs(60);

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
            "ch08::fetch_all::returns_bodies_in_url_order",
            1,
            returns_bodies_in_url_order,
        ),
        Trial::new(
            "ch08::fetch_all::takes_the_time_of_the_ideal_schedule",
            1,
            takes_the_time_of_the_ideal_schedule,
        ),
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
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the 100 clients never all got their first line back: each \
             waits for all the others before it sends its second line, so \
             the server must serve every connection at once (a task per \
             connection, spawned and not awaited in the accept loop)",
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
             own, so the accept loop goes straight back to accept",
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
            "ch08::serve::closes_open_connections_on_shutdown",
            1,
            closes_open_connections_on_shutdown,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "a client that was still connected when serve shut down was \
             never disconnected (or serve never returned): keep the \
             connections' tasks in a tokio::task::JoinSet, whose drop \
             aborts them, instead of plain tokio::spawn",
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
        .timeout(HANG_TIMEOUT)
        .on_timeout(PIPELINE_HUNG),
        Trial::new(
            "ch08::run_all::reports_code_and_output",
            1,
            reports_code_and_output,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "run_all never returned for commands that exit at once: read \
             each child's stdout to its end, then wait for the child (and \
             a command that cannot start is an Err, not a wait)",
        ),
        Trial::new(
            "ch08::run_all::runs_the_commands_at_once",
            2,
            runs_the_commands_at_once,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "the commands did not run at the same time: each of the 3 \
             children waits until all 3 have started, so start every \
             command (a task each) before you wait for any",
        ),
        Trial::new(
            "ch08::run_all::kills_commands_past_the_deadline",
            2,
            kills_commands_past_the_deadline,
        )
        .timeout(HANG_TIMEOUT)
        .on_timeout(
            "run_all never returned for commands that never exit, with a \
             deadline of 200 ms: wrap each wait in tokio::time::timeout, \
             and when it elapses, kill the child",
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

/// Waits until every other task waits too. On the paused clock a sleep
/// ends only when nothing else can run: by then the tasks under test have
/// gone as far as they can.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// What `fetch_all` did with a batch of URLs.
#[derive(Debug)]
struct Fetched {
    urls: Vec<String>,
    bodies: Vec<String>,
    /// The most fetches in flight at once.
    most: usize,
    /// Virtual time from the call to its return.
    took: Duration,
}

/// Runs `fetch_all` on the paused clock with one URL per delay: fetching
/// the URL `pages[i]` takes `delays_ms[i]` of virtual time and answers
/// `body of URL`.
fn fetch_pages(pages: &[&str], delays_ms: &[u64], limit: usize) -> Fetched {
    let urls: Vec<String> = pages
        .iter()
        .map(|page| format!("https://shop.example/{page}"))
        .collect();
    let delay_of: HashMap<String, u64> = urls
        .iter()
        .cloned()
        .zip(delays_ms.iter().copied())
        .collect();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let fetch = {
        let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
        move |url: String| {
            let delay = Duration::from_millis(delay_of[&url]);
            let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
            // Counted while the fetch runs, not when it is created: a
            // future does nothing until it is polled.
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                format!("body of {url}")
            }
        }
    };
    let (bodies, took) = paused_runtime().block_on(async {
        let start = Instant::now();
        let bodies = fetch_all(&urls, limit, fetch).await;
        (bodies, start.elapsed())
    });
    Fetched {
        urls,
        bodies,
        most: most.load(Ordering::SeqCst),
        took,
    }
}

/// Eight pages of one sort.
const PAGES: [&str; 8] = [
    "orders/1", "orders/2", "orders/3", "orders/4", "orders/5", "orders/6",
    "orders/7", "orders/8",
];

/// Eight fetches of 10 ms with a limit of 3: at some moment, 3 are in
/// flight at once.
fn fills_the_limit() {
    for limit in [3, 1, 8] {
        let fetched = fetch_pages(&PAGES, &[10; 8], limit);
        let most = fetched.most;
        assert!(
            most >= limit,
            "8 fetches with a limit of {limit}: at most {most} were in \
             flight at once, never {limit}: start the next fetch while \
             others are still running (a task per URL, all spawned before \
             you await any)"
        );
    }
}

/// Eight fetches of 10 ms with a limit of 3: never more than 3 in flight.
fn never_exceeds_the_limit() {
    for limit in [3, 1, 5] {
        let fetched = fetch_pages(&PAGES, &[10; 8], limit);
        let most = fetched.most;
        assert!(
            most <= limit,
            "8 fetches with a limit of {limit}: {most} were in flight at \
             once: each fetch must hold a semaphore permit until it is \
             done (`let _permit = ...`; `let _ = ...` drops the permit at \
             once)"
        );
    }
}

/// The first pages take longest, so the last finish first; the bodies
/// still come in URL order. No URLs give no bodies.
fn returns_bodies_in_url_order() {
    let pages = ["search?q=tea", "cart", "about", "orders", "blog", "account"];
    let fetched = fetch_pages(&pages, &[60, 50, 40, 30, 20, 10], 3);
    let expected: Vec<String> = fetched
        .urls
        .iter()
        .map(|url| format!("body of {url}"))
        .collect();
    assert_eq!(
        fetched.bodies, expected,
        "the bodies must come in the order of the URLs, not in the order \
         the fetches finish (here the last URLs finish first): remember \
         each URL's index"
    );
    let nothing = fetch_pages(&[], &[], 2);
    assert!(nothing.bodies.is_empty(), "no URLs, no bodies");
}

/// On the paused clock, a batch takes exactly the virtual time of the
/// ideal schedule, where a fetch starts the moment a slot is free.
fn takes_the_time_of_the_ideal_schedule() {
    let cases: [(&[u64], usize, u64, &str); 2] = [
        (
            &[10; 6],
            3,
            20,
            "6 fetches of 10 ms, 3 at a time: two rounds",
        ),
        (
            &[40, 10, 10, 10, 10, 10, 10],
            3,
            40,
            "a fetch of 40 ms and six of 10 ms, 3 at a time: while the long \
             one runs, the short ones go two at a time beside it",
        ),
    ];
    for (delays, limit, ideal_ms, schedule) in cases {
        let fetched = fetch_pages(&PAGES[..delays.len()], delays, limit);
        let (took, ideal) = (fetched.took, Duration::from_millis(ideal_ms));
        assert_eq!(
            took, ideal,
            "{schedule}, so {ideal:?} of virtual time; fetch_all took \
             {took:?}. Longer: fetches waited while a slot was free (one \
             at a time, or in batches that wait for their slowest); \
             shorter: more than {limit} ran at once"
        );
    }
}

/// A client of the echo server: lines out, lines back.
struct Client {
    lines: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn connect(address: SocketAddr) -> Client {
        let stream = TcpStream::connect(address)
            .await
            .expect("cannot connect to the server");
        let (reader, writer) = stream.into_split();
        Client {
            lines: BufReader::new(reader),
            writer,
        }
    }

    /// Sends `text` (one or more lines), then reads one line back:
    /// `None` if the server closed the connection instead.
    async fn send(&mut self, text: &str) -> Option<String> {
        self.writer
            .write_all(text.as_bytes())
            .await
            .expect("cannot write to the server");
        self.read_line().await
    }

    /// The next line from the server, newline included; `None` at end of
    /// file or when the connection was reset.
    async fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.lines.read_line(&mut line).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        }
    }

    /// Sends `line` and checks that it comes back.
    async fn echo(&mut self, line: &str) {
        let back = self.send(&format!("{line}\n")).await;
        assert_eq!(
            back.as_deref(),
            Some(format!("{line}\n").as_str()),
            "sent the line {line:?}, expected it back with its newline \
             (None: the server closed the connection)"
        );
    }
}

/// Runs `serve` on a fresh port of 127.0.0.1 while `clients` runs; then
/// completes the shutdown future and waits for `serve` to return. Returns
/// what the clients returned and what `serve` returned.
async fn with_server<F, Fut>(clients: F) -> (Fut::Output, io::Result<()>)
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("cannot listen on 127.0.0.1");
    let address = listener.local_addr().expect("no local address");
    let (stop, stopped) = oneshot::channel::<()>();
    let mut server = std::pin::pin!(serve(listener, async {
        let _ = stopped.await;
    }));
    let clients = clients(address);
    let done = tokio::select! {
        early = &mut server => panic!(
            "serve returned {early:?} before its shutdown future completed"
        ),
        done = clients => done,
    };
    stop.send(()).expect("serve dropped its shutdown future");
    (done, server.await)
}

/// Two clients take turns; each gets its own lines back, and lines sent
/// in one write come back one by one.
fn echoes_every_line() {
    runtime().block_on(async {
        let (_, served) = with_server(|address| async move {
            let mut alice = Client::connect(address).await;
            let mut bob = Client::connect(address).await;
            alice.echo("hello from alice").await;
            bob.echo("hello from bob").await;
            alice.echo("crème brûlée, 2 × 3 €").await;
            bob.echo("").await;
            let first = bob.send("one\ntwo\nthree\n").await;
            let rest = [bob.read_line().await, bob.read_line().await];
            assert_eq!(
                (first.as_deref(), rest[0].as_deref(), rest[1].as_deref()),
                (Some("one\n"), Some("two\n"), Some("three\n")),
                "three lines sent in one write come back as three lines"
            );
        })
        .await;
        served.expect("serve returned an error");
    });
}

/// A hundred clients connect at once; each sends a line, waits until all
/// have their line back, then sends a second.
fn answers_clients_at_once() {
    const CLIENTS: usize = 100;
    runtime().block_on(async {
        let (_, served) = with_server(|address| async move {
            let everyone = Arc::new(Barrier::new(CLIENTS));
            let mut clients = JoinSet::new();
            for id in 0..CLIENTS {
                let everyone = Arc::clone(&everyone);
                clients.spawn(async move {
                    let mut client = Client::connect(address).await;
                    client.echo(&format!("client {id}: first")).await;
                    everyone.wait().await; // Every client is served.
                    client.echo(&format!("client {id}: second")).await;
                });
            }
            while let Some(done) = clients.join_next().await {
                if let Err(error) = done {
                    std::panic::resume_unwind(error.into_panic());
                }
            }
        })
        .await;
        served.expect("serve returned an error");
    });
}

/// A client connects first and never sends anything; five clients behind
/// it still get their lines back.
fn a_silent_client_blocks_no_one() {
    runtime().block_on(async {
        let (_, served) = with_server(|address| async move {
            // First in the accept queue, and kept open to the end.
            let _silent = Client::connect(address).await;
            for id in 0..5 {
                let mut client = Client::connect(address).await;
                client
                    .echo(&format!("client {id} after the silent one"))
                    .await;
            }
        })
        .await;
        served.expect("serve returned an error");
    });
}

/// With a client still connected, completing the shutdown future makes
/// `serve` return `Ok(())`.
fn returns_ok_on_shutdown() {
    runtime().block_on(async {
        let (_client, served) = with_server(|address| async move {
            let mut client = Client::connect(address).await;
            client.echo("still here").await;
            client
        })
        .await;
        assert!(
            served.is_ok(),
            "after the shutdown future completed, serve returned \
             {served:?}: a shutdown is the normal end, Ok(())"
        );
    });
}

/// Once `serve` has returned, a client that was connected at the shutdown
/// finds its connection closed.
fn closes_open_connections_on_shutdown() {
    runtime().block_on(async {
        let (mut client, served) = with_server(|address| async move {
            let mut client = Client::connect(address).await;
            client.echo("still here").await;
            client
        })
        .await;
        served.expect("serve returned an error");
        // A connection whose task still runs would wait for a line here.
        let after = client.read_line().await;
        assert_eq!(
            after, None,
            "after serve returned, the connection sent {after:?} instead \
             of closing"
        );
    });
}

/// What a gated run of `pipeline` saw.
#[derive(Debug)]
struct Observed {
    results: Vec<u64>,
    /// The most items taken from the source but not yet given to
    /// `consume`, at any moment the producer took one.
    most_ahead: usize,
    /// The fewest such items whenever both tasks were stuck (the consumer
    /// waiting for its gate) with items left in the source.
    least_ahead_when_stuck: usize,
}

/// Runs `pipeline` on the paused clock over `count` items, with a
/// consumer that waits for a permit before each item; the test lets the
/// tasks settle, then gives one permit, and again, item after item.
fn gated_pipeline(count: u64, capacity: usize) -> Observed {
    let taken = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let most_ahead = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let items = {
        let (taken, started) = (Arc::clone(&taken), Arc::clone(&started));
        let most_ahead = Arc::clone(&most_ahead);
        (0..count).inspect(move |_| {
            let taken = taken.fetch_add(1, Ordering::SeqCst) + 1;
            let ahead = taken - started.load(Ordering::SeqCst);
            most_ahead.fetch_max(ahead, Ordering::SeqCst);
        })
    };
    let consume = {
        let (started, gate) = (Arc::clone(&started), Arc::clone(&gate));
        move |item: u64| {
            started.fetch_add(1, Ordering::SeqCst);
            let gate = Arc::clone(&gate);
            async move {
                gate.acquire()
                    .await
                    .expect("the gate is never closed")
                    .forget();
                item + 1000
            }
        }
    };
    let mut least_ahead_when_stuck = usize::MAX;
    let results = paused_runtime().block_on(async {
        let opener = async {
            for _ in 0..count {
                settle().await;
                let taken = taken.load(Ordering::SeqCst);
                if taken < count as usize {
                    let ahead = taken - started.load(Ordering::SeqCst);
                    least_ahead_when_stuck = least_ahead_when_stuck.min(ahead);
                }
                gate.add_permits(1);
            }
        };
        tokio::join!(pipeline(items, capacity, consume), opener).0
    });
    Observed {
        results,
        most_ahead: most_ahead.load(Ordering::SeqCst),
        least_ahead_when_stuck,
    }
}

/// A consumer slower than the producer: when the source runs dry the
/// channel is still full, and those items are consumed too, each once,
/// in order; then `pipeline` returns.
fn keeps_every_item_in_order() {
    const ITEMS: u64 = 40;
    for capacity in [4, 1] {
        let results = paused_runtime().block_on(pipeline(
            0..ITEMS,
            capacity,
            |item| async move {
                // The consumer is the slow one.
                tokio::time::sleep(Duration::from_millis(1)).await;
                item * 10
            },
        ));
        let expected: Vec<u64> = (0..ITEMS).map(|item| item * 10).collect();
        assert_eq!(
            results, expected,
            "{ITEMS} items through a channel of {capacity}: consume each \
             once, in order, and when the producer is done, drain what is \
             left in the channel (recv() until it returns None) before \
             the consumer ends"
        );
    }
    let none =
        paused_runtime()
            .block_on(pipeline(Vec::new(), 2, |item| async move { item }));
    assert!(none.is_empty(), "no items, no results");
}

/// With a channel of 3 and a consumer that is held up, the producer
/// never takes more than 3 + 1 items ahead of the consumer (3 in the
/// channel, 1 in hand waiting for room).
fn producer_waits_when_the_channel_is_full() {
    const CAPACITY: usize = 3;
    let observed = gated_pipeline(12, CAPACITY);
    let most = observed.most_ahead;
    assert!(
        most <= CAPACITY + 1,
        "the producer took {most} items ahead of the consumer, with a \
         channel of {CAPACITY}: use tokio::sync::mpsc::channel(capacity), \
         await each send, and take items from the iterator one at a time \
         (collecting them first takes them all at once)"
    );
    let expected: Vec<u64> = (0..12).map(|item| item + 1000).collect();
    assert_eq!(observed.results, expected, "every item once, in order");
}

/// With a channel of 3 and a consumer that is held up, the producer
/// fills the channel: whenever both wait, it is at least 3 items ahead.
fn producer_runs_ahead_of_a_slow_consumer() {
    const CAPACITY: usize = 3;
    let observed = gated_pipeline(12, CAPACITY);
    let least = observed.least_ahead_when_stuck;
    assert!(
        least >= CAPACITY,
        "while the consumer was held up, the producer was only {least} \
         items ahead, with a channel of {CAPACITY}: run the producer and \
         the consumer as two tasks, through a channel of the capacity \
         given, so the producer keeps going while the consumer works"
    );
    let expected: Vec<u64> = (0..12).map(|item| item + 1000).collect();
    assert_eq!(observed.results, expected, "every item once, in order");
}

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

/// The child processes of this one that nobody has waited for yet:
/// running, or zombies.
fn our_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let entries = fs::read_dir("/proc").expect("cannot list /proc");
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat"))
            else {
                return false; // Gone meanwhile.
            };
            // After the parenthesised command name: state, then the parent.
            let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            after_name.split_whitespace().nth(1) == Some(me.as_str())
        })
        .collect()
}

/// Exit statuses and stdout come back in command order, and a command
/// that cannot start is an error of its own.
fn reports_code_and_output() {
    let outcomes = runtime().block_on(run_all(
        vec![
            worker(&["exit", "3"]),
            worker(&["lines", "2"]),
            Command::new("/nonexistent/report-generator"),
        ],
        NEVER,
    ));
    assert_eq!(outcomes.len(), 3, "one result per command");
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
}

/// Three children each wait until all three have started; they finish
/// and print their pids, three different ones.
fn runs_the_commands_at_once() {
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

/// Two children never exit; with a deadline of 200 ms both are reported
/// as timed out, and none of the processes is left, running or zombie.
fn kills_commands_past_the_deadline() {
    let scratch = scratch();
    // A file that never appears: `emit-then-wait` waits for it forever.
    let never = scratch.path().join("never");
    let never = never.to_str().expect("a UTF-8 temporary path");
    let outcomes = runtime().block_on(run_all(
        vec![
            worker(&["emit-then-wait", never]),
            worker(&["emit-then-wait", never]),
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
    assert_eq!(outcomes.len(), 2, "one result per command");
    let left = our_children();
    assert!(
        left.is_empty(),
        "run_all returned, but processes {left:?} it started are still \
         running, or exited and were never waited for (zombies): at the \
         deadline, Child::kill().await, which kills and then waits"
    );
}
