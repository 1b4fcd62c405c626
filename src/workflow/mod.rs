//! The implement workflow, stage by stage (seed 004, reference §8): preflight (validate, move
//! the three files to implementing, marker), the agent loop, postflight (record the outcome,
//! link artifacts), the task-scoped commit and cleanup.

pub mod marker;
