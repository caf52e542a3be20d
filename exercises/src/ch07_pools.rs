//! Chapter 07: placeholder, being written.

/// Placeholder.
pub fn placeholder() {
    // TODO(ch07): being written.
    todo!("ch07: placeholder")
}
