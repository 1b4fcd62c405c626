//! Work a task commit can do before it starts, on threads of its own while the caller updates
//! the ledger: reading HEAD's versions of the shared ledger files (the commit scopes them to the
//! task; in a ledger of 10,000 tasks that is 22 MB to inflate), and writing the blobs of their
//! new contents (hashing and compressing another 22 MB). Both are kept by what they are (a blob
//! id; the exact bytes written), so a HEAD that moved or a file that changed in the meantime is
//! simply not found, and the commit does the work itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use gix::ObjectId;

type Blobs = HashMap<ObjectId, Vec<u8>>;

/// Work started ahead of a commit (see the module documentation).
pub struct Prefetch {
    root: PathBuf,
    head: Mutex<Fetch>,
    /// Blobs written ahead, by repository-relative path.
    written: Mutex<HashMap<String, Written>>,
}

/// A blob being written ahead: the bytes, the thread writing them (it returns the blob's id),
/// and the range of the entry the update replaced.
struct Written {
    bytes: Arc<Vec<u8>>,
    thread: JoinHandle<Option<ObjectId>>,
    entry: Option<(usize, usize)>,
}

enum Fetch {
    Running(JoinHandle<Blobs>),
    Done(Blobs),
}

impl std::fmt::Debug for Prefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefetch").field("root", &self.root).finish_non_exhaustive()
    }
}

impl Prefetch {
    /// Starts reading the blobs HEAD's tree holds at `paths` (repository-relative, `/`-separated)
    /// in the repository at `root`. Anything that cannot be read is left out.
    pub fn start(root: &Path, paths: &[&str]) -> Prefetch {
        let root_owned = root.to_path_buf();
        let paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
        let handle = std::thread::spawn(move || read(&root_owned, &paths).unwrap_or_default());
        Prefetch {
            root: root.to_path_buf(),
            head: Mutex::new(Fetch::Running(handle)),
            written: Mutex::new(HashMap::new()),
        }
    }

    /// Starts writing `bytes` as a blob on a thread of its own, as the new content of `path`
    /// (repository-relative), with the byte range of the one state.json entry the update
    /// replaced, when known: the commit uses them when the file still holds exactly these bytes.
    pub fn write_ahead(&self, path: &str, bytes: Vec<u8>, entry: Option<(usize, usize)>) {
        let bytes = Arc::new(bytes);
        let (root, content) = (self.root.clone(), Arc::clone(&bytes));
        let thread = std::thread::spawn(move || {
            let repo = gix::open(root).ok()?;
            repo.write_blob(content.as_slice()).ok().map(gix::Id::detach)
        });
        lock(&self.written).insert(path.to_owned(), Written { bytes, thread, entry });
    }

    /// The id of the blob written ahead for `path` and the entry's range, when the blob holds
    /// exactly `bytes` (waits for the writing to finish).
    pub(crate) fn written(&self, path: &str, bytes: &[u8]) -> Option<(ObjectId, Option<(usize, usize)>)> {
        let written = lock(&self.written).remove(path)?;
        let id = written.thread.join().ok().flatten()?;
        (written.bytes.as_slice() == bytes).then_some((id, written.entry))
    }

    /// The bytes of blob `id`, when it was read (waits for the reading to finish); each blob is
    /// handed out once.
    pub(crate) fn take(&self, id: &ObjectId) -> Option<Vec<u8>> {
        let mut state = lock(&self.head);
        if let Fetch::Running(_) = &*state {
            let Fetch::Running(handle) = std::mem::replace(&mut *state, Fetch::Done(Blobs::new())) else {
                unreachable!("matched above")
            };
            *state = Fetch::Done(handle.join().unwrap_or_default());
        }
        match &mut *state {
            Fetch::Done(blobs) => blobs.remove(id),
            Fetch::Running(_) => None,
        }
    }
}

impl Drop for Prefetch {
    /// Waits for the threads still running, so that none is cut off mid-write at process exit
    /// (a commit that failed before using them).
    fn drop(&mut self) {
        for (_, written) in lock(&self.written).drain() {
            let _ = written.thread.join();
        }
        if let Fetch::Running(handle) = std::mem::replace(&mut *lock(&self.head), Fetch::Done(Blobs::new())) {
            let _ = handle.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read(root: &Path, paths: &[String]) -> Option<Blobs> {
    let repo = gix::open(root).ok()?;
    let tree = repo.head_commit().ok()?.tree().ok()?;
    let mut out = Blobs::new();
    for path in paths {
        let Ok(Some(entry)) = tree.lookup_entry_by_path(path) else { continue };
        if !entry.mode().is_blob() {
            continue;
        }
        if let Ok(blob) = repo.find_blob(entry.object_id()) {
            out.insert(entry.object_id(), blob.detach().data);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
    }

    #[test]
    fn heads_blobs_are_handed_out_once_by_id() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        git(root, &["init", "-q"]);
        std::fs::create_dir(root.join("specs")).expect("mkdir");
        std::fs::write(root.join("specs/state.json"), "{}\n").expect("write");
        git(root, &["add", "."]);
        git(root, &["commit", "-q", "-m", "one"]);
        let id = ObjectId::from_hex(git(root, &["rev-parse", "HEAD:specs/state.json"]).as_bytes()).expect("id");
        // The work tree changes after the start: the blobs are HEAD's, not the file's.
        let blobs = Prefetch::start(root, &["specs/state.json", "specs/TODO.md", "specs"]);
        std::fs::write(root.join("specs/state.json"), "{\"x\": 1}\n").expect("write");
        assert_eq!(blobs.take(&id).as_deref(), Some(&b"{}\n"[..]));
        assert_eq!(blobs.take(&id), None, "handed out once");
        // No HEAD at all: nothing, and no error.
        let empty = tempfile::tempdir().expect("tmp");
        git(empty.path(), &["init", "-q"]);
        assert_eq!(Prefetch::start(empty.path(), &["specs/state.json"]).take(&id), None);
    }

    #[test]
    fn blobs_written_ahead_are_used_only_for_the_same_bytes() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        git(root, &["init", "-q"]);
        let ahead = Prefetch::start(root, &[]);
        ahead.write_ahead("specs/state.json", b"new\n".to_vec(), Some((0, 3)));
        ahead.write_ahead("specs/TODO.md", b"todo\n".to_vec(), None);
        let (id, entry) = ahead.written("specs/state.json", b"new\n").expect("written");
        assert_eq!(entry, Some((0, 3)));
        assert_eq!(git(root, &["cat-file", "-t", &id.to_string()]), "blob");
        assert_eq!(git(root, &["cat-file", "-p", &id.to_string()]), "new");
        assert_eq!(ahead.written("specs/TODO.md", b"changed since\n"), None, "other bytes: not used");
        assert_eq!(ahead.written("specs/state.json", b"new\n"), None, "handed out once");
    }
}
