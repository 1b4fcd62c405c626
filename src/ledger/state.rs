//! `specs/state.json` (reference §2): the source of truth. Kept as an order-preserving JSON
//! value so unknown keys, unknown statuses and odd shapes survive untouched; edits merge like
//! jq's `+` (existing keys in place, new keys appended) and the file is printed as `jq .` does.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::json;
use super::status::Status;
use crate::error::{Error, Result};

/// A parsed state.json.
#[derive(Debug, Clone)]
pub struct StateFile {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    /// The whole document.
    pub doc: Value,
    raw: Vec<u8>,
}

/// A read-only view of one `active_projects` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInfo {
    /// `project_number`.
    pub number: u32,
    /// `project_name` (the slug), when present and a string.
    pub slug: Option<String>,
    /// `status`.
    pub status: Status,
    /// `language`, default `general`.
    pub language: String,
    /// `description`, empty when absent.
    pub description: String,
    /// `title`, else the slug with underscores as spaces (real ledgers have no `title` field:
    /// [`crate::tasks`] prefers the TODO.md heading when there is one).
    pub title: String,
    /// Whether `title` was written in the entry (not derived from the slug).
    pub has_title: bool,
}

impl StateFile {
    /// Parses state.json bytes.
    ///
    /// # Errors
    /// `Json` with line and column; `Format` when the top level is not an object or
    /// `active_projects` is missing or not an array.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<StateFile> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::format(path, None, "the file is empty (was it clobbered by an interrupted write?)"));
        }
        let doc = json::parse(path, &bytes)?;
        let state = StateFile { path: path.to_path_buf(), doc, raw: bytes };
        state.projects()?;
        Ok(state)
    }

    /// Reads and parses state.json.
    ///
    /// # Errors
    /// As [`StateFile::parse`], plus I/O errors.
    pub fn load(path: &Path) -> Result<StateFile> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        StateFile::parse(path, bytes)
    }

    /// The bytes it was parsed from.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The document as `jq .` prints it.
    pub fn to_bytes(&self) -> Vec<u8> {
        json::to_jq_pretty(&self.doc)
    }

    fn projects(&self) -> Result<&Vec<Value>> {
        let obj = self
            .doc
            .as_object()
            .ok_or_else(|| Error::format(&self.path, Some(1), "the top level is not a JSON object"))?;
        match obj.get("active_projects") {
            Some(Value::Array(a)) => Ok(a),
            Some(_) => {
                Err(Error::format(&self.path, self.line_of("\"active_projects\""), "`active_projects` is not an array"))
            }
            None => Err(Error::format(&self.path, None, "no `active_projects` array")),
        }
    }

    fn projects_mut(&mut self) -> &mut Vec<Value> {
        self.doc
            .get_mut("active_projects")
            .and_then(Value::as_array_mut)
            .expect("checked by parse: active_projects is an array")
    }

    /// The `active_projects` entries, in file order.
    pub fn entries(&self) -> &[Value] {
        self.projects().map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every entry's summary (entries without an integer `project_number` are skipped).
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.entries().iter().filter_map(task_info).collect()
    }

    /// The position of task `n` in `active_projects`.
    ///
    /// # Errors
    /// `TaskNotFound`, or `DuplicateTask` when it appears more than once.
    pub fn index_of(&self, n: u32) -> Result<usize> {
        let hits: Vec<usize> =
            self.entries().iter().enumerate().filter(|(_, e)| entry_number(e) == Some(n)).map(|(i, _)| i).collect();
        match hits.len() {
            0 => Err(Error::TaskNotFound { task: n, path: self.path.clone() }),
            1 => Ok(hits[0]),
            count => Err(Error::DuplicateTask {
                task: n,
                count,
                lines: self.lines_of_number(n).iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
                path: self.path.clone(),
            }),
        }
    }

    /// Task `n`'s summary.
    ///
    /// # Errors
    /// As [`StateFile::index_of`].
    pub fn task(&self, n: u32) -> Result<TaskInfo> {
        let i = self.index_of(n)?;
        task_info(&self.entries()[i])
            .ok_or_else(|| Error::format(&self.path, None, format!("task {n} is not an object")))
    }

    /// Task `n`'s entry object.
    ///
    /// # Errors
    /// As [`StateFile::index_of`].
    pub fn entry(&self, n: u32) -> Result<&Map<String, Value>> {
        let i = self.index_of(n)?;
        self.entries()[i]
            .as_object()
            .ok_or_else(|| Error::format(&self.path, None, format!("task {n} is not an object")))
    }

    /// Task `n`'s entry object, for editing.
    ///
    /// # Errors
    /// As [`StateFile::index_of`].
    pub fn entry_mut(&mut self, n: u32) -> Result<&mut Map<String, Value>> {
        let i = self.index_of(n)?;
        let path = self.path.clone();
        self.projects_mut()[i]
            .as_object_mut()
            .ok_or_else(|| Error::format(path, None, format!("task {n} is not an object")))
    }

    /// Merges `fields` into task `n` as jq's `. + {...}` does.
    ///
    /// # Errors
    /// As [`StateFile::index_of`].
    pub fn merge(&mut self, n: u32, fields: Map<String, Value>) -> Result<()> {
        let entry = self.entry_mut(n)?;
        for (k, v) in fields {
            entry.insert(k, v);
        }
        Ok(())
    }

    /// Inserts a new entry at the front of `active_projects` (newest first, as the workflow does).
    pub fn prepend(&mut self, entry: Value) {
        self.projects_mut().insert(0, entry);
    }

    /// The top-level `next_project_number`, when it is an integer.
    pub fn next_project_number(&self) -> Option<u64> {
        self.doc.get("next_project_number").and_then(Value::as_u64)
    }

    /// Sets the top-level `next_project_number` (appended if absent).
    pub fn set_next_project_number(&mut self, n: u64) {
        if let Some(obj) = self.doc.as_object_mut() {
            obj.insert("next_project_number".into(), Value::from(n));
        }
    }

    /// The largest `project_number` in use.
    pub fn max_number(&self) -> Option<u32> {
        self.entries().iter().filter_map(entry_number).max()
    }

    /// 1-based lines of the raw text holding `"project_number": n`.
    pub fn lines_of_number(&self, n: u32) -> Vec<usize> {
        let text = String::from_utf8_lossy(&self.raw);
        text.lines()
            .enumerate()
            .filter(|(_, l)| {
                let t = l.trim_start();
                t.strip_prefix("\"project_number\"")
                    .map(|rest| {
                        let rest = rest.trim_start().trim_start_matches(':').trim_start();
                        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                        digits.parse::<u32>().ok() == Some(n)
                    })
                    .unwrap_or(false)
            })
            .map(|(i, _)| i + 1)
            .collect()
    }

    fn line_of(&self, needle: &str) -> Option<usize> {
        String::from_utf8_lossy(&self.raw).lines().position(|l| l.contains(needle)).map(|i| i + 1)
    }
}

/// The integer `project_number` of an entry.
pub fn entry_number(entry: &Value) -> Option<u32> {
    entry.get("project_number").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok())
}

fn task_info(entry: &Value) -> Option<TaskInfo> {
    let number = entry_number(entry)?;
    let obj = entry.as_object()?;
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
    let slug = s("project_name");
    let has_title = s("title").is_some();
    let title = s("title").unwrap_or_else(|| slug.clone().unwrap_or_default().replace('_', " "));
    Some(TaskInfo {
        has_title,
        number,
        status: Status::from_state(&s("status").unwrap_or_default()),
        language: s("language").unwrap_or_else(|| "general".into()),
        description: s("description").unwrap_or_default(),
        slug,
        title,
    })
}

/// Makes a `project_name` slug from a title: lowercase ASCII words joined by `_`, at most 50 chars.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for word in title.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        if slug.len() + word.len() + 1 > 50 && !slug.is_empty() {
            break;
        }
        if !slug.is_empty() {
            slug.push('_');
        }
        slug.push_str(&word.to_ascii_lowercase());
    }
    if slug.is_empty() {
        slug.push_str("task");
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
  "active_projects": [
    {
      "project_number": 2,
      "project_name": "two",
      "status": "weird_status",
      "language": "lean4",
      "artifacts": ["specs/2_two/plans/implementation-001.md"],
      "created": "2026-01-01"
    },
    {
      "project_number": 1,
      "project_name": "one",
      "status": "planned",
      "language": "general"
    }
  ],
  "next_project_number": 3,
  "zzz_unknown": {"keep": [1, 2]}
}
"#;

    #[test]
    fn round_trip_of_unknown_shapes_is_jq_identical() {
        let s = StateFile::parse(Path::new("state.json"), DOC.as_bytes().to_vec()).expect("parse");
        let out = String::from_utf8(s.to_bytes()).expect("utf8");
        // Only the hand-written inline objects/arrays are expanded, as jq does.
        assert!(out.contains("\"zzz_unknown\": {\n    \"keep\": [\n      1,\n      2\n    ]\n  }\n}\n"), "{out}");
        assert_eq!(s.task(2).expect("task").status, Status::Other("weird_status".into()));
    }

    #[test]
    fn merge_keeps_order_and_appends_new_keys() {
        let mut s = StateFile::parse(Path::new("state.json"), DOC.as_bytes().to_vec()).expect("parse");
        let mut m = Map::new();
        m.insert("status".into(), "implementing".into());
        m.insert("started".into(), "2026-02-02T00:00:00Z".into());
        s.merge(1, m).expect("merge");
        let keys: Vec<_> = s.entry(1).expect("entry").keys().cloned().collect();
        assert_eq!(keys, ["project_number", "project_name", "status", "language", "started"]);
    }

    #[test]
    fn duplicates_and_missing_tasks_are_errors_with_lines() {
        let dup = DOC.replace("\"project_number\": 1,", "\"project_number\": 2,");
        let s = StateFile::parse(Path::new("state.json"), dup.into_bytes()).expect("parse");
        let err = s.index_of(2).expect_err("dup");
        assert!(err.to_string().contains("lines 4, 12"), "{err}");
        assert!(matches!(s.index_of(9), Err(Error::TaskNotFound { .. })));
    }

    #[test]
    fn bad_documents_are_refused_with_position() {
        let err = StateFile::parse(Path::new("s.json"), b"{\n  \"a\": [1,\n}".to_vec()).expect_err("bad");
        assert!(err.to_string().starts_with("s.json:3:1: invalid JSON"), "{err}");
        let err = StateFile::parse(Path::new("s.json"), b" \n".to_vec()).expect_err("empty");
        assert!(err.to_string().starts_with("s.json: the file is empty"), "{err}");
        let err = StateFile::parse(Path::new("s.json"), b"{\"x\": 1}".to_vec()).expect_err("no projects");
        assert!(err.to_string().contains("no `active_projects`"), "{err}");
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Fix the CLI: --json output!"), "fix_the_cli_json_output");
        assert_eq!(slugify("§§"), "task");
    }
}
