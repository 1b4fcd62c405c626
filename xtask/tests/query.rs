//! `xtask query` against jq 1.6 (`/usr/bin/jq`) on the real fixtures, for every filter the seed
//! skill runs (dependency notes §2.2), plus the error contract (exit 2, position, truncation).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{render, TestRepo};

const JQ: &str = "/usr/bin/jq";

/// One comparison: arguments shared by jq and `xtask query` (filter last), and the input file.
struct Case {
    flags: Vec<String>,
    filter: String,
    file: PathBuf,
}

fn jq_available() -> bool {
    if Path::new(JQ).exists() {
        true
    } else {
        crate::support::skipped(&format!("{JQ} not found; jq comparisons did not run"));
        false
    }
}

fn run_jq(repo: &TestRepo, case: &Case) -> Output {
    repo.command(JQ).args(&case.flags).arg(&case.filter).arg(&case.file).output().expect("run jq")
}

fn run_xtask(repo: &TestRepo, case: &Case) -> Output {
    let mut cmd = repo.xtask(&["query"]);
    cmd.arg(&case.filter).args(&case.flags).arg("--file").arg(&case.file);
    cmd.output().expect("run xtask")
}

/// Compares stdout byte for byte; a jq failure must be an xtask failure (exit 2) with the same
/// output before the error.
fn compare(repo: &TestRepo, cases: &[Case]) -> usize {
    let mut failures = Vec::new();
    for case in cases {
        let (a, b) = (run_jq(repo, case), run_xtask(repo, case));
        let ok = if a.status.success() {
            b.status.success() && a.stdout == b.stdout
        } else {
            b.status.code() == Some(2) && a.stdout == b.stdout
        };
        if !ok {
            failures.push(format!(
                "{:?} {} on {}\njq: {}\nxtask: {}",
                case.flags,
                case.filter,
                case.file.display(),
                render(&a),
                render(&b)
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), cases.len(), failures.join("\n\n"));
    cases.len()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn sorted_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// The task numbers a state file holds, in file order (via jq, the oracle).
fn numbers(repo: &TestRepo, file: &Path) -> Vec<i64> {
    let out = repo.command(JQ).args(["-c", "[.active_projects[].project_number]"]).arg(file).output().expect("jq");
    serde_json::from_slice(&out.stdout).expect("numbers")
}

const HOSTILE: &str = "Quote \" backslash \\ tab \t newline \n unicode é ∀ \u{1F600} control \u{1} del \u{7f} end";

#[test]
fn query_matches_jq_on_every_state_fixture_for_lookup_and_identity() {
    let Some(fx) = crate::support::fixtures() else { return };
    if !jq_available() {
        return;
    }
    let repo = TestRepo::empty();
    let mut cases = Vec::new();
    for file in sorted_files(&fx.join("states"), ".json") {
        let nums = numbers(&repo, &file);
        cases.push(Case { flags: vec![], filter: ".".into(), file: file.clone() });
        cases.push(Case { flags: args(&["-c"]), filter: ".".into(), file: file.clone() });
        cases.push(Case { flags: vec![], filter: "empty".into(), file: file.clone() });
        for n in [nums[nums.len() / 2], 99999] {
            let n = n.to_string();
            for flags in [vec![], args(&["-r"]), args(&["-c"])] {
                let mut f = flags.clone();
                f.extend(args(&["--argjson", "num", &n]));
                cases.push(Case {
                    flags: f,
                    filter: ".active_projects[] | select(.project_number == $num)".into(),
                    file: file.clone(),
                });
            }
        }
    }
    // archive and legacy shapes too.
    for dir in ["archive-states", "legacy-states"] {
        for file in sorted_files(&fx.join(dir), ".json") {
            cases.push(Case { flags: args(&["-c"]), filter: ".".into(), file });
        }
    }
    let n = compare(&repo, &cases);
    assert!(n > 200, "{n}");
}

#[test]
fn query_matches_jq_for_the_seed_update_filters() {
    let Some(fx) = crate::support::fixtures() else { return };
    if !jq_available() {
        return;
    }
    let repo = TestRepo::empty();
    let picks =
        ["bcd8236c0", "48b44ddd6", "775316232", "fd3df295d", "3d5bf5372", "090b8e6c4", "ffba5fe1a", "af2d23d40"];
    let sel = "(.active_projects[] | select(.project_number == $num))";
    let updates = [
        (
            format!("{sel} |= . + {{status: $status, last_updated: $ts, session_id: $sid, started: $ts}}"),
            args(&["--arg", "status", "implementing", "--arg", "sid", "sess_1773695483_a1b2c3"]),
        ),
        (
            format!("{sel} |= . + {{status: $status, last_updated: $ts, completed: $ts}}"),
            args(&["--arg", "status", "completed"]),
        ),
        (format!("{sel}.completion_summary = $summary"), args(&["--arg", "summary", HOSTILE])),
        (format!("{sel}.claudemd_suggestions = $suggestions"), args(&["--arg", "suggestions", "none"])),
        (format!("{sel}.roadmap_items = $items"), args(&["--argjson", "items", r#"["Item \"one\"", "Ünïcode"]"#])),
        (format!("{sel} |= . + {{last_updated: $ts, resume_phase: ($phase + 1)}}"), args(&["--argjson", "phase", "2"])),
        (
            format!("{sel}.artifacts =\n        [{sel}.artifacts // [] | .[] | select(.type == \"summary\" | not)]"),
            vec![],
        ),
        (
            format!("{sel}.artifacts += [{{\"path\": $path, \"type\": \"summary\", \"summary\": $summary}}]"),
            args(&[
                "--arg",
                "path",
                "specs/1_x/summaries/implementation-summary-20260316.md",
                "--arg",
                "summary",
                HOSTILE,
            ]),
        ),
        (
            format!("{sel}.artifacts += [{{\"path\": $path, \"type\": $type, \"summary\": $summary}}]"),
            args(&["--arg", "path", "src/lib.rs", "--arg", "type", "implementation", "--arg", "summary", "ok"]),
        ),
    ];
    let mut cases = Vec::new();
    for pick in picks {
        let file = fx.join(format!("states/{pick}.json"));
        let nums = numbers(&repo, &file);
        // The first task, a duplicated one when the file has duplicates (666 in bcd8236c0), and an absent one.
        let mut chosen = vec![nums[0], 99999];
        if pick == "bcd8236c0" {
            chosen.push(666);
        }
        for n in chosen {
            for (filter, extra) in &updates {
                let mut flags = args(&["--arg", "ts", "2026-03-16T21:11:23Z", "--argjson", "num", &n.to_string()]);
                flags.extend(extra.iter().cloned());
                cases.push(Case { flags, filter: filter.clone(), file: file.clone() });
            }
            // The seed also splices the number into the filter text instead of a variable.
            cases.push(Case {
                flags: args(&["--arg", "summary", "done"]),
                filter: format!("(.active_projects[] | select(.project_number == {n})).completion_summary = $summary"),
                file: file.clone(),
            });
        }
    }
    compare(&repo, &cases);
}

#[test]
fn query_matches_jq_for_the_seed_task_and_metadata_reads() {
    let Some(fx) = crate::support::fixtures() else { return };
    if !jq_available() {
        return;
    }
    let repo = TestRepo::empty();
    let mut cases = Vec::new();
    // Task data as the seed extracts it, then its field reads.
    for pick in ["48b44ddd6", "fd3df295d", "090b8e6c4"] {
        let file = fx.join(format!("states/{pick}.json"));
        for (i, n) in numbers(&repo, &file).into_iter().enumerate().step_by(3) {
            let out = repo
                .command(JQ)
                .args([
                    "-r",
                    "--argjson",
                    "num",
                    &n.to_string(),
                    ".active_projects[] | select(.project_number == $num)",
                ])
                .arg(&file)
                .output()
                .expect("jq");
            let entry = repo.file(&format!("entry-{pick}-{i}.json"));
            std::fs::write(&entry, &out.stdout).expect("write entry");
            for filter in [".language // \"general\"", ".status", ".project_name", ".description // \"\""] {
                cases.push(Case { flags: args(&["-r"]), filter: filter.into(), file: entry.clone() });
            }
        }
    }
    let reads = [
        (".status", "-r"),
        (".artifacts[0].path // \"\"", "-r"),
        (".artifacts[0].type // \"\"", "-r"),
        (".artifacts[0].summary // \"\"", "-r"),
        (".metadata.phases_completed // 0", "-r"),
        (".metadata.phases_total // 0", "-r"),
        (".completion_data.completion_summary // \"\"", "-r"),
        (".completion_data.claudemd_suggestions // \"\"", "-r"),
        (".completion_data.roadmap_items // []", "-c"),
        (".requires_user_review // false", "-r"),
        (".partial_progress.handoff_path // \"\"", "-r"),
        (".artifacts[] | select(.type == \"summary\") | .path // \"\"", "-r"),
        (".artifacts[] | select(.type == \"summary\") | .summary // \"\"", "-r"),
        ("empty", "-r"),
        (".", "-c"),
    ];
    for file in sorted_files(&fx.join("meta"), ".json") {
        for (filter, flag) in reads {
            cases.push(Case { flags: args(&[flag]), filter: filter.into(), file: file.clone() });
        }
    }
    let n = compare(&repo, &cases);
    assert!(n > 150, "{n}");
}

#[test]
fn query_errors_exit_2_point_at_the_filter_and_truncate_values() {
    let repo = TestRepo::new();
    let out = repo.run(&["query", ".active_projects[] | select(.project_number == $num"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("syntax error in filter at line 1, column 52 (offset 51)"), "{err}");
    assert!(err.contains("expected closing parenthesis"), "{err}");
    assert!(out.stdout.is_empty());

    let out = repo.run(&["query", ".active_projects + 1"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot calculate [{\"project_number\":352,"), "{err}");
    assert!(err.contains("...") && !err.contains("second_feature"), "value not truncated: {err}");

    let out = repo.run(&["query", ".", "--argjson", "x", "{not json"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));

    repo.write("bad.json", "{\"a\": [1,\n");
    let out = repo.run(&["query", ".", "--file", "bad.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json:"), "{}", render(&out));

    let out = repo.run(&["query", ".", "--file", "missing.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
}

#[test]
fn query_defaults_to_state_json_and_binds_args() {
    let repo = TestRepo::new();
    let out = repo.run(&[
        "query",
        "-r",
        "--argjson",
        "num",
        "350",
        "--arg",
        "suffix",
        "!",
        ".active_projects[] | select(.project_number == $num) | .project_name + $suffix",
    ]);
    assert!(out.status.success(), "{}", render(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "add_feature!\n");
}
