//! `specs/TODO.md` (reference §3): the human view. Every edit is a line edit inside one task's
//! block (from its `### N. ` heading to the next heading or `---` line) or on one frontmatter
//! line; nothing else in the file is touched, and no YAML is re-serialised.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex_bites::Regex;

use super::status::Status;
use super::text::TextDoc;
use crate::error::{Error, Result};

static HEADING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^### (?:[^0-9\s]+ )?([0-9]+)\.(?:\s|$)").expect("valid regex"));
static STATUS_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\s*-? ?\*\*Status\*\*:[ \t]*)\[([^\]]*)\](.*)$").expect("valid regex"));
static BULLET: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*- \*\*([^*]+)\*\*:").expect("valid regex"));
static NEXT_NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(next_project_number:\s*)([0-9]+)(.*)$").expect("valid regex"));

/// The task number of a `### N. Title` heading line (also `### ✓ N. Title`), as [`HEADING`]
/// matches it, without running the regular expression on every heading of a large file.
pub(crate) fn heading_number(line: &str) -> Option<u32> {
    let rest = line.strip_prefix("### ")?;
    let rest = match rest.chars().next()? {
        c if c.is_ascii_digit() => rest,
        _ => {
            // One word of neither digits nor spaces, then one space.
            let word = rest.find(|c: char| c.is_ascii_digit() || is_space(c)).unwrap_or(rest.len());
            if word == 0 {
                return None;
            }
            rest[word..].strip_prefix(' ')?
        }
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let after = rest[digits..].strip_prefix('.')?;
    if digits == 0 || !(after.is_empty() || after.starts_with(is_space)) {
        return None;
    }
    rest[..digits].parse().ok()
}

/// Whether `line` ends the task block above it: a `---` separator or any heading.
pub(crate) fn ends_block(line: &str) -> bool {
    line.trim_end() == "---" || line.starts_with("### ") || line.starts_with("## ") || line.starts_with("# ")
}

/// `\s` of the regular expressions (ASCII only, vertical tab included).
fn is_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// A parsed TODO.md.
#[derive(Debug, Clone)]
pub struct TodoFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The lines.
    pub doc: TextDoc,
}

/// A task's `**Status**: [..]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// 0-based line index.
    pub line: usize,
    /// The bracket content, e.g. `IMPLEMENTING`.
    pub marker: String,
}

impl TodoFile {
    /// Parses TODO.md bytes.
    ///
    /// # Errors
    /// `NotUtf8`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<TodoFile> {
        Ok(TodoFile { path: path.to_path_buf(), doc: TextDoc::parse(path, bytes)? })
    }

    /// Like [`TodoFile::parse`], keeping `bytes` without a copy (see [`TodoFile::original`]).
    ///
    /// # Errors
    /// `NotUtf8`.
    pub fn parse_owned(path: &Path, bytes: Vec<u8>) -> Result<TodoFile> {
        Ok(TodoFile { path: path.to_path_buf(), doc: TextDoc::parse_owned(path, bytes)? })
    }

    /// The text as it was read, before any edit.
    pub fn original(&self) -> &str {
        self.doc.original()
    }

    /// Reads and parses TODO.md.
    ///
    /// # Errors
    /// I/O errors and `NotUtf8`.
    pub fn load(path: &Path) -> Result<TodoFile> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        TodoFile::parse(path, &bytes)
    }

    /// The text.
    pub fn to_text(&self) -> String {
        self.doc.to_text()
    }

    /// The frontmatter's line range (between the opening and closing `---`), when the file has one.
    pub fn frontmatter(&self) -> Option<Range<usize>> {
        if self.doc.is_empty() || self.doc.line(0).trim_end() != "---" {
            return None;
        }
        (1..self.doc.len()).find(|&i| self.doc.line(i).trim_end() == "---").map(|end| 1..end)
    }

    /// The frontmatter `next_project_number` and its line.
    pub fn next_project_number(&self) -> Option<(usize, u64)> {
        let range = self.frontmatter()?;
        range.into_iter().find_map(|i| {
            let caps = NEXT_NUMBER.captures(self.doc.line(i))?;
            Some((i, caps.get(2)?.as_str().parse().ok()?))
        })
    }

    /// Sets the frontmatter `next_project_number` by editing its one line; returns false when the
    /// file has no such line (nothing changed).
    pub fn set_next_project_number(&mut self, n: u64) -> bool {
        let Some((i, _)) = self.next_project_number() else { return false };
        let line = self.doc.line(i).to_owned();
        let Some(caps) = NEXT_NUMBER.captures(&line) else { return false };
        let new = format!("{}{n}{}", &caps[1], &caps[3]);
        self.doc.set_line(i, &new);
        true
    }

    /// Every task heading: (0-based line, task number), in file order.
    ///
    /// Headings inside an ordering section (`## Task Order`, `## Recommended Order`: any `## `
    /// section whose title has the word "order") are numbered list items such as
    /// `### 2. Code Cleanup`, not task entries, and are skipped.
    pub fn headings(&self) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        let body_start = self.frontmatter().map(|r| r.end + 1).unwrap_or(0);
        let mut in_order_section = false;
        for i in body_start..self.doc.len() {
            let line = self.doc.line(i);
            if let Some(title) = line.strip_prefix("## ") {
                in_order_section = title.split(|c: char| !c.is_alphanumeric()).any(|w| w.eq_ignore_ascii_case("order"));
                continue;
            }
            if in_order_section || !line.starts_with("### ") {
                continue;
            }
            if let Some(n) = heading_number(line) {
                out.push((i, n));
            }
        }
        out
    }

    /// The title of task `n`'s first heading (`### 980. Remove DN-based proofs` gives
    /// `Remove DN-based proofs`), when it has one that is not empty. Lenient: a duplicated
    /// heading gives the first one's title, because a title is only shown, never edited.
    pub fn title(&self, n: u32) -> Option<String> {
        let (line, _) = self.headings().into_iter().find(|(_, m)| *m == n)?;
        let text = self.doc.line(line);
        let caps = HEADING.captures(text)?;
        let title = text[caps.get(0)?.end()..].trim();
        (!title.is_empty()).then(|| title.to_owned())
    }

    /// The line range of task `n`'s block, or `None` when TODO.md has no entry for it.
    ///
    /// # Errors
    /// `DuplicateTask` when the heading appears more than once.
    pub fn block(&self, n: u32) -> Result<Option<Range<usize>>> {
        let hits: Vec<usize> = self.headings().into_iter().filter(|(_, m)| *m == n).map(|(i, _)| i).collect();
        match hits.len() {
            0 => Ok(None),
            1 => Ok(Some(hits[0]..self.block_end(hits[0]))),
            count => Err(Error::DuplicateTask {
                task: n,
                count,
                lines: hits.iter().map(|i| (i + 1).to_string()).collect::<Vec<_>>().join(", "),
                path: self.path.clone(),
            }),
        }
    }

    /// The block of the entry whose heading is on 0-based line `heading` (a line from
    /// [`TodoFile::headings`]): the heading up to the next `---`, heading or end. A caller that
    /// visits every task uses this with one `headings()` scan, where [`TodoFile::block`] would
    /// rescan the whole file per task.
    pub fn block_at(&self, heading: usize) -> Range<usize> {
        heading..self.block_end(heading)
    }

    fn block_end(&self, heading: usize) -> usize {
        (heading + 1..self.doc.len()).find(|&i| ends_block(self.doc.line(i))).unwrap_or(self.doc.len())
    }

    /// Task `n`'s status line, when the task and the line exist.
    ///
    /// # Errors
    /// `DuplicateTask`.
    pub fn status(&self, n: u32) -> Result<Option<StatusLine>> {
        let Some(block) = self.block(n)? else { return Ok(None) };
        Ok(self.status_in(block))
    }

    /// The first status line inside `block` (from [`TodoFile::block`] or [`TodoFile::block_at`]).
    pub fn status_in(&self, block: Range<usize>) -> Option<StatusLine> {
        block.into_iter().find_map(|i| {
            // The regex needs the literal label; checking for it first skips the regex engine
            // on every other line.
            let line = self.doc.line(i);
            if !line.contains("**Status**:") {
                return None;
            }
            let caps = STATUS_LINE.captures(line)?;
            Some(StatusLine { line: i, marker: caps[2].to_owned() })
        })
    }

    /// Sets task `n`'s status marker, keeping the line's prefix and any text after the bracket.
    /// A block without a status line gets one right under its heading. Returns false when
    /// TODO.md has no entry for the task (nothing changed).
    ///
    /// # Errors
    /// `DuplicateTask`.
    pub fn set_status(&mut self, n: u32, status: &Status) -> Result<bool> {
        let Some(block) = self.block(n)? else { return Ok(false) };
        let marker = status.marker();
        let edited = self.status_in(block.clone()).and_then(|sl| {
            let caps = STATUS_LINE.captures(self.doc.line(sl.line))?;
            Some((sl.line, format!("{}[{marker}]{}", &caps[1], &caps[3])))
        });
        match edited {
            Some((i, new)) => self.doc.set_line(i, &new),
            None => self.doc.insert_lines(block.start + 1, &[format!("- **Status**: [{marker}]")]),
        }
        Ok(true)
    }

    /// The value of task `n`'s `- **Label**:` bullet, when present.
    ///
    /// # Errors
    /// `DuplicateTask`.
    pub fn bullet(&self, n: u32, label: &str) -> Result<Option<(usize, String)>> {
        let Some(block) = self.block(n)? else { return Ok(None) };
        Ok(self.bullet_lines(block, label).first().map(|&i| {
            let line = self.doc.line(i);
            let value = line.split_once("**:").map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
            (i, value)
        }))
    }

    fn bullet_lines(&self, block: Range<usize>, label: &str) -> Vec<usize> {
        block.into_iter().filter(|&i| BULLET.captures(self.doc.line(i)).is_some_and(|c| &c[1] == label)).collect()
    }

    /// Adds or replaces task `n`'s `- **Label**: value` bullet: the first such bullet is
    /// rewritten and any repeats removed; otherwise the bullet is added after the block's
    /// bullet list. Returns false when TODO.md has no entry for the task (nothing changed).
    ///
    /// # Errors
    /// `DuplicateTask`.
    pub fn set_bullet(&mut self, n: u32, label: &str, value: &str) -> Result<bool> {
        let Some(block) = self.block(n)? else { return Ok(false) };
        let existing = self.bullet_lines(block.clone(), label);
        match existing.split_first() {
            Some((&first, rest)) => {
                let indent: String = self.doc.line(first).chars().take_while(|c| c.is_whitespace()).collect();
                self.doc.set_line(first, &format!("{indent}- **{label}**: {value}"));
                for &i in rest.iter().rev() {
                    self.doc.remove_line(i);
                }
            }
            None => {
                let at = self.bullet_list_end(block);
                self.doc.insert_lines(at, &[format!("- **{label}**: {value}")]);
            }
        }
        Ok(true)
    }

    /// The line after the last line of the block's first bullet list (bullets and their
    /// indented continuation lines); right after the heading when the block has no bullets.
    fn bullet_list_end(&self, block: Range<usize>) -> usize {
        let mut end = block.start + 1;
        let mut in_list = false;
        for i in block.start + 1..block.end {
            let line = self.doc.line(i);
            let is_bullet = line.trim_start().starts_with("- ") || line.trim_start().starts_with("**Status**:");
            let is_continuation = in_list && !line.trim().is_empty() && line.starts_with([' ', '\t']);
            if is_bullet || is_continuation {
                in_list = true;
                end = i + 1;
            } else if in_list {
                break;
            }
        }
        end
    }

    /// Inserts a new task entry directly under `## Tasks` (appending that section when missing).
    pub fn insert_task(&mut self, entry: &[String]) {
        self.insert_task_with_priority(entry, None);
    }

    /// Inserts a new task entry directly under `## Tasks`; in an older TODO.md without that
    /// section but with priority sections, under `## {Priority} Priority` when `priority` names one;
    /// otherwise a `## Tasks` section is appended at the end of the file.
    pub fn insert_task_with_priority(&mut self, entry: &[String], priority: Option<&str>) {
        let find = |want: &str| self.doc.lines().position(|l| l.trim_end().eq_ignore_ascii_case(want));
        let section = find("## Tasks").or_else(|| priority.and_then(|p| find(&format!("## {} Priority", p.trim()))));
        let mut lines = vec![String::new()];
        lines.extend(entry.iter().cloned());
        lines.push(String::new());
        lines.push("---".into());
        match section {
            Some(i) => {
                // Keep the conventional blank line between an entry's `---` and the next heading.
                let next_is_heading = self.doc.len() > i + 1 && self.doc.line(i + 1).starts_with("### ");
                if next_is_heading {
                    lines.push(String::new());
                }
                self.doc.insert_lines(i + 1, &lines);
            }
            None => {
                let mut all = Vec::new();
                if !self.doc.is_empty() {
                    all.push(String::new());
                }
                all.push("## Tasks".into());
                all.extend(lines);
                let at = self.doc.len();
                self.doc.insert_lines(at, &all);
            }
        }
    }
}

/// The end of a task block's span in `lines` (the block ending at `block_end`): past its `---` separator line and the blank lines after it.
pub fn span_end(lines: &[&str], block_end: usize) -> usize {
    let mut end = block_end;
    if end < lines.len() && lines[end].trim_end() == "---" {
        end += 1;
        while end < lines.len() && lines[end].trim().is_empty() {
            end += 1;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heading_numbers_match_the_regular_expression() {
        let regex = |l: &str| HEADING.captures(l).and_then(|c| c[1].parse::<u32>().ok());
        for line in [
            "### 12. Title",
            "### 12.",
            "### 12.\tx",
            "### 12.x",
            "### 12 Title",
            "### ✓ 7. Done",
            "### ✓  7. Two spaces",
            "### a1 7. Digit in the word",
            "###  7. Leading space",
            "### 007. Zeros",
            "### 99999999999. Too big",
            "### . Nothing",
            "### Title",
            "#### 3. Deeper",
            "### \u{3000}3. Ideographic space",
            "### é 5. Accented word",
            "### 5.\u{a0}nbsp",
            "### 5.\u{b}vt",
            "### w\u{b}5. vt",
        ] {
            assert_eq!(heading_number(line), regex(line), "{line:?}");
        }
    }

    const TODO: &str = "---\nnext_project_number: 12 # keep\ntask_counts:\n  active: 2\n---\n\n# TODO\n\n## Tasks\n\n\
### 11. Eleven\n- **Effort**: 1h\n **Status**: [PLANNED] (waiting on 10)\n- **Language**: meta\n- **Research**:\n  - [r.md](specs/11_eleven/reports/r.md)\n\n**Description**: x\n\n---\n\n\
### 10. Ten\n- **Status**: [IMPLEMENTING]\n- **Summary**: [old.md](specs/10_ten/summaries/old.md)\n\n**Summary**: a paragraph\n\n---\n";

    fn todo() -> TodoFile {
        TodoFile::parse(Path::new("TODO.md"), TODO.as_bytes()).expect("parse")
    }

    fn changed_lines(a: &str, b: &str) -> Vec<(String, String)> {
        let (a, b): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
        assert_eq!(a.len(), b.len(), "line count changed");
        a.iter().zip(&b).filter(|(x, y)| x != y).map(|(x, y)| (x.to_string(), y.to_string())).collect()
    }

    #[test]
    fn status_edit_keeps_prefix_and_trailing_text() {
        let mut t = todo();
        assert_eq!(t.status(11).expect("ok").expect("line").marker, "PLANNED");
        t.set_status(11, &Status::Implementing).expect("set");
        assert_eq!(
            changed_lines(TODO, &t.to_text()),
            [(" **Status**: [PLANNED] (waiting on 10)".into(), " **Status**: [IMPLEMENTING] (waiting on 10)".into())]
        );
        assert!(!t.set_status(99, &Status::Planned).expect("missing is not an error"));
    }

    #[test]
    fn summary_bullet_replaced_not_duplicated_and_added_after_list() {
        let mut t = todo();
        t.set_bullet(10, "Summary", "[new.md](specs/10_ten/summaries/new.md)").expect("set");
        let text = t.to_text();
        assert_eq!(text.matches("- **Summary**:").count(), 1);
        assert!(text.contains("**Summary**: a paragraph"), "paragraph untouched");
        let mut t = todo();
        t.set_bullet(11, "Summary", "[s.md](p)").expect("set");
        assert!(t
            .to_text()
            .contains("  - [r.md](specs/11_eleven/reports/r.md)\n- **Summary**: [s.md](p)\n\n**Description**"));
    }

    #[test]
    fn frontmatter_number_is_a_one_line_edit() {
        let mut t = todo();
        assert_eq!(t.next_project_number(), Some((1, 12)));
        assert!(t.set_next_project_number(13));
        assert_eq!(
            changed_lines(TODO, &t.to_text()),
            [("next_project_number: 12 # keep".into(), "next_project_number: 13 # keep".into())]
        );
    }

    #[test]
    fn a_status_line_with_extra_spaces_is_found_not_duplicated() {
        let text = TODO.replace("- **Status**: [IMPLEMENTING]", "- **Status**:  [IMPLEMENTING]");
        let mut t = TodoFile::parse(Path::new("TODO.md"), text.as_bytes()).expect("parse");
        t.set_status(10, &Status::Completed).expect("set");
        assert_eq!(
            changed_lines(&text, &t.to_text()),
            [("- **Status**:  [IMPLEMENTING]".into(), "- **Status**:  [COMPLETED]".into())]
        );
    }

    #[test]
    fn titles_come_from_headings() {
        let text = TODO.replace("### 10. Ten", "### ✅ 10.");
        let t = TodoFile::parse(Path::new("TODO.md"), text.as_bytes()).expect("parse");
        assert_eq!(t.title(11).as_deref(), Some("Eleven"));
        assert_eq!(t.title(10), None, "an empty title");
        assert_eq!(t.title(9), None);
    }

    #[test]
    fn duplicate_headings_are_refused() {
        let dup = TODO.replace("### 10. Ten", "### 11. Ten");
        let t = TodoFile::parse(Path::new("TODO.md"), dup.as_bytes()).expect("parse");
        assert!(matches!(t.block(11), Err(Error::DuplicateTask { count: 2, .. })));
    }

    #[test]
    fn ordering_sections_hold_no_task_entries() {
        let text = TODO.replace(
            "## Tasks\n",
            "## Recommended Order\n\n### 10. Critical path\n\n1. **10** [IMPLEMENTING]\n\n## Tasks\n",
        );
        let mut t = TodoFile::parse(Path::new("TODO.md"), text.as_bytes()).expect("parse");
        assert_eq!(t.headings().iter().map(|(_, n)| *n).collect::<Vec<_>>(), [11, 10]);
        t.set_status(10, &Status::Completed).expect("not a duplicate");
        let new = t.to_text();
        assert!(new.contains("### 10. Critical path\n\n1. **10** [IMPLEMENTING]\n"), "ordering list untouched");
        assert!(new.contains("### 10. Ten\n- **Status**: [COMPLETED]\n"));
    }

    #[test]
    fn insert_task_in_an_older_file_uses_the_priority_section() {
        let old = "# TODO\n\n## High Priority\n\n### 5. Five\n- **Status**: [PLANNED]\n\n---\n\n## Low Priority\n";
        let mut t = TodoFile::parse(Path::new("TODO.md"), old.as_bytes()).expect("parse");
        t.insert_task_with_priority(&["### 6. Six".into()], Some("high"));
        assert!(
            t.to_text().starts_with("# TODO\n\n## High Priority\n\n### 6. Six\n\n---\n\n### 5. Five\n"),
            "{}",
            t.to_text()
        );
        let mut t = TodoFile::parse(Path::new("TODO.md"), old.as_bytes()).expect("parse");
        t.insert_task_with_priority(&["### 6. Six".into()], Some("urgent"));
        assert!(t.to_text().ends_with("## Low Priority\n\n## Tasks\n\n### 6. Six\n\n---\n"), "{}", t.to_text());
    }

    #[test]
    fn insert_task_goes_under_tasks_heading() {
        let mut t = todo();
        t.insert_task(&["### 12. Twelve".into(), "- **Status**: [NOT STARTED]".into()]);
        assert!(t
            .to_text()
            .contains("## Tasks\n\n### 12. Twelve\n- **Status**: [NOT STARTED]\n\n---\n\n### 11. Eleven"));
        assert_eq!(t.status(12).expect("ok").expect("line").marker, "NOT STARTED");
    }
}
