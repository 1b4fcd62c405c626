//! End to end with the real Claude Code CLI (`@anthropic-ai/claude-code`) talking to a scripted
//! Anthropic API on 127.0.0.1: `xtask implement --agent claude`, the `Stop` hook run by the CLI
//! itself, a session that is not the marker's, and API errors. The CLI is found through
//! `POSTFLIGHT_E2E_CLAUDE` (set by `.ci/run` after installing it) or `claude` on the PATH; without
//! either every test here prints a loud SKIPPED line and returns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::anthropic_stub::{Reply, Stub};
use crate::support::{render, TestRepo, NOW, SESSION};
use serde_json::{json, Value};

const TASK_DIR: &str = "specs/350_add_feature";
const SUMMARY: &str = "specs/350_add_feature/summaries/implementation-summary-20260316.md";
const PLAN: &str = "specs/350_add_feature/plans/implementation-001.md";
const META: &str = "specs/350_add_feature/.return-meta.json";
const MARKER: &str = "specs/350_add_feature/.postflight-pending";
const CLAUDE_IDENTITY: &str = "Claude <noreply@anthropic.com>";
/// The text Claude Code puts before a stop hook's reason when it sends it back to the model.
const HOOK_FEEDBACK: &str = "Stop hook feedback";
/// The start of the stop hook's block reason (src/guard/stop_hook.rs).
const HOOK_REASON: &str = "Postflight for task 350 is still pending and this session owns it";

/// The Claude Code executable, or `None` (with a loud message) when it is not installed.
fn claude_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("POSTFLIGHT_E2E_CLAUDE").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "POSTFLIGHT_E2E_CLAUDE names {} but no such file exists", p.display());
        return Some(p);
    }
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("claude")).find(|p| p.is_file()));
    if found.is_none() {
        crate::support::skipped(
            "the Claude Code CLI is not installed (no POSTFLIGHT_E2E_CLAUDE, no `claude` on the PATH); \
             the Claude Code end-to-end tests did not run. Install it with \
             `npm install --prefix target/claude-code @anthropic-ai/claude-code` and set \
             POSTFLIGHT_E2E_CLAUDE=target/claude-code/node_modules/.bin/claude",
        );
    }
    found
}

/// The inherited PATH without any directory holding a `claude`, with `first` in front when given.
fn path_env(first: Option<&Path>) -> std::ffi::OsString {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&inherited).filter(|d| !d.join("claude").exists());
    std::env::join_paths(first.map(Path::to_path_buf).into_iter().chain(dirs)).expect("PATH")
}

/// One end-to-end setting: the CLI, the stub it talks to, and a HOME of its own.
struct Claude {
    bin: PathBuf,
    stub: Stub,
    home: tempfile::TempDir,
}

impl Claude {
    fn new(bin: PathBuf, script: Vec<Reply>, fallback: Reply) -> Claude {
        let home = tempfile::Builder::new().prefix("postflight-claude-home-").tempdir().expect("home");
        Claude { bin, stub: Stub::start(script, fallback), home }
    }

    /// The directory holding `claude`.
    fn bin_dir(&self) -> &Path {
        self.bin.parent().expect("bin dir")
    }

    /// Points `cmd` (already hermetic) at the stub: loopback API, a dummy key, a HOME of its own,
    /// no telemetry, update or error-reporting traffic, no retries; `claude` on the PATH when
    /// `on_path`.
    fn env<'c>(&self, cmd: &'c mut Command, on_path: bool) -> &'c mut Command {
        cmd.env("PATH", path_env(on_path.then(|| self.bin_dir())))
            .env("HOME", self.home.path())
            .env("ANTHROPIC_BASE_URL", self.stub.base_url())
            .env("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("DISABLE_TELEMETRY", "1")
            .env("DISABLE_AUTOUPDATER", "1")
            .env("DISABLE_ERROR_REPORTING", "1")
            .env("CLAUDE_CODE_MAX_RETRIES", "0")
    }
}

/// The sample repository with a committed `.claude/settings.json` whose `Stop` and
/// `SubagentStop` hooks run this build's `xtask hook stop` by absolute path.
fn setup() -> TestRepo {
    let repo = TestRepo::new();
    let hook = json!([{"hooks": [{"type": "command", "command": format!("'{}' hook stop", env!("CARGO_BIN_EXE_xtask")), "timeout": 10}]}]);
    let settings = json!({"hooks": {"Stop": hook, "SubagentStop": hook}});
    repo.write(".claude/settings.json", &serde_json::to_string_pretty(&settings).expect("json"));
    repo.write("src/existing.rs", "// existing\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "claude settings"]);
    repo
}

fn abs(repo: &TestRepo, rel: &str) -> PathBuf {
    repo.file(rel)
}

/// The tool calls of an implementation: the feature, the summary, the plan's phases marked.
fn implementation_turn(repo: &TestRepo) -> Reply {
    Reply::Tools(vec![
        Reply::write(&abs(repo, "src/feature.rs"), "pub fn feature() -> u32 {\n    350\n}\n"),
        Reply::write(&abs(repo, SUMMARY), "# Implementation Summary: Task #350\n\nPhases 1-3 done.\n"),
        Reply::bash(&format!("sed -i 's/\\[NOT STARTED\\]/[COMPLETED]/' {PLAN}")),
    ])
}

/// The tool call writing the metadata file (status implemented).
fn metadata_turn(repo: &TestRepo) -> Reply {
    let meta = json!({
        "status": "implemented",
        "summary": "Added the feature in three phases.",
        "artifacts": [
            {"type": "implementation", "path": "src/feature.rs", "summary": "The feature"},
            {"type": "summary", "path": SUMMARY, "summary": "Phase log"}
        ],
        "metadata": {"session_id": SESSION, "phases_completed": 3, "phases_total": 3},
        "completion_data": {"completion_summary": "Added the feature through Claude Code.", "roadmap_items": []}
    });
    Reply::Tools(vec![Reply::write(&abs(repo, META), &serde_json::to_string_pretty(&meta).expect("json"))])
}

fn state_entry(repo: &TestRepo) -> Value {
    repo.state_entry(350)
}

fn json_out(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("--json output is not JSON ({e}): {}", render(out)))
}

/// Subjects and file lists of the commits after the two setup commits, oldest first.
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

/// No transient file was ever committed, and none is left in the task directory.
fn assert_no_transients(repo: &TestRepo) {
    for line in repo.git(&["log", "--all", "--name-only", "--format="]).lines() {
        let name = line.rsplit('/').next().unwrap_or(line);
        assert!(
            name != ".return-meta.json" && !name.starts_with(".postflight-") && !line.starts_with(".home-for-tests"),
            "committed a transient file: {line}"
        );
    }
    for f in [".return-meta.json", ".postflight-pending", ".postflight-loop-guard", ".postflight-hook-blocks"] {
        assert!(!repo.exists(&format!("{TASK_DIR}/{f}")), "{f} left behind");
    }
}

/// Every model turn ran under `uuid` (the CLI sends it in a header and in the metadata).
fn assert_session(claude: &Claude, uuid: &str) {
    for turn in claude.stub.turns() {
        assert_eq!(turn.header("x-claude-code-session-id"), Some(uuid), "{:?}", turn.headers);
        let user = turn.json()["metadata"]["user_id"].as_str().unwrap_or_default().to_owned();
        assert!(user.contains(uuid), "{user}");
    }
}

#[test]
fn claude_implement_completes_through_the_real_cli_and_commits_with_trailers() {
    let Some(bin) = claude_bin() else { return };
    let repo = setup();
    let claude = Claude::new(
        bin,
        vec![implementation_turn(&repo), metadata_turn(&repo), Reply::Text("Task 350 is implemented.".into())],
        Reply::Text("unexpected extra turn".into()),
    );
    let mut cmd = repo.xtask(&["implement", "350", "--agent", "claude", "--timeout", "120", "--json"]);
    let out = claude.env(&mut cmd, true).output().expect("run implement");
    assert_eq!(out.status.code(), Some(0), "{}\n--- stub\n{}", render(&out), claude.stub.describe());
    let report = json_out(&out);
    assert_eq!(report["status"], "completed", "{report:#}");

    // The CLI ran the scripted conversation to its end, under the session id the tool chose.
    let turns = claude.stub.turns();
    assert_eq!(turns.len(), 3, "{}", claude.stub.describe());
    assert_eq!(claude.stub.unused(), 0);
    let uuid = report["agent_session_id"].as_str().expect("agent_session_id").to_owned();
    assert_session(&claude, &uuid);
    let first = turns[0].json();
    assert_eq!(first["stream"], true);
    let tools: Vec<&str> =
        first["tools"].as_array().expect("tools").iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(tools.contains(&"Write") && tools.contains(&"Bash"), "{tools:?}");
    let prompt = turns[0].user_text();
    assert!(prompt.contains("350") && prompt.contains(".return-meta.json"), "{prompt}");
    // Each tool ran: its result came back as a tool_result, not as an error.
    for turn in &turns[1..] {
        let v = turn.json();
        let results: Vec<&Value> = v["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .flat_map(|m| m["content"].as_array().into_iter().flatten())
            .filter(|p| p["type"] == "tool_result")
            .collect();
        assert!(results.iter().all(|r| r["is_error"] != true), "a tool failed: {results:?}");
    }
    assert!(!claude.stub.saw(HOOK_FEEDBACK), "the hook blocked a finished run:\n{}", claude.stub.describe());

    // The CLI's final result is in the report.
    let results = report["agent_results"].as_array().expect("agent_results");
    assert_eq!(results.len(), 1, "{report:#}");
    assert_eq!(results[0]["is_error"], false);
    assert_eq!(results[0]["session_id"], uuid.as_str());
    assert!(results[0]["num_turns"].as_u64().is_some_and(|n| n >= 3), "{report:#}");
    assert_eq!(results[0]["result"], "Task 350 is implemented.");

    // The ledger and the commit.
    let e = state_entry(&repo);
    assert_eq!(e["status"], "completed");
    assert_eq!(e["completed"], NOW);
    assert_eq!(e["agent_session_id"], uuid.as_str(), "{e:#}");
    assert!(repo.read("specs/TODO.md").contains("- **Status**: [COMPLETED]"));
    assert!(repo.read(PLAN).contains("### Phase 3: Tests [COMPLETED]"), "{}", repo.read(PLAN));
    assert_eq!(repo.read("src/feature.rs"), "pub fn feature() -> u32 {\n    350\n}\n");
    let c = commits(&repo);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].0, "task 350: complete implementation");
    assert_eq!(c[0].2, [PLAN, SUMMARY, "specs/TODO.md", "specs/state.json", "src/feature.rs"]);
    let t = trailers(&repo, &c[0].1);
    assert!(t.contains(&format!("Session: {SESSION}")), "{t}");
    assert!(t.contains(&format!("Co-authored-by: {CLAUDE_IDENTITY}")), "{t}");
    assert_no_transients(&repo);
    // The CLI's final result went to the run log too.
    let log = repo.read(&format!("{TASK_DIR}/.postflight-agent.log"));
    assert!(log.contains("\"type\":\"result\"") && log.contains(&uuid), "{log}");
}

#[test]
fn claude_stop_hook_sends_the_model_back_until_the_metadata_is_written() {
    let Some(bin) = claude_bin() else { return };
    let repo = setup();
    // The adapter configured in .postflight.json, with the executable by path (not on the PATH).
    let cfg = json!({"agent": "claude", "claude": {"command": bin}});
    repo.write(".postflight.json", &cfg.to_string());
    repo.git(&["add", ".postflight.json"]);
    repo.git(&["commit", "-q", "--amend", "--no-edit"]);
    let claude = Claude::new(
        bin,
        vec![
            implementation_turn(&repo),
            // The model ends its turn without the metadata: the hook must block.
            Reply::Text("All three phases are done.".into()),
            metadata_turn(&repo),
            Reply::Text("Metadata written.".into()),
        ],
        Reply::Text("unexpected extra turn".into()),
    );
    let mut cmd = repo.xtask(&["implement", "350", "--timeout", "120", "--json"]);
    let out = claude.env(&mut cmd, false).output().expect("run implement");
    assert_eq!(out.status.code(), Some(0), "{}\n--- stub\n{}", render(&out), claude.stub.describe());
    let report = json_out(&out);
    assert_eq!(report["status"], "completed", "{report:#}");

    let turns = claude.stub.turns();
    assert_eq!(turns.len(), 4, "{}", claude.stub.describe());
    // Turn 3 is the CLI sending the hook's reason back to the model, as the last user message.
    let feedback = turns[2].last_message_text();
    assert!(feedback.contains(HOOK_FEEDBACK), "{feedback}");
    assert!(feedback.contains(HOOK_REASON), "{feedback}");
    assert!(feedback.contains(&format!("{META} is missing")), "{feedback}");
    assert!(feedback.contains("Stop blocked 1 of 3"), "{feedback}");
    // Only once: after the metadata was written the hook let the session stop.
    let blocks = turns.iter().filter(|t| t.last_message_text().contains(HOOK_FEEDBACK)).count();
    assert_eq!(blocks, 1, "{}", claude.stub.describe());
    let uuid = report["agent_session_id"].as_str().expect("agent_session_id").to_owned();
    assert_session(&claude, &uuid);
    assert!(report["agent_results"][0]["num_turns"].as_u64().is_some_and(|n| n >= 4), "{report:#}");

    assert_eq!(state_entry(&repo)["status"], "completed");
    let c = commits(&repo);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].2, [PLAN, SUMMARY, "specs/TODO.md", "specs/state.json", "src/feature.rs"]);
    let t = trailers(&repo, &c[0].1);
    assert!(t.contains(&format!("Co-authored-by: {CLAUDE_IDENTITY}")), "{t}");
    assert_no_transients(&repo);
}

/// Runs the CLI directly in the repository, as a user would, with the prompt on stdin.
fn run_cli(repo: &TestRepo, claude: &Claude, session: &str, prompt: &str) -> Output {
    use std::io::Write;
    let mut cmd = repo.command(&claude.bin);
    claude.env(&mut cmd, true).args([
        "-p",
        "--session-id",
        session,
        "--output-format",
        "json",
        "--permission-mode",
        "acceptEdits",
        "--allowedTools",
        "Read,Write,Bash",
    ]);
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn claude");
    child.stdin.take().expect("stdin").write_all(prompt.as_bytes()).expect("prompt");
    // Bounded: a CLI that hangs is killed, and the test fails saying so.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(120)) {
        Ok(out) => out.expect("claude"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("claude -p did not finish within 120 s:\n{}", claude.stub.describe());
        }
    }
}

#[test]
fn claude_stop_hook_stands_aside_for_a_session_that_is_not_the_markers() {
    let Some(bin) = claude_bin() else { return };
    let repo = setup();
    let owner = "6f1c2a3b-4d5e-4f60-8a7b-8c9d0e1f2a3b";
    let stranger = "0b6f0c1e-2a3b-4c5d-8e9f-001122334455";
    // A run of task 350 is pending: the task is implementing and its marker names the owner
    // session; the marker's process (this test) is alive, so it is not stale.
    let out = repo.run(&["set-status", "350", "implementing"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let marker = json!({
        "session_id": SESSION, "skill": "postflight", "task_number": 350, "operation": "implement",
        "reason": "implement task 350", "created": NOW, "stop_hook_active": false,
        "pid": std::process::id(), "agent_session_id": owner, "timeout": 7200, "metadata_file": META
    });
    repo.write(MARKER, &serde_json::to_string_pretty(&marker).expect("json"));
    let marker_bytes = repo.read(MARKER);

    // Another session stops at once: no reason comes back, the marker is untouched.
    let claude = Claude::new(bin.clone(), vec![Reply::Text("Nothing to do here.".into())], Reply::Text("extra".into()));
    let out = run_cli(&repo, &claude, stranger, "Say hello.");
    assert_eq!(out.status.code(), Some(0), "{}\n--- stub\n{}", render(&out), claude.stub.describe());
    let result: Value = serde_json::from_slice(&out.stdout).expect("result JSON");
    assert_eq!(result["is_error"], false, "{result:#}");
    assert_eq!(result["session_id"], stranger);
    assert_eq!(claude.stub.turns().len(), 1, "{}", claude.stub.describe());
    assert!(!claude.stub.saw(HOOK_FEEDBACK) && !claude.stub.saw(HOOK_REASON), "{}", claude.stub.describe());
    assert_eq!(repo.read(MARKER), marker_bytes, "the hook touched another session's marker");
    assert!(!repo.exists(&format!("{TASK_DIR}/.postflight-hook-blocks")), "the hook counted a stranger");

    // The control: the marker's own session, in the same repository and settings, is sent back
    // with the reason, then stops once it has written the metadata.
    let claude = Claude::new(
        bin,
        vec![Reply::Text("Stopping now.".into()), metadata_turn(&repo), Reply::Text("Done.".into())],
        Reply::Text("extra".into()),
    );
    let out = run_cli(&repo, &claude, owner, "Implement task 350.");
    assert_eq!(out.status.code(), Some(0), "{}\n--- stub\n{}", render(&out), claude.stub.describe());
    let turns = claude.stub.turns();
    assert_eq!(turns.len(), 3, "{}", claude.stub.describe());
    assert!(turns[1].last_message_text().contains(HOOK_REASON), "{}", claude.stub.describe());
    assert_eq!(repo.read(MARKER), marker_bytes, "the hook must never change or delete a marker");
    assert!(repo.exists(META));
}

#[test]
fn claude_api_errors_end_the_run_with_exit_4_and_keep_the_marker_for_resume() {
    let Some(bin) = claude_bin() else { return };
    for (status, words) in [(529, "API status 529"), (401, "API status 401")] {
        let repo = setup();
        let claude = Claude::new(bin.clone(), Vec::new(), Reply::Status(status));
        // No agent configured: the adapter is chosen because `claude` is on the PATH.
        let mut cmd = repo.xtask(&["implement", "350", "--timeout", "120", "--json"]);
        let out = claude.env(&mut cmd, true).output().expect("run implement");
        assert_eq!(out.status.code(), Some(4), "{status}: {}\n--- stub\n{}", render(&out), claude.stub.describe());
        let report = json_out(&out);
        assert_eq!(report["status"], "agent_error", "{report:#}");
        let reason = report["reason"].as_str().expect("reason");
        assert!(reason.contains(words), "{status}: {reason}");
        assert!(!reason.contains("metadata"), "{status}: reported as missing metadata: {reason}");
        assert_eq!(report["agent_results"][0]["is_error"], true, "{report:#}");
        assert_eq!(report["agent_results"][0]["api_error_status"], status, "{report:#}");
        // No retries (CLAUDE_CODE_MAX_RETRIES=0 is honoured): one request, one answer.
        assert_eq!(claude.stub.turns().len(), 1, "{status}: {}", claude.stub.describe());

        assert_eq!(state_entry(&repo)["status"], "implementing", "{status}");
        assert!(repo.read("specs/TODO.md").contains("- **Status**: [IMPLEMENTING]"), "{status}");
        let marker: Value = serde_json::from_str(&repo.read(MARKER)).expect("marker kept");
        assert_eq!(marker["agent_session_id"], report["agent_session_id"], "{status}");
        // The run's record (task implementing, the reason) is committed; nothing of the agent's.
        let c = commits(&repo);
        assert_eq!(c.len(), 1, "{status}: {c:?}");
        assert_eq!(c[0].0, "task 350: implementation failed");
        assert!(c[0].1.contains(words), "{status}: {}", c[0].1);
        assert_eq!(c[0].2, [PLAN, "specs/TODO.md", "specs/state.json"], "{status}");

        if status == 529 {
            // The service is back: the same command resumes the run and completes it.
            let claude = Claude::new(
                bin.clone(),
                vec![implementation_turn(&repo), metadata_turn(&repo), Reply::Text("Done.".into())],
                Reply::Text("extra".into()),
            );
            let mut cmd = repo.xtask(&["implement", "350", "--timeout", "120", "--json"]);
            let out = claude.env(&mut cmd, true).output().expect("resume");
            assert_eq!(out.status.code(), Some(0), "{}\n--- stub\n{}", render(&out), claude.stub.describe());
            let report = json_out(&out);
            assert_eq!(report["status"], "completed", "{report:#}");
            assert_eq!(report["session_id"], SESSION);
            assert_eq!(state_entry(&repo)["status"], "completed");
            assert_no_transients(&repo);
        }
    }
}
