//! The loom models of `exercises/tests/loom.rs`, run against the solutions.

#![cfg(loom)]

extern crate solutions as exercises;

#[path = "../../exercises/tests/loom.rs"]
mod models;
