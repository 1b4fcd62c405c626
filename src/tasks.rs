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

/// The transient files every repository using postflight must keep out of git.
pub const TRANSIENT_FILES: [&str; 5] = [
    ".return-meta.json",
    ".postflight-pending",
    ".postflight-loop-guard",
    ".postflight-hook-blocks",
    ".postflight-agent.log",
];

/// What `init` did.
#[derive(Debug, Default, Serialize)]
pub struct InitReport {
    /// Files created (repository-relative).
    pub created: Vec<String>,
    /// Files left alone because they exist.
    pub kept: Vec<String>,
    /// Entries added to `.gitignore`.
    pub ignored: Vec<String>,
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
            state.next_project_number().unwrap_or(1).max(state.max_number().map_or(1, |n| u64::from(n) + 1))
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
    let from_state = snap.state().next_project_number().unwrap_or(1);
    let from_todo = snap.todo().and_then(TodoFile::next_project_number).map(|(_, n)| n).unwrap_or(1);
    let in_use = snap.state().max_number().map(|n| u64::from(n) + 1).unwrap_or(1);
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
    state.prepend(Value::Object(entry));
    state.set_next_project_number(n + 1);
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

/// Every task of state.json with its plan progress, in file order.
///
/// # Errors
/// Ledger read errors.
pub fn list(ctx: &Context) -> Result<Vec<TaskRow>> {
    let snap = ctx.ledger().snapshot()?;
    let specs = ctx.repo.specs_dir();
    Ok(snap
        .state()
        .tasks()
        .into_iter()
        .map(|t| {
            let progress = plan::find_plan(&specs, t.number, t.slug.as_deref())
                .and_then(|p| PlanFile::load(&p).ok())
                .map(|p| p.progress())
                .filter(|(_, total)| *total > 0);
            TaskRow {
                title: title_of(&t, snap.todo()),
                number: t.number,
                status: t.status.to_string(),
                language: t.language,
                phases_done: progress.map(|p| p.0),
                phases_total: progress.map(|p| p.1),
            }
        })
        .collect())
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
    Ok(TaskDetail {
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
    fn task_numbers_are_strict() {
        assert_eq!(parse_task_number("350").expect("ok"), 350);
        for bad in ["0350", "350.0", "-1", "0", "", " 350", "3e2", "99999999999"] {
            assert!(parse_task_number(bad).is_err(), "{bad}");
        }
    }
}
