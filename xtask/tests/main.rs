//! The integration tests of `xtask`, as one test binary (one link of the library and gix
//! instead of one per file). Each module is a behaviour; `support` is the helper layer
//! (temporary repositories, the hermetic command, rendering).
//!
//! A new test file is added as a module here (for example `mod validation;`): with
//! `autotests = false` cargo no longer finds it by itself, and `no_forgotten_test_files` fails
//! until it is declared.

mod support;

/// Bad input is refused (exit 2) naming file, line and task, and changes no file; the catalogue.
mod bad_input;
/// End to end with the real Claude Code CLI against a scripted API.
mod claude_e2e;
/// End to end with the real Codex CLI against a scripted Responses API.
mod codex_e2e;
/// `xtask commit` against the git CLI: same tree and status, task-scoped ledger files, hooks.
mod commit;
/// Concurrent and killed ledger writers; eight implement runs at once.
mod concurrency;
/// `xtask implement` runs killed with SIGKILL at random moments, then run to completion.
mod crash;
/// `implement|status|check <PATH>`: spec directories (seed 003, Kiro, Spec Kit) and phase documents.
mod formats;
/// `hook stop`, `check` and `hooks install`; `check` over every real fixture pair.
mod guard;
/// `xtask implement` end to end with the scripted agent: every outcome.
mod implement;
/// The ledger layer on real and synthetic ledgers, byte-identical to jq 1.6.
mod ledger_fixtures;
/// The ledger merge driver through real `git merge`: the corpus, with and without the driver; `task renumber`.
mod merge_driver;
/// `handoff/payload.json` (seeds 000 and 001): stage 5 and 4 runs, retry then blocked, intake
/// blocks, resume, the append-only check and hook, the sample payloads.
mod payload;
/// `xtask query` against jq 1.6.
mod query;
/// `init`, `task new`, `status`, `set-status`.
mod tasks;
/// The validation gate: commands run by postflight, the evidence, `verify`, phantom completions.
mod validation;
/// Worktree runs: `implement --jobs K`, landing, conflicts and `land`, cleanup, many clones pushing.
mod worktree;

/// Every `.rs` file under `tests/` is declared as a module (jj's forgotten-file check): a file
/// that is not would never be compiled or run.
#[test]
fn no_forgotten_test_files() {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut forgotten = Vec::new();
    let mut dirs = vec![tests.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("tests/ is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "fixtures") {
                    dirs.push(path);
                }
                continue;
            }
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
            if path.extension().is_none_or(|e| e != "rs") || path == tests.join("main.rs") {
                continue;
            }
            // A module is declared in its parent: main.rs for tests/x.rs and tests/x/mod.rs,
            // tests/x/mod.rs for tests/x/y.rs.
            let (parent, name) = if stem == "mod" {
                let name = dir.file_name().and_then(|n| n.to_str()).expect("a directory name").to_owned();
                let up = dir.parent().expect("inside tests/");
                let parent = if up == tests { tests.join("main.rs") } else { up.join("mod.rs") };
                (parent, name)
            } else if dir == tests {
                (tests.join("main.rs"), stem.to_owned())
            } else {
                (dir.join("mod.rs"), stem.to_owned())
            };
            let text = std::fs::read_to_string(&parent).unwrap_or_default();
            let declared =
                text.lines().any(|l| l.trim() == format!("mod {name};") || l.trim() == format!("pub mod {name};"));
            if !declared {
                forgotten.push(format!("{} (declare `mod {name};` in {})", path.display(), parent.display()));
            }
        }
    }
    assert!(forgotten.is_empty(), "test files not declared as modules:\n{}", forgotten.join("\n"));
}
