//! Restoring a Redis archive into a live server (Redis, or Valkey).
//!
//! The target is known by `INFO server` (`valkey_version` on Valkey), else by `HELLO`;
//! without either it is taken for a server like the source ([`TargetCaps`]). When it has
//! no hash field TTLs (Redis before 7.4, Valkey before 9) and the keys to restore have
//! some, the restore stops before writing anything, naming them, unless
//! [`RedisRestoreOptions::drop_field_ttl`]. Function libraries go first (`FUNCTION LOAD
//! [REPLACE]`). Then every key, streamed out of the archive one at a time, goes over one
//! pipelined connection:
//!
//! * **`RESTORE key ttl payload ABSTTL [REPLACE] [IDLETIME s | FREQ f]`** with the DUMP
//!   payload rebuilt from the archived raw value bytes (`type ‖ value ‖ u16 LE RDB
//!   version ‖ CRC-64 LE`), when the target can load the key's type ([`payload_version`]:
//!   its RDB version is at least the one that introduced the type, Valkey reading Redis'
//!   up to 11 and its own 80). The footer carries the older of the source's and the
//!   target's RDB versions, which is all `RESTORE` checks.
//!   LZF-compressed strings in a value that is one string or blob (a string, listpack,
//!   ziplist, intset) or a quicklist of them are sent expanded (up to 1 MiB): the server's
//!   one thread is what a restore waits for, and decompressing was a sixth of its work.
//!   A `RESTORE` the target refuses (payload version, bad data format) teaches: the next
//!   keys go at a lower payload version, or their type by commands; and once the pass is
//!   over, the refused keys are rebuilt with commands in a second one.
//! * **Type commands** otherwise (an older target that does not know a listpack encoding,
//!   the other family's field-TTL hashes, a value over the 512 MB bulk limit, or
//!   [`RedisRestoreOptions::force_commands`]): the
//!   value is decoded and rebuilt on a temporary key (`<key>\0coffer-restore`) with
//!   `RPUSH`/`SADD`/`ZADD`/`HSET` in batches, `HPEXPIREAT` for field TTLs (one per expiry
//!   time; fields already expired left out, TTLs dropped and counted on a target without
//!   them with `drop_field_ttl`), streams with
//!   `XADD` (explicit ids), `XSETID … ENTRIESADDED … MAXDELETEDID`, `XGROUP CREATE …
//!   ENTRIESREAD`, `XGROUP CREATECONSUMER` and `XCLAIM … FORCE JUSTID` for the pending
//!   entries; then `PEXPIREAT`, then `RENAME` (with replace) or `RENAMENX` onto the real
//!   name, so the key appears whole. Pending entries whose stream entry was deleted cannot
//!   be recreated with commands (Redis drops them); LRU/LFU hints are lost on this path.
//!
//! Without `replace`, keys that already exist are left alone and reported (`BUSYKEY`, or
//! `RENAMENX` answering 0). Keys whose expiry has passed are skipped.
//!
//! Memory does not grow with a key's size. A value within one frame is sent from that
//! frame. A value spread over frames is streamed: its frames are read ahead to learn its
//! length (the first 32 MiB of them kept, the rest read again), then the
//! `RESTORE` bulk header is written and the pieces follow straight from the frames, one
//! frame at a time, with the DUMP footer's CRC-64 computed on the way. On the command
//! path a big string is `APPEND`ed in chunks as it is decoded (LZF included), and a big
//! list, set, sorted set or hash (hashtable, skiplist or quicklist encodings) goes in
//! batches of elements as they are decoded; only the other encodings (streams, hashes
//! with field TTLs, single listpacks) are decoded whole on that path. On top
//! of that, at most `window_bytes` of commands are in flight: replies are read by a
//! second thread as they come, and the writer waits when `window_commands` or
//! `window_bytes` are outstanding. (The archive itself is memory-mapped: the pages read
//! count in the process's resident size until the kernel reclaims them.)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use coffer_format::{IndexEntry, MappedArchive};
use crossbeam_channel::{Receiver, Sender};
use redis_protocol::resp2::types::OwnedFrame;

use super::archive::{DbMap, RedisArchive, glob_match};
use super::conn::{self, Conn, encode_parts, encoded_len, error_code};
use super::crc64::Crc64;
pub use super::elements::score_text;
use super::elements::{CollKind, CollStream, StringStream};
use super::lzf;
use super::rdb::primitives::{self, StringKind};
use super::rdb::{KeyMeta, Stream, Value, decode_value, types as t};
use super::record::{Record, broken, parse_frame};
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
    /// On a target without hash field TTLs (Redis before 7.4, Valkey before 9), restore
    /// the fields of hashes that have some without them (counted in the summary) instead
    /// of refusing to start.
    pub drop_field_ttl: bool,
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
            drop_field_ttl: false,
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
    /// The target's version (Valkey's own for Valkey), when INFO was allowed.
    pub target_version: Option<String>,
    /// `"redis"` or `"valkey"`, when INFO was allowed.
    pub target_server: Option<&'static str>,
    /// The target's RDB version (from its version), when known.
    pub target_rdb_version: Option<u32>,
    /// The archive's RDB version.
    pub source_rdb_version: u32,
    /// Keys restored.
    pub keys: u64,
    /// Keys sent as `RESTORE`.
    pub via_restore: u64,
    /// Keys rebuilt with type commands (those in `restore_refused` included).
    pub via_commands: u64,
    /// Keys whose `RESTORE` the target refused (a payload version or an encoding it does
    /// not know, say when INFO did not tell its version), rebuilt with commands instead.
    pub restore_refused: u64,
    /// Field TTLs left out (`drop_field_ttl`, on a target without them).
    pub field_ttls_dropped: u64,
    /// Keys whose field TTLs were left out.
    pub field_ttl_keys: u64,
    /// The first few of them, as `db<N> "name"`.
    pub field_ttl_sample: Vec<String>,
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

/// What the restore knows of the target server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetCaps {
    /// The RDB version it writes and reads (Redis: up to it; Valkey 9: 80, and Redis'
    /// up to 11).
    pub rdb: u32,
    /// Valkey, which refuses Redis' RDB 12–79.
    pub valkey: bool,
    /// The Redis version it behaves as, for its commands (Valkey: 7.2).
    pub redis_mm: (u32, u32),
    /// It keeps hash field TTLs.
    pub field_ttls: bool,
}

impl TargetCaps {
    /// From `INFO server`; without it (INFO refused), a server like the source is assumed
    /// (a wrong guess shows as refused `RESTORE`s, which are then done with commands).
    pub fn of(info: Option<&conn::ServerInfo>, source_rdb: u32) -> TargetCaps {
        let guess = TargetCaps {
            rdb: source_rdb,
            valkey: super::rdb::is_valkey(source_rdb),
            redis_mm: (99, 0),
            field_ttls: true,
        };
        match info {
            None => guess,
            Some(i) => TargetCaps {
                rdb: i.rdb_version().unwrap_or(guess.rdb),
                valkey: i.is_valkey(),
                redis_mm: i.redis_major_minor().unwrap_or(guess.redis_mm),
                field_ttls: i.has_field_ttls(),
            },
        }
    }
}

/// The RDB version the DUMP payload of a value of `type_byte` (from an RDB of
/// `source_rdb`) says, for `target` to `RESTORE` it; `None` when the target cannot load
/// that type. The value's bytes are the same in every RDB version that has its type: the
/// footer says the oldest of the source's and the newest the target reads. Valkey's
/// values of types up to 21 are Redis 7.2's (RDB 11); Valkey reads Redis' RDB up to 11
/// and its own 80, not Redis' 12–79.
pub fn payload_version(type_byte: u8, source_rdb: u32, target: &TargetCaps) -> Option<u32> {
    if super::rdb::is_valkey(source_rdb) && type_byte > t::STREAM_LISTPACKS_3 {
        // Valkey's own hash with field TTLs.
        let ok = type_byte == t::VALKEY_HASH_2 && target.valkey && target.rdb >= 80;
        return ok.then_some(80);
    }
    let need = type_min_rdb(type_byte)?;
    let source = if super::rdb::is_valkey(source_rdb) {
        11
    } else {
        source_rdb
    };
    let newest = if target.valkey {
        target.rdb.min(11)
    } else {
        target.rdb
    };
    let v = source.min(newest);
    (need <= v).then_some(v)
}

/// Whether a `RESTORE` error means the target cannot load the payload (too new a version,
/// an unknown type or encoding), rather than a problem with the key.
fn payload_refused(e: &str) -> bool {
    e.contains("payload version or checksum are wrong") || e.contains("Bad data format")
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

/// Frames of a big value read ahead to learn its length are kept for sending it while
/// they add up to at most this (the rest are read again).
const LOOKAHEAD_BYTES: usize = 32 << 20;

/// Frames read at once (in parallel) while looking for the end of a big value.
const LOOKAHEAD_BATCH: usize = 4;

/// The reply reader naps this long before each socket read. Replies pile up meanwhile,
/// and the server writes them to a socket no thread is sleeping on, which spares it a
/// wakeup per write: about a tenth of its time on a million small keys, where its one
/// thread is what the restore waits for.
const READER_NAP: std::time::Duration = std::time::Duration::from_micros(200);

/// Smallest `APPEND` of a big string rebuilt with commands.
const MIN_STRING_CHUNK: usize = 64 << 10;

/// Suffix of the temporary key a value is rebuilt on.
const TMP_SUFFIX: &[u8] = b"\0coffer-restore";

/// A key, as commands and replies refer to it.
#[derive(Clone, Copy)]
struct KeyRef<'n> {
    seq: u64,
    db: u32,
    type_byte: u8,
    name: &'n [u8],
}

/// The bit of a type byte in a set of types ([`Learnt::refused_types`]).
fn type_bit(type_byte: u8) -> u32 {
    1u32.checked_shl(u32::from(type_byte)).unwrap_or(0)
}

/// What the target's refusals taught, shared by the reply reader (which learns) and the
/// writer (which acts on it for the keys after).
struct Learnt {
    /// The newest payload version the target may read: lowered below each version it
    /// refused.
    version_cap: AtomicU32,
    /// Types it refused at their oldest version (or as bad data): sent as commands.
    refused_types: AtomicU32,
}

impl Learnt {
    fn refusal(&self, type_byte: u8, version: u16, e: &str) {
        let oldest = type_min_rdb(type_byte).unwrap_or(u32::MAX);
        let version = u32::from(version);
        if e.contains("payload version") && version > oldest && version < 80 {
            self.version_cap.fetch_min(version - 1, Ordering::SeqCst);
        } else {
            self.refused_types
                .fetch_or(type_bit(type_byte), Ordering::SeqCst);
        }
    }
}

fn show_key(db: u32, name: &[u8]) -> String {
    format!("db{db} {:?}", String::from_utf8_lossy(name))
}

/// What a reply should be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// SELECT and the like: an error ends the restore.
    Fatal,
    /// A RESTORE with a payload of this version: BUSYKEY means the key exists; a
    /// refused payload, that the key is to be rebuilt with commands.
    Restore(u16),
    /// A RESTORE of a module value, which only RESTORE can make.
    RestoreModule,
    /// One step of rebuilding a key: an error fails the key.
    Step,
    /// The final RENAMENX: 0 means the key exists.
    RenameNx,
}

/// A key as a pending reply refers to it: its name is in its batch's `names`.
#[derive(Clone, Copy)]
struct KeyTag {
    seq: u64,
    db: u32,
    type_byte: u8,
    at: usize,
    len: usize,
}

struct Pending {
    bytes: usize,
    expect: Expect,
    key: Option<KeyTag>,
}

/// The replies announced by one write to the socket.
#[derive(Default)]
struct Batch {
    pending: Vec<Pending>,
    names: Vec<u8>,
}

/// Bounds the commands and bytes awaiting replies. Only the writer adds and only the
/// reader takes away (in bulk, before it waits), so the counters are atomics and the
/// lock is only taken to sleep and to wake a sleeping writer.
struct Window {
    cmds: AtomicUsize,
    bytes: AtomicUsize,
    closed: AtomicBool,
    waiting: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
    max_cmds: usize,
    max_bytes: usize,
}

impl Window {
    fn new(max_cmds: usize, max_bytes: usize) -> Self {
        Window {
            cmds: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            lock: Mutex::new(()),
            cv: Condvar::new(),
            max_cmds: max_cmds.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    fn fits(&self, n: usize) -> bool {
        let c = self.cmds.load(Ordering::SeqCst);
        c == 0 || (c < self.max_cmds && self.bytes.load(Ordering::SeqCst) + n <= self.max_bytes)
    }

    fn add(&self, n: usize) {
        self.cmds.fetch_add(1, Ordering::SeqCst);
        self.bytes.fetch_add(n, Ordering::SeqCst);
    }

    fn try_acquire(&self, n: usize) -> bool {
        if !self.closed.load(Ordering::SeqCst) && self.fits(n) {
            self.add(n);
            true
        } else {
            false
        }
    }

    /// Waits for room; `false` if the reader is gone.
    fn acquire(&self, n: usize) -> bool {
        let mut g = self.lock.lock().expect("window lock");
        loop {
            if self.closed.load(Ordering::SeqCst) {
                self.waiting.store(false, Ordering::SeqCst);
                return false;
            }
            self.waiting.store(true, Ordering::SeqCst);
            if self.fits(n) {
                self.waiting.store(false, Ordering::SeqCst);
                self.add(n);
                return true;
            }
            g = self
                .cv
                .wait_timeout(g, std::time::Duration::from_millis(50))
                .expect("window lock")
                .0;
        }
    }

    fn release(&self, cmds: usize, bytes: usize) {
        if cmds == 0 {
            return;
        }
        self.bytes.fetch_sub(bytes, Ordering::SeqCst);
        self.cmds.fetch_sub(cmds, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) {
            let _g = self.lock.lock().expect("window lock");
            self.cv.notify_all();
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _g = self.lock.lock().expect("window lock");
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
    /// Keys whose RESTORE was refused, by database: rebuilt with commands after.
    refused: std::collections::HashMap<u32, std::collections::HashSet<Vec<u8>>>,
    refused_count: u64,
    /// Of `existing` and `failed`, the function libraries.
    libraries_existing: u64,
    libraries_failed: u64,
}

impl Tally {
    fn refused(&mut self, db: u32, name: &[u8]) {
        if self.refused.entry(db).or_default().insert(name.to_vec()) {
            self.refused_count += 1;
        }
    }

    fn exists(&mut self, db: u32, name: &[u8]) {
        self.existing += 1;
        if self.existing_sample.len() < self.max_reported {
            self.existing_sample.push(show_key(db, name));
        }
    }

    fn fail(&mut self, k: &KeyRef<'_>, msg: &str) {
        if self.last_failed == Some(k.seq) {
            return;
        }
        self.last_failed = Some(k.seq);
        self.failed += 1;
        if self.errors.len() < self.max_reported {
            self.errors
                .push(format!("{}: {msg}", show_key(k.db, k.name)));
        }
    }
}

fn read_replies(
    mut rd: Conn,
    rx: Receiver<Batch>,
    win: &Window,
    tally: &Mutex<Tally>,
    learnt: &Learnt,
) -> Result<()> {
    // Replies read but not yet given back to the window: given back in bulk whenever the
    // reader is about to wait.
    let (mut cmds, mut bytes) = (0usize, 0usize);
    let r = (|| {
        loop {
            let batch = match rx.try_recv() {
                Ok(b) => b,
                Err(_) => {
                    win.release(std::mem::take(&mut cmds), std::mem::take(&mut bytes));
                    match rx.recv() {
                        Ok(b) => b,
                        Err(_) => return Ok(()),
                    }
                }
            };
            for p in &batch.pending {
                let reply = rd.read_reply_or_ok(&mut || {
                    win.release(std::mem::take(&mut cmds), std::mem::take(&mut bytes));
                    std::thread::sleep(READER_NAP);
                })?;
                cmds += 1;
                bytes += p.bytes;
                let Some(reply) = reply else { continue };
                let key = p.key.map(|k| KeyRef {
                    seq: k.seq,
                    db: k.db,
                    type_byte: k.type_byte,
                    name: &batch.names[k.at..k.at + k.len],
                });
                match (p.expect, reply, key) {
                    (Expect::Fatal, OwnedFrame::Error(e), _) => {
                        return Err(Error::new(ErrorKind::Server, format!("redis refused: {e}")));
                    }
                    (Expect::Restore(_) | Expect::RestoreModule, OwnedFrame::Error(e), Some(k))
                        if error_code(&e) == "BUSYKEY" =>
                    {
                        tally.lock().expect("tally lock").exists(k.db, k.name)
                    }
                    (Expect::Restore(v), OwnedFrame::Error(e), Some(k)) if payload_refused(&e) => {
                        learnt.refusal(k.type_byte, v, &e);
                        tally.lock().expect("tally lock").refused(k.db, k.name)
                    }
                    (Expect::RenameNx, OwnedFrame::Integer(0), Some(k)) => {
                        tally.lock().expect("tally lock").exists(k.db, k.name)
                    }
                    (_, OwnedFrame::Error(e), Some(k)) => {
                        tally.lock().expect("tally lock").fail(&k, &e)
                    }
                    _ => {}
                }
            }
        }
    })();
    if r.is_err() {
        win.close();
    }
    r
}

/// The writing half of the pipeline.
struct Pipe<'w> {
    conn: Conn,
    out: Vec<u8>,
    /// The replies of the commands in `out`, handed to the reader when it is written.
    batch: Batch,
    tx: Option<Sender<Batch>>,
    win: &'w Window,
}

impl Pipe<'_> {
    fn closed() -> Error {
        Error::new(ErrorKind::Protocol, "the connection to redis broke off")
    }

    fn flush(&mut self) -> Result<()> {
        if !self.batch.pending.is_empty() {
            let b = std::mem::take(&mut self.batch);
            self.tx
                .as_ref()
                .expect("open until finish")
                .send(b)
                .map_err(|_| Self::closed())?;
        }
        if !self.out.is_empty() {
            let out = std::mem::take(&mut self.out);
            self.conn.write_all(&out)?;
            self.out = out;
            self.out.clear();
        }
        Ok(())
    }

    /// Waits for room for a command of `len` bytes and announces its reply.
    fn reserve(&mut self, len: usize, expect: Expect, key: Option<&KeyRef<'_>>) -> Result<()> {
        if !self.win.try_acquire(len) {
            self.flush()?;
            if !self.win.acquire(len) {
                return Err(Self::closed());
            }
        }
        let key = key.map(|k| {
            let at = self.batch.names.len();
            self.batch.names.extend_from_slice(k.name);
            KeyTag {
                seq: k.seq,
                db: k.db,
                type_byte: k.type_byte,
                at,
                len: k.name.len(),
            }
        });
        self.batch.pending.push(Pending {
            bytes: len,
            expect,
            key,
        });
        Ok(())
    }

    fn bulk_header(&mut self, n: usize) {
        self.out.push(b'$');
        self.out.extend_from_slice(n.to_string().as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Sends `head… payload tail…`, where the payload (`payload_len` bytes) is written by
    /// `body` piece by piece as it is produced: the command never exists whole in memory.
    fn send_streamed(
        &mut self,
        head: &[&[u8]],
        payload_len: usize,
        tail: &[&[u8]],
        expect: Expect,
        key: Option<&KeyRef<'_>>,
        body: &mut dyn FnMut(&mut Body<'_, '_>) -> Result<()>,
    ) -> Result<()> {
        let bulk = |n: usize| 5 + n.to_string().len() + n;
        let argc = head.len() + 1 + tail.len();
        let len = 3
            + argc.to_string().len()
            + head
                .iter()
                .chain(tail)
                .map(|a| bulk(a.len()))
                .sum::<usize>()
            + bulk(payload_len);
        self.reserve(len, expect, key)?;
        self.out.push(b'*');
        self.out.extend_from_slice(argc.to_string().as_bytes());
        self.out.extend_from_slice(b"\r\n");
        for a in head {
            self.bulk_header(a.len());
            self.out.extend_from_slice(a);
            self.out.extend_from_slice(b"\r\n");
        }
        self.bulk_header(payload_len);
        let mut b = Body {
            pipe: self,
            left: payload_len,
        };
        body(&mut b)?;
        if b.left != 0 {
            return Err(Error::new(
                ErrorKind::Corrupt,
                "a value's pieces add up to less than its announced length (damaged or changed archive?)",
            ));
        }
        self.out.extend_from_slice(b"\r\n");
        for a in tail {
            self.bulk_header(a.len());
            self.out.extend_from_slice(a);
            self.out.extend_from_slice(b"\r\n");
        }
        if self.out.len() >= DIRECT_WRITE {
            self.flush()?;
        }
        Ok(())
    }

    fn send(&mut self, args: &[&[&[u8]]], expect: Expect, key: Option<&KeyRef<'_>>) -> Result<()> {
        let len = encoded_len(args);
        self.reserve(len, expect, key)?;
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

    fn cmd(&mut self, args: &[&[u8]], expect: Expect, key: Option<&KeyRef<'_>>) -> Result<()> {
        let parts: Vec<[&[u8]; 1]> = args.iter().map(|a| [*a]).collect();
        let refs: Vec<&[&[u8]]> = parts.iter().map(|p| &p[..]).collect();
        self.send(&refs, expect, key)
    }
}

/// The payload of a command being streamed by [`Pipe::send_streamed`].
struct Body<'p, 'w> {
    pipe: &'p mut Pipe<'w>,
    /// Bytes still due.
    left: usize,
}

impl Body<'_, '_> {
    fn put(&mut self, b: &[u8]) -> Result<()> {
        if b.len() > self.left {
            return Err(Error::new(
                ErrorKind::Corrupt,
                "a value's pieces add up to more than its announced length (damaged or changed archive?)",
            ));
        }
        self.left -= b.len();
        if b.len() >= DIRECT_WRITE {
            self.pipe.flush()?;
            self.pipe.conn.write_all(b)
        } else {
            self.pipe.out.extend_from_slice(b);
            if self.pipe.out.len() >= DIRECT_WRITE {
                self.pipe.flush()?;
            }
            Ok(())
        }
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
    let info = conn.server_info()?;
    let target = TargetCaps::of(info.as_ref(), ra.rdb_version);
    let mut summary = RedisRestoreSummary {
        target_version: info.as_ref().map(|i| i.version().to_string()),
        target_server: info.as_ref().map(conn::ServerInfo::name),
        target_rdb_version: info.as_ref().and_then(conn::ServerInfo::rdb_version),
        source_rdb_version: ra.rdb_version,
        ..RedisRestoreSummary::default()
    };
    if !target.field_ttls && !opts.drop_field_ttl {
        refuse_field_ttls(&ra, opts, info.as_ref())?;
    }
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
                if target.redis_mm >= (7, 0) {
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
                tally.libraries_existing += 1;
                if tally.existing_sample.len() < opts.max_reported {
                    tally
                        .existing_sample
                        .push(format!("function library {name:?}"));
                }
            } else {
                tally.failed += 1;
                tally.libraries_failed += 1;
                if tally.errors.len() < opts.max_reported {
                    let why = match &info {
                        Some(i) if target.redis_mm < (7, 0) => {
                            format!("{i} has no functions (Redis 7.0 and later): {e}")
                        }
                        _ => e.to_string(),
                    };
                    tally
                        .errors
                        .push(format!("function library {name:?}: {why}"));
                }
            }
        } else {
            summary.functions += 1;
        }
    }

    let dbs = ra.databases()?;
    let total_keys: u64 = dbs.iter().map(|d| d.keys).sum();
    let sent_keys = AtomicU64::new(0);
    let learnt = Learnt {
        version_cap: AtomicU32::new(u32::MAX),
        refused_types: AtomicU32::new(0),
    };
    let mut p = Pass {
        opts,
        ra: &ra,
        target,
        only: None,
        summary: &mut summary,
        sent: &sent_keys,
        learnt: &learnt,
        total_keys,
        progress,
    };
    let mut tally = p.run(conn, &dbs, tally)?;
    if tally.refused_count > 0 {
        // The target refused these RESTOREs (the writer stopped sending their types as
        // RESTORE as soon as it heard): rebuild them with commands, on a new connection.
        let refused = std::mem::take(&mut tally.refused);
        let n = std::mem::take(&mut tally.refused_count);
        p.summary.via_restore -= n;
        p.summary.restore_refused = n;
        p.only = Some(&refused);
        tally = p.run(Conn::connect(&opts.target)?, &dbs, tally)?;
    }
    summary.existing = tally.existing;
    summary.existing_sample = tally.existing_sample;
    summary.failed = tally.failed;
    summary.errors = tally.errors;
    let sent = summary.via_restore + summary.via_commands;
    let not_restored =
        (tally.existing - tally.libraries_existing) + (tally.failed - tally.libraries_failed);
    summary.keys = sent.saturating_sub(not_restored);
    progress(RestoreProgress {
        keys: sent_keys.load(Ordering::Relaxed),
        total_keys,
        bytes: summary.bytes,
    });
    Ok(summary)
}

/// Keys to restore on a second pass, by target database.
type KeySet = std::collections::HashMap<u32, std::collections::HashSet<Vec<u8>>>;

/// One pass over the archive's keys through one pipelined connection.
struct Pass<'a> {
    opts: &'a RedisRestoreOptions,
    ra: &'a RedisArchive<'a>,
    target: TargetCaps,
    /// Only these keys, rebuilt with commands (the second pass, after refused RESTOREs).
    only: Option<&'a KeySet>,
    summary: &'a mut RedisRestoreSummary,
    sent: &'a AtomicU64,
    learnt: &'a Learnt,
    total_keys: u64,
    progress: &'a dyn Fn(RestoreProgress),
}

impl Pass<'_> {
    fn run(
        &mut self,
        conn: Conn,
        dbs: &[super::archive::DbStream<'_>],
        tally: Tally,
    ) -> Result<Tally> {
        let win = Window::new(self.opts.window_commands, self.opts.window_bytes);
        let tally = Mutex::new(tally);
        let (tx, rx) = crossbeam_channel::unbounded::<Batch>();
        let reader_conn = conn.try_clone()?;
        let learnt = self.learnt;
        let (write_result, read_result) = std::thread::scope(|s| {
            let reader = s.spawn(|| read_replies(reader_conn, rx, &win, &tally, learnt));
            let mut pipe = Pipe {
                conn,
                out: Vec::with_capacity(DIRECT_WRITE * 2),
                batch: Batch::default(),
                tx: Some(tx),
                win: &win,
            };
            let mut w = Writer {
                opts: self.opts,
                ra: self.ra,
                pipe: &mut pipe,
                target: self.target,
                force_commands: self.opts.force_commands || self.only.is_some(),
                only: self.only,
                learnt,
                summary: &mut *self.summary,
                tally: &tally,
                scratch: Vec::new(),
                seq: 0,
                now: now_ms(),
                current_db: None,
                sent: self.sent,
                total_keys: self.total_keys,
                progress: self.progress,
            };
            let mut r = w.run(dbs);
            if r.is_ok() {
                r = pipe.flush();
            }
            pipe.tx = None;
            if r.is_err() {
                pipe.conn.shutdown();
            }
            let read = reader.join().unwrap_or_else(|_| {
                Err(Error::new(ErrorKind::Protocol, "the reply reader panicked"))
            });
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
        Ok(tally.into_inner().expect("tally lock"))
    }
}

/// Most keys named in the error of [`refuse_field_ttls`].
const MAX_NAMED: usize = 20;

/// Fails, naming them, if keys to restore have hash field TTLs still to come (the target
/// cannot hold them). Reads the archive's databases once, decoding only hashes of the
/// types that carry field TTLs; skipped when the manifest counts none of those types.
fn refuse_field_ttls(
    ra: &RedisArchive<'_>,
    opts: &RedisRestoreOptions,
    info: Option<&conn::ServerInfo>,
) -> Result<()> {
    let version = ra.rdb_version;
    if !ra.may_have_field_ttls() {
        return Ok(());
    }
    let now = now_ms();
    let mut found: Vec<String> = Vec::new();
    let mut count = 0u64;
    for d in ra.databases()? {
        let Some(target_db) = opts.db_map.target(d.db) else {
            continue;
        };
        // The key being read, when it is one to look at: its name and value so far.
        let mut cur: Option<(Vec<u8>, u8, Vec<u8>)> = None;
        let mut check = |cur: &mut Option<(Vec<u8>, u8, Vec<u8>)>| -> Result<()> {
            if let Some((key, type_byte, value)) = cur.take() {
                let v = decode_value(type_byte, &value, version)
                    .map_err(|e| e.context(format!("key {}", show_key(target_db, &key))))?;
                let Value::Hash(fields) = v else {
                    return Ok(());
                };
                if fields.iter().any(|f| f.expire_ms.is_some_and(|e| e > now)) {
                    count += 1;
                    if found.len() < MAX_NAMED {
                        found.push(show_key(target_db, &key));
                    }
                }
            }
            Ok(())
        };
        ra.db_records(&d, &mut |r| match r {
            Record::Key {
                type_byte,
                meta,
                key,
                piece,
                more,
                ..
            } => {
                check(&mut cur)?;
                let wanted = super::rdb::has_field_ttls(type_byte, version)
                    && opts.pattern.as_deref().is_none_or(|p| glob_match(p, key))
                    && meta.expire_ms.is_none_or(|e| e > now);
                if wanted {
                    cur = Some((key.to_vec(), type_byte, piece.to_vec()));
                    if !more {
                        check(&mut cur)?;
                    }
                }
                Ok(())
            }
            Record::Value { piece, more } => {
                if let Some((_, _, v)) = cur.as_mut() {
                    v.extend_from_slice(piece);
                    if !more {
                        check(&mut cur)?;
                    }
                }
                Ok(())
            }
            _ => Err(broken("a non-key record in a database stream")),
        })?;
        check(&mut cur)?;
    }
    if count == 0 {
        return Ok(());
    }
    let who = info.map_or_else(|| "the target".to_string(), |i| i.to_string());
    let more = if count as usize > found.len() {
        ", …"
    } else {
        ""
    };
    Err(Error::new(
        ErrorKind::Unsupported,
        format!(
            "{who} cannot hold hash field TTLs (Redis 7.4 and later, Valkey 9 and later \
             can), and {count} hashes to restore have some: {}{more}; nothing was restored \
             (--drop-field-ttl restores their fields without TTLs)",
            found.join(", ")
        ),
    ))
}

/// `#!lua name=<lib>` → `lib`.
pub fn library_name(code: &[u8]) -> String {
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
    target: TargetCaps,
    /// Rebuild every value with commands (modules aside).
    force_commands: bool,
    /// Only these keys (see [`Pass::only`]).
    only: Option<&'a KeySet>,
    /// What the target's refused RESTOREs taught.
    learnt: &'a Learnt,
    summary: &'a mut RedisRestoreSummary,
    tally: &'a Mutex<Tally>,
    /// Where LZF strings are expanded.
    scratch: Vec<u8>,
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
            let entries = self.ra.frames(d);
            self.db_stream(target_db, entries)?;
        }
        Ok(())
    }

    /// Every key of one database's stream, frame by frame. A key within one frame is sent
    /// from that frame; a key whose value goes on in the next frames is streamed
    /// ([`Self::big_key`]), after which the walk resumes in the frame where it ended.
    fn db_stream(&mut self, db: u32, entries: &[IndexEntry]) -> Result<()> {
        let mut carry: Option<(usize, Vec<u8>, usize)> = None;
        let mut next = 0;
        loop {
            let (fi, frame, start) = match carry.take() {
                Some(c) => c,
                None if next < entries.len() => (next, self.ra.read_frame(&entries[next])?, 0),
                None => break,
            };
            next = fi + 1;
            let recs = parse_frame(&frame)?;
            let mut ri = start;
            while ri < recs.len() {
                let Record::Key {
                    type_byte,
                    meta,
                    key,
                    piece,
                    more,
                    ..
                } = &recs[ri]
                else {
                    return Err(broken(if matches!(recs[ri], Record::Value { .. }) {
                        "a VALUE record outside a key"
                    } else {
                        "a non-key record in a database stream"
                    }));
                };
                let head = Head {
                    type_byte: *type_byte,
                    meta,
                    key,
                };
                if !*more {
                    self.key(db, &head, piece)?;
                    ri += 1;
                    continue;
                }
                let span = Span {
                    entries,
                    fi,
                    recs: &recs,
                    ri,
                };
                let (efi, eri, last) = self.big_key(db, &head, &span)?;
                if efi == fi {
                    ri = eri + 1;
                } else {
                    carry = Some((efi, last, eri + 1));
                    break;
                }
            }
        }
        Ok(())
    }

    /// Counts a key that is filtered out, or selects its database and numbers it.
    fn admit<'k>(&mut self, db: u32, head: &Head<'k>) -> Result<Option<KeyRef<'k>>> {
        if let Some(only) = self.only {
            // The second pass: the others were done (or counted) by the first.
            if !only.get(&db).is_some_and(|keys| keys.contains(head.key)) {
                return Ok(None);
            }
        }
        if let Some(p) = &self.opts.pattern {
            if !glob_match(p, head.key) {
                self.summary.skipped_pattern += 1;
                return Ok(None);
            }
        }
        if head.meta.expire_ms.is_some_and(|e| e <= self.now) {
            self.summary.skipped_expired += 1;
            return Ok(None);
        }
        if self.current_db != Some(db) {
            self.pipe
                .cmd(&[b"SELECT", db.to_string().as_bytes()], Expect::Fatal, None)?;
            self.current_db = Some(db);
        }
        self.seq += 1;
        Ok(Some(KeyRef {
            seq: self.seq,
            db,
            type_byte: head.type_byte,
            name: head.key,
        }))
    }

    /// The payload version when a value of `type_byte` and `len` bytes goes as
    /// `RESTORE`; `None`: it is rebuilt with commands.
    fn restore_version(&self, type_byte: u8, len: u64) -> Option<u16> {
        let source = self.ra.rdb_version;
        let target = TargetCaps {
            rdb: self
                .target
                .rdb
                .min(self.learnt.version_cap.load(Ordering::Relaxed)),
            ..self.target
        };
        let v = if type_byte == t::MODULE_2 {
            // Only the module can make its values: RESTORE whatever the target.
            Some(payload_version(type_byte, source, &target).unwrap_or(source.min(target.rdb)))
        } else if self.force_commands
            || len >= MAX_PAYLOAD as u64
            || self.learnt.refused_types.load(Ordering::Relaxed) & type_bit(type_byte) != 0
        {
            None
        } else {
            payload_version(type_byte, source, &target)
        };
        v.and_then(|v| u16::try_from(v).ok())
    }

    fn restore_expect(type_byte: u8, version: u16) -> Expect {
        if type_byte == t::MODULE_2 {
            Expect::RestoreModule
        } else {
            Expect::Restore(version)
        }
    }

    fn sent_one(&mut self, len: u64) {
        self.summary.bytes += len;
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        if n % 256 == 0 {
            (self.progress)(RestoreProgress {
                keys: n,
                total_keys: self.total_keys,
                bytes: self.summary.bytes,
            });
        }
    }

    /// A key whose value is whole in one frame.
    fn key(&mut self, db: u32, head: &Head<'_>, value: &[u8]) -> Result<()> {
        let Some(kr) = self.admit(db, head)? else {
            return Ok(());
        };
        if let Some(version) = self.restore_version(head.type_byte, value.len() as u64) {
            self.restore_cmd(head, value, &kr, version)?;
            self.summary.via_restore += 1;
        } else {
            self.summary.via_commands += 1;
            self.decode_and_rebuild(head, value, &kr)?;
        }
        self.sent_one(value.len() as u64);
        Ok(())
    }

    fn decode_and_rebuild(&mut self, head: &Head<'_>, value: &[u8], kr: &KeyRef<'_>) -> Result<()> {
        match decode_value(head.type_byte, value, self.ra.rdb_version) {
            Ok(v) => self.rebuild(head, v, kr),
            Err(e) => {
                self.tally
                    .lock()
                    .expect("tally lock")
                    .fail(kr, &e.to_string());
                Ok(())
            }
        }
    }

    /// A key whose value goes on over the next frames. Its length is learnt first by
    /// reading ahead to its last piece (keeping the first frames read, within
    /// [`LOOKAHEAD_BYTES`]); then `RESTORE` is written with that length and the pieces
    /// follow straight from the frames, the CRC-64 computed on the way. A string rebuilt
    /// with commands is `APPEND`ed in chunks as it is decoded. Only other types rebuilt
    /// with commands are decoded whole. Returns where the value ends: frame, record, and
    /// that frame's bytes.
    fn big_key(
        &mut self,
        db: u32,
        head: &Head<'_>,
        span: &Span<'_>,
    ) -> Result<(usize, usize, Vec<u8>)> {
        let ra = self.ra;
        let Some(kr) = self.admit(db, head)? else {
            return walk(ra, span, None, &mut |_| Ok(()));
        };
        let mut cache = Lookahead {
            first: span.fi + 1,
            frames: VecDeque::new(),
            bytes: 0,
            full: false,
        };
        // A string's header says how long it is; anything else is measured.
        let len = match string_len(head.type_byte, span) {
            Some(n) => n,
            None => measure(ra, span, &mut cache)?,
        };
        let end = if let Some(version) = self.restore_version(head.type_byte, len) {
            self.summary.via_restore += 1;
            self.restore_streamed(head, len, span, &mut cache, &kr, version)?
        } else if head.type_byte == t::STRING {
            self.summary.via_commands += 1;
            self.string_streamed(head, span, &mut cache, &kr)?
        } else if let Some(kind) = CollKind::of(head.type_byte) {
            self.summary.via_commands += 1;
            self.collection_streamed(head, kind, span, &mut cache, &kr)?
        } else {
            self.summary.via_commands += 1;
            let mut value = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            let end = walk(ra, span, Some(&mut cache), &mut |p| {
                value.extend_from_slice(p);
                Ok(())
            })?;
            self.decode_and_rebuild(head, &value, &kr)?;
            end
        };
        self.sent_one(len);
        Ok(end)
    }

    /// `RESTORE key ttl` and the options after the payload.
    fn restore_args(&self, head: &Head<'_>) -> (String, Vec<Vec<u8>>) {
        let ttl = head.meta.expire_ms.unwrap_or(0).to_string();
        let mut tail: Vec<Vec<u8>> = Vec::new();
        if head.meta.expire_ms.is_some() {
            tail.push(b"ABSTTL".to_vec());
        }
        if self.opts.replace {
            tail.push(b"REPLACE".to_vec());
        }
        if let Some(i) = head.meta.idle_s {
            tail.push(b"IDLETIME".to_vec());
            tail.push(i.to_string().into_bytes());
        } else if let Some(f) = head.meta.freq {
            tail.push(b"FREQ".to_vec());
            tail.push(f.to_string().into_bytes());
        }
        (ttl, tail)
    }

    fn restore_cmd(
        &mut self,
        head: &Head<'_>,
        value: &[u8],
        kr: &KeyRef<'_>,
        version: u16,
    ) -> Result<()> {
        // LZF strings are expanded here rather than by the server, whose one thread is
        // what a restore waits for.
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = match inflate(head.type_byte, value, &mut scratch) {
            Some(v) => self.restore_payload(head, v, kr, version),
            None => self.restore_payload(head, value, kr, version),
        };
        self.scratch = scratch;
        r
    }

    fn restore_payload(
        &mut self,
        head: &Head<'_>,
        value: &[u8],
        kr: &KeyRef<'_>,
        version: u16,
    ) -> Result<()> {
        let footer = dump_footer(head.type_byte, value, version);
        let expect = Self::restore_expect(head.type_byte, version);
        if value.len() < DIRECT_WRITE {
            // The common case, encoded straight into the output buffer.
            let ttl = Dec::new(head.meta.expire_ms.unwrap_or(0).max(0) as u64);
            let hint = match (head.meta.idle_s, head.meta.freq) {
                (Some(i), _) => Some((&b"IDLETIME"[..], Dec::new(i))),
                (None, Some(f)) => Some((&b"FREQ"[..], Dec::new(u64::from(f)))),
                (None, None) => None,
            };
            let abs = head.meta.expire_ms.is_some();
            let argc = 4
                + usize::from(abs)
                + usize::from(self.opts.replace)
                + 2 * usize::from(hint.is_some());
            let bulk = |n: usize| 5 + conn::digits(n) + n;
            let plen = 1 + value.len() + footer.len();
            let mut len = 3
                + conn::digits(argc)
                + bulk(7)
                + bulk(head.key.len())
                + bulk(ttl.len())
                + bulk(plen);
            if abs {
                len += bulk(6);
            }
            if self.opts.replace {
                len += bulk(7);
            }
            if let Some((name, n)) = &hint {
                len += bulk(name.len()) + bulk(n.len());
            }
            self.pipe.reserve(len, expect, Some(kr))?;
            let out = &mut self.pipe.out;
            let start = out.len();
            out.push(b'*');
            conn::put_decimal(out, argc as u64);
            out.extend_from_slice(b"\r\n$7\r\nRESTORE\r\n");
            put_bulk(out, head.key);
            put_bulk(out, ttl.as_bytes());
            out.push(b'$');
            conn::put_decimal(out, plen as u64);
            out.extend_from_slice(b"\r\n");
            out.push(head.type_byte);
            out.extend_from_slice(value);
            out.extend_from_slice(&footer);
            out.extend_from_slice(b"\r\n");
            if abs {
                out.extend_from_slice(b"$6\r\nABSTTL\r\n");
            }
            if self.opts.replace {
                out.extend_from_slice(b"$7\r\nREPLACE\r\n");
            }
            if let Some((name, n)) = &hint {
                put_bulk(out, name);
                put_bulk(out, n.as_bytes());
            }
            debug_assert_eq!(out.len() - start, len);
            if out.len() >= DIRECT_WRITE {
                self.pipe.flush()?;
            }
            return Ok(());
        }
        let (ttl, tail) = self.restore_args(head);
        let type_byte = [head.type_byte];
        let payload = [&type_byte[..], value, &footer[..]];
        let mut args: Vec<&[&[u8]]> = Vec::with_capacity(4 + tail.len());
        let (cmd, key_part, ttl_part) = ([&b"RESTORE"[..]], [head.key], [ttl.as_bytes()]);
        args.extend([&cmd[..], &key_part[..], &ttl_part[..], &payload[..]]);
        let tail_parts: Vec<[&[u8]; 1]> = tail.iter().map(|a| [a.as_slice()]).collect();
        args.extend(tail_parts.iter().map(|p| &p[..]));
        self.pipe.send(&args, expect, Some(kr))
    }

    /// `RESTORE` of a value spread over frames, `len` bytes long, streamed.
    fn restore_streamed(
        &mut self,
        head: &Head<'_>,
        len: u64,
        span: &Span<'_>,
        cache: &mut Lookahead,
        kr: &KeyRef<'_>,
        version: u16,
    ) -> Result<(usize, usize, Vec<u8>)> {
        let expect = Self::restore_expect(head.type_byte, version);
        let version = version.to_le_bytes();
        let (ttl, tail) = self.restore_args(head);
        let tail: Vec<&[u8]> = tail.iter().map(Vec::as_slice).collect();
        let payload_len = usize::try_from(len + 11)
            .map_err(|_| Error::new(ErrorKind::Unsupported, "a value too big for this machine"))?;
        let ra = self.ra;
        let type_byte = head.type_byte;
        let mut end = None;
        self.pipe.send_streamed(
            &[b"RESTORE", head.key, ttl.as_bytes()],
            payload_len,
            &tail,
            expect,
            Some(kr),
            &mut |out| {
                let mut crc = Crc64::new();
                crc.update(&[type_byte]);
                out.put(&[type_byte])?;
                end = Some(walk(ra, span, Some(&mut *cache), &mut |p| {
                    crc.update(p);
                    out.put(p)
                })?);
                crc.update(&version);
                out.put(&version)?;
                out.put(&crc.value().to_le_bytes())
            },
        )?;
        Ok(end.expect("set by the body"))
    }

    /// A list, set, sorted set or hash spread over frames, rebuilt with batches of
    /// `RPUSH`/`SADD`/`ZADD`/`HSET` as its elements are decoded: memory is one batch
    /// (and one element, or one quicklist node), whatever the number of elements.
    fn collection_streamed(
        &mut self,
        head: &Head<'_>,
        kind: CollKind,
        span: &Span<'_>,
        cache: &mut Lookahead,
        kr: &KeyRef<'_>,
    ) -> Result<(usize, usize, Vec<u8>)> {
        let mut tmp = head.key.to_vec();
        tmp.extend_from_slice(TMP_SUFFIX);
        self.pipe.cmd(&[b"DEL", &tmp], Expect::Step, Some(kr))?;
        let (cmd, group): (&[u8], usize) = match kind {
            CollKind::List | CollKind::Quicklist | CollKind::Quicklist2 => (b"RPUSH", 1),
            CollKind::Set => (b"SADD", 1),
            CollKind::ZSet | CollKind::ZSet2 => (b"ZADD", 2),
            CollKind::Hash => (b"HSET", 2),
        };
        let max_items = self.opts.batch_elements.max(1) * group;
        let max_bytes = self.opts.batch_bytes.max(1);
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0usize;
        let pipe = &mut *self.pipe;
        let mut send = |batch: &mut Vec<Vec<u8>>, bytes: &mut usize| -> Result<()> {
            if batch.is_empty() {
                return Ok(());
            }
            let mut args: Vec<&[u8]> = Vec::with_capacity(2 + batch.len());
            args.push(cmd);
            args.push(&tmp);
            args.extend(batch.iter().map(Vec::as_slice));
            pipe.cmd(&args, Expect::Step, Some(kr))?;
            batch.clear();
            *bytes = 0;
            Ok(())
        };
        let mut st = CollStream::new(kind);
        let mut element = |parts: &[&[u8]]| -> Result<()> {
            let n: usize = parts.iter().map(|p| p.len()).sum();
            if !batch.is_empty() && (batch.len() >= max_items || bytes + n > max_bytes) {
                send(&mut batch, &mut bytes)?;
            }
            batch.extend(parts.iter().map(|p| p.to_vec()));
            bytes += n;
            Ok(())
        };
        let end = walk(self.ra, span, Some(cache), &mut |p| {
            st.push(p, &mut element)
        })?;
        st.finish()?;
        send(&mut batch, &mut bytes)?;
        self.finish_rebuild(head, &tmp, kr)?;
        Ok(end)
    }

    /// A string spread over frames, rebuilt with `APPEND`s of decoded chunks.
    fn string_streamed(
        &mut self,
        head: &Head<'_>,
        span: &Span<'_>,
        cache: &mut Lookahead,
        kr: &KeyRef<'_>,
    ) -> Result<(usize, usize, Vec<u8>)> {
        let mut tmp = head.key.to_vec();
        tmp.extend_from_slice(TMP_SUFFIX);
        let step = Expect::Step;
        self.pipe.cmd(&[b"DEL", &tmp], step, Some(kr))?;
        let mut st = StringStream::new(self.opts.batch_bytes.max(MIN_STRING_CHUNK));
        let mut appended = false;
        let pipe = &mut *self.pipe;
        let mut append = |c: &[u8]| {
            appended = true;
            pipe.cmd(&[b"APPEND", &tmp, c], step, Some(kr))
        };
        let end = walk(self.ra, span, Some(cache), &mut |p| st.push(p, &mut append))?;
        st.finish(&mut append)?;
        if !appended {
            self.pipe.cmd(&[b"SET", &tmp, b""], step, Some(kr))?;
        }
        self.finish_rebuild(head, &tmp, kr)?;
        Ok(end)
    }

    /// Rebuilds a value with type commands on a temporary key, then renames it.
    fn rebuild(&mut self, head: &Head<'_>, v: Value, kr: &KeyRef<'_>) -> Result<()> {
        let mut tmp = head.key.to_vec();
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
            Value::Hash(mut fields) => {
                if !self.hash_fields(&mut fields, kr) {
                    return Ok(());
                }
                let mut refs: Vec<&[u8]> = Vec::with_capacity(fields.len() * 2);
                for f in &fields {
                    refs.push(&f.field);
                    refs.push(&f.value);
                }
                self.batched(b"HSET", &tmp, &refs, 2, kr)?;
                // HPEXPIREAT per expiry time, the fields that share it together.
                fields.sort_by_key(|f| f.expire_ms);
                for same in fields.chunk_by(|a, b| a.expire_ms == b.expire_ms) {
                    let Some(ms) = same[0].expire_ms else {
                        continue;
                    };
                    let ms = ms.to_string();
                    for batch in same.chunks(self.opts.batch_elements.max(1)) {
                        let n = batch.len().to_string();
                        let mut args: Vec<&[u8]> =
                            vec![b"HPEXPIREAT", &tmp, ms.as_bytes(), b"FIELDS", n.as_bytes()];
                        args.extend(batch.iter().map(|f| f.field.as_slice()));
                        self.pipe.cmd(&args, step, Some(kr))?;
                    }
                }
            }
            Value::Stream(s) => self.stream(&tmp, &s, kr)?,
            Value::Module { .. } => unreachable!("modules always go through RESTORE"),
        }
        self.finish_rebuild(head, &tmp, kr)
    }

    /// Readies a hash's fields for `HSET`: leaves out those whose TTL has passed, and
    /// their TTLs when the target has none (`drop_field_ttl`, counted; without it the
    /// key fails). `false`: the key is not to be made (no field left, or it failed).
    fn hash_fields(&mut self, fields: &mut Vec<super::rdb::HashField>, kr: &KeyRef<'_>) -> bool {
        let now = self.now;
        let before = fields.len();
        fields.retain(|f| f.expire_ms.is_none_or(|e| e > now));
        if fields.is_empty() && before > 0 {
            // Every field has expired, and so has the hash.
            self.summary.via_commands -= 1;
            self.summary.skipped_expired += 1;
            return false;
        }
        let with_ttl = fields.iter().filter(|f| f.expire_ms.is_some()).count() as u64;
        if with_ttl == 0 || self.target.field_ttls {
            return true;
        }
        if !self.opts.drop_field_ttl {
            self.tally.lock().expect("tally lock").fail(
                kr,
                &format!(
                    "{with_ttl} fields have TTLs, which the target cannot hold \
                     (--drop-field-ttl restores them without)"
                ),
            );
            return false;
        }
        for f in fields.iter_mut() {
            f.expire_ms = None;
        }
        self.summary.field_ttls_dropped += with_ttl;
        self.summary.field_ttl_keys += 1;
        if self.summary.field_ttl_sample.len() < self.opts.max_reported {
            self.summary.field_ttl_sample.push(show_key(kr.db, kr.name));
        }
        true
    }

    /// The expiry, then the rename of the rebuilt value onto its name.
    fn finish_rebuild(&mut self, head: &Head<'_>, tmp: &[u8], kr: &KeyRef<'_>) -> Result<()> {
        let step = Expect::Step;
        if let Some(ms) = head.meta.expire_ms {
            let ms = ms.to_string();
            self.pipe
                .cmd(&[b"PEXPIREAT", tmp, ms.as_bytes()], step, Some(kr))?;
        }
        if self.opts.replace {
            self.pipe.cmd(&[b"RENAME", tmp, head.key], step, Some(kr))?;
        } else {
            self.pipe
                .cmd(&[b"RENAMENX", tmp, head.key], Expect::RenameNx, Some(kr))?;
            self.pipe.cmd(&[b"DEL", tmp], step, Some(kr))?;
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
        kr: &KeyRef<'_>,
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

    fn stream(&mut self, tmp: &[u8], s: &Stream, kr: &KeyRef<'_>) -> Result<()> {
        let step = Expect::Step;
        let v7 = self.target.redis_mm >= (7, 0);
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

/// Largest value [`inflate`] writes out.
const MAX_INFLATE: u64 = 1 << 20;

/// The value with its LZF-compressed strings stored plain, in `out`, when its type is
/// one string (a string, or a listpack, ziplist, intset or zipmap blob) or a quicklist
/// of them; `None` when it has none (or something does not parse: it then goes as
/// archived, for the server to judge).
fn inflate<'o>(type_byte: u8, value: &[u8], out: &'o mut Vec<u8>) -> Option<&'o [u8]> {
    out.clear();
    let mut at = 0;
    let mut any = false;
    let mut string = |at: &mut usize, out: &mut Vec<u8>| -> Option<()> {
        let h = primitives::string_header(&value[*at..], 0).ok()??;
        let end = (*at + h.header_len).checked_add(usize::try_from(h.body_len).ok()?)?;
        let body = value.get(*at + h.header_len..end)?;
        match h.kind {
            StringKind::Lzf(ulen) if out.len() as u64 + ulen <= MAX_INFLATE => {
                super::rdbfile::put_len(out, ulen);
                lzf::decompress_into(body, ulen as usize, out).ok()?;
                any = true;
            }
            _ => out.extend_from_slice(&value[*at..end]),
        }
        *at = end;
        Some(())
    };
    match type_byte {
        t::STRING
        | t::HASH_ZIPMAP
        | t::LIST_ZIPLIST
        | t::SET_INTSET
        | t::ZSET_ZIPLIST
        | t::HASH_ZIPLIST
        | t::HASH_LISTPACK
        | t::ZSET_LISTPACK
        | t::SET_LISTPACK => string(&mut at, out)?,
        t::LIST_QUICKLIST | t::LIST_QUICKLIST_2 => {
            let (n, used) = primitives::plain_length(value, 0).ok()??;
            out.extend_from_slice(&value[..used]);
            at = used;
            for _ in 0..n {
                if type_byte == t::LIST_QUICKLIST_2 {
                    let (_, used) = primitives::plain_length(&value[at..], 0).ok()??;
                    out.extend_from_slice(&value[at..at + used]);
                    at += used;
                }
                string(&mut at, out)?;
            }
        }
        _ => return None,
    }
    (any && at == value.len()).then_some(out.as_slice())
}

/// A number in decimal, on the stack.
struct Dec {
    b: [u8; 20],
    at: usize,
}

impl Dec {
    fn new(mut n: u64) -> Self {
        let mut d = Dec { b: [0; 20], at: 20 };
        loop {
            d.at -= 1;
            d.b[d.at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return d;
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.b[self.at..]
    }

    fn len(&self) -> usize {
        20 - self.at
    }
}

/// Appends a RESP bulk string.
fn put_bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'$');
    conn::put_decimal(out, b.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// A key as its KEY record gives it.
struct Head<'k> {
    type_byte: u8,
    meta: &'k KeyMeta,
    key: &'k [u8],
}

/// Where a value spread over frames starts: the KEY record `recs[ri]` of frame `fi`.
struct Span<'s> {
    entries: &'s [IndexEntry],
    fi: usize,
    recs: &'s [Record<'s>],
    ri: usize,
}

/// Frames after a big value's first one, read while looking for its end and kept, in
/// order from `first`, for sending it, while they fit in [`LOOKAHEAD_BYTES`].
struct Lookahead {
    first: usize,
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    /// A frame was dropped: keep no later ones.
    full: bool,
}

impl Lookahead {
    fn offer(&mut self, k: usize, frame: Vec<u8>) {
        if !self.full
            && k == self.first + self.frames.len()
            && self.bytes + frame.len() <= LOOKAHEAD_BYTES
        {
            self.bytes += frame.len();
            self.frames.push_back(frame);
        } else {
            self.full = true;
        }
    }

    fn take(&mut self, k: usize) -> Option<Vec<u8>> {
        if k == self.first && !self.frames.is_empty() {
            self.first += 1;
            let f = self.frames.pop_front()?;
            self.bytes -= f.len();
            Some(f)
        } else {
            None
        }
    }
}

/// The pieces of a value in the KEY record's own frame: calls `f` with each; returns
/// the record the value ends at there, if it does.
fn first_pieces(span: &Span<'_>, f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<Option<usize>> {
    let Record::Key { piece, more, .. } = &span.recs[span.ri] else {
        unreachable!("a span starts at a KEY record");
    };
    f(piece)?;
    if !*more {
        return Ok(Some(span.ri));
    }
    for (j, r) in span.recs.iter().enumerate().skip(span.ri + 1) {
        let Record::Value { piece, more } = r else {
            return Err(broken("a key's value is cut short by another record"));
        };
        f(piece)?;
        if !*more {
            return Ok(Some(j));
        }
    }
    Ok(None)
}

/// The length of a string value, from the RDB string header at the start of its first
/// piece (when the piece holds it whole).
fn string_len(type_byte: u8, span: &Span<'_>) -> Option<u64> {
    if type_byte != t::STRING {
        return None;
    }
    let Record::Key { piece, .. } = &span.recs[span.ri] else {
        return None;
    };
    let h = primitives::string_header(piece, 0).ok()??;
    (h.header_len as u64).checked_add(h.body_len)
}

/// Leading VALUE records of a frame: the bytes they hold and, if the value ends in
/// this frame, at which record.
fn value_records(frame: &[u8]) -> Result<(u64, Option<usize>)> {
    let mut n = 0u64;
    for (j, r) in parse_frame(frame)?.iter().enumerate() {
        let Record::Value { piece, more } = r else {
            return Err(broken("a key's value is cut short by another record"));
        };
        n += piece.len() as u64;
        if !*more {
            return Ok((n, Some(j)));
        }
    }
    Ok((n, None))
}

/// The length of a value spread over frames, reading the frames after the first a few
/// at a time in parallel (only their records' lengths are looked at); the first ones
/// are kept in `cache`.
fn measure(ra: &RedisArchive<'_>, span: &Span<'_>, cache: &mut Lookahead) -> Result<u64> {
    let mut len = 0u64;
    if first_pieces(span, &mut |p| {
        len += p.len() as u64;
        Ok(())
    })?
    .is_some()
    {
        return Ok(len);
    }
    // Most values that cross a frame boundary end in the next frame: read that one alone.
    let mut k = span.fi + 1;
    let mut at_once = 1;
    loop {
        let batch = &span.entries[k.min(span.entries.len())..(k + at_once).min(span.entries.len())];
        at_once = LOOKAHEAD_BATCH;
        if batch.is_empty() {
            return Err(broken("the stream ends inside a key"));
        }
        let read = ra
            .mapped()
            .par_map(batch, |_, raw| (value_records(&raw), raw));
        for r in read {
            let (found, raw) = r?;
            let (n, end) = found?;
            len += n;
            cache.offer(k, raw);
            if end.is_some() {
                return Ok(len);
            }
            k += 1;
        }
    }
}

/// Calls `f` with every piece of a value spread over frames, in order (frames from
/// `cache` when there, else read again). Returns where the value ends: frame, record,
/// and that frame's bytes (empty when it ends in the first frame).
fn walk(
    ra: &RedisArchive<'_>,
    span: &Span<'_>,
    mut cache: Option<&mut Lookahead>,
    f: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<(usize, usize, Vec<u8>)> {
    if let Some(j) = first_pieces(span, f)? {
        return Ok((span.fi, j, Vec::new()));
    }
    let mut k = span.fi + 1;
    loop {
        let Some(e) = span.entries.get(k) else {
            return Err(broken("the stream ends inside a key"));
        };
        let frame = match cache.as_deref_mut().and_then(|c| c.take(k)) {
            Some(f) => f,
            None => ra.read_frame(e)?,
        };
        let mut end = None;
        for (j, r) in parse_frame(&frame)?.iter().enumerate() {
            let Record::Value { piece, more } = r else {
                return Err(broken("a key's value is cut short by another record"));
            };
            f(piece)?;
            if !*more {
                end = Some(j);
                break;
            }
        }
        if let Some(j) = end {
            return Ok((k, j, frame));
        }
        k += 1;
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

    #[test]
    fn lzf_strings_are_inflated() {
        // "abcabcabc" as an LZF string: 0xC3, compressed length 6, length 9.
        let lzf = [0xC3, 6, 9, 0x02, b'a', b'b', b'c', 4 << 5, 0x02];
        let mut plain = vec![9u8];
        plain.extend_from_slice(b"abcabcabc");
        let mut out = Vec::new();
        assert_eq!(inflate(t::STRING, &lzf, &mut out), Some(&plain[..]));
        assert_eq!(inflate(t::HASH_LISTPACK, &lzf, &mut out), Some(&plain[..]));
        // A quicklist of two nodes (container 2), one compressed.
        let mut ql = vec![2u8, 2];
        ql.extend_from_slice(&lzf);
        ql.extend_from_slice(&[2, 1, b'z']);
        let mut want = vec![2u8, 2];
        want.extend_from_slice(&plain);
        want.extend_from_slice(&[2, 1, b'z']);
        assert_eq!(inflate(t::LIST_QUICKLIST_2, &ql, &mut out), Some(&want[..]));
        // Nothing compressed, trailing bytes, damage, other types: sent as they are.
        assert_eq!(inflate(t::STRING, &plain, &mut out), None);
        let mut longer = lzf.to_vec();
        longer.push(0);
        assert_eq!(inflate(t::STRING, &longer, &mut out), None);
        assert_eq!(inflate(t::STRING, &lzf[..7], &mut out), None);
        assert_eq!(inflate(t::SET, &lzf, &mut out), None);
    }
}
