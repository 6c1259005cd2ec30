//! The Prometheus textfile (for node_exporter's textfile collector): what the backup sets
//! on disk say, written atomically after each backup and restore test.

use std::fmt::Write;

use crate::sets::SetRecord;

/// Renders the metrics for `sets` (oldest first) and the backup volume's free fraction.
pub fn render(sets: &[SetRecord], free_fraction: Option<f64>, environment: &str) -> String {
    let env = environment.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{{environment=\"{env}\"{labels}}} {v}");
        }
    };
    let ts = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis() as f64 / 1000.0;
    let last_good = sets.iter().rev().find(|s| s.ok);
    let last = sets.last();
    gauge(
        "coffer_backup_last_success_timestamp_seconds",
        "When the newest good backup set finished (Unix time).",
        &last_good
            .map(|s| vec![(String::new(), ts(s.finished))])
            .unwrap_or_default(),
    );
    gauge(
        "coffer_backup_last_run_timestamp_seconds",
        "When the newest backup set, good or failed, finished (Unix time).",
        &last
            .map(|s| vec![(String::new(), ts(s.finished))])
            .unwrap_or_default(),
    );
    gauge(
        "coffer_backup_last_run_success",
        "1 if the newest backup set is good, 0 if it failed.",
        &last
            .map(|s| vec![(String::new(), f64::from(u8::from(s.ok)))])
            .unwrap_or_default(),
    );
    gauge(
        "coffer_backup_sets",
        "Backup sets on disk.",
        &[(String::new(), sets.len() as f64)],
    );
    let parts = |f: &dyn Fn(&crate::sets::Part) -> Option<f64>| -> Vec<(String, f64)> {
        last_good
            .into_iter()
            .flat_map(|s| &s.parts)
            .filter_map(|p| {
                let kind = p.kind?.name();
                Some((format!(",part=\"{kind}\""), f(p)?))
            })
            .collect()
    };
    gauge(
        "coffer_backup_duration_seconds",
        "Time each part of the newest good set took, dump and verification.",
        &parts(&|p| Some(p.seconds)),
    );
    gauge(
        "coffer_backup_bytes",
        "Archive size of each part of the newest good set.",
        &parts(&|p| Some(p.bytes as f64)),
    );
    gauge(
        "coffer_backup_rows",
        "Rows in the newest good PostgreSQL archive.",
        &parts(&|p| p.rows.map(|r| r as f64)),
    );
    gauge(
        "coffer_backup_keys",
        "Keys in the newest good Redis archive.",
        &parts(&|p| p.keys.map(|k| k as f64)),
    );
    let last_test = sets
        .iter()
        .flat_map(|s| &s.restore_tests)
        .max_by_key(|t| t.at);
    gauge(
        "coffer_restore_test_last_timestamp_seconds",
        "When the newest restore test ran (Unix time).",
        &last_test
            .map(|t| vec![(String::new(), ts(t.at))])
            .unwrap_or_default(),
    );
    gauge(
        "coffer_restore_test_last_success",
        "1 if the newest restore test passed, 0 if it failed.",
        &last_test
            .map(|t| vec![(String::new(), f64::from(u8::from(t.passed)))])
            .unwrap_or_default(),
    );
    gauge(
        "coffer_backup_volume_free_ratio",
        "Free fraction of the backup volume (0-1).",
        &free_fraction
            .map(|f| vec![(String::new(), f)])
            .unwrap_or_default(),
    );
    out
}
