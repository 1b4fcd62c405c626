//! The task lifecycle: status words as state.json spells them, the bracket markers TODO.md and
//! plan headers use (reference §3.4), the allowed transitions (§9) and which timestamp each
//! status stamps. Unknown words are kept as they are, never rewritten.

use std::fmt;

/// A task status. Known words map to variants; anything else is kept verbatim in `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Status {
    /// `not_started` / `[NOT STARTED]`
    NotStarted,
    /// `researching`
    Researching,
    /// `researched`
    Researched,
    /// `planning`
    Planning,
    /// `planned`
    Planned,
    /// `revising`
    Revising,
    /// `revised`
    Revised,
    /// `implementing`
    Implementing,
    /// `partial`
    Partial,
    /// `completed`
    Completed,
    /// `blocked`
    Blocked,
    /// `abandoned`
    Abandoned,
    /// `expanded` (split into subtasks)
    Expanded,
    /// `implemented`: the agent's return word that leaked into ledgers; read, never written.
    Implemented,
    /// Any other word, kept exactly as found.
    Other(String),
}

impl Status {
    /// The statuses the tool writes, in lifecycle order.
    pub const KNOWN: [Status; 13] = [
        Status::NotStarted,
        Status::Researching,
        Status::Researched,
        Status::Planning,
        Status::Planned,
        Status::Revising,
        Status::Revised,
        Status::Implementing,
        Status::Partial,
        Status::Completed,
        Status::Blocked,
        Status::Abandoned,
        Status::Expanded,
    ];

    /// Reads a state.json status word (`not_started`); unknown words become `Other`.
    pub fn from_state(word: &str) -> Status {
        match word {
            "not_started" => Status::NotStarted,
            "researching" => Status::Researching,
            "researched" => Status::Researched,
            "planning" => Status::Planning,
            "planned" => Status::Planned,
            "revising" => Status::Revising,
            "revised" => Status::Revised,
            "implementing" => Status::Implementing,
            "partial" => Status::Partial,
            "completed" => Status::Completed,
            "blocked" => Status::Blocked,
            "abandoned" => Status::Abandoned,
            "expanded" => Status::Expanded,
            "implemented" => Status::Implemented,
            other => Status::Other(other.to_owned()),
        }
    }

    /// Reads a bracket marker's content (`NOT STARTED`, `COMPLETE`, `In Progress`): strip, lowercase,
    /// spaces to underscores (reference §3.4), with the legacy `COMPLETE` read as completed.
    pub fn from_marker(marker: &str) -> Status {
        let word = marker.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        match word.as_str() {
            "complete" => Status::Completed,
            _ => Status::from_state(&word),
        }
    }

    /// Parses a status typed by a user: a state word or a marker, case-insensitive.
    ///
    /// # Errors
    /// `UnknownStatus` with the closest known word.
    pub fn parse_user(input: &str) -> crate::Result<Status> {
        let word =
            input.trim().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase().replace([' ', '-'], "_");
        match Status::from_state(&word) {
            Status::Other(_) | Status::Implemented => Err(crate::Error::UnknownStatus {
                given: input.to_owned(),
                suggestion: closest(&word),
                known: Status::KNOWN.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            }),
            s => Ok(s),
        }
    }

    /// The state.json word.
    pub fn as_str(&self) -> &str {
        match self {
            Status::NotStarted => "not_started",
            Status::Researching => "researching",
            Status::Researched => "researched",
            Status::Planning => "planning",
            Status::Planned => "planned",
            Status::Revising => "revising",
            Status::Revised => "revised",
            Status::Implementing => "implementing",
            Status::Partial => "partial",
            Status::Completed => "completed",
            Status::Blocked => "blocked",
            Status::Abandoned => "abandoned",
            Status::Expanded => "expanded",
            Status::Implemented => "implemented",
            Status::Other(s) => s,
        }
    }

    /// The bracket marker content for TODO.md and plan headers (`NOT STARTED`).
    pub fn marker(&self) -> String {
        self.as_str().to_ascii_uppercase().replace('_', " ")
    }

    /// Whether the lifecycle lets a task move from `self` to `to` (reference §9).
    ///
    /// Forbidden: anything out of `completed`, `implemented` or `expanded` (terminal);
    /// `not_started -> completed | abandoned`; `abandoned` to anything but `not_started`; and any
    /// move to a word the tool does not write. Staying put is always allowed. A task whose
    /// current word is unknown may move anywhere known.
    pub fn can_move_to(&self, to: &Status) -> bool {
        if self == to {
            return true;
        }
        if matches!(to, Status::Other(_) | Status::Implemented) {
            return false;
        }
        match self {
            Status::Completed | Status::Implemented | Status::Expanded => false,
            Status::NotStarted => !matches!(to, Status::Completed | Status::Abandoned),
            Status::Abandoned => matches!(to, Status::NotStarted),
            _ => true,
        }
    }

    /// The entry field stamped with the time when a task enters this status.
    pub fn timestamp_field(&self) -> Option<&'static str> {
        match self {
            Status::Researched => Some("researched"),
            Status::Planned => Some("planned"),
            Status::Implementing => Some("started"),
            Status::Completed => Some("completed"),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn closest(word: &str) -> Option<String> {
    Status::KNOWN
        .iter()
        .map(|s| (edit_distance(word, s.as_str()), s.as_str()))
        .filter(|(d, s)| *d <= 3.max(s.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, s)| s.to_owned())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_legacy_words_are_read() {
        for s in Status::KNOWN {
            assert_eq!(Status::from_marker(&s.marker()), s);
            assert_eq!(Status::from_state(s.as_str()), s);
        }
        assert_eq!(Status::from_marker("COMPLETE"), Status::Completed);
        assert_eq!(Status::from_marker("IN PROGRESS"), Status::Other("in_progress".into()));
        assert_eq!(Status::from_state("weird"), Status::Other("weird".into()));
    }

    #[test]
    fn user_input_typos_get_a_suggestion() {
        assert_eq!(Status::parse_user("[PLANNED]").expect("ok"), Status::Planned);
        assert_eq!(Status::parse_user("Not Started").expect("ok"), Status::NotStarted);
        match Status::parse_user("implmenting") {
            Err(crate::Error::UnknownStatus { suggestion, .. }) => {
                assert_eq!(suggestion.as_deref(), Some("implementing"))
            }
            other => panic!("{other:?}"),
        }
        assert!(Status::parse_user("implemented").is_err());
    }

    #[test]
    fn transitions_follow_the_reference() {
        assert!(!Status::Completed.can_move_to(&Status::Implementing));
        assert!(!Status::NotStarted.can_move_to(&Status::Completed));
        assert!(!Status::NotStarted.can_move_to(&Status::Abandoned));
        assert!(!Status::Abandoned.can_move_to(&Status::Completed));
        assert!(Status::Abandoned.can_move_to(&Status::NotStarted));
        assert!(Status::Planned.can_move_to(&Status::Implementing));
        assert!(Status::Partial.can_move_to(&Status::Completed));
        assert!(Status::Other("ready".into()).can_move_to(&Status::Planned));
        assert!(Status::Completed.can_move_to(&Status::Completed));
    }
}
