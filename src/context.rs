//! What every command needs besides its arguments: the repository, the clock (fixed by
//! `XTASK_NOW` for reproducible runs) and the session id (`XTASK_SESSION_ID`, else generated
//! as `sess_{epoch}_{6 hex}`).

use std::path::Path;

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::repo::Repo;

/// The environment variable fixing every timestamp the tool writes (RFC 3339, UTC).
pub const ENV_NOW: &str = "XTASK_NOW";
/// The environment variable fixing the session id.
pub const ENV_SESSION_ID: &str = "XTASK_SESSION_ID";

/// The inputs shared by all commands.
#[derive(Debug, Clone)]
pub struct Context {
    /// The repository worked on.
    pub repo: Repo,
    /// The moment `XTASK_NOW` fixes for every timestamp, if any; otherwise each timestamp is
    /// the moment it is written (see [`Context::now`]).
    pub fixed_now: Option<jiff::Timestamp>,
    /// The session id given by the environment, if any.
    pub session_id: Option<String>,
}

impl Context {
    /// Builds the context for the repository containing `dir`, reading `XTASK_NOW` and
    /// `XTASK_SESSION_ID` from the environment.
    ///
    /// # Errors
    /// `NoRepository`; `Env` when `XTASK_NOW` is not an RFC 3339 time or `XTASK_SESSION_ID`
    /// holds whitespace or control characters.
    pub fn from_env(dir: &Path) -> Result<Context> {
        let repo = Repo::discover(dir)?;
        let fixed_now = match std::env::var(ENV_NOW) {
            Ok(v) if !v.trim().is_empty() => Some(parse_now(&v)?),
            _ => None,
        };
        let session_id = std::env::var(ENV_SESSION_ID).ok().filter(|s| !s.trim().is_empty());
        if let Some(id) = &session_id {
            // It is written into state.json, the marker and every commit's `Session:` trailer:
            // a line break there would forge trailers, so it is refused before anything is written.
            if id.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return Err(Error::Env {
                    name: ENV_SESSION_ID,
                    message: format!(
                        "{id:?} is not a session id: it must be one word without spaces or control characters, such as sess_1773695483_a1b2c3"
                    ),
                });
            }
        }
        Ok(Context { repo, fixed_now, session_id })
    }

    /// The ledger of this repository.
    pub fn ledger(&self) -> Ledger {
        Ledger::new(self.repo.clone())
    }

    /// Now: the moment `XTASK_NOW` fixes, else the clock read at this call (a run that takes two
    /// hours records its start and its end two hours apart).
    pub fn now(&self) -> jiff::Timestamp {
        self.fixed_now.unwrap_or_else(jiff::Timestamp::now)
    }

    /// `2026-03-16T21:11:23Z`, the ledger's timestamp form, of [`Context::now`].
    pub fn timestamp(&self) -> String {
        self.now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    /// `2026-03-16`, TODO.md's date form.
    pub fn date(&self) -> String {
        self.now().strftime("%Y-%m-%d").to_string()
    }

    /// `20260316`, the summary file name's date form.
    pub fn compact_date(&self) -> String {
        self.now().strftime("%Y%m%d").to_string()
    }

    /// The session id from the environment, else a new `sess_{epoch}_{6 hex}`.
    pub fn session_id_or_new(&self) -> String {
        self.session_id.clone().unwrap_or_else(|| new_session_id(self.now()))
    }
}

fn parse_now(value: &str) -> Result<jiff::Timestamp> {
    value.trim().parse::<jiff::Timestamp>().map_err(|e| Error::Env {
        name: ENV_NOW,
        message: format!("`{value}` is not an RFC 3339 time such as 2026-03-16T21:11:23Z ({e})"),
    })
}

/// A new session id `sess_{unix seconds}_{6 lowercase hex}` (reference §2.6).
pub fn new_session_id(now: jiff::Timestamp) -> String {
    format!("sess_{}_{:06x}", now.as_second(), random_u32() & 0xff_ffff)
}

/// Whether `id` has the strict generated shape `sess_<10 digits>_<6 hex>`.
pub fn is_well_formed_session_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("sess_") else { return false };
    let Some((epoch, hex)) = rest.split_once('_') else { return false };
    epoch.len() == 10
        && epoch.bytes().all(|b| b.is_ascii_digit())
        && hex.len() == 6
        && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// 32 random bits: from the OS when it answers, else from std's randomly keyed hasher.
pub fn random_u32() -> u32 {
    use std::io::Read;
    let mut buf = [0u8; 4];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).is_ok() {
        return u32::from_le_bytes(buf);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_strict_and_now_parses() {
        let now = parse_now("2026-03-16T21:11:23Z").expect("parse");
        let id = new_session_id(now);
        assert!(id.starts_with("sess_1773695483_"), "{id}");
        assert!(is_well_formed_session_id(&id), "{id}");
        assert!(!is_well_formed_session_id("sess_1773695483_tq9iv"));
        assert!(parse_now("yesterday").is_err());
    }
}
