//! The id of one task in any ledger format: a number of `specs/state.json` (`350`), a numbered
//! task of a spec directory's `tasks.md` (`1`, `2.1`, `T012`), a phase (`3`), or an item of a
//! `handoff/payload.json` (`task-3`). Compared and hashed as text; a ledger that numbers its tasks
//! reads the number back with [`TaskId::number`].

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The longest id accepted (a commit trailer carries it).
pub const MAX_LEN: usize = 64;

/// A task's id: non-empty, at most [`MAX_LEN`] bytes of ASCII letters, digits and `.`, `-`, `_`
/// (so it fits a commit subject, a trailer, a branch name and a file name unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(String);

/// `s` as an error message quotes a would-be id: on one line, at most 60 characters (the rest
/// counted), so a 20,000-character id in a file does not flood the terminal.
pub fn shown(s: &str) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let n = flat.chars().count();
    if n <= 60 {
        return flat;
    }
    let head: String = flat.chars().take(50).collect();
    format!("{head}... ({n} characters)")
}

impl TaskId {
    /// The id `s`, checked.
    ///
    /// # Errors
    /// A refusal naming the id when it is empty, too long, or holds another character.
    pub fn new(s: &str) -> Result<TaskId> {
        let ok = !s.is_empty()
            && s.len() <= MAX_LEN
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !s.starts_with(['.', '-'])
            && !s.ends_with('.');
        if ok {
            Ok(TaskId(s.to_owned()))
        } else {
            let long = if s.len() > MAX_LEN { format!(" (longer than {MAX_LEN} bytes)") } else { String::new() };
            Err(Error::refused(
                format!("`{}` is not a task id{long}", shown(s)),
                Some("a task id is a number (`350`), a numbered task (`2.1`, `T012`) or a name like `task-3`: letters, digits, `.`, `-`, `_`"),
            ))
        }
    }

    /// The id of task number `n` of `specs/state.json`.
    pub fn from_number(n: u32) -> TaskId {
        TaskId(n.to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The task number, when the id is a plain decimal number without leading zeros.
    pub fn number(&self) -> Option<u32> {
        if self.0.len() > 1 && self.0.starts_with('0') {
            return None;
        }
        self.0.bytes().all(|b| b.is_ascii_digit()).then(|| self.0.parse().ok()).flatten()
    }

    /// The number (see [`TaskId::number`]), or a refusal saying that `what` numbers its tasks.
    ///
    /// # Errors
    /// The id is not a task number.
    pub fn require_number(&self, what: &str) -> Result<u32> {
        self.number().ok_or_else(|| {
            Error::refused(format!("`{self}` is not a task number, and {what} numbers its tasks"), None::<&str>)
        })
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TaskId {
    type Err = Error;
    fn from_str(s: &str) -> Result<TaskId> {
        TaskId::new(s)
    }
}

impl From<u32> for TaskId {
    fn from(n: u32) -> TaskId {
        TaskId::from_number(n)
    }
}

impl AsRef<str> for TaskId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_ids_of_every_format() {
        for s in ["350", "1", "2.1", "1.2.3", "T012", "task-3", "US1_a", "0"] {
            assert_eq!(TaskId::new(s).expect(s).as_str(), s);
        }
    }

    #[test]
    fn refuses_what_does_not_fit_a_trailer_or_a_file_name() {
        let long = "x".repeat(MAX_LEN + 1);
        for s in ["", " 1", "1 ", "a/b", "..", ".1", "-1", "1.", "t\n", "ü", long.as_str()] {
            assert!(TaskId::new(s).is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn numbers_only_for_plain_decimals() {
        assert_eq!(TaskId::new("350").expect("id").number(), Some(350));
        assert_eq!(TaskId::from(7).as_str(), "7");
        for s in ["2.1", "T012", "007", "99999999999"] {
            assert_eq!(TaskId::new(s).expect("id").number(), None, "{s}");
        }
        assert_eq!(TaskId::new("0").expect("id").number(), Some(0));
        assert!(TaskId::new("T1").expect("id").require_number("state.json").is_err());
    }

    #[test]
    fn a_huge_would_be_id_is_shown_cut_and_counted() {
        let huge = "9".repeat(20_000);
        assert_eq!(shown(&huge), format!("{}... (20000 characters)", "9".repeat(50)));
        assert_eq!(shown("a\nb"), "a b");
        let err = TaskId::new(&huge).expect_err("too long").to_string();
        assert!(err.len() < 200 && err.contains("(longer than 64 bytes)"), "{err}");
    }
}
