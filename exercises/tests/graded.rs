//! The grader: `cargo test -p exercises` runs every graded trial of every
//! chapter against your code and prints a score table after the usual
//! `test result:` line. `cargo test -p exercises ch01` grades chapter 1;
//! `cargo test -p exercises -- --list` lists the trials.
//!
//! Each trial runs in a child process of its own (see `course::grader`), so
//! code that deadlocks, aborts or exits early costs that trial only.
//! `solutions/tests/graded.rs` runs this very file against the solutions.

mod graded {
    pub mod ch01_threads;
    pub mod ch02_processes;
    pub mod ch03_gil;
    pub mod ch04_refcount;
    pub mod ch05_no_gil;
    pub mod ch06_fairness;
    pub mod ch07_pools;
    pub mod ch08_futures;
    pub mod ch08_tokio;
}

/// Every chapter's trials.
pub fn main() -> std::process::ExitCode {
    let trials = [
        graded::ch01_threads::trials(),
        graded::ch02_processes::trials(),
        graded::ch03_gil::trials(),
        graded::ch04_refcount::trials(),
        graded::ch05_no_gil::trials(),
        graded::ch06_fairness::trials(),
        graded::ch07_pools::trials(),
        graded::ch08_futures::trials(),
        graded::ch08_tokio::trials(),
    ]
    .concat();
    course::grader::main(trials)
}
