//! `cancel`: stops a live run of a task (see `postflight::run::cancel`) and leaves
//! it resumable.

use std::io::Write;
use std::process::ExitCode;

use postflight::run as marker;
use postflight::workflow::preflight;
use postflight::{Context, Error};

#[derive(clap::Args, Debug)]
pub struct CancelArgs {
    /// The task number
    #[arg(value_parser = crate::args::task_number)]
    task: u32,
    /// Print one JSON object instead of the text line
    #[arg(long)]
    json: bool,
}

impl CancelArgs {
    pub fn json(&self) -> bool {
        self.json
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let n = self.task;
        let task = postflight::TaskId::from(n);
        let path = marker::task_marker(&ctx.repo.root, &ctx.repo.git_dir, &ctx.repo.specs_dir(), &task)
            .ok_or_else(|| Error::refused(format!("no run of task {n} is live (it has no pending marker)"), None))?;
        let log = path.with_file_name(preflight::AGENT_LOG_FILE);
        let done = marker::cancel(&path, &log, &task)?;
        if self.json {
            let value = serde_json::json!({
                "task": n,
                "status": "cancelled",
                "xtask_pid": done.xtask_pid,
                "xtask_killed": done.xtask_killed,
                "agent_pgid": done.agent_pgid,
                "marker": ctx.repo.relative(&done.marker),
                "resume": format!("xtask implement {n}"),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        let mut what = Vec::new();
        if let Some(pid) = done.xtask_pid {
            what.push(if done.xtask_killed {
                format!("killed xtask (pid {pid}), which did not stop on SIGTERM")
            } else {
                format!("stopped xtask (pid {pid})")
            });
        }
        if let Some(pgid) = done.agent_pgid {
            what.push(format!("killed the agent's process group {pgid}"));
        }
        writeln!(out, "task {n}: cancelled ({}); run `xtask implement {n}` to resume", what.join(", "))?;
        Ok(ExitCode::SUCCESS)
    }
}
