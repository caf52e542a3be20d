//! `fetch_all`'s limits above what a `Semaphore` takes, and a fetch's
//! panic whose payload is not a string.

use std::time::Duration;

use exercises::ch08_tokio::fetch_all;
use tokio::sync::Semaphore;

use super::super::paused_runtime;
use super::{PAGES, fetch_pages};

/// Every `limit` above `Semaphore::MAX_PERMITS`, not only `usize::MAX`,
/// is fine and means no limit: all eight fetches run at once.
pub(super) fn takes_every_limit_above_the_permits() {
    for limit in [Semaphore::MAX_PERMITS + 1, usize::MAX - 1] {
        let outcome =
            std::panic::catch_unwind(|| fetch_pages(&PAGES, &[10; 8], limit));
        let Ok(fetched) = outcome else {
            panic!(
                "fetch_all panicked with a limit of {limit}: any limit but \
                 0 is fine, not only usize::MAX (tokio's Semaphore::new \
                 panics above Semaphore::MAX_PERMITS: clamp every larger \
                 limit to it, not one value only)"
            );
        };
        assert_eq!(
            (fetched.most, fetched.took),
            (8, Duration::from_millis(10)),
            "8 fetches of 10 ms with a limit of {limit}: all 8 at once, in \
             10 ms (most in flight at once, time taken)"
        );
    }
}

/// A payload of the fetch's own type, neither a `&str` nor a `String`.
#[derive(Debug, PartialEq)]
struct FetchError(u16);

/// A fetch that panics with a payload of its own type (as
/// `std::panic::panic_any` gives): `fetch_all` panics with that very
/// payload, not with a message of its own.
pub(super) fn passes_any_payload_on() {
    let urls: Vec<String> = PAGES.iter().map(|page| page.to_string()).collect();
    let fetch = |url: String| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if url == "orders/4" {
            std::panic::panic_any(FetchError(503));
        }
        format!("body of {url}")
    };
    let outcome = std::panic::catch_unwind(|| {
        paused_runtime().block_on(fetch_all(&urls, 3, fetch))
    });
    let Err(payload) = outcome else {
        panic!(
            "the fetch of orders/4 panicked, yet fetch_all returned: its \
             panic must go on from fetch_all"
        );
    };
    let kept = payload.downcast_ref::<FetchError>();
    assert!(
        kept == Some(&FetchError(503)),
        "a fetch panicked with a payload of its own type (a FetchError, \
         through panic_any), but fetch_all panicked with something else: \
         pass the payload on as it is, whatever its type \
         (resume_unwind(error.into_panic())), rather than make a new panic \
         from its text"
    );
}
