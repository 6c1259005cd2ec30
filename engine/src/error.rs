//! The engine's one error type.
//!
//! An [`Error`] carries a [`ErrorKind`] (what class of failure, which decides the CLI's
//! exit code), a message written for the user (which must never contain a password), and
//! the underlying cause when there is one.

use std::fmt;

/// Convenient alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What class of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Cannot reach the server (refused, unreachable, DNS, TLS handshake, timeout).
    Connect,
    /// The server refused the credentials.
    Auth,
    /// The user may not do this (a table, replication, a command).
    Permission,
    /// No such database, table, key or object.
    NotFound,
    /// The server said something that breaks its protocol, or closed mid-stream.
    Protocol,
    /// Input data (an RDB, a COPY stream, an archive's content) is malformed.
    Corrupt,
    /// Something coffer does not support (a newer RDB version, an unknown opcode…).
    Unsupported,
    /// Another session got in the way (DDL during a dump, a lock that cannot be taken).
    Conflict,
    /// The server reported an error not covered above.
    Server,
    /// Reading or writing the archive failed.
    Archive,
    /// Local I/O failed (disk full, permission denied on a file).
    Io,
    /// The caller asked for something invalid (bad option, bad URL).
    Usage,
}

/// An engine error.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause (shown after the message).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What class of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with context ("dumping table public.t: …").
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Appends what the caller knows of the state the failure left ("data: 3 of 7
    /// tables loaded…"), so that the user knows what is there and what is not.
    pub fn note(mut self, note: impl fmt::Display) -> Self {
        self.message = format!("{} ({note})", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.source {
            write!(f, ": {s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {self}", self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<coffer_format::Error> for Error {
    /// A damaged or unreadable archive is bad input; a writer that stopped or an I/O
    /// failure is the output's problem.
    fn from(e: coffer_format::Error) -> Self {
        use coffer_format::Error as F;
        let kind = match &e {
            F::Io { .. } => ErrorKind::Io,
            F::WriterClosed | F::Usage(_) => ErrorKind::Archive,
            F::KeyRequired | F::WrongKey | F::BadKeyFile(_) => ErrorKind::Usage,
            _ => ErrorKind::Corrupt,
        };
        Error::new(kind, e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, e.to_string())
    }
}
