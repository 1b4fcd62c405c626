//! `bench commit`: the commit benchmark of docs/performance.md. Builds a repository with many
//! files and commits (`git fast-import`), then alternates three-file commits made by
//! `xtask commit`, by the library in-process, and by `git add && git commit`, and prints the
//! medians and ratios. Not a test: run it with `cargo run --release -p xtask -- bench commit`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use postflight::git::{self, CommitOutcome, CommitRequest};

use super::gen::{build_repo, file_name, RepoSpec};
use super::{median, ms, run_ok, time};

#[derive(clap::Args, Debug)]
pub struct CommitArgs {
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

impl CommitArgs {
    pub fn run(self, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let CommitArgs { files, commits, runs, dir } = self;
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
    build_repo(&root, RepoSpec { files, commits, tasks: None }, &[])?;
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
                        scoping: Some(postflight::ledger::scope::TaskScoping::shared()),
                        ..CommitRequest::new(
                            Some(postflight::TaskId::from(1)),
                            subject.clone(),
                            "sess_1773695483_bench0",
                        )
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
