//! Chapter 06: placeholder, being written.

/// Placeholder.
pub fn placeholder() {
    // TODO(ch06): being written.
    todo!("ch06: placeholder")
}
