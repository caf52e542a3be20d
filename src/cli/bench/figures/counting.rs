//! Chapter 4's costs of counting, as the sentences the chapter quotes.

use super::{Anchors, sig3};
use crate::cli::bench::measure::SHARED_THREADS;
use crate::cli::bench::report::grouped;
use crate::cli::bench::results::Results;

/// The `increments` and `lost_updates` anchors.
pub(super) fn anchors(anchors: &mut Anchors, results: &Results) {
    let i = &results.increments;
    anchors.put(
        "increments",
        format!(
            "a plain increment took {} ns, an atomic one {} ns ({:.1} times \
             as long), and one under a `Mutex` {} ns; {SHARED_THREADS} \
             threads adding atomically to one count at once managed one \
             increment every {} ns between them, so each thread's \
             increments took about {} ns (each figure the median of three \
             rounds of {} increments, in an optimised build)",
            sig3(i.plain_ns),
            sig3(i.atomic_ns),
            i.atomic_ns / i.plain_ns,
            sig3(i.mutex_ns),
            sig3(i.shared_ns),
            sig3(i.shared_ns * SHARED_THREADS as f64),
            grouped(i.count)
        ),
    );
    let l = &results.lost_updates;
    let total = l.threads * l.steps;
    let short = l.lost.iter().filter(|&&lost| lost > 0).count();
    let least = l.lost.iter().min().copied().unwrap_or(0);
    let most = l.lost.iter().max().copied().unwrap_or(0);
    anchors.put(
        "lost_updates",
        format!(
            "the split count ended short in {short} of {} runs of {} \
             threads counting to {} (an optimised build), losing between {} \
             and {} updates in a run",
            l.lost.len(),
            l.threads,
            grouped(total),
            grouped(least),
            grouped(most)
        ),
    );
}
