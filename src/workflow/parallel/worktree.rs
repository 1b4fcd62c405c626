//! The linked worktrees of worktree runs: where they live (`<git common dir>/postflight/worktrees/N`,
//! never inside a work tree), their branch (`postflight/N-<slug>`, forked from the invoking
//! branch's tip), the manifest postflight keeps of each one (`…/worktrees/N.json`: only the
//! worktrees it created are ever touched), `.worktreeinclude`, whether a worktree's work has
//! landed, and removal.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::repo::Repo;

/// The file listing ignored files a build needs, copied into a new worktree (Claude Code's name).
pub const WORKTREE_INCLUDE: &str = ".worktreeinclude";

/// What postflight records about one worktree it created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// The task.
    pub task: u32,
    /// The branch, `postflight/N-<slug>`.
    pub branch: String,
    /// The worktree's directory (absolute).
    pub path: PathBuf,
    /// The commit the branch was forked from.
    pub base: String,
    /// The invoking branch (`refs/heads/main`): where the work lands.
    pub target: String,
    /// The invoking work tree (absolute).
    pub invoking: PathBuf,
    /// When the worktree was created (RFC 3339).
    pub created: String,
    /// Whether the run was started with `--push` (then cleanup also waits for the push).
    #[serde(default)]
    pub push: bool,
    /// The paths of the last landing's conflict (empty when there was none).
    #[serde(default)]
    pub landing_conflict: Vec<String>,
}

/// The directory holding every worktree and manifest of the repository.
pub fn root_dir(repo: &Repo) -> PathBuf {
    repo.common_dir().join("postflight").join("worktrees")
}

/// Task `n`'s worktree directory.
pub fn worktree_dir(repo: &Repo, n: u32) -> PathBuf {
    root_dir(repo).join(n.to_string())
}

fn manifest_path(repo: &Repo, n: u32) -> PathBuf {
    root_dir(repo).join(format!("{n}.json"))
}

/// The log of task `n`'s child run (its stderr).
pub fn log_path(repo: &Repo, n: u32) -> PathBuf {
    root_dir(repo).join(format!("{n}.log"))
}

impl Manifest {
    /// Task `n`'s manifest, when postflight created a worktree for it.
    ///
    /// # Errors
    /// An unreadable or invalid manifest.
    pub fn load(repo: &Repo, n: u32) -> Result<Option<Manifest>> {
        let path = manifest_path(repo, n);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::json(&path, &e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// Writes the manifest atomically.
    ///
    /// # Errors
    /// I/O errors.
    pub fn save(&self, repo: &Repo) -> Result<()> {
        let path = manifest_path(repo, self.task);
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::json(&path, &e))?;
        bytes.push(b'\n');
        crate::atomic::write(&path, &bytes)
    }

    /// Every manifest of the repository, by task number.
    pub fn all(repo: &Repo) -> Vec<Manifest> {
        let mut out: Vec<Manifest> = std::fs::read_dir(root_dir(repo))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json")?.parse::<u32>().ok())
                    .filter_map(|n| Manifest::load(repo, n).ok().flatten())
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by_key(|m| m.task);
        out
    }

    /// The branch's tip, when the branch exists.
    pub fn tip(&self, repo: &Repo) -> Option<String> {
        rev_parse(&repo.root, &format!("refs/heads/{}^{{commit}}", self.branch))
    }

    /// The marker of the worktree's run (whether or not it exists).
    pub fn marker(&self, dir_rel: &str) -> PathBuf {
        self.path.join(dir_rel).join(crate::run::MARKER_FILE)
    }
}

/// Runs git in `root` and returns its standard output as text.
pub(crate) fn git(root: &Path, args: &[&str]) -> Result<String> {
    let out = crate::git::cli_run(root, args, None, &[0])?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `git rev-parse --verify -q <rev>`, or `None`.
pub(crate) fn rev_parse(root: &Path, rev: &str) -> Option<String> {
    let out = crate::git::cli_run(root, &["rev-parse", "--verify", "-q", rev], None, &[0]).ok()?;
    let id = String::from_utf8_lossy(&out).trim().to_owned();
    (!id.is_empty()).then_some(id)
}

/// Whether `commit` is an ancestor of (or equal to) `of`.
pub(crate) fn is_ancestor(root: &Path, commit: &str, of: &str) -> bool {
    crate::git::cli_run(root, &["merge-base", "--is-ancestor", commit, of], None, &[0]).is_ok()
}

/// The invoking branch's full ref name.
///
/// # Errors
/// A refusal on a detached HEAD or an unborn branch.
pub fn current_branch(repo: &Repo) -> Result<String> {
    let head = git(&repo.root, &["symbolic-ref", "-q", "HEAD"]).map_err(|_| {
        Error::refused("HEAD is detached: a worktree run lands on a branch", Some("check out a branch first"))
    })?;
    let head = head.trim().to_owned();
    if rev_parse(&repo.root, &head).is_none() {
        return Err(Error::refused(
            format!("{head} has no commit yet: a worktree run forks from the branch's tip"),
            Some("make a first commit"),
        ));
    }
    Ok(head)
}

/// The branch name of task `n` with the task's name `slug`.
pub fn branch_name(n: u32, slug: &str) -> String {
    let clean: String = slug
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let clean = clean.trim_matches('-');
    if clean.is_empty() {
        format!("postflight/{n}")
    } else {
        format!("postflight/{n}-{clean}")
    }
}

/// Creates task `n`'s worktree, or returns the existing one (a resumed run); the second value
/// says whether it already existed.
///
/// A new worktree gets the invoking work tree's ledger files and the task's directory as they
/// are now (so its run sees the task as the invoking tree does, committed or not), and the
/// ignored files `.worktreeinclude` lists.
///
/// # Errors
/// A refusal for an unknown task, a detached HEAD, or a branch of that name that postflight did
/// not create; git and I/O errors.
///
/// # Writes
/// The worktree, its branch, the manifest.
pub fn create_or_reuse(ctx: &Context, n: u32, push: bool) -> Result<(Manifest, bool)> {
    let repo = &ctx.repo;
    let state = ctx.ledger().state()?;
    let info = state.task(n)?;
    if let Some(m) = Manifest::load(repo, n)? {
        if m.path.join(".git").exists() {
            return Ok((m, true));
        }
        return Err(Error::refused(
            format!("task {n}'s worktree {} is gone but its manifest is still there", m.path.display()),
            Some(&format!("run `xtask worktree remove {n} --force` to forget it, then start again")),
        ));
    }
    let target = current_branch(repo)?;
    let base = rev_parse(&repo.root, &format!("{target}^{{commit}}")).unwrap_or_default();
    let branch = branch_name(n, info.slug.as_deref().unwrap_or_default());
    if rev_parse(&repo.root, &format!("refs/heads/{branch}")).is_some() {
        return Err(Error::refused(
            format!("branch {branch} exists but postflight has no worktree of task {n} for it"),
            Some(&format!("delete or rename the branch (`git branch -m {branch} <other>`), then start again")),
        ));
    }
    let path = worktree_dir(repo, n);
    std::fs::create_dir_all(root_dir(repo)).map_err(|e| Error::io("create directory", root_dir(repo), e))?;
    let path_text = path.to_string_lossy().into_owned();
    git(&repo.root, &["worktree", "add", "-q", "-b", &branch, &path_text, &base])?;
    let manifest = Manifest {
        task: n,
        branch,
        path: path.clone(),
        base,
        target,
        invoking: repo.root.clone(),
        created: ctx.timestamp(),
        push,
        landing_conflict: Vec::new(),
    };
    manifest.save(repo)?;
    copy_ledger(repo, &path, n, info.slug.as_deref())?;
    copy_included(&repo.root, &path)?;
    Ok((manifest, false))
}

/// Copies the ledger files and task `n`'s directory (transient files left out) into `dest`.
fn copy_ledger(repo: &Repo, dest: &Path, n: u32, slug: Option<&str>) -> Result<()> {
    for rel in crate::ledger::LEDGER_FILES {
        let from = repo.root.join(rel);
        if let Ok(bytes) = std::fs::read(&from) {
            if std::fs::read(dest.join(rel)).ok().as_deref() != Some(&bytes[..]) {
                write_file(&dest.join(rel), &bytes)?;
            }
        }
    }
    let Some(slug) = slug else { return Ok(()) };
    let rel = format!("specs/{n}_{slug}");
    copy_tree(&repo.root.join(&rel), &dest.join(&rel))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(from) else { return Ok(()) };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name();
        let name_text = name.to_string_lossy();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            copy_tree(&e.path(), &to.join(&name))?;
        } else if kind.is_file() && !crate::git::is_transient(&name_text) {
            let bytes = std::fs::read(e.path()).map_err(|err| Error::io("read", e.path(), err))?;
            if std::fs::read(to.join(&name)).ok().as_deref() != Some(&bytes[..]) {
                write_file(&to.join(&name), &bytes)?;
            }
        }
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    crate::atomic::write(path, bytes)
}

/// The ignored files of `root` that `.worktreeinclude` lists (its lines are gitignore patterns;
/// a file is copied only when git ignores it too, as Claude Code does).
///
/// # Errors
/// git failures.
pub fn included_files(root: &Path) -> Result<Vec<String>> {
    if !root.join(WORKTREE_INCLUDE).is_file() {
        return Ok(Vec::new());
    }
    let listed = git(root, &["ls-files", "-z", "--others", "--ignored", "--exclude-from", WORKTREE_INCLUDE])?;
    let ignored = git(root, &["ls-files", "-z", "--others", "--ignored", "--exclude-standard"])?;
    let ignored: std::collections::BTreeSet<&str> = ignored.split('\0').filter(|p| !p.is_empty()).collect();
    Ok(listed.split('\0').filter(|p| !p.is_empty() && ignored.contains(p)).map(str::to_owned).collect())
}

fn copy_included(root: &Path, dest: &Path) -> Result<()> {
    for rel in included_files(root)? {
        let from = root.join(&rel);
        let to = dest.join(&rel);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        }
        // `fs::copy` keeps the permissions (an executable stays executable).
        std::fs::copy(&from, &to).map_err(|e| Error::io("copy", &from, e))?;
    }
    Ok(())
}

/// How far a worktree's work has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landed {
    /// Every commit of the branch has landed on the target (and on its upstream, for a run with
    /// `--push`).
    Yes,
    /// Landed on the target but the push was not accepted yet.
    NotPushed,
    /// Not landed.
    No,
}

impl Landed {
    /// `yes`, `not pushed`, `no`.
    pub fn as_str(self) -> &'static str {
        match self {
            Landed::Yes => "yes",
            Landed::NotPushed => "not pushed",
            Landed::No => "no",
        }
    }
}

/// Whether the branch's work is reachable from the target (and nothing uncommitted is left in the
/// worktree): its tip is an ancestor of the target,
/// or a commit of the target says `Landed-from: <tip>` (a landing re-applies the work as new
/// commits). With `--push`, the same must hold for the target's upstream.
pub fn landed(repo: &Repo, m: &Manifest) -> Landed {
    let Some(tip) = m.tip(repo) else { return Landed::No };
    if !uncommitted(m).is_empty() {
        return Landed::No;
    }
    let on = |target: &str| {
        is_ancestor(&repo.root, &tip, target)
            || git(&repo.root, &["log", "--format=%H", "-1", &format!("--grep=^Landed-from: {tip}"), target, "--"])
                .is_ok_and(|out| !out.trim().is_empty())
    };
    if !on(&m.target) {
        return Landed::No;
    }
    if m.push {
        match upstream(&repo.root, &m.target) {
            Ok((remote, merge)) => {
                let tracking = format!("refs/remotes/{remote}/{}", merge.trim_start_matches("refs/heads/"));
                if rev_parse(&repo.root, &tracking).is_none() || !on(&tracking) {
                    return Landed::NotPushed;
                }
            }
            Err(_) => return Landed::NotPushed,
        }
    }
    Landed::Yes
}

/// The remote and the merge ref of the branch `target` (`refs/heads/main`).
///
/// # Errors
/// A refusal when the branch has no upstream.
pub fn upstream(root: &Path, target: &str) -> Result<(String, String)> {
    let short = target.trim_start_matches("refs/heads/");
    let remote = git(root, &["config", "--get", &format!("branch.{short}.remote")]).map(|s| s.trim().to_owned());
    let merge = git(root, &["config", "--get", &format!("branch.{short}.merge")]).map(|s| s.trim().to_owned());
    match (remote, merge) {
        (Ok(r), Ok(m)) if !r.is_empty() && !m.is_empty() && r != "." => Ok((r, m)),
        _ => Err(Error::refused(
            format!("branch {short} has no upstream to push to"),
            Some(&format!("set one with `git branch --set-upstream-to=<remote>/{short}`, or run without --push")),
        )),
    }
}

/// The worktree's uncommitted, non-ignored changes outside the ledger files (a run's work in
/// progress); empty when the worktree is gone.
pub fn uncommitted(m: &Manifest) -> Vec<String> {
    if !m.path.exists() {
        return Vec::new();
    }
    match crate::git::WorkTreeState::read(&m.path) {
        Ok(state) => state.paths().filter(|p| !crate::ledger::LEDGER_FILES.contains(p)).map(str::to_owned).collect(),
        // An unreadable worktree is never taken for an empty one.
        Err(_) => vec![m.path.to_string_lossy().into_owned()],
    }
}

/// Removes task `n`'s worktree, its branch and its manifest: only when its work has landed,
/// unless `force`.
///
/// # Errors
/// A refusal when nothing is known of the task's worktree, or its work has not landed (nothing
/// removed); git and I/O errors.
///
/// # Writes
/// Removes the worktree directory, the branch and the manifest.
pub fn remove(repo: &Repo, n: u32, force: bool) -> Result<Manifest> {
    let Some(m) = Manifest::load(repo, n)? else {
        return Err(Error::refused(
            format!("postflight has no worktree of task {n}"),
            Some("`xtask worktree list` shows the worktrees postflight created"),
        ));
    };
    let state = landed(repo, &m);
    if state != Landed::Yes && !force {
        let what = if state == Landed::NotPushed { "has not been pushed" } else { "has not landed" };
        return Err(Error::refused(
            format!("task {n}'s work on {} {what}; its worktree {} is kept", m.branch, m.path.display()),
            Some(&format!(
                "land it with `xtask land {n}`{}, or pass --force to throw the work away",
                if m.push { " --push" } else { "" }
            )),
        ));
    }
    if m.path.exists() {
        let path = m.path.to_string_lossy().into_owned();
        if git(&repo.root, &["worktree", "remove", "--force", &path]).is_err() && m.path.exists() {
            std::fs::remove_dir_all(&m.path).map_err(|e| Error::io("remove", &m.path, e))?;
        }
    }
    let _ = git(&repo.root, &["worktree", "prune"]);
    if rev_parse(&repo.root, &format!("refs/heads/{}", m.branch)).is_some() {
        git(&repo.root, &["branch", "-D", "-q", &m.branch])?;
    }
    let path = manifest_path(repo, n);
    std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
    let _ = std::fs::remove_file(log_path(repo, n));
    Ok(m)
}

/// One line of `xtask worktree list` / `doctor`.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// The task.
    pub task: u32,
    /// Its status in the invoking ledger.
    pub state: String,
    /// Seconds since the worktree was created.
    pub age_seconds: i64,
    /// `yes`, `not pushed`, `no`.
    pub landed: &'static str,
    /// The branch.
    pub branch: String,
    /// The worktree directory.
    pub path: String,
    /// Whether a run's marker is in the worktree with its process gone.
    pub dead_run: bool,
    /// Whether a run is going on in it.
    pub running: bool,
    /// The paths of its last landing conflict.
    pub landing_conflict: Vec<String>,
}

/// Every worktree postflight created, with its task's state, age and whether it landed.
pub fn list(ctx: &Context) -> Vec<Listed> {
    let repo = &ctx.repo;
    let state = ctx.ledger().state().ok();
    Manifest::all(repo)
        .into_iter()
        .map(|m| {
            let info = state.as_ref().and_then(|s| s.task(m.task).ok());
            let status = info.as_ref().map(|i| i.status.to_string()).unwrap_or_else(|| "unknown".into());
            let marker = info
                .as_ref()
                .and_then(|i| i.slug.as_ref())
                .map(|slug| m.marker(&format!("specs/{}_{slug}", m.task)))
                .and_then(|p| crate::run::Marker::load(&p).ok());
            let running = marker.as_ref().is_some_and(|mk| mk.run_alive());
            let age = m.created.parse::<jiff::Timestamp>().map(|t| ctx.now().as_second() - t.as_second()).unwrap_or(0);
            Listed {
                task: m.task,
                state: status,
                age_seconds: age.max(0),
                landed: landed(repo, &m).as_str(),
                branch: m.branch.clone(),
                path: m.path.to_string_lossy().into_owned(),
                dead_run: marker.is_some() && !running,
                running,
                landing_conflict: m.landing_conflict.clone(),
            }
        })
        .collect()
}
