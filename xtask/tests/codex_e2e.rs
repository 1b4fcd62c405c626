//! End to end with the real Codex CLI (`@openai/codex`) talking to a scripted Responses API on
//! 127.0.0.1 (`support::responses_stub`): `xtask implement --agent codex` through the CLI's own
//! shell tool, an API error, a partial invocation continued in the same thread, a `turn.failed`
//! after tool calls, and a thread that cannot be resumed. The CLI is found through
//! `POSTFLIGHT_E2E_CODEX` (set by `.ci/run` after installing it); without it every test here
//! prints a loud SKIPPED line and returns. Each run has a `CODEX_HOME` of its own (outside
//! `/tmp`, with updates, analytics and plugins off), its provider is the stub, and every proxy
//! variable points at a closed port, so nothing reaches any other host.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::responses_stub::{Reply, Stub};
use crate::support::{render, TestRepo, NOW, SESSION};
use serde_json::{json, Value};

const TASK_DIR: &str = "specs/350_add_feature";
const PLAN: &str = "specs/350_add_feature/plans/implementation-001.md";
const MARKER: &str = "specs/350_add_feature/.postflight-pending";
const CODEX_IDENTITY: &str = "Codex <noreply@openai.com>";
const FEATURE: &str = "pub fn feature() -> u32 {\n    350\n}\n";

/// The Codex executable, or `None` (with a loud message) when it is not installed.
fn codex_bin() -> Option<PathBuf> {
    match std::env::var_os("POSTFLIGHT_E2E_CODEX").filter(|p| !p.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "POSTFLIGHT_E2E_CODEX names {} but no such file exists", p.display());
            Some(p)
        }
        None => {
            crate::support::skipped(
                "the Codex CLI is not installed (no POSTFLIGHT_E2E_CODEX); the Codex end-to-end tests did not run. \
                 Install it with `npm install --prefix target/codex @openai/codex` and set \
                 POSTFLIGHT_E2E_CODEX=$PWD/target/codex/node_modules/.bin/codex",
            );
            None
        }
    }
}

/// A `CODEX_HOME` outside `/tmp` (there the CLI refuses its helper shims) that keeps the CLI
/// off the network: no update check, no analytics, no apps or plugins.
fn codex_home() -> tempfile::TempDir {
    let home = tempfile::Builder::new()
        .prefix("postflight-codex-home-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("home");
    let config = "check_for_update_on_startup = false\n\n[analytics]\nenabled = false\n\n[features]\n\
                  apps = false\nplugins = false\nremote_plugin = false\nplugin_sharing = false\ntool_suggest = false\n";
    std::fs::write(home.path().join("config.toml"), config).expect("config.toml");
    home
}

/// The sample repository with a committed `.postflight.json` selecting the Codex adapter: the
/// executable by path, a model outside Codex's catalogue, and the stub as the provider (no
/// retries, so an error is one request).
fn setup(bin: &Path, stub: &Stub) -> TestRepo {
    let repo = TestRepo::new();
    let provider = json!({
        "name": "postflight stub", "base_url": stub.base_url(), "env_key": "PF_STUB_API_KEY",
        "wire_api": "responses", "request_max_retries": 0, "stream_max_retries": 0
    });
    let cfg = json!({
        "agent": "codex",
        "codex": {
            "command": bin, "model": "stub-model",
            "config": {"model_providers.pfstub": provider, "model_provider": "pfstub"}
        }
    });
    repo.write(".postflight.json", &serde_json::to_string_pretty(&cfg).expect("json"));
    repo.write("src/existing.rs", "// existing\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "codex settings"]);
    repo
}

/// Points the repository's configured provider at `stub` (a new stub listens on a new port).
fn point_at(repo: &TestRepo, stub: &Stub) {
    let mut cfg: Value = serde_json::from_str(&repo.read(".postflight.json")).expect("config");
    cfg["codex"]["config"]["model_providers.pfstub"]["base_url"] = json!(stub.base_url());
    repo.write(".postflight.json", &serde_json::to_string_pretty(&cfg).expect("json"));
}

/// Runs `xtask implement 350 --json` (plus `extra`) with the CLI's environment: its home, the
/// key, and every proxy pointed at a closed port except for loopback.
fn implement(repo: &TestRepo, home: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["implement", "350", "--timeout", "120", "--json"];
    args.extend_from_slice(extra);
    let mut cmd = repo.xtask(&args);
    env(&mut cmd, home).output().expect("run implement")
}

fn env<'c>(cmd: &'c mut Command, home: &Path) -> &'c mut Command {
    cmd.env("CODEX_HOME", home)
        .env("PF_STUB_API_KEY", "sk-test-not-a-real-key")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "127.0.0.1,localhost")
}

/// A shell command writing `content` to `path` (relative to the repository, or `$VAR`).
fn write_file(path: &str, content: &str) -> String {
    format!("mkdir -p \"$(dirname \"{path}\")\" && cat > \"{path}\" <<'POSTFLIGHT_EOF'\n{content}\nPOSTFLIGHT_EOF")
}

/// The command writing the metadata file (to the path the delegation names).
fn metadata(status: &str, phases_completed: u64) -> String {
    let meta = json!({
        "status": status,
        "summary": format!("Phases 1-{phases_completed} of 3 done through Codex."),
        "artifacts": [{"type": "implementation", "path": "src/feature.rs", "summary": "The feature"}],
        "metadata": {"session_id": SESSION, "phases_completed": phases_completed, "phases_total": 3},
        "completion_data": {"completion_summary": "Added the feature through Codex.", "roadmap_items": []}
    });
    write_file("$XTASK_METADATA_FILE", &serde_json::to_string_pretty(&meta).expect("json"))
}

fn json_out(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("--json output is not JSON ({e}): {}", render(out)))
}

/// Subjects, messages and file lists of the commits after the two setup commits, oldest first.
fn commits(repo: &TestRepo) -> Vec<(String, String, Vec<String>)> {
    repo.git(&["rev-list", "--reverse", "HEAD"])
        .lines()
        .skip(2)
        .map(|id| {
            let message = repo.git(&["log", "-1", "--format=%B", id]);
            let mut files: Vec<String> =
                repo.git(&["show", "--name-only", "--format=", id]).lines().map(str::to_owned).collect();
            files.sort();
            (message.lines().next().unwrap_or_default().to_owned(), message, files)
        })
        .collect()
}

fn trailers(repo: &TestRepo, message: &str) -> String {
    let path = repo.home().join("msg.txt");
    std::fs::write(&path, message).expect("msg");
    repo.git(&["interpret-trailers", "--parse", path.to_str().expect("utf8")])
}

/// The thread id each model turn was made in (the CLI sends it as a header).
fn threads(stub: &Stub) -> Vec<String> {
    stub.turns().iter().map(|t| t.header("thread-id").unwrap_or_default().to_owned()).collect()
}

#[test]
fn codex_implement_completes_through_the_real_cli_and_records_the_thread() {
    let Some(bin) = codex_bin() else { return };
    let home = codex_home();
    let stub = Stub::start(Vec::new(), Reply::Text("unexpected extra turn".into()));
    let repo = setup(&bin, &stub);
    drop(stub);
    let stub = Stub::start(
        vec![
            Reply::Commands(vec![
                write_file("src/feature.rs", FEATURE.trim_end()),
                format!("sed -i 's/\\[NOT STARTED\\]/[COMPLETED]/' {PLAN}"),
                // What the tool recorded while the model works: the thread id, in the marker
                // and state.json, before the turn ends.
                format!("echo \"thread=$CODEX_THREAD_ID\"; grep agent_session_id {MARKER} specs/state.json"),
            ]),
            Reply::Commands(vec![metadata("implemented", 3)]),
            Reply::Text("Task 350 is implemented.".into()),
        ],
        Reply::Text("unexpected extra turn".into()),
    );
    point_at(&repo, &stub);
    let out = implement(&repo, home.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}\n--- stub\n{}", render(&out), stub.describe());
    let report = json_out(&out);
    assert_eq!(report["status"], "completed", "{report:#}");

    // The CLI ran the scripted conversation to its end, in one thread.
    assert_eq!(stub.turns().len(), 3, "{}", stub.describe());
    assert_eq!(stub.unused(), 0);
    let thread = report["agent_session_id"].as_str().expect("agent_session_id").to_owned();
    assert_eq!(threads(&stub), [thread.as_str(); 3]);
    let first = stub.turns()[0].clone();
    assert!(first.input_text().contains("350") && first.input_text().contains(".return-meta.json"));
    let tools: Vec<String> = first.json()["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    assert!(tools.iter().any(|t| t == "exec_command"), "{tools:?}");
    // The thread id was in the marker and state.json while the model was still working.
    let outputs = stub.turns()[1].tool_outputs();
    let seen = outputs.last().expect("tool output");
    assert!(seen.contains(&format!("thread={thread}")), "{seen}");
    assert!(seen.contains(&format!("{MARKER}:  \"agent_session_id\": \"{thread}\"")), "{seen}");
    assert!(seen.contains(&format!("specs/state.json:      \"agent_session_id\": \"{thread}\"")), "{seen}");

    // The stream's summary: usage, the commands it ran, the thread.
    let results = report["agent_results"].as_array().expect("agent_results");
    assert_eq!(results.len(), 1, "{report:#}");
    let r = &results[0];
    assert_eq!(r["thread_id"], thread.as_str());
    assert_eq!(r["status"], "turn.completed");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["is_error"], false);
    assert_eq!(r["last_message"], "Task 350 is implemented.");
    assert!(r["usage"]["output_tokens"].as_u64().is_some_and(|n| n > 0), "{r:#}");
    let commands = r["commands"].as_array().expect("commands");
    assert_eq!(commands.len(), 4, "{r:#}");
    assert!(commands.iter().all(|c| c["exit_code"] == 0), "{r:#}");

    // The ledger and the commit.
    let e = repo.state_entry(350);
    assert_eq!(e["status"], "completed");
    assert_eq!(e["completed"], NOW);
    assert_eq!(e["agent_session_id"], thread.as_str(), "{e:#}");
    assert!(repo.read(PLAN).contains("### Phase 3: Tests [COMPLETED]"), "{}", repo.read(PLAN));
    assert_eq!(repo.read("src/feature.rs"), FEATURE);
    let c = commits(&repo);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].0, "task 350: complete implementation");
    assert_eq!(c[0].2, [PLAN, "specs/TODO.md", "specs/state.json", "src/feature.rs"]);
    let t = trailers(&repo, &c[0].1);
    assert!(t.contains(&format!("Session: {SESSION}")), "{t}");
    assert!(t.contains(&format!("Co-authored-by: {CODEX_IDENTITY}")), "{t}");
    assert!(!repo.exists(MARKER));
    // The events and the summary are in the run log; the header shows the argv.
    let log = repo.read(&format!("{TASK_DIR}/.postflight-agent.log"));
    assert!(log.contains("\"type\":\"thread.started\"") && log.contains("[postflight] agent result: "), "{log}");
    assert!(log.contains(" exec --json -s workspace-write -m stub-model -c "), "{log}");
}

#[test]
fn codex_api_error_ends_the_run_with_exit_4_and_the_same_thread_resumes() {
    let Some(bin) = codex_bin() else { return };
    let home = codex_home();
    let stub = Stub::start(Vec::new(), Reply::Status(500));
    let repo = setup(&bin, &stub);
    let out = implement(&repo, home.path(), &[]);
    assert_eq!(out.status.code(), Some(4), "{}\n--- stub\n{}", render(&out), stub.describe());
    let report = json_out(&out);
    assert_eq!(report["status"], "agent_error", "{report:#}");
    let reason = report["reason"].as_str().expect("reason");
    assert!(reason.starts_with("Codex stopped with an error (turn.failed, exit 1): "), "{reason}");
    assert!(!reason.contains("metadata"), "reported as missing metadata: {reason}");
    assert_eq!(report["agent_results"][0]["is_error"], true, "{report:#}");
    assert_eq!(stub.turns().len(), 1, "{}", stub.describe());
    let thread = report["agent_session_id"].as_str().expect("agent_session_id").to_owned();
    assert_eq!(threads(&stub), [thread.as_str()]);

    // The task stays implementing, the marker stays (with the thread) for the resume, and the
    // run's record is committed with the reason.
    assert_eq!(repo.state_entry(350)["status"], "implementing");
    assert_eq!(repo.state_entry(350)["agent_session_id"], thread.as_str());
    let marker: Value = serde_json::from_str(&repo.read(MARKER)).expect("marker kept");
    assert_eq!(marker["agent_session_id"], thread.as_str());
    let c = commits(&repo);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].0, "task 350: implementation failed");
    assert!(c[0].1.contains("Codex stopped with an error"), "{}", c[0].1);
    let out = repo.run(&["status", "350"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Codex stopped with an error"), "{}", render(&out));

    // The service is back: the same command resumes the run in the same thread.
    let stub = Stub::start(
        vec![
            Reply::Commands(vec![write_file("src/feature.rs", FEATURE.trim_end()), metadata("implemented", 3)]),
            Reply::Text("Done.".into()),
        ],
        Reply::Text("extra".into()),
    );
    point_at(&repo, &stub);
    let out = implement(&repo, home.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}\n--- stub\n{}", render(&out), stub.describe());
    let report = json_out(&out);
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(report["session_id"], SESSION);
    assert_eq!(report["agent_session_id"], thread.as_str());
    assert_eq!(threads(&stub), [thread.as_str(), thread.as_str()]);
    assert_eq!(report["agent_results"][0]["resumed"], true);
    let log = repo.read(&format!("{TASK_DIR}/.postflight-agent.log"));
    assert!(log.contains(" exec resume --json -c 'sandbox_mode=\"workspace-write\"' -m stub-model "), "{log}");
    assert!(log.contains(&format!(" {thread} -\n")), "{log}");
    assert_eq!(repo.state_entry(350)["status"], "completed");
}

#[test]
fn codex_partial_invocation_is_continued_in_the_same_thread() {
    let Some(bin) = codex_bin() else { return };
    let home = codex_home();
    let stub = Stub::start(
        vec![
            Reply::Commands(vec![
                write_file("src/feature.rs", "pub fn feature() -> u32 {\n    0\n}"),
                "sed -i '0,/\\[NOT STARTED\\]/s//[COMPLETED]/' specs/350_add_feature/plans/implementation-001.md"
                    .into(),
                metadata("partial", 1),
            ]),
            Reply::Text("Phase 1 is done; more next time.".into()),
            Reply::Commands(vec![
                write_file("src/feature.rs", FEATURE.trim_end()),
                format!("sed -i 's/\\[NOT STARTED\\]/[COMPLETED]/' {PLAN}"),
                metadata("implemented", 3),
            ]),
            Reply::Text("All phases done.".into()),
        ],
        Reply::Text("unexpected extra turn".into()),
    );
    let repo = setup(&bin, &stub);
    let out = implement(&repo, home.path(), &["--max-iterations", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}\n--- stub\n{}", render(&out), stub.describe());
    let report = json_out(&out);
    assert_eq!(report["status"], "completed", "{report:#}");
    assert_eq!(report["iterations"], 2, "{report:#}");
    let thread = report["agent_session_id"].as_str().expect("agent_session_id").to_owned();
    assert_eq!(threads(&stub), [thread.as_str(); 4], "{}", stub.describe());
    // The second invocation continued the conversation: its first request carries the first
    // one's exchange, then the new prompt (iteration 2, resuming at phase 2).
    let resumed = stub.turns()[2].clone();
    let text = resumed.input_text();
    assert!(text.contains("Phase 1 is done; more next time."), "{text}");
    assert!(text.contains("\"iteration\":2") || text.contains("iteration 2"), "{text}");
    let results = report["agent_results"].as_array().expect("agent_results");
    assert_eq!(results.len(), 2, "{report:#}");
    assert_eq!(results[0]["resumed"], false);
    assert_eq!(results[1]["resumed"], true);
    assert!(results.iter().all(|r| r["thread_id"] == thread.as_str()), "{report:#}");

    let c = commits(&repo);
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(c[0].0, "task 350: iteration 1 partial progress");
    assert_eq!(c[1].0, "task 350: complete implementation");
    assert!(trailers(&repo, &c[0].1).contains(&format!("Co-authored-by: {CODEX_IDENTITY}")));
    assert_eq!(repo.state_entry(350)["agent_session_id"], thread.as_str());
    assert_eq!(repo.read("src/feature.rs"), FEATURE);
}

#[test]
fn codex_turn_failed_after_tool_calls_is_an_agent_error_and_a_lost_thread_starts_anew() {
    let Some(bin) = codex_bin() else { return };
    let home = codex_home();
    let stub = Stub::start(
        vec![Reply::Commands(vec![write_file("src/feature.rs", "pub fn feature() {}")]), Reply::Status(400)],
        Reply::Text("unexpected extra turn".into()),
    );
    let repo = setup(&bin, &stub);
    let out = implement(&repo, home.path(), &[]);
    assert_eq!(out.status.code(), Some(4), "{}\n--- stub\n{}", render(&out), stub.describe());
    let report = json_out(&out);
    assert_eq!(report["status"], "agent_error", "{report:#}");
    assert_eq!(
        report["reason"],
        "Codex stopped with an error (turn.failed, exit 1): Scripted bad request: the model rejected the input",
        "{report:#}"
    );
    let r = &report["agent_results"][0];
    assert_eq!(r["status"], "turn.failed");
    assert_eq!(r["commands"].as_array().map(Vec::len), Some(1), "{r:#}");
    assert_eq!(r["commands"][0]["exit_code"], 0, "{r:#}");
    assert_eq!(repo.state_entry(350)["status"], "implementing");
    let thread = report["agent_session_id"].as_str().expect("thread").to_owned();
    assert!(repo.exists(MARKER));

    // The CLI's sessions are gone (another CODEX_HOME): the resume fails, and the run goes on
    // in a new thread with the same prompt, in the same iteration.
    let home = codex_home();
    let stub = Stub::start(
        vec![
            Reply::Commands(vec![write_file("src/feature.rs", FEATURE.trim_end()), metadata("implemented", 3)]),
            Reply::Text("Done.".into()),
        ],
        Reply::Text("extra".into()),
    );
    point_at(&repo, &stub);
    let out = implement(&repo, home.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}\n--- stub\n{}", render(&out), stub.describe());
    let report = json_out(&out);
    let new_thread = report["agent_session_id"].as_str().expect("thread").to_owned();
    assert_ne!(new_thread, thread);
    assert_eq!(threads(&stub), [new_thread.as_str(), new_thread.as_str()]);
    let results = report["agent_results"].as_array().expect("agent_results");
    assert_eq!(results.len(), 2, "{report:#}");
    assert_eq!(results[0]["status"], "no turn event");
    assert!(results[0]["error"].as_str().is_some_and(|e| e.contains("no rollout found")), "{report:#}");
    assert_eq!(results[1]["resumed"], false);
    let log = repo.read(&format!("{TASK_DIR}/.postflight-agent.log"));
    assert!(log.contains(&format!("the agent session {thread} could not be resumed")), "{log}");
    assert_eq!(repo.state_entry(350)["agent_session_id"], new_thread.as_str());
    assert_eq!(repo.state_entry(350)["status"], "completed");
}

#[test]
fn hooks_install_codex_writes_the_stop_entry_and_uninstall_removes_only_it() {
    let repo = TestRepo::new();
    repo.write(
        ".codex/hooks.json",
        "{\"hooks\": {\"Stop\": [{\"hooks\": [{\"type\": \"command\", \"command\": \"echo mine\"}]}]}}\n",
    );
    let out = repo.run(&["hooks", "install", "--codex", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let hooks: Value = serde_json::from_str(&repo.read(".codex/hooks.json")).expect("hooks.json");
    let stop = hooks["hooks"]["Stop"].as_array().expect("Stop");
    assert_eq!(stop.len(), 2, "{hooks:#}");
    assert_eq!(stop[1], json!({"hooks": [{"type": "command", "command": "xtask hook stop", "timeout": 10}]}));
    assert!(hooks["hooks"].get("SubagentStop").is_none(), "{hooks:#}");
    // Only what was asked for: no git hook, no Claude settings.
    assert!(!repo.exists(".claude/settings.json"));
    assert!(!repo.exists(".git/hooks/pre-commit"));
    let again = repo.run(&["hooks", "install", "--codex"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains(".codex/hooks.json: already up to date"),
        "{}",
        render(&again)
    );
    let out = repo.run(&["hooks", "uninstall", "--codex"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let hooks: Value = serde_json::from_str(&repo.read(".codex/hooks.json")).expect("hooks.json");
    assert_eq!(hooks, json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "echo mine"}]}]}}));
}

/// A spec directory (issue 15) run through the real Codex CLI (issue 18): each task one fresh
/// Codex session whose thread id is in the run's marker while the model works, the task's
/// marker moved in the file's own style, one commit per task with `Spec-Task:` and the Codex
/// identity.
#[test]
fn codex_runs_a_spec_directory_task_by_task() {
    let Some(bin) = codex_bin() else { return };
    let home = codex_home();
    let stub = Stub::start(Vec::new(), Reply::Text("unexpected extra turn".into()));
    let repo = setup(&bin, &stub);
    drop(stub);
    let spec = ".kiro/specs/greeting";
    repo.write(
        &format!("{spec}/requirements.md"),
        "# Requirements\n\n### Requirement 1\n\n#### Acceptance Criteria\n\n1. THE script SHALL greet\n",
    );
    repo.write(&format!("{spec}/design.md"), "# Design\n\nOne shell script.\n");
    repo.write(
        &format!("{spec}/tasks.md"),
        "# Implementation Plan\n\n- [ ] 1. Write the greeting\n  - _Requirements: 1.1_\n",
    );
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "the spec"]);
    let marker = format!("{spec}/.postflight-run-tasks/.postflight-pending");
    let meta = json!({"status": "implemented", "summary": "Wrote greet.sh through Codex.", "artifacts": []});
    let stub = Stub::start(
        vec![
            Reply::Commands(vec![
                write_file("greet.sh", "echo hello"),
                format!("echo \"thread=$CODEX_THREAD_ID\"; grep agent_session_id {marker}"),
            ]),
            Reply::Commands(vec![write_file("$XTASK_METADATA_FILE", &meta.to_string())]),
            Reply::Text("Task 1 is done.".into()),
        ],
        Reply::Text("unexpected extra turn".into()),
    );
    point_at(&repo, &stub);
    repo.git(&["commit", "-q", "-am", "point at the stub"]);
    let mut cmd = repo.xtask(&["implement", spec, "--timeout", "120", "--json"]);
    let out = env(&mut cmd, home.path()).output().expect("run implement");
    assert_eq!(out.status.code(), Some(0), "{}\n--- stub\n{}", render(&out), stub.describe());
    let report = json_out(&out);
    assert_eq!(report["format"], "spec", "{report:#}");
    assert_eq!(report["tasks"][0]["status"], "completed", "{report:#}");
    assert_eq!(stub.turns().len(), 3, "{}", stub.describe());
    let thread = threads(&stub)[0].clone();
    assert!(!thread.is_empty() && threads(&stub).iter().all(|t| *t == thread), "one thread: {:?}", threads(&stub));
    let seen = stub.turns()[1].tool_outputs().last().cloned().expect("tool output");
    assert!(seen.contains(&format!("thread={thread}")), "{seen}");
    assert!(seen.contains(&format!("\"agent_session_id\": \"{thread}\"")), "the marker had the thread: {seen}");
    // The thread and the CLI's result are in --json, as for a task of state.json.
    let task = &report["tasks"][0];
    assert_eq!(task["agent_session_id"], thread.as_str(), "{report:#}");
    assert_eq!(task["agent_results"][0]["thread_id"], thread.as_str(), "{report:#}");
    assert_eq!(task["agent_results"][0]["status"], "turn.completed", "{report:#}");
    assert_eq!(task["agent_results"][0]["last_message"], "Task 1 is done.", "{report:#}");
    assert!(
        repo.read(&format!("{spec}/tasks.md")).contains("- [x] 1. Write the greeting\n"),
        "{}",
        repo.read(&format!("{spec}/tasks.md"))
    );
    let subject = repo.git(&["log", "-1", "--format=%s"]);
    assert_eq!(subject.trim(), "spec greeting: task 1 complete");
    let message = repo.git(&["log", "-1", "--format=%B"]);
    let t = trailers(&repo, &message);
    assert!(t.contains("Spec-Task: 1") && t.contains(&format!("Co-authored-by: {CODEX_IDENTITY}")), "{t}");
    let files = repo.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert_eq!(files.lines().collect::<Vec<_>>(), [format!("{spec}/tasks.md").as_str(), "greet.sh"]);
    assert!(!repo.exists(&marker), "the marker is removed after the run");
}
