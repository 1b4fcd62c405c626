//! The three ledger files of one repository, read and written together: `specs/state.json`
//! (the source of truth), `specs/TODO.md` and the plan files. Every read-modify-write holds one
//! exclusive lock in the git directory, re-reads inside it, computes every new file in memory
//! and only then replaces the changed files atomically, so a refused edit changes nothing.

pub mod json;
pub mod plan;
pub mod scope;
pub mod state;
pub mod status;
pub mod text;
pub mod todo;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::atomic::{self, Lock};
use crate::error::{Error, Result};
use crate::repo::Repo;
use plan::PlanFile;
use state::StateFile;
use todo::TodoFile;

pub use crate::atomic::LOCK_TIMEOUT;

/// The ledger files every task shares (`state.json`, then `TODO.md`), which a task's commit
/// takes task-scoped ([`scope::TASK_SCOPING`]).
pub const LEDGER_FILES: [&str; 2] = ["specs/state.json", "specs/TODO.md"];

/// The ledger files of one repository.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// The repository.
    pub repo: Repo,
}

/// One file's planned change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The file.
    pub path: PathBuf,
    /// Its bytes before (empty for a new file).
    pub old: Vec<u8>,
    /// Its bytes after.
    pub new: Vec<u8>,
    /// The byte range in `new` of the one state.json entry the change replaced in place, when
    /// that is all it changed (a hint for the task-scoped commit, which checks it).
    pub entry: Option<(usize, usize)>,
}

impl Change {
    /// A unified diff of the change, with `a/` and `b/` paths relative to `root`.
    pub fn unified_diff(&self, root: &Path) -> String {
        let rel = self.path.strip_prefix(root).unwrap_or(&self.path).to_string_lossy().replace('\\', "/");
        let old = String::from_utf8_lossy(&self.old);
        let new = String::from_utf8_lossy(&self.new);
        let diff =
            similar::TextDiff::configure().timeout(Duration::from_secs(2)).diff_lines(old.as_ref(), new.as_ref());
        let a = if self.old.is_empty() { "/dev/null".to_owned() } else { format!("a/{rel}") };
        diff.unified_diff().context_radius(3).header(&a, &format!("b/{rel}")).to_string()
    }
}

impl Ledger {
    /// The ledger of `repo`.
    pub fn new(repo: Repo) -> Ledger {
        Ledger { repo }
    }

    /// `specs/state.json`.
    pub fn state_path(&self) -> PathBuf {
        self.repo.specs_dir().join("state.json")
    }

    /// `specs/TODO.md`.
    pub fn todo_path(&self) -> PathBuf {
        self.repo.specs_dir().join("TODO.md")
    }

    /// The lock file serialising every ledger read-modify-write of this work tree.
    pub fn lock_path(&self) -> PathBuf {
        self.repo.git_dir.join("postflight-ledger.lock")
    }

    /// Takes the ledger lock.
    ///
    /// # Errors
    /// I/O errors, or a refusal after [`LOCK_TIMEOUT`].
    pub fn lock(&self) -> Result<Lock> {
        Lock::acquire(&self.lock_path(), LOCK_TIMEOUT)
    }

    /// Reads state.json alone, without locking (entries are parsed when read: see
    /// [`StateFile::parse_sparse`]).
    ///
    /// # Errors
    /// A missing or invalid state.json.
    pub fn state(&self) -> Result<StateFile> {
        let state_path = self.state_path();
        if !state_path.exists() {
            return Err(Error::refused(
                format!("{} does not exist", self.repo.relative(&state_path)),
                Some("run `xtask init` to create the ledger"),
            ));
        }
        StateFile::load_sparse(&state_path)
    }

    /// Reads state.json and TODO.md (when present) without locking.
    ///
    /// # Errors
    /// A missing or invalid state.json; an unreadable TODO.md.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let state = self.state()?;
        let todo_path = self.todo_path();
        let todo = match std::fs::read(&todo_path) {
            Ok(bytes) => Some(TodoFile::parse_owned(&todo_path, bytes)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("read", &todo_path, e)),
        };
        Ok(Snapshot {
            specs: self.repo.specs_dir(),
            state,
            state_dirty: false,
            todo,
            plans: BTreeMap::new(),
            new_plans: BTreeMap::new(),
        })
    }

    /// Runs `edit` on a fresh snapshot under the lock and writes what it changed.
    /// Nothing is written when `edit` fails.
    ///
    /// # Errors
    /// Whatever `edit` returns, lock and I/O errors.
    ///
    /// # Writes
    /// The ledger files `edit` changed.
    pub fn update<T>(&self, edit: impl FnOnce(&mut Snapshot) -> Result<T>) -> Result<(T, Vec<Change>)> {
        let (_lock, value, changes) = self.edit_locked(edit)?;
        write_changes_journaled(&changes, &self.journal_path())?;
        Ok((value, changes))
    }

    /// Takes the lock, finishes an interrupted write, reads a fresh snapshot and runs `edit` on
    /// it; returns the lock (still held) and the changes, written by the caller.
    fn edit_locked<T>(&self, edit: impl FnOnce(&mut Snapshot) -> Result<T>) -> Result<(Lock, T, Vec<Change>)> {
        let lock = self.lock()?;
        self.recover()?;
        let mut snap = self.snapshot()?;
        let value = edit(&mut snap)?;
        Ok((lock, value, snap.into_changes()?))
    }

    /// Like [`Ledger::update`], running `alongside` on a thread of its own with the changes once
    /// they are computed, while they are written (work that needs only the new contents, such as
    /// writing them as git blobs, overlaps with the syncs); returns what it returned.
    ///
    /// # Errors
    /// As [`Ledger::update`].
    ///
    /// # Writes
    /// The ledger files `edit` changed.
    pub fn update_with<T, A: Send>(
        &self,
        edit: impl FnOnce(&mut Snapshot) -> Result<T>,
        alongside: impl FnOnce(&[Change]) -> A + Send,
    ) -> Result<(T, Vec<Change>, A)> {
        let (_lock, value, changes) = self.edit_locked(edit)?;
        let journal = self.journal_path();
        let (written, extra) = std::thread::scope(|scope| {
            let thread = scope.spawn(|| alongside(&changes));
            let written = write_changes_journaled(&changes, &journal);
            (written, thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        });
        written?;
        Ok((value, changes, extra))
    }

    /// The journal of a multi-file write between its first and its last rename.
    pub fn journal_path(&self) -> PathBuf {
        self.repo.git_dir.join("postflight-ledger.journal")
    }

    /// Finishes a multi-file write that a killed process left half done: every staged file the
    /// journal names is renamed over its target, then the journal is removed. Call under the lock.
    ///
    /// # Errors
    /// I/O errors.
    pub fn recover(&self) -> Result<bool> {
        let path = self.journal_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        // The journal is itself written atomically, so it is either complete or absent; an
        // unreadable one names nothing to finish.
        let renames: Vec<(PathBuf, PathBuf)> = serde_json::from_slice(&bytes).unwrap_or_default();
        for (tmp, target) in &renames {
            if tmp.exists() {
                std::fs::rename(tmp, target).map_err(|e| Error::io("finish the interrupted write of", target, e))?;
            }
        }
        std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        Ok(true)
    }

    /// Like [`Ledger::update`] but writes nothing: returns the changes it would make.
    ///
    /// # Errors
    /// Whatever `edit` returns.
    pub fn preview<T>(&self, edit: impl FnOnce(&mut Snapshot) -> Result<T>) -> Result<(T, Vec<Change>)> {
        let mut snap = self.snapshot()?;
        let value = edit(&mut snap)?;
        Ok((value, snap.into_changes()?))
    }
}

/// Writes each change atomically, state.json first (the source of truth). Every new content is
/// first staged in a synced temp file; only when all are staged are they renamed over their files,
/// one after the other. So a failure or a kill while writing changes no file, and a kill can
/// only land in the short run of renames.
///
/// # Errors
/// I/O errors; when staging fails, no file was changed.
pub fn write_changes(changes: &[Change]) -> Result<()> {
    let staged = stage_changes(changes)?;
    for s in staged {
        s.commit()?;
    }
    Ok(())
}

fn stage_changes(changes: &[Change]) -> Result<Vec<atomic::Staged>> {
    let files: Vec<(&Path, &[u8])> = changes.iter().map(|c| (c.path.as_path(), c.new.as_slice())).collect();
    atomic::stage_all(&files)
}

/// Like [`write_changes`], but all-or-nothing across files: when more than one file changes, the
/// planned renames are written to `journal` (atomically) after every file is staged and before
/// the first rename, and the journal is removed after the last. A process killed in between leaves
/// the journal, and [`Ledger::recover`] finishes the renames on the next update.
///
/// # Errors
/// I/O errors; when staging fails, no file was changed.
pub fn write_changes_journaled(changes: &[Change], journal: &Path) -> Result<()> {
    if changes.len() < 2 {
        return write_changes(changes);
    }
    let staged = stage_changes(changes)?;
    let renames = staged.into_iter().map(atomic::Staged::keep).collect::<Result<Vec<_>>>()?;
    let plan = serde_json::to_vec(&renames)
        .map_err(|e| Error::refused(format!("cannot journal the write of the ledger files: {e}"), None))?;
    // The journal is for a process killed between the renames; it is not synced (each file it
    // names is). After a power cut in that moment the files are each whole, and `check --fix`
    // brings TODO.md and the plan back in line with state.json, which is renamed first.
    atomic::write_unsynced(journal, &plan)?;
    for (tmp, target) in &renames {
        std::fs::rename(tmp, target).map_err(|e| Error::io("replace", target, e))?;
    }
    std::fs::remove_file(journal).map_err(|e| Error::io("remove", journal, e))
}

/// The ledger files as read inside one transaction, with their pending edits.
#[derive(Debug)]
pub struct Snapshot {
    specs: PathBuf,
    state: StateFile,
    state_dirty: bool,
    todo: Option<TodoFile>,
    plans: BTreeMap<PathBuf, (Vec<u8>, PlanFile)>,
    /// Plan files created in this transaction, by task: each is that task's newest plan.
    new_plans: BTreeMap<u32, PathBuf>,
}

impl Snapshot {
    /// The `specs/` directory.
    pub fn specs_dir(&self) -> &Path {
        &self.specs
    }

    /// state.json, read-only.
    pub fn state(&self) -> &StateFile {
        &self.state
    }

    /// state.json, for editing (marks it changed).
    pub fn state_mut(&mut self) -> &mut StateFile {
        self.state_dirty = true;
        &mut self.state
    }

    /// TODO.md, when the file exists.
    pub fn todo(&self) -> Option<&TodoFile> {
        self.todo.as_ref()
    }

    /// TODO.md for editing, when the file exists.
    pub fn todo_mut(&mut self) -> Option<&mut TodoFile> {
        self.todo.as_mut()
    }

    /// The newest plan of task `n`, loaded once per snapshot.
    ///
    /// # Errors
    /// An unreadable plan file.
    pub fn plan(&mut self, n: u32) -> Result<Option<&mut PlanFile>> {
        if let Some(path) = self.new_plans.get(&n) {
            return Ok(self.plans.get_mut(path).map(|(_, f)| f));
        }
        let slug = self.state.task(n).ok().and_then(|t| t.slug);
        let Some(path) = plan::find_plan(&self.specs, n, slug.as_deref()) else { return Ok(None) };
        if !self.plans.contains_key(&path) {
            let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
            let file = PlanFile::parse(&path, &bytes)?;
            self.plans.insert(path.clone(), (bytes, file));
        }
        Ok(self.plans.get_mut(&path).map(|(_, f)| f))
    }

    /// Adds a new plan file of task `n` to the transaction: written with the other files (its
    /// directory must exist by then), and from now on what [`Snapshot::plan`] returns for `n`.
    ///
    /// # Errors
    /// A refusal when a file exists at `path` (a new plan never replaces one).
    pub fn add_plan(&mut self, n: u32, path: PathBuf, text: &str) -> Result<()> {
        if path.exists() || self.plans.contains_key(&path) {
            return Err(Error::refused(format!("{} already exists", path.display()), None));
        }
        let file = PlanFile::parse(&path, text.as_bytes())?;
        self.plans.insert(path.clone(), (Vec::new(), file));
        self.new_plans.insert(n, path);
        Ok(())
    }

    /// Every file whose content would change, state.json first. Consumes the snapshot, so the
    /// old contents move into the changes instead of being copied (a large ledger is megabytes).
    ///
    /// # Errors
    /// As `StateFile::to_bytes`.
    pub fn into_changes(self) -> Result<Vec<Change>> {
        let mut out = Vec::new();
        if self.state_dirty {
            let new = self.state.to_bytes()?;
            if new != self.state.raw() {
                let path = self.state.path.clone();
                let entry = self.state.spliced_entry(new.len());
                out.push(Change { path, old: self.state.into_raw(), new, entry });
            }
        }
        if let Some(todo) = self.todo {
            let new = todo.to_text().into_bytes();
            if new != todo.original().as_bytes() {
                let path = todo.path.clone();
                out.push(Change { path, old: todo.doc.into_original().into_bytes(), new, entry: None });
            }
        }
        for (path, (raw, plan)) in self.plans {
            let new = plan.to_text().into_bytes();
            if new != raw {
                out.push(Change { path, old: raw, new, entry: None });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger_in(dir: &Path) -> Ledger {
        std::fs::create_dir_all(dir.join(".git")).expect("git dir");
        std::fs::create_dir_all(dir.join("specs")).expect("specs");
        Ledger::new(Repo::discover(dir).expect("repo"))
    }

    #[test]
    fn a_write_killed_between_renames_is_finished_by_the_next_update() {
        let tmp = tempfile::tempdir().expect("tmp");
        let ledger = ledger_in(tmp.path());
        let (state, todo) = (ledger.state_path(), ledger.todo_path());
        std::fs::write(&state, "{\"active_projects\": []}\n").expect("w");
        std::fs::write(&todo, "old todo\n").expect("w");
        // What write_changes_journaled does, stopped after the first rename.
        let new_state = b"{\n  \"active_projects\": [],\n  \"x\": 1\n}\n".to_vec();
        let staged = vec![
            atomic::stage(&state, &new_state).expect("stage"),
            atomic::stage(&todo, b"new todo\n").expect("stage"),
        ];
        let renames: Vec<(PathBuf, PathBuf)> = staged.into_iter().map(|s| s.keep().expect("keep")).collect();
        atomic::write(&ledger.journal_path(), &serde_json::to_vec(&renames).expect("json")).expect("journal");
        std::fs::rename(&renames[0].0, &renames[0].1).expect("first rename");
        assert_eq!(std::fs::read(&todo).expect("r"), b"old todo\n", "half done: TODO.md is behind");

        ledger.update(|_| Ok(())).expect("update recovers");
        assert_eq!(std::fs::read(&state).expect("r"), new_state);
        assert_eq!(std::fs::read(&todo).expect("r"), b"new todo\n");
        assert!(!ledger.journal_path().exists());
        assert!(!ledger.recover().expect("nothing left"), "no journal the second time");
    }

    #[test]
    fn a_journaled_write_leaves_no_journal_and_no_temp_file() {
        let tmp = tempfile::tempdir().expect("tmp");
        let ledger = ledger_in(tmp.path());
        let changes = vec![
            Change { path: ledger.state_path(), old: Vec::new(), new: b"{}\n".to_vec(), entry: None },
            Change { path: ledger.todo_path(), old: Vec::new(), new: b"x\n".to_vec(), entry: None },
        ];
        write_changes_journaled(&changes, &ledger.journal_path()).expect("write");
        let names: Vec<String> = std::fs::read_dir(tmp.path().join("specs"))
            .expect("ls")
            .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(!ledger.journal_path().exists());
    }
}
