//! The echo itself: every line comes back, byte for byte, to clients
//! served at once; a silent client or a reset holds up no one, and the
//! connections that ended are forgotten.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use course::grader::alloc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::super::{paused_runtime, runtime};
use super::{
    Client, RLimit, getrlimit, setrlimit, small_buffered_client,
    small_buffered_listener, with_listener, with_server,
};

/// Two clients take turns; each gets its own lines back, and lines sent
/// in one write come back one by one.
pub(crate) fn echoes_every_line() {
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
/// have their line back, then sends a second. Then [`MANY`] clients do the
/// same, more than a cap of 1024 connections (a guard against running out
/// of descriptors) lets in: the last ones would wait for ever to be
/// accepted, and the trial times out. (That part needs 2 descriptors a
/// client, one for each end: where the hard limit of the process's
/// descriptors is below [`DESCRIPTORS`], it is skipped.)
pub(crate) fn answers_clients_at_once() {
    clients_at_once(100);
    if enough_descriptors() {
        clients_at_once(MANY);
    }
}

/// More clients at once than 1024.
const MANY: usize = 1100;

/// The descriptors [`MANY`] clients and their connections need, and some
/// to spare.
const DESCRIPTORS: std::ffi::c_ulong = 4096;

/// Raises this process's soft limit of descriptors to [`DESCRIPTORS`] if
/// it is lower and the hard limit allows; false if it does not.
fn enough_descriptors() -> bool {
    /// `RLIMIT_NOFILE` on Linux.
    const RLIMIT_NOFILE: std::ffi::c_int = 7;
    let mut limit = RLimit {
        current: 0,
        maximum: 0,
    };
    // SAFETY: `limit` is a valid, writable `struct rlimit`.
    let got = unsafe { getrlimit(RLIMIT_NOFILE, &mut limit) };
    assert_eq!(got, 0, "getrlimit failed");
    if limit.current >= DESCRIPTORS {
        return true;
    }
    if limit.maximum < DESCRIPTORS {
        return false;
    }
    let raised = RLimit {
        current: DESCRIPTORS,
        maximum: limit.maximum,
    };
    // SAFETY: `raised` is a valid `struct rlimit`; raising the soft limit
    // up to the hard one is always allowed.
    unsafe { setrlimit(RLIMIT_NOFILE, &raised) == 0 }
}

/// `count` clients connect at once; each sends a line, waits until all
/// have their line back, then sends a second.
fn clients_at_once(count: usize) {
    runtime().block_on(async {
        let (_, served) = with_server(|address| async move {
            let everyone = Arc::new(Barrier::new(count));
            let mut clients = JoinSet::new();
            for id in 0..count {
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
/// it still get their lines back. On tokio's paused clock, held still (a
/// `spawn_blocking` task runs throughout, and while one runs tokio does
/// not move a paused clock on its own): a `serve` that waits for the
/// silent client to speak, or for a timeout of any length, before it
/// accepts the next one waits for ever, and the trial times out.
pub(crate) fn a_silent_client_blocks_no_one() {
    paused_runtime().block_on(async {
        let (_, served) = with_server(|address| async move {
            // Holds the clock still until the clients are done, or have
            // given up (a panic drops `hold` too).
            let (hold, held) = std::sync::mpsc::channel::<()>();
            let still = tokio::task::spawn_blocking(move || {
                let _ = held.recv();
            });
            // First in the accept queue, and kept open to the end.
            let _silent = Client::connect(address).await;
            for id in 0..5 {
                let mut client = Client::connect(address).await;
                client
                    .echo(&format!("client {id} after the silent one"))
                    .await;
            }
            drop(hold);
            still.await.expect("the task that holds the clock still");
        })
        .await;
        served.expect("serve returned an error");
    });
}

/// A client resets its connection (`SO_LINGER` 0, then close: a TCP RST,
/// so the server's read fails with `ECONNRESET`). That error ends that
/// connection only: another client is still served, and the shutdown
/// still returns `Ok(())`.
pub(crate) fn a_reset_ends_one_connection_only() {
    runtime().block_on(async {
        let (_, served) = with_server(|address| async move {
            let mut rude = Client::connect(address).await;
            rude.echo("about to hang up hard").await;
            let stream = rude
                .lines
                .into_inner()
                .reunite(rude.writer)
                .expect("the two halves of one stream");
            stream.set_zero_linger().expect("cannot set SO_LINGER to 0");
            // On loopback the reset reaches the server's socket before
            // `drop` returns: the next client's first wait already lets
            // the server see it.
            drop(stream);
            let mut polite = Client::connect(address).await;
            for round in 0..3 {
                polite
                    .echo(&format!("after the reset, round {round}"))
                    .await;
            }
        })
        .await;
        assert!(
            served.is_ok(),
            "one client reset its connection, and serve returned \
             {served:?} at the shutdown: an error on one connection ends \
             that connection only, not the server"
        );
        // A client that resets its connection while it still waits to be
        // accepted: `accept` gives it all the same, already closed, and
        // asking it for its peer's address fails (`ENOTCONN`). That error
        // too is the connection's, not the server's.
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("cannot listen on 127.0.0.1");
        let address = listener.local_addr().expect("no local address");
        let early = tokio::net::TcpStream::connect(address)
            .await
            .expect("cannot connect to the listener");
        early.set_zero_linger().expect("cannot set SO_LINGER to 0");
        drop(early);
        let (_, served) = with_listener(listener, |address| async move {
            let mut polite = Client::connect(address).await;
            polite.echo("after a reset in the queue").await;
        })
        .await;
        assert!(
            served.is_ok(),
            "a client reset its connection before serve accepted it, and \
             serve returned {served:?}: whatever fails on an accepted \
             connection (its first read, or asking for its peer's address) \
             ends that connection only; only an error from accept itself \
             ends the server"
        );
    });
}

/// The line of `echoes_bytes_as_sent` that is longer than any limit a
/// server might set on a line (16 MiB, 64 MiB): there must be none.
const BIG: usize = 80 << 20;

/// What `echoes_bytes_as_sent` sends before its long line: a `\r\n`
/// ending, bytes that are not UTF-8, and an empty line.
const HEAD: &[u8] = b"windows\r\nlatin-1 caf\xe9\n\n";

/// What it sends after the long line: that line's newline, then a last
/// line without one.
const TAIL: &[u8] = b"\nno newline at the end";

/// How many bytes it sends in all.
const SENT: usize = HEAD.len() + BIG + TAIL.len();

/// The bytes of the long line repeat every 26: a chunk of it that starts
/// at any multiple of 26, and the 26 bytes after it.
fn big_chunk() -> Vec<u8> {
    (0..26 * 2048 + 26).map(|i| b'a' + (i % 26) as u8).collect()
}

/// The bytes sent from `offset` on, as many as `into` holds.
fn sent_bytes(offset: usize, into: &mut [u8], chunk: &[u8]) {
    let mut at = 0;
    while at < into.len() {
        let here = offset + at;
        let (from, available): (&[u8], usize) = if here < HEAD.len() {
            (&HEAD[here..], HEAD.len() - here)
        } else if here < HEAD.len() + BIG {
            let in_line = here - HEAD.len();
            let phase = in_line % 26;
            (&chunk[phase..], (BIG - in_line).min(chunk.len() - phase))
        } else {
            let in_tail = here - HEAD.len() - BIG;
            (&TAIL[in_tail..], TAIL.len() - in_tail)
        };
        let take = available.min(into.len() - at);
        into[at..at + take].copy_from_slice(&from[..take]);
        at += take;
    }
}

/// What comes back is exactly what was sent, byte for byte: a `\r\n`
/// ending, bytes that are not UTF-8, a line of 80 MiB (far more than a
/// socket takes in one write, and more than any limit on a line's length
/// that a server might pick), and a last line without a newline, echoed
/// as it is when the client closes its side.
///
/// The client reads nothing until it has sent everything, through
/// sockets with small buffers: a line comes back only once it has ended,
/// so the long line is taken in whole while nothing comes back. A server
/// that echoes bytes as they come (`tokio::io::copy`) fills the buffers
/// with the first part of the line, stops reading, and the client's
/// write never ends. The client sends and checks the bytes a chunk at a
/// time, so that only the server holds the whole line.
pub(crate) fn echoes_bytes_as_sent() {
    let chunk = big_chunk();
    let chunk = &chunk;
    runtime().block_on(async {
        let listener = small_buffered_listener();
        let (back, served) = with_listener(listener, |address| async move {
            // Small buffers, and nothing read until everything is sent:
            // an echo of a line that has not ended yet fills them, and
            // the server stops reading.
            let mut stream = small_buffered_client(address).await;
            let mut piece = vec![0; chunk.len() - 26];
            let mut offset = 0;
            while offset < SENT {
                let length = piece.len().min(SENT - offset);
                sent_bytes(offset, &mut piece[..length], chunk);
                if let Err(error) = stream.write_all(&piece[..length]).await {
                    panic!(
                        "the server stopped taking what the client sent, \
                         {offset} bytes into it, among them a line of {BIG} \
                         bytes ({error}): serve echoes a line of any length, \
                         with no limit of its own"
                    );
                }
                offset += length;
            }
            // Closes the client's side: the server echoes the last line
            // and sees the end of the stream.
            stream.shutdown().await.expect("cannot shut down writing");
            // How many bytes came back, and where the first one that
            // differs from what was sent is, with the 26 bytes from there
            // on: those sent and those that came back.
            let mut count = 0;
            let mut first_difference = None;
            let mut read = vec![0; piece.len()];
            loop {
                let got =
                    match tokio::io::AsyncReadExt::read(&mut stream, &mut read)
                        .await
                    {
                        Ok(0) | Err(_) => break,
                        Ok(got) => got,
                    };
                // Compared whole first (`memcmp`), and byte by byte only
                // at the first difference.
                let expected =
                    &mut piece[..got.min(SENT.saturating_sub(count))];
                sent_bytes(count, expected, chunk);
                if first_difference.is_none() && *expected != read[..got] {
                    let at = expected
                        .iter()
                        .zip(&read[..got])
                        .position(|(sent, back)| sent != back)
                        .unwrap_or(expected.len());
                    let mut sent = vec![0; (SENT - count - at).min(26)];
                    sent_bytes(count + at, &mut sent, chunk);
                    let back = read[at..got.min(at + 26)].to_vec();
                    first_difference = Some((count + at, sent, back));
                }
                count += got;
            }
            (count, first_difference)
        })
        .await;
        served.expect("serve returned an error");
        let (count, first_difference) = back;
        if let Some((at, sent, back)) = first_difference {
            panic!(
                "the echo must be the bytes sent, unchanged: lines() and \
                 read_line decode UTF-8, lines() drops \\r\\n, and format! \
                 adds a newline the client never sent (read_until(b'\\n') \
                 into a Vec<u8>, and write back exactly that). From byte \
                 {at} on, sent {:?}, got back {:?}",
                String::from_utf8_lossy(&sent),
                String::from_utf8_lossy(&back)
            );
        }
        assert_eq!(
            count, SENT,
            "sent {SENT} bytes, among them a line of {BIG} bytes, and {count} \
             came back: a write may take only part of what it is given, and \
             a long line does not fit in a socket's buffer at once (write_all \
             writes it all); and serve echoes a line of any length, with no \
             limit of its own",
        );
    });
}

/// Clients served one after the other, by a server of their own, before
/// the first is measured, so that what the runtime and the sockets
/// allocate once is allocated.
const WARM_UP: usize = 20;

/// Clients served one after the other, each connection closed before the
/// next opens, while the test counts the bytes left allocated.
const SERIAL: usize = 1000;

/// Bytes that the serial clients may leave allocated in all, once they
/// are gone: about 4 bytes a client. The reference solution leaves none:
/// once the last connection's task has ended, the bytes allocated are
/// back to what they were, to the byte. A server that keeps a few bytes
/// of each connection that ended (a finished task holds several hundred,
/// an entry of a `HashMap` of peer addresses about forty) exceeds it.
const SERIAL_SLACK: isize = 4 * 1024;

/// A thousand clients, one after the other, of a server that has had no
/// client before them: each connects, gets a line back and resets its
/// connection (so the server's read of it fails with
/// `ECONNRESET`). Then the test waits until the bytes left allocated
/// come back to within 4 KiB of what they were before the thousand, all
/// while `serve` runs: a server that keeps something of every connection
/// that ended (a `JoinSet` whose finished tasks it never joins, a `Vec`
/// of handles, statistics per peer address, each of which has a port of
/// its own, a `Vec` of the connections' errors) grows by a thousand of
/// them, and the wait never ends: the trial times out. Then the same
/// with a burst of a hundred clients connected at once, who all reset
/// their connections, with no client after them: a server that reaps its
/// finished tasks only when the next client arrives keeps all hundred.
pub(crate) fn forgets_connections_that_ended() {
    runtime().block_on(async {
        // The warm-up on a server of its own, shut down before the one
        // that is measured starts: the measured server's set of
        // connections is empty when the baseline is taken, so a server
        // that keeps finished tasks for a while (and reaps them in
        // batches) cannot have as many in hand at the baseline as at the
        // end.
        warmed_then_measured(serial, WARM_UP, SERIAL).await;
        // Then a burst: a hundred clients connected at once, all gone at
        // once, and no client after them. A server that reaps its finished
        // tasks only when it accepts the next client keeps every one of
        // them. The warm-up burst grows the runtime's queues to the size
        // the measured one needs.
        warmed_then_measured(burst, BURST, BURST).await;
    });
}

/// Runs `warm_up` clients against a server of their own, then
/// `measured` clients against a second server, and waits until the bytes
/// left allocated are back to what they were before the second server's
/// clients came.
async fn warmed_then_measured<C, F>(clients: C, warm_up: usize, measured: usize)
where
    C: Fn(SocketAddr, usize) -> F,
    F: Future<Output = ()>,
{
    let clients = &clients;
    let (_, served) = with_server(|address| clients(address, warm_up)).await;
    served.expect("serve returned an error");
    let (_, served) = with_server(|address| async move {
        let before = alloc::live_bytes();
        clients(address, measured).await;
        given_back(before).await;
    })
    .await;
    served.expect("serve returned an error");
}

/// Waits until the bytes left allocated are back to within
/// [`SERIAL_SLACK`] of `before`.
async fn given_back(before: isize) {
    loop {
        let left = alloc::live_bytes() - before;
        if left < SERIAL_SLACK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Clients of the burst in `forgets_connections_that_ended`, all
/// connected at once.
const BURST: usize = 100;

/// `count` clients at once: each connects and gets a line back, all of
/// them still connected; then all of them reset their connections, and
/// no client comes after them.
async fn burst(address: SocketAddr, count: usize) {
    let mut clients = Vec::with_capacity(count);
    for client in 0..count {
        let mut connected = Client::connect(address).await;
        connected.echo(&format!("client {client}")).await;
        clients.push(connected);
    }
    for connected in clients {
        reset(connected);
    }
}

/// `count` clients, one after the other: each connects, gets a line back
/// and resets its connection (a TCP RST), so that each connection ends
/// with an error on the server's side, and a server that keeps its
/// connections' errors keeps one for each.
async fn serial(address: SocketAddr, count: usize) {
    for client in 0..count {
        let mut connected = Client::connect(address).await;
        connected.echo(&format!("client {client}")).await;
        reset(connected);
    }
}

/// Ends `connected` with a TCP RST: SO_LINGER set to 0, then closed.
fn reset(connected: Client) {
    let stream = connected
        .lines
        .into_inner()
        .reunite(connected.writer)
        .expect("the two halves of one stream");
    stream.set_zero_linger().expect("cannot set SO_LINGER to 0");
}
