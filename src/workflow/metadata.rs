//! The agent's `.return-meta.json` (reference §6), read leniently: bare-string artifacts,
//! the undocumented success words, phase counts in either place. Anything it cannot read as
//! a known status is a failure, said out loud; a missing or invalid file is its own outcome.

use std::path::Path;

use serde_json::Value;

use crate::error::Error;

/// The agent's reported status, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentStatus {
    /// `implemented` (also `done`, `success`, `completed`, with a warning).
    Implemented,
    /// `partial`.
    Partial,
    /// `blocked`.
    Blocked,
    /// `failed`, or any word the tool does not know (kept in `reported`).
    Failed,
    /// `in_progress`: the agent stopped before writing its final metadata.
    InProgress,
}

/// One artifact the agent reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Repository-relative path as written by the agent.
    pub path: String,
    /// `summary`, `implementation`, `handoff`, ... (guessed from the path for bare strings).
    pub kind: String,
    /// The one-line summary, empty when absent.
    pub summary: String,
}

/// What the agent reported, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// The normalised status.
    pub status: AgentStatus,
    /// The status word exactly as written.
    pub reported: String,
    /// `summary`.
    pub summary: String,
    /// `artifacts`, objects and bare strings alike.
    pub artifacts: Vec<Artifact>,
    /// `metadata.phases_completed`, else `partial_progress.phases_completed`.
    pub phases_completed: Option<u64>,
    /// `metadata.phases_total`, else `partial_progress.phases_total`.
    pub phases_total: Option<u64>,
    /// `partial_progress.handoff_path`.
    pub handoff_path: Option<String>,
    /// `partial_progress.details` or `stage`.
    pub partial_details: Option<String>,
    /// `requires_user_review`.
    pub requires_user_review: bool,
    /// `review_reason`.
    pub review_reason: Option<String>,
    /// `completion_data.completion_summary`.
    pub completion_summary: Option<String>,
    /// `completion_data.claudemd_suggestions`.
    pub claudemd_suggestions: Option<String>,
    /// `completion_data.roadmap_items` (strings only).
    pub roadmap_items: Vec<String>,
    /// The first `errors[].message`, for failed and blocked results.
    pub error_message: Option<String>,
    /// Things the user should know about how the file was read.
    pub warnings: Vec<String>,
}

/// Why no metadata could be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataProblem {
    /// The file does not exist.
    Missing,
    /// The file exists but is not a JSON object with a `status` string.
    Invalid(String),
}

impl Metadata {
    /// The reason to record for a blocked or failed run.
    pub fn reason(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        for s in [self.review_reason.as_deref(), self.error_message.as_deref(), self.partial_details.as_deref()]
            .into_iter()
            .flatten()
        {
            if !s.trim().is_empty() && !parts.contains(&s) {
                parts.push(s);
            }
        }
        if parts.is_empty() && !self.summary.trim().is_empty() {
            parts.push(&self.summary);
        }
        if parts.is_empty() {
            format!("the agent reported `{}` without a reason", self.reported)
        } else {
            parts.join("; ")
        }
    }

    /// The summary artifact (first of type `summary`).
    pub fn summary_artifact(&self) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.kind == "summary")
    }
}

/// Reads the metadata file.
///
/// # Errors
/// `MetadataProblem::Missing` or `Invalid` with the parser's message and position.
pub fn read(path: &Path) -> Result<Metadata, MetadataProblem> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(MetadataProblem::Missing),
        Err(e) => return Err(MetadataProblem::Invalid(format!("cannot read {}: {e}", path.display()))),
    };
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| MetadataProblem::Invalid(Error::json(path, &e).to_string()))?;
    parse(&value).map_err(|m| MetadataProblem::Invalid(format!("{}: {m}", path.display())))
}

/// Normalises a parsed metadata document.
///
/// # Errors
/// A message when the document is not an object or has no `status` string.
pub fn parse(value: &Value) -> Result<Metadata, String> {
    let obj = value.as_object().ok_or("not a JSON object")?;
    let reported = obj.get("status").and_then(Value::as_str).ok_or("no `status` string")?.to_owned();
    let mut warnings = Vec::new();
    let status = match reported.as_str() {
        "implemented" => AgentStatus::Implemented,
        "done" | "success" | "completed" => {
            warnings.push(format!("metadata status `{reported}` is not part of the contract; read as `implemented`"));
            AgentStatus::Implemented
        }
        "partial" => AgentStatus::Partial,
        "blocked" => AgentStatus::Blocked,
        "failed" => AgentStatus::Failed,
        "in_progress" => AgentStatus::InProgress,
        other => {
            warnings.push(format!("metadata status `{other}` is unknown; read as `failed`"));
            AgentStatus::Failed
        }
    };
    let str_of = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned).filter(|s| !s.is_empty());
    let num_of =
        |v: Option<&Value>| v.and_then(|v| v.as_u64().or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)));
    let meta = obj.get("metadata");
    let partial = obj.get("partial_progress");
    let completion = obj.get("completion_data");
    let mut artifacts = Vec::new();
    if let Some(list) = obj.get("artifacts").and_then(Value::as_array) {
        for a in list {
            match a {
                Value::String(p) => {
                    warnings.push(format!("artifact `{p}` given as a bare string; type guessed from its path"));
                    artifacts.push(Artifact { path: p.clone(), kind: guess_kind(p).into(), summary: String::new() });
                }
                Value::Object(o) => {
                    let Some(path) = o.get("path").and_then(Value::as_str) else {
                        warnings.push("an artifact without a `path` was ignored".into());
                        continue;
                    };
                    // An empty or blank type is guessed from the path, like a missing one.
                    let kind = o
                        .get("type")
                        .and_then(Value::as_str)
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .unwrap_or_else(|| guess_kind(path).into());
                    let summary = o.get("summary").and_then(Value::as_str).unwrap_or_default().to_owned();
                    artifacts.push(Artifact { path: path.to_owned(), kind, summary });
                }
                _ => warnings.push("an artifact that is neither an object nor a string was ignored".into()),
            }
        }
    }
    let roadmap_items = completion
        .and_then(|c| c.get("roadmap_items"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let error_message = obj
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.iter().find_map(|e| e.get("message").and_then(Value::as_str).or_else(|| e.as_str())))
        .map(str::to_owned);
    Ok(Metadata {
        status,
        reported,
        summary: str_of(obj.get("summary")).unwrap_or_default(),
        artifacts,
        phases_completed: num_of(meta.and_then(|m| m.get("phases_completed")))
            .or_else(|| num_of(partial.and_then(|p| p.get("phases_completed")))),
        phases_total: num_of(meta.and_then(|m| m.get("phases_total")))
            .or_else(|| num_of(partial.and_then(|p| p.get("phases_total")))),
        handoff_path: str_of(partial.and_then(|p| p.get("handoff_path"))),
        partial_details: str_of(partial.and_then(|p| p.get("details")))
            .or_else(|| str_of(partial.and_then(|p| p.get("stage")))),
        requires_user_review: obj.get("requires_user_review").and_then(Value::as_bool).unwrap_or(false),
        review_reason: str_of(obj.get("review_reason")),
        completion_summary: str_of(completion.and_then(|c| c.get("completion_summary"))),
        claudemd_suggestions: str_of(completion.and_then(|c| c.get("claudemd_suggestions"))),
        roadmap_items,
        error_message,
        warnings,
    })
}

fn guess_kind(path: &str) -> &'static str {
    if path.contains("/summaries/") {
        "summary"
    } else if path.contains("/handoffs/") {
        "handoff"
    } else if path.contains("/plans/") {
        "plan"
    } else if path.contains("/reports/") {
        "report"
    } else {
        "implementation"
    }
}

/// Whether an agent's standard output looks like it returned its metadata as JSON instead of
/// writing the file (the v1 pattern, D18): the whole output, or its last non-empty line, is a
/// JSON object or array.
pub fn stdout_looks_like_json(stdout: &str) -> bool {
    let is_json = |s: &str| {
        let s = s.trim();
        (s.starts_with('{') || s.starts_with('[')) && serde_json::from_str::<Value>(s).is_ok()
    };
    is_json(stdout) || stdout.lines().rev().find(|l| !l.trim().is_empty()).is_some_and(is_json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_reading_of_real_shapes() {
        let v: Value = serde_json::from_str(
            r#"{"status": "done", "artifacts": ["specs/1_x/summaries/implementation-summary-20260101.md", {"type": "implementation", "path": "src/a.rs"}],
                "partial_progress": {"phases_completed": 2, "phases_total": 4, "handoff_path": "specs/1_x/handoffs/h.md"},
                "completion_data": {"completion_summary": "Did it.", "roadmap_items": ["a", 3]}}"#,
        )
        .expect("json");
        let m = parse(&v).expect("parse");
        assert_eq!(m.status, AgentStatus::Implemented);
        assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
        assert_eq!(
            m.summary_artifact().map(|a| a.path.as_str()),
            Some("specs/1_x/summaries/implementation-summary-20260101.md")
        );
        assert_eq!((m.phases_completed, m.phases_total), (Some(2), Some(4)));
        assert_eq!(m.roadmap_items, ["a"]);
        assert_eq!(m.handoff_path.as_deref(), Some("specs/1_x/handoffs/h.md"));
        // Found by `cargo fuzz run metadata`: an empty type was kept, so a summary went unnoticed.
        let blank = parse(
            &serde_json::json!({"status": "partial", "artifacts": [{"type": " ", "path": "specs/1_x/summaries/s.md"}]}),
        )
        .expect("parse");
        assert_eq!(blank.summary_artifact().map(|a| a.kind.as_str()), Some("summary"));
        let unknown = parse(&serde_json::json!({"status": "ready_for_postflight"})).expect("parse");
        assert_eq!(unknown.status, AgentStatus::Failed);
        assert!(parse(&serde_json::json!(["x"])).is_err());
        assert!(parse(&serde_json::json!({"status": 3})).is_err());
    }

    #[test]
    fn json_on_stdout_is_detected() {
        assert!(stdout_looks_like_json("{\"status\": \"implemented\"}\n"));
        assert!(stdout_looks_like_json("working...\n[1, 2]\n"));
        assert!(!stdout_looks_like_json("- did things\n- {not json\n"));
    }
}
