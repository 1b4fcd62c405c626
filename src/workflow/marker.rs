//! The `.postflight-pending` marker (reference §7.1): written before the agent starts, removed
//! only after a finished postflight. Read leniently (legacy markers lack fields); written with
//! the seed's fields plus `pid`, `agent_session_id`, `timeout` and `metadata_file`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The marker file name.
pub const MARKER_FILE: &str = ".postflight-pending";
/// The metadata file the agent writes.
pub const METADATA_FILE: &str = ".return-meta.json";
/// The implement loop's own iteration counter (never shared with a hook, D10).
pub const ITERATION_FILE: &str = ".postflight-loop-guard";
/// The stop hook's block counter (its own file, D10).
pub const HOOK_COUNTER_FILE: &str = ".postflight-hook-blocks";

/// A pending-postflight marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// The session that owns the run.
    #[serde(default)]
    pub session_id: String,
    /// Who wrote it (`postflight`; the original wrote `skill-implementer`).
    #[serde(default)]
    pub skill: String,
    /// The task.
    #[serde(default)]
    pub task_number: u32,
    /// `implement`.
    #[serde(default)]
    pub operation: String,
    /// What is owed, in words.
    #[serde(default)]
    pub reason: String,
    /// When the run started.
    #[serde(default)]
    pub created: String,
    /// Kept for compatibility with the original; always false when written by postflight.
    #[serde(default)]
    pub stop_hook_active: bool,
    /// The process running the implement loop (absent in legacy markers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The agent's own session id (Claude Code's `session_id`), when the tool chose it.
    #[serde(default)]
    pub agent_session_id: Option<String>,
    /// Seconds after `created` past which a marker whose process is gone counts as stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// The metadata file the agent must write (repository-relative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_file: Option<String>,
}

impl Marker {
    /// Reads a marker file.
    ///
    /// # Errors
    /// I/O errors; `Json` when it does not parse.
    pub fn load(path: &Path) -> Result<Marker> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::json(path, &e))
    }

    /// Writes the marker atomically.
    ///
    /// # Errors
    /// I/O errors.
    ///
    /// # Writes
    /// `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let value = serde_json::to_value(self).expect("a marker always serialises");
        crate::atomic::write(path, &crate::ledger::json::to_jq_pretty(&value))
    }

    /// Whether `session` owns this marker (the tool's session id or the agent's).
    pub fn belongs_to(&self, session: &str) -> bool {
        !session.is_empty() && (self.session_id == session || self.agent_session_id.as_deref() == Some(session))
    }

    /// Whether the marker is stale: its process is gone (or unknown) and it is older than its
    /// timeout (default 7200 s). An unparseable `created` counts as old.
    pub fn is_stale(&self, now: jiff::Timestamp) -> bool {
        if self.pid.is_some_and(process_alive) {
            return false;
        }
        let timeout = self.timeout.unwrap_or(7200) as i64;
        match self.created.parse::<jiff::Timestamp>() {
            Ok(created) => now.as_second() - created.as_second() > timeout,
            Err(_) => true,
        }
    }
}

/// Whether a process with this id exists (Unix `kill(pid, 0)`).
pub fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        if pid <= 0 {
            return false;
        }
        // SAFETY: signal 0 performs only the existence and permission check.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// The index of pending markers in the git directory: one file per task, named by its number,
/// holding the marker's repository-relative path. Written by preflight, removed by cleanup, read
/// by the stop hook so it never has to scan a large ledger.
pub fn index_dir(git_dir: &Path) -> PathBuf {
    git_dir.join("postflight-pending")
}

/// Records task `task`'s marker in the index.
///
/// # Errors
/// I/O errors.
pub fn register(git_dir: &Path, task: u32, marker_rel: &str) -> Result<()> {
    let dir = index_dir(git_dir);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
    crate::atomic::write(&dir.join(task.to_string()), format!("{marker_rel}\n").as_bytes())
}

/// Removes task `task` from the index (already gone is fine).
///
/// # Errors
/// I/O errors other than "not found".
pub fn unregister(git_dir: &Path, task: u32) -> Result<()> {
    let path = index_dir(git_dir).join(task.to_string());
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", &path, e)),
    }
}

/// The markers the index names that exist, or `None` when this repository has no index (no
/// postflight run ever started here).
pub fn indexed_markers(root: &Path, git_dir: &Path) -> Option<Vec<PathBuf>> {
    let entries = std::fs::read_dir(index_dir(git_dir)).ok()?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        // Entries are named by task number; dot files are the index's own (or temp files).
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(rel) = std::fs::read_to_string(e.path()) else { continue };
        let rel = rel.trim();
        if rel.is_empty() || rel.contains("..") || Path::new(rel).is_absolute() {
            continue;
        }
        let p = root.join(rel);
        if p.is_file() && !out.contains(&p) {
            out.push(p);
        }
    }
    out.sort();
    Some(out)
}

/// Every marker file under `specs/`: `specs/*/.postflight-pending` and the legacy global
/// `specs/.postflight-pending`. Archived task directories are not searched.
pub fn find_markers(specs: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let global = specs.join(MARKER_FILE);
    if global.is_file() {
        out.push(global);
    }
    if let Ok(entries) = std::fs::read_dir(specs) {
        for e in entries.flatten() {
            let p = e.path().join(MARKER_FILE);
            if e.file_name() != "archive" && p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_names_existing_markers_only() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (root, git) = (tmp.path(), tmp.path().join(".git"));
        assert_eq!(indexed_markers(root, &git), None, "no index yet");
        std::fs::create_dir_all(root.join("specs/7_x")).expect("mkdir");
        std::fs::write(root.join("specs/7_x").join(MARKER_FILE), "{}").expect("w");
        register(&git, 7, "specs/7_x/.postflight-pending").expect("register");
        register(&git, 8, "specs/8_gone/.postflight-pending").expect("register");
        assert_eq!(indexed_markers(root, &git), Some(vec![root.join("specs/7_x").join(MARKER_FILE)]));
        unregister(&git, 7).expect("unregister");
        unregister(&git, 7).expect("twice is fine");
        assert_eq!(indexed_markers(root, &git), Some(Vec::new()));
    }

    #[test]
    fn legacy_marker_reads_and_ownership_and_staleness() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = tmp.path().join(MARKER_FILE);
        std::fs::write(&p, r#"{"session_id": "sess_1", "skill": "skill-implementer", "task_number": 980, "operation": "implement", "reason": "r", "created": "2026-03-16T21:11:23Z", "stop_hook_active": false}"#).expect("write");
        let m = Marker::load(&p).expect("load");
        assert!(m.belongs_to("sess_1") && !m.belongs_to("other") && !m.belongs_to(""));
        let t0: jiff::Timestamp = "2026-03-16T21:11:23Z".parse().expect("ts");
        assert!(!m.is_stale(t0));
        assert!(m.is_stale(t0 + jiff::SignedDuration::from_secs(7201)));
        let live = Marker { pid: Some(std::process::id()), ..m.clone() };
        assert!(!live.is_stale(t0 + jiff::SignedDuration::from_secs(99999)));
        live.save(&p).expect("save");
        assert_eq!(Marker::load(&p).expect("reload"), live);
    }
}
