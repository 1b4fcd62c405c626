//! The result cache of `xtask check` in work-tree mode, after git's index stat cache: the last
//! report plus a fingerprint (device, inode, mode, size, mtime, ctime) of every input it
//! consulted, in `<git dir>/postflight-check.cache`. A check whose inputs all stat the same
//! reuses the report; any difference runs the full check, which writes the cache again.
//!
//! Soundness rests on three rules. Every fingerprint is taken before (or together with) the
//! observation it vouches for, so a change racing the check makes the next check miss. No
//! fingerprint younger than the check's start minus [`RACY_MARGIN`] is trusted (a same-tick edit
//! can leave mtime and ctime unchanged), so such a check writes no cache. A name's existence
//! and type may be vouched for by its directory's fingerprint (creating, removing or renaming an
//! entry changes the directory's mtime), but only for a plain name that is not a symlink.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, FileType, Metadata};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::report::{Finding, Report, Severity};
use crate::fingerprint::epoch_ns;
pub use crate::fingerprint::{Fingerprint, RACY_MARGIN};

/// The cache's file name, in the git directory of the work tree (never in the work tree).
pub const FILE_NAME: &str = "postflight-check.cache";

/// The first line: the format and its version. Another version is ignored and rewritten.
const HEADER: &[u8] = b"postflight-check-cache 1\n";

// ---------------------------------------------------------------------------------------------
// Recording what a full check consults.

/// One consulted path.
#[derive(Debug, Clone, Copy)]
struct Input {
    fp: Option<Fingerprint>,
    /// Whether the cache must hold it (a directory stat'ed only in case it would vouch for a
    /// name's absence is dropped when nothing came to rely on it).
    needed: bool,
}

/// A fast hasher for path bytes (the standard SipHash costs more than the rest of recording).
#[derive(Debug, Default, Clone, Copy)]
struct PathHasher(u64);

impl std::hash::Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = (self.0 ^ checksum(bytes)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The fingerprints of everything a full check looked at, taken as it looked.
#[derive(Debug)]
pub struct Recorder {
    start: SystemTime,
    /// By the path's bytes, as used (never normalised: `a/b/` is not `a/b`).
    inputs: HashMap<Vec<u8>, Input, std::hash::BuildHasherDefault<PathHasher>>,
    /// Why this check's result cannot be cached, if it cannot.
    spoiled: Option<String>,
}

impl Recorder {
    /// A recorder for a check that starts at `start` (taken before any input is looked at).
    pub fn new(start: SystemTime) -> Recorder {
        Recorder { start, inputs: HashMap::default(), spoiled: None }
    }

    /// Records an observation of `path` that the cache must vouch for. The first fingerprint of
    /// a path stays; a different later one means the path changed during the check.
    fn note(&mut self, path: &Path, fp: Option<Fingerprint>) {
        let key = path.as_os_str().as_bytes();
        let changed = match self.inputs.get_mut(key) {
            Some(input) => {
                input.needed = true;
                input.fp != fp
            }
            None => {
                self.inputs.insert(key.to_vec(), Input { fp, needed: true });
                false
            }
        };
        if changed {
            self.spoil(format!("{} changed during the check", path.display()));
        }
    }

    /// Takes `dir`'s fingerprint now unless it was taken before, without needing it yet.
    fn ensure(&mut self, dir: &Path) {
        let key = dir.as_os_str().as_bytes();
        if !self.inputs.contains_key(key) {
            self.inputs.insert(key.to_vec(), Input { fp: Fingerprint::of_path(dir), needed: false });
        }
    }

    /// Whether `path`'s fingerprint has been taken.
    fn has(&self, path: &Path) -> bool {
        self.inputs.contains_key(path.as_os_str().as_bytes())
    }

    /// Marks `dir`'s fingerprint, taken before, as vouching for an observation made after it.
    fn cover(&mut self, dir: &Path) {
        if let Some(input) = self.inputs.get_mut(dir.as_os_str().as_bytes()) {
            input.needed = true;
        }
    }

    /// Marks the result as not cacheable.
    fn spoil(&mut self, why: String) {
        self.spoiled.get_or_insert(why);
    }

    /// The inputs to store (paths relative to `root` when inside it), sorted, or why none can be:
    /// something changed during the check, or an input is too young to be trusted.
    pub fn finish(self, root: &Path) -> std::result::Result<Inputs, String> {
        if let Some(why) = self.spoiled {
            return Err(why);
        }
        let cutoff = epoch_ns(self.start) - RACY_MARGIN.as_nanos() as i128;
        let root = root.as_os_str().as_bytes();
        let mut needed = Vec::with_capacity(self.inputs.len());
        for (path, input) in &self.inputs {
            if !input.needed {
                continue;
            }
            if input.fp.is_some_and(|fp| fp.is_newer_than(cutoff)) {
                return Err(format!(
                    "{} changed less than {} s before the check",
                    String::from_utf8_lossy(relative_bytes(root, path)),
                    RACY_MARGIN.as_secs()
                ));
            }
            needed.push((relative_bytes(root, path), input.fp));
        }
        needed.sort_unstable_by(|a, b| a.0.cmp(b.0));
        Ok(Inputs::new(needed))
    }
}

/// `path` relative to `root` when inside it (never starting with `/`; `.` for the root itself),
/// else as it is.
fn relative_bytes<'p>(root: &[u8], path: &'p [u8]) -> &'p [u8] {
    match path.strip_prefix(root) {
        Some(b"") => b".",
        Some(rest) if rest.len() > 1 && rest[0] == b'/' && rest[1] != b'/' => &rest[1..],
        _ => path,
    }
}

/// The directory whose listing decides whether `path` exists, when its last component is a
/// plain name (not `.`, `..` or empty, so not a trailing slash either).
fn listing_parent(path: &Path) -> Option<&Path> {
    let bytes = path.as_os_str().as_bytes();
    let slash = memchr::memrchr(b'/', bytes)?;
    let (dir, name) = (&bytes[..slash], &bytes[slash + 1..]);
    if dir.is_empty() || name.is_empty() || name == b"." || name == b".." {
        return None;
    }
    Some(Path::new(OsStr::from_bytes(dir)))
}

/// What a path is, as a check needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (only in listings, which do not follow them).
    Symlink,
    /// Anything else (a FIFO, a socket, a device).
    Other,
}

impl Kind {
    fn of(t: FileType) -> Kind {
        if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File
        } else if t.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        }
    }

    // `mode_t` is u32 on Linux but u16 elsewhere. Only Linux's `read_dir` meets entries of
    // unknown type.
    #[allow(clippy::useless_conversion)]
    #[cfg(target_os = "linux")]
    fn of_mode(mode: u32) -> Kind {
        match mode & u32::from(libc::S_IFMT) {
            m if m == u32::from(libc::S_IFDIR) => Kind::Dir,
            m if m == u32::from(libc::S_IFREG) => Kind::File,
            m if m == u32::from(libc::S_IFLNK) => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

/// A directory's entries, sorted by name.
pub type Listing = Arc<[(OsString, Kind)]>;

/// File-system reads for a check, each recorded when a [`Recorder`] is attached. Listings are
/// kept, so a name looked up in a listed directory costs no system call. Shared by threads:
/// every fingerprint that vouches for an observation is in the recorder before the
/// observation is made, whichever thread took it.
#[derive(Debug, Default)]
pub struct Fs {
    rec: Option<Mutex<Recorder>>,
    listings: Mutex<HashMap<Vec<u8>, Listing, std::hash::BuildHasherDefault<PathHasher>>>,
}

/// Locks a mutex; a panic elsewhere (which fails the check anyway) does not poison the data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Fs {
    /// Reads that record what they see.
    pub fn recording(rec: Recorder) -> Fs {
        Fs { rec: Some(Mutex::new(rec)), listings: Mutex::default() }
    }

    /// The recorder, when recording.
    pub fn into_recorder(self) -> Option<Recorder> {
        self.rec.map(|m| m.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn rec(&self) -> Option<MutexGuard<'_, Recorder>> {
        self.rec.as_ref().map(lock)
    }

    /// A file's bytes, `None` when it does not exist. The fingerprint comes from the open file
    /// before it is read, so a later write shows in the next check's stat.
    pub fn read(&self, path: &Path) -> std::io::Result<Option<Vec<u8>>> {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(mut rec) = self.rec() {
                    // Absent when opened; if a stat now still finds nothing, that is what the
                    // cache vouches for. Something that appeared in between cannot be.
                    match std::fs::metadata(path) {
                        Err(_) => rec.note(path, None),
                        Ok(_) => rec.spoil(format!("{} appeared during the check", path.display())),
                    }
                }
                return Ok(None);
            }
            Err(e) => {
                if let Some(mut rec) = self.rec() {
                    rec.spoil(format!("{} could not be read", path.display()));
                }
                return Err(e);
            }
        };
        let meta = file.metadata()?;
        if let Some(mut rec) = self.rec() {
            rec.note(path, Some(Fingerprint::of(&meta)));
        }
        read_all(&mut file, usize::try_from(meta.len()).unwrap_or(0)).map(Some)
    }

    /// What `path` is, following symlinks (`Path::exists`, `is_dir` and `is_file` in one), `None`
    /// when it cannot be stat'ed. A name in a listed directory that is not a symlink is answered
    /// from the listing; a name in a directory whose fingerprint was taken before is vouched for
    /// by it, and any other by its own fingerprint.
    pub fn probe(&self, path: &Path) -> Option<Kind> {
        let parent = listing_parent(path);
        if let Some(dir) = parent {
            let listing = lock(&self.listings).get(dir.as_os_str().as_bytes()).cloned();
            let name = OsStr::from_bytes(&path.as_os_str().as_bytes()[dir.as_os_str().len() + 1..]);
            let listed = listing.as_ref().map(|l| l.binary_search_by(|(n, _)| n.as_os_str().cmp(name)).map(|i| l[i].1));
            if let Some(Ok(kind)) = listed.filter(|k| *k != Ok(Kind::Symlink)) {
                if let Some(mut rec) = self.rec() {
                    rec.cover(dir);
                }
                return Some(kind);
            }
        }
        let Some(rec) = &self.rec else {
            return std::fs::metadata(path).ok().map(|m| Kind::of(m.file_type()));
        };
        // Whether the directory's fingerprint was taken before the look at the name (only then
        // may it vouch for it; another thread may take it meanwhile).
        let parent = parent.filter(|dir| lock(rec).has(dir));
        let found = std::fs::symlink_metadata(path);
        let mut rec = lock(rec);
        match found {
            Ok(meta) if meta.file_type().is_symlink() => {
                // A symlink's target can change without its directory changing: vouch with the
                // target's own fingerprint, which is also the observation.
                let target = std::fs::metadata(path).ok();
                rec.note(path, target.as_ref().map(Fingerprint::of));
                target.map(|m| Kind::of(m.file_type()))
            }
            Ok(meta) => {
                match parent {
                    Some(dir) => rec.cover(dir),
                    // Not a symlink: what lstat saw is what stat would see.
                    None => rec.note(path, Some(Fingerprint::of(&meta))),
                }
                Some(Kind::of(meta.file_type()))
            }
            Err(_) => {
                match parent {
                    Some(dir) => rec.cover(dir),
                    // lstat found nothing, so stat finds nothing either.
                    None => rec.note(path, None),
                }
                None
            }
        }
    }

    /// The entries of directory `dir` with their kinds (not following symlinks), sorted by name,
    /// `None` when it cannot be listed. The directory's fingerprint comes from the open
    /// directory, before it is read.
    pub fn list(&self, dir: &Path) -> Option<Listing> {
        let key = dir.as_os_str().as_bytes();
        if let Some(listing) = lock(&self.listings).get(key) {
            return Some(listing.clone());
        }
        let parent = listing_parent(dir);
        if let (Some(mut rec), Some(parent)) = (self.rec(), parent) {
            rec.ensure(parent);
        }
        let listed = read_dir(dir);
        if let Some(mut rec) = self.rec() {
            match &listed {
                Ok((meta, _)) => rec.note(dir, Some(Fingerprint::of(meta))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Absent: the parent's fingerprint, taken before, vouches for that when
                    // there is one; else a stat now that still finds nothing.
                    if let Some(parent) = parent {
                        rec.cover(parent);
                    } else {
                        match std::fs::metadata(dir) {
                            Err(_) => rec.note(dir, None),
                            Ok(_) => rec.spoil(format!("{} appeared during the check", dir.display())),
                        }
                    }
                }
                Err(_) => {
                    // Not a directory (its fingerprint says so, and a change would show);
                    // anything else (say, no permission to read it) is not cached.
                    match std::fs::metadata(dir) {
                        Ok(meta) if !meta.is_dir() => rec.note(dir, Some(Fingerprint::of(&meta))),
                        _ => rec.spoil(format!("{} could not be listed", dir.display())),
                    }
                }
            }
        }
        let (_, mut entries) = listed.ok()?;
        entries.sort_unstable();
        let listing: Listing = entries.into();
        lock(&self.listings).insert(key.to_vec(), listing.clone());
        Some(listing)
    }
}

/// Reads an open file of `len` bytes to its end (more or less if it changed meanwhile) without
/// the extra `statx` and `lseek` that `read_to_end` spends on guessing the size.
fn read_all(file: &mut File, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len.saturating_add(1).max(64)];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Opens directory `dir` and returns its metadata and entries (without `.` and `..`), each
/// with whether it is a directory, not following symlinks. One open, one `fstat`, and
/// `getdents64` into a stack buffer: `std::fs::read_dir` allocates 32 KiB per directory, which
/// dominated listing thousands of small task directories.
#[cfg(target_os = "linux")]
fn read_dir(dir: &Path) -> std::io::Result<(Metadata, Vec<(OsString, Kind)>)> {
    use crate::sys::EntryType;
    let (file, listed) = crate::sys::list_dir(dir)?;
    let meta = file.metadata()?;
    let mut entries = Vec::with_capacity(listed.len());
    for (name, kind) in listed {
        let kind = match kind {
            EntryType::Dir => Kind::Dir,
            EntryType::File => Kind::File,
            EntryType::Symlink => Kind::Symlink,
            EntryType::Unknown => {
                let mut path = name.as_bytes().to_vec();
                path.push(0);
                crate::sys::stat_at(&file, &path, true).map_or(Kind::Other, |st| Kind::of_mode(st.mode))
            }
            EntryType::Other => Kind::Other,
        };
        entries.push((name, kind));
    }
    Ok((meta, entries))
}

/// `std::fs::read_dir` where `getdents64` is not available.
#[cfg(not(target_os = "linux"))]
fn read_dir(dir: &Path) -> std::io::Result<(Metadata, Vec<(OsString, Kind)>)> {
    let meta = std::fs::metadata(dir)?;
    let entries = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| (e.file_name(), e.file_type().map_or(Kind::Other, Kind::of)))
        .collect();
    Ok((meta, entries))
}

// ---------------------------------------------------------------------------------------------
// The git index: only the transient-file rule reads it.

/// What identifies the index's content: its fingerprint (when old enough to trust) and its
/// trailing checksum (git rewrites the index often with the same content; the checksum says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexKey {
    /// There is no index file.
    Absent,
    /// The index file.
    Present {
        /// Its fingerprint, `None` when too young to trust.
        fp: Option<Fingerprint>,
        /// Its last bytes (the checksum of the rest), `None` when the checksum is zeros
        /// (`index.skipHash`).
        trailer: Option<Vec<u8>>,
    },
    /// It could not be read: never matches.
    Unknown,
}

/// The bytes at the end of the index kept as its checksum (a SHA-256 one is 32 bytes).
const TRAILER: u64 = 32;

impl IndexKey {
    /// Reads the key of the index at `path`, distrusting a fingerprint not older than `start`
    /// minus [`RACY_MARGIN`]. Taken before the index is read for the check.
    pub fn read(path: &Path, start: SystemTime) -> IndexKey {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return IndexKey::Absent,
            Err(_) => return IndexKey::Unknown,
        };
        let Ok(meta) = file.metadata() else { return IndexKey::Unknown };
        let fp = Fingerprint::of(&meta);
        let cutoff = epoch_ns(start) - RACY_MARGIN.as_nanos() as i128;
        let fp = (!fp.is_newer_than(cutoff)).then_some(fp);
        IndexKey::Present { fp, trailer: read_trailer(&file, meta.len()) }
    }

    /// Whether the index at `path` still has the content this key was taken from.
    pub fn matches(&self, path: &Path) -> bool {
        match self {
            IndexKey::Unknown => false,
            IndexKey::Absent => {
                matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
            }
            IndexKey::Present { fp, trailer } => {
                if fp.is_some() && Fingerprint::of_path(path) == *fp {
                    return true;
                }
                let Some(trailer) = trailer else { return false };
                let Ok(file) = File::open(path) else { return false };
                let Ok(meta) = file.metadata() else { return false };
                read_trailer(&file, meta.len()).as_ref() == Some(trailer)
            }
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            IndexKey::Absent => out.extend_from_slice(b"absent"),
            IndexKey::Unknown => out.extend_from_slice(b"unknown"),
            IndexKey::Present { fp, trailer } => {
                out.extend_from_slice(b"present ");
                Fingerprint::encode(fp.as_ref(), out);
                out.push(b' ');
                match trailer {
                    Some(t) => out.extend(t.iter().flat_map(|b| hex_digits(*b))),
                    None => out.push(b'-'),
                }
            }
        }
    }

    fn decode(s: &[u8]) -> Option<IndexKey> {
        match s {
            b"absent" => return Some(IndexKey::Absent),
            b"unknown" => return Some(IndexKey::Unknown),
            _ => {}
        }
        let (fp, rest) = Fingerprint::decode(s.strip_prefix(b"present ")?)?;
        let trailer = match rest {
            b"-" => None,
            hex => Some(unhex(hex)?),
        };
        Some(IndexKey::Present { fp, trailer })
    }
}

/// The index's trailing checksum bytes, `None` when they are all zeros (no checksum written).
fn read_trailer(file: &File, len: u64) -> Option<Vec<u8>> {
    let n = len.min(TRAILER);
    let mut buf = vec![0u8; usize::try_from(n).ok()?];
    file.read_exact_at(&mut buf, len - n).ok()?;
    let tail = &buf[buf.len().saturating_sub(20)..];
    (tail.len() == 20 && tail.iter().any(|b| *b != 0)).then_some(buf)
}

fn hex_digits(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()).collect()
}

// ---------------------------------------------------------------------------------------------
// The file.

/// A finding as stored (the rule id is mapped back to its static name on load).
#[derive(Serialize, Deserialize)]
struct StoredFinding {
    rule: String,
    severity: Severity,
    file: String,
    line: Option<usize>,
    task: Option<u32>,
    message: String,
    fixable: bool,
}

/// What a cache file holds.
#[derive(Debug)]
pub struct Cache {
    /// The index key the transient-file findings were computed for.
    pub index: IndexKey,
    /// The tracked transient files, `None` when the ledger was unreadable (the rule did not run).
    pub transient: Option<Vec<String>>,
    /// The report without the transient-file findings.
    pub report: Report,
    /// Every input with its fingerprint.
    pub inputs: Inputs,
}

/// The consulted paths (repository-relative, or absolute) with their fingerprints, sorted by
/// path, in their binary form: a ledger of 10,000 tasks has some 30,000, and a cache hit decodes
/// them as it stats them, on several threads, block by block.
///
/// Per input: the path as the length it shares with the previous path (a varint) plus the rest
/// (length and bytes), then a flag byte and the fingerprint's fields as LEB128 varints, each
/// relative to the previous present input where that makes it small (device, inode, mode,
/// mtime seconds) and ctime relative to mtime: about 40 bytes an input instead of 120 as text.
/// Every [`BLOCK`] inputs both references start again from nothing, so each block decodes on
/// its own.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inputs {
    count: usize,
    bytes: Vec<u8>,
    /// Where each block starts in `bytes`.
    blocks: Vec<usize>,
}

/// Inputs per independently decodable block.
const BLOCK: usize = 512;

/// The previous path and present fingerprint, which the next input is encoded against.
struct Prev<'a> {
    path: std::borrow::Cow<'a, [u8]>,
    fp: Fingerprint,
}

impl Prev<'_> {
    fn start() -> Self {
        Prev {
            path: Cow::Borrowed(b""),
            fp: Fingerprint { dev: 0, ino: 0, mode: 0, size: 0, mtime: (0, 0), ctime: (0, 0) },
        }
    }
}

impl Inputs {
    /// Encodes `entries`, which must be sorted by path.
    pub fn new<'p>(entries: impl IntoIterator<Item = (&'p [u8], Option<Fingerprint>)>) -> Inputs {
        let mut out = Inputs::default();
        let mut prev = Prev::start();
        for (path, fp) in entries {
            if out.count % BLOCK == 0 {
                out.blocks.push(out.bytes.len());
                prev = Prev::start();
            }
            out.count += 1;
            let bytes = &mut out.bytes;
            let shared = path.iter().zip(prev.path.iter()).take_while(|(a, b)| a == b).count();
            put_varint(bytes, shared as u64);
            put_varint(bytes, (path.len() - shared) as u64);
            bytes.extend_from_slice(&path[shared..]);
            prev.path = Cow::Borrowed(path);
            let Some(f) = fp else {
                bytes.push(FLAG_ABSENT);
                continue;
            };
            let mut flags = 0;
            if f.dev != prev.fp.dev {
                flags |= FLAG_DEV;
            }
            if f.mode != prev.fp.mode {
                flags |= FLAG_MODE;
            }
            if f.ctime != f.mtime {
                flags |= FLAG_CTIME;
            }
            bytes.push(flags);
            if flags & FLAG_DEV != 0 {
                put_varint(bytes, f.dev);
            }
            put_varint(bytes, zigzag(f.ino.wrapping_sub(prev.fp.ino) as i64));
            if flags & FLAG_MODE != 0 {
                put_varint(bytes, u64::from(f.mode));
            }
            put_varint(bytes, f.size);
            put_varint(bytes, zigzag(f.mtime.0.wrapping_sub(prev.fp.mtime.0)));
            put_varint(bytes, zigzag(f.mtime.1));
            if flags & FLAG_CTIME != 0 {
                put_varint(bytes, zigzag(f.ctime.0.wrapping_sub(f.mtime.0)));
                put_varint(bytes, zigzag(f.ctime.1));
            }
            prev.fp = f;
        }
        out
    }

    /// How many inputs.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Decodes block `k`, handing each input to `f` until it breaks; `None` when the block is
    /// damaged (a file whose checksum matched by chance).
    fn each_in_block(&self, k: usize, mut f: impl FnMut(usize, &[u8], Option<Fingerprint>) -> bool) -> Option<()> {
        let start = *self.blocks.get(k)?;
        let end = self.blocks.get(k + 1).copied().unwrap_or(self.bytes.len());
        let bytes = self.bytes.get(start..end)?;
        let first = k * BLOCK;
        let n = self.count.checked_sub(first)?.min(BLOCK);
        let mut at = 0;
        let mut path: Vec<u8> = Vec::with_capacity(256);
        let mut prev = Prev::start().fp;
        for i in first..first + n {
            let shared = usize::try_from(get_varint(bytes, &mut at)?).ok()?;
            let rest = usize::try_from(get_varint(bytes, &mut at)?).ok()?;
            if shared > path.len() {
                return None;
            }
            path.truncate(shared);
            path.extend_from_slice(bytes.get(at..at.checked_add(rest)?)?);
            at += rest;
            let flags = *bytes.get(at)?;
            at += 1;
            let fp = if flags == FLAG_ABSENT {
                None
            } else {
                if flags & !(FLAG_DEV | FLAG_MODE | FLAG_CTIME) != 0 {
                    return None;
                }
                let mut fp = prev;
                if flags & FLAG_DEV != 0 {
                    fp.dev = get_varint(bytes, &mut at)?;
                }
                fp.ino = prev.ino.wrapping_add(unzigzag(get_varint(bytes, &mut at)?) as u64);
                if flags & FLAG_MODE != 0 {
                    fp.mode = u32::try_from(get_varint(bytes, &mut at)?).ok()?;
                }
                fp.size = get_varint(bytes, &mut at)?;
                fp.mtime = (
                    prev.mtime.0.wrapping_add(unzigzag(get_varint(bytes, &mut at)?)),
                    unzigzag(get_varint(bytes, &mut at)?),
                );
                fp.ctime = if flags & FLAG_CTIME != 0 {
                    (
                        fp.mtime.0.wrapping_add(unzigzag(get_varint(bytes, &mut at)?)),
                        unzigzag(get_varint(bytes, &mut at)?),
                    )
                } else {
                    fp.mtime
                };
                prev = fp;
                Some(fp)
            };
            if !f(i, &path, fp) {
                return Some(());
            }
        }
        (at == bytes.len()).then_some(())
    }

    /// Every input, decoded; `None` when damaged.
    pub fn to_vec(&self) -> Option<Vec<(Vec<u8>, Option<Fingerprint>)>> {
        let mut out = Vec::with_capacity(self.count);
        for k in 0..self.blocks.len() {
            self.each_in_block(k, |_, path, fp| {
                out.push((path.to_vec(), fp));
                true
            })?;
        }
        (out.len() == self.count).then_some(out)
    }

    /// The header line's fields after `inputs `: count, byte length, block starts.
    fn encode_header(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = write!(out, "{} {}", self.count, self.bytes.len());
        for b in &self.blocks {
            let _ = write!(out, " {b}");
        }
    }

    /// Reads [`Inputs::encode_header`]'s fields and takes the bytes that follow them.
    fn decode(header: &[u8], rest: &[u8]) -> Option<(Inputs, usize)> {
        let mut fields = header.split(|b| *b == b' ').map(|f| std::str::from_utf8(f).ok()?.parse::<usize>().ok());
        let (count, len) = (fields.next()??, fields.next()??);
        let blocks = fields.collect::<Option<Vec<usize>>>()?;
        let valid = blocks.len() == count.div_ceil(BLOCK)
            && blocks.first().is_none_or(|b| *b == 0)
            && blocks.windows(2).all(|w| w[0] < w[1])
            && blocks.last().is_none_or(|b| *b < len)
            && len <= rest.len();
        valid.then(|| (Inputs { count, bytes: rest[..len].to_vec(), blocks }, len))
    }
}

const FLAG_DEV: u8 = 1;
const FLAG_MODE: u8 = 2;
const FLAG_CTIME: u8 = 4;
const FLAG_ABSENT: u8 = 0x80;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// `%`, CR and LF escaped as `%25`, `%0d`, `%0a`, so one line holds any path.
fn escape(path: &[u8], out: &mut Vec<u8>) {
    for &b in path {
        match b {
            b'%' => out.extend_from_slice(b"%25"),
            b'\n' => out.extend_from_slice(b"%0a"),
            b'\r' => out.extend_from_slice(b"%0d"),
            _ => out.push(b),
        }
    }
}

fn unescape(s: &[u8]) -> Option<Cow<'_, [u8]>> {
    if !s.contains(&b'%') {
        return Some(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            out.push(unhex(s.get(i + 1..i + 3)?)?[0]);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(Cow::Owned(out))
}

/// A 64-bit checksum of the file's body, against torn or damaged files (not against forgery:
/// whoever can write the git directory can do worse).
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = bytes.len() as u64 ^ K;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(K).rotate_left(29);
    }
    h ^ (h >> 32)
}

impl Cache {
    /// The file's bytes. `binary` identifies the program that wrote it (a rebuilt program may
    /// check differently) and `root` the work tree.
    pub fn encode(&self, root: &Path, binary: &Fingerprint) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::with_capacity(64 + self.inputs.len() * 128);
        out.extend_from_slice(HEADER);
        out.extend_from_slice(b"binary ");
        Fingerprint::encode(Some(binary), &mut out);
        out.extend_from_slice(b"\nroot ");
        escape(root.as_os_str().as_bytes(), &mut out);
        out.extend_from_slice(b"\nindex ");
        self.index.encode(&mut out);
        out.push(b'\n');
        match &self.transient {
            None => out.extend_from_slice(b"transient -\n"),
            Some(paths) => {
                let _ = writeln!(out, "transient {}", paths.len());
                for p in paths {
                    escape(p.as_bytes(), &mut out);
                    out.push(b'\n');
                }
            }
        }
        let _ = writeln!(out, "report {} {}", u8::from(self.report.unreadable), self.report.findings.len());
        for f in &self.report.findings {
            let stored = StoredFinding {
                rule: f.rule.to_owned(),
                severity: f.severity,
                file: f.file.clone(),
                line: f.line,
                task: f.task,
                message: f.message.clone(),
                fixable: f.fixable,
            };
            serde_json::to_writer(&mut out, &stored).expect("a finding always serialises");
            out.push(b'\n');
        }
        out.extend_from_slice(b"inputs ");
        self.inputs.encode_header(&mut out);
        out.push(b'\n');
        out.extend_from_slice(&self.inputs.bytes);
        out.push(b'\n');
        let sum = checksum(&out);
        let _ = writeln!(out, "end {sum:016x}");
        out
    }

    /// Reads a cache file written for work tree `root` by the program `binary`; the reason it
    /// cannot be used otherwise (damaged, another version, another program or work tree). `rules` are
    /// the check's rules, whose ids a stored finding must name.
    pub fn decode(
        bytes: &[u8],
        root: &Path,
        binary: &Fingerprint,
        rules: &[(&'static str, Severity, &'static str)],
    ) -> std::result::Result<Cache, &'static str> {
        let body_end = match bytes.strip_suffix(b"\n").and_then(|b| memchr::memrchr(b'\n', b)) {
            Some(i) => i + 1,
            None => return Err("damaged"),
        };
        let (body, end) = bytes.split_at(body_end);
        let sum = end.strip_prefix(b"end ").and_then(|s| s.strip_suffix(b"\n")).ok_or("damaged")?;
        if sum != format!("{:016x}", checksum(body)).as_bytes() {
            return Err("damaged");
        }
        let mut rest = body.strip_prefix(HEADER).ok_or("another version")?;
        let mut line = |prefix: &[u8]| -> std::result::Result<&[u8], &'static str> {
            let end = memchr::memchr(b'\n', rest).ok_or("damaged")?;
            let l = &rest[..end];
            rest = &rest[end + 1..];
            l.strip_prefix(prefix).ok_or("damaged")
        };
        let count = |s: &[u8]| -> std::result::Result<usize, &'static str> {
            std::str::from_utf8(s).ok().and_then(|s| s.parse().ok()).ok_or("damaged")
        };
        let written_by = Fingerprint::decode(line(b"binary ")?).and_then(|(fp, rest)| fp.filter(|_| rest.is_empty()));
        if written_by.as_ref() != Some(binary) {
            return Err("written by another build");
        }
        if unescape(line(b"root ")?).as_deref() != Some(root.as_os_str().as_bytes()) {
            return Err("written for another work tree");
        }
        let index = IndexKey::decode(line(b"index ")?).ok_or("damaged")?;
        let transient = match line(b"transient ")? {
            b"-" => None,
            n => {
                let n = count(n)?;
                let mut paths = Vec::with_capacity(n);
                for _ in 0..n {
                    let p = unescape(line(b"")?).ok_or("damaged")?;
                    paths.push(String::from_utf8(p.into_owned()).map_err(|_| "damaged")?);
                }
                Some(paths)
            }
        };
        let report_line = line(b"report ")?;
        let (unreadable, n) = match report_line {
            [flag @ (b'0' | b'1'), b' ', n @ ..] => (*flag == b'1', count(n)?),
            _ => return Err("damaged"),
        };
        let mut findings = Vec::with_capacity(n);
        for _ in 0..n {
            let f: StoredFinding = serde_json::from_slice(line(b"")?).map_err(|_| "damaged")?;
            let rule = rules.iter().map(|(id, _, _)| *id).find(|id| *id == f.rule).ok_or("damaged")?;
            findings.push(Finding {
                rule,
                severity: f.severity,
                file: f.file,
                line: f.line,
                task: f.task,
                message: f.message,
                fixable: f.fixable,
            });
        }
        let header = line(b"inputs ")?;
        let (inputs, len) = Inputs::decode(header, rest).ok_or("damaged")?;
        if &rest[len..] != b"\n" {
            return Err("damaged");
        }
        Ok(Cache { index, transient, report: Report { findings, unreadable }, inputs })
    }
}

/// The fingerprint of the running program, which a cache must have been written by.
pub fn binary_fingerprint() -> Option<Fingerprint> {
    Fingerprint::of_path(&std::env::current_exe().ok()?)
}

/// How many threads file-system work may use: the available parallelism, at most four (asked
/// once: the standard library reads cgroup files to answer).
pub fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4))
}

/// `items.iter().map(f).collect()`, on up to [`threads`] threads when there are enough items to
/// be worth starting them (file-system calls are most of a full check, and they run in parallel).
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const PER_THREAD_MIN: usize = 256;
    let n = threads().min(items.len() / PER_THREAD_MIN).max(1);
    if n == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(n);
    std::thread::scope(|s| {
        let f = &f;
        let rest: Vec<_> =
            items.chunks(chunk).skip(1).map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>())).collect();
        let mut out: Vec<R> = items[..chunk].iter().map(f).collect();
        for handle in rest {
            match handle.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// Stats every input (on up to [`threads`] threads, each decoding its own blocks) and returns
/// the first that is not as recorded, or is damaged.
pub fn first_changed(root: &Path, inputs: &Inputs) -> Option<Vec<u8>> {
    const PER_THREAD_MIN: usize = 2_000;
    let Ok(root_dir) = File::open(root) else { return Some(root.as_os_str().as_bytes().to_vec()) };
    let blocks = inputs.blocks.len();
    let threads = threads().min(inputs.len().div_ceil(PER_THREAD_MIN)).min(blocks).max(1);
    // The lowest index of a changed input seen so far (`usize::MAX`: none) and its path; a
    // worker stops as soon as any has been seen.
    let changed = AtomicUsize::new(usize::MAX);
    let found: Mutex<Option<(usize, Vec<u8>)>> = Mutex::new(None);
    let report = |i: usize, path: &[u8]| {
        changed.fetch_min(i, Ordering::Relaxed);
        let mut found = lock(&found);
        if found.as_ref().is_none_or(|(j, _)| i < *j) {
            *found = Some((i, path.to_vec()));
        }
    };
    let scan = |from: usize, to: usize| {
        let mut buf = Vec::with_capacity(256);
        for k in from..to {
            let whole = inputs.each_in_block(k, |i, rel, fp| {
                if changed.load(Ordering::Relaxed) != usize::MAX {
                    return false;
                }
                if Fingerprint::of_path_at(&root_dir, rel, &mut buf) != fp {
                    report(i, rel);
                    return false;
                }
                true
            });
            if whole.is_none() {
                report(k * BLOCK, b"(a damaged entry of the cache)");
            }
            if changed.load(Ordering::Relaxed) != usize::MAX {
                return;
            }
        }
    };
    if threads == 1 {
        scan(0, blocks);
    } else {
        let chunk = blocks.div_ceil(threads);
        std::thread::scope(|s| {
            for t in 1..threads {
                let scan = &scan;
                s.spawn(move || scan(t * chunk, ((t + 1) * chunk).min(blocks)));
            }
            scan(0, chunk.min(blocks));
        });
    }
    found.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).map(|(_, path)| path)
}

/// Replaces the cache file with `bytes` (temp file in the same directory, then rename). Not
/// synced: a file torn by a crash fails its checksum and is ignored, which costs one full check.
///
/// # Errors
/// I/O errors.
pub fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::atomic::sweep_stale_temp_files(dir, &[FILE_NAME], crate::atomic::STALE_TEMP_AGE);
    let mut tmp = tempfile::Builder::new().prefix(&format!(".{FILE_NAME}.")).suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::check::RULES;
    use std::time::{Duration, UNIX_EPOCH};

    fn fp(n: u64) -> Fingerprint {
        Fingerprint {
            dev: 2049,
            ino: n,
            mode: 0o100644,
            size: 4096,
            mtime: (1_700_000_000, 5),
            ctime: (-3, 999_999_999),
        }
    }

    #[test]
    fn fingerprints_round_trip_including_negative_times_and_absence() {
        for f in [
            Some(fp(7)),
            None,
            Some(Fingerprint { dev: u64::MAX, ino: 0, mode: 0, size: 0, mtime: (i64::MIN, 0), ctime: (i64::MAX, 1) }),
        ] {
            let mut out = Vec::new();
            Fingerprint::encode(f.as_ref(), &mut out);
            out.extend_from_slice(b" specs/a b");
            assert_eq!(Fingerprint::decode(&out), Some((f, &b"specs/a b"[..])), "{}", String::from_utf8_lossy(&out));
        }
        let mut out = Vec::new();
        Fingerprint::encode(Some(&fp(255)), &mut out);
        assert_eq!(out, b"801 ff 81a4 1000 6553f100 5 fffffffffffffffd 3b9ac9ff");
        for bad in [&b""[..], b"1 2 3", b"1 2 3 4 5 6 7 x", b"1 2 3 4 5 6 7 11112222333344445", b"1  2 3 4 5 6 7 8"] {
            assert_eq!(Fingerprint::decode(bad).map(|(f, _)| f), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn stat_relative_to_the_root_equals_stat_of_the_path() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        std::fs::create_dir_all(root.join("specs/1_x")).expect("mkdir");
        std::fs::write(root.join("specs/state.json"), "{}").expect("write");
        std::os::unix::fs::symlink("1_x", root.join("specs/link")).expect("symlink");
        let dir = File::open(root).expect("open root");
        let mut buf = Vec::new();
        for rel in ["specs", "specs/1_x", "specs/state.json", "specs/link", "specs/missing", "specs/state.json/x", "."]
        {
            let want = Fingerprint::of_path(&root.join(rel));
            assert_eq!(Fingerprint::of_path_at(&dir, rel.as_bytes(), &mut buf), want, "{rel}");
            assert_eq!(want.is_some(), !rel.contains("missing") && !rel.ends_with("/x"), "{rel}");
        }
        let abs = root.join("specs/state.json");
        assert_eq!(Fingerprint::of_path_at(&dir, abs.as_os_str().as_bytes(), &mut buf), Fingerprint::of_path(&abs));
        assert_eq!(Fingerprint::of_path_at(&dir, b"specs\0x", &mut buf), None);
    }

    #[test]
    fn inputs_round_trip_through_the_binary_form() {
        // A small deterministic generator: paths sharing prefixes, every field's extremes.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut entries = Vec::new();
        let mut paths: Vec<Vec<u8>> =
            (0..1500).map(|i| format!("specs/{}_t/plans/implementation-{i:04}.md", i % 37).into_bytes()).collect();
        paths.push(b"".to_vec());
        paths.push(b"/etc/passwd".to_vec());
        paths.push(vec![b'\n', 0xff, b'%', 0]);
        paths.sort();
        for (i, p) in paths.iter().enumerate() {
            let r = next();
            let fp = match i % 5 {
                0 => None,
                1 => Some(Fingerprint {
                    dev: u64::MAX,
                    ino: 0,
                    mode: u32::MAX,
                    size: u64::MAX,
                    mtime: (i64::MIN, -1),
                    ctime: (i64::MAX, i64::MIN),
                }),
                _ => Some(Fingerprint {
                    dev: r % 3,
                    ino: next(),
                    mode: (r >> 8) as u32 % 3 + 0o40755,
                    size: r >> 40,
                    mtime: (1_700_000_000 + (r % 100) as i64, (r % 1_000_000_000) as i64),
                    ctime: if r % 2 == 0 {
                        (1_700_000_000 + (r % 100) as i64, (r % 1_000_000_000) as i64)
                    } else {
                        (1_700_000_050, 7)
                    },
                }),
            };
            entries.push((p.clone(), fp));
        }
        let inputs = Inputs::new(entries.iter().map(|(p, fp)| (p.as_slice(), *fp)));
        assert_eq!(inputs.blocks.len(), 3, "1503 inputs in blocks of {BLOCK}");
        assert!(inputs.bytes.len() < inputs.len() * 40, "{} bytes for {} inputs", inputs.bytes.len(), inputs.len());
        assert_eq!(inputs.to_vec(), Some(entries.clone()));
        // Each block decodes on its own.
        let mut second = Vec::new();
        inputs.each_in_block(1, |i, p, fp| {
            second.push((i, p.to_vec(), fp));
            true
        });
        assert_eq!(second.len(), BLOCK);
        assert_eq!((second[0].0, &second[0].1, second[0].2), (BLOCK, &entries[BLOCK].0, entries[BLOCK].1));
        // Through the header line and back.
        let mut header = Vec::new();
        inputs.encode_header(&mut header);
        let mut rest = inputs.bytes.clone();
        rest.push(b'\n');
        assert_eq!(Inputs::decode(&header, &rest), Some((inputs.clone(), inputs.bytes.len())));
        assert_eq!(Inputs::decode(b"0 0", b"\n"), Some((Inputs::default(), 0)));
        for bad in [&b"1503 5"[..], b"1503", b"1502 100 0 10 20 30", b"1503 100 0 20 10", b"1503 100 1 10 20", b"x"] {
            assert_eq!(Inputs::decode(bad, &rest), None, "{}", String::from_utf8_lossy(bad));
        }
        // A damaged block is noticed: a shared prefix longer than the previous path, an unknown
        // flag, a cut, bytes left over.
        for bytes in [&[0u8, 1, b'a', 0x80, 2, 0, 0x80][..], &[0, 1, b'a', 0x08], &[0, 1, b'a'], &[0, 1, b'a', 0x80, 0]]
        {
            let count = if bytes.len() == 7 { 2 } else { 1 };
            let damaged = Inputs { count, bytes: bytes.to_vec(), blocks: vec![0] };
            assert_eq!(damaged.to_vec(), None, "{bytes:?}");
        }
    }

    #[test]
    fn read_dir_lists_like_std() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        for i in 0..600 {
            // Enough entries for several getdents64 calls, with long and odd names.
            let name = format!("{i}_{}\u{e9}%\n", "x".repeat(i % 200));
            if i % 3 == 0 {
                std::fs::create_dir(root.join(&name)).expect("mkdir");
            } else {
                std::fs::write(root.join(&name), "").expect("write");
            }
        }
        std::os::unix::fs::symlink("0_", root.join("link-to-dir")).expect("symlink");
        let (meta, mut ours) = read_dir(root).expect("list");
        assert_eq!(Fingerprint::of(&meta), Fingerprint::of_path(root).expect("stat"));
        let mut std_list: Vec<(OsString, Kind)> = std::fs::read_dir(root)
            .expect("ls")
            .map(|e| e.expect("entry"))
            .map(|e| (e.file_name(), Kind::of(e.file_type().expect("type"))))
            .collect();
        ours.sort();
        std_list.sort();
        assert_eq!(ours.len(), 601);
        assert_eq!(ours, std_list);
        assert_eq!(
            read_dir(&root.join("missing")).map(|_| ()).expect_err("missing").kind(),
            std::io::ErrorKind::NotFound
        );
        assert!(read_dir(&root.join("1_x\u{e9}%\n")).is_err(), "a file is not listed");
    }

    #[test]
    fn racy_inputs_are_refused_and_old_ones_kept() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_010);
        let mut rec = Recorder::new(start);
        let old = Fingerprint { mtime: (1_700_000_007, 999_999_999), ctime: (1_700_000_007, 0), ..fp(1) };
        rec.note(Path::new("/r/specs/state.json"), Some(old));
        rec.note(Path::new("/r/specs/gone"), None);
        rec.ensure(Path::new("/nonexistent-dir-for-test"));
        let kept =
            Recorder { start, inputs: rec.inputs.clone(), spoiled: None }.finish(Path::new("/r")).expect("old enough");
        assert_eq!(
            kept.to_vec().expect("decodes"),
            vec![(b"specs/gone".to_vec(), None), (b"specs/state.json".to_vec(), Some(old))]
        );
        // Exactly RACY_MARGIN before the start is not old enough, by ctime as well as by mtime.
        rec.note(Path::new("/r/specs/TODO.md"), Some(Fingerprint { ctime: (1_700_000_008, 0), ..old }));
        let err = rec.finish(Path::new("/r")).expect_err("racy");
        assert!(err.contains("specs/TODO.md changed less than 2 s before"), "{err}");
        let mut rec = Recorder::new(start);
        rec.note(Path::new("/r/x"), Some(old));
        rec.note(Path::new("/r/x"), Some(fp(2)));
        assert!(rec.finish(Path::new("/r")).expect_err("changed").contains("changed during the check"));
    }

    #[test]
    fn paths_are_stored_relative_to_the_root_only_when_inside_it() {
        for (path, want) in [
            ("/r/x", "/r/x"),
            ("/work/repo", "."),
            ("/work/repo/specs/a", "specs/a"),
            ("/work/repo2/specs", "/work/repo2/specs"),
            ("/work/repo//specs", "/work/repo//specs"),
            ("/work/repo/../etc", "../etc"),
        ] {
            assert_eq!(relative_bytes(b"/work/repo", path.as_bytes()), want.as_bytes(), "{path}");
        }
    }

    #[test]
    fn listing_parent_only_for_plain_names() {
        assert_eq!(listing_parent(Path::new("/r/specs/1_x")), Some(Path::new("/r/specs")));
        assert_eq!(listing_parent(Path::new("/etc/passwd")), Some(Path::new("/etc")));
        for p in ["/r/specs/1_x/", "/r/specs/1_x/.", "/r/specs/..", "/top", "relative"] {
            assert_eq!(listing_parent(Path::new(p)), None, "{p}");
        }
    }

    #[test]
    fn cache_file_round_trips_and_rejects_damage_and_strangers() {
        let root = Path::new("/work/re%po\nx");
        let bin = fp(99);
        let cache = Cache {
            index: IndexKey::Present { fp: Some(fp(3)), trailer: Some(vec![0xab; 32]) },
            transient: Some(vec!["specs/1_x/.return-meta.json".into()]),
            report: Report {
                findings: vec![Finding {
                    rule: "artifact-missing",
                    severity: Severity::Error,
                    file: "specs/state.json".into(),
                    line: Some(15),
                    task: Some(352),
                    message: "task 352: artifact \"a\nb\" does not exist".into(),
                    fixable: false,
                }],
                unreadable: false,
            },
            inputs: Inputs::new([
                (&b"/etc"[..], Some(fp(2))),
                (b"specs", Some(fp(1))),
                (b"specs/100%_x\nnewline\r", None),
            ]),
        };
        let bytes = cache.encode(root, &bin);
        let back = Cache::decode(&bytes, root, &bin, &RULES).expect("decodes");
        assert_eq!(back.index, cache.index);
        assert_eq!(back.transient, cache.transient);
        assert_eq!(back.report.findings, cache.report.findings);
        assert_eq!(back.inputs, cache.inputs);
        assert_eq!(
            Cache::decode(&bytes, Path::new("/elsewhere"), &bin, &RULES).err(),
            Some("written for another work tree")
        );
        assert_eq!(Cache::decode(&bytes, root, &fp(98), &RULES).err(), Some("written by another build"));
        // Any single damaged byte, and any truncation, is noticed.
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(Cache::decode(&bad, root, &bin, &RULES).is_err(), "byte {i} flipped");
        }
        for len in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(Cache::decode(&bytes[..len], root, &bin, &RULES).is_err(), "cut at {len}");
        }
        let unreadable = Cache {
            index: IndexKey::Absent,
            transient: None,
            report: Report { findings: vec![], unreadable: true },
            inputs: Inputs::default(),
        };
        let bytes = unreadable.encode(root, &bin);
        let back = Cache::decode(&bytes, root, &bin, &RULES).expect("decodes");
        assert!(back.report.unreadable && back.transient.is_none() && back.index == IndexKey::Absent);
        let mut other = bytes.clone();
        other[23] = b'9';
        assert!(Cache::decode(&other, root, &bin, &RULES).is_err());
    }

    #[test]
    fn index_key_sees_content_not_rewrites() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("index");
        let old = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(IndexKey::read(&path, old), IndexKey::Absent);
        assert!(IndexKey::Absent.matches(&path));
        let mut content = b"DIRC".to_vec();
        content.extend_from_slice(&[7u8; 40]);
        std::fs::write(&path, &content).expect("write");
        let key = IndexKey::read(&path, old);
        assert!(matches!(&key, IndexKey::Present { fp: Some(_), trailer: Some(t) } if t.len() == 32));
        assert!(key.matches(&path) && !IndexKey::Absent.matches(&path));
        // Rewritten with the same bytes: another inode and times, the same checksum.
        std::fs::remove_file(&path).expect("rm");
        std::fs::write(&path, &content).expect("write");
        assert!(key.matches(&path));
        content[43] = 8;
        std::fs::write(&path, &content).expect("write");
        assert!(!key.matches(&path));
        // A young index is trusted by its checksum only; a zero checksum by nothing.
        let young = IndexKey::read(&path, SystemTime::now());
        assert!(matches!(young, IndexKey::Present { fp: None, trailer: Some(_) }));
        content.truncate(24);
        content.extend_from_slice(&[0u8; 20]);
        std::fs::write(&path, &content).expect("write");
        assert_eq!(IndexKey::read(&path, SystemTime::now()), IndexKey::Present { fp: None, trailer: None });
        assert!(!IndexKey::read(&path, SystemTime::now()).matches(&path));
    }

    #[test]
    fn recorded_reads_vouch_for_what_they_saw() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        std::fs::create_dir_all(root.join("specs/1_x/plans")).expect("mkdir");
        std::fs::write(root.join("specs/1_x/plans/implementation-001.md"), "plan").expect("write");
        std::os::unix::fs::symlink("1_x", root.join("specs/link")).expect("symlink");
        let fs = Fs::recording(Recorder::new(SystemTime::now() + Duration::from_secs(60)));
        let specs = fs.list(&root.join("specs")).expect("listed");
        assert_eq!(specs.to_vec(), [("1_x".into(), Kind::Dir), ("link".into(), Kind::Symlink)]);
        assert_eq!(
            fs.read(&root.join("specs/1_x/plans/implementation-001.md")).expect("read").as_deref(),
            Some(&b"plan"[..])
        );
        assert_eq!(fs.read(&root.join("specs/state.json")).expect("read"), None);
        assert_eq!(fs.probe(&root.join("specs/1_x")), Some(Kind::Dir));
        assert_eq!(fs.probe(&root.join("specs/2_y")), None);
        assert_eq!(fs.probe(&root.join("specs/link")), Some(Kind::Dir), "followed");
        assert_eq!(fs.probe(&root.join("specs/1_x/.postflight-pending")), None);
        let plans = fs.list(&root.join("specs/1_x/plans")).expect("listed");
        assert_eq!(plans.to_vec(), [("implementation-001.md".into(), Kind::File)]);
        assert_eq!(fs.probe(&root.join("specs/1_x/plans/implementation-001.md")), Some(Kind::File));
        assert_eq!(fs.probe(&root.join("specs/1_x/plans/implementation-002.md")), None);
        assert_eq!(fs.list(&root.join("specs/2_y/plans")), None);
        assert_eq!(fs.probe(&root.join("README.md")), None);
        let rec = fs.into_recorder().expect("recording");
        let stored: Vec<String> = rec
            .finish(root)
            .expect("old enough")
            .to_vec()
            .expect("decodes")
            .into_iter()
            .map(|(p, f)| format!("{} {}", String::from_utf8_lossy(&p), if f.is_some() { "stat" } else { "absent" }))
            .collect();
        // Names in a directory whose fingerprint was taken before (listed, or the parent of a
        // listing: `specs/2_y` for `specs/2_y/plans`, the root for `specs`, which then vouches
        // for `README.md`) are vouched for by it; other names by their own fingerprints, the
        // symlink by its target's.
        assert_eq!(
            stored,
            [
                ". stat",
                "specs stat",
                "specs/1_x/.postflight-pending absent",
                "specs/1_x/plans stat",
                "specs/1_x/plans/implementation-001.md stat",
                "specs/2_y absent",
                "specs/link stat",
                "specs/state.json absent",
            ]
        );
    }
}
