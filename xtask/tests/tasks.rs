//! `init`, `task new`, `status`, `set-status` on temporary repositories.

use crate::support::{render, wait_for, TestRepo};

#[test]
fn set_status_moves_all_three_files_and_changes_one_line_each() {
    let repo = TestRepo::new();
    let (state0, todo0, plan0) = (
        repo.read("specs/state.json"),
        repo.read("specs/TODO.md"),
        repo.read("specs/350_add_feature/plans/implementation-001.md"),
    );
    let out = repo.run(&["set-status", "350", "implementing"]);
    assert!(out.status.success(), "{}", render(&out));
    let todo = repo.read("specs/TODO.md");
    let plan = repo.read("specs/350_add_feature/plans/implementation-001.md");
    let diff = |a: &str, b: &str| a.lines().zip(b.lines()).filter(|(x, y)| x != y).count();
    assert_eq!(diff(&todo0, &todo), 1);
    assert_eq!(diff(&plan0, &plan), 1);
    assert!(plan.contains("- **Status**: [IMPLEMENTING]"));
    let state: serde_json::Value = serde_json::from_str(&repo.read("specs/state.json")).expect("json");
    let t = &state["active_projects"][2];
    assert_eq!(t["status"], "implementing");
    assert_eq!(t["started"], crate::support::NOW);
    assert_eq!(t["last_updated"], crate::support::NOW);
    assert_ne!(state0, repo.read("specs/state.json"));
}

#[test]
fn set_status_refuses_forbidden_transition_and_changes_nothing() {
    let repo = TestRepo::new();
    assert!(repo.run(&["set-status", "350", "completed"]).status.success());
    let before = repo.snapshot();
    let out = repo.run(&["set-status", "350", "implementing"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("completed -> implementing"), "{}", render(&out));
    assert_eq!(before, repo.snapshot());
    let out = repo.run(&["set-status", "350", "implementing", "--force"]);
    assert!(out.status.success(), "{}", render(&out));
}

#[test]
fn task_new_allocates_past_every_number_in_use() {
    let repo = TestRepo::new();
    let out = repo.run(&["task", "new", "Third thing", "--language", "meta"]);
    assert!(out.status.success(), "{}", render(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "353");
    let todo = repo.read("specs/TODO.md");
    assert!(todo.contains("next_project_number: 354"));
    assert!(todo.contains("## Tasks\n\n### 353. Third thing\n"));
    let state: serde_json::Value = serde_json::from_str(&repo.read("specs/state.json")).expect("json");
    assert_eq!(state["next_project_number"], 354);
    assert_eq!(state["active_projects"][0]["project_name"], "third_thing");
}

// ---- plan new, task new --plan ----

use postflight::ledger::plan::PlanFile;
use serde_json::{json, Value};

fn json_out(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", render(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", render(out)))
}

/// Task `n`'s TODO.md block, up to its `---`.
fn todo_block(repo: &TestRepo, n: u32) -> String {
    let todo = repo.read("specs/TODO.md");
    let start = todo.find(&format!("### {n}.")).unwrap_or_else(|| panic!("no block for {n}"));
    todo[start..].split("\n---").next().expect("block").to_owned()
}

/// A phase as (id, title, marker).
type PhaseView = (String, String, Option<String>);

/// The header status and each phase, as the project's plan parser reads the file.
fn parsed_phases(repo: &TestRepo, rel: &str) -> (Option<String>, Vec<PhaseView>) {
    let plan = PlanFile::load(&repo.file(rel)).expect("the plan parses");
    let phases = plan.phases().into_iter().map(|p| (p.id, p.title, p.marker)).collect();
    (plan.header_status().map(|(_, m)| m), phases)
}

fn not_started(id: &str, title: &str) -> PhaseView {
    (id.to_owned(), title.to_owned(), Some("NOT STARTED".to_owned()))
}

#[test]
fn plan_new_writes_001_then_002_with_the_phases_given_and_moves_the_task_to_planned() {
    let repo = TestRepo::new();
    let out = repo.run(&["task", "new", "Parse the config", "--language", "rust", "--description", "Read .cfg files."]);
    assert!(out.status.success(), "{}", render(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "353");
    let dir = "specs/353_parse_the_config/plans";

    let out = repo.run(&["plan", "new", "353"]);
    assert!(out.status.success(), "{}", render(&out));
    let first = format!("{dir}/implementation-001.md");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("created {first} (1 phase)")), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("task 353: not_started -> planned"), "{}", render(&out));
    assert_eq!(parsed_phases(&repo, &first), (Some("PLANNED".into()), vec![not_started("1", "Implementation")]));
    let text = repo.read(&first);
    for part in [
        "# Implementation Plan: Task #353\n",
        "- **Task**: 353 - parse_the_config\n",
        "- **Status**: [PLANNED]\n",
        "- **Effort**: TBD\n",
        "- **Type**: rust\n",
        "## Overview\n\nRead .cfg files.\n",
        "## Implementation Phases\n",
        "**Files to modify**:\n- `",
        "**Verification**:\n",
    ] {
        assert!(text.contains(part), "missing {part:?} in\n{text}");
    }
    let first_text = text;

    let out =
        repo.run(&["plan", "new", "353", "--phase", "Scaffold", "--phase", "Core logic", "--phase", "Tests", "--json"]);
    let report = json_out(&out);
    let second = format!("{dir}/implementation-002.md");
    assert_eq!(report["plan"], second.as_str());
    assert_eq!(report["version"], 2);
    assert_eq!(report["phases"], json!(["Scaffold", "Core logic", "Tests"]));
    assert_eq!(report["from"], "planned");
    assert_eq!(report["files"], json!(["specs/state.json", "specs/TODO.md", second.as_str()]));
    assert_eq!(
        parsed_phases(&repo, &second),
        (
            Some("PLANNED".into()),
            vec![not_started("1", "Scaffold"), not_started("2", "Core logic"), not_started("3", "Tests")]
        )
    );
    assert_eq!(repo.read(&first), first_text, "the earlier version is left as it was");

    // All three files say planned; both plans are linked in state.json, the newest in TODO.md.
    let e = repo.state_entry(353);
    assert_eq!(e["status"], "planned");
    assert_eq!(e["planned"], crate::support::NOW);
    assert_eq!(e["last_updated"], crate::support::NOW);
    assert_eq!(
        e["artifacts"],
        json!([
            {"path": first, "type": "plan", "summary": "1 phase: Implementation"},
            {"path": second, "type": "plan", "summary": "3 phases: Scaffold; Core logic; Tests"}
        ])
    );
    let block = todo_block(&repo, 353);
    assert!(block.contains("- **Status**: [PLANNED]"), "{block}");
    assert!(block.contains(&format!("- **Plan**: [implementation-002.md]({second})")), "{block}");
    assert_eq!(block.matches("**Plan**").count(), 1, "{block}");
    // The tool's own reading agrees: consistent, three phases, resume at 1.
    let d = json_out(&repo.run(&["status", "353", "--json"]));
    assert_eq!(d["plan"], second.as_str());
    assert_eq!(d["consistent"], true);
    assert_eq!(d["phases"].as_array().map(Vec::len), Some(3));
    assert_eq!(d["resume_phase"], "1");
    // `check` has nothing to say about task 353 (the sample's own quirks aside).
    let out = repo.run(&["check", "--no-cache"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("353"), "{}", render(&out));
}

#[test]
fn plan_new_continues_the_seeds_numbering_and_replaces_the_plan_bullet() {
    let repo = TestRepo::new();
    let report = json_out(&repo.run(&["plan", "new", "350", "--phase", "Redo", "--json"]));
    assert_eq!(report["plan"], "specs/350_add_feature/plans/implementation-002.md");
    let block = todo_block(&repo, 350);
    assert!(
        block.contains("- **Plan**: [implementation-002.md](specs/350_add_feature/plans/implementation-002.md)"),
        "{block}"
    );
    assert!(!block.contains("implementation-001.md"), "{block}");
    let e = repo.state_entry(350);
    let paths: Vec<&str> =
        e["artifacts"].as_array().expect("a").iter().map(|a| a["path"].as_str().expect("p")).collect();
    assert_eq!(
        paths,
        ["specs/350_add_feature/plans/implementation-001.md", "specs/350_add_feature/plans/implementation-002.md"]
    );
    // Task 352's unknown status may move to planned; its directory is created.
    let out = repo.run(&["plan", "new", "352"]);
    assert!(out.status.success(), "{}", render(&out));
    assert!(repo.exists("specs/352_odd_legacy_task/plans/implementation-001.md"));
    assert_eq!(repo.state_entry(352)["status"], "planned");
}

#[test]
fn plan_new_refuses_a_task_under_way_or_done_unless_forced() {
    let repo = TestRepo::new();
    assert!(repo.run(&["set-status", "350", "implementing"]).status.success());
    let before = repo.snapshot();
    let out = repo.run(&["plan", "new", "350"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("task 350 has status `implementing`") && err.contains("--force"), "{}", render(&out));
    assert_eq!(before, repo.snapshot(), "nothing written");

    let out = repo.run(&["plan", "new", "350", "--force", "--phase", "Second try"]);
    assert!(out.status.success(), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("task 350: implementing -> planned"), "{}", render(&out));
    assert_eq!(repo.state_entry(350)["status"], "planned");
    assert!(repo
        .read("specs/350_add_feature/plans/implementation-002.md")
        .contains("### Phase 1: Second try [NOT STARTED]"));
    assert!(repo.read("specs/350_add_feature/plans/implementation-001.md").contains("- **Status**: [IMPLEMENTING]"));

    // completed -> planned is a transition the lifecycle forbids: only --force writes it.
    assert!(repo.run(&["set-status", "351", "completed"]).status.success());
    let before = repo.snapshot();
    let out = repo.run(&["plan", "new", "351"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert_eq!(before, repo.snapshot());
    let out = repo.run(&["plan", "new", "351", "--force"]);
    assert!(out.status.success(), "{}", render(&out));
    assert_eq!(repo.state_entry(351)["status"], "planned");
}

#[test]
fn plan_new_refuses_bad_input_and_changes_nothing() {
    let repo = TestRepo::new();
    let before = repo.snapshot();
    for (args, words) in [
        (vec!["plan", "new", "350", "--phase", "Fix [API] layer"], "square brackets"),
        (vec!["plan", "new", "350", "--phase", " "], "not a phase title"),
        (vec!["plan", "new", "999"], "999"),
        (vec!["plan", "new", "0350"], "not a task number"),
    ] {
        let out = repo.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", render(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(words), "{args:?}: {}", render(&out));
        assert_eq!(before, repo.snapshot(), "{args:?} changed a file");
    }
}

#[test]
fn task_new_with_plan_creates_the_task_planned_with_its_plan() {
    let repo = TestRepo::new();
    let out =
        repo.run(&["task", "new", "Ship it", "--priority", "high", "--plan", "--phase", "Build", "--phase", "Release"]);
    assert!(out.status.success(), "{}", render(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "353\n", "the number is all stdout says");
    let plan = "specs/353_ship_it/plans/implementation-001.md";
    assert!(String::from_utf8_lossy(&out.stderr).contains(plan), "{}", render(&out));
    assert_eq!(
        parsed_phases(&repo, plan),
        (Some("PLANNED".into()), vec![not_started("1", "Build"), not_started("2", "Release")])
    );
    let e = repo.state_entry(353);
    assert_eq!(e["status"], "planned");
    assert_eq!(e["artifacts"][0]["path"], plan);
    let block = todo_block(&repo, 353);
    assert!(
        block.contains("- **Status**: [PLANNED]")
            && block.contains(&format!("- **Plan**: [implementation-001.md]({plan})")),
        "{block}"
    );
    assert!(repo.read("specs/TODO.md").contains("next_project_number: 354"));
    // --phase without --plan is a usage error.
    let out = repo.run(&["task", "new", "Other", "--phase", "X"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
}

// ---- status: the RUN column, --status, status N ----

const MARKER_350: &str = "specs/350_add_feature/.postflight-pending";

fn demo_agent() -> String {
    format!("'{}' demo-agent", env!("CARGO_BIN_EXE_xtask"))
}

/// Runs `xtask implement 350` with a scripted agent whose steps are `steps`.
fn implement_350(repo: &TestRepo, steps: Value) -> std::process::Output {
    let script = repo.home().join("script.json");
    std::fs::write(&script, json!({ "steps": steps }).to_string()).expect("script");
    repo.xtask(&["implement", "350", "--agent", &demo_agent()]).env("XTASK_DEMO_SCRIPT", &script).output().expect("run")
}

/// The `status` table's row of task `n`.
fn status_row(repo: &TestRepo, args: &[&str], n: u32) -> String {
    let out = repo.run(args);
    assert!(out.status.success(), "{}", render(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let header = text.lines().next().expect("header");
    assert!(header.contains("  RUN  ") || header.contains("  RUN "), "{text}");
    text.lines()
        .find(|l| l.trim_start().starts_with(&format!("{n} ")))
        .unwrap_or_else(|| panic!("no row for {n}: {text}"))
        .to_owned()
}

/// The `status --json` row of task `n`.
fn status_json_row(repo: &TestRepo, n: u32) -> Value {
    let rows = json_out(&repo.run(&["status", "--json"]));
    rows.as_array().expect("rows").iter().find(|r| r["number"] == n).expect("row").clone()
}

/// Kills the agent's process group when the test ends, whatever happened.
struct KillGroupOnDrop(Option<String>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            crate::support::kill_process_group(&g);
        }
    }
}

#[test]
fn status_shows_a_live_run_and_then_the_killed_one_as_interrupted() {
    let repo = TestRepo::new();
    let pid_file = repo.home().join("agent.pgid");
    let script = repo.home().join("script.json");
    let step = json!({"pid_file": pid_file.to_str().expect("utf8"), "sleep_ms": 60000,
        "metadata": {"status": "partial", "summary": "x", "artifacts": []}});
    std::fs::write(&script, json!({ "steps": [step] }).to_string()).expect("script");
    let mut child = repo
        .xtask(&["implement", "350", "--agent", &demo_agent(), "--max-iterations", "3"])
        .env("XTASK_DEMO_SCRIPT", &script)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    crate::support::wait_until(std::time::Duration::from_secs(60), "the agent never started", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| !s.trim().is_empty())
    });
    let pgid = std::fs::read_to_string(&pid_file).expect("pgid").trim().to_owned();
    let mut guard = KillGroupOnDrop(Some(pgid.clone()));
    let pid = child.id();

    let row = status_row(&repo, &["status"], 350);
    let running = format!("running (pid {pid}, iteration 1/3, ");
    assert!(row.contains(&running), "{row}");
    assert!(row.contains("s)"), "elapsed time: {row}");
    let run = &status_json_row(&repo, 350)["run"];
    assert_eq!(run["state"], "running");
    assert_eq!(run["pid"], pid);
    assert_eq!(run["iteration"], 1);
    assert_eq!(run["max_iterations"], 3);
    assert!(run["elapsed_seconds"].as_u64().is_some_and(|s| s < 120), "{run}");
    assert_eq!(status_row(&repo, &["status"], 351).split_whitespace().nth(5), Some("-"), "an idle task: -");
    let d = json_out(&repo.run(&["status", "350", "--json"]));
    assert_eq!(d["run"]["state"], "running");
    assert_eq!(d["resume_command"], Value::Null, "a live run has nothing to resume");
    let text = String::from_utf8_lossy(&repo.run(&["status", "350"]).stdout).into_owned();
    assert!(text.contains(&format!("  run          {running}")), "{text}");
    // A new plan would change what the live agent works from: refused even with --force.
    let out = repo.run(&["plan", "new", "350", "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("live run"), "{}", render(&out));

    // SIGKILL the tool: its agent still runs, and must be stopped before a resume.
    child.kill().expect("SIGKILL xtask");
    let _ = child.wait();
    let row = status_row(&repo, &["status"], 350);
    assert!(row.contains(&format!("interrupted (its agent, process group {pgid}, still runs)")), "{row}");
    let d = json_out(&repo.run(&["status", "350", "--json"]));
    assert_eq!(d["run"]["agent_pgid"].as_u64().map(|g| g.to_string()), Some(pgid.clone()));
    assert_eq!(d["resume_command"], "xtask cancel 350 && xtask implement 350");
    // Then SIGKILL the agent's group: nothing records anything; the marker stays.
    crate::support::kill_process_group(&pgid);
    guard.0 = None;
    assert!(repo.exists(MARKER_350));
    let mut row = String::new();
    crate::support::poll(std::time::Duration::from_secs(10), || {
        row = status_row(&repo, &["status"], 350);
        !row.contains("(its agent")
    });
    assert_eq!(row.split_whitespace().nth(5), Some("interrupted"), "{row}");
    let run = &status_json_row(&repo, 350)["run"];
    assert_eq!(run["state"], "interrupted", "{run}");
    assert_eq!(run["agent_pgid"], Value::Null, "{run}");
    let d = json_out(&repo.run(&["status", "350", "--json"]));
    assert_eq!(d["run"]["state"], "interrupted");
    assert_eq!(d["resume_command"], "xtask implement 350");
    assert_eq!(d["session_id"], crate::support::SESSION);
    assert_eq!(d["log"], "specs/350_add_feature/.postflight-agent.log");
    let text = String::from_utf8_lossy(&repo.run(&["status", "350"]).stdout).into_owned();
    for line in [
        "  run          interrupted\n",
        "  resume       xtask implement 350\n",
        "  log          specs/350_add_feature/.postflight-agent.log\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // The marker of this version records the run's limit and when this process started it.
    let marker: Value = serde_json::from_str(&repo.read(MARKER_350)).expect("marker");
    assert_eq!(marker["max_iterations"], 3);
    assert!(marker["run_started"].as_str().is_some_and(|s| s.ends_with('Z')), "{marker}");
}

#[test]
fn status_shows_a_run_started_by_preflight_as_pending() {
    let repo = TestRepo::new();
    let out = repo.run(&["preflight", "350"]);
    assert!(out.status.success(), "{}", render(&out));
    let row = status_row(&repo, &["status"], 350);
    assert!(row.contains("pending (postflight owed)"), "{row}");
    let d = json_out(&repo.run(&["status", "350", "--json"]));
    assert_eq!(d["run"], json!({"state": "pending", "session_id": crate::support::SESSION}));
    assert_eq!(d["resume_command"], "xtask postflight 350");
}

#[test]
fn status_shows_each_outcome_with_its_reason() {
    let cases = [
        (
            json!({"status": "failed", "summary": "Could not build.", "artifacts": [],
                "errors": [{"message": "cargo build failed: E0308", "recoverable": true}]}),
            "failed",
            "cargo build failed: E0308",
        ),
        (
            json!({"status": "blocked", "summary": "Needs an API key.", "artifacts": [],
                "errors": [{"message": "missing_dependency: no API key", "recoverable": false}]}),
            "blocked",
            "missing_dependency: no API key",
        ),
        (
            json!({"status": "partial", "summary": "Half.", "artifacts": [],
                "requires_user_review": true, "review_reason": "The spec contradicts itself.",
                "partial_progress": {"phases_completed": 1, "phases_total": 3},
                "metadata": {"phases_completed": 1, "phases_total": 3}}),
            "review",
            "The spec contradicts itself.",
        ),
    ];
    for (meta, word, reason) in cases {
        let repo = TestRepo::new();
        let complete: &[&str] = if word == "review" { &["1"] } else { &[] };
        let out = implement_350(&repo, json!([{"complete_phases": complete, "metadata": meta}]));
        assert_eq!(out.status.code(), Some(4), "{word}: {}", render(&out));
        assert!(!repo.exists(MARKER_350), "{word}: the run finished");
        let row = status_row(&repo, &["status"], 350);
        assert!(row.contains(&format!("{word}: {reason}")), "{word}: {row}");
        let run = &status_json_row(&repo, 350)["run"];
        assert_eq!(run["state"], word);
        assert_eq!(run["reason"], reason);
        let d = json_out(&repo.run(&["status", "350", "--json"]));
        assert_eq!(d["last_outcome"], word);
        assert_eq!(d["reason"], reason);
        assert_eq!(d["resume_command"], "xtask implement 350");
        assert_eq!(d["session_id"], crate::support::SESSION);
        assert_eq!(d["log"], "specs/350_add_feature/.postflight-agent.log");
        assert!(repo.exists("specs/350_add_feature/.postflight-agent.log"));
        let text = String::from_utf8_lossy(&repo.run(&["status", "350"]).stdout).into_owned();
        assert!(text.contains(&format!("  last outcome {word}: {reason}\n")), "{text}");
        assert!(text.contains("  resume       xtask implement 350\n"), "{text}");
    }
}

#[test]
fn status_filters_by_status_words() {
    let repo = TestRepo::new();
    let numbers = |args: &[&str]| -> Vec<u64> {
        let rows = json_out(&repo.run(args));
        rows.as_array().expect("rows").iter().map(|r| r["number"].as_u64().expect("n")).collect()
    };
    assert_eq!(numbers(&["status", "--json"]), [352, 351, 350]);
    assert_eq!(numbers(&["status", "--status", "planned", "--json"]), [351, 350]);
    assert_eq!(numbers(&["status", "--status", "ready_for_review", "--json"]), [352], "a word the ledger uses");
    assert_eq!(
        numbers(&["status", "--status", "[PLANNED]", "--status", "ready_for_review", "--json"]),
        [352, 351, 350]
    );
    assert_eq!(numbers(&["status", "--status", "completed", "--json"]), Vec::<u64>::new());
    let out = repo.run(&["status", "--status", "implementing"]);
    assert!(out.status.success(), "{}", render(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1, "the header only: {}", render(&out));
    let out = repo.run(&["status", "--status", "plannd"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `planned`"), "{}", render(&out));
    let out = repo.run(&["status", "350", "--status", "planned"]);
    assert_eq!(out.status.code(), Some(2), "a task number and a filter do not go together: {}", render(&out));
}

// ---- next ----

#[test]
fn next_lists_planned_tasks_with_a_plan_and_completed_dependencies_by_priority() {
    let repo = TestRepo::new();
    // 351 depends on 350; 354 on task 12, archived as completed; 355 on 9, found nowhere.
    for args in [
        vec!["task", "new", "Urgent fix", "--priority", "critical", "--plan"],
        vec!["task", "new", "After the archive", "--plan"],
        vec!["task", "new", "Missing dependency", "--plan"],
        vec!["task", "new", "Planned without a plan"],
        vec!["task", "new", "Not planned"],
    ] {
        assert!(repo.run(&args).status.success(), "{args:?}");
    }
    assert!(repo.run(&["set-status", "356", "planned"]).status.success());
    let mut state: Value = serde_json::from_str(&repo.read("specs/state.json")).expect("json");
    for e in state["active_projects"].as_array_mut().expect("a") {
        match e["project_number"].as_u64() {
            Some(351) => e["depends_on"] = json!([350]),
            Some(354) => e["dependencies"] = json!([12]),
            Some(355) => e["dependencies"] = json!(["9"]),
            _ => {}
        }
    }
    repo.write("specs/state.json", &format!("{}\n", serde_json::to_string_pretty(&state).expect("json")));
    repo.write(
        "specs/archive/state.json",
        "{\"archived_projects\": [], \"completed_projects\": [{\"project_number\": 12, \"status\": \"completed\"}, {\"project_number\": 9, \"status\": \"abandoned\"}]}\n",
    );

    let ready = |repo: &TestRepo| -> Vec<u64> {
        let list = json_out(&repo.run(&["next", "--json"]));
        list.as_array().expect("a list").iter().map(|t| t["number"].as_u64().expect("n")).collect()
    };
    assert_eq!(ready(&repo), [353, 350, 354], "critical, high, then no priority by number");
    let list = json_out(&repo.run(&["next", "--json"]));
    assert_eq!(list[0]["plan"], "specs/353_urgent_fix/plans/implementation-001.md");
    assert_eq!(list[0]["priority"], "critical");
    assert_eq!(list[2]["depends_on"], json!([12]));
    let out = repo.run(&["next"]);
    assert!(out.status.success(), "{}", render(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with(" TASK  PRIORITY  LANGUAGE  PLAN"), "{text}");
    assert!(lines[1].trim_start().starts_with("353  critical") && lines[1].ends_with("Urgent fix"), "{text}");
    assert!(lines[2].trim_start().starts_with("350  high"), "{text}");
    assert_eq!(lines.len(), 4, "{text}");

    // Completing 350 makes 351 ready.
    assert!(repo.run(&["set-status", "350", "completed"]).status.success());
    assert_eq!(ready(&repo), [353, 351, 354]);

    // Nothing ready: one line that says why.
    for n in ["351", "353", "354"] {
        assert!(repo.run(&["set-status", n, "implementing"]).status.success());
    }
    let out = repo.run(&["next"]);
    assert!(out.status.success(), "{}", render(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "no task is ready to implement (355 waits for 9; 356 has no plan)\n",
        "{}",
        render(&out)
    );
    assert_eq!(ready(&repo), Vec::<u64>::new());
}

// ---- the plan is what implement works from ----

#[test]
fn a_task_planned_by_task_new_plan_is_implemented_from_that_plan() {
    let repo = TestRepo::new();
    let out = repo.run(&["task", "new", "Small change", "--plan", "--phase", "Edit", "--phase", "Check"]);
    assert!(out.status.success(), "{}", render(&out));
    let plan = "specs/353_small_change/plans/implementation-001.md";
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "plan 353"]);
    let script = repo.home().join("script.json");
    let meta = json!({"status": "implemented", "summary": "Done.", "artifacts": [],
        "completion_data": {"completion_summary": "Changed it."},
        "metadata": {"phases_completed": 2, "phases_total": 2}});
    std::fs::write(&script, json!({"steps": [{"complete_phases": ["1", "2"], "metadata": meta}]}).to_string())
        .expect("script");
    let out = repo
        .xtask(&["implement", "353", "--agent", &demo_agent()])
        .env("XTASK_DEMO_SCRIPT", &script)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(repo.state_entry(353)["status"], "completed");
    let (header, phases) = parsed_phases(&repo, plan);
    assert_eq!(header.as_deref(), Some("COMPLETED"));
    assert!(phases.iter().all(|(_, _, m)| m.as_deref() == Some("COMPLETED")), "{phases:?}");
    let d = json_out(&repo.run(&["status", "353", "--json"]));
    assert_eq!(d["last_outcome"], "completed");
    assert_eq!(d["run"], Value::Null);
}

#[test]
fn implement_without_a_plan_points_at_plan_new() {
    let repo = TestRepo::new();
    assert!(repo.run(&["task", "new", "No plan yet"]).status.success());
    assert!(repo.run(&["set-status", "353", "planned"]).status.success());
    let out = repo.run(&["implement", "353", "--agent", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hint: plan the task first: `xtask plan new 353`") && err.contains("docs/plans.md"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// `log`: the run log with one header and one exit line per invocation, split into runs.

const LOG: &str = "specs/350_add_feature/.postflight-agent.log";
const MARKER: &str = "specs/350_add_feature/.postflight-pending";

/// Runs `xtask implement 350` with the scripted agent following `steps` (a script of its own).
fn implement_with(repo: &TestRepo, name: &str, steps: serde_json::Value, extra: &[&str]) -> std::process::Child {
    let script = repo.home().join(format!("{name}.json"));
    std::fs::write(&script, serde_json::json!({ "steps": steps }).to_string()).expect("script");
    let agent = format!("'{}' demo-agent", env!("CARGO_BIN_EXE_xtask"));
    let mut args = vec!["implement", "350", "--agent", &agent];
    args.extend_from_slice(extra);
    repo.xtask(&args)
        .env("XTASK_DEMO_SCRIPT", &script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn implement")
}

fn meta(status: &str, done: u64) -> serde_json::Value {
    serde_json::json!({
        "status": status,
        "summary": format!("{done} phase(s) done."),
        "artifacts": [{"type": "implementation", "path": "src/feature.rs", "summary": "The feature"}],
        "partial_progress": {"phases_completed": done, "phases_total": 3, "details": "more to do"},
        "completion_data": {"completion_summary": "Done."},
        "metadata": {"session_id": "{session_id}", "phases_completed": done, "phases_total": 3}
    })
}

fn headers(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("[postflight] ==> ")).collect()
}

fn footers(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("[postflight] <== ")).collect()
}

#[test]
fn log_shows_a_header_and_an_exit_line_per_invocation_and_selects_runs() {
    let repo = TestRepo::new();
    let first = serde_json::json!([{"write": {"src/feature.rs": "one\n"}, "complete_phases": ["1"],
        "stdout": "output of run one", "metadata": meta("partial", 1)}]);
    let out = implement_with(&repo, "one", first, &["--max-iterations", "1"]).wait_with_output().expect("run 1");
    assert_eq!(out.status.code(), Some(3), "{}", render(&out));
    let second = serde_json::json!([{"write": {"src/feature.rs": "two\n"}, "complete_phases": ["2", "3"],
        "stdout": "output of run two", "metadata": meta("implemented", 3)}]);
    let out = implement_with(&repo, "two", second, &[]).wait_with_output().expect("run 2");
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));

    let out = repo.run(&["log", "350"]);
    assert!(out.status.success(), "{}", render(&out));
    let all = String::from_utf8(out.stdout).expect("utf8");
    assert_eq!(all, repo.read(LOG), "without --run the whole log is printed");
    let hs = headers(&all);
    assert_eq!(hs.len(), 2, "{all}");
    for (h, k) in hs.iter().zip(["1/1", "1/5"]) {
        assert!(h.contains(&format!(" session {} run ", crate::support::SESSION)), "{h}");
        assert!(h.contains(&format!(" iteration {k}: ")) && h.ends_with("demo-agent"), "{h}");
    }
    let run_of = |h: &str| h.split(" run ").nth(1).and_then(|r| r.split(' ').next()).map(str::to_owned);
    assert_ne!(run_of(hs[0]), run_of(hs[1]), "two implement processes are two runs: {all}");
    let fs = footers(&all);
    assert_eq!(fs.len(), 2, "{all}");
    assert!(fs.iter().all(|f| f.contains(" iteration 1: exit 0 after ") && f.ends_with('s')), "{fs:?}");
    let header_at = all.find(hs[0]).expect("header");
    let output_at = all.find("output of run one").expect("output");
    let footer_at = all.find(fs[0]).expect("footer");
    assert!(header_at < output_at && output_at < footer_at, "{all}");

    let out = repo.run(&["log", "350", "--run", "1"]);
    assert!(out.status.success(), "{}", render(&out));
    let one = String::from_utf8(out.stdout).expect("utf8");
    assert!(one.contains("output of run one") && !one.contains("output of run two"), "{one}");
    assert_eq!(headers(&one), [hs[0]]);
    for last in ["last", "-1", "2"] {
        let out = repo.run(&["log", "350", "--run", last]);
        let text = String::from_utf8(out.stdout).expect("utf8");
        assert!(text.contains("output of run two") && !text.contains("output of run one"), "--run {last}: {text}");
        assert!(all.ends_with(&text), "--run {last} is the end of the log");
    }
    let out = repo.run(&["log", "350", "--run", "3"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the log has 2 run(s)"), "{}", render(&out));
    // A task that never ran has no log: refused, exit 2.
    let out = repo.run(&["log", "351"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    // --follow on a finished run prints it and ends at once.
    let out = repo.run(&["log", "350", "--follow"]);
    assert!(out.status.success(), "{}", render(&out));
    assert_eq!(String::from_utf8(out.stdout).expect("utf8"), all);
}

#[test]
fn log_follow_prints_a_live_run_to_its_end_and_stops_when_it_ends() {
    let repo = TestRepo::new();
    let steps = serde_json::json!([{"write": {"src/feature.rs": "x\n"}, "complete_phases": ["1", "2", "3"],
        "stdout": "working on it", "sleep_ms": 1500, "metadata": meta("implemented", 3)}]);
    let run = implement_with(&repo, "slow", steps, &[]);
    wait_for(std::time::Duration::from_secs(30), "the run's marker", || repo.exists(MARKER));
    let follow = repo
        .xtask(&["log", "350", "--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn log --follow");
    let out = run.wait_with_output().expect("implement");
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let mut follow = follow;
    wait_for(std::time::Duration::from_secs(30), "log --follow to end", || {
        follow.try_wait().expect("try_wait").is_some()
    });
    let out = follow.wait_with_output().expect("log output");
    assert!(out.status.success(), "{}", render(&out));
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert_eq!(text, repo.read(LOG), "--follow printed the whole log, to its last line");
    assert_eq!(headers(&text).len(), 1, "{text}");
    assert!(text.contains("working on it"), "{text}");
    assert!(footers(&text).iter().any(|f| f.contains("iteration 1: exit 0 after")), "{text}");
}

// ---------------------------------------------------------------------------------------------
// --json on every command that prints a result, and errors as JSON.

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", render(out)))
}

#[test]
fn every_printing_command_accepts_json_and_prints_parseable_json() {
    let empty = TestRepo::empty();
    let out = empty.run(&["init", "--json"]);
    assert!(out.status.success(), "{}", render(&out));
    let v = json_of(&out);
    assert_eq!(v["created"], serde_json::json!(["specs/state.json", "specs/TODO.md"]), "{v}");

    let repo = TestRepo::new();
    let bin = env!("CARGO_BIN_EXE_xtask");
    let runs: Vec<(Vec<&str>, &str)> = vec![
        (vec!["task", "new", "A third feature", "--json"], "task"),
        (vec!["set-status", "351", "implementing", "--json"], "from"),
        (vec!["status", "--json"], ""),
        (vec!["status", "350", "--json"], "number"),
        (vec!["check", "--json"], "findings"),
        (vec!["implement", "350", "--agent", "true", "--dry-run", "--json"], "changes"),
        (vec!["hooks", "install", "--bin", bin, "--json"], "actions"),
        (vec!["hooks", "uninstall", "--json"], "actions"),
        (vec!["doctor", "--json"], "checks"),
    ];
    for (args, key) in runs {
        let out = repo.run(&args);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}: {}", render(&out));
        let v = json_of(&out);
        assert!(key.is_empty() || v.get(key).is_some(), "{args:?}: no {key:?} in {v}");
    }
    let set = json_of(&repo.run(&["set-status", "351", "planned", "--force", "--json"]));
    assert_eq!(
        (set["task"].clone(), set["to"].clone()),
        (serde_json::json!(351), serde_json::json!("planned")),
        "{set}"
    );
    repo.write("src/feature.rs", "fn feature() {}\n");
    let out = repo.run(&["commit", "350", "-m", "task 350: feature", "--json", "--", "src/feature.rs"]);
    assert!(out.status.success(), "{}", render(&out));
    let v = json_of(&out);
    assert_eq!(v["committed"], true, "{v}");
    assert_eq!(v["paths"], serde_json::json!(["src/feature.rs"]), "{v}");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]).trim(), v["commit"].as_str().expect("commit id"));
    let again = json_of(&repo.run(&["commit", "350", "--json", "--", "src/feature.rs"]));
    assert_eq!(
        (again["committed"].clone(), again["commit"].clone()),
        (serde_json::json!(false), serde_json::Value::Null)
    );
}

#[test]
fn an_error_with_json_is_json_on_stdout_with_the_same_exit_code() {
    let repo = TestRepo::new();
    let cases: Vec<Vec<&str>> = vec![
        vec!["set-status", "999", "planned"],
        vec!["set-status", "350", "bogus"],
        vec!["cancel", "350"],
        vec!["status", "999"],
        vec!["commit", "350", "--", "../outside"],
        vec!["status", "--no-such-flag"],
    ];
    for args in cases {
        let plain = repo.run(&args);
        let mut with = args.clone();
        with.insert(1, "--json");
        let out = repo.run(&with);
        assert_eq!(out.status.code(), plain.status.code(), "{with:?}: {}", render(&out));
        assert_ne!(out.status.code(), Some(0), "{with:?}");
        let v = json_of(&out);
        let msg = v["error"].as_str().unwrap_or_else(|| panic!("{with:?}: {v}"));
        assert!(!msg.is_empty() && String::from_utf8_lossy(&plain.stderr).contains(msg), "{with:?}: {v}");
        assert!(v["causes"].is_array() && v.get("hint").is_some(), "{with:?}: {v}");
        assert_eq!(v["exit_code"], serde_json::json!(out.status.code().expect("code")), "{with:?}");
        assert!(plain.stdout.is_empty(), "{args:?}: without --json nothing goes to stdout");
    }
}

// ---------------------------------------------------------------------------------------------
// Install and adopt (issue 12): the installed binaries, as `xtask` and as `cargo xtask`, in fresh
// repositories outside this project, following the README's quick start as written.

/// The README's quick-start block: the `sh` block after the `<!-- quick start` comment.
fn readme_quick_start() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md");
    let start = readme.find("<!-- quick start").expect("the README has a quick-start block");
    let block = &readme[start..];
    let body = block.split_once("```sh\n").expect("an sh block").1;
    let body = body.split_once("```").expect("the block ends").0;
    body.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()
}

/// `xtask` and `cargo-xtask` "installed" in a bin directory of their own, as `cargo install`
/// puts them side by side.
fn installed_bin_dir(repo: &TestRepo) -> std::path::PathBuf {
    let bin = repo.home().join("cargo-home/bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for (name, from) in [("xtask", env!("CARGO_BIN_EXE_xtask")), ("cargo-xtask", env!("CARGO_BIN_EXE_cargo-xtask"))] {
        std::fs::copy(from, bin.join(name)).expect("install");
    }
    bin
}

#[test]
fn the_readme_quick_start_works_as_written_with_xtask_and_cargo_xtask_in_rust_and_other_repositories() {
    let lines = readme_quick_start();
    assert!(lines.iter().any(|l| l.starts_with("xtask implement 1")), "{lines:?}");
    let cargo = std::env::var_os("CARGO").expect("cargo sets CARGO for its tests");
    for (flavour, rust) in [("xtask", false), ("cargo xtask", false), ("cargo xtask", true), ("xtask", true)] {
        let repo = TestRepo::empty();
        if rust {
            repo.write("Cargo.toml", "[package]\nname = \"greeter\"\nversion = \"0.1.0\"\nedition = \"2021\"\n");
            repo.write("src/main.rs", "fn main() {}\n");
        }
        repo.write("README.md", "# a project of the user's\n");
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "the user's project"]);
        let bin = installed_bin_dir(&repo);
        let cargo_dir = std::path::Path::new(&cargo).parent().expect("cargo's directory").to_path_buf();
        // Only the installed binaries and the system's tools: no `xtask` of this build on the PATH.
        let path =
            std::env::join_paths([bin.clone(), cargo_dir, "/usr/local/bin".into(), "/usr/bin".into(), "/bin".into()])
                .expect("PATH");
        for line in &lines {
            let line = match line.strip_prefix("xtask ") {
                Some(rest) if flavour == "cargo xtask" => format!("cargo xtask {rest}"),
                _ => line.clone(),
            };
            let out = repo
                .command("sh")
                .args(["-c", &line])
                .env("PATH", &path)
                .env("CARGO_HOME", repo.home().join("cargo-home"))
                .env_remove("XTASK_NOW")
                .output()
                .expect("sh");
            assert_eq!(out.status.code(), Some(0), "{flavour} (rust: {rust}): `{line}`: {}", render(&out));
            if line.contains(" status") {
                assert!(String::from_utf8_lossy(&out.stdout).contains("completed"), "{}", render(&out));
            }
        }
        assert_eq!(repo.git(&["log", "-1", "--format=%s"]).trim(), "task 1: complete implementation", "{flavour}");
        let files = repo.git(&["show", "--name-only", "--format=", "HEAD"]);
        assert!(files.lines().any(|f| f == "greet.sh"), "{flavour}: {files}");
        let status = repo.git(&["status", "--porcelain"]);
        let left: Vec<&str> = status.lines().filter(|l| !l.contains(".home-for-tests")).collect();
        assert_eq!(left, ["?? .gitignore"], "{flavour}: only init's .gitignore edit is left for the user to commit");
    }
}

#[test]
fn init_prints_the_next_steps() {
    let repo = TestRepo::empty();
    let out = repo.run(&["init"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["next:", "git add specs .gitignore && git commit", "xtask task new", "--plan", "xtask hooks install"]
    {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let out = repo.run(&["init", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        v["next_steps"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x.as_str().is_some_and(|x| x.contains("hooks install")))),
        "{v}"
    );
    assert!(
        v["next_steps"][0].as_str().is_some_and(|s| s.starts_with("xtask task new")),
        "nothing left to commit the second time: {v}"
    );
}
