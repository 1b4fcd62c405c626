//! `commit`: commits a task's paths, and only its share of the ledger files, through
//! `postflight::git::commit`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use postflight::git::{self, CommitOutcome, CommitRequest};
use postflight::Context;

#[derive(clap::Args, Debug)]
pub struct CommitArgs {
    /// The task the commit belongs to (its state.json and TODO.md changes are the only ledger changes committed)
    #[arg(value_parser = crate::args::task_number)]
    task: u32,
    /// The subject line [default: "task N: update"]
    #[arg(short = 'm', long = "message", value_name = "SUBJECT")]
    message: Option<String>,
    /// A body paragraph, placed between the subject and the trailers
    #[arg(long, value_name = "TEXT")]
    body: Option<String>,
    /// Add a Co-authored-by trailer for this identity
    #[arg(long, value_name = "NAME <EMAIL>")]
    agent_identity: Option<String>,
    /// Skip the pre-commit and commit-msg hooks
    #[arg(long)]
    no_verify: bool,
    /// Print `{"committed": bool, "commit", "subject", "paths", "skipped"}` instead of text
    #[arg(long)]
    json: bool,
    /// Files or directories to commit, relative to the repository root (or absolute)
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

impl CommitArgs {
    pub fn json(&self) -> bool {
        self.json
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let CommitArgs { task, message, body, agent_identity, no_verify, json, paths } = self;
        let req = CommitRequest {
            task: Some(postflight::TaskId::from(task)),
            scoping: Some(postflight::ledger::scope::TaskScoping::shared()),
            paths,
            subject: message.unwrap_or_else(|| format!("task {task}: update")),
            body,
            session_id: ctx.session_id_or_new(),
            agent_identity,
            trailers: Vec::new(),
            force: Vec::new(),
            no_verify,
            untrack: Vec::new(),
            prefetch: None,
        };
        let outcome = git::commit(&ctx.repo, &req)?;
        if json {
            let value = match &outcome {
                CommitOutcome::Committed { id, paths, skipped } => serde_json::json!({
                    "task": task, "committed": true, "commit": id, "subject": req.subject,
                    "paths": paths, "skipped": skipped,
                }),
                CommitOutcome::NothingToCommit { skipped } => serde_json::json!({
                    "task": task, "committed": false, "commit": null, "subject": req.subject,
                    "paths": [], "skipped": skipped,
                }),
            };
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        let skipped = match outcome {
            CommitOutcome::Committed { id, paths, skipped } => {
                let short = id.get(..12).unwrap_or(&id);
                let n = paths.len();
                writeln!(out, "committed {short} {} ({n} path{})", req.subject, if n == 1 { "" } else { "s" })?;
                for p in &paths {
                    writeln!(out, "  {p}")?;
                }
                skipped
            }
            CommitOutcome::NothingToCommit { skipped } => {
                writeln!(out, "nothing to commit: the paths hold no change for task {task} against HEAD")?;
                skipped
            }
        };
        for note in skipped {
            eprintln!("note: skipped {note}");
        }
        Ok(ExitCode::SUCCESS)
    }
}
