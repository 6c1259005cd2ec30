//! `coffer prune` and `coffer pin`: retention of backup sets.

use chrono::Utc;
use clap::Args;

use super::config::ConfigArgs;
use super::ops::Ops;
use crate::error::CliError;
use crate::exit;
use crate::retention::{self, Verdict};

/// `coffer prune` options.
#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Show what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print every set's verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `coffer pin` options.
#[derive(Args, Debug)]
pub struct PinArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The set id (YYYYmmdd_HHMMSS, as in sets/ and the archive names).
    #[arg(value_name = "SET")]
    pub id: String,
    /// Unpin instead: the set falls under the retention policy again.
    #[arg(long)]
    pub remove: bool,
}

/// Applies the retention policy (the caller holds the directory lock): deletes the sets it
/// does not keep, and leftovers of backups that died mid-way. Returns every verdict. `say`
/// prints a dry run's "would delete" lines (not with `--json`, whose standard output is
/// the JSON).
pub fn prune(ops: &Ops, dry_run: bool, say: bool) -> Result<Vec<Verdict>, CliError> {
    let mut warnings = Vec::new();
    let sets = ops.dir.list(&mut warnings)?;
    for w in &warnings {
        ops.log(&format!("WARNING: {w}"));
    }
    let verdicts = retention::plan(&sets, ops.policy(), Utc::now());
    for (set, v) in sets.iter().zip(&verdicts) {
        if v.keep {
            continue;
        }
        if dry_run {
            if say {
                println!("would delete set {} ({} bytes)", set.id, set.bytes());
            }
        } else {
            ops.dir.remove(set)?;
            ops.log(&format!("pruned set {} ({} bytes)", set.id, set.bytes()));
        }
    }
    if !dry_run {
        // no backup runs while the lock is held: whatever is in .incoming is left over
        if let Ok(entries) = std::fs::read_dir(ops.dir.root.join(".incoming")) {
            for e in entries.flatten() {
                if std::fs::remove_dir_all(e.path()).is_ok() {
                    ops.log(&format!(
                        "removed {}, left by a backup that did not finish",
                        e.path().display()
                    ));
                }
            }
        }
    }
    Ok(verdicts)
}

pub fn run(args: PruneArgs) -> Result<u8, CliError> {
    let (config, _) = args.config.load()?;
    let ops = Ops::open(&config, None)?;
    let _lock = ops.dir.lock()?;
    let verdicts = prune(&ops, args.dry_run, !args.json)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&verdicts).expect("serialises")
        );
    } else {
        for v in verdicts.iter().filter(|v| v.keep) {
            println!("keep set {} ({})", v.id, v.reasons.join(", "));
        }
    }
    if !args.dry_run {
        ops.write_metrics();
    }
    Ok(exit::OK)
}

pub fn pin(args: PinArgs) -> Result<u8, CliError> {
    let (config, _) = args.config.load()?;
    let ops = Ops::open(&config, None)?;
    let _lock = ops.dir.lock()?;
    let mut record = ops.dir.read(&args.id)?;
    record.pinned = !args.remove;
    ops.dir.write(&record)?;
    ops.log(&format!(
        "set {} {}",
        record.id,
        if record.pinned {
            "pinned: kept whatever the retention policy says"
        } else {
            "unpinned"
        }
    ));
    Ok(exit::OK)
}
