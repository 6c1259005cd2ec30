//! A plain, blocking RESP2 client connection for restores: connect, authenticate, send
//! commands (one at a time or pipelined by the caller) and read replies.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};

use bytes::BytesMut;
use redis_protocol::resp2::types::OwnedFrame;

use super::replica::ReplicaOptions;
use super::tls::Session;
use crate::{Error, ErrorKind, Result};

/// Appends `args` as a RESP array of bulk strings; each argument is the concatenation of
/// its parts.
pub fn encode_parts(out: &mut Vec<u8>, args: &[&[&[u8]]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        let len: usize = a.iter().map(|p| p.len()).sum();
        out.push(b'$');
        out.extend_from_slice(len.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        for p in *a {
            out.extend_from_slice(p);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `args` as a RESP array of bulk strings.
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    let parts: Vec<[&[u8]; 1]> = args.iter().map(|a| [*a]).collect();
    let refs: Vec<&[&[u8]]> = parts.iter().map(|p| &p[..]).collect();
    encode_parts(out, &refs);
}

/// Size of `args` as RESP.
pub fn encoded_len(args: &[&[&[u8]]]) -> usize {
    let mut n = 3 + digits(args.len());
    for a in args {
        let len: usize = a.iter().map(|p| p.len()).sum();
        n += 5 + digits(len) + len;
    }
    n
}

/// Decimal digits of `n`.
pub fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Appends `n` in decimal.
pub fn put_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut b = [0u8; 20];
    let mut i = b.len();
    loop {
        i -= 1;
        b[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&b[i..]);
}

/// A server error reply's first word: `ERR`, `NOAUTH`, `BUSYKEY`…
pub fn error_code(msg: &str) -> &str {
    msg.split_whitespace().next().unwrap_or("")
}

/// The start of a reply, as [`Conn::read_bulk_head`] reads it.
#[derive(Debug)]
pub enum BulkHead {
    /// A bulk string of this many bytes, still to read.
    Bulk(usize),
    /// A nil bulk string.
    Nil,
    /// Any other reply (an error…), whole.
    Other(OwnedFrame),
}

/// A blocking connection to a Redis server.
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    /// What each read lands in.
    scratch: Vec<u8>,
    addr: String,
    /// The TLS session over the socket (`rediss://`), shared with [`Conn::try_clone`]s.
    tls: Option<Session>,
    /// TLS records being written.
    sealed: Vec<u8>,
}

impl Conn {
    /// Connects and authenticates (`AUTH [user] password` when a password is given).
    pub fn connect(opts: &ReplicaOptions) -> Result<Conn> {
        let addr = format!("{}:{}", opts.host, opts.port);
        let fail = |e: std::io::Error| {
            Error::new(ErrorKind::Connect, format!("connecting to redis at {addr}")).with_source(e)
        };
        let mut last = None;
        let mut stream = None;
        for a in (opts.host.as_str(), opts.port)
            .to_socket_addrs()
            .map_err(fail)?
        {
            match TcpStream::connect_timeout(&a, opts.connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = match stream {
            Some(s) => s,
            None => {
                return Err(fail(last.unwrap_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
                })));
            }
        };
        let mut stream = stream;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(opts.read_timeout))
            .map_err(fail)?;
        let tls = match &opts.tls {
            Some(t) => {
                let s = Session::new(t, &opts.host, &addr)?;
                s.handshake(&mut stream)?;
                Some(s)
            }
            None => None,
        };
        let mut c = Conn {
            stream,
            buf: BytesMut::with_capacity(64 << 10),
            scratch: Vec::new(),
            addr: addr.clone(),
            tls,
            sealed: Vec::new(),
        };
        if let Some(password) = &opts.password {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(u) = &opts.username {
                args.push(u.as_bytes());
            }
            args.push(password.as_bytes());
            if let OwnedFrame::Error(e) = c.command(&args)? {
                let who = opts
                    .username
                    .as_deref()
                    .map_or(String::new(), |u| format!(" as user {u:?}"));
                return Err(Error::new(
                    ErrorKind::Auth,
                    format!("redis at {addr} refused the credentials{who}: {e}"),
                ));
            }
        }
        match c.command(&[b"PING"])? {
            OwnedFrame::Error(e) if error_code(&e) == "NOAUTH" => Err(Error::new(
                ErrorKind::Auth,
                format!("redis at {addr} requires a password: {e}"),
            )),
            OwnedFrame::Error(e) => Err(Error::new(
                ErrorKind::Permission,
                format!("redis at {addr} refused PING: {e}"),
            )),
            _ => Ok(c),
        }
    }

    /// A second handle on the same socket (for a reader thread).
    pub fn try_clone(&self) -> Result<Conn> {
        Ok(Conn {
            stream: self.stream.try_clone()?,
            buf: BytesMut::new(),
            scratch: Vec::new(),
            addr: self.addr.clone(),
            tls: self.tls.clone(),
            sealed: Vec::new(),
        })
    }

    /// Closes the socket both ways (wakes a reader blocked on it).
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Writes raw bytes.
    pub fn write_all(&mut self, b: &[u8]) -> Result<()> {
        let b = match &self.tls {
            Some(s) => {
                self.sealed.clear();
                s.seal(b, &mut self.sealed)?;
                &self.sealed[..]
            }
            None => b,
        };
        self.stream.write_all(b).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!("writing to redis at {}", self.addr),
            )
            .with_source(e)
        })
    }

    /// Reads one reply.
    pub fn read_reply(&mut self) -> Result<OwnedFrame> {
        loop {
            match redis_protocol::resp2::decode::decode(&self.buf) {
                Ok(Some((frame, used))) => {
                    let _ = self.buf.split_to(used);
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!("bad reply from redis at {}: {e:?}", self.addr),
                    ));
                }
            }
            self.fill()?;
        }
    }

    /// Reads the start of one reply: a bulk string's length, leaving its bytes to
    /// [`Conn::read_bulk_body`], so that a big one (a `DUMP`) is read in pieces instead of
    /// whole; a nil; or any other reply, whole.
    pub fn read_bulk_head(&mut self) -> Result<BulkHead> {
        loop {
            if let Some(eol) = self.buf.windows(2).position(|w| w == b"\r\n") {
                if self.buf[0] != b'$' {
                    return Ok(BulkHead::Other(self.read_reply()?));
                }
                let len = std::str::from_utf8(&self.buf[1..eol])
                    .ok()
                    .and_then(|n| n.parse::<i64>().ok())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Protocol,
                            format!("bad bulk string length from redis at {}", self.addr),
                        )
                    })?;
                let _ = self.buf.split_to(eol + 2);
                return Ok(match usize::try_from(len) {
                    Ok(n) => BulkHead::Bulk(n),
                    Err(_) => BulkHead::Nil,
                });
            }
            if self.buf.len() > 64 && self.buf.first() == Some(&b'$') {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("a bulk string header too long from redis at {}", self.addr),
                ));
            }
            self.fill()?;
        }
    }

    /// Reads the `len` bytes of the bulk string [`Conn::read_bulk_head`] announced, in
    /// pieces as they arrive (at most one socket read each), and its closing CRLF.
    pub fn read_bulk_body(
        &mut self,
        len: usize,
        f: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut left = len;
        while left > 0 {
            if self.buf.is_empty() {
                self.fill()?;
            }
            let n = left.min(self.buf.len());
            let piece = self.buf.split_to(n);
            left -= n;
            f(&piece)?;
        }
        while self.buf.len() < 2 {
            self.fill()?;
        }
        if &self.buf[..2] != b"\r\n" {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "a bulk string not ended by CRLF from redis at {}",
                    self.addr
                ),
            ));
        }
        let _ = self.buf.split_to(2);
        Ok(())
    }

    /// Reads one reply, answering a `+OK` without decoding or allocating (pipelined
    /// RESTOREs get little else); calls `idle` before it waits on the socket.
    pub fn read_reply_or_ok(&mut self, idle: &mut dyn FnMut()) -> Result<Option<OwnedFrame>> {
        loop {
            if self.buf.starts_with(b"+OK\r\n") {
                let _ = self.buf.split_to(5);
                return Ok(None);
            }
            if !self.buf.is_empty() {
                match redis_protocol::resp2::decode::decode(&self.buf) {
                    Ok(Some((frame, used))) => {
                        let _ = self.buf.split_to(used);
                        return Ok(Some(frame));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            format!("bad reply from redis at {}: {e:?}", self.addr),
                        ));
                    }
                }
            }
            idle();
            self.fill()?;
        }
    }

    /// Reads what the socket has (at least one byte) into the buffer.
    fn fill(&mut self) -> Result<()> {
        if self.scratch.is_empty() {
            self.scratch = vec![0; 64 << 10];
        }
        loop {
            match self.stream.read(&mut self.scratch) {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!("redis at {} closed the connection", self.addr),
                    ));
                }
                Ok(n) => match &self.tls {
                    None => {
                        self.buf.extend_from_slice(&self.scratch[..n]);
                        return Ok(());
                    }
                    Some(s) => {
                        let before = self.buf.len();
                        let open = s.open(&self.scratch[..n], &mut self.buf)?;
                        if self.buf.len() > before {
                            return Ok(());
                        }
                        if !open {
                            return Err(Error::new(
                                ErrorKind::Protocol,
                                format!("redis at {} closed the connection", self.addr),
                            ));
                        }
                        // Part of a record: read on.
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let what = if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) {
                        "redis sent no reply in time"
                    } else {
                        "reading from redis"
                    };
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!("{what} (at {})", self.addr),
                    )
                    .with_source(e));
                }
            }
        }
    }

    /// Sends one command and reads its reply.
    pub fn command(&mut self, args: &[&[u8]]) -> Result<OwnedFrame> {
        let mut out = Vec::new();
        encode(&mut out, args);
        self.write_all(&out)?;
        self.read_reply()
    }

    /// What `INFO server` says the server is, else `HELLO` (which an ACL that refuses
    /// INFO may still allow), when the user may run either.
    pub fn server_info(&mut self) -> Result<Option<ServerInfo>> {
        if let OwnedFrame::BulkString(b) = self.command(&[b"INFO", b"server"])? {
            if let Some(i) = ServerInfo::parse(&String::from_utf8_lossy(&b)) {
                return Ok(Some(i));
            }
        }
        Ok(match self.command(&[b"HELLO"])? {
            OwnedFrame::Array(fields) => ServerInfo::from_hello(&fields),
            _ => None,
        })
    }
}

/// A server as `INFO server` describes it: Redis, or Valkey (which reports the Redis
/// version it is compatible with, 7.2.4, as `redis_version`, and its own as
/// `valkey_version`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// `redis_version`.
    pub redis_version: String,
    /// `valkey_version`, on Valkey.
    pub valkey_version: Option<String>,
}

impl ServerInfo {
    /// From the text of `INFO server`; `None` without a `redis_version`.
    pub fn parse(info: &str) -> Option<ServerInfo> {
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        };
        let redis_version = field("redis_version")?;
        let mut valkey_version = field("valkey_version");
        if valkey_version.is_none() && field("server_name").as_deref() == Some("valkey") {
            // (Valkey 7.2 says server_name but not valkey_version.)
            valkey_version = Some(redis_version.clone());
        }
        Some(ServerInfo {
            redis_version,
            valkey_version,
        })
    }

    /// From `HELLO`'s reply (`server`, `version`…, in pairs): Valkey's gives its own
    /// version only, and is taken for compatible with Redis 7.2.4, as every Valkey says.
    pub fn from_hello(fields: &[OwnedFrame]) -> Option<ServerInfo> {
        let text = |f: &OwnedFrame| match f {
            OwnedFrame::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            OwnedFrame::SimpleString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        };
        let field = |name: &str| {
            fields
                .chunks_exact(2)
                .find(|p| text(&p[0]).as_deref() == Some(name))
                .and_then(|p| text(&p[1]))
        };
        let version = field("version")?;
        Some(if field("server").as_deref() == Some("valkey") {
            ServerInfo {
                redis_version: "7.2.4".into(),
                valkey_version: Some(version),
            }
        } else {
            ServerInfo::redis(&version)
        })
    }

    /// A Redis server of `version`.
    pub fn redis(version: &str) -> ServerInfo {
        ServerInfo {
            redis_version: version.to_string(),
            valkey_version: None,
        }
    }

    /// Whether it is Valkey.
    pub fn is_valkey(&self) -> bool {
        self.valkey_version.is_some()
    }

    /// `"redis"` or `"valkey"`.
    pub fn name(&self) -> &'static str {
        if self.is_valkey() { "valkey" } else { "redis" }
    }

    /// Its own version: Valkey's for Valkey.
    pub fn version(&self) -> &str {
        self.valkey_version
            .as_deref()
            .unwrap_or(&self.redis_version)
    }

    /// (major, minor) of the Redis version it behaves as, for which commands and options
    /// it has (Valkey: 7.2).
    pub fn redis_major_minor(&self) -> Option<(u32, u32)> {
        major_minor(&self.redis_version)
    }

    /// The RDB version it writes, which is also the newest it reads: see
    /// [`rdb_version_for`]; Valkey 7.2–8.x write RDB 11, Valkey 9 RDB 80 (and read Redis'
    /// up to 11, not the 12–79 of Redis 7.4 and later).
    pub fn rdb_version(&self) -> Option<u32> {
        match &self.valkey_version {
            None => rdb_version_for(&self.redis_version),
            Some(v) => Some(if major_minor(v)? >= (9, 0) { 80 } else { 11 }),
        }
    }

    /// Whether it keeps hash field TTLs (`HPEXPIREAT`): Redis 7.4 and later, Valkey 9 and
    /// later.
    pub fn has_field_ttls(&self) -> bool {
        match &self.valkey_version {
            None => major_minor(&self.redis_version).is_some_and(|v| v >= (7, 4)),
            Some(v) => major_minor(v).is_some_and(|v| v >= (9, 0)),
        }
    }
}

impl std::fmt::Display for ServerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.valkey_version {
            Some(v) => write!(f, "Valkey {v}"),
            None => write!(f, "Redis {}", self.redis_version),
        }
    }
}

/// The RDB version a Redis server version writes (and the newest it reads): 7.4–8.4 → 12,
/// 7.2 → 11, 7.0 → 10, 5.0–6.2 → 9, 4.0 → 8, 3.2 → 7, older → 6.
pub fn rdb_version_for(server_version: &str) -> Option<u32> {
    let mut it = server_version.split('.');
    let major: u32 = it.next()?.trim().parse().ok()?;
    let minor: u32 = it.next().and_then(|m| m.trim().parse().ok()).unwrap_or(0);
    Some(match (major, minor) {
        (0..=2, _) | (3, 0..=1) => 6,
        (3, _) => 7,
        (4, _) => 8,
        (5 | 6, _) => 9,
        (7, 0..=1) => 10,
        (7, 2..=3) => 11,
        (7, _) | (8, 0..=5) => 12,
        (8, 6..=7) => 13,
        _ => 14,
    })
}

/// (major, minor) of a server version string.
pub fn major_minor(server_version: &str) -> Option<(u32, u32)> {
    let mut it = server_version.split('.');
    let major = it.next()?.trim().parse().ok()?;
    let minor = it.next().and_then(|m| m.trim().parse().ok()).unwrap_or(0);
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_and_versions() {
        let mut out = Vec::new();
        encode(&mut out, &[b"SET", b"k", b""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
        let parts: [&[&[u8]]; 2] = [&[b"AB", b"C"], &[]];
        let mut out = Vec::new();
        encode_parts(&mut out, &parts);
        assert_eq!(out, b"*2\r\n$3\r\nABC\r\n$0\r\n\r\n");
        assert_eq!(encoded_len(&parts), out.len());
        assert_eq!(rdb_version_for("7.0.15"), Some(10));
        assert_eq!(rdb_version_for("6.2.14"), Some(9));
        assert_eq!(rdb_version_for("7.2.4"), Some(11));
        assert_eq!(rdb_version_for("7.4.0"), Some(12));
        assert_eq!(rdb_version_for("8.0.1"), Some(12));
        assert_eq!(rdb_version_for("x"), None);
        let valkey = ServerInfo::parse(
            "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.2\r\n",
        )
        .unwrap();
        assert_eq!(valkey.to_string(), "Valkey 9.1.2");
        assert_eq!(
            (valkey.rdb_version(), valkey.has_field_ttls()),
            (Some(80), true)
        );
        assert_eq!(valkey.redis_major_minor(), Some((7, 2)));
        let valkey8 = ServerInfo::parse("redis_version:7.2.4\nvalkey_version:8.1.4\n").unwrap();
        assert_eq!(
            (valkey8.rdb_version(), valkey8.has_field_ttls()),
            (Some(11), false)
        );
        let valkey72 = ServerInfo::parse("redis_version:7.2.5\nserver_name:valkey\n").unwrap();
        assert_eq!(valkey72.version(), "7.2.5");
        assert!(valkey72.is_valkey());
        let redis = ServerInfo::parse("redis_version:8.2.3\nredis_mode:standalone\n").unwrap();
        assert_eq!(redis.to_string(), "Redis 8.2.3");
        assert_eq!(
            (redis.rdb_version(), redis.has_field_ttls()),
            (Some(12), true)
        );
        assert!(!ServerInfo::redis("7.2.4").has_field_ttls());
        assert!(ServerInfo::redis("7.4.0").has_field_ttls());
        assert_eq!(ServerInfo::parse("loading:0\n"), None);
        let hello = |server: &str, version: &str| {
            let b = |s: &str| OwnedFrame::BulkString(s.as_bytes().to_vec());
            ServerInfo::from_hello(&[
                b("server"),
                b(server),
                b("version"),
                b(version),
                b("proto"),
                OwnedFrame::Integer(2),
            ])
        };
        assert_eq!(hello("redis", "6.2.14"), Some(ServerInfo::redis("6.2.14")));
        let v = hello("valkey", "9.1.2").unwrap();
        assert_eq!(
            (v.to_string(), v.rdb_version()),
            ("Valkey 9.1.2".into(), Some(80))
        );
        assert_eq!(ServerInfo::from_hello(&[]), None);
        for n in [0u64, 9, 10, 99, 100, 12345, u64::MAX] {
            let mut b = Vec::new();
            put_decimal(&mut b, n);
            assert_eq!(b, n.to_string().as_bytes());
            if let Ok(u) = usize::try_from(n) {
                assert_eq!(digits(u), b.len());
            }
        }
    }
}
