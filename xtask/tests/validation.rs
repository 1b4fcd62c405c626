//! The validation gate end to end (issue 14): a small real shell project in a temporary
//! repository, the scripted agent (`xtask demo-agent`) writing real files, and real validation
//! commands over them. Genuine completions, a failure fixed on the retry, a failure twice, a
//! hanging command, empty diffs, `--no-validate`, `verify`, the `unvalidated` rule, `postflight`,
//! and the phantom-completion suite (one table: staged phantoms that must not end completed,
//! genuine ones that must).

use std::process::Output;

use crate::support::{render, TestRepo};
use serde_json::{json, Value};

const SUMMARY: &str = "specs/350_add_feature/summaries/implementation-summary-20260316.md";

/// The project's test runner: every `tests/test_*.sh`, a line each, the count, exit 1 on a failure.
const RUN_SH: &str = r#"#!/bin/sh
fail=0
n=0
for t in tests/test_*.sh; do
  [ -f "$t" ] || continue
  n=$((n + 1))
  if sh "$t"; then echo "ok $t"; else echo "FAIL $t"; fail=1; fi
done
echo "$n tests"
exit $fail
"#;
const TEST_ADD: &str = ". ./src/calc.sh\n[ \"$(add 2 3)\" = 5 ]\n";
const TEST_MUL: &str = ". ./src/calc.sh\n[ \"$(mul 2 3)\" = 6 ] && [ \"$(mul 0 7)\" = 0 ]\n";
/// Before the task: `add` only, so `tests/test_mul.sh` fails.
const CALC_BEFORE: &str = "add() { echo $(($1 + $2)); }\n";
const CALC_DONE: &str = "add() { echo $(($1 + $2)); }\nmul() { echo $(($1 * $2)); }\n";
const CALC_WRONG: &str = "add() { echo $(($1 + $2)); }\nmul() { echo $(($1 + $2)); }\n";

/// The tests pass; at least two tests exist (a deleted test is caught); an acceptance check
/// outside the tests the agent can edit.
const COMMANDS: [&str; 3] =
    ["sh tests/run.sh", "test \"$(ls tests/test_*.sh | wc -l)\" -ge 2", ". ./src/calc.sh && [ \"$(mul 4 5)\" = 20 ]"];

fn config(extra: Value) -> String {
    let mut c = json!({
        "agent_identity": "Scripted Agent <agent@example.com>",
        "scopes": {"general": ["src/", "tests/"]},
        "validation": {"general": COMMANDS},
        "validation_timeout": 5
    });
    for (k, v) in extra.as_object().expect("object") {
        c[k] = v.clone();
    }
    c.to_string()
}

/// The sample ledger plus the shell project, committed; task 350 is "add mul".
fn setup_with(cfg: Value) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".postflight.json", &config(cfg));
    repo.write("src/calc.sh", CALC_BEFORE);
    repo.write("src/old.sh", "# obsolete\n");
    repo.write("tests/run.sh", RUN_SH);
    repo.write("tests/test_add.sh", TEST_ADD);
    repo.write("tests/test_mul.sh", TEST_MUL);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "the project"]);
    // The tests' fake HOME lives in the work tree: untracked work of "the user" that verify
    // would otherwise (rightly) count as a difference from the validated tree.
    let exclude = repo.file(".git/info/exclude");
    let mut text = std::fs::read_to_string(&exclude).unwrap_or_default();
    text.push_str("/.home-for-tests/\n");
    std::fs::write(&exclude, text).expect("exclude");
    repo
}

fn setup() -> TestRepo {
    setup_with(json!({}))
}

fn implement(repo: &TestRepo, steps: Value, extra: &[&str]) -> Output {
    let script = repo.home().join("script.json");
    std::fs::write(&script, json!({ "steps": steps }).to_string()).expect("script");
    let agent = format!("'{}' demo-agent", env!("CARGO_BIN_EXE_xtask"));
    let mut args = vec!["implement", "350", "--agent", &agent];
    args.extend_from_slice(extra);
    repo.xtask(&args).env("XTASK_DEMO_SCRIPT", &script).output().expect("run")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", render(out)))
}

fn meta(status: &str) -> Value {
    json!({
        "status": status,
        "summary": "Added mul.",
        "artifacts": [{"type": "summary", "path": SUMMARY, "summary": "Phase log"}],
        "completion_data": {"completion_summary": "mul exists and is tested.", "roadmap_items": []},
        "metadata": {"session_id": "{session_id}", "phases_completed": 3, "phases_total": 3}
    })
}

/// A step that writes `files` (path, content), marks every phase done and reports `status`.
fn step(files: &[(&str, &str)], status: &str) -> Value {
    let write: serde_json::Map<String, Value> = files.iter().map(|(p, c)| ((*p).to_owned(), Value::from(*c))).collect();
    json!({"write": write, "complete_phases": ["1", "2", "3"], "summary": "phase work", "metadata": meta(status)})
}

fn head_message(repo: &TestRepo) -> String {
    repo.git(&["log", "-1", "--format=%B"])
}

fn parsed_trailers(repo: &TestRepo, message: &str) -> String {
    let path = repo.home().join("msg.txt");
    std::fs::write(&path, message).expect("msg");
    repo.git(&["interpret-trailers", "--parse", path.to_str().expect("utf8")])
}

fn verify(repo: &TestRepo) -> (Option<i32>, Value) {
    let out = repo.run(&["verify", "350", "--json"]);
    let code = out.status.code();
    (code, json_of(&out))
}

#[test]
fn genuine_completion_records_the_evidence_commits_the_logs_and_verifies() {
    let repo = setup();
    let out = implement(&repo, json!([step(&[("src/calc.sh", CALC_DONE)], "implemented")]), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let report = json_of(&out);
    assert_eq!((report["status"].as_str(), report["validation"].as_str()), (Some("completed"), Some("passed")));

    let entry = repo.state_entry(350);
    assert_eq!(entry["status"], "completed");
    let records = entry["validation"].as_array().expect("validation records");
    assert_eq!(records.len(), 3);
    let tree = records[0]["tree"].as_str().expect("tree").to_owned();
    assert_eq!(tree.len(), 40);
    for (r, command) in records.iter().zip(COMMANDS) {
        assert_eq!((r["command"].as_str(), r["exit_code"].as_i64()), (Some(command), Some(0)));
        assert_eq!(r["tree"].as_str(), Some(tree.as_str()));
        assert_eq!(r["finished"], crate::support::NOW);
        assert!(r["duration_ms"].is_u64() && r["output_tail"].as_str().expect("tail").len() <= 2048);
        let log = r["log"].as_str().expect("log");
        assert!(log.starts_with("specs/350_add_feature/validation/") && log.ends_with(".log"), "{log}");
    }
    assert!(records[0]["output_tail"].as_str().expect("tail").contains("ok tests/test_mul.sh\n2 tests"));

    // The logs are in the task's commit, with one trailer per command that git reads.
    let files = repo.git(&["show", "--name-only", "--format=", "HEAD"]);
    for r in records {
        assert!(files.lines().any(|f| f == r["log"].as_str().expect("log")), "{files}");
        assert!(repo.read(r["log"].as_str().expect("log")).contains(r["command"].as_str().expect("command")));
    }
    let message = head_message(&repo);
    assert!(message.starts_with("task 350: complete implementation\n"), "{message}");
    let trailers = parsed_trailers(&repo, &message);
    let validated: Vec<&str> = trailers.lines().filter(|l| l.starts_with("Validated: ")).collect();
    assert_eq!(validated.len(), 3, "{trailers}");
    assert!(
        validated[0].starts_with("Validated: sh tests/run.sh (exit 0, ") && validated[0].ends_with("s)"),
        "{trailers}"
    );
    assert!(trailers.starts_with(&format!("Session: {}\nValidated: ", crate::support::SESSION)), "{trailers}");
    assert!(trailers.contains("Co-authored-by: Scripted Agent <agent@example.com>"), "{trailers}");

    // `tree` is the commit's tree without the ledger files and the task's directory, as git
    // computes it from HEAD.
    let index = repo.home().join("tree-index");
    let git_in = |args: &[&str]| {
        let out = repo.command("git").args(args).env("GIT_INDEX_FILE", &index).output().expect("git");
        assert!(out.status.success(), "git {args:?}: {}", render(&out));
        String::from_utf8(out.stdout).expect("utf8")
    };
    git_in(&["read-tree", "HEAD"]);
    git_in(&["rm", "-r", "-q", "--cached", "specs/state.json", "specs/TODO.md", "specs/350_add_feature"]);
    assert_eq!(git_in(&["write-tree"]).trim(), tree);

    // verify: the committed tree is the validated one, and the commands agree.
    let (code, v) = verify(&repo);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!((v["tree"].as_str(), v["tree_matches"].as_bool()), (Some(tree.as_str()), Some(true)));
    assert!(v["commands"].as_array().expect("commands").iter().all(|c| c["matches"] == true));
    // The ledger and the task's directory are bookkeeping: a later edit there changes nothing.
    repo.write("specs/350_add_feature/notes.md", "later notes\n");
    assert_eq!(verify(&repo).0, Some(0));

    // An edit that keeps the tests green: the tree is no longer the validated one.
    repo.write("src/calc.sh", &format!("{CALC_DONE}# a comment\n"));
    let (code, v) = verify(&repo);
    assert_eq!((code, v["tree_matches"].as_bool()), (Some(1), Some(false)), "{v}");
    assert!(v["commands"].as_array().expect("commands").iter().all(|c| c["matches"] == true), "{v}");
    // An edit that breaks them: the exit codes differ from the record too.
    repo.write("src/calc.sh", CALC_WRONG);
    let out = repo.run(&["verify", "350"]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("NOT verified") && text.contains("DIFF") && text.contains("differs from the record"),
        "{text}"
    );
    // Back as committed: verified again.
    repo.git(&["checkout", "--", "src/calc.sh"]);
    assert_eq!(verify(&repo).0, Some(0));
}

#[test]
fn verify_refuses_a_task_without_a_record() {
    let repo = setup();
    let out = repo.run(&["verify", "351"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no validation record"), "{}", render(&out));
    assert_eq!(repo.run(&["verify", "999"]).status.code(), Some(2));
}

#[test]
fn failing_validation_is_fixed_on_the_retry_with_the_failure_in_the_delegation() {
    let repo = setup();
    let record = repo.home().join("delegations.jsonl");
    let mut first = step(&[("src/calc.sh", CALC_WRONG)], "implemented");
    first["record_delegation"] = json!(record.to_str().expect("utf8"));
    let mut second = step(&[("src/calc.sh", CALC_DONE)], "implemented");
    second["record_delegation"] = json!(record.to_str().expect("utf8"));
    let out = implement(&repo, json!([first, second]), &["--json", "--max-iterations", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let report = json_of(&out);
    assert_eq!((report["validation"].as_str(), report["iterations"].as_u64()), (Some("passed"), Some(2)));
    let delegations: Vec<Value> = std::fs::read_to_string(&record)
        .expect("recorded")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(delegations.len(), 2);
    assert!(delegations[0].get("validation_failure").is_none());
    let f = &delegations[1]["validation_failure"];
    assert_eq!((f["command"].as_str(), f["exit_code"].as_i64()), (Some(COMMANDS[0]), Some(1)), "{f}");
    let tail = f["output_tail"].as_str().expect("tail");
    assert!(tail.contains("FAIL tests/test_mul.sh") && tail.lines().count() <= 60, "{tail}");
    // The prompt says so too (the agent log holds what the agent read on stdin? no: the
    // delegation is the contract; the prompt is checked in the unit test of prompt.rs).
    let entry = repo.state_entry(350);
    assert_eq!(entry["status"], "completed");
    assert!(entry["validation"].as_array().expect("records").iter().all(|r| r["exit_code"] == 0));
    // Both attempts' logs are committed: 1 failing log, then 3 passing ones.
    let files = repo.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(files.lines().filter(|f| f.contains("/validation/")).count(), 4, "{files}");
}

#[test]
fn failing_validation_twice_stays_implementing_with_the_reason_and_exits_4() {
    let repo = setup();
    let out = implement(&repo, json!([step(&[("src/calc.sh", CALC_WRONG)], "implemented")]), &["--json"]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    let report = json_of(&out);
    assert_eq!((report["status"].as_str(), report["validation"].as_str()), (Some("validation_failed"), Some("failed")));
    let entry = repo.state_entry(350);
    assert_eq!(entry["status"], "implementing");
    let reason = entry["failure_reason"].as_str().expect("failure_reason");
    assert!(reason.contains("`sh tests/run.sh`") && reason.contains("exit 1"), "{reason}");
    assert_eq!(entry["validation"][0]["exit_code"], 1);
    assert!(repo.read("specs/TODO.md").contains("[IMPLEMENTING]"));
    let message = head_message(&repo);
    assert!(message.starts_with("task 350: validation failed\n"), "{message}");
    assert!(parsed_trailers(&repo, &message).contains("Validated: sh tests/run.sh (exit 1, "), "{message}");
    // The text form says it too.
    let repo = setup();
    let out = implement(&repo, json!([step(&[("src/calc.sh", CALC_WRONG)], "implemented")]), &[]);
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("task 350: validation failed: `sh tests/run.sh` (exit 1)"), "{text}");
    assert!(text.contains("validation  failed"), "{text}");
}

/// The pids of every live process whose process group is `pgid` (from /proc).
fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else { continue };
        let fields: Vec<&str> = rest.split(' ').collect();
        if fields.first() != Some(&"Z") && fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn a_hanging_command_times_out_and_its_whole_group_is_killed() {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return crate::support::skipped("no /proc: cannot look for the killed group's processes");
    }
    let repo = setup_with(json!({"validation": {}, "validation_timeout": 1}));
    let pgids = repo.home().join("pgids");
    let hang = format!("echo $$ >> '{}'; sleep 300 & sleep 300", pgids.display());
    let started = std::time::Instant::now();
    let out =
        implement(&repo, json!([step(&[("src/calc.sh", CALC_DONE)], "implemented")]), &["--json", "--validate", &hang]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
    let report = json_of(&out);
    assert_eq!(report["status"], "validation_failed");
    let record = &report["validation_records"][0];
    assert_eq!((record["timed_out"].as_bool(), record["exit_code"].is_null()), (Some(true), true), "{record}");
    assert!(report["reason"].as_str().expect("reason").contains("timed out"), "{report}");
    let groups: Vec<u32> =
        std::fs::read_to_string(&pgids).expect("pgids").lines().map(|l| l.trim().parse().expect("pgid")).collect();
    assert_eq!(groups.len(), 2, "the first run and the retry");
    for g in groups {
        let left = group_members(g);
        if !left.is_empty() {
            crate::support::kill_process_group(&g.to_string());
        }
        assert!(left.is_empty(), "processes of group {g} survived: {left:?}");
    }
}

#[test]
fn an_implemented_run_that_changed_no_file_is_not_completed_unless_allowed() {
    let repo = setup();
    let nothing = json!([{"complete_phases": ["1", "2", "3"], "summary": "all done", "metadata": meta("implemented")}]);
    let out = implement(&repo, nothing.clone(), &["--json"]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    let report = json_of(&out);
    assert_eq!(report["reason"], "reported implemented but changed no file");
    assert_eq!(repo.state_entry(350)["failure_reason"], "reported implemented but changed no file");
    assert_eq!(repo.state_entry(350)["status"], "implementing");

    // --allow-empty: the commands decide (here the change was made before the run).
    let repo = setup();
    repo.write("src/calc.sh", CALC_DONE);
    repo.git(&["commit", "-qam", "done by hand"]);
    let out = implement(&repo, nothing, &["--json", "--allow-empty"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(json_of(&out)["validation"], "passed");
}

#[test]
fn no_validate_skips_the_commands_and_says_so_and_check_warns_unvalidated() {
    let repo = setup();
    let out =
        implement(&repo, json!([step(&[("src/calc.sh", CALC_WRONG)], "implemented")]), &["--json", "--no-validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let report = json_of(&out);
    assert_eq!((report["status"].as_str(), report["validation"].as_str()), (Some("completed"), Some("skipped")));
    assert!(repo.state_entry(350).get("validation").is_none());
    assert!(!repo.exists("specs/350_add_feature/validation"));
    assert!(!head_message(&repo).contains("Validated:"));

    // `unvalidated`: completed, validation configured for its language, no record.
    // (The sample ledger has findings of its own; this one is a warning.)
    let out = repo.run(&["check", "--json"]);
    let findings = json_of(&out)["findings"].clone();
    let hit: Vec<&Value> =
        findings.as_array().expect("findings").iter().filter(|f| f["rule"] == "unvalidated").collect();
    assert_eq!(hit.len(), 1, "{findings}");
    assert_eq!((hit[0]["task"].as_u64(), hit[0]["severity"].as_str()), (Some(350), Some("warning")));
    // Without validation configured for the language, the rule has nothing to say; the check
    // re-reads .postflight.json (its result cache fingerprints it).
    repo.write(".postflight.json", &config(json!({"validation": {"lean4": ["lake build"]}})));
    let out = repo.run(&["check", "--json"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("unvalidated"), "{}", render(&out));

    // The text headline of a skipped run.
    let repo = setup();
    let out = implement(&repo, json!([step(&[("src/calc.sh", CALC_DONE)], "implemented")]), &["--no-validate"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("validation  skipped"), "{}", render(&out));
}

#[test]
fn unvalidated_flags_a_failed_record_and_not_a_passing_one() {
    let repo = setup();
    let out = implement(&repo, json!([step(&[("src/calc.sh", CALC_DONE)], "implemented")]), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let check = repo.run(&["check", "--json", "--no-cache"]);
    assert!(!String::from_utf8_lossy(&check.stdout).contains("unvalidated"), "{}", render(&check));
    // A completed task whose record says a command failed (edited by hand, or an old run).
    let text = repo.read("specs/state.json").replace("\"exit_code\": 0", "\"exit_code\": 3");
    repo.write("specs/state.json", &text);
    let check = repo.run(&["check", "--no-cache"]);
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(out.contains("warning[unvalidated]: task 350") && out.contains("exited 3"), "{}", render(&check));
}

#[test]
fn no_commands_configured_behaves_as_before_and_says_not_validated() {
    let repo = setup_with(json!({"validation": {}}));
    let nothing = json!([{"summary": "all done", "metadata": meta("implemented")}]);
    let out = implement(&repo, nothing, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let report = json_of(&out);
    assert_eq!((report["status"].as_str(), report["validation"].as_str()), (Some("completed"), Some("not validated")));
    assert!(repo.state_entry(350).get("validation").is_none());
}

#[test]
fn postflight_runs_the_gate_once_for_an_orchestrating_session() {
    let repo = setup();
    let pre = repo.run(&["preflight", "350"]);
    assert_eq!(pre.status.code(), Some(0), "{}", render(&pre));
    // The session "implements" wrongly and reports implemented.
    repo.write("src/calc.sh", CALC_WRONG);
    // `postflight` has no scope snapshot of the run: the session lists what it changed.
    let mut m = meta("implemented");
    m["artifacts"]
        .as_array_mut()
        .expect("artifacts")
        .push(json!({"type": "implementation", "path": "src/calc.sh", "summary": "mul"}));
    let meta_text = m.to_string().replace("{session_id}", crate::support::SESSION);
    repo.write("specs/350_add_feature/.return-meta.json", &meta_text);
    let out = repo.run(&["postflight", "350", "--json"]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    let report = json_of(&out);
    assert_eq!(report["status"], "validation_failed");
    assert_eq!(report["validation_failure"]["command"], COMMANDS[0]);
    // Fixed, preflight and postflight again: completed, validated.
    assert_eq!(repo.run(&["preflight", "350"]).status.code(), Some(0));
    repo.write("src/calc.sh", CALC_DONE);
    repo.write("specs/350_add_feature/.return-meta.json", &meta_text);
    let out = repo.run(&["postflight", "350", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(json_of(&out)["validation"], "passed");
    assert_eq!(verify(&repo).0, Some(0));
}

/// One staged run: what the agent does per invocation, and whether it must end completed.
struct Case {
    name: &'static str,
    steps: Value,
    completed: bool,
    /// For a phantom: what its `failure_reason` must say.
    reason: &'static str,
}

fn phantom(name: &'static str, reason: &'static str, steps: Value) -> Case {
    Case { name, steps, completed: false, reason }
}

fn genuine(name: &'static str, steps: Value) -> Case {
    Case { name, steps, completed: true, reason: "" }
}

/// The reasons of the phantom table: which check caught it.
const RUN: &str = "`sh tests/run.sh` (exit 1)";
const COUNT: &str = "-ge 2` (exit 1)";
const ACCEPT: &str = "= 20 ]` (exit 1)";
const EMPTY: &str = "reported implemented but changed no file";

#[test]
fn phantom_completions_never_complete_and_genuine_ones_always_do() {
    let done = || step(&[("src/calc.sh", CALC_DONE)], "implemented");
    let cases = [
        phantom("tests fail, twice", RUN, json!([step(&[("src/calc.sh", CALC_WRONG)], "implemented")])),
        phantom("empty diff: only the summary and the plan's markers", EMPTY, json!([{"complete_phases": ["1", "2", "3"], "summary": "done", "metadata": meta("implemented")}])),
        phantom("empty diff reported as `completed`", EMPTY, json!([{"summary": "done", "metadata": meta("completed")}])),
        phantom("claims done on stdout, exits 1, no metadata", "agent exited with status 1", json!([{"stdout": "All phases complete!\n", "exit": 1}])),
        phantom("metadata says implemented, exit 1, wrong code", RUN, json!([{"write": {"src/calc.sh": CALC_WRONG}, "metadata": meta("implemented"), "exit": 1}])),
        phantom("the failing test deleted", COUNT, json!([
            {"delete": ["tests/test_mul.sh"], "write": {"src/calc.sh": CALC_WRONG}, "metadata": meta("implemented")},
            {"metadata": meta("implemented")}
        ])),
        phantom("the failing test edited to `exit 0`", ACCEPT, json!([step(&[("tests/test_mul.sh", "exit 0\n")], "implemented")])),
        phantom("the runner rewritten to always pass", ACCEPT, json!([step(&[("tests/run.sh", "echo '3 tests'\nexit 0\n")], "implemented")])),
        phantom("a syntax error", RUN, json!([step(&[("src/calc.sh", "add() { echo $(($1 + $2)); }\nmul() { echo $(( ; }\n")], "implemented")])),
        phantom("the code in a file nothing sources", RUN, json!([step(&[("src/calc_new.sh", CALC_DONE)], "implemented")])),
        phantom("mul added, add broken", RUN, json!([step(&[("src/calc.sh", "add() { echo 0; }\nmul() { echo $(($1 * $2)); }\n")], "implemented")])),
        phantom("wrong, then the retry deletes the test", COUNT, json!([
            step(&[("src/calc.sh", CALC_WRONG)], "implemented"),
            {"delete": ["tests/test_mul.sh"], "metadata": meta("implemented")}
        ])),
        phantom("wrong, then the retry hard-codes the test's values", ACCEPT, json!([
            step(&[("src/calc.sh", CALC_WRONG)], "implemented"),
            step(&[("src/calc.sh", "add() { echo $(($1 + $2)); }\nmul() { [ \"$1\" = 2 ] && echo 6 || echo 0; }\n")], "implemented")
        ])),
        genuine("correct first time", json!([done()])),
        genuine("wrong, fixed on the retry", json!([step(&[("src/calc.sh", CALC_WRONG)], "implemented"), done()])),
        genuine("correct with a new test", json!([step(&[("src/calc.sh", CALC_DONE), ("tests/test_mul_big.sh", ". ./src/calc.sh\n[ \"$(mul 12 12)\" = 144 ]\n")], "implemented")])),
        genuine("a loop instead of arithmetic", json!([step(&[("src/calc.sh", "add() { echo $(($1 + $2)); }\nmul() { r=0; i=0; while [ $i -lt $2 ]; do r=$((r + $1)); i=$((i + 1)); done; echo $r; }\n")], "implemented")])),
        genuine("partial, then implemented", json!([
            {"write": {"src/calc.sh": CALC_DONE}, "complete_phases": ["1"], "summary": "phase 1",
             "metadata": {"status": "partial", "summary": "phase 1", "partial_progress": {"phases_completed": 1, "phases_total": 3}}},
            {"complete_phases": ["2", "3"], "summary": "phases 2-3", "metadata": meta("implemented")}
        ])),
        genuine("in a new file sourced by calc.sh", json!([step(&[("src/mul.sh", "mul() { echo $(($1 * $2)); }\n"), ("src/calc.sh", "add() { echo $(($1 + $2)); }\n. ./src/mul.sh\n")], "implemented")])),
        genuine("a stronger test alongside", json!([step(&[("src/calc.sh", CALC_DONE), ("tests/test_mul.sh", ". ./src/calc.sh\n[ \"$(mul 2 3)\" = 6 ] && [ \"$(mul 0 7)\" = 0 ] && [ \"$(mul 7 1)\" = 7 ]\n")], "implemented")])),
        genuine("an obsolete file removed too", json!([{"write": {"src/calc.sh": CALC_DONE}, "delete": ["src/old.sh"], "metadata": meta("implemented")}])),
        genuine("a slow agent", json!([{"write": {"src/calc.sh": CALC_DONE}, "sleep_ms": 300, "metadata": meta("implemented")}])),
        genuine("reported as `done`, exit 0", json!([{"write": {"src/calc.sh": CALC_DONE}, "metadata": meta("done")}])),
    ];
    let phantoms = cases.iter().filter(|c| !c.completed).count();
    assert!(phantoms >= 10 && cases.len() - phantoms >= 10, "{phantoms} phantoms of {}", cases.len());
    let mut wrong = Vec::new();
    for case in &cases {
        let repo = setup();
        let out = implement(&repo, case.steps.clone(), &["--json"]);
        let status = repo.state_entry(350)["status"].as_str().unwrap_or_default().to_owned();
        let completed = status == "completed" && out.status.code() == Some(0);
        let reason = repo.state_entry(350)["failure_reason"].as_str().unwrap_or_default().to_owned();
        eprintln!("{:<55} exit {:?} {status} {reason}", case.name, out.status.code());
        if completed != case.completed || !reason.contains(case.reason) {
            wrong.push(format!(
                "{}: expected completed={} (reason with {:?}), got {status} ({reason}): {}",
                case.name,
                case.completed,
                case.reason,
                render(&out)
            ));
        }
        if completed {
            assert_eq!(verify(&repo).0, Some(0), "{}: verify", case.name);
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}
