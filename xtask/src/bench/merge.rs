//! `bench merge-driver`: the ledger merge driver on a generated ledger (1,000 tasks by default):
//! two sides that each change some tasks' status and create a task, merged in-process
//! (`postflight::merge::merge_bytes`) and through the `xtask merge-driver` process exactly as
//! git invokes it (temp files, the result written over `%A`). Prints medians, not a test: run it
//! with `cargo run --release -p xtask -- bench merge-driver`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{bail, Context as _};
use postflight::ledger::json;
use postflight::ledger::status::Status;
use postflight::ledger::todo::TodoFile;
use serde_json::{json, Value};

use super::{median, ms, time};

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// Tasks in the generated ledger
    #[arg(long, default_value_t = 1_000)]
    tasks: usize,
    /// Tasks whose status each side changes (different tasks on each side)
    #[arg(long, default_value_t = 10)]
    changes: usize,
    /// Timed runs per measurement (after one warm-up)
    #[arg(long, default_value_t = 20)]
    runs: usize,
}

/// One side's two files.
struct Files {
    state: Vec<u8>,
    todo: Vec<u8>,
}

impl MergeArgs {
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let MergeArgs { tasks, changes, runs } = self;
        let generated = super::gen::ledger(tasks);
        let file = |name: &str| -> anyhow::Result<Vec<u8>> {
            generated.files.iter().find(|(p, _, _)| p == name).map(|(_, b, _)| b.clone()).context(name.to_owned())
        };
        let base = Files { state: file("specs/state.json")?, todo: file("specs/TODO.md")? };
        let numbers: Vec<u32> = {
            let v: Value = serde_json::from_slice(&base.state)?;
            v["active_projects"]
                .as_array()
                .context("active_projects")?
                .iter()
                .filter_map(|e| e["project_number"].as_u64())
                .map(|n| n as u32)
                .collect()
        };
        if numbers.len() < 2 * changes {
            bail!("{} tasks are too few for {changes} changes on each side", numbers.len());
        }
        let next = numbers.iter().max().copied().unwrap_or(0) + 1;
        let ours = side(&base, &numbers[..changes], next, "ours", "2026-03-16T21:00:00Z")?;
        let theirs = side(&base, &numbers[changes..2 * changes], next + 1, "theirs", "2026-03-16T22:00:00Z")?;

        // The result is checked once, so the timings are of a merge that does its job.
        let merged = postflight::merge::merge_bytes("specs/state.json", &base.state, &ours.state, &theirs.state)?;
        if !merged.conflicts.is_empty() {
            bail!("the benchmark's sides conflict: {:?}", merged.conflicts);
        }
        let v: Value = serde_json::from_slice(&merged.bytes)?;
        let count = v["active_projects"].as_array().map_or(0, Vec::len);
        if count != numbers.len() + 2 {
            bail!("the merge holds {count} tasks, expected {}", numbers.len() + 2);
        }
        let todo = postflight::merge::merge_bytes("specs/TODO.md", &base.todo, &ours.todo, &theirs.todo)?;
        if !todo.conflicts.is_empty() {
            bail!("the benchmark's TODO.md sides conflict: {:?}", todo.conflicts);
        }

        let in_process = |path: &'static str, pick: fn(&Files) -> &Vec<u8>| -> anyhow::Result<Duration> {
            let mut samples = Vec::new();
            for i in 0..=runs {
                let took = time(|| {
                    postflight::merge::merge_bytes(path, pick(&base), pick(&ours), pick(&theirs))?;
                    Ok(())
                })?;
                if i > 0 {
                    samples.push(took);
                }
            }
            Ok(median(samples))
        };
        let state_lib = in_process("specs/state.json", |f| &f.state)?;
        let todo_lib = in_process("specs/TODO.md", |f| &f.todo)?;

        let dir = std::env::temp_dir().join(format!("postflight-bench-merge-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let result = self_timed(&dir, runs, &base, &ours, &theirs);
        let _ = std::fs::remove_dir_all(&dir);
        let (state_proc, todo_proc) = result?;

        writeln!(
            out,
            "merge driver, {} tasks (state.json {} KB, TODO.md {} KB), {changes} status changes and one new task on each side, median of {runs}:",
            numbers.len(),
            base.state.len() / 1024,
            base.todo.len() / 1024
        )?;
        writeln!(
            out,
            "  state.json  in-process {:>8.2} ms   xtask merge-driver {:>8.2} ms",
            ms(state_lib),
            ms(state_proc)
        )?;
        writeln!(
            out,
            "  TODO.md     in-process {:>8.2} ms   xtask merge-driver {:>8.2} ms",
            ms(todo_lib),
            ms(todo_proc)
        )?;
        writeln!(out, "  both files, as one git merge runs them: {:.2} ms", ms(state_proc + todo_proc))?;
        Ok(ExitCode::SUCCESS)
    }
}

/// The `xtask merge-driver` process on both files, as git runs it: medians.
fn self_timed(
    dir: &Path,
    runs: usize,
    base: &Files,
    ours: &Files,
    theirs: &Files,
) -> anyhow::Result<(Duration, Duration)> {
    let xtask = std::env::current_exe().context("locate the xtask binary")?;
    let process = |path: &str, pick: fn(&Files) -> &Vec<u8>| -> anyhow::Result<Duration> {
        let mut samples = Vec::new();
        for i in 0..=runs {
            let (o, a, b) = (dir.join("O"), dir.join("A"), dir.join("B"));
            std::fs::write(&o, pick(base))?;
            std::fs::write(&a, pick(ours))?;
            std::fs::write(&b, pick(theirs))?;
            let took = time(|| run_driver(&xtask, dir, &o, &a, &b, path))?;
            if i > 0 {
                samples.push(took);
            }
        }
        Ok(median(samples))
    };
    Ok((process("specs/state.json", |f| &f.state)?, process("specs/TODO.md", |f| &f.todo)?))
}

fn run_driver(xtask: &Path, cwd: &Path, o: &Path, a: &Path, b: &Path, path: &str) -> anyhow::Result<()> {
    let status = Command::new(xtask).arg("merge-driver").arg(o).arg(a).arg(b).arg(path).current_dir(cwd).status()?;
    if !status.success() {
        bail!("xtask merge-driver exited {status}");
    }
    Ok(())
}

/// The base with `changed` tasks moved to `researched` and task `new` created, in both files.
fn side(base: &Files, changed: &[u32], new: u32, name: &str, ts: &str) -> anyhow::Result<Files> {
    let mut state: Value = serde_json::from_slice(&base.state)?;
    let list = state["active_projects"].as_array_mut().context("active_projects")?;
    for entry in list.iter_mut() {
        if entry["project_number"].as_u64().is_some_and(|n| changed.contains(&(n as u32))) {
            entry["status"] = json!("researched");
            entry["last_updated"] = json!(ts);
        }
    }
    let slug = format!("{name}_new_task");
    list.insert(
        0,
        json!({"project_number": new, "project_name": slug, "status": "not_started", "language": "general", "created": ts, "last_updated": ts}),
    );
    state["next_project_number"] = json!(new + 1);
    let mut todo = TodoFile::parse(Path::new("specs/TODO.md"), &base.todo)?;
    for n in changed {
        todo.set_status(*n, &Status::from_state("researched"))?;
    }
    todo.insert_task(&[
        format!("### {new}. {name} new task"),
        "- **Effort**: TBD".into(),
        "- **Status**: [NOT STARTED]".into(),
        "- **Language**: general".into(),
    ]);
    todo.set_next_project_number(u64::from(new) + 1);
    Ok(Files { state: json::to_jq_pretty(&state), todo: todo.to_text().into_bytes() })
}
