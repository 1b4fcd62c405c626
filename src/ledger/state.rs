//! `specs/state.json` (reference §2): the source of truth. Kept as an order-preserving JSON
//! value so unknown keys, unknown statuses and odd shapes survive untouched; edits merge like
//! jq's `+` (existing keys in place, new keys appended) and the file is printed as `jq .` does.

use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::json;
use super::status::Status;
use crate::error::{Error, Result};

/// A parsed state.json.
///
/// Loaded with [`StateFile::parse`] the whole document is parsed. Loaded with
/// [`StateFile::parse_sparse`] (what every ledger update does) the file is validated and only
/// the byte range and number of each `active_projects` entry are recorded: entries are parsed
/// when read, and an edit of one entry replaces only that entry's bytes when the file is
/// written (which is what `jq .` would print when the file was printed by jq). Anything that
/// needs the whole document parses it then, once.
#[derive(Debug, Clone)]
pub struct StateFile {
    /// Where it was read from (for messages).
    pub path: PathBuf,
    raw: Vec<u8>,
    /// The whole document, once parsed.
    full: OnceCell<Value>,
    /// The entries' places in `raw`, until the whole document is parsed.
    sparse: Option<Sparse>,
}

/// The `active_projects` entries of a validated file, located but not parsed.
#[derive(Debug, Clone)]
struct Sparse {
    /// Each entry's byte range in the raw file.
    spans: Vec<(usize, usize)>,
    /// Each entry's integer `project_number` (`None` when it has none).
    numbers: Vec<Option<u32>>,
    /// Entries parsed so far (edited ones too), by position.
    parsed: Vec<OnceCell<Value>>,
    /// Positions of edited entries.
    edited: BTreeSet<usize>,
    /// Whether the raw file is exactly what `jq .` prints for it: only then does replacing an
    /// edited entry's bytes give what jq would print for the edited document.
    jq_printed: bool,
}

/// The parts of the top level a sparse load needs; every other key is validated and skipped.
#[derive(serde::Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    active_projects: Vec<&'a RawValue>,
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
    /// Parses state.json bytes, the whole document.
    ///
    /// # Errors
    /// `Json` with line and column; `Format` when the top level is not an object or
    /// `active_projects` is missing or not an array.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<StateFile> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::format(path, None, "the file is empty (was it clobbered by an interrupted write?)"));
        }
        let doc = json::parse(path, &bytes)?;
        let state = StateFile { path: path.to_path_buf(), raw: bytes, full: OnceCell::from(doc), sparse: None };
        state.projects()?;
        Ok(state)
    }

    /// Validates state.json bytes and locates the entries without parsing them (see
    /// [`StateFile`]); falls back to [`StateFile::parse`] for anything unusual, so the errors
    /// are the same.
    ///
    /// # Errors
    /// As [`StateFile::parse`].
    pub fn parse_sparse(path: &Path, bytes: Vec<u8>) -> Result<StateFile> {
        match locate(&bytes) {
            Some(sparse) => {
                Ok(StateFile { path: path.to_path_buf(), raw: bytes, full: OnceCell::new(), sparse: Some(sparse) })
            }
            None => StateFile::parse(path, bytes),
        }
    }

    /// Reads and parses state.json.
    ///
    /// # Errors
    /// As [`StateFile::parse`], plus I/O errors.
    pub fn load(path: &Path) -> Result<StateFile> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        StateFile::parse(path, bytes)
    }

    /// Reads state.json as [`StateFile::parse_sparse`] does.
    ///
    /// # Errors
    /// As [`StateFile::parse`], plus I/O errors.
    pub fn load_sparse(path: &Path) -> Result<StateFile> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        StateFile::parse_sparse(path, bytes)
    }

    /// The bytes it was parsed from.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The bytes it was parsed from, consumed.
    pub fn into_raw(self) -> Vec<u8> {
        self.raw
    }

    /// The whole document (parsed now if it was loaded sparse).
    pub fn doc(&self) -> &Value {
        self.full.get_or_init(|| {
            let mut doc: Value = serde_json::from_slice(&self.raw).expect("validated when loaded");
            if let Some(sparse) = &self.sparse {
                let list = doc
                    .get_mut("active_projects")
                    .and_then(Value::as_array_mut)
                    .expect("validated when loaded: active_projects is an array");
                for &i in &sparse.edited {
                    list[i] = sparse.parsed[i].get().expect("an edited entry is parsed").clone();
                }
            }
            doc
        })
    }

    /// The whole document, consumed.
    pub fn into_doc(mut self) -> Value {
        self.doc();
        self.full.take().expect("parsed above")
    }

    /// The whole document for editing (parsed now if it was loaded sparse).
    pub fn doc_mut(&mut self) -> &mut Value {
        self.doc();
        self.sparse = None;
        self.full.get_mut().expect("parsed above")
    }

    /// The document as `jq .` prints it; a sparse file with edited entries is the raw file with
    /// those entries' bytes replaced.
    pub fn to_bytes(&self) -> Vec<u8> {
        if let (Some(sparse), None) = (&self.sparse, self.full.get()) {
            if let Some(out) = sparse.splice(&self.raw) {
                return out;
            }
        }
        json::to_jq_pretty(self.doc())
    }

    /// When [`StateFile::to_bytes`] replaced exactly one entry's bytes in place, that entry's
    /// byte range in the printed file of length `printed_len`.
    pub fn spliced_entry(&self, printed_len: usize) -> Option<(usize, usize)> {
        let sparse = self.sparse.as_ref().filter(|s| s.jq_printed && self.full.get().is_none())?;
        let mut edited = sparse.edited.iter();
        let (Some(i), None) = (edited.next(), edited.next()) else { return None };
        let (start, end) = sparse.spans[*i];
        let len = (printed_len + (end - start)).checked_sub(self.raw.len())?;
        Some((start, start + len))
    }

    fn projects(&self) -> Result<&Vec<Value>> {
        let obj = self
            .doc()
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
        self.doc_mut()
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
        let hits: Vec<usize> = match (&self.sparse, self.full.get()) {
            (Some(sparse), None) => {
                sparse.numbers.iter().enumerate().filter(|(_, m)| **m == Some(n)).map(|(i, _)| i).collect()
            }
            _ => {
                self.entries().iter().enumerate().filter(|(_, e)| entry_number(e) == Some(n)).map(|(i, _)| i).collect()
            }
        };
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

    /// The byte range of task `n`'s entry in the raw file, when it was loaded sparse and the
    /// entry is not edited.
    ///
    /// # Errors
    /// As [`StateFile::index_of`].
    pub fn raw_span(&self, n: u32) -> Result<Option<(usize, usize)>> {
        let i = self.index_of(n)?;
        Ok(match (&self.sparse, self.full.get()) {
            (Some(sparse), None) if !sparse.edited.contains(&i) => Some(sparse.spans[i]),
            _ => None,
        })
    }

    /// The entry at position `i` (which [`StateFile::index_of`] returned).
    fn entry_at(&self, i: usize) -> &Value {
        match (&self.sparse, self.full.get()) {
            (Some(sparse), None) => sparse.parsed[i].get_or_init(|| {
                let (s, e) = sparse.spans[i];
                serde_json::from_slice(&self.raw[s..e]).expect("validated when loaded")
            }),
            _ => &self.entries()[i],
        }
    }

    /// Task `n`'s summary.
    ///
    /// # Errors
    /// As [`StateFile::index_of`].
    pub fn task(&self, n: u32) -> Result<TaskInfo> {
        let i = self.index_of(n)?;
        task_info(self.entry_at(i)).ok_or_else(|| Error::format(&self.path, None, format!("task {n} is not an object")))
    }

    /// Task `n`'s entry object.
    ///
    /// # Errors
    /// As [`StateFile::index_of`].
    pub fn entry(&self, n: u32) -> Result<&Map<String, Value>> {
        let i = self.index_of(n)?;
        self.entry_at(i)
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
        let value = if self.full.get().is_none() && self.sparse.is_some() {
            self.sparse_entry_mut(i)
        } else {
            &mut self.projects_mut()[i]
        };
        value.as_object_mut().ok_or_else(|| Error::format(path, None, format!("task {n} is not an object")))
    }

    /// The entry at position `i` of a sparse file, parsed and marked edited.
    fn sparse_entry_mut(&mut self, i: usize) -> &mut Value {
        self.entry_at(i);
        let sparse = self.sparse.as_mut().expect("only called on a sparse file");
        sparse.edited.insert(i);
        sparse.parsed[i].get_mut().expect("parsed above")
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
        self.doc().get("next_project_number").and_then(Value::as_u64)
    }

    /// Sets the top-level `next_project_number` (appended if absent).
    pub fn set_next_project_number(&mut self, n: u64) {
        if let Some(obj) = self.doc_mut().as_object_mut() {
            obj.insert("next_project_number".into(), Value::from(n));
        }
    }

    /// The largest `project_number` in use.
    pub fn max_number(&self) -> Option<u32> {
        match (&self.sparse, self.full.get()) {
            (Some(sparse), None) => sparse.numbers.iter().flatten().copied().max(),
            _ => self.entries().iter().filter_map(entry_number).max(),
        }
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

/// The byte range of task `n`'s entry in valid state.json bytes, when the task is there exactly
/// once; `None` otherwise (also for files a sparse load cannot handle).
pub fn unique_entry_span(raw: &[u8], n: u32) -> Option<(usize, usize)> {
    let sparse = locate(raw)?;
    let mut hits = sparse.numbers.iter().enumerate().filter(|(_, m)| **m == Some(n));
    let (i, _) = hits.next()?;
    if hits.next().is_some() {
        return None;
    }
    Some(sparse.spans[i])
}

/// Validates `raw` as JSON and locates its `active_projects` entries; `None` when the file is
/// not UTF-8, not valid JSON or not of the expected shape (the full parse then reports it).
fn locate(raw: &[u8]) -> Option<Sparse> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let text = std::str::from_utf8(raw).ok()?;
    let (spans, jq_printed) = match json::jq_printed_entries(raw) {
        Some(spans) => (spans, true),
        None => {
            let top: Top<'_> = serde_json::from_str(text).ok()?;
            let base = text.as_ptr() as usize;
            let spans = top
                .active_projects
                .iter()
                .map(|entry| {
                    let s = entry.get().as_ptr() as usize - base;
                    (s, s + entry.get().len())
                })
                .collect();
            (spans, false)
        }
    };
    let numbers = spans.iter().map(|(s, e)| raw_number(&text[*s..*e])).collect();
    let parsed = (0..spans.len()).map(|_| OnceCell::new()).collect();
    Some(Sparse { spans, numbers, parsed, edited: BTreeSet::new(), jq_printed })
}

/// The integer `project_number` of one entry's raw text: read directly when it is the first key
/// and appears once (as the workflow writes it), else from the parsed entry.
fn raw_number(entry: &str) -> Option<u32> {
    let quick = (|| {
        let rest = entry.strip_prefix('{')?.trim_start().strip_prefix("\"project_number\"")?;
        let rest = rest.trim_start().strip_prefix(':')?.trim_start();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let after = rest[digits..].trim_start();
        if digits == 0 || !(after.starts_with(',') || after.starts_with('}')) {
            return None;
        }
        if memchr::memmem::find(rest.as_bytes(), b"\"project_number\"").is_some() {
            return None;
        }
        Some(rest[..digits].parse::<u64>().ok().and_then(|n| u32::try_from(n).ok()))
    })();
    match quick {
        Some(n) => n,
        None => serde_json::from_str::<Value>(entry).ok().as_ref().and_then(entry_number),
    }
}

impl Sparse {
    /// The raw file with every edited entry printed as `jq .` prints it at its depth, in place of
    /// its old bytes; `None` when the file is not exactly as jq prints it, so the whole document
    /// is printed instead.
    fn splice(&self, raw: &[u8]) -> Option<Vec<u8>> {
        if !self.jq_printed {
            return None;
        }
        let mut out = Vec::with_capacity(raw.len() + 1024);
        let mut at = 0;
        for &i in &self.edited {
            let (s, e) = self.spans[i];
            if !raw[..s].ends_with(b"\n    ") {
                return None;
            }
            out.extend_from_slice(&raw[at..s]);
            out.extend_from_slice(&json::to_jq_pretty_at(self.parsed[i].get()?, 2));
            at = e;
        }
        out.extend_from_slice(&raw[at..]);
        Some(out)
    }
}

/// The integer `project_number` of an entry.
pub fn entry_number(entry: &Value) -> Option<u32> {
    entry.get("project_number").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok())
}

/// The summary of one `active_projects` entry; `None` without an integer `project_number`.
pub fn task_info(entry: &Value) -> Option<TaskInfo> {
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

    /// A sparse load edits only the entry's bytes, and for a file printed by jq the result is
    /// exactly what printing the whole document gives.
    #[test]
    fn sparse_edits_splice_the_entry_and_equal_a_full_print() {
        let jq = String::from_utf8(StateFile::parse(Path::new("s"), DOC.as_bytes().to_vec()).expect("p").to_bytes())
            .expect("utf8");
        let fields = || {
            let mut m = Map::new();
            m.insert("status".into(), "implementing".into());
            m.insert("note".into(), "a \"quoted\"\nline \u{7f}".into());
            m
        };
        let mut full = StateFile::parse(Path::new("s"), jq.clone().into_bytes()).expect("full");
        let mut sparse = StateFile::parse_sparse(Path::new("s"), jq.clone().into_bytes()).expect("sparse");
        full.merge(1, fields()).expect("merge");
        sparse.merge(1, fields()).expect("merge");
        let printed = sparse.to_bytes();
        assert_eq!(
            String::from_utf8(printed.clone()).expect("utf8"),
            String::from_utf8(full.to_bytes()).expect("utf8")
        );
        let (start, end) = sparse.spliced_entry(printed.len()).expect("one entry spliced");
        let entry: Value = serde_json::from_slice(&printed[start..end]).expect("the range is the entry");
        assert_eq!((entry["project_number"].as_u64(), entry["status"].as_str()), (Some(1), Some("implementing")));
        assert_eq!(sparse.task(1).expect("task").status, Status::Implementing);
        assert_eq!(sparse.task(2).expect("task").language, "lean4");
        assert_eq!(sparse.max_number(), Some(2));
        // The whole document, asked for after the edit, has it.
        assert_eq!(sparse.doc()["active_projects"][1]["status"], "implementing");
        assert_eq!(sparse.entries().len(), 2);
        // A file not laid out as jq prints it is printed whole.
        let compact = serde_json::to_vec(&serde_json::from_str::<Value>(DOC).expect("json")).expect("compact");
        let mut sparse = StateFile::parse_sparse(Path::new("s"), compact).expect("sparse");
        sparse.merge(1, fields()).expect("merge");
        assert_eq!(
            String::from_utf8(sparse.to_bytes()).expect("utf8"),
            String::from_utf8(full.to_bytes()).expect("utf8")
        );
    }

    #[test]
    fn sparse_loads_report_what_full_loads_report() {
        for bad in [&b"{\n  \"a\": [1,\n}"[..], b" \n", b"{\"x\": 1}", b"[1]", b"{\"active_projects\": 3}", b"\xff"] {
            let full = StateFile::parse(Path::new("s.json"), bad.to_vec()).expect_err("bad").to_string();
            let sparse = StateFile::parse_sparse(Path::new("s.json"), bad.to_vec()).expect_err("bad").to_string();
            assert_eq!(sparse, full);
        }
        let dup = DOC.replace("\"project_number\": 1,", "\"project_number\": 2,");
        let s = StateFile::parse_sparse(Path::new("state.json"), dup.into_bytes()).expect("parse");
        assert!(s.index_of(2).expect_err("dup").to_string().contains("lines 4, 12"));
        assert!(matches!(s.index_of(9), Err(Error::TaskNotFound { .. })));
        // Numbers that are not where the workflow writes them are still found.
        let odd = r#"{"active_projects": [{"status": "x", "project_number": 7}, {"project_number": 8, "project_number": 9}, {"project_number": 1.0}]}"#;
        let s = StateFile::parse_sparse(Path::new("s"), odd.as_bytes().to_vec()).expect("parse");
        assert_eq!(s.index_of(7).expect("7"), 0);
        assert_eq!(s.index_of(9).expect("9"), 1);
        assert!(s.index_of(8).is_err() && s.index_of(1).is_err());
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Fix the CLI: --json output!"), "fix_the_cli_json_output");
        assert_eq!(slugify("§§"), "task");
    }
}
