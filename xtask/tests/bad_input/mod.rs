//! Bad input is refused with exit 2 and a message naming the file (with line and column for
//! JSON) and the task, and leaves every file of the work tree byte-identical.

/// The catalogue: one line per bad input, each on a fresh repository (docs/robustness.md).
mod catalogue;

use crate::support::{render, TestRepo};

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
    let broken = crate::support::STATE.replacen("\"language\": \"lean4\",", "\"language\": \"lean4\"", 1);
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
    repo.write("specs/state.json", &crate::support::STATE[..crate::support::STATE.len() / 2]);
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
    let dup = crate::support::STATE.replacen("\"project_number\": 351,", "\"project_number\": 350,", 1);
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
    repo.write(
        "specs/TODO.md",
        &crate::support::TODO.replacen("### 351. Second feature", "### 350. Second feature", 1),
    );
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
    let mut bytes = crate::support::TODO.as_bytes().to_vec();
    let at = crate::support::TODO.find("Legacy entry").expect("text");
    bytes[at] = 0xff;
    std::fs::write(repo.file("specs/TODO.md"), &bytes).expect("write");
    let line = crate::support::TODO[..at].matches('\n').count() + 1;
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

/// Every command that writes the ledger (`check --fix` repairs TODO.md and plan headers; plain
/// `check` reads only). `implement` runs `true` as its agent; `commit` commits
/// task 350's share of `specs/` (the ledger files among it).
const WRITERS: [&[&str]; 8] = [
    &["set-status", "350", "implementing"],
    &["task", "new", "Another task"],
    &["implement", "350", "--agent", "true"],
    &["preflight", "350"],
    &["postflight", "350"],
    &["check", "--fix"],
    &["check"],
    &["commit", "350", "specs"],
];

/// The sample state.json with `line` inserted (with the indentation of an entry's keys) after
/// task 350's `"priority"`, keeping the layout jq prints.
fn with_field(line: &str) -> Vec<u8> {
    let at = "      \"priority\": \"high\",\n";
    assert!(crate::support::STATE.contains(at));
    crate::support::STATE.replacen(at, &format!("{at}      {line},\n"), 1).into_bytes()
}

/// `[...[]...]` nested `levels` deep, laid out as jq prints it `indent` levels in.
fn nested(levels: usize, indent: usize) -> String {
    let mut out = "[]".to_owned();
    for d in (indent..indent + levels - 1).rev() {
        out = format!("[\n{}{out}\n{}]", "  ".repeat(d + 1), "  ".repeat(d));
    }
    out
}

/// Invalid state.json files that `StateFile::parse` refuses and the sparse load every ledger
/// update uses once accepted (the update then panicked: issue 11), with their neighbours that
/// were always refused. Each is refused by every command with exit 2, an `error:` line naming
/// specs/state.json, no panic, and every file left as it was.
#[test]
fn every_ledger_command_refuses_every_invalid_state_json() {
    let state = crate::support::STATE.as_bytes();
    let mut not_utf8 = with_field("\"x\": \"ab\"");
    let at = not_utf8.windows(4).position(|w| w == b"\"ab\"").expect("field") + 1;
    not_utf8[at] = 0xff;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a number out of range", with_field("\"x\": 1e400"), "number out of range"),
        ("a negative number out of range", with_field("\"x\": -1e400"), "number out of range"),
        ("a 400-digit integer", with_field(&format!("\"x\": {}", "9".repeat(400))), "number out of range"),
        (
            "out of range outside the entries",
            crate::support::STATE.replacen("\"total_tasks\": 3", "\"total_tasks\": 1e400", 1).into_bytes(),
            "number out of range",
        ),
        (
            "out of range, compact",
            br#"{"active_projects": [{"project_number": 350, "x": 1e400}]}"#.to_vec(),
            "number out of range",
        ),
        ("a lone leading surrogate", with_field(r#""x": "\ud800""#), "unexpected end of hex escape"),
        ("a lone trailing surrogate", with_field(r#""x": "\udc00""#), "lone leading surrogate"),
        ("a surrogate before a letter", with_field(r#""x": "\ud800\u0041""#), "lone leading surrogate"),
        (
            "128 levels, the innermost empty",
            with_field(&format!("\"x\": {}", nested(125, 3))),
            "recursion limit exceeded",
        ),
        (
            "200 levels outside the entries",
            crate::support::STATE
                .replacen(
                    "\"completed_projects\": []",
                    &format!("\"completed_projects\": {}{}", "[".repeat(199), "]".repeat(199)),
                    1,
                )
                .into_bytes(),
            "recursion limit exceeded",
        ),
        (
            "200 levels of objects in an entry",
            with_field(&format!("\"x\": {}1{}", "{\"a\": ".repeat(197), "}".repeat(197))),
            "recursion limit exceeded",
        ),
        (
            "a key without its opening quote, in jq layout",
            crate::support::STATE.replacen("      \"priority\"", "       priority\"", 1).into_bytes(),
            "key must be a string",
        ),
        ("a byte-order mark", [b"\xef\xbb\xbf".as_slice(), state].concat(), "expected value"),
        (
            "a NUL byte between values",
            crate::support::STATE
                .replacen(
                    "\"status\": \"planned\",\n      \"language\": \"general\",\n      \"priority\"",
                    "\"status\": \"planned\",\0\n      \"language\": \"general\",\n      \"priority\"",
                    1,
                )
                .into_bytes(),
            "key must be a string",
        ),
        ("a NUL byte in a string", with_field("\"x\": \"a\0b\""), "control character"),
        ("a NUL byte at the end", [state, b"\0"].concat(), "trailing characters"),
        ("truncated by one byte", state[..state.len() - 2].to_vec(), "EOF while parsing"),
        (
            "truncated inside an entry",
            state[..crate::support::STATE.find("\"priority\"").expect("key") + 5].to_vec(),
            "EOF while parsing",
        ),
        ("invalid UTF-8 in a string", not_utf8, "invalid unicode code point"),
        (
            "a top-level array of arrays",
            br#"[[{"project_number": 350, "status": "planned"}]]"#.to_vec(),
            "the top level is not a JSON object",
        ),
    ];
    for (name, bytes, needle) in &cases {
        let repo = TestRepo::new();
        std::fs::write(repo.file("specs/state.json"), bytes).expect("write");
        for args in WRITERS {
            let before = repo.snapshot();
            let head = repo.git(&["rev-parse", "HEAD"]);
            let out = repo.run(args);
            // `check` reports its findings on stdout, the other commands their error on stderr.
            let stderr = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            let what = format!("{name}: {args:?}\n{}", render(&out));
            assert_eq!(out.status.code(), Some(2), "{what}");
            assert!(!stderr.contains("panicked"), "{what}");
            let named = stderr.lines().any(|l| l.contains("error") && l.contains("specs/state.json"));
            assert!(named, "no error line names specs/state.json: {what}");
            assert!(stderr.contains(needle), "stderr lacks {needle:?}: {what}");
            assert!(before == repo.snapshot(), "a file changed: {what}");
            assert_eq!(repo.git(&["rev-parse", "HEAD"]), head, "HEAD moved: {what}");
        }
        // `init` keeps an existing state.json (and TODO.md) without reading them for anything but
        // the next number, so it does not refuse; it must not panic or touch them.
        let out = repo.run(&["init"]);
        assert_eq!(out.status.code(), Some(0), "{name}: init\n{}", render(&out));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{name}: init\n{}", render(&out));
        assert_eq!(std::fs::read(repo.file("specs/state.json")).expect("read"), *bytes, "{name}: init");
        assert_eq!(repo.read("specs/TODO.md"), crate::support::TODO, "{name}: init");
    }
}

/// Files the loaders once read differently that are valid JSON to `StateFile::parse`: every
/// reader agrees, `check` accepts them as the tree parse does, and an update treats them as
/// jq would (the last of duplicate keys wins; a 30-digit integer is a float; serde_json's
/// raw-value key is an ordinary key).
#[test]
fn valid_but_odd_state_json_is_read_alike_by_every_command() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a 30-digit integer",
            with_field("\"x\": 123456789012345678901234567890"),
            "\"x\": 123456789012345680000000000000",
        ),
        ("a tiny number", with_field("\"x\": 1e-400"), "\"x\": 0"),
        ("a duplicated key", with_field("\"status\": \"researched\""), "\"status\": \"implementing\""),
        (
            "the raw-value key",
            with_field(r#""x": {"$serde_json::private::RawValue": "[1]"}"#),
            "\"$serde_json::private::RawValue\": \"[1]\"",
        ),
        ("the number key escaped", with_field(r#""project\u005fnumber": 350"#), "\"project_number\": 350"),
        ("127 levels", with_field(&format!("\"x\": {}", nested(124, 3))), "\"x\": ["),
    ];
    for (name, bytes, after) in &cases {
        let repo = TestRepo::new();
        std::fs::write(repo.file("specs/state.json"), bytes).expect("write");
        let out = repo.run(&["check"]);
        assert!(!render(&out).contains("state-json"), "{name}: check\n{}", render(&out));
        let out = repo.run(&["set-status", "350", "implementing"]);
        assert_eq!(out.status.code(), Some(0), "{name}\n{}", render(&out));
        let text = repo.read("specs/state.json");
        assert!(text.contains(after), "{name}: lacks {after:?}\n{text}");
        assert_eq!(repo.state_entry(350)["status"], "implementing", "{name}");
        let out = repo.run(&["check"]);
        assert!(!render(&out).contains("state-json"), "{name}: check after\n{}", render(&out));
    }
}

/// Bad input on a PATH (a spec directory, a phase document, a handoff payload): `implement` and
/// `status` refuse it (exit 2) naming the file (and line) and what to do (`status` shows a task
/// of unknown marker or status; only a run refuses it), `check` reports it (exit 1), nothing
/// panics and no file changes. One repository per case.
#[test]
fn bad_input_on_paths_is_refused_and_changes_nothing() {
    let huge_id = format!("- [ ] T{} Big\n", "9".repeat(20_000));
    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let payload = |body: &str| body.as_bytes().to_vec();
    let good_payload = r#"{
  "meta": {"currentStage": "4-qa"},
  "requirement": {"summary": "x"},
  "plan": {"steps": [{"id": "1", "name": "s", "dependencies": []}]},
  "tasks": {"items": [{"id": "t-1", "parentId": null, "name": "a", "status": "ready"}], "dependencies": []},
  "testPlan": {"scenarios": [{"id": "s-1"}], "validationCommands": [{"suite": "u", "command": "true"}]},
  "implementation": {"changes": [], "tests": [], "commands": []}
}
"#;
    // (name, file, bytes, what implement and status say, what check says)
    type PathCase<'a> = (&'a str, &'a str, Vec<u8>, Vec<&'a str>, &'a str);
    let cases: Vec<PathCase> = vec![
        (
            "tasks.md: binary garbage",
            "spec/tasks.md",
            (0u8..=255).cycle().take(3000).collect(),
            vec!["spec/tasks.md:", "not valid UTF-8"],
            "not valid UTF-8",
        ),
        ("tasks.md: empty", "spec/tasks.md", Vec::new(), vec!["spec/tasks.md: holds no task line"], "[no-tasks]"),
        (
            "tasks.md: only headings",
            "spec/tasks.md",
            b"# Plan\n\n## Phase 1\n\n### More\n".to_vec(),
            vec!["spec/tasks.md: holds no task line"],
            "[no-tasks]",
        ),
        (
            "tasks.md: a task id twice",
            "spec/tasks.md",
            b"- [ ] 1. One\n- [ ] 1. Again\n".to_vec(),
            vec!["spec/tasks.md:1: task `1` is written 2 times (lines 1, 2)"],
            "[duplicate-id]",
        ),
        (
            "tasks.md: a 20,000-digit id",
            "spec/tasks.md",
            huge_id.into_bytes(),
            vec!["spec/tasks.md:1:", "(20001 characters)` is not a task id"],
            "is not a task id",
        ),
        (
            "tasks.md: an unknown marker",
            "spec/tasks.md",
            b"- [?] 1. One\r\n- [ ] 2. Two\r\n".to_vec(),
            vec!["spec/tasks.md:1: task 1: unknown marker `[?]`", "hint: write one of the known markers"],
            "[unknown-marker]",
        ),
        (
            "phase document: an unknown marker",
            "plan.md",
            b"# P\n\n## Phase 1: A [WHAT]\n".to_vec(),
            vec!["plan.md:3: phase 1: unknown marker `[WHAT]`"],
            "[unknown-marker]",
        ),
        (
            "phase document: a 50,000-digit phase id",
            "plan.md",
            format!("## Phase {}: Big [NOT STARTED]\n", "1".repeat(50_000)).into_bytes(),
            vec!["plan.md:1:", "(50000 characters)` is not a phase id"],
            "is not a phase id",
        ),
        (
            "payload: the top level is an array",
            "handoff/payload.json",
            payload("[]\n"),
            vec!["handoff/payload.json:1: the top level is an array, not a JSON object"],
            "[shape]",
        ),
        (
            "payload: the top level is a number",
            "handoff/payload.json",
            payload("42\n"),
            vec!["handoff/payload.json:1: the top level is a number"],
            "[shape]",
        ),
        (
            "payload: meta is a string",
            "handoff/payload.json",
            payload(&good_payload.replace(r#""meta": {"currentStage": "4-qa"}"#, r#""meta": "4-qa""#)),
            vec!["handoff/payload.json:2: `meta` is a string, not an object"],
            "[shape]",
        ),
        (
            "payload: implementation.changes is an object",
            "handoff/payload.json",
            payload(&good_payload.replace(r#""changes": []"#, r#""changes": {}"#)),
            vec!["handoff/payload.json:7: `implementation.changes` is an object, not an array"],
            "[shape]",
        ),
        (
            "payload: an unknown status",
            "handoff/payload.json",
            payload(&good_payload.replace(r#""status": "ready""#, r#""status": "weird""#)),
            vec!["handoff/payload.json:5: task `t-1` has status `weird`, which is unknown"],
            "[unknown-status]",
        ),
        (
            "payload: 200,000 arrays deep",
            "handoff/payload.json",
            deep.into_bytes(),
            vec!["handoff/payload.json:1:", "recursion limit exceeded"],
            "recursion limit exceeded",
        ),
        (
            "payload: empty",
            "handoff/payload.json",
            Vec::new(),
            vec!["handoff/payload.json:1:0: invalid JSON: EOF while parsing"],
            "EOF while parsing",
        ),
    ];
    let mut failures = Vec::new();
    for (name, file, bytes, needles, check_says) in &cases {
        let repo = TestRepo::empty();
        if file.starts_with("spec/") {
            repo.write("spec/requirements.md", "# Requirements\n");
            repo.write("spec/design.md", "# Design\n");
        }
        let path = repo.file(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, bytes).expect("write");
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "bad input"]);
        let target = if file.starts_with("spec/") { "spec" } else { file };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            refused(&repo, &["implement", target, "--agent", "touch agent-ran"], needles);
            if check_says.starts_with("[unknown-") {
                // `status` shows a task of unknown state (as pending); only a run refuses it.
                let before = repo.snapshot();
                let out = repo.run(&["status", target]);
                assert_eq!(out.status.code(), Some(0), "{}", render(&out));
                assert!(before == repo.snapshot(), "status changed a file");
            } else {
                refused(&repo, &["status", target], needles);
            }
            let before = repo.snapshot();
            let out = repo.run(&["check", target]);
            assert_eq!(out.status.code().filter(|c| [1, 2].contains(c)), out.status.code(), "{}", render(&out));
            assert_ne!(out.status.code(), Some(0), "check passes bad input\n{}", render(&out));
            assert!(render(&out).contains(check_says), "check lacks {check_says:?}\n{}", render(&out));
            assert!(!render(&out).contains("panicked"), "{}", render(&out));
            assert!(before == repo.snapshot(), "check changed a file\n{}", render(&out));
            assert!(!repo.file("agent-ran").exists(), "the agent ran");
        }));
        if let Err(e) = result {
            let why = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()));
            failures.push(format!("CASE {name}: {}", why.unwrap_or_default()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}
