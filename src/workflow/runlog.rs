//! `xtask log`: a task's run log (`specs/N_slug/.postflight-agent.log`) split into runs, one
//! selected, and followed while its run is live. Reads only; writes nothing but to the writer
//! it is given.
//!
//! Each agent invocation starts with a header line ([`LogHeader`]) and ends with a line
//! giving its exit status and duration. A run is one `xtask implement` process: consecutive
//! invocations whose headers name the same session and the same `xtask` pid. Text before the
//! first header (a log written by an older version) belongs to no run.

use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::agent::process::LogHeader;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::ledger::plan;
use crate::run::{self as marker, Marker};
use crate::workflow::preflight::AGENT_LOG_FILE;

/// One run in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Its header's session id.
    pub session: String,
    /// The pid of the `xtask` process that ran it.
    pub pid: u32,
    /// The header of its first invocation.
    pub first: LogHeader,
    /// How many invocations it started.
    pub invocations: usize,
    /// Its bytes in the log: from its first header to the next run's (or the end).
    pub span: Range<usize>,
}

/// Which part of the log to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The whole file.
    All,
    /// One run: `k > 0` the k-th from the oldest (1 is the oldest), `k < 0` from the newest
    /// (-1 is the last).
    Run(i64),
}

/// Splits a log into its runs.
pub fn runs(text: &[u8]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive(|b| *b == b'\n') {
        let start = offset;
        offset += line.len();
        let Some(header) =
            std::str::from_utf8(line).ok().and_then(|l| LogHeader::parse(l.trim_end_matches(['\n', '\r'])))
        else {
            continue;
        };
        match runs.last_mut() {
            Some(run) if run.session == header.session && run.pid == header.run => run.invocations += 1,
            last => {
                if let Some(run) = last {
                    run.span.end = start;
                }
                runs.push(Run {
                    session: header.session.clone(),
                    pid: header.run,
                    first: header,
                    invocations: 1,
                    span: start..text.len(),
                });
            }
        }
    }
    if let Some(run) = runs.last_mut() {
        run.span.end = text.len();
    }
    runs
}

/// The bytes of `text` that `selection` names, and whether they reach the end of the log (so
/// that following it makes sense).
///
/// # Errors
/// A refusal naming how many runs there are when the run does not exist.
pub fn select(text: &[u8], selection: Selection) -> Result<(Range<usize>, bool)> {
    let k = match selection {
        Selection::All => return Ok((0..text.len(), true)),
        Selection::Run(k) => k,
    };
    let all = runs(text);
    let n = all.len() as i64;
    let index = if k > 0 { k - 1 } else { n + k };
    match usize::try_from(index).ok().and_then(|i| all.get(i).map(|r| (i, r))) {
        Some((i, run)) => Ok((run.span.clone(), i + 1 == all.len())),
        None => Err(Error::refused(
            format!("the log has {n} run(s); there is no run {k}"),
            Some("--run 1 is the oldest run, --run -1 (or `last`) the newest"),
        )),
    }
}

/// Task `n`'s log file and its marker path (which may not exist): through state.json's
/// `project_name` to `specs/N_slug/`.
///
/// # Errors
/// An unreadable state.json; the task is not in it; it has no task directory.
pub fn paths(ctx: &Context, n: u32) -> Result<(PathBuf, PathBuf)> {
    let info = ctx.ledger().state()?.task(n)?;
    let specs = ctx.repo.specs_dir();
    let dir = plan::task_dir(&specs, n, info.slug.as_deref()).ok_or_else(|| {
        Error::refused(
            format!(
                "task {n} has no directory under {} (it was never planned or implemented)",
                ctx.repo.relative(&specs)
            ),
            Some("`xtask implement N` writes the log"),
        )
    })?;
    Ok((dir.join(AGENT_LOG_FILE), dir.join(marker::MARKER_FILE)))
}

/// Whether the run that wrote the marker at `path` is live: the marker exists and its
/// `xtask` process still runs.
pub fn run_live(marker_path: &Path) -> bool {
    Marker::load(marker_path).is_ok_and(|m| m.run_alive())
}

/// How `show` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    /// Bytes written.
    pub bytes: u64,
    /// Whether the output followed a live run to its end.
    pub followed: bool,
}

/// Writes the selected part of the log at `log` to `out`; with `follow`, and when that part is
/// the end of the log, keeps writing what is appended (polling every `poll`) until the run's
/// marker is gone or its process is dead, then writes what is left.
///
/// # Errors
/// The log cannot be read (a missing log is refused unless it is followed while the run is
/// live); the run does not exist; `out` fails.
pub fn show(
    log: &Path,
    marker_path: &Path,
    selection: Selection,
    follow: bool,
    poll: Duration,
    out: &mut dyn Write,
) -> Result<Shown> {
    let live = || run_live(marker_path);
    let text = match std::fs::read(log) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && follow && live() => Vec::new(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::refused(
                format!("{} does not exist: the task has not been run", log.display()),
                Some("`xtask implement N` writes the log"),
            ))
        }
        Err(e) => return Err(Error::io("read", log, e)),
    };
    let (range, at_end) =
        if text.is_empty() && selection != Selection::All { (0..0, true) } else { select(&text, selection)? };
    let write = |out: &mut dyn Write, bytes: &[u8]| -> Result<()> {
        out.write_all(bytes).and_then(|()| out.flush()).map_err(|e| Error::io("write", "the output", e))
    };
    write(out, &text[range.clone()])?;
    let mut shown = Shown { bytes: range.len() as u64, followed: false };
    if !follow || !at_end {
        return Ok(shown);
    }
    let mut offset = text.len() as u64;
    loop {
        // Look at the run before reading, so the last read after it ends misses nothing.
        let still_live = live();
        offset += copy_from(log, offset, &mut |b| write(out, b))?;
        if !still_live {
            break;
        }
        shown.followed = true;
        std::thread::sleep(poll);
    }
    shown.bytes = offset - text.len() as u64 + range.len() as u64;
    Ok(shown)
}

/// Copies what the file holds from `offset` on; returns how many bytes.
fn copy_from(path: &Path, offset: u64, write: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<u64> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    f.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("read", path, e))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(|e| Error::io("read", path, e))?;
    write(&buf)?;
    Ok(buf.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(session: &str, run: u32, k: u32) -> String {
        LogHeader {
            time: "2026-03-16T21:11:23Z".into(),
            session: session.into(),
            run,
            iteration: k,
            max_iterations: 5,
            command: "'x' demo-agent --flag: y".into(),
        }
        .line()
    }

    #[test]
    fn headers_round_trip_and_split_runs() {
        let h = header("sess_1", 42, 2);
        assert_eq!(LogHeader::parse(&h).expect("parses").command, "'x' demo-agent --flag: y");
        assert_eq!(LogHeader::parse("[postflight] ==> nonsense"), None);
        let text = format!(
            "old output\n{}\nout 1\n{}\nout 2\n{}\nout 3\n",
            header("sess_1", 42, 1),
            header("sess_1", 42, 2),
            header("sess_1", 43, 3)
        );
        let all = runs(text.as_bytes());
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].invocations, 2);
        assert_eq!(all[1].first.iteration, 3);
        let (first, at_end) = select(text.as_bytes(), Selection::Run(1)).expect("run 1");
        assert!(!at_end);
        assert!(text[first].ends_with("out 2\n"));
        let (last, at_end) = select(text.as_bytes(), Selection::Run(-1)).expect("last");
        assert!(at_end && text[last].ends_with("out 3\n"));
        assert!(select(text.as_bytes(), Selection::Run(3)).is_err());
        assert!(select(text.as_bytes(), Selection::Run(-3)).is_err());
    }
}
