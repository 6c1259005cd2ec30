//! Where the key of an encrypted archive comes from, for every command alike:
//! `--passphrase-file` or `--key-file` (or `COFFER_PASSPHRASE_FILE` / `COFFER_KEY_FILE` in the
//! environment), or the `COFFER_PASSPHRASE` environment variable. The commands that read
//! backup.conf use its ENCRYPTION_KEY_FILE or ENCRYPTION_PASSPHRASE_FILE when neither
//! option is given (before COFFER_PASSPHRASE). A passphrase is never taken on the command
//! line, where `ps` and shell history would show it.

use std::path::PathBuf;

use clap::Args;
use coffer_format::KeySource;

use crate::config::Config;
use crate::error::CliError;
use crate::exit;

/// Key options shared by every command that reads or writes archives.
#[derive(Args, Debug, Clone, Default)]
pub struct KeyArgs {
    /// Read the passphrase from FILE (one trailing newline is ignored). The environment
    /// variable COFFER_PASSPHRASE is used when no key option is given.
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        conflicts_with = "key_file",
        env = "COFFER_PASSPHRASE_FILE"
    )]
    pub passphrase_file: Option<PathBuf>,
    /// Use the contents of FILE (at least 32 bytes) as the key.
    #[arg(long, value_name = "FILE", global = true, env = "COFFER_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The key from the command line; else from the configuration's ENCRYPTION_KEY_FILE
    /// or ENCRYPTION_PASSPHRASE_FILE; else COFFER_PASSPHRASE. Only where the key is, never
    /// the key, is in the configuration.
    pub fn source_or_config(&self, config: &Config) -> Result<Option<KeySource>, CliError> {
        if self.key_file.is_some() || self.passphrase_file.is_some() {
            return self.source();
        }
        let from_config = KeyArgs {
            key_file: config.get("ENCRYPTION_KEY_FILE").map(PathBuf::from),
            passphrase_file: config.get("ENCRYPTION_PASSPHRASE_FILE").map(PathBuf::from),
        };
        if from_config.key_file.is_some() && from_config.passphrase_file.is_some() {
            return Err(CliError::new(
                exit::USAGE,
                "configuration: set ENCRYPTION_KEY_FILE or ENCRYPTION_PASSPHRASE_FILE, not both",
            ));
        }
        from_config.source()
    }

    /// The key, if one was given.
    pub fn source(&self) -> Result<Option<KeySource>, CliError> {
        if let Some(path) = &self.key_file {
            return KeySource::key_file(path)
                .map(Some)
                .map_err(|e| CliError::new(exit::KEY, e.to_string()));
        }
        if let Some(path) = &self.passphrase_file {
            let mut bytes = std::fs::read(path).map_err(|e| {
                CliError::new(
                    exit::KEY,
                    format!("reading passphrase file {}: {e}", path.display()),
                )
            })?;
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
            }
            if bytes.is_empty() {
                return Err(CliError::new(
                    exit::KEY,
                    format!("passphrase file {} is empty", path.display()),
                ));
            }
            return Ok(Some(KeySource::passphrase(bytes)));
        }
        match std::env::var_os("COFFER_PASSPHRASE") {
            Some(p) if !p.is_empty() => Ok(Some(KeySource::passphrase(p.into_encoded_bytes()))),
            _ => Ok(None),
        }
    }
}
