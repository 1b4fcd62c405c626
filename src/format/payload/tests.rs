//! Unit tests of the payload format: intake, queue, status moves, records, scoping, checks.

use super::*;
use crate::format::{ChangedFile, CommandRun};

/// A stage-5 payload in the pipeline's shape, written with 4-space indentation and `meta` last
/// (a file's own layout that every edit must keep).
const STAGE5: &str = r#"{
    "requirement": {
        "summary": "Greet people",
        "constraints": [],
        "acceptanceCriteria": ["says hello"],
        "openQuestions": []
    },
    "plan": {
        "steps": [
            {"id": "1", "name": "Greeter", "owner": "me", "dependencies": [], "files": ["greet.sh"], "status": "ready", "successSignal": "prints hello"}
        ],
        "risks": [],
        "artifacts": []
    },
    "tasks": {
        "items": [
            {
                "id": "task-1",
                "parentId": null,
                "name": "Greeting",
                "status": "ready",
                "planStepId": "1",
                "acceptanceCriteria": [],
                "relatedFiles": []
            },
            {
                "id": "task-1.2",
                "parentId": "task-1",
                "name": "Second",
                "status": "ready",
                "planStepId": "1",
                "acceptanceCriteria": ["prints twice"],
                "relatedFiles": [{"path": "greet.sh", "type": "TO_MODIFY", "description": "the script", "lineStart": 1, "lineEnd": 3}]
            },
            {
                "id": "task-1.1",
                "parentId": "task-1",
                "name": "First",
                "status": "ready",
                "planStepId": "1",
                "acceptanceCriteria": [],
                "relatedFiles": []
            },
            {
                "id": "task-1.3",
                "parentId": "task-1",
                "name": "Third",
                "status": "completed",
                "planStepId": "1",
                "acceptanceCriteria": [],
                "relatedFiles": []
            }
        ],
        "dependencies": [
            {"taskId": "task-1.2", "dependsOn": ["task-1.1"], "reason": "builds on it"}
        ],
        "statusSummary": {"ready": 9, "blocked": 0, "in_progress": 0, "completed": 0}
    },
    "testPlan": {
        "coverageMatrix": [
            {"requirementId": "req-1", "planStepId": "1", "taskId": "task-1.2", "behavior": "twice", "testLevel": "unit", "scenarioIds": ["scenario-2"]}
        ],
        "scenarios": [
            {"id": "scenario-1", "name": "Once", "type": "unit", "status": "ready", "steps": ["run it"], "expectedOutput": {"lines": 1}},
            {"id": "scenario-2", "name": "Twice", "type": "unit", "status": "ready", "steps": ["run it twice"], "expectedOutput": {"lines": 2}}
        ],
        "fixtures": [],
        "validationCommands": [
            {"suite": "unit", "command": "sh greet.sh", "environment": "test", "expectedDuration": "1s"}
        ]
    },
    "implementation": {
        "changes": [],
        "tests": [],
        "commands": [
            {"id": "command-4", "command": "true", "taskId": "task-1.3", "timestamp": "2026-01-01T00:00:00Z", "exitCode": 0, "duration": "1s", "output": ""}
        ]
    },
    "meta": {
        "currentStage": "4-qa",
        "lastUpdatedBy": "4-qa",
        "lastUpdatedAt": "2026-01-01T00:00:00Z"
    }
}
"#;

const STAGE4: &str = "{\n\t\"meta\": {\"currentStage\": \"3-qa\"},\n\t\"requirement\": {\"summary\": \"Reset\"},\n\t\"plan\": {\"steps\": [\n\t\t{\"id\": \"2\", \"name\": \"B\", \"dependencies\": [\"1\"], \"status\": \"ready\"},\n\t\t{\"id\": \"1\", \"name\": \"A\", \"dependencies\": [], \"status\": \"in-progress (bug, see scenario-3)\"},\n\t\t{\"id\": \"3\", \"name\": \"C\", \"dependencies\": [], \"status\": \"completed\"}\n\t]},\n\t\"testPlan\": {\"scenarios\": [{\"id\": \"s\", \"name\": \"S\"}]}\n}\n";

fn now() -> Option<jiff::Timestamp> {
    Some("2026-03-01T10:00:00Z".parse().expect("a time"))
}

fn payload(stage: Stage) -> Payload {
    Payload::new(PathBuf::from("/r/handoff/payload.json"), DEFAULT_PATH.to_owned(), stage, "fake-agent", now())
}

fn id(s: &str) -> TaskId {
    TaskId::new(s).expect("an id")
}

fn ids(v: &[TaskId]) -> Vec<&str> {
    v.iter().map(TaskId::as_str).collect()
}

fn value(b: &[u8]) -> Value {
    serde_json::from_slice(b).expect("JSON")
}

/// The lines of `new` that are not lines of `old`, in order (a line diff's insertions).
fn changed_lines(old: &str, new: &str) -> Vec<String> {
    similar::TextDiff::from_lines(old, new)
        .iter_all_changes()
        .filter(|c| c.tag() == similar::ChangeTag::Insert)
        .map(|c| c.value().trim_end().to_owned())
        .collect()
}

fn removed_lines(old: &str, new: &str) -> Vec<String> {
    similar::TextDiff::from_lines(old, new)
        .iter_all_changes()
        .filter(|c| c.tag() == similar::ChangeTag::Delete)
        .map(|c| c.value().trim_end().to_owned())
        .collect()
}

fn run(command: &str, exit: i32, log: &str) -> CommandRun {
    CommandRun {
        command: command.to_owned(),
        exit_code: Some(exit),
        duration_ms: 1234,
        finished_at: "2026-03-01T10:00:05Z".to_owned(),
        output_tail: "hello\n".to_owned(),
        log: Some(log.to_owned()),
    }
}

fn record(outcome: Outcome, runs: Vec<CommandRun>) -> Record {
    Record {
        outcome,
        session_id: "sess_1".to_owned(),
        agent_session_id: None,
        at: "2026-03-01T10:00:06Z".to_owned(),
        summary: Some("Added the second greeting.".to_owned()),
        commands: runs,
        changed: vec![ChangedFile { path: "greet.sh".to_owned(), added: 3, removed: 1 }],
        attempt: 1,
        base: None,
    }
}

#[test]
fn stage_defaults_to_5_with_tasks_items_else_4() {
    assert_eq!(Stage::detect(&value(STAGE5.as_bytes())), Stage::Five);
    assert_eq!(Stage::detect(&value(STAGE4.as_bytes())), Stage::Four);
    assert_eq!(Stage::parse("4-implement").expect("stage"), Stage::Four);
    assert!(Stage::parse("6-acceptance").is_err());
}

#[test]
fn intake_passes_a_complete_payload() {
    assert_eq!(payload(Stage::Five).intake_problems(STAGE5.as_bytes()).expect("json"), Vec::<String>::new());
    assert_eq!(payload(Stage::Four).intake_problems(STAGE4.as_bytes()).expect("json"), Vec::<String>::new());
    assert!(payload(Stage::Five).intake(STAGE5.as_bytes()).expect("json").is_none());
}

#[test]
fn intake_names_missing_sections_and_broken_ids() {
    let broken = STAGE5
        .replace("\"validationCommands\": [\n            {\"suite\": \"unit\", \"command\": \"sh greet.sh\", \"environment\": \"test\", \"expectedDuration\": \"1s\"}\n        ]", "\"validationCommands\": []")
        .replace("\"summary\": \"Greet people\"", "\"summary\": \"\"")
        .replace("\"parentId\": \"task-1\",\n                \"name\": \"Third\"", "\"parentId\": \"task-9\",\n                \"name\": \"Third\"")
        .replace("\"dependsOn\": [\"task-1.1\"]", "\"dependsOn\": [\"task-7\"]");
    let problems = payload(Stage::Five).intake_problems(broken.as_bytes()).expect("json");
    assert_eq!(
        problems,
        vec![
            "requirement.summary is empty",
            "testPlan.validationCommands is empty",
            "task `task-1.2` depends on `task-7`, which does not exist",
            "task `task-1.3`: parentId `task-9` is not a task of tasks.items",
        ]
    );
    // Stage 4 does not require tasks or validation commands; it does require scenarios.
    let no_scenarios = STAGE4.replace("\"scenarios\": [{\"id\": \"s\", \"name\": \"S\"}]", "\"fixtures\": []");
    assert_eq!(
        payload(Stage::Four).intake_problems(no_scenarios.as_bytes()).expect("json"),
        vec!["testPlan.scenarios is missing"]
    );
}

#[test]
fn intake_finds_a_dependency_cycle_through_a_parent() {
    // task-1.1 waits for task-1.2 (which waits for task-1.1): a cycle.
    let cyclic = STAGE5.replace(
        "{\"taskId\": \"task-1.2\", \"dependsOn\": [\"task-1.1\"], \"reason\": \"builds on it\"}",
        "{\"taskId\": \"task-1.2\", \"dependsOn\": [\"task-1.1\"], \"reason\": \"x\"}, {\"taskId\": \"task-1.1\", \"dependsOn\": [\"task-1.2\"], \"reason\": \"y\"}",
    );
    let problems = payload(Stage::Five).intake_problems(cyclic.as_bytes()).expect("json");
    assert_eq!(problems, vec!["tasks.dependencies form a cycle: task-1.2 -> task-1.1 -> task-1.2"]);
    let steps = STAGE4.replace(
        "\"dependencies\": [], \"status\": \"in-progress",
        "\"dependencies\": [\"2\"], \"status\": \"in-progress",
    );
    let problems = payload(Stage::Four).intake_problems(steps.as_bytes()).expect("json");
    assert_eq!(problems, vec!["plan.steps dependencies form a cycle: 2 -> 1 -> 2"]);
}

#[test]
fn the_block_is_recorded_and_nothing_else_changes() {
    let broken = STAGE5.replace("\"summary\": \"Greet people\",", "");
    let p = payload(Stage::Five);
    let blocked = p.intake(broken.as_bytes()).expect("json").expect("blocked");
    assert_eq!(blocked.problems, vec!["requirement.summary is missing"]);
    let new = String::from_utf8(blocked.bytes).expect("utf-8");
    let v = value(new.as_bytes());
    assert_eq!(v["meta"]["stageStatus"], "blocked");
    assert_eq!(v["meta"]["currentStage"], "5-implement");
    assert_eq!(v["meta"]["lastUpdatedAt"], "2026-03-01T10:00:00Z");
    assert_eq!(v["meta"]["lastUpdatedBy"], p.updated_by());
    assert!(p.updated_by().contains("postflight") && p.updated_by().contains("fake-agent"));
    let change = &v["implementation"]["changes"][0];
    assert_eq!(change["problems"], json!(["requirement.summary is missing"]));
    assert_eq!(change["id"], "change-1");
    // Only meta's three values, the new stageStatus and the entry changed, in 4-space style.
    assert_eq!(
        removed_lines(&broken, &new),
        vec![
            "        \"changes\": [],",
            "        \"currentStage\": \"4-qa\",",
            "        \"lastUpdatedBy\": \"4-qa\",",
            "        \"lastUpdatedAt\": \"2026-01-01T00:00:00Z\""
        ]
    );
    let added = changed_lines(&broken, &new);
    assert_eq!(added[0], "        \"changes\": [");
    assert_eq!(added[1], "            {");
    assert_eq!(added[2], "                \"id\": \"change-1\",");
    assert!(added.contains(&"        \"stageStatus\": \"blocked\"".to_owned()), "{added:#?}");
}

#[test]
fn the_queue_is_the_open_leaves_in_dependency_order() {
    let p = payload(Stage::Five);
    let items = p.items(STAGE5.as_bytes()).expect("items");
    assert_eq!(items.len(), 4);
    assert_eq!(ids(&items[1].depends_on), vec!["task-1.1"]);
    // task-1.2 comes first in the file but waits for task-1.1; task-1.3 is completed; task-1
    // is a parent.
    assert_eq!(ids(&p.queue(&items, &QueueOptions::default())), vec!["task-1.1", "task-1.2"]);
    let only = QueueOptions { task: Some(id("task-1")), ..QueueOptions::default() };
    assert_eq!(ids(&p.queue(&items, &only)), vec!["task-1.1", "task-1.2"]);
    let one = QueueOptions { task: Some(id("task-1.2")), ..QueueOptions::default() };
    assert_eq!(ids(&p.queue(&items, &one)), vec!["task-1.2"]);
    let blocked = p.set_mark(STAGE5.as_bytes(), &id("task-1.1"), Mark::Blocked).expect("mark");
    let items = p.items(&blocked).expect("items");
    assert_eq!(ids(&p.queue(&items, &QueueOptions::default())), vec!["task-1.2"]);
    // Stage 4: every plan step, by its dependencies.
    let p4 = payload(Stage::Four);
    let steps = p4.items(STAGE4.as_bytes()).expect("steps");
    assert_eq!(steps[1].mark, Mark::InProgress);
    assert_eq!(ids(&p4.queue(&steps, &QueueOptions::default())), vec!["1", "2"]);
}

#[test]
fn a_status_move_edits_only_its_values() {
    let p = payload(Stage::Five);
    let new = p.set_mark(STAGE5.as_bytes(), &id("task-1.1"), Mark::InProgress).expect("mark");
    let new = String::from_utf8(new).expect("utf-8");
    let v = value(new.as_bytes());
    assert_eq!(v["tasks"]["items"][2]["status"], "in-progress");
    // The parent follows its child; the summary counts every item.
    assert_eq!(v["tasks"]["items"][0]["status"], "in-progress");
    assert_eq!(v["tasks"]["statusSummary"], json!({"ready": 1, "blocked": 0, "in_progress": 2, "completed": 1}));
    assert_eq!(
        changed_lines(STAGE5, &new),
        vec![
            "                \"status\": \"in-progress\",",
            "                \"status\": \"in-progress\",",
            "        \"statusSummary\": {\"ready\": 1, \"blocked\": 0, \"in_progress\": 2, \"completed\": 1}",
            "        \"currentStage\": \"5-implement\",",
            &format!("        \"lastUpdatedBy\": \"{}\",", p.updated_by()),
            "        \"lastUpdatedAt\": \"2026-03-01T10:00:00Z\"",
        ]
    );
    assert_eq!(removed_lines(STAGE5, &new).len(), 6);
}

#[test]
fn a_record_appends_measured_entries_and_completes_the_parent() {
    let p = payload(Stage::Five);
    let mut bytes = STAGE5.as_bytes().to_vec();
    for (task, log) in [("task-1.1", "handoff/validation/a.log"), ("task-1.2", "handoff/validation/b.log")] {
        bytes = p.set_mark(&bytes, &id(task), Mark::InProgress).expect("mark");
        bytes =
            p.record(&bytes, &id(task), &record(Outcome::Completed, vec![run("sh greet.sh", 0, log)])).expect("record");
    }
    let v = value(&bytes);
    assert_eq!(v["tasks"]["items"][0]["status"], "completed", "the parent completes with its last child");
    assert_eq!(v["tasks"]["statusSummary"], json!({"ready": 0, "blocked": 0, "in_progress": 0, "completed": 4}));
    let commands = v["implementation"]["commands"].as_array().expect("commands");
    assert_eq!(commands.len(), 3);
    assert_eq!(commands[1]["id"], "command-5", "numbering continues after command-4");
    assert_eq!(commands[1]["command"], "sh greet.sh");
    assert_eq!(commands[1]["validationSuite"], "unit");
    assert_eq!(commands[1]["environment"], "test");
    assert_eq!(commands[1]["exitCode"], 0);
    assert_eq!(commands[1]["duration"], "1.2s");
    assert_eq!(commands[1]["output"], "hello");
    assert_eq!(commands[1]["taskId"], "task-1.1");
    let tests = v["implementation"]["tests"].as_array().expect("tests");
    assert_eq!(
        tests[1],
        json!({"id": "test-2", "taskId": "task-1.2", "suite": "unit", "status": "passed", "duration": "1.2s", "evidenceRef": "command-6", "attempt": 1})
    );
    let change = &v["implementation"]["changes"][1];
    assert_eq!(change["files"], json!(["greet.sh"]));
    assert_eq!(change["linesChanged"], 4);
    assert_eq!(change["rationale"], "Added the second greeting.");
    assert_eq!(change["evidenceRef"], "handoff/validation/b.log");
    assert_eq!(change["requirementId"], "req-1");
    assert_eq!(change["planStepId"], "1");
}

#[test]
fn a_failed_attempt_stays_in_progress_and_a_blocked_one_is_blocked() {
    let p = payload(Stage::Five);
    let bytes = p.set_mark(STAGE5.as_bytes(), &id("task-1.1"), Mark::InProgress).expect("mark");
    let failed = p
        .record(&bytes, &id("task-1.1"), &record(Outcome::Failed("exit 1".into()), vec![run("sh greet.sh", 1, "l")]))
        .expect("record");
    let v = value(&failed);
    assert_eq!(v["tasks"]["items"][2]["status"], "in-progress");
    assert_eq!(v["implementation"]["tests"][0]["status"], "failed");
    assert_eq!(v["implementation"]["changes"][0]["rationale"], "Added the second greeting. (failed: exit 1)");
    let blocked = p
        .record(
            &failed,
            &id("task-1.1"),
            &record(Outcome::Blocked("exit 1 twice".into()), vec![run("sh greet.sh", 1, "m")]),
        )
        .expect("record");
    let v = value(&blocked);
    assert_eq!(v["tasks"]["items"][2]["status"], "blocked");
    assert_eq!(v["implementation"]["commands"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["tasks"]["statusSummary"]["blocked"], 1);
}

#[test]
fn stage_4_moves_plan_steps_and_keeps_tabs() {
    let p = payload(Stage::Four);
    let new = p.set_mark(STAGE4.as_bytes(), &id("1"), Mark::Completed).expect("mark");
    let new = String::from_utf8(new).expect("utf-8");
    assert!(
        new.contains("\t\t{\"id\": \"1\", \"name\": \"A\", \"dependencies\": [], \"status\": \"completed\"},\n"),
        "{new}"
    );
    assert!(new.starts_with("{\n\t\"meta\": {\"currentStage\": \"4-implement\", \"lastUpdatedBy\": "), "{new}");
    let recorded = p.record(new.as_bytes(), &id("2"), &record(Outcome::Completed, vec![])).expect("record");
    let text = String::from_utf8(recorded).expect("utf-8");
    assert!(
        text.contains("\n\t\"implementation\": {\n\t\t\"changes\": [\n\t\t\t{\n\t\t\t\t\"id\": \"change-1\",\n"),
        "{text}"
    );
    assert_eq!(value(text.as_bytes())["implementation"]["changes"][0]["planStepId"], "2");
}

#[test]
fn the_prompt_holds_the_item_its_criteria_files_scenarios_and_commands() {
    let prompt = payload(Stage::Five).prompt(STAGE5.as_bytes(), &id("task-1.2")).expect("prompt");
    for want in [
        "task task-1.2",
        "Second",
        "- prints twice",
        "- `greet.sh` (TO_MODIFY) lines 1-3: the script",
        "## Plan step 1: Greeter",
        "Success signal: prints hello",
        "- scenario-2 Twice (unit):",
        "  - run it twice",
        "- unit: `sh greet.sh` (environment test)",
    ] {
        assert!(prompt.contains(want), "{want:?} missing from\n{prompt}");
    }
    assert!(!prompt.contains("scenario-1"), "an unmapped scenario is not in the prompt");
}

#[test]
fn names_and_trailers() {
    let p = payload(Stage::Five);
    assert_eq!(p.subject(&id("task-1.1"), &Outcome::Completed), "payload: task-1.1 complete");
    assert_eq!(p.subject(&id("task-1.1"), &Outcome::Blocked("x".into())), "payload: task-1.1 blocked");
    assert_eq!(p.trailers(&id("task-1.1")), vec!["Payload-Task: task-1.1"]);
    assert_eq!(p.on_failure(), OnFailure::RetryOnceThenBlock);
    assert_eq!(p.validation_commands(STAGE5.as_bytes(), &id("task-1.1")), vec!["sh greet.sh"]);
    assert_eq!(
        p.validation_environment(STAGE5.as_bytes()),
        vec![("sh greet.sh".to_owned(), vec![("PAYLOAD_ENVIRONMENT".to_owned(), "test".to_owned())])]
    );
}

#[test]
fn a_commit_takes_only_its_items_share() {
    let p = payload(Stage::Five);
    let head = STAGE5.as_bytes();
    let mut wt = p.set_mark(head, &id("task-1.1"), Mark::InProgress).expect("mark");
    wt = p.record(&wt, &id("task-1.1"), &record(Outcome::Completed, vec![run("sh greet.sh", 0, "a")])).expect("record");
    // Another item's work lands in the work tree before task-1.1 is committed.
    wt = p.set_mark(&wt, &id("task-1.2"), Mark::InProgress).expect("mark");
    wt = p
        .record(&wt, &id("task-1.2"), &record(Outcome::Blocked("no".into()), vec![run("sh greet.sh", 1, "b")]))
        .expect("record");
    let scoping = p.scoping();
    assert!(scoping.shares(DEFAULT_PATH) && !scoping.shares("greet.sh"));
    let scoped = scoping.scope(DEFAULT_PATH, head, &wt, &id("task-1.1"), None).expect("scope");
    let Scoped::New(bytes) = scoped else { panic!("expected new bytes, got {scoped:?}") };
    let v = value(&bytes);
    assert_eq!(v["tasks"]["items"][2]["status"], "completed");
    assert_eq!(v["tasks"]["items"][1]["status"], "ready", "task-1.2's move is not in task-1.1's commit");
    assert_eq!(v["implementation"]["changes"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["implementation"]["changes"][0]["taskId"], "task-1.1");
    assert_eq!(v["implementation"]["commands"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["tasks"]["statusSummary"], json!({"ready": 1, "blocked": 0, "in_progress": 1, "completed": 2}));
    // The next commit (task-1.2's) on top of it takes the rest: the work tree exactly.
    let next = scoping.scope(DEFAULT_PATH, &bytes, &wt, &id("task-1.2"), None).expect("scope");
    assert_eq!(next, Scoped::Worktree);
    assert_eq!(scoping.scope(DEFAULT_PATH, head, head, &id("task-1.1"), None).expect("scope"), Scoped::Head);
}

#[test]
fn check_against_catches_deleted_and_rewritten_entries_and_passes_status_moves() {
    let p = payload(Stage::Five);
    let old = STAGE5.as_bytes();
    let moved = p.set_mark(old, &id("task-1.1"), Mark::Completed).expect("mark");
    let appended = p
        .record(&moved, &id("task-1.1"), &record(Outcome::Completed, vec![run("sh greet.sh", 0, "a")]))
        .expect("record");
    assert_eq!(p.append_only_findings(old, &appended).expect("json"), vec![]);
    let deleted = STAGE5.replace(
        "\n            {\"id\": \"command-4\", \"command\": \"true\", \"taskId\": \"task-1.3\", \"timestamp\": \"2026-01-01T00:00:00Z\", \"exitCode\": 0, \"duration\": \"1s\", \"output\": \"\"}\n        ",
        "",
    );
    let findings = p.append_only_findings(old, deleted.as_bytes()).expect("json");
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].rule, "log-entry-missing");
    assert!(findings[0].message.contains("implementation.commands `command-4` was deleted"), "{}", findings[0].message);
    let rewritten = STAGE5.replace("\"exitCode\": 0, \"duration\": \"1s\"", "\"exitCode\": 0, \"duration\": \"2s\"");
    let findings = p.append_only_findings(old, rewritten.as_bytes()).expect("json");
    assert_eq!(findings.iter().map(|f| f.rule).collect::<Vec<_>>(), vec!["log-entry-changed"]);
    assert_eq!(findings[0].line, Some(76));
    let lost = STAGE5.replace("\"acceptanceCriteria\": [\"says hello\"],", "\"acceptanceCriteria\": [],");
    let findings = p.append_only_findings(old, lost.as_bytes()).expect("json");
    assert_eq!(
        findings.iter().map(|f| f.message.as_str()).collect::<Vec<_>>(),
        vec!["requirement.acceptanceCriteria[0] of the revision is gone or changed (a stage only adds to the payload)"]
    );
}

#[test]
fn check_reports_a_stale_summary_and_fix_recomputes_it() {
    let p = payload(Stage::Five);
    let findings = p.check(STAGE5.as_bytes());
    assert_eq!(findings.iter().map(|f| (f.rule, f.fixable)).collect::<Vec<_>>(), vec![("stale-summary", true)]);
    let fixed = p.fix(STAGE5.as_bytes()).expect("fix");
    assert_eq!(p.check(&fixed), vec![]);
    assert_eq!(
        value(&fixed)["tasks"]["statusSummary"],
        json!({"ready": 3, "blocked": 0, "in_progress": 0, "completed": 1})
    );
    assert_eq!(p.check(b"{\n  \"a\": ,\n}")[0].rule, "json");
    assert_eq!(p.check(b"{\n  \"a\": ,\n}")[0].line, Some(2));
}

#[test]
fn a_shape_postflight_cannot_record_into_is_refused_before_anything() {
    let p = payload(Stage::Five);
    for (bytes, want) in [
        ("[]\n".to_owned(), "/r/handoff/payload.json:1: the top level is an array, not a JSON object"),
        ("\"x\"\n".to_owned(), "the top level is a string"),
        (
            STAGE5.replacen("\"implementation\": {", "\"implementation\": \"none\", \"x\": {", 1),
            "`implementation` is a string",
        ),
        (
            STAGE5.replacen("\"changes\": []", "\"changes\": {}", 1),
            "`implementation.changes` is an object, not an array",
        ),
        (
            STAGE5.replacen("\"statusSummary\": {", "\"statusSummary\": 3, \"y\": {", 1),
            "`tasks.statusSummary` is a number",
        ),
    ] {
        assert_ne!(bytes, STAGE5);
        let err = p.items(bytes.as_bytes()).expect_err(want).to_string();
        assert!(err.contains(want), "{err}");
        assert!(p.intake(bytes.as_bytes()).is_err(), "{want}: the intake records nothing into it");
        let f = p.check(bytes.as_bytes());
        assert!(
            f.iter()
                .any(|f| f.rule == "shape" && f.error && f.message.contains(want.rsplit(": ").next().unwrap_or(want))),
            "{f:?}"
        );
    }
    // A null section is absent, not of the wrong shape.
    let ok = STAGE5.replacen("\"changes\": []", "\"changes\": null", 1);
    assert!(p.items(ok.as_bytes()).is_ok());
}

#[test]
fn intake_names_commands_and_dependencies_of_the_wrong_shape_and_a_self_dependency() {
    let p = payload(Stage::Five);
    let v: Value = serde_json::from_str(STAGE5).expect("json");
    let mut bad = v.clone();
    bad["testPlan"]["validationCommands"] = json!([{"suite": "u", "command": ["sh", "t.sh"]}, {"suite": "e", "command": " "}, {"suite": "x", "command": "true", "environment": 3}]);
    bad["tasks"]["dependencies"] =
        json!([{"taskId": "task-1.2", "dependsOn": ["task-1.2"]}, {"taskId": "task-1.2", "dependsOn": "task-1"}]);
    let problems = p.intake_problems(serde_json::to_string_pretty(&bad).expect("s").as_bytes()).expect("parses");
    for want in [
        "testPlan.validationCommands[0].command is an array, not a command line",
        "testPlan.validationCommands[1].command is empty",
        "testPlan.validationCommands[2].environment is a number",
        "task `task-1.2` depends on itself",
        "tasks.dependencies[1].dependsOn is a string, not a list of ids",
    ] {
        assert!(problems.iter().any(|x| x.contains(want)), "{want:?} not in {problems:#?}");
    }
    let mut bad = v;
    bad["tasks"]["dependencies"] = json!("task-1.2 after task-1");
    let problems = p.intake_problems(serde_json::to_string(&bad).expect("s").as_bytes()).expect("parses");
    assert!(problems.iter().any(|x| x == "tasks.dependencies is a string, not a list"), "{problems:?}");
}
