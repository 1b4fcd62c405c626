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
