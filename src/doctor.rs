//! `xtask doctor`: checks that a repository is set up for postflight and says, for each
//! problem, how to fix it. Reads only (it runs `git check-ignore` and the hooks' binaries with
//! `--version`); never writes, never prints.
//!
//! The checks: the ledger files parse, the agent command resolves, the git pre-commit hook and
//! the Claude Code stop hooks call a working postflight binary of this version, git has an
//! identity for commits, the transient files are ignored, no pending marker is left by a dead
//! run, and no lock file is left by a killed commit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::agent::Adapter;
use crate::context::Context;
use crate::git::cli;
use crate::guard::install;
use crate::ledger::todo::TodoFile;
use crate::run::{self as marker, Marker};
use crate::workflow::{self, config};

/// What the checks compare against.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// This binary's `--version` line (`xtask 0.1.0 (abc1234)`): the hooks' binaries must print
    /// the same.
    pub version: String,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// It holds.
    Ok,
    /// It holds well enough to work, but something is worth knowing.
    Warn,
    /// It does not hold: something will fail.
    Fail,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A stable name (`state-json`, `todo-md`, `agent`, `git-hook`, `claude-hook`,
    /// `git-identity`, `transient-ignored`, `markers`, `locks`, `merge-driver`, `worktrees`).
    pub name: &'static str,
    /// Whether it holds (`level` is not `fail`).
    pub ok: bool,
    /// `ok`, `warn` or `fail`.
    pub level: Level,
    /// What was found.
    pub detail: String,
    /// How to fix it (absent when it holds).
    pub fix: Option<String>,
}

fn check(name: &'static str, level: Level, detail: impl Into<String>, fix: Option<String>) -> Check {
    Check { name, ok: level != Level::Fail, level, detail: detail.into(), fix }
}

fn ok(name: &'static str, detail: impl Into<String>) -> Check {
    check(name, Level::Ok, detail, None)
}

/// Runs every check, in a fixed order.
pub fn run(ctx: &Context, opts: &Options) -> Vec<Check> {
    let mut out = vec![state_json(ctx), todo_md(ctx), agent(ctx)];
    out.push(git_hook(ctx, opts));
    out.push(claude_hook(ctx, opts));
    out.push(git_identity(ctx));
    out.push(transient_ignored(ctx));
    out.push(markers(ctx));
    out.push(locks(ctx));
    out.push(merge_driver(ctx, opts));
    out.push(worktrees(ctx));
    out
}

/// The worktrees of worktree runs: a run whose process is gone is reported (its work is kept
/// until it lands or is removed with `--force`).
fn worktrees(ctx: &Context) -> Check {
    const NAME: &str = "worktrees";
    let list = crate::workflow::parallel::worktree::list(ctx);
    if list.is_empty() {
        return ok(NAME, "no worktree runs");
    }
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    for l in &list {
        if l.dead_run {
            problems.push(format!("the worktree run of task {} is dead ({}, landed: {})", l.task, l.path, l.landed));
            fixes.push(format!(
                "`xtask implement {0} --worktree` resumes it; `xtask worktree remove {0} --force` throws it away",
                l.task
            ));
        } else if !l.landing_conflict.is_empty() {
            problems.push(format!("task {}'s landing conflicts in {}", l.task, l.landing_conflict.join(", ")));
            fixes.push(format!("resolve it in {} and run `xtask land {}`", l.path, l.task));
        }
    }
    let summary =
        format!("{} worktree(s), {} not landed", list.len(), list.iter().filter(|l| l.landed != "yes").count());
    if problems.is_empty() {
        return ok(NAME, summary);
    }
    problems.push(summary);
    check(NAME, Level::Warn, problems.join("; "), Some(fixes.join("; ")))
}

/// Whether every check holds.
pub fn all_ok(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.ok)
}

fn state_json(ctx: &Context) -> Check {
    let path = ctx.ledger().state_path();
    if !path.exists() {
        return check(
            "state-json",
            Level::Fail,
            "specs/state.json does not exist",
            Some("run `xtask init` to create the ledger".into()),
        );
    }
    match ctx.ledger().state() {
        Ok(state) => {
            ok("state-json", format!("specs/state.json parses ({} tasks)", state.entries().map_or(0, <[_]>::len)))
        }
        Err(e) => check(
            "state-json",
            Level::Fail,
            e.to_string(),
            Some("correct specs/state.json at the position shown (`xtask check` reports the same)".into()),
        ),
    }
}

fn todo_md(ctx: &Context) -> Check {
    let path = ctx.ledger().todo_path();
    match std::fs::read(&path) {
        Ok(bytes) => match TodoFile::parse_owned(&path, bytes) {
            Ok(_) => ok("todo-md", "specs/TODO.md parses"),
            Err(e) => check(
                "todo-md",
                Level::Fail,
                e.to_string(),
                Some("correct specs/TODO.md at the line shown (`xtask check` reports the same)".into()),
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => check(
            "todo-md",
            Level::Warn,
            "specs/TODO.md does not exist (status changes go to state.json and the plans only)",
            Some("run `xtask init` to create it".into()),
        ),
        Err(e) => check(
            "todo-md",
            Level::Fail,
            format!("cannot read specs/TODO.md: {e}"),
            Some("check its permissions".into()),
        ),
    }
}

fn agent(ctx: &Context) -> Check {
    const FIX: &str =
        "install it or put it on the PATH, or name another with --agent, XTASK_AGENT or \"agent\" in .postflight.json";
    let command = match workflow::resolve_agent(ctx, None) {
        Ok(c) => c,
        Err(e) => return check("agent", Level::Fail, e.to_string(), e.hint().or_else(|| Some(FIX.into()))),
    };
    // An adapter's executable may be configured; a plain command names its own program.
    let program = if Adapter::select(&command, &config::Config::default()).program().is_some() {
        match config::Config::load(&ctx.repo.root) {
            Ok(cfg) => Adapter::select(&command, &cfg).program().unwrap_or_default(),
            Err(e) => return check("agent", Level::Fail, e.to_string(), Some("correct .postflight.json".into())),
        }
    } else {
        match first_word(&command) {
            Some(w) => w,
            None => {
                return check(
                    "agent",
                    Level::Fail,
                    format!("the agent command `{command}` names no program"),
                    Some(FIX.into()),
                )
            }
        }
    };
    match find_program(&program, &ctx.repo.root) {
        Some(path) => ok("agent", format!("`{command}` runs {}", path.display())),
        None => check(
            "agent",
            Level::Fail,
            format!("the agent command `{command}`: `{program}` is not found (nor executable) on the PATH"),
            Some(format!("`{program}`: {FIX}")),
        ),
    }
}

/// The program a `sh -c` command line starts: its first word after any `NAME=value`
/// assignments, unquoted.
fn first_word(command: &str) -> Option<String> {
    words(command).into_iter().find(|w| !is_assignment(w))
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=')
        .is_some_and(|(name, _)| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// Splits a command line into words as sh would for plain words, `'...'`, `"..."` and `\x`
/// (no expansions).
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => out.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                w.extend(chars.by_ref().take_while(|c| *c != '\''));
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    out
}

/// Where `program` is: a path (relative to `root` when not absolute) when it has a `/`, else
/// the first executable of that name on the PATH.
fn find_program(program: &str, root: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let p = if Path::new(program).is_absolute() { PathBuf::from(program) } else { root.join(program) };
        return is_executable(&p).then_some(p);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
}

/// How long a hook's binary gets to print its version.
const VERSION_WAIT: Duration = Duration::from_secs(10);

/// Runs `bin --version` and compares it with ours: `Ok(detail)`, or `Err((level, detail))`.
fn same_version(bin: &Path, ours: &str) -> std::result::Result<String, (Level, String)> {
    let shown = bin.display();
    let mut child = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| (Level::Fail, format!("{shown} cannot be run: {e}")))?;
    let deadline = Instant::now() + VERSION_WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err((Level::Fail, format!("{shown} --version did not answer")));
            }
        }
    }
    let out = child.wait_with_output().map_err(|e| (Level::Fail, format!("{shown} --version: {e}")))?;
    let theirs = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || !theirs.starts_with("xtask ") {
        return Err((
            Level::Fail,
            format!("{shown} is not a working postflight binary (`--version` printed {theirs:?})"),
        ));
    }
    if theirs == ours {
        return Ok(format!("{shown} ({theirs})"));
    }
    let package = |v: &str| v.split_whitespace().nth(1).map(str::to_owned);
    let level = if package(&theirs) == package(ours) { Level::Warn } else { Level::Fail };
    Err((level, format!("{shown} is `{theirs}`, this binary is `{ours}`")))
}

/// The binary a pre-commit hook written by `hooks install` records (`xtask_bin=...`).
fn recorded_bin(script: &str) -> Option<PathBuf> {
    let value = script.lines().find_map(|l| l.strip_prefix("xtask_bin="))?;
    if value.starts_with('$') {
        return None;
    }
    first_word(value).map(PathBuf::from)
}

/// An attribute naming `merge=postflight` needs `merge.postflight.driver` in this clone, else git
/// merges the ledger as text without a word; the configured command must be exactly
/// `<xtask> merge-driver %O %A %B %P` and call a working xtask of this version. A warning at
/// worst (also under `CI=true`, where checkouts configure no drivers).
fn merge_driver(ctx: &Context, opts: &Options) -> Check {
    const NAME: &str = "merge-driver";
    let fix = || {
        Some(
            "run `xtask hooks install --merge` (sets merge.postflight.name and merge.postflight.driver for this clone)"
                .to_owned(),
        )
    };
    let state = match crate::merge::setup::state(&ctx.repo) {
        Ok(s) => s,
        Err(e) => return check(NAME, Level::Warn, e.to_string(), fix()),
    };
    let Some(attribute) = state.attributes.first() else {
        return ok(NAME, "no attribute names merge=postflight (specs/state.json and specs/TODO.md merge as text)");
    };
    let Some(command) = &state.driver else {
        let ci = if crate::merge::setup::in_ci() {
            " (expected under CI: a checkout configures no merge drivers)"
        } else {
            ""
        };
        return check(
            NAME,
            Level::Warn,
            format!("{attribute} names the driver postflight, but merge.postflight.driver is not configured in this clone: git merges the ledger as text, silently{ci}"),
            fix(),
        );
    };
    let Some(bin) = crate::merge::setup::driver_binary(command) else {
        return check(
            NAME,
            Level::Warn,
            format!("merge.postflight.driver is `{command}`, not `<xtask> {}`", crate::merge::setup::DRIVER_ARGS),
            fix(),
        );
    };
    let Some(found) = find_program(&bin.to_string_lossy(), &ctx.repo.root) else {
        return check(
            NAME,
            Level::Warn,
            format!("merge.postflight.driver calls {}, which does not exist or is not executable", bin.display()),
            fix(),
        );
    };
    match same_version(&found, &opts.version) {
        Ok(detail) => ok(NAME, format!("{attribute}: git runs {detail} {}", crate::merge::setup::DRIVER_ARGS)),
        Err((_, detail)) => check(NAME, Level::Warn, format!("merge.postflight.driver: {detail}"), fix()),
    }
}

fn git_hook(ctx: &Context, opts: &Options) -> Check {
    const NAME: &str = "git-hook";
    let reinstall = || Some("run `xtask hooks install --git` (records this binary)".to_owned());
    let dir = match install::hooks_dir(&ctx.repo) {
        Ok(d) => d,
        Err(e) => return check(NAME, Level::Fail, e.to_string(), Some("run it inside a git repository".into())),
    };
    let hook = dir.join("pre-commit");
    let rel = ctx.repo.relative(&hook);
    let script = match std::fs::read_to_string(&hook) {
        Ok(s) => s,
        Err(_) => {
            return check(
                NAME,
                Level::Warn,
                format!("{rel} is not installed: commits are not checked for a ledger that disagrees"),
                reinstall(),
            )
        }
    };
    if !script.contains(install::GIT_HOOK_SIGNATURE) {
        return check(
            NAME,
            Level::Warn,
            format!("{rel} is not postflight's: commits are not checked for a ledger that disagrees"),
            Some("run `xtask hooks install --git` (the existing hook is kept and runs first)".into()),
        );
    }
    if !is_executable(&hook) {
        return check(NAME, Level::Fail, format!("{rel} is not executable, so git skips it"), reinstall());
    }
    let Some(bin) = recorded_bin(&script) else {
        return check(NAME, Level::Fail, format!("{rel} records no xtask binary"), reinstall());
    };
    if !is_executable(&bin) {
        return check(
            NAME,
            Level::Fail,
            format!("{rel} calls {}, which does not exist or is not executable", bin.display()),
            reinstall(),
        );
    }
    match same_version(&bin, &opts.version) {
        Ok(detail) => ok(NAME, format!("{rel} runs {detail} check --staged")),
        Err((level, detail)) => check(NAME, level, format!("{rel}: {detail}"), reinstall()),
    }
}

fn claude_hook(ctx: &Context, opts: &Options) -> Check {
    const NAME: &str = "claude-hook";
    let reinstall = |extra: &str| Some(format!("run `xtask hooks install --claude{extra}`"));
    let path = ctx.repo.root.join(".claude").join("settings.json");
    let rel = ctx.repo.relative(&path);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(_) => {
            return check(
                NAME,
                Level::Warn,
                format!("{rel} does not exist: the Claude Code stop hooks are not registered"),
                reinstall(""),
            )
        }
    };
    let settings: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return check(NAME, Level::Fail, format!("{rel} is not valid JSON: {e}"), Some(format!("correct {rel}")))
        }
    };
    let mut commands: Vec<String> = Vec::new();
    let mut missing = Vec::new();
    for &event in install::CLAUDE_EVENTS {
        let found: Vec<String> = settings["hooks"][event]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["hooks"].as_array().into_iter().flatten())
            .filter_map(|h| h["command"].as_str())
            .filter(|c| install::is_postflight_command(c))
            .map(str::to_owned)
            .collect();
        if found.is_empty() {
            missing.push(event);
        }
        for c in found {
            if !commands.contains(&c) {
                commands.push(c);
            }
        }
    }
    if commands.is_empty() {
        return check(NAME, Level::Warn, format!("{rel} registers no postflight stop hook"), reinstall(""));
    }
    let mut worst = Level::Ok;
    let mut details = Vec::new();
    for command in &commands {
        let program = command.trim().strip_suffix("hook stop").and_then(first_word).unwrap_or_default();
        let detail = match find_program(&program, &ctx.repo.root) {
            None => {
                worst = Level::Fail;
                format!(
                    "`{command}`: {program} is not found{}",
                    if program.contains('/') { "" } else { " on the PATH" }
                )
            }
            Some(bin) => match same_version(&bin, &opts.version) {
                Ok(d) => format!("`{command}` runs {d}"),
                Err((level, d)) => {
                    if level == Level::Fail || worst == Level::Ok {
                        worst = level;
                    }
                    format!("`{command}`: {d}")
                }
            },
        };
        details.push(detail);
    }
    if !missing.is_empty() && worst == Level::Ok {
        worst = Level::Warn;
        details.push(format!("no postflight hook for {}", missing.join(", ")));
    }
    let fix = (worst != Level::Ok).then(|| {
        reinstall(" --bin <path to xtask>").unwrap_or_default()
            + " (or install xtask on the PATH: `cargo install --path xtask`)"
    });
    check(NAME, worst, format!("{rel}: {}", details.join("; ")), fix)
}

fn git_identity(ctx: &Context) -> Check {
    match crate::git::identities(&ctx.repo) {
        Ok((author, committer)) => ok("git-identity", format!("author {author}, committer {committer}")),
        Err(e) => check("git-identity", Level::Fail, e.to_string(), e.hint()),
    }
}

fn transient_ignored(ctx: &Context) -> Check {
    const NAME: &str = "transient-ignored";
    let names = [marker::METADATA_FILE, marker::MARKER_FILE];
    let mut not_ignored = Vec::new();
    for name in names {
        let probe = format!("specs/0_doctor_probe/{name}");
        let status = cli::Git::new(&ctx.repo.root, &["check-ignore", "-q", "--", &probe]).output();
        match status.map(|s| s.code) {
            Ok(Some(0)) => {}
            Ok(Some(1)) => not_ignored.push(name),
            _ => {
                return check(NAME, Level::Fail, "`git check-ignore` failed", Some("check that git works here".into()))
            }
        }
    }
    if not_ignored.is_empty() {
        return ok(NAME, format!("git ignores {} under specs/", names.join(" and ")));
    }
    check(
        NAME,
        Level::Warn,
        format!(
            "git does not ignore {} under specs/ (neither .gitignore nor .git/info/exclude names {})",
            not_ignored.join(" and "),
            if not_ignored.len() == 1 { "it" } else { "them" }
        ),
        Some(format!(
            "run `xtask init` (adds them to .gitignore); every `xtask implement` also adds {} to .git/info/exclude",
            crate::git::TRANSIENT_PATTERNS.join(" ")
        )),
    )
}

fn markers(ctx: &Context) -> Check {
    const NAME: &str = "markers";
    let now = jiff::Timestamp::now();
    let mut live = Vec::new();
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut worst = Level::Ok;
    for path in marker::find_markers(&ctx.repo.specs_dir()) {
        let rel = ctx.repo.relative(&path);
        let m = match Marker::load(&path) {
            Ok(m) => m,
            Err(e) => {
                worst = Level::Fail;
                problems.push(format!("{rel} is unreadable ({e})"));
                fixes.push(format!("remove {rel}"));
                continue;
            }
        };
        let n = m.task();
        if m.run_alive() {
            live.push(format!("task {n} (pid {})", m.pid.unwrap_or_default()));
        } else if let Some(group) = m.live_agent() {
            worst = Level::Fail;
            problems.push(format!("{rel}: task {n}'s xtask is gone but its agent (process group {group}) still runs"));
            fixes.push(format!("`xtask cancel {n}` stops it"));
        } else if m.pid.is_some() || m.is_stale(now) {
            worst = Level::Fail;
            let who = m.pid.map(|p| format!("process {p}")).unwrap_or_else(|| "the session that wrote it".into());
            problems.push(format!("{rel}: the run of task {n} is dead ({who} is gone)"));
            fixes.push(format!("`xtask implement {n}` resumes it"));
        } else {
            live.push(format!("task {n} (orchestrated by session {})", m.session_id));
        }
    }
    let lives = if live.is_empty() { String::new() } else { format!("live runs: {}", live.join(", ")) };
    if problems.is_empty() {
        return ok(NAME, if lives.is_empty() { "no pending marker".to_owned() } else { lives });
    }
    if !lives.is_empty() {
        problems.push(lives);
    }
    check(NAME, worst, problems.join("; "), Some(fixes.join("; ")))
}

fn locks(ctx: &Context) -> Check {
    const NAME: &str = "locks";
    let mut dirs = vec![ctx.repo.git_dir.clone()];
    let common = ctx.repo.common_dir();
    if common != ctx.repo.git_dir {
        dirs.push(common);
    }
    let mut held = Vec::new();
    let mut left = Vec::new();
    let mut count = 0;
    for dir in &dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            if name == "postflight-locks.owner" {
                // A commit's record of the lock files it holds: left behind when it was killed.
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let pid = text.lines().next().and_then(|l| l.trim().parse::<u32>().ok());
                if pid.is_none_or(|p| !crate::sys::process_alive(p, None)) {
                    left.push(format!("{} (a killed commit's record of its lock files)", ctx.repo.relative(&path)));
                }
                continue;
            }
            if !(name.starts_with("postflight-") && name.ends_with(".lock")) {
                continue;
            }
            count += 1;
            if let Some(pid) = name.strip_prefix("postflight-index-").and_then(|r| r.strip_suffix(".lock")) {
                if pid.parse::<u32>().is_ok_and(|p| !crate::sys::process_alive(p, None)) {
                    left.push(format!("{} (left by a killed commit)", ctx.repo.relative(&path)));
                }
                continue;
            }
            // The others are advisory locks: the file stays, the lock goes with its holder.
            match crate::atomic::Lock::try_acquire(&path) {
                Ok(Some(_)) => {}
                Ok(None) => held.push(name),
                Err(_) => left.push(format!("{} (cannot be opened)", ctx.repo.relative(&path))),
            }
        }
    }
    let held =
        if held.is_empty() { String::new() } else { format!("; held now by a live process: {}", held.join(", ")) };
    if left.is_empty() {
        return ok(NAME, format!("{count} lock file(s), none left by a dead process{held}"));
    }
    check(
        NAME,
        Level::Warn,
        format!("left behind: {}{held}", left.join(", ")),
        Some("the next postflight commit removes them; while no xtask or git command runs they can be deleted".into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_of_a_command_line() {
        assert_eq!(first_word("my-agent --headless").as_deref(), Some("my-agent"));
        assert_eq!(first_word("FOO=1 'my dir/agent' x").as_deref(), Some("my dir/agent"));
        assert_eq!(first_word("\"/opt/a\\\"b\" y").as_deref(), Some("/opt/a\"b"));
        assert_eq!(first_word("   "), None);
        let script = install::git_hook_script(Path::new("/opt/my bin/xtask"));
        assert_eq!(recorded_bin(&script), Some(PathBuf::from("/opt/my bin/xtask")));
    }
}
