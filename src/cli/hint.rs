//! `course hint <exercise>`: the hints of `exercises/hints/chNN.md`, one
//! more each time it is asked, like a teaching assistant who does not give
//! the answer away at once.
//!
//! A hints file has a `## exercise` section per exercise, whose hints are a
//! numbered list (`1. `, `2. `, ...; an item may span lines). How many
//! hints each exercise has shown is kept in `target/course-hints.txt`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// One exercise's hints, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hints {
    /// `ch01::spawn_all`.
    pub exercise: String,
    /// The hints, gentle first.
    pub hints: Vec<String>,
}

/// Reads the hints of one chapter's file.
pub fn parse(chapter: &str, text: &str) -> Vec<Hints> {
    let mut all: Vec<Hints> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("## ") {
            all.push(Hints {
                exercise: format!("{chapter}::{}", name.trim()),
                hints: Vec::new(),
            });
            continue;
        }
        let Some(current) = all.last_mut() else {
            continue;
        };
        let number = line
            .split_once(". ")
            .and_then(|(n, rest)| n.parse::<usize>().ok().map(|_| rest));
        match number {
            Some(first) => current.hints.push(first.to_string()),
            None => {
                if let Some(hint) = current.hints.last_mut() {
                    hint.push('\n');
                    hint.push_str(line);
                }
            }
        }
    }
    for exercise in &mut all {
        for hint in &mut exercise.hints {
            *hint = hint.trim_end().to_string();
        }
    }
    all
}

/// Every exercise's hints, from every chapter's file.
pub fn all(root: &Path) -> Vec<Hints> {
    crate::registry::chapter_ids(root)
        .iter()
        .flat_map(|chapter| {
            let file = root.join(format!("exercises/hints/{chapter}.md"));
            let text = fs::read_to_string(file).unwrap_or_default();
            parse(chapter, &text)
        })
        .collect()
}

fn state_file(root: &Path) -> PathBuf {
    root.join("target/course-hints.txt")
}

/// How many hints each exercise has shown so far.
pub fn shown(root: &Path) -> BTreeMap<String, usize> {
    read_state(root)
}

fn read_state(root: &Path) -> BTreeMap<String, usize> {
    fs::read_to_string(state_file(root))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (exercise, shown) = line.split_once(' ')?;
            Some((exercise.to_string(), shown.parse().ok()?))
        })
        .collect()
}

fn write_state(root: &Path, state: &BTreeMap<String, usize>) {
    let text: String = state
        .iter()
        .map(|(exercise, shown)| format!("{exercise} {shown}\n"))
        .collect();
    let file = state_file(root);
    if let Some(dir) = file.parent() {
        let _ = fs::create_dir_all(dir);
    }
    // Losing the count only means a hint is shown again.
    let _ = fs::write(file, text);
}

/// What to show for `course hint <wanted>`: the hints so far plus the next
/// one (all of them with `every`), and remember it. `wanted` is
/// `ch01::spawn_all` or, when unambiguous, `spawn_all`.
pub fn reveal(
    root: &Path,
    wanted: &str,
    every: bool,
    reset: bool,
) -> Result<String, String> {
    let all = all(root);
    let hints = find(&all, wanted)?;
    let mut state = read_state(root);
    if reset {
        state.remove(&hints.exercise);
        write_state(root, &state);
        return Ok(format!("{}: hints hidden again", hints.exercise));
    }
    let total = hints.hints.len();
    let before = state.get(&hints.exercise).copied().unwrap_or(0);
    let shown = if every {
        total
    } else {
        (before + 1).min(total)
    };
    state.insert(hints.exercise.clone(), shown);
    write_state(root, &state);
    let mut out =
        format!("hints for {} ({shown} of {total})\n", hints.exercise);
    for (number, hint) in hints.hints.iter().take(shown).enumerate() {
        out.push_str(&format!("\n{}. {hint}\n", number + 1));
    }
    out.push('\n');
    if shown < total {
        out.push_str("Run the command again for the next hint.\n");
    } else {
        out.push_str(
            "That was the last hint; the solution is in solutions/src.\n",
        );
    }
    Ok(out)
}

/// `course hint --spec`: the promises of the exercise `wanted` names, as
/// its stub's docs state them, each with the trials that check it.
pub fn spec(root: &Path, wanted: &str) -> Result<String, String> {
    use crate::registry::{chapters, contract};
    let exercise = exercise(root, wanted)?;
    let chapter = exercise.split("::").next().unwrap_or_default();
    let prefix = format!("{exercise}::");
    let mut out = format!("The graded promises of {exercise}:\n");
    let modules = chapters(root)
        .into_iter()
        .filter(|c| c.id == chapter)
        .flat_map(|c| c.modules);
    for module in modules {
        let file = format!("exercises/src/{module}.rs");
        let text = std::fs::read_to_string(root.join(&file))
            .map_err(|e| format!("cannot read {file}: {e}"))?;
        let promises = contract::promises(&text)?;
        for promise in promises
            .iter()
            .filter(|p| p.trials.iter().any(|t| t.starts_with(&prefix)))
        {
            out.push_str(&format!("\n- {}\n", promise.text));
            for trial in &promise.trials {
                out.push_str(&format!("  checked by {trial}\n"));
            }
        }
    }
    out.push_str(
        "\nEach trial is one line of `cargo course grade`; the stub's doc \
         says the same under \"Graded promises\".\n",
    );
    Ok(out)
}

/// The exercise `wanted` names (`ch01::spawn_all`, `spawn_all` when
/// unambiguous, or a whole trial id as the grade report prints it), as its
/// hints know it.
pub fn exercise(root: &Path, wanted: &str) -> Result<String, String> {
    find(&all(root), wanted).map(|hints| hints.exercise.clone())
}

fn find<'a>(all: &'a [Hints], wanted: &str) -> Result<&'a Hints, String> {
    // A whole trial id, as the grade report prints it, names its exercise.
    let id = crate::grader::TrialId::parse(wanted);
    let wanted = id.as_ref().map_or(wanted, |id| id.exercise());
    let matches: Vec<&Hints> = all
        .iter()
        .filter(|h| {
            h.exercise == wanted || h.exercise.ends_with(&format!("::{wanted}"))
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => {
            let names: Vec<&str> =
                all.iter().map(|h| h.exercise.as_str()).collect();
            Err(format!(
                "no exercise {wanted:?}; the exercises are:\n  {}",
                names.join("\n  ")
            ))
        }
        several => {
            let names: Vec<&str> =
                several.iter().map(|h| h.exercise.as_str()).collect();
            Err(format!(
                "{wanted:?} is in more than one chapter: {}",
                names.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_numbered_items_become_hints() {
        let text = "# Hints\n\n## spawn_all\n\n1. First,\n   on two lines.\n\n\
                    2. Second.\n\n## parallel_sum\n\n1. Only one.\n";
        let hints = parse("ch01", text);
        assert_eq!(hints.len(), 2);
        assert_eq!(hints[0].exercise, "ch01::spawn_all");
        assert_eq!(hints[0].hints, ["First,\n   on two lines.", "Second."]);
        assert_eq!(hints[1].hints, ["Only one."]);
    }
}
