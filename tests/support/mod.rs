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
    serve_with_runner_on(site, 0, timeout)
}

/// [`serve_with_runner_in_background`] on a given `port`.
#[allow(dead_code, reason = "not every test file uses every helper")]
pub fn serve_with_runner_on(
    site: PathBuf,
    port: u16,
    timeout: Duration,
) -> (Launch, Arc<Runner>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runner =
        Runner::new(root, root.join("target/runner-test"), timeout).unwrap();
    let serving = Arc::clone(&runner);
    let launch = serve_with(move |ready| {
        course::book::serve_with_runner(site, port, Some(serving), ready)
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

/// The Chromium the browser tests run: `CHROMIUM`, or `/usr/bin/chromium`.
#[allow(dead_code, reason = "not every test file uses every helper")]
pub fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Runs headless Chromium on `url` with `extra` flags and the browser
/// profile in `profile` (kept between calls: its caches and service
/// workers stay), giving the page's scripts ten seconds of virtual time;
/// its stdout.
#[allow(dead_code, reason = "not every test file uses every helper")]
pub fn chromium_in(profile: &Path, url: &str, extra: &[&str]) -> String {
    let mut command = std::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
        ])
        .args(extra)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url);
    // Only detects a hang; a normal load takes a few seconds.
    let limit = course::spawn::OutputLimit::keep_first(64 << 20);
    let ran = course::spawn::run(command, Duration::from_secs(120), limit)
        .unwrap_or_else(|error| {
            panic!("cannot start {}: {error}", chromium().display())
        });
    if ran.status().is_none() {
        panic!("chromium did not finish loading {url}");
    }
    ran.stdout_text()
}
