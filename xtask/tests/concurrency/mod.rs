//! Concurrency: the ledger under concurrent and killed writers, and eight `xtask implement`
//! runs at once in one working tree.

/// Eight implement runs on eight tasks at once: every commit holds only its own task's share.
mod implement;
/// Concurrent ledger writers (processes and library writers), and writers killed with SIGKILL.
mod ledger;
