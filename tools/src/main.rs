//! The `coffer` command-line tool.

mod cmd;
mod config;
mod error;
mod exit;
mod health;
mod human;
mod keys;
mod metrics;
mod notify;
mod redis_check;
mod retention;
mod sets;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use coffer_format::KeySource;

use crate::error::CliError;
use crate::keys::KeyArgs;

/// coffer: fast, verified backup and restore for PostgreSQL and Redis.
///
/// Archives are chunked, zstd-compressed, and every frame is BLAKE3-checksummed; see
/// SPEC.md for the format.
#[derive(Parser, Debug)]
#[command(name = "coffer", version, after_help = exit::HELP)]
struct Cli {
    #[command(flatten)]
    keys: KeyArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check every checksum, frame and stream of an archive, without a database; or of
    /// every archive of a backup set, given its record (BACKUP_DIR/sets/<id>.json).
    ///
    /// Exit 0 and a summary when the archive is intact; exit 1 naming each damaged frame
    /// (byte offset, stream, sequence number) otherwise. Without the key, an encrypted
    /// archive is scrubbed: stored bytes are checked, payloads are not decrypted.
    #[command(after_help = exit::HELP)]
    Verify {
        /// The archive, or a backup set's record.
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what a sealed archive holds: its streams, sizes and metadata.
    #[command(after_help = exit::HELP)]
    List {
        /// The archive.
        file: PathBuf,
        /// Print the header and the whole manifest as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a new sealed archive of everything intact in a damaged or truncated one.
    ///
    /// The input is never modified. Exit 0 when nothing was lost, 1 when something was
    /// (the output's manifest records what, per stream).
    #[command(after_help = exit::HELP)]
    Salvage {
        /// The damaged archive.
        file: PathBuf,
        /// Where to write the salvaged archive.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: PathBuf,
        /// zstd level for the new archive.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
        level: i32,
        /// Replace OUT if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Dump a database into an archive.
    #[command(subcommand, after_help = exit::HELP)]
    Dump(DumpCommand),
    /// Restore an archive (or render it as SQL).
    #[command(subcommand, after_help = exit::HELP)]
    Restore(RestoreCommand),
    /// Export an archive's data in an open format.
    #[command(subcommand, after_help = exit::HELP)]
    Export(ExportCommand),
    /// Show the effective configuration (backup.conf, then the environment, then --set),
    /// each value with where it came from; secrets are redacted.
    #[command(after_help = exit::HELP)]
    Config {
        #[command(flatten)]
        config: cmd::config::ConfigArgs,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore an archive into a throwaway database, check every table's rows and the
    /// object counts against what the archive holds, report, and drop the database.
    ///
    /// With --latest (or --backup-set ID), test a whole backup set: PostgreSQL into a
    /// throwaway database, Redis into a throwaway redis-server compared key by key, and
    /// record the result for `coffer status`. Exit 0 when everything matches, 1 on any
    /// mismatch or failed restore.
    #[command(after_help = exit::HELP, disable_help_flag = true)]
    RestoreTest(cmd::restore_test::RestoreTestArgs),
    /// The nightly job: PostgreSQL and Redis dumped at the same time into a backup set under
    /// BACKUP_DIR, each archive verified, then the notification, retention and metrics.
    ///
    /// Reads backup.conf (see `coffer config`). Exit 0 when the set is good; otherwise the
    /// code of the first part's failure (6 connect, 7 database, 5 output…), and the set is
    /// recorded as failed.
    #[command(after_help = exit::HELP)]
    Backup(cmd::backup::BackupArgs),
    /// Delete backup sets the retention policy does not keep (RETENTION_DAYS, KEEP_LAST,
    /// KEEP_DAILY, KEEP_WEEKLY, KEEP_MONTHLY). Pinned sets and the newest good set are
    /// always kept.
    #[command(after_help = exit::HELP)]
    Prune(cmd::prune::PruneArgs),
    /// Keep a backup set whatever the retention policy says (before a major update, say).
    #[command(after_help = exit::HELP)]
    Pin(cmd::prune::PinArgs),
    /// Backup health for monitoring: last good backup age, size against the recent
    /// average, free space on the backup volume, the last restore test.
    ///
    /// Exit 0 OK, 1 warning, 2 critical (as monitoring plugins do).
    Status(cmd::status::StatusArgs),
    /// Print (or --install) the cron file or systemd units for the daily backup and the
    /// weekly restore test.
    #[command(after_help = exit::HELP)]
    Schedule(cmd::schedule::ScheduleArgs),
    /// Try coffer: write, list, verify, encrypt, damage and salvage generated archives, then
    /// dump and restore throwaway PostgreSQL and Redis servers, and print a report.
    Demo {
        /// Keep the demo's files in DIR instead of a temporary directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum DumpCommand {
    /// Dump a PostgreSQL database: one consistent snapshot, data copied over parallel
    /// connections, schema read from the catalogs. Options follow pg_dump's names.
    ///
    /// With --key-file, --passphrase-file or COFFER_PASSPHRASE the archive is encrypted.
    #[command(after_help = exit::HELP, disable_help_flag = true)]
    Pg(Box<cmd::pg::DumpArgs>),
    /// Dump a Redis server: joins it as a replica and archives its RDB snapshot, each key
    /// with its raw value bytes, per database.
    ///
    /// With --key-file, --passphrase-file or COFFER_PASSPHRASE the archive is encrypted.
    #[command(after_help = exit::HELP)]
    Redis(cmd::redis::DumpArgs),
}

#[derive(Subcommand, Debug)]
enum RestoreCommand {
    /// Restore a PostgreSQL archive into a database (-d), in parallel (-j): schema, then
    /// data, then indexes and constraints, then privileges. Every frame is verified before
    /// it is loaded. With -f, write a plain SQL script instead, as `pg_restore -f` does.
    #[command(after_help = exit::HELP, disable_help_flag = true)]
    Pg(Box<cmd::pg::RestoreArgs>),
    /// Restore a Redis or Valkey archive into a server (--url: pipelined RESTORE, or type
    /// commands for what the target cannot RESTORE: the encodings of a newer server or of
    /// the other family, and any RESTORE it refuses), or write a dump.rdb (--rdb, of the
    /// archive's RDB version or of --rdb-version's).
    ///
    /// Exit 1 when some keys or function libraries were not restored (they existed, the
    /// server refused them, or it has no functions: 6.2); each is named on standard error
    /// (the first few). Exit 3, with nothing restored, when hashes with field TTLs would go
    /// to a server (or RDB version) without them and --drop-field-ttl is not given.
    #[command(after_help = exit::HELP)]
    Redis(cmd::redis::RestoreArgs),
}

#[derive(Subcommand, Debug)]
enum ExportCommand {
    /// Export a Redis archive's keys as JSON Lines, one object per key.
    #[command(after_help = exit::HELP)]
    Redis(cmd::redis::ExportArgs),
}

/// `coffer list … | head` closes standard output early; `println!` then panics. Like
/// other command-line tools, coffer stops quietly instead, with the shell's code for
/// SIGPIPE. (Restoring SIGPIPE's default action would need `unsafe`, and would also kill
/// a dump writing to a pipe before it could say why.)
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let keys = &cli.keys;
    // the operational commands read the configuration, which may name the key; the
    // others take it from the command line or COFFER_PASSPHRASE
    let with_key =
        |f: &dyn Fn(Option<KeySource>) -> Result<u8, CliError>| keys.source().and_then(f);
    let result = match cli.command {
        Command::Backup(args) => cmd::backup::run(args, keys),
        Command::Prune(args) => cmd::prune::run(args),
        Command::Pin(args) => cmd::prune::pin(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Schedule(args) => cmd::schedule::run(args),
        Command::RestoreTest(args) => cmd::restore_test::run(args, keys),
        Command::Config { config, json } => cmd::config::run(&config, json),
        Command::Demo { dir } => cmd::demo::run(dir),
        Command::Verify { file, json } => {
            with_key(&|key| cmd::verify::run(&file, key.as_ref(), json))
        }
        Command::List { file, json } => with_key(&|key| cmd::list::run(&file, key.as_ref(), json)),
        Command::Salvage {
            file,
            output,
            level,
            force,
        } => with_key(&|key| cmd::salvage::run(&file, &output, key, level, force)),
        Command::Dump(DumpCommand::Pg(args)) => {
            keys.source().and_then(|key| cmd::pg::dump(*args, key))
        }
        Command::Restore(RestoreCommand::Pg(args)) => {
            keys.source().and_then(|key| cmd::pg::restore(*args, key))
        }
        Command::Dump(DumpCommand::Redis(args)) => {
            keys.source().and_then(|key| cmd::redis::dump(args, key))
        }
        Command::Restore(RestoreCommand::Redis(args)) => {
            keys.source().and_then(|key| cmd::redis::restore(args, key))
        }
        Command::Export(ExportCommand::Redis(args)) => {
            keys.source().and_then(|key| cmd::redis::export(args, key))
        }
    };
    match result {
        Ok(code) => exit::code(code),
        Err(e) => {
            eprintln!("coffer: {e}");
            exit::code(e.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks the definitions (unique names, valid defaults) when a command is first
    /// parsed; this makes every subcommand's mistakes a test failure, not a user's panic.
    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
