//! The crate's one error type: what went wrong, in which file and line, and whether the
//! caller was refused (bad input, nothing written) or something broke (I/O, git).

use std::path::PathBuf;

/// Whether an error is the user's input being refused or an unexpected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A precondition failed or an input was invalid; no file was changed (exit 2).
    Refused,
    /// An unexpected failure: I/O, git, a broken invariant (exit 1).
    Internal,
}

/// Every failure the library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done ("read", "write", "create directory for").
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file does not parse.
    #[error("{}:{line}:{column}: invalid JSON: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message, without its position suffix.
        message: String,
    },
    /// A ledger file parses but is not shaped as expected.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Format {
        /// The file.
        path: PathBuf,
        /// The 1-based line, when one line is at fault.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A file is not valid UTF-8.
    #[error("{}:{line}: not valid UTF-8", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The 1-based line holding the first invalid byte.
        line: usize,
    },
    /// The task number is not in `active_projects`.
    #[error("task {task} not found in {}", path.display())]
    TaskNotFound {
        /// The task.
        task: u32,
        /// The file searched.
        path: PathBuf,
    },
    /// The task number appears more than once.
    #[error("task {task} appears {count} times in {} (lines {lines}); refusing to edit an ambiguous entry", path.display())]
    DuplicateTask {
        /// The task.
        task: u32,
        /// How often it appears.
        count: usize,
        /// Where (comma-separated 1-based lines).
        lines: String,
        /// The file.
        path: PathBuf,
    },
    /// A status word is not one the tool knows.
    #[error("unknown status `{given}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownStatus {
        /// What was given.
        given: String,
        /// The closest known status.
        suggestion: Option<String>,
        /// Every known status, comma-separated, for the hint (the ledger owns the list).
        known: String,
    },
    /// A status change the lifecycle forbids.
    #[error("task {task}: transition {from} -> {to} is not allowed")]
    Transition {
        /// The task.
        task: u32,
        /// The current status.
        from: String,
        /// The requested status.
        to: String,
    },
    /// A precondition of a command is not met.
    #[error("{message}")]
    Refused {
        /// What is wrong.
        message: String,
        /// One line of advice.
        hint: Option<String>,
    },
    /// The working directory is not inside a git repository.
    #[error("not inside a git repository: {}", path.display())]
    NoRepository {
        /// Where the search started.
        path: PathBuf,
    },
    /// A git operation failed.
    #[error("git: {message}")]
    Git {
        /// What failed.
        message: String,
        /// Whether the user can fix it by changing input (exit 2) rather than a breakage (exit 1).
        refused: bool,
        /// One line of advice.
        hint: Option<String>,
    },
    /// A jq filter does not compile, or fails on its input (`xtask query`).
    #[error("{message}")]
    Filter {
        /// What is wrong; for a syntax error, followed by the filter with a caret under the position.
        message: String,
    },
    /// A git hook rejected the commit; nothing was committed.
    #[error("the {hook} hook failed ({status}); nothing was committed{}", if output.is_empty() { String::new() } else { format!("\n{output}") })]
    Hook {
        /// The hook's name (`pre-commit`, `commit-msg`).
        hook: String,
        /// How it ended (`exit code 1`).
        status: String,
        /// Its stdout and stderr, interleaved as written.
        output: String,
    },
    /// A SIGINT, SIGTERM or SIGHUP stopped the run at a safe point: the agent's process group
    /// was killed and reaped, the marker records the interruption, and the task stays
    /// implementing (`xtask implement N` resumes).
    #[error("interrupted by {signal}")]
    Interrupted {
        /// The signal received.
        signal: crate::sys::Interrupt,
    },
    /// A timestamp or environment value could not be understood.
    #[error("{name}: {message}")]
    Env {
        /// The variable.
        name: &'static str,
        /// What is wrong with its value.
        message: String,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the caller was refused (exit 2) or something broke (exit 1).
    pub fn kind(&self) -> Kind {
        match self {
            Error::Io { .. } | Error::Interrupted { .. } => Kind::Internal,
            Error::Git { refused, .. } => {
                if *refused {
                    Kind::Refused
                } else {
                    Kind::Internal
                }
            }
            // Every other variant is an input or a precondition: named one by one, so that a new
            // variant has to say which it is.
            Error::Json { .. }
            | Error::Format { .. }
            | Error::NotUtf8 { .. }
            | Error::TaskNotFound { .. }
            | Error::DuplicateTask { .. }
            | Error::UnknownStatus { .. }
            | Error::Transition { .. }
            | Error::Refused { .. }
            | Error::NoRepository { .. }
            | Error::Filter { .. }
            | Error::Hook { .. }
            | Error::Env { .. } => Kind::Refused,
        }
    }

    /// The signal that interrupted the run, when this is an interruption.
    pub fn interrupted(&self) -> Option<crate::sys::Interrupt> {
        match self {
            Error::Interrupted { signal } => Some(*signal),
            _ => None,
        }
    }

    /// One line of advice for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Refused { hint, .. } | Error::Git { hint, .. } => hint.clone(),
            Error::Transition { .. } => Some("pass --force to override the lifecycle rules".into()),
            Error::UnknownStatus { known, .. } => Some(format!("known statuses: {known}")),
            Error::DuplicateTask { .. } => {
                Some("remove or renumber the duplicate entry, then run the command again".into())
            }
            Error::TaskNotFound { .. } => Some("`xtask status` lists the tasks".into()),
            Error::NoRepository { .. } => Some("run inside a git work tree, or pass -C <dir>".into()),
            Error::Hook { .. } => Some("fix what the hook reports, or pass --no-verify to skip the hooks".into()),
            Error::Json { .. } | Error::NotUtf8 { .. } | Error::Format { .. } => {
                Some("fix the file (or restore it with git), then run the command again".into())
            }
            _ => None,
        }
    }

    /// A refusal with a message and an optional hint.
    pub fn refused(message: impl Into<String>, hint: Option<&str>) -> Self {
        Error::Refused { message: message.into(), hint: hint.map(str::to_owned) }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }

    pub(crate) fn json(path: impl Into<PathBuf>, err: &serde_json::Error) -> Self {
        let full = err.to_string();
        // serde_json appends " at line L column C"; keep only the message.
        let message = match full.rfind(" at line ") {
            Some(i) => full[..i].to_owned(),
            None => full,
        };
        Error::Json { path: path.into(), line: err.line(), column: err.column(), message }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Error::Format { path: path.into(), line, message: message.into() }
    }
}
