//! `implement <PATH>`, `status <PATH>`, `check <PATH>`: the queue runs over spec directories
//! and phase documents (`postflight::workflow::queue`), chosen when the argument is a path.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use postflight::format::{self, Format, Mark, QueueOptions};
use postflight::workflow::{self, queue};
use postflight::Context;

/// What the positional argument names.
pub enum Target {
    /// A task number of `specs/state.json`.
    Task(u32),
    /// A spec directory or phase document.
    Path(PathBuf),
}

/// A number keeps meaning a task of state.json; an argument holding `/` or `.md`, or naming an
/// existing file or directory, is a path (relative to the current directory, else to the
/// repository root).
///
/// # Errors
/// The refusal of a malformed task number.
pub fn target(ctx: &Context, raw: &str) -> postflight::Result<Target> {
    if raw.trim().is_empty() {
        return postflight::tasks::parse_task_number(raw).map(Target::Task);
    }
    let here = std::env::current_dir().unwrap_or_else(|_| ctx.repo.root.clone());
    let candidates = [here.join(raw), ctx.repo.root.join(raw)];
    let existing = candidates.iter().find(|p| p.exists());
    // An empty argument names the current directory, never a path the user meant.
    let looks_like_path = !raw.trim().is_empty() && (raw.contains('/') || raw.ends_with(".md") || existing.is_some());
    if looks_like_path && (postflight::tasks::parse_task_number(raw).is_err() || existing.is_some()) {
        let p = existing.cloned().unwrap_or_else(|| candidates[0].clone());
        return Ok(Target::Path(p.canonicalize().unwrap_or(p)));
    }
    postflight::tasks::parse_task_number(raw).map(Target::Task)
}

/// The format of `path`.
pub fn open(ctx: &Context, path: &Path, forced: Option<&str>) -> postflight::Result<Box<dyn Format>> {
    open_with(ctx, path, forced, format::OpenOptions::default())
}

/// The format of `path`, with a payload's stage and agent.
pub fn open_with(
    ctx: &Context,
    path: &Path,
    forced: Option<&str>,
    opts: format::OpenOptions,
) -> postflight::Result<Box<dyn Format>> {
    let root = ctx.repo.root.canonicalize().unwrap_or_else(|_| ctx.repo.root.clone());
    format::open_with(&root, path, forced, &format::OpenOptions { now: ctx.fixed_now, ..opts })
}

/// The flags of a queue run.
pub struct Implement {
    pub path: PathBuf,
    pub forced: Option<String>,
    pub stage: Option<String>,
    pub agent: Option<String>,
    pub timeout: Option<u64>,
    pub task: Option<String>,
    pub max_tasks: Option<usize>,
    pub include_optional: bool,
    pub validation: workflow::ValidationOptions,
    pub json: bool,
}

impl Implement {
    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let Implement { path, forced, stage, agent, timeout, task, max_tasks, include_optional, validation, json } =
            self;
        let agent = workflow::resolve_agent(ctx, agent.as_deref())?;
        let open_opts = format::OpenOptions { stage, agent: Some(agent.clone()), now: None };
        let fmt = open_with(ctx, &path, forced.as_deref(), open_opts)?;
        let task = task.map(|t| postflight::TaskId::new(&t)).transpose()?;
        let cfg = workflow::config::Config::load(&ctx.repo.root)?;
        let opts = queue::Options {
            agent,
            timeout: cfg.timeout_or(timeout),
            queue: QueueOptions { task, max_tasks, include_optional },
            validation,
            agent_identity: None,
        };
        let report = match queue::run(ctx, fmt.as_ref(), &opts, &crate::implement::progress_on_stderr()) {
            Ok(r) => r,
            Err(e) => {
                // An interrupt stopped the run at a safe point (the task stays in progress and
                // the marker says so): 130, 143 or 129, and how to resume, as for a task number.
                let Some(signal) = e.interrupted() else { return Err(e.into()) };
                let file = ctx.repo.relative(&fmt.file());
                let resume = format!("xtask implement {}", shell_word(&ctx.repo.relative(&path)));
                if json {
                    let value = serde_json::json!({
                        "format": fmt.kind(), "file": file, "status": "interrupted",
                        "signal": signal.name(), "resume": resume,
                    });
                    writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
                } else {
                    writeln!(out, "{file}: interrupted; run `{resume}` to resume")?;
                }
                return Ok(ExitCode::from(signal.exit_code()));
            }
        };
        if json {
            writeln!(out, "{}", serde_json::to_string_pretty(&report.to_json())?)?;
        } else {
            render(&report, out)?;
        }
        Ok(ExitCode::from(report.exit_code()))
    }
}

/// `s` as one shell word (quoted when it holds anything but safe characters).
fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn render(report: &queue::Report, out: &mut dyn Write) -> std::io::Result<()> {
    for p in &report.intake_blocked {
        writeln!(out, "blocked: {p}")?;
    }
    if !report.intake_blocked.is_empty() {
        writeln!(out, "{}: the stage is blocked; the block is recorded in the file, no task ran", report.file)?;
        return Ok(());
    }
    let stuck = !report.waiting.is_empty() || !report.blocked_before.is_empty();
    if report.tasks.is_empty() && report.commit_error.is_none() && !stuck {
        writeln!(out, "{}: nothing to do (every queued task is done)", report.file)?;
    }
    for t in &report.tasks {
        let how = match &t.outcome {
            format::Outcome::Completed => "completed".to_owned(),
            format::Outcome::Failed(r) => format!("failed: {r}"),
            format::Outcome::Blocked(r) => format!("blocked: {r}"),
        };
        let commit = t.commit.as_ref().map(|c| format!(" [{}]", &c.id[..c.id.len().min(12)])).unwrap_or_default();
        writeln!(out, "task {}: {how}{commit}", t.id)?;
    }
    for w in &report.warnings {
        writeln!(out, "warning: {w}")?;
    }
    if let Some(e) = &report.commit_error {
        writeln!(out, "commit failed: {e}")?;
    }
    let blocked = report.tasks.iter().any(|t| matches!(t.outcome, format::Outcome::Blocked(_)));
    if report.exit_code() == 4 && blocked {
        writeln!(
            out,
            "blocked after one retry; the run went on with the tasks that do not depend on it (a blocked task runs again once its status is set back to ready)"
        )?;
    } else if report.exit_code() == 4 && stuck {
        writeln!(
            out,
            "not done: a task is blocked since an earlier run (a blocked task runs again once its status is set back to ready)"
        )?;
    } else if report.exit_code() == 4 {
        writeln!(out, "stopped; run the same command again to resume at the failed task")?;
    } else if !report.remaining.is_empty() {
        writeln!(
            out,
            "{} task(s) left in the queue ({}); the same command goes on with them",
            report.remaining.len(),
            report.remaining.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
        )?;
    }
    Ok(())
}

/// `status <PATH> [--json]`: every task with its mark, and the counts per group and in all.
pub fn status(
    ctx: &Context,
    path: &Path,
    forced: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let fmt = open(ctx, path, forced)?;
    let (items, run) = queue::read(ctx, fmt.as_ref())?;
    let file = ctx.repo.relative(&fmt.file());
    let count = |it: &mut dyn Iterator<Item = &format::Item>| {
        let mut c = serde_json::Map::new();
        for i in it {
            let e = c.entry(i.mark.as_str()).or_insert(serde_json::json!(0));
            *e = serde_json::json!(e.as_u64().unwrap_or(0) + 1);
        }
        serde_json::Value::Object(c)
    };
    let mut groups: Vec<Option<String>> = Vec::new();
    for i in &items {
        if !groups.contains(&i.group) {
            groups.push(i.group.clone());
        }
    }
    if json {
        let tasks: Vec<serde_json::Value> = items
            .iter()
            .map(|i| {
                serde_json::json!({
                    "id": i.id.as_str(), "title": i.title, "mark": i.mark.as_str(),
                    "parent": i.parent.as_ref().map(|p| p.as_str()), "optional": i.optional,
                    "line": i.line, "group": i.group,
                    "depends_on": i.depends_on.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let per_group: Vec<serde_json::Value> = groups
            .iter()
            .map(|g| serde_json::json!({"group": g, "counts": count(&mut items.iter().filter(|i| &i.group == g))}))
            .collect();
        let value = serde_json::json!({
            "format": fmt.kind(),
            "file": file,
            "run": run.as_ref().map(|m| serde_json::json!({"session_id": m.session_id, "pid": m.pid, "alive": m.run_alive()})),
            "tasks": tasks,
            "groups": per_group,
            "counts": count(&mut items.iter()),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{} ({file})", fmt.label())?;
    if let Some(m) = &run {
        let state = if m.run_alive() {
            "running".to_owned()
        } else if let Some(pgid) = m.live_agent() {
            format!("its xtask is gone, its agent still runs: process group {pgid}; stop it with `kill -TERM -- -{pgid}`, then `xtask implement <PATH>` resumes")
        } else {
            "interrupted; `xtask implement <PATH>` resumes it".to_owned()
        };
        writeln!(out, "run: session {} ({state})", m.session_id)?;
    }
    let id_w = items.iter().map(|i| i.id.as_str().len()).max().unwrap_or(4).max(4);
    for g in &groups {
        if let Some(name) = g {
            writeln!(out, "\n{name}")?;
        }
        for i in items.iter().filter(|i| &i.group == g) {
            let opt = if i.optional { " (optional)" } else { "" };
            writeln!(out, "  {:<id_w$}  {:<11}  {}{opt}", i.id.as_str(), i.mark.as_str(), i.title)?;
        }
        if groups.len() > 1 {
            writeln!(out, "  {}", counts_line(items.iter().filter(|i| &i.group == g)))?;
        }
    }
    writeln!(out, "\ntotal: {}", counts_line(items.iter()))?;
    Ok(ExitCode::SUCCESS)
}

fn counts_line<'a>(items: impl Iterator<Item = &'a format::Item>) -> String {
    let marks = [Mark::Completed, Mark::InProgress, Mark::Pending, Mark::Failed, Mark::Blocked, Mark::Skipped];
    let all: Vec<&format::Item> = items.collect();
    let parts: Vec<String> = marks
        .iter()
        .filter_map(|m| {
            let n = all.iter().filter(|i| i.mark == *m).count();
            (n > 0).then(|| format!("{n} {}", m.as_str().replace('_', " ")))
        })
        .collect();
    format!("{} task(s): {}", all.len(), parts.join(", "))
}

/// `check <PATH> [--fix [--dry-run]] [--json]`: exit 0 without errors (warnings allowed), 1
/// with errors. `--dry-run` (alone or with `--fix`) reports what `--fix` would repair and
/// writes nothing.
#[allow(clippy::too_many_arguments)]
pub fn check(
    ctx: &Context,
    path: &Path,
    forced: Option<&str>,
    against: Option<&str>,
    fix: bool,
    dry_run: bool,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let fmt = open(ctx, path, forced)?;
    let (findings, before, after) = match against {
        Some(rev) => {
            let now = std::fs::read(fmt.file()).unwrap_or_default();
            (queue::check_against(ctx, fmt.as_ref(), rev)?, now.clone(), now)
        }
        None if dry_run => {
            let (findings, before, _) = queue::check(ctx, fmt.as_ref(), false)?;
            let after = if findings.iter().any(|f| f.fixable) { fmt.fix(&before)? } else { before.clone() };
            (fmt.check(&after), before, after)
        }
        None => queue::check(ctx, fmt.as_ref(), fix)?,
    };
    let file = ctx.repo.relative(&fmt.file());
    let errors = findings.iter().filter(|f| f.error).count();
    let changed = before != after;
    if json {
        let list: Vec<serde_json::Value> = findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "rule": f.rule, "severity": if f.error { "error" } else { "warning" },
                    "line": f.line, "task": f.task.as_ref().map(|t| t.as_str()),
                    "message": f.message, "fixable": f.fixable,
                })
            })
            .collect();
        let value = serde_json::json!({
            "file": file, "ok": errors == 0, "errors": errors,
            "warnings": findings.len() - errors, "fixed": changed && !dry_run,
            "would_fix": changed && dry_run, "findings": list,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        if changed && dry_run {
            writeln!(out, "check --fix would repair {file} (--dry-run: nothing written)")?;
        } else if changed {
            writeln!(out, "check --fix: repaired {file}")?;
        }
        for f in &findings {
            let level = if f.error { "error" } else { "warning" };
            let line = f.line.map(|l| format!(":{l}")).unwrap_or_default();
            let fixable = if f.fixable { " (fixable: --fix)" } else { "" };
            writeln!(out, "{level}: {file}{line}: [{}] {}{fixable}", f.rule, f.message)?;
        }
        writeln!(out, "{file}: {errors} error(s), {} warning(s)", findings.len() - errors)?;
    }
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
