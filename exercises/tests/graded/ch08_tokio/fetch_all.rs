//! `fetch_all`, on the paused clock: the limit is filled and never
//! exceeded, not even by fetches that start their work when called, the
//! bodies come in URL order, and a batch takes the time of the ideal
//! schedule.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use exercises::ch08_tokio::fetch_all;
use tokio::time::Instant;

use super::paused_runtime;

mod as_given;
mod limits;
mod memory;

/// What `fetch_all` did with a batch of URLs.
#[derive(Debug)]
struct Fetched {
    urls: Vec<String>,
    bodies: Vec<String>,
    /// The most fetches in flight at once.
    most: usize,
    /// Virtual time from the call to its return.
    took: Duration,
}

impl Fetched {
    /// Each URL got its own fetch's body (`body of URL`), in URL order.
    fn assert_bodies_in_url_order(&self) {
        let expected: Vec<String> = self
            .urls
            .iter()
            .map(|url| format!("body of {url}"))
            .collect();
        assert_eq!(self.bodies, expected, "the bodies, in URL order");
    }
}

/// When a fetch counts as in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// From the first poll of its future: a lazy fetch, as an `async fn`
    /// is, that does nothing until it is polled.
    Polled,
    /// From the call to `fetch`: an eager fetch, which starts its request
    /// when called and hands back a future of its answer.
    Called,
}

/// Runs `fetch_all` on the paused clock with one URL per delay: fetching
/// the URL `pages[i]` takes `delays_ms[i]` of virtual time and answers
/// `body of URL`. The fetches are lazy.
fn fetch_pages(pages: &[&str], delays_ms: &[u64], limit: usize) -> Fetched {
    fetch_pages_starting(pages, delays_ms, limit, Start::Polled)
}

/// [`fetch_pages`], with fetches that are in flight from `start` on.
fn fetch_pages_starting(
    pages: &[&str],
    delays_ms: &[u64],
    limit: usize,
    start: Start,
) -> Fetched {
    let urls: Vec<String> = pages
        .iter()
        .map(|page| format!("https://shop.example/{page}"))
        .collect();
    fetch_urls_starting(urls, delays_ms, limit, start)
}

/// [`fetch_pages_starting`], with the whole URLs given.
fn fetch_urls_starting(
    urls: Vec<String>,
    delays_ms: &[u64],
    limit: usize,
    start: Start,
) -> Fetched {
    let delay_of: HashMap<String, u64> = urls
        .iter()
        .cloned()
        .zip(delays_ms.iter().copied())
        .collect();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let fetch = {
        let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
        move |url: String| {
            let delay = Duration::from_millis(delay_of[&url]);
            let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
            let begin = move || {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                in_flight
            };
            // A lazy fetch is counted while it runs, not when it is
            // created: a future does nothing until it is polled.
            let called = (start == Start::Called).then(begin.clone());
            async move {
                let in_flight = called.unwrap_or_else(begin);
                tokio::time::sleep(delay).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                format!("body of {url}")
            }
        }
    };
    let (bodies, took) = paused_runtime().block_on(async {
        let start = Instant::now();
        let bodies = fetch_all(&urls, limit, fetch).await;
        (bodies, start.elapsed())
    });
    Fetched {
        urls,
        bodies,
        most: most.load(Ordering::SeqCst),
        took,
    }
}

/// Eight pages of one sort.
const PAGES: [&str; 8] = [
    "orders/1", "orders/2", "orders/3", "orders/4", "orders/5", "orders/6",
    "orders/7", "orders/8",
];

/// Eight fetches of 10 ms with a limit of 3: at some moment, 3 are in
/// flight at once.
pub(super) fn fills_the_limit() {
    for limit in [3, 1, 8] {
        let fetched = fetch_pages(&PAGES, &[10; 8], limit);
        let most = fetched.most;
        assert!(
            most >= limit,
            "8 fetches with a limit of {limit}: at most {most} were in \
             flight at once, never {limit}: start the next fetch while \
             others are still running (a task per URL, all spawned before \
             you await any)"
        );
    }
}

/// Eight fetches of 10 ms with a limit of 3: never more than 3 in flight.
/// So it is when each URL is on a host of its own: the limit is one for
/// the whole batch, not one per host.
pub(super) fn never_exceeds_the_limit() {
    for limit in [3, 1, 5] {
        let fetched = fetch_pages(&PAGES, &[10; 8], limit);
        let most = fetched.most;
        assert!(
            most <= limit,
            "8 fetches with a limit of {limit}: {most} were in flight at \
             once: each fetch must hold a semaphore permit until it is \
             done (`let _permit = ...`; `let _ = ...` drops the permit at \
             once)"
        );
    }
    for limit in [3, 1] {
        let urls: Vec<String> = PAGES
            .iter()
            .enumerate()
            .map(|(n, page)| format!("https://shop-{n}.example/{page}"))
            .collect();
        let fetched = fetch_urls_starting(urls, &[10; 8], limit, Start::Polled);
        let most = fetched.most;
        assert!(
            most <= limit,
            "8 fetches of URLs on 8 different hosts, with a limit of \
             {limit}: {most} were in flight at once. The limit counts every \
             fetch of the batch, whatever its host: one semaphore for all \
             of them (not one per host, as aiohttp's limit_per_host)"
        );
        fetched.assert_bodies_in_url_order();
    }
}

/// Eight eager fetches of 10 ms, each in flight from the call to `fetch`,
/// with a limit of 3: never more than 3 called and not yet finished. A
/// `fetch_all` that calls every `fetch` up front, and only then waits for
/// permits, starts all 8 requests at once.
pub(super) fn calls_fetch_only_within_the_limit() {
    for limit in [3, 1] {
        let fetched =
            fetch_pages_starting(&PAGES, &[10; 8], limit, Start::Called);
        let most = fetched.most;
        assert!(
            most <= limit,
            "8 fetches that start their work when fetch is called, with a \
             limit of {limit}: {most} were called and not yet finished at \
             once. Take the permit first, then call fetch: a fetch may do \
             its work when called, before its future is ever polled"
        );
        fetched.assert_bodies_in_url_order();
    }
}

/// The first pages take longest, so the last finish first; the bodies
/// still come in URL order. No URLs give no bodies. A URL listed more than
/// once is fetched once per entry, and each entry gets its own fetch's
/// body, as the fetch gave it: a trailing newline kept, an empty body
/// kept (and not fetched again), a leading byte order mark kept, a URL's
/// `#fragment` given to `fetch`, and a fetch that takes a thousand years of
/// virtual time waited for.
pub(super) fn returns_bodies_in_url_order() {
    let pages = ["search?q=tea", "cart", "about", "orders", "blog", "account"];
    let fetched = fetch_pages(&pages, &[60, 50, 40, 30, 20, 10], 3);
    let expected: Vec<String> = fetched
        .urls
        .iter()
        .map(|url| format!("body of {url}"))
        .collect();
    assert_eq!(
        fetched.bodies, expected,
        "the bodies must come in the order of the URLs, not in the order \
         the fetches finish (here the last URLs finish first): remember \
         each URL's index"
    );
    let nothing = fetch_pages(&[], &[], 2);
    assert!(nothing.bodies.is_empty(), "no URLs, no bodies");
    as_given::each_entry_gets_its_own_body_as_given();
}

/// On the paused clock, a batch takes exactly the virtual time of the
/// ideal schedule, where a fetch starts the moment a slot is free.
pub(super) fn takes_the_time_of_the_ideal_schedule() {
    let cases: [(&[u64], usize, u64, &str); 2] = [
        (
            &[10; 6],
            3,
            20,
            "6 fetches of 10 ms, 3 at a time: two rounds",
        ),
        (
            &[40, 10, 10, 10, 10, 10, 10],
            3,
            40,
            "a fetch of 40 ms and six of 10 ms, 3 at a time: while the long \
             one runs, the short ones go two at a time beside it",
        ),
    ];
    for (delays, limit, ideal_ms, schedule) in cases {
        let fetched = fetch_pages(&PAGES[..delays.len()], delays, limit);
        let (took, ideal) = (fetched.took, Duration::from_millis(ideal_ms));
        assert_eq!(
            took, ideal,
            "{schedule}, so {ideal:?} of virtual time; fetch_all took \
             {took:?}. Longer: fetches waited while a slot was free (one \
             at a time, or in batches that wait for their slowest); \
             shorter: more than {limit} ran at once"
        );
    }
}

/// A limit of 0 panics, before any fetch is called, and also with no
/// URLs at all; a limit of `usize::MAX` means no limit: all eight fetches
/// run at once, and so do 300 with a limit of `usize::MAX` or 300, and
/// 70 000 (more than any machine's cores times any count per core, or
/// its 65 535 ports) with a limit of `usize::MAX`; so does every limit
/// above `Semaphore::MAX_PERMITS`.
pub(super) fn checks_its_limit() {
    let called = Arc::new(AtomicUsize::new(0));
    let urls: Vec<String> = PAGES.iter().map(|page| page.to_string()).collect();
    let zero = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let called = Arc::clone(&called);
        paused_runtime().block_on(fetch_all(&urls, 0, move |url| {
            called.fetch_add(1, Ordering::SeqCst);
            async move { url }
        }))
    }));
    assert!(
        zero.is_err(),
        "fetch_all with a limit of 0 returned {zero:?}: it must panic, as \
         the doc says (clamping 0 to 1 hides the caller's mistake)"
    );
    assert_eq!(
        called.load(Ordering::SeqCst),
        0,
        "a limit of 0 panics before any fetch is called"
    );
    let empty = std::panic::catch_unwind(|| {
        paused_runtime().block_on(fetch_all(&[], 0, |url| async move { url }))
    });
    assert!(
        empty.is_err(),
        "fetch_all(&[], 0, ..) returned {empty:?}: a limit of 0 panics also \
         when there is nothing to fetch (check the limit first, before any \
         early return)"
    );
    let unlimited =
        std::panic::catch_unwind(|| fetch_pages(&PAGES, &[10; 8], usize::MAX));
    let Ok(fetched) = unlimited else {
        panic!(
            "fetch_all panicked with a limit of usize::MAX, which means no \
             limit at all (tokio's Semaphore::new panics above \
             Semaphore::MAX_PERMITS: clamp the permits to it)"
        );
    };
    assert_eq!(
        (fetched.most, fetched.took),
        (8, Duration::from_millis(10)),
        "8 fetches of 10 ms with no limit: all 8 at once, in 10 ms (most \
         in flight at once, time taken)"
    );
    // Many more URLs than a connection pool would take at once: a large
    // limit is no limit, whatever the count.
    const SOME: usize = 300;
    let names: Vec<String> = (1..=SOME).map(|n| format!("items/{n}")).collect();
    let pages: Vec<&str> = names.iter().map(String::as_str).collect();
    for limit in [usize::MAX, SOME] {
        let fetched = fetch_pages(&pages, &[10; SOME], limit);
        assert_eq!(
            (fetched.most, fetched.took),
            (SOME, Duration::from_millis(10)),
            "{SOME} fetches of 10 ms with a limit of {limit}, at least the \
             number of URLs: all {SOME} at once, in 10 ms (most in flight \
             at once, time taken). Do not cap the limit at a number of your \
             own"
        );
    }
    // Any limit above what a semaphore takes, not only `usize::MAX`.
    limits::takes_every_limit_above_the_permits();
    // And more than any machine has cores times any count per core, or
    // ports: no limit is no limit, whatever the machine.
    let (most, took) = fetch_many(usize::MAX);
    assert_eq!(
        (most, took),
        (MANY, Duration::from_millis(10)),
        "{MANY} fetches of 10 ms with a limit of usize::MAX: all {MANY} at \
         once, in 10 ms (most in flight at once, time taken). Do not cap \
         the limit at a number of your own, not even one that grows with \
         the machine's cores"
    );
}

/// How many URLs [`fetch_many`] fetches: more than a machine has ports
/// (65 535).
const MANY: usize = 70_000;

/// Fetches [`MANY`] URLs of 10 ms on the paused clock with `limit`, each
/// fetch as light as can be: the most in flight at once, and the virtual
/// time taken.
fn fetch_many(limit: usize) -> (usize, Duration) {
    let urls: Vec<String> = (0..MANY).map(|n| n.to_string()).collect();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let took = paused_runtime().block_on(async {
        let start = Instant::now();
        let fetch = |url: String| {
            let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                url
            }
        };
        let bodies = fetch_all(&urls, limit, fetch).await;
        assert!(bodies == urls, "the bodies of {MANY} fetches, in URL order");
        start.elapsed()
    });
    (most.load(Ordering::SeqCst), took)
}

/// The fourth of eight fetches panics with a `&'static str`, the first
/// time it is called only, with a limit of 1: `fetch_all` panics too,
/// with the fetch's own payload, unchanged (still a `&'static str`, not a
/// `String` of the same text), rather than return a body that was never
/// fetched, wrap the payload in a message of its own, or call the fetch
/// again. The panicked fetch gives its slot back: `fetch_all` does not
/// wait forever for a slot.
pub(super) fn passes_a_fetch_panic_on() {
    let urls: Vec<String> = PAGES.iter().map(|page| page.to_string()).collect();
    let calls =
        Arc::new(std::sync::Mutex::new(HashMap::<String, usize>::new()));
    let fetch = {
        let calls = Arc::clone(&calls);
        move |url: String| {
            let first = {
                let mut calls = calls.lock().expect("a fetch panicked");
                let count = calls.entry(url.clone()).or_insert(0);
                *count += 1;
                *count == 1
            };
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if url == "orders/4" && first {
                    // A `&'static str` payload, as `panic!("literal")`
                    // gives.
                    std::panic::panic_any("fetch failed: connection reset");
                }
                format!("body of {url}")
            }
        }
    };
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            paused_runtime().block_on(fetch_all(&urls, 1, fetch))
        }));
    let again: Vec<(String, usize)> = calls
        .lock()
        .expect("a fetch panicked")
        .iter()
        .filter(|&(_, &count)| count > 1)
        .map(|(url, &count)| (url.clone(), count))
        .collect();
    assert!(
        again.is_empty(),
        "fetch was called more than once for a URL listed once: {again:?} \
         (URL, calls). A fetch that panics is not retried: its panic is \
         fetch_all's"
    );
    match outcome {
        Ok(bodies) => panic!(
            "the fetch of orders/4 panicked, yet fetch_all returned \
             {bodies:?}: a JoinError from a panicked task must not be \
             skipped (resume_unwind(error.into_panic()))"
        ),
        Err(payload) => {
            let kept = payload.downcast_ref::<&'static str>().copied();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            assert!(
                message == "fetch failed: connection reset",
                "fetch_all panicked with {message:?}, not with the fetch's \
                 own payload, \"fetch failed: connection reset\", as it is: \
                 a JoinError's unwrap or expect wraps it in a message of its \
                 own (resume_unwind(error.into_panic()) passes it on)"
            );
            assert!(
                kept.is_some(),
                "fetch_all panicked with the fetch's message, but as a \
                 String: the fetch panicked with a &'static str, and the \
                 payload must come back as it is, its type included (a new \
                 panic!(\"{{message}}\") makes a new payload; \
                 resume_unwind(error.into_panic()) passes the fetch's on)"
            );
        }
    }
    // And a payload of the fetch's own type, neither `&str` nor `String`.
    limits::passes_any_payload_on();
}

/// A fetch for [`leaves_no_fetch_running`]: `orders/4` panics after
/// 10 ms; every other URL takes 100 ms, and counts in `finished` once it
/// has run to its end.
fn slow_fetch(
    finished: &Arc<AtomicUsize>,
) -> impl Fn(String) -> std::pin::Pin<Box<dyn Future<Output = String> + Send>>
+ Send
+ 'static {
    let finished = Arc::clone(finished);
    move |url: String| {
        let finished = Arc::clone(&finished);
        Box::pin(async move {
            if url == "orders/4" {
                tokio::time::sleep(Duration::from_millis(10)).await;
                std::panic::panic_any("fetch failed: connection reset");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            finished.fetch_add(1, Ordering::SeqCst);
            format!("body of {url}")
        })
    }
}

/// On the paused clock, fetches of 100 ms, 3 at a time. Dropped after
/// 10 ms (an outer `timeout`), `fetch_all` leaves no fetch running: a
/// second later, none has run to its end. And when one fetch panics after
/// 10 ms, `fetch_all` panics, and the other fetches stop with it: none
/// runs to its end. Fetches spawned with `tokio::spawn` behind loose
/// `JoinHandle`s run on, detached, with nobody to read their bodies. And
/// a `fetch_all` that has returned leaves nothing allocated behind it.
pub(super) fn leaves_no_fetch_running() {
    memory::gives_back_its_memory();
    let urls: Vec<String> = ["orders/1", "orders/2", "orders/3"]
        .iter()
        .map(|page| page.to_string())
        .collect();
    let finished = Arc::new(AtomicUsize::new(0));
    paused_runtime().block_on(async {
        let fetches = fetch_all(&urls, 3, slow_fetch(&finished));
        let cut = tokio::time::timeout(Duration::from_millis(10), fetches);
        assert!(
            cut.await.is_err(),
            "fetch_all returned within 10 ms, for fetches of 100 ms"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let ran_on = finished.load(Ordering::SeqCst);
    assert!(
        ran_on == 0,
        "the fetch_all future was dropped (cancelled) 10 ms into fetches of \
         100 ms, and {ran_on} fetches ran to their end after that: a \
         fetch_all that is dropped must leave no fetch running. Dropping a \
         JoinHandle detaches its task; keep the tasks in a JoinSet, whose \
         drop aborts them"
    );
    let urls: Vec<String> = ["orders/1", "orders/4", "orders/3"]
        .iter()
        .map(|page| page.to_string())
        .collect();
    let panicked = paused_runtime().block_on(async {
        let fetch = slow_fetch(&finished);
        // A task of its own, to see its panic: the task drops the
        // `fetch_all` future as the panic ends it.
        let run = tokio::spawn(async move { fetch_all(&urls, 3, fetch).await });
        let outcome = run.await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        outcome.is_err_and(|error| error.is_panic())
    });
    assert!(
        panicked,
        "the fetch of orders/4 panicked, yet fetch_all did not"
    );
    let ran_on = finished.load(Ordering::SeqCst);
    assert!(
        ran_on == 0,
        "a fetch panicked 10 ms into fetches of 100 ms, and {ran_on} other \
         fetches ran to their end: when fetch_all panics (with the fetch's \
         payload), the other fetches must stop with it, not run on \
         detached. Spawn them in a JoinSet, whose drop aborts them, and \
         pass the panic on as soon as join_next gives it"
    );
}
