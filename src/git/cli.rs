//! Runs the git command line for the questions gitoxide's minimal build does not answer here
//! (the work tree's status, ignore rules checked against the index). Standard output and
//! standard error are read at the same time (a git that fills one pipe never blocks on it), and
//! a failure keeps git's own words.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Runs `git <args>` in `root` with `stdin` as its input and returns what it printed on
/// standard output. Exit codes in `ok_codes` are success.
///
/// # Errors
/// git cannot be started, or exits with another code: an `Error::Git` with its stderr.
pub(crate) fn run(root: &Path, args: &[&str], stdin: Option<&[u8]>, ok_codes: &[i32]) -> Result<Vec<u8>> {
    run_with_env(root, args, &[], stdin, ok_codes)
}

/// [`run`] with extra environment variables for git.
///
/// # Errors
/// As [`run`].
pub(crate) fn run_with_env(
    root: &Path,
    args: &[&str],
    env: &[(&str, String)],
    stdin: Option<&[u8]>,
    ok_codes: &[i32],
) -> Result<Vec<u8>> {
    let mut cmd = Command::new("git");
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.args(args)
        .current_dir(root)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A pager or a prompt has no place in a tool's pipe, and a question must never take
        // `index.lock` (`git status` refreshes the index when it may): a killed question would
        // leave the lock behind, and a running one makes the user's own git commands fail.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env_remove("GIT_PAGER");
    let mut child = cmd.spawn().map_err(|e| Error::io("run git in", root, e))?;
    let writer = match (stdin, child.stdin.take()) {
        (Some(input), Some(mut pipe)) => {
            let input = input.to_vec();
            Some(std::thread::spawn(move || pipe.write_all(&input)))
        }
        _ => None,
    };
    // `wait_with_output` reads both pipes concurrently.
    let out = child.wait_with_output().map_err(|e| Error::io("run git in", root, e))?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    let code = out.status.code();
    if code.is_some_and(|c| ok_codes.contains(&c)) {
        return Ok(out.stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(Error::Git {
        message: format!(
            "`git {}` failed ({}): {}",
            args.join(" "),
            code.map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}")),
            stderr.trim()
        ),
        refused: false,
        hint: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_kept_and_large_output_does_not_block() {
        let tmp = tempfile::tempdir().expect("tmp");
        let err =
            run(tmp.path(), &["rev-parse", "--verify", "HEAD"], None, &[0]).map(|_| ()).expect_err("not a repository");
        assert!(err.to_string().contains("not a git repository"), "{err}");
        let out = run(tmp.path(), &["hash-object", "--stdin"], Some(&vec![b'x'; 1 << 20]), &[0]).expect("hash");
        assert_eq!(out.len(), 41);
    }
}
