//! The marker moved to [`crate::run`], below both the workflow and the guards; this path stays
//! for compatibility.

pub use crate::run::*;
