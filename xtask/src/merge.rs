//! `merge-driver %O %A %B %P` (git's merge driver for the ledger files) and `task renumber`:
//! thin wrappers over `postflight::merge`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use postflight::merge;
use postflight::Context;

#[derive(clap::Args, Debug)]
pub struct MergeDriverArgs {
    /// %O: the ancestor's version (a temp file git wrote)
    base: PathBuf,
    /// %A: the current version; the result is written here
    ours: PathBuf,
    /// %B: the other branch's version
    theirs: PathBuf,
    /// %P: the path in the tree (specs/state.json or specs/TODO.md)
    path: String,
}

impl MergeDriverArgs {
    /// Exit 0 merged (the result in %A), 1 a conflict (git's text merge with markers in %A and
    /// a report on stderr naming each task and field).
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let MergeDriverArgs { base, ours, theirs, path } = self;
        let report = merge::drive(&base, &ours, &theirs, &path)?;
        if report.clean() {
            return Ok(ExitCode::SUCCESS);
        }
        let mut err = std::io::stderr().lock();
        if let Some(why) = &report.failure {
            writeln!(err, "postflight merge-driver: {path}: cannot merge per task: {why}")?;
        } else {
            writeln!(err, "postflight merge-driver: {path}: {} conflict(s):", report.conflicts.len())?;
            for c in &report.conflicts {
                writeln!(err, "  {c}")?;
            }
        }
        writeln!(
            err,
            "postflight merge-driver: {path} holds git's text merge, with conflict markers where the text conflicts"
        )?;
        let collision = report.conflicts.iter().any(|c| c.detail.contains("created on both sides as different tasks"));
        if collision {
            writeln!(
                err,
                "hint: two tasks under one number: `git merge --abort`, then on one branch `xtask task renumber N <free number>`, commit, and merge again"
            )?;
        } else {
            writeln!(err, "hint: edit {path} to the intended content (or `git checkout --ours/--theirs {path}`), then `xtask check` and `git add {path}`")?;
        }
        Ok(ExitCode::from(crate::EXIT_INTERNAL))
    }
}

/// `task renumber OLD NEW`.
pub fn renumber(ctx: &Context, old: u32, new: u32, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let done = merge::renumber::renumber(&postflight::ledger::Ledger::new(ctx.repo.clone()), old, new)?;
    let files: Vec<String> = done.changes.iter().map(|c| ctx.repo.relative(&c.path)).collect();
    if json {
        let moved = done.moved.as_ref().map(|(from, to)| serde_json::json!({"from": from, "to": to}));
        let value = serde_json::json!({ "old": old, "new": new, "files": files, "moved": moved });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        writeln!(out, "task {old} is now task {new}")?;
        if let Some((from, to)) = &done.moved {
            writeln!(out, "moved {from} -> {to}")?;
        }
        for f in &files {
            writeln!(out, "changed {f}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
