//! Your exercises, one module per chapter. Replace each `todo!()` marked
//! `TODO(chNN)` with working code, then grade yourself:
//!
//! ```text
//! cargo test -p exercises          # every chapter
//! cargo test -p exercises ch01     # chapter 1 only
//! ```

pub mod ch01_threads;
pub mod ch02_processes;
pub mod ch03_gil;
pub mod ch04_refcount;
pub mod ch05_no_gil;
pub mod ch06_fairness;
pub mod ch07_pools;
pub mod ch08_futures;
// tokio built with `--cfg loom` (the .ci/loom step) has no `net` or
// `process`; the loom models do not need this chapter.
#[cfg(not(loom))]
pub mod ch08_tokio;
pub mod sync;
