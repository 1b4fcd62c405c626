//! The language scope of a commit (seed §8.1, fixed per D7): the files under the configured
//! directories that changed while the run went on, never the whole directory. Tracked by
//! size and modification time, taken before the agent starts and compared at each commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

/// The files under the scope directories: repository-relative path -> (size, mtime).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    files: BTreeMap<String, (u64, Option<SystemTime>)>,
}

/// Records every file under `dirs` (repository-relative; missing ones are empty).
pub fn snapshot(root: &Path, dirs: &[String]) -> Snapshot {
    let mut files = BTreeMap::new();
    for d in dirs {
        let d = d.trim_end_matches('/');
        if d.is_empty() || d.contains("..") {
            continue;
        }
        walk(root, &root.join(d), &mut files);
    }
    Snapshot { files }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u64, Option<SystemTime>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let p = e.path();
        if ft.is_dir() {
            if e.file_name() != ".git" {
                walk(root, &p, out);
            }
        } else if let Ok(meta) = std::fs::symlink_metadata(&p) {
            let rel = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            out.insert(rel, (meta.len(), meta.modified().ok()));
        }
    }
}

/// The files under `dirs` created, modified or deleted since `before`.
pub fn changed(before: &Snapshot, root: &Path, dirs: &[String]) -> Vec<String> {
    if dirs.is_empty() {
        return Vec::new();
    }
    let now = snapshot(root, dirs);
    let mut out: Vec<String> =
        now.files.iter().filter(|(p, v)| before.files.get(*p) != Some(v)).map(|(p, _)| p.clone()).collect();
    out.extend(before.files.keys().filter(|p| !now.files.contains_key(*p)).cloned());
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_changed_during_the_run_are_in_scope() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        std::fs::create_dir_all(root.join("docs/sub")).expect("mkdir");
        std::fs::write(root.join("docs/old.md"), "old").expect("w");
        std::fs::write(root.join("docs/gone.md"), "x").expect("w");
        std::fs::write(root.join("other.md"), "x").expect("w");
        let dirs = vec!["docs/".to_owned()];
        let before = snapshot(root, &dirs);
        std::fs::write(root.join("docs/sub/new.md"), "new").expect("w");
        std::fs::write(root.join("docs/old.md"), "changed!").expect("w");
        std::fs::remove_file(root.join("docs/gone.md")).expect("rm");
        std::fs::write(root.join("other.md"), "changed").expect("w");
        assert_eq!(changed(&before, root, &dirs), ["docs/gone.md", "docs/old.md", "docs/sub/new.md"]);
    }
}
