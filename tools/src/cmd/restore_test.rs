//! `coffer restore-test`: the seed's restore_db_test.sh. Restores an archive into a
//! throwaway database, checks every table's rows and the object counts against what the
//! archive says it holds, reports, and drops the database.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use coffer_engine::pg::check::{CheckReport, check};
use coffer_engine::pg::conn::{ProcessEnv, connect};
use coffer_engine::pg::restore::{self, RestoreOptions};
use coffer_engine::pg::sql::PgArchive;
use coffer_format::{KeySource, MappedArchive};

use super::pg::ConnArgs;
use crate::error::CliError;
use crate::exit;

/// `coffer restore-test` options.
#[derive(Args, Debug)]
pub struct RestoreTestArgs {
    /// The archive; by default the newest `*.coffer` under `$BACKUP_DIR/postgres/`.
    pub archive: Option<PathBuf>,
    /// Connection to the server; -d names the database to connect through (default
    /// `postgres`), not the test database.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Name of the throwaway database; it must not exist.
    #[arg(long, env = "TEST_DB_NAME", default_value = "coffer_restore_test")]
    pub test_db: String,
    /// Restore over N connections.
    #[arg(short = 'j', long = "jobs", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Keep the test database afterwards (to look at it).
    #[arg(long)]
    pub keep: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print help (`-h` is the host).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// The newest archive under `$BACKUP_DIR/postgres/`.
fn newest_archive() -> Result<PathBuf, CliError> {
    let dir = std::env::var_os("BACKUP_DIR")
        .map(|d| Path::new(&d).join("postgres"))
        .ok_or_else(|| CliError::new(exit::USAGE, "no archive given and BACKUP_DIR is not set"))?;
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| CliError::new(exit::BAD_INPUT, format!("{}: {e}", dir.display())))?;
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "coffer"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, p)| p)
        .ok_or_else(|| {
            CliError::new(
                exit::BAD_INPUT,
                format!("no *.coffer archive in {}", dir.display()),
            )
        })
}

pub fn run(args: RestoreTestArgs, key: Option<KeySource>) -> Result<u8, CliError> {
    let path = match &args.archive {
        Some(p) => p.clone(),
        None => newest_archive()?,
    };
    let archive = Arc::new(
        MappedArchive::open(&path, key.as_ref()).map_err(|e| CliError::reading(&path, e))?,
    );
    let pg = PgArchive::read(&archive)?;
    let mut conn = args.conn.options();
    conn.dbname.get_or_insert_with(|| "postgres".into());
    let maintenance = conn.resolve(&ProcessEnv)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(exit::OUTPUT, e.to_string()))?;
    let started = Instant::now();
    let test_db = args.test_db.clone();
    let outcome: Result<CheckReport, CliError> = runtime.block_on(async {
        let admin = connect(&maintenance).await?;
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&test_db])
            .await
            .map_err(|e| coffer_engine::pg::session::sql_error(e, "looking for the test database"))?;
        if exists.is_some() {
            return Err(CliError::new(
                exit::USAGE,
                format!("database {test_db} exists; restore-test creates and drops its own: choose another --test-db (or TEST_DB_NAME)"),
            ));
        }
        let target = restore::create_database(&maintenance, &archive, Some(&test_db)).await?;
        let opts = RestoreOptions { jobs: args.jobs.into(), ..RestoreOptions::default() };
        let restored = restore::restore(archive.clone(), &target, &opts, Arc::new(|_| {})).await;
        let checked = match restored {
            Ok(_) => {
                let client = connect(&target).await?;
                check(&client, &pg).await.map_err(CliError::from)
            }
            Err(e) => Err(CliError::from(e)),
        };
        if !args.keep {
            // connections to the test database are closed by now; FORCE covers stragglers
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&test_db));
            admin.batch_execute(&drop).await.map_err(|e| coffer_engine::pg::session::sql_error(e, "dropping the test database"))?;
        }
        checked
    });
    let secs = started.elapsed().as_secs_f64();
    let (report, failure) = match outcome {
        Ok(r) => (Some(r), None),
        Err(e) if e.code == exit::USAGE => return Err(e),
        Err(e) => (None, Some(e)),
    };
    let passed = report.as_ref().is_some_and(|r| r.ok);
    if args.json {
        let doc = serde_json::json!({
            "archive": path.display().to_string(),
            "test_database": args.test_db,
            "kept": args.keep,
            "passed": passed,
            "seconds": secs,
            "error": failure.as_ref().map(|e| e.message.clone()),
            "report": report,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
    } else {
        println!(
            "restore test of {} into {}: {}",
            path.display(),
            args.test_db,
            if passed { "PASSED" } else { "FAILED" }
        );
        if let Some(e) = &failure {
            println!("  restore failed: {}", e.message);
        }
        if let Some(r) = &report {
            let bad: Vec<_> = r.tables.iter().filter(|t| !t.ok).collect();
            println!(
                "  tables: {} checked, {} mismatched",
                r.tables.len(),
                bad.len()
            );
            for t in bad {
                println!(
                    "    {}: {} rows ({}), expected {} rows ({})",
                    t.table, t.rows, t.checksum, t.expected_rows, t.expected_checksum
                );
            }
            for o in &r.objects {
                println!(
                    "  {:<20} {:>6} (expected {}){}",
                    o.kind,
                    o.found,
                    o.expected,
                    if o.ok { "" } else { "  MISMATCH" }
                );
            }
        }
        println!(
            "  took {secs:.1} s{}",
            if args.keep {
                format!("; database {} kept", args.test_db)
            } else {
                String::new()
            }
        );
    }
    Ok(if passed { exit::OK } else { exit::DAMAGED })
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
