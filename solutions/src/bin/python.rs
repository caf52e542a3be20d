//! The same Python prompt as `exercises`' (`exercises/src/bin/python.rs`),
//! with the reference solution as `ch09`: `cargo run -p solutions --bin
//! python`.

// The prompt names the crate under test `exercises`, as the graded suite
// does; here that name means `solutions`.
extern crate solutions as exercises;

#[path = "../../../exercises/src/bin/python.rs"]
mod prompt;

/// The prompt, or the script named by the first argument.
pub fn main() -> std::process::ExitCode {
    prompt::main()
}
