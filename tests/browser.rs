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
//! A third visit, from `file://`, answers a self-check question wrongly and
//! then rightly, and saves screenshots of both states in
//! `target/tmp/browser/` (the test prints their paths).
//!
//! A refused (`compile_fail`) block is coloured as Rust.
//!
//! The pages with timelines, served, show each timeline picture, loaded,
//! and each picture has a lane per thread or task.
//!
//! Needs Chromium, so it is `#[ignore]`d in a plain `cargo test`; `.ci/run`
//! installs Chromium and runs it with `-- --ignored`. Set `CHROMIUM` to use
//! another binary than `/usr/bin/chromium`.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

mod support;

/// The text a page's script wrote into `<pre id="ID">`; panics with `what`
/// when there is none (the script did not finish).
fn probe_text<'a>(dom: &'a str, id: &str, what: &str) -> &'a str {
    dom.split(&format!(r#"<pre id="{id}">"#))
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("{what}"))
}

/// The `resource=` lines of a probe that do not come from `origin`.
fn foreign<'a>(probe: &'a str, origin: &str) -> Vec<&'a str> {
    probe
        .lines()
        .filter_map(|line| line.strip_prefix("resource="))
        .filter(|url| !url.starts_with(origin))
        .collect()
}

const CHAPTER: &str = "01-threads/threads.html?search=barrier";

/// Reads the chapter from inside an iframe once its scripts have run.
const PROBE: &str = r#"<!DOCTYPE html>
<html><body><pre id="probe">waiting</pre>
<iframe id="chapter" src="CHAPTER" style="width:1000px;height:30000px"></iframe>
<script>
setTimeout(() => {
  const page = document.getElementById('chapter').contentWindow;
  const doc = page.document;
  const lines = [
    'svg=' + (doc.querySelector('pre.mermaid svg') !== null),
    'mermaid=' + doc.querySelectorAll('pre.mermaid').length,
    'svgs=' + doc.querySelectorAll('pre.mermaid svg').length,
    'title=' + ((doc.querySelector('main h1') || {}).textContent || ''),
    'results=' + doc.querySelectorAll('#mdbook-searchresults li').length,
  ];
  for (const entry of page.performance.getEntriesByType('resource')) {
    lines.push('resource=' + entry.name);
  }
  document.getElementById('probe').textContent = lines.join('\n');
}, 5000);
</script></body></html>
"#;

/// The DOM of `url` after its scripts had ten seconds of virtual time.
fn dump_dom(url: &str) -> String {
    chromium_output(url, &["--dump-dom"])
}

/// [`dump_dom`] in a window so tall that every diagram of a page (or of the
/// probe's 30 000-pixel iframe) is on screen once the page has loaded:
/// chapters/mermaid/mermaid-lazy.js draws a diagram only when it is near
/// the screen, and under virtual time headless Chromium may paint no frame,
/// so a diagram that needs scrolling would be reported late or never.
fn dump_dom_with_diagrams(url: &str) -> String {
    chromium_output(url, &["--dump-dom", "--window-size=1000,30000"])
}

/// Runs headless Chromium on `url` with `extra` flags and a fresh profile;
/// its stdout.
fn chromium_output(url: &str, extra: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    support::chromium_in(profile.path(), url, extra)
}

#[test]
#[ignore = "needs Chromium; .ci/run installs it and runs this test"]
fn from_disk_the_diagram_renders_and_search_finds_words() {
    let (_out, site) = support::build_book();
    let dom =
        dump_dom_with_diagrams(&format!("file://{}/{CHAPTER}", site.display()));
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

/// Blocks the compiler refuses are fenced without `rust` (skeptic would
/// run them), and chapters/highlight/refused.js colours them as Rust.
#[test]
#[ignore = "needs Chromium; .ci/run installs it and runs this test"]
fn from_disk_refused_blocks_are_coloured_as_rust() {
    let (_out, site) = support::build_book();
    let page = format!("file://{}/01-threads/sharing.html", site.display());
    let dom = dump_dom(&page);
    let refused: Vec<&str> = dom
        .split(r#"<code class="language-compile_fail"#)
        .skip(1)
        .map(|block| block.split("</code>").next().unwrap())
        .collect();
    assert!(!refused.is_empty(), "the page has no compile_fail block");
    for block in refused {
        assert!(
            block.contains(r#"<span class="hljs-keyword">use</span>"#),
            "a compile_fail block is not coloured as Rust: {block}"
        );
    }
}

#[test]
#[ignore = "needs Chromium; .ci/run installs it and runs this test"]
fn served_the_page_requests_nothing_from_other_hosts() {
    let (_out, site) = support::build_book();
    fs::write(site.join("probe.html"), PROBE.replace("CHAPTER", CHAPTER))
        .unwrap();
    let origin = support::serve_in_background(site).url();
    let dom = dump_dom_with_diagrams(&format!("{origin}probe.html"));
    let probe = probe_text(&dom, "probe", "no probe output");
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
    let foreign = foreign(probe, &origin);
    assert!(foreign.is_empty(), "the page requested {foreign:?}");
}

/// Answers the page's first "What does this program print?" question: a
/// wrong option, then (unless told to stop) the right one, whose index the
/// test reads from the markdown. Writes what it saw into `#quiz-probe`.
const ANSWER: &str = r#"<script>
window.addEventListener('load', () => setTimeout(() => {
  const probe = document.createElement('pre');
  probe.id = 'quiz-probe';
  const quiz = [...document.querySelectorAll('.quiz')].find(q =>
    (q.querySelector('.quiz-prompt') || {}).textContent ===
      'What does this program print?');
  const inputs = [...quiz.querySelectorAll('input')];
  const verdict = quiz.querySelector('.quiz-verdict');
  const check = quiz.querySelector('.quiz-check');
  const lines = [];
  const answer = (i) => {
    inputs[i].checked = true;
    check.click();
    lines.push('verdict=' + verdict.textContent);
  };
  answer((__RIGHT__ + 1) % inputs.length); // A wrong option first.
  if (!STOP_AFTER_WRONG) {
    answer(__RIGHT__);
  }
  probe.textContent = lines.join('\n');
  document.body.appendChild(probe);
  // For the screenshot: the question at the top of the page.
  document.querySelector('main').prepend(quiz);
  window.scrollTo(0, 0);
}, 500));
const STOP_AFTER_WRONG = __STOP__;
</script>"#;

/// The index of the right option of chapter 1's first `prints` question.
fn first_prints_answer() -> usize {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = fs::read_to_string(root.join("chapters/01-threads/threads.md"))
        .unwrap();
    let block = text
        .split("````quiz")
        .skip(1)
        .find(|block| block.contains("kind: prints"))
        .expect("chapter 1 has no `prints` question");
    let block = block.split("````").next().unwrap();
    block
        .lines()
        .filter(|line| line.starts_with("+ ") || line.starts_with("- "))
        .position(|line| line.starts_with("+ "))
        .expect("the question has no right option")
}

#[test]
#[ignore = "needs Chromium; .ci/run installs it and runs this test"]
fn from_disk_a_question_says_wrong_then_right() {
    let (_out, site) = support::build_book();
    let page = fs::read_to_string(site.join("01-threads/threads.html"))
        .expect("chapter 1 was not built");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    fs::create_dir_all(&shots).unwrap();
    for (name, stop) in [("quiz-wrong", "true"), ("quiz-right", "false")] {
        let script = ANSWER
            .replace("__STOP__", stop)
            .replace("__RIGHT__", &first_prints_answer().to_string());
        let answered = page.replace("</body>", &format!("{script}</body>"));
        let file = site.join(format!("01-threads/{name}.html"));
        fs::write(&file, answered).unwrap();
        let url = format!("file://{}", file.display());
        let dom = dump_dom(&url);
        let probe = probe_text(
            &dom,
            "quiz-probe",
            &format!("the question did not render: {name}"),
        );
        let verdicts: Vec<&str> = probe.lines().collect();
        assert_eq!(
            verdicts.first(),
            Some(&"verdict=Not quite. Try again."),
            "a wrong answer was not called wrong: {probe}"
        );
        if stop == "false" {
            assert_eq!(
                verdicts.last(),
                Some(&"verdict=Right."),
                "no option was called right: {probe}"
            );
        }
        let shot = shots.join(format!("{name}.png"));
        chromium_output(
            &url,
            &[
                &format!("--screenshot={}", shot.display()),
                "--window-size=1000,1400",
            ],
        );
        assert!(shot.is_file(), "no screenshot at {}", shot.display());
        println!("screenshot: {}", shot.display());
    }
}

/// Adds a deadlocking snippet to a page, clicks Run on the page's first
/// snippet and on that one, waits for both results, and writes them into
/// `#run-probe`, with every resource the page requested.
const RUN: &str = r#"<script>
window.addEventListener('load', () => setTimeout(async () => {
  const blocks = [...document.querySelectorAll('pre.playground')];
  const results = [];
  const n = blocks.length;
  for (const block of [blocks[0], blocks[n - 2], blocks[n - 1]]) {
    block.querySelector('.play-button').click();
    let text = '';
    for (let i = 0; i < 600; i++) {
      await new Promise(r => setTimeout(r, 100));
      const result = block.querySelector('.result');
      text = result ? result.innerText : '';
      if (text && text !== 'Running...') break;
    }
    results.push('result=' + JSON.stringify(text));
  }
  const probe = document.createElement('pre');
  probe.id = 'run-probe';
  const resources = performance.getEntriesByType('resource')
    .map(e => 'resource=' + e.name);
  probe.textContent = results.concat(resources).join('\n');
  document.body.appendChild(probe);
  // For the screenshot: the snippets and their results at the top.
  const main = document.querySelector('main');
  main.prepend(blocks[n - 1]);
  main.prepend(blocks[n - 2]);
  main.prepend(blocks[0]);
  window.scrollTo(0, 0);
}, 500));
</script>"#;

/// What each Run button showed, as the run probe lists it.
fn run_results(probe: &str) -> Vec<&str> {
    probe
        .lines()
        .filter_map(|l| l.strip_prefix("result="))
        .collect()
}

/// A snippet that never ends: the runner must say "timed out".
const DEADLOCK: &str = r#"<pre class="playground"><code class="language-rust">use std::sync::Mutex;
fn main() {
    let lock = Mutex::new(0);
    let _held = lock.lock().unwrap();
    println!("taking the lock again");
    let _again = lock.lock();
}
</code></pre>"#;

/// A snippet that does not compile: Run must show rustc's whole diagnostic.
const MISTYPED: &str = r#"<pre class="playground"><code class="language-rust">fn main() {
    let x: u32 = "text";
    println!("{x}");
}
</code></pre>"#;

#[test]
#[ignore = "needs Chromium; .ci/run installs it and runs this test"]
fn served_run_buttons_show_output_and_a_timeout() {
    let (_out, site) = support::build_book();
    let page = fs::read_to_string(site.join("01-threads/threads.html"))
        .expect("chapter 1 was not built");
    let page = page
        .replace("</main>", &format!("{DEADLOCK}{MISTYPED}</main>"))
        .replace("</body>", &format!("{RUN}</body>"));
    fs::write(site.join("01-threads/run.html"), page).unwrap();
    let (launch, _runner) =
        support::serve_with_runner_in_background(site, Duration::from_secs(3));
    let origin = launch.url();
    let url = format!("{origin}01-threads/run.html");
    let dom = dump_dom(&url);
    let probe = probe_text(&dom, "run-probe", "the Run script did not finish");
    let results = run_results(probe);
    assert_eq!(results.len(), 3, "{probe}");
    assert!(
        !results[0].contains("timed out") && !results[0].contains("error"),
        "the first snippet did not run: {}",
        results[0]
    );
    assert!(results[0].len() > 4, "no output: {}", results[0]);
    assert!(
        results[1].contains("taking the lock again"),
        "{}",
        results[1]
    );
    assert!(results[1].contains("timed out"), "{}", results[1]);
    // The compile error in full, as the playground shows it (the DOM dump
    // escapes the text's `>` and `&`).
    let shown = results[2].replace("&gt;", ">").replace("&amp;", "&");
    for part in [
        "error[E0308]: mismatched types",
        "--> src/main.rs:2:18",
        "expected `u32`, found `&str`",
        "rustc --explain E0308",
    ] {
        assert!(shown.contains(part), "{part:?} not in {shown}");
    }
    let foreign = foreign(probe, &origin);
    assert!(foreign.is_empty(), "the page requested {foreign:?}");
    // The same page at the plain loopback address shows, but its Run
    // buttons say where Run works instead of running anything.
    let plain = format!("{}01-threads/run.html", launch.fallback_url());
    let dom = dump_dom(&plain);
    let probe = probe_text(&dom, "run-probe", "the Run script did not finish");
    let refused = run_results(probe);
    assert_eq!(refused.len(), 3, "{probe}");
    for result in refused {
        assert!(
            result.contains("Run works only at the book's own address"),
            "{result}"
        );
    }
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("run-buttons.png");
    chromium_output(
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1000,1400",
        ],
    );
    assert!(shot.is_file(), "no screenshot at {}", shot.display());
    println!("screenshot: {}", shot.display());
    println!("results: {results:?}");
}

#[test]
#[ignore = "needs Chromium; .ci/run installs it and runs this test"]
fn from_disk_run_says_how_to_get_a_working_button() {
    let (_out, site) = support::build_book();
    let page = fs::read_to_string(site.join("01-threads/threads.html"))
        .expect("chapter 1 was not built");
    let file = site.join("01-threads/run-from-disk.html");
    fs::write(&file, page.replace("</body>", &format!("{RUN}</body>")))
        .unwrap();
    let dom = dump_dom(&format!("file://{}", file.display()));
    let probe = probe_text(&dom, "run-probe", "the Run script did not finish");
    let first = probe
        .lines()
        .find_map(|l| l.strip_prefix("result="))
        .unwrap_or_else(|| panic!("no result: {probe}"));
    assert!(first.contains("cargo run --release"), "{first}");
    assert!(
        !probe.contains("resource=http"),
        "the page requested something over the network: {probe}"
    );
}

#[test]
#[ignore = "needs Chromium; .ci/run installs it and runs this test"]
fn served_every_page_loads_with_its_diagrams_and_search_finds_gil() {
    let (_out, site) = support::build_book();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let summary = fs::read_to_string(root.join("chapters/SUMMARY.md")).unwrap();
    let mut pages: Vec<String> = summary
        .lines()
        .filter_map(|line| line.split_once("](").map(|(_, link)| link))
        .map(|link| link.trim_end_matches(')').replace(".md", ".html"))
        .collect();
    pages[0].push_str("?search=GIL");
    for (at, page) in pages.iter().enumerate() {
        fs::write(
            site.join(format!("probe-{at}.html")),
            PROBE.replace("CHAPTER", page),
        )
        .unwrap();
    }
    let origin = support::serve_in_background(site).url();
    let mut diagrams = 0;
    for (at, page) in pages.iter().enumerate() {
        let dom = dump_dom_with_diagrams(&format!("{origin}probe-{at}.html"));
        let probe =
            probe_text(&dom, "probe", &format!("{page}: no probe output"));
        let value = |key: &str| {
            probe
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or("")
                .to_string()
        };
        assert!(!value("title=").is_empty(), "{page} did not load: {probe}");
        assert_eq!(
            value("mermaid="),
            value("svgs="),
            "{page}: a diagram did not render"
        );
        diagrams += value("svgs=").parse::<usize>().unwrap_or(0);
        // mermaid (2.6 MB) is loaded only where there is a diagram.
        let mermaid = probe
            .lines()
            .any(|l| l.starts_with("resource=") && l.contains("mermaid.min"));
        assert_eq!(
            mermaid,
            value("mermaid=") != "0",
            "{page}: mermaid loaded: {mermaid}, diagrams: {}",
            value("mermaid=")
        );
        if at == 0 {
            assert!(
                !matches!(value("results=").as_str(), "" | "0"),
                "search found no GIL: {probe}"
            );
        }
        let foreign = foreign(probe, &origin);
        assert!(foreign.is_empty(), "{page} requested {foreign:?}");
    }
    assert!(diagrams >= 5, "only {diagrams} diagrams in the whole book");
    println!("{} pages, {diagrams} diagrams", pages.len());
}

/// Lists the page's timeline pictures once they have loaded: their file,
/// their width as the browser decoded it (0 if it could not), and their
/// alt text; into `#timeline-probe`. mdBook puts a second copy of each
/// image in an `.img-wrapper`, for zooming; the probe skips the copies.
const TIMELINES: &str = r#"<script>
window.addEventListener('load', () => setTimeout(() => {
  const lines = [...document.querySelectorAll('main img')]
    .filter(img => img.getAttribute('src').includes('/timelines/'))
    .filter(img => !img.closest('.img-wrapper')) // mdBook's zoomed copy.
    .map(img => 'img=' + img.getAttribute('src').split('/').pop() + ' ' +
      img.naturalWidth + ' ' + img.alt);
  const probe = document.createElement('pre');
  probe.id = 'timeline-probe';
  probe.textContent = lines.join('\n');
  document.body.appendChild(probe);
}, 500));
</script>"#;

/// Each chapter page with timelines, and the timelines it shows, in order,
/// with their lane counts.
const TIMELINE_PAGES: [(&str, &[(&str, usize)]); 4] = [
    ("03-gil/gil", &[("python_two_cpu", 2), ("rust_two_cpu", 2)]),
    ("06-fairness/fairness", &[("toy_old_gil_io", 2)]),
    (
        "06-fairness/new-gil",
        &[
            ("toy_new_gil_io_5ms", 2),
            ("toy_new_gil_io_1ms", 2),
            ("toy_new_gil_cpu_5ms", 2),
            ("python_cpu_and_io", 2),
        ],
    ),
    (
        "08-async/runtime-and-tasks",
        &[("tokio_starved", 2), ("tokio_spawn_blocking", 3)],
    ),
];

#[test]
#[ignore = "needs Chromium; .ci/run installs it and runs this test"]
fn served_timeline_pictures_load_with_a_lane_per_thread() {
    let (_out, site) = support::build_book();
    let timelines = site.join("appendix/measurements/timelines");
    for (page, _) in TIMELINE_PAGES {
        let html = fs::read_to_string(site.join(format!("{page}.html")))
            .unwrap_or_else(|_| panic!("{page} was not built"));
        let end = html.rfind("</body>").expect("a page without </body>");
        let probe = format!("{}{TIMELINES}{}", &html[..end], &html[end..]);
        fs::write(site.join(format!("{page}-timelines.html")), probe).unwrap();
    }
    let origin = support::serve_in_background(site.clone()).url();
    for (page, expected) in TIMELINE_PAGES {
        let dom = dump_dom(&format!("{origin}{page}-timelines.html"));
        let probe = probe_text(&dom, "timeline-probe", "no timeline probe");
        let shown: Vec<&str> = probe.lines().collect();
        assert_eq!(shown.len(), expected.len(), "{page}: {probe}");
        for (line, (name, lanes)) in shown.iter().zip(expected) {
            let fields: Vec<&str> = line.splitn(3, ' ').collect();
            assert_eq!(fields[0], format!("img={name}.svg"), "{page}");
            let width: u32 = fields[1].parse().unwrap_or(0);
            assert!(width > 0, "{page}: {name}.svg did not load: {line}");
            let svg = fs::read_to_string(timelines.join(format!("{name}.svg")))
                .unwrap();
            assert!(
                svg.contains(&format!(" data-lanes=\"{lanes}\"")),
                "{name}.svg should have {lanes} lanes"
            );
            let title = svg
                .split("<title>")
                .nth(1)
                .and_then(|rest| rest.split("</title>").next())
                .unwrap_or_else(|| panic!("{name}.svg has no <title>"));
            assert_eq!(
                fields.get(2).copied().unwrap_or(""),
                title,
                "{page}: the alt text of {name}.svg is not its title"
            );
        }
    }
}
