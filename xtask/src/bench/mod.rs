//! `xtask bench`: ours against the peer (benches/peer/, the seed's bash+jq workflow) on the same
//! generated repositories, alternating, several runs each, with medians and ratios: the whole
//! implement run, postflight alone, the stop hook, `check` and a three-file commit, and how each
//! grows with ledger size and history length. Not a test: run it with
//! `cargo run --release -p xtask -- bench` (docs/performance.md has the numbers).

pub mod commit;
pub mod gen;
pub mod merge;
pub mod worktree;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;

use gen::{BenchTask, RepoSpec};

/// The peer's skill, hook and helper script, and the scripted agent both sides run.
const PEER_SKILL: &str = include_str!("../../../benches/peer/skill-implementer.sh");
const PEER_HOOK: &str = include_str!("../../../benches/peer/subagent-postflight.sh");
const PEER_PLAN_STATUS: &str = include_str!("../../../benches/peer/update-plan-status.sh");
const AGENT: &str = include_str!("../../../benches/peer/agent.sh");

/// The peer hook's command line as ProofChecker's settings.json registers it.
const PEER_HOOK_COMMAND: &str = "bash .claude/hooks/subagent-postflight.sh 2>/dev/null || echo '{}'";

/// The session id ours records in the marker for the stop-hook benchmark (the event names it).
const SESSION: &str = "sess_1773695483_b3c4d5";

/// The date in the agent's summary file name.
const SUMMARY_DATE: &str = "20260316";

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    opts: Options,
}

#[derive(clap::Subcommand, Debug)]
enum BenchCommand {
    /// Only the three-file commit: `xtask commit`, the library in-process, `git add && git commit`
    Commit(commit::CommitArgs),
    /// Only the ledger merge driver on a generated ledger (1,000 tasks): in-process and as git runs it
    MergeDriver(merge::MergeArgs),
    /// Only worktree runs: the tool's own time per task with 1, 4 and 8 jobs (agent time excluded)
    Worktree(worktree::WorktreeArgs),
}

#[derive(clap::Args, Debug)]
struct Options {
    /// Ledger sizes (tasks) for the growth table, each with the full history
    #[arg(long, value_delimiter = ',', default_values_t = [10, 1_000, 10_000])]
    sizes: Vec<usize>,
    /// Tasks in the ledger of the real size (ProofChecker's state.json holds 20-70 tasks, 25-60 KB)
    #[arg(long, default_value_t = 30)]
    real_tasks: usize,
    /// Files in every generated repository
    #[arg(long, default_value_t = 10_000)]
    files: usize,
    /// Files of the repository of ProofChecker's own shape the real-size ledger is also measured in
    /// (it tracks about 600 files; 0 skips it)
    #[arg(long, default_value_t = 600)]
    real_files: usize,
    /// Commits in the full history
    #[arg(long, default_value_t = 5_000)]
    commits: usize,
    /// Commits in the short history the real-size ledger is also measured with
    #[arg(long, default_value_t = 10)]
    short_history: usize,
    /// Timed runs per contender and measurement (after one warm-up) on ledgers up to 1,000 tasks
    #[arg(long, default_value_t = 15)]
    runs: usize,
    /// Timed runs on ledgers of more than 1,000 tasks
    #[arg(long, default_value_t = 5)]
    runs_large: usize,
    /// Only these measurements (default: all)
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Op>,
    /// Build the repositories here instead of a temporary directory (kept afterwards)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Run in a debug build anyway (to try the harness; its numbers mean nothing)
    #[arg(long)]
    allow_debug: bool,
}

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
enum Op {
    /// The whole implement run with an instant agent
    Implement,
    /// The same run through the validation gate with one trivial command (`--validate true`);
    /// ours only. Its difference from `implement` is the gate's cost plus `sh -c true`'s own time
    ImplementValidated,
    /// Postflight alone (ours: `xtask postflight N`; peer: its stages 6-10)
    Postflight,
    /// The stop hook when no run is pending (every stop of every session)
    HookIdle,
    /// The stop hook while this session's run owes its metadata (it blocks)
    HookBlock,
    /// The stop hook on a repository migrating from the original workflow: its marker (this
    /// session's, metadata owed), no marker index yet; the first call, which builds the index
    HookMigratedFirst,
    /// The same, on a later call (the index the first call built)
    HookMigrated,
    /// `xtask check` with its result cache warm, as when nothing changed since the last check
    /// (ours only: the original has none)
    Check,
    /// `xtask check` with no result cache, as right after a change: the full check
    CheckCold,
    /// `xtask check --staged`, what the git pre-commit hook runs (ours only)
    CheckStaged,
    /// A three-file commit against `git add && git commit`
    Commit,
}

impl Op {
    const ALL: [Op; 11] = [
        Op::Implement,
        Op::ImplementValidated,
        Op::Postflight,
        Op::HookIdle,
        Op::HookBlock,
        Op::HookMigratedFirst,
        Op::HookMigrated,
        Op::Check,
        Op::CheckCold,
        Op::CheckStaged,
        Op::Commit,
    ];

    fn label(self) -> &'static str {
        match self {
            Op::Implement => "implement (whole run, instant agent)",
            Op::ImplementValidated => "implement + validation gate (`--validate true`)",
            Op::Postflight => "postflight alone",
            Op::HookIdle => "hook stop, no run pending",
            Op::HookBlock => "hook stop, metadata owed (blocks)",
            Op::HookMigratedFirst => "hook stop, original's marker, no index (1st)",
            Op::HookMigrated => "hook stop, original's marker, later call",
            Op::Check => "check (cache warm)",
            Op::CheckCold => "check (no cache: the full check)",
            Op::CheckStaged => "check --staged (pre-commit hook)",
            Op::Commit => "3-file commit",
        }
    }

    fn peer_label(self) -> &'static str {
        match self {
            Op::Implement => "skill-implementer.sh stages 1-11",
            Op::Postflight => "stages 6-10",
            Op::HookIdle | Op::HookBlock | Op::HookMigratedFirst | Op::HookMigrated => "subagent-postflight.sh",
            Op::Check | Op::CheckCold | Op::CheckStaged | Op::ImplementValidated => "(none)",
            Op::Commit => "git add && git commit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Ours,
    Peer,
}

/// A repository to measure on.
#[derive(Debug, Clone)]
struct Scenario {
    tasks: usize,
    commits: usize,
    files: usize,
}

impl Scenario {
    fn name(&self) -> String {
        format!("{}t-{}c-{}f", self.tasks, self.commits, self.files)
    }
}

/// Medians and spread of one contender's samples.
#[derive(Debug, Clone, Copy)]
struct Stats {
    median: Duration,
    min: Duration,
    max: Duration,
    n: usize,
}

impl Stats {
    fn of(mut v: Vec<Duration>) -> Option<Stats> {
        if v.is_empty() {
            return None;
        }
        v.sort();
        Some(Stats { median: median(v.clone()), min: v[0], max: v[v.len() - 1], n: v.len() })
    }
}

/// Medians by (tasks, commits, files, measurement, side).
type Results = BTreeMap<(usize, usize, usize, Op, Side), Stats>;

impl BenchArgs {
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        match self.command {
            Some(BenchCommand::Commit(args)) => {
                if cfg!(debug_assertions) {
                    writeln!(
                        std::io::stderr(),
                        "warning: a debug build; for real numbers use `cargo run --release -p xtask -- bench commit`"
                    )?;
                }
                args.run(out)
            }
            Some(BenchCommand::MergeDriver(args)) => {
                if cfg!(debug_assertions) {
                    writeln!(
                        std::io::stderr(),
                        "warning: a debug build; for real numbers use `cargo run --release -p xtask -- bench merge-driver`"
                    )?;
                }
                args.run(out)
            }
            Some(BenchCommand::Worktree(args)) => {
                if cfg!(debug_assertions) {
                    writeln!(
                        std::io::stderr(),
                        "warning: a debug build; for real numbers use `cargo run --release -p xtask -- bench worktree`"
                    )?;
                }
                args.run(out)
            }
            None => self.opts.run(out),
        }
    }
}

impl Options {
    fn run(self, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        if cfg!(debug_assertions) && !self.allow_debug {
            bail!(
                "this is a debug build, whose numbers mean nothing: run `cargo run --release -p xtask -- bench` \
                 (or pass --allow-debug to try the harness)"
            );
        }
        if self.files < 3 || (self.real_files > 0 && self.real_files < 3) {
            bail!("--files and --real-files must be at least 3 (the commit benchmark changes three files)");
        }
        let ops: Vec<Op> = if self.only.is_empty() { Op::ALL.to_vec() } else { self.only.clone() };
        let mut scenarios = vec![
            Scenario { tasks: self.real_tasks, commits: self.commits, files: self.files },
            Scenario { tasks: self.real_tasks, commits: self.short_history, files: self.files },
        ];
        if self.real_files > 0 {
            scenarios.push(Scenario { tasks: self.real_tasks, commits: self.commits, files: self.real_files });
        }
        for &s in &self.sizes {
            if s != self.real_tasks {
                scenarios.push(Scenario { tasks: s, commits: self.commits, files: self.files });
            }
        }
        let keep = self.dir.is_some();
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("postflight-bench-{}", std::process::id())));
        std::fs::create_dir_all(&dir)?;
        let dir = std::fs::canonicalize(&dir)?;
        let xtask = std::env::current_exe().context("locate the xtask binary")?;
        writeln!(out, "{}", machine())?;
        writeln!(out, "load average before: {}", loadavg())?;
        writeln!(out)?;
        let mut results = Results::new();
        let mut sizes: BTreeMap<usize, usize> = BTreeMap::new();
        let outcome = (|| -> anyhow::Result<()> {
            for sc in &scenarios {
                let runs = if sc.tasks > 1_000 { self.runs_large } else { self.runs };
                let bench = Bench::build(&dir, sc, &xtask)?;
                sizes.insert(sc.tasks, bench.state_bytes);
                writeln!(
                    out,
                    "## {} tasks (state.json {} KB), {} files, {} commits: built in {:.1?}; {runs} runs each",
                    sc.tasks,
                    bench.state_bytes / 1024,
                    sc.files,
                    sc.commits,
                    bench.built_in
                )?;
                out.flush()?;
                for (op, side, stats) in bench.measure(&ops, runs, out)? {
                    results.insert((sc.tasks, sc.commits, sc.files, op, side), stats);
                }
                writeln!(out)?;
                if !keep {
                    bench.remove();
                }
            }
            Ok(())
        })();
        if !keep {
            let _ = std::fs::remove_dir_all(&dir);
        }
        outcome?;
        writeln!(out, "load average after: {}", loadavg())?;
        writeln!(out)?;
        report(&self, &ops, &results, &sizes, out)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// One generated repository with everything both sides need, outside the work tree.
struct Bench {
    root: PathBuf,
    aux: PathBuf,
    xtask: PathBuf,
    task: BenchTask,
    base: String,
    files: usize,
    impl_file: String,
    state_bytes: usize,
    built_in: Duration,
}

impl Bench {
    fn build(dir: &Path, sc: &Scenario, xtask: &Path) -> anyhow::Result<Bench> {
        let files = sc.files;
        let started = Instant::now();
        let root = dir.join(sc.name());
        let aux = dir.join(format!("{}-aux", sc.name()));
        for d in [&root, &aux] {
            if d.exists() {
                std::fs::remove_dir_all(d)?;
            }
            std::fs::create_dir_all(d)?;
        }
        let extra = vec![
            (".claude/hooks/subagent-postflight.sh".to_owned(), PEER_HOOK.as_bytes().to_vec(), true),
            (".claude/scripts/update-plan-status.sh".to_owned(), PEER_PLAN_STATUS.as_bytes().to_vec(), true),
        ];
        let ledger = gen::build_repo(&root, RepoSpec { files, commits: sc.commits, tasks: Some(sc.tasks) }, &extra)?
            .expect("a ledger was asked for");
        let task = ledger.task.clone();
        std::fs::write(aux.join("agent.sh"), AGENT)?;
        std::fs::write(aux.join("skill-implementer.sh"), PEER_SKILL)?;
        // The agent's work: one changed file, the phase summary and the metadata.
        let impl_file = gen::file_name(0, files);
        let payload = aux.join("payload");
        let summary_rel = format!("{}/summaries/implementation-summary-{SUMMARY_DATE}.md", task.dir_rel);
        let metadata = serde_json::json!({
            "status": "implemented",
            "summary": "All 3 phases done: the module is implemented, documented and tested.",
            "artifacts": [
                {"type": "implementation", "path": impl_file, "summary": "The implementation"},
                {"type": "summary", "path": summary_rel, "summary": "Implementation summary: 3 of 3 phases"}
            ],
            "metadata": {
                "session_id": SESSION, "agent_type": "general-implementation-agent", "delegation_depth": 1,
                "delegation_path": ["orchestrator", "implement", "general-implementation-agent"],
                "duration_seconds": 1, "phases_completed": 3, "phases_total": 3
            },
            "completion_data": {
                "completion_summary": "Implemented the three phases of the plan: the module, its documentation and its tests.",
                "roadmap_items": []
            },
            "next_steps": "None"
        });
        let writes = [
            (impl_file.clone(), "implemented by the benchmark agent\n".repeat(20)),
            (
                summary_rel.clone(),
                format!(
                    "# Implementation Summary: Task #{}\n\n**Status**: [COMPLETED]\n\n## Phase Log\n\n{}",
                    task.number,
                    (1..=3).map(|p| format!("### Phase {p}: Step {p} [COMPLETED]\n- Done.\n\n")).collect::<String>()
                ),
            ),
            (format!("{}/.return-meta.json", task.dir_rel), serde_json::to_string_pretty(&metadata)? + "\n"),
        ];
        for (rel, text) in writes {
            let p = payload.join(rel);
            std::fs::create_dir_all(p.parent().expect("a file has a parent"))?;
            std::fs::write(p, text)?;
        }
        let base = git_out(&root, &["rev-parse", "HEAD"])?.trim().to_owned();
        Ok(Bench {
            root,
            aux,
            xtask: xtask.to_path_buf(),
            task,
            base,
            files,
            impl_file,
            state_bytes: ledger.state_bytes(),
            built_in: started.elapsed(),
        })
    }

    fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_dir_all(&self.aux);
    }

    /// Alternates the contenders round by round; round 0 is a warm-up whose results are checked.
    fn measure(&self, ops: &[Op], runs: usize, out: &mut dyn Write) -> anyhow::Result<Vec<(Op, Side, Stats)>> {
        let mut samples: BTreeMap<(Op, Side), Vec<Duration>> = BTreeMap::new();
        for round in 0..=runs {
            for &op in ops {
                let sides = if round % 2 == 0 { [Side::Ours, Side::Peer] } else { [Side::Peer, Side::Ours] };
                for side in sides {
                    let took = self
                        .sample(op, side, round)
                        .with_context(|| format!("{} ({side:?}), round {round}", op.label()))?;
                    if let (Some(d), true) = (took, round > 0) {
                        samples.entry((op, side)).or_default().push(d);
                    }
                }
            }
        }
        self.reset()?;
        let mut res = Vec::new();
        for &op in ops {
            let ours = samples.remove(&(op, Side::Ours)).and_then(Stats::of);
            let peer = samples.remove(&(op, Side::Peer)).and_then(Stats::of);
            let ratio = match (ours, peer) {
                (Some(o), Some(p)) => format!("x{:.1}", ms(p.median) / ms(o.median)),
                _ => String::new(),
            };
            writeln!(
                out,
                "  {:<40} ours {:>10}   peer {:>10}   {ratio}",
                op.label(),
                ours.map(|s| format!("{:.1} ms", ms(s.median))).unwrap_or_else(|| "-".into()),
                peer.map(|s| format!("{:.1} ms", ms(s.median))).unwrap_or_else(|| "-".into()),
            )?;
            out.flush()?;
            if let Some(s) = ours {
                res.push((op, Side::Ours, s));
            }
            if let Some(s) = peer {
                res.push((op, Side::Peer, s));
            }
        }
        Ok(res)
    }

    /// Resets the repository to its generated state (untimed).
    fn reset(&self) -> anyhow::Result<()> {
        run_ok(Command::new("git").current_dir(&self.root).args(["reset", "-q", "--hard", &self.base]))?;
        run_ok(Command::new("git").current_dir(&self.root).args(["clean", "-q", "-fdx"]))
    }

    fn agent_command(&self) -> String {
        format!("sh '{}'", self.aux.join("agent.sh").display())
    }

    /// Makes sure `xtask check` has a warm result cache (untimed). A reset that rewrote ledger
    /// files leaves inputs younger than the cache's 2 s racy margin, which no check may cache:
    /// those are waited out.
    fn warm_check_cache(&self) -> anyhow::Result<()> {
        for _ in 0..3 {
            let (_, output) = timed(self.ours(&["check"]).env("POSTFLIGHT_CHECK_CACHE_LOG", "1"), None)?;
            let log = String::from_utf8_lossy(&output.stderr);
            if log.contains("check cache: hit") || log.contains("; written") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2100));
        }
        bail!("xtask check would not write its cache")
    }

    /// One stop event through the side's hook command, timed; checks it blocks iff `block`.
    fn hook_call(&self, side: Side, block: bool) -> anyhow::Result<Duration> {
        let command = match side {
            Side::Ours => format!("'{}' hook stop", self.xtask.display()),
            Side::Peer => PEER_HOOK_COMMAND.to_owned(),
        };
        let (took, output) = timed(self.command("sh").args(["-c", &command]), Some(&self.event()))?;
        let answer: Value = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("the hook printed {:?}", String::from_utf8_lossy(&output.stdout)))?;
        if (answer["decision"] == "block") != block {
            // What the hook said on stderr (its notes) and the markers it could have seen, for
            // whoever has to find out why.
            let markers: Vec<String> = std::fs::read_dir(self.root.join(&self.task.dir_rel))
                .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            bail!(
                "the hook answered {answer} (expected {}); its stderr: {:?}; in the task directory: {markers:?}",
                if block { "a block" } else { "{}" },
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(took)
    }

    /// Waits until state.json is older than the marker index's racy margin (2 s), as it is when
    /// a stop comes minutes after the run started (untimed).
    fn wait_out_racy_margin(&self) -> anyhow::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(self.root.join("specs/state.json"))?;
        let newest = meta.mtime().max(meta.ctime());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
        let wait = (newest + 3 - now).clamp(0, 3);
        std::thread::sleep(Duration::from_secs(wait as u64));
        Ok(())
    }

    /// Makes the marker index complete for the ledger as it is (untimed): one hook call once
    /// state.json is old enough to be vouched for.
    fn warm_hook_index(&self) -> anyhow::Result<()> {
        self.wait_out_racy_margin()?;
        self.hook_call(Side::Ours, false).map(|_| ())
    }

    /// Makes the marker the peer wrote this benchmark session's (the event's), so that the stop
    /// is blocked as for the session that owns the run (untimed).
    fn own_the_peer_marker(&self) -> anyhow::Result<()> {
        let path = self.root.join(&self.task.dir_rel).join(".postflight-pending");
        let mut marker: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        marker["session_id"] = Value::from(SESSION);
        std::fs::write(&path, serde_json::to_vec_pretty(&marker)?)?;
        Ok(())
    }

    /// A command in the repository root with the benchmark's environment.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.root)
            .env("BENCH_PAYLOAD", self.aux.join("payload"))
            .env("BENCH_PLAN", &self.task.plan_rel)
            .env("BENCH_TASK", self.task.number.to_string())
            .env("PEER_AGENT", self.agent_command())
            .env("PEER_VARS", self.aux.join("vars.sh"));
        for var in [
            "XTASK_AGENT",
            "XTASK_NOW",
            "XTASK_SESSION_ID",
            "XTASK_DELEGATION",
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
        ] {
            c.env_remove(var);
        }
        c
    }

    fn ours(&self, args: &[&str]) -> Command {
        let mut c = self.command(&self.xtask);
        c.args(args);
        c
    }

    fn peer(&self, mode: &str) -> Command {
        let mut c = self.command("bash");
        c.arg(self.aux.join("skill-implementer.sh")).args([mode, &self.task.number.to_string()]);
        c
    }

    /// A stop event of the session [`SESSION`] in the repository, as Claude Code sends it.
    fn event(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "session_id": SESSION,
            "transcript_path": "/tmp/transcript.jsonl",
            "cwd": self.root,
            "hook_event_name": "SubagentStop",
            "stop_hook_active": false
        }))
        .expect("a JSON value always serialises")
    }

    /// One prepared, timed run; `None` when the side has no such command.
    fn sample(&self, op: Op, side: Side, round: usize) -> anyhow::Result<Option<Duration>> {
        self.reset()?;
        let n = self.task.number.to_string();
        let took = match (op, side) {
            (Op::Implement, Side::Ours) => {
                timed(&mut self.ours(&["implement", &n, "--agent", &self.agent_command()]), None)?.0
            }
            (Op::Implement, Side::Peer) => timed(&mut self.peer("implement"), None)?.0,
            (Op::ImplementValidated, Side::Ours) => {
                timed(&mut self.ours(&["implement", &n, "--agent", &self.agent_command(), "--validate", "true"]), None)?
                    .0
            }
            (Op::ImplementValidated, Side::Peer) => return Ok(None),
            (Op::Postflight, Side::Ours) => {
                untimed(&mut self.ours(&["preflight", &n]))?;
                untimed(self.command("sh").arg(self.aux.join("agent.sh")))?;
                timed(&mut self.ours(&["postflight", &n]), None)?.0
            }
            (Op::Postflight, Side::Peer) => {
                untimed(&mut self.peer("preflight"))?;
                timed(&mut self.peer("postflight"), None)?.0
            }
            (Op::HookIdle | Op::HookBlock, _) => {
                let block = op == Op::HookBlock;
                if side == Side::Ours {
                    // The steady state: the index is complete for the ledger (the reset just
                    // rewrote state.json, which no hook call may vouch for within the racy margin).
                    self.warm_hook_index()?;
                }
                if block {
                    match side {
                        Side::Ours => untimed(self.ours(&["preflight", &n]).env("XTASK_SESSION_ID", SESSION))?,
                        Side::Peer => untimed(&mut self.peer("marker"))?,
                    }
                }
                self.hook_call(side, block)?
            }
            (Op::HookMigratedFirst | Op::HookMigrated, _) => {
                // The original workflow starts the run (state.json, TODO.md, plan, marker) in a
                // repository where ours never ran: no marker index. The stop comes from the
                // marker's session, some time after the marker was written.
                untimed(&mut self.peer("marker"))?;
                self.own_the_peer_marker()?;
                let index = self.root.join(".git/postflight-pending");
                if index.exists() {
                    std::fs::remove_dir_all(&index)?;
                }
                self.wait_out_racy_margin()?;
                if op == Op::HookMigrated {
                    self.hook_call(side, true)?;
                }
                self.hook_call(side, true)?
            }
            (Op::Check, Side::Ours) => {
                self.warm_check_cache()?;
                let (took, output) = timed(self.ours(&["check"]).env("POSTFLIGHT_CHECK_CACHE_LOG", "1"), None)?;
                let log = String::from_utf8_lossy(&output.stderr);
                if !log.contains("check cache: hit") {
                    bail!("the timed check did not use its warm cache: {log}");
                }
                took
            }
            (Op::CheckCold, Side::Ours) => {
                let cache = self.root.join(".git/postflight-check.cache");
                if let Err(e) = std::fs::remove_file(&cache) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return Err(e).with_context(|| format!("remove {}", cache.display()));
                    }
                }
                timed(&mut self.ours(&["check"]), None)?.0
            }
            (Op::CheckStaged, Side::Ours) => timed(&mut self.ours(&["check", "--staged"]), None)?.0,
            (Op::Check | Op::CheckCold | Op::CheckStaged, Side::Peer) => return Ok(None),
            (Op::Commit, _) => {
                let paths: Vec<String> = (0..3)
                    .map(|j| {
                        gen::file_name((round * 7919 + j * 104_729 + side as usize * 13 + 1) % self.files, self.files)
                    })
                    .collect();
                for p in &paths {
                    std::fs::write(self.root.join(p), format!("round {round} {side:?} {p}\n"))?;
                }
                let subject = format!("bench round {round}");
                match side {
                    Side::Ours => {
                        let mut c = self.ours(&["commit", &n, "-m", &subject, "--"]);
                        c.args(&paths);
                        timed(&mut c, None)?.0
                    }
                    Side::Peer => {
                        let mut add = self.command("git");
                        add.arg("add").arg("--").args(&paths);
                        let mut commit = self.command("git");
                        commit.args(["commit", "-q", "-m", &subject]);
                        timed(&mut add, None)?.0 + timed(&mut commit, None)?.0
                    }
                }
            }
        };
        if round == 0 && matches!(op, Op::Implement | Op::ImplementValidated | Op::Postflight) {
            self.verify_completed().with_context(|| format!("{side:?} did not complete the task"))?;
        }
        Ok(Some(took))
    }

    /// After a run: the task is completed in all three files and committed with its files.
    fn verify_completed(&self) -> anyhow::Result<()> {
        let n = self.task.number;
        let state: Value = serde_json::from_slice(&std::fs::read(self.root.join("specs/state.json"))?)?;
        let entry = state["active_projects"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["project_number"] == n))
            .context("the task is gone from state.json")?;
        if entry["status"] != "completed" {
            bail!("state.json says {}", entry["status"]);
        }
        let plan = std::fs::read_to_string(self.root.join(&self.task.plan_rel))?;
        if !plan.contains("- **Status**: [COMPLETED]") {
            bail!("the plan header is not [COMPLETED]");
        }
        let todo = std::fs::read_to_string(self.root.join("specs/TODO.md"))?;
        let block = todo.split(&format!("### {n}. ")).nth(1).and_then(|b| b.split("\n---\n").next()).unwrap_or("");
        if !block.contains("- **Status**: [COMPLETED]")
            || !block.contains(&format!("implementation-summary-{SUMMARY_DATE}.md"))
        {
            bail!("TODO.md's entry is not [COMPLETED] with a summary link:\n{block}");
        }
        let subject = git_out(&self.root, &["log", "-1", "--format=%s"])?;
        if subject.trim() != format!("task {n}: complete implementation") {
            bail!("the last commit is {:?}", subject.trim());
        }
        let files = git_out(&self.root, &["show", "--name-only", "--format=", "HEAD"])?;
        for want in [self.impl_file.as_str(), "specs/state.json", "specs/TODO.md", self.task.plan_rel.as_str()] {
            if !files.lines().any(|l| l == want) {
                bail!("the commit lacks {want}:\n{files}");
            }
        }
        Ok(())
    }
}

/// Runs a prepared command and returns how long it took from spawn to exit, with its output;
/// a failure (non-zero exit) is an error that shows the output.
fn timed(cmd: &mut Command, stdin: Option<&[u8]>) -> anyhow::Result<(Duration, Output)> {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("run {cmd:?}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input)?;
    }
    let output = child.wait_with_output()?;
    let took = start.elapsed();
    if !output.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok((took, output))
}

fn untimed(cmd: &mut Command) -> anyhow::Result<()> {
    timed(cmd, None).map(|_| ())
}

fn git_out(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git").current_dir(root).args(args).stdin(Stdio::null()).output()?;
    if !out.status.success() {
        bail!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command to completion and fails with its output when it fails.
pub(crate) fn run_ok(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

pub(crate) fn time(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The machine, in one paragraph: CPUs, model, memory, kernel, git, jq, rustc.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "unknown".into());
    let mhz = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("cpu MHz").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_owned())))
        .unwrap_or_default();
    let version = |prog: &str, arg: &str| {
        Command::new(prog)
            .arg(arg)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_owned())
            .unwrap_or_else(|| format!("{prog}: not found"))
    };
    format!(
        "machine: {cpus} CPUs ({model}, {mhz} MHz), {mem} memory; {}; {}; {}; {}; build: {}",
        version("uname", "-sr"),
        version("git", "--version"),
        version("jq", "--version"),
        version("rustc", "--version"),
        if cfg!(debug_assertions) { "DEBUG (numbers meaningless)" } else { "release" }
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn fmt_ms(s: Option<&Stats>) -> String {
    match s {
        None => "-".into(),
        Some(s) if ms(s.median) >= 100.0 => format!("{:.0} ms", ms(s.median)),
        Some(s) => format!("{:.1} ms", ms(s.median)),
    }
}

fn fmt_ratio(ours: Option<&Stats>, peer: Option<&Stats>) -> String {
    match (ours, peer) {
        (Some(o), Some(p)) => format!("{:.1}x", ms(p.median) / ms(o.median)),
        _ => "-".into(),
    }
}

/// The Markdown tables of docs/performance.md and the verdict on each target.
fn report(
    opts: &Options,
    ops: &[Op],
    results: &Results,
    sizes: &BTreeMap<usize, usize>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (real, full, short, files) = (opts.real_tasks, opts.commits, opts.short_history, opts.files);
    let get = |tasks: usize, commits: usize, files: usize, op: Op, side: Side| {
        results.get(&(tasks, commits, files, op, side))
    };
    let peer_has = |op: Op| !matches!(op, Op::Check | Op::CheckCold | Op::CheckStaged | Op::ImplementValidated);
    let kb = |t: usize| sizes.get(&t).copied().unwrap_or(0) / 1024;
    for f in [files, opts.real_files].into_iter().filter(|f| *f > 0) {
        if get(real, full, f, ops[0], Side::Ours).is_none() {
            continue;
        }
        writeln!(
            out,
            "### Side by side: {real} tasks (state.json {} KB), {f} files, {full} commits (medians)\n",
            kb(real)
        )?;
        writeln!(out, "| measurement | ours | original | original / ours | ours, min-max of n |")?;
        writeln!(out, "| --- | --- | --- | --- | --- |")?;
        for &op in ops {
            let (o, p) = (get(real, full, f, op, Side::Ours), get(real, full, f, op, Side::Peer));
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                op.label(),
                fmt_ms(o),
                if peer_has(op) { format!("{} ({})", fmt_ms(p), op.peer_label()) } else { "none".into() },
                fmt_ratio(o, p),
                o.map(|s| format!("{:.1}-{:.1} ms, n={}", ms(s.min), ms(s.max), s.n)).unwrap_or_default()
            )?;
        }
        writeln!(out)?;
    }
    let columns: Vec<usize> = sizes.keys().copied().collect();
    writeln!(out, "### Growth with ledger size ({files} files, {full} commits; medians)\n")?;
    write!(out, "| measurement |")?;
    for t in &columns {
        write!(out, " {t} tasks ({} KB) |", kb(*t))?;
    }
    writeln!(out)?;
    writeln!(out, "|{}", " --- |".repeat(columns.len() + 1))?;
    for &op in ops {
        for side in [Side::Ours, Side::Peer] {
            if side == Side::Peer && !peer_has(op) {
                continue;
            }
            write!(out, "| {} {} |", op.label(), if side == Side::Ours { "(ours)" } else { "(original)" })?;
            for &t in &columns {
                write!(out, " {} |", fmt_ms(get(t, full, files, op, side)))?;
            }
            writeln!(out)?;
        }
        if peer_has(op) {
            write!(out, "| {} ratio |", op.label())?;
            for &t in &columns {
                write!(
                    out,
                    " {} |",
                    fmt_ratio(get(t, full, files, op, Side::Ours), get(t, full, files, op, Side::Peer))
                )?;
            }
            writeln!(out)?;
        }
    }
    writeln!(out, "\n### Growth with history length ({real} tasks, {files} files; medians)\n")?;
    writeln!(
        out,
        "| measurement | ours, {short} commits | ours, {full} commits | original, {short} commits | original, {full} commits |"
    )?;
    writeln!(out, "| --- | --- | --- | --- | --- |")?;
    for &op in ops {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            op.label(),
            fmt_ms(get(real, short, files, op, Side::Ours)),
            fmt_ms(get(real, full, files, op, Side::Ours)),
            fmt_ms(get(real, short, files, op, Side::Peer)),
            fmt_ms(get(real, full, files, op, Side::Peer))
        )?;
    }
    writeln!(out, "\n### Targets\n")?;
    let ratio = |t: usize, f: usize, op: Op| match (get(t, full, f, op, Side::Ours), get(t, full, f, op, Side::Peer)) {
        (Some(o), Some(p)) => Some(ms(p.median) / ms(o.median)),
        _ => None,
    };
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    for f in [files, opts.real_files].into_iter().filter(|f| *f > 0) {
        if let Some(r) = ratio(real, f, Op::Postflight) {
            writeln!(out, "- postflight >= 50x faster, {real} tasks, {f} files: {r:.1}x, {}", verdict(r >= 50.0))?;
        }
    }
    if let Some(&big) = columns.last() {
        if let Some(r) = ratio(big, files, Op::Postflight) {
            writeln!(out, "- postflight >= 20x faster, {big} tasks: {r:.1}x, {}", verdict(r >= 20.0))?;
        }
        if let Some(s) = get(big, full, files, Op::Check, Side::Ours) {
            writeln!(
                out,
                "- check <= 50 ms, {big} tasks, cache warm: {:.1} ms, {}",
                ms(s.median),
                verdict(ms(s.median) <= 50.0)
            )?;
        }
        if let Some(s) = get(big, full, files, Op::CheckCold, Side::Ours) {
            writeln!(
                out,
                "- check <= 50 ms, {big} tasks, no cache: {:.1} ms, {}",
                ms(s.median),
                verdict(ms(s.median) <= 50.0)
            )?;
        }
    }
    for op in [Op::HookIdle, Op::HookBlock, Op::HookMigrated] {
        for &t in &columns {
            if let Some(s) = get(t, full, files, op, Side::Ours) {
                writeln!(
                    out,
                    "- {} <= 5 ms, {t} tasks: {:.1} ms, {}",
                    op.label(),
                    ms(s.median),
                    verdict(ms(s.median) <= 5.0)
                )?;
            }
        }
    }
    // The validation gate: the same run with `--validate true` against without.
    for &t in &columns {
        let (plain, gated) =
            (get(t, full, files, Op::Implement, Side::Ours), get(t, full, files, Op::ImplementValidated, Side::Ours));
        if let (Some(a), Some(b)) = (plain, gated) {
            writeln!(
                out,
                "- the validation gate at {t} tasks: {:+.1} ms over implement (medians {:.1} and {:.1} ms; includes `sh -c true` itself) {}",
                ms(b.median) - ms(a.median),
                ms(a.median),
                ms(b.median),
                verdict(ms(b.median) - ms(a.median) <= 5.0)
            )?;
        }
    }
    // Linear in ledger size: time per task between the two largest ledgers against the smallest.
    for op in ops.iter().copied().filter(|op| matches!(op, Op::Implement | Op::Postflight | Op::Check | Op::CheckCold))
    {
        let pts: Vec<(usize, f64)> =
            columns.iter().filter_map(|&t| get(t, full, files, op, Side::Ours).map(|s| (t, ms(s.median)))).collect();
        if pts.len() >= 2 {
            let text: Vec<String> = pts.iter().map(|(t, m)| format!("{m:.1} ms at {t}")).collect();
            writeln!(out, "- {} (ours) by ledger size: {}", op.label(), text.join(", "))?;
        }
    }
    for op in ops.iter().copied() {
        if let (Some(a), Some(b)) = (get(real, short, files, op, Side::Ours), get(real, full, files, op, Side::Ours)) {
            writeln!(
                out,
                "- {} (ours), {full} against {short} commits: {:.2}x",
                op.label(),
                ms(b.median) / ms(a.median)
            )?;
        }
    }
    Ok(())
}
