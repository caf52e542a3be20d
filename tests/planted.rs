//! A page planted in the reader's browser before the book was served cannot
//! use the Run button (issue 21's first weakness).
//!
//! Whatever served `http://127.0.0.1:<port>` earlier in the same browser
//! profile (any dev server, or another user's program that held the port)
//! can leave state that outlives it: a service worker, which answers every
//! later visit of that origin, and a cached copy of a hash-named book
//! script. If the book were later served on the same origin, that planted
//! code would run as the book's own page and could drive the Run endpoint.
//!
//! The test plants both, each in a profile of its own, with a small server
//! on a port; stops it; serves the book with its runner on the same port;
//! and visits, with each profile, the plain address and the launch's own
//! address. The planted code must run where it was planted (or the test
//! proves nothing) and be refused there; the launch's own address must not
//! run it at all; and the program it asks to run must never have run.
//!
//! Needs Chromium, so it is `#[ignore]`d in a plain `cargo test`;
//! `.ci/run` runs it with `-- --ignored`.

use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

mod support;

/// What the planted code does: ask for the token and run a program that
/// leaves `marker`, then write what happened into `<pre id="attack">`.
fn attack_script(marker: &Path) -> String {
    let code = format!(
        "fn main() {{ std::fs::write({:?}, \"ran\").unwrap(); }}",
        marker.display().to_string()
    );
    format!(
        r#"(async () => {{
  const out = document.createElement('pre');
  out.id = 'attack';
  document.body.append(out);
  try {{
    const asked = await fetch('/__course/token', {{
      headers: {{'X-Course-Token-Request': '1'}}, cache: 'no-store'}});
    const answer = await asked.json().catch(() => ({{}}));
    if (!asked.ok) {{
      out.textContent = 'token refused ' + asked.status + ' ' + answer.error;
      return;
    }}
    const ran = await fetch('/__course/evaluate.json', {{
      method: 'POST',
      headers: {{'Content-Type': 'application/json', 'X-Course-Token': answer.token}},
      body: JSON.stringify({{code: {code}}})}});
    out.textContent = 'evaluate ' + ran.status + ' ' + await ran.text();
  }} catch (error) {{
    out.textContent = 'failed ' + error;
  }}
}})();"#,
        code = serde_json::to_string(&code).unwrap()
    )
}

/// A small server on 127.0.0.1:`port` that plants the attack: `/worker`
/// registers a service worker that answers every later navigation with a
/// page running the attack; `/cache` loads the attack under the name of
/// the book's script, cached for a year as `immutable`.
struct Planter {
    stop: Arc<AtomicBool>,
    port: u16,
    serving: Option<thread::JoinHandle<()>>,
}

impl Planter {
    fn start(port: u16, book_js: &str, attack: &str) -> Planter {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let page = |script: &str| {
            format!(
                "<!doctype html><html><body><pre id=\"state\"></pre>\
                 <script>{script}</script></body></html>"
            )
        };
        let worker_js = format!(
            "const PAGE = {};\n\
             self.addEventListener('install', () => self.skipWaiting());\n\
             self.addEventListener('activate', e => e.waitUntil(self.clients.claim()));\n\
             self.addEventListener('fetch', e => {{\n\
               if (e.request.mode === 'navigate') {{\n\
                 e.respondWith(new Response(PAGE, {{headers: {{'Content-Type': 'text/html'}}}}));\n\
               }}\n\
             }});\n",
            serde_json::to_string(&page(attack)).unwrap()
        );
        let worker_page = page(
            "navigator.serviceWorker.register('/worker.js')\
             .then(() => navigator.serviceWorker.ready)\
             .then(() => { document.getElementById('state').textContent = \
             'planted: worker'; });",
        );
        let cache_page = format!(
            "<!doctype html><html><body><pre id=\"state\"></pre>\
             <script src=\"/{book_js}\" onload=\"document.getElementById(\
             'state').textContent = 'planted: cache'\"></script></body></html>"
        );
        let files: Vec<(String, &'static str, String)> = vec![
            ("/worker".into(), "text/html", worker_page),
            ("/worker.js".into(), "text/javascript", worker_js),
            ("/cache".into(), "text/html", cache_page),
            (format!("/{book_js}"), "text/javascript", attack.to_string()),
        ];
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let files = Arc::new(files);
        let serving = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                // A browser may open a connection and send nothing on it:
                // one thread each, and a read timeout (hangs only).
                let files = Arc::clone(&files);
                if let Ok(stream) = stream {
                    let _ =
                        stream.set_read_timeout(Some(Duration::from_secs(5)));
                    thread::spawn(move || answer(stream, &files));
                }
            }
        });
        Planter {
            stop,
            port,
            serving: Some(serving),
        }
    }
}

impl Drop for Planter {
    /// Stops the server and frees its port.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(serving) = self.serving.take() {
            serving.join().unwrap();
        }
    }
}

/// Answers one request on `stream` from `files` (path, type, body), with
/// a year of `immutable` caching, as a hash-named asset would have.
fn answer(mut stream: TcpStream, files: &[(String, &str, String)]) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let found = files.iter().find(|(p, _, _)| *p == path);
    let (status, kind, body) = match found {
        Some((_, kind, body)) => ("200 OK", *kind, body.as_str()),
        None => ("404 Not Found", "text/plain", "not here"),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n\
         Cache-Control: public, max-age=31536000, immutable\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A port free on 127.0.0.1 at the time of asking.
fn free_port() -> u16 {
    let probe = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    probe.local_addr().unwrap().port()
}

/// The text of `<pre id="attack">` in `dom`, if the planted code ran.
fn attack_text(dom: &str) -> Option<&str> {
    let start = dom.find("<pre id=\"attack\">")? + "<pre id=\"attack\">".len();
    Some(&dom[start..start + dom[start..].find("</pre>")?])
}

#[test]
#[ignore = "needs Chromium; .ci/run installs it and runs this test"]
fn state_planted_on_an_earlier_origin_cannot_run_code() {
    let (_out, site) = support::build_book();
    let book_js = fs::read_dir(&site)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .find(|name| name.starts_with("book-") && name.ends_with(".js"))
        .expect("the book has no hash-named book-*.js");
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("ran");
    let worker_profile = tempfile::tempdir().unwrap();
    let cache_profile = tempfile::tempdir().unwrap();
    let port = free_port();
    {
        let planter = Planter::start(port, &book_js, &attack_script(&marker));
        let origin = format!("http://127.0.0.1:{}", planter.port);
        let planting = [
            (worker_profile.path(), "worker"),
            (cache_profile.path(), "cache"),
        ];
        for (profile, what) in planting {
            let url = format!("{origin}/{what}");
            let dom = support::chromium_in(profile, &url, &["--dump-dom"]);
            assert!(
                dom.contains(&format!("planted: {what}")),
                "could not plant the {what}: {dom:.2000}"
            );
        }
        // The browser writes a new service worker to the profile in the
        // background, and may exit before it has: plant again until a
        // fresh browser on this profile finds the worker answering.
        let probe = format!("{origin}/probe");
        let mut answered = false;
        for _ in 0..10 {
            let dom = support::chromium_in(
                worker_profile.path(),
                &probe,
                &["--dump-dom"],
            );
            if attack_text(&dom).is_some() {
                answered = true;
                break;
            }
            let url = format!("{origin}/worker");
            support::chromium_in(worker_profile.path(), &url, &["--dump-dom"]);
        }
        assert!(answered, "the service worker never stayed in the profile");
    }
    let (launch, _runner) =
        support::serve_with_runner_on(site, port, Duration::from_secs(3));
    let page = "01-threads/threads.html";
    let visits = [
        (worker_profile.path(), launch.fallback_url(), true),
        (worker_profile.path(), launch.url(), false),
        (
            cache_profile.path(),
            format!("{}{page}", launch.fallback_url()),
            true,
        ),
        (
            cache_profile.path(),
            format!("{}{page}", launch.url()),
            false,
        ),
    ];
    for (profile, url, planted_here) in visits {
        let dom = support::chromium_in(profile, &url, &["--dump-dom"]);
        match attack_text(&dom) {
            Some(attack) => {
                assert!(planted_here, "planted code ran at {url}: {attack}");
                assert!(
                    attack.starts_with("token refused 403"),
                    "the planted code at {url} was not refused: {attack}"
                );
            }
            None => {
                // Without a run of the planted code, this visit proves
                // nothing: it must have run where it was planted.
                assert!(
                    !planted_here,
                    "the planted code did not run at {url}: {dom:.3000}"
                );
                assert!(
                    dom.contains("ch01-threads") || dom.contains("sidebar"),
                    "the book's page did not load at {url}: {dom:.2000}"
                );
            }
        }
    }
    assert!(
        !marker.exists(),
        "a planted page ran a program through the Run button"
    );
}
