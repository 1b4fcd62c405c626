//! When the stop hook may trust the marker index (`<git dir>/postflight-pending/`, see
//! [`marker::index_dir`]) instead of scanning state.json, and how it builds one on a repository
//! that has none yet (markers written by the original bash workflow).
//!
//! The scan ([`stop_hook::scan_markers`]) looks at the markers of the tasks state.json marks
//! `implementing`. The index is complete when it names every such marker path, whether the
//! marker exists yet or not: then stat'ing the paths it names finds every marker the scan
//! would. The hook writes, after a scan, one entry per implementing task (the *watched* paths)
//! and the fingerprint of the state.json it scanned in [`STAMP_FILE`]. Later calls trust the
//! index while state.json has that fingerprint; any other writer of state.json (the bash
//! workflow, an editor, a checkout) changes it, and the next call scans again.
//!
//! The fingerprint (device, inode, mode, size, mtime, ctime) is taken before the file is read,
//! and the hook writes no stamp for a state.json younger than [`RACY_MARGIN`] (a rewrite in the
//! same clock tick can leave every field the same), as `xtask check`'s result cache does.
//! Preflight, which writes state.json itself and registers its marker, carries a stamp that was
//! current before its write over to the version it wrote ([`current_stamp`], [`carry`]): the
//! implementing tasks are then the old ones plus its own, whose marker it registered.
//!
//! [`stop_hook::scan_markers`]: super::stop_hook::scan_markers

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::check_cache::{Fingerprint, RACY_MARGIN};
use crate::repo::Repo;
use crate::workflow::marker;

/// The stamp's file name in the index directory (never a task number, so never an entry).
pub const STAMP_FILE: &str = ".complete";

/// The stamp's format and version (first word).
const STAMP_VERSION: &str = "postflight-pending-complete-1";

fn stamp_path(git_dir: &Path) -> PathBuf {
    marker::index_dir(git_dir).join(STAMP_FILE)
}

fn state_path(repo: &Repo) -> PathBuf {
    repo.specs_dir().join("state.json")
}

fn encode(fp: &Fingerprint) -> String {
    format!(
        "{STAMP_VERSION} {} {} {} {} {} {} {} {}\n",
        fp.dev, fp.ino, fp.mode, fp.size, fp.mtime.0, fp.mtime.1, fp.ctime.0, fp.ctime.1
    )
}

fn decode(text: &str) -> Option<Fingerprint> {
    let mut words = text.split_ascii_whitespace();
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

/// The fingerprint the stamp records, if any.
fn read_stamp(git_dir: &Path) -> Option<Fingerprint> {
    decode(&std::fs::read_to_string(stamp_path(git_dir)).ok()?)
}

/// Whether the index is complete for state.json as it is now.
pub fn is_complete(repo: &Repo) -> bool {
    match (read_stamp(&repo.git_dir), Fingerprint::of_path(&state_path(repo))) {
        (Some(stamp), Some(now)) => stamp == now,
        _ => false,
    }
}

/// The stamp, when it is current: call under the ledger lock before writing state.json, and
/// hand the result to [`carry`] after the write and the marker's registration.
pub fn current_stamp(repo: &Repo) -> Option<Fingerprint> {
    let stamp = read_stamp(&repo.git_dir)?;
    (Fingerprint::of_path(&state_path(repo)) == Some(stamp)).then_some(stamp)
}

/// Re-stamps the index for the state.json just written, when it was complete before the write
/// (`before` from [`current_stamp`]). Another writer that replaced state.json between the write
/// and this call would be vouched for too; that window (two system calls) is the same in which
/// its edit and this one would overwrite each other anyway.
pub fn carry(repo: &Repo, before: Option<Fingerprint>) {
    if before.is_none() {
        return;
    }
    if let Some(now) = Fingerprint::of_path(&state_path(repo)) {
        let _ = crate::atomic::write_unsynced(&stamp_path(&repo.git_dir), encode(&now).as_bytes());
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

/// Makes the index complete for the scan just made: an entry for every watched marker path
/// (written only where missing or different), entries that are neither watched nor name an
/// existing marker removed, then the stamp `fp` (when given; without it the entries are still
/// written, and the next call scans again).
///
/// # Errors
/// None: an index that cannot be written is simply not used (the next call scans again).
pub fn build(repo: &Repo, watched: &[(u32, String)], fp: Option<Fingerprint>) {
    let dir = marker::index_dir(&repo.git_dir);
    let stamp = stamp_path(&repo.git_dir);
    // A path the index would refuse to follow cannot be vouched for.
    let fp = fp.filter(|_| watched.iter().all(|(_, rel)| !rel.contains("..")));
    // Whatever happens below, no stale stamp may vouch for a half-written index.
    if stamp.exists() && std::fs::remove_file(&stamp).is_err() {
        return;
    }
    for (n, rel) in watched {
        let entry = dir.join(n.to_string());
        let same = std::fs::read_to_string(&entry).is_ok_and(|t| t.trim() == rel);
        if !same && marker::register(&repo.git_dir, *n, rel).is_err() {
            return;
        }
    }
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(n) = name.parse::<u32>() else { continue };
            if watched.iter().any(|(w, _)| *w == n) {
                continue;
            }
            let names_marker = std::fs::read_to_string(e.path())
                .is_ok_and(|rel| !rel.trim().is_empty() && repo.root.join(rel.trim()).is_file());
            if !names_marker {
                let _ = marker::unregister(&repo.git_dir, n);
            }
        }
    }
    if let Some(fp) = fp {
        let _ = std::fs::create_dir_all(&dir);
        let _ = crate::atomic::write_unsynced(&stamp, encode(&fp).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_foreign_text_is_no_stamp() {
        let fp = Fingerprint { dev: 1, ino: 2, mode: 0o100644, size: 3, mtime: (-4, 5), ctime: (6, 7) };
        assert_eq!(decode(&encode(&fp)), Some(fp));
        assert_eq!(decode("postflight-pending-complete-0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(decode("specs/1_x/.postflight-pending"), None);
        assert_eq!(decode(&encode(&fp)[..20]), None);
    }
}
