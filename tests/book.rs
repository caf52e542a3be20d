//! The book's own checks: every code block is one the doc-tests cover, the
//! compile errors are the ones the prose names, and the built book works
//! offline. The doc-tests themselves are `tests/skeptic.rs` and rustdoc's
//! run over `src/lib.rs`.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use course::book::{self, BookError};

mod pages;
mod support;
use pages::{files_under, markdown_pages as markdown_files};
use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A code block: its file, line, info string (None when indented) and text.
struct Block {
    file: PathBuf,
    line: usize,
    info: Option<String>,
    code: String,
}

fn code_blocks() -> Vec<Block> {
    let mut blocks = Vec::new();
    for file in markdown_files() {
        let text = fs::read_to_string(&file).unwrap();
        let mut open: Option<Block> = None;
        for (event, range) in Parser::new(&text).into_offset_iter() {
            match event {
                Event::Start(Tag::CodeBlock(kind)) => {
                    open = Some(Block {
                        file: file.clone(),
                        line: text[..range.start].lines().count() + 1,
                        info: match kind {
                            CodeBlockKind::Fenced(info) => {
                                Some(info.to_string())
                            }
                            CodeBlockKind::Indented => None,
                        },
                        code: String::new(),
                    });
                }
                Event::Text(code) => {
                    if let Some(block) = open.as_mut() {
                        block.code.push_str(&code);
                    }
                }
                Event::End(pulldown_cmark::TagEnd::CodeBlock) => {
                    blocks.extend(open.take());
                }
                _ => {}
            }
        }
    }
    blocks
}

impl Block {
    fn place(&self) -> String {
        let file = self.file.strip_prefix(root()).unwrap_or(&self.file);
        format!("{}:{}", file.display(), self.line)
    }

    /// The error a compile_fail block names, as rustc prints it: the
    /// code of ```compile_fail,E0373 (`error[E0373]`), or, for an error
    /// rustc gives no code, the message of the block's first line
    /// `// Refused: future cannot be sent between threads safely` under a
    /// bare ```compile_fail (`error: future cannot ...`).
    fn expected_error(&self) -> Option<String> {
        let info = self.info.as_deref()?;
        if info == "compile_fail" {
            let first = self.code.lines().next()?;
            let message = first.strip_prefix("// Refused: ")?;
            return Some(format!("error: {message}"));
        }
        let code = info.strip_prefix("compile_fail,")?;
        let valid = code.len() == 5
            && code.starts_with('E')
            && code[1..].chars().all(|c| c.is_ascii_digit());
        valid.then(|| format!("error[{code}]"))
    }
}

/// The fence of a Rust program that is type-checked but neither linked nor
/// run, by skeptic and by rustdoc alike. Only chapter 9 uses it: its
/// examples start an embedded CPython, and linking them needs CPython's
/// shared library, which a machine may lack (the course still builds and
/// grades chapters 1 to 8 there), while a program that deadlocks on purpose
/// must not run at all. mdBook hides the Run button of these blocks.
const NO_RUN: &str = "rust,no_run";

/// Whether a block of `file` may use the `rust,no_run` fence: only the
/// pages of chapter 9 (`chapters/09-*/`).
fn may_skip_running(file: &Path) -> bool {
    let relative = file.strip_prefix(root().join("chapters")).unwrap_or(file);
    relative
        .components()
        .next()
        .and_then(|first| first.as_os_str().to_str())
        .is_some_and(|folder| folder.starts_with("09-"))
}

/// Whether a block is a whole Rust program that skeptic and rustdoc check:
/// ```rust (compiled and run) or, in chapter 9, ```rust,no_run.
fn is_rust_program(block: &Block) -> bool {
    match block.info.as_deref() {
        Some("rust") => true,
        Some(NO_RUN) => may_skip_running(&block.file),
        _ => false,
    }
}

/// Languages that are shown, not compiled. Anything else is a mistake:
/// rustdoc would test a block with no language as Rust, and skeptic would
/// not, so the two engines would disagree.
/// `rs` is Rust source included from the course's own files
/// (`{{#include ../../src/gil.rs:take}}`): highlighted as Rust, compiled
/// with the crate rather than as a program of its own.
const SHOWN_ONLY: &[&str] =
    &["python", "console", "text", "toml", "mermaid", "rs"];

#[test]
fn every_code_block_is_tested_or_shown_only() {
    let mut problems = Vec::new();
    for block in code_blocks() {
        let verdict = match block.info.as_deref() {
            None => Some("an indented code block (rustdoc would test it)"),
            Some("rust") => None,
            Some(NO_RUN) if may_skip_running(&block.file) => None,
            Some(NO_RUN) => Some(
                "`rust,no_run` is only for chapter 9's PyO3 programs, which \
                 need libpython to link; elsewhere a program must run",
            ),
            Some(_) if block.expected_error().is_some() => None,
            Some(info) if SHOWN_ONLY.contains(&info) => None,
            // Self-check questions: tests/quiz.rs proves their answers.
            Some("quiz") => None,
            Some("") => Some("a fence without a language"),
            Some(info) if info.contains("compile_fail") => Some(
                "compile_fail must be written `compile_fail,E0000` (the \
                 error the prose explains), without `rust`, or, for an \
                 error without a code, `compile_fail` with a first line \
                 `// Refused: <rustc's message>`",
            ),
            Some(_) => Some(
                "an unknown fence: use `rust` (compiled and run), \
                 `compile_fail,E0000`, or one of the shown-only languages; \
                 `ignore` and `should_panic` are not used, and `no_run` \
                 only as `rust,no_run` in chapter 9",
            ),
        };
        if let Some(verdict) = verdict {
            problems.push(format!(
                "{}: {verdict}: {:?}",
                block.place(),
                block.info
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn skeptic_runs_every_rust_block() {
    // skeptic makes a test of each program, `rust,no_run` ones included
    // (it only type-checks those).
    let rust_blocks =
        code_blocks().iter().filter(|b| is_rust_program(b)).count();
    let generated = include_str!(concat!(env!("OUT_DIR"), "/skeptic-tests.rs"));
    let tests = generated.matches("#[test]").count();
    let ignored = generated.matches("#[ignore]").count();
    assert_eq!(ignored, 0, "skeptic generated ignored tests");
    assert_eq!(
        tests, rust_blocks,
        "the book has {rust_blocks} Rust programs but skeptic tests {tests}"
    );
    assert!(
        rust_blocks >= 6,
        "chapter 1 alone has more examples than that"
    );
}

#[test]
fn rust_blocks_are_full_programs() {
    for block in code_blocks() {
        if is_rust_program(&block) {
            assert!(
                block.code.contains("fn main()"),
                "{}: a ```rust block must be a whole program with `fn \
                 main()` (hide it with `# ` lines if it distracts)",
                block.place()
            );
        }
    }
}

/// rustdoc proves that a compile_fail block fails, but on stable it does
/// not check which error. This test compiles each one with rustc and
/// requires the error code its fence names.
#[test]
fn compile_fail_blocks_fail_with_the_error_they_name() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let scratch = tempfile::tempdir().unwrap();
    for block in code_blocks() {
        let Some(expected) = block.expected_error() else {
            continue;
        };
        assert!(
            !block.code.lines().any(|l| l.trim_start().starts_with("# ")),
            "{}: mdBook does not hide `# ` lines in compile_fail blocks; \
             show the whole program",
            block.place()
        );
        let source = scratch.path().join("snippet.rs");
        fs::write(&source, &block.code).unwrap();
        let mut command = Command::new(&rustc);
        command
            .args(["--edition", "2024", "--emit=metadata", "--crate-type"])
            .arg("bin")
            .arg("--out-dir")
            .arg(scratch.path());
        if block.code.contains("pyo3") {
            command.args(pyo3_args());
        }
        let output = command.arg(&source).output().expect("cannot run rustc");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{}: the block compiles, but it is fenced compile_fail",
            block.place()
        );
        assert!(
            stderr.contains(&expected),
            "{}: expected `{expected}`, rustc said:\n{stderr}",
            block.place()
        );
    }
}

/// The arguments that let rustc find `pyo3` for a compile_fail block that
/// uses it (chapter 9): the `pyo3` this test binary was built beside (a
/// dependency of `course`), the newest if cargo has kept several.
fn pyo3_args() -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let is_pyo3 = |path: &PathBuf| {
        let name = path.file_name().unwrap().to_string_lossy();
        name.starts_with("libpyo3-") && name.ends_with(".rlib")
    };
    let newest = fs::read_dir(deps)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(is_pyo3)
        .max_by_key(|path| fs::metadata(path).and_then(|m| m.modified()).ok())
        .expect("no libpyo3-*.rlib beside the test binary");
    vec![
        "-L".into(),
        format!("dependency={}", deps.display()),
        "--extern".into(),
        format!("pyo3={}", newest.display()),
    ]
}

#[test]
fn markdown_file_names_are_unique() {
    // skeptic names its tests after the file name, not the path.
    let mut names: Vec<_> = markdown_files()
        .iter()
        .map(|f| f.file_name().unwrap().to_owned())
        .filter(|name| name != "SUMMARY.md")
        .collect();
    let total = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), total, "two chapters share a file name");
}

#[test]
fn every_chapter_file_is_in_the_summary() {
    let summary =
        fs::read_to_string(root().join("chapters/SUMMARY.md")).unwrap();
    for file in markdown_files() {
        let relative = file.strip_prefix(root().join("chapters")).unwrap();
        let relative = relative.to_string_lossy();
        // Fragments that pages include are not pages themselves.
        let fragment = relative.starts_with("appendix/measurements/");
        if relative != "SUMMARY.md" && !fragment {
            assert!(
                summary.contains(&format!("]({relative})")),
                "{relative} is not listed in chapters/SUMMARY.md"
            );
        }
    }
}

/// Every `{{#include file:anchor}}` of a page names a file that has that
/// anchor, so no generated figure silently goes missing from the prose.
#[test]
fn included_figures_exist() {
    let mut found = 0;
    for file in markdown_files() {
        let text = fs::read_to_string(&file).unwrap();
        for rest in text.split("{{#include ").skip(1) {
            let target = rest.split("}}").next().unwrap();
            let (path, anchor) = target.split_once(':').unwrap_or((target, ""));
            let included = file.parent().unwrap().join(path);
            let body = fs::read_to_string(&included).unwrap_or_else(|_| {
                panic!("{}: includes {path}, which is missing", file.display())
            });
            // `<!-- ANCHOR: name -->` in markdown, `// ANCHOR: name` at the
            // end of a line of Rust.
            let marked = |marker: &str| {
                let tag = format!("{marker}: {anchor}");
                body.lines().any(|line| {
                    line.trim_end().ends_with(&tag)
                        || line.contains(&format!("{tag} "))
                })
            };
            if !anchor.is_empty() {
                assert!(
                    marked("ANCHOR") && marked("ANCHOR_END"),
                    "{}: {path} has no anchor {anchor:?} (run `cargo course \
                     bench --write`?)",
                    file.display()
                );
            }
            found += 1;
        }
    }
    assert!(found >= 10, "only {found} includes: is the parser wrong?");
}

/// One build of the real book, shared by the checks below.
fn built_book() -> &'static Path {
    static SITE: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> =
        std::sync::OnceLock::new();
    &SITE.get_or_init(support::build_book).1
}

#[test]
fn the_book_has_every_chapter_and_renders_diagrams() {
    let site = built_book();
    let threads = fs::read_to_string(site.join("01-threads/threads.html"))
        .expect("chapter 1 was not built");
    assert!(threads.contains(r#"<pre class="mermaid">"#), "no diagram");
    let summary =
        fs::read_to_string(root().join("chapters/SUMMARY.md")).unwrap();
    for line in summary.lines() {
        if let Some((_, link)) = line.split_once("](") {
            let page = link.trim_end_matches(')').replace(".md", ".html");
            assert!(site.join(&page).is_file(), "{page} was not built");
        }
    }
    assert!(
        fs::read_dir(site).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("searchindex")),
        "the search index was not built"
    );
}

/// Each page's `<meta name="description">` is its own first paragraph
/// (what search engines show under its title), not the book's.
#[test]
fn chapter_pages_have_descriptions_of_their_own() {
    let site = built_book();
    let description = |page: &str| {
        let html = fs::read_to_string(site.join(page))
            .unwrap_or_else(|_| panic!("{page} was not built"));
        let tag = r#"<meta name="description" content=""#;
        let rest = html.split(tag).nth(1).expect("no description");
        rest.split('"').next().unwrap().to_string()
    };
    let threads = description("01-threads/threads.html");
    let gil = description("03-gil/gil.html");
    for text in [&threads, &gil] {
        assert!(!text.is_empty(), "an empty description");
        assert!(text.chars().count() <= 160, "too long: {text}");
        assert!(!text.contains('<'), "a tag in {text}");
    }
    assert_ne!(threads, gil, "two chapters share a description");
    assert!(gil.contains("Global Interpreter Lock"), "{gil}");
}

/// Every resource a page loads (scripts, styles, fonts, images) must come
/// from the book itself; links the reader may click are fine.
#[test]
fn pages_load_nothing_from_the_network() {
    let site = built_book();
    let pages = files_under(site, "html");
    let external = |url: &str| {
        url.starts_with("http:")
            || url.starts_with("https:")
            || url.starts_with("//")
    };
    for page in &pages {
        let html = fs::read_to_string(page).unwrap();
        // Run buttons make book.js call play.rust-lang.org, unless
        // theme/head.hbs has redirected `fetch` before book.js loads.
        if html.contains("class=\"playground\"") {
            let redirect = html.find("'/__course/'");
            // The `<script src="../book-<hash>.js">` tag.
            let book_js =
                html.match_indices("<script src=\"").find_map(|(at, _)| {
                    let src = html[at..].split('"').nth(1)?;
                    let file = src.rsplit('/').next()?;
                    (file.starts_with("book-") && file.ends_with(".js"))
                        .then_some(at)
                });
            assert!(
                redirect.is_some()
                    && html.find("</head>") > redirect
                    && book_js > redirect,
                "{}: Run buttons without the local runner's redirect",
                page.display()
            );
        }
        for tag in html.split('<').skip(1) {
            let name = tag.split_whitespace().next().unwrap_or("");
            let attribute = match name {
                "script" | "img" | "iframe" | "source" => "src=\"",
                "link" => "href=\"",
                _ => continue,
            };
            if let Some((_, rest)) = tag.split_once(attribute) {
                let url = rest.split('"').next().unwrap_or("");
                assert!(
                    !external(url),
                    "{} loads {url} from the network",
                    page.display()
                );
                if !url.starts_with('#') && !url.is_empty() {
                    let local = page.parent().unwrap().join(url);
                    let local = local.to_string_lossy();
                    let path = local.split(['?', '#']).next().unwrap();
                    assert!(
                        Path::new(path).exists(),
                        "{} loads {url}, which is not in the book",
                        page.display()
                    );
                }
            }
        }
    }
    for entry in fs::read_dir(site.join("css")).unwrap() {
        let css = fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!css.contains("url(http"), "a stylesheet loads a remote url");
        assert!(!css.contains("@import"), "a stylesheet imports another");
    }
}

/// Every link from one page of the book to another, and every `#anchor`
/// in it, leads somewhere: the appendix links to headings, and renaming a
/// heading must not leave a dead link behind.
#[test]
fn includes_are_resolved_in_the_built_book() {
    for page in files_under(built_book(), "html") {
        let html = fs::read_to_string(&page).unwrap();
        assert!(
            !html.contains("{{#include") && !html.contains("ANCHOR"),
            "{}: an include was not resolved",
            page.display()
        );
    }
}

#[test]
fn links_between_pages_resolve() {
    let site = built_book();
    let ids = |html: &str| -> Vec<String> {
        html.split(" id=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap_or("").to_string())
            .collect()
    };
    let mut checked = 0;
    for page in files_under(site, "html") {
        let html = fs::read_to_string(&page).unwrap();
        for rest in html.split("<a href=\"").skip(1) {
            let url = rest.split('"').next().unwrap_or("");
            if url.contains("://") || url.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = url.split_once('#').unwrap_or((url, ""));
            let target = if path.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(path)
            };
            assert!(
                target.exists(),
                "{}: the link {url} leads nowhere",
                page.display()
            );
            if !anchor.is_empty() && target.extension() == Some("html".as_ref())
            {
                let html = fs::read_to_string(&target).unwrap();
                assert!(
                    ids(&html).iter().any(|id| id == anchor),
                    "{}: the link {url} names no heading of {}",
                    page.display(),
                    target.display()
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 50,
        "only {checked} links found: is the parser wrong?"
    );
}

/// A book with a broken SUMMARY.md gets a sentence, not a panic.
#[test]
fn a_broken_book_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("book.toml"),
        "[book]\nsrc = \"chapters\"\n[build]\ncreate-missing = false\n",
    )
    .unwrap();
    fs::create_dir(dir.path().join("chapters")).unwrap();
    fs::write(
        dir.path().join("chapters/SUMMARY.md"),
        "# Summary\n\n- [Gone](gone.md)\n",
    )
    .unwrap();
    let empty = tempfile::tempdir().unwrap();
    let error = book::build(empty.path(), None).unwrap_err();
    assert!(error.to_string().contains("no book.toml"), "{error}");

    let error = book::build(dir.path(), None).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, BookError::Build(_)), "{message}");
    assert!(message.contains("gone.md"), "{message}");

    let output = Command::new(env!("CARGO_BIN_EXE_course"))
        .args(["build", "--root"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: cannot build the book"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Serves the built book on a free port and reads a page back.
#[test]
fn serve_answers_on_a_free_port_and_reports_a_taken_one() {
    let launch = support::serve_in_background(built_book().to_path_buf());
    let address = launch.address();
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET /01-threads/threads.html HTTP/1.1\r\nHost: {}\r\n\
         Connection: close\r\n\r\n",
        launch.host
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response:.200}");
    assert!(response.contains("<pre class=\"mermaid\">"));

    // The same port again: taken.
    let site = built_book().to_path_buf();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let error = runtime
        .block_on(book::serve(site, address.port(), |_| {}))
        .unwrap_err();
    assert!(matches!(error, BookError::PortInUse(_)), "{error}");
    assert!(error.to_string().contains("leave out --port"), "{error}");
}

/// The Python shown beside the Rust runs, with the `python3` on PATH. The
/// README promises that `cargo test` needs only Rust, so without python3
/// this test says so and checks nothing, unless `COURSE_REQUIRE_PYTHON` is
/// set, as `.ci/run` sets it.
#[test]
fn python_blocks_run() {
    let required = std::env::var_os("COURSE_REQUIRE_PYTHON").is_some();
    if Command::new("python3").arg("--version").output().is_err() {
        assert!(!required, "python3 is not on PATH; install Python 3.11+");
        eprintln!("python3 not found: the Python examples were not run");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    for block in code_blocks() {
        if block.info.as_deref() != Some("python") {
            continue;
        }
        let script = scratch.path().join("example.py");
        fs::write(&script, &block.code).unwrap();
        let mut command = Command::new("python3");
        command.arg(&script);
        // Only detects a hang: the examples finish in well under a second.
        let limit = course::spawn::OutputLimit::kill_past(1 << 20);
        let timeout = Duration::from_secs(60);
        let ran = course::spawn::run(command, timeout, limit).unwrap();
        let Some(status) = ran.status() else {
            panic!("{}: the Python example did not finish", block.place());
        };
        assert!(
            status.success(),
            "{}: python3 failed:\n{}",
            block.place(),
            ran.stderr_text()
        );
    }
}

/// What a chapter 9 program that hangs on purpose says in its first line:
/// the test below expects it to time out instead of finishing.
const HANGS: &str = "// This program hangs on purpose";

/// Chapter 9's PyO3 programs (```rust,no_run, which skeptic and rustdoc
/// only type-check) compiled and run through the Run button's package,
/// which links CPython where there is one: each prints what it finishes
/// with, and the one that shows a deadlock is still running at the
/// deadline. Without a CPython to embed, this test says so and checks
/// nothing, unless `COURSE_REQUIRE_PYTHON` is set, as `.ci/run` sets it.
#[test]
fn python_embedding_programs_run() {
    let required = std::env::var_os("COURSE_REQUIRE_PYTHON").is_some();
    let missing = env!("COURSE_NO_PYTHON");
    if !missing.is_empty() {
        assert!(!required, "{missing}");
        eprintln!("chapter 9's programs were not run: {missing}");
        return;
    }
    // Only detects a hang: every program but the deadlock ends in well
    // under a second once built.
    let deadline = Duration::from_secs(20);
    let runner = course::runner::Runner::new(
        root(),
        root().join("target/runner-test"),
        deadline,
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let programs: Vec<Block> = code_blocks()
        .into_iter()
        .filter(|block| block.info.as_deref() == Some(NO_RUN))
        .collect();
    assert!(!programs.is_empty(), "chapter 9 shows no PyO3 program");
    for block in programs {
        // rustdoc's hidden lines (`# ` in front) are part of the program.
        let code: String = block
            .code
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .map(|line| if line == "#" { "" } else { line })
            .flat_map(|line| [line, "\n"])
            .collect();
        let ran = runtime.block_on(runner.evaluate(code.clone()));
        if code.starts_with(HANGS) {
            assert!(
                ran.error
                    .as_deref()
                    .is_some_and(|e| e.contains("timed out")),
                "{}: the program that should hang ended: {ran:?}",
                block.place()
            );
        } else {
            assert!(ran.error.is_none(), "{}: {ran:?}", block.place());
        }
    }
}

/// Examples fit the book's column (rustfmt's `max_width = 80`), so no
/// reader has to scroll sideways.
#[test]
fn code_lines_fit_the_column() {
    for block in code_blocks() {
        let python = block.info.as_deref() == Some("python");
        if !is_rust_program(&block) && !python {
            continue;
        }
        for (offset, line) in block.code.lines().enumerate() {
            assert!(
                line.chars().count() <= 80,
                "{}: line {} of the block is wider than 80 columns",
                block.place(),
                offset + 1
            );
        }
    }
}
