//! Plan files: any bytes either parse and print back byte for byte, or are refused because they
//! are not UTF-8; the phases, progress and resume point agree; setting the header status
//! changes at most the header's status line, never a phase.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use postflight::ledger::plan::{PlanFile, ResumePoint};
use postflight::ledger::status::Status;

const STATUSES: [Status; 5] =
    [Status::Implementing, Status::Partial, Status::Completed, Status::Planned, Status::Blocked];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else { return };
    let Ok(mut plan) = PlanFile::parse(Path::new("plans/implementation-001.md"), text) else {
        assert!(std::str::from_utf8(text).is_err(), "only non-UTF-8 input is refused");
        return;
    };
    assert_eq!(plan.to_text().as_bytes(), text, "parsing is lossless");
    let phases = plan.phases();
    for (k, p) in phases.iter().enumerate() {
        assert_eq!(p.position, k + 1);
        assert!(k == 0 || phases[k - 1].line < p.line);
    }
    let (done, total) = plan.progress();
    assert!(done <= total && total == phases.len());
    match plan.resume_point() {
        ResumePoint::NoPhases => assert_eq!(total, 0),
        ResumePoint::AllDone => assert!(total > 0 && done == total),
        ResumePoint::At { position, .. } => {
            assert!(position >= 1 && position <= total && done < total);
            assert!(!phases[position - 1].is_done() && phases[..position - 1].iter().all(|p| p.is_done()));
        }
    }

    let status = &STATUSES[usize::from(selector) % STATUSES.len()];
    let header = plan.header_status();
    let before: Vec<String> = plan.doc.lines().map(str::to_owned).collect();
    let changed = plan.set_header_status(status);
    let after: Vec<String> = plan.doc.lines().map(str::to_owned).collect();
    assert_eq!(changed, header.is_some());
    assert_eq!(before.len(), after.len(), "a header edit never adds or removes lines");
    let differing: Vec<usize> = (0..before.len()).filter(|&i| before[i] != after[i]).collect();
    match header {
        Some((line, _)) => {
            assert!(differing.iter().all(|&i| i == line), "only the header status line changed");
            assert_eq!(plan.header_status(), Some((line, status.marker())));
        }
        None => assert!(differing.is_empty()),
    }
    assert_eq!(plan.phases(), phases, "the phases are untouched");
});
