//! HEAD's versions of the shared ledger files, read on a thread of their own while the caller
//! does other work. A task commit needs them to scope those files to the task, and in a ledger
//! of 10,000 tasks that is 22 MB to inflate. Kept by blob id, so when HEAD moved in the meantime
//! the commit simply does not find them and reads HEAD's blobs itself.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::thread::JoinHandle;

use gix::ObjectId;

type Blobs = HashMap<ObjectId, Vec<u8>>;

/// Blobs being read in the background (see the module documentation).
pub struct HeadBlobs {
    state: Mutex<Fetch>,
}

enum Fetch {
    Running(JoinHandle<Blobs>),
    Done(Blobs),
}

impl std::fmt::Debug for HeadBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadBlobs").finish_non_exhaustive()
    }
}

impl HeadBlobs {
    /// Starts reading the blobs HEAD's tree holds at `paths` (repository-relative, `/`-separated)
    /// in the repository at `root`. Anything that cannot be read is left out.
    pub fn start(root: &Path, paths: &[&str]) -> HeadBlobs {
        let root = root.to_path_buf();
        let paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
        let handle = std::thread::spawn(move || read(&root, &paths).unwrap_or_default());
        HeadBlobs { state: Mutex::new(Fetch::Running(handle)) }
    }

    /// The bytes of blob `id`, when it was read (waits for the reading to finish); each blob is
    /// handed out once.
    pub(crate) fn take(&self, id: &ObjectId) -> Option<Vec<u8>> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let blobs = HeadBlobs::start(root, &["specs/state.json", "specs/TODO.md", "specs"]);
        std::fs::write(root.join("specs/state.json"), "{\"x\": 1}\n").expect("write");
        assert_eq!(blobs.take(&id).as_deref(), Some(&b"{}\n"[..]));
        assert_eq!(blobs.take(&id), None, "handed out once");
        // No HEAD at all: nothing, and no error.
        let empty = tempfile::tempdir().expect("tmp");
        git(empty.path(), &["init", "-q"]);
        assert_eq!(HeadBlobs::start(empty.path(), &["specs/state.json"]).take(&id), None);
    }
}
