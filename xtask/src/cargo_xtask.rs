//! `cargo-xtask`: lets cargo find postflight as `cargo xtask ...` in any repository (cargo runs
//! an executable named `cargo-<name>` on the PATH as `cargo <name>`, passing `<name>` as the
//! first argument). It drops that argument and runs the `xtask` installed beside it (else the
//! one on the PATH) with the rest, in place of itself, so exit codes and signals are xtask's.
//!
//! A repository with its own `cargo xtask` alias keeps it: cargo runs an alias before an
//! external subcommand (and says so with a warning; install with `--bin xtask` alone there).

use std::ffi::OsString;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "xtask") {
        args.remove(0);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(format!("xtask{}", std::env::consts::EXE_SUFFIX))))
        .filter(|p| p.is_file());
    let program: OsString = beside.map_or_else(|| "xtask".into(), OsString::from);
    let mut cmd = Command::new(&program);
    cmd.args(&args);
    {
        use std::os::unix::process::CommandExt;
        let err = cmd.exec();
        eprintln!("error: cannot run {}: {err}", program.to_string_lossy());
        eprintln!("hint: install postflight with `cargo install --locked --path xtask` from its repository");
        ExitCode::from(1)
    }
}
