//! A JSON document kept as its own bytes plus the byte span of every value, so an edit splices
//! new text into the original (key order, indentation, line endings and every byte outside the
//! edited value unchanged) instead of printing the document again. New values are printed in
//! the file's own style: its indent unit, its key separator, its line ending, pretty or compact.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::ledger::json;

/// One value of the document and where it is.
#[derive(Debug, Clone)]
pub struct Node {
    /// Byte offset of its first byte.
    pub start: usize,
    /// Byte offset one past its last byte.
    pub end: usize,
    /// What it holds.
    pub kind: Kind,
}

/// The shape of a [`Node`].
#[derive(Debug, Clone)]
pub enum Kind {
    /// An object: its members in file order (decoded key, node).
    Object(Vec<(String, Node)>),
    /// An array.
    Array(Vec<Node>),
    /// A string, number, boolean or null.
    Scalar,
}

impl Node {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Object(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, n)| n),
            _ => None,
        }
    }

    /// The elements of an array (empty for anything else).
    pub fn elements(&self) -> &[Node] {
        match &self.kind {
            Kind::Array(a) => a,
            _ => &[],
        }
    }
}

/// One step of a path into the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// An object member.
    Key(&'a str),
    /// An array element.
    Index(usize),
}

/// How the file lays itself out, read from its own bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Style {
    /// One level of indentation (`"  "`, `"    "`, `"\t"`); empty for a one-line file.
    pub unit: String,
    /// Between a key and its value (`": "`, `":"`, `" : "`).
    pub colon: String,
    /// `"\n"` or `"\r\n"`.
    pub newline: String,
    /// Between the members of a one-line container (`", "` or `","`).
    pub comma: String,
}

/// The document: its bytes, its tree of spans, its style.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The root value.
    pub root: Node,
    /// The file's layout.
    pub style: Style,
    path: std::path::PathBuf,
}

impl Doc {
    /// Parses `bytes` (one JSON document; what [`json::from_slice`] accepts).
    ///
    /// # Errors
    /// `Json` with the line and column of the first syntax error.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Doc> {
        json::parse(path, &bytes)?;
        let mut scan = Scan { b: &bytes, i: 0 };
        scan.ws();
        let root = scan.value().ok_or_else(|| Error::format(path, None, "cannot locate the JSON values"))?;
        let style = Style::detect(&bytes, &root);
        Ok(Doc { bytes, root, style, path: path.to_path_buf() })
    }

    /// The node at `path`.
    pub fn node(&self, path: &[Seg<'_>]) -> Option<&Node> {
        let mut n = &self.root;
        for s in path {
            n = match (s, &n.kind) {
                (Seg::Key(k), Kind::Object(_)) => n.get(k)?,
                (Seg::Index(i), Kind::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(n)
    }

    /// The value at `path`, decoded.
    pub fn value(&self, path: &[Seg<'_>]) -> Option<Value> {
        self.node(path).and_then(|n| json::from_slice(&self.bytes[n.start..n.end]).ok())
    }

    /// The whole document, decoded.
    ///
    /// # Errors
    /// `Json` (never, for a parsed document).
    pub fn to_value(&self) -> Result<Value> {
        json::parse(&self.path, &self.bytes)
    }

    fn reparse(&mut self, bytes: Vec<u8>) -> Result<()> {
        let style = self.style.clone();
        *self = Doc::parse(&self.path, bytes)?;
        // The style of the original file stays the reference (an edit never changes it).
        self.style = style;
        Ok(())
    }

    fn splice(&mut self, start: usize, end: usize, text: &[u8]) -> Result<()> {
        let mut out = Vec::with_capacity(self.bytes.len() + text.len());
        out.extend_from_slice(&self.bytes[..start]);
        out.extend_from_slice(text);
        out.extend_from_slice(&self.bytes[end..]);
        self.reparse(out)
    }

    /// The indentation of the line where byte `at` is.
    fn line_indent(&self, at: usize) -> String {
        let line_start = self.bytes[..at].iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        let ws = self.bytes[line_start..].iter().take_while(|b| **b == b' ' || **b == b'\t').count();
        String::from_utf8_lossy(&self.bytes[line_start..line_start + ws]).into_owned()
    }

    /// Sets the value at `path` (replacing it when it exists, else adding the missing members
    /// at the end of the deepest object that exists). Unchanged when the value is already equal.
    ///
    /// # Errors
    /// A step of `path` goes through a value that is not an object (or an array, for an index).
    pub fn set(&mut self, path: &[Seg<'_>], value: &Value) -> Result<()> {
        if let Some(n) = self.node(path) {
            if self.value(path).as_ref() == Some(value) {
                return Ok(());
            }
            let (start, end) = (n.start, n.end);
            let text = self.style.render(value, &self.line_indent(start));
            return self.splice(start, end, text.as_bytes());
        }
        // The deepest existing prefix must be an object; the rest is built as nested objects.
        let mut depth = path.len();
        while depth > 0 && self.node(&path[..depth]).is_none() {
            depth -= 1;
        }
        let Some(Seg::Key(key)) = path.get(depth) else {
            return Err(Error::format(&self.path, None, format!("cannot add {} (an array index)", show(path))));
        };
        let mut nested = value.clone();
        for s in path[depth + 1..].iter().rev() {
            let Seg::Key(k) = s else {
                return Err(Error::format(&self.path, None, format!("cannot add {} (an array index)", show(path))));
            };
            let mut m = serde_json::Map::new();
            m.insert((*k).to_owned(), nested);
            nested = Value::Object(m);
        }
        self.insert_member(&path[..depth], key, &nested)
    }

    fn insert_member(&mut self, obj: &[Seg<'_>], key: &str, value: &Value) -> Result<()> {
        let n = self.node(obj).ok_or_else(|| Error::format(&self.path, None, format!("no {}", show(obj))))?;
        let Kind::Object(members) = &n.kind else {
            return Err(Error::format(&self.path, None, format!("{} is not an object", show(obj))));
        };
        let key_text = serde_json::to_string(key).expect("a string serialises");
        let (start, end) = (n.start, n.end);
        let multiline = self.bytes[start..end].contains(&b'\n') || (members.is_empty() && self.ends_line(end));
        let text = if let Some((_, last)) = members.last() {
            let at = last.end;
            let member_indent = self.member_indent(last.start, start);
            let sep = self.separator(start, end, multiline, &member_indent);
            let rendered = if multiline { self.style.render(value, &member_indent) } else { self.style.inline(value) };
            let body = format!("{key_text}{}{rendered}", self.style.colon);
            return self.splice(at, at, format!("{sep}{body}").as_bytes());
        } else if multiline {
            let outer = self.line_indent(start);
            let inner = format!("{outer}{}", self.style.unit);
            let nl = &self.style.newline;
            format!("{{{nl}{inner}{key_text}{}{}{nl}{outer}}}", self.style.colon, self.style.render(value, &inner))
        } else {
            format!("{{{key_text}{}{}}}", self.style.colon, self.style.inline(value))
        };
        self.splice(start, end, text.as_bytes())
    }

    /// Appends `value` to the array at `path` (creating the array, and the objects above it,
    /// when missing).
    ///
    /// # Errors
    /// `path` holds something that is not an array.
    pub fn append(&mut self, path: &[Seg<'_>], value: &Value) -> Result<()> {
        let Some(n) = self.node(path) else {
            return self.set(path, &Value::Array(vec![value.clone()]));
        };
        let Kind::Array(elements) = &n.kind else {
            return Err(Error::format(&self.path, None, format!("{} is not an array", show(path))));
        };
        let (start, end) = (n.start, n.end);
        let multiline = self.bytes[start..end].contains(&b'\n') || (elements.is_empty() && self.ends_line(end));
        if let Some(last) = elements.last() {
            let at = last.end;
            let indent = self.member_indent(last.start, start);
            let sep = self.separator(start, end, multiline, &indent);
            let rendered = if multiline { self.style.render(value, &indent) } else { self.style.inline(value) };
            let text = format!("{sep}{rendered}");
            return self.splice(at, at, text.as_bytes());
        }
        let text = if multiline {
            let outer = self.line_indent(start);
            let inner = format!("{outer}{}", self.style.unit);
            let nl = &self.style.newline;
            format!("[{nl}{inner}{}{nl}{outer}]", self.style.render(value, &inner))
        } else {
            format!("[{}]", self.style.inline(value))
        };
        self.splice(start, end, text.as_bytes())
    }

    /// Whether the value ending at `end` is the last thing on its line (a trailing comma aside):
    /// an empty container there grows into lines, one inside a one-line container stays on it.
    fn ends_line(&self, end: usize) -> bool {
        if self.style.unit.is_empty() {
            return false;
        }
        let mut i = end;
        let skip = |i: &mut usize| {
            while *i < self.bytes.len() && matches!(self.bytes[*i], b' ' | b'\t') {
                *i += 1;
            }
        };
        skip(&mut i);
        if self.bytes.get(i) == Some(&b',') {
            i += 1;
            skip(&mut i);
        }
        matches!(self.bytes.get(i), None | Some(b'\n' | b'\r'))
    }

    /// The indentation of a container's members, from its last member (which may share its line
    /// with a key, so the line's indentation is the member's only when it begins the line).
    fn member_indent(&self, member_start: usize, container_start: usize) -> String {
        let line_start = self.bytes[..member_start].iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        if line_start > container_start {
            self.line_indent(member_start)
        } else {
            format!("{}{}", self.line_indent(container_start), self.style.unit)
        }
    }

    /// What goes between the last member and a new one: `,` plus the file's line break and
    /// indentation, or the container's own one-line separator.
    fn separator(&self, start: usize, end: usize, multiline: bool, indent: &str) -> String {
        if multiline {
            format!(",{}{indent}", self.style.newline)
        } else if self.bytes[start..end].windows(2).any(|w| w == b", ") {
            ", ".to_owned()
        } else if self.bytes[start..end].contains(&b',') {
            ",".to_owned()
        } else {
            self.style.comma.clone()
        }
    }
}

/// `a.b[2].c`, for messages.
pub fn show(path: &[Seg<'_>]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

impl Style {
    fn detect(bytes: &[u8], root: &Node) -> Style {
        let newline = if bytes.windows(2).any(|w| w == b"\r\n") { "\r\n" } else { "\n" }.to_owned();
        // The indent unit: the indentation of the first line that holds a member of the root.
        let first_child = match &root.kind {
            Kind::Object(m) => m.first().map(|(_, n)| n.start),
            Kind::Array(a) => a.first().map(|n| n.start),
            Kind::Scalar => None,
        };
        let unit = first_child
            .and_then(|at| {
                let line_start = bytes[..at].iter().rposition(|b| *b == b'\n')? + 1;
                let ws = bytes[line_start..].iter().take_while(|b| **b == b' ' || **b == b'\t').count();
                Some(String::from_utf8_lossy(&bytes[line_start..line_start + ws]).into_owned())
            })
            .unwrap_or_default();
        let colon = first_colon(bytes, root).unwrap_or_else(|| if unit.is_empty() { ":" } else { ": " }.to_owned());
        // One-line containers are written as the file writes them: `, ` when it has any (outside
        // strings, near enough: before a value's first byte), else `,` in a one-line file.
        let spaced = bytes.windows(3).any(|w| {
            w[0] == b',' && w[1] == b' ' && matches!(w[2], b'"' | b'{' | b'[' | b'0'..=b'9' | b'-' | b't' | b'f' | b'n')
        });
        let comma = if spaced || !unit.is_empty() { ", " } else { "," }.to_owned();
        Style { unit, colon, newline, comma }
    }

    /// `value` printed in this style, its lines after the first indented from `base` (the
    /// indentation of the line it begins on).
    pub fn render(&self, value: &Value, base: &str) -> String {
        let mut out = String::new();
        self.render_into(value, base, &mut out);
        out
    }

    /// `value` on one line, in this style's separators.
    pub fn inline(&self, value: &Value) -> String {
        let flat = Style { unit: String::new(), ..self.clone() };
        flat.render(value, "")
    }

    fn render_into(&self, value: &Value, base: &str, out: &mut String) {
        let pretty = !self.unit.is_empty();
        match value {
            Value::Object(m) if !m.is_empty() => {
                out.push('{');
                let inner = format!("{base}{}", self.unit);
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(if pretty { "," } else { &self.comma });
                    }
                    if pretty {
                        out.push_str(&self.newline);
                        out.push_str(&inner);
                    }
                    out.push_str(&serde_json::to_string(k).expect("a string serialises"));
                    out.push_str(&self.colon);
                    self.render_into(v, &inner, out);
                }
                if pretty {
                    out.push_str(&self.newline);
                    out.push_str(base);
                }
                out.push('}');
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('[');
                let inner = format!("{base}{}", self.unit);
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(if pretty { "," } else { &self.comma });
                    }
                    if pretty {
                        out.push_str(&self.newline);
                        out.push_str(&inner);
                    }
                    self.render_into(v, &inner, out);
                }
                if pretty {
                    out.push_str(&self.newline);
                    out.push_str(base);
                }
                out.push(']');
            }
            Value::Object(_) => out.push_str("{}"),
            Value::Array(_) => out.push_str("[]"),
            scalar => out.push_str(&serde_json::to_string(scalar).expect("a scalar serialises")),
        }
    }
}

/// The bytes between the first key of the document and its value.
fn first_colon(bytes: &[u8], n: &Node) -> Option<String> {
    match &n.kind {
        Kind::Object(m) => {
            let (_, v) = m.first()?;
            // Walk back from the value over whitespace and the colon to the key's closing quote.
            let mut i = v.start;
            while i > 0 && bytes[i - 1] != b'"' {
                i -= 1;
            }
            Some(String::from_utf8_lossy(&bytes[i..v.start]).into_owned())
        }
        Kind::Array(a) => a.iter().find_map(|e| first_colon(bytes, e)),
        Kind::Scalar => None,
    }
}

/// A scanner over a document already known to be valid JSON.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn string_end(&mut self) -> Option<()> {
        // At the opening quote.
        self.i += 1;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                _ => self.i += 1,
            }
        }
        None
    }

    fn value(&mut self) -> Option<Node> {
        let start = self.i;
        match *self.b.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut members = Vec::new();
                loop {
                    self.ws();
                    match *self.b.get(self.i)? {
                        b'}' => {
                            self.i += 1;
                            break;
                        }
                        b',' => {
                            self.i += 1;
                            continue;
                        }
                        _ => {}
                    }
                    let ks = self.i;
                    self.string_end()?;
                    let key: String = serde_json::from_slice(&self.b[ks..self.i]).ok()?;
                    self.ws();
                    self.i += 1; // the colon
                    self.ws();
                    let v = self.value()?;
                    members.push((key, v));
                }
                Some(Node { start, end: self.i, kind: Kind::Object(members) })
            }
            b'[' => {
                self.i += 1;
                let mut elements = Vec::new();
                loop {
                    self.ws();
                    match *self.b.get(self.i)? {
                        b']' => {
                            self.i += 1;
                            break;
                        }
                        b',' => {
                            self.i += 1;
                            continue;
                        }
                        _ => {}
                    }
                    elements.push(self.value()?);
                }
                Some(Node { start, end: self.i, kind: Kind::Array(elements) })
            }
            b'"' => {
                self.string_end()?;
                Some(Node { start, end: self.i, kind: Kind::Scalar })
            }
            _ => {
                while self.i < self.b.len()
                    && !matches!(self.b[self.i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                {
                    self.i += 1;
                }
                Some(Node { start, end: self.i, kind: Kind::Scalar })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(s: &str) -> Doc {
        Doc::parse(Path::new("p.json"), s.as_bytes().to_vec()).expect("parses")
    }

    fn text(d: &Doc) -> &str {
        std::str::from_utf8(&d.bytes).expect("utf-8")
    }

    #[test]
    fn detects_the_files_own_style() {
        let d = doc("{\r\n    \"a\" : 1\r\n}\r\n");
        assert_eq!(
            d.style,
            Style { unit: "    ".into(), colon: " : ".into(), newline: "\r\n".into(), comma: ", ".into() }
        );
        let d = doc("{\n\t\"a\": {\"b\": 1}\n}\n");
        assert_eq!(d.style.unit, "\t");
        let d = doc("{\"a\":1}");
        assert_eq!(d.style, Style { unit: String::new(), colon: ":".into(), newline: "\n".into(), comma: ",".into() });
    }

    #[test]
    fn set_replaces_only_the_value() {
        let mut d = doc("{\n    \"b\": {\"x\": \"ready\",  \"y\": 2},\n    \"a\": 1\n}\n");
        d.set(&[Seg::Key("b"), Seg::Key("x")], &json!("completed")).expect("set");
        assert_eq!(text(&d), "{\n    \"b\": {\"x\": \"completed\",  \"y\": 2},\n    \"a\": 1\n}\n");
        d.set(&[Seg::Key("a")], &json!(1)).expect("same value");
        assert_eq!(text(&d), "{\n    \"b\": {\"x\": \"completed\",  \"y\": 2},\n    \"a\": 1\n}\n");
    }

    #[test]
    fn set_adds_missing_members_in_the_files_indentation() {
        let mut d = doc("{\n    \"meta\": {\n        \"a\": 1\n    }\n}\n");
        d.set(&[Seg::Key("meta"), Seg::Key("b")], &json!("x")).expect("set");
        d.set(&[Seg::Key("impl"), Seg::Key("changes")], &json!([])).expect("set");
        assert_eq!(
            text(&d),
            "{\n    \"meta\": {\n        \"a\": 1,\n        \"b\": \"x\"\n    },\n    \"impl\": {\n        \"changes\": []\n    }\n}\n"
        );
    }

    #[test]
    fn append_keeps_tabs_crlf_and_one_line_arrays() {
        let mut d = doc("{\r\n\t\"l\": [\r\n\t\t{\"a\": 1}\r\n\t],\r\n\t\"e\": [],\r\n\t\"c\": [1, 2]\r\n}");
        d.append(&[Seg::Key("l")], &json!({"b": [2]})).expect("append");
        d.append(&[Seg::Key("e")], &json!("x")).expect("append");
        d.append(&[Seg::Key("c")], &json!(3)).expect("append");
        assert_eq!(
            text(&d),
            "{\r\n\t\"l\": [\r\n\t\t{\"a\": 1},\r\n\t\t{\r\n\t\t\t\"b\": [\r\n\t\t\t\t2\r\n\t\t\t]\r\n\t\t}\r\n\t],\r\n\t\"e\": [\r\n\t\t\"x\"\r\n\t],\r\n\t\"c\": [1, 2, 3]\r\n}"
        );
    }

    #[test]
    fn one_line_containers_in_a_pretty_file_stay_on_their_line() {
        let mut d = doc("{\n  \"i\": {\"changes\": [], \"tests\": [1]},\n  \"e\": []\n}\n");
        d.append(&[Seg::Key("i"), Seg::Key("changes")], &json!({"id": "c-1", "n": [1, 2]})).expect("append");
        d.append(&[Seg::Key("i"), Seg::Key("tests")], &json!({"a": 1})).expect("append");
        d.set(&[Seg::Key("i"), Seg::Key("new")], &json!({"b": 2})).expect("set");
        d.append(&[Seg::Key("e")], &json!({"c": 3})).expect("append");
        assert_eq!(
            text(&d),
            "{\n  \"i\": {\"changes\": [{\"id\": \"c-1\", \"n\": [1, 2]}], \"tests\": [1, {\"a\": 1}], \"new\": {\"b\": 2}},\n  \"e\": [\n    {\n      \"c\": 3\n    }\n  ]\n}\n"
        );
    }

    #[test]
    fn compact_files_stay_compact() {
        let mut d = doc("{\"a\":[],\"m\":{}}");
        d.append(&[Seg::Key("a")], &json!({"k": 1})).expect("append");
        d.set(&[Seg::Key("m"), Seg::Key("z")], &json!(true)).expect("set");
        assert_eq!(text(&d), "{\"a\":[{\"k\":1}],\"m\":{\"z\":true}}");
    }

    #[test]
    fn strings_with_brackets_and_escapes_are_located() {
        let d = doc("{\"a\\\"]\": \"x}\\\\\", \"b\": [\"]\", -1.5e3, null]}");
        assert_eq!(d.value(&[Seg::Key("a\"]")]), Some(json!("x}\\")));
        assert_eq!(d.value(&[Seg::Key("b"), Seg::Index(1)]), Some(json!(-1.5e3)));
        assert_eq!(d.value(&[Seg::Key("b"), Seg::Index(2)]), Some(json!(null)));
    }

    #[test]
    fn bad_json_is_refused_with_its_position() {
        let e = Doc::parse(Path::new("p.json"), b"{\n  \"a\": [1,\n}".to_vec()).expect_err("invalid");
        assert!(e.to_string().starts_with("p.json:3:"), "{e}");
    }
}
