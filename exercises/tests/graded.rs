//! The grader: `cargo test -p exercises` runs every graded trial of every
//! chapter against your code and prints a score table after the usual
//! `test result:` line. `cargo test -p exercises ch01` grades chapter 1;
//! `cargo test -p exercises -- --list` lists the trials.
//!
//! Each trial runs in a child process of its own (see `course::grader`), so
//! code that deadlocks, aborts or exits early costs that trial only.
//! `solutions/tests/graded.rs` runs this very file against the solutions.

/// Counts live bytes, so trials can see memory a solution never frees.
#[global_allocator]
static ALLOCATOR: course::grader::alloc::Counting =
    course::grader::alloc::Counting;

mod graded {
    // Every file of `exercises/tests/graded/` (named from the solutions'
    // folder too, which includes this file): one suite per chapter module,
    // each compiled while its chapter is on.
    automod::dir!(pub "../exercises/tests/graded");
}

// `all_trials()`, written by the build script from the same files.
include!(concat!(env!("OUT_DIR"), "/suites.rs"));

/// Every chapter's trials: those of the chapters that are on (all, unless
/// `course grade` left out a chapter that does not compile).
pub fn main() -> std::process::ExitCode {
    course::grader::main(all_trials())
}
