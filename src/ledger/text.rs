//! A text file as a list of lines that keep their own terminators, so a line edit changes
//! exactly that line's bytes: CRLF files stay CRLF and a missing final newline stays missing.

use std::path::Path;

use crate::error::{Error, Result};

/// A line-addressable text document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextDoc {
    lines: Vec<String>,
    eol: &'static str,
}

impl TextDoc {
    /// Splits UTF-8 bytes into lines.
    ///
    /// # Errors
    /// `NotUtf8` naming the line of the first invalid byte.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<TextDoc> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
            Error::NotUtf8 { path: path.to_path_buf(), line }
        })?;
        Ok(TextDoc::from_text(text))
    }

    /// Splits a string into lines.
    pub fn from_text(text: &str) -> TextDoc {
        let lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
        let eol = if lines.first().is_some_and(|l| l.ends_with("\r\n")) { "\r\n" } else { "\n" };
        TextDoc { lines, eol }
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
        let l = &self.lines[i];
        l.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(l)
    }

    /// All lines without terminators.
    pub fn lines(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.lines.len()).map(|i| self.line(i))
    }

    /// Replaces the content of line `i`, keeping its terminator.
    pub fn set_line(&mut self, i: usize, content: &str) {
        let old = &self.lines[i];
        let term = &old[self.line(i).len()..];
        self.lines[i] = format!("{content}{term}");
    }

    /// Inserts lines before line `at` (`at == len()` appends), using the file's line ending.
    pub fn insert_lines(&mut self, at: usize, contents: &[String]) {
        if contents.is_empty() {
            return;
        }
        if at == self.lines.len() {
            if let Some(last) = self.lines.last_mut() {
                if !last.ends_with('\n') {
                    // A last line ending in a bare CR would lose it to a CRLF terminator.
                    last.push_str(if last.ends_with('\r') { "\r\n" } else { self.eol });
                }
            }
        }
        let new: Vec<String> = contents.iter().map(|c| format!("{c}{}", self.eol)).collect();
        self.lines.splice(at..at, new);
    }

    /// Removes line `i`.
    pub fn remove_line(&mut self, i: usize) {
        self.lines.remove(i);
    }

    /// The whole text.
    pub fn to_text(&self) -> String {
        self.lines.concat()
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
    fn invalid_utf8_names_the_line() {
        let err = TextDoc::parse(Path::new("TODO.md"), b"ok\nok\nbad \xff\n").expect_err("bad");
        assert_eq!(err.to_string(), "TODO.md:3: not valid UTF-8");
    }
}
