//! Serving the built book: the pages, and the Run button's routes under
//! `/__course/` when a runner is given.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::BookError;
use super::listen::Listeners;
use crate::runner::{self, Launch, Runner};

/// The largest request body the runner reads (a snippet is a few KiB).
pub const BODY_LIMIT: usize = 256 * 1024;

/// How long a request's body may take to arrive once its headers have.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the folder `site` on 127.0.0.1 and ::1, `port` (0 picks a free
/// one), until the process ends. `ready` receives the [`Launch`] once
/// bound: its URL, `http://<fresh label>.localhost:<port>/`, is the book's
/// address for this launch only. Without a runner, the Run button's
/// requests are refused.
pub async fn serve(
    site: PathBuf,
    port: u16,
    ready: impl FnOnce(&Launch),
) -> Result<(), BookError> {
    serve_with_runner(site, port, None, ready).await
}

/// [`serve`], with the Run button's runner answering on `/__course/`.
pub async fn serve_with_runner(
    site: PathBuf,
    port: u16,
    runner: Option<Arc<Runner>>,
    ready: impl FnOnce(&Launch),
) -> Result<(), BookError> {
    // Loopback only: there is no flag for another address.
    let listeners = Listeners::bind(port).await?;
    let launch = Launch::fresh(listeners.port()?)
        .map_err(|e| BookError::Io("cannot read /dev/urandom".into(), e))?;
    let state = Arc::new(Served {
        runner,
        launch: launch.clone(),
    });
    let guarded = launch.clone();
    let app = axum::Router::new()
        .route("/__course/token", axum::routing::get(token))
        .route("/__course/meta/crates", axum::routing::post(crates))
        .route("/__course/evaluate.json", axum::routing::post(evaluate))
        .with_state(state)
        .fallback_service(pages(site))
        .layer(axum::middleware::from_fn(move |request, next| {
            runner::guard(guarded.clone(), request, next)
        }));
    ready(&launch);
    listeners
        .serve(app)
        .await
        .map_err(|e| BookError::Io("the server stopped".into(), e))
}

/// The book's files: compressed for a browser that accepts gzip or
/// brotli, and marked with how long the browser may keep them
/// ([`cache_policy`]). The runner's routes are outside: their replies are
/// small, and each is marked `no-store` by [`reply`].
fn pages(
    site: PathBuf,
) -> impl tower::Service<
    axum::extract::Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ Sync
+ 'static {
    use tower_http::compression::predicate::{
        DefaultPredicate, NotForContentType, Predicate as _,
    };
    // WOFF fonts are compressed already (`font/woff` and `font/woff2`);
    // images other than SVG are left out by the default predicate.
    let compressible =
        DefaultPredicate::new().and(NotForContentType::const_new("font/woff"));
    // tower-http's default levels (gzip 6; brotli 4, what nginx uses on the
    // fly) take mermaid.min.js from 2.6 MB to about 770 KB with gzip and
    // 735 KB with brotli; brotli's highest level would take seconds.
    let compression = tower_http::compression::CompressionLayer::new()
        .compress_when(compressible);
    tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(cache_policy))
        .layer(compression)
        .service(tower_http::services::ServeDir::new(site))
}

/// How long a browser may keep a file mdBook named by its content (a `-`
/// and eight hex digits, see [`hash_named`]): a year, without asking
/// again, since a file whose content changes gets another name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Marks each file of the book with how long a browser may keep it. A
/// hash-named file is [`IMMUTABLE`]; anything else (the pages, the
/// figures, the timelines' JSON) is `no-cache`: the browser keeps it but
/// asks each time (`If-Modified-Since`, answered by a bodiless 304 when
/// nothing changed), since rebuilding the book changes it under the same
/// name. On the book's own address a year's caching cannot outlive the
/// launch anyway: each launch of `course serve` has an origin of its own
/// (see `Launch`), and browsers keep their caches per origin. Under
/// `127.0.0.1:<port>`, which may come back with `--port`, a file kept
/// from an earlier launch is still right, since its name changes with its
/// content.
async fn cache_policy(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    let hashed = hash_named(request.uri().path());
    let mut response = next.run(request).await;
    let found = response.status().is_success()
        || response.status() == StatusCode::NOT_MODIFIED;
    // A missing file may appear once the book is rebuilt.
    let policy = if hashed && found {
        IMMUTABLE
    } else {
        "no-cache"
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    response
}

/// Whether the last segment of `path` is named the way mdBook names the
/// files it fingerprints: `name-0123abcd.extensions`, a `-` and exactly
/// eight lowercase hex digits (the start of the content's SHA-256) just
/// before the first `.` of the file name, after a name that is not empty.
fn hash_named(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or_default();
    let Some((stem, _extensions)) = file.split_once('.') else {
        return false;
    };
    let Some((name, hash)) = stem.rsplit_once('-') else {
        return false;
    };
    !name.is_empty()
        && hash.len() == 8
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What the runner's routes share.
#[derive(Debug)]
struct Served {
    runner: Option<Arc<Runner>>,
    launch: Launch,
}

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
    headers: axum::http::HeaderMap,
) -> Reply {
    let needs = runner::Needs::TokenRequest;
    if let Err(why) = runner::check(&headers, &served.launch, needs) {
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
    headers: axum::http::HeaderMap,
) -> Reply {
    let needs = runner::Needs::Nothing;
    if let Err(why) = runner::check(&headers, &served.launch, needs) {
        return refused(why);
    }
    let crates: Vec<serde_json::Value> = runner::CRATES
        .iter()
        .map(|name| serde_json::json!({ "id": name, "name": name }))
        .collect();
    reply(200, serde_json::json!({ "crates": crates }))
}

/// Runs a snippet. Every check is made on the headers, before the body is
/// read; the body then has [`BODY_TIMEOUT`] to arrive, and at most
/// [`BODY_LIMIT`] bytes.
async fn evaluate(
    axum::extract::State(served): axum::extract::State<Arc<Served>>,
    request: axum::extract::Request,
) -> Reply {
    let Some(runner) = &served.runner else {
        return reply(404, serde_json::json!({ "error": "no runner" }));
    };
    let needs = runner::Needs::TokenAndJson(runner.token());
    if let Err(why) = runner::check(request.headers(), &served.launch, needs) {
        return refused(why);
    }
    let announced = request
        .headers()
        .get("content-length")
        .and_then(|length| length.to_str().ok()?.parse::<usize>().ok());
    if announced.is_some_and(|length| length > BODY_LIMIT) {
        return reply(
            413,
            serde_json::json!({ "error": "the body is too large" }),
        );
    }
    let reading = axum::body::to_bytes(request.into_body(), BODY_LIMIT);
    let body = match tokio::time::timeout(BODY_TIMEOUT, reading).await {
        Err(_) => {
            return reply(
                408,
                serde_json::json!({ "error": "the body did not arrive" }),
            );
        }
        Ok(Err(_)) => {
            return reply(
                413,
                serde_json::json!({ "error": "the body is too large or cut off" }),
            );
        }
        Ok(Ok(body)) => body,
    };
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
