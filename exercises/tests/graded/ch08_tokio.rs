//! Graded trials of chapter 8: being written.

use course::grader::Trial;

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    Vec::new()
}
