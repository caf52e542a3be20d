//! The atomics, the `Mutex` and `Condvar`, and the `yield_now` for spin
//! loops that the model-checked exercises use: std's, or loom's when the
//! crate is built with `--cfg loom`, so that `.ci/loom` can model-check
//! every interleaving of the same code. Use these, not `std::sync` or
//! `std::thread::yield_now`, in those exercises: loom sees only its own
//! types, and a std lock inside a loom model blocks a thread loom thinks
//! is running, so the model fails even for a correct solution.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicUsize, Ordering, fence};
#[cfg(loom)]
pub use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub use loom::thread::yield_now;
#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub use std::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub use std::thread::yield_now;
