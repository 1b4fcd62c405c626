//! A file's stat fingerprint (device, inode, mode, size, mtime, ctime), after git's index stat
//! cache, and the racy margin: a fingerprint younger than it proves nothing, since a same-tick
//! rewrite can leave every field the same. Read by the check's cache and the marker index.

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How much older than the check's start an input's mtime and ctime must be to be trusted.
pub const RACY_MARGIN: Duration = Duration::from_secs(2);

/// What `stat` says about a path: enough to notice any change of a file's content (size, mtime,
/// and the ctime that no user can set back) or of a directory's listing (its mtime).
pub type Fingerprint = crate::sys::StatInfo;

impl Fingerprint {
    /// The fingerprint of `stat` (or `fstat`) metadata.
    pub fn of(meta: &Metadata) -> Fingerprint {
        Fingerprint {
            dev: meta.dev(),
            ino: meta.ino(),
            mode: meta.mode(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The fingerprint of `path` now, following symlinks; `None` when it cannot be stat'ed.
    pub fn of_path(path: &Path) -> Option<Fingerprint> {
        std::fs::metadata(path).ok().map(|m| Fingerprint::of(&m))
    }

    /// The fingerprint of `path` (absolute, or relative to the open directory `dir`) now,
    /// following symlinks, as [`Fingerprint::of_path`] gives it. `buf` is scratch space. A path
    /// relative to the work tree's root walks three or four fewer components than its absolute
    /// form, which is a tenth of the cost of a stat.
    pub(crate) fn of_path_at(dir: &File, path: &[u8], buf: &mut Vec<u8>) -> Option<Fingerprint> {
        if path.contains(&0) {
            return None;
        }
        buf.clear();
        buf.extend_from_slice(path);
        buf.push(0);
        crate::sys::stat_at(dir, buf, false)
    }

    /// Whether its mtime or ctime is at or after `cutoff` (nanoseconds since the epoch).
    pub(crate) fn is_newer_than(&self, cutoff: i128) -> bool {
        let ns = |(s, n): (i64, i64)| i128::from(s) * 1_000_000_000 + i128::from(n);
        ns(self.mtime) >= cutoff || ns(self.ctime) >= cutoff
    }

    /// Eight hexadecimal fields: dev ino mode size mtime mtime_ns ctime ctime_ns (times as
    /// two's-complement 64-bit values); `-` for a path that could not be stat'ed.
    pub(crate) fn encode(fp: Option<&Fingerprint>, out: &mut Vec<u8>) {
        use std::io::Write;
        let Some(f) = fp else {
            out.push(b'-');
            return;
        };
        let _ = write!(
            out,
            "{:x} {:x} {:x} {:x} {:x} {:x} {:x} {:x}",
            f.dev, f.ino, f.mode, f.size, f.mtime.0 as u64, f.mtime.1 as u64, f.ctime.0 as u64, f.ctime.1 as u64
        );
    }

    /// Parses [`Fingerprint::encode`]'s fields from the front of `s`, returning the rest after
    /// one space; `Some(None)` for `-`.
    pub(crate) fn decode(s: &[u8]) -> Option<(Option<Fingerprint>, &[u8])> {
        if let Some(rest) = s.strip_prefix(b"-") {
            return Some((None, rest.strip_prefix(b" ").unwrap_or(rest)));
        }
        let mut fields = [0u64; 8];
        let mut rest = s;
        for (i, field) in fields.iter_mut().enumerate() {
            let end = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
            if end == 0 || end > 16 {
                return None;
            }
            *field = u64::from_str_radix(std::str::from_utf8(&rest[..end]).ok()?, 16).ok()?;
            rest = &rest[end..];
            if i < 7 || !rest.is_empty() {
                rest = rest.strip_prefix(b" ")?;
            }
        }
        let fp = Fingerprint {
            dev: fields[0],
            ino: fields[1],
            mode: u32::try_from(fields[2]).ok()?,
            size: fields[3],
            mtime: (fields[4] as i64, fields[5] as i64),
            ctime: (fields[6] as i64, fields[7] as i64),
        };
        Some((Some(fp), rest))
    }
}

/// Nanoseconds since the epoch.
pub(crate) fn epoch_ns(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}
