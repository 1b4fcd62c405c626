//! The ledger layer on real and synthetic ledgers: state.json round-trips and the seed's
//! Stage 2 update are byte-identical to jq 1.6, a TODO.md status change edits exactly one line,
//! a plan header change edits exactly one line (or is refused clearly), and phases parse.
//!
//! Real data comes from `../shared/fixtures/proofchecker` (read in place, never copied into the
//! project); the synthetic fixtures in `tests/fixtures/` reproduce its quirks and always run.

use std::path::{Path, PathBuf};
use std::process::Command;

use postflight::ledger::plan::{PlanFile, ResumePoint};
use postflight::ledger::state::StateFile;
use postflight::ledger::status::Status;
use postflight::ledger::todo::TodoFile;
use postflight::ledger::Ledger;
use postflight::repo::Repo;
use postflight::Error;
use serde_json::Value;

const TS: &str = "2026-03-16T21:11:23Z";
const SID: &str = "sess_1773695483_a1b2c3";

/// The synthetic fixtures of this crate.
fn synthetic(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The files of `dir` ending in `ext`, sorted; empty when the directory is missing.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(ext)).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// Runs jq 1.6 with `args` on `input` and returns its stdout; panics when jq fails.
fn jq(args: &[&str], input: &Path) -> Vec<u8> {
    let out = Command::new("jq")
        .args(args)
        .arg(input)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("jq 1.6 must be installed (/usr/bin/jq) for the oracle tests");
    assert!(out.status.success(), "jq {args:?} {}: {}", input.display(), String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The first differing line of two texts, for readable failures.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    for (i, (x, y)) in a.split('\n').zip(b.split('\n')).enumerate() {
        if x != y {
            return format!("line {}:\n  jq:   {x:?}\n  tool: {y:?}", i + 1);
        }
    }
    format!("lengths differ: {} vs {} bytes", a.len(), b.len())
}

/// The lines that differ between two texts of the same line count: (0-based line, old, new).
/// Panics when the line counts differ, because an edit that should replace one line added or
/// removed lines instead.
fn changed_lines(old: &str, new: &str) -> Vec<(usize, String, String)> {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.split('\n').collect(), new.split('\n').collect());
    assert_eq!(a.len(), b.len(), "the edit added or removed lines");
    a.iter()
        .zip(&b)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, (x, y))| (i, x.to_string(), y.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// state.json

/// Checks one state file: a round-trip equals `jq .`; without `active_projects` the tool
/// refuses with a clear message. Returns whether the file has `active_projects`.
fn check_state_round_trip(path: &Path) -> bool {
    let bytes = std::fs::read(path).expect("read fixture");
    let has_projects = serde_json::from_slice::<Value>(&bytes)
        .expect("fixtures are valid JSON")
        .get("active_projects")
        .is_some_and(Value::is_array);
    match StateFile::parse(path, bytes) {
        Ok(state) => {
            assert!(has_projects, "{}: parsed although it has no active_projects", path.display());
            let want = jq(&["."], path);
            let got = state.to_bytes().expect("print");
            assert!(
                got == want,
                "{}: round-trip differs from `jq .`: {}",
                path.display(),
                first_difference(&want, &got)
            );
            // The one-pass check that lets an update replace only the edited entry's bytes
            // agrees with jq on whether the file is exactly as jq prints it.
            let raw = std::fs::read(path).expect("read fixture");
            assert_eq!(
                postflight::ledger::json::jq_printed_entries(&raw).is_some(),
                raw == want,
                "{}: the jq-printed check disagrees with jq",
                path.display()
            );
        }
        Err(err) => {
            assert!(!has_projects, "{}: {err}", path.display());
            let msg = err.to_string();
            assert!(
                msg.contains(&path.display().to_string()) && msg.contains("no `active_projects` array"),
                "unclear error: {msg}"
            );
            assert_eq!(err.kind(), postflight::Kind::Refused);
        }
    }
    has_projects
}

/// A throwaway repository (only `.git/` and `specs/state.json`) so the real ledger code path runs.
fn scratch_repo(state: &Path) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::Builder::new().prefix("postflight-fixture-").tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join(".git")).expect("mkdir .git");
    std::fs::create_dir_all(dir.path().join("specs")).expect("mkdir specs");
    std::fs::copy(state, dir.path().join("specs/state.json")).expect("copy state");
    let ledger = Ledger::new(Repo::discover(dir.path()).expect("repo"));
    (dir, ledger)
}

/// Runs the seed's Stage 2 update on every task of `path` with jq and with the tool and compares
/// the results byte for byte; tasks that appear twice must be refused by the tool.
/// Returns (tasks compared, duplicates refused).
fn check_stage2_against_jq(path: &Path) -> (usize, usize) {
    let state = StateFile::load(path).expect("parse");
    let numbers: Vec<u32> = state.tasks().expect("tasks").iter().map(|t| t.number).collect();
    let once: Vec<u32> = numbers.iter().copied().filter(|n| numbers.iter().filter(|m| *m == n).count() == 1).collect();
    let mut dups: Vec<u32> = numbers.iter().copied().filter(|n| !once.contains(n)).collect();
    dups.dedup();

    // One jq run prints every updated document in turn; each ends with a `}` line.
    let filter = "$ns[] as $n | (.active_projects[] | select(.project_number == $n)) |= \
                  . + {status: $status, last_updated: $ts, session_id: $sid, started: $ts}";
    let ns = serde_json::to_string(&once).expect("numbers");
    let out = jq(
        &["--argjson", "ns", &ns, "--arg", "status", "implementing", "--arg", "ts", TS, "--arg", "sid", SID, filter],
        path,
    );
    let text = String::from_utf8(out).expect("jq prints UTF-8");
    let docs: Vec<&str> = text.split_inclusive("\n}\n").collect();
    assert_eq!(docs.len(), once.len(), "{}: one jq document per task", path.display());

    let (_dir, ledger) = scratch_repo(path);
    for (n, want) in once.iter().zip(docs) {
        let ((), changes) = ledger
            .preview(|snap| {
                postflight::tasks::apply_status(
                    snap,
                    *n,
                    &Status::Implementing,
                    true,
                    TS,
                    &[("session_id", SID.into())],
                )
                .map(|_| ())
            })
            .unwrap_or_else(|e| panic!("{}: task {n}: {e}", path.display()));
        let got = match changes.iter().find(|c| c.path.ends_with("state.json")) {
            Some(c) => c.new.clone(),
            // No change at all means the file already was exactly jq's output.
            None => std::fs::read(path).expect("read"),
        };
        assert!(
            got == want.as_bytes(),
            "{}: Stage 2 update of task {n} differs from jq: {}",
            path.display(),
            first_difference(want.as_bytes(), &got)
        );
    }
    for n in &dups {
        let err = ledger
            .preview(|snap| postflight::tasks::apply_status(snap, *n, &Status::Implementing, true, TS, &[]))
            .expect_err("a duplicated task must be refused");
        assert!(matches!(err, Error::DuplicateTask { task, count: 2, .. } if task == *n), "{err}");
        assert!(err.to_string().contains("lines "), "the error names the lines: {err}");
    }
    (once.len(), dups.len())
}

#[test]
fn state_fixtures_round_trip_byte_identical_to_jq() {
    let Some(fx) = crate::support::fixtures() else { return };
    let mut with = 0;
    let mut without = 0;
    for dir in ["states", "legacy-states", "archive-states"] {
        for path in files(&fx.join(dir), ".json") {
            if check_state_round_trip(&path) {
                with += 1;
            } else {
                without += 1;
            }
        }
    }
    eprintln!("state round-trip: {with} files equal `jq .`, {without} refused (no active_projects)");
    assert!(with >= 40 && without >= 2, "fixture set shrank: {with} / {without}");
}

#[test]
fn synthetic_state_round_trips_like_jq() {
    assert!(check_state_round_trip(&synthetic("quirky-state.json")));
    assert!(!check_state_round_trip(&synthetic("archive-state.json")));
    // Escapes, control characters, DEL, astral and invisible characters, duplicate keys, and
    // numbers jq 1.6 prints in its own way (-0, 1e-07, 1e+20, integers past 2^53 rounded).
    assert!(check_state_round_trip(&synthetic("json-edge-cases.json")));
    // The quirky file is not jq-formatted (escapes, inline arrays, no final newline), so its
    // first save is a one-time normalisation, exactly as jq would do it.
    let raw = std::fs::read(synthetic("quirky-state.json")).expect("read");
    assert_ne!(jq(&["."], &synthetic("quirky-state.json")), raw);
}

#[test]
fn stage2_update_of_every_task_equals_jq() {
    let Some(fx) = crate::support::fixtures() else { return };
    let (mut tasks, mut dups) = (0, 0);
    let mut dirs = files(&fx.join("states"), ".json");
    dirs.extend(files(&fx.join("legacy-states"), ".json"));
    for path in dirs {
        let (t, d) = check_stage2_against_jq(&path);
        tasks += t;
        dups += d;
    }
    eprintln!("Stage 2 vs jq: {tasks} task updates identical, {dups} duplicated tasks refused");
    assert!(dups >= 3, "bcd8236c0, 48b44ddd6 and 00e9b1169 hold duplicates");
}

#[test]
fn synthetic_stage2_update_equals_jq_and_refuses_duplicates() {
    let (tasks, dups) = check_stage2_against_jq(&synthetic("quirky-state.json"));
    assert!(tasks >= 4, "{tasks}");
    assert_eq!(dups, 1);
}

// ---------------------------------------------------------------------------------------------
// TODO.md

/// Changes the status of every task of a TODO.md and checks that exactly its status line
/// changed (a block without one gets one line inserted under its heading); duplicated headings
/// must be refused. Returns (lines replaced, lines inserted, duplicates refused).
fn check_todo_status_edits(path: &Path) -> (usize, usize, usize) {
    let bytes = std::fs::read(path).expect("read");
    let todo = TodoFile::parse(path, &bytes).expect("parse");
    let text = todo.to_text();
    assert_eq!(text.as_bytes(), &bytes[..], "{}: parsing alone changes nothing", path.display());
    let headings = todo.headings();
    let (mut replaced, mut inserted, mut refused) = (0, 0, 0);
    let mut seen = std::collections::BTreeSet::new();
    for (line, n) in &headings {
        if !seen.insert(*n) {
            continue;
        }
        let count = headings.iter().filter(|(_, m)| m == n).count();
        let mut t = todo.clone();
        let current = todo.status(*n);
        if count > 1 {
            let err = current.expect_err("a duplicated heading must be refused");
            assert!(matches!(err, Error::DuplicateTask { task, count: c, .. } if task == *n && c == count), "{err}");
            let err = t.set_status(*n, &Status::Implementing).expect_err("refused");
            assert!(err.to_string().contains(&format!("task {n} appears {count} times")), "{err}");
            assert_eq!(t.to_text(), text, "a refused edit changes nothing");
            refused += 1;
            continue;
        }
        let current = current.expect("unique").map(|s| Status::from_marker(&s.marker));
        let to = if current == Some(Status::Implementing) { Status::Completed } else { Status::Implementing };
        assert!(t.set_status(*n, &to).expect("set"), "task {n} has an entry");
        let new = t.to_text();
        let block = todo.block(*n).expect("unique").expect("present");
        match todo.status(*n).expect("unique") {
            Some(sl) => {
                let diff = changed_lines(&text, &new);
                assert_eq!(diff.len(), 1, "{}: task {n}: {diff:?}", path.display());
                let (i, old_line, new_line) = &diff[0];
                assert_eq!(*i, sl.line, "the status line of task {n} (heading line {})", line + 1);
                assert!(block.contains(i));
                assert_eq!(
                    new_line,
                    &old_line.replacen(&format!("[{}]", sl.marker), &format!("[{}]", to.marker()), 1),
                    "only the marker changes"
                );
                assert_eq!(t.status(*n).expect("ok").expect("line").marker, to.marker());
                replaced += 1;
            }
            None => {
                // A block without a status line gets one, right under its heading.
                let (a, b): (Vec<&str>, Vec<&str>) = (text.split('\n').collect(), new.split('\n').collect());
                assert_eq!(b.len(), a.len() + 1, "{}: task {n}", path.display());
                assert_eq!(&b[..=*line], &a[..=*line]);
                assert_eq!(&b[line + 2..], &a[line + 1..]);
                assert_eq!(b[line + 1].trim_end_matches('\r'), format!("- **Status**: [{}]", to.marker()).as_str());
                inserted += 1;
            }
        }
    }
    (replaced, inserted, refused)
}

#[test]
fn todo_status_change_edits_exactly_one_line_in_every_fixture() {
    let Some(fx) = crate::support::fixtures() else { return };
    let (mut replaced, mut inserted, mut refused, mut n_files) = (0, 0, 0, 0);
    for path in files(&fx.join("todos"), ".md") {
        let (e, i, r) = check_todo_status_edits(&path);
        replaced += e;
        inserted += i;
        refused += r;
        n_files += 1;
    }
    eprintln!(
        "TODO.md: {n_files} files, {replaced} status lines replaced, {inserted} inserted (no status line), \
         {refused} duplicated headings refused"
    );
    assert!(n_files >= 40 && replaced > 800, "{n_files} {replaced}");

    // `### 6. Backlog` under `## Recommended Order` is a list item, not a second task 6.
    let path = fx.join("todos/3c272639d.md");
    let todo = TodoFile::parse(&path, &std::fs::read(&path).expect("read")).expect("parse");
    let block = todo.block(6).expect("not a duplicate").expect("present");
    assert!(todo.doc.line(block.start).starts_with("### 6. Replace FlagBFMCS"), "{}", todo.doc.line(block.start));
}

#[test]
fn synthetic_todo_quirks() {
    // CRLF, status lines without the dash and with trailing text, a ✅ heading, an empty title.
    let counts = check_todo_status_edits(&synthetic("quirky-todo-crlf.md"));
    assert_eq!(counts, (4, 1, 1), "(replaced, inserted, refused)");
    let path = synthetic("quirky-todo-crlf.md");
    let bytes = std::fs::read(&path).expect("read");
    let mut t = TodoFile::parse(&path, &bytes).expect("parse");
    assert_eq!(t.status(512).expect("ok").expect("line").marker, "COMPLETED", "✅ heading");
    assert_eq!(t.status(394).expect("ok").expect("line").marker, "NOT STARTED", "empty title");
    t.set_status(40, &Status::Planned).expect("set");
    t.set_bullet(40, "Summary", "[s.md](specs/40_x/summaries/s.md)").expect("bullet");
    assert!(t.set_next_project_number(42));
    let new = t.to_text();
    assert_eq!(new.matches('\n').count(), new.matches("\r\n").count(), "CRLF stays CRLF");
    assert!(new.contains("\r\n **Status**: [PLANNED] (Phase 1/6, blocked pending Task 39)\r\n"));
    assert!(new.contains("next_project_number: 42\r\n"));

    // An empty TODO.md (a real clobbered file) has no tasks and refuses nothing.
    let path = synthetic("empty-todo.md");
    let mut t = TodoFile::parse(&path, &std::fs::read(&path).expect("read")).expect("parse");
    assert!(t.headings().is_empty());
    assert!(!t.set_status(1, &Status::Planned).expect("no entry is not an error"));
    assert_eq!(t.to_text(), "");
}

// ---------------------------------------------------------------------------------------------
// Plans

/// Changes the header status of a plan: exactly one header line changes and the phases stay;
/// without a header status line nothing changes. Returns whether the plan has one.
fn check_plan_header_edit(path: &Path) -> bool {
    let bytes = std::fs::read(path).expect("read");
    let plan = PlanFile::parse(path, &bytes).expect("parse");
    let text = plan.to_text();
    assert_eq!(text.as_bytes(), &bytes[..]);
    let phases = plan.phases();
    let mut p = plan.clone();
    match plan.header_status() {
        Some((line, marker)) => {
            let to = if Status::from_marker(&marker) == Status::Implementing {
                Status::Partial
            } else {
                Status::Implementing
            };
            assert!(p.set_header_status(&to));
            let diff = changed_lines(&text, &p.to_text());
            assert_eq!(diff.len(), 1, "{}: {diff:?}", path.display());
            assert_eq!(diff[0].0, line);
            assert!(phases.iter().all(|ph| ph.line > line), "{}: the header precedes every phase", path.display());
            assert_eq!(p.phases(), phases, "phases untouched");
            assert_eq!(p.header_status().map(|(_, m)| m), Some(to.marker()));
            true
        }
        None => {
            assert!(!p.set_header_status(&Status::Implementing));
            assert_eq!(p.to_text(), text);
            false
        }
    }
}

#[test]
fn plan_header_change_edits_exactly_one_line_in_every_fixture() {
    let Some(fx) = crate::support::fixtures() else { return };
    let mut with = Vec::new();
    let mut without = Vec::new();
    for path in files(&fx.join("plans"), ".md") {
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        if check_plan_header_edit(&path) {
            with.push(name);
        } else {
            without.push(name);
        }
    }
    eprintln!("plans: {} header edits of one line; no header status line: {without:?}", with.len());
    assert!(with.len() >= 20, "{with:?}");
}

#[test]
fn real_plans_parse_phases_by_id_and_resume_point() {
    let Some(fx) = crate::support::fixtures() else { return };
    let load = |name: &str| PlanFile::load(&fx.join("plans").join(name)).expect("load");
    let ids = |p: &PlanFile| p.phases().into_iter().map(|ph| ph.id).collect::<Vec<_>>();

    let p = load("916_implementation-011.md");
    assert_eq!(ids(&p), ["3B", "5A", "5B", "5C", "6", "7"]);
    let p = load("974_implementation-004.md");
    assert!(ids(&p).iter().any(|i| i == "6.5"), "{:?}", ids(&p));
    let p = load("967_implementation-003.md");
    assert_eq!(ids(&p).first().map(String::as_str), Some("0"));

    let created = load("980_implementation-001@56b211fae.md");
    assert_eq!(created.resume_point(), ResumePoint::At { id: "1".into(), position: 1 });
    let iter1 = load("980_implementation-001@ac19ee63f.md");
    assert_eq!(iter1.resume_point(), ResumePoint::At { id: "2".into(), position: 2 });
    let done = load("980_implementation-001@fd3df295d.md");
    assert_eq!(done.resume_point(), ResumePoint::AllDone);
    let (d, t) = done.progress();
    assert_eq!(d, t);

    // Older style: no marker on the heading, `**Status**: [X]` on the phase's first lines.
    let p = load("701_implementation-002.md");
    assert_eq!(p.header_status(), None);
    let (d, t) = p.progress();
    assert!(t >= 3 && d >= 2, "{d}/{t}");

    let p = load("058_12_restricted-truth-lemma-path.md");
    assert!(p.phases().iter().any(|ph| ph.marker.as_deref() == Some("BLOCKED")), "[BLOCKED - See Note Above]");
    let p = load("881_implementation-001.md");
    let (_, marker) = p.header_status().expect("header");
    assert_eq!(marker, "PARTIAL");
    assert!(p.doc.line(p.header_status().expect("header").0).contains("] - Phases 1-3 complete"));
}

#[test]
fn synthetic_plans() {
    assert!(check_plan_header_edit(&synthetic("plan-nodash.md")));
    assert!(!check_plan_header_edit(&synthetic("plan-noheader.md")));
    let p = PlanFile::load(&synthetic("plan-nodash.md")).expect("load");
    let phases: Vec<_> = p.phases().into_iter().map(|ph| (ph.id, ph.marker)).collect();
    assert_eq!(
        phases,
        [
            ("1".to_owned(), Some("COMPLETED".to_owned())),
            ("3A".into(), Some("COMPLETED".into())),
            ("6.5".into(), Some("SKIPPED".into())),
            ("B".into(), Some("BLOCKED".into())),
            ("10".into(), None),
        ]
    );
    assert_eq!(p.resume_point(), ResumePoint::At { id: "B".into(), position: 4 });
    assert_eq!(p.progress(), (3, 5));
    // The phase's own `**Status**:` line (older style) is never taken for the header's.
    let p = PlanFile::load(&synthetic("plan-noheader.md")).expect("load");
    assert_eq!(p.header_status(), None);
    let phases: Vec<_> = p.phases().into_iter().map(|ph| (ph.id, ph.marker)).collect();
    assert_eq!(phases, [("1".to_owned(), Some("COMPLETED".to_owned())), ("2".into(), Some("NOT STARTED".into()))]);
    assert_eq!(p.resume_point(), ResumePoint::At { id: "2".into(), position: 2 });
}

// ---------------------------------------------------------------------------------------------
// `xtask status` on real ledgers

#[test]
fn status_on_real_ledgers_lists_every_task_with_its_todo_title() {
    let Some(fx) = crate::support::fixtures() else { return };
    let mut rows_seen = 0;
    for state_path in files(&fx.join("states"), ".json") {
        let stem = state_path.file_stem().expect("stem").to_string_lossy().into_owned();
        let todo_path = fx.join("todos").join(format!("{stem}.md"));
        let repo = crate::support::TestRepo::empty();
        std::fs::create_dir_all(repo.file("specs")).expect("mkdir");
        std::fs::copy(&state_path, repo.file("specs/state.json")).expect("copy");
        std::fs::copy(&todo_path, repo.file("specs/TODO.md")).expect("copy");
        let before = repo.snapshot();
        let out = repo.run(&["status", "--json"]);
        assert!(out.status.success(), "{stem}: {}", crate::support::render(&out));
        assert!(before == repo.snapshot(), "status writes nothing");
        let rows: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
        let state = StateFile::load(&state_path).expect("state");
        let todo = TodoFile::load(&todo_path).expect("todo");
        let tasks = state.tasks().expect("tasks");
        assert_eq!(rows.len(), tasks.len(), "{stem}");
        for (row, t) in rows.iter().zip(&tasks) {
            assert_eq!(row["number"], t.number);
            assert_eq!(row["status"], t.status.as_str());
            let want = todo.title(t.number).unwrap_or_else(|| t.title.clone());
            assert_eq!(row["title"], want.as_str(), "{stem}: task {}", t.number);
        }
        rows_seen += rows.len();
    }
    eprintln!("xtask status: {rows_seen} rows over every state fixture");
}

#[test]
fn status_detail_on_a_real_ledger_agrees_with_the_files() {
    let Some(fx) = crate::support::fixtures() else { return };
    let repo = crate::support::TestRepo::empty();
    std::fs::create_dir_all(repo.file("specs/980_remove_dn_based_seriality_proofs_tech_debt/plans")).expect("mkdir");
    std::fs::copy(fx.join("states/56b211fae.json"), repo.file("specs/state.json")).expect("copy");
    std::fs::copy(fx.join("todos/56b211fae.md"), repo.file("specs/TODO.md")).expect("copy");
    std::fs::copy(
        fx.join("plans/980_implementation-001@ac19ee63f.md"),
        repo.file("specs/980_remove_dn_based_seriality_proofs_tech_debt/plans/implementation-001.md"),
    )
    .expect("copy");
    let out = repo.run(&["status", "980"]);
    assert!(out.status.success(), "{}", crate::support::render(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("task 980: Remove DN-based seriality proofs technical debt\n"), "{text}");
    assert!(text.contains("  state.json   planned\n"), "{text}");
    assert!(text.contains("  plan header  [IMPLEMENTING]\n"), "{text}");
    assert!(text.contains("  phases       1/6 done, resume at phase 2\n"), "{text}");
    assert!(text.contains("  consistent   no"), "{text}");
    let out = repo.run(&["status", "980", "--json"]);
    let d: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(d["phases_done"], 1);
    assert_eq!(d["phases"][1]["id"], "2");
    assert_eq!(d["phases"][1]["marker"], "IN PROGRESS");
    assert_eq!(d["phases"][1]["done"], false);
}

// ---------------------------------------------------------------------------------------------
// Layouts: where the repository and the plan are found

#[test]
fn plan_found_in_zero_padded_dir_without_slug_and_repo_found_from_subdir_and_worktree() {
    let repo = crate::support::TestRepo::new();
    // Task 8 has no project_name; its directory is zero-padded (post-deletion layout).
    let state = crate::support::STATE.replacen(
        "\"active_projects\": [",
        "\"active_projects\": [\n    {\n      \"project_number\": 8,\n      \"status\": \"planned\",\n      \"language\": \"lean4\"\n    },",
        1,
    );
    repo.write("specs/state.json", &state);
    repo.write(
        "specs/008_padded_name/plans/implementation-002.md",
        "# Plan\n\n**Status**: [PLANNED]\n\n### Phase 1: x [NOT STARTED]\n",
    );
    repo.write("specs/008_padded_name/plans/implementation-001.md", "# Plan\n\n- **Status**: [PLANNED]\n");
    repo.write("src/deep/dir/keep.txt", "x\n");
    let out =
        repo.xtask(&["set-status", "8", "implementing"]).current_dir(repo.file("src/deep/dir")).output().expect("run");
    assert!(out.status.success(), "{}", crate::support::render(&out));
    assert!(repo.read("specs/008_padded_name/plans/implementation-002.md").contains("\n**Status**: [IMPLEMENTING]\n"));
    assert!(
        repo.read("specs/008_padded_name/plans/implementation-001.md").contains("[PLANNED]"),
        "older plan untouched"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: ") && err.contains("no entry for task 8"), "TODO.md has no entry: {err}");

    // A linked worktree has its own specs/ and its own lock in its own git directory.
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "task 8"]);
    let wt = repo.path().join("wt");
    repo.git(&["worktree", "add", "-q", wt.to_str().expect("utf8"), "-b", "side"]);
    let out =
        repo.xtask(&["-C", wt.to_str().expect("utf8"), "set-status", "350", "implementing"]).output().expect("run");
    assert!(out.status.success(), "{}", crate::support::render(&out));
    assert!(std::fs::read_to_string(wt.join("specs/TODO.md")).expect("read").contains("- **Status**: [IMPLEMENTING]"));
    assert!(!repo.read("specs/TODO.md").contains("[IMPLEMENTING]"), "the main work tree is untouched");
    assert!(repo.file(".git/worktrees/wt/postflight-ledger.lock").exists());
}

// ---------------------------------------------------------------------------------------------
// `task new` on real ledgers

#[test]
fn task_new_on_every_real_ledger_only_adds_the_entry_and_bumps_the_counters() {
    let Some(fx) = crate::support::fixtures() else { return };
    let (mut done, mut no_tasks_section, mut priority_section) = (0, 0, 0);
    for state_path in files(&fx.join("states"), ".json") {
        let stem = state_path.file_stem().expect("stem").to_string_lossy().into_owned();
        let (dir, ledger) = scratch_repo(&state_path);
        std::fs::copy(fx.join("todos").join(format!("{stem}.md")), dir.path().join("specs/TODO.md")).expect("copy");
        let ctx = postflight::Context {
            repo: ledger.repo.clone(),
            fixed_now: Some(TS.parse().expect("time")),
            session_id: None,
        };
        let old_state = StateFile::load(&ledger.state_path()).expect("state");
        let old_todo = std::fs::read_to_string(ledger.todo_path()).expect("todo");
        let old_todo_file = TodoFile::parse(&ledger.todo_path(), old_todo.as_bytes()).expect("todo");
        let input = postflight::tasks::NewTask {
            title: "A new task".into(),
            priority: Some("high".into()),
            ..Default::default()
        };
        let (n, _) = postflight::tasks::new_task(&ctx, &input).unwrap_or_else(|e| panic!("{stem}: {e}"));

        let in_use = old_state
            .max_number()
            .expect("max")
            .unwrap_or(0)
            .max(old_todo_file.headings().iter().map(|h| h.1).max().unwrap_or(0));
        assert!(n > in_use, "{stem}: {n} must be past every number in use ({in_use})");
        let state = StateFile::load(&ledger.state_path()).expect("state");
        assert_eq!(state.entries().expect("entries")[0]["project_number"], n, "{stem}: prepended");
        assert_eq!(
            &state.entries().expect("entries")[1..],
            old_state.entries().expect("entries"),
            "{stem}: other entries untouched"
        );
        assert_eq!(state.next_project_number().expect("next"), Some(u64::from(n) + 1));
        // The rest of the document is as jq would print it, with only the counter changed.
        let mut expect = old_state.doc().expect("doc").clone();
        expect["next_project_number"] = (u64::from(n) + 1).into();
        let mut got = state.doc().expect("doc").clone();
        got["active_projects"].as_array_mut().expect("array").remove(0);
        assert_eq!(got, expect, "{stem}");

        // TODO.md: one block of lines is inserted and the frontmatter counter (if any) changes;
        // nothing else.
        let todo = std::fs::read_to_string(ledger.todo_path()).expect("todo");
        let mut new_lines: Vec<&str> = todo.split('\n').collect();
        let old_lines: Vec<&str> = old_todo.split('\n').collect();
        let counter = format!("next_project_number: {}", u64::from(n) + 1);
        if let Some((i, _)) = old_todo_file.next_project_number() {
            assert_eq!(new_lines[i].trim_end_matches('\r'), counter, "{stem}");
            new_lines[i] = old_lines[i];
        }
        let inserted = new_lines.len() - old_lines.len();
        let p = old_lines.iter().zip(&new_lines).take_while(|(a, b)| a == b).count();
        assert_eq!(&new_lines[p + inserted..], &old_lines[p..], "{stem}: one contiguous insertion");
        let block = &new_lines[p..p + inserted];
        assert!(block.contains(&format!("### {n}. A new task").as_str()), "{stem}: {block:?}");
        let under_tasks = old_lines[..p].iter().rev().find(|l| l.starts_with("## ")).copied();
        if old_lines.iter().any(|l| l.trim_end() == "## Tasks") {
            assert_eq!(under_tasks, Some("## Tasks"), "{stem}: inserted under ## Tasks");
        } else if old_lines.iter().any(|l| l.trim_end() == "## High Priority") {
            assert_eq!(under_tasks, Some("## High Priority"), "{stem}: an older file's priority section");
            priority_section += 1;
        } else {
            assert!(block.contains(&"## Tasks"), "{stem}: a ## Tasks section is added: {block:?}");
            no_tasks_section += 1;
        }
        let t = TodoFile::parse(&ledger.todo_path(), todo.as_bytes()).expect("todo");
        assert_eq!(t.status(n).expect("unique").expect("line").marker, "NOT STARTED");
        done += 1;
    }
    eprintln!(
        "task new: {done} real ledgers, one entry added to each file, nothing else changed \
         ({priority_section} older ones got it under ## High Priority, {no_tasks_section} got a ## Tasks section)"
    );
}

#[test]
fn set_status_says_clearly_when_the_plan_has_no_header_status_line() {
    let repo = crate::support::TestRepo::new();
    let plan = std::fs::read_to_string(synthetic("plan-noheader.md")).expect("read");
    repo.write("specs/350_add_feature/plans/implementation-002.md", &plan);
    let out = repo.run(&["set-status", "350", "implementing"]);
    assert!(out.status.success(), "{}", crate::support::render(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "warning: specs/350_add_feature/plans/implementation-002.md: no header **Status** line; plan left unchanged"
        ),
        "{}",
        crate::support::render(&out)
    );
    assert_eq!(repo.read("specs/350_add_feature/plans/implementation-002.md"), plan);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "task 350: planned -> implementing (specs/state.json, specs/TODO.md)\n"
    );
}
