//! The harness against real servers: servers start, work, are isolated from
//! each other, and are gone — process, port and directory — once dropped,
//! after a panic, and after the owning process is SIGKILLed.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use coffer_testkit::{HarnessError, PgServer, RedisServer, RespConnection, RespValue};

/// What a test needs to verify that a server is gone after its handle is.
#[derive(Debug)]
struct Footprint {
    port: u16,
    pid: u32,
    dir: PathBuf,
}

impl Footprint {
    fn of_pg(pg: &PgServer) -> Self {
        Self {
            port: pg.port(),
            pid: pg.pid(),
            dir: pg.socket_dir().to_path_buf(),
        }
    }

    fn of_redis(redis: &RedisServer) -> Self {
        Self {
            port: redis.port(),
            pid: redis.pid(),
            dir: redis.dir().to_path_buf(),
        }
    }

    fn is_gone(&self) -> bool {
        TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err()
            && !process_is_running(self.pid)
            && !self.dir.exists()
    }

    /// Polls for up to `timeout`: the watchdog needs a moment.
    fn wait_gone(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_gone() {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(100));
        }
        true
    }
}

/// Running means the pid exists and is not a zombie (a killed server whose
/// parent died may never be reaped in a container).
fn process_is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("State:"))
            .is_some_and(|state| !state.trim_start().starts_with('Z'))
    })
}

#[test]
fn two_postgres_servers_run_side_by_side() -> Result<(), HarnessError> {
    // Started concurrently, as parallel tests would.
    let (a, b) = thread::scope(|s| {
        let a = s.spawn(PgServer::start);
        let b = s.spawn(PgServer::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    let (a, b) = (a?, b?);
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());

    for (pg, rows) in [(&a, "(1, 'a'), (2, 'b')"), (&b, "(3, 'c')")] {
        pg.create_database("shop")?;
        pg.psql(
            "shop",
            &format!(
                "CREATE TABLE item (id int PRIMARY KEY, name text); INSERT INTO item VALUES {rows};"
            ),
        )?;
    }
    assert_eq!(
        a.psql("shop", "SELECT id, name FROM item ORDER BY id")?,
        "1|a\n2|b"
    );
    assert_eq!(
        b.psql("shop", "SELECT id, name FROM item ORDER BY id")?,
        "3|c"
    );

    assert_eq!(a.psql("postgres", "SHOW fsync")?, "off");
    assert_eq!(a.psql("postgres", "SHOW server_encoding")?, "UTF8");
    assert_eq!(a.psql("postgres", "SELECT current_user")?, a.user());

    // The client programs of the same installation work against it.
    let dump = a
        .client("pg_dump")
        .args(["--schema-only", "-d", "shop"])
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(String::from_utf8_lossy(&dump.stdout).contains("CREATE TABLE public.item"));

    // The unix socket works too.
    let via_socket = Command::new(a.client_bindir().join("psql"))
        .args([
            "-X",
            "-A",
            "-t",
            "-U",
            a.user(),
            "-d",
            "shop",
            "-c",
            "SELECT count(*) FROM item",
        ])
        .arg("-h")
        .arg(a.socket_dir())
        .arg("-p")
        .arg(a.port().to_string())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&via_socket.stdout).trim(), "2");

    assert_eq!(
        a.url("shop"),
        format!("postgres://postgres@127.0.0.1:{}/shop", a.port())
    );
    assert_eq!(a.host(), "127.0.0.1");

    let footprints = [Footprint::of_pg(&a), Footprint::of_pg(&b)];
    assert!(
        footprints
            .iter()
            .all(|f| f.dir.exists() && process_is_running(f.pid))
    );
    drop((a, b));
    for footprint in footprints {
        assert!(footprint.is_gone(), "{footprint:?} still there after drop");
    }
    Ok(())
}

#[test]
fn postgres_builder_settings_reach_the_server() -> Result<(), HarnessError> {
    let pg = PgServer::builder()
        .setting("wal_level", "logical")
        .setting("max_connections", "60")
        .setting("cluster_name", r"it's a\test")
        .start()?;
    assert_eq!(pg.psql("postgres", "SHOW wal_level")?, "logical");
    assert_eq!(pg.psql("postgres", "SHOW max_connections")?, "60");
    assert_eq!(pg.psql("postgres", "SHOW cluster_name")?, r"it's a\test");
    Ok(())
}

#[test]
fn psql_errors_carry_the_server_message() -> Result<(), HarnessError> {
    let pg = PgServer::start()?;
    // ON_ERROR_STOP: the statement after the failing one must not run.
    let err = pg
        .psql(
            "postgres",
            "CREATE TABLE t (x int); SELECT * FROM missing_table; DROP TABLE t;",
        )
        .unwrap_err();
    assert!(matches!(err, HarnessError::CommandFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("missing_table"), "{err}");
    assert_eq!(pg.psql("postgres", "SELECT count(*) FROM t")?, "0");

    assert!(pg.psql("no_such_db", "SELECT 1").is_err());
    pg.create_database("we\"ird db")?;
    assert_eq!(
        pg.psql("we\"ird db", "SELECT current_database()")?,
        "we\"ird db"
    );
    Ok(())
}

#[test]
fn start_failures_report_the_server_log_and_clean_up() {
    let failures = [
        PgServer::builder()
            .setting("max_connections", "lots")
            .start()
            .map(drop)
            .unwrap_err(),
        RedisServer::builder()
            .config("no-such-directive yes")
            .start()
            .map(drop)
            .unwrap_err(),
    ];
    for (err, expected) in failures
        .iter()
        .zip(["max_connections", "no-such-directive"])
    {
        let HarnessError::StartFailed { log, log_tail, .. } = err else {
            panic!("expected StartFailed, got {err:?}");
        };
        assert!(log_tail.contains(expected), "{err:?}");
        assert!(err.to_string().contains(expected), "{err}");
        assert!(
            !log.parent().unwrap().exists(),
            "{err:?}: directory left behind"
        );
    }
}

#[test]
fn psql_handles_output_larger_than_a_pipe() -> Result<(), HarnessError> {
    let pg = PgServer::start()?;
    // Many statements, each printing: output exceeds the 64 KiB pipe buffer
    // long before psql has read the whole script.
    let script = "SELECT repeat('x', 1000);\n".repeat(500);
    let out = pg.psql("postgres", &script)?;
    assert_eq!(out.lines().count(), 500);
    Ok(())
}

#[test]
fn redis_round_trips_binary_values() -> Result<(), HarnessError> {
    let redis = RedisServer::start()?;
    let value: Vec<u8> = (0..=255).chain([b'\r', b'\n', 0]).collect();
    assert_eq!(
        redis.command(&[b"SET", b"k\r\n", &value])?,
        RespValue::Simple("OK".into())
    );
    assert_eq!(redis.command(&[b"GET", b"k\r\n"])?, RespValue::Bulk(value));
    assert_eq!(redis.command(&[b"GET", b"absent"])?, RespValue::Null);

    let mut conn = redis.connect()?;
    assert_eq!(
        conn.command(&[b"RPUSH", b"l", b"a", b""])?,
        RespValue::Integer(2)
    );
    assert_eq!(
        conn.command(&[b"LRANGE", b"l", b"0", b"-1"])?,
        RespValue::Array(vec![
            RespValue::Bulk(b"a".to_vec()),
            RespValue::Bulk(vec![])
        ])
    );
    assert!(
        matches!(conn.command(&[b"INCR", b"l"])?, RespValue::Error(e) if e.starts_with("WRONGTYPE"))
    );
    assert_eq!(
        conn.command(&[b"CONFIG", b"GET", b"save"])?,
        bulks(&["save", ""])
    );
    assert_eq!(conn.command(&[b"CONFIG", b"GET", b"dir"])?, {
        let dir = redis.dir().canonicalize().unwrap();
        bulks(&["dir", dir.to_str().unwrap()])
    });
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));

    let footprint = Footprint::of_redis(&redis);
    drop(conn);
    drop(redis);
    assert!(footprint.is_gone(), "{footprint:?} still there after drop");
    Ok(())
}

fn bulks(items: &[&str]) -> RespValue {
    RespValue::Array(
        items
            .iter()
            .map(|s| RespValue::Bulk(s.as_bytes().to_vec()))
            .collect(),
    )
}

#[test]
fn redis_builder_password_and_config() -> Result<(), HarnessError> {
    let redis = RedisServer::builder()
        .password("s3cret \"quoted\"")
        .config("repl-diskless-sync no")
        .config("user alice on >wonder ~* +@all")
        .start()?;
    assert_eq!(redis.command(&[b"PING"])?, RespValue::Simple("PONG".into()));
    assert_eq!(
        redis.command(&[b"CONFIG", b"GET", b"repl-diskless-sync"])?,
        bulks(&["repl-diskless-sync", "no"])
    );

    let mut anonymous = RespConnection::connect(redis.port())?;
    assert!(
        matches!(anonymous.command(&[b"PING"])?, RespValue::Error(e) if e.starts_with("NOAUTH"))
    );
    let auth = anonymous.command(&[b"AUTH", b"alice", b"wonder"])?;
    assert_eq!(auth, RespValue::Simple("OK".into()));

    assert_eq!(
        redis.url(),
        format!("redis://:s3cret%20%22quoted%22@127.0.0.1:{}", redis.port())
    );
    Ok(())
}

#[test]
fn a_panicking_test_still_stops_its_servers() {
    let footprints = Mutex::new(Vec::new());
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let pg = PgServer::start().unwrap();
        let redis = RedisServer::start().unwrap();
        let mut seen = footprints.lock().unwrap();
        seen.push(Footprint::of_pg(&pg));
        seen.push(Footprint::of_redis(&redis));
        drop(seen);
        panic!("deliberate panic with two servers running");
    }));
    assert!(outcome.is_err());
    let footprints = footprints.into_inner().unwrap();
    assert_eq!(footprints.len(), 2);
    for footprint in footprints {
        assert!(footprint.is_gone(), "{footprint:?} survived the panic");
    }
}

/// Set for the child process of [`servers_outlive_no_killed_test_process`].
const HOLD_ENV: &str = "COFFER_TESTKIT_HOLD_SERVERS";

/// Not a test: the process that [`servers_outlive_no_killed_test_process`]
/// kills. Starts servers, reports them, and waits to be killed.
#[test]
#[ignore = "helper process for servers_outlive_no_killed_test_process"]
fn hold_servers_until_killed() {
    if std::env::var_os(HOLD_ENV).is_none() {
        return;
    }
    let pg = PgServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    for f in [Footprint::of_pg(&pg), Footprint::of_redis(&redis)] {
        println!("HOLDING {} {} {}", f.port, f.pid, f.dir.display());
    }
    println!("HELD");
    thread::sleep(Duration::from_secs(120));
}

#[test]
fn servers_outlive_no_killed_test_process() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hold_servers_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(HOLD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut footprints = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "HELD" {
            break;
        }
        if let Some(rest) = line.strip_prefix("HOLDING ") {
            let mut fields = rest.splitn(3, ' ');
            footprints.push(Footprint {
                port: fields.next().unwrap().parse().unwrap(),
                pid: fields.next().unwrap().parse().unwrap(),
                dir: Path::new(fields.next().unwrap()).to_path_buf(),
            });
        }
    }
    assert_eq!(
        footprints.len(),
        2,
        "the helper process did not start its servers"
    );
    assert!(footprints.iter().all(|f| !f.is_gone()));

    // SIGKILL: no destructor runs; only the watchdogs can clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    for footprint in footprints {
        assert!(
            footprint.wait_gone(Duration::from_secs(20)),
            "{footprint:?} leaked after its owner was killed"
        );
    }
}

/// Every server of the version matrix (scripts/servers) starts and is the version it is
/// named for; the PostgreSQL 18 clients talk to each PostgreSQL.
#[test]
fn every_server_of_the_version_matrix_starts_and_is_its_version() {
    for major in coffer_testkit::PG_MAJORS {
        let pg = PgServer::builder().major(major).start().unwrap();
        let num: u32 = pg
            .psql("postgres", "SHOW server_version_num")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(num / 10000, major, "PostgreSQL {major}");
        let dump = pg.client("pg_dump").arg("--version").output().unwrap();
        assert!(String::from_utf8_lossy(&dump.stdout).contains("pg_dump (PostgreSQL) 18"));
    }
    for version in coffer_testkit::REDIS_VERSIONS {
        let redis = RedisServer::builder().version(version).start().unwrap();
        let RespValue::Bulk(info) = redis.command(&[b"INFO", b"server"]).unwrap() else {
            panic!("INFO of Redis {version}");
        };
        let info = String::from_utf8_lossy(&info);
        let (field, number) = match version.strip_prefix("valkey-") {
            Some(n) => ("valkey_version:", n),
            None => ("redis_version:", version),
        };
        let line = info
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("{version}: no {field} in INFO:\n{info}"));
        assert!(
            line[field.len()..].starts_with(&format!("{number}.")),
            "{version}: {line}"
        );
    }
}
