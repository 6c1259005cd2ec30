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

/// One bar per restore phase on a terminal: bytes for the data phase, entries for the
/// others, a spinner when the total is not known (from a pipe). Each phase's bar stays on
/// screen, finished, when the next starts.
pub struct PhaseBars {
    visible: bool,
    current: std::sync::Mutex<indicatif::ProgressBar>,
}

impl PhaseBars {
    pub fn new(json: bool) -> Self {
        PhaseBars {
            visible: !json && std::io::stderr().is_terminal(),
            current: std::sync::Mutex::new(indicatif::ProgressBar::hidden()),
        }
    }

    /// A phase starts.
    pub fn phase(&self, name: &str, bytes: u64, entries: u64) {
        let mut cur = self.current.lock().expect("progress lock");
        cur.finish();
        if !self.visible {
            return;
        }
        let (len, template) = match (bytes, entries) {
            (0, 0) => (None, "{spinner} {prefix:<24} {elapsed} {wide_msg}"),
            (0, n) => (
                Some(n),
                "{spinner} {prefix:<24} [{bar:30}] {pos}/{len} entries {elapsed}",
            ),
            (b, _) => (
                Some(b),
                "{spinner} {prefix:<24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            ),
        };
        let bar = match len {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        *cur = bar;
    }

    /// Progress within the phase.
    pub fn inc(&self, n: u64) {
        self.current.lock().expect("progress lock").inc(n);
    }

    /// The restore ended: leave the last bar finished, or clear it after a failure.
    pub fn finish(&self, ok: bool) {
        let cur = self.current.lock().expect("progress lock");
        if ok { cur.finish() } else { cur.abandon() }
    }
}
