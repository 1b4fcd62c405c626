//! `xtask implement|status|check <PATH>` on spec directories in each dialect (seed 003's emoji,
//! its mis-decoded copy, Kiro nested with optional tasks and localised labels, Spec Kit phases
//! with `[P]`), made for these tests in the shapes of `../shared/fixtures/siblings/` (which are
//! read in place), with a scripted agent.
//!
//! Done when, per dialect: a full run moves the markers and makes one commit per task with the
//! trailers, every other line byte for byte as it was; a failing task stops the run (exit 4) and
//! the same command resumes at it; a killed run resumes its task; missing prerequisites exit 2
//! and change nothing; `check` finds what is wrong and `--fix` repairs the mis-decoded markers.

use std::time::Duration;

use crate::support::{self, TestRepo, SESSION};

/// The scripted agent: records its call, hangs once when `$HOME/hang-<id>` exists, writes
/// `src/task-<id>.txt`, and reports `failed` while `$HOME/fail-<id>` exists, else implemented.
const AGENT: &str = r#"#!/bin/sh
id="$XTASK_TASK_ID"
echo "$id" >> "$HOME/calls"
printf '%s' "$(cat)" > "$HOME/prompt-$id"
if [ -f "$HOME/hang-$id" ]; then rm -f "$HOME/hang-$id"; echo $$ > "$HOME/agent.pid"; sleep 60; fi
mkdir -p src && echo "work of task $id" > "src/task-$id.txt"
if [ -f "$HOME/fail-$id" ]; then
  printf '{"status":"failed","summary":"could not","errors":[{"message":"the tests do not compile"}]}' > "$XTASK_METADATA_FILE"
  exit 0
fi
printf '{"status":"implemented","summary":"did %s"}' "$id" > "$XTASK_METADATA_FILE"
"#;

const AGENT_CMD: &str = "sh \"$HOME/agent.sh\"";

const EMOJI_TASKS: &str = "# Implementation Plan

- [✅] 1. Create the digest tables
  - Add migrations for `digest_items`
  - _Requirements: 1.1_
  - Note: used a partial index instead of a status column

- [ ] 2. Collect events into digest items
  - [ ] 2.1 Subscribe the collector to the event bus
    - _Requirements: 2.1_
  - [🚧] 2.2 Skip users whose frequency is \"off\"
    - _Requirements: 1.2_

- [⏭️] 3. Add a preview endpoint
  - Skipped: the template preview tool covers it

- [ ] 4. Make sending restart-safe
  - _Requirements: 2.2_
";

const EMOJI_REQUIREMENTS: &str = "# Requirements Document

## Requirements

### Requirement 1

**User Story:** As a user, I want to choose a digest frequency, so that I control my inbox.

#### Acceptance Criteria

1. WHEN a user selects a frequency THEN the system SHALL store it
2. WHEN the frequency is \"off\" THEN the system SHALL send nothing

### Requirement 2

#### Acceptance Criteria

1. WHEN a window closes THEN the system SHALL send one email
2. WHEN the worker restarts THEN the system SHALL resume from the last closed window
";

const KIRO_TASKS: &str = "# 実装タスクリスト

- [x] 1. Set up the retry module
  - Create `src/retry/mod.rs` with `Backoff`
  - _要件: 1.1_

- [ ] 2. Implement the backoff schedule
  - [ ] 2.1 Implement `Backoff::delay` with cap and jitter
    - Take the random source as a parameter
    - _Requirements: 1.2_

  - [ ]* 2.2 Write property test for the backoff bound
    - **Property 1: Delay never exceeds the cap plus jitter**
    - **Validates: Requirements 1.2**

  - [ ] 2.3 Honour `Retry-After` on 429 responses
    - _需求：1.3、2.1_


- [ ] 3. Checkpoint - Ensure all tests pass
   - Run the whole test suite and ask the user about anything unclear
";

const KIRO_REQUIREMENTS: &str = "# Requirements Document

## Introduction

Retries for webhook deliveries.

## Requirements

### Requirement 1: Retry failed deliveries with backoff

**User Story:** As an integrator, I want retries, so that an outage loses nothing.

#### Acceptance Criteria

1. WHEN a Delivery_Attempt times out, THE Webhook_Dispatcher SHALL schedule another attempt
2. THE Retry_Policy SHALL set the delay before attempt n to min(base * 2^(n-1), cap) plus jitter
3. IF a 429 response carries a Retry-After header, THEN THE Webhook_Dispatcher SHALL wait at least that long

---

### Requirement 2: Keep events that cannot be delivered

#### Acceptance Criteria

1. WHEN a delivery has failed max_attempts times, THE Webhook_Dispatcher SHALL park the event
";

const SPECKIT_TASKS: &str = "---
description: \"Task list for Offline Draft Sync\"
---

# Tasks: Offline Draft Sync

## Format: `[ID] [P?] [Story] Description`

- **[P]**: safe to run alongside other [P] tasks

## Phase 1: Setup (Shared Infrastructure)

- [X] T001 Create `frontend/src/offline/` per plan.md
- [ ] T002 [P] Configure vitest in frontend/vitest.config.ts

**Checkpoint**: setup done

---

## Phase 2: User Story 1 - Edit a draft while offline (Priority: P1) 🎯 MVP

- [ ] T003 [P] [US1] Implement the journal store in frontend/src/offline/journal.ts
- [ ] T004 [US1] Save editor changes every 2 s in frontend/src/offline/autosave.ts (depends on T003)

## Parallel Example: User Story 1

```bash
Task: \"Implement the journal store in frontend/src/offline/journal.ts\"
- [ ] T999 quoted in a fence, not a task
```
";

const SPECKIT_SPEC: &str = "# Feature Specification: Offline Draft Sync

**Feature Branch**: `003-offline-draft-sync`

### User Story 1 - Edit a draft while offline (Priority: P1)

A writer keeps typing without a connection.

### Functional Requirements

- **FR-001**: System MUST save draft edits to local storage while offline
";

/// Which dialect a test repository holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Emoji,
    Mojibake,
    Kiro,
    SpecKit,
}

/// Seed 003's markers as the seed itself spells them (UTF-8 read as Mac OS Roman).
fn misdecode(text: &str) -> String {
    text.replace("[✅]", "[\u{201A}\u{FA}\u{D6}]")
        .replace("[🚧]", "[\u{F8FF}\u{FC}\u{F6}\u{DF}]")
        .replace("[⏭️]", "[\u{201A}\u{E8}\u{2260}\u{D4}\u{220F}\u{E8}]")
}

impl Dialect {
    /// The spec directory, repository-relative.
    fn dir(self) -> &'static str {
        match self {
            Dialect::Emoji | Dialect::Mojibake => "specs/notification-digest",
            Dialect::Kiro => ".kiro/specs/webhook-retry-policy",
            Dialect::SpecKit => "specs/003-offline-draft-sync",
        }
    }

    fn name(self) -> &'static str {
        self.dir().rsplit('/').next().expect("a name")
    }

    fn tasks(self) -> String {
        match self {
            Dialect::Emoji => EMOJI_TASKS.to_owned(),
            Dialect::Mojibake => misdecode(EMOJI_TASKS),
            Dialect::Kiro => KIRO_TASKS.to_owned(),
            Dialect::SpecKit => SPECKIT_TASKS.to_owned(),
        }
    }

    /// The tasks a full run takes, in order.
    fn queue(self) -> &'static [&'static str] {
        match self {
            Dialect::Emoji | Dialect::Mojibake => &["2.1", "2.2", "2", "4"],
            Dialect::Kiro => &["2.1", "2.3", "2", "3"],
            Dialect::SpecKit => &["T002", "T003", "T004"],
        }
    }

    /// tasks.md after a full run: exactly these edits, every other byte as it was.
    fn done(self) -> String {
        let note = |pad: &str, id: &str| format!("{pad}- Note (2026-03-16, session {SESSION}): did {id}\n");
        match self {
            Dialect::Emoji | Dialect::Mojibake => {
                let done = EMOJI_TASKS
                    .replace(
                        "- [ ] 2. Collect events into digest items\n",
                        &format!("- [✅] 2. Collect events into digest items\n{}", note("  ", "2")),
                    )
                    .replace(
                        "  - [ ] 2.1 Subscribe the collector to the event bus\n    - _Requirements: 2.1_\n",
                        &format!(
                            "  - [✅] 2.1 Subscribe the collector to the event bus\n    - _Requirements: 2.1_\n{}",
                            note("    ", "2.1")
                        ),
                    )
                    .replace(
                        "  - [🚧] 2.2 Skip users whose frequency is \"off\"\n    - _Requirements: 1.2_\n",
                        &format!(
                            "  - [✅] 2.2 Skip users whose frequency is \"off\"\n    - _Requirements: 1.2_\n{}",
                            note("    ", "2.2")
                        ),
                    )
                    .replace(
                        "- [ ] 4. Make sending restart-safe\n  - _Requirements: 2.2_\n",
                        &format!("- [✅] 4. Make sending restart-safe\n  - _Requirements: 2.2_\n{}", note("  ", "4")),
                    );
                if self == Dialect::Mojibake {
                    // Only the tasks run get the real emoji; 1 and 3 keep their bytes.
                    done.replace("- [✅] 1.", "- [\u{201A}\u{FA}\u{D6}] 1.")
                        .replace("- [⏭️] 3.", "- [\u{201A}\u{E8}\u{2260}\u{D4}\u{220F}\u{E8}] 3.")
                } else {
                    done
                }
            }
            Dialect::Kiro => KIRO_TASKS
                .replace("- [ ] 2. Implement", "- [x] 2. Implement")
                .replace("- [ ] 2.1 Implement", "- [x] 2.1 Implement")
                .replace("- [ ] 2.3 Honour", "- [x] 2.3 Honour")
                .replace("- [ ] 3. Checkpoint", "- [x] 3. Checkpoint"),
            Dialect::SpecKit => SPECKIT_TASKS
                .replace("- [ ] T002", "- [X] T002")
                .replace("- [ ] T003", "- [X] T003")
                .replace("- [ ] T004", "- [X] T004"),
        }
    }

    /// A repository holding the spec directory and the agent, committed once.
    fn repo(self) -> TestRepo {
        let repo = TestRepo::empty();
        let dir = self.dir();
        match self {
            Dialect::SpecKit => {
                repo.write(&format!("{dir}/spec.md"), SPECKIT_SPEC);
                repo.write(&format!("{dir}/plan.md"), "# Implementation Plan: Offline Draft Sync\n");
            }
            Dialect::Kiro => {
                repo.write(&format!("{dir}/requirements.md"), KIRO_REQUIREMENTS);
                repo.write(&format!("{dir}/design.md"), "# Design Document\n\n## Overview\n\nA persisted schedule.\n");
            }
            Dialect::Emoji | Dialect::Mojibake => {
                repo.write(&format!("{dir}/requirements.md"), EMOJI_REQUIREMENTS);
                repo.write(&format!("{dir}/design.md"), "# Design Document\n\n## Overview\n\nA digest table.\n");
            }
        }
        repo.write(&format!("{dir}/tasks.md"), &self.tasks());
        repo.write("README.md", "# sample project\n");
        repo.write(".home-for-tests/agent.sh", AGENT);
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "initial"]);
        repo
    }
}

const ALL: [Dialect; 4] = [Dialect::Emoji, Dialect::Mojibake, Dialect::Kiro, Dialect::SpecKit];

fn implement(repo: &TestRepo, d: Dialect, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["implement", d.dir(), "--agent", AGENT_CMD];
    args.extend_from_slice(extra);
    repo.run(&args)
}

fn tasks_md(repo: &TestRepo, d: Dialect) -> String {
    repo.read(&format!("{}/tasks.md", d.dir()))
}

/// The subjects of the commits after the initial one, oldest first.
fn subjects(repo: &TestRepo) -> Vec<String> {
    let mut s: Vec<String> = repo.git(&["log", "--format=%s"]).lines().map(str::to_owned).collect();
    s.pop();
    s.reverse();
    s
}

#[test]
fn implement_spec_dir_each_dialect_full_run_one_commit_per_task() {
    for d in ALL {
        let repo = d.repo();
        let out = implement(&repo, d, &["--json"]);
        assert_eq!(out.status.code(), Some(0), "{d:?}: {}", support::render(&out));
        assert_eq!(tasks_md(&repo, d), d.done(), "{d:?}: tasks.md after the run");
        let want: Vec<String> = d.queue().iter().map(|id| format!("spec {}: task {id} complete", d.name())).collect();
        assert_eq!(subjects(&repo), want, "{d:?}");
        // Each commit: the trailers, the task's own file and tasks.md, nothing else.
        for (k, id) in d.queue().iter().enumerate() {
            let rev = format!("HEAD~{}", d.queue().len() - 1 - k);
            let body = repo.git(&["log", "-1", "--format=%B", &rev]);
            assert!(body.contains(&format!("\nSession: {SESSION}\n")), "{d:?} {id}: {body}");
            assert!(body.contains(&format!("\nSpec-Task: {id}\n")), "{d:?} {id}: {body}");
            let files = repo.git(&["show", "--name-only", "--format=", &rev]);
            let mut files: Vec<&str> = files.lines().collect();
            files.sort();
            let tasks = format!("{}/tasks.md", d.dir());
            let own = format!("src/task-{id}.txt");
            let mut want = vec![own.as_str(), tasks.as_str()];
            want.sort();
            assert_eq!(files, want, "{d:?} task {id}");
        }
        // Nothing is left uncommitted but the run's transient files, and the run is over.
        assert_eq!(repo.git(&["status", "--porcelain"]), "", "{d:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(json["tasks"].as_array().map(Vec::len), Some(d.queue().len()));
        assert!(!repo.exists(&format!("{}/.postflight-run-tasks/.postflight-pending", d.dir())));
        // A second run finds nothing to do and commits nothing.
        let again = implement(&repo, d, &[]);
        assert_eq!(again.status.code(), Some(0), "{}", support::render(&again));
        assert_eq!(subjects(&repo).len(), d.queue().len());
    }
}

#[test]
fn implement_spec_dir_commits_only_the_tasks_own_lines_of_a_shared_tasks_md() {
    // While task 2.1 runs, someone else edits tasks.md too (another session, the user): the title
    // line, which no task owns, and a detail line of task 4. Every task's commit holds its own
    // lines only; the other edits stay in the work tree, uncommitted, until their owner commits.
    let d = Dialect::Emoji;
    let repo = d.repo();
    let tasks = format!("{}/tasks.md", d.dir());
    let foreign = format!(
        "if [ \"$XTASK_TASK_ID\" = 2.1 ]; then sed -i -e 's/^# Implementation Plan$/# Implementation Plan (edited elsewhere)/' \
         -e 's/^  - _Requirements: 2.2_$/  - _Requirements: 2.2_ (checked elsewhere)/' '{tasks}'; fi\n"
    );
    repo.write(
        ".home-for-tests/agent.sh",
        &AGENT.replacen("id=\"$XTASK_TASK_ID\"\n", &format!("id=\"$XTASK_TASK_ID\"\n{foreign}"), 1),
    );
    let out = implement(&repo, d, &["--task", "2.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::render(&out));
    let committed = repo.git(&["show", &format!("HEAD:{tasks}")]);
    assert!(committed.starts_with("# Implementation Plan\n"), "the title edit is no task's: {committed}");
    assert!(!committed.contains("(checked elsewhere)"), "task 4's line is not task 2.1's: {committed}");
    let work = tasks_md(&repo, d);
    assert!(work.contains("(edited elsewhere)") && work.contains("(checked elsewhere)"), "{work}");
    // Task 2.1's own marker moved in the commit; the commit held nothing else of tasks.md.
    let diff = repo.git(&["diff", "HEAD~1", "HEAD", "--", &tasks]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---"))
        .collect();
    assert!(changed.iter().all(|l| l.contains("2.1")), "only task 2.1's lines: {changed:?}");
    assert_eq!(repo.git(&["status", "--porcelain", "--", &tasks]).trim(), format!("M {tasks}"));
    // Task 4 then commits its own lines, the detail line edited elsewhere among them; the title
    // still belongs to nobody.
    let out = implement(&repo, d, &["--task", "4"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::render(&out));
    let committed = repo.git(&["show", &format!("HEAD:{tasks}")]);
    assert!(committed.starts_with("# Implementation Plan\n"), "{committed}");
}

#[test]
fn implement_spec_dir_prompt_carries_the_task_its_requirements_and_the_design() {
    let repo = Dialect::Kiro.repo();
    let out = implement(&repo, Dialect::Kiro, &["--task", "2.3"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::render(&out));
    assert_eq!(subjects(&repo), ["spec webhook-retry-policy: task 2.3 complete"]);
    let prompt = std::fs::read_to_string(repo.home().join("prompt-2.3")).expect("prompt");
    assert!(prompt.contains("  - [-] 2.3 Honour `Retry-After` on 429 responses\n    - _需求：1.3、2.1_\n"), "{prompt}");
    assert!(prompt.contains("- 1.3: IF a 429 response carries a Retry-After header"), "{prompt}");
    assert!(prompt.contains("- 2.1: WHEN a delivery has failed max_attempts times"), "{prompt}");
    assert!(prompt.contains("Design document (read it before you start): .kiro/specs/webhook-retry-policy/design.md"));
    assert!(prompt.contains(".postflight-run-tasks/.return-meta.json"), "{prompt}");
    // --include-optional takes the optional 2.2 too.
    let out = implement(&repo, Dialect::Kiro, &["--include-optional", "--max-tasks", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::render(&out));
    assert_eq!(
        subjects(&repo)[1..],
        ["spec webhook-retry-policy: task 2.1 complete", "spec webhook-retry-policy: task 2.2 complete"]
    );
    assert!(tasks_md(&repo, Dialect::Kiro).contains("  - [x]* 2.2 Write property test"));
}

#[test]
fn implement_spec_dir_failing_task_stops_and_the_same_command_resumes_at_it() {
    for d in [Dialect::Kiro, Dialect::Emoji, Dialect::SpecKit] {
        let repo = d.repo();
        let failing = d.queue()[1];
        std::fs::write(repo.home().join(format!("fail-{failing}")), "").expect("flag");
        let out = implement(&repo, d, &[]);
        assert_eq!(out.status.code(), Some(4), "{d:?}: {}", support::render(&out));
        let name = d.name();
        let first = d.queue()[0];
        assert_eq!(
            subjects(&repo),
            [format!("spec {name}: task {first} complete"), format!("spec {name}: task {failing} failed")]
        );
        let text = tasks_md(&repo, d);
        let note = format!(
            "- Failed (2026-03-16, session {SESSION}): the agent reported `failed`: the tests do not compile\n"
        );
        assert!(text.contains(&note), "{d:?}: {text}");
        match d {
            Dialect::Kiro => {
                assert!(text.contains("  - [ ] 2.3 Honour") && text.contains("- [ ] 3. Checkpoint"), "{text}")
            }
            Dialect::Emoji => assert!(text.contains("  - [❌] 2.2 Skip") && text.contains("- [ ] 4. Make"), "{text}"),
            _ => assert!(text.contains("- [ ] T003 [P]") && text.contains("- [ ] T004"), "{text}"),
        }
        let status = repo.run(&["status", d.dir(), "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
        let mark = status["tasks"].as_array().expect("tasks").iter().find(|t| t["id"] == failing).expect("task")
            ["mark"]
            .clone();
        assert_eq!(mark, "failed", "{d:?}");
        // The failed commit holds what the agent changed and the task's lines.
        let files = repo.git(&["show", "--name-only", "--format=", "HEAD"]);
        assert!(files.contains(&format!("src/task-{failing}.txt")), "{files}");
        // Fixed: the same command resumes at the failed task and finishes the queue.
        std::fs::remove_file(repo.home().join(format!("fail-{failing}"))).expect("rm");
        let out = implement(&repo, d, &[]);
        assert_eq!(out.status.code(), Some(0), "{d:?}: {}", support::render(&out));
        let calls = std::fs::read_to_string(repo.home().join("calls")).expect("calls");
        let mut want: Vec<&str> = vec![first, failing];
        want.extend(&d.queue()[1..]);
        assert_eq!(calls.lines().collect::<Vec<_>>(), want, "{d:?}");
        assert_eq!(subjects(&repo).len(), d.queue().len() + 1);
        let text = tasks_md(&repo, d);
        assert!(text.contains(&note), "the failure note stays: {text}");
    }
}

#[test]
fn implement_spec_dir_killed_run_resumes_the_task_left_in_progress() {
    let d = Dialect::Kiro;
    let repo = d.repo();
    std::fs::write(repo.home().join("hang-2.1"), "").expect("flag");
    let mut child = repo
        .xtask(&["implement", d.dir(), "--agent", AGENT_CMD])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid_file = repo.home().join("agent.pid");
    support::wait_for(Duration::from_secs(30), "the agent to start", || pid_file.exists());
    let marker_path = repo.file(&format!("{}/.postflight-run-tasks/.postflight-pending", d.dir()));
    let marker: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&marker_path).expect("marker")).expect("marker json");
    child.kill().expect("SIGKILL xtask");
    let _ = child.wait();
    support::kill_process_group(&marker["agent_pgid"].to_string());
    assert!(tasks_md(&repo, d).contains("  - [-] 2.1 Implement"), "{}", tasks_md(&repo, d));
    assert!(marker_path.exists());
    let status = repo.run(&["status", d.dir()]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("interrupted"), "{}", support::render(&status));
    let out = implement(&repo, d, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::render(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["resumed"], true);
    assert_eq!(json["tasks"][0]["id"], "2.1");
    assert_eq!(json["tasks"][0]["resumed"], true);
    assert_eq!(tasks_md(&repo, d), d.done());
    assert_eq!(subjects(&repo).len(), 4);
    assert!(!marker_path.exists());
}

#[test]
fn implement_spec_dir_interrupted_by_sigint_exits_130_says_how_to_resume_and_resumes() {
    let d = Dialect::Kiro;
    let repo = d.repo();
    std::fs::write(repo.home().join("hang-2.1"), "").expect("flag");
    let child = repo
        .xtask(&["implement", d.dir(), "--agent", AGENT_CMD])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid_file = repo.home().join("agent.pid");
    support::wait_for(Duration::from_secs(30), "the agent to start", || pid_file.exists());
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    assert!(pid > 1);
    // SAFETY: kill(2) with a positive pid signals that one process (the xtask this test started).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "{}", support::render(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{}/tasks.md: interrupted; run `xtask implement {}` to resume", d.dir(), d.dir())),
        "{}",
        support::render(&out)
    );
    assert!(tasks_md(&repo, d).contains("  - [-] 2.1 Implement"), "{}", tasks_md(&repo, d));
    let out = implement(&repo, d, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::render(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!((json["tasks"][0]["id"].clone(), json["tasks"][0]["resumed"].clone()), ("2.1".into(), true.into()));
    assert_eq!(tasks_md(&repo, d), d.done());
}

#[test]
fn implement_spec_dir_missing_prerequisites_exit_2_and_change_nothing() {
    for (d, doc) in [(Dialect::Kiro, "design.md"), (Dialect::Emoji, "requirements.md"), (Dialect::SpecKit, "plan.md")] {
        let repo = d.repo();
        repo.git(&["rm", "-q", &format!("{}/{doc}", d.dir())]);
        repo.git(&["commit", "-q", "-m", "drop a document"]);
        let before = repo.snapshot();
        let head = repo.git(&["rev-parse", "HEAD"]);
        let out = implement(&repo, d, &[]);
        assert_eq!(out.status.code(), Some(2), "{d:?}: {}", support::render(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(doc) && stderr.contains("missing"), "{stderr}");
        assert_eq!(repo.snapshot(), before, "{d:?}: a refused run changed a file");
        assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);
        assert!(!repo.home().join("calls").exists(), "the agent ran");
    }
    // An unknown --task and a path that is no spec directory are refused too.
    let repo = Dialect::Kiro.repo();
    let before = repo.snapshot();
    let out = implement(&repo, Dialect::Kiro, &["--task", "9.9"]);
    assert_eq!(out.status.code(), Some(2), "{}", support::render(&out));
    let out = repo.run(&["implement", "README.md", "--agent", AGENT_CMD]);
    assert_eq!(out.status.code(), Some(2), "{}", support::render(&out));
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn check_spec_dir_finds_misdecoded_markers_and_fix_repairs_them() {
    let d = Dialect::Mojibake;
    let repo = d.repo();
    let out = repo.run(&["check", d.dir(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", support::render(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let findings = json["findings"].as_array().expect("findings");
    let bad: Vec<&serde_json::Value> = findings.iter().filter(|f| f["rule"] == "mis-decoded-marker").collect();
    assert_eq!(bad.len(), 3, "{findings:?}");
    assert!(bad.iter().all(|f| f["fixable"] == true));
    assert_eq!(bad.iter().map(|f| f["task"].as_str().unwrap_or_default()).collect::<Vec<_>>(), ["1", "2.2", "3"]);
    // --dry-run says what --fix would repair and writes nothing; --staged is not for a PATH;
    // implement's state.json-only flags are refused on a PATH, never ignored.
    let before = repo.snapshot();
    let out = repo.run(&["check", d.dir(), "--fix", "--dry-run", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::render(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!((json["would_fix"].clone(), json["fixed"].clone()), (true.into(), false.into()), "{json}");
    assert!(repo.snapshot() == before, "--dry-run wrote");
    for args in [
        vec!["check", d.dir(), "--staged"],
        vec!["implement", d.dir(), "--agent", "touch ran", "--dry-run"],
        vec!["implement", d.dir(), "--agent", "touch ran", "--no-commit", "--max-iterations", "2"],
    ] {
        let out = repo.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{}", support::render(&out));
        assert!(repo.snapshot() == before, "{args:?} changed a file");
    }
    let out = repo.run(&["check", d.dir(), "--fix"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::render(&out));
    assert_eq!(tasks_md(&repo, d), EMOJI_TASKS, "--fix gives the emoji file byte for byte");
    let out = repo.run(&["check", d.dir()]);
    assert_eq!(out.status.code(), Some(0), "{}", support::render(&out));

    // The other rules, on a file that breaks them.
    let repo = Dialect::Kiro.repo();
    let broken = KIRO_TASKS
        .replace("- [x] 1. Set up", "- [~] 1. Set up")
        .replace("- [ ] 3. Checkpoint", "- [ ] 2.1 Checkpoint")
        .replace("_要件: 1.1_", "_要件: 1.1, 7.2_")
        .replace("- [ ] 2. Implement", "- [x] 2. Implement");
    repo.write(".kiro/specs/webhook-retry-policy/tasks.md", &broken);
    let out = repo.run(&["check", Dialect::Kiro.dir(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", support::render(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rules: Vec<&str> = json["findings"].as_array().expect("f").iter().filter_map(|f| f["rule"].as_str()).collect();
    for rule in ["unknown-marker", "duplicate-id", "unknown-requirement", "parent-done-child-open"] {
        assert!(rules.contains(&rule), "{rule} not in {rules:?}");
    }
    // Refused to run on a file with a duplicate id; nothing changed.
    let before = repo.snapshot();
    let out = implement(&repo, Dialect::Kiro, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", support::render(&out));
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn status_spec_dir_counts_per_phase() {
    let repo = Dialect::SpecKit.repo();
    let out = repo.run(&["status", Dialect::SpecKit.dir(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::render(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["format"], "spec");
    assert_eq!(json["counts"], serde_json::json!({"completed": 1, "pending": 3}));
    let groups = json["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[1]["group"], "Phase 2: User Story 1 - Edit a draft while offline (Priority: P1) 🎯 MVP");
    assert_eq!(groups[1]["counts"], serde_json::json!({"pending": 2}));
    let text = repo.run(&["status", &format!("{}/tasks.md", Dialect::SpecKit.dir())]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("total: 4 task(s): 1 completed, 3 pending"), "{text}");
    // A number keeps meaning a task of specs/state.json.
    let out = repo.run(&["status", "350"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("specs/state.json does not exist"),
        "{}",
        support::render(&out)
    );
}

/// The samples of `../shared/fixtures/siblings/`, read in place through the library.
#[test]
fn spec_dir_reads_the_sibling_samples_in_place() {
    use postflight::format::{spec_dir::SpecDir, Format, Mark};
    let Some(root) = support::siblings() else { return };
    let count = |items: &[postflight::format::Item], m: Mark| items.iter().filter(|i| i.mark == m).count();
    let open = |rel: &str| {
        let s = SpecDir::new(&root, &root.join(rel));
        let bytes = std::fs::read(s.file()).expect("tasks.md");
        let items = s.items(&bytes).expect("items");
        (s, bytes, items)
    };
    let (kiro, bytes, items) = open("kiro-nested/.kiro/specs/webhook-retry-policy");
    assert_eq!(items.len(), 17);
    assert_eq!(
        (count(&items, Mark::Pending), count(&items, Mark::Completed), count(&items, Mark::InProgress)),
        (10, 5, 2)
    );
    let optional: Vec<&str> = items.iter().filter(|i| i.optional).map(|i| i.id.as_str()).collect();
    assert_eq!(optional, ["2.2", "3.3", "5.3"]);
    let dangling: Vec<_> = kiro.check(&bytes).into_iter().filter(|f| f.rule == "unknown-requirement").collect();
    assert_eq!(dangling.len(), 1, "{dangling:?}");
    assert!(dangling[0].message.contains("5.1"));

    let (flat, bytes, items) = open("kiro-flat-ccsdd/.kiro/specs/usage-csv-export");
    assert_eq!(items.len(), 12);
    assert_eq!(
        items.iter().find(|i| i.id.as_str() == "4.1").and_then(|i| i.parent.clone()).map(|p| p.to_string()),
        Some("4".into())
    );
    let f = flat.check(&bytes);
    assert!(
        f.iter().any(|f| f.rule == "parent-done-child-open" && f.task.as_ref().is_some_and(|t| t.as_str() == "3")),
        "{f:?}"
    );
    assert!(!f.iter().any(|f| f.rule == "unknown-requirement"), "{f:?}");

    let (_, _, items) = open("speckit/specs/003-offline-draft-sync");
    assert_eq!(items.len(), 24);
    assert_eq!(count(&items, Mark::Completed), 10);
    assert_eq!(items.iter().find(|i| i.id.as_str() == "T018").map(|i| i.depends_on.len()), Some(3));

    let (emoji, emoji_bytes, good) = open("seed003-emoji/notification-digest");
    let (moji, moji_bytes, bad) = open("seed003-mojibake/notification-digest");
    assert_eq!(good.len(), 12);
    assert_eq!(good, bad, "mis-decoded markers are read as what they mean");
    assert_eq!(moji.check(&moji_bytes).iter().filter(|f| f.rule == "mis-decoded-marker").count(), 9);
    assert_eq!(moji.fix(&moji_bytes).expect("fix"), emoji_bytes, "the repair is exact");
    assert!(emoji.check(&emoji_bytes).iter().all(|f| f.rule != "mis-decoded-marker"));
}

const PHASE_DOC: &str = "# Phase Plan: Rotate Session Tokens

- **Phase Doc**: phases/current/session-tokens_plan.md
- **Status**: [NOT STARTED]

## Implementation Phases

### Phase 1: Token schema [NOT STARTED]

- **Goal:** Store token families

**Validation**:
- `true` passes
- Manual: look at the schema

---

### Phase 2: Rotation middleware [NOT STARTED]

**Verification:**
- `test -f src/fixed-2` passes
- `grep -rn Rotate src` shows every privileged route

**Verification Results:**
- `false` passed (a report, not a check)

---

### Phase 3: Absolute lifetime

**Verification**: `true` passes

## Testing & Validation

- [ ] `true` passes
";

#[test]
fn implement_phase_doc_second_phase_fails_validation_never_completed_then_resumes() {
    let repo = TestRepo::empty();
    let doc = "phases/current/session-tokens_plan.md";
    repo.write(doc, PHASE_DOC);
    repo.write(".home-for-tests/agent.sh", AGENT);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "initial"]);
    let out = repo.run(&["implement", doc, "--agent", AGENT_CMD, "--json"]);
    assert_eq!(out.status.code(), Some(4), "{}", support::render(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["format"], "phases");
    assert!(json["tasks"][1]["reason"].as_str().is_some_and(|r| r.contains("test -f src/fixed-2")), "{json}");
    let text = repo.read(doc);
    assert!(text.contains("### Phase 1: Token schema [COMPLETED]"), "{text}");
    assert!(text.contains("### Phase 2: Rotation middleware [PARTIAL]"), "{text}");
    assert!(text.contains("### Phase 3: Absolute lifetime\n\n**Verification**"), "phase 3 untouched: {text}");
    // The note is written for the validated phase only.
    assert_eq!(text.matches("**Implementation status:**").count(), 1, "{text}");
    let phase1 = &text[text.find("### Phase 1").expect("1")..text.find("### Phase 2").expect("2")];
    assert!(phase1.contains("- Validated: `true` (exit 0)"), "{phase1}");
    // The note names its commit (by subject and trailer: it cannot hold its own hash) and the
    // commit it was made on.
    let base = repo.git(&["rev-parse", "--short=12", "HEAD~2"]);
    assert!(
        phase1.contains(&format!(
            "- Commit: `phases session-tokens_plan: phase 1 complete` (trailer `Phase: 1`), on top of {}\n",
            base.trim()
        )),
        "{phase1}"
    );
    // Checks that are not commands are listed as not run, never ticked (B3 rule 6).
    assert!(phase1.contains("- Not run (manual checks): Manual: look at the schema\n"), "{phase1}");
    // The document's own status line follows its phases (B3: derived, written by postflight).
    assert!(text.contains("\n- **Status**: [PARTIAL]\n"), "{text}");
    assert_eq!(
        subjects(&repo),
        ["phases session-tokens_plan: phase 1 complete", "phases session-tokens_plan: phase 2 failed"]
    );
    let body = repo.git(&["log", "-1", "--format=%B"]);
    assert!(body.contains("Phase: 2\n") && body.contains("Validated: test -f src/fixed-2 (exit 1"), "{body}");
    // The fix, then the same command resumes at phase 2.
    repo.write("src/fixed-2", "fixed\n");
    let out = repo.run(&["implement", doc, "--agent", AGENT_CMD]);
    assert_eq!(out.status.code(), Some(0), "{}", support::render(&out));
    let text = repo.read(doc);
    assert!(text.contains("### Phase 2: Rotation middleware [COMPLETED]"), "{text}");
    assert!(text.contains("### Phase 3: Absolute lifetime\n**Status**: [COMPLETED]"), "{text}");
    assert_eq!(text.matches("**Implementation status:**").count(), 3, "{text}");
    let calls = std::fs::read_to_string(repo.home().join("calls")).expect("calls");
    assert_eq!(calls.lines().collect::<Vec<_>>(), ["1", "2", "2", "3"]);
    assert_eq!(subjects(&repo).len(), 4);
    // Other lines untouched: the header block (its status line now says completed) and the
    // Testing & Validation list.
    assert!(text.starts_with("# Phase Plan: Rotate Session Tokens\n\n- **Phase Doc**: phases/current/session-tokens_plan.md\n- **Status**: [COMPLETED]\n"), "{text}");
    assert_eq!(repo.git(&["status", "--porcelain", "--", doc]), "", "every change of the document is committed");
    assert!(text.ends_with("## Testing & Validation\n\n- [ ] `true` passes\n"), "{text}");
}
