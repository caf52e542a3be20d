//! Chapter 06: placeholder, being written.

/// Placeholder.
pub fn placeholder() {}
