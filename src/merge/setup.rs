//! What makes git call the driver: the `.gitattributes` lines (versioned, they travel with the
//! repository) and the clone's `merge.postflight.name` / `merge.postflight.driver` config (never
//! versioned: a fresh clone or a CI checkout has none, and git then merges the files as text
//! without a word). [`state`] reads both for `check` and `doctor`; [`install`] writes them for
//! `hooks install --merge`.

use std::path::{Path, PathBuf};

use crate::atomic;
use crate::error::{Error, Result};
use crate::git::cli;
use crate::repo::Repo;

/// The driver's name in `merge=<name>` and `merge.<name>.*`.
pub const DRIVER: &str = "postflight";
/// The attribute lines `hooks install --merge` writes into `.gitattributes`.
pub const ATTRIBUTE_LINES: [&str; 2] = ["specs/state.json merge=postflight", "specs/TODO.md merge=postflight"];
/// `merge.postflight.name`.
pub const DESCRIPTION: &str = "postflight ledger merge (per task: specs/state.json, specs/TODO.md)";
/// The arguments after the binary in `merge.postflight.driver`, exactly.
pub const DRIVER_ARGS: &str = "merge-driver %O %A %B %P";

/// The driver command for the binary `bin`.
pub fn driver_command(bin: &Path) -> String {
    format!("{} {DRIVER_ARGS}", shell_quote(&bin.to_string_lossy()))
}

/// The binary of a driver command this module writes (`<bin> merge-driver %O %A %B %P`, the
/// arguments exactly so), or `None` for any other command (wrong placeholders or order
/// included).
pub fn driver_binary(command: &str) -> Option<PathBuf> {
    let program = command.trim().strip_suffix(DRIVER_ARGS)?.trim_end();
    let program = program
        .strip_prefix('\'')
        .and_then(|p| p.strip_suffix('\''))
        .map_or(program.to_owned(), |p| p.replace(r"'\''", "'"));
    (!program.is_empty()).then(|| PathBuf::from(program))
}

/// What a repository has of the driver's setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Each attribute line naming `merge=postflight`, as `<file>: <line>`.
    pub attributes: Vec<String>,
    /// `merge.postflight.driver` as git reads it (any config scope), when set.
    pub driver: Option<String>,
}

impl State {
    /// An attribute names the driver, and no config defines it: git merges those files as text.
    pub fn unconfigured(&self) -> bool {
        !self.attributes.is_empty() && self.driver.is_none()
    }
}

/// Whether `CI` says this is a CI run (set, not empty, not `false` or `0`): a CI checkout never
/// has a merge driver configured, so its absence there is expected.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The attribute files that can name the driver for the ledger: `.gitattributes` at the root and
/// in `specs/`, and `info/attributes` in the common git directory.
fn attribute_files(repo: &Repo) -> [PathBuf; 3] {
    [
        repo.root.join(".gitattributes"),
        repo.specs_dir().join(".gitattributes"),
        repo.common_dir().join("info").join("attributes"),
    ]
}

/// Whether an attribute line sets `merge=postflight`.
fn names_driver(line: &str) -> bool {
    let line = line.trim();
    !line.starts_with('#') && line.split_whitespace().skip(1).any(|a| a == format!("merge={DRIVER}"))
}

/// Reads the attribute lines and the config. Reads nothing more when no attribute names the
/// driver (no git process then).
///
/// # Errors
/// git cannot be run.
pub fn state(repo: &Repo) -> Result<State> {
    let mut attributes = Vec::new();
    for file in attribute_files(repo) {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        for line in text.lines().filter(|l| names_driver(l)) {
            attributes.push(format!("{}: {}", repo.relative(&file), line.trim()));
        }
    }
    let driver = if attributes.is_empty() { None } else { config_get(repo, &format!("merge.{DRIVER}.driver"))? };
    Ok(State { attributes, driver })
}

fn git(repo: &Repo, args: &[&str]) -> Result<cli::Output> {
    cli::Git::new(&repo.root, args).output()
}

fn config_get(repo: &Repo, key: &str) -> Result<Option<String>> {
    let out = git(repo, &["config", "--get", key])?;
    match out.code {
        Some(0) => Ok(Some(String::from_utf8_lossy(&out.stdout).trim_end_matches('\n').to_owned())),
        Some(1) => Ok(None),
        _ => Err(Error::Git {
            message: format!("git config --get {key} failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            refused: false,
            hint: None,
        }),
    }
}

fn config_run(repo: &Repo, args: &[&str], ok: &[i32]) -> Result<()> {
    cli::Git::new(&repo.root, args).run(ok).map(|_| ())
}

/// Installs (or with `uninstall` removes) the driver: the attribute lines in `.gitattributes`
/// (appended when missing; other lines kept) and the local config `merge.postflight.name` and
/// `merge.postflight.driver` (running `bin`). Returns one line per thing done.
///
/// # Errors
/// I/O errors on `.gitattributes`; git failures.
///
/// # Writes
/// `.gitattributes`, the repository's git config.
pub fn install(repo: &Repo, bin: &Path, uninstall: bool) -> Result<Vec<String>> {
    let mut actions = Vec::new();
    let path = repo.root.join(".gitattributes");
    let rel = repo.relative(&path);
    let old = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let text = old.clone().unwrap_or_default();
    let new = if uninstall {
        let kept: Vec<&str> = text.split_inclusive('\n').filter(|l| !ATTRIBUTE_LINES.contains(&l.trim())).collect();
        kept.concat()
    } else {
        let mut out = text.clone();
        for line in ATTRIBUTE_LINES {
            if !text.lines().any(|l| l.trim() == line) {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    };
    if new != text {
        atomic::write(&path, new.as_bytes())?;
        actions.push(if uninstall {
            format!("{rel}: removed the merge=postflight lines")
        } else {
            format!("{rel}: specs/state.json and specs/TODO.md merge with merge=postflight")
        });
    } else {
        actions.push(format!("{rel}: already up to date"));
    }
    let name_key = format!("merge.{DRIVER}.name");
    let driver_key = format!("merge.{DRIVER}.driver");
    if uninstall {
        // Exit 5: the section or key did not exist.
        config_run(repo, &["config", "--local", "--unset", &name_key], &[0, 5])?;
        config_run(repo, &["config", "--local", "--unset", &driver_key], &[0, 5])?;
        actions.push(format!("git config: removed {name_key} and {driver_key}"));
        return Ok(actions);
    }
    let command = driver_command(bin);
    let current = config_get(repo, &driver_key)?;
    config_run(repo, &["config", "--local", &name_key, DESCRIPTION], &[0])?;
    config_run(repo, &["config", "--local", &driver_key, &command], &[0])?;
    actions.push(if current.as_deref() == Some(command.as_str()) {
        format!("git config {driver_key}: already `{command}`")
    } else {
        format!("git config {driver_key}: `{command}`")
    });
    Ok(actions)
}

/// Quotes a word for /bin/sh (single quotes, `'` as `'\''`); plain words stay as they are.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_command_round_trips_and_wrong_arguments_are_not_ours() {
        for bin in ["/usr/local/bin/xtask", "/opt/my bin/xtask", "/it's/xtask"] {
            assert_eq!(driver_binary(&driver_command(Path::new(bin))), Some(PathBuf::from(bin)));
        }
        assert_eq!(driver_binary("xtask merge-driver %A %O %A %B"), None);
        assert_eq!(driver_binary("xtask merge-driver %O %A %B"), None);
        assert!(names_driver("specs/state.json merge=postflight"));
        assert!(!names_driver("# specs/state.json merge=postflight"));
        assert!(!names_driver("*.json merge=union"));
    }
}
