//! A run's files. The `.postflight-pending` marker (reference §7.1), read by the workflow, the
//! guards, `status` and `doctor`: written before the agent starts, removed
//! only after a finished postflight. Read leniently (legacy markers lack fields); written with
//! the seed's fields plus `pid`, `pid_start`, `agent_session_id`, `timeout`, `metadata_file`,
//! `max_iterations`, `run_started` and, once the agent runs, `agent_pgid` and `agent_pgid_start` (so that a later run can tell
//! that an agent outlived a killed `xtask`), and `interrupted` when a signal stopped the run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::task_id::TaskId;

pub mod index;

/// The marker file name.
pub const MARKER_FILE: &str = ".postflight-pending";
/// The metadata file the agent writes.
pub const METADATA_FILE: &str = ".return-meta.json";
/// The implement loop's own iteration counter (never shared with a hook, D10).
pub const ITERATION_FILE: &str = ".postflight-loop-guard";
/// The stop hook's block counter (its own file, D10).
pub const HOOK_COUNTER_FILE: &str = ".postflight-hook-blocks";
/// The agent's output log in the task directory (ignored by git, never committed).
pub const AGENT_LOG_FILE: &str = ".postflight-agent.log";
/// The work tree's state before the run, in the task directory.
pub const BASELINE_FILE: &str = ".postflight-baseline";

/// The transient files every repository using postflight must keep out of git.
pub const TRANSIENT_FILES: [&str; 5] = [METADATA_FILE, MARKER_FILE, ITERATION_FILE, HOOK_COUNTER_FILE, AGENT_LOG_FILE];

/// The timeout of a marker that names none: the run's default (owned by the configuration).
pub use crate::config::DEFAULT_TIMEOUT;

/// The `operation` of an implement run's marker.
pub const IMPLEMENT_OPERATION: &str = "implement";

/// Whether a marker is an implement run's.
pub fn is_implement_marker(marker: &Marker) -> bool {
    marker.operation.trim() == IMPLEMENT_OPERATION
}

/// A pending-postflight marker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The start time of `pid` (Linux: clock ticks since boot), which tells it from a later
    /// process that got the same pid; absent in legacy markers and off Linux.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    /// The agent's own session id (Claude Code's `session_id`), when the tool chose it.
    #[serde(default)]
    pub agent_session_id: Option<String>,
    /// Seconds after `created` past which a marker whose process is gone counts as stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// The metadata file the agent must write (repository-relative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_file: Option<String>,
    /// The process group of the agent invocation running now (or last), recorded as soon as it
    /// is spawned; it is the pid of the group's leader (`sh -c <agent>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_pgid: Option<u32>,
    /// The start time of the agent group's leader (see `pid_start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_pgid_start: Option<u64>,
    /// The run's `--max-iterations` (absent in markers of older versions and of `xtask preflight`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u32>,
    /// When the process named by `pid` wrote the marker (wall clock, UTC, not `XTASK_NOW`: it
    /// times the live run for `xtask status`; `created` is the first run's start, kept on resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_started: Option<String>,
    /// Set when a signal (or `xtask cancel`) stopped the run; the run stays resumable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interrupted>,
}

/// How a run was interrupted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interrupted {
    /// `SIGINT`, `SIGTERM`, `SIGHUP`, or `SIGKILL` when `xtask cancel` killed the agent.
    #[serde(default)]
    pub signal: String,
    /// When (UTC, wall clock).
    #[serde(default)]
    pub at: String,
    /// `xtask cancel` when the cancel command stopped the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
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

    /// The task the marker is for (`task_number`, the only id the marker format holds).
    pub fn task(&self) -> TaskId {
        TaskId::from(self.task_number)
    }

    /// Whether the marker is task `task`'s (never for an id that is not a task number).
    pub fn is_task(&self, task: &TaskId) -> bool {
        task.number() == Some(self.task_number)
    }

    /// Whether `session` owns this marker (the tool's session id or the agent's).
    pub fn belongs_to(&self, session: &str) -> bool {
        !session.is_empty() && (self.session_id == session || self.agent_session_id.as_deref() == Some(session))
    }

    /// Whether the marker is stale: its process is gone (or unknown) and it is older than its
    /// timeout (default 7200 s). An unparseable `created` counts as old.
    pub fn is_stale(&self, now: jiff::Timestamp) -> bool {
        if self.run_alive() {
            return false;
        }
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT) as i64;
        match self.created.parse::<jiff::Timestamp>() {
            Ok(created) => now.as_second() - created.as_second() > timeout,
            Err(_) => true,
        }
    }

    /// Whether the `xtask` process that wrote the marker still runs (its pid, and its start
    /// time when recorded: a recycled pid is another process).
    pub fn run_alive(&self) -> bool {
        self.pid.is_some_and(|pid| crate::sys::process_alive(pid, self.pid_start))
    }

    /// The agent's process group, when a process of it still runs.
    pub fn live_agent(&self) -> Option<u32> {
        self.agent_pgid.filter(|g| crate::sys::group_alive(*g, self.agent_pgid_start))
    }
}

/// The current wall-clock time as recorded in `interrupted.at`.
pub fn now_utc() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Records the agent invocation just spawned (its process group and the leader's start time)
/// in the marker at `path`.
///
/// # Errors
/// I/O or JSON errors reading or writing the marker.
///
/// # Writes
/// `path`.
pub fn record_agent(path: &Path, pgid: u32, start: Option<u64>) -> Result<()> {
    let mut m = Marker::load(path)?;
    m.agent_pgid = Some(pgid);
    m.agent_pgid_start = start;
    m.save(path)
}

/// Records in the marker at `path` that the run was interrupted.
///
/// # Errors
/// I/O or JSON errors reading or writing the marker.
///
/// # Writes
/// `path`.
pub fn record_interrupt(path: &Path, interrupted: Interrupted) -> Result<()> {
    let mut m = Marker::load(path)?;
    m.interrupted = Some(interrupted);
    m.save(path)
}

/// The marker of task `task`'s pending run: the one the index names, else one under `specs/`
/// that says it is `task`'s.
pub fn task_marker(root: &Path, git_dir: &Path, specs: &Path, task: &TaskId) -> Option<PathBuf> {
    let indexed = std::fs::read_to_string(entry_path(git_dir, task.as_str())).ok().and_then(|rel| {
        let rel = rel.trim().to_owned();
        let p = root.join(&rel);
        (!rel.is_empty() && !rel.contains("..") && !Path::new(&rel).is_absolute() && p.is_file()).then_some(p)
    });
    indexed.or_else(|| find_markers(specs).into_iter().find(|p| Marker::load(p).is_ok_and(|m| m.is_task(task))))
}

/// How long a group found alive gets to vanish before it counts as running: a group that was
/// just sent SIGKILL (by a test, or by hand) may take a moment to be reaped.
const DYING_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Refuses to start a run of task `task` while the agent of an earlier run of it still runs (its
/// `xtask` was killed with SIGKILL, so nothing stopped the agent): starting a second agent
/// beside it would have two of them edit the same files. Only the marker index is read (a
/// marker that records an agent is always indexed).
///
/// # Errors
/// The refusal, naming the agent's pid and `xtask cancel N`.
pub fn refuse_if_agent_alive(root: &Path, git_dir: &Path, task: &TaskId) -> Result<()> {
    let Ok(rel) = std::fs::read_to_string(entry_path(git_dir, task.as_str())) else { return Ok(()) };
    let rel = rel.trim();
    if rel.is_empty() || rel.contains("..") || Path::new(rel).is_absolute() {
        return Ok(());
    }
    let Ok(m) = Marker::load(&root.join(rel)) else { return Ok(()) };
    let Some(pgid) = m.live_agent() else { return Ok(()) };
    if crate::sys::wait_group_gone(pgid, m.agent_pgid_start, DYING_GRACE) {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "task {task}: the agent of an earlier run is still running (pid {pgid}, process group {pgid}), though the `xtask` that started it is gone; refusing to start a second agent"
        ),
        Some(&format!("stop it with `xtask cancel {task}`, then `xtask implement {task}` resumes the run")),
    ))
}

/// What `xtask cancel` stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    /// The marker of the run.
    pub marker: PathBuf,
    /// The `xtask` process sent SIGTERM, when it was alive.
    pub xtask_pid: Option<u32>,
    /// Whether that process had to be killed (it did not stop within the wait).
    pub xtask_killed: bool,
    /// The agent's process group killed with SIGKILL, when it was still alive after that.
    pub agent_pgid: Option<u32>,
}

/// How long `cancel` waits for a signalled `xtask` to stop its agent and exit.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Stops the live run whose marker is at `path`: SIGTERM to its `xtask` process if that is
/// alive (which kills its agent, records the interruption and exits), a wait, then SIGKILL to
/// the agent's process group if any of it still runs, waiting until it is gone. The marker
/// stays and the ledger is not touched, so `xtask implement N` resumes.
///
/// # Errors
/// A refusal when nothing of the run is alive; an internal error when the group does not die.
///
/// # Writes
/// The marker's `interrupted` (when this command killed the agent) and a line in `log`.
pub fn cancel(path: &Path, log: &Path, task: &TaskId) -> Result<Cancelled> {
    let m = Marker::load(path)?;
    let own = std::process::id();
    // Never signal a process by a pid alone where start times exist: it may be a recycled pid.
    let start_known = m.pid_start.is_some() || crate::sys::own_start_time().is_none();
    let xtask = m.pid.filter(|p| *p != own && start_known && m.run_alive());
    let agent = m.live_agent();
    if xtask.is_none() && agent.is_none() {
        return Err(Error::refused(
            format!(
                "no run of task {task} is live (neither the `xtask` process nor the agent recorded in its marker runs)"
            ),
            Some(&format!("`xtask implement {task}` resumes the run")),
        ));
    }
    let mut out = Cancelled { marker: path.to_path_buf(), xtask_pid: xtask, xtask_killed: false, agent_pgid: None };
    if let Some(pid) = xtask {
        crate::sys::signal_process(pid, crate::sys::Kill::Term);
        if !crate::sys::wait_process_gone(pid, m.pid_start, CANCEL_WAIT) {
            crate::sys::signal_process(pid, crate::sys::Kill::Kill);
            out.xtask_killed = true;
            crate::sys::wait_process_gone(pid, m.pid_start, CANCEL_WAIT);
        }
    }
    // The agent the marker names now (the signalled run may have started another invocation).
    let m = Marker::load(path).unwrap_or(m);
    if let Some(pgid) = m.live_agent() {
        crate::sys::signal_group(pgid, crate::sys::Kill::Kill);
        if !crate::sys::wait_group_gone(pgid, m.agent_pgid_start, CANCEL_WAIT) {
            return Err(Error::io(
                "stop the agent's process group of",
                path,
                std::io::Error::other(format!("process group {pgid} is still running after SIGKILL")),
            ));
        }
        out.agent_pgid = Some(pgid);
        let at = now_utc();
        append_log(log, &format!("xtask cancel killed the agent (process group {pgid}) at {at}"));
        record_interrupt(path, Interrupted { signal: "SIGKILL".into(), at, by: Some("xtask cancel".into()) })?;
    }
    Ok(out)
}

/// Appends one `[postflight] <line>` to the agent log (best effort: the log is informational).
pub fn append_log(log: &Path, line: &str) {
    use std::io::Write as _;
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(f, "\n[postflight] {line}");
    }
}

/// The index of pending markers in the git directory: one file per pending run, named by its
/// task id (or, for a queue format's run, by [`register_entry`]'s name), holding the marker's
/// repository-relative path. Written by preflight, removed by cleanup, read by the stop hook so
/// it never has to scan a large ledger.
pub fn index_dir(git_dir: &Path) -> PathBuf {
    git_dir.join("postflight-pending")
}

/// The index entry named `name`. A task id is always a valid name: one path component that
/// never starts with `.` (dot files are the index's own, such as its stamp).
pub fn entry_path(git_dir: &Path, name: &str) -> PathBuf {
    index_dir(git_dir).join(name)
}

/// Whether `name` can name an index entry (one path component, no dot file).
fn is_entry_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0', '\n'])
}

/// Records task `task`'s marker in the index (entry `<task id>`).
///
/// # Errors
/// I/O errors.
pub fn register(git_dir: &Path, task: &TaskId, marker_rel: &str) -> Result<()> {
    register_entry(git_dir, task.as_str(), marker_rel)
}

/// Records a marker in the index under the entry `name`: a task id ([`register`]), or the name
/// of a run that is not one task's (a queue format's file: `queue-<path>`, never a task id's
/// number, so never a ProofChecker entry).
///
/// # Errors
/// A `name` that is not one plain file name (a refusal); I/O errors.
pub fn register_entry(git_dir: &Path, name: &str, marker_rel: &str) -> Result<()> {
    if !is_entry_name(name) {
        return Err(Error::refused(format!("`{name}` cannot name a marker index entry"), None::<&str>));
    }
    let dir = index_dir(git_dir);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
    crate::atomic::write(&dir.join(name), format!("{marker_rel}\n").as_bytes())
}

/// Removes task `task` from the index (already gone is fine).
///
/// # Errors
/// I/O errors other than "not found".
pub fn unregister(git_dir: &Path, task: &TaskId) -> Result<()> {
    unregister_entry(git_dir, task.as_str())
}

/// Removes the index entry `name` (see [`register_entry`]; already gone, or a name no entry
/// can have, is fine).
///
/// # Errors
/// I/O errors other than "not found".
pub fn unregister_entry(git_dir: &Path, name: &str) -> Result<()> {
    if !is_entry_name(name) {
        return Ok(());
    }
    let path = entry_path(git_dir, name);
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
        // Entries are named by task id; dot files are the index's own (or temp files).
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
        register(&git, &TaskId::from(7), "specs/7_x/.postflight-pending").expect("register");
        register(&git, &TaskId::from(8), "specs/8_gone/.postflight-pending").expect("register");
        assert_eq!(indexed_markers(root, &git), Some(vec![root.join("specs/7_x").join(MARKER_FILE)]));
        unregister(&git, &TaskId::from(7)).expect("unregister");
        unregister(&git, &TaskId::from(7)).expect("twice is fine");
        assert_eq!(indexed_markers(root, &git), Some(Vec::new()));
    }

    #[test]
    fn every_format_s_task_id_and_queue_names_are_entries() {
        let tmp = tempfile::tempdir().expect("tmp");
        let (root, git) = (tmp.path(), tmp.path().join(".git"));
        let specs = root.join("specs");
        for (i, id) in ["2.1", "T012", "task-3", "350"].into_iter().enumerate() {
            let task = TaskId::new(id).expect("id");
            let rel = format!("specs/d{i}/{MARKER_FILE}");
            std::fs::create_dir_all(root.join(format!("specs/d{i}"))).expect("mkdir");
            std::fs::write(root.join(&rel), "{}").expect("w");
            assert_eq!(task_marker(root, &git, &specs, &task), None, "{id}: not registered, and no marker says it is");
            register(&git, &task, &rel).expect("register");
            assert_eq!(std::fs::read_to_string(index_dir(&git).join(id)).expect("entry"), format!("{rel}\n"));
            assert_eq!(task_marker(root, &git, &specs, &task), Some(root.join(&rel)));
            refuse_if_agent_alive(root, &git, &task).expect("no agent recorded");
        }
        register_entry(&git, "queue-specs_001_tasks_md", "specs/d0/.postflight-pending").expect("queue entry");
        assert_eq!(indexed_markers(root, &git).map(|m| m.len()), Some(4), "the queue entry names d0's marker too");
        for bad in ["", ".complete", "a/b", "../x"] {
            assert!(register_entry(&git, bad, "specs/d0/.postflight-pending").is_err(), "{bad:?}");
            unregister_entry(&git, bad).expect("a name no entry has is already gone");
        }
        unregister_entry(&git, "queue-specs_001_tasks_md").expect("unregister");
        unregister(&git, &TaskId::new("T012").expect("id")).expect("unregister");
        assert!(!index_dir(&git).join("T012").exists() && !index_dir(&git).join("queue-specs_001_tasks_md").exists());
        // A marker found by scanning says only a task number.
        std::fs::create_dir_all(specs.join("9_x")).expect("mkdir");
        Marker { task_number: 9, ..Marker::default() }.save(&specs.join("9_x").join(MARKER_FILE)).expect("save");
        let m = Marker::load(&specs.join("9_x").join(MARKER_FILE)).expect("load");
        assert!(
            m.is_task(&TaskId::from(9)) && !m.is_task(&TaskId::new("T9").expect("id")) && m.task() == TaskId::from(9)
        );
        assert_eq!(task_marker(root, &git, &specs, &TaskId::from(9)), Some(specs.join("9_x").join(MARKER_FILE)));
        assert_eq!(task_marker(root, &git, &specs, &TaskId::new("09").expect("id")), None);
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

    #[test]
    fn a_recycled_pid_does_not_keep_a_marker_alive() {
        let t0: jiff::Timestamp = "2026-03-16T21:11:23Z".parse().expect("ts");
        let later = t0 + jiff::SignedDuration::from_secs(99999);
        let me = std::process::id();
        let start = crate::sys::own_start_time();
        let m = Marker { created: t0.to_string(), pid: Some(me), pid_start: start, ..Marker::default() };
        assert!(m.run_alive() && !m.is_stale(later), "this process, recorded with its start time");
        if let Some(start) = start {
            let reused = Marker { pid_start: Some(start + 1), ..m.clone() };
            assert!(!reused.run_alive(), "the same pid with another start time is another process");
            assert!(reused.is_stale(later));
            let agent = Marker { agent_pgid: Some(me), agent_pgid_start: Some(start + 1), ..m.clone() };
            assert_eq!(agent.live_agent(), None, "an agent group whose number was reused is gone");
        }
        let legacy = Marker { pid_start: None, ..m };
        assert!(legacy.run_alive(), "a legacy marker: the pid alone decides, as before");
    }

    #[test]
    fn agent_and_interrupt_records_round_trip() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = tmp.path().join(MARKER_FILE);
        Marker { task_number: 7, ..Marker::default() }.save(&p).expect("save");
        record_agent(&p, 4242, Some(99)).expect("agent");
        let at = now_utc();
        record_interrupt(&p, Interrupted { signal: "SIGTERM".into(), at: at.clone(), by: None }).expect("interrupt");
        let m = Marker::load(&p).expect("load");
        assert_eq!((m.agent_pgid, m.agent_pgid_start), (Some(4242), Some(99)));
        assert_eq!(m.interrupted, Some(Interrupted { signal: "SIGTERM".into(), at, by: None }));
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(text.contains("\"agent_pgid\": 4242") && text.contains("\"interrupted\": {"), "{text}");
        assert!(!text.contains("\"by\""), "absent fields are not written: {text}");
    }
}
