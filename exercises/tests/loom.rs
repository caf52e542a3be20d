//! The loom models as graded trials: `cargo course grade --loom` builds
//! this suite with `--cfg loom` and grades it like the other trials (each
//! model in a child process of its own, its points in the table).
//! `solutions/tests/loom.rs` runs this very file against the solutions.
//!
//! A model explores every interleaving of its threads up to loom's
//! preemption bound, so it finds orderings too weak for a real
//! multi-core machine that the graded trials, on x86, cannot see.

use std::process::ExitCode;

/// The models; only built under `--cfg loom`.
#[cfg(loom)]
#[path = "loom/models.rs"]
mod models;

/// Every model, worth its points.
#[cfg(loom)]
fn trials() -> Vec<course::grader::Trial> {
    use course::grader::Trial;
    // A model explores thousands of interleavings: give it time (the
    // deadline only detects a hang).
    let slow = std::time::Duration::from_secs(120);
    vec![
        Trial::new(
            "ch03::with_gil::loom_orders_the_holders",
            2,
            models::toy_gil_orders_the_holders,
        )
        .timeout(slow),
        Trial::new(
            "ch04::my_arc::loom_the_last_owner_drops_after_every_use",
            2,
            models::the_last_owner_drops_after_every_use,
        )
        .timeout(slow),
        Trial::new(
            "ch04::my_arc::loom_concurrent_clones_are_all_counted",
            2,
            models::concurrent_clones_are_all_counted,
        )
        .timeout(slow),
        Trial::new(
            "ch04::my_arc::loom_the_last_two_owners_drop_the_value_once",
            2,
            models::the_last_two_owners_drop_the_value_once,
        )
        .timeout(slow),
        Trial::new(
            "ch06::ticket_lock::loom_orders_the_holders",
            2,
            models::ticket_lock_orders_the_holders,
        )
        .timeout(slow),
        Trial::new(
            "ch06::ticket_lock::loom_queue_len_counts_at_most_the_threads",
            1,
            models::ticket_lock_queue_len_counts_at_most_the_threads,
        )
        .timeout(slow),
        Trial::new(
            "ch06::ticket_lock::loom_queue_len_counts_a_held_lock",
            1,
            models::ticket_lock_queue_len_counts_a_held_lock,
        )
        .timeout(slow),
    ]
}

/// Grades the models (under `--cfg loom`).
#[cfg(loom)]
pub fn main() -> ExitCode {
    course::grader::main(trials())
}

/// Without `--cfg loom` there is nothing to grade: say how to build it.
#[cfg(not(loom))]
pub fn main() -> ExitCode {
    eprintln!(
        "the loom models need `--cfg loom`: run `cargo course grade --loom` \
         (or .ci/loom)"
    );
    ExitCode::FAILURE
}
