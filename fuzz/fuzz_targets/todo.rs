//! TODO.md parsing: any bytes either parse and print back byte for byte, or are refused because
//! they are not UTF-8; the read-only queries never panic and agree with each other.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use postflight::ledger::todo::TodoFile;

fuzz_target!(|data: &[u8]| {
    let Ok(todo) = TodoFile::parse(Path::new("specs/TODO.md"), data) else {
        assert!(std::str::from_utf8(data).is_err(), "only non-UTF-8 input is refused");
        return;
    };
    assert_eq!(todo.to_text().as_bytes(), data, "parsing is lossless");
    if let Some(range) = todo.frontmatter() {
        assert!(range.start == 1 && range.end < todo.doc.len());
    }
    if let Some((line, _)) = todo.next_project_number() {
        assert!(todo.frontmatter().is_some_and(|r| r.contains(&line)));
    }
    let headings = todo.headings();
    for (line, n) in &headings {
        let count = headings.iter().filter(|(_, m)| m == n).count();
        match todo.block(*n) {
            Ok(Some(block)) => {
                assert_eq!(count, 1, "a unique heading has a block");
                assert_eq!(block.start, *line);
                assert!(block.start < block.end && block.end <= todo.doc.len());
                if let Some(status) = todo.status(*n).expect("unique") {
                    assert!(block.contains(&status.line), "the status line is inside the block");
                }
                if let Some((i, _)) = todo.bullet(*n, "Summary").expect("unique") {
                    assert!(block.contains(&i));
                }
            }
            Ok(None) => panic!("task {n} has a heading but no block"),
            Err(_) => assert!(count > 1, "only a duplicated heading is an error"),
        }
        let _ = todo.title(*n);
    }
});
