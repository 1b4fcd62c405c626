//! Worktree runs (issue 17): `implement N [M ...] --jobs K` in linked worktrees, landing on the
//! invoking branch (task-scoped ledger re-application, conflicts kept and landed later with
//! `land`), the invoking tree's own dirty files, a killed run resumed, cleanup that never removes
//! unlanded work, and many clones pushing to one bare remote.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use crate::support::{render, TestRepo};
use serde_json::{json, Value};

fn slug(n: u32) -> String {
    format!("task_{n}")
}

fn task_dir(n: u32) -> String {
    format!("specs/{n}_{}", slug(n))
}

/// The shared source file: one slot line per task, three filler lines apart, and a contested line.
fn shared_file(tasks: &[u32]) -> String {
    let mut s = String::from("// shared by every task\ncontested\n\nfiller a\nfiller b\nfiller c\n\n");
    for n in tasks {
        s.push_str(&format!("slot {n} open\n\nfiller a\nfiller b\nfiller c\n\n"));
    }
    s
}

/// Writes a ledger of planned tasks (one-phase plans) and the shared file into `repo`.
fn write_ledger(repo: &TestRepo, tasks: &[u32]) {
    let entries: Vec<Value> = tasks
        .iter()
        .rev()
        .map(|n| {
            json!({
                "project_number": n,
                "project_name": slug(*n),
                "status": "planned",
                "language": "general",
                "description": format!("Task {n}, run in a worktree."),
                "created": "2026-03-01T00:00:00Z",
                "last_updated": "2026-03-02T00:00:00Z",
                "artifacts": [{"path": format!("{}/plans/implementation-001.md", task_dir(*n)), "type": "plan", "summary": "One phase"}],
                "planned": "2026-03-02T00:00:00Z"
            })
        })
        .collect();
    let next = tasks.iter().max().copied().unwrap_or(0) + 1;
    let state = json!({"active_projects": entries, "completed_projects": [], "next_project_number": next});
    repo.write(
        "specs/state.json",
        &String::from_utf8(postflight::ledger::json::to_jq_pretty(&state)).expect("jq output is UTF-8"),
    );
    let mut todo = format!("---\nnext_project_number: {next}\n---\n\n# TODO\n\n## Tasks\n\n");
    for n in tasks.iter().rev() {
        todo.push_str(&format!(
            "### {n}. Task {n}\n- **Effort**: 1 hour\n- **Status**: [PLANNED]\n- **Language**: general\n\
             - **Plan**: [implementation-001.md]({}/plans/implementation-001.md)\n\n**Description**: Task {n}.\n\n---\n\n",
            task_dir(*n)
        ));
        repo.write(
            &format!("{}/plans/implementation-001.md", task_dir(*n)),
            &format!(
                "# Implementation Plan: Task #{n}\n\n- **Task**: {n} - {}\n- **Status**: [PLANNED]\n\n\
                 ## Implementation Phases\n\n### Phase 1: All of it [NOT STARTED]\n",
                slug(*n)
            ),
        );
    }
    repo.write("specs/TODO.md", &todo);
    repo.write("src/shared.rs", &shared_file(tasks));
    repo.write(".gitignore", "/target\n.return-meta.json\n.postflight-pending\n.postflight-loop-guard\n*.log\n");
    repo.write(".postflight.json", "{\"agent_identity\": \"Scripted Agent <agent@example.com>\"}\n");
    repo.write("README.md", "# sample project\n");
    repo.write("docs/guide.md", "# Guide\n");
}

/// A repository with the tasks, the merge driver installed (its .gitattributes committed).
fn setup(tasks: &[u32]) -> TestRepo {
    let repo = TestRepo::empty();
    write_ledger(&repo, tasks);
    let out = repo.run(&["hooks", "install", "--merge"]);
    assert!(out.status.success(), "{}", render(&out));
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "initial"]);
    repo
}

/// Task n's script: one invocation that writes its own file and reports implemented.
fn script(n: u32) -> Value {
    json!({"steps": [{
        "write": {format!("src/t{n}/lib.rs"): format!("// task {n}\n")},
        "complete_phases": ["1"],
        "summary": format!("### Phase 1 of task {n} [COMPLETED]"),
        "sleep_ms": 30 * u64::from(n % 5),
        "metadata": {
            "status": "implemented",
            "summary": format!("Task {n} done."),
            "artifacts": [{"type": "implementation", "path": format!("src/t{n}/lib.rs"), "summary": "Its file"}],
            "completion_data": {"completion_summary": format!("Task {n} implemented."), "roadmap_items": []},
            "metadata": {"session_id": "{session_id}", "phases_completed": 1, "phases_total": 1}
        }
    }]})
}

/// The agent: edits its slot of the shared file (tasks in `contested` also the contested line),
/// then runs the scripted agent with its task's script.
fn agent(contested: &[u32]) -> String {
    let pattern = if contested.is_empty() {
        "none".to_owned()
    } else {
        contested.iter().map(u32::to_string).collect::<Vec<_>>().join("|")
    };
    format!(
        "sed -i \"s/^slot $XTASK_TASK_NUMBER open$/slot $XTASK_TASK_NUMBER done/\" src/shared.rs && \
         case $XTASK_TASK_NUMBER in {pattern}) sed -i \"s/^contested$/contested by $XTASK_TASK_NUMBER/\" src/shared.rs;; esac && \
         XTASK_DEMO_SCRIPT=\"$HOME/script-$XTASK_TASK_NUMBER.json\" '{}' demo-agent",
        env!("CARGO_BIN_EXE_xtask")
    )
}

fn write_scripts(repo: &TestRepo, tasks: &[u32]) {
    for n in tasks {
        std::fs::write(repo.home().join(format!("script-{n}.json")), script(*n).to_string()).expect("script");
    }
}

fn results(out: &Output) -> BTreeMap<u64, Value> {
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("--json: {e}\n{}", render(out)));
    list.as_array()
        .expect("one object per task")
        .iter()
        .map(|r| (r["task"].as_u64().expect("task"), r.clone()))
        .collect()
}

fn entries(text: &str) -> BTreeMap<u64, Value> {
    let doc: Value = serde_json::from_str(text).expect("state.json is JSON");
    doc["active_projects"]
        .as_array()
        .expect("array")
        .iter()
        .map(|e| (e["project_number"].as_u64().expect("n"), e.clone()))
        .collect()
}

/// A landed commit of task n holds only its files, its state.json entry and its TODO.md block.
fn check_commit(repo: &TestRepo, id: &str, n: u32) {
    let files = repo.git(&["show", "--name-only", "--format=", id]);
    for f in files.lines() {
        assert!(
            f == "specs/state.json"
                || f == "specs/TODO.md"
                || f == "src/shared.rs"
                || f.starts_with(&format!("{}/", task_dir(n)))
                || f.starts_with(&format!("src/t{n}/")),
            "commit {id} of task {n} holds {f}"
        );
        let name = f.rsplit('/').next().unwrap_or(f);
        assert!(!name.starts_with(".postflight-") && name != ".return-meta.json", "transient file {f}");
    }
    let (old, new) = (
        entries(&repo.git(&["show", &format!("{id}^:specs/state.json")])),
        entries(&repo.git(&["show", &format!("{id}:specs/state.json")])),
    );
    for (k, v) in &old {
        if *k != u64::from(n) {
            assert_eq!(Some(v), new.get(k), "commit {id} of task {n} changes task {k}'s entry");
        }
    }
    assert_eq!(new[&u64::from(n)]["status"], "completed", "commit {id}");
    let diff = repo.git(&["show", "--format=", id, "--", "specs/TODO.md"]);
    for line in diff
        .lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---"))
    {
        assert!(!line.contains("### ") || line.contains(&format!("### {n}.")), "TODO.md diff of {n}: {line}");
    }
    let shared = repo.git(&["show", "--format=", id, "--", "src/shared.rs"]);
    for line in shared.lines().filter(|l| l.starts_with("+slot") || l.starts_with("-slot")) {
        assert!(line.contains(&format!("slot {n} ")), "commit {id} of task {n} changes another slot: {line}");
    }
}

#[test]
fn eight_tasks_four_jobs_land_with_one_conflict_kept_and_landed_later() {
    let tasks = [301, 302, 303, 304, 305, 306, 307, 308];
    let repo = setup(&tasks);
    repo.add_user_work();
    write_scripts(&repo, &tasks);
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let user_before =
        (repo.git(&["diff", "--cached"]), repo.read("README.md"), repo.read("scratch.txt"), repo.read("docs/guide.md"));
    let args: Vec<String> = tasks.iter().map(u32::to_string).collect();
    let mut cmd = repo.xtask(&["implement"]);
    cmd.args(&args).args(["--jobs", "4", "--json", "--agent", &agent(&[307, 308])]);
    let out = cmd.output().expect("run");
    assert_eq!(out.status.code(), Some(4), "one conflict: exit 4\n{}", render(&out));
    let res = results(&out);
    assert_eq!(res.len(), 8, "{}", render(&out));
    let conflicted: Vec<u64> =
        res.values().filter(|r| r["status"] == "landing_conflict").map(|r| r["task"].as_u64().expect("n")).collect();
    assert_eq!(conflicted.len(), 1, "exactly one of the contested pair conflicts: {}", render(&out));
    let loser = conflicted[0] as u32;
    assert!(loser == 307 || loser == 308);
    let conflict = &res[&u64::from(loser)];
    assert_eq!(conflict["paths"], json!(["src/shared.rs"]), "{conflict}");
    assert_eq!(conflict["exit_code"], 4);
    for (n, r) in &res {
        if *n != u64::from(loser) {
            assert_eq!(r["status"], "completed", "task {n}: {r}");
            assert_eq!(r["removed"], true, "landed and completed: cleaned up: {r}");
            assert!(!Path::new(r["worktree"].as_str().expect("path")).exists());
        }
    }

    // Every landed commit holds only its task's share; the branch reaches each of them.
    let log = repo.git(&["log", "--format=%H %s", &format!("{base}..HEAD")]);
    assert_eq!(log.lines().count(), 7, "{log}");
    for l in log.lines() {
        let (id, subject) = l.split_once(' ').expect("id subject");
        let n: u32 = subject
            .strip_prefix("task ")
            .and_then(|s| s.split(':').next())
            .and_then(|s| s.parse().ok())
            .expect("task subject");
        check_commit(&repo, id, n);
        let body = repo.git(&["log", "-1", "--format=%B", id]);
        assert!(body.contains("Landed-from: "), "{body}");
        assert!(body.contains("Session: "), "{body}");
    }
    let state = entries(&repo.read("specs/state.json"));
    for n in tasks {
        let e = &state[&u64::from(n)];
        if n == loser {
            assert_eq!(e["status"], "implementing", "{e}");
            assert_eq!(e["landing_conflict"], json!(["src/shared.rs"]), "{e}");
        } else {
            assert_eq!(e["status"], "completed", "{e}");
        }
    }
    let shared = repo.read("src/shared.rs");
    for n in tasks.iter().filter(|n| **n != loser) {
        assert!(shared.contains(&format!("slot {n} done")), "{shared}");
    }
    assert!(shared.contains(&format!("slot {loser} open")), "the conflicting task landed nothing: {shared}");

    // The invoking tree's own work is untouched.
    let user_after =
        (repo.git(&["diff", "--cached"]), repo.read("README.md"), repo.read("scratch.txt"), repo.read("docs/guide.md"));
    assert_eq!(user_before, user_after);
    assert_eq!(
        repo.git(&["status", "--porcelain", "--", "README.md", "docs", "scratch.txt", "src"]),
        " M README.md\nM  docs/guide.md\n?? scratch.txt\n"
    );

    // The conflicting task is kept: listed, not landed, not removable without --force.
    let list = repo.run(&["worktree", "list", "--json"]);
    let list: Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(list.as_array().expect("a").len(), 1, "{list}");
    assert_eq!(list[0]["task"], loser);
    assert_eq!(list[0]["landed"], "no");
    let refused = repo.run(&["worktree", "remove", &loser.to_string()]);
    assert_eq!(refused.status.code(), Some(2), "{}", render(&refused));
    let wt = std::path::PathBuf::from(conflict["worktree"].as_str().expect("path"));
    assert!(wt.join("src/shared.rs").exists(), "worktree kept");

    // Resolve in the worktree (merge the branch in, the driver merges the ledger), then land.
    let git_wt = |args: &[&str]| {
        let o = repo.command("git").current_dir(&wt).args(args).output().expect("git");
        (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
    };
    let (merged, text) = git_wt(&["merge", "-q", "main", "-m", "merge main"]);
    assert!(!merged, "the contested line conflicts: {text}");
    let resolved = repo.read("src/shared.rs").replace("contested by ", &format!("contested by {loser} and "));
    let resolved = resolved.replace(&format!("slot {loser} open"), &format!("slot {loser} done"));
    std::fs::write(wt.join("src/shared.rs"), &resolved).expect("resolve");
    let (ok, text) = git_wt(&["add", "src/shared.rs"]);
    assert!(ok, "{text}");
    let (ok, text) = git_wt(&["commit", "-q", "--no-edit"]);
    assert!(ok, "only src/shared.rs conflicted (the driver merged the ledger): {text}");
    let land = repo.run(&["land", &loser.to_string(), "--json"]);
    assert_eq!(land.status.code(), Some(0), "{}", render(&land));
    let landed: Value = serde_json::from_slice(&land.stdout).expect("json");
    assert_eq!(landed["status"], "completed", "{landed}");
    assert_eq!(landed["removed"], true, "{landed}");
    let id = landed["landed"][0].as_str().expect("commit").to_owned();
    check_commit(&repo, &id, loser);
    assert_eq!(repo.read("src/shared.rs"), resolved);
    let state = entries(&repo.read("specs/state.json"));
    assert_eq!(state[&u64::from(loser)]["status"], "completed");
    assert!(state[&u64::from(loser)].get("landing_conflict").is_none());
    assert_eq!(repo.git(&["diff", "HEAD", "--", "specs", "src"]), "", "everything landed is committed");
    let check = repo.run(&["check"]);
    assert!(check.status.success(), "{}", render(&check));
    assert_eq!(
        repo.git(&["status", "--porcelain", "--", "README.md", "docs", "scratch.txt", "src"]),
        " M README.md\nM  docs/guide.md\n?? scratch.txt\n"
    );
    assert_eq!(repo.run(&["worktree", "list"]).stdout, b"no worktrees\n");
}

#[test]
fn a_landing_refuses_when_the_invoking_tree_changed_a_landed_path() {
    let tasks = [401];
    let repo = setup(&tasks);
    write_scripts(&repo, &tasks);
    let mine = format!("{}// my own edit\n", shared_file(&tasks));
    repo.write("src/shared.rs", &mine);
    let out = repo.run(&["implement", "401", "--worktree", "--json", "--agent", &agent(&[])]);
    assert_eq!(out.status.code(), Some(4), "{}", render(&out));
    let r = &results(&out)[&401];
    assert_eq!(r["status"], "landing_refused", "{r}");
    assert!(r["message"].as_str().expect("m").contains("uncommitted changes of its own in src/shared.rs"), "{r}");
    assert_eq!(repo.read("src/shared.rs"), mine, "the user's edit is untouched");
    assert_eq!(repo.git(&["rev-list", "--count", "HEAD"]).trim(), "1", "nothing landed");
    // The worktree keeps the work; after the user commits, `land` lands it.
    assert_eq!(repo.run(&["worktree", "remove", "401"]).status.code(), Some(2));
    repo.git(&["commit", "-q", "-m", "my edit", "--", "src/shared.rs"]);
    let land = repo.run(&["land", "401"]);
    assert_eq!(land.status.code(), Some(0), "{}", render(&land));
    let shared = repo.read("src/shared.rs");
    assert!(shared.contains("slot 401 done") && shared.contains("// my own edit"), "{shared}");
    assert_eq!(entries(&repo.read("specs/state.json"))[&401]["status"], "completed");
}

#[test]
fn a_killed_worktree_run_resumes_and_cleanup_keeps_unlanded_work() {
    let tasks = [501];
    let repo = setup(&tasks);
    let pid_file = repo.home().join("agent.pgid");
    let first = json!({"steps": [{
        "write": {"src/t501/lib.rs": "// started\n"},
        "pid_file": pid_file.to_string_lossy(),
        "sleep_ms": 60_000,
        "metadata": {"status": "implemented", "summary": "never reached"}
    }]});
    std::fs::write(repo.home().join("script-501.json"), first.to_string()).expect("script");
    let child = repo
        .xtask(&["implement", "501", "--worktree", "--json", "--agent", &agent(&[])])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    crate::support::wait_for(std::time::Duration::from_secs(60), "the agent to start", || pid_file.exists());
    // The invoking ledger shows the run (mirrored from its worktree).
    crate::support::wait_for(std::time::Duration::from_secs(10), "the mirror", || {
        entries(&repo.read("specs/state.json"))[&501]["status"] == "implementing"
    });
    let listed = repo.run(&["worktree", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(listed[0]["running"], true, "{listed}");
    // Kill the child run's group and the agent's group: the run dies mid-flight.
    let wt = repo.path().join(".git/postflight/worktrees/501");
    let marker: Value = serde_json::from_str(
        &std::fs::read_to_string(wt.join(format!("{}/.postflight-pending", task_dir(501)))).expect("marker"),
    )
    .expect("marker json");
    let run_pid = marker["pid"].as_u64().expect("pid").to_string();
    crate::support::kill_process_group(&std::fs::read_to_string(&pid_file).expect("pgid"));
    crate::support::kill_process_group(&run_pid);
    let out = child.wait_with_output().expect("wait");
    let r = &results(&out)[&501];
    assert_eq!(r["status"], "interrupted", "{}", render(&out));
    assert_eq!(repo.git(&["rev-list", "--count", "HEAD"]).trim(), "1", "nothing landed");
    // Doctor reports the dead run; cleanup refuses: the work has not landed.
    let doctor = repo.run(&["doctor"]);
    assert!(
        String::from_utf8_lossy(&doctor.stdout).contains("worktree run of task 501 is dead"),
        "{}",
        render(&doctor)
    );
    let refused = repo.run(&["worktree", "remove", "501"]);
    assert_eq!(refused.status.code(), Some(2), "{}", render(&refused));
    assert!(wt.join("src/t501/lib.rs").exists(), "unlanded work kept");

    // The same command resumes in the same worktree and completes.
    write_scripts(&repo, &tasks);
    let out = repo.run(&["implement", "501", "--worktree", "--json", "--agent", &agent(&[])]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let r = &results(&out)[&501];
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["resumed"], true, "{r}");
    assert_eq!(r["run"]["iterations"], 2, "the killed invocation counts: {r}");
    assert_eq!(r["removed"], true);
    assert!(!wt.exists());
    assert_eq!(entries(&repo.read("specs/state.json"))[&501]["status"], "completed");
    assert!(repo.read("src/shared.rs").contains("slot 501 done"));
}

/// Four clones of one bare remote each run two tasks with `--push` at the same time; the
/// remote ends with all eight completed. `POSTFLIGHT_MULTI_CLONE_ROUNDS` sets the rounds (2 by
/// default, 10 in `.ci/run`; `multi_clone_ten_rounds` is the same 10 rounds by hand, with --ignored).
fn multi_clone(rounds: usize) {
    for round in 0..rounds {
        multi_clone_round(round);
    }
}

fn multi_clone_round(round: usize) {
    let tasks: Vec<u32> = (601..609).collect();
    let origin = setup(&tasks);
    let bare = origin.path().join(".home-for-tests/remote.git");
    origin.git(&["clone", "-q", "--bare", ".", bare.to_str().expect("utf8")]);
    let clones: Vec<TestRepo> = (0..4)
        .map(|_| {
            let c = TestRepo::empty();
            c.git(&["remote", "add", "origin", bare.to_str().expect("utf8")]);
            c.git(&["fetch", "-q", "origin"]);
            c.git(&["checkout", "-q", "-B", "main", "--track", "origin/main"]);
            let out = c.run(&["hooks", "install", "--merge"]);
            assert!(out.status.success(), "{}", render(&out));
            write_scripts(&c, &tasks);
            c
        })
        .collect();
    let children: Vec<_> = clones
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let (a, b) = (tasks[2 * k].to_string(), tasks[2 * k + 1].to_string());
            c.xtask(&["implement", &a, &b, "--jobs", "2", "--push", "--json", "--agent", &agent(&[])])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for (k, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "round {round}, clone {k}: {}", render(&out));
        for r in results(&out).values() {
            assert_eq!(r["status"], "completed", "round {round}: {r}");
        }
    }
    let fresh = TestRepo::empty();
    fresh.git(&["fetch", "-q", bare.to_str().expect("utf8"), "main"]);
    fresh.git(&["checkout", "-q", "-B", "main", "FETCH_HEAD"]);
    let state = entries(&fresh.read("specs/state.json"));
    let lost: Vec<u32> = tasks.iter().copied().filter(|n| state[&u64::from(*n)]["status"] != "completed").collect();
    assert!(lost.is_empty(), "round {round}: tasks not completed on the remote: {lost:?}");
    let shared = fresh.read("src/shared.rs");
    for n in &tasks {
        assert!(shared.contains(&format!("slot {n} done")), "round {round}: {shared}");
        assert!(fresh.exists(&format!("src/t{n}/lib.rs")), "round {round}: task {n}'s file");
    }
    let check = fresh.run(&["check"]);
    assert!(check.status.success(), "round {round}: {}", render(&check));
    eprintln!("round {round}: 4 clones x 2 tasks pushed, 8 completed on the remote, 0 lost");
}

#[test]
fn four_clones_push_to_one_remote() {
    let rounds = std::env::var("POSTFLIGHT_MULTI_CLONE_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    multi_clone(rounds);
}

#[test]
#[ignore = "10 rounds take minutes on 2 cores; run with --ignored"]
fn multi_clone_ten_rounds() {
    multi_clone(10);
}

#[test]
fn worktreeinclude_copies_the_listed_ignored_files_only_and_they_are_never_committed() {
    let repo = setup(&[401]);
    // Ignored build inputs (`/target` is in .gitignore): one listed, one not.
    repo.write("target/build.env", "CC=clang\n");
    repo.write("target/other.bin", "not for worktrees\n");
    repo.write(".worktreeinclude", "# what a build in a worktree needs\ntarget/build.env\n");
    repo.git(&["add", ".worktreeinclude"]);
    repo.git(&["commit", "-q", "-m", "worktree include"]);
    write_scripts(&repo, &[401]);
    let probe = "if [ -f target/build.env ]; then cp target/build.env \"$HOME/seen-build.env\"; fi; \
                 if [ -e target/other.bin ]; then touch \"$HOME/leaked\"; fi; ";
    let out = repo.run(&["implement", "401", "--worktree", "--json", "--agent", &format!("{probe}{}", agent(&[]))]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(results(&out)[&401]["status"], "completed", "{}", render(&out));
    assert_eq!(
        std::fs::read_to_string(repo.home().join("seen-build.env")).ok().as_deref(),
        Some("CC=clang\n"),
        "the listed ignored file is in the worktree"
    );
    assert!(!repo.home().join("leaked").exists(), "an ignored file .worktreeinclude does not list stays out");
    let files = repo.git(&["show", "--name-only", "--format=", "HEAD"]);
    assert!(!files.lines().any(|f| f.starts_with("target/")), "ignored files are never committed: {files}");
    check_commit(&repo, "HEAD", 401);
    assert_eq!(repo.read("target/build.env"), "CC=clang\n", "the invoking tree's copy is untouched");
}
