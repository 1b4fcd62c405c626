//! The three-way merge of `specs/TODO.md`, task block by task block (a block: the `### N.`
//! heading to the next heading or `---`). A block changed on one side takes that side's block,
//! placed as a task's commit places it ([`scope::scope_todo`]); a block changed on both sides
//! merges line field by line field (the heading, each `**Label**:` bullet or paragraph with its
//! continuation lines); the same field changed differently is a conflict. The frontmatter merges
//! key by key (`next_project_number` the larger, `task_counts` ours: it is derived, and
//! `xtask check --fix` recomputes it). Text outside any block changed on one side only is that
//! side's; changed on both, a conflict. Every other line stays as the side it comes from has it.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;

use super::state::key_order;
use super::{Conflict, Outcome};
use crate::error::{Error, Result};
use crate::ledger::scope;
use crate::ledger::todo::TodoFile;

/// One side, parsed.
struct Side {
    file: TodoFile,
    /// Each task's block (heading to the block's end) and span (with its separator), by number.
    blocks: Vec<(u32, Range<usize>, Range<usize>)>,
    /// The lines outside the frontmatter and every span.
    skeleton: Vec<String>,
    /// The frontmatter as keyed chunks (`None` without a frontmatter).
    front: Option<Vec<(String, Vec<String>)>>,
    /// Each task's position in `blocks`.
    by_number: std::collections::HashMap<u32, usize>,
}

impl Side {
    fn block(&self, n: u32) -> Option<Vec<&str>> {
        let (_, b, _) = &self.blocks[*self.by_number.get(&n)?];
        Some(b.clone().map(|i| self.file.doc.line(i)).collect())
    }

    fn next_number(&self) -> Option<u64> {
        self.file.next_project_number().map(|(_, n)| n)
    }
}

fn side(path: &Path, which: &str, bytes: &[u8]) -> Result<Side> {
    let label = format!("{} ({which})", path.display());
    let file = TodoFile::parse(Path::new(&label), bytes)?;
    let headings = file.headings();
    let mut seen = BTreeSet::new();
    let mut blocks = Vec::with_capacity(headings.len());
    let lines: Vec<&str> = file.doc.lines().collect();
    for (line, n) in &headings {
        if !seen.insert(*n) {
            return Err(Error::format(
                &label,
                Some(line + 1),
                format!("task {n} has more than one heading; remove or renumber the duplicate first"),
            ));
        }
        let block = file.block_at(*line);
        let span = block.start..crate::ledger::todo::span_end(&lines, block.end);
        blocks.push((*n, block, span));
    }
    let front_range = file.frontmatter();
    let body_start = front_range.as_ref().map_or(0, |r| r.end + 1);
    let mut in_span = vec![false; file.doc.len()];
    for (_, _, span) in &blocks {
        in_span[span.clone()].iter_mut().for_each(|b| *b = true);
    }
    let skeleton = (body_start..file.doc.len()).filter(|&i| !in_span[i]).map(|i| file.doc.line(i).to_owned()).collect();
    let front = front_range.map(|r| front_fields(r.map(|i| file.doc.line(i)).collect()));
    let by_number = blocks.iter().enumerate().map(|(i, (n, _, _))| (*n, i)).collect();
    Ok(Side { file, blocks, skeleton, front, by_number })
}

/// Frontmatter lines as chunks keyed by their top-level YAML key (a line `key:` at column 0
/// and the indented lines under it); lines before any key are keyed `""`.
fn front_fields(lines: Vec<&str>) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in lines {
        let key = (!line.starts_with([' ', '\t', '#', '-']))
            .then(|| line.split_once(':').map(|(k, _)| k.trim().to_owned()))
            .flatten()
            .filter(|k| !k.is_empty());
        match (key, out.last_mut()) {
            (Some(k), _) => out.push((k, vec![line.to_owned()])),
            (None, Some((_, chunk))) => chunk.push(line.to_owned()),
            (None, None) => out.push((String::new(), vec![line.to_owned()])),
        }
    }
    out
}

/// Merges `base`, `ours` and `theirs` (the bytes of `%O`, `%A`, `%B`).
///
/// # Errors
/// A side that is not UTF-8 or has a task heading twice.
pub fn merge(path: &Path, base: &[u8], ours: &[u8], theirs: &[u8]) -> Result<Outcome> {
    let o = side(path, "base", base)?;
    let a = side(path, "ours", ours)?;
    let b = side(path, "theirs", theirs)?;
    let mut conflicts = Vec::new();

    // The side whose text outside the blocks is kept: ours, unless only theirs changed it.
    let theirs_first = a.skeleton == o.skeleton && b.skeleton != o.skeleton;
    if a.skeleton != o.skeleton && b.skeleton != o.skeleton && a.skeleton != b.skeleton {
        conflicts.push(Conflict::new(None, "TODO.md outside the task blocks", "changed on both sides".into()));
    }
    let (keep, other) = if theirs_first { (&b, &a) } else { (&a, &b) };
    let mut cur = keep.file.to_text();

    let numbers: BTreeSet<u32> = [&o, &a, &b].iter().flat_map(|s| s.blocks.iter().map(|(n, _, _)| *n)).collect();
    for n in numbers {
        let (ob, ab, bb) = (o.block(n), a.block(n), b.block(n));
        let (kb, xb) = if theirs_first { (&bb, &ab) } else { (&ab, &bb) };
        if kb == xb || xb == &ob {
            continue;
        }
        if kb.is_none() && ob.is_none() {
            // Created on the other side only.
            cur = insert_new(path, &cur, other, &o, n)?;
            continue;
        }
        if xb.is_none() && kb == &ob {
            // Deleted on the other side only.
            cur = remove_block(path, &cur, n)?;
            continue;
        }
        if kb == &ob {
            // Only the other side changed the block: take its block, placed as a commit places it.
            let scoped = scope::scope_todo(path, cur.as_bytes(), other.file.to_text().as_bytes(), n)?;
            cur = String::from_utf8(scoped).map_err(|_| Error::format(path, None, "the merge is not UTF-8"))?;
            continue;
        }
        match (&ab, &bb) {
            (Some(x), Some(y)) => {
                if ob.is_none() && title(x) != title(y) {
                    conflicts.push(Conflict::new(
                        Some(n),
                        "TODO.md heading",
                        format!(
                            "created on both sides as different tasks: ours `{}`, theirs `{}`; renumber one with `xtask task renumber {n} <new number>`",
                            x[0], y[0]
                        ),
                    ));
                    continue;
                }
                let owned = |v: &[&str]| v.iter().map(|l| (*l).to_owned()).collect::<Vec<String>>();
                let merged = merge_block(n, ob.as_deref().map(owned).as_deref(), &owned(x), &owned(y), &mut conflicts);
                cur = replace_block(path, &cur, n, &merged)?;
            }
            (Some(_), None) => {
                conflicts.push(Conflict::new(Some(n), "TODO.md block", "changed in ours, deleted in theirs".into()))
            }
            (None, Some(_)) => {
                conflicts.push(Conflict::new(Some(n), "TODO.md block", "deleted in ours, changed in theirs".into()))
            }
            (None, None) => {}
        }
    }

    let mut file = TodoFile::parse(path, cur.as_bytes())?;
    if let (Some(front), Some(range)) = (merge_front(&o, &a, &b, &mut conflicts), file.frontmatter()) {
        let lines: Vec<String> = front.into_iter().flat_map(|(_, chunk)| chunk).collect();
        for i in range.clone().rev() {
            file.doc.remove_line(i);
        }
        file.doc.insert_lines(range.start, &lines);
    }
    if let (Some(x), Some(y)) = (a.next_number(), b.next_number()) {
        file.set_next_project_number(x.max(y));
    }
    Ok(Outcome { bytes: file.to_text().into_bytes(), conflicts })
}

/// `cur` with the block `n` that only `other` has (and the base lacks) inserted: after its
/// nearest predecessor in `other` that `cur` has, past the blocks created since the base with
/// larger numbers that follow it; else before its nearest follower, before the blocks created
/// since the base with smaller numbers right above it (so tasks new on both sides end newest
/// first, as in state.json); else under `## Tasks`, as `task new` puts it.
fn insert_new(path: &Path, cur: &str, other: &Side, o: &Side, n: u32) -> Result<String> {
    let here = side(path, "merged", cur.as_bytes())?;
    let is_new = |m: u32| !o.by_number.contains_key(&m);
    let pos_in = |m: u32| here.blocks.iter().position(|(k, _, _)| *k == m);
    let Some(idx) = other.blocks.iter().position(|(k, _, _)| *k == n) else { return Ok(cur.to_owned()) };
    let before = other.blocks[..idx].iter().rev().find_map(|(m, _, _)| pos_in(*m));
    let after = other.blocks[idx + 1..].iter().find_map(|(m, _, _)| pos_in(*m));
    let line = if let Some(p) = before {
        let mut at = p + 1;
        while at < here.blocks.len()
            && is_new(here.blocks[at].0)
            && here.blocks[at].0 > n
            && here.blocks[at - 1].2.end == here.blocks[at].2.start
        {
            at += 1;
        }
        here.blocks[at - 1].2.end
    } else if let Some(f) = after {
        let mut at = f;
        while at > 0
            && is_new(here.blocks[at - 1].0)
            && here.blocks[at - 1].0 < n
            && here.blocks[at - 1].2.end == here.blocks[at].2.start
        {
            at -= 1;
        }
        here.blocks[at].2.start
    } else {
        let scoped = scope::scope_todo(path, cur.as_bytes(), other.file.to_text().as_bytes(), n)?;
        return String::from_utf8(scoped).map_err(|_| Error::format(path, None, "the merge is not UTF-8"));
    };
    let (_, block, span) = &other.blocks[idx];
    let mut lines: Vec<String> = Vec::new();
    if line > 0 && !here.file.doc.line(line - 1).trim().is_empty() {
        lines.push(String::new());
    }
    lines.extend(block.clone().map(|i| other.file.doc.line(i).to_owned()));
    if span.end > block.end {
        lines.push(other.file.doc.line(block.end).to_owned());
    }
    if line < here.file.doc.len() {
        lines.push(String::new());
    }
    let mut file = here.file;
    file.doc.insert_lines(line, &lines);
    Ok(file.to_text())
}

/// A heading line's title (after `N.`), for telling two tasks under one number apart.
fn title(block: &[&str]) -> String {
    block.first().and_then(|h| h.split_once('.')).map(|(_, t)| t.trim().to_owned()).unwrap_or_default()
}

/// The frontmatter merged key by key; `None` when no side has one.
fn merge_front(o: &Side, a: &Side, b: &Side, conflicts: &mut Vec<Conflict>) -> Option<Vec<(String, Vec<String>)>> {
    let (af, bf) = (a.front.as_ref()?, b.front.as_ref()?);
    let empty = Vec::new();
    let of = o.front.as_ref().unwrap_or(&empty);
    let keys = |f: &[(String, Vec<String>)]| f.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    let get = |f: &[(String, Vec<String>)], k: &str| f.iter().find(|(m, _)| m == k).map(|(_, v)| v.clone());
    let mut out = Vec::new();
    for key in key_order(&keys(of), &keys(af), &keys(bf)) {
        let (ov, av, bv) = (get(of, &key), get(af, &key), get(bf, &key));
        let merged = if av == bv || bv == ov {
            av
        } else if av == ov {
            bv
        } else if key == "next_project_number" || key == "task_counts" {
            // The number is set to the larger below; the counts are derived (`check --fix`).
            av
        } else {
            conflicts.push(Conflict::new(
                None,
                &format!("TODO.md frontmatter `{key}`"),
                "changed on both sides".into(),
            ));
            av
        };
        if let Some(v) = merged {
            out.push((key, v));
        }
    }
    Some(out)
}

/// Splits a block into fields: `heading`, each `**Label**:` line (bullet or paragraph) with
/// the lines that continue it, text before any label, and each blank line; `None` when a key
/// repeats (such a block is merged only as a whole).
fn fields(block: &[String]) -> Option<Vec<(String, Vec<String>)>> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut blanks = 0;
    for (i, line) in block.iter().enumerate() {
        let key = if i == 0 {
            Some("heading".to_owned())
        } else if line.trim().is_empty() {
            blanks += 1;
            Some(format!("(blank {blanks})"))
        } else {
            label(line).map(|l| format!("**{l}**"))
        };
        match key {
            Some(k) => {
                if out.iter().any(|(m, _)| *m == k) {
                    return None;
                }
                out.push((k, vec![line.clone()]));
            }
            None => match out.last_mut() {
                // A continuation line (a wrapped paragraph, an indented sub-bullet).
                Some((k, chunk)) if !k.starts_with("(blank") => chunk.push(line.clone()),
                _ => {
                    let k = format!("(text {i})");
                    out.push((k, vec![line.clone()]));
                }
            },
        }
    }
    Some(out)
}

/// The label of a `- **Label**: ...`, ` **Label**: ...` or `**Label**: ...` line.
fn label(line: &str) -> Option<&str> {
    let rest = line.trim_start();
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let rest = rest.strip_prefix("**")?;
    let (label, after) = rest.split_once("**")?;
    (after.starts_with(':') && !label.is_empty()).then_some(label)
}

/// A block both sides changed, merged field by field.
fn merge_block(n: u32, o: Option<&[String]>, a: &[String], b: &[String], conflicts: &mut Vec<Conflict>) -> Vec<String> {
    let (Some(af), Some(bf)) = (fields(a), fields(b)) else {
        conflicts.push(Conflict::new(Some(n), "TODO.md block", "changed on both sides (a label repeats in it)".into()));
        return a.to_vec();
    };
    let of = match o.map(fields) {
        Some(Some(f)) => f,
        Some(None) => {
            conflicts.push(Conflict::new(
                Some(n),
                "TODO.md block",
                "changed on both sides (a label repeats in it)".into(),
            ));
            return a.to_vec();
        }
        None => Vec::new(),
    };
    let keys = |f: &[(String, Vec<String>)]| f.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    let get = |f: &[(String, Vec<String>)], k: &str| f.iter().find(|(m, _)| m == k).map(|(_, v)| v.clone());
    let mut out = Vec::new();
    for key in key_order(&keys(&of), &keys(&af), &keys(&bf)) {
        let (ov, av, bv) = (get(&of, &key), get(&af, &key), get(&bf, &key));
        let merged = if av == bv || bv == ov {
            av
        } else if av == ov {
            bv
        } else {
            let show = |v: &Option<Vec<String>>| {
                v.as_ref().map_or("(absent)".to_owned(), |l| format!("`{}`", l.join(" ").trim()))
            };
            conflicts.push(Conflict::new(
                Some(n),
                &format!("TODO.md {key}"),
                format!("changed on both sides: ours {}, theirs {} (base {})", show(&av), show(&bv), show(&ov)),
            ));
            av
        };
        out.extend(merged.unwrap_or_default());
    }
    out
}

/// `text` without task `n`'s block and its separator; when nothing follows it, without the
/// blank lines before it too (the file then ends with the previous block's `---`).
fn remove_block(path: &Path, text: &str, n: u32) -> Result<String> {
    let here = side(path, "merged", text.as_bytes())?;
    let Some((_, _, span)) = here.blocks.iter().find(|(m, _, _)| *m == n) else { return Ok(text.to_owned()) };
    let mut start = span.start;
    if span.end == here.file.doc.len() {
        while start > 0 && here.file.doc.line(start - 1).trim().is_empty() {
            start -= 1;
        }
    }
    let mut file = here.file.clone();
    for i in (start..span.end).rev() {
        file.doc.remove_line(i);
    }
    Ok(file.to_text())
}

/// `text` with task `n`'s block replaced by `lines`.
fn replace_block(path: &Path, text: &str, n: u32, lines: &[String]) -> Result<String> {
    let mut file = TodoFile::parse(path, text.as_bytes())?;
    let Some(block) = file.block(n)? else { return Ok(text.to_owned()) };
    for i in block.clone().rev() {
        file.doc.remove_line(i);
    }
    file.doc.insert_lines(block.start, lines);
    Ok(file.to_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "---\nnext_project_number: 3\ntask_counts:\n  active: 2\n---\n\n# TODO\n\n## Tasks\n\n### 2. Two\n- **Status**: [PLANNED]\n- **Language**: general\n\n**Description**: Second.\n\n---\n\n### 1. One\n- **Status**: [NOT STARTED]\n\n---\n";

    fn run(o: &str, a: &str, b: &str) -> (String, Vec<Conflict>) {
        let out = merge(Path::new("specs/TODO.md"), o.as_bytes(), a.as_bytes(), b.as_bytes()).expect("merge");
        (String::from_utf8(out.bytes).expect("utf8"), out.conflicts)
    }

    #[test]
    fn different_blocks_changed_merge() {
        let a = BASE.replace("[PLANNED]", "[IMPLEMENTING]");
        let b = BASE.replace("[NOT STARTED]", "[PLANNED]");
        let (text, conflicts) = run(BASE, &a, &b);
        assert!(conflicts.is_empty(), "{conflicts:?}");
        assert_eq!(text, BASE.replace("[PLANNED]", "[IMPLEMENTING]").replace("[NOT STARTED]", "[PLANNED]"));
    }

    #[test]
    fn different_fields_of_one_block_merge_and_the_same_field_conflicts() {
        let a = BASE.replace("[PLANNED]", "[IMPLEMENTING]");
        let b = BASE.replace("**Description**: Second.", "**Description**: Second, edited.");
        let (text, conflicts) = run(BASE, &a, &b);
        assert!(conflicts.is_empty(), "{conflicts:?}");
        assert!(text.contains("[IMPLEMENTING]") && text.contains("Second, edited."), "{text}");
        let c = BASE.replace("[PLANNED]", "[BLOCKED]");
        let (_, conflicts) = run(BASE, &a, &c);
        assert_eq!(conflicts.len(), 1);
        assert!(conflicts[0].to_string().contains("task 2") && conflicts[0].to_string().contains("Status"));
    }

    #[test]
    fn new_tasks_on_both_sides_are_both_kept_with_the_larger_number() {
        let add = |n: u32, t: &str| {
            BASE.replace("## Tasks\n\n", &format!("## Tasks\n\n### {n}. {t}\n- **Status**: [NOT STARTED]\n\n---\n\n"))
                .replace("next_project_number: 3", &format!("next_project_number: {}", n + 1))
        };
        let (text, conflicts) = run(BASE, &add(3, "Three"), &add(4, "Four"));
        assert!(conflicts.is_empty(), "{conflicts:?}");
        assert!(text.contains("### 3. Three") && text.contains("### 4. Four"), "{text}");
        assert!(text.contains("next_project_number: 5"));
        let (_, conflicts) = run(BASE, &add(3, "Three"), &add(3, "Other"));
        assert_eq!(conflicts.len(), 1);
        assert!(conflicts[0].to_string().contains("Three") && conflicts[0].to_string().contains("Other"));
    }

    #[test]
    fn a_deleted_block_goes_with_its_separator() {
        let b = BASE.replace("### 1. One\n- **Status**: [NOT STARTED]\n\n---\n", "");
        let (text, conflicts) = run(BASE, BASE, &b);
        assert!(conflicts.is_empty());
        // The last block gone, the file ends with the previous block's separator.
        assert_eq!(text, format!("{}\n", b.trim_end_matches('\n')));
    }
}
