//! Task-scoped commits through gitoxide: the new commit is HEAD's tree with exactly the given
//! paths taken from the working tree (`git commit --only -- <paths>`), never anything the user
//! staged elsewhere, never ignored or transient files, and for a task's commit only that task's
//! share of the files it shares with other tasks, as the caller's [`Scoping`] computes it (the
//! git layer knows no ledger file: the workflow passes `ledger::scope::TASK_SCOPING`).
//!
//! The steps, in order: refuse during a merge, rebase, cherry-pick or revert; resolve and check
//! the paths; take `index.lock`, then read the index; build the tree from HEAD's; run the
//! `pre-commit` and `commit-msg` hooks on a temporary index; write the commit; move the branch
//! with compare-and-swap against the HEAD read at the start (re-read and retry up to three
//! times); write the index (tree cache dropped) inside the lock taken first.
//!
//! Every run of the git CLI in the crate goes through [`cli`] (one environment, stderr read
//! concurrently, a typed failure). Commits use it in three places only, each because gitoxide's minimal build cannot do it
//! correctly: blobs are hashed with `git hash-object` when clean filters may apply (autocrlf or
//! an attributes file), commits are created with `git commit-tree -S` when `commit.gpgSign` is
//! set, and `git gc --auto` runs when git's own loose-object heuristic says so.

pub mod cli;
mod hooks;
mod index_lock;
mod message;
mod paths;
mod prefetch;
mod run;
mod status;
mod status_fast;

use std::path::PathBuf;

use crate::error::Result;
use crate::repo::Repo;
use crate::task_id::TaskId;

/// The git command-line runner, for the worktree runs' plumbing (`workflow::parallel`).
pub(crate) use cli::{run as cli_run, run_with_env as cli_run_with_env};
pub use message::{build_message, stripspace};
pub use paths::{exclude_transient, is_transient, TRANSIENT_PATTERNS};
pub use prefetch::Prefetch;
pub use run::identities;
pub use status::{ignored, Stamp, WorkTreeState};

/// From this size on, a shared file is worked on by a thread of its own: its new blob is
/// written while the ledger is written (`Prefetch::write_ahead`) and the commit scopes it on
/// another thread. Below it, starting the thread and opening the repository again for it cost
/// more than they save.
pub const LARGE_LEDGER_FILE: u64 = 1 << 20;

/// What a task's commit stores for a file it shares with other tasks, without copying either
/// version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scoped {
    /// HEAD's bytes, unchanged.
    Head,
    /// The working tree's bytes: they differ from HEAD only by the task's change.
    Worktree,
    /// New bytes.
    New(Vec<u8>),
}

impl Scoped {
    /// The cases every scoping shares, before it looks inside the file: unchanged (HEAD's) or
    /// new in this commit (the work tree's); `None` when the task's share must be computed.
    pub fn trivially(head: &[u8], worktree: &[u8]) -> Option<Scoped> {
        if head == worktree {
            Some(Scoped::Head)
        } else if head.is_empty() {
            Some(Scoped::Worktree)
        } else {
            None
        }
    }

    /// The computed `bytes`, named by the version they equal when they equal one.
    pub fn of(bytes: Vec<u8>, head: &[u8], worktree: &[u8]) -> Scoped {
        if bytes == head {
            Scoped::Head
        } else if bytes == worktree {
            Scoped::Worktree
        } else {
            Scoped::New(bytes)
        }
    }

    /// The bytes, given the two versions it was computed from.
    pub fn bytes<'a>(&'a self, head: &'a [u8], worktree: &'a [u8]) -> &'a [u8] {
        match self {
            Scoped::Head => head,
            Scoped::Worktree => worktree,
            Scoped::New(b) => b,
        }
    }
}

/// The files a task's commit takes task-scoped, and how: supplied by the caller (the ledger's
/// [`TASK_SCOPING`](crate::ledger::scope::TASK_SCOPING) for the ledger files), so this layer
/// knows no file's format.
pub trait Scoping: Send + Sync + std::fmt::Debug {
    /// Whether the repository-relative `path` is shared between tasks.
    fn shares(&self, path: &str) -> bool;

    /// What task `task`'s commit stores for the shared `path`, given HEAD's bytes and the
    /// working tree's; `hint` is the byte range of the task's entry in `worktree` when the
    /// update that wrote it said so ([`Prefetch::write_ahead`]), to be checked before use.
    ///
    /// # Errors
    /// Refusals when either version cannot be scoped (it does not parse, the task is there twice).
    fn scope(
        &self,
        path: &str,
        head: &[u8],
        worktree: &[u8],
        task: &TaskId,
        hint: Option<(usize, usize)>,
    ) -> Result<Scoped>;
}

/// What to commit and how to describe it.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// When `Some(n)` and [`scoping`](Self::scoping) is given: the files it shares are committed
    /// task-scoped (HEAD's version plus task n's changes only).
    pub task: Option<TaskId>,
    /// Which files are shared between tasks and how a task's share of them is computed.
    pub scoping: Option<std::sync::Arc<dyn Scoping>>,
    /// Files or directories, relative to the repository root or absolute.
    pub paths: Vec<PathBuf>,
    /// The first line of the message.
    pub subject: String,
    /// An optional body paragraph (or several).
    pub body: Option<String>,
    /// Written as the `Session:` trailer.
    pub session_id: String,
    /// Further trailers (`Key: value` lines), written after `Session:`.
    pub trailers: Vec<String>,
    /// `Name <email>`, written as the `Co-authored-by:` trailer when known.
    pub agent_identity: Option<String>,
    /// Files among `paths` committed even when git ignores them (`git add -f`): the task's
    /// validation logs, whose `.log` names many projects ignore.
    pub force: Vec<String>,
    /// Skip the `pre-commit` and `commit-msg` hooks.
    pub no_verify: bool,
    /// Repository-relative paths (transient files a task left tracked, as the bash workflow
    /// did) that the commit removes from HEAD's tree and the index, whatever the work tree holds.
    pub untrack: Vec<String>,
    /// Work started ahead of the commit (HEAD's ledger files read, new ledger blobs written).
    pub prefetch: Option<std::sync::Arc<Prefetch>>,
}

impl CommitRequest {
    /// A request for task `task` (when given) with a subject and a session id; no paths yet.
    pub fn new(task: Option<TaskId>, subject: impl Into<String>, session_id: impl Into<String>) -> CommitRequest {
        CommitRequest { task, subject: subject.into(), session_id: session_id.into(), ..CommitRequest::default() }
    }
}

/// What [`commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// A commit was made.
    Committed {
        /// The new commit's full hex id.
        id: String,
        /// The repository-relative paths the commit changed (sorted).
        paths: Vec<String>,
        /// Notes on paths left out (`<path>: <why>`).
        skipped: Vec<String>,
    },
    /// The paths hold no change against HEAD: no commit was made. Only the index may have been
    /// written, when its entries for the paths lagged behind HEAD (a commit killed between
    /// moving the branch and writing the index).
    NothingToCommit {
        /// Notes on paths left out (`<path>: <why>`).
        skipped: Vec<String>,
    },
}

/// Commits exactly `req.paths` from the working tree on top of HEAD (`git commit --only`).
///
/// # Errors
/// Refusals (nothing changed): an operation in progress, a path outside the repository, inside
/// `.git` or behind a symbolic link, no identity configured, `index.lock` held too long, a failing
/// hook, an invalid message part, an unparsable ledger file. Internal: I/O and git failures, HEAD
/// moving under us on three attempts.
///
/// # Writes
/// Objects in the object database, the branch (or detached HEAD) and its reflog, the index,
/// and `COMMIT_EDITMSG` when the `commit-msg` hook runs.
pub fn commit(repo: &Repo, req: &CommitRequest) -> Result<CommitOutcome> {
    run::commit(repo, req)
}

/// What [`plan_tree`] planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTree {
    /// The tree's full hex id.
    pub tree: String,
    /// The paths (of those given) whose content differs from HEAD's.
    pub changed: Vec<String>,
}

/// The id of the tree a task commit of `paths` would have (HEAD's tree with exactly those paths
/// taken from the work tree, as [`commit`] builds it, the shared ledger files included as they
/// are), with every path of `remove` (files or whole directories) taken out of it. Nothing is
/// committed, no hook runs, the index is neither locked nor written.
///
/// # Errors
/// A path outside the repository; git failures.
///
/// # Writes
/// Blobs and trees in the object database (those the commit would write too).
pub fn plan_tree(repo: &Repo, paths: &[PathBuf], remove: &[String]) -> Result<PlannedTree> {
    run::plan_tree(&repo.root, paths, remove).map(|(id, changed)| PlannedTree { tree: id.to_string(), changed })
}

/// Whether HEAD's tree holds a file at the repository-relative, `/`-separated path `rel` (a
/// few tree reads along the path; the index and the work tree are not looked at). `false` on an
/// unborn branch.
///
/// # Errors
/// Git failures (the repository, HEAD or a tree cannot be read).
pub fn in_head(repo: &Repo, rel: &str) -> Result<bool> {
    run::in_head(&repo.root, rel)
}
