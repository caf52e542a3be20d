//! The loom models of `exercises/tests/loom.rs`, run against the solutions:
//! the suite files name the crate under test `exercises`, and this alias
//! makes that name mean `solutions` here.

extern crate solutions as exercises;

#[path = "../../exercises/tests/loom.rs"]
mod suite;

fn main() -> std::process::ExitCode {
    suite::main()
}
