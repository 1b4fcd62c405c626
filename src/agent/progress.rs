//! What the user sees while a run goes on: the agent's output lines and, on a terminal, one
//! status line kept under them (task, iteration k/K, elapsed time, last output line); plain
//! lines otherwise. The library writes to the writer it is given, never to the process's stderr.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing at all.
    Off,
    /// Agent output and one plain line per event.
    Plain,
    /// Agent output and a live status line (ANSI), colour unless `NO_COLOR`.
    Terminal {
        /// Whether colour is allowed.
        color: bool,
    },
}

struct State {
    out: Box<dyn Write + Send>,
    mode: Mode,
    label: String,
    started: Instant,
    last_line: String,
    shown: bool,
    last_draw: Instant,
}

/// A shared progress reporter (cheap to clone).
#[derive(Clone)]
pub struct Progress {
    inner: Option<Arc<Mutex<State>>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

impl Progress {
    /// Shows nothing.
    pub fn off() -> Progress {
        Progress { inner: None }
    }

    /// Reports to `out` in `mode`.
    pub fn new(out: Box<dyn Write + Send>, mode: Mode) -> Progress {
        if mode == Mode::Off {
            return Progress::off();
        }
        let now = Instant::now();
        Progress {
            inner: Some(Arc::new(Mutex::new(State {
                out,
                mode,
                label: String::new(),
                started: now,
                last_line: String::new(),
                shown: false,
                last_draw: now,
            }))),
        }
    }

    fn with(&self, f: impl FnOnce(&mut State)) {
        if let Some(inner) = &self.inner {
            if let Ok(mut s) = inner.lock() {
                f(&mut s);
            }
        }
    }

    /// A plain message line (`postflight: …`).
    pub fn note(&self, msg: &str) {
        self.with(|s| {
            s.clear_status();
            let _ = writeln!(s.out, "postflight: {msg}");
            s.draw_status();
        });
    }

    /// Starts timing a phase such as `task 350: iteration 1/5`.
    pub fn start(&self, label: &str) {
        self.with(|s| {
            s.label = label.to_owned();
            s.started = Instant::now();
            s.last_line.clear();
            if s.mode == Mode::Plain {
                let _ = writeln!(s.out, "postflight: {label}: agent started");
            }
            s.draw_status();
        });
    }

    /// One line of agent output.
    pub fn agent_line(&self, line: &str) {
        self.with(|s| {
            s.clear_status();
            let _ = writeln!(s.out, "{line}");
            if !line.trim().is_empty() {
                s.last_line = line.trim().to_owned();
            }
            s.draw_status();
        });
    }

    /// Redraws the status line (at most every 200 ms).
    pub fn tick(&self) {
        self.with(|s| {
            if s.last_draw.elapsed() >= Duration::from_millis(200) {
                s.draw_status();
            }
        });
    }

    /// Ends the current phase with a summary line.
    pub fn finish(&self, summary: &str) {
        self.with(|s| {
            s.clear_status();
            let secs = s.started.elapsed().as_secs_f64();
            let _ = writeln!(s.out, "postflight: {}: {summary} after {secs:.1}s", s.label);
            s.label.clear();
            let _ = s.out.flush();
        });
    }
}

impl State {
    fn clear_status(&mut self) {
        if self.shown {
            let _ = write!(self.out, "\r\x1b[2K");
            self.shown = false;
        }
    }

    fn draw_status(&mut self) {
        let Mode::Terminal { color } = self.mode else {
            let _ = self.out.flush();
            return;
        };
        if self.label.is_empty() {
            let _ = self.out.flush();
            return;
        }
        let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<usize>().ok()).unwrap_or(100).max(40);
        let head = format!("{} · {}s", self.label, self.started.elapsed().as_secs());
        let room = width.saturating_sub(head.chars().count() + 4);
        let tail: String = self.last_line.chars().take(room).collect();
        let line = if tail.is_empty() { head } else { format!("{head} · {tail}") };
        let _ =
            if color { write!(self.out, "\r\x1b[2K\x1b[1m{line}\x1b[0m") } else { write!(self.out, "\r\x1b[2K{line}") };
        let _ = self.out.flush();
        self.shown = true;
        self.last_draw = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_mode_has_no_escape_codes_and_terminal_mode_redraws() {
        let buf = Buf::default();
        let p = Progress::new(Box::new(buf.clone()), Mode::Plain);
        p.start("task 1: iteration 1/5");
        p.agent_line("hello");
        p.finish("partial");
        let text = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
        assert!(!text.contains('\x1b'), "{text:?}");
        assert!(text.starts_with(
            "postflight: task 1: iteration 1/5: agent started\nhello\npostflight: task 1: iteration 1/5: partial after"
        ));

        let buf = Buf::default();
        let p = Progress::new(Box::new(buf.clone()), Mode::Terminal { color: false });
        p.start("task 1: iteration 1/5");
        p.agent_line("hello");
        let text = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
        assert!(text.contains("\r\x1b[2Khello\n\r\x1b[2Ktask 1: iteration 1/5 · 0s · hello"), "{text:?}");
        assert!(!text.contains("\x1b[1m"), "NO_COLOR respected");
    }
}
