//! `plan new` and `next`: thin wrappers over `postflight::plan_new` and `postflight::tasks::next`.

use std::io::Write;
use std::process::ExitCode;

use postflight::plan_new::{self, PlanWritten};
use postflight::tasks;
use postflight::Context;

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(subcommand)]
    command: PlanCommand,
}

#[derive(clap::Subcommand, Debug)]
enum PlanCommand {
    /// Write the task's next plan version (implementation-NNN.md) and move the task to planned
    New {
        /// The task number
        #[arg(value_parser = crate::args::task_number)]
        task: u32,
        /// A phase title, in order (repeatable); without one the plan has one phase, "Implementation"
        #[arg(long = "phase", value_name = "TITLE")]
        phases: Vec<String>,
        /// Write the plan whatever the task's status (implementing, partial, completed, ...)
        /// and move it back to planned; a live run still refuses
        #[arg(long)]
        force: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

impl PlanArgs {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match &self.command {
            PlanCommand::New { json, .. } => *json,
        }
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        match self.command {
            PlanCommand::New { task, phases, force, json } => {
                let written = plan_new::plan_new(ctx, &plan_new::NewPlan { task, phases, force })?;
                print_written(&written, json, out)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Prints what `plan new` (or `task new --plan`) wrote: warnings on stderr, then the report.
pub fn print_written(w: &PlanWritten, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    for warning in &w.warnings {
        eprintln!("warning: {warning}");
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(w)?)?;
        return Ok(());
    }
    let count = w.phases.len();
    writeln!(out, "created {} ({count} phase{})", w.plan, if count == 1 { "" } else { "s" })?;
    writeln!(out, "task {}: {} -> planned ({})", w.task, w.from, w.files.join(", "))?;
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct NextArgs {
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

impl NextArgs {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        self.json
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let report = tasks::next(ctx)?;
        if self.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&report.ready)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        if report.ready.is_empty() {
            let why: Vec<String> = report
                .waiting
                .iter()
                .map(|w| {
                    if w.no_plan {
                        format!("{} has no plan", w.number)
                    } else {
                        format!("{} waits for {}", w.number, join(&w.waiting_for))
                    }
                })
                .collect();
            let why = if why.is_empty() { "no task is planned".to_owned() } else { why.join("; ") };
            writeln!(out, "no task is ready to implement ({why})")?;
            return Ok(ExitCode::SUCCESS);
        }
        let prio_w = report.ready.iter().map(|r| r.priority.as_deref().unwrap_or("-").len()).max().unwrap_or(0).max(8);
        let lang_w = report.ready.iter().map(|r| r.language.len()).max().unwrap_or(0).max(8);
        let plan_w = report.ready.iter().map(|r| r.plan.len()).max().unwrap_or(0).max(4);
        writeln!(out, "{:>5}  {:<prio_w$}  {:<lang_w$}  {:<plan_w$}  TITLE", "TASK", "PRIORITY", "LANGUAGE", "PLAN")?;
        for r in &report.ready {
            writeln!(
                out,
                "{:>5}  {:<prio_w$}  {:<lang_w$}  {:<plan_w$}  {}",
                r.number,
                r.priority.as_deref().unwrap_or("-"),
                r.language,
                r.plan,
                r.title
            )?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn join(ns: &[u32]) -> String {
    ns.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}
