//! Where the book listens and who may keep a connection: the loopback
//! sockets of a launch (127.0.0.1 and ::1 on one port), and the accept loop
//! that refuses other users' programs at once, caps the connections open at
//! a time and closes those that send no request.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::BookError;
use crate::runner;

/// How long a connection may take to send a request's headers, and how
/// long it may stay open between two requests: a client that opens
/// connections and sends nothing (or a byte now and then) cannot hold them.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The sockets of one launch.
#[derive(Debug)]
pub(super) struct Listeners {
    v4: TcpListener,
    /// `None` where this machine has no IPv6 loopback: then no other
    /// program can listen on `[::1]` either.
    v6: Option<TcpListener>,
}

impl Listeners {
    /// Listens on 127.0.0.1:`port` and on [::1] with the same port; port 0
    /// picks a free one. Both, because a browser resolves
    /// `<label>.localhost` to both addresses: if another user's program
    /// held [::1] on our port, the reader's browser could send it the
    /// book's secret address.
    pub(super) async fn bind(port: u16) -> Result<Listeners, BookError> {
        // With a picked port, [::1] may be taken on that port by chance:
        // pick again a few times.
        for _ in 0..8 {
            let v4 =
                bind_one(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
            let picked = local_port(&v4)?;
            let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, picked));
            match TcpListener::bind(v6).await {
                Ok(v6) => return Ok(Listeners { v4, v6: Some(v6) }),
                Err(error) if no_ipv6(&error) => {
                    return Ok(Listeners { v4, v6: None });
                }
                Err(error)
                    if error.kind() == io::ErrorKind::AddrInUse
                        && port == 0 => {}
                Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
                    return Err(BookError::PortInUse(port));
                }
                Err(error) => {
                    return Err(BookError::Io(
                        format!("cannot bind {v6}"),
                        error,
                    ));
                }
            }
        }
        Err(BookError::Io(
            "cannot find a port free on both 127.0.0.1 and ::1".into(),
            io::ErrorKind::AddrInUse.into(),
        ))
    }

    /// The port both sockets listen on.
    pub(super) fn port(&self) -> Result<u16, BookError> {
        local_port(&self.v4)
    }

    /// Serves `app` on both sockets until an error stops the server. Each
    /// connection is checked before anything is read from it: another
    /// user's program is closed at once, and past [`connection_cap`]
    /// connections, new ones wait in the kernel's queue.
    pub(super) async fn serve(self, app: axum::Router) -> io::Result<()> {
        let cap = Arc::new(tokio::sync::Semaphore::new(connection_cap()));
        loop {
            let Ok(permit) = Arc::clone(&cap).acquire_owned().await else {
                return Ok(());
            };
            let (stream, peer) = match self.accept().await {
                Ok(accepted) => accepted,
                Err(error) if transient(&error) => {
                    // Out of descriptors for a moment: let connections end.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            let app = app.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let Ok(local) = stream.local_addr() else {
                    return;
                };
                let mine = tokio::task::spawn_blocking(move || {
                    runner::same_user(peer, local)
                })
                .await
                .unwrap_or(false);
                if mine {
                    connection(stream, app).await;
                }
            });
        }
    }

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        match &self.v6 {
            Some(v6) => tokio::select! {
                accepted = self.v4.accept() => accepted,
                accepted = v6.accept() => accepted,
            },
            None => self.v4.accept().await,
        }
    }
}

/// Serves one connection: HTTP/1.1, each request's headers within
/// [`HEADER_TIMEOUT`] (which also ends an idle keep-alive connection).
async fn connection(stream: TcpStream, app: axum::Router) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;
    let service = hyper::service::service_fn(
        move |request: hyper::Request<hyper::body::Incoming>| {
            app.clone().oneshot(request.map(axum::body::Body::new))
        },
    );
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(64 * 1024);
    // A client that goes away is no error of the server's.
    let _ = http.serve_connection(TokioIo::new(stream), service).await;
}

/// How many connections may be open at once: enough for several tabs of
/// a browser (six connections per host each), and at most half of the
/// descriptors this process may open, less 64 for a run's pipes and the
/// rest: each connection may also hold a file it is sending.
pub fn connection_cap() -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    let descriptors = getrlimit(Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    usize::try_from(descriptors.saturating_sub(64) / 2)
        .unwrap_or(usize::MAX)
        .clamp(4, 256)
}

async fn bind_one(address: SocketAddr) -> Result<TcpListener, BookError> {
    TcpListener::bind(address).await.map_err(|error| {
        if error.kind() == io::ErrorKind::AddrInUse {
            BookError::PortInUse(address.port())
        } else {
            BookError::Io(format!("cannot bind {address}"), error)
        }
    })
}

fn local_port(listener: &TcpListener) -> Result<u16, BookError> {
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|e| BookError::Io("cannot read the bound address".into(), e))
}

/// The machine has no IPv6 loopback (IPv6 off, or no such family).
fn no_ipv6(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::AddrNotAvailable
        || error.raw_os_error() == Some(nix::errno::Errno::EAFNOSUPPORT as i32)
}

/// An accept error that passes: out of descriptors or memory, or a client
/// that gave up while it waited in the queue.
fn transient(error: &io::Error) -> bool {
    use nix::errno::Errno;
    matches!(
        error.raw_os_error().map(Errno::from_raw),
        Some(
            Errno::EMFILE
                | Errno::ENFILE
                | Errno::ENOBUFS
                | Errno::ENOMEM
                | Errno::ECONNABORTED
                | Errno::EPERM
                | Errno::EINTR
        )
    )
}
