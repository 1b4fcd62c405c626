//! Crash-safe file replacement and the cross-process ledger lock. A write goes to a temp
//! file in the target's own directory, keeps the original's permissions, is synced and then
//! renamed over the target; nothing is ever written through `/tmp`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long a command waits for another one holding a lock (the ledger's, git's `index.lock`).
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Replaces `path` with `bytes` atomically (temp file + fsync + rename in the same directory).
///
/// # Errors
/// I/O errors, naming the file.
///
/// # Writes
/// `path` (and a short-lived `.<name>.<random>.tmp` beside it).
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    stage(path, bytes)?.commit()
}

/// A file's new content, fully written and synced to a temp file beside it, waiting to be
/// renamed over the file by [`Staged::commit`]. Dropped without commit, the temp file is removed
/// and the file is unchanged.
#[derive(Debug)]
pub struct Staged {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
}

/// Writes `bytes` to a synced temp file in `path`'s directory with `path`'s permissions (0644 for
/// a new file), without touching `path` yet. Staging every file of a transaction before renaming
/// any means an error or a kill while writing leaves all of them unchanged. A symlinked `path` is
/// followed, so the link survives and its target gets the new content.
///
/// # Errors
/// I/O errors, naming the file.
pub fn stage(path: &Path, bytes: &[u8]) -> Result<Staged> {
    stage_swept(path, bytes, true, true)
}

/// Like [`write`] but without the sync: the file is replaced atomically for every process, but
/// only has to survive processes (a kill), not the machine (a power cut).
///
/// # Errors
/// I/O errors, naming the file.
///
/// # Writes
/// `path` (and a short-lived `.<name>.<random>.tmp` beside it).
pub fn write_unsynced(path: &Path, bytes: &[u8]) -> Result<()> {
    stage_swept(path, bytes, true, false)?.commit()
}

/// [`stage`], sweeping the directory for leftovers of the file's killed writers or not, and
/// syncing or not.
fn stage_swept(path: &Path, bytes: &[u8], sweep: bool, sync: bool) -> Result<Staged> {
    let (target, dir, name) = placement(path)?;
    let dir = dir.as_path();
    if sweep {
        sweep_stale_temp_files(dir, &[name.as_str()], STALE_TEMP_AGE);
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file for", path, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io("write", path, e))?;
    match std::fs::metadata(&target) {
        Ok(meta) => tmp.as_file().set_permissions(meta.permissions()),
        Err(_) => set_new_file_permissions(tmp.as_file()),
    }
    .map_err(|e| Error::io("set permissions of", path, e))?;
    if sync {
        tmp.as_file().sync_all().map_err(|e| Error::io("sync", path, e))?;
    }
    Ok(Staged { tmp, target })
}

/// Where a write of `path` goes: the file written (a symlink's target, so the link survives),
/// the directory its temp file is made in, and its name.
fn placement(path: &Path) -> Result<(PathBuf, PathBuf, String)> {
    let target = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|e| Error::io("resolve symlink", path, e))?
        }
        _ => path.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok((target, dir, name))
}

/// Stages several files, one after the other, each directory swept of stale temp files once. On
/// error the files staged so far are dropped (their temp files removed) and the first error is
/// returned. (A thread per file, to overlap the syncs, paid nothing measurable at the real size
/// or 1,000 tasks and was slower at 10,000: docs/performance.md, issue 13.)
///
/// # Errors
/// As [`stage`].
pub fn stage_all(files: &[(&Path, &[u8])]) -> Result<Vec<Staged>> {
    if files.len() < 2 {
        return files.iter().map(|(path, bytes)| stage(path, bytes)).collect();
    }
    // Each directory is swept once for all its files (listing `specs/` of a large ledger, with
    // its 10,000 task directories, is not free).
    let mut dirs: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for (path, _) in files {
        let (_, dir, name) = placement(path)?;
        match dirs.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, names)) => names.push(name),
            None => dirs.push((dir, vec![name])),
        }
    }
    for (dir, names) in &dirs {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        sweep_stale_temp_files(dir, &names, STALE_TEMP_AGE);
    }
    files.iter().map(|(path, bytes)| stage_swept(path, bytes, false, true)).collect()
}

impl Staged {
    /// Keeps the synced temp file on disk under its temp name (it is no longer removed on drop)
    /// and returns (temp path, target), for a journaled rename done later.
    ///
    /// # Errors
    /// I/O errors, naming the file.
    pub fn keep(self) -> Result<(PathBuf, PathBuf)> {
        let Staged { tmp, target } = self;
        let tmp =
            tmp.into_temp_path().keep().map_err(|e| Error::io("keep the temporary file for", &target, e.error))?;
        Ok((tmp, target))
    }

    /// Renames the temp file over the target (one atomic step).
    ///
    /// # Errors
    /// I/O errors, naming the file.
    pub fn commit(self) -> Result<()> {
        let Staged { tmp, target } = self;
        tmp.persist(&target).map_err(|e| Error::io("replace", &target, e.error))?;
        Ok(())
    }
}

/// How old a leftover temp file must be before a later write removes it. A writer holds its
/// temp file for milliseconds; one this old belongs to a process that was killed mid-write.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// Removes the leftovers `.<name>.<random>.tmp` of killed writers of each of `names` in `dir`
/// that are older than `min_age`, and returns how many were removed. Best effort: a file that
/// cannot be inspected or removed is left alone, because cleaning up must never fail a write.
pub fn sweep_stale_temp_files(dir: &Path, names: &[&str], min_age: Duration) -> usize {
    let prefixes: Vec<String> = names.iter().map(|name| format!(".{name}.")).collect();
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.filter_map(|e| e.ok()) {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else { continue };
        let leftover = |prefix: &String| {
            file_name.starts_with(prefix.as_str()) && file_name.ends_with(".tmp") && file_name.len() > prefix.len() + 4
        };
        if !file_name.starts_with('.') || !prefixes.iter().any(leftover) {
            continue;
        }
        let old_enough = entry
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= min_age);
        if old_enough && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A new ledger file gets 0644 (a temp file starts as 0600, which would hide it from others).
fn set_new_file_permissions(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

/// Opens (creating) a lock file without truncating it.
fn open_lock_file(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open lock file", path, e))
}

/// An exclusive advisory lock on a lock file, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
}

impl Lock {
    /// Takes the exclusive lock on `path` (created if missing), waiting up to `timeout`.
    ///
    /// # Errors
    /// I/O errors, or a refusal when another process holds the lock for longer than `timeout`.
    pub fn acquire(path: &Path, timeout: Duration) -> Result<Lock> {
        let file = open_lock_file(path)?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Lock { _file: file, path: path.to_path_buf() }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Err(Error::refused(
                            format!(
                                "{} is held by another process for more than {}s",
                                path.display(),
                                timeout.as_secs()
                            ),
                            Some("another postflight command is running on this repository; wait for it and retry"),
                        ));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
            }
        }
    }

    /// Takes the lock only if it is free right now; `None` when another process holds it.
    ///
    /// # Errors
    /// I/O errors opening the lock file.
    pub fn try_acquire(path: &Path) -> Result<Option<Lock>> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Lock { _file: file, path: path.to_path_buf() })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_keeps_permissions_and_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = tmp.path().join("state.json");
        std::fs::write(&p, "old").expect("write");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        }
        write(&p, b"new").expect("atomic write");
        assert_eq!(std::fs::read(&p).expect("read"), b"new");
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777, 0o640);
        }
        let names: Vec<_> = std::fs::read_dir(tmp.path()).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn stale_temp_files_of_killed_writers_are_swept_fresh_ones_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = tmp.path().join("state.json");
        for name in [".state.json.abc123.tmp", ".TODO.md.abc123.tmp", "state.json.tmp", ".state.json..tmp"] {
            std::fs::write(tmp.path().join(name), "x").expect("write");
        }
        // Nothing is old enough yet: a fresh temp file may belong to a live writer.
        write(&p, b"1").expect("write");
        assert_eq!(std::fs::read_dir(tmp.path()).expect("ls").count(), 5);
        // With no minimum age, only this file's own leftovers go.
        assert_eq!(sweep_stale_temp_files(tmp.path(), &["state.json"], Duration::ZERO), 1);
        assert!(!tmp.path().join(".state.json.abc123.tmp").exists());
        assert!(tmp.path().join(".TODO.md.abc123.tmp").exists());
        assert!(tmp.path().join("state.json.tmp").exists());
    }

    #[test]
    fn staging_several_files_sweeps_the_old_leftovers_of_each() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let old = std::time::SystemTime::now() - 2 * STALE_TEMP_AGE;
        for name in [".state.json.old111.tmp", ".TODO.md.old222.tmp", ".other.md.old333.tmp"] {
            let f = std::fs::File::create(tmp.path().join(name)).expect("create");
            f.set_modified(old).expect("age it");
        }
        let (state, todo) = (tmp.path().join("state.json"), tmp.path().join("TODO.md"));
        let staged = stage_all(&[(&state, b"{}\n"), (&todo, b"# TODO\n")]).expect("stage");
        staged.into_iter().try_for_each(Staged::commit).expect("commit");
        let mut names: Vec<String> = std::fs::read_dir(tmp.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".other.md.old333.tmp", "TODO.md", "state.json"]);
    }

    #[test]
    fn a_symlinked_file_keeps_its_link_and_a_dropped_stage_changes_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(tmp.path().join("real")).expect("mkdir");
        let target = tmp.path().join("real/TODO.md");
        std::fs::write(&target, "old").expect("write");
        let link = tmp.path().join("TODO.md");
        std::os::unix::fs::symlink("real/TODO.md", &link).expect("symlink");
        write(&link, b"new").expect("write through the link");
        assert!(std::fs::symlink_metadata(&link).expect("meta").file_type().is_symlink());
        assert_eq!(std::fs::read(&target).expect("read"), b"new");

        drop(stage(&target, b"never").expect("stage"));
        assert_eq!(std::fs::read(&target).expect("read"), b"new");
        assert_eq!(std::fs::read_dir(tmp.path().join("real")).expect("ls").count(), 1, "temp file removed");
    }

    #[test]
    fn second_lock_waits_then_times_out() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = tmp.path().join("x.lock");
        let _held = Lock::acquire(&p, Duration::from_secs(1)).expect("first");
        assert!(Lock::try_acquire(&p).expect("try").is_none());
        let err = Lock::acquire(&p, Duration::from_millis(30)).expect_err("held");
        assert_eq!(err.kind(), crate::error::Kind::Refused);
    }
}
