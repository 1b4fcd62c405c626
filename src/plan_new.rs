//! `plan new` (and `task new --plan`): writes the next plan version
//! `specs/{N}_{slug}/plans/implementation-{NNN}.md` in the seed's plan format, moves the task to
//! planned in all three files, links the plan in state.json's `artifacts` and in TODO.md's
//! `- **Plan**:` bullet, all in one locked ledger transaction (the plan file is one of the files
//! of that transaction). See docs/plans.md for the format and what each part is used for.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::ledger::plan;
use crate::ledger::status::Status;
use crate::ledger::{Change, Snapshot};
use crate::run::{Marker, MARKER_FILE};
use crate::task_id::TaskId;
use crate::tasks::{self, NewTask};

/// The phase a plan gets when no phase title is given.
pub const DEFAULT_PHASE: &str = "Implementation";

/// Inputs of `plan new`.
#[derive(Debug, Clone, Default)]
pub struct NewPlan {
    /// The task.
    pub task: u32,
    /// The phase titles, in order; empty means one phase, [`DEFAULT_PHASE`].
    pub phases: Vec<String>,
    /// Write the plan whatever the task's status (implementing, partial, completed, abandoned,
    /// ...) and whatever the lifecycle says about moving it to planned. A live run of the task
    /// still refuses.
    pub force: bool,
}

/// What `plan new` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PlanWritten {
    /// The task.
    pub task: u32,
    /// The new plan, repository-relative.
    pub plan: String,
    /// Its version (`2` for `implementation-002.md`).
    pub version: u64,
    /// The phase titles written.
    pub phases: Vec<String>,
    /// The task's status before (it is `planned` after).
    pub from: String,
    /// Every file written, repository-relative (state.json first).
    pub files: Vec<String>,
    /// Things the user should know.
    pub warnings: Vec<String>,
    /// The changes, for callers that diff or commit them.
    #[serde(skip)]
    pub changes: Vec<Change>,
}

/// The phase titles to write: the given ones trimmed (one line each, no square brackets, which
/// the plan parser reads as status markers), or the one default phase.
///
/// # Errors
/// A refusal naming the bad title.
pub fn checked_phases(phases: &[String]) -> Result<Vec<String>> {
    if phases.is_empty() {
        return Ok(vec![DEFAULT_PHASE.to_owned()]);
    }
    phases
        .iter()
        .map(|p| {
            let t = p.trim();
            if t.is_empty() || t.chars().any(char::is_control) || t.contains(['[', ']']) {
                Err(Error::refused(
                    format!("`{p}` is not a phase title"),
                    Some("a phase title is one non-empty line without square brackets (they hold the phase's status marker)"),
                ))
            } else {
                Ok(t.to_owned())
            }
        })
        .collect()
}

/// Statuses a plan is written for without `--force`: before implementation starts (and
/// `blocked`, and words the tool does not know, which the lifecycle lets move to planned).
fn plannable(status: &Status) -> bool {
    !matches!(
        status,
        Status::Implementing
            | Status::Partial
            | Status::Completed
            | Status::Implemented
            | Status::Abandoned
            | Status::Expanded
    )
}

/// Writes the next plan of task `opts.task` and moves the task to planned.
///
/// # Errors
/// Refusals (unknown or duplicated task, a status that needs `--force`, a forbidden transition
/// without it, a live run, bad phase titles) change nothing; ledger and I/O errors.
///
/// # Writes
/// The new plan, `specs/state.json`, `specs/TODO.md`.
pub fn plan_new(ctx: &Context, opts: &NewPlan) -> Result<PlanWritten> {
    let phases = checked_phases(&opts.phases)?;
    // Held through the transaction, as a run holds it: no implement run of the task starts
    // while its plan is being replaced, and a live one refuses this.
    let _run = run_lock(ctx, &TaskId::from(opts.task))?;
    let ts = ctx.timestamp();
    let (written, changes) = ctx.ledger().update(|snap| write_plan(ctx, snap, opts.task, &phases, opts.force, &ts))?;
    Ok(finish(ctx, opts.task, written, phases, changes))
}

/// `task new` and `plan new` in one transaction: the task is created and planned at once.
///
/// # Errors
/// As [`tasks::new_task`] and [`plan_new`].
///
/// # Writes
/// `specs/state.json`, `specs/TODO.md`, the new plan.
pub fn new_task_with_plan(ctx: &Context, input: &NewTask, phases: &[String]) -> Result<PlanWritten> {
    let title = tasks::checked_title(&input.title)?;
    let phases = checked_phases(phases)?;
    let ts = ctx.timestamp();
    let ((n, written), changes) = ctx.ledger().update(|snap| {
        let n = tasks::add_task(snap, input, title, &ts)?;
        Ok((n, write_plan(ctx, snap, n, &phases, false, &ts)?))
    })?;
    Ok(finish(ctx, n, written, phases, changes))
}

fn finish(ctx: &Context, n: u32, written: Written, phases: Vec<String>, changes: Vec<Change>) -> PlanWritten {
    let mut warnings = written.warnings;
    // The tool reads the newest plan by its own rule; say so if that is not the new file.
    if let Some(newest) = plan::latest_plan(&written.dir).filter(|p| *p != written.path) {
        warnings.push(format!(
            "{} sorts after the new plan: `xtask implement {n}` reads that one",
            ctx.repo.relative(&newest)
        ));
    }
    PlanWritten {
        task: n,
        plan: ctx.repo.relative(&written.path),
        version: written.version,
        phases,
        from: written.from.to_string(),
        files: changes.iter().map(|c| ctx.repo.relative(&c.path)).collect(),
        warnings,
        changes,
    }
}

fn run_lock(ctx: &Context, task: &TaskId) -> Result<crate::atomic::Lock> {
    crate::atomic::Lock::try_acquire(&crate::workflow::preflight::run_lock_path(ctx, task))?.ok_or_else(|| {
        Error::refused(
            format!(
                "task {task} is being implemented by a live run; a new plan now would change what its agent works from"
            ),
            Some(&format!("wait for the run to end, or stop it with `xtask cancel {task}`")),
        )
    })
}

/// What [`write_plan`] did to the snapshot.
struct Written {
    dir: PathBuf,
    path: PathBuf,
    version: u64,
    from: Status,
    warnings: Vec<String>,
}

/// The edit of `plan new` on a snapshot: the new plan file, the status move, the two links.
/// Creates the plan directory last, once nothing can refuse any more.
fn write_plan(ctx: &Context, snap: &mut Snapshot, n: u32, phases: &[String], force: bool, ts: &str) -> Result<Written> {
    let info = snap.state().task(n)?;
    if !force && !plannable(&info.status) {
        return Err(Error::refused(
            format!("task {n} has status `{}`; a new plan is written only before implementation", info.status),
            Some(&format!(
                "pass --force to write implementation-NNN.md anyway and move the task back to planned (`xtask implement {n}` then works from the new plan)"
            )),
        ));
    }
    let specs = ctx.repo.specs_dir();
    let slug = info.slug.clone().filter(|s| !s.is_empty() && s != "null" && !s.contains('/') && !s.contains(".."));
    let dir = match (plan::task_dir(&specs, n, slug.as_deref()), &slug) {
        (Some(d), _) => d,
        (None, Some(s)) => specs.join(format!("{n}_{s}")),
        (None, None) => {
            return Err(Error::refused(
                format!("task {n} has no usable `project_name` in specs/state.json"),
                Some("give the task a snake_case project_name"),
            ))
        }
    };
    refuse_live_marker(&dir, &TaskId::from(n))?;
    let slug = slug.unwrap_or_else(|| {
        let name = dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        name.split_once('_').map(|(_, s)| s.to_owned()).unwrap_or(name)
    });
    let version = plan::next_plan_version(&dir);
    let name = format!("implementation-{version:03}.md");
    let path = dir.join("plans").join(&name);
    let rel = ctx.repo.relative(&path);
    let entry = snap.state().entry(n)?;
    let text = plan_text(
        &PlanHeader {
            number: n,
            slug: &slug,
            language: &info.language,
            description: &info.description,
            dependencies: &tasks::dependencies(entry),
            version,
        },
        phases,
    );
    snap.add_plan(n, path.clone(), &text)?;
    let (from, warnings) = tasks::apply_status(snap, n, &Status::Planned, force, ts, &[])?;
    link_artifact(snap.state_mut().entry_mut(n)?, &rel, phases);
    if let Some(todo) = snap.todo_mut() {
        // A TODO.md without the task was already reported by apply_status.
        todo.set_bullet(n, "Plan", &format!("[{name}]({rel})"))?;
    }
    let plans = dir.join("plans");
    std::fs::create_dir_all(&plans).map_err(|e| Error::io("create directory", &plans, e))?;
    Ok(Written { dir, path, version, from, warnings })
}

/// Refuses while the marker in the task directory names a live `xtask` or agent (a run started
/// by `xtask preflight` holds no run lock; an agent whose `xtask` was killed holds none either).
fn refuse_live_marker(dir: &Path, task: &TaskId) -> Result<()> {
    let Ok(m) = Marker::load(&dir.join(MARKER_FILE)) else { return Ok(()) };
    let live = if m.run_alive() { m.pid } else { m.live_agent() };
    match live {
        Some(pid) => Err(Error::refused(
            format!("task {task} has a live run (pid {pid}); a new plan now would change what its agent works from"),
            Some(&format!("wait for the run to end, or stop it with `xtask cancel {task}`")),
        )),
        None => Ok(()),
    }
}

/// Appends `{"path", "type": "plan", "summary"}` to the entry's artifacts (the earlier plans
/// stay linked, as the seed's revisions left them).
fn link_artifact(entry: &mut Map<String, Value>, rel: &str, phases: &[String]) {
    let list = entry.entry("artifacts").or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    let list = list.as_array_mut().expect("made an array above");
    list.retain(|v| v.as_str() != Some(rel) && v.get("path").and_then(Value::as_str) != Some(rel));
    let count = phases.len();
    let mut o = Map::new();
    o.insert("path".into(), Value::from(rel));
    o.insert("type".into(), Value::from("plan"));
    o.insert(
        "summary".into(),
        Value::from(format!("{count} phase{}: {}", if count == 1 { "" } else { "s" }, phases.join("; "))),
    );
    list.push(Value::Object(o));
}

/// The header fields of a new plan.
struct PlanHeader<'a> {
    number: u32,
    slug: &'a str,
    language: &'a str,
    description: &'a str,
    dependencies: &'a [u32],
    version: u64,
}

/// The text of a new plan, in the seed's format (reference §4.2-4.3).
fn plan_text(h: &PlanHeader<'_>, phases: &[String]) -> String {
    let deps = if h.dependencies.is_empty() {
        "None".to_owned()
    } else {
        h.dependencies.iter().map(|d| format!("Task {d}")).collect::<Vec<_>>().join(", ")
    };
    let overview = if h.description.trim().is_empty() {
        "TODO: what this plan achieves, and the approach in a few sentences.".to_owned()
    } else {
        h.description.replace('\n', " ")
    };
    let mut out = format!(
        "# Implementation Plan: Task #{n}\n\n\
         - **Task**: {n} - {slug}\n\
         - **Status**: [PLANNED]\n\
         - **Effort**: TBD\n\
         - **Dependencies**: {deps}\n\
         - **Artifacts**: plans/implementation-{v:03}.md (this file)\n\
         - **Type**: {lang}\n\n\
         ## Overview\n\n\
         {overview}\n\n\
         ## Implementation Phases\n",
        n = h.number,
        slug = h.slug,
        v = h.version,
        lang = h.language,
    );
    for (i, title) in phases.iter().enumerate() {
        let k = i + 1;
        if k > 1 {
            out.push_str("\n---\n");
        }
        let depends = if k == 1 { "None".to_owned() } else { format!("Phase {}", k - 1) };
        out.push_str(&format!(
            "\n### Phase {k}: {title} [NOT STARTED]\n\n\
             - **Dependencies:** {depends}\n\
             - **Goal:** TODO\n\n\
             **Tasks:**\n\
             - [ ] TODO\n\n\
             **Files to modify**:\n\
             - `path/to/file` - TODO: replace with the files this phase changes\n\n\
             **Verification**:\n\
             - TODO: the command or check that shows this phase works\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::plan::PlanFile;

    #[test]
    fn the_text_reads_back_with_its_phases_and_header() {
        let phases = checked_phases(&["Scaffold".into(), " Core logic ".into(), "Tests".into()]).expect("ok");
        let h = PlanHeader {
            number: 7,
            slug: "x",
            language: "general",
            description: "",
            dependencies: &[3, 4],
            version: 2,
        };
        let text = plan_text(&h, &phases);
        let p = PlanFile::parse(Path::new("p.md"), text.as_bytes()).expect("parse");
        assert_eq!(p.header_status().map(|(_, m)| m).as_deref(), Some("PLANNED"));
        let got: Vec<(String, String, Option<String>)> =
            p.phases().into_iter().map(|ph| (ph.id, ph.title, ph.marker)).collect();
        let want: Vec<(String, String, Option<String>)> = [("1", "Scaffold"), ("2", "Core logic"), ("3", "Tests")]
            .iter()
            .map(|(i, t)| ((*i).to_owned(), (*t).to_owned(), Some("NOT STARTED".to_owned())))
            .collect();
        assert_eq!(got, want);
        assert!(text.contains("- **Dependencies**: Task 3, Task 4\n"), "{text}");
        assert!(text.contains("- **Artifacts**: plans/implementation-002.md (this file)\n"), "{text}");
        assert_eq!(p.files_to_modify(), ["path/to/file"]);
    }

    #[test]
    fn the_example_of_docs_plans_md_reads_as_it_says() {
        let doc = include_str!("../docs/plans.md");
        let start = doc.find("```markdown\n").expect("the example") + "```markdown\n".len();
        let text = &doc[start..start + doc[start..].find("\n```").expect("its end") + 1];
        let p = PlanFile::parse(Path::new("plans.md"), text.as_bytes()).expect("parse");
        assert_eq!(p.header_status().map(|(_, m)| m).as_deref(), Some("PLANNED"));
        let phases: Vec<(String, String)> = p.phases().into_iter().map(|ph| (ph.id, ph.title)).collect();
        let want = [("1", "Parser"), ("2", "Export command"), ("3", "Tests")];
        assert_eq!(phases, want.map(|(i, t)| (i.to_owned(), t.to_owned())));
        assert_eq!(
            p.files_to_modify(),
            ["src/cli/export.rs", "src/cli/mod.rs", "src/export/mod.rs", "tests/export.rs", "tests/golden/export.csv"]
        );
    }

    #[test]
    fn phase_titles_are_one_line_without_brackets() {
        assert_eq!(checked_phases(&[]).expect("default"), [DEFAULT_PHASE]);
        for bad in ["", " ", "a\nb", "Fix [API]", "x]"] {
            assert!(checked_phases(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
    }
}
