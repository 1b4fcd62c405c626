//! `bench-commit`: the commit benchmark of docs/performance.md. Builds a repository with many
//! files and commits (`git fast-import`), then alternates three-file commits made by
//! `xtask commit`, by the library in-process, and by `git add && git commit`, and prints the
//! medians and ratios. Not a test: run it with `cargo run --release -p xtask -- bench-commit`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use postflight::git::{self, CommitOutcome, CommitRequest};

#[derive(clap::Args, Debug)]
pub struct BenchCommitArgs {
    /// Files in the generated repository
    #[arg(long, default_value_t = 10_000)]
    files: usize,
    /// Commits in the generated history
    #[arg(long, default_value_t = 5_000)]
    commits: usize,
    /// Measured commits per contender (after one warm-up each)
    #[arg(long, default_value_t = 40)]
    runs: usize,
    /// Build the repository here instead of a temporary directory (kept afterwards)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

impl BenchCommitArgs {
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let BenchCommitArgs { files, commits, runs, dir } = self;
        let keep = dir.is_some();
        let dir = dir.unwrap_or_else(|| std::env::temp_dir().join(format!("postflight-bench-{}", std::process::id())));
        if !keep && dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let root = std::fs::canonicalize(&dir)?;
        let result = measure(&root, files, commits, runs, out);
        if !keep {
            let _ = std::fs::remove_dir_all(&root);
        }
        result
    }
}

fn measure(root: &Path, files: usize, commits: usize, runs: usize, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let root = root.to_path_buf();
    let started = Instant::now();
    build_repo(&root, files, commits)?;
    writeln!(
        out,
        "repository: {} files, {} commits, built in {:.1?} at {}",
        files,
        commits,
        started.elapsed(),
        root.display()
    )?;

    let xtask = std::env::current_exe().context("locate the xtask binary")?;
    let repo = postflight::repo::Repo::discover(&root)?;
    let names: Vec<String> = (0..files).map(|i| file_name(i, files)).collect();
    let mut samples: [Vec<Duration>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut round = 0usize;
    for i in 0..=runs {
        // Rotate the order so no contender always runs first after a cold cache.
        for k in 0..3 {
            let which = (i + k) % 3;
            round += 1;
            let paths: Vec<&str> = (0..3).map(|j| names[(round * 7919 + j * 104_729) % names.len()].as_str()).collect();
            for p in &paths {
                std::fs::write(root.join(p), format!("round {round} {p}\n"))?;
            }
            let subject = format!("bench round {round}");
            let took = match which {
                0 => time(|| {
                    run_ok(
                        Command::new(&xtask)
                            .current_dir(&root)
                            .args(["commit", "1", "-m", &subject, "--"])
                            .args(&paths),
                    )
                })?,
                1 => {
                    let req = CommitRequest {
                        paths: paths.iter().map(PathBuf::from).collect(),
                        ..CommitRequest::new(Some(1), subject.clone(), "sess_1773695483_bench0")
                    };
                    time(|| match git::commit(&repo, &req)? {
                        CommitOutcome::Committed { .. } => Ok(()),
                        CommitOutcome::NothingToCommit { .. } => bail!("nothing committed in round {round}"),
                    })?
                }
                _ => time(|| {
                    run_ok(Command::new("git").current_dir(&root).arg("add").arg("--").args(&paths))?;
                    run_ok(Command::new("git").current_dir(&root).args(["commit", "-q", "-m", &subject]))
                })?,
            };
            if i > 0 {
                samples[which].push(took);
            }
        }
    }
    let status = Command::new("git").current_dir(&root).args(["status", "--porcelain"]).output()?;
    if !status.stdout.is_empty() {
        bail!("the work tree is not clean after the benchmark:\n{}", String::from_utf8_lossy(&status.stdout));
    }
    let [cli, lib, git_cli] = samples.map(median);
    writeln!(out, "3-file commit, median of {runs} alternating runs:")?;
    writeln!(out, "  xtask commit (process)        {:>8.2} ms", ms(cli))?;
    writeln!(out, "  postflight::git::commit (lib) {:>8.2} ms", ms(lib))?;
    writeln!(out, "  git add && git commit         {:>8.2} ms", ms(git_cli))?;
    writeln!(out, "ratio git / xtask commit: {:.2}x", ms(git_cli) / ms(cli))?;
    writeln!(out, "ratio git / library:      {:.2}x", ms(git_cli) / ms(lib))?;
    Ok(ExitCode::SUCCESS)
}

fn file_name(i: usize, files: usize) -> String {
    let per_dir = (files as f64).sqrt().ceil() as usize;
    format!("d{:03}/f{:04}.txt", i / per_dir.max(1), i % per_dir.max(1))
}

/// A repository with `files` files (in about sqrt(files) directories) and `commits` commits,
/// each after the first changing three files, checked out on `main` with a clean status.
fn build_repo(root: &Path, files: usize, commits: usize) -> anyhow::Result<()> {
    run_ok(Command::new("git").current_dir(root).args(["init", "-q", "-b", "main"]))?;
    for (k, v) in [("user.name", "Bench"), ("user.email", "bench@example.com")] {
        run_ok(Command::new("git").current_dir(root).args(["config", k, v]))?;
    }
    let mut child = Command::new("git")
        .current_dir(root)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .context("run git fast-import")?;
    {
        let stdin = child.stdin.take().expect("piped");
        let mut w = std::io::BufWriter::new(stdin);
        let data = |w: &mut std::io::BufWriter<std::process::ChildStdin>, text: &str| -> std::io::Result<()> {
            write!(w, "data {}\n{}\n", text.len(), text)
        };
        for c in 0..commits {
            writeln!(w, "commit refs/heads/main")?;
            writeln!(w, "committer Bench <bench@example.com> {} +0000", 1_700_000_000 + c)?;
            data(&mut w, &format!("history commit {c}"))?;
            if c == 0 {
                for i in 0..files {
                    writeln!(w, "M 100644 inline {}", file_name(i, files))?;
                    data(&mut w, &format!("file {i}\n"))?;
                }
            } else {
                for j in 0..3 {
                    let i = (c * 31 + j * 1_000_003) % files;
                    writeln!(w, "M 100644 inline {}", file_name(i, files))?;
                    data(&mut w, &format!("file {i} at commit {c}\n"))?;
                }
            }
        }
        w.flush()?;
    }
    if !child.wait()?.success() {
        bail!("git fast-import failed");
    }
    run_ok(Command::new("git").current_dir(root).args(["checkout", "-q", "-f", "main"]))?;
    // Bring the index's stat data up to date as a user's repository would have it.
    run_ok(Command::new("git").current_dir(root).args(["status", "--porcelain"]))
}

fn run_ok(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn time(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
