//! `log`: prints a task's run log (`specs/N_slug/.postflight-agent.log`), all of it or one run,
//! and with `--follow` keeps printing while that run is live (see `postflight::workflow::runlog`).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use postflight::workflow::runlog::{self, Selection};
use postflight::Context;

/// How often `--follow` looks for more output and whether the run still lives.
const POLL: Duration = Duration::from_millis(200);

#[derive(clap::Args, Debug)]
#[command(after_help = "A run is one `xtask implement` of the task; each agent invocation in it starts with a \
                        `[postflight] ==>` line (time, session, run pid, iteration, command) and ends with a \
                        `[postflight] <==` line (exit status, duration). Without --run the whole log is printed, \
                        oldest first.")]
pub struct LogArgs {
    /// The task number
    #[arg(value_parser = crate::args::task_number)]
    task: u32,
    /// Only run K: 1 is the oldest, -1 (or `last`) the newest, -2 the one before it
    #[arg(long, value_name = "K", value_parser = run_number, allow_negative_numbers = true)]
    run: Option<i64>,
    /// Keep printing what the run appends until it ends (its marker is gone or its process is dead)
    #[arg(short = 'f', long)]
    follow: bool,
}

fn run_number(s: &str) -> Result<i64, String> {
    if s == "last" {
        return Ok(-1);
    }
    match s.parse::<i64>() {
        Ok(0) | Err(_) => Err("expected a run number: 1 is the oldest, -1 or `last` the newest".into()),
        Ok(k) => Ok(k),
    }
}

impl LogArgs {
    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let LogArgs { task, run, follow } = self;
        let (log, marker) = runlog::paths(ctx, task)?;
        let selection = run.map_or(Selection::All, Selection::Run);
        runlog::show(&log, &marker, selection, follow, POLL, out)?;
        Ok(ExitCode::SUCCESS)
    }
}
