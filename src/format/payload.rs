//! `handoff/payload.json`, the file the stages of a prompt pipeline hand to each other (seeds 000
//! and 001; `../shared/spec/sibling-formats.md` Part C): the implement stage's intake, its queue
//! (stage 5: the leaf tasks of `tasks.items`; stage 4: the steps of `plan.steps`), status moves
//! with `tasks.statusSummary` recomputed, the `implementation.*` log entries built from measured
//! values, the task-scoped commit of the file, and the append-only check against a revision.
//!
//! Every edit is spliced into the file's own bytes ([`spans::Doc`]): key order, indentation and
//! every byte outside the edited values stay as they were. Nothing here writes a file.

mod spans;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Map, Value};

pub use spans::{Doc, Seg, Style};

use super::{Blocked, Finding, Format, Item, Mark, OnFailure, Outcome, QueueOptions, Record};
use crate::error::{Error, Result};
use crate::git::{Scoped, Scoping};
use crate::task_id::TaskId;

/// The payload's usual path in a repository.
pub const DEFAULT_PATH: &str = "handoff/payload.json";
/// The commit trailer naming the item.
pub const TRAILER: &str = "Payload-Task";
/// The three append-only logs of the implement stage.
pub const LOGS: [&str; 3] = ["changes", "tests", "commands"];
/// At most this much of a command's output goes into its `implementation.commands` entry.
pub const OUTPUT_TAIL: usize = 2048;

/// The implement stage a run works as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// `5-implement` (seed 000): the leaf tasks of `tasks.items`.
    Five,
    /// `4-implement` (seed 001, the shorter pipeline): the steps of `plan.steps`.
    Four,
}

impl Stage {
    /// `5-implement` or `4-implement`, as `meta.currentStage` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Five => "5-implement",
            Stage::Four => "4-implement",
        }
    }

    /// Reads `--stage`: `5-implement`, `4-implement` (or `5`, `4`).
    ///
    /// # Errors
    /// A refusal naming the two stages.
    pub fn parse(s: &str) -> Result<Stage> {
        match s.trim() {
            "5-implement" | "5" => Ok(Stage::Five),
            "4-implement" | "4" => Ok(Stage::Four),
            other => Err(Error::refused(
                format!("`{other}` is not an implement stage"),
                Some("pass --stage 5-implement (tasks.items) or --stage 4-implement (plan.steps)"),
            )),
        }
    }

    /// The default: stage 5 when the payload has `tasks.items`, else stage 4.
    pub fn detect(doc: &Value) -> Stage {
        if doc.pointer("/tasks/items").is_some() {
            Stage::Five
        } else {
            Stage::Four
        }
    }

    /// The sections the stage requires before it starts (the seeds' "Required before starting").
    pub fn required(self) -> &'static [&'static str] {
        match self {
            Stage::Five => &[
                "requirement.summary",
                "plan.steps",
                "tasks.items",
                "testPlan.scenarios",
                "testPlan.validationCommands",
            ],
            Stage::Four => &["requirement.summary", "plan.steps", "testPlan.scenarios"],
        }
    }
}

/// The payload of one repository, read as one implement stage.
#[derive(Debug, Clone)]
pub struct Payload {
    path: PathBuf,
    rel: String,
    stage: Stage,
    agent: String,
    fixed_now: Option<jiff::Timestamp>,
}

impl Payload {
    /// The payload at `path` (absolute), `rel` from the repository root, as `stage`; `agent`
    /// names the agent in `meta.lastUpdatedBy`; `fixed_now` fixes every timestamp (`XTASK_NOW`).
    pub fn new(path: PathBuf, rel: String, stage: Stage, agent: &str, fixed_now: Option<jiff::Timestamp>) -> Payload {
        Payload { path, rel, stage, agent: agent.to_owned(), fixed_now }
    }

    /// The payload at `path`, its stage from `stage` or else from its content ([`Stage::detect`]).
    ///
    /// # Errors
    /// The file cannot be read or is not JSON (a refusal with its line and column).
    pub fn open(
        root: &Path,
        path: &Path,
        stage: Option<Stage>,
        agent: &str,
        fixed_now: Option<jiff::Timestamp>,
    ) -> Result<Payload> {
        let abs = if path.is_absolute() { path.to_path_buf() } else { root.join(path) };
        let bytes = std::fs::read(&abs).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::refused(
                    format!("{} does not exist", abs.display()),
                    Some("pass the handoff payload, e.g. handoff/payload.json"),
                )
            } else {
                Error::io("read", &abs, e)
            }
        })?;
        let rel = abs.strip_prefix(root).unwrap_or(&abs).to_string_lossy().replace('\\', "/");
        let stage = match stage {
            Some(s) => s,
            None => Stage::detect(&crate::ledger::json::parse(&abs, &bytes)?),
        };
        Ok(Payload::new(abs, rel, stage, agent, fixed_now))
    }

    /// The stage this run works as.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The repository-relative path.
    pub fn rel(&self) -> &str {
        &self.rel
    }

    fn now(&self) -> String {
        self.fixed_now.unwrap_or_else(jiff::Timestamp::now).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    /// `meta.lastUpdatedBy`: postflight and the agent.
    pub fn updated_by(&self) -> String {
        format!("postflight {} (agent: {})", env!("CARGO_PKG_VERSION"), self.agent)
    }

    fn doc(&self, bytes: &[u8]) -> Result<Doc> {
        Doc::parse(&self.path, bytes.to_vec())
    }

    /// The payload parsed, refusing a shape postflight cannot record anything into: a top level
    /// that is not an object, or a `meta`, `tasks`, `tasks.statusSummary`, `implementation` (an
    /// object) or `implementation.changes|tests|commands` (an array) of another type. A refusal
    /// names the file, the line and what to do; nothing is written.
    fn shaped_doc(&self, bytes: &[u8]) -> Result<Doc> {
        let doc = self.doc(bytes)?;
        if let Some((line, what)) = shape_problem(&doc) {
            return Err(Error::format(&self.path, Some(line), what));
        }
        Ok(doc)
    }

    /// The stage's intake problems: required sections missing or empty, ids that do not
    /// resolve, dependency cycles. Empty when the stage may start.
    ///
    /// # Errors
    /// The file is not JSON.
    pub fn intake_problems(&self, bytes: &[u8]) -> Result<Vec<String>> {
        let doc = self.shaped_doc(bytes)?;
        Ok(Model::read(&doc, self.stage).problems)
    }

    /// The validation commands with the environment each runs in: `testPlan.validationCommands`
    /// in order, `environment` exported as `PAYLOAD_ENVIRONMENT` (a string) or as its members (an
    /// object of variables).
    pub fn validation_environment(&self, bytes: &[u8]) -> Vec<(String, Vec<(String, String)>)> {
        let Ok(doc) = self.doc(bytes) else { return Vec::new() };
        let Ok(v) = doc.to_value() else { return Vec::new() };
        suites(&v)
            .into_iter()
            .map(|s| {
                let env = match s.environment {
                    Some(Value::String(e)) if !e.is_empty() => vec![("PAYLOAD_ENVIRONMENT".to_owned(), e)],
                    Some(Value::Object(m)) => m
                        .into_iter()
                        .filter_map(|(k, v)| match v {
                            Value::String(s) => Some((k, s)),
                            Value::Number(n) => Some((k, n.to_string())),
                            Value::Bool(b) => Some((k, b.to_string())),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                (s.command, env)
            })
            .collect()
    }

    /// `bytes` with the intake block recorded: `meta` updated, `meta.stageStatus` `blocked`, and
    /// one `implementation.changes` entry naming each problem.
    ///
    /// # Errors
    /// The file is not JSON, or a section the record goes into is not an object.
    pub fn record_block(&self, bytes: &[u8], problems: &[String]) -> Result<Vec<u8>> {
        let mut doc = self.doc(bytes)?;
        let now = self.now();
        let v = doc.to_value()?;
        let id = next_id(&v, "changes", "change");
        let entry = json!({
            "id": id,
            "taskId": null,
            "planStepId": null,
            "requirementId": null,
            "files": [],
            "rationale": format!("{} intake blocked: {}", self.stage.as_str(), problems.join("; ")),
            "linesChanged": 0,
            "evidenceRef": null,
            "status": "blocked",
            "problems": problems,
            "timestamp": now,
            "executor": self.updated_by(),
        });
        self.touch_meta(&mut doc, &now)?;
        doc.set(&[Seg::Key("meta"), Seg::Key("stageStatus")], &json!("blocked"))?;
        doc.append(&[Seg::Key("implementation"), Seg::Key("changes")], &entry)?;
        Ok(doc.bytes)
    }

    fn touch_meta(&self, doc: &mut Doc, now: &str) -> Result<()> {
        doc.set(&[Seg::Key("meta"), Seg::Key("currentStage")], &json!(self.stage.as_str()))?;
        doc.set(&[Seg::Key("meta"), Seg::Key("lastUpdatedBy")], &json!(self.updated_by()))?;
        doc.set(&[Seg::Key("meta"), Seg::Key("lastUpdatedAt")], &json!(now))
    }

    /// Moves `id` to `status` (its own entry; for stage 5 the parents derived from their
    /// children and `tasks.statusSummary`), and `meta`.
    fn move_status(&self, doc: &mut Doc, id: &str, status: &str) -> Result<()> {
        let model = Model::read(doc, self.stage);
        let Some(entry) = model.entries.iter().find(|e| e.id == id) else {
            return Err(Error::format(&self.path, None, format!("no {} `{id}`", self.stage.unit())));
        };
        let at = entry.index;
        doc.set(
            &[Seg::Key(self.stage.section()), Seg::Key(self.stage.list()), Seg::Index(at), Seg::Key("status")],
            &json!(status),
        )?;
        if self.stage == Stage::Five {
            derive_parents(doc)?;
            write_summary(doc)?;
        }
        let model = Model::read(doc, self.stage);
        if doc.node(&[Seg::Key("meta"), Seg::Key("stageStatus")]).is_some() {
            doc.set(&[Seg::Key("meta"), Seg::Key("stageStatus")], &json!(model.stage_status()))?;
        }
        let now = self.now();
        self.touch_meta(doc, &now)
    }

    /// Every problem `xtask check <payload.json> --against REV` (and the pre-commit hook) reports: `old` is the file at
    /// REV, `new` the file now. An `implementation.*` entry of `old` that is missing from `new`,
    /// changed or moved is an error; so is any other value of `old` that `new` lost or changed,
    /// except status fields (`status`, `meta.*`, `tasks.statusSummary.*`), which may move.
    ///
    /// # Errors
    /// Either version is not JSON.
    pub fn append_only_findings(&self, old: &[u8], new: &[u8]) -> Result<Vec<Finding>> {
        let old_doc = Doc::parse(&self.path, old.to_vec())?;
        let new_doc = self.doc(new)?;
        Ok(append_only(&old_doc.to_value()?, &new_doc))
    }
}

impl Stage {
    fn section(self) -> &'static str {
        match self {
            Stage::Five => "tasks",
            Stage::Four => "plan",
        }
    }
    fn list(self) -> &'static str {
        match self {
            Stage::Five => "items",
            Stage::Four => "steps",
        }
    }
    fn unit(self) -> &'static str {
        match self {
            Stage::Five => "task",
            Stage::Four => "plan step",
        }
    }
}

/// A status word of the payload as a [`Mark`] (its first word: agents append clarifications,
/// `in-progress (token reuse bug, see scenario-3)`); `None` for a word the payload does not use.
pub fn mark_of(status: &str) -> Option<Mark> {
    let word = status.trim().split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or("");
    Some(match word.to_ascii_lowercase().as_str() {
        "" | "ready" | "pending" | "todo" | "not-started" => Mark::Pending,
        "in-progress" | "in_progress" | "inprogress" => Mark::InProgress,
        "completed" | "complete" | "done" | "passed" => Mark::Completed,
        "blocked" => Mark::Blocked,
        "failed" => Mark::Failed,
        "skipped" | "deferred" => Mark::Skipped,
        _ => return None,
    })
}

/// The payload's word for `mark` (`ready`, `in-progress`, `completed`, `blocked`).
pub fn status_of(mark: Mark) -> &'static str {
    match mark {
        Mark::Pending => "ready",
        Mark::InProgress => "in-progress",
        Mark::Completed => "completed",
        Mark::Failed | Mark::Blocked => "blocked",
        Mark::Skipped => "skipped",
    }
}

/// One task (stage 5) or plan step (stage 4) as the payload lists it.
#[derive(Debug, Clone)]
struct Entry {
    id: String,
    name: String,
    status: String,
    parent: Option<String>,
    depends: Vec<String>,
    plan_step: Option<String>,
    index: usize,
    line: usize,
}

/// The stage's entries and what intake found wrong with them.
#[derive(Debug)]
struct Model {
    entries: Vec<Entry>,
    problems: Vec<String>,
}

fn non_empty(v: Option<&Value>) -> bool {
    match v {
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(|x| text(Some(x))).collect()).unwrap_or_default()
}

fn line_of(bytes: &[u8], at: usize) -> usize {
    bytes[..at].iter().filter(|b| **b == b'\n').count() + 1
}

/// The JSON type of `v`, as messages name it.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The first container postflight writes into that has the wrong type: its line and the message.
fn shape_problem(doc: &Doc) -> Option<(usize, String)> {
    let v = doc.to_value().ok()?;
    if !v.is_object() {
        return Some((1, format!("the top level is {}, not a JSON object (a handoff payload is an object with `meta`, `requirement`, `plan`, `tasks`, `testPlan` and `implementation`)", type_name(&v))));
    }
    let objects: [&[Seg<'_>]; 4] = [
        &[Seg::Key("meta")],
        &[Seg::Key("tasks")],
        &[Seg::Key("tasks"), Seg::Key("statusSummary")],
        &[Seg::Key("implementation")],
    ];
    let arrays: [&[Seg<'_>]; 3] = [
        &[Seg::Key("implementation"), Seg::Key("changes")],
        &[Seg::Key("implementation"), Seg::Key("tests")],
        &[Seg::Key("implementation"), Seg::Key("commands")],
    ];
    let wrong = |path: &[Seg<'_>], want_object: bool| -> Option<(usize, String)> {
        let x = doc.value(path)?;
        let ok = if want_object { x.is_object() } else { x.is_array() };
        (!ok && !x.is_null()).then(|| {
            let line = doc.node(path).map_or(1, |n| line_of(&doc.bytes, n.start));
            let want = if want_object { "an object" } else { "an array" };
            (
                line,
                format!("`{}` is {}, not {want}; postflight records the run there", spans::show(path), type_name(&x)),
            )
        })
    };
    objects.iter().find_map(|p| wrong(p, true)).or_else(|| arrays.iter().find_map(|p| wrong(p, false)))
}

impl Model {
    fn read(doc: &Doc, stage: Stage) -> Model {
        let v = doc.to_value().unwrap_or(Value::Null);
        let mut problems = Vec::new();
        for section in stage.required() {
            let pointer = format!("/{}", section.replace('.', "/"));
            match v.pointer(&pointer) {
                None | Some(Value::Null) => problems.push(format!("{section} is missing")),
                Some(x) if !non_empty(Some(x)) => problems.push(format!("{section} is empty")),
                Some(x) if section.ends_with("summary") && !x.is_string() => {
                    problems.push(format!("{section} is not a string"))
                }
                Some(x) if !section.ends_with("summary") && !x.is_array() => {
                    problems.push(format!("{section} is not a list"))
                }
                Some(_) => {}
            }
        }
        let list = v.pointer(&format!("/{}/{}", stage.section(), stage.list())).and_then(Value::as_array);
        let mut entries = Vec::new();
        let mut seen = BTreeSet::new();
        for (index, x) in list.into_iter().flatten().enumerate() {
            let what = format!("{}.{}[{index}]", stage.section(), stage.list());
            let Some(id) = text(x.get("id")).filter(|s| !s.trim().is_empty()) else {
                problems.push(format!("{what} has no id"));
                continue;
            };
            if TaskId::new(&id).is_err() {
                problems.push(format!(
                    "{what}: `{}` is not a usable id (letters, digits, `.`, `-`, `_`; at most {} bytes)",
                    crate::task_id::shown(&id),
                    crate::task_id::MAX_LEN
                ));
                continue;
            }
            if !seen.insert(id.clone()) {
                problems.push(format!("{what}: id `{id}` is used twice"));
                continue;
            }
            let node = doc.node(&[Seg::Key(stage.section()), Seg::Key(stage.list()), Seg::Index(index)]);
            let line = node.map_or(1, |n| line_of(&doc.bytes, n.start));
            let (parent, depends, plan_step) = match stage {
                Stage::Five => (text(x.get("parentId")), Vec::new(), text(x.get("planStepId"))),
                Stage::Four => (None, strings(x.get("dependencies")), Some(id.clone())),
            };
            if let Some(d) = x.get("dependencies").filter(|d| stage == Stage::Four && !d.is_null() && !d.is_array()) {
                problems.push(format!("{what} (`{id}`): dependencies is {}, not a list of step ids", type_name(d)));
            }
            if stage == Stage::Five && x.get("parentId").is_none() {
                problems.push(format!(
                    "{what} (`{id}`) has no parentId (the parent-child link; null for a top-level task)"
                ));
            }
            entries.push(Entry {
                id,
                name: text(x.get("name")).or_else(|| text(x.get("title"))).unwrap_or_default(),
                status: text(x.get("status")).unwrap_or_default(),
                parent,
                depends,
                plan_step,
                index,
                line,
            });
        }
        // The validation commands postflight runs: each must be a command it can run as written.
        if let Some(cmds) = v.pointer("/testPlan/validationCommands").filter(|c| !c.is_null()) {
            for (i, c) in cmds.as_array().into_iter().flatten().enumerate() {
                let what = format!("testPlan.validationCommands[{i}]");
                match c.get("command") {
                    Some(Value::String(cmd)) if !cmd.trim().is_empty() => {}
                    Some(x) => problems.push(format!(
                        "{what}.command is {}, not a command line (a non-empty string)",
                        if x.as_str().is_some() { "empty" } else { type_name(x) }
                    )),
                    None => problems.push(format!("{what} has no `command`")),
                }
                match c.get("environment") {
                    None | Some(Value::Null | Value::String(_) | Value::Object(_)) => {}
                    Some(x) => problems.push(format!(
                        "{what}.environment is {}, neither a name (a string) nor variables (an object)",
                        type_name(x)
                    )),
                }
            }
        }
        if stage == Stage::Five {
            if let Some(d) = v.pointer("/tasks/dependencies").filter(|d| !d.is_null() && !d.is_array()) {
                problems.push(format!("tasks.dependencies is {}, not a list", type_name(d)));
            }
            for (i, d) in v.pointer("/tasks/dependencies").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let Some(task) = text(d.get("taskId")) else {
                    problems.push(format!("tasks.dependencies[{i}] has no taskId"));
                    continue;
                };
                if let Some(x) = d.get("dependsOn").filter(|x| !x.is_null() && !x.is_array()) {
                    problems.push(format!("tasks.dependencies[{i}].dependsOn is {}, not a list of ids", type_name(x)));
                }
                match entries.iter_mut().find(|e| e.id == task) {
                    Some(e) => e.depends.extend(strings(d.get("dependsOn"))),
                    None => {
                        problems.push(format!("tasks.dependencies[{i}]: taskId `{task}` is not a task of tasks.items"))
                    }
                }
            }
        }
        let ids: BTreeSet<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        for e in &entries {
            if let Some(p) = &e.parent {
                if !ids.contains(p.as_str()) {
                    problems.push(format!("{} `{}`: parentId `{p}` is not a task of tasks.items", stage.unit(), e.id));
                }
            }
            for d in &e.depends {
                if d == &e.id {
                    problems.push(format!("{} `{}` depends on itself (a cycle)", stage.unit(), e.id));
                } else if !ids.contains(d.as_str()) {
                    problems.push(format!("{} `{}` depends on `{d}`, which does not exist", stage.unit(), e.id));
                }
            }
        }
        let mut model = Model { entries, problems };
        model.find_cycles(stage);
        model
    }

    fn find_cycles(&mut self, stage: Stage) {
        // Parent chains first: a loop there makes "leaf" and "descendant" meaningless.
        let parent: HashMap<&str, &str> =
            self.entries.iter().filter_map(|e| e.parent.as_deref().map(|p| (e.id.as_str(), p))).collect();
        let mut broken = Vec::new();
        for e in &self.entries {
            let mut at = e.id.as_str();
            let mut seen = BTreeSet::new();
            while let Some(p) = parent.get(at) {
                if !seen.insert(at) {
                    broken.push(format!("parentId cycle through `{}`", e.id));
                    break;
                }
                at = p;
            }
        }
        broken.sort();
        broken.dedup();
        if !broken.is_empty() {
            self.problems.extend(broken.into_iter().take(1));
            return;
        }
        let leaves: Vec<String> = self.leaves().into_iter().map(|e| e.id.clone()).collect();
        let deps: HashMap<String, Vec<String>> = leaves.iter().map(|l| (l.clone(), self.effective_deps(l))).collect();
        // Depth-first search with colours; the first cycle found is named with its path.
        let mut colour: HashMap<&str, u8> = HashMap::new();
        fn visit<'a>(
            n: &'a str,
            deps: &'a HashMap<String, Vec<String>>,
            colour: &mut HashMap<&'a str, u8>,
            stack: &mut Vec<&'a str>,
        ) -> Option<Vec<String>> {
            colour.insert(n, 1);
            stack.push(n);
            for d in deps.get(n).into_iter().flatten() {
                match colour.get(d.as_str()).copied().unwrap_or(0) {
                    1 => {
                        let from = stack.iter().position(|s| *s == d.as_str()).unwrap_or(0);
                        let mut cycle: Vec<String> = stack[from..].iter().map(|s| (*s).to_owned()).collect();
                        cycle.push(d.clone());
                        return Some(cycle);
                    }
                    0 => {
                        if let Some(c) = visit(d, deps, colour, stack) {
                            return Some(c);
                        }
                    }
                    _ => {}
                }
            }
            stack.pop();
            colour.insert(n, 2);
            None
        }
        for l in &leaves {
            if colour.get(l.as_str()).copied().unwrap_or(0) == 0 {
                if let Some(cycle) = visit(l, &deps, &mut colour, &mut Vec::new()) {
                    let what = match stage {
                        Stage::Five => "tasks.dependencies",
                        Stage::Four => "plan.steps dependencies",
                    };
                    self.problems.push(format!("{what} form a cycle: {}", cycle.join(" -> ")));
                    return;
                }
            }
        }
    }

    /// The entries that are nobody's parent (every plan step, for stage 4).
    fn leaves(&self) -> Vec<&Entry> {
        let parents: BTreeSet<&str> = self.entries.iter().filter_map(|e| e.parent.as_deref()).collect();
        self.entries.iter().filter(|e| !parents.contains(e.id.as_str())).collect()
    }

    fn children(&self, id: &str) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.parent.as_deref() == Some(id)).collect()
    }

    /// The leaves under `id` (itself when it is a leaf).
    fn leaves_under(&self, id: &str, out: &mut Vec<String>, guard: usize) {
        let kids = self.children(id);
        if kids.is_empty() || guard > self.entries.len() {
            out.push(id.to_owned());
        }
        for k in kids {
            if guard <= self.entries.len() {
                self.leaves_under(&k.id, out, guard + 1);
            }
        }
    }

    /// What leaf `id` waits for, as leaves: its own dependencies and its ancestors', a
    /// dependency on a parent standing for every leaf under it.
    fn effective_deps(&self, id: &str) -> Vec<String> {
        let by_id: HashMap<&str, &Entry> = self.entries.iter().map(|e| (e.id.as_str(), e)).collect();
        let mut out = Vec::new();
        let mut at = Some(id);
        let mut hops = 0;
        while let (Some(a), true) = (at, hops <= self.entries.len()) {
            if let Some(e) = by_id.get(a) {
                for d in &e.depends {
                    self.leaves_under(d, &mut out, 0);
                }
                at = e.parent.as_deref();
            } else {
                at = None;
            }
            hops += 1;
        }
        out.retain(|d| d != id);
        let mut seen = BTreeSet::new();
        out.retain(|d| seen.insert(d.clone()));
        out
    }

    /// `meta.stageStatus` as the entries stand: `completed` when every leaf is, `blocked` when
    /// no open leaf can start without a blocked one, else `in-progress`.
    fn stage_status(&self) -> &'static str {
        let leaves = self.leaves();
        let mark = |e: &Entry| mark_of(&e.status).unwrap_or(Mark::Pending);
        if leaves.iter().all(|e| mark(e).is_final()) {
            return "completed";
        }
        let blocked: BTreeSet<&str> =
            leaves.iter().filter(|e| matches!(mark(e), Mark::Blocked | Mark::Failed)).map(|e| e.id.as_str()).collect();
        let runnable = leaves.iter().any(|e| {
            let m = mark(e);
            !m.is_final()
                && !blocked.contains(e.id.as_str())
                && !self.effective_deps(&e.id).iter().any(|d| blocked.contains(d.as_str()))
        });
        if runnable {
            "in-progress"
        } else {
            "blocked"
        }
    }
}

/// Parents of stage 5 follow their children: `completed` when every child is done, else
/// `in-progress` once a child started (a `ready` parent only). Deepest parents first.
fn derive_parents(doc: &mut Doc) -> Result<()> {
    for _ in 0..8 {
        let model = Model::read(doc, Stage::Five);
        let mut changed = false;
        for e in &model.entries {
            let kids = model.children(&e.id);
            if kids.is_empty() {
                continue;
            }
            let marks: Vec<Mark> = kids.iter().map(|k| mark_of(&k.status).unwrap_or(Mark::Pending)).collect();
            let own = mark_of(&e.status).unwrap_or(Mark::Pending);
            let want = if marks.iter().all(|m| m.is_final()) {
                Some("completed")
            } else if (own == Mark::Pending && marks.iter().any(|m| *m != Mark::Pending)) || own == Mark::Completed {
                // Started, or marked completed while a child is still open.
                Some("in-progress")
            } else {
                None
            };
            if let Some(w) = want {
                if mark_of(&e.status) != mark_of(w) {
                    doc.set(
                        &[Seg::Key("tasks"), Seg::Key("items"), Seg::Index(e.index), Seg::Key("status")],
                        &json!(w),
                    )?;
                    changed = true;
                    break;
                }
            }
        }
        if !changed {
            break;
        }
    }
    Ok(())
}

/// The counts `tasks.statusSummary` should hold for the items as they stand (every item,
/// parents included), keyed as the payload keys them (`in_progress`).
fn summary_counts(doc: &Doc) -> BTreeMap<&'static str, u64> {
    let model = Model::read(doc, Stage::Five);
    let mut counts: BTreeMap<&'static str, u64> =
        [("ready", 0), ("blocked", 0), ("in_progress", 0), ("completed", 0)].into_iter().collect();
    for e in &model.entries {
        let key = match mark_of(&e.status).unwrap_or(Mark::Pending) {
            Mark::Pending => "ready",
            Mark::InProgress => "in_progress",
            Mark::Completed => "completed",
            Mark::Blocked | Mark::Failed => "blocked",
            Mark::Skipped => "deferred",
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// Recomputes `tasks.statusSummary` in place: its own keys keep their places, the missing
/// counts are added at its end.
fn write_summary(doc: &mut Doc) -> Result<()> {
    if doc.node(&[Seg::Key("tasks")]).is_none() {
        return Ok(());
    }
    let counts = summary_counts(doc);
    let has_deferred = doc.node(&[Seg::Key("tasks"), Seg::Key("statusSummary"), Seg::Key("deferred")]).is_some();
    for (k, n) in counts {
        if k == "deferred" && n == 0 && !has_deferred {
            continue;
        }
        doc.set(&[Seg::Key("tasks"), Seg::Key("statusSummary"), Seg::Key(k)], &json!(n))?;
    }
    if has_deferred && doc.value(&[Seg::Key("tasks"), Seg::Key("statusSummary"), Seg::Key("deferred")]).is_none() {
        doc.set(&[Seg::Key("tasks"), Seg::Key("statusSummary"), Seg::Key("deferred")], &json!(0))?;
    }
    Ok(())
}

/// One entry of `testPlan.validationCommands`.
#[derive(Debug, Clone)]
struct Suite {
    suite: String,
    command: String,
    environment: Option<Value>,
}

fn suites(v: &Value) -> Vec<Suite> {
    v.pointer("/testPlan/validationCommands")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let command = text(s.get("command")).filter(|c| !c.trim().is_empty())?;
            Some(Suite {
                suite: text(s.get("suite")).unwrap_or_else(|| command.clone()),
                command,
                environment: s.get("environment").cloned(),
            })
        })
        .collect()
}

/// The next free id `<prefix>-N` of `implementation.<log>`: one past the highest N in use and
/// past the entry count (ids may be missing, as stage-4 payloads write them).
fn next_id(v: &Value, log: &str, prefix: &str) -> String {
    next_ids(v, log, prefix, 1).pop().unwrap_or_else(|| format!("{prefix}-1"))
}

fn next_ids(v: &Value, log: &str, prefix: &str, n: usize) -> Vec<String> {
    let list = v.pointer(&format!("/implementation/{log}")).and_then(Value::as_array);
    let count = list.map_or(0, Vec::len) as u64;
    let top = list
        .into_iter()
        .flatten()
        .filter_map(|e| text(e.get("id")))
        .filter_map(|id| id.strip_prefix(&format!("{prefix}-")).and_then(|r| r.parse::<u64>().ok()))
        .max()
        .unwrap_or(0)
        .max(count);
    (1..=n as u64).map(|k| format!("{prefix}-{}", top + k)).collect()
}

fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.trim_end().to_owned();
    }
    let mut at = s.len() - max;
    while !s.is_char_boundary(at) {
        at += 1;
    }
    s[at..].trim_end().to_owned()
}

impl Format for Payload {
    fn kind(&self) -> &'static str {
        "payload"
    }

    fn file(&self) -> PathBuf {
        self.path.clone()
    }

    fn label(&self) -> String {
        "payload".to_owned()
    }

    fn items(&self, bytes: &[u8]) -> Result<Vec<Item>> {
        let doc = self.shaped_doc(bytes)?;
        let model = Model::read(&doc, self.stage);
        let leaves: BTreeSet<String> = model.leaves().into_iter().map(|e| e.id.clone()).collect();
        model
            .entries
            .iter()
            .map(|e| {
                Ok(Item {
                    id: TaskId::new(&e.id)?,
                    title: e.name.clone(),
                    mark: mark_of(&e.status).unwrap_or(Mark::Pending),
                    parent: e.parent.as_deref().map(TaskId::new).transpose().ok().flatten(),
                    depends_on: if leaves.contains(&e.id) {
                        model.effective_deps(&e.id).iter().filter_map(|d| TaskId::new(d).ok()).collect()
                    } else {
                        e.depends.iter().filter_map(|d| TaskId::new(d).ok()).collect()
                    },
                    optional: false,
                    line: Some(e.line),
                    group: e.plan_step.clone(),
                })
            })
            .collect()
    }

    fn intake(&self, bytes: &[u8]) -> Result<Option<Blocked>> {
        let problems = self.intake_problems(bytes)?;
        if problems.is_empty() {
            return Ok(None);
        }
        Ok(Some(Blocked { bytes: self.record_block(bytes, &problems)?, problems }))
    }

    fn queue(&self, items: &[Item], opts: &QueueOptions) -> Vec<TaskId> {
        let parents: BTreeSet<&TaskId> = items.iter().filter_map(|i| i.parent.as_ref()).collect();
        let is_leaf = |i: &Item| !parents.contains(&i.id);
        let under = |i: &Item, root: &TaskId| {
            let mut at = Some(&i.id);
            let mut hops = 0;
            while let Some(a) = at {
                if a == root {
                    return true;
                }
                hops += 1;
                if hops > items.len() {
                    return false;
                }
                at = items.iter().find(|x| &x.id == a).and_then(|x| x.parent.as_ref());
            }
            false
        };
        let open: Vec<&Item> = items
            .iter()
            .filter(|i| is_leaf(i) && !i.mark.is_final() && !matches!(i.mark, Mark::Blocked | Mark::Failed))
            .filter(|i| opts.task.as_ref().is_none_or(|t| under(i, t)))
            .collect();
        // Kahn's algorithm over the open leaves, taking the first ready one in file order.
        let open_ids: BTreeSet<&TaskId> = open.iter().map(|i| &i.id).collect();
        let mut done: BTreeSet<&TaskId> = BTreeSet::new();
        let mut out = Vec::new();
        while out.len() < open.len() {
            let next = open.iter().find(|i| {
                !done.contains(&i.id) && i.depends_on.iter().all(|d| !open_ids.contains(d) || done.contains(d))
            });
            let Some(next) = next.or_else(|| open.iter().find(|i| !done.contains(&i.id))) else { break };
            done.insert(&next.id);
            out.push(next.id.clone());
        }
        if let Some(max) = opts.max_tasks {
            out.truncate(max);
        }
        out
    }

    fn set_mark(&self, bytes: &[u8], id: &TaskId, mark: Mark) -> Result<Vec<u8>> {
        let mut doc = self.doc(bytes)?;
        self.move_status(&mut doc, id.as_str(), status_of(mark))?;
        Ok(doc.bytes)
    }

    fn record(&self, bytes: &[u8], id: &TaskId, record: &Record) -> Result<Vec<u8>> {
        let mut doc = self.doc(bytes)?;
        let v = doc.to_value()?;
        let model = Model::read(&doc, self.stage);
        let Some(entry) = model.entries.iter().find(|e| e.id == id.as_str()) else {
            return Err(Error::format(&self.path, None, format!("no {} `{id}`", self.stage.unit())));
        };
        let all_suites = suites(&v);
        let command_ids = next_ids(&v, "commands", "command", record.commands.len());
        let test_ids = next_ids(&v, "tests", "test", record.commands.len());
        for (k, run) in record.commands.iter().enumerate() {
            let suite = all_suites.iter().find(|s| s.command == run.command);
            let mut c = Map::new();
            c.insert("id".into(), json!(command_ids[k]));
            c.insert("command".into(), json!(run.command));
            if let Some(s) = suite {
                c.insert("validationSuite".into(), json!(s.suite));
                if let Some(env) = &s.environment {
                    c.insert("environment".into(), env.clone());
                }
            }
            c.insert("taskId".into(), json!(id.as_str()));
            c.insert("timestamp".into(), json!(run.finished_at));
            c.insert("exitCode".into(), json!(run.exit_code));
            c.insert("duration".into(), json!(duration(run.duration_ms)));
            c.insert("output".into(), json!(tail(&run.output_tail, OUTPUT_TAIL)));
            c.insert("log".into(), json!(run.log));
            c.insert("attempt".into(), json!(record.attempt));
            c.insert("executor".into(), json!(self.updated_by()));
            doc.append(&[Seg::Key("implementation"), Seg::Key("commands")], &Value::Object(c))?;
            let passed = run.exit_code == Some(0);
            let t = json!({
                "id": test_ids[k],
                "taskId": id.as_str(),
                "suite": suite.map_or(run.command.as_str(), |s| s.suite.as_str()),
                "status": if passed { "passed" } else { "failed" },
                "duration": duration(run.duration_ms),
                "evidenceRef": command_ids[k],
                "attempt": record.attempt,
            });
            doc.append(&[Seg::Key("implementation"), Seg::Key("tests")], &t)?;
        }
        let requirement = v
            .pointer("/testPlan/coverageMatrix")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|row| match self.stage {
                Stage::Five => text(row.get("taskId")).as_deref() == Some(id.as_str()),
                Stage::Four => text(row.get("planStepId")).as_deref() == Some(id.as_str()),
            })
            .find_map(|row| text(row.get("requirementId")));
        let reason = match &record.outcome {
            Outcome::Completed => None,
            Outcome::Failed(r) | Outcome::Blocked(r) => Some(r.clone()),
        };
        let rationale = match (&record.summary, &reason) {
            (Some(s), Some(r)) => format!("{s} ({}: {r})", record.outcome.word()),
            (Some(s), None) => s.clone(),
            (None, Some(r)) => format!("{}: {r}", record.outcome.word()),
            (None, None) => String::new(),
        };
        let lines: usize = record.changed.iter().map(|f| f.added + f.removed).sum();
        let evidence = record.commands.iter().rev().find_map(|c| c.log.clone());
        let change = json!({
            "id": next_id(&v, "changes", "change"),
            "taskId": id.as_str(),
            "planStepId": entry.plan_step,
            "requirementId": requirement,
            "files": record.changed.iter().map(|f| f.path.clone()).collect::<Vec<_>>(),
            "rationale": rationale,
            "linesChanged": lines,
            "evidenceRef": evidence,
            "status": match record.outcome { Outcome::Completed => "completed", Outcome::Failed(_) => "failed", Outcome::Blocked(_) => "blocked" },
            "attempt": record.attempt,
            "timestamp": record.at,
            "sessionId": record.session_id,
            "executor": self.updated_by(),
        });
        doc.append(&[Seg::Key("implementation"), Seg::Key("changes")], &change)?;
        let status = match record.outcome {
            Outcome::Completed => "completed",
            Outcome::Blocked(_) => "blocked",
            // A failed attempt is retried: the item stays in progress until the retry's record.
            Outcome::Failed(_) => "in-progress",
        };
        self.move_status(&mut doc, id.as_str(), status)?;
        Ok(doc.bytes)
    }

    fn prompt(&self, bytes: &[u8], id: &TaskId) -> Result<String> {
        let doc = self.doc(bytes)?;
        let v = doc.to_value()?;
        let model = Model::read(&doc, self.stage);
        let Some(entry) = model.entries.iter().find(|e| e.id == id.as_str()) else {
            return Err(Error::format(&self.path, None, format!("no {} `{id}`", self.stage.unit())));
        };
        let item = v
            .pointer(&format!("/{}/{}/{}", self.stage.section(), self.stage.list(), entry.index))
            .cloned()
            .unwrap_or(Value::Null);
        let mut p = String::new();
        let _ = writeln!(p, "# {} of {}: {} {}", self.stage.as_str(), self.rel, self.stage.unit(), entry.id);
        let _ = writeln!(p, "\n{}", entry.name);
        if let Some(d) = text(item.get("description")) {
            let _ = writeln!(p, "\n{d}");
        }
        if let Some(s) = text(v.pointer("/requirement/summary")) {
            let _ = writeln!(p, "\n## Requirement\n\n{s}");
        }
        let criteria = strings(item.get("acceptanceCriteria"));
        if !criteria.is_empty() {
            let _ = writeln!(p, "\n## Acceptance criteria\n");
            for c in criteria {
                let _ = writeln!(p, "- {c}");
            }
        }
        let related = item.get("relatedFiles").and_then(Value::as_array).cloned().unwrap_or_default();
        if !related.is_empty() {
            let _ = writeln!(p, "\n## Related files\n");
            for f in related {
                let path = text(f.get("path")).unwrap_or_default();
                let kind = text(f.get("type")).map(|t| format!(" ({t})")).unwrap_or_default();
                let lines = match (f.get("lineStart").and_then(Value::as_u64), f.get("lineEnd").and_then(Value::as_u64))
                {
                    (Some(a), Some(b)) => format!(" lines {a}-{b}"),
                    _ => String::new(),
                };
                let desc = text(f.get("description")).map(|d| format!(": {d}")).unwrap_or_default();
                let _ = writeln!(p, "- `{path}`{kind}{lines}{desc}");
            }
        }
        if let Some(step_id) = &entry.plan_step {
            let step = v
                .pointer("/plan/steps")
                .and_then(Value::as_array)
                .and_then(|s| s.iter().find(|x| text(x.get("id")).as_deref() == Some(step_id.as_str())));
            if let Some(step) = step {
                let _ = writeln!(p, "\n## Plan step {step_id}: {}\n", text(step.get("name")).unwrap_or_default());
                if let Some(s) = text(step.get("successSignal")) {
                    let _ = writeln!(p, "Success signal: {s}");
                }
                let files = strings(step.get("files"));
                if !files.is_empty() {
                    let _ =
                        writeln!(p, "Files: {}", files.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", "));
                }
            }
        }
        let mapped: BTreeSet<String> = v
            .pointer("/testPlan/coverageMatrix")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|row| match self.stage {
                Stage::Five => text(row.get("taskId")).as_deref() == Some(id.as_str()),
                Stage::Four => text(row.get("planStepId")).as_deref() == Some(id.as_str()),
            })
            .flat_map(|row| {
                let mut ids = strings(row.get("scenarioIds"));
                ids.extend(text(row.get("scenarioId")));
                ids
            })
            .collect();
        let scenarios: Vec<&Value> = v
            .pointer("/testPlan/scenarios")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|s| text(s.get("id")).is_some_and(|i| mapped.contains(&i)))
            .collect();
        if !scenarios.is_empty() {
            let _ = writeln!(p, "\n## Test scenarios\n");
            for s in scenarios {
                let _ = writeln!(
                    p,
                    "- {} {} ({}):",
                    text(s.get("id")).unwrap_or_default(),
                    text(s.get("name")).unwrap_or_default(),
                    text(s.get("type")).unwrap_or_default()
                );
                for step in strings(s.get("steps")) {
                    let _ = writeln!(p, "  - {step}");
                }
                if let Some(exp) = s.get("expectedOutput").or_else(|| s.get("expected")) {
                    let exp = match exp {
                        Value::String(x) => x.clone(),
                        other => other.to_string(),
                    };
                    let _ = writeln!(p, "  - expected: {exp}");
                }
            }
        }
        let commands = suites(&v);
        if !commands.is_empty() {
            let _ =
                writeln!(p, "\n## Validation\n\npostflight runs these itself after you finish, exactly as written:\n");
            for s in commands {
                let env = match &s.environment {
                    Some(Value::String(e)) => format!(" (environment {e})"),
                    Some(other @ Value::Object(_)) => format!(" (environment {other})"),
                    _ => String::new(),
                };
                let _ = writeln!(p, "- {}: `{}`{env}", s.suite, s.command);
            }
        }
        let _ =
            writeln!(p, "\nDo not edit {}: postflight records statuses, changes, tests and commands in it.", self.rel);
        Ok(p)
    }

    fn validation_commands(&self, bytes: &[u8], _id: &TaskId) -> Vec<String> {
        self.validation_environment(bytes).into_iter().map(|(c, _)| c).collect()
    }

    fn validation_env(&self, bytes: &[u8], _id: &TaskId) -> Vec<(String, Vec<(String, String)>)> {
        self.validation_environment(bytes)
    }

    fn subject(&self, id: &TaskId, outcome: &Outcome) -> String {
        format!("payload: {id} {}", outcome.word())
    }

    fn trailers(&self, id: &TaskId) -> Vec<String> {
        vec![format!("{TRAILER}: {id}")]
    }

    fn scoping(&self) -> Arc<dyn Scoping> {
        Arc::new(PayloadScoping { rel: self.rel.clone(), stage: self.stage, path: self.path.clone() })
    }

    fn on_failure(&self) -> OnFailure {
        OnFailure::RetryOnceThenBlock
    }

    fn check(&self, bytes: &[u8]) -> Vec<Finding> {
        let doc = match self.doc(bytes) {
            Ok(d) => d,
            Err(e) => {
                let line = match &e {
                    Error::Json { line, .. } => Some(*line),
                    _ => None,
                };
                return vec![Finding {
                    rule: "json",
                    error: true,
                    line,
                    task: None,
                    message: e.to_string(),
                    fixable: false,
                }];
            }
        };
        if let Some((line, what)) = shape_problem(&doc) {
            return vec![Finding {
                rule: "shape",
                error: true,
                line: Some(line),
                task: None,
                message: what,
                fixable: false,
            }];
        }
        let model = Model::read(&doc, self.stage);
        let mut out: Vec<Finding> = model
            .problems
            .iter()
            .map(|p| Finding {
                rule: "intake",
                error: true,
                line: None,
                task: None,
                message: p.clone(),
                fixable: false,
            })
            .collect();
        for e in &model.entries {
            if mark_of(&e.status).is_none() {
                out.push(Finding {
                    rule: "unknown-status",
                    error: true,
                    line: Some(e.line),
                    task: TaskId::new(&e.id).ok(),
                    message: format!(
                        "{} `{}` has status `{}`, which is unknown (known: ready, in-progress, completed, blocked, failed, skipped); a run refuses to take it",
                        self.stage.unit(),
                        e.id,
                        super::lines::one_line(&e.status, 80)
                    ),
                    fixable: false,
                });
            }
        }
        if self.stage == Stage::Five {
            if let Some(node) = doc.node(&[Seg::Key("tasks"), Seg::Key("statusSummary")]) {
                let counts = summary_counts(&doc);
                let stale: Vec<String> = counts
                    .iter()
                    .filter(|(k, n)| {
                        let have = doc.value(&[Seg::Key("tasks"), Seg::Key("statusSummary"), Seg::Key(k)]);
                        (**n > 0 || have.is_some()) && have.and_then(|h| h.as_u64()) != Some(**n)
                    })
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                if !stale.is_empty() {
                    out.push(Finding {
                        rule: "stale-summary",
                        error: false,
                        line: Some(line_of(&doc.bytes, node.start)),
                        task: None,
                        message: format!(
                            "tasks.statusSummary does not count the items (they say {})",
                            stale.join(", ")
                        ),
                        fixable: true,
                    });
                }
            }
        }
        out
    }

    fn check_against(&self, old: &[u8], new: &[u8]) -> Result<Vec<Finding>> {
        self.append_only_findings(old, new)
    }

    fn log_dir(&self, id: &TaskId) -> Option<PathBuf> {
        self.path.parent().map(|d| d.join("validation").join(id.as_str()))
    }

    fn fix(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        let mut doc = self.doc(bytes)?;
        if self.stage == Stage::Five && doc.node(&[Seg::Key("tasks"), Seg::Key("statusSummary")]).is_some() {
            write_summary(&mut doc)?;
        }
        Ok(doc.bytes)
    }
}

/// The fields a stage may move freely: every `status`, `meta.*`, `tasks.statusSummary.*`.
fn is_status_field(path: &[String]) -> bool {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    p.last() == Some(&"status")
        || p.first() == Some(&"meta")
        || (p.len() >= 2 && p[0] == "tasks" && p[1] == "statusSummary")
}

fn append_only(old: &Value, new: &Doc) -> Vec<Finding> {
    let new_v = new.to_value().unwrap_or(Value::Null);
    let mut out = Vec::new();
    for log in LOGS {
        let pointer = format!("/implementation/{log}");
        let old_list = old.pointer(&pointer).and_then(Value::as_array).cloned().unwrap_or_default();
        let new_list = new_v.pointer(&pointer).and_then(Value::as_array).cloned().unwrap_or_default();
        for (i, entry) in old_list.iter().enumerate() {
            if new_list.get(i) == Some(entry) {
                continue;
            }
            let name = text(entry.get("id")).map_or_else(|| format!("entry {}", i + 1), |id| format!("`{id}`"));
            let line = new
                .node(&[Seg::Key("implementation"), Seg::Key(log), Seg::Index(i)])
                .map(|n| line_of(&new.bytes, n.start));
            let (rule, message) = if new_list.contains(entry) {
                (
                    "log-entry-moved",
                    format!("implementation.{log} {name} moved from position {} (the log is chronological)", i + 1),
                )
            } else if let Some(id) =
                text(entry.get("id")).filter(|id| new_list.iter().any(|e| text(e.get("id")).as_deref() == Some(id)))
            {
                let _ = id;
                (
                    "log-entry-changed",
                    format!("implementation.{log} {name} was rewritten (log entries are append-only)"),
                )
            } else if new_list.get(i).is_some() && text(entry.get("id")).is_none() {
                (
                    "log-entry-changed",
                    format!("implementation.{log} {name} was rewritten or removed (log entries are append-only)"),
                )
            } else {
                ("log-entry-missing", format!("implementation.{log} {name} was deleted (log entries are append-only)"))
            };
            out.push(Finding {
                rule,
                error: true,
                line,
                task: text(entry.get("taskId")).and_then(|t| TaskId::new(&t).ok()),
                message,
                fixable: false,
            });
        }
    }
    let mut lost = Vec::new();
    lost_data(old, &new_v, &mut Vec::new(), &mut lost);
    for path in lost {
        out.push(Finding {
            rule: "data-lost",
            error: true,
            line: None,
            task: None,
            message: format!("{path} of the revision is gone or changed (a stage only adds to the payload)"),
            fixable: false,
        });
    }
    out
}

/// Every value of `old` outside the logs and the status fields that `new` does not hold.
fn lost_data(old: &Value, new: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
    if path.len() == 2 && path[0] == "implementation" && LOGS.contains(&path[1].as_str()) {
        return;
    }
    if is_status_field(path) && !matches!(old, Value::Object(_) | Value::Array(_)) {
        return;
    }
    let shown = || if path.is_empty() { "the document".to_owned() } else { path.join(".") };
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, v) in o {
                path.push(k.clone());
                match n.get(k) {
                    Some(nv) => lost_data(v, nv, path, out),
                    None => {
                        if !is_status_field(path) || matches!(v, Value::Object(_) | Value::Array(_)) {
                            out.push(path.join("."));
                        }
                    }
                }
                path.pop();
            }
        }
        (Value::Array(o), Value::Array(n)) => {
            for (i, v) in o.iter().enumerate() {
                path.push(format!("[{i}]"));
                match n.get(i) {
                    Some(nv) => lost_data(v, nv, path, out),
                    None => out.push(path.join(".").replace(".[", "[")),
                }
                path.pop();
            }
        }
        (o, n) if o == n => {}
        _ => out.push(shown().replace(".[", "[")),
    }
}

/// How a payload item's commit takes the payload: HEAD's bytes with only that item's share of
/// the work tree applied (its status and its parents', its `implementation.*` entries, `meta`,
/// the recomputed `tasks.statusSummary`), so one item's commit never carries another's.
#[derive(Debug, Clone)]
pub struct PayloadScoping {
    rel: String,
    stage: Stage,
    path: PathBuf,
}

impl Scoping for PayloadScoping {
    fn shares(&self, path: &str) -> bool {
        path == self.rel
    }

    fn scope(
        &self,
        _path: &str,
        head: &[u8],
        worktree: &[u8],
        task: &TaskId,
        _hint: Option<(usize, usize)>,
    ) -> Result<Scoped> {
        if let Some(scoped) = Scoped::trivially(head, worktree) {
            return Ok(scoped);
        }
        let wt = Doc::parse(&self.path, worktree.to_vec())?;
        let mut out = Doc::parse(&self.path, head.to_vec())?;
        let wt_v = wt.to_value()?;
        let wt_model = Model::read(&wt, self.stage);
        // The item and its ancestors take the work tree's status.
        let mut ids = vec![task.as_str().to_owned()];
        let mut at = wt_model.entries.iter().find(|e| e.id == task.as_str()).and_then(|e| e.parent.clone());
        while let Some(p) = at {
            if ids.contains(&p) {
                break;
            }
            ids.push(p.clone());
            at = wt_model.entries.iter().find(|e| e.id == p).and_then(|e| e.parent.clone());
        }
        for id in &ids {
            let head_model = Model::read(&out, self.stage);
            let (Some(h), Some(w)) =
                (head_model.entries.iter().find(|e| &e.id == id), wt_model.entries.iter().find(|e| &e.id == id))
            else {
                continue;
            };
            let status = wt_v.pointer(&format!("/{}/{}/{}/status", self.stage.section(), self.stage.list(), w.index));
            if let Some(status) = status {
                out.set(
                    &[
                        Seg::Key(self.stage.section()),
                        Seg::Key(self.stage.list()),
                        Seg::Index(h.index),
                        Seg::Key("status"),
                    ],
                    status,
                )?;
            }
        }
        for key in ["currentStage", "lastUpdatedBy", "lastUpdatedAt", "stageStatus"] {
            if let Some(v) = wt.value(&[Seg::Key("meta"), Seg::Key(key)]) {
                out.set(&[Seg::Key("meta"), Seg::Key(key)], &v)?;
            }
        }
        let head_v = out.to_value()?;
        for log in LOGS {
            let pointer = format!("/implementation/{log}");
            let mut have: Vec<Value> = head_v.pointer(&pointer).and_then(Value::as_array).cloned().unwrap_or_default();
            for e in wt_v.pointer(&pointer).and_then(Value::as_array).into_iter().flatten() {
                if text(e.get("taskId")).as_deref() != Some(task.as_str()) {
                    continue;
                }
                if let Some(i) = have.iter().position(|h| h == e) {
                    have.remove(i);
                    continue;
                }
                out.append(&[Seg::Key("implementation"), Seg::Key(log)], e)?;
            }
        }
        if self.stage == Stage::Five && out.node(&[Seg::Key("tasks"), Seg::Key("statusSummary")]).is_some() {
            write_summary(&mut out)?;
        }
        Ok(Scoped::of(out.bytes, head, worktree))
    }
}

#[cfg(test)]
mod tests;
