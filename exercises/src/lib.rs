//! Your exercises, one module per chapter. Replace each `todo!()` marked
//! `TODO(chNN)` with working code, then grade yourself:
//!
//! ```text
//! cargo course grade               # every chapter
//! cargo course grade ch01          # chapter 1 only
//! cargo course hint ch01::spawn_all
//! cargo test -p exercises          # the same trials, as plain cargo
//! ```

#[cfg(feature = "ch01")]
pub mod ch01_threads;
#[cfg(feature = "ch02")]
pub mod ch02_processes;
#[cfg(feature = "ch03")]
pub mod ch03_gil;
#[cfg(feature = "ch04")]
pub mod ch04_refcount;
#[cfg(feature = "ch05")]
pub mod ch05_no_gil;
#[cfg(feature = "ch06")]
pub mod ch06_fairness;
#[cfg(feature = "ch07")]
pub mod ch07_pools;
#[cfg(feature = "ch08")]
pub mod ch08_futures;
// tokio built with `--cfg loom` (the .ci/loom step) has no `net` or
// `process`; the loom models do not need this chapter.
#[cfg(all(feature = "ch08", not(loom)))]
pub mod ch08_tokio;
pub mod sync;
