//! `course`: build and serve the book, grade the exercises.
//!
//! `cargo run --release` runs `course serve`: build the book in-process,
//! then serve it on this machine at a fresh
//! `http://<random>.localhost:<port>/`. `cargo course grade` (an alias
//! in `.cargo/config.toml`) grades; `cargo course --help` lists the rest.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use course::cli::{
    self,
    bench::{Effort, WorkerMode},
    grade::{Options, Package},
};

/// The course's command line.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The folder with book.toml (default: this repository).
    #[arg(long, global = true, default_value = env!("CARGO_MANIFEST_DIR"))]
    root: PathBuf,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the book and serve it on this machine only (the default), at
    /// a new address each launch.
    Serve {
        /// The port (on 127.0.0.1 and ::1); 0, the default, picks a free
        /// one.
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Build the book into book/ (it also reads from file://).
    Build,
    /// Grade your exercises: a chapter (`ch03`), an exercise
    /// (`ch03::with_gil`), or everything. A chapter that does not compile
    /// is reported as BUILD-ERROR and the others are still graded.
    Grade {
        /// `chNN`, `chNN::exercise` or a trial id; all when absent.
        selection: Option<String>,
        /// Also write the report as JSON to this file (for instructors).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Grade the loom models of the atomics exercises instead: every
        /// interleaving (up to a bound) of their threads, which finds
        /// memory orderings too weak for a real multi-core machine.
        #[arg(long)]
        loom: bool,
    },
    /// List every exercise with its status (done, in progress, not started,
    /// does not compile) and points.
    List,
    /// Grade, then show only what to do next: the first unfinished
    /// exercise, its file, page and hint command.
    Next,
    /// Put an exercise's code back as the course shipped it (asks first).
    Reset {
        /// The exercise: `ch01::spawn_all`, or `spawn_all`.
        exercise: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Grade again each time you save an exercise file.
    Watch {
        /// What to grade first: `chNN`, or everything.
        selection: Option<String>,
        /// Check files every second instead of waiting for notifications
        /// (for file systems that do not notify).
        #[arg(long)]
        poll: bool,
    },
    /// Show the next hint for an exercise (`ch01::spawn_all`).
    Hint {
        /// The exercise: `ch01::spawn_all`, or `spawn_all`.
        exercise: String,
        /// Show every hint at once.
        #[arg(long)]
        all: bool,
        /// Hide the exercise's hints again.
        #[arg(long)]
        reset: bool,
        /// Print what the exercise promises and the trial that checks each
        /// promise, instead of a hint.
        #[arg(long, conflicts_with_all = ["all", "reset"])]
        spec: bool,
    },
    /// Check the course: every stub scores 0, every solution 100 %, and
    /// the graded files match their recorded checksums.
    Verify {
        /// Record the graded files' checksums and points instead.
        #[arg(long)]
        write_sums: bool,
    },
    /// Measure the notes' claims on this machine: countdown in Python and
    /// Rust, Python threads calling Rust, the convoy effect under the toy
    /// GILs, creation cost, memory.
    Bench {
        /// A rough run in under a minute.
        #[arg(long)]
        quick: bool,
        /// Put the result in the book's Measurements appendix.
        #[arg(long)]
        write: bool,
        /// For the tests: every step once, with meaningless figures.
        #[arg(long, hide = true)]
        smoke: bool,
    },
    /// Record a timeline of the GIL story now (who ran when, one lane per
    /// thread or task) and print it as text; without a name, list them.
    Trace {
        /// The timeline, e.g. `toy_new_gil_io_5ms`.
        name: Option<String>,
        /// Write the timeline (all of them without a name) as JSON files
        /// into this folder instead of printing it.
        #[arg(long, hide = true, value_name = "DIR")]
        json_dir: Option<PathBuf>,
    },
    /// A helper process of `bench` (not for direct use).
    #[command(hide = true)]
    BenchWorker {
        /// What the helper does.
        #[arg(value_enum)]
        mode: WorkerMode,
        /// How many (steps, threads or tasks; milliseconds for
        /// python-calls-rust).
        #[arg(default_value_t = 0)]
        n: u64,
        /// How many interleaved pairs (python-calls-rust).
        #[arg(long, default_value_t = 1)]
        pairs: usize,
    },
    /// Draw every recorded timeline (`chapters/appendix/measurements/
    /// timelines/*.json`) into its SVG, and its caption into the figures.
    #[command(hide = true)]
    DrawTimelines,
    /// Run the solutions' trials and the book's examples N times with the
    /// other cores busy, and count failures per test.
    Soak {
        /// How many runs of each suite.
        #[arg(default_value_t = 10)]
        runs: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve { port: 0 });
    let root = cli.root;
    let result = match command {
        Command::Serve { port } => serve_or_build(&root, Some(port)),
        Command::Build => serve_or_build(&root, None),
        Command::Grade {
            selection,
            json,
            loom,
        } => grade(&root, selection.as_deref(), json.as_deref(), loom),
        Command::List => graded(&root).map(|report| {
            print!("{}", report.list(&root));
            report.all_passed()
        }),
        Command::Next => graded(&root).map(|report| {
            match report.next(&root) {
                Some(next) => print!("{next}"),
                None => println!("nothing to grade"),
            }
            report.all_passed()
        }),
        Command::Reset { exercise, yes } => reset(&root, &exercise, yes),
        Command::Watch { selection, poll } => {
            cli::watch::watch(&root, selection.as_deref(), poll).map(|()| true)
        }
        Command::Hint { exercise, spec, .. } if spec => {
            cli::hint::spec(&root, &exercise).map(|text| {
                print!("{text}");
                true
            })
        }
        Command::Hint {
            exercise,
            all,
            reset,
            ..
        } => cli::hint::reveal(&root, &exercise, all, reset).map(|text| {
            print!("{text}");
            true
        }),
        Command::Verify { write_sums } => cli::verify(&root, write_sums),
        Command::Bench {
            quick,
            write,
            smoke,
        } => {
            let effort = match (smoke, quick) {
                (true, _) => Effort::Smoke,
                (false, true) => Effort::Quick,
                (false, false) => Effort::Full,
            };
            cli::bench::bench(&root, effort, write).map(|()| true)
        }
        Command::Trace { name, json_dir } => {
            let columns = std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.trim().parse().ok())
                .unwrap_or(100);
            cli::bench::timelines::trace(
                name.as_deref(),
                json_dir.as_deref(),
                columns,
            )
            .map(|text| {
                print!("{text}");
                true
            })
        }
        Command::BenchWorker { mode, n, pairs } => {
            cli::bench::worker(mode, n, pairs).map(|()| true)
        }
        Command::DrawTimelines => {
            cli::bench::timeline_svg::draw_timelines(&root).map(|()| true)
        }
        Command::Soak { runs } => cli::soak::soak(&root, runs).map(|report| {
            print!("{report}");
            !report.contains("failures per test")
        }),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// `course reset`: shows what would change, asks (unless `yes`), resets.
fn reset(root: &Path, exercise: &str, yes: bool) -> Result<bool, String> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    let plan = cli::reset::plan(root, exercise)?;
    if plan.functions.is_empty() {
        println!("{} is already as the course shipped it", plan.exercise);
        return Ok(true);
    }
    println!(
        "resetting {} in {}: the bodies of {} go back to the stub's; the \
         rest of the file stays as it is",
        plan.exercise,
        plan.file,
        plan.functions.join(", ")
    );
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(
                "not resetting without a terminal to ask; add --yes".into()
            );
        }
        print!("reset? [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("nothing changed");
            return Ok(false);
        }
    }
    cli::reset::apply(root, &plan)?;
    println!("reset {}", plan.exercise);
    Ok(true)
}

/// Grades every chapter quietly (a spinner while building), for `list`
/// and `next`.
fn graded(root: &Path) -> Result<cli::grade::Report, String> {
    let options = Options {
        interactive: true,
        loom: false,
    };
    cli::grade::grade(root, Package::Exercises, None, options)
        .map_err(|fatal| fatal.to_string())
}

/// `course grade`: `Ok(true)` when everything selected passed.
fn grade(
    root: &Path,
    selection: Option<&str>,
    json: Option<&Path>,
    loom: bool,
) -> Result<bool, String> {
    let options = Options {
        interactive: true,
        loom,
    };
    let report =
        cli::grade::grade(root, Package::Exercises, selection, options)
            .map_err(|fatal| fatal.to_string())?;
    print!("{}", report.render(root));
    if let Some(file) = json {
        let text = serde_json::to_string_pretty(&report.to_json(root))
            .map_err(|e| e.to_string())?;
        std::fs::write(file, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    }
    Ok(report.all_passed())
}

/// `course serve` (with a port) or `course build`.
#[cfg(feature = "book")]
fn serve_or_build(root: &Path, serve: Option<u16>) -> Result<bool, String> {
    let site = course::book::build(root, None).map_err(|e| e.to_string())?;
    let index = site.join("index.html");
    let Some(port) = serve else {
        println!("built the book: file://{}", index.display());
        return Ok(true);
    };
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    // The Run button's scratch package, warmed in the background so that
    // the first click does not wait for tokio to compile.
    let runner = course::runner::Runner::new(
        root,
        root.join("target/runner"),
        course::runner::RUN_TIMEOUT,
    )
    .map_err(|e| format!("cannot prepare the Run button: {e}"))?;
    let warming = std::sync::Arc::clone(&runner);
    runtime.spawn(async move {
        match warming.warm().await {
            Ok(()) => println!("the Run button is ready"),
            Err(why) => eprintln!("the Run button will not work: {why}"),
        }
    });
    runtime
        .block_on(course::book::serve_with_runner(
            site,
            port,
            Some(runner),
            |launch| {
                println!("serving the book on {} (Ctrl-C stops)", launch.url());
                println!(
                    "  a new address for each launch, so nothing an earlier \
                     page left in your browser applies to it; if your \
                     browser cannot open it, {} shows the pages without \
                     Run buttons",
                    launch.fallback_url()
                );
                println!("offline copy: file://{}", index.display());
            },
        ))
        .map(|()| true)
        .map_err(|e| e.to_string())
}

/// This `course` was built for grading only (`cargo course`).
#[cfg(not(feature = "book"))]
fn serve_or_build(_: &Path, _: Option<u16>) -> Result<bool, String> {
    Err(
        "this build of `course` grades but has no book (it was built \
         without the `book` feature); `cargo run --release` builds and \
         serves the book"
            .to_string(),
    )
}
