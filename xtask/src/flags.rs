//! The command line: global flags and one subcommand enum; each subcommand's arguments live
//! in the module that runs it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Deterministic bookkeeping for AI-agent implement runs
///
/// Keeps specs/state.json, specs/TODO.md and the plan files in step, runs the implement
/// workflow and commits only the paths that belong to the task.
#[derive(Parser, Debug)]
#[command(
    name = "xtask",
    version = env!("XTASK_VERSION"),
    propagate_version = true,
    after_help = "Exit codes: 0 ok, 1 internal error, 2 bad usage or input (no file changed), \
                  3 implement stopped partial, 4 implement blocked or failed, \
                  5 outcome recorded but its commit failed, \
                  129/130/143 implement interrupted by SIGHUP/SIGINT/SIGTERM (resumable); \
                  check and doctor exit 1 when a check fails.\n\
                  With --json, results and errors are JSON on stdout.\n\
                  XTASK_NOW (RFC 3339) fixes every timestamp written, XTASK_SESSION_ID the session id."
)]
pub struct Cli {
    /// Run as if started in <DIR> (like git -C)
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands, in the order `--help` lists them: the run, its halves and its control first,
/// then the ledger, then the guards, then setup.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Implement a task: preflight, the agent loop, postflight, commit, cleanup
    Implement(crate::implement::ImplementArgs),
    /// Stages 1-4 only (for an LLM session that orchestrates): validate, mark implementing, print the delegation
    Preflight(crate::implement::PreflightArgs),
    /// Stages 6-10 only: record the outcome from the metadata file, commit, clean up
    Postflight(crate::implement::PostflightArgs),
    /// Run a task's recorded validation commands on the work tree and compare with the record
    Verify(crate::implement::VerifyArgs),
    /// Stop a live run of a task (its xtask and its agent's process group); the run stays resumable
    Cancel(crate::cancel::CancelArgs),
    /// Print a task's run log (the agent's output, one header and one exit line per invocation)
    Log(crate::log::LogArgs),
    /// Show all tasks, or what each ledger file says about one task
    Status(crate::tasks::StatusArgs),
    /// List the tasks ready to implement: planned, with a plan, every dependency completed
    Next(crate::plan::NextArgs),
    /// Write a task's next plan (`plan new N [--phase TITLE]...`) and move it to planned
    Plan(crate::plan::PlanArgs),
    /// Manage tasks (create)
    Task(crate::tasks::TaskArgs),
    /// Move a task to a status in state.json, TODO.md and the plan header together
    SetStatus(crate::tasks::SetStatusArgs),
    /// Commit a task's paths, and only that task's changes to state.json and TODO.md
    Commit(crate::commit::CommitArgs),
    /// Check that state.json, TODO.md and plan headers agree; --fix repairs the derived lines
    Check(crate::guard::CheckArgs),
    /// Run jq filters over specs/state.json (jq 1.6 output, no jq needed)
    Query(crate::query::QueryArgs),
    /// Create specs/state.json and specs/TODO.md if missing and ignore transient files
    Init(crate::tasks::InitArgs),
    /// Check the setup (ledger, agent, hooks, git identity, ignores, stale markers and locks) and say how to fix it
    Doctor(crate::doctor::DoctorArgs),
    /// Install or remove the git pre-commit hook and the Claude Code stop hooks
    Hooks(crate::guard::HooksArgs),
    /// Claude Code hook handlers (`hook stop` for Stop and SubagentStop)
    Hook(crate::guard::HookArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(crate::completions::CompletionsArgs),
    /// Show the main job on a throwaway repository with a scripted agent
    Demo(crate::implement::DemoArgs),
    /// Benchmark against the original bash+jq workflow (run with `cargo run --release -p xtask -- bench`)
    #[command(hide = true)]
    Bench(crate::bench::BenchArgs),
    /// git's merge driver for specs/state.json and specs/TODO.md: `merge-driver %O %A %B %P` (installed by `hooks install --merge`)
    MergeDriver(crate::merge::MergeDriverArgs),
    /// Land a worktree run's branch on the current branch (after its landing conflict was resolved)
    Land(crate::parallel::LandArgs),
    /// The worktrees of worktree runs (`implement --worktree`): list, remove
    Worktree(crate::parallel::WorktreeArgs),
    /// The scripted agent used by `demo` and the tests (reads XTASK_DELEGATION, XTASK_DEMO_SCRIPT)
    #[command(hide = true)]
    DemoAgent(crate::implement::DemoAgentArgs),
}

impl Command {
    /// Whether `--json` was given: errors are then printed as JSON on stdout too.
    pub fn json(&self) -> bool {
        match self {
            Command::Implement(a) => a.json(),
            Command::Postflight(a) => a.json(),
            Command::Verify(a) => a.json(),
            Command::Cancel(a) => a.json(),
            Command::Status(a) => a.json(),
            Command::Next(a) => a.json(),
            Command::Plan(a) => a.json(),
            Command::Task(a) => a.json(),
            Command::SetStatus(a) => a.json(),
            Command::Commit(a) => a.json(),
            Command::Check(a) => a.json(),
            Command::Init(a) => a.json(),
            Command::Doctor(a) => a.json(),
            Command::Hooks(a) => a.json(),
            Command::Land(a) => a.json(),
            Command::Worktree(a) => a.json(),
            _ => false,
        }
    }
}
