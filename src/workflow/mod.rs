//! The implement workflow, stage by stage (seed 004, reference §8): preflight (validate, move
//! the three files to implementing, marker), the agent loop with task-scoped partial commits,
//! postflight (record the outcome, link artifacts), the final commit and cleanup.
//!
//! `implement` = [`preflight::preflight`] + the loop + [`postflight`]; the two halves are also
//! exposed for an LLM session that orchestrates ([`preflight_only`], [`postflight_only`]).

pub mod baseline;
/// The project configuration lives below the workflow (the check reads it too).
pub use crate::config;
pub mod demo;
pub mod marker;
pub mod metadata;
pub mod parallel;
pub mod postflight;
pub mod preflight;
/// What the user sees while a run goes on lives with the agent's process machinery.
pub use crate::agent::progress;
pub mod prompt;
pub mod queue;
pub mod resume;
pub mod runlog;
pub mod scope;
pub mod validate;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::agent::{self, process, Adapter};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::ledger::plan::PlanFile;
use crate::ledger::Change;
use metadata::{AgentStatus, Artifact, Metadata, MetadataProblem};
use postflight::Outcome;
use preflight::{Prepared, TaskRef};
use progress::Progress;

/// The environment variable naming the agent command when `--agent` is not given.
pub const ENV_AGENT: &str = "XTASK_AGENT";

/// Inputs of `implement`.
#[derive(Debug, Clone)]
pub struct Options {
    /// The task.
    pub task: u32,
    /// The agent command (`sh -c`), already resolved (see [`resolve_agent`]).
    pub agent: String,
    /// At most this many invocations (default 5).
    pub max_iterations: u32,
    /// Per-invocation timeout in seconds (default 7200).
    pub timeout: u64,
    /// Record the outcome but make no commit.
    pub no_commit: bool,
    /// Print what would change and change nothing.
    pub dry_run: bool,
    /// Allow a completed task.
    pub force: bool,
    /// `Name <email>` for `Co-authored-by:`.
    pub agent_identity: Option<String>,
    /// How the validation gate is set up (`--validate`, `--no-validate`, `--allow-empty`).
    pub validation: ValidationOptions,
    /// The run is the child of a worktree run (`implement --worktree`) and works in its own
    /// linked worktree: every changed, non-ignored file there belongs to the task
    /// (see [`parallel`]).
    pub whole_tree: bool,
}

/// How the validation gate is set up for one run.
#[derive(Debug, Clone, Default)]
pub struct ValidationOptions {
    /// Validation commands for this run besides the configured ones (`--validate`).
    pub validate: Vec<String>,
    /// Run no validation command (`--no-validate`).
    pub no_validate: bool,
    /// An implemented result that changed no file it would commit passes the gate (`--allow-empty`).
    pub allow_empty: bool,
}

/// One commit made by a run.
#[derive(Debug, Clone, Serialize)]
pub struct CommitInfo {
    /// The commit id.
    pub id: String,
    /// Its subject.
    pub subject: String,
    /// The paths it changed.
    pub paths: Vec<String>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The task.
    pub task: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// Invocations made in this run (and by the interrupted run it resumed).
    pub iterations: u32,
    /// The session id.
    pub session_id: String,
    /// Commits made.
    pub commits: Vec<CommitInfo>,
    /// Artifacts linked (repository-relative).
    pub artifacts: Vec<String>,
    /// Things the user should know.
    pub warnings: Vec<String>,
    /// For a dry run: the changes that would be made.
    pub planned_changes: Vec<Change>,
    /// Whether this run resumed an interrupted one.
    pub resumed: bool,
    /// The agent's own session id of the last invocation (chosen by the Claude Code adapter,
    /// reported by the Codex CLI).
    pub agent_session_id: Option<String>,
    /// The adapter's result object of each invocation (Claude Code's final result, the summary
    /// of the Codex event stream).
    pub agent_results: Vec<Value>,
    /// Why the loop stopped, when the outcome itself has no reason (a timeout, no progress).
    pub stop_reason: Option<String>,
    /// The outcome was recorded but the run's final commit failed: git's (or the hook's) words.
    pub commit_error: Option<String>,
    /// The command that finishes the failed commit by hand.
    pub commit_command: Option<String>,
    /// How the outcome stands with respect to validation.
    pub validation: validate::Verdict,
    /// The last run of the validation commands (what state.json records).
    pub validation_records: Vec<validate::Record>,
    /// The failure handed to the agent for its retry, or (from `postflight`) the one to fix.
    pub validation_failure: Option<Value>,
    /// Every validation log the run wrote (committed with the task, even where git ignores `*.log`).
    pub validation_logs: Vec<String>,
}

/// Exit code: the outcome was recorded but the run's commit failed.
pub const EXIT_COMMIT_FAILED: u8 = 5;

impl Report {
    /// The report of a run of `task` that has not ended yet: nothing committed, linked or
    /// validated, no warning (the outcome is set when the run ends).
    fn start(task: u32, session_id: &str, iterations: u32) -> Report {
        Report {
            task,
            outcome: Outcome::Failed { reason: String::new() },
            iterations,
            session_id: session_id.to_owned(),
            commits: Vec::new(),
            artifacts: Vec::new(),
            warnings: Vec::new(),
            planned_changes: Vec::new(),
            resumed: false,
            agent_session_id: None,
            agent_results: Vec::new(),
            stop_reason: None,
            commit_error: None,
            commit_command: None,
            validation: validate::Verdict::NotValidated,
            validation_records: Vec::new(),
            validation_failure: None,
            validation_logs: Vec::new(),
        }
    }

    /// The `--json` object `{task, status, iterations, session_id, commits, artifacts, resume_phase}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "task": self.task,
            "status": self.outcome.as_str(),
            "iterations": self.iterations,
            "session_id": self.session_id,
            "commits": self.commits,
            "artifacts": self.artifacts,
            "resume_phase": self.outcome.resume_phase(),
            "reason": self.reason(),
            "warnings": self.warnings,
            "agent_session_id": self.agent_session_id,
            "agent_results": self.agent_results,
            "commit_error": self.commit_error,
            "commit_command": self.commit_command,
            "validation": self.validation.as_str(),
            "validation_records": self.validation_records,
            "validation_failure": self.validation_failure,
        })
    }

    /// The outcome's reason, else why the loop stopped.
    pub fn reason(&self) -> Option<String> {
        self.outcome.reason().or_else(|| self.stop_reason.clone())
    }

    /// The exit code: the outcome's, or 5 when its commit failed.
    pub fn exit_code(&self) -> u8 {
        if self.commit_error.is_some() {
            EXIT_COMMIT_FAILED
        } else {
            self.outcome.exit_code()
        }
    }
}

/// Chooses the agent command: `--agent`, else `XTASK_AGENT`, else the project configuration,
/// else the Claude Code adapter when `claude` is on the PATH.
///
/// # Errors
/// A refusal when none is configured.
pub fn resolve_agent(ctx: &Context, flag: Option<&str>) -> Result<String> {
    if let Some(a) = flag.filter(|a| !a.trim().is_empty()) {
        return Ok(a.to_owned());
    }
    if let Ok(a) = std::env::var(ENV_AGENT) {
        if !a.trim().is_empty() {
            return Ok(a);
        }
    }
    if let Some(a) = config::Config::load(&ctx.repo.root)?.agent {
        return Ok(a);
    }
    if agent::claude::on_path() {
        return Ok(agent::claude::AGENT_NAME.to_owned());
    }
    Err(Error::refused(
        "no agent command configured, and `claude` is not on the PATH",
        Some("pass --agent '<command>' (or `--agent claude`), set XTASK_AGENT, or set \"agent\" in .postflight.json"),
    ))
}

/// Runs the whole implement workflow for one task.
///
/// # Errors
/// Refusals from preflight (nothing written); I/O errors. Stopping short is not an error: it
/// is the report's outcome.
///
/// # Writes
/// The ledger files, the task's transient files, the agent log, commits.
pub fn implement(ctx: &Context, opts: &Options, progress: &Progress) -> Result<Report> {
    let cfg = config::Config::load(&ctx.repo.root)?;
    let pre_opts = preflight::Options {
        force: opts.force,
        timeout: opts.timeout,
        agent_session_id: None,
        pid: Some(std::process::id()),
        max_iterations: Some(opts.max_iterations),
    };
    // The work tree's status is read while preflight writes the ledger (it changes only the
    // ledger, the plan header and the marker, none of which the baseline is asked about), and
    // is in hand before the agent starts.
    let status = (!opts.dry_run).then(|| {
        let root = ctx.repo.root.clone();
        std::thread::spawn(move || crate::git::WorkTreeState::read(&root))
    });
    let prepared = preflight::preflight(ctx, opts.task, &pre_opts, opts.dry_run)?;
    let status = status
        .map(|t| t.join().unwrap_or_else(|_| Err(Error::refused("the work tree's status could not be read", None))));
    let mut report = Report {
        warnings: prepared.warnings.clone(),
        resumed: prepared.resumed,
        ..Report::start(
            opts.task,
            &prepared.session_id,
            resume::iterations_done(prepared.iterations_done, opts.max_iterations),
        )
    };
    if opts.dry_run {
        report.planned_changes = prepared.changes;
        report.outcome = Outcome::Partial { resume_phase: 0, phases_completed: 0, phases_total: 0 };
        return Ok(report);
    }
    if prepared.resumed {
        progress.note(&format!(
            "task {}: resuming the interrupted run of session {} after {} invocation(s)",
            opts.task, prepared.session_id, prepared.iterations_done
        ));
    }
    let task = prepared.task.clone();
    let root = ctx.repo.root.clone();
    let scope_dirs = cfg.scope(&task.language);
    let scope_before = scope::snapshot(&root, &scope_dirs);
    let baseline = baseline::Baseline::start(&root, &task, prepared.resumed, status, &mut report.warnings);
    let mut watch = baseline::ProgressWatch::new(&baseline, plan_progress(ctx, &task).0, &root, &[&task.plan_rel]);
    let adapter = Adapter::select(&opts.agent, &cfg);
    let identity = opts
        .agent_identity
        .clone()
        .or(cfg.agent_identity.clone())
        .or_else(|| adapter.default_identity().map(str::to_owned));
    let mut all_artifacts: Vec<Artifact> = Vec::new();
    let mut resume_phase = initial_resume_phase(ctx, &task);
    let mut handoff: Option<String> = None;
    // A resumed run never counts past the limit (resume.rs).
    let mut iteration = resume::iterations_done(prepared.iterations_done, opts.max_iterations);
    if prepared.resumed {
        report.warnings.extend(resume::limit_note(prepared.iterations_done, opts.max_iterations));
    }
    let mut reuse_existing = prepared.resumed;
    let commands = cfg.validation_commands(&task.language, &opts.validation.validate);
    let gate_on = !opts.validation.no_validate && !commands.is_empty();
    if opts.validation.no_validate {
        report.validation = validate::Verdict::Skipped;
    }
    let mut gate_runs = 0usize;
    let mut log_k = 1usize;
    // The failure of the first validation, handed to the agent's one retry.
    let mut validation_failure: Option<Value> = None;
    let timeout_reason = format!("timed out after {0}s (--timeout {0}); killed its process group", opts.timeout);
    let stalled_reason = |k: u32| {
        format!("iteration {k} made no progress (no phase newly completed, no file of the task changed); the agent was not invoked again")
    };
    let (outcome, final_meta) = loop {
        // After a crash, metadata the agent already finished is the result of that invocation.
        let existing =
            if reuse_existing { resume::left_outcome(&task.marker_path(), &task.metadata_path()) } else { None };
        reuse_existing = false;
        let (result, timed_out, invoked) = match existing
            .filter(|m| m.status != AgentStatus::InProgress && iteration > 0)
        {
            Some(m) => {
                progress.note(&format!("task {}: using the metadata the interrupted run's agent left", task.number));
                (Ok(m), false, false)
            }
            None => {
                process::stop_if_interrupted(Some(&task.marker_path()), &task.log_path())?;
                // The retry after a failed validation is made even at the iteration limit.
                iteration = if validation_failure.is_some() {
                    iteration + 1
                } else {
                    resume::next_iteration(iteration, opts.max_iterations)
                };
                preflight::write_counter(&task, iteration)?;
                preflight::remove_if_exists(&task.metadata_path())?;
                let mut delegation =
                    preflight::delegation(&prepared, opts.timeout, iteration, resume_phase, handoff.as_deref());
                if let Some(f) = validation_failure.take() {
                    delegation["validation_failure"] = f;
                }
                let previous = report.agent_session_id.clone().or_else(|| prepared.agent_session_id.clone());
                let (finished, agent_session, conclusion, failed_resume) =
                    invoke(ctx, opts, &adapter, &prepared, previous.as_deref(), &delegation, iteration, progress)?;
                if agent_session.is_some() {
                    report.agent_session_id = agent_session;
                }
                report.agent_results.extend(failed_resume);
                if let Some(r) = &conclusion.result {
                    report.agent_results.push(r.clone());
                }
                let result = metadata::read(&task.metadata_path());
                if !adapter.reads_stdout() && result.is_ok() && metadata::stdout_looks_like_json(&finished.stdout) {
                    report.warnings.push(format!(
                        "iteration {iteration}: the agent printed JSON on stdout; only {} is read",
                        task.metadata_rel()
                    ));
                }
                let result: std::result::Result<Metadata, Failure> = match result {
                    Ok(m) => Ok(m),
                    Err(_) if !finished.timed_out && conclusion.error.is_some() => {
                        Err(Failure::Agent(conclusion.error.clone().unwrap_or_default()))
                    }
                    Err(MetadataProblem::Missing) if !finished.timed_out => match finished.exit_code {
                        Some(0) => Err(Failure::Metadata(MetadataProblem::Missing)),
                        Some(code) => Err(Failure::Exit(code)),
                        None => Err(Failure::Signal),
                    },
                    Err(problem) => Err(Failure::Metadata(problem)),
                };
                progress.finish(&match &result {
                    _ if finished.timed_out => timeout_reason.clone(),
                    Ok(m) => format!("agent reported `{}`", m.reported),
                    Err(f) => f.describe(&task),
                });
                (result, finished.timed_out, true)
            }
        };
        report.iterations = iteration;
        report.stop_reason = timed_out.then(|| timeout_reason.clone());
        let meta = match result {
            Ok(m) => m,
            Err(_) if timed_out => {
                // A timed-out invocation counts as partial (D20), with the plan's own progress.
                let (done, total) = plan_progress(ctx, &task);
                let m = timeout_metadata(done, total, opts.timeout);
                let belongs = |p: &str| belongs_to_task(&task, p, &all_artifacts, &baseline, &scope_dirs);
                let stalled = !watch.advanced(&root, done, belongs);
                if stalled {
                    report.warnings.push(stalled_reason(iteration));
                }
                if iteration >= opts.max_iterations || stalled {
                    break (partial_outcome(done, total), Some(m));
                }
                resume_phase = Some(done + 1);
                continue;
            }
            Err(failure) => break (failure.outcome(&task), None),
        };
        report.warnings.extend(meta.warnings.iter().map(|w| format!("iteration {iteration}: {w}")));
        let artifacts = vet_artifacts(ctx, &meta, &mut report.warnings);
        merge_artifacts(&mut all_artifacts, &artifacts);
        // A timed-out invocation counts as partial whatever its metadata said (D20).
        let meta = if timed_out { Metadata { status: AgentStatus::Partial, ..meta } } else { meta };
        let outcome = outcome_of(ctx, &task, &meta);
        if outcome == Outcome::Completed && gate_on {
            let changes = run_changes(ctx, &baseline, &scope_before, &scope_dirs, opts.whole_tree);
            let paths = postflight::commit_paths(&task, &all_artifacts, &changes);
            // The tree is planned as the commands start: they must not change what the task commits.
            let planned = validated_tree(ctx, &task, &paths, &mut report.warnings);
            if !opts.validation.allow_empty
                && !implementation_changed(ctx, &task, Some(&baseline), &report.commits, planned.as_ref())
            {
                report.validation = validate::Verdict::Failed;
                report.validation_records.clear();
                break (Outcome::ValidationFailed { reason: validate::EMPTY_REASON.to_owned() }, Some(meta));
            }
            let mut attempt = run_gate(ctx, &root, &task, &commands, &cfg, log_k, progress)?;
            log_k += attempt.records.len();
            gate_runs += 1;
            attempt.set_tree(planned.map(|p| p.tree));
            report.validation_logs.extend(attempt.records.iter().map(|r| r.log.clone()));
            report.validation_records = attempt.records.clone();
            if attempt.passed() {
                report.validation = validate::Verdict::Passed;
                break (outcome, Some(meta));
            }
            report.validation = validate::Verdict::Failed;
            if gate_runs >= 2 {
                let reason = attempt.reason().unwrap_or_else(|| "validation failed".into());
                break (Outcome::ValidationFailed { reason }, Some(meta));
            }
            let failure = attempt.failure(&root);
            progress.note(&format!(
                "task {}: validation failed ({}); invoking the agent once more with the failure",
                task.number,
                attempt.failing().map(|r| format!("`{}`: {}", r.command, r.how())).unwrap_or_default()
            ));
            report.validation_failure = failure.clone();
            validation_failure = failure;
            continue;
        }
        let Outcome::Partial { resume_phase: next, phases_completed: done, phases_total: total } = outcome else {
            break (outcome, Some(meta));
        };
        if invoked {
            let belongs = |p: &str| belongs_to_task(&task, p, &all_artifacts, &baseline, &scope_dirs);
            if !watch.advanced(&root, done, belongs) {
                if timed_out {
                    report.warnings.push(stalled_reason(iteration));
                } else {
                    report.stop_reason = Some(stalled_reason(iteration));
                }
                break (outcome, Some(meta));
            }
        }
        if iteration >= opts.max_iterations {
            break (outcome, Some(meta));
        }
        if !opts.no_commit {
            let subject = format!("task {}: iteration {iteration} partial progress", task.number);
            let paths = postflight::commit_paths(
                &task,
                &artifacts,
                &run_changes(ctx, &baseline, &scope_before, &scope_dirs, opts.whole_tree),
            );
            let body = Some(meta.summary.clone()).filter(|s| !s.trim().is_empty());
            if let Err(e) = commit(
                ctx,
                &prepared,
                &subject,
                body,
                &paths,
                &[],
                identity.as_deref(),
                None,
                Some(&baseline),
                &mut report,
            ) {
                report
                    .warnings
                    .push(format!("commit `{subject}` failed: {e}; its files go into the run's final commit"));
            }
        }
        resume_phase = Some(next);
        handoff = meta.handoff_path.clone().filter(|h| postflight::safe_artifact_path(&ctx.repo.root, h));
        progress
            .note(&format!("task {}: partial ({done} of {total} phases); invoking again at phase {next}", task.number));
    };
    finish(
        ctx,
        &prepared,
        outcome,
        final_meta.as_ref(),
        &all_artifacts,
        &run_changes(ctx, &baseline, &scope_before, &scope_dirs, opts.whole_tree),
        Some(&baseline),
        identity.as_deref(),
        opts.no_commit,
        &mut report,
    )?;
    Ok(report)
}

/// The files a task's commit takes besides its directory, artifacts and ledger share: those
/// under the language's scope that changed during the run, and the plan-listed files that did.
fn run_changes(
    ctx: &Context,
    baseline: &baseline::Baseline,
    scope_before: &scope::Snapshot,
    scope_dirs: &[String],
    whole_tree: bool,
) -> Vec<String> {
    let mut out = scope::changed(scope_before, &ctx.repo.root, scope_dirs);
    if whole_tree {
        // In its own worktree everything the agent changed is the task's (transient files are
        // left out by the status read; the ledger files are scoped by the commit).
        if let Ok(state) = crate::git::WorkTreeState::read(&ctx.repo.root) {
            for p in state.paths() {
                if !out.iter().any(|o| o == p) && !crate::ledger::LEDGER_FILES.contains(&p) {
                    out.push(p.to_owned());
                }
            }
        }
    }
    for p in baseline.plan_files_changed(&ctx.repo.root) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Whether the run changed a file of the implementation: a path the task's commit would take
/// (`planned.changed`: differing from HEAD), outside the task's own directory and the shared
/// ledger files, that is not an edit the work tree already had when the run began and kept
/// untouched; or such a path in one of the run's partial `commits`. When the tree could not be
/// planned the answer is yes: a run is never failed on a guess.
fn implementation_changed(
    ctx: &Context,
    task: &TaskRef,
    baseline: Option<&baseline::Baseline>,
    commits: &[CommitInfo],
    planned: Option<&crate::git::PlannedTree>,
) -> bool {
    let own_dir = format!("{}/", task.dir_rel);
    let implementation = |p: &str| !crate::ledger::LEDGER_FILES.contains(&p) && !p.starts_with(&own_dir);
    if commits.iter().flat_map(|c| &c.paths).any(|p| implementation(p)) {
        return true;
    }
    let Some(planned) = planned else { return true };
    let before = baseline.and_then(|b| b.state.as_ref());
    planned.changed.iter().any(|p| implementation(p) && !before.is_some_and(|s| s.unchanged_since(&ctx.repo.root, p)))
}

/// The tree that was validated (see [`validate::Record::tree`]) and the paths in it that differ
/// from HEAD; `None`, with a warning, when git cannot plan it.
fn validated_tree(
    ctx: &Context,
    task: &TaskRef,
    paths: &[String],
    warnings: &mut Vec<String>,
) -> Option<crate::git::PlannedTree> {
    let paths: Vec<std::path::PathBuf> = paths.iter().map(std::path::PathBuf::from).collect();
    match crate::git::plan_tree(&ctx.repo, &paths, &validate::tree_excludes(&task.dir_rel)) {
        Ok(t) => Some(t),
        Err(e) => {
            warnings.push(format!("cannot compute the validated tree: {e}"));
            None
        }
    }
}

/// Whether a changed path is one the task's commit would take.
fn belongs_to_task(
    task: &TaskRef,
    path: &str,
    artifacts: &[Artifact],
    baseline: &baseline::Baseline,
    scope_dirs: &[String],
) -> bool {
    let in_dir = |d: &str| {
        let d = d.trim_end_matches('/');
        !d.is_empty() && path.strip_prefix(d).is_some_and(|rest| rest.starts_with('/'))
    };
    ["summaries", "plans", "handoffs"].iter().any(|sub| in_dir(&format!("{}/{sub}", task.dir_rel)))
        || artifacts.iter().any(|a| a.path == path)
        || baseline.plan_files.iter().any(|(p, _)| p == path)
        || scope_dirs.iter().any(|d| in_dir(d))
}

/// Why an invocation produced no usable metadata.
enum Failure {
    Metadata(MetadataProblem),
    Exit(i32),
    Signal,
    Agent(String),
}

impl Failure {
    fn describe(&self, task: &TaskRef) -> String {
        match self {
            Failure::Metadata(MetadataProblem::Missing) => format!("no metadata file ({})", task.metadata_rel()),
            Failure::Metadata(MetadataProblem::Invalid(e)) => format!("invalid metadata: {e}"),
            Failure::Exit(code) => format!("agent exited with status {code} and wrote no metadata"),
            Failure::Signal => "agent was killed by a signal and wrote no metadata".into(),
            Failure::Agent(reason) => reason.clone(),
        }
    }

    fn outcome(self, task: &TaskRef) -> Outcome {
        match self {
            Failure::Metadata(MetadataProblem::Missing) => Outcome::MetadataMissing { path: task.metadata_rel() },
            Failure::Metadata(MetadataProblem::Invalid(error)) => {
                Outcome::MetadataInvalid { path: task.metadata_rel(), error }
            }
            Failure::Agent(reason) => Outcome::AgentError { reason },
            other => Outcome::Failed { reason: other.describe(task) },
        }
    }
}

/// The outcome final metadata stands for. Phase counts come from the metadata, else from the
/// plan's markers as they are now.
fn outcome_of(ctx: &Context, task: &TaskRef, meta: &Metadata) -> Outcome {
    match meta.status {
        AgentStatus::Implemented => Outcome::Completed,
        AgentStatus::Blocked => Outcome::Blocked { reason: meta.reason() },
        AgentStatus::Failed => Outcome::Failed { reason: meta.reason() },
        AgentStatus::InProgress => Outcome::Failed {
            reason: format!(
                "the agent stopped with `in_progress` metadata (interrupted); run `xtask implement {}` again",
                task.number
            ),
        },
        AgentStatus::Partial => {
            let (plan_done, plan_total) = plan_progress(ctx, task);
            let done = meta.phases_completed.unwrap_or(plan_done);
            let total = meta.phases_total.filter(|t| *t > 0).unwrap_or(plan_total);
            if meta.requires_user_review {
                Outcome::ReviewNeeded {
                    resume_phase: done + 1,
                    phases_completed: done,
                    phases_total: total,
                    reason: meta.review_reason.clone().unwrap_or_else(|| meta.reason()),
                }
            } else {
                partial_outcome(done, total)
            }
        }
    }
}

fn partial_outcome(done: u64, total: u64) -> Outcome {
    Outcome::Partial { resume_phase: done + 1, phases_completed: done, phases_total: total }
}

fn timeout_metadata(done: u64, total: u64, timeout: u64) -> Metadata {
    Metadata {
        status: AgentStatus::Partial,
        reported: "timeout".into(),
        summary: format!("The agent was stopped after the {timeout}s timeout."),
        artifacts: Vec::new(),
        phases_completed: Some(done),
        phases_total: Some(total),
        handoff_path: None,
        partial_details: Some("timeout".into()),
        requires_user_review: false,
        review_reason: None,
        completion_summary: None,
        claudemd_suggestions: None,
        roadmap_items: Vec::new(),
        error_message: None,
        warnings: Vec::new(),
    }
}

/// The plan's (done, total) phase counts as it is now.
fn plan_progress(ctx: &Context, task: &TaskRef) -> (u64, u64) {
    PlanFile::load(&ctx.repo.root.join(&task.plan_rel))
        .map(|p| {
            let (d, t) = p.progress();
            (d as u64, t as u64)
        })
        .unwrap_or((0, 0))
}

/// `null` for a plan with nothing done; else the position of the first unfinished phase.
fn initial_resume_phase(ctx: &Context, task: &TaskRef) -> Option<u64> {
    let plan = PlanFile::load(&ctx.repo.root.join(&task.plan_rel)).ok()?;
    match plan.resume_point() {
        crate::ledger::plan::ResumePoint::At { position, .. } if position > 1 => Some(position as u64),
        _ => None,
    }
}

/// The reported artifacts that are linked and committed: files of the repository that exist
/// and that git does not ignore. Each one left out is named in a warning; the outcome is
/// recorded as reported all the same.
fn vet_artifacts(ctx: &Context, meta: &Metadata, warnings: &mut Vec<String>) -> Vec<Artifact> {
    let root = &ctx.repo.root;
    let mut out: Vec<Artifact> = Vec::new();
    for a in &meta.artifacts {
        let shown = a.path.replace('\0', "\\0");
        let raw = a.path.as_str();
        let relative = if raw.starts_with('~') {
            warnings
                .push(format!("artifact `{shown}` is a home-directory path, not a file of the repository; not linked"));
            continue;
        } else if Path::new(raw).is_absolute() {
            // The root is canonical; the path may reach it through links (`/tmp` -> `/private/tmp`).
            let inside = Path::new(raw).strip_prefix(root).map(Path::to_path_buf).ok().or_else(|| {
                let parent = Path::new(raw).parent().and_then(|d| std::fs::canonicalize(d).ok())?;
                let name = Path::new(raw).file_name()?;
                parent.join(name).strip_prefix(root).map(Path::to_path_buf).ok()
            });
            match inside {
                Some(rel) => rel.to_string_lossy().into_owned(),
                // Refused below with the other paths that are not files of the repository.
                None => raw.to_owned(),
            }
        } else {
            raw.trim_start_matches("./").to_owned()
        };
        if !postflight::safe_artifact_path(root, &relative) {
            warnings.push(format!(
                "artifact `{shown}` is not a file of the repository (outside it, in .git, behind a symlink that leaves it, a directory, or a transient file); ignored"
            ));
            continue;
        }
        if std::fs::symlink_metadata(root.join(&relative)).is_err() {
            let what = if a.kind == "deletion" { "names a file the run deleted" } else { "does not exist" };
            warnings.push(format!("artifact `{shown}` {what}; not linked"));
            continue;
        }
        out.push(Artifact { path: relative, ..a.clone() });
    }
    let paths: Vec<String> = out.iter().map(|a| a.path.clone()).collect();
    match crate::git::ignored(root, &paths) {
        Ok(ignored) if !ignored.is_empty() => {
            for p in &ignored {
                warnings.push(format!("artifact `{p}` is ignored by git (.gitignore); not linked"));
            }
            out.retain(|a| !ignored.contains(&a.path));
        }
        Ok(_) => {}
        Err(e) => warnings.push(format!("cannot ask git which artifacts it ignores: {e}")),
    }
    out
}

fn merge_artifacts(all: &mut Vec<Artifact>, new: &[Artifact]) {
    for a in new {
        match all.iter_mut().find(|b| b.path == a.path) {
            Some(b) => *b = a.clone(),
            None => all.push(a.clone()),
        }
    }
}

/// One invocation of the agent through its adapter: the agent session it ran under, and what
/// its output says about how it ended (with the result of a failed resume before it). An adapter
/// whose session is discovered continues `previous` (the session of the run's last invocation),
/// and starts a new one when that session cannot be resumed.
#[allow(clippy::too_many_arguments)]
fn invoke(
    ctx: &Context,
    opts: &Options,
    adapter: &Adapter,
    prepared: &Prepared,
    previous: Option<&str>,
    delegation: &Value,
    iteration: u32,
    progress: &Progress,
) -> Result<(process::Finished, Option<String>, agent::Conclusion, Option<Value>)> {
    let task = &prepared.task;
    let resume = previous.filter(|_| adapter.session_policy() == agent::SessionPolicy::Discovered);
    let (finished, conclusion) = invoke_once(ctx, opts, adapter, prepared, resume, delegation, iteration, progress)?;
    if let (Some(old), true) = (resume, conclusion.resume_failed) {
        let why = conclusion.error.clone().unwrap_or_default();
        let note = format!("the agent session {old} could not be resumed ({why}); starting a new session");
        marker::append_log(&task.log_path(), &note);
        progress.note(&format!("task {}: {note}", task.number));
        let failed = conclusion.result;
        let (finished, conclusion) = invoke_once(ctx, opts, adapter, prepared, None, delegation, iteration, progress)?;
        let session = conclusion.session.clone();
        return Ok((finished, session, conclusion, failed));
    }
    let session = conclusion.session.clone();
    Ok((finished, session, conclusion, None))
}

/// One start of the agent: under a new session id when the adapter chooses it (recorded in the
/// marker first, so the stop hook recognises that session), else continuing `resume`; a
/// session id the output reveals is recorded in the marker and state.json as it arrives.
#[allow(clippy::too_many_arguments)]
fn invoke_once(
    ctx: &Context,
    opts: &Options,
    adapter: &Adapter,
    prepared: &Prepared,
    resume: Option<&str>,
    delegation: &Value,
    iteration: u32,
    progress: &Progress,
) -> Result<(process::Finished, agent::Conclusion)> {
    let task = &prepared.task;
    let chosen = adapter.new_session_id();
    if let Some(id) = &chosen {
        let mut m = marker::Marker::load(&task.marker_path())?;
        m.agent_session_id = Some(id.clone());
        m.save(&task.marker_path())?;
    }
    let session = chosen.as_deref().or(resume);
    let spawn = adapter.spawn(session);
    let watch = std::sync::Arc::new(adapter.watch(session));
    let summary_path = format!("{}/summaries/implementation-summary-{}.md", task.dir_rel, ctx.compact_date());
    let stdin = prompt::build(delegation, &summary_path);
    let env = vec![
        ("XTASK_DELEGATION".to_owned(), delegation.to_string()),
        ("XTASK_METADATA_FILE".to_owned(), task.metadata_path().to_string_lossy().into_owned()),
        ("XTASK_TASK_NUMBER".to_owned(), task.number.to_string()),
        ("XTASK_SESSION_ID".to_owned(), prepared.session_id.clone()),
        ("XTASK_ITERATION".to_owned(), iteration.to_string()),
    ];
    std::fs::create_dir_all(&task.dir).map_err(|e| Error::io("create directory", &task.dir, e))?;
    progress.start(&format!("task {}: iteration {iteration}/{}", task.number, opts.max_iterations));
    let on_line: process::LineSink = {
        let (watch, ctx, task) = (std::sync::Arc::clone(&watch), ctx.clone(), task.clone());
        std::sync::Arc::new(move |line: &str| {
            if let Some(id) = watch.line(line) {
                if let Err(e) = record_agent_session(&ctx, &task, &id) {
                    marker::append_log(&task.log_path(), &format!("cannot record agent session {id}: {e}"));
                }
            }
        })
    };
    let inv = process::Invocation {
        spawn: &spawn,
        cwd: &ctx.repo.root,
        stdin,
        env,
        timeout: Duration::from_secs(opts.timeout),
        log_path: &task.log_path(),
        marker: Some(task.marker_path()),
        on_line: Some(on_line),
    };
    let header = process::LogHeader {
        time: marker::now_utc(),
        session: prepared.session_id.clone(),
        run: std::process::id(),
        iteration,
        max_iterations: opts.max_iterations,
        command: spawn.display(),
    };
    process::log_start(inv.log_path, &header);
    let started = std::time::Instant::now();
    let finished = process::run(&inv, progress);
    let mut conclusion = finished.as_ref().map(|f| adapter.conclude(f, &watch)).unwrap_or_default();
    if adapter.session_policy() == agent::SessionPolicy::Discovered {
        // Said in the log before the invocation's end line, where `xtask log` shows it with it.
        if let Some(r) = &conclusion.result {
            marker::append_log(inv.log_path, &format!("agent result: {r}"));
        }
    }
    process::log_end(inv.log_path, iteration, finished.as_ref().ok(), started.elapsed());
    let finished = finished?;
    if chosen.is_some() {
        conclusion.session = chosen;
    }
    Ok((finished, conclusion))
}

/// Records the agent session an invocation's output revealed: in the marker (so the stop hook
/// recognises it) and in the task's state.json entry (`agent_session_id`).
///
/// # Errors
/// I/O or JSON errors on the marker; the ledger's errors.
///
/// # Writes
/// The marker; `specs/state.json`.
fn record_agent_session(ctx: &Context, task: &TaskRef, id: &str) -> Result<()> {
    let mut m = marker::Marker::load(&task.marker_path())?;
    m.agent_session_id = Some(id.to_owned());
    m.save(&task.marker_path())?;
    ctx.ledger().update(|snap| {
        let mut fields = serde_json::Map::new();
        fields.insert("agent_session_id".into(), Value::from(id));
        snap.state_mut().merge(task.number, fields)
    })?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn finish(
    ctx: &Context,
    prepared: &Prepared,
    outcome: Outcome,
    meta: Option<&Metadata>,
    artifacts: &[Artifact],
    run_changes: &[String],
    baseline: Option<&baseline::Baseline>,
    identity: Option<&str>,
    no_commit: bool,
    report: &mut Report,
) -> Result<()> {
    let task = &prepared.task;
    let ts = ctx.timestamp();
    let agent_session = report.agent_session_id.clone();
    let prefetch = read_head_ledger(ctx, no_commit);
    let validation = validation_field(report);
    ctx.ledger().update_with(
        |snap| record_outcome(snap, task, &outcome, meta, artifacts, &ts, agent_session, validation.as_ref()),
        |changes| write_ahead(ctx, prefetch.as_deref(), changes),
    )?;
    after_record(ctx, prepared, outcome, meta, artifacts, run_changes, baseline, identity, no_commit, prefetch, report)
}

/// Starts reading HEAD's ledger files for the commit (unless there is none), so that it
/// happens while the ledger is being updated.
fn read_head_ledger(ctx: &Context, no_commit: bool) -> Option<std::sync::Arc<crate::git::Prefetch>> {
    (!no_commit).then(|| std::sync::Arc::new(crate::git::Prefetch::start(&ctx.repo.root, &crate::ledger::LEDGER_FILES)))
}

/// Starts writing the blobs of the shared ledger files' new contents (when large) for the
/// commit; the copies are made here, on the thread that runs alongside the ledger's writes.
fn write_ahead(ctx: &Context, prefetch: Option<&crate::git::Prefetch>, changes: &[crate::ledger::Change]) {
    let Some(prefetch) = prefetch else { return };
    for change in changes.iter().filter(|c| c.new.len() as u64 >= crate::git::LARGE_LEDGER_FILE) {
        let rel = ctx.repo.relative(&change.path);
        if crate::ledger::LEDGER_FILES.contains(&rel.as_str()) {
            prefetch.write_ahead(&rel, change.new.clone(), change.entry);
        }
    }
}

/// What the outcome does to the entry's `validation`: `Some(records)` sets it (the gate ran),
/// `Some(Null)` removes it (a completion without the gate: an older record would lie), `None`
/// leaves it.
fn validation_field(report: &Report) -> Option<Value> {
    if !report.validation_records.is_empty() {
        Some(validate::records_json(&report.validation_records))
    } else if matches!(report.validation, validate::Verdict::NotValidated | validate::Verdict::Skipped) {
        Some(Value::Null)
    } else {
        None
    }
}

/// Stages 7-8 inside the ledger transaction: the outcome, the artifacts, the agent's session,
/// the validation records.
#[allow(clippy::too_many_arguments)]
fn record_outcome(
    snap: &mut crate::ledger::Snapshot,
    task: &TaskRef,
    outcome: &Outcome,
    meta: Option<&Metadata>,
    artifacts: &[Artifact],
    ts: &str,
    agent_session: Option<String>,
    validation: Option<&Value>,
) -> Result<()> {
    postflight::record(snap, task, outcome, meta, artifacts, ts)?;
    if let Some(id) = agent_session {
        let mut fields = serde_json::Map::new();
        fields.insert("agent_session_id".into(), Value::from(id));
        snap.state_mut().merge(task.number, fields)?;
    }
    match validation {
        Some(Value::Null) if *outcome == Outcome::Completed => {
            snap.state_mut().entry_mut(task.number)?.shift_remove("validation");
        }
        Some(Value::Null) | None => {}
        Some(v) => {
            let mut fields = serde_json::Map::new();
            fields.insert("validation".into(), v.clone());
            snap.state_mut().merge(task.number, fields)?;
        }
    }
    Ok(())
}

/// Stages 9-10 once the outcome is recorded: the commit (unless `no_commit`) and the cleanup.
/// With the run's `baseline`, the user's earlier edits that went into the commit and the
/// files the run changed but did not commit are named in warnings.
#[allow(clippy::too_many_arguments)]
fn after_record(
    ctx: &Context,
    prepared: &Prepared,
    outcome: Outcome,
    meta: Option<&Metadata>,
    artifacts: &[Artifact],
    scoped_changes: &[String],
    baseline: Option<&baseline::Baseline>,
    identity: Option<&str>,
    no_commit: bool,
    prefetch: Option<std::sync::Arc<crate::git::Prefetch>>,
    report: &mut Report,
) -> Result<()> {
    let task = &prepared.task;
    let linked: Vec<&Artifact> = match outcome {
        Outcome::Completed
        | Outcome::Partial { .. }
        | Outcome::ReviewNeeded { .. }
        | Outcome::Blocked { .. }
        | Outcome::ValidationFailed { .. } => artifacts.iter().collect(),
        _ => Vec::new(),
    };
    report.artifacts = linked.iter().map(|a| a.path.clone()).collect();
    if !no_commit {
        let mut paths = postflight::commit_paths(task, artifacts, scoped_changes);
        paths.extend(report.validation_logs.iter().filter(|l| !paths.contains(l)).cloned().collect::<Vec<_>>());
        let subject = outcome.subject(&task.id());
        let body = postflight::commit_body(&outcome, meta);
        let trailers: Vec<String> = report.validation_records.iter().map(validate::Record::trailer).collect();
        if let Err(e) = commit(ctx, prepared, &subject, body, &paths, &trailers, identity, prefetch, baseline, report) {
            let existing: Vec<&String> = paths.iter().filter(|p| ctx.repo.root.join(p).exists()).collect();
            let quoted: Vec<String> = existing.iter().map(|p| agent::shell_quote(p)).collect();
            report.commit_command = Some(format!(
                "xtask commit {} -m {} -- {}",
                task.number,
                agent::shell_quote(&subject),
                quoted.join(" ")
            ));
            report.commit_error = Some(e.to_string());
        }
    }
    postflight::cleanup(&ctx.repo.git_dir, task, &outcome)?;
    if let (Some(b), false) = (baseline, no_commit) {
        if report.commit_error.is_none() {
            report_left_uncommitted(ctx, task, b, report);
        }
    }
    report.outcome = outcome;
    Ok(())
}

/// Warns about the files that changed during the run, are not ignored, and are in no commit of
/// it. The shared ledger files are committed task-scoped and never named; nor are other tasks'
/// directories. While another run is pending in the same work tree, its agent's edits cannot be
/// told from this one's, so only the task's own directory is looked at.
fn report_left_uncommitted(ctx: &Context, task: &TaskRef, baseline: &baseline::Baseline, report: &mut Report) {
    let (Some(before), Ok(now)) = (&baseline.state, crate::git::WorkTreeState::read(&ctx.repo.root)) else { return };
    let own_dir = format!("{}/", task.dir_rel);
    let others_pending = marker::indexed_markers(&ctx.repo.root, &ctx.repo.git_dir)
        .unwrap_or_default()
        .iter()
        .any(|m| *m != task.marker_path());
    let other_task_dir = |p: &str| {
        p.strip_prefix("specs/").and_then(|rest| rest.split_once('/')).is_some_and(|(dir, _)| {
            dir.split_once('_').is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    let left: Vec<String> = before
        .changed_until(&now)
        .into_iter()
        .filter(|p| !crate::ledger::LEDGER_FILES.contains(&p.as_str()))
        .filter(|p| p.starts_with(&own_dir) || (!others_pending && !other_task_dir(p)))
        .collect();
    if !left.is_empty() {
        report
            .warnings
            .push(format!("left uncommitted: {} (changed during the run, not in the task's commit)", left.join(", ")));
    }
}

/// Commits through the task-scoped commit; a failure is returned for the caller to report,
/// and never loses ledger state (the ledger is written first). The user's uncommitted edits
/// that ride along in a file the task commits are named in a warning.
///
/// # Errors
/// The commit's error (a hook's refusal, git).
#[allow(clippy::too_many_arguments)]
fn commit(
    ctx: &Context,
    prepared: &Prepared,
    subject: &str,
    body: Option<String>,
    paths: &[String],
    trailers: &[String],
    identity: Option<&str>,
    prefetch: Option<std::sync::Arc<crate::git::Prefetch>>,
    baseline: Option<&baseline::Baseline>,
    report: &mut Report,
) -> Result<()> {
    let task = &prepared.task;
    let untrack = [
        marker::MARKER_FILE,
        marker::METADATA_FILE,
        marker::ITERATION_FILE,
        marker::HOOK_COUNTER_FILE,
        preflight::AGENT_LOG_FILE,
        baseline::BASELINE_FILE,
    ]
    .iter()
    .map(|name| format!("{}/{name}", task.dir_rel))
    .collect();
    let req = crate::git::CommitRequest {
        task: Some(crate::TaskId::from(task.number)),
        scoping: Some(crate::ledger::scope::TaskScoping::shared()),
        paths: paths.iter().map(|p| Path::new(p).to_path_buf()).collect(),
        subject: subject.to_owned(),
        body,
        session_id: prepared.session_id.clone(),
        trailers: trailers.to_vec(),
        force: report.validation_logs.clone(),
        agent_identity: identity.map(str::to_owned),
        no_verify: false,
        untrack,
        prefetch,
    };
    match crate::git::commit(&ctx.repo, &req)? {
        crate::git::CommitOutcome::Committed { id, paths, .. } => {
            let own = |p: &&String| {
                !crate::ledger::LEDGER_FILES.contains(&p.as_str()) && !p.starts_with(&format!("{}/", task.dir_rel))
            };
            for p in paths.iter().filter(own) {
                if baseline.is_some_and(|b| b.was_dirty(p)) {
                    let w = format!("{p} had uncommitted changes before the run; they are in this commit");
                    if !report.warnings.contains(&w) {
                        report.warnings.push(w);
                    }
                }
            }
            report.commits.push(CommitInfo { id, subject: subject.to_owned(), paths });
        }
        crate::git::CommitOutcome::NothingToCommit { .. } => {
            report.warnings.push(format!("`{subject}`: nothing to commit"))
        }
    }
    Ok(())
}

/// `xtask preflight N`: stages 1-4 for an orchestrating LLM session. Returns the delegation
/// context of the next invocation.
///
/// # Errors
/// As [`preflight::preflight`].
pub fn preflight_only(ctx: &Context, n: u32, force: bool, timeout: u64) -> Result<(Value, Vec<String>)> {
    let opts = preflight::Options { force, timeout, agent_session_id: None, pid: None, max_iterations: None };
    let mut prepared = preflight::preflight(ctx, n, &opts, false)?;
    let iteration = prepared.iterations_done + 1;
    preflight::write_counter(&prepared.task, iteration)?;
    // `xtask postflight` judges "changed no file" against the work tree as it is now.
    if !config::Config::load(&ctx.repo.root)?.validation_commands(&prepared.task.language, &[]).is_empty() {
        let root = ctx.repo.root.clone();
        baseline::Baseline::start(&root, &prepared.task, prepared.resumed, None, &mut prepared.warnings);
    }
    let resume = initial_resume_phase(ctx, &prepared.task);
    let delegation = preflight::delegation(&prepared, timeout, iteration, resume, None);
    Ok((delegation, prepared.warnings))
}

/// `xtask postflight N`: stages 6-10 from the metadata the agent wrote, for an orchestrating
/// LLM session (no loop: a partial result is recorded as partial).
///
/// # Errors
/// A refusal when no run of the task is pending (no marker); I/O errors.
pub fn postflight_only(
    ctx: &Context,
    n: u32,
    no_commit: bool,
    identity: Option<String>,
    vopts: &ValidationOptions,
    progress: &Progress,
) -> Result<Report> {
    let cfg = config::Config::load(&ctx.repo.root)?;
    let identity = identity.or(cfg.agent_identity.clone());
    // The gate runs before the ledger is locked: commands may take minutes.
    let gate = if vopts.no_validate { None } else { postflight_gate(ctx, &cfg, n, vopts, progress)? };
    let prefetch = read_head_ledger(ctx, no_commit);
    let ts = ctx.timestamp();
    // The task is looked up in the snapshot the outcome is recorded in: state.json is read once
    // (it is 14 MB at 10,000 tasks), and a refusal here still writes nothing.
    let (recorded, _, ()) = ctx.ledger().update_with(
        |snap| {
            let info = snap.state().task(n)?;
            let dir =
                crate::ledger::plan::task_dir(&ctx.repo.specs_dir(), n, info.slug.as_deref()).ok_or_else(|| {
                    Error::refused(
                        format!("task {n} has no task directory and no pending run"),
                        Some("run `xtask preflight` first"),
                    )
                })?;
            let marker_path = dir.join(marker::MARKER_FILE);
            let m = marker::Marker::load(&marker_path).map_err(|_| {
                Error::refused(
                    format!(
                        "no pending postflight for task {n} ({} is missing or unreadable)",
                        ctx.repo.relative(&marker_path)
                    ),
                    Some("run `xtask preflight` first"),
                )
            })?;
            let plan = crate::ledger::plan::latest_plan(&dir);
            let slug = info.slug.clone().unwrap_or_default();
            let task = TaskRef::new(ctx, &info, slug, dir, plan.as_deref());
            let prepared = Prepared {
                task: task.clone(),
                session_id: m.session_id.clone(),
                agent_session_id: m.agent_session_id.clone(),
                resumed: true,
                iterations_done: preflight::read_counter(&task),
                changes: Vec::new(),
                run_lock: None,
                warnings: Vec::new(),
            };
            let mut report = Report {
                resumed: true,
                agent_session_id: m.agent_session_id.clone(),
                ..Report::start(n, &m.session_id, prepared.iterations_done.max(1))
            };
            let (outcome, meta, artifacts) = match metadata::read(&task.metadata_path()) {
                Ok(meta) => {
                    report.warnings.extend(meta.warnings.iter().cloned());
                    let artifacts = vet_artifacts(ctx, &meta, &mut report.warnings);
                    let outcome = outcome_of(ctx, &task, &meta);
                    (outcome, Some(meta), artifacts)
                }
                Err(problem) => (Failure::Metadata(problem).outcome(&task), None, Vec::new()),
            };
            if vopts.no_validate {
                report.validation = validate::Verdict::Skipped;
            }
            let outcome = match (&gate, outcome) {
                (Some(g), Outcome::Completed) => {
                    report.validation = g.verdict;
                    report.validation_records = g.records.clone();
                    report.validation_logs = g.records.iter().map(|r| r.log.clone()).collect();
                    report.validation_failure = g.failure.clone();
                    match &g.reason {
                        Some(reason) => Outcome::ValidationFailed { reason: reason.clone() },
                        None => Outcome::Completed,
                    }
                }
                (_, outcome) => outcome,
            };
            let agent_session = report.agent_session_id.clone();
            let validation = validation_field(&report);
            record_outcome(snap, &task, &outcome, meta.as_ref(), &artifacts, &ts, agent_session, validation.as_ref())?;
            Ok((prepared, report, outcome, meta, artifacts))
        },
        |changes| write_ahead(ctx, prefetch.as_deref(), changes),
    )?;
    let (prepared, mut report, outcome, meta, artifacts) = recorded;
    after_record(
        ctx,
        &prepared,
        outcome,
        meta.as_ref(),
        &artifacts,
        &[],
        None,
        identity.as_deref(),
        no_commit,
        prefetch,
        &mut report,
    )?;
    Ok(report)
}

/// What the gate of `xtask postflight` found.
struct PostflightGate {
    verdict: validate::Verdict,
    records: Vec<validate::Record>,
    failure: Option<Value>,
    /// `Some` when the outcome is `ValidationFailed`.
    reason: Option<String>,
}

/// The gate of `xtask postflight N`, run once (the orchestrating session is the agent: it gets
/// `validation_failure` in the output, fixes, and runs preflight and postflight again). `None`
/// when no command is configured or the agent did not report implemented.
fn postflight_gate(
    ctx: &Context,
    cfg: &config::Config,
    n: u32,
    vopts: &ValidationOptions,
    progress: &Progress,
) -> Result<Option<PostflightGate>> {
    let state = ctx.ledger().state()?;
    let Ok(info) = state.task(n) else { return Ok(None) };
    let commands = cfg.validation_commands(&info.language, &vopts.validate);
    if commands.is_empty() {
        return Ok(None);
    }
    let Some(dir) = crate::ledger::plan::task_dir(&ctx.repo.specs_dir(), n, info.slug.as_deref()) else {
        return Ok(None);
    };
    let plan = crate::ledger::plan::latest_plan(&dir);
    let task = TaskRef::new(ctx, &info, info.slug.clone().unwrap_or_default(), dir, plan.as_deref());
    let Ok(meta) = metadata::read(&task.metadata_path()) else { return Ok(None) };
    if outcome_of(ctx, &task, &meta) != Outcome::Completed {
        return Ok(None);
    }
    let artifacts = vet_artifacts(ctx, &meta, &mut Vec::new());
    let paths = postflight::commit_paths(&task, &artifacts, &[]);
    let planned = validated_tree(ctx, &task, &paths, &mut Vec::new());
    let saved = baseline::Baseline::load(&task);
    if !vopts.allow_empty && !implementation_changed(ctx, &task, saved.as_ref(), &[], planned.as_ref()) {
        return Ok(Some(PostflightGate {
            verdict: validate::Verdict::Failed,
            records: Vec::new(),
            failure: None,
            reason: Some(validate::EMPTY_REASON.to_owned()),
        }));
    }
    let mut attempt = run_gate(ctx, &ctx.repo.root, &task, &commands, cfg, 1, progress)?;
    attempt.set_tree(planned.map(|p| p.tree));
    let passed = attempt.passed();
    Ok(Some(PostflightGate {
        verdict: if passed { validate::Verdict::Passed } else { validate::Verdict::Failed },
        failure: attempt.failure(&ctx.repo.root),
        reason: attempt.reason(),
        records: attempt.records,
    }))
}
/// The validation gate of a task of state.json: `commands` run in `root`, their logs in the
/// task's directory numbered from `first_k`.
fn run_gate(
    ctx: &Context,
    root: &Path,
    task: &TaskRef,
    commands: &[String],
    cfg: &config::Config,
    first_k: usize,
    progress: &Progress,
) -> Result<validate::Attempt> {
    let (id, dirs) = (crate::TaskId::from(task.number), validate::log_dirs(task));
    let gate = validate::Gate {
        root,
        task: &id,
        log_dir: &dirs.0,
        log_dir_rel: &dirs.1,
        commands,
        env: &[],
        timeout: cfg.validation_timeout(),
    };
    gate.run(first_k, &|| ctx.timestamp(), progress)
}
