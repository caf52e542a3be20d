//! Helpers shared by the book's test files (`book.rs`, `browser.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Builds the real book into a fresh temporary folder; returns the folder
/// (keep it alive) and the HTML inside it.
pub fn build_book() -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let site = course::book::build(root, Some(out.path()))
        .unwrap_or_else(|error| panic!("{error}"));
    (out, site)
}

/// Serves `site` with the Run button's runner (scratch package in
/// `target/runner-test`, `timeout` to run a snippet), like
/// [`serve_in_background`].
#[allow(dead_code, reason = "not every test file uses every helper")]
pub fn serve_with_runner_in_background(
    site: PathBuf,
    timeout: Duration,
) -> SocketAddr {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runner =
        course::runner::Runner::new(root, root.join("target/runner-test"))
            .unwrap()
            .with_run_timeout(timeout);
    let (address_tx, address_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let served = runtime.block_on(course::book::serve_with_runner(
            site,
            0,
            Some(runner),
            |a| address_tx.send(a).unwrap(),
        ));
        panic!("the server stopped: {served:?}");
    });
    // Only detects a server that never starts.
    address_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server did not start")
}

/// Serves `site` with `course::book::serve` on a free port of 127.0.0.1,
/// on a thread of its own for the rest of the test; returns the address.
pub fn serve_in_background(site: PathBuf) -> SocketAddr {
    let (address_tx, address_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let served = runtime.block_on(course::book::serve(site, 0, |a| {
            address_tx.send(a).unwrap();
        }));
        panic!("the server stopped: {served:?}");
    });
    // Only detects a server that never starts.
    address_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server did not start")
}
