//! Finds the repository a command works on: its work tree root and its git directory
//! (where the ledger lock lives). Plain file-system discovery, so it costs microseconds;
//! it never opens the object database.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The work tree and git directory of one repository (a linked worktree has its own git dir).
#[derive(Debug, Clone)]
pub struct Repo {
    /// The top of the work tree (canonical).
    pub root: PathBuf,
    /// The git directory of this work tree (`.git`, or `.git/worktrees/<name>` for a linked one).
    pub git_dir: PathBuf,
}

impl Repo {
    /// Finds the repository that contains `start` (a directory), searching upwards like git.
    ///
    /// # Errors
    /// `NoRepository` when no `.git` is found above `start`.
    pub fn discover(start: &Path) -> Result<Repo> {
        let start = std::fs::canonicalize(start).map_err(|e| Error::io("open directory", start, e))?;
        let mut dir: &Path = &start;
        loop {
            let dot_git = dir.join(".git");
            if let Ok(meta) = std::fs::symlink_metadata(&dot_git) {
                if meta.is_dir() {
                    return Ok(Repo { root: dir.to_path_buf(), git_dir: dot_git });
                }
                if meta.is_file() {
                    let text = std::fs::read_to_string(&dot_git).map_err(|e| Error::io("read", &dot_git, e))?;
                    if let Some(target) = text.lines().next().and_then(|l| l.strip_prefix("gitdir:")) {
                        let target = Path::new(target.trim());
                        let git_dir = if target.is_absolute() { target.to_path_buf() } else { dir.join(target) };
                        return Ok(Repo { root: dir.to_path_buf(), git_dir });
                    }
                }
            }
            match dir.parent() {
                Some(parent) => dir = parent,
                None => return Err(Error::NoRepository { path: start }),
            }
        }
    }

    /// The `specs/` directory of this repository.
    pub fn specs_dir(&self) -> PathBuf {
        self.root.join("specs")
    }

    /// The git directory shared by all worktrees (`commondir` of a linked worktree).
    pub fn common_dir(&self) -> PathBuf {
        match std::fs::read_to_string(self.git_dir.join("commondir")) {
            Ok(text) => {
                let p = Path::new(text.trim());
                if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    self.git_dir.join(p)
                }
            }
            Err(_) => self.git_dir.clone(),
        }
    }

    /// A path relative to the work tree root, with `/` separators, for messages and git.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root).unwrap_or(path).to_string_lossy().replace('\\', "/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovers_from_subdirectory_and_linked_worktree_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(root.join(".git")).expect("mkdir");
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        let repo = Repo::discover(&root.join("a/b")).expect("found");
        assert_eq!(repo.root, std::fs::canonicalize(&root).expect("canon"));

        let wt = tmp.path().join("wt");
        std::fs::create_dir_all(&wt).expect("mkdir");
        std::fs::write(wt.join(".git"), "gitdir: ../repo/.git/worktrees/wt\n").expect("write");
        let repo = Repo::discover(&wt).expect("found");
        assert!(repo.git_dir.ends_with("repo/.git/worktrees/wt"));
    }
}
