//! The self-check questions of the book, proven: every answer key is checked
//! against what the compiler and the programs really do.
//!
//! A question is a block fenced with four backticks and `quiz` (so that it
//! can hold a ```rust program); `chapters/quiz/quiz.js` turns it into a
//! question in the page. Its lines:
//!
//! ````text
//! kind: prints | possible | compiles | concept
//! question: the question (optional for the first three kinds)
//! ```rust ... ```  the program (not for `concept`)
//! + an answer that is right (an output, for prints and possible)
//! - an answer that is wrong
//! error: E0277     (compiles, when the right answer is that it does not)
//! explain: why, in a sentence or two
//! ````
//!
//! - `prints`: one right option, the program's whole output on one line;
//!   the program is compiled and run, and its output must be that option.
//! - `possible`: the program's output depends on scheduling; every option
//!   marked `+` is possible. The program runs many times, and every output
//!   it prints must be an option marked `+`. (An option marked `+` that a
//!   run never shows is allowed: some interleavings are rare.)
//! - `compiles`: the options are `It compiles` and `It does not compile`;
//!   rustc must agree, and fail with the `error:` code when it should.
//! - `concept`: a multiple-choice question on the chapter's idea, with one
//!   right option; nothing to run, so only its shape is checked.
//!
//! Programs use std only (they are compiled with plain rustc, edition
//! 2024) and print one line. In `question`, `explain` and the options of
//! `compiles` and `concept` questions, `backticks` mark inline code; each
//! of those is one line.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod pages;

use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};

/// How often a `possible` program runs.
const RUNS: usize = 200;

/// A question: where it is, and its parts.
#[derive(Debug, Default)]
struct Quiz {
    place: String,
    kind: String,
    question: String,
    program: Option<String>,
    options: Vec<(bool, String)>,
    error: Option<String>,
    explain: String,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every ````quiz block of the book, parsed as quiz.js parses it.
fn quizzes() -> Vec<Quiz> {
    let mut found = Vec::new();
    for file in pages::markdown_pages() {
        let text = fs::read_to_string(&file).unwrap();
        let mut open: Option<(usize, String)> = None;
        for (event, range) in Parser::new(&text).into_offset_iter() {
            match event {
                Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info)))
                    if &*info == "quiz" =>
                {
                    let line = text[..range.start].lines().count() + 1;
                    open = Some((line, String::new()));
                }
                Event::Text(body) => {
                    if let Some((_, text)) = open.as_mut() {
                        text.push_str(&body);
                    }
                }
                Event::End(TagEnd::CodeBlock) => {
                    if let Some((line, body)) = open.take() {
                        let name = file.strip_prefix(root()).unwrap();
                        let place = format!("{}:{line}", name.display());
                        found.push(parse(place, &body));
                    }
                }
                _ => {}
            }
        }
    }
    found
}

fn parse(place: String, body: &str) -> Quiz {
    let mut quiz = Quiz {
        place,
        ..Quiz::default()
    };
    let mut lines = body.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("```rust") {
            let program: Vec<&str> = lines
                .by_ref()
                .take_while(|l| !l.starts_with("```"))
                .collect();
            quiz.program = Some(program.join("\n") + "\n");
        } else if let Some(option) = line.strip_prefix("+ ") {
            quiz.options.push((true, option.to_string()));
        } else if let Some(option) = line.strip_prefix("- ") {
            quiz.options.push((false, option.to_string()));
        } else if let Some((key, value)) = line.split_once(": ") {
            let value = value.to_string();
            match key {
                "kind" => quiz.kind = value,
                "question" => quiz.question = value,
                "error" => quiz.error = Some(value),
                "explain" => quiz.explain = value,
                _ => panic!("{}: unknown line `{line}`", quiz.place),
            }
        } else if !line.trim().is_empty() {
            panic!("{}: cannot read the line `{line}`", quiz.place);
        }
    }
    quiz
}

impl Quiz {
    fn right(&self) -> Vec<&str> {
        self.options
            .iter()
            .filter(|(right, _)| *right)
            .map(|(_, text)| text.as_str())
            .collect()
    }

    fn is_option(&self, text: &str) -> Option<bool> {
        self.options
            .iter()
            .find(|(_, option)| option == text)
            .map(|(right, _)| *right)
    }
}

/// Compiles a program with rustc; `Ok(binary)` or `Err(stderr)`.
fn compile(program: &str, dir: &Path) -> Result<PathBuf, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let source = dir.join("quiz.rs");
    fs::write(&source, program).unwrap();
    let output = Command::new(rustc)
        .args(["--edition", "2024", "--crate-type", "bin", "-o"])
        .arg(dir.join("quiz"))
        .arg(&source)
        .output()
        .expect("cannot run rustc");
    if output.status.success() {
        Ok(dir.join("quiz"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Compiles a question's program, which must compile.
fn build(quiz: &Quiz, dir: &Path) -> PathBuf {
    let program = quiz.program.as_deref().unwrap();
    compile(program, dir).unwrap_or_else(|error| {
        panic!("{}: the program does not compile:\n{error}", quiz.place)
    })
}

/// Runs a compiled program; its output, trimmed.
fn run(binary: &Path, place: &str) -> String {
    let limit = course::spawn::OutputLimit::kill_past(1 << 20);
    let timeout = Duration::from_secs(20);
    let ran = course::spawn::run(Command::new(binary), timeout, limit).unwrap();
    let Some(status) = ran.status() else {
        panic!("{place}: the program did not finish ({:?})", ran.ended)
    };
    assert!(status.success(), "{place}: the program failed: {status}");
    ran.stdout_text().trim().to_string()
}

#[test]
fn every_chapter_has_three_questions_of_a_known_shape() {
    let quizzes = quizzes();
    let mut per_chapter = std::collections::BTreeMap::new();
    for quiz in &quizzes {
        let chapter = quiz.place.split('/').nth(1).unwrap_or("").to_string();
        *per_chapter.entry(chapter).or_insert(0) += 1;
        let right = quiz.right().len();
        match quiz.kind.as_str() {
            "prints" | "compiles" | "concept" => assert_eq!(
                right, 1,
                "{}: a `{}` question has exactly one right option",
                quiz.place, quiz.kind
            ),
            "possible" => {
                assert!(right >= 1, "{}: nothing possible", quiz.place)
            }
            other => panic!("{}: unknown kind `{other}`", quiz.place),
        }
        assert!(
            quiz.options.len() >= 2,
            "{}: fewer than 2 options",
            quiz.place
        );
        assert!(!quiz.explain.is_empty(), "{}: no explanation", quiz.place);
        assert_eq!(
            quiz.program.is_none(),
            quiz.kind == "concept",
            "{}: only `concept` questions come without a program",
            quiz.place
        );
        if quiz.kind == "concept" {
            assert!(!quiz.question.is_empty(), "{}: no question", quiz.place);
        }
    }
    let chapters: Vec<_> = per_chapter.iter().collect();
    for chapter in [
        "01-threads",
        "02-processes",
        "03-gil",
        "04-reference-counting",
        "05-removing-the-gil",
        "06-fairness",
        "07-processes-instead-of-threads",
        "08-async",
        "09-python",
    ] {
        let count = per_chapter.get(chapter).copied().unwrap_or(0);
        assert!(
            count >= 3,
            "chapter {chapter} has {count} questions, 3 at least: {chapters:?}"
        );
    }
}

#[test]
fn prints_questions_name_the_real_output() {
    let scratch = tempfile::tempdir().unwrap();
    for quiz in quizzes().iter().filter(|q| q.kind == "prints") {
        let binary = build(quiz, scratch.path());
        let output = run(&binary, &quiz.place);
        assert_eq!(
            quiz.is_option(&output),
            Some(true),
            "{}: the program printed `{output}`, but the answer key says \
             {:?}",
            quiz.place,
            quiz.right()
        );
    }
}

#[test]
fn possible_questions_cover_every_observed_output() {
    let scratch = tempfile::tempdir().unwrap();
    for quiz in quizzes().iter().filter(|q| q.kind == "possible") {
        let binary = build(quiz, scratch.path());
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..RUNS {
            let output = run(&binary, &quiz.place);
            match quiz.is_option(&output) {
                Some(true) => {}
                Some(false) => panic!(
                    "{}: `{output}` happened, but the answer key marks it \
                     impossible",
                    quiz.place
                ),
                None => panic!(
                    "{}: `{output}` happened, and it is not an option",
                    quiz.place
                ),
            }
            seen.insert(output);
        }
        assert!(!seen.is_empty());
    }
}

#[test]
fn compiles_questions_agree_with_rustc() {
    let scratch = tempfile::tempdir().unwrap();
    for quiz in quizzes().iter().filter(|q| q.kind == "compiles") {
        let program = quiz.program.as_deref().unwrap();
        let options: Vec<&str> =
            quiz.options.iter().map(|(_, text)| text.as_str()).collect();
        assert_eq!(
            options,
            ["It compiles", "It does not compile"],
            "{}: the options of a `compiles` question are fixed",
            quiz.place
        );
        match (compile(program, scratch.path()), quiz.right()[0]) {
            (Ok(_), "It compiles") => {}
            (Err(stderr), "It does not compile") => {
                let code = quiz.error.as_deref().unwrap_or_else(|| {
                    panic!("{}: name the error (`error: E0000`)", quiz.place)
                });
                assert!(
                    stderr.contains(&format!("error[{code}]")),
                    "{}: expected {code}, rustc said:\n{stderr}",
                    quiz.place
                );
            }
            (Ok(_), _) => {
                panic!("{}: it compiles, the key says not", quiz.place)
            }
            (Err(stderr), _) => panic!(
                "{}: it does not compile, the key says it does:\n{stderr}",
                quiz.place
            ),
        }
    }
}

/// A wrong answer key must fail these tests: a key that swaps the right
/// and wrong options of a `prints` question is caught.
#[test]
fn a_wrong_answer_key_is_caught() {
    let quiz = parse(
        "example".into(),
        "kind: prints\n```rust\nfn main() { println!(\"{}\", 1 + 1); }\n```\n\
         + 3\n- 2\nexplain: arithmetic\n",
    );
    let scratch = tempfile::tempdir().unwrap();
    let binary = compile(quiz.program.as_deref().unwrap(), scratch.path())
        .expect("compiles");
    assert_eq!(quiz.is_option(&run(&binary, "example")), Some(false));
}
