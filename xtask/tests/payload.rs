//! `handoff/payload.json` end to end (issue 16, seeds 000 and 001): payloads written for these
//! tests in the pipeline's shape, a scripted shell agent, real validation commands run by
//! postflight. The whole stage-5 and stage-4 runs, a leaf failing twice, intake blocks (missing
//! sections, a cycle), a killed run resumed, `check --against`, the pre-commit hook, and the
//! sample payloads of `../shared/fixtures/siblings/` read in place.

use std::path::PathBuf;
use std::process::Output;

use crate::support::{render, skipped, TestRepo};
use serde_json::Value;

const PAYLOAD: &str = "handoff/payload.json";

/// Stage 5: parent `task-1` with three leaves; `task-1.3` depends on `task-1.2`. Written with
/// 4-space indentation, `meta` last, a non-schema key (`plan.steps[0].notes`) and a stale
/// summary, as agents leave payloads.
const STAGE5: &str = r#"{
    "requirement": {
        "summary": "A greeting script with a test runner.",
        "constraints": ["POSIX sh only"],
        "acceptanceCriteria": ["greet prints hello", "greet NAME prints hello NAME"],
        "openQuestions": []
    },
    "plan": {
        "steps": [
            {
                "id": "1",
                "name": "Greeter",
                "owner": "dev",
                "dependencies": [],
                "files": ["src/greet.sh"],
                "status": "ready",
                "successSignal": "sh tests/run.sh passes",
                "notes": ["2026-03-01T09:00:00Z planned by the plan stage"]
            }
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
                "description": "The greet command",
                "owner": "dev",
                "status": "ready",
                "planStepId": "1",
                "acceptanceCriteria": ["all leaves done"],
                "relatedFiles": []
            },
            {
                "id": "task-1.1",
                "parentId": "task-1",
                "name": "Plain greeting",
                "description": "greet prints hello",
                "owner": "dev",
                "status": "ready",
                "planStepId": "1",
                "acceptanceCriteria": ["prints hello"],
                "relatedFiles": [{"path": "src/greet.sh", "type": "CREATE", "description": "the script"}]
            },
            {
                "id": "task-1.2",
                "parentId": "task-1",
                "name": "Named greeting",
                "description": "greet NAME prints hello NAME",
                "owner": "dev",
                "status": "ready",
                "planStepId": "1",
                "acceptanceCriteria": ["prints hello NAME"],
                "relatedFiles": [{"path": "src/name.sh", "type": "CREATE", "description": "the name part"}]
            },
            {
                "id": "task-1.3",
                "parentId": "task-1",
                "name": "Docs",
                "description": "Document greet NAME",
                "owner": "dev",
                "status": "ready",
                "planStepId": "1",
                "acceptanceCriteria": ["README names greet NAME"],
                "relatedFiles": [{"path": "docs/greet.md", "type": "CREATE", "description": "usage"}]
            }
        ],
        "dependencies": [
            {"taskId": "task-1.3", "dependsOn": ["task-1.2"], "reason": "documents the named form"}
        ],
        "statusSummary": {"ready": 2, "blocked": 0, "in_progress": 0, "completed": 0}
    },
    "testPlan": {
        "coverageMatrix": [
            {"requirementId": "req-2", "planStepId": "1", "taskId": "task-1.2", "behavior": "named", "testLevel": "unit", "scenarioIds": ["scenario-2"]}
        ],
        "scenarios": [
            {"id": "scenario-1", "name": "Plain", "type": "unit", "status": "ready", "steps": ["sh src/greet.sh"], "expectedOutput": {"stdout": "hello"}, "fixtureIds": []},
            {"id": "scenario-2", "name": "Named", "type": "unit", "status": "ready", "steps": ["sh src/greet.sh Ann"], "expectedOutput": {"stdout": "hello Ann"}, "fixtureIds": []}
        ],
        "fixtures": [],
        "validationCommands": [
            {"suite": "unit-tests", "command": "sh tests/run.sh", "environment": "test", "expectedDuration": "1s"},
            {"suite": "lint", "command": "echo \"env=$PAYLOAD_ENVIRONMENT\"; test -z \"$(grep -l TODO src/*.sh 2>/dev/null)\"", "environment": "local", "expectedDuration": "1s"}
        ]
    },
    "implementation": {
        "changes": [],
        "tests": [],
        "commands": []
    },
    "qaFindings": {
        "status": "pending",
        "evidence": [],
        "issues": []
    },
    "meta": {
        "currentStage": "4-qa",
        "lastUpdatedBy": "4-qa",
        "lastUpdatedAt": "2026-03-01T09:30:00Z"
    }
}
"#;

/// Stage 4 (the shorter pipeline): plan steps only, no `tasks`, no validation commands (the
/// era-1 template had neither); 2-space indentation, a clarification inside a status.
const STAGE4: &str = r#"{
  "meta": {
    "currentStage": "3-qa",
    "lastUpdatedBy": "3-qa",
    "lastUpdatedAt": "2025-11-08T10:00:00Z"
  },
  "requirement": {
    "summary": "A greeting script.",
    "constraints": [],
    "acceptanceCriteria": ["greet prints hello"],
    "openQuestions": []
  },
  "plan": {
    "steps": [
      {
        "id": "2",
        "name": "Docs",
        "owner": "dev",
        "dependencies": ["1"],
        "files": ["docs/greet.md"],
        "status": "ready",
        "successSignal": "documented"
      },
      {
        "id": "1",
        "name": "Greeter",
        "owner": "dev",
        "dependencies": [],
        "files": ["src/greet.sh"],
        "status": "ready (waiting for review, see scenario-1)",
        "successSignal": "prints hello"
      }
    ],
    "risks": [],
    "artifacts": []
  },
  "testPlan": {
    "coverageMatrix": [
      {"planStepId": "1", "behavior": "prints hello", "level": "unit", "scenarioId": "scenario-1"}
    ],
    "scenarios": [
      {"id": "scenario-1", "name": "Plain", "type": "unit", "status": "ready", "steps": ["sh src/greet.sh"], "expected": "hello"}
    ],
    "fixtures": []
  },
  "implementation": {
    "changes": [],
    "tests": [],
    "commands": []
  }
}
"#;

/// The project's test runner: every `tests/test_*.sh`.
const RUN_SH: &str = "#!/bin/sh\nfail=0\nfor t in tests/test_*.sh; do\n  [ -f \"$t\" ] || continue\n  if sh \"$t\"; then echo \"ok $t\"; else echo \"FAIL $t\"; fail=1; fi\ndone\nexit $fail\n";

/// The scripted agent: what it does per item id, its attempts counted in `$HOME`. An item named
/// in `$HOME/fail` reports `failed` every time; one named in `$HOME/hang` waits for
/// `$HOME/release` (a run killed there is resumed later).
const AGENT: &str = r#"#!/bin/sh
id="$XTASK_TASK_ID"
n=$(( $(cat "$HOME/attempts-$id" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$HOME/attempts-$id"
cat > "$HOME/prompt-$id-$n.txt"
if grep -qx "$id" "$HOME/hang" 2>/dev/null; then
  echo $$ > "$HOME/agent.pid"
  while [ ! -f "$HOME/release" ]; do sleep 0.05; done
fi
if grep -qx "$id" "$HOME/fail" 2>/dev/null; then
  echo 'echo hello broken' > src/broken.sh
  printf '{"status": "failed", "summary": "Could not finish %s.", "errors": [{"message": "no idea", "recoverable": true}]}' "$id" > "$XTASK_METADATA_FILE"
  exit 0
fi
mkdir -p src tests docs
case "$id" in
  task-1.1|1)
    printf 'echo "hello${1:+ $1}"\n' > src/greet.sh
    printf '[ "$(sh src/greet.sh)" = hello ]\n' > tests/test_plain.sh ;;
  task-1.2)
    printf 'name() { echo "$1"; }\n' > src/name.sh
    printf '[ "$(sh src/greet.sh Ann)" = "hello Ann" ]\n' > tests/test_named.sh ;;
  task-1.3|2)
    printf '# greet\n\n`sh src/greet.sh NAME` prints hello NAME.\n' > docs/greet.md ;;
esac
printf '{"status": "implemented", "summary": "Implemented %s (attempt %s).", "artifacts": []}' "$id" "$n" > "$XTASK_METADATA_FILE"
"#;

fn setup(payload: &str) -> TestRepo {
    let repo = TestRepo::empty();
    repo.write(PAYLOAD, payload);
    repo.write("tests/run.sh", RUN_SH);
    repo.write("README.md", "# greet\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "the stages before implement"]);
    std::fs::write(repo.home().join("agent.sh"), AGENT).expect("agent");
    repo
}

fn agent(repo: &TestRepo) -> String {
    format!("sh '{}'", repo.home().join("agent.sh").display())
}

fn implement(repo: &TestRepo, extra: &[&str]) -> Output {
    let agent = agent(repo);
    let mut args = vec!["implement", PAYLOAD, "--agent", &agent];
    args.extend_from_slice(extra);
    repo.run(&args)
}

fn payload(repo: &TestRepo) -> Value {
    serde_json::from_str(&repo.read(PAYLOAD)).expect("the payload is JSON")
}

fn subjects(repo: &TestRepo) -> Vec<String> {
    repo.git(&["log", "--format=%s"]).lines().map(str::to_owned).collect()
}

fn status_of(v: &Value, id: &str) -> String {
    let items = v["tasks"]["items"].as_array().or_else(|| v["plan"]["steps"].as_array()).expect("a list");
    items.iter().find(|i| i["id"] == id).map(|i| i["status"].as_str().unwrap_or("").to_owned()).expect("the item")
}

/// The lines of `old` that `new` no longer has (a line diff's deletions, by longest common
/// subsequence), trimmed.
fn removed_lines(old: &str, new: &str) -> Vec<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() {
        if j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && lcs[i][j + 1] >= lcs[i + 1][j] {
            j += 1;
        } else {
            out.push(a[i].trim().to_owned());
            i += 1;
        }
    }
    out
}

#[test]
fn payload_stage5_whole_run_records_measured_entries_and_commits_each_leaf() {
    let repo = setup(STAGE5);
    let out = implement(&repo, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    // One commit per leaf, in dependency order; the parent is completed with its last leaf.
    assert_eq!(
        subjects(&repo),
        vec![
            "payload: task-1.3 complete",
            "payload: task-1.2 complete",
            "payload: task-1.1 complete",
            "the stages before implement"
        ]
    );
    let v = payload(&repo);
    for id in ["task-1", "task-1.1", "task-1.2", "task-1.3"] {
        assert_eq!(status_of(&v, id), "completed", "{id}");
    }
    assert_eq!(
        v["tasks"]["statusSummary"],
        serde_json::json!({"ready": 0, "blocked": 0, "in_progress": 0, "completed": 4})
    );
    assert_eq!(v["meta"]["currentStage"], "5-implement");
    assert_eq!(v["meta"]["lastUpdatedAt"], crate::support::NOW);
    let by = v["meta"]["lastUpdatedBy"].as_str().expect("lastUpdatedBy");
    assert!(by.starts_with("postflight") && by.contains("agent.sh"), "{by}");
    // Two validation commands per leaf, run by postflight: real exit codes and durations.
    let commands = v["implementation"]["commands"].as_array().expect("commands");
    assert_eq!(commands.len(), 6);
    for (k, c) in commands.iter().enumerate() {
        assert_eq!(c["id"], format!("command-{}", k + 1));
        assert_eq!(c["exitCode"], 0);
        assert!(c["duration"].as_str().is_some_and(|d| d.ends_with("ms") || d.ends_with('s')), "{c}");
        assert_eq!(c["timestamp"], crate::support::NOW);
    }
    assert_eq!(commands[0]["command"], "sh tests/run.sh");
    assert_eq!(commands[0]["validationSuite"], "unit-tests");
    assert_eq!(commands[0]["environment"], "test");
    assert_eq!(commands[0]["taskId"], "task-1.1");
    assert!(
        commands[1]["output"].as_str().is_some_and(|o| o.contains("env=local")),
        "run in its environment: {}",
        commands[1]
    );
    assert!(commands[2]["output"].as_str().is_some_and(|o| o.contains("ok tests/test_plain.sh")), "{}", commands[2]);
    let tests = v["implementation"]["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 6);
    assert_eq!(tests[1]["suite"], "lint");
    assert_eq!(tests[1]["status"], "passed");
    assert_eq!(tests[1]["evidenceRef"], "command-2");
    let changes = v["implementation"]["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[0]["taskId"], "task-1.1");
    assert_eq!(changes[0]["files"], serde_json::json!(["src/greet.sh", "tests/test_plain.sh"]));
    assert_eq!(changes[0]["linesChanged"], 2);
    assert_eq!(changes[0]["rationale"], "Implemented task-1.1 (attempt 1).");
    assert_eq!(changes[1]["requirementId"], "req-2");
    // The evidence is the validation log committed with the item.
    let evidence = changes[2]["evidenceRef"].as_str().expect("evidenceRef");
    let committed = repo.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert!(committed.lines().any(|l| l == evidence), "{evidence} not in\n{committed}");
    assert!(committed.lines().any(|l| l == "docs/greet.md"), "{committed}");
    let first = repo.git(&["show", "--name-only", "--format=%B", "HEAD~2"]);
    assert!(first.contains("Payload-Task: task-1.1"), "{first}");
    assert!(!first.lines().any(|l| l == "docs/greet.md" || l == "src/name.sh"), "{first}");
    // File formatting kept: every line of the original is still there but the edited values.
    let removed = removed_lines(STAGE5, &repo.read(PAYLOAD));
    let allowed = |l: &str| {
        l.starts_with("\"status\": ")
            || l.starts_with("\"statusSummary\": ")
            || l.starts_with("\"currentStage\": ")
            || l.starts_with("\"lastUpdatedBy\": ")
            || l.starts_with("\"lastUpdatedAt\": ")
            || ["\"changes\": [],", "\"tests\": [],", "\"commands\": []"].contains(&l)
    };
    assert!(removed.iter().all(|l| allowed(l)), "lines lost: {removed:#?}");
    assert!(repo.read(PAYLOAD).contains(
        "\n        \"statusSummary\": {\"ready\": 0, \"blocked\": 0, \"in_progress\": 0, \"completed\": 4}\n"
    ));
    // The prompt carried the item, its criteria, its files, its scenarios and the commands.
    let prompt = std::fs::read_to_string(repo.home().join("prompt-task-1.2-1.txt")).expect("prompt");
    for want in ["task-1.2", "prints hello NAME", "`src/name.sh` (CREATE)", "scenario-2 Named", "`sh tests/run.sh`"] {
        assert!(prompt.contains(want), "{want:?} not in\n{prompt}");
    }
    // The committed payload is the work tree's, and the work tree is clean.
    assert_eq!(repo.git(&["show", &format!("HEAD:{PAYLOAD}")]), repo.read(PAYLOAD));
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn payload_stage4_runs_the_plan_steps_in_dependency_order() {
    let repo = setup(STAGE4);
    let out = implement(&repo, &["--validate", "sh tests/run.sh"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(subjects(&repo), vec!["payload: 2 complete", "payload: 1 complete", "the stages before implement"]);
    let v = payload(&repo);
    assert_eq!(status_of(&v, "1"), "completed");
    assert_eq!(status_of(&v, "2"), "completed");
    assert!(v.get("tasks").is_none(), "stage 4 adds no tasks section");
    assert_eq!(v["meta"]["currentStage"], "4-implement");
    let changes = v["implementation"]["changes"].as_array().expect("changes");
    assert_eq!(changes.iter().map(|c| c["planStepId"].clone()).collect::<Vec<_>>(), vec!["1", "2"]);
    assert_eq!(v["implementation"]["commands"][0]["command"], "sh tests/run.sh");
    assert_eq!(v["implementation"]["commands"][0]["exitCode"], 0);
    let status = repo.run(&["status", PAYLOAD]);
    assert_eq!(status.status.code(), Some(0), "{}", render(&status));
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("2 task(s): 2 completed"), "{text}");
    // Two-space indentation kept for the new entries.
    assert!(repo
        .read(PAYLOAD)
        .contains("\n  \"implementation\": {\n    \"changes\": [\n      {\n        \"id\": \"change-1\",\n"));
}

#[test]
fn payload_a_leaf_failing_twice_is_blocked_its_dependant_waits_the_others_complete() {
    let repo = setup(STAGE5);
    std::fs::write(repo.home().join("fail"), "task-1.2\n").expect("fail");
    let out = implement(&repo, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    let text = render(&out);
    assert!(text.contains("task-1.3"), "the waiting dependant is reported: {text}");
    assert_eq!(
        std::fs::read_to_string(repo.home().join("attempts-task-1.2")).expect("attempts").trim(),
        "2",
        "one retry"
    );
    assert!(!repo.home().join("attempts-task-1.3").exists(), "the dependant never ran");
    let retry = std::fs::read_to_string(repo.home().join("prompt-task-1.2-2.txt")).expect("second prompt");
    assert!(retry.contains("failed"), "the failure is in the retry's prompt:\n{retry}");
    assert_eq!(
        subjects(&repo),
        vec!["payload: task-1.2 blocked", "payload: task-1.1 complete", "the stages before implement"]
    );
    let v = payload(&repo);
    assert_eq!(status_of(&v, "task-1.1"), "completed");
    assert_eq!(status_of(&v, "task-1.2"), "blocked");
    assert_eq!(status_of(&v, "task-1.3"), "ready");
    assert_eq!(status_of(&v, "task-1"), "in-progress");
    assert_eq!(
        v["tasks"]["statusSummary"],
        serde_json::json!({"ready": 1, "blocked": 1, "in_progress": 1, "completed": 1})
    );
    let blocked = &v["implementation"]["changes"][2];
    assert_eq!(blocked["taskId"], "task-1.2");
    assert_eq!(blocked["status"], "blocked");
    assert!(blocked["rationale"].as_str().is_some_and(|r| r.contains("failed")), "{blocked}");
    // Both attempts are in the log: two change entries for task-1.2, the first `failed`.
    let attempts: Vec<&Value> = v["implementation"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["taskId"] == "task-1.2")
        .collect();
    assert_eq!(
        attempts.iter().map(|c| c["status"].as_str().unwrap_or("")).collect::<Vec<_>>(),
        vec!["failed", "blocked"]
    );
    assert_eq!(attempts.iter().map(|c| c["attempt"].as_u64().unwrap_or(0)).collect::<Vec<_>>(), vec![1, 2]);
    // A second run takes nothing blocked nor waiting on it, and does not say the stage is done:
    // an item is still blocked (exit 4), its dependant waits.
    let again = implement(&repo, &[]);
    assert!(!repo.home().join("attempts-task-1.3").exists(), "{}", render(&again));
    assert_eq!(subjects(&repo).len(), 3);
    assert_eq!(again.status.code(), Some(4), "{}", render(&again));
    let text = render(&again);
    assert!(text.contains("task task-1.2 is blocked since an earlier run"), "{text}");
    assert!(text.contains("task task-1.3 waiting: it depends on blocked task task-1.2"), "{text}");
    assert!(!text.contains("nothing to do"), "{text}");
}

#[test]
fn payload_validation_commands_and_dependencies_of_the_wrong_shape_block_the_stage() {
    // A validation command that is not a command line would be skipped, and the items completed
    // unvalidated: the intake blocks instead. So do a self-dependency and a `dependencies` that
    // is not a list.
    let bad = STAGE5.replacen(r#""command": "sh tests/run.sh""#, r#""command": ["sh", "tests/run.sh"]"#, 1).replace(
        r#"{"taskId": "task-1.3", "dependsOn": ["task-1.2"], "reason": "documents the named form"}"#,
        r#"{"taskId": "task-1.3", "dependsOn": ["task-1.3"], "reason": "itself"}"#,
    );
    assert_ne!(bad, STAGE5);
    let repo = setup(&bad);
    let out = implement(&repo, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    let text = render(&out);
    assert!(text.contains("testPlan.validationCommands[0].command is an array, not a command line"), "{text}");
    assert!(text.contains("task `task-1.3` depends on itself"), "{text}");
    assert!(!repo.home().join("attempts-task-1.1").exists(), "no agent ran");
    assert_eq!(subjects(&repo).len(), 1, "no commit");
    let out = repo.run(&["check", PAYLOAD]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));

    let repo = setup(&STAGE5.replacen(
        "\"dependencies\": [\n            {\"taskId\"",
        "\"dependencies\": \"task-1.3 after task-1.2\", \"x\": [\n            {\"taskId\"",
        1,
    ));
    let out = implement(&repo, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    assert!(render(&out).contains("tasks.dependencies is a string, not a list"), "{}", render(&out));
}

#[test]
fn payload_a_validation_failing_twice_records_both_attempts_with_real_exit_codes() {
    // task-1.1 writes a script with a TODO the lint suite rejects, both times.
    let repo = setup(STAGE5);
    let agent = format!("{}; [ \"$XTASK_TASK_ID\" != task-1.1 ] || echo '# TODO' >> src/greet.sh", agent(&repo));
    let out = repo.run(&["implement", PAYLOAD, "--agent", &agent, "--task", "task-1.1"]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    let v = payload(&repo);
    assert_eq!(status_of(&v, "task-1.1"), "blocked");
    let lint: Vec<&Value> = v["implementation"]["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .filter(|c| c["validationSuite"] == "lint")
        .collect();
    assert_eq!(lint.len(), 2, "one lint run per attempt: {lint:#?}");
    assert!(lint.iter().all(|c| c["exitCode"] == 1), "{lint:#?}");
    assert_eq!(lint.iter().map(|c| c["attempt"].as_u64().unwrap_or(0)).collect::<Vec<_>>(), vec![1, 2]);
    let tests = v["implementation"]["tests"].as_array().expect("tests");
    assert_eq!(tests.iter().filter(|t| t["status"] == "failed").count(), 2);
    // Every log an entry names is committed with the blocked item.
    let committed = repo.git(&["show", "--name-only", "--format=", "HEAD"]);
    for c in v["implementation"]["commands"].as_array().expect("commands") {
        let log = c["log"].as_str().expect("log");
        assert!(committed.lines().any(|l| l == log), "{log} not in\n{committed}");
    }
    assert_eq!(subjects(&repo)[0], "payload: task-1.1 blocked");
}

#[test]
fn payload_missing_sections_block_the_stage_and_change_nothing_else() {
    let broken =
        STAGE5.replace("\"summary\": \"A greeting script with a test runner.\",", "\"summary\": \"\",").replace(
            "\"parentId\": \"task-1\",\n                \"name\": \"Docs\"",
            "\"parentId\": \"task-9\",\n                \"name\": \"Docs\"",
        );
    // testPlan.validationCommands removed with its separator.
    let start = broken.find(",\n        \"validationCommands\"").expect("validationCommands");
    let end = broken.find("\n    },\n    \"implementation\"").expect("end of testPlan");
    let broken = format!("{}{}", &broken[..start], &broken[end..]);
    let repo = setup(&broken);
    let before = repo.snapshot();
    let out = implement(&repo, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    let text = render(&out);
    for want in ["requirement.summary is empty", "testPlan.validationCommands is missing", "parentId `task-9`"] {
        assert!(text.contains(want), "{want:?} not in {text}");
    }
    assert!(!repo.home().join("attempts-task-1.1").exists(), "no agent ran");
    assert_eq!(subjects(&repo).len(), 1, "no commit");
    let after = repo.snapshot();
    let changed: Vec<_> = after.iter().filter(|f| !before.contains(f)).map(|(p, _)| p.display().to_string()).collect();
    assert_eq!(changed, vec![PAYLOAD.to_owned()]);
    let v = payload(&repo);
    assert_eq!(v["meta"]["stageStatus"], "blocked");
    assert_eq!(v["meta"]["currentStage"], "5-implement");
    let change = &v["implementation"]["changes"][0];
    assert_eq!(change["status"], "blocked");
    let problems: Vec<&str> =
        change["problems"].as_array().expect("problems").iter().filter_map(Value::as_str).collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert_eq!(status_of(&v, "task-1.1"), "ready");
}

#[test]
fn payload_a_dependency_cycle_blocks_the_stage() {
    let cyclic = STAGE5.replace(
        "{\"taskId\": \"task-1.3\", \"dependsOn\": [\"task-1.2\"], \"reason\": \"documents the named form\"}",
        "{\"taskId\": \"task-1.3\", \"dependsOn\": [\"task-1.2\"], \"reason\": \"a\"},\n            {\"taskId\": \"task-1.2\", \"dependsOn\": [\"task-1.3\"], \"reason\": \"b\"}",
    );
    let repo = setup(&cyclic);
    let out = implement(&repo, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    assert!(render(&out).contains("form a cycle: task-1.2 -> task-1.3 -> task-1.2"), "{}", render(&out));
    let v = payload(&repo);
    assert_eq!(v["implementation"]["changes"].as_array().map(Vec::len), Some(1));
    assert_eq!(subjects(&repo).len(), 1);
}

#[test]
fn payload_a_killed_run_resumes_at_its_item() {
    let repo = setup(STAGE5);
    std::fs::write(repo.home().join("hang"), "task-1.2\n").expect("hang");
    let agent = agent(&repo);
    let mut child = repo
        .xtask(&["implement", PAYLOAD, "--agent", &agent])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid_file = repo.home().join("agent.pid");
    crate::support::wait_until(std::time::Duration::from_secs(60), "the agent of task-1.2 started", || {
        pid_file.exists()
    });
    child.kill().expect("kill xtask");
    let _ = child.wait();
    // The agent's process group outlives its xtask (SIGKILL stops nothing else): stop it too.
    let pid = std::fs::read_to_string(&pid_file).expect("pid");
    let pgid = repo.command("ps").args(["-o", "pgid=", "-p", pid.trim()]).output().expect("ps");
    let pgid = String::from_utf8_lossy(&pgid.stdout).trim().to_owned();
    if !pgid.is_empty() {
        crate::support::kill_process_group(&pgid);
    }
    assert_eq!(status_of(&payload(&repo), "task-1.2"), "in-progress");
    assert_eq!(subjects(&repo).len(), 2, "task-1.1 was committed before the kill");
    std::fs::write(repo.home().join("hang"), "").expect("no hang");
    let out = implement(&repo, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(
        subjects(&repo),
        vec![
            "payload: task-1.3 complete",
            "payload: task-1.2 complete",
            "payload: task-1.1 complete",
            "the stages before implement"
        ]
    );
    let v = payload(&repo);
    assert_eq!(status_of(&v, "task-1"), "completed");
    assert_eq!(
        std::fs::read_to_string(repo.home().join("attempts-task-1.1")).expect("n").trim(),
        "1",
        "task-1.1 not run again"
    );
    assert_eq!(v["implementation"]["changes"].as_array().map(Vec::len), Some(3));
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn payload_check_against_catches_a_deleted_and_a_rewritten_entry_and_passes_a_status_move() {
    let repo = setup(STAGE5);
    let out = implement(&repo, &["--task", "task-1.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let committed = repo.read(PAYLOAD);
    // A status move only: passes.
    repo.write(PAYLOAD, &committed.replacen("\"status\": \"ready\"", "\"status\": \"in-progress\"", 1));
    let ok = repo.run(&["check", PAYLOAD, "--against", "HEAD"]);
    assert_eq!(ok.status.code(), Some(0), "{}", render(&ok));
    // A rewritten log entry.
    repo.write(PAYLOAD, &committed.replacen("\"exitCode\": 0", "\"exitCode\": 1", 1));
    let rewritten = repo.run(&["check", PAYLOAD, "--against", "HEAD"]);
    assert_eq!(rewritten.status.code(), Some(1), "{}", render(&rewritten));
    assert!(render(&rewritten).contains("implementation.commands `command-1` was rewritten"), "{}", render(&rewritten));
    // A deleted log entry (the last test entry, with its separator).
    let v: Value = serde_json::from_str(&committed).expect("json");
    let mut w = v.clone();
    w["implementation"]["tests"].as_array_mut().expect("tests").pop();
    repo.write(PAYLOAD, &serde_json::to_string_pretty(&w).expect("json"));
    let deleted = repo.run(&["check", PAYLOAD, "--against", "HEAD"]);
    assert_eq!(deleted.status.code(), Some(1), "{}", render(&deleted));
    assert!(render(&deleted).contains("implementation.tests `test-2` was deleted"), "{}", render(&deleted));
    // Against the revision before the run, the run's own edits pass.
    repo.write(PAYLOAD, &committed);
    let since = repo.run(&["check", PAYLOAD, "--against", "HEAD~1"]);
    assert_eq!(since.status.code(), Some(0), "{}", render(&since));
}

#[test]
fn payload_the_pre_commit_hook_refuses_a_staged_payload_that_lost_an_entry() {
    let repo = setup(STAGE5);
    let out = implement(&repo, &["--task", "task-1.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let committed = repo.read(PAYLOAD);
    let hooks = repo.run(&["hooks", "install", "--git", "--bin", env!("CARGO_BIN_EXE_xtask")]);
    assert_eq!(hooks.status.code(), Some(0), "{}", render(&hooks));
    repo.write(PAYLOAD, &committed.replacen("\"exitCode\": 0", "\"exitCode\": 7", 1));
    repo.git(&["add", PAYLOAD]);
    let commit = repo.command("git").args(["commit", "-q", "-m", "rewrite history"]).output().expect("git");
    assert!(!commit.status.success(), "the hook let it through: {}", render(&commit));
    assert!(render(&commit).contains("payload-append-only"), "{}", render(&commit));
    // A status move commits.
    repo.write(PAYLOAD, &committed.replacen("\"status\": \"ready\"", "\"status\": \"in-progress\"", 1));
    repo.git(&["add", PAYLOAD]);
    let ok = repo.command("git").args(["commit", "-q", "-m", "move a status"]).output().expect("git");
    assert!(ok.status.success(), "{}", render(&ok));
}

fn sibling(rel: &str) -> Option<PathBuf> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/siblings").join(rel);
    if p.is_file() {
        Some(p)
    } else {
        skipped(&format!("../shared/fixtures/siblings/{rel} not found; the sample payload tests did not run"));
        None
    }
}

#[test]
fn payload_the_sample_payloads_read_in_place() {
    use postflight::format::payload::{Payload, Stage};
    use postflight::format::{Format, QueueOptions};
    let Some(s5) = sibling("handoff-stage5/handoff/payload.json") else { return };
    let Some(s4) = sibling("handoff-stage4/handoff/payload.json") else { return };
    let b5 = std::fs::read(&s5).expect("read");
    let p5 = Payload::open(s5.parent().expect("dir"), &s5, None, "agent", None).expect("open");
    assert_eq!(p5.stage(), Stage::Five);
    assert_eq!(p5.intake_problems(&b5).expect("json"), Vec::<String>::new());
    let items = p5.items(&b5).expect("items");
    assert_eq!(items.len(), 8);
    // The open leaves: task-3.1 (ready) waits for the blocked task-2.2, but the queue keeps it
    // for the runner to report as waiting; task-2.2 is blocked, the rest completed.
    let queue = p5.queue(&items, &QueueOptions::default());
    assert_eq!(queue.iter().map(|t| t.as_str()).collect::<Vec<_>>(), vec!["task-3.1"]);
    let leaf = items.iter().find(|i| i.id.as_str() == "task-3.1").expect("task-3.1");
    assert_eq!(leaf.depends_on.iter().map(|t| t.as_str()).collect::<Vec<_>>(), vec!["task-2.2"]);
    // The stale summary is found and fixed; the fix changes one line only.
    let findings = p5.check(&b5);
    assert_eq!(findings.iter().map(|f| f.rule).collect::<Vec<_>>(), vec!["stale-summary"]);
    let fixed = p5.fix(&b5).expect("fix");
    assert_eq!(removed_lines(&String::from_utf8_lossy(&b5), &String::from_utf8_lossy(&fixed)).len(), 4);
    assert_eq!(p5.append_only_findings(&b5, &fixed).expect("json"), vec![]);
    // Stage 4: no tasks, no validation commands; a status with a clarification inside.
    let b4 = std::fs::read(&s4).expect("read");
    let p4 = Payload::open(s4.parent().expect("dir"), &s4, None, "agent", None).expect("open");
    assert_eq!(p4.stage(), Stage::Four);
    assert_eq!(p4.intake_problems(&b4).expect("json"), Vec::<String>::new());
    let steps = p4.items(&b4).expect("steps");
    assert_eq!(steps[1].mark, postflight::format::Mark::InProgress);
    let queue = p4.queue(&steps, &QueueOptions::default());
    assert_eq!(queue.iter().map(|t| t.as_str()).collect::<Vec<_>>(), vec!["2", "3"]);
    // Read as stage 5, the era-1 payload is blocked: it has no tasks.items.
    let as5 = Payload::open(s4.parent().expect("dir"), &s4, Some(Stage::Five), "agent", None).expect("open");
    assert_eq!(
        as5.intake_problems(&b4).expect("json"),
        vec!["tasks.items is missing", "testPlan.validationCommands is missing"]
    );
}
