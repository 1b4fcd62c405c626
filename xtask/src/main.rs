//! The `xtask` binary: parses the command line, builds the library's `Context`, runs one
//! library call and maps its outcome to an exit code (documented in README.md).

mod bench;
mod cancel;
mod commit;
mod flags;
mod guard;
mod implement;
mod plan;
mod query;
mod tasks;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use flags::{Cli, Command};

/// Keeps large buffers on glibc's heap instead of one fresh mapping each. A run on a large
/// ledger reads, edits and writes whole files of megabytes; with a mapping per buffer every one
/// starts on zeroed pages again (a postflight at 10,000 tasks: 32,000 page faults instead of
/// 14,000, about 15% of its time). Short-lived process, so the retained memory does not matter.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters, and no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: unexpected internal error (for `check`: findings).
pub const EXIT_INTERNAL: u8 = 1;
/// Exit code: bad usage or bad input; no file changed.
pub const EXIT_INVALID: u8 = 2;

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_INVALID } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let dir = cli.directory.clone().or_else(|| std::env::current_dir().ok());
    let mut out = std::io::stdout().lock();
    let result = run(cli, &mut out);
    let _ = out.flush();
    match result {
        Ok(code) => code,
        Err(err) => {
            // Messages name files relative to the work tree, as git does.
            let root = dir.and_then(|d| postflight::repo::Repo::discover(&d).ok()).map(|r| r.root);
            report(&err, root.as_deref())
        }
    }
}

fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let dir = match &cli.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir()?,
    };
    let ctx = || postflight::Context::from_env(&dir);
    match cli.command {
        Command::Init(args) => args.run(&ctx()?, out),
        Command::Task(args) => args.run(&ctx()?, out),
        Command::Status(args) => args.run(&ctx()?, out),
        Command::SetStatus(args) => args.run(&ctx()?, out),
        Command::Plan(args) => args.run(&ctx()?, out),
        Command::Next(args) => args.run(&ctx()?, out),
        Command::Hook(args) => args.run(&dir, out),
        Command::Query(args) => args.run(&dir, out),
        Command::Check(args) => args.run(&ctx()?, out),
        Command::Hooks(args) => args.run(&ctx()?, out),
        Command::Commit(args) => args.run(&ctx()?, out),
        Command::Bench(args) => args.run(out),
        Command::Implement(args) => args.run(&ctx()?, out),
        Command::Preflight(args) => args.run(&ctx()?, out),
        Command::Postflight(args) => args.run(&ctx()?, out),
        Command::Cancel(args) => args.run(&ctx()?, out),
        Command::Demo(args) => args.run(out),
        Command::DemoAgent(args) => args.run(),
    }
}

/// Prints `error: …`, its causes and a hint to stderr; returns the exit code for its kind.
fn report(err: &anyhow::Error, root: Option<&std::path::Path>) -> ExitCode {
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return ExitCode::from(EXIT_OK);
        }
    }
    let relative = |text: String| match root {
        Some(r) => text.replace(&format!("{}/", r.display()), ""),
        None => text,
    };
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {}", relative(err.to_string()));
    let mut source = err.source();
    while let Some(s) = source {
        let _ = writeln!(stderr, "  caused by: {}", relative(s.to_string()));
        source = s.source();
    }
    match err.downcast_ref::<postflight::Error>() {
        Some(e) => {
            if let Some(hint) = e.hint() {
                let _ = writeln!(stderr, "hint: {}", relative(hint));
            }
            match e.kind() {
                postflight::Kind::Refused => ExitCode::from(EXIT_INVALID),
                postflight::Kind::Internal => ExitCode::from(EXIT_INTERNAL),
            }
        }
        None => ExitCode::from(EXIT_INTERNAL),
    }
}
