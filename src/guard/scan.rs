//! A streaming byte scan of `specs/state.json` for the tasks whose status is `implementing`,
//! for the stop hook: it must answer in a few milliseconds on a 16 MB ledger, where a JSON parse
//! (or a stat per task directory) costs ten times that. It reads 64 KiB at a time, never holds
//! the whole file, and never fails on odd input: at worst it finds too much or too little, and
//! the hook then falls back to looking at every marker.

use std::io::Read;

use memchr::memmem::Finder;

const CHUNK: usize = 64 * 1024;
/// Bytes kept before the unprocessed part so a `"status" :` before `"implementing"` is still visible.
const LOOKBEHIND: usize = 64;
/// The longest value read after a key (a slug or a number); longer ones are ignored.
const MAX_VALUE: usize = 512;

const KEY_PREFIX: &[u8] = b"\"project_n";
const NUMBER: &[u8] = b"\"project_number\"";
const NAME: &[u8] = b"\"project_name\"";
const IMPLEMENTING: &[u8] = b"\"implementing\"";
const LAST_UPDATED: &[u8] = b"\"last_updated\"";

/// An `active_projects` entry (or any object with a `project_number`) as seen by the scan.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    number: u32,
    slug: Option<String>,
    last_updated: Option<String>,
    implementing: bool,
}

/// An implementing task as the scan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Implementing {
    /// `project_number`.
    pub number: u32,
    /// The first plain `project_name` of the entry.
    pub slug: Option<String>,
    /// The first plain `last_updated` string of the entry.
    pub last_updated: Option<String>,
}

/// What a token needs to be understood.
enum Parsed<T> {
    Done(T, usize),
    NeedMore,
}

/// (number, slug) of every object whose `"status"` is `"implementing"`, in file order. An
/// object is everything from one `"project_number"` key to the next; its slug is the first
/// plain `"project_name"` string in it (`None` when absent or escaped).
///
/// # Errors
/// Read errors of `input`.
pub fn implementing_tasks(input: impl Read) -> std::io::Result<Vec<(u32, Option<String>)>> {
    Ok(implementing_entries(input)?.into_iter().map(|e| (e.number, e.slug)).collect())
}

/// [`implementing_tasks`] with each entry's `last_updated`.
///
/// # Errors
/// Read errors of `input`.
pub fn implementing_entries(mut input: impl Read) -> std::io::Result<Vec<Implementing>> {
    // Three passes per chunk: one for both `"project_n…"` keys, one for `"implementing"`, one
    // for `"last_updated"`.
    let keys = Finder::new(KEY_PREFIX);
    let value = Finder::new(IMPLEMENTING);
    let updated = Finder::new(LAST_UPDATED);
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 2 * MAX_VALUE);
    let mut chunk = vec![0u8; CHUNK];
    let mut from = 0usize;
    let mut current: Option<Entry> = None;
    let mut out = Vec::new();
    let mut eof = false;
    while !eof {
        let n = input.read(&mut chunk)?;
        eof = n == 0;
        buf.extend_from_slice(&chunk[..n]);
        // Every token starting at or after `from`, in file order.
        let mut tokens: Vec<(usize, usize)> = keys.find_iter(&buf[from..]).map(|p| (from + p, 0)).collect();
        tokens.extend(value.find_iter(&buf[from..]).map(|p| (from + p, 2)));
        tokens.extend(updated.find_iter(&buf[from..]).map(|p| (from + p, 3)));
        tokens.sort_unstable();
        let mut next = from;
        let mut stalled = false;
        for (pos, kind) in tokens {
            let kind = match kind {
                0 if buf[pos..].starts_with(NUMBER) => 0,
                0 if buf[pos..].starts_with(NAME) => 1,
                0 if buf.len() - pos < NUMBER.len() && !eof => {
                    stalled = true;
                    next = pos;
                    break;
                }
                0 => continue,
                other => other,
            };
            let after = pos + [NUMBER, NAME, IMPLEMENTING, LAST_UPDATED][kind].len();
            match kind {
                0 => match number_after(&buf, after, eof) {
                    Parsed::NeedMore => {
                        stalled = true;
                        next = pos;
                        break;
                    }
                    Parsed::Done(number, end) => {
                        flush(&mut current, &mut out);
                        current =
                            number.map(|number| Entry { number, slug: None, last_updated: None, implementing: false });
                        next = end;
                    }
                },
                1 | 3 => match string_after(&buf, after, eof) {
                    Parsed::NeedMore => {
                        stalled = true;
                        next = pos;
                        break;
                    }
                    Parsed::Done(text, end) => {
                        if let Some(e) = current.as_mut() {
                            let field = if kind == 1 { &mut e.slug } else { &mut e.last_updated };
                            if field.is_none() {
                                *field = text;
                            }
                        }
                        next = end;
                    }
                },
                _ => {
                    if is_status_value(&buf[..pos]) {
                        if let Some(e) = current.as_mut() {
                            e.implementing = true;
                        }
                    }
                    next = after;
                }
            }
        }
        if !stalled {
            // A needle may straddle the chunk end: look at the last bytes again next time.
            next = next.max(buf.len().saturating_sub(NUMBER.len() - 1));
        }
        // Drop what is processed, keeping a little look-behind.
        let keep_from = next.saturating_sub(LOOKBEHIND);
        buf.drain(..keep_from);
        from = next - keep_from;
    }
    flush(&mut current, &mut out);
    Ok(out)
}

fn flush(current: &mut Option<Entry>, out: &mut Vec<Implementing>) {
    if let Some(e) = current.take() {
        if e.implementing && !out.iter().any(|i| i.number == e.number) {
            out.push(Implementing { number: e.number, slug: e.slug, last_updated: e.last_updated });
        }
    }
}

/// Skips JSON whitespace, a `:` and whitespace from `at`; `None` when the bytes do not fit.
fn after_colon(buf: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    while i < buf.len() && buf[i].is_ascii_whitespace() {
        i += 1;
    }
    if i < buf.len() && buf[i] != b':' {
        return None;
    }
    i += 1;
    while i < buf.len() && buf[i].is_ascii_whitespace() {
        i += 1;
    }
    Some(i)
}

/// The integer after `"project_number"` (`None` inside `Done` when it is not one).
fn number_after(buf: &[u8], at: usize, eof: bool) -> Parsed<Option<u32>> {
    let Some(start) = after_colon(buf, at) else { return Parsed::Done(None, at) };
    let digits = buf[start.min(buf.len())..].iter().take_while(|b| b.is_ascii_digit()).count();
    let end = start + digits;
    if end >= buf.len() && !eof && end - at < MAX_VALUE {
        return Parsed::NeedMore;
    }
    let number = std::str::from_utf8(&buf[start.min(buf.len())..end.min(buf.len())]).ok().and_then(|s| s.parse().ok());
    Parsed::Done(number, end.min(buf.len()))
}

/// The plain string after `"project_name"` or `"last_updated"` (`None` inside `Done` when absent, escaped or long).
fn string_after(buf: &[u8], at: usize, eof: bool) -> Parsed<Option<String>> {
    let Some(start) = after_colon(buf, at) else { return Parsed::Done(None, at) };
    if start >= buf.len() {
        return if eof { Parsed::Done(None, buf.len()) } else { Parsed::NeedMore };
    }
    if buf[start] != b'"' {
        return Parsed::Done(None, start);
    }
    match buf[start + 1..].iter().take(MAX_VALUE).position(|b| *b == b'"') {
        Some(len) => {
            let raw = &buf[start + 1..start + 1 + len];
            let slug = (!raw.contains(&b'\\')).then(|| std::str::from_utf8(raw).ok().map(str::to_owned)).flatten();
            Parsed::Done(slug, start + 2 + len)
        }
        None if !eof && buf.len() - start <= MAX_VALUE => Parsed::NeedMore,
        None => Parsed::Done(None, start + 1),
    }
}

/// Whether the bytes before a `"implementing"` end with a `"status"` key and its colon.
fn is_status_value(before: &[u8]) -> bool {
    let trimmed = trim_end(before);
    let Some(trimmed) = trimmed.strip_suffix(b":") else { return false };
    let trimmed = trim_end(trimmed);
    trimmed.ends_with(b"\"status\"") && !trimmed[..trimmed.len() - 8].ends_with(b"\\")
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b.iter().rev().take_while(|c| c.is_ascii_whitespace()).count();
    &b[..b.len() - n]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &[u8] = br#"{"active_projects": [
    {"project_number": 12, "project_nickname": "a", "project_name": "alpha", "status": "implementing", "description": "says \"status\": \"implementing\""},
    {"project_number": 7, "status":"implementing", "project_name": "beta_b"},
    {"project_number": 5, "project_name": "gamma", "status": "planned", "notes": "implementing"},
    {"project_number": 4, "project_name": "esc\"aped", "status" :
       "implementing"},
    {"project_number": 3, "status": "implementing"}
  ], "repository_health": {"status": "good"}}"#;

    fn want() -> Vec<(u32, Option<String>)> {
        vec![(12, Some("alpha".into())), (7, Some("beta_b".into())), (4, None), (3, None)]
    }

    /// A reader that hands out at most `step` bytes per call, to cut tokens at every boundary.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(self.0.len()).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn finds_implementing_entries_whatever_the_read_boundaries() {
        assert_eq!(implementing_tasks(DOC).expect("scan"), want());
        for step in [1, 2, 3, 5, 7, 13, 16, 17, 64] {
            assert_eq!(implementing_tasks(Trickle(DOC, step)).expect("scan"), want(), "step {step}");
        }
    }

    #[test]
    fn reads_each_entrys_first_last_updated_whatever_the_read_boundaries() {
        let doc: &[u8] = br#"{"active_projects": [
    {"project_number": 9, "status": "implementing", "notes": "last_updated", "last_updated": "2026-03-16T10:00:00Z", "x": {"last_updated": "inner"}},
    {"project_number": 8, "last_updated": "2026-01-02T00:00:00Z", "status": "planned"},
    {"project_number": 6, "last_updated" : "esc\"aped", "status": "implementing"},
    {"project_number": 2, "status": "implementing", "description": "\"last_updated\": \"no\""}
  ]}"#;
        let want = vec![
            Implementing { number: 9, slug: None, last_updated: Some("2026-03-16T10:00:00Z".into()) },
            Implementing { number: 6, slug: None, last_updated: None },
            Implementing { number: 2, slug: None, last_updated: None },
        ];
        assert_eq!(implementing_entries(doc).expect("scan"), want);
        for step in [1, 2, 3, 5, 7, 13, 14, 15, 16, 17, 64] {
            assert_eq!(implementing_entries(Trickle(doc, step)).expect("scan"), want, "step {step}");
        }
    }

    #[test]
    fn a_big_ledger_is_scanned_across_chunks() {
        let mut doc = String::from("{\"active_projects\": [\n");
        for i in (1..=3000u32).rev() {
            let status = if i % 997 == 0 { "implementing" } else { "planned" };
            doc.push_str(&format!(
                "    {{\n      \"project_number\": {i},\n      \"project_name\": \"task_{i}\",\n      \"status\": \"{status}\",\n      \"description\": \"{}\"\n    }},\n",
                "x".repeat((i % 300) as usize)
            ));
        }
        doc.push_str("  ]\n}\n");
        let found = implementing_tasks(doc.as_bytes()).expect("scan");
        assert_eq!(
            found,
            [(2991, Some("task_2991".into())), (1994, Some("task_1994".into())), (997, Some("task_997".into()))]
        );
    }

    #[test]
    fn garbage_yields_nothing_and_no_panic() {
        for doc in [
            &b""[..],
            b"\"project_number\"",
            b"\"project_number\": ",
            b"\"implementing\"",
            b"\"project_name\": \"",
            b"{{{{",
        ] {
            assert_eq!(implementing_tasks(doc).expect("scan"), []);
        }
    }
}
