//! `coffer status`: the seed's alert list, checked against the backup sets on disk.
//! Each check gives ok, warning or critical; the worst one is the exit code (0/1/2), as
//! monitoring plugins do.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::sets::SetRecord;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Critical,
}

impl Level {
    pub fn exit_code(self) -> u8 {
        self as u8
    }
}

/// One check's result.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub message: String,
}

/// The alert thresholds (the seed's values by default).
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// Last good backup older than this: critical.
    pub max_age: Duration,
    /// Newest good set's size off the recent average by more than this fraction: warning.
    pub size_deviation: f64,
    /// How many earlier good sets make the average.
    pub size_window: usize,
    /// Free fraction of the backup volume below this: warning.
    pub min_free: f64,
    /// No restore test for this long: warning.
    pub restore_test_age: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_age: Duration::hours(25),
            size_deviation: 0.5,
            size_window: 7,
            min_free: 0.2,
            restore_test_age: Duration::days(8),
        }
    }
}

fn finding(check: &'static str, level: Level, message: String) -> Finding {
    Finding {
        check,
        level,
        message,
    }
}

fn age(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let h = (now - t).num_minutes() as f64 / 60.0;
    format!("{h:.1} h ago")
}

/// Every check, in a fixed order. `sets` oldest first; `free_fraction` `Err` when the
/// backup volume cannot be asked (BACKUP_DIR missing, unmounted).
pub fn evaluate(
    sets: &[SetRecord],
    free_fraction: Result<f64, String>,
    now: DateTime<Utc>,
    t: Thresholds,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let good: Vec<&SetRecord> = sets.iter().filter(|s| s.ok).collect();
    out.push(match sets.last() {
        None => finding("last_backup", Level::Critical, "no backup set".into()),
        Some(s) if !s.ok => {
            let why: Vec<String> = s
                .parts
                .iter()
                .filter_map(|p| Some(format!("{}: {}", p.kind?.name(), p.error.as_ref()?)))
                .collect();
            finding(
                "last_backup",
                Level::Critical,
                format!("the last backup, set {}, failed: {}", s.id, why.join("; ")),
            )
        }
        Some(s) => finding("last_backup", Level::Ok, format!("set {} is good", s.id)),
    });
    out.push(match good.last() {
        None => finding("backup_age", Level::Critical, "no good backup set".into()),
        Some(s) if now - s.finished > t.max_age => finding(
            "backup_age",
            Level::Critical,
            format!(
                "the last good backup, set {}, finished {} (limit {} h)",
                s.id,
                age(now, s.finished),
                t.max_age.num_hours()
            ),
        ),
        Some(s) => finding(
            "backup_age",
            Level::Ok,
            format!("the last good backup finished {}", age(now, s.finished)),
        ),
    });
    out.push(match good.split_last() {
        Some((last, earlier)) if !earlier.is_empty() => {
            let window = &earlier[earlier.len().saturating_sub(t.size_window)..];
            let avg = window.iter().map(|s| s.bytes() as f64).sum::<f64>() / window.len() as f64;
            let off = if avg > 0.0 {
                (last.bytes() as f64 - avg) / avg
            } else {
                0.0
            };
            let level = if off.abs() > t.size_deviation {
                Level::Warning
            } else {
                Level::Ok
            };
            finding(
                "backup_size",
                level,
                format!(
                    "set {} is {} bytes, {:+.0} % from the average of the {} good sets before it",
                    last.id,
                    last.bytes(),
                    off * 100.0,
                    window.len()
                ),
            )
        }
        _ => finding(
            "backup_size",
            Level::Ok,
            "fewer than two good sets: no average to compare with".into(),
        ),
    });
    out.push(match free_fraction {
        Ok(free) => finding(
            "disk_space",
            if free < t.min_free {
                Level::Warning
            } else {
                Level::Ok
            },
            format!(
                "{:.1} % of the backup volume is free (limit {:.0} %)",
                free * 100.0,
                t.min_free * 100.0
            ),
        ),
        Err(why) => finding(
            "disk_space",
            Level::Critical,
            format!("the backup volume cannot be read: {why}"),
        ),
    });
    let last_test = sets
        .iter()
        .flat_map(|s| s.restore_tests.iter().map(move |r| (s, r)))
        .max_by_key(|(_, r)| r.at);
    out.push(match last_test {
        None => finding("restore_test", Level::Warning, "no restore test yet".into()),
        Some((s, r)) if !r.passed => finding(
            "restore_test",
            Level::Critical,
            format!(
                "the last restore test, of set {}, {}, failed: {}",
                s.id,
                age(now, r.at),
                r.summary.join("; ")
            ),
        ),
        Some((s, r)) if now - r.at > t.restore_test_age => finding(
            "restore_test",
            Level::Warning,
            format!(
                "the last restore test, of set {}, ran {} (limit {} days)",
                s.id,
                age(now, r.at),
                t.restore_test_age.num_days()
            ),
        ),
        Some((s, r)) => finding(
            "restore_test",
            Level::Ok,
            format!("set {} passed its restore test {}", s.id, age(now, r.at)),
        ),
    });
    out
}
