//! Teaching support for the course.

#[cfg(feature = "book")]
pub mod book;
pub mod grader;

/// The book's markdown files, as rustdoc doc-tests (see `build.rs`).
#[cfg(doctest)]
pub mod book_doctests {
    include!(concat!(env!("OUT_DIR"), "/book_doctests.rs"));
}
