//! Runs the repository's `pre-commit` and `commit-msg` hooks as `git commit --only` does: found in
//! `core.hooksPath` (else the common git directory's `hooks/`), executable, started in the work
//! tree root with `GIT_INDEX_FILE` pointing at a temporary index that holds the commit's tree,
//! `GIT_EDITOR=:`, the author in `GIT_AUTHOR_*`, and stdin closed. Output is captured and shown
//! only when a hook fails.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The hooks directory of a repository.
pub(crate) fn hooks_dir(repo: &gix::Repository, root: &Path) -> PathBuf {
    let configured = repo.config_snapshot().trusted_path("core.hooksPath").ok().flatten();
    match configured {
        Some(p) if p.is_absolute() => p,
        // git runs hooks from the work tree root, so a relative hooksPath is relative to it.
        Some(p) => root.join(p),
        None => repo.common_dir().join("hooks"),
    }
}

/// The hook `name` in `dir`, when it exists and is executable (git ignores other files).
pub(crate) fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let md = std::fs::metadata(&path).ok()?;
    (md.is_file() && md.permissions().mode() & 0o111 != 0).then_some(path)
}

/// Runs `hook` with `args` in `root` and the given extra environment.
///
/// # Errors
/// `Hook` with the combined output when the hook exits non-zero or is killed; `Io` when it
/// cannot be started.
pub(crate) fn run(hook: &Path, args: &[OsString], root: &Path, env: &[(&str, OsString)]) -> Result<()> {
    let name = hook.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // One pipe for both streams keeps the hook's output in the order it was written.
    let (mut reader, writer) = std::io::pipe().map_err(|e| Error::io("create a pipe for", hook, e))?;
    let writer2 = writer.try_clone().map_err(|e| Error::io("create a pipe for", hook, e))?;
    let mut cmd = Command::new(hook);
    cmd.args(args).current_dir(root).stdin(Stdio::null()).stdout(writer).stderr(writer2);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| Error::io("run hook", hook, e))?;
    // The parent's copies of the write ends went away with `cmd`, so reading ends when the hook exits.
    drop(cmd);
    let mut output = Vec::new();
    let read = reader.read_to_end(&mut output);
    let status = child.wait().map_err(|e| Error::io("wait for hook", hook, e))?;
    read.map_err(|e| Error::io("read the output of hook", hook, e))?;
    if status.success() {
        return Ok(());
    }
    let status = match status.code() {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".to_owned(),
    };
    Err(Error::Hook { hook: name, status, output: String::from_utf8_lossy(&output).trim_end().to_owned() })
}
