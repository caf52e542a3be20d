//! Chapter 07: placeholder, being written.

/// Placeholder.
pub fn placeholder() {}
