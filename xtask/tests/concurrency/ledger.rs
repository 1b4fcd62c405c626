//! Concurrent writers: 8 processes × 100 status changes on 8 tasks lose no update, and writers
//! killed with SIGKILL at random moments never leave a truncated or invalid ledger, only
//! recognisable temp files that a later write sweeps away.
//!
//! The library-level writers are this test binary started again as a helper process (the
//! ignored test `writer_process`), so each one is a real, separately killable process.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::support::{render, TestRepo};
use postflight::ledger::plan::PlanFile;
use postflight::ledger::state::StateFile;
use postflight::ledger::status::Status;
use postflight::ledger::todo::TodoFile;
use serde_json::Value;

const TASKS: [u32; 8] = [101, 102, 103, 104, 105, 106, 107, 108];
const CALLS: usize = 100;

/// A repository with tasks 101..=108 (planned, each with a plan) and an unknown top-level key
/// holding `padding` bytes, so that writes take long enough to be interrupted.
fn ledger_repo(padding: usize) -> TestRepo {
    let repo = TestRepo::empty();
    let entries: Vec<Value> = TASKS
        .iter()
        .rev()
        .map(|n| {
            serde_json::json!({
                "project_number": n,
                "project_name": format!("t{n}"),
                "status": "planned",
                "language": "general",
                "created": "2026-03-01T00:00:00Z",
                "last_updated": "2026-03-01T00:00:00Z"
            })
        })
        .collect();
    let state = serde_json::json!({
        "active_projects": entries,
        "next_project_number": 109,
        "zz_unknown_padding": "x".repeat(padding),
    });
    repo.write("specs/state.json", &String::from_utf8(postflight::ledger::json::to_jq_pretty(&state)).expect("utf8"));
    let mut todo = String::from("---\nnext_project_number: 109\n---\n\n# TODO\n\n## Tasks\n\n");
    for n in TASKS.iter().rev() {
        todo.push_str(&format!("### {n}. Task {n}\n- **Status**: [PLANNED]\n- **Language**: general\n\n---\n\n"));
        repo.write(
            &format!("specs/{n}_t{n}/plans/implementation-001.md"),
            &format!("# Implementation Plan: Task #{n}\n\n- **Status**: [PLANNED]\n\n### Phase 1: All [NOT STARTED]\n"),
        );
    }
    repo.write("specs/TODO.md", &todo);
    repo
}

/// The status of call `k` (0-based): implementing, partial, implementing, ...
fn status_of_call(k: usize) -> Status {
    if k.is_multiple_of(2) {
        Status::Implementing
    } else {
        Status::Partial
    }
}

/// A distinct timestamp per call.
fn ts_of_call(k: usize) -> String {
    format!("2026-03-17T10:{:02}:{:02}Z", k / 60, k % 60)
}

/// Every file under `dir` whose name looks like one of our temp files.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("ls").map(|e| e.expect("entry")) {
            let p = e.path();
            if e.file_type().expect("type").is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().ends_with(".tmp") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Checks that every ledger file of `repo` is complete and valid, and that every leftover temp
/// file is one of ours (`.<file>.<random>.tmp` beside the file it was for).
fn assert_ledger_valid(repo: &TestRepo, padding: usize) -> Vec<PathBuf> {
    let state = StateFile::load(&repo.file("specs/state.json")).unwrap_or_else(|e| panic!("state.json: {e}"));
    assert_eq!(state.to_bytes().expect("print"), state.raw(), "state.json is complete jq-formatted output");
    assert_eq!(state.doc().expect("doc")["zz_unknown_padding"].as_str().map(str::len), Some(padding));
    assert_eq!(state.tasks().expect("tasks").len(), TASKS.len());
    let todo = TodoFile::load(&repo.file("specs/TODO.md")).unwrap_or_else(|e| panic!("TODO.md: {e}"));
    for n in TASKS {
        assert!(todo.status(n).expect("unique").is_some(), "TODO.md entry of {n} complete");
        let plan = PlanFile::load(&repo.file(&format!("specs/{n}_t{n}/plans/implementation-001.md"))).expect("plan");
        assert!(plan.header_status().is_some() && plan.phases().len() == 1, "plan of {n} complete");
    }
    let leftovers = temp_files(&repo.file("specs"));
    for p in &leftovers {
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        assert!(
            [".state.json.", ".TODO.md.", ".implementation-001.md."].iter().any(|pre| name.starts_with(pre)),
            "unrecognisable temp file {}",
            p.display()
        );
    }
    leftovers
}

/// How many tasks' TODO.md marker or plan header differs from state.json's status.
fn disagreeing_tasks(repo: &TestRepo) -> usize {
    let state = StateFile::load(&repo.file("specs/state.json")).expect("state");
    let todo = TodoFile::load(&repo.file("specs/TODO.md")).expect("todo");
    TASKS
        .iter()
        .filter(|&&n| {
            let want = state.task(n).expect("task").status.marker();
            let plan =
                PlanFile::load(&repo.file(&format!("specs/{n}_t{n}/plans/implementation-001.md"))).expect("plan");
            todo.status(n).expect("ok").expect("line").marker != want || plan.header_status().expect("header").1 != want
        })
        .count()
}

#[test]
fn eight_processes_times_hundred_set_status_calls_lose_no_update() {
    let repo = ledger_repo(20_000);
    let started = Instant::now();
    let writes: usize = std::thread::scope(|s| {
        let handles: Vec<_> = TASKS
            .iter()
            .map(|&n| {
                let repo = &repo;
                s.spawn(move || {
                    let mut writes = 0;
                    for k in 0..CALLS {
                        let to = status_of_call(k);
                        let from = if k == 0 { Status::Planned } else { status_of_call(k - 1) };
                        let out = repo
                            .xtask(&["set-status", &n.to_string(), to.as_str()])
                            .env("XTASK_NOW", ts_of_call(k))
                            .output()
                            .expect("run xtask");
                        assert!(out.status.success(), "task {n} call {k}: {}", render(&out));
                        // The reported `from` is what this task's previous call wrote: had any
                        // other process written a stale copy of the task in between, it would differ.
                        let want = format!(
                            "task {n}: {from} -> {to} (specs/state.json, specs/TODO.md, specs/{n}_t{n}/plans/implementation-001.md)\n"
                        );
                        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "task {n} call {k}");
                        writes += 3;
                    }
                    writes
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("writer thread")).sum()
    });
    let elapsed = started.elapsed();
    eprintln!("{} set-status processes, {writes} file writes in {elapsed:.2?}", TASKS.len() * CALLS);
    assert_eq!(writes, TASKS.len() * CALLS * 3);

    assert!(assert_ledger_valid(&repo, 20_000).is_empty(), "no temp file left behind");
    let state = StateFile::load(&repo.file("specs/state.json")).expect("state");
    let todo = TodoFile::load(&repo.file("specs/TODO.md")).expect("todo");
    let last = status_of_call(CALLS - 1);
    for n in TASKS {
        let e = state.entry(n).expect("entry");
        assert_eq!(e["status"], last.as_str(), "task {n}");
        assert_eq!(e["last_updated"], ts_of_call(CALLS - 1).as_str());
        assert_eq!(e["started"], ts_of_call(CALLS - 2).as_str(), "the last move to implementing");
        assert_eq!(todo.status(n).expect("ok").expect("line").marker, last.marker());
        let plan = PlanFile::load(&repo.file(&format!("specs/{n}_t{n}/plans/implementation-001.md"))).expect("plan");
        assert_eq!(plan.header_status().expect("header").1, last.marker());
    }
}

/// Starts this test binary as a writer process on task `n`: `calls` status changes through the
/// library, each also incrementing the entry's `counter` inside the same locked transaction
/// (0 calls = until killed).
fn spawn_writer(repo: &TestRepo, n: u32, calls: usize) -> Child {
    repo.command(std::env::current_exe().expect("test binary"))
        .args(["--ignored", "--exact", "concurrency::ledger::writer_process", "--test-threads=1", "-q"])
        .env("POSTFLIGHT_TEST_WRITER", format!("{n}:{calls}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn writer")
}

/// The writer process started by [`spawn_writer`]; does nothing when run by hand.
#[test]
#[ignore = "helper process of the concurrency tests"]
fn writer_process() {
    let Ok(spec) = std::env::var("POSTFLIGHT_TEST_WRITER") else { return };
    let (n, calls) = spec.split_once(':').expect("n:calls");
    let (n, calls): (u32, usize) = (n.parse().expect("n"), calls.parse().expect("calls"));
    let ctx = postflight::Context::from_env(&std::env::current_dir().expect("cwd")).expect("context");
    let ledger = ctx.ledger();
    let mut k = 0;
    while calls == 0 || k < calls {
        let to = status_of_call(k);
        ledger
            .update(|snap| {
                let count = snap.state().entry(n)?.get("counter").and_then(Value::as_u64).unwrap_or(0);
                postflight::tasks::apply_status(
                    snap,
                    n,
                    &to,
                    false,
                    &ts_of_call(k % 3600),
                    &[("counter", (count + 1).into())],
                )
            })
            .unwrap_or_else(|e| panic!("task {n} call {k}: {e}"));
        k += 1;
    }
}

#[test]
fn eight_library_writers_count_every_update() {
    let repo = ledger_repo(20_000);
    let started = Instant::now();
    let children: Vec<(u32, Child)> = TASKS.iter().map(|&n| (n, spawn_writer(&repo, n, CALLS))).collect();
    for (n, child) in children {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "writer {n}: {}", String::from_utf8_lossy(&out.stderr));
    }
    eprintln!("8 writer processes × {CALLS} locked updates in {:.2?}", started.elapsed());
    assert!(assert_ledger_valid(&repo, 20_000).is_empty());
    let state = StateFile::load(&repo.file("specs/state.json")).expect("state");
    for n in TASKS {
        let e = state.entry(n).expect("entry");
        assert_eq!(e["counter"], CALLS, "task {n}: every read-increment-write survived");
        assert_eq!(e["status"], status_of_call(CALLS - 1).as_str());
    }
}

/// A small xorshift generator; the seed is printed so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[test]
fn writers_killed_mid_run_never_leave_an_invalid_ledger() {
    const PADDING: usize = 400_000;
    const ROUNDS: usize = 25;
    let repo = ledger_repo(PADDING);
    let seed = std::env::var("POSTFLIGHT_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock").as_nanos() as u64 | 1
    });
    eprintln!("seed {seed} (set POSTFLIGHT_TEST_SEED to repeat)");
    let mut rng = Rng(seed);
    let mut disagreements = 0;
    for round in 0..ROUNDS {
        // Four endless library writers and one run of the binary, all killed at random moments.
        let mut children: Vec<Child> = TASKS[..4].iter().map(|&n| spawn_writer(&repo, n, 0)).collect();
        // The sleeps of this loop are the random kill moments (time itself, not a condition).
        std::thread::sleep(Duration::from_millis(20 + rng.next(120)));
        let n = TASKS[4 + round % 4];
        let mut cli = repo
            .xtask(&["set-status", &n.to_string(), status_of_call(round).as_str(), "--force"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn xtask");
        std::thread::sleep(Duration::from_millis(rng.next(15)));
        cli.kill().expect("SIGKILL xtask");
        cli.wait().expect("reap");
        for c in &mut children {
            std::thread::sleep(Duration::from_millis(rng.next(4)));
            c.kill().expect("SIGKILL writer");
        }
        for mut c in children {
            let status = c.wait().expect("reap");
            assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "killed, round {round}");
        }
        assert_ledger_valid(&repo, PADDING);
        disagreements += disagreeing_tasks(&repo);
    }
    let leftovers = temp_files(&repo.file("specs"));
    eprintln!(
        "{ROUNDS} rounds of SIGKILL: every file valid every time; {} temp files left by killed writers; \
         {disagreements} task states where a kill between renames left TODO.md or a plan one step behind state.json",
        leftovers.len()
    );

    // Leftovers older than a minute belong to dead writers: the next write of each file sweeps them.
    let old = SystemTime::now() - Duration::from_secs(120);
    for p in &leftovers {
        std::fs::File::options().write(true).open(p).and_then(|f| f.set_modified(old)).expect("age temp file");
    }
    // A kill between two renames can leave a plan header one step behind state.json, so each
    // task makes two moves: at least one of them rewrites each of its three files.
    for n in TASKS {
        for to in ["implementing", "partial"] {
            let out = repo.run(&["set-status", &n.to_string(), to, "--force"]);
            assert!(out.status.success(), "{}", render(&out));
        }
    }
    assert_eq!(temp_files(&repo.file("specs")), Vec::<PathBuf>::new(), "every stale temp file swept");
    assert_ledger_valid(&repo, PADDING);
}
