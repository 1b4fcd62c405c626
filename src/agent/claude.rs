//! The Claude Code adapter (`--agent claude`): builds the headless `claude -p` argv with a
//! session id the tool chooses, and reads the CLI's final JSON result so an error
//! (authentication, rate limit, overload, max turns) is reported as what it is.

use serde_json::Value;

use crate::agent::StopHook;
use crate::config::ClaudeConfig;

/// The agent name selecting this adapter.
pub const AGENT_NAME: &str = "claude";

/// The tools an implementation needs by default, nothing more.
pub const DEFAULT_TOOLS: [&str; 7] = ["Read", "Write", "Edit", "MultiEdit", "Glob", "Grep", "Bash"];

/// The default `Co-authored-by` identity of Claude Code.
pub const DEFAULT_IDENTITY: &str = "Claude <noreply@anthropic.com>";

/// Claude Code's stop hook: `Stop` and `SubagentStop` entries in `.claude/settings.json`.
pub const STOP_HOOK: StopHook = StopHook {
    agent: "Claude Code",
    file: ".claude/settings.json",
    events: &["Stop", "SubagentStop"],
    timeout: 10,
    matcher: Some(""),
};

/// The argv running Claude Code headless for one invocation; the prompt goes to stdin.
pub fn argv(cfg: &ClaudeConfig, session_uuid: &str) -> Vec<String> {
    let mut words: Vec<String> = vec![
        cfg.command.clone().unwrap_or_else(|| AGENT_NAME.to_owned()),
        "-p".into(),
        "--session-id".into(),
        session_uuid.to_owned(),
        "--output-format".into(),
        "json".into(),
        "--permission-mode".into(),
        cfg.permission_mode.clone().unwrap_or_else(|| "acceptEdits".into()),
        "--allowedTools".into(),
        cfg.allowed_tools.clone().unwrap_or_else(|| DEFAULT_TOOLS.iter().map(|s| (*s).to_owned()).collect()).join(","),
    ];
    for (flag, value) in
        [("--model", &cfg.model), ("--agent", &cfg.agent), ("--append-system-prompt", &cfg.append_system_prompt)]
    {
        if let Some(v) = value {
            words.push(flag.into());
            words.push(v.clone());
        }
    }
    words.extend(cfg.extra_args.iter().cloned());
    words
}

/// A random version-4 UUID.
pub fn new_uuid() -> String {
    let r = [
        crate::context::random_u32(),
        crate::context::random_u32(),
        crate::context::random_u32(),
        crate::context::random_u32(),
    ];
    let hi = (u64::from(r[0]) << 32) | u64::from(r[1]);
    let lo = (u64::from(r[2]) << 32) | u64::from(r[3]);
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// The CLI's final result object (`--output-format json`).
#[derive(Debug, Clone, PartialEq)]
pub struct CliResult {
    /// `is_error`.
    pub is_error: bool,
    /// `subtype` (`success`, `error_max_turns`, `error_during_execution`, ...).
    pub subtype: String,
    /// `terminal_reason`, when present.
    pub terminal_reason: Option<String>,
    /// `result`: the final text (or the error text).
    pub result: String,
    /// `num_turns`.
    pub num_turns: Option<u64>,
    /// `total_cost_usd`.
    pub total_cost_usd: Option<f64>,
    /// `permission_denials` (tool names).
    pub permission_denials: Vec<String>,
    /// `session_id`.
    pub session_id: Option<String>,
    /// `api_error_status`: the HTTP status of the API error that ended the run (401, 429, 529, ...).
    pub api_error_status: Option<u64>,
    /// The whole object, for the run log and `--json`.
    pub raw: Value,
}

impl CliResult {
    /// One line saying why the CLI stopped with an error.
    /// The CLI reports an API error with `subtype: "success"` and `terminal_reason: "completed"`,
    /// so those words are left out; the API status and the CLI's own text say what happened.
    pub fn error_reason(&self) -> String {
        let mut what = Vec::new();
        if let Some(status) = self.api_error_status {
            what.push(format!("API status {status}"));
        }
        if !self.subtype.is_empty() && self.subtype != "success" {
            what.push(self.subtype.clone());
        }
        if let Some(t) = self.terminal_reason.as_deref().filter(|t| !t.is_empty() && *t != "completed") {
            what.push(t.to_owned());
        }
        let mut reason = "Claude Code stopped with an error".to_owned();
        if !what.is_empty() {
            reason.push_str(&format!(" ({})", what.join(", ")));
        }
        let text: String = self.result.trim().chars().take(300).collect();
        if !text.is_empty() {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        reason
    }
}

/// Finds the final result object in the CLI's stdout: the last line (or the whole output) that
/// parses as a JSON object with `"type": "result"`.
pub fn parse_result(stdout: &str) -> Option<CliResult> {
    let candidates = std::iter::once(stdout.trim()).chain(stdout.lines().rev().map(str::trim));
    for text in candidates {
        if !text.starts_with('{') {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(text) else { continue };
        if v.get("type").and_then(Value::as_str) != Some("result") {
            continue;
        }
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        return Some(CliResult {
            is_error: v.get("is_error").and_then(Value::as_bool).unwrap_or(false),
            subtype: s("subtype").unwrap_or_default(),
            terminal_reason: s("terminal_reason"),
            result: s("result").unwrap_or_default(),
            num_turns: v.get("num_turns").and_then(Value::as_u64),
            total_cost_usd: v.get("total_cost_usd").and_then(Value::as_f64),
            permission_denials: v
                .get("permission_denials")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|d| {
                            d.get("tool_name").and_then(Value::as_str).or_else(|| d.as_str()).map(str::to_owned)
                        })
                        .collect()
                })
                .unwrap_or_default(),
            session_id: s("session_id"),
            api_error_status: v.get("api_error_status").and_then(Value::as_u64),
            raw: v,
        });
    }
    None
}

/// Whether `claude` can be found on the PATH.
pub fn on_path() -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(AGENT_NAME).is_file()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_quotes_and_defaults() {
        let cfg = ClaudeConfig {
            model: Some("opus".into()),
            append_system_prompt: Some("Be brief; don't guess.".into()),
            ..Default::default()
        };
        let cmd = crate::agent::Spawn::Argv(argv(&cfg, "0b6f0c1e-2a3b-4c5d-8e9f-001122334455")).display();
        assert_eq!(
            cmd,
            "claude -p --session-id 0b6f0c1e-2a3b-4c5d-8e9f-001122334455 --output-format json --permission-mode acceptEdits \
             --allowedTools Read,Write,Edit,MultiEdit,Glob,Grep,Bash --model opus --append-system-prompt 'Be brief; don'\\''t guess.'"
        );
    }

    #[test]
    fn uuids_are_version_4() {
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(u, new_uuid());
    }

    #[test]
    fn final_result_is_found_and_errors_explained() {
        let out = "noise\n{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,\"result\":\"API Error: 529 overloaded\",\"num_turns\":1,\"total_cost_usd\":0.01,\"permission_denials\":[{\"tool_name\":\"Bash\"}],\"session_id\":\"abc\"}\n";
        let r = parse_result(out).expect("found");
        assert!(r.is_error);
        assert_eq!(r.permission_denials, ["Bash"]);
        assert!(r.error_reason().contains("529 overloaded"), "{}", r.error_reason());
        assert!(parse_result("{\"type\": \"assistant\"}").is_none());
    }

    #[test]
    fn api_errors_as_the_cli_reports_them() {
        // The shape Claude Code 2.1 prints after a 529 (retries disabled) and after a 401.
        let overloaded = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":529,"num_turns":1,"result":"API Error: 529 Overloaded. This is a server-side issue, usually temporary.","stop_reason":"stop_sequence","session_id":"s","total_cost_usd":0,"permission_denials":[],"terminal_reason":"completed"}"#;
        let r = parse_result(overloaded).expect("found");
        assert_eq!(r.api_error_status, Some(529));
        assert_eq!(
            r.error_reason(),
            "Claude Code stopped with an error (API status 529): API Error: 529 Overloaded. This is a server-side issue, usually temporary."
        );
        let auth = r#"{"type":"result","subtype":"success","is_error":true,"api_error_status":401,"result":"Invalid API key · Fix external API key","terminal_reason":"completed"}"#;
        assert_eq!(
            parse_result(auth).expect("found").error_reason(),
            "Claude Code stopped with an error (API status 401): Invalid API key · Fix external API key"
        );
        let turns = r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":3}"#;
        assert_eq!(
            parse_result(turns).expect("found").error_reason(),
            "Claude Code stopped with an error (error_max_turns)"
        );
    }
}
