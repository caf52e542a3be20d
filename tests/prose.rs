//! The shape of the book's prose, read from `chapters/` (no build needed):
//! headings that read as headings, and pages a reader can finish.

use std::fs;
use std::path::Path;
use std::sync::LazyLock;

mod pages;

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
use regex::Regex;

/// Whether `text` ends with the notes' ids in brackets: ` (T1)`,
/// ` (T3, T4)`.
fn ends_with_note_ids(text: &str) -> bool {
    let Some(inner) = text.trim_end().strip_suffix(')') else {
        return false;
    };
    let Some((_, ids)) = inner.rsplit_once('(') else {
        return false;
    };
    ids.split(", ").all(|id| {
        let mut chars = id.chars();
        chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && !chars.as_str().is_empty()
            && chars.all(|c| c.is_ascii_digit())
    })
}

/// The text of every heading of `markdown`, with its level.
fn headings(markdown: &str) -> Vec<(HeadingLevel, String)> {
    let mut found = Vec::new();
    let mut open: Option<(HeadingLevel, String)> = None;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                open = Some((level, String::new()))
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some((_, heading)) = &mut open {
                    heading.push_str(&text);
                }
            }
            Event::End(TagEnd::Heading(_)) => found.extend(open.take()),
            _ => {}
        }
    }
    found
}

/// A heading says what its section is about; which point of the notes it
/// covers is a marker under it ("From the notes: T1"), linked to the
/// appendix's row. Ids in headings crowd the sidebar and the anchors.
#[test]
fn headings_carry_no_note_ids() {
    let mut checked = 0;
    for page in pages::markdown_pages() {
        let markdown = fs::read_to_string(&page).unwrap();
        for (_, heading) in headings(&markdown) {
            assert!(
                !ends_with_note_ids(&heading),
                "{}: the heading {heading:?} ends with the notes' ids; put them in a \
                 marker under it: *From the notes: [T1](../appendix/from-the-notes.md#t1).*",
                page.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked > 100,
        "only {checked} headings found: is the parser wrong?"
    );
}

#[test]
fn the_note_id_check_sees_ids() {
    assert!(ends_with_note_ids("A stream of instructions (T1)"));
    assert!(ends_with_note_ids("One address space, one heap (T3, T4)"));
    assert!(!ends_with_note_ids("A stream of instructions"));
    assert!(!ends_with_note_ids("Tasks (and threads)"));
    assert!(!ends_with_note_ids("Send (T)"));
}

/// The words of a page as a reader meets them: its text, code and quiz
/// blocks included (an include's words are not counted).
fn words(markdown: &str) -> usize {
    Parser::new(markdown)
        .map(|event| match event {
            Event::Text(text) | Event::Code(text) => {
                text.split_whitespace().count()
            }
            _ => 0,
        })
        .sum()
}

/// A page a reader can finish in one sitting: about 2,000 words at most.
const MOST_WORDS: usize = 2_100;

#[test]
fn pages_fit_a_sitting() {
    let chapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("chapters");
    for page in pages::markdown_pages() {
        let name = page.strip_prefix(&chapters).unwrap().display().to_string();
        let count = words(&fs::read_to_string(&page).unwrap());
        assert!(
            count <= MOST_WORDS,
            "{name} has {count} words, more than {MOST_WORDS}: split it into \
             pages, as every chapter is"
        );
    }
}

/// The prose of a page, sentence by sentence: fenced code (programs,
/// quizzes, diagrams) left out, each sentence on one line.
fn sentences(markdown: &str) -> Vec<String> {
    let mut prose = String::new();
    let mut fence: Option<String> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        let ticks: String = trimmed.chars().take_while(|&c| c == '`').collect();
        match &fence {
            Some(open)
                if ticks.len() >= open.len() && trimmed.trim() == ticks =>
            {
                fence = None
            }
            Some(_) => {}
            None if ticks.len() >= 3 => fence = Some(ticks),
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    ENDS.split(&prose)
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// A number with a time or ratio unit, right after a verb that reports a
/// run; between the two only numbers, "to", "and", "about" and
/// punctuation.
static REPORTED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(took|gave|showed|printed|ended|measured|ran in)\s+(?:(?:about|to|and|from|between|[\d.,]+|[-–])\s*)*[\d.,]+\s?(?:µs|ns|ms|s|seconds?|×|%|times)(?:\W|$)",
    )
    .unwrap()
});

/// Words that name the machine or the runs a figure came from.
static RUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(machine that built|on my machine|on this machine|\bruns? out of\b|\bin \w+ runs\b|\bruns of\b)",
    )
    .unwrap()
});

static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d").unwrap());

/// Where sentences end.
static ENDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[.!?;:]\s+|\n\s*\n").unwrap());

/// Why `sentence` looks like a figure typed by hand from a run, if it
/// does: a time or a ratio right after a verb that reports a run ("took
/// 12 µs", "gave 0.3 ns", "ended 127,000 short"), or any number in a
/// sentence that names the machine or the runs it came from. A sentence
/// that includes the figure from `figures.md`, or cites a source (a link),
/// is not typed by hand.
fn hand_typed(sentence: &str) -> Option<&'static str> {
    if sentence.contains("{{#include") || sentence.contains("](") {
        return None;
    }
    let (reported, run, number) = (&*REPORTED, &*RUN, &*NUMBER);
    if reported.is_match(sentence) {
        Some("a figure reported from a run")
    } else if run.is_match(sentence) && number.is_match(sentence) {
        Some("a number from a named run")
    } else {
        None
    }
}

/// Every measured figure in the book comes from one run of `cargo course
/// bench --write` (included from `figures.md`) or from a cited source: a
/// figure typed by hand goes stale, and no reader can tell which run it
/// came from.
#[test]
fn no_figure_is_typed_by_hand() {
    let mut found = Vec::new();
    for page in pages::markdown_pages() {
        if page.ends_with("figures.md") || page.ends_with("measurements.md") {
            continue; // Written by `cargo course bench --write`.
        }
        let markdown = fs::read_to_string(&page).unwrap();
        for sentence in sentences(&markdown) {
            if let Some(why) = hand_typed(&sentence) {
                found.push(format!("{}: {why}: {sentence}", page.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "figures typed by hand (include them from figures.md, written by \
         `cargo course bench --write`, or cite their source):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_figure_check_sees_figures() {
    let typed = |s: &str| hand_typed(s).is_some();
    assert!(typed("a thread took 12 to 38 µs to start"));
    assert!(typed("three runs gave 0.3 ns for a plain increment"));
    assert!(typed(
        "On the machine that built this book it ended 127,000 short"
    ));
    assert!(typed(
        "the split version was 3,000 short in five runs out of five"
    ));
    assert!(!typed(
        "1× means the threads took turns, 0.5× that they ran at once"
    ));
    assert!(!typed("The program sleeps 1 ms twenty times"));
    assert!(!typed(
        "On the reference machine, {{#include figures.md:creation}}"
    ));
    assert!(!typed("a thread took 70 µs ([the bench](measurements.md))"));
    // The program's line is code, not prose.
    let page =
        "Text.\n\n```rust\nlet x = 1; // took 5 ms\n```\n\nEnd took 5 ms.\n";
    let found: Vec<String> = sentences(page)
        .into_iter()
        .filter(|s| s.contains("took"))
        .collect();
    assert_eq!(found, ["End took 5 ms"]);
}

/// Every chapter shows at least one picture: a mermaid diagram, or a
/// timeline or chart from `cargo course bench`.
#[test]
fn every_chapter_has_a_diagram() {
    let chapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("chapters");
    let mut checked = 0;
    for entry in fs::read_dir(&chapters).unwrap() {
        let folder = entry.unwrap().path();
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        if !folder.is_dir() || !name.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let pictured = pages::markdown_pages()
            .iter()
            .filter(|p| p.starts_with(&folder))
            .any(|page| {
                let text = fs::read_to_string(page).unwrap();
                text.contains("```mermaid")
                    || text.contains("figures.md:timeline_")
            });
        assert!(
            pictured,
            "chapter {name} has no diagram: add a ```mermaid block"
        );
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} chapters found");
}
