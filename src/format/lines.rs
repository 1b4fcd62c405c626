//! Markdown files as lines that keep their own terminators (`\n`, `\r\n`, none at the end), so
//! that an edit of one line leaves every other byte as it was; and the few line shapes the
//! markdown formats share (headings, code fences, indentation).

use std::path::Path;

use crate::error::{Error, Result};

/// A file's lines, each with its terminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lines {
    /// The lines, terminators included.
    pub raw: Vec<String>,
}

impl Lines {
    /// Splits `bytes` (UTF-8) into lines.
    ///
    /// # Errors
    /// `NotUtf8` naming the first bad line.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Lines> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
            Error::NotUtf8 { path: path.to_path_buf(), line }
        })?;
        // A BOM belongs to the first line's bytes and is kept; it is skipped when reading.
        Ok(Lines { raw: text.split_inclusive('\n').map(str::to_owned).collect() })
    }

    /// Line `i` without its terminator (and without a leading BOM on the first line).
    pub fn text(&self, i: usize) -> &str {
        let l = self.raw[i].trim_end_matches('\n').trim_end_matches('\r');
        if i == 0 {
            l.trim_start_matches('\u{FEFF}')
        } else {
            l
        }
    }

    /// How many lines.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether there is no line.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The terminator the file uses (of its first line that has one; `\n` by default).
    pub fn eol(&self) -> &'static str {
        match self.raw.iter().find(|l| l.ends_with('\n')) {
            Some(l) if l.ends_with("\r\n") => "\r\n",
            _ => "\n",
        }
    }

    /// Line `i` replaced by `text` (its terminator kept).
    pub fn replace(&mut self, i: usize, text: &str) {
        let old = &self.raw[i];
        let term = if old.ends_with("\r\n") {
            "\r\n"
        } else if old.ends_with('\n') {
            "\n"
        } else {
            ""
        };
        let bom = if i == 0 && old.starts_with('\u{FEFF}') { "\u{FEFF}" } else { "" };
        self.raw[i] = format!("{bom}{text}{term}");
    }

    /// Inserts `text` as a new line before line `i` (`i == len` appends), with the file's
    /// terminator; a last line without one gets one first.
    pub fn insert(&mut self, i: usize, text: &str) {
        let eol = self.eol();
        if i == self.raw.len() {
            if let Some(last) = self.raw.last_mut() {
                if !last.ends_with('\n') {
                    last.push_str(eol);
                }
            }
        }
        self.raw.insert(i, format!("{text}{eol}"));
    }

    /// The bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.raw.concat().into_bytes()
    }

    /// For each line, whether it is inside a fenced code block (the fence lines included).
    pub fn fenced(&self) -> Vec<bool> {
        let mut out = Vec::with_capacity(self.len());
        let mut open: Option<(char, usize)> = None;
        for i in 0..self.len() {
            let t = self.text(i).trim_start();
            let fence = ['`', '~'].into_iter().find_map(|c| {
                let n = t.chars().take_while(|x| *x == c).count();
                (n >= 3).then_some((c, n))
            });
            match (open, fence) {
                (None, Some(f)) => {
                    open = Some(f);
                    out.push(true);
                }
                (Some((c, n)), Some((c2, n2))) if c == c2 && n2 >= n && t.trim_start_matches(c).trim().is_empty() => {
                    open = None;
                    out.push(true);
                }
                (Some(_), _) => out.push(true),
                (None, None) => out.push(false),
            }
        }
        out
    }
}

/// The number of leading spaces (a tab counts as four).
pub fn indent(text: &str) -> usize {
    let mut n = 0;
    for c in text.chars() {
        match c {
            ' ' => n += 1,
            '\t' => n += 4,
            _ => break,
        }
    }
    n
}

/// A heading's level and text (`## Phase 1: Setup` gives `(2, "Phase 1: Setup")`).
pub fn heading(text: &str) -> Option<(usize, &str)> {
    let level = text.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &text[level..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    Some((level, rest.trim()))
}

/// Today's date (UTC) of an RFC 3339 time (`2026-03-16T21:11:23Z` gives `2026-03-16`).
pub fn date_of(at: &str) -> &str {
    at.get(..10).unwrap_or(at)
}

/// `text` on one line, cut at `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= max {
        return joined;
    }
    let cut: String = joined.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_keep_every_other_byte() {
        let src = "a\r\nb\nc";
        let mut l = Lines::parse(Path::new("x"), src.as_bytes()).expect("utf8");
        assert_eq!(l.len(), 3);
        l.replace(1, "B");
        assert_eq!(l.bytes(), b"a\r\nB\nc");
        l.insert(3, "d");
        assert_eq!(String::from_utf8(l.bytes()).expect("utf8"), "a\r\nB\nc\r\nd\r\n");
        assert!(Lines::parse(Path::new("x"), b"ok\n\xff\n").is_err());
    }

    #[test]
    fn fences_and_headings() {
        let l = Lines::parse(Path::new("x"), b"a\n```bash\n- [ ] 1. no\n```\nb\n").expect("utf8");
        assert_eq!(l.fenced(), vec![false, true, true, true, false]);
        assert_eq!(heading("## Phase 1: Setup"), Some((2, "Phase 1: Setup")));
        assert_eq!(heading("#hashtag"), None);
        assert_eq!(indent("   - x"), 3);
        assert_eq!(one_line("a\n b   c", 80), "a b c");
    }
}
