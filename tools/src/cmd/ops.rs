//! What the operational commands (backup, prune, pin, status, restore-test --latest)
//! share: the backup directory, the key, the monthly log, notifications and metrics, all
//! from the configuration.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use crate::config::Config;
use crate::error::CliError;
use crate::exit;
use crate::notify::{self, Notifier};
use crate::retention::Policy;
use crate::sets::{BackupDir, write_atomic};

/// The configuration turned into what the commands use.
pub struct Ops {
    pub config: Config,
    pub dir: BackupDir,
    metrics_file: Option<PathBuf>,
}

impl Ops {
    /// Reads what the configuration says; creates nothing. The key is not loaded here:
    /// only the commands that read or write archives need it (and a monitoring user
    /// running `status` may not be able to read it).
    pub fn open(config: &Config, metrics_file: Option<PathBuf>) -> Result<Ops, CliError> {
        for w in &config.warnings {
            eprintln!("coffer: warning: {w}");
        }
        let dir = BackupDir::new(config.get("BACKUP_DIR").unwrap_or("/var/backups/coffer"));
        Ok(Ops {
            metrics_file: metrics_file.or_else(|| config.get("METRICS_FILE").map(PathBuf::from)),
            config: config.clone(),
            dir,
        })
    }

    /// The retention policy.
    pub fn policy(&self) -> Policy {
        let n = |k| self.config.number(k);
        Policy {
            days: n("RETENTION_DAYS"),
            keep_last: n("KEEP_LAST"),
            keep_daily: n("KEEP_DAILY"),
            keep_weekly: n("KEEP_WEEKLY"),
            keep_monthly: n("KEEP_MONTHLY"),
        }
    }

    /// This month's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir
            .logs()
            .join(format!("backup_{}.log", Utc::now().format("%Y%m")))
    }

    /// Appends a line to the monthly log (0600) and echoes it on standard error. A log
    /// that cannot be written is said on standard error; it does not stop the job.
    pub fn log(&self, message: &str) {
        let line = format!("{} {message}\n", Utc::now().format("%Y-%m-%dT%H:%M:%SZ"));
        eprint!("{line}");
        let path = self.log_path();
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            eprintln!(
                "coffer: warning: cannot write the log {}: {e}",
                path.display()
            );
        }
    }

    /// Sends the notification if the configuration asks for it after this result. A
    /// failure to deliver is logged, never returned.
    pub fn notify(&self, ok: bool, event: &Value, summary: &str) {
        if !self.config.flag("NOTIFICATION_ENABLED") {
            return;
        }
        let wanted = match self.config.get("NOTIFY_ON").unwrap_or("always") {
            "failure" => !ok,
            "success" => ok,
            _ => true,
        };
        if !wanted {
            return;
        }
        let Some(url) = self.config.get("NOTIFICATION_URL") else {
            self.log("NOTIFICATION_ENABLED is true but NOTIFICATION_URL is not set: no notification sent");
            return;
        };
        let notifier = Notifier {
            url: url.to_string(),
            timeout: Duration::from_secs(self.config.number("NOTIFICATION_TIMEOUT").max(1).into()),
            retries: self.config.number("NOTIFICATION_RETRIES"),
            backoff: Duration::from_secs(1),
        };
        match notifier.send(&notify::body(url, event, summary)) {
            Ok(()) => self.log("notification sent"),
            Err(e) => self.log(&format!("WARNING: {e}")),
        }
    }

    /// Rewrites the metrics file, if one is configured; a failure is logged.
    pub fn write_metrics(&self) {
        let Some(path) = &self.metrics_file else {
            return;
        };
        let mut warnings = Vec::new();
        let result = self.dir.list(&mut warnings).and_then(|sets| {
            let free = self.dir.free_fraction().ok();
            let text =
                crate::metrics::render(&sets, free, self.config.get("ENVIRONMENT").unwrap_or(""));
            // node_exporter runs as its own user: the metrics are for it to read
            write_atomic(path, text.as_bytes(), 0o644)
        });
        if let Err(e) = result {
            self.log(&format!("WARNING: metrics file not written: {}", e.message));
        }
    }
}

/// Moves a sealed archive into place: never over an existing file, and durably (both
/// directories synced).
pub fn publish(from: &Path, to: &Path) -> Result<(), CliError> {
    let fail = |e: std::io::Error| {
        CliError::new(
            exit::OUTPUT,
            format!("publishing {} as {}: {e}", from.display(), to.display()),
        )
    };
    if to.exists() {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the destination exists",
        )));
    }
    std::fs::rename(from, to).map_err(fail)?;
    for d in [to.parent(), from.parent()].into_iter().flatten() {
        File::open(d).and_then(|f| f.sync_all()).map_err(fail)?;
    }
    Ok(())
}

/// BLAKE3 of a whole file, hex (what `b3sum` prints).
/// Verifies an archive frame by frame and hashes the whole file, side by side: the hash
/// reads the file a little ahead of verify, whose reads then come from the page cache, so
/// the disk is read once, not twice.
pub fn verify_and_hash(
    path: &Path,
    key: Option<&coffer_format::KeySource>,
) -> Result<(coffer_format::VerifyReport, String), CliError> {
    let (report, hash) = std::thread::scope(|s| {
        let hash = s.spawn(|| hash_file(path));
        let report = coffer_format::verify(path, key);
        (report, hash.join().expect("hashing never panics"))
    });
    Ok((report.map_err(|e| CliError::reading(path, e))?, hash?))
}

fn hash_file(path: &Path) -> Result<String, CliError> {
    let fail = |e: std::io::Error| {
        CliError::new(exit::BAD_INPUT, format!("hashing {}: {e}", path.display()))
    };
    let mut f = File::open(path).map_err(fail)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(fail)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_hex().to_string())
}

/// This machine's name, for notifications.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}
