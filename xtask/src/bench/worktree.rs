//! `bench worktree`: worktree runs (`implement 1 .. T --jobs K`) on a small generated repository
//! with an instant scripted agent, for K = 1, 4 and 8. The agent's own time is measured by its
//! wrapper and subtracted, so what is printed is the tool's overhead per task: creating the
//! worktree, the child run's bookkeeping, mirroring, landing and cleanup. Not a test: run it with
//! `cargo run --release -p xtask -- bench worktree`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use super::{median, ms, run_ok};

#[derive(clap::Args, Debug)]
pub struct WorktreeArgs {
    /// Tasks per run
    #[arg(long, default_value_t = 8)]
    tasks: u32,
    /// Job counts measured
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 8])]
    jobs: Vec<usize>,
    /// Timed runs per job count
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

impl WorktreeArgs {
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let xtask = std::env::current_exe()?;
        writeln!(out, "worktree runs: {} tasks, instant scripted agent, median of {} runs", self.tasks, self.runs)?;
        writeln!(
            out,
            "{:>5}  {:>10}  {:>14}  {:>14}  {:>16}",
            "jobs", "wall ms", "wall/task ms", "agent/task ms", "overhead/task ms"
        )?;
        for &jobs in &self.jobs {
            let mut walls = Vec::new();
            let mut agents = Vec::new();
            let mut overheads = Vec::new();
            for round in 0..self.runs.max(1) {
                let path =
                    std::env::temp_dir().join(format!("postflight-bench-wt-{}-{jobs}-{round}", std::process::id()));
                let _ = std::fs::remove_dir_all(&path);
                std::fs::create_dir_all(&path)?;
                let dir = Dir(path);
                setup(dir.path(), self.tasks)?;
                let agent_log = dir.path().join(".git/agent-ms");
                let agent = format!(
                    "s=$(date +%s%N); XTASK_DEMO_SCRIPT=\"{script}\" '{bin}' demo-agent; r=$?; echo $(( ($(date +%s%N) - s) / 1000 )) >> '{log}'; exit $r",
                    script = dir.path().join(".git/script.json").display(),
                    bin = xtask.display(),
                    log = agent_log.display()
                );
                let mut args: Vec<String> = vec!["implement".into()];
                args.extend((1..=self.tasks).map(|n| n.to_string()));
                args.extend(["--jobs".into(), jobs.to_string(), "--json".into(), "--agent".into(), agent]);
                let started = Instant::now();
                let o = Command::new(&xtask).args(&args).current_dir(dir.path()).output()?;
                let wall = started.elapsed();
                if !o.status.success() {
                    bail!("the worktree run failed: {}", String::from_utf8_lossy(&o.stderr));
                }
                let agent_us: f64 =
                    std::fs::read_to_string(&agent_log)?.lines().filter_map(|l| l.trim().parse::<f64>().ok()).sum();
                let n = f64::from(self.tasks);
                // The wall time the agents do not explain, per task: with K at once, K agents'
                // time overlaps, so their total counts 1/K.
                let k = jobs.min(self.tasks as usize).max(1) as f64;
                let own_ms = (ms(wall) - agent_us / 1000.0 / k).max(0.0) / n;
                walls.push(wall);
                agents.push(std::time::Duration::from_secs_f64(agent_us / 1e6 / n));
                overheads.push(std::time::Duration::from_secs_f64(own_ms / 1000.0));
            }
            writeln!(
                out,
                "{:>5}  {:>10.1}  {:>14.1}  {:>14.1}  {:>16.1}",
                jobs,
                ms(median(walls.clone())),
                ms(median(walls)) / f64::from(self.tasks),
                ms(median(agents)),
                ms(median(overheads))
            )?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// A directory removed when dropped.
struct Dir(std::path::PathBuf);

impl Dir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A repository with `tasks` planned one-phase tasks and the agent's script.
fn setup(root: &Path, tasks: u32) -> anyhow::Result<()> {
    let git = |args: &[&str]| run_ok(Command::new("git").args(args).current_dir(root));
    git(&["init", "-q", "-b", "main"])?;
    git(&["config", "user.name", "Bench"])?;
    git(&["config", "user.email", "bench@example.com"])?;
    let entries: Vec<Value> = (1..=tasks)
        .rev()
        .map(|n| {
            json!({"project_number": n, "project_name": format!("task_{n}"), "status": "planned", "language": "general",
                   "description": "bench", "created": "2026-03-01T00:00:00Z"})
        })
        .collect();
    let state = json!({"active_projects": entries, "completed_projects": [], "next_project_number": tasks + 1});
    std::fs::create_dir_all(root.join("specs"))?;
    std::fs::write(root.join("specs/state.json"), postflight::ledger::json::to_jq_pretty(&state))?;
    let mut todo = format!("---\nnext_project_number: {}\n---\n\n# TODO\n\n## Tasks\n\n", tasks + 1);
    for n in (1..=tasks).rev() {
        todo.push_str(&format!("### {n}. Task {n}\n- **Status**: [PLANNED]\n- **Language**: general\n\n---\n\n"));
        let plan = root.join(format!("specs/{n}_task_{n}/plans/implementation-001.md"));
        std::fs::create_dir_all(plan.parent().context("parent")?)?;
        std::fs::write(
            plan,
            format!("# Plan {n}\n\n- **Status**: [PLANNED]\n\n## Phases\n\n### Phase 1: All [NOT STARTED]\n"),
        )?;
    }
    std::fs::write(root.join("specs/TODO.md"), todo)?;
    std::fs::write(root.join(".gitignore"), ".return-meta.json\n.postflight-pending\n.postflight-loop-guard\n*.log\n")?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "initial"])?;
    let script = json!({"steps": [{
        "write": {"src/{task}.rs": "// done\n"},
        "complete_phases": ["1"],
        "metadata": {"status": "implemented", "summary": "done",
                     "completion_data": {"completion_summary": "done", "roadmap_items": []},
                     "metadata": {"session_id": "{session_id}", "phases_completed": 1, "phases_total": 1}}
    }]});
    std::fs::write(root.join(".git/script.json"), script.to_string())?;
    Ok(())
}
