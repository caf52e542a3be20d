//! Chapter 8: placeholder, being written.

/// Placeholder.
pub fn placeholder() {}
