//! Bad input is refused with exit 2 and a message naming the file (with line and column for
//! JSON) and the task, and leaves every file of the work tree byte-identical.

mod support;

use support::{render, TestRepo};

/// Runs `args`, expects exit 2, a stderr containing every one of `needles`, and no file changed.
fn refused(repo: &TestRepo, args: &[&str], needles: &[&str]) -> String {
    let before = repo.snapshot();
    let out = repo.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}\n{}", render(&out));
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: stderr lacks {n:?}\n{}", render(&out));
    }
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout\n{}", render(&out));
    assert!(before == repo.snapshot(), "{args:?} changed a file\n{}", render(&out));
    stderr
}

/// Every command that reads the ledger, on task 350.
const COMMANDS: [&[&str]; 4] =
    [&["set-status", "350", "implementing"], &["status"], &["status", "350"], &["task", "new", "Another task"]];

#[test]
fn invalid_json_names_file_line_and_column() {
    let repo = TestRepo::new();
    // Line 12 loses its comma: `"language": "lean4"` is followed by `"created"`.
    let broken = support::STATE.replacen("\"language\": \"lean4\",", "\"language\": \"lean4\"", 1);
    let line = broken.lines().position(|l| l.contains("\"created\": \"2026-03-01\"")).expect("line") + 1;
    repo.write("specs/state.json", &broken);
    for args in COMMANDS {
        let err = refused(&repo, args, &[&format!("specs/state.json:{line}:7: invalid JSON: expected `,` or `}}`")]);
        assert!(err.contains("hint: fix the file"), "{err}");
    }
}

#[test]
fn empty_or_truncated_state_json_is_refused() {
    let repo = TestRepo::new();
    repo.write("specs/state.json", "");
    refused(&repo, &["set-status", "350", "implementing"], &["specs/state.json", "empty"]);
    repo.write("specs/state.json", &support::STATE[..support::STATE.len() / 2]);
    refused(&repo, &["set-status", "350", "implementing"], &["specs/state.json:", "invalid JSON: EOF while parsing"]);
}

#[test]
fn state_without_active_projects_is_refused() {
    let repo = TestRepo::new();
    repo.write("specs/state.json", "{\n  \"archived_projects\": [],\n  \"completed_projects\": []\n}\n");
    for args in COMMANDS {
        refused(&repo, args, &["specs/state.json: no `active_projects` array"]);
    }
    repo.write("specs/state.json", "{\n  \"active_projects\": {}\n}\n");
    refused(&repo, &["status"], &["specs/state.json:2: `active_projects` is not an array"]);
    repo.write("specs/state.json", "[]\n");
    refused(&repo, &["status"], &["specs/state.json:1: the top level is not a JSON object"]);
}

#[test]
fn duplicated_target_task_is_refused_in_either_file() {
    let repo = TestRepo::new();
    let dup = support::STATE.replacen("\"project_number\": 351,", "\"project_number\": 350,", 1);
    repo.write("specs/state.json", &dup);
    let lines: Vec<String> = dup
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("\"project_number\": 350,"))
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    let where_ = format!("state.json (lines {})", lines.join(", "));
    refused(&repo, &["set-status", "350", "implementing"], &["task 350 appears 2 times in", &where_]);
    refused(&repo, &["status", "350"], &["task 350 appears 2 times"]);
    // The other tasks can still be moved.
    let out = repo.run(&["set-status", "352", "planned"]);
    assert!(out.status.success(), "{}", render(&out));

    let repo = TestRepo::new();
    repo.write("specs/TODO.md", &support::TODO.replacen("### 351. Second feature", "### 350. Second feature", 1));
    refused(
        &repo,
        &["set-status", "350", "implementing"],
        &["task 350 appears 2 times in", "TODO.md (lines 21, 30)", "hint: remove or renumber the duplicate"],
    );
}

#[test]
fn unknown_task_is_refused() {
    let repo = TestRepo::new();
    refused(
        &repo,
        &["set-status", "999", "planned"],
        &["task 999 not found in", "specs/state.json", "hint: `xtask status`"],
    );
    refused(&repo, &["status", "999"], &["task 999 not found"]);
}

#[test]
fn status_typo_is_refused_with_a_suggestion() {
    let repo = TestRepo::new();
    refused(
        &repo,
        &["set-status", "350", "implmenting"],
        &["unknown status `implmenting` (did you mean `implementing`?)", "known statuses: not_started"],
    );
    refused(&repo, &["set-status", "350", "[IN PROGRESS]"], &["unknown status `[IN PROGRESS]`"]);
    // `implemented` is read in old ledgers but never written.
    refused(&repo, &["set-status", "350", "implemented"], &["unknown status `implemented`"]);
}

#[test]
fn non_utf8_todo_is_refused_with_its_line() {
    let repo = TestRepo::new();
    let mut bytes = support::TODO.as_bytes().to_vec();
    let at = support::TODO.find("Legacy entry").expect("text");
    bytes[at] = 0xff;
    std::fs::write(repo.file("specs/TODO.md"), &bytes).expect("write");
    let line = support::TODO[..at].matches('\n').count() + 1;
    for args in COMMANDS {
        refused(&repo, args, &[&format!("specs/TODO.md:{line}: not valid UTF-8")]);
    }
}

#[test]
fn non_utf8_plan_is_refused() {
    let repo = TestRepo::new();
    let path = repo.file("specs/350_add_feature/plans/implementation-001.md");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend_from_slice(b"\xc3(\n");
    std::fs::write(&path, &bytes).expect("write");
    refused(&repo, &["set-status", "350", "implementing"], &["implementation-001.md:", "not valid UTF-8"]);
}

#[test]
fn transition_from_completed_is_refused_without_force() {
    let repo = TestRepo::new();
    let out = repo.run(&["set-status", "350", "completed"]);
    assert!(out.status.success(), "{}", render(&out));
    for to in ["implementing", "planned", "not_started", "abandoned"] {
        refused(
            &repo,
            &["set-status", "350", to],
            &[&format!("task 350: transition completed -> {to} is not allowed"), "hint: pass --force"],
        );
    }
    // Other forbidden moves of the reference (§9).
    let repo = TestRepo::new();
    repo.run(&["set-status", "351", "not_started"]);
    refused(&repo, &["set-status", "351", "completed"], &["transition not_started -> completed"]);
}

#[test]
fn malformed_task_numbers_are_refused() {
    let repo = TestRepo::new();
    for bad in ["0350", "350.0", "0", "3e2", "350abc", "99999999999", "٣٥٠"] {
        for args in [vec!["set-status", bad, "implementing"], vec!["status", bad]] {
            refused(&repo, &args, &[&format!("`{bad}` is not a task number"), "without leading zeros"]);
        }
    }
    // clap reads a leading dash as a flag; still a usage error.
    refused(&repo, &["set-status", "-350", "implementing"], &["unexpected argument"]);
}

#[test]
fn bad_task_titles_and_missing_ledger_are_refused() {
    let repo = TestRepo::new();
    refused(&repo, &["task", "new", "  "], &["a task title must be one non-empty line"]);
    refused(&repo, &["task", "new", "two\nlines"], &["a task title must be one non-empty line"]);
    let empty = TestRepo::empty();
    refused(&empty, &["status"], &["specs/state.json does not exist", "hint: run `xtask init`"]);
    refused(&empty, &["set-status", "1", "planned"], &["specs/state.json does not exist"]);
    refused(&empty, &["task", "new", "x"], &["specs/state.json does not exist"]);
}

#[test]
fn outside_a_repository_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = TestRepo::empty();
    let out = repo.run(&["-C", &dir.path().to_string_lossy(), "status"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not inside a git repository"), "{}", render(&out));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let repo = TestRepo::new();
    refused(&repo, &["set-status", "350"], &["required"]);
    refused(&repo, &["no-such-command"], &["unrecognized subcommand"]);
    let out = repo.run(&["--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["init", "task", "status", "set-status", "Exit codes: 0 ok, 1 internal error, 2 bad usage"] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    let out = repo.run(&["set-status", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("not_started, researching"), "{}", render(&out));
}
