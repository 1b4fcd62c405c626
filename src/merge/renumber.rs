//! `xtask task renumber OLD NEW`: moves a task to another number, the way out of two branches
//! that created different tasks under one number. In one ledger transaction: the state.json
//! entry's `project_number` and every path in it under the task's directory, the TODO.md
//! heading and the links in its block, the newest plan's `Task #N` / `**Task**: N` lines and
//! links, `next_project_number` (both files) raised past NEW; and the directory
//! `specs/OLD_slug` renamed to `specs/NEW_slug` (renamed back when the transaction fails).
//! Refused, with nothing changed, when NEW is in use (state.json, TODO.md or a directory).

use std::cell::Cell;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::ledger::state::entry_number;
use crate::ledger::{plan, Change, Ledger};

/// What a renumbering did.
#[derive(Debug, Clone)]
pub struct Renumbered {
    /// The old number.
    pub old: u32,
    /// The new number.
    pub new: u32,
    /// The directory move (repository-relative), when the task had a directory.
    pub moved: Option<(String, String)>,
    /// The ledger files written.
    pub changes: Vec<Change>,
}

/// Renumbers task `old` to `new`.
///
/// # Errors
/// Refused when `old` is not in state.json (or twice), `new` is in use, `old == new`; lock,
/// I/O and parse errors. Nothing is changed on any error.
///
/// # Writes
/// `specs/state.json`, `specs/TODO.md`, the newest plan, and the task directory's name.
pub fn renumber(ledger: &Ledger, old: u32, new: u32) -> Result<Renumbered> {
    if old == new {
        return Err(Error::refused(format!("task {old} already has number {new}"), None));
    }
    let specs = ledger.repo.specs_dir();
    let moved: Cell<Option<(PathBuf, PathBuf)>> = Cell::new(None);
    let result = ledger.update(|snap| {
        let slug = snap.state().task(old)?.slug;
        if !matches!(snap.state().index_of(new), Err(Error::TaskNotFound { .. })) {
            return Err(in_use(new, "specs/state.json has it"));
        }
        if let Some(todo) = snap.todo() {
            if todo.headings().iter().any(|(_, n)| *n == new) {
                return Err(in_use(new, "specs/TODO.md has a heading for it"));
            }
            todo.block(old)?;
        }
        if let Some(dir) = plan::task_dir(&specs, new, None) {
            return Err(in_use(new, &format!("the directory {} exists", ledger.repo.relative(&dir))));
        }
        let dirs = plan::task_dir(&specs, old, slug.as_deref()).map(|from| {
            let name = from.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let rest = name.split_once('_').map_or(String::new(), |(_, r)| r.to_owned());
            let to = specs.join(if rest.is_empty() { new.to_string() } else { format!("{new}_{rest}") });
            (from, to)
        });
        let rename = dirs.as_ref().map(|(from, to)| (dir_name(from), dir_name(to)));

        // state.json: the number, the paths under the directory, next_project_number.
        let doc = snap.state_mut().doc_mut()?;
        let list = doc.get_mut("active_projects").and_then(Value::as_array_mut);
        let entry = list.and_then(|l| l.iter_mut().find(|e| entry_number(e) == Some(old)));
        let Some(entry) = entry else { return Err(Error::TaskNotFound { task: old, path: ledger.state_path() }) };
        if let Some(obj) = entry.as_object_mut() {
            obj.insert("project_number".into(), Value::from(new));
        }
        if let Some((from, to)) = &rename {
            rewrite_strings(entry, from, to);
        }
        let next = doc.get("next_project_number").and_then(Value::as_u64);
        if next.is_some_and(|n| n <= u64::from(new)) {
            doc["next_project_number"] = Value::from(u64::from(new) + 1);
        }

        // TODO.md: the heading's number, the links in the block, the frontmatter number.
        if let Some(todo) = snap.todo_mut() {
            if let Some(block) = todo.block(old)? {
                let heading = todo.doc.line(block.start).to_owned();
                todo.doc.set_line(block.start, &renumber_heading(&heading, old, new));
                if let Some((from, to)) = &rename {
                    for i in block.start + 1..block.end {
                        let line = todo.doc.line(i).to_owned();
                        let edited = replace_dir(&line, from, to);
                        if edited != line {
                            todo.doc.set_line(i, &edited);
                        }
                    }
                }
            }
            if todo.next_project_number().is_some_and(|(_, n)| n <= u64::from(new)) {
                todo.set_next_project_number(u64::from(new) + 1);
            }
        }

        // The directory, then its newest plan (read from the new place).
        if let Some((from, to)) = dirs {
            std::fs::rename(&from, &to).map_err(|e| Error::io("rename", &from, e))?;
            moved.set(Some((from, to)));
        }
        if let Some(plan) = snap.plan(new)? {
            for i in 0..plan.doc.len() {
                let line = plan.doc.line(i).to_owned();
                let mut edited = renumber_plan_line(&line, old, new);
                if let Some((from, to)) = &rename {
                    edited = replace_dir(&edited, from, to);
                }
                if edited != line {
                    plan.doc.set_line(i, &edited);
                }
            }
        }
        Ok(())
    });
    let taken = moved.take();
    match result {
        Ok(((), changes)) => Ok(Renumbered {
            old,
            new,
            moved: taken.map(|(from, to)| (ledger.repo.relative(&from), ledger.repo.relative(&to))),
            changes,
        }),
        Err(e) => {
            if let Some((from, to)) = taken {
                // Put the directory back; the ledger files were not written.
                std::fs::rename(&to, &from).map_err(|re| Error::io("rename back", &to, re))?;
            }
            Err(e)
        }
    }
}

fn in_use(new: u32, why: &str) -> Error {
    Error::refused(
        format!("task number {new} is in use ({why}); nothing changed"),
        Some("choose a number no task has (`xtask status` lists them; the next free one is next_project_number)"),
    )
}

fn dir_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// `### OLD. Title` (also `### ✅ OLD. Title`) with NEW instead.
fn renumber_heading(line: &str, old: u32, new: u32) -> String {
    let pat = format!("{old}.");
    match line.find(&pat) {
        Some(at) => format!("{}{new}.{}", &line[..at], &line[at + pat.len()..]),
        None => line.to_owned(),
    }
}

/// A plan line naming the task by number: `# Implementation Plan: Task #OLD` and
/// `- **Task**: OLD - slug`.
fn renumber_plan_line(line: &str, old: u32, new: u32) -> String {
    let hash = format!("Task #{old}");
    if let Some(at) = line.find(&hash) {
        let after = &line[at + hash.len()..];
        if !after.starts_with(|c: char| c.is_ascii_digit()) {
            return format!("{}Task #{new}{after}", &line[..at]);
        }
    }
    let bullet = format!("**Task**: {old}");
    if let Some(at) = line.find(&bullet) {
        let after = &line[at + bullet.len()..];
        if !after.starts_with(|c: char| c.is_ascii_digit()) {
            return format!("{}**Task**: {new}{after}", &line[..at]);
        }
    }
    line.to_owned()
}

/// `text` with each path component `from` (the old directory name) replaced by `to`: only
/// where it is a whole component (`specs/12_x/...`, `12_x/...`, never `112_x/`).
fn replace_dir(text: &str, from: &str, to: &str) -> String {
    if from.is_empty() || !text.contains(from) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let before = if at > 0 { rest[..at].chars().last() } else { out.chars().last() };
        let after = rest[at + from.len()..].chars().next();
        let whole = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-'))
            && after.is_none_or(|c| matches!(c, '/' | ')' | ']' | '`' | '"' | '\'' | ' '));
        out.push_str(&rest[..at]);
        out.push_str(if whole { to } else { from });
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
    out
}

/// Every string in `value` with the directory name replaced (artifact paths, plan paths).
fn rewrite_strings(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) => {
            let edited = replace_dir(s, from, to);
            if edited != *s {
                *s = edited;
            }
        }
        Value::Array(list) => list.iter_mut().for_each(|v| rewrite_strings(v, from, to)),
        Value::Object(map) => map.values_mut().for_each(|v| rewrite_strings(v, from, to)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_paths_are_renumbered_only_where_they_name_the_task() {
        assert_eq!(renumber_heading("### 12. Twelve", 12, 20), "### 20. Twelve");
        assert_eq!(renumber_heading("### ✅ 12. Twelve", 12, 20), "### ✅ 20. Twelve");
        assert_eq!(renumber_plan_line("# Implementation Plan: Task #12", 12, 20), "# Implementation Plan: Task #20");
        assert_eq!(renumber_plan_line("# Implementation Plan: Task #123", 12, 20), "# Implementation Plan: Task #123");
        assert_eq!(renumber_plan_line("- **Task**: 12 - twelve", 12, 20), "- **Task**: 20 - twelve");
        assert_eq!(
            replace_dir("[p](specs/12_twelve/plans/a.md) 112_twelve/x 12_twelve/y", "12_twelve", "20_twelve"),
            "[p](specs/20_twelve/plans/a.md) 112_twelve/x 20_twelve/y"
        );
    }
}
