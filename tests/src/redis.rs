//! A throwaway redis-server, and just enough RESP to talk to it.
//!
//! The RESP encoder and parser are hand-written on purpose: the test kit
//! stays dependency-light (no async runtime, no client crate whose own
//! behaviour we would be testing against), and it only needs to send a
//! command and read one reply — not a client's pooling, pub/sub or
//! cluster support.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{ServerProcess, log_tail};
use crate::{HarnessError, binaries, ports};

const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts with a fresh port when another process grabbed ours first.
const PORT_ATTEMPTS: usize = 5;
/// Socket timeouts of [`RespConnection`]: a wedged server fails the test
/// instead of hanging it until CI's global timeout.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespValue {
    /// `+OK`
    Simple(String),
    /// `-ERR ...`: an error reply is a value, not a [`HarnessError`], so tests
    /// can assert on it.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo`: binary-safe.
    Bulk(Vec<u8>),
    /// `*2\r\n...`
    Array(Vec<RespValue>),
    /// `$-1` or `*-1`: a missing key or an empty blocking pop.
    Null,
}

/// A plain TCP connection to a Redis server on 127.0.0.1.
#[derive(Debug)]
pub struct RespConnection {
    reader: BufReader<TcpStream>,
}

impl RespConnection {
    /// Connects to `127.0.0.1:<port>`.
    pub fn connect(port: u16) -> Result<Self, HarnessError> {
        let io_err = || HarnessError::io(format!("connecting to redis at 127.0.0.1:{port}"));
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(io_err())?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(io_err())?;
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(io_err())?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    /// Sends one command (each argument binary-safe) and reads its reply.
    pub fn command(&mut self, args: &[&[u8]]) -> Result<RespValue, HarnessError> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg);
            request.extend_from_slice(b"\r\n");
        }
        self.reader
            .get_mut()
            .write_all(&request)
            .map_err(HarnessError::io("sending a redis command"))?;
        read_value(&mut self.reader)
    }
}

fn read_line(reader: &mut impl BufRead) -> Result<Vec<u8>, HarnessError> {
    let mut line = Vec::new();
    reader
        .read_until(b'\n', &mut line)
        .map_err(HarnessError::io("reading a redis reply"))?;
    if !line.ends_with(b"\r\n") {
        return Err(HarnessError::Protocol(format!(
            "reply line not terminated by CRLF: {:?}",
            String::from_utf8_lossy(&line)
        )));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_int(bytes: &[u8]) -> Result<i64, HarnessError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            HarnessError::Protocol(format!("bad integer {:?}", String::from_utf8_lossy(bytes)))
        })
}

/// A length: non-negative, or -1 for null.
fn parse_len(bytes: &[u8]) -> Result<Option<usize>, HarnessError> {
    match parse_int(bytes)? {
        -1 => Ok(None),
        n => usize::try_from(n)
            .map(Some)
            .map_err(|_| HarnessError::Protocol(format!("bad length {n}"))),
    }
}

fn read_value(reader: &mut impl BufRead) -> Result<RespValue, HarnessError> {
    let line = read_line(reader)?;
    let (&kind, rest) = line
        .split_first()
        .ok_or_else(|| HarnessError::Protocol("empty reply line".into()))?;
    let text = || String::from_utf8_lossy(rest).into_owned();
    Ok(match kind {
        b'+' => RespValue::Simple(text()),
        b'-' => RespValue::Error(text()),
        b':' => RespValue::Integer(parse_int(rest)?),
        b'$' => match parse_len(rest)? {
            None => RespValue::Null,
            Some(len) => {
                let mut data = vec![0; len + 2];
                reader
                    .read_exact(&mut data)
                    .map_err(HarnessError::io("reading a redis bulk string"))?;
                if !data.ends_with(b"\r\n") {
                    return Err(HarnessError::Protocol(
                        "bulk string not terminated by CRLF".into(),
                    ));
                }
                data.truncate(len);
                RespValue::Bulk(data)
            }
        },
        b'*' => match parse_len(rest)? {
            None => RespValue::Null,
            Some(n) => RespValue::Array(
                (0..n)
                    .map(|_| read_value(reader))
                    .collect::<Result<_, _>>()?,
            ),
        },
        other => {
            return Err(HarnessError::Protocol(format!(
                "unsupported reply type {:?} (RESP3 is not spoken here)",
                char::from(other)
            )));
        }
    })
}

/// Options for a [`RedisServer`]; obtain one with [`RedisServer::builder`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RedisServerBuilder {
    config: Vec<String>,
    password: Option<String>,
    version: Option<String>,
}

impl RedisServerBuilder {
    /// Adds a raw redis.conf line, e.g. `"repl-diskless-sync no"` or
    /// `"user alice on >secret ~* +@all"`. Lines come after the harness's
    /// own (port, bind, dir, no persistence), and later lines win.
    pub fn config(mut self, line: impl Into<String>) -> Self {
        self.config.push(line.into());
        self
    }

    /// Sets `requirepass`; [`RedisServer::connect`], [`RedisServer::command`]
    /// and [`RedisServer::url`] then authenticate with it.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// A server of the version matrix ([`crate::REDIS_VERSIONS`]: `"6.2"`,
    /// `"7.0"`, `"8.2"`, `"valkey-9.1"`) instead of the discovered redis-server.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Starts redis-server in a new temporary directory.
    pub fn start(self) -> Result<RedisServer, HarnessError> {
        let binary = match &self.version {
            Some(v) => binaries::redis_server_of(v)?,
            None => binaries::redis_server()?,
        };
        let mut dir = tempfile::Builder::new()
            .prefix("coffer-redis-")
            .tempdir()
            .map_err(HarnessError::io("creating the redis temporary directory"))?;
        let conf_path = dir.path().join("redis.conf");
        let log_path = dir.path().join("redis.log");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = ports::free_port()?;
            let conf = self.config_file(port, dir.path());
            std::fs::write(&conf_path, conf)
                .map_err(HarnessError::io(format!("writing {}", conf_path.display())))?;
            let mut cmd = std::process::Command::new(&binary);
            cmd.arg(&conf_path).current_dir(dir.path());
            let mut server = RedisServer {
                process: ServerProcess::spawn(cmd, &log_path, dir.path(), "TERM")?,
                port,
                password: self.password.clone(),
                log_path: log_path.clone(),
                dir,
            };
            let ready = server.process.wait_ready(START_TIMEOUT, || {
                server_ping(port, server.password.as_deref())
                    .is_ok_and(|reply| reply == RespValue::Simple("PONG".into()))
            });
            let Err(reason) = ready else {
                return Ok(server);
            };
            // Take the directory back before `server` drops (and kills the
            // process): a retry reuses it.
            let RedisServer {
                process, dir: kept, ..
            } = server;
            drop(process);
            let tail = log_tail(&log_path, 30);
            if attempt < PORT_ATTEMPTS && tail.contains("Address already in use") {
                dir = kept;
                continue;
            }
            return Err(HarnessError::StartFailed {
                server: "redis-server",
                reason: format!("port {port}: {reason}"),
                log: log_path,
                log_tail: tail,
            });
        }
    }

    fn config_file(&self, port: u16, dir: &Path) -> String {
        let mut conf = String::new();
        let _ = writeln!(conf, "port {port}");
        conf.push_str("bind 127.0.0.1\n");
        let _ = writeln!(conf, "dir {}", quote(&dir.to_string_lossy()));
        // No snapshots or AOF: nothing outlives the test, and background
        // saves would compete with the code under test for the 2 CI cores.
        conf.push_str("save \"\"\nappendonly no\ndaemonize no\n");
        if let Some(password) = &self.password {
            let _ = writeln!(conf, "requirepass {}", quote(password));
        }
        for line in &self.config {
            conf.push_str(line);
            conf.push('\n');
        }
        conf
    }
}

/// redis.conf's double-quoted string syntax.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

fn server_ping(port: u16, password: Option<&str>) -> Result<RespValue, HarnessError> {
    authenticated(port, password)?.command(&[b"PING"])
}

fn authenticated(port: u16, password: Option<&str>) -> Result<RespConnection, HarnessError> {
    let mut conn = RespConnection::connect(port)?;
    if let Some(password) = password {
        match conn.command(&[b"AUTH", password.as_bytes()])? {
            RespValue::Simple(ok) if ok == "OK" => {}
            other => return Err(HarnessError::Protocol(format!("AUTH refused: {other:?}"))),
        }
    }
    Ok(conn)
}

/// A redis-server private to one test, on 127.0.0.1 at a free port, with its
/// working directory in a temporary directory and persistence off.
///
/// Dropping it kills the server (SIGKILL: there is nothing to save) and
/// deletes the directory — also when the test panics.
pub struct RedisServer {
    // Fields drop in declaration order: the process must be gone before
    // its directory is deleted.
    process: ServerProcess,
    port: u16,
    password: Option<String>,
    log_path: PathBuf,
    dir: TempDir,
}

impl RedisServer {
    /// Starts a server with the default configuration.
    pub fn start() -> Result<Self, HarnessError> {
        Self::builder().start()
    }

    /// Options for a server with extra configuration.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`, or `redis://:<password>@127.0.0.1:<port>`
    /// (percent-encoded) when started with a password.
    pub fn url(&self) -> String {
        match &self.password {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some(password) => format!(
                "redis://:{}@127.0.0.1:{}",
                percent_encode(password),
                self.port
            ),
        }
    }

    /// The server's working directory (`dir`), where `dump.rdb` would go.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server log, for diagnosing failures.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// pid of redis-server.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// A new connection, authenticated if the server has a password.
    pub fn connect(&self) -> Result<RespConnection, HarnessError> {
        authenticated(self.port, self.password.as_deref())
    }

    /// Runs one command on a new connection. Use [`connect`](Self::connect)
    /// for many commands, or for ones that depend on connection state.
    pub fn command(&self, args: &[&[u8]]) -> Result<RespValue, HarnessError> {
        self.connect()?.command(args)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<RespValue, HarnessError> {
        read_value(&mut &bytes[..])
    }

    #[test]
    fn parses_every_resp2_type() {
        let reply = b"*6\r\n+OK\r\n-ERR no\r\n:-7\r\n$3\r\na\r\n\r\n$-1\r\n*1\r\n*0\r\n";
        assert_eq!(
            parse(reply).unwrap(),
            RespValue::Array(vec![
                RespValue::Simple("OK".into()),
                RespValue::Error("ERR no".into()),
                RespValue::Integer(-7),
                RespValue::Bulk(b"a\r\n".to_vec()),
                RespValue::Null,
                RespValue::Array(vec![RespValue::Array(vec![])]),
            ])
        );
        assert_eq!(parse(b"*-1\r\n").unwrap(), RespValue::Null);
    }

    #[test]
    fn rejects_malformed_replies() {
        for bad in [
            &b"+OK\n"[..],
            b"$3\r\nab",
            b"$2\r\nabc\r\n",
            b":x\r\n",
            b"$-2\r\n",
            b"%1\r\n",
            b"",
        ] {
            assert!(
                parse(bad).is_err(),
                "{:?} parsed",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn url_encodes_passwords() {
        assert_eq!(percent_encode("a b@:/%é~"), "a%20b%40%3A%2F%25%C3%A9~");
    }
}
