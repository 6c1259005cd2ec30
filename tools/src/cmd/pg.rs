//! `coffer dump pg` and `coffer restore pg`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use coffer_engine::pg::catalog::{Filters, Pattern};
use coffer_engine::pg::conn::{ConnectOptions, ProcessEnv, Target};
use coffer_engine::pg::content::Content;
use coffer_engine::pg::dump::{self, DumpOptions, DumpSummary, Progress};
use coffer_engine::pg::restore::{self, Progress as RestoreProgress, RestoreOptions, Selection};
use coffer_engine::pg::restore_stream;
use coffer_engine::pg::toc::Section;
use coffer_format::{ArchiveWriter, KeySource, MappedArchive, WriteSummary, WriterOptions};

use super::output::{PhaseBars, archive_writer, progress_bar};
use crate::error::CliError;
use crate::{exit, human};

/// Connection options, named as in pg_dump and psql.
#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// Database name, `postgres://` URL or `key=value` connection string (PGDATABASE).
    /// TLS as libpq: `sslmode`, `sslrootcert`, `sslcert`, `sslkey` in it, or PGSSLMODE,
    /// PGSSLROOTCERT, PGSSLCERT, PGSSLKEY.
    #[arg(short = 'd', long = "dbname", value_name = "DBNAME")]
    pub dbname: Option<String>,
    /// Server host or Unix socket directory (PGHOST).
    #[arg(short = 'h', long = "host")]
    pub host: Option<String>,
    /// Server port (PGPORT).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// User name (PGUSER). The password comes from PGPASSWORD or ~/.pgpass.
    #[arg(short = 'U', long = "username")]
    pub user: Option<String>,
}

impl ConnArgs {
    pub fn options(&self) -> ConnectOptions {
        ConnectOptions {
            dbname: self.dbname.clone(),
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
        }
    }
}

/// `coffer dump pg` options.
#[derive(Args, Debug)]
pub struct DumpArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Write the archive to FILE (default: standard output, which must not be a terminal).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Copy data over N connections at once.
    #[arg(short = 'j', long = "jobs", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Dump only tables (views, sequences…) matching PATTERN; repeatable.
    #[arg(short = 't', long = "table", value_name = "PATTERN")]
    pub tables: Vec<String>,
    /// Do not dump tables matching PATTERN; repeatable.
    #[arg(short = 'T', long = "exclude-table", value_name = "PATTERN")]
    pub exclude_tables: Vec<String>,
    /// Dump the definition of tables matching PATTERN but not their rows (as pg_dump's,
    /// e.g. for big log tables); repeatable.
    #[arg(long = "exclude-table-data", value_name = "PATTERN")]
    pub exclude_table_data: Vec<String>,
    /// Dump only the schema: no rows, no sequence values, no large objects.
    #[arg(short = 's', long)]
    pub schema_only: bool,
    /// Dump only schemas matching PATTERN; repeatable.
    #[arg(short = 'n', long = "schema", value_name = "PATTERN")]
    pub schemas: Vec<String>,
    /// Do not dump schemas matching PATTERN; repeatable.
    #[arg(short = 'N', long = "exclude-schema", value_name = "PATTERN")]
    pub exclude_schemas: Vec<String>,
    /// Fail rather than wait longer than this many milliseconds for a table lock.
    #[arg(long, value_name = "MS")]
    pub lock_wait_timeout: Option<u64>,
    /// Dump as ROLE: every connection does SET ROLE after logging in, so the dump reads
    /// with that role's rights.
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// zstd level (1 fastest … 19 smallest).
    #[arg(short = 'Z', long = "compress", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,
    /// Split tables larger than this many MiB into page ranges copied in parallel.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub split_mib: u64,
    /// Print a JSON summary at the end.
    #[arg(long)]
    pub json: bool,
    /// Print help (`-h` is the host, as in pg_dump).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

fn patterns(list: &[String]) -> Result<Vec<Pattern>, CliError> {
    list.iter()
        .map(|p| Pattern::parse(p).map_err(CliError::from))
        .collect()
}

pub fn dump(args: DumpArgs, key: Option<KeySource>) -> Result<u8, CliError> {
    let target = args.conn.options().resolve(&ProcessEnv)?;
    let opts = DumpOptions {
        jobs: args.jobs.into(),
        filters: Filters {
            tables: patterns(&args.tables)?,
            exclude_tables: patterns(&args.exclude_tables)?,
            exclude_table_data: patterns(&args.exclude_table_data)?,
            schema_only: args.schema_only,
            schemas: patterns(&args.schemas)?,
            exclude_schemas: patterns(&args.exclude_schemas)?,
        },
        lock_wait_timeout: args.lock_wait_timeout.map(Duration::from_millis),
        split_threshold: args.split_mib.max(1) << 20,
        role: args.role.clone(),
        ..DumpOptions::default()
    };
    let wopts = WriterOptions {
        zstd_level: args.level,
        encryption: key,
        in_flight_frames: 2 * opts.jobs + 2,
        ..WriterOptions::default()
    };
    let writer = archive_writer(args.file.as_deref(), wopts)?;
    let bar = progress_bar(args.json);
    let started = Instant::now();
    let (summary, written) = dump_archive(&target, &opts, writer, &bar)?;
    let secs = started.elapsed().as_secs_f64();
    if !args.json {
        for w in &summary.warnings {
            eprintln!("coffer: warning: {w}");
        }
    }
    if args.json {
        let doc = serde_json::json!({
            "database": summary.manifest.source.database,
            "server_version": summary.manifest.source.server_version,
            "tables": summary.manifest.tables.len(),
            "objects": summary.manifest.objects,
            "rows": summary.rows,
            "raw_bytes": summary.raw_bytes,
            "archive_bytes": written.bytes,
            "seconds": secs,
            "archive_id": coffer_format::hex(&written.archive_id),
            "warnings": summary.warnings,
        });
        eprintln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
    } else if args.file.is_some() && std::io::stderr().is_terminal() {
        eprintln!(
            "dumped {} ({} tables, {} rows, {} of data) into {} in {secs:.1} s",
            summary.manifest.source.database,
            summary.manifest.tables.len(),
            summary.rows,
            human::bytes(summary.raw_bytes),
            human::bytes(written.bytes)
        );
    }
    Ok(exit::OK)
}

/// Dumps `target` into `writer` and seals it; on failure the writer is abandoned (its
/// `.partial` file removed) and the error says why, a full disk before a broken pipe.
pub fn dump_archive(
    target: &Target,
    opts: &DumpOptions,
    writer: ArchiveWriter,
    bar: &indicatif::ProgressBar,
) -> Result<(DumpSummary, WriteSummary), CliError> {
    let writer = Arc::new(writer);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(exit::OUTPUT, e.to_string()))?;
    let b = bar.clone();
    let report: Arc<dyn Fn(Progress) + Send + Sync> = Arc::new(move |p| match p {
        Progress::Planned { bytes, .. } => b.set_length(bytes),
        Progress::Copied { bytes, .. } => b.inc(bytes),
        Progress::UnitDone { name } => b.set_message(name),
    });
    let summary = match runtime.block_on(dump::dump(target, opts, writer.clone(), report)) {
        Ok(s) => s,
        Err(e) => {
            bar.abandon();
            // every worker has let go of the writer: abandoning it removes FILE.partial
            // and tells what stopped it, if it stopped (a full disk, say)
            let cause = Arc::try_unwrap(writer)
                .ok()
                .and_then(ArchiveWriter::abandon);
            return Err(match cause {
                Some(io) if e.kind() == coffer_engine::ErrorKind::Archive => CliError::writing(io),
                _ => CliError::from(e),
            });
        }
    };
    let writer = Arc::try_unwrap(writer)
        .map_err(|_| CliError::new(exit::OUTPUT, "archive writer still in use"))?;
    let app = serde_json::to_value(&summary.manifest).expect("manifest serialises");
    let written = writer.finish(app).map_err(CliError::writing)?;
    bar.finish_and_clear();
    Ok((summary, written))
}

/// `coffer restore pg` options.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The archive; `-` reads it from standard input, without its index: data streams
    /// load as they arrive, post-data waits for the verified end of the archive.
    pub archive: PathBuf,
    /// Restore into this database (name, URL or connection string), which must exist.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Instead of restoring, write a plain SQL script to FILE (`-` for standard output);
    /// `psql` loads it into an empty database.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "dbname"
    )]
    pub file: Option<PathBuf>,
    /// Load data and build indexes and constraints over N connections at once.
    #[arg(short = 'j', long = "jobs", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Do not give objects their original owners (they belong to the restoring user).
    #[arg(short = 'O', long)]
    pub no_owner: bool,
    /// Do not restore privileges (GRANT, REVOKE, default privileges).
    #[arg(short = 'x', long = "no-privileges", visible_alias = "no-acl")]
    pub no_privileges: bool,
    /// Do not restore comments.
    #[arg(long)]
    pub no_comments: bool,
    /// Do not restore publications (nor their tables, schemas and comments).
    #[arg(long)]
    pub no_publications: bool,
    /// Do not restore security labels.
    #[arg(long)]
    pub no_security_labels: bool,
    /// Do not restore subscriptions (nor their comments).
    #[arg(long)]
    pub no_subscriptions: bool,
    /// Do not replay the planner statistics read at dump time (which a target of
    /// PostgreSQL 18 or later gets by default, so it plans well before ANALYZE).
    #[arg(long)]
    pub no_statistics: bool,
    /// Create everything in the target's default tablespace.
    #[arg(long)]
    pub no_tablespaces: bool,
    /// Give every column the target's default TOAST compression (a target built
    /// without lz4 cannot take a column's lz4).
    #[arg(long)]
    pub no_toast_compression: bool,
    /// ANALYZE every restored table at the end, over the -j connections (a target
    /// older than 18 cannot take the archive's statistics).
    #[arg(long)]
    pub analyze: bool,
    /// Restore as ROLE: every connection does SET ROLE after logging in (with
    /// --no-owner, what the restore creates belongs to ROLE).
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Load data with triggers and foreign-key checks off (session_replication_role =
    /// replica), so a data-only restore into a schema with foreign keys may load tables
    /// in any order. Needs a superuser; ENABLE ALWAYS triggers still fire.
    #[arg(long)]
    pub disable_triggers: bool,
    /// Restore only the table (view, sequence…) named NAME and what depends on it: its
    /// data, indexes, constraints, triggers, comments, privileges. Exact name; repeatable.
    #[arg(short = 't', long = "table", value_name = "NAME")]
    pub tables: Vec<String>,
    /// Leave out the table NAME and what depends on it; repeatable.
    #[arg(short = 'T', long = "exclude-table", value_name = "NAME")]
    pub exclude_tables: Vec<String>,
    /// Restore only the objects of schema NAME; repeatable.
    #[arg(short = 'n', long = "schema", value_name = "NAME")]
    pub schemas: Vec<String>,
    /// Leave out the objects of schema NAME; repeatable.
    #[arg(short = 'N', long = "exclude-schema", value_name = "NAME")]
    pub exclude_schemas: Vec<String>,
    /// Restore only the entries listed in FILE: an edited copy of `-l`'s output, where a
    /// line starting with `;` is left out.
    #[arg(short = 'L', long = "use-list", value_name = "FILE")]
    pub use_list: Option<PathBuf>,
    /// Restore the tables chosen with -t into schema NAME (created if missing), beside
    /// the originals: the runbook's "partial restore into restore_temp" in one command.
    #[arg(long, value_name = "NAME", requires = "tables")]
    pub target_schema: Option<String>,
    /// Restore in one transaction on one connection (with -j 1): a failure leaves the
    /// database as it was.
    #[arg(short = '1', long)]
    pub single_transaction: bool,
    /// Stop at the first error (the default, as pg_restore -e).
    #[arg(short = 'e', long, conflicts_with = "no_exit_on_error")]
    pub exit_on_error: bool,
    /// Carry on past errors: restore everything that can be, then list every failure
    /// (exit 7).
    #[arg(long)]
    pub no_exit_on_error: bool,
    /// Drop the archive's objects before restoring them.
    #[arg(short = 'c', long)]
    pub clean: bool,
    /// With --clean, drop only what exists (DROP … IF EXISTS).
    #[arg(long, requires = "clean")]
    pub if_exists: bool,
    /// Create the archive's database first (connecting through -d, e.g. `postgres`), and
    /// restore into it.
    #[arg(short = 'C', long)]
    pub create: bool,
    /// Restore only this section (pre-data, data or post-data); repeatable.
    #[arg(long, value_name = "SECTION", value_parser = ["pre-data", "data", "post-data"])]
    pub section: Vec<String>,
    /// Only the schema (pre-data and post-data).
    #[arg(short = 's', long, conflicts_with_all = ["data_only", "section"])]
    pub schema_only: bool,
    /// Only the data.
    #[arg(short = 'a', long, conflicts_with = "section")]
    pub data_only: bool,
    /// Print the archive's table of contents (as `pg_restore -l`) and stop.
    #[arg(short = 'l', long)]
    pub list: bool,
    /// Print a JSON summary at the end.
    #[arg(long)]
    pub json: bool,
    /// Print help (`-h` is the host, as in pg_restore).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

pub fn restore(args: RestoreArgs, key: Option<KeySource>) -> Result<u8, CliError> {
    let from_pipe = args.archive.as_os_str() == "-";
    if from_pipe && (args.list || args.file.is_some() || args.create) {
        return Err(CliError::new(
            exit::USAGE,
            "-l, -f and --create need the archive as a file, not standard input",
        ));
    }
    let mut mapped = None;
    if !from_pipe {
        let a = MappedArchive::open(&args.archive, key.as_ref())
            .map_err(|e| CliError::reading(&args.archive, e))?;
        if args.list {
            print!("{}", restore::list(&a)?);
            return Ok(exit::OK);
        }
        if let Some(file) = &args.file {
            return render_sql(&a, &args, file);
        }
        mapped = Some(Arc::new(a));
    }
    if args.conn.dbname.is_none() && std::env::var_os("PGDATABASE").is_none() {
        return Err(CliError::new(
            exit::USAGE,
            "give the database to restore into with -d, or -f FILE to write SQL",
        ));
    }
    let target = args.conn.options().resolve(&ProcessEnv)?;
    let sections = match (args.schema_only, args.data_only) {
        (true, _) => vec![Section::PreData, Section::PostData],
        (_, true) => vec![Section::Data],
        _ => args
            .section
            .iter()
            .map(|s| match s.as_str() {
                "pre-data" => Section::PreData,
                "data" => Section::Data,
                _ => Section::PostData,
            })
            .collect(),
    };
    let list = match &args.use_list {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| CliError::new(exit::BAD_INPUT, format!("{}: {e}", f.display())))?;
            Some(restore::parse_list(&text)?)
        }
        None => None,
    };
    let selection = Selection {
        tables: args.tables.clone(),
        exclude_tables: args.exclude_tables.clone(),
        schemas: args.schemas.clone(),
        exclude_schemas: args.exclude_schemas.clone(),
        list,
        target_schema: args.target_schema.clone(),
    };
    let opts = RestoreOptions {
        jobs: args.jobs.into(),
        content: content(&args),
        analyze: args.analyze,
        clean: args.clean,
        if_exists: args.if_exists,
        single_transaction: args.single_transaction,
        keep_going: args.no_exit_on_error && !args.exit_on_error,
        selection,
        sections,
        role: args.role.clone(),
        disable_triggers: args.disable_triggers,
    };
    let bars = Arc::new(PhaseBars::new(args.json));
    let b = bars.clone();
    let report: Arc<dyn Fn(RestoreProgress) + Send + Sync> = Arc::new(move |p| match p {
        RestoreProgress::Phase {
            name,
            bytes,
            entries,
        } => b.phase(name, bytes, entries),
        RestoreProgress::Loaded { bytes } => b.inc(bytes),
        RestoreProgress::Entry => b.inc(1),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(exit::OUTPUT, e.to_string()))?;
    let started = Instant::now();
    // --create is refused for a pipe above: the archive is mapped here
    let target = match (&mapped, args.create) {
        (Some(archive), true) => runtime.block_on(restore::create_database(
            &target,
            archive,
            None,
            args.role.as_deref(),
        ))?,
        _ => target,
    };
    let (summary, held_back) = match mapped {
        Some(archive) => (
            runtime.block_on(restore::restore(archive, &target, &opts, report)),
            None,
        ),
        None => match runtime.block_on(restore_stream::restore_stream(
            std::io::stdin(),
            key,
            &target,
            &opts,
            report,
        )) {
            Ok((s, held)) => (Ok(s), Some(held)),
            Err(e) => (Err(e), None),
        },
    };
    bars.finish(summary.is_ok());
    let summary = summary.map_err(CliError::from)?;
    if let Some(n) = held_back {
        eprintln!(
            "coffer: read from a pipe: {n} post-data and privilege entries were held back until the end of the archive had been read and verified"
        );
    }
    let secs = started.elapsed().as_secs_f64();
    if args.json {
        let phases: serde_json::Map<String, serde_json::Value> = summary
            .phases
            .iter()
            .map(|(n, d)| ((*n).to_string(), d.as_secs_f64().into()))
            .collect();
        let doc = serde_json::json!({
            "database": target.dbname(),
            "entries": summary.entries,
            "tables": summary.tables,
            "raw_bytes": summary.raw_bytes,
            "seconds": secs,
            "phases": phases,
        });
        eprintln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
    } else if std::io::stderr().is_terminal() {
        let phases: Vec<String> = summary
            .phases
            .iter()
            .map(|(n, d)| format!("{n} {:.1} s", d.as_secs_f64()))
            .collect();
        eprintln!(
            "restored {} into {} in {secs:.1} s ({})",
            args.archive.display(),
            target.dbname(),
            phases.join(", ")
        );
    }
    Ok(exit::OK)
}

/// What the `--no-…` options leave out.
fn content(args: &RestoreArgs) -> Content {
    Content {
        no_owner: args.no_owner,
        no_privileges: args.no_privileges,
        no_comments: args.no_comments,
        no_publications: args.no_publications,
        no_security_labels: args.no_security_labels,
        no_subscriptions: args.no_subscriptions,
        no_statistics: args.no_statistics,
        no_tablespaces: args.no_tablespaces,
        no_toast_compression: args.no_toast_compression,
    }
}

/// `-f`: the archive as a SQL script.
fn render_sql(
    a: &MappedArchive,
    args: &RestoreArgs,
    file: &std::path::Path,
) -> Result<u8, CliError> {
    let content = content(args);
    let result = if file.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        coffer_engine::pg::sql::render(a, &content, &mut out)
    } else {
        let f = std::fs::File::create(file)
            .map_err(|e| CliError::new(exit::OUTPUT, format!("{}: {e}", file.display())))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
        coffer_engine::pg::sql::render(a, &content, &mut out)
    };
    result.map_err(|e| {
        if file.as_os_str() != "-" {
            let _ = std::fs::remove_file(file);
        }
        CliError::from(e)
    })?;
    Ok(exit::OK)
}
