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
        .fallback_service(tower_http::services::ServeDir::new(site))
        .layer(axum::middleware::from_fn(move |request, next| {
            runner::guard(guarded.clone(), request, next)
        }));
    ready(&launch);
    listeners
        .serve(app)
        .await
        .map_err(|e| BookError::Io("the server stopped".into(), e))
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
