//! `fetch_all` calls `fetch` once per entry, with the URL as given, and
//! returns each body as its fetch gave it, however long that fetch takes.

use std::sync::Arc;
use std::time::Duration;

use exercises::ch08_tokio::fetch_all;

use super::super::paused_runtime;

/// A URL listed more than once is fetched once per entry, and each entry
/// gets its own fetch's body, as the fetch gave it: a trailing newline
/// kept, an empty body kept (and not fetched again), a leading byte order
/// mark kept, a URL's `#fragment` given to `fetch`, and a fetch that takes
/// a thousand years of virtual time waited for.
pub(super) fn each_entry_gets_its_own_body_as_given() {
    // A URL listed three times is fetched three times, and each entry
    // gets the body of its own fetch; the later fetches finish first. A
    // URL with spaces around it is fetched as it is, spaces and all, and
    // so are an empty entry and one of blanks only: no URL is skipped. Each
    // body is returned as the fetch gave it: with its trailing newline,
    // and empty for the one that answers nothing (which is not fetched
    // again), and with the byte order mark that `bom`'s body starts with.
    // A URL with a fragment (`#reviews`) is fetched with it. And a fetch
    // is waited for however long it takes: a thousand years of virtual
    // time for `slow`.
    let urls: Vec<String> = [
        "cart",
        "cart",
        " about\t",
        "cart",
        "empty",
        "slow",
        "",
        " \t ",
        "cart#reviews",
        "bom",
    ]
    .map(String::from)
    .to_vec();
    // What each call of `fetch` answered: (URL, body), in call order.
    let answers =
        Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let bodies = paused_runtime().block_on(fetch_all(&urls, urls.len(), {
        let answers = Arc::clone(&answers);
        move |url: String| {
            let answers = Arc::clone(&answers);
            async move {
                let call = {
                    let answers = answers.lock().expect("a fetch panicked");
                    answers.len() as u64 + 1
                };
                let body = match url.as_str() {
                    "empty" => String::new(),
                    "bom" => format!("\u{feff}{url}, fetch {call}\n"),
                    _ => format!("{url}, fetch {call}\n"),
                };
                answers
                    .lock()
                    .expect("a fetch panicked")
                    .push((url.clone(), body.clone()));
                // A thousand years, in sleeps of 25 (tokio cuts a single
                // sleep short at about 30 years).
                let (sleeps, delay) = match url.as_str() {
                    "slow" => {
                        (40, Duration::from_secs(25 * 365 * 24 * 60 * 60))
                    }
                    _ => (
                        1,
                        Duration::from_millis(70u64.saturating_sub(10 * call)),
                    ),
                };
                for _ in 0..sleeps {
                    tokio::time::sleep(delay).await;
                }
                body
            }
        }
    }));
    let answers = answers.lock().expect("a fetch panicked").clone();
    let mut given: Vec<&String> =
        answers.iter().map(|(_, body)| body).collect();
    let mut returned: Vec<&String> = bodies.iter().collect();
    given.sort();
    returned.sort();
    let own = bodies.len() == urls.len()
        && bodies.iter().zip(&urls).all(|(body, url)| {
            answers
                .iter()
                .any(|(asked, answered)| asked == url && answered == body)
        });
    assert!(
        answers.len() == urls.len() && own && given == returned,
        "fetch_all({urls:?}) gave {bodies:?}, for {} fetches that answered \
         {answers:?} (URL, body; fetch N answers \"URL, fetch N\\n\", \
         `empty` answers \"\", `bom` starts with a byte order mark, `slow` \
         takes a thousand years of virtual time): each \
         entry gets the body of its own fetch, in the order of the entries, \
         as the fetch gave it. A URL may be listed twice, so put the bodies \
         back in place by each entry's index, not by URL; call fetch once \
         per entry, with each URL as it is given (not trimmed, its \
         #fragment kept), and never \
         again (an empty body is a body), an empty or blank entry too (it \
         is fetched like any other, not skipped); return each body unchanged (no \
         trim of its newline, its byte order mark kept); and wait for each \
         fetch however long it takes (no timeout of your own, not even one \
         of a century)",
        answers.len()
    );
}
