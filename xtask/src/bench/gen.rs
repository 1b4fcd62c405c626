//! The benchmark's inputs: realistic ledgers of any size (state.json, TODO.md, plans, reports and
//! summaries shaped like the ProofChecker fixtures: descriptions, artifacts, mixed statuses) and a
//! repository with many files and a long history, written in one `git fast-import` stream.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};
use serde_json::{json, Map, Value};

use super::run_ok;

/// The shape of a generated repository.
#[derive(Debug, Clone, Copy)]
pub struct RepoSpec {
    /// Ordinary files (in about sqrt(files) directories), added by the first commit.
    pub files: usize,
    /// Commits in the history; every commit after the first changes three files.
    pub commits: usize,
    /// Tasks in the ledger; `None` for a repository without `specs/`.
    pub tasks: Option<usize>,
}

/// The task every benchmark works on: `planned`, language `general`, a three-phase plan.
#[derive(Debug, Clone)]
pub struct BenchTask {
    /// The task number.
    pub number: u32,
    /// `specs/{N}_{slug}`.
    pub dir_rel: String,
    /// The plan, repository-relative.
    pub plan_rel: String,
}

/// A generated ledger: every file (repository-relative path, bytes, executable) and the task.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// The files, `specs/state.json` first.
    pub files: Vec<(String, Vec<u8>, bool)>,
    /// The benchmark task.
    pub task: BenchTask,
}

impl Ledger {
    /// The size of `specs/state.json` in bytes.
    pub fn state_bytes(&self) -> usize {
        self.files.iter().find(|(p, _, _)| p == "specs/state.json").map_or(0, |(_, b, _)| b.len())
    }
}

/// The name of ordinary file `i` of `files`.
pub fn file_name(i: usize, files: usize) -> String {
    let per_dir = (files as f64).sqrt().ceil() as usize;
    format!("d{:03}/f{:04}.txt", i / per_dir.max(1), i % per_dir.max(1))
}

/// A small deterministic generator (splitmix64), so every run builds the same ledger.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const VERBS: &[&str] = &[
    "Prove",
    "Refactor",
    "Remove",
    "Organize",
    "Document",
    "Fix",
    "Add",
    "Migrate",
    "Eliminate",
    "Review",
    "Split",
    "Generalize",
    "Simplify",
    "Audit",
    "Port",
    "Restructure",
];

const WORDS: &[&str] = &[
    "canonical",
    "model",
    "truth",
    "lemma",
    "completeness",
    "soundness",
    "frame",
    "condition",
    "typeclass",
    "discrete",
    "timeline",
    "axiom",
    "seriality",
    "density",
    "staged",
    "construction",
    "witness",
    "successor",
    "covering",
    "consistency",
    "Lindenbaum",
    "extension",
    "metalogic",
    "Boneyard",
    "module",
    "import",
    "parser",
    "tactic",
    "simp",
    "normal",
    "form",
    "temporal",
    "modal",
    "bimodal",
    "semantics",
    "syntax",
    "derivation",
    "theorem",
    "sorry",
    "infrastructure",
    "agent",
    "hook",
    "state",
    "sync",
    "plan",
    "summary",
    "report",
    "team",
    "research",
    "ordering",
    "chain",
    "filtration",
    "valuation",
    "world",
    "history",
    "task",
    "relation",
    "proof",
    "strategy",
    "examples",
    "documentation",
    "build",
    "cache",
    "lake",
    "Mathlib",
    "interval",
    "bounded",
    "finite",
];

const LANGUAGES: &[(&str, usize)] = &[("lean", 50), ("general", 20), ("meta", 15), ("markdown", 10), ("latex", 5)];

/// Status weights, roughly as the fixtures have them.
const STATUSES: &[(&str, usize)] = &[
    ("completed", 34),
    ("not_started", 20),
    ("researched", 14),
    ("planned", 12),
    ("implementing", 6),
    ("blocked", 5),
    ("abandoned", 3),
    ("partial", 2),
    ("expanded", 2),
    ("researching", 1),
    ("planning", 1),
];

fn weighted<'a>(rng: &mut Rng, table: &[(&'a str, usize)]) -> &'a str {
    let total: usize = table.iter().map(|(_, w)| w).sum();
    let mut k = rng.below(total);
    for (item, w) in table {
        if k < *w {
            return item;
        }
        k -= w;
    }
    table[0].0
}

fn sentence(rng: &mut Rng, min: usize, max: usize) -> String {
    let n = min + rng.below(max - min + 1);
    let mut words: Vec<String> = Vec::with_capacity(n);
    for i in 0..n {
        let w = rng.pick(WORDS);
        let w = match rng.below(40) {
            0 => format!("`{}_{}`", w.to_lowercase(), rng.pick(WORDS).to_lowercase()),
            1 => format!("{w} — "),
            2 => format!("{w} (φ)"),
            _ => w.to_owned(),
        };
        if i == 0 {
            let mut c = w.chars();
            words.push(c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default());
        } else {
            words.push(w);
        }
    }
    let mut s = words.join(" ").replace("—  ", "— ");
    s.push('.');
    s
}

fn paragraph(rng: &mut Rng, sentences: usize) -> String {
    (0..sentences).map(|_| sentence(rng, 8, 18)).collect::<Vec<_>>().join(" ")
}

/// `2026-01-01T00:00:00Z` plus `minutes`.
fn ts(minutes: u64) -> String {
    let secs = 1_767_225_600 + minutes * 60;
    let days = secs / 86_400;
    let (y, m, d) = civil(days as i64);
    let rem = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

fn compact_date(minutes: u64) -> String {
    ts(minutes)[..10].replace('-', "")
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's civil_from_days).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn marker(status: &str) -> String {
    status.replace('_', " ").to_uppercase()
}

fn session(rng: &mut Rng, minutes: u64) -> String {
    format!("sess_{}_{:06x}", 1_767_225_600 + minutes * 60, rng.next() & 0xff_ffff)
}

/// One task's data before it is written out.
struct Task {
    number: u32,
    title: String,
    slug: String,
    status: &'static str,
    language: &'static str,
    description: String,
    entry: Value,
    /// (label, file name, repository-relative path) of the TODO.md link lines.
    links: Vec<(&'static str, String, String)>,
    summary_text: Option<String>,
}

/// Builds a ledger of `tasks` tasks, numbered from 101 upwards and listed newest first, with the
/// benchmark task in the middle of the list.
pub fn ledger(tasks: usize) -> Ledger {
    let mut rng = Rng(0x5eed_0000 + tasks as u64);
    let tasks = tasks.max(1);
    let first = 101u32;
    let bench_index = tasks / 2;
    let mut files: Vec<(String, Vec<u8>, bool)> = Vec::new();
    let mut list: Vec<Task> = Vec::with_capacity(tasks);
    for idx in 0..tasks {
        // Newest first: index 0 has the highest number.
        let number = first + (tasks - 1 - idx) as u32;
        let is_bench = idx == bench_index;
        let status: &'static str = if is_bench { "planned" } else { weighted(&mut rng, STATUSES) };
        let language: &'static str = if is_bench { "general" } else { weighted(&mut rng, LANGUAGES) };
        let verb = rng.pick(VERBS);
        let nwords = 3 + rng.below(4);
        let rest: Vec<&str> = (0..nwords).map(|_| rng.pick(WORDS)).collect();
        let title = format!("{verb} {}", rest.join(" "));
        let mut slug: String = title
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
            .split('_')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        slug.truncate(48);
        let slug = slug.trim_end_matches('_').to_owned();
        let sentences = 2 + rng.below(3);
        let description = paragraph(&mut rng, sentences);
        let created = (u64::from(number) * 97) % 100_000;
        let dir = format!("specs/{number}_{slug}");
        let rank = match status {
            "not_started" => 0,
            "researching" => 1,
            "researched" | "abandoned" | "expanded" | "planning" => 2,
            "planned" => 3,
            "blocked" => 4,
            "implementing" => 5,
            "partial" => 6,
            _ => 7,
        };
        let mut e = Map::new();
        e.insert("project_number".into(), json!(number));
        e.insert("project_name".into(), json!(slug));
        e.insert("status".into(), json!(status));
        e.insert("language".into(), json!(language));
        e.insert("priority".into(), json!(rng.pick(&["high", "medium", "low"])));
        e.insert("description".into(), json!(description));
        e.insert("created".into(), json!(ts(created)));
        e.insert("last_updated".into(), json!(ts(created + 400 + rng.below(300) as u64)));
        if rank >= 1 {
            e.insert("session_id".into(), json!(session(&mut rng, created + 300)));
        }
        let mut artifacts = Vec::new();
        let mut links = Vec::new();
        let mut summary_text = None;
        if rank >= 2 {
            e.insert("researched".into(), json!(ts(created + 60)));
            let path = format!("{dir}/reports/research-001.md");
            artifacts.push(json!({"path": path, "type": "research", "summary": sentence(&mut rng, 12, 30)}));
            files.push((path.clone(), report(&mut rng, number, &title), false));
            links.push(("Research", "research-001.md".to_owned(), path));
        }
        let phases = 3 + rng.below(4);
        if rank >= 3 {
            e.insert("planned".into(), json!(ts(created + 120)));
            let path = format!("{dir}/plans/implementation-001.md");
            artifacts.push(json!({"path": path, "type": "plan", "summary": format!("{phases}-phase implementation plan: {}", sentence(&mut rng, 8, 16))}));
            let phases = if is_bench { 3 } else { phases };
            let done = match status {
                "completed" => phases,
                "planned" => 0,
                _ => 1 + rng.below(phases - 1),
            };
            files.push((path.clone(), plan(&mut rng, number, &slug, status, phases, done), false));
            links.push(("Plan", "implementation-001.md".to_owned(), path));
        }
        if rank >= 5 {
            e.insert("started".into(), json!(ts(created + 180)));
        }
        if rank >= 6 || (rank == 5 && rng.chance(50)) {
            let name = format!("implementation-summary-{}.md", compact_date(created + 240));
            let path = format!("{dir}/summaries/{name}");
            let text = sentence(&mut rng, 6, 12);
            artifacts.push(json!({"path": path, "type": "summary", "summary": text}));
            files.push((path.clone(), summary(&mut rng, number, &title), false));
            links.push(("Summary", name, path));
        }
        if !artifacts.is_empty() {
            e.insert("artifacts".into(), Value::Array(artifacts));
        }
        match status {
            "completed" => {
                e.insert("completed".into(), json!(ts(created + 300)));
                let text = paragraph(&mut rng, 2);
                e.insert("completion_summary".into(), json!(text));
                summary_text = Some(text);
            }
            "partial" => {
                e.insert("resume_phase".into(), json!(2));
            }
            "blocked" => {
                e.insert("blocked_reason".into(), json!(sentence(&mut rng, 8, 16)));
            }
            "not_started" if rng.chance(30) && number > first => {
                e.insert("depends_on".into(), json!([number - 1]));
            }
            _ => {}
        }
        list.push(Task {
            number,
            title,
            slug,
            status,
            language,
            description,
            entry: Value::Object(e),
            links,
            summary_text,
        });
    }
    let next = first + tasks as u32;
    let count = |pred: &dyn Fn(&str) -> bool| list.iter().filter(|t| pred(t.status)).count();
    let active = count(&|s| !matches!(s, "completed" | "abandoned" | "expanded"));
    let in_progress = count(&|s| matches!(s, "implementing" | "partial"));
    let not_started = count(&|s| s == "not_started");
    let completed = count(&|s| s == "completed");
    let abandoned = count(&|s| s == "abandoned");
    let state = json!({
        "metadata": {"generated_at": "2026-01-20T20:55:08.000000", "total_tasks": tasks, "last_sync": "2026-03-14T22:30:00Z"},
        "active_projects": list.iter().map(|t| t.entry.clone()).collect::<Vec<_>>(),
        "completed_projects": [{"project_number": 21, "status": "abandoned", "project_name": "Fix Task 12 Inconsistent Status",
            "section": "High Priority", "language": "meta", "priority": "high", "archived": "2026-01-16T23:00:00Z", "archived_reason": "abandoned"}],
        "next_project_number": next,
        "task_counts": {"active": active, "not_started": not_started, "total": tasks + 300, "abandoned": abandoned + 30},
        "repository_health": {"last_assessed": "2026-02-27T02:52:44Z", "sorry_count": 76, "axiom_count": 19, "build_errors": 0, "status": "manageable"},
        "last_updated": "2026-03-16T19:45:00Z"
    });
    let mut state_bytes = serde_json::to_vec_pretty(&state).expect("a JSON value always serialises");
    state_bytes.push(b'\n');

    let mut todo = format!(
        "---\nnext_project_number: {next}\nrepository_health:\n  overall_score: 92\n  production_readiness: improved\n  \
last_assessed: 2026-03-15T18:30:00Z\ntask_counts:\n  active: {active}\n  completed: {completed}\n  in_progress: {in_progress}\n  \
not_started: {not_started}\n  abandoned: {abandoned}\n  total: {}\ntechnical_debt:\n  sorry_count: 22\n  \
sorry_count_note: \"Excluding Boneyard: 9 metalogic (non-publication), 13 examples\"\n  publication_path_sorries: 0\n  \
axiom_count: 0\n  build_errors: 0\n  status: excellent\n---\n\n# TODO\n\n## Tasks\n\n",
        tasks + 300
    );
    for (i, t) in list.iter().enumerate() {
        if i > 0 {
            todo.push_str("---\n\n");
        }
        todo.push_str(&format!("### {}. {}\n", t.number, t.title));
        todo.push_str(&format!("- **Effort**: {} hours\n", 2 + (t.number % 9)));
        todo.push_str(&format!("- **Status**: [{}]\n", marker(t.status)));
        todo.push_str(&format!("- **Language**: {}\n", t.language));
        for (label, name, path) in &t.links {
            todo.push_str(&format!("- **{label}**: [{name}]({path})\n"));
        }
        match &t.summary_text {
            Some(s) => todo.push_str(&format!("\n**Summary**: {s}\n\n")),
            None => todo.push_str(&format!("\n**Description**: {}\n\n", t.description)),
        }
    }
    let bench = &list[bench_index];
    let task = BenchTask {
        number: bench.number,
        dir_rel: format!("specs/{}_{}", bench.number, bench.slug),
        plan_rel: format!("specs/{}_{}/plans/implementation-001.md", bench.number, bench.slug),
    };
    let mut all = vec![
        ("specs/state.json".to_owned(), state_bytes, false),
        ("specs/TODO.md".to_owned(), todo.into_bytes(), false),
    ];
    all.append(&mut files);
    Ledger { files: all, task }
}

fn report(rng: &mut Rng, n: u32, title: &str) -> Vec<u8> {
    format!(
        "# Research Report: Task #{n}\n\n**Task**: {n} - {title}\n**Date**: 2026-03-16\n\n## Summary\n\n{}\n\n## Findings\n\n- {}\n- {}\n\n## Recommendations\n\n{}\n",
        paragraph(rng, 3),
        sentence(rng, 8, 14),
        sentence(rng, 8, 14),
        paragraph(rng, 2)
    )
    .into_bytes()
}

fn summary(rng: &mut Rng, n: u32, title: &str) -> Vec<u8> {
    format!(
        "# Implementation Summary: Task #{n}\n\n**Task**: {title}\n**Status**: [IN PROGRESS]\n\n## Phase Log\n\n### Phase 1: {} [COMPLETED]\n\n**Changes Made**:\n- {}\n",
        sentence(rng, 3, 5).trim_end_matches('.'),
        sentence(rng, 8, 14)
    )
    .into_bytes()
}

fn plan(rng: &mut Rng, n: u32, slug: &str, status: &str, phases: usize, done: usize) -> Vec<u8> {
    let header = match status {
        "planned" => "PLANNED",
        "implementing" => "IMPLEMENTING",
        "partial" => "PARTIAL",
        "blocked" => "BLOCKED",
        _ => "COMPLETED",
    };
    let mut s = format!(
        "# Implementation Plan: Task #{n}\n\n- **Task**: {n} - {slug}\n- **Status**: [{header}]\n- **Effort**: {} hours\n\
- **Dependencies**: None\n- **Research Inputs**: specs/{n}_{slug}/reports/research-001.md\n\
- **Artifacts**: plans/implementation-001.md (this file)\n- **Standards**: plan-format.md, status-markers.md, artifact-management.md, tasks.md\n\
- **Type**: general\n\n## Overview\n\n{}\n\n## Implementation Phases\n\n",
        2 + phases * 2,
        paragraph(rng, 3)
    );
    for p in 1..=phases {
        let m = if p <= done {
            "COMPLETED"
        } else if p == done + 1 && status == "blocked" {
            "BLOCKED"
        } else if p == done + 1 && matches!(status, "implementing" | "partial") {
            "IN PROGRESS"
        } else {
            "NOT STARTED"
        };
        s.push_str(&format!(
            "### Phase {p}: {} [{m}]\n\n- **Dependencies:** {}\n- **Goal:** {}\n\n**Tasks:**\n- [ ] {}\n- [ ] {}\n\n**Verification**: {}\n\n---\n\n",
            sentence(rng, 2, 4).trim_end_matches('.'),
            if p == 1 { "None".to_owned() } else { format!("Phase {}", p - 1) },
            sentence(rng, 6, 12),
            sentence(rng, 5, 10),
            sentence(rng, 5, 10),
            sentence(rng, 4, 8)
        ));
    }
    s.into_bytes()
}

/// Builds the repository of `spec` in the empty directory `root` with `git fast-import`, checked
/// out on `main` with a fresh index; the ledger (and `extra` files, such as the peer's
/// `.claude/` scripts) arrive with the last commit. Returns the ledger, if any.
pub fn build_repo(root: &Path, spec: RepoSpec, extra: &[(String, Vec<u8>, bool)]) -> anyhow::Result<Option<Ledger>> {
    let git = |args: &[&str]| run_ok(Command::new("git").current_dir(root).args(args));
    git(&["init", "-q", "-b", "main"])?;
    git(&["config", "user.name", "Bench"])?;
    git(&["config", "user.email", "bench@example.com"])?;
    let ledger = spec.tasks.map(ledger);
    let mut child = Command::new("git")
        .current_dir(root)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .context("run git fast-import")?;
    {
        let stdin = child.stdin.take().expect("stdin is piped");
        let mut w = std::io::BufWriter::new(stdin);
        let commits = spec.commits.max(1);
        for c in 0..commits {
            writeln!(w, "commit refs/heads/main")?;
            writeln!(w, "committer Bench <bench@example.com> {} +0000", 1_700_000_000 + c)?;
            let last = c + 1 == commits;
            let msg =
                if last && ledger.is_some() { "add the ledger".to_owned() } else { format!("history commit {c}") };
            write!(w, "data {}\n{msg}\n", msg.len())?;
            let mut put = |path: &str, bytes: &[u8], exec: bool| -> std::io::Result<()> {
                writeln!(w, "M {} inline {path}", if exec { "100755" } else { "100644" })?;
                writeln!(w, "data {}", bytes.len())?;
                w.write_all(bytes)?;
                writeln!(w)
            };
            if c == 0 {
                for i in 0..spec.files {
                    put(&file_name(i, spec.files), format!("file {i}\n").as_bytes(), false)?;
                }
            } else if spec.files > 0 {
                for j in 0..3 {
                    let i = (c * 31 + j * 1_000_003) % spec.files;
                    put(&file_name(i, spec.files), format!("file {i} at commit {c}\n").as_bytes(), false)?;
                }
            }
            if last {
                for (path, bytes, exec) in ledger.iter().flat_map(|l| l.files.iter()).chain(extra) {
                    put(path, bytes, *exec)?;
                }
            }
        }
        w.flush()?;
    }
    if !child.wait()?.success() {
        bail!("git fast-import failed");
    }
    git(&["checkout", "-q", "-f", "main"])?;
    // Bring the index's stat data up to date as a user's repository would have it.
    git(&["status", "--porcelain"])?;
    Ok(ledger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_size_ledger_is_shaped_like_the_fixtures() {
        let l = ledger(30);
        let bytes = l.state_bytes();
        assert!((25_000..=70_000).contains(&bytes), "state.json is {bytes} bytes");
        let state: Value = serde_json::from_slice(&l.files[0].1).expect("state.json parses");
        let entries = state["active_projects"].as_array().expect("array");
        assert_eq!(entries.len(), 30);
        let statuses: std::collections::BTreeSet<&str> = entries.iter().filter_map(|e| e["status"].as_str()).collect();
        assert!(statuses.len() >= 4, "mixed statuses: {statuses:?}");
        let bench = entries.iter().find(|e| e["project_number"] == l.task.number).expect("bench task");
        assert_eq!(bench["status"], "planned");
        assert!(l.files.iter().any(|(p, _, _)| *p == l.task.plan_rel));
        // Every artifact the ledger names is one of the generated files.
        for e in entries {
            for a in e["artifacts"].as_array().into_iter().flatten() {
                let p = a["path"].as_str().expect("path");
                assert!(l.files.iter().any(|(f, _, _)| f == p), "{p} not generated");
            }
        }
        assert_eq!(ts(0), "2026-01-01T00:00:00Z");
        assert_eq!(ts(60 * 24 * 59 + 61), "2026-03-01T01:01:00Z");
    }

    #[test]
    fn generated_repository_passes_check() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        let ledger =
            build_repo(root, RepoSpec { files: 30, commits: 4, tasks: Some(12) }, &[]).expect("build").expect("ledger");
        let log = Command::new("git").current_dir(root).args(["rev-list", "--count", "HEAD"]).output().expect("git");
        assert_eq!(String::from_utf8_lossy(&log.stdout).trim(), "4");
        assert!(root.join(&ledger.task.plan_rel).is_file());
        let repo = postflight::repo::Repo::discover(root).expect("repo");
        let report = postflight::guard::check::check(&repo, Default::default()).expect("check");
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
        let status = Command::new("git").current_dir(root).args(["status", "--porcelain"]).output().expect("git");
        assert!(status.stdout.is_empty(), "{}", String::from_utf8_lossy(&status.stdout));
    }
}
