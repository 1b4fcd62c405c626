//! A text file as a list of lines that keep their own terminators, so a line edit changes
//! exactly that line's bytes: CRLF files stay CRLF and a missing final newline stays missing.
//! The text is kept as read, with one small record per line pointing into it; only edited
//! lines own their bytes, so a TODO.md of 8 MB costs one vector, not one string per line.

use std::path::Path;

use crate::error::{Error, Result};

/// One line, with its terminator: a range of the original text, or an edited line.
#[derive(Debug, Clone)]
enum Line {
    Orig(usize, usize),
    Owned(Box<str>),
}

/// A line-addressable text document.
#[derive(Debug, Clone)]
pub struct TextDoc {
    text: String,
    lines: Vec<Line>,
    eol: &'static str,
}

impl PartialEq for TextDoc {
    fn eq(&self, other: &TextDoc) -> bool {
        self.lines.len() == other.lines.len() && (0..self.lines.len()).all(|i| self.full(i) == other.full(i))
    }
}

impl Eq for TextDoc {}

impl TextDoc {
    /// Splits UTF-8 bytes into lines.
    ///
    /// # Errors
    /// `NotUtf8` naming the line of the first invalid byte.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<TextDoc> {
        TextDoc::parse_owned(path, bytes.to_vec())
    }

    /// Like [`TextDoc::parse`], keeping `bytes` as the text without a copy.
    ///
    /// # Errors
    /// `NotUtf8` naming the line of the first invalid byte.
    pub fn parse_owned(path: &Path, bytes: Vec<u8>) -> Result<TextDoc> {
        let text = String::from_utf8(bytes).map_err(|e| {
            let bytes = e.as_bytes();
            let line = bytes[..e.utf8_error().valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
            Error::NotUtf8 { path: path.to_path_buf(), line }
        })?;
        Ok(TextDoc::from_string(text))
    }

    /// Splits a string into lines.
    pub fn from_text(text: &str) -> TextDoc {
        TextDoc::from_string(text.to_owned())
    }

    /// The text as read (before any edit).
    pub fn original(&self) -> &str {
        &self.text
    }

    /// The text as read, consumed.
    pub fn into_original(self) -> String {
        self.text
    }

    /// Splits a string into lines, keeping it.
    pub fn from_string(text: String) -> TextDoc {
        let mut lines = Vec::with_capacity(text.len() / 32 + 1);
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', text.as_bytes()) {
            lines.push(Line::Orig(start, end + 1));
            start = end + 1;
        }
        if start < text.len() {
            lines.push(Line::Orig(start, text.len()));
        }
        let first = text.find('\n').map_or(text.len(), |e| e + 1);
        let eol = if text[..first].ends_with("\r\n") { "\r\n" } else { "\n" };
        TextDoc { text, lines, eol }
    }

    /// Line `i` with its terminator.
    fn full(&self, i: usize) -> &str {
        match &self.lines[i] {
            Line::Orig(s, e) => &self.text[*s..*e],
            Line::Owned(l) => l,
        }
    }

    /// The byte offset of line `i` (`len()` gives the end) in the text as read, when no line
    /// before it was edited, inserted or removed.
    pub fn offset(&self, i: usize) -> Option<usize> {
        let pristine = |l: &Line| matches!(l, Line::Orig(..));
        if !self.lines[..i.min(self.lines.len())].iter().all(pristine) {
            return None;
        }
        match self.lines.get(i) {
            Some(Line::Orig(s, _)) => Some(*s),
            Some(Line::Owned(_)) => None,
            None => Some(match self.lines.last() {
                Some(Line::Orig(_, e)) => *e,
                Some(Line::Owned(_)) => return None,
                None => 0,
            }),
        }
    }

    /// The number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether the document is empty.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Line `i` without its terminator.
    pub fn line(&self, i: usize) -> &str {
        let l = self.full(i);
        l.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(l)
    }

    /// All lines without terminators.
    pub fn lines(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.lines.len()).map(|i| self.line(i))
    }

    /// Replaces the content of line `i`, keeping its terminator.
    pub fn set_line(&mut self, i: usize, content: &str) {
        let term = &self.full(i)[self.line(i).len()..];
        self.lines[i] = Line::Owned(format!("{content}{term}").into_boxed_str());
    }

    /// Inserts lines before line `at` (`at == len()` appends), using the file's line ending.
    pub fn insert_lines(&mut self, at: usize, contents: &[String]) {
        if contents.is_empty() {
            return;
        }
        if at == self.lines.len() {
            if let Some(i) = self.lines.len().checked_sub(1) {
                let last = self.full(i);
                if !last.ends_with('\n') {
                    // A last line ending in a bare CR would lose it to a CRLF terminator.
                    let term = if last.ends_with('\r') { "\r\n" } else { self.eol };
                    self.lines[i] = Line::Owned(format!("{last}{term}").into_boxed_str());
                }
            }
        }
        let new = contents.iter().map(|c| Line::Owned(format!("{c}{}", self.eol).into_boxed_str()));
        self.lines.splice(at..at, new);
    }

    /// Removes line `i`.
    pub fn remove_line(&mut self, i: usize) {
        self.lines.remove(i);
    }

    /// The whole text.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 256);
        for i in 0..self.lines.len() {
            out.push_str(self.full(i));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_and_missing_final_newline_survive_edits() {
        let mut d = TextDoc::from_text("a\r\nb\r\nc");
        d.set_line(1, "B");
        d.insert_lines(3, &["d".into()]);
        assert_eq!(d.to_text(), "a\r\nB\r\nc\r\nd\r\n");
        let mut d = TextDoc::from_text("x\ny");
        d.set_line(1, "Y");
        assert_eq!(d.to_text(), "x\nY");
    }

    /// Found by `cargo fuzz run todo_edit`: appending after a last line that ends in a bare CR
    /// and has no newline turned that CR into half of a CRLF, changing the line.
    #[test]
    fn appending_after_a_bare_cr_keeps_the_last_line() {
        let mut d = TextDoc::from_text("a\nb\r");
        d.insert_lines(2, &["c".into()]);
        assert_eq!(d.lines().collect::<Vec<_>>(), ["a", "b\r", "c"]);
        assert_eq!(d.to_text(), "a\nb\r\r\nc\n");
    }

    #[test]
    fn offsets_hold_until_an_edit() {
        let mut d = TextDoc::from_text("ab\ncd\r\nef");
        assert_eq!((0..=3).map(|i| d.offset(i)).collect::<Vec<_>>(), [Some(0), Some(3), Some(7), Some(9)]);
        d.set_line(1, "CD");
        assert_eq!((d.offset(1), d.offset(2)), (None, None));
        assert_eq!(d.offset(0), Some(0));
        assert_eq!(d, TextDoc::from_text("ab\nCD\r\nef"));
        assert_eq!(TextDoc::from_text("").offset(0), Some(0));
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = TextDoc::parse(Path::new("TODO.md"), b"ok\nok\nbad \xff\n").expect_err("bad");
        assert_eq!(err.to_string(), "TODO.md:3: not valid UTF-8");
    }
}
