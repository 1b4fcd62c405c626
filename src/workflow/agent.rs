//! Runs one agent invocation: `sh -c <command>` in the repository root, in its own process
//! group, with the prompt on stdin and the delegation in the environment. Its output streams to
//! the user and into the run log; on timeout the whole process group is killed.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::workflow::progress::Progress;

/// One agent invocation.
#[derive(Debug)]
pub struct Invocation<'a> {
    /// The shell command.
    pub command: &'a str,
    /// The working directory (the repository root).
    pub cwd: &'a Path,
    /// The prompt written to stdin.
    pub stdin: String,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Kill the process group after this long.
    pub timeout: Duration,
    /// The run log (appended).
    pub log_path: &'a Path,
}

/// How an invocation ended.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The exit code, `None` when killed by a signal.
    pub exit_code: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Its standard output (the first MiB).
    pub stdout: String,
    /// How long it ran.
    pub elapsed: Duration,
}

const STDOUT_CAPTURE_LIMIT: usize = 1 << 20;

/// Runs the invocation to its end (or its timeout).
///
/// # Errors
/// The shell cannot be started; the log cannot be opened.
///
/// # Writes
/// Appends to `log_path`.
pub fn run(inv: &Invocation<'_>, progress: &Progress) -> Result<Finished> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(inv.log_path)
        .map_err(|e| Error::io("open the agent log", inv.log_path, e))?;
    let log = Arc::new(Mutex::new(log));
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(inv.command)
        .current_dir(inv.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &inv.env {
        cmd.env(k, v);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| Error::io("start the agent with", Path::new("sh"), e))?;
    let pid = child.id();

    if let Some(mut stdin) = child.stdin.take() {
        let prompt = inv.stdin.clone();
        // An agent that does not read its stdin closes the pipe: that is not an error.
        std::thread::spawn(move || {
            let _ = stdin.write_all(prompt.as_bytes());
        });
    }
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let captured = Arc::new(Mutex::new(String::new()));
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(spawn_reader(out, "", log.clone(), progress.clone(), Some(captured.clone()), done_tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(spawn_reader(err, "", log.clone(), progress.clone(), None, done_tx.clone()));
    }
    drop(done_tx);

    let mut pause = Duration::from_millis(5);
    let mut timed_out = false;
    let mut open = readers.len();
    let status = loop {
        match child.try_wait().map_err(|e| Error::io("wait for", Path::new("the agent"), e))? {
            Some(status) => break status,
            None => {
                if started.elapsed() >= inv.timeout {
                    timed_out = true;
                    kill_group(pid);
                    break child.wait().map_err(|e| Error::io("wait for", Path::new("the agent"), e))?;
                }
                progress.tick();
                // Wait for an output pipe to close (the agent usually closes them by exiting), at
                // most `pause`: a quick agent is seen at once instead of after the next sleep.
                if open > 0 {
                    match done_rx.recv_timeout(pause) {
                        Ok(()) => {
                            open -= 1;
                            if open == 0 {
                                // Exited or about to be reaped: look again soon.
                                pause = Duration::from_millis(1);
                            }
                            continue;
                        }
                        // No reader is left to report: fall back to sleeping.
                        Err(mpsc::RecvTimeoutError::Disconnected) => open = 0,
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                    }
                } else {
                    std::thread::sleep(pause);
                }
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    };
    // Output pipes close when every process holding them is gone. Leftover background processes
    // of the agent's group get a short grace period, then the group is killed.
    let deadline = Instant::now() + Duration::from_secs(3);
    while open > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok(()) => open -= 1,
            Err(_) => {
                kill_group(pid);
                break;
            }
        }
    }
    for r in readers {
        let _ = r.join();
    }
    if let Ok(mut f) = log.lock() {
        let _ = f.flush();
    }
    let stdout = captured.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(Finished { exit_code: status.code(), timed_out, stdout, elapsed: started.elapsed() })
}

fn spawn_reader(
    stream: impl Read + Send + 'static,
    prefix: &'static str,
    log: Arc<Mutex<std::fs::File>>,
    progress: Progress,
    capture: Option<Arc<Mutex<String>>>,
    done: mpsc::Sender<()>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if let Ok(mut f) = log.lock() {
                        let _ = f.write_all(&buf);
                    }
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']);
                    progress.agent_line(&format!("{prefix}{line}"));
                    if let Some(c) = &capture {
                        if let Ok(mut c) = c.lock() {
                            if c.len() < STDOUT_CAPTURE_LIMIT {
                                c.push_str(line);
                                c.push('\n');
                            }
                        }
                    }
                }
            }
        }
        let _ = done.send(());
    })
}

/// Sends SIGKILL to the process group led by `pid`.
fn kill_group(pid: u32) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals the process group; no memory is touched.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation<'a>(command: &'a str, dir: &'a Path, log: &'a Path, timeout: Duration) -> Invocation<'a> {
        Invocation {
            command,
            cwd: dir,
            stdin: "the prompt\n".into(),
            env: vec![("XTASK_TEST_VAR".into(), "v1".into())],
            timeout,
            log_path: log,
        }
    }

    #[test]
    fn output_is_logged_stdin_and_env_arrive() {
        let tmp = tempfile::tempdir().expect("tmp");
        let log = tmp.path().join("run.log");
        let inv = invocation(
            "read line; echo \"got $line $XTASK_TEST_VAR\"; echo oops >&2; exit 3",
            tmp.path(),
            &log,
            Duration::from_secs(20),
        );
        let done = run(&inv, &Progress::off()).expect("run");
        assert_eq!(done.exit_code, Some(3));
        assert!(!done.timed_out);
        assert_eq!(done.stdout, "got the prompt v1\n");
        let logged = std::fs::read_to_string(&log).expect("log");
        assert!(logged.contains("got the prompt v1\n") && logged.contains("oops\n"), "{logged}");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let tmp = tempfile::tempdir().expect("tmp");
        let log = tmp.path().join("run.log");
        let marker = tmp.path().join("grandchild-survived");
        let cmd = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let inv = invocation(&cmd, tmp.path(), &log, Duration::from_millis(300));
        let done = run(&inv, &Progress::off()).expect("run");
        assert!(done.timed_out);
        assert!(done.elapsed < Duration::from_secs(10), "{:?}", done.elapsed);
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the grandchild outlived the timeout");
    }
}
