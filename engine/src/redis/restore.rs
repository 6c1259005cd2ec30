//! Restoring a Redis archive into a live server.
//!
//! Function libraries go first (`FUNCTION LOAD [REPLACE]`). Then every key, streamed out
//! of the archive one at a time, goes over one pipelined connection:
//!
//! * **`RESTORE key ttl payload ABSTTL [REPLACE] [IDLETIME s | FREQ f]`** with the DUMP
//!   payload rebuilt from the archived raw value bytes (`type ‖ value ‖ u16 LE RDB
//!   version ‖ CRC-64 LE`), when the target can load the key's type: its RDB version
//!   (from `INFO server`'s `redis_version`) is at least the one that introduced the type.
//!   The footer carries `min(source, target)` RDB version, which is all `RESTORE` checks.
//!   When the target's version is unknown (INFO refused), the source's is assumed.
//! * **Type commands** otherwise (an older target that does not know a listpack encoding,
//!   a value over the 512 MB bulk limit, or [`RedisRestoreOptions::force_commands`]): the
//!   value is decoded and rebuilt on a temporary key (`<key>\0coffer-restore`) with
//!   `RPUSH`/`SADD`/`ZADD`/`HSET` in batches, `HPEXPIREAT` for field TTLs, streams with
//!   `XADD` (explicit ids), `XSETID … ENTRIESADDED … MAXDELETEDID`, `XGROUP CREATE …
//!   ENTRIESREAD`, `XGROUP CREATECONSUMER` and `XCLAIM … FORCE JUSTID` for the pending
//!   entries; then `PEXPIREAT`, then `RENAME` (with replace) or `RENAMENX` onto the real
//!   name, so the key appears whole. Pending entries whose stream entry was deleted cannot
//!   be recreated with commands (Redis drops them); LRU/LFU hints are lost on this path.
//!
//! Without `replace`, keys that already exist are left alone and reported (`BUSYKEY`, or
//! `RENAMENX` answering 0). Keys whose expiry has passed are skipped.
//!
//! Memory: one key's value (a big value is reassembled from its frames, because `RESTORE`
//! needs it whole), plus at most `window_bytes` of commands in flight: replies are read
//! by a second thread as they come, and the writer waits when `window_commands` or
//! `window_bytes` are outstanding.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use coffer_format::MappedArchive;
use crossbeam_channel::{Receiver, Sender};
use redis_protocol::resp2::types::OwnedFrame;

use super::archive::{DbMap, RedisArchive, glob_match};
use super::conn::{self, Conn, encode_parts, encoded_len, error_code};
use super::crc64::Crc64;
use super::rdb::{Stream, Value, decode_value, types as t};
use super::record::ArchivedKey;
use super::replica::ReplicaOptions;
use crate::{Error, ErrorKind, Result};

/// How to restore.
#[derive(Clone, Debug)]
pub struct RedisRestoreOptions {
    /// The target server.
    pub target: ReplicaOptions,
    /// Replace keys (and function libraries) that exist.
    pub replace: bool,
    /// `FLUSHALL` (and `FUNCTION FLUSH`) first. The caller must have asked for confirmation.
    pub flush: bool,
    /// Where each database goes.
    pub db_map: DbMap,
    /// Only keys matching this glob (Redis' `KEYS` syntax).
    pub pattern: Option<Vec<u8>>,
    /// Never use `RESTORE`: rebuild every value with type commands.
    pub force_commands: bool,
    /// Most commands awaiting replies.
    pub window_commands: usize,
    /// Most command bytes awaiting replies (one bigger command is still sent alone).
    pub window_bytes: usize,
    /// Most elements per `RPUSH`/`SADD`/`ZADD`/`HSET`.
    pub batch_elements: usize,
    /// Most bytes per batched command (approximate).
    pub batch_bytes: usize,
    /// Key errors kept verbatim in the summary (all are counted).
    pub max_reported: usize,
}

impl Default for RedisRestoreOptions {
    fn default() -> Self {
        RedisRestoreOptions {
            target: ReplicaOptions::default(),
            replace: false,
            flush: false,
            db_map: DbMap::Same,
            pattern: None,
            force_commands: false,
            window_commands: 1000,
            window_bytes: 16 << 20,
            batch_elements: 512,
            batch_bytes: 1 << 20,
            max_reported: 20,
        }
    }
}

/// Progress, reported every few keys and at the end.
#[derive(Clone, Copy, Debug, Default)]
pub struct RestoreProgress {
    /// Keys sent so far.
    pub keys: u64,
    /// Keys in the archive (from the manifest).
    pub total_keys: u64,
    /// Value bytes sent so far.
    pub bytes: u64,
}

/// What a restore did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RedisRestoreSummary {
    /// The target's `redis_version`, when INFO was allowed.
    pub target_version: Option<String>,
    /// The target's RDB version (from its version), when known.
    pub target_rdb_version: Option<u32>,
    /// The archive's RDB version.
    pub source_rdb_version: u32,
    /// Keys restored.
    pub keys: u64,
    /// Keys sent as `RESTORE`.
    pub via_restore: u64,
    /// Keys rebuilt with type commands.
    pub via_commands: u64,
    /// Keys not matching the pattern.
    pub skipped_pattern: u64,
    /// Keys in databases the `--db` map leaves out.
    pub skipped_db: u64,
    /// Keys whose expiry had passed.
    pub skipped_expired: u64,
    /// Function libraries loaded.
    pub functions: u64,
    /// Keys (and libraries) that existed and were left alone.
    pub existing: u64,
    /// The first few of them, as `db<N> "name"`.
    pub existing_sample: Vec<String>,
    /// Keys that failed.
    pub failed: u64,
    /// The first few failures, each naming its key.
    pub errors: Vec<String>,
    /// Value bytes sent.
    pub bytes: u64,
}

impl RedisRestoreSummary {
    /// Whether every key was restored.
    pub fn complete(&self) -> bool {
        self.existing == 0 && self.failed == 0
    }
}

/// The RDB version that introduced a value type; `None`: no release loads it
/// (the Redis 7.4 release-candidate hash encodings).
pub fn type_min_rdb(type_byte: u8) -> Option<u32> {
    Some(match type_byte {
        t::STRING..=t::HASH => 1,
        t::HASH_ZIPMAP..=t::HASH_ZIPLIST => 1,
        t::ZSET_2 | t::MODULE_2 => 8,
        t::LIST_QUICKLIST => 7,
        t::STREAM_LISTPACKS => 9,
        t::HASH_LISTPACK..=t::STREAM_LISTPACKS_2 => 10,
        t::SET_LISTPACK | t::STREAM_LISTPACKS_3 => 11,
        t::HASH_METADATA | t::HASH_LISTPACK_EX => 12,
        _ => return None,
    })
}

/// The DUMP payload's footer for `type_byte ‖ value`: the RDB version and the CRC-64 of
/// everything before the CRC.
pub fn dump_footer(type_byte: u8, value: &[u8], version: u16) -> [u8; 10] {
    let mut crc = Crc64::new();
    crc.update(&[type_byte]);
    crc.update(value);
    crc.update(&version.to_le_bytes());
    let mut f = [0u8; 10];
    f[..2].copy_from_slice(&version.to_le_bytes());
    f[2..].copy_from_slice(&crc.value().to_le_bytes());
    f
}

/// Largest RESTORE payload sent (Redis' `proto-max-bulk-len` is 512 MB; bigger values go
/// as commands).
const MAX_PAYLOAD: usize = (512 << 20) - (1 << 10);

/// Pieces at least this big bypass the output buffer.
const DIRECT_WRITE: usize = 256 << 10;

/// Suffix of the temporary key a value is rebuilt on.
const TMP_SUFFIX: &[u8] = b"\0coffer-restore";

/// A key, as commands and replies refer to it.
struct KeyRef {
    seq: u64,
    db: u32,
    name: Vec<u8>,
}

fn show_key(db: u32, name: &[u8]) -> String {
    format!("db{db} {:?}", String::from_utf8_lossy(name))
}

/// What a reply should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// SELECT and the like: an error ends the restore.
    Fatal,
    /// A RESTORE: BUSYKEY means the key exists.
    Restore,
    /// One step of rebuilding a key: an error fails the key.
    Step,
    /// The final RENAMENX: 0 means the key exists.
    RenameNx,
}

struct Pending {
    bytes: usize,
    expect: Expect,
    key: Option<Arc<KeyRef>>,
}

#[derive(Default)]
struct WinState {
    cmds: usize,
    bytes: usize,
    closed: bool,
}

/// Bounds the commands and bytes awaiting replies.
struct Window {
    state: Mutex<WinState>,
    cv: Condvar,
    max_cmds: usize,
    max_bytes: usize,
}

impl Window {
    fn fits(&self, s: &WinState, n: usize) -> bool {
        s.cmds == 0 || (s.cmds < self.max_cmds && s.bytes + n <= self.max_bytes)
    }

    fn try_acquire(&self, n: usize) -> bool {
        let mut s = self.state.lock().expect("window lock");
        if !s.closed && self.fits(&s, n) {
            s.cmds += 1;
            s.bytes += n;
            true
        } else {
            false
        }
    }

    /// Waits for room; `false` if the reader is gone.
    fn acquire(&self, n: usize) -> bool {
        let mut s = self.state.lock().expect("window lock");
        while !s.closed && !self.fits(&s, n) {
            s = self.cv.wait(s).expect("window lock");
        }
        if s.closed {
            return false;
        }
        s.cmds += 1;
        s.bytes += n;
        true
    }

    fn release(&self, n: usize) {
        let mut s = self.state.lock().expect("window lock");
        s.cmds -= 1;
        s.bytes -= n;
        self.cv.notify_all();
    }

    fn close(&self) {
        self.state.lock().expect("window lock").closed = true;
        self.cv.notify_all();
    }
}

/// What the reply reader found.
#[derive(Default)]
struct Tally {
    existing: u64,
    existing_sample: Vec<String>,
    failed: u64,
    errors: Vec<String>,
    last_failed: Option<u64>,
    max_reported: usize,
}

impl Tally {
    fn exists(&mut self, db: u32, name: &[u8]) {
        self.existing += 1;
        if self.existing_sample.len() < self.max_reported {
            self.existing_sample.push(show_key(db, name));
        }
    }

    fn fail(&mut self, k: &KeyRef, msg: &str) {
        if self.last_failed == Some(k.seq) {
            return;
        }
        self.last_failed = Some(k.seq);
        self.failed += 1;
        if self.errors.len() < self.max_reported {
            self.errors
                .push(format!("{}: {msg}", show_key(k.db, &k.name)));
        }
    }
}

fn read_replies(
    mut rd: Conn,
    rx: Receiver<Pending>,
    win: &Window,
    tally: &Mutex<Tally>,
) -> Result<()> {
    for p in rx.iter() {
        let reply = match rd.read_reply() {
            Ok(r) => r,
            Err(e) => {
                win.close();
                return Err(e);
            }
        };
        win.release(p.bytes);
        let mut t = tally.lock().expect("tally lock");
        match (p.expect, reply, p.key.as_deref()) {
            (Expect::Fatal, OwnedFrame::Error(e), _) => {
                win.close();
                return Err(Error::new(ErrorKind::Server, format!("redis refused: {e}")));
            }
            (Expect::Restore, OwnedFrame::Error(e), Some(k)) if error_code(&e) == "BUSYKEY" => {
                t.exists(k.db, &k.name)
            }
            (Expect::RenameNx, OwnedFrame::Integer(0), Some(k)) => t.exists(k.db, &k.name),
            (_, OwnedFrame::Error(e), Some(k)) => t.fail(k, &e),
            _ => {}
        }
    }
    Ok(())
}

/// The writing half of the pipeline.
struct Pipe<'w> {
    conn: Conn,
    out: Vec<u8>,
    tx: Option<Sender<Pending>>,
    win: &'w Window,
}

impl Pipe<'_> {
    fn closed() -> Error {
        Error::new(ErrorKind::Protocol, "the connection to redis broke off")
    }

    fn flush(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            let out = std::mem::take(&mut self.out);
            self.conn.write_all(&out)?;
            self.out = out;
            self.out.clear();
        }
        Ok(())
    }

    fn send(&mut self, args: &[&[&[u8]]], expect: Expect, key: Option<&Arc<KeyRef>>) -> Result<()> {
        let len = encoded_len(args);
        if !self.win.try_acquire(len) {
            self.flush()?;
            if !self.win.acquire(len) {
                return Err(Self::closed());
            }
        }
        self.tx
            .as_ref()
            .expect("open until finish")
            .send(Pending {
                bytes: len,
                expect,
                key: key.cloned(),
            })
            .map_err(|_| Self::closed())?;
        let big = args
            .iter()
            .flat_map(|a| a.iter())
            .any(|p| p.len() >= DIRECT_WRITE);
        if !big {
            encode_parts(&mut self.out, args);
        } else {
            // Header bytes through the buffer, big parts straight to the socket.
            self.out.push(b'*');
            self.out
                .extend_from_slice(args.len().to_string().as_bytes());
            self.out.extend_from_slice(b"\r\n");
            for a in args {
                let n: usize = a.iter().map(|p| p.len()).sum();
                self.out.push(b'$');
                self.out.extend_from_slice(n.to_string().as_bytes());
                self.out.extend_from_slice(b"\r\n");
                for p in *a {
                    if p.len() >= DIRECT_WRITE {
                        self.flush()?;
                        self.conn.write_all(p)?;
                    } else {
                        self.out.extend_from_slice(p);
                    }
                }
                self.out.extend_from_slice(b"\r\n");
            }
        }
        if self.out.len() >= DIRECT_WRITE {
            self.flush()?;
        }
        Ok(())
    }

    fn cmd(&mut self, args: &[&[u8]], expect: Expect, key: Option<&Arc<KeyRef>>) -> Result<()> {
        let parts: Vec<[&[u8]; 1]> = args.iter().map(|a| [*a]).collect();
        let refs: Vec<&[&[u8]]> = parts.iter().map(|p| &p[..]).collect();
        self.send(&refs, expect, key)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Restores `archive` into the server of `opts.target`. Per-key problems (keys that
/// exist, values the server refuses) are counted in the summary, not returned as errors;
/// an error means the restore could not go on (connection, authentication, a refused
/// `SELECT`, a damaged archive).
pub fn restore(
    archive: &MappedArchive,
    opts: &RedisRestoreOptions,
    progress: &dyn Fn(RestoreProgress),
) -> Result<RedisRestoreSummary> {
    let ra = RedisArchive::new(archive)?;
    let mut conn = Conn::connect(&opts.target)?;
    let target_version = conn.server_version()?;
    let target_rdb = target_version.as_deref().and_then(conn::rdb_version_for);
    let target_mm = target_version.as_deref().and_then(conn::major_minor);
    let mut summary = RedisRestoreSummary {
        target_version: target_version.clone(),
        target_rdb_version: target_rdb,
        source_rdb_version: ra.rdb_version,
        ..RedisRestoreSummary::default()
    };
    let mut tally = Tally {
        max_reported: opts.max_reported,
        ..Tally::default()
    };

    if opts.flush {
        match conn.command(&[b"FLUSHALL"])? {
            OwnedFrame::Error(e) => {
                return Err(Error::new(
                    ErrorKind::Permission,
                    format!("FLUSHALL refused: {e}"),
                ));
            }
            _ => {
                if target_mm.is_none_or(|v| v >= (7, 0)) {
                    let _ = conn.command(&[b"FUNCTION", b"FLUSH"])?;
                }
            }
        }
    }

    for code in ra.functions()? {
        let mut args: Vec<&[u8]> = vec![b"FUNCTION", b"LOAD"];
        if opts.replace {
            args.push(b"REPLACE");
        }
        args.push(&code);
        if let OwnedFrame::Error(e) = conn.command(&args)? {
            let name = library_name(&code);
            if e.contains("already exists") {
                tally.existing += 1;
                if tally.existing_sample.len() < opts.max_reported {
                    tally
                        .existing_sample
                        .push(format!("function library {name:?}"));
                }
            } else {
                tally.failed += 1;
                if tally.errors.len() < opts.max_reported {
                    tally.errors.push(format!("function library {name:?}: {e}"));
                }
            }
        } else {
            summary.functions += 1;
        }
    }

    let dbs = ra.databases()?;
    let total_keys: u64 = dbs.iter().map(|d| d.keys).sum();
    let win = Window {
        state: Mutex::new(WinState::default()),
        cv: Condvar::new(),
        max_cmds: opts.window_commands.max(1),
        max_bytes: opts.window_bytes.max(1),
    };
    let tally = Mutex::new(tally);
    let (tx, rx) = crossbeam_channel::unbounded::<Pending>();
    let reader_conn = conn.try_clone()?;
    let sent_keys = AtomicU64::new(0);
    let now = now_ms();

    let (write_result, read_result) = std::thread::scope(|s| {
        let reader = s.spawn(|| read_replies(reader_conn, rx, &win, &tally));
        let mut pipe = Pipe {
            conn,
            out: Vec::with_capacity(DIRECT_WRITE * 2),
            tx: Some(tx),
            win: &win,
        };
        let mut w = Writer {
            opts,
            ra: &ra,
            pipe: &mut pipe,
            target_rdb: target_rdb.unwrap_or(ra.rdb_version),
            target_mm: target_mm.unwrap_or((99, 0)),
            summary: &mut summary,
            tally: &tally,
            seq: 0,
            now,
            current_db: None,
            sent: &sent_keys,
            total_keys,
            progress,
        };
        let mut r = w.run(&dbs);
        if r.is_ok() {
            r = pipe.flush();
        }
        pipe.tx = None;
        if r.is_err() {
            pipe.conn.shutdown();
        }
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(Error::new(ErrorKind::Protocol, "the reply reader panicked")));
        (r, read)
    });
    // A broken connection shows on both sides; the reading side has the server's words.
    // Anything else the writer met (a damaged archive, say) is the real cause.
    match (write_result, read_result) {
        (Ok(()), r) => r?,
        (Err(w), Ok(())) => return Err(w),
        (Err(w), Err(r)) => {
            return Err(if w.kind() == ErrorKind::Protocol {
                r
            } else {
                w
            });
        }
    }
    let t = tally.into_inner().expect("tally lock");
    summary.existing = t.existing;
    summary.existing_sample = t.existing_sample;
    summary.failed = t.failed;
    summary.errors = t.errors;
    let sent = summary.via_restore + summary.via_commands;
    summary.keys = sent.saturating_sub(t.existing + t.failed);
    progress(RestoreProgress {
        keys: sent,
        total_keys,
        bytes: summary.bytes,
    });
    Ok(summary)
}

/// `#!lua name=<lib>` → `lib`.
fn library_name(code: &[u8]) -> String {
    let first = code.split(|&b| b == b'\n').next().unwrap_or(b"");
    let text = String::from_utf8_lossy(first);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("name="))
        .unwrap_or("?")
        .to_string()
}

struct Writer<'a, 'p, 'w> {
    opts: &'a RedisRestoreOptions,
    ra: &'a RedisArchive<'a>,
    pipe: &'p mut Pipe<'w>,
    target_rdb: u32,
    target_mm: (u32, u32),
    summary: &'a mut RedisRestoreSummary,
    tally: &'a Mutex<Tally>,
    seq: u64,
    now: i64,
    current_db: Option<u32>,
    sent: &'a AtomicU64,
    total_keys: u64,
    progress: &'a dyn Fn(RestoreProgress),
}

impl Writer<'_, '_, '_> {
    fn run(&mut self, dbs: &[super::archive::DbStream<'_>]) -> Result<()> {
        for d in dbs {
            let Some(target_db) = self.opts.db_map.target(d.db) else {
                self.summary.skipped_db += d.keys;
                continue;
            };
            let ra = self.ra;
            ra.keys(d, &mut |k| self.key(target_db, k))?;
        }
        Ok(())
    }

    fn key(&mut self, db: u32, k: ArchivedKey) -> Result<()> {
        if let Some(p) = &self.opts.pattern {
            if !glob_match(p, &k.key) {
                self.summary.skipped_pattern += 1;
                return Ok(());
            }
        }
        if k.meta.expire_ms.is_some_and(|e| e <= self.now) {
            self.summary.skipped_expired += 1;
            return Ok(());
        }
        if self.current_db != Some(db) {
            self.pipe
                .cmd(&[b"SELECT", db.to_string().as_bytes()], Expect::Fatal, None)?;
            self.current_db = Some(db);
        }
        self.seq += 1;
        let kr = Arc::new(KeyRef {
            seq: self.seq,
            db,
            name: k.key.clone(),
        });
        let restorable = type_min_rdb(k.type_byte).is_some_and(|m| m <= self.target_rdb)
            && k.value.len() < MAX_PAYLOAD;
        if k.type_byte == t::MODULE_2 || (restorable && !self.opts.force_commands) {
            self.restore_cmd(&k, &kr)?;
            self.summary.via_restore += 1;
        } else {
            self.summary.via_commands += 1;
            match decode_value(k.type_byte, &k.value, self.ra.rdb_version) {
                Ok(v) => self.rebuild(&k, v, &kr)?,
                Err(e) => self
                    .tally
                    .lock()
                    .expect("tally lock")
                    .fail(&kr, &e.to_string()),
            }
        }
        self.summary.bytes += k.value.len() as u64;
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        if n % 256 == 0 {
            (self.progress)(RestoreProgress {
                keys: n,
                total_keys: self.total_keys,
                bytes: self.summary.bytes,
            });
        }
        Ok(())
    }

    fn restore_cmd(&mut self, k: &ArchivedKey, kr: &Arc<KeyRef>) -> Result<()> {
        let version = self.ra.rdb_version.min(self.target_rdb) as u16;
        let footer = dump_footer(k.type_byte, &k.value, version);
        let ttl = k.meta.expire_ms.unwrap_or(0).to_string();
        let type_byte = [k.type_byte];
        let key_part = [k.key.as_slice()];
        let mut args: Vec<&[&[u8]]> = vec![&[b"RESTORE"], &key_part];
        let ttl_part = [ttl.as_bytes()];
        args.push(&ttl_part);
        let payload = [&type_byte[..], &k.value[..], &footer[..]];
        args.push(&payload);
        if k.meta.expire_ms.is_some() {
            args.push(&[b"ABSTTL"]);
        }
        if self.opts.replace {
            args.push(&[b"REPLACE"]);
        }
        let idle = k.meta.idle_s.map(|i| i.to_string());
        let freq = k.meta.freq.map(|f| f.to_string());
        let idle_part;
        let freq_part;
        if let Some(i) = &idle {
            args.push(&[b"IDLETIME"]);
            idle_part = [i.as_bytes()];
            args.push(&idle_part);
        } else if let Some(f) = &freq {
            args.push(&[b"FREQ"]);
            freq_part = [f.as_bytes()];
            args.push(&freq_part);
        }
        self.pipe.send(&args, Expect::Restore, Some(kr))
    }

    /// Rebuilds a value with type commands on a temporary key, then renames it.
    fn rebuild(&mut self, k: &ArchivedKey, v: Value, kr: &Arc<KeyRef>) -> Result<()> {
        let mut tmp = k.key.clone();
        tmp.extend_from_slice(TMP_SUFFIX);
        let step = Expect::Step;
        self.pipe.cmd(&[b"DEL", &tmp], step, Some(kr))?;
        match v {
            Value::String(s) => self.pipe.cmd(&[b"SET", &tmp, &s], step, Some(kr))?,
            Value::List(items) => {
                let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
                self.batched(b"RPUSH", &tmp, &refs, 1, kr)?;
            }
            Value::Set(members) => {
                let refs: Vec<&[u8]> = members.iter().map(Vec::as_slice).collect();
                self.batched(b"SADD", &tmp, &refs, 1, kr)?;
            }
            Value::ZSet(items) => {
                let scores: Vec<String> = items.iter().map(|(_, s)| score_text(*s)).collect();
                let mut refs: Vec<&[u8]> = Vec::with_capacity(items.len() * 2);
                for ((m, _), s) in items.iter().zip(&scores) {
                    refs.push(s.as_bytes());
                    refs.push(m);
                }
                self.batched(b"ZADD", &tmp, &refs, 2, kr)?;
            }
            Value::Hash(fields) => {
                let mut refs: Vec<&[u8]> = Vec::with_capacity(fields.len() * 2);
                for f in &fields {
                    refs.push(&f.field);
                    refs.push(&f.value);
                }
                self.batched(b"HSET", &tmp, &refs, 2, kr)?;
                for f in fields.iter() {
                    if let Some(ms) = f.expire_ms {
                        let ms = ms.to_string();
                        self.pipe.cmd(
                            &[
                                b"HPEXPIREAT",
                                &tmp,
                                ms.as_bytes(),
                                b"FIELDS",
                                b"1",
                                &f.field,
                            ],
                            step,
                            Some(kr),
                        )?;
                    }
                }
            }
            Value::Stream(s) => self.stream(&tmp, &s, kr)?,
            Value::Module { .. } => unreachable!("modules always go through RESTORE"),
        }
        if let Some(ms) = k.meta.expire_ms {
            let ms = ms.to_string();
            self.pipe
                .cmd(&[b"PEXPIREAT", &tmp, ms.as_bytes()], step, Some(kr))?;
        }
        if self.opts.replace {
            self.pipe.cmd(&[b"RENAME", &tmp, &k.key], step, Some(kr))?;
        } else {
            self.pipe
                .cmd(&[b"RENAMENX", &tmp, &k.key], Expect::RenameNx, Some(kr))?;
            self.pipe.cmd(&[b"DEL", &tmp], step, Some(kr))?;
        }
        Ok(())
    }

    /// `CMD tmp item…` in batches of whole groups of `group` items.
    fn batched(
        &mut self,
        cmd: &[u8],
        tmp: &[u8],
        items: &[&[u8]],
        group: usize,
        kr: &Arc<KeyRef>,
    ) -> Result<()> {
        let max_items = self.opts.batch_elements.max(1) * group;
        let mut at = 0;
        while at < items.len() {
            let mut end = at;
            let mut bytes = 0;
            while end < items.len() && end - at < max_items {
                let g: usize = items[end..end + group].iter().map(|i| i.len()).sum();
                if end > at && bytes + g > self.opts.batch_bytes {
                    break;
                }
                bytes += g;
                end += group;
            }
            let mut args: Vec<&[u8]> = Vec::with_capacity(2 + end - at);
            args.push(cmd);
            args.push(tmp);
            args.extend_from_slice(&items[at..end]);
            self.pipe.cmd(&args, Expect::Step, Some(kr))?;
            at = end;
        }
        Ok(())
    }

    fn stream(&mut self, tmp: &[u8], s: &Stream, kr: &Arc<KeyRef>) -> Result<()> {
        let step = Expect::Step;
        let v7 = self.target_mm >= (7, 0);
        for e in &s.entries {
            let id = e.id.to_string();
            let mut args: Vec<&[u8]> = vec![b"XADD", tmp, id.as_bytes()];
            for (f, v) in &e.fields {
                args.push(f);
                args.push(v);
            }
            self.pipe.cmd(&args, step, Some(kr))?;
        }
        let last = s.last_id.to_string();
        if s.entries.is_empty() {
            if s.last_id.ms > 0 || s.last_id.seq > 0 {
                self.pipe.cmd(
                    &[b"XADD", tmp, b"MAXLEN", b"0", last.as_bytes(), b"x", b"y"],
                    step,
                    Some(kr),
                )?;
            } else {
                let g: &[u8] = b"coffer-restore-tmp";
                self.pipe.cmd(
                    &[b"XGROUP", b"CREATE", tmp, g, b"0", b"MKSTREAM"],
                    step,
                    Some(kr),
                )?;
                self.pipe
                    .cmd(&[b"XGROUP", b"DESTROY", tmp, g], step, Some(kr))?;
            }
        }
        let added = s.entries_added.map(|n| n.to_string());
        let maxdel = s.max_deleted_id.map(|m| m.to_string());
        let mut args: Vec<&[u8]> = vec![b"XSETID", tmp, last.as_bytes()];
        if v7 {
            if let Some(a) = &added {
                args.push(b"ENTRIESADDED");
                args.push(a.as_bytes());
            }
            if let Some(m) = &maxdel {
                args.push(b"MAXDELETEDID");
                args.push(m.as_bytes());
            }
        }
        self.pipe.cmd(&args, step, Some(kr))?;
        for g in &s.groups {
            let gl = g.last_id.to_string();
            let read = g.entries_read.map(|n| {
                if n == u64::MAX {
                    "-1".to_string()
                } else {
                    n.to_string()
                }
            });
            let mut args: Vec<&[u8]> = vec![b"XGROUP", b"CREATE", tmp, &g.name, gl.as_bytes()];
            if v7 {
                if let Some(r) = &read {
                    args.push(b"ENTRIESREAD");
                    args.push(r.as_bytes());
                }
            }
            self.pipe.cmd(&args, step, Some(kr))?;
            for c in &g.consumers {
                self.pipe.cmd(
                    &[b"XGROUP", b"CREATECONSUMER", tmp, &g.name, &c.name],
                    step,
                    Some(kr),
                )?;
            }
            for p in &g.pel {
                let Some(owner) = g.consumers.iter().find(|c| c.pending.contains(&p.id)) else {
                    continue;
                };
                let id = p.id.to_string();
                let time = p.delivery_time_ms.to_string();
                let count = p.delivery_count.to_string();
                self.pipe.cmd(
                    &[
                        b"XCLAIM",
                        tmp,
                        &g.name,
                        &owner.name,
                        b"0",
                        id.as_bytes(),
                        b"TIME",
                        time.as_bytes(),
                        b"RETRYCOUNT",
                        count.as_bytes(),
                        b"FORCE",
                        b"JUSTID",
                    ],
                    step,
                    Some(kr),
                )?;
            }
        }
        Ok(())
    }
}

/// A score as ZADD reads it back exactly: `inf`, `-inf`, or the shortest decimal that
/// round-trips.
pub fn score_text(s: f64) -> String {
    if s == f64::INFINITY {
        "inf".into()
    } else if s == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        format!("{s:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footers_and_scores() {
        // DUMP of SET k "hello" on 7.0: 00 05 hello 0a 00 <crc>.
        let f = dump_footer(0, b"\x05hello", 10);
        assert_eq!(&f[..2], &[10, 0]);
        let mut all = vec![0u8, 5];
        all.extend_from_slice(b"hello");
        all.extend_from_slice(&[10, 0]);
        assert_eq!(
            u64::from_le_bytes(f[2..].try_into().unwrap()),
            super::super::crc64::crc64(&all)
        );
        assert_eq!(score_text(f64::INFINITY), "inf");
        assert_eq!(score_text(-2.5), "-2.5");
        assert_eq!(score_text(1e300).parse::<f64>().unwrap(), 1e300);
        assert_eq!(type_min_rdb(t::SET_LISTPACK), Some(11));
        assert_eq!(type_min_rdb(t::HASH_METADATA_PRE_GA), None);
        assert_eq!(library_name(b"#!lua name=mylib\nreturn"), "mylib");
    }
}
