//! Joining a Redis master as a replica, just long enough to receive its RDB.
//!
//! The handshake is Redis' own (`syncWithMaster`): `PING`, `AUTH`, `REPLCONF
//! listening-port`, `REPLCONF capa eof capa psync2`, `REPLCONF rdb-only 1` and Valkey's
//! `REPLCONF version 9.0.0` (a Valkey 9 master sends its own RDB 80 only to a replica that
//! says it is Valkey 9: to others it sends RDB 11, which cannot hold hash field TTLs, and
//! gives up on a dataset that has some; Redis refuses the option, which does no harm),
//! each reply read before the next
//! command (a master refuses `PSYNC` while replies are pending), then `PSYNC ? -1`, or
//! `SYNC` when `PSYNC` is refused. The master answers `+FULLRESYNC <replid> <offset>`
//! (PSYNC only), then the payload as `$<len>\r\n<len bytes>` (disk-based) or
//! `$EOF:<40-byte mark>\r\n<rdb><mark>` (diskless). Bare `\n` keep-alives may come before
//! either line.
//!
//! Commands and ordinary replies go through `redis-protocol`'s RESP2 encoder and decoder.
//! The replication preamble is read by hand: the keep-alive newlines, and a `$` line that
//! is followed by a raw payload without the trailing CRLF of a RESP bulk string, are not
//! RESP.

use std::time::Duration;

use bytes::BytesMut;
use redis_protocol::resp2::types::{OwnedFrame, Resp2Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::conn::ServerInfo;
use super::tls::{ClientCert, Session, TlsOptions};
use crate::{Error, ErrorKind, Result};

/// The Valkey version a dump says it is (`REPLCONF version`): the oldest to which a Valkey
/// master sends RDB 80.
pub const VALKEY_REPLICA_VERSION: &str = "9.0.0";

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct ReplicaOptions {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// ACL user (Redis 6+); `None` authenticates as `default` with `AUTH <password>`.
    pub username: Option<String>,
    /// Password; never logged or put in an error message.
    pub password: Option<String>,
    /// Limit for the TCP connection.
    pub connect_timeout: Duration,
    /// Longest silence from the master before giving up (Redis' `repl-timeout` is 60 s).
    pub read_timeout: Duration,
    /// How often to send `REPLCONF ACK` while the transfer runs.
    pub ack_interval: Duration,
    /// TLS (`rediss://`), and how to check the server.
    pub tls: Option<TlsOptions>,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        ReplicaOptions {
            host: "127.0.0.1".into(),
            port: 6379,
            username: None,
            password: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            ack_interval: Duration::from_secs(1),
            tls: None,
        }
    }
}

impl ReplicaOptions {
    /// Options from a `redis://[[user]:password@]host[:port][/db]` URL (user and password
    /// percent-decoded; the database number is ignored: a replica receives them all).
    /// `rediss://` is the same over TLS, the server checked against the system's roots, or
    /// against the CA file of `?cacert=FILE`, else of `COFFER_REDIS_CACERT`; with a client
    /// certificate from `?cert=FILE&key=FILE`, else `COFFER_REDIS_CERT`/`COFFER_REDIS_KEY`.
    pub fn from_url(url: &str) -> Result<ReplicaOptions> {
        let usage = |why: &str| Error::new(ErrorKind::Usage, format!("bad redis URL: {why}"));
        let (rest, tls) = if let Some(r) = url.strip_prefix("rediss://") {
            (r, true)
        } else {
            let r = url
                .strip_prefix("redis://")
                .ok_or_else(|| usage("it must start with redis:// or rediss://"))?;
            (r, false)
        };
        let (mut cacert, mut cert, mut key) = (None, None, None);
        if let Some((_, query)) = rest.split_once('?') {
            for pair in query.split('&') {
                let Some((name, v)) = pair.split_once('=') else {
                    continue;
                };
                let slot = match name {
                    "cacert" => &mut cacert,
                    "cert" => &mut cert,
                    "key" => &mut key,
                    _ => continue,
                };
                let v = percent_decode(v)
                    .ok_or_else(|| usage(&format!("bad percent-encoding in {name}")))?;
                *slot = Some(std::path::PathBuf::from(v));
            }
        }
        if !tls && (cacert.is_some() || cert.is_some() || key.is_some()) {
            return Err(usage("cacert, cert and key are for rediss:// (TLS) URLs"));
        }
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let mut opts = ReplicaOptions::default();
        if let Some(u) = userinfo {
            let (user, pass) = match u.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (u, None),
            };
            let user =
                percent_decode(user).ok_or_else(|| usage("bad percent-encoding in the user"))?;
            opts.username = (!user.is_empty()).then_some(user);
            if let Some(p) = pass {
                opts.password = Some(
                    percent_decode(p)
                        .ok_or_else(|| usage("bad percent-encoding in the password"))?,
                );
            } else if opts.username.is_some() {
                // `redis://secret@host`: a lone userinfo is the password, as redis-cli reads it.
                opts.password = opts.username.take();
            }
        }
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let (h, after) = h
                .split_once(']')
                .ok_or_else(|| usage("unclosed [ in the host"))?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if !host.is_empty() {
            opts.host = host.to_string();
        }
        if let Some(p) = port {
            opts.port = p.parse().map_err(|_| usage("the port is not a number"))?;
        }
        if tls {
            let env = |name: &str| {
                std::env::var_os(name)
                    .filter(|v| !v.is_empty())
                    .map(std::path::PathBuf::from)
            };
            // the URL's files win; the environment fills in only when the URL names none
            let client = if cert.is_some() || key.is_some() {
                ClientCert::pair(cert, key, "cert=FILE", "key=FILE")
            } else {
                ClientCert::pair(
                    env(super::tls::CERT_ENV),
                    env(super::tls::KEY_ENV),
                    super::tls::CERT_ENV,
                    super::tls::KEY_ENV,
                )
            }
            .map_err(|e| usage(e.message()))?;
            opts.tls = Some(TlsOptions {
                ca_file: cacert.or_else(|| env(super::tls::CACERT_ENV)),
                client,
            });
        }
        Ok(opts)
    }
}

/// `%XX` escapes in a URL's user, password or query value; `None` for a `%` without two
/// hex digits after it (percent-encoding's decoder keeps those as they are, which would
/// hide a mistyped password) or for bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let escapes_valid = b
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == b'%')
        .all(|(i, _)| {
            b.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        });
    if !escapes_valid {
        return None;
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// How the RDB payload is delimited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// `$<len>`: exactly this many bytes (disk-based sync).
    Length(u64),
    /// `$EOF:<mark>`: the RDB, then the same 40 bytes (diskless sync).
    EofMark([u8; 40]),
}

/// What the master said when the full sync started.
#[derive(Clone, Debug)]
pub struct SyncStart {
    /// Replication id (`+FULLRESYNC`); `None` after a plain `SYNC`.
    pub replid: Option<String>,
    /// Replication offset the RDB corresponds to; `None` after a plain `SYNC`.
    pub offset: Option<u64>,
    /// How the payload is delimited.
    pub payload: Payload,
    /// The server, from `INFO server`, when the user may run it.
    pub server: Option<ServerInfo>,
}

/// A connection in the replica role.
pub struct Replica {
    rd: OwnedReadHalf,
    wr: Option<OwnedWriteHalf>,
    /// The TLS session over the socket (`rediss://`).
    tls: Option<Session>,
    /// Received TLS bytes, before they are opened.
    raw: Vec<u8>,
    buf: BytesMut,
    opts: ReplicaOptions,
    ack_task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(t) = self.ack_task.take() {
            t.abort();
        }
    }
}

fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let frame = OwnedFrame::Array(
        args.iter()
            .map(|a| OwnedFrame::BulkString(a.to_vec()))
            .collect(),
    );
    let mut out = vec![0u8; frame.encode_len(false)];
    let n = redis_protocol::resp2::encode::encode(&mut out, &frame, false)
        .expect("the buffer has the frame's encoded length");
    out.truncate(n);
    out
}

/// A server error reply's first word: `ERR`, `NOAUTH`, `WRONGPASS`, `NOPERM`…
fn error_code(msg: &str) -> &str {
    msg.split_whitespace().next().unwrap_or("")
}

impl Replica {
    /// Connects and runs the handshake up to, not including, `PSYNC`.
    pub async fn connect(opts: &ReplicaOptions) -> Result<Replica> {
        let addr = format!("{}:{}", opts.host, opts.port);
        let stream = tokio::time::timeout(opts.connect_timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Connect,
                    format!(
                        "connecting to redis at {addr}: no answer within {:?}",
                        opts.connect_timeout
                    ),
                )
            })?
            .map_err(|e| {
                Error::new(ErrorKind::Connect, format!("connecting to redis at {addr}"))
                    .with_source(e)
            })?;
        let mut stream = stream;
        let _ = stream.set_nodelay(true);
        let tls = match &opts.tls {
            Some(t) => {
                let session = Session::new(t, &opts.host, &addr)?;
                tokio::time::timeout(opts.connect_timeout, session.handshake_async(&mut stream))
                    .await
                    .map_err(|_| {
                        Error::new(
                            ErrorKind::Connect,
                            format!(
                                "TLS to redis at {addr}: no handshake within {:?}",
                                opts.connect_timeout
                            ),
                        )
                    })??;
                Some(session)
            }
            None => None,
        };
        let (rd, wr) = stream.into_split();
        let mut r = Replica {
            rd,
            wr: Some(wr),
            tls,
            raw: Vec::new(),
            buf: BytesMut::with_capacity(64 << 10),
            opts: opts.clone(),
            ack_task: None,
        };
        r.handshake().await?;
        Ok(r)
    }

    async fn handshake(&mut self) -> Result<()> {
        // PING: NOAUTH (or NOPERM) is fine here, authentication comes next.
        match self.command(&[b"PING"]).await? {
            OwnedFrame::SimpleString(_) => {}
            OwnedFrame::Error(e)
                if matches!(error_code(&e), "NOAUTH" | "NOPERM")
                    || e.contains("operation not permitted") => {}
            other => return Err(unexpected("PING", &other)),
        }
        if let Some(password) = self.opts.password.clone() {
            let user = self.opts.username.clone();
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(u) = &user {
                args.push(u.as_bytes());
            }
            args.push(password.as_bytes());
            match self.command(&args).await? {
                OwnedFrame::SimpleString(_) => {}
                OwnedFrame::Error(e) => {
                    let who = user
                        .as_deref()
                        .map_or(String::new(), |u| format!(" as user {u:?}"));
                    return Err(Error::new(
                        ErrorKind::Auth,
                        format!("redis refused the credentials{who}: {e}"),
                    ));
                }
                other => return Err(unexpected("AUTH", &other)),
            }
        }
        Ok(())
    }

    /// What `INFO server` says the server is, if the user may run INFO.
    pub async fn server_info(&mut self) -> Result<Option<ServerInfo>> {
        match self.command(&[b"INFO", b"server"]).await? {
            OwnedFrame::BulkString(b) => Ok(ServerInfo::parse(&String::from_utf8_lossy(&b))),
            OwnedFrame::Error(e) if error_code(&e) == "NOAUTH" => Err(no_auth(&e)),
            _ => Ok(None),
        }
    }

    /// Sends the REPLCONFs and `PSYNC ? -1` (or `SYNC`), and reads up to the payload.
    pub async fn start_sync(&mut self, server: Option<ServerInfo>) -> Result<SyncStart> {
        // Errors to these are "non critical", as for Redis' own replicas; but a
        // missing password shows up here first.
        let replconfs: [&[&[u8]]; 4] = [
            &[b"REPLCONF", b"listening-port", b"0"],
            &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"],
            // 6.2+: a snapshot-only replica; the master keeps no replication buffer for it.
            &[b"REPLCONF", b"rdb-only", b"1"],
            // Valkey 8+: the replica's version picks the RDB version the master sends; 9.0
            // gets RDB 80, the newest this build reads.
            &[b"REPLCONF", b"version", VALKEY_REPLICA_VERSION.as_bytes()],
        ];
        for args in replconfs {
            match self.command(args).await? {
                OwnedFrame::Error(e) if error_code(&e) == "NOAUTH" => return Err(no_auth(&e)),
                OwnedFrame::Error(e) => tracing::debug!("REPLCONF refused (non critical): {e}"),
                _ => {}
            }
        }
        self.send(&[b"PSYNC", b"?", b"-1"]).await?;
        let first = self.read_line().await?;
        let (replid, offset) = if let Some(rest) = first.strip_prefix(b"+FULLRESYNC ") {
            let text = String::from_utf8_lossy(rest);
            let mut it = text.split_whitespace();
            let replid = it.next().filter(|r| r.len() == 40).map(str::to_string);
            let offset = it.next().and_then(|o| o.parse::<u64>().ok());
            if replid.is_none() || offset.is_none() {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("malformed +FULLRESYNC line {text:?}"),
                ));
            }
            (replid, offset)
        } else if first.starts_with(b"+CONTINUE") {
            return Err(Error::new(
                ErrorKind::Protocol,
                "the master offered a partial resync to a fresh replica",
            ));
        } else if let Some(e) = first.strip_prefix(b"-") {
            let e = String::from_utf8_lossy(e).into_owned();
            match error_code(&e) {
                "NOAUTH" => return Err(no_auth(&e)),
                "NOMASTERLINK" | "LOADING" => {
                    return Err(Error::new(
                        ErrorKind::Server,
                        format!("the server cannot serve a full sync right now: {e}"),
                    ));
                }
                _ => {}
            }
            tracing::debug!("PSYNC refused ({e}); trying SYNC");
            self.send(&[b"SYNC"]).await?;
            let line = self.read_line().await?;
            if let Some(e2) = line.strip_prefix(b"-") {
                let e2 = String::from_utf8_lossy(e2).into_owned();
                let kind = if error_code(&e) == "NOPERM" || error_code(&e2) == "NOPERM" {
                    ErrorKind::Permission
                } else {
                    ErrorKind::Server
                };
                let user = self.opts.username.as_deref().unwrap_or("default");
                return Err(Error::new(
                    kind,
                    format!(
                        "redis user {user:?} may not replicate (it needs +psync or +sync, and \
                         +replconf): PSYNC: {e}; SYNC: {e2}"
                    ),
                ));
            }
            return Ok(SyncStart {
                replid: None,
                offset: None,
                payload: parse_preamble(&line)?,
                server,
            });
        } else {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "unexpected reply to PSYNC: {:?}",
                    String::from_utf8_lossy(&first)
                ),
            ));
        };
        let line = self.read_line().await?;
        let payload = parse_preamble(&line)?;
        Ok(SyncStart {
            replid,
            offset,
            payload,
            server,
        })
    }

    /// Starts sending `REPLCONF ACK <offset>` every `ack_interval`, as a replica must;
    /// stops when the replica is dropped.
    pub fn start_acks(&mut self, offset: u64) {
        let Some(mut wr) = self.wr.take() else {
            return;
        };
        let every = self.opts.ack_interval;
        let ack = encode_command(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()]);
        let tls = self.tls.clone();
        self.ack_task = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            let mut sealed = Vec::new();
            loop {
                tick.tick().await;
                let bytes = match &tls {
                    Some(s) => {
                        sealed.clear();
                        if s.seal(&ack, &mut sealed).is_err() {
                            return;
                        }
                        &sealed
                    }
                    None => &ack,
                };
                if wr.write_all(bytes).await.is_err() {
                    return;
                }
            }
        }));
    }

    /// Reads the next bytes of the payload (and whatever follows it): `None` when the
    /// master closed the connection. Bytes buffered during the handshake come first.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<BytesMut>> {
        if !self.buf.is_empty() {
            let n = self.buf.len().min(max);
            return Ok(Some(self.buf.split_to(n)));
        }
        let mut chunk = BytesMut::with_capacity(max);
        let read = tokio::time::timeout(self.opts.read_timeout, self.read_some(&mut chunk, max))
            .await
            .map_err(|_| self.silent())?;
        match read {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(chunk)),
            // A master that closes with our ACKs unread resets the connection: closed.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                Ok(None)
            }
            Err(e) => {
                Err(Error::new(ErrorKind::Protocol, "reading from the master").with_source(e))
            }
        }
    }

    fn silent(&self) -> Error {
        Error::new(
            ErrorKind::Protocol,
            format!("the master sent nothing for {:?}", self.opts.read_timeout),
        )
    }

    /// Reads what the socket has (through TLS when on) into `out`: the plaintext bytes
    /// added, 0 at the end of the connection.
    async fn read_some(&mut self, out: &mut BytesMut, max: usize) -> std::io::Result<usize> {
        let Some(tls) = &self.tls else {
            return self.rd.read_buf(out).await;
        };
        loop {
            self.raw.resize(max.max(1 << 10), 0);
            let n = self.rd.read(&mut self.raw).await?;
            if n == 0 {
                return Ok(0);
            }
            let before = out.len();
            let open = tls
                .open(&self.raw[..n], out)
                .map_err(std::io::Error::other)?;
            if out.len() > before || !open {
                return Ok(out.len() - before);
            }
        }
    }

    async fn send(&mut self, args: &[&[u8]]) -> Result<()> {
        let wr = self
            .wr
            .as_mut()
            .expect("the write half is kept until ACKs start");
        let plain = encode_command(args);
        let bytes = match &self.tls {
            Some(s) => {
                let mut sealed = Vec::new();
                s.seal(&plain, &mut sealed)?;
                sealed
            }
            None => plain,
        };
        wr.write_all(&bytes)
            .await
            .map_err(|e| Error::new(ErrorKind::Protocol, "writing to redis").with_source(e))
    }

    async fn fill(&mut self) -> Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        let r =
            tokio::time::timeout(self.opts.read_timeout, self.read_some(&mut buf, 64 << 10)).await;
        self.buf = buf;
        let n = r.map_err(|_| self.silent())?.map_err(|e| {
            // a TLS error (a refused client certificate, say) keeps its own kind
            let reading = || Error::new(ErrorKind::Protocol, "reading from redis");
            if !e.get_ref().is_some_and(|i| i.is::<Error>()) {
                return reading().with_source(e);
            }
            e.into_inner()
                .and_then(|i| i.downcast::<Error>().ok())
                .map_or_else(reading, |inner| *inner)
        })?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Protocol,
                "redis closed the connection during the replication handshake",
            ));
        }
        Ok(())
    }

    /// Sends a command and reads one RESP2 reply.
    async fn command(&mut self, args: &[&[u8]]) -> Result<OwnedFrame> {
        self.send(args).await?;
        loop {
            match redis_protocol::resp2::decode::decode(&self.buf) {
                Ok(Some((frame, used))) => {
                    let _ = self.buf.split_to(used);
                    return Ok(frame);
                }
                Ok(None) => self.fill().await?,
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!("bad reply from redis: {e:?}"),
                    ));
                }
            }
        }
    }

    /// One line without its CRLF, skipping the bare `\n` keep-alives before it.
    async fn read_line(&mut self) -> Result<Vec<u8>> {
        const MAX_LINE: usize = 4096;
        loop {
            while self.buf.first() == Some(&b'\n') {
                let _ = self.buf.split_to(1);
            }
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(i + 1);
                let line = line.strip_suffix(b"\r\n").unwrap_or(&line[..i]);
                return Ok(line.to_vec());
            }
            if self.buf.len() > MAX_LINE {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    "a reply line from the master is too long",
                ));
            }
            self.fill().await?;
        }
    }
}

pub(crate) fn parse_preamble(line: &[u8]) -> Result<Payload> {
    if let Some(mark) = line.strip_prefix(b"$EOF:") {
        let mark: [u8; 40] = mark.try_into().map_err(|_| {
            Error::new(
                ErrorKind::Protocol,
                format!("the EOF mark has {} bytes, not 40", mark.len()),
            )
        })?;
        return Ok(Payload::EofMark(mark));
    }
    if let Some(len) = line.strip_prefix(b"$") {
        if let Some(len) = std::str::from_utf8(len)
            .ok()
            .and_then(|l| l.parse::<u64>().ok())
        {
            return Ok(Payload::Length(len));
        }
    }
    if let Some(e) = line.strip_prefix(b"-") {
        return Err(Error::new(
            ErrorKind::Server,
            format!(
                "the master aborted the sync: {}",
                String::from_utf8_lossy(e)
            ),
        ));
    }
    Err(Error::new(
        ErrorKind::Protocol,
        format!(
            "expected the RDB payload, got {:?}",
            String::from_utf8_lossy(line)
        ),
    ))
}

fn no_auth(e: &str) -> Error {
    Error::new(ErrorKind::Auth, format!("redis requires a password: {e}"))
}

fn unexpected(cmd: &str, f: &OwnedFrame) -> Error {
    let text = match f {
        OwnedFrame::Error(e) => e.clone(),
        other => format!("{other:?}"),
    };
    Error::new(
        ErrorKind::Protocol,
        format!("unexpected reply to {cmd}: {text}"),
    )
}

/// Finds the end of a diskless payload: after the RDB's last byte come the 40 bytes of
/// the mark, which may arrive split across any number of reads.
#[derive(Debug)]
pub struct MarkMatcher {
    mark: [u8; 40],
    seen: usize,
}

impl MarkMatcher {
    /// Expects `mark`.
    pub fn new(mark: [u8; 40]) -> Self {
        MarkMatcher { mark, seen: 0 }
    }

    /// Checks the next bytes after the RDB. `Ok(Some(n))`: the mark is complete after
    /// `n` bytes of `data`; `Ok(None)`: all of `data` matched, more is needed.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<usize>> {
        let want = &self.mark[self.seen..];
        let n = want.len().min(data.len());
        if data[..n] != want[..n] {
            return Err(Error::new(
                ErrorKind::Protocol,
                "the diskless transfer's end mark does not follow the RDB",
            ));
        }
        self.seen += n;
        Ok((self.seen == 40).then_some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_resp_arrays() {
        assert_eq!(encode_command(&[b"PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            encode_command(&[b"REPLCONF", b"ACK", b"0"]),
            b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$1\r\n0\r\n"
        );
    }

    #[test]
    fn a_bad_percent_escape_is_refused_not_kept() {
        assert_eq!(percent_decode("p%40ss%2f").as_deref(), Some("p@ss/"));
        for bad in ["p%4", "p%zz", "%", "p%4g", "%ff"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn urls() {
        let o = ReplicaOptions::from_url("redis://backup:p%40ss@db.example:6380/2").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("db.example", 6380));
        assert_eq!(o.username.as_deref(), Some("backup"));
        assert_eq!(o.password.as_deref(), Some("p@ss"));
        let o = ReplicaOptions::from_url("redis://:secret@[::1]").unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.username, o.password.as_deref()),
            ("::1", 6379, None, Some("secret"))
        );
        let o = ReplicaOptions::from_url("redis://localhost").unwrap();
        assert_eq!((o.username, o.password), (None, None));
        assert_eq!(
            ReplicaOptions::from_url("http://x").unwrap_err().kind(),
            ErrorKind::Usage
        );
        assert_eq!(
            ReplicaOptions::from_url("redis://h:x").unwrap_err().kind(),
            ErrorKind::Usage
        );
        let o = ReplicaOptions::from_url("rediss://:pw@cache.example:6380?cacert=%2Ftmp%2Fca.pem")
            .unwrap();
        assert_eq!((o.host.as_str(), o.port), ("cache.example", 6380));
        assert_eq!(o.password.as_deref(), Some("pw"));
        assert_eq!(
            o.tls.unwrap().ca_file.as_deref(),
            Some(std::path::Path::new("/tmp/ca.pem"))
        );
        assert!(
            ReplicaOptions::from_url("rediss://h")
                .unwrap()
                .tls
                .is_some()
        );
        assert!(ReplicaOptions::from_url("redis://h").unwrap().tls.is_none());
        assert_eq!(
            ReplicaOptions::from_url("redis://h?cacert=x")
                .unwrap_err()
                .kind(),
            ErrorKind::Usage
        );
        let o = ReplicaOptions::from_url("rediss://h?cert=%2Fc.pem&key=k.pem").unwrap();
        assert_eq!(
            o.tls.unwrap().client,
            Some(ClientCert {
                cert_file: "/c.pem".into(),
                key_file: "k.pem".into()
            })
        );
        for half in [
            "rediss://h?cert=c.pem",
            "rediss://h?key=k.pem",
            "redis://h?cert=c&key=k",
        ] {
            let e = ReplicaOptions::from_url(half).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Usage, "{half}: {e}");
        }
    }

    #[test]
    fn preambles() {
        assert_eq!(parse_preamble(b"$470").unwrap(), Payload::Length(470));
        let mark = [b'a'; 40];
        let mut line = b"$EOF:".to_vec();
        line.extend_from_slice(&mark);
        assert_eq!(parse_preamble(&line).unwrap(), Payload::EofMark(mark));
        assert!(parse_preamble(b"$EOF:short").is_err());
        assert_eq!(
            parse_preamble(b"-ERR oops").unwrap_err().kind(),
            ErrorKind::Server
        );
        assert!(parse_preamble(b"+OK").is_err());
    }

    #[test]
    fn mark_split_across_reads() {
        let mut mark = [0u8; 40];
        for (i, b) in mark.iter_mut().enumerate() {
            *b = b"0123456789abcdef"[i % 16];
        }
        for split in [0, 1, 20, 39, 40] {
            let mut m = MarkMatcher::new(mark);
            assert_eq!(
                m.feed(&mark[..split]).unwrap(),
                if split == 40 { Some(40) } else { None }
            );
            if split < 40 {
                let mut rest = mark[split..].to_vec();
                rest.extend_from_slice(b"*1\r\n"); // the command stream may follow
                assert_eq!(m.feed(&rest).unwrap(), Some(40 - split));
            }
        }
        let mut m = MarkMatcher::new(mark);
        assert!(m.feed(b"0123x").is_err());
    }
}
