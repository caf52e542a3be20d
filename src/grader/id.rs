//! Trial ids, `chapter::exercise::behaviour`, parsed in one place.

use std::fmt;

/// A trial's id: `ch01::spawn_all::returns_results_in_input_order`. The
/// chapter and exercise parts name what the score table sums. An exercise
/// checked by one trial may have a two-part id, `chapter::exercise`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrialId {
    text: String,
    /// Where the exercise part ends (the second `::`).
    exercise_end: usize,
}

impl TrialId {
    /// Parses `chapter::exercise::behaviour` (or `chapter::exercise`);
    /// each part non-empty.
    pub fn parse(text: &str) -> Result<TrialId, String> {
        let parts: Vec<&str> = text.split("::").collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty())
        {
            return Err(format!(
                "{text:?} is not a trial id (chapter::exercise::behaviour)"
            ));
        }
        Ok(TrialId {
            text: text.to_string(),
            exercise_end: parts[0].len() + 2 + parts[1].len(),
        })
    }

    /// The whole id.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `ch01`.
    pub fn chapter(&self) -> &str {
        self.text.split("::").next().unwrap_or_default()
    }

    /// `ch01::spawn_all`: what a hint, a Classroom step and a selection
    /// name.
    pub fn exercise(&self) -> &str {
        &self.text[..self.exercise_end]
    }

    /// `spawn_all`.
    pub fn exercise_name(&self) -> &str {
        self.exercise().rsplit("::").next().unwrap_or_default()
    }
}

impl PartialEq<str> for TrialId {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for TrialId {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl fmt::Display for TrialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_has_three_parts() {
        let id = TrialId::parse("ch01::spawn_all::keeps_order").unwrap();
        assert_eq!(id.chapter(), "ch01");
        assert_eq!(id.exercise(), "ch01::spawn_all");
        assert_eq!(id.exercise_name(), "spawn_all");
        assert_eq!(id.to_string(), "ch01::spawn_all::keeps_order");
        let whole = TrialId::parse("faults::passes").unwrap();
        assert_eq!(whole.exercise(), "faults::passes");
        assert_eq!(whole.exercise_name(), "passes");
        for wrong in ["ch01", "ch01::", "ch01::::x", "a::b::c::d"] {
            assert!(TrialId::parse(wrong).is_err(), "{wrong}");
        }
    }
}
