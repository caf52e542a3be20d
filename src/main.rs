//! `course`: build and serve the book.
//!
//! `cargo run --release` runs `course serve`: build the book in-process,
//! then serve it on http://127.0.0.1:3000.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Build the book and serve it on 127.0.0.1 (the default).
    Serve {
        /// The port; 0 picks a free one.
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
    /// Build the book into book/ (it also reads from file://).
    Build,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve { port: 3000 });
    match run(&cli.root, command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(
    root: &std::path::Path,
    command: Command,
) -> Result<(), course::book::BookError> {
    let site = course::book::build(root, None)?;
    let index = site.join("index.html");
    match command {
        Command::Build => {
            println!("built the book: file://{}", index.display());
            Ok(())
        }
        Command::Serve { port } => {
            let runtime = tokio::runtime::Runtime::new().map_err(|e| {
                course::book::BookError::Io("cannot start tokio".into(), e)
            })?;
            runtime.block_on(course::book::serve(site, port, |address| {
                println!(
                    "serving the book on http://{address}/ (Ctrl-C stops)"
                );
                println!("offline copy: file://{}", index.display());
            }))
        }
    }
}
