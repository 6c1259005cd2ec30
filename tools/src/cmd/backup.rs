//! `coffer backup`: the nightly job (the seed's backup_db.sh). PostgreSQL and Redis are
//! dumped at the same time into `BACKUP_DIR/.incoming/<id>/`; each archive is sealed, then
//! verified frame by frame and hashed; the good ones are moved into `postgres/` and
//! `redis/`, and the set record `sets/<id>.json` is written last. Then the notification,
//! retention (after a good backup only: a run of failures must not eat the history) and
//! the metrics file.
//!
//! A part that fails leaves nothing behind (its writer removes the `.partial` file); the
//! other part, sealed and verified, is still published — it is the best copy of its
//! database there is — and the set is marked failed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;
use clap::Args;
use coffer_engine::pg::conn::{ConnectOptions, Env, ProcessEnv};
use coffer_engine::pg::dump::DumpOptions;
use coffer_engine::redis::dump::RedisDumpOptions;
use coffer_engine::redis::replica::ReplicaOptions;
use coffer_engine::redis::tls::{ClientCert, TlsOptions};
use coffer_format::{ArchiveWriter, KeySource, WriteSummary, WriterOptions};
use serde_json::json;

use super::config::ConfigArgs;
use super::ops::{self, Ops};
use crate::config::Config;
use crate::error::CliError;
use crate::exit;
use crate::keys::KeyArgs;
use crate::sets::{ID_FORMAT, Part, PartKind, SetRecord, make_private_dir};

/// `coffer backup` options.
#[derive(Args, Debug)]
pub struct BackupArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Write the Prometheus textfile here (default: METRICS_FILE, if set).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Do not prune old sets after a good backup.
    #[arg(long)]
    pub no_prune: bool,
    /// Print the set record as JSON on standard output at the end.
    #[arg(long)]
    pub json: bool,
}

/// The libpq environment, with the configuration's password first: backup.conf's
/// POSTGRES_PASSWORD is the seed's way, `PGPASSWORD` and `~/.pgpass` still work.
struct ConfigEnv<'a>(&'a Config);

impl Env for ConfigEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        if name == "PGPASSWORD" {
            if let Some(p) = self.0.get("POSTGRES_PASSWORD") {
                return Some(p.to_string());
            }
        }
        ProcessEnv.var(name)
    }
}

/// The PostgreSQL connection the configuration names; what it leaves unset comes from
/// libpq's environment variables, as for `coffer dump pg`.
pub fn pg_connection(config: &Config) -> ConnectOptions {
    ConnectOptions {
        dbname: config.get("POSTGRES_DB").map(str::to_string),
        host: config.explicit("DB_HOST").map(str::to_string),
        port: config.explicit("DB_PORT").and_then(|p| p.parse().ok()),
        user: config.get("POSTGRES_USER").map(str::to_string),
    }
}

/// Resolves a connection with the configuration's password.
pub fn resolve_pg(
    config: &Config,
    opts: &ConnectOptions,
) -> Result<coffer_engine::pg::conn::Target, CliError> {
    Ok(opts.resolve(&ConfigEnv(config))?)
}

/// The Redis server the configuration names.
pub fn redis_server(config: &Config) -> Result<ReplicaOptions, CliError> {
    let path = |k: &str| config.get(k).map(std::path::PathBuf::from);
    let tls = if config.flag("REDIS_TLS") {
        let client = ClientCert::pair(
            path("REDIS_CERT"),
            path("REDIS_KEY"),
            "REDIS_CERT",
            "REDIS_KEY",
        )
        .map_err(|e| CliError::new(exit::USAGE, e.message().to_string()))?;
        Some(TlsOptions {
            ca_file: path("REDIS_CACERT"),
            client,
        })
    } else {
        if let Some(k) = ["REDIS_CACERT", "REDIS_CERT", "REDIS_KEY"]
            .into_iter()
            .find(|k| config.get(k).is_some())
        {
            return Err(CliError::new(
                exit::USAGE,
                format!("{k} is set but REDIS_TLS is not true"),
            ));
        }
        None
    };
    Ok(ReplicaOptions {
        host: config.get("REDIS_HOST").unwrap_or("localhost").to_string(),
        port: config
            .get("REDIS_PORT")
            .and_then(|p| p.parse().ok())
            .unwrap_or(6379),
        username: config.get("REDIS_USER").map(str::to_string),
        password: config.get("REDIS_PASSWORD").map(str::to_string),
        tls,
        ..ReplicaOptions::default()
    })
}

/// A part that cannot connect and that nobody asked for explicitly (its BACKUP_* key is
/// only the default) may be a machine without that database: say how to leave it out.
fn unasked_hint(e: CliError, config: &Config, key: &str) -> CliError {
    if e.code != exit::CONNECT || config.explicit(key).is_some() {
        return e;
    }
    CliError::new(
        e.code,
        format!(
            "{}\nhint: if this machine has nothing to back up there, set {key}=false in backup.conf",
            e.message
        ),
    )
}

/// The archive file of a part of set `id`: `<db>_<id>.coffer` or `redis_<id>.coffer`, the
/// same in `.incoming/<id>/` and once published.
fn archive_name(kind: PartKind, source: &str, id: &str) -> String {
    match kind {
        PartKind::Postgres => format!("{}_{id}.coffer", file_stem(source)),
        PartKind::Redis => format!("redis_{id}.coffer"),
    }
}

/// A database name made safe for a file name.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What one part's dump gives back to the set.
struct Dumped {
    written: WriteSummary,
    raw_bytes: u64,
    tables: Option<u64>,
    rows: Option<u64>,
    keys: Option<u64>,
}

/// Runs one part into `dir`, then verifies and hashes its archive. The error carries its
/// exit code; the part records the message.
fn run_part(
    kind: PartKind,
    source: String,
    path: &Path,
    key: Option<&KeySource>,
    dump: impl FnOnce(ArchiveWriter) -> Result<Dumped, CliError>,
    level: i32,
    jobs: usize,
) -> (Part, Option<CliError>) {
    let started = Instant::now();
    let mut part = Part {
        kind: Some(kind),
        source,
        ..Part::default()
    };
    let result = (|| {
        let wopts = WriterOptions {
            zstd_level: level,
            encryption: key.cloned(),
            in_flight_frames: 2 * jobs + 2,
            ..WriterOptions::default()
        };
        let writer = ArchiveWriter::create(path, wopts).map_err(CliError::writing)?;
        let d = dump(writer)?;
        let (report, hash) = ops::verify_and_hash(path, key)?;
        if !report.is_intact() {
            return Err(CliError::new(
                exit::DAMAGED,
                format!(
                    "{}: verification after writing found {} problem(s); the archive was not published",
                    path.display(),
                    report.problems.len()
                ),
            ));
        }
        part.blake3 = Some(hash);
        Ok(d)
    })();
    part.seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(d) => {
            part.ok = true;
            part.verified = true;
            part.bytes = d.written.bytes;
            part.archive_id = Some(coffer_format::hex(&d.written.archive_id));
            part.raw_bytes = d.raw_bytes;
            part.tables = d.tables;
            part.rows = d.rows;
            part.keys = d.keys;
            (part, None)
        }
        Err(e) => {
            let _ = std::fs::remove_file(path);
            part.error = Some(e.message.clone());
            (part, Some(e))
        }
    }
}

pub fn run(args: BackupArgs, keys: &KeyArgs) -> Result<u8, CliError> {
    let (config, _) = args.config.load()?;
    let ops = Ops::open(&config, args.metrics_file.clone())?;
    match backup(&ops, &args, keys) {
        Ok(outcome) => outcome,
        Err(e) => {
            // stopped before a set could be recorded (a key that cannot be read, the
            // directory, another backup still running, a full disk for the record): the
            // log and the notification still say so
            ops.log(&format!(
                "backup FAILED before a set was recorded: {}",
                e.message
            ));
            let environment = config.get("ENVIRONMENT").unwrap_or("");
            let summary = format!(
                "[{environment}] coffer backup on {}: FAILED: {}",
                ops::hostname(),
                e.message
            );
            let event = json!({
                "event": "backup",
                "result": "failure",
                "environment": environment,
                "host": ops::hostname(),
                "set": null,
                "message": summary,
            });
            ops.notify(false, &event, &summary);
            Err(e)
        }
    }
}

/// The backup itself. The outer error: nothing was recorded; the inner result: the set was
/// recorded and notified, and this is the exit.
fn backup(ops: &Ops, args: &BackupArgs, keys: &KeyArgs) -> Result<Result<u8, CliError>, CliError> {
    let config = &ops.config;
    let key = keys.source_or_config(config)?;
    let dir = &ops.dir;
    dir.create()?;
    let _lock = dir.lock()?;
    let do_pg = config.flag("BACKUP_POSTGRES");
    let do_redis = config.flag("BACKUP_REDIS");
    if !do_pg && !do_redis {
        return Err(CliError::new(
            exit::USAGE,
            "BACKUP_POSTGRES and BACKUP_REDIS are both false: nothing to back up",
        ));
    }
    // a TLS setting that cannot work stops the backup before anything is dumped
    let redis_opts = do_redis.then(|| redis_server(config)).transpose()?;
    let started = Utc::now();
    let id = started.format(ID_FORMAT).to_string();
    if dir.record_path(&id).exists() {
        return Err(CliError::new(
            exit::USAGE,
            format!("backup set {id} exists already (two backups in one second?)"),
        ));
    }
    let incoming = dir.incoming(&id);
    make_private_dir(&incoming)?;
    ops.log(&format!(
        "backup {id} started (environment {}, postgres {}, redis {}, encrypted {})",
        config.get("ENVIRONMENT").unwrap_or(""),
        if do_pg { "yes" } else { "no" },
        if do_redis { "yes" } else { "no" },
        if key.is_some() { "yes" } else { "no" },
    ));
    let level = config.number("COMPRESS_LEVEL") as i32;
    let jobs = config.number("BACKUP_JOBS").max(1) as usize;
    let key = key.as_ref();
    let hidden = indicatif::ProgressBar::hidden;

    let pg_part = || {
        let conn = pg_connection(config);
        let target = match resolve_pg(config, &conn) {
            Ok(t) => t,
            Err(e) => {
                let part = Part {
                    kind: Some(PartKind::Postgres),
                    // POSTGRES_DB may be a URL with a password in it: never recorded
                    source: "(POSTGRES_DB)".into(),
                    error: Some(e.message.clone()),
                    ..Part::default()
                };
                return (part, Some(e));
            }
        };
        let db = target.dbname().to_string();
        let path = incoming.join(archive_name(PartKind::Postgres, &db, &id));
        let opts = DumpOptions {
            jobs,
            ..DumpOptions::default()
        };
        run_part(
            PartKind::Postgres,
            db,
            &path,
            key,
            |w| {
                let (s, written) = super::pg::dump_archive(&target, &opts, w, &hidden())
                    .map_err(|e| unasked_hint(e, config, "BACKUP_POSTGRES"))?;
                Ok(Dumped {
                    written,
                    raw_bytes: s.raw_bytes,
                    tables: Some(s.manifest.tables.len() as u64),
                    rows: Some(s.rows),
                    keys: None,
                })
            },
            level,
            jobs,
        )
    };
    let redis_part = || {
        let server = redis_opts
            .clone()
            .expect("resolved when BACKUP_REDIS is on");
        let source = format!("{}:{}", server.host, server.port);
        let path = incoming.join(archive_name(PartKind::Redis, &source, &id));
        let opts = RedisDumpOptions {
            replica: server,
            ..RedisDumpOptions::default()
        };
        run_part(
            PartKind::Redis,
            source,
            &path,
            key,
            |w| {
                let (s, written) = super::redis::dump_archive(&opts, w, &hidden())
                    .map_err(|e| unasked_hint(e, config, "BACKUP_REDIS"))?;
                Ok(Dumped {
                    written,
                    raw_bytes: s.rdb_bytes,
                    tables: None,
                    rows: None,
                    keys: Some(s.dbs.values().map(|d| d.keys).sum()),
                })
            },
            level,
            1,
        )
    };
    let results: Vec<(Part, Option<CliError>)> = std::thread::scope(|s| {
        let pg = do_pg.then(|| s.spawn(pg_part));
        let redis = do_redis.then(|| s.spawn(redis_part));
        [pg, redis]
            .into_iter()
            .flatten()
            .map(|h| h.join().expect("a backup part panicked"))
            .collect()
    });

    let mut parts = Vec::new();
    let mut first_error = None;
    for (mut part, err) in results {
        let kind = part.kind.expect("parts have a kind");
        if let Some(e) = err {
            ops.log(&format!(
                "backup {id}: {} FAILED after {:.1} s: {}",
                kind.name(),
                part.seconds,
                e.message
            ));
            first_error.get_or_insert(e);
        } else {
            let name = archive_name(kind, &part.source, &id);
            let rel = format!("{}/{name}", kind.name());
            if let Err(e) = ops::publish(&incoming.join(&name), &dir.root.join(&rel)) {
                // the record says what is on disk: nothing of this part
                let _ = std::fs::remove_file(incoming.join(&name));
                part = Part {
                    kind: part.kind,
                    source: part.source,
                    seconds: part.seconds,
                    error: Some(e.message.clone()),
                    ..Part::default()
                };
                ops.log(&format!(
                    "backup {id}: {} FAILED: {}",
                    kind.name(),
                    e.message
                ));
                first_error.get_or_insert(e);
            } else {
                ops.log(&format!(
                    "backup {id}: {} ok in {:.1} s: {}, {} bytes, verified, blake3 {}",
                    kind.name(),
                    part.seconds,
                    match kind {
                        PartKind::Postgres => format!(
                            "{} tables, {} rows",
                            part.tables.unwrap_or(0),
                            part.rows.unwrap_or(0)
                        ),
                        PartKind::Redis => format!("{} keys", part.keys.unwrap_or(0)),
                    },
                    part.bytes,
                    part.blake3.as_deref().unwrap_or("")
                ));
                part.file = Some(rel);
            }
        }
        parts.push(part);
    }
    let _ = std::fs::remove_dir(&incoming);
    let record = SetRecord {
        id: id.clone(),
        started,
        finished: Utc::now(),
        environment: config.get("ENVIRONMENT").unwrap_or("").to_string(),
        ok: first_error.is_none(),
        encrypted: key.is_some(),
        pinned: false,
        parts,
        restore_tests: Vec::new(),
    };
    if let Err(e) = dir.write(&record) {
        // a set without its record is invisible to list, prune and restore-test: its
        // archives would be orphans that nothing ever removes
        for p in &record.parts {
            if let Some(path) = p.file.as_deref().and_then(|f| dir.archive_path(f)) {
                let _ = std::fs::remove_file(path);
            }
        }
        return Err(CliError::new(
            e.code,
            format!(
                "{}; the archives of set {id} were removed with it",
                e.message
            ),
        ));
    }
    let secs = (record.finished - record.started).num_milliseconds() as f64 / 1000.0;
    ops.log(&format!(
        "backup {id} {} in {secs:.1} s ({} bytes)",
        if record.ok { "succeeded" } else { "FAILED" },
        record.bytes()
    ));

    let summary = format!(
        "[{}] coffer backup {id} on {}: {} in {secs:.0} s ({})",
        record.environment,
        ops::hostname(),
        if record.ok { "succeeded" } else { "FAILED" },
        record
            .parts
            .iter()
            .map(|p| match &p.error {
                Some(e) => format!("{}: FAILED: {e}", p.kind.map_or("?", PartKind::name)),
                None => format!(
                    "{}: {}",
                    p.kind.map_or("?", PartKind::name),
                    crate::human::bytes(p.bytes)
                ),
            })
            .collect::<Vec<_>>()
            .join("; ")
    );
    let event = json!({
        "event": "backup",
        "result": if record.ok { "success" } else { "failure" },
        "environment": record.environment,
        "host": ops::hostname(),
        "set": record.id,
        "started": record.started,
        "finished": record.finished,
        "seconds": secs,
        "bytes": record.bytes(),
        "parts": record.parts,
        "message": summary,
    });
    ops.notify(record.ok, &event, &summary);
    if record.ok && !args.no_prune {
        if let Err(e) = super::prune::prune(ops, false, false) {
            ops.log(&format!("prune after backup {id} failed: {}", e.message));
        }
    }
    ops.write_metrics();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&record).expect("serialises")
        );
    } else {
        println!("{summary}");
    }
    Ok(match first_error {
        None => Ok(exit::OK),
        Some(e) => Err(CliError::new(
            e.code,
            format!("backup set {id} failed; see {}", ops.log_path().display()),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let flags: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(None, &|_| None, &flags).unwrap()
    }

    #[test]
    fn redis_tls_settings_map_to_the_connection() {
        let o = redis_server(&config(&[])).unwrap();
        assert!(o.tls.is_none());
        let o = redis_server(&config(&[
            ("REDIS_TLS", "true"),
            ("REDIS_CACERT", "/etc/ca.pem"),
            ("REDIS_CERT", "/etc/c.pem"),
            ("REDIS_KEY", "/etc/c.key"),
        ]))
        .unwrap();
        let tls = o.tls.unwrap();
        assert_eq!(tls.ca_file, Some("/etc/ca.pem".into()));
        assert_eq!(
            tls.client,
            Some(ClientCert {
                cert_file: "/etc/c.pem".into(),
                key_file: "/etc/c.key".into()
            })
        );
        for bad in [
            &[("REDIS_TLS", "true"), ("REDIS_CERT", "/etc/c.pem")][..],
            &[("REDIS_CACERT", "/etc/ca.pem")],
            &[("REDIS_KEY", "/etc/c.key")],
        ] {
            let e = redis_server(&config(bad)).unwrap_err();
            assert_eq!(e.code, exit::USAGE, "{bad:?}: {}", e.message);
        }
    }
}
