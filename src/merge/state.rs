//! The three-way merge of `specs/state.json`: entries keyed by `project_number`, merged field by
//! field. A field changed on one side takes that side; changed the same way on both, either;
//! changed differently on both, a conflict, except `last_updated` (the later time) and
//! `artifacts` (both sides' additions kept, both sides' removals applied). `next_project_number`
//! is the larger. Printed as `jq .` prints it.

use std::path::Path;

use serde_json::{Map, Value};

use super::{Conflict, Outcome};
use crate::error::{Error, Result};
use crate::ledger::json;
use crate::ledger::state::entry_number;

/// The key of the task list.
const PROJECTS: &str = "active_projects";

/// One side's document: the top-level object without the task list, and the entries by number
/// in file order.
struct Side {
    top: Map<String, Value>,
    entries: Vec<(u32, Map<String, Value>)>,
}

impl Side {
    fn get(&self, n: u32) -> Option<&Map<String, Value>> {
        self.entries.iter().find(|(m, _)| *m == n).map(|(_, e)| e)
    }
}

/// Merges `base`, `ours` and `theirs` (the bytes of `%O`, `%A`, `%B`). An empty `base` (no
/// common ancestor) merges as a ledger without tasks.
///
/// # Errors
/// A side that is not a state.json (invalid JSON, no `active_projects` array, an entry without
/// an integer `project_number`, a number twice): the driver reports it and leaves a text merge.
pub fn merge(path: &Path, base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<Outcome> {
    let o = if base.iter().all(u8::is_ascii_whitespace) {
        Side { top: Map::new(), entries: Vec::new() }
    } else {
        side(path, "base", base)?
    };
    let a = side(path, "ours", ours)?;
    let b = side(path, "theirs", theirs)?;
    let mut conflicts = Vec::new();

    // The top level (every key but the task list) merges as one more object.
    let mut top = merge_object(None, &o.top, &a.top, &b.top, &mut conflicts);
    if let (Some(x), Some(y)) = (a.top.get("next_project_number"), b.top.get("next_project_number")) {
        if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
            top.insert("next_project_number".into(), Value::from(x.max(y)));
        }
    }
    let projects = merge_entries(&o, &a, &b, &mut conflicts);
    // The task list's key holds a placeholder in every side's top level, so it keeps its place.
    match top.get_mut(PROJECTS) {
        Some(slot) => *slot = Value::Array(projects),
        None => {
            top.insert(PROJECTS.into(), Value::Array(projects));
        }
    }
    Ok(Outcome { bytes: json::to_jq_pretty(&Value::Object(top)), conflicts })
}

fn side(path: &Path, which: &str, bytes: &[u8]) -> Result<Side> {
    let label = format!("{} ({which})", path.display());
    let doc = json::parse(Path::new(&label), bytes)?;
    let Value::Object(mut top) = doc else {
        return Err(Error::format(&label, None, "the top level is not a JSON object"));
    };
    let list = match top.get_mut(PROJECTS) {
        Some(Value::Array(list)) => std::mem::take(list),
        _ => return Err(Error::format(&label, None, "no `active_projects` array")),
    };
    // The list's key stays in `top` (as null) so that its position is known; removed from
    // the merged top level below.
    top.insert(PROJECTS.into(), Value::Null);
    let mut entries: Vec<(u32, Map<String, Value>)> = Vec::with_capacity(list.len());
    for entry in list {
        let Some(n) = entry_number(&entry) else {
            return Err(Error::format(&label, None, "an `active_projects` entry has no integer `project_number`"));
        };
        let Value::Object(map) = entry else {
            return Err(Error::format(&label, None, format!("task {n}'s entry is not an object")));
        };
        entries.push((n, map));
    }
    let mut seen: Vec<u32> = entries.iter().map(|(n, _)| *n).collect();
    seen.sort_unstable();
    if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::format(
            &label,
            None,
            format!("task {} appears more than once; remove or renumber the duplicate first", w[0]),
        ));
    }
    Ok(Side { top, entries })
}

/// The merged task list: ours in its order, then each entry only theirs has placed after its
/// nearest predecessor in theirs (new tasks at the front, newest first, as `task new` puts them).
fn merge_entries(o: &Side, a: &Side, b: &Side, conflicts: &mut Vec<Conflict>) -> Vec<Value> {
    let mut out: Vec<(u32, Option<Map<String, Value>>)> = Vec::new();
    for (n, ae) in &a.entries {
        let merged = match (o.get(*n), b.get(*n)) {
            (Some(oe), Some(be)) => Some(merge_object(Some(*n), oe, ae, be, conflicts)),
            (Some(oe), None) => {
                if oe != ae {
                    conflicts.push(Conflict::new(Some(*n), "(entry)", "changed in ours, deleted in theirs".into()));
                }
                None
            }
            (None, Some(be)) => Some(merge_created(*n, ae, be, conflicts)),
            (None, None) => Some(ae.clone()),
        };
        out.push((*n, merged));
    }
    let new_in_ours = |n: u32| o.get(n).is_none();
    for (i, (n, be)) in b.entries.iter().enumerate() {
        if a.get(*n).is_some() {
            continue;
        }
        if let Some(oe) = o.get(*n) {
            // Deleted in ours.
            if oe != be {
                conflicts.push(Conflict::new(Some(*n), "(entry)", "deleted in ours, changed in theirs".into()));
            }
            continue;
        }
        let predecessor = b.entries[..i].iter().rev().find_map(|(m, _)| out.iter().position(|(k, _)| k == m));
        let mut at = predecessor.map_or(0, |p| p + 1);
        while at < out.len() && new_in_ours(out[at].0) && out[at].0 > *n {
            at += 1;
        }
        out.insert(at, (*n, Some(be.clone())));
    }
    out.into_iter().filter_map(|(_, e)| e.map(Value::Object)).collect()
}

/// Task `n` created on both sides: the same task (same `project_name`) merges field by field
/// with nothing as the base; two different tasks under one number are a conflict naming both.
fn merge_created(
    n: u32,
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    conflicts: &mut Vec<Conflict>,
) -> Map<String, Value> {
    let name = |e: &Map<String, Value>| e.get("project_name").map(short).unwrap_or_else(|| "(no name)".into());
    if a.get("project_name") != b.get("project_name") {
        conflicts.push(Conflict::new(
            Some(n),
            "project_number",
            format!(
                "created on both sides as different tasks: ours {}, theirs {}; renumber one with `xtask task renumber {n} <new number>` (after the merge, or on its branch before it)",
                name(a),
                name(b)
            ),
        ));
        return a.clone();
    }
    merge_object(Some(n), &Map::new(), a, b, conflicts)
}

/// Merges one object key by key (the entry of task `task`, or the top level when `None`).
fn merge_object(
    task: Option<u32>,
    o: &Map<String, Value>,
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    conflicts: &mut Vec<Conflict>,
) -> Map<String, Value> {
    if a == b || b == o {
        return a.clone();
    }
    if a == o {
        return b.clone();
    }
    let mut out = Map::new();
    let a_keys: Vec<String> = a.keys().cloned().collect();
    let b_keys: Vec<String> = b.keys().cloned().collect();
    let o_keys: Vec<String> = o.keys().cloned().collect();
    for key in key_order(&o_keys, &a_keys, &b_keys) {
        let (ov, av, bv) = (o.get(&key), a.get(&key), b.get(&key));
        let merged = if av == bv || bv == ov {
            av.cloned()
        } else if av == ov {
            bv.cloned()
        } else {
            match resolve(&key, ov, av, bv) {
                Some(v) => Some(v),
                None => {
                    conflicts.push(Conflict::new(task, &key, describe(ov, av, bv)));
                    av.cloned()
                }
            }
        };
        if let Some(v) = merged {
            out.insert(key, v);
        }
    }
    out
}

/// The rules for a field both sides changed differently; `None` when none decides.
fn resolve(key: &str, o: Option<&Value>, a: Option<&Value>, b: Option<&Value>) -> Option<Value> {
    match (key, a?, b?) {
        ("last_updated", Value::String(x), Value::String(y)) => Some(Value::String(later(x, y).to_owned())),
        ("next_project_number", Value::Number(x), Value::Number(y)) if x.is_u64() && y.is_u64() => {
            Some(Value::from(x.as_u64().max(y.as_u64()).unwrap_or(0)))
        }
        ("artifacts", Value::Array(x), Value::Array(y)) => {
            let empty = Vec::new();
            let base = match o {
                Some(Value::Array(list)) => list,
                None => &empty,
                Some(_) => return None,
            };
            Some(Value::Array(merge_list(base, x, y)))
        }
        _ => None,
    }
}

/// The later of two timestamps: compared as instants when both parse (RFC 3339, or a date),
/// else as text.
fn later<'s>(x: &'s str, y: &'s str) -> &'s str {
    let instant = |s: &str| -> Option<jiff::Timestamp> {
        s.parse::<jiff::Timestamp>().ok().or_else(|| {
            s.parse::<jiff::civil::Date>()
                .ok()
                .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                .map(|z| z.timestamp())
        })
    };
    match (instant(x), instant(y)) {
        (Some(a), Some(b)) if a != b => {
            if a > b {
                x
            } else {
                y
            }
        }
        _ => std::cmp::max(x, y),
    }
}

/// A three-way merge of a list used as a set: ours in order without what theirs removed, then
/// what theirs added that ours lacks.
fn merge_list(o: &[Value], a: &[Value], b: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = a.iter().filter(|x| !o.contains(x) || b.contains(x)).cloned().collect();
    for x in b {
        if !o.contains(x) && !a.contains(x) && !out.contains(x) {
            out.push(x.clone());
        }
    }
    out
}

/// The keys of the merged object: ours in order, each key only theirs has placed after its
/// nearest predecessor in theirs (at the front when it has none) and after the keys ours added
/// right there (so both sides' additions follow in the order ours, theirs, as jq's `+` would
/// append them).
pub(super) fn key_order(o: &[String], a: &[String], b: &[String]) -> Vec<String> {
    let mut out: Vec<String> = a.to_vec();
    for (i, key) in b.iter().enumerate() {
        if out.contains(key) {
            continue;
        }
        let mut at = b[..i].iter().rev().find_map(|p| out.iter().position(|k| k == p)).map_or(0, |p| p + 1);
        while at < out.len() && !o.contains(&out[at]) && !b.contains(&out[at]) {
            at += 1;
        }
        out.insert(at, key.clone());
    }
    out
}

/// A value for a report: compact JSON, cut at 60 characters.
fn short(v: &Value) -> String {
    let text = String::from_utf8_lossy(&json::to_jq_compact(v)).trim_end().to_owned();
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(57).collect::<String>())
    } else {
        text
    }
}

fn describe(o: Option<&Value>, a: Option<&Value>, b: Option<&Value>) -> String {
    let show = |v: Option<&Value>| v.map_or_else(|| "(absent)".to_owned(), short);
    format!("changed on both sides: ours {}, theirs {} (base {})", show(a), show(b), show(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(o: &str, a: &str, b: &str) -> Outcome {
        merge(Path::new("specs/state.json"), o.as_bytes(), a.as_bytes(), b.as_bytes()).expect("merge")
    }

    fn doc(entries: &[&str], next: u32) -> String {
        format!("{{\"active_projects\": [{}], \"next_project_number\": {next}}}", entries.join(","))
    }

    fn task(n: u32, name: &str, status: &str) -> String {
        format!("{{\"project_number\": {n}, \"project_name\": \"{name}\", \"status\": \"{status}\", \"last_updated\": \"2026-01-01T00:00:00Z\"}}")
    }

    fn numbers(out: &Outcome) -> Vec<u64> {
        let v: Value = serde_json::from_slice(&out.bytes).expect("json");
        v["active_projects"].as_array().expect("arr").iter().map(|e| e["project_number"].as_u64().expect("n")).collect()
    }

    #[test]
    fn appends_on_both_sides_keep_both_newest_first() {
        let o = doc(&[&task(1, "a", "planned")], 2);
        let a = doc(&[&task(2, "b", "not_started"), &task(1, "a", "planned")], 3);
        let b = doc(&[&task(3, "c", "not_started"), &task(1, "a", "planned")], 4);
        let out = run(&o, &a, &b);
        assert!(out.conflicts.is_empty(), "{:?}", out.conflicts);
        assert_eq!(numbers(&out), [3, 2, 1]);
        let swapped = run(&o, &b, &a);
        assert_eq!(numbers(&swapped), [3, 2, 1], "the order does not depend on the side");
        let v: Value = serde_json::from_slice(&out.bytes).expect("json");
        assert_eq!(v["next_project_number"], 4);
    }

    #[test]
    fn different_fields_merge_and_last_updated_takes_the_later() {
        let o = doc(&[&task(1, "a", "planned")], 2);
        let a = doc(
            &[
                r#"{"project_number": 1, "project_name": "a", "status": "implementing", "last_updated": "2026-01-02T00:00:00Z"}"#,
            ],
            2,
        );
        let b = doc(
            &[
                r#"{"project_number": 1, "project_name": "a", "status": "planned", "last_updated": "2026-01-03T00:00:00Z", "priority": "high"}"#,
            ],
            2,
        );
        let out = run(&o, &a, &b);
        assert!(out.conflicts.is_empty(), "{:?}", out.conflicts);
        let v: Value = serde_json::from_slice(&out.bytes).expect("json");
        let e = &v["active_projects"][0];
        assert_eq!(e["status"], "implementing");
        assert_eq!(e["priority"], "high");
        assert_eq!(e["last_updated"], "2026-01-03T00:00:00Z");
    }

    #[test]
    fn the_same_field_changed_differently_is_a_conflict_naming_task_and_field() {
        let o = doc(&[&task(7, "a", "planned")], 8);
        let a = doc(&[&task(7, "a", "completed")], 8);
        let b = doc(&[&task(7, "a", "blocked")], 8);
        let out = run(&o, &a, &b);
        assert_eq!(out.conflicts.len(), 1);
        let text = out.conflicts[0].to_string();
        assert!(text.contains("task 7") && text.contains("`status`") && text.contains("\"completed\""), "{text}");
    }

    #[test]
    fn two_tasks_under_one_number_are_a_conflict_naming_both() {
        let o = doc(&[], 5);
        let a = doc(&[&task(5, "ours_task", "not_started")], 6);
        let b = doc(&[&task(5, "theirs_task", "not_started")], 6);
        let out = run(&o, &a, &b);
        assert_eq!(out.conflicts.len(), 1);
        let text = out.conflicts[0].to_string();
        assert!(text.contains("ours_task") && text.contains("theirs_task") && text.contains("renumber"), "{text}");
    }

    #[test]
    fn artifacts_keep_both_additions_and_deletions_apply() {
        let o = doc(&[r#"{"project_number": 1, "artifacts": ["x", "y"]}"#], 2);
        let a = doc(&[r#"{"project_number": 1, "artifacts": ["x", "y", "a"]}"#], 2);
        let b = doc(&[r#"{"project_number": 1, "artifacts": ["y", "b"]}"#], 2);
        let out = run(&o, &a, &b);
        assert!(out.conflicts.is_empty());
        let v: Value = serde_json::from_slice(&out.bytes).expect("json");
        assert_eq!(v["active_projects"][0]["artifacts"], serde_json::json!(["y", "a", "b"]));
    }

    #[test]
    fn deletion_against_an_edit_is_a_conflict_and_a_clean_deletion_is_taken() {
        let o = doc(&[&task(2, "b", "planned"), &task(1, "a", "planned")], 3);
        let a = doc(&[&task(1, "a", "planned")], 3);
        let b = doc(&[&task(2, "b", "planned"), &task(1, "a", "completed")], 3);
        let out = run(&o, &a, &b);
        assert!(out.conflicts.is_empty());
        assert_eq!(numbers(&out), [1]);
        let b2 = doc(&[&task(2, "b", "completed"), &task(1, "a", "planned")], 3);
        assert_eq!(run(&o, &a, &b2).conflicts.len(), 1);
    }

    #[test]
    fn output_is_what_jq_prints_and_a_duplicate_is_refused() {
        let o = doc(&[&task(1, "a", "planned")], 2);
        let out = run(&o, &o, &doc(&[&task(1, "a", "planned")], 3));
        let v: Value = serde_json::from_slice(&out.bytes).expect("json");
        assert_eq!(out.bytes, json::to_jq_pretty(&v));
        let dup = doc(&[&task(1, "a", "planned"), &task(1, "a", "planned")], 2);
        assert!(merge(Path::new("s"), o.as_bytes(), dup.as_bytes(), o.as_bytes()).is_err());
        assert!(merge(Path::new("s"), o.as_bytes(), b"{", o.as_bytes()).is_err());
    }

    #[test]
    fn key_order_places_new_keys_after_their_predecessor() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(key_order(&s(&["a", "c"]), &s(&["a", "c"]), &s(&["a", "b", "c", "d"])), s(&["a", "b", "c", "d"]));
        assert_eq!(key_order(&s(&["b"]), &s(&["b"]), &s(&["z", "b"])), s(&["z", "b"]));
        // Both added a key at the end: ours' first, then theirs'.
        assert_eq!(key_order(&s(&["a"]), &s(&["a", "x"]), &s(&["a", "y"])), s(&["a", "x", "y"]));
    }
}
