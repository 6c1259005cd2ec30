//! What every dump command shares: where the archive goes, and the progress bar.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use coffer_format::{ArchiveWriter, WriterOptions};

use crate::error::CliError;
use crate::exit;

/// The archive writer for `-f FILE`, or for standard output when FILE is absent or `-`.
/// An archive is binary: standard output must not be a terminal.
pub fn archive_writer(
    file: Option<&Path>,
    options: WriterOptions,
) -> Result<ArchiveWriter, CliError> {
    match file {
        Some(f) if f.as_os_str() != "-" => {
            ArchiveWriter::create(f, options).map_err(CliError::writing)
        }
        _ => {
            if std::io::stdout().is_terminal() {
                return Err(CliError::new(
                    exit::USAGE,
                    "refusing to write an archive to a terminal; use -f FILE or a pipe",
                ));
            }
            ArchiveWriter::to_writer(Box::new(std::io::stdout()), options)
                .map_err(CliError::writing)
        }
    }
}

/// A progress bar on a terminal; hidden otherwise (and with --json).
pub fn progress_bar(json: bool) -> indicatif::ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}",
        )
        .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
