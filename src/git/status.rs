//! The work tree as `git status` sees it, for a run's before-and-after questions: which files
//! differ from HEAD (or are untracked and not ignored) and how each one looked, so that a later
//! reading tells which of them changed in between. Transient files are left out.
//!
//! Also the ignore check for paths an agent names (`git check-ignore`, which knows that a
//! tracked file is never ignored).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use crate::error::Result;
use crate::git::cli;

/// How one file looked: gone, or its size, modification time and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// The path does not exist (a deletion).
    Gone,
    /// The file's size, modification time and inode.
    File(u64, Option<SystemTime>, u64),
}

impl Stamp {
    /// `null` for gone, else `[size, seconds, nanoseconds, inode]` (`-1` seconds: no time).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Stamp::Gone => serde_json::Value::Null,
            Stamp::File(len, mtime, ino) => {
                let (secs, nanos) = mtime
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map_or((-1, 0), |d| (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos()));
                serde_json::json!([len, secs, nanos, ino])
            }
        }
    }

    /// Reads what [`Stamp::to_json`] wrote.
    pub fn from_json(value: &serde_json::Value) -> Option<Stamp> {
        if value.is_null() {
            return Some(Stamp::Gone);
        }
        let a = value.as_array().filter(|a| a.len() == 4)?;
        let (len, secs, nanos, ino) = (a[0].as_u64()?, a[1].as_i64()?, a[2].as_u64()?, a[3].as_u64()?);
        let mtime = u64::try_from(secs)
            .ok()
            .map(|s| SystemTime::UNIX_EPOCH + std::time::Duration::new(s, u32::try_from(nanos).unwrap_or(0)));
        Some(Stamp::File(len, mtime, ino))
    }

    /// How `path` looks now.
    pub fn of(path: &Path) -> Stamp {
        match std::fs::symlink_metadata(path) {
            Ok(md) => {
                let ino = std::os::unix::fs::MetadataExt::ino(&md);
                Stamp::File(md.len(), md.modified().ok(), ino)
            }
            Err(_) => Stamp::Gone,
        }
    }
}

/// The files that differ from HEAD or the index, or are untracked and not ignored, each with
/// how it looked when read (repository-relative, `/`-separated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkTreeState {
    files: BTreeMap<String, Stamp>,
}

impl WorkTreeState {
    /// Reads the state of the work tree at `root`.
    ///
    /// # Errors
    /// git cannot be run or fails.
    pub fn read(root: &Path) -> Result<WorkTreeState> {
        match super::status_fast::dirty_paths(root) {
            Some(paths) => Ok(WorkTreeState::stamped(root, paths.iter().map(String::as_str))),
            None => WorkTreeState::read_with_git(root),
        }
    }

    /// The canonical reading: the paths `git status` prints. [`WorkTreeState::read`] finds
    /// the same set in-process where it can (`status_fast`, checked against this one by a
    /// differential test) and falls back to this one elsewhere.
    ///
    /// # Errors
    /// git cannot be run or fails.
    pub fn read_with_git(root: &Path) -> Result<WorkTreeState> {
        let out = cli::run(
            root,
            &["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--ignore-submodules=all"],
            None,
            &[0],
        )?;
        // `XY path`; with --no-renames every record is one path.
        let paths = out.split(|b| *b == 0).filter_map(|record| std::str::from_utf8(record.get(3..)?).ok());
        Ok(WorkTreeState::stamped(root, paths))
    }

    /// The state of `paths` (transient files and empty paths left out) as they look now.
    fn stamped<'p>(root: &Path, paths: impl Iterator<Item = &'p str>) -> WorkTreeState {
        let files = paths
            .filter(|path| !path.is_empty() && !crate::git::is_transient(path.rsplit('/').next().unwrap_or(path)))
            .map(|path| (path.to_owned(), Stamp::of(&root.join(path))))
            .collect();
        WorkTreeState { files }
    }

    /// Whether `path` differed from HEAD (or was untracked) when this state was read.
    pub fn is_dirty(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// Records `path` (repository-relative) as it looks now, dirty or not: for a file written
    /// after the state was read by someone whose change is not to be counted later.
    pub fn note(&mut self, root: &Path, path: &str) {
        self.files.insert(path.to_owned(), Stamp::of(&root.join(path)));
    }

    /// Whether `path` was dirty when this state was read and looks the same now (an edit that
    /// was there before and is untouched since).
    pub fn unchanged_since(&self, root: &Path, path: &str) -> bool {
        self.files.get(path).is_some_and(|s| *s == Stamp::of(&root.join(path)))
    }

    /// The dirty paths, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The state as JSON, to be read back by [`WorkTreeState::from_json`] (a resumed run
    /// compares with the state its interrupted predecessor started from).
    pub fn to_json(&self) -> serde_json::Value {
        let files = self.files.iter().map(|(p, stamp)| (p.clone(), stamp.to_json())).collect();
        serde_json::Value::Object(files)
    }

    /// Reads what [`WorkTreeState::to_json`] wrote; `None` when it is not of that shape.
    pub fn from_json(value: &serde_json::Value) -> Option<WorkTreeState> {
        let files = value
            .as_object()?
            .iter()
            .map(|(p, v)| Some((p.clone(), Stamp::from_json(v)?)))
            .collect::<Option<BTreeMap<_, _>>>()?;
        Some(WorkTreeState { files })
    }

    /// The paths that changed between this state and `later`: dirty in `later` and either clean
    /// here or looking different. A path dirty here and clean in `later` was committed or
    /// reverted, not changed by whoever ran in between.
    pub fn changed_until(&self, later: &WorkTreeState) -> Vec<String> {
        later.files.iter().filter(|(p, stamp)| self.files.get(*p) != Some(stamp)).map(|(p, _)| p.clone()).collect()
    }
}

/// The paths among `paths` that git ignores (tracked files are never ignored): found
/// in-process where `status_fast` can, else by [`ignored_with_git`].
///
/// # Errors
/// git cannot be run or fails.
pub fn ignored(root: &Path, paths: &[String]) -> Result<Vec<String>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    match super::status_fast::ignored(root, paths) {
        Some(ignored) => Ok(ignored),
        None => ignored_with_git(root, paths),
    }
}

/// The canonical ignore check: `git check-ignore`, the reading `status_fast::ignored` is
/// tested against.
///
/// # Errors
/// git cannot be run or fails.
pub(super) fn ignored_with_git(root: &Path, paths: &[String]) -> Result<Vec<String>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let input: Vec<u8> = paths.iter().flat_map(|p| p.bytes().chain([0])).collect();
    // Exit 1: none of them is ignored.
    let out = cli::run(root, &["check-ignore", "-z", "--stdin"], Some(&input), &[0, 1])?;
    Ok(out.split(|b| *b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .expect("git")
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn dirty_files_and_what_changed_later() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        git(root, &["init", "-q"]);
        std::fs::write(root.join(".gitignore"), "*.log\n").expect("w");
        std::fs::write(root.join("a.txt"), "a").expect("w");
        std::fs::write(root.join("b.txt"), "b").expect("w");
        git(root, &["add", "."]);
        git(root, &["commit", "-qm", "init"]);
        std::fs::write(root.join("a.txt"), "user's edit").expect("w");
        std::fs::create_dir_all(root.join("d/e")).expect("mkdir");
        std::fs::write(root.join("d/e/new.txt"), "new").expect("w");
        std::fs::write(root.join("x.log"), "ignored").expect("w");
        std::fs::write(root.join(".postflight-pending"), "{}").expect("w");
        let before = WorkTreeState::read(root).expect("status");
        assert_eq!(before.paths().collect::<Vec<_>>(), ["a.txt", "d/e/new.txt"]);
        std::fs::write(root.join("b.txt"), "agent").expect("w");
        std::fs::write(root.join("a.txt"), "user's edit, then the agent's").expect("w");
        let after = WorkTreeState::read(root).expect("status");
        assert_eq!(before.changed_until(&after), ["a.txt", "b.txt"]);
        let back = WorkTreeState::from_json(&before.to_json()).expect("round trip");
        assert_eq!(back, before);
        assert_eq!(
            ignored(root, &["x.log".into(), "a.txt".into(), "y.log".into()]).expect("ignored"),
            ["x.log", "y.log"]
        );
        assert!(ignored(root, &["a.txt".into()]).expect("none").is_empty());
    }
}
