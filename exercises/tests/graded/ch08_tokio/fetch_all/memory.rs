//! `fetch_all` gives back every byte it allocated once it has returned.

use std::time::Duration;

use course::grader::alloc;
use exercises::ch08_tokio::fetch_all;

use super::super::paused_runtime;

/// Calls of `fetch_all` in a row, once the runtime is warm.
const CALLS: usize = 1000;

/// What a thousand calls may leave allocated in all: the runtime's own
/// caches may grow a little, but a semaphore left behind by each call
/// (`Box::leak`, for `'static` permits) takes tens of bytes a call, tens
/// of KiB in all.
const SLACK: isize = 4 * 1024;

/// A thousand calls of `fetch_all`, two URLs each with a limit of 1, on
/// one paused runtime: once they have returned, the bytes allocated are
/// back to what they were before them, to within [`SLACK`]. (The trial is
/// exclusive: no other trial allocates meanwhile.)
pub(super) fn gives_back_its_memory() {
    assert!(alloc::counting(), "the graded binary counts live bytes");
    let urls = vec!["orders/1".to_string(), "orders/2".to_string()];
    let fetch = |url: String| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        url
    };
    let runtime = paused_runtime();
    let left = runtime.block_on(async {
        // Warm up: the runtime's timer and queues take what they need.
        for _ in 0..10 {
            fetch_all(&urls, 1, fetch).await;
        }
        let before = alloc::live_bytes();
        for _ in 0..CALLS {
            let bodies = fetch_all(&urls, 1, fetch).await;
            assert_eq!(bodies, urls, "each body is its fetch's");
        }
        alloc::live_bytes() - before
    });
    drop(runtime);
    assert!(
        left < SLACK,
        "{CALLS} calls of fetch_all, each returned, left {left} bytes \
         allocated: every call keeps something for good (a semaphore made \
         'static with Box::leak, say). Share the semaphore with the tasks \
         through an Arc (Arc::clone(&semaphore).acquire_owned()), and it is \
         freed when the last permit is dropped"
    );
}
