//! The agent's metadata file and the artifact paths it names: any bytes are either refused
//! or read into a status, a non-empty reason and artifacts; a path accepted for linking and
//! committing is relative, stays inside the repository (also through symlinks), is not in
//! `.git`, not a transient file and has no NUL byte.
#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use postflight::workflow::metadata;
use postflight::workflow::postflight::safe_artifact_path;

/// A repository root with `.git`, `src/`, a symlink out of it and one inside it.
fn root() -> &'static Path {
    static ROOT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &ROOT
        .get_or_init(|| {
            let outer = tempfile::tempdir().expect("tmp");
            let root = outer.path().join("repo");
            for d in [".git/objects", "src/deep", "specs/1_x/summaries", "outside"] {
                let p = if d == "outside" { outer.path().join(d) } else { root.join(d) };
                std::fs::create_dir_all(p).expect("mkdir");
            }
            std::os::unix::fs::symlink(outer.path().join("outside"), root.join("out")).expect("symlink");
            std::os::unix::fs::symlink(root.join("src"), root.join("in")).expect("symlink");
            std::os::unix::fs::symlink(root.join(".git"), root.join("g")).expect("symlink");
            let root = std::fs::canonicalize(&root).expect("canonical");
            (outer, root)
        })
        .1
}

fn check_path(path: &str) {
    let root = root();
    if !safe_artifact_path(root, path) {
        return;
    }
    let p = Path::new(path);
    assert!(!p.is_absolute(), "{path:?}");
    assert!(!path.contains('\0'), "{path:?} has a NUL byte");
    assert!(p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)), "{path:?}");
    assert!(p.components().find(|c| matches!(c, Component::Normal(_))).is_some_and(|c| c.as_os_str() != ".git"));
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert!(name != ".return-meta.json" && !name.starts_with(".postflight-"), "{path:?}");
    let mut probe = root.join(p);
    while std::fs::symlink_metadata(&probe).is_err() {
        assert!(probe.pop(), "{path:?}");
    }
    let real = std::fs::canonicalize(&probe).expect("exists");
    assert!(real.starts_with(root) && !real.starts_with(root.join(".git")), "{path:?} resolves to {real:?}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_path(text);
        let _ = metadata::stdout_looks_like_json(text);
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(meta) = metadata::parse(&value) else {
        assert!(value.get("status").and_then(|s| s.as_str()).is_none(), "a status string is always read");
        return;
    };
    assert!(!meta.reason().trim().is_empty(), "a reason is always given");
    for a in &meta.artifacts {
        assert!(!a.kind.is_empty());
        check_path(&a.path);
    }
    if let Some(s) = meta.summary_artifact() {
        assert_eq!(s.kind, "summary");
    }
});
