//! What `xtask check` reports: findings, their severity and the report (owned here so that
//! the check and its result cache both read them without importing each other).

use serde::{Deserialize, Serialize};

/// How serious a finding is: errors fail the check (exit 1), warnings are only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The files disagree or are broken.
    Error,
    /// Worth knowing, not worth failing a commit for.
    Warning,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule's stable id (see [`RULES`](super::check::RULES)).
    pub rule: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// The file at fault, repository-relative.
    pub file: String,
    /// The 1-based line, when one line is at fault.
    pub line: Option<usize>,
    /// The task concerned, if any.
    pub task: Option<u32>,
    /// What is wrong, in words.
    pub message: String,
    /// Whether `xtask check --fix` repairs it.
    pub fixable: bool,
}

impl Finding {
    /// `file:line` (or just `file`).
    pub fn location(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.file),
            None => self.file.clone(),
        }
    }
}

/// The result of a check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Every finding, ordered by file and line.
    pub findings: Vec<Finding>,
    /// True when an input could not be read at all (exit 2); the other rules did not run.
    pub unreadable: bool,
}

impl Report {
    /// How many errors.
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Error).count()
    }

    /// How many warnings.
    pub fn warnings(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Warning).count()
    }

    /// How many findings `--fix` would repair.
    pub fn fixable(&self) -> usize {
        self.findings.iter().filter(|f| f.fixable).count()
    }

    pub(crate) fn push(&mut self, f: Finding) {
        self.findings.push(f);
    }
}
