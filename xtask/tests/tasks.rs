//! `init`, `task new`, `status`, `set-status` on temporary repositories.

mod support;

use support::{render, TestRepo};

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
    assert_eq!(t["started"], support::NOW);
    assert_eq!(t["last_updated"], support::NOW);
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

/// Polls `cond` up to `limit`; panics with `what` when it never holds.
fn wait_for(limit: std::time::Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
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
        assert!(h.contains(&format!(" session {} run ", support::SESSION)), "{h}");
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
