//! What tracing costs the toy GIL: the countdown on one thread, untraced
//! and traced, interleaved. Under the new GIL alone a thread only ticks
//! (the tracer is never consulted); under the old GIL it releases and
//! retakes every hundred ticks, and the traced GIL records each time. An
//! untraced run paired with another untraced run gives the noise floor.

use super::countdown::countdown_with_gil;
use super::{calibrate, paired, seconds};
use crate::cli::bench::results::{Budget, Tracing};
use crate::gil::{EveryTicks, Gil, SwitchInterval, SwitchPolicy};

/// Seconds for `count` ticks on one thread under a GIL with `policy`,
/// traced or not.
fn countdown(
    policy: impl SwitchPolicy + 'static,
    count: u64,
    traced: bool,
) -> f64 {
    let gil = Gil::with_policy(policy);
    let gil = if traced { gil.traced() } else { gil };
    seconds(|| countdown_with_gil(&gil, count))
}

/// The three comparisons of [`Tracing`].
pub(super) fn measure(budget: Budget, say: &dyn Fn(&str)) -> Tracing {
    say("toy GIL: untraced vs traced");
    let new = SwitchInterval::PYTHON_DEFAULT;
    let old = EveryTicks(100);
    let count = calibrate(budget.run, |c| countdown(new, c, false));
    Tracing {
        count,
        ticks: paired(
            budget.pairs,
            || countdown(new, count, false),
            || countdown(new, count, true),
        ),
        switches: paired(
            budget.pairs,
            || countdown(old, count, false),
            || countdown(old, count, true),
        ),
        floor: paired(
            budget.pairs,
            || countdown(old, count, false),
            || countdown(old, count, false),
        ),
    }
}
