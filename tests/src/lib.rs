//! Throwaway **real** PostgreSQL and Redis servers for coffer's tests.
//!
//! coffer's tests never talk to mocks: a backup engine is only as good as its
//! agreement with the real server's wire protocol, catalog and on-disk
//! behaviour, and mocks encode our own assumptions instead of the server's.
//! This crate starts a private server per test, on a free loopback port, in a
//! fresh temporary directory, and tears it down again when the handle drops —
//! including when the test panics, because `Drop` runs during unwinding.
//!
//! ```no_run
//! use coffer_testkit::{PgServer, RedisServer, RespValue};
//!
//! # fn main() -> Result<(), coffer_testkit::HarnessError> {
//! let pg = PgServer::start()?;
//! pg.create_database("shop")?;
//! pg.psql("shop", "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);")?;
//! assert_eq!(pg.psql("shop", "SELECT sum(x) FROM t")?, "3");
//!
//! let redis = RedisServer::start()?;
//! redis.command(&[b"SET", b"k", b"\x00\xff"])?;
//! assert_eq!(redis.command(&[b"GET", b"k"])?, RespValue::Bulk(b"\x00\xff".to_vec()));
//! # Ok(())
//! # }
//! ```
//!
//! # Which binaries
//!
//! PostgreSQL: `$COFFER_PG_BINDIR` if set (to test another major version),
//! else the directory `initdb` on `$PATH` really lives in, else
//! `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin` (where
//! Debian keeps them, off `$PATH`). The directory must hold the server *and*
//! client programs, so [`PgServer::client_bindir`] offers a `pg_dump`/`psql` of the
//! server's own version as test oracles. Redis: `redis-server` on `$PATH`.
//! `scripts/test` installs both on Debian when missing.
//!
//! # Leaked servers
//!
//! `Drop` stops the server and deletes its directory. When the test process
//! is killed outright (SIGKILL, a CI timeout) no destructor runs, so every
//! server also gets a tiny `sh` watchdog that notices the owning process is
//! gone and then stops the server and removes its directory (within about a
//! second). The residual risk is killing the watchdog too — e.g. SIGKILL sent
//! to the whole process group — but then the servers, which stay in the test
//! process's group, receive the same signal; only their temporary directories
//! remain behind in that case.
//!
//! # Running as root
//!
//! PostgreSQL refuses to run as root, and CI containers usually are root. When
//! the effective uid is 0 the PostgreSQL server programs run as `nobody` via
//! `setpriv` (util-linux), and the server's temporary directory is created
//! under `/tmp` and handed to that user. Client programs (`psql`, `pg_dump`)
//! and `redis-server` run as the current user.

mod binaries;

/// The PostgreSQL majors coffer supports, each tested through
/// [`PgServerBuilder::major`].
pub const PG_MAJORS: [u32; 6] = [13, 14, 15, 16, 17, 18];

/// The Redis and Valkey servers coffer supports, each started by
/// [`RedisServerBuilder::version`].
pub const REDIS_VERSIONS: [&str; 4] = ["6.2", "7.0", "8.2", "valkey-9.1"];
mod error;
pub mod oracle;
mod pg;
mod ports;
mod process;
mod redis;
mod run_as;
pub mod schemagen;

pub use binaries::{redis_server as redis_server_binary, redis_server_of, servers_dir};
pub use error::HarnessError;
pub use pg::{PgServer, PgServerBuilder};
pub use ports::free_port;
pub use redis::{RedisServer, RedisServerBuilder, RespConnection, RespValue};
