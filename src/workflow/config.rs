//! The project's configuration, `.postflight.json` at the repository root (optional): the agent
//! command, its identity for `Co-authored-by`, loop limits, and per-language commit scopes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The configuration file name (repository root).
pub const CONFIG_FILE: &str = ".postflight.json";

/// How many invocations a run makes at most while the agent reports partial, unless
/// `--max-iterations` or `max_iterations` says otherwise.
pub const DEFAULT_MAX_ITERATIONS: u32 = 5;
/// Seconds after which an invocation's process group is killed, unless `--timeout` or
/// `timeout` says otherwise (owned by the run's files: a marker without a timeout has it).
pub use crate::run::DEFAULT_TIMEOUT;

/// Project configuration; every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The agent command (`sh -c`), or `claude` for the Claude Code adapter.
    #[serde(default)]
    pub agent: Option<String>,
    /// `Name <email>` for the `Co-authored-by:` trailer.
    #[serde(default)]
    pub agent_identity: Option<String>,
    /// Default for `--max-iterations`.
    #[serde(default)]
    pub max_iterations: Option<u32>,
    /// Default for `--timeout` (seconds).
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Per-language directories whose files the agent changed during the run are committed with
    /// the task (replaces the defaults for the languages named).
    #[serde(default)]
    pub scopes: BTreeMap<String, Vec<String>>,
    /// Settings of the Claude Code adapter.
    #[serde(default)]
    pub claude: ClaudeConfig,
}

/// Settings of the Claude Code adapter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaudeConfig {
    /// The `claude` executable (default: `claude` on the PATH).
    #[serde(default)]
    pub command: Option<String>,
    /// `--allowedTools` (default: the tools an implementation needs).
    #[serde(default)]
    pub allowed_tools: Option<Vec<String>>,
    /// `--permission-mode` (default `acceptEdits`).
    #[serde(default)]
    pub permission_mode: Option<String>,
    /// `--model`.
    #[serde(default)]
    pub model: Option<String>,
    /// `--agent`.
    #[serde(default)]
    pub agent: Option<String>,
    /// `--append-system-prompt`.
    #[serde(default)]
    pub append_system_prompt: Option<String>,
    /// Extra arguments passed as they are.
    #[serde(default)]
    pub extra_args: Vec<String>,
}

impl Config {
    /// The iteration limit: `flag`, else the configuration's, else the default (at least 1).
    pub fn max_iterations_or(&self, flag: Option<u32>) -> u32 {
        flag.or(self.max_iterations).unwrap_or(DEFAULT_MAX_ITERATIONS).max(1)
    }

    /// The per-invocation timeout: `flag`, else the configuration's, else the default (at least 1 s).
    pub fn timeout_or(&self, flag: Option<u64>) -> u64 {
        flag.or(self.timeout).unwrap_or(DEFAULT_TIMEOUT).max(1)
    }

    /// Reads `.postflight.json` from `root`; a missing file is the default configuration.
    ///
    /// # Errors
    /// `Json` when the file does not parse or has an unknown field.
    pub fn load(root: &Path) -> Result<Config> {
        let path = root.join(CONFIG_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::json(&path, &e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// The directories whose run-time changes belong to a task of `language` (seed §8.1
    /// defaults: meta `.claude/`, markdown `docs/`, lean `Theories/`, latex and typst `docs/`).
    pub fn scope(&self, language: &str) -> Vec<String> {
        if let Some(s) = self.scopes.get(language) {
            return s.clone();
        }
        match language {
            "meta" => vec![".claude/".into()],
            "markdown" | "latex" | "typst" => vec!["docs/".into()],
            "lean" | "lean4" => vec!["Theories/".into()],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = Config::load(tmp.path()).expect("default");
        assert_eq!(c.scope("meta"), [".claude/"]);
        assert!(c.scope("general").is_empty());
        std::fs::write(tmp.path().join(CONFIG_FILE), r#"{"agent": "my-agent", "scopes": {"general": ["src/"]}}"#)
            .expect("w");
        let c = Config::load(tmp.path()).expect("load");
        assert_eq!(c.agent.as_deref(), Some("my-agent"));
        assert_eq!(c.scope("general"), ["src/"]);
        std::fs::write(tmp.path().join(CONFIG_FILE), r#"{"agnet": "typo"}"#).expect("w");
        assert!(Config::load(tmp.path()).expect_err("typo").to_string().contains("unknown field"));
    }
}
