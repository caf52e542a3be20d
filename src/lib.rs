//! Teaching support for the course.

pub mod grader;

/// The book's markdown files, as rustdoc doc-tests (see `build.rs`).
#[cfg(doctest)]
pub mod book {
    include!(concat!(env!("OUT_DIR"), "/book_doctests.rs"));
}
