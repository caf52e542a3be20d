//! The atomics that the exercises use, and `yield_now` for their spin
//! loops: std's, or loom's when the crate is built with `--cfg loom`, so
//! that `.ci/loom` can model-check every interleaving of the same code. Use
//! these, not `std::sync::atomic` or `std::thread::yield_now`, wherever an
//! exercise needs an atomic or spins.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicUsize, Ordering, fence};
#[cfg(loom)]
pub use loom::thread::yield_now;
#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub use std::thread::yield_now;
