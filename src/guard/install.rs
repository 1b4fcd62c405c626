//! `xtask hooks install`: the git `pre-commit` hook (running `xtask check --staged`) and the
//! Claude Code `Stop` / `SubagentStop` entries in `.claude/settings.json`. Installing twice
//! changes nothing; an existing pre-commit hook is kept and run first; other settings are kept;
//! `--uninstall` removes only what this module added. Hook commands call an installed binary,
//! never `cargo run`.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::agent::{claude, codex, StopHook};
use crate::atomic;
use crate::error::{Error, Result};
use crate::git::cli;
use crate::repo::Repo;

/// The line that marks a pre-commit hook as written by postflight.
pub const GIT_HOOK_SIGNATURE: &str = "# postflight-managed pre-commit hook";
/// Where an existing foreign pre-commit hook is moved to, to be run first by ours.
pub const CHAINED_HOOK: &str = "pre-commit.postflight-chained";
/// The Claude Code events the stop hook is registered for.
pub const CLAUDE_EVENTS: &[&str] = claude::STOP_HOOK.events;

/// What to install.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The git pre-commit hook.
    pub git: bool,
    /// The Claude Code settings entries.
    pub claude: bool,
    /// The Codex `Stop` entry in `.codex/hooks.json` (only when asked for: a best-effort guard).
    pub codex: bool,
    /// The ledger merge driver: the `.gitattributes` lines and the clone's `merge.postflight.*`
    /// config ([`crate::merge::setup`]).
    pub merge: bool,
    /// Remove instead of install.
    pub uninstall: bool,
    /// The xtask binary the git hook records (default: the running executable); also used in
    /// the Claude settings command when given (default there: `xtask` from PATH).
    pub bin: Option<PathBuf>,
}

/// What was done, one line per file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Human-readable actions.
    pub actions: Vec<String>,
}

/// Installs (or uninstalls) the hooks of `repo`; with none of `git`, `claude`, `codex` and
/// `merge` set, the git hook and Claude Code's.
///
/// # Errors
/// Git failures finding the hooks directory; a settings file that is not a JSON object; a
/// foreign pre-commit hook when a chained one already exists; I/O errors.
///
/// # Writes
/// `<hooks dir>/pre-commit` (and `pre-commit.postflight-chained`), `.claude/settings.json`,
/// `.codex/hooks.json`; with `merge`, `.gitattributes` and the git config.
pub fn install(repo: &Repo, opts: &Options) -> Result<Report> {
    let both = !opts.git && !opts.claude && !opts.codex && !opts.merge;
    let mut report = Report::default();
    // Read and validate the settings before touching the git hook, so a refusal changes nothing.
    let mut hooks = Vec::new();
    if opts.claude || both {
        hooks.push(claude::STOP_HOOK);
    }
    if opts.codex {
        hooks.push(codex::STOP_HOOK);
    }
    let plans = hooks.iter().map(|hook| Ok((hook, plan_hook(repo, hook, opts)?))).collect::<Result<Vec<_>>>()?;
    if opts.git || both {
        git_hook(repo, opts, &mut report)?;
    }
    for (hook, (path, old, new)) in plans {
        let rel = repo.relative(&path);
        let events = hook.events.join(" and ");
        match new {
            Some(bytes) if Some(&bytes) != old.as_ref() => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
                }
                atomic::write(&path, &bytes)?;
                report.actions.push(if opts.uninstall {
                    format!("{rel}: removed the postflight {events} hooks")
                } else {
                    format!("{rel}: {events} run `{}`", claude_command(opts))
                });
            }
            _ => report.actions.push(format!("{rel}: already up to date")),
        }
    }
    if opts.merge {
        let bin = match &opts.bin {
            Some(b) => b.clone(),
            None => std::env::current_exe().map_err(|e| Error::io("locate", "the running xtask binary", e))?,
        };
        let bin = std::fs::canonicalize(&bin).unwrap_or(bin);
        report.actions.extend(crate::merge::setup::install(repo, &bin, opts.uninstall)?);
    }
    Ok(report)
}

/// The command an agent's stop hook runs: the given binary, else `xtask` from PATH.
pub fn claude_command(opts: &Options) -> String {
    match &opts.bin {
        Some(bin) => format!("{} hook stop", shell_quote(&bin.to_string_lossy())),
        None => "xtask hook stop".into(),
    }
}

/// Whether a hook command is one this module writes (`xtask hook stop`, any path to `xtask`).
pub fn is_postflight_command(command: &str) -> bool {
    let Some(program) = command.trim().strip_suffix("hook stop") else { return false };
    let program = program.trim().trim_matches('\'').trim_matches('"');
    Path::new(program).file_name().is_some_and(|n| n == "xtask")
}

// ---------------------------------------------------------------------------------------------
// git

/// The hooks directory git uses (honours `core.hooksPath`).
pub fn hooks_dir(repo: &Repo) -> Result<PathBuf> {
    let out = cli::Git::new(&repo.root, &["rev-parse", "--git-path", "hooks"]).run(&[0])?;
    let rel = String::from_utf8_lossy(&out).trim().to_owned();
    Ok(repo.root.join(rel))
}

fn git_hook(repo: &Repo, opts: &Options, report: &mut Report) -> Result<()> {
    let dir = hooks_dir(repo)?;
    let hook = dir.join("pre-commit");
    let chained = dir.join(CHAINED_HOOK);
    let shown = |p: &Path| repo.relative(p);
    let existing = match std::fs::read(&hook) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("read", &hook, e)),
    };
    let ours = existing.as_deref().is_some_and(|b| String::from_utf8_lossy(b).contains(GIT_HOOK_SIGNATURE));
    if opts.uninstall {
        if !ours {
            report.actions.push(match existing {
                Some(_) => format!("{}: not installed by postflight; left alone", shown(&hook)),
                None => format!("{}: not installed", shown(&hook)),
            });
            return Ok(());
        }
        std::fs::remove_file(&hook).map_err(|e| Error::io("remove", &hook, e))?;
        if chained.exists() {
            std::fs::rename(&chained, &hook).map_err(|e| Error::io("restore", &hook, e))?;
            report.actions.push(format!("{}: removed; the previous hook is back in place", shown(&hook)));
        } else {
            report.actions.push(format!("{}: removed", shown(&hook)));
        }
        return Ok(());
    }
    let bin = match &opts.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().map_err(|e| Error::io("locate", "the running xtask binary", e))?,
    };
    let bin = std::fs::canonicalize(&bin).unwrap_or(bin);
    let script = git_hook_script(&bin);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
    let mut note = String::new();
    if existing.is_some() && !ours {
        if chained.exists() {
            return Err(Error::refused(
                format!(
                    "{} is not postflight's and {} already exists; refusing to overwrite either",
                    shown(&hook),
                    shown(&chained)
                ),
                Some("merge the two hooks by hand, then run `xtask hooks install --git` again"),
            ));
        }
        std::fs::rename(&hook, &chained).map_err(|e| Error::io("move", &hook, e))?;
        note = format!(" (the existing hook now runs first, from {})", shown(&chained));
    }
    if existing.as_deref() == Some(script.as_bytes()) {
        report.actions.push(format!("{}: already up to date", shown(&hook)));
        return Ok(());
    }
    atomic::write(&hook, script.as_bytes())?;
    make_executable(&hook)?;
    report.actions.push(format!("{}: runs `{} check --staged`{note}", shown(&hook), bin.display()));
    Ok(())
}

/// The pre-commit script: run a chained hook first, then `xtask check --staged` with the binary
/// recorded at install time, else `xtask` from PATH.
pub fn git_hook_script(bin: &Path) -> String {
    let recorded = shell_quote(&bin.to_string_lossy());
    format!(
        r#"#!/bin/sh
{GIT_HOOK_SIGNATURE} (written by `xtask hooks install`; remove with `xtask hooks install --git --uninstall`).
# Rejects a commit whose staged specs/state.json, specs/TODO.md and plan headers disagree.
hooks_dir=$(dirname "$0")
if [ -x "$hooks_dir/{CHAINED_HOOK}" ]; then
  "$hooks_dir/{CHAINED_HOOK}" "$@" || exit $?
fi
xtask_bin={recorded}
if [ ! -x "$xtask_bin" ]; then
  xtask_bin=$(command -v xtask 2>/dev/null || true)
fi
if [ -z "$xtask_bin" ]; then
  echo "postflight pre-commit: xtask not found at {recorded_msg} nor on PATH; install it (cargo install --path xtask) or commit with --no-verify" >&2
  exit 1
fi
exec "$xtask_bin" check --staged
"#,
        recorded_msg = bin.to_string_lossy().replace(['"', '`', '$', '\\'], "_"),
    )
}

fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(|e| Error::io("chmod", path, e))
}

/// Quotes a word for /bin/sh (single quotes, `'` as `'\''`); plain words stay as they are.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

// ---------------------------------------------------------------------------------------------
// An agent's hook settings (`.claude/settings.json`, the adapter's `StopHook`)

/// The settings path, its current bytes and its new bytes (`None` when there is nothing to write).
type HookPlan = (PathBuf, Option<Vec<u8>>, Option<Vec<u8>>);

fn plan_hook(repo: &Repo, hook: &StopHook, opts: &Options) -> Result<HookPlan> {
    let path = repo.root.join(hook.file);
    let old = match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let mut settings = match &old {
        Some(b) if !b.iter().all(u8::is_ascii_whitespace) => {
            let v: Value = serde_json::from_slice(b).map_err(|e| Error::json(&path, &e))?;
            match v {
                Value::Object(m) => m,
                _ => return Err(Error::format(&path, Some(1), "the settings file is not a JSON object")),
            }
        }
        _ => Map::new(),
    };
    if opts.uninstall && old.is_none() {
        return Ok((path, None, None));
    }
    let changed = if opts.uninstall {
        remove_hooks(&mut settings, hook, &path)?
    } else {
        add_hooks(&mut settings, hook, &claude_command(opts), &path)?
    };
    if !changed {
        return Ok((path, old, None));
    }
    let mut bytes = serde_json::to_vec_pretty(&Value::Object(settings)).expect("settings serialise");
    bytes.push(b'\n');
    Ok((path, old, Some(bytes)))
}

fn hooks_object<'a>(settings: &'a mut Map<String, Value>, path: &Path) -> Result<&'a mut Map<String, Value>> {
    settings
        .entry("hooks")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| Error::format(path, None, "`hooks` is not a JSON object"))
}

/// Adds (or updates) one matcher group per event running `command`; true when anything changed.
fn add_hooks(settings: &mut Map<String, Value>, hook: &StopHook, command: &str, path: &Path) -> Result<bool> {
    let before = settings.clone();
    let hooks = hooks_object(settings, path)?;
    for &event in hook.events {
        let groups = hooks
            .entry(event)
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut()
            .ok_or_else(|| Error::format(path, None, format!("`hooks.{event}` is not an array")))?;
        let mut found = false;
        for group in groups.iter_mut() {
            let Some(list) = group.get_mut("hooks").and_then(Value::as_array_mut) else { continue };
            for h in list.iter_mut() {
                let is_ours = h.get("command").and_then(Value::as_str).is_some_and(is_postflight_command);
                if is_ours && !found {
                    found = true;
                    if let Some(obj) = h.as_object_mut() {
                        obj.insert("type".into(), json!("command"));
                        obj.insert("command".into(), json!(command));
                        obj.insert("timeout".into(), json!(hook.timeout));
                    }
                }
            }
        }
        if !found {
            let mut group = Map::new();
            if let Some(m) = hook.matcher {
                group.insert("matcher".into(), json!(m));
            }
            group.insert("hooks".into(), json!([{"type": "command", "command": command, "timeout": hook.timeout}]));
            groups.push(Value::Object(group));
        }
    }
    Ok(*settings != before)
}

/// Removes every postflight stop-hook command, and the groups, arrays and `hooks` object that
/// become empty because of it; true when anything changed.
fn remove_hooks(settings: &mut Map<String, Value>, hook: &StopHook, path: &Path) -> Result<bool> {
    let Some(hooks) = settings.get_mut("hooks") else { return Ok(false) };
    let hooks = hooks.as_object_mut().ok_or_else(|| Error::format(path, None, "`hooks` is not a JSON object"))?;
    let mut changed = false;
    for &event in hook.events {
        let Some(groups) = hooks.get_mut(event).and_then(Value::as_array_mut) else { continue };
        let mut i = 0;
        while i < groups.len() {
            if let Some(list) = groups[i].get_mut("hooks").and_then(Value::as_array_mut) {
                let n = list.len();
                list.retain(|h| !h.get("command").and_then(Value::as_str).is_some_and(is_postflight_command));
                if list.len() != n {
                    changed = true;
                    if list.is_empty() {
                        groups.remove(i);
                        continue;
                    }
                }
            }
            i += 1;
        }
        if changed && groups.is_empty() {
            hooks.remove(event);
        }
    }
    if changed && hooks.is_empty() {
        settings.remove("hooks");
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_recognised_and_quoted() {
        assert!(is_postflight_command("xtask hook stop"));
        assert!(is_postflight_command("'/opt/my bin/xtask' hook stop"));
        assert!(is_postflight_command("/usr/local/bin/xtask hook stop"));
        assert!(!is_postflight_command("bash .claude/hooks/subagent-postflight.sh"));
        assert!(!is_postflight_command("cargo run -p xtask -- hook stop"));
        assert_eq!(shell_quote("/a/b"), "/a/b");
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    }

    #[test]
    fn settings_merge_is_idempotent_and_uninstall_removes_only_ours() {
        let p = Path::new("settings.json");
        let original: Value = serde_json::from_str(
            r#"{"model": "opus", "hooks": {"Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "echo hi"}]}], "PostToolUse": []}}"#,
        )
        .expect("json");
        let mut s = original.as_object().expect("obj").clone();
        assert!(add_hooks(&mut s, &claude::STOP_HOOK, "xtask hook stop", p).expect("add"));
        assert!(!add_hooks(&mut s, &claude::STOP_HOOK, "xtask hook stop", p).expect("again"));
        assert_eq!(s["hooks"]["Stop"].as_array().expect("arr").len(), 2);
        assert_eq!(s["hooks"]["SubagentStop"][0]["hooks"][0]["timeout"], 10);
        assert!(add_hooks(&mut s, &claude::STOP_HOOK, "/bin/xtask hook stop", p).expect("update"));
        assert_eq!(s["hooks"]["Stop"][1]["hooks"][0]["command"], "/bin/xtask hook stop");
        assert!(remove_hooks(&mut s, &claude::STOP_HOOK, p).expect("remove"));
        assert_eq!(Value::Object(s), original);
    }
}
