//! The `xtask` binary: parses the command line, builds the library's `Context`, runs one
//! library call and maps its outcome to an exit code (documented in README.md).

mod args;
mod bench;
mod cancel;
mod commit;
mod completions;
mod doctor;
mod flags;
mod guard;
mod implement;
mod log;
mod merge;
mod parallel;
mod plan;
mod query;
mod queue;
mod tasks;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use flags::{Cli, Command};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: unexpected internal error (for `check`: findings).
pub const EXIT_INTERNAL: u8 = 1;
/// Exit code: bad usage or bad input; no file changed.
pub const EXIT_INVALID: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_INVALID } else { EXIT_OK };
            let _ = e.print();
            if e.use_stderr() && json_in_args() {
                let message = first_line(&e.render().to_string());
                let hint = "run with --help for the usage".to_owned();
                print_json_error(&message, &[], Some(&hint), code);
            }
            return ExitCode::from(code);
        }
    };
    let dir = cli.directory.clone().or_else(|| std::env::current_dir().ok());
    let json = cli.command.json();
    let mut out = std::io::stdout().lock();
    let result = run(cli, &mut out);
    let _ = out.flush();
    drop(out);
    match result {
        Ok(code) => code,
        Err(err) => {
            // Messages name files relative to the work tree, as git does.
            let root = dir.and_then(|d| postflight::repo::Repo::discover(&d).ok()).map(|r| r.root);
            report(&err, root.as_deref(), json)
        }
    }
}

/// Whether `--json` is among the arguments (before any `--`): for an error clap reports
/// before the command is known.
fn json_in_args() -> bool {
    std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json")
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// `{"error": ..., "causes": [...], "hint": ..., "exit_code": n}` on stdout.
fn print_json_error(message: &str, causes: &[String], hint: Option<&str>, exit_code: u8) {
    let value = serde_json::json!({ "error": message, "causes": causes, "hint": hint, "exit_code": exit_code });
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    let _ = stdout.flush();
}

fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let dir = match &cli.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir()?,
    };
    let ctx = || postflight::Context::from_env(&dir);
    match cli.command {
        Command::Implement(args) => args.run(&ctx()?, out),
        Command::Preflight(args) => args.run(&ctx()?, out),
        Command::Postflight(args) => args.run(&ctx()?, out),
        Command::Verify(args) => args.run(&ctx()?, out),
        Command::Cancel(args) => args.run(&ctx()?, out),
        Command::Log(args) => args.run(&ctx()?, out),
        Command::Status(args) => args.run(&ctx()?, out),
        Command::Next(args) => args.run(&ctx()?, out),
        Command::Plan(args) => args.run(&ctx()?, out),
        Command::Task(args) => args.run(&ctx()?, out),
        Command::SetStatus(args) => args.run(&ctx()?, out),
        Command::Commit(args) => args.run(&ctx()?, out),
        Command::Check(args) => args.run(&ctx()?, out),
        Command::Query(args) => args.run(&dir, out),
        Command::Init(args) => args.run(&ctx()?, out),
        Command::Doctor(args) => args.run(&ctx()?, out),
        Command::Hooks(args) => args.run(&ctx()?, out),
        Command::Hook(args) => args.run(&dir, out),
        Command::Completions(args) => args.run(<Cli as clap::CommandFactory>::command(), out),
        Command::Demo(args) => args.run(out),
        Command::Bench(args) => args.run(out),
        Command::DemoAgent(args) => args.run(),
        Command::MergeDriver(args) => args.run(),
        Command::Land(args) => args.run(&ctx()?, out),
        Command::Worktree(args) => args.run(&ctx()?, out),
    }
}

/// Prints `error: …`, its causes and a hint to stderr (and, with `--json`, the same as one JSON
/// object on stdout); returns the exit code for its kind.
fn report(err: &anyhow::Error, root: Option<&std::path::Path>, json: bool) -> ExitCode {
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return ExitCode::from(EXIT_OK);
        }
    }
    let relative = |text: String| match root {
        Some(r) => text.replace(&format!("{}/", r.display()), ""),
        None => text,
    };
    let message = relative(err.to_string());
    let mut causes = Vec::new();
    let mut source = err.source();
    while let Some(s) = source {
        causes.push(relative(s.to_string()));
        source = s.source();
    }
    let known = err.downcast_ref::<postflight::Error>();
    let hint = known.and_then(postflight::Error::hint).map(relative);
    let code = match known.map(postflight::Error::kind) {
        Some(postflight::Kind::Refused) => EXIT_INVALID,
        Some(postflight::Kind::Internal) | None => EXIT_INTERNAL,
    };
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {message}");
    for cause in &causes {
        let _ = writeln!(stderr, "  caused by: {cause}");
    }
    if let Some(hint) = &hint {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    if json {
        print_json_error(&message, &causes, hint.as_deref(), code);
    }
    ExitCode::from(code)
}
