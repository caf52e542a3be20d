//! A worker process for the exercises of chapters 2, 7 and 8, shipped as the
//! `worker` binary of the `exercises` and `solutions` crates (each a
//! one-line `main` that calls [`main`]). Graded tests find it with
//! `env!("CARGO_BIN_EXE_worker")` and tell it what to do with arguments:
//!
//! | arguments | what the worker does |
//! |---|---|
//! | `exit N` | exits with status N |
//! | `abort` | aborts (SIGABRT) |
//! | `segfault` | dies of SIGSEGV, as a bad pointer would |
//! | `flood BYTES` | writes BYTES to stdout and BYTES to stderr, interleaved |
//! | `script FILE OUTCOME...` | run k does OUTCOME k (`ok`, `abort`, `segfault`, `exit:N`); FILE counts runs |
//! | `env` | prints its environment, one `KEY=VALUE` per line |
//! | `pwd` | prints its working directory |
//! | `emit-then-wait FLAG` | prints `ping`, then waits until the file FLAG exists |
//! | `lines N` | prints N numbered lines |
//! | `upper` | copies stdin to stdout in upper case, line by line |
//! | `drain-then-exit N` | reads stdin to its end, then exits with status N |
//! | `flag-on-first-line FLAG` | copies stdin to stdout; creates FLAG once the first line has arrived |
//! | `pool` | chapter 7's pool worker: answers each job (a line) with a line `PID ANSWER`; see `pool_job` |
//! | `rendezvous DIR N` | creates `DIR/PID`, waits until DIR holds N entries, then prints `PID` |

use std::fs;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use nix::sys::signal::{self, SigHandler, Signal};

/// Runs the worker with the process's arguments.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("worker: {error}");
            ExitCode::from(70)
        }
    }
}

fn run(args: &[&str]) -> io::Result<ExitCode> {
    match args {
        ["exit", code] => Ok(ExitCode::from(number(code)? as u8)),
        ["abort"] => std::process::abort(),
        ["segfault"] => segfault(),
        ["flood", bytes] => flood(number(bytes)?),
        ["script", state, outcomes @ ..] if !outcomes.is_empty() => {
            script(Path::new(state), outcomes)
        }
        ["env"] => {
            let mut out = io::stdout().lock();
            for (key, value) in std::env::vars_os() {
                writeln!(
                    out,
                    "{}={}",
                    key.to_string_lossy(),
                    value.to_string_lossy()
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        ["pwd"] => {
            println!("{}", std::env::current_dir()?.display());
            Ok(ExitCode::SUCCESS)
        }
        ["emit-then-wait", flag] => {
            println!("ping");
            io::stdout().flush()?;
            // The grader's deadline ends the wait if FLAG never appears.
            while !Path::new(flag).exists() {
                thread::sleep(Duration::from_millis(5));
            }
            Ok(ExitCode::SUCCESS)
        }
        ["lines", count] => {
            let mut out = io::stdout().lock();
            for n in 1..=number(count)? {
                writeln!(out, "line {n}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        ["upper"] => copy_lines(|line| line.to_uppercase(), || Ok(())),
        ["drain-then-exit", code] => {
            io::copy(&mut io::stdin().lock(), &mut io::sink())?;
            Ok(ExitCode::from(number(code)? as u8))
        }
        ["flag-on-first-line", flag] => {
            let flag = Path::new(flag).to_path_buf();
            copy_lines(|line| line.to_string(), move || fs::write(&flag, ""))
        }
        ["pool"] => pool(),
        ["rendezvous", dir, count] => {
            rendezvous(Path::new(dir), number(count)?)
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown arguments {args:?}; see course::worker"),
        )),
    }
}

fn number(text: &str) -> io::Result<u64> {
    text.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a number: {text}"),
        )
    })
}

fn segfault() -> ! {
    // Raising the signal is what a bad pointer dereference ends in, without
    // undefined behaviour in this program. Rust's runtime handles SIGSEGV
    // to report stack overflows, so the default action comes back first.
    // SAFETY: installing SIG_DFL runs no code of ours in a signal handler.
    let _ = unsafe { signal::signal(Signal::SIGSEGV, SigHandler::SigDfl) };
    let _ = signal::raise(Signal::SIGSEGV);
    unreachable!("SIGSEGV did not end the process")
}

/// Writes `bytes` to each of stdout and stderr in alternating 4 KiB
/// chunks, so a reader that drains only one pipe blocks the worker on the
/// other once that pipe's buffer is full.
fn flood(bytes: u64) -> io::Result<ExitCode> {
    let chunk = [b'o'; 4096];
    let errs = [b'e'; 4096];
    let (mut out, mut err) = (io::stdout().lock(), io::stderr().lock());
    let mut left = bytes as usize;
    while left > 0 {
        let n = left.min(chunk.len());
        out.write_all(&chunk[..n])?;
        out.flush()?;
        err.write_all(&errs[..n])?;
        left -= n;
    }
    Ok(ExitCode::SUCCESS)
}

/// Run k (counted in `state`) does `outcomes[k]`; the last repeats.
fn script(state: &Path, outcomes: &[&str]) -> io::Result<ExitCode> {
    let run: usize = fs::read_to_string(state)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    fs::write(state, (run + 1).to_string())?;
    match outcomes[run.min(outcomes.len() - 1)] {
        "ok" => Ok(ExitCode::SUCCESS),
        "abort" => std::process::abort(),
        "segfault" => segfault(),
        other => match other.strip_prefix("exit:") {
            Some(code) => Ok(ExitCode::from(number(code)? as u8)),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown outcome {other}"),
            )),
        },
    }
}

/// Copies stdin to stdout line by line through `map`, flushing each line
/// so the next stage sees it at once; calls `first` after the first line.
fn copy_lines(
    map: impl Fn(&str) -> String,
    first: impl FnOnce() -> io::Result<()>,
) -> io::Result<ExitCode> {
    let mut first = Some(first);
    let mut out = io::stdout().lock();
    for line in io::stdin().lock().lines() {
        writeln!(out, "{}", map(&line?))?;
        out.flush()?;
        if let Some(first) = first.take() {
            first()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Chapter 7's pool worker: a long-lived process that answers each line of
/// stdin, a job, with one line `PID ANSWER`, flushed at once since the pool
/// is waiting for it, until stdin ends.
fn pool() -> io::Result<ExitCode> {
    let pid = std::process::id();
    let mut out = io::stdout().lock();
    for job in io::stdin().lock().lines() {
        let answer = pool_job(&job?, pid)?;
        writeln!(out, "{pid} {answer}")?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One job of the pool worker, and its answer. A FILE or DIR is the rest
/// of the line, spaces included.
///
/// - `countdown N`: counts N down to zero; answers `counted N`.
/// - `touch FILE`: creates FILE; answers `touched`.
/// - `wait FILE`: waits until FILE exists; answers `waited`.
/// - `meet ROUND DIR`: announces itself by creating `DIR/ROUND-PID`, waits
///   until `DIR/go-ROUND` exists (a test creates it once enough workers
///   have announced the round), then answers `met ROUND`.
/// - anything else: the worker exits with status 70 and no answer, which
///   is what a crash looks like to the pool.
fn pool_job(job: &str, pid: u32) -> io::Result<String> {
    let (verb, rest) = job.split_once(' ').unwrap_or((job, ""));
    match verb {
        "countdown" => {
            let mut n = number(rest)?;
            let mut steps = 0;
            while n > 0 {
                n = std::hint::black_box(n - 1);
                steps += 1;
            }
            Ok(format!("counted {steps}"))
        }
        "touch" => fs::write(rest, "").map(|()| "touched".to_string()),
        "wait" => {
            wait_for(Path::new(rest));
            Ok("waited".to_string())
        }
        "meet" => {
            let (round, dir) = rest.split_once(' ').ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "meet ROUND DIR")
            })?;
            let dir = Path::new(dir);
            fs::write(dir.join(format!("{round}-{pid}")), "")?;
            wait_for(&dir.join(format!("go-{round}")));
            Ok(format!("met {round}"))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown pool job {job:?}; see course::worker"),
        )),
    }
}

/// Chapter 8's concurrency check: announces itself by creating `DIR/PID`,
/// waits until `count` processes have announced themselves there (so it
/// ends only if that many run at once), then prints its pid.
fn rendezvous(dir: &Path, count: u64) -> io::Result<ExitCode> {
    let pid = std::process::id();
    fs::write(dir.join(pid.to_string()), "")?;
    // Entries only ever appear; the grader's deadline ends a wait for
    // processes that never come.
    while (fs::read_dir(dir)?.count() as u64) < count {
        thread::sleep(Duration::from_millis(1));
    }
    println!("{pid}");
    Ok(ExitCode::SUCCESS)
}

/// Waits until `path` exists. Files only ever appear, so looking every
/// millisecond cannot miss one; the grader's deadline ends a wait for a
/// file that never comes.
fn wait_for(path: &Path) {
    while !path.exists() {
        thread::sleep(Duration::from_millis(1));
    }
}
