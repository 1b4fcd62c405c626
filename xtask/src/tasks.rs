//! `init`, `task new`, `status` and `set-status`: thin wrappers over `postflight::tasks`.

use std::io::Write;
use std::process::ExitCode;

use postflight::ledger::status::Status;
use postflight::tasks;
use postflight::Context;

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Print `{"created": [...], "kept": [...], "ignored": [...], "next_steps": [...]}` instead of text
    #[arg(long)]
    json: bool,
}

impl InitArgs {
    pub fn json(&self) -> bool {
        self.json
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let report = tasks::init(ctx)?;
        if self.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        for f in &report.created {
            writeln!(out, "created {f}")?;
        }
        for f in &report.kept {
            writeln!(out, "kept {f} (exists)")?;
        }
        if !report.ignored.is_empty() {
            writeln!(out, "added to .gitignore: {}", report.ignored.join(" "))?;
        }
        writeln!(out, "next:")?;
        for step in &report.next_steps {
            writeln!(out, "  {step}")?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args, Debug)]
pub struct TaskArgs {
    #[command(subcommand)]
    command: TaskCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TaskCommand {
    /// Create a task in state.json and TODO.md and print its number
    New {
        /// The task's title
        title: String,
        /// The task's language (general, meta, markdown, lean, latex, typst, ...)
        #[arg(long)]
        language: Option<String>,
        /// A description paragraph
        #[arg(long)]
        description: Option<String>,
        /// A priority (high, medium, low)
        #[arg(long)]
        priority: Option<String>,
        /// Also write its first plan (as `plan new`) and create it planned
        #[arg(long)]
        plan: bool,
        /// A phase title of that plan, in order (repeatable; needs --plan)
        #[arg(long = "phase", value_name = "TITLE", requires = "plan")]
        phases: Vec<String>,
        /// Print `{"task": N, "files": [...]}` instead of the number (with --plan, also `"plan"`)
        #[arg(long)]
        json: bool,
    },
    /// Move a task to another number: state.json entry, TODO.md block, its directory, its plan and links (refused when NEW is in use)
    Renumber {
        /// The task's number now
        #[arg(value_parser = crate::args::task_number)]
        old: u32,
        /// Its new number (must be unused)
        #[arg(value_parser = crate::args::task_number)]
        new: u32,
        /// Print `{"old", "new", "files", "moved"}` instead of text
        #[arg(long)]
        json: bool,
    },
}

impl TaskArgs {
    pub fn json(&self) -> bool {
        match &self.command {
            TaskCommand::New { json, .. } | TaskCommand::Renumber { json, .. } => *json,
        }
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        match self.command {
            TaskCommand::Renumber { old, new, json } => return crate::merge::renumber(ctx, old, new, json, out),
            TaskCommand::New { title, language, description, priority, plan, phases, json } => {
                let input = tasks::NewTask { title, language, description, priority };
                if plan {
                    // The number stays the only line on stdout; the plan is named on stderr.
                    let written = postflight::plan_new::new_task_with_plan(ctx, &input, &phases)?;
                    for w in &written.warnings {
                        eprintln!("warning: {w}");
                    }
                    if json {
                        let value =
                            serde_json::json!({ "task": written.task, "files": written.files, "plan": written });
                        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
                    } else {
                        eprintln!(
                            "created {} ({} phase(s)); task {} is planned",
                            written.plan,
                            written.phases.len(),
                            written.task
                        );
                        writeln!(out, "{}", written.task)?;
                    }
                } else {
                    let (n, changes) = tasks::new_task(ctx, &input)?;
                    if json {
                        let files: Vec<String> = changes.iter().map(|c| ctx.repo.relative(&c.path)).collect();
                        let value = serde_json::json!({ "task": n, "files": files });
                        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
                    } else {
                        writeln!(out, "{n}")?;
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Show one task of specs/state.json in detail, or every task of a PATH (a spec directory or a phase document)
    #[arg(value_name = "TASK|PATH")]
    task: Option<String>,
    /// PATH only: read PATH as this format instead of guessing from what it is
    #[arg(long, value_name = "FORMAT", value_parser = ["spec", "phases", "payload"])]
    format: Option<String>,
    /// Only tasks with this status (repeatable: any of them), e.g. --status implementing
    #[arg(long = "status", value_name = "STATUS", conflicts_with = "task")]
    statuses: Vec<String>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

/// A RUN cell: the run state, a long reason cut to `RUN_WIDTH` characters (JSON has it whole).
fn run_cell(run: Option<&tasks::RunState>) -> String {
    const RUN_WIDTH: usize = 60;
    let text = run.map(ToString::to_string).unwrap_or_else(|| "-".into());
    if text.chars().count() <= RUN_WIDTH {
        return text;
    }
    let cut: String = text.chars().take(RUN_WIDTH - 3).collect();
    format!("{}...", cut.trim_end())
}

impl StatusArgs {
    pub fn json(&self) -> bool {
        self.json
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let task = match self.task.as_deref().map(|t| crate::queue::target(ctx, t)).transpose()? {
            Some(crate::queue::Target::Path(p)) => {
                return crate::queue::status(ctx, &p, self.format.as_deref(), self.json, out);
            }
            Some(crate::queue::Target::Task(n)) => Some(n),
            None => None,
        };
        match task {
            None => {
                let rows = tasks::list_filtered(ctx, &self.statuses)?;
                if self.json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
                    return Ok(ExitCode::SUCCESS);
                }
                let lang_w = rows.iter().map(|r| r.language.len()).max().unwrap_or(8).max(8);
                let status_w = rows.iter().map(|r| r.status.len()).max().unwrap_or(6).max(6);
                let runs: Vec<String> = rows.iter().map(|r| run_cell(r.run.as_ref())).collect();
                let run_w = runs.iter().map(|r| r.chars().count()).max().unwrap_or(3).max(3);
                writeln!(
                    out,
                    "{:>5}  {:<status_w$}  {:<lang_w$}  {:<10}  {:<run_w$}  TITLE",
                    "TASK", "STATUS", "LANGUAGE", "PLAN", "RUN"
                )?;
                for (r, run) in rows.into_iter().zip(runs) {
                    let plan = match (r.phases_done, r.phases_total) {
                        (Some(d), Some(t)) => format!("{d}/{t} phases"),
                        _ => "-".into(),
                    };
                    writeln!(
                        out,
                        "{:>5}  {:<status_w$}  {:<lang_w$}  {:<10}  {run:<run_w$}  {}",
                        r.number, r.status, r.language, plan, r.title
                    )?;
                }
            }
            Some(n) => {
                let d = tasks::detail(ctx, n)?;
                if self.json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&d)?)?;
                    return Ok(ExitCode::SUCCESS);
                }
                let none = || "-".to_owned();
                writeln!(out, "task {}: {}", d.number, d.title)?;
                writeln!(out, "  language     {}", d.language)?;
                writeln!(out, "  state.json   {}", d.state_status)?;
                writeln!(out, "  TODO.md      {}", d.todo_marker.map(|m| format!("[{m}]")).unwrap_or_else(none))?;
                writeln!(out, "  plan         {}", d.plan.clone().unwrap_or_else(none))?;
                writeln!(out, "  plan header  {}", d.plan_marker.map(|m| format!("[{m}]")).unwrap_or_else(none))?;
                if !d.phases.is_empty() {
                    let next = d.resume_phase.as_ref().map(|id| format!(", resume at phase {id}")).unwrap_or_default();
                    writeln!(out, "  phases       {}/{} done{next}", d.phases_done, d.phases.len())?;
                    for p in &d.phases {
                        let marker = p.marker.as_ref().map(|m| format!("[{m}]")).unwrap_or_else(|| "-".into());
                        writeln!(out, "    {:>5}  {marker:<15}  {}", p.id, p.title)?;
                    }
                }
                writeln!(out, "  run          {}", d.run.as_ref().map(ToString::to_string).unwrap_or_else(none))?;
                let outcome = match (&d.last_outcome, &d.reason) {
                    (Some(o), Some(r)) => format!("{o}: {r}"),
                    (Some(o), None) => o.clone(),
                    _ => none(),
                };
                writeln!(out, "  last outcome {outcome}")?;
                writeln!(out, "  session      {}", d.session_id.unwrap_or_else(none))?;
                writeln!(out, "  log          {}", d.log.unwrap_or_else(none))?;
                writeln!(out, "  resume       {}", d.resume_command.unwrap_or_else(none))?;
                writeln!(out, "  marker       {}", d.marker.unwrap_or_else(|| "none".into()))?;
                writeln!(out, "  consistent   {}", if d.consistent { "yes" } else { "no (run `xtask check`)" })?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(clap::Args, Debug)]
pub struct SetStatusArgs {
    /// The task number
    #[arg(value_parser = crate::args::task_number)]
    task: u32,
    /// The new status: not_started, researching, researched, planning, planned, revising, revised,
    /// implementing, partial, completed, blocked, abandoned, expanded (or a marker such as "[PLANNED]")
    status: String,
    /// Allow a transition the lifecycle forbids
    #[arg(long)]
    force: bool,
    /// Print `{"task", "from", "to", "files", "warnings"}` instead of text
    #[arg(long)]
    json: bool,
}

impl SetStatusArgs {
    pub fn json(&self) -> bool {
        self.json
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let status = Status::parse_user(&self.status)?;
        let change =
            tasks::set_status(ctx, &tasks::SetStatus { task: self.task, status: status.clone(), force: self.force })?;
        for w in &change.warnings {
            eprintln!("warning: {w}");
        }
        let files: Vec<String> = change.changes.iter().map(|c| ctx.repo.relative(&c.path)).collect();
        if self.json {
            let value = serde_json::json!({
                "task": self.task,
                "from": change.from.to_string(),
                "to": status.to_string(),
                "files": files,
                "warnings": change.warnings,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        writeln!(
            out,
            "task {}: {} -> {} ({})",
            self.task,
            change.from,
            status,
            if files.is_empty() { "no change".into() } else { files.join(", ") }
        )?;
        Ok(ExitCode::SUCCESS)
    }
}
