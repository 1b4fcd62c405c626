//! The ledger-format seam: what a run over a queue of tasks needs from a ledger that is not
//! (only) `specs/state.json`. A format reads its file, lists its tasks with their marks, moves a
//! task's mark, records what a run did for it, writes the agent's prompt, names the commit, and
//! scopes its shared file to one task's lines for that task's commit. It never writes a file
//! itself: every method takes the bytes read under the ledger lock and returns new bytes, which
//! the caller writes atomically (so a refusal changes nothing).
//!
//! The formats: spec directories with `tasks.md` (seed 003, Kiro, Spec Kit), phase documents
//! (seed 002), and `handoff/payload.json` (seeds 000 and 001). The ProofChecker ledger
//! (state.json, TODO.md, plans) is `crate::ledger`; its task-scoped commit goes through the same
//! [`crate::git::Scoping`] seam.

pub mod lines;
pub mod phases;
pub mod spec_dir;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::task_id::TaskId;

pub mod payload;

/// Where a task stands, in any format's own markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mark {
    /// Not started (`[ ]`, `[NOT STARTED]`, `ready`, `pending`).
    Pending,
    /// Being worked on (`[🚧]`, `[-]`, `[IN PROGRESS]`, `in-progress`).
    InProgress,
    /// Done (`[✅]`, `[x]`, `[COMPLETED]`, `completed`).
    Completed,
    /// Tried and failed (`[❌]`, or `[ ]` with a note; `[PARTIAL]`).
    Failed,
    /// Cannot go on (`[BLOCKED]`, `blocked`).
    Blocked,
    /// Never run (`[⏭️]` with a reason).
    Skipped,
}

impl Mark {
    /// Whether a run has nothing left to do for a task in this state.
    pub fn is_final(self) -> bool {
        matches!(self, Mark::Completed | Mark::Skipped)
    }

    /// The mark's word in reports and `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Pending => "pending",
            Mark::InProgress => "in_progress",
            Mark::Completed => "completed",
            Mark::Failed => "failed",
            Mark::Blocked => "blocked",
            Mark::Skipped => "skipped",
        }
    }
}

/// One task as its format lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Its id (`1.1`, `T012`, `3`, `task-3`).
    pub id: TaskId,
    /// Its title, one line.
    pub title: String,
    /// Its mark.
    pub mark: Mark,
    /// The task it is a sub-task of.
    pub parent: Option<TaskId>,
    /// Tasks that must be completed before it.
    pub depends_on: Vec<TaskId>,
    /// Optional tasks (Kiro's `- [ ]*`) run only when asked.
    pub optional: bool,
    /// The 1-based line of the file where it is written, when it is a line.
    pub line: Option<usize>,
    /// The group it belongs to in reports (a Spec Kit phase, a plan step).
    pub group: Option<String>,
}

/// How a task's run ended, as the format records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The agent finished and the validation gate passed.
    Completed,
    /// The agent failed or validation failed; the reason, one line.
    Failed(String),
    /// The task cannot go on (a retry spent, a missing input); the reason, one line.
    Blocked(String),
}

impl Outcome {
    /// `complete`, `failed` or `blocked`, as commit subjects write it.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Completed => "complete",
            Outcome::Failed(_) => "failed",
            Outcome::Blocked(_) => "blocked",
        }
    }
}

/// One command the run itself ran for a task (a validation command), with measured values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRun {
    /// The command exactly as run.
    pub command: String,
    /// Its exit code (`None`: killed or timed out).
    pub exit_code: Option<i32>,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// When it finished (RFC 3339, UTC).
    pub finished_at: String,
    /// The end of its output.
    pub output_tail: String,
    /// The repository-relative path of its full log, committed with the task.
    pub log: Option<String>,
}

/// One file the task's run changed (from the work tree, not from the agent's claims).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    /// Repository-relative path.
    pub path: String,
    /// Lines added.
    pub added: usize,
    /// Lines removed.
    pub removed: usize,
}

/// What a run did for one task, handed to [`Format::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// How it ended.
    pub outcome: Outcome,
    /// The run's session id.
    pub session_id: String,
    /// The agent's own session id, when known.
    pub agent_session_id: Option<String>,
    /// When it ended (RFC 3339, UTC).
    pub at: String,
    /// The agent's summary (from its metadata file).
    pub summary: Option<String>,
    /// The commands the run ran, in order.
    pub commands: Vec<CommandRun>,
    /// The files the task changed.
    pub changed: Vec<ChangedFile>,
    /// The attempt this was (1, or 2 after an automatic retry).
    pub attempt: u32,
    /// The commit the task's work started from (HEAD when it was marked in progress, short), when
    /// there is one: the task's own commit (which holds the record) is the next one on top of it.
    pub base: Option<String>,
}

/// What to do when a task fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop the run at the failed task (exit 4); running again resumes at it.
    Stop,
    /// Retry once with the failure in the prompt; then mark it blocked and go on with the next
    /// task that does not depend on it (exit 4 at the end).
    RetryOnceThenBlock,
}

/// Which tasks a run takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueOptions {
    /// Only this task (and, for a parent, its open children).
    pub task: Option<TaskId>,
    /// At most this many tasks.
    pub max_tasks: Option<usize>,
    /// Include optional tasks.
    pub include_optional: bool,
}

/// One problem `xtask check <PATH>` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's stable id (`duplicate-id`, `unknown-marker`, ...).
    pub rule: &'static str,
    /// Whether it fails the check (else a warning).
    pub error: bool,
    /// The 1-based line, when one line is at fault.
    pub line: Option<usize>,
    /// The task concerned.
    pub task: Option<TaskId>,
    /// What is wrong.
    pub message: String,
    /// Whether [`Format::fix`] repairs it.
    pub fixable: bool,
}

/// What a format's intake found missing or broken before a run, and the file with the block
/// recorded (the run writes `bytes`, changes nothing else and stops with exit 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The file with the block recorded.
    pub bytes: Vec<u8>,
    /// Each missing or broken item, one line each.
    pub problems: Vec<String>,
}

/// A ledger format for queue runs (`xtask implement <PATH>`, `status <PATH>`, `check <PATH>`).
/// Every method is pure over the bytes given; the run writes what it returns.
pub trait Format: Send + Sync + fmt::Debug {
    /// `spec`, `phases` or `payload`.
    fn kind(&self) -> &'static str;

    /// The file the format's tasks share (tasks.md, the phase document, payload.json), absolute.
    /// It is written under the ledger lock and committed task-scoped ([`Format::scoping`]).
    fn file(&self) -> PathBuf;

    /// How commit subjects name the ledger (`spec auth-flow`, `phases`, `payload`).
    fn label(&self) -> String;

    /// Checks what must exist before a run (the spec's documents, the payload's sections) and
    /// parses `bytes` into the task list, in file order.
    ///
    /// # Errors
    /// A refusal (exit 2, nothing changed) naming what is missing or does not parse, with the
    /// file and line.
    fn items(&self, bytes: &[u8]) -> Result<Vec<Item>>;

    /// Checks what the stage requires before it starts and that is recorded in the file when it
    /// is missing (the handoff payload's intake): `Some` with the file to write and the
    /// problems, the run then stopping with exit 4; `None` when the run may start.
    ///
    /// # Errors
    /// The file does not parse.
    fn intake(&self, bytes: &[u8]) -> Result<Option<Blocked>> {
        let _ = bytes;
        Ok(None)
    }

    /// The tasks a run takes, in order, of `items` (what [`Format::items`] returned).
    fn queue(&self, items: &[Item], opts: &QueueOptions) -> Vec<TaskId>;

    /// `bytes` with task `id` moved to `mark`, in the file's own style; nothing else changes.
    ///
    /// # Errors
    /// The task is not in the file; the file does not parse.
    fn set_mark(&self, bytes: &[u8], id: &TaskId, mark: Mark) -> Result<Vec<u8>>;

    /// `bytes` with what the run did for task `id` recorded (its final mark, notes, log
    /// entries), appended where the format keeps such records; nothing it does not own changes.
    ///
    /// # Errors
    /// The task is not in the file; the file does not parse.
    fn record(&self, bytes: &[u8], id: &TaskId, record: &Record) -> Result<Vec<u8>>;

    /// The agent's prompt for task `id` (the task, its details and what it references).
    ///
    /// # Errors
    /// The task is not in the file; a referenced document cannot be read.
    fn prompt(&self, bytes: &[u8], id: &TaskId) -> Result<String>;

    /// Validation commands of task `id` written in the file itself (run after the configured
    /// ones).
    fn validation_commands(&self, bytes: &[u8], id: &TaskId) -> Vec<String> {
        let _ = (bytes, id);
        Vec::new()
    }

    /// The environment of [`Format::validation_commands`]: variables to set, by command (a
    /// payload's `environment`).
    fn validation_env(&self, bytes: &[u8], id: &TaskId) -> Vec<(String, Vec<(String, String)>)> {
        let _ = (bytes, id);
        Vec::new()
    }

    /// The first line of task `id`'s commit (`spec auth: task 1.1 complete`).
    fn subject(&self, id: &TaskId, outcome: &Outcome) -> String;

    /// The trailers naming the task (`Spec-Task: 1.1`), written after `Session:`.
    fn trailers(&self, id: &TaskId) -> Vec<String>;

    /// How a task's commit takes the shared file: HEAD's version with only this task's lines
    /// (or entries) from the work tree.
    fn scoping(&self) -> Arc<dyn crate::git::Scoping>;

    /// What to do when a task fails.
    fn on_failure(&self) -> OnFailure {
        OnFailure::Stop
    }

    /// The file's problems.
    fn check(&self, bytes: &[u8]) -> Vec<Finding>;

    /// `bytes` with every fixable finding repaired (unchanged when there is none).
    ///
    /// # Errors
    /// The file does not parse.
    fn fix(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        Ok(bytes.to_vec())
    }

    /// What `xtask check <PATH> --against REV` reports: `old` is the file at REV, `new` the file
    /// now (an append-only format: log entries of REV missing or changed). Nothing by default.
    ///
    /// # Errors
    /// Either version does not parse.
    fn check_against(&self, old: &[u8], new: &[u8]) -> Result<Vec<Finding>> {
        let _ = (old, new);
        Ok(Vec::new())
    }

    /// Where task `id`'s validation logs go when they are committed with it (absolute; the
    /// payload's `handoff/validation/<id>/`), instead of the run's transient directory.
    fn log_dir(&self, id: &TaskId) -> Option<PathBuf> {
        let _ = id;
        None
    }
}

/// What opening a format may need besides its path (the payload's `--stage`, its
/// `meta.lastUpdatedBy`, its timestamps).
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// `--stage 5-implement|4-implement` (the payload).
    pub stage: Option<String>,
    /// The agent command, named in what the format records.
    pub agent: Option<String>,
    /// The moment `XTASK_NOW` fixes for every timestamp, if any.
    pub now: Option<jiff::Timestamp>,
}

/// The formats `--format` names.
pub const FORMATS: [&str; 3] = ["spec", "phases", "payload"];

/// The format of the ledger at `path` (absolute, inside the repository at `root`): `forced`
/// (`--format spec|phases|...`) when given, else by what `path` is: a directory (or its
/// `tasks.md`) is a spec directory, a markdown file with `Phase N:` headings a phase document.
///
/// # Errors
/// A refusal when `path` does not exist, `forced` names no format, or nothing fits.
pub fn open(root: &Path, path: &Path, forced: Option<&str>) -> Result<Box<dyn Format>> {
    open_with(root, path, forced, &OpenOptions::default())
}

/// [`open`] with the options a format may need; a `.json` file (`handoff/payload.json`) is a
/// handoff payload.
///
/// # Errors
/// As [`open`]; a `--stage` that is not an implement stage; a payload that is not JSON.
pub fn open_with(root: &Path, path: &Path, forced: Option<&str>, opts: &OpenOptions) -> Result<Box<dyn Format>> {
    let is_payload = path.is_file() && path.extension().is_some_and(|e| e == "json");
    if forced == Some("payload") || (forced.is_none() && is_payload) {
        let stage = opts.stage.as_deref().map(payload::Stage::parse).transpose()?;
        let agent = opts.agent.as_deref().unwrap_or("agent");
        return Ok(Box::new(payload::Payload::open(root, path, stage, agent, opts.now)?));
    }
    if opts.stage.is_some() {
        return Err(Error::refused("--stage applies to a handoff payload (handoff/payload.json)", None));
    }
    if !path.exists() {
        return Err(Error::refused(
            format!("{} does not exist", path.display()),
            Some("pass a spec directory (holding tasks.md) or a phase document"),
        ));
    }
    let spec_dir = |p: &Path| -> Box<dyn Format> {
        let dir = if p.is_dir() { p.to_path_buf() } else { p.parent().unwrap_or(p).to_path_buf() };
        Box::new(spec_dir::SpecDir::new(root, &dir))
    };
    match forced {
        Some("spec") => Ok(spec_dir(path)),
        Some("phases") if path.is_file() => Ok(Box::new(phases::PhaseDoc::new(root, path))),
        Some("phases") => Err(Error::refused(
            format!("{} is not a file", path.display()),
            Some("a phase document is a markdown file"),
        )),
        Some(other) => Err(Error::refused(
            format!("unknown format `{other}`"),
            Some(&format!("--format takes one of: {}", FORMATS.join(", "))),
        )),
        None if path.is_dir() || path.file_name().is_some_and(|n| n == spec_dir::TASKS_FILE) => Ok(spec_dir(path)),
        None if std::fs::read(path).is_ok_and(|b| phases::looks_like_phase_doc(&b)) => {
            Ok(Box::new(phases::PhaseDoc::new(root, path)))
        }
        None => Err(Error::refused(
            format!(
                "{}: neither a spec directory (holding tasks.md) nor a phase document (`## Phase N:` headings)",
                path.display()
            ),
            Some("pass a spec directory, a phase document or a handoff payload (a .json file), or force the reading with --format spec|phases|payload"),
        )),
    }
}
