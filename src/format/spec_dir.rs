//! Spec directories (seed 003, Kiro `.kiro/specs/<name>/`, Spec Kit `specs/NNN-name/`): a
//! `tasks.md` next to `requirements.md` and `design.md` (Spec Kit: `spec.md` and `plan.md`).
//! One parser reads the three dialects (`../shared/spec/sibling-formats.md` A1–A4):
//!
//! - task lines `- [M] 1. Title`, `  - [M] 1.1 Title`, `- [M]* 2.2 Optional`, `- [M] T001 [P] [US1] Title`
//!   (ids `1`, `1.1`, `T001`; parent by numbering, else by indentation; code fences skipped);
//! - markers `[ ]`, `[x]`/`[X]`, `[-]`, the five emoji of seed 003 and their Mac Roman
//!   mis-decodings (read as what they mean; `check` reports them, `fix` repairs them);
//! - the lines a task owns: its line and the deeper-indented detail lines under it up to the next
//!   task line or heading (blank lines between them included, trailing ones not).
//!
//! Markers are written in the file's own style: an emoji file gets the emoji, a checkbox file
//! `[-]` in progress and `x` (or `X`, when the file uses it) done, and a failure leaves `[ ]` with
//! a `- Failed (...)` note line under the task. Nothing outside the task's own lines changes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lines::{self, Lines};
use super::{Finding, Format, Item, Mark, OnFailure, Outcome, QueueOptions, Record};
use crate::error::{Error, Result};
use crate::git::{Scoped, Scoping};
use crate::task_id::TaskId;

/// The mis-decoded markers (UTF-8 read as Mac OS Roman, saved again as UTF-8) and the emoji they
/// stand for. The second in-progress form lost its invisible U+F8FF on the way.
pub const MOJIBAKE: [(&str, &str); 6] = [
    ("\u{F8FF}\u{FC}\u{F6}\u{DF}", "\u{1F6A7}"),
    ("\u{FC}\u{F6}\u{DF}", "\u{1F6A7}"),
    ("\u{201A}\u{FA}\u{D6}", "\u{2705}"),
    ("\u{201A}\u{F9}\u{E5}", "\u{274C}"),
    ("\u{201A}\u{E8}\u{2260}\u{D4}\u{220F}\u{E8}", "\u{23ED}\u{FE0F}"),
    ("\u{201A}\u{E8}\u{2260}", "\u{23ED}"),
];

/// The traceability labels that name requirements, in the languages Kiro writes them.
pub const REQUIREMENT_LABELS: [&str; 7] =
    ["Requirements", "Requirement", "需求", "要件", "Requisitos", "Gereksinimler", "Anforderungen"];

/// How a marker is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spelling {
    /// `[ ]`, `[x]`, `[X]`, `[-]`.
    Box,
    /// The emoji of seed 003.
    Emoji,
    /// The emoji mis-decoded.
    Mojibake,
}

/// What a marker body means, and how it is spelled; `None` for a marker nobody defined.
fn read_marker(body: &str) -> (Option<Mark>, Spelling) {
    let emoji = |e: &str| match e {
        "\u{1F6A7}" => Some(Mark::InProgress),
        "\u{2705}" => Some(Mark::Completed),
        "\u{274C}" => Some(Mark::Failed),
        "\u{23ED}\u{FE0F}" | "\u{23ED}" => Some(Mark::Skipped),
        _ => None,
    };
    match body {
        " " => (Some(Mark::Pending), Spelling::Box),
        "x" | "X" => (Some(Mark::Completed), Spelling::Box),
        "-" => (Some(Mark::InProgress), Spelling::Box),
        _ => {
            if let Some(m) = emoji(body) {
                return (Some(m), Spelling::Emoji);
            }
            match MOJIBAKE.iter().find(|(bad, _)| *bad == body) {
                Some((_, good)) => (emoji(good), Spelling::Mojibake),
                None => (None, Spelling::Box),
            }
        }
    }
}

/// The style a file's markers are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Checkboxes; the done letter (`x` or `X`).
    Box(char),
    /// Seed 003's emoji.
    Emoji,
}

impl Style {
    fn marker(self, mark: Mark) -> String {
        match self {
            Style::Box(done) => match mark {
                Mark::InProgress => "-".into(),
                Mark::Completed => done.to_string(),
                Mark::Pending | Mark::Failed | Mark::Blocked | Mark::Skipped => " ".into(),
            },
            Style::Emoji => match mark {
                Mark::Pending => " ",
                Mark::InProgress => "\u{1F6A7}",
                Mark::Completed => "\u{2705}",
                Mark::Failed | Mark::Blocked => "\u{274C}",
                Mark::Skipped => "\u{23ED}\u{FE0F}",
            }
            .into(),
        }
    }
}

/// One task line and what it owns.
#[derive(Debug, Clone)]
struct Task {
    id: TaskId,
    /// 0-based line.
    line: usize,
    indent: usize,
    /// Byte range of the marker body in the line's text.
    body: (usize, usize),
    marker: String,
    mark: Option<Mark>,
    spelling: Spelling,
    optional: bool,
    title: String,
    parent: Option<usize>,
    group: Option<String>,
    /// One past the last line the task owns (its line and its detail lines).
    end: usize,
    refs: Vec<String>,
    depends_on: Vec<TaskId>,
    /// The last failure note's word (`Failed`, `Blocked`) under a `[ ]` task.
    note: Option<Mark>,
}

impl Task {
    /// The mark a run goes by.
    fn effective(&self) -> Mark {
        match (self.mark, self.note) {
            (Some(Mark::Pending), Some(n)) => n,
            (Some(m), _) => m,
            (None, _) => Mark::Pending,
        }
    }
}

/// A parsed tasks.md.
#[derive(Debug, Clone)]
struct Parsed {
    lines: Lines,
    tasks: Vec<Task>,
}

/// The parts of a task line: indent, marker body range, optional, id, title.
type TaskLine = (usize, (usize, usize), bool, String, String);

/// The parts of a task line (see [`TaskLine`]), when `text` is one.
fn task_line(text: &str) -> Option<TaskLine> {
    let ws = text.len() - text.trim_start_matches([' ', '\t']).len();
    let rest = &text[ws..];
    let bullet = ["- ", "* ", "+ "].iter().find(|b| rest.starts_with(**b))?;
    let after_bullet = ws + bullet.len();
    let rest = &text[after_bullet..];
    let rest = rest.strip_prefix('[')?;
    let close = rest.find(']')?;
    let body = &rest[..close];
    let n = body.chars().count();
    if n == 0 || n > 8 || body.contains('[') {
        return None;
    }
    let body_start = after_bullet + 1;
    let body_end = body_start + close;
    let mut after = &text[body_end + 1..];
    let optional = after.starts_with('*') && !after.starts_with("**");
    if optional {
        after = &after[1..];
    }
    if !after.starts_with(' ') {
        return None;
    }
    let after = after.trim_start();
    let after = after.strip_prefix("**").unwrap_or(after);
    let (id, tail) = task_id_prefix(after)?;
    let title = tail.trim().trim_end_matches("**").trim().to_owned();
    if title.is_empty() {
        return None;
    }
    Some((lines::indent(text), (body_start, body_end), optional, id, title))
}

/// A task id at the start of `s` (`1.`, `1.1`, `T001`) and the rest after it; the rest starts
/// with white space.
fn task_id_prefix(s: &str) -> Option<(String, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'T') {
        i = 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i < 4 {
            return None;
        }
    } else {
        loop {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return None;
            }
            if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
                i += 1;
                continue;
            }
            break;
        }
    }
    let id = s[..i].to_owned();
    let mut rest = &s[i..];
    if i < b.len() && b[i] == b'.' && !b[0].is_ascii_alphabetic() {
        rest = &rest[1..];
    }
    (rest.starts_with([' ', '\t'])).then_some((id, rest))
}

/// A traceability bullet `- _Label: refs_` (or `- _Label:_ refs`): its label and value, cut at
/// a second label after `|` or `｜`.
fn label_line(text: &str) -> Option<(&str, &str)> {
    let t = text.trim_start();
    let t = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")).unwrap_or(t);
    let t = t.strip_prefix('_')?;
    let colon = t.find([':', '：'])?;
    let label = t[..colon].trim();
    if label.is_empty() || label.starts_with('_') {
        return None;
    }
    let colon_len = t[colon..].chars().next().map_or(1, char::len_utf8);
    let value = &t[colon + colon_len..];
    let value = value.strip_prefix('_').unwrap_or(value);
    let value = value.split(['|', '｜']).next().unwrap_or_default();
    Some((label, value.trim().trim_end_matches('.').trim_end_matches('_').trim()))
}

/// The reference tokens of a traceability value (`1.1, 2.3`, `1.1、1.2`, `FR-1`); prose is dropped.
fn ref_tokens(value: &str) -> Vec<String> {
    value
        .split([',', '、', '，', ';', ' ', '\t'])
        .map(|t| t.trim_matches(|c: char| matches!(c, '_' | '.' | '(' | ')' | '*')))
        .filter(|t| is_numbered(t) || is_prefixed(t))
        .map(str::to_owned)
        .collect()
}

fn is_numbered(t: &str) -> bool {
    !t.is_empty() && t.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_prefixed(t: &str) -> bool {
    let Some((p, n)) = t.split_once('-') else { return false };
    !p.is_empty() && p.bytes().all(|b| b.is_ascii_uppercase()) && is_numbered(n)
}

/// `(depends on T012, T013)` and ranges `T015-T017` in a Spec Kit title.
fn title_depends(title: &str) -> Vec<TaskId> {
    let Some(i) = title.find("depends on ") else { return Vec::new() };
    let rest = &title[i + "depends on ".len()..];
    let rest = rest.split(')').next().unwrap_or(rest);
    let mut out = Vec::new();
    for tok in rest.split([',', ' ']).map(str::trim).filter(|t| !t.is_empty()) {
        if let Some((a, b)) = tok.split_once('-') {
            let num = |s: &str| s.strip_prefix('T').and_then(|d| d.parse::<u32>().ok().map(|n| (n, d.len())));
            if let (Some((x, w)), Some((y, _))) = (num(a), num(b)) {
                for n in x..=y.min(x + 999) {
                    out.extend(TaskId::new(&format!("T{n:0w$}")).ok());
                }
                continue;
            }
        }
        if let Some((id, _)) = task_id_prefix(&format!("{tok} ")) {
            out.extend(TaskId::new(&id).ok());
        }
    }
    out
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Parsed> {
    let lines = Lines::parse(path, bytes)?;
    let fenced = lines.fenced();
    let mut tasks: Vec<Task> = Vec::new();
    let mut group: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let text = lines.text(i);
        if fenced[i] {
            i += 1;
            continue;
        }
        if let Some((level, h)) = lines::heading(text) {
            if level == 2 {
                group = Some(h.to_owned());
            }
            i += 1;
            continue;
        }
        let Some((indent, body, optional, id, title)) = task_line(text) else {
            i += 1;
            continue;
        };
        let id = TaskId::new(&id).map_err(|_| {
            Error::format(path, Some(i + 1), format!("`{}` is not a task id", crate::task_id::shown(&id)))
        })?;
        let marker = text[body.0..body.1].to_owned();
        let (mark, spelling) = read_marker(&marker);
        // The lines the task owns.
        let mut j = i + 1;
        let mut end = i + 1;
        while j < lines.len() {
            let t = lines.text(j);
            if !fenced[j] && (task_line(t).is_some() || lines::heading(t).is_some()) {
                break;
            }
            if t.trim().is_empty() {
                j += 1;
                continue;
            }
            if lines::indent(t) > indent || fenced[j] {
                j += 1;
                end = j;
            } else {
                break;
            }
        }
        let mut refs = Vec::new();
        let mut depends_on = title_depends(&title);
        let mut note = None;
        for k in i + 1..end {
            let t = lines.text(k);
            if let Some((label, value)) = label_line(t) {
                if REQUIREMENT_LABELS.contains(&label) {
                    refs.extend(ref_tokens(value));
                } else if label == "Depends" {
                    depends_on.extend(ref_tokens(value).iter().filter_map(|r| TaskId::new(r).ok()));
                }
            }
            let d = t.trim_start();
            if d.starts_with("- Failed (") || d.starts_with("- Failed:") {
                note = Some(Mark::Failed);
            } else if d.starts_with("- Blocked (") {
                note = Some(Mark::Blocked);
            }
        }
        for word in title.split_whitespace() {
            if let Some(story) = word.strip_prefix("[US").and_then(|w| w.strip_suffix(']')) {
                if story.bytes().all(|b| b.is_ascii_digit()) && !story.is_empty() {
                    refs.push(format!("US{story}"));
                }
            }
        }
        let numbered_parent = id.as_str().rsplit_once('.').map(|(p, _)| p.to_owned());
        let parent = match numbered_parent {
            Some(p) => tasks.iter().rposition(|t| t.id.as_str() == p),
            None if indent > 0 => tasks.iter().rposition(|t| t.indent < indent),
            None => None,
        };
        tasks.push(Task {
            id,
            line: i,
            indent,
            body,
            marker,
            mark,
            spelling,
            optional,
            title,
            parent,
            group: group.clone(),
            end,
            refs,
            depends_on,
            note,
        });
        i = end.max(i + 1);
    }
    Ok(Parsed { lines, tasks })
}

impl Parsed {
    fn style(&self) -> Style {
        if self.tasks.iter().any(|t| t.spelling != Spelling::Box) {
            return Style::Emoji;
        }
        let upper = self.tasks.iter().filter(|t| t.marker == "X").count();
        let lower = self.tasks.iter().filter(|t| t.marker == "x").count();
        Style::Box(if upper > lower { 'X' } else { 'x' })
    }

    /// The index of task `id`, refusing an absent or doubled one.
    fn find(&self, path: &Path, id: &TaskId) -> Result<usize> {
        let at: Vec<usize> = self.tasks.iter().enumerate().filter(|(_, t)| &t.id == id).map(|(i, _)| i).collect();
        match at.as_slice() {
            [i] => Ok(*i),
            [] => Err(Error::refused(
                format!("{}: no task `{id}`", path.display()),
                Some("`xtask status <PATH>` lists the tasks and their ids"),
            )),
            many => Err(Error::format(
                path,
                Some(self.tasks[many[0]].line + 1),
                format!(
                    "task `{id}` is written {} times (lines {}); refusing to edit an ambiguous task",
                    many.len(),
                    many.iter().map(|i| (self.tasks[*i].line + 1).to_string()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    fn duplicates(&self) -> Vec<(TaskId, Vec<usize>)> {
        let mut seen: BTreeMap<&TaskId, Vec<usize>> = BTreeMap::new();
        for t in &self.tasks {
            seen.entry(&t.id).or_default().push(t.line + 1);
        }
        seen.into_iter().filter(|(_, l)| l.len() > 1).map(|(id, l)| (id.clone(), l)).collect()
    }

    /// The task's lines with its marker set.
    fn with_marker(&mut self, i: usize, marker: &str) {
        let t = &self.tasks[i];
        let text = self.lines.text(t.line);
        let new = format!("{}{marker}{}", &text[..t.body.0], &text[t.body.1..]);
        self.lines.replace(t.line, &new);
    }

    /// The indentation of the task's detail lines (its first one's, else two more than its own).
    fn detail_pad(&self, i: usize) -> String {
        let t = &self.tasks[i];
        let first = (t.line + 1..t.end).map(|k| self.lines.text(k)).find(|l| !l.trim().is_empty());
        let n = first.map(lines::indent).filter(|n| *n > t.indent).unwrap_or(t.indent + 2);
        " ".repeat(n)
    }
}

/// The requirement texts a prompt quotes and `check` resolves references against.
#[derive(Debug, Clone, Default)]
struct Requirements {
    /// `1.2` → the criterion's text; `1` → the requirement's whole section; `FR-001` → its line;
    /// `US1` → the user story's section.
    texts: BTreeMap<String, String>,
    /// Whether the document numbers requirements (`### Requirement N`).
    numbered: bool,
    /// Whether it has `**FR-001**`-style ids.
    prefixed: bool,
}

impl Requirements {
    fn parse(text: &str) -> Requirements {
        let mut out = Requirements::default();
        let mut section: Option<(String, Vec<&str>)> = None;
        let flush = |out: &mut Requirements, section: &mut Option<(String, Vec<&str>)>| {
            if let Some((key, body)) = section.take() {
                out.texts.insert(key, body.join("\n").trim().to_owned());
            }
        };
        let mut current: Option<String> = None;
        for line in text.lines() {
            if let Some((level, h)) = lines::heading(line) {
                if level <= 3 {
                    flush(&mut out, &mut section);
                    current = None;
                    let key = if let Some(rest) = h.strip_prefix("Requirement ") {
                        let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
                        (!n.is_empty()).then(|| {
                            out.numbered = true;
                            current = Some(n.clone());
                            n
                        })
                    } else if let Some(rest) = h.strip_prefix("User Story ") {
                        let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
                        (!n.is_empty()).then(|| format!("US{n}"))
                    } else {
                        None
                    };
                    section = key.map(|k| (k, vec![line]));
                    continue;
                }
            }
            if let Some((_, body)) = &mut section {
                body.push(line);
            }
            let t = line.trim_start();
            if let Some(n) = &current {
                let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
                if !digits.is_empty() && t[digits.len()..].starts_with(". ") {
                    out.texts.insert(format!("{n}.{digits}"), t[digits.len() + 2..].trim().to_owned());
                }
            }
            if let Some(rest) = t.strip_prefix("- **") {
                if let Some((id, text)) = rest.split_once("**") {
                    if is_prefixed(id) {
                        out.prefixed = true;
                        out.texts.insert(id.to_owned(), text.trim_start_matches(':').trim().to_owned());
                    }
                }
            }
        }
        flush(&mut out, &mut section);
        out
    }

    /// Whether `r` is a reference this document could resolve and does not.
    fn dangling(&self, r: &str) -> bool {
        if self.texts.contains_key(r) || r.starts_with("US") {
            return false;
        }
        (is_numbered(r) && self.numbered) || (is_prefixed(r) && self.prefixed)
    }
}

/// A spec directory.
#[derive(Debug, Clone)]
pub struct SpecDir {
    root: PathBuf,
    dir: PathBuf,
    name: String,
}

/// The names a spec directory's requirements and design documents go by, in order.
const REQUIREMENT_DOCS: [&str; 3] = ["requirements.md", "bugfix.md", "spec.md"];
const DESIGN_DOCS: [&str; 2] = ["design.md", "plan.md"];
/// The task list's name.
pub const TASKS_FILE: &str = "tasks.md";

impl SpecDir {
    /// The spec directory `dir` of the repository at `root`.
    pub fn new(root: &Path, dir: &Path) -> SpecDir {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "spec".into());
        SpecDir { root: root.to_path_buf(), dir: dir.to_path_buf(), name }
    }

    fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.root).unwrap_or(p).to_string_lossy().into_owned()
    }

    fn doc(&self, names: &[&str]) -> Option<PathBuf> {
        names.iter().map(|n| self.dir.join(n)).find(|p| p.is_file())
    }

    /// What is missing of the three documents.
    fn missing(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.doc(&REQUIREMENT_DOCS).is_none() {
            out.push("requirements.md (Spec Kit: spec.md)".to_owned());
        }
        if self.doc(&DESIGN_DOCS).is_none() {
            out.push("design.md (Spec Kit: plan.md)".to_owned());
        }
        if !self.dir.join(TASKS_FILE).is_file() {
            out.push(TASKS_FILE.to_owned());
        }
        out
    }

    fn requirements(&self) -> Requirements {
        self.doc(&REQUIREMENT_DOCS)
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| Requirements::parse(&t))
            .unwrap_or_default()
    }

    fn parse(&self, bytes: &[u8]) -> Result<Parsed> {
        parse(&self.file(), bytes)
    }
}

impl Format for SpecDir {
    fn kind(&self) -> &'static str {
        "spec"
    }

    fn file(&self) -> PathBuf {
        self.dir.join(TASKS_FILE)
    }

    fn label(&self) -> String {
        format!("spec {}", self.name)
    }

    fn items(&self, bytes: &[u8]) -> Result<Vec<Item>> {
        let missing = self.missing();
        if !missing.is_empty() {
            return Err(Error::refused(
                format!("{} is not a complete spec directory: missing {}", self.rel(&self.dir), missing.join(", ")),
                Some("a spec directory holds requirements.md, design.md and tasks.md (Spec Kit: spec.md, plan.md, tasks.md); write the missing documents first"),
            ));
        }
        let p = self.parse(bytes)?;
        if p.tasks.is_empty() {
            return Err(Error::format(
                self.file(),
                None,
                "holds no task line (`- [ ] 1. Title`, `  - [ ] 1.1 Title` or `- [ ] T001 Title`)",
            ));
        }
        if let Some((id, at)) = p.duplicates().into_iter().next() {
            return Err(Error::format(
                self.file(),
                at.first().copied(),
                format!(
                    "task `{id}` is written {} times (lines {}); renumber one of them",
                    at.len(),
                    at.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        Ok(p.tasks
            .iter()
            .map(|t| Item {
                id: t.id.clone(),
                title: t.title.clone(),
                mark: t.effective(),
                parent: t.parent.map(|i| p.tasks[i].id.clone()),
                depends_on: t.depends_on.clone(),
                optional: t.optional,
                line: Some(t.line + 1),
                group: t.group.clone(),
            })
            .collect())
    }

    fn queue(&self, items: &[Item], opts: &QueueOptions) -> Vec<TaskId> {
        queue(items, opts)
    }

    fn set_mark(&self, bytes: &[u8], id: &TaskId, mark: Mark) -> Result<Vec<u8>> {
        let mut p = self.parse(bytes)?;
        let i = p.find(&self.file(), id)?;
        let marker = p.style().marker(mark);
        p.with_marker(i, &marker);
        Ok(p.lines.bytes())
    }

    fn record(&self, bytes: &[u8], id: &TaskId, record: &Record) -> Result<Vec<u8>> {
        let mut p = self.parse(bytes)?;
        let i = p.find(&self.file(), id)?;
        let style = p.style();
        let (mark, note) = match &record.outcome {
            Outcome::Completed => (Mark::Completed, None),
            Outcome::Failed(why) => (Mark::Failed, Some(("Failed", why.clone()))),
            Outcome::Blocked(why) => (Mark::Blocked, Some(("Blocked", why.clone()))),
        };
        p.with_marker(i, &style.marker(mark));
        let note = note.or_else(|| {
            // Seed 003 asks for a note of the implementation's decisions; a checkbox file gets none.
            (style == Style::Emoji)
                .then(|| record.summary.clone().filter(|s| !s.trim().is_empty()).map(|s| ("Note", s)))
                .flatten()
        });
        if let Some((word, text)) = note {
            let line = format!(
                "{}- {word} ({}, session {}): {}",
                p.detail_pad(i),
                lines::date_of(&record.at),
                record.session_id,
                lines::one_line(&text, 300)
            );
            let at = p.tasks[i].end;
            p.lines.insert(at, &line);
        }
        Ok(p.lines.bytes())
    }

    fn prompt(&self, bytes: &[u8], id: &TaskId) -> Result<String> {
        let p = self.parse(bytes)?;
        let i = p.find(&self.file(), id)?;
        let t = &p.tasks[i];
        let mut out =
            format!("Task {id} of the spec directory {} ({}):\n\n", self.rel(&self.dir), self.rel(&self.file()));
        for k in t.line..t.end {
            out.push_str(p.lines.text(k));
            out.push('\n');
        }
        let children: Vec<&Task> = p.tasks.iter().filter(|c| c.parent == Some(i)).collect();
        if !children.is_empty() {
            out.push_str("\nIts sub-tasks (each run and committed on its own):\n");
            for c in children {
                out.push_str(p.lines.text(c.line));
                out.push('\n');
            }
        }
        let reqs = self.requirements();
        let req_doc = self.doc(&REQUIREMENT_DOCS);
        let quoted: Vec<(&String, &String)> =
            t.refs.iter().filter_map(|r| reqs.texts.get(r).map(|text| (r, text))).collect();
        if let Some(doc) = &req_doc {
            if !quoted.is_empty() {
                out.push_str(&format!("\nThe requirements it references ({}):\n", self.rel(doc)));
                for (r, text) in quoted {
                    out.push_str(&format!("- {r}: {}\n", text.replace('\n', "\n  ")));
                }
            }
            out.push_str(&format!("\nRequirements document: {}\n", self.rel(doc)));
        }
        if let Some(design) = self.doc(&DESIGN_DOCS) {
            out.push_str(&format!("Design document (read it before you start): {}\n", self.rel(&design)));
        }
        Ok(out)
    }

    fn subject(&self, id: &TaskId, outcome: &Outcome) -> String {
        format!("spec {}: task {id} {}", self.name, outcome.word())
    }

    fn trailers(&self, id: &TaskId) -> Vec<String> {
        vec![format!("Spec-Task: {id}")]
    }

    fn scoping(&self) -> Arc<dyn Scoping> {
        Arc::new(SpecScoping { rel: self.rel(&self.file()), path: self.file() })
    }

    fn on_failure(&self) -> OnFailure {
        OnFailure::Stop
    }

    fn check(&self, bytes: &[u8]) -> Vec<Finding> {
        let mut out = Vec::new();
        for m in self.missing().into_iter().filter(|m| m != TASKS_FILE) {
            out.push(Finding {
                rule: "missing-document",
                error: true,
                line: None,
                task: None,
                message: format!("the spec directory has no {m}"),
                fixable: false,
            });
        }
        let p = match self.parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                out.push(Finding {
                    rule: "unreadable",
                    error: true,
                    line: None,
                    task: None,
                    message: e.to_string(),
                    fixable: false,
                });
                return out;
            }
        };
        if p.tasks.is_empty() {
            out.push(Finding {
                rule: "no-tasks",
                error: true,
                line: None,
                task: None,
                message: "holds no task line (`- [ ] 1. Title`, `  - [ ] 1.1 Title` or `- [ ] T001 Title`); implement and status refuse it".to_owned(),
                fixable: false,
            });
        }
        for (id, at) in p.duplicates() {
            out.push(Finding {
                rule: "duplicate-id",
                error: true,
                line: at.first().copied(),
                task: Some(id.clone()),
                message: format!(
                    "task `{id}` is written {} times (lines {})",
                    at.len(),
                    at.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
                fixable: false,
            });
        }
        let reqs = self.requirements();
        for (i, t) in p.tasks.iter().enumerate() {
            let line = Some(t.line + 1);
            match (t.mark, t.spelling) {
                (None, _) => out.push(Finding {
                    rule: "unknown-marker",
                    error: true,
                    line,
                    task: Some(t.id.clone()),
                    message: format!(
                        "task {}: unknown marker `[{}]` (known: [ ], [x], [X], [-], [🚧], [✅], [❌], [⏭️]); status shows it pending, implement refuses to take it",
                        t.id, t.marker
                    ),
                    fixable: false,
                }),
                (Some(_), Spelling::Mojibake) => {
                    let good = MOJIBAKE.iter().find(|(bad, _)| *bad == t.marker).map_or("", |(_, g)| *g);
                    out.push(Finding {
                        rule: "mis-decoded-marker",
                        error: true,
                        line,
                        task: Some(t.id.clone()),
                        message: format!(
                            "task {}: marker `[{}]` is `[{good}]` mis-decoded (UTF-8 read as Mac OS Roman)",
                            t.id,
                            t.marker.escape_unicode().to_string().replace("\\u{f8ff}", "\\u{F8FF}")
                        ),
                        fixable: true,
                    });
                }
                _ => {}
            }
            for r in t.refs.iter().filter(|r| reqs.dangling(r)) {
                out.push(Finding {
                    rule: "unknown-requirement",
                    error: false,
                    line,
                    task: Some(t.id.clone()),
                    message: format!(
                        "task {} references requirement {r}, which the requirements document does not define",
                        t.id
                    ),
                    fixable: false,
                });
            }
            if t.effective() == Mark::Completed {
                let open: Vec<&Task> = p
                    .tasks
                    .iter()
                    .filter(|c| c.parent == Some(i) && !c.optional && !c.effective().is_final())
                    .collect();
                if !open.is_empty() {
                    out.push(Finding {
                        rule: "parent-done-child-open",
                        error: false,
                        line,
                        task: Some(t.id.clone()),
                        message: format!(
                            "task {} is marked done, but its required sub-task(s) {} are open",
                            t.id,
                            open.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                        fixable: false,
                    });
                }
            }
        }
        out.sort_by_key(|f| f.line.unwrap_or(0));
        out
    }

    fn fix(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        let mut p = self.parse(bytes)?;
        for i in 0..p.tasks.len() {
            if p.tasks[i].spelling == Spelling::Mojibake {
                if let Some((_, good)) = MOJIBAKE.iter().find(|(bad, _)| *bad == p.tasks[i].marker) {
                    p.with_marker(i, good);
                }
            }
        }
        Ok(p.lines.bytes())
    }
}

/// The queue of a list of tasks with parents: those not done (nor skipped), in file order, each
/// parent after its last required sub-task; optional tasks only when asked; `--task ID` takes
/// the task and its open sub-tasks.
pub fn queue(items: &[Item], opts: &QueueOptions) -> Vec<TaskId> {
    let index: HashMap<&TaskId, usize> = items.iter().enumerate().map(|(i, it)| (&it.id, i)).collect();
    let parent_of = |i: usize| items[i].parent.as_ref().and_then(|p| index.get(p).copied());
    let depth = |mut i: usize| {
        let mut d = 0;
        while let Some(p) = parent_of(i) {
            d += 1;
            i = p;
            if d > items.len() {
                break;
            }
        }
        d
    };
    let descends = |mut i: usize, ancestor: usize| {
        let mut steps = 0;
        while let Some(p) = parent_of(i) {
            if p == ancestor {
                return true;
            }
            i = p;
            steps += 1;
            if steps > items.len() {
                break;
            }
        }
        false
    };
    // Where each task's turn comes: after its last required descendant.
    let turn = |i: usize| {
        (i + 1..items.len()).take_while(|&k| descends(k, i)).filter(|&k| !items[k].optional).last().unwrap_or(i)
    };
    let wanted = |i: usize| {
        let it = &items[i];
        !it.mark.is_final() && (opts.include_optional || !it.optional)
    };
    let only = opts.task.as_ref().and_then(|t| index.get(t).copied());
    if opts.task.is_some() && only.is_none() {
        return Vec::new();
    }
    let mut order: Vec<usize> =
        (0..items.len()).filter(|&i| wanted(i)).filter(|&i| only.is_none_or(|o| i == o || descends(i, o))).collect();
    order.sort_by_key(|&i| (turn(i), std::cmp::Reverse(depth(i)), i));
    let mut out: Vec<TaskId> = order.into_iter().map(|i| items[i].id.clone()).collect();
    if let Some(k) = opts.max_tasks {
        out.truncate(k);
    }
    out
}

/// The task-scoped commit of a tasks.md: HEAD's file with only the task's own lines (its line,
/// its details and notes) taken from the work tree.
#[derive(Debug)]
pub struct SpecScoping {
    rel: String,
    path: PathBuf,
}

impl SpecScoping {
    /// The scoping of the tasks.md at repository-relative `rel` (absolute `path`).
    pub fn new(rel: &str, path: &Path) -> SpecScoping {
        SpecScoping { rel: rel.to_owned(), path: path.to_path_buf() }
    }
}

impl Scoping for SpecScoping {
    fn shares(&self, path: &str) -> bool {
        path == self.rel
    }

    fn scope(&self, _: &str, head: &[u8], worktree: &[u8], task: &TaskId, _: Option<(usize, usize)>) -> Result<Scoped> {
        if let Some(scoped) = Scoped::trivially(head, worktree) {
            return Ok(scoped);
        }
        let h = parse(&self.path, head)?;
        let w = parse(&self.path, worktree)?;
        let Ok(wi) = w.find(&self.path, task) else { return Ok(Scoped::Head) };
        let hi = h.find(&self.path, task).map_err(|_| {
            Error::refused(
                format!(
                    "{}: task `{task}` is not in the committed version; its lines cannot be committed alone",
                    self.rel
                ),
                Some("commit the new task line first (git add + commit), then run again"),
            )
        })?;
        let (hs, he) = (h.tasks[hi].line, h.tasks[hi].end);
        let (ws, we) = (w.tasks[wi].line, w.tasks[wi].end);
        let mut out: Vec<String> = h.lines.raw[..hs].to_vec();
        out.extend_from_slice(&w.lines.raw[ws..we]);
        out.extend_from_slice(&h.lines.raw[he..]);
        // A last line of the task's block that had no terminator now has lines after it.
        if he < h.lines.len() {
            let k = hs + (we - ws);
            if k > 0 && !out[k - 1].ends_with('\n') {
                out[k - 1].push_str(h.lines.eol());
            }
        }
        let bytes = out.concat().into_bytes();
        Ok(Scoped::of(bytes, head, worktree))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIRO: &str = "# Implementation Plan\n\n- [x] 1. Set up\n  - Create `src/a.rs`\n  - _Requirements: 1.1, 3.1_\n\n- [ ] 2. Backoff\n  - [x] 2.1 Delay\n    - _Requirements: 1.2_\n\n  - [ ]* 2.2 Property test\n    - **Validates: Requirements 1.2**\n\n  - [ ] 2.3 Retry-After\n    - _需求：1.4、9.9_\n\n- [-] 3. Classify\n\n\n   - detail with three spaces\n";

    const EMOJI: &str = "# Plan\n\n- [✅] 1. Tables\n  - _Requirements: 1.1_\n\n- [🚧] 2. Collect\n  - [ ] 2.1 Skip off\n\n- [❌] 3. Cap\n  - Blocked: no page\n- [⏭️] 4. Preview\n- [ ] 5. Restart\n";

    const SPECKIT: &str = "# Tasks\n\n## Phase 1: Setup\n\n- [X] T001 Create packages\n- [ ] T002 [P] Add deps in a/b.toml\n\n**Checkpoint**: ready\n\n## Phase 2: Story 1 🎯 MVP\n\n- [ ] T003 [US1] Build it in src/x.py (depends on T001, T002)\n\n```bash\n- [ ] T999 not a task\n```\n";

    fn dir_with(tasks: &str) -> (tempfile::TempDir, SpecDir) {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("specs/feature");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("requirements.md"),
            "### Requirement 1\n\n1. WHEN a THEN b\n2. WHEN c\n4. x\n\n### Requirement 3: X\n1. y\n",
        )
        .expect("w");
        std::fs::write(dir.join("design.md"), "# Design\n").expect("w");
        std::fs::write(dir.join("tasks.md"), tasks).expect("w");
        let s = SpecDir::new(tmp.path(), &dir);
        (tmp, s)
    }

    fn id(s: &str) -> TaskId {
        TaskId::new(s).expect("id")
    }

    #[test]
    fn reads_kiro_nesting_optional_and_localised_labels() {
        let (_t, s) = dir_with(KIRO);
        let items = s.items(KIRO.as_bytes()).expect("items");
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "2.1", "2.2", "2.3", "3"]);
        assert_eq!(items[2].parent, Some(id("2")));
        assert!(items[3].optional);
        assert_eq!(items[5].mark, Mark::InProgress);
        let p = parse(Path::new("t"), KIRO.as_bytes()).expect("parse");
        assert_eq!(p.tasks[4].refs, ["1.4", "9.9"]);
        // Task 3 owns its three-space detail across two blank lines.
        assert_eq!(p.tasks[5].end, p.lines.len());
        // Queue: 2.3 before its parent 2 (after its last required child), 2.2 only when asked.
        let q = s.queue(&items, &QueueOptions::default());
        assert_eq!(q, [id("2.3"), id("2"), id("3")]);
        let q = s.queue(&items, &QueueOptions { include_optional: true, ..QueueOptions::default() });
        assert_eq!(q, [id("2.2"), id("2.3"), id("2"), id("3")]);
        let q = s.queue(&items, &QueueOptions { task: Some(id("2")), max_tasks: Some(1), include_optional: false });
        assert_eq!(q, [id("2.3")]);
    }

    #[test]
    fn markers_are_written_in_the_files_own_style() {
        let (_t, s) = dir_with(KIRO);
        let b = s.set_mark(KIRO.as_bytes(), &id("2.3"), Mark::InProgress).expect("mark");
        let text = String::from_utf8(b.clone()).expect("utf8");
        assert!(text.contains("  - [-] 2.3 Retry-After\n"), "{text}");
        assert_eq!(text.len(), KIRO.len());
        let rec = Record {
            outcome: Outcome::Failed("validation failed: `cargo test` (exit 101)".into()),
            session_id: "sess_1_a".into(),
            agent_session_id: None,
            at: "2026-03-16T21:11:23Z".into(),
            summary: None,
            commands: vec![],
            changed: vec![],
            attempt: 1,
            base: None,
        };
        let b = s.record(&b, &id("2.3"), &rec).expect("record");
        let text = String::from_utf8(b).expect("utf8");
        assert!(
            text.contains("  - [ ] 2.3 Retry-After\n    - _需求：1.4、9.9_\n    - Failed (2026-03-16, session sess_1_a): validation failed: `cargo test` (exit 101)\n\n- [-] 3."),
            "{text}"
        );
        let items = s.items(text.as_bytes()).expect("items");
        assert_eq!(items[4].mark, Mark::Failed);
        // Completing it again leaves the note and ticks the box.
        let ok = Record { outcome: Outcome::Completed, ..rec };
        let text = String::from_utf8(s.record(text.as_bytes(), &id("2.3"), &ok).expect("r")).expect("utf8");
        assert!(text.contains("  - [x] 2.3 Retry-After\n"), "{text}");
        assert_eq!(s.items(text.as_bytes()).expect("items")[4].mark, Mark::Completed);

        let (_t, e) = dir_with(EMOJI);
        let b = e.set_mark(EMOJI.as_bytes(), &id("2.1"), Mark::InProgress).expect("mark");
        assert!(String::from_utf8(b).expect("utf8").contains("  - [🚧] 2.1 Skip off\n"));
        let (_t, k) = dir_with(SPECKIT);
        let b = k.record(SPECKIT.as_bytes(), &id("T002"), &ok).expect("r");
        assert!(String::from_utf8(b).expect("utf8").contains("- [X] T002 [P] Add deps"));
    }

    #[test]
    fn reads_speckit_phases_dependencies_and_skips_fences() {
        let (_t, s) = dir_with(SPECKIT);
        let items = s.items(SPECKIT.as_bytes()).expect("items");
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["T001", "T002", "T003"]);
        assert_eq!(items[2].depends_on, [id("T001"), id("T002")]);
        assert_eq!(items[2].group.as_deref(), Some("Phase 2: Story 1 🎯 MVP"));
        assert_eq!(title_depends("x (depends on T015-T017)"), [id("T015"), id("T016"), id("T017")]);
    }

    #[test]
    fn mojibake_is_read_checked_and_fixed() {
        let bad = EMOJI.replace("[✅]", "[‚úÖ]").replace("[🚧]", "[\u{F8FF}üöß]").replace("[⏭️]", "[‚è≠Ô∏è]");
        let (_t, s) = dir_with(&bad);
        let good = s.items(EMOJI.as_bytes()).expect("items");
        let read = s.items(bad.as_bytes()).expect("items");
        assert_eq!(good, read);
        let findings = s.check(bad.as_bytes());
        assert_eq!(findings.iter().filter(|f| f.rule == "mis-decoded-marker" && f.fixable).count(), 3, "{findings:?}");
        assert_eq!(s.fix(bad.as_bytes()).expect("fix"), EMOJI.as_bytes());
        assert!(s.check(EMOJI.as_bytes()).iter().all(|f| f.rule != "mis-decoded-marker"));
        // A mis-decoded file is written with the real emoji.
        let b = s.set_mark(bad.as_bytes(), &id("5"), Mark::InProgress).expect("mark");
        assert!(String::from_utf8(b).expect("utf8").contains("- [🚧] 5. Restart"));
    }

    #[test]
    fn check_rules() {
        let text = "- [x] 1. A\n  - _Requirements: 1.1, 1.3, 2.1_\n  - [ ] 1.1 B\n- [~] 2. C\n- [ ] 2. D\n";
        let (_t, s) = dir_with(text);
        let f = s.check(text.as_bytes());
        let rules: Vec<&str> = f.iter().map(|f| f.rule).collect();
        assert!(rules.contains(&"duplicate-id") && rules.contains(&"unknown-marker"), "{f:?}");
        assert!(rules.contains(&"parent-done-child-open"), "{f:?}");
        let dangling: Vec<&str> =
            f.iter().filter(|f| f.rule == "unknown-requirement").map(|f| f.message.as_str()).collect();
        assert_eq!(dangling.len(), 2, "{dangling:?}");
        assert!(s.items(text.as_bytes()).is_err());
        for empty in ["", "# Plan\n\n## Phase 1\n"] {
            let f = s.check(empty.as_bytes());
            assert!(f.iter().any(|f| f.rule == "no-tasks" && f.error), "{empty:?}: {f:?}");
        }
    }

    #[test]
    fn missing_documents_are_refused() {
        let (_t, s) = dir_with(KIRO);
        std::fs::remove_file(s.dir.join("design.md")).expect("rm");
        let e = s.items(KIRO.as_bytes()).expect_err("refused");
        assert_eq!(e.kind(), crate::Kind::Refused);
        assert!(e.to_string().contains("design.md"), "{e}");
    }

    #[test]
    fn scoping_takes_only_the_tasks_own_lines() {
        let sc = SpecScoping::new("specs/feature/tasks.md", Path::new("tasks.md"));
        let head = KIRO.as_bytes();
        // Two runs edited the file: 2.3 failed (marker + note), 3 was completed.
        let (_t, s) = dir_with(KIRO);
        let rec = Record {
            outcome: Outcome::Failed("no".into()),
            session_id: "s".into(),
            agent_session_id: None,
            at: "2026-03-16".into(),
            summary: None,
            commands: vec![],
            changed: vec![],
            attempt: 1,
            base: None,
        };
        let w = s.record(head, &id("2.3"), &rec).expect("r");
        let w = s.set_mark(&w, &id("3"), Mark::Completed).expect("m");
        let only_23 = s.record(head, &id("2.3"), &rec).expect("r");
        match sc.scope("specs/feature/tasks.md", head, &w, &id("2.3"), None).expect("scope") {
            Scoped::New(b) => assert_eq!(b, only_23),
            other => panic!("{other:?}"),
        }
        assert_eq!(sc.scope("", head, head, &id("3"), None).expect("scope"), Scoped::Head);
        assert!(sc.shares("specs/feature/tasks.md") && !sc.shares("tasks.md"));
    }
}
