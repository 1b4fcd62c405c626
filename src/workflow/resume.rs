//! Which leftovers of an earlier run a new `implement` picks up. The bash workflow's `git add -A`
//! committed `.postflight-pending` and `.return-meta.json` files, some written by its research
//! and plan skills, so a marker or a metadata file in a task directory is not by itself the
//! trace of an interrupted implement run:
//!
//! - a marker is resumed only when it is an implement run's (`"operation": "implement"`, which
//!   both the original `skill-implementer` and postflight write) and HEAD does not track it;
//!   any other marker is stale: preflight replaces it (new session, fresh counter) and
//!   `xtask check` reports it;
//! - metadata is the interrupted invocation's result only when it reports an implement status
//!   (`implemented`, `partial`, `blocked`, `failed`, or a success word read as `implemented`)
//!   and, where it says so, belongs to the run: its `metadata.session_id` (when present) is the
//!   run's or its agent's, and the file is not older than the marker's `created`;
//! - a resumed run never counts past `--max-iterations`: when the interrupted run had already
//!   made that many invocations, the resume makes one final invocation, numbered as the last.

use std::path::Path;

use serde_json::Value;

use crate::repo::Repo;
use crate::run::Marker;
use crate::task_id::TaskId;
use crate::workflow::metadata::{self, AgentStatus, Metadata};

pub use crate::run::{is_implement_marker, IMPLEMENT_OPERATION};

/// The metadata status words of an implement outcome (the contract's four, plus the success
/// words `metadata::parse` reads as `implemented`).
const IMPLEMENT_STATUSES: [&str; 7] = ["implemented", "partial", "blocked", "failed", "done", "success", "completed"];

/// Slack between a marker's `created` (whole seconds) and a file's modification time.
const CLOCK_SLACK_SECONDS: i64 = 2;

/// The marker at `marker_path` (repository file of task `task`) when it is an interrupted implement
/// run to resume, else `None` with, for a marker that exists and parses but must not be
/// resumed, the reason in words. A marker that does not parse or names another task is not
/// resumed, silently (as before).
pub fn previous_run(repo: &Repo, marker_path: &Path, task: &TaskId) -> (Option<Marker>, Option<String>) {
    if !marker_path.is_file() {
        return (None, None);
    }
    let marker = match Marker::load(marker_path) {
        // A marker without a task number (0) is taken as this task's, as before.
        Ok(m) if m.is_task(task) || m.task_number == 0 => m,
        Ok(_) | Err(_) => return (None, None),
    };
    let rel = repo.relative(marker_path);
    if !is_implement_marker(&marker) {
        let op = match marker.operation.as_str() {
            "" => "run with no operation".to_owned(),
            op => format!("`{op}` run"),
        };
        return (
            None,
            Some(format!(
                "{rel} was left by a {op} (skill `{}`), not an interrupted implement run; \
it is replaced and this run starts afresh",
                marker.skill
            )),
        );
    }
    // A git failure is no evidence that the marker came from history: it is resumed as before.
    if crate::git::in_head(repo, &rel).unwrap_or(false) {
        return (
            None,
            Some(format!(
                "{rel} is committed in HEAD (the old workflow's `git add -A`), so it is no interrupted run; \
it is replaced and this run starts afresh (`git rm --cached {rel}` stops tracking it)"
            )),
        );
    }
    (Some(marker), None)
}

/// The metadata an interrupted invocation of the run in `marker_path` left at `meta_path`, when
/// it is that run's implement outcome (see the module documentation); `None` otherwise, also
/// when it is still `in_progress`.
pub fn left_outcome(marker_path: &Path, meta_path: &Path) -> Option<Metadata> {
    let marker = Marker::load(marker_path).ok()?;
    let bytes = std::fs::read(meta_path).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    let status = value.get("status").and_then(Value::as_str)?;
    if !IMPLEMENT_STATUSES.contains(&status) {
        return None;
    }
    let session = value.get("metadata").and_then(|m| m.get("session_id")).and_then(Value::as_str);
    if session.is_some_and(|s| !s.is_empty() && !marker.belongs_to(s)) {
        return None;
    }
    if let (Ok(created), Some(modified)) = (marker.created.parse::<jiff::Timestamp>(), modified_seconds(meta_path)) {
        if modified + CLOCK_SLACK_SECONDS < created.as_second() {
            return None;
        }
    }
    metadata::parse(&value).ok().filter(|m| m.status != AgentStatus::InProgress)
}

fn modified_seconds(path: &Path) -> Option<i64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_secs()).ok()
}

/// The invocations a resumed run counts as already made: the interrupted run's, but never more
/// than `max` (a counter past the limit, left by another writer, is read as the limit).
pub fn iterations_done(counted: u32, max: u32) -> u32 {
    counted.min(max.max(1))
}

/// The number of the next invocation after `done`: `done + 1`, except that a resumed run whose
/// count already reached `max` makes one final invocation numbered `max`.
pub fn next_iteration(done: u32, max: u32) -> u32 {
    (done + 1).min(max.max(1))
}

/// What to tell the user when the interrupted run's count had reached the limit already.
pub fn limit_note(counted: u32, max: u32) -> Option<String> {
    let max = max.max(1);
    (counted >= max).then(|| {
        format!(
            "the interrupted run had already made {counted} invocation(s) of at most {max}: \
this resume makes one final invocation ({max}/{max})"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(op: &str, created: &str) -> String {
        serde_json::json!({"session_id": "sess_1773695483_a1b2c3", "skill": "skill-implementer", "task_number": 7,
            "operation": op, "created": created, "agent_session_id": "agent-1"})
        .to_string()
    }

    #[test]
    fn only_an_implement_outcome_of_the_run_is_reused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (m, meta) = (tmp.path().join(".postflight-pending"), tmp.path().join(".return-meta.json"));
        std::fs::write(&m, marker("implement", "2026-03-16T21:11:23Z")).expect("marker");
        let reused = |text: &str| {
            std::fs::write(&meta, text).expect("meta");
            left_outcome(&m, &meta).map(|m| m.reported)
        };
        assert_eq!(reused(r#"{"status": "partial"}"#), Some("partial".into()));
        assert_eq!(reused(r#"{"status": "done"}"#), Some("done".into()));
        assert_eq!(
            reused(r#"{"status": "implemented", "metadata": {"session_id": "agent-1"}}"#),
            Some("implemented".into())
        );
        assert_eq!(reused(r#"{"status": "planned", "summary": "the planner's"}"#), None);
        assert_eq!(reused(r#"{"status": "researched"}"#), None);
        assert_eq!(reused(r#"{"status": "in_progress"}"#), None);
        assert_eq!(reused(r#"{"status": "failed", "metadata": {"session_id": "sess_1700000000_000000"}}"#), None);
        // Written before the run started (the marker says it started in the future here).
        std::fs::write(&m, marker("implement", "2099-01-01T00:00:00Z")).expect("marker");
        assert_eq!(reused(r#"{"status": "partial"}"#), None);
    }

    #[test]
    fn the_count_never_passes_the_limit() {
        assert_eq!((iterations_done(4, 1), next_iteration(iterations_done(4, 1), 1)), (1, 1));
        assert_eq!((iterations_done(2, 5), next_iteration(2, 5)), (2, 3));
        assert_eq!(next_iteration(5, 5), 5);
        assert_eq!(next_iteration(0, 0), 1);
    }
}
