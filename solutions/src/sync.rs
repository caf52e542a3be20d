//! The atomics that the exercises use: std's, or loom's when the crate is
//! built with `--cfg loom`, so that `.ci/loom` can model-check every
//! interleaving of the same code. Use these, not `std::sync::atomic`,
//! wherever an exercise needs an atomic.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicUsize, Ordering, fence};
