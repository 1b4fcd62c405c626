//! The validation gate: after the agent reports implemented, postflight runs the project's
//! validation commands itself (`sh -c`, in order, in the repository root, each in its own
//! process group with `validation_timeout`, the group killed on expiry), captures each one's
//! output into `specs/N_slug/validation/<UTC stamp>-<k>.log`, judges the result, and builds the
//! evidence: the `validation` records of state.json, the `Validated:` trailers, and the
//! `validation_failure` handed to the agent for its one retry.
//!
//! The commands run through [`crate::agent::process::run`], the agent's own process machinery
//! (process group, timeout, group killed, interrupts), with the log file as the run log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::agent::progress::Progress;
use crate::agent::{process as agent, Spawn};
use crate::error::{Error, Result};
use crate::task_id::TaskId;
use crate::workflow::preflight::TaskRef;

/// The task's directory of validation logs.
pub const VALIDATION_DIR: &str = "validation";
/// At most this much of a command's output goes into its record (`output_tail`).
pub const TAIL_BYTES: usize = 2048;
/// At most this many lines of the failing command's output go to the agent.
pub const FAILURE_LINES: usize = 60;
/// The reason of an implemented run that changed nothing it would commit.
pub const EMPTY_REASON: &str = "reported implemented but changed no file";

/// How a run's outcome stands with respect to validation (`validation` in `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verdict {
    /// No command is configured for the task's language, or the gate did not run (the agent
    /// did not report implemented).
    #[default]
    NotValidated,
    /// `--no-validate`.
    Skipped,
    /// Every command exited 0.
    Passed,
    /// A command failed (twice, with the retry), or the run changed no file.
    Failed,
}

impl Verdict {
    /// The word in `--json` and the text headline.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotValidated => "not validated",
            Verdict::Skipped => "skipped",
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
        }
    }
}

/// One command's run: what state.json's `validation` holds per command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// The command as configured.
    pub command: String,
    /// Its exit code; `null` when it was killed (a timeout or a signal).
    pub exit_code: Option<i32>,
    /// How long it ran.
    pub duration_ms: u64,
    /// When it finished (UTC, `XTASK_NOW` when set).
    pub finished: String,
    /// The git tree that was validated: HEAD's tree with the task's commit paths taken from the
    /// work tree, without `specs/state.json`, `specs/TODO.md` and the task's own directory.
    pub tree: Option<String>,
    /// The last 2 KiB of its output (stdout and stderr as they were interleaved).
    pub output_tail: String,
    /// The full output, repository-relative (committed with the task).
    pub log: String,
    /// Killed by `validation_timeout`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

impl Record {
    /// Exit 0.
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    /// `exit 0`, `exit 3`, `timed out`, `killed by a signal`.
    pub fn how(&self) -> String {
        match (self.timed_out, self.exit_code) {
            (true, _) => "timed out, process group killed".to_owned(),
            (false, Some(c)) => format!("exit {c}"),
            (false, None) => "killed by a signal".to_owned(),
        }
    }

    /// The commit trailer: `Validated: <command> (exit 0, 12.3s)`.
    pub fn trailer(&self) -> String {
        let command = self.command.split(['\n', '\r']).map(str::trim).collect::<Vec<_>>().join(" ");
        format!("Validated: {command} ({}, {:.1}s)", self.how(), self.duration_ms as f64 / 1000.0)
    }
}

/// What a gate of several commands found.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    /// One record per command that ran (the commands after a failing one do not run).
    pub records: Vec<Record>,
}

impl Attempt {
    /// Every command exited 0.
    pub fn passed(&self) -> bool {
        self.records.iter().all(Record::passed)
    }

    /// The first failing command.
    pub fn failing(&self) -> Option<&Record> {
        self.records.iter().find(|r| !r.passed())
    }

    /// `validation_failure` for the agent's retry: `{command, exit_code, output_tail}` with the
    /// last 60 lines of the failing command's output.
    pub fn failure(&self, root: &Path) -> Option<Value> {
        let r = self.failing()?;
        let text =
            std::fs::read(root.join(&r.log)).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(FAILURE_LINES)..].join("\n");
        Some(json!({
            "command": r.command,
            "exit_code": r.exit_code,
            "timed_out": r.timed_out,
            "output_tail": tail,
            "log": r.log,
        }))
    }

    /// The outcome's reason for a failing attempt: the command and how it ended.
    pub fn reason(&self) -> Option<String> {
        let r = self.failing()?;
        Some(format!("validation failed: `{}` ({}); output in {}", r.command, r.how(), r.log))
    }

    /// Sets the validated tree of every record.
    pub fn set_tree(&mut self, tree: Option<String>) {
        for r in &mut self.records {
            r.tree = tree.clone();
        }
    }
}

/// The paths that are not part of the validated tree: the shared ledger files and the task's
/// own directory (plan markers, summaries, handoffs and the validation logs are bookkeeping,
/// rewritten by the recording itself after the commands ran).
pub fn tree_excludes(task_dir_rel: &str) -> Vec<String> {
    let mut out: Vec<String> = crate::ledger::LEDGER_FILES.iter().map(|s| (*s).to_owned()).collect();
    out.push(task_dir_rel.trim_end_matches('/').to_owned());
    out
}

/// A task's validation log directory, absolute and repository-relative.
pub fn log_dirs(task: &TaskRef) -> (PathBuf, String) {
    (task.dir.join(VALIDATION_DIR), format!("{}/{VALIDATION_DIR}", task.dir_rel))
}

/// Where the gate runs and how.
#[derive(Debug)]
pub struct Gate<'a> {
    /// The work tree the task is committed from.
    pub root: &'a Path,
    /// The task (`XTASK_TASK_NUMBER` of the commands, the progress lines).
    pub task: &'a TaskId,
    /// The directory the logs are written to, absolute (a task's `validation/`).
    pub log_dir: &'a Path,
    /// The same directory, repository-relative (the records' `log`).
    pub log_dir_rel: &'a str,
    /// The commands, in order.
    pub commands: &'a [String],
    /// Variables set for a command, by its text (a payload's `environment`); none for the rest.
    pub env: &'a [(String, Vec<(String, String)>)],
    /// Seconds each command may run.
    pub timeout: u64,
}

impl Gate<'_> {
    /// Runs the commands in order, stopping at the first that fails. `first_k` numbers the
    /// first command's log (`<stamp>-<k>.log`; a retry continues the numbering), `finished`
    /// gives the record's timestamp.
    ///
    /// # Errors
    /// The log directory cannot be written; the shell cannot be started; an interrupt.
    ///
    /// # Writes
    /// `<log_dir>/<stamp>-<k>.log` (a task's `specs/N_slug/validation/`), one per command run.
    pub fn run(&self, first_k: usize, finished: &dyn Fn() -> String, progress: &Progress) -> Result<Attempt> {
        let dir = self.log_dir.to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
        let mut attempt = Attempt::default();
        for (i, command) in self.commands.iter().enumerate() {
            let name = format!("{stamp}-{}.log", first_k + i);
            let log_path: PathBuf = dir.join(&name);
            std::fs::write(&log_path, format!("$ {command}\n")).map_err(|e| Error::io("write", &log_path, e))?;
            progress.start(&format!("task {}: validating `{command}`", self.task));
            let spawn = Spawn::Shell(command.clone());
            let inv = agent::Invocation {
                spawn: &spawn,
                cwd: self.root,
                stdin: String::new(),
                env: std::iter::once(("XTASK_TASK_NUMBER".to_owned(), self.task.to_string()))
                    .chain(self.env.iter().filter(|(c, _)| c == command).flat_map(|(_, vars)| vars.iter().cloned()))
                    .collect(),
                timeout: Duration::from_secs(self.timeout),
                log_path: &log_path,
                marker: None,
                on_line: None,
            };
            let done = agent::run(&inv, progress)?;
            let record = Record {
                command: command.clone(),
                exit_code: if done.timed_out { None } else { done.exit_code },
                duration_ms: u64::try_from(done.elapsed.as_millis()).unwrap_or(u64::MAX),
                finished: finished(),
                tree: None,
                output_tail: tail(&log_path, TAIL_BYTES),
                log: format!("{}/{name}", self.log_dir_rel.trim_end_matches('/')),
                timed_out: done.timed_out,
            };
            if record.timed_out {
                let note = format!("[postflight] timed out after {}s; process group killed\n", self.timeout);
                let _ = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&log_path)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, note.as_bytes()));
            }
            progress.finish(&format!("`{command}`: {}", record.how()));
            let failed = !record.passed();
            attempt.records.push(record);
            if failed {
                break;
            }
        }
        Ok(attempt)
    }
}

/// The last `max` bytes of a file (cut at a character boundary).
fn tail(path: &Path, max: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = bytes.len().saturating_sub(max);
    let text = String::from_utf8_lossy(&bytes[start..]).into_owned();
    // A cut inside a character leaves a replacement character at the start: drop it.
    text.trim_start_matches('\u{FFFD}').to_owned()
}

/// The `validation` value of a task's state.json entry.
pub fn records_json(records: &[Record]) -> Value {
    serde_json::to_value(records).unwrap_or(Value::Null)
}

/// What `xtask verify N` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The task.
    pub task: u32,
    /// The recorded tree.
    pub recorded_tree: Option<String>,
    /// The tree of the current work tree, computed the same way.
    pub tree: String,
    /// Whether they are the same.
    pub tree_matches: bool,
    /// Whether the committed content (HEAD's tree, computed the same way) is the recorded one.
    pub head_tree_matches: bool,
    /// The files with uncommitted changes that make the work tree's tree (outside the ledger
    /// and the task's directory): what to commit or stash to compare the committed tree alone.
    pub uncommitted: Vec<String>,
    /// Each recorded command: its recorded exit code, now.
    pub commands: Vec<VerifyCommand>,
    /// Every command's exit code matched and the tree is the recorded one.
    pub ok: bool,
}

/// One command re-run by `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyCommand {
    /// The command.
    pub command: String,
    /// The exit code recorded.
    pub recorded_exit_code: Option<i32>,
    /// The exit code now (`null`: killed).
    pub exit_code: Option<i32>,
    /// Whether they agree.
    pub matches: bool,
    /// How long it ran now.
    pub duration_ms: u64,
}

/// `xtask verify N`: runs the recorded commands on the current work tree (nothing is checked
/// out), compares their exit codes with the record, and computes the tree of the current work
/// tree the way the record's was computed (HEAD's tree with every changed, non-ignored file of
/// the work tree applied, without the ledger files and the task's directory).
///
/// # Errors
/// A refusal when the task has no validation record; git and I/O failures.
///
/// # Writes
/// Nothing but objects in the object database (the planned tree) and the commands' own effects.
pub fn verify(ctx: &crate::context::Context, n: u32, timeout: u64, progress: &Progress) -> Result<VerifyReport> {
    let state = ctx.ledger().state()?;
    let info = state.task(n)?;
    let entry = state.entry(n)?;
    let records: Vec<Value> = entry.get("validation").and_then(Value::as_array).cloned().unwrap_or_default();
    if records.is_empty() {
        return Err(Error::refused(
            format!("task {n} has no validation record in specs/state.json"),
            Some("run `xtask implement N` with validation commands configured (.postflight.json `validation`)"),
        ));
    }
    let dir_rel = match crate::ledger::plan::task_dir(&ctx.repo.specs_dir(), n, info.slug.as_deref()) {
        Some(d) => ctx.repo.relative(&d),
        None => format!("specs/{n}_{}", info.slug.clone().unwrap_or_default()),
    };
    let recorded_tree = records.iter().find_map(|r| r.get("tree").and_then(Value::as_str)).map(str::to_owned);
    let now = crate::git::WorkTreeState::read(&ctx.repo.root)?;
    let excludes = tree_excludes(&dir_rel);
    let paths: Vec<PathBuf> = now.paths().map(PathBuf::from).collect();
    let tree = crate::git::plan_tree(&ctx.repo, &paths, &excludes)?.tree;
    let head_tree = crate::git::plan_tree(&ctx.repo, &[], &excludes)?.tree;
    let excluded = |p: &str| {
        excludes.iter().any(|e| p == e || p.strip_prefix(e.as_str()).is_some_and(|rest| rest.starts_with('/')))
    };
    let uncommitted: Vec<String> = now.paths().filter(|p| !excluded(p)).map(str::to_owned).collect();
    let tmp = tempfile::Builder::new()
        .prefix("postflight-verify-")
        .tempdir()
        .map_err(|e| Error::io("create a temporary directory", std::env::temp_dir(), e))?;
    let mut commands = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let Some(command) = r.get("command").and_then(Value::as_str) else { continue };
        let recorded = r.get("exit_code").and_then(Value::as_i64).and_then(|c| i32::try_from(c).ok());
        let log = tmp.path().join(format!("{}.log", i + 1));
        progress.start(&format!("task {n}: verifying `{command}`"));
        let spawn = Spawn::Shell(command.to_owned());
        let inv = agent::Invocation {
            spawn: &spawn,
            cwd: &ctx.repo.root,
            stdin: String::new(),
            env: vec![("XTASK_TASK_NUMBER".to_owned(), n.to_string())],
            timeout: Duration::from_secs(timeout),
            log_path: &log,
            marker: None,
            on_line: None,
        };
        let done = agent::run(&inv, progress)?;
        let code = if done.timed_out { None } else { done.exit_code };
        progress.finish(&format!("`{command}`: {}", code.map_or("killed".to_owned(), |c| format!("exit {c}"))));
        commands.push(VerifyCommand {
            command: command.to_owned(),
            recorded_exit_code: recorded,
            exit_code: code,
            matches: code == recorded,
            duration_ms: u64::try_from(done.elapsed.as_millis()).unwrap_or(u64::MAX),
        });
    }
    let tree_matches = recorded_tree.as_deref() == Some(tree.as_str());
    let head_tree_matches = recorded_tree.as_deref() == Some(head_tree.as_str());
    let ok = tree_matches && commands.iter().all(|c| c.matches);
    Ok(VerifyReport { task: n, recorded_tree, tree, tree_matches, head_tree_matches, uncommitted, commands, ok })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(code: Option<i32>, timed_out: bool) -> Record {
        Record {
            command: "cargo test\n--workspace".into(),
            exit_code: code,
            duration_ms: 12_345,
            finished: "2026-03-16T21:11:23Z".into(),
            tree: None,
            output_tail: String::new(),
            log: "specs/1_x/validation/a-1.log".into(),
            timed_out,
        }
    }

    #[test]
    fn trailers_and_verdicts() {
        assert_eq!(record(Some(0), false).trailer(), "Validated: cargo test --workspace (exit 0, 12.3s)");
        assert_eq!(record(Some(2), false).trailer(), "Validated: cargo test --workspace (exit 2, 12.3s)");
        assert!(record(None, true).trailer().contains("timed out"));
        let a = Attempt { records: vec![record(Some(0), false), record(Some(1), false)] };
        assert!(!a.passed());
        assert!(a.reason().expect("reason").contains("(exit 1)"));
        assert_eq!(Verdict::NotValidated.as_str(), "not validated");
    }

    #[test]
    fn tail_keeps_the_end() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = tmp.path().join("x.log");
        std::fs::write(&p, "é".repeat(3000)).expect("w");
        let t = tail(&p, TAIL_BYTES);
        assert!(t.len() <= TAIL_BYTES && t.chars().all(|c| c == 'é'), "{}", t.len());
    }
}
