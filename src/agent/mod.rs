//! The agent adapters: what an agent CLI needs that a plain command does not. An [`Adapter`] says
//! how to start an invocation ([`Spawn`]: an argv, or a shell command line for the user's own
//! command), whether the agent's session id is chosen up front or discovered from its output
//! ([`SessionPolicy`]), how to read its final result and classify an error ([`Conclusion`]), its
//! default `Co-authored-by:` identity, and where its stop hook is installed ([`StopHook`]).
//! [`process`] runs an invocation; nothing here knows the ledger or the task.

pub mod claude;
pub mod process;
pub mod progress;

use serde_json::Value;

use crate::config::{ClaudeConfig, Config};

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
}

/// What an invocation's own output says about how it ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conclusion {
    /// The agent's final result object (for the run log and `--json` `agent_results`).
    pub result: Option<Value>,
    /// Why the agent stopped with an error, in its own words (`None`: no error reported).
    pub error: Option<String>,
}

/// The adapter chosen for a run.
#[derive(Debug, Clone)]
pub enum Adapter {
    /// Any command, run through `sh -c`; only the metadata file is read.
    Shell(String),
    /// Claude Code headless (`claude -p`).
    Claude(ClaudeConfig),
}

impl Adapter {
    /// The adapter an agent name selects: `claude` is Claude Code; anything else is a command.
    pub fn select(agent: &str, cfg: &Config) -> Adapter {
        match agent {
            claude::AGENT_NAME => Adapter::Claude(cfg.claude.clone()),
            command => Adapter::Shell(command.to_owned()),
        }
    }

    /// The executable the adapter starts, when it is not a shell command line.
    pub fn program(&self) -> Option<String> {
        match self {
            Adapter::Shell(_) => None,
            Adapter::Claude(cfg) => Some(cfg.command.clone().unwrap_or_else(|| claude::AGENT_NAME.to_owned())),
        }
    }

    /// The `Co-authored-by:` identity of the adapter's commits, unless configured otherwise.
    pub fn default_identity(&self) -> Option<&'static str> {
        match self {
            Adapter::Shell(_) => None,
            Adapter::Claude(_) => Some(claude::DEFAULT_IDENTITY),
        }
    }

    /// Where the agent's session id comes from.
    pub fn session_policy(&self) -> SessionPolicy {
        match self {
            Adapter::Shell(_) => SessionPolicy::None,
            Adapter::Claude(_) => SessionPolicy::Chosen,
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
        }
    }

    /// Whether the agent's stdout is the adapter's to read (so JSON there is expected, not a
    /// misplaced metadata file).
    pub fn reads_stdout(&self) -> bool {
        !matches!(self, Adapter::Shell(_))
    }

    /// A reader of one invocation's output lines as they arrive.
    pub fn watch(&self) -> Watch {
        Watch { _private: () }
    }

    /// What the invocation's output (`stdout`, the first MiB) and its `watch` say about how it
    /// ended.
    pub fn conclude(&self, stdout: &str, _watch: &Watch) -> Conclusion {
        match self {
            Adapter::Shell(_) => Conclusion::default(),
            Adapter::Claude(_) => match claude::parse_result(stdout) {
                Some(r) => Conclusion { error: r.is_error.then(|| r.error_reason()), result: Some(r.raw) },
                None => Conclusion::default(),
            },
        }
    }

    /// Where the adapter's stop hook is installed, if it has one.
    pub fn stop_hook(&self) -> Option<StopHook> {
        match self {
            Adapter::Shell(_) => None,
            Adapter::Claude(_) => Some(claude::STOP_HOOK),
        }
    }
}

/// Reads an invocation's stdout line by line while it runs (shared with the reader thread).
#[derive(Debug)]
pub struct Watch {
    _private: (),
}

impl Watch {
    /// Takes one line of stdout; returns the agent's session id when this line reveals it.
    pub fn line(&self, _line: &str) -> Option<String> {
        None
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
    }

    #[test]
    fn an_argv_is_displayed_quoted_and_on_one_line() {
        let s = Spawn::Argv(vec!["claude".into(), "-p".into(), "don't\nstop".into()]);
        assert_eq!(s.display(), r"claude -p 'don'\''t stop'");
        assert_eq!(Spawn::Shell("a\nb".into()).display(), "a b");
    }
}
