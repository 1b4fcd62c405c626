//! `specs/state.json` (reference §2): the source of truth. Kept as an order-preserving JSON
//! value so unknown keys, unknown statuses and odd shapes survive untouched; edits merge like
//! jq's `+` (existing keys in place, new keys appended) and the file is printed as `jq .` does.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
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
///
/// Both loads accept exactly the same files (a sparse load validates everything a tree parse
/// checks: number ranges, escapes, nesting); reading the tree or an entry later therefore
/// cannot fail, and if it ever did it would be an error naming the file, not a panic.
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
    /// Unedited entries parsed so far, by position.
    parsed: Vec<OnceCell<Value>>,
    /// Edited entries, by position.
    edited: BTreeMap<usize, Value>,
    /// Whether the raw file is exactly what `jq .` prints for it: only then does replacing an
    /// edited entry's bytes give what jq would print for the edited document.
    jq_printed: bool,
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
    /// [`StateFile`]); accepts exactly what [`StateFile::parse`] accepts, and for anything it
    /// does not handle itself (every refused file among them) it is [`StateFile::parse`], so
    /// the errors are the same.
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
    ///
    /// # Errors
    /// Only if the file, validated when loaded, no longer parsed as a tree (the loaders
    /// disagreeing): the parser's error, as [`StateFile::parse`] reports it.
    pub fn doc(&self) -> Result<&Value> {
        if let Some(doc) = self.full.get() {
            return Ok(doc);
        }
        let mut doc = json::parse(&self.path, &self.raw)?;
        if let Some(sparse) = &self.sparse {
            let list = doc.get_mut("active_projects").and_then(Value::as_array_mut);
            let Some(list) = list.filter(|l| l.len() == sparse.spans.len()) else {
                return Err(self.disagreement("its `active_projects` array reads differently as a whole"));
            };
            for (&i, entry) in &sparse.edited {
                // `i` < `spans.len()` == `list.len()`: edited positions come from `index_of`.
                if let Some(slot) = list.get_mut(i) {
                    *slot = entry.clone();
                }
            }
        }
        Ok(self.full.get_or_init(|| doc))
    }

    /// The whole document, consumed.
    ///
    /// # Errors
    /// As [`StateFile::doc`].
    pub fn into_doc(mut self) -> Result<Value> {
        self.doc()?;
        self.full.take().ok_or_else(|| self.disagreement("the document was not kept"))
    }

    /// The whole document for editing (parsed now if it was loaded sparse).
    ///
    /// # Errors
    /// As [`StateFile::doc`].
    pub fn doc_mut(&mut self) -> Result<&mut Value> {
        self.doc()?;
        self.sparse = None;
        let path = self.path.clone();
        self.full.get_mut().ok_or_else(|| Error::format(path, None, "the document was not kept"))
    }

    /// The document as `jq .` prints it; a sparse file with edited entries is the raw file with
    /// those entries' bytes replaced.
    ///
    /// # Errors
    /// As [`StateFile::doc`].
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        if let (Some(sparse), None) = (&self.sparse, self.full.get()) {
            if let Some(out) = sparse.splice(&self.raw) {
                return Ok(out);
            }
        }
        Ok(json::to_jq_pretty(self.doc()?))
    }

    /// When [`StateFile::to_bytes`] replaced exactly one entry's bytes in place, that entry's
    /// byte range in the printed file of length `printed_len`.
    pub fn spliced_entry(&self, printed_len: usize) -> Option<(usize, usize)> {
        let sparse = self.sparse.as_ref().filter(|s| s.jq_printed && self.full.get().is_none())?;
        let mut edited = sparse.edited.keys();
        let (Some(i), None) = (edited.next(), edited.next()) else { return None };
        let (start, end) = *sparse.spans.get(*i)?;
        let len = (printed_len + (end - start)).checked_sub(self.raw.len())?;
        Some((start, start + len))
    }

    /// The error for a file that a sparse load accepted and a tree parse then refused (which the
    /// loaders agreeing rules out; kept an error rather than a panic all the same).
    fn disagreement(&self, what: &str) -> Error {
        Error::format(&self.path, None, format!("{what} than when it was loaded (please report this)"))
    }

    fn projects(&self) -> Result<&Vec<Value>> {
        let obj = self
            .doc()?
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

    fn projects_mut(&mut self) -> Result<&mut Vec<Value>> {
        self.projects()?;
        let path = self.path.clone();
        self.doc_mut()?
            .get_mut("active_projects")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| Error::format(path, None, "no `active_projects` array"))
    }

    /// The `active_projects` entries, in file order.
    ///
    /// # Errors
    /// As [`StateFile::doc`].
    pub fn entries(&self) -> Result<&[Value]> {
        self.projects().map(Vec::as_slice)
    }

    /// Every entry's summary (entries without an integer `project_number` are skipped).
    ///
    /// # Errors
    /// As [`StateFile::doc`].
    pub fn tasks(&self) -> Result<Vec<TaskInfo>> {
        Ok(self.entries()?.iter().filter_map(task_info).collect())
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
                self.entries()?.iter().enumerate().filter(|(_, e)| entry_number(e) == Some(n)).map(|(i, _)| i).collect()
            }
        };
        match hits.as_slice() {
            [] => Err(Error::TaskNotFound { task: n, path: self.path.clone() }),
            [one] => Ok(*one),
            _ => Err(Error::DuplicateTask {
                task: n,
                count: hits.len(),
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
            (Some(sparse), None) if !sparse.edited.contains_key(&i) => sparse.spans.get(i).copied(),
            _ => None,
        })
    }

    /// The entry at position `i` of a sparse file, parsed from its bytes.
    fn parse_entry(&self, sparse: &Sparse, i: usize) -> Result<Value> {
        let bytes = sparse.spans.get(i).and_then(|&(s, e)| self.raw.get(s..e));
        match bytes.map(json::from_slice) {
            Some(Ok(v)) => Ok(v),
            _ => Err(self.disagreement(&format!("entry {} of `active_projects` reads differently", i + 1))),
        }
    }

    /// The entry at position `i` (which [`StateFile::index_of`] returned).
    fn entry_at(&self, i: usize) -> Result<&Value> {
        match (&self.sparse, self.full.get()) {
            (Some(sparse), None) => {
                if let Some(v) = sparse.edited.get(&i) {
                    return Ok(v);
                }
                let cell = sparse.parsed.get(i).ok_or_else(|| self.disagreement("an entry is missing"))?;
                if let Some(v) = cell.get() {
                    return Ok(v);
                }
                let v = self.parse_entry(sparse, i)?;
                Ok(cell.get_or_init(|| v))
            }
            _ => self.entries()?.get(i).ok_or_else(|| self.disagreement("an entry is missing")),
        }
    }

    /// Task `n`'s summary.
    ///
    /// # Errors
    /// As [`StateFile::index_of`].
    pub fn task(&self, n: u32) -> Result<TaskInfo> {
        let i = self.index_of(n)?;
        task_info(self.entry_at(i)?)
            .ok_or_else(|| Error::format(&self.path, None, format!("task {n} is not an object")))
    }

    /// Task `n`'s entry object.
    ///
    /// # Errors
    /// As [`StateFile::index_of`].
    pub fn entry(&self, n: u32) -> Result<&Map<String, Value>> {
        let i = self.index_of(n)?;
        self.entry_at(i)?
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
            self.sparse_entry_mut(i)?
        } else {
            self.projects_mut()?.get_mut(i).ok_or_else(|| Error::format(&path, None, "an entry is missing"))?
        };
        value.as_object_mut().ok_or_else(|| Error::format(path, None, format!("task {n} is not an object")))
    }

    /// The entry at position `i` of a sparse file, parsed and marked edited.
    fn sparse_entry_mut(&mut self, i: usize) -> Result<&mut Value> {
        let parsed = match &self.sparse {
            Some(sparse) if !sparse.edited.contains_key(&i) => {
                Some(match sparse.parsed.get(i).and_then(OnceCell::get) {
                    Some(v) => v.clone(),
                    None => self.parse_entry(sparse, i)?,
                })
            }
            _ => None,
        };
        let path = self.path.clone();
        let sparse =
            self.sparse.as_mut().ok_or_else(|| Error::format(&path, None, "the file was not loaded sparse"))?;
        if let Some(v) = parsed {
            sparse.edited.insert(i, v);
        }
        sparse.edited.get_mut(&i).ok_or_else(|| Error::format(path, None, "an entry is missing"))
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
    ///
    /// # Errors
    /// As [`StateFile::doc`].
    pub fn prepend(&mut self, entry: Value) -> Result<()> {
        self.projects_mut()?.insert(0, entry);
        Ok(())
    }

    /// The top-level `next_project_number`, when it is an integer.
    ///
    /// # Errors
    /// As [`StateFile::doc`].
    pub fn next_project_number(&self) -> Result<Option<u64>> {
        Ok(self.doc()?.get("next_project_number").and_then(Value::as_u64))
    }

    /// Sets the top-level `next_project_number` (appended if absent).
    ///
    /// # Errors
    /// As [`StateFile::doc`].
    pub fn set_next_project_number(&mut self, n: u64) -> Result<()> {
        if let Some(obj) = self.doc_mut()?.as_object_mut() {
            obj.insert("next_project_number".into(), Value::from(n));
        }
        Ok(())
    }

    /// The largest `project_number` in use.
    ///
    /// # Errors
    /// As [`StateFile::doc`].
    pub fn max_number(&self) -> Result<Option<u32>> {
        Ok(match (&self.sparse, self.full.get()) {
            (Some(sparse), None) => sparse.numbers.iter().flatten().copied().max(),
            _ => self.entries()?.iter().filter_map(entry_number).max(),
        })
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
    sparse.spans.get(i).copied()
}

/// Validates `raw` as JSON and locates its `active_projects` entries; `None` when the file is
/// not one [`StateFile::parse`] accepts, or not one this handles (the full parse then reports
/// or reads it).
///
/// One validating pass for a file laid out as jq prints it (what the tool writes), which also
/// finds the entries; for any other file one validating pass ([`json::Any`]: everything a tree
/// parse checks, nothing built) and one that finds the entries.
fn locate(raw: &[u8]) -> Option<Sparse> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let text = std::str::from_utf8(raw).ok()?;
    let (spans, jq_printed) = match json::jq_printed_entries(raw) {
        Some(spans) => (spans, true),
        None => {
            serde_json::from_str::<json::Any>(text).ok()?;
            let Top(Some(entries)) = serde_json::from_str::<Top<'_>>(text).ok()? else { return None };
            let base = text.as_ptr() as usize;
            let spans = entries
                .iter()
                .map(|entry| {
                    let s = entry.get().as_ptr() as usize - base;
                    (s, s + entry.get().len())
                })
                .collect();
            (spans, false)
        }
    };
    let numbers = spans.iter().map(|&(s, e)| text.get(s..e).and_then(raw_number)).collect();
    let parsed = (0..spans.len()).map(|_| OnceCell::new()).collect();
    Some(Sparse { spans, numbers, parsed, edited: BTreeMap::new(), jq_printed })
}

/// The top level of a (validated) file as a sparse load reads it: the elements of its
/// `active_projects` array, the last of the key when it is there more than once (as a tree
/// parse has it); `None` when that is not an array. Refuses anything but an object (a derived
/// struct would also read an array as its fields in order).
struct Top<'a>(Option<Vec<&'a RawValue>>);

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Top<'de>, A::Error> {
                let mut found = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "active_projects" {
                        found = Some(map.next_value::<Entries<'de>>()?.0);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Top(found.flatten()))
            }
        }
        d.deserialize_map(V)
    }
}

/// An array's elements unparsed, or `None` for any other value.
struct Entries<'a>(Option<Vec<&'a RawValue>>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Entries<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = seq.next_element::<&'de RawValue>()? {
                    out.push(entry);
                }
                Ok(Entries(Some(out)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Entries<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Entries(None))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<Entries<'de>, E> {
                Ok(Entries(None))
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<Entries<'de>, E> {
                Ok(Entries(None))
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<Entries<'de>, E> {
                Ok(Entries(None))
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<Entries<'de>, E> {
                Ok(Entries(None))
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<Entries<'de>, E> {
                Ok(Entries(None))
            }
            fn visit_unit<E>(self) -> std::result::Result<Entries<'de>, E> {
                Ok(Entries(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The integer `project_number` of one (validated) entry's raw text: read directly when it is
/// the first key and appears once (as the workflow writes it), else from the parsed entry.
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
        // A later key could still be `project_number` written with escapes (the last one wins):
        // an escaped letter or underscore is `\u005x`, `\u006x` or `\u007x`.
        let escaped_letter = memchr::memmem::find_iter(rest.as_bytes(), b"\\u00")
            .any(|i| matches!(rest.as_bytes().get(i + 4), Some(b'5'..=b'7')));
        if escaped_letter {
            return None;
        }
        Some(rest[..digits].parse::<u64>().ok().and_then(|n| u32::try_from(n).ok()))
    })();
    match quick {
        Some(n) => n,
        None => json::from_slice(entry.as_bytes()).ok().as_ref().and_then(entry_number),
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
        for (&i, entry) in &self.edited {
            let (s, e) = *self.spans.get(i)?;
            if !raw.get(..s)?.ends_with(b"\n    ") {
                return None;
            }
            out.extend_from_slice(raw.get(at..s)?);
            out.extend_from_slice(&json::to_jq_pretty_at(entry, 2));
            at = e;
        }
        out.extend_from_slice(raw.get(at..)?);
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
        let out = String::from_utf8(s.to_bytes().expect("print")).expect("utf8");
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
        let jq = String::from_utf8(
            StateFile::parse(Path::new("s"), DOC.as_bytes().to_vec()).expect("p").to_bytes().expect("print"),
        )
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
        let printed = sparse.to_bytes().expect("print");
        assert_eq!(
            String::from_utf8(printed.clone()).expect("utf8"),
            String::from_utf8(full.to_bytes().expect("print")).expect("utf8")
        );
        let (start, end) = sparse.spliced_entry(printed.len()).expect("one entry spliced");
        let entry: Value = serde_json::from_slice(&printed[start..end]).expect("the range is the entry");
        assert_eq!((entry["project_number"].as_u64(), entry["status"].as_str()), (Some(1), Some("implementing")));
        assert_eq!(sparse.task(1).expect("task").status, Status::Implementing);
        assert_eq!(sparse.task(2).expect("task").language, "lean4");
        assert_eq!(sparse.max_number().expect("max"), Some(2));
        // The whole document, asked for after the edit, has it.
        assert_eq!(sparse.doc().expect("doc")["active_projects"][1]["status"], "implementing");
        assert_eq!(sparse.entries().expect("entries").len(), 2);
        // A file not laid out as jq prints it is printed whole.
        let compact = serde_json::to_vec(&serde_json::from_str::<Value>(DOC).expect("json")).expect("compact");
        let mut sparse = StateFile::parse_sparse(Path::new("s"), compact).expect("sparse");
        sparse.merge(1, fields()).expect("merge");
        assert_eq!(
            String::from_utf8(sparse.to_bytes().expect("print")).expect("utf8"),
            String::from_utf8(full.to_bytes().expect("print")).expect("utf8")
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

    /// `[...[]...]` nested `levels` deep, laid out as jq prints it `indent` levels in.
    fn nested(levels: usize, indent: usize) -> String {
        let mut out = "[]".to_owned();
        for d in (indent..indent + levels - 1).rev() {
            out = format!("[\n{}{out}\n{}]", "  ".repeat(d + 1), "  ".repeat(d));
        }
        out
    }

    /// The inputs the loaders once disagreed on (issue 11: a sparse load accepted files a tree
    /// parse refuses, and the edit then panicked), and their valid neighbours.
    pub(crate) fn agreement_corpus() -> Vec<Vec<u8>> {
        let entry = |extra: &str| {
            format!("{{\n  \"active_projects\": [\n    {{\n      \"project_number\": 1,\n      \"status\": \"planned\"{extra}\n    }}\n  ]\n}}\n")
        };
        let top = |extra: &str| {
            format!("{{\n  \"active_projects\": [\n    {{\n      \"project_number\": 1\n    }}\n  ],\n  \"x\": {extra}\n}}\n")
        };
        let mut texts: Vec<String> = Vec::new();
        for value in [
            "1e400",
            "-1e400",
            "1e-400",
            "0e999999",
            "123456789012345678901234567890",
            "123456789012345680000000000000",
            "1.7976931348623157e+308",
            "1.7976931348623159e+308",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"\\ud800x\"",
            "\"\\ud83d\\ude80\"",
            "{\"$serde_json::private::RawValue\": 5}",
            "{\"$serde_json::private::RawValue\": \"[1]\"}",
            "{\n        \"$serde_json::private::RawValue\": \"[1]\"\n      }",
        ] {
            texts.push(entry(&format!(",\n      \"x\": {value}")));
            texts.push(top(value));
            texts.push(format!("{{\"active_projects\": [{{\"project_number\": 1, \"x\": {value}}}], \"y\": {value}}}"));
        }
        // Nesting at and beyond serde_json's limit of 127 levels, the innermost empty or not, in
        // an entry and elsewhere, laid out as jq prints or not.
        for levels in [124, 125, 126, 127, 128, 200] {
            texts.push(top(&nested(levels - 1, 1)));
            texts.push(entry(&format!(",\n      \"x\": {}", nested(levels - 3, 3))));
            texts.push(entry(&format!(",\n      \"x\": {}", nested(levels - 3, 3).replace("[]", "[\n1\n]"))));
            texts.push(format!(
                "{{\"active_projects\": [], \"x\": {}{}}}",
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            ));
            let objects = format!("{}{}", "{\"a\":".repeat(levels - 3), "}".repeat(levels - 3));
            texts.push(format!("{{\"active_projects\": [{{\"project_number\": 1, \"x\": {objects}}}]}}"));
        }
        texts.extend(
            [
                // Duplicate keys: the last wins, everywhere.
                "{\"active_projects\": [{\"project_number\": 1}], \"active_projects\": [{\"project_number\": 2}]}",
                "{\"active_projects\": [], \"active_projects\": 5}",
                "{\"active_projects\": 5, \"active_projects\": []}",
                "{\"active_projects\": [{\"project_number\": 1, \"project_number\": 2}]}",
                "{\"active_projects\": [{\"project_number\": 1, \"project\\u005fnumber\": 2}]}",
                "{\"active\\u005fprojects\": [{\"project_number\": 3}]}",
                "{\n  \"active_projects\": [\n    {\n      \"project_number\": 1,\n      \"project_number\": 2\n    }\n  ]\n}\n",
                // Not objects at the top.
                "[[]]",
                "[[{\"project_number\": 1}]]",
                "[[], 1]",
                // Truncated, trailing, BOM, NUL.
                "{\"active_projects\": [{\"project_number\": 1}",
                "{\"active_projects\": [{\"project_number\": 1}]",
                "{\"active_projects\": []} {}",
                "\u{feff}{\"active_projects\": []}",
                "{\"active_projects\": []}\u{0}",
                "{\"active_projects\": [\"a\u{0}b\"]}",
                "{\"active_projects\": [\"\\u0000\"]}",
                "{\"active_projects\": []}\u{c}",
                "\u{c}",
            ]
            .map(str::to_owned),
        );
        let mut out: Vec<Vec<u8>> = texts.into_iter().map(String::into_bytes).collect();
        let printed = entry("");
        for cut in [1, printed.len() / 2, printed.len() - 2, printed.len() - 1] {
            out.push(printed.as_bytes()[..cut].to_vec());
        }
        out.push(entry(",\n      \"x\": \"\u{e9}\"").replace('\u{e9}', "\u{1}").into_bytes());
        let mut not_utf8 = entry(",\n      \"x\": \"ab\"").into_bytes();
        let at = not_utf8.len() - 12;
        not_utf8[at] = 0xff;
        out.push(not_utf8);
        out.push(b"{\"active_projects\": [], \"x\": \"\xed\xa0\x80\"}".to_vec());
        out
    }

    /// Every loader accepts exactly what `StateFile::parse` accepts, with the same error, and
    /// reads the same document; nothing a sparse load accepted fails later.
    #[test]
    fn every_loader_accepts_what_the_tree_parse_accepts() {
        let path = Path::new("specs/state.json");
        let mut accepted = 0;
        for bytes in agreement_corpus() {
            let shown = String::from_utf8_lossy(&bytes).chars().take(200).collect::<String>();
            let full = StateFile::parse(path, bytes.clone());
            let sparse = StateFile::parse_sparse(path, bytes.clone());
            let view = crate::guard::state_view::StateView::parse(&bytes);
            match (&full, &sparse) {
                (Ok(full), Ok(sparse)) => {
                    accepted += 1;
                    assert!(view.is_some(), "the check's view refuses {shown:?}");
                    assert_eq!(sparse.doc().expect("doc"), full.doc().expect("doc"), "{shown:?}");
                    assert_eq!(sparse.to_bytes().expect("print"), full.to_bytes().expect("print"), "{shown:?}");
                    for n in 0..4 {
                        assert_eq!(sparse.index_of(n).ok(), full.index_of(n).ok(), "task {n} of {shown:?}");
                        let (mut a, mut b) = (sparse.clone(), full.clone());
                        let mut m = Map::new();
                        m.insert("status".into(), "implementing".into());
                        assert_eq!(a.merge(n, m.clone()).is_ok(), b.merge(n, m).is_ok(), "{shown:?}");
                        assert_eq!(a.to_bytes().expect("print"), b.to_bytes().expect("print"), "{shown:?}");
                    }
                }
                (Err(f), Err(s)) => {
                    assert!(view.is_none(), "the check's view accepts {shown:?}");
                    assert_eq!(s.to_string(), f.to_string(), "{shown:?}");
                }
                _ => panic!("the loaders disagree on {shown:?}: full {:?}, sparse {:?}", full.is_ok(), sparse.is_ok()),
            }
        }
        assert!(accepted > 20, "{accepted} accepted");
    }

    #[test]
    fn what_the_loaders_read_from_odd_but_valid_files() {
        let load = |t: &str| StateFile::parse_sparse(Path::new("s"), t.as_bytes().to_vec()).expect(t);
        // The last of duplicate keys wins, as in jq.
        let s =
            load("{\"active_projects\": [{\"project_number\": 1}], \"active_projects\": [{\"project_number\": 2}]}");
        assert!(s.index_of(1).is_err() && s.index_of(2).is_ok());
        let s = load("{\"active_projects\": [{\"project_number\": 1, \"project\\u005fnumber\": 2}]}");
        assert!(s.index_of(1).is_err() && s.index_of(2).is_ok());
        // A 30-digit integer is a float, printed as jq prints it.
        let s = load("{\"active_projects\": [], \"x\": 123456789012345678901234567890}");
        assert!(String::from_utf8(s.to_bytes().expect("print"))
            .expect("utf8")
            .contains("123456789012345680000000000000"));
        // serde_json's raw-value key is an ordinary key.
        let s = load(
            "{\"active_projects\": [{\"project_number\": 1, \"x\": {\"$serde_json::private::RawValue\": \"[1]\"}}]}",
        );
        assert_eq!(s.entry(1).expect("entry")["x"], serde_json::json!({"$serde_json::private::RawValue": "[1]"}));
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Fix the CLI: --json output!"), "fix_the_cli_json_output");
        assert_eq!(slugify("§§"), "task");
    }
}
