//! `xtask hook stop`: the handler for Claude Code's `Stop` and `SubagentStop` events. It blocks
//! a stop only while a pending marker of *this* session's run has its metadata still owed, at
//! most [`MAX_BLOCKS`] times per session and marker, counted in its own file (D10). It never
//! deletes a marker, never reads state.json, and never touches another session's marker.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::repo::Repo;
use crate::run::{self as marker, Marker, HOOK_COUNTER_FILE, METADATA_FILE};

/// How often one session may be sent back to work for one marker before its stop is let through.
pub const MAX_BLOCKS: u32 = 3;

/// The longest piece of a marker's own `reason` quoted in the block reason.
const MAX_MARKER_REASON: usize = 300;

/// The fields of Claude Code's `Stop` / `SubagentStop` event the hook uses (others are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Event {
    /// The Claude Code session that is stopping.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The session's working directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// `Stop` or `SubagentStop`.
    #[serde(default)]
    pub hook_event_name: Option<String>,
    /// True when the session is already continuing because of a stop hook.
    #[serde(default)]
    pub stop_hook_active: bool,
    /// The transcript file (unused; kept for messages).
    #[serde(default)]
    pub transcript_path: Option<PathBuf>,
}

/// What the hook answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let the session stop (`{}`).
    Allow,
    /// Keep the session working with this instruction.
    Block {
        /// What the session must do before stopping.
        reason: String,
    },
}

impl Decision {
    /// The JSON Claude Code reads on stdout, serialised (never interpolated), without newline.
    pub fn to_json(&self) -> String {
        let value = match self {
            Decision::Allow => json!({}),
            Decision::Block { reason } => json!({ "decision": "block", "reason": reason }),
        };
        value.to_string()
    }
}

/// The decision plus notes for stderr (why a stop was let through, markers skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The answer.
    pub decision: Decision,
    /// One line each, for the user's eyes only.
    pub notes: Vec<String>,
}

/// Why the metadata is still owed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owed {
    Missing,
    InProgress,
    Invalid(String),
}

/// Parses the event JSON Claude Code writes to the hook's stdin.
///
/// # Errors
/// `Refused` when the input is empty or not a JSON object.
pub fn parse_event(input: &[u8]) -> Result<Event> {
    if input.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::refused("no hook event on standard input", None));
    }
    serde_json::from_slice(input)
        .map_err(|e| Error::refused(format!("the hook event on standard input is not a JSON object: {e}"), None))
}

/// Decides whether the session of `event` may stop. The repository is found from the event's
/// `cwd`, else from `fallback_dir`.
///
/// # Errors
/// None in practice for a well-formed event; the caller lets the stop through on any error.
///
/// # Writes
/// The block counter [`HOOK_COUNTER_FILE`] beside a marker, when it blocks; the marker index
/// and its stamp in the git directory after a scan ([`crate::run::index::build`]).
pub fn decide(event: &Event, fallback_dir: &Path, now: jiff::Timestamp) -> Result<Outcome> {
    let mut notes = Vec::new();
    let allow = |notes: Vec<String>| Ok(Outcome { decision: Decision::Allow, notes });
    let Some(session) = event.session_id.as_deref().filter(|s| !s.trim().is_empty()) else {
        notes.push("the hook event has no session_id; nothing can belong to it".into());
        return allow(notes);
    };
    let dir = event.cwd.as_deref().filter(|d| d.is_dir()).unwrap_or(fallback_dir);
    let repo = match Repo::discover(dir) {
        Ok(r) => r,
        Err(_) => return allow(notes),
    };
    let candidates = hook_candidates(&repo, std::time::SystemTime::now());
    for marker_path in candidates {
        // Parsing only markers that could be ours keeps the common path to one read per marker.
        let marker = match Marker::load(&marker_path) {
            Ok(m) => m,
            Err(e) => {
                notes.push(format!("ignoring unreadable marker {}: {e}", repo.relative(&marker_path)));
                continue;
            }
        };
        if !marker.belongs_to(session) || marker.is_stale(now) {
            continue;
        }
        let meta_path = metadata_path(&repo, &marker_path, &marker);
        let Some(owed) = owed(&meta_path)? else { continue };
        let counter_path = marker_path.with_file_name(HOOK_COUNTER_FILE);
        let key = counter_key(session, &marker);
        let mut counts = read_counts(&counter_path);
        let blocks = counts.get(&key).copied().unwrap_or(0);
        if blocks >= MAX_BLOCKS {
            notes.push(format!(
                "task {}: stop let through after {MAX_BLOCKS} blocks; {} is still {}",
                marker.task_number,
                repo.relative(&meta_path),
                owed_words(&owed)
            ));
            continue;
        }
        counts.insert(key, blocks + 1);
        write_counts(&counter_path, &counts)?;
        if event.stop_hook_active {
            notes.push(format!("stop_hook_active was set; block {} of {MAX_BLOCKS}", blocks + 1));
        }
        let reason = block_reason(&repo, &marker, &meta_path, &owed, blocks + 1);
        return Ok(Outcome { decision: Decision::Block { reason }, notes });
    }
    allow(notes)
}

/// Reads the event from `input` and decides; every error lets the stop through with a note.
pub fn run(input: &[u8], fallback_dir: &Path, now: jiff::Timestamp) -> Outcome {
    match parse_event(input).and_then(|event| decide(&event, fallback_dir, now)) {
        Ok(outcome) => outcome,
        Err(e) => Outcome { decision: Decision::Allow, notes: vec![format!("{e}; letting the stop through")] },
    }
}

/// The moment the hook judges staleness by: `XTASK_NOW` when set and valid, else the clock.
pub fn clock() -> jiff::Timestamp {
    std::env::var(crate::context::ENV_NOW).ok().and_then(|v| parse_time(&v)).unwrap_or_else(jiff::Timestamp::now)
}

/// Parses an RFC 3339 time such as `2026-03-16T21:11:23Z`.
pub fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    text.trim().parse().ok()
}

/// The markers the hook looks at: those the marker index names while it is complete for
/// state.json as it is ([`crate::run::index`]: a small directory and one file read, and a stat
/// per implementing task, whatever the ledger's size),
/// else those of a scan ([`scan_markers`]) together with any the index names, after which the
/// index is made complete for that scan. The legacy global marker is always looked at.
pub fn hook_candidates(repo: &Repo, start: std::time::SystemTime) -> Vec<PathBuf> {
    let indexed = marker::indexed_markers(&repo.root, &repo.git_dir);
    let mut out = match (indexed, crate::run::index::watched_markers(repo)) {
        (Some(mut list), Some(watched)) => {
            list.extend(watched);
            list
        }
        (indexed, _) => {
            // Taken before the scan reads state.json, so it vouches for no later version.
            let fp = crate::run::index::fingerprint_before_scan(repo, start);
            let scan = scan_markers(&repo.specs_dir());
            if let Some(watched) = &scan.watched {
                crate::run::index::build(repo, &scan.markers, watched, fp);
            }
            let mut all = scan.markers;
            all.extend(indexed.unwrap_or_default());
            all
        }
    };
    let global = repo.specs_dir().join(marker::MARKER_FILE);
    if global.is_file() {
        out.push(global);
    }
    out.sort();
    out.dedup();
    out
}

/// What [`scan_markers`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The existing markers that can matter.
    pub markers: Vec<PathBuf>,
    /// Task number and repository-relative marker path of the implementing tasks whose marker
    /// can still appear without state.json being written again (see [`WATCH_WINDOW`]), and of
    /// those whose marker exists; `None` when the scan fell back to every marker directory.
    pub watched: Option<Vec<(u32, String)>>,
}

/// How long after an implementing task's `last_updated` (taken against state.json's own
/// modification time) its marker may still appear with no further write of state.json. The
/// original workflow writes the marker seconds after the state.json update that made the task
/// implementing (seed 004 stages 2 and 4); any later run of it writes state.json again, which
/// makes the hook scan anew. A task without a readable `last_updated` is always watched.
pub const WATCH_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

/// The markers that can matter: the legacy global one, and those of the tasks state.json marks
/// `implementing` (a run owes metadata only then). state.json is not parsed but scanned as
/// bytes ([`super::scan`]), so a ledger of 10,000 tasks costs one streaming read instead of a
/// stat per task directory. When state.json is unreadable or a task directory cannot be found from its slug,
/// every `specs/*/.postflight-pending` is considered (`marker::find_markers`).
pub fn candidate_markers(specs: &Path) -> Vec<PathBuf> {
    scan_markers(specs).markers
}

/// Whether a task last updated at `last_updated` can still get its marker with state.json (last
/// modified at `state_mtime`) as it is.
fn may_still_get_a_marker(last_updated: Option<&str>, state_mtime: Option<std::time::SystemTime>) -> bool {
    let (Some(text), Some(mtime)) = (last_updated, state_mtime) else { return true };
    let (Ok(updated), Ok(mtime)) = (text.parse::<jiff::Timestamp>(), jiff::Timestamp::try_from(mtime)) else {
        return true;
    };
    let window = WATCH_WINDOW.as_secs() as i64;
    updated.as_second() + window >= mtime.as_second()
}

/// [`candidate_markers`], with the marker paths watched (see [`Scan::watched`]).
pub fn scan_markers(specs: &Path) -> Scan {
    let fallback = || Scan { markers: marker::find_markers(specs), watched: None };
    let Ok(file) = std::fs::File::open(specs.join("state.json")) else { return fallback() };
    let state_mtime = file.metadata().and_then(|m| m.modified()).ok();
    let Ok(tasks) = super::scan::implementing_entries(file) else { return fallback() };
    let mut out = Vec::new();
    let mut watched = Vec::new();
    let global = specs.join(marker::MARKER_FILE);
    if global.is_file() {
        out.push(global);
    }
    for task in tasks {
        let n = task.number;
        let found = task.slug.filter(|s| !s.is_empty() && s != "null" && !s.contains(['/', '\\'])).and_then(|slug| {
            [format!("{n}_{slug}"), format!("{n:03}_{slug}")].into_iter().find(|d| specs.join(d).is_dir())
        });
        match found {
            Some(name) => {
                let m = specs.join(&name).join(marker::MARKER_FILE);
                let exists = m.is_file();
                if exists || may_still_get_a_marker(task.last_updated.as_deref(), state_mtime) {
                    watched.push((n, format!("specs/{name}/{}", marker::MARKER_FILE)));
                }
                if exists && !out.contains(&m) {
                    out.push(m);
                }
            }
            None => return fallback(),
        }
    }
    out.sort();
    Scan { markers: out, watched: Some(watched) }
}

fn metadata_path(repo: &Repo, marker_path: &Path, marker: &Marker) -> PathBuf {
    match marker.metadata_file.as_deref().filter(|p| !p.is_empty()) {
        Some(rel) => repo.root.join(rel),
        None => marker_path.with_file_name(METADATA_FILE),
    }
}

/// Whether the metadata is still owed: missing, `in_progress`, or unusable (not JSON, no status).
fn owed(path: &Path) -> Result<Option<Owed>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some(Owed::Missing)),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return Ok(Some(Owed::Invalid(format!("is not valid JSON ({e})")))),
    };
    match value.get("status").and_then(Value::as_str) {
        Some("in_progress") => Ok(Some(Owed::InProgress)),
        Some(_) => Ok(None),
        None => Ok(Some(Owed::Invalid("has no \"status\" string".into()))),
    }
}

fn owed_words(owed: &Owed) -> String {
    match owed {
        Owed::Missing => "missing".into(),
        Owed::InProgress => "marked \"in_progress\"".into(),
        Owed::Invalid(why) => why.clone(),
    }
}

/// The counter key: this session and this marker (a new run writes a new marker).
fn counter_key(session: &str, marker: &Marker) -> String {
    format!("{session} task={} run={} created={}", marker.task_number, marker.session_id, marker.created)
}

fn read_counts(path: &Path) -> BTreeMap<String, u32> {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Writes the counter through a temporary file and a rename (no fsync: a lost count after a
/// crash costs at most one more block).
fn write_counts(path: &Path, counts: &BTreeMap<String, u32>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".postflight-hook-blocks.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file for", path, e))?;
    let mut bytes = serde_json::to_vec_pretty(counts).expect("a map of counts always serialises");
    bytes.push(b'\n');
    tmp.write_all(&bytes).map_err(|e| Error::io("write", path, e))?;
    tmp.persist(path).map_err(|e| Error::io("replace", path, e.error))?;
    Ok(())
}

/// The instruction sent back to the session: which file, which fields, which values.
fn block_reason(repo: &Repo, marker: &Marker, meta_path: &Path, owed: &Owed, block: u32) -> String {
    let meta = repo.relative(meta_path);
    let task = marker.task_number;
    // A queue run (`implement <PATH>`: a spec directory, a phase document, a payload) has no
    // task number and asks for the queue's metadata (`crate::workflow::queue`'s prompt).
    if task == 0 {
        let file = marker.reason.strip_prefix("queue run of ").map(|f| sanitize(f, MAX_MARKER_REASON));
        let file = file.unwrap_or_else(|| "its file".to_owned());
        return format!(
            "The postflight run of {file} is still pending and this session owns it: {meta} is {}. \
Before stopping, write {meta} as one JSON object with: \
\"status\": one of \"implemented\", \"partial\", \"failed\", \"blocked\"; \
\"summary\": 2-5 sentences on what was done; \
\"artifacts\": [{{\"type\": \"implementation\", \"path\": \"...\", \"summary\": \"...\"}}]; \
\"errors\": [{{\"message\": \"...\", \"recoverable\": true}}] when something failed. \
Do not change the task's markers or notes in {file}, and do not commit: postflight does that. \
(Stop blocked {block} of {MAX_BLOCKS} for this session.)",
            owed_words(owed),
        );
    }
    let mut reason = format!(
        "Postflight for task {task} is still pending and this session owns it: {meta} is {}. \
Before stopping, write {meta} as one JSON object with: \
\"status\": one of \"implemented\", \"partial\", \"failed\", \"blocked\" (never \"completed\"); \
\"summary\": 2-5 sentences on what was done; \
\"artifacts\": [{{\"type\": \"summary\", \"path\": \"specs/.../summaries/implementation-summary-YYYYMMDD.md\", \"summary\": \"...\"}}] (plus implementation artifacts); \
\"metadata\": {{\"session_id\": \"{}\", \"phases_completed\": <int>, \"phases_total\": <int>}}; \
for \"partial\" also \"partial_progress\": {{\"phases_completed\": <int>, \"phases_total\": <int>, \"details\": \"...\", \"handoff_path\": \"...\"}}; \
for \"implemented\" also \"completion_data\": {{\"completion_summary\": \"1-3 sentences\"}}; \
\"requires_user_review\": true only for a hard blocker. \
Do not edit specs/state.json, specs/TODO.md or the plan header, and do not commit: postflight does that. \
(Stop blocked {block} of {MAX_BLOCKS} for this session.)",
        owed_words(owed),
        marker.session_id,
    );
    let note = sanitize(&marker.reason, MAX_MARKER_REASON);
    if !note.is_empty() {
        reason.push_str(&format!(" Marker note: {note}"));
    }
    reason
}

/// Replaces control characters (other than newline and tab) with spaces and caps the length.
fn sanitize(text: &str, max: usize) -> String {
    let cleaned: String =
        text.trim().chars().map(|c| if c.is_control() && c != '\n' && c != '\t' { ' ' } else { c }).collect();
    if cleaned.chars().count() <= max {
        return cleaned;
    }
    let mut out: String = cleaned.chars().take(max - 3).collect();
    out.push_str("...");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-03-16T21:20:00Z";

    fn now() -> jiff::Timestamp {
        NOW.parse().expect("ts")
    }

    fn setup(marker_json: &str) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(tmp.path().join(".git")).expect("git");
        let dir = tmp.path().join("specs/980_x");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(marker::MARKER_FILE), marker_json).expect("marker");
        (tmp, dir)
    }

    fn event(session: &str, root: &Path, active: bool) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "session_id": session, "cwd": root, "hook_event_name": "SubagentStop",
            "stop_hook_active": active, "transcript_path": "/tmp/t.jsonl"
        }))
        .expect("json")
    }

    const MARKER: &str = r#"{"session_id": "sess_1773695483_a1b2c3", "task_number": 980, "reason": "r", "created": "2026-03-16T21:11:23Z", "agent_session_id": "agent-1"}"#;

    #[test]
    fn blocks_three_times_then_lets_through_and_keeps_the_marker() {
        let (tmp, dir) = setup(MARKER);
        for k in 1..=3 {
            let out = run(&event("agent-1", tmp.path(), k > 1), Path::new("/"), now());
            match &out.decision {
                Decision::Block { reason } => {
                    assert!(reason.contains("specs/980_x/.return-meta.json is missing"), "{reason}");
                    assert!(reason.contains(&format!("blocked {k} of 3")), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        let out = run(&event("agent-1", tmp.path(), true), Path::new("/"), now());
        assert_eq!(out.decision, Decision::Allow, "{:?}", out.notes);
        assert!(dir.join(marker::MARKER_FILE).exists());
        // Another session that owns the marker (the tool's id) starts from zero.
        let out = run(&event("sess_1773695483_a1b2c3", tmp.path(), false), Path::new("/"), now());
        assert!(matches!(out.decision, Decision::Block { .. }));
    }

    #[test]
    fn codex_stop_input_is_answered_as_claude_codes_matched_by_thread() {
        // Codex's `Stop` input: every field present, `transcript_path` and
        // `last_assistant_message` null; its `session_id` is the thread id the marker records.
        let (tmp, _dir) = setup(MARKER);
        let codex = |session: &str| {
            serde_json::to_vec(&json!({
                "session_id": session, "turn_id": "turn-1", "transcript_path": null, "cwd": tmp.path(),
                "hook_event_name": "Stop", "model": "gpt-5", "permission_mode": "default",
                "stop_hook_active": false, "last_assistant_message": null
            }))
            .expect("json")
        };
        let out = run(&codex("agent-1"), Path::new("/"), now());
        let Decision::Block { reason } = &out.decision else { panic!("{out:?}") };
        assert!(reason.contains("specs/980_x/.return-meta.json is missing"), "{reason}");
        let v: Value = serde_json::from_str(&out.decision.to_json()).expect("json");
        // Only keys Codex's output schema allows.
        assert_eq!(
            v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["decision".into(), "reason".into()])
        );
        assert_eq!(run(&codex("another-thread"), Path::new("/"), now()).decision, Decision::Allow);
    }

    #[test]
    fn written_metadata_other_sessions_and_stale_markers_allow() {
        let (tmp, dir) = setup(MARKER);
        assert_eq!(run(&event("someone-else", tmp.path(), false), Path::new("/"), now()).decision, Decision::Allow);
        std::fs::write(dir.join(METADATA_FILE), r#"{"status": "in_progress"}"#).expect("meta");
        assert!(matches!(
            run(&event("agent-1", tmp.path(), false), Path::new("/"), now()).decision,
            Decision::Block { .. }
        ));
        std::fs::write(dir.join(METADATA_FILE), r#"{"status": "partial"}"#).expect("meta");
        assert_eq!(run(&event("agent-1", tmp.path(), false), Path::new("/"), now()).decision, Decision::Allow);
        std::fs::remove_file(dir.join(METADATA_FILE)).expect("rm");
        let later: jiff::Timestamp = "2026-03-17T21:20:00Z".parse().expect("ts");
        assert_eq!(run(&event("agent-1", tmp.path(), false), Path::new("/"), later).decision, Decision::Allow);
        assert!(dir.join(marker::MARKER_FILE).exists(), "stale marker kept");
    }

    #[test]
    fn candidates_are_the_implementing_tasks_markers_else_all() {
        let doc = br#"{"active_projects": [
    {"project_number": 12, "project_name": "alpha", "status": "implementing", "description": "says \"status\": \"implementing\""},
    {"project_number": 7, "status":"implementing", "project_name": "beta_b"},
    {"project_number": 5, "project_name": "gamma", "status": "planned", "notes": "implementing"},
    {"project_number": 3, "status": "implementing"}
  ], "repository_health": {"status": "good"}}"#;
        let tmp = tempfile::tempdir().expect("tmp");
        let specs = tmp.path();
        std::fs::write(specs.join("state.json"), &doc[..]).expect("write");
        for d in ["12_alpha", "007_beta_b", "5_gamma", "3_delta"] {
            std::fs::create_dir_all(specs.join(d)).expect("mkdir");
            std::fs::write(specs.join(d).join(marker::MARKER_FILE), "{}").expect("marker");
        }
        // Task 3 has no slug, so every marker directory is considered.
        assert_eq!(candidate_markers(specs).len(), 4);
        let without_3 = String::from_utf8_lossy(doc).replace(
            r#",
    {"project_number": 3, "status": "implementing"}"#,
            "",
        );
        std::fs::write(specs.join("state.json"), without_3).expect("write");
        let names: Vec<_> = candidate_markers(specs)
            .iter()
            .map(|p| p.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, [Some("007_beta_b".into()), Some("12_alpha".into())]);
    }

    #[test]
    fn only_markers_that_can_still_appear_are_watched() {
        let tmp = tempfile::tempdir().expect("tmp");
        let specs = tmp.path();
        // state.json written now; tasks last updated just now, two hours ago (with and without
        // a marker), never, and in a form that does not parse.
        let now = jiff::Timestamp::now();
        let old = now.checked_sub(jiff::SignedDuration::from_hours(2)).expect("time");
        let doc = format!(
            r#"{{"active_projects": [
    {{"project_number": 1, "project_name": "fresh", "status": "implementing", "last_updated": "{now}"}},
    {{"project_number": 2, "project_name": "old", "status": "implementing", "last_updated": "{old}"}},
    {{"project_number": 3, "project_name": "old_marked", "status": "implementing", "last_updated": "{old}"}},
    {{"project_number": 4, "project_name": "undated", "status": "implementing"}},
    {{"project_number": 5, "project_name": "odd", "status": "implementing", "last_updated": "yesterday"}}
  ]}}"#
        );
        std::fs::write(specs.join("state.json"), doc).expect("write");
        for d in ["1_fresh", "2_old", "3_old_marked", "4_undated", "5_odd"] {
            std::fs::create_dir_all(specs.join(d)).expect("mkdir");
        }
        std::fs::write(specs.join("3_old_marked").join(marker::MARKER_FILE), "{}").expect("marker");
        let scan = scan_markers(specs);
        let watched: Vec<u32> = scan.watched.expect("watched").iter().map(|(n, _)| *n).collect();
        assert_eq!(watched, [1, 3, 4, 5], "task 2 was last updated long before state.json's last write");
        assert_eq!(scan.markers.len(), 1);
        assert!(may_still_get_a_marker(Some(&old.to_string()), Some(std::time::SystemTime::from(old))));
        assert!(!may_still_get_a_marker(Some(&old.to_string()), Some(std::time::SystemTime::from(now))));
    }

    #[test]
    fn bad_input_allows() {
        for input in [&b""[..], b"not json", b"[1]", b"{}"] {
            assert_eq!(run(input, Path::new("/"), now()).decision, Decision::Allow);
        }
    }

    #[test]
    fn hostile_reason_serialises_as_json() {
        let d = Decision::Block { reason: "a \"quote\"\n\u{0}\u{1b}[31m \\ end".into() };
        let v: Value = serde_json::from_str(&d.to_json()).expect("valid json");
        assert_eq!(v["decision"], "block");
        assert_eq!(Decision::Allow.to_json(), "{}");
        assert_eq!(sanitize("x\u{7}y\nz", 10), "x y\nz");
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;

    #[test]
    fn a_queue_runs_marker_gets_the_queues_instructions_not_task_0s() {
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(tmp.path().join(".git")).expect("git");
        let repo = Repo::discover(tmp.path()).expect("repo");
        let marker: Marker = serde_json::from_str(
            r#"{"session_id": "sess_1_a", "task_number": 0, "reason": "queue run of .kiro/specs/x/tasks.md", "created": "2026-03-16T21:11:23Z"}"#,
        )
        .expect("marker");
        let meta = tmp.path().join(".kiro/specs/x/.postflight-run-tasks/.return-meta.json");
        let reason = block_reason(&repo, &marker, &meta, &Owed::Missing, 1);
        assert!(reason.starts_with("The postflight run of .kiro/specs/x/tasks.md is still pending"), "{reason}");
        assert!(reason.contains(".kiro/specs/x/.postflight-run-tasks/.return-meta.json is missing"), "{reason}");
        assert!(
            !reason.contains("task 0") && !reason.contains("phases_completed") && !reason.contains("specs/state.json"),
            "{reason}"
        );
        assert!(reason.contains("(Stop blocked 1 of 3 for this session.)"), "{reason}");
    }
}
