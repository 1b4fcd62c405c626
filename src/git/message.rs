//! The commit message: subject, optional body, and one trailer block (`Session:`, then
//! `Co-authored-by:` when an agent identity is known), cleaned up as `git commit -m` does.

use crate::error::{Error, Result};

/// Builds the message `subject\n\nbody\n\nSession: id\n<trailers>\nCo-authored-by: identity\n`,
/// cleaned up like `git commit` does for a message given with `-m` ([`stripspace`]). Each of
/// `trailers` is a whole `Key: value` line (`Validated: cargo test (exit 0, 12.3s)`); line
/// breaks in it become spaces, so that it stays one trailer.
///
/// # Errors
/// A refusal when the subject is empty or has several lines, the session id is empty or holds
/// whitespace, or the identity is not `Name <email>`.
pub fn build_message(
    subject: &str,
    body: Option<&str>,
    session_id: &str,
    trailers: &[String],
    identity: Option<&str>,
) -> Result<String> {
    let subject = subject.trim();
    if subject.is_empty() {
        return Err(Error::refused("the commit subject is empty", Some("pass -m <subject>")));
    }
    if subject.contains(['\n', '\r']) {
        return Err(Error::refused("the commit subject must be one line", Some("put further lines in --body")));
    }
    let session_id = session_id.trim();
    if session_id.is_empty() || session_id.contains(char::is_whitespace) {
        return Err(Error::refused(
            format!("`{session_id}` is not a session id (empty or with whitespace)"),
            Some("set XTASK_SESSION_ID to a single word such as sess_1773695483_a1b2c3"),
        ));
    }
    let mut text = format!("{subject}\n\n");
    // git ends a message at a NUL byte (and `git commit` refuses one): the trailers after it
    // would be lost. The body is an agent's text, kept exactly in state.json; here NULs go.
    let body = body.map(|b| b.replace('\0', ""));
    if let Some(body) = body.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        for line in body.lines() {
            // git reads a line starting with `---` as the start of a patch and stops looking
            // for trailers there (`git interpret-trailers`, `git am`): indent it by one space.
            if line.starts_with("---") {
                text.push(' ');
            }
            text.push_str(line);
            text.push('\n');
        }
        text.push('\n');
    }
    text.push_str(&format!("Session: {session_id}\n"));
    for t in trailers {
        let line: String = t.replace('\0', "").split(['\n', '\r']).map(str::trim).collect::<Vec<_>>().join(" ");
        if line.split_once(": ").is_none_or(|(k, _)| k.is_empty() || k.contains(char::is_whitespace)) {
            return Err(Error::refused(format!("`{line}` is not a trailer of the form `Key: value`"), None));
        }
        text.push_str(&line);
        text.push('\n');
    }
    if let Some(identity) = identity.map(str::trim).filter(|i| !i.is_empty()) {
        check_identity(identity)?;
        text.push_str(&format!("Co-authored-by: {identity}\n"));
    }
    Ok(stripspace(&text))
}

/// Checks `Name <email>`: a name, one `<...>` at the end, no line breaks.
fn check_identity(identity: &str) -> Result<()> {
    let ok = identity.strip_suffix('>').and_then(|rest| rest.split_once('<')).is_some_and(|(name, email)| {
        !name.trim().is_empty() && !email.is_empty() && !email.contains(['<', '>']) && !identity.contains(['\n', '\r'])
    });
    if ok {
        Ok(())
    } else {
        Err(Error::refused(
            format!("`{identity}` is not an identity of the form `Name <email>`"),
            Some("pass --agent-identity \"Claude <noreply@anthropic.com>\""),
        ))
    }
}

/// git's whitespace cleanup (`strbuf_stripspace` without comment stripping, the `-m` default):
/// trailing whitespace removed from every line, runs of blank lines collapsed into one, blank
/// lines at the start and end removed, and exactly one final newline (empty input stays empty).
pub fn stripspace(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    let mut pending_blank = false;
    for line in text.split('\n') {
        let line = line.trim_end_matches(|c: char| c.is_ascii_whitespace());
        if line.is_empty() {
            pending_blank = !out.is_empty();
            continue;
        }
        if pending_blank {
            out.push('\n');
            pending_blank = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_subject_body_and_one_trailer_block() {
        let m =
            build_message("task 5: update", Some("Did things.  \n\n\n\nMore."), "sess_1", &[], Some("Bot <b@x.org>"))
                .expect("ok");
        assert_eq!(m, "task 5: update\n\nDid things.\n\nMore.\n\nSession: sess_1\nCo-authored-by: Bot <b@x.org>\n");
        let m = build_message("  s  ", None, "sess_1", &[], None).expect("ok");
        assert_eq!(m, "s\n\nSession: sess_1\n");
    }

    #[test]
    fn extra_trailers_follow_the_session() {
        let t = vec!["Validated: sh -c 'a\nb' (exit 0, 1.2s)".to_owned(), "Validated: true (exit 0, 0.0s)".to_owned()];
        let m = build_message("s", None, "sess_1", &t, Some("Bot <b@x.org>")).expect("ok");
        assert_eq!(
            m,
            "s\n\nSession: sess_1\nValidated: sh -c 'a b' (exit 0, 1.2s)\nValidated: true (exit 0, 0.0s)\nCo-authored-by: Bot <b@x.org>\n"
        );
        assert!(build_message("s", None, "sess_1", &["no colon".to_owned()], None).is_err());
    }

    #[test]
    fn a_divider_in_the_body_cannot_hide_the_trailers() {
        let m = build_message("s", Some("a\n---\nb\n--- x"), "sess_1", &[], None).expect("ok");
        assert_eq!(m, "s\n\na\n ---\nb\n --- x\n\nSession: sess_1\n");
    }

    #[test]
    fn a_nul_byte_in_the_body_cannot_hide_the_trailers() {
        let m = build_message("s", Some("before\0after\n\0"), "sess_1", &[], None).expect("ok");
        assert_eq!(m, "s\n\nbeforeafter\n\nSession: sess_1\n");
    }

    #[test]
    fn bad_parts_are_refused() {
        assert!(build_message("", None, "s", &[], None).is_err());
        assert!(build_message("a\nb", None, "s", &[], None).is_err());
        assert!(build_message("a", None, "two words", &[], None).is_err());
        for bad in ["Bot", "<b@x>", "Bot <>", "Bot <a>b>", "Bot b@x>"] {
            assert!(build_message("a", None, "s", &[], Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn stripspace_matches_git() {
        assert_eq!(stripspace("\n\n  \na \t\n\n\n b\n\n"), "a\n\n b\n");
        assert_eq!(stripspace("x"), "x\n");
        assert_eq!(stripspace("\n \n"), "");
        assert_eq!(stripspace("# kept\r\n"), "# kept\n");
    }
}
