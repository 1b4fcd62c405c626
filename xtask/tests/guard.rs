//! `hook stop`, `check` and `hooks install` on temporary repositories, plus `check` over every
//! real fixture pair, and the `hook stop` benchmark on a ledger of 10,000 tasks (ignored; run
//! `cargo test --release -p xtask --test integration -- --ignored --nocapture guard::bench_`).

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::support::{render, TestRepo, NOW, SESSION};
use serde_json::{json, Value};

/// Claude Code's own session id for the agent (a UUID, unlike the tool's `sess_` id).
const AGENT: &str = "8f0c6c7e-3d2a-4b1e-9a57-2f1d5c0e9b31";
const MARKER: &str = "specs/350_add_feature/.postflight-pending";
const META: &str = "specs/350_add_feature/.return-meta.json";
const COUNTER: &str = "specs/350_add_feature/.postflight-hook-blocks";

/// A SubagentStop event as Claude Code sends it.
fn event(repo: &TestRepo, session: &str, active: bool) -> String {
    json!({
        "session_id": session,
        "transcript_path": format!("/home/user/.claude/projects/-repo/{session}.jsonl"),
        "cwd": repo.path(),
        "permission_mode": "default",
        "hook_event_name": "SubagentStop",
        "stop_hook_active": active
    })
    .to_string()
}

fn marker(created: &str, pid: Option<u32>, reason: &str) -> String {
    let mut m = json!({
        "session_id": SESSION,
        "skill": "postflight",
        "task_number": 350,
        "operation": "implement",
        "reason": reason,
        "created": created,
        "stop_hook_active": false,
        "agent_session_id": AGENT,
        "timeout": 7200,
        "metadata_file": META
    });
    if let Some(pid) = pid {
        m["pid"] = json!(pid);
    }
    serde_json::to_string_pretty(&m).expect("json")
}

/// Runs `xtask hook stop` with `stdin`, from `dir`; asserts exit 0 and one JSON object on stdout.
fn hook_from(repo: &TestRepo, dir: &Path, stdin: &str) -> (Value, Output) {
    let mut cmd = repo.xtask(&["hook", "stop"]);
    cmd.current_dir(dir).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let text = String::from_utf8(out.stdout.clone()).expect("utf8");
    assert_eq!(text.lines().count(), 1, "one line of JSON: {}", render(&out));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", render(&out)));
    assert!(v.is_object(), "{}", render(&out));
    (v, out)
}

/// The sample ledger with task 350 implementing and its marker written, as preflight leaves it.
fn running(reason: &str) -> TestRepo {
    let repo = TestRepo::new();
    let out = repo.run(&["set-status", "350", "implementing"]);
    assert!(out.status.success(), "{}", render(&out));
    repo.write(MARKER, &marker(NOW, None, reason));
    repo
}

fn hook(repo: &TestRepo, stdin: &str) -> (Value, Output) {
    hook_from(repo, repo.path(), stdin)
}

fn is_block(v: &Value) -> bool {
    v["decision"] == "block"
}

#[test]
fn hook_stop_blocks_the_owning_agent_until_metadata_is_written() {
    let repo = running("Postflight pending: status update, artifact linking, git commit");
    let (v, _) = hook(&repo, &event(&repo, AGENT, false));
    assert!(is_block(&v), "{v}");
    let reason = v["reason"].as_str().expect("reason");
    for needle in
        [META, "\"status\"", "implemented", "partial", "failed", "blocked", "never \"completed\"", "phases_completed"]
    {
        assert!(reason.contains(needle), "{needle} missing from: {reason}");
    }
    assert_eq!(v.as_object().expect("obj").len(), 2, "only decision and reason: {v}");

    repo.write(META, r#"{"status": "in_progress", "started_at": "2026-03-16T21:12:00Z"}"#);
    let (v, _) = hook(&repo, &event(&repo, AGENT, true));
    assert!(is_block(&v) && v["reason"].as_str().expect("r").contains("in_progress"), "{v}");

    repo.write(META, r#"{"status": "partial", "summary": "Phase 1 done."}"#);
    let (v, _) = hook(&repo, &event(&repo, AGENT, false));
    assert_eq!(v, json!({}));
    assert!(repo.exists(MARKER), "the hook never deletes the marker");
}

#[test]
fn hook_stop_with_stop_hook_active_blocks_at_most_three_times_per_session() {
    let repo = running("r");
    let mut decisions = Vec::new();
    for _ in 0..5 {
        let (v, _) = hook(&repo, &event(&repo, AGENT, true));
        decisions.push(is_block(&v));
    }
    assert_eq!(decisions, [true, true, true, false, false]);
    let (_, out) = hook(&repo, &event(&repo, AGENT, true));
    assert!(String::from_utf8_lossy(&out.stderr).contains("after 3 blocks"), "{}", render(&out));
    assert!(repo.exists(MARKER) && repo.exists(COUNTER));
    assert!(!repo.exists("specs/350_add_feature/.postflight-loop-guard"), "the loop's counter is not shared");
    // The run's own session id also owns the marker, and counts from zero.
    let (v, _) = hook(&repo, &event(&repo, SESSION, true));
    assert!(is_block(&v), "{v}");
    // A new run (new marker) counts from zero for the same agent session.
    repo.write(MARKER, &marker("2026-03-16T21:15:00Z", None, "r"));
    let (v, _) = hook(&repo, &event(&repo, AGENT, true));
    assert!(is_block(&v), "{v}");
}

#[test]
fn hook_stop_ignores_another_sessions_marker_and_writes_nothing() {
    let repo = running("r");
    let before = repo.snapshot();
    let (v, _) = hook(&repo, &event(&repo, "0d4f9a2e-1111-4c3b-8d5e-000000000000", false));
    assert_eq!(v, json!({}));
    let (v, _) = hook(&repo, &event(&repo, "", false));
    assert_eq!(v, json!({}));
    assert_eq!(before, repo.snapshot(), "no counter, no deletion");
    // A leftover marker of this session for a task that is not implementing (351 is planned) owes nothing.
    repo.write(MARKER, &marker(NOW, None, "r").replace(AGENT, "someone-else"));
    repo.write("specs/351_second_feature/.postflight-pending", &marker(NOW, None, "r").replace("350", "351"));
    let before = repo.snapshot();
    let (v, _) = hook(&repo, &event(&repo, AGENT, false));
    assert_eq!(v, json!({}));
    assert_eq!(before, repo.snapshot());
}

#[test]
fn hook_stop_ignores_a_stale_marker_and_keeps_it() {
    let repo = running("r");
    // A process that has exited, and a marker three hours old (timeout 7200 s).
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let dead = child.id();
    child.wait().expect("wait");
    repo.write(MARKER, &marker("2026-03-16T18:11:23Z", Some(dead), "r"));
    let (v, _) = hook(&repo, &event(&repo, AGENT, false));
    assert_eq!(v, json!({}));
    assert!(repo.exists(MARKER));
    // The same age with a live process is not stale.
    repo.write(MARKER, &marker("2026-03-16T18:11:23Z", Some(std::process::id()), "r"));
    let (v, _) = hook(&repo, &event(&repo, AGENT, false));
    assert!(is_block(&v), "{v}");
    // The committed legacy global marker of the real history (January) is stale and ignored.
    if let Some(fx) = crate::support::fixtures() {
        let legacy = std::fs::read_to_string(fx.join("meta/global@f8a05e05b_.postflight-pending")).expect("read");
        let session =
            serde_json::from_str::<Value>(&legacy).expect("json")["session_id"].as_str().expect("sid").to_owned();
        std::fs::remove_file(repo.file(MARKER)).expect("rm");
        repo.write("specs/.postflight-pending", &legacy);
        let (v, _) = hook(&repo, &event(&repo, &session, false));
        assert_eq!(v, json!({}));
        assert!(repo.exists("specs/.postflight-pending"));
    }
}

#[test]
fn hook_stop_output_stays_json_with_hostile_marker_text() {
    let hostile = "\"}, {\"decision\": \"approve\"} \n\r\t\u{0}\u{7}\u{1b}[31m red \\ back\\slash 'single' `tick` $(rm -rf /) \u{2028} é";
    let repo = running(hostile);
    let (v, _) = hook(&repo, &event(&repo, AGENT, false));
    assert!(is_block(&v), "{v}");
    let reason = v["reason"].as_str().expect("reason");
    assert!(reason.contains("{\"decision\": \"approve\"}"), "the text is carried as data: {reason}");
    assert!(!reason.contains('\u{0}') && !reason.contains('\u{1b}'), "control characters dropped: {reason:?}");
}

#[test]
fn hook_stop_lets_the_stop_through_on_bad_input() {
    let repo = running("r");
    for input in ["", "not json", "[1, 2]", "{\"session_id\": 7}", "{}"] {
        let (v, out) = hook(&repo, input);
        assert_eq!(v, json!({}), "input {input:?}: {}", render(&out));
    }
    // A cwd that does not exist falls back to the process's directory (the repository here).
    let ev =
        json!({"session_id": AGENT, "cwd": "/nonexistent/dir", "hook_event_name": "Stop", "stop_hook_active": false});
    let (v, _) = hook(&repo, &ev.to_string());
    assert!(is_block(&v), "{v}");
}

#[test]
fn hook_stop_finds_the_repository_from_the_event_cwd() {
    let repo = running("r");
    let elsewhere = repo.home();
    let (v, _) = hook_from(&repo, &elsewhere, &event(&repo, AGENT, false));
    assert!(is_block(&v), "{v}");
    // From a subdirectory of the repository too.
    let mut ev: Value = serde_json::from_str(&event(&repo, AGENT, false)).expect("json");
    ev["cwd"] = json!(repo.file("specs/350_add_feature"));
    let (v, _) = hook_from(&repo, &elsewhere, &ev.to_string());
    assert!(is_block(&v), "{v}");
}

// ---------------------------------------------------------------------------------------------
// check

/// The sample ledger with its one missing artifact created, so it checks clean.
fn clean_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("specs/352_odd_legacy_task/reports/research-001.md", "# research\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "research"]);
    repo
}

fn check_json(repo: &TestRepo, args: &[&str]) -> (Value, Output) {
    let mut all = vec!["check", "--json"];
    all.extend_from_slice(args);
    let out = repo.run(&all);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", render(&out)));
    (v, out)
}

fn rules(v: &Value) -> Vec<String> {
    v["findings"].as_array().expect("findings").iter().map(|f| f["rule"].as_str().expect("rule").to_owned()).collect()
}

#[test]
fn check_sample_ledger_is_clean_and_names_the_missing_artifact() {
    let repo = TestRepo::new();
    let (v, out) = check_json(&repo, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));
    assert_eq!(rules(&v), ["artifact-missing"], "{v}");
    let f = &v["findings"][0];
    assert_eq!(
        (f["file"].as_str(), f["line"].as_u64(), f["task"].as_u64()),
        (Some("specs/state.json"), Some(15), Some(352))
    );
    assert_eq!(
        repo.read("specs/state.json").lines().nth(14).map(str::trim),
        Some("\"specs/352_odd_legacy_task/reports/research-001.md\"")
    );
    let repo = clean_repo();
    let out = repo.run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "check: clean\n");
}

#[test]
fn check_fix_repairs_derived_lines_only_and_dry_run_writes_nothing() {
    let repo = clean_repo();
    let todo = repo
        .read("specs/TODO.md")
        .replace(
            "- **Status**: [PLANNED]\n- **Language**: general\n- **Priority**",
            "- **Status**: [COMPLETED]\n- **Language**: general\n- **Priority**",
        )
        .replace("next_project_number: 353", "next_project_number: 350")
        .replace("  active: 3", "  active: 9");
    repo.write("specs/TODO.md", &todo);
    let plan = "specs/351_second_feature/plans/implementation-001.md";
    repo.write(plan, &repo.read(plan).replace("**Status**: [PLANNED]", "**Status**: [BLOCKED]"));
    let (v, out) = check_json(&repo, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));
    let mut r = rules(&v);
    r.sort();
    assert_eq!(r, ["next-number", "plan-status", "task-counts", "todo-status"], "{v}");
    assert_eq!(v["fixable"], 4);

    let before = repo.snapshot();
    let out = repo.run(&["check", "--fix", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("-- **Status**: [COMPLETED]\n+- **Status**: [PLANNED]"), "{text}");
    assert!(text.contains("would change 2 file(s)"), "{text}");
    assert_eq!(before, repo.snapshot(), "dry run wrote nothing");

    let state = repo.read("specs/state.json");
    let (v, out) = check_json(&repo, &["--fix"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(v["findings"], json!([]), "{v}");
    assert_eq!(state, repo.read("specs/state.json"), "state.json is the source of truth and never changes");
    assert_eq!(repo.read(plan), crate::support::PLAN_351);
    assert_eq!(repo.read("specs/TODO.md"), crate::support::TODO);
    for change in v["changes"].as_array().expect("changes") {
        assert_only_derived_lines(change["diff"].as_str().expect("diff"));
    }
}

/// Every removed or added line of a `--fix` diff is a status, summary-link or frontmatter line.
fn assert_only_derived_lines(diff: &str) {
    for line in diff.lines() {
        if line.starts_with("---") || line.starts_with("+++") || !(line.starts_with('-') || line.starts_with('+')) {
            continue;
        }
        let body = line[1..].trim_start();
        let ok = body.starts_with("- **Status**: [")
            || body.starts_with("**Status**: [")
            || body.starts_with("- **Summary**: [")
            || body.starts_with("next_project_number: ")
            || ["active: ", "in_progress: ", "not_started: "]
                .iter()
                .any(|k| body.starts_with(k) && line[1..].starts_with("  "));
        assert!(ok, "--fix touched a line it does not own: {line:?}\n{diff}");
    }
}

#[test]
fn check_rules_for_duplicates_missing_tasks_markers_transients_and_session_ids() {
    let repo = clean_repo();
    let todo = repo.read("specs/TODO.md").replace("### 351. Second feature", "### 350. Second feature");
    repo.write("specs/TODO.md", &format!("{todo}\n### 360. Only in TODO\n- **Status**: [PLANNED]\n"));
    let state = repo
        .read("specs/state.json")
        .replace("\"session_id\": \"sess_1773300000_abcdef\"", "\"session_id\": \"sess_$(date +%s)\"");
    repo.write("specs/state.json", &state);
    repo.write(
        "specs/351_second_feature/.postflight-pending",
        &json!({"session_id": SESSION, "task_number": 351}).to_string(),
    );
    repo.write("specs/350_add_feature/.return-meta.json", "{}");
    repo.git(&["add", "-f", "specs/350_add_feature/.return-meta.json"]);
    let (v, out) = check_json(&repo, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));
    let found: Vec<(String, String, Option<u64>)> = v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (f["rule"].as_str().expect("r").to_owned(), f["file"].as_str().expect("f").to_owned(), f["line"].as_u64())
        })
        .collect();
    let has = |rule: &str, file: &str, line: Option<u64>| {
        assert!(found.contains(&(rule.into(), file.into(), line)), "{rule} {file}:{line:?} not in {found:#?}");
    };
    has("duplicate-task", "specs/TODO.md", Some(21));
    has("task-missing", "specs/state.json", Some(19)); // 351 now lacks a TODO entry.
    has("task-missing", "specs/TODO.md", Some(41)); // 360 lacks a state entry.
    has("next-number", "specs/state.json", Some(48)); // 353 does not exceed 360.
    has("stale-marker", "specs/351_second_feature/.postflight-pending", None);
    has("transient-tracked", "specs/350_add_feature/.return-meta.json", None);
    has("session-id", "specs/state.json", Some(36));
    assert_eq!(found.len(), 7, "{found:#?}");
    let warn = v["findings"].as_array().expect("f").iter().find(|f| f["rule"] == "session-id").expect("sid");
    assert_eq!(warn["severity"], "warning");
}

#[test]
fn check_unreadable_input_exits_2_with_position() {
    let repo = clean_repo();
    repo.write("specs/state.json", "{\n  \"active_projects\": [\n    {\"project_number\": 1,}\n  ]\n}\n");
    let (v, out) = check_json(&repo, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert_eq!(v["findings"][0]["rule"], "state-json");
    assert_eq!(v["findings"][0]["line"], 3);
    let repo = clean_repo();
    std::fs::remove_file(repo.file("specs/TODO.md")).expect("rm");
    let out = repo.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("error[todo-md]"), "{}", render(&out));
    let out = repo.run(&["check", "--fix", "--staged"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
}

#[test]
fn check_staged_reads_the_index_not_the_work_tree() {
    let repo = clean_repo();
    let good = repo.read("specs/TODO.md");
    repo.write(
        "specs/TODO.md",
        &good.replace(
            "- **Status**: [PLANNED]\n- **Language**: general\n- **Priority**",
            "- **Status**: [BLOCKED]\n- **Language**: general\n- **Priority**",
        ),
    );
    repo.git(&["add", "specs/TODO.md"]);
    repo.write("specs/TODO.md", &good);
    let out = repo.run(&["check"]);
    assert_eq!(out.status.code(), Some(0), "work tree agrees: {}", render(&out));
    let (v, out) = check_json(&repo, &["--staged"]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));
    assert_eq!(rules(&v), ["todo-status"], "{v}");
    // A staged plan is found through the index too.
    repo.git(&["add", "specs/TODO.md"]);
    let plan = "specs/350_add_feature/plans/implementation-001.md";
    repo.write(plan, &repo.read(plan).replace("- **Status**: [PLANNED]", "- **Status**: [COMPLETED]"));
    repo.git(&["add", plan]);
    let (v, _) = check_json(&repo, &["--staged"]);
    assert_eq!(rules(&v), ["plan-status"], "{v}");
    // A repository without a staged ledger has nothing to check.
    let empty = TestRepo::empty();
    let out = empty.run(&["check", "--staged"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
}

// ---------------------------------------------------------------------------------------------
// check's result cache

const CACHE: &str = ".git/postflight-check.cache";
const TODO_350_PLANNED: &str = "- **Status**: [PLANNED]\n- **Language**: general\n- **Priority**";

/// Runs `xtask check [args]` with the cache's log on: the output and the cache's note.
fn check_logged(repo: &TestRepo, args: &[&str]) -> (Output, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let out = repo.xtask(&all).env("POSTFLIGHT_CHECK_CACHE_LOG", "1").output().expect("run xtask");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let note = stderr.lines().find_map(|l| l.strip_prefix("check cache: ")).unwrap_or("(none)").to_owned();
    (out, note)
}

/// What `check --json --no-cache` says: the truth the cache must reproduce.
fn uncached(repo: &TestRepo) -> Output {
    repo.run(&["check", "--json", "--no-cache"])
}

/// Sleeps past the cache's 2 s racy margin, so that files written before count as settled (a
/// fixed sleep on purpose: file age is time itself, nothing signals it).
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(2200));
}

/// The modification time of a file.
fn mtime(repo: &TestRepo, rel: &str) -> std::time::SystemTime {
    std::fs::metadata(repo.file(rel)).expect("stat").modified().expect("mtime")
}

/// Rewrites `rel` in place with `content` (same inode), then sets its modification time back
/// to what it was, as `touch -d` would: only the ctime tells.
fn edit_keeping_mtime(repo: &TestRepo, rel: &str, content: &str) {
    let before = mtime(repo, rel);
    assert_eq!(std::fs::metadata(repo.file(rel)).expect("stat").len(), content.len() as u64, "same size");
    std::fs::write(repo.file(rel), content).expect("write");
    std::fs::File::options().write(true).open(repo.file(rel)).expect("open").set_modified(before).expect("touch");
    assert_eq!(mtime(repo, rel), before);
}

/// A clean repository whose cache holds a clean report and is used: a first check writes it,
/// a second one hits it.
fn cached_clean(repo: &TestRepo) {
    let (out, note) = check_logged(repo, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(note, "miss (no cache); written", "{}", render(&out));
    let (out, note) = check_logged(repo, &["--json"]);
    assert_eq!(note, "hit", "{}", render(&out));
    assert_eq!(out.stdout, uncached(repo).stdout, "a hit reports what a full check reports");
    assert!(repo.exists(CACHE));
}

#[test]
fn check_cache_never_hides_a_change() {
    let plan = "specs/350_add_feature/plans/implementation-001.md";
    let plan_of_351 = "specs/351_second_feature/plans/implementation-001.md";
    type Change = fn(&TestRepo);
    let changes: Vec<(&str, &str, Change)> = vec![
        ("state.json: a status", "todo-status", |r| {
            let s = r.read("specs/state.json").replacen("\"status\": \"planned\"", "\"status\": \"researched\"", 1);
            r.write("specs/state.json", &s);
        }),
        ("TODO.md: a marker", "todo-status", |r| {
            r.write(
                "specs/TODO.md",
                &r.read("specs/TODO.md").replace(TODO_350_PLANNED, &TODO_350_PLANNED.replace("PLANNED", "PLANNING")),
            );
        }),
        ("TODO.md: same size, mtime put back", "todo-status", |r| {
            let todo =
                r.read("specs/TODO.md").replace(TODO_350_PLANNED, &TODO_350_PLANNED.replace("PLANNED", "BLOCKED"));
            edit_keeping_mtime(r, "specs/TODO.md", &todo);
        }),
        ("a plan's header, same size, mtime put back", "plan-status", |r| {
            let p = "specs/350_add_feature/plans/implementation-001.md";
            edit_keeping_mtime(r, p, &r.read(p).replace("- **Status**: [PLANNED]", "- **Status**: [BLOCKED]"));
        }),
        ("a newer plan", "plan-status", |r| {
            r.write("specs/351_second_feature/plans/implementation-002.md", "# Plan\n\n**Status**: [COMPLETED]\n");
        }),
        ("an artifact deleted", "artifact-missing", |r| {
            std::fs::remove_file(r.file("specs/352_odd_legacy_task/reports/research-001.md")).expect("rm");
        }),
        ("an artifact's directory renamed", "artifact-missing", |r| {
            std::fs::rename(r.file("specs/352_odd_legacy_task/reports"), r.file("specs/352_odd_legacy_task/old"))
                .expect("mv");
        }),
        ("a marker added", "stale-marker", |r| {
            r.write("specs/351_second_feature/.postflight-pending", &json!({"task_number": 351}).to_string());
        }),
        ("a legacy global marker added", "stale-marker", |r| {
            r.write("specs/.postflight-pending", &json!({"task_number": 352}).to_string());
        }),
        ("a transient file staged in a task directory", "transient-tracked", |r| {
            r.write("specs/350_add_feature/.return-meta.json", "{}");
            r.git(&["add", "-f", "specs/350_add_feature/.return-meta.json"]);
        }),
        ("a transient file staged where the check looks at nothing else", "transient-tracked", |r| {
            r.write("notes/.return-meta.json", "{}");
            r.git(&["add", "-f", "notes/.return-meta.json"]);
        }),
        ("a plans directory where there was none", "plan-status", |r| {
            // Task 352 is ready for review and had no plan: one saying PLANNED disagrees.
            r.write("specs/352_odd_legacy_task/plans/implementation-001.md", "**Status**: [PLANNED]\n");
        }),
    ];
    let repos: Vec<TestRepo> = changes.iter().map(|_| clean_repo()).collect();
    settle();
    for (repo, (what, rule, change)) in repos.iter().zip(&changes) {
        cached_clean(repo);
        change(repo);
        let truth = uncached(repo);
        let v: Value = serde_json::from_slice(&truth.stdout).expect("json");
        assert!(rules(&v).contains(&rule.to_string()), "{what}: the change itself must be a finding: {v}");
        let (out, note) = check_logged(repo, &["--json"]);
        assert_eq!(
            (out.status.code(), String::from_utf8_lossy(&out.stdout)),
            (truth.status.code(), String::from_utf8_lossy(&truth.stdout)),
            "{what}: the cache ({note}) hid the change"
        );
        assert!(note.starts_with("miss") || note.starts_with("hit (the index changed"), "{what}: {note}");
        if what.contains("nothing else") {
            assert_eq!(note, "hit (the index changed: transient-tracked rerun; cache rewritten)");
        }
    }
    // The plain 'plan' and 'plan_of_351' paths stay untouched by the other repositories.
    assert!(repos[0].exists(plan) && repos[0].exists(plan_of_351));
}

#[test]
fn check_cache_is_not_written_for_inputs_younger_than_two_seconds() {
    // Just written: a same-tick edit could keep every fingerprint, so nothing is cached.
    let repo = clean_repo();
    let (out, note) = check_logged(&repo, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert!(
        note.starts_with("miss (no cache); not written: ") && note.ends_with("changed less than 2 s before the check"),
        "{note}"
    );
    assert!(!repo.exists(CACHE));
    edit_keeping_mtime(
        &repo,
        "specs/TODO.md",
        &repo.read("specs/TODO.md").replace(TODO_350_PLANNED, &TODO_350_PLANNED.replace("PLANNED", "BLOCKED")),
    );
    let (out, _) = check_logged(&repo, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("error[todo-status]"), "{}", render(&out));

    // A cached check followed at once by an edit, then a check in the same second: the edit is
    // seen, and the young file keeps the cache from being written again.
    let repo = clean_repo();
    settle();
    cached_clean(&repo);
    edit_keeping_mtime(
        &repo,
        "specs/TODO.md",
        &repo.read("specs/TODO.md").replace(TODO_350_PLANNED, &TODO_350_PLANNED.replace("PLANNED", "BLOCKED")),
    );
    let (out, note) = check_logged(&repo, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));
    assert!(note.starts_with("miss (specs/TODO.md changed); not written: "), "{note}");
    assert!(!repo.exists(CACHE), "the stale cache is removed");
    let (_, note) = check_logged(&repo, &[]);
    assert!(note.starts_with("miss (no cache); not written"), "{note}");
}

#[test]
fn check_cache_lives_in_the_git_dir_ignores_damage_and_can_be_turned_off() {
    let repo = clean_repo();
    let worktree = TestRepo::new();
    let linked = worktree.path().join("linked");
    worktree.git(&["worktree", "add", "-q", linked.to_str().expect("utf8"), "-b", "side"]);
    settle();
    // Off: nothing written, nothing read.
    let out = repo.run(&["check", "--no-cache"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let out = repo.xtask(&["check"]).env("POSTFLIGHT_NO_CACHE", "1").output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert!(!repo.exists(CACHE));
    let (_, note) = check_logged(&repo, &[]);
    assert_eq!(note, "miss (no cache); written");
    // In the git directory, never in the work tree.
    assert!(repo.exists(CACHE));
    assert_eq!(repo.git(&["status", "--porcelain", "--ignored"]), "");
    // A linked worktree keeps its own, in its own git directory.
    let out =
        worktree.xtask(&["check"]).current_dir(&linked).env("POSTFLIGHT_CHECK_CACHE_LOG", "1").output().expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("check cache: miss (no cache); written"), "{}", render(&out));
    assert!(worktree.exists(".git/worktrees/linked/postflight-check.cache"));
    assert!(!linked.join(".git").is_dir() && !worktree.exists(CACHE));

    // An index rewritten with the same content (new inode and times, same checksum) is the same
    // index; one with other content has the transient-file rule run again.
    std::fs::copy(repo.file(".git/index"), repo.file(".git/index.copy")).expect("cp");
    std::fs::rename(repo.file(".git/index.copy"), repo.file(".git/index")).expect("mv");
    let (_, note) = check_logged(&repo, &[]);
    assert_eq!(note, "hit");
    repo.git(&["rm", "-q", "--cached", "README.md"]);
    let (out, note) = check_logged(&repo, &[]);
    assert_eq!(note, "hit (the index changed: transient-tracked rerun; cache rewritten)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "check: clean\n");
    repo.git(&["add", "README.md"]);

    // Damaged (garbage, cut short, one byte changed): ignored and rewritten.
    let good = std::fs::read(repo.file(CACHE)).expect("cache");
    let mut flipped = good.clone();
    let at = good.len() / 2;
    flipped[at] ^= 1;
    for (what, bytes) in
        [("garbage", b"not a cache\n".to_vec()), ("cut", good[..good.len() / 2].to_vec()), ("flipped", flipped)]
    {
        std::fs::write(repo.file(CACHE), &bytes).expect("write");
        let (out, note) = check_logged(&repo, &["--json"]);
        assert_eq!(out.stdout, uncached(&repo).stdout, "{what}");
        assert!(note.starts_with("miss (cache ") && note.ends_with("; written"), "{what}: {note}");
        let (_, note) = check_logged(&repo, &[]);
        assert_eq!(note, "hit", "{what}: rewritten");
    }
    // With findings, --fix and --staged give what they give without the cache.
    repo.write("specs/TODO.md", &repo.read("specs/TODO.md").replace("  active: 3", "  active: 7"));
    settle();
    let (first, note) = check_logged(&repo, &["--json"]);
    assert!(note.starts_with("miss") && note.ends_with("written"), "{note}");
    let (second, note) = check_logged(&repo, &["--json"]);
    assert_eq!(note, "hit");
    assert_eq!(first.stdout, second.stdout);
    assert_eq!(first.stdout, uncached(&repo).stdout);
    assert_eq!(second.status.code(), Some(0), "a warning only: {}", render(&second));
    assert!(String::from_utf8_lossy(&second.stdout).contains("task-counts"));
    let (staged, note) = check_logged(&repo, &["--staged"]);
    assert_eq!(note, "(none)", "--staged does not use the cache");
    assert_eq!(staged.status.code(), Some(0), "{}", render(&staged));
    let (fixed, note) = check_logged(&repo, &["--fix"]);
    assert_eq!(note, "(none)", "--fix does not use the cache");
    assert!(
        String::from_utf8_lossy(&fixed.stdout).contains("check --fix: changed 1 file(s): specs/TODO.md"),
        "{}",
        render(&fixed)
    );
    let (out, note) = check_logged(&repo, &[]);
    assert!(note.starts_with("miss ("), "{note}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "check: clean\n");
}

/// Copies one fixture pair into a fresh repository (the fixture files are read in place).
fn fixture_repo(fx: &Path, hash: &str) -> TestRepo {
    let repo = TestRepo::empty();
    let state = std::fs::read(fx.join(format!("states/{hash}.json"))).expect("state");
    let todo = std::fs::read(fx.join(format!("todos/{hash}.md"))).expect("todo");
    std::fs::create_dir_all(repo.file("specs")).expect("mkdir");
    std::fs::write(repo.file("specs/state.json"), state).expect("write");
    std::fs::write(repo.file("specs/TODO.md"), todo).expect("write");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "fixture"]);
    repo
}

#[test]
fn check_and_fix_over_every_fixture_pair() {
    let Some(fx) = crate::support::fixtures() else { return };
    let mut hashes: Vec<String> = std::fs::read_dir(fx.join("states"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().trim_end_matches(".json").to_owned())
        .filter(|h| fx.join(format!("todos/{h}.md")).exists())
        .collect();
    hashes.sort();
    assert!(hashes.len() >= 40, "{hashes:?}");
    let mut total_fixed = 0;
    for hash in &hashes {
        let repo = fixture_repo(&fx, hash);
        let state = repo.read("specs/state.json");
        let (before, out) = check_json(&repo, &[]);
        assert!(matches!(out.status.code(), Some(0..=2)), "{hash}: {}", render(&out));
        if before["unreadable"] == true {
            continue;
        }
        let (after, out) = check_json(&repo, &["--fix"]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{hash}: {}", render(&out));
        assert_eq!(after["fixable"], 0, "{hash}: fixable findings remain after --fix: {after}");
        assert_eq!(state, repo.read("specs/state.json"), "{hash}: state.json changed");
        for change in after["changes"].as_array().expect("changes") {
            assert_only_derived_lines(change["diff"].as_str().expect("diff"));
        }
        total_fixed += before["fixable"].as_u64().expect("n");
        // What was not fixable is still reported, unchanged.
        let unfixable =
            |v: &Value| v["findings"].as_array().expect("f").iter().filter(|f| f["fixable"] == false).count();
        assert_eq!(unfixable(&before), unfixable(&after), "{hash}");
    }
    assert!(total_fixed > 50, "{total_fixed}");
}

#[test]
fn check_findings_on_real_fixtures_are_true() {
    let Some(fx) = crate::support::fixtures() else { return };
    let find = |v: &Value, rule: &str, file: &str, line: u64| -> Value {
        v["findings"]
            .as_array()
            .expect("f")
            .iter()
            .find(|f| f["rule"] == rule && f["file"] == file && f["line"] == line)
            .unwrap_or_else(|| panic!("no {rule} at {file}:{line} in {v}"))
            .clone()
    };
    let line_of = |repo: &TestRepo, file: &str, line: u64| {
        repo.read(file).lines().nth(line as usize - 1).expect("line").to_owned()
    };

    // fd3df295d: task 619's TODO marker says PLANNING while state.json says researched (spec §3.4's top pair).
    let repo = fixture_repo(&fx, "fd3df295d");
    let (v, _) = check_json(&repo, &[]);
    let f = find(&v, "todo-status", "specs/TODO.md", 252);
    assert_eq!(f["task"], 619);
    assert_eq!(line_of(&repo, "specs/TODO.md", 252), "- **Status**: [PLANNING]");
    let todo = repo.read("specs/TODO.md");
    let heading = todo.lines().take(252).filter(|l| l.starts_with("### ")).last().expect("heading");
    assert!(heading.starts_with("### 619. "), "{heading}");
    let state: Value = serde_json::from_str(&repo.read("specs/state.json")).expect("json");
    let t619 =
        state["active_projects"].as_array().expect("a").iter().find(|t| t["project_number"] == 619).expect("619");
    assert_eq!(t619["status"], "researched");
    // Task 975's session id has a non-hex tail.
    find(&v, "session-id", "specs/state.json", 153);
    assert!(line_of(&repo, "specs/state.json", 153).contains("\"sess_1742169600_975impl\""));

    // bcd8236c0: 666 and 671 twice in active_projects; frontmatter number behind state.json's.
    let repo = fixture_repo(&fx, "bcd8236c0");
    let (v, _) = check_json(&repo, &[]);
    let f = find(&v, "duplicate-task", "specs/state.json", 130);
    assert_eq!(f["task"], 666);
    assert!(f["message"].as_str().expect("m").contains("lines 130, 559"), "{f}");
    for l in [130, 559] {
        assert_eq!(line_of(&repo, "specs/state.json", l).trim(), "\"project_number\": 666,");
    }
    find(&v, "duplicate-task", "specs/state.json", 663);
    find(&v, "next-number", "specs/TODO.md", 2);
    assert_eq!(line_of(&repo, "specs/TODO.md", 2), "next_project_number: 671");
    let state: Value = serde_json::from_str(&repo.read("specs/state.json")).expect("json");
    assert_eq!(state["next_project_number"], 673);

    // 6a91b9ad2: TODO.md was committed empty; every state.json task is missing from it.
    let repo = fixture_repo(&fx, "6a91b9ad2");
    let (v, out) = check_json(&repo, &[]);
    assert_eq!(out.status.code(), Some(1));
    let state: Value = serde_json::from_str(&repo.read("specs/state.json")).expect("json");
    let tasks = state["active_projects"].as_array().expect("a").len();
    assert_eq!(rules(&v).iter().filter(|r| *r == "task-missing").count(), tasks);

    // 3d5bf5372 with task 981's real plan: state says implementing, the plan header still NOT STARTED.
    let repo = fixture_repo(&fx, "3d5bf5372");
    let plan = "specs/981_remove_axiom_technical_debt_from_task_979/plans/implementation-001.md";
    std::fs::create_dir_all(repo.file(plan).parent().expect("dir")).expect("mkdir");
    std::fs::write(repo.file(plan), std::fs::read(fx.join("plans/981_implementation-001.md")).expect("plan"))
        .expect("write");
    let (v, _) = check_json(&repo, &[]);
    let f =
        v["findings"].as_array().expect("f").iter().find(|f| f["rule"] == "plan-status").expect("plan-status").clone();
    assert_eq!((f["file"].as_str(), f["task"].as_u64()), (Some(plan), Some(981)));
    assert!(line_of(&repo, plan, f["line"].as_u64().expect("line")).contains("[NOT STARTED]"));
    let (v, _) = check_json(&repo, &["--fix"]);
    assert!(!rules(&v).contains(&"plan-status".to_owned()), "{v}");
    assert!(repo.read(plan).contains("- **Status**: [IMPLEMENTING]"));
}

// ---------------------------------------------------------------------------------------------
// hooks install

const BIN: &str = env!("CARGO_BIN_EXE_xtask");

#[test]
fn hooks_install_is_idempotent_and_installed_hook_rejects_a_disagreeing_commit() {
    let repo = clean_repo();
    let out = repo.run(&["hooks", "install", "--bin", BIN]);
    assert!(out.status.success(), "{}", render(&out));
    let hook = repo.read(".git/hooks/pre-commit");
    assert!(hook.contains("check --staged") && hook.contains(BIN) && !hook.contains("cargo run"), "{hook}");
    let settings: Value = serde_json::from_str(&repo.read(".claude/settings.json")).expect("json");
    for event in ["Stop", "SubagentStop"] {
        let h = &settings["hooks"][event][0]["hooks"][0];
        assert_eq!(h["command"], format!("{BIN} hook stop"));
        assert_eq!(h["timeout"], 10);
    }
    let before = repo.snapshot();
    let hook_bytes = repo.read(".git/hooks/pre-commit");
    let out = repo.run(&["hooks", "install", "--bin", BIN]);
    assert!(String::from_utf8_lossy(&out.stdout).matches("already up to date").count() == 2, "{}", render(&out));
    assert_eq!(before, repo.snapshot());
    assert_eq!(hook_bytes, repo.read(".git/hooks/pre-commit"));

    // A commit that makes TODO.md disagree with state.json is rejected.
    let todo = repo.read("specs/TODO.md");
    repo.write(
        "specs/TODO.md",
        &todo.replace(
            "- **Status**: [PLANNED]\n- **Language**: general\n- **Priority**",
            "- **Status**: [COMPLETED]\n- **Language**: general\n- **Priority**",
        ),
    );
    repo.git(&["add", "specs/TODO.md"]);
    let out = repo.command("git").args(["commit", "-q", "-m", "mark done by hand"]).output().expect("git");
    assert!(!out.status.success(), "commit must be rejected: {}", render(&out));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("error[todo-status]"), "{}", render(&out));
    assert_eq!(repo.git(&["log", "--format=%s", "-1"]).trim(), "research");
    // After `check --fix` the same commit goes through.
    assert!(repo.run(&["check", "--fix"]).status.success());
    repo.git(&["add", "specs/TODO.md"]);
    repo.write("notes.txt", "x\n");
    repo.git(&["add", "notes.txt"]);
    repo.git(&["commit", "-q", "-m", "notes"]);
}

#[test]
fn hooks_install_chains_an_existing_hook_and_uninstall_restores_it() {
    let repo = clean_repo();
    let original =
        "#!/bin/sh\necho chained-ran >> \"$(git rev-parse --show-toplevel)/.home-for-tests/chained.log\"\nexit 0\n";
    repo.write(".git/hooks/pre-commit", original);
    set_executable(&repo.file(".git/hooks/pre-commit"));
    let out = repo.run(&["hooks", "install", "--git", "--bin", BIN]);
    assert!(out.status.success(), "{}", render(&out));
    assert_eq!(repo.read(".git/hooks/pre-commit.postflight-chained"), original);
    assert!(!repo.exists(".claude/settings.json"), "--git only");
    let out = repo.run(&["hooks", "install", "--git", "--bin", BIN]);
    assert!(out.status.success(), "{}", render(&out));
    assert_eq!(repo.read(".git/hooks/pre-commit.postflight-chained"), original, "not chained twice");
    repo.write("a.txt", "a\n");
    repo.git(&["add", "a.txt"]);
    repo.git(&["commit", "-q", "-m", "a"]);
    assert_eq!(std::fs::read_to_string(repo.home().join("chained.log")).expect("log"), "chained-ran\n");
    let out = repo.run(&["hooks", "install", "--git", "--uninstall"]);
    assert!(out.status.success(), "{}", render(&out));
    assert_eq!(repo.read(".git/hooks/pre-commit"), original);
    assert!(!repo.exists(".git/hooks/pre-commit.postflight-chained"));
}

#[test]
fn hooks_install_honours_core_hooks_path() {
    let repo = clean_repo();
    repo.git(&["config", "core.hooksPath", ".githooks"]);
    let out = repo.run(&["hooks", "install", "--git", "--bin", BIN]);
    assert!(out.status.success(), "{}", render(&out));
    assert!(repo.read(".githooks/pre-commit").contains("check --staged"));
    assert!(!repo.exists(".git/hooks/pre-commit"));
}

#[test]
fn hooks_install_merges_into_existing_settings_and_uninstall_removes_only_its_entries() {
    let repo = clean_repo();
    let existing = json!({
        "model": "opus",
        "permissions": {"allow": ["Bash(cargo test:*)"]},
        "hooks": {
            "Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "notify-send done"}]}],
            "PostToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": "fmt.sh"}]}]
        }
    });
    repo.write(".claude/settings.json", &serde_json::to_string_pretty(&existing).expect("json"));
    let out = repo.run(&["hooks", "install", "--claude"]);
    assert!(out.status.success(), "{}", render(&out));
    assert!(!repo.exists(".git/hooks/pre-commit"), "--claude only");
    let v: Value = serde_json::from_str(&repo.read(".claude/settings.json")).expect("json");
    assert_eq!(v["model"], "opus");
    assert_eq!(v["permissions"], existing["permissions"]);
    assert_eq!(v["hooks"]["PostToolUse"], existing["hooks"]["PostToolUse"]);
    assert_eq!(v["hooks"]["Stop"][0], existing["hooks"]["Stop"][0]);
    assert_eq!(v["hooks"]["Stop"][1]["hooks"][0]["command"], "xtask hook stop");
    assert_eq!(v["hooks"]["SubagentStop"][0]["hooks"][0]["command"], "xtask hook stop");
    let keys: Vec<&String> = v.as_object().expect("obj").keys().collect();
    assert_eq!(keys, ["model", "permissions", "hooks"], "key order kept");
    let out = repo.run(&["hooks", "install", "--claude", "--uninstall"]);
    assert!(out.status.success(), "{}", render(&out));
    let v: Value = serde_json::from_str(&repo.read(".claude/settings.json")).expect("json");
    assert_eq!(v, existing);
    // A settings file that is not JSON is refused and left alone.
    repo.write(".claude/settings.json", "{ not json");
    let out = repo.run(&["hooks", "install"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert_eq!(repo.read(".claude/settings.json"), "{ not json");
    assert!(!repo.exists(".git/hooks/pre-commit"), "nothing installed when the settings are refused");
}

fn set_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

// ---------------------------------------------------------------------------------------------
// Benchmark (ignored: `cargo test --release -p xtask --test integration -- --ignored --nocapture guard::bench_`)

/// Writes a ledger of `n` tasks with a task directory (and plan) each, plus markers: a foreign
/// session's, a stale one, and one of `own_session` whose metadata is written.
fn big_ledger(repo: &TestRepo, n: u32, own_session: &str) {
    let mut entries = Vec::with_capacity(n as usize);
    let mut todo = String::from("---\nnext_project_number: 0\n---\n\n# TODO\n\n## Tasks\n\n");
    for i in (1..=n).rev() {
        entries.push(json!({
            "project_number": i, "project_name": format!("task_{i}"),
            "status": if i % 10 == 0 && i <= 40 { "implementing" } else { "planned" }, "language": "general",
            "description": "A generated task with a description long enough to look real in a ledger file.",
            "created": "2026-03-01T10:00:00Z", "last_updated": "2026-03-02T10:00:00Z", "session_id": "sess_1773300000_abcdef",
            "artifacts": [{"path": format!("specs/{i}_task_{i}/plans/implementation-001.md"), "type": "plan", "summary": "plan"}]
        }));
        todo.push_str(&format!("### {i}. Task {i}\n- **Status**: [PLANNED]\n- **Language**: general\n\n---\n\n"));
        std::fs::create_dir_all(repo.file(&format!("specs/{i}_task_{i}/plans"))).expect("mkdir");
    }
    let state = json!({"active_projects": entries, "next_project_number": n + 1});
    repo.write("specs/state.json", &serde_json::to_string_pretty(&state).expect("json"));
    repo.write("specs/TODO.md", &todo);
    let m = |session: &str, task: u32, created: &str| {
        json!({"session_id": session, "task_number": task, "created": created, "agent_session_id": session,
               "metadata_file": format!("specs/{task}_task_{task}/.return-meta.json")})
        .to_string()
    };
    repo.write("specs/10_task_10/.postflight-pending", &m("other-session", 10, NOW));
    repo.write("specs/20_task_20/.postflight-pending", &m(own_session, 20, "2026-01-01T00:00:00Z"));
    repo.write("specs/30_task_30/.postflight-pending", &m(own_session, 30, NOW));
    repo.write("specs/30_task_30/.return-meta.json", r#"{"status": "implemented"}"#);
}

fn stats(label: &str, mut samples: Vec<f64>) {
    samples.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    println!(
        "{label:<58} n={:<5} min {:>7.3} ms  median {:>7.3} ms  p95 {:>7.3} ms  max {:>7.3} ms",
        samples.len(),
        samples[0],
        pct(0.5),
        pct(0.95),
        samples[samples.len() - 1]
    );
}

#[test]
#[ignore = "benchmark: prints timings, run with --ignored --nocapture (best with --release)"]
fn bench_hook_stop_on_10000_tasks() {
    use std::time::Instant;
    let repo = TestRepo::empty();
    let own = "b1e2c3d4-0000-4000-8000-000000000001";
    big_ledger(&repo, 10_000, own);
    let specs_entries = std::fs::read_dir(repo.file("specs")).expect("ls").count();
    println!(
        "ledger: 10000 tasks, state.json {} bytes, {} entries in specs/",
        std::fs::metadata(repo.file("specs/state.json")).expect("meta").len(),
        specs_entries
    );
    let now = postflight::guard::stop_hook::parse_time(NOW).expect("ts");
    let in_process = |session: &str, reset_counter: bool| -> Vec<f64> {
        let input = event(&repo, session, false).into_bytes();
        (0..300)
            .map(|_| {
                if reset_counter {
                    let _ = std::fs::remove_file(repo.file("specs/40_task_40/.postflight-hook-blocks"));
                }
                let t = Instant::now();
                let out = postflight::guard::stop_hook::run(&input, Path::new("/"), now);
                let dt = t.elapsed().as_secs_f64() * 1e3;
                assert_eq!(matches!(out.decision, postflight::guard::stop_hook::Decision::Block { .. }), reset_counter);
                dt
            })
            .collect()
    };
    stats("in-process, no marker of this session (allow)", in_process("nobody", false));
    stats("in-process, own markers: stale + metadata written (allow)", in_process(own, false));
    repo.write(
        "specs/40_task_40/.postflight-pending",
        &json!({"session_id": own, "task_number": 40, "created": NOW, "metadata_file": "specs/40_task_40/.return-meta.json"}).to_string(),
    );
    stats("in-process, own marker with metadata owed (block)", in_process(own, true));
    std::fs::remove_file(repo.file("specs/40_task_40/.postflight-pending")).expect("rm");

    let spawned = |session: &str| -> Vec<f64> {
        let input = event(&repo, session, false);
        (0..100)
            .map(|_| {
                let t = Instant::now();
                let mut child = repo
                    .xtask(&["hook", "stop"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn");
                child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
                let out = child.wait_with_output().expect("wait");
                let dt = t.elapsed().as_secs_f64() * 1e3;
                assert_eq!(out.stdout, b"{}\n");
                dt
            })
            .collect()
    };
    stats("spawned `xtask hook stop`, no marker of this session", spawned("nobody"));
    stats("spawned `xtask hook stop`, own markers (allow)", spawned(own));
    let baseline: Vec<f64> = (0..100)
        .map(|_| {
            let t = Instant::now();
            let out = repo.xtask(&["--version"]).stdin(Stdio::null()).output().expect("run");
            assert!(out.status.success());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    stats("spawned `xtask --version` (process start baseline)", baseline);
}

// ---------------------------------------------------------------------------------------------
// doctor, completions, hooks uninstall

/// The sample repository with an agent configured and both hooks calling `bin`.
fn doctor_repo(bin: &str) -> TestRepo {
    let repo = clean_repo();
    repo.write(".postflight.json", &json!({ "agent": format!("'{BIN}' demo-agent") }).to_string());
    let out = repo.run(&["hooks", "install", "--bin", bin]);
    assert!(out.status.success(), "{}", render(&out));
    repo
}

fn doctor(repo: &TestRepo, env_remove: &[&str]) -> (Value, Output, String) {
    let run = |json: bool| {
        let mut cmd = repo.xtask(if json { &["doctor", "--json"] } else { &["doctor"] });
        for name in env_remove {
            cmd.env_remove(name);
        }
        cmd.output().expect("run doctor")
    };
    let out = run(true);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", render(&out)));
    let text = run(false);
    assert_eq!(text.status.code(), out.status.code(), "--json changes no exit code");
    (v, out, String::from_utf8(text.stdout).expect("utf8"))
}

fn check_named<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"].as_array().expect("checks").iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name}: {v}"))
}

#[test]
fn doctor_on_a_good_setup_exits_0_with_one_ok_line_per_check() {
    let repo = doctor_repo(BIN);
    let (v, out, text) = doctor(&repo, &[]);
    assert_eq!(out.status.code(), Some(0), "{}\n{text}", render(&out));
    assert_eq!(v["ok"], true);
    let names: Vec<&str> =
        v["checks"].as_array().expect("checks").iter().map(|c| c["name"].as_str().expect("name")).collect();
    assert_eq!(
        names,
        [
            "state-json",
            "todo-md",
            "agent",
            "git-hook",
            "claude-hook",
            "git-identity",
            "transient-ignored",
            "markers",
            "locks",
            "merge-driver",
            "worktrees"
        ]
    );
    for c in v["checks"].as_array().expect("checks") {
        assert_eq!(c["ok"], true, "{c}");
        assert_eq!(c["level"], "ok", "{c}");
        assert!(c["fix"].is_null() && !c["detail"].as_str().expect("detail").is_empty(), "{c}");
    }
    assert!(check_named(&v, "git-hook")["detail"].as_str().expect("detail").contains(BIN), "{v}");
    assert!(check_named(&v, "git-identity")["detail"].as_str().expect("detail").contains("Test Author"), "{v}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), names.len() + 1, "{text}");
    for (line, name) in lines.iter().zip(&names) {
        assert!(line.starts_with("ok ") && line.contains(name), "{text}");
    }
    assert_eq!(*lines.last().expect("summary"), "doctor: 0 failed, 0 warning(s), 11 checks");
}

#[test]
fn doctor_names_the_fix_for_a_deleted_hook_binary_a_missing_agent_no_identity_and_a_dead_run() {
    // Hooks that call a binary which was deleted since, and a marker whose process is gone.
    let copy = tempfile::tempdir().expect("tmp");
    let gone = copy.path().join("xtask");
    std::fs::copy(BIN, &gone).expect("copy xtask");
    let repo = doctor_repo(gone.to_str().expect("utf8"));
    std::fs::remove_file(&gone).expect("delete the hooks' binary");
    let mut dead = std::process::Command::new("true").spawn().expect("spawn");
    let pid = dead.id();
    dead.wait().expect("reap");
    repo.write(MARKER, &marker(NOW, Some(pid), "Awaiting postflight"));
    let (v, out, text) = doctor(&repo, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));
    assert_eq!(v["ok"], false);
    for name in ["git-hook", "claude-hook"] {
        let c = check_named(&v, name);
        assert_eq!((c["ok"].clone(), c["level"].clone()), (json!(false), json!("fail")), "{c}");
        assert!(c["detail"].as_str().expect("detail").contains(gone.to_str().expect("utf8")), "{c}");
        assert!(c["fix"].as_str().expect("fix").contains("xtask hooks install"), "{c}");
    }
    let m = check_named(&v, "markers");
    assert_eq!(m["level"], "fail", "{m}");
    assert!(m["fix"].as_str().expect("fix").contains("xtask implement 350"), "{m}");
    assert!(text.contains("FAIL  git-hook") && text.contains("fix: run `xtask hooks install --git`"), "{text}");
    assert_eq!(check_named(&v, "agent")["ok"], true);

    // An agent whose program is not on the PATH.
    let repo = doctor_repo(BIN);
    repo.write(".postflight.json", r#"{"agent": "no-such-agent-postflight --headless"}"#);
    let (v, out, text) = doctor(&repo, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));
    let c = check_named(&v, "agent");
    assert_eq!(c["level"], "fail", "{c}");
    assert!(c["detail"].as_str().expect("detail").contains("`no-such-agent-postflight` is not found"), "{c}");
    assert!(c["fix"].as_str().expect("fix").contains(".postflight.json"), "{c}");
    assert!(text.contains("FAIL  agent"), "{text}");
    assert!(
        v["checks"].as_array().expect("checks").iter().filter(|c| c["name"] != "agent").all(|c| c["ok"] == true),
        "{v}"
    );

    // No git identity: no user.name/email in any config (GIT_CONFIG_GLOBAL is /dev/null) or the environment.
    let repo = doctor_repo(BIN);
    let (v, out, text) =
        doctor(&repo, &["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));
    let c = check_named(&v, "git-identity");
    assert_eq!(c["level"], "fail", "{c}");
    assert!(c["fix"].as_str().expect("fix").contains("git config user.name"), "{c}");
    assert!(text.contains("FAIL  git-identity"), "{text}");
}

#[test]
fn completions_are_generated_for_every_shell() {
    let repo = TestRepo::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = repo.run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", render(&out));
        let script = String::from_utf8(out.stdout).expect("utf8");
        assert!(script.len() > 1000 && script.contains("implement") && script.contains("doctor"), "{shell}: {script}");
    }
    let out = repo.run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
}

#[test]
fn hooks_uninstall_removes_what_install_added_like_the_old_flag() {
    let repo = clean_repo();
    let before = repo.snapshot();
    for uninstall in [&["hooks", "uninstall"][..], &["hooks", "install", "--uninstall"][..]] {
        let out = repo.run(&["hooks", "install", "--bin", BIN]);
        assert!(out.status.success(), "{}", render(&out));
        assert!(repo.exists(".git/hooks/pre-commit") && repo.exists(".claude/settings.json"));
        let out = repo.run(uninstall);
        assert!(out.status.success(), "{uninstall:?}: {}", render(&out));
        assert!(!repo.exists(".git/hooks/pre-commit"), "{uninstall:?}");
        let settings = repo.read(".claude/settings.json");
        assert!(!settings.contains("hook stop"), "{uninstall:?}: {settings}");
        std::fs::remove_file(repo.file(".claude/settings.json")).expect("rm");
        std::fs::remove_dir(repo.file(".claude")).expect("rmdir");
        assert_eq!(before, repo.snapshot());
    }
    let out = repo.run(&["hooks", "uninstall", "--git", "--json"]);
    assert!(out.status.success(), "{}", render(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["installed"], false);
    assert!(v["actions"][0].as_str().expect("action").contains("not installed"), "{v}");
}

#[test]
fn check_reports_markers_of_other_operations_and_committed_markers() {
    let repo = clean_repo();
    let out = repo.run(&["set-status", "350", "implementing"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let research =
        marker(NOW, None, "r").replace("\"implement\"", "\"research\"").replace("postflight", "skill-researcher");
    repo.write(MARKER, &research);
    let committed = "specs/351_second_feature/.postflight-pending";
    repo.write(committed, &marker(NOW, None, "r").replace("350", "351"));
    repo.git(&["add", "-f", committed]);
    repo.git(&["commit", "-q", "-m", "old workflow's git add -A", "--", committed]);
    let findings = |repo: &TestRepo| -> Vec<(String, String, String)> {
        let (v, _) = check_json(repo, &[]);
        v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["file"].as_str().is_some_and(|p| p.ends_with(".postflight-pending")))
            .map(|f| {
                (
                    f["rule"].as_str().expect("r").into(),
                    f["file"].as_str().expect("f").into(),
                    f["message"].as_str().expect("m").into(),
                )
            })
            .collect()
    };
    for _ in 0..2 {
        // The second check is answered by the cache: the same findings.
        let found = findings(&repo);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found.iter().any(|(r, f, m)| r == "stale-marker" && f == MARKER && m.contains("`research` run")),
            "{found:#?}"
        );
        assert!(found.iter().any(|(r, f, _)| r == "stale-marker" && f == committed), "{found:#?}");
        assert!(
            found.iter().any(|(r, f, m)| r == "transient-tracked"
                && f == committed
                && m.contains("a committed marker is stale")),
            "{found:#?}"
        );
    }
    // An implement run's marker of the implementing task is no finding (the cache sees the new content).
    repo.write(MARKER, &marker(NOW, None, "r"));
    let found = findings(&repo);
    assert!(!found.iter().any(|(_, f, _)| f == MARKER), "{found:#?}");
}

/// Sets `"status"` of task `n` to `implementing` and its `"last_updated"` to now by editing
/// state.json's text in place, as the original workflow's jq does (seed 004 stage 2: `status:
/// "implementing", last_updated: $ts`; no postflight code, no marker index).
fn bash_set_implementing(repo: &TestRepo, n: u32, from: &str) {
    let state = repo.read("specs/state.json");
    let at = state.find(&format!("\"project_number\": {n},")).expect("entry");
    let rel = state[at..].find(&format!("\"status\": \"{from}\"")).expect("status") + at;
    let mut new = format!(
        "{}\"status\": \"implementing\"{}",
        &state[..rel],
        &state[rel + format!("\"status\": \"{from}\"").len()..]
    );
    let end = new[at..].find("\n    }").map_or(new.len(), |e| e + at);
    if let Some(key) = new[at..end].find("\"last_updated\": \"").map(|k| k + at + "\"last_updated\": \"".len()) {
        let close = new[key..].find('"').expect("closing quote") + key;
        let ts = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        new.replace_range(key..close, &ts);
    }
    repo.write("specs/state.json", &new);
}

fn legacy_marker(session: &str, n: u32) -> String {
    json!({"session_id": session, "skill": "skill-implementer", "task_number": n, "operation": "implement",
        "reason": "Postflight pending: status update, artifact linking, git commit", "created": NOW, "stop_hook_active": false})
    .to_string()
}

#[test]
fn hook_builds_the_marker_index_on_a_migrated_repo_and_still_sees_later_markers() {
    use postflight::guard::{marker_index, stop_hook};
    let repo = TestRepo::new();
    let (a, b, c) = ("sess_1773676459_551992", "sess_1773676460_551993", "sess_1773676461_551994");
    bash_set_implementing(&repo, 350, "planned");
    bash_set_implementing(&repo, 351, "planned");
    repo.write("specs/350_add_feature/.postflight-pending", &legacy_marker(a, 350));
    let index = repo.file(".git/postflight-pending");
    assert!(!index.exists(), "a repository of the original workflow has no index");
    // The index is stamped only for a state.json older than the racy margin (a fixed sleep on
    // purpose: file age is time itself).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let pg = postflight::repo::Repo::discover(repo.path()).expect("repo");
    let scan = stop_hook::candidate_markers(&repo.file("specs"));

    let blocks_for = |session: &str, task: &str| {
        let (v, out) = hook(&repo, &event(&repo, session, false));
        assert!(is_block(&v), "{session}: {}", render(&out));
        assert!(v["reason"].as_str().expect("reason").contains(&format!("task {task}")), "{v}");
    };
    blocks_for(a, "350");
    assert!(index.join("350").is_file(), "the marker found is an entry");
    let stamp = std::fs::read_to_string(index.join(".complete")).expect("the stamp");
    assert!(stamp.contains("specs/351_second_feature/.postflight-pending\n"), "351's path is watched: {stamp}");
    assert!(marker_index::is_complete(&pg), "the first call stamped the index");
    assert_eq!(stop_hook::hook_candidates(&pg, std::time::SystemTime::now()), scan, "the index answers as the scan");
    blocks_for(a, "350");
    let (v, _) = hook(&repo, &event(&repo, c, false));
    assert_eq!(v, json!({}), "another session may stop");

    // The original workflow writes a marker for a task that was implementing already: the
    // index watched its path, so the index path sees it.
    repo.write("specs/351_second_feature/.postflight-pending", &legacy_marker(b, 351));
    assert!(marker_index::is_complete(&pg));
    blocks_for(b, "351");
    assert_eq!(
        stop_hook::hook_candidates(&pg, std::time::SystemTime::now()),
        stop_hook::candidate_markers(&repo.file("specs"))
    );

    // It starts another task: state.json changes, so the index is not trusted until rebuilt.
    bash_set_implementing(&repo, 352, "ready_for_review");
    repo.write("specs/352_odd_legacy_task/.postflight-pending", &legacy_marker(c, 352));
    assert!(!marker_index::is_complete(&pg));
    blocks_for(c, "352");
    assert!(index.join("352").is_file());
    assert_eq!(
        stop_hook::hook_candidates(&pg, std::time::SystemTime::now()),
        stop_hook::candidate_markers(&repo.file("specs"))
    );
}

#[test]
fn preflight_keeps_a_complete_marker_index_complete() {
    use postflight::guard::{marker_index, stop_hook};
    let repo = TestRepo::new();
    // Past the racy margin, so the hook may stamp the index (file age is time itself).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let pg = postflight::repo::Repo::discover(repo.path()).expect("repo");
    let (v, _) = hook(&repo, &event(&repo, SESSION, false));
    assert_eq!(v, json!({}));
    assert!(marker_index::is_complete(&pg), "stamped by the scan");
    let out = repo.run(&["preflight", "350"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert!(marker_index::is_complete(&pg), "preflight carried the stamp over to the state.json it wrote");
    assert_eq!(stop_hook::hook_candidates(&pg, std::time::SystemTime::now()), vec![repo.file(MARKER)]);
    assert_eq!(stop_hook::candidate_markers(&repo.file("specs")), vec![repo.file(MARKER)]);
    let (v, out) = hook(&repo, &event(&repo, SESSION, false));
    assert!(is_block(&v), "{}", render(&out));
}
