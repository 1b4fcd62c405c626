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
