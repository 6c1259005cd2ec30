//! `coffer restore-test`: the seed's restore_db_test.sh. Restores an archive into a
//! throwaway database, checks every table's rows and the object counts against what the
//! archive says it holds, reports, and drops the database.
//!
//! With `--latest` (or `--backup-set ID`) it tests a whole backup set: the PostgreSQL part
//! as above, the Redis part restored into a throwaway redis-server and compared key by key
//! (or, without redis-server on the machine, every value decoded and the digests checked,
//! which the report says). The result is recorded in the set for `coffer status` and the
//! metrics.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use clap::Args;
use coffer_engine::pg::check::{CheckReport, check};
use coffer_engine::pg::conn::{ConnectOptions, ProcessEnv, Target, connect};
use coffer_engine::pg::restore::{self, RestoreOptions};
use coffer_engine::pg::sql::PgArchive;
use coffer_engine::redis::replica::ReplicaOptions;
use coffer_engine::redis::restore::{RedisRestoreOptions, restore as redis_restore};
use coffer_format::{KeySource, MappedArchive};
use coffer_testkit::RedisServer;
use serde_json::{Value, json};

use super::backup::{pg_connection, resolve_pg};
use super::config::ConfigArgs;
use super::ops::Ops;
use super::pg::ConnArgs;
use crate::error::CliError;
use crate::exit;
use crate::keys::KeyArgs;
use crate::redis_check::{self, DbCheck};
use crate::sets::{PartKind, RestoreTest};

/// `coffer restore-test` options.
#[derive(Args, Debug)]
pub struct RestoreTestArgs {
    /// The archive (PostgreSQL or Redis); by default the newest `*.coffer` under
    /// `$BACKUP_DIR/postgres/`.
    pub archive: Option<PathBuf>,
    /// Test the newest good backup set under BACKUP_DIR, every part, and record the result.
    #[arg(long, conflicts_with = "archive")]
    pub latest: bool,
    /// Test this backup set (its id, YYYYmmdd_HHMMSS) and record the result.
    #[arg(long, value_name = "ID", conflicts_with_all = ["archive", "latest"])]
    pub backup_set: Option<String>,
    /// Connection to the server; -d names the database to connect through (default
    /// `postgres`), not the test database. With a backup set, the configuration's
    /// DB_HOST, DB_PORT, POSTGRES_USER and POSTGRES_PASSWORD are used where these are not
    /// given.
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Name of the throwaway database; it must not exist. Default: TEST_DB_NAME (from the
    /// environment or the configuration), else coffer_restore_test.
    #[arg(long, value_name = "NAME")]
    pub test_db: Option<String>,
    /// Restore over N connections.
    #[arg(short = 'j', long = "jobs", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Keep the test database afterwards (to look at it).
    #[arg(long)]
    pub keep: bool,
    /// With a backup set: write the Prometheus textfile here (default: METRICS_FILE).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print help (`-h` is the host).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// One archive's test.
struct Outcome {
    passed: bool,
    /// One line for the set record and the log.
    line: String,
    /// The human report.
    text: Vec<String>,
    json: Value,
}

/// The newest archive under `BACKUP_DIR/postgres/`.
fn newest_archive(backup_dir: &str) -> Result<PathBuf, CliError> {
    let dir = Path::new(backup_dir).join("postgres");
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

fn open(path: &Path, key: Option<&KeySource>) -> Result<Arc<MappedArchive>, CliError> {
    Ok(Arc::new(
        MappedArchive::open(path, key).map_err(|e| CliError::reading(path, e))?,
    ))
}

/// Restores a PostgreSQL archive into `test_db` (created, then dropped unless `keep`) and
/// checks it. An `Err` is a usage problem (the test database exists); a failed restore
/// is a failed outcome.
fn test_pg(
    path: &Path,
    archive: Arc<MappedArchive>,
    maintenance: &Target,
    test_db: &str,
    jobs: usize,
    keep: bool,
) -> Result<Outcome, CliError> {
    let pg = PgArchive::read(&archive)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(exit::OUTPUT, e.to_string()))?;
    let started = Instant::now();
    let outcome: Result<CheckReport, CliError> = runtime.block_on(async {
        let admin = connect(maintenance).await?;
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
        let target = restore::create_database(maintenance, &archive, Some(test_db), None).await?;
        let opts = RestoreOptions { jobs, ..RestoreOptions::default() };
        let restored = restore::restore(archive.clone(), &target, &opts, Arc::new(|_| {})).await;
        let checked = match restored {
            Ok(_) => {
                let client = connect(&target).await?;
                check(&client, &pg).await.map_err(CliError::from)
            }
            Err(e) => Err(CliError::from(e)),
        };
        if !keep {
            // connections to the test database are closed by now; FORCE covers stragglers
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(test_db));
            admin.batch_execute(&drop).await.map_err(|e| coffer_engine::pg::session::sql_error(e, "dropping the test database"))?;
        }
        checked
    });
    let secs = started.elapsed().as_secs_f64();
    let (report, failure) = match outcome {
        Ok(r) => (Some(r), None),
        // a test database that is there already, or a server the test cannot reach, says
        // nothing about the archive: stop with that error, no verdict
        Err(e) if matches!(e.code, exit::USAGE | exit::CONNECT) => return Err(e),
        Err(e) => (None, Some(e)),
    };
    let passed = report.as_ref().is_some_and(|r| r.ok);
    let mut text = vec![format!(
        "restore test of {} into {test_db}: {}",
        path.display(),
        if passed { "PASSED" } else { "FAILED" }
    )];
    if let Some(e) = &failure {
        text.push(format!("  restore failed: {}", e.message));
    }
    let mut bad_tables = Vec::new();
    if let Some(r) = &report {
        let bad: Vec<_> = r.tables.iter().filter(|t| !t.ok).collect();
        text.push(format!(
            "  tables: {} checked, {} mismatched",
            r.tables.len(),
            bad.len()
        ));
        for t in bad {
            bad_tables.push(t.table.clone());
            text.push(format!(
                "    {}: {} rows ({}), expected {} rows ({})",
                t.table, t.rows, t.checksum, t.expected_rows, t.expected_checksum
            ));
        }
        for o in &r.objects {
            text.push(format!(
                "  {:<20} {:>6} (expected {}){}",
                o.kind,
                o.found,
                o.expected,
                if o.ok { "" } else { "  MISMATCH" }
            ));
        }
    }
    text.push(format!(
        "  took {secs:.1} s{}",
        if keep {
            format!("; database {test_db} kept")
        } else {
            String::new()
        }
    ));
    let line = match (&failure, &report) {
        (Some(e), _) => format!("postgres: restore failed: {}", e.message),
        (None, Some(r)) if passed => format!(
            "postgres: passed ({} tables, {} objects checked)",
            r.tables.len(),
            r.objects.len()
        ),
        _ => format!("postgres: FAILED: mismatched {}", bad_tables.join(", ")),
    };
    Ok(Outcome {
        passed,
        line,
        text,
        json: json!({
            "kind": "postgres",
            "archive": path.display().to_string(),
            "test_database": test_db,
            "kept": keep,
            "passed": passed,
            "seconds": secs,
            "error": failure.as_ref().map(|e| e.message.clone()),
            "report": report,
        }),
    })
}

/// Tests a Redis archive: restored into a throwaway redis-server and compared key by key
/// when the binary is here; else decoded and checked against its manifest.
fn test_redis(path: &Path, archive: &MappedArchive) -> Outcome {
    let started = Instant::now();
    // the same search RedisServer::start makes ($COFFER_REDIS_SERVER, $PATH, /usr/bin)
    let have_server = coffer_testkit::redis_server_binary().is_ok();
    let result = (|| -> Result<(Vec<DbCheck>, Option<u64>), CliError> {
        if !have_server {
            return Ok((redis_check::check(archive, None)?, None));
        }
        let server = RedisServer::start().map_err(|e| {
            CliError::new(
                exit::DATABASE,
                format!("starting a throwaway redis-server: {e}"),
            )
        })?;
        let opts = RedisRestoreOptions {
            target: ReplicaOptions {
                host: "127.0.0.1".into(),
                port: server.port(),
                ..ReplicaOptions::default()
            },
            ..RedisRestoreOptions::default()
        };
        let restored = redis_restore(archive, &opts, &|_| {})?;
        let mut live = redis_check::Live::connect(server.port())?;
        Ok((
            redis_check::check(archive, Some(&mut live))?,
            Some(restored.keys),
        ))
    })();
    let secs = started.elapsed().as_secs_f64();
    let how = if have_server {
        "restored into a throwaway redis-server and compared key by key"
    } else {
        "redis-server not found: every value decoded and the digests checked, not restored"
    };
    match result {
        Ok((dbs, restored)) => {
            let passed = dbs.iter().all(DbCheck::ok);
            let keys: u64 = dbs.iter().map(|d| d.keys).sum();
            let mut text = vec![
                format!(
                    "restore test of {}: {}",
                    path.display(),
                    if passed { "PASSED" } else { "FAILED" }
                ),
                format!("  {how}"),
            ];
            for d in &dbs {
                text.push(format!(
                    "  db{:<3} {:>9} keys (expected {}), digest {}{}",
                    d.db,
                    d.keys,
                    d.expected_keys,
                    if d.digest_ok { "ok" } else { "MISMATCH" },
                    d.live.as_ref().map_or(String::new(), |l| format!(
                        ", live: {} compared, {} missing, {} different, {} extra",
                        l.compared, l.missing, l.different, l.extra
                    ))
                ));
                for p in &d.problems {
                    text.push(format!("    {p}"));
                }
            }
            text.push(format!("  took {secs:.1} s"));
            Outcome {
                passed,
                line: format!(
                    "redis: {} ({keys} keys; {how})",
                    if passed { "passed" } else { "FAILED" }
                ),
                text,
                json: json!({
                    "kind": "redis", "archive": path.display().to_string(), "passed": passed,
                    "seconds": secs, "method": how, "restored_keys": restored, "databases": dbs,
                }),
            }
        }
        Err(e) => Outcome {
            passed: false,
            line: format!("redis: FAILED: {}", e.message),
            text: vec![
                format!("restore test of {}: FAILED", path.display()),
                format!("  {}", e.message),
            ],
            json: json!({
                "kind": "redis", "archive": path.display().to_string(), "passed": false,
                "seconds": secs, "error": e.message,
            }),
        },
    }
}

fn is_redis(archive: &MappedArchive) -> bool {
    archive.manifest().app["source"] == "redis"
}

/// The maintenance connection: flags, then (for a set) the configuration, then libpq's
/// environment; the database defaults to `postgres`.
fn maintenance(args: &RestoreTestArgs, ops: Option<&Ops>) -> Result<Target, CliError> {
    let flags = args.conn.options();
    let base = ops.map(|o| pg_connection(&o.config)).unwrap_or_default();
    let conn = ConnectOptions {
        dbname: Some(flags.dbname.unwrap_or_else(|| "postgres".into())),
        host: flags.host.or(base.host),
        port: flags.port.or(base.port),
        user: flags.user.or(base.user),
    };
    match ops {
        Some(o) => resolve_pg(&o.config, &conn),
        None => Ok(conn.resolve(&ProcessEnv)?),
    }
}

fn print(outcomes: &[Outcome], json: bool, extra: Value) {
    if json {
        let passed = outcomes.iter().all(|o| o.passed);
        let mut doc = json!({
            "passed": passed,
            "parts": outcomes.iter().map(|o| o.json.clone()).collect::<Vec<_>>(),
        });
        if let (Value::Object(d), Value::Object(e)) = (&mut doc, extra) {
            d.extend(e);
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
    } else {
        for o in outcomes {
            for l in &o.text {
                println!("{l}");
            }
        }
    }
}

pub fn run(args: RestoreTestArgs, keys: &KeyArgs) -> Result<u8, CliError> {
    let (config, _) = args.config.load()?;
    // TEST_DB_NAME: the environment overrides the file, as for every key
    let test_db = args.test_db.clone().unwrap_or_else(|| {
        config
            .get("TEST_DB_NAME")
            .unwrap_or("coffer_restore_test")
            .to_string()
    });
    if !args.latest && args.backup_set.is_none() {
        let key = keys.source_or_config(&config)?;
        let path = match &args.archive {
            Some(p) => p.clone(),
            None => newest_archive(config.get("BACKUP_DIR").unwrap_or("/var/backups/coffer"))?,
        };
        let archive = open(&path, key.as_ref())?;
        let outcome = if is_redis(&archive) {
            test_redis(&path, &archive)
        } else {
            let m = maintenance(&args, None)?;
            test_pg(&path, archive, &m, &test_db, args.jobs.into(), args.keep)?
        };
        let passed = outcome.passed;
        if args.json {
            // one archive: the part's own report, as before sets existed
            println!(
                "{}",
                serde_json::to_string_pretty(&outcome.json).expect("serialises")
            );
        } else {
            print(&[outcome], false, Value::Null);
        }
        return Ok(if passed { exit::OK } else { exit::DAMAGED });
    }

    let ops = Ops::open(&config, args.metrics_file.clone())?;
    let key = keys.source_or_config(&config)?;
    let set = match &args.backup_set {
        Some(id) => ops.dir.read(id)?,
        None => {
            let mut warnings = Vec::new();
            let sets = ops.dir.list(&mut warnings)?;
            for w in &warnings {
                eprintln!("coffer: warning: {w}");
            }
            sets.into_iter().rev().find(|s| s.ok).ok_or_else(|| {
                CliError::new(
                    exit::BAD_INPUT,
                    format!("no good backup set in {}", ops.dir.sets().display()),
                )
            })?
        }
    };
    ops.log(&format!("restore test of set {} started", set.id));
    let at = Utc::now();
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for part in &set.parts {
        let (Some(kind), Some(file)) = (part.kind, &part.file) else {
            continue;
        };
        let Some(path) = ops.dir.archive_path(file) else {
            return Err(CliError::new(
                exit::BAD_INPUT,
                format!(
                    "backup set {}: {file:?} is not an archive name coffer writes",
                    set.id
                ),
            ));
        };
        let outcome = match open(&path, key.as_ref()) {
            // a missing or wrong key says nothing about the backup: stop, record nothing
            Err(e) if e.code == exit::KEY => return Err(e),
            Err(e) => Outcome {
                passed: false,
                line: format!("{}: FAILED: {}", kind.name(), e.message),
                text: vec![format!(
                    "restore test of {}: FAILED: {}",
                    path.display(),
                    e.message
                )],
                json: json!({"kind": kind.name(), "archive": path.display().to_string(), "passed": false, "error": e.message}),
            },
            Ok(archive) => match kind {
                PartKind::Postgres => {
                    // an unreachable test server stops the test, recording nothing (status
                    // warns when tests stop)
                    let m = maintenance(&args, Some(&ops))?;
                    test_pg(&path, archive, &m, &test_db, args.jobs.into(), args.keep)?
                }
                PartKind::Redis => test_redis(&path, &archive),
            },
        };
        ops.log(&format!("restore test of set {}: {}", set.id, outcome.line));
        outcomes.push(outcome);
    }
    if outcomes.is_empty() {
        return Err(CliError::new(
            exit::BAD_INPUT,
            format!("backup set {} has no archive to test", set.id),
        ));
    }
    let passed = outcomes.iter().all(|o| o.passed);
    let result = RestoreTest {
        at,
        passed,
        seconds: started.elapsed().as_secs_f64(),
        summary: outcomes.iter().map(|o| o.line.clone()).collect(),
    };
    {
        // a backup or prune may be running: wait for it, then add the result to the
        // record as it is now
        let _lock = ops.dir.lock_wait()?;
        match ops.dir.read(&set.id) {
            Ok(mut record) => {
                record.restore_tests.push(result);
                ops.dir.write(&record)?;
            }
            Err(e) => ops.log(&format!(
                "WARNING: the result could not be recorded: {}",
                e.message
            )),
        }
    }
    ops.log(&format!(
        "restore test of set {} {}",
        set.id,
        if passed { "passed" } else { "FAILED" }
    ));
    ops.write_metrics();
    print(&outcomes, args.json, json!({"set": set.id}));
    Ok(if passed { exit::OK } else { exit::DAMAGED })
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
