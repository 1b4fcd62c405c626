//! The commit itself (see the module documentation of [`crate::git`] for the order of steps):
//! path expansion, blob and tree writing, hooks, the compare-and-swap branch update and the
//! index update, all inside `index.lock`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use gix::bstr::{BString, ByteSlice};
use gix::index::entry::{Flags, Mode, Stat};
use gix::objs::tree::EntryKind;
use gix::ObjectId;

use super::cli;
use super::Scoped;
use super::{hooks, index_lock, message, paths, CommitOutcome, CommitRequest};
use crate::error::{Error, Result};
use crate::repo::Repo;
use crate::task_id::TaskId;

/// How long to wait for another git process's `index.lock`.
const INDEX_LOCK_WAIT: Duration = Duration::from_secs(5);
/// git's defaults for `core.filesRefLockTimeout` and `core.packedRefsTimeout`.
const REF_LOCK_WAIT: Duration = Duration::from_millis(100);
const PACKED_REFS_LOCK_WAIT: Duration = Duration::from_millis(1000);
/// How often the branch update is tried when HEAD moves under us.
const ATTEMPTS: usize = 3;

pub(super) fn commit(repo: &Repo, req: &CommitRequest) -> Result<CommitOutcome> {
    let message = message::build_message(
        &req.subject,
        req.body.as_deref(),
        &req.session_id,
        &req.trailers,
        req.agent_identity.as_deref(),
    )?;
    if req.paths.is_empty() {
        return Err(Error::refused("no paths to commit were given", Some("list the files or directories to commit")));
    }
    let root = repo.root.as_path();
    let targets = req.paths.iter().map(|p| paths::resolve(root, p)).collect::<Result<Vec<_>>>()?;
    let mut grepo = gix::open(root).map_err(|e| git("cannot open the repository", &e))?;
    // Trees on the way to several paths (`specs/` with 10,000 task directories is a tree of
    // 500 KB) are decoded once, not once per path.
    grepo.object_cache_size_if_unset(16 << 20);
    refuse_in_progress(&grepo)?;
    let (author, committer) = identity(&grepo)?;
    let settings = Settings::read(&grepo);

    let index_path = grepo.index_path();
    // Postflight commits queue here; lock files that a killed one left are removed.
    let mut lock = index_lock::IndexLock::acquire(&index_path, INDEX_LOCK_WAIT)?;
    // Read the index only now that nobody else can write it.
    let index = if index_path.exists() {
        // The trailing checksum is not verified, as git verifies it only in `git fsck`: hashing
        // the whole index was a fifth of a commit's time in a repository of 10,000 files.
        let options = gix::index::decode::Options::default();
        gix::index::File::at(&index_path, grepo.object_hash(), true, options)
            .map_err(|e| git("cannot read the index", &e))?
    } else {
        gix::index::File::from_state(gix::index::State::new(grepo.object_hash()), index_path.clone())
    };
    if index.is_sparse() {
        // Directories collapsed into one entry would read as deleted files here.
        return Err(Error::refused(
            "the index is a sparse index, which task commits do not support",
            Some("run `git sparse-checkout init --no-sparse-index` (or commit with git)"),
        ));
    }

    let ctx = Ctx { repo: &grepo, root, req, settings: &settings, index: &index };
    for attempt in 1..=ATTEMPTS {
        let head = read_head(&grepo)?;
        let mut plan = ctx.plan(&head, &targets)?;
        let mut next_index = index.clone();
        apply_to_index(&mut next_index, &plan.updates);
        // Like an empty `git commit --only`, except that hooks do not run for nothing. A commit
        // killed after moving the branch but before writing the index leaves the index behind
        // HEAD for its paths; the index is brought in line then, as that commit would have.
        if plan.tree == head.tree {
            if !index_changes(&index, &next_index).is_empty() {
                lock.commit(&next_index)?;
            }
            return Ok(CommitOutcome::NothingToCommit { skipped: plan.skipped });
        }
        // Each attempt starts from the caller's message: a commit-msg hook edits its own copy.
        let mut msg = message.clone();
        if !req.no_verify {
            ctx.run_hooks(&mut plan, &next_index, &author, &mut msg)?;
        }
        if plan.tree == head.tree {
            return Ok(CommitOutcome::NothingToCommit { skipped: plan.skipped });
        }
        let id = write_commit(&grepo, root, &settings, &head, plan.tree, &author, &committer, &msg)?;
        match move_head(&grepo, &head, id, &msg, &committer, &mut lock) {
            Ok(()) => {}
            Err(e) => {
                let now = read_head(&grepo)?;
                if now.commit != head.commit || now.reference != head.reference {
                    if attempt < ATTEMPTS {
                        continue;
                    }
                    return Err(Error::Git {
                        message: format!("HEAD moved during the commit {ATTEMPTS} times; nothing was committed"),
                        refused: false,
                        hint: Some("another process keeps committing; run the command again".into()),
                    });
                }
                return Err(e);
            }
        }
        lock.commit(&next_index)?;
        gc_auto(&grepo, root);
        let mut changed: Vec<String> = plan.changed.into_iter().chain(plan.hook_paths).collect();
        changed.sort();
        changed.dedup();
        return Ok(CommitOutcome::Committed { id: id.to_string(), paths: changed, skipped: plan.skipped });
    }
    unreachable!("the loop returns on its last attempt")
}

/// The tree a commit of `paths` would have (HEAD's tree with exactly those paths taken from the
/// work tree, as [`commit`] builds it), with every path of `remove` (files or directories)
/// taken out. No lock, no hook, no commit, no index write; only blobs and trees are written to
/// the object database (the ones the commit would write anyway).
pub(super) fn plan_tree(root: &Path, given: &[PathBuf], remove: &[String]) -> Result<(ObjectId, Vec<String>)> {
    let excluded = |p: &str| {
        remove.iter().any(|r| {
            let r = r.trim_end_matches('/');
            p == r || p.strip_prefix(r).is_some_and(|rest| rest.starts_with('/'))
        })
    };
    let targets: Vec<String> = given
        .iter()
        .map(|p| paths::resolve(root, p))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|t| !t.is_empty() && !excluded(t))
        .collect();
    let repo = gix::open(root).map_err(|e| git("cannot open the repository", &e))?;
    let settings = Settings::read(&repo);
    let index_path = repo.index_path();
    let index = if index_path.exists() {
        gix::index::File::at(&index_path, repo.object_hash(), true, gix::index::decode::Options::default())
            .map_err(|e| git("cannot read the index", &e))?
    } else {
        gix::index::File::from_state(gix::index::State::new(repo.object_hash()), index_path.clone())
    };
    let head = read_head(&repo)?;
    let req = CommitRequest::default();
    let ctx = Ctx { repo: &repo, root, req: &req, settings: &settings, index: &index };
    let mut plan = ctx.plan(&head, &targets)?;
    for r in remove {
        plan.editor.remove(r.trim_end_matches('/')).map_err(|e| git("cannot edit the tree", &e))?;
    }
    let tree = plan.editor.write().map_err(|e| git("cannot write the tree", &e))?.detach();
    Ok((tree, plan.changed))
}

/// An error from gix or git with its cause chain.
fn git(what: &str, e: &dyn std::error::Error) -> Error {
    Error::Git { message: format!("{what}: {}", chain(e)), refused: false, hint: None }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn refuse_in_progress(repo: &gix::Repository) -> Result<()> {
    use gix::state::InProgress;
    let what = match repo.state() {
        None | Some(InProgress::Bisect) => return Ok(()),
        Some(InProgress::Merge) => "a merge",
        Some(InProgress::CherryPick | InProgress::CherryPickSequence) => "a cherry-pick",
        Some(InProgress::Revert | InProgress::RevertSequence) => "a revert",
        Some(InProgress::ApplyMailbox | InProgress::ApplyMailboxRebase) => "a `git am`",
        Some(InProgress::Rebase | InProgress::RebaseInteractive) => "a rebase",
    };
    Err(Error::refused(
        format!("{what} is in progress; a task commit now would mix into it"),
        Some("finish or abort it first (git status shows how), then commit again"),
    ))
}

/// The author and committer (`Name <email>`) a commit made now would record, resolved exactly
/// as [`commit`] resolves them (`GIT_AUTHOR_*`/`GIT_COMMITTER_*`, `author.*`/`committer.*`,
/// `user.*`); what `xtask doctor` checks.
///
/// # Errors
/// The repository cannot be opened; no identity is set (the refusal a commit would give).
pub fn identities(repo: &Repo) -> Result<(String, String)> {
    let grepo = gix::open(&repo.root).map_err(|e| git("cannot open the repository", &e))?;
    let (author, committer) = identity(&grepo)?;
    let show = |s: &gix::actor::Signature| format!("{} <{}>", s.name, s.email);
    Ok((show(&author), show(&committer)))
}

/// Author and committer as git would pick them: `author.*`/`committer.*`, then `user.*`, then
/// the fallbacks (the `GIT_*_NAME`/`GIT_*_EMAIL`/`EMAIL` environment variables reach these keys
/// through gix's configuration, as they did through `Repository::author`). The time is
/// `GIT_*_DATE` when set, checked strictly, else now with the local offset as the C library
/// computes it, which is what git does (gix's own default loads the whole time zone database,
/// a tenth of a small commit's time).
fn identity(repo: &gix::Repository) -> Result<(gix::actor::Signature, gix::actor::Signature)> {
    let config = repo.config_snapshot();
    let get = |key: &str| config.string(key);
    let now = local_now();
    let person = |role: &str| -> Result<gix::actor::Signature> {
        let var = format!("GIT_{}_DATE", role.to_ascii_uppercase());
        let time = match std::env::var_os(&var).filter(|v| !v.is_empty()) {
            Some(v) => {
                let text = v.to_string_lossy();
                gix::date::parse(&text, Some(gix::date::Zoned::now())).map_err(|e| {
                    Error::refused(format!("{var}=`{text}` is not a date git understands ({})", chain(&e)), None)
                })?
            }
            None => now,
        };
        let name = get(&format!("{role}.name"))
            .or_else(|| get("user.name"))
            .or_else(|| get(&format!("gitoxide.{role}.nameFallback")));
        let email = get(&format!("{role}.email"))
            .or_else(|| get("user.email"))
            .or_else(|| get("gitoxide.user.emailFallback"))
            .or_else(|| get(&format!("gitoxide.{role}.emailFallback")));
        match (name, email) {
            (Some(name), Some(email)) => Ok(gix::actor::Signature { name, email, time }),
            _ => Err(Error::refused(
                format!("no {role} identity: git's user.name and user.email are not set"),
                Some("run `git config user.name \"Your Name\"` and `git config user.email you@example.com`"),
            )),
        }
    };
    Ok((person("author")?, person("committer")?))
}

/// Now, with the local time zone's offset from UTC (`TZ`, else `/etc/localtime`).
fn local_now() -> gix::date::Time {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let offset = crate::sys::local_offset(seconds);
    gix::date::Time { seconds, offset }
}

/// Repository settings that change how a working-tree file becomes a blob or a commit.
struct Settings {
    file_mode: bool,
    symlinks: bool,
    gpg_sign: bool,
    /// `core.autocrlf` or an attributes file outside the work tree may filter file content.
    filters_global: bool,
}

impl Settings {
    fn read(repo: &gix::Repository) -> Settings {
        let config = repo.config_snapshot();
        let autocrlf = match config.string("core.autocrlf") {
            Some(v) => v.eq_ignore_ascii_case(b"input") || config.boolean("core.autocrlf").unwrap_or(false),
            None => false,
        };
        let mut attribute_files = vec![repo.common_dir().join("info/attributes")];
        if let Ok(Some(p)) = config.trusted_path("core.attributesFile") {
            attribute_files.push(p);
        } else if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            attribute_files.push(PathBuf::from(xdg).join("git/attributes"));
        } else if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            attribute_files.push(PathBuf::from(home).join(".config/git/attributes"));
        }
        if std::env::var_os("GIT_ATTR_NOSYSTEM").is_none() {
            attribute_files.push(PathBuf::from("/etc/gitattributes"));
        }
        Settings {
            file_mode: config.boolean("core.fileMode").unwrap_or(true),
            symlinks: config.boolean("core.symlinks").unwrap_or(true),
            gpg_sign: config.boolean("commit.gpgSign").unwrap_or(false),
            filters_global: autocrlf || attribute_files.iter().any(|p| p.is_file()),
        }
    }
}

/// The commit HEAD points at, and the reference a commit moves.
struct Head {
    /// `None` on an unborn branch.
    commit: Option<ObjectId>,
    /// The commit's tree (the empty tree on an unborn branch).
    tree: ObjectId,
    /// The branch HEAD points to, or `None` when detached.
    reference: Option<BString>,
}

/// Whether HEAD's tree holds a file (not a tree) at `rel`: the trees along the path are read,
/// nothing else (no index, no work tree). `false` on an unborn branch.
pub(super) fn in_head(root: &Path, rel: &str) -> Result<bool> {
    let repo = gix::open(root).map_err(|e| git("cannot open the repository", &e))?;
    let head = read_head(&repo)?;
    if head.commit.is_none() {
        return Ok(false);
    }
    let tree = repo.find_tree(head.tree).map_err(|e| git("cannot read HEAD's tree", &e))?;
    Ok(tree_entry(&tree, rel)?.is_some_and(|(k, _)| k != EntryKind::Tree))
}

fn read_head(repo: &gix::Repository) -> Result<Head> {
    let head = repo.head().map_err(|e| git("cannot read HEAD", &e))?;
    let reference = head.referent_name().map(|n| n.as_bstr().to_owned());
    let commit = head.id().map(gix::Id::detach);
    let tree = match commit {
        Some(id) => repo
            .find_commit(id)
            .and_then(|c| c.tree_id())
            .map_err(|e| git(&format!("cannot read the tree of HEAD ({id})"), &e))?
            .detach(),
        None => ObjectId::empty_tree(repo.object_hash()),
    };
    Ok(Head { commit, tree, reference })
}

/// What [`Ctx::new_entry`] made of one path, with its notes on paths left out.
type EntryResult = Result<(Option<New>, Vec<String>)>;

/// What one path becomes in the commit and the index.
enum Update {
    /// The path holds this blob.
    Set { path: BString, id: ObjectId, mode: Mode, stat: Stat },
    /// The path is gone.
    Remove { path: BString },
}

/// One attempt's result: the tree and what to do to the index afterwards.
struct Plan<'r> {
    tree: ObjectId,
    updates: Vec<Update>,
    /// Paths whose entry differs from HEAD's.
    changed: Vec<String>,
    /// Paths a pre-commit hook changed in the commit's index.
    hook_paths: Vec<String>,
    skipped: Vec<String>,
    /// The editor that made `tree`, kept for the pre-commit hook's changes.
    editor: gix::object::tree::Editor<'r>,
}

struct Ctx<'a> {
    repo: &'a gix::Repository,
    root: &'a Path,
    req: &'a CommitRequest,
    settings: &'a Settings,
    index: &'a gix::index::File,
}

impl<'a> Ctx<'a> {
    /// The task and its scoping when `path` is a file the task shares with others.
    fn shared(&self, path: &str) -> Option<(&'a TaskId, &'a dyn super::Scoping)> {
        let scoping = self.req.scoping.as_deref()?;
        self.req.task.as_ref().filter(|_| scoping.shares(path)).map(|task| (task, scoping))
    }

    /// Builds the commit's tree from HEAD's for the given targets.
    fn plan(&self, head: &Head, targets: &[String]) -> Result<Plan<'a>> {
        let head_tree = self.repo.find_tree(head.tree).map_err(|e| git("cannot read HEAD's tree", &e))?;
        let mut skipped = Vec::new();
        let candidates = self.expand(&head_tree, targets, &mut skipped)?;

        // First what each path becomes; blobs that need git's clean filters are hashed in one batch.
        let mut items = Vec::with_capacity(candidates.len());
        let mut attributes_seen = std::collections::HashMap::new();
        let head_entries = candidates.iter().map(|p| tree_entry(&head_tree, p)).collect::<Result<Vec<_>>>()?;
        // The shared ledger files (megabytes in a large ledger: read, scoped, hashed and
        // compressed) are done on threads of their own while this one does the other paths.
        // Decided once per path: a file that grows or shrinks meanwhile must not fall between
        // the threads and this one.
        let on_thread: Vec<bool> = candidates
            .iter()
            .map(|p| {
                self.shared(p).is_some()
                    && std::fs::metadata(self.root.join(p)).is_ok_and(|m| m.len() >= super::LARGE_LEDGER_FILE)
            })
            .collect();
        let mut results: Vec<Option<EntryResult>> = Vec::new();
        std::thread::scope(|scope| {
            let threads: Vec<_> = candidates
                .iter()
                .zip(&head_entries)
                .enumerate()
                .filter(|(i, _)| on_thread[*i])
                .map(|(i, (path, head_entry))| {
                    let (root, req, settings, index) = (self.root, self.req, self.settings, self.index);
                    let work = move || {
                        // A gix repository handle stays on its thread: this one opens its own.
                        let mut repo = gix::open(root).map_err(|e| git("cannot open the repository", &e))?;
                        repo.object_cache_size_if_unset(16 << 20);
                        let ctx = Ctx { repo: &repo, root, req, settings, index };
                        let mut own_skipped = Vec::new();
                        let new = ctx.new_entry(path, *head_entry, &mut Default::default(), &mut own_skipped)?;
                        Ok((new, own_skipped))
                    };
                    (i, scope.spawn(work))
                })
                .collect();
            results = candidates
                .iter()
                .zip(&head_entries)
                .zip(&on_thread)
                .map(|((path, head_entry), on_thread)| {
                    (!on_thread).then(|| {
                        let mut own_skipped = Vec::new();
                        let new = self.new_entry(path, *head_entry, &mut attributes_seen, &mut own_skipped)?;
                        Ok((new, own_skipped))
                    })
                })
                .collect();
            for (i, thread) in threads {
                results[i] = Some(thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
            }
        });
        for ((path, head_entry), result) in candidates.into_iter().zip(head_entries).zip(results) {
            let (new, own_skipped) = result.expect("every path has a result")?;
            skipped.extend(own_skipped);
            if let Some(new) = new {
                items.push((path, head_entry, new));
            }
        }
        let to_hash: Vec<&str> = items
            .iter()
            .filter(|(_, _, n)| matches!(n, New::Blob { id: None, .. }))
            .map(|(p, _, _)| p.as_str())
            .collect();
        let mut hashed = hash_with_git(self.root, &to_hash)?.into_iter();

        let mut editor = self.repo.edit_tree(head.tree).map_err(|e| git("cannot edit HEAD's tree", &e))?;
        let mut updates = Vec::with_capacity(items.len());
        let mut changed = Vec::new();
        for (path, head_entry, new) in items {
            match new {
                New::Gone => {
                    if head_entry.is_some() {
                        editor.remove(path.as_str()).map_err(|e| git("cannot edit the tree", &e))?;
                        changed.push(path.clone());
                    }
                    updates.push(Update::Remove { path: path.into() });
                }
                New::Blob { id, mode, stat } => {
                    let id = match id {
                        Some(id) => id,
                        None => hashed.next().expect("one id per hashed path"),
                    };
                    let kind = kind_of(mode);
                    if head_entry.is_none() {
                        // A file where HEAD has a file as a parent directory replaces that file.
                        for ancestor in ancestors(&path) {
                            if tree_entry(&head_tree, ancestor)?.is_some_and(|(k, _)| k != EntryKind::Tree) {
                                editor.remove(ancestor).map_err(|e| git("cannot edit the tree", &e))?;
                            }
                        }
                    }
                    if head_entry != Some((kind, id)) {
                        editor.upsert(path.as_str(), kind, id).map_err(|e| git("cannot edit the tree", &e))?;
                        changed.push(path.clone());
                    }
                    updates.push(Update::Set { path: path.into(), id, mode, stat });
                }
            }
        }
        // Transient files left tracked go, from the tree and from the index.
        for path in &self.req.untrack {
            let path = path.trim_start_matches("./");
            if tree_entry(&head_tree, path)?.is_some() {
                editor.remove(path).map_err(|e| git("cannot edit the tree", &e))?;
                changed.push(path.to_owned());
            }
            if self.index.entry_by_path(path.as_bytes().as_bstr()).is_some() {
                updates.push(Update::Remove { path: path.into() });
            }
        }
        let tree = editor.write().map_err(|e| git("cannot write the tree", &e))?.detach();
        Ok(Plan { tree, updates, changed, hook_paths: Vec::new(), skipped, editor })
    }

    /// The candidate paths: explicit files, and for a directory every file below it that is
    /// tracked (in the index or in HEAD) or untracked and not ignored.
    fn expand(
        &self,
        head_tree: &gix::Tree<'a>,
        targets: &[String],
        skipped: &mut Vec<String>,
    ) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        let mut ignore = None;
        for t in targets {
            let abs = self.root.join(t);
            let md = std::fs::symlink_metadata(&abs);
            if t.is_empty() || md.as_ref().is_ok_and(|m| m.is_dir()) {
                self.expand_dir(head_tree, t, &mut out, &mut ignore, skipped)?;
                continue;
            }
            if paths::is_transient(basename(t)) {
                skipped.push(format!("{t}: transient file, never committed"));
                continue;
            }
            let tracked = self.is_tracked(head_tree, t)?;
            match md {
                Ok(_) if tracked => {
                    out.insert(t.clone());
                }
                Ok(_) => {
                    if !self.req.force.contains(t) && self.is_ignored(&mut ignore, t, false)? {
                        skipped.push(format!("{t}: ignored by .gitignore, not added"));
                    } else {
                        out.insert(t.clone());
                    }
                }
                Err(e) if is_missing(&e) => {
                    if tracked {
                        out.insert(t.clone());
                    } else if !self.tracked_below(head_tree, t)?.is_empty() {
                        // A deleted directory: every tracked file below it is deleted.
                        self.expand_dir(head_tree, t, &mut out, &mut ignore, skipped)?;
                    } else {
                        skipped.push(format!("{t}: does not exist and is not tracked"));
                    }
                }
                Err(e) => return Err(Error::io("inspect", abs, e)),
            }
        }
        Ok(out)
    }

    fn expand_dir(
        &self,
        head_tree: &gix::Tree<'a>,
        dir: &str,
        out: &mut BTreeSet<String>,
        ignore: &mut Option<gix::AttributeStack<'a>>,
        skipped: &mut Vec<String>,
    ) -> Result<()> {
        let tracked = self.tracked_below(head_tree, dir)?;
        for path in &tracked {
            if paths::is_transient(basename(path)) {
                skipped.push(format!("{path}: transient file, never committed"));
            } else {
                out.insert(path.clone());
            }
        }
        let mut stack = vec![dir.to_owned()];
        while let Some(rel) = stack.pop() {
            let abs = self.root.join(&rel);
            let entries = match std::fs::read_dir(&abs) {
                Ok(entries) => entries,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(Error::io("list", abs, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("list", &abs, e))?;
                let Ok(name) = entry.file_name().into_string() else {
                    skipped.push(format!("{rel}/{}: not valid UTF-8, not added", entry.file_name().to_string_lossy()));
                    continue;
                };
                if name == ".git" {
                    continue;
                }
                let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
                let file_type = entry.file_type().map_err(|e| Error::io("inspect", entry.path(), e))?;
                if file_type.is_dir() {
                    let has_tracked =
                        tracked.range(format!("{path}/")..).next().is_some_and(|t| t.starts_with(&format!("{path}/")));
                    if !has_tracked && entry.path().join(".git").exists() {
                        skipped.push(format!("{path}: a nested repository, not added"));
                    } else if has_tracked || !self.is_ignored(ignore, &path, true)? {
                        stack.push(path);
                    }
                } else if tracked.contains(&path) {
                } else if paths::is_transient(&name) {
                    skipped.push(format!("{path}: transient file, never committed"));
                } else if !self.is_ignored(ignore, &path, false)? {
                    out.insert(path);
                }
            }
        }
        Ok(())
    }

    /// Whether `path` is in the index (any stage) or in HEAD's tree as a non-tree.
    fn is_tracked(&self, head_tree: &gix::Tree<'a>, path: &str) -> Result<bool> {
        Ok(self.index.entry_index_by_path(path.as_bytes().as_bstr()).is_ok()
            || tree_entry(head_tree, path)?.is_some_and(|(k, _)| k != EntryKind::Tree))
    }

    /// Every file below `dir` ("" for all) that the index or HEAD's tree holds.
    fn tracked_below(&self, head_tree: &gix::Tree<'a>, dir: &str) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        let entries = if prefix.is_empty() {
            Some(self.index.entries())
        } else {
            self.index.prefixed_entries(prefix.as_bytes().as_bstr())
        };
        for e in entries.unwrap_or_default() {
            out.insert(e.path(self.index).to_str_lossy().into_owned());
        }
        let start = if dir.is_empty() {
            Some(head_tree.id)
        } else {
            tree_entry(head_tree, dir)?.filter(|(k, _)| *k == EntryKind::Tree).map(|(_, id)| id)
        };
        let mut stack: Vec<(ObjectId, String)> = start.map(|id| (id, prefix)).into_iter().collect();
        while let Some((id, base)) = stack.pop() {
            let tree = self.repo.find_tree(id).map_err(|e| git("cannot read a tree of HEAD", &e))?;
            for entry in tree.iter() {
                let entry = entry.map_err(|e| git("cannot read a tree of HEAD", &e))?;
                let path = format!("{base}{}", entry.filename().to_str_lossy());
                if entry.mode().is_tree() {
                    stack.push((entry.object_id(), format!("{path}/")));
                } else {
                    out.insert(path);
                }
            }
        }
        Ok(out)
    }

    /// Whether `path` or one of its parent directories is ignored.
    fn is_ignored(&self, ignore: &mut Option<gix::AttributeStack<'a>>, path: &str, is_dir: bool) -> Result<bool> {
        let stack = match ignore {
            Some(stack) => stack,
            None => ignore.insert(
                self.repo
                    .excludes(
                        self.index,
                        None,
                        gix::worktree::stack::state::ignore::Source::WorktreeThenIdMappingIfNotSkipped,
                    )
                    .map_err(|e| git("cannot read the ignore files", &e))?,
            ),
        };
        let mut end = 0;
        loop {
            let next = path[end..].find('/').map(|i| end + i);
            let (sub, dir) = match next {
                Some(i) => (&path[..i], true),
                None => (path, is_dir),
            };
            let mode = if dir { Some(Mode::DIR) } else { Some(Mode::FILE) };
            let excluded = stack
                .at_entry(sub.as_bytes().as_bstr(), mode)
                .map_err(|e| git("cannot check the ignore files", &e))?
                .is_excluded();
            if excluded {
                return Ok(true);
            }
            match next {
                Some(i) => end = i + 1,
                None => return Ok(false),
            }
        }
    }

    /// What `path` becomes: gone, a blob, or `None` when it is left out (with a note).
    fn new_entry(
        &self,
        path: &str,
        head_entry: Option<(EntryKind, ObjectId)>,
        attributes_seen: &mut std::collections::HashMap<String, bool>,
        skipped: &mut Vec<String>,
    ) -> Result<Option<New>> {
        let index_entry =
            self.index.entry_by_path_and_stage(path.as_bytes().as_bstr(), gix::index::entry::Stage::Unconflicted);
        if index_entry.is_some_and(|e| e.mode == Mode::COMMIT)
            || head_entry.is_some_and(|(k, _)| k == EntryKind::Commit)
        {
            skipped.push(format!("{path}: a submodule; commit it with git"));
            return Ok(None);
        }
        if index_entry.is_some_and(|e| e.flags.contains(Flags::SKIP_WORKTREE)) {
            skipped.push(format!("{path}: outside the sparse checkout, not committed"));
            return Ok(None);
        }
        let ledger = self.shared(path);
        let abs = self.root.join(path);
        let md = match gix::index::fs::Metadata::from_path_no_follow(&abs) {
            Ok(md) if md.is_dir() => None,
            Ok(md) => Some(md),
            Err(e) if is_missing(&e) => None,
            Err(e) => return Err(Error::io("inspect", abs, e)),
        };
        let Some(md) = md else {
            if ledger.is_some() && head_entry.is_some() {
                skipped.push(format!("{path}: deleted in the working tree; a task commit leaves the ledger in place"));
                return Ok(None);
            }
            return Ok(Some(New::Gone));
        };
        let stat = Stat::from_fs(&md).map_err(|e| Error::Git {
            message: format!("{path}: file time out of range ({e})"),
            refused: false,
            hint: None,
        })?;
        let old_mode = index_entry.map(|e| e.mode).or(head_entry.map(|(k, _)| mode_of(k)));
        if md.is_symlink() {
            let target = std::fs::read_link(&abs).map_err(|e| Error::io("read the link", &abs, e))?;
            let id = self.write_blob(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()))?;
            return Ok(Some(New::Blob { id: Some(id), mode: Mode::SYMLINK, stat }));
        }
        if !md.is_file() {
            skipped.push(format!("{path}: neither a regular file nor a symbolic link, not added"));
            return Ok(None);
        }
        let mode = if !self.settings.symlinks && old_mode == Some(Mode::SYMLINK) {
            Mode::SYMLINK
        } else if self.settings.file_mode {
            if md.is_executable() {
                Mode::FILE_EXECUTABLE
            } else {
                Mode::FILE
            }
        } else {
            old_mode.filter(|m| *m == Mode::FILE_EXECUTABLE).unwrap_or(Mode::FILE)
        };
        if let (Some((task, scoping)), Some((EntryKind::Blob | EntryKind::BlobExecutable, head_id))) =
            (ledger, head_entry)
        {
            let bytes = std::fs::read(&abs).map_err(|e| Error::io("read", &abs, e))?;
            let head_bytes = match self.req.prefetch.as_ref().and_then(|ahead| ahead.take(&head_id)) {
                Some(bytes) => bytes,
                None => {
                    self.repo.find_blob(head_id).map_err(|e| git("cannot read HEAD's ledger file", &e))?.detach().data
                }
            };
            let ahead = self.req.prefetch.as_ref().and_then(|ahead| ahead.written(path, &bytes));
            let scoped = scoping.scope(path, &head_bytes, &bytes, task, ahead.and_then(|(_, entry)| entry))?;
            let same = match &scoped {
                Scoped::Worktree => true,
                Scoped::Head => head_bytes == bytes,
                Scoped::New(new) => *new == bytes,
            };
            // Other tasks' edits stay in the working tree: a stat that cannot match makes git look again.
            let stat = if same { stat } else { Stat::default() };
            let id = match scoped {
                Scoped::Head => head_id,
                Scoped::Worktree => match ahead {
                    Some((id, _)) => id,
                    None => self.write_blob(&bytes)?,
                },
                Scoped::New(new) => self.write_blob(&new)?,
            };
            return Ok(Some(New::Blob { id: Some(id), mode, stat }));
        }
        if self.settings.filters_global || self.attributes_apply(path, attributes_seen) {
            return Ok(Some(New::Blob { id: None, mode, stat }));
        }
        let bytes = std::fs::read(&abs).map_err(|e| Error::io("read", &abs, e))?;
        Ok(Some(New::Blob { id: Some(self.write_blob(&bytes)?), mode, stat }))
    }

    /// Whether a `.gitattributes` file (in the work tree or the index) sits in `path`'s directory
    /// or above it, so clean filters may apply.
    fn attributes_apply(&self, path: &str, seen: &mut std::collections::HashMap<String, bool>) -> bool {
        let mut dir = "";
        let mut rest = path;
        loop {
            let file = if dir.is_empty() { ".gitattributes".to_owned() } else { format!("{dir}/.gitattributes") };
            let present = *seen.entry(file.clone()).or_insert_with(|| {
                self.root.join(&file).exists() || self.index.entry_index_by_path(file.as_bytes().as_bstr()).is_ok()
            });
            if present {
                return true;
            }
            match rest.find('/') {
                Some(i) => {
                    dir = &path[..dir.len() + usize::from(!dir.is_empty()) + i];
                    rest = &rest[i + 1..];
                }
                None => return false,
            }
        }
    }

    fn write_blob(&self, bytes: &[u8]) -> Result<ObjectId> {
        Ok(self.repo.write_blob(bytes).map_err(|e| git("cannot write a blob", &e))?.detach())
    }

    /// Runs `pre-commit` and `commit-msg` (unless absent) on a temporary index holding the
    /// commit's tree; applies the pre-commit hook's index changes to the tree and takes the
    /// message back from the commit-msg hook.
    fn run_hooks(
        &self,
        plan: &mut Plan<'a>,
        next_index: &gix::index::File,
        author: &gix::actor::Signature,
        msg: &mut String,
    ) -> Result<()> {
        let dir = hooks::hooks_dir(self.repo, self.root);
        let (pre, commit_msg) = (hooks::find(&dir, "pre-commit"), hooks::find(&dir, "commit-msg"));
        if pre.is_none() && commit_msg.is_none() {
            return Ok(());
        }
        let git_dir = self.repo.path().to_path_buf();
        let mut tmp = gix::lock::File::acquire_to_update_resource(
            git_dir.join(format!("next-index-{}", std::process::id())),
            gix::lock::acquire::Fail::Immediately,
            None,
            0,
        )
        .map_err(|e| git("cannot create the hooks' temporary index", &e))?;
        let mut tree_index =
            self.repo.index_from_tree(&plan.tree).map_err(|e| git("cannot build the hooks' index", &e))?;
        copy_stats(&mut tree_index, next_index);
        {
            let mut w = std::io::BufWriter::new(&mut tmp);
            tree_index
                .write_to(&mut w, gix::index::write::Options::default())
                .map_err(|e| git("cannot write the hooks' index", &e))?;
            w.flush().map_err(|e| Error::io("write", git_dir.join("next-index"), e))?;
        }
        let tmp_path = tmp.lock_path().to_path_buf();
        let env: Vec<(&str, OsString)> = vec![
            ("GIT_INDEX_FILE", tmp_path.clone().into_os_string()),
            ("GIT_EDITOR", ":".into()),
            ("GIT_PREFIX", "".into()),
            ("GIT_AUTHOR_NAME", author.name.to_str_lossy().into_owned().into()),
            ("GIT_AUTHOR_EMAIL", author.email.to_str_lossy().into_owned().into()),
            ("GIT_AUTHOR_DATE", git_date(&author.time).into()),
        ];
        if let Some(hook) = pre {
            hooks::run(&hook, &[], self.root, &env)?;
            let after = gix::index::File::at(&tmp_path, self.repo.object_hash(), false, Default::default())
                .map_err(|e| git("cannot read the index the pre-commit hook left", &e))?;
            let changes = index_changes(&tree_index, &after);
            if !changes.is_empty() {
                for (path, new) in changes {
                    match new {
                        Some((kind, id)) => plan.editor.upsert(path.as_bytes().as_bstr(), kind, id),
                        None => plan.editor.remove(path.as_bytes().as_bstr()),
                    }
                    .map_err(|e| git("cannot apply the pre-commit hook's changes", &e))?;
                    plan.hook_paths.push(path);
                }
                plan.tree = plan.editor.write().map_err(|e| git("cannot write the tree", &e))?.detach();
            }
        }
        if let Some(hook) = commit_msg {
            let file = git_dir.join("COMMIT_EDITMSG");
            std::fs::write(&file, msg.as_bytes()).map_err(|e| Error::io("write", &file, e))?;
            let arg = file.strip_prefix(self.root).map(Path::to_path_buf).unwrap_or_else(|_| file.clone());
            hooks::run(&hook, &[arg.into_os_string()], self.root, &env)?;
            let text = std::fs::read(&file).map_err(|e| Error::io("read", &file, e))?;
            let cleaned = message::stripspace(&String::from_utf8_lossy(&text));
            if cleaned.is_empty() {
                return Err(Error::refused("the commit-msg hook left an empty message; nothing was committed", None));
            }
            *msg = cleaned;
        }
        Ok(())
    }
}

/// What a candidate path becomes.
enum New {
    Gone,
    /// `id` is `None` when git must hash the file (clean filters).
    Blob {
        id: Option<ObjectId>,
        mode: Mode,
        stat: Stat,
    },
}

fn is_missing(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory)
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `a`, `a/b` for `a/b/c`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// HEAD's entry at `path`.
fn tree_entry(tree: &gix::Tree<'_>, path: &str) -> Result<Option<(EntryKind, ObjectId)>> {
    Ok(tree
        .lookup_entry_by_path(path)
        .map_err(|e| git(&format!("cannot look up {path} in HEAD"), &e))?
        .map(|e| (e.mode().kind(), e.object_id())))
}

fn kind_of(mode: Mode) -> EntryKind {
    match mode {
        Mode::FILE_EXECUTABLE => EntryKind::BlobExecutable,
        Mode::SYMLINK => EntryKind::Link,
        Mode::COMMIT => EntryKind::Commit,
        Mode::DIR => EntryKind::Tree,
        _ => EntryKind::Blob,
    }
}

fn mode_of(kind: EntryKind) -> Mode {
    match kind {
        EntryKind::BlobExecutable => Mode::FILE_EXECUTABLE,
        EntryKind::Link => Mode::SYMLINK,
        EntryKind::Commit => Mode::COMMIT,
        EntryKind::Tree => Mode::DIR,
        EntryKind::Blob => Mode::FILE,
    }
}

/// `@<seconds> <+hhmm>`, the form git passes to hooks.
fn git_date(time: &gix::date::Time) -> String {
    let mut raw = Vec::new();
    time.write_to(&mut raw).expect("writing to memory cannot fail");
    format!("@{}", String::from_utf8_lossy(&raw))
}

/// Hashes and stores the files with `git hash-object`, which applies the clean filters
/// (`core.autocrlf`, `.gitattributes`, LFS) exactly as `git add` does.
fn hash_with_git(root: &Path, paths: &[&str]) -> Result<Vec<ObjectId>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let input: String = paths.iter().map(|p| format!("{p}\n")).collect();
    let out = cli::run(root, &["hash-object", "-w", "--stdin-paths"], Some(input.as_bytes()), &[0])?;
    let ids: Vec<ObjectId> = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| ObjectId::from_hex(l.trim().as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Git {
            message: format!("git hash-object printed a bad id: {e}"),
            refused: false,
            hint: None,
        })?;
    if ids.len() != paths.len() {
        return Err(Error::Git {
            message: format!("git hash-object returned {} ids for {} files", ids.len(), paths.len()),
            refused: false,
            hint: None,
        });
    }
    Ok(ids)
}

/// Writes the commit object: with gix, or with `git commit-tree -S` when `commit.gpgSign` asks
/// for a signature (gix's minimal build cannot sign).
#[allow(clippy::too_many_arguments)]
fn write_commit(
    repo: &gix::Repository,
    root: &Path,
    settings: &Settings,
    head: &Head,
    tree: ObjectId,
    author: &gix::actor::Signature,
    committer: &gix::actor::Signature,
    msg: &str,
) -> Result<ObjectId> {
    if settings.gpg_sign {
        return commit_tree_with_git(root, head, tree, author, committer, msg);
    }
    let commit = gix::objs::Commit {
        tree,
        parents: head.commit.into_iter().collect(),
        author: author.clone(),
        committer: committer.clone(),
        encoding: None,
        message: msg.into(),
        extra_headers: Vec::new(),
    };
    Ok(repo.write_object(&commit).map_err(|e| git("cannot write the commit", &e))?.detach())
}

fn commit_tree_with_git(
    root: &Path,
    head: &Head,
    tree: ObjectId,
    author: &gix::actor::Signature,
    committer: &gix::actor::Signature,
    msg: &str,
) -> Result<ObjectId> {
    let tree = tree.to_string();
    let parent = head.commit.map(|p| p.to_string());
    let mut args = vec!["commit-tree", tree.as_str()];
    if let Some(parent) = &parent {
        args.extend(["-p", parent.as_str()]);
    }
    args.push("-S");
    let env = [
        ("GIT_AUTHOR_NAME", author.name.to_str_lossy().into_owned()),
        ("GIT_AUTHOR_EMAIL", author.email.to_str_lossy().into_owned()),
        ("GIT_AUTHOR_DATE", git_date(&author.time)),
        ("GIT_COMMITTER_NAME", committer.name.to_str_lossy().into_owned()),
        ("GIT_COMMITTER_EMAIL", committer.email.to_str_lossy().into_owned()),
        ("GIT_COMMITTER_DATE", git_date(&committer.time)),
    ];
    let git = env.iter().fold(cli::Git::new(root, &args), |git, (k, v)| git.env(k, v));
    let out = git.stdin(msg.as_bytes()).run(&[0]).map_err(|e| Error::Git {
        message: format!("commit.gpgSign is set and `git commit-tree -S` failed; nothing was committed\n{e}"),
        refused: true,
        hint: Some("fix the signing setup (gpg.program, user.signingKey), or unset commit.gpgSign".into()),
    })?;
    ObjectId::from_hex(String::from_utf8_lossy(&out).trim().as_bytes()).map_err(|e| Error::Git {
        message: format!("git commit-tree printed a bad id: {e}"),
        refused: false,
        hint: None,
    })
}

/// Moves the branch HEAD points to (or a detached HEAD) to `id`, only if it still points
/// where it pointed when we read it; writes the reflogs like `git commit`.
fn move_head(
    repo: &gix::Repository,
    head: &Head,
    id: ObjectId,
    msg: &str,
    committer: &gix::actor::Signature,
    lock: &mut index_lock::IndexLock,
) -> Result<()> {
    use gix::lock::acquire::Fail;
    use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
    use gix::refs::Target;
    let expected = match head.commit {
        Some(c) => PreviousValue::MustExistAndMatch(Target::Object(c)),
        None => PreviousValue::MustNotExist,
    };
    let edit = RefEdit {
        change: Change::Update {
            log: LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: gix::reference::log::message(
                    "commit",
                    msg.as_bytes().as_bstr(),
                    usize::from(head.commit.is_some()),
                ),
            },
            expected,
            new: Target::Object(id),
        },
        name: "HEAD".try_into().expect("HEAD is a valid reference name"),
        deref: true,
    };
    // The reflog line names the commit's committer (gix's own lookup would load the time zone
    // database again).
    let mut time = gix::date::parse::TimeBuf::default();
    let committer = committer.to_ref(&mut time);
    // gix writes the new id into each reference lock it creates (HEAD's and the branch's); they
    // are recorded by that content before they exist, so a kill cannot leave them unrecorded.
    let mut locks = vec![(repo.git_dir().join("HEAD.lock"), format!("{id}\n"))];
    if let Some(branch) = &head.reference {
        locks.push((repo.common_dir().join(format!("{}.lock", branch.to_str_lossy())), format!("{id}\n")));
    }
    lock.record_ref_locks(&locks);
    // What `edit_reference` does, with git's default lock timeouts.
    let result = repo
        .refs
        .transaction()
        .prepare(
            Some(edit),
            Fail::AfterDurationWithBackoff(REF_LOCK_WAIT),
            Fail::AfterDurationWithBackoff(PACKED_REFS_LOCK_WAIT),
        )
        .map_err(|e| git("cannot move HEAD", &e))
        .and_then(|t| t.commit(Some(committer)).map_err(|e| git("cannot move HEAD", &e)));
    lock.forget_ref_locks();
    result.map(|_| ())
}

/// Makes the index hold exactly what the commit holds for the committed paths; everything
/// else (other staged changes) stays. Drops the tree cache, which would otherwise be stale.
fn apply_to_index(index: &mut gix::index::File, updates: &[Update]) {
    let mut exact: HashSet<BString> = HashSet::new();
    let mut dirs: Vec<BString> = Vec::new();
    for u in updates {
        match u {
            Update::Set { path, .. } => {
                exact.insert(path.clone());
                let text = path.to_str_lossy();
                for a in ancestors(&text) {
                    exact.insert(a.into());
                }
                let mut dir = path.clone();
                dir.push(b'/');
                dirs.push(dir);
            }
            Update::Remove { path } => {
                exact.insert(path.clone());
            }
        }
    }
    index.remove_entries(|_, p, _| exact.contains(p) || dirs.iter().any(|d| p.starts_with(d.as_slice())));
    for u in updates {
        if let Update::Set { path, id, mode, stat } = u {
            index.dangerously_push_entry(*stat, *id, Flags::empty(), *mode, path.as_bstr());
        }
    }
    index.sort_entries();
    // gix writes the tree cache as it was read; stale, it would make the next plain
    // `git commit` silently revert this commit (dependency notes §1.5, pitfall 1).
    index.remove_tree();
}

/// Copies the real index's stat data into `tree_index` where path, id and mode agree, so
/// commands run by hooks need not re-hash unchanged files.
fn copy_stats(tree_index: &mut gix::index::File, real: &gix::index::File) {
    let (entries, backing) = tree_index.entries_mut_and_pathbacking();
    for e in entries {
        let path = e.path_in(backing);
        if let Some(r) = real.entry_by_path_and_stage(path, gix::index::entry::Stage::Unconflicted) {
            if r.id == e.id && r.mode == e.mode {
                e.stat = r.stat;
            }
        }
    }
}

/// Paths whose stage-0 entry differs between two indexes: `Some((kind, id))` for the new
/// entry, `None` for a removal.
fn index_changes(before: &gix::index::File, after: &gix::index::File) -> Vec<(String, Option<(EntryKind, ObjectId)>)> {
    let map = |f: &gix::index::File| -> BTreeMap<String, (EntryKind, ObjectId)> {
        f.entries()
            .iter()
            .filter(|e| e.stage_raw() == 0)
            .map(|e| (e.path(f).to_str_lossy().into_owned(), (kind_of(e.mode), e.id)))
            .collect()
    };
    let (b, a) = (map(before), map(after));
    let mut out = Vec::new();
    for (path, entry) in &a {
        if b.get(path) != Some(entry) {
            out.push((path.clone(), Some(*entry)));
        }
    }
    for path in b.keys() {
        if !a.contains_key(path) {
            out.push((path.clone(), None));
        }
    }
    out
}

/// Runs `git gc --auto` when git's own heuristic (more than `gc.auto / 256` loose objects in
/// `objects/17`) says the repository needs it, as `git commit` does; failures are ignored.
fn gc_auto(repo: &gix::Repository, root: &Path) {
    let limit = repo.config_snapshot().integer("gc.auto").unwrap_or(6700);
    if limit <= 0 {
        return;
    }
    let per_dir = (limit + 255) / 256;
    let count = std::fs::read_dir(repo.common_dir().join("objects/17")).map(|d| d.count()).unwrap_or(0);
    if (count as i64) > per_dir {
        // Output to nowhere: `gc --auto` may go on in the background, holding any pipe open.
        let _ = cli::command(root)
            .args(["gc", "--auto", "--quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C library's offset agrees with jiff's reading of the same time zone (`TZ` when set,
    /// else `/etc/localtime`; checked here with `TZ=Asia/Kolkata` too).
    #[test]
    fn local_offset_matches_the_time_zone_database() {
        let now = local_now();
        let zoned = gix::date::Zoned::now();
        assert_eq!(now.offset, zoned.offset().seconds());
        assert!((now.seconds - zoned.timestamp().as_second()).abs() <= 2);
    }
}
