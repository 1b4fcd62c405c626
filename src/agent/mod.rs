//! The agent adapters (a shell command, Claude Code, the Codex CLI): what an agent CLI needs that a plain command does not. An [`Adapter`] says
//! how to start an invocation ([`Spawn`]: an argv, or a shell command line for the user's own
//! command), whether the agent's session id is chosen up front or discovered from its output
//! ([`SessionPolicy`]), how to read its final result and classify an error ([`Conclusion`]), its
//! default `Co-authored-by:` identity, and where its stop hook is installed ([`StopHook`]).
//! [`process`] runs an invocation; nothing here knows the ledger or the task.

pub mod claude;
pub mod codex;
pub mod process;
pub mod progress;

use std::sync::Mutex;

use serde_json::Value;

use crate::config::{ClaudeConfig, CodexConfig, Config};
use process::Finished;

/// How an invocation is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spawn {
    /// A command line run by `sh -c` (the user's own agent command).
    Shell(String),
    /// A program and its arguments, run without a shell (no quoting involved).
    Argv(Vec<String>),
}

impl Spawn {
    /// The invocation on one line, for the run log: the shell command as given, or the words
    /// quoted as a shell would need them (for reading only; nothing runs it).
    pub fn display(&self) -> String {
        let line = match self {
            Spawn::Shell(command) => command.clone(),
            Spawn::Argv(words) => words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" "),
        };
        line.replace(['\n', '\r'], " ")
    }
}

/// Where the agent's own session id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPolicy {
    /// The agent has none the tool knows of (a plain command).
    None,
    /// The tool chooses it before the start ([`Adapter::new_session_id`]) and records it first.
    Chosen,
    /// The agent reports it in its output ([`Watch::line`]).
    Discovered,
}

/// Where an adapter's stop hook lives and which events it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopHook {
    /// The agent's name, for messages (`Claude Code`).
    pub agent: &'static str,
    /// The settings file holding the hook entries, relative to the repository root.
    pub file: &'static str,
    /// The events the hook is registered for.
    pub events: &'static [&'static str],
    /// Seconds the agent gives the hook.
    pub timeout: u64,
    /// The `matcher` of the entry's group, when the agent's format has one.
    pub matcher: Option<&'static str>,
}

/// What an invocation's own output says about how it ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conclusion {
    /// The agent's final result object (for the run log and `--json` `agent_results`).
    pub result: Option<Value>,
    /// Why the agent stopped with an error, in its own words (`None`: no error reported).
    pub error: Option<String>,
    /// The agent session the output reported ([`SessionPolicy::Discovered`]).
    pub session: Option<String>,
    /// The invocation was to continue a session and could not: nothing ran.
    pub resume_failed: bool,
}

/// The adapter chosen for a run.
#[derive(Debug, Clone)]
pub enum Adapter {
    /// Any command, run through `sh -c`; only the metadata file is read.
    Shell(String),
    /// Claude Code headless (`claude -p`).
    Claude(ClaudeConfig),
    /// The Codex CLI headless (`codex exec --json`).
    Codex(CodexConfig),
}

impl Adapter {
    /// The adapter an agent name selects: `claude` is Claude Code; anything else is a command.
    pub fn select(agent: &str, cfg: &Config) -> Adapter {
        match agent {
            claude::AGENT_NAME => Adapter::Claude(cfg.claude.clone()),
            codex::AGENT_NAME => Adapter::Codex(cfg.codex.clone()),
            command => Adapter::Shell(command.to_owned()),
        }
    }

    /// The executable the adapter starts, when it is not a shell command line.
    pub fn program(&self) -> Option<String> {
        match self {
            Adapter::Shell(_) => None,
            Adapter::Claude(cfg) => Some(cfg.command.clone().unwrap_or_else(|| claude::AGENT_NAME.to_owned())),
            Adapter::Codex(cfg) => Some(cfg.command.clone().unwrap_or_else(|| codex::AGENT_NAME.to_owned())),
        }
    }

    /// The `Co-authored-by:` identity of the adapter's commits, unless configured otherwise.
    pub fn default_identity(&self) -> Option<&'static str> {
        match self {
            Adapter::Shell(_) => None,
            Adapter::Claude(_) => Some(claude::DEFAULT_IDENTITY),
            Adapter::Codex(_) => Some(codex::DEFAULT_IDENTITY),
        }
    }

    /// Where the agent's session id comes from.
    pub fn session_policy(&self) -> SessionPolicy {
        match self {
            Adapter::Shell(_) => SessionPolicy::None,
            Adapter::Claude(_) => SessionPolicy::Chosen,
            Adapter::Codex(_) => SessionPolicy::Discovered,
        }
    }

    /// A new session id for an adapter that chooses it ([`SessionPolicy::Chosen`]).
    pub fn new_session_id(&self) -> Option<String> {
        (self.session_policy() == SessionPolicy::Chosen).then(claude::new_uuid)
    }

    /// How to start one invocation under the agent session `session` (chosen up front, or one
    /// discovered earlier in the run and to be continued); the prompt goes to stdin.
    pub fn spawn(&self, session: Option<&str>) -> Spawn {
        match self {
            Adapter::Shell(command) => Spawn::Shell(command.clone()),
            Adapter::Claude(cfg) => Spawn::Argv(claude::argv(cfg, session.unwrap_or_default())),
            Adapter::Codex(cfg) => Spawn::Argv(codex::argv(cfg, session)),
        }
    }

    /// Whether the agent's stdout is the adapter's to read (so JSON there is expected, not a
    /// misplaced metadata file).
    pub fn reads_stdout(&self) -> bool {
        !matches!(self, Adapter::Shell(_))
    }

    /// A reader of the output lines of one invocation, started by [`Adapter::spawn`] with
    /// `session`, as they arrive.
    pub fn watch(&self, session: Option<&str>) -> Watch {
        Watch {
            codex: matches!(self, Adapter::Codex(_)).then(|| Mutex::new(codex::Events::default())),
            session: session.map(str::to_owned),
        }
    }

    /// What the invocation's output (its stdout, the first MiB; the tail of its stderr) and its
    /// `watch` say about how it ended.
    pub fn conclude(&self, finished: &Finished, watch: &Watch) -> Conclusion {
        match self {
            Adapter::Shell(_) => Conclusion::default(),
            Adapter::Claude(_) => match claude::parse_result(&finished.stdout) {
                Some(r) => Conclusion {
                    error: r.is_error.then(|| r.error_reason()),
                    result: Some(r.raw),
                    ..Conclusion::default()
                },
                None => Conclusion::default(),
            },
            Adapter::Codex(_) => match &watch.codex {
                Some(events) => match events.lock() {
                    Ok(e) => e.conclude(finished, &finished.stderr_tail, watch.session.as_deref()),
                    Err(_) => {
                        Conclusion { error: Some("the Codex event reader failed".into()), ..Conclusion::default() }
                    }
                },
                None => Conclusion::default(),
            },
        }
    }

    /// Where the adapter's stop hook is installed, if it has one.
    pub fn stop_hook(&self) -> Option<StopHook> {
        match self {
            Adapter::Shell(_) => None,
            Adapter::Claude(_) => Some(claude::STOP_HOOK),
            Adapter::Codex(_) => Some(codex::STOP_HOOK),
        }
    }
}

/// Reads an invocation's stdout line by line while it runs (shared with the reader thread).
#[derive(Debug)]
pub struct Watch {
    /// The Codex event stream read so far.
    codex: Option<Mutex<codex::Events>>,
    /// The session the invocation was started under or asked to continue.
    session: Option<String>,
}

impl Watch {
    /// Takes one line of stdout; returns the agent's session id when this line reveals it.
    pub fn line(&self, line: &str) -> Option<String> {
        self.codex.as_ref()?.lock().ok()?.line(line)
    }
}

/// `'…'` for a POSIX shell, unless the word needs no quoting.
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b)) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_name_selects_the_adapter() {
        let cfg = Config::default();
        assert!(matches!(Adapter::select("claude", &cfg), Adapter::Claude(_)));
        assert!(matches!(Adapter::select("claude --verbose", &cfg), Adapter::Shell(_)));
        let shell = Adapter::select("./agent.sh", &cfg);
        assert_eq!(shell.spawn(None), Spawn::Shell("./agent.sh".into()));
        assert_eq!(shell.default_identity(), None);
        assert_eq!(shell.new_session_id(), None);
        assert!(shell.stop_hook().is_none());
        let claude = Adapter::select("claude", &cfg);
        assert_eq!(claude.default_identity(), Some("Claude <noreply@anthropic.com>"));
        assert_eq!(claude.program().as_deref(), Some("claude"));
        assert_eq!(claude.stop_hook().map(|h| h.file), Some(".claude/settings.json"));
        let codex = Adapter::select("codex", &cfg);
        assert_eq!(codex.session_policy(), SessionPolicy::Discovered);
        assert_eq!(codex.new_session_id(), None);
        assert_eq!(codex.default_identity(), Some("Codex <noreply@openai.com>"));
        assert_eq!(codex.stop_hook().map(|h| h.file), Some(".codex/hooks.json"));
        assert!(matches!(codex.spawn(Some("t1")), Spawn::Argv(w) if w[2] == "resume"));
    }

    #[test]
    fn an_argv_is_displayed_quoted_and_on_one_line() {
        let s = Spawn::Argv(vec!["claude".into(), "-p".into(), "don't\nstop".into()]);
        assert_eq!(s.display(), r"claude -p 'don'\''t stop'");
        assert_eq!(Spawn::Shell("a\nb".into()).display(), "a b");
    }
}
