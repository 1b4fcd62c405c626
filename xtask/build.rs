//! Puts the commit into `--version` (`xtask 0.1.0 (abc1234)`): `git rev-parse --short HEAD`,
//! or the package version alone outside a git checkout. Reruns only when HEAD or the branch it
//! names moves, so an ordinary build never runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(dir).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = git(&dir, &["rev-parse", "--short", "HEAD"]);
    if commit.is_some() {
        // HEAD, the branch it names (loose, or packed), resolved for linked worktrees too.
        let mut watch = vec![git(&dir, &["rev-parse", "--git-path", "HEAD"])];
        if let Some(branch) = git(&dir, &["symbolic-ref", "-q", "HEAD"]) {
            watch.push(git(&dir, &["rev-parse", "--git-path", &branch]));
        }
        watch.push(git(&dir, &["rev-parse", "--git-path", "packed-refs"]));
        for path in watch.into_iter().flatten() {
            let path = dir.join(path);
            // A watched file that does not exist would make cargo rerun this on every build.
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let full = match commit {
        Some(c) => format!("{version} ({c})"),
        None => version,
    };
    println!("cargo:rustc-env=XTASK_VERSION={full}");
}
