//! `hook stop`, `check` and `hooks install`: thin wrappers over `postflight::guard`.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use postflight::guard::stop_hook;

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
                let input = read_stdin(STDIN_TIMEOUT);
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

/// Reads all of stdin, giving up after `timeout` (a hook that waits forever is never timed
/// out by some callers); a terminal counts as empty input.
fn read_stdin(timeout: Duration) -> Vec<u8> {
    if std::io::stdin().is_terminal() {
        return Vec::new();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::stdin().lock().read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx.recv_timeout(timeout).unwrap_or_default()
}
