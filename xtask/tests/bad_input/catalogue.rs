//! Bad-input catalogue (issue 7, item 5): one line per case, each run on a fresh repository.
//! A refused case exits 2 (bad input) with a message naming what was wrong and where, and
//! changes no file; a bad metadata file is exit 4 naming the file; a bad artifact path is a
//! warning and the artifact is ignored (never linked, never committed). Text the agent reports
//! (reasons, summaries) with quotes, backslashes and control characters is stored exactly. No
//! case touches anything outside the repository (a directory beside it, reached through a
//! symlink in one case, is compared before and after every case, and so is /etc/passwd).
//!
//! The table is listed in docs/robustness.md; keep the two in step.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{render, TestRepo};
use serde_json::{json, Value};

const PLAN: &str = "specs/350_add_feature/plans/implementation-001.md";
const META: &str = "specs/350_add_feature/.return-meta.json";
/// Text with every kind of character that must survive a round trip through state.json.
const NASTY: &str = "He said \"no\" \\ then left;\ttab, \u{1} SOH, \u{1b}[31m ESC, \u{7f} DEL, \u{0} NUL,\nsecond line ü 漢字 🚀\r\n---\nSession: forged\n";

/// A repository with the sample ledger, and a directory outside it.
struct Env {
    repo: TestRepo,
    outside: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let repo = TestRepo::new();
        repo.write("src/existing.rs", "// existing\n");
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "project files"]);
        let outside = tempfile::Builder::new().prefix("postflight-outside-").tempdir().expect("outside");
        std::fs::write(outside.path().join("passwd"), "root:x:0:0::/root:/bin/sh\n").expect("write");
        std::fs::create_dir_all(outside.path().join("dir")).expect("mkdir");
        std::fs::write(outside.path().join("dir/secret.txt"), "secret\n").expect("write");
        Env { repo, outside }
    }

    fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let p = self.repo.file(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    fn replace(&self, rel: &str, from: &str, to: &str) {
        let text = self.repo.read(rel);
        assert!(text.contains(from), "{rel} lacks {from:?}");
        self.repo.write(rel, &text.replacen(from, to, 1));
    }

    /// A file in the test's HOME (inside the temp dir, outside the snapshot).
    fn home_file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.repo.home().join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }
}

/// Every file below `dir` with its bytes, symbolic links as their targets, directories as
/// empty entries (`.git` and the test's HOME left out): what "nothing changed" compares.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("ls").map(|e| e.expect("entry")) {
            let (p, ft) = (e.path(), e.file_type().expect("type"));
            if e.file_name() == ".git" || e.file_name() == ".home-for-tests" {
                continue;
            }
            if ft.is_symlink() {
                out.push((p.clone(), std::fs::read_link(&p).expect("link").into_os_string().into_encoded_bytes()));
            } else if ft.is_dir() {
                out.push((p.join(""), Vec::new()));
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

/// What a case runs.
enum Run {
    /// `xtask <args>`.
    Cli(&'static [&'static str]),
    /// `xtask <args>` with extra environment.
    CliEnv(&'static [&'static str], &'static [(&'static str, &'static str)]),
    /// `xtask implement 350` with the scripted agent doing this one step.
    Agent(fn() -> Value),
    /// `xtask implement 350` with an agent that copies the file `metadata` (in HOME) into place.
    RawMetadata(&'static str),
}

/// What a case must leave.
enum Then {
    /// No file in the work tree changed (and HEAD did not move).
    Unchanged,
    /// A check of the result.
    Check(fn(&Env, &Output)),
}

struct Case {
    name: &'static str,
    setup: fn(&Env),
    run: Run,
    exit: i32,
    needles: &'static [&'static str],
    then: Then,
}

fn case(
    name: &'static str,
    setup: fn(&Env),
    run: Run,
    exit: i32,
    needles: &'static [&'static str],
    then: Then,
) -> Case {
    Case { name, setup, run, exit, needles, then }
}

fn none(_: &Env) {}

fn entry(env: &Env) -> Value {
    env.repo.state_entry(350)
}

fn artifact_paths(env: &Env) -> Vec<String> {
    entry(env)["artifacts"]
        .as_array()
        .map(|a| a.iter().map(|x| x.as_str().or_else(|| x["path"].as_str()).unwrap_or("?").to_owned()).collect())
        .unwrap_or_default()
}

/// Every path any commit since the setup touched.
fn committed(env: &Env) -> Vec<String> {
    env.repo
        .git(&["log", "--name-only", "--format=", "HEAD~2..HEAD"])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn run(env: &Env, c: &Case) -> Output {
    let agent = format!("'{}' demo-agent", env!("CARGO_BIN_EXE_xtask"));
    match &c.run {
        Run::Cli(args) => env.repo.run(args),
        Run::CliEnv(args, vars) => {
            let mut cmd = env.repo.xtask(args);
            for (k, v) in *vars {
                cmd.env(k, v);
            }
            cmd.output().expect("run")
        }
        Run::Agent(step) => {
            let script = env.home_file("script.json", json!({"steps": [step()]}).to_string().as_bytes());
            env.repo
                .xtask(&["implement", "350", "--agent", &agent, "--max-iterations", "1"])
                .env("XTASK_DEMO_SCRIPT", script)
                .output()
                .expect("run")
        }
        Run::RawMetadata(name) => {
            let file = env.repo.home().join(name);
            let cmd = format!("cp '{}' \"$XTASK_METADATA_FILE\"", file.display());
            env.repo.xtask(&["implement", "350", "--agent", &cmd, "--max-iterations", "1"]).output().expect("run")
        }
    }
}

/// A step that finishes the plan and reports `metadata`.
fn finishing(metadata: Value) -> Value {
    json!({"write": {"src/feature.rs": "pub fn feature() {}\n"}, "complete_phases": ["1", "2", "3"], "summary": "done", "metadata": metadata})
}

fn implemented_with(artifacts: Value) -> Value {
    finishing(json!({
        "status": "implemented",
        "summary": "Done.",
        "artifacts": artifacts,
        "completion_data": {"completion_summary": "Added the feature.", "roadmap_items": []}
    }))
}

/// An artifact path that must be ignored: a warning, not linked, not committed; the rest of
/// the run completes.
fn ignored_artifact(env: &Env, out: &Output, path: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a file of the repository ("), "{}", render(out));
    assert!(stderr.contains("); ignored"), "{}", render(out));
    assert!(!artifact_paths(env).iter().any(|p| p == path), "{path} was linked: {:?}", artifact_paths(env));
    let files = committed(env);
    assert!(files.iter().all(|f| f != path && !f.contains("passwd") && !f.contains(".git/")), "{files:?}");
    assert!(files.iter().any(|f| f == "src/feature.rs"), "the run's own files are committed: {files:?}");
    assert_eq!(entry(env)["status"], "completed");
}

fn with_artifact(path: &'static str) -> fn() -> Value {
    // One function per path keeps the table one line per case.
    match path {
        "../../etc/passwd" => {
            || implemented_with(json!([{"type": "implementation", "path": "../../etc/passwd"}, "src/feature.rs"]))
        }
        "/etc/passwd" => {
            || implemented_with(json!([{"type": "implementation", "path": "/etc/passwd"}, "src/feature.rs"]))
        }
        ".git/config" => || implemented_with(json!([".git/config", "src/feature.rs"])),
        "src/out/passwd" => {
            || implemented_with(json!([{"type": "implementation", "path": "src/out/passwd"}, "src/feature.rs"]))
        }
        "specs/350_add_feature/.return-meta.json" => || implemented_with(json!([META, "src/feature.rs"])),
        "specs/../../etc/passwd" => || implemented_with(json!(["specs/../../etc/passwd", "src/feature.rs"])),
        _ => unreachable!("add the path to with_artifact"),
    }
}

/// The failure reason recorded for the run, which must be `NASTY` exactly.
fn stored_exactly(env: &Env, field: &str) {
    let e = entry(env);
    assert_eq!(e[field].as_str(), Some(NASTY), "{field}: {e}");
    // jq reads the file and gets the same string back.
    let jq = std::process::Command::new("jq")
        .args(["-j", &format!(".active_projects[] | select(.project_number == 350) | .{field}")])
        .arg(env.repo.file("specs/state.json"))
        .output();
    if let Ok(jq) = jq {
        assert!(jq.status.success());
        assert_eq!(String::from_utf8_lossy(&jq.stdout), NASTY.replace('\0', "\u{fffd}").replace("\u{fffd}", "\0"));
    }
}

// Setups: each changes the fresh repository in one way.
fn drop_a_comma(e: &Env) {
    e.replace("specs/state.json", "\"language\": \"lean4\",", "\"language\": \"lean4\"")
}
fn empty_state(e: &Env) {
    e.repo.write("specs/state.json", "")
}
fn truncated_state(e: &Env) {
    e.repo.write("specs/state.json", &crate::support::STATE[..crate::support::STATE.len() / 2])
}
fn array_state(e: &Env) {
    e.repo.write("specs/state.json", "[]\n")
}
fn no_active_projects(e: &Env) {
    e.repo.write("specs/state.json", "{\"completed_projects\": []}\n")
}
fn object_active_projects(e: &Env) {
    e.repo.write("specs/state.json", "{\n  \"active_projects\": {}\n}\n")
}
fn duplicate_in_state(e: &Env) {
    e.replace("specs/state.json", "\"project_number\": 351,", "\"project_number\": 350,")
}
fn number_as_string(e: &Env) {
    e.replace("specs/state.json", "\"project_number\": 350,", "\"project_number\": \"350\",")
}
fn state_not_utf8(e: &Env) {
    let mut b = crate::support::STATE.as_bytes().to_vec();
    b[crate::support::STATE.find("Legacy").unwrap_or(200)] = 0xff;
    e.write_bytes("specs/state.json", &b)
}
fn state_with_bom(e: &Env) {
    e.write_bytes("specs/state.json", &[b"\xef\xbb\xbf".as_slice(), crate::support::STATE.as_bytes()].concat())
}
fn state_deep(e: &Env) {
    e.repo.write("specs/state.json", &format!("{{\"active_projects\": {}", "[".repeat(100_000)))
}
fn state_50mb_broken(e: &Env) {
    let head = crate::support::STATE.trim_end().trim_end_matches('}');
    e.repo.write("specs/state.json", &format!("{head}\n{{\"padding\": \"{}\"", "x".repeat(50 << 20)))
}
fn state_50mb_valid(e: &Env) {
    let padding = format!("\"zz_padding\": \"{}\",\n  \"repository_health\": {{", "x".repeat(50 << 20));
    e.replace("specs/state.json", "\"repository_health\": {", &padding)
}
fn slug_escapes(e: &Env) {
    e.replace("specs/state.json", "\"project_name\": \"add_feature\"", "\"project_name\": \"../../outside\"");
    std::fs::rename(e.repo.file("specs/350_add_feature"), e.repo.file("specs/350_moved")).expect("mv")
}
fn todo_not_utf8(e: &Env) {
    let mut b = crate::support::TODO.as_bytes().to_vec();
    b[crate::support::TODO.find("Legacy entry").expect("text")] = 0xff;
    e.write_bytes("specs/TODO.md", &b)
}
fn duplicate_in_todo(e: &Env) {
    e.replace("specs/TODO.md", "### 351. Second feature", "### 350. Second feature")
}
fn todo_is_a_dir(e: &Env) {
    std::fs::remove_file(e.repo.file("specs/TODO.md")).expect("rm");
    std::fs::create_dir(e.repo.file("specs/TODO.md")).expect("mkdir")
}
fn todo_without_task(e: &Env) {
    e.replace("specs/TODO.md", "### 350. Add feature", "### 349. Add feature")
}
fn no_plan(e: &Env) {
    std::fs::remove_file(e.repo.file(PLAN)).expect("rm")
}
fn plan_not_utf8(e: &Env) {
    e.write_bytes(PLAN, b"# Plan\n\n- **Status**: [PLANNED]\n\xc3(\n")
}
fn plan_is_a_dir(e: &Env) {
    std::fs::remove_file(e.repo.file(PLAN)).expect("rm");
    std::fs::create_dir(e.repo.file(PLAN)).expect("mkdir")
}
fn plan_without_header(e: &Env) {
    e.replace(PLAN, "- **Status**: [PLANNED]\n", "")
}
fn bad_config(e: &Env) {
    e.repo.write(".postflight.json", "{\"agent\": ")
}
fn link_out(e: &Env) {
    std::os::unix::fs::symlink(e.outside.path(), e.repo.file("src/out")).expect("symlink")
}
fn user_scratch(e: &Env) {
    e.repo.write("scratch.txt", "the user's untracked notes\n")
}
fn stale_temp_in_plans(e: &Env) {
    e.repo.write("specs/350_add_feature/plans/.implementation-001.md.Ab3dE9.tmp", "half")
}
fn meta(e: &Env, bytes: &[u8]) {
    e.home_file("m", bytes);
}
fn meta_invalid(e: &Env) {
    meta(e, b"{\"status\": \"implemented\", oops")
}
fn meta_empty(e: &Env) {
    meta(e, b"")
}
fn meta_array(e: &Env) {
    meta(e, b"[{\"status\": \"implemented\"}]")
}
fn meta_status_number(e: &Env) {
    meta(e, b"{\"status\": 1}")
}
fn meta_not_utf8(e: &Env) {
    meta(e, b"{\"status\": \"implemented\", \"summary\": \"\xff\"}")
}
fn meta_deep(e: &Env) {
    meta(e, "{\"a\":".repeat(100_000).as_bytes())
}
fn meta_20mb_garbage(e: &Env) {
    meta(e, &vec![b'#'; 20 << 20])
}
fn meta_20mb_reason(e: &Env) {
    meta(
        e,
        json!({"status": "failed", "summary": "s", "errors": [{"message": "y".repeat(20 << 20)}]})
            .to_string()
            .as_bytes(),
    )
}
fn meta_unknown_status(e: &Env) {
    meta(e, b"{\"status\": \"ready_for_postflight\"}")
}

// Agent steps.
fn failed_nasty() -> Value {
    json!({"metadata": {"status": "failed", "summary": "x", "errors": [{"message": NASTY}]}})
}
fn blocked_nasty() -> Value {
    json!({"metadata": {"status": "blocked", "summary": "x", "errors": [{"message": NASTY}]}})
}
fn review_nasty() -> Value {
    json!({"complete_phases": ["1"], "metadata": {"status": "partial", "summary": "x", "requires_user_review": true, "review_reason": NASTY, "metadata": {"phases_completed": 1, "phases_total": 3}}})
}
fn completed_nasty() -> Value {
    finishing(json!({"status": "implemented", "summary": "x", "completion_data": {"completion_summary": NASTY}}))
}
fn artifact_dot() -> Value {
    implemented_with(json!([".", "src/feature.rs"]))
}
fn artifact_nul() -> Value {
    implemented_with(json!(["src/a\u{0}b.rs", "src/feature.rs"]))
}
fn plain_completion() -> Value {
    implemented_with(json!(["src/feature.rs"]))
}

// Checks.
fn still_implementing(e: &Env, _: &Output) {
    assert_eq!(entry(e)["status"], "implementing")
}
fn kept_as_evidence(e: &Env, o: &Output) {
    still_implementing(e, o);
    assert!(e.repo.exists(META), "kept as evidence")
}
fn padding_kept(e: &Env, o: &Output) {
    still_implementing(e, o);
    assert!(e.repo.read("specs/state.json").contains(&"x".repeat(50 << 20)))
}
fn ran_in_own_dir(e: &Env, _: &Output) {
    assert!(e.repo.exists("specs/350_moved/.postflight-pending"), "the run uses the task's own directory");
    assert_eq!(entry(e)["project_name"], "../../outside", "the name is left as it is");
}
fn reason_20mb(e: &Env, _: &Output) {
    assert_eq!(entry(e)["failure_reason"].as_str().map(str::len), Some(20 << 20))
}
fn failure_exact(e: &Env, _: &Output) {
    stored_exactly(e, "failure_reason")
}
fn blocked_exact(e: &Env, _: &Output) {
    stored_exactly(e, "blocked_reason")
}
fn review_exact(e: &Env, _: &Output) {
    stored_exactly(e, "review_reason")
}
fn completion_exact(e: &Env, _: &Output) {
    stored_exactly(e, "completion_summary");
    let msg = e.repo.git(&["log", "-1", "--format=%B"]);
    assert!(msg.contains("He said \"no\" \\ then left;") && msg.contains("second line ü 漢字 🚀"), "{msg}");
    let sessions = e.repo.git(&["log", "-1", "--format=%(trailers:key=Session,valueonly)"]);
    assert_eq!(sessions.trim(), crate::support::SESSION, "one Session trailer, not forged: {msg}");
}
fn passwd_ignored(e: &Env, o: &Output) {
    ignored_artifact(e, o, "../../etc/passwd")
}
fn abs_passwd_ignored(e: &Env, o: &Output) {
    ignored_artifact(e, o, "/etc/passwd")
}
fn git_config_ignored(e: &Env, o: &Output) {
    ignored_artifact(e, o, ".git/config")
}
fn link_ignored(e: &Env, o: &Output) {
    ignored_artifact(e, o, "src/out/passwd")
}
fn meta_file_ignored(e: &Env, o: &Output) {
    ignored_artifact(e, o, META)
}
fn dotdot_ignored(e: &Env, o: &Output) {
    ignored_artifact(e, o, "specs/../../etc/passwd")
}
fn dot_ignored(e: &Env, o: &Output) {
    ignored_artifact(e, o, ".");
    assert!(!committed(e).iter().any(|f| f == "scratch.txt"), "the user's file was committed")
}
fn nul_ignored(e: &Env, o: &Output) {
    ignored_artifact(e, o, "src/a\u{0}b.rs")
}
fn no_tmp_committed(e: &Env, _: &Output) {
    assert!(!committed(e).iter().any(|f| f.ends_with(".tmp")), "{:?}", committed(e))
}
fn completed(e: &Env, _: &Output) {
    assert_eq!(entry(e)["status"], "completed")
}

/// The catalogue: name, setup, what runs, exit code, what the output says, what it leaves.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Run::*;
    use Then::*;
    const IMPL: &[&str] = &["implement", "350", "--agent", "true"];
    const SET: &[&str] = &["set-status", "350", "implementing"];
    vec![
        case("state.json: invalid JSON (a missing comma)", drop_a_comma, Cli(IMPL), 2, &["specs/state.json:13:7: invalid JSON", "hint: fix the file"], Unchanged),
        case("state.json: empty", empty_state, Cli(IMPL), 2, &["specs/state.json", "empty"], Unchanged),
        case("state.json: truncated by half", truncated_state, Cli(IMPL), 2, &["specs/state.json:", "EOF while parsing"], Unchanged),
        case("state.json: top level is an array", array_state, Cli(IMPL), 2, &["specs/state.json:1: the top level is not a JSON object"], Unchanged),
        case("state.json: no active_projects", no_active_projects, Cli(IMPL), 2, &["no `active_projects` array"], Unchanged),
        case("state.json: active_projects is an object", object_active_projects, Cli(IMPL), 2, &["specs/state.json:2: `active_projects` is not an array"], Unchanged),
        case("state.json: the task listed twice", duplicate_in_state, Cli(IMPL), 2, &["task 350 appears 2 times in", "state.json (lines"], Unchanged),
        case("state.json: project_number as a string", number_as_string, Cli(IMPL), 2, &["task 350 not found in", "specs/state.json"], Unchanged),
        case("state.json: not UTF-8", state_not_utf8, Cli(IMPL), 2, &["specs/state.json:", "invalid"], Unchanged),
        case("state.json: a byte-order mark", state_with_bom, Cli(IMPL), 2, &["specs/state.json:1:1: invalid JSON"], Unchanged),
        case("state.json: 100,000 arrays deep", state_deep, Cli(IMPL), 2, &["specs/state.json:1:", "recursion limit exceeded"], Unchanged),
        case("state.json: 50 MB, broken at the end", state_50mb_broken, Cli(IMPL), 2, &["specs/state.json:", "invalid JSON"], Unchanged),
        case("state.json: 50 MB and valid (accepted; kept)", state_50mb_valid, Cli(SET), 0, &["task 350: planned -> implementing"], Check(padding_kept)),
        case("state.json: project_name `../../outside`", slug_escapes, Cli(IMPL), 4, &["the agent wrote no metadata (specs/350_moved/.return-meta.json)"], Check(ran_in_own_dir)),
        case("TODO.md: not UTF-8", todo_not_utf8, Cli(IMPL), 2, &["specs/TODO.md:17: not valid UTF-8"], Unchanged),
        case("TODO.md: the task heading twice", duplicate_in_todo, Cli(IMPL), 2, &["task 350 appears 2 times in", "TODO.md (lines 21, 30)"], Unchanged),
        case("TODO.md: a directory", todo_is_a_dir, Cli(IMPL), 1, &["specs/TODO.md"], Unchanged),
        case("TODO.md: no entry for the task (warning)", todo_without_task, Cli(SET), 0, &["specs/TODO.md: no entry for task 350; only state.json was updated"], Check(still_implementing)),
        case("plan: missing", no_plan, Cli(IMPL), 2, &["task 350 has no plan", "plan the task first"], Unchanged),
        case("plan: not UTF-8", plan_not_utf8, Cli(IMPL), 2, &["implementation-001.md:4: not valid UTF-8"], Unchanged),
        case("plan: a directory", plan_is_a_dir, Cli(IMPL), 1, &["implementation-001.md"], Unchanged),
        case("plan: no header status line (warning)", plan_without_header, Cli(SET), 0, &["no header **Status** line"], Check(still_implementing)),
        case("task number 350.0", none, Cli(&["implement", "350.0", "--agent", "true"]), 2, &["`350.0` is not a task number"], Unchanged),
        case("task number 0350", none, Cli(&["implement", "0350", "--agent", "true"]), 2, &["`0350` is not a task number"], Unchanged),
        case("task number 4294967296", none, Cli(&["implement", "4294967296", "--agent", "true"]), 2, &["`4294967296` is not a task number"], Unchanged),
        case("task number empty", none, Cli(&["implement", "", "--agent", "true"]), 2, &["`` is not a task number"], Unchanged),
        case("task number -350", none, Cli(&["implement", "-350", "--agent", "true"]), 2, &["unexpected argument"], Unchanged),
        case("task not in the ledger", none, Cli(&["implement", "999", "--agent", "true"]), 2, &["task 999 not found"], Unchanged),
        case("task status not startable", none, Cli(&["implement", "352", "--agent", "true"]), 2, &["task 352 has status `ready_for_review`, which cannot be implemented"], Unchanged),
        case("XTASK_NOW not a time", none, CliEnv(IMPL, &[("XTASK_NOW", "yesterday")]), 2, &["XTASK_NOW: `yesterday` is not an RFC 3339 time"], Unchanged),
        case("XTASK_SESSION_ID with a line break", none, CliEnv(IMPL, &[("XTASK_SESSION_ID", "sess_1\nCo-authored-by: Mallory <m@x>")]), 2, &["XTASK_SESSION_ID: ", "is not a session id"], Unchanged),
        case(".postflight.json: invalid JSON", bad_config, Cli(&["implement", "350"]), 2, &[".postflight.json:1:", "EOF while parsing"], Unchanged),
        case("--agent empty, none configured", none, Cli(&["implement", "350", "--agent", ""]), 2, &["no agent command configured"], Unchanged),
        case("--max-iterations 0", none, Cli(&["implement", "350", "--agent", "true", "--max-iterations", "0"]), 2, &["max-iterations"], Unchanged),
        case("commit: a path outside the repository", none, Cli(&["commit", "350", "-m", "x", "--", "../outside.txt"]), 2, &["is outside the repository"], Unchanged),
        case("commit: a path inside .git", none, Cli(&["commit", "350", "-m", "x", "--", ".git/config"]), 2, &[".git"], Unchanged),
        case("commit: a path through a symlink out", link_out, Cli(&["commit", "350", "-m", "x", "--", "src/out/passwd"]), 2, &["symbolic link"], Unchanged),
        case("metadata: invalid JSON", meta_invalid, RawMetadata("m"), 4, &["invalid metadata in specs/350_add_feature/.return-meta.json", ".return-meta.json:1:27: invalid JSON: key must be a string"], Check(kept_as_evidence)),
        case("metadata: empty file", meta_empty, RawMetadata("m"), 4, &["specs/350_add_feature/.return-meta.json", "EOF while parsing"], Check(kept_as_evidence)),
        case("metadata: an array", meta_array, RawMetadata("m"), 4, &["specs/350_add_feature/.return-meta.json", "not a JSON object"], Check(kept_as_evidence)),
        case("metadata: status is a number", meta_status_number, RawMetadata("m"), 4, &["specs/350_add_feature/.return-meta.json", "no `status` string"], Check(kept_as_evidence)),
        case("metadata: not UTF-8", meta_not_utf8, RawMetadata("m"), 4, &["specs/350_add_feature/.return-meta.json:1:", "invalid"], Check(kept_as_evidence)),
        case("metadata: 100,000 objects deep", meta_deep, RawMetadata("m"), 4, &["specs/350_add_feature/.return-meta.json:1:", "recursion limit exceeded"], Check(kept_as_evidence)),
        case("metadata: 20 MB of garbage", meta_20mb_garbage, RawMetadata("m"), 4, &["specs/350_add_feature/.return-meta.json:1:1:", "expected value"], Check(kept_as_evidence)),
        case("metadata: a 20 MB reason (accepted; stored)", meta_20mb_reason, RawMetadata("m"), 4, &["implementation failed"], Check(reason_20mb)),
        case("metadata: an unknown status word", meta_unknown_status, RawMetadata("m"), 4, &["metadata status `ready_for_postflight` is unknown; read as `failed`"], Check(still_implementing)),
        case("failure reason: quotes, control characters", none, Agent(failed_nasty), 4, &["implementation failed"], Check(failure_exact)),
        case("blocked reason: quotes, control characters", none, Agent(blocked_nasty), 4, &["blocked"], Check(blocked_exact)),
        case("review reason: quotes, control characters", none, Agent(review_nasty), 4, &[], Check(review_exact)),
        case("completion summary: quotes, control characters, a NUL, a forged trailer", none, Agent(completed_nasty), 0, &["completed"], Check(completion_exact)),
        case("artifact ../../etc/passwd", none, Agent(with_artifact("../../etc/passwd")), 0, &["`../../etc/passwd`"], Check(passwd_ignored)),
        case("artifact /etc/passwd", none, Agent(with_artifact("/etc/passwd")), 0, &["`/etc/passwd`"], Check(abs_passwd_ignored)),
        case("artifact .git/config", none, Agent(with_artifact(".git/config")), 0, &["`.git/config`"], Check(git_config_ignored)),
        case("artifact through a symlink out of the repository", link_out, Agent(with_artifact("src/out/passwd")), 0, &["`src/out/passwd`"], Check(link_ignored)),
        case("artifact naming the metadata file", none, Agent(with_artifact(META)), 0, &[".return-meta.json`"], Check(meta_file_ignored)),
        case("artifact specs/../../etc/passwd", none, Agent(with_artifact("specs/../../etc/passwd")), 0, &["`specs/../../etc/passwd`"], Check(dotdot_ignored)),
        case("artifact . (the whole work tree)", user_scratch, Agent(artifact_dot), 0, &["`.`"], Check(dot_ignored)),
        case("artifact with a NUL byte", none, Agent(artifact_nul), 0, &["`src/a\\0b.rs`"], Check(nul_ignored)),
        case("a killed writer's temp file in plans/", stale_temp_in_plans, Agent(plain_completion), 0, &["completed"], Check(no_tmp_committed)),
        case("a corrupt marker of an earlier run (tolerated)", |e| e.repo.write("specs/350_add_feature/.postflight-pending", "{\"session_id\": "), Agent(plain_completion), 0, &["completed"], Check(completed)),
        case("task renumber: the new number is in use", none, Cli(&["task", "renumber", "350", "351"]), 2, &["task number 351 is in use"], Unchanged),
        case("task renumber: the new number has a directory", |e| e.repo.write("specs/400_other/notes.md", "x\n"), Cli(&["task", "renumber", "350", "400"]), 2, &["specs/400_other exists"], Unchanged),
        case("task renumber: an unknown task", none, Cli(&["task", "renumber", "999", "400"]), 2, &["task 999 not found"], Unchanged),
        case("task renumber: invalid state.json", drop_a_comma, Cli(&["task", "renumber", "350", "400"]), 2, &["invalid JSON"], Unchanged),
        case("merge-driver: a side that is not JSON (a conflict, never a crash)", |e| { e.repo.write("O", "{\"active_projects\": []}\n"); e.repo.write("A", "{\"active_projects\": [\n"); e.repo.write("B", "{\"active_projects\": []}\n"); }, Cli(&["merge-driver", "O", "A", "B", "specs/state.json"]), 1, &["cannot merge per task", "specs/state.json (ours):2:0: invalid JSON"], Check(|e, _| assert_eq!(e.repo.read("A"), "{\"active_projects\": [\n", "the text merge: ours, theirs did not change"))),
    ]
}

#[test]
fn bad_input_catalogue() {
    let cases = cases();
    assert!(cases.len() >= 30, "the catalogue has {} cases", cases.len());
    let passwd = std::fs::read("/etc/passwd").ok();
    let mut failures = Vec::new();
    for c in &cases {
        let env = Env::new();
        (c.setup)(&env);
        let before = tree(env.repo.path());
        let head = env.repo.git(&["rev-parse", "HEAD"]);
        let outside = tree(env.outside.path());
        let out = run(&env, c);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.status.code(), Some(c.exit), "exit code");
            for n in c.needles {
                assert!(text.contains(n), "the output lacks {n:?}");
            }
            assert!(!text.contains("panicked"), "a panic");
            match &c.then {
                Then::Unchanged => {
                    assert!(before == tree(env.repo.path()), "a file in the work tree changed");
                    assert_eq!(env.repo.git(&["rev-parse", "HEAD"]), head, "HEAD moved");
                }
                Then::Check(f) => f(&env, &out),
            }
            assert_eq!(tree(env.outside.path()), outside, "a file outside the repository changed");
            assert_eq!(std::fs::read("/etc/passwd").ok(), passwd, "/etc/passwd changed");
        }));
        if let Err(e) = result {
            let why = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()));
            failures.push(format!("CASE {}: {}\n{}", c.name, why.unwrap_or_default(), render(&out)));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
    eprintln!("{} bad-input cases, all as documented", cases.len());
}
