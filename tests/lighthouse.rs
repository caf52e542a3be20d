//! The course's pages audited by Lighthouse 12 in Chromium, against
//! targets: performance at least 95, accessibility 100, best practices and
//! SEO at least 95 (issue 23).
//!
//! Three pages of the course are judged: chapter 3 (`03-gil/gil.html`, with
//! its diagrams), the Measurements appendix and the start page, each built
//! into a temporary folder and served by `course::book::serve`. The same
//! chapters built by a stock mdBook with its own theme (none of `theme/`:
//! `target/stock-theme-book`, written by the stock mdbook step of
//! `.ci/run`) are served the same way and their chapter 3 is measured in
//! the same run, as a reference: it is reported, not judged.
//!
//! Each page is audited once in all four categories, then twice more in
//! performance alone: the performance score is the median of the three
//! runs, because it varies by a few points from run to run. Lighthouse's
//! own notes on variability (docs/variability.md) advise judging an
//! aggregate such as the median rather than a single run, and find the
//! median of 5 runs twice as stable as one; 3 runs (12 in all, about 20 s
//! each on a busy 2-core machine) keep the step near 4 minutes where 5
//! would take 6. The other categories do not depend on timing, so one run
//! gives them.
//!
//! The test prints a table of the four pages' scores and their first
//! contentful paint, largest contentful paint and total blocking time
//! (those of the median run), and keeps every report in
//! `target/tmp/lighthouse/`.
//!
//! Needs Node, Lighthouse and Chromium, so it is `#[ignore]`d in a plain
//! `cargo test`; `.ci/run` installs them and runs it with `-- --ignored`.
//! `LIGHTHOUSE` names the `lighthouse` command (by default the one `.ci/run`
//! installs in `target/tools/lighthouse`), `CHROMIUM` the browser (by
//! default `/usr/bin/chromium`). The judging code is tested without them,
//! on small reports, by the tests at the end of this file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod support;

/// The categories audited, their names in the report and the lowest score
/// each may have on a course page.
const TARGETS: [(&str, &str, u32); 4] = [
    ("performance", "performance", 95),
    ("accessibility", "accessibility", 100),
    ("best-practices", "best practices", 95),
    ("seo", "SEO", 95),
];

/// The course's pages that must meet the targets, as paths in the book.
const JUDGED: [&str; 3] = [
    "03-gil/gil.html",
    "appendix/measurements.html",
    "index.html",
];

/// The stock mdBook page measured for comparison.
const REFERENCE: &str = "03-gil/gil.html";

/// How many runs give a page's performance score (their median).
const PERFORMANCE_RUNS: usize = 3;

/// What a test reports when it fails: its message, printed as it is
/// (libtest prints a returned error with `Debug`).
struct Failure(String);

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One Lighthouse report, reduced to what this test judges and prints.
#[derive(Debug, Clone, PartialEq)]
struct Report {
    /// The score (0 to 100, rounded as Lighthouse shows it) of each
    /// category the run audited, by its id in the report.
    scores: BTreeMap<String, u32>,
    /// The audits that count toward each category's score and did not
    /// pass, by category, for the message of a failure.
    failing: BTreeMap<String, Vec<String>>,
    /// First contentful paint, in milliseconds.
    fcp_ms: f64,
    /// Largest contentful paint, in milliseconds.
    lcp_ms: f64,
    /// Total blocking time, in milliseconds.
    tbt_ms: f64,
}

/// Reads a Lighthouse JSON report. A run that could not load the page, or a
/// category without a score, is an error that says why.
fn parse(json: &str) -> Result<Report, String> {
    let report: serde_json::Value = serde_json::from_str(json)
        .map_err(|error| format!("not a Lighthouse report: {error}"))?;
    if let Some(error) = report.get("runtimeError") {
        return Err(format!(
            "Lighthouse could not audit {}: {} ({})",
            report["requestedUrl"].as_str().unwrap_or("the page"),
            error["message"].as_str().unwrap_or("no message"),
            error["code"].as_str().unwrap_or("no code"),
        ));
    }
    let categories = report["categories"]
        .as_object()
        .ok_or("the report has no categories")?;
    let mut scores = BTreeMap::new();
    let mut failing = BTreeMap::new();
    for (id, category) in categories {
        let score = category["score"].as_f64().ok_or_else(|| {
            format!("Lighthouse gave the category {id} no score")
        })?;
        // Lighthouse shows Math.round(score * 100); f64::round rounds
        // halves the same way for positive numbers.
        scores.insert(id.clone(), (score * 100.0).round() as u32);
        let weighed = category["auditRefs"].as_array().into_iter().flatten();
        let below = weighed
            .filter(|audit| {
                audit["weight"].as_f64().is_some_and(|weight| weight > 0.0)
            })
            .filter_map(|audit| audit["id"].as_str())
            .filter(|audit| {
                let score = report["audits"][audit]["score"].as_f64();
                score.is_some_and(|score| score < 1.0)
            });
        failing.insert(id.clone(), below.map(str::to_owned).collect());
    }
    let metric = |id: &str| {
        report["audits"][id]["numericValue"]
            .as_f64()
            .ok_or_else(|| {
                format!("the report has no value for the audit {id}")
            })
    };
    Ok(Report {
        scores,
        failing,
        fcp_ms: metric("first-contentful-paint")?,
        lcp_ms: metric("largest-contentful-paint")?,
        tbt_ms: metric("total-blocking-time")?,
    })
}

/// The page's result from its runs: the median performance score with the
/// metrics of that run, and the other categories from the runs that
/// audited them (the first such run).
fn combine(runs: &[Report]) -> Report {
    let performance = |run: &Report| run.scores.get("performance").copied();
    let mut timed: Vec<&Report> = runs
        .iter()
        .filter(|run| performance(run).is_some())
        .collect();
    timed.sort_by_key(|run| performance(run));
    let mut page = match timed.get(timed.len() / 2) {
        Some(median) => (*median).clone(),
        None => Report {
            scores: BTreeMap::new(),
            failing: BTreeMap::new(),
            fcp_ms: f64::NAN,
            lcp_ms: f64::NAN,
            tbt_ms: f64::NAN,
        },
    };
    page.scores.retain(|id, _| id == "performance");
    page.failing.retain(|id, _| id == "performance");
    for run in runs {
        for (id, score) in &run.scores {
            if id != "performance" && !page.scores.contains_key(id) {
                page.scores.insert(id.clone(), *score);
                let failing = run.failing.get(id).cloned().unwrap_or_default();
                page.failing.insert(id.clone(), failing);
            }
        }
    }
    page
}

/// What keeps `report` under the targets, one sentence per category; empty
/// when it meets them all. A category that was not audited falls short.
fn shortfalls(report: &Report) -> Vec<String> {
    TARGETS
        .iter()
        .filter_map(|&(id, name, target)| match report.scores.get(id) {
            Some(&score) if score >= target => None,
            Some(&score) => {
                let failing =
                    report.failing.get(id).map_or(&[][..], Vec::as_slice);
                let audits = if failing.is_empty() || id == "performance" {
                    String::new()
                } else {
                    format!(" (audits not passed: {})", failing.join(", "))
                };
                Some(format!(
                    "{name} is {score}, under the target of {target}{audits}"
                ))
            }
            None => Some(format!("{name} was not audited (target {target})")),
        })
        .collect()
}

/// The scores and metrics of `pages` (a label and a report each) as a
/// plain-text table.
fn table(pages: &[(String, Report)]) -> String {
    let width = pages
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "{:width$}  perf  a11y  best   seo     FCP     LCP     TBT\n",
        "page"
    );
    for (label, report) in pages {
        let score = |id: &str| match report.scores.get(id) {
            Some(score) => score.to_string(),
            None => "-".to_owned(),
        };
        out += &format!(
            "{label:width$}  {:>4}  {:>4}  {:>4}  {:>4}  {:>6}  {:>6}  {:>6}\n",
            score("performance"),
            score("accessibility"),
            score("best-practices"),
            score("seo"),
            milliseconds(report.fcp_ms),
            milliseconds(report.lcp_ms),
            milliseconds(report.tbt_ms),
        );
    }
    out
}

/// A duration in milliseconds as the table shows it: seconds with one
/// decimal from a second on, whole milliseconds below.
fn milliseconds(value: f64) -> String {
    if value.is_nan() {
        "-".to_owned()
    } else if value >= 1000.0 {
        format!("{:.1} s", value / 1000.0)
    } else {
        format!("{value:.0} ms")
    }
}

/// The `lighthouse` command: `LIGHTHOUSE`, or the one `.ci/run` installs.
fn lighthouse() -> Result<PathBuf, Failure> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let installed =
        root.join("target/tools/lighthouse/node_modules/.bin/lighthouse");
    let command =
        std::env::var_os("LIGHTHOUSE").map_or(installed, PathBuf::from);
    if command.is_file() {
        Ok(command)
    } else {
        Err(Failure(format!(
            "there is no Lighthouse at {}: set LIGHTHOUSE to the lighthouse \
             command, or install it as .ci/run does (needs Node and npm):\n  \
             npm install --prefix target/tools/lighthouse lighthouse@12.8.2",
            command.display()
        )))
    }
}

/// Audits `url` once in `categories` (comma-separated ids), keeping the
/// JSON report at `output`.
fn audit(
    lighthouse: &Path,
    url: &str,
    categories: &str,
    output: &Path,
) -> Result<Report, Failure> {
    let mut command = std::process::Command::new(lighthouse);
    command
        .arg(url)
        .arg("--quiet")
        .arg("--chrome-flags=--headless --no-sandbox")
        .arg(format!("--only-categories={categories}"))
        .arg("--output=json")
        .arg(format!("--output-path={}", output.display()))
        .env("CHROME_PATH", support::chromium());
    // Only detects a hang; a run took 17 to 29 seconds on a busy machine.
    let limit = course::spawn::OutputLimit::keep_first(1 << 20);
    let ran = course::spawn::run(command, Duration::from_secs(180), limit)
        .map_err(|error| {
            Failure(format!("cannot start {}: {error}", lighthouse.display()))
        })?;
    match ran.status() {
        Some(status) if status.success() => {}
        ended => {
            return Err(Failure(format!(
                "Lighthouse on {url} ended with {ended:?}:\n{}{}",
                ran.stdout_text(),
                ran.stderr_text()
            )));
        }
    }
    let json = std::fs::read_to_string(output).map_err(|error| {
        Failure(format!("cannot read {}: {error}", output.display()))
    })?;
    parse(&json).map_err(|error| {
        Failure(format!("{error} (report: {})", output.display()))
    })
}

/// Audits `page` at `base`: once in every category, then in performance
/// alone until it has [`PERFORMANCE_RUNS`] performance scores; the
/// reports go to `reports`, named after `name`.
fn measure(
    lighthouse: &Path,
    base: &str,
    page: &str,
    name: &str,
    reports: &Path,
) -> Result<Report, Failure> {
    let url = format!("{base}{page}");
    let all: Vec<&str> = TARGETS.iter().map(|&(id, _, _)| id).collect();
    let mut runs = Vec::new();
    for run in 1..=PERFORMANCE_RUNS {
        let categories = if run == 1 {
            all.join(",")
        } else {
            "performance".to_owned()
        };
        let output = reports.join(format!("{name}-{run}.json"));
        let started = Instant::now();
        let report = audit(lighthouse, &url, &categories, &output)?;
        eprintln!(
            "lighthouse: {name} run {run} of {PERFORMANCE_RUNS} ({categories}): \
             performance {:?}, {:.0} s",
            report.scores.get("performance"),
            started.elapsed().as_secs_f64()
        );
        runs.push(report);
    }
    Ok(combine(&runs))
}

#[test]
#[ignore = "needs Node, Lighthouse and Chromium; .ci/run installs them and runs this test"]
fn the_course_pages_meet_the_lighthouse_targets() -> Result<(), Failure> {
    let started = Instant::now();
    let lighthouse = lighthouse()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stock = root.join("target/stock-theme-book");
    if !stock.join(REFERENCE).is_file() {
        return Err(Failure(format!(
            "there is no stock mdBook build at {} to measure beside the \
             course: run the stock mdbook step of .ci/run, or:\n  \
             cargo install --locked --debug --root target/tools mdbook@0.5.4 mdbook-mermaid@0.17.1\n  \
             dir=$(mktemp -d); cp -r book.toml chapters \"$dir\"\n  \
             PATH=\"$PWD/target/tools/bin:$PATH\" mdbook build -d \"$PWD/target/stock-theme-book\" \"$dir\"",
            stock.display()
        )));
    }
    let reports = root.join("target/tmp/lighthouse");
    std::fs::create_dir_all(&reports).unwrap();

    let (_kept, site) = support::build_book();
    let course = support::serve_in_background(site).url();
    let reference = support::serve_in_background(stock).url();

    let mut pages = Vec::new();
    let mut failures = Vec::new();
    for page in JUDGED {
        let name = page.trim_end_matches(".html").replace('/', "-");
        let report = measure(&lighthouse, &course, page, &name, &reports)?;
        failures.extend(
            shortfalls(&report)
                .into_iter()
                .map(|why| format!("{page}: {why}")),
        );
        pages.push((page.to_owned(), report));
    }
    let report = measure(
        &lighthouse,
        &reference,
        REFERENCE,
        "stock-03-gil-gil",
        &reports,
    )?;
    pages.push((format!("stock mdBook {REFERENCE}"), report));

    let table = table(&pages);
    println!(
        "Lighthouse 12, performance the median of {PERFORMANCE_RUNS} runs \
         ({:.0} s in all; reports in {}):\n{table}",
        started.elapsed().as_secs_f64(),
        reports.display()
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure(format!(
            "the course's pages fall short of the Lighthouse targets:\n{table}\n{}",
            failures.join("\n")
        )))
    }
}

/// A report as Lighthouse writes it, cut down to the fields read here.
fn fixture(performance: &str, accessibility: &str, fcp: f64) -> String {
    let alt = if accessibility == "1" { 1 } else { 0 };
    format!(
        r#"{{
  "lighthouseVersion": "12.8.2",
  "requestedUrl": "http://x.localhost:1/index.html",
  "categories": {{
    "performance": {{ "id": "performance", "score": {performance} }},
    "accessibility": {{
      "id": "accessibility",
      "score": {accessibility},
      "auditRefs": [
        {{ "id": "image-alt", "weight": 10 }},
        {{ "id": "aria-allowed-role", "weight": 1 }},
        {{ "id": "html-has-lang", "weight": 0 }}
      ]
    }},
    "best-practices": {{ "id": "best-practices", "score": 0.96 }},
    "seo": {{ "id": "seo", "score": 1 }}
  }},
  "audits": {{
    "first-contentful-paint": {{ "numericValue": {fcp} }},
    "largest-contentful-paint": {{ "numericValue": 1830.5 }},
    "total-blocking-time": {{ "numericValue": 0 }},
    "image-alt": {{ "score": {alt} }},
    "aria-allowed-role": {{ "score": 1 }},
    "html-has-lang": {{ "score": 0 }}
  }}
}}"#
    )
}

#[test]
fn a_report_that_meets_every_target_passes() {
    let report = parse(&fixture("0.95", "1", 812.25)).unwrap();
    let expected: BTreeMap<String, u32> = [
        ("performance", 95),
        ("accessibility", 100),
        ("best-practices", 96),
        ("seo", 100),
    ]
    .map(|(id, score)| (id.to_owned(), score))
    .into();
    assert_eq!(report.scores, expected);
    assert_eq!(
        (report.fcp_ms, report.lcp_ms, report.tbt_ms),
        (812.25, 1830.5, 0.0)
    );
    assert_eq!(shortfalls(&report), Vec::<String>::new());
}

#[test]
fn each_category_under_its_target_is_named() {
    // 0.944 shows as 94; 0.995 would show as 100, 0.994 shows as 99.
    let report = parse(&fixture("0.944", "0.994", 800.0)).unwrap();
    assert_eq!(
        shortfalls(&report),
        [
            "performance is 94, under the target of 95",
            "accessibility is 99, under the target of 100 \
             (audits not passed: image-alt)",
        ]
    );
    let rounded_up = parse(&fixture("0.945", "0.995", 800.0)).unwrap();
    assert_eq!(shortfalls(&rounded_up), Vec::<String>::new());
}

#[test]
fn a_category_not_audited_falls_short() {
    let mut report = parse(&fixture("1", "1", 800.0)).unwrap();
    report.scores.remove("seo");
    assert_eq!(shortfalls(&report), ["SEO was not audited (target 95)"]);
}

#[test]
fn a_failed_run_is_an_error_that_says_why() {
    let unscored = fixture("null", "1", 800.0);
    assert_eq!(
        parse(&unscored).unwrap_err(),
        "Lighthouse gave the category performance no score"
    );
    let failed = unscored.replacen(
        "\"categories\"",
        r#""runtimeError": { "code": "NO_FCP", "message": "The page did not paint any content." },
  "categories""#,
        1,
    );
    assert_eq!(
        parse(&failed).unwrap_err(),
        "Lighthouse could not audit http://x.localhost:1/index.html: \
         The page did not paint any content. (NO_FCP)"
    );
    assert!(
        parse("<html>")
            .unwrap_err()
            .starts_with("not a Lighthouse report")
    );
}

#[test]
fn performance_is_the_median_run_and_the_rest_come_from_the_full_run() {
    let full = parse(&fixture("0.60", "1", 600.0)).unwrap();
    let performance_only = |score: &str, fcp: f64| {
        let mut run = parse(&fixture(score, "0", fcp)).unwrap();
        run.scores.retain(|id, _| id == "performance");
        run
    };
    let runs = [
        full,
        performance_only("0.97", 970.0),
        performance_only("0.90", 900.0),
    ];
    let page = combine(&runs);
    assert_eq!(page.scores["performance"], 90);
    assert_eq!(
        page.fcp_ms, 900.0,
        "the metrics are those of the median run"
    );
    assert_eq!(page.scores["accessibility"], 100);
    assert_eq!(page.failing["accessibility"], Vec::<String>::new());
    assert_eq!(page.scores.len(), 4);

    let rows = table(&[("index.html".to_owned(), page)]);
    assert_eq!(
        rows,
        "page        perf  a11y  best   seo     FCP     LCP     TBT\n\
         index.html    90   100    96   100  900 ms   1.8 s    0 ms\n"
    );
}
