//! Queue runs over any ledger format ([`crate::format::Format`]): `xtask implement <PATH>`.
//! For each queued task, in order: mark it in progress (under the ledger lock, the file re-read
//! inside it, written atomically), one fresh agent invocation with the core's protocol and
//! metadata file, the validation gate, the record and the final mark, and one commit holding
//! the task's changed files (the work tree against the task's start) and only its own share of
//! the format's file. A failed task stops the run (or, for formats that retry, is retried once
//! and then blocked); the same command resumes at it.
//!
//! A run's transient files live in `<file's dir>/.postflight-run-<file stem>/` (a `.postflight-*`
//! name, which git is told to ignore): the marker `.postflight-pending` (registered in the
//! marker index, so the stop hook knows the run), the agent's `.return-meta.json`, the agent log,
//! the task's baseline and the validation logs. A run killed at any point leaves the marker and
//! the task marked in progress; the next run resumes that task from the baseline its
//! predecessor saved.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::agent::progress::Progress;
use crate::agent::{process, Adapter};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::format::{ChangedFile, CommandRun, Format, Mark, OnFailure, Outcome, QueueOptions, Record};
use crate::git::WorkTreeState;
use crate::run::{self as marker, Marker};
use crate::task_id::TaskId;
use crate::workflow::metadata::{self, AgentStatus, MetadataProblem};
use crate::workflow::{config, validate, CommitInfo, ValidationOptions};

/// The baseline file of the task being run (in the run directory).
const TASK_BASELINE: &str = ".postflight-baseline";

/// Inputs of a queue run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The agent command (`sh -c`), resolved ([`crate::workflow::resolve_agent`]).
    pub agent: String,
    /// Per-invocation timeout in seconds.
    pub timeout: u64,
    /// Which tasks.
    pub queue: QueueOptions,
    /// The validation gate's set-up.
    pub validation: ValidationOptions,
    /// `Name <email>` for `Co-authored-by:`.
    pub agent_identity: Option<String>,
}

/// What happened to one task.
#[derive(Debug, Clone)]
pub struct TaskRun {
    /// The task.
    pub id: TaskId,
    /// How it ended.
    pub outcome: Outcome,
    /// Its commit.
    pub commit: Option<CommitInfo>,
    /// The validation commands' records (of the last attempt).
    pub validation: Vec<validate::Record>,
    /// Attempts made (2 after a retry).
    pub attempts: u32,
    /// Whether it was left in progress by a dead run and resumed.
    pub resumed: bool,
    /// The agent's own session id (a Codex thread, a Claude Code session), when known.
    pub agent_session_id: Option<String>,
    /// The agent CLI's final result of each invocation (an adapter's summary: usage, commands,
    /// how it ended), as the core's `--json` `agent_results`.
    pub agent_results: Vec<Value>,
}

/// What a queue run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// `spec`, `phases`, ...
    pub kind: &'static str,
    /// The format's file, repository-relative.
    pub file: String,
    /// The run's session id.
    pub session_id: String,
    /// The tasks run, in order.
    pub tasks: Vec<TaskRun>,
    /// The tasks of the queue not reached.
    pub remaining: Vec<TaskId>,
    /// Whether a dead run's marker was found and its run resumed.
    pub resumed: bool,
    /// Things the user should know.
    pub warnings: Vec<String>,
    /// A task's commit failed (git's or the hook's words); the run stopped there.
    pub commit_error: Option<String>,
    /// The format's intake found these missing or broken: the block is recorded in its file,
    /// no task ran (exit 4).
    pub intake_blocked: Vec<String>,
    /// Tasks not run because they depend on a blocked one.
    pub waiting: Vec<TaskId>,
    /// Tasks an earlier run blocked, not run again (a format that goes on after a failure).
    pub blocked_before: Vec<TaskId>,
}

impl Report {
    /// 0 every task completed (or none was queued), 4 a task failed or was blocked (in this run,
    /// or in an earlier one and still blocked, or one waits on such a task), 5 a commit failed.
    pub fn exit_code(&self) -> u8 {
        if self.commit_error.is_some() {
            crate::workflow::EXIT_COMMIT_FAILED
        } else if !self.intake_blocked.is_empty()
            || !self.waiting.is_empty()
            || !self.blocked_before.is_empty()
            || self.tasks.iter().any(|t| t.outcome != Outcome::Completed)
        {
            4
        } else {
            0
        }
    }

    /// The `--json` object.
    pub fn to_json(&self) -> Value {
        let tasks: Vec<Value> = self
            .tasks
            .iter()
            .map(|t| {
                let (status, reason) = match &t.outcome {
                    Outcome::Completed => ("completed", None),
                    Outcome::Failed(r) => ("failed", Some(r.clone())),
                    Outcome::Blocked(r) => ("blocked", Some(r.clone())),
                };
                json!({
                    "id": t.id.as_str(),
                    "status": status,
                    "reason": reason,
                    "attempts": t.attempts,
                    "resumed": t.resumed,
                    "commit": t.commit,
                    "validation_records": t.validation,
                    "agent_session_id": t.agent_session_id,
                    "agent_results": t.agent_results,
                })
            })
            .collect();
        json!({
            "format": self.kind,
            "file": self.file,
            "session_id": self.session_id,
            "resumed": self.resumed,
            "tasks": tasks,
            "remaining": self.remaining.iter().map(TaskId::as_str).collect::<Vec<_>>(),
            "warnings": self.warnings,
            "commit_error": self.commit_error,
            "intake_blocked": self.intake_blocked,
            "waiting": self.waiting.iter().map(TaskId::as_str).collect::<Vec<_>>(),
            "blocked_before": self.blocked_before.iter().map(TaskId::as_str).collect::<Vec<_>>(),
        })
    }
}

/// The run directory of a format's file.
pub fn run_dir(file: &Path) -> PathBuf {
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    file.parent().unwrap_or(Path::new(".")).join(format!(".postflight-run-{stem}"))
}

/// The name of a format's file's entry in the marker index ([`marker::register_entry`]):
/// `queue-<path>`, never a task number, so never a ProofChecker entry.
fn index_entry(ctx: &Context, file: &Path) -> String {
    let rel = ctx.repo.relative(file);
    let key: String = rel.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("queue-{key}")
}

/// Reads the format's file under the ledger lock, applies `edit` and writes the result
/// atomically (nothing when `edit` refuses or changes nothing); returns the new bytes.
///
/// # Errors
/// The lock cannot be taken; the file cannot be read or written; `edit`'s refusal.
///
/// # Writes
/// The format's file.
pub fn edit_locked(ctx: &Context, file: &Path, edit: impl FnOnce(&[u8]) -> Result<Vec<u8>>) -> Result<Vec<u8>> {
    let _lock = ctx.ledger().lock()?;
    let old = std::fs::read(file).map_err(|e| Error::io("read", file, e))?;
    let new = edit(&old)?;
    if new != old {
        crate::atomic::write(file, &new)?;
    }
    Ok(new)
}

/// The queue's tasks of `format` as `status <PATH>` shows them, with the run state.
///
/// # Errors
/// As [`Format::items`].
pub fn read(ctx: &Context, format: &dyn Format) -> Result<(Vec<crate::format::Item>, Option<Marker>)> {
    let file = format.file();
    let bytes = std::fs::read(&file).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::refused(format!("{} does not exist", ctx.repo.relative(&file)), None)
        } else {
            Error::io("read", &file, e)
        }
    })?;
    let items = format.items(&bytes)?;
    let m = Marker::load(&run_dir(&file).join(marker::MARKER_FILE)).ok();
    Ok((items, m))
}

/// Runs the queue of `format`.
///
/// # Errors
/// Refusals before anything is written (the format's prerequisites, an unknown `--task`,
/// another live run of the same file); I/O and git failures; an interrupt (the task stays in
/// progress and the marker says so: the same command resumes).
///
/// # Writes
/// The format's file, the run directory, the marker index, commits.
pub fn run(ctx: &Context, format: &dyn Format, opts: &Options, progress: &Progress) -> Result<Report> {
    let root = ctx.repo.root.clone();
    let cfg = config::Config::load(&root)?;
    let adapter = Adapter::select(&opts.agent, &cfg);
    let file = format.file();
    let file_rel = ctx.repo.relative(&file);
    let (items, previous) = read(ctx, format)?;
    if let Some(t) = &opts.queue.task {
        if !items.iter().any(|i| &i.id == t) {
            return Err(Error::refused(
                format!("{file_rel}: no task `{t}`"),
                Some("`xtask status <PATH>` lists the tasks and their ids"),
            ));
        }
    }
    refuse_unknown_marks(ctx, format, &items, &opts.queue)?;
    let dir = run_dir(&file);
    let marker_path = dir.join(marker::MARKER_FILE);
    if let Some(m) = &previous {
        if m.run_alive() && m.pid != Some(std::process::id()) {
            return Err(Error::refused(
                format!("{file_rel} is being run by another xtask (pid {})", m.pid.unwrap_or_default()),
                Some("wait for it to finish, or stop it; then the same command resumes"),
            ));
        }
        if let Some(pgid) = m.live_agent() {
            if !crate::sys::wait_group_gone(pgid, m.agent_pgid_start, Duration::from_millis(500)) {
                return Err(Error::refused(
                    format!("the agent of an earlier run of {file_rel} is still running (process group {pgid})"),
                    Some(&format!(
                        "stop that process group (`kill -TERM -- -{pgid}`), then the same command resumes the run"
                    )),
                ));
            }
        }
    }
    // The format's intake (the payload's required sections): a block is recorded in the file,
    // under the lock, and nothing else is done.
    let mut intake = None;
    edit_locked(ctx, &file, |b| match format.intake(b)? {
        Some(blocked) => {
            let bytes = blocked.bytes.clone();
            intake = Some(blocked);
            Ok(bytes)
        }
        None => Ok(b.to_vec()),
    })?;
    if let Some(blocked) = intake {
        return Ok(Report {
            kind: format.kind(),
            file: file_rel,
            session_id: ctx.session_id_or_new(),
            tasks: Vec::new(),
            remaining: Vec::new(),
            resumed: false,
            warnings: Vec::new(),
            commit_error: None,
            intake_blocked: blocked.problems,
            waiting: Vec::new(),
            blocked_before: Vec::new(),
        });
    }
    let queue = format.queue(&items, &opts.queue);
    // The whole queue, past `--max-tasks`: what is left is reported.
    let full = format.queue(&items, &QueueOptions { max_tasks: None, ..opts.queue.clone() });
    let resumed = previous.is_some();
    let session_id = match &previous {
        Some(m) if !m.session_id.is_empty() => m.session_id.clone(),
        _ => ctx.session_id_or_new(),
    };
    let mut report = Report {
        kind: format.kind(),
        file: file_rel.clone(),
        session_id: session_id.clone(),
        tasks: Vec::new(),
        remaining: full.clone(),
        resumed,
        warnings: Vec::new(),
        commit_error: None,
        intake_blocked: Vec::new(),
        waiting: Vec::new(),
        blocked_before: Vec::new(),
    };
    // Formats that go on after a failure keep what an earlier run blocked blocked (its
    // dependants wait), and a run that leaves such a task blocked does not exit 0.
    let retrying = format.on_failure() == OnFailure::RetryOnceThenBlock;
    let prior_blocked: Vec<TaskId> = if retrying {
        items.iter().filter(|i| matches!(i.mark, Mark::Blocked | Mark::Failed)).map(|i| i.id.clone()).collect()
    } else {
        Vec::new()
    };
    if opts.queue.task.is_none() {
        let parents: Vec<&TaskId> = items.iter().filter_map(|i| i.parent.as_ref()).collect();
        report.blocked_before =
            prior_blocked.iter().filter(|b| !queue.contains(b) && !parents.contains(b)).cloned().collect();
        for b in &report.blocked_before {
            report.warnings.push(format!(
                "task {b} is blocked since an earlier run; set its status back to ready to run it again"
            ));
        }
    }
    if queue.is_empty() {
        // What waits on a blocked task is not done either.
        for i in items.iter().filter(|i| full.contains(&i.id)) {
            if let Some(on) = i.depends_on.iter().find(|d| prior_blocked.contains(d)) {
                report.warnings.push(format!("task {} waiting: it depends on blocked task {on}", i.id));
                report.waiting.push(i.id.clone());
            }
        }
        cleanup(ctx, &file);
        return Ok(report);
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
    if let Err(e) = crate::git::exclude_transient(&ctx.repo) {
        report.warnings.push(format!("cannot add the transient patterns to .git/info/exclude: {e}"));
    }
    let metadata_path = dir.join(marker::METADATA_FILE);
    let m = Marker {
        session_id: session_id.clone(),
        skill: "postflight".into(),
        task_number: 0,
        operation: marker::IMPLEMENT_OPERATION.into(),
        reason: format!("queue run of {file_rel}"),
        created: previous.as_ref().map(|p| p.created.clone()).unwrap_or_else(|| ctx.timestamp()),
        pid: Some(std::process::id()),
        pid_start: crate::sys::start_time(std::process::id()),
        timeout: Some(opts.timeout),
        metadata_file: Some(ctx.repo.relative(&metadata_path)),
        run_started: Some(marker::now_utc()),
        ..Marker::default()
    };
    m.save(&marker_path)?;
    marker::register_entry(&ctx.repo.git_dir, &index_entry(ctx, &file), &ctx.repo.relative(&marker_path))?;
    let identity = opts
        .agent_identity
        .clone()
        .or(cfg.agent_identity.clone())
        .or_else(|| adapter.default_identity().map(str::to_owned));
    let mut blocked = prior_blocked;
    let mut k = 0;
    while k < queue.len() {
        let id = queue[k].clone();
        k += 1;
        report.remaining = full.get(k..).unwrap_or_default().to_vec();
        let item = items.iter().find(|i| i.id == id);
        if let Some(on) = item.and_then(|i| i.depends_on.iter().find(|d| blocked.contains(d))) {
            report.warnings.push(format!("task {id} waiting: it depends on blocked task {on}"));
            // What waits on a waiting task waits too.
            blocked.push(id.clone());
            report.waiting.push(id.clone());
            continue;
        }
        let was_in_progress = item.is_some_and(|i| i.mark == Mark::InProgress);
        // A task that failed before has its earlier work in its `failed` commit: a re-run that
        // only validates it again (the fix made elsewhere) changes nothing and is not empty.
        let retried = item.is_some_and(|i| matches!(i.mark, Mark::Failed | Mark::Blocked));
        let allow_empty = opts.validation.allow_empty || retried;
        let task_run = run_task(
            ctx,
            format,
            opts,
            &cfg,
            &adapter,
            &session_id,
            &id,
            resumed && was_in_progress,
            allow_empty,
            progress,
        )?;
        let TaskOutcome { run, record, changed } = task_run;
        // The record and the final mark, under the lock.
        edit_locked(ctx, &file, |b| format.record(b, &id, &record))?;
        let mut trailers = format.trailers(&id);
        trailers.extend(run.validation.iter().map(validate::Record::trailer));
        let mut paths: Vec<PathBuf> = changed.iter().map(|c| PathBuf::from(&c.path)).collect();
        paths.push(PathBuf::from(&file_rel));
        // Logs the format keeps outside the run directory are the task's evidence: committed
        // with it, even where the project ignores `*.log`.
        let mut force = Vec::new();
        if let Some(logs) = format.log_dir(&id) {
            // Every attempt's logs (a retry's first attempt included).
            let mut names: Vec<PathBuf> = std::fs::read_dir(&logs)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            names.sort();
            for log in names {
                let rel = ctx.repo.relative(&log);
                paths.push(PathBuf::from(&rel));
                force.push(rel);
            }
        }
        let req = crate::git::CommitRequest {
            task: Some(id.clone()),
            scoping: Some(format.scoping()),
            paths,
            subject: format.subject(&id, &run.outcome),
            body: record.summary.clone().filter(|s| !s.trim().is_empty()),
            session_id: session_id.clone(),
            trailers,
            agent_identity: identity.clone(),
            force,
            ..crate::git::CommitRequest::default()
        };
        let mut run = run;
        match crate::git::commit(&ctx.repo, &req) {
            Ok(crate::git::CommitOutcome::Committed { id: cid, paths, .. }) => {
                run.commit = Some(CommitInfo { id: cid, subject: req.subject.clone(), paths });
            }
            Ok(crate::git::CommitOutcome::NothingToCommit { .. }) => {
                report.warnings.push(format!("`{}`: nothing to commit", req.subject));
            }
            Err(e) => {
                report.commit_error = Some(e.to_string());
            }
        }
        let _ = std::fs::remove_file(dir.join(TASK_BASELINE));
        let failed = run.outcome != Outcome::Completed;
        report.tasks.push(run);
        if report.commit_error.is_some() {
            break;
        }
        if failed {
            match format.on_failure() {
                OnFailure::Stop => break,
                OnFailure::RetryOnceThenBlock => blocked.push(id),
            }
        }
    }
    if report.commit_error.is_none() {
        cleanup(ctx, &file);
    }
    Ok(report)
}

/// Refuses a run that would take a task whose marker (or status) the format does not know: its
/// meaning is the user's, and the run would overwrite it. `check <PATH>` reports the same.
///
/// # Errors
/// A refusal naming the file, the line, the marker and what to do.
fn refuse_unknown_marks(
    ctx: &Context,
    format: &dyn Format,
    items: &[crate::format::Item],
    queue: &QueueOptions,
) -> Result<()> {
    let file = format.file();
    let Ok(bytes) = std::fs::read(&file) else { return Ok(()) };
    let wanted = format.queue(items, &QueueOptions { max_tasks: None, ..queue.clone() });
    let unknown: Vec<crate::format::Finding> = format
        .check(&bytes)
        .into_iter()
        .filter(|f| matches!(f.rule, "unknown-marker" | "unknown-status"))
        .filter(|f| f.task.as_ref().is_some_and(|t| wanted.contains(t)))
        .collect();
    let Some(first) = unknown.first() else { return Ok(()) };
    let rel = ctx.repo.relative(&file);
    let line = first.line.map(|l| format!(":{l}")).unwrap_or_default();
    let more = if unknown.len() > 1 { format!(" (and {} more)", unknown.len() - 1) } else { String::new() };
    Err(Error::refused(
        format!("{rel}{line}: {}{more}", first.message),
        Some(&format!("write one of the known markers (or statuses) for it; `xtask check {rel}` lists every one")),
    ))
}

/// Removes the run's marker (first), its index entry and the agent's metadata file.
fn cleanup(ctx: &Context, file: &Path) {
    let dir = run_dir(file);
    let _ = std::fs::remove_file(dir.join(marker::MARKER_FILE));
    let _ = marker::unregister_entry(&ctx.repo.git_dir, &index_entry(ctx, file));
    let _ = std::fs::remove_file(dir.join(marker::METADATA_FILE));
    let _ = std::fs::remove_file(dir.join(TASK_BASELINE));
}

/// What one task's run produced, before its record and commit.
struct TaskOutcome {
    run: TaskRun,
    record: Record,
    changed: Vec<ChangedFile>,
}

/// The work tree at the task's start: the one a dead run of this task saved, else now (saved).
fn task_baseline(root: &Path, dir: &Path, id: &TaskId, resumed: bool) -> Result<WorkTreeState> {
    let path = dir.join(TASK_BASELINE);
    if resumed {
        let saved = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        if let Some(v) = saved.filter(|v| v["task"].as_str() == Some(id.as_str())) {
            if let Some(s) = WorkTreeState::from_json(&v["dirty"]) {
                return Ok(s);
            }
        }
    }
    let state = WorkTreeState::read(root)?;
    let value = json!({"task": id.as_str(), "dirty": state.to_json()});
    crate::atomic::write_unsynced(&path, &crate::ledger::json::to_jq_pretty(&value))?;
    Ok(state)
}

#[allow(clippy::too_many_arguments)]
fn run_task(
    ctx: &Context,
    format: &dyn Format,
    opts: &Options,
    cfg: &config::Config,
    adapter: &Adapter,
    session_id: &str,
    id: &TaskId,
    resumed: bool,
    allow_empty: bool,
    progress: &Progress,
) -> Result<TaskOutcome> {
    let root = &ctx.repo.root;
    let file = format.file();
    let dir = run_dir(&file);
    let before = task_baseline(root, &dir, id, resumed)?;
    if resumed {
        progress.note(&format!("task {id}: resuming (left in progress by a run that is gone)"));
    }
    let bytes = edit_locked(ctx, &file, |b| format.set_mark(b, id, Mark::InProgress))?;
    let base = short_head(root);
    let mut commands = if opts.validation.no_validate {
        Vec::new()
    } else {
        cfg.validation_commands("general", &opts.validation.validate)
    };
    if !opts.validation.no_validate {
        for c in format.validation_commands(&bytes, id) {
            if !commands.contains(&c) {
                commands.push(c);
            }
        }
    }
    let command_env = format.validation_env(&bytes, id);
    let metadata_path = dir.join(marker::METADATA_FILE);
    let log_dir = format.log_dir(id).unwrap_or_else(|| dir.join(validate::VALIDATION_DIR));
    let log_dir_rel = ctx.repo.relative(&log_dir);
    let mut attempt_no = 0u32;
    let mut failure: Option<String> = None;
    let mut records: Vec<validate::Record> = Vec::new();
    let mut log_k = 1usize;
    let mut summary: Option<String> = None;
    let mut agent_session: Option<String> = None;
    let mut agent_results: Vec<Value> = Vec::new();
    let outcome = loop {
        attempt_no += 1;
        let _ = std::fs::remove_file(&metadata_path);
        let prompt = prompt(ctx, format, &bytes, id, &metadata_path, failure.as_deref())?;
        let delegation = json!({
            "session_id": session_id,
            "delegation_depth": 1,
            "delegation_path": ["orchestrator", "implement", "postflight"],
            "timeout": opts.timeout,
            "task_context": {"task_id": id.as_str(), "format": format.kind(), "file": ctx.repo.relative(&file)},
            "plan_path": ctx.repo.relative(&file),
            "metadata_file_path": ctx.repo.relative(&metadata_path),
            "iteration": attempt_no,
            "resume_phase": null,
            "handoff_path": null,
        });
        let env = vec![
            ("XTASK_DELEGATION".to_owned(), delegation.to_string()),
            ("XTASK_METADATA_FILE".to_owned(), metadata_path.to_string_lossy().into_owned()),
            ("XTASK_TASK_NUMBER".to_owned(), id.to_string()),
            ("XTASK_TASK_ID".to_owned(), id.to_string()),
            ("XTASK_SESSION_ID".to_owned(), session_id.to_owned()),
            ("XTASK_ITERATION".to_owned(), attempt_no.to_string()),
        ];
        progress.start(&format!("{} task {id}: agent (attempt {attempt_no})", format.label()));
        let Invoked { finished, session: agent_sid, error: agent_error, result: agent_result } =
            invoke_agent(ctx, adapter, opts, &dir, session_id, attempt_no, prompt, env, progress)?;
        agent_results.extend(agent_result);
        agent_session = agent_sid.or(agent_session);
        let meta = metadata::read(&metadata_path);
        let result = match (&meta, finished.timed_out) {
            (_, true) => Err(format!("timed out after {0}s (--timeout {0}); killed its process group", opts.timeout)),
            (_, false) if agent_error.is_some() => Err(format!("agent error: {}", agent_error.unwrap_or_default())),
            (Ok(m), _) => match m.status {
                AgentStatus::Implemented => Ok(()),
                AgentStatus::Blocked => Err(format!("the agent reported blocked: {}", m.reason())),
                AgentStatus::Partial => Err(format!("the agent reported partial: {}", m.reason())),
                AgentStatus::Failed | AgentStatus::InProgress => {
                    Err(format!("the agent reported `{}`: {}", m.reported, m.reason()))
                }
            },
            (Err(MetadataProblem::Missing), _) => Err(match finished.exit_code {
                Some(0) => format!("the agent wrote no metadata file ({})", ctx.repo.relative(&metadata_path)),
                Some(c) => format!("the agent exited {c} without writing its metadata file"),
                None => "the agent was killed by a signal".to_owned(),
            }),
            (Err(MetadataProblem::Invalid(why)), _) => Err(format!("the agent's metadata file is invalid: {why}")),
        };
        if let Ok(m) = &meta {
            summary = Some(m.summary.clone()).filter(|s| !s.trim().is_empty());
        }
        progress.finish(&match &result {
            Ok(()) => "agent reported implemented".to_owned(),
            Err(e) => e.clone(),
        });
        let result = result.and_then(|()| {
            if commands.is_empty() {
                return Ok(());
            }
            let changed = changed_files(root, &before, &file, &dir, &log_dir);
            if changed.is_empty() && !allow_empty {
                return Err(validate::EMPTY_REASON.to_owned());
            }
            let gate = validate::Gate {
                root,
                task: id,
                log_dir: &log_dir,
                log_dir_rel: &log_dir_rel,
                commands: &commands,
                env: &command_env,
                timeout: cfg.validation_timeout(),
            };
            match gate.run(log_k, &|| ctx.timestamp(), progress) {
                Ok(attempt) => {
                    log_k += attempt.records.len();
                    records = attempt.records.clone();
                    if attempt.passed() {
                        Ok(())
                    } else {
                        Err(attempt.reason().unwrap_or_else(|| "validation failed".into()))
                    }
                }
                Err(e) => Err(format!("the validation commands could not run: {e}")),
            }
        });
        // An interrupt stops the run here: the task stays in progress, resumable.
        process::stop_if_interrupted(Some(&dir.join(marker::MARKER_FILE)), &dir.join(marker::AGENT_LOG_FILE))?;
        match result {
            Ok(()) => break Outcome::Completed,
            Err(why) if format.on_failure() == OnFailure::RetryOnceThenBlock && attempt_no == 1 => {
                progress.note(&format!("task {id}: {why}; retrying once"));
                // The failed attempt is part of the task's log (an append-only format keeps its
                // commands and diagnostics); the retry's record follows it.
                let first = Record {
                    outcome: Outcome::Failed(why.clone()),
                    session_id: session_id.to_owned(),
                    agent_session_id: agent_session.clone(),
                    at: ctx.timestamp(),
                    summary: summary.clone(),
                    commands: command_runs(&records),
                    changed: changed_files(root, &before, &file, &dir, &log_dir),
                    attempt: attempt_no,
                    base: base.clone(),
                };
                edit_locked(ctx, &file, |b| format.record(b, id, &first))?;
                records.clear();
                failure = Some(why);
            }
            Err(why) if format.on_failure() == OnFailure::RetryOnceThenBlock => break Outcome::Blocked(why),
            Err(why) => break Outcome::Failed(why),
        }
    };
    let changed = changed_files(root, &before, &file, &dir, &log_dir);
    let commands_run = command_runs(&records);
    let record = Record {
        outcome: outcome.clone(),
        session_id: session_id.to_owned(),
        agent_session_id: agent_session,
        at: ctx.timestamp(),
        summary,
        commands: commands_run,
        changed: changed.clone(),
        attempt: attempt_no,
        base,
    };
    let run = TaskRun {
        id: id.clone(),
        outcome,
        commit: None,
        validation: records,
        attempts: attempt_no,
        resumed,
        agent_session_id: record.agent_session_id.clone(),
        agent_results,
    };
    Ok(TaskOutcome { run, record, changed })
}

/// HEAD's short hash (`None` before the first commit).
fn short_head(root: &Path) -> Option<String> {
    let out = crate::git::cli_run(root, &["rev-parse", "--short=12", "--verify", "-q", "HEAD"], None, &[0]).ok()?;
    Some(String::from_utf8_lossy(&out).trim().to_owned()).filter(|s| !s.is_empty())
}

/// The gate's records as the format's [`CommandRun`]s.
fn command_runs(records: &[validate::Record]) -> Vec<CommandRun> {
    records
        .iter()
        .map(|r| CommandRun {
            command: r.command.clone(),
            exit_code: if r.timed_out { None } else { r.exit_code },
            duration_ms: r.duration_ms,
            finished_at: r.finished.clone(),
            output_tail: r.output_tail.clone(),
            log: Some(r.log.clone()),
        })
        .collect()
}

/// The files the task changed: dirty now and clean or different at its start, other than the
/// format's own file (committed scoped), the run directory and the validation logs.
fn changed_files(root: &Path, before: &WorkTreeState, file: &Path, dir: &Path, logs: &Path) -> Vec<ChangedFile> {
    let Ok(now) = WorkTreeState::read(root) else { return Vec::new() };
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).to_string_lossy().into_owned();
    let (file_rel, dir_rel, logs_rel) = (rel(file), format!("{}/", rel(dir)), format!("{}/", rel(logs)));
    before
        .changed_until(&now)
        .into_iter()
        .filter(|p| {
            *p != file_rel && !p.starts_with(&dir_rel) && !p.starts_with(&logs_rel) && !crate::git::is_transient(p)
        })
        .map(|path| {
            let (added, removed) = numstat(root, &path);
            ChangedFile { path, added, removed }
        })
        .collect()
}

/// Lines added and removed in `rel` against HEAD (an untracked file: all its lines added).
fn numstat(root: &Path, rel: &str) -> (usize, usize) {
    let out = crate::git::cli::Git::new(root, &["diff", "--numstat", "HEAD", "--", rel])
        .run(&[0])
        .map(|o| String::from_utf8_lossy(&o).into_owned())
        .unwrap_or_default();
    let mut words = out.split_whitespace();
    match (words.next().and_then(|a| a.parse().ok()), words.next().and_then(|r| r.parse().ok())) {
        (Some(a), Some(r)) => (a, r),
        _ => {
            let n = std::fs::read(root.join(rel)).map(|b| b.iter().filter(|c| **c == b'\n').count()).unwrap_or(0);
            (n, 0)
        }
    }
}

/// The agent's prompt: the format's task text, then the protocol.
fn prompt(
    ctx: &Context,
    format: &dyn Format,
    bytes: &[u8],
    id: &TaskId,
    metadata_path: &Path,
    failure: Option<&str>,
) -> Result<String> {
    let mut p = format!("You are implementing one task of {} in this repository.\n\n", format.label());
    p.push_str(&format.prompt(bytes, id)?);
    if let Some(f) = failure {
        p.push_str(&format!(
            "\nThe previous attempt at this task failed: {f}\nFix the cause (not the check) and report again.\n"
        ));
    }
    let file = ctx.repo.relative(&format.file());
    let meta = ctx.repo.relative(metadata_path);
    p.push_str(&format!(
        "
Work on this task only. Postflight marks the task in {file} (in progress, then completed or
failed) and commits its files: do not change its markers or notes in {file}, and do not commit.
After you finish, postflight runs the project's validation commands itself; only their exit codes
count. Before stopping, write the metadata file {meta} (JSON):
{{\"status\": \"implemented\" | \"partial\" | \"failed\" | \"blocked\", \"summary\": \"2-5 sentences\",
 \"artifacts\": [{{\"type\": \"implementation\", \"path\": \"src/...\", \"summary\": \"...\"}}],
 \"errors\": [{{\"message\": \"...\", \"recoverable\": true}}]}}
"
    ));
    Ok(p)
}

/// How one agent invocation ended ([`invoke_agent`]).
struct Invoked {
    finished: process::Finished,
    /// The agent's own session id.
    session: Option<String>,
    /// The error the agent CLI reported.
    error: Option<String>,
    /// Its final result object.
    result: Option<Value>,
}

/// One fresh agent invocation for a task through the run's adapter (a session id it chooses is
/// recorded in the marker first; one it reveals is recorded as it arrives), in the repository
/// root, its output in the run's agent log. Returns how it ended, the agent's session id, the
/// error the agent CLI reported, if any, and its final result object. The one place a queue run couples to the agent machinery.
#[allow(clippy::too_many_arguments)]
fn invoke_agent(
    ctx: &Context,
    adapter: &Adapter,
    opts: &Options,
    dir: &Path,
    session_id: &str,
    attempt: u32,
    stdin: String,
    env: Vec<(String, String)>,
    progress: &Progress,
) -> Result<Invoked> {
    let marker_path = dir.join(marker::MARKER_FILE);
    let chosen = adapter.new_session_id();
    if let Some(id) = &chosen {
        let mut m = Marker::load(&marker_path)?;
        m.agent_session_id = Some(id.clone());
        m.save(&marker_path)?;
    }
    let spawn = adapter.spawn(chosen.as_deref());
    let watch = std::sync::Arc::new(adapter.watch(chosen.as_deref()));
    let log_path = dir.join(marker::AGENT_LOG_FILE);
    let on_line: process::LineSink = {
        let (watch, marker_path) = (std::sync::Arc::clone(&watch), marker_path.clone());
        std::sync::Arc::new(move |line: &str| {
            if let Some(id) = watch.line(line) {
                if let Ok(mut m) = Marker::load(&marker_path) {
                    m.agent_session_id = Some(id);
                    let _ = m.save(&marker_path);
                }
            }
        })
    };
    let inv = process::Invocation {
        spawn: &spawn,
        cwd: &ctx.repo.root,
        stdin,
        env,
        timeout: Duration::from_secs(opts.timeout),
        log_path: &log_path,
        marker: Some(marker_path),
        on_line: Some(on_line),
    };
    let header = process::LogHeader {
        time: marker::now_utc(),
        session: session_id.to_owned(),
        run: std::process::id(),
        iteration: attempt,
        max_iterations: 2,
        command: spawn.display(),
    };
    process::log_start(&log_path, &header);
    let started = std::time::Instant::now();
    let finished = process::run(&inv, progress);
    let conclusion = finished.as_ref().map(|f| adapter.conclude(f, &watch)).unwrap_or_default();
    if let Some(r) = &conclusion.result {
        marker::append_log(&log_path, &format!("agent result: {r}"));
    }
    process::log_end(&log_path, attempt, finished.as_ref().ok(), started.elapsed());
    let session = chosen.or(conclusion.session);
    Ok(Invoked { finished: finished?, session, error: conclusion.error, result: conclusion.result })
}

/// `xtask check <PATH>`: the format's findings; with `fix`, the fixable ones repaired first
/// (under the ledger lock, written atomically). Returns the findings (after the fix) and the
/// file's bytes before and after.
///
/// # Errors
/// The file cannot be read, locked or written; a fix that refuses (the file does not parse).
///
/// # Writes
/// The format's file, with `fix` when a finding is fixable.
pub fn check(ctx: &Context, format: &dyn Format, fix: bool) -> Result<(Vec<crate::format::Finding>, Vec<u8>, Vec<u8>)> {
    let file = format.file();
    if !file.is_file() {
        return Err(Error::refused(
            format!("{} does not exist", ctx.repo.relative(&file)),
            Some("pass a spec directory holding tasks.md, or a phase document"),
        ));
    }
    let before = std::fs::read(&file).map_err(|e| Error::io("read", &file, e))?;
    let after = if fix && format.check(&before).iter().any(|f| f.fixable) {
        let mut old = Vec::new();
        let new = edit_locked(ctx, &file, |b| {
            old = b.to_vec();
            format.fix(b)
        })?;
        return Ok((format.check(&new), old, new));
    } else {
        before.clone()
    };
    Ok((format.check(&after), before, after))
}

/// `xtask check <PATH> --against REV`: the format's append-only findings of the file now
/// against its version at `rev` ([`Format::check_against`]), after its own [`Format::check`].
///
/// # Errors
/// A refusal when `rev` does not name a commit holding the file; the file cannot be read or
/// does not parse.
pub fn check_against(ctx: &Context, format: &dyn Format, rev: &str) -> Result<Vec<crate::format::Finding>> {
    let file = format.file();
    let rel = ctx.repo.relative(&file);
    let now = std::fs::read(&file).map_err(|e| Error::io("read", &file, e))?;
    if rev.starts_with('-') || rev.contains(['\n', '\0']) {
        return Err(Error::refused(format!("`{rev}` is not a revision"), Some("pass a commit, e.g. --against HEAD")));
    }
    let spec = format!("{rev}:{rel}");
    let old =
        crate::git::cli::Git::new(&ctx.repo.root, &["cat-file", "blob", &spec]).check(&[0])?.map_err(|failure| {
            Error::refused(
                format!("{rel} is not in revision `{rev}`: {}", failure.stderr),
                Some("pass a commit that holds the file, e.g. --against HEAD"),
            )
        })?;
    let mut findings = format.check(&now);
    findings.extend(format.check_against(&old, &now)?);
    Ok(findings)
}
