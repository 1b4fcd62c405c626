//! `xtask demo` and `xtask demo-agent`: a throwaway repository with a sample ledger and plan,
//! and a scripted agent that writes real files, plan markers, a summary and metadata. The tests
//! drive the same agent with a script file (`XTASK_DEMO_SCRIPT`), one entry per invocation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::git::cli;
use crate::ledger::plan::PlanFile;

/// The environment variable pointing the demo agent at a script file.
pub const ENV_SCRIPT: &str = "XTASK_DEMO_SCRIPT";

/// What the scripted agent does in one invocation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Files to write (repository-relative path -> content).
    #[serde(default)]
    pub write: BTreeMap<String, String>,
    /// Files to delete.
    #[serde(default)]
    pub delete: Vec<String>,
    /// Plan phase ids to mark `[COMPLETED]` in the delegated plan.
    #[serde(default)]
    pub complete_phases: Vec<String>,
    /// A paragraph appended to `summaries/implementation-summary-{date}.md`.
    #[serde(default)]
    pub summary: Option<String>,
    /// The metadata document to write (absent: none is written).
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Raw text to write as the metadata file (for invalid-metadata cases).
    #[serde(default)]
    pub metadata_raw: Option<String>,
    /// Printed on stdout.
    #[serde(default)]
    pub stdout: Option<String>,
    /// Printed on stderr.
    #[serde(default)]
    pub stderr: Option<String>,
    /// Milliseconds to sleep after the work, before writing the metadata.
    #[serde(default)]
    pub sleep_ms: u64,
    /// The exit status.
    #[serde(default)]
    pub exit: i32,
    /// Write the agent's process group id to this file when it starts, for tests.
    #[serde(default)]
    pub pid_file: Option<String>,
    /// Append the delegation context (one JSON line) to this file, for tests.
    #[serde(default)]
    pub record_delegation: Option<String>,
}

/// A script: invocation k runs `steps[k-1]` (the last step repeats).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// The steps.
    pub steps: Vec<Step>,
}

/// The built-in scenario of `xtask demo`: one partial iteration with a handoff, then done.
pub const DEMO_SCRIPT: &str = r####"{"steps": [
  {
    "write": {
      "src/greeting.rs": "//! Greetings.\n\n/// Says hello to `name`.\npub fn greet(name: &str) -> String {\n    format!(\"Hello, {name}!\")\n}\n",
      "{task_dir}/handoffs/phase-2-handoff-{date}.md": "# Handoff: phase 2\n\n## Immediate Next Action\nWire `greet` into src/lib.rs and add a test.\n"
    },
    "complete_phases": ["1"],
    "summary": "### Phase 1: Greeting module [COMPLETED]\n- Added `src/greeting.rs` with `greet`.\n",
    "stdout": "Phase 1 done: src/greeting.rs written.\nContext is running low; handing off phase 2.\n",
    "metadata": {
      "status": "partial",
      "summary": "Phase 1 of 2 done: the greeting module exists.",
      "artifacts": [
        {"type": "summary", "path": "{task_dir}/summaries/implementation-summary-{date}.md", "summary": "Phase log"},
        {"type": "implementation", "path": "src/greeting.rs", "summary": "The greet function"}
      ],
      "partial_progress": {"stage": "context_exhaustion_handoff", "details": "Phase 2 remains", "phases_completed": 1, "phases_total": 2, "handoff_path": "{task_dir}/handoffs/phase-2-handoff-{date}.md"},
      "metadata": {"session_id": "{session_id}", "phases_completed": 1, "phases_total": 2}
    }
  },
  {
    "write": {
      "src/lib.rs": "//! The demo crate.\n\npub mod greeting;\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn greets() {\n        assert_eq!(super::greeting::greet(\"postflight\"), \"Hello, postflight!\");\n    }\n}\n"
    },
    "complete_phases": ["2"],
    "summary": "### Phase 2: Wire it in [COMPLETED]\n- Exported the module from `src/lib.rs` with a test.\n",
    "stdout": "Read the handoff; phase 2 done: src/lib.rs exports greeting.\n",
    "metadata": {
      "status": "implemented",
      "summary": "Both phases done: greet() exists, is exported and tested.",
      "artifacts": [
        {"type": "summary", "path": "{task_dir}/summaries/implementation-summary-{date}.md", "summary": "Phase log"},
        {"type": "implementation", "path": "src/lib.rs", "summary": "Exports greeting"},
        {"type": "implementation", "path": "src/greeting.rs", "summary": "The greet function"}
      ],
      "completion_data": {"completion_summary": "Added a greeting module with greet(), exported from the crate root and tested.", "roadmap_items": []},
      "metadata": {"session_id": "{session_id}", "phases_completed": 2, "phases_total": 2}
    }
  }
]}"####;

/// Runs one invocation of the scripted agent in `cwd` (the repository root), reading the
/// delegation from the environment. Returns the exit status the script asks for.
///
/// # Errors
/// A missing delegation or an unreadable script or file.
pub fn run_agent(cwd: &Path) -> Result<i32> {
    let delegation: Value =
        std::env::var("XTASK_DELEGATION").ok().and_then(|d| serde_json::from_str(&d).ok()).ok_or_else(|| {
            Error::refused("XTASK_DELEGATION is not set or not JSON", Some("demo-agent is run by `xtask implement`"))
        })?;
    let script: Script = match std::env::var(ENV_SCRIPT) {
        Ok(path) if !path.is_empty() => {
            let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
            serde_json::from_slice(&bytes).map_err(|e| Error::json(&path, &e))?
        }
        _ => serde_json::from_str(DEMO_SCRIPT).expect("the built-in script is valid"),
    };
    let iteration = delegation["iteration"].as_u64().unwrap_or(1).max(1) as usize;
    let Some(step) = script.steps.get(iteration - 1).or(script.steps.last()) else { return Ok(0) };
    let meta_rel = delegation["metadata_file_path"].as_str().unwrap_or_default().to_owned();
    let task_dir = Path::new(&meta_rel).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    let date = std::env::var("XTASK_NOW")
        .ok()
        .and_then(|n| n.parse::<jiff::Timestamp>().ok())
        .unwrap_or_else(jiff::Timestamp::now)
        .strftime("%Y%m%d")
        .to_string();
    let vars = [
        ("{task_dir}", task_dir.clone()),
        ("{session_id}", delegation["session_id"].as_str().unwrap_or_default().to_owned()),
        ("{date}", date.clone()),
        ("{iteration}", iteration.to_string()),
        ("{task}", delegation["task_context"]["task_number"].to_string()),
    ];
    let fill = |s: &str| vars.iter().fold(s.to_owned(), |acc, (k, v)| acc.replace(k, v));

    if let Some(path) = &step.record_delegation {
        use std::io::Write as _;
        let p = cwd.join(fill(path));
        let mut f =
            std::fs::OpenOptions::new().create(true).append(true).open(&p).map_err(|e| Error::io("open", &p, e))?;
        writeln!(f, "{delegation}").map_err(|e| Error::io("write", &p, e))?;
    }
    if let Some(path) = &step.pid_file {
        let group = crate::sys::own_process_group();
        write_file(&cwd.join(fill(path)), &format!("{group}\n"))?;
    }
    for (path, content) in &step.write {
        write_file(&cwd.join(fill(path)), &fill(content))?;
    }
    for path in &step.delete {
        let p = cwd.join(fill(path));
        std::fs::remove_file(&p).map_err(|e| Error::io("remove", &p, e))?;
    }
    if !step.complete_phases.is_empty() {
        let plan = cwd.join(delegation["plan_path"].as_str().unwrap_or_default());
        complete_phases(&plan, &step.complete_phases)?;
    }
    if let Some(text) = &step.summary {
        let p = cwd.join(format!("{task_dir}/summaries/implementation-summary-{date}.md"));
        let mut body = std::fs::read_to_string(&p).unwrap_or_else(|_| {
            format!("# Implementation Summary: Task #{}\n\n## Phase Log\n\n", delegation["task_context"]["task_number"])
        });
        body.push_str(&fill(text));
        body.push('\n');
        write_file(&p, &body)?;
    }
    if let Some(out) = &step.stdout {
        let mut o = std::io::stdout().lock();
        let _ = std::io::Write::write_all(&mut o, fill(out).as_bytes());
    }
    if let Some(err) = &step.stderr {
        let mut e = std::io::stderr().lock();
        let _ = std::io::Write::write_all(&mut e, fill(err).as_bytes());
    }
    if step.sleep_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(step.sleep_ms));
    }
    let meta_path = cwd.join(&meta_rel);
    if let Some(raw) = &step.metadata_raw {
        write_file(&meta_path, &fill(raw))?;
    } else if let Some(m) = &step.metadata {
        let text = serde_json::to_string_pretty(&fill_json(m, &fill)).expect("a Value serialises");
        write_file(&meta_path, &text)?;
    }
    Ok(step.exit)
}

fn fill_json(v: &Value, fill: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_json(x, fill)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), fill_json(x, fill))).collect()),
        other => other.clone(),
    }
}

fn write_file(path: &Path, content: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    std::fs::write(path, content).map_err(|e| Error::io("write", path, e))
}

/// Marks the given phase ids `[COMPLETED]` in a plan, replacing any marker on the heading.
fn complete_phases(plan_path: &Path, ids: &[String]) -> Result<()> {
    let mut plan = PlanFile::load(plan_path)?;
    for phase in plan.phases() {
        if !ids.contains(&phase.id) {
            continue;
        }
        let line = plan.doc.line(phase.line).to_owned();
        let head = match line.find(" [") {
            Some(i) => line[..i].to_owned(),
            None => line.trim_end().to_owned(),
        };
        plan.doc.set_line(phase.line, &format!("{head} [COMPLETED]"));
    }
    crate::atomic::write(plan_path, plan.to_text().as_bytes())
}

const DEMO_STATE: &str = r#"{
  "active_projects": [
    {
      "project_number": 2,
      "project_name": "write_the_changelog",
      "status": "planned",
      "language": "markdown",
      "description": "Another task: its files must stay out of task 1's commits.",
      "created": "2026-01-05T10:00:00Z",
      "last_updated": "2026-01-06T10:00:00Z"
    },
    {
      "project_number": 1,
      "project_name": "add_greeting",
      "status": "planned",
      "language": "general",
      "description": "Add a greeting module and export it.",
      "created": "2026-01-05T09:00:00Z",
      "last_updated": "2026-01-06T09:00:00Z",
      "artifacts": [
        {
          "path": "specs/1_add_greeting/plans/implementation-001.md",
          "type": "plan",
          "summary": "Two phases"
        }
      ],
      "planned": "2026-01-06T09:00:00Z"
    }
  ],
  "next_project_number": 3
}
"#;

const DEMO_TODO: &str = "---
next_project_number: 3
---

# TODO

## Tasks

### 2. Write the changelog
- **Effort**: 30 minutes
- **Status**: [PLANNED]
- **Language**: markdown

**Description**: Another task: its files must stay out of task 1's commits.

---

### 1. Add greeting
- **Effort**: 1 hour
- **Status**: [PLANNED]
- **Language**: general
- **Plan**: [implementation-001.md](specs/1_add_greeting/plans/implementation-001.md)

**Description**: Add a greeting module and export it.

---
";

const DEMO_PLAN: &str = "# Implementation Plan: Task #1

- **Task**: 1 - add_greeting
- **Status**: [PLANNED]
- **Effort**: 1 hour

## Implementation Phases

### Phase 1: Greeting module [NOT STARTED]

- **Goal:** `src/greeting.rs` with `greet(name)`.

---

### Phase 2: Wire it in [NOT STARTED]

- **Goal:** export the module from `src/lib.rs`, with a test.
";

/// Creates the demo repository in `dir`: a sample ledger, a plan, one commit, and some work of
/// the user's own (a staged edit, an unstaged edit, an untracked file) that no task commit may
/// take.
///
/// # Errors
/// I/O errors; git not installed.
pub fn create_repo(dir: &Path) -> Result<()> {
    let files: [(&str, &str); 7] = [
        ("README.md", "# demo project\n"),
        ("CHANGELOG.md", "# Changelog\n"),
        ("src/lib.rs", "//! The demo crate.\n"),
        ("specs/state.json", DEMO_STATE),
        ("specs/TODO.md", DEMO_TODO),
        ("specs/1_add_greeting/plans/implementation-001.md", DEMO_PLAN),
        (
            ".gitignore",
            "/target\n.return-meta.json\n.postflight-pending\n.postflight-loop-guard\n.postflight-agent.log\n",
        ),
    ];
    for (rel, content) in files {
        write_file(&dir.join(rel), content)?;
    }
    write_file(
        &dir.join(".postflight.json"),
        "{\n  \"agent_identity\": \"Demo Agent <demo-agent@postflight.invalid>\"\n}\n",
    )?;
    git(dir, &["init", "-q", "-b", "main"])?;
    git(dir, &["config", "user.name", "Demo User"])?;
    git(dir, &["config", "user.email", "demo-user@postflight.invalid"])?;
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", "demo: initial ledger and plan"])?;
    // The user's own work in progress, which must stay exactly as it is.
    write_file(&dir.join("README.md"), "# demo project\n\nStaged by the user, not part of any task.\n")?;
    git(dir, &["add", "README.md"])?;
    write_file(&dir.join("CHANGELOG.md"), "# Changelog\n\n- unstaged note of the user\n")?;
    write_file(&dir.join("notes.txt"), "untracked scratch notes of the user\n")?;
    Ok(())
}

/// Runs git in `dir` and returns its stdout.
///
/// # Errors
/// git cannot be started or fails.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = cli::Git::new(dir, args).run(&[0])?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A fresh directory for the demo under the system's temporary directory.
///
/// # Errors
/// I/O errors.
pub fn make_dir() -> Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix("postflight-demo-")
        .tempdir()
        .map_err(|e| Error::io("create", "a temporary directory", e))?;
    Ok(dir.keep())
}
