//! The echo server: every line comes back, clients are served at once
//! and a silent one holds up no one, and a shutdown returns `Ok(())` and
//! closes the listener and the connections still open.

mod accept_errors;
mod echo;
mod shutdown;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use exercises::ch08_tokio::serve;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;

pub(super) use accept_errors::an_accept_error_ends_serve;
pub(super) use echo::{
    a_reset_ends_one_connection_only, a_silent_client_blocks_no_one,
    answers_clients_at_once, echoes_bytes_as_sent, echoes_every_line,
    forgets_connections_that_ended,
};
pub(super) use shutdown::{
    closes_its_listener_on_shutdown, closes_open_connections_on_shutdown,
    returns_ok_on_shutdown,
};

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

    /// The connection, whole again and blocking, to read from with no
    /// `.await` (which would let the runtime finish what `serve` started).
    fn into_blocking(self) -> std::net::TcpStream {
        let stream = self
            .lines
            .into_inner()
            .reunite(self.writer)
            .expect("the two halves of one stream");
        let stream = stream.into_std().expect("a std TcpStream");
        stream
            .set_nonblocking(false)
            .expect("cannot make the socket blocking");
        stream
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

/// `struct rlimit`: two `rlim_t`, an `unsigned long` on Linux.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct RLimit {
    current: std::ffi::c_ulong,
    maximum: std::ffi::c_ulong,
}

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
