//! Helpers shared by the test files that build or serve the book
//! (`book.rs`, `browser.rs`, `runner.rs`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use course::runner::{Launch, Runner};

/// Builds the real book into a fresh temporary folder; returns the folder
/// (keep it alive) and the HTML inside it.
#[allow(dead_code, reason = "not every test file uses every helper")]
pub fn build_book() -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let site = course::book::build(root, Some(out.path()))
        .unwrap_or_else(|error| panic!("{error}"));
    (out, site)
}

/// Serves `site` with the Run button's runner (scratch package in
/// `target/runner-test`, `timeout` to run a snippet), like
/// [`serve_in_background`]; returns the launch and the runner.
#[allow(dead_code, reason = "not every test file uses every helper")]
pub fn serve_with_runner_in_background(
    site: PathBuf,
    timeout: Duration,
) -> (Launch, Arc<Runner>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runner =
        Runner::new(root, root.join("target/runner-test"), timeout).unwrap();
    let serving = Arc::clone(&runner);
    let launch = serve_with(move |ready| {
        course::book::serve_with_runner(site, 0, Some(serving), ready)
    });
    (launch, runner)
}

/// Serves `site` with `course::book::serve` on a free port, on a thread
/// of its own for the rest of the test; returns the launch (its address
/// and its own host name).
#[allow(dead_code, reason = "not every test file uses every helper")]
pub fn serve_in_background(site: PathBuf) -> Launch {
    serve_with(move |ready| course::book::serve(site, 0, ready))
}

/// Runs a server on a tokio runtime of its own thread; its launch.
fn serve_with<F, S>(serve: S) -> Launch
where
    S: FnOnce(Box<dyn FnOnce(&Launch) + Send>) -> F + Send + 'static,
    F: std::future::Future<Output = Result<(), course::book::BookError>>,
{
    let (address_tx, address_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let ready = Box::new(move |launch: &Launch| {
            address_tx.send(launch.clone()).unwrap();
        });
        let served = runtime.block_on(serve(ready));
        panic!("the server stopped: {served:?}");
    });
    // Only detects a server that never starts.
    address_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server did not start")
}
