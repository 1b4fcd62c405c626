//! Recovery of the lock files (`index.lock`, `HEAD.lock`, `refs/heads/<branch>.lock`) left by a
//! postflight commit that was killed (SIGKILL) while it held them. Without this, every later
//! commit of the resumed run would wait for the dead process's locks and fail, as `git commit`
//! does after a kill.
//!
//! Postflight commits take a `flock` beside the index first (the kernel drops it when its holder
//! dies), and while they hold lock files they keep a record of them: their pid and each lock
//! file's device, inode and path. A lock file is added to the record right after it is created
//! and taken out right before it is released, so a record names only locks that were never
//! released. A later commit holding the `flock` removes a lock file only when a record names
//! exactly that file and a process that no longer exists; any other lock file (a running git
//! command's) is waited for as before.

use std::path::{Path, PathBuf};

use crate::atomic::Lock;
use crate::error::Result;

/// How long a commit waits for another postflight commit of the same index.
const COMMIT_LOCK_WAIT: std::time::Duration = crate::ledger::LOCK_TIMEOUT;

/// The `flock` serialising postflight commits of one index; held until dropped.
pub(super) struct CommitLock {
    _lock: Lock,
    record: PathBuf,
}

/// The record of the lock files held; removed when dropped (before the index lock is released).
pub(super) struct Record {
    path: PathBuf,
}

impl Record {
    /// Records that this process holds exactly `locks` (lock files it created; missing ones
    /// are left out). Best effort: without the record a kill leaves the locks for the user to
    /// remove. A plain write (no fsync) keeps the window between creating a lock and recording
    /// it short; a torn record does not parse and so never removes anything.
    pub(super) fn set(&self, locks: &[PathBuf]) {
        let mut text = format!("{}\n", std::process::id());
        for lock in locks {
            if let Some((dev, ino)) = identity(lock) {
                text.push_str(&format!("{dev} {ino} {}\n", lock.display()));
            }
        }
        let _ = std::fs::write(&self.path, text);
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn record_path(index_path: &Path) -> PathBuf {
    index_path.with_file_name("postflight-index-lock.owner")
}

impl CommitLock {
    /// Takes the commit lock of `index_path` and removes its `index.lock` when a killed
    /// postflight commit left it.
    ///
    /// # Errors
    /// I/O errors; a refusal when another postflight commit holds the lock too long.
    pub(super) fn acquire(index_path: &Path) -> Result<CommitLock> {
        let lock = Lock::acquire(&index_path.with_file_name("postflight-commit.lock"), COMMIT_LOCK_WAIT)?;
        let record = record_path(index_path);
        if let Ok(text) = std::fs::read_to_string(&record) {
            // We hold the commit lock, so the process that wrote the record is not committing.
            for lock_file in stale_locks(&text) {
                let _ = std::fs::remove_file(&lock_file);
            }
            let _ = std::fs::remove_file(&record);
        }
        Ok(CommitLock { _lock: lock, record })
    }

    /// Records that this process holds `lock_file` (the `index.lock` it just created).
    pub(super) fn record(&self, lock_file: &Path) -> Record {
        let record = Record { path: self.record.clone() };
        record.set(&[lock_file.to_path_buf()]);
        record
    }
}

/// `index.lock` beside `index_path`.
#[cfg(test)]
fn lock_path(index_path: &Path) -> PathBuf {
    let mut name = index_path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    index_path.with_file_name(name)
}

/// The lock files a record (`pid`, then `dev ino path` per line) names that exist as recorded,
/// when the recording process is gone; nothing for a live process or a garbled record.
fn stale_locks(record: &str) -> Vec<PathBuf> {
    let mut lines = record.lines();
    let Some(Ok(pid)) = lines.next().map(|l| l.trim().parse::<u32>()) else { return Vec::new() };
    if crate::workflow::marker::process_alive(pid) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for line in lines {
        let mut fields = line.splitn(3, ' ');
        let (Some(Ok(dev)), Some(Ok(ino)), Some(path)) =
            (fields.next().map(str::parse::<u64>), fields.next().map(str::parse::<u64>), fields.next())
        else {
            return Vec::new();
        };
        let path = PathBuf::from(path);
        if path.extension().is_some_and(|e| e == "lock") && identity(&path) == Some((dev, ino)) {
            out.push(path);
        }
    }
    out
}

#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().filter(|m| m.is_file()).map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_path: &Path) -> Option<(u64, u64)> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A pid that no process has: beyond the kernel's pid_max.
    const DEAD_PID: u32 = 4_194_305;

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().expect("tmp");
        let index = tmp.path().join("index");
        std::fs::write(&index, "index").expect("index");
        let lock = lock_path(&index);
        (tmp, index, lock)
    }

    fn write_record(index: &Path, pid: u32, of: &Path) {
        let (dev, ino) = identity(of).expect("identity");
        std::fs::write(record_path(index), format!("{pid}\n{dev} {ino} {}\n", lock_path(index).display()))
            .expect("record");
    }

    #[test]
    fn a_lock_recorded_by_a_dead_postflight_commit_is_removed() {
        let (_tmp, index, lock) = setup();
        std::fs::write(&lock, "half-written index").expect("lock");
        write_record(&index, DEAD_PID, &lock);
        let held = CommitLock::acquire(&index).expect("acquire");
        assert!(!lock.exists(), "the dead commit's index.lock is gone");
        assert!(!record_path(&index).exists());
        drop(held);
    }

    #[test]
    fn a_lock_of_a_live_process_or_another_file_is_left_alone() {
        // Recorded by a live process (this one).
        let (_tmp, index, lock) = setup();
        std::fs::write(&lock, "x").expect("lock");
        write_record(&index, std::process::id(), &lock);
        drop(CommitLock::acquire(&index).expect("acquire"));
        assert!(lock.exists(), "a live owner's lock stays");
        assert!(!record_path(&index).exists(), "the record is consumed either way");

        // A dead owner, but the record names another file (the lock was released and a git
        // command has made a new one).
        let other = index.with_file_name("other");
        std::fs::write(&other, "y").expect("other");
        write_record(&index, DEAD_PID, &other);
        drop(CommitLock::acquire(&index).expect("acquire"));
        assert!(lock.exists(), "another process's index.lock stays");

        // No record at all, and a garbled one.
        drop(CommitLock::acquire(&index).expect("acquire"));
        assert!(lock.exists());
        std::fs::write(record_path(&index), "garbage 1 2\n").expect("record");
        drop(CommitLock::acquire(&index).expect("acquire"));
        assert!(lock.exists());
        // A recorded file that is not a lock file is never removed.
        let (dev, ino) = identity(&index).expect("identity");
        std::fs::write(record_path(&index), format!("{DEAD_PID}\n{dev} {ino} {}\n", index.display())).expect("record");
        drop(CommitLock::acquire(&index).expect("acquire"));
        assert!(index.exists());
    }

    #[test]
    fn every_recorded_lock_of_a_dead_commit_is_removed() {
        let (tmp, index, lock) = setup();
        let head_lock = tmp.path().join("HEAD.lock");
        let branch_lock = tmp.path().join("refs/heads/main.lock");
        std::fs::create_dir_all(branch_lock.parent().expect("dir")).expect("mkdir");
        for f in [&lock, &head_lock, &branch_lock] {
            std::fs::write(f, "x").expect("lock");
        }
        let held = CommitLock::acquire(&index).expect("acquire");
        let record = held.record(&lock);
        record.set(&[lock.clone(), head_lock.clone(), branch_lock.clone(), tmp.path().join("missing.lock")]);
        let text = std::fs::read_to_string(record_path(&index)).expect("record");
        assert_eq!(text.lines().count(), 4, "the pid and the three existing locks: {text}");
        assert!(stale_locks(&text).is_empty(), "this process is alive");
        let dead = text.replacen(&std::process::id().to_string(), &DEAD_PID.to_string(), 1);
        std::mem::forget(record);
        drop(held);
        std::fs::write(record_path(&index), dead).expect("record");
        drop(CommitLock::acquire(&index).expect("acquire"));
        assert!(!lock.exists() && !head_lock.exists() && !branch_lock.exists());
    }

    #[test]
    fn the_record_lives_exactly_as_long_as_its_guard() {
        let (_tmp, index, lock) = setup();
        let held = CommitLock::acquire(&index).expect("acquire");
        std::fs::write(&lock, "x").expect("lock");
        let record = held.record(&lock);
        let text = std::fs::read_to_string(record_path(&index)).expect("recorded");
        assert!(text.starts_with(&format!("{}\n", std::process::id())), "{text}");
        assert!(stale_locks(&text).is_empty(), "this process is alive");
        drop(record);
        assert!(!record_path(&index).exists());
    }
}
