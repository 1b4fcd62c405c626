//! The fast variant of [`WorkTreeState::read`](super::WorkTreeState::read): the same set of
//! paths `git status --porcelain -z --untracked-files=all --no-renames --ignore-submodules=all`
//! prints, found in-process. The canonical reading (`git status`) stays beside it, is used
//! whenever this one declines, and is what the differential test compares this one with.
//!
//! - Staged: the index against HEAD's tree, skipped when the index's tree cache is valid and
//!   names HEAD's tree.
//! - Not staged: each index entry's stat data against `lstat` of its file, as git's refresh
//!   compares them (strictly: nanoseconds, ctime, inode, owner); an entry whose stat differs,
//!   or that is racy (its mtime not older than the index file's second), is decided by hashing
//!   the file; where clean filters may apply (`core.autocrlf`, `core.eol`, attributes files)
//!   such a file makes this variant decline.
//! - Untracked: a walk of the work tree (`.git` skipped at every level, as git does) listing
//!   regular files and symlinks that are not in the index and not ignored (a file below an
//!   excluded directory is ignored, even in a directory with tracked files).
//!
//! It declines (returns `None`) where it would have to reimplement more of git: an index with
//! conflicts, submodules, sparse or split index, skip-worktree, assume-unchanged or
//! intent-to-add entries; `core.fsmonitor`, `core.ignoreCase`, `core.precomposeUnicode`,
//! `core.symlinks=false`; a nested repository in the work tree.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use gix::bstr::ByteSlice;
use gix::index::entry::{Flags, Mode};
use gix::ObjectId;

/// The dirty paths (repository-relative, UTF-8, transient files not yet left out), or `None`
/// when this variant declines and `git status` must answer.
pub(super) fn dirty_paths(root: &Path) -> Option<BTreeSet<String>> {
    let (repo, file_mode, filters) = open(root)?;
    let index_path = repo.index_path();
    let index = read_index(&repo)?;
    let unsupported = Flags::SKIP_WORKTREE | Flags::ASSUME_VALID | Flags::INTENT_TO_ADD;
    // Each tracked path, to its entry; and the directories that hold tracked files.
    let mut tracked: HashMap<&[u8], usize> = HashMap::with_capacity(index.entries().len());
    let mut dirs: HashSet<&[u8]> = HashSet::new();
    for (i, entry) in index.entries().iter().enumerate() {
        if entry.stage_raw() != 0 || entry.flags.intersects(unsupported) || !supported_mode(entry.mode) {
            return None;
        }
        let path: &[u8] = entry.path(&index).as_ref();
        tracked.insert(path, i);
        let mut end = path.len();
        while let Some(i) = path[..end].rfind_byte(b'/') {
            if !dirs.insert(&path[..i]) {
                break;
            }
            end = i;
        }
    }
    let mut dirty = BTreeSet::new();
    staged(&repo, &index, &mut dirty)?;
    let mut scan = Scan {
        repo: &repo,
        index: &index,
        root,
        tracked: &tracked,
        tracked_dirs: &dirs,
        file_mode,
        racy_second: std::fs::symlink_metadata(&index_path).map(|m| m.mtime()).unwrap_or(i64::MAX),
        seen: vec![false; index.entries().len()],
        dirty: Vec::new(),
        to_hash: Vec::new(),
        untracked: Vec::new(),
        excludes: None,
    };
    scan.walk()?;
    // A tracked file the walk did not meet is gone (or below a symlink or a file, which git
    // counts as gone too).
    for (i, entry) in index.entries().iter().enumerate() {
        if !scan.seen[i] {
            if let Ok(p) = std::str::from_utf8(entry.path(&index)) {
                dirty.insert(p.to_owned());
            }
        }
    }
    let attributes = |p: &[u8]| p == b".gitattributes" || p.ends_with(b"/.gitattributes");
    let filters =
        filters || tracked.keys().any(|p| attributes(p)) || scan.untracked.iter().any(|p| attributes(p.as_bytes()));
    dirty.extend(changed_content(&repo, root, &scan.to_hash, filters)?);
    dirty.extend(scan.dirty);
    dirty.extend(scan.untracked);
    Some(dirty)
}

/// One walk of the work tree: each tracked file's stat data compared with its entry, and the
/// untracked files listed.
struct Scan<'a> {
    repo: &'a gix::Repository,
    index: &'a gix::index::File,
    root: &'a Path,
    tracked: &'a HashMap<&'a [u8], usize>,
    tracked_dirs: &'a HashSet<&'a [u8]>,
    file_mode: bool,
    /// The index file's mtime in seconds: an entry not older than it is racy.
    racy_second: i64,
    /// Which entries the walk met.
    seen: Vec<bool>,
    /// Tracked paths that differ by type or mode.
    dirty: Vec<String>,
    /// Tracked files whose stat data differs (or is racy): their content decides.
    to_hash: Vec<(String, ObjectId)>,
    untracked: Vec<String>,
    excludes: Option<gix::AttributeStack<'a>>,
}

impl Scan<'_> {
    fn excluded(&mut self, rel: &str, is_dir: bool) -> Option<bool> {
        let stack = match &mut self.excludes {
            Some(s) => s,
            None => self.excludes.insert(
                self.repo
                    .excludes(
                        self.index,
                        None,
                        gix::worktree::stack::state::ignore::Source::WorktreeThenIdMappingIfNotSkipped,
                    )
                    .ok()?,
            ),
        };
        let mode = if is_dir { Mode::DIR } else { Mode::FILE };
        Some(stack.at_entry(rel.as_bytes().as_bstr(), Some(mode)).ok()?.is_excluded())
    }

    /// Reads every directory but excluded untracked ones (`.git` skipped at every level). `None`
    /// on a nested repository or an unreadable directory (git's answer is needed then).
    fn walk(&mut self) -> Option<()> {
        // Directories to read: relative path with a trailing `/`, or empty for the root.
        let mut stack = vec![String::new()];
        while let Some(dir) = stack.pop() {
            let abs = if dir.is_empty() { self.root.to_path_buf() } else { self.root.join(&dir) };
            for entry in std::fs::read_dir(&abs).ok()? {
                let entry = entry.ok()?;
                let name = entry.file_name();
                if name == ".git" {
                    if !dir.is_empty() {
                        // A nested repository: git shows it as `dir/`.
                        return None;
                    }
                    continue;
                }
                let Some(name) = name.to_str() else { continue };
                let rel = format!("{dir}{name}");
                let ft = entry.file_type().ok()?;
                if let Some(&i) = self.tracked.get(rel.as_bytes()) {
                    self.seen[i] = true;
                    self.compare(i, &entry, ft, &rel)?;
                }
                if ft.is_dir() {
                    // A directory with tracked files inside is always read (git recurses into
                    // it); an untracked file below an excluded directory is excluded through it
                    // (the exclude stack sees the directory on the way).
                    if self.tracked_dirs.contains(rel.as_bytes()) || !self.excluded(&rel, true)? {
                        stack.push(format!("{rel}/"));
                    }
                } else if (ft.is_file() || ft.is_symlink())
                    && !self.tracked.contains_key(rel.as_bytes())
                    && !self.excluded(&rel, false)?
                {
                    self.untracked.push(rel);
                }
            }
        }
        Some(())
    }

    /// Compares tracked entry `i` with the file the walk found at its path.
    fn compare(&mut self, i: usize, found: &std::fs::DirEntry, ft: std::fs::FileType, rel: &str) -> Option<()> {
        let entry = &self.index.entries()[i];
        if !(ft.is_file() || ft.is_symlink()) {
            // A directory (or something else) where a file was tracked.
            self.dirty.push(rel.to_owned());
            return Some(());
        }
        // `lstat` relative to the directory being read.
        let md = found.metadata().ok()?;
        let now_mode = if ft.is_symlink() {
            Mode::SYMLINK
        } else if !self.file_mode {
            // Without core.fileMode the executable bit is the index's.
            if entry.mode == Mode::SYMLINK {
                Mode::FILE
            } else {
                entry.mode
            }
        } else if md.mode() & 0o100 != 0 {
            Mode::FILE_EXECUTABLE
        } else {
            Mode::FILE
        };
        if now_mode != entry.mode {
            self.dirty.push(rel.to_owned());
            return Some(());
        }
        let s = &entry.stat;
        let stat_same = i64::from(s.mtime.secs) == md.mtime()
            && i64::from(s.mtime.nsecs) == md.mtime_nsec()
            && i64::from(s.ctime.secs) == md.ctime()
            && i64::from(s.ctime.nsecs) == md.ctime_nsec()
            && u64::from(s.size) == (md.len() & 0xffff_ffff)
            && u64::from(s.ino) == (md.ino() & 0xffff_ffff)
            && s.uid == md.uid()
            && s.gid == md.gid();
        let racy = i64::from(s.mtime.secs) >= self.racy_second;
        if stat_same && !racy {
            return Some(());
        }
        if now_mode == Mode::SYMLINK {
            let target = std::fs::read_link(found.path()).ok()?;
            let id = gix::objs::compute_hash(
                self.repo.object_hash(),
                gix::objs::Kind::Blob,
                target.as_os_str().as_encoded_bytes(),
            )
            .ok()?;
            if id != entry.id {
                self.dirty.push(rel.to_owned());
            }
        } else {
            self.to_hash.push((rel.to_owned(), entry.id));
        }
        Some(())
    }
}

/// The repository at `root` with `core.fileMode` and whether clean filters may apply; `None`
/// where git's own reading is needed.
fn open(root: &Path) -> Option<(gix::Repository, bool, bool)> {
    // What redirects git elsewhere, or configures it from the command line, is git's to read.
    const GIT_ENV: [&str; 7] = [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_COMMON_DIR",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
    ];
    if GIT_ENV.iter().any(|v| std::env::var_os(v).is_some()) {
        return None;
    }
    let repo = gix::open(root).ok()?;
    let (file_mode, filters) = settings(&repo)?;
    Some((repo, file_mode, filters))
}

/// `core.fileMode` and whether clean filters may apply; `None` for settings git must apply.
fn settings(repo: &gix::Repository) -> Option<(bool, bool)> {
    let config = repo.config_snapshot();
    let flag = |key: &str| config.boolean(key).unwrap_or(false);
    if config.string("core.fsmonitor").is_some_and(|v| !v.is_empty() && !v.eq_ignore_ascii_case(b"false"))
        || flag("core.ignoreCase")
        || flag("core.precomposeUnicode")
        || !config.boolean("core.symlinks").unwrap_or(true)
        || config.string("core.worktree").is_some()
    {
        return None;
    }
    let file_mode = config.boolean("core.fileMode").unwrap_or(true);
    Some((file_mode, filters_may_apply(repo, &config)))
}

/// The index (empty when there is none yet); `None` for a sparse or split index.
fn read_index(repo: &gix::Repository) -> Option<gix::index::File> {
    let index_path = repo.index_path();
    let index = match repo.open_index() {
        Ok(index) => index,
        Err(_) if !index_path.exists() => {
            gix::index::File::from_state(gix::index::State::new(repo.object_hash()), index_path)
        }
        Err(_) => return None,
    };
    (!index.is_sparse() && index.link().is_none()).then_some(index)
}

/// The fast variant of [`ignored`](super::ignored): the paths among `paths` that git ignores,
/// as `git check-ignore` answers (a path in the index, or a directory holding tracked files, is
/// never ignored; a path below an excluded directory is ignored). `None` where git must answer
/// (pathspec magic or glob characters, paths that are not plain relative ones).
pub(super) fn ignored(root: &Path, paths: &[String]) -> Option<Vec<String>> {
    let plain = |p: &String| {
        !p.is_empty()
            && !p.starts_with(['/', ':'])
            && !p.contains(['*', '?', '[', '\\', '\n'])
            && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
    };
    if !paths.iter().all(plain) {
        return None;
    }
    let (repo, _, _) = open(root)?;
    let index = read_index(&repo)?;
    let entries = index.entries();
    let is_tracked = |p: &str| {
        if index.entry_index_by_path(p.as_bytes().as_bstr()).is_ok() {
            return true;
        }
        let dir = format!("{p}/");
        let at = entries.partition_point(|e| e.path(&index) < dir.as_bytes().as_bstr());
        entries.get(at).is_some_and(|e| e.path(&index).starts_with(dir.as_bytes()))
    };
    let mut stack = repo
        .excludes(&index, None, gix::worktree::stack::state::ignore::Source::WorktreeThenIdMappingIfNotSkipped)
        .ok()?;
    let mut out = Vec::new();
    for p in paths {
        if is_tracked(p) {
            continue;
        }
        let is_dir = std::fs::symlink_metadata(root.join(p)).is_ok_and(|m| m.is_dir());
        let mode = if is_dir { Mode::DIR } else { Mode::FILE };
        if stack.at_entry(p.as_bytes().as_bstr(), Some(mode)).ok()?.is_excluded() {
            out.push(p.clone());
        }
    }
    Some(out)
}

fn supported_mode(mode: Mode) -> bool {
    mode == Mode::FILE || mode == Mode::FILE_EXECUTABLE || mode == Mode::SYMLINK
}

/// Whether `core.autocrlf`, `core.eol` or an attributes file outside the work tree (global, in
/// the git directory) may change how a file becomes a blob; `.gitattributes` files in the index
/// or the work tree are looked for by the caller.
fn filters_may_apply(repo: &gix::Repository, config: &gix::config::Snapshot<'_>) -> bool {
    let autocrlf = match config.string("core.autocrlf") {
        Some(v) => v.eq_ignore_ascii_case(b"input") || config.boolean("core.autocrlf").unwrap_or(false),
        None => false,
    };
    let mut files = vec![repo.common_dir().join("info/attributes")];
    if let Ok(Some(p)) = config.trusted_path("core.attributesFile") {
        files.push(p);
    } else if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        files.push(std::path::PathBuf::from(xdg).join("git/attributes"));
    } else if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        files.push(std::path::PathBuf::from(home).join(".config/git/attributes"));
    }
    if std::env::var_os("GIT_ATTR_NOSYSTEM").is_none() {
        files.push("/etc/gitattributes".into());
    }
    autocrlf || config.string("core.eol").is_some() || files.iter().any(|p| p.is_file())
}

/// Adds the paths whose index entry differs from HEAD's tree (added, removed, other content or
/// mode). `None` when HEAD cannot be read.
fn staged(repo: &gix::Repository, index: &gix::index::File, dirty: &mut BTreeSet<String>) -> Option<()> {
    let head = repo.head().ok()?;
    let tree = match head.id() {
        Some(id) => repo.find_commit(id.detach()).ok()?.tree_id().ok()?.detach(),
        None => ObjectId::empty_tree(repo.object_hash()),
    };
    if let Some(cache) = index.tree() {
        if cache.num_entries.is_some_and(|n| n as usize == index.entries().len()) && cache.id == tree {
            return Some(());
        }
    }
    let head_index = repo.index_from_tree(&tree).ok()?;
    let mut head_entries: HashMap<&[u8], (ObjectId, Mode)> = HashMap::with_capacity(head_index.entries().len());
    for e in head_index.entries() {
        head_entries.insert(e.path(&head_index).as_ref(), (e.id, e.mode));
    }
    for e in index.entries() {
        let path: &[u8] = e.path(index).as_ref();
        if head_entries.remove(path) != Some((e.id, e.mode)) {
            if let Ok(p) = std::str::from_utf8(path) {
                dirty.insert(p.to_owned());
            }
        }
    }
    for path in head_entries.keys() {
        if let Ok(p) = std::str::from_utf8(path) {
            dirty.insert(p.to_owned());
        }
    }
    Some(())
}

/// The files among `candidates` whose content is not their index blob's; `None` when clean
/// filters may apply. `git hash-object` would not do there: `git status` compares with the
/// index in hand (with autocrlf, a blob that already has CRs in the index is not converted),
/// which `hash-object` does not read.
fn changed_content(
    repo: &gix::Repository,
    root: &Path,
    candidates: &[(String, ObjectId)],
    filters: bool,
) -> Option<Vec<String>> {
    if candidates.is_empty() {
        return Some(Vec::new());
    }
    if filters {
        return None;
    }
    let mut changed = Vec::new();
    for (p, old) in candidates {
        let bytes = std::fs::read(root.join(p)).ok()?;
        if gix::objs::compute_hash(repo.object_hash(), gix::objs::Kind::Blob, &bytes).ok()? != *old {
            changed.push(p.clone());
        }
    }
    Some(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A small deterministic generator (xorshift64*), so that a failing case can be replayed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    fn git(root: &Path, args: &[&str]) {
        let out = Command::new("git")
            .args(args)
            .current_dir(root)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    const DIRS: [&str; 7] = ["", "d0/", "d1/", "d0/s0/", "d1/s1/", "build/", "d0/s0/deep/"];
    const NAMES: [&str; 9] =
        ["a.txt", "b.txt", "c.md", "x.log", "keep.log", "run.sh", ".postflight-pending", "crlf.txt", "new file.txt"];
    const IGNORES: [&str; 5] = ["*.log\n!keep.log\n", "build/\n", "s0/\n*.md\n", "/a.txt\nd1/*\n!d1/s1/\n", ""];

    fn random_path(rng: &mut Rng) -> String {
        format!("{}{}", rng.pick(&DIRS), rng.pick(&NAMES))
    }

    fn tracked(root: &Path) -> Vec<String> {
        let out = Command::new("git").args(["ls-files", "-z"]).current_dir(root).output().expect("git");
        out.stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()
    }

    fn write(root: &Path, rel: &str, bytes: &[u8]) {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            if std::fs::symlink_metadata(parent).is_ok_and(|m| !m.is_dir()) {
                let _ = std::fs::remove_file(parent);
            }
            std::fs::create_dir_all(parent).ok();
        }
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(&path).ok();
        }
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(&path).ok();
        }
        let _ = std::fs::write(&path, bytes);
    }

    /// One random change to the repository: edits, deletions, type and mode changes, staging,
    /// commits, renames, ignore rules, racy rewrites, line endings.
    fn mutate(rng: &mut Rng, root: &Path, attributes: bool) {
        let files = tracked(root);
        let some_tracked = |rng: &mut Rng| (!files.is_empty()).then(|| files[rng.below(files.len())].clone());
        match rng.below(18) {
            0 | 1 => {
                let p = random_path(rng);
                let crlf = p.ends_with("crlf.txt");
                let text = if crlf { "one\r\ntwo\r\n".to_owned() } else { format!("content {}\n", rng.next() % 5) };
                write(root, &p, text.as_bytes());
            }
            2 => {
                if let Some(p) = some_tracked(rng) {
                    // Same size, other bytes, written right away (racy when the index is this second's).
                    let len = std::fs::metadata(root.join(&p)).map(|m| m.len() as usize).unwrap_or(3);
                    write(root, &p, &vec![b'a' + (rng.next() % 26) as u8; len]);
                }
            }
            3 => {
                if let Some(p) = some_tracked(rng) {
                    // The same bytes again: new stat data, no change.
                    if let Ok(bytes) = std::fs::read(root.join(&p)) {
                        write(root, &p, &bytes);
                    }
                }
            }
            4 => {
                if let Some(p) = some_tracked(rng) {
                    let _ = std::fs::remove_file(root.join(&p));
                }
            }
            5 => {
                let p = random_path(rng);
                if root.join(&p).exists() || std::fs::symlink_metadata(root.join(&p)).is_ok() {
                    git(root, &["add", "-f", "--", &p]);
                }
            }
            6 => {
                git(root, &["add", "-A"]);
                git(root, &["commit", "-q", "--allow-empty", "-m", "c"]);
            }
            7 => {
                if let Some(p) = some_tracked(rng) {
                    git(root, &["rm", "-q", "-f", "--cached", "--", &p]);
                }
            }
            8 => {
                if let Some(p) = some_tracked(rng) {
                    let to = random_path(rng);
                    if !root.join(&to).exists() && std::fs::symlink_metadata(root.join(&p)).is_ok() {
                        let _ = Command::new("git").args(["mv", "-k", &p, &to]).current_dir(root).output();
                    }
                }
            }
            9 => {
                if let Some(p) = some_tracked(rng) {
                    use std::os::unix::fs::PermissionsExt;
                    if let Ok(md) = std::fs::symlink_metadata(root.join(&p)) {
                        if md.is_file() {
                            let mode = md.permissions().mode() ^ 0o111;
                            let _ = std::fs::set_permissions(root.join(&p), std::fs::Permissions::from_mode(mode));
                        }
                    }
                }
            }
            10 => {
                // A symlink: to a file, to a directory, dangling; over a tracked file or new.
                let p = if rng.below(2) == 0 {
                    some_tracked(rng).unwrap_or_else(|| random_path(rng))
                } else {
                    random_path(rng)
                };
                let target = rng.pick(&["a.txt", "d0", "../outside", "missing"]);
                let path = root.join(&p);
                if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
                    let _ = std::fs::remove_file(&path);
                }
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).ok();
                }
                let _ = std::os::unix::fs::symlink(target, &path);
            }
            11 => {
                let dir = rng.pick(&DIRS);
                write(root, &format!("{dir}.gitignore"), rng.pick(&IGNORES).as_bytes());
            }
            12 => {
                // A directory where a tracked file is (with a file inside), or a file where a
                // directory is.
                if let Some(p) = some_tracked(rng) {
                    let _ = std::fs::remove_file(root.join(&p));
                    write(root, &format!("{p}/inner.txt"), b"inner\n");
                }
            }
            13 => {
                let p = random_path(rng);
                git(root, &["add", "-f", "--", "."]);
                // Staged, then changed in the same instant with the same size.
                if let Ok(bytes) = std::fs::read(root.join(&p)) {
                    let flipped: Vec<u8> = bytes.iter().map(|b| if *b == b'1' { b'2' } else { b'1' }).collect();
                    write(root, &p, &flipped);
                }
            }
            14 => {
                if let Some(p) = some_tracked(rng) {
                    let _ = Command::new("git").args(["checkout", "-q", "--", &p]).current_dir(root).output();
                }
            }
            15 => git(root, &["reset", "-q"]),
            16 => {
                if let Some(p) = some_tracked(rng) {
                    if std::fs::symlink_metadata(root.join(&p)).is_ok_and(|m| m.is_file()) {
                        forge_racy_entry(root, &p);
                    }
                }
            }
            _ if attributes => {
                let line = rng.pick(&["*.txt text eol=crlf\n", "* -text\n", "*.txt text\n", ""]);
                write(root, ".gitattributes", line.as_bytes());
            }
            _ => write(root, &random_path(rng), b"plain\n"),
        }
    }

    /// Rewrites `rel` with other bytes of the same size and gives its index entry the new stat
    /// data but the old blob: what a rewrite within the clock tick of `git add` leaves. Only the
    /// racy check (the entry's mtime is not older than the index file) catches it.
    fn forge_racy_entry(root: &Path, rel: &str) {
        let path = root.join(rel);
        let old = std::fs::read(&path).expect("read");
        let new: Vec<u8> = old.iter().map(|b| if *b == b'#' { b'%' } else { b'#' }).collect();
        std::fs::write(&path, &new).expect("write");
        let mut index = gix::open(root).expect("open").open_index().expect("index");
        let Ok(i) = index.entry_index_by_path(rel.as_bytes().as_bstr()) else { return };
        let md = std::fs::symlink_metadata(&path).expect("stat");
        let stat = &mut index.entries_mut()[i].stat;
        stat.mtime.secs = md.mtime() as u32;
        stat.mtime.nsecs = md.mtime_nsec() as u32;
        stat.ctime.secs = md.ctime() as u32;
        stat.ctime.nsecs = md.ctime_nsec() as u32;
        stat.ino = md.ino() as u32;
        stat.dev = md.dev() as u32;
        stat.uid = md.uid();
        stat.gid = md.gid();
        stat.size = md.len() as u32;
        index.write(gix::index::write::Options::default()).expect("write the index");
    }

    fn canonical(root: &Path) -> BTreeSet<String> {
        super::super::WorkTreeState::read_with_git(root).expect("git status").paths().map(str::to_owned).collect()
    }

    fn fast(root: &Path) -> Option<BTreeSet<String>> {
        let paths = dirty_paths(root)?;
        Some(paths.into_iter().filter(|p| !crate::git::is_transient(p.rsplit('/').next().unwrap_or(p))).collect())
    }

    /// The fast reading agrees with `git status`, and the fast ignore check with `git
    /// check-ignore`, on several hundred random work trees.
    #[test]
    fn agrees_with_git_status_on_random_work_trees() {
        let (repos, rounds) = (36, 14);
        let (mut compared, mut declined, mut ignored_compared) = (0, 0, 0);
        for seed in 0..repos {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (seed as u64 + 1).wrapping_mul(0x1000_0000_01b3));
            let tmp = tempfile::tempdir().expect("tmp");
            let root = tmp.path();
            git(root, &["init", "-q"]);
            match (seed % 3, seed % 2) {
                (1, 0) => git(root, &["config", "core.autocrlf", "true"]),
                (1, _) => git(root, &["config", "core.autocrlf", "input"]),
                (2, 0) => git(root, &["config", "core.fileMode", "false"]),
                _ => {}
            }
            if seed % 5 < 3 {
                // Some repositories start with a commit, others on an unborn branch.
                for _ in 0..4 {
                    let p = random_path(&mut rng);
                    write(root, &p, b"first\n");
                }
                git(root, &["add", "-A"]);
                git(root, &["commit", "-q", "-m", "init"]);
            }
            for round in 0..rounds {
                for _ in 0..=rng.below(3) {
                    // Line-ending settings and attributes in a third of the repositories (where
                    // the fast reading declines whenever a file's stat data changed).
                    mutate(&mut rng, root, seed % 3 == 1);
                }
                let probes: Vec<String> = (0..6)
                    .map(|_| match rng.below(3) {
                        0 => rng.pick(&DIRS).trim_end_matches('/').to_owned(),
                        _ => random_path(&mut rng),
                    })
                    .filter(|p| !p.is_empty())
                    .collect();
                let expected_ignored = super::super::status::ignored_with_git(root, &probes).expect("check-ignore");
                if let Some(got) = ignored(root, &probes) {
                    assert_eq!(got, expected_ignored, "seed {seed}, round {round}: ignored among {probes:?}");
                    ignored_compared += 1;
                }
                let expected = canonical(root);
                match fast(root) {
                    Some(got) => {
                        assert_eq!(got, expected, "seed {seed}, round {round}");
                        compared += 1;
                    }
                    None => declined += 1,
                }
            }
        }
        assert!(compared >= 300, "only {compared} compared, {declined} declined");
        assert!(ignored_compared >= 300, "only {ignored_compared} ignore checks compared");
    }

    #[test]
    fn declines_what_it_does_not_reimplement() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        git(root, &["init", "-q"]);
        std::fs::write(root.join("a"), "a").expect("w");
        git(root, &["add", "a"]);
        assert_eq!(fast(root), Some(["a".to_owned()].into()));
        // A nested repository.
        std::fs::create_dir(root.join("inner")).expect("mkdir");
        git(&root.join("inner"), &["init", "-q"]);
        assert_eq!(fast(root), None);
        assert_eq!(canonical(root), ["a".to_owned(), "inner/".to_owned()].into());
        std::fs::remove_dir_all(root.join("inner")).expect("rm");
        // Untracked files in a tracked directory an ignore rule excludes are ignored too.
        std::fs::create_dir(root.join("build")).expect("mkdir");
        std::fs::write(root.join("build/kept"), "k").expect("w");
        git(root, &["add", "build/kept"]);
        std::fs::write(root.join(".gitignore"), "build/\n").expect("w");
        std::fs::write(root.join("build/new"), "n").expect("w");
        let expected: BTreeSet<String> = [".gitignore", "a", "build/kept"].map(str::to_owned).into();
        assert_eq!(canonical(root), expected);
        assert_eq!(fast(root), Some(expected));
        // A skip-worktree entry.
        git(root, &["update-index", "--skip-worktree", "a"]);
        assert_eq!(fast(root), None);
    }
}
