//! Guards that hold the workflow's line when an LLM session drives it: the Claude Code stop
//! hook ([`stop_hook`]), the ledger consistency check behind the pre-commit hook ([`check`]) and
//! the installation of both hooks ([`install`]); [`scan`] is the stop hook's fast read of state.json,
//! [`check_cache`] the check's result cache and [`state_view`] its read of state.json.

pub mod check;
pub mod check_cache;
pub mod install;
pub mod report;
/// The marker index moved to [`crate::run::index`]; this path stays for compatibility.
pub use crate::run::index as marker_index;
pub mod scan;
pub mod state_view;
pub mod stop_hook;
