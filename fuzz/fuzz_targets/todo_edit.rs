//! TODO.md edits change only their own lines: on a random TODO.md and a random task,
//! `set_status` changes at most the task's status line (or inserts one under its heading),
//! `set_bullet` only lines inside the task's block, `set_next_project_number` one frontmatter
//! line; each reads back what it wrote, or reports an error and changes nothing. And a task's
//! commit share (`scope_todo`) of a TODO.md edited for two tasks is exactly its own edit.
//!
//! Input: a selector byte for the task, one for the status, then the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use postflight::ledger::scope::scope_todo;
use postflight::ledger::status::Status;
use postflight::ledger::todo::TodoFile;

const STATUSES: [Status; 5] =
    [Status::Implementing, Status::Completed, Status::Partial, Status::Planned, Status::Blocked];
const PATH: &str = "specs/TODO.md";

fn lines(t: &TodoFile) -> Vec<String> {
    t.doc.lines().map(str::to_owned).collect()
}

fuzz_target!(|data: &[u8]| {
    let [task_sel, status_sel, text @ ..] = data else { return };
    let Ok(head) = TodoFile::parse(Path::new(PATH), text) else { return };
    let headings = head.headings();
    let n = match headings.get(usize::from(*task_sel) % (headings.len() + 1)) {
        Some((_, n)) => *n,
        None => u32::from(*task_sel),
    };
    let status = &STATUSES[usize::from(*status_sel) % STATUSES.len()];
    let before = lines(&head);

    // set_status: one line, or one inserted line, inside the block.
    let mut t = head.clone();
    match (head.block(n), t.set_status(n, status)) {
        (Ok(None), Ok(false)) => assert_eq!(t.to_text(), head.to_text(), "no entry: nothing changed"),
        (Ok(Some(block)), Ok(true)) => {
            let after = lines(&t);
            match head.status(n).expect("unique") {
                Some(sl) => {
                    assert_eq!(after.len(), before.len());
                    for i in 0..before.len() {
                        assert!(i == sl.line || before[i] == after[i], "line {i} changed");
                    }
                }
                None => {
                    let at = block.start + 1;
                    assert_eq!(after.len(), before.len() + 1);
                    assert_eq!(&after[..at], &before[..at]);
                    assert_eq!(&after[at + 1..], &before[at..]);
                }
            }
            assert_eq!(t.status(n).expect("unique").expect("a status line").marker, status.marker(), "reads back");
            assert_eq!(t.block(n).expect("unique").expect("block").start, block.start);
        }
        (Err(_), Err(_)) => assert_eq!(t.to_text(), head.to_text(), "an error changes nothing"),
        (b, r) => panic!("block {b:?} but set_status {r:?}"),
    }

    // set_bullet: only lines inside the block; one Summary bullet afterwards.
    let value = format!("[s{task_sel}.md](specs/{n}_x/summaries/s{status_sel}.md)");
    let mut t = head.clone();
    match (head.block(n), t.set_bullet(n, "Summary", &value)) {
        (Ok(Some(block)), Ok(true)) => {
            let after = lines(&t);
            let tail = before.len() - block.end;
            assert_eq!(&after[..block.start], &before[..block.start], "lines before the block");
            assert_eq!(&after[after.len() - tail..], &before[block.end..], "lines after the block");
            assert_eq!(t.bullet(n, "Summary").expect("unique").map(|(_, v)| v), Some(value.clone()));
            let new_block = t.block(n).expect("unique").expect("block");
            let count = (new_block.start..new_block.end)
                .filter(|&i| t.doc.line(i).trim_start().starts_with("- **Summary**:"))
                .count();
            assert_eq!(count, 1, "one Summary bullet");
        }
        (Ok(None), Ok(false)) | (Err(_), Err(_)) => assert_eq!(t.to_text(), head.to_text()),
        (b, r) => panic!("block {b:?} but set_bullet {r:?}"),
    }

    // set_next_project_number: one frontmatter line.
    let mut t = head.clone();
    let number = u64::from(n) + 1;
    if t.set_next_project_number(number) {
        let after = lines(&t);
        let (line, _) = head.next_project_number().expect("had one");
        assert_eq!(after.len(), before.len());
        assert!((0..before.len()).all(|i| i == line || before[i] == after[i]));
        assert_eq!(t.next_project_number(), Some((line, number)));
    } else {
        assert!(head.next_project_number().is_none());
        assert_eq!(t.to_text(), head.to_text());
    }

    // A commit's share: the working tree holds task n's edit and another task's; the scoped
    // file is HEAD plus task n's edit only.
    let Ok(Some(_)) = head.block(n) else { return };
    let other = headings.iter().map(|(_, m)| *m).find(|m| *m != n && matches!(head.block(*m), Ok(Some(_))));
    let mut mine = head.clone();
    mine.set_status(n, status).expect("unique");
    // A working tree with task n's edit alone is its own share (the shortcut that does not
    // parse HEAD).
    let alone = scope_todo(Path::new(PATH), head.to_text().as_bytes(), mine.to_text().as_bytes(), n)
        .expect("both versions parse");
    assert_eq!(String::from_utf8(alone).expect("UTF-8"), mine.to_text(), "task {n}'s edit alone");
    let mut worktree = mine.clone();
    if let Some(m) = other {
        worktree.set_status(m, &Status::Abandoned).expect("unique");
    }
    let scoped = scope_todo(Path::new(PATH), head.to_text().as_bytes(), worktree.to_text().as_bytes(), n)
        .expect("both versions parse");
    assert_eq!(String::from_utf8(scoped).expect("UTF-8"), mine.to_text(), "the share is task {n}'s edit only");
});
