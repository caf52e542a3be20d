//! The score table, the one renderer of it: the suite prints it after
//! `test result:` and `course grade` prints it with the chapters that did
//! not compile.

use std::fmt::Write as _;

use super::TrialId;

/// One trial's line in the sum.
#[derive(Debug, Clone, Copy)]
pub struct Scored<'a> {
    /// The trial.
    pub id: &'a TrialId,
    /// What it is worth.
    pub points: u32,
    /// Whether it passed.
    pub passed: bool,
}

/// A chapter that did not compile: no trial of it ran, and its recorded
/// points count as possible.
#[derive(Debug, Clone)]
pub struct Unbuilt<'a> {
    /// `ch03`.
    pub chapter: &'a str,
    /// The chapter's recorded points.
    pub points: u32,
    /// The first error's headline.
    pub headline: String,
}

/// Points earned, points possible, trials passed, trials: of one exercise.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    earned: u32,
    possible: u32,
    passed: u32,
    trials: u32,
}

/// A chapter's rows: a build error, or its exercises in suite order.
enum Rows<'a> {
    Unbuilt(&'a Unbuilt<'a>),
    Exercises(Vec<(&'a str, Tally)>),
}

/// The table: points per chapter (in chapter order) and exercise (in the
/// order the suite lists them), then one machine-readable `score:` line.
pub fn score_table(scores: &[Scored<'_>], unbuilt: &[Unbuilt<'_>]) -> String {
    let mut chapters: Vec<(&str, Rows<'_>)> = unbuilt
        .iter()
        .map(|u| (u.chapter, Rows::Unbuilt(u)))
        .collect();
    for scored in scores {
        let chapter = scored.id.chapter();
        let at = match chapters.iter().position(|(c, _)| *c == chapter) {
            Some(at) => at,
            None => {
                chapters.push((chapter, Rows::Exercises(Vec::new())));
                chapters.len() - 1
            }
        };
        let Rows::Exercises(exercises) = &mut chapters[at].1 else {
            continue;
        };
        let name = scored.id.exercise_name();
        if exercises.last().is_none_or(|(e, _)| *e != name) {
            exercises.push((name, Tally::default()));
        }
        if let Some((_, tally)) = exercises.last_mut() {
            tally.earned += if scored.passed { scored.points } else { 0 };
            tally.possible += scored.points;
            tally.passed += u32::from(scored.passed);
            tally.trials += 1;
        }
    }
    chapters.sort_by_key(|(chapter, _)| *chapter);
    let mut out = String::from("score by chapter and exercise\n");
    let (mut earned, mut possible) = (0, 0);
    for (chapter, rows) in &chapters {
        let (got, of) = render_chapter(&mut out, chapter, rows);
        earned += got;
        possible += of;
    }
    let percent = earned * 100 / possible.max(1);
    let _ = writeln!(out, "score: {earned}/{possible} points ({percent} %)");
    out
}

/// Writes one chapter's rows; its points earned and possible.
fn render_chapter(
    out: &mut String,
    chapter: &str,
    rows: &Rows<'_>,
) -> (u32, u32) {
    match rows {
        Rows::Unbuilt(unbuilt) => {
            let _ = writeln!(
                out,
                "  {chapter:<28}   0/{:<3} points  BUILD-ERROR: {}",
                unbuilt.points, unbuilt.headline
            );
            (0, unbuilt.points)
        }
        Rows::Exercises(exercises) => {
            let got: u32 = exercises.iter().map(|(_, t)| t.earned).sum();
            let of: u32 = exercises.iter().map(|(_, t)| t.possible).sum();
            let _ = writeln!(out, "  {chapter:<28} {got:>3}/{of:<3} points");
            for (exercise, tally) in exercises {
                let mark = if tally.earned == tally.possible {
                    "  done"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "    {exercise:<26} {:>3}/{:<3} points  \
                     ({} of {} tests passed){mark}",
                    tally.earned, tally.possible, tally.passed, tally.trials
                );
            }
            (got, of)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_points_per_exercise_and_chapter() {
        let ids: Vec<TrialId> =
            ["ch01::sum::a", "ch01::spawn::a", "ch01::spawn::b"]
                .iter()
                .map(|id| TrialId::parse(id).unwrap())
                .collect();
        let scored = [(3, true), (2, true), (1, false)];
        let scores: Vec<Scored<'_>> = ids
            .iter()
            .zip(scored)
            .map(|(id, (points, passed))| Scored { id, points, passed })
            .collect();
        let table = score_table(&scores, &[]);
        assert!(table.contains("(1 of 2 tests passed)"), "{table}");
        assert!(table.find("sum") < table.find("spawn"), "{table}");
        assert!(table.ends_with("score: 5/6 points (83 %)\n"), "{table}");
    }

    #[test]
    fn a_chapter_that_did_not_compile_counts_as_possible() {
        let id = TrialId::parse("ch02::pipe::a").unwrap();
        let scores = [Scored {
            id: &id,
            points: 2,
            passed: true,
        }];
        let unbuilt = [Unbuilt {
            chapter: "ch01",
            points: 8,
            headline: "error[E0308]: mismatched types at x.rs:1:1".into(),
        }];
        let table = score_table(&scores, &unbuilt);
        assert!(table.find("BUILD-ERROR") < table.find("ch02"), "{table}");
        assert!(table.ends_with("score: 2/10 points (20 %)\n"), "{table}");
    }
}
