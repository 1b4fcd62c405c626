//! Concurrency suite (issue 7, item 3): eight `xtask implement` runs on eight different tasks
//! at once in one working tree, each with its own scripted agent (one partial iteration, then
//! done). All complete; every commit holds only its own task's paths and its own share of
//! state.json and TODO.md; no update is lost; `git fsck` is clean; the branch holds all of
//! them; the user's staged, unstaged and untracked work is untouched.
//!
//! `POSTFLIGHT_CONCURRENCY_ROUNDS=N` repeats the whole scenario N times (default 1).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::support::{render, TestRepo};
use postflight::ledger::todo::TodoFile;
use serde_json::{json, Value};

const TASKS: [u32; 8] = [201, 202, 203, 204, 205, 206, 207, 208];
const SUMMARY_DATE: &str = "20260316";

fn slug(n: u32) -> String {
    format!("task_{n}")
}

fn task_dir(n: u32) -> String {
    format!("specs/{n}_{}", slug(n))
}

/// A repository with eight planned tasks (two-phase plans), committed, plus the user's own work
/// in progress: a staged edit, an unstaged edit and an untracked file.
fn setup() -> TestRepo {
    let repo = TestRepo::empty();
    let entries: Vec<Value> = TASKS
        .iter()
        .rev()
        .map(|n| {
            json!({
                "project_number": n,
                "project_name": slug(*n),
                "status": "planned",
                "language": "general",
                "description": format!("Task {n}, run concurrently with seven others."),
                "created": "2026-03-01T00:00:00Z",
                "last_updated": "2026-03-02T00:00:00Z",
                "artifacts": [{"path": format!("{}/plans/implementation-001.md", task_dir(*n)), "type": "plan", "summary": "Two phases"}],
                "planned": "2026-03-02T00:00:00Z"
            })
        })
        .collect();
    let state = json!({"active_projects": entries, "completed_projects": [], "next_project_number": 209});
    repo.write(
        "specs/state.json",
        &String::from_utf8(postflight::ledger::json::to_jq_pretty(&state)).expect("jq output is UTF-8"),
    );
    let mut todo = String::from("---\nnext_project_number: 209\n---\n\n# TODO\n\n## Tasks\n\n");
    for n in TASKS.iter().rev() {
        todo.push_str(&format!(
            "### {n}. Task {n}\n- **Effort**: 1 hour\n- **Status**: [PLANNED]\n- **Language**: general\n\
             - **Plan**: [implementation-001.md]({}/plans/implementation-001.md)\n\n**Description**: Task {n}.\n\n---\n\n",
            task_dir(*n)
        ));
        repo.write(
            &format!("{}/plans/implementation-001.md", task_dir(*n)),
            &format!(
                "# Implementation Plan: Task #{n}\n\n- **Task**: {n} - {}\n- **Status**: [PLANNED]\n\n\
                 ## Implementation Phases\n\n### Phase 1: First half [NOT STARTED]\n\n---\n\n### Phase 2: Second half [NOT STARTED]\n",
                slug(*n)
            ),
        );
    }
    repo.write("specs/TODO.md", &todo);
    repo.write(".gitignore", "/target\n.return-meta.json\n.postflight-pending\n.postflight-loop-guard\n*.log\n");
    repo.write(".postflight.json", "{\"agent_identity\": \"Scripted Agent <agent@example.com>\"}\n");
    repo.write("README.md", "# sample project\n");
    repo.write("docs/guide.md", "# Guide\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "initial"]);
    repo.add_user_work();
    repo
}

/// The user's work: staged diff, unstaged diff, the three files' bytes, the staged file list.
fn user_work(repo: &TestRepo) -> Vec<String> {
    vec![
        repo.git(&["diff", "--cached"]),
        repo.git(&["diff", "--", "README.md", "docs", "scratch.txt"]),
        repo.read("docs/guide.md"),
        repo.read("README.md"),
        repo.read("scratch.txt"),
    ]
}

/// Task n's script: a partial iteration (phase 1, a handoff), then the rest. Sleeps differ per
/// task so that the runs' commits interleave in different orders.
fn script(n: u32, k: usize) -> Value {
    let dir = "{task_dir}";
    let summary = format!("{dir}/summaries/implementation-summary-{SUMMARY_DATE}.md");
    let handoff = format!("{dir}/handoffs/phase-2-handoff.md");
    let first = json!({
        "write": {
            format!("src/t{n}/part1.rs"): format!("// task {n}, phase 1\n"),
            handoff.clone(): "# Handoff\nPhase 2 remains.\n"
        },
        "complete_phases": ["1"],
        "summary": format!("### Phase 1 of task {n} [COMPLETED]"),
        "sleep_ms": 40 * ((k as u64 * 3) % 8),
        "metadata": {
            "status": "partial",
            "summary": format!("Task {n}: phase 1 done."),
            "artifacts": [
                {"type": "summary", "path": summary, "summary": "Phase log"},
                {"type": "implementation", "path": format!("src/t{n}/part1.rs"), "summary": "Phase 1"}
            ],
            "partial_progress": {"phases_completed": 1, "phases_total": 2, "handoff_path": handoff, "details": "phase 2 remains"},
            "metadata": {"session_id": "{session_id}", "phases_completed": 1, "phases_total": 2}
        }
    });
    let second = json!({
        "write": {format!("src/t{n}/part2.rs"): format!("// task {n}, phase 2\n")},
        "complete_phases": ["2"],
        "summary": format!("### Phase 2 of task {n} [COMPLETED]"),
        "sleep_ms": 40 * ((k as u64 * 5 + 3) % 8),
        "metadata": {
            "status": "implemented",
            "summary": format!("Task {n}: both phases done."),
            "artifacts": [
                {"type": "summary", "path": summary, "summary": "Phase log"},
                {"type": "implementation", "path": format!("src/t{n}/part1.rs"), "summary": "Phase 1"},
                {"type": "implementation", "path": format!("src/t{n}/part2.rs"), "summary": "Phase 2"}
            ],
            "completion_data": {"completion_summary": format!("Task {n} implemented."), "roadmap_items": []},
            "metadata": {"session_id": "{session_id}", "phases_completed": 2, "phases_total": 2}
        }
    });
    json!({"steps": [first, second]})
}

/// Starts the eight runs at once and waits for all of them.
fn run_all(repo: &TestRepo) -> Vec<(u32, Output)> {
    let agent = format!("'{}' demo-agent", env!("CARGO_BIN_EXE_xtask"));
    let children: Vec<_> = TASKS
        .iter()
        .enumerate()
        .map(|(k, &n)| {
            let path = repo.home().join(format!("script-{n}.json"));
            std::fs::write(&path, script(n, k).to_string()).expect("script");
            let child = repo
                .xtask(&["implement", &n.to_string(), "--agent", &agent, "--json"])
                .env("XTASK_DEMO_SCRIPT", &path)
                .env("XTASK_SESSION_ID", format!("sess_1773695483_00{n}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn xtask implement");
            (n, child)
        })
        .collect();
    children.into_iter().map(|(n, c)| (n, c.wait_with_output().expect("wait"))).collect()
}

/// The task a commit belongs to, from its subject `task N: ...`.
fn task_of(subject: &str) -> Option<u32> {
    subject.strip_prefix("task ")?.split(':').next()?.parse().ok()
}

fn show(repo: &TestRepo, rev: &str) -> String {
    repo.git(&["show", rev])
}

/// The active_projects entries by number, and every other top-level key.
fn split_state(text: &str, what: &str) -> (BTreeMap<u64, Value>, serde_json::Map<String, Value>) {
    let mut doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: state.json is not JSON: {e}"));
    let list = doc.as_object_mut().expect("object").remove("active_projects").expect("active_projects");
    let entries = list
        .as_array()
        .expect("array")
        .iter()
        .map(|e| (e["project_number"].as_u64().expect("number"), e.clone()))
        .collect();
    (entries, doc.as_object().expect("object").clone())
}

/// TODO.md without task n's block: the lines before it and after it.
fn todo_without(text: &str, n: u32, what: &str) -> (Vec<String>, Vec<String>) {
    let todo = TodoFile::parse(Path::new("specs/TODO.md"), text.as_bytes()).expect("TODO.md is UTF-8");
    let block = todo.block(n).unwrap_or_else(|e| panic!("{what}: {e}")).unwrap_or_else(|| panic!("{what}: no block"));
    let lines: Vec<String> = todo.doc.lines().map(str::to_owned).collect();
    (lines[..block.start].to_vec(), lines[block.end..].to_vec())
}

/// Checks one commit of task n: only its paths, only its state.json entry, only its TODO.md block.
fn check_commit(repo: &TestRepo, id: &str, n: u32, subject: &str) {
    let what = format!("commit {id} `{subject}`");
    let files = repo.git(&["show", "--name-only", "--format=", id]);
    let own_dir = format!("{}/", task_dir(n));
    let own_src = format!("src/t{n}/");
    for f in files.lines() {
        let name = f.rsplit('/').next().unwrap_or(f);
        assert!(
            f == "specs/state.json" || f == "specs/TODO.md" || f.starts_with(&own_dir) || f.starts_with(&own_src),
            "{what} holds a path that is not task {n}'s: {f}\n{}",
            show(repo, id)
        );
        assert!(
            name != ".return-meta.json" && !name.starts_with(".postflight-") && !name.ends_with(".tmp"),
            "{what} holds a transient file: {f}"
        );
    }
    let parent = format!("{id}^");
    if files.lines().any(|f| f == "specs/state.json") {
        let (old_entries, old_rest) = split_state(&repo.git(&["show", &format!("{parent}:specs/state.json")]), &what);
        let (new_entries, new_rest) = split_state(&repo.git(&["show", &format!("{id}:specs/state.json")]), &what);
        assert_eq!(old_rest, new_rest, "{what}: state.json changed outside active_projects");
        let mut old_others = old_entries.clone();
        let mut new_others = new_entries.clone();
        old_others.remove(&u64::from(n));
        new_others.remove(&u64::from(n));
        assert_eq!(old_others, new_others, "{what}: state.json diff touches another task's entry");
        assert_ne!(old_entries.get(&u64::from(n)), new_entries.get(&u64::from(n)), "{what}: listed but unchanged");
    }
    if files.lines().any(|f| f == "specs/TODO.md") {
        let old = todo_without(&repo.git(&["show", &format!("{parent}:specs/TODO.md")]), n, &what);
        let new = todo_without(&repo.git(&["show", &format!("{id}:specs/TODO.md")]), n, &what);
        assert_eq!(old, new, "{what}: TODO.md diff touches lines outside task {n}'s block");
    }
}

fn run_scenario(round: usize) {
    let repo = setup();
    let before = user_work(&repo);
    let staged_before = repo.git(&["diff", "--cached", "--name-only"]);
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let started = std::time::Instant::now();
    let results = run_all(&repo);
    let elapsed = started.elapsed();

    // Every run completes with its two commits.
    for (n, out) in &results {
        assert_eq!(out.status.code(), Some(0), "round {round}, task {n}: {}", render(out));
        let report: Value = serde_json::from_slice(&out.stdout).expect("--json prints one object");
        assert_eq!(report["status"], "completed", "task {n}");
        assert_eq!(report["iterations"], 2, "task {n}");
        let subjects: Vec<&str> =
            report["commits"].as_array().expect("commits").iter().map(|c| c["subject"].as_str().expect("s")).collect();
        assert_eq!(
            subjects,
            [format!("task {n}: iteration 1 partial progress"), format!("task {n}: complete implementation")],
            "task {n}: {}",
            render(out)
        );
        assert!(report["warnings"].as_array().expect("warnings").is_empty(), "task {n}: {}", render(out));
    }

    // The branch is linear and holds exactly the 16 commits, each with only its task's share.
    let log = repo.git(&["log", "--format=%H %s", &format!("{base}..HEAD")]);
    let commits: Vec<(String, String)> = log
        .lines()
        .map(|l| {
            let (id, s) = l.split_once(' ').expect("id subject");
            (id.to_owned(), s.to_owned())
        })
        .collect();
    assert_eq!(commits.len(), 2 * TASKS.len(), "{log}");
    assert_eq!(repo.git(&["rev-list", "--merges", &format!("{base}..HEAD")]), "", "no merge commits");
    let mut per_task: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (id, subject) in &commits {
        let n = task_of(subject).unwrap_or_else(|| panic!("a commit that is no task's: {subject}"));
        check_commit(&repo, id, n, subject);
        per_task.entry(n).or_default().push(subject.clone());
    }
    for n in TASKS {
        let mut s = per_task.remove(&n).unwrap_or_default();
        s.sort();
        assert_eq!(
            s,
            [format!("task {n}: complete implementation"), format!("task {n}: iteration 1 partial progress")],
            "task {n}"
        );
        let sessions =
            repo.git(&["log", "--format=%(trailers:key=Session,valueonly)", "--grep", &format!("^task {n}:")]);
        assert_eq!(
            sessions.split_whitespace().collect::<Vec<_>>(),
            [format!("sess_1773695483_00{n}"), format!("sess_1773695483_00{n}")]
        );
    }
    assert!(per_task.is_empty(), "commits of unknown tasks: {per_task:?}");

    // No update lost: the final ledger has every task completed, and it is all committed.
    let (entries, _) = split_state(&repo.read("specs/state.json"), "final");
    let todo = TodoFile::parse(Path::new("specs/TODO.md"), repo.read("specs/TODO.md").as_bytes()).expect("TODO.md");
    for n in TASKS {
        let e = &entries[&u64::from(n)];
        assert_eq!(e["status"], "completed", "task {n}: {e}");
        assert_eq!(e["completion_summary"], format!("Task {n} implemented."));
        let paths: Vec<&str> =
            e["artifacts"].as_array().expect("a").iter().map(|a| a["path"].as_str().expect("p")).collect();
        let mut unique = paths.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(paths.len(), 4, "task {n}: plan, summary, two files: {paths:?}");
        assert_eq!(unique.len(), paths.len(), "task {n}: duplicated artifacts {paths:?}");
        assert_eq!(todo.status(n).expect("unique").expect("line").marker, "COMPLETED", "task {n}");
        assert!(repo
            .read(&format!("{}/plans/implementation-001.md", task_dir(n)))
            .contains("- **Status**: [COMPLETED]"));
        for f in [".postflight-pending", ".postflight-loop-guard", ".return-meta.json"] {
            assert!(!repo.exists(&format!("{}/{f}", task_dir(n))), "task {n}: {f} left behind");
        }
    }
    let status = repo.git(&["status", "--porcelain", "--", "specs", "src"]);
    assert_eq!(status, "", "everything the runs wrote is committed");
    assert_eq!(repo.git(&["diff", "HEAD", "--", "specs/state.json", "specs/TODO.md"]), "");

    // The user's work is exactly as it was.
    assert_eq!(user_work(&repo), before, "the user's own work changed");
    assert_eq!(repo.git(&["diff", "--cached", "--name-only"]), staged_before, "the index holds other staged work");
    assert_eq!(
        repo.git(&["status", "--porcelain", "--", "README.md", "docs", "scratch.txt"]),
        " M README.md\nM  docs/guide.md\n?? scratch.txt\n"
    );

    // The object database is sound.
    let fsck = repo.command("git").args(["fsck", "--full", "--no-progress"]).output().expect("git fsck");
    let fsck_text = format!("{}{}", String::from_utf8_lossy(&fsck.stdout), String::from_utf8_lossy(&fsck.stderr));
    assert!(fsck.status.success(), "git fsck failed:\n{fsck_text}");
    let bad: Vec<&str> = fsck_text.lines().filter(|l| !l.starts_with("dangling ")).collect();
    assert!(bad.is_empty(), "git fsck reports:\n{fsck_text}");
    eprintln!(
        "round {round}: 8 concurrent runs, 16 commits in {elapsed:.2?}; git fsck clean ({} dangling objects)",
        fsck_text.lines().count()
    );
}

/// The per-commit check is not vacuous: a plain `git commit` of two tasks' ledger edits, or of
/// another task's file, fails it.
#[test]
fn the_commit_check_rejects_another_tasks_share() {
    let repo = setup();
    for n in ["201", "202"] {
        let out = repo.run(&["set-status", n, "implementing"]);
        assert!(out.status.success(), "{}", render(&out));
    }
    repo.git(&["commit", "-q", "-m", "task 201: both", "--", "specs/state.json"]);
    let id = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let caught = std::panic::catch_unwind(|| check_commit(&repo, &id, 201, "task 201: both"));
    assert!(caught.is_err(), "a state.json commit holding task 202's entry passed the check");
    repo.git(&["commit", "-q", "-m", "task 201: todo", "--", "specs/TODO.md"]);
    let id = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    assert!(std::panic::catch_unwind(|| check_commit(&repo, &id, 201, "todo")).is_err(), "TODO.md of two tasks");
    repo.write("src/t202/x.rs", "x\n");
    repo.git(&["add", "src/t202/x.rs"]);
    repo.git(&["commit", "-q", "-m", "task 201: file", "--", "src/t202/x.rs"]);
    let id = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    assert!(std::panic::catch_unwind(|| check_commit(&repo, &id, 201, "file")).is_err(), "another task's file");
}

#[test]
fn eight_concurrent_implement_runs_commit_only_their_own_share() {
    let rounds = std::env::var("POSTFLIGHT_CONCURRENCY_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    for round in 0..rounds {
        run_scenario(round);
    }
}
