//! The echo server: every line comes back, clients are served at once
//! and a silent one holds up no one, and a shutdown returns `Ok(())` and
//! closes the connections still open.

use std::future::Future;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;

use exercises::ch08_tokio::serve;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Barrier, oneshot};
use tokio::task::JoinSet;

use super::runtime;

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
/// `serve` return `Ok(())`.
pub(super) fn returns_ok_on_shutdown() {
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
/// finds its connection closed at once: the test reads with a blocking
/// read on the runtime's one thread, so nothing else runs meanwhile, and a
/// connection that `serve` left to be closed later is never closed.
pub(super) fn closes_open_connections_on_shutdown() {
    runtime().block_on(async {
        let (client, served) = with_server(|address| async move {
            let mut client = Client::connect(address).await;
            client.echo("still here").await;
            client
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
    });
}
