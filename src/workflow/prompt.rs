//! The prompt an agent receives on stdin: the task, the delegation context, where to resume,
//! and the metadata contract it must honour (docs/agent-protocol.md says the same for humans).

use serde_json::Value;

/// Builds the prompt for one invocation from its delegation context.
pub fn build(delegation: &Value, summary_path: &str) -> String {
    let s = |k: &str| delegation.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let task = &delegation["task_context"];
    let n = task["task_number"].as_u64().unwrap_or_default();
    let name = task["task_name"].as_str().unwrap_or_default();
    let description = task["description"].as_str().unwrap_or_default();
    let iteration = delegation["iteration"].as_u64().unwrap_or(1);
    let plan = s("plan_path");
    let meta = s("metadata_file_path");
    let session = s("session_id");
    let mut p = String::new();
    p.push_str(&format!("You are implementing task {n} ({name}) in this repository, following its plan.\n\n"));
    if !description.is_empty() {
        p.push_str(&format!("Task description: {description}\n\n"));
    }
    p.push_str(&format!("Plan: {plan}\n"));
    match delegation["resume_phase"].as_u64() {
        Some(phase) => p.push_str(&format!(
            "This is iteration {iteration}: earlier work stopped partway. Resume at phase {phase}; phases marked [COMPLETED] are done.\n"
        )),
        None => p.push_str("Start at the first phase that is not marked [COMPLETED].\n"),
    }
    if let Some(h) = delegation["handoff_path"].as_str() {
        p.push_str(&format!("Read the handoff from the previous iteration first: {h}\n"));
    }
    if let Some(f) = delegation.get("validation_failure").filter(|f| f.is_object()) {
        let command = f["command"].as_str().unwrap_or_default();
        let how = match f["exit_code"].as_i64() {
            Some(code) => format!("exited {code}"),
            None => "was killed (timeout)".to_owned(),
        };
        let tail = f["output_tail"].as_str().unwrap_or_default();
        p.push_str(&format!(
            "
You reported this task implemented, but its validation failed: postflight ran `{command}` in the
repository root and it {how}. Fix the implementation (not the check) so that the command passes,
then report implemented again; postflight runs the validation commands once more. The last lines
of its output (the whole output is in {}):
```
{tail}
```
",
            f["log"].as_str().unwrap_or("the validation log")
        ));
    }
    p.push_str(&format!(
        "
For each phase: mark its heading [IN PROGRESS], do the work, verify it, then mark it [COMPLETED]
(or [PARTIAL] / [BLOCKED]). Record what you did in the implementation summary
{summary_path} (create it on the first phase, append after).
Do not edit specs/state.json or specs/TODO.md and do not commit: postflight records the outcome
and commits the task's files for you. If you must stop early (context or time running out), write a
short handoff document under the task's handoffs/ directory and report partial.

Before you stop, write the metadata file {meta} as JSON:
{{
  \"status\": \"implemented\" | \"partial\" | \"failed\" | \"blocked\",
  \"summary\": \"2-5 sentences on what was done\",
  \"artifacts\": [
    {{\"type\": \"summary\", \"path\": \"{summary_path}\", \"summary\": \"one line\"}},
    {{\"type\": \"implementation\", \"path\": \"<every file you created or changed>\", \"summary\": \"one line\"}}
  ],
  \"metadata\": {{\"session_id\": \"{session}\", \"phases_completed\": <number>, \"phases_total\": <number>}},
  \"partial_progress\": {{\"phases_completed\": <number>, \"phases_total\": <number>, \"handoff_path\": \"<path or null>\", \"details\": \"what remains\"}},
  \"completion_data\": {{\"completion_summary\": \"1-3 sentences\", \"roadmap_items\": [], \"claudemd_suggestions\": \"none\"}},
  \"requires_user_review\": false,
  \"review_reason\": \"only for hard blockers a human must resolve\",
  \"errors\": [{{\"message\": \"...\", \"recoverable\": true}}]
}}
Use \"implemented\" only when every phase is done (never \"completed\"), with completion_data.
Use \"partial\" with partial_progress when phases remain, \"blocked\" or \"failed\" with errors otherwise.
Your final reply should be a few plain-text lines, not JSON.

Delegation context (also in the environment as XTASK_DELEGATION):
"
    ));
    p.push_str(&serde_json::to_string_pretty(delegation).unwrap_or_default());
    p.push('\n');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_failure_is_in_the_prompt() {
        let mut d = serde_json::json!({"task_context": {"task_number": 7}, "iteration": 2});
        assert!(!build(&d, "s.md").contains("validation failed"));
        d["validation_failure"] = serde_json::json!({
            "command": "cargo test", "exit_code": 101, "output_tail": "test x ... FAILED", "log": "specs/7_x/validation/a-1.log"
        });
        let p = build(&d, "s.md");
        assert!(p.contains("its validation failed: postflight ran `cargo test`"), "{p}");
        assert!(
            p.contains("it exited 101")
                && p.contains("test x ... FAILED")
                && p.contains("specs/7_x/validation/a-1.log")
        );
    }
}
