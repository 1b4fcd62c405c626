//! The one runner of the git command line, for what gitoxide's minimal build does not answer
//! (the work tree's status, ignore rules checked against the index, hooks paths, signed commits,
//! text merges) and for the demo's setup. Every `git` process of the library starts here:
//! without a pager or a terminal prompt, and with `GIT_OPTIONAL_LOCKS=0` so that a question
//! never takes `index.lock`. Standard output and standard error are read at the same time (a
//! git that fills one pipe never blocks on it), and a failure keeps git's own words in a
//! [`Failure`].

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// A `git` command in `root` with the environment every run gets (no pager, no prompt, no
/// optional locks); the caller adds arguments and pipes. For a long-running git that is spoken
/// to through its pipes (`git cat-file --batch`); one-shot runs use [`Git`].
pub fn command(root: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(root)
        // A pager or a prompt has no place in a tool's pipe, and a question must never take
        // `index.lock` (`git status` refreshes the index when it may): a killed question would
        // leave the lock behind, and a running one makes the user's own git commands fail.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env_remove("GIT_PAGER");
    cmd
}

/// How a git run ended: its exit code (`None`: killed by a signal) and what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// A git run that exited with a code its caller does not accept: the command, how it ended and
/// git's standard error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The arguments after `git`, joined by spaces.
    pub command: String,
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// git's standard error, trimmed.
    pub stderr: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = self.code.map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}"));
        write!(f, "`git {}` failed ({how}): {}", self.command, self.stderr)
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Error {
        Error::Git { message: failure.to_string(), refused: false, hint: None }
    }
}

/// One run of `git` in a directory: arguments, extra environment, input.
#[derive(Debug)]
pub struct Git<'a> {
    root: &'a Path,
    args: Vec<&'a OsStr>,
    env: Vec<(&'a str, &'a str)>,
    stdin: Option<&'a [u8]>,
}

impl<'a> Git<'a> {
    /// `git <args>` in `root`, with no input.
    pub fn new<S: AsRef<OsStr> + ?Sized>(root: &'a Path, args: &'a [&'a S]) -> Git<'a> {
        Git { root, args: args.iter().map(|a| a.as_ref()).collect(), env: Vec::new(), stdin: None }
    }

    /// One more argument.
    #[must_use]
    pub fn arg<S: AsRef<OsStr> + ?Sized>(mut self, arg: &'a S) -> Git<'a> {
        self.args.push(arg.as_ref());
        self
    }

    /// An environment variable for git.
    #[must_use]
    pub fn env(mut self, key: &'a str, value: &'a str) -> Git<'a> {
        self.env.push((key, value));
        self
    }

    /// What git reads on its standard input.
    #[must_use]
    pub fn stdin(mut self, input: &'a [u8]) -> Git<'a> {
        self.stdin = Some(input);
        self
    }

    fn shown(&self) -> String {
        self.args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    }

    /// Runs git and returns how it ended, whatever the exit code.
    ///
    /// # Errors
    /// git cannot be started or its pipes fail.
    pub fn output(&self) -> Result<Output> {
        let mut cmd = command(self.root);
        cmd.envs(self.env.iter().copied())
            .args(&self.args)
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| Error::io("run git in", self.root, e))?;
        let writer = match (self.stdin, child.stdin.take()) {
            (Some(input), Some(mut pipe)) => {
                let input = input.to_vec();
                // A git that exits early closes the pipe: its exit code says why.
                Some(std::thread::spawn(move || pipe.write_all(&input)))
            }
            _ => None,
        };
        // `wait_with_output` reads both pipes concurrently.
        let out = child.wait_with_output().map_err(|e| Error::io("run git in", self.root, e))?;
        if let Some(w) = writer {
            let _ = w.join();
        }
        Ok(Output { code: out.status.code(), stdout: out.stdout, stderr: out.stderr })
    }

    /// Runs git; an exit code in `ok_codes` is success and gives its standard output.
    ///
    /// # Errors
    /// git cannot be started; another exit code is a [`Failure`] (as an `Error::Git`).
    pub fn run(&self, ok_codes: &[i32]) -> Result<Vec<u8>> {
        self.check(ok_codes)?.map_err(Error::from)
    }

    /// Runs git; an exit code in `ok_codes` gives its standard output, another one the
    /// [`Failure`] for the caller to word.
    ///
    /// # Errors
    /// git cannot be started or its pipes fail.
    pub fn check(&self, ok_codes: &[i32]) -> Result<std::result::Result<Vec<u8>, Failure>> {
        let out = self.output()?;
        if out.code.is_some_and(|c| ok_codes.contains(&c)) {
            return Ok(Ok(out.stdout));
        }
        Ok(Err(Failure {
            command: self.shown(),
            code: out.code,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }))
    }
}

/// Runs `git <args>` in `root` with `stdin` as its input and returns what it printed on
/// standard output. Exit codes in `ok_codes` are success.
///
/// # Errors
/// git cannot be started, or exits with another code: an `Error::Git` with its stderr.
pub fn run(root: &Path, args: &[&str], stdin: Option<&[u8]>, ok_codes: &[i32]) -> Result<Vec<u8>> {
    let git = Git::new(root, args);
    match stdin {
        Some(input) => git.stdin(input).run(ok_codes),
        None => git.run(ok_codes),
    }
}

/// [`run`] with extra environment variables for git.
///
/// # Errors
/// As [`run`].
pub fn run_with_env(
    root: &Path,
    args: &[&str],
    env: &[(&str, String)],
    stdin: Option<&[u8]>,
    ok_codes: &[i32],
) -> Result<Vec<u8>> {
    let mut git = Git::new(root, args);
    for (k, v) in env {
        git = git.env(k, v);
    }
    match stdin {
        Some(input) => git.stdin(input).run(ok_codes),
        None => git.run(ok_codes),
    }
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
        // More than a pipe buffer on stderr while stdout is open: read concurrently, no deadlock.
        let script = "i=0; while [ $i -lt 2000 ]; do echo 'some long line of error output to fill the pipe' >&2; i=$((i+1)); done; echo done";
        let failure = Git::new(tmp.path(), &["-c", &format!("alias.noisy=!{script}; exit 3"), "noisy"])
            .check(&[0])
            .expect("runs")
            .expect_err("exit 3");
        assert_eq!(failure.code, Some(3));
        assert!(failure.stderr.len() > 64 * 1024, "{}", failure.stderr.len());
        assert!(failure.to_string().starts_with("`git -c alias.noisy="), "{failure}");
    }

    #[test]
    fn optional_locks_are_off() {
        let tmp = tempfile::tempdir().expect("tmp");
        let out =
            Git::new(tmp.path(), &["-c", "alias.env=!printenv GIT_OPTIONAL_LOCKS", "env"]).run(&[0]).expect("env");
        assert_eq!(out, b"0\n");
    }
}
