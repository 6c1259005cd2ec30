use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::Output;

/// Everything that can go wrong while starting, using or stopping a test server.
///
/// `Debug` prints the same text as `Display` (plus the I/O cause): tests
/// report errors with `{:?}` (through `unwrap` or a returned `Result`), and a
/// server log tail is unreadable as an escaped one-line string.
#[derive(thiserror::Error)]
pub enum HarnessError {
    /// A program the harness needs is not installed.
    #[error(
        "`{binary}` not found (looked in {searched}); on Debian install the `{package}` package"
    )]
    BinaryNotFound {
        binary: &'static str,
        package: &'static str,
        searched: String,
    },
    /// A server of the version matrix is not installed.
    #[error("{what} is not installed (expected under {}); run scripts/servers", path.display())]
    NotInstalled { what: String, path: PathBuf },
    /// A server process exited or never became ready.
    #[error("{server} failed to start: {reason}\n--- last lines of {} ---\n{log_tail}", log.display())]
    StartFailed {
        server: &'static str,
        reason: String,
        log: PathBuf,
        log_tail: String,
    },
    /// A helper program (initdb, psql, ...) exited unsuccessfully.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },
    /// An operating-system call failed.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// A Redis reply could not be parsed.
    #[error("redis protocol error: {0}")]
    Protocol(String),
}

impl fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        if let Self::Io { source, .. } = self {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl HarnessError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }

    /// Turns a finished command into an error unless it succeeded.
    pub(crate) fn check(command: String, output: &Output) -> Result<(), Self> {
        if output.status.success() {
            return Ok(());
        }
        // initdb and friends report some failures on stdout; keep both.
        let mut stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        stderr.push_str(&String::from_utf8_lossy(&output.stdout));
        Err(Self::CommandFailed {
            command,
            status: output.status.to_string(),
            stderr,
        })
    }
}
