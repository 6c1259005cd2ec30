//! `coffer status`: backup health for monitoring, exit 0/1/2 (ok/warning/critical).

use std::path::PathBuf;

use chrono::{Duration, Utc};
use clap::Args;

use super::config::ConfigArgs;
use super::ops::Ops;
use crate::error::CliError;
use crate::health::{self, Level, Thresholds};

/// `coffer status` options.
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Critical when the last good backup is older than this many hours.
    #[arg(long, value_name = "HOURS", default_value_t = 25)]
    pub max_age_hours: u32,
    /// Warning when the newest good set's size is off the average of the sets before it
    /// by more than this many percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 50)]
    pub size_deviation: u32,
    /// Warning when less than this many percent of the backup volume is free.
    #[arg(long, value_name = "PERCENT", default_value_t = 20.0)]
    pub min_free: f64,
    /// Warning when the last restore test is older than this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 8)]
    pub restore_test_days: u32,
    /// Also (re)write the Prometheus textfile here (default: METRICS_FILE, if set).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: StatusArgs) -> Result<u8, CliError> {
    let (config, _) = args.config.load()?;
    let ops = Ops::open(&config, args.metrics_file.clone())?;
    let mut warnings = Vec::new();
    let sets = ops.dir.list(&mut warnings)?;
    // a missing or unmounted BACKUP_DIR is a finding, not a failure of status itself
    let free = ops.dir.free_fraction().map_err(|e| e.message);
    let t = Thresholds {
        max_age: Duration::hours(args.max_age_hours.into()),
        size_deviation: f64::from(args.size_deviation) / 100.0,
        min_free: args.min_free / 100.0,
        restore_test_age: Duration::days(args.restore_test_days.into()),
        ..Thresholds::default()
    };
    let findings = health::evaluate(&sets, free, Utc::now(), t);
    let worst = findings.iter().map(|f| f.level).max().unwrap_or(Level::Ok);
    ops.write_metrics();
    if args.json {
        let doc = serde_json::json!({
            "status": worst,
            "backup_dir": ops.dir.root.display().to_string(),
            "sets": sets.len(),
            "findings": findings,
            "warnings": warnings,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
    } else {
        let word = |l: Level| match l {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
        };
        println!(
            "coffer {}: {} ({} sets)",
            word(worst),
            ops.dir.root.display(),
            sets.len()
        );
        for f in &findings {
            println!("  {:<8} {:<13} {}", word(f.level), f.check, f.message);
        }
        for w in &warnings {
            eprintln!("coffer: warning: {w}");
        }
    }
    Ok(worst.exit_code())
}
