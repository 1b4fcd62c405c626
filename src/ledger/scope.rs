//! Task-scoped versions of the shared ledger files: given HEAD's and the working tree's bytes of
//! `specs/state.json` or `specs/TODO.md`, build HEAD's version with only one task's changes
//! applied, so a task's commit never carries another agent's uncommitted ledger edits.
//!
//! A task's change is its `active_projects` entry (state.json) or its block from `### N. ` to the
//! next heading or `---` (TODO.md), plus `next_project_number` when the task was created since
//! HEAD. Everything else stays exactly as HEAD has it.

use std::ops::Range;
use std::path::Path;

use serde_json::Value;

use super::json;
use super::state::{entry_number, unique_entry_span, StateFile};
use super::todo::{self, TodoFile};
use crate::error::{Error, Result};

/// HEAD's state.json with only task `task`'s changes from the working tree applied, printed as
/// `jq .` does. Returns `head` unchanged (byte for byte) when the task's entry did not change.
///
/// The entry keeps its position relative to its neighbours in the working tree; an entry created
/// since HEAD is placed like `task new` places it (newest first) and raises
/// `next_project_number` to at least `task + 1`; an entry removed from the working tree is removed.
///
/// # Errors
/// `Json`/`Format` when either version does not parse; `DuplicateTask` when either lists the
/// task twice.
pub fn scope_state(path: &Path, head: &[u8], worktree: &[u8], task: u32) -> Result<Vec<u8>> {
    Ok(scope_state_in(path, head, worktree, task)?.bytes(head, worktree).to_vec())
}

/// The result of scoping a ledger file, without copying either version (the commit's type).
pub use crate::git::Scoped;

/// The ledger's scoping of a task's commit: state.json and TODO.md are shared, each scoped to
/// the task by [`scope_state_hinted`] and [`scope_todo_in`].
#[derive(Debug)]
pub struct TaskScoping;

/// What a task's commit passes as [`crate::git::CommitRequest::scoping`].
pub static TASK_SCOPING: TaskScoping = TaskScoping;

impl TaskScoping {
    /// The scoping as a [`crate::git::CommitRequest::scoping`].
    pub fn shared() -> std::sync::Arc<dyn crate::git::Scoping> {
        std::sync::Arc::new(TaskScoping)
    }
}

impl crate::git::Scoping for TaskScoping {
    fn shares(&self, path: &str) -> bool {
        super::LEDGER_FILES.contains(&path)
    }

    fn scope(
        &self,
        path: &str,
        head: &[u8],
        worktree: &[u8],
        task: &crate::task_id::TaskId,
        hint: Option<(usize, usize)>,
    ) -> Result<Scoped> {
        let task = task.require_number("state.json")?;
        if path == super::LEDGER_FILES[0] {
            scope_state_hinted(Path::new(path), head, worktree, task, hint)
        } else {
            scope_todo_in(Path::new(path), head, worktree, task)
        }
    }
}

/// [`scope_state`] without copies.
///
/// # Errors
/// As [`scope_state`].
pub fn scope_state_in(path: &Path, head: &[u8], worktree: &[u8], task: u32) -> Result<Scoped> {
    scope_state_hinted(path, head, worktree, task, None)
}

/// [`scope_state_in`], told where the task's entry is in the working tree's bytes (as the
/// ledger update that wrote them knows), which spares locating it in a large file. The hint is
/// checked: a range that is not the task's entry is not used.
///
/// # Errors
/// As [`scope_state`].
pub fn scope_state_hinted(
    path: &Path,
    head: &[u8],
    worktree: &[u8],
    task: u32,
    entry: Option<(usize, usize)>,
) -> Result<Scoped> {
    if head == worktree {
        return Ok(Scoped::Head);
    }
    let is_task = |bytes: &[u8]| json::from_slice(bytes).is_ok_and(|v| v.is_object() && entry_number(&v) == Some(task));
    let entry = entry.filter(|(s, e)| s <= e && worktree.get(*s..*e).is_some_and(is_task));
    if let Some((start, end)) = entry.or_else(|| unique_entry_span(worktree, task)) {
        if let Some(mid) = between(head, &worktree[..start], &worktree[end..]) {
            // HEAD is the working tree with another value in the task's place: when that value is
            // the task's own entry, the working tree differs from HEAD only by the task's change.
            if is_task(mid) {
                return Ok(Scoped::Worktree);
            }
        }
    }
    let head_file = StateFile::parse(path, head.to_vec())?;
    let wt_file = StateFile::parse(path, worktree.to_vec())?;
    let head_at = position(head_file.index_of(task))?;
    let wt_at = position(wt_file.index_of(task))?;
    if head_at.is_none() && wt_at.is_none() {
        return Ok(Scoped::Head);
    }
    let wt_doc = wt_file.doc()?;
    let wt_list = wt_file.entries()?;
    // HEAD's document is edited in place (no copy): a ledger of 10,000 tasks is 14 MB.
    let mut out = head_file.into_doc()?;
    let Some(list) = out.get_mut("active_projects").and_then(Value::as_array_mut) else {
        return Err(Error::format(path, None, "no `active_projects` array"));
    };
    let mut unchanged = false;
    match (head_at, wt_at) {
        (h, None) => {
            // The entry was removed from the working tree (both missing returned above).
            if let Some(h) = h {
                list.remove(h);
            }
        }
        (h, Some(w)) => {
            let Some(entry) = wt_list.get(w) else { return Err(Error::format(path, None, "an entry is missing")) };
            let old = h.map(|h| list.remove(h));
            let at = insertion_index(list, wt_list, w, h);
            // The result equals HEAD exactly when the entry goes back where it was, printed the
            // same (only the key order may differ while the values compare equal, as serde_json's
            // maps compare unordered, so the printed forms are compared); only this entry moves,
            // and next_project_number changes only for a new entry.
            unchanged =
                h == Some(at) && old.as_ref().is_some_and(|old| json::to_jq_pretty(old) == json::to_jq_pretty(entry));
            list.insert(at, entry.clone());
            if h.is_none() {
                raise_next_number(&mut out, wt_doc, task);
            }
        }
    }
    Ok(if unchanged { Scoped::Head } else { Scoped::New(json::to_jq_pretty(&out)) })
}

/// The bytes of `text` between `prefix` and `suffix`, when it starts with the one and ends with
/// the other without overlap.
fn between<'a>(text: &'a [u8], prefix: &[u8], suffix: &[u8]) -> Option<&'a [u8]> {
    (text.len() >= prefix.len() + suffix.len() && text.starts_with(prefix) && text.ends_with(suffix))
        .then(|| &text[prefix.len()..text.len() - suffix.len()])
}

fn position(found: Result<usize>) -> Result<Option<usize>> {
    match found {
        Ok(i) => Ok(Some(i)),
        Err(Error::TaskNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Where the working tree's entry `w` goes in `list` (HEAD's entries without the task): after
/// the nearest preceding working-tree neighbour that HEAD has, else before the nearest
/// following one, else where HEAD had it, else first. A neighbour is found by its number; an
/// entry without one, or whose number HEAD lists twice (malformed ledgers), by being equal, and
/// when several entries are equal, the k-th equal one in the working tree is the k-th in HEAD.
fn insertion_index(list: &[Value], wt_list: &[Value], w: usize, head_at: Option<usize>) -> usize {
    // Equal as printed: the working tree was printed by us, HEAD maybe not (`0E+20` reads as a
    // float, its printed `0` as an integer, and serde_json's values then differ).
    let same = |a: &Value, b: &Value| a == b || json::to_jq_compact(a) == json::to_jq_compact(b);
    let nth_equal = |j: usize| {
        let entry = &wt_list[j];
        let k = wt_list[..j].iter().filter(|e| same(e, entry)).count();
        let equal: Vec<usize> = list.iter().enumerate().filter(|(_, e)| same(e, entry)).map(|(i, _)| i).collect();
        equal.get(k).or(equal.last()).copied()
    };
    let find = |j: usize| {
        let Some(n) = entry_number(&wt_list[j]) else { return nth_equal(j) };
        let mut hits = list.iter().enumerate().filter(|(_, e)| entry_number(e) == Some(n)).map(|(i, _)| i);
        let first = hits.next()?;
        match hits.next() {
            None => Some(first),
            Some(_) => nth_equal(j).or(Some(first)),
        }
    };
    if let Some(p) = (0..w).rev().find_map(find) {
        return p + 1;
    }
    if let Some(p) = (w + 1..wt_list.len()).find_map(find) {
        return p;
    }
    head_at.unwrap_or(0).min(list.len())
}

/// Raises the top-level `next_project_number` to cover `task` (never beyond the working tree's
/// value, never below HEAD's).
fn raise_next_number(out: &mut Value, worktree: &Value, task: u32) {
    let wt_next = worktree.get("next_project_number").and_then(Value::as_u64);
    let mut target = u64::from(task) + 1;
    if let Some(w) = wt_next {
        target = target.min(w);
    }
    let Some(obj) = out.as_object_mut() else { return };
    match obj.get("next_project_number").map(Value::as_u64) {
        Some(Some(h)) => {
            if target > h {
                obj.insert("next_project_number".into(), Value::from(target));
            }
        }
        // A non-integer value at HEAD is not ours to touch.
        Some(None) => {}
        None => {
            if wt_next.is_some() {
                obj.insert("next_project_number".into(), Value::from(target));
            }
        }
    }
}

/// HEAD's TODO.md with only task `task`'s block from the working tree applied, by line edits:
/// every other line keeps HEAD's bytes. Returns `head` unchanged when the block did not change.
///
/// A block created since HEAD is inserted before the heading of its nearest following
/// working-tree neighbour that HEAD has (after the nearest preceding one otherwise, or directly
/// under `## Tasks` as `task new` does), together with its `---` separator, and the frontmatter
/// `next_project_number` is raised to at least `task + 1`. A block removed from the working tree
/// is removed with its separator.
///
/// # Errors
/// `NotUtf8`; `DuplicateTask` when either version has the task's heading twice.
pub fn scope_todo(path: &Path, head: &[u8], worktree: &[u8], task: u32) -> Result<Vec<u8>> {
    Ok(scope_todo_in(path, head, worktree, task)?.bytes(head, worktree).to_vec())
}

/// [`scope_todo`] without copies.
///
/// # Errors
/// As [`scope_todo`].
pub fn scope_todo_in(path: &Path, head: &[u8], worktree: &[u8], task: u32) -> Result<Scoped> {
    if head == worktree {
        return Ok(Scoped::Head);
    }
    let wt_file = TodoFile::parse(path, worktree)?;
    let wt_block = wt_file.block(task)?;
    if let Some(w) = &wt_block {
        let (start, end) = (wt_file.doc.offset(w.start), wt_file.doc.offset(w.end));
        if let Some(mid) = start.zip(end).and_then(|(s, e)| between(head, &worktree[..s], &worktree[e..])) {
            // HEAD is the working tree with other lines in the block's place: when they are the
            // task's own block, the working tree differs from HEAD only by the task's change.
            if is_block_of(mid, task, end == Some(worktree.len())) {
                return Ok(Scoped::Worktree);
            }
        }
    }
    let head_file = TodoFile::parse(path, head)?;
    let head_block = head_file.block(task)?;
    let head_text = head_file.to_text();
    let wt_text = wt_file.to_text();
    let head_lines: Vec<&str> = head_text.split_inclusive('\n').collect();
    let wt_lines: Vec<&str> = wt_text.split_inclusive('\n').collect();
    let eol = if head_lines.first().is_some_and(|l| l.ends_with("\r\n")) { "\r\n" } else { "\n" };

    let new_text = match (head_block, wt_block) {
        (None, None) => return Ok(Scoped::Head),
        (Some(h), Some(w)) => splice(&head_lines, h, &wt_lines[w], eol),
        (Some(h), None) => {
            let span = h.start..todo::span_end(&head_lines, h.end);
            splice(&head_lines, span, &[], eol)
        }
        (None, Some(w)) => {
            let inserted = insert_block(&head_file, &wt_file, &head_lines, &wt_lines, w, eol)?;
            let mut file = TodoFile::parse(path, inserted.as_bytes())?;
            if let Some((_, head_next)) = file.next_project_number() {
                let mut target = u64::from(task) + 1;
                if let Some((_, wt_next)) = wt_file.next_project_number() {
                    target = target.min(wt_next);
                }
                if target > head_next {
                    file.set_next_project_number(target);
                }
            }
            file.to_text()
        }
    };
    Ok(if new_text == head_text { Scoped::Head } else { Scoped::New(new_text.into_bytes()) })
}

/// Whether `text` is exactly one task block of `task`: its heading, then lines none of which
/// ends a block, ending with a line break unless it ends the file.
fn is_block_of(text: &[u8], task: u32, at_end: bool) -> bool {
    let Ok(text) = std::str::from_utf8(text) else { return false };
    if !(at_end || text.ends_with('\n')) {
        return false;
    }
    let mut lines = text.lines();
    lines.next().and_then(todo::heading_number) == Some(task) && !lines.any(todo::ends_block)
}

/// `lines` with `range` replaced by `new`, each line keeping its own terminator; a line that
/// ends up in the middle without one gets `eol`.
fn splice(lines: &[&str], range: Range<usize>, new: &[&str], eol: &str) -> String {
    let parts: Vec<&str> = lines[..range.start].iter().chain(new).chain(&lines[range.end..]).copied().collect();
    let mut out = String::with_capacity(parts.iter().map(|l| l.len() + 2).sum());
    for (i, line) in parts.iter().enumerate() {
        out.push_str(line);
        if i + 1 < parts.len() && !line.ends_with('\n') {
            out.push_str(eol);
        }
    }
    out
}

/// Inserts the working tree's block `w` (with its separator) into HEAD's lines.
fn insert_block(
    head_file: &TodoFile,
    wt_file: &TodoFile,
    head_lines: &[&str],
    wt_lines: &[&str],
    w: Range<usize>,
    eol: &str,
) -> Result<String> {
    let span = &wt_lines[w.start..todo::span_end(wt_lines, w.end)];
    let wt_headings = wt_file.headings();
    let head_headings = head_file.headings();
    let head_has = |n: u32| head_headings.iter().any(|(_, m)| *m == n);
    let Some(me) = wt_headings.iter().position(|(line, _)| *line == w.start) else {
        return Err(Error::format(&wt_file.path, Some(w.start + 1), "a task block does not start at its heading"));
    };
    // Before the nearest following neighbour HEAD has: the span carries its own separator.
    for (_, n) in &wt_headings[me + 1..] {
        if head_has(*n) {
            if let Some(b) = head_file.block(*n)? {
                return Ok(splice(head_lines, b.start..b.start, span, eol));
            }
        }
    }
    // After the nearest preceding neighbour HEAD has.
    for (_, n) in wt_headings[..me].iter().rev() {
        if head_has(*n) {
            if let Some(b) = head_file.block(*n)? {
                let at = todo::span_end(head_lines, b.end);
                return Ok(splice(head_lines, at..at, span, eol));
            }
        }
    }
    // No neighbour in HEAD: insert under `## Tasks` exactly as `task new` does.
    let mut entry: Vec<String> = wt_lines[w].iter().map(|l| l.trim_end_matches(['\n', '\r']).to_owned()).collect();
    while entry.last().is_some_and(|l| l.trim().is_empty()) {
        entry.pop();
    }
    let mut file = head_file.clone();
    file.insert_task(&entry);
    Ok(file.to_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD_STATE: &str = r#"{
  "active_projects": [
    {
      "project_number": 12,
      "project_name": "twelve",
      "status": "planned"
    },
    {
      "project_number": 11,
      "project_name": "eleven",
      "status": "researched"
    }
  ],
  "next_project_number": 13,
  "metadata": {
    "last_sync": "a"
  }
}
"#;

    fn p() -> &'static Path {
        Path::new("specs/state.json")
    }

    fn doc(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("json")
    }

    /// The working tree: 12 implementing, 11 completed, 13 and 14 created, metadata changed.
    fn wt_state() -> String {
        let mut v = doc(HEAD_STATE.as_bytes());
        v["active_projects"][0]["status"] = "implementing".into();
        v["active_projects"][1]["status"] = "completed".into();
        let list = v["active_projects"].as_array_mut().expect("array");
        list.insert(0, serde_json::json!({"project_number": 13, "project_name": "thirteen", "status": "not_started"}));
        list.insert(0, serde_json::json!({"project_number": 14, "project_name": "fourteen", "status": "not_started"}));
        v["next_project_number"] = 15.into();
        v["metadata"]["last_sync"] = "b".into();
        String::from_utf8(json::to_jq_pretty(&v)).expect("utf8")
    }

    fn statuses(v: &Value) -> Vec<(u64, String)> {
        v["active_projects"]
            .as_array()
            .expect("array")
            .iter()
            .map(|e| (e["project_number"].as_u64().expect("n"), e["status"].as_str().expect("s").to_owned()))
            .collect()
    }

    #[test]
    fn state_takes_only_the_tasks_entry() {
        let wt = wt_state();
        let out = scope_state(p(), HEAD_STATE.as_bytes(), wt.as_bytes(), 11).expect("scope");
        let v = doc(&out);
        assert_eq!(statuses(&v), [(12, "planned".into()), (11, "completed".into())]);
        assert_eq!(v["next_project_number"], 13);
        assert_eq!(v["metadata"]["last_sync"], "a");
        // jq-identical output: only the status line differs from HEAD.
        let out = String::from_utf8(out).expect("utf8");
        let changed: Vec<_> = HEAD_STATE.lines().zip(out.lines()).filter(|(a, b)| a != b).collect();
        assert_eq!(changed, [("      \"status\": \"researched\"", "      \"status\": \"completed\"")]);
    }

    /// Found by `cargo fuzz run state_edit`: a preceding neighbour without a number was skipped,
    /// and one whose number HEAD lists twice was found at the other copy, so the commit moved the
    /// task's entry.
    #[test]
    fn state_entry_keeps_its_place_after_an_entry_without_a_number() {
        let mut v = doc(HEAD_STATE.as_bytes());
        v["active_projects"].as_array_mut().expect("array").insert(1, serde_json::json!({"projekt": 99}));
        let head = json::to_jq_pretty(&v);
        v["active_projects"][2]["status"] = "completed".into();
        let wt = json::to_jq_pretty(&v);
        assert_eq!(scope_state(p(), &head, &wt, 11).expect("scope"), wt);
        // A neighbour that reads differently once printed (`0E+20` is a float, `0` an integer).
        let head = br#"{"active_projects": [{"project_number": 11, "status": "a"}, 0E+20, 1.5e300]}"#;
        let wt = b"{\n  \"active_projects\": [\n    {\n      \"project_number\": 11,\n      \"status\": \"b\"\n    },\n    0,\n    1.5e+300\n  ]\n}\n";
        assert_eq!(scope_state(p(), head, wt, 11).expect("scope"), wt);
        // The same with a neighbour whose number HEAD lists twice.
        let mut v = doc(HEAD_STATE.as_bytes());
        let list = v["active_projects"].as_array_mut().expect("array");
        list.insert(0, serde_json::json!({"project_number": 12, "project_name": "twelve again"}));
        let head = json::to_jq_pretty(&v);
        v["active_projects"][2]["status"] = "completed".into();
        let wt = json::to_jq_pretty(&v);
        assert_eq!(scope_state(p(), &head, &wt, 11).expect("scope"), wt);
    }

    /// Found by `cargo fuzz run state_edit`: with entries that have no number and repeat, the
    /// neighbour was found at its first equal copy, so the task's entry moved up the list.
    #[test]
    fn state_entry_keeps_its_place_among_repeated_entries_without_numbers() {
        let head = br#"{"active_projects": [{"a": 1}, {}, {"b": 2}, {}, {"b": 2}, {"project_number": 40, "status": "x"}], "y": []}"#;
        let mut v = doc(head);
        v["active_projects"][5]["status"] = "implementing".into();
        let wt = json::to_jq_pretty(&v);
        let out = scope_state(p(), head, &wt, 40).expect("scope");
        assert_eq!(out, wt);
    }

    #[test]
    fn state_new_task_is_prepended_and_bumps_next_number_only_to_itself() {
        let wt = wt_state();
        let out = scope_state(p(), HEAD_STATE.as_bytes(), wt.as_bytes(), 13).expect("scope");
        let v = doc(&out);
        assert_eq!(statuses(&v), [(13, "not_started".into()), (12, "planned".into()), (11, "researched".into())]);
        assert_eq!(v["next_project_number"], 14);
        // Then 14 on top of that: prepended before 13, next number 15, as `task new` twice would give.
        let out = scope_state(p(), &out, wt.as_bytes(), 14).expect("scope");
        let v = doc(&out);
        assert_eq!(statuses(&v)[..2], [(14, "not_started".into()), (13, "not_started".into())]);
        assert_eq!(v["next_project_number"], 15);
    }

    #[test]
    fn state_without_change_returns_head_bytes_and_removal_is_applied() {
        let odd_head = HEAD_STATE.replace("\"status\": \"planned\"", "\"status\":\"planned\"");
        let wt = wt_state();
        // Task 99 is in neither file: HEAD's bytes, even though HEAD is not jq-formatted.
        assert_eq!(scope_state(p(), odd_head.as_bytes(), wt.as_bytes(), 99).expect("scope"), odd_head.as_bytes());
        let mut removed = doc(HEAD_STATE.as_bytes());
        removed["active_projects"].as_array_mut().expect("array").remove(1);
        let removed = json::to_jq_pretty(&removed);
        let out = scope_state(p(), HEAD_STATE.as_bytes(), &removed, 11).expect("scope");
        assert_eq!(out, removed);
        assert_eq!(scope_state(p(), HEAD_STATE.as_bytes(), &removed, 12).expect("scope"), HEAD_STATE.as_bytes());
    }

    #[test]
    fn state_refuses_duplicates_and_bad_json() {
        let dup = HEAD_STATE.replace("\"project_number\": 11", "\"project_number\": 12");
        assert!(matches!(
            scope_state(p(), HEAD_STATE.as_bytes(), dup.as_bytes(), 12),
            Err(Error::DuplicateTask { .. })
        ));
        assert!(matches!(scope_state(p(), HEAD_STATE.as_bytes(), b"{", 12), Err(Error::Json { .. })));
    }

    /// When the working tree differs from HEAD only inside the task's entry, the working tree's
    /// bytes are the answer without parsing HEAD; a change next to the entry is not mistaken
    /// for part of it.
    #[test]
    fn state_shortcut_only_when_everything_else_is_identical() {
        let mut v = doc(HEAD_STATE.as_bytes());
        v["active_projects"][0]["status"] = "implementing".into();
        v["active_projects"][0]["started"] = "2026-01-01".into();
        let wt = json::to_jq_pretty(&v);
        assert_eq!(scope_state_in(p(), HEAD_STATE.as_bytes(), &wt, 12).expect("scope"), Scoped::Worktree);
        assert_eq!(scope_state_in(p(), HEAD_STATE.as_bytes(), HEAD_STATE.as_bytes(), 12).expect("scope"), Scoped::Head);
        // Task 11 (the neighbour) removed in the working tree as well: HEAD's tail then differs
        // from the working tree's by the whole of 11, which must stay as HEAD has it.
        v["active_projects"].as_array_mut().expect("array").remove(1);
        let wt = json::to_jq_pretty(&v);
        let out = scope_state(p(), HEAD_STATE.as_bytes(), &wt, 12).expect("scope");
        assert_eq!(statuses(&doc(&out)), [(12, "implementing".into()), (11, "researched".into())]);
        // The same with the neighbour before the entry.
        let mut v = doc(HEAD_STATE.as_bytes());
        v["active_projects"][1]["status"] = "completed".into();
        v["active_projects"].as_array_mut().expect("array").remove(0);
        let wt = json::to_jq_pretty(&v);
        let out = scope_state(p(), HEAD_STATE.as_bytes(), &wt, 11).expect("scope");
        assert_eq!(statuses(&doc(&out)), [(12, "planned".into()), (11, "completed".into())]);
    }

    #[test]
    fn state_hints_are_checked_before_they_are_used() {
        let mut v = doc(HEAD_STATE.as_bytes());
        v["active_projects"][1]["status"] = "completed".into();
        let wt = json::to_jq_pretty(&v);
        let text = String::from_utf8(wt.clone()).expect("utf8");
        let start = text.find("    {\n      \"project_number\": 11").expect("11") + 4;
        let end = start + text[start..].find("\n    }").expect("end") + 6;
        let other = (text.find('{').expect("{") + 1, start);
        for hint in [Some((start, end)), Some(other), Some((end, start)), Some((0, wt.len() + 5)), None] {
            assert_eq!(scope_state_hinted(p(), HEAD_STATE.as_bytes(), &wt, 11, hint).expect("scope"), Scoped::Worktree);
        }
        // A working tree with another task's edit too: no hint makes it the whole file.
        v["active_projects"][0]["status"] = "abandoned".into();
        let both = json::to_jq_pretty(&v);
        let out = scope_state_hinted(p(), HEAD_STATE.as_bytes(), &both, 11, Some((start, end))).expect("scope");
        assert_eq!(
            statuses(&doc(out.bytes(HEAD_STATE.as_bytes(), &both))),
            [(12, "planned".into()), (11, "completed".into())]
        );
    }

    #[test]
    fn todo_shortcut_only_when_everything_else_is_identical() {
        let wt = HEAD_TODO.replace("[PLANNED]", "[IMPLEMENTING]");
        let scoped = scope_todo_in(Path::new("TODO.md"), HEAD_TODO.as_bytes(), wt.as_bytes(), 12).expect("scope");
        assert_eq!(scoped, Scoped::Worktree);
        // Block 11 removed next to 12's change: 11 stays.
        let start = HEAD_TODO.find("### 11.").expect("11");
        let end = HEAD_TODO.find("## Done").expect("done");
        let wt = format!("{}{}", &wt[..wt.find("### 11.").expect("11")], &HEAD_TODO[end..]);
        let out = todo(HEAD_TODO, &wt, 12);
        assert!(out.contains(&HEAD_TODO[start..end]), "{out}");
        assert!(out.contains("[IMPLEMENTING]"), "{out}");
        // Block 12 gone and 11 changed: 12 stays.
        let wt = HEAD_TODO.replace("### 12. Twelve\n- **Status**: [PLANNED]\n\n---\n\n", "").replace("(note)", "(new)");
        let out = todo(HEAD_TODO, &wt, 11);
        assert_eq!(out, HEAD_TODO.replace("(note)", "(new)"));
    }

    const HEAD_TODO: &str = "---\nnext_project_number: 13\ntask_counts:\n  active: 2\n---\n\n# TODO\n\n## Tasks\n\n\
### 12. Twelve\n- **Status**: [PLANNED]\n\n---\n\n\
### 11. Eleven\n **Status**: [RESEARCHED] (note)\n- **Language**: meta\n\n**Description**: x\n\n---\n\n## Done\n";

    fn wt_todo() -> String {
        let mut t = TodoFile::parse(Path::new("TODO.md"), HEAD_TODO.as_bytes()).expect("parse");
        t.set_status(12, &crate::ledger::status::Status::Implementing).expect("set");
        t.set_bullet(11, "Summary", "[s.md](specs/11_eleven/summaries/s.md)").expect("set");
        t.insert_task(&["### 13. Thirteen".into(), "- **Status**: [NOT STARTED]".into()]);
        t.set_next_project_number(14);
        t.insert_task(&["### 14. Fourteen".into(), "- **Status**: [NOT STARTED]".into()]);
        t.set_next_project_number(15);
        // An edit outside any block (not a task's change).
        let text = t.to_text().replace("task_counts:\n  active: 2", "task_counts:\n  active: 4");
        text.replace("## Done\n", "## Done\n- something else\n")
    }

    fn todo(head: &str, wt: &str, n: u32) -> String {
        String::from_utf8(scope_todo(Path::new("TODO.md"), head.as_bytes(), wt.as_bytes(), n).expect("scope"))
            .expect("utf8")
    }

    #[test]
    fn todo_replaces_only_the_tasks_block() {
        let wt = wt_todo();
        let out = todo(HEAD_TODO, &wt, 11);
        assert_eq!(
            out,
            HEAD_TODO.replace(
                "- **Language**: meta\n\n",
                "- **Language**: meta\n- **Summary**: [s.md](specs/11_eleven/summaries/s.md)\n\n"
            )
        );
        let out = todo(HEAD_TODO, &wt, 12);
        assert_eq!(out, HEAD_TODO.replace("[PLANNED]", "[IMPLEMENTING]"));
        assert_eq!(todo(HEAD_TODO, &wt, 99), HEAD_TODO);
    }

    #[test]
    fn todo_new_blocks_land_where_task_new_puts_them() {
        let wt = wt_todo();
        let out13 = todo(HEAD_TODO, &wt, 13);
        let mut expected = TodoFile::parse(Path::new("TODO.md"), HEAD_TODO.as_bytes()).expect("parse");
        expected.insert_task(&["### 13. Thirteen".into(), "- **Status**: [NOT STARTED]".into()]);
        expected.set_next_project_number(14);
        assert_eq!(out13, expected.to_text());
        // 14 on top: before 13, next number 15; then every remaining task gives the working tree
        // except the lines outside task blocks.
        let mut acc = todo(&out13, &wt, 14);
        assert!(acc.contains("next_project_number: 15\n"));
        for n in [12, 11] {
            acc = todo(&acc, &wt, n);
        }
        let outside = wt
            .replace("task_counts:\n  active: 4", "task_counts:\n  active: 2")
            .replace("## Done\n- something else\n", "## Done\n");
        assert_eq!(acc, outside);
    }

    #[test]
    fn todo_removed_block_goes_with_its_separator_and_crlf_survives() {
        let wt = HEAD_TODO.replace("### 12. Twelve\n- **Status**: [PLANNED]\n\n---\n\n", "");
        assert_eq!(todo(HEAD_TODO, &wt, 12), wt);
        let head_crlf = HEAD_TODO.replace('\n', "\r\n");
        let wt_crlf = head_crlf.replace("[PLANNED]", "[COMPLETED]");
        assert_eq!(todo(&head_crlf, &wt_crlf, 12), wt_crlf);
    }

    #[test]
    fn todo_first_task_goes_under_tasks_heading() {
        let head = "---\nnext_project_number: 1\n---\n\n# TODO\n\n## Tasks\n";
        let mut t = TodoFile::parse(Path::new("TODO.md"), head.as_bytes()).expect("parse");
        t.insert_task(&["### 1. One".into(), "- **Status**: [NOT STARTED]".into()]);
        t.set_next_project_number(2);
        let wt = t.to_text();
        assert_eq!(todo(head, &wt, 1), wt);
    }

    /// The fixture corpus's state.json and TODO.md versions, ordered by commit date.
    fn fixture_versions(kind: &str) -> Option<Vec<(String, Vec<u8>)>> {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/proofchecker"));
        if !root.is_dir() {
            assert!(
                std::env::var("POSTFLIGHT_REQUIRE_ALL").as_deref() != Ok("1"),
                "POSTFLIGHT_REQUIRE_ALL=1 and ../shared/fixtures is missing: the real-data scope tests could not run"
            );
            #[allow(clippy::print_stderr)]
            {
                eprintln!("SKIPPED: ../shared/fixtures not found; real-data scope tests did not run");
            }
            return None;
        }
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(root.join("manifest.json")).expect("manifest")).expect("json");
        let mut files: Vec<(String, String)> = manifest["files"]
            .as_array()
            .expect("files")
            .iter()
            .filter(|f| f["file"].as_str().is_some_and(|p| p.starts_with(kind)))
            .map(|f| (f["date"].as_str().expect("date").to_owned(), f["file"].as_str().expect("file").to_owned()))
            .collect();
        files.sort_by_key(|(date, _)| jiff::Timestamp::from_str(date).expect("date"));
        Some(files.into_iter().map(|(_, f)| (f.clone(), std::fs::read(root.join(&f)).expect("read"))).collect())
    }

    use std::str::FromStr;

    fn entries_by_number(v: &Value) -> Vec<(u32, Value)> {
        v["active_projects"]
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|e| Some((entry_number(e)?, e.clone())))
            .collect()
    }

    #[test]
    fn real_state_versions_scope_one_task_at_a_time() {
        let Some(versions) = fixture_versions("states/") else { return };
        let (mut pairs_checked, mut composed) = (0, 0);
        for pair in versions.windows(2) {
            let ((_, head), (name, wt)) = (&pair[0], &pair[1]);
            let (hv, wv) = (doc(head), doc(wt));
            let (he, we) = (entries_by_number(&hv), entries_by_number(&wv));
            let count = |list: &[(u32, Value)], n: u32| list.iter().filter(|(m, _)| *m == n).count();
            let mut changed: Vec<u32> = we
                .iter()
                .filter(|(n, e)| he.iter().find(|(m, _)| m == n).map(|(_, h)| h != e).unwrap_or(true))
                .map(|(n, _)| *n)
                .chain(he.iter().filter(|(n, _)| count(&we, *n) == 0).map(|(n, _)| *n))
                .filter(|n| count(&he, *n) <= 1 && count(&we, *n) <= 1)
                .collect();
            changed.sort_unstable();
            changed.dedup();
            if changed.len() > 12 {
                // Far-apart versions: check a sample of tasks, skip the composition.
                changed.truncate(6);
            }
            let mut acc = head.clone();
            for &n in &changed {
                let one = doc(&scope_state(p(), head, wt, n).expect(name));
                // Task n as in the working tree, every other task as at HEAD.
                for (m, e) in entries_by_number(&one) {
                    let want = if m == n { &we } else { &he };
                    assert!(want.iter().any(|(k, w)| *k == m && *w == e), "{name}: task {m} when scoping {n}");
                }
                assert_eq!(entries_by_number(&one).iter().any(|(m, _)| *m == n), count(&we, n) == 1, "{name}: {n}");
                acc = scope_state(p(), &acc, wt, n).expect(name);
            }
            // Scoping every changed task in turn gives the working tree's task list.
            let unique = |list: &[(u32, Value)]| list.iter().all(|(n, _)| count(list, *n) == 1);
            if changed.len() < 6 && unique(&he) && unique(&we) {
                assert_eq!(entries_by_number(&doc(&acc)), we, "{name}: after scoping {changed:?}");
                composed += 1;
            }
            pairs_checked += 1;
        }
        assert!(pairs_checked >= 30 && composed >= 5, "{pairs_checked} pairs, {composed} composed");
    }

    #[test]
    fn real_todo_versions_scope_one_block_at_a_time() {
        let Some(versions) = fixture_versions("todos/") else { return };
        let path = Path::new("TODO.md");
        // Every task's block text (None for a duplicated heading).
        let blocks = |t: &TodoFile| -> std::collections::BTreeMap<u32, Option<String>> {
            let heads = t.headings();
            heads
                .iter()
                .map(|(line, n)| {
                    let dup = heads.iter().filter(|(_, m)| m == n).count() > 1;
                    let text = (!dup).then(|| {
                        let end = t.block(*n).expect("unique").expect("present").end;
                        (*line..end).map(|i| t.doc.line(i)).collect::<Vec<_>>().join("\n")
                    });
                    (*n, text)
                })
                .collect()
        };
        let mut blocks_checked = 0;
        for pair in versions.windows(2) {
            let ((_, head), (name, wt)) = (&pair[0], &pair[1]);
            let (hb, wb) =
                (blocks(&TodoFile::parse(path, head).expect("head")), blocks(&TodoFile::parse(path, wt).expect("wt")));
            let numbers: std::collections::BTreeSet<u32> = hb.keys().chain(wb.keys()).copied().collect();
            let mut checked_here = 0;
            for &n in &numbers {
                let (h, w) = (hb.get(&n), wb.get(&n));
                if h.is_some_and(Option::is_none) || w.is_some_and(Option::is_none) {
                    // A duplicated heading is refused, never guessed at.
                    assert!(matches!(scope_todo(path, head, wt, n), Err(Error::DuplicateTask { .. })), "{name}: {n}");
                    continue;
                }
                if h == w || checked_here == 8 {
                    continue;
                }
                let out = blocks(&TodoFile::parse(path, &scope_todo(path, head, wt, n).expect(name)).expect("parse"));
                assert_eq!(out.get(&n), w, "{name}: task {n}");
                for (m, text) in hb.iter().filter(|(m, _)| **m != n) {
                    assert_eq!(out.get(m), Some(text), "{name}: task {m} when scoping {n}");
                }
                assert_eq!(out.len(), hb.len() + usize::from(h.is_none()) - usize::from(w.is_none()), "{name}: {n}");
                checked_here += 1;
                blocks_checked += 1;
            }
        }
        assert!(blocks_checked >= 50, "{blocks_checked}");
    }

    #[test]
    fn real_leak_of_17e74a95d_is_not_repeated() {
        // Commit 17e74a95d ("task 979: ...") carried task 980's move to implementing.
        let Some(versions) = fixture_versions("states/") else { return };
        let get = |f: &str| versions.iter().find(|(n, _)| n == f).map(|(_, b)| b.clone()).expect(f);
        let (head, wt) = (get("states/56b211fae.json"), get("states/17e74a95d.json"));
        let scoped = doc(&scope_state(p(), &head, &wt, 979).expect("scope"));
        let task = |v: &Value, n: u64| {
            v["active_projects"].as_array().expect("array").iter().find(|e| e["project_number"] == n).cloned()
        };
        assert_eq!(task(&scoped, 980), task(&doc(&head), 980));
        assert_eq!(task(&scoped, 979), task(&doc(&wt), 979));
        assert_eq!(task(&scoped, 980).expect("980")["status"], "planned");
    }
}
