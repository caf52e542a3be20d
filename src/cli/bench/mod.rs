//! `course bench`: the notes' claims about speed, measured on the reader's
//! machine, Python and Rust side by side.
//!
//! Every comparison is a ratio from one interleaved run: A, B, A, B, ...,
//! and the median of the paired ratios B/A, so that a machine that slows
//! down halfway (a shared VM, a laptop's turbo) slows both sides of most
//! pairs alike. Each countdown runs long enough to dwarf timer noise (0.5 s
//! of counting; 60 ms with `--quick`).
//!
//! Measuring and writing are apart: `measure` returns the `results`, which
//! `report` renders as the tables that `course bench` prints, and which
//! `figures` (`--write`) puts into the book. `worker` is the hidden
//! `course bench-worker`, this binary started again when a measurement
//! needs a fresh process; `embed` is its CPython, for Python threads that
//! call Rust (chapter 9). `timeline_svg` draws recorded timelines for the
//! book.

mod embed;
mod figures;
mod measure;
mod report;
mod results;
pub mod timeline_svg;
pub mod timelines;
mod worker;

use std::path::Path;
use std::time::Instant;

pub use results::Effort;
pub use worker::{WorkerMode, worker};

/// `course bench`: measures, prints, and with `write` puts the result in
/// the book's Measurements appendix.
pub fn bench(root: &Path, effort: Effort, write: bool) -> Result<(), String> {
    let started = Instant::now();
    let say = |what: &str| {
        eprintln!("[{:>5.1} s] {what}", started.elapsed().as_secs_f64())
    };
    let results = measure::run(effort, &say);
    println!("{}", report::markdown(&results));
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    if write {
        figures::write(root, &results)?;
    }
    Ok(())
}
