//! Solutions.
