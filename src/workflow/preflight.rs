//! Stages 1-4: validate the task (exactly once, a startable status, a plan, no live run),
//! move the three files to implementing, write the marker, and build the delegation context.
//! A marker left by a dead run means resume (same session, iteration count continued).

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use crate::atomic::Lock;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::ledger::plan::{self, PlanFile};
use crate::ledger::state::TaskInfo;
use crate::ledger::status::Status;
use crate::ledger::{Change, Snapshot};
use crate::run::{Marker, ITERATION_FILE, MARKER_FILE, METADATA_FILE};
use crate::task_id::TaskId;

/// The task a run works on, with every path it needs.
#[derive(Debug, Clone)]
pub struct TaskRef {
    /// The task number.
    pub number: u32,
    /// `project_name`.
    pub slug: String,
    /// `language` (default `general`).
    pub language: String,
    /// `description`.
    pub description: String,
    /// The task directory, absolute.
    pub dir: PathBuf,
    /// The task directory, repository-relative.
    pub dir_rel: String,
    /// The newest plan, repository-relative.
    pub plan_rel: String,
}

impl TaskRef {
    /// The task of a state.json entry, living in `dir`, with its newest plan.
    pub fn new(ctx: &Context, info: &TaskInfo, slug: String, dir: PathBuf, plan: Option<&std::path::Path>) -> TaskRef {
        TaskRef {
            number: info.number,
            slug,
            language: info.language.clone(),
            description: info.description.clone(),
            dir_rel: ctx.repo.relative(&dir),
            dir,
            plan_rel: plan.map(|p| ctx.repo.relative(p)).unwrap_or_default(),
        }
    }

    /// The task's id (its state.json number).
    pub fn id(&self) -> TaskId {
        TaskId::from(self.number)
    }

    /// The marker file, absolute.
    pub fn marker_path(&self) -> PathBuf {
        self.dir.join(MARKER_FILE)
    }
    /// The metadata file, absolute.
    pub fn metadata_path(&self) -> PathBuf {
        self.dir.join(METADATA_FILE)
    }
    /// The metadata file, repository-relative.
    pub fn metadata_rel(&self) -> String {
        format!("{}/{METADATA_FILE}", self.dir_rel)
    }
    /// The loop's iteration counter, absolute.
    pub fn counter_path(&self) -> PathBuf {
        self.dir.join(ITERATION_FILE)
    }
    /// The agent log, absolute.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(AGENT_LOG_FILE)
    }
}

pub use crate::run::AGENT_LOG_FILE;

/// Inputs of preflight.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Allow a completed task.
    pub force: bool,
    /// The per-invocation timeout recorded in the marker and the delegation (seconds).
    pub timeout: u64,
    /// The agent's own session id, when the tool chooses it (Claude Code adapter).
    pub agent_session_id: Option<String>,
    /// The process that will run the loop (`None` when an LLM session orchestrates).
    pub pid: Option<u32>,
    /// The run's `--max-iterations`, recorded in the marker for `xtask status`.
    pub max_iterations: Option<u32>,
}

/// The result of preflight.
#[derive(Debug)]
pub struct Prepared {
    /// The task.
    pub task: TaskRef,
    /// The session id of the run.
    pub session_id: String,
    /// The agent's session id recorded in the marker.
    pub agent_session_id: Option<String>,
    /// Whether a marker left by an earlier run was picked up.
    pub resumed: bool,
    /// Invocations already made by the earlier run (0 on a fresh run).
    pub iterations_done: u32,
    /// The ledger files changed (and the marker, for a dry run).
    pub changes: Vec<Change>,
    /// The per-task run lock; held until dropped.
    pub run_lock: Option<Lock>,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

/// The per-task lock file, `postflight-task-<task id>.lock` in the git directory: held by a
/// live run for its whole length.
pub fn run_lock_path(ctx: &Context, task: &TaskId) -> PathBuf {
    ctx.repo.git_dir.join(format!("postflight-task-{task}.lock"))
}

/// Stages 1-3. With `dry_run`, computes the changes (ledger and marker) without writing anything.
///
/// # Errors
/// Refusals (unknown or duplicated task, status gate, no plan, a live run) change nothing.
///
/// # Writes
/// `specs/state.json`, `specs/TODO.md`, the plan header, the marker.
pub fn preflight(ctx: &Context, n: u32, opts: &Options, dry_run: bool) -> Result<Prepared> {
    let id = TaskId::from(n);
    let run_lock = if dry_run {
        None
    } else {
        Some(Lock::try_acquire(&run_lock_path(ctx, &id))?.ok_or_else(|| {
            Error::refused(
                format!("task {n} is being implemented by another postflight run"),
                Some("wait for it to finish (its output is in the task's .postflight-agent.log)"),
            )
        })?)
    };
    crate::run::refuse_if_agent_alive(&ctx.repo.root, &ctx.repo.git_dir, &id)?;
    let ledger = ctx.ledger();
    let ts = ctx.timestamp();
    let mut warnings = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut found: Option<(TaskRef, Option<Marker>)> = None;
    let mut chosen_session = String::new();
    let mut index_stamp = None;
    let edit = |snap: &mut Snapshot| -> Result<()> {
        // Under the ledger lock, before state.json is written (run/index.rs).
        index_stamp = crate::run::index::current_stamp(&ctx.repo);
        let (task, previous, stale) = validate(ctx, snap, n, opts.force)?;
        notes.extend(stale);
        let session = previous.as_ref().map(|m| m.session_id.clone()).filter(|s| !s.is_empty());
        let session_id = session.unwrap_or_else(|| ctx.session_id_or_new());
        chosen_session = session_id.clone();
        let entry_has_started = snap.state().entry(n)?.contains_key("started");
        let mut fields = Map::new();
        fields.insert("status".into(), Value::from("implementing"));
        fields.insert("last_updated".into(), Value::from(ts.clone()));
        fields.insert("session_id".into(), Value::from(session_id.clone()));
        // A resumed or re-run task keeps its original start (D16).
        if !entry_has_started {
            fields.insert("started".into(), Value::from(ts.clone()));
        }
        snap.state_mut().merge(n, fields)?;
        if let Some(todo) = snap.todo_mut() {
            if !todo.set_status(n, &Status::Implementing)? {
                notes.push(format!("specs/TODO.md has no entry for task {n}; only state.json records the run"));
            }
        }
        if let Some(plan) = snap.plan(n)? {
            if !plan.set_header_status(&Status::Implementing) {
                notes.push(format!(
                    "{}: no header **Status** line; the plan's status is not tracked",
                    ctx.repo.relative(&plan.path)
                ));
            }
        }
        found = Some((task, previous));
        Ok(())
    };
    let (_, mut changes) = if dry_run { ledger.preview(edit)? } else { ledger.update(edit)? };
    let (task, previous) = found.expect("the edit ran");
    warnings.append(&mut notes);
    let session_id = chosen_session;
    let resumed = previous.is_some();
    if let Some(prev) = &previous {
        if ctx.session_id.as_deref().is_some_and(|s| s != prev.session_id) {
            warnings.push(format!(
                "resuming the interrupted run of session {}; XTASK_SESSION_ID is ignored",
                prev.session_id
            ));
        }
    }
    let agent_session_id =
        opts.agent_session_id.clone().or_else(|| previous.as_ref().and_then(|m| m.agent_session_id.clone()));
    let marker = Marker {
        session_id: session_id.clone(),
        skill: "postflight".into(),
        task_number: n,
        operation: "implement".into(),
        reason: format!(
            "Postflight pending for task {n}: write {} with the run's status, then stop; postflight records the outcome and commits",
            task.metadata_rel()
        ),
        created: previous.as_ref().map(|m| m.created.clone()).filter(|c| !c.is_empty()).unwrap_or_else(|| ts.clone()),
        stop_hook_active: false,
        pid: opts.pid,
        pid_start: opts.pid.and_then(crate::sys::start_time),
        agent_session_id: agent_session_id.clone(),
        timeout: Some(opts.timeout),
        metadata_file: Some(task.metadata_rel()),
        max_iterations: opts.max_iterations,
        run_started: opts.pid.map(|_| crate::run::now_utc()),
        ..Marker::default()
    };
    let iterations_done = if resumed { read_counter(&task) } else { 0 };
    let marker_bytes = crate::ledger::json::to_jq_pretty(&serde_json::to_value(&marker).expect("marker serialises"));
    if dry_run {
        let old = std::fs::read(task.marker_path()).unwrap_or_default();
        changes.push(Change { path: task.marker_path(), old, new: marker_bytes, entry: None });
    } else {
        // Every file a run creates stays out of `git status`, with or without `xtask init`.
        if let Err(e) = crate::git::exclude_transient(&ctx.repo) {
            warnings.push(format!("cannot add the transient files to info/exclude: {e}"));
        }
        std::fs::create_dir_all(&task.dir).map_err(|e| Error::io("create directory", &task.dir, e))?;
        crate::atomic::write(&task.marker_path(), &marker_bytes)?;
        crate::run::register(&ctx.repo.git_dir, &id, &ctx.repo.relative(&task.marker_path()))?;
        crate::run::index::carry(&ctx.repo, index_stamp);
        if !resumed {
            remove_if_exists(&task.counter_path())?;
        }
    }
    Ok(Prepared { task, session_id, agent_session_id, resumed, iterations_done, changes, run_lock, warnings })
}

/// Stage 1: the task exists once, has a usable slug, a startable status and a plan.
/// The third value says why a marker found in the task directory is not resumed.
fn validate(
    ctx: &Context,
    snap: &mut Snapshot,
    n: u32,
    force: bool,
) -> Result<(TaskRef, Option<Marker>, Option<String>)> {
    let info = snap.state().task(n)?;
    if let Some(todo) = snap.todo() {
        todo.block(n)?;
    }
    let specs = ctx.repo.specs_dir();
    let slug = info.slug.clone().filter(|s| !s.is_empty() && s != "null" && !s.contains('/') && !s.contains(".."));
    let dir = match plan::task_dir(&specs, n, slug.as_deref()) {
        Some(d) => d,
        None => match &slug {
            Some(s) => specs.join(format!("{n}_{s}")),
            None => {
                return Err(Error::refused(
                    format!("task {n} has no usable `project_name` in specs/state.json"),
                    Some("give the task a snake_case project_name"),
                ))
            }
        },
    };
    let slug = slug.unwrap_or_else(|| {
        let name = dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        name.split_once('_').map(|(_, s)| s.to_owned()).unwrap_or(name)
    });
    // Only an implement run's marker that git does not track is an interrupted run (resume.rs).
    let (previous, stale) = super::resume::previous_run(&ctx.repo, &dir.join(MARKER_FILE), &TaskId::from(n));
    let resumable = previous.is_some();
    match &info.status {
        Status::Planned | Status::Implementing | Status::Partial => {}
        Status::Completed if force || resumable => {}
        Status::Completed => {
            return Err(Error::refused(
                format!("task {n} is already completed"),
                Some("pass --force to implement it again"),
            ))
        }
        other => {
            let hint = match other {
                Status::NotStarted | Status::Researching | Status::Researched | Status::Planning => {
                    format!("plan the task first: `xtask plan new {n}` writes a plan and moves it to planned (docs/plans.md); its status must be planned, implementing or partial")
                }
                Status::Abandoned => format!("recover the task first: `xtask set-status {n} not_started`"),
                _ => format!("move it to planned first: `xtask set-status {n} planned`"),
            };
            return Err(Error::refused(
                format!("task {n} has status `{other}`, which cannot be implemented"),
                Some(&hint),
            ));
        }
    }
    let plan_path = plan::latest_plan(&dir).ok_or_else(|| {
        Error::refused(
            format!(
                "task {n} has no plan (looked for {0}/plans/implementation-*.md and {0}/plans/{{NN}}_*.md)",
                ctx.repo.relative(&dir)
            ),
            Some(&format!("plan the task first: `xtask plan new {n}` writes one (the format is in docs/plans.md)")),
        )
    })?;
    // A plan that cannot be read is bad input, reported before anything is written.
    PlanFile::load(&plan_path)?;
    Ok((TaskRef::new(ctx, &info, slug, dir, Some(&plan_path)), previous, stale))
}

/// The invocations already made, from the loop's counter file (0 when absent or unreadable).
pub fn read_counter(task: &TaskRef) -> u32 {
    std::fs::read_to_string(task.counter_path()).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

/// Records that invocation `k` started.
///
/// # Errors
/// I/O errors.
pub fn write_counter(task: &TaskRef, k: u32) -> Result<()> {
    crate::atomic::write(&task.counter_path(), format!("{k}\n").as_bytes())
}

/// Removes a file, ignoring that it is already gone.
///
/// # Errors
/// Other I/O errors.
pub fn remove_if_exists(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// The delegation context of one invocation (seed stage 4 shape).
pub fn delegation(
    prepared: &Prepared,
    timeout: u64,
    iteration: u32,
    resume_phase: Option<u64>,
    handoff_path: Option<&str>,
) -> Value {
    let t = &prepared.task;
    json!({
        "session_id": prepared.session_id,
        "delegation_depth": 1,
        "delegation_path": ["orchestrator", "implement", "postflight"],
        "timeout": timeout,
        "task_context": {
            "task_number": t.number,
            "task_name": t.slug,
            "description": t.description,
            "language": t.language,
        },
        "plan_path": t.plan_rel,
        "metadata_file_path": t.metadata_rel(),
        "iteration": iteration,
        "resume_phase": resume_phase,
        "handoff_path": handoff_path,
    })
}
