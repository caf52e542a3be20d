//! The trials of `fetch_all`: responses in the order of the URLs, every
//! request started at once on a thread of its own, and a failure passed on.

use std::collections::HashSet;
use std::hint;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::thread;

use exercises::ch05_no_gil::fetch_all;

use super::{
    assert_one_thread_each, os, spawn_failure, the_caller_sleeps_until_woken,
};

pub(super) fn returns_responses_in_order() {
    let urls = ["/tab/3", "/tab/1", "/tab/2"];
    let responses = fetch_all(&urls, |url| format!("200 {url}"));
    assert_eq!(
        responses,
        ["200 /tab/3", "200 /tab/1", "200 /tab/2"],
        "responses must come back in the order of the URLs"
    );
    assert!(fetch_all(&[], |url| url.to_string()).is_empty());
}

/// 2,000 requests, more than any pool the size of a machine's cores, and
/// more than any cap on the requests in flight (a window of 128 or 1,024
/// that joins the oldest before it starts the next), each waiting at a
/// barrier until all have started. Each `fetch` does next to nothing, and
/// most threads use only a few pages of their stacks; but one request in
/// every 100 uses 512 KiB of its stack, as in
/// `fetches_every_url_on_its_own_thread`: a large fan-out is no reason for
/// smaller stacks (a `fetch` that overflows one aborts the process), nor
/// are stacks a little smaller (1 MiB) allowed: every request's thread has
/// a stack as large as the smallest of 4 requests'. The 2,000 run while
/// `available_parallelism` says the machine has one core: a cap that grows
/// with the cores (1,024 requests a core, 2,048 on 2 cores) is then 1,024,
/// and hangs as a fixed one does.
pub(super) fn starts_every_request_at_once() {
    let small = Mutex::new(usize::MAX);
    fetch_all(&["/1", "/2", "/3", "/4"], |url| {
        let mut small = small.lock().unwrap();
        *small = (*small).min(os::stack_size());
        url.to_string()
    });
    let small = small.into_inner().unwrap();
    let urls: Vec<String> = (0..2_000).map(|i| format!("/tab/{i}")).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let barrier = Barrier::new(urls.len());
    let smallest = AtomicUsize::new(usize::MAX);
    let responses = os::with_one_core(|| {
        fetch_all(&urls, |url| {
            smallest.fetch_min(os::stack_size(), Ordering::SeqCst);
            if url.ends_with("00") {
                let mut buffer = [0_u8; STACK_USED_BY_FETCH];
                hint::black_box(&mut buffer);
            }
            barrier.wait(); // Every request is in flight.
            url.to_uppercase()
        })
    });
    let expected: Vec<String> = urls.iter().map(|u| u.to_uppercase()).collect();
    assert_eq!(responses, expected);
    let smallest = smallest.into_inner();
    assert!(
        smallest >= small,
        "with 4 requests, each thread had a stack of {} KiB; with 2,000, \
         one had only {} KiB: a large fan-out gets the same stacks as a \
         small one (leave the stack size alone, however many requests \
         there are: a fetch may need its room)",
        small / 1024,
        smallest / 1024
    );
}

/// The stack a `fetch` uses in `fetches_every_url_on_its_own_thread` (and
/// one in every 100 in `starts_every_request_at_once`): a quarter of the default stack of a thread Rust starts (2 MiB).
const STACK_USED_BY_FETCH: usize = 512 * 1024;

/// 1,000 requests for 100 URLs, each listed 10 times: 1,000 calls of
/// `fetch`, each on a thread of its own, none on the caller's. Every call
/// answers with a number of its own, so each entry must get the response
/// of its own request, not another request for the same URL.
pub(super) fn fetches_every_url_on_its_own_thread() {
    const ENTRIES: usize = 1_000;
    let urls: Vec<String> =
        (0..ENTRIES).map(|i| format!("/tab/{}", i % 100)).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let threads = Mutex::new(Vec::new());
    let calls = AtomicUsize::new(0);
    let responses = fetch_all(&urls, |url| {
        threads.lock().unwrap().push(thread::current().id());
        let call = calls.fetch_add(1, Ordering::SeqCst);
        format!("200 {url} #{call}")
    });
    assert_eq!(responses.len(), ENTRIES, "one response per entry of urls");
    for (url, response) in urls.iter().zip(&responses) {
        assert!(
            response.starts_with(&format!("200 {url} #")),
            "the response to {url} was {response:?}: responses must come \
             back in the order of the URLs"
        );
    }
    let distinct: HashSet<&String> = responses.iter().collect();
    assert_eq!(
        distinct.len(),
        ENTRIES,
        "{ENTRIES} requests answered with {ENTRIES} different responses, \
         yet fetch_all returned only {} different ones: an entry got the \
         response of another request for the same URL (results keyed by \
         URL?); keep each response with its entry's position",
        distinct.len()
    );
    assert_one_thread_each(
        threads.into_inner().unwrap(),
        urls.len(),
        "request",
    );
    // One URL is still a request on a thread of its own, and a blank entry
    // is still an entry: fetched like any other, never skipped; so is one
    // with a NUL character in it (`fetch_all` does not judge URLs, nor use
    // them for anything but `fetch`, such as a thread's name, nor change
    // them: "/Tab/2" is fetched as it is, not lowercased, for a URL's path
    // is case-sensitive), and each
    // response, which starts with a space and ends with "\r\n", comes back
    // as it is, not trimmed. Each `fetch`
    // here uses 512 KiB of its stack, as a real HTTP or TLS client may: a
    // thread started with Rust's default stack (2 MiB) has room for it.
    // A blank entry's response here is empty: an empty response is a
    // response too, returned as it is, not a reason to fetch again.
    let respond = |url: &str| {
        if url.trim().is_empty() {
            String::new()
        } else {
            format!(" 200 [{url}]\r\n")
        }
    };
    let mixed = ["", "/tab/2", "/Tab/2", "  ", "\t", "/a\0b"];
    for urls in [&["/tab/1"][..], &mixed[..]] {
        let threads = Mutex::new(Vec::new());
        let responses = fetch_all(urls, |url| {
            threads.lock().unwrap().push(thread::current().id());
            let mut buffer = [0_u8; STACK_USED_BY_FETCH];
            hint::black_box(&mut buffer);
            respond(url)
        });
        let expected: Vec<String> =
            urls.iter().map(|url| respond(url)).collect();
        assert_eq!(
            responses, expected,
            "every entry of {urls:?} must be fetched, blank ones included \
             (fetch_all does not judge URLs), each passed to fetch as it \
             is (not lowercased: /Tab/2 and /tab/2 are two pages), each \
             response in its place, \
             exactly as fetch returned it (its spaces and line ends \
             included, and an empty one left empty: fetch_all does not \
             tidy responses either)"
        );
        let calls = threads.lock().unwrap().len();
        assert_eq!(
            calls,
            urls.len(),
            "fetch_all of {urls:?} called fetch {calls} times: each entry is \
             fetched once, also when its response is empty (an empty \
             response is an answer, not a reason to ask again)"
        );
        assert_one_thread_each(
            threads.into_inner().unwrap(),
            urls.len(),
            "request",
        );
    }
    the_caller_sleeps_until_woken("request", |wait| {
        let responses = fetch_all(&["/a", "/b"], |url| {
            wait();
            format!("200 {url}")
        });
        assert_eq!(responses, ["200 /a", "200 /b"]);
    });
}

/// A request whose `fetch` panics makes `fetch_all` panic, rather than
/// come back with a response nobody sent. So does a request whose thread
/// cannot start (the machine is out of memory or threads), as
/// `Scope::spawn` does: fetching it on the calling thread instead would run
/// requests one after another, and deadlock any that waits for the others.
pub(super) fn a_failed_request_panics_the_caller() {
    let urls = ["/ok", "/broken", "/ok-too"];
    // First, before any thread of this process has ended (see the helper).
    spawn_failure::no_thread_can_start("fetch_all", "request", 3, |ran| {
        fetch_all(&urls, |url| {
            ran.note();
            format!("200 {url}")
        })
    });
    spawn_failure::only_two_threads_can_start("fetch_all", "request", |ran| {
        fetch_all(&["/1", "/2", "/3", "/4"], |url| {
            ran.note();
            format!("200 {url}")
        })
    });
    let fetched = Mutex::new(Vec::new());
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        fetch_all(&urls, |url| {
            fetched.lock().unwrap().push(url.to_string());
            assert_ne!(url, "/broken", "this request fails on purpose");
            format!("200 {url}")
        })
    }));
    assert!(
        outcome.is_err(),
        "fetch of /broken panicked, but fetch_all returned {:?}; join each \
         thread and let its panic come back up",
        outcome.unwrap()
    );
    let mut fetched = fetched.into_inner().unwrap_or_else(|e| e.into_inner());
    fetched.sort();
    assert_eq!(
        fetched,
        ["/broken", "/ok", "/ok-too"],
        "each entry is fetched once, the one whose fetch panics included: \
         do not try a failed request again (its panic is the caller's to \
         see, and a request sent twice may do its work twice)"
    );
}
