//! The Redis half of a restore test: the archive's own check (every value decoded, every
//! database's key count and digest recomputed and compared with the manifest), and, when a
//! throwaway server holds the restored copy, a key-by-key comparison of its content with
//! the archive's, by logical value (DUMP decoded with the same decoders), so that a
//! different internal encoding on the server is not a false alarm.
//!
//! A key whose value spans several records (a big one) is checked as its pieces arrive,
//! never whole: its pieces go to the manifest digest and to a streaming decoder that
//! digests its content ([`ValueDigester`]); its DUMP is read in pieces into the same
//! decoder, and the two logical digests are compared. Memory stays at one frame plus one
//! element, whatever the size of the value. Values of types that cannot be decoded in
//! pieces (streams, modules) are checked whole.

use coffer_engine::redis::archive::RedisArchive;
use coffer_engine::redis::conn::{BulkHead, Conn, ServerInfo, encode};
use coffer_engine::redis::elements::{ValueDigester, value_digest};
use coffer_engine::redis::rdb::{KeyMeta, Stream, StreamId, Value, decode_value};
use coffer_engine::redis::record::{ArchivedKey, KeyHasher, Record, broken, key_digest, xor_into};
use coffer_engine::redis::replica::ReplicaOptions;
use coffer_engine::redis::restore::{TargetCaps, payload_version};
use coffer_engine::{Error, ErrorKind};
use coffer_format::MappedArchive;
use redis_protocol::resp2::types::OwnedFrame;
use serde::Serialize;

use crate::error::CliError;
use crate::exit;

/// One database's findings.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DbCheck {
    pub db: u32,
    /// Keys found in the archive.
    pub keys: u64,
    /// Keys the manifest says were archived.
    pub expected_keys: u64,
    /// The recomputed digest equals the manifest's.
    pub digest_ok: bool,
    /// Values the decoders refused (the first few are named in `problems`).
    pub undecodable: u64,
    /// Compared with a live copy: keys missing there, or with another value there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveCheck>,
    pub problems: Vec<String>,
}

/// A live copy's comparison.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LiveCheck {
    pub compared: u64,
    pub missing: u64,
    pub different: u64,
    /// Keys on the server beyond the archive's (DBSIZE minus the archive's live keys).
    pub extra: i64,
}

impl DbCheck {
    pub fn ok(&self) -> bool {
        self.keys == self.expected_keys
            && self.digest_ok
            && self.undecodable == 0
            && self
                .live
                .as_ref()
                .is_none_or(|l| l.missing == 0 && l.different == 0 && l.extra == 0)
    }
}

const MAX_PROBLEMS: usize = 10;

fn problem(c: &mut DbCheck, p: String) {
    if c.problems.len() < MAX_PROBLEMS {
        c.problems.push(p);
    }
}

fn quoted(key: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(key))
}

/// A server the archive was restored into, compared key by key: DUMPs pipelined in
/// batches (one round trip per batch, not per key), each payload decoded with the same
/// decoders as the archive's value.
pub struct Live {
    conn: Conn,
    /// The server, if it says (INFO, HELLO).
    info: Option<ServerInfo>,
    /// The archive's RDB version and what the server loads by RESTORE: set by [`check`].
    source_rdb: u32,
    caps: Option<TargetCaps>,
}

/// Keys sent per batch, and the most archive value bytes a batch holds.
const BATCH_KEYS: usize = 256;
const BATCH_BYTES: usize = 8 << 20;

/// One key awaiting its DUMP reply.
struct Pending {
    key: Vec<u8>,
    type_byte: u8,
    value: Value,
    expire_ms: Option<i64>,
}

/// What one database's comparison has counted so far.
#[derive(Default)]
struct Tally {
    check: LiveCheck,
    /// Keys expected on the server.
    live_keys: i64,
    /// Keys with a TTL that had passed when looked at: the server may still count them in
    /// DBSIZE until it evicts them.
    expired: i64,
}

impl Live {
    /// Connects to the test server on this machine.
    pub fn connect(port: u16) -> Result<Live, CliError> {
        let opts = ReplicaOptions {
            host: "127.0.0.1".into(),
            port,
            ..ReplicaOptions::default()
        };
        let mut conn = Conn::connect(&opts)?;
        let info = conn.server_info()?;
        Ok(Live {
            conn,
            info,
            source_rdb: 0,
            caps: None,
        })
    }

    /// Whether the restore rebuilt a value of `type_byte` with commands (the server cannot
    /// RESTORE it: it is older than the source, or of the other family).
    fn by_commands(&self, type_byte: u8) -> bool {
        self.caps
            .as_ref()
            .is_some_and(|c| payload_version(type_byte, self.source_rdb, c).is_none())
    }

    fn command(&mut self, args: &[&[u8]], what: &str) -> Result<OwnedFrame, CliError> {
        match self.conn.command(args)? {
            OwnedFrame::Error(e) => Err(CliError::new(
                exit::DATABASE,
                format!("{what} on the test server: {e}"),
            )),
            reply => Ok(reply),
        }
    }

    /// Sends the batch's DUMPs at once, then compares each reply with its key.
    fn compare(
        &mut self,
        batch: &mut Vec<Pending>,
        c: &mut DbCheck,
        t: &mut Tally,
    ) -> coffer_engine::Result<()> {
        let mut out = Vec::new();
        for p in batch.iter() {
            encode(&mut out, &[b"DUMP", &p.key]);
        }
        self.conn.write_all(&out)?;
        for p in batch.drain(..) {
            let reply = self.conn.read_reply()?;
            match reply {
                OwnedFrame::BulkString(d) if d.len() >= 11 => {
                    let body = &d[1..d.len() - 10];
                    let version = u16::from_le_bytes([d[d.len() - 10], d[d.len() - 9]]);
                    let rebuilt = self.by_commands(p.type_byte);
                    let same = decode_value(d[0], body, version.into())
                        .is_ok_and(|there| same_content(&there, &p.value, rebuilt));
                    if !same {
                        t.check.different += 1;
                        problem(
                            c,
                            format!("key {}: another value on the server", quoted(&p.key)),
                        );
                    }
                }
                _ => absent(&p.key, p.expire_ms, c, t),
            }
        }
        Ok(())
    }

    /// Compares a big key, whose value's logical digest is `mine`, with its DUMP, read
    /// in pieces.
    fn compare_big(
        &mut self,
        key: &[u8],
        mine: [u8; 32],
        expire_ms: Option<i64>,
        c: &mut DbCheck,
        t: &mut Tally,
    ) -> coffer_engine::Result<()> {
        let mut out = Vec::new();
        encode(&mut out, &[b"DUMP", key]);
        self.conn.write_all(&out)?;
        match self.conn.read_bulk_head()? {
            BulkHead::Bulk(n) if n >= 11 => {
                if self.dump_digest(n)? != Some(mine) {
                    t.check.different += 1;
                    problem(
                        c,
                        format!("key {}: another value on the server", quoted(key)),
                    );
                }
            }
            BulkHead::Bulk(n) => {
                self.conn.read_bulk_body(n, &mut |_| Ok(()))?;
                absent(key, expire_ms, c, t);
            }
            BulkHead::Nil | BulkHead::Other(_) => absent(key, expire_ms, c, t),
        }
        Ok(())
    }

    /// Reads a DUMP payload of `n` bytes (type byte, value, 10-byte footer) in pieces;
    /// the logical digest of its value, `None` if it does not decode.
    fn dump_digest(&mut self, n: usize) -> coffer_engine::Result<Option<[u8; 32]>> {
        /// Where the value's bytes go.
        enum Sink {
            Start,
            Stream(Box<ValueDigester>),
            /// A type that is not decoded in pieces (the server chose a compact
            /// encoding, or the value is a stream or a module's): kept whole.
            Whole(u8, Vec<u8>),
            Failed,
        }
        let value_end = n - 10;
        let mut at = 0;
        let mut sink = Sink::Start;
        let mut footer = Vec::with_capacity(10);
        self.conn.read_bulk_body(n, &mut |mut p| {
            if let (Sink::Start, Some((&type_byte, rest))) = (&sink, p.split_first()) {
                sink = match ValueDigester::new(type_byte) {
                    Some(d) => Sink::Stream(Box::new(d)),
                    None => Sink::Whole(type_byte, Vec::new()),
                };
                p = rest;
                at = 1;
            }
            let v = p.len().min(value_end.saturating_sub(at));
            let failed = match &mut sink {
                Sink::Stream(d) => d.push(&p[..v]).is_err(),
                Sink::Whole(_, w) => {
                    w.extend_from_slice(&p[..v]);
                    false
                }
                Sink::Start | Sink::Failed => false,
            };
            if failed {
                sink = Sink::Failed;
            }
            at += v;
            footer.extend_from_slice(&p[v..]);
            Ok(())
        })?;
        Ok(match sink {
            Sink::Stream(d) => d.finish().ok(),
            Sink::Whole(type_byte, w) => {
                let version = u16::from_le_bytes([footer[0], footer[1]]);
                decode_value(type_byte, &w, version.into())
                    .ok()
                    .and_then(|v| value_digest(&v))
            }
            Sink::Start | Sink::Failed => None,
        })
    }
}

/// A stream as both sides can hold it: the metadata either lacks (an older server's
/// layout has no entries-added, entries-read, active time…) left out of both; and, when
/// `rebuilt` with commands, without what commands cannot make (consumers' seen and active
/// times, pending entries whose stream entry was deleted).
fn comparable(a: &Stream, b: &Stream, rebuilt: bool) -> Stream {
    let mut s = a.clone();
    if b.first_id.is_none() {
        s.first_id = None;
        s.max_deleted_id = None;
        s.entries_added = None;
    }
    let live: std::collections::HashSet<StreamId> = s.entries.iter().map(|e| e.id).collect();
    for (g, other) in s.groups.iter_mut().zip(&b.groups) {
        if other.entries_read.is_none() {
            g.entries_read = None;
        }
        if rebuilt {
            g.pel.retain(|p| live.contains(&p.id));
        }
        for (c, oc) in g.consumers.iter_mut().zip(&other.consumers) {
            if rebuilt {
                c.seen_time_ms = 0;
                c.active_time_ms = None;
                c.pending.retain(|id| live.contains(id));
            } else if oc.active_time_ms.is_none() {
                c.active_time_ms = None;
            }
        }
    }
    s
}

/// Whether two values hold the same: hashes and sorted sets whatever the order of their
/// elements (a server lays a dict out in its own order), streams as [`comparable`],
/// anything else exactly.
fn same_content(a: &Value, b: &Value, rebuilt: bool) -> bool {
    match (a, b) {
        (Value::Stream(x), Value::Stream(y)) => {
            comparable(x, y, rebuilt) == comparable(y, x, rebuilt)
        }
        (Value::Hash(_), Value::Hash(_)) | (Value::ZSet(_), Value::ZSet(_)) => {
            value_digest(a) == value_digest(b)
        }
        _ => a == b,
    }
}

/// A key the server did not give back: expired while the check ran (not a loss), or
/// missing.
fn absent(key: &[u8], expire_ms: Option<i64>, c: &mut DbCheck, t: &mut Tally) {
    if expire_ms.is_some_and(|x| x <= chrono::Utc::now().timestamp_millis()) {
        t.check.compared -= 1;
        t.live_keys -= 1;
        t.expired += 1;
    } else {
        t.check.missing += 1;
        problem(c, format!("key {}: missing on the server", quoted(key)));
    }
}

/// A key whose value spans several records, checked as its pieces arrive.
struct BigKey {
    key: Vec<u8>,
    meta: KeyMeta,
    hasher: KeyHasher,
    /// The value's logical digest so far, or why it does not decode.
    digester: Result<ValueDigester, Error>,
}

impl BigKey {
    fn push(&mut self, piece: &[u8]) {
        self.hasher.update(piece);
        if let Ok(d) = &mut self.digester {
            if let Err(e) = d.push(piece) {
                self.digester = Err(e);
            }
        }
    }
}

/// The key being read from the records.
enum Current {
    /// Of a type checked whole: its value so far.
    Whole(ArchivedKey),
    Big(Box<BigKey>),
}

/// One database's check under way.
struct DbRun<'l> {
    c: DbCheck,
    digest: [u8; 32],
    tally: Tally,
    batch: Vec<Pending>,
    batch_bytes: usize,
    live: Option<&'l mut Live>,
    now_ms: i64,
    rdb_version: u32,
}

impl DbRun<'_> {
    /// Counts a key: its manifest digest, and whether its value decoded (`decoded`, the
    /// value or its logical digest). That, when the live copy is to be compared with it.
    fn admit<T>(
        &mut self,
        key: &[u8],
        digest: &[u8; 32],
        decoded: coffer_engine::Result<T>,
        expire_ms: Option<i64>,
    ) -> Option<T> {
        self.c.keys += 1;
        xor_into(&mut self.digest, digest);
        let v = match decoded {
            Ok(v) => v,
            Err(e) => {
                self.c.undecodable += 1;
                problem(&mut self.c, format!("key {}: {e}", quoted(key)));
                return None;
            }
        };
        self.live.as_ref()?;
        if expire_ms.is_some_and(|t| t <= self.now_ms) {
            self.tally.expired += 1;
            return None;
        }
        self.tally.live_keys += 1;
        self.tally.check.compared += 1;
        Some(v)
    }

    /// A key whose value is whole: decoded, and its DUMP compared in a batch.
    fn whole(&mut self, k: ArchivedKey) -> coffer_engine::Result<()> {
        let digest = key_digest(&k.key, k.type_byte, &k.value);
        let decoded = decode_value(k.type_byte, &k.value, self.rdb_version);
        let Some(value) = self.admit(&k.key, &digest, decoded, k.meta.expire_ms) else {
            return Ok(());
        };
        self.batch_bytes += k.value.len();
        self.batch.push(Pending {
            key: k.key,
            type_byte: k.type_byte,
            value,
            expire_ms: k.meta.expire_ms,
        });
        if self.batch.len() >= BATCH_KEYS || self.batch_bytes >= BATCH_BYTES {
            self.batch_bytes = 0;
            if let Some(l) = self.live.as_deref_mut() {
                l.compare(&mut self.batch, &mut self.c, &mut self.tally)?;
            }
        }
        Ok(())
    }

    /// A big key, all its pieces read: its digests, and its DUMP compared by itself.
    fn big(&mut self, b: BigKey) -> coffer_engine::Result<()> {
        let decoded = b.digester.and_then(ValueDigester::finish);
        let Some(mine) = self.admit(&b.key, &b.hasher.finish(), decoded, b.meta.expire_ms) else {
            return Ok(());
        };
        let Some(l) = self.live.as_deref_mut() else {
            return Ok(());
        };
        // The batch's replies come first.
        self.batch_bytes = 0;
        l.compare(&mut self.batch, &mut self.c, &mut self.tally)?;
        l.compare_big(&b.key, mine, b.meta.expire_ms, &mut self.c, &mut self.tally)
    }

    /// The next record of the database's stream.
    fn record(&mut self, cur: &mut Option<Current>, r: Record<'_>) -> coffer_engine::Result<()> {
        match r {
            Record::Key {
                db,
                type_byte,
                meta,
                key,
                piece,
                more,
            } => {
                if cur.is_some() {
                    return Err(broken("a KEY record inside an unfinished key"));
                }
                let whole = |value: &[u8]| ArchivedKey {
                    db,
                    type_byte,
                    meta: meta.clone(),
                    key: key.to_vec(),
                    value: value.to_vec(),
                };
                if !more {
                    return self.whole(whole(piece));
                }
                *cur = Some(match ValueDigester::new(type_byte) {
                    Some(d) => {
                        let mut b = BigKey {
                            key: key.to_vec(),
                            meta: meta.clone(),
                            hasher: KeyHasher::new(key, type_byte),
                            digester: Ok(d),
                        };
                        b.push(piece);
                        Current::Big(Box::new(b))
                    }
                    None => Current::Whole(whole(piece)),
                });
                Ok(())
            }
            Record::Value { piece, more } => {
                match cur {
                    None => return Err(broken("a VALUE record outside a key")),
                    Some(Current::Whole(k)) => k.value.extend_from_slice(piece),
                    Some(Current::Big(b)) => b.push(piece),
                }
                match (more, cur.take()) {
                    (false, Some(Current::Whole(k))) => self.whole(k),
                    (false, Some(Current::Big(b))) => self.big(*b),
                    (_, c) => {
                        *cur = c;
                        Ok(())
                    }
                }
            }
            _ => Err(broken("a non-key record in a database stream")),
        }
    }
}

/// Checks the archive, and `live` (a server the archive was restored into) if given.
pub fn check(
    archive: &MappedArchive,
    mut live: Option<&mut Live>,
) -> Result<Vec<DbCheck>, CliError> {
    let ra = RedisArchive::new(archive)?;
    let app = &archive.manifest().app;
    let now_ms = chrono::Utc::now().timestamp_millis();
    if let Some(l) = live.as_deref_mut() {
        l.source_rdb = ra.rdb_version;
        l.caps = Some(TargetCaps::of(l.info.as_ref(), ra.rdb_version));
    }
    let mut out = Vec::new();
    for db in ra.databases()? {
        let c = DbCheck {
            db: db.db,
            expected_keys: db.keys,
            ..DbCheck::default()
        };
        if let Some(l) = live.as_deref_mut() {
            let n = db.db.to_string();
            l.command(&[b"SELECT", n.as_bytes()], "SELECT")?;
        }
        let mut run = DbRun {
            c,
            digest: [0u8; 32],
            tally: Tally::default(),
            batch: Vec::new(),
            batch_bytes: 0,
            live: live.as_deref_mut(),
            now_ms,
            rdb_version: ra.rdb_version,
        };
        let mut cur = None;
        ra.db_records(&db, &mut |r| run.record(&mut cur, r))?;
        if cur.is_some() {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!("the stream of db {} ends inside a key", db.db),
            )
            .into());
        }
        let DbRun {
            mut c,
            digest,
            mut tally,
            mut batch,
            ..
        } = run;
        c.digest_ok = app["dbs"][db.db.to_string()]["digest"].as_str()
            == Some(coffer_format::hex(&digest).as_str());
        if !c.digest_ok {
            problem(
                &mut c,
                "the keys' digest differs from the manifest's".into(),
            );
        }
        if let Some(l) = live.as_deref_mut() {
            l.compare(&mut batch, &mut c, &mut tally)?;
            let size = match l.command(&[b"DBSIZE"], "DBSIZE")? {
                OwnedFrame::Integer(n) => n,
                other => {
                    return Err(CliError::new(
                        exit::DATABASE,
                        format!("DBSIZE on the test server: {other:?}"),
                    ));
                }
            };
            let mut lc = tally.check;
            lc.extra = if size < tally.live_keys {
                size - tally.live_keys
            } else {
                (size - tally.live_keys - tally.expired).max(0)
            };
            c.live = Some(lc);
        }
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use coffer_engine::redis::dump::{RedisDumpOptions, dump};
    use coffer_engine::redis::restore::{RedisRestoreOptions, restore};
    use coffer_format::{ArchiveWriter, WriterOptions};
    use coffer_testkit::RedisServer;

    use super::*;

    /// Big values of every type decoded in pieces, and a small key.
    fn load(server: &RedisServer) {
        let noise: Vec<u8> = (0u32..200_000)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        // Words drawn at random from a few: LZF halves it, no more.
        let mut x = 88_172_645_463_325_252u64;
        let text: String = (0..40_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                [
                    "alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta ", "eta ", "theta ",
                ][(x % 8) as usize]
            })
            .collect();
        let mut cmds: Vec<Vec<Vec<u8>>> = vec![
            vec![b"SET".to_vec(), b"big:noise".to_vec(), noise],
            vec![b"SET".to_vec(), b"big:text".to_vec(), text.into_bytes()],
            vec![b"SET".to_vec(), b"small".to_vec(), b"x".to_vec()],
        ];
        let mut list = vec![b"RPUSH".to_vec(), b"big:list".to_vec()];
        let mut set = vec![b"SADD".to_vec(), b"big:set".to_vec()];
        let mut ints = vec![b"SADD".to_vec(), b"big:ints".to_vec()];
        let mut hash = vec![b"HSET".to_vec(), b"big:hash".to_vec()];
        let mut zset = vec![b"ZADD".to_vec(), b"big:zset".to_vec()];
        for i in 0..12_000 {
            list.push(format!("item-{i}").into_bytes());
            set.push(format!("m{i}").into_bytes());
            ints.push(i.to_string().into_bytes());
            hash.push(format!("f{i}").into_bytes());
            hash.push(format!("value {i}").into_bytes());
            zset.push(format!("{}", f64::from(i) / 8.0 - 100.0).into_bytes());
            zset.push(format!("z{i}").into_bytes());
        }
        zset.extend([b"inf".to_vec(), b"top".to_vec()]);
        cmds.extend([list, set, ints, hash, zset]);
        for c in &cmds {
            let refs: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            server.command(&refs).unwrap();
        }
    }

    /// An archive of `server` cut in frames of `frame_size` bytes.
    fn archive_of(server: &RedisServer, dir: &std::path::Path, frame_size: usize) -> MappedArchive {
        let path = dir.join("r.coffer");
        let writer = ArchiveWriter::create(&path, WriterOptions::default()).unwrap();
        let opts = RedisDumpOptions {
            replica: ReplicaOptions {
                port: server.port(),
                ..ReplicaOptions::default()
            },
            frame_size,
            read_size: 8 << 10,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let summary = rt.block_on(dump(&opts, &writer, |_| {})).unwrap();
        writer.finish(summary.app).unwrap();
        MappedArchive::open(&path, None).unwrap()
    }

    /// A server `a` is restored into.
    fn restored(a: &MappedArchive) -> RedisServer {
        let dst = RedisServer::start().unwrap();
        let opts = RedisRestoreOptions {
            target: ReplicaOptions {
                host: "127.0.0.1".into(),
                port: dst.port(),
                ..ReplicaOptions::default()
            },
            ..RedisRestoreOptions::default()
        };
        restore(a, &opts, &|_| {}).unwrap();
        dst
    }

    /// A Valkey 9 stream (v3, with a pending entry deleted from it) restored into an older
    /// Redis (7.0, which takes it by commands): what commands cannot make is no
    /// difference, anything else is.
    #[test]
    fn a_stream_rebuilt_by_commands_compares_as_far_as_commands_go() {
        let src = RedisServer::builder()
            .version("valkey-9.1")
            .config("repl-diskless-sync-delay 0")
            .start()
            .unwrap();
        for c in [
            &[&b"XADD"[..], b"s", b"1-1", b"f", b"v"][..],
            &[b"XADD", b"s", b"1-2", b"f", b"w"],
            &[b"XGROUP", b"CREATE", b"s", b"g", b"0"],
            &[b"XREADGROUP", b"GROUP", b"g", b"c", b"STREAMS", b"s", b">"],
            &[b"XDEL", b"s", b"1-1"],
        ] {
            src.command(c).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let a = archive_of(&src, dir.path(), 1 << 20);
        let dst = RedisServer::builder().version("7.0").start().unwrap();
        let opts = RedisRestoreOptions {
            target: ReplicaOptions {
                port: dst.port(),
                ..ReplicaOptions::default()
            },
            ..RedisRestoreOptions::default()
        };
        let sum = restore(&a, &opts, &|_| {}).unwrap();
        assert_eq!(sum.via_commands, 1, "{sum:?}");
        let mut live = Live::connect(dst.port()).unwrap();
        let dbs = check(&a, Some(&mut live)).unwrap();
        assert!(dbs[0].ok(), "{dbs:?}");
        dst.command(&[
            b"XCLAIM",
            b"s",
            b"g",
            b"c",
            b"0",
            b"1-2",
            b"RETRYCOUNT",
            b"5",
        ])
        .unwrap();
        let dbs = check(&a, Some(&mut live)).unwrap();
        assert_eq!(dbs[0].live.as_ref().unwrap().different, 1, "{dbs:?}");
    }

    /// A hash too big for a listpack but in one record: the server lays its dict out
    /// in its own order, which is no difference.
    #[test]
    fn a_hash_in_one_record_is_compared_whatever_its_order() {
        let src = RedisServer::builder()
            .config("repl-diskless-sync-delay 0")
            .start()
            .unwrap();
        let mut args = vec![b"HSET".to_vec(), b"h".to_vec()];
        for i in 0..1000 {
            args.push(format!("f{i}").into_bytes());
            args.push(format!("v{i}").into_bytes());
        }
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        src.command(&refs).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let a = archive_of(&src, dir.path(), 1 << 20);
        let dst = restored(&a);
        let mut live = Live::connect(dst.port()).unwrap();
        let dbs = check(&a, Some(&mut live)).unwrap();
        assert!(dbs[0].ok(), "{dbs:?}");
        assert_eq!(dbs[0].live.as_ref().unwrap().compared, 1);
        dst.command(&[b"HSET", b"h", b"f1", b"v2"]).unwrap();
        let dbs = check(&a, Some(&mut live)).unwrap();
        assert_eq!(dbs[0].live.as_ref().unwrap().different, 1, "{dbs:?}");
    }

    #[test]
    fn big_values_are_compared_in_pieces_and_a_changed_element_is_caught() {
        let src = RedisServer::builder()
            .config("repl-diskless-sync-delay 0")
            .start()
            .unwrap();
        load(&src);
        let dir = tempfile::tempdir().unwrap();
        let a = archive_of(&src, dir.path(), 16 << 10);
        // Every big key spans records (and frames); the text is LZF-compressed.
        let ra = RedisArchive::new(&a).unwrap();
        let db0 = ra.databases().unwrap()[0];
        let mut big = Vec::new();
        ra.db_records(&db0, &mut |r| {
            if let Record::Key {
                key,
                piece,
                more: true,
                ..
            } = r
            {
                big.push((String::from_utf8_lossy(key).into_owned(), piece[0]));
            }
            Ok(())
        })
        .unwrap();
        big.sort();
        let names: Vec<&str> = big.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "big:hash",
                "big:ints",
                "big:list",
                "big:noise",
                "big:set",
                "big:text",
                "big:zset"
            ]
        );
        assert_eq!(big[5].1, 0xC3, "the text is LZF-compressed");
        assert!(ra.frames(&db0).len() > 20);

        // Restored, it passes, key by key, and without a server too.
        let dst = restored(&a);
        let dbs = check(&a, None).unwrap();
        assert!(dbs[0].ok(), "{dbs:?}");
        let mut live = Live::connect(dst.port()).unwrap();
        let dbs = check(&a, Some(&mut live)).unwrap();
        let l = dbs[0].live.as_ref().unwrap();
        assert!(dbs[0].ok(), "{dbs:?}");
        assert_eq!((dbs[0].keys, l.compared), (8, 8));

        // The same values, rebuilt in another order: still the same.
        dst.command(&[b"SREM", b"big:set", b"m7"]).unwrap();
        dst.command(&[b"SADD", b"big:set", b"m7"]).unwrap();
        dst.command(&[b"HDEL", b"big:hash", b"f3"]).unwrap();
        dst.command(&[b"HSET", b"big:hash", b"f3", b"value 3"])
            .unwrap();
        let dbs = check(&a, Some(&mut live)).unwrap();
        assert!(dbs[0].ok(), "{dbs:?}");

        // One element changed in each big value but one; one big key gone.
        for c in [
            &[&b"LSET"[..], b"big:list", b"7777", b"item-x"][..],
            &[b"SREM", b"big:set", b"m5"],
            &[b"SADD", b"big:set", b"m5x"],
            &[b"HSET", b"big:hash", b"f9", b"value 10"],
            &[b"ZADD", b"big:zset", b"1.25", b"z3"],
            &[b"SETRANGE", b"big:text", b"100000", b"X"],
            &[b"SETRANGE", b"big:noise", b"199999", b"\x00"],
            &[b"DEL", b"big:ints"],
        ] {
            dst.command(c).unwrap();
        }
        let dbs = check(&a, Some(&mut live)).unwrap();
        let d = &dbs[0];
        let l = d.live.as_ref().unwrap();
        assert!(!d.ok());
        assert!(d.digest_ok && d.undecodable == 0, "{d:?}");
        assert_eq!((l.compared, l.different, l.missing), (8, 6, 1), "{d:?}");
        for k in [
            "big:list",
            "big:set",
            "big:hash",
            "big:zset",
            "big:text",
            "big:noise",
        ] {
            assert!(
                d.problems
                    .iter()
                    .any(|p| p == &format!("key \"{k}\": another value on the server")),
                "{k}: {:?}",
                d.problems
            );
        }
        assert!(
            d.problems
                .contains(&"key \"big:ints\": missing on the server".to_string())
        );
    }
}
