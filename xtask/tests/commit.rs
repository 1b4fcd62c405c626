//! `xtask commit` against the git CLI on temporary repositories: the same tree and status as
//! `git add -A -- <paths> && git commit --only -- <paths>` on an identical copy, task-scoped
//! ledger files, hooks, races on HEAD, refusals, unborn branches, linked worktrees and the
//! stale tree-cache trap.

use std::os::unix::fs::PermissionsExt;

use crate::support::{render, TestRepo};

/// An identical copy of `repo` (work tree and `.git`), for the git oracle.
fn copy_of(repo: &TestRepo) -> TestRepo {
    let copy = TestRepo::empty();
    std::fs::remove_dir_all(copy.path().join(".git")).expect("rm .git");
    let status = std::process::Command::new("cp")
        .args(["-a", "--"])
        .arg(repo.path().join("."))
        .arg(copy.path())
        .status()
        .expect("cp");
    assert!(status.success());
    copy
}

fn head(repo: &TestRepo) -> String {
    repo.git(&["rev-parse", "HEAD"]).trim().to_owned()
}

fn tree(repo: &TestRepo, rev: &str) -> String {
    repo.git(&["rev-parse", &format!("{rev}^{{tree}}")]).trim().to_owned()
}

/// A scratch directory outside the repository.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("postflight-scratch-").tempdir().expect("tempdir")
}

fn status(repo: &TestRepo) -> String {
    repo.git(&["status", "--porcelain=v2", "--untracked-files=all"])
}

/// HEAD, index, status and every work-tree file: what "nothing changed" compares.
fn everything(repo: &TestRepo) -> (String, String, String, Vec<(std::path::PathBuf, Vec<u8>)>) {
    let head = repo.git(&["rev-parse", "--verify", "-q", "HEAD"]);
    (head, repo.git(&["ls-files", "-s"]), status(repo), files(repo.path()))
}

/// Every file under `dir` except `.git`, with symbolic links as their targets.
fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("ls") {
            let p = e.expect("entry").path();
            let ft = std::fs::symlink_metadata(&p).expect("lstat").file_type();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if ft.is_symlink() {
                out.push((p.clone(), std::fs::read_link(&p).expect("readlink").into_os_string().into_encoded_bytes()));
            } else if ft.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

fn fsck_clean(repo: &TestRepo) {
    let out = repo.command("git").args(["fsck", "--strict", "--no-progress", "--no-dangling"]).output().expect("fsck");
    assert!(out.status.success() && out.stdout.is_empty(), "git fsck: {}", render(&out));
}

fn set_exec(repo: &TestRepo, rel: &str, exec: bool) {
    let p = repo.file(rel);
    let mut perm = std::fs::metadata(&p).expect("meta").permissions();
    perm.set_mode(if exec { 0o755 } else { 0o644 });
    std::fs::set_permissions(p, perm).expect("chmod");
}

fn write_hook(repo: &TestRepo, dir: &str, name: &str, body: &str) {
    let rel = format!("{dir}/{name}");
    repo.write(&rel, &format!("#!/bin/sh\n{body}\n"));
    set_exec(repo, &rel, true);
}

fn commit(repo: &TestRepo, args: &[&str]) -> std::process::Output {
    let mut all = vec!["commit"];
    all.extend_from_slice(args);
    repo.run(&all)
}

fn assert_ok(out: &std::process::Output) {
    assert!(out.status.success(), "{}", render(out));
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The matrix: every kind of change, inside and outside the committed paths.
fn matrix_repo() -> TestRepo {
    let repo = TestRepo::new();
    for f in ["staged.txt", "partial.txt", "unstaged.txt", "deleted.txt", "staged_deleted.txt", "exec.sh"] {
        repo.write(f, &format!("{f} v1\nline 2\nline 3\nline 4\nline 5\n"));
    }
    for f in ["other_staged.txt", "other_unstaged.txt", "dir/tracked.txt", "dir/gone.txt", "dir/sub/deep.txt"] {
        repo.write(f, &format!("{f} v1\n"));
    }
    repo.write("tracked_ignored.log", "tracked although ignored\n");
    repo.git(&["add", "-A"]);
    repo.git(&["add", "-f", "tracked_ignored.log"]);
    repo.git(&["commit", "-q", "-m", "matrix base"]);

    repo.write("staged.txt", "staged.txt v2\n");
    repo.git(&["add", "staged.txt"]);
    repo.write("partial.txt", "partial.txt v2\nline 2\nline 3\nline 4\nline 5\n");
    repo.git(&["add", "partial.txt"]);
    repo.write("partial.txt", "partial.txt v2\nline 2\nline 3\nline 4\nline 5 unstaged\n");
    repo.write("unstaged.txt", "unstaged.txt v2\n");
    std::fs::remove_file(repo.file("deleted.txt")).expect("rm");
    repo.git(&["rm", "-q", "staged_deleted.txt"]);
    set_exec(&repo, "exec.sh", true);
    repo.write("new_exec.sh", "#!/bin/sh\n");
    set_exec(&repo, "new_exec.sh", true);
    repo.write("untracked.txt", "new\n");
    repo.write("ignored.log", "ignored\n");
    repo.write("tracked_ignored.log", "tracked although ignored, v2\n");
    repo.write("dir/tracked.txt", "dir/tracked.txt v2\n");
    repo.write("dir/new.txt", "new in dir\n");
    repo.write("dir/new.log", "ignored in dir\n");
    repo.write("dir/sub/new_deep.txt", "new deep\n");
    std::fs::remove_file(repo.file("dir/gone.txt")).expect("rm");
    std::os::unix::fs::symlink("README.md", repo.file("link")).expect("symlink");
    repo.write("other_staged.txt", "other staged v2\n");
    repo.git(&["add", "other_staged.txt"]);
    repo.write("other_unstaged.txt", "other unstaged v2\n");
    repo.write("other_untracked.txt", "stays untracked\n");
    repo
}

const ORACLE_PATHS: &[&str] = &[
    "staged.txt",
    "partial.txt",
    "unstaged.txt",
    "deleted.txt",
    "staged_deleted.txt",
    "exec.sh",
    "new_exec.sh",
    "untracked.txt",
    "tracked_ignored.log",
    "dir",
    "link",
];

#[test]
fn commit_matrix_matches_git_commit_only_on_a_copy() {
    let ours = matrix_repo();
    let theirs = copy_of(&ours);

    let mut args = vec!["350", "-m", "task 350: matrix", "--"];
    args.extend_from_slice(ORACLE_PATHS);
    args.extend_from_slice(&["ignored.log", "missing.txt"]);
    let out = commit(&ours, &args);
    assert_ok(&out);
    let err = stderr(&out);
    assert!(err.contains("ignored.log: ignored"), "{}", render(&out));
    assert!(err.contains("missing.txt: does not exist and is not tracked"), "{}", render(&out));

    // `git add -A` fails on a path gone from both the index and the work tree (D3); commit --only takes it.
    let mut add = vec!["add", "-A", "--"];
    add.extend(ORACLE_PATHS.iter().filter(|p| **p != "staged_deleted.txt"));
    theirs.git(&add);
    let mut only = vec!["commit", "-q", "--only", "-m", "oracle", "--"];
    only.extend_from_slice(ORACLE_PATHS);
    theirs.git(&only);

    assert_eq!(tree(&ours, "HEAD"), tree(&theirs, "HEAD"), "trees differ:\n{}", ours.git(&["show", "--stat", "HEAD"]));
    assert_eq!(status(&ours), status(&theirs));
    assert_eq!(ours.git(&["ls-files", "-s"]), theirs.git(&["ls-files", "-s"]));
    // What the user staged elsewhere is still staged, and the commit is on top of the old HEAD.
    assert!(status(&ours).contains("1 M. N... 100644 100644 100644"), "{}", status(&ours));
    assert_eq!(ours.git(&["rev-parse", "HEAD~1"]), theirs.git(&["rev-parse", "HEAD~1"]));
    fsck_clean(&ours);

    // The report lists exactly the changed paths.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = stdout.lines().skip(1).map(str::trim).collect();
    let changed = ours.git(&["diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD"]);
    assert_eq!(listed, changed.lines().collect::<Vec<_>>(), "{stdout}");
}

#[test]
fn commit_message_has_session_and_coauthor_trailers() {
    let repo = TestRepo::new();
    repo.write("README.md", "# changed\n");
    let out = commit(
        &repo,
        &[
            "350",
            "-m",
            "task 350: docs",
            "--body",
            "Why it changed.\n---\nA divider above.",
            "--agent-identity",
            "Claude <noreply@anthropic.com>",
            "README.md",
        ],
    );
    assert_ok(&out);
    let msg = repo.git(&["log", "-1", "--format=%B"]);
    assert_eq!(
        msg,
        format!(
            "task 350: docs\n\nWhy it changed.\n ---\nA divider above.\n\nSession: {}\nCo-authored-by: Claude <noreply@anthropic.com>\n\n",
            crate::support::SESSION
        )
    );
    let mut parse = repo
        .command("git")
        .args(["interpret-trailers", "--parse"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    parse.stdin.take().expect("stdin").write_all(msg.as_bytes()).expect("write");
    let trailers = String::from_utf8(parse.wait_with_output().expect("wait").stdout).expect("utf8");
    assert_eq!(
        trailers,
        format!("Session: {}\nCo-authored-by: Claude <noreply@anthropic.com>\n", crate::support::SESSION)
    );
    // Identity and dates come from the GIT_* environment, like git.
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an <%ae> %aI|%cn <%ce> %cI"]).trim(),
        "Test Author <author@example.com> 2026-03-16T21:11:23Z|Test Committer <committer@example.com> 2026-03-16T21:11:23Z"
    );
    // Default subject without -m, no Co-authored-by without an identity.
    repo.write("README.md", "# changed again\n");
    assert_ok(&commit(&repo, &["350", "README.md"]));
    assert_eq!(
        repo.git(&["log", "-1", "--format=%B"]),
        format!("task 350: update\n\nSession: {}\n\n", crate::support::SESSION)
    );
}

#[test]
fn commit_is_byte_identical_to_git_for_the_same_message() {
    let ours = TestRepo::new();
    ours.write("README.md", "# changed\n");
    ours.write("notes/new.md", "new\n");
    let theirs = copy_of(&ours);
    assert_ok(&commit(&ours, &["350", "-m", "task 350: same", "README.md", "notes"]));
    let msg = format!("task 350: same\n\nSession: {}\n", crate::support::SESSION);
    theirs.git(&["add", "-A", "--", "README.md", "notes"]);
    theirs.git(&["commit", "-q", "--only", "-m", &msg, "--", "README.md", "notes"]);
    assert_eq!(head(&ours), head(&theirs));
    assert_eq!(ours.git(&["reflog", "-1"]), theirs.git(&["reflog", "-1"]));
}

#[test]
fn commit_two_tasks_ledger_edits_stay_apart() {
    let repo = TestRepo::new();
    // Task B (351) and task A (350) both edit the shared files; B also creates task 353.
    assert_ok(&repo.run(&["set-status", "351", "researched", "--force"]));
    assert_ok(&repo.run(&["set-status", "350", "implementing"]));
    let new = repo.run(&["task", "new", "Third thing"]);
    assert_ok(&new);
    repo.write("src/a.rs", "// task 350's work\n");
    let (state_before, todo_before) = (repo.read("specs/state.json"), repo.read("specs/TODO.md"));

    let out = commit(
        &repo,
        &["350", "-m", "task 350: start", "specs/state.json", "specs/TODO.md", "specs/350_add_feature", "src/a.rs"],
    );
    assert_ok(&out);
    // The working tree is untouched: B's edits are still there, uncommitted.
    assert_eq!(repo.read("specs/state.json"), state_before);
    assert_eq!(repo.read("specs/TODO.md"), todo_before);
    let committed: serde_json::Value =
        serde_json::from_str(&repo.git(&["show", "HEAD:specs/state.json"])).expect("json");
    let task = |v: &serde_json::Value, n: u64| -> serde_json::Value {
        v["active_projects"]
            .as_array()
            .expect("array")
            .iter()
            .find(|e| e["project_number"] == n)
            .cloned()
            .unwrap_or_default()
    };
    let worktree: serde_json::Value = serde_json::from_str(&state_before).expect("json");
    let initial: serde_json::Value = serde_json::from_str(crate::support::STATE).expect("json");
    assert_eq!(task(&committed, 350), task(&worktree, 350));
    assert_eq!(task(&committed, 351), task(&initial, 351));
    assert_eq!(task(&committed, 353), serde_json::Value::Null);
    assert_eq!(committed["next_project_number"], 353);
    // jq formatting.
    let shown = repo.git(&["show", "HEAD:specs/state.json"]);
    let jq = std::process::Command::new("jq")
        .arg(".")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    if let Ok(mut jq) = jq {
        use std::io::Write;
        jq.stdin.take().expect("stdin").write_all(shown.as_bytes()).expect("write");
        assert_eq!(String::from_utf8(jq.wait_with_output().expect("jq").stdout).expect("utf8"), shown);
    }
    let todo = repo.git(&["show", "HEAD:specs/TODO.md"]);
    assert!(todo.contains("### 350. Add feature\n- **Effort**: 2 hours\n- **Status**: [IMPLEMENTING]"), "{todo}");
    assert!(todo.contains(" **Status**: [PLANNED] (waits for 350)"), "{todo}");
    assert!(!todo.contains("### 353."), "{todo}");
    assert!(todo.contains("next_project_number: 353\n"), "{todo}");
    // git sees B's edits as unstaged changes; A's part is clean.
    let st = repo.git(&["status", "--porcelain", "--", "specs/state.json", "specs/TODO.md", "src"]);
    assert_eq!(st, " M specs/TODO.md\n M specs/state.json\n");
    let diff = repo.git(&["diff", "--", "specs/state.json"]);
    assert!(!diff.contains("implementing"), "{diff}");
    assert!(diff.contains("researched") && diff.contains("third_thing"), "{diff}");

    // B's commits take the rest, in any order: then nothing is left.
    assert_ok(&commit(&repo, &["353", "specs/state.json", "specs/TODO.md"]));
    let committed: serde_json::Value =
        serde_json::from_str(&repo.git(&["show", "HEAD:specs/state.json"])).expect("json");
    assert_eq!(committed["next_project_number"], 354);
    assert_eq!(committed["active_projects"][0]["project_number"], 353);
    assert!(repo.git(&["show", "HEAD:specs/TODO.md"]).contains("## Tasks\n\n### 353. Third thing\n"));
    assert_ok(&commit(&repo, &["351", "specs/state.json", "specs/TODO.md", "specs/351_second_feature"]));
    assert_eq!(repo.git(&["status", "--porcelain", "--", "specs"]), "");
    let out = commit(&repo, &["351", "specs/state.json"]);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to commit"), "{}", render(&out));
    fsck_clean(&repo);
}

#[test]
fn commit_then_plain_git_commit_does_not_revert_it() {
    // The tree-cache trap: a stale TREE extension makes the next `git commit` reuse old subtrees.
    let repo = TestRepo::new();
    repo.git(&["write-tree"]);
    repo.write("specs/350_add_feature/plans/implementation-001.md", "changed by task 350\n");
    repo.write("specs/deeper/file.md", "new\n");
    assert_ok(&commit(&repo, &["350", "specs/350_add_feature", "specs/deeper"]));
    let ours = tree(&repo, "HEAD");
    repo.write("README.md", "# user edit\n");
    repo.git(&["add", "README.md"]);
    repo.git(&["commit", "-q", "-m", "user commit"]);
    assert_eq!(repo.git(&["diff", "--name-only", "HEAD~1", "HEAD"]), "README.md\n");
    assert_eq!(repo.git(&["show", "HEAD:specs/350_add_feature/plans/implementation-001.md"]), "changed by task 350\n");
    assert_ne!(tree(&repo, "HEAD"), ours);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn commit_hooks_see_only_the_commit_and_can_reject_it() {
    let repo = TestRepo::new();
    let tmp = scratch();
    let log = tmp.path().join("hook.log");
    write_hook(
        &repo,
        ".git/hooks",
        "pre-commit",
        &format!(
            "git diff --cached --name-only > {}\necho \"index=$GIT_INDEX_FILE\" >> {}",
            log.display(),
            log.display()
        ),
    );
    write_hook(&repo, ".git/hooks", "commit-msg", "printf 'Checked-by: hook\\n' >> \"$1\"");
    repo.write("staged_by_user.txt", "staged\n");
    repo.git(&["add", "staged_by_user.txt"]);
    repo.write("README.md", "# ours\n");
    assert_ok(&commit(&repo, &["350", "-m", "task 350: hooked", "README.md"]));
    let seen = std::fs::read_to_string(&log).expect("hook ran");
    assert!(seen.starts_with("README.md\nindex="), "{seen}");
    assert!(seen.contains("/.git/next-index-"), "{seen}");
    assert_eq!(
        repo.git(&["log", "-1", "--format=%(trailers:only)"]),
        format!("Session: {}\nChecked-by: hook\n\n", crate::support::SESSION)
    );
    assert!(!repo.file(&format!(".git/next-index-{}.lock", std::process::id())).exists());

    // A failing pre-commit hook: its output shown, exit 2, nothing changed.
    write_hook(&repo, ".git/hooks", "pre-commit", "echo 'lint: 3 problems'; echo 'on stderr' >&2; exit 1");
    repo.write("README.md", "# ours again\n");
    let before = everything(&repo);
    let out = commit(&repo, &["350", "README.md"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    let err = stderr(&out);
    assert!(
        err.contains("pre-commit hook failed (exit code 1)") && err.contains("lint: 3 problems\non stderr"),
        "{err}"
    );
    assert!(err.contains("--no-verify"), "{err}");
    assert_eq!(everything(&repo), before);

    // --no-verify skips both hooks.
    let out = commit(&repo, &["350", "--no-verify", "README.md"]);
    assert_ok(&out);
    assert_eq!(
        repo.git(&["log", "-1", "--format=%(trailers:only)"]),
        format!("Session: {}\n\n", crate::support::SESSION)
    );

    // A failing commit-msg hook, found through core.hooksPath.
    repo.git(&["config", "core.hooksPath", "custom-hooks"]);
    write_hook(
        &repo,
        "custom-hooks",
        "commit-msg",
        "grep -q '^Ticket:' \"$1\" || { echo 'missing Ticket: trailer'; exit 3; }",
    );
    repo.write("README.md", "# third\n");
    let before = everything(&repo);
    let out = commit(&repo, &["350", "README.md"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(
        stderr(&out).contains("commit-msg hook failed (exit code 3)") && stderr(&out).contains("missing Ticket"),
        "{}",
        render(&out)
    );
    assert_eq!(everything(&repo), before);
}

#[test]
fn commit_pre_commit_hook_changes_to_its_index_are_committed() {
    // As with git: a formatter hook that re-stages a file changes the commit.
    let repo = TestRepo::new();
    write_hook(&repo, ".git/hooks", "pre-commit", "echo 'formatted' > fmt.txt && git add fmt.txt");
    repo.write("README.md", "# ours\n");
    let out = commit(&repo, &["350", "README.md"]);
    assert_ok(&out);
    assert_eq!(repo.git(&["show", "HEAD:fmt.txt"]), "formatted\n");
    assert!(String::from_utf8_lossy(&out.stdout).contains("fmt.txt"), "{}", render(&out));
    fsck_clean(&repo);
}

#[test]
fn commit_retries_when_head_moves_and_gives_up_after_three_times() {
    let repo = TestRepo::new();
    let tmp = scratch();
    let marker = tmp.path().join("moved-once");
    // The hook runs between our read of HEAD and our update of the branch.
    write_hook(
        &repo,
        ".git/hooks",
        "pre-commit",
        &format!(
            "[ -e {m} ] && exit 0\ntouch {m}\nc=$(git commit-tree HEAD^{{tree}} -p HEAD -m intruder) && git update-ref refs/heads/main $c",
            m = marker.display()
        ),
    );
    // The commit-msg hook runs on each attempt, each time on the original message.
    write_hook(&repo, ".git/hooks", "commit-msg", "printf 'Checked-by: hook\\n' >> \"$1\"");
    repo.write("README.md", "# ours\n");
    let out = commit(&repo, &["350", "-m", "task 350: raced", "README.md"]);
    assert_ok(&out);
    assert_eq!(repo.git(&["log", "--format=%s"]), "task 350: raced\nintruder\ninitial\n");
    assert_eq!(
        repo.git(&["log", "-1", "--format=%(trailers:only)"]),
        format!("Session: {}\nChecked-by: hook\n\n", crate::support::SESSION)
    );
    assert_eq!(repo.git(&["show", "HEAD:README.md"]), "# ours\n");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    // A HEAD that moves on every attempt: fail, with nothing of ours committed or staged.
    write_hook(
        &repo,
        ".git/hooks",
        "pre-commit",
        "c=$(git commit-tree HEAD^{tree} -p HEAD -m intruder) && git update-ref refs/heads/main $c",
    );
    repo.write("README.md", "# ours, second\n");
    let index_before = repo.git(&["ls-files", "-s"]);
    let out = commit(&repo, &["350", "-m", "task 350: never", "README.md"]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));
    assert!(stderr(&out).contains("HEAD moved during the commit 3 times"), "{}", render(&out));
    assert_eq!(repo.git(&["log", "-4", "--format=%s"]), "intruder\nintruder\nintruder\ntask 350: raced\n");
    assert_eq!(repo.git(&["ls-files", "-s"]), index_before);
}

#[test]
fn commit_refuses_during_a_merge() {
    let repo = TestRepo::new();
    repo.git(&["checkout", "-q", "-b", "other"]);
    repo.write("other.txt", "other\n");
    repo.git(&["add", "other.txt"]);
    repo.git(&["commit", "-q", "-m", "other"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "--no-ff", "--no-commit", "other"]);
    repo.write("README.md", "# during merge\n");
    let before = everything(&repo);
    let out = commit(&repo, &["350", "README.md"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(stderr(&out).contains("a merge is in progress"), "{}", render(&out));
    assert_eq!(everything(&repo), before);
}

#[test]
fn commit_refuses_paths_outside_inside_git_and_through_links() {
    let repo = TestRepo::new();
    let tmp = scratch();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(outside.join("secret.txt"), "secret\n").expect("write");
    std::os::unix::fs::symlink(&outside, repo.file("escape")).expect("symlink");
    std::os::unix::fs::symlink("specs", repo.file("inner")).expect("symlink");
    repo.write("README.md", "# pending\n");
    let before = everything(&repo);
    for (path, want) in [
        ("../elsewhere.txt", "outside the repository"),
        ("/etc/hostname", "outside the repository"),
        (".git/config", "inside .git"),
        ("escape/secret.txt", "leaves the repository"),
        ("inner/TODO.md", "symbolic link `inner`"),
    ] {
        // A bad path refuses the whole commit, even with good paths beside it.
        let out = commit(&repo, &["350", "README.md", path]);
        assert_eq!(out.status.code(), Some(2), "{path}: {}", render(&out));
        assert!(stderr(&out).contains(want), "{path}: {}", render(&out));
        assert_eq!(everything(&repo), before, "{path}");
    }
    // The link itself is an ordinary path.
    assert_ok(&commit(&repo, &["350", "escape"]));
    assert_eq!(repo.git(&["ls-files", "-s", "escape"]).split_whitespace().next(), Some("120000"));
}

#[test]
fn commit_first_commit_on_an_unborn_branch() {
    let repo = TestRepo::empty();
    repo.write("a.txt", "a\n");
    repo.write("staged.txt", "staged by the user\n");
    repo.git(&["add", "staged.txt"]);
    let out = commit(&repo, &["1", "-m", "task 1: first", "a.txt"]);
    assert_ok(&out);
    assert_eq!(repo.git(&["log", "--format=%s%x00%P"]), "task 1: first\0\n");
    assert_eq!(repo.git(&["ls-tree", "--name-only", "HEAD"]), "a.txt\n");
    assert_eq!(repo.git(&["status", "--porcelain"]), "A  staged.txt\n");
    assert_eq!(repo.git(&["reflog", "-1", "--format=%gs"]), "commit (initial): task 1: first\n");
    fsck_clean(&repo);
}

#[test]
fn commit_in_a_linked_worktree_moves_its_branch_only() {
    let repo = TestRepo::new();
    let tmp = scratch();
    let wt = tmp.path().join("wt");
    repo.git(&["worktree", "add", "-q", "-b", "feature", wt.to_str().expect("utf8")]);
    std::fs::write(wt.join("README.md"), "# in the worktree\n").expect("write");
    std::fs::write(wt.join("staged.txt"), "staged there\n").expect("write");
    repo.git(&["-C", wt.to_str().expect("utf8"), "add", "staged.txt"]);
    let main_before = head(&repo);
    let out = repo
        .xtask(&["-C", wt.to_str().expect("utf8"), "commit", "350", "-m", "task 350: wt", "README.md"])
        .output()
        .expect("run");
    assert_ok(&out);
    assert_eq!(head(&repo), main_before);
    assert_eq!(repo.git(&["log", "-1", "--format=%s", "feature"]), "task 350: wt\n");
    assert_eq!(repo.git(&["show", "feature:README.md"]), "# in the worktree\n");
    let wt_status = repo.git(&["-C", wt.to_str().expect("utf8"), "status", "--porcelain"]);
    assert_eq!(wt_status, "A  staged.txt\n");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn commit_on_a_detached_head_moves_head_not_the_branch() {
    let repo = TestRepo::new();
    repo.git(&["checkout", "-q", "--detach"]);
    let main_before = repo.git(&["rev-parse", "main"]);
    repo.write("README.md", "# detached\n");
    assert_ok(&commit(&repo, &["350", "README.md"]));
    assert_eq!(repo.git(&["rev-parse", "main"]), main_before);
    assert_eq!(repo.git(&["rev-parse", "HEAD~1"]), main_before);
    assert!(repo.command("git").args(["symbolic-ref", "-q", "HEAD"]).status().expect("git").code() == Some(1));
}

#[test]
fn commit_never_takes_transient_files() {
    let repo = TestRepo::new();
    repo.write(".gitignore", "");
    repo.write("specs/350_add_feature/summaries/s.md", "summary\n");
    repo.write("specs/350_add_feature/.return-meta.json", "{}\n");
    repo.write("specs/350_add_feature/.postflight-pending", "{}\n");
    let out = commit(&repo, &["350", "specs/350_add_feature", "specs/350_add_feature/.return-meta.json"]);
    assert_ok(&out);
    let files = repo.git(&["ls-tree", "-r", "--name-only", "HEAD", "specs/350_add_feature"]);
    assert_eq!(files, "specs/350_add_feature/plans/implementation-001.md\nspecs/350_add_feature/summaries/s.md\n");
    assert!(stderr(&out).contains(".return-meta.json: transient file, never committed"), "{}", render(&out));
    // A transient file the old workflow committed (D4) is not deleted or changed by ours.
    repo.git(&["add", "-f", "specs/350_add_feature/.return-meta.json"]);
    repo.git(&["commit", "-q", "-m", "legacy"]);
    std::fs::remove_file(repo.file("specs/350_add_feature/.return-meta.json")).expect("rm");
    repo.write("specs/350_add_feature/summaries/s.md", "summary v2\n");
    assert_ok(&commit(&repo, &["350", "specs/350_add_feature"]));
    assert_eq!(repo.git(&["show", "HEAD:specs/350_add_feature/.return-meta.json"]), "{}\n");
}

#[test]
fn commit_nothing_to_commit_exits_zero_and_says_so() {
    let repo = TestRepo::new();
    let before = everything(&repo);
    let out = commit(&repo, &["350", "README.md", "specs", "does-not-exist"]);
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("nothing to commit"), "{}", render(&out));
    assert!(stderr(&out).contains("does-not-exist: does not exist"), "{}", render(&out));
    assert_eq!(everything(&repo), before);
}

#[test]
fn commit_without_identity_or_with_a_bad_date_is_refused() {
    let repo = TestRepo::new();
    repo.write("README.md", "# x\n");
    let before = everything(&repo);
    let out = repo
        .xtask(&["commit", "350", "README.md"])
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .env_remove("GIT_COMMITTER_NAME")
        .env_remove("GIT_COMMITTER_EMAIL")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(
        stderr(&out).contains("no author identity") && stderr(&out).contains("git config user.name"),
        "{}",
        render(&out)
    );
    assert_eq!(everything(&repo), before);
    let out = repo.xtask(&["commit", "350", "README.md"]).env("GIT_AUTHOR_DATE", "not a date").output().expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(stderr(&out).contains("GIT_AUTHOR_DATE"), "{}", render(&out));
    assert_eq!(everything(&repo), before);
    // Identity from git config, without the environment.
    repo.git(&["config", "user.name", "Config User"]);
    repo.git(&["config", "user.email", "config@example.com"]);
    let out = repo
        .xtask(&["commit", "350", "README.md"])
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .output()
        .expect("run");
    assert_ok(&out);
    assert_eq!(repo.git(&["log", "-1", "--format=%an <%ae>|%cn"]), "Config User <config@example.com>|Test Committer\n");
}

#[test]
fn commit_waits_for_then_refuses_a_held_index_lock() {
    let repo = TestRepo::new();
    repo.write("README.md", "# x\n");
    std::fs::write(repo.file(".git/index.lock"), "").expect("lock");
    let before = everything(&repo);
    let out = commit(&repo, &["350", "README.md"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(stderr(&out).contains("index is locked by another git process"), "{}", render(&out));
    assert!(repo.file(".git/index.lock").exists(), "the foreign lock is left alone");
    assert_eq!(everything(&repo), before);
}

#[test]
fn commit_with_autocrlf_and_attributes_matches_git() {
    let ours = TestRepo::new();
    ours.git(&["config", "core.autocrlf", "true"]);
    ours.write("crlf.txt", "one\r\ntwo\r\n");
    ours.write("sub/.gitattributes", "*.dat -text\n");
    ours.write("sub/raw.dat", "keep\r\n");
    let theirs = copy_of(&ours);
    assert_ok(&commit(&ours, &["350", "crlf.txt", "sub"]));
    theirs.git(&["add", "-A", "--", "crlf.txt", "sub"]);
    theirs.git(&["commit", "-q", "--only", "-m", "oracle", "--", "crlf.txt", "sub"]);
    assert_eq!(tree(&ours, "HEAD"), tree(&theirs, "HEAD"));
    assert_eq!(ours.git(&["show", "HEAD:crlf.txt"]), "one\ntwo\n");
    assert_eq!(status(&ours), status(&theirs));
}

#[test]
fn commit_signs_through_git_when_commit_gpgsign_is_set() {
    let repo = TestRepo::new();
    let gpg = repo.home().join("fake-gpg");
    std::fs::write(
        &gpg,
        "#!/bin/sh\ncat >/dev/null\necho >&2\necho '[GNUPG:] SIG_CREATED D 1 8 00 1773695483 ABCDEF' >&2\n\
         printf -- '-----BEGIN PGP SIGNATURE-----\\n\\nZmFrZQ==\\n-----END PGP SIGNATURE-----\\n'\n",
    )
    .expect("write");
    std::fs::set_permissions(&gpg, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    repo.git(&["config", "commit.gpgSign", "true"]);
    repo.git(&["config", "user.signingKey", "ABCDEF"]);
    repo.git(&["config", "gpg.program", gpg.to_str().expect("utf8")]);
    repo.write("README.md", "# signed\n");
    let out = commit(&repo, &["350", "-m", "task 350: signed", "README.md"]);
    assert_ok(&out);
    let raw = repo.git(&["cat-file", "commit", "HEAD"]);
    assert!(raw.contains("\ngpgsig -----BEGIN PGP SIGNATURE-----"), "{raw}");
    assert!(raw.ends_with(&format!("task 350: signed\n\nSession: {}\n", crate::support::SESSION)), "{raw}");
    // A signing failure commits nothing.
    std::fs::write(&gpg, "#!/bin/sh\necho 'no secret key' >&2\nexit 2\n").expect("write");
    repo.write("README.md", "# unsigned\n");
    let before = everything(&repo);
    let out = commit(&repo, &["350", "README.md"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(stderr(&out).contains("gpg"), "{}", render(&out));
    assert_eq!(everything(&repo), before);
}

#[test]
fn commit_respects_core_filemode_false_like_git() {
    let ours = TestRepo::new();
    ours.git(&["config", "core.fileMode", "false"]);
    set_exec(&ours, "README.md", true);
    ours.write("README.md", "# mode ignored, content not\n");
    ours.write("tool.sh", "#!/bin/sh\n");
    set_exec(&ours, "tool.sh", true);
    let theirs = copy_of(&ours);
    assert_ok(&commit(&ours, &["350", "README.md", "tool.sh"]));
    theirs.git(&["add", "-A", "--", "README.md", "tool.sh"]);
    theirs.git(&["commit", "-q", "--only", "-m", "oracle", "--", "README.md", "tool.sh"]);
    assert_eq!(tree(&ours, "HEAD"), tree(&theirs, "HEAD"));
    assert_eq!(ours.git(&["ls-files", "-s"]), theirs.git(&["ls-files", "-s"]));
}

#[test]
fn commit_refuses_a_sparse_index() {
    let repo = TestRepo::new();
    repo.write("other/x.txt", "outside the cone\n");
    repo.git(&["add", "other"]);
    repo.git(&["commit", "-q", "-m", "other"]);
    repo.git(&["sparse-checkout", "set", "--cone", "--sparse-index", "specs"]);
    repo.write("README.md", "# sparse\n");
    let before = everything(&repo);
    let out = commit(&repo, &["350", "README.md"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(stderr(&out).contains("sparse index"), "{}", render(&out));
    assert_eq!(everything(&repo), before);
}

#[test]
fn commit_refuses_a_ledger_file_that_does_not_parse() {
    let repo = TestRepo::new();
    repo.write("specs/state.json", "{\n  \"active_projects\": [\n");
    repo.write("README.md", "# x\n");
    let before = everything(&repo);
    let out = commit(&repo, &["350", "README.md", "specs/state.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
    assert!(stderr(&out).contains("specs/state.json:3:0: invalid JSON"), "{}", render(&out));
    assert_eq!(everything(&repo), before);
}
