//! Plan files (reference §4) under either naming convention, `specs/{N}_{slug}/plans/implementation-{NNN}.md`
//! (the documented era) or `plans/{NN}_{slug}.md` (the real repository's later convention):
//! choosing the newest ([`latest_plan_name`], the one place that choice is made), the header
//! `**Status**:` line (only the header's, never a phase's; a `## Metadata` section belongs to
//! the header), and the phase headings keyed by id and position, from which the resume point
//! follows.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex_bites::Regex;

use super::status::Status;
use super::text::TextDoc;
use crate::error::{Error, Result};

static HEADER_STATUS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\s*-? ?\*\*Status\*\*:[ \t]*)\[([^\]]*)\](.*)$").expect("valid regex"));
static PHASE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(#{2,4}) Phase ([0-9]+(?:\.[0-9]+)?[A-Za-z]?|[A-Z][0-9]*)(?:-[0-9]+)?:\s*(.*)$").expect("valid regex")
});
static PLAN_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^implementation-([0-9]+)(.*)\.md$").expect("valid regex"));
static NUMBERED_PLAN_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]+)_([^/]+)\.md$").expect("valid regex"));

/// How a plan file name sorts: version number first (`NNN` of `implementation-NNN.md`, `NN`
/// of `NN_slug.md`); at one version the later `NN_slug.md` convention before `implementation-`,
/// then a plain `implementation-NNN.md` before a suffixed one (`implementation-003-old.md`),
/// then the name. The greatest key is the newest plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlanKey {
    version: u64,
    numbered: bool,
    plain: bool,
    name: String,
}

/// The sort key of a plan file name, `None` when the name is not a plan's.
pub fn plan_key(name: &str) -> Option<PlanKey> {
    if name.contains(['\n', '/']) {
        return None;
    }
    if let Some(c) = PLAN_NAME.captures(name) {
        let version = c[1].parse::<u64>().ok()?;
        return Some(PlanKey { version, numbered: false, plain: c[2].is_empty(), name: name.to_owned() });
    }
    let c = NUMBERED_PLAN_NAME.captures(name)?;
    let version = c[1].parse::<u64>().ok()?;
    Some(PlanKey { version, numbered: true, plain: true, name: name.to_owned() })
}

/// The newest plan among the file names of one `plans/` directory (see [`PlanKey`]). Every
/// place that picks a task's plan (the ledger, preflight, `check` over the work tree or the
/// git index) decides through this function.
pub fn latest_plan_name<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Option<S> {
    let mut best: Option<(PlanKey, S)> = None;
    for name in names {
        let Some(key) = plan_key(name.as_ref()) else { continue };
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((key, name));
        }
    }
    best.map(|(_, n)| n)
}

/// The lines of a plan's header, in order: up to the first `##` (or deeper) heading, except
/// that a `## Metadata` section (the real repository's later plans put the status line there)
/// belongs to the header and ends at the next heading.
pub fn header_lines<'t>(lines: impl IntoIterator<Item = &'t str>) -> impl Iterator<Item = &'t str> {
    let mut in_metadata = false;
    lines.into_iter().map_while(move |line| {
        if in_metadata {
            return (!line.starts_with('#')).then_some(line);
        }
        if line.starts_with("##") {
            if !is_metadata_heading(line) {
                return None;
            }
            in_metadata = true;
        }
        Some(line)
    })
}

/// `## Metadata` (any case, trailing spaces or colon allowed).
fn is_metadata_heading(line: &str) -> bool {
    line.strip_prefix("## ")
        .map(|t| t.trim().trim_end_matches(':').trim_end())
        .is_some_and(|t| t.eq_ignore_ascii_case("metadata"))
}

/// One phase heading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// The id as written: `3`, `3A`, `6.5`, `B`.
    pub id: String,
    /// 1-based position among the plan's phases.
    pub position: usize,
    /// The title text between the colon and the marker.
    pub title: String,
    /// The bracket marker's word (`COMPLETED`), without any `- note` tail; `None` when absent.
    pub marker: Option<String>,
    /// 0-based line of the heading.
    pub line: usize,
}

impl Phase {
    /// Whether the phase counts as done: COMPLETED/COMPLETE, or skipped/deferred/superseded/not applicable.
    pub fn is_done(&self) -> bool {
        matches!(
            self.marker.as_deref(),
            Some("COMPLETED" | "COMPLETE" | "SKIPPED" | "DEFERRED" | "SUPERSEDED" | "NOT APPLICABLE" | "NOT IN SCOPE")
        )
    }
}

/// Where a run should pick up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumePoint {
    /// The plan has no phase headings.
    NoPhases,
    /// Resume at this phase (first not done, in file order).
    At {
        /// The phase id.
        id: String,
        /// Its 1-based position.
        position: usize,
    },
    /// Every phase is done.
    AllDone,
}

/// A parsed plan file.
#[derive(Debug, Clone)]
pub struct PlanFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The lines.
    pub doc: TextDoc,
}

impl PlanFile {
    /// Parses plan bytes.
    ///
    /// # Errors
    /// `NotUtf8`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<PlanFile> {
        Ok(PlanFile { path: path.to_path_buf(), doc: TextDoc::parse(path, bytes)? })
    }

    /// Reads and parses a plan.
    ///
    /// # Errors
    /// I/O errors and `NotUtf8`.
    pub fn load(path: &Path) -> Result<PlanFile> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        PlanFile::parse(path, &bytes)
    }

    /// The text.
    pub fn to_text(&self) -> String {
        self.doc.to_text()
    }

    /// The header's end (0-based, exclusive; [`header_lines`]).
    fn header_end(&self) -> usize {
        header_lines(self.doc.lines()).count()
    }

    /// The header status line: (0-based line, bracket content).
    pub fn header_status(&self) -> Option<(usize, String)> {
        (0..self.header_end()).find_map(|i| {
            // The regex needs the literal label; checking for it first skips the regex engine
            // on every other line.
            let line = self.doc.line(i);
            if !line.contains("**Status**:") {
                return None;
            }
            let caps = HEADER_STATUS.captures(line)?;
            Some((i, caps[2].to_owned()))
        })
    }

    /// Sets the header status marker (keeping the dash or its absence and any trailing text).
    /// Returns false when the plan has no header status line (nothing changed).
    pub fn set_header_status(&mut self, status: &Status) -> bool {
        let Some((i, _)) = self.header_status() else { return false };
        let line = self.doc.line(i).to_owned();
        let Some(caps) = HEADER_STATUS.captures(&line) else { return false };
        self.doc.set_line(i, &format!("{}[{}]{}", &caps[1], status.marker(), &caps[3]));
        true
    }

    /// The phase headings, in file order.
    pub fn phases(&self) -> Vec<Phase> {
        let mut out = Vec::new();
        for (i, line) in self.doc.lines().enumerate() {
            if !line.starts_with("##") {
                continue;
            }
            if let Some(c) = PHASE.captures(line) {
                let (title, marker) = split_marker(&c[3]);
                let marker = marker.or_else(|| self.body_status(i));
                out.push(Phase { id: c[2].to_owned(), position: out.len() + 1, title, marker, line: i });
            }
        }
        out
    }

    /// The marker word of an older-style phase whose heading has no marker and whose status
    /// sits on its own `**Status**: [X]` line in the phase body (before the next heading or `---`).
    fn body_status(&self, heading: usize) -> Option<String> {
        (heading + 1..self.doc.len())
            .map(|i| self.doc.line(i))
            .take_while(|l| !l.starts_with('#') && l.trim_end() != "---")
            .find_map(|l| {
                let caps = HEADER_STATUS.captures(l)?;
                split_marker(&format!("[{}]", &caps[2])).1
            })
    }

    /// Where to resume: the first phase not done, in file order.
    pub fn resume_point(&self) -> ResumePoint {
        let phases = self.phases();
        if phases.is_empty() {
            return ResumePoint::NoPhases;
        }
        match phases.iter().find(|p| !p.is_done()) {
            Some(p) => ResumePoint::At { id: p.id.clone(), position: p.position },
            None => ResumePoint::AllDone,
        }
    }

    /// (phases done, phases total).
    pub fn progress(&self) -> (usize, usize) {
        let phases = self.phases();
        (phases.iter().filter(|p| p.is_done()).count(), phases.len())
    }

    /// The paths the plan's `**Files to modify**:` lists name, in file order without repeats:
    /// on each list item under the label (up to the next label, heading or rule), the backticked
    /// words that read as a path (no space, not an option, not a bare identifier: a `/` or a
    /// `.` in it), as the seed's planner writes them (`` - `src/a.rs` - add the parser ``).
    pub fn files_to_modify(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut in_list = false;
        for line in self.doc.lines() {
            let t = line.trim();
            if t.starts_with("**Files to modify**") || t.starts_with("- **Files to modify**") {
                in_list = true;
                continue;
            }
            if !in_list {
                continue;
            }
            if t.starts_with('#') || t == "---" || (t.starts_with("**") && t.contains("**:")) {
                in_list = false;
                continue;
            }
            if !(t.starts_with("- ") || t.starts_with("* ")) {
                continue;
            }
            for (i, span) in t.split('`').enumerate() {
                let span = span.trim_start_matches("./");
                let looks_like_path = i % 2 == 1
                    && !span.is_empty()
                    && !span.contains(char::is_whitespace)
                    && !span.starts_with('-')
                    && (span.contains('/') || span.contains('.'))
                    && !span.ends_with('/');
                if looks_like_path && !out.iter().any(|p| p == span) {
                    out.push(span.to_owned());
                }
            }
        }
        out
    }
}

/// Splits `Title text [MARKER - note] extra` into the title and the marker word: the first
/// bracket whose content starts with an upper-case word, cut at ` -`, `->` or `]`.
fn split_marker(rest: &str) -> (String, Option<String>) {
    let mut from = 0;
    while let Some(off) = rest[from..].find('[') {
        let start = from + off;
        let inner = &rest[start + 1..];
        let word: String = inner.chars().take_while(|c| c.is_ascii_uppercase() || *c == ' ').collect();
        let after = &inner[word.len()..];
        let word = word.trim_end();
        if !word.is_empty()
            && word.starts_with(|c: char| c.is_ascii_uppercase())
            && (after.starts_with(']') || after.starts_with('-'))
        {
            return (rest[..start].trim().to_owned(), Some(word.to_owned()));
        }
        from = start + 1;
    }
    (rest.trim().to_owned(), None)
}

/// The task directory of task `n`: `specs/{N}_{slug}`, else a zero-padded `specs/{NNN}_{slug}`,
/// else any `specs/{N}_*` (the number-only fallback when the slug is missing or changed).
pub fn task_dir(specs: &Path, n: u32, slug: Option<&str>) -> Option<PathBuf> {
    if let Some(slug) = slug.filter(|s| !s.is_empty() && *s != "null") {
        for name in [format!("{n}_{slug}"), format!("{n:03}_{slug}")] {
            let p = specs.join(&name);
            if p.is_dir() {
                return Some(p);
            }
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(specs)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.split_once('_').and_then(|(num, _)| num.parse::<u32>().ok()) == Some(n)
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found.into_iter().next()
}

/// The newest plan of a task directory under either convention, as [`latest_plan_name`]
/// chooses it.
pub fn latest_plan(task_dir: &Path) -> Option<PathBuf> {
    let dir = task_dir.join("plans");
    let names: Vec<String> =
        std::fs::read_dir(&dir).ok()?.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect();
    latest_plan_name(names).map(|n| dir.join(n))
}

/// The version the next plan of a task directory gets: one more than the highest version of
/// any plan file in `plans/` (`implementation-{NNN}*.md`, and the post-deletion `{NN}_{slug}.md`
/// names, so that a new plan is also newer than those), 1 when there is none. The number only;
/// [`latest_plan`] still says which file is the newest.
pub fn next_plan_version(task_dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(task_dir.join("plans")) else { return 1 };
    let mut highest = 0;
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let version = match PLAN_NAME.captures(&name) {
            Some(c) => c[1].parse::<u64>().ok(),
            None => name
                .strip_suffix(".md")
                .and_then(|stem| stem.split_once('_'))
                .filter(|(num, _)| !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|(num, _)| num.parse::<u64>().ok()),
        };
        highest = highest.max(version.unwrap_or(0));
    }
    highest.saturating_add(1)
}

/// The newest plan of task `n`.
pub fn find_plan(specs: &Path, n: u32, slug: Option<&str>) -> Option<PathBuf> {
    latest_plan(&task_dir(specs, n, slug)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_to_modify_are_the_backticked_paths_of_the_lists() {
        let text = "# Plan\n\n## Phases\n\n### Phase 1: A [NOT STARTED]\n\n**Files to modify**:\n- `src/a.rs` - add the parser near `parse_items`\n- `docs/guide.md`, `./README.md` -- document it\n- `lake build` then `Cargo.toml`\n\n**Verification**:\n- `tests/run.sh` passes\n\n### Phase 2: B [NOT STARTED]\n\n**Files to modify**:\n* `src/a.rs` - again\n* `src/b/` - a directory is not a file\n\nNot a list item `x/y.rs`\n";
        let plan = PlanFile::parse(Path::new("p.md"), text.as_bytes()).expect("parse");
        assert_eq!(plan.files_to_modify(), ["src/a.rs", "docs/guide.md", "README.md", "Cargo.toml"]);
    }

    const PLAN: &str = "# Implementation Plan: Task #7\n\n- **Task**: 7 - x\n**Status**: [NOT STARTED] - draft\n- **Effort**: 2h\n\n## Overview\n\n\
## Implementation Phases\n\n### Phase 1: Setup [COMPLETED]\n\n- **Status**: [COMPLETED]\n\n### Phase 3A: Middle part [BLOCKED - See Note Above]\n\n\
#### Phase 6.5: Small [IN PROGRESS]\n\n## Phase B: Last\n";

    #[test]
    fn header_status_only_and_phases_by_id() {
        let mut p = PlanFile::parse(Path::new("plan.md"), PLAN.as_bytes()).expect("parse");
        assert_eq!(p.header_status(), Some((3, "NOT STARTED".into())));
        let phases = p.phases();
        let ids: Vec<_> = phases.iter().map(|p| (p.id.as_str(), p.marker.as_deref())).collect();
        assert_eq!(ids, [("1", Some("COMPLETED")), ("3A", Some("BLOCKED")), ("6.5", Some("IN PROGRESS")), ("B", None)]);
        assert_eq!(phases[1].title, "Middle part");
        assert_eq!(p.resume_point(), ResumePoint::At { id: "3A".into(), position: 2 });
        assert!(p.set_header_status(&Status::Implementing));
        let text = p.to_text();
        assert!(text.contains("\n**Status**: [IMPLEMENTING] - draft\n"));
        assert!(text.contains("\n- **Status**: [COMPLETED]\n"), "phase status untouched");
    }

    #[test]
    fn next_plan_version_is_one_past_every_plan_name() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("7_x");
        assert_eq!(next_plan_version(&dir), 1, "no directory");
        std::fs::create_dir_all(dir.join("plans")).expect("mkdir");
        assert_eq!(next_plan_version(&dir), 1, "empty");
        std::fs::write(dir.join("plans/implementation-001.md"), "").expect("write");
        assert_eq!(next_plan_version(&dir), 2);
        std::fs::write(dir.join("plans/implementation-009-old.md"), "").expect("write");
        std::fs::write(dir.join("plans/notes.md"), "").expect("write");
        assert_eq!(next_plan_version(&dir), 10);
        std::fs::write(dir.join("plans/12_short_slug.md"), "").expect("write");
        assert_eq!(next_plan_version(&dir), 13);
    }

    #[test]
    fn latest_plan_by_version_not_name() {
        let tmp = tempfile::tempdir().expect("tmp");
        let plans = tmp.path().join("specs/007_x/plans");
        std::fs::create_dir_all(&plans).expect("mkdir");
        for n in [
            "implementation-002.md",
            "implementation-010.md",
            "implementation-010-old.md",
            "implementation-9.md",
            "notes.md",
        ] {
            std::fs::write(plans.join(n), "").expect("write");
        }
        let specs = tmp.path().join("specs");
        let p = find_plan(&specs, 7, Some("x")).expect("found");
        assert!(p.ends_with("implementation-010.md"), "{p:?}");
        assert_eq!(find_plan(&specs, 7, None), Some(p));
        assert_eq!(find_plan(&specs, 8, Some("x")), None);
    }

    #[test]
    fn latest_plan_across_both_conventions_by_version() {
        assert_eq!(
            latest_plan_name(["implementation-011.md", "12_restricted-truth.md", "11_old.md"]),
            Some("12_restricted-truth.md")
        );
        assert_eq!(
            latest_plan_name(["implementation-013.md", "12_restricted-truth.md"]),
            Some("implementation-013.md")
        );
        // At one version the later convention wins; a suffixed implementation name loses to a plain one.
        assert_eq!(latest_plan_name(["implementation-012.md", "12_x.md"]), Some("12_x.md"));
        assert_eq!(
            latest_plan_name(["implementation-003-old.md", "implementation-003.md"]),
            Some("implementation-003.md")
        );
        assert_eq!(latest_plan_name(["notes.md", "x_1.md", ".12_x.md.Ab3dE9.tmp", "12_x.txt", "sub/13_x.md"]), None);
        let tmp = tempfile::tempdir().expect("tmp");
        let plans = tmp.path().join("specs/081_fp/plans");
        std::fs::create_dir_all(&plans).expect("mkdir");
        for n in ["implementation-002.md", "9_first.md", "17_implementation-plan.md"] {
            std::fs::write(plans.join(n), "").expect("write");
        }
        let p = find_plan(&tmp.path().join("specs"), 81, Some("fp")).expect("found");
        assert!(p.ends_with("17_implementation-plan.md"), "{p:?}");
    }

    #[test]
    fn a_status_line_under_metadata_is_the_header_status() {
        let text =
            "# Implementation Plan: Task #58\n\n## Metadata\n\n- **Task**: 58 - x\n- **Status**: [NOT STARTED]\n\n\
## Overview\n\n### Phase 1: One [NOT STARTED]\n\n- **Status**: [COMPLETED]\n";
        let mut p = PlanFile::parse(Path::new("plan.md"), text.as_bytes()).expect("parse");
        assert_eq!(p.header_status(), Some((5, "NOT STARTED".into())));
        assert!(p.set_header_status(&Status::Implementing));
        assert!(p.to_text().contains("## Metadata\n\n- **Task**: 58 - x\n- **Status**: [IMPLEMENTING]\n"));
        assert!(p.to_text().contains("- **Status**: [COMPLETED]\n"), "a phase's status is not the header's");
        // Without a Metadata section, a status line under another `##` heading is a phase's or body's.
        let other = "# Plan\n\n## Overview\n\n- **Status**: [NOT STARTED]\n";
        assert_eq!(PlanFile::parse(Path::new("p.md"), other.as_bytes()).expect("parse").header_status(), None);
        // The Metadata section ends at the next heading of any level.
        let nested = "# Plan\n\n## Metadata\n- **Task**: 1\n### Phase 1: A\n- **Status**: [NOT STARTED]\n";
        assert_eq!(PlanFile::parse(Path::new("p.md"), nested.as_bytes()).expect("parse").header_status(), None);
    }
}
