//! Turns the paths a caller gives into repository-relative, `/`-separated paths, refusing any
//! that lie outside the work tree, inside `.git`, or behind a symbolic link (git cannot track a
//! path below a link, and following one may leave the repository). It never touches a file.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Whether a file name is one of postflight's transient files, which are never committed
/// (`.return-meta.json`, `.postflight-*`, and `.<name>.<6 random>.tmp`, the temp file of an
/// atomic write that a killed writer can leave beside a plan or summary).
pub fn is_transient(name: &str) -> bool {
    name == ".return-meta.json" || name.starts_with(".postflight-") || is_atomic_temp(name)
}

/// The gitignore patterns of the transient files ([`is_transient`]), written to the
/// repository's `info/exclude` so that a run leaves nothing in `git status` even where
/// `xtask init` never added them to `.gitignore`.
pub const TRANSIENT_PATTERNS: [&str; 3] = [".return-meta.json", ".postflight-*", ".*.??????.tmp"];

/// Adds the [`TRANSIENT_PATTERNS`] missing from `<common git dir>/info/exclude` (the file git
/// reads for every work tree of the repository, never committed). Returns whether it wrote.
///
/// # Errors
/// I/O errors.
pub fn exclude_transient(repo: &crate::repo::Repo) -> Result<bool> {
    let path = repo.common_dir().join("info").join("exclude");
    let old = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let text = String::from_utf8_lossy(&old);
    let missing: Vec<&str> =
        TRANSIENT_PATTERNS.iter().copied().filter(|p| !text.lines().any(|l| l.trim() == *p)).collect();
    if missing.is_empty() {
        return Ok(false);
    }
    let mut new = old.clone();
    if !new.is_empty() && !new.ends_with(b"\n") {
        new.push(b'\n');
    }
    new.extend_from_slice(b"# postflight transient files (never committed)\n");
    for p in missing {
        new.extend_from_slice(p.as_bytes());
        new.push(b'\n');
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    crate::atomic::write(&path, &new)?;
    Ok(true)
}

/// `.<name>.<6 letters or digits>.tmp`, as [`crate::atomic::stage`] names its temp files.
fn is_atomic_temp(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else { return false };
    match inner.rsplit_once('.') {
        Some((base, random)) => {
            !base.is_empty() && random.len() == 6 && random.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

/// The repository-relative form of `given` (relative paths are taken from `root`): empty for
/// the root itself.
///
/// # Errors
/// A refusal when the path is empty, lies outside `root`, names `.git` or anything below it,
/// or passes through a symbolic link.
pub(crate) fn resolve(root: &Path, given: &Path) -> Result<String> {
    let shown = given.display().to_string();
    if given.as_os_str().is_empty() {
        return Err(Error::refused("an empty path was given", None));
    }
    let joined = if given.is_absolute() { given.to_path_buf() } else { root.join(given) };
    let normal = normalize(&joined);
    let rel = match normal.strip_prefix(root) {
        Ok(rel) => rel.to_path_buf(),
        // An absolute path may reach the work tree through links above it (`/tmp` -> `/private/tmp`).
        Err(_) => canonical_parent_relative(root, &normal).ok_or_else(|| {
            Error::refused(
                format!("`{shown}` is outside the repository {}", root.display()),
                Some("give paths inside the work tree, relative to its root"),
            )
        })?,
    };
    let mut parts = Vec::new();
    for c in rel.components() {
        let Component::Normal(name) = c else { continue };
        let name = name.to_str().ok_or_else(|| Error::refused(format!("`{shown}` is not valid UTF-8"), None))?;
        if name.eq_ignore_ascii_case(".git") {
            return Err(Error::refused(format!("`{shown}` is inside .git; git's own files are never committed"), None));
        }
        parts.push(name);
    }
    // Every leading component must be a real directory, not a link (git says "beyond a symbolic link").
    let mut dir = root.to_path_buf();
    for (i, name) in parts.iter().enumerate().take(parts.len().saturating_sub(1)) {
        dir.push(name);
        match std::fs::symlink_metadata(&dir) {
            Ok(md) if md.file_type().is_symlink() => {
                let link = parts[..=i].join("/");
                let target = std::fs::read_link(&dir).map(|t| t.display().to_string()).unwrap_or_default();
                let leaves = std::fs::canonicalize(&dir).map(|t| !t.starts_with(root)).unwrap_or(true);
                return Err(Error::refused(
                    format!(
                        "`{shown}` is reached through the symbolic link `{link}` (-> {target}){}",
                        if leaves { ", which leaves the repository" } else { "" }
                    ),
                    Some("commit the link itself, or the path it points to inside the repository"),
                ));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(parts.join("/"))
}

/// `path` with `.` removed and `..` applied lexically (as git normalises pathspecs).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to `root` after canonicalising its deepest existing parent directory.
fn canonical_parent_relative(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut existing = path.parent()?;
    let mut rest = vec![path.file_name()?];
    while std::fs::symlink_metadata(existing).is_err() {
        rest.push(existing.file_name()?);
        existing = existing.parent()?;
    }
    let mut canonical = std::fs::canonicalize(existing).ok()?;
    for name in rest.iter().rev() {
        canonical.push(name);
    }
    canonical.strip_prefix(root).ok().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_absolute_and_dotted_paths() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = std::fs::canonicalize(tmp.path()).expect("canon");
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        assert_eq!(resolve(&root, Path::new("a/b/c.txt")).expect("ok"), "a/b/c.txt");
        assert_eq!(resolve(&root, Path::new("./a/../a/b/")).expect("ok"), "a/b");
        assert_eq!(resolve(&root, &root.join("a")).expect("ok"), "a");
        assert_eq!(resolve(&root, Path::new(".")).expect("ok"), "");
        assert_eq!(resolve(&root, Path::new("new/dir/file")).expect("ok"), "new/dir/file");
    }

    #[test]
    fn outside_git_dir_and_links_are_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = std::fs::canonicalize(tmp.path()).expect("canon").join("repo");
        std::fs::create_dir_all(root.join("inside")).expect("mkdir");
        std::fs::create_dir_all(root.parent().expect("p").join("outside")).expect("mkdir");
        std::os::unix::fs::symlink("../outside", root.join("out")).expect("link");
        std::os::unix::fs::symlink("inside", root.join("in")).expect("link");
        for (p, want) in [
            ("../x", "outside the repository"),
            ("a/../../x", "outside the repository"),
            (".git/config", "inside .git"),
            ("sub/.GIT/x", "inside .git"),
            ("out/file", "which leaves the repository"),
            ("in/file", "symbolic link `in`"),
        ] {
            let err = resolve(&root, Path::new(p)).expect_err(p).to_string();
            assert!(err.contains(want), "{p}: {err}");
        }
        // The link itself is a path like any other.
        assert_eq!(resolve(&root, Path::new("out")).expect("ok"), "out");
        assert!(resolve(&root, Path::new("/etc/passwd")).is_err());
    }

    #[test]
    fn transient_names() {
        assert!(is_transient(".return-meta.json"));
        assert!(is_transient(".postflight-pending"));
        assert!(!is_transient("return-meta.json"));
        // Temp files of atomic writes killed before their rename.
        assert!(is_transient(".implementation-001.md.PMlLU8.tmp"));
        assert!(is_transient(".state.json.abc123.tmp"));
        for name in
            ["implementation-001.md.PMlLU8.tmp", ".x.tmp", "..abc123.tmp", ".notes.abc12.tmp", ".a.b.c-d_ef.tmp"]
        {
            assert!(!is_transient(name), "{name}");
        }
    }

    #[test]
    fn a_temp_file_of_a_real_atomic_write_is_transient() {
        let tmp = tempfile::tempdir().expect("tmp");
        let target = tmp.path().join("implementation-001.md");
        let staged = crate::atomic::stage(&target, b"x").expect("stage");
        let names: Vec<String> = std::fs::read_dir(tmp.path())
            .expect("ls")
            .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(is_transient(&names[0]), "{names:?}");
        drop(staged);
    }
}
