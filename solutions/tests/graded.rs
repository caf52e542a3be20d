//! The graded trials of `exercises/tests/`, run against the solutions: the
//! suite files name the crate under test `exercises`, and this alias makes
//! that name mean `solutions` here.

extern crate solutions as exercises;

#[path = "../../exercises/tests/graded.rs"]
mod suite;

fn main() -> std::process::ExitCode {
    suite::main()
}
