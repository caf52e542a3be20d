//! Graded trials of chapter 07: being written.

use course::grader::Trial;

/// The trials of this chapter, in the order the book presents them.
pub fn trials() -> Vec<Trial> {
    Vec::new()
}
