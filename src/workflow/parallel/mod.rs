//! Worktree runs (`xtask implement N [M ...] --worktree --jobs K`): each task in its own linked
//! worktree on its own branch, run by a child `xtask implement N` there (its own agent, marker,
//! log, timeout and validation gate, its own process group so an interrupt reaches it through
//! postflight only), then landed on the invoking branch ([`land`]) one at a time under the
//! landing lock, optionally pushed, and cleaned up once its work is reachable from the target.
//!
//! The invoking work tree's ledger is written only here, under its lock: the task's entry and
//! TODO.md block are mirrored from the worktree when its run has started (so `xtask status`
//! shows it implementing) and re-applied task-scoped when it lands. The worktree's own copy of
//! the ledger never lands as text.

pub mod land;
pub mod worktree;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::context::Context;
use crate::error::{Error, Result};
use land::Landing;
use worktree::Manifest;

/// The ledger key naming the paths of a landing that conflicted.
pub const LANDING_CONFLICT: &str = "landing_conflict";

/// Exit code of a task whose landing conflicted or was refused (the task failed to land).
pub const EXIT_NOT_LANDED: u8 = 4;

/// Inputs of a worktree run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The tasks, in order.
    pub tasks: Vec<u32>,
    /// At most this many at once (at least 1).
    pub jobs: usize,
    /// The `xtask` program started in each worktree.
    pub program: PathBuf,
    /// The arguments of the child `implement` after the task number (agent, limits, validation).
    pub child_args: Vec<String>,
    /// Land each iteration commit instead of one commit.
    pub keep_iterations: bool,
    /// Push after landing.
    pub push: bool,
}

/// How one task of a worktree run ended.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    /// The task.
    pub task: u32,
    /// `completed`, the run's outcome (`partial`, `failed`, …), `landing_conflict`,
    /// `landing_refused`, `push_failed`, `interrupted`, or `error`.
    pub status: String,
    /// The outcome the run in the worktree reported.
    pub run_status: Option<String>,
    /// The task's exit code (as `xtask implement N` would exit).
    pub exit_code: u8,
    /// The worktree.
    pub worktree: String,
    /// Its branch.
    pub branch: String,
    /// Whether the worktree existed already (a resumed run).
    pub resumed: bool,
    /// The commits landed on the invoking branch.
    pub landed: Vec<String>,
    /// The conflicting (or overlapping) paths.
    pub paths: Vec<String>,
    /// Why, in words, when it did not complete.
    pub message: Option<String>,
    /// Whether the worktree and branch were removed.
    pub removed: bool,
    /// Wall time of the task, in milliseconds.
    pub duration_ms: u64,
    /// Of which the child run took (agent and validation included).
    pub run_ms: u64,
    /// Of which landing (and pushing) took.
    pub land_ms: u64,
    /// The child run's own `--json` report.
    pub run: Option<Value>,
}

impl TaskResult {
    fn new(task: u32, m: &Manifest, resumed: bool) -> TaskResult {
        TaskResult {
            task,
            status: "error".into(),
            run_status: None,
            exit_code: 1,
            worktree: m.path.to_string_lossy().into_owned(),
            branch: m.branch.clone(),
            resumed,
            landed: Vec::new(),
            paths: Vec::new(),
            message: None,
            removed: false,
            duration_ms: 0,
            run_ms: 0,
            land_ms: 0,
            run: None,
        }
    }
}

/// Runs the tasks in worktrees, up to `opts.jobs` at once; `on_done` is called as each finishes.
///
/// # Errors
/// Refusals before anything starts (an unknown task, a detached HEAD, a task given twice, a
/// branch postflight did not create); worktree creation failures.
///
/// # Writes
/// Worktrees and branches under the git common directory, the invoking ledger, landed commits.
pub fn run(ctx: &Context, opts: &Options, on_done: &(dyn Fn(&TaskResult) + Sync)) -> Result<Vec<TaskResult>> {
    let mut seen = std::collections::BTreeSet::new();
    for n in &opts.tasks {
        if !seen.insert(*n) {
            return Err(Error::refused(format!("task {n} is given twice"), None));
        }
        ctx.ledger().state()?.task(*n)?;
    }
    worktree::current_branch(&ctx.repo)?;
    if opts.push {
        land::upstream(&ctx.repo.root, &worktree::current_branch(&ctx.repo)?)?;
    }
    let prepared: Vec<(Manifest, bool)> =
        opts.tasks.iter().map(|n| worktree::create_or_reuse(ctx, *n, opts.push)).collect::<Result<_>>()?;
    let queue = Mutex::new(prepared.into_iter());
    let results = Mutex::new(Vec::new());
    let jobs = opts.jobs.max(1).min(opts.tasks.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                let Some((m, resumed)) = next else { break };
                let r = run_one(ctx, opts, &m, resumed);
                on_done(&r);
                if let Ok(mut all) = results.lock() {
                    all.push(r);
                }
            });
        }
    });
    let mut all = results.into_inner().unwrap_or_default();
    all.sort_by_key(|r| opts.tasks.iter().position(|t| *t == r.task));
    Ok(all)
}

/// The task's directory relative to the root (`specs/N_slug`), from the invoking ledger.
fn task_dir_rel(ctx: &Context, n: u32) -> Option<String> {
    let slug = ctx.ledger().state().ok()?.task(n).ok()?.slug?;
    Some(format!("specs/{n}_{slug}"))
}

fn run_one(ctx: &Context, opts: &Options, m: &Manifest, resumed: bool) -> TaskResult {
    let started = Instant::now();
    let mut r = TaskResult::new(m.task, m, resumed);
    match child_run(ctx, opts, m) {
        Ok((code, report)) => {
            r.run_ms = started.elapsed().as_millis() as u64;
            r.run_status = report.as_ref().and_then(|v| v["status"].as_str().map(str::to_owned));
            r.run = report;
            if r.run_status.as_deref() == Some("interrupted") || r.run.is_none() {
                r.status = "interrupted".into();
                r.exit_code = code.unwrap_or(130);
                r.message = Some(format!(
                    "the run in {} stopped without a report (exit {}); `xtask implement {} --worktree` resumes it",
                    m.path.display(),
                    code.map_or_else(|| "by a signal".to_owned(), |c| c.to_string()),
                    m.task
                ));
            } else {
                let land_started = Instant::now();
                finish_landing(ctx, opts.keep_iterations, opts.push, m, code.unwrap_or(1), &mut r);
                r.land_ms = land_started.elapsed().as_millis() as u64;
            }
        }
        Err(e) => {
            r.message = Some(e.to_string());
        }
    }
    r.duration_ms = started.elapsed().as_millis() as u64;
    r
}

/// Lands `m` (under the landing lock), pushes it with `push`, records the result in `r`, and
/// removes the worktree once its run completed and its work is reachable from the target.
pub fn finish_landing(
    ctx: &Context,
    keep_iterations: bool,
    push: bool,
    m: &Manifest,
    run_code: u8,
    r: &mut TaskResult,
) {
    let lock_path = worktree::root_dir(&ctx.repo).join("land.lock");
    let lock = crate::atomic::Lock::acquire(&lock_path, Duration::from_secs(600));
    let outcome = lock.and_then(|_lock| {
        let landing = land::land(ctx, m, keep_iterations)?;
        let pushed = match (&landing, push) {
            (Landing::Landed(_), true) => Some(land::push(ctx, &m.target)),
            _ => None,
        };
        Ok((landing, pushed))
    });
    let run_status = r.run_status.clone().unwrap_or_else(|| "failed".into());
    let mut manifest = m.clone();
    manifest.push = manifest.push || push;
    match outcome {
        Ok((Landing::Landed(commits), pushed)) => {
            r.landed = commits;
            manifest.landing_conflict.clear();
            match pushed {
                Some(Err(e)) => {
                    r.status = "push_failed".into();
                    r.exit_code = EXIT_NOT_LANDED;
                    r.message = Some(format!("landed locally, but not pushed: {e}"));
                }
                _ => {
                    r.status = run_status.clone();
                    r.exit_code = run_code;
                }
            }
        }
        Ok((Landing::Conflict(paths), _)) => {
            r.status = LANDING_CONFLICT.into();
            r.exit_code = EXIT_NOT_LANDED;
            r.message = Some(format!(
                "{} changed on the branch too; nothing landed. Resolve it in {} (e.g. `git merge {}` there, fix, commit), then run `xtask land {}`",
                paths.join(", "),
                m.path.display(),
                m.target.trim_start_matches("refs/heads/"),
                m.task
            ));
            let _ = land::record_conflict(&ctx.ledger(), m.task, LANDING_CONFLICT, &paths);
            manifest.landing_conflict = paths.clone();
            r.paths = paths;
        }
        Ok((Landing::Overlap(paths), _)) => {
            r.status = "landing_refused".into();
            r.exit_code = EXIT_NOT_LANDED;
            r.message = Some(format!(
                "the invoking work tree has uncommitted changes of its own in {}; nothing landed (they were not touched). Commit or stash them, then run `xtask land {}`",
                paths.join(", "),
                m.task
            ));
            r.paths = paths;
        }
        Err(e) => {
            r.status = "landing_refused".into();
            r.exit_code = EXIT_NOT_LANDED;
            r.message = Some(format!("{e}{}", e.hint().map(|h| format!(" (hint: {h})")).unwrap_or_default()));
        }
    }
    let _ = manifest.save(&ctx.repo);
    if r.status == "completed" && worktree::landed(&ctx.repo, &manifest) == worktree::Landed::Yes {
        r.removed = worktree::remove(&ctx.repo, m.task, false).is_ok();
    }
}

/// Starts `xtask implement N --in-worktree --json` in the worktree and waits for it, mirroring
/// the task's ledger entry into the invoking ledger once the run has started and forwarding an
/// interrupt to the child's process group. Returns its exit code and its report.
fn child_run(ctx: &Context, opts: &Options, m: &Manifest) -> Result<(Option<u8>, Option<Value>)> {
    let log = worktree::log_path(&ctx.repo, m.task);
    let log_file =
        std::fs::OpenOptions::new().create(true).append(true).open(&log).map_err(|e| Error::io("open", &log, e))?;
    let mut cmd = Command::new(&opts.program);
    cmd.arg("implement").arg(m.task.to_string()).arg("--in-worktree").arg("--json").args(&opts.child_args);
    cmd.current_dir(&m.path).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log_file));
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(|e| Error::io("start", &opts.program, e))?;
    let pid = child.id();
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let dir_rel = task_dir_rel(ctx, m.task);
    let marker = dir_rel.as_deref().map(|d| m.marker(d));
    let mut mirrored = false;
    let mut forwarded = false;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| Error::io("wait for", &opts.program, e))? {
            break s;
        }
        if !mirrored && marker.as_ref().is_some_and(|p| p.exists()) {
            mirrored = mirror(ctx, m).is_ok();
        }
        if !forwarded && crate::sys::interrupted().is_some() {
            crate::sys::signal_group(pid, crate::sys::Kill::Term);
            forwarded = true;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let out = reader.join().unwrap_or_default();
    let report = serde_json::from_slice::<Value>(&out).ok().filter(|v| v.get("status").is_some());
    Ok((status.code().map(|c| c as u8), report))
}

/// Mirrors task `m.task`'s entry and block from the worktree's ledger into the invoking one.
fn mirror(ctx: &Context, m: &Manifest) -> Result<()> {
    let (sp, tp) = (m.path.join(crate::ledger::LEDGER_FILES[0]), m.path.join(crate::ledger::LEDGER_FILES[1]));
    let state = std::fs::read(&sp).map_err(|e| Error::io("read", &sp, e))?;
    let todo = std::fs::read(&tp).ok();
    land::reapply(&ctx.ledger(), m.task, &state, todo.as_deref()).map(|_| ())
}

/// `xtask land N`: lands task N's worktree branch (after a conflict was resolved there).
///
/// # Errors
/// A refusal when postflight has no worktree of the task.
///
/// # Writes
/// As [`finish_landing`].
pub fn land_task(ctx: &Context, n: u32, keep_iterations: bool, push: bool) -> Result<TaskResult> {
    let Some(m) = Manifest::load(&ctx.repo, n)? else {
        return Err(Error::refused(
            format!("postflight has no worktree of task {n}"),
            Some("`xtask worktree list` shows the worktrees postflight created"),
        ));
    };
    let started = Instant::now();
    let mut r = TaskResult::new(n, &m, true);
    let status = ctx.ledger().state().ok().and_then(|s| s.task(n).ok()).map(|t| t.status.to_string());
    // The outcome the worktree's run recorded, from its committed ledger.
    let tip = m.tip(&ctx.repo).unwrap_or_default();
    let recorded = land_status(&ctx.repo.root, &tip, n).or(status);
    r.run_status = recorded.clone();
    let code = match recorded.as_deref() {
        Some("completed") => 0,
        Some("partial") => 3,
        _ => 4,
    };
    finish_landing(ctx, keep_iterations, push, &m, code, &mut r);
    r.duration_ms = started.elapsed().as_millis() as u64;
    r.land_ms = r.duration_ms;
    Ok(r)
}

/// Task `n`'s status in `rev`'s state.json.
fn land_status(root: &Path, rev: &str, n: u32) -> Option<String> {
    let bytes =
        crate::git::cli_run(root, &["cat-file", "blob", &format!("{rev}:specs/state.json")], None, &[0]).ok()?;
    let f = crate::ledger::state::StateFile::parse(Path::new("specs/state.json"), bytes).ok()?;
    Some(f.task(n).ok()?.status.to_string())
}
