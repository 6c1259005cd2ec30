//! A throwaway PostgreSQL cluster.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{ServerProcess, log_tail};
use crate::run_as::RunAs;
use crate::{HarnessError, binaries, ports};

/// The superuser that `initdb` creates; trust authentication, no password.
const SUPERUSER: &str = "postgres";
const HOST: &str = "127.0.0.1";
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts with a fresh port when another process grabbed ours first.
const PORT_ATTEMPTS: usize = 5;

/// Settings written before the caller's own (later lines win in
/// postgresql.conf). `fsync = off` because durability against power loss is
/// irrelevant for a directory deleted after the test, and fsync dominates
/// run time on slow CI disks.
const DEFAULT_SETTINGS: [(&str, &str); 4] = [
    ("fsync", "off"),
    ("max_connections", "100"),
    ("shared_buffers", "16MB"),
    ("listen_addresses", HOST),
];

/// Options for a [`PgServer`]; obtain one with [`PgServer::builder`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct PgServerBuilder {
    settings: Vec<(String, String)>,
    major: Option<u32>,
}

impl PgServerBuilder {
    /// Adds a `postgresql.conf` setting, e.g. `("wal_level", "logical")`.
    /// Values are quoted for you; later settings override earlier ones and
    /// the harness defaults (`fsync = off`, `max_connections = 100`,
    /// `shared_buffers = 16MB`). The port and socket directory are the
    /// harness's own and should not be overridden.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// A server of PostgreSQL `major` (13–18) from the version matrix
    /// (`scripts/servers`), with the matrix's PostgreSQL 18 client programs, instead
    /// of the discovered installation.
    pub fn major(mut self, major: u32) -> Self {
        self.major = Some(major);
        self
    }

    /// Creates a cluster in a new temporary directory and starts it.
    pub fn start(self) -> Result<PgServer, HarnessError> {
        let (bindir, client_bindir) = match self.major {
            Some(major) => (
                binaries::pg_server_bindir(major)?,
                binaries::pg_client_bindir()?,
            ),
            None => {
                let dir = binaries::pg_bindir()?;
                (dir.clone(), dir)
            }
        };
        let run_as = RunAs::detect()?;
        let dir = tempfile::Builder::new()
            .prefix("coffer-pg-")
            .tempdir_in(run_as.temp_parent())
            .map_err(HarnessError::io(
                "creating the PostgreSQL temporary directory",
            ))?;
        run_as.hand_over(dir.path())?;
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("postgres.log");

        let mut initdb = server_command(&run_as, &bindir.join("initdb"), dir.path());
        initdb
            .arg("--pgdata")
            .arg(&data_dir)
            .args(["--auth=trust", "--username", SUPERUSER])
            .args(["--encoding=UTF8", "--locale=C", "--no-sync"]);
        let output = initdb
            .output()
            .map_err(HarnessError::io(format!("running {initdb:?}")))?;
        HarnessError::check(format!("{initdb:?}"), &output)?;

        let mut conf = String::from("\n# coffer-testkit\n");
        conf.push_str(&conf_line(
            "unix_socket_directories",
            &dir.path().to_string_lossy(),
        ));
        for (name, value) in DEFAULT_SETTINGS {
            conf.push_str(&conf_line(name, value));
        }
        for (name, value) in &self.settings {
            conf.push_str(&conf_line(name, value));
        }
        let conf_path = data_dir.join("postgresql.conf");
        OpenOptions::new()
            .append(true)
            .open(&conf_path)
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(HarnessError::io(format!(
                "appending to {}",
                conf_path.display()
            )))?;

        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = ports::free_port()?;
            // The port goes on the command line rather than into
            // postgresql.conf so that a retry only needs a new port.
            let mut postgres = server_command(&run_as, &bindir.join("postgres"), dir.path());
            postgres
                .arg("-D")
                .arg(&data_dir)
                .args(["-p", &port.to_string()]);
            let mut process = ServerProcess::spawn(postgres, &log_path, dir.path(), "QUIT")?;
            let ready = process.wait_ready(START_TIMEOUT, || is_ready(&client_bindir, port));
            match ready {
                Ok(()) => {
                    return Ok(PgServer {
                        process,
                        port,
                        bindir,
                        client_bindir,
                        data_dir,
                        log_path,
                        run_as,
                        dir,
                    });
                }
                Err(reason) => {
                    stop(&run_as, &bindir, &data_dir, dir.path());
                    drop(process);
                    let tail = log_tail(&log_path, 30);
                    if attempt < PORT_ATTEMPTS && tail.contains("Address already in use") {
                        continue;
                    }
                    return Err(HarnessError::StartFailed {
                        server: "PostgreSQL",
                        reason: format!("port {port}: {reason}"),
                        log: log_path,
                        log_tail: tail,
                    });
                }
            }
        }
    }
}

/// A PostgreSQL cluster private to one test: fresh `initdb` in a temporary
/// directory, trust authentication for superuser `postgres`, TCP on
/// 127.0.0.1 at a free port plus a unix socket in the temporary directory.
///
/// Dropping it stops the server (immediate shutdown: the data is thrown away
/// anyway) and deletes the directory — also when the test panics.
pub struct PgServer {
    // Fields drop in declaration order: the process must be gone before
    // its directory is deleted.
    process: ServerProcess,
    port: u16,
    /// The server programs (initdb, postgres, pg_ctl).
    bindir: PathBuf,
    /// The client programs (psql, pg_dump, …): the server's own installation, or
    /// the matrix's PostgreSQL 18 clients for a [`PgServerBuilder::major`] server.
    client_bindir: PathBuf,
    data_dir: PathBuf,
    log_path: PathBuf,
    run_as: RunAs,
    dir: TempDir,
}

impl PgServer {
    /// Starts a server with the default settings.
    pub fn start() -> Result<Self, HarnessError> {
        Self::builder().start()
    }

    /// Options for a server with non-default settings.
    pub fn builder() -> PgServerBuilder {
        PgServerBuilder::default()
    }

    /// TCP port on [`host`](Self::host).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Always `127.0.0.1`.
    pub fn host(&self) -> &str {
        HOST
    }

    /// Directory holding the server's unix socket (`.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The superuser to connect as: `postgres`, no password needed.
    pub fn user(&self) -> &str {
        SUPERUSER
    }

    /// `postgres://postgres@127.0.0.1:<port>/<dbname>`.
    pub fn url(&self, dbname: &str) -> String {
        format!("postgres://{SUPERUSER}@{HOST}:{}/{dbname}", self.port)
    }

    /// The bin directory of the client programs tests use as oracles (`pg_dump`,
    /// `pg_restore`, `psql`, `pgbench`…): the server's own for a discovered
    /// installation, PostgreSQL 18's for a server of the version matrix.
    pub fn client_bindir(&self) -> &Path {
        &self.client_bindir
    }

    /// The cluster's data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server log, for diagnosing failures.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// pid of the postmaster.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// A command running client program `program` (`psql`, `pg_dump`,
    /// `pgbench`, ...) from [`client_bindir`](Self::client_bindir), with `PGHOST`, `PGPORT`
    /// and `PGUSER` pointing at this server and every other `PG*` variable
    /// of the test environment removed. Name the database with `-d`.
    pub fn client(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.client_bindir.join(program));
        scrub_pg_env(&mut cmd);
        cmd.env("PGHOST", HOST)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", SUPERUSER);
        cmd
    }

    /// Runs the SQL script `sql` in database `db` with `psql`, stopping at
    /// the first error, and returns the output: unaligned, tuples only
    /// (`-A -t`), so `SELECT 1, 2` gives `1|2`, with the final newline
    /// removed.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, HarnessError> {
        let mut psql = self.client("psql");
        psql.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            db,
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let describe = format!("psql -d {db} <<< {sql:?}");
        let mut child = psql
            .spawn()
            .map_err(HarnessError::io(format!("spawning {describe}")))?;
        // Feed the script from another thread: psql prints results while it
        // still reads, so writing everything first could deadlock with both
        // sides blocked on full pipes.
        let stdin = child.stdin.take();
        let script = sql.as_bytes().to_vec();
        let feeder = std::thread::spawn(move || {
            // A write error means psql exited early; its status says why.
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(&script);
            }
        });
        let output = child
            .wait_with_output()
            .map_err(HarnessError::io(format!("waiting for {describe}")))?;
        // The feeder cannot panic; joining only makes sure it is finished.
        let _ = feeder.join();
        HarnessError::check(describe, &output)?;
        let mut stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if stdout.ends_with('\n') {
            stdout.pop();
        }
        Ok(stdout)
    }

    /// A new empty directory inside the server's temporary directory, owned by the
    /// user the server runs as: a place for `CREATE TABLESPACE … LOCATION`.
    pub fn new_directory(&self, name: &str) -> Result<PathBuf, HarnessError> {
        let dir = self.dir.path().join("dirs").join(name);
        std::fs::create_dir_all(&dir)
            .map_err(HarnessError::io(format!("creating {}", dir.display())))?;
        self.run_as.hand_over(&dir)?;
        Ok(dir)
    }

    /// `CREATE DATABASE "<name>"`.
    pub fn create_database(&self, name: &str) -> Result<(), HarnessError> {
        let quoted = name.replace('"', "\"\"");
        self.psql("postgres", &format!("CREATE DATABASE \"{quoted}\""))
            .map(drop)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        stop(&self.run_as, &self.bindir, &self.data_dir, self.dir.path());
        // `process` drops next: it reaps the postmaster (or kills it, should
        // pg_ctl have failed) and ends the watchdog.
    }
}

/// Immediate shutdown through `pg_ctl` (SIGQUIT to the postmaster), waiting
/// until it is done. A plain SIGKILL would skip the postmaster's cleanup and
/// leak its System V shared memory segment on every test.
fn stop(run_as: &RunAs, bindir: &Path, data_dir: &Path, dir: &Path) {
    if !data_dir.join("postmaster.pid").exists() {
        return;
    }
    let mut pg_ctl = server_command(run_as, &bindir.join("pg_ctl"), dir);
    pg_ctl
        .args(["stop", "-m", "immediate", "-w", "-t", "30", "-D"])
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Failure leaves the postmaster running; ServerProcess's drop kills it.
    let _ = pg_ctl.status();
}

fn is_ready(bindir: &Path, port: u16) -> bool {
    let mut pg_isready = Command::new(bindir.join("pg_isready"));
    scrub_pg_env(&mut pg_isready);
    pg_isready
        .args([
            "-q", "-t", "1", "-h", HOST, "-U", SUPERUSER, "-d", "postgres", "-p",
        ])
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A command for a server program (initdb, postgres, pg_ctl) as the server
/// user, started in `dir` — the server user may not be able to enter the
/// test's working directory, which makes initdb warn.
fn server_command(run_as: &RunAs, program: &Path, dir: &Path) -> Command {
    let mut cmd = run_as.command(program);
    scrub_pg_env(&mut cmd);
    cmd.current_dir(dir);
    cmd
}

/// Removes `PG*` variables (PGDATA, PGPORT, PGOPTIONS, ...) of the
/// developer's environment, which would otherwise redirect or alter the
/// harness's servers and clients.
fn scrub_pg_env(cmd: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.as_encoded_bytes().starts_with(b"PG") {
            cmd.env_remove(name);
        }
    }
}

/// `name = 'value'` with postgresql.conf quoting.
fn conf_line(name: &str, value: &str) -> String {
    format!(
        "{name} = '{}'\n",
        value.replace('\\', "\\\\").replace('\'', "''")
    )
}
