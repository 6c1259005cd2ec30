//! The CLI's one error type: a message for the user and the exit code it maps to.

use coffer_format::Error as FormatError;

use crate::exit;

/// An error that ends the command.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code,
        }
    }

    /// Maps a format error met while reading `what` (a path) to a message and exit code.
    pub fn reading(what: &std::path::Path, e: FormatError) -> Self {
        let path = what.display();
        match e {
            FormatError::KeyRequired => CliError::new(
                exit::KEY,
                format!(
                    "{path}: archive is encrypted; give --passphrase-file, --key-file or the COFFER_PASSPHRASE environment variable"
                ),
            ),
            FormatError::WrongKey => CliError::new(exit::KEY, format!("{path}: {e}")),
            FormatError::Truncated { .. } => CliError::new(
                exit::BAD_INPUT,
                format!(
                    "{path}: {e}\nhint: `coffer verify` reports what is intact; `coffer salvage` recovers it"
                ),
            ),
            FormatError::Io { output: true, .. } => CliError::new(exit::OUTPUT, e.to_string()),
            other => CliError::new(exit::BAD_INPUT, format!("{path}: {other}")),
        }
    }

    /// Maps a format error met while writing an output archive.
    pub fn writing(e: FormatError) -> Self {
        match e {
            FormatError::Io { .. } => {
                CliError::new(exit::OUTPUT, format!("{e}; nothing was published"))
            }
            other => CliError::new(exit::OUTPUT, other.to_string()),
        }
    }
}

impl From<coffer_engine::Error> for CliError {
    fn from(e: coffer_engine::Error) -> Self {
        use coffer_engine::ErrorKind as K;
        let code = match e.kind() {
            K::Connect | K::Auth => exit::CONNECT,
            K::NotFound | K::Permission | K::Conflict | K::Server | K::Protocol => exit::DATABASE,
            K::Io | K::Archive => exit::OUTPUT,
            K::Corrupt | K::Unsupported => exit::BAD_INPUT,
            _ => exit::USAGE,
        };
        CliError::new(code, e.to_string())
    }
}
