//! The state.json loaders agree, and edits change only their own entry. On any bytes (no
//! pre-filter): the sparse load every ledger update uses (`StateFile::parse_sparse`) and the
//! check's view (`StateView::parse`) accept exactly what `StateFile::parse` accepts, with the
//! same error, and nothing a sparse load accepted fails or panics later (every task, entry,
//! the document, the printed bytes). On an accepted file, merging fields into a random task
//! leaves every other entry and top-level key as it was (or reports an error and changes
//! nothing); a sparse load makes the same edit (byte for byte on a jq-printed file); the
//! jq-style printing is stable; and a task's commit share (`scope_state`) of a state.json
//! edited for two tasks is exactly its own edit.
//!
//! Input: a selector byte for the task, then the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use postflight::guard::state_view::StateView;
use postflight::ledger::json::to_jq_pretty;
use postflight::ledger::scope::scope_state;
use postflight::ledger::state::{entry_number, StateFile};
use serde_json::{Map, Value};

const PATH: &str = "specs/state.json";

fn fields(status: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("status".into(), Value::from(status));
    m.insert("last_updated".into(), Value::from("2026-03-16T21:11:23Z"));
    m
}

/// The document without task n's entries.
fn others(doc: &Value, n: u32) -> Value {
    let mut doc = doc.clone();
    if let Some(list) = doc.get_mut("active_projects").and_then(Value::as_array_mut) {
        list.retain(|e| entry_number(e) != Some(n));
    }
    doc
}

fuzz_target!(|data: &[u8]| {
    let [task_sel, text @ ..] = data else { return };
    let full = StateFile::parse(Path::new(PATH), text.to_vec());
    let loaded = StateFile::parse_sparse(Path::new(PATH), text.to_vec());
    let view = StateView::parse(text);
    let head = match (full, loaded) {
        (Ok(head), Ok(loaded)) => {
            assert!(view.is_some(), "the check's view refuses what StateFile::parse accepts");
            // Nothing a sparse load accepted fails later.
            let doc = loaded.doc().expect("the document of an accepted file");
            assert_eq!(doc, head.doc().expect("parsed"), "both loads read the same document");
            let mut fresh = StateFile::parse_sparse(Path::new(PATH), text.to_vec()).expect("accepted above");
            for t in &head.tasks().expect("tasks") {
                let n = t.number;
                assert_eq!(fresh.index_of(n).ok(), head.index_of(n).ok(), "task {n} is found alike");
                if fresh.index_of(n).is_ok() {
                    assert_eq!(fresh.task(n).expect("task"), head.task(n).expect("task"));
                    assert_eq!(fresh.entry(n).expect("entry"), head.entry(n).expect("entry"));
                    fresh.entry_mut(n).expect("entry").insert("z".into(), Value::from(1));
                }
            }
            fresh.to_bytes().expect("an accepted file prints");
            assert_eq!(fresh.tasks().expect("tasks").len(), head.tasks().expect("tasks").len());
            assert_eq!(loaded.max_number().expect("max"), head.max_number().expect("max"));
            head
        }
        (Err(full), Err(sparse)) => {
            assert!(view.is_none(), "the check's view accepts what StateFile::parse refuses: {full}");
            assert_eq!(sparse.to_string(), full.to_string(), "the same error");
            return;
        }
        (Ok(_), Err(e)) => panic!("the sparse load refuses what StateFile::parse accepts: {e}"),
        (Err(e), Ok(_)) => panic!("the sparse load accepts what StateFile::parse refuses: {e}"),
    };
    // Printing is a fixed point: print, parse, print again gives the same bytes.
    let printed = head.to_bytes().expect("print");
    let reparsed = StateFile::parse(Path::new(PATH), printed.clone()).expect("printed state.json parses");
    assert_eq!(reparsed.to_bytes().expect("print"), printed, "jq printing is stable");
    // The one-pass check says "printed by jq" exactly when printing gives the file back.
    assert_eq!(postflight::ledger::json::jq_printed_entries(text).is_some(), printed == text);
    assert!(postflight::ledger::json::jq_printed_entries(&printed).is_some(), "a printed file passes the check");

    let numbers: Vec<u32> = head.entries().expect("entries").iter().filter_map(entry_number).collect();
    let n = numbers.get(usize::from(*task_sel) % (numbers.len() + 1)).copied().unwrap_or(u32::from(*task_sel));
    let mut mine = head.clone();
    match mine.merge(n, fields("implementing")) {
        Ok(()) => {
            assert_eq!(numbers.iter().filter(|m| **m == n).count(), 1);
            assert_eq!(
                to_jq_pretty(&others(mine.doc().expect("doc"), n)),
                to_jq_pretty(&others(head.doc().expect("doc"), n)),
                "only task {n}'s entry changed"
            );
            assert_eq!(mine.entry(n).expect("entry")["status"], "implementing");
            assert_eq!(mine.index_of(n).ok(), head.index_of(n).ok(), "the entry kept its place");
        }
        Err(_) => {
            assert_ne!(numbers.iter().filter(|m| **m == n).count(), 1, "a unique task merges");
            assert_eq!(to_jq_pretty(mine.doc().expect("doc")), to_jq_pretty(head.doc().expect("doc")), "an error changes nothing");
            return;
        }
    }

    // A sparse load (what every ledger update does) makes the same edit; on a file printed as jq
    // prints it, byte for byte the same file.
    let mut sparse = StateFile::parse_sparse(Path::new(PATH), text.to_vec()).expect("a sparse load parses too");
    sparse.merge(n, fields("implementing")).expect("the full load merged");
    let sparse_bytes = sparse.to_bytes().expect("print");
    let reread = StateFile::parse(Path::new(PATH), sparse_bytes.clone()).expect("a sparse edit parses");
    assert_eq!(to_jq_pretty(reread.doc().expect("doc")), to_jq_pretty(mine.doc().expect("doc")), "sparse and full edits agree");
    if printed == text {
        assert_eq!(sparse_bytes, mine.to_bytes().expect("print"), "on a jq-printed file the splice is what jq prints");
    }

    // A working tree with task n's edit alone is its own share, the HEAD being the file as given
    // (the shortcut applies when that file is laid out as the tool prints it).
    let alone = scope_state(Path::new(PATH), &printed, &mine.to_bytes().expect("print"), n).expect("both versions parse");
    assert_eq!(alone, mine.to_bytes().expect("print"), "task {n}'s edit alone");

    // A commit's share: the working tree holds task n's edit and another task's.
    let other = numbers.iter().copied().find(|m| *m != n && numbers.iter().filter(|k| *k == m).count() == 1);
    let mut worktree = mine.clone();
    if let Some(m) = other {
        worktree.merge(m, fields("abandoned")).expect("unique");
    }
    let scoped = scope_state(Path::new(PATH), text, &worktree.to_bytes().expect("print"), n).expect("both versions parse");
    let scoped = StateFile::parse(Path::new(PATH), scoped).expect("the share parses");
    assert_eq!(
        String::from_utf8_lossy(&scoped.to_bytes().expect("print")),
        String::from_utf8_lossy(&mine.to_bytes().expect("print")),
        "the share is task {n}'s edit only"
    );
});
