//! What the work tree looked like when a run began, and what changed since: the files that
//! already had uncommitted changes (the user's, named when they end up in the task's commit),
//! the plan's `**Files to modify**:` paths (committed when they changed), and, after the final
//! commit, the files the run changed but did not commit (named in a warning).
//!
//! Kept in the task directory (`.postflight-baseline`, transient) so that a run resumed after a
//! crash compares with the state its predecessor started from, not with its own start.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::Result;
use crate::git::{Stamp, WorkTreeState};
use crate::ledger::plan::PlanFile;
use crate::workflow::preflight::TaskRef;

pub use crate::run::BASELINE_FILE;

/// The work tree at the start of the run.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// The dirty files then (`None`: git status could not be read).
    pub state: Option<WorkTreeState>,
    /// Each path the plan lists to modify, with how it looked then.
    pub plan_files: Vec<(String, Stamp)>,
}

impl Baseline {
    /// The baseline of a run of `task`: the saved one when `resumed` and one was saved, else
    /// the work tree's `status` (read just before; read now when `None`), saved. A status that
    /// cannot be read is a warning, never a stop.
    pub fn start(
        root: &Path,
        task: &TaskRef,
        resumed: bool,
        status: Option<Result<WorkTreeState>>,
        warnings: &mut Vec<String>,
    ) -> Baseline {
        let path = task.dir.join(BASELINE_FILE);
        if resumed {
            if let Some(b) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).and_then(from_json)
            {
                return b;
            }
        }
        let state = match status.unwrap_or_else(|| WorkTreeState::read(root)) {
            Ok(s) => Some(s),
            Err(e) => {
                warnings.push(format!(
                    "cannot read the work tree's status ({e}); files the run leaves uncommitted are not reported"
                ));
                None
            }
        };
        let plan_files = PlanFile::load(&root.join(&task.plan_rel))
            .map(|p| p.files_to_modify())
            .unwrap_or_default()
            .into_iter()
            .filter(|p| crate::workflow::postflight::safe_artifact_path(root, p))
            .map(|p| {
                let stamp = Stamp::of(&root.join(&p));
                (p, stamp)
            })
            .collect();
        let baseline = Baseline { state, plan_files };
        if let Err(e) = baseline.save(&path) {
            warnings.push(format!("cannot save the run's baseline ({e}); a resumed run compares with its own start"));
        }
        baseline
    }

    /// The baseline a run of `task` saved (`xtask preflight` saves one for `xtask postflight`).
    pub fn load(task: &TaskRef) -> Option<Baseline> {
        std::fs::read(task.dir.join(BASELINE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .and_then(from_json)
    }

    fn save(&self, path: &Path) -> Result<()> {
        let plan: Vec<Value> = self.plan_files.iter().map(|(p, s)| json!([p, s.to_json()])).collect();
        let value = json!({"dirty": self.state.as_ref().map(WorkTreeState::to_json), "plan_files": plan});
        crate::atomic::write_unsynced(path, &crate::ledger::json::to_jq_pretty(&value))
    }

    /// The plan-listed paths that changed since the run began (created, edited or deleted).
    pub fn plan_files_changed(&self, root: &Path) -> Vec<String> {
        self.plan_files.iter().filter(|(p, stamp)| Stamp::of(&root.join(p)) != *stamp).map(|(p, _)| p.clone()).collect()
    }

    /// Whether `path` had uncommitted changes when the run began.
    pub fn was_dirty(&self, path: &str) -> bool {
        self.state.as_ref().is_some_and(|s| s.is_dirty(path))
    }
}

fn from_json(v: Value) -> Option<Baseline> {
    let state = match v.get("dirty")? {
        Value::Null => None,
        d => Some(WorkTreeState::from_json(d)?),
    };
    let plan_files = v
        .get("plan_files")?
        .as_array()?
        .iter()
        .map(|e| Some((e.get(0)?.as_str()?.to_owned(), Stamp::from_json(e.get(1)?)?)))
        .collect::<Option<Vec<_>>>()?;
    Some(Baseline { state, plan_files })
}

/// Watches the work tree between invocations: did the last one change a file of the task or
/// complete a phase?
#[derive(Debug)]
pub struct ProgressWatch {
    seen: Option<WorkTreeState>,
    phases_done: u64,
}

impl ProgressWatch {
    /// Starts from the baseline's state and the plan's phases done now; `written` are the
    /// files preflight wrote after the baseline's status was read (the plan's header), whose
    /// change is bookkeeping, not the agent's progress.
    pub fn new(baseline: &Baseline, phases_done: u64, root: &Path, written: &[&str]) -> ProgressWatch {
        let mut seen = baseline.state.clone();
        if let Some(seen) = &mut seen {
            for path in written.iter().filter(|p| !p.is_empty()) {
                seen.note(root, path);
            }
        }
        ProgressWatch { seen, phases_done }
    }

    /// Whether the invocation that just ended made progress: a phase newly completed, or a
    /// change to a file for which `belongs` holds. When the work tree cannot be read it counts
    /// as progress (the loop is never stopped on a guess).
    pub fn advanced(&mut self, root: &Path, phases_done: u64, belongs: impl Fn(&str) -> bool) -> bool {
        let phase = phases_done > self.phases_done;
        self.phases_done = self.phases_done.max(phases_done);
        let Ok(now) = WorkTreeState::read(root) else { return true };
        let file = match &self.seen {
            Some(seen) => seen.changed_until(&now).iter().any(|p| belongs(p)),
            None => true,
        };
        self.seen = Some(now);
        phase || file
    }
}
