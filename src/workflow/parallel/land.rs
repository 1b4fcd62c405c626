//! Landing a worktree run on the invoking branch, and pushing it.
//!
//! A landing takes the task's non-ledger changes (the branch against its merge base with the
//! target) and applies them three-way onto the branch's current tip, file by file (`git
//! merge-file` where both sides changed a file); the task's ledger entry and TODO.md block are
//! re-applied task-scoped (`ledger::scope`, never a text merge); the commit is the ordinary
//! task-scoped commit of the invoking work tree (`git::commit`: the repository's hooks, the
//! branch moved by compare-and-swap). A conflict in a non-ledger file lands nothing.
//!
//! `--push` pushes the branch to its upstream; when the remote moved, the local commits the
//! remote lacks are replayed onto the fetched remote tip with the same rules (ledger files
//! task-scoped by the task the commit names), the branch is moved by compare-and-swap, the work
//! tree follows (the uncommitted ledger entries of runs still going on are carried over), and the
//! push is tried again: at most [`PUSH_ATTEMPTS`] times, with a short random backoff.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use super::worktree::upstream;
use super::worktree::{git, is_ancestor, rev_parse, Manifest};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::ledger::scope::{scope_state, scope_todo, TaskScoping};
use crate::ledger::state::StateFile;
use crate::ledger::todo::TodoFile;
use crate::ledger::{Change, Ledger, LEDGER_FILES};

/// How many times a push is tried.
pub const PUSH_ATTEMPTS: u32 = 5;

/// The trailer naming the worktree commit a landed commit re-applies.
pub const LANDED_FROM: &str = "Landed-from";

/// What a landing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landing {
    /// The task's work is on the branch: the commits made (oldest first).
    Landed(Vec<String>),
    /// A non-ledger file was changed on both sides in ways that do not merge: nothing landed.
    Conflict(Vec<String>),
    /// The invoking work tree has uncommitted changes of its own in paths the landing writes:
    /// nothing landed.
    Overlap(Vec<String>),
}

/// A file's mode and blob id in a tree.
type Entry = (String, String);

/// `path -> (mode, blob)` of `rev` for the given paths.
fn tree_entries(root: &Path, rev: &str, paths: &[String]) -> Result<BTreeMap<String, Entry>> {
    let mut out = BTreeMap::new();
    for chunk in paths.chunks(200) {
        let mut args = vec!["ls-tree", "-z", "--full-tree", rev, "--"];
        args.extend(chunk.iter().map(String::as_str));
        for rec in git(root, &args)?.split('\0').filter(|r| !r.is_empty()) {
            let Some((meta, path)) = rec.split_once('\t') else { continue };
            let mut f = meta.split(' ');
            let (mode, kind, id) = (f.next().unwrap_or(""), f.next().unwrap_or(""), f.next().unwrap_or(""));
            if kind == "blob" {
                out.insert(path.to_owned(), (mode.to_owned(), id.to_owned()));
            }
        }
    }
    Ok(out)
}

fn blob(root: &Path, id: &str) -> Result<Vec<u8>> {
    crate::git::cli_run(root, &["cat-file", "blob", id], None, &[0])
}

/// The bytes of `rev:path`, when the file is there.
fn file_at(root: &Path, rev: &str, path: &str) -> Option<Vec<u8>> {
    crate::git::cli_run(root, &["cat-file", "blob", &format!("{rev}:{path}")], None, &[0]).ok()
}

fn changed_paths(root: &Path, from: &str, to: &str) -> Result<Vec<String>> {
    let out = git(root, &["diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", from, to, "--"])?;
    Ok(out.split('\0').filter(|p| !p.is_empty()).map(str::to_owned).collect())
}

/// A scratch directory in the git common directory (never `/tmp`, never the work tree).
fn scratch(root: &Path) -> Result<PathBuf> {
    let repo = crate::repo::Repo::discover(root)?;
    let dir = repo.common_dir().join("postflight").join("tmp");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
    Ok(dir)
}

fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{:x}", std::process::id(), crate::context::random_u32())
}

/// `git merge-file -p ours base theirs`: the merged bytes, or `None` on a conflict.
fn merge_file(root: &Path, ours: &[u8], base: &[u8], theirs: &[u8]) -> Result<Option<Vec<u8>>> {
    let dir = scratch(root)?;
    let name = unique_name("merge");
    let files: Vec<PathBuf> = ["ours", "base", "theirs"].iter().map(|k| dir.join(format!("{name}.{k}"))).collect();
    for (f, bytes) in files.iter().zip([ours, base, theirs]) {
        std::fs::write(f, bytes).map_err(|e| Error::io("write", f, e))?;
    }
    let args: Vec<String> = files.iter().map(|f| f.to_string_lossy().into_owned()).collect();
    // Exit 0 is a clean merge; a positive exit counts the conflicts (the runner keeps only
    // standard output, so any failure reads as a conflict: nothing is landed on a guess).
    let out = crate::git::cli_run(root, &["merge-file", "-p", "-q", &args[0], &args[1], &args[2]], None, &[0]);
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    Ok(out.ok())
}

/// What a step writes for one path: `Some((mode, bytes))`, or `None` to delete it.
type Write = (String, Option<(String, Vec<u8>)>);

/// Plans the three-way application of `from..to`'s changes to the non-ledger files onto
/// `onto`: what to write, or the conflicting paths.
fn plan_step(root: &Path, from: &str, to: &str, onto: &str) -> Result<std::result::Result<Vec<Write>, Vec<String>>> {
    let paths: Vec<String> =
        changed_paths(root, from, to)?.into_iter().filter(|p| !LEDGER_FILES.contains(&p.as_str())).collect();
    if paths.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let (b, t, o) =
        (tree_entries(root, from, &paths)?, tree_entries(root, to, &paths)?, tree_entries(root, onto, &paths)?);
    let mut writes = Vec::new();
    let mut conflicts = Vec::new();
    for p in &paths {
        let (base, theirs, ours) = (b.get(p), t.get(p), o.get(p));
        if theirs == base || ours == theirs {
            continue;
        }
        if ours == base {
            let w = match theirs {
                Some((mode, id)) => Some((mode.clone(), blob(root, id)?)),
                None => None,
            };
            writes.push((p.clone(), w));
            continue;
        }
        match (base, ours, theirs) {
            (Some((bm, bid)), Some((om, oid)), Some((tm, tid))) if !tm.starts_with("120") && !om.starts_with("120") => {
                let merged = merge_file(root, &blob(root, oid)?, &blob(root, bid)?, &blob(root, tid)?)?;
                match merged {
                    Some(bytes) => {
                        let mode = if tm != bm { tm.clone() } else { om.clone() };
                        writes.push((p.clone(), Some((mode, bytes))));
                    }
                    None => conflicts.push(p.clone()),
                }
            }
            _ => conflicts.push(p.clone()),
        }
    }
    Ok(if conflicts.is_empty() { Ok(writes) } else { Err(conflicts) })
}

/// The subject, body, session, co-author and other trailers of a commit's message.
struct Message {
    subject: String,
    body: Option<String>,
    session: String,
    coauthor: Option<String>,
    trailers: Vec<String>,
}

fn read_message(root: &Path, rev: &str) -> Result<Message> {
    let text = git(root, &["log", "-1", "--format=%B", rev])?;
    let mut paragraphs: Vec<Vec<&str>> = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    for line in text.trim_end().lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                paragraphs.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(line);
        }
    }
    if !cur.is_empty() {
        paragraphs.push(cur);
    }
    let subject = paragraphs.first().and_then(|p| p.first()).map(|s| (*s).to_owned()).unwrap_or_default();
    let is_trailer = |l: &str| {
        l.split_once(": ")
            .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let trailer_block = paragraphs.len() > 1 && paragraphs.last().is_some_and(|p| p.iter().all(|l| is_trailer(l)));
    let (mut session, mut coauthor, mut trailers) = (String::new(), None, Vec::new());
    if trailer_block {
        for l in paragraphs.pop().unwrap_or_default() {
            let (k, v) = l.split_once(": ").unwrap_or((l, ""));
            match k {
                "Session" => session = v.to_owned(),
                "Co-authored-by" => coauthor = Some(v.to_owned()),
                k if k == LANDED_FROM => {}
                _ => trailers.push(l.to_owned()),
            }
        }
    }
    let body: Vec<String> = paragraphs.iter().skip(1).map(|p| p.join("\n")).collect();
    let first_rest = paragraphs.first().map(|p| p[1..].join("\n")).filter(|s| !s.is_empty());
    let mut parts: Vec<String> = first_rest.into_iter().collect();
    parts.extend(body);
    Ok(Message { subject, body: (!parts.is_empty()).then(|| parts.join("\n\n")), session, coauthor, trailers })
}

/// Re-applies task `n`'s state.json entry and TODO.md block from `state_src` / `todo_src` onto the
/// ledger of `ledger`, under its lock; returns the files' previous bytes (for a rollback).
///
/// # Errors
/// Lock, parse and I/O errors.
///
/// # Writes
/// `specs/state.json`, `specs/TODO.md`.
pub fn reapply(
    ledger: &Ledger,
    n: u32,
    state_src: &[u8],
    todo_src: Option<&[u8]>,
) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    let _lock = ledger.lock()?;
    ledger.recover()?;
    let sp = ledger.state_path();
    let cur = std::fs::read(&sp).map_err(|e| Error::io("read", &sp, e))?;
    let mut changes = Vec::new();
    let new = scope_state(&sp, &cur, state_src, n)?;
    if new != cur {
        changes.push(Change { path: sp.clone(), old: cur.clone(), new, entry: None });
    }
    let tp = ledger.todo_path();
    let cur_todo = std::fs::read(&tp).ok();
    if let (Some(cur_t), Some(src)) = (&cur_todo, todo_src) {
        let new = scope_todo(&tp, cur_t, src, n)?;
        if &new != cur_t {
            changes.push(Change { path: tp, old: cur_t.clone(), new, entry: None });
        }
    }
    crate::ledger::write_changes_journaled(&changes, &ledger.journal_path())?;
    Ok((cur, cur_todo))
}

/// Records `landing_conflict` (the paths) in task `n`'s entry of the invoking ledger.
///
/// # Errors
/// The ledger's errors.
///
/// # Writes
/// `specs/state.json`.
pub fn record_conflict(ledger: &Ledger, n: u32, key: &str, paths: &[String]) -> Result<()> {
    ledger.update(|snap| {
        let mut fields = serde_json::Map::new();
        fields.insert(key.to_owned(), serde_json::Value::from(paths.to_vec()));
        snap.state_mut().merge(n, fields)
    })?;
    Ok(())
}

/// Lands task `m.task`'s branch on the invoking branch (see the module docs); `keep_iterations`
/// lands each of the branch's commits as a commit of its own instead of one.
///
/// # Errors
/// A refusal when the worktree has uncommitted changes outside the ledger, or a merge in
/// progress; the commit's errors (a failing hook: the written files and ledger are restored);
/// git and I/O errors.
///
/// # Writes
/// The landed files in the invoking work tree, its ledger, a commit (or several), the branch.
pub fn land(ctx: &Context, m: &Manifest, keep_iterations: bool) -> Result<Landing> {
    let root = &ctx.repo.root;
    let n = m.task;
    let tip = m.tip(&ctx.repo).ok_or_else(|| {
        Error::refused(format!("branch {} of task {n} does not exist", m.branch), Some("`xtask worktree list`"))
    })?;
    refuse_unfinished(m)?;
    let head = rev_parse(root, "HEAD").unwrap_or_default();
    let base = git(root, &["merge-base", &head, &tip])?.trim().to_owned();
    let steps: Vec<(String, String)> = if keep_iterations {
        let list = git(root, &["rev-list", "--reverse", "--first-parent", &format!("{base}..{tip}")])?;
        let mut prev = base.clone();
        list.lines()
            .map(|c| {
                let step = (prev.clone(), c.to_owned());
                prev = c.to_owned();
                step
            })
            .collect()
    } else if base == tip {
        Vec::new()
    } else {
        vec![(base.clone(), tip.clone())]
    };
    // Everything is planned before anything is written: a conflict anywhere lands nothing.
    let mut plans = Vec::new();
    let mut onto = head.clone();
    for (from, to) in &steps {
        match plan_step(root, from, to, &onto)? {
            Ok(w) => plans.push(w),
            Err(conflicts) => return Ok(Landing::Conflict(conflicts)),
        }
        // Later steps apply onto the tree the earlier ones produce; planning them on HEAD is exact
        // when the steps touch different files, and git::commit re-checks the rest.
        onto = head.clone();
    }
    let touched: BTreeSet<String> = plans.iter().flatten().map(|(p, _)| p.clone()).collect();
    let overlap = dirty(root, &touched.iter().cloned().collect::<Vec<_>>())?;
    if !overlap.is_empty() {
        return Ok(Landing::Overlap(overlap));
    }
    let ledger = ctx.ledger();
    let state_src = file_at(root, &tip, LEDGER_FILES[0]);
    let todo_src = file_at(root, &tip, LEDGER_FILES[1]);
    let mut commits = Vec::new();
    let count = plans.len().max(1);
    for k in 0..count {
        let writes = plans.get(k).cloned().unwrap_or_default();
        let step_to = steps.get(k).map(|s| s.1.clone()).unwrap_or_else(|| tip.clone());
        let last = k + 1 == count;
        let originals = write_files(root, &writes)?;
        let previous = if last {
            match &state_src {
                Some(src) => Some(reapply(&ledger, n, src, todo_src.as_deref())?),
                None => None,
            }
        } else {
            None
        };
        let msg = read_message(root, &step_to)?;
        let mut paths: Vec<PathBuf> = writes.iter().map(|(p, _)| PathBuf::from(p)).collect();
        if last {
            paths.extend(LEDGER_FILES.iter().map(PathBuf::from));
        }
        let mut trailers = msg.trailers.clone();
        trailers.push(format!("{LANDED_FROM}: {step_to}"));
        let session = if msg.session.is_empty() { ctx.session_id.clone().unwrap_or_default() } else { msg.session };
        let req = crate::git::CommitRequest {
            task: Some(crate::TaskId::from(n)),
            scoping: Some(TaskScoping::shared()),
            paths,
            subject: msg.subject,
            body: msg.body,
            session_id: session,
            trailers,
            agent_identity: msg.coauthor,
            ..crate::git::CommitRequest::default()
        };
        match crate::git::commit(&ctx.repo, &req) {
            Ok(crate::git::CommitOutcome::Committed { id, .. }) => commits.push(id),
            Ok(crate::git::CommitOutcome::NothingToCommit { .. }) => {}
            Err(e) => {
                restore_files(root, &originals);
                if let Some((state, todo)) = previous {
                    let _ = reapply(&ledger, n, &state, todo.as_deref());
                }
                return Err(e);
            }
        }
    }
    let target = m.target.as_str();
    if let Some(last) = commits.last() {
        if !is_ancestor(root, last, target) {
            return Err(Error::Git {
                message: format!("the landed commit {last} of task {n} is not reachable from {target}"),
                refused: false,
                hint: Some(format!("run `xtask land {n}` again")),
            });
        }
    }
    Ok(Landing::Landed(commits))
}

/// Refuses to land a worktree with a merge in progress or uncommitted tracked changes outside
/// the ledger files (a conflict being resolved there is committed first).
fn refuse_unfinished(m: &Manifest) -> Result<()> {
    if !m.path.exists() {
        return Ok(());
    }
    let wt_git = crate::repo::Repo::discover(&m.path)?.git_dir;
    if wt_git.join("MERGE_HEAD").exists()
        || wt_git.join("rebase-merge").exists()
        || wt_git.join("rebase-apply").exists()
    {
        return Err(Error::refused(
            format!("task {}'s worktree {} has a merge or rebase in progress", m.task, m.path.display()),
            Some("finish it there (resolve, `git add`, `git commit`), then run `xtask land` again"),
        ));
    }
    let out = git(&m.path, &["status", "--porcelain=v1", "-z", "--untracked-files=no", "--no-renames"])?;
    let pending: Vec<String> = out
        .split('\0')
        .filter_map(|r| r.get(3..))
        .filter(|p| !p.is_empty() && !LEDGER_FILES.contains(p))
        .map(str::to_owned)
        .collect();
    if !pending.is_empty() {
        return Err(Error::refused(
            format!("task {}'s worktree {} has uncommitted changes: {}", m.task, m.path.display(), pending.join(", ")),
            Some("commit them in the worktree (or discard them), then run `xtask land` again"),
        ));
    }
    Ok(())
}

/// The paths among `paths` that the work tree at `root` has changed, staged or untracked.
fn dirty(root: &Path, paths: &[String]) -> Result<Vec<String>> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = BTreeSet::new();
    for chunk in paths.chunks(200) {
        let mut args = vec!["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--"];
        args.extend(chunk.iter().map(String::as_str));
        for r in git(root, &args)?.split('\0') {
            if let Some(p) = r.get(3..).filter(|p| !p.is_empty()) {
                out.insert(p.to_owned());
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// Writes (or deletes) the planned files; returns what each held before.
fn write_files(root: &Path, writes: &[Write]) -> Result<Vec<(String, Option<Vec<u8>>)>> {
    let mut originals = Vec::new();
    for (path, w) in writes {
        let full = root.join(path);
        originals.push((path.clone(), std::fs::read(&full).ok()));
        let done = match w {
            Some((mode, bytes)) => write_with_mode(&full, bytes, mode),
            None => match std::fs::remove_file(&full) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", &full, e)),
                _ => Ok(()),
            },
        };
        if let Err(e) = done {
            restore_files(root, &originals);
            return Err(e);
        }
    }
    Ok(originals)
}

fn write_with_mode(full: &Path, bytes: &[u8], mode: &str) -> Result<()> {
    if let Some(dir) = full.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    crate::atomic::write(full, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let perm = if mode == "100755" { 0o755 } else { 0o644 };
        std::fs::set_permissions(full, std::fs::Permissions::from_mode(perm))
            .map_err(|e| Error::io("chmod", full, e))?;
    }
    Ok(())
}

fn restore_files(root: &Path, originals: &[(String, Option<Vec<u8>>)]) {
    for (path, old) in originals.iter().rev() {
        let full = root.join(path);
        match old {
            Some(bytes) => {
                let _ = crate::atomic::write(&full, bytes);
            }
            None => {
                let _ = std::fs::remove_file(&full);
            }
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, Default)]
pub struct Pushed {
    /// Attempts made (1 when the first push was accepted).
    pub attempts: u32,
    /// Whether the local commits were replayed onto a moved remote tip.
    pub relanded: bool,
}

/// Pushes `target` to its upstream; when the remote moved, fetches, re-lands the local commits
/// on the remote tip and pushes again, at most [`PUSH_ATTEMPTS`] times.
///
/// # Errors
/// A refusal without an upstream, after the last rejected attempt, or when a local commit does
/// not re-apply on the remote tip (its conflicting paths named); git and I/O errors.
///
/// # Writes
/// The remote's branch, the remote-tracking ref; on a re-landing, new commits, the branch, the
/// index entries and work-tree files of the paths the remote changed, the ledger files.
pub fn push(ctx: &Context, target: &str) -> Result<Pushed> {
    let root = &ctx.repo.root;
    let (remote, merge) = upstream(root, target)?;
    let tracking = format!("refs/remotes/{remote}/{}", merge.trim_start_matches("refs/heads/"));
    let mut report = Pushed::default();
    let mut last_error = String::new();
    // How long one fetch, re-landing and push takes here: the backoff is a random multiple of
    // it, doubling with each attempt, so clones racing for the remote spread out instead of
    // colliding again.
    let mut cycle = Duration::from_millis(100);
    for attempt in 1..=PUSH_ATTEMPTS {
        report.attempts = attempt;
        let started = std::time::Instant::now();
        let head = rev_parse(root, target).unwrap_or_default();
        let spec = format!("{head}:{merge}");
        match crate::git::cli_run(root, &["push", "--porcelain", "-q", &remote, &spec], None, &[0]) {
            Ok(_) => {
                // The tracking ref follows an accepted push of the configured upstream; make sure.
                let _ = git(root, &["update-ref", &tracking, &head]);
                return Ok(report);
            }
            Err(e) => last_error = e.to_string(),
        }
        if attempt == PUSH_ATTEMPTS {
            break;
        }
        let window = (cycle.as_millis() as u64).max(50) << (attempt - 1);
        std::thread::sleep(Duration::from_millis(u64::from(crate::context::random_u32()) % window));
        let relanding = std::time::Instant::now();
        git(root, &["fetch", "-q", &remote])?;
        let remote_tip = rev_parse(root, &tracking).unwrap_or_default();
        if !remote_tip.is_empty() && !is_ancestor(root, &remote_tip, &head) {
            reland(ctx, target, &head, &remote_tip)?;
            report.relanded = true;
        }
        cycle = relanding.elapsed() + (relanding - started);
    }
    Err(Error::refused(
        format!("the push of {target} to {remote} was rejected {PUSH_ATTEMPTS} times: {last_error}"),
        Some("the work is landed locally; run `xtask land N --push` again once the remote is reachable"),
    ))
}

/// The task a commit of postflight belongs to, from its subject `task N: ...`.
fn task_of_subject(subject: &str) -> Option<u32> {
    subject.strip_prefix("task ")?.split(':').next()?.trim().parse().ok()
}

/// Replays the local commits `remote_tip..head` (first parents) onto `remote_tip`, moves
/// `target` from `head` to the result by compare-and-swap, and brings the work tree along.
fn reland(ctx: &Context, target: &str, head: &str, remote_tip: &str) -> Result<()> {
    let root = &ctx.repo.root;
    let base = git(root, &["merge-base", head, remote_tip])?.trim().to_owned();
    let list = git(root, &["rev-list", "--reverse", "--first-parent", &format!("{base}..{head}")])?;
    let mut new = remote_tip.to_owned();
    for c in list.lines() {
        new = replay(root, c, &new)?;
    }
    let paths = changed_paths(root, head, &new)?;
    let own: Vec<String> = paths.iter().filter(|p| !LEDGER_FILES.contains(&p.as_str())).cloned().collect();
    let overlap = dirty(root, &own)?;
    if !overlap.is_empty() {
        return Err(Error::refused(
            format!(
                "the remote changed files this work tree has uncommitted changes in: {}; nothing was moved",
                overlap.join(", ")
            ),
            Some("commit or stash them, then run `xtask land N --push` again"),
        ));
    }
    let ledger = ctx.ledger();
    let _lock = ledger.lock()?;
    ledger.recover()?;
    git(root, &["update-ref", target, &new, head])?;
    let entries = tree_entries(root, &new, &own)?;
    let writes: Vec<Write> = own
        .iter()
        .map(|p| {
            Ok((
                p.clone(),
                match entries.get(p) {
                    Some((mode, id)) => Some((mode.clone(), blob(root, id)?)),
                    None => None,
                },
            ))
        })
        .collect::<Result<_>>()?;
    write_files(root, &writes)?;
    let mut changes = Vec::new();
    for rel in LEDGER_FILES {
        if !paths.iter().any(|p| p == rel) {
            continue;
        }
        let path = root.join(rel);
        let (Some(new_bytes), Ok(wt)) = (file_at(root, &new, rel), std::fs::read(&path)) else { continue };
        let old = file_at(root, head, rel).unwrap_or_default();
        let carried = carry(&path, rel, &new_bytes, &old, &wt)?;
        if carried != wt {
            changes.push(Change { path, old: wt, new: carried, entry: None });
        }
    }
    crate::ledger::write_changes_journaled(&changes, &ledger.journal_path())?;
    if !paths.is_empty() {
        let mut args = vec!["reset", "-q", new.as_str(), "--"];
        args.extend(paths.iter().map(String::as_str));
        git(root, &args)?;
    }
    Ok(())
}

/// `new` with every task entry (block) the work tree `wt` changed against `old` carried over.
fn carry(path: &Path, rel: &str, new: &[u8], old: &[u8], wt: &[u8]) -> Result<Vec<u8>> {
    if wt == old {
        return Ok(new.to_vec());
    }
    let mut out = new.to_vec();
    if rel == LEDGER_FILES[0] {
        let by_number = |bytes: &[u8]| -> Result<BTreeMap<u32, serde_json::Value>> {
            let f = StateFile::parse(path, bytes.to_vec())?;
            Ok(f.entries()?.iter().filter_map(|e| Some((crate::ledger::state::entry_number(e)?, e.clone()))).collect())
        };
        let (o, w) = (by_number(old)?, by_number(wt)?);
        let tasks: BTreeSet<u32> = o.keys().chain(w.keys()).copied().filter(|t| o.get(t) != w.get(t)).collect();
        for t in tasks {
            out = scope_state(path, &out, wt, t)?;
        }
    } else {
        let blocks = |bytes: &[u8]| -> Result<BTreeMap<u32, String>> {
            let f = TodoFile::parse(path, bytes)?;
            let lines: Vec<&str> = f.doc.lines().collect();
            Ok(f.headings()
                .into_iter()
                .map(|(i, n)| {
                    let r = f.block_at(i);
                    (n, lines[r.start.min(lines.len())..r.end.min(lines.len())].join("\n"))
                })
                .collect())
        };
        let (o, w) = (blocks(old)?, blocks(wt)?);
        let tasks: BTreeSet<u32> = o.keys().chain(w.keys()).copied().filter(|t| o.get(t) != w.get(t)).collect();
        for t in tasks {
            out = scope_todo(path, &out, wt, t)?;
        }
    }
    Ok(out)
}

/// Commit `c` re-applied onto `onto`: its non-ledger changes three-way, its ledger files
/// task-scoped by the task its subject names; the new commit's id (author and message kept).
fn replay(root: &Path, c: &str, onto: &str) -> Result<String> {
    let parent = format!("{c}^");
    let subject = git(root, &["log", "-1", "--format=%s", c])?.trim().to_owned();
    let index = scratch(root)?.join(unique_name("index"));
    let index_text = index.to_string_lossy().into_owned();
    let env = [("GIT_INDEX_FILE", index_text.clone())];
    let run = |args: &[&str], stdin: Option<&[u8]>| crate::git::cli_run_with_env(root, args, &env, stdin, &[0]);
    let result = (|| -> Result<String> {
        run(&["read-tree", onto], None)?;
        let writes = match plan_step(root, &parent, c, onto)? {
            Ok(w) => w,
            Err(conflicts) => {
                return Err(Error::refused(
                    format!(
                        "commit {c} (`{subject}`) does not re-apply on the remote tip: {} changed on both sides",
                        conflicts.join(", ")
                    ),
                    Some("pull and resolve by hand, then push"),
                ))
            }
        };
        let mut updates: Vec<Write> = writes;
        for rel in LEDGER_FILES {
            let (Some(src), Some(par)) = (file_at(root, c, rel), file_at(root, &parent, rel)) else { continue };
            if src == par {
                continue;
            }
            let Some(n) = task_of_subject(&subject) else {
                return Err(Error::refused(
                    format!(
                        "commit {c} (`{subject}`) changes {rel} but names no task; it cannot be re-applied task-scoped"
                    ),
                    Some("pull and resolve by hand, then push"),
                ));
            };
            let cur = file_at(root, onto, rel).unwrap_or_default();
            let path = root.join(rel);
            let new = if rel == LEDGER_FILES[0] {
                scope_state(&path, &cur, &src, n)?
            } else {
                scope_todo(&path, &cur, &src, n)?
            };
            updates.push((rel.to_owned(), Some(("100644".to_owned(), new))));
        }
        for (path, w) in &updates {
            match w {
                Some((mode, bytes)) => {
                    let id =
                        String::from_utf8_lossy(&run(&["hash-object", "-w", "--stdin", "--no-filters"], Some(bytes))?)
                            .trim()
                            .to_owned();
                    run(&["update-index", "--add", "--cacheinfo", &format!("{mode},{id},{path}")], None)?;
                }
                None => {
                    run(&["update-index", "--force-remove", "--", path], None)?;
                }
            }
        }
        let tree = String::from_utf8_lossy(&run(&["write-tree"], None)?).trim().to_owned();
        let info = git(root, &["log", "-1", "--format=%an%x00%ae%x00%aI", c])?;
        let mut f = info.trim_end().split('\0');
        let (an, ae, ad) =
            (f.next().unwrap_or("").to_owned(), f.next().unwrap_or("").to_owned(), f.next().unwrap_or("").to_owned());
        let message = crate::git::cli_run(root, &["log", "-1", "--format=%B", c], None, &[0])?;
        let author = [("GIT_AUTHOR_NAME", an), ("GIT_AUTHOR_EMAIL", ae), ("GIT_AUTHOR_DATE", ad)];
        let id = crate::git::cli_run_with_env(
            root,
            &["commit-tree", &tree, "-p", onto, "-F", "-"],
            &author,
            Some(&message),
            &[0],
        )?;
        Ok(String::from_utf8_lossy(&id).trim().to_owned())
    })();
    let _ = std::fs::remove_file(&index);
    result
}
