//! Stages 7-10: record the outcome in the three files in one locked transaction (contract table
//! of seed-defects.md), link artifacts without duplicates, commit the task's paths and nothing
//! else, and remove the transient files. The ledger is written before the commit, so a failed
//! commit loses no ledger state.

use std::path::{Component, Path};

use serde_json::{Map, Value};

use crate::error::Result;
use crate::ledger::status::Status;
use crate::ledger::Snapshot;
use crate::task_id::TaskId;
use crate::workflow::metadata::{Artifact, Metadata};
use crate::workflow::preflight::TaskRef;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The agent reported implemented: the task is completed.
    Completed,
    /// Partial after the iteration limit (or a timeout): run again to resume.
    Partial {
        /// The phase to resume at.
        resume_phase: u64,
        /// Phases done.
        phases_completed: u64,
        /// Phases in the plan.
        phases_total: u64,
    },
    /// Partial, and the agent asks for a human.
    ReviewNeeded {
        /// The phase to resume at.
        resume_phase: u64,
        /// Phases done.
        phases_completed: u64,
        /// Phases in the plan.
        phases_total: u64,
        /// Why.
        reason: String,
    },
    /// The agent reported blocked.
    Blocked {
        /// Why.
        reason: String,
    },
    /// The agent reported failed (or an unknown status, or exited non-zero without metadata).
    Failed {
        /// Why.
        reason: String,
    },
    /// The agent reported implemented, but the validation commands failed (after its one
    /// retry), or the run changed no file it would commit: the task stays implementing.
    ValidationFailed {
        /// Which command failed and how (or that nothing changed).
        reason: String,
    },
    /// The agent itself reported an error (Claude Code: authentication, rate limit, overload,
    /// max turns) and left no usable metadata; the run can be resumed.
    AgentError {
        /// The agent's reason.
        reason: String,
    },
    /// The agent wrote no metadata file.
    MetadataMissing {
        /// The file expected (repository-relative).
        path: String,
    },
    /// The metadata file does not parse.
    MetadataInvalid {
        /// The file (repository-relative).
        path: String,
        /// The parse error.
        error: String,
    },
}

impl Outcome {
    /// The word used in `--json` output.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Partial { .. } => "partial",
            Outcome::ReviewNeeded { .. } => "review_needed",
            Outcome::Blocked { .. } => "blocked",
            Outcome::Failed { .. } => "failed",
            Outcome::ValidationFailed { .. } => "validation_failed",
            Outcome::AgentError { .. } => "agent_error",
            Outcome::MetadataMissing { .. } => "metadata_missing",
            Outcome::MetadataInvalid { .. } => "metadata_invalid",
        }
    }

    /// The documented exit code: 0 completed, 3 partial, 4 everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Completed => 0,
            Outcome::Partial { .. } => 3,
            _ => 4,
        }
    }

    /// The phase to resume at, for partial outcomes.
    pub fn resume_phase(&self) -> Option<u64> {
        match self {
            Outcome::Partial { resume_phase, .. } | Outcome::ReviewNeeded { resume_phase, .. } => Some(*resume_phase),
            _ => None,
        }
    }

    /// Whether the marker must stay for a resume (missing or invalid metadata).
    pub fn keeps_marker(&self) -> bool {
        matches!(self, Outcome::MetadataMissing { .. } | Outcome::MetadataInvalid { .. } | Outcome::AgentError { .. })
    }

    /// The commit subject (D6): `task <id>: ...`.
    pub fn subject(&self, task: &TaskId) -> String {
        match self {
            Outcome::Completed => format!("task {task}: complete implementation"),
            Outcome::Partial { phases_completed, phases_total, .. }
            | Outcome::ReviewNeeded { phases_completed, phases_total, .. } => {
                if *phases_completed == 0 {
                    format!("task {task}: partial implementation (no phases completed)")
                } else {
                    format!("task {task}: partial implementation (phases 1-{phases_completed} of {phases_total})")
                }
            }
            Outcome::Blocked { .. } => format!("task {task}: implementation blocked"),
            Outcome::ValidationFailed { .. } => format!("task {task}: validation failed"),
            _ => format!("task {task}: implementation failed"),
        }
    }

    /// The reason, for outcomes that have one.
    pub fn reason(&self) -> Option<String> {
        match self {
            Outcome::ReviewNeeded { reason, .. }
            | Outcome::Blocked { reason }
            | Outcome::Failed { reason }
            | Outcome::ValidationFailed { reason }
            | Outcome::AgentError { reason } => Some(reason.clone()),
            Outcome::MetadataMissing { path } => Some(format!("the agent wrote no metadata file ({path})")),
            Outcome::MetadataInvalid { path, error } => Some(format!("the metadata file {path} is invalid: {error}")),
            _ => None,
        }
    }
}

/// Whether an agent-reported path may be linked and committed: relative, no `..`, not inside
/// `.git`, not a transient file, not resolving (through symlinks) outside the repository, and
/// not a directory or the repository itself (a commit of a directory would take every
/// untracked file in it, the user's too). A NUL byte cannot be in a path at all.
pub fn safe_artifact_path(root: &Path, path: &str) -> bool {
    let p = Path::new(path);
    if path.is_empty() || p.is_absolute() || path.contains('\0') {
        return false;
    }
    let mut first = true;
    for c in p.components() {
        match c {
            Component::Normal(name) => {
                if first && name == ".git" {
                    return false;
                }
                first = false;
            }
            Component::CurDir => {}
            _ => return false,
        }
    }
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if first || crate::git::is_transient(&name) || std::fs::metadata(root.join(p)).is_ok_and(|m| m.is_dir()) {
        return false;
    }
    // Resolve the deepest existing ancestor: a symlink must not lead out of the repository.
    let mut probe = root.join(p);
    loop {
        if std::fs::symlink_metadata(&probe).is_ok() {
            return match (std::fs::canonicalize(&probe), std::fs::canonicalize(root)) {
                (Ok(real), Ok(root)) => real.starts_with(&root) && !real.starts_with(root.join(".git")),
                _ => false,
            };
        }
        if !probe.pop() {
            return false;
        }
    }
}

/// Stage 7-8 ledger edit for `outcome`, applied to a snapshot (one transaction).
///
/// # Errors
/// Ledger errors (the task vanished or became ambiguous).
pub fn record(
    snap: &mut Snapshot,
    task: &TaskRef,
    outcome: &Outcome,
    meta: Option<&Metadata>,
    artifacts: &[Artifact],
    ts: &str,
) -> Result<()> {
    let n = task.number;
    let mut fields = Map::new();
    let (todo_status, plan_status, link_summary_in_todo, link_artifacts) = match outcome {
        Outcome::Completed => {
            fields.insert("status".into(), Value::from("completed"));
            fields.insert("last_updated".into(), Value::from(ts));
            fields.insert("completed".into(), Value::from(ts));
            if let Some(m) = meta {
                if let Some(s) = m.completion_summary.as_ref().or(Some(&m.summary)).filter(|s| !s.trim().is_empty()) {
                    fields.insert("completion_summary".into(), Value::from(s.clone()));
                }
                if task.language == "meta" {
                    if let Some(s) = m.claudemd_suggestions.as_ref().filter(|s| !s.trim().is_empty()) {
                        fields.insert("claudemd_suggestions".into(), Value::from(s.clone()));
                    }
                } else if !m.roadmap_items.is_empty() {
                    fields.insert("roadmap_items".into(), Value::from(m.roadmap_items.clone()));
                }
            }
            (Status::Completed, Status::Completed, true, true)
        }
        Outcome::Partial { resume_phase, .. } | Outcome::ReviewNeeded { resume_phase, .. } => {
            fields.insert("last_updated".into(), Value::from(ts));
            fields.insert("resume_phase".into(), Value::from(*resume_phase));
            if let Outcome::ReviewNeeded { reason, .. } = outcome {
                fields.insert("review_reason".into(), Value::from(reason.clone()));
            }
            (Status::Implementing, Status::Partial, true, true)
        }
        Outcome::Blocked { reason } => {
            fields.insert("last_updated".into(), Value::from(ts));
            fields.insert("blocked_reason".into(), Value::from(reason.clone()));
            (Status::Implementing, Status::Implementing, false, true)
        }
        _ => {
            fields.insert("last_updated".into(), Value::from(ts));
            fields.insert("failure_reason".into(), Value::from(outcome.reason().unwrap_or_default()));
            (Status::Implementing, Status::Implementing, false, false)
        }
    };
    {
        let state = snap.state_mut();
        state.merge(n, fields)?;
        let entry = state.entry_mut(n)?;
        // Each outcome removes the reasons of earlier outcomes that no longer hold; a completed
        // task also has nothing to resume (D16).
        if *outcome == Outcome::Completed {
            entry.shift_remove("resume_phase");
        }
        for key in stale_reasons(outcome) {
            entry.shift_remove(*key);
        }
        if link_artifacts {
            link(entry, artifacts);
        }
    }
    let summary = artifacts.iter().find(|a| a.kind == "summary");
    if let Some(todo) = snap.todo_mut() {
        todo.set_status(n, &todo_status)?;
        if link_summary_in_todo {
            if let Some(s) = summary {
                let name = Path::new(&s.path).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                todo.set_bullet(n, "Summary", &format!("[{name}]({})", s.path))?;
            }
        }
    }
    if let Some(plan) = snap.plan(n)? {
        plan.set_header_status(&plan_status);
    }
    Ok(())
}

/// The reason fields an outcome makes stale: every one it does not set itself.
fn stale_reasons(outcome: &Outcome) -> &'static [&'static str] {
    match outcome {
        Outcome::Completed | Outcome::Partial { .. } => &["failure_reason", "blocked_reason", "review_reason"],
        Outcome::ReviewNeeded { .. } => &["failure_reason", "blocked_reason"],
        Outcome::Blocked { .. } => &["failure_reason", "review_reason"],
        _ => &["blocked_reason", "review_reason"],
    }
}

/// Links artifacts into a state entry: the summary artifact replaces every earlier summary
/// artifact; other artifacts replace an entry with the same path in place or are appended (D11).
fn link(entry: &mut Map<String, Value>, artifacts: &[Artifact]) {
    if artifacts.is_empty() {
        return;
    }
    let list = entry.entry("artifacts").or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let list = list.as_array_mut().expect("made an array above");
    let object = |a: &Artifact| {
        let mut o = Map::new();
        o.insert("path".into(), Value::from(a.path.clone()));
        o.insert("type".into(), Value::from(a.kind.clone()));
        o.insert("summary".into(), Value::from(a.summary.clone()));
        Value::Object(o)
    };
    if let Some(summary) = artifacts.iter().find(|a| a.kind == "summary") {
        let is_summary = |v: &Value| v.get("type").and_then(Value::as_str) == Some("summary");
        let same =
            list.iter().position(|v| is_summary(v) && v.get("path").and_then(Value::as_str) == Some(&summary.path));
        match same {
            // Re-linking the same summary (a resumed run) keeps its place; other summaries go.
            Some(i) => {
                list[i] = object(summary);
                let keep = list[i].clone();
                list.retain(|v| !is_summary(v) || *v == keep);
            }
            None => {
                list.retain(|v| !is_summary(v));
                list.push(object(summary));
            }
        }
    }
    for a in artifacts.iter().filter(|a| a.kind != "summary") {
        let same = list.iter().position(|v| {
            v.as_str() == Some(a.path.as_str()) || v.get("path").and_then(Value::as_str) == Some(a.path.as_str())
        });
        match same {
            Some(i) => list[i] = object(a),
            None => list.push(object(a)),
        }
    }
}

/// The paths a commit of this task includes (the commit skips those that do not exist).
pub fn commit_paths(task: &TaskRef, artifacts: &[Artifact], scoped_changes: &[String]) -> Vec<String> {
    let mut paths = vec![
        format!("{}/summaries", task.dir_rel),
        format!("{}/plans", task.dir_rel),
        format!("{}/handoffs", task.dir_rel),
        format!("{}/{}", task.dir_rel, crate::workflow::validate::VALIDATION_DIR),
        "specs/state.json".to_owned(),
        "specs/TODO.md".to_owned(),
    ];
    for p in artifacts.iter().map(|a| a.path.clone()).chain(scoped_changes.iter().cloned()) {
        let p = p.trim_start_matches("./").to_owned();
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    paths
}

/// Stage 10: removes the transient files of a finished postflight (the marker stays when the
/// outcome asks for a resume; an invalid metadata file stays as evidence).
///
/// # Errors
/// I/O errors other than "already gone".
pub fn cleanup(git_dir: &Path, task: &TaskRef, outcome: &Outcome) -> Result<()> {
    use crate::workflow::preflight::remove_if_exists;
    // The marker goes first: a crash after it leaves only stray files of a finished run, which
    // the next run ignores, never a "pending" run whose agent would be started again.
    if !outcome.keeps_marker() {
        remove_if_exists(&task.marker_path())?;
        crate::run::unregister(git_dir, &task.id())?;
        remove_if_exists(&task.dir.join(crate::run::HOOK_COUNTER_FILE))?;
        remove_if_exists(&task.dir.join(crate::run::BASELINE_FILE))?;
    }
    remove_if_exists(&task.counter_path())?;
    if !matches!(outcome, Outcome::MetadataInvalid { .. }) {
        remove_if_exists(&task.metadata_path())?;
    }
    Ok(())
}

/// The commit body: the completion summary, the partial summary, or the reason.
pub fn commit_body(outcome: &Outcome, meta: Option<&Metadata>) -> Option<String> {
    match outcome {
        Outcome::Completed => meta
            .and_then(|m| m.completion_summary.clone().or_else(|| Some(m.summary.clone())))
            .filter(|s| !s.trim().is_empty()),
        Outcome::Partial { .. } => meta.map(|m| m.summary.clone()).filter(|s| !s.trim().is_empty()),
        other => other.reason(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_artifact_paths_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        std::fs::create_dir_all(root.join(".git")).expect("git");
        std::fs::create_dir_all(root.join("src")).expect("src");
        std::os::unix::fs::symlink("/etc", root.join("out")).expect("symlink");
        for bad in [
            "../../etc/passwd",
            "/etc/passwd",
            ".git/config",
            "out/passwd",
            "specs/1_x/.return-meta.json",
            "",
            ".",
            "./",
            "src",
            "src/",
            "src/a\0b.rs",
            "specs/1_x/plans/.implementation-001.md.Ab3dE9.tmp",
        ] {
            assert!(!safe_artifact_path(root, bad), "{bad}");
        }
        for good in ["src/new.rs", "./src/lib.rs", "specs/1_x/summaries/s.md", "docs/not-yet/there.md"] {
            assert!(safe_artifact_path(root, good), "{good}");
        }
    }

    #[test]
    fn artifacts_replace_by_path_and_summary_is_unique() {
        let mut entry = serde_json::json!({"artifacts": ["specs/1/r.md", {"path": "src/a.rs", "type": "implementation", "summary": "old"},
            {"path": "s1.md", "type": "summary"}, {"path": "s2.md", "type": "summary"}]})
        .as_object()
        .expect("obj")
        .clone();
        let arts = [
            Artifact { path: "s3.md".into(), kind: "summary".into(), summary: "new".into() },
            Artifact { path: "src/a.rs".into(), kind: "implementation".into(), summary: "new".into() },
            Artifact { path: "src/b.rs".into(), kind: "implementation".into(), summary: String::new() },
        ];
        link(&mut entry, &arts);
        link(&mut entry, &arts);
        let paths: Vec<String> = entry["artifacts"]
            .as_array()
            .expect("array")
            .iter()
            .map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v["path"].as_str().expect("path").to_owned()))
            .collect();
        assert_eq!(paths, ["specs/1/r.md", "src/a.rs", "s3.md", "src/b.rs"]);
        assert_eq!(entry["artifacts"][1]["summary"], "new");
    }

    #[test]
    fn subjects_per_outcome() {
        let p = Outcome::Partial { resume_phase: 3, phases_completed: 2, phases_total: 4 };
        assert_eq!(p.subject(&TaskId::from(350)), "task 350: partial implementation (phases 1-2 of 4)");
        let p = Outcome::Partial { resume_phase: 1, phases_completed: 0, phases_total: 4 };
        assert_eq!(p.subject(&TaskId::from(350)), "task 350: partial implementation (no phases completed)");
        assert_eq!(Outcome::Blocked { reason: "x".into() }.subject(&TaskId::from(1)), "task 1: implementation blocked");
        assert_eq!(
            Outcome::MetadataMissing { path: "p".into() }.subject(&TaskId::from(1)),
            "task 1: implementation failed"
        );
        assert_eq!(Outcome::Completed.exit_code(), 0);
        let v = Outcome::ValidationFailed { reason: "validation failed: `x` (exit 1)".into() };
        assert_eq!(
            (v.subject(&TaskId::from(7)).as_str(), v.exit_code(), v.keeps_marker()),
            ("task 7: validation failed", 4, false)
        );
    }
}
