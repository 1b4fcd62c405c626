//! Value parsers shared by the command modules' clap types (so they never import `flags.rs`,
//! which imports them).

/// Parses a task number strictly (no leading zeros, no fractions).
pub fn task_number(s: &str) -> Result<u32, String> {
    postflight::tasks::parse_task_number(s).map_err(|e| match e.hint() {
        Some(hint) => format!("{e} ({hint})"),
        None => e.to_string(),
    })
}
