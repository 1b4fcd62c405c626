//! `implement`, `preflight`, `postflight`, `demo` and `demo-agent`: thin wrappers over
//! `postflight::workflow`.
//!
//! `implement`, `postflight` and `demo` install the interrupt handlers first: SIGINT, SIGTERM
//! and SIGHUP only raise a flag, the workflow stops at its next safe point (killing the agent's
//! process group, never in the middle of a ledger write or a commit), and the command exits
//! 130, 143 or 129.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use postflight::workflow::{self, progress};
use postflight::Context;

#[derive(clap::Args, Debug)]
#[command(after_help = "Exit codes:
  0        completed (for --dry-run: nothing changed)
  1        internal error (I/O, git)
  2        bad usage or input, refused; no file was changed
  3        stopped partial; the same command resumes
  4        blocked, failed, validation failed, needs review, metadata missing or invalid, or the agent
           reported an error
  5        the outcome was recorded but its commit failed (a hook refused it); the hint gives the
           `xtask commit N ...` that finishes it
  129/130/143  interrupted by SIGHUP/SIGINT/SIGTERM; the same command resumes")]
pub struct ImplementArgs {
    /// The task number of specs/state.json, or a PATH: a spec directory (holding tasks.md) or a
    /// phase document (a markdown file with `Phase N` headings), run task by task
    #[arg(value_name = "TASK|PATH")]
    task: String,
    /// More task numbers, run in worktrees of their own (implies --worktree)
    #[arg(value_name = "TASK")]
    more: Vec<String>,
    /// Run each task in its own linked worktree (under the git common directory) on branch
    /// postflight/N-<slug>, then land it on the current branch
    #[arg(long)]
    worktree: bool,
    /// Run up to K tasks at once, each in its own worktree (K > 1 implies --worktree) [default: 1]
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    jobs: Option<u64>,
    /// With --worktree: land the run's iteration commits one by one instead of as one commit
    #[arg(long)]
    keep_iterations: bool,
    /// With --worktree: push the branch to its upstream after landing (fetch, land again on a
    /// moved remote tip and push again, up to 5 attempts)
    #[arg(long)]
    push: bool,
    /// The run is the child of a worktree run, inside its worktree (set by --worktree)
    #[arg(long, hide = true)]
    in_worktree: bool,
    /// PATH only: run just this task (and, for a parent, its open sub-tasks), e.g. --task 1.1
    #[arg(long = "task", value_name = "ID")]
    only: Option<String>,
    /// PATH only: run at most K tasks
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    max_tasks: Option<u64>,
    /// PATH only: run optional tasks (Kiro's `- [ ]*`) too
    #[arg(long)]
    include_optional: bool,
    /// PATH only: read PATH as this format instead of guessing from what it is
    #[arg(long, value_name = "FORMAT", value_parser = ["spec", "phases", "payload"])]
    format: Option<String>,
    /// PATH only (handoff/payload.json): the implement stage [default: 5-implement when the
    /// payload has tasks.items, else 4-implement]
    #[arg(long, value_name = "STAGE", value_parser = ["5-implement", "4-implement"])]
    stage: Option<String>,
    /// The agent command, run with `sh -c` in the repository root; `claude` selects the Claude Code adapter
    /// (default: XTASK_AGENT, then .postflight.json, then `claude` when it is on the PATH)
    #[arg(long, value_name = "COMMAND")]
    agent: Option<String>,
    /// Invoke the agent at most K times while it reports partial [default: 5, or .postflight.json]
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    max_iterations: Option<u32>,
    /// Kill an invocation (and its process group) after SECS seconds [default: 7200, or .postflight.json]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,
    /// Record the outcome but make no commit
    #[arg(long)]
    no_commit: bool,
    /// Print the diff of every file the run would change before the agent starts; change nothing
    #[arg(long)]
    dry_run: bool,
    /// Implement a completed task again
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    validation: ValidationArgs,
    /// Print one JSON object instead of the text summary
    #[arg(long)]
    json: bool,
}

/// The validation gate's flags, shared by `implement` and `postflight`.
#[derive(clap::Args, Debug)]
pub struct ValidationArgs {
    /// Also run COMMAND (sh -c) as a validation command when the agent reports implemented (repeatable)
    #[arg(long, value_name = "COMMAND")]
    validate: Vec<String>,
    /// Run no validation command; the outcome says `validation: skipped`
    #[arg(long, conflicts_with = "validate")]
    no_validate: bool,
    /// Accept an implemented result that changed no file it would commit
    #[arg(long)]
    allow_empty: bool,
}

impl ValidationArgs {
    /// The same flags as command-line arguments, for a child `xtask implement`.
    pub fn to_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for v in &self.validate {
            out.push("--validate".to_owned());
            out.push(v.clone());
        }
        if self.no_validate {
            out.push("--no-validate".to_owned());
        }
        if self.allow_empty {
            out.push("--allow-empty".to_owned());
        }
        out
    }
}

impl From<ValidationArgs> for workflow::ValidationOptions {
    fn from(a: ValidationArgs) -> Self {
        workflow::ValidationOptions { validate: a.validate, no_validate: a.no_validate, allow_empty: a.allow_empty }
    }
}

impl ImplementArgs {
    pub fn json(&self) -> bool {
        self.json
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let ImplementArgs {
            task,
            more,
            worktree,
            jobs,
            keep_iterations,
            push,
            in_worktree,
            only,
            max_tasks,
            include_optional,
            format,
            stage,
            agent,
            max_iterations,
            timeout,
            no_commit,
            dry_run,
            force,
            validation,
            json,
        } = self;
        postflight::sys::install_interrupt_handlers()?;
        let jobs = jobs.map(|k| usize::try_from(k).unwrap_or(usize::MAX));
        if worktree || !more.is_empty() || jobs.is_some_and(|k| k > 1) {
            let parallel = crate::parallel::Implement {
                tasks: std::iter::once(task).chain(more).collect(),
                jobs: jobs.unwrap_or(1),
                agent,
                max_iterations,
                timeout,
                force,
                validation,
                keep_iterations,
                push,
                json,
            };
            if no_commit || dry_run || only.is_some() || max_tasks.is_some() || format.is_some() {
                anyhow::bail!(postflight::Error::refused(
                    "--no-commit, --dry-run, --task, --max-tasks and --format do not apply to worktree runs",
                    None
                ));
            }
            return parallel.run(ctx, out).map(deferred);
        }
        if keep_iterations || push {
            anyhow::bail!(postflight::Error::refused(
                "--keep-iterations and --push apply to worktree runs (--worktree, --jobs K, or several tasks)",
                None
            ));
        }
        let task = match crate::queue::target(ctx, &task)? {
            crate::queue::Target::Path(path) => {
                // Flags of the state.json run that a queue run does not have are refused, never
                // ignored (a `--dry-run` that ran the agent and committed would be the worst).
                let unsupported: Vec<&str> = [
                    (dry_run, "--dry-run"),
                    (no_commit, "--no-commit"),
                    (force, "--force"),
                    (max_iterations.is_some(), "--max-iterations"),
                ]
                .into_iter()
                .filter_map(|(given, flag)| given.then_some(flag))
                .collect();
                if !unsupported.is_empty() {
                    anyhow::bail!(postflight::Error::refused(
                        format!(
                            "{} apply to a task number of specs/state.json, not to a PATH (a spec directory, a phase document or a handoff payload)",
                            unsupported.join(", ")
                        ),
                        Some("`xtask status <PATH>` shows what a run would take; each task of a PATH is one agent invocation and one commit")
                    ));
                }
                let queue_run = crate::queue::Implement {
                    path,
                    forced: format,
                    stage,
                    agent,
                    timeout,
                    task: only,
                    max_tasks: max_tasks.map(|k| usize::try_from(k).unwrap_or(usize::MAX)),
                    include_optional,
                    validation: validation.into(),
                    json,
                };
                return queue_run.run(ctx, out).map(deferred);
            }
            crate::queue::Target::Task(n) => n,
        };
        if only.is_some() || max_tasks.is_some() || include_optional || format.is_some() || stage.is_some() {
            anyhow::bail!(postflight::Error::refused(
                "--task, --max-tasks, --include-optional, --format and --stage apply to a PATH (a spec directory or a phase document), not to a task number",
                None
            ));
        }
        let agent = if dry_run {
            workflow::resolve_agent(ctx, agent.as_deref()).unwrap_or_else(|_| "(no agent configured)".into())
        } else {
            workflow::resolve_agent(ctx, agent.as_deref())?
        };
        let cfg = workflow::config::Config::load(&ctx.repo.root)?;
        let opts = workflow::Options {
            task,
            agent: agent.clone(),
            max_iterations: cfg.max_iterations_or(max_iterations),
            timeout: cfg.timeout_or(timeout),
            no_commit,
            dry_run,
            force,
            agent_identity: None,
            validation: validation.into(),
            whole_tree: in_worktree,
        };
        let report = match workflow::implement(ctx, &opts, &stderr_progress()) {
            Err(e) => return interrupted(task, e, json, out),
            Ok(report) => report,
        };
        if dry_run && json {
            let changes: Vec<serde_json::Value> = report
                .planned_changes
                .iter()
                .map(
                    |c| serde_json::json!({"file": ctx.repo.relative(&c.path), "diff": c.unified_diff(&ctx.repo.root)}),
                )
                .collect();
            let value = serde_json::json!({"task": task, "dry_run": true, "agent": agent, "changes": changes});
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            return Ok(deferred(ExitCode::SUCCESS));
        }
        if dry_run {
            writeln!(
                out,
                "dry run: task {task} would be moved to implementing and `{agent}` started; nothing was changed"
            )?;
            for change in &report.planned_changes {
                write!(out, "{}", change.unified_diff(&ctx.repo.root))?;
            }
            return Ok(deferred(ExitCode::SUCCESS));
        }
        Ok(deferred(render(ctx, &report, json, out)?))
    }
}

/// The exit of a run an interrupt stopped: one line (or, with `--json`, one object) saying so
/// and how to resume, and 130, 143 or 129. Any other error is passed on.
fn interrupted(task: u32, err: postflight::Error, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let Some(signal) = err.interrupted() else { return Err(err.into()) };
    let resume = format!("xtask implement {task}");
    if json {
        let value = serde_json::json!({
            "task": task,
            "status": "interrupted",
            "signal": signal.name(),
            "resume": resume,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        writeln!(out, "task {task}: interrupted; run `{resume}` to resume")?;
    }
    Ok(ExitCode::from(signal.exit_code()))
}

/// The exit code of a run that finished: its outcome's, unless an interrupt arrived while its
/// outcome was being recorded or committed (the exit was deferred until that was done).
fn deferred(code: ExitCode) -> ExitCode {
    match postflight::sys::interrupted() {
        Some(signal) => {
            eprintln!("warning: {signal} arrived while the outcome was being recorded; it was finished first");
            ExitCode::from(signal.exit_code())
        }
        None => code,
    }
}

/// The progress of queue runs (`implement <PATH>`), as [`stderr_progress`].
pub fn progress_on_stderr() -> progress::Progress {
    stderr_progress()
}

/// Progress on stderr: a live line on a terminal, plain lines otherwise, colour unless NO_COLOR.
fn stderr_progress() -> progress::Progress {
    let stderr = std::io::stderr();
    let mode = if stderr.is_terminal() {
        progress::Mode::Terminal { color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) }
    } else {
        progress::Mode::Plain
    };
    progress::Progress::new(Box::new(stderr), mode)
}

/// Prints the run's summary (text or JSON) and returns the outcome's exit code.
fn render(ctx: &Context, report: &workflow::Report, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if let (Some(error), Some(command)) = (&report.commit_error, &report.commit_command) {
        eprintln!("error: the outcome is recorded, but the task's commit failed: {error}");
        eprintln!("hint: fix what it reports, then finish with: {command}");
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report.to_json())?)?;
        return Ok(ExitCode::from(report.exit_code()));
    }
    let n = report.task;
    let outcome = &report.outcome;
    let headline = match outcome {
        workflow::postflight::Outcome::Completed => format!("task {n}: completed"),
        workflow::postflight::Outcome::Partial { phases_completed, phases_total, resume_phase } => format!(
            "task {n}: partial ({phases_completed} of {phases_total} phases); run `xtask implement {n}` to resume at phase {resume_phase}"
        ),
        workflow::postflight::Outcome::ReviewNeeded { reason, .. } => format!("task {n}: needs review: {reason}"),
        workflow::postflight::Outcome::Blocked { reason } => format!("task {n}: blocked: {reason}"),
        workflow::postflight::Outcome::Failed { reason } => format!("task {n}: failed: {reason}"),
        workflow::postflight::Outcome::ValidationFailed { reason } => format!(
            "task {n}: {reason}; the task stays implementing (`xtask log {n}` and the log above show the output)"
        ),
        workflow::postflight::Outcome::AgentError { reason } => {
            format!("task {n}: the agent failed: {reason}; the task stays implementing and `xtask implement {n}` resumes")
        }
        workflow::postflight::Outcome::MetadataMissing { path } => format!(
            "task {n}: the agent wrote no metadata ({path}); the task stays implementing and `xtask implement {n}` resumes"
        ),
        workflow::postflight::Outcome::MetadataInvalid { path, error } => format!(
            "task {n}: invalid metadata in {path}: {error}; the task stays implementing and `xtask implement {n}` resumes"
        ),
    };
    writeln!(out, "{headline}")?;
    writeln!(out, "  validation  {}", report.validation.as_str())?;
    for r in &report.validation_records {
        writeln!(out, "    {} ({}, {:.1}s) {}", r.command, r.how(), r.duration_ms as f64 / 1000.0, r.log)?;
    }
    if let (Some(reason), None) = (&report.stop_reason, outcome.reason()) {
        writeln!(out, "  reason      {reason}")?;
    }
    writeln!(out, "  session     {}", report.session_id)?;
    writeln!(out, "  iterations  {}{}", report.iterations, if report.resumed { " (resumed)" } else { "" })?;
    for c in &report.commits {
        writeln!(out, "  commit      {} {} ({} files)", &c.id[..c.id.len().min(10)], c.subject, c.paths.len())?;
    }
    if !report.artifacts.is_empty() {
        writeln!(out, "  artifacts   {}", report.artifacts.join(", "))?;
    }
    if report.commit_error.is_some() {
        writeln!(out, "  commit      FAILED (exit 5): the outcome is recorded; see the hint above")?;
    }
    let _ = ctx;
    Ok(ExitCode::from(report.exit_code()))
}

#[derive(clap::Args, Debug)]
pub struct PreflightArgs {
    /// The task number
    #[arg(value_parser = crate::args::task_number)]
    task: u32,
    /// The timeout recorded in the marker and the delegation (seconds)
    #[arg(long, value_name = "SECS", default_value_t = workflow::config::DEFAULT_TIMEOUT)]
    timeout: u64,
    /// Implement a completed task again
    #[arg(long)]
    force: bool,
}

impl PreflightArgs {
    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let (delegation, warnings) = workflow::preflight_only(ctx, self.task, self.force, self.timeout)?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&delegation)?)?;
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args, Debug)]
pub struct PostflightArgs {
    /// The task number
    #[arg(value_parser = crate::args::task_number)]
    task: u32,
    /// Record the outcome but make no commit
    #[arg(long)]
    no_commit: bool,
    /// `Name <email>` for the Co-authored-by trailer
    #[arg(long, value_name = "IDENTITY")]
    agent_identity: Option<String>,
    #[command(flatten)]
    validation: ValidationArgs,
    /// Print one JSON object instead of the text summary
    #[arg(long)]
    json: bool,
}

impl PostflightArgs {
    pub fn json(&self) -> bool {
        self.json
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        postflight::sys::install_interrupt_handlers()?;
        let vopts = self.validation.into();
        let report =
            workflow::postflight_only(ctx, self.task, self.no_commit, self.agent_identity, &vopts, &stderr_progress())?;
        Ok(deferred(render(ctx, &report, self.json, out)?))
    }
}

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Build the demo repository here instead of a new temporary directory
    #[arg(long, value_name = "DIR")]
    dir: Option<std::path::PathBuf>,
}

impl DemoArgs {
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        postflight::sys::install_interrupt_handlers()?;
        let dir = match self.dir {
            Some(d) => {
                std::fs::create_dir_all(&d)?;
                d
            }
            None => workflow::demo::make_dir()?,
        };
        workflow::demo::create_repo(&dir)?;
        writeln!(out, "demo repository: {}", dir.display())?;
        writeln!(out, "  task 1 (planned, 2 phases); the user has a staged README.md, an unstaged CHANGELOG.md")?;
        writeln!(out, "  and an untracked notes.txt that no task commit may take.")?;
        writeln!(out)?;
        let exe = std::env::current_exe()?;
        let agent = format!("'{}' demo-agent", exe.display().to_string().replace('\'', r"'\''"));
        let ctx = Context::from_env(&dir)?;
        writeln!(out, "$ xtask implement 1 --agent \"xtask demo-agent\"")?;
        out.flush()?;
        let opts = workflow::Options {
            task: 1,
            agent,
            max_iterations: workflow::config::DEFAULT_MAX_ITERATIONS,
            timeout: 600,
            no_commit: false,
            dry_run: false,
            force: false,
            agent_identity: None,
            validation: workflow::ValidationOptions::default(),
            whole_tree: false,
        };
        let report = match workflow::implement(&ctx, &opts, &stderr_progress()) {
            Err(e) => return interrupted(1, e, false, out),
            Ok(report) => report,
        };
        let code = deferred(render(&ctx, &report, false, out)?);
        writeln!(out)?;
        writeln!(out, "$ git log --stat")?;
        write!(out, "{}", workflow::demo::git(&dir, &["log", "--stat"])?)?;
        writeln!(out, "$ git status --short   # the user's own work, untouched")?;
        write!(out, "{}", workflow::demo::git(&dir, &["status", "--short"])?)?;
        writeln!(out)?;
        writeln!(out, "Look at: {}/specs/state.json, specs/TODO.md, specs/1_add_greeting/", dir.display())?;
        writeln!(out, "Agent output: {}/specs/1_add_greeting/.postflight-agent.log", dir.display())?;
        Ok(code)
    }
}

#[derive(clap::Args, Debug)]
pub struct DemoAgentArgs {}

impl DemoAgentArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let code = workflow::demo::run_agent(&std::env::current_dir()?)?;
        Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
    }
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Exit codes:
  0  every recorded command exited as recorded and the work tree is the validated tree
  1  a command's exit code differs from the record, or the tree is not the recorded one
  2  bad usage, an unknown task, or a task without a validation record")]
pub struct VerifyArgs {
    /// The task number
    #[arg(value_parser = crate::args::task_number)]
    task: u32,
    /// Print one JSON object instead of the text summary
    #[arg(long)]
    json: bool,
}

impl VerifyArgs {
    pub fn json(&self) -> bool {
        self.json
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        postflight::sys::install_interrupt_handlers()?;
        let cfg = workflow::config::Config::load(&ctx.repo.root)?;
        let report = match workflow::validate::verify(ctx, self.task, cfg.validation_timeout(), &stderr_progress()) {
            Err(e) => return interrupted(self.task, e, self.json, out),
            Ok(r) => r,
        };
        let code = if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) };
        if self.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            return Ok(code);
        }
        let n = report.task;
        let verdict = if report.ok { "verified" } else { "NOT verified" };
        writeln!(out, "task {n}: {verdict}")?;
        let tree = if report.tree_matches { "the recorded one" } else { "differs from the record" };
        writeln!(
            out,
            "  tree        {} ({tree}; recorded {})",
            report.tree,
            report.recorded_tree.as_deref().unwrap_or("none")
        )?;
        if !report.tree_matches {
            let head = if report.head_tree_matches { "is" } else { "is not" };
            writeln!(out, "  committed   HEAD's content {head} the recorded one")?;
            if !report.uncommitted.is_empty() {
                writeln!(
                    out,
                    "  uncommitted {} (commit or stash them to compare the committed content alone)",
                    report.uncommitted.join(", ")
                )?;
            }
        }
        for c in &report.commands {
            let show = |code: Option<i32>| code.map_or("killed".to_owned(), |c| format!("exit {c}"));
            let mark = if c.matches { "ok  " } else { "DIFF" };
            writeln!(
                out,
                "  {mark}        {} ({} now, {} recorded)",
                c.command,
                show(c.exit_code),
                show(c.recorded_exit_code)
            )?;
        }
        Ok(code)
    }
}
