//! The echo server: every line comes back, clients are served at once
//! and a silent one holds up no one, and a shutdown returns `Ok(())` and
//! closes the listener and the connections still open.

use std::future::Future;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use course::grader::alloc;
use exercises::ch08_tokio::serve;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Barrier, oneshot};
use tokio::task::JoinSet;

use super::{paused_runtime, runtime};

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
    with_listener(listener, clients).await
}

/// As `with_server`, on a listener the caller made.
async fn with_listener<F, Fut>(
    listener: TcpListener,
    clients: F,
) -> (Fut::Output, io::Result<()>)
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future,
{
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

/// The send and receive buffers of the sockets of a trial that must not
/// fit a long line in them: set by hand, which turns off the kernel's
/// growing them, and far below the lines those trials send.
const SMALL_BUFFER: u32 = 64 * 1024;

/// An IPv4 socket with send and receive buffers of `SMALL_BUFFER`.
fn small_buffered_socket() -> TcpSocket {
    let socket = TcpSocket::new_v4().expect("cannot make a socket");
    socket
        .set_send_buffer_size(SMALL_BUFFER)
        .expect("cannot set SO_SNDBUF");
    socket
        .set_recv_buffer_size(SMALL_BUFFER)
        .expect("cannot set SO_RCVBUF");
    socket
}

/// A listener on a fresh port of 127.0.0.1 whose connections have small
/// buffers (an accepted socket takes its listener's).
fn small_buffered_listener() -> TcpListener {
    let socket = small_buffered_socket();
    socket
        .bind("127.0.0.1:0".parse().expect("an address"))
        .expect("cannot bind to 127.0.0.1");
    socket.listen(1024).expect("cannot listen")
}

/// A connection to `address` with small buffers.
async fn small_buffered_client(address: SocketAddr) -> TcpStream {
    small_buffered_socket()
        .connect(address)
        .await
        .expect("cannot connect to the server")
}

/// Two clients take turns; each gets its own lines back, and lines sent
/// in one write come back one by one.
pub(super) fn echoes_every_line() {
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
pub(super) fn answers_clients_at_once() {
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
pub(super) fn a_silent_client_blocks_no_one() {
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
/// `serve` return `Ok(())`. Before that, the client is silent for an hour
/// on tokio's paused clock (which jumps there at once, through any timer
/// `serve` set), and is still served after it: `serve` hangs up on nobody
/// for being quiet. Then a flood of clients must not put a shutdown off
/// (`a_flood_of_clients_holds_up_no_shutdown`).
pub(super) fn returns_ok_on_shutdown() {
    paused_runtime().block_on(async {
        let (_client, served) = with_server(|address| async move {
            let mut client = Client::connect(address).await;
            client.echo("still here").await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            let back = client.send("still here an hour later\n").await;
            assert_eq!(
                back.as_deref(),
                Some("still here an hour later\n"),
                "a client sent nothing for an hour (on tokio's paused \
                 clock), then a line, and got {back:?} (None: the server \
                 had closed the connection): serve runs until its shutdown, \
                 and serves every client until then, silent ones too (no \
                 idle timeout)"
            );
            client
        })
        .await;
        assert!(
            served.is_ok(),
            "after the shutdown future completed, serve returned \
             {served:?}: a shutdown is the normal end, Ok(())"
        );
    });
    runtime().block_on(a_flood_of_clients_holds_up_no_shutdown());
}

/// A duplicate of `listener`'s descriptor, registered with the runtime:
/// the runtime learns that it is readable from the same call to the kernel
/// (`epoll_wait`) that tells it the listener is.
fn duplicate_of(listener: &TcpListener) -> AsyncFd<OwnedFd> {
    let duplicate = listener
        .as_fd()
        .try_clone_to_owned()
        .expect("cannot duplicate the listener's descriptor");
    // SAFETY: an `OwnedFd` is a valid, open descriptor that stays open,
    // and refers to the same file description, until it is dropped, which
    // happens only with the `AsyncFd` that owns it.
    unsafe { AsyncFd::register(duplicate) }
        .map_err(io::Error::from)
        .expect("cannot register the duplicate")
}

/// How many clients wait to be accepted when `serve` starts with its
/// shutdown already complete.
const FLOOD: usize = 200;

/// How many of them `serve` may accept before it sees the shutdown. A
/// `select!` that picks its branches in a random order accepts one more
/// client with probability one half each round, or two thirds with a
/// third branch (`join_next`) in an unlucky place: more than 50 comes
/// about once in 10^9 runs. After it has seen the shutdown, it may accept
/// none.
const ACCEPTED_AT_MOST: usize = 50;

/// `FLOOD` silent clients wait in the listener's queue (the kernel
/// completes their handshakes before anyone accepts them), and the
/// shutdown future completes in the same turn of the runtime as the
/// listener is found ready to accept: `serve` must return having accepted
/// at most a few of them, and none after the shutdown future completed
/// (the future notes how many still wait in the listener's queue then). A client `serve` accepted finds the end of the
/// stream when its connection is closed; one it never accepted finds its
/// connection reset when the listener is closed.
///
/// How the two complete together: the shutdown future waits until a
/// duplicate of the listener's descriptor is readable, which the runtime
/// learns from the same call to the kernel (`epoll_wait`) that tells it
/// the listener is. (The duplicate is the shutdown future's, so `serve`
/// closes it as it drops the future.)
async fn a_flood_of_clients_holds_up_no_shutdown() {
    // A queue long enough for all of them (`TcpListener::bind` asks for
    // 128).
    let socket = TcpSocket::new_v4().expect("cannot make a socket");
    socket
        .bind("127.0.0.1:0".parse().expect("an address"))
        .expect("cannot bind to 127.0.0.1");
    let listener = socket.listen(1024).expect("cannot listen");
    let address = listener.local_addr().expect("no local address");
    let clients: Vec<std::net::TcpStream> = (0..FLOOD)
        .map(|_| {
            std::net::TcpStream::connect(address)
                .expect("cannot connect to the server")
        })
        .collect();
    let duplicate = duplicate_of(&listener);
    // How many clients still waited to be accepted at the moment the
    // shutdown future completed: `serve` may accept none of them.
    let waiting = Arc::new(AtomicUsize::new(usize::MAX));
    let shutdown = {
        let waiting = Arc::clone(&waiting);
        async move {
            let _ready = duplicate.readable().await;
            waiting.store(
                accept_queue_length(duplicate.as_raw_fd()),
                Ordering::SeqCst,
            );
        }
    };
    serve(listener, shutdown)
        .await
        .expect("serve returned an error");
    // Read at once from every client, each until its end of stream or
    // reset. The timeout only keeps a connection left open from hanging
    // the trial: such a one counts as accepted.
    let mut reads = JoinSet::new();
    for client in clients {
        client
            .set_nonblocking(true)
            .expect("cannot make it nonblocking");
        let mut client =
            TcpStream::from_std(client).expect("cannot register a client");
        reads.spawn(async move {
            let mut byte = [0_u8; 1];
            let read = tokio::time::timeout(
                Duration::from_secs(2),
                client.read(&mut byte),
            );
            !matches!(
                read.await,
                Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionReset
            )
        });
    }
    let accepted = reads
        .join_all()
        .await
        .into_iter()
        .filter(|&accepted| accepted)
        .count();
    let waiting = waiting.load(Ordering::SeqCst);
    assert!(
        waiting <= FLOOD,
        "serve returned without completing its shutdown future"
    );
    // A client accepted before the shutdown completed had left the queue
    // by then: those accepted and those still waiting add up to at most
    // `FLOOD`.
    let accepted_after = (accepted + waiting).saturating_sub(FLOOD);
    assert!(
        accepted_after == 0,
        "{waiting} clients were still waiting to be accepted when the \
         shutdown future completed, and serve accepted {accepted_after} of \
         them after that, before it returned: once serve has seen the \
         shutdown, it stops accepting (no drain of the queue, however \
         polite: a client never accepted finds its connection reset, and \
         that is what a server that stops means)"
    );
    assert!(
        accepted <= ACCEPTED_AT_MOST,
        "{FLOOD} clients were waiting to be accepted when the shutdown \
         future completed, and serve accepted {accepted} of them before it \
         returned (at most {ACCEPTED_AT_MOST} expected): \
         clients that keep connecting must not put off a shutdown. A \
         `biased;` select! that polls accept before the shutdown only sees \
         the shutdown when no client is waiting; put the shutdown first, \
         or leave select! its random order"
    );
}

/// What `/proc/self/fd/<fd>` links to: `socket:[<inode>]` for a socket,
/// the same for every descriptor of that socket.
fn descriptor_target(fd: RawFd) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .expect("cannot read /proc/self/fd")
}

/// Whether this process still holds a descriptor of `target`.
fn holds_descriptor_of(target: &Path) -> bool {
    std::fs::read_dir("/proc/self/fd")
        .expect("cannot list /proc/self/fd")
        .filter_map(Result::ok)
        .any(|entry| {
            std::fs::read_link(entry.path()).is_ok_and(|to| to == target)
        })
}

/// Once `serve` has returned from a shutdown, its listening socket is
/// closed: no descriptor of it is left in this process (an open one
/// would let clients go on connecting, the kernel completing their
/// handshake). Checked with no `.await` after `serve` returned, as in
/// `closes_open_connections_on_shutdown`: a socket that `serve` left to
/// be closed later, by a task of its own, is still open then.
pub(super) fn closes_its_listener_on_shutdown() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("cannot listen on 127.0.0.1");
        let socket = descriptor_target(listener.as_raw_fd());
        let (_client, served) = with_listener(listener, |address| async move {
            let mut client = Client::connect(address).await;
            client.echo("served before the shutdown").await;
            client
        })
        .await;
        served.expect("serve returned an error");
        // No `.await` from here on: it would let the runtime finish what
        // `serve` only started.
        assert!(
            !holds_descriptor_of(&socket),
            "serve returned after its shutdown, but its listening socket \
             ({}) is still open, and clients can still connect: keep the \
             accept loop in serve itself (select! between the shutdown and \
             accept), so the listener is dropped when serve returns; an \
             accept loop in a task of its own, never ended, keeps it open",
            socket.display()
        );
    });
}

/// Once `serve` has returned, a client that was connected at the shutdown
/// finds its connection closed at once: the test reads with a blocking
/// read on the runtime's one thread, so nothing else runs meanwhile, and a
/// connection that `serve` left to be closed later is never closed.
///
/// A second client, with small buffers, sends a line of 8 MiB and reads
/// one byte of its echo: the server is then in the middle of writing that
/// line back, and cannot finish it until the client reads far more. After
/// `serve` has returned, the client reads what has come, to the end of the
/// stream, again with blocking reads: a connection whose writing half
/// lives on in a task of its own, not ended with the others, stays open.
pub(super) fn closes_open_connections_on_shutdown() {
    const BIG: usize = 8 << 20;
    let mut line = vec![b'z'; BIG];
    line.push(b'\n');
    let line = &line;
    runtime().block_on(async {
        let ((client, busy), served) =
            with_listener(small_buffered_listener(), |address| async move {
                let mut client = Client::connect(address).await;
                client.echo("still here").await;
                let mut busy = small_buffered_client(address).await;
                busy.write_all(line).await.expect("cannot write");
                let mut first = [0; 1];
                tokio::io::AsyncReadExt::read_exact(&mut busy, &mut first)
                    .await
                    .expect("the echo of a line of 8 MiB never began");
                (client, busy)
            })
            .await;
        served.expect("serve returned an error");
        // No `.await` from here on: it would let the runtime finish what
        // `serve` only started.
        let stream = client
            .lines
            .into_inner()
            .reunite(client.writer)
            .expect("the two halves of one stream");
        let mut stream = stream.into_std().expect("a std TcpStream");
        stream
            .set_nonblocking(false)
            .expect("cannot make the socket blocking");
        let mut byte = [0; 1];
        // End of file, or a reset: either way the server closed it.
        let after = stream.read(&mut byte);
        assert!(
            matches!(after, Ok(0) | Err(_)),
            "after serve returned, the connection sent {after:?} instead \
             of closing"
        );
        // What the server had written before it closed the connection,
        // then the end of the stream (or a reset). A connection left open
        // never ends, and the trial times out.
        let mut busy = busy.into_std().expect("a std TcpStream");
        busy.set_nonblocking(false)
            .expect("cannot make the socket blocking");
        let mut chunk = vec![0; 64 * 1024];
        while let Ok(1..) = busy.read(&mut chunk) {}
    });
}

/// A client resets its connection (`SO_LINGER` 0, then close: a TCP RST,
/// so the server's read fails with `ECONNRESET`). That error ends that
/// connection only: another client is still served, and the shutdown
/// still returns `Ok(())`.
pub(super) fn a_reset_ends_one_connection_only() {
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
    });
}

/// What comes back is exactly what was sent, byte for byte: a `\r\n`
/// ending, bytes that are not UTF-8, a line of 8 MiB (far more than a
/// socket takes in one write), and a last line without a newline, echoed
/// as it is when the client closes its side.
///
/// The client reads nothing until it has sent everything, through
/// sockets with small buffers: a line comes back only once it has ended,
/// so the 8 MiB line is taken in whole while nothing comes back. A server
/// that echoes bytes as they come (`tokio::io::copy`) fills the buffers
/// with the first part of the line, stops reading, and the client's
/// write never ends.
pub(super) fn echoes_bytes_as_sent() {
    const BIG: usize = 8 << 20;
    let mut sent = b"windows\r\nlatin-1 caf\xe9\n\n".to_vec();
    sent.extend((0..BIG).map(|i| b'a' + (i % 26) as u8));
    sent.extend(b"\nno newline at the end");
    let sent = &sent;
    runtime().block_on(async {
        let listener = small_buffered_listener();
        let (back, served) = with_listener(listener, |address| async move {
            // Small buffers, and nothing read until everything is sent:
            // an echo of a line that has not ended yet fills them, and
            // the server stops reading.
            let mut stream = small_buffered_client(address).await;
            stream.write_all(sent).await.expect("cannot write");
            // Closes the client's side: the server echoes the last line
            // and sees the end of the stream.
            stream.shutdown().await.expect("cannot shut down writing");
            let mut back = Vec::new();
            let _ =
                tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut back)
                    .await;
            back
        })
        .await;
        served.expect("serve returned an error");
        assert_eq!(
            back.len(),
            sent.len(),
            "sent {} bytes, among them a line of {BIG} bytes, and {} came \
             back: a write may take only part of what it is given, and a \
             long line does not fit in a socket's buffer at once (write_all \
             writes it all)",
            sent.len(),
            back.len()
        );
        if back != *sent {
            let shown = |bytes: &[u8]| {
                let mut text =
                    String::from_utf8_lossy(&bytes[..26]).into_owned();
                text.push_str(" ... ");
                text.push_str(&String::from_utf8_lossy(
                    &bytes[bytes.len() - 26..],
                ));
                text
            };
            panic!(
                "the echo must be the bytes sent, unchanged: lines() and \
                 read_line decode UTF-8, lines() drops \\r\\n, and format! \
                 adds a newline the client never sent (read_until(b'\\n') \
                 into a Vec<u8>, and write back exactly that). Sent {:?}, got \
                 back {:?}",
                shown(sent),
                shown(&back)
            );
        }
    });
}

/// `IPPROTO_TCP` and `TCP_INFO` on Linux.
const IPPROTO_TCP: std::ffi::c_int = 6;
const TCP_INFO: std::ffi::c_int = 11;

/// How many connections wait in a listening socket's queue, complete and
/// not yet accepted: Linux's `struct tcp_info` of a listening socket
/// gives it as `tcpi_unacked`, the `u32` at byte 24.
fn accept_queue_length(listener: RawFd) -> usize {
    let mut info = [0_u8; 256];
    let mut length = u32::try_from(info.len()).expect("a small buffer");
    // SAFETY: `info` is a valid, writable buffer of `length` bytes, and
    // `length` a valid, writable `socklen_t`.
    let got = unsafe {
        getsockopt(
            listener,
            IPPROTO_TCP,
            TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut length,
        )
    };
    assert!(
        got == 0 && length >= 28,
        "getsockopt(TCP_INFO) failed on the listener"
    );
    let unacked: [u8; 4] = info[24..28].try_into().expect("four bytes");
    usize::try_from(u32::from_ne_bytes(unacked)).expect("a u32 fits")
}

/// `struct rlimit`: two `rlim_t`, an `unsigned long` on Linux.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct RLimit {
    current: std::ffi::c_ulong,
    maximum: std::ffi::c_ulong,
}

/// `RLIMIT_NOFILE` on Linux: the number of file descriptors a process
/// may hold (more exactly, one more than the highest it may open).
const RLIMIT_NOFILE: std::ffi::c_int = 7;

// The C library's, which every Rust program on Unix links.
unsafe extern "C" {
    fn getrlimit(
        resource: std::ffi::c_int,
        limit: *mut RLimit,
    ) -> std::ffi::c_int;
    fn setrlimit(
        resource: std::ffi::c_int,
        limit: *const RLimit,
    ) -> std::ffi::c_int;
    fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
    fn getsockopt(
        socket: std::ffi::c_int,
        level: std::ffi::c_int,
        name: std::ffi::c_int,
        value: *mut std::ffi::c_void,
        length: *mut u32,
    ) -> std::ffi::c_int;
}

/// While it lives, this process can open no new file descriptor: the
/// next `accept` fails with `EMFILE`. Its drop restores the limit.
#[derive(Debug)]
struct NoNewFiles {
    before: RLimit,
}

impl NoNewFiles {
    fn now() -> NoNewFiles {
        let mut before = RLimit {
            current: 0,
            maximum: 0,
        };
        // SAFETY: `before` is a valid, writable `struct rlimit`.
        let got = unsafe { getrlimit(RLIMIT_NOFILE, &mut before) };
        assert_eq!(got, 0, "getrlimit failed");
        // The kernel gives the lowest free descriptor: this one's number.
        let next = {
            let probe = std::fs::File::open("/dev/null")
                .expect("cannot open /dev/null");
            std::os::fd::AsRawFd::as_raw_fd(&probe)
        };
        let lowered = RLimit {
            current: std::ffi::c_ulong::try_from(next)
                .expect("a descriptor is not negative"),
            maximum: before.maximum,
        };
        // SAFETY: `lowered` is a valid `struct rlimit`; lowering the soft
        // limit of this trial's own process is always allowed.
        let set = unsafe { setrlimit(RLIMIT_NOFILE, &lowered) };
        assert_eq!(set, 0, "setrlimit failed");
        NoNewFiles { before }
    }
}

impl Drop for NoNewFiles {
    fn drop(&mut self) {
        // SAFETY: `before` is the valid `struct rlimit` getrlimit gave;
        // raising the soft limit back up to it, below the hard limit, is
        // always allowed.
        unsafe { setrlimit(RLIMIT_NOFILE, &self.before) };
    }
}

/// A client is served; then the process may open no more files, and the
/// next client's connection makes `accept` fail (`EMFILE`). `serve` ends
/// with that error, and by then it has closed the first client's
/// connection too: the test reads it with a blocking read, as in
/// `closes_open_connections_on_shutdown`.
pub(super) fn an_accept_error_ends_serve() {
    paused_runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("cannot listen on 127.0.0.1");
        let address = listener.local_addr().expect("no local address");
        let mut server =
            std::pin::pin!(serve(listener, std::future::pending::<()>()));
        let first = tokio::select! {
            early = &mut server => panic!(
                "serve returned {early:?}, with no accept error and no \
                 shutdown"
            ),
            first = async {
                let mut client = Client::connect(address).await;
                client.echo("served before the error").await;
                client
            } => first,
        };
        // The second client's socket first: connecting it needs no new
        // descriptor, but accepting it on the server's side does.
        let second =
            tokio::net::TcpSocket::new_v4().expect("cannot create a socket");
        let no_new_files = NoNewFiles::now();
        let failing = tokio::time::Instant::now();
        let ended = tokio::select! {
            ended = &mut server => ended,
            () = async {
                let _connected = second.connect(address).await;
                std::future::pending::<()>().await;
            } => unreachable!("the client waits forever"),
        };
        let waited = failing.elapsed();
        drop(no_new_files);
        assert_eq!(
            waited,
            Duration::ZERO,
            "serve waited {waited:?} (on tokio's paused clock) after accept \
             failed before it returned: an error from accept ends serve at \
             once, with no pause and no retry (meanwhile the shutdown goes \
             unwatched, and the caller does not hear of the error)"
        );
        let error = ended.expect_err(
            "accept failed (EMFILE: no descriptor left), and serve \
             returned Ok: an error from accept ends serve with that error",
        );
        assert_eq!(
            error.raw_os_error(),
            Some(24),
            "serve's error should be accept's own, EMFILE (24): got {error}"
        );
        // No `.await` from here on: it would let the runtime finish what
        // `serve` only started.
        let stream = first
            .lines
            .into_inner()
            .reunite(first.writer)
            .expect("the two halves of one stream");
        let mut stream = stream.into_std().expect("a std TcpStream");
        stream
            .set_nonblocking(false)
            .expect("cannot make the socket blocking");
        let mut byte = [0; 1];
        let after = stream.read(&mut byte);
        assert!(
            matches!(after, Ok(0) | Err(_)),
            "serve returned accept's error, but the connection it served \
             before sent {after:?} instead of closing: close every \
             connection on this way out too (JoinSet::shutdown().await)"
        );
    });
    a_transient_accept_error_ends_serve();
}

/// A transient error from `accept` ends `serve` as well: a client that
/// gave up while it waited in the queue (`ECONNABORTED`) is an error
/// like any other, not one to skip. Linux gives a trial no way to provoke
/// it, so a seccomp filter on the trial's own thread makes `accept4` on
/// the listener fail with it. A client waits in the queue before `serve`
/// starts; the shutdown future waits until a duplicate of the listener's
/// descriptor is readable (the runtime learns it in the same turn as the
/// listener's readiness), then yields once: in that turn `serve` calls
/// `accept`, whichever branch it polls first, and must return its error.
/// A `serve` that skips it goes round its loop and finds the shutdown
/// complete.
fn a_transient_accept_error_ends_serve() {
    let trial = std::thread::spawn(|| {
        runtime().block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("cannot listen on 127.0.0.1");
            let address = listener.local_addr().expect("no local address");
            let duplicate = duplicate_of(&listener);
            let _client = std::net::TcpStream::connect(address)
                .expect("cannot connect to the server");
            if !abort_accepts_on_this_thread(listener.as_raw_fd()) {
                // No seccomp here (another architecture, or a sandbox
                // that forbids it): nothing to check.
                return;
            }
            let shutdown = async move {
                let _ready = duplicate.readable().await;
                tokio::task::yield_now().await;
            };
            let ended = serve(listener, shutdown).await;
            assert!(
                matches!(
                    &ended,
                    Err(error) if error.kind() == io::ErrorKind::ConnectionAborted
                ),
                "accept failed with ECONNABORTED (a client gave up while it \
                 waited to be accepted), and serve returned {ended:?}, after \
                 its shutdown: an error from accept, any error, ends serve \
                 with that error (do not skip ConnectionAborted, \
                 ConnectionReset or Interrupted)"
            );
        });
    });
    if let Err(panic) = trial.join() {
        std::panic::resume_unwind(panic);
    }
}

/// A classic BPF instruction, `struct sock_filter`.
#[repr(C)]
struct SockFilter {
    code: u16,
    jump_if_true: u8,
    jump_if_false: u8,
    operand: u32,
}

/// A BPF program, `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    length: u16,
    filter: *const SockFilter,
}

/// This architecture's `AUDIT_ARCH_*` and `accept4`'s system call number.
#[cfg(target_arch = "x86_64")]
const ACCEPT4: Option<(u32, u32)> = Some((0xC000_003E, 288));
#[cfg(target_arch = "aarch64")]
const ACCEPT4: Option<(u32, u32)> = Some((0xC000_00B7, 242));
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ACCEPT4: Option<(u32, u32)> = None;

/// From now on, on this thread only (a seccomp filter applies to the
/// thread that installs it, and to those it starts later), `accept4` on
/// `listener` fails with `ECONNABORTED`; every other call runs as ever.
/// False if the filter cannot be installed.
fn abort_accepts_on_this_thread(listener: RawFd) -> bool {
    const LOAD_WORD: u16 = 0x20;
    const JUMP_IF_EQUAL: u16 = 0x15;
    const RETURN: u16 = 0x06;
    const ERRNO: u32 = 0x0005_0000;
    const ALLOW: u32 = 0x7FFF_0000;
    const ECONNABORTED: u32 = 103;
    let Some((arch, accept4)) = ACCEPT4 else {
        return false;
    };
    let fd = u32::try_from(listener).expect("a descriptor is not negative");
    let step = |code, jump_if_false, operand| SockFilter {
        code,
        jump_if_true: 0,
        jump_if_false,
        operand,
    };
    // `struct seccomp_data`: the call's number at byte 0, the
    // architecture at 4, and its first argument at 16 (its low half, on
    // these little-endian machines).
    let program = [
        step(LOAD_WORD, 0, 4),
        step(JUMP_IF_EQUAL, 5, arch),
        step(LOAD_WORD, 0, 0),
        step(JUMP_IF_EQUAL, 3, accept4),
        step(LOAD_WORD, 0, 16),
        step(JUMP_IF_EQUAL, 1, fd),
        step(RETURN, 0, ERRNO | ECONNABORTED),
        step(RETURN, 0, ALLOW),
    ];
    let program = SockFprog {
        length: u16::try_from(program.len()).expect("a short program"),
        filter: program.as_ptr(),
    };
    const PR_SET_SECCOMP: std::ffi::c_int = 22;
    const PR_SET_NO_NEW_PRIVS: std::ffi::c_int = 38;
    const SECCOMP_MODE_FILTER: std::ffi::c_ulong = 2;
    // `PR_SET_NO_NEW_PRIVS` fails unless its last three arguments are 0.
    const ONE: std::ffi::c_ulong = 1;
    const ZERO: std::ffi::c_ulong = 0;
    // SAFETY: `PR_SET_NO_NEW_PRIVS` takes four `unsigned long`s and
    // changes this thread's attribute only; `PR_SET_SECCOMP` takes the mode and a
    // pointer to a valid `struct sock_fprog`, whose instructions outlive
    // the call (the kernel copies them).
    unsafe {
        prctl(PR_SET_NO_NEW_PRIVS, ONE, ZERO, ZERO, ZERO) == 0
            && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &raw const program)
                == 0
    }
}

/// Clients served one after the other before the first is measured, so
/// that what the runtime and the sockets allocate once is allocated.
const WARM_UP: usize = 20;

/// Clients served one after the other, each connection closed before the
/// next opens, while the test counts the bytes left allocated.
const SERIAL: usize = 400;

/// Bytes that the serial clients may leave allocated in all, once they
/// are gone: less than 100 bytes a client (a finished task that is kept
/// holds several hundred), and room for the last connection's buffer.
const SERIAL_SLACK: isize = 32 * 1024;

/// Four hundred clients, one after the other: each connects, gets a line
/// back and closes. Then the test waits until the bytes left allocated
/// come back to within 32 KiB of what they were before the four hundred,
/// all while `serve` runs: a server that keeps something of every
/// connection that ended (a `JoinSet` whose finished tasks it never
/// joins, a `Vec` of handles) grows by four hundred of them, and the wait
/// never ends: the trial times out.
pub(super) fn forgets_connections_that_ended() {
    runtime().block_on(async {
        let (_, served) = with_server(|address| async move {
            let serial = |count: usize| async move {
                for client in 0..count {
                    let mut connected = Client::connect(address).await;
                    connected.echo(&format!("client {client}")).await;
                }
            };
            serial(WARM_UP).await;
            // The last warm-up connection ends meanwhile.
            tokio::time::sleep(Duration::from_millis(10)).await;
            let before = alloc::live_bytes();
            serial(SERIAL).await;
            loop {
                let left = alloc::live_bytes() - before;
                if left < SERIAL_SLACK {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        served.expect("serve returned an error");
    });
}
