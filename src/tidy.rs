//! The layer check: every `crate::` and `super::` path in `src/` (outside `#[cfg(test)]`
//! modules, comments and string literals) must follow the module table in
//! `docs/ARCHITECTURE.md`: a top-level module imports only the modules its row lists, each of a
//! lower layer, and the submodules of one module import each other without a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One `crate::`/`super::` path found in a file: where, and the module path it names.
struct Edge {
    file: String,
    line: usize,
    from: Vec<String>,
    to: Vec<String>,
}

/// A row of the module table: its layer and the modules it may import.
struct Row {
    layer: u32,
    may_import: BTreeSet<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("src/ is readable").flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` -> `[a, b]`, `src/a/mod.rs` -> `[a]`, `src/lib.rs` -> `[]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The file's text with comments, string and char literals and `#[cfg(test)]` items blanked
/// (newlines kept, so offsets still give line numbers).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = memchr::memchr(b'\n', rest).map_or(b.len(), |e| i + e);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let end = rest.windows(2).position(|w| w == b"*/").map_or(b.len(), |e| i + e + 2);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"r\"") || rest.starts_with(b"r#") || rest.starts_with(b"br\"") {
            let start = i + if rest[0] == b'b' { 2 } else { 1 };
            let hashes = b[start..].iter().take_while(|c| **c == b'#').count();
            if b.get(start + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            let body = start + hashes + 1;
            let end = b[body..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |e| body + e + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            blank(&mut out, i, end);
            i = end;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), else a lifetime.
            let end = if rest.get(1) == Some(&b'\\') {
                rest[2..].iter().position(|c| *c == b'\'').map(|e| i + 2 + e + 1)
            } else {
                let ch = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (rest.get(1 + ch) == Some(&b'\'')).then_some(i + 2 + ch)
            };
            match end {
                Some(end) => {
                    blank(&mut out, i, end);
                    i = end;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    // Then each `#[cfg(test)]` item (its braces are now exact): up to its closing brace at the
    // same depth, or the semicolon of a one-line item.
    let b = out.clone();
    let mut i = 0;
    while let Some(at) = b[i..].windows(12).position(|w| w == b"#[cfg(test)]") {
        let start = i + at;
        let mut j = start + 12;
        let mut depth = 0usize;
        while j < b.len() {
            match b[j] {
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        j += 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    j += 1;
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        blank(&mut out, start, j.min(b.len()));
        i = j.min(b.len());
    }
    String::from_utf8(out).expect("blanking keeps UTF-8 boundaries")
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The paths of a `use` tree starting at `at` (just after a `crate::` or `super::`), each as
/// its identifiers: `a::{b, c::d}` -> `[a, b]`, `[a, c, d]`.
fn paths_at(code: &[u8], mut at: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix;
    loop {
        while at < code.len() && code[at].is_ascii_whitespace() {
            at += 1;
        }
        if code.get(at) == Some(&b'{') {
            at += 1;
            loop {
                at = paths_at(code, at, path.clone(), out);
                while at < code.len() && code[at].is_ascii_whitespace() {
                    at += 1;
                }
                match code.get(at) {
                    Some(b',') => {
                        at += 1;
                        while at < code.len() && code[at].is_ascii_whitespace() {
                            at += 1;
                        }
                        if code.get(at) == Some(&b'}') {
                            return at + 1;
                        }
                    }
                    Some(b'}') => return at + 1,
                    _ => return at,
                }
            }
        }
        let start = at;
        while at < code.len() && is_ident(code[at]) {
            at += 1;
        }
        if start == at {
            out.push(path);
            return at;
        }
        path.push(String::from_utf8_lossy(&code[start..at]).into_owned());
        if code[at..].starts_with(b"::") {
            at += 2;
        } else {
            out.push(path);
            return at;
        }
    }
}

fn edges(file: &str, module: &[String], text: &str, modules: &BTreeSet<Vec<String>>) -> Vec<Edge> {
    let code = code_only(text);
    let b = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !is_ident(b[i - 1]) && b[i - 1] != b':';
        let (base, len) = if boundary && b[i..].starts_with(b"crate::") {
            (Some(Vec::new()), "crate::".len())
        } else if boundary && b[i..].starts_with(b"super::") {
            // `super::` from `a::b` (a.rs or a/b.rs) is `a`, from `a` (a/mod.rs) the crate root.
            let mut base = module.to_vec();
            base.pop();
            let mut at = i + "super::".len();
            while b[at..].starts_with(b"super::") {
                base.pop();
                at += "super::".len();
            }
            (Some(base), at - i)
        } else {
            (None, 1)
        };
        let Some(base) = base else {
            i += len;
            continue;
        };
        let line = 1 + b[..i].iter().filter(|c| **c == b'\n').count();
        let mut paths = Vec::new();
        let end = paths_at(b, i + len, base, &mut paths);
        for p in paths {
            // The module named: the longest prefix that is a module file.
            let to = (1..=p.len()).rev().map(|n| p[..n].to_vec()).find(|m| modules.contains(m));
            if let Some(to) = to {
                found.push(Edge { file: file.to_owned(), line, from: module.to_vec(), to });
            }
        }
        i = end.max(i + len);
    }
    found
}

/// The module table of docs/ARCHITECTURE.md: `| `module` | layer | owns | may import |`.
fn table() -> BTreeMap<String, Row> {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let mut rows = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() != 4 {
            continue;
        }
        let Ok(layer) = cells[1].parse::<u32>() else { continue };
        let name = cells[0].trim_matches('`').to_owned();
        let may_import = cells[3]
            .split(',')
            .map(|m| m.trim().trim_matches('`').to_owned())
            .filter(|m| !m.is_empty() && m != "nothing")
            .collect();
        rows.insert(name, Row { layer, may_import });
    }
    rows
}

#[test]
fn modules_import_only_lower_layers_and_no_cycles() {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut sources = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).expect("under src");
        sources.push((format!("src/{}", rel.display()), module_of(rel), std::fs::read_to_string(f).expect("read")));
    }
    let modules: BTreeSet<Vec<String>> = sources.iter().map(|(_, m, _)| m.clone()).collect();
    let rows = table();
    let mut problems = Vec::new();

    // The table itself: a row for every top-level module and a submodule row for an existing
    // one only; a row may import only lower layers.
    for m in modules.iter().filter(|m| m.len() == 1) {
        if !rows.contains_key(&m[0]) && m[0] != "tidy" {
            problems.push(format!("docs/ARCHITECTURE.md: no row for the module `{}`", m[0]));
        }
    }
    for (name, row) in &rows {
        let path: Vec<String> = name.split("::").map(str::to_owned).collect();
        if !modules.contains(&path) {
            problems.push(format!("docs/ARCHITECTURE.md: the row `{name}` names no module in src/"));
        }
        if path.len() > 1 {
            if rows.get(&path[0]).is_some_and(|parent| parent.layer != row.layer) {
                problems.push(format!("docs/ARCHITECTURE.md: `{name}` must have its module's layer"));
            }
            continue;
        }
        for dep in &row.may_import {
            match rows.get(dep) {
                Some(d) if d.layer < row.layer => {}
                Some(_) => {
                    problems.push(format!("docs/ARCHITECTURE.md: `{name}` may import `{dep}`, not of a lower layer"))
                }
                None => problems.push(format!("docs/ARCHITECTURE.md: `{name}` may import `{dep}`, which has no row")),
            }
        }
    }

    // Every path in the code.
    let mut siblings: BTreeMap<(Vec<String>, String, String), (String, usize)> = BTreeMap::new();
    for (file, module, text) in &sources {
        if module.first().is_some_and(|m| m == "tidy") {
            continue;
        }
        for e in edges(file, module, text, &modules) {
            let (Some(from), Some(to)) = (e.from.first(), e.to.first()) else { continue };
            if from != to {
                let allowed = rows.get(from).is_some_and(|r| r.may_import.contains(to));
                if !allowed {
                    problems.push(format!(
                        "{}:{}: `{}` imports `{}`, which its row in docs/ARCHITECTURE.md does not allow",
                        e.file,
                        e.line,
                        e.from.join("::"),
                        e.to.join("::")
                    ));
                }
                continue;
            }
            // Inside one module: siblings under their common parent (a module and its own
            // parent or children are not siblings).
            let common = e.from.iter().zip(&e.to).take_while(|(a, b)| a == b).count();
            if common < e.from.len() && common < e.to.len() {
                let key = (e.from[..common].to_vec(), e.from[common].clone(), e.to[common].clone());
                siblings.entry(key).or_insert((e.file.clone(), e.line));
            }
        }
    }
    // A cycle among siblings: an edge a -> b where b reaches a.
    let reaches = |parent: &Vec<String>, from: &str, goal: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            if m == goal {
                return true;
            }
            if seen.insert(m.clone()) {
                for (p, a, b) in siblings.keys() {
                    if p == parent && *a == m {
                        todo.push(b.clone());
                    }
                }
            }
        }
        false
    };
    for ((parent, a, b), (file, line)) in &siblings {
        if reaches(parent, b, a) {
            let name = |m: &str| parent.iter().cloned().chain([m.to_owned()]).collect::<Vec<_>>().join("::");
            problems.push(format!(
                "{file}:{line}: `{}` imports `{}`, which imports it back: a cycle",
                name(a),
                name(b)
            ));
        }
    }
    problems.dedup();
    assert!(problems.is_empty(), "layer violations:\n{}", problems.join("\n"));
}

#[test]
fn the_path_reader_sees_groups_inline_paths_and_skips_strings_and_tests() {
    let modules: BTreeSet<Vec<String>> = [vec!["a"], vec!["b"], vec!["b", "c"], vec!["d"]]
        .iter()
        .map(|m| m.iter().map(|s| s.to_string()).collect())
        .collect();
    let text = "use crate::{a, b::{c::X, Y}};\nfn f() { crate::d::g(); let s = \"crate::a\"; } // crate::a\n#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n";
    let found: Vec<(usize, String)> =
        edges("src/x.rs", &["x".to_owned()], text, &modules).iter().map(|e| (e.line, e.to.join("::"))).collect();
    assert_eq!(found, [(1, "a".to_owned()), (1, "b::c".to_owned()), (1, "b".to_owned()), (2, "d".to_owned())]);
}
