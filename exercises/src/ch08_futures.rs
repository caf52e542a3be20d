//! Chapter 8: placeholder, being written.

/// Placeholder.
pub fn placeholder() {
    // TODO(ch08): being written.
    todo!("ch08: placeholder")
}
