//! The ledger's git merge driver (`xtask merge-driver %O %A %B %P`): `specs/state.json` and
//! `specs/TODO.md` merged three-way per task instead of as text ([`state`], [`todo`]), the
//! `.gitattributes` lines and the clone's `merge.postflight.*` config that make git call it
//! ([`setup`]), and `xtask task renumber`, which resolves two tasks created under one number
//! ([`renumber`]).
//!
//! A clean merge writes the result over `%A` and exits 0. A conflict (or a side that does not
//! parse) leaves in `%A` what git's own text merge would leave, conflict markers included
//! (`git merge-file`), and exits 1 with a report naming each task and field; git then marks the
//! path unmerged, exactly as for a conflict of its own.

pub mod renumber;
pub mod setup;
pub mod state;
pub mod todo;

use std::fmt;
use std::path::Path;

use crate::atomic;
use crate::error::{Error, Result};
use crate::git::cli;

/// One thing the driver could not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The task, when the conflict is inside one.
    pub task: Option<u32>,
    /// The field (a state.json key, or a TODO.md part).
    pub field: String,
    /// What each side did.
    pub detail: String,
}

impl Conflict {
    /// A conflict of `field` (of task `task`).
    pub fn new(task: Option<u32>, field: &str, detail: String) -> Conflict {
        Conflict { task, field: field.to_owned(), detail }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.task {
            Some(n) => write!(f, "task {n}: `{}`: {}", self.field, self.detail),
            None => write!(f, "`{}`: {}", self.field, self.detail),
        }
    }
}

/// A merge's result: the merged bytes, and what it could not decide (the bytes are then not a
/// resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The merged file.
    pub bytes: Vec<u8>,
    /// The conflicts, in the order found.
    pub conflicts: Vec<Conflict>,
}

/// Which merge a path gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `specs/state.json` (any `state.json`).
    State,
    /// `specs/TODO.md` (any `TODO.md`).
    Todo,
}

impl Kind {
    /// The merge for the path git passes as `%P`, by file name; `None` for any other file.
    pub fn of(path: &str) -> Option<Kind> {
        match Path::new(path).file_name()?.to_str()? {
            "state.json" => Some(Kind::State),
            "TODO.md" => Some(Kind::Todo),
            _ => None,
        }
    }
}

/// Merges the three versions of the file at `path` in memory.
///
/// # Errors
/// A side that does not parse (see [`state::merge`], [`todo::merge`]); a path that is not a
/// ledger file.
pub fn merge_bytes(path: &str, base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<Outcome> {
    match Kind::of(path) {
        Some(Kind::State) => state::merge(Path::new(path), base, ours, theirs),
        Some(Kind::Todo) => todo::merge(Path::new(path), base, ours, theirs),
        None => Err(Error::refused(
            format!("{path} is not a ledger file (state.json or TODO.md); the postflight driver merges only those"),
            Some("set `merge=postflight` only on specs/state.json and specs/TODO.md in .gitattributes"),
        )),
    }
}

/// What the driver did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverReport {
    /// The conflicts (empty: merged cleanly, `%A` holds the result).
    pub conflicts: Vec<Conflict>,
    /// Why the per-task merge could not run (a side that does not parse), when it could not.
    pub failure: Option<String>,
}

impl DriverReport {
    /// Whether `%A` holds a clean merge (exit 0).
    pub fn clean(&self) -> bool {
        self.conflicts.is_empty() && self.failure.is_none()
    }
}

/// The merge driver: reads `%O`, `%A`, `%B`, merges them as the ledger file `%P`, and writes
/// the result over `%A`. On a conflict `%A` gets the text merge with conflict markers that git
/// would have made without the driver.
///
/// # Errors
/// `%O`, `%A` or `%B` unreadable, `%A` not writable, git not runnable: nothing was written to
/// `%A` (it still holds ours, as git's binary merge leaves it).
///
/// # Writes
/// `%A`.
pub fn drive(base: &Path, ours: &Path, theirs: &Path, path: &str) -> Result<DriverReport> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io("read", p, e));
    let (o, a, b) = (read(base)?, read(ours)?, read(theirs)?);
    let (conflicts, failure) = match merge_bytes(path, &o, &a, &b) {
        Ok(outcome) if outcome.conflicts.is_empty() => {
            if outcome.bytes != a {
                atomic::write(ours, &outcome.bytes)?;
            }
            return Ok(DriverReport { conflicts: Vec::new(), failure: None });
        }
        Ok(outcome) => (outcome.conflicts, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let text = text_merge(base, ours, theirs, path)?;
    atomic::write(ours, &text)?;
    Ok(DriverReport { conflicts, failure })
}

/// `git merge-file -p` of the three versions, labelled as git labels them: the text merge, with
/// conflict markers where it conflicts.
fn text_merge(base: &Path, ours: &Path, theirs: &Path, path: &str) -> Result<Vec<u8>> {
    let label = |side: &str| format!("{side}:{path}");
    let (ours_label, base_label, theirs_label) = (label("ours"), label("base"), label("theirs"));
    let args = ["merge-file", "-p", "-L", &ours_label, "-L", &base_label, "-L", &theirs_label];
    // In the directory git runs the driver in, where the three paths it passes are.
    let git = cli::Git::new(Path::new("."), &args).arg(ours).arg(base).arg(theirs);
    // Exit codes: 0 clean, the number of conflicts (positive), negative on an error.
    let ok: Vec<i32> = (0..=127).collect();
    git.run(&ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_leaves_markers_in_ours_and_a_clean_merge_the_result() {
        let dir = tempfile::tempdir().expect("tmp");
        let w = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p
        };
        let entry = |status: &str| {
            format!("{{\"active_projects\": [{{\"project_number\": 1, \"status\": \"{status}\"}}], \"next_project_number\": 2}}")
        };
        let (o, a, b) = (w("o", &entry("planned")), w("a", &entry("completed")), w("b", &entry("blocked")));
        let report = drive(&o, &a, &b, "specs/state.json").expect("drive");
        assert!(!report.clean());
        assert_eq!(report.conflicts.len(), 1);
        let text = std::fs::read_to_string(&a).expect("read");
        assert!(
            text.contains("<<<<<<< ours:specs/state.json") && text.contains(">>>>>>> theirs:specs/state.json"),
            "{text}"
        );

        let (o, a, b) = (w("o", &entry("planned")), w("a", &entry("planned")), w("b", &entry("blocked")));
        let report = drive(&o, &a, &b, "specs/state.json").expect("drive");
        assert!(report.clean());
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&a).expect("read")).expect("json");
        assert_eq!(v["active_projects"][0]["status"], "blocked");

        let (o, a, b) = (w("o", "x\n"), w("a", "{not json"), w("b", "y\n"));
        let report = drive(&o, &a, &b, "specs/state.json").expect("drive");
        assert!(report.failure.is_some());
        assert!(Kind::of("specs/other.json").is_none());
    }
}
