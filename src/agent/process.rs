//! Runs one agent invocation (an argv, or `sh -c <command>`) in the repository root, in its own
//! process group, with the prompt on stdin and the delegation in the environment. Its output
//! streams to the user, into the run log and, line by line, to the adapter's reader; on timeout
//! the whole process group is killed.
//!
//! The group is recorded in the run's marker as soon as it is spawned (so that a later run can
//! see an agent that outlived a killed `xtask`). When an interrupt arrives ([`crate::sys`]'s
//! flag, checked every round of the wait), the group gets SIGTERM, two seconds, then SIGKILL;
//! it is reaped and waited for until no process of it runs, the interruption is recorded in the
//! marker and the log, and [`run`] returns [`Error::Interrupted`].

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::agent::progress::Progress;
use crate::agent::Spawn;
use crate::error::{Error, Result};
use crate::run::{self as marker, Interrupted};
use crate::sys::{self, Interrupt, Kill};

/// What takes each stdout line of an invocation, on the reader thread.
pub type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// One agent invocation.
pub struct Invocation<'a> {
    /// What to start.
    pub spawn: &'a Spawn,
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
    /// The run's marker, which records the agent's process group and an interruption.
    pub marker: Option<std::path::PathBuf>,
    /// Called with each line of stdout (without its newline) as it arrives, on a reader thread.
    pub on_line: Option<LineSink>,
}

impl std::fmt::Debug for Invocation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("spawn", self.spawn)
            .field("cwd", &self.cwd)
            .field("timeout", &self.timeout)
            .field("log_path", &self.log_path)
            .field("marker", &self.marker)
            .field("on_line", &self.on_line.is_some())
            .finish_non_exhaustive()
    }
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
    /// The end of its standard error (the last 8 KiB), where a CLI says what it could not start.
    pub stderr_tail: String,
    /// How long it ran.
    pub elapsed: Duration,
}

const STDOUT_CAPTURE_LIMIT: usize = 1 << 20;
/// How much of the end of stderr is kept.
const STDERR_TAIL_LIMIT: usize = 8 << 10;

/// How long an interrupted agent's group has between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// How long a killed group may take to be gone.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// A safe point: when an interrupt has arrived, records it (in the marker at `marker_path`, and
/// a line in the log) and returns [`Error::Interrupted`]; otherwise nothing.
///
/// # Errors
/// [`Error::Interrupted`].
///
/// # Writes
/// The marker's `interrupted`, a line of `log_path`, when interrupted.
pub fn stop_if_interrupted(marker_path: Option<&Path>, log_path: &Path) -> Result<()> {
    match sys::interrupted() {
        Some(signal) => Err(record_interrupt(marker_path, log_path, signal, None)),
        None => Ok(()),
    }
}

/// Records an interruption (best effort: the run stops either way) and returns its error.
fn record_interrupt(marker_path: Option<&Path>, log_path: &Path, signal: Interrupt, pgid: Option<u32>) -> Error {
    let at = marker::now_utc();
    let what = match pgid {
        Some(g) => format!("; the agent's process group {g} was killed"),
        None => String::new(),
    };
    marker::append_log(log_path, &format!("interrupted by {signal} at {at}{what}; `xtask implement` resumes the run"));
    if let Some(m) = marker_path {
        let _ = marker::record_interrupt(m, Interrupted { signal: signal.name().into(), at, by: None });
    }
    Error::Interrupted { signal }
}

/// Stops the agent's whole group: SIGTERM, up to [`TERM_GRACE`] for the leader to exit, SIGKILL
/// to every process left, the leader reaped, then a wait until no process of the group runs.
fn stop_group(
    child: &mut std::process::Child,
    pgid: u32,
    start: Option<u64>,
) -> std::io::Result<std::process::ExitStatus> {
    sys::signal_group(pgid, Kill::Term);
    let deadline = Instant::now() + TERM_GRACE;
    while child.try_wait()?.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    sys::signal_group(pgid, Kill::Kill);
    let status = child.wait()?;
    sys::wait_group_gone(pgid, start, KILL_WAIT);
    Ok(status)
}

/// Runs the invocation to its end (or its timeout).
///
/// # Errors
/// The program (or the shell) cannot be started; the log cannot be opened.
///
/// # Writes
/// Appends to `log_path`.
pub fn run(inv: &Invocation<'_>, progress: &Progress) -> Result<Finished> {
    stop_if_interrupted(inv.marker.as_deref(), inv.log_path)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(inv.log_path)
        .map_err(|e| Error::io("open the agent log", inv.log_path, e))?;
    let log = Arc::new(Mutex::new(log));
    let (program, mut cmd) = match inv.spawn {
        Spawn::Shell(command) => {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(command);
            ("sh", cmd)
        }
        Spawn::Argv(words) => {
            let Some((program, args)) = words.split_first() else {
                return Err(Error::refused("the agent's command line is empty", None));
            };
            let mut cmd = Command::new(program);
            cmd.args(args);
            (program.as_str(), cmd)
        }
    };
    cmd.current_dir(inv.cwd).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in &inv.env {
        cmd.env(k, v);
    }
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| Error::io("start the agent with", Path::new(program), e))?;
    let pid = child.id();
    let start = sys::start_time(pid);
    if let Some(m) = &inv.marker {
        // Without the record a killed `xtask` would leave an agent no later run can see.
        if let Err(e) = marker::record_agent(m, pid, start) {
            let _ = stop_group(&mut child, pid, start);
            return Err(e);
        }
    }

    if let Some(mut stdin) = child.stdin.take() {
        let prompt = inv.stdin.clone();
        // An agent that does not read its stdin closes the pipe: that is not an error.
        std::thread::spawn(move || {
            let _ = stdin.write_all(prompt.as_bytes());
        });
    }
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let captured = Arc::new(Mutex::new(String::new()));
    let stderr_tail = Arc::new(Mutex::new(String::new()));
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        let sink = Sink { capture: Some(captured.clone()), tail: None, on_line: inv.on_line.clone() };
        readers.push(spawn_reader(out, "", log.clone(), progress.clone(), sink, done_tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        let sink = Sink { capture: None, tail: Some(stderr_tail.clone()), on_line: None };
        readers.push(spawn_reader(err, "", log.clone(), progress.clone(), sink, done_tx.clone()));
    }
    drop(done_tx);

    let mut pause = Duration::from_millis(5);
    let mut timed_out = false;
    let mut interrupted = None;
    let mut open = readers.len();
    let status = loop {
        if let Some(signal) = sys::interrupted() {
            interrupted = Some(signal);
            break stop_group(&mut child, pid, start).map_err(|e| Error::io("wait for", Path::new("the agent"), e))?;
        }
        match child.try_wait().map_err(|e| Error::io("wait for", Path::new("the agent"), e))? {
            Some(status) => break status,
            None => {
                if started.elapsed() >= inv.timeout {
                    timed_out = true;
                    sys::signal_group(pid, Kill::Kill);
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
    // An interrupt that arrived as the agent exited by itself stops the run all the same; what
    // is left of its group goes at once.
    let interrupted = interrupted.or_else(sys::interrupted);
    if interrupted.is_some() {
        sys::signal_group(pid, Kill::Kill);
        sys::wait_group_gone(pid, start, KILL_WAIT);
    }
    // Output pipes close when every process holding them is gone. Leftover background processes
    // of the agent's group get a short grace period, then the group is killed.
    let deadline = Instant::now() + Duration::from_secs(3);
    while open > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        match done_rx.recv_timeout(left) {
            Ok(()) => open -= 1,
            Err(_) => {
                sys::signal_group(pid, Kill::Kill);
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
    if let Some(signal) = interrupted {
        progress.finish(&format!("interrupted by {signal}; the agent's process group was killed"));
        return Err(record_interrupt(inv.marker.as_deref(), inv.log_path, signal, Some(pid)));
    }
    let stdout = captured.lock().map(|s| s.clone()).unwrap_or_default();
    let stderr_tail = stderr_tail.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(Finished { exit_code: status.code(), timed_out, stdout, stderr_tail, elapsed: started.elapsed() })
}

/// The header line that starts each invocation in the run log: wall-clock time (UTC), the
/// session, the `xtask` process running it (one `xtask implement` is one run), the iteration
/// and the agent command. [`crate::workflow::runlog`] reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHeader {
    /// When the invocation started (`%Y-%m-%dT%H:%M:%SZ`).
    pub time: String,
    /// The run's session id.
    pub session: String,
    /// The pid of the `xtask` process running the loop.
    pub run: u32,
    /// The invocation's iteration (1-based, continued by a resumed run).
    pub iteration: u32,
    /// `--max-iterations`.
    pub max_iterations: u32,
    /// The agent command, on one line.
    pub command: String,
}

/// How a header line starts.
pub const LOG_HEADER: &str = "[postflight] ==> ";
/// How the line that ends an invocation starts.
pub const LOG_FOOTER: &str = "[postflight] <== ";

impl LogHeader {
    /// The line, without its newline.
    pub fn line(&self) -> String {
        let LogHeader { time, session, run, iteration, max_iterations, command } = self;
        format!("{LOG_HEADER}{time} session {session} run {run} iteration {iteration}/{max_iterations}: {command}")
    }

    /// Parses a header line (without its newline); `None` for any other line.
    pub fn parse(line: &str) -> Option<LogHeader> {
        let rest = line.strip_prefix(LOG_HEADER)?;
        let (fields, command) = rest.split_once(": ")?;
        let words: Vec<&str> = fields.split(' ').collect();
        let [time, "session", session, "run", run, "iteration", k] = words.as_slice() else { return None };
        let (iteration, max) = k.split_once('/')?;
        Some(LogHeader {
            time: (*time).to_owned(),
            session: (*session).to_owned(),
            run: run.parse().ok()?,
            iteration: iteration.parse().ok()?,
            max_iterations: max.parse().ok()?,
            command: command.to_owned(),
        })
    }
}

/// Appends an invocation's header to the run log (best effort, like every log line).
pub fn log_start(log_path: &Path, header: &LogHeader) {
    append_line(log_path, &header.line());
}

/// Appends the line that ends an invocation: how it ended (`ended` is `None` when it stopped
/// with an error, such as an interrupt) and how long it ran.
pub fn log_end(log_path: &Path, iteration: u32, ended: Option<&Finished>, elapsed: Duration) {
    let how = match ended {
        Some(f) if f.timed_out => "timed out, process group killed".to_owned(),
        Some(Finished { exit_code: Some(code), .. }) => format!("exit {code}"),
        Some(Finished { exit_code: None, .. }) => "killed by a signal".to_owned(),
        None => "stopped (interrupted or failed)".to_owned(),
    };
    let secs = elapsed.as_secs_f64();
    append_line(log_path, &format!("{LOG_FOOTER}{} iteration {iteration}: {how} after {secs:.1}s", marker::now_utc()));
}

/// Appends `line` on a line of its own: a newline first when the agent's last output did not
/// end with one.
fn append_line(log_path: &Path, line: &str) {
    use std::io::{Seek, SeekFrom};
    let Ok(mut f) = std::fs::OpenOptions::new().create(true).read(true).append(true).open(log_path) else { return };
    let mut last = [b'\n'];
    if f.seek(SeekFrom::End(-1)).is_ok() {
        let _ = f.read_exact(&mut last);
    }
    let sep = if last[0] == b'\n' { "" } else { "\n" };
    let _ = writeln!(f, "{sep}{line}");
}

/// Where a reader puts the lines of its stream besides the log and the progress display.
struct Sink {
    /// The captured text (the first MiB).
    capture: Option<Arc<Mutex<String>>>,
    /// The captured end of the text (the last 8 KiB).
    tail: Option<Arc<Mutex<String>>>,
    /// The adapter's reader.
    on_line: Option<LineSink>,
}

fn spawn_reader(
    stream: impl Read + Send + 'static,
    prefix: &'static str,
    log: Arc<Mutex<std::fs::File>>,
    progress: Progress,
    sink: Sink,
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
                    if let Some(f) = &sink.on_line {
                        f(line);
                    }
                    if let Some(t) = &sink.tail {
                        if let Ok(mut t) = t.lock() {
                            t.push_str(line);
                            t.push('\n');
                            if t.len() > STDERR_TAIL_LIMIT {
                                let mut cut = t.len() - STDERR_TAIL_LIMIT;
                                while !t.is_char_boundary(cut) {
                                    cut += 1;
                                }
                                t.drain(..cut);
                            }
                        }
                    }
                    if let Some(c) = &sink.capture {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation<'a>(spawn: &'a Spawn, dir: &'a Path, log: &'a Path, timeout: Duration) -> Invocation<'a> {
        Invocation {
            spawn,
            cwd: dir,
            stdin: "the prompt\n".into(),
            env: vec![("XTASK_TEST_VAR".into(), "v1".into())],
            timeout,
            log_path: log,
            marker: None,
            on_line: None,
        }
    }

    #[test]
    fn output_is_logged_stdin_and_env_arrive() {
        let tmp = tempfile::tempdir().expect("tmp");
        let log = tmp.path().join("run.log");
        let spawn = Spawn::Shell("read line; echo \"got $line $XTASK_TEST_VAR\"; echo oops >&2; exit 3".into());
        let inv = invocation(&spawn, tmp.path(), &log, Duration::from_secs(20));
        let done = run(&inv, &Progress::off()).expect("run");
        assert_eq!(done.exit_code, Some(3));
        assert!(!done.timed_out);
        assert_eq!(done.stdout, "got the prompt v1\n");
        assert_eq!(done.stderr_tail, "oops\n");
        let logged = std::fs::read_to_string(&log).expect("log");
        assert!(logged.contains("got the prompt v1\n") && logged.contains("oops\n"), "{logged}");
    }

    #[test]
    fn an_argv_runs_without_a_shell_and_its_lines_reach_the_reader() {
        let tmp = tempfile::tempdir().expect("tmp");
        let log = tmp.path().join("run.log");
        // Words a shell would split, expand or choke on arrive as they are.
        let word = "it's $HOME; `x` \"y\"";
        let spawn = Spawn::Argv(vec!["printf".into(), "%s\\n%s\\n".into(), word.into(), "two".into()]);
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink: LineSink = {
            let seen = Arc::clone(&seen);
            Arc::new(move |line: &str| seen.lock().expect("lock").push(line.to_owned()))
        };
        let inv = Invocation { on_line: Some(sink), ..invocation(&spawn, tmp.path(), &log, Duration::from_secs(20)) };
        let done = run(&inv, &Progress::off()).expect("run");
        assert_eq!(done.exit_code, Some(0));
        assert_eq!(done.stdout, format!("{word}\ntwo\n"));
        assert_eq!(*seen.lock().expect("lock"), [word, "two"]);
        let missing = Spawn::Argv(vec!["/nonexistent/agent-binary".into()]);
        let err = run(&invocation(&missing, tmp.path(), &log, Duration::from_secs(5)), &Progress::off())
            .expect_err("no such program");
        assert!(err.to_string().contains("/nonexistent/agent-binary"), "{err}");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let tmp = tempfile::tempdir().expect("tmp");
        let log = tmp.path().join("run.log");
        let marker = tmp.path().join("grandchild-survived");
        let cmd = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let spawn = Spawn::Shell(cmd);
        let inv = invocation(&spawn, tmp.path(), &log, Duration::from_millis(300));
        let done = run(&inv, &Progress::off()).expect("run");
        assert!(done.timed_out);
        assert!(done.elapsed < Duration::from_secs(10), "{:?}", done.elapsed);
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the grandchild outlived the timeout");
    }
}
