//! postflight: deterministic bookkeeping for AI-agent "implement" runs.
//!
//! Data flows one way: the CLI (`xtask`) builds a [`Context`] and calls one function here;
//! workflow stages edit the [`ledger`] files and commit through [`git`].
//!
//! - [`ledger`]: `specs/state.json` (reference §2), `specs/TODO.md` (§3) and plan files (§4),
//!   read and written together under one lock, atomically, preserving what they do not own.
//! - [`tasks`]: `init`, `task new`, `set-status`, the `status` report and `next`.
//! - [`plan_new`]: `plan new`: the next plan version, written with the status move and the links.
//! - [`guard`]: the Claude Code stop hook, the ledger consistency check and hook installation.
//! - [`doctor`]: the setup checks of `xtask doctor`, each with its fix.
//! - [`agent`]: the agent adapters (a shell command, Claude Code, the Codex CLI) and the process
//!   that runs one.
//! - [`query`]: jq filters over the ledger (jaq), printed as jq 1.6 prints them.
//! - [`sys`]: process liveness (pid and start time), process-group signals, interrupt handlers.
//! - [`run`]: a run's files (the marker, counters, logs) and the marker index.
//! - [`merge`]: the ledger's git merge driver (per task), its setup, `task renumber`.
//! - [`context`]: repository, clock (`XTASK_NOW`) and session id (`XTASK_SESSION_ID`).
//!
//! The reference is `../shared/spec/reference-formats.md` (seen from the project root).

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

// Unix only: agents run in process groups that are stopped with signals, liveness is read by
// pid and start time, and file writes rely on POSIX rename and flock semantics.
#[cfg(not(unix))]
compile_error!("postflight supports Unix only (Linux and macOS): it needs process groups, signals and flock");

pub mod agent;
pub mod atomic;
pub mod config;
pub mod context;
pub mod doctor;
pub mod error;
pub mod fingerprint;
pub mod format;
pub mod git;
pub mod guard;
pub mod ledger;
pub mod merge;
pub mod plan_new;
pub mod query;
pub mod repo;
pub mod run;
#[allow(unsafe_code)]
pub mod sys;
pub mod task_id;
pub mod tasks;
#[cfg(test)]
mod tidy;
pub mod workflow;

pub use context::Context;
pub use error::{Error, Kind, Result};
pub use task_id::TaskId;
