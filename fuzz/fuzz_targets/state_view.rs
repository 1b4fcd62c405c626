//! The check's fast read of state.json (`guard::state_view`) agrees with `StateFile::parse`:
//! it accepts exactly the files `StateFile::parse` accepts, and reads the same numbers, slugs,
//! statuses, session ids, artifacts and `next_project_number` as the view of the parsed tree.
//!
//! Input: the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use postflight::guard::state_view::StateView;
use postflight::ledger::state::StateFile;

fuzz_target!(|data: &[u8]| {
    let fast = StateView::parse(data);
    let slow = StateFile::parse(Path::new("specs/state.json"), data.to_vec());
    match (fast, &slow) {
        (Some(fast), Ok(state)) => {
            let view = StateView::of(state).expect("the view of a parsed file");
            assert_eq!(fast.entries, view.entries);
            assert_eq!(fast.next_project_number, view.next_project_number);
        }
        (None, Err(_)) => {}
        (Some(_), Err(e)) => panic!("the view accepts what StateFile::parse refuses: {e}"),
        (None, Ok(_)) => panic!("the view refuses what StateFile::parse accepts"),
    }
});
