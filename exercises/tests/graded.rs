//! The grader: `cargo test -p exercises` runs every graded trial of every
//! chapter against your code and prints a score table after the usual
//! `test result:` line. `cargo test -p exercises ch01` grades chapter 1;
//! `cargo test -p exercises -- --list` lists the trials.
//!
//! Each trial runs in a child process of its own (see `course::grader`), so
//! code that deadlocks, aborts or exits early costs that trial only.
//! `solutions/tests/graded.rs` runs this very file against the solutions.

mod graded {
    #[cfg(feature = "ch01")]
    pub mod ch01_threads;
    #[cfg(feature = "ch02")]
    pub mod ch02_processes;
    #[cfg(feature = "ch03")]
    pub mod ch03_gil;
    #[cfg(feature = "ch04")]
    pub mod ch04_refcount;
    #[cfg(feature = "ch05")]
    pub mod ch05_no_gil;
    #[cfg(feature = "ch06")]
    pub mod ch06_fairness;
    #[cfg(feature = "ch07")]
    pub mod ch07_pools;
    #[cfg(feature = "ch08")]
    pub mod ch08_futures;
    #[cfg(feature = "ch08")]
    pub mod ch08_tokio;
}

/// Every chapter's trials: those of the chapters whose cargo feature is on
/// (all, unless `course grade` turned off a chapter that does not compile).
pub fn main() -> std::process::ExitCode {
    #[allow(unused_mut, reason = "with every chapter off, none is added")]
    let mut trials = Vec::new();
    #[cfg(feature = "ch01")]
    trials.extend(graded::ch01_threads::trials());
    #[cfg(feature = "ch02")]
    trials.extend(graded::ch02_processes::trials());
    #[cfg(feature = "ch03")]
    trials.extend(graded::ch03_gil::trials());
    #[cfg(feature = "ch04")]
    trials.extend(graded::ch04_refcount::trials());
    #[cfg(feature = "ch05")]
    trials.extend(graded::ch05_no_gil::trials());
    #[cfg(feature = "ch06")]
    trials.extend(graded::ch06_fairness::trials());
    #[cfg(feature = "ch07")]
    trials.extend(graded::ch07_pools::trials());
    #[cfg(feature = "ch08")]
    {
        trials.extend(graded::ch08_futures::trials());
        trials.extend(graded::ch08_tokio::trials());
    }
    course::grader::main(trials)
}
