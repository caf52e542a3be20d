//! The shape of the book's prose, read from `chapters/` (no build needed):
//! headings that read as headings, and pages a reader can finish.

use std::fs;
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

/// Every markdown page under `chapters/`, sorted.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("chapters"),
        &mut found,
    );
    found.sort();
    found
}

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
    for page in pages() {
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

/// Pages still longer than that, each to be split into pages of its own
/// as chapters 1, 8 and 9 are (issue 17). The list may only shrink: a page
/// on it that fits fails this test until it is taken off.
const STILL_TOO_LONG: &[&str] = &[
    "02-processes/processes.md",
    "03-gil/gil.md",
    "04-reference-counting/reference-counting.md",
    "05-removing-the-gil/removing-the-gil.md",
    "06-fairness/fairness.md",
    "07-processes-instead-of-threads/processes-instead-of-threads.md",
    "08-async/async.md",
];

#[test]
fn pages_fit_a_sitting() {
    let chapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("chapters");
    for page in pages() {
        let name = page
            .strip_prefix(&chapters)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let count = words(&fs::read_to_string(&page).unwrap());
        let listed = STILL_TOO_LONG.contains(&name.as_str());
        assert!(
            count <= MOST_WORDS || listed,
            "{name} has {count} words, more than {MOST_WORDS}: split it into pages, \
             as chapters 1, 8 and 9 are"
        );
        assert!(
            count > MOST_WORDS || !listed,
            "{name} has {count} words and fits now: take it off STILL_TOO_LONG"
        );
    }
}
