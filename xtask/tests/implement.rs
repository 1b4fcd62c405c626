//! `xtask implement` end to end with the scripted agent (`xtask demo-agent`): every outcome,
//! checking the three ledger files, the commits (count, subjects, trailers, exact file lists),
//! that the user's own staged, unstaged and untracked work is untouched, and that no transient
//! file is ever committed.

use std::process::Output;

use crate::support::{render, TestRepo, NOW, SESSION};
use serde_json::{json, Value};

const IDENTITY: &str = "Scripted Agent <agent@example.com>";
const SUMMARY: &str = "specs/350_add_feature/summaries/implementation-summary-20260316.md";
const PLAN: &str = "specs/350_add_feature/plans/implementation-001.md";

/// The sample repository plus the user's own work in progress and a project configuration.
fn setup() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".postflight.json", &format!("{{\"agent_identity\": \"{IDENTITY}\"}}\n"));
    repo.write("docs/guide.md", "# Guide\n");
    repo.write("src/existing.rs", "// existing\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "project files"]);
    repo.add_user_work();
    repo
}

fn user_work(repo: &TestRepo) -> (String, String, String, String, String) {
    (
        repo.git(&["diff", "--cached", "--", "docs/guide.md"]),
        repo.git(&["diff", "--", "README.md"]),
        repo.read("docs/guide.md"),
        repo.read("README.md"),
        repo.read("scratch.txt"),
    )
}

/// Writes the agent script outside the work tree and runs `xtask implement 350` with it.
fn implement(repo: &TestRepo, steps: Value, extra: &[&str]) -> Output {
    let script = repo.home().join("script.json");
    std::fs::write(&script, json!({ "steps": steps }).to_string()).expect("script");
    let agent = format!("'{}' demo-agent", env!("CARGO_BIN_EXE_xtask"));
    let mut args = vec!["implement", "350", "--agent", &agent];
    args.extend_from_slice(extra);
    repo.xtask(&args).env("XTASK_DEMO_SCRIPT", &script).output().expect("run")
}

fn implemented_meta(artifacts: Value) -> Value {
    json!({
        "status": "implemented",
        "summary": "All three phases done.",
        "artifacts": artifacts,
        "completion_data": {"completion_summary": "Added the feature with tests.", "roadmap_items": ["Feature X shipped"]},
        "metadata": {"session_id": "{session_id}", "phases_completed": 3, "phases_total": 3}
    })
}

fn partial_meta(done: u64, handoff: Option<&str>) -> Value {
    json!({
        "status": "partial",
        "summary": format!("Phases 1-{done} done."),
        "artifacts": [
            {"type": "summary", "path": SUMMARY, "summary": "Phase log"},
            {"type": "implementation", "path": "src/feature.rs", "summary": "The feature"}
        ],
        "partial_progress": {"phases_completed": done, "phases_total": 3, "handoff_path": handoff, "details": "more to do"},
        "metadata": {"session_id": "{session_id}", "phases_completed": done, "phases_total": 3}
    })
}

fn step_writing(files: &[(&str, &str)], phases: &[&str], metadata: Value) -> Value {
    let write: serde_json::Map<String, Value> = files.iter().map(|(p, c)| ((*p).to_owned(), Value::from(*c))).collect();
    json!({"write": write, "complete_phases": phases, "summary": "phase work", "metadata": metadata})
}

struct CommitView {
    subject: String,
    message: String,
    files: Vec<String>,
}

/// The commits made after the two setup commits, oldest first.
fn commits(repo: &TestRepo) -> Vec<CommitView> {
    let all = repo.git(&["rev-list", "--reverse", "HEAD"]);
    all.lines()
        .skip(2)
        .map(|id| {
            let message = repo.git(&["log", "-1", "--format=%B", id]);
            let files = repo.git(&["show", "--name-only", "--format=", id]).lines().map(str::to_owned).collect();
            CommitView { subject: message.lines().next().unwrap_or_default().to_owned(), message, files }
        })
        .collect()
}

fn trailers(repo: &TestRepo, message: &str) -> String {
    let path = repo.home().join("msg.txt");
    std::fs::write(&path, message).expect("msg");
    repo.git(&["interpret-trailers", "--parse", path.to_str().expect("utf8")])
}

fn state_entry(repo: &TestRepo) -> Value {
    repo.state_entry(350)
}

fn todo_block(repo: &TestRepo) -> String {
    let todo = repo.read("specs/TODO.md");
    let start = todo.find("### 350.").expect("block");
    todo[start..].split("\n---").next().expect("block").to_owned()
}

fn assert_clean_end(repo: &TestRepo, before: &(String, String, String, String, String)) {
    assert_eq!(&user_work(repo), before, "the user's own work changed");
    let run_files: Vec<String> = commits(repo).into_iter().flat_map(|c| c.files).collect();
    for line in &run_files {
        let name = line.rsplit('/').next().unwrap_or(line);
        assert!(
            name != ".return-meta.json"
                && !name.starts_with(".postflight-")
                && line != "scratch.txt"
                && line != "docs/guide.md"
                && line != "README.md"
                && line != ".postflight.json",
            "committed something that is not the task's: {line}"
        );
    }
}

fn assert_transients_gone(repo: &TestRepo) {
    for f in [".return-meta.json", ".postflight-pending", ".postflight-loop-guard"] {
        assert!(!repo.exists(&format!("specs/350_add_feature/{f}")), "{f} left behind");
    }
}

#[test]
fn implement_implemented_first_time_completes_and_commits_only_task_paths() {
    let repo = setup();
    let before = user_work(&repo);
    let steps = json!([step_writing(
        &[("src/feature.rs", "pub fn feature() {}\n")],
        &["1", "2", "3"],
        implemented_meta(json!([
            {"type": "implementation", "path": "src/feature.rs", "summary": "The feature"},
            {"type": "summary", "path": SUMMARY, "summary": "Phase log"}
        ]))
    )]);
    let out = implement(&repo, steps, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let e = state_entry(&repo);
    assert_eq!(e["status"], "completed");
    assert_eq!(e["completed"], NOW);
    assert_eq!(e["session_id"], SESSION);
    assert_eq!(e["completion_summary"], "Added the feature with tests.");
    assert_eq!(e["roadmap_items"], json!(["Feature X shipped"]));
    let paths: Vec<&str> =
        e["artifacts"].as_array().expect("artifacts").iter().map(|a| a["path"].as_str().expect("path")).collect();
    assert_eq!(paths, [PLAN, SUMMARY, "src/feature.rs"]);
    let block = todo_block(&repo);
    assert!(block.contains("- **Status**: [COMPLETED]"), "{block}");
    assert!(block.contains(&format!("- **Summary**: [implementation-summary-20260316.md]({SUMMARY})")), "{block}");
    assert!(repo.read(PLAN).contains("- **Status**: [COMPLETED]"));
    // Task 351's entry in TODO.md is untouched.
    assert!(repo.read("specs/TODO.md").contains(" **Status**: [PLANNED] (waits for 350)"));

    let c = commits(&repo);
    assert_eq!(c.len(), 1, "{:?}", c.iter().map(|c| &c.subject).collect::<Vec<_>>());
    assert_eq!(c[0].subject, "task 350: complete implementation");
    let mut files = c[0].files.clone();
    files.sort();
    assert_eq!(
        files,
        [
            "specs/350_add_feature/plans/implementation-001.md",
            SUMMARY,
            "specs/TODO.md",
            "specs/state.json",
            "src/feature.rs"
        ]
    );
    let t = trailers(&repo, &c[0].message);
    assert!(t.contains(&format!("Session: {SESSION}")), "{t}");
    assert!(t.contains(&format!("Co-authored-by: {IDENTITY}")), "{t}");
    assert!(c[0].message.contains("Added the feature with tests."), "{}", c[0].message);
    assert_transients_gone(&repo);
    assert_clean_end(&repo, &before);
}

#[test]
fn implement_partial_then_implemented_commits_each_iteration_and_passes_resume_info() {
    let repo = setup();
    let before = user_work(&repo);
    let record = repo.home().join("delegations.jsonl");
    let record = record.to_str().expect("utf8");
    let handoff = "specs/350_add_feature/handoffs/phase-2-handoff-20260316.md";
    let mut first = step_writing(
        &[("src/feature.rs", "pub fn feature() {}\n"), (handoff, "# Handoff\n")],
        &["1"],
        partial_meta(1, Some(handoff)),
    );
    first["record_delegation"] = json!(record);
    let mut second = step_writing(
        &[("src/feature_test.rs", "#[test] fn t() {}\n")],
        &["2", "3"],
        implemented_meta(
            json!([{"type": "summary", "path": SUMMARY, "summary": "log"}, {"type": "implementation", "path": "src/feature_test.rs", "summary": "tests"}]),
        ),
    );
    second["record_delegation"] = json!(record);
    let out = implement(&repo, json!([first, second]), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("--json prints one object");
    assert_eq!(report["status"], "completed");
    assert_eq!(report["iterations"], 2);
    assert_eq!(report["session_id"], SESSION);
    assert_eq!(report["commits"].as_array().expect("commits").len(), 2);

    let delegations: Vec<Value> = std::fs::read_to_string(record)
        .expect("record")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(delegations.len(), 2);
    assert_eq!((delegations[0]["iteration"].clone(), delegations[0]["resume_phase"].clone()), (json!(1), Value::Null));
    assert_eq!((delegations[1]["iteration"].clone(), delegations[1]["resume_phase"].clone()), (json!(2), json!(2)));
    assert_eq!(delegations[1]["handoff_path"], handoff);
    assert_eq!(delegations[0]["session_id"], SESSION);

    let c = commits(&repo);
    let subjects: Vec<&str> = c.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(subjects, ["task 350: iteration 1 partial progress", "task 350: complete implementation"]);
    // The iteration commit carries the code and the handoff (D12, D17), and the preflight status.
    for f in ["src/feature.rs", handoff, "specs/state.json", "specs/TODO.md", PLAN, SUMMARY] {
        assert!(c[0].files.iter().any(|x| x == f), "{f} not in {:?}", c[0].files);
    }
    assert!(c[1].files.iter().any(|x| x == "src/feature_test.rs"), "{:?}", c[1].files);
    let e = state_entry(&repo);
    assert_eq!(e["status"], "completed");
    assert!(e.get("resume_phase").is_none(), "resume_phase cleared on completion");
    let summaries = e["artifacts"].as_array().expect("a").iter().filter(|a| a["type"] == "summary").count();
    assert_eq!(summaries, 1);
    assert_eq!(todo_block(&repo).matches("**Summary**").count(), 1);
    assert_transients_gone(&repo);
    assert_clean_end(&repo, &before);
}

#[test]
fn implement_partial_forever_stops_at_max_iterations_with_exit_3() {
    let repo = setup();
    let before = user_work(&repo);
    let steps = json!([step_writing(&[("src/feature.rs", "pub fn feature() {}\n")], &["1"], partial_meta(1, None))]);
    let out = implement(&repo, steps, &["--max-iterations", "3"]);
    assert_eq!(out.status.code(), Some(3), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("run `xtask implement 350` to resume"), "{}", render(&out));
    // Each iteration appends to the summary, so every iteration has something to commit.
    let subjects: Vec<String> = commits(&repo).into_iter().map(|c| c.subject).collect();
    assert_eq!(
        subjects,
        [
            "task 350: iteration 1 partial progress",
            "task 350: iteration 2 partial progress",
            "task 350: partial implementation (phases 1-1 of 3)"
        ]
    );
    let e = state_entry(&repo);
    assert_eq!(e["status"], "implementing");
    assert_eq!(e["resume_phase"], 2);
    assert!(todo_block(&repo).contains("- **Status**: [IMPLEMENTING]"));
    assert!(todo_block(&repo).contains("- **Summary**:"));
    assert!(repo.read(PLAN).contains("- **Status**: [PARTIAL]"));
    assert_transients_gone(&repo);
    assert_clean_end(&repo, &before);
}

#[test]
fn implement_partial_needing_review_stops_at_once_with_exit_4() {
    let repo = setup();
    let before = user_work(&repo);
    let mut meta = partial_meta(2, None);
    meta["requires_user_review"] = json!(true);
    meta["review_reason"] = json!("The spec contradicts itself about \"errors\".");
    let out = implement(&repo, json!([step_writing(&[("src/feature.rs", "x\n")], &["1", "2"], meta)]), &[]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    let e = state_entry(&repo);
    assert_eq!(e["status"], "implementing");
    assert_eq!(e["resume_phase"], 3);
    assert_eq!(e["review_reason"], "The spec contradicts itself about \"errors\".");
    let c = commits(&repo);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].subject, "task 350: partial implementation (phases 1-2 of 3)");
    let mut files = c[0].files.clone();
    files.sort();
    assert_eq!(files, [PLAN, SUMMARY, "specs/TODO.md", "specs/state.json", "src/feature.rs"]);
    assert_transients_gone(&repo);
    assert_clean_end(&repo, &before);
}

#[test]
fn implement_failed_records_the_reason_and_keeps_implementing() {
    let repo = setup();
    let before = user_work(&repo);
    let meta = json!({"status": "failed", "summary": "Could not build.", "artifacts": [],
        "errors": [{"message": "cargo build failed: E0308", "recoverable": true}]});
    let out = implement(&repo, json!([{"metadata": meta}]), &[]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    let e = state_entry(&repo);
    assert_eq!(e["status"], "implementing");
    assert_eq!(e["failure_reason"], "cargo build failed: E0308");
    assert!(todo_block(&repo).contains("[IMPLEMENTING]"));
    assert!(repo.read(PLAN).contains("- **Status**: [IMPLEMENTING]"));
    let c = commits(&repo);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].subject, "task 350: implementation failed");
    let mut files = c[0].files.clone();
    files.sort();
    assert_eq!(files, [PLAN, "specs/TODO.md", "specs/state.json"]);
    assert!(c[0].message.contains("cargo build failed: E0308"));
    assert_transients_gone(&repo);
    assert_clean_end(&repo, &before);
}

#[test]
fn implement_blocked_links_summary_in_state_only() {
    let repo = setup();
    let before = user_work(&repo);
    let meta = json!({"status": "blocked", "summary": "Needs an API key.",
        "artifacts": [{"type": "summary", "path": SUMMARY, "summary": "log"}],
        "errors": [{"message": "missing_dependency: no API key", "recoverable": false}]});
    let out = implement(&repo, json!([{"summary": "blocked at phase 1", "metadata": meta}]), &[]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    let e = state_entry(&repo);
    assert_eq!(e["status"], "implementing");
    assert_eq!(e["blocked_reason"], "missing_dependency: no API key");
    assert!(e["artifacts"].as_array().expect("a").iter().any(|a| a["path"] == SUMMARY));
    assert!(!todo_block(&repo).contains("**Summary**"));
    let c = commits(&repo);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].subject, "task 350: implementation blocked");
    let mut files = c[0].files.clone();
    files.sort();
    assert_eq!(files, [PLAN, SUMMARY, "specs/TODO.md", "specs/state.json"]);
    assert_clean_end(&repo, &before);
}

#[test]
fn implement_missing_metadata_keeps_marker_and_resumes_with_same_session() {
    let repo = setup();
    let before = user_work(&repo);
    let out = implement(&repo, json!([{"write": {"src/feature.rs": "x\n"}}]), &[]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote no metadata"), "{}", render(&out));
    assert_eq!(state_entry(&repo)["status"], "implementing");
    assert!(repo.exists("specs/350_add_feature/.postflight-pending"), "marker kept for resume");
    let c = commits(&repo);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].subject, "task 350: implementation failed");
    // The rerun picks the marker up: same session even with another XTASK_SESSION_ID.
    let script = repo.home().join("script.json");
    let steps = json!({"steps": [step_writing(&[], &["1", "2", "3"], implemented_meta(json!([{"type": "summary", "path": SUMMARY}])))]});
    std::fs::write(&script, steps.to_string()).expect("script");
    let agent = format!("'{}' demo-agent", env!("CARGO_BIN_EXE_xtask"));
    let out = repo
        .xtask(&["implement", "350", "--agent", &agent, "--json"])
        .env("XTASK_DEMO_SCRIPT", &script)
        .env("XTASK_SESSION_ID", "sess_1773699999_ffffff")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["session_id"], SESSION);
    assert_eq!(state_entry(&repo)["status"], "completed");
    assert_transients_gone(&repo);
    assert_clean_end(&repo, &before);
}

#[test]
fn implement_invalid_metadata_exits_4_and_keeps_the_evidence() {
    let repo = setup();
    let before = user_work(&repo);
    let out = implement(&repo, json!([{"metadata_raw": "{\"status\": \"implemented\", oops"}]), &[]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("invalid metadata in specs/350_add_feature/.return-meta.json"), "{}", render(&out));
    assert!(stdout.contains(":1:"), "names the position: {}", render(&out));
    assert!(repo.exists("specs/350_add_feature/.return-meta.json"), "evidence kept");
    assert!(repo.exists("specs/350_add_feature/.postflight-pending"), "marker kept");
    assert_eq!(state_entry(&repo)["status"], "implementing");
    assert_clean_end(&repo, &before);
}

#[test]
fn implement_json_on_stdout_warns_and_reads_the_file() {
    let repo = setup();
    let before = user_work(&repo);
    let meta = implemented_meta(json!([{"type": "summary", "path": SUMMARY}]));
    let step = json!({"complete_phases": ["1", "2", "3"], "summary": "done", "metadata": meta, "stdout": "{\"status\": \"implemented\"}\n"});
    let out = implement(&repo, json!([step]), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("printed JSON on stdout"), "{}", render(&out));
    assert_clean_end(&repo, &before);
}

#[test]
fn implement_timeout_kills_the_agent_and_counts_as_partial() {
    let repo = setup();
    let before = user_work(&repo);
    let step = json!({"write": {"src/feature.rs": "x\n"}, "complete_phases": ["1"], "sleep_ms": 60000,
        "metadata": implemented_meta(json!([]))});
    let out = implement(&repo, json!([step]), &["--timeout", "1", "--max-iterations", "1"]);
    assert_eq!(out.status.code(), Some(3), "{}", render(&out));
    let e = state_entry(&repo);
    assert_eq!(e["status"], "implementing");
    assert_eq!(e["resume_phase"], 2);
    assert!(repo.read(PLAN).contains("- **Status**: [PARTIAL]"));
    let c = commits(&repo);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].subject, "task 350: partial implementation (phases 1-1 of 3)");
    assert!(!repo.exists("specs/350_add_feature/.return-meta.json"), "the killed agent never wrote metadata");
    assert_clean_end(&repo, &before);
}

#[test]
fn implement_killed_mid_run_resumes_with_same_session_and_no_duplicates() {
    let repo = setup();
    let before = user_work(&repo);
    let pid_file = repo.home().join("agent.pgid");
    let record = repo.home().join("delegations.jsonl");
    let mut slow = step_writing(&[("src/feature.rs", "pub fn feature() {}\n")], &["1"], partial_meta(1, None));
    slow["sleep_ms"] = json!(60000);
    slow["pid_file"] = json!(pid_file.to_str().expect("utf8"));
    slow["record_delegation"] = json!(record.to_str().expect("utf8"));
    let mut done = step_writing(
        &[],
        &["2", "3"],
        implemented_meta(
            json!([{"type": "summary", "path": SUMMARY}, {"type": "implementation", "path": "src/feature.rs"}]),
        ),
    );
    done["record_delegation"] = json!(record.to_str().expect("utf8"));
    let script = repo.home().join("script.json");
    std::fs::write(&script, json!({"steps": [slow, done]}).to_string()).expect("script");
    let agent = format!("'{}' demo-agent", env!("CARGO_BIN_EXE_xtask"));
    let mut child =
        repo.xtask(&["implement", "350", "--agent", &agent]).env("XTASK_DEMO_SCRIPT", &script).spawn().expect("spawn");
    crate::support::wait_until(std::time::Duration::from_secs(60), "the agent never started", || pid_file.exists());
    child.kill().expect("SIGKILL the tool");
    let _ = child.wait();
    let pgid = std::fs::read_to_string(&pid_file).expect("pgid").trim().to_owned();
    crate::support::kill_process_group(&pgid);
    // The files are valid and say implementing; the marker is there.
    assert_eq!(state_entry(&repo)["status"], "implementing");
    assert!(repo.exists("specs/350_add_feature/.postflight-pending"));

    let out = repo
        .xtask(&["implement", "350", "--agent", &agent, "--json"])
        .env("XTASK_DEMO_SCRIPT", &script)
        .output()
        .expect("rerun");
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["session_id"], SESSION);
    assert_eq!(report["iterations"], 2, "the count continues");
    let delegations: Vec<Value> = std::fs::read_to_string(&record)
        .expect("record")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(delegations.iter().map(|d| d["iteration"].as_u64().expect("n")).collect::<Vec<_>>(), [1, 2]);
    let e = state_entry(&repo);
    let paths: Vec<&str> =
        e["artifacts"].as_array().expect("a").iter().map(|a| a["path"].as_str().expect("p")).collect();
    let mut dedup = paths.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(paths.len(), dedup.len(), "duplicated artifacts: {paths:?}");
    assert_eq!(e["started"], NOW);
    assert_transients_gone(&repo);
    assert_clean_end(&repo, &before);
}

#[test]
fn implement_refuses_bad_starts_and_changes_nothing() {
    let repo = setup();
    let before = repo.snapshot();
    let agent = "true";
    for (args, needle) in [
        (vec!["implement", "352", "--agent", agent], "cannot be implemented"),
        (vec!["implement", "999", "--agent", agent], "task 999 not found"),
        (vec!["implement", "0350", "--agent", agent], "not a task number"),
        (vec!["implement", "350.0", "--agent", agent], "not a task number"),
    ] {
        let out = repo.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", render(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{args:?}: {}", render(&out));
        assert_eq!(before, repo.snapshot(), "{args:?} changed a file");
    }
    // No plan: refused with the advice to plan first.
    std::fs::remove_file(repo.file("specs/351_second_feature/plans/implementation-001.md")).expect("rm");
    let before = repo.snapshot();
    let out = repo.run(&["implement", "351", "--agent", agent]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plan the task first"), "{}", render(&out));
    assert_eq!(before, repo.snapshot());
}

#[test]
fn implement_dry_run_prints_diffs_and_changes_nothing() {
    let repo = setup();
    let before = repo.snapshot();
    let out = repo.run(&["implement", "350", "--agent", "true", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "+++ b/specs/state.json",
        "-      \"status\": \"planned\",",
        "+      \"status\": \"implementing\",",
        "+++ b/specs/TODO.md",
        "+- **Status**: [IMPLEMENTING]",
        "+++ b/specs/350_add_feature/.postflight-pending",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    assert_eq!(before, repo.snapshot());
}

/// Runs one jq filter over `input` with string args and JSON args, like the seed's pipeline.
fn jq(input: &str, filter: &str, args: &[(&str, &str)], json_args: &[(&str, &str)]) -> String {
    use std::io::Write;
    let mut cmd = std::process::Command::new("jq");
    for (k, v) in args {
        cmd.args(["--arg", k, v]);
    }
    for (k, v) in json_args {
        cmd.args(["--argjson", k, v]);
    }
    let mut child = cmd
        .arg(filter)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("jq 1.6 is installed (CI installs it)");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("jq");
    assert!(out.status.success(), "jq failed on {filter}");
    String::from_utf8(out.stdout).expect("utf8")
}

#[test]
fn implement_state_json_equals_the_seeds_own_jq_stages_byte_for_byte() {
    let repo = setup();
    let summary_text = "Phase log with \"quotes\", a backslash \\ and ünïcode";
    let meta = json!({
        "status": "implemented",
        "summary": "done",
        "artifacts": [
            {"type": "implementation", "path": "src/feature.rs", "summary": "The feature"},
            {"type": "summary", "path": SUMMARY, "summary": summary_text}
        ],
        "completion_data": {"completion_summary": "Added the feature.", "roadmap_items": ["Ship it"]},
        "metadata": {"phases_completed": 3, "phases_total": 3}
    });
    let before = repo.read("specs/state.json");
    let step = json!({"write": {"src/feature.rs": "x\n"}, "complete_phases": ["1", "2", "3"], "summary": "log", "metadata": meta});
    let out = implement(&repo, json!([step]), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));

    let sel = "(.active_projects[] | select(.project_number == 350))";
    // Stage 2 (preflight).
    let s = jq(
        &before,
        &format!("{sel} |= . + {{status: $status, last_updated: $ts, session_id: $sid, started: $ts}}"),
        &[("ts", NOW), ("status", "implementing"), ("sid", SESSION)],
        &[],
    );
    // Stage 7 (implemented, non-meta).
    let s = jq(
        &s,
        &format!("{sel} |= . + {{status: $status, last_updated: $ts, completed: $ts}}"),
        &[("ts", NOW), ("status", "completed")],
        &[],
    );
    let s = jq(&s, &format!("{sel}.completion_summary = $summary"), &[("summary", "Added the feature.")], &[]);
    let s = jq(&s, &format!("{sel}.roadmap_items = $items"), &[], &[("items", "[\"Ship it\"]")]);
    // Stage 8 (link artifacts).
    let s = jq(
        &s,
        &format!("{sel}.artifacts = [{sel}.artifacts // [] | .[] | select(.type == \"summary\" | not)]"),
        &[],
        &[],
    );
    let s = jq(
        &s,
        &format!("{sel}.artifacts += [{{\"path\": $path, \"type\": \"summary\", \"summary\": $summary}}]"),
        &[("path", SUMMARY), ("summary", summary_text)],
        &[],
    );
    let s = jq(
        &s,
        &format!("{sel}.artifacts += [{{\"path\": $path, \"type\": $type, \"summary\": $summary}}]"),
        &[("path", "src/feature.rs"), ("type", "implementation"), ("summary", "The feature")],
        &[],
    );
    assert_eq!(repo.read("specs/state.json"), s, "the tool's state.json differs from the seed's jq pipeline");
}

#[test]
fn preflight_then_postflight_split_for_an_orchestrating_session() {
    let repo = setup();
    let before = user_work(&repo);
    let out = repo.run(&["preflight", "350"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let delegation: Value = serde_json::from_slice(&out.stdout).expect("preflight prints the delegation JSON");
    assert_eq!(delegation["session_id"], SESSION);
    assert_eq!(delegation["iteration"], 1);
    assert_eq!(delegation["resume_phase"], Value::Null);
    assert_eq!(delegation["metadata_file_path"], "specs/350_add_feature/.return-meta.json");
    assert_eq!(delegation["plan_path"], PLAN);
    assert_eq!(delegation["task_context"]["task_name"], "add_feature");
    assert_eq!(state_entry(&repo)["status"], "implementing");
    let marker: Value = serde_json::from_str(&repo.read("specs/350_add_feature/.postflight-pending")).expect("marker");
    assert_eq!(marker["session_id"], SESSION);
    assert_eq!(marker["task_number"], 350);
    assert_eq!(marker["operation"], "implement");
    assert_eq!(
        repo.read(".git/postflight-pending/350").trim(),
        "specs/350_add_feature/.postflight-pending",
        "indexed for the hook"
    );

    // The orchestrating session's agent does the work and writes the metadata.
    repo.write("src/feature.rs", "pub fn feature() {}\n");
    repo.write(SUMMARY, "# Summary\n");
    let meta = implemented_meta(
        json!([{"type": "summary", "path": SUMMARY}, {"type": "implementation", "path": "src/feature.rs"}]),
    );
    repo.write("specs/350_add_feature/.return-meta.json", &meta.to_string());
    let out = repo.run(&["postflight", "350", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["status"], "completed");
    assert_eq!(state_entry(&repo)["status"], "completed");
    let c = commits(&repo);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].subject, "task 350: complete implementation");
    assert!(c[0].files.iter().any(|f| f == "src/feature.rs"));
    assert!(!repo.exists(".git/postflight-pending/350"), "unindexed by cleanup");
    assert_transients_gone(&repo);
    assert_clean_end(&repo, &before);
    // Without a pending run there is nothing to record.
    let out = repo.run(&["postflight", "350"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no pending postflight"), "{}", render(&out));
}

#[test]
fn implement_commit_failure_is_reported_and_loses_no_ledger_state() {
    let repo = setup();
    repo.write(".git/hooks/pre-commit", "#!/bin/sh\necho 'pre-commit: refusing for the test' >&2\nexit 1\n");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(repo.file(".git/hooks/pre-commit"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let steps = json!([step_writing(
        &[("src/feature.rs", "x\n")],
        &["1", "2", "3"],
        implemented_meta(json!([{"type": "summary", "path": SUMMARY}]))
    )]);
    let out = implement(&repo, steps.clone(), &[]);
    // The outcome stands, but a run whose commit failed never exits 0 (issue 11: exit 5).
    assert_eq!(out.status.code(), Some(5), "{}", render(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the task's commit failed"), "{}", render(&out));
    assert!(stderr.contains("pre-commit: refusing for the test"), "the hook's output is shown: {}", render(&out));
    assert!(stderr.contains("xtask commit 350 -m 'task 350: complete implementation' -- "), "{}", render(&out));
    assert!(commits(&repo).is_empty());
    assert_eq!(state_entry(&repo)["status"], "completed", "the ledger is recorded even though the commit failed");
    assert!(todo_block(&repo).contains("[COMPLETED]"));
    assert_transients_gone(&repo);

    // --json says so too; the printed command finishes the job once the hook lets it.
    let repo = setup();
    repo.write(".git/hooks/pre-commit", "#!/bin/sh\n[ -f allow ] && exit 0\necho 'pre-commit: refusing' >&2\nexit 1\n");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(repo.file(".git/hooks/pre-commit"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let out = implement(&repo, steps, &["--json"]);
    assert_eq!(out.status.code(), Some(5), "{}", render(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["status"], "completed");
    assert_eq!(report["commits"], json!([]));
    assert!(report["commit_error"].as_str().is_some_and(|e| e.contains("pre-commit")), "{report}");
    let command = report["commit_command"].as_str().expect("command").to_owned();
    repo.write("allow", "");
    let words: Vec<String> = shell_words(&command);
    assert_eq!(words[0], "xtask");
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let out = repo.run(&args);
    assert_eq!(out.status.code(), Some(0), "{command}: {}", render(&out));
    let c = commits(&repo);
    assert_eq!(c.len(), 1, "{command}");
    assert_eq!(c[0].subject, "task 350: complete implementation");
    assert!(c[0].files.iter().any(|f| f == SUMMARY), "{:?}", c[0].files);
}

/// Splits a command line printed with POSIX single quotes into its words.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for ch in line.chars() {
        match ch {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}

#[test]
fn demo_runs_the_main_job_and_leaves_the_users_work_alone() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("demo");
    let repo = TestRepo::empty();
    let out = repo
        .xtask(&["demo", "--dir", dir.to_str().expect("utf8")])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("demo");
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "task 1: completed",
        "task 1: iteration 1 partial progress",
        "task 1: complete implementation",
        " M CHANGELOG.md",
        "M  README.md",
        "?? notes.txt",
        "Session: ",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?}:\n{}", render(&out));
    }
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("specs/state.json")).expect("state")).expect("json");
    assert_eq!(state["active_projects"][1]["status"], "completed");
    assert_eq!(state["active_projects"][0]["status"], "planned", "the other task is untouched");
}

#[test]
fn implement_refuses_a_task_that_a_live_run_holds() {
    let repo = setup();
    let pid_file = repo.home().join("agent.pgid");
    // The live run's agent writes nothing but its pid file before it sleeps, so the snapshots
    // below can only differ if the refused run changed something.
    let slow =
        json!({"pid_file": pid_file.to_str().expect("utf8"), "sleep_ms": 60000, "metadata": partial_meta(1, None)});
    let script = repo.home().join("script.json");
    std::fs::write(&script, json!({"steps": [slow]}).to_string()).expect("script");
    let agent = format!("'{}' demo-agent", env!("CARGO_BIN_EXE_xtask"));
    let mut first =
        repo.xtask(&["implement", "350", "--agent", &agent]).env("XTASK_DEMO_SCRIPT", &script).spawn().expect("spawn");
    crate::support::wait_until(std::time::Duration::from_secs(60), "the agent never started", || pid_file.exists());
    let before = repo.snapshot();
    let second = repo.run(&["implement", "350", "--agent", "true"]);
    assert_eq!(second.status.code(), Some(2), "{}", render(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("being implemented by another postflight run"),
        "{}",
        render(&second)
    );
    assert_eq!(before, repo.snapshot(), "the refused run changed a file");
    first.kill().expect("kill");
    let _ = first.wait();
    let pgid = std::fs::read_to_string(&pid_file).expect("pgid").trim().to_owned();
    crate::support::kill_process_group(&pgid);
}

/// The sample repository with a ledger of over a megabyte per file (1,000 more tasks with long
/// descriptions), which postflight handles with its threaded paths: HEAD's files read ahead,
/// the new files written as blobs while they are synced, the two files committed on threads.
fn setup_large() -> TestRepo {
    let repo = TestRepo::new();
    let mut state: Value = serde_json::from_str(&repo.read("specs/state.json")).expect("json");
    let mut todo = repo.read("specs/TODO.md");
    let text = "Filler task of a large ledger. ".repeat(40);
    for n in 1000..2000 {
        state["active_projects"].as_array_mut().expect("array").push(json!({
            "project_number": n,
            "project_name": format!("filler_{n}"),
            "status": "completed",
            "language": "general",
            "description": text,
        }));
        todo.push_str(&format!("\n### {n}. Filler {n}\n- **Status**: [COMPLETED]\n\n{text}\n\n---\n"));
    }
    repo.write("specs/state.json", &(serde_json::to_string_pretty(&state).expect("json") + "\n"));
    repo.write("specs/TODO.md", &todo);
    assert!(std::fs::metadata(repo.file("specs/state.json")).expect("state").len() > 1 << 20);
    assert!(std::fs::metadata(repo.file("specs/TODO.md")).expect("todo").len() > 1 << 20);
    repo.write(".postflight.json", &format!("{{\"agent_identity\": \"{IDENTITY}\"}}\n"));
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "project files and a large ledger"]);
    repo
}

fn implement_completed(repo: &TestRepo) {
    let steps = json!([step_writing(
        &[("src/feature.rs", "pub fn feature() {}\n")],
        &["1", "2", "3"],
        implemented_meta(json!([{"type": "summary", "path": SUMMARY, "summary": "Phase log"}]))
    )]);
    let out = implement(repo, steps, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(state_entry(repo)["status"], "completed");
    let fsck = repo.command("git").args(["fsck", "--no-progress"]).output().expect("git fsck");
    assert!(fsck.status.success(), "{}", render(&fsck));
}

#[test]
fn implement_on_a_large_ledger_commits_the_files_as_written() {
    let repo = setup_large();
    implement_completed(&repo);
    // Nothing else changed the ledger: the commit holds the files exactly as they are now.
    for file in ["specs/state.json", "specs/TODO.md"] {
        assert_eq!(repo.git(&["show", &format!("HEAD:{file}")]), repo.read(file), "{file}");
    }
    assert_eq!(repo.git(&["status", "--porcelain", "--", "specs"]), "");
}

#[test]
fn implement_on_a_large_ledger_leaves_another_tasks_uncommitted_edit_out() {
    let repo = setup_large();
    // Another agent's edits of task 1500, not committed, in both files.
    let state = repo.read("specs/state.json").replacen("Filler task", "Rewritten task", 1);
    let at = state.find("\"project_number\": 1500").expect("1500");
    let state = format!("{}{}", &state[..at], state[at..].replacen("\"completed\"", "\"abandoned\"", 1));
    repo.write("specs/state.json", &state);
    let todo = repo.read("specs/TODO.md");
    let at = todo.find("### 1500.").expect("1500");
    repo.write("specs/TODO.md", &format!("{}{}", &todo[..at], todo[at..].replacen("[COMPLETED]", "[ABANDONED]", 1)));
    implement_completed(&repo);
    assert_eq!(repo.state_entry(1500)["status"], "abandoned", "the edit stays in the work tree");
    let head_state: Value = serde_json::from_str(&repo.git(&["show", "HEAD:specs/state.json"])).expect("json");
    let head_entry = |n: u64| {
        head_state["active_projects"].as_array().expect("array").iter().find(|e| e["project_number"] == n).cloned()
    };
    assert_eq!(head_entry(1500).expect("1500")["status"], "completed", "and out of the commit");
    assert_eq!(head_entry(350), Some(state_entry(&repo)), "the task's own entry is committed");
    let head_todo = repo.git(&["show", "HEAD:specs/TODO.md"]);
    assert!(head_todo.contains("### 1500. Filler 1500\n- **Status**: [COMPLETED]"));
    assert!(head_todo.contains("### 350.") && todo_block(&repo).contains("[COMPLETED]"));
    assert!(!repo.git(&["show", "HEAD:specs/state.json"]).contains("Rewritten task"));
}

// ---- Interrupts, `xtask cancel`, recycled pids (issue 11, points 1 and 12) ----

const MARKER: &str = "specs/350_add_feature/.postflight-pending";
const AGENT_LOG: &str = "specs/350_add_feature/.postflight-agent.log";

/// Waits until `ready` holds (at most a minute).
fn wait_until(what: &str, ready: impl FnMut() -> bool) {
    crate::support::wait_for(std::time::Duration::from_secs(60), what, ready);
}

/// `/proc/<pid>/stat`'s state, process group and start time (fields 3, 5, 22).
fn proc_stat(pid: u32) -> Option<(char, u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    Some((fields[0].chars().next()?, fields[2].parse().ok()?, fields[19].parse().ok()?))
}

/// The processes of group `pgid` that still run (zombies, which only wait to be reaped, do not).
fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if proc_stat(pid).is_some_and(|(state, group, _)| group == pgid && state != 'Z' && state != 'X') {
            out.push(pid);
        }
    }
    out
}

/// Sends `sig` to one process (kill(2) with a positive pid; never a group, never 0 or 1).
fn signal(pid: u32, sig: i32) {
    assert!(pid > 1, "refusing to signal pid {pid}");
    let pid = libc::pid_t::try_from(pid).expect("pid");
    // SAFETY: kill(2) with a positive pid signals that one process; no memory is touched.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill {pid}");
}

/// Kills a test's agent group when the test ends, whatever happened.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(g) = self.0 {
            if !group_members(g).is_empty() {
                crate::support::kill_process_group(&g.to_string());
            }
        }
    }
}

fn marker_json(repo: &TestRepo) -> Value {
    serde_json::from_str(&repo.read(MARKER)).expect("the marker is JSON")
}

/// Starts `xtask implement 350` with a shell agent and waits until the agent wrote `started`
/// and the marker names its process group; returns the tool and the group.
fn start_shell_agent(repo: &TestRepo, agent: &str, extra: &[&str]) -> (std::process::Child, u32) {
    let started = repo.home().join("started");
    let _ = std::fs::remove_file(&started);
    let mut args = vec!["implement", "350", "--agent", agent];
    args.extend_from_slice(extra);
    let child = repo
        .xtask(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_until("the agent to start", || started.exists());
    let mut pgid = 0;
    wait_until("the marker to name the agent's group", || {
        pgid = repo.exists(MARKER).then(|| marker_json(repo)["agent_pgid"].as_u64()).flatten().unwrap_or(0) as u32;
        pgid > 1
    });
    (child, pgid)
}

fn quick_completion(repo: &TestRepo) -> Output {
    let steps = json!([step_writing(
        &[("src/feature.rs", "pub fn feature() {}\n")],
        &["1", "2", "3"],
        implemented_meta(json!([{"type": "implementation", "path": "src/feature.rs"}])),
    )]);
    implement(repo, steps, &[])
}

/// Signals a running `implement` and checks the interrupted run: the exit code, the one line,
/// the agent's whole group gone, the marker kept (with the interruption), still implementing.
fn interrupt_and_check(repo: &TestRepo, agent: &str, sig: i32, name: &str, code: i32) {
    let (child, pgid) = start_shell_agent(repo, agent, &[]);
    let _guard = GroupGuard(Some(pgid));
    let members = group_members(pgid);
    assert!(!members.is_empty(), "the agent runs");
    signal(child.id(), sig);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(code), "{name}: {}", render(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("task 350: interrupted; run `xtask implement 350` to resume"), "{}", render(&out));
    assert_eq!(group_members(pgid), Vec::<u32>::new(), "{name}: a process of the agent's group survived");
    for pid in members {
        assert!(proc_stat(pid).is_none_or(|(state, ..)| state == 'Z'), "{name}: agent process {pid} survived");
    }
    assert!(repo.exists(MARKER), "the marker stays");
    let m = marker_json(repo);
    assert_eq!(m["interrupted"]["signal"], name, "{m}");
    assert_eq!(m["agent_pgid"], pgid);
    assert_eq!(state_entry(repo)["status"], "implementing");
    assert!(repo.read(AGENT_LOG).contains(&format!("interrupted by {name}")), "{}", repo.read(AGENT_LOG));
}

fn interrupt_resume_cycle(sig: i32, name: &str, code: i32) {
    let repo = setup();
    let started = repo.home().join("started");
    let late = repo.home().join("late");
    // An agent that ignores nothing, then one that leaves a grandchild behind its back.
    interrupt_and_check(&repo, &format!("echo x > '{}'; sleep 30", started.display()), sig, name, code);
    interrupt_and_check(
        &repo,
        &format!("(sleep 30; touch '{}') & echo x > '{}'; sleep 30", late.display(), started.display()),
        sig,
        name,
        code,
    );
    assert!(!late.exists());
    let out = quick_completion(&repo);
    assert_eq!(out.status.code(), Some(0), "the interrupted run resumes: {}", render(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(resumed)"), "{}", render(&out));
    assert_eq!(state_entry(&repo)["status"], "completed");
    assert_transients_gone(&repo);
}

#[test]
fn implement_interrupted_by_sigint_kills_the_agent_group_exits_130_and_resumes() {
    interrupt_resume_cycle(libc::SIGINT, "SIGINT", 130);
}

#[test]
fn implement_interrupted_by_sigterm_kills_the_agent_group_exits_143_and_resumes() {
    interrupt_resume_cycle(libc::SIGTERM, "SIGTERM", 143);
}

#[test]
fn implement_interrupted_by_sighup_kills_the_agent_group_exits_129_and_resumes() {
    interrupt_resume_cycle(libc::SIGHUP, "SIGHUP", 129);
}

#[test]
fn implement_interrupted_kills_an_agent_that_ignores_sigterm_and_reports_json() {
    let repo = setup();
    let started = repo.home().join("started");
    // `sleep` inherits the ignored SIGTERM: only the SIGKILL after the grace period stops it.
    let agent = format!("trap '' TERM; echo x > '{}'; sleep 30", started.display());
    let (child, pgid) = start_shell_agent(&repo, &agent, &["--json"]);
    let _guard = GroupGuard(Some(pgid));
    signal(child.id(), libc::SIGTERM);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(143), "{}", render(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(report["status"], "interrupted");
    assert_eq!(report["signal"], "SIGTERM");
    assert_eq!(report["task"], 350);
    assert_eq!(group_members(pgid), Vec::<u32>::new(), "the group ignoring SIGTERM was killed");
    assert_eq!(state_entry(&repo)["status"], "implementing");
}

#[test]
fn implement_refuses_while_a_killed_runs_agent_lives_and_cancel_stops_it() {
    let repo = setup();
    let started = repo.home().join("started");
    let starts = repo.home().join("agent-starts");
    let agent = format!("echo start >> '{}'; echo x > '{}'; sleep 60", starts.display(), started.display());
    let (mut child, pgid) = start_shell_agent(&repo, &agent, &[]);
    let _guard = GroupGuard(Some(pgid));
    child.kill().expect("SIGKILL the tool");
    let _ = child.wait();
    assert!(!group_members(pgid).is_empty(), "SIGKILL left the agent running");

    let before = repo.snapshot();
    let out = repo.run(&["implement", "350", "--agent", &agent]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("pid {pgid}")) && stderr.contains("xtask cancel 350"), "{}", render(&out));
    assert_eq!(std::fs::read_to_string(&starts).expect("starts").lines().count(), 1, "no second agent started");
    assert_eq!(before, repo.snapshot(), "the refused run changed a file");
    assert!(!group_members(pgid).is_empty(), "the orphan is left alone");

    let out = repo.run(&["cancel", "350", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["status"], "cancelled");
    assert_eq!(report["agent_pgid"], pgid);
    assert_eq!(group_members(pgid), Vec::<u32>::new(), "cancel waits until the group is gone");
    assert!(repo.exists(MARKER), "the run stays resumable");
    assert_eq!(marker_json(&repo)["interrupted"]["by"], "xtask cancel");
    assert_eq!(state_entry(&repo)["status"], "implementing");

    let out = repo.run(&["cancel", "350"]);
    assert_eq!(out.status.code(), Some(2), "nothing is live any more: {}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run of task 350 is live"), "{}", render(&out));

    let out = quick_completion(&repo);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(state_entry(&repo)["status"], "completed");
    assert_eq!(std::fs::read_to_string(&starts).expect("starts").lines().count(), 1);
}

#[test]
fn cancel_stops_a_live_implement_through_its_xtask() {
    let repo = setup();
    let started = repo.home().join("started");
    let (child, pgid) = start_shell_agent(&repo, &format!("echo x > '{}'; sleep 60", started.display()), &[]);
    let _guard = GroupGuard(Some(pgid));
    let xtask_pid = child.id();
    let out = repo.run(&["cancel", "350"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("stopped xtask (pid {xtask_pid})")),
        "{}",
        render(&out)
    );
    let run = child.wait_with_output().expect("wait");
    assert_eq!(run.status.code(), Some(143), "the run was told SIGTERM: {}", render(&run));
    assert_eq!(group_members(pgid), Vec::<u32>::new());
    assert_eq!(marker_json(&repo)["interrupted"]["signal"], "SIGTERM");
    assert_eq!(state_entry(&repo)["status"], "implementing");
}

#[test]
fn cancel_without_a_run_exits_2() {
    let repo = setup();
    let out = repo.run(&["cancel", "350"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run of task 350 is live"), "{}", render(&out));
}

#[test]
fn implement_resumes_a_marker_whose_pids_were_recycled() {
    use std::os::unix::process::CommandExt;
    let repo = setup();
    // A live process group standing for the recorded agent, and this test process standing for
    // the recorded xtask, both with other start times than recorded: recycled pids.
    let mut other = std::process::Command::new("sleep").arg("60").process_group(0).spawn().expect("spawn");
    let _guard = GroupGuard(Some(other.id()));
    let (_, _, other_start) = proc_stat(other.id()).expect("stat");
    let me = std::process::id();
    let (_, _, my_start) = proc_stat(me).expect("stat");
    let marker = json!({
        "session_id": SESSION, "skill": "postflight", "task_number": 350, "operation": "implement",
        "reason": "r", "created": NOW, "stop_hook_active": false,
        "pid": me, "pid_start": my_start + 1, "timeout": 7200,
        "agent_pgid": other.id(), "agent_pgid_start": other_start + 1
    });
    repo.write(MARKER, &marker.to_string());
    let index = repo.path().join(".git/postflight-pending");
    std::fs::create_dir_all(&index).expect("mkdir");
    std::fs::write(index.join("350"), format!("{MARKER}\n")).expect("index");
    let out = quick_completion(&repo);
    assert_eq!(out.status.code(), Some(0), "a recycled pid is a dead run: {}", render(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(resumed)"), "{}", render(&out));

    // The same marker with the true start time of the group's leader is a live agent.
    let repo = setup();
    let marker = json!({"session_id": SESSION, "task_number": 350, "created": NOW,
        "pid": me, "pid_start": my_start + 1, "agent_pgid": other.id(), "agent_pgid_start": other_start});
    repo.write(MARKER, &marker.to_string());
    let index = repo.path().join(".git/postflight-pending");
    std::fs::create_dir_all(&index).expect("mkdir");
    std::fs::write(index.join("350"), format!("{MARKER}\n")).expect("index");
    let out = quick_completion(&repo);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    let _ = other.kill();
    let _ = other.wait();
}

#[test]
fn implement_signal_during_the_commit_is_deferred_until_the_run_is_recorded() {
    let repo = setup();
    // The pre-commit hook runs as a child of xtask while the final commit is being made.
    let hook = repo.path().join(".git/hooks/pre-commit");
    std::fs::create_dir_all(hook.parent().expect("dir")).expect("mkdir");
    std::fs::write(&hook, "#!/bin/sh\n[ \"$PPID\" -gt 1 ] && kill -s TERM \"$PPID\"\nexit 0\n").expect("hook");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = quick_completion(&repo);
    assert_eq!(out.status.code(), Some(143), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("task 350: completed"), "{}", render(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SIGTERM arrived while the outcome was being recorded"),
        "{}",
        render(&out)
    );
    assert_eq!(state_entry(&repo)["status"], "completed");
    let c = commits(&repo);
    assert_eq!(c.len(), 1, "the commit was finished");
    assert_transients_gone(&repo);
}

#[test]
fn implement_signal_as_the_agent_exits_is_an_interrupt_and_the_resume_uses_its_metadata() {
    let repo = setup();
    let meta = implemented_meta(json!([{"type": "implementation", "path": "src/feature.rs"}]));
    let meta_path = repo.file("specs/350_add_feature/.return-meta.json");
    // The agent finishes its work, then signals its xtask (its parent) and exits at once.
    let agent = format!(
        "mkdir -p src && echo 'pub fn feature() {{}}' > src/feature.rs && printf '%s' '{}' > '{}' && [ \"$PPID\" -gt 1 ] && kill -s INT \"$PPID\"; exit 0",
        meta.to_string().replace("{session_id}", SESSION),
        meta_path.display()
    );
    let out = repo.run(&["implement", "350", "--agent", &agent]);
    assert_eq!(out.status.code(), Some(130), "{}", render(&out));
    assert_eq!(state_entry(&repo)["status"], "implementing");
    assert!(meta_path.exists(), "the agent's metadata is kept for the resume");
    let out = repo.run(&["implement", "350", "--agent", "exit 9"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("using the metadata the interrupted run's agent left"));
    assert_eq!(state_entry(&repo)["status"], "completed");
}

// ---- Real-use hardening (issue 11): time, complete commits, a clean status, artifacts, ----
// ---- timeouts and progress, the user's edits, stale reasons.                            ----

/// `setup()` in the shape of a repository where `xtask init` never ran: no transient names in
/// `.gitignore`.
fn setup_without_init() -> TestRepo {
    let repo = setup();
    repo.write(".gitignore", "/target\n");
    repo.git(&["commit", "-q", "-m", "a .gitignore without postflight's names", "--", ".gitignore"]);
    repo
}

fn report_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("--json: {e}: {}", render(out)))
}

fn warnings_of(report: &Value) -> Vec<String> {
    report["warnings"].as_array().expect("warnings").iter().map(|w| w.as_str().expect("str").to_owned()).collect()
}

#[test]
fn implement_timestamps_are_taken_when_written() {
    let repo = setup();
    let script = repo.home().join("script.json");
    let step = json!({"write": {"src/feature.rs": "x\n"}, "complete_phases": ["1", "2", "3"], "sleep_ms": 2100,
        "metadata": implemented_meta(json!([{"type": "implementation", "path": "src/feature.rs"}]))});
    std::fs::write(&script, json!({"steps": [step]}).to_string()).expect("script");
    let agent = format!("'{}' demo-agent", env!("CARGO_BIN_EXE_xtask"));
    let out = repo
        .xtask(&["implement", "350", "--agent", &agent])
        .env_remove("XTASK_NOW")
        .env("XTASK_DEMO_SCRIPT", &script)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let entry = state_entry(&repo);
    let at = |k: &str| entry[k].as_str().unwrap_or_else(|| panic!("{k}: {entry}")).parse::<jiff::Timestamp>().expect(k);
    let (started, completed, updated) = (at("started"), at("completed"), at("last_updated"));
    assert!(completed.as_second() - started.as_second() >= 2, "started {started}, completed {completed}");
    assert_eq!(updated, completed, "last_updated is the moment the outcome was written");
    let now = jiff::Timestamp::now().as_second();
    assert!((now - completed.as_second()).abs() < 60, "completed {completed} is not now");
}

#[test]
fn implement_commits_the_plans_files_and_names_what_it_leaves_uncommitted() {
    let repo = setup_without_init();
    let plan = PLAN_WITH_FILES.replace("{task}", "350");
    repo.write(PLAN, &plan);
    repo.git(&["commit", "-q", "-m", "plan with files", "--", PLAN]);
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let before = user_work(&repo);
    // The agent writes all three listed files and one more, and reports only the first (the
    // seed reads artifacts[0]).
    let steps = json!([step_writing(
        &[("src/parser.rs", "p\n"), ("src/lexer.rs", "l\n"), ("docs/parser.md", "d\n"), ("src/unlisted.rs", "u\n")],
        &["1", "2", "3"],
        implemented_meta(json!([{"type": "implementation", "path": "src/parser.rs"}]))
    )]);
    let out = implement(&repo, steps, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let c = repo.git(&["rev-list", &format!("{base}..HEAD")]);
    assert_eq!(c.lines().count(), 1);
    let c = [CommitView {
        subject: String::new(),
        message: String::new(),
        files: repo.git(&["show", "--name-only", "--format=", "HEAD"]).lines().map(str::to_owned).collect(),
    }];
    for f in ["src/parser.rs", "src/lexer.rs", "docs/parser.md", PLAN, SUMMARY, "specs/state.json", "specs/TODO.md"] {
        assert!(c[0].files.iter().any(|x| x == f), "{f} not committed: {:?}", c[0].files);
    }
    assert!(!c[0].files.iter().any(|x| x == "src/unlisted.rs"), "{:?}", c[0].files);
    let warnings = warnings_of(&report_of(&out));
    assert!(
        warnings.iter().any(|w| w.starts_with("left uncommitted: src/unlisted.rs")),
        "the unlisted file is named: {warnings:?}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: left uncommitted: src/unlisted.rs"));
    assert_clean_end(&repo, &before);
}

/// Task 350's plan with `**Files to modify**:` lists (as the seed's planner writes them).
const PLAN_WITH_FILES: &str = "# Implementation Plan: Task #{task}

- **Task**: {task} - add_feature
- **Status**: [PLANNED]

## Implementation Phases

### Phase 1: Scaffold [NOT STARTED]

**Files to modify**:
- `src/parser.rs` - new file, near `parse_items`
- `src/lexer.rs` - the tokens

**Verification**:
- `cargo test` passes

---

### Phase 2: Docs [NOT STARTED]

**Files to modify**:
- `docs/parser.md` - describe it

---

### Phase 3: Tests [NOT STARTED]

- **Goal:** test it
";

#[test]
fn implement_leaves_nothing_in_git_status_after_any_outcome_without_init() {
    let outcomes: [(&str, Value); 5] = [
        ("completed", implemented_meta(json!([{"type": "summary", "path": SUMMARY}]))),
        ("partial", partial_meta(1, None)),
        (
            "blocked",
            json!({"status": "blocked", "summary": "Needs a decision.", "artifacts": [], "errors": [{"message": "which API?"}]}),
        ),
        ("failed", json!({"status": "failed", "summary": "It broke.", "artifacts": []})),
        ("metadata_missing", Value::Null),
    ];
    for (status, meta) in outcomes {
        let repo = setup_without_init();
        // The bash workflow's `git add -A` committed transient files of the task.
        repo.write("specs/350_add_feature/.return-meta.json", "{\"status\": \"planned\"}\n");
        repo.write("specs/350_add_feature/.postflight-loop-guard", "1\n");
        repo.git(&["add", "-f", "specs/350_add_feature"]);
        repo.git(&["commit", "-q", "-m", "bash workflow leftovers", "--", "specs/350_add_feature"]);
        let status_before = repo.git(&["status", "--porcelain", "--untracked-files=all"]);
        let mut step = json!({"write": {"src/feature.rs": "x\n"}, "complete_phases": ["1"], "summary": "work",
            "metadata": meta});
        if meta_is_null(&step) {
            step.as_object_mut().expect("obj").remove("metadata");
        }
        let out = implement(&repo, json!([step]), &["--json", "--max-iterations", "1"]);
        let report = report_of(&out);
        assert_eq!(report["status"], status, "{}", render(&out));
        let status_after = repo.git(&["status", "--porcelain", "--untracked-files=all"]);
        let new_lines: Vec<&str> = status_after
            .lines()
            .filter(|l| !status_before.lines().any(|b| b == *l))
            .filter(|l| !l.ends_with("src/feature.rs") && !l.contains(".home-for-tests/"))
            .collect();
        assert!(new_lines.is_empty(), "{status}: the run left {new_lines:?} in git status\n{}", render(&out));
        let tracked = repo.git(&["ls-files", "specs/350_add_feature"]);
        assert!(
            !tracked.lines().any(|l| l
                .rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with(".postflight-") || n == ".return-meta.json")),
            "{status}: transient files still tracked:\n{tracked}"
        );
        let head = repo.git(&["ls-tree", "-r", "--name-only", "HEAD", "specs/350_add_feature"]);
        assert!(!head.contains(".return-meta.json") && !head.contains(".postflight-"), "{status}: {head}");
        // The log stays readable per task, just not in git status.
        assert!(repo.exists("specs/350_add_feature/.postflight-agent.log"), "{status}");
    }
}

fn meta_is_null(step: &Value) -> bool {
    step["metadata"].is_null()
}

#[test]
fn implement_does_not_link_missing_ignored_home_outside_or_deleted_artifacts() {
    let repo = setup();
    repo.write(
        ".gitignore",
        "/target\n.return-meta.json\n.postflight-pending\n.postflight-loop-guard\n*.log\nbuild/\n",
    );
    repo.git(&["commit", "-q", "-m", "ignore build/", "--", ".gitignore"]);
    let inside_abs = repo.file("src/absolute.rs").to_string_lossy().into_owned();
    let artifacts = json!([
        {"type": "summary", "path": SUMMARY},
        {"type": "implementation", "path": "src/feature.rs"},
        {"type": "implementation", "path": inside_abs},
        {"type": "implementation", "path": "~/notes/feature.md"},
        {"type": "implementation", "path": "/etc/hostname"},
        {"type": "implementation", "path": "src/never_written.rs"},
        {"type": "build", "path": "build/out.bin"},
        {"type": "deletion", "path": "src/existing.rs"}
    ]);
    let step = json!({"write": {"src/feature.rs": "x\n", "src/absolute.rs": "a\n", "build/out.bin": "bin"},
        "delete": ["src/existing.rs"], "complete_phases": ["1", "2", "3"], "summary": "done",
        "metadata": implemented_meta(artifacts)});
    let out = implement(&repo, json!([step]), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let report = report_of(&out);
    let warnings = warnings_of(&report).join("\n");
    for needle in [
        "artifact `~/notes/feature.md` is a home-directory path",
        "artifact `/etc/hostname` is not a file of the repository",
        "artifact `src/never_written.rs` does not exist; not linked",
        "artifact `build/out.bin` is ignored by git (.gitignore); not linked",
        "artifact `src/existing.rs` names a file the run deleted; not linked",
    ] {
        assert!(warnings.contains(needle), "missing warning `{needle}` in:\n{warnings}");
    }
    let linked: Vec<String> = state_entry(&repo)["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .map(|a| a.as_str().or_else(|| a["path"].as_str()).expect("path").to_owned())
        .collect();
    assert_eq!(linked, [PLAN, SUMMARY, "src/feature.rs", "src/absolute.rs"], "absolute inside: made relative");
    assert_eq!(report["artifacts"], json!([SUMMARY, "src/feature.rs", "src/absolute.rs"]));
    // The tool's own check agrees with what it linked (the sample's task 352 has a missing
    // report of its own).
    let check = repo.run(&["check"]);
    let findings = String::from_utf8_lossy(&check.stdout);
    assert!(!findings.lines().any(|l| l.contains("task 350")), "{}", render(&check));
}

#[test]
fn implement_reports_a_timeout_and_stops_when_an_invocation_makes_no_progress() {
    // A hung agent: killed at the timeout, not restarted when it changed nothing.
    let repo = setup();
    let hang = json!({"sleep_ms": 30000, "metadata": partial_meta(1, None)});
    let out = implement(&repo, json!([hang]), &["--json", "--timeout", "1", "--max-iterations", "5"]);
    assert_eq!(out.status.code(), Some(3), "{}", render(&out));
    let report = report_of(&out);
    assert_eq!(report["status"], "partial");
    assert_eq!(report["iterations"], 1, "not restarted: {}", render(&out));
    assert_eq!(report["reason"], "timed out after 1s (--timeout 1); killed its process group");
    assert!(warnings_of(&report).iter().any(|w| w.contains("iteration 1 made no progress")), "{}", render(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("timed out after 1s (--timeout 1)"), "{}", render(&out));
    assert!(!stderr.contains("no metadata file"), "a timeout is not a missing metadata file: {}", render(&out));
    let text = implement(&repo, json!([hang]), &["--timeout", "1", "--max-iterations", "1"]);
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .contains("reason      timed out after 1s (--timeout 1); killed its process group"),
        "{}",
        render(&text)
    );

    // A partial invocation that changed nothing stops the loop with that reason.
    let repo = setup();
    let steps = json!([
        step_writing(&[("src/feature.rs", "x\n")], &["1"], partial_meta(1, None)),
        {"metadata": partial_meta(1, None)},
    ]);
    let out = implement(&repo, steps, &["--json", "--max-iterations", "5"]);
    assert_eq!(out.status.code(), Some(3), "{}", render(&out));
    let report = report_of(&out);
    assert_eq!(report["iterations"], 2, "{}", render(&out));
    assert!(
        report["reason"].as_str().is_some_and(|r| r.starts_with("iteration 2 made no progress")),
        "{}",
        render(&out)
    );
    assert_eq!(state_entry(&repo)["resume_phase"], 2);
}

#[test]
fn implement_names_the_users_earlier_edits_that_ride_along() {
    let repo = setup();
    repo.write("src/existing.rs", "// existing\n// the user's unfinished edit\n");
    let steps = json!([step_writing(
        &[
            ("src/existing.rs", "// existing\n// the user's unfinished edit\n// and the agent's\n"),
            ("src/feature.rs", "f\n")
        ],
        &["1", "2", "3"],
        implemented_meta(
            json!([{"type": "implementation", "path": "src/existing.rs"}, {"type": "implementation", "path": "src/feature.rs"}])
        )
    )]);
    let out = implement(&repo, steps, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let warnings = warnings_of(&report_of(&out));
    assert!(
        warnings
            .contains(&"src/existing.rs had uncommitted changes before the run; they are in this commit".to_owned()),
        "{warnings:?}"
    );
    assert!(!warnings.iter().any(|w| w.starts_with("src/feature.rs had")), "{warnings:?}");
    assert!(commits(&repo)[0].files.iter().any(|f| f == "src/existing.rs"));
}

#[test]
fn implement_clears_the_reasons_of_earlier_outcomes() {
    let repo = setup();
    let failed = json!({"metadata": {"status": "failed", "summary": "It broke.", "artifacts": [], "errors": [{"message": "boom"}]}});
    let out = implement(&repo, json!([failed]), &[]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    assert!(state_entry(&repo)["failure_reason"].is_string());
    let blocked = json!({"metadata": {"status": "blocked", "summary": "Waits.", "artifacts": [], "errors": [{"message": "which API?"}]}});
    let out = implement(&repo, json!([blocked]), &[]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    let entry = state_entry(&repo);
    assert!(entry.get("failure_reason").is_none(), "{entry}");
    assert!(entry["blocked_reason"].is_string(), "{entry}");
    let out = implement(
        &repo,
        json!([step_writing(&[("src/feature.rs", "x\n")], &["1"], partial_meta(1, None))]),
        &["--max-iterations", "1"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", render(&out));
    let entry = state_entry(&repo);
    assert!(entry.get("failure_reason").is_none() && entry.get("blocked_reason").is_none(), "{entry}");
    assert_eq!(entry["resume_phase"], 2, "{entry}");
}

/// A plan of the real repository's later convention (`plans/{NN}_{slug}.md`), its status line
/// under a `## Metadata` heading.
const NUMBERED_PLAN: &str = "specs/350_add_feature/plans/02_revised-plan.md";
const NUMBERED_PLAN_TEXT: &str = "# Implementation Plan: Task #350 - Add feature (v2)

## Metadata

- **Task**: 350 - add_feature
- **Status**: [PLANNED]
- **Previous Plan**: plans/implementation-001.md

## Implementation Phases

### Phase 1: Scaffold [NOT STARTED]

- **Status**: [NOT STARTED]

### Phase 2: Core logic [NOT STARTED]

### Phase 3: Tests [NOT STARTED]
";

#[test]
fn implement_finds_a_numbered_plan_and_moves_its_metadata_status_line() {
    let repo = setup();
    repo.write(NUMBERED_PLAN, NUMBERED_PLAN_TEXT);
    repo.git(&["add", NUMBERED_PLAN]);
    repo.git(&["commit", "-q", "-m", "revised plan", "--", NUMBERED_PLAN]);
    let old_plan = repo.read(PLAN);
    let record = repo.home().join("delegations.jsonl");
    let mut step = step_writing(&[], &["1", "2", "3"], implemented_meta(json!([{"type": "summary", "path": SUMMARY}])));
    step["record_delegation"] = json!(record.to_str().expect("utf8"));
    let out = implement(&repo, json!([step]), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let delegation: Value =
        serde_json::from_str(std::fs::read_to_string(&record).expect("record").lines().next().expect("one"))
            .expect("json");
    assert_eq!(delegation["plan_path"], NUMBERED_PLAN, "the newest plan by version, across conventions");
    let plan = repo.read(NUMBERED_PLAN);
    assert!(plan.contains("## Metadata\n\n- **Task**: 350 - add_feature\n- **Status**: [COMPLETED]\n"), "{plan}");
    assert_eq!(repo.read(PLAN), old_plan, "the older plan is left alone");
    let check = repo.run(&["check"]);
    assert!(!String::from_utf8_lossy(&check.stdout).contains("plan-status"), "{}", render(&check));

    // No plan under either name: the refusal names both conventions.
    std::fs::remove_file(repo.file("specs/351_second_feature/plans/implementation-001.md")).expect("rm");
    let out = repo.run(&["implement", "351", "--agent", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("specs/351_second_feature/plans/implementation-*.md and specs/351_second_feature/plans/{NN}_*.md"),
        "{err}"
    );
}

const META: &str = "specs/350_add_feature/.return-meta.json";
const LOOP_COUNTER: &str = "specs/350_add_feature/.postflight-loop-guard";
/// The session of a run of the old workflow, long gone.
const OLD_SESSION: &str = "sess_1770917720_38069f";

/// A marker as the original workflow wrote it (no pid, no metadata_file).
fn legacy_marker(skill: &str, operation: &str) -> String {
    serde_json::to_string_pretty(&json!({
        "session_id": OLD_SESSION, "skill": skill, "task_number": 350, "operation": operation,
        "reason": "Postflight pending: status update, artifact linking, git commit",
        "created": "2026-03-16T15:53:30Z", "stop_hook_active": false
    }))
    .expect("json")
}

/// Runs implement 350 (with `--json` and `extra`) with one implemented step that records its
/// delegation; returns the report and the recorded delegations.
fn implement_recorded(repo: &TestRepo, steps: Vec<Value>, extra: &[&str]) -> (Output, Value, Vec<Value>) {
    let record = repo.home().join("delegations.jsonl");
    let steps: Vec<Value> = steps
        .into_iter()
        .map(|mut s| {
            s["record_delegation"] = json!(record.to_str().expect("utf8"));
            s
        })
        .collect();
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = implement(repo, Value::from(steps), &args);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let delegations = std::fs::read_to_string(&record)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    (out, report, delegations)
}

fn done_step() -> Value {
    step_writing(&[], &["1", "2", "3"], implemented_meta(json!([{"type": "summary", "path": SUMMARY}])))
}

#[test]
fn implement_does_not_resume_a_marker_committed_in_head() {
    let repo = setup();
    repo.write(MARKER, &legacy_marker("skill-implementer", "implement"));
    repo.write(LOOP_COUNTER, "4\n");
    repo.write(META, r#"{"status": "failed", "summary": "an old run's"}"#);
    repo.git(&["add", "-f", MARKER, META, LOOP_COUNTER]);
    repo.git(&["commit", "-q", "-m", "task 350: old workflow's git add -A", "--", MARKER, META, LOOP_COUNTER]);
    let (out, report, delegations) = implement_recorded(&repo, vec![done_step()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(report["session_id"], SESSION, "a new session, not the committed marker's");
    assert_eq!(report["iterations"], 1, "a fresh counter");
    assert_eq!(delegations.len(), 1, "the agent was started");
    assert_eq!(delegations[0]["iteration"], 1);
    assert_eq!(delegations[0]["session_id"], SESSION);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is committed in HEAD"), "{}", render(&out));
    assert_eq!(state_entry(&repo)["status"], "completed");
}

#[test]
fn implement_does_not_resume_a_marker_of_another_operation() {
    let repo = setup();
    repo.write(MARKER, &legacy_marker("skill-planner", "plan"));
    repo.write(LOOP_COUNTER, "3\n");
    let (out, report, delegations) = implement_recorded(&repo, vec![done_step()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(report["session_id"], SESSION);
    assert_eq!(delegations.iter().map(|d| d["iteration"].clone()).collect::<Vec<_>>(), [json!(1)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("left by a `plan` run"), "{}", render(&out));
    assert_transients_gone(&repo);
}

#[test]
fn implement_resume_ignores_the_planners_metadata_and_starts_the_agent() {
    let repo = setup();
    repo.write(MARKER, &legacy_marker("skill-implementer", "implement"));
    repo.write(LOOP_COUNTER, "1\n");
    repo.write(
        META,
        &json!({"status": "planned", "summary": "Plan created", "artifacts": [{"type": "plan", "path": PLAN}],
            "metadata": {"session_id": OLD_SESSION, "agent_type": "planner-agent"}})
        .to_string(),
    );
    let (out, report, delegations) = implement_recorded(&repo, vec![done_step()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(report["session_id"], OLD_SESSION, "a resumable marker is resumed");
    assert_eq!(delegations.len(), 1, "the planner's metadata is no implementation result: the agent ran");
    assert_eq!(delegations[0]["iteration"], 2);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("using the metadata"), "{}", render(&out));
    assert_eq!(state_entry(&repo)["status"], "completed");
}

#[test]
fn implement_resume_with_the_counter_at_the_limit_never_counts_past_it() {
    let repo = setup();
    repo.write(MARKER, &legacy_marker("skill-implementer", "implement"));
    repo.write(LOOP_COUNTER, "4\n");
    let (out, report, delegations) =
        implement_recorded(&repo, vec![step_writing(&[], &["1"], partial_meta(1, None))], &["--max-iterations", "1"]);
    assert_eq!(out.status.code(), Some(3), "{}", render(&out));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    for beyond in ["4/1", "5/1", "2/1"] {
        assert!(!all.contains(beyond), "{beyond}: {}", render(&out));
    }
    assert!(all.contains("1/1"), "{}", render(&out));
    assert_eq!(report["iterations"], 1);
    assert_eq!(
        delegations.iter().map(|d| d["iteration"].clone()).collect::<Vec<_>>(),
        [json!(1)],
        "one final invocation"
    );
    if repo.exists(LOOP_COUNTER) {
        assert_eq!(repo.read(LOOP_COUNTER).trim(), "1");
    }
}
