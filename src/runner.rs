//! The book's Run button, offline: `course serve` answers the requests that
//! mdBook's `book.js` sends to play.rust-lang.org, on the book's own origin.
//!
//! `theme/head.hbs` wraps `fetch` in the page so that the playground's two
//! requests go to `/__course/meta/crates` and `/__course/evaluate.json`,
//! with the token of [`Runner::token`] in a header. Snippets are compiled
//! in a scratch package under `target/runner/` that depends on the crates
//! the book uses (std, tokio, crossbeam, course) and is built offline; it
//! is warmed when the server starts, so a snippet after the first costs a
//! small incremental build.
//!
//! The security model: only the reader's own browser, on this machine, from
//! a page of this book, may run code. See [`check`]: loopback only, the
//! `Host` must be a loopback name (DNS rebinding), no cross-site request
//! (`Origin`, `Sec-Fetch-Site`), a per-launch token that only a same-origin
//! script can read, `Content-Type: application/json` (a plain HTML form
//! cannot send it), and no CORS header ever.

use std::fmt::Write as _;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use wait_timeout::ChildExt as _;

/// The header that carries the token.
pub const TOKEN_HEADER: &str = "x-course-token";

/// How long a snippet may run (compilation is limited separately).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long compiling a snippet may take once the package is warm.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Output kept from a run (stdout and stderr each).
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// The crates a snippet may use besides std, as the playground lists them.
pub const CRATES: [&str; 3] = ["course", "crossbeam", "tokio"];

/// Runs book snippets in a scratch package.
#[derive(Debug)]
pub struct Runner {
    dir: PathBuf,
    token: String,
    run_timeout: Duration,
    /// One build at a time: the scratch package has one `main.rs`.
    busy: tokio::sync::Semaphore,
    /// Runs waiting for their turn; past [`MAX_WAITING`], refused.
    waiting: std::sync::atomic::AtomicUsize,
}

/// How many Run clicks may wait for their turn at once.
pub const MAX_WAITING: usize = 4;

/// What the playground protocol answers: `result` (the output) or `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    /// What book.js shows under the snippet.
    pub result: String,
    /// Set when the snippet did not compile or run to success.
    pub error: Option<String>,
}

impl Runner {
    /// A runner whose scratch package lives in `dir`, for the course at
    /// `root` (its path dependency and its `Cargo.lock`).
    pub fn new(root: &Path, dir: PathBuf) -> std::io::Result<Arc<Runner>> {
        fs::create_dir_all(dir.join("src"))?;
        let course = root.display().to_string().replace('\\', "\\\\");
        fs::write(
            dir.join("Cargo.toml"),
            format!(
                "# Written by `course serve`: the package the Run button \
                 compiles snippets in.\n[package]\nname = \"snippet\"\n\
                 version = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
                 [dependencies]\ncourse = {{ path = \"{course}\", \
                 default-features = false }}\ncrossbeam = \"0.8\"\n\
                 tokio = {{ version = \"1\", features = [\"full\"] }}\n\n\
                 [workspace]\n"
            ),
        )?;
        // The course's own versions, so nothing is fetched.
        let lock = root.join("Cargo.lock");
        if lock.exists() && !dir.join("Cargo.lock").exists() {
            fs::copy(lock, dir.join("Cargo.lock"))?;
        }
        let run_timeout = std::env::var("COURSE_RUNNER_TIMEOUT_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(RUN_TIMEOUT, Duration::from_secs);
        Ok(Arc::new(Runner {
            dir,
            token: fresh_token(),
            run_timeout,
            busy: tokio::sync::Semaphore::new(1),
            waiting: std::sync::atomic::AtomicUsize::new(0),
        }))
    }

    /// The same runner with another deadline for running a snippet.
    pub fn with_run_timeout(self: Arc<Self>, timeout: Duration) -> Arc<Self> {
        let mut runner =
            Arc::try_unwrap(self).unwrap_or_else(|shared| Runner {
                dir: shared.dir.clone(),
                token: shared.token.clone(),
                run_timeout: shared.run_timeout,
                busy: tokio::sync::Semaphore::new(1),
                waiting: std::sync::atomic::AtomicUsize::new(0),
            });
        runner.run_timeout = timeout;
        Arc::new(runner)
    }

    /// The per-launch token a request must carry in [`TOKEN_HEADER`].
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Builds an empty program, so the dependencies are compiled before the
    /// first click. Errors are only reported: the first Run reports them.
    pub fn warm(&self) -> Result<(), String> {
        fs::write(self.dir.join("src/main.rs"), "fn main() {}\n")
            .map_err(|e| e.to_string())?;
        self.build().map(|_| ())
    }

    fn build(&self) -> Result<PathBuf, String> {
        let mut command = Command::new(
            std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
        );
        command
            .current_dir(&self.dir)
            .args(["build", "--quiet", "--offline", "--message-format=short"])
            .env("CARGO_TARGET_DIR", self.dir.join("target"))
            .stdin(Stdio::null());
        let (status, _, stderr) = run_limited(command, BUILD_TIMEOUT)?;
        match status {
            Some(status) if status.success() => {
                Ok(self.dir.join("target/debug/snippet"))
            }
            Some(_) => Err(stderr),
            None => Err(format!(
                "compiling took longer than {} s",
                BUILD_TIMEOUT.as_secs()
            )),
        }
    }

    /// Compiles and runs one snippet, one at a time.
    pub async fn evaluate(self: &Arc<Self>, code: String) -> Evaluated {
        use std::sync::atomic::Ordering::SeqCst;
        if self.waiting.fetch_add(1, SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, SeqCst);
            return failed(format!(
                "busy: {MAX_WAITING} runs are already waiting; try again"
            ));
        }
        let _turn = self.busy.acquire().await;
        self.waiting.fetch_sub(1, SeqCst);
        let runner = Arc::clone(self);
        tokio::task::spawn_blocking(move || runner.evaluate_now(&code))
            .await
            .unwrap_or_else(|e| Evaluated {
                result: String::new(),
                error: Some(format!("the runner failed: {e}")),
            })
    }

    fn evaluate_now(&self, code: &str) -> Evaluated {
        if let Err(e) = fs::write(self.dir.join("src/main.rs"), code) {
            return failed(format!("cannot write the snippet: {e}"));
        }
        let binary = match self.build() {
            Ok(binary) => binary,
            Err(errors) => return failed(errors),
        };
        let mut command = Command::new(binary);
        command.current_dir(&self.dir).stdin(Stdio::null());
        limit_memory(&mut command);
        match run_limited(command, self.run_timeout) {
            Err(e) => failed(e),
            Ok((None, stdout, stderr)) => Evaluated {
                result: format!(
                    "{stdout}{stderr}\ntimed out after {} s and was stopped \
                     (a deadlock, or a loop that never ends?)",
                    self.run_timeout.as_secs()
                ),
                error: Some("timed out".to_string()),
            },
            Ok((Some(status), stdout, stderr)) => {
                let mut result = format!("{stdout}{stderr}");
                let error = (!status.success()).then(|| {
                    let _ = write!(result, "\n{status}");
                    status.to_string()
                });
                Evaluated { result, error }
            }
        }
    }
}

/// A snippet may map this much private writable memory (heap and thread
/// stacks), as a graded trial may.
pub const MEMORY_LIMIT: u64 = crate::grader::MEMORY_LIMIT;

/// Sets [`MEMORY_LIMIT`] and no core files in the child before it runs.
fn limit_memory(command: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed; it calls setrlimit(2) only,
    // which is, and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            use nix::sys::resource::{Resource, setrlimit};
            setrlimit(Resource::RLIMIT_DATA, MEMORY_LIMIT, MEMORY_LIMIT)?;
            setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
            Ok(())
        });
    }
}

fn failed(why: String) -> Evaluated {
    Evaluated {
        result: why.clone(),
        error: Some(why),
    }
}

/// Runs `command` in a process group of its own with a deadline, keeping at
/// most [`OUTPUT_LIMIT`] of each output; kills the whole group at the end.
/// The status (`None` on timeout), stdout and stderr.
fn run_limited(
    mut command: Command,
    timeout: Duration,
) -> Result<(Option<std::process::ExitStatus>, String, String), String> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child =
        command.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            if let Some(pipe) = pipe {
                let mut pipe = pipe;
                let _ = (&mut pipe)
                    .take(OUTPUT_LIMIT as u64)
                    .read_to_end(&mut kept);
                // Past the cap, drain to nowhere, so a program that prints
                // a lot and ends is not blocked on a full pipe.
                let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            }
            String::from_utf8_lossy(&kept).into_owned()
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let status = child.wait_timeout(timeout).map_err(|e| e.to_string())?;
    // Whatever happened, nothing the snippet started outlives it; this also
    // closes the pipes of a flood that passed the limit.
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    if status.is_none() {
        let _ = child.wait();
    }
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    Ok((status, stdout, stderr))
}

fn fresh_token() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    // Two OS-seeded hashes: 128 bits the page cannot guess.
    (0..2)
        .map(|i| {
            let mut hasher =
                std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u32(std::process::id());
            hasher.write_u8(i);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

/// Why a request was refused (the HTTP status and the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub u16, pub &'static str);

/// The checks every runner request passes before anything runs. `port` is
/// the port the server listens on.
pub fn check(
    headers: &axum::http::HeaderMap,
    port: u16,
    token: Option<&str>,
    json_body: bool,
) -> Result<(), Refused> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let allowed_hosts = [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ];
    let host = header("host").unwrap_or("");
    if !allowed_hosts.iter().any(|allowed| allowed == host) {
        return Err(Refused(
            403,
            "the Host is not this machine's loopback address",
        ));
    }
    if let Some(origin) = header("origin") {
        if origin != format!("http://{host}") {
            return Err(Refused(403, "a request from another site"));
        }
    }
    if let Some(site) = header("sec-fetch-site") {
        if site != "same-origin" {
            return Err(Refused(403, "a request from another site"));
        }
    }
    if let Some(token) = token {
        if header(TOKEN_HEADER) != Some(token) {
            return Err(Refused(403, "no valid token: reload the page"));
        }
    }
    if json_body {
        let json = header("content-type").is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        });
        if !json {
            return Err(Refused(415, "the body must be application/json"));
        }
    }
    Ok(())
}
