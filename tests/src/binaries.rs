//! Locating server programs.

use std::env;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HarnessError;

/// Programs that must all come from one PostgreSQL installation. Mixing
/// versions breaks in subtle ways (initdb's catalog vs. the server, pg_dump
/// refusing newer servers), and Debian's `/usr/bin/psql` is a version-picking
/// wrapper while `/usr/local/bin/initdb` may be a lone symlink, so the harness
/// insists on one directory that holds them all.
const PG_PROGRAMS: [&str; 6] = [
    "initdb",
    "postgres",
    "pg_ctl",
    "pg_isready",
    "psql",
    "pg_dump",
];

/// Environment variable naming a PostgreSQL bin directory to use instead of
/// the discovered one, e.g. to run the suite against several major versions.
const PG_BINDIR_ENV: &str = "COFFER_PG_BINDIR";

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` in a directory of `$PATH`, if any.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_complete_pg_bindir(dir: &Path) -> bool {
    PG_PROGRAMS.iter().all(|p| is_executable(&dir.join(p)))
}

/// The bin directory of the PostgreSQL installation to test against:
/// `$COFFER_PG_BINDIR`; else where `initdb` on `$PATH` really lives (symlinks
/// resolved); else `pg_config --bindir`; else the newest
/// `/usr/lib/postgresql/<version>/bin`. Only directories holding all of
/// [`PG_PROGRAMS`] qualify.
pub(crate) fn pg_bindir() -> Result<PathBuf, HarnessError> {
    if let Some(dir) = env::var_os(PG_BINDIR_ENV) {
        let dir = PathBuf::from(dir);
        return if is_complete_pg_bindir(&dir) {
            Ok(dir)
        } else {
            Err(HarnessError::BinaryNotFound {
                binary: "initdb, postgres, pg_ctl, pg_isready, psql and pg_dump",
                package: "postgresql",
                searched: format!("${PG_BINDIR_ENV}={}", dir.display()),
            })
        };
    }
    let from_path = on_path("initdb")
        .and_then(|initdb| initdb.canonicalize().ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf));
    let from_pg_config = || {
        let out = Command::new("pg_config").arg("--bindir").output().ok()?;
        let dir = String::from_utf8(out.stdout).ok()?;
        out.status.success().then(|| PathBuf::from(dir.trim_end()))
    };
    from_path
        .filter(|dir| is_complete_pg_bindir(dir))
        .or_else(|| from_pg_config().filter(|dir| is_complete_pg_bindir(dir)))
        .or_else(newest_debian_bindir)
        .ok_or_else(|| HarnessError::BinaryNotFound {
            binary: "initdb (with postgres, pg_ctl, pg_isready, psql, pg_dump beside it)",
            package: "postgresql",
            searched: "$PATH, `pg_config --bindir` and /usr/lib/postgresql/*/bin".into(),
        })
}

/// Debian installs each major version side by side under
/// `/usr/lib/postgresql/<version>/bin`; pick the highest complete one.
fn newest_debian_bindir() -> Option<PathBuf> {
    let version = |name: &OsStr| -> Option<Vec<u32>> {
        name.to_str()?
            .split('.')
            .map(|part| part.parse().ok())
            .collect()
    };
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = version(&entry.file_name())?;
            let bindir = entry.path().join("bin");
            is_complete_pg_bindir(&bindir).then_some((version, bindir))
        })
        .max()
        .map(|(_, bindir)| bindir)
}

/// The directory `scripts/servers` installs the server version matrix into:
/// `$COFFER_SERVERS`, else `/var/cache/coffer/servers` for root (the PostgreSQL
/// servers then run as `nobody`, who must be able to read them), else
/// `$XDG_CACHE_HOME/coffer/servers` or `~/.cache/coffer/servers`.
pub fn servers_dir() -> PathBuf {
    if let Some(dir) = env::var_os("COFFER_SERVERS") {
        return PathBuf::from(dir);
    }
    if crate::run_as::is_root() {
        return PathBuf::from("/var/cache/coffer/servers");
    }
    let cache = env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    cache.join("coffer/servers")
}

/// The server programs of PostgreSQL `major` from the version matrix.
pub(crate) fn pg_server_bindir(major: u32) -> Result<PathBuf, HarnessError> {
    let dir = servers_dir().join(format!("pg/{major}/bin"));
    if ["initdb", "postgres", "pg_ctl"]
        .iter()
        .all(|p| is_executable(&dir.join(p)))
    {
        Ok(dir)
    } else {
        Err(HarnessError::NotInstalled {
            what: format!("PostgreSQL {major}"),
            path: dir,
        })
    }
}

/// The PostgreSQL 18 client programs of the version matrix (psql, pg_dump,
/// pg_restore, pg_isready): they talk to every supported server, and pg_dump 18
/// is the test oracle for every major.
pub(crate) fn pg_client_bindir() -> Result<PathBuf, HarnessError> {
    let dir = servers_dir().join("pg-client/bin");
    if ["psql", "pg_dump", "pg_restore", "pg_isready"]
        .iter()
        .all(|p| is_executable(&dir.join(p)))
    {
        Ok(dir)
    } else {
        Err(HarnessError::NotInstalled {
            what: "the PostgreSQL 18 client programs".into(),
            path: dir,
        })
    }
}

/// A Redis or Valkey server of the version matrix, by name: `"6.2"`, `"7.0"`
/// (Debian's redis-server, found as [`redis_server`] finds it), `"8.2"` or
/// `"valkey-9.1"`.
pub fn redis_server_of(version: &str) -> Result<PathBuf, HarnessError> {
    let program = match version {
        "7.0" => return redis_server(),
        "6.2" | "8.2" => "redis-server",
        "valkey-9.1" => "valkey-server",
        other => {
            return Err(HarnessError::NotInstalled {
                what: format!("Redis {other} (not in the version matrix)"),
                path: servers_dir().join("redis"),
            });
        }
    };
    let path = servers_dir().join("redis").join(version).join(program);
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(HarnessError::NotInstalled {
            what: format!("Redis {version}"),
            path,
        })
    }
}

/// Environment variable naming the `redis-server` binary to use instead of the
/// discovered one.
const REDIS_SERVER_ENV: &str = "COFFER_REDIS_SERVER";

/// The `redis-server` that [`crate::RedisServer`] starts: `$COFFER_REDIS_SERVER` if set
/// (it must be executable), else `redis-server` from `$PATH`, else Debian's
/// `/usr/bin/redis-server` (for environments with a minimal `$PATH`).
pub fn redis_server() -> Result<PathBuf, HarnessError> {
    if let Some(named) = env::var_os(REDIS_SERVER_ENV) {
        let named = PathBuf::from(named);
        return if is_executable(&named) {
            Ok(named)
        } else {
            Err(HarnessError::BinaryNotFound {
                binary: "redis-server",
                package: "redis-server",
                searched: format!("${REDIS_SERVER_ENV} = {}", named.display()),
            })
        };
    }
    let fallback = Path::new("/usr/bin/redis-server");
    on_path("redis-server")
        .or_else(|| is_executable(fallback).then(|| fallback.to_path_buf()))
        .ok_or(HarnessError::BinaryNotFound {
            binary: "redis-server",
            package: "redis-server",
            searched: "$PATH and /usr/bin".into(),
        })
}
