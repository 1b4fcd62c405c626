//! The implement workflow, stage by stage (seed 004, reference §8): preflight (validate, move
//! the three files to implementing, marker), the agent loop, postflight (record the outcome,
//! link artifacts), the task-scoped commit and cleanup.

pub mod agent;
pub mod claude;
pub mod config;
pub mod demo;
pub mod marker;
pub mod metadata;
pub mod postflight;
pub mod preflight;
pub mod progress;
pub mod prompt;
pub mod scope;
