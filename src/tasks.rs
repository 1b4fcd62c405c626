//! The task commands over the ledger: `init`, `task new`, `set-status` and the `status`
//! report. Each edit moves state.json, TODO.md and the plan header together in one locked
//! transaction; state.json is the source of truth.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::ledger::plan::{self, PlanFile, ResumePoint};
use crate::ledger::state::{self, StateFile};
use crate::ledger::status::Status;
use crate::ledger::todo::TodoFile;
use crate::ledger::{write_changes, Change};

/// Parses a task number as typed by a user: plain decimal digits, no sign, no leading zero,
/// no fraction (`350.0` and `0350` are refused: they silently matched other tasks in the original).
///
/// # Errors
/// A refusal naming the input.
pub fn parse_task_number(input: &str) -> Result<u32> {
    let ok =
        !input.is_empty() && input.bytes().all(|b| b.is_ascii_digit()) && !(input.len() > 1 && input.starts_with('0'));
    match input.parse::<u32>() {
        Ok(n) if ok && n > 0 => Ok(n),
        _ => Err(Error::refused(
            format!("`{input}` is not a task number"),
            Some("task numbers are positive integers written without leading zeros, e.g. 350"),
        )),
    }
}

pub use crate::run::TRANSIENT_FILES;

/// What `init` did.
#[derive(Debug, Default, Serialize)]
pub struct InitReport {
    /// Files created (repository-relative).
    pub created: Vec<String>,
    /// Files left alone because they exist.
    pub kept: Vec<String>,
    /// Entries added to `.gitignore`.
    pub ignored: Vec<String>,
    /// What to do next, one command line each (commit the ledger, write a task and its plan,
    /// install the hooks).
    pub next_steps: Vec<String>,
}

/// Creates `specs/state.json` and `specs/TODO.md` when missing (never overwriting) and adds the
/// transient files to `.gitignore`.
///
/// # Errors
/// I/O errors.
///
/// # Writes
/// `specs/state.json`, `specs/TODO.md`, `.gitignore`.
pub fn init(ctx: &Context) -> Result<InitReport> {
    let ledger = ctx.ledger();
    let _lock = ledger.lock()?;
    let mut report = InitReport::default();
    let specs = ctx.repo.specs_dir();
    std::fs::create_dir_all(&specs).map_err(|e| Error::io("create directory", &specs, e))?;
    // When one of the two files exists, the new one continues its numbering.
    let next = match (StateFile::load(&ledger.state_path()), TodoFile::load(&ledger.todo_path())) {
        (Ok(state), _) => {
            state.next_project_number()?.unwrap_or(1).max(state.max_number()?.map_or(1, |n| u64::from(n) + 1))
        }
        (_, Ok(todo)) => todo.next_project_number().map_or(1, |(_, n)| n),
        _ => 1,
    };
    let state = serde_json::json!({ "next_project_number": next, "active_projects": [] });
    let todo = format!("---\nnext_project_number: {next}\n---\n\n# TODO\n\n## Tasks\n");
    let mut changes = Vec::new();
    for (path, bytes) in [
        (ledger.state_path(), crate::ledger::json::to_jq_pretty(&state)),
        (ledger.todo_path(), todo.as_bytes().to_vec()),
    ] {
        if path.exists() {
            report.kept.push(ctx.repo.relative(&path));
        } else {
            report.created.push(ctx.repo.relative(&path));
            changes.push(Change { path, old: Vec::new(), new: bytes, entry: None });
        }
    }
    let gitignore = ctx.repo.root.join(".gitignore");
    let old = match std::fs::read(&gitignore) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io("read", &gitignore, e)),
    };
    let text = String::from_utf8_lossy(&old).into_owned();
    let present: Vec<&str> = text.lines().map(str::trim).collect();
    let missing: Vec<&str> = TRANSIENT_FILES.iter().copied().filter(|f| !present.contains(f)).collect();
    if !missing.is_empty() {
        let mut new = text.clone();
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        new.push_str("# postflight transient files (never committed)\n");
        for f in &missing {
            new.push_str(f);
            new.push('\n');
            report.ignored.push((*f).to_owned());
        }
        changes.push(Change { path: gitignore, old, new: new.into_bytes(), entry: None });
    }
    write_changes(&changes)?;
    let mut to_commit: Vec<&str> = Vec::new();
    if !report.created.is_empty() {
        to_commit.push("specs");
    }
    if !report.ignored.is_empty() {
        to_commit.push(".gitignore");
    }
    if !to_commit.is_empty() {
        report
            .next_steps
            .push(format!("git add {0} && git commit -m 'postflight: the task ledger' -- {0}", to_commit.join(" ")));
    }
    report
        .next_steps
        .push("xtask task new \"<title>\" --plan --phase \"<first phase>\"   (the plan format: docs/plans.md)".into());
    report.next_steps.push("xtask hooks install   (the git pre-commit check and the Claude Code stop hook)".into());
    report
        .next_steps
        .push("xtask implement <N> --agent '<command>'   (or `claude`; `xtask doctor` checks the setup)".into());
    Ok(report)
}

/// The inputs of `task new`.
#[derive(Debug, Clone, Default)]
pub struct NewTask {
    /// The title.
    pub title: String,
    /// `language`, default `general`.
    pub language: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `priority`.
    pub priority: Option<String>,
}

/// Creates a task: allocates the next number (the highest of both files'
/// `next_project_number` and the largest number in use + 1), prepends the state.json entry,
/// inserts the TODO.md entry under `## Tasks` and bumps `next_project_number` in both files.
///
/// # Errors
/// An empty title; ledger errors.
///
/// # Writes
/// `specs/state.json`, `specs/TODO.md`.
pub fn new_task(ctx: &Context, input: &NewTask) -> Result<(u32, Vec<Change>)> {
    let title = checked_title(&input.title)?;
    let ts = ctx.timestamp();
    ctx.ledger().update(|snap| add_task(snap, input, title, &ts))
}

/// The edit of `task new` on a snapshot: allocates the number, adds the entry to both files.
/// `title` is the checked, trimmed title.
///
/// # Errors
/// A task number past `u32`.
pub(crate) fn add_task(snap: &mut crate::ledger::Snapshot, input: &NewTask, title: &str, ts: &str) -> Result<u32> {
    let from_state = snap.state().next_project_number()?.unwrap_or(1);
    let from_todo = snap.todo().and_then(TodoFile::next_project_number).map(|(_, n)| n).unwrap_or(1);
    let in_use = snap.state().max_number()?.map(|n| u64::from(n) + 1).unwrap_or(1);
    let in_todo =
        snap.todo().map(|t| t.headings().iter().map(|(_, n)| u64::from(*n) + 1).max().unwrap_or(1)).unwrap_or(1);
    let n = from_state.max(from_todo).max(in_use).max(in_todo);
    let number = u32::try_from(n).map_err(|_| Error::refused(format!("next task number {n} is too large"), None))?;
    let slug = state::slugify(title);
    let language = input.language.clone().unwrap_or_else(|| "general".into());
    let mut entry = Map::new();
    entry.insert("project_number".into(), Value::from(number));
    entry.insert("project_name".into(), Value::from(slug));
    entry.insert("status".into(), Value::from("not_started"));
    entry.insert("language".into(), Value::from(language.clone()));
    if let Some(p) = &input.priority {
        entry.insert("priority".into(), Value::from(p.clone()));
    }
    entry.insert("title".into(), Value::from(title));
    if let Some(d) = &input.description {
        entry.insert("description".into(), Value::from(d.clone()));
    }
    entry.insert("created".into(), Value::from(ts));
    entry.insert("last_updated".into(), Value::from(ts));
    let state = snap.state_mut();
    state.prepend(Value::Object(entry))?;
    state.set_next_project_number(n + 1)?;
    if let Some(todo) = snap.todo_mut() {
        let mut lines = vec![
            format!("### {number}. {title}"),
            "- **Effort**: TBD".to_owned(),
            "- **Status**: [NOT STARTED]".to_owned(),
            format!("- **Language**: {language}"),
        ];
        if let Some(p) = &input.priority {
            lines.push(format!("- **Priority**: {p}"));
        }
        if let Some(d) = &input.description {
            lines.push(String::new());
            lines.push(format!("**Description**: {}", d.replace('\n', " ")));
        }
        todo.insert_task_with_priority(&lines, input.priority.as_deref());
        todo.set_next_project_number(n + 1);
    }
    Ok(number)
}

/// The title of a new task, trimmed: one non-empty line.
///
/// # Errors
/// A refusal for an empty title or one with control characters.
pub(crate) fn checked_title(title: &str) -> Result<&str> {
    let title = title.trim();
    if title.is_empty() || title.chars().any(char::is_control) {
        return Err(Error::refused("a task title must be one non-empty line", None));
    }
    Ok(title)
}

/// Options of `set-status`.
#[derive(Debug, Clone)]
pub struct SetStatus {
    /// The task.
    pub task: u32,
    /// The new status.
    pub status: Status,
    /// Skip the lifecycle check.
    pub force: bool,
}

/// What a status change did.
#[derive(Debug, Clone)]
pub struct StatusChange {
    /// The status before.
    pub from: Status,
    /// Files changed.
    pub changes: Vec<Change>,
    /// Things the user should know (a file without the task, a plan without a header status).
    pub warnings: Vec<String>,
}

/// Moves task `task` to `status` in all three files: state.json `status`, `last_updated` and the
/// lifecycle timestamp, the TODO.md marker and the plan header.
///
/// # Errors
/// `TaskNotFound`, `DuplicateTask`, `Transition` (unless forced), ledger errors.
///
/// # Writes
/// `specs/state.json`, `specs/TODO.md`, the newest plan of the task.
pub fn set_status(ctx: &Context, opts: &SetStatus) -> Result<StatusChange> {
    let ts = ctx.timestamp();
    let ((from, warnings), changes) =
        ctx.ledger().update(|snap| apply_status(snap, opts.task, &opts.status, opts.force, &ts, &[]))?;
    Ok(StatusChange { from, changes, warnings })
}

/// Applies a status change to a snapshot (shared by `set-status` and the workflow stages).
/// `extra` fields are merged into the state entry after the status fields.
///
/// # Errors
/// As [`set_status`].
pub fn apply_status(
    snap: &mut crate::ledger::Snapshot,
    task: u32,
    status: &Status,
    force: bool,
    ts: &str,
    extra: &[(&str, Value)],
) -> Result<(Status, Vec<String>)> {
    let info = snap.state().task(task)?;
    let from = info.status.clone();
    if !force && !from.can_move_to(status) {
        return Err(Error::Transition { task, from: from.to_string(), to: status.to_string() });
    }
    let mut warnings = Vec::new();
    // Check TODO.md for an ambiguous entry before changing anything.
    if let Some(todo) = snap.todo() {
        todo.block(task)?;
    }
    snap.state_mut().merge(task, status_fields(status, ts, extra))?;
    // Warnings name files relative to the work tree root, as git does.
    let root = snap.specs_dir().parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let rel = move |p: &std::path::Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
    let todo_path = snap.todo().map(|t| rel(&t.path));
    match snap.todo_mut() {
        Some(todo) => {
            if !todo.set_status(task, status)? {
                warnings.push(format!(
                    "{}: no entry for task {task}; only state.json was updated",
                    todo_path.unwrap_or_default()
                ));
            }
        }
        None => warnings.push("specs/TODO.md does not exist; only state.json was updated".into()),
    }
    if let Some(plan) = snap.plan(task)? {
        if !plan.set_header_status(status) {
            warnings.push(format!("{}: no header **Status** line; plan left unchanged", rel(&plan.path)));
        }
    }
    Ok((from, warnings))
}

/// The fields a status change merges into a state entry, in the order the original workflow's
/// jq updates list them, because new keys are appended in this order (jq's `. + {...}`):
/// `status`, `last_updated`, `session_id` (when given in `extra`), the lifecycle timestamp
/// (`started`, `completed`, ...), then the other `extra` fields. Preflight's
/// `{status, last_updated, session_id, started}` and completion's
/// `{status, last_updated, completed}` followed by `completion_summary` both come out as jq writes them.
pub fn status_fields(status: &Status, ts: &str, extra: &[(&str, Value)]) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("status".into(), Value::from(status.as_str()));
    fields.insert("last_updated".into(), Value::from(ts));
    for (k, v) in extra.iter().filter(|(k, _)| *k == "session_id") {
        fields.insert((*k).to_owned(), v.clone());
    }
    if let Some(field) = status.timestamp_field() {
        fields.insert(field.into(), Value::from(ts));
    }
    for (k, v) in extra.iter().filter(|(k, _)| *k != "session_id") {
        fields.insert((*k).to_owned(), v.clone());
    }
    fields
}

/// The tasks a task depends on, in the order listed: its `dependencies` and `depends_on` lists
/// (real ledgers use both names: `"dependencies": [524]`, `"depends_on": [980]`), each item a
/// number or a string ending in one (`"980"`, `"#980"`, `"Task 980"`); other items are ignored.
pub fn dependencies(entry: &Map<String, Value>) -> Vec<u32> {
    let mut out = Vec::new();
    for key in ["dependencies", "depends_on"] {
        let Some(list) = entry.get(key).and_then(Value::as_array) else { continue };
        for item in list {
            let n = match item {
                Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                Value::String(s) => s.trim().trim_start_matches(|c: char| !c.is_ascii_digit()).parse().ok(),
                _ => None,
            };
            if let Some(n) = n.filter(|n| *n > 0 && !out.contains(n)) {
                out.push(n);
            }
        }
    }
    out
}

/// One row of the `status` table.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRow {
    /// The task number.
    pub number: u32,
    /// state.json's status word.
    pub status: String,
    /// The language.
    pub language: String,
    /// The title.
    pub title: String,
    /// Phases done.
    pub phases_done: Option<usize>,
    /// Phases total.
    pub phases_total: Option<usize>,
    /// The implement run: live, interrupted, or the last outcome's reason (`None`: nothing to say).
    pub run: Option<RunState>,
}

/// The detail view of one task: what each file says.
#[derive(Debug, Clone, Serialize)]
pub struct TaskDetail {
    /// The task number.
    pub number: u32,
    /// The slug.
    pub slug: Option<String>,
    /// The title.
    pub title: String,
    /// The language.
    pub language: String,
    /// state.json's status.
    pub state_status: String,
    /// TODO.md's marker, when the entry and its status line exist.
    pub todo_marker: Option<String>,
    /// The newest plan (repository-relative).
    pub plan: Option<String>,
    /// The plan header's marker.
    pub plan_marker: Option<String>,
    /// The plan's phases, in file order.
    pub phases: Vec<PhaseRow>,
    /// How many phases are done (completed, skipped, deferred, ...).
    pub phases_done: usize,
    /// Where a run would resume (phase id); `None` when every phase is done or there is no plan.
    pub resume_phase: Option<String>,
    /// Whether the three files agree.
    pub consistent: bool,
    /// A pending postflight marker, if one exists (repository-relative path).
    pub marker: Option<String>,
    /// The `session_id` recorded in state.json.
    pub session_id: Option<String>,
    /// The artifacts' paths.
    pub artifacts: Vec<String>,
    /// The implement run, as the `status` table's RUN column says it.
    pub run: Option<RunState>,
    /// What the last recorded run ended in (`completed`, `partial`, `failed`, `blocked`,
    /// `review`), read from state.json.
    pub last_outcome: Option<String>,
    /// That outcome's reason (`failure_reason`, `blocked_reason`, `review_reason`).
    pub reason: Option<String>,
    /// The agent log of the task's runs, when it exists (repository-relative).
    pub log: Option<String>,
    /// The command that resumes the run (`xtask implement N`), when there is one to resume and
    /// no live run holds it.
    pub resume_command: Option<String>,
}

/// One phase of a plan, for the detail view.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseRow {
    /// The id as written (`3A`, `6.5`, `B`).
    pub id: String,
    /// The title.
    pub title: String,
    /// The marker word, when the phase has one.
    pub marker: Option<String>,
    /// Whether the phase counts as done.
    pub done: bool,
}

/// A task's title: the entry's own `title`, else its TODO.md heading, else its slug in words.
fn title_of(info: &state::TaskInfo, todo: Option<&TodoFile>) -> String {
    if info.has_title {
        return info.title.clone();
    }
    todo.and_then(|t| t.title(info.number)).unwrap_or_else(|| info.title.clone())
}

/// Every task of state.json with its plan progress and run state, in file order.
///
/// # Errors
/// Ledger read errors.
pub fn list(ctx: &Context) -> Result<Vec<TaskRow>> {
    list_filtered(ctx, &[])
}

/// Like [`list`], only the tasks whose status is one of `statuses` (all when empty). A status
/// is a word or marker as `set-status` takes it, or any word the ledger itself uses.
///
/// # Errors
/// An unknown status word no task has (`UnknownStatus`, with the closest known word); ledger
/// read errors.
pub fn list_filtered(ctx: &Context, statuses: &[String]) -> Result<Vec<TaskRow>> {
    let snap = ctx.ledger().snapshot()?;
    let specs = ctx.repo.specs_dir();
    let tasks = snap.state().entries()?.iter().filter_map(|e| Some((state::task_info(e)?, e))).collect::<Vec<_>>();
    let mut wanted: Vec<Status> = Vec::new();
    for word in statuses {
        let status = match Status::parse_user(word) {
            Ok(s) => s,
            Err(e) => {
                let raw = word
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase()
                    .replace([' ', '-'], "_");
                let used = Status::from_state(&raw);
                if !tasks.iter().any(|(t, _)| t.status == used) {
                    return Err(e);
                }
                used
            }
        };
        wanted.push(status);
    }
    let now = jiff::Timestamp::now();
    Ok(tasks
        .into_iter()
        .filter(|(t, _)| wanted.is_empty() || wanted.contains(&t.status))
        .map(|(t, e)| {
            let progress = plan::find_plan(&specs, t.number, t.slug.as_deref())
                .and_then(|p| PlanFile::load(&p).ok())
                .map(|p| p.progress())
                .filter(|(_, total)| *total > 0);
            TaskRow {
                title: title_of(&t, snap.todo()),
                run: e.as_object().and_then(|o| run_state(&specs, &t, o, now)),
                number: t.number,
                status: t.status.to_string(),
                language: t.language,
                phases_done: progress.map(|p| p.0),
                phases_total: progress.map(|p| p.1),
            }
        })
        .collect())
}

/// A task's implement run as `xtask status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunState {
    /// The `xtask` process of the marker runs.
    Running {
        /// Its pid.
        pid: u32,
        /// The invocation running now (the loop's counter: invocations started).
        iteration: u32,
        /// The run's `--max-iterations`, when its marker records it.
        max_iterations: Option<u32>,
        /// Seconds since this process started the run, when its marker records when.
        elapsed_seconds: Option<u64>,
    },
    /// A marker whose `xtask` process is gone: the run was killed or interrupted.
    Interrupted {
        /// The signal recorded, when a handler could record one (none after SIGKILL).
        signal: Option<String>,
        /// The agent's process group when a process of it still runs.
        agent_pgid: Option<u32>,
    },
    /// A marker without a process: `xtask preflight` started the run for an orchestrating
    /// session, and `xtask postflight N` is owed.
    Pending {
        /// The session that owns it.
        session_id: String,
    },
    /// The last run failed (state.json `failure_reason`).
    Failed {
        /// Why.
        reason: String,
    },
    /// The last run was blocked (`blocked_reason`).
    Blocked {
        /// Why.
        reason: String,
    },
    /// The last run stopped for the user's review (`review_reason`).
    Review {
        /// Why.
        reason: String,
    },
}

impl RunState {
    /// The one word of the state: `running`, `interrupted`, `pending`, `failed`, `blocked`, `review`.
    pub fn word(&self) -> &'static str {
        match self {
            RunState::Running { .. } => "running",
            RunState::Interrupted { .. } => "interrupted",
            RunState::Pending { .. } => "pending",
            RunState::Failed { .. } => "failed",
            RunState::Blocked { .. } => "blocked",
            RunState::Review { .. } => "review",
        }
    }

    /// The reason of an outcome.
    pub fn reason(&self) -> Option<&str> {
        match self {
            RunState::Failed { reason } | RunState::Blocked { reason } | RunState::Review { reason } => Some(reason),
            _ => None,
        }
    }
}

impl std::fmt::Display for RunState {
    /// `running (pid 4242, iteration 2/5, 3m12s)`, `interrupted`, `failed: <reason>`, ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunState::Running { pid, iteration, max_iterations, elapsed_seconds } => {
                write!(f, "running (pid {pid}, iteration {iteration}")?;
                if let Some(k) = max_iterations {
                    write!(f, "/{k}")?;
                }
                if let Some(s) = elapsed_seconds {
                    write!(f, ", {}", format_elapsed(*s))?;
                }
                f.write_str(")")
            }
            RunState::Interrupted { agent_pgid: Some(g), .. } => {
                write!(f, "interrupted (its agent, process group {g}, still runs)")
            }
            RunState::Interrupted { .. } => f.write_str("interrupted"),
            RunState::Pending { .. } => f.write_str("pending (postflight owed)"),
            RunState::Failed { reason } | RunState::Blocked { reason } | RunState::Review { reason } => {
                write!(f, "{}: {}", self.word(), reason.split_whitespace().collect::<Vec<_>>().join(" "))
            }
        }
    }
}

/// `45s`, `3m12s`, `2h05m09s`.
pub fn format_elapsed(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s:02}s"),
        _ => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// The run state of one task. Only a task state.json marks `implementing` or `partial` can
/// have a run (preflight moves the task there before it writes the marker), so only those
/// tasks' directories are looked at: a ledger of 1,000 tasks costs a handful of `stat`s.
/// The reasons are read from the entry for those tasks, and `blocked_reason` also for a
/// `blocked` one.
fn run_state(
    specs: &std::path::Path,
    t: &state::TaskInfo,
    entry: &Map<String, Value>,
    now: jiff::Timestamp,
) -> Option<RunState> {
    use crate::run::{Marker, ITERATION_FILE, MARKER_FILE};
    let active = matches!(t.status, Status::Implementing | Status::Partial);
    if active {
        let dir = plan::task_dir(specs, t.number, t.slug.as_deref());
        if let Some(m) = dir.as_ref().and_then(|d| Marker::load(&d.join(MARKER_FILE)).ok()) {
            let dir = dir.expect("the marker was read from it");
            return Some(match m.pid {
                Some(pid) if m.run_alive() => {
                    let counter = std::fs::read_to_string(dir.join(ITERATION_FILE)).ok();
                    let iteration = counter.and_then(|c| c.trim().parse::<u32>().ok()).unwrap_or(0).max(1);
                    let elapsed_seconds = m
                        .run_started
                        .as_deref()
                        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                        .map(|t| u64::try_from(now.as_second() - t.as_second()).unwrap_or(0));
                    RunState::Running { pid, iteration, max_iterations: m.max_iterations, elapsed_seconds }
                }
                None if m.agent_pgid.is_none() && m.interrupted.is_none() => {
                    RunState::Pending { session_id: m.session_id.clone() }
                }
                _ => RunState::Interrupted {
                    signal: m.interrupted.as_ref().map(|i| i.signal.clone()),
                    agent_pgid: m.live_agent(),
                },
            });
        }
    }
    let reason = |k: &str| entry.get(k).and_then(Value::as_str).filter(|r| !r.trim().is_empty()).map(str::to_owned);
    if active {
        if let Some(reason) = reason("failure_reason") {
            return Some(RunState::Failed { reason });
        }
        if let Some(reason) = reason("review_reason") {
            return Some(RunState::Review { reason });
        }
    }
    if active || t.status == Status::Blocked {
        if let Some(reason) = reason("blocked_reason") {
            return Some(RunState::Blocked { reason });
        }
    }
    None
}

/// The last recorded outcome of a task's runs and its reason, from state.json: `completed`, or
/// for a task still implementing (or partial) `failed`, `blocked`, `review` by the reason field
/// the outcome wrote, else `partial` when a `resume_phase` is recorded.
fn last_outcome(t: &state::TaskInfo, entry: &Map<String, Value>) -> (Option<String>, Option<String>) {
    if t.status == Status::Completed {
        return (Some("completed".into()), None);
    }
    if !matches!(t.status, Status::Implementing | Status::Partial) {
        return (None, None);
    }
    for (key, word) in [("failure_reason", "failed"), ("blocked_reason", "blocked"), ("review_reason", "review")] {
        if let Some(r) = entry.get(key).and_then(Value::as_str).filter(|r| !r.trim().is_empty()) {
            return (Some(word.into()), Some(r.to_owned()));
        }
    }
    if entry.contains_key("resume_phase") {
        return (Some("partial".into()), None);
    }
    (None, None)
}

/// What each file says about task `n`.
///
/// # Errors
/// `TaskNotFound`, `DuplicateTask`, ledger read errors.
pub fn detail(ctx: &Context, n: u32) -> Result<TaskDetail> {
    let snap = ctx.ledger().snapshot()?;
    let state: &StateFile = snap.state();
    let info = state.task(n)?;
    let entry = state.entry(n)?;
    let todo_marker = match snap.todo() {
        Some(t) => t.status(n)?.map(|s| s.marker),
        None => None,
    };
    let specs = ctx.repo.specs_dir();
    let plan_path = plan::find_plan(&specs, n, info.slug.as_deref());
    let plan = plan_path.as_deref().map(PlanFile::load).transpose()?;
    let plan_marker = plan.as_ref().and_then(|p| p.header_status()).map(|(_, m)| m);
    let phases: Vec<PhaseRow> = plan
        .as_ref()
        .map(|p| {
            p.phases()
                .into_iter()
                .map(|ph| PhaseRow { done: ph.is_done(), id: ph.id, title: ph.title, marker: ph.marker })
                .collect()
        })
        .unwrap_or_default();
    let resume_phase = match plan.as_ref().map(PlanFile::resume_point) {
        Some(ResumePoint::At { id, .. }) => Some(id),
        _ => None,
    };
    let consistent = todo_marker.as_ref().is_none_or(|m| Status::from_marker(m) == info.status)
        && plan_marker.as_ref().is_none_or(|m| {
            let m = Status::from_marker(m);
            m == info.status || (info.status == Status::Implementing && m == Status::Partial)
        });
    let marker = plan::task_dir(&specs, n, info.slug.as_deref())
        .map(|d| d.join(".postflight-pending"))
        .filter(|p| p.exists())
        .map(|p| ctx.repo.relative(&p));
    let artifacts = entry
        .get("artifacts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| {
                    v.as_str().map(str::to_owned).or_else(|| v.get("path").and_then(Value::as_str).map(str::to_owned))
                })
                .collect()
        })
        .unwrap_or_default();
    let run = run_state(&specs, &info, entry, jiff::Timestamp::now());
    let (last_outcome, reason) = last_outcome(&info, entry);
    let log = plan::task_dir(&specs, n, info.slug.as_deref())
        .map(|d| d.join(crate::run::AGENT_LOG_FILE))
        .filter(|p| p.is_file())
        .map(|p| ctx.repo.relative(&p));
    let resume_command = match &run {
        Some(RunState::Running { .. }) => None,
        Some(RunState::Pending { .. }) => Some(format!("xtask postflight {n}")),
        Some(RunState::Interrupted { agent_pgid: Some(_), .. }) => {
            Some(format!("xtask cancel {n} && xtask implement {n}"))
        }
        _ if matches!(info.status, Status::Implementing | Status::Partial) => Some(format!("xtask implement {n}")),
        _ => None,
    };
    Ok(TaskDetail {
        run,
        last_outcome,
        reason,
        log,
        resume_command,
        number: n,
        title: title_of(&info, snap.todo()),
        slug: info.slug,
        phases_done: phases.iter().filter(|p| p.done).count(),
        language: info.language,
        state_status: info.status.to_string(),
        todo_marker,
        plan: plan_path.map(|p| ctx.repo.relative(&p)),
        plan_marker,
        phases,
        resume_phase,
        consistent,
        marker,
        session_id: entry.get("session_id").and_then(Value::as_str).map(str::to_owned),
        artifacts,
    })
}

/// A task `next` lists: planned, with a plan, every dependency completed.
#[derive(Debug, Clone, Serialize)]
pub struct ReadyTask {
    /// The task number.
    pub number: u32,
    /// The title.
    pub title: String,
    /// The language.
    pub language: String,
    /// The `priority` word, when the entry has one.
    pub priority: Option<String>,
    /// The newest plan (repository-relative).
    pub plan: String,
    /// The tasks it depends on (all completed).
    pub depends_on: Vec<u32>,
}

/// A planned task that is not ready, and why.
#[derive(Debug, Clone, Serialize)]
pub struct WaitingTask {
    /// The task number.
    pub number: u32,
    /// The dependencies not completed (or not found anywhere).
    pub waiting_for: Vec<u32>,
    /// Whether it has no plan file.
    pub no_plan: bool,
}

/// What `next` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NextReport {
    /// The tasks ready to implement, first one first.
    pub ready: Vec<ReadyTask>,
    /// The planned tasks that are not.
    pub waiting: Vec<WaitingTask>,
}

/// The rank of a `priority` word: critical, high, medium, low, then anything else or none.
fn priority_rank(p: Option<&str>) -> u8 {
    match p.map(|p| p.trim().to_ascii_lowercase()).as_deref() {
        Some("critical") => 0,
        Some("high") => 1,
        Some("medium") => 2,
        Some("low") => 3,
        _ => 4,
    }
}

/// The tasks ready to implement: status `planned`, a plan file, and every task of its
/// `dependencies`/`depends_on` lists completed (in state.json, or archived as completed in
/// `specs/archive/state.json`; a dependency found nowhere is not completed). Ordered by
/// `priority` (critical, high, medium, low, none), then by task number, lowest first (the
/// older task, which later ones tend to depend on).
///
/// # Errors
/// Ledger read errors.
pub fn next(ctx: &Context) -> Result<NextReport> {
    let snap = ctx.ledger().snapshot()?;
    let specs = ctx.repo.specs_dir();
    let entries = snap.state().entries()?;
    // Every task's statuses by number (a duplicated task has several: any completed one counts).
    let mut statuses: std::collections::HashMap<u32, Vec<Status>> = std::collections::HashMap::new();
    for e in entries {
        if let Some(n) = state::entry_number(e) {
            let status = Status::from_state(e.get("status").and_then(Value::as_str).unwrap_or_default());
            statuses.entry(n).or_default().push(status);
        }
    }
    let archive: std::cell::OnceCell<Vec<u32>> = std::cell::OnceCell::new();
    let archived_completed = |n: u32| {
        archive
            .get_or_init(|| {
                let Ok(bytes) = std::fs::read(specs.join("archive/state.json")) else { return Vec::new() };
                let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else { return Vec::new() };
                ["completed_projects", "archived_projects"]
                    .iter()
                    .filter_map(|k| doc.get(*k).and_then(Value::as_array))
                    .flatten()
                    .filter(|e| e.get("status").and_then(Value::as_str) == Some("completed"))
                    .filter_map(state::entry_number)
                    .collect()
            })
            .contains(&n)
    };
    let mut report = NextReport::default();
    let mut ready: Vec<(u8, ReadyTask)> = Vec::new();
    for e in entries {
        let (Some(t), Some(obj)) = (state::task_info(e), e.as_object()) else { continue };
        if t.status != Status::Planned {
            continue;
        }
        let deps = dependencies(obj);
        let waiting_for: Vec<u32> = deps
            .iter()
            .copied()
            .filter(|d| {
                let done = match statuses.get(d) {
                    Some(found) => found.contains(&Status::Completed),
                    None => archived_completed(*d),
                };
                !done
            })
            .collect();
        let plan = plan::find_plan(&specs, t.number, t.slug.as_deref());
        match plan {
            Some(p) if waiting_for.is_empty() => {
                let priority = obj.get("priority").and_then(Value::as_str).map(str::to_owned);
                ready.push((
                    priority_rank(priority.as_deref()),
                    ReadyTask {
                        number: t.number,
                        title: title_of(&t, snap.todo()),
                        language: t.language.clone(),
                        priority,
                        plan: ctx.repo.relative(&p),
                        depends_on: deps,
                    },
                ));
            }
            p => report.waiting.push(WaitingTask { number: t.number, waiting_for, no_plan: p.is_none() }),
        }
    }
    ready.sort_by_key(|(rank, t)| (*rank, t.number));
    report.ready = ready.into_iter().map(|(_, t)| t).collect();
    report.waiting.sort_by_key(|w| w.number);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> (tempfile::TempDir, Context) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".git")).expect("mkdir");
        let repo = crate::repo::Repo::discover(dir.path()).expect("repo");
        let now: jiff::Timestamp = "2026-03-16T21:11:23Z".parse().expect("time");
        (dir, Context { repo, fixed_now: Some(now), session_id: None })
    }

    #[test]
    fn init_continues_the_numbering_of_an_existing_file_and_never_overwrites() {
        let (dir, ctx) = scratch();
        std::fs::create_dir(dir.path().join("specs")).expect("mkdir");
        let state = "{\n  \"active_projects\": [\n    {\n      \"project_number\": 41\n    }\n  ],\n  \"next_project_number\": 40\n}\n";
        std::fs::write(dir.path().join("specs/state.json"), state).expect("write");
        let report = init(&ctx).expect("init");
        assert_eq!(report.created, ["specs/TODO.md"]);
        assert_eq!(report.kept, ["specs/state.json"]);
        let todo = std::fs::read_to_string(dir.path().join("specs/TODO.md")).expect("read");
        assert!(todo.starts_with("---\nnext_project_number: 42\n---\n"), "{todo}");
        assert_eq!(std::fs::read_to_string(dir.path().join("specs/state.json")).expect("read"), state);
        let again = init(&ctx).expect("init again");
        assert!(again.created.is_empty() && again.ignored.is_empty(), "{again:?}");
    }

    #[test]
    fn titles_must_be_one_plain_line() {
        let (_dir, ctx) = scratch();
        init(&ctx).expect("init");
        for bad in ["", "  ", "a\nb", "a\rb", "tab\there"] {
            let input = NewTask { title: bad.into(), ..NewTask::default() };
            assert!(new_task(&ctx, &input).is_err(), "{bad:?}");
        }
        let (n, changes) = new_task(&ctx, &NewTask { title: "Fine title".into(), ..NewTask::default() }).expect("new");
        assert_eq!((n, changes.len()), (1, 2));
    }

    #[test]
    fn dependencies_read_both_names_and_shapes() {
        let entry =
            serde_json::json!({"dependencies": [524, "980", "Task 12", "#7", "x", 0, null, 524], "depends_on": [995]});
        assert_eq!(dependencies(entry.as_object().expect("object")), [524, 980, 12, 7, 995]);
    }

    #[test]
    fn elapsed_is_compact() {
        assert_eq!(format_elapsed(5), "5s");
        assert_eq!(format_elapsed(192), "3m12s");
        assert_eq!(format_elapsed(7509), "2h05m09s");
    }

    #[test]
    fn task_numbers_are_strict() {
        assert_eq!(parse_task_number("350").expect("ok"), 350);
        for bad in ["0350", "350.0", "-1", "0", "", " 350", "3e2", "99999999999"] {
            assert!(parse_task_number(bad).is_err(), "{bad}");
        }
    }
}
