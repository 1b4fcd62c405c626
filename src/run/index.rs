//! When the stop hook may trust the marker index (`<git dir>/postflight-pending/`, see
//! [`marker::index_dir`]) instead of scanning state.json, and how it builds one on a repository
//! that has none yet (markers written by the original bash workflow).
//!
//! The scan ([`stop_hook::scan_markers`]) looks at the markers of the tasks state.json marks
//! `implementing`. After a scan the hook registers every marker it found as an index entry and
//! writes [`STAMP_FILE`]: the fingerprint of the state.json it scanned and the marker path of
//! every implementing task whose marker exists or can still appear (the *watched* paths: those
//! updated within [`WATCH_WINDOW`] of state.json's last write, or without a readable
//! `last_updated`; the original workflow writes a marker seconds after that update). Later
//! calls trust the index while state.json has that fingerprint: the markers are then the
//! entries plus the watched paths that exist, which is what the scan would find (a marker the
//! original workflow writes later for an implementing task is a watched path). Any other
//! writer of state.json (the bash workflow starting a task, an editor, a checkout) changes the
//! fingerprint, and the next call scans again.
//!
//! The fingerprint (device, inode, mode, size, mtime, ctime) is taken before the file is read,
//! and the hook writes no stamp for a state.json younger than [`RACY_MARGIN`] (a rewrite in the
//! same clock tick can leave every field the same), as `xtask check`'s result cache does.
//! Preflight, which writes state.json itself and registers its marker, carries a stamp that was
//! current before its write over to the version it wrote ([`current_stamp`], [`carry`]): the
//! implementing tasks are then the old ones plus its own, whose marker it registered.
//!
//! [`stop_hook::scan_markers`]: crate::guard::stop_hook::scan_markers
//! [`WATCH_WINDOW`]: crate::guard::stop_hook::WATCH_WINDOW

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::fingerprint::{Fingerprint, RACY_MARGIN};
use crate::repo::Repo;
use crate::run as marker;
use crate::task_id::TaskId;

/// The stamp's file name in the index directory (a dot file: never a task id, so never an entry).
pub const STAMP_FILE: &str = ".complete";

/// The stamp's format and version (first word).
const STAMP_VERSION: &str = "postflight-pending-complete-1";

fn stamp_path(git_dir: &Path) -> PathBuf {
    marker::index_dir(git_dir).join(STAMP_FILE)
}

fn state_path(repo: &Repo) -> PathBuf {
    repo.specs_dir().join("state.json")
}

/// The stamp: the fingerprint of the state.json it vouches for, and the watched marker paths
/// (repository-relative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// state.json's fingerprint when it was scanned.
    pub fingerprint: Fingerprint,
    /// The marker path of every task the scanned state.json marks implementing.
    pub watched: Vec<String>,
}

fn encode_fp(fp: &Fingerprint) -> String {
    format!(
        "{STAMP_VERSION} {} {} {} {} {} {} {} {}",
        fp.dev, fp.ino, fp.mode, fp.size, fp.mtime.0, fp.mtime.1, fp.ctime.0, fp.ctime.1
    )
}

fn decode_fp(line: &str) -> Option<Fingerprint> {
    let mut words = line.split_ascii_whitespace();
    if words.next()? != STAMP_VERSION {
        return None;
    }
    let mut n = || words.next().and_then(|w| w.parse::<i64>().ok());
    let (dev, ino, mode, size) = (n()?, n()?, n()?, n()?);
    let (mtime, ctime) = ((n()?, n()?), (n()?, n()?));
    Some(Fingerprint {
        dev: dev as u64,
        ino: ino as u64,
        mode: u32::try_from(mode).ok()?,
        size: size as u64,
        mtime,
        ctime,
    })
}

impl Stamp {
    fn encode(&self) -> String {
        let mut out = encode_fp(&self.fingerprint);
        out.push('\n');
        for rel in &self.watched {
            out.push_str(rel);
            out.push('\n');
        }
        // The last line says the file is whole (it is written through a rename anyway).
        out.push_str("end\n");
        out
    }

    fn decode(text: &str) -> Option<Stamp> {
        let mut lines = text.lines();
        let fingerprint = decode_fp(lines.next()?)?;
        let mut watched = Vec::new();
        for line in lines {
            if line == "end" {
                return Some(Stamp { fingerprint, watched });
            }
            watched.push(line.to_owned());
        }
        None
    }
}

fn read_stamp(git_dir: &Path) -> Option<Stamp> {
    Stamp::decode(&std::fs::read_to_string(stamp_path(git_dir)).ok()?)
}

fn write_stamp(git_dir: &Path, stamp: &Stamp) {
    let _ = std::fs::create_dir_all(marker::index_dir(git_dir));
    let _ = crate::atomic::write_unsynced(&stamp_path(git_dir), stamp.encode().as_bytes());
}

/// The stamp, when it vouches for state.json as it is now.
fn valid_stamp(repo: &Repo) -> Option<Stamp> {
    let stamp = read_stamp(&repo.git_dir)?;
    (Fingerprint::of_path(&state_path(repo)) == Some(stamp.fingerprint)).then_some(stamp)
}

/// The existing watched markers, when the index is complete for state.json as it is now
/// (`None`: scan).
pub fn watched_markers(repo: &Repo) -> Option<Vec<PathBuf>> {
    let stamp = valid_stamp(repo)?;
    // One stat per implementing task, relative to an open specs/ (a generated ledger of 10,000
    // tasks has 600 implementing; from the root each stat walks four more path components).
    let specs = std::fs::File::open(repo.specs_dir()).ok()?;
    let mut buf = Vec::new();
    let is_file = |rel: &str, buf: &mut Vec<u8>| {
        let fp = match rel.strip_prefix("specs/") {
            Some(in_specs) => Fingerprint::of_path_at(&specs, in_specs.as_bytes(), buf),
            None => Fingerprint::of_path(&repo.root.join(rel)),
        };
        fp.is_some_and(|fp| is_regular(fp.mode))
    };
    Some(stamp.watched.iter().filter(|rel| is_file(rel, &mut buf)).map(|rel| repo.root.join(rel)).collect())
}

// `mode_t` is u32 on Linux but u16 elsewhere.
#[allow(clippy::useless_conversion)]
fn is_regular(mode: u32) -> bool {
    mode & u32::from(libc::S_IFMT) == u32::from(libc::S_IFREG)
}

/// Whether the index is complete for state.json as it is now.
pub fn is_complete(repo: &Repo) -> bool {
    valid_stamp(repo).is_some()
}

/// The stamp, when it is current: call under the ledger lock before writing state.json, and
/// hand the result to [`carry`] after the write and the marker's registration.
pub fn current_stamp(repo: &Repo) -> Option<Stamp> {
    valid_stamp(repo)
}

/// Re-stamps the index for the state.json just written, when it was complete before the write
/// (`before` from [`current_stamp`]). Another writer that replaced state.json between the write
/// and this call would be vouched for too; that window (two system calls) is the same in which
/// its edit and this one would overwrite each other anyway.
pub fn carry(repo: &Repo, before: Option<Stamp>) {
    let Some(before) = before else { return };
    if let Some(now) = Fingerprint::of_path(&state_path(repo)) {
        write_stamp(&repo.git_dir, &Stamp { fingerprint: now, ..before });
    }
}

/// The fingerprint to stamp a scan with: taken before the scan reads state.json; `None` when
/// it is too young to vouch for anything (see the module documentation).
pub fn fingerprint_before_scan(repo: &Repo, start: SystemTime) -> Option<Fingerprint> {
    let fp = Fingerprint::of_path(&state_path(repo))?;
    let cutoff = start.checked_sub(RACY_MARGIN)?.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_nanos() as i128;
    let ns = |(s, n): (i64, i64)| i128::from(s) * 1_000_000_000 + i128::from(n);
    (ns(fp.mtime) < cutoff && ns(fp.ctime) < cutoff).then_some(fp)
}

/// Makes the index complete for the scan just made: every task marker the scan found becomes
/// an entry (written only where missing or different), then the stamp with `fp` and the watched
/// paths (when `fp` is given; without it the next call scans again).
pub fn build(repo: &Repo, found: &[PathBuf], watched: &[(u32, String)], fp: Option<Fingerprint>) {
    let stamp = stamp_path(&repo.git_dir);
    // Whatever happens below, no stale stamp may vouch for a half-written index.
    if stamp.exists() && std::fs::remove_file(&stamp).is_err() {
        return;
    }
    for (n, rel) in watched {
        if !found.contains(&repo.root.join(rel)) {
            continue;
        }
        let task = TaskId::from(*n);
        let same =
            std::fs::read_to_string(marker::entry_path(&repo.git_dir, task.as_str())).is_ok_and(|t| t.trim() == rel);
        if !same && marker::register(&repo.git_dir, &task, rel).is_err() {
            return;
        }
    }
    // A path the index would refuse to follow cannot be vouched for.
    let Some(fingerprint) = fp.filter(|_| watched.iter().all(|(_, rel)| !rel.contains("..") && !rel.contains('\n')))
    else {
        return;
    };
    write_stamp(&repo.git_dir, &Stamp { fingerprint, watched: watched.iter().map(|(_, rel)| rel.clone()).collect() });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_foreign_or_cut_text_is_no_stamp() {
        let fingerprint = Fingerprint { dev: 1, ino: 2, mode: 0o100644, size: 3, mtime: (-4, 5), ctime: (6, 7) };
        let stamp = Stamp { fingerprint, watched: vec!["specs/7_x/.postflight-pending".into()] };
        let text = stamp.encode();
        assert_eq!(Stamp::decode(&text), Some(stamp));
        assert_eq!(Stamp::decode(&text.replace("complete-1", "complete-0")), None);
        assert_eq!(Stamp::decode("specs/1_x/.postflight-pending"), None);
        assert_eq!(Stamp::decode(&text[..text.len() - 4]), None, "no end line: cut short");
        assert_eq!(Stamp::decode(&text[..20]), None);
    }
}
