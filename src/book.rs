//! Building and serving the book, with no tool installed but cargo.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use mdbook_driver::MDBook;

use crate::runner::{self, Runner};

/// Why the book could not be built or served, in words for the reader.
#[derive(Debug)]
pub enum BookError {
    /// mdBook rejected the book (a broken SUMMARY.md, a missing chapter, ...).
    Build(String),
    /// The port is taken by another program.
    PortInUse(u16),
    /// Any other I/O failure, with what we were doing.
    Io(String, io::Error),
}

impl fmt::Display for BookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BookError::Build(why) => write!(f, "cannot build the book: {why}"),
            BookError::PortInUse(port) => write!(
                f,
                "port {port} on 127.0.0.1 is already in use (is another \
                 `course serve` running?); pass --port <N>, or --port 0 to \
                 pick a free one"
            ),
            BookError::Io(what, error) => write!(f, "{what}: {error}"),
        }
    }
}

impl std::error::Error for BookError {}

/// Builds the book whose `book.toml` is in `root` into `out` (by default
/// the `build-dir` of book.toml, `book/`); returns the folder of the HTML.
/// The mermaid preprocessor runs in-process: registering it under its own
/// name replaces the `mdbook-mermaid` command that book.toml names for
/// stock mdbook, so no external program is looked for.
pub fn build(root: &Path, out: Option<&Path>) -> Result<PathBuf, BookError> {
    if !root.join("book.toml").is_file() {
        return Err(BookError::Build(format!(
            "there is no book.toml in {} (pass --root <folder with book.toml>)",
            root.display()
        )));
    }
    let mut book = MDBook::load(root).map_err(build_error)?;
    if let Some(out) = out {
        book.config.build.build_dir = out.to_path_buf();
    }
    book.with_preprocessor(mdbook_mermaid::Mermaid);
    book.build().map_err(build_error)?;
    Ok(book.build_dir_for("html"))
}

fn build_error(error: impl Into<Box<dyn std::error::Error>>) -> BookError {
    let error = error.into();
    let mut why = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        why.push_str(": ");
        why.push_str(&cause.to_string());
        source = cause.source();
    }
    BookError::Build(why)
}

/// Serves the folder `site` on 127.0.0.1:`port` until the process ends.
/// Port 0 picks a free port. `ready` receives the address once bound.
/// Without a runner, the Run button's requests are refused.
pub async fn serve(
    site: PathBuf,
    port: u16,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), BookError> {
    serve_with_runner(site, port, None, ready).await
}

/// [`serve`], with the Run button's runner answering on `/__course/`.
pub async fn serve_with_runner(
    site: PathBuf,
    port: u16,
    runner: Option<Arc<Runner>>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), BookError> {
    // Loopback only: there is no flag for another address.
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
            return Err(BookError::PortInUse(port));
        }
        Err(error) => {
            return Err(BookError::Io(format!("cannot bind {address}"), error));
        }
    };
    let bound = listener.local_addr().map_err(|e| {
        BookError::Io("cannot read the bound address".into(), e)
    })?;
    let state = Served {
        runner,
        port: bound.port(),
        address: bound,
    };
    let port = bound.port();
    let app = axum::Router::new()
        .route("/__course/token", axum::routing::get(token))
        .route("/__course/meta/crates", axum::routing::post(crates))
        .route("/__course/evaluate.json", axum::routing::post(evaluate))
        .layer(axum::extract::DefaultBodyLimit::max(256 * 1024))
        .with_state(Arc::new(state))
        .fallback_service(tower_http::services::ServeDir::new(site))
        .layer(axum::middleware::from_fn(move |request, next| {
            runner::guard(port, request, next)
        }));
    ready(bound);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .map_err(|e| BookError::Io("the server stopped".into(), e))
}

/// What the runner's routes share.
#[derive(Debug)]
struct Served {
    runner: Option<Arc<Runner>>,
    port: u16,
    address: SocketAddr,
}

impl Served {
    /// The runner's request rules (see [`runner::allowed`]).
    fn allowed(
        &self,
        peer: SocketAddr,
        headers: &axum::http::HeaderMap,
        needs: runner::Needs<'_>,
    ) -> Result<(), runner::Refused> {
        runner::allowed(self.port, self.address, peer, headers, needs)
    }
}

type Peer = axum::extract::ConnectInfo<SocketAddr>;

type Reply = (
    axum::http::StatusCode,
    [(&'static str, &'static str); 2],
    String,
);

fn reply(status: u16, body: serde_json::Value) -> Reply {
    (
        axum::http::StatusCode::from_u16(status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
        [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        body.to_string(),
    )
}

fn refused(why: runner::Refused) -> Reply {
    reply(why.0, serde_json::json!({ "error": why.1 }))
}

async fn token(
    axum::extract::State(served): axum::extract::State<Arc<Served>>,
    axum::extract::ConnectInfo(peer): Peer,
    headers: axum::http::HeaderMap,
) -> Reply {
    let needs = runner::Needs::TokenRequest;
    if let Err(why) = served.allowed(peer, &headers, needs) {
        return refused(why);
    }
    match &served.runner {
        Some(runner) => {
            reply(200, serde_json::json!({ "token": runner.token() }))
        }
        None => reply(404, serde_json::json!({ "error": "no runner" })),
    }
}

async fn crates(
    axum::extract::State(served): axum::extract::State<Arc<Served>>,
    axum::extract::ConnectInfo(peer): Peer,
    headers: axum::http::HeaderMap,
) -> Reply {
    let needs = runner::Needs::Nothing;
    if let Err(why) = served.allowed(peer, &headers, needs) {
        return refused(why);
    }
    let crates: Vec<serde_json::Value> = runner::CRATES
        .iter()
        .map(|name| serde_json::json!({ "id": name, "name": name }))
        .collect();
    reply(200, serde_json::json!({ "crates": crates }))
}

async fn evaluate(
    axum::extract::State(served): axum::extract::State<Arc<Served>>,
    axum::extract::ConnectInfo(peer): Peer,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let Some(runner) = &served.runner else {
        return reply(404, serde_json::json!({ "error": "no runner" }));
    };
    let needs = runner::Needs::TokenAndJson(runner.token());
    if let Err(why) = served.allowed(peer, &headers, needs) {
        return refused(why);
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return reply(
            400,
            serde_json::json!({ "error": "the body is not JSON" }),
        );
    };
    let Some(code) = request["code"].as_str() else {
        return reply(400, serde_json::json!({ "error": "no code" }));
    };
    let done = runner.evaluate(code.to_string()).await;
    reply(
        200,
        serde_json::json!({ "result": done.result, "error": done.error }),
    )
}
