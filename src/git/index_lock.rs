//! The index lock of a postflight commit, and recovery of the lock files (`index.lock`,
//! `HEAD.lock`, `refs/heads/<branch>.lock`) left by a postflight commit that was killed
//! (SIGKILL) while it held them. Without the recovery, every later commit of the resumed run
//! would wait for the dead process's locks and fail, as `git commit` does after a kill.
//!
//! Postflight commits take a `flock` beside the index first (the kernel drops it when its holder
//! dies) and keep a record of the lock files they hold: their pid, then one line per lock file.
//! `index.lock` is made as git makes it (exclusively; it fails while another process holds
//! it), but as a hard link to a private file whose inode is recorded before the link exists, so
//! there is no moment at which a kill leaves an unrecorded `index.lock`. Reference locks are
//! recorded, before the update creates them, by the content gix writes into them: the new
//! commit's id, which no other process can be writing (or nothing yet, when the kill came
//! between creating the lock and writing it). A line stays in the record until its lock is
//! released.
//!
//! A later commit holding the `flock` removes a lock file only when a record of a process that
//! no longer exists names exactly that file (same inode, or the recorded content); any other
//! lock file (a running git command's) is waited for and respected as before.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::atomic::Lock;
use crate::error::{Error, Result};

/// How long a commit waits for another postflight commit of the same index.
const COMMIT_LOCK_WAIT: Duration = crate::atomic::LOCK_TIMEOUT;

/// A held `index.lock`, with the commit `flock` and the record of every lock file held.
pub(super) struct IndexLock {
    _commit_lock: Lock,
    index_path: PathBuf,
    lock_path: PathBuf,
    record_path: PathBuf,
    /// The record's lines after the pid: `ino <dev> <ino> <path>` or `content <text> <path>`
    /// (`text` with `\n` written as `\\n`; it never holds a space).
    lines: Vec<String>,
    file: File,
    identity: (u64, u64),
    released: bool,
}

impl IndexLock {
    /// Takes the commit lock, removes lock files a killed postflight commit left, and creates
    /// `index.lock`, waiting up to `wait` for another process's.
    ///
    /// # Errors
    /// A refusal when the lock stays held; I/O errors.
    pub(super) fn acquire(index_path: &Path, wait: Duration) -> Result<IndexLock> {
        let dir = index_path.parent().unwrap_or(Path::new("."));
        let commit_lock = Lock::acquire(&dir.join("postflight-commit.lock"), COMMIT_LOCK_WAIT)?;
        let record_path = dir.join("postflight-locks.owner");
        if let Ok(text) = std::fs::read_to_string(&record_path) {
            // We hold the commit lock, so the process that wrote the record is not committing.
            let written = std::fs::metadata(&record_path).and_then(|m| m.modified()).ok();
            for stale in stale_locks_written(&text, written) {
                let _ = std::fs::remove_file(stale);
            }
            let _ = std::fs::remove_file(&record_path);
        }
        let lock_path = lock_path(index_path);
        let private = dir.join(format!("postflight-index-{}.lock", std::process::id()));
        let _ = std::fs::remove_file(&private);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&private)
            .map_err(|e| Error::io("create", &private, e))?;
        let identity = identity(&private)
            .ok_or_else(|| Error::io("inspect", &private, std::io::Error::other("the new file has no identity")))?;
        let lines = vec![line_ino(identity, &private), line_ino(identity, &lock_path)];
        let mut lock = IndexLock {
            _commit_lock: commit_lock,
            index_path: index_path.to_path_buf(),
            lock_path,
            record_path,
            lines,
            file,
            identity,
            // Nothing to release until the link exists.
            released: true,
        };
        lock.write_record();
        let linked = lock.link(&private, wait);
        let _ = std::fs::remove_file(&private);
        lock.lines.remove(0);
        linked?;
        lock.released = false;
        lock.write_record();
        Ok(lock)
    }

    /// Links the private file to `index.lock`, exclusively, as git creates the lock.
    fn link(&self, private: &Path, wait: Duration) -> Result<()> {
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(1);
        loop {
            match std::fs::hard_link(private, &self.lock_path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if Instant::now() >= deadline {
                        return Err(Error::Git {
                            message: format!(
                                "{} is locked by another git process ({} still exists after {}s)",
                                self.index_path.display(),
                                self.lock_path.display(),
                                wait.as_secs()
                            ),
                            refused: true,
                            hint: Some(
                                "wait for the other git command to finish; if none is running, delete the .lock file"
                                    .into(),
                            ),
                        });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(Error::io("create", &self.lock_path, e)),
            }
        }
    }

    /// Records the reference lock files an update is about to create, by the content gix writes
    /// into them (`<new commit id>\n`). Content with a space cannot be recorded and is left out.
    pub(super) fn record_ref_locks(&mut self, locks: &[(PathBuf, String)]) {
        self.lines.truncate(1);
        for (path, content) in locks {
            if !content.contains(' ') {
                self.lines.push(format!("content {} {}", content.replace('\n', "\\n"), path.display()));
            }
        }
        self.write_record();
    }

    /// Takes the reference locks out of the record (they were released).
    pub(super) fn forget_ref_locks(&mut self) {
        self.lines.truncate(1);
        self.write_record();
    }

    /// Writes `index` into `index.lock` and renames it over the index (git's commit of a lock).
    ///
    /// # Errors
    /// I/O errors; the lock is then released and the index unchanged.
    pub(super) fn commit(mut self, index: &gix::index::File) -> Result<()> {
        let failed = |e: &dyn std::fmt::Display| Error::Git {
            message: format!("cannot write the index: {e}"),
            refused: false,
            hint: None,
        };
        // The same bytes as gix's own write, but the trailing checksum is computed over the
        // whole buffer at once instead of over each of the many small writes (in a repository
        // of 10,000 files that was a fifth of a commit).
        let mut bytes = Vec::with_capacity(1 << 16);
        let options = gix::index::write::Options { skip_hash: true, ..Default::default() };
        index.write_to(&mut bytes, options).map_err(|e| failed(&e))?;
        let body = bytes.len() - index.object_hash().len_in_bytes();
        let mut hasher = gix::hash::hasher(index.object_hash());
        hasher.update(&bytes[..body]);
        let checksum = hasher.try_finalize().map_err(|e| failed(&e))?;
        bytes[body..].copy_from_slice(checksum.as_bytes());
        self.file.write_all(&bytes).map_err(|e| Error::io("write", &self.lock_path, e))?;
        std::fs::rename(&self.lock_path, &self.index_path).map_err(|e| Error::io("replace", &self.index_path, e))?;
        self.released = true;
        Ok(())
    }

    /// The record: pid, then the lines. Written beside and renamed over the old one, so a kill
    /// leaves the old record or the new one, never an empty one (no fsync: it only has to
    /// survive the process, not the machine).
    fn write_record(&self) {
        let mut text = format!("{}\n", std::process::id());
        for l in &self.lines {
            text.push_str(l);
            text.push('\n');
        }
        let mut tmp = self.record_path.clone().into_os_string();
        tmp.push(".tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &self.record_path);
        }
    }
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        // The lock goes first, then its record: a kill in between leaves a record naming no
        // existing file, never a lock without a record.
        if !self.released && identity(&self.lock_path) == Some(self.identity) {
            let _ = std::fs::remove_file(&self.lock_path);
        }
        let _ = std::fs::remove_file(&self.record_path);
    }
}

fn line_ino((dev, ino): (u64, u64), path: &Path) -> String {
    format!("ino {dev}:{ino} {}", path.display())
}

/// `<index>.lock`.
fn lock_path(index_path: &Path) -> PathBuf {
    let mut name = index_path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    index_path.with_file_name(name)
}

/// [`stale_locks_written`] of a record whose time of writing is unknown.
#[cfg(test)]
fn stale_locks(record: &str) -> Vec<PathBuf> {
    stale_locks_written(record, None)
}

/// Whether the process that has `pid` now started after the record was `written`: then it
/// cannot have written it, the pid was recycled (the record keeps the format of a bare pid; its
/// own modification time stands in for the writer's start time).
fn recycled(pid: u32, written: Option<std::time::SystemTime>) -> bool {
    written.is_some_and(|t| crate::sys::started_after(pid, t))
}

/// The files a record names that are still as recorded, when the recording process is gone
/// (or its pid now belongs to a process started after the record was `written`); nothing for a
/// live process or a garbled record. Only `*.lock` files are ever named.
fn stale_locks_written(record: &str, written: Option<std::time::SystemTime>) -> Vec<PathBuf> {
    let mut lines = record.lines();
    let Some(Ok(pid)) = lines.next().map(|l| l.trim().parse::<u32>()) else { return Vec::new() };
    if crate::sys::process_alive(pid, None) && !recycled(pid, written) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for line in lines {
        let mut fields = line.splitn(3, ' ');
        let (Some(kind), Some(key), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            return Vec::new();
        };
        let path = PathBuf::from(path);
        if path.extension().is_none_or(|e| e != "lock") {
            continue;
        }
        let matches = match kind {
            "ino" => {
                let id = key.split_once(':').and_then(|(d, i)| Some((d.parse().ok()?, i.parse().ok()?)));
                id.is_some() && identity(&path) == id
            }
            // Empty: killed between creating the lock and writing into it.
            "content" => std::fs::read(&path).is_ok_and(|c| c.is_empty() || c == key.replace("\\n", "\n").as_bytes()),
            _ => return Vec::new(),
        };
        if matches {
            out.push(path);
        }
    }
    out
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().filter(|m| m.is_file()).map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that no process has: beyond the kernel's largest pid_max.
    const DEAD_PID: u32 = 4_194_305;
    const WAIT: Duration = Duration::from_millis(50);

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().expect("tmp");
        let index = tmp.path().join("index");
        std::fs::write(&index, "index").expect("index");
        let lock = lock_path(&index);
        (tmp, index, lock)
    }

    fn record(index: &Path) -> PathBuf {
        index.with_file_name("postflight-locks.owner")
    }

    fn write_record(index: &Path, pid: u32, lines: &[String]) {
        let mut text = format!("{pid}\n");
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(record(index), text).expect("record");
    }

    #[test]
    fn the_lock_is_recorded_while_held_and_committed_over_the_index() {
        let (_tmp, index, lock) = setup();
        let held = IndexLock::acquire(&index, WAIT).expect("acquire");
        assert!(lock.exists());
        let text = std::fs::read_to_string(record(&index)).expect("record");
        assert_eq!(text.lines().count(), 2, "pid and the lock: {text}");
        assert!(text.starts_with(&format!("{}\n", std::process::id())) && text.contains("index.lock"), "{text}");
        assert!(stale_locks(&text).is_empty(), "this process is alive");
        assert_eq!(
            stale_locks(&text.replacen(&std::process::id().to_string(), &DEAD_PID.to_string(), 1)),
            std::slice::from_ref(&lock),
            "the record names the lock exactly"
        );
        let empty = gix::index::File::from_state(gix::index::State::new(gix::hash::Kind::Sha1), index.clone());
        held.commit(&empty).expect("commit");
        assert!(!lock.exists() && !record(&index).exists());
        assert!(std::fs::read(&index).expect("index").starts_with(b"DIRC"), "the new index is in place");
        let names: Vec<String> = std::fs::read_dir(index.parent().expect("dir"))
            .expect("ls")
            .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with("postflight-index-")), "no private file left: {names:?}");
    }

    #[test]
    fn dropping_the_lock_releases_it_and_a_held_lock_is_waited_for_then_refused() {
        let (_tmp, index, lock) = setup();
        let held = IndexLock::acquire(&index, WAIT).expect("acquire");
        drop(held);
        assert!(!lock.exists() && !record(&index).exists());
        assert_eq!(std::fs::read(&index).expect("index"), b"index", "the index is unchanged");

        std::fs::write(&lock, "").expect("another process's lock");
        let err = IndexLock::acquire(&index, WAIT).err().expect("refused");
        assert!(err.to_string().contains("is locked by another git process"), "{err}");
        assert!(lock.exists(), "the other process's lock stays");
    }

    #[test]
    fn locks_recorded_by_a_dead_commit_are_removed() {
        let (tmp, index, lock) = setup();
        let head_lock = tmp.path().join("HEAD.lock");
        let branch_lock = tmp.path().join("refs/heads/main.lock");
        std::fs::create_dir_all(branch_lock.parent().expect("dir")).expect("mkdir");
        std::fs::write(&lock, "").expect("lock");
        std::fs::write(&head_lock, "").expect("lock");
        std::fs::write(&branch_lock, "0123abcd\n").expect("lock");
        let other_lock = tmp.path().join("refs/heads/other.lock");
        std::fs::write(&other_lock, "4567\n").expect("lock");
        write_record(
            &index,
            DEAD_PID,
            &[
                line_ino(identity(&lock).expect("id"), &lock),
                format!("content 0123abcd\\n {}", head_lock.display()),
                format!("content 0123abcd\\n {}", branch_lock.display()),
                format!("content 0123abcd\\n {}", other_lock.display()),
            ],
        );
        let held = IndexLock::acquire(&index, WAIT).expect("the dead commit's index.lock was removed");
        assert!(!head_lock.exists() && !branch_lock.exists(), "locks with the recorded content are gone");
        assert!(other_lock.exists(), "content that differs from the record is never removed");
        drop(held);

        // The same through the recording calls.
        let mut held = IndexLock::acquire(&index, WAIT).expect("acquire");
        std::fs::write(&branch_lock, "89ab\n").expect("lock");
        held.record_ref_locks(&[(branch_lock.clone(), "89ab\n".into()), (head_lock.clone(), "has space\n".into())]);
        let text = std::fs::read_to_string(record(&index)).expect("record");
        assert_eq!(text.lines().count(), 3, "pid, index.lock, the branch lock: {text}");
        let dead = text.replacen(&std::process::id().to_string(), &DEAD_PID.to_string(), 1);
        assert_eq!(stale_locks(&dead), [lock.clone(), branch_lock.clone()]);
        held.forget_ref_locks();
        assert_eq!(std::fs::read_to_string(record(&index)).expect("record").lines().count(), 2);
    }

    #[test]
    fn locks_of_live_processes_or_other_files_are_left_alone() {
        let (tmp, index, lock) = setup();
        std::fs::write(&lock, "").expect("lock");
        // Recorded by a live process (this one).
        write_record(&index, std::process::id(), &[line_ino(identity(&lock).expect("id"), &lock)]);
        assert!(IndexLock::acquire(&index, WAIT).is_err());
        assert!(lock.exists() && !record(&index).exists(), "the lock stays; the record is consumed");
        // A dead process, but another inode (the lock was released and remade by git).
        let other = tmp.path().join("other");
        std::fs::write(&other, "").expect("other");
        write_record(&index, DEAD_PID, &[line_ino(identity(&other).expect("id"), &lock)]);
        assert!(IndexLock::acquire(&index, WAIT).is_err());
        assert!(lock.exists());
        // A garbled record; a recorded file that is not a lock file.
        std::fs::write(record(&index), "garbage\nino 1:2 x.lock\n").expect("record");
        assert!(IndexLock::acquire(&index, WAIT).is_err());
        write_record(&index, DEAD_PID, &[line_ino(identity(&index).expect("id"), &index)]);
        assert!(IndexLock::acquire(&index, WAIT).is_err());
        assert!(index.exists() && lock.exists());
    }

    #[test]
    fn a_record_older_than_the_process_with_its_pid_names_a_recycled_pid() {
        let (_tmp, _index, lock) = setup();
        std::fs::write(&lock, "").expect("lock");
        let line = line_ino(identity(&lock).expect("id"), &lock);
        let text = format!("{}\n{line}\n", std::process::id());
        let now = std::time::SystemTime::now();
        assert!(stale_locks_written(&text, Some(now)).is_empty(), "written by this live process");
        if cfg!(target_os = "linux") {
            let long_ago = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(86_400);
            assert_eq!(
                stale_locks_written(&text, Some(long_ago)),
                std::slice::from_ref(&lock),
                "a record written before this process started names a recycled pid"
            );
        }
    }
}
