//! The Codex CLI adapter (`--agent codex`): builds the `codex exec --json` argv (a new session,
//! or `codex exec resume <thread_id>` with every flag again and the sandbox pinned through `-c`,
//! since `resume` rejects `-s`), and reads the JSON event stream as it arrives: the thread id of
//! `thread.started` (the session id, which cannot be chosen up front), the commands run, the
//! usage, and how the last turn ended. Success is the last turn event being `turn.completed`
//! together with exit code 0; anything else is an error in the CLI's own words.

use serde_json::{json, Map, Value};

use crate::agent::process::Finished;
use crate::agent::{Conclusion, StopHook};
use crate::config::CodexConfig;

/// The agent name selecting this adapter.
pub const AGENT_NAME: &str = "codex";

/// The default `Co-authored-by` identity of the Codex CLI.
pub const DEFAULT_IDENTITY: &str = "Codex <noreply@openai.com>";

/// The sandbox used unless `codex.sandbox` says otherwise.
pub const DEFAULT_SANDBOX: &str = "workspace-write";

/// Codex's stop hook: a `Stop` entry in the project's `.codex/hooks.json`. Codex runs project
/// hooks only in a trusted project and has not always run them in `exec` mode, so it is a
/// best-effort guard; the bookkeeping never depends on it.
pub const STOP_HOOK: StopHook =
    StopHook { agent: "Codex", file: ".codex/hooks.json", events: &["Stop"], timeout: 10, matcher: None };

/// The argv of one invocation: a new session, or the continuation of `resume` (a thread id).
/// The prompt goes to stdin (`-`).
pub fn argv(cfg: &CodexConfig, resume: Option<&str>) -> Vec<String> {
    let sandbox = cfg.sandbox.clone().unwrap_or_else(|| DEFAULT_SANDBOX.to_owned());
    let mut words: Vec<String> = vec![cfg.command.clone().unwrap_or_else(|| AGENT_NAME.to_owned()), "exec".into()];
    // `resume` rejects `-p` after it; before it, as an option of `exec`, it is accepted.
    if let Some(p) = &cfg.profile {
        words.extend(["-p".into(), p.clone()]);
    }
    match resume {
        Some(_) => words.extend([
            "resume".into(),
            "--json".into(),
            "-c".into(),
            format!("sandbox_mode={}", toml_value(&json!(sandbox))),
        ]),
        None => words.extend(["--json".into(), "-s".into(), sandbox]),
    }
    if let Some(m) = &cfg.model {
        words.extend(["-m".into(), m.clone()]);
    }
    for (key, value) in &cfg.config {
        words.extend(["-c".into(), format!("{key}={}", toml_value(value))]);
    }
    words.extend(cfg.extra_args.iter().cloned());
    if let Some(id) = resume {
        words.push(id.to_owned());
    }
    words.push("-".into());
    words
}

/// A JSON value written as TOML (what `-c key=value` parses): strings quoted and escaped,
/// arrays and objects inline; `null` becomes an empty string.
pub fn toml_value(v: &Value) -> String {
    match v {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // A JSON string's escapes (`\"`, `\\`, `\n`, `\u0001`) are TOML basic-string escapes too.
        Value::String(s) => serde_json::to_string(s).expect("a string serialises"),
        Value::Array(items) => format!("[{}]", items.iter().map(toml_value).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            let bare =
                |k: &str| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    let key = if bare(k) { k.clone() } else { serde_json::to_string(k).expect("a key serialises") };
                    format!("{key} = {}", toml_value(v))
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// How the last turn of the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Turn {
    /// `turn.completed`.
    Completed,
    /// `turn.failed` with its error message.
    Failed(String),
    /// A top-level `error` event.
    Error(String),
}

/// What the event stream of one invocation said so far.
#[derive(Debug, Default)]
pub struct Events {
    thread_id: Option<String>,
    last_turn: Option<Turn>,
    usage: Option<Value>,
    commands: Vec<Value>,
    file_changes: Vec<Value>,
    last_message: Option<String>,
}

impl Events {
    /// Takes one line of stdout; returns the thread id when this line is its `thread.started`.
    pub fn line(&mut self, line: &str) -> Option<String> {
        let line = line.trim();
        if !line.starts_with('{') {
            return None;
        }
        let v: Value = serde_json::from_str(line).ok()?;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        match v.get("type").and_then(Value::as_str)? {
            "thread.started" => {
                let id = text(v.get("thread_id")?)?;
                let new = self.thread_id.as_deref() != Some(id.as_str());
                self.thread_id = Some(id.clone());
                return new.then_some(id);
            }
            "turn.started" => self.last_turn = None,
            "turn.completed" => {
                self.last_turn = Some(Turn::Completed);
                self.usage = v.get("usage").cloned();
            }
            "turn.failed" => {
                let message = v.pointer("/error/message").and_then(text).unwrap_or_default();
                self.last_turn = Some(Turn::Failed(message));
            }
            "error" => self.last_turn = Some(Turn::Error(v.get("message").and_then(text).unwrap_or_default())),
            "item.completed" => {
                let item = v.get("item")?;
                match item.get("type").and_then(Value::as_str)? {
                    "command_execution" => self.commands.push(json!({
                        "command": item.get("command"),
                        "exit_code": item.get("exit_code"),
                        "status": item.get("status"),
                    })),
                    "file_change" => self
                        .file_changes
                        .extend(item.get("changes").and_then(Value::as_array).cloned().unwrap_or_default()),
                    "agent_message" => self.last_message = item.get("text").and_then(text),
                    _ => {}
                }
            }
            _ => {}
        }
        None
    }

    /// The thread id the stream reported.
    pub fn thread_id(&self) -> Option<&str> {
        self.thread_id.as_deref()
    }

    /// How the invocation ended: its summary object and, unless the last turn completed and
    /// the exit code is 0, the error. `resumed` is the thread it was asked to continue.
    pub fn conclude(&self, finished: &Finished, stderr_tail: &str, resumed: Option<&str>) -> Conclusion {
        let code = finished.exit_code;
        let (status, message) = match &self.last_turn {
            Some(Turn::Completed) => ("turn.completed", None),
            Some(Turn::Failed(m)) => ("turn.failed", Some(m.clone())),
            Some(Turn::Error(m)) => ("error", Some(m.clone())),
            None => ("no turn event", None),
        };
        let message = message.map(|m| api_message(&m)).filter(|m| !m.trim().is_empty());
        let stderr = last_line(stderr_tail);
        let exit = match code {
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".to_owned(),
        };
        let error = match (&self.last_turn, code) {
            (Some(Turn::Completed), Some(0)) => None,
            (Some(Turn::Completed), _) => Some(format!(
                "Codex ended its turn with turn.completed but {exit}: the exit code and the events disagree{}",
                stderr.as_deref().map(|s| format!(": {s}")).unwrap_or_default()
            )),
            (Some(_), _) => Some(format!(
                "Codex stopped with an error ({status}, {exit}): {}",
                message.clone().or(stderr.clone()).unwrap_or_else(|| "no message".into())
            )),
            (None, _) => Some(format!(
                "Codex ended without a turn event ({exit}){}",
                stderr.as_deref().map(|s| format!(": {s}")).unwrap_or_default()
            )),
        };
        let mut result = Map::new();
        result.insert("type".into(), json!("codex"));
        result.insert("thread_id".into(), json!(self.thread_id));
        result.insert("resumed".into(), json!(resumed.is_some()));
        result.insert("status".into(), json!(status));
        result.insert("exit_code".into(), json!(code));
        result.insert("is_error".into(), json!(error.is_some()));
        result.insert("error".into(), json!(error));
        result.insert("usage".into(), self.usage.clone().unwrap_or(Value::Null));
        result.insert("commands".into(), Value::Array(self.commands.clone()));
        result.insert("file_changes".into(), Value::Array(self.file_changes.clone()));
        result.insert("last_message".into(), json!(self.last_message));
        Conclusion {
            result: Some(Value::Object(result)),
            resume_failed: resumed.is_some() && self.thread_id.is_none(),
            session: self.thread_id.clone(),
            error,
        }
    }
}

/// The API's own message when Codex passes its JSON error body through as the message.
fn api_message(message: &str) -> String {
    serde_json::from_str::<Value>(message.trim())
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| message.to_owned())
        .chars()
        .take(300)
        .collect()
}

/// The last non-empty line of the CLI's stderr (where it reports what it could not start).
fn last_line(text: &str) -> Option<String> {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty()).map(|l| l.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn finished(code: Option<i32>) -> Finished {
        Finished {
            exit_code: code,
            timed_out: false,
            stdout: String::new(),
            stderr_tail: String::new(),
            elapsed: Duration::ZERO,
        }
    }

    fn events(lines: &str) -> (Events, Vec<String>) {
        let mut e = Events::default();
        let ids = lines.lines().filter_map(|l| e.line(l)).collect();
        (e, ids)
    }

    const OK: &str = r#"{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}
{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `m` not found."}}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"README.md\n","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Done."}}
{"type":"turn.completed","usage":{"input_tokens":24763,"cached_input_tokens":24448,"output_tokens":122}}"#;

    #[test]
    fn a_completed_turn_with_exit_0_is_success_and_the_thread_is_reported_once() {
        let (e, ids) = events(&format!("{OK}\n{}", OK.lines().next().expect("line")));
        assert_eq!(ids, ["0199a213-81c0-7800-8aa1-bbab2a035a53"]);
        let c = e.conclude(&finished(Some(0)), "", None);
        assert_eq!(c.error, None);
        assert_eq!(c.session.as_deref(), Some("0199a213-81c0-7800-8aa1-bbab2a035a53"));
        let r = c.result.expect("result");
        assert_eq!(r["usage"]["output_tokens"], 122);
        assert_eq!(r["commands"][0]["command"], "bash -lc ls");
        assert_eq!(r["commands"][0]["exit_code"], 0);
        assert_eq!(r["last_message"], "Done.");
        assert_eq!(r["is_error"], false);
        // The same events with a non-zero exit: they disagree, so it is an error.
        let c = e.conclude(&finished(Some(1)), "", None);
        assert!(c.error.as_deref().is_some_and(|m| m.contains("disagree")), "{c:?}");
    }

    #[test]
    fn failed_turns_errors_and_silent_streams_are_errors_in_the_clis_words() {
        let failed = r#"{"type":"thread.started","thread_id":"t1"}
{"type":"turn.started"}
{"type":"error","message":"{\"error\":{\"message\":\"Scripted bad request\",\"type\":\"invalid_request_error\"}}"}
{"type":"turn.failed","error":{"message":"{\"error\":{\"message\":\"Scripted bad request\",\"type\":\"invalid_request_error\"}}"}}"#;
        let c = events(failed).0.conclude(&finished(Some(1)), "", None);
        assert_eq!(c.error.as_deref(), Some("Codex stopped with an error (turn.failed, exit 1): Scripted bad request"));
        // A reconnect that recovered is not an error: the last turn event decides.
        let recovered = "{\"type\":\"turn.started\"}\n{\"type\":\"error\",\"message\":\"Reconnecting... 1/5\"}\n{\"type\":\"turn.completed\",\"usage\":{}}";
        assert_eq!(events(recovered).0.conclude(&finished(Some(0)), "", None).error, None);
        // An error after the completed turn is.
        let late = format!("{recovered}\n{{\"type\":\"error\",\"message\":\"stream closed\"}}");
        assert!(events(&late)
            .0
            .conclude(&finished(Some(0)), "", None)
            .error
            .is_some_and(|m| m.contains("stream closed")));
        // No event at all: the reason is the CLI's stderr, and a resume that never started failed.
        let c = Events::default().conclude(
            &finished(Some(1)),
            "Error: thread/resume: thread/resume failed: no rollout found for thread id abc\n",
            Some("abc"),
        );
        assert_eq!(
            c.error.as_deref(),
            Some("Codex ended without a turn event (exit 1): Error: thread/resume: thread/resume failed: no rollout found for thread id abc")
        );
        assert!(c.resume_failed);
        assert!(
            !events(OK).0.conclude(&finished(Some(0)), "", Some("0199a213-81c0-7800-8aa1-bbab2a035a53")).resume_failed
        );
    }

    #[test]
    fn argv_for_a_new_session_and_for_a_resumed_one() {
        let mut config = Map::new();
        config.insert("model_reasoning_effort".into(), json!("high"));
        config.insert(
            "model_providers.pf".into(),
            json!({"name": "a \"b\"", "base_url": "http://127.0.0.1:1/v1", "request_max_retries": 0}),
        );
        let cfg = CodexConfig {
            model: Some("gpt-5".into()),
            profile: Some("ci".into()),
            config,
            extra_args: vec!["--skip-git-repo-check".into()],
            ..Default::default()
        };
        let provider =
            r#"model_providers.pf={name = "a \"b\"", base_url = "http://127.0.0.1:1/v1", request_max_retries = 0}"#;
        assert_eq!(
            argv(&cfg, None),
            [
                "codex",
                "exec",
                "-p",
                "ci",
                "--json",
                "-s",
                "workspace-write",
                "-m",
                "gpt-5",
                "-c",
                "model_reasoning_effort=\"high\"",
                "-c",
                provider,
                "--skip-git-repo-check",
                "-"
            ]
        );
        assert_eq!(
            argv(&cfg, Some("t1")),
            [
                "codex",
                "exec",
                "-p",
                "ci",
                "resume",
                "--json",
                "-c",
                "sandbox_mode=\"workspace-write\"",
                "-m",
                "gpt-5",
                "-c",
                "model_reasoning_effort=\"high\"",
                "-c",
                provider,
                "--skip-git-repo-check",
                "t1",
                "-"
            ]
        );
        let plain = argv(&CodexConfig { sandbox: Some("danger-full-access".into()), ..Default::default() }, None);
        assert_eq!(plain, ["codex", "exec", "--json", "-s", "danger-full-access", "-"]);
    }
}
