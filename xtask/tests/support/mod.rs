//! Shared support for the binary's integration tests: a temporary git repository with a small
//! ledger, and a hermetic command runner (cleared environment, fixed clock and identity).
#![allow(dead_code)]

/// A scripted Anthropic API on 127.0.0.1 for the Claude Code end-to-end tests.
pub mod anthropic_stub;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fixed time every test runs at.
pub const NOW: &str = "2026-03-16T21:11:23Z";
/// The fixed session id every test runs with (unless it overrides it).
pub const SESSION: &str = "sess_1773695483_a1b2c3";

/// A state.json with quirks seen in real ledgers: unknown top-level keys, an unknown status,
/// bare-string artifacts, `lean4`, a date-only timestamp.
pub const STATE: &str = r#"{
  "metadata": {
    "generated_at": "2026-01-20T20:55:08.000000",
    "total_tasks": 3,
    "last_sync": "2026-03-16T20:00:00Z"
  },
  "active_projects": [
    {
      "project_number": 352,
      "project_name": "odd_legacy_task",
      "status": "ready_for_review",
      "language": "lean4",
      "created": "2026-03-01",
      "artifacts": [
        "specs/352_odd_legacy_task/reports/research-001.md"
      ]
    },
    {
      "project_number": 351,
      "project_name": "second_feature",
      "status": "planned",
      "language": "general",
      "description": "Another feature, édition spéciale",
      "created": "2026-03-10T10:00:00Z",
      "last_updated": "2026-03-12T10:00:00Z"
    },
    {
      "project_number": 350,
      "project_name": "add_feature",
      "status": "planned",
      "language": "general",
      "priority": "high",
      "description": "Add the feature.",
      "created": "2026-03-10T09:00:00Z",
      "last_updated": "2026-03-12T09:00:00Z",
      "session_id": "sess_1773300000_abcdef",
      "artifacts": [
        {
          "path": "specs/350_add_feature/plans/implementation-001.md",
          "type": "plan",
          "summary": "Three phases"
        }
      ],
      "planned": "2026-03-12T09:00:00Z"
    }
  ],
  "completed_projects": [],
  "next_project_number": 353,
  "repository_health": {
    "status": "good"
  }
}
"#;

/// The matching TODO.md.
pub const TODO: &str = "---
next_project_number: 353
task_counts:
  active: 3
  total: 3
---

# TODO

## Tasks

### 352. Odd legacy task
- **Effort**: TBD
- **Status**: [READY FOR REVIEW]
- **Language**: lean4

**Description**: Legacy entry.

---

### 351. Second feature
- **Effort**: 1 hour
 **Status**: [PLANNED] (waits for 350)
- **Language**: general

**Description**: Another feature, édition spéciale

---

### 350. Add feature
- **Effort**: 2 hours
- **Status**: [PLANNED]
- **Language**: general
- **Priority**: high
- **Plan**: [implementation-001.md](specs/350_add_feature/plans/implementation-001.md)

**Description**: Add the feature.

---
";

/// Task 350's plan: three phases.
pub const PLAN_350: &str = "# Implementation Plan: Task #350

- **Task**: 350 - add_feature
- **Status**: [PLANNED]
- **Effort**: 2 hours
- **Type**: general

## Overview

Add the feature in three steps.

## Implementation Phases

### Phase 1: Scaffold [NOT STARTED]

- **Goal:** create the module

---

### Phase 2: Core logic [NOT STARTED]

- **Goal:** write it

---

### Phase 3: Tests [NOT STARTED]

- **Goal:** test it
";

/// Task 351's plan: two phases, header without the dash.
pub const PLAN_351: &str = "# Implementation Plan: Second feature

**Status**: [PLANNED]

## Phases

### Phase 1: Only part [NOT STARTED]

### Phase 2: Other part [NOT STARTED]
";

/// A temporary git repository holding the ledger above, committed once.
pub struct TestRepo {
    dir: tempfile::TempDir,
}

impl TestRepo {
    /// An empty repository (git init, no commit, no ledger).
    pub fn empty() -> TestRepo {
        let dir = tempfile::Builder::new().prefix("postflight-test-").tempdir().expect("tempdir");
        let repo = TestRepo { dir };
        std::fs::create_dir_all(repo.home()).expect("home");
        repo.git(&["init", "-q", "-b", "main"]);
        // The tests' HOME (scripts, stubs, recorded delegations) lives in the work tree but is
        // nobody's project file: git does not see it, as it would not see a real HOME.
        let exclude = repo.path().join(".git/info/exclude");
        let mut text = std::fs::read_to_string(&exclude).unwrap_or_default();
        text.push_str("/.home-for-tests/\n");
        std::fs::write(&exclude, text).expect("info/exclude");
        repo
    }

    /// A repository with the sample ledger, plans for 350 and 351, a .gitignore, and one commit.
    pub fn new() -> TestRepo {
        let repo = TestRepo::empty();
        repo.write("specs/state.json", STATE);
        repo.write("specs/TODO.md", TODO);
        repo.write("specs/350_add_feature/plans/implementation-001.md", PLAN_350);
        repo.write("specs/351_second_feature/plans/implementation-001.md", PLAN_351);
        repo.write(".gitignore", "/target\n.return-meta.json\n.postflight-pending\n.postflight-loop-guard\n*.log\n");
        repo.write("README.md", "# sample project\n");
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "initial"]);
        repo
    }

    /// Adds the user's own work in progress that no task commit may take: a staged edit of
    /// `docs/guide.md` (which must be tracked), an unstaged edit of `README.md` and an untracked
    /// `scratch.txt`.
    pub fn add_user_work(&self) {
        self.write("docs/guide.md", "# Guide\n\nStaged by the user.\n");
        self.git(&["add", "docs/guide.md"]);
        self.write("README.md", "# sample project\n\nUnstaged edit of the user.\n");
        self.write("scratch.txt", "untracked notes\n");
    }

    /// Task `n`'s entry in `specs/state.json`.
    pub fn state_entry(&self, n: u64) -> serde_json::Value {
        let state: serde_json::Value =
            serde_json::from_str(&self.read("specs/state.json")).expect("state.json is JSON");
        state["active_projects"]
            .as_array()
            .expect("active_projects is an array")
            .iter()
            .find(|e| e["project_number"] == n)
            .unwrap_or_else(|| panic!("task {n} in state.json"))
            .clone()
    }

    /// The work tree root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The fake HOME (inside the temp dir, so nothing of the real user leaks in).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join(".home-for-tests")
    }

    /// A file's absolute path.
    pub fn file(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    /// Writes a file (creating directories).
    pub fn write(&self, rel: &str, content: &str) {
        let p = self.file(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }

    /// Reads a file as text.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Whether a file exists.
    pub fn exists(&self, rel: &str) -> bool {
        self.file(rel).exists()
    }

    /// A hermetic command for `program` run in the repository.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.path()).env_clear();
        cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_AUTHOR_DATE", "2026-03-16T21:11:23Z")
            .env("GIT_COMMITTER_NAME", "Test Committer")
            .env("GIT_COMMITTER_EMAIL", "committer@example.com")
            .env("GIT_COMMITTER_DATE", "2026-03-16T21:11:23Z")
            .env("XTASK_NOW", NOW)
            .env("XTASK_SESSION_ID", SESSION)
            .env("NO_COLOR", "1");
        cmd
    }

    /// A hermetic `xtask` command.
    pub fn xtask(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(args);
        cmd
    }

    /// Runs `xtask` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.xtask(args).output().expect("run xtask")
    }

    /// Runs git (hermetic) and returns stdout; panics on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let out = self.command("git").args(args).output().expect("run git");
        assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf8")
    }

    /// Every file's bytes under the work tree (except .git), for "nothing changed" checks.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![self.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("ls") {
                let e = e.expect("entry");
                let p = e.path();
                let name = e.file_name();
                if name == ".git" || name == ".home-for-tests" {
                    continue;
                }
                if e.file_type().expect("type").is_dir() {
                    stack.push(p);
                } else {
                    out.push((
                        p.strip_prefix(self.path()).expect("prefix").to_path_buf(),
                        std::fs::read(&p).expect("read"),
                    ));
                }
            }
        }
        out.sort();
        out
    }
}

/// Renders an output as `stdout`, `stderr` and the exit code, for assertion messages.
pub fn render(out: &Output) -> String {
    format!(
        "[exit: {:?}]\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The switch that turns every skip into a failure (set in `.ci/run`).
pub const ENV_REQUIRE_ALL: &str = "POSTFLIGHT_REQUIRE_ALL";

/// Says loudly that a test did not run for want of `what`; under `POSTFLIGHT_REQUIRE_ALL=1`
/// that is a failure instead.
pub fn skipped(what: &str) {
    if std::env::var(ENV_REQUIRE_ALL).is_ok_and(|v| v == "1") {
        panic!("{ENV_REQUIRE_ALL}=1 and a required test could not run: {what}");
    }
    eprintln!("SKIPPED: {what}");
}

/// The shared fixtures directory (`../shared/fixtures` from the project root), when present.
pub fn fixtures() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/proofchecker");
    if p.is_dir() {
        Some(p)
    } else {
        skipped("../shared/fixtures/proofchecker not found; real-data tests did not run");
        None
    }
}

/// The sibling-format samples (`../shared/fixtures/siblings`), read in place, when present.
pub fn siblings() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/siblings");
    if p.is_dir() {
        Some(p)
    } else {
        skipped("../shared/fixtures/siblings not found; the sibling-format sample tests did not run");
        None
    }
}

/// Kills a process group with SIGKILL. Never shell out to `kill -9 -<pgid>`: procps `kill`
/// misparses the negative number and signals every process on the machine (`kill -1`).
/// The pgid is checked to be a plain number above 1 before anything is sent.
pub fn kill_process_group(pgid: &str) {
    let pgid = pgid.trim();
    let valid = pgid.parse::<u32>().is_ok_and(|n| n > 1);
    assert!(valid, "refusing to kill process group {pgid:?}");
    let _ = Command::new("kill").args(["-s", "KILL", "--", &format!("-{pgid}")]).status();
}

/// Polls `ready` every 20 ms until it holds or `limit` has passed; whether it held. For waits
/// on something observable (a file, a process, a status); a fixed sleep is only for time itself.
pub fn poll(limit: std::time::Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if ready() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// [`poll`], panicking with `failure` when `ready` never held within `limit`.
pub fn wait_until(limit: std::time::Duration, failure: &str, ready: impl FnMut() -> bool) {
    assert!(poll(limit, ready), "{failure}");
}

/// [`wait_until`] with the message "timed out waiting for {what}".
pub fn wait_for(limit: std::time::Duration, what: &str, ready: impl FnMut() -> bool) {
    wait_until(limit, &format!("timed out waiting for {what}"), ready);
}
