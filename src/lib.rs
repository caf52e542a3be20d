//! The `course` crate: what the book and the exercises need at run time.
//!
//! - [`gil`]: a toy global interpreter lock, to watch what CPython's GIL
//!   does to threads (chapter 3) and how its policy decides who runs
//!   (chapter 6).
//! - [`grader`]: runs graded trials, each in a child process of its own,
//!   and prints the score table (`exercises/tests/graded.rs` calls it).
//! - [`spawn`]: runs a child under a deadline and an output limit, its
//!   pipes drained at once and all its processes killed at the end (and
//!   for the runner, under limits on what they use together); the one
//!   way the grader, the runner, soak and the tests start children.
//! - [`reap`]: finds, measures and kills the processes of one run (its
//!   group, the processes that carry its tag, the orphans it left), for
//!   the grader and the runner alike.
//! - [`registry`]: the chapters, derived from the files
//!   `exercises/src/chNN_topic.rs`, and what a half-added chapter lacks.
//! - [`trace`]: timelines of who ran when (spans and marks per lane), the
//!   model that `course bench --write` draws and `course trace` prints.
//! - [`worker`]: the helper process of chapter 2's exercises (crashes,
//!   floods, pipeline stages on request).
//! - `cli` (feature `cli`): the `course` commands (grade, watch, hint,
//!   verify, soak, bench, trace); the binary is a thin wrapper, so tests
//!   reuse them.
//! - `book` (feature `book`, on by default): builds the book in-process
//!   with mdBook and the mermaid preprocessor, and serves it on this machine
//!   at a fresh `<label>.localhost` origin per launch.
//! - `runner` (feature `book`): the Run button's offline runner, which
//!   `course serve` answers on `/__course/`.
//! - `book_doctests` (only under `cfg(doctest)`): every markdown file of
//!   `chapters/` as a doc comment, so rustdoc tests the book's examples.
//!
//! The `exercises` crate depends on this one without the `book` feature, so
//! grading never compiles mdBook.

#[cfg(feature = "book")]
pub mod book;
#[cfg(feature = "cli")]
pub mod cli;
pub mod gil;
pub mod grader;
pub mod reap;
pub mod registry;
#[cfg(feature = "book")]
pub mod runner;
pub mod spawn;
pub mod trace;
pub mod worker;

/// The book's markdown files, as rustdoc doc-tests (see `build.rs`).
#[cfg(doctest)]
pub mod book_doctests {
    include!(concat!(env!("OUT_DIR"), "/book_doctests.rs"));
}
