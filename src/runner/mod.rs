//! The book's Run button, offline: `course serve` answers the requests that
//! mdBook's `book.js` sends to play.rust-lang.org, on the book's own origin.
//!
//! `theme/head.hbs` wraps `fetch` in the page so that the playground's two
//! requests go to `/__course/meta/crates` and `/__course/evaluate.json`,
//! with the token of [`Runner::token`] in a header. Snippets are compiled
//! in a scratch package under `target/runner/` that depends on the crates
//! the book uses (std, tokio, crossbeam, pyo3, course) and is built offline; it
//! is warmed when the server starts, so a snippet after the first costs a
//! small incremental build.
//!
//! The security model: only the reader's own browser, on this machine, from
//! a page of this book, may run code. See [`check`]: loopback only, the
//! `Host` must be a loopback name (DNS rebinding), no cross-site request
//! (`Origin`, `Sec-Fetch-Site`), a per-launch token that only a same-origin
//! script can read, `Content-Type: application/json` (a plain HTML form
//! cannot send it), and no CORS header ever.
//!
//! What a run may use: the snippet's processes together get [`RunLimits`]
//! ([`READER_LIMITS`] for readers), checked by a watchdog every 10 ms, and
//! each of them the kernel's per-process limits
//! ([`spawn::ProcessLimits::of_run`]); the build gets [`BUILD_LIMITS`].
//! Nothing a run starts outlives it: the server is a child subreaper and
//! each run carries a fresh tag, so at its end its process group, its
//! tagged processes and every orphan the server adopted are killed and
//! reaped ([`crate::reap`]), even a `setsid` daemon that cleared its
//! environment. One run or build at a time, so every orphan is the run's.

use std::fmt::Write as _;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::reap::{self, ENV_TAG};
use crate::spawn::{
    self, Captured, Ended, OutputLimit, ProcessLimits, Running,
};

pub use crate::spawn::RunLimits;

mod policy;

pub(crate) use policy::guard;
pub use policy::{
    Launch, Needs, Refused, TOKEN_HEADER, TOKEN_REQUEST_HEADER, check,
    same_user,
};

/// How long a snippet may run (compilation is limited separately).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long compiling a snippet may take once the package is warm.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Output kept from a run (stdout and stderr each).
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// The crates a snippet may use besides std, as the playground lists them.
pub const CRATES: [&str; 4] = ["course", "crossbeam", "pyo3", "tokio"];

/// What a reader's snippet may use: the memory a graded trial's process
/// may map, and a thread for each 2 MiB of it.
pub const READER_LIMITS: RunLimits = RunLimits {
    memory: spawn::MEMORY_LIMIT,
    tasks: 2048,
};

/// What compiling a snippet may use: cargo and the rustc processes it
/// runs at once, one per core, together. Measured on two cores, a
/// snippet's build peaked at 227 MiB and 12 threads, the first build
/// (tokio, crossbeam and course) at 589 MiB and 22; with many cores the
/// first build runs many rustc at once, hence the room. The limit stops a
/// snippet that makes rustc blow up before it takes the machine.
pub const BUILD_LIMITS: RunLimits = RunLimits {
    memory: 8 << 30,
    tasks: 4096,
};

/// Runs book snippets in a scratch package.
#[derive(Debug)]
pub struct Runner {
    dir: PathBuf,
    token: String,
    run_timeout: Duration,
    /// What the processes of one snippet's run may use together.
    limits: RunLimits,
    /// One build at a time: the scratch package has one `main.rs`.
    busy: Arc<tokio::sync::Semaphore>,
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
    /// `root` (its path dependency and its `Cargo.lock`), which gives each
    /// snippet `run_timeout` ([`RUN_TIMEOUT`] for readers) to finish and
    /// [`READER_LIMITS`].
    pub fn new(
        root: &Path,
        dir: PathBuf,
        run_timeout: Duration,
    ) -> std::io::Result<Arc<Runner>> {
        Runner::with_limits(root, dir, run_timeout, READER_LIMITS)
    }

    /// [`Runner::new`] with other limits for each run (tests use small
    /// ones). Makes this process a child subreaper: the orphans of a run
    /// are then its children, to kill and reap.
    pub fn with_limits(
        root: &Path,
        dir: PathBuf,
        run_timeout: Duration,
        limits: RunLimits,
    ) -> std::io::Result<Arc<Runner>> {
        reap::adopt_orphans();
        fs::create_dir_all(dir.join("src"))?;
        // Others need not read the reader's snippets.
        fs::set_permissions(
            &dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        // A JSON string is a valid TOML string, quotes and all.
        let course = serde_json::to_string(&root.display().to_string())
            .unwrap_or_default();
        fs::write(
            dir.join("Cargo.toml"),
            format!(
                "# Written by `course serve`: the package the Run button \
                 compiles snippets in.\n[package]\nname = \"snippet\"\n\
                 version = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
                 [dependencies]\ncourse = {{ path = {course}, \
                 default-features = false }}\ncrossbeam = \"0.8\"\n\
                 pyo3 = {{ version = \"0.30.1\", features = [\"abi3-py39\"] }}\n\
                 tokio = {{ version = \"1\", features = [\"full\"] }}\n\n\
                 [workspace]\n"
            ),
        )?;
        // Chapter 9's programs embed CPython: the course's own probe links
        // it, where there is one (`src/registry/python.rs`).
        let probe = serde_json::to_string(
            &root.join("src/registry/python.rs").display().to_string(),
        )
        .unwrap_or_default();
        fs::write(
            dir.join("build.rs"),
            format!(
                "include!({probe});\n\nfn main() {{\n    link_python();\n}}\n"
            ),
        )?;
        // The course's own versions, so nothing is fetched.
        let lock = root.join("Cargo.lock");
        if lock.exists() && !dir.join("Cargo.lock").exists() {
            fs::copy(lock, dir.join("Cargo.lock"))?;
        }
        Ok(Arc::new(Runner {
            dir,
            token: fresh_token()?,
            run_timeout,
            limits,
            busy: Arc::new(tokio::sync::Semaphore::new(1)),
            waiting: std::sync::atomic::AtomicUsize::new(0),
        }))
    }

    /// How many runs wait for their turn now (at most [`MAX_WAITING`]).
    pub fn waiting(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether a run (or the warming build) holds the runner now.
    pub fn running(&self) -> bool {
        self.busy.available_permits() == 0
    }

    /// The per-launch token a request must carry in [`TOKEN_HEADER`].
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Builds an empty program, so the dependencies are compiled before the
    /// first click, in its turn like a run. Errors are only reported: the
    /// first Run reports them.
    pub async fn warm(self: &Arc<Self>) -> Result<(), String> {
        let Ok(turn) = Arc::clone(&self.busy).acquire_owned().await else {
            return Err("the runner is closed".to_string());
        };
        let runner = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            fs::write(runner.dir.join("src/main.rs"), "fn main() {}\n")
                .map_err(|e| e.to_string())?;
            runner.build().map(|_| ())
        })
        .await
        .unwrap_or_else(|e| Err(format!("the runner failed: {e}")))
    }

    fn build(&self) -> Result<PathBuf, String> {
        let mut command = spawn::cargo();
        command
            .current_dir(&self.dir)
            // rustc's whole diagnostic, as the playground shows it: the
            // code excerpt, the labels, `help:` and the error code.
            .args(["build", "--quiet", "--offline", "--color=never"])
            .env("CARGO_TARGET_DIR", self.dir.join("target"))
            // PyO3 must not link libpython itself (see build.rs above).
            .env("PYO3_BUILD_EXTENSION_MODULE", "1")
            .stdin(Stdio::null());
        let built = run_limited(command, BUILD_TIMEOUT, BUILD_LIMITS)?;
        let stderr = built.stderr_text();
        match built.ended {
            Ended::Exited(status) if status.success() => {
                Ok(self.dir.join("target/debug/snippet"))
            }
            Ended::Exited(_) => Err(stderr),
            Ended::Overran(overrun) => Err(format!(
                "{stderr}\ncompiling was stopped: cargo and rustc used \
                 {overrun}"
            )),
            Ended::TimedOut | Ended::OutputLimit => Err(format!(
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
        // If the page goes away while this waits, the future is dropped:
        // the guard still gives the place in the queue back.
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, SeqCst);
            }
        }
        let waiting = Waiting(&self.waiting);
        let Ok(turn) = Arc::clone(&self.busy).acquire_owned().await else {
            return failed("the runner is closed".to_string());
        };
        drop(waiting);
        let runner = Arc::clone(self);
        // The turn moves into the blocking task: dropping this future (a
        // closed page) cannot start a second build while one runs.
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            runner.evaluate_now(&code)
        })
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
        // The server's environment is none of the snippet's business.
        command.env_clear();
        for keep in ["PATH", "HOME", "LANG", "TMPDIR"] {
            if let Some(value) = std::env::var_os(keep) {
                command.env(keep, value);
            }
        }
        ProcessLimits::of_run(self.limits).apply_to(&mut command);
        die_with_the_server(&mut command);
        let ran = match run_limited(command, self.run_timeout, self.limits) {
            Err(e) => return failed(e),
            Ok(ran) => ran,
        };
        let mut result = format!("{}{}", ran.stdout_text(), ran.stderr_text());
        if ran.held_open {
            result.push_str(
                "\n(the output was still held open by a process the \
                 program started)",
            );
        }
        match ran.ended {
            Ended::Overran(overrun) => {
                let _ = write!(
                    result,
                    "\nstopped: the program's processes used {overrun}"
                );
                Evaluated {
                    result,
                    error: Some("stopped: too much memory or threads".into()),
                }
            }
            Ended::TimedOut | Ended::OutputLimit => {
                let _ = write!(
                    result,
                    "\ntimed out after {} s and was stopped (a deadlock, or \
                     a loop that never ends?)",
                    self.run_timeout.as_secs()
                );
                Evaluated {
                    result,
                    error: Some("timed out".to_string()),
                }
            }
            Ended::Exited(status) => {
                let error = (!status.success()).then(|| {
                    let _ = write!(result, "\n{status}");
                    status.to_string()
                });
                Evaluated { result, error }
            }
        }
    }
}

/// A snippet's processes may each map this much private writable memory
/// (heap and thread stacks), as a graded trial may.
pub const MEMORY_LIMIT: u64 = spawn::MEMORY_LIMIT;

/// Runs a build or a snippet under a deadline, keeping the first
/// [`OUTPUT_LIMIT`] bytes of each stream, with a fresh tag, the orphans
/// counted as its own and a watchdog on `limits`; kills and reaps every
/// process of the run at the end.
fn run_limited(
    mut command: Command,
    timeout: Duration,
    limits: RunLimits,
) -> Result<Captured, String> {
    let tag = fresh_token().map_err(|e| format!("cannot start: {e}"))?;
    command.env(ENV_TAG, tag);
    let start = || -> std::io::Result<Captured> {
        let limit = OutputLimit::keep_first(OUTPUT_LIMIT);
        let mut running = Running::start(command, limit)?
            .with_orphans()
            .watched(limits);
        match running.wait(timeout) {
            Ok(ended) => Ok(running.finish(ended)),
            Err(error) => {
                running.finish(Ended::TimedOut);
                Err(error)
            }
        }
    };
    start().map_err(|e| format!("cannot start: {e}"))
}

fn failed(why: String) -> Evaluated {
    Evaluated {
        result: why.clone(),
        error: Some(why),
    }
}

/// 128 random bits from the kernel, in hex.
fn fresh_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Makes `command`'s child die when the thread that started it ends: when
/// the server stops (Ctrl-C, a crash) or a test that ran a snippet exits,
/// the snippet does not run on as an orphan. The runner's thread waits for
/// the child to the end of the run, so this never cuts a run short.
fn die_with_the_server(command: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed; with no parent to compare,
    // `die_with_parent` calls prctl(2) only and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            reap::die_with_parent(None);
            Ok(())
        });
    }
}
