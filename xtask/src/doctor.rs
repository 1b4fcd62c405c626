//! `doctor`: runs `postflight::doctor`'s checks and prints one line per check (or JSON), each
//! problem with its fix; exit 0 when every check holds, 1 otherwise.

use std::io::Write;
use std::process::ExitCode;

use postflight::doctor::{self, Level};
use postflight::Context;

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Print `{"ok": bool, "checks": [{name, ok, level, detail, fix}]}` instead of text
    #[arg(long)]
    json: bool,
}

impl DoctorArgs {
    pub fn json(&self) -> bool {
        self.json
    }

    pub fn run(self, ctx: &Context, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
        let opts = doctor::Options { version: format!("xtask {}", env!("XTASK_VERSION")) };
        let checks = doctor::run(ctx, &opts);
        let ok = doctor::all_ok(&checks);
        if self.json {
            let value = serde_json::json!({ "ok": ok, "checks": checks });
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        } else {
            for c in &checks {
                let level = match c.level {
                    Level::Ok => "ok",
                    Level::Warn => "warn",
                    Level::Fail => "FAIL",
                };
                writeln!(out, "{level:<4}  {:<17}  {}", c.name, c.detail)?;
                if let Some(fix) = &c.fix {
                    writeln!(out, "      {:<17}  fix: {fix}", "")?;
                }
            }
            let failed = checks.iter().filter(|c| !c.ok).count();
            let warned = checks.iter().filter(|c| c.level == Level::Warn).count();
            writeln!(out, "doctor: {failed} failed, {warned} warning(s), {} checks", checks.len())?;
        }
        Ok(ExitCode::from(if ok { crate::EXIT_OK } else { crate::EXIT_INTERNAL }))
    }
}
