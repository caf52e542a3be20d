//! The shutdown: `serve` returns `Ok(())`, even with clients connected or
//! a flood of them waiting, accepts no one after it, and closes its
//! listener and the connections still open before it returns.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use exercises::ch08_tokio::serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;

use super::super::{paused_runtime, runtime};
use super::{
    Client, duplicate_of, getsockopt, small_buffered_client,
    small_buffered_listener, with_listener, with_server,
};

/// With a client still connected, completing the shutdown future makes
/// `serve` return `Ok(())`. Before that, the client is silent for an hour
/// on tokio's paused clock (which jumps there at once, through any timer
/// `serve` set), and is still served after it: `serve` hangs up on nobody
/// for being quiet. Nor on a client slow to read its echoes
/// (`a_slow_reader_gets_its_echo`). Then a burst of accepts must not put
/// a shutdown off (`no_burst_of_accepts_puts_off_a_shutdown`), nor a
/// flood of clients (`a_flood_of_clients_holds_up_no_shutdown`).
pub(crate) fn returns_ok_on_shutdown() {
    paused_runtime().block_on(a_slow_reader_gets_its_echo());
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
    runtime().block_on(no_burst_of_accepts_puts_off_a_shutdown());
    runtime().block_on(a_flood_of_clients_holds_up_no_shutdown());
}

/// The line that `a_slow_reader_gets_its_echo` sends: far longer than
/// what the small buffers of its sockets hold.
const SLOW_LINE: usize = 2 << 20;

/// How long that client waits, on the paused clock, before it reads.
const SLOW_READER_WAITS: Duration = Duration::from_secs(365 * 24 * 3600);

/// A client, through sockets with small buffers, sends a line of 2 MiB and
/// does not read its echo until a year later, on tokio's paused clock:
/// the server's write of that line cannot finish meanwhile. It must wait
/// for the client, however long, and the client then gets the whole line.
///
/// The client starts its year only once the first bytes of the echo have
/// come, so the server's write has begun, and any timer set for it
/// (`tokio::time::timeout` around `write_all`) is set. The write then
/// cannot end before the client reads, so the runtime has nothing to do
/// but wait, and the paused clock jumps to the first timer: one that ends
/// the connection fires before the client reads a byte more.
async fn a_slow_reader_gets_its_echo() {
    let mut line = vec![b's'; SLOW_LINE];
    line.push(b'\n');
    let line = &line;
    let (back, served) =
        with_listener(small_buffered_listener(), |address| async move {
            let mut client = small_buffered_client(address).await;
            client.write_all(line).await.expect("cannot write");
            client
                .readable()
                .await
                .expect("the echo of the line never began");
            tokio::time::sleep(SLOW_READER_WAITS).await;
            let mut back = vec![0; line.len()];
            let got = client.read_exact(&mut back).await;
            (got.map(|_| back), client)
        })
        .await;
    let (back, _client) = back;
    assert!(
        back.as_ref().is_ok_and(|back| back == line),
        "a client sent a line of {SLOW_LINE} bytes and read its echo only a \
         year later (on tokio's paused clock), and got {}: serve waits for \
         a slow reader as long as it takes (no write timeout)",
        match back {
            Ok(_) => "other bytes back".to_owned(),
            Err(error) => format!("{error} before the end of the line"),
        }
    );
    served.expect("serve returned an error");
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
    let (listener, clients) = flooded_listener();
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
    let accepted = count_accepted(clients).await;
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

/// `FLOOD` silent clients wait in the listener's queue, all of them
/// (the trial waits until the kernel counts them there), when `serve`
/// starts; the shutdown future completes as `serve` accepts the first of
/// them: it is ready whenever it is polled with fewer than `FLOOD` in the
/// queue, and until then it wakes its task again at once, so that `serve`
/// polls it again. `serve` must look at the shutdown again before it has
/// accepted more than `ACCEPTED_AT_MOST` others: a loop that, after each
/// accept, takes the clients already queued in one go (`poll_accept` until
/// it is pending, or up to some count) accepts a whole burst of them
/// after the shutdown completed, and no `select!` order helps it.
async fn no_burst_of_accepts_puts_off_a_shutdown() {
    let (listener, clients) = flooded_listener();
    // The shutdown future's own descriptor of the listener: it stays
    // valid whatever `serve` does with the listener.
    let queue = listener
        .as_fd()
        .try_clone_to_owned()
        .expect("cannot duplicate the listener's descriptor");
    // A client's `connect` may return before the kernel has put it in the
    // listener's queue: wait until all of them are there. (No upper bound:
    // only the trial's timeout ends a wait that never ends.)
    while accept_queue_length(queue.as_raw_fd()) < FLOOD {
        std::thread::sleep(Duration::from_millis(1));
    }
    // How many clients still waited to be accepted when `serve` saw the
    // shutdown complete.
    let waiting = Arc::new(AtomicUsize::new(usize::MAX));
    let shutdown = {
        let waiting = Arc::clone(&waiting);
        std::future::poll_fn(move |cx| {
            let queued = accept_queue_length(queue.as_raw_fd());
            if queued < FLOOD {
                waiting.store(queued, Ordering::SeqCst);
                std::task::Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
    };
    serve(listener, shutdown)
        .await
        .expect("serve returned an error");
    let accepted = count_accepted(clients).await;
    let waiting = waiting.load(Ordering::SeqCst);
    assert!(
        waiting < FLOOD,
        "serve returned without completing its shutdown future"
    );
    // The first client accepted completed the shutdown; all the others
    // were accepted after it had.
    let after = accepted.saturating_sub(1);
    assert!(
        after <= ACCEPTED_AT_MOST,
        "{FLOOD} clients were waiting to be accepted; the shutdown future \
         completed as serve accepted the first of them, and serve accepted \
         {after} more before it returned (at most {ACCEPTED_AT_MOST} \
         expected): go back to select! after each accept, so the shutdown \
         is looked at between two clients, not after a burst of them taken \
         from the queue in one go"
    );
    let accepted_after = (accepted + waiting).saturating_sub(FLOOD);
    assert!(
        accepted_after == 0,
        "{waiting} clients were still waiting to be accepted when serve \
         saw the shutdown complete, and serve accepted {accepted_after} of \
         them after that, before it returned: once serve has seen the \
         shutdown, it stops accepting"
    );
}

/// How many of `clients` were accepted, once `serve` has returned: each is
/// read at once, until its end of stream or reset. A client never accepted
/// finds its connection reset, as its listener was closed; one accepted
/// finds the end of the stream. The timeout only keeps a connection left
/// open from hanging the trial: such a one counts as accepted.
async fn count_accepted(clients: Vec<std::net::TcpStream>) -> usize {
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
    reads
        .join_all()
        .await
        .into_iter()
        .filter(|&accepted| accepted)
        .count()
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
pub(crate) fn closes_its_listener_on_shutdown() {
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
pub(crate) fn closes_open_connections_on_shutdown() {
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
        let mut stream = client.into_blocking();
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

/// A listener on 127.0.0.1 with a queue long enough for `FLOOD` clients
/// (`TcpListener::bind` asks for 128), and `FLOOD` clients connected to it,
/// none accepted yet.
fn flooded_listener() -> (TcpListener, Vec<std::net::TcpStream>) {
    let socket = TcpSocket::new_v4().expect("cannot make a socket");
    socket
        .bind("127.0.0.1:0".parse().expect("an address"))
        .expect("cannot bind to 127.0.0.1");
    let listener = socket.listen(1024).expect("cannot listen");
    let address = listener.local_addr().expect("no local address");
    let clients = (0..FLOOD)
        .map(|_| {
            std::net::TcpStream::connect(address)
                .expect("cannot connect to the server")
        })
        .collect();
    (listener, clients)
}
