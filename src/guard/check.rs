//! `xtask check`: do the ledger files agree? Every rule has a stable id; every finding names a
//! file and line and says whether `--fix` can repair it. `--fix` only makes the derived parts
//! (TODO.md markers, summary links and frontmatter, plan headers) agree with state.json, the
//! source of truth, one line at a time, through the ledger's lock and atomic writes. `--staged`
//! reads the versions in the git index instead of the work tree (the pre-commit mode).
//! [`check_cached`] reuses the last work-tree report while its inputs are unchanged
//! ([`super::check_cache`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::SystemTime;

use serde_json::Value;

use super::check_cache::{self, Cache, Fs, IndexKey, Kind, Recorder};
pub use super::report::{Finding, Report, Severity};
use super::state_view::{Entry, StateView};

use crate::context::is_well_formed_session_id;
use crate::error::{Error, Result};
use crate::git::cli;
use crate::ledger::plan::{self, PlanFile};
use crate::ledger::state::StateFile;
use crate::ledger::status::Status;
use crate::ledger::todo::TodoFile;
use crate::ledger::{Change, Ledger, Snapshot};
use crate::repo::Repo;
use crate::run::{self as marker, Marker};

/// The rules, by stable id, with their severity and what they check (for `--help` and docs).
pub const RULES: [(&str, Severity, &str); 16] = [
    ("state-json", Severity::Error, "specs/state.json exists, parses and has an active_projects array"),
    ("todo-md", Severity::Error, "specs/TODO.md exists and is UTF-8"),
    ("duplicate-task", Severity::Error, "no task number appears twice in state.json or in TODO.md"),
    ("task-missing", Severity::Error, "every task is in both state.json and TODO.md"),
    ("todo-status", Severity::Error, "the TODO.md marker matches the state.json status (fixable)"),
    ("plan-status", Severity::Error, "the newest plan's header status matches state.json (fixable)"),
    ("next-number", Severity::Error, "both next_project_number values agree (fixable) and exceed every number in use"),
    ("task-counts", Severity::Warning, "TODO.md frontmatter task_counts active/in_progress/not_started (fixable)"),
    ("artifact-missing", Severity::Error, "every artifact path in state.json exists"),
    ("summary-link", Severity::Warning, "TODO.md links the newest summary artifact (fixable when unambiguous)"),
    (
        "stale-marker",
        Severity::Error,
        "no .postflight-pending marker for a task that is not implementing, nor of another operation than implement",
    ),
    ("transient-tracked", Severity::Error, "no transient workflow file is tracked by git"),
    ("session-id", Severity::Warning, "session ids in state.json look like sess_<10 digits>_<6 hex>"),
    (
        "unvalidated",
        Severity::Warning,
        "a completed task whose language has validation commands (.postflight.json) has a passing validation record",
    ),
    (
        "payload-append-only",
        Severity::Error,
        "a staged handoff/payload.json keeps every implementation.* entry of HEAD unchanged and loses no other data (statuses may move)",
    ),
    (
        "merge-driver",
        Severity::Warning,
        "an attribute naming merge=postflight has its driver configured in this clone (merge.postflight.driver)",
    ),
];

/// The files the workflow writes for itself, which must never be committed (`xtask init` ignores them).
pub const TRANSIENT: &[&str] = &crate::run::TRANSIENT_FILES;

/// Where the ledger is read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Read the versions staged in the git index (pre-commit mode) instead of the work tree.
    pub staged: bool,
}

/// What `--fix` did (or, in a dry run, would do).
#[derive(Debug, Clone)]
pub struct FixReport {
    /// The files changed, with their old and new bytes.
    pub changes: Vec<Change>,
    /// The check before fixing.
    pub before: Report,
    /// The check after fixing (`None` in a dry run or when the input was unreadable).
    pub after: Option<Report>,
}

/// Checks the ledger of `repo`.
///
/// # Errors
/// Git failures (listing or reading the index). Unreadable ledger files are findings with
/// [`Report::unreadable`] set, not errors.
pub fn check(repo: &Repo, opts: Options) -> Result<Report> {
    let source: Box<dyn Source> =
        if opts.staged { Box::new(IndexSource::open(repo)?) } else { Box::new(WorkSource::open(repo, Fs::default())?) };
    let mut report = check_source(repo, source.as_ref(), opts)?;
    if opts.staged {
        staged_payload_findings(repo, source.as_ref(), &mut report)?;
    }
    Ok(report)
}

/// The pre-commit rule of a staged `handoff/payload.json`: against HEAD's version, no
/// `implementation.*` entry missing or changed and no other data lost
/// ([`crate::format::payload::Payload::check_against`]).
fn staged_payload_findings(repo: &Repo, source: &dyn Source, report: &mut Report) -> Result<()> {
    let payload = crate::format::payload::DEFAULT_PATH;
    let paths: Vec<String> =
        source.tracked().iter().filter(|p| *p == payload || p.ends_with(&format!("/{payload}"))).cloned().collect();
    for rel in paths {
        let Some(staged) = source.read(&rel)? else { continue };
        // A payload HEAD does not hold yet has nothing to keep.
        let Ok(head) = git(&repo.root, &["cat-file", "blob", &format!("HEAD:{rel}")], None) else { continue };
        if head == staged {
            continue;
        }
        let p = crate::format::payload::Payload::new(
            repo.root.join(&rel),
            rel.clone(),
            crate::format::payload::Stage::Five,
            "",
            None,
        );
        match p.append_only_findings(&head, &staged) {
            Ok(found) => {
                for f in found {
                    report.push(finding("payload-append-only", &rel, f.line, None, f.message));
                }
            }
            Err(e) => report.push(finding("payload-append-only", &rel, None, None, e.to_string())),
        }
    }
    sort_findings(report);
    Ok(())
}

/// What the result cache did for one [`check_cached`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOutcome {
    /// Whether the stored report was reused.
    pub hit: bool,
    /// What happened, in words: `hit`, or `miss (<why>); written` / `not written: <why>`.
    pub note: String,
}

/// The environment variables that make git read another index or repository than the one
/// the cache describes; with any of them set the cache is not used.
const GIT_ENV: [&str; 4] = ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"];

/// Checks the work tree like [`check`] (`Options::default()`), reusing the report stored in
/// `<git dir>/postflight-check.cache` when every input it consulted has the same fingerprint,
/// and storing the report otherwise. The findings are the same as [`check`]'s.
///
/// # Errors
/// As [`check`]. Cache problems are never errors: a damaged or foreign cache is ignored and
/// rewritten, and one that cannot be written is skipped.
///
/// # Writes
/// `<git dir>/postflight-check.cache` (through a temp file beside it and a rename).
pub fn check_cached(repo: &Repo) -> Result<(Report, CacheOutcome)> {
    let start = SystemTime::now();
    let off = |why: String| -> Result<(Report, CacheOutcome)> {
        Ok((check(repo, Options::default())?, CacheOutcome { hit: false, note: format!("off: {why}") }))
    };
    if let Some(var) = GIT_ENV.iter().find(|v| std::env::var_os(v).is_some()) {
        return off(format!("{var} is set"));
    }
    let Some(binary) = check_cache::binary_fingerprint() else { return off("cannot stat this program".into()) };
    let cache_path = repo.git_dir.join(check_cache::FILE_NAME);
    let index_path = repo.git_dir.join("index");
    let stored = std::fs::read(&cache_path);
    let why = match &stored {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "no cache".to_owned(),
        Err(e) => format!("cannot read the cache: {e}"),
        Ok(bytes) => match Cache::decode(bytes, &repo.root, &binary, &RULES) {
            Err(why) => format!("cache {why}"),
            Ok(cache) => match check_cache::first_changed(&repo.root, &cache.inputs) {
                Some(path) => format!("{} changed", String::from_utf8_lossy(&path)),
                None => return reuse(repo, cache, start, &binary),
            },
        },
    };
    // The index key first, then the index itself (git ls-files): a change in between shows next time.
    let index = IndexKey::read(&index_path, start);
    let source = WorkSource::open(repo, Fs::recording(Recorder::new(start)))?;
    let (ledger, complete) = ledger_findings(repo, &source, Options::default())?;
    let transient = complete.then(|| tracked_transient(source.tracked()));
    let report = with_transient(ledger.clone(), transient.as_deref());
    let recorder = source.fs.into_recorder().expect("the source was opened recording");
    let written = match recorder.finish(&repo.root) {
        Ok(inputs) => {
            let cache = Cache { index, transient, report: ledger, inputs };
            match check_cache::store(&cache_path, &cache.encode(&repo.root, &binary)) {
                Ok(()) => "written".to_owned(),
                Err(e) => format!("not written: {e}"),
            }
        }
        Err(why) => {
            // A stale cache would only be stat'ed in vain next time.
            let _ = std::fs::remove_file(&cache_path);
            format!("not written: {why}")
        }
    };
    Ok((report, CacheOutcome { hit: false, note: format!("miss ({why}); {written}") }))
}

/// A cache whose inputs all matched: its report, with the transient-file rule run again when
/// the index has other content than the cache was written for (the cache then records the new
/// index).
fn reuse(
    repo: &Repo,
    cache: Cache,
    start: SystemTime,
    binary: &check_cache::Fingerprint,
) -> Result<(Report, CacheOutcome)> {
    let Cache { index, transient, report, inputs } = cache;
    let hit = |report: Report, note: &str| Ok((report, CacheOutcome { hit: true, note: note.to_owned() }));
    let Some(transient) = transient else { return hit(report, "hit") };
    let index_path = repo.git_dir.join("index");
    if index.matches(&index_path) {
        return hit(with_transient(report, Some(&transient)), "hit");
    }
    let index = IndexKey::read(&index_path, start);
    let transient = tracked_transient(&ls_files(&repo.root)?);
    let full = with_transient(report.clone(), Some(&transient));
    let cache = Cache { index, transient: Some(transient), report, inputs };
    let note = match check_cache::store(&repo.git_dir.join(check_cache::FILE_NAME), &cache.encode(&repo.root, binary)) {
        Ok(()) => "hit (the index changed: transient-tracked rerun; cache rewritten)".to_owned(),
        Err(e) => format!("hit (the index changed: transient-tracked rerun; cache not rewritten: {e})"),
    };
    hit(full, &note)
}

/// Makes the derived parts agree with state.json and returns the changes (written unless
/// `dry_run`), with the check before and after.
///
/// # Errors
/// Lock, I/O and git errors.
///
/// # Writes
/// `specs/TODO.md` and plan files (never state.json), unless `dry_run`.
pub fn fix(repo: &Repo, dry_run: bool) -> Result<FixReport> {
    let before = check(repo, Options::default())?;
    if before.unreadable {
        return Ok(FixReport { changes: Vec::new(), before, after: None });
    }
    let ledger = Ledger::new(repo.clone());
    let edit = |snap: &mut Snapshot| apply_fixes(repo, snap);
    let ((), changes) = if dry_run { ledger.preview(edit)? } else { ledger.update(edit)? };
    let after = if dry_run { None } else { Some(check(repo, Options::default())?) };
    Ok(FixReport { changes, before, after })
}

// ---------------------------------------------------------------------------------------------
// Sources: the work tree or the git index.

/// A plan's repository-relative path and bytes.
type PlanRead = (String, Vec<u8>);

/// Read access to one version of the repository's files (paths are repository-relative).
trait Source {
    /// The file's bytes, `None` when it does not exist in this version.
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>>;
    /// Whether a file or directory exists in this version.
    fn exists(&self, rel: &str) -> bool;
    /// The newest plan of task `n`, repository-relative.
    fn find_plan(&self, n: u32, slug: Option<&str>) -> Option<String>;
    /// Every path tracked by git (the index).
    fn tracked(&self) -> &BTreeSet<String>;
    /// The `.postflight-pending` markers with their content when it parses (work tree only:
    /// markers are never committed).
    fn markers(&self) -> Vec<(PathBuf, Option<Marker>)>;

    /// [`Source::exists`] of each path, in order.
    fn exist(&self, rels: &[String]) -> Vec<bool> {
        rels.iter().map(|rel| self.exists(rel)).collect()
    }

    /// The newest plan of each task with its bytes (`None`: no plan, or it vanished), in order.
    ///
    /// # Errors
    /// The first read error, in task order.
    fn plans(&self, tasks: &[(u32, Option<&str>)]) -> Result<Vec<Option<PlanRead>>> {
        tasks.iter().map(|(n, slug)| self.plan_of(*n, *slug)).collect()
    }

    /// One task's part of [`Source::plans`].
    fn plan_of(&self, n: u32, slug: Option<&str>) -> Result<Option<PlanRead>> {
        let Some(rel) = self.find_plan(n, slug) else { return Ok(None) };
        Ok(self.read(&rel)?.map(|bytes| (rel, bytes)))
    }
}

struct WorkSource {
    repo: Repo,
    tracked: BTreeSet<String>,
    /// Every file-system read goes through here, so a cached check knows what it consulted.
    fs: Fs,
    /// The entries of `specs/`, and its `{N}_*` directories by number with names sorted (the
    /// fallback order of `plan::task_dir`), listed once on first use.
    specs_listing: OnceLock<SpecsListing>,
}

/// The names in `specs/`, and its `{N}_*` directories by number.
type SpecsListing = (Vec<OsString>, BTreeMap<u32, Vec<String>>);

impl WorkSource {
    fn open(repo: &Repo, fs: Fs) -> Result<WorkSource> {
        Ok(WorkSource { repo: repo.clone(), tracked: ls_files(&repo.root)?, fs, specs_listing: OnceLock::new() })
    }

    /// Lists `specs/` once for both the numbered directories and the markers.
    fn specs_listing(&self) -> &SpecsListing {
        self.specs_listing.get_or_init(|| {
            let listing = self.fs.list(&self.repo.specs_dir()).unwrap_or_default();
            let mut dirs: BTreeMap<u32, Vec<String>> = BTreeMap::new();
            for (name, kind) in listing.iter() {
                if *kind != Kind::Dir {
                    continue;
                }
                let name = name.to_string_lossy().into_owned();
                if let Some(n) = name.split_once('_').and_then(|(num, _)| num.parse::<u32>().ok()) {
                    dirs.entry(n).or_default().push(name);
                }
            }
            for names in dirs.values_mut() {
                names.sort();
            }
            (listing.iter().map(|(name, _)| name.clone()).collect(), dirs)
        })
    }

    /// The newest plan of a task directory, chosen by `plan::latest_plan_name` like `plan::latest_plan`.
    fn latest_plan(&self, task_dir: &Path) -> Option<PathBuf> {
        let dir = task_dir.join("plans");
        let listing = self.fs.list(&dir)?;
        let names: Vec<String> = listing.iter().filter_map(|(name, _)| name.to_str().map(str::to_owned)).collect();
        plan::latest_plan_name(names).map(|name| dir.join(name))
    }
}

impl Source for WorkSource {
    fn exist(&self, rels: &[String]) -> Vec<bool> {
        check_cache::par_map(rels, |rel| self.exists(rel))
    }

    fn plans(&self, tasks: &[(u32, Option<&str>)]) -> Result<Vec<Option<PlanRead>>> {
        // Listed once before the threads start, rather than by whichever needs it first.
        self.specs_listing();
        check_cache::par_map(tasks, |(n, slug)| self.plan_of(*n, *slug)).into_iter().collect()
    }

    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let path = self.repo.root.join(rel);
        self.fs.read(&path).map_err(|e| Error::io("read", path, e))
    }

    fn exists(&self, rel: &str) -> bool {
        self.fs.probe(&self.repo.root.join(rel)).is_some()
    }

    fn find_plan(&self, n: u32, slug: Option<&str>) -> Option<String> {
        // The same choice as `plan::find_plan`, but the number-only fallback (for the many tasks
        // that have no directory yet) uses one listing of specs/ instead of one per task.
        let specs = self.repo.specs_dir();
        // Listed first, so that the names looked up in it cost nothing.
        let (_, numbered) = self.specs_listing();
        let by_slug = slug.filter(|s| !s.is_empty() && *s != "null").and_then(|slug| {
            let (plain, padded) = (format!("{n}_{slug}"), format!("{n:03}_{slug}"));
            let names = if plain == padded { vec![plain] } else { vec![plain, padded] };
            names.into_iter().map(|d| specs.join(d)).find(|p| self.fs.probe(p) == Some(Kind::Dir))
        });
        let dir = match by_slug {
            Some(dir) => dir,
            None => specs.join(numbered.get(&n)?.first()?),
        };
        self.latest_plan(&dir).map(|p| self.repo.relative(&p))
    }

    fn tracked(&self) -> &BTreeSet<String> {
        &self.tracked
    }

    fn markers(&self) -> Vec<(PathBuf, Option<Marker>)> {
        // `marker::find_markers`: the legacy global marker, then one per entry of specs/ except
        // `archive`.
        let specs = self.repo.specs_dir();
        let mut found = Vec::new();
        let global = specs.join(marker::MARKER_FILE);
        if self.fs.probe(&global) == Some(Kind::File) {
            found.push(global);
        }
        let candidates: Vec<PathBuf> = self
            .specs_listing()
            .0
            .iter()
            .filter(|name| *name != "archive")
            .map(|name| specs.join(name).join(marker::MARKER_FILE))
            .collect();
        let kinds = check_cache::par_map(&candidates, |p| self.fs.probe(p));
        found.extend(candidates.into_iter().zip(kinds).filter(|(_, k)| *k == Some(Kind::File)).map(|(p, _)| p));
        found.sort();
        found
            .into_iter()
            .map(|p| {
                let marker = self.fs.read(&p).ok().flatten().and_then(|b| serde_json::from_slice::<Marker>(&b).ok());
                (p, marker)
            })
            .collect()
    }
}

struct IndexSource {
    root: PathBuf,
    tracked: BTreeSet<String>,
    /// The blob id of every unconflicted entry (`git ls-files -s`).
    ids: BTreeMap<String, String>,
    /// The directory names under `specs/` of tracked paths, collected on first use.
    spec_dirs: std::cell::OnceCell<BTreeSet<String>>,
    /// One `git cat-file --batch` serving every read, started on first use: a plan per task
    /// would otherwise be one process each (10,000 tasks took 87 s).
    batch: std::cell::RefCell<Option<CatFile>>,
}

impl IndexSource {
    fn open(repo: &Repo) -> Result<IndexSource> {
        let (tracked, ids) = ls_files_staged(&repo.root)?;
        Ok(IndexSource {
            root: repo.root.clone(),
            tracked,
            ids,
            spec_dirs: Default::default(),
            batch: Default::default(),
        })
    }
}

/// Every path in the index and the blob id of each unconflicted one (`git ls-files -s -z`).
fn ls_files_staged(root: &Path) -> Result<(BTreeSet<String>, BTreeMap<String, String>)> {
    let out = git(root, &["ls-files", "-s", "-z"], None)?;
    let (mut tracked, mut ids) = (BTreeSet::new(), BTreeMap::new());
    for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        // `<mode> <id> <stage>\t<path>`
        let Some(tab) = record.iter().position(|b| *b == b'\t') else { continue };
        let path = String::from_utf8_lossy(&record[tab + 1..]).into_owned();
        let meta = String::from_utf8_lossy(&record[..tab]);
        let mut fields = meta.split(' ');
        if let (Some(_mode), Some(id), Some("0")) = (fields.next(), fields.next(), fields.next()) {
            ids.insert(path.clone(), id.to_owned());
        }
        tracked.insert(path);
    }
    Ok((tracked, ids))
}

/// A running `git cat-file --batch`: one object id per request line, answered (and flushed) as
/// `<id> <type> <size>` then the bytes and a newline.
struct CatFile {
    child: std::process::Child,
    input: Option<std::process::ChildStdin>,
    output: std::io::BufReader<std::process::ChildStdout>,
}

impl CatFile {
    fn start(root: &Path) -> Result<CatFile> {
        let spawn_error =
            |e: std::io::Error| Error::Git { message: format!("cannot run git: {e}"), refused: false, hint: None };
        let mut child = cli::command(root)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(spawn_error)?;
        let input = child.stdin.take();
        let output = child.stdout.take().map(std::io::BufReader::new);
        match output {
            Some(output) => Ok(CatFile { child, input, output }),
            None => Err(Error::Git { message: "git cat-file has no output pipe".into(), refused: false, hint: None }),
        }
    }

    fn read(&mut self, id: &str, rel: &str) -> Result<Vec<u8>> {
        use std::io::BufRead;
        let failed = |what: String| Error::Git {
            message: format!("git cat-file --batch: {what} ({rel})"),
            refused: false,
            hint: None,
        };
        let input = self.input.as_mut().ok_or_else(|| failed("closed".into()))?;
        writeln!(input, "{id}").and_then(|()| input.flush()).map_err(|e| Error::io("write to", "git cat-file", e))?;
        let mut header = String::new();
        self.output.read_line(&mut header).map_err(|e| Error::io("read from", "git cat-file", e))?;
        let size = match header.trim_end().split(' ').collect::<Vec<_>>().as_slice() {
            [_, "blob", size] => size.parse::<usize>().map_err(|_| failed(format!("bad header {header:?}")))?,
            _ => return Err(failed(format!("no blob {id}: {}", header.trim_end()))),
        };
        let mut bytes = vec![0u8; size + 1];
        self.output.read_exact(&mut bytes).map_err(|e| Error::io("read from", "git cat-file", e))?;
        bytes.pop();
        Ok(bytes)
    }
}

impl Drop for CatFile {
    fn drop(&mut self) {
        // Closing its input ends git cat-file.
        drop(self.input.take());
        let _ = self.child.wait();
    }
}

impl Source for IndexSource {
    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        if !self.tracked.contains(rel) {
            return Ok(None);
        }
        let Some(id) = self.ids.get(rel) else {
            // Only conflicted stages: git names the problem.
            return Ok(Some(git(&self.root, &["cat-file", "blob", &format!(":{rel}")], None)?));
        };
        let mut batch = self.batch.borrow_mut();
        if batch.is_none() {
            *batch = Some(CatFile::start(&self.root)?);
        }
        batch.as_mut().expect("started above").read(id, rel).map(Some)
    }

    fn exists(&self, rel: &str) -> bool {
        let rel = rel.trim_end_matches('/');
        self.tracked.contains(rel)
            || self.tracked.range(format!("{rel}/")..).next().is_some_and(|p| p.starts_with(&format!("{rel}/")))
    }

    fn find_plan(&self, n: u32, slug: Option<&str>) -> Option<String> {
        // The same choice as `plan::find_plan`, over index paths: the slug directory (plain, then
        // zero-padded), else the first `specs/{n}_*` directory; then the newest plan in it.
        let dirs = self.spec_dirs.get_or_init(|| {
            self.tracked
                .iter()
                .filter_map(|p| p.strip_prefix("specs/"))
                .filter_map(|p| p.split_once('/').map(|(d, _)| d.to_owned()))
                .collect()
        });
        let mut dir = None;
        if let Some(slug) = slug.filter(|s| !s.is_empty() && *s != "null") {
            dir = [format!("{n}_{slug}"), format!("{n:03}_{slug}")].into_iter().find(|d| dirs.contains(d.as_str()));
        }
        let dir = dir.or_else(|| {
            dirs.iter()
                .find(|d| d.split_once('_').and_then(|(num, _)| num.parse::<u32>().ok()) == Some(n))
                .map(|d| (*d).to_owned())
        })?;
        let prefix = format!("specs/{dir}/plans/");
        let names =
            self.tracked.range(prefix.clone()..).take_while(|p| p.starts_with(&prefix)).map(|p| &p[prefix.len()..]);
        plan::latest_plan_name(names).map(|name| format!("{prefix}{name}"))
    }

    fn tracked(&self) -> &BTreeSet<String> {
        &self.tracked
    }

    fn markers(&self) -> Vec<(PathBuf, Option<Marker>)> {
        Vec::new()
    }
}

/// Runs git in `root` (never anywhere else) and returns its stdout.
fn git(root: &Path, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
    cli::run(root, args, stdin, &[0])
}

/// Every path in the index (`git ls-files -z`), which is what a commit would contain.
fn ls_files(root: &Path) -> Result<BTreeSet<String>> {
    let out = git(root, &["ls-files", "-z"], None)?;
    Ok(out.split(|b| *b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect())
}

// ---------------------------------------------------------------------------------------------
// The rules.

const STATE: &str = "specs/state.json";
const TODO: &str = "specs/TODO.md";

/// A derived-file edit that makes TODO.md or a plan agree with state.json.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Edit {
    TodoStatus { task: u32, status: Status },
    PlanHeader { task: u32, status: Status },
    NextNumber(u64),
    CountLine { line: usize, text: String },
    SummaryLink { task: u32, value: String },
}

/// The loaded ledger a check looks at.
struct View<'a> {
    state: &'a StateView<'a>,
    /// The bytes of state.json, for line numbers.
    raw: &'a [u8],
    todo: &'a TodoFile,
    /// Newest plan per task (unique tasks only), with its repository-relative path.
    /// Newest plan per task (unique tasks only): its repository-relative path and its header
    /// status line (0-based) and marker, if it has one.
    plans: BTreeMap<u32, (String, Option<(usize, String)>)>,
}

/// The `merge-driver` finding: an attribute names `merge=postflight` and this clone configures
/// no `merge.postflight.driver`, so git merges the ledger files as text, silently. Read fresh on
/// every check (never cached: it depends on git's config, not on the ledger's files); a warning,
/// also under `CI=true`, where a checkout never has a driver configured.
///
/// # Errors
/// git cannot be run.
pub fn merge_driver_finding(repo: &Repo) -> Result<Option<Finding>> {
    let state = crate::merge::setup::state(repo)?;
    if !state.unconfigured() {
        return Ok(None);
    }
    let first = state.attributes.first().cloned().unwrap_or_default();
    let (file, line) =
        first.split_once(": ").map_or((first.clone(), String::new()), |(f, l)| (f.to_owned(), l.to_owned()));
    let ci =
        if crate::merge::setup::in_ci() { " (expected under CI, whose checkout configures no drivers)" } else { "" };
    let message = format!(
        "`{line}` names the merge driver `postflight`, but merge.postflight.driver is not configured in this clone, so git merges the ledger as text{ci}; run `xtask hooks install --merge`"
    );
    let at = std::fs::read_to_string(repo.root.join(&file))
        .ok()
        .and_then(|t| t.lines().position(|l| l.trim() == line).map(|i| i + 1));
    Ok(Some(finding("merge-driver", &file, at, None, message)))
}

fn finding(rule: &'static str, file: &str, line: Option<usize>, task: Option<u32>, message: String) -> Finding {
    let severity = RULES.iter().find(|(id, _, _)| *id == rule).map(|(_, s, _)| *s).unwrap_or(Severity::Error);
    Finding { rule, severity, file: file.to_owned(), line, task, message, fixable: false }
}

fn check_source(repo: &Repo, source: &dyn Source, opts: Options) -> Result<Report> {
    let (report, complete) = ledger_findings(repo, source, opts)?;
    let transient = complete.then(|| tracked_transient(source.tracked()));
    Ok(with_transient(report, transient.as_deref()))
}

/// Every finding but the transient-file ones (which depend on the git index alone), sorted,
/// and whether the check got through (the transient-file rule runs only then).
fn ledger_findings(repo: &Repo, source: &dyn Source, opts: Options) -> Result<(Report, bool)> {
    let mut report = Report::default();
    let state_bytes = match source.read(STATE)? {
        Some(b) => b,
        None if opts.staged => return Ok((report, false)),
        None => {
            report.push(finding("state-json", STATE, None, None, "specs/state.json does not exist".into()));
            report.unreadable = true;
            return Ok((report, false));
        }
    };
    // The fast read of the fields a check needs; where it declines, StateFile::parse has the
    // error to report (or, should it accept the file after all, the view is taken from it).
    let parsed: StateFile;
    let state = match StateView::parse(&state_bytes) {
        Some(view) => view,
        None => match StateFile::parse(Path::new(STATE), state_bytes.clone()) {
            Ok(s) => {
                parsed = s;
                StateView::of(&parsed)?
            }
            Err(e) => {
                let line = match &e {
                    Error::Json { line, .. } => Some(*line),
                    Error::Format { line, .. } => *line,
                    _ => None,
                };
                report.push(finding("state-json", STATE, line, None, e.to_string()));
                report.unreadable = true;
                return Ok((report, false));
            }
        },
    };
    let todo = match source.read(TODO)? {
        None => {
            report.push(finding("todo-md", TODO, None, None, "specs/TODO.md does not exist".into()));
            report.unreadable = true;
            return Ok((report, false));
        }
        Some(bytes) => match TodoFile::parse(Path::new(TODO), &bytes) {
            Ok(t) => t,
            Err(e) => {
                let line = if let Error::NotUtf8 { line, .. } = &e { Some(*line) } else { None };
                report.push(finding("todo-md", TODO, line, None, e.to_string()));
                report.unreadable = true;
                return Ok((report, false));
            }
        },
    };
    let unique = unique_tasks(&state);
    let tasks: Vec<(u32, Option<&str>)> = unique.iter().map(|(n, e)| (*n, e.slug.as_deref())).collect();
    let mut plans = BTreeMap::new();
    for ((n, _), found) in tasks.iter().zip(source.plans(&tasks)?) {
        // A plan that is not UTF-8 is skipped: TODO.md and state.json are what this check is about.
        if let Some((rel, bytes)) = found {
            if let Ok(text) = std::str::from_utf8(&bytes) {
                plans.insert(*n, (rel, plan_header_status(text_lines(text))));
            }
        }
    }
    let view = View { state: &state, raw: &state_bytes, todo: &todo, plans };
    for (f, _) in derived_edits(&view) {
        report.push(f);
    }
    structural_findings(&view, &mut report);
    artifact_findings(&view, source, &mut report);
    session_findings(&state, &state_bytes, &mut report);
    validation_findings(source, &state, &state_bytes, &mut report)?;
    if !opts.staged {
        marker_findings(repo, source, &state, &mut report);
    }
    sort_findings(&mut report);
    Ok((report, true))
}

/// Orders findings by file, line and rule (stable: equal keys keep the order they were found in).
fn sort_findings(report: &mut Report) {
    report.findings.sort_by(|a, b| (&a.file, a.line, a.rule).cmp(&(&b.file, b.line, b.rule)));
}

/// The tracked paths that are transient workflow files.
fn tracked_transient(tracked: &BTreeSet<String>) -> Vec<String> {
    tracked.iter().filter(|path| TRANSIENT.contains(&path.rsplit('/').next().unwrap_or(path))).cloned().collect()
}

/// The sorted ledger findings plus the `transient-tracked` ones of `transient` (`None`: the
/// rule did not run), sorted as one check sorts them: the rule ids differ, so no key is shared
/// between the two groups and the order within each is kept.
fn with_transient(mut report: Report, transient: Option<&[String]>) -> Report {
    let Some(paths) = transient else { return report };
    for path in paths {
        report.push(finding(
            "transient-tracked",
            path,
            None,
            None,
            if path.rsplit('/').next() == Some(marker::MARKER_FILE) {
                format!(
                    "{path} is a transient workflow file but is tracked by git: a committed marker is stale, never \
an interrupted run (`xtask implement` replaces it; run `git rm --cached {path}`)"
                )
            } else {
                format!("{path} is a transient workflow file but is tracked by git (run `git rm --cached {path}`)")
            },
        ));
    }
    if !paths.is_empty() {
        sort_findings(&mut report);
    }
    report
}

/// The lines of a text as `TextDoc::line` gives them: split after each `\n`, without the
/// `\n` and one `\r` before it.
fn text_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive('\n').map(|l| l.strip_suffix('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).unwrap_or(l))
}

/// The marker of a status line, as the ledger's pattern `^(\s*-? ?\*\*Status\*\*:[ \t]*)\[([^\]]*)\](.*)$`
/// captures it (`TodoFile::status_in`, `PlanFile::header_status`), without a regex engine: on
/// a ledger of 10,000 tasks the engine cost more than reading the plans.
fn status_marker(line: &str) -> Option<&str> {
    // regex-bites' `\s` is ASCII: tab, newline, vertical tab, form feed, carriage return, space.
    let rest = line.trim_start_matches(['\t', '\n', '\x0b', '\x0c', '\r', ' ']);
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let rest = rest.strip_prefix("**Status**:")?.trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix('[')?;
    rest.find(']').map(|end| &rest[..end])
}

/// The first status line of a TODO.md block: (0-based line, marker), as `TodoFile::status_in`.
fn todo_status(todo: &TodoFile, block: std::ops::Range<usize>) -> Option<(usize, &str)> {
    block.into_iter().find_map(|i| status_marker(todo.doc.line(i)).map(|m| (i, m)))
}

/// A plan's header status: the first status line of its header (`plan::header_lines`: before
/// its first `##` heading, a `## Metadata` section included), as `PlanFile::header_status` finds it.
fn plan_header_status<'t>(lines: impl Iterator<Item = &'t str>) -> Option<(usize, String)> {
    plan::header_lines(lines).enumerate().find_map(|(i, l)| status_marker(l).map(|m| (i, m.to_owned())))
}

/// Tasks whose number appears exactly once in state.json, with their entries.
fn unique_tasks<'s, 'a>(state: &'s StateView<'a>) -> BTreeMap<u32, &'s Entry<'a>> {
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for n in state.entries.iter().filter_map(|e| e.number) {
        *counts.entry(n).or_default() += 1;
    }
    state.entries.iter().filter_map(|e| Some((e.number?, e))).filter(|(n, _)| counts.get(n) == Some(&1)).collect()
}

/// 1-based lines of `"project_number": N` in the raw state.json, per number, in file order.
///
/// Only lines holding the key are looked at (found with `memchr::memmem`), so a ledger of
/// 10,000 tasks costs one fast pass instead of decoding and splitting every line.
fn state_number_lines(raw: &[u8]) -> BTreeMap<u32, Vec<usize>> {
    const KEY: &[u8] = b"\"project_number\"";
    let mut out: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    // The 1-based line number of `counted_to`, advanced incrementally.
    let (mut counted_to, mut line_no) = (0usize, 1usize);
    for at in memchr::memmem::find_iter(raw, KEY) {
        let start = memchr::memrchr(b'\n', &raw[..at]).map_or(0, |i| i + 1);
        if !String::from_utf8_lossy(&raw[start..at]).trim_start().is_empty() {
            continue;
        }
        let end = memchr::memchr(b'\n', &raw[at..]).map_or(raw.len(), |i| at + i);
        line_no += memchr::memchr_iter(b'\n', &raw[counted_to..start]).count();
        counted_to = start;
        let line = String::from_utf8_lossy(&raw[at + KEY.len()..end]);
        let rest = line.trim_start().trim_start_matches(':').trim_start();
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse::<u32>() {
            out.entry(n).or_default().push(line_no);
        }
    }
    out
}

/// The first 1-based line at or after `from` containing `needle` in the raw state.json.
fn state_line_of(raw: &[u8], from: usize, needle: &str) -> Option<usize> {
    String::from_utf8_lossy(raw)
        .lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
}

/// TODO.md task headings: number -> 0-based heading lines.
fn todo_headings(todo: &TodoFile) -> BTreeMap<u32, Vec<usize>> {
    let mut out: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, n) in todo.headings() {
        out.entry(n).or_default().push(i);
    }
    out
}

/// Whether a plan header marker agrees with the state status: equal, or `[PARTIAL]` while the
/// task stays `implementing` after a partial run (reference §8, step 14).
fn plan_header_agrees(state: &Status, marker: &str) -> bool {
    let m = Status::from_marker(marker);
    m == *state || (*state == Status::Implementing && m == Status::Partial)
}

/// The findings `--fix` can repair, each with its edit; the same function drives `fix`, so a
/// fixed ledger has no fixable finding left.
fn derived_edits(view: &View<'_>) -> Vec<(Finding, Option<Edit>)> {
    let mut out = Vec::new();
    let unique = unique_tasks(view.state);
    let headings = todo_headings(view.todo);
    for (n, entry) in &unique {
        let status = entry.status();
        if headings.get(n).map(Vec::len) == Some(1) {
            // One headings() scan for all tasks: `todo.status(n)` would rescan the file per task.
            let heading = headings[n][0];
            match todo_status(view.todo, view.todo.block_at(heading)) {
                Some((_, marker)) if Status::from_marker(marker) == status => {}
                Some((line, marker)) => {
                    let mut f = finding(
                        "todo-status",
                        TODO,
                        Some(line + 1),
                        Some(*n),
                        format!(
                            "task {n}: TODO.md says [{marker}] but state.json says {status} (expected [{}])",
                            status.marker()
                        ),
                    );
                    f.fixable = true;
                    out.push((f, Some(Edit::TodoStatus { task: *n, status: status.clone() })));
                }
                None => {
                    let line = headings[n][0] + 1;
                    let mut f = finding(
                        "todo-status",
                        TODO,
                        Some(line),
                        Some(*n),
                        format!("task {n}: TODO.md entry has no **Status** line; state.json says {status}"),
                    );
                    f.fixable = true;
                    out.push((f, Some(Edit::TodoStatus { task: *n, status: status.clone() })));
                }
            }
            out.extend(summary_link(view, *n, heading, entry));
        }
        if let Some((rel, Some((line, marker)))) = view.plans.get(n) {
            {
                if !plan_header_agrees(&status, marker) {
                    let mut f = finding(
                        "plan-status",
                        rel,
                        Some(line + 1),
                        Some(*n),
                        format!("task {n}: plan header says [{marker}] but state.json says {status}"),
                    );
                    f.fixable = true;
                    out.push((f, Some(Edit::PlanHeader { task: *n, status: status.clone() })));
                }
            }
        }
    }
    if let (Some(s), Some((line, t))) = (view.state.next_project_number, view.todo.next_project_number()) {
        if s != t {
            let mut f = finding(
                "next-number",
                TODO,
                Some(line + 1),
                None,
                format!("TODO.md frontmatter next_project_number is {t} but state.json says {s}"),
            );
            f.fixable = true;
            out.push((f, Some(Edit::NextNumber(s))));
        }
    }
    out.extend(count_edits(view));
    out
}

/// `task_counts` lines of the TODO.md frontmatter that differ from what state.json implies:
/// `active` = tasks not completed, abandoned or expanded; `in_progress` = implementing or
/// partial; `not_started`. The other counts include archived tasks and are not checked.
fn count_edits(view: &View<'_>) -> Vec<(Finding, Option<Edit>)> {
    let mut out = Vec::new();
    let Some(range) = view.todo.frontmatter() else { return out };
    let statuses: Vec<Status> = view.state.entries.iter().filter(|e| e.object).map(Entry::status).collect();
    let expected = |key: &str| -> Option<usize> {
        let count = |pred: &dyn Fn(&Status) -> bool| statuses.iter().filter(|s| pred(s)).count();
        match key {
            "active" => Some(count(&|s| {
                !matches!(s, Status::Completed | Status::Implemented | Status::Abandoned | Status::Expanded)
            })),
            "in_progress" => Some(count(&|s| matches!(s, Status::Implementing | Status::Partial))),
            "not_started" => Some(count(&|s| *s == Status::NotStarted)),
            _ => None,
        }
    };
    let doc = &view.todo.doc;
    let Some(start) = range.clone().find(|&i| doc.line(i).trim_end() == "task_counts:") else { return out };
    for i in start + 1..range.end {
        let line = doc.line(i);
        if !line.starts_with(' ') {
            break;
        }
        let Some((key, value)) = line.trim().split_once(':') else { continue };
        let value = value.trim();
        let Ok(have) = value.parse::<usize>() else { continue };
        let Some(want) = expected(key.trim()) else { continue };
        if have != want {
            let indent: String = line.chars().take_while(|c| *c == ' ').collect();
            let mut f = finding(
                "task-counts",
                TODO,
                Some(i + 1),
                None,
                format!("frontmatter task_counts.{} is {have} but state.json has {want}", key.trim()),
            );
            f.fixable = true;
            out.push((f, Some(Edit::CountLine { line: i, text: format!("{indent}{}: {want}", key.trim()) })));
        }
    }
    out
}

/// The `summary-link` rule for one task: TODO.md must link the newest summary artifact.
/// The edit is `None` when the bullet holds more than one link or text (rewriting it would lose it).
/// `heading` is the 0-based line of the task's only TODO.md heading.
fn summary_link(view: &View<'_>, n: u32, heading: usize, entry: &Entry<'_>) -> Option<(Finding, Option<Edit>)> {
    let paths = summary_paths(entry);
    let newest = paths.last()?;
    let block = view.todo.block_at(heading);
    let doc = &view.todo.doc;
    let bullets: Vec<usize> = block.clone().filter(|&i| is_bullet(doc.line(i), "Summary")).collect();
    let link = format!("[{}]({newest})", newest.rsplit('/').next().unwrap_or(newest));
    let norm = |p: &str| p.trim_start_matches("./").trim_start_matches("specs/").to_owned();
    let mut targets = Vec::new();
    for &i in &bullets {
        targets.extend(link_targets(doc.line(i)));
        // A multi-line bullet lists its links on indented lines below it.
        for j in i + 1..block.end {
            let l = doc.line(j);
            if !l.starts_with([' ', '\t']) || l.trim().is_empty() {
                break;
            }
            targets.extend(link_targets(l));
        }
    }
    if targets.iter().any(|t| norm(t) == norm(newest)) {
        return None;
    }
    let single_link_bullet = bullets.len() == 1 && {
        let value = doc.line(bullets[0]).split_once("**:").map(|(_, v)| v.trim()).unwrap_or("");
        link_targets(value).len() == 1 && value.starts_with('[') && value.ends_with(')')
    };
    let (line, message) = match bullets.first() {
        None => (
            block.start + 1,
            format!("task {n}: TODO.md has no **Summary** link; state.json's newest summary is {newest}"),
        ),
        Some(&i) if targets.is_empty() => {
            (i + 1, format!("task {n}: TODO.md **Summary** is text, not a link to {newest}"))
        }
        Some(&i) => (
            i + 1,
            format!(
                "task {n}: TODO.md **Summary** links {} but state.json's newest summary is {newest}",
                targets.join(", ")
            ),
        ),
    };
    let mut f = finding("summary-link", TODO, Some(line), Some(n), message);
    if bullets.is_empty() || single_link_bullet {
        f.fixable = true;
        return Some((f, Some(Edit::SummaryLink { task: n, value: link })));
    }
    Some((f, None))
}

/// The `path` of every `summary` artifact of an entry, in order.
fn summary_paths(entry: &Entry<'_>) -> Vec<String> {
    entry.artifacts.iter().filter(|a| a.summary).filter_map(|a| a.path.as_deref().map(str::to_owned)).collect()
}

fn is_bullet(line: &str, label: &str) -> bool {
    line.trim_start().strip_prefix("- **").and_then(|r| r.strip_prefix(label)).is_some_and(|r| r.starts_with("**:"))
}

/// The targets of Markdown links `[text](target)` on a line.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) => {
                out.push(after[..j].to_owned());
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

/// Duplicates, tasks missing from one file, and next_project_number problems that --fix cannot repair.
fn structural_findings(view: &View<'_>, report: &mut Report) {
    let state_lines = state_number_lines(view.raw);
    let headings = todo_headings(view.todo);
    let mut state_counts: BTreeMap<u32, usize> = BTreeMap::new();
    for n in view.state.entries.iter().filter_map(|e| e.number) {
        *state_counts.entry(n).or_default() += 1;
    }
    for (n, count) in &state_counts {
        let lines = state_lines.get(n).cloned().unwrap_or_default();
        if *count > 1 {
            report.push(finding(
                "duplicate-task",
                STATE,
                lines.first().copied(),
                Some(*n),
                format!(
                    "task {n} appears {count} times in active_projects (lines {})",
                    lines.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if !headings.contains_key(n) {
            report.push(finding(
                "task-missing",
                STATE,
                lines.first().copied(),
                Some(*n),
                format!("task {n} is in state.json but TODO.md lacks it"),
            ));
        }
    }
    for (n, lines) in &headings {
        if lines.len() > 1 {
            report.push(finding(
                "duplicate-task",
                TODO,
                Some(lines[0] + 1),
                Some(*n),
                format!(
                    "task {n} has {} entries in TODO.md (lines {})",
                    lines.len(),
                    lines.iter().map(|l| (l + 1).to_string()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if !state_counts.contains_key(n) {
            report.push(finding(
                "task-missing",
                TODO,
                Some(lines[0] + 1),
                Some(*n),
                format!("task {n} is in TODO.md but state.json lacks it"),
            ));
        }
    }
    let max_state = state_counts.keys().max().copied();
    let max_todo = headings.keys().max().copied();
    let max_used = max_state.max(max_todo);
    match view.state.next_project_number {
        None => report.push(finding(
            "next-number",
            STATE,
            state_line_of(view.raw, 1, "\"next_project_number\""),
            None,
            "state.json has no integer next_project_number".into(),
        )),
        Some(next) => {
            if let Some(max) = max_used.filter(|m| u64::from(*m) >= next) {
                report.push(finding(
                    "next-number",
                    STATE,
                    state_line_of(view.raw, 1, "\"next_project_number\""),
                    Some(max),
                    format!("next_project_number {next} does not exceed task {max}, which is in use"),
                ));
            }
        }
    }
    if view.todo.next_project_number().is_none() {
        report.push(finding(
            "next-number",
            TODO,
            view.todo.frontmatter().map(|r| r.start),
            None,
            "TODO.md has no next_project_number line in its frontmatter".into(),
        ));
    }
}

/// Artifact paths of state.json that exist in neither the repository root nor `specs/`.
fn artifact_findings(view: &View<'_>, source: &dyn Source, report: &mut Report) {
    // Existence from the root, then from specs/ for those not found: looked up all at once (in
    // parallel in the work tree), then reported in file order.
    let rel_of = |path: &str| path.trim_start_matches("./").to_owned();
    let rels: Vec<String> = view
        .state
        .entries
        .iter()
        .filter(|e| e.number.is_some())
        .flat_map(|e| e.artifacts.iter().filter_map(|a| a.path.as_deref()))
        .map(rel_of)
        .filter(|rel| !rel.is_empty())
        .collect();
    let at_root = source.exist(&rels);
    let missing: Vec<String> =
        rels.iter().zip(&at_root).filter(|(_, found)| !**found).map(|(rel, _)| format!("specs/{rel}")).collect();
    let in_specs = source.exist(&missing);
    let missing: BTreeSet<&str> =
        missing.iter().zip(&in_specs).filter(|(_, found)| !**found).map(|(rel, _)| &rel["specs/".len()..]).collect();
    let lines = state_number_lines(view.raw);
    let mut seen_per_number: BTreeMap<u32, usize> = BTreeMap::new();
    for e in &view.state.entries {
        let Some(n) = e.number else { continue };
        let k = seen_per_number.entry(n).or_default();
        let start = lines.get(&n).and_then(|l| l.get(*k)).copied().unwrap_or(1);
        *k += 1;
        for a in &e.artifacts {
            let Some(path) = a.path.as_deref() else { continue };
            let rel = path.trim_start_matches("./");
            if rel.is_empty() || !missing.contains(rel) {
                continue;
            }
            let needle = serde_json::to_string(path).expect("a string serialises");
            report.push(finding(
                "artifact-missing",
                STATE,
                state_line_of(view.raw, start, &needle),
                Some(n),
                format!("task {n}: artifact {path} does not exist"),
            ));
        }
    }
}

fn session_findings(state: &StateView<'_>, raw: &[u8], report: &mut Report) {
    let lines = state_number_lines(raw);
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    for e in &state.entries {
        let Some(n) = e.number else { continue };
        let k = seen.entry(n).or_default();
        let start = lines.get(&n).and_then(|l| l.get(*k)).copied().unwrap_or(1);
        *k += 1;
        match &e.session_id {
            None => {}
            Some(Value::String(s)) if is_well_formed_session_id(s) => {}
            Some(v) => report.push(finding(
                "session-id",
                STATE,
                state_line_of(raw, start, "\"session_id\""),
                Some(n),
                format!("task {n}: session_id {v} is not of the form sess_<10 digits>_<6 hex>"),
            )),
        }
    }
}

/// Completed tasks whose language has validation commands configured but whose `validation`
/// record is missing or not passing. `.postflight.json` is read through the source (so the
/// cache fingerprints it); state.json is parsed in full only when some validation is configured.
fn validation_findings(source: &dyn Source, state: &StateView<'_>, raw: &[u8], report: &mut Report) -> Result<()> {
    let Some(bytes) = source.read(crate::config::CONFIG_FILE)? else { return Ok(()) };
    // A configuration that does not parse is the business of the commands that use it.
    let Ok(cfg) = serde_json::from_slice::<crate::config::Config>(&bytes) else { return Ok(()) };
    if cfg.validation.values().all(Vec::is_empty) {
        return Ok(());
    }
    let completed: BTreeSet<u32> =
        state.entries.iter().filter(|e| e.status() == Status::Completed).filter_map(|e| e.number).collect();
    if completed.is_empty() {
        return Ok(());
    }
    let Ok(doc) = serde_json::from_slice::<Value>(raw) else { return Ok(()) };
    let lines = state_number_lines(raw);
    let entries = doc.get("active_projects").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    for e in entries {
        let Some(n) = crate::ledger::state::entry_number(e) else { continue };
        let k = seen.entry(n).or_default();
        let start = lines.get(&n).and_then(|l| l.get(*k)).copied().unwrap_or(1);
        *k += 1;
        if !completed.contains(&n) || e.get("status").and_then(Value::as_str) != Some("completed") {
            continue;
        }
        let language = e.get("language").and_then(Value::as_str).unwrap_or_default();
        if cfg.validation_commands(language, &[]).is_empty() {
            continue;
        }
        let records = e.get("validation").and_then(Value::as_array).filter(|r| !r.is_empty());
        let problem = match records {
            None => "has no validation record".to_owned(),
            Some(rs) => match rs.iter().find(|r| r.get("exit_code").and_then(Value::as_i64) != Some(0)) {
                Some(r) => format!(
                    "has a failed validation record (`{}` exited {})",
                    r.get("command").and_then(Value::as_str).unwrap_or("?"),
                    r.get("exit_code").map_or("?".to_owned(), Value::to_string)
                ),
                None => continue,
            },
        };
        let line = if records.is_some() { state_line_of(raw, start, "\"validation\"") } else { Some(start) };
        report.push(finding(
            "unvalidated",
            STATE,
            line,
            Some(n),
            format!(
                "task {n}: completed, its language `{language}` has validation configured, but it {problem}; `xtask verify {n}` or `xtask implement {n} --force` re-checks it"
            ),
        ));
    }
    Ok(())
}

/// Markers left behind for tasks that are not implementing (work tree only: markers are never committed).
fn marker_findings(repo: &Repo, source: &dyn Source, state: &StateView<'_>, report: &mut Report) {
    for (path, marker) in source.markers() {
        let rel = repo.relative(&path);
        let dir_number = path
            .parent()
            .and_then(Path::file_name)
            .and_then(|d| d.to_string_lossy().split_once('_').and_then(|(n, _)| n.parse::<u32>().ok()));
        let task = marker.as_ref().map(|m| m.task_number).filter(|n| *n > 0).or(dir_number);
        let Some(n) = task else {
            report.push(finding("stale-marker", &rel, None, None, format!("{rel} names no task; remove it")));
            continue;
        };
        if let Some(m) = marker.as_ref().filter(|m| !crate::run::is_implement_marker(m)) {
            let op = if m.operation.is_empty() { "no operation" } else { m.operation.as_str() };
            let message = format!(
                "{rel} is left by a `{op}` run (skill `{}`), not an implement run: `xtask implement {n}` would not \
resume it; remove it",
                m.skill
            );
            report.push(finding("stale-marker", &rel, None, Some(n), message));
            continue;
        }
        let message = match state.task_status(n) {
            Ok(Status::Implementing) => continue,
            Ok(status) => format!("{rel} is left for task {n}, whose status is {status} (not implementing); remove it"),
            Err(true) => format!("{rel} is left for task {n}, which is not in state.json; remove it"),
            // Several entries have the number: which one would it be?
            Err(false) => continue,
        };
        report.push(finding("stale-marker", &rel, None, Some(n), message));
    }
}

// ---------------------------------------------------------------------------------------------
// Fixing.

/// Applies every fixable edit to the snapshot (TODO.md and plan headers only).
fn apply_fixes(repo: &Repo, snap: &mut Snapshot) -> Result<()> {
    let edits: Vec<Edit> = {
        let state = snap.state();
        let view_state = StateView::of(state)?;
        let Some(todo) = snap.todo() else { return Ok(()) };
        let mut plans = BTreeMap::new();
        for (n, entry) in unique_tasks(&view_state) {
            if let Some(path) = plan::find_plan(&repo.specs_dir(), n, entry.slug.as_deref()) {
                if let Ok(p) = PlanFile::load(&path) {
                    plans.insert(n, (repo.relative(&path), p.header_status()));
                }
            }
        }
        let view = View { state: &view_state, raw: state.raw(), todo, plans };
        derived_edits(&view).into_iter().filter_map(|(_, e)| e).collect()
    };
    for edit in edits {
        match edit {
            Edit::TodoStatus { task, status } => {
                if let Some(todo) = snap.todo_mut() {
                    todo.set_status(task, &status)?;
                }
            }
            Edit::PlanHeader { task, status } => {
                if let Some(plan) = snap.plan(task)? {
                    plan.set_header_status(&status);
                }
            }
            Edit::NextNumber(n) => {
                if let Some(todo) = snap.todo_mut() {
                    todo.set_next_project_number(n);
                }
            }
            Edit::CountLine { line, text } => {
                if let Some(todo) = snap.todo_mut() {
                    todo.doc.set_line(line, &text);
                }
            }
            Edit::SummaryLink { task, value } => {
                if let Some(todo) = snap.todo_mut() {
                    todo.set_bullet(task, "Summary", &value)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_and_bullets() {
        assert_eq!(link_targets("- **Summary**: [a.md](specs/1_x/a.md), [b](b.md) (v2)"), ["specs/1_x/a.md", "b.md"]);
        assert!(link_targets("- **Summary**: plain text (see notes)").is_empty());
        assert!(is_bullet(" - **Summary**: x", "Summary"));
        assert!(!is_bullet("**Summary**: paragraph", "Summary"));
        assert!(!is_bullet("- **Summary note**: x", "Summary"));
    }

    #[test]
    fn status_lines_are_read_as_the_ledger_reads_them() {
        let lines = [
            "- **Status**: [PLANNED]",
            "**Status**: [IMPLEMENTING] - note",
            " **Status**: [PLANNED] (waits for 350)",
            "\t- **Status**:\t [A] tail ] more",
            "  -**Status**: [X]",
            "- **Status**:[X]",
            "-  **Status**: [X]",
            "- - **Status**: [X]",
            "\u{a0}\u{2003}**Status**: [X]",
            "\x0b\x0c\r **Status**: [X]",
            "\x0b- **Status**: [X]",
            "-\u{a0}**Status**: [X]",
            "x **Status**: [X]",
            "**Status** : [X]",
            "**Status**: X]",
            "**Status**: [X",
            "**Status**: []",
            "**Status**: [[X]]",
            "**Status**: [X]\r",
            "**Status**: \u{a0}[X]",
            "**status**: [X]",
            "- **Status**: [NOT STARTED]\u{1f600}",
            "",
        ];
        for line in lines {
            let todo = TodoFile::parse(Path::new("TODO.md"), format!("### 1. T\n{line}\n").as_bytes()).expect("utf8");
            let want = todo.status_in(0..2).map(|sl| (sl.line, sl.marker));
            assert_eq!(todo_status(&todo, 0..2).map(|(i, m)| (i, m.to_owned())), want, "{line:?}");
            let plan =
                PlanFile::parse(Path::new("p.md"), format!("# P\n{line}\n## Phases\n- **Status**: [Z]\n").as_bytes())
                    .expect("utf8");
            let text = plan.to_text();
            assert_eq!(plan_header_status(text_lines(&text)), plan.header_status(), "{line:?}");
        }
        for text in
            ["# P\r\n**Status**: [A]\r\n", "**Status**: [A]\r", "##\n**Status**: [A]\n", "", "\n\n- **Status**: [B]"]
        {
            let plan = PlanFile::parse(Path::new("p.md"), text.as_bytes()).expect("utf8");
            assert_eq!(plan_header_status(text_lines(text)), plan.header_status(), "{text:?}");
            assert_eq!(text_lines(text).collect::<Vec<_>>(), plan.doc.lines().collect::<Vec<_>>(), "{text:?}");
        }
    }

    #[test]
    fn plan_header_partial_is_legitimate_while_implementing() {
        assert!(plan_header_agrees(&Status::Implementing, "PARTIAL"));
        assert!(plan_header_agrees(&Status::Implementing, "IMPLEMENTING"));
        assert!(!plan_header_agrees(&Status::Completed, "PARTIAL"));
        assert!(plan_header_agrees(&Status::Completed, "COMPLETE"));
        assert!(!plan_header_agrees(&Status::Planned, "NOT STARTED"));
    }

    #[test]
    fn index_plan_lookup_matches_the_work_tree_rules() {
        let tracked: BTreeSet<String> = [
            "specs/7_x/plans/implementation-002.md",
            "specs/7_x/plans/implementation-010.md",
            "specs/7_x/plans/implementation-010-old.md",
            "specs/7_x/plans/notes.md",
            "specs/008_y/plans/implementation-001.md",
            "specs/9_z/plans/implementation-003.md",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        let src = IndexSource {
            root: PathBuf::from("/nonexistent"),
            tracked,
            ids: BTreeMap::new(),
            spec_dirs: Default::default(),
            batch: Default::default(),
        };
        assert_eq!(src.find_plan(7, Some("x")).as_deref(), Some("specs/7_x/plans/implementation-010.md"));
        assert_eq!(src.find_plan(8, Some("y")).as_deref(), Some("specs/008_y/plans/implementation-001.md"));
        assert_eq!(src.find_plan(9, None).as_deref(), Some("specs/9_z/plans/implementation-003.md"));
        assert_eq!(src.find_plan(10, Some("x")), None);
        assert!(src.exists("specs/7_x/plans") && src.exists("specs/7_x/plans/notes.md") && !src.exists("specs/7"));
    }

    #[test]
    fn state_number_lines_only_counts_keys_that_start_a_line() {
        let raw = "{\r\n  \"active_projects\": [\r\n    {\"project_number\": 7, \"x\": 1},\n    {\n      \"project_number\":12,\n      \"note\": \"\\\"project_number\\\": 99 \u{e9}\"\n    },\n    {\n  \t\"project_number\" : 7\n    }\n  ],\n  \"project_number\": \"x\"\n}\n";
        let state = StateFile::parse(Path::new("state.json"), raw.as_bytes().to_vec()).expect("parses");
        let lines = state_number_lines(state.raw());
        assert_eq!(lines, BTreeMap::from([(7, vec![9]), (12, vec![5])]));
        // The same as decoding and splitting every line, which this replaced.
        let mut slow: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, l) in String::from_utf8_lossy(state.raw()).lines().enumerate() {
            let Some(rest) = l.trim_start().strip_prefix("\"project_number\"") else { continue };
            let rest = rest.trim_start().trim_start_matches(':').trim_start();
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse::<u32>() {
                slow.entry(n).or_default().push(i + 1);
            }
        }
        assert_eq!(lines, slow);
    }

    #[test]
    fn index_reads_go_through_one_cat_file_and_equal_git_show() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("git").args(args).current_dir(root).output().expect("git");
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            out.stdout
        };
        run(&["init", "-q"]);
        let files: [(&str, &[u8]); 4] = [
            ("a b.md", b"with a space\n"),
            ("empty", b""),
            ("specs/bin", b"\x00\x01\xff no newline"),
            ("specs/1_x/plans/implementation-001.md", b"- **Status**: [PLANNED]\n"),
        ];
        for (rel, bytes) in files {
            std::fs::create_dir_all(root.join(rel).parent().expect("parent")).expect("mkdir");
            std::fs::write(root.join(rel), bytes).expect("write");
        }
        run(&["add", "."]);
        // The work tree moves on; the staged versions are what is read.
        std::fs::write(root.join("empty"), "unstaged").expect("write");
        let repo = Repo::discover(root).expect("repo");
        let src = IndexSource::open(&repo).expect("open");
        for (rel, bytes) in files {
            assert_eq!(src.read(rel).expect("read").as_deref(), Some(bytes), "{rel}");
            assert_eq!(run(&["cat-file", "blob", &format!(":{rel}")]), bytes);
        }
        assert_eq!(src.read("untracked").expect("read"), None);
        assert_eq!(src.find_plan(1, Some("x")).as_deref(), Some("specs/1_x/plans/implementation-001.md"));
    }

    #[test]
    fn work_tree_plan_lookup_matches_plan_find_plan() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        std::fs::create_dir_all(root.join(".git")).expect("git dir");
        for d in ["specs/7_x/plans", "specs/008_y/plans", "specs/9_b/plans", "specs/9_a/plans", "specs/10_z"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        for f in [
            "specs/7_x/plans/implementation-002.md",
            "specs/008_y/plans/implementation-001.md",
            "specs/9_a/plans/implementation-001.md",
            "specs/9_b/plans/implementation-004.md",
        ] {
            std::fs::write(root.join(f), "").expect("write");
        }
        let repo = Repo::discover(root).expect("repo");
        let src = WorkSource {
            repo: repo.clone(),
            tracked: BTreeSet::new(),
            fs: Fs::default(),
            specs_listing: OnceLock::new(),
        };
        let specs = repo.specs_dir();
        for (n, slug) in [
            (7, Some("x")),
            (7, None),
            (7, Some("other")),
            (8, Some("y")),
            (8, None),
            (9, None),
            (9, Some("b")),
            (10, None),
            (11, None),
        ] {
            let want = plan::find_plan(&specs, n, slug).map(|p| repo.relative(&p));
            assert_eq!(src.find_plan(n, slug), want, "task {n} slug {slug:?}");
        }
    }
}
