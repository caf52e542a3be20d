//! The built book in a real browser: the diagram renders, search finds a
//! word, and the page requests nothing from any other host.
//!
//! Two visits of chapter 1 with `?search=barrier` (which opens the search
//! bar and runs the search on load):
//! - from `file://`, as a reader opens `book/index.html` from disk;
//! - from `course::book::serve`, inside a probe page on the same origin that
//!   reads the chapter's Resource Timing entries: every URL the page loaded
//!   or tried to load (scripts, styles, fonts, images, fetches), failed
//!   requests included.
//!
//! Needs Chromium, so it is `#[ignore]`d in a plain `cargo test`; `.ci/run`
//! installs Chromium and runs it with `-- --ignored`. Set `CHROMIUM` to use
//! another binary than `/usr/bin/chromium`.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt as _;

mod support;

const CHAPTER: &str = "01-threads/threads.html?search=barrier";

/// Reads the chapter from inside an iframe once its scripts have run.
const PROBE: &str = r#"<!DOCTYPE html>
<html><body><pre id="probe">waiting</pre>
<iframe id="chapter" src="CHAPTER"></iframe>
<script>
setTimeout(() => {
  const page = document.getElementById('chapter').contentWindow;
  const doc = page.document;
  const lines = [
    'svg=' + (doc.querySelector('pre.mermaid svg') !== null),
    'results=' + doc.querySelectorAll('#mdbook-searchresults li').length,
  ];
  for (const entry of page.performance.getEntriesByType('resource')) {
    lines.push('resource=' + entry.name);
  }
  document.getElementById('probe').textContent = lines.join('\n');
}, 5000);
</script></body></html>
"#;

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// The DOM of `url` after its scripts had ten seconds of virtual time.
fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("cannot start {}: {error}", chromium().display())
        });
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut dom).unwrap();
        dom
    });
    // Only detects a hang; a normal load takes a few seconds.
    if child
        .wait_timeout(Duration::from_secs(120))
        .unwrap()
        .is_none()
    {
        child.kill().unwrap();
        panic!("chromium did not finish loading {url}");
    }
    reader.join().unwrap()
}

#[test]
#[ignore = "needs Chromium; .ci/run installs it and runs this test"]
fn from_disk_the_diagram_renders_and_search_finds_words() {
    let (_out, site) = support::build_book();
    let dom = dump_dom(&format!("file://{}/{CHAPTER}", site.display()));
    let diagram = dom
        .split(r#"<pre class="mermaid""#)
        .nth(1)
        .expect("the page has no mermaid block");
    assert!(
        diagram.split("</pre>").next().unwrap().contains("<svg"),
        "mermaid did not draw the diagram from file://"
    );
    let results = dom
        .split(r#"<ul id="mdbook-searchresults">"#)
        .nth(1)
        .and_then(|rest| rest.split("</ul>").next())
        .expect("the page has no search results list");
    assert!(
        results.contains("<li"),
        "searching for 'barrier' from file:// found nothing"
    );
}

#[test]
#[ignore = "needs Chromium; .ci/run installs it and runs this test"]
fn served_the_page_requests_nothing_from_other_hosts() {
    let (_out, site) = support::build_book();
    fs::write(site.join("probe.html"), PROBE.replace("CHAPTER", CHAPTER))
        .unwrap();
    let address = support::serve_in_background(site);
    let origin = format!("http://{address}/");
    let dom = dump_dom(&format!("{origin}probe.html"));
    let probe = dom
        .split(r#"<pre id="probe">"#)
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .expect("no probe output");
    let lines: Vec<&str> = probe.lines().collect();
    assert!(lines.contains(&"svg=true"), "no diagram: {probe}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("results=") && *l != "results=0"),
        "search found nothing: {probe}"
    );
    let resources: Vec<&str> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("resource="))
        .collect();
    assert!(
        resources.iter().any(|url| url.contains("searchindex")),
        "the search index was not loaded: {resources:?}"
    );
    let foreign: Vec<&&str> = resources
        .iter()
        .filter(|url| !url.starts_with(&origin))
        .collect();
    assert!(foreign.is_empty(), "the page requested {foreign:?}");
}
