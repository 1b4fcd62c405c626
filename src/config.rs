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
/// `timeout` says otherwise; also the timeout of a marker that names none.
pub const DEFAULT_TIMEOUT: u64 = 7200;
/// Seconds after which a validation command's process group is killed, unless
/// `validation_timeout` says otherwise.
pub const DEFAULT_VALIDATION_TIMEOUT: u64 = 1800;
/// The `validation` key that applies to every language.
pub const ALL_LANGUAGES: &str = "*";

/// Project configuration; every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The agent command (`sh -c`), or `claude` / `codex` for the Claude Code / Codex adapter.
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
    /// Settings of the Codex CLI adapter.
    #[serde(default)]
    pub codex: CodexConfig,
    /// Validation commands per language (`"*"`: every language), run by postflight after the
    /// agent reports implemented (`sh -c`, in order, in the repository root).
    #[serde(default)]
    pub validation: BTreeMap<String, Vec<String>>,
    /// Seconds after which a validation command's process group is killed (default 1800).
    #[serde(default)]
    pub validation_timeout: Option<u64>,
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

/// Settings of the Codex CLI adapter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodexConfig {
    /// The `codex` executable (default: `codex` on the PATH).
    #[serde(default)]
    pub command: Option<String>,
    /// `-m/--model`.
    #[serde(default)]
    pub model: Option<String>,
    /// `-s/--sandbox` (default `workspace-write`).
    #[serde(default)]
    pub sandbox: Option<String>,
    /// `-p/--profile`.
    #[serde(default)]
    pub profile: Option<String>,
    /// `-c key=value` overrides, in order; each JSON value is passed as TOML.
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Extra arguments passed as they are (also when a session is resumed).
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

    /// The validation timeout in seconds (at least 1).
    pub fn validation_timeout(&self) -> u64 {
        self.validation_timeout.unwrap_or(DEFAULT_VALIDATION_TIMEOUT).max(1)
    }

    /// The validation commands of a task of `language`: those of `"*"`, then the language's own,
    /// then `extra` (`--validate`); duplicates dropped, blank ones ignored.
    pub fn validation_commands(&self, language: &str, extra: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let all = self.validation.get(ALL_LANGUAGES).into_iter().flatten();
        let own = self.validation.get(language).filter(|_| language != ALL_LANGUAGES).into_iter().flatten();
        for c in all.chain(own).chain(extra) {
            if !c.trim().is_empty() && !out.contains(c) {
                out.push(c.clone());
            }
        }
        out
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

    #[test]
    fn validation_commands_per_language() {
        let tmp = tempfile::tempdir().expect("tmp");
        assert!(Config::load(tmp.path()).expect("default").validation_commands("lean", &[]).is_empty());
        assert_eq!(Config::default().validation_timeout(), DEFAULT_VALIDATION_TIMEOUT);
        std::fs::write(
            tmp.path().join(CONFIG_FILE),
            r#"{"validation": {"*": ["cargo test --workspace"], "lean": ["lake build"]}, "validation_timeout": 60}"#,
        )
        .expect("w");
        let c = Config::load(tmp.path()).expect("load");
        assert_eq!(c.validation_commands("lean", &["true".into()]), ["cargo test --workspace", "lake build", "true"]);
        assert_eq!(c.validation_commands("general", &[]), ["cargo test --workspace"]);
        assert_eq!(c.validation_timeout(), 60);
    }
}
