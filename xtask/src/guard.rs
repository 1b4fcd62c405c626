//! `hook stop`, `check` and `hooks install`: thin wrappers over `postflight::guard`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use postflight::guard::check::{self, Finding, Report};
use postflight::guard::install;
use postflight::guard::stop_hook;
use postflight::Context;

/// How long `hook stop` waits for its event on stdin before letting the stop through.
const STDIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(clap::Args, Debug)]
pub struct HookArgs {
    #[command(subcommand)]
    command: HookCommand,
}

#[derive(clap::Subcommand, Debug)]
enum HookCommand {
    /// Handle Claude Code's Stop and SubagentStop events (event JSON on stdin, decision JSON on stdout)
    Stop,
}

impl HookArgs {
    /// Always prints one JSON object and exits 0: a hook error must never wedge a session.
    pub fn run(self, dir: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        match self.command {
            HookCommand::Stop => {
                let input = postflight::sys::read_stdin_within(STDIN_TIMEOUT);
                let now = stop_hook::clock();
                let outcome = std::panic::catch_unwind(|| stop_hook::run(&input, dir, now)).unwrap_or_else(|_| {
                    stop_hook::Outcome {
                        decision: stop_hook::Decision::Allow,
                        notes: vec!["internal error; letting the stop through".into()],
                    }
                });
                for note in &outcome.notes {
                    eprintln!("postflight hook stop: {note}");
                }
                writeln!(out, "{}", outcome.decision.to_json())?;
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Check a spec directory or phase document instead of the ledger (duplicate ids, unknown
    /// and mis-decoded markers, dangling requirement references, ...)
    #[arg(value_name = "PATH")]
    path: Option<String>,
    /// PATH only: read PATH as this format instead of guessing from what it is
    #[arg(long, value_name = "FORMAT", value_parser = ["spec", "phases", "payload"])]
    format: Option<String>,
    /// PATH only: also fail when an append-only log entry of PATH at revision REV is missing or
    /// changed, or other data of REV is lost (handoff/payload.json; statuses may move)
    #[arg(long, value_name = "REV", conflicts_with_all = ["fix", "dry_run", "staged"])]
    against: Option<String>,
    /// Make TODO.md and plan headers agree with state.json, and print the diff
    #[arg(long)]
    fix: bool,
    /// Print the diff --fix would apply, without writing
    #[arg(long)]
    dry_run: bool,
    /// Check the versions staged in the git index (the pre-commit mode)
    #[arg(long, conflicts_with_all = ["fix", "dry_run"])]
    staged: bool,
    /// Print the findings as JSON
    #[arg(long)]
    json: bool,
    /// Neither reuse nor write the result cache (.git/postflight-check.cache); so does the
    /// environment variable POSTFLIGHT_NO_CACHE=1
    #[arg(long)]
    no_cache: bool,
}

/// Whether an environment variable is set to something other than empty or `0`.
fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

impl CheckArgs {
    pub fn json(&self) -> bool {
        self.json
    }

    /// Exit 0 clean (warnings allowed), 1 errors found, 2 an input is unreadable.
    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let CheckArgs { path, format, against, fix, dry_run, staged, json, no_cache } = self;
        if let Some(raw) = path {
            return match crate::queue::target(ctx, &raw)? {
                crate::queue::Target::Path(_) if staged => Err(postflight::Error::refused(
                    "--staged checks the ledger's staged files; it does not apply to a PATH",
                    Some("drop --staged to check the file as it is in the work tree (the pre-commit hook checks a staged handoff/payload.json itself)"),
                )
                .into()),
                crate::queue::Target::Path(p) => {
                    crate::queue::check(ctx, &p, format.as_deref(), against.as_deref(), fix, dry_run, json, out)
                }
                crate::queue::Target::Task(_) => Err(postflight::Error::refused(
                    format!("`{raw}` is not a spec directory or phase document"),
                    Some("`xtask check` checks the whole ledger; pass a PATH to check a spec directory or phase document"),
                )
                .into()),
            };
        }
        let (mut report, diffs) = if fix || dry_run {
            let fixed = check::fix(&ctx.repo, dry_run)?;
            let diffs: Vec<(String, String)> =
                fixed.changes.iter().map(|c| (ctx.repo.relative(&c.path), c.unified_diff(&ctx.repo.root))).collect();
            (fixed.after.unwrap_or(fixed.before), Some(diffs))
        } else if staged || no_cache || env_flag("POSTFLIGHT_NO_CACHE") {
            (check::check(&ctx.repo, check::Options { staged })?, None)
        } else {
            let (report, cache) = check::check_cached(&ctx.repo)?;
            if env_flag("POSTFLIGHT_CHECK_CACHE_LOG") {
                eprintln!("check cache: {}", cache.note);
            }
            (report, None)
        };
        // Read fresh every time (git's config, not the ledger: never in the check's cache).
        if let Some(f) = check::merge_driver_finding(&ctx.repo)? {
            report.findings.push(f);
        }
        if json {
            let mut value = serde_json::json!({
                "ok": report.errors() == 0 && !report.unreadable,
                "errors": report.errors(),
                "warnings": report.warnings(),
                "fixable": report.fixable(),
                "unreadable": report.unreadable,
                "findings": report.findings,
            });
            if let Some(diffs) = &diffs {
                value["written"] = serde_json::Value::Bool(!dry_run);
                value["changes"] =
                    diffs.iter().map(|(file, diff)| serde_json::json!({"file": file, "diff": diff})).collect();
            }
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        } else {
            if let Some(diffs) = &diffs {
                for (_, diff) in diffs {
                    write!(out, "{diff}")?;
                }
                let verb = if dry_run { "would change" } else { "changed" };
                let files: Vec<&str> = diffs.iter().map(|(f, _)| f.as_str()).collect();
                writeln!(
                    out,
                    "check --fix: {verb} {} file(s){}",
                    files.len(),
                    if files.is_empty() { String::new() } else { format!(": {}", files.join(", ")) }
                )?;
            }
            render(&report, dry_run, out)?;
        }
        let code = if report.unreadable {
            crate::EXIT_INVALID
        } else if report.errors() > 0 {
            crate::EXIT_INTERNAL
        } else {
            crate::EXIT_OK
        };
        Ok(ExitCode::from(code))
    }
}

fn render(report: &Report, dry_run: bool, out: &mut dyn Write) -> std::io::Result<()> {
    for f in &report.findings {
        let Finding { rule, severity, message, fixable, .. } = f;
        let sev = match severity {
            check::Severity::Error => "error",
            check::Severity::Warning => "warning",
        };
        writeln!(out, "{}: {sev}[{rule}]: {message}{}", f.location(), if *fixable { " (fixable)" } else { "" })?;
    }
    if report.findings.is_empty() {
        return writeln!(out, "check: clean");
    }
    let fixable = report.fixable();
    let hint = match (fixable, dry_run) {
        (0, _) => String::new(),
        (n, true) => format!("; {n} fixable (shown above as a diff)"),
        (n, false) => format!("; {n} fixable: run `xtask check --fix`"),
    };
    writeln!(out, "check: {} error(s), {} warning(s){hint}", report.errors(), report.warnings())
}

#[derive(clap::Args, Debug)]
pub struct HooksArgs {
    #[command(subcommand)]
    command: HooksCommand,
}

#[derive(clap::Subcommand, Debug)]
enum HooksCommand {
    /// Install the git pre-commit hook and the Claude Code stop hooks (both when no flag is given); `--codex` the Codex one
    Install {
        /// Only the git pre-commit hook (runs `xtask check --staged`; honours core.hooksPath)
        #[arg(long)]
        git: bool,
        /// Only the Stop and SubagentStop entries of .claude/settings.json
        #[arg(long)]
        claude: bool,
        /// The Stop entry of .codex/hooks.json (best effort: Codex runs project hooks only in a trusted project)
        #[arg(long)]
        codex: bool,
        /// The ledger merge driver: `.gitattributes` lines for specs/state.json and specs/TODO.md, and this clone's merge.postflight.* config
        #[arg(long)]
        merge: bool,
        /// Remove what `hooks install` added, and nothing else (the same as `hooks uninstall`)
        #[arg(long)]
        uninstall: bool,
        /// The xtask binary the hooks call (default: this binary for git, `xtask` on PATH for Claude)
        #[arg(long, value_name = "PATH")]
        bin: Option<std::path::PathBuf>,
        /// Print `{"installed": bool, "actions": [...]}` instead of text
        #[arg(long)]
        json: bool,
    },
    /// Remove what `hooks install` added, and nothing else (a chained hook is put back)
    Uninstall {
        /// Only the git pre-commit hook
        #[arg(long)]
        git: bool,
        /// Only the Stop and SubagentStop entries of .claude/settings.json
        #[arg(long)]
        claude: bool,
        /// The Stop entry of .codex/hooks.json
        #[arg(long)]
        codex: bool,
        /// Only the merge driver's `.gitattributes` lines and merge.postflight.* config
        #[arg(long)]
        merge: bool,
        /// Print `{"installed": false, "actions": [...]}` instead of text
        #[arg(long)]
        json: bool,
    },
}

impl HooksArgs {
    pub fn json(&self) -> bool {
        match &self.command {
            HooksCommand::Install { json, .. } | HooksCommand::Uninstall { json, .. } => *json,
        }
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let (git, claude, codex, merge, uninstall, bin, json) = match self.command {
            HooksCommand::Install { git, claude, codex, merge, uninstall, bin, json } => {
                (git, claude, codex, merge, uninstall, bin, json)
            }
            HooksCommand::Uninstall { git, claude, codex, merge, json } => {
                (git, claude, codex, merge, true, None, json)
            }
        };
        let bin = bin.map(|b| if b.is_absolute() { b } else { ctx.repo.root.join(b) });
        let report = install::install(&ctx.repo, &install::Options { git, claude, codex, merge, uninstall, bin })?;
        if json {
            let value = serde_json::json!({ "installed": !uninstall, "actions": report.actions });
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        for action in &report.actions {
            writeln!(out, "{action}")?;
        }
        Ok(ExitCode::SUCCESS)
    }
}
