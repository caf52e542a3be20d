//! A panic in `pipeline`'s tasks whose payload is not a string, and a
//! producer that stops, without a panic of its own, once the consumer is
//! gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use exercises::ch08_tokio::pipeline;

use super::super::paused_runtime;
use super::CatchUnwind;

/// A payload of the trial's own type, neither a `&str` nor a `String`.
#[derive(Debug, PartialEq)]
struct DiskFull(u64);

/// `consume` panics with a payload of its own type (as
/// `std::panic::panic_any` gives), and then the source does: `pipeline`
/// panics with that very payload each time, not with a message of its
/// own.
pub(super) fn passes_any_payload_on() {
    let outcome = std::panic::catch_unwind(|| {
        paused_runtime().block_on(pipeline(0..10_u64, 2, |item| async move {
            if item == 3 {
                std::panic::panic_any(DiskFull(item));
            }
            item
        }))
    });
    let kept = outcome
        .as_ref()
        .err()
        .and_then(|p| p.downcast_ref::<DiskFull>());
    assert!(
        kept == Some(&DiskFull(3)),
        "consume panicked with a payload of its own type (a DiskFull, \
         through panic_any), but pipeline {}: pass the payload on as it \
         is, whatever its type (resume_unwind(error.into_panic())), rather \
         than make a new panic from its text",
        if outcome.is_ok() {
            "returned"
        } else {
            "panicked with another"
        }
    );
    let source = (0..10_u64).inspect(|&item| {
        if item == 5 {
            std::panic::panic_any(DiskFull(item));
        }
    });
    let outcome =
        std::panic::catch_unwind(|| {
            paused_runtime()
                .block_on(pipeline(source, 2, |item| async move { item }))
        });
    let kept = outcome
        .as_ref()
        .err()
        .and_then(|p| p.downcast_ref::<DiskFull>());
    assert!(
        kept == Some(&DiskFull(5)),
        "the items' iterator panicked with a payload of its own type (a \
         DiskFull, through panic_any), but pipeline {}: pass the \
         producer's payload on as it is, whatever its type",
        if outcome.is_ok() {
            "returned"
        } else {
            "panicked with another"
        }
    );
}

/// The items of [`stops_without_a_panic`]: `0..10_000`, counted, that
/// notes, when the producer drops it, whether a panic was unwinding then.
struct Watched {
    items: std::ops::Range<u64>,
    taken: Arc<AtomicUsize>,
    dropped_in_a_panic: Arc<AtomicBool>,
}

impl Iterator for Watched {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        self.taken.fetch_add(1, Ordering::SeqCst);
        self.items.next()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dropped_in_a_panic.store(true, Ordering::SeqCst);
        }
    }
}

/// `consume` panics at the fourth item, with a channel of 2, while the
/// producer waits to send: the producer stops once the consumer is gone,
/// by itself, not with a panic of its own (an `unwrap` of the failed
/// send): its panic would be a second one, and on a runtime of several
/// threads it may be joined first, so that `pipeline` panics with the
/// producer's `SendError` instead of `consume`'s payload. The test sees
/// whether a panic unwinds as the producer drops the items. `pipeline`
/// runs inside a future that catches its panic, so that the runtime is
/// dropped with no panic under way.
pub(super) fn stops_without_a_panic() {
    let dropped_in_a_panic = Arc::new(AtomicBool::new(false));
    let items = Watched {
        items: 0..10_000,
        taken: Arc::new(AtomicUsize::new(0)),
        dropped_in_a_panic: Arc::clone(&dropped_in_a_panic),
    };
    let outcome = paused_runtime().block_on(CatchUnwind(Box::pin(pipeline(
        items,
        2,
        |item| async move {
            assert!(item != 3, "consume failed: disk full");
            item
        },
    ))));
    assert!(
        outcome.is_err(),
        "consume panicked at item 3, yet pipeline returned {outcome:?}"
    );
    assert!(
        !dropped_in_a_panic.load(Ordering::SeqCst),
        "consume panicked, and the producer panicked too when it found the \
         channel closed (an unwrap or expect of send's result): a second \
         panic, which on a runtime of several threads may be the one \
         pipeline passes on. A failed send means the consumer is gone: \
         stop the producer quietly (break out of its loop)"
    );
}
