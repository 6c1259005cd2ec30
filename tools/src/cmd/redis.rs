//! `coffer dump redis`, `coffer restore redis` and `coffer export redis`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use coffer_engine::redis::archive::DbMap;
use coffer_engine::redis::dump::{self, Progress, RedisDumpOptions, RedisDumpSummary};
use coffer_engine::redis::export::{self, ExportOptions};
use coffer_engine::redis::rdbfile::{self, RdbWriteOptions};
use coffer_engine::redis::replica::ReplicaOptions;
use coffer_engine::redis::restore::{self, RedisRestoreOptions, RestoreProgress};
use coffer_format::{ArchiveWriter, KeySource, MappedArchive, WriteSummary, WriterOptions};

use super::output::{archive_writer, progress_bar};
use crate::error::CliError;
use crate::{exit, human};

/// The server URL; the password in it is never printed.
fn parse_url(url: &str) -> Result<ReplicaOptions, CliError> {
    ReplicaOptions::from_url(url).map_err(|e| CliError::new(exit::USAGE, e.message().to_string()))
}

/// `coffer dump redis` options.
#[derive(Args, Debug)]
pub struct DumpArgs {
    /// Server to dump: `redis://[[user]:password@]host[:port]` (also COFFER_REDIS_URL, which
    /// keeps the password out of `ps`), or `rediss://…` for TLS (the server's certificate is
    /// checked against the system's CAs, or `?cacert=FILE` / COFFER_REDIS_CACERT; a client
    /// certificate, if the server asks for one, from `?cert=FILE&key=FILE` /
    /// COFFER_REDIS_CERT and COFFER_REDIS_KEY). The user needs +psync (or +sync),
    /// +replconf, +ping.
    #[arg(
        long,
        env = "COFFER_REDIS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub url: String,
    /// Write the archive to FILE (default, or `-`: standard output, which must not be a
    /// terminal).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// zstd level (1 fastest … 19 smallest).
    #[arg(short = 'Z', long = "compress", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,
    /// Print a JSON summary on standard error at the end.
    #[arg(long)]
    pub json: bool,
}

pub fn dump(args: DumpArgs, key: Option<KeySource>) -> Result<u8, CliError> {
    let opts = RedisDumpOptions {
        replica: parse_url(&args.url)?,
        ..RedisDumpOptions::default()
    };
    let wopts = WriterOptions {
        zstd_level: args.level,
        encryption: key,
        ..WriterOptions::default()
    };
    let to_file = args.file.as_ref().is_some_and(|f| f.as_os_str() != "-");
    let writer = archive_writer(args.file.as_deref(), wopts)?;
    let bar = progress_bar(args.json);
    let started = Instant::now();
    let (summary, written) = dump_archive(&opts, writer, &bar)?;
    let secs = started.elapsed().as_secs_f64();
    let keys: u64 = summary.dbs.values().map(|d| d.keys).sum();
    if args.json {
        let doc = serde_json::json!({
            "server_version": summary.server_version,
            "rdb_version": summary.rdb_version,
            "transfer": summary.app["transfer"],
            "keys": keys,
            "dbs": summary.dbs.iter().map(|(n, d)| (n.to_string(), serde_json::json!(d.keys)))
                .collect::<serde_json::Map<_, _>>(),
            "functions": summary.functions,
            "rdb_bytes": summary.rdb_bytes,
            "archive_bytes": written.bytes,
            "seconds": secs,
            "archive_id": coffer_format::hex(&written.archive_id),
        });
        eprintln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
    } else if to_file && std::io::stderr().is_terminal() {
        eprintln!(
            "dumped redis {} ({keys} keys in {} databases, {} of RDB) into {} in {secs:.1} s",
            summary.server_version.as_deref().unwrap_or("?"),
            summary.dbs.len(),
            human::bytes(summary.rdb_bytes),
            human::bytes(written.bytes)
        );
    }
    Ok(exit::OK)
}

/// Dumps the server into `writer` and seals it. On failure the writer is dropped
/// unfinished, which removes its `.partial` file.
pub fn dump_archive(
    opts: &RedisDumpOptions,
    writer: ArchiveWriter,
    bar: &indicatif::ProgressBar,
) -> Result<(RedisDumpSummary, WriteSummary), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(exit::OUTPUT, e.to_string()))?;
    let b = bar.clone();
    let summary = runtime
        .block_on(dump::dump(opts, &writer, move |p: Progress| {
            if let Some(t) = p.rdb_total {
                b.set_length(t);
            }
            b.set_position(p.rdb_bytes);
            b.set_message(format!("{} keys", p.keys));
        }))
        .map_err(|e| {
            bar.abandon();
            CliError::from(e)
        })?;
    let written = writer
        .finish(summary.app.clone())
        .map_err(CliError::writing)?;
    bar.finish_and_clear();
    Ok((summary, written))
}

/// `coffer restore redis` options.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The archive (a file: restores read it at random).
    pub archive: PathBuf,
    /// Restore into this server: `redis://[[user]:password@]host[:port]` or `rediss://…`
    /// for TLS, with `?cacert=`, `?cert=` and `key=` as for dump (also COFFER_REDIS_URL).
    #[arg(
        long,
        env = "COFFER_REDIS_URL",
        hide_env_values = true,
        value_name = "URL",
        conflicts_with = "rdb",
        required_unless_present = "rdb"
    )]
    pub url: Option<String>,
    /// Instead, write a dump.rdb to FILE that `redis-server --dbfilename FILE` loads at
    /// start: of the archive's RDB version (the target must be as new as the source), or
    /// of --rdb-version.
    #[arg(long, value_name = "FILE")]
    pub rdb: Option<PathBuf>,
    /// With --rdb: write RDB version N, for an older server (or the other family): 9 for
    /// Redis 5.0-6.2, 10 for 7.0, 11 for 7.2 and Valkey 7.2-8.x, 12 for Redis 7.4-8.x, 80
    /// for Valkey 9. Values in encodings N lacks are re-encoded (each held whole while it
    /// is); function libraries are left out below 10 (named, exit 1); field TTLs below 12
    /// (but 80) need --drop-field-ttl, else nothing is written (exit 3).
    #[arg(long, value_name = "N", requires = "rdb", value_parser = clap::value_parser!(u32))]
    pub rdb_version: Option<u32>,
    /// Replace keys and function libraries that exist. Without it they are left alone,
    /// reported, and the exit code is 1.
    #[arg(long)]
    pub replace: bool,
    /// Database mapping: `N` puts every database into N; `SRC:DST[,SRC:DST…]` restores only
    /// the listed databases, each into its DST.
    #[arg(long, value_name = "N|SRC:DST,...")]
    pub db: Option<String>,
    /// Restore only keys matching GLOB (Redis' KEYS syntax: * ? [abc] [^a-z] \x).
    #[arg(long, value_name = "GLOB")]
    pub pattern: Option<String>,
    /// FLUSHALL (and FUNCTION FLUSH) the target first. Needs --yes-i-really-mean-it.
    #[arg(long, conflicts_with = "rdb")]
    pub flush: bool,
    /// Confirms --flush.
    #[arg(long)]
    pub yes_i_really_mean_it: bool,
    /// Never send RESTORE: rebuild every value with type commands (RPUSH, SADD, ZADD,
    /// HSET, HPEXPIREAT, XADD…). Without it this is done anyway for the values an older
    /// target cannot RESTORE (an encoding newer than its RDB version, Redis' RDB 12 into
    /// Valkey, Valkey 9's into Redis), and for any whose RESTORE the target refuses.
    #[arg(long, conflicts_with = "rdb")]
    pub no_restore_command: bool,
    /// On a target without hash field TTLs (Redis before 7.4, Valkey before 9.0, or an
    /// --rdb-version below 12 but 80), restore the fields of hashes that have TTLs without
    /// them, and say how many were dropped on which keys. Without it such a restore stops
    /// before writing anything, naming the keys (exit 3).
    #[arg(long)]
    pub drop_field_ttl: bool,
    /// Print a JSON summary on standard error.
    #[arg(long)]
    pub json: bool,
}

pub fn restore(args: RestoreArgs, key: Option<KeySource>) -> Result<u8, CliError> {
    if args.flush && !args.yes_i_really_mean_it {
        return Err(CliError::new(
            exit::USAGE,
            "--flush erases every key of the target server; add --yes-i-really-mean-it to confirm",
        ));
    }
    let db_map = match &args.db {
        Some(s) => {
            DbMap::parse(s).map_err(|e| CliError::new(exit::USAGE, e.message().to_string()))?
        }
        None => DbMap::Same,
    };
    let pattern = args.pattern.as_ref().map(|p| p.as_bytes().to_vec());
    let target = match (&args.url, &args.rdb) {
        (Some(u), None) => Some(parse_url(u)?),
        (None, Some(_)) => None,
        _ => {
            return Err(CliError::new(
                exit::USAGE,
                "give exactly one of --url and --rdb",
            ));
        }
    };
    if let Some(v) = args.rdb_version {
        if !rdbfile::WRITABLE_VERSIONS.contains(&v) {
            return Err(CliError::new(
                exit::USAGE,
                format!(
                    "--rdb-version {v}: coffer writes RDB 9 (Redis 5.0-6.2), 10 (7.0), 11 (7.2, \
                     Valkey 7.2-8), 12 (Redis 7.4-8) and 80 (Valkey 9)"
                ),
            ));
        }
    }
    let a = MappedArchive::open(&args.archive, key.as_ref())
        .map_err(|e| CliError::reading(&args.archive, e))?;
    let started = Instant::now();
    if let Some(path) = &args.rdb {
        let s = rdbfile::write_rdb(
            &a,
            path,
            &RdbWriteOptions {
                db_map,
                pattern,
                skip_expired: true,
                version: args.rdb_version,
                drop_field_ttl: args.drop_field_ttl,
            },
        )
        .map_err(|e| {
            let mut c = CliError::from(e);
            if c.code == exit::USAGE {
                c.code = exit::BAD_INPUT;
            }
            c
        })?;
        if args.json {
            let mut doc = serde_json::to_value(&s).expect("serialises");
            doc["seconds"] = started.elapsed().as_secs_f64().into();
            eprintln!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("serialises")
            );
        } else {
            if !s.functions_left_out.is_empty() {
                eprintln!(
                    "coffer: error: function libraries left out (RDB {} has none): {}",
                    s.rdb_version,
                    s.functions_left_out.join(", ")
                );
            }
            if s.field_ttls_dropped > 0 {
                eprintln!(
                    "coffer: warning: {} field TTLs dropped (--drop-field-ttl: RDB {} has none) on {} keys: {}{}",
                    s.field_ttls_dropped,
                    s.rdb_version,
                    s.field_ttl_keys,
                    s.field_ttl_sample.join(", "),
                    if s.field_ttl_keys as usize > s.field_ttl_sample.len() {
                        ", …"
                    } else {
                        ""
                    }
                );
            }
        }
        return Ok(if s.functions_left_out.is_empty() {
            exit::OK
        } else {
            exit::DAMAGED
        });
    }
    let opts = RedisRestoreOptions {
        target: target.expect("checked"),
        replace: args.replace,
        flush: args.flush,
        db_map,
        pattern,
        force_commands: args.no_restore_command,
        drop_field_ttl: args.drop_field_ttl,
        ..RedisRestoreOptions::default()
    };
    let bar = progress_bar(args.json);
    if !bar.is_hidden() {
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} keys {per_sec} {wide_msg}",
            )
            .expect("valid template"),
        );
    }
    let b = bar.clone();
    let s = restore::restore(&a, &opts, &move |p: RestoreProgress| {
        b.set_length(p.total_keys);
        b.set_position(p.keys);
    })
    .map_err(|e| {
        bar.abandon();
        CliError::from(e)
    })?;
    bar.finish_and_clear();
    if args.json {
        let mut doc = serde_json::to_value(&s).expect("serialises");
        doc["seconds"] = started.elapsed().as_secs_f64().into();
        eprintln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
    } else {
        if s.existing > 0 {
            eprintln!(
                "coffer: {} keys or libraries already exist on the target and were left alone (use --replace): {}{}",
                s.existing,
                s.existing_sample.join(", "),
                if s.existing as usize > s.existing_sample.len() {
                    ", …"
                } else {
                    ""
                }
            );
        }
        for e in &s.errors {
            eprintln!("coffer: error: {e}");
        }
        if s.field_ttls_dropped > 0 {
            eprintln!(
                "coffer: warning: {} field TTLs dropped (--drop-field-ttl: {} has none) on {} keys: {}{}",
                s.field_ttls_dropped,
                target_name(&s),
                s.field_ttl_keys,
                s.field_ttl_sample.join(", "),
                if s.field_ttl_keys as usize > s.field_ttl_sample.len() {
                    ", …"
                } else {
                    ""
                }
            );
        }
        if s.restore_refused > 0 {
            eprintln!(
                "coffer: {} keys whose RESTORE {} refused were rebuilt with commands",
                s.restore_refused,
                target_name(&s)
            );
        }
        if s.failed as usize > s.errors.len() {
            eprintln!("coffer: … {} keys failed in all", s.failed);
        }
        if std::io::stderr().is_terminal() {
            eprintln!(
                "restored {} keys ({} by RESTORE, {} by commands) and {} function libraries in {:.1} s",
                s.keys,
                s.via_restore,
                s.via_commands,
                s.functions,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(if s.complete() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}

/// The target as the summary names it: "Valkey 9.1.2", "Redis 6.2.14", "the target".
fn target_name(s: &restore::RedisRestoreSummary) -> String {
    match (&s.target_server, &s.target_version) {
        (Some("valkey"), Some(v)) => format!("Valkey {v}"),
        (_, Some(v)) => format!("Redis {v}"),
        _ => "the target".to_string(),
    }
}

/// `coffer export redis` options.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The archive.
    pub archive: PathBuf,
    /// JSON Lines: one object per key {"db","key","type","expire_at_ms","value"}; bytes that
    /// are not UTF-8 appear as {"base64": "..."}. (The only format so far; required.)
    #[arg(long, required = true)]
    pub json: bool,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Export only keys matching GLOB.
    #[arg(long, value_name = "GLOB")]
    pub pattern: Option<String>,
}

pub fn export(args: ExportArgs, key: Option<KeySource>) -> Result<u8, CliError> {
    let a = MappedArchive::open(&args.archive, key.as_ref())
        .map_err(|e| CliError::reading(&args.archive, e))?;
    let opts = ExportOptions {
        pattern: args.pattern.map(String::into_bytes),
    };
    let map_err = |e: coffer_engine::Error| {
        let mut c = CliError::from(e);
        if c.code == exit::USAGE {
            c.code = exit::BAD_INPUT;
        }
        c
    };
    match &args.output {
        Some(path) if path.as_os_str() != "-" => {
            let mut tmp: PathBuf = path.as_os_str().to_owned().into();
            tmp.as_mut_os_string().push(".partial");
            let f = std::fs::File::create(&tmp)
                .map_err(|e| CliError::new(exit::OUTPUT, format!("{}: {e}", tmp.display())))?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
            let r = export::export_json(&a, &mut out, &opts);
            drop(out);
            if let Err(e) = r {
                let _ = std::fs::remove_file(&tmp);
                return Err(map_err(e));
            }
            std::fs::rename(&tmp, path)
                .map_err(|e| CliError::new(exit::OUTPUT, format!("{}: {e}", path.display())))?;
        }
        _ => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            export::export_json(&a, &mut out, &opts).map_err(map_err)?;
        }
    }
    Ok(exit::OK)
}
