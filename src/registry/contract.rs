//! Each exercise's written contract: the promises its stub's doc makes,
//! each naming the trials that check it.
//!
//! A promise is a bullet of a `# Graded promises` section in an item's
//! `///` doc, ending with the trials that check it:
//!
//! ```text
//! /// # Graded promises
//! ///
//! /// - The shares add up to `count`, for any `count`.
//! ///   Trial: `ch07::countdown::split_is_balanced`.
//! ```
//!
//! [`gaps`] holds a chapter to it: every trial is named by a promise, every
//! name is a trial, and the solution states the stub's promises word for
//! word. `course hint --spec` prints them.

use std::fs;
use std::path::Path;

use super::{Chapter, quoted_trial_ids};

/// The heading that opens the promises of an item's doc.
pub const HEADING: &str = "# Graded promises";

/// One promise: its sentence, and the ids of the trials that check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promise {
    /// The promise in the doc's words, on one line.
    pub text: String,
    /// `ch07::countdown::split_is_balanced`, ...
    pub trials: Vec<String>,
}

/// The promises of a stub's or a solution's text, in order. A bullet that
/// names no trial is an error naming the bullet.
pub fn promises(text: &str) -> Result<Vec<Promise>, String> {
    let mut found = Vec::new();
    let mut inside = false;
    let mut bullet: Option<String> = None;
    let mut finish = |bullet: &mut Option<String>| -> Result<(), String> {
        if let Some(text) = bullet.take() {
            found.push(parse_bullet(&text)?);
        }
        Ok(())
    };
    for line in text.lines() {
        let Some(doc) = line.trim_start().strip_prefix("///") else {
            // The doc comment ended: so did its section.
            finish(&mut bullet)?;
            inside = false;
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        if doc.starts_with('#') {
            finish(&mut bullet)?;
            inside = doc.trim_end() == HEADING;
        } else if !inside {
        } else if let Some(start) = doc.strip_prefix("- ") {
            finish(&mut bullet)?;
            bullet = Some(start.trim().to_string());
        } else if doc.trim().is_empty() {
            finish(&mut bullet)?;
        } else if let Some(open) = bullet.as_mut() {
            open.push(' ');
            open.push_str(doc.trim());
        } else {
            // A paragraph of the section that is not a promise ends it.
            inside = false;
        }
    }
    finish(&mut bullet)?;
    Ok(found)
}

/// Splits `… Trial: `id`.` (or `Trials: `a`, `b`.`) off a bullet.
fn parse_bullet(bullet: &str) -> Result<Promise, String> {
    let at = ["Trials: ", "Trial: "]
        .iter()
        .filter_map(|key| bullet.rfind(key).map(|at| (at, key.len())))
        .max();
    let Some((at, key)) = at else {
        return Err(format!(
            "the promise \"{bullet}\" names no trial (end it with \
             Trial: `chNN::exercise::behaviour`.)"
        ));
    };
    let trials: Vec<String> = bullet[at + key..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    if trials.is_empty() {
        return Err(format!("the promise \"{bullet}\" names no trial"));
    }
    Ok(Promise {
        text: bullet[..at].trim().to_string(),
        trials,
    })
}

/// The promise (or promises, joined) that trial `id` checks, as the stubs
/// of its chapter state it; `None` when no stub names it.
pub fn promise_of(root: &Path, id: &str) -> Option<String> {
    let chapter = id.split("::").next()?;
    let found: Vec<String> = super::chapters(root)
        .into_iter()
        .filter(|c| c.id == chapter)
        .flat_map(|c| c.modules)
        .filter_map(|m| {
            fs::read_to_string(root.join(format!("exercises/src/{m}.rs"))).ok()
        })
        .filter_map(|text| promises(&text).ok())
        .flatten()
        .filter(|p| p.trials.iter().any(|t| t == id))
        .map(|p| p.text)
        .collect();
    (!found.is_empty()).then(|| found.join(" "))
}

/// Where `chapter`'s contract and its trials disagree, one sentence each.
pub fn gaps(root: &Path, chapter: &Chapter) -> Vec<String> {
    let id = &chapter.id;
    let read = |file: &str| fs::read_to_string(root.join(file));
    let loom = read("exercises/tests/loom.rs").unwrap_or_default();
    let loom_ids = quoted_trial_ids(&loom, id);
    let mut gaps = Vec::new();
    for module in &chapter.modules {
        let stub_file = format!("exercises/src/{module}.rs");
        let solution_file = format!("solutions/src/{module}.rs");
        let suite = read(&format!("exercises/tests/graded/{module}.rs"))
            .unwrap_or_default();
        let mut trials = quoted_trial_ids(&suite, id);
        // A loom trial belongs to the module whose suite grades its
        // exercise.
        let exercises: Vec<&str> = trials
            .iter()
            .filter_map(|t| t.rsplit_once("::"))
            .map(|p| p.0)
            .collect();
        trials.extend(loom_ids.iter().filter(|t| {
            t.rsplit_once("::")
                .is_some_and(|(e, _)| exercises.contains(&e))
        }));
        let (Ok(stub), Ok(solution)) = (read(&stub_file), read(&solution_file))
        else {
            continue; // `missing_code` names the missing file.
        };
        let stated = match promises(&stub) {
            Ok(stated) => stated,
            Err(why) => {
                gaps.push(format!("{id}: {stub_file}: {why}"));
                continue;
            }
        };
        for trial in &trials {
            if !stated.iter().any(|p| p.trials.iter().any(|t| t == trial)) {
                gaps.push(format!(
                    "{id}: trial `{trial}` is named by no promise of \
                     {stub_file} (a bullet of a `{HEADING}` section ending \
                     with Trial: `{trial}`.)"
                ));
            }
        }
        for promise in &stated {
            for named in &promise.trials {
                if !trials.iter().any(|t| t == named) {
                    gaps.push(format!(
                        "{id}: {stub_file} names `{named}`, which is no trial \
                         of exercises/tests/graded/{module}.rs or the loom suite"
                    ));
                }
            }
        }
        match promises(&solution) {
            Ok(restated) if restated == stated => {}
            Ok(_) => gaps.push(format!(
                "{id}: {solution_file} does not state the promises of \
                 {stub_file} word for word"
            )),
            Err(why) => gaps.push(format!("{id}: {solution_file}: {why}")),
        }
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bullets_of_the_section_become_promises() {
        let text = "/// Splits.\n///\n/// # Graded promises\n///\n\
                    /// - Adds up to `count`,\n///   for any count.\n\
                    ///   Trial: `ch07::countdown::adds_up`.\n\
                    /// - Balanced. Trials: `ch07::countdown::a`, `ch07::countdown::b`.\n\
                    ///\n/// # Panics\n///\n/// - Not a promise.\npub fn split() {}\n";
        let found = promises(text).unwrap();
        assert_eq!(
            found,
            [
                Promise {
                    text: "Adds up to `count`, for any count.".into(),
                    trials: vec!["ch07::countdown::adds_up".into()],
                },
                Promise {
                    text: "Balanced.".into(),
                    trials: vec![
                        "ch07::countdown::a".into(),
                        "ch07::countdown::b".into()
                    ],
                },
            ]
        );
    }

    #[test]
    fn a_promise_without_a_trial_is_an_error() {
        let text = "/// # Graded promises\n///\n/// - Adds up.\nfn f() {}\n";
        let why = promises(text).unwrap_err();
        assert!(why.contains("\"Adds up.\" names no trial"), "{why}");
    }
}
