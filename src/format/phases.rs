//! Phase documents (seed 002, `phases/current/<plan>.md`; `../shared/spec/sibling-formats.md` B3):
//! `## Phase N: Title [MARKER]` (levels `##`–`####`) or a `**Status**: [MARKER]` line under the
//! heading (added when missing); a phase's validation commands are the code spans that open the
//! bullets of its `**Validation**:` / `**Verification**:` block (either colon placement, an inline
//! check after the colon too) whose expectation is empty, "passes", "succeeds" or "completes
//! successfully" and whose first word is a program on the PATH. The "Implementation status" note
//! is appended under the phase only when the run records it completed, which the queue does only
//! after the validation gate passed; a failed phase becomes `[PARTIAL]` (`[BLOCKED]` when blocked).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lines::{self, Lines};
use super::{Finding, Format, Item, Mark, Outcome, QueueOptions, Record};
use crate::error::{Error, Result};
use crate::git::{Scoped, Scoping};
use crate::task_id::TaskId;

/// A marker word's mark (`NOT STARTED`, `IN PROGRESS`, `PARTIAL`, `COMPLETED`, `BLOCKED - why`, ...).
fn mark_of(word: &str) -> Option<Mark> {
    let head = word.split(" - ").next().unwrap_or(word).trim().to_ascii_uppercase();
    Some(match head.as_str() {
        "NOT STARTED" => Mark::Pending,
        "IN PROGRESS" => Mark::InProgress,
        "PARTIAL" => Mark::Failed,
        "COMPLETED" => Mark::Completed,
        "BLOCKED" => Mark::Blocked,
        "SKIPPED" | "DEFERRED" | "ABANDONED" => Mark::Skipped,
        _ => return None,
    })
}

fn word_of(mark: Mark) -> &'static str {
    match mark {
        Mark::Pending => "NOT STARTED",
        Mark::InProgress => "IN PROGRESS",
        Mark::Completed => "COMPLETED",
        Mark::Failed => "PARTIAL",
        Mark::Blocked => "BLOCKED",
        Mark::Skipped => "SKIPPED",
    }
}

/// One phase.
#[derive(Debug, Clone)]
struct Phase {
    id: TaskId,
    title: String,
    line: usize,
    /// One past its last line (up to the next heading of its level or higher).
    end: usize,
    /// The line holding its marker and the marker's byte range there (`None`: no marker yet).
    marker: Option<(usize, usize, usize)>,
    mark: Option<Mark>,
}

/// A phase heading's level, id, title and marker range in the text.
type Heading = (usize, String, String, Option<(usize, usize)>);

/// `### Phase 2: Title [MARKER]` (see [`Heading`]), when `text` is one.
fn phase_heading(text: &str) -> Option<Heading> {
    let (level, rest) = lines::heading(text)?;
    if !(2..=4).contains(&level) {
        return None;
    }
    let rest = rest.strip_prefix("Phase ")?;
    let id: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.').collect();
    let after = rest[id.len()..].strip_prefix(':')?;
    if id.is_empty() || !id.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut title = after.trim().to_owned();
    let mut range = None;
    if text.ends_with(']') {
        if let Some(open) = text.rfind('[') {
            range = Some((open + 1, text.len() - 1));
            title = title[..title.rfind('[').unwrap_or(title.len())].trim().to_owned();
        }
    }
    Some((level, id, title, range))
}

fn parse(path: &Path, bytes: &[u8]) -> Result<(Lines, Vec<Phase>)> {
    let lines = Lines::parse(path, bytes)?;
    let fenced = lines.fenced();
    let mut phases: Vec<(usize, Phase)> = Vec::new();
    for (i, fenced) in fenced.iter().enumerate() {
        if *fenced {
            continue;
        }
        let text = lines.text(i);
        if let Some((level, _)) = lines::heading(text) {
            for (l, p) in phases.iter_mut() {
                if p.end == usize::MAX && level <= *l {
                    p.end = i;
                }
            }
        }
        let Some((level, id, title, range)) = phase_heading(text) else { continue };
        let id = TaskId::new(&id).map_err(|_| {
            Error::format(path, Some(i + 1), format!("`{}` is not a phase id", crate::task_id::shown(&id)))
        })?;
        let marker = range.map(|(a, b)| (i, a, b));
        phases.push((level, Phase { id, title, line: i, end: usize::MAX, marker, mark: None }));
    }
    let mut out = Vec::new();
    for (_, mut p) in phases {
        if p.end == usize::MAX {
            p.end = lines.len();
        }
        if p.marker.is_none() {
            // A `**Status**: [MARKER]` line under the heading.
            for k in p.line + 1..p.end {
                let t = lines.text(k);
                let rest = t.trim_start().trim_start_matches("- ");
                if let Some(v) = rest.strip_prefix("**Status**:").or_else(|| rest.strip_prefix("**Status:**")) {
                    if let (Some(a), Some(b)) = (t.find('['), t.rfind(']')) {
                        if a < b && v.contains('[') {
                            p.marker = Some((k, a + 1, b));
                        }
                    }
                    break;
                }
            }
        }
        p.mark = p.marker.and_then(|(k, a, b)| mark_of(&lines.text(k)[a..b]));
        out.push(p);
    }
    Ok((lines, out))
}

/// A phase document.
#[derive(Debug, Clone)]
pub struct PhaseDoc {
    root: PathBuf,
    file: PathBuf,
}

impl PhaseDoc {
    /// The phase document `file` of the repository at `root`.
    pub fn new(root: &Path, file: &Path) -> PhaseDoc {
        PhaseDoc { root: root.to_path_buf(), file: file.to_path_buf() }
    }

    fn stem(&self) -> String {
        self.file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    }

    fn find(&self, phases: &[Phase], id: &TaskId) -> Result<usize> {
        let at: Vec<usize> = phases.iter().enumerate().filter(|(_, p)| &p.id == id).map(|(i, _)| i).collect();
        match at.as_slice() {
            [i] => Ok(*i),
            [] => Err(Error::refused(format!("{}: no phase `{id}`", self.file.display()), None)),
            _ => Err(Error::format(&self.file, None, format!("phase `{id}` is written {} times", at.len()))),
        }
    }

    /// The checks of phase `id`'s `**Validation**:` / `**Verification**:` blocks: the commands
    /// postflight runs (a code span opening the bullet, an expectation of success, a program
    /// that exists) and the manual checks it cannot run (every other bullet, one line each),
    /// which the implementation status note lists as not run.
    fn checks(&self, bytes: &[u8], id: &TaskId) -> (Vec<String>, Vec<String>) {
        let Ok((lines, phases)) = parse(&self.file, bytes) else { return (Vec::new(), Vec::new()) };
        let Ok(i) = self.find(&phases, id) else { return (Vec::new(), Vec::new()) };
        let p = &phases[i];
        let (mut out, mut manual) = (Vec::new(), Vec::new());
        let mut k = p.line + 1;
        let take = |text: &str, out: &mut Vec<String>, manual: &mut Vec<String>| {
            let t = text.trim_start();
            let t = t.strip_prefix("- ").unwrap_or(t);
            let t = t.strip_prefix("[ ] ").or_else(|| t.strip_prefix("[x] ")).unwrap_or(t);
            let command = t.strip_prefix('`').and_then(|rest| rest.split_once('`')).filter(|(cmd, expect)| {
                let e = expect.trim().to_ascii_lowercase();
                let ok =
                    e.is_empty() || ["passes", "succeeds", "completes successfully"].iter().any(|w| e.starts_with(w));
                ok && runnable(&self.root, cmd)
            });
            match command {
                Some((cmd, _)) if !out.iter().any(|c: &String| c == cmd) => out.push(cmd.to_owned()),
                Some(_) => {}
                None if !t.trim().is_empty() => manual.push(lines::one_line(t, 120)),
                None => {}
            }
        };
        while k < p.end {
            let t = lines.text(k).trim();
            let label = ["**Validation**:", "**Validation:**", "**Verification**:", "**Verification:**"]
                .iter()
                .find_map(|l| t.strip_prefix(l));
            if let Some(inline) = label {
                if !inline.trim().is_empty() {
                    take(inline, &mut out, &mut manual);
                }
                k += 1;
                while k < p.end {
                    let b = lines.text(k).trim();
                    if b.starts_with("- ") {
                        take(b, &mut out, &mut manual);
                    } else if !b.is_empty() {
                        break;
                    }
                    k += 1;
                }
                continue;
            }
            k += 1;
        }
        (out, manual)
    }

    fn with_mark(&self, bytes: &[u8], id: &TaskId, mark: Mark) -> Result<(Lines, Vec<Phase>, usize)> {
        let (mut lines, phases) = parse(&self.file, bytes)?;
        let i = self.find(&phases, id)?;
        let word = word_of(mark);
        match phases[i].marker {
            Some((k, a, b)) => {
                let t = lines.text(k);
                let new = format!("{}{word}{}", &t[..a], &t[b..]);
                lines.replace(k, &new);
            }
            None => lines.insert(phases[i].line + 1, &format!("**Status**: [{word}]")),
        }
        let (mut lines2, phases2) = parse(&self.file, &lines.bytes())?;
        // The document's own `**Status**:` line (above the first phase) follows the phases.
        if let Some((k, a, b)) = doc_status(&lines2, &phases2) {
            let word = word_of(doc_mark(&phases2));
            let t = lines2.text(k);
            if &t[a..b] != word {
                let new = format!("{}{word}{}", &t[..a], &t[b..]);
                lines2.replace(k, &new);
            }
        }
        Ok((lines2, phases2, i))
    }
}

/// The document's `**Status**: [MARKER]` line above its first phase: the line and the marker's
/// byte range.
fn doc_status(lines: &Lines, phases: &[Phase]) -> Option<(usize, usize, usize)> {
    let first = phases.iter().map(|p| p.line).min()?;
    let fenced = lines.fenced();
    (0..first).filter(|k| !fenced[*k]).find_map(|k| {
        let t = lines.text(k);
        let rest = t.trim_start().trim_start_matches("- ");
        let v = rest.strip_prefix("**Status**:").or_else(|| rest.strip_prefix("**Status:**"))?;
        let v = v.trim();
        let (a, b) = (t.find('[')?, t.rfind(']')?);
        (v.starts_with('[') && a < b && mark_of(&t[a + 1..b]).is_some()).then_some((k, a + 1, b))
    })
}

/// The document's status as its phases stand: completed when every phase is done (or skipped),
/// in progress while one is, blocked when one is, partial once one is done or partial, else not
/// started.
fn doc_mark(phases: &[Phase]) -> Mark {
    let marks: Vec<Mark> = phases.iter().map(|p| p.mark.unwrap_or(Mark::Pending)).collect();
    if marks.iter().all(|m| m.is_final()) {
        Mark::Completed
    } else if marks.contains(&Mark::InProgress) {
        Mark::InProgress
    } else if marks.contains(&Mark::Blocked) {
        Mark::Blocked
    } else if marks.iter().any(|m| matches!(m, Mark::Completed | Mark::Failed)) {
        Mark::Failed
    } else {
        Mark::Pending
    }
}

/// Whether the first word of `cmd` is a program: a path that exists, or a name on the PATH.
fn runnable(root: &Path, cmd: &str) -> bool {
    let Some(first) = cmd.split_whitespace().next() else { return false };
    if first.contains('/') {
        return root.join(first).exists();
    }
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(first).is_file()))
}

impl Format for PhaseDoc {
    fn kind(&self) -> &'static str {
        "phases"
    }

    fn file(&self) -> PathBuf {
        self.file.clone()
    }

    fn label(&self) -> String {
        format!("phases {}", self.stem())
    }

    fn items(&self, bytes: &[u8]) -> Result<Vec<Item>> {
        let (_, phases) = parse(&self.file, bytes)?;
        if phases.is_empty() {
            return Err(Error::format(&self.file, None, "holds no phase heading (`## Phase 1: Title [NOT STARTED]`)"));
        }
        Ok(phases
            .iter()
            .map(|p| Item {
                id: p.id.clone(),
                title: p.title.clone(),
                mark: p.mark.unwrap_or(Mark::Pending),
                parent: None,
                depends_on: Vec::new(),
                optional: false,
                line: Some(p.line + 1),
                group: None,
            })
            .collect())
    }

    fn queue(&self, items: &[Item], opts: &QueueOptions) -> Vec<TaskId> {
        super::spec_dir::queue(items, opts)
    }

    fn set_mark(&self, bytes: &[u8], id: &TaskId, mark: Mark) -> Result<Vec<u8>> {
        Ok(self.with_mark(bytes, id, mark)?.0.bytes())
    }

    fn record(&self, bytes: &[u8], id: &TaskId, record: &Record) -> Result<Vec<u8>> {
        let mark = match record.outcome {
            Outcome::Completed => Mark::Completed,
            Outcome::Failed(_) => Mark::Failed,
            Outcome::Blocked(_) => Mark::Blocked,
        };
        let manual = self.checks(bytes, id).1;
        let (mut lines, phases, i) = self.with_mark(bytes, id, mark)?;
        // Only a validated completion writes the document's implementation notes (seed 002).
        if record.outcome == Outcome::Completed {
            let p = &phases[i];
            let mut at = p.end;
            while at > p.line + 1 && {
                let t = lines.text(at - 1).trim();
                t.is_empty() || t == "---"
            } {
                at -= 1;
            }
            let validated = if record.commands.is_empty() {
                "no validation command configured".to_owned()
            } else {
                record
                    .commands
                    .iter()
                    .map(|c| format!("`{}` (exit {})", c.command, c.exit_code.map_or("-".into(), |e| e.to_string())))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let mut note = vec![
                String::new(),
                "**Implementation status:**".to_owned(),
                format!("- Completed {} by session {}", lines::date_of(&record.at), record.session_id),
                format!("- Validated: {validated}"),
            ];
            // A note cannot name the hash of the commit it is in: it names that commit by its
            // subject and trailer, and the commit it was made on.
            let on = record.base.as_deref().map(|b| format!(", on top of {b}")).unwrap_or_default();
            note.push(format!("- Commit: `{}` (trailer `Phase: {id}`){on}", self.subject(id, &record.outcome)));
            if !manual.is_empty() {
                note.push(format!("- Not run (manual checks): {}", manual.join("; ")));
            }
            if let Some(s) = record.summary.as_deref().filter(|s| !s.trim().is_empty()) {
                note.push(format!("- Summary: {}", lines::one_line(s, 400)));
            }
            if !record.changed.is_empty() {
                let files: Vec<&str> = record.changed.iter().map(|c| c.path.as_str()).collect();
                note.push(format!("- Files: {}", files.join(", ")));
            }
            for (k, l) in note.iter().enumerate() {
                lines.insert(at + k, l);
            }
        }
        Ok(lines.bytes())
    }

    fn prompt(&self, bytes: &[u8], id: &TaskId) -> Result<String> {
        let (lines, phases) = parse(&self.file, bytes)?;
        let p = &phases[self.find(&phases, id)?];
        let rel = self.file.strip_prefix(&self.root).unwrap_or(&self.file).display().to_string();
        let mut out = format!(
            "Phase {id} of the phase document {rel}: build it, following Plan -> Spec -> Build -> Validate.\nDo not update the document: postflight marks the phase and writes its implementation status only after its validation passed.\n\n"
        );
        for k in p.line..p.end {
            out.push_str(lines.text(k));
            out.push('\n');
        }
        Ok(out)
    }

    fn validation_commands(&self, bytes: &[u8], id: &TaskId) -> Vec<String> {
        self.checks(bytes, id).0
    }

    fn subject(&self, id: &TaskId, outcome: &Outcome) -> String {
        format!("phases {}: phase {id} {}", self.stem(), outcome.word())
    }

    fn trailers(&self, id: &TaskId) -> Vec<String> {
        vec![format!("Phase: {id}")]
    }

    fn scoping(&self) -> Arc<dyn Scoping> {
        let rel = self.file.strip_prefix(&self.root).unwrap_or(&self.file).to_string_lossy().into_owned();
        Arc::new(PhaseScoping { rel, path: self.file.clone() })
    }

    fn check(&self, bytes: &[u8]) -> Vec<Finding> {
        let finding = |rule, line: Option<usize>, task: Option<TaskId>, message: String| Finding {
            rule,
            error: true,
            line,
            task,
            message,
            fixable: false,
        };
        let (lines, phases) = match parse(&self.file, bytes) {
            Ok(x) => x,
            Err(e) => return vec![finding("unreadable", None, None, e.to_string())],
        };
        let mut out = Vec::new();
        if phases.is_empty() {
            out.push(finding(
                "no-phases",
                None,
                None,
                "holds no phase heading (`## Phase 1: Title [NOT STARTED]`); implement and status refuse it".to_owned(),
            ));
        }
        for (i, p) in phases.iter().enumerate() {
            if phases[..i].iter().any(|q| q.id == p.id) {
                out.push(finding(
                    "duplicate-id",
                    Some(p.line + 1),
                    Some(p.id.clone()),
                    format!("phase {} is written twice", p.id),
                ));
            }
            if let (Some((k, a, b)), None) = (p.marker, p.mark) {
                out.push(finding(
                    "unknown-marker",
                    Some(k + 1),
                    Some(p.id.clone()),
                    format!(
                        "phase {}: unknown marker `[{}]`; status shows it not done, implement refuses to take it",
                        p.id,
                        &lines.text(k)[a..b]
                    ),
                ));
            }
        }
        out
    }
}

/// A phase's own lines of the document, for its commit.
#[derive(Debug)]
struct PhaseScoping {
    rel: String,
    path: PathBuf,
}

impl Scoping for PhaseScoping {
    fn shares(&self, path: &str) -> bool {
        path == self.rel
    }

    fn scope(&self, _: &str, head: &[u8], worktree: &[u8], task: &TaskId, _: Option<(usize, usize)>) -> Result<Scoped> {
        if let Some(scoped) = Scoped::trivially(head, worktree) {
            return Ok(scoped);
        }
        let (h, hp) = parse(&self.path, head)?;
        let (w, wp) = parse(&self.path, worktree)?;
        let (Some(hi), Some(wi)) = (hp.iter().find(|p| &p.id == task), wp.iter().find(|p| &p.id == task)) else {
            return Err(Error::refused(format!("{}: phase `{task}` is not in the committed version", self.rel), None));
        };
        let mut out: Vec<String> = h.raw[..hi.line].to_vec();
        // The document's status line is derived from the phases: the work tree's goes with any
        // phase's commit.
        if let (Some((hk, _, _)), Some((wk, _, _))) = (doc_status(&h, &hp), doc_status(&w, &wp)) {
            if hk < out.len() {
                out[hk] = w.raw[wk].clone();
            }
        }
        out.extend_from_slice(&w.raw[wi.line..wi.end]);
        out.extend_from_slice(&h.raw[hi.end..]);
        let bytes = out.concat().into_bytes();
        Ok(Scoped::of(bytes, head, worktree))
    }
}

/// Whether `bytes` hold a `Phase N:` heading (what makes a markdown file a phase document).
pub fn looks_like_phase_doc(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.lines().any(|l| phase_heading(l).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Phase Plan: X\n\n## Implementation Phases\n\n### Phase 1: Schema [COMPLETED]\n\n**Validation**:\n- `true` passes\n\n---\n\n### Phase 2: Middleware [NOT STARTED]\n\n**Verification:**\n- `sh -c 'exit 0'` passes\n- `grep -rn x y` shows every route\n- Manual: log in twice\n\n**Verification Results:**\n- `false` passed\n\n---\n\n### Phase 3: Lifetime\n\n**Verification**: `true` passes\n\n## Testing & Validation\n- [ ] `true` passes\n";

    fn doc() -> (tempfile::TempDir, PhaseDoc) {
        let tmp = tempfile::tempdir().expect("tmp");
        let f = tmp.path().join("plan.md");
        std::fs::write(&f, DOC).expect("w");
        let d = PhaseDoc::new(tmp.path(), &f);
        (tmp, d)
    }

    fn id(s: &str) -> TaskId {
        TaskId::new(s).expect("id")
    }

    #[test]
    fn phases_markers_and_commands() {
        let (_t, d) = doc();
        let items = d.items(DOC.as_bytes()).expect("items");
        assert_eq!(items.iter().map(|i| i.mark).collect::<Vec<_>>(), [Mark::Completed, Mark::Pending, Mark::Pending]);
        assert_eq!(d.queue(&items, &QueueOptions::default()), [id("2"), id("3")]);
        assert_eq!(d.validation_commands(DOC.as_bytes(), &id("2")), ["sh -c 'exit 0'"]);
        assert_eq!(d.validation_commands(DOC.as_bytes(), &id("3")), ["true"]);
        let b = d.set_mark(DOC.as_bytes(), &id("3"), Mark::InProgress).expect("mark");
        let t = String::from_utf8(b).expect("utf8");
        assert!(t.contains("### Phase 3: Lifetime\n**Status**: [IN PROGRESS]\n"), "{t}");
        let b = d.set_mark(t.as_bytes(), &id("3"), Mark::Failed).expect("mark");
        assert!(String::from_utf8(b).expect("utf8").contains("**Status**: [PARTIAL]"));
        assert!(looks_like_phase_doc(DOC.as_bytes()) && !looks_like_phase_doc(b"# x\n"));
    }

    #[test]
    fn the_note_is_written_for_a_validated_completion_only() {
        let (_t, d) = doc();
        let rec = |outcome| Record {
            outcome,
            session_id: "s1".into(),
            agent_session_id: None,
            at: "2026-03-16T21:11:23Z".into(),
            summary: Some("done".into()),
            commands: vec![],
            changed: vec![],
            attempt: 1,
            base: None,
        };
        let failed =
            String::from_utf8(d.record(DOC.as_bytes(), &id("2"), &rec(Outcome::Failed("x".into()))).expect("r"))
                .expect("utf8");
        assert!(failed.contains("### Phase 2: Middleware [PARTIAL]") && !failed.contains("Implementation status"));
        let done =
            String::from_utf8(d.record(DOC.as_bytes(), &id("2"), &rec(Outcome::Completed)).expect("r")).expect("utf8");
        assert!(
            done.contains("- `false` passed\n\n**Implementation status:**\n- Completed 2026-03-16 by session s1\n- Validated: no validation command configured\n- Commit: `phases plan: phase 2 complete` (trailer `Phase: 2`)\n- Not run (manual checks): `grep -rn x y` shows every route; Manual: log in twice\n- Summary: done\n\n---\n\n### Phase 3"),
            "{done}"
        );
    }

    #[test]
    fn the_documents_status_line_follows_its_phases_and_goes_with_a_phases_commit() {
        let text = format!(
            "# Phase Plan: X\n\n- **Status**: [NOT STARTED]\n\n{}",
            &DOC[DOC.find("## Implementation").expect("i")..]
        );
        let tmp = tempfile::tempdir().expect("tmp");
        let f = tmp.path().join("plan.md");
        let d = PhaseDoc::new(tmp.path(), &f);
        let head = text.as_bytes();
        let b = d.set_mark(head, &id("2"), Mark::InProgress).expect("mark");
        let t = String::from_utf8(b.clone()).expect("utf8");
        assert!(t.contains("- **Status**: [IN PROGRESS]\n"), "{t}");
        let b = d.set_mark(&b, &id("2"), Mark::Completed).expect("mark");
        assert!(String::from_utf8(b.clone()).expect("utf8").contains("- **Status**: [PARTIAL]\n"));
        let b = d.set_mark(&b, &id("3"), Mark::Completed).expect("mark");
        let t = String::from_utf8(b.clone()).expect("utf8");
        assert!(t.contains("- **Status**: [COMPLETED]\n"), "{t}");
        // Phase 3's commit takes its own lines and the document's status line, nothing of phase 2.
        let sc = d.scoping();
        let one = d.set_mark(head, &id("3"), Mark::Completed).expect("mark");
        let both = d.set_mark(&one, &id("2"), Mark::InProgress).expect("mark");
        let Scoped::New(scoped) = sc.scope("plan.md", head, &both, &id("3"), None).expect("scope") else {
            panic!("a scoped version")
        };
        let scoped = String::from_utf8(scoped).expect("utf8");
        assert!(scoped.contains("### Phase 2: Middleware [NOT STARTED]"), "{scoped}");
        assert!(scoped.contains("### Phase 3: Lifetime\n**Status**: [COMPLETED]"), "{scoped}");
        assert!(scoped.contains("- **Status**: [IN PROGRESS]\n"), "the derived line as the work tree has it: {scoped}");
        // A document without such a line gets none.
        assert!(!String::from_utf8(d.set_mark(DOC.as_bytes(), &id("2"), Mark::Completed).expect("m"))
            .expect("u")
            .contains("- **Status**"));
        assert!(d.check(b"# nothing\n").iter().any(|f| f.rule == "no-phases"));
    }
}
