//! Worktree runs: `implement N [M ...] --worktree --jobs K`, `land N`, `worktree list`,
//! `worktree remove N [--force]`: thin wrappers over `postflight::workflow::parallel`.

use std::io::Write;
use std::process::ExitCode;

use postflight::workflow::parallel::{self, worktree, TaskResult};
use postflight::Context;

/// `implement` with several tasks, `--worktree` or `--jobs K`.
pub struct Implement {
    pub tasks: Vec<String>,
    pub jobs: usize,
    pub agent: Option<String>,
    pub max_iterations: Option<u32>,
    pub timeout: Option<u64>,
    pub force: bool,
    pub validation: crate::implement::ValidationArgs,
    pub keep_iterations: bool,
    pub push: bool,
    pub json: bool,
}

impl Implement {
    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let tasks = self
            .tasks
            .iter()
            .map(|t| crate::args::task_number(t).map_err(|e| postflight::Error::refused(e, None)))
            .collect::<Result<Vec<u32>, _>>()?;
        let agent = postflight::workflow::resolve_agent(ctx, self.agent.as_deref())?;
        let cfg = postflight::workflow::config::Config::load(&ctx.repo.root)?;
        let mut child_args = vec![
            "--agent".to_owned(),
            agent,
            "--max-iterations".to_owned(),
            cfg.max_iterations_or(self.max_iterations).to_string(),
            "--timeout".to_owned(),
            cfg.timeout_or(self.timeout).to_string(),
        ];
        if self.force {
            child_args.push("--force".to_owned());
        }
        child_args.extend(self.validation.to_args());
        let opts = parallel::Options {
            tasks,
            jobs: self.jobs,
            program: std::env::current_exe()?,
            child_args,
            keep_iterations: self.keep_iterations,
            push: self.push,
        };
        let json = self.json;
        let results = parallel::run(ctx, &opts, &|r: &TaskResult| {
            if !json {
                eprintln!("{}", line(r));
            }
        })?;
        report(&results, json, out)
    }
}

/// One line per finished task.
fn line(r: &TaskResult) -> String {
    let mut s = format!("task {}: {}", r.task, r.status);
    if let Some(run) = r.run_status.as_deref().filter(|s| *s != r.status) {
        s.push_str(&format!(" (run: {run})"));
    }
    if let Some(c) = r.landed.last() {
        s.push_str(&format!(", landed {}", &c[..c.len().min(10)]));
    }
    if let Some(m) = &r.message {
        s.push_str(&format!(": {m}"));
    }
    s
}

/// The summary table (or one JSON object per task) and the exit code: 0 when every task
/// completed, else the largest task exit code (interrupts first).
fn report(results: &[TaskResult], json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    if json {
        let list: Vec<serde_json::Value> =
            results.iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
    } else {
        writeln!(out, "{:<6} {:<18} {:<12} {:>8}  {:<10} branch", "task", "status", "run", "seconds", "landed")?;
        for r in results {
            writeln!(
                out,
                "{:<6} {:<18} {:<12} {:>8.1}  {:<10} {}{}",
                r.task,
                r.status,
                r.run_status.as_deref().unwrap_or("-"),
                r.duration_ms as f64 / 1000.0,
                r.landed.last().map(|c| &c[..c.len().min(10)]).unwrap_or("-"),
                r.branch,
                if r.removed { " (removed)" } else { "" }
            )?;
        }
    }
    let code = results
        .iter()
        .map(|r| r.exit_code)
        .max_by_key(|c| match c {
            129 | 130 | 143 => 1000,
            c => u32::from(*c),
        })
        .unwrap_or(0);
    Ok(ExitCode::from(code))
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Exit codes: 0 landed (and pushed), 2 refused, 4 conflict, refused or not pushed")]
pub struct LandArgs {
    /// The task whose worktree branch to land
    #[arg(value_parser = crate::args::task_number)]
    task: u32,
    /// Land the branch's commits one by one instead of as one commit
    #[arg(long)]
    keep_iterations: bool,
    /// Push to the upstream after landing (fetch, land again on a moved remote tip, up to 5 attempts)
    #[arg(long)]
    push: bool,
    /// Print one JSON object
    #[arg(long)]
    json: bool,
}

impl LandArgs {
    pub fn json(&self) -> bool {
        self.json
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let r = parallel::land_task(ctx, self.task, self.keep_iterations, self.push)?;
        if self.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
        } else {
            writeln!(out, "{}", line(&r))?;
        }
        let code = if r.landed.is_empty() && r.exit_code == 0 { 0 } else { r.exit_code };
        Ok(ExitCode::from(code))
    }
}

#[derive(clap::Args, Debug)]
pub struct WorktreeArgs {
    #[command(subcommand)]
    command: WorktreeCommand,
}

#[derive(clap::Subcommand, Debug)]
enum WorktreeCommand {
    /// List the worktrees of worktree runs: task, state, age, landed or not
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove a task's worktree and branch (only once its work has landed, unless --force)
    Remove {
        /// The task
        #[arg(value_parser = crate::args::task_number)]
        task: u32,
        /// Remove it even though its work has not landed (the work is lost)
        #[arg(long)]
        force: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

impl WorktreeArgs {
    pub fn json(&self) -> bool {
        match &self.command {
            WorktreeCommand::List { json } | WorktreeCommand::Remove { json, .. } => *json,
        }
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        match self.command {
            WorktreeCommand::List { json } => {
                let list = worktree::list(ctx);
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
                } else if list.is_empty() {
                    writeln!(out, "no worktrees")?;
                } else {
                    writeln!(out, "{:<6} {:<14} {:>8}  {:<10} {:<8} path", "task", "state", "age", "landed", "run")?;
                    for l in &list {
                        let run = if l.running {
                            "running"
                        } else if l.dead_run {
                            "dead"
                        } else {
                            "-"
                        };
                        writeln!(
                            out,
                            "{:<6} {:<14} {:>8}  {:<10} {:<8} {}",
                            l.task,
                            l.state,
                            age(l.age_seconds),
                            l.landed,
                            run,
                            l.path
                        )?;
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            WorktreeCommand::Remove { task, force, json } => {
                let m = worktree::remove(&ctx.repo, task, force)?;
                if json {
                    let v = serde_json::json!({"task": task, "removed": true, "branch": m.branch, "path": m.path});
                    writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                } else {
                    writeln!(out, "task {task}: removed worktree {} and branch {}", m.path.display(), m.branch)?;
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
