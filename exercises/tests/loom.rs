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

/// A value that counts its drops.
struct Counted(Arc<loom::sync::atomic::AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
    }
}

/// The last two owners let go on two threads at once: exactly one of them
/// drops the value, in every interleaving, also the one where both read
/// the count before either changes it (a `load` and then a `fetch_sub`:
/// both see 2, and neither frees).
#[test]
fn the_last_two_owners_drop_the_value_once() {
    loom::model(|| {
        let drops = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let mine = MyArc::new(Counted(Arc::clone(&drops)));
        let theirs = mine.clone();
        let other = thread::spawn(move || drop(theirs));
        drop(mine);
        other.join().unwrap();
        assert_eq!(
            drops.load(loom::sync::atomic::Ordering::SeqCst),
            1,
            "the value must be dropped exactly once"
        );
    });
}
