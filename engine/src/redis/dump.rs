//! Dumping a live Redis server into an archive, through the replication stream.
//!
//! [`dump`] joins the server as a replica ([`super::replica`]), feeds the RDB into the
//! streaming parser as it arrives and writes every key as records (layout in
//! [`super::record`]) into one archive stream per database (`redis.db`, `db<N>`), plus
//! `redis.functions` and `redis.aux`. Memory is bounded by the read size, the parser's
//! value chunk and one frame per stream being filled: a 500 MB value passes through in
//! frame-sized pieces.
//!
//! The caller owns the [`ArchiveWriter`]: on success it seals the archive with
//! [`RedisDumpSummary::app`] as the manifest's `app` member; on error it drops the writer,
//! which removes the `.partial` file.

use coffer_format::{ArchiveWriter, StreamDescriptor, StreamWriter};
use serde_json::json;
use std::collections::BTreeMap;

use super::conn::ServerInfo;
use super::rdb::{Event, KeyHeader, RdbParser};
use super::record::{self, KeyHasher};
use super::replica::{MarkMatcher, Payload, Replica, ReplicaOptions};
use crate::{Error, ErrorKind, Result};

/// Stream kind of a database's keys.
pub const KIND_DB: &str = "redis.db";
/// Stream kind of the function libraries.
pub const KIND_FUNCTIONS: &str = "redis.functions";
/// Stream kind of the AUX fields and module AUX data.
pub const KIND_AUX: &str = "redis.aux";

/// What to dump, and how.
#[derive(Clone, Debug)]
pub struct RedisDumpOptions {
    /// Connection and replica settings.
    pub replica: ReplicaOptions,
    /// Raw bytes at which a stream's frame is cut (frames hold whole records).
    pub frame_size: usize,
    /// Bytes read from the socket at a time.
    pub read_size: usize,
}

impl Default for RedisDumpOptions {
    fn default() -> Self {
        RedisDumpOptions {
            replica: ReplicaOptions::default(),
            frame_size: 1 << 20,
            read_size: 256 << 10,
        }
    }
}

/// Progress, reported after every read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// RDB bytes received.
    pub rdb_bytes: u64,
    /// RDB size, when the master announced it (disk-based sync).
    pub rdb_total: Option<u64>,
    /// Keys written.
    pub keys: u64,
}

/// One database in the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbSummary {
    /// Keys written.
    pub keys: u64,
    /// XOR over the keys of [`record::key_digest`], hex.
    pub digest: String,
}

/// What a dump wrote.
#[derive(Clone, Debug)]
pub struct RedisDumpSummary {
    /// `"redis"` or `"valkey"`.
    pub server: &'static str,
    /// Server version (INFO, else the RDB's `valkey-ver` or `redis-ver`); Valkey's own.
    pub server_version: Option<String>,
    /// RDB version of the payload.
    pub rdb_version: u32,
    /// Replication id and offset of the snapshot (PSYNC only).
    pub replication: Option<(String, u64)>,
    /// RDB bytes received.
    pub rdb_bytes: u64,
    /// Per database.
    pub dbs: BTreeMap<u64, DbSummary>,
    /// Function libraries.
    pub functions: u64,
    /// Everything above as the manifest's `app` JSON.
    pub app: serde_json::Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Db(u64),
    Functions,
    Aux,
}

struct Out {
    writer: Option<StreamWriter>,
    buf: Vec<u8>,
}

struct DbState {
    keys: u64,
    digest: [u8; 32],
}

/// The key being written: where its open record's flags and piece length are.
struct OpenKey {
    db: u64,
    flags_at: usize,
    len_at: usize,
    hasher: KeyHasher,
}

/// Turns parser events into records and frames.
struct Sink<'w> {
    archive: &'w ArchiveWriter,
    frame_size: usize,
    rdb_version: u32,
    outs: BTreeMap<Target, Out>,
    dbs: BTreeMap<u64, DbState>,
    open: Option<OpenKey>,
    ready: Vec<(Target, Vec<u8>)>,
    aux: Vec<(Vec<u8>, Vec<u8>)>,
    functions: u64,
    module_aux: u64,
    keys: u64,
    /// Keys by RDB type byte.
    types: BTreeMap<u8, u64>,
}

impl<'w> Sink<'w> {
    fn out(&mut self, t: Target) -> Result<&mut Out> {
        if !self.outs.contains_key(&t) {
            let descriptor = match t {
                Target::Db(n) => StreamDescriptor {
                    kind: KIND_DB.into(),
                    name: format!("db{n}"),
                    meta: json!({"db": n, "rdb_version": self.rdb_version, "record_format": 1}),
                },
                Target::Functions => StreamDescriptor::new(KIND_FUNCTIONS, "functions"),
                Target::Aux => StreamDescriptor::new(KIND_AUX, "aux"),
            };
            let writer = self.archive.stream(descriptor)?;
            self.outs.insert(
                t,
                Out {
                    writer: Some(writer),
                    buf: Vec::with_capacity(self.frame_size + 4096),
                },
            );
        }
        Ok(self.outs.get_mut(&t).expect("inserted"))
    }

    /// Moves the buffer of `t` to the ready list if it is full (or `force` and not empty).
    fn cut(&mut self, t: Target, force: bool) {
        let frame_size = self.frame_size;
        if let Some(o) = self.outs.get_mut(&t) {
            if (force && !o.buf.is_empty()) || o.buf.len() >= frame_size {
                let full = std::mem::replace(&mut o.buf, Vec::with_capacity(frame_size + 4096));
                self.ready.push((t, full));
            }
        }
    }

    fn event(&mut self, ev: Event<'_>) -> Result<()> {
        match ev {
            Event::Header { version } => self.rdb_version = version,
            Event::Aux { key, value } => {
                record::push_aux(&mut self.out(Target::Aux)?.buf, &key, &value);
                self.cut(Target::Aux, false);
                self.aux.push((key, value));
            }
            Event::ModuleAux { raw, .. } => {
                record::push_blob(
                    &mut self.out(Target::Aux)?.buf,
                    record::TAG_MODULE_AUX,
                    &raw,
                );
                self.cut(Target::Aux, false);
                self.module_aux += 1;
            }
            Event::Function(code) => {
                record::push_blob(
                    &mut self.out(Target::Functions)?.buf,
                    record::TAG_FUNCTION,
                    &code,
                );
                self.cut(Target::Functions, false);
                self.functions += 1;
            }
            Event::SelectDb(_)
            | Event::ResizeDb { .. }
            | Event::SlotInfo { .. }
            | Event::End { .. } => {}
            Event::KeyStart(h) => self.key_start(h)?,
            Event::ValueChunk(mut piece) => {
                let open = self.open.as_mut().expect("a chunk follows KeyStart");
                open.hasher.update(piece);
                let t = Target::Db(open.db);
                while !piece.is_empty() {
                    let frame_size = self.frame_size;
                    let o = self.outs.get_mut(&t).expect("opened by KeyStart");
                    let open = self.open.as_mut().expect("checked");
                    let room = frame_size.saturating_sub(o.buf.len()).max(1);
                    let n = room.min(piece.len());
                    o.buf.extend_from_slice(&piece[..n]);
                    add_len(&mut o.buf, open.len_at, n);
                    piece = &piece[n..];
                    if o.buf.len() >= frame_size && !piece.is_empty() {
                        o.buf[open.flags_at] |= record::FLAG_MORE;
                        self.cut(t, true);
                        let o = self.outs.get_mut(&t).expect("still open");
                        let (flags_at, len_at) = record::push_value(&mut o.buf);
                        let open = self.open.as_mut().expect("checked");
                        open.flags_at = flags_at;
                        open.len_at = len_at;
                    }
                }
            }
            Event::KeyEnd => {
                let open = self.open.take().expect("KeyEnd follows KeyStart");
                let db = self.dbs.entry(open.db).or_insert(DbState {
                    keys: 0,
                    digest: [0; 32],
                });
                db.keys += 1;
                record::xor_into(&mut db.digest, &open.hasher.finish());
                self.keys += 1;
                self.cut(Target::Db(open.db), false);
            }
        }
        Ok(())
    }

    fn key_start(&mut self, h: KeyHeader) -> Result<()> {
        if h.key.len() > (coffer_format::limits::MAX_FRAME_RAW as usize) / 2 {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("a key name of {} bytes is too long to archive", h.key.len()),
            ));
        }
        *self.types.entry(h.type_byte).or_default() += 1;
        let t = Target::Db(h.db);
        let o = self.out(t)?;
        let (flags_at, len_at) = record::push_key(&mut o.buf, h.db, &h.key, h.type_byte, &h.meta)?;
        self.open = Some(OpenKey {
            db: h.db,
            flags_at,
            len_at,
            hasher: KeyHasher::new(&h.key, h.type_byte),
        });
        Ok(())
    }
}

fn add_len(buf: &mut [u8], at: usize, n: usize) {
    let cur = u32::from_le_bytes(buf[at..at + 4].try_into().expect("4"));
    buf[at..at + 4].copy_from_slice(&(cur + n as u32).to_le_bytes());
}

/// Seals `frame` as the next DATA frame of `writer` off the async runtime (sealing
/// compresses and hashes, and the writer's channel may block).
async fn write_frame(mut writer: StreamWriter, frame: Vec<u8>) -> Result<StreamWriter> {
    tokio::task::spawn_blocking(move || writer.write_frame(&frame).map(|()| writer))
        .await
        .map_err(|e| Error::new(ErrorKind::Archive, format!("the frame writer failed: {e}")))?
        .map_err(Error::from)
}

async fn flush_ready(sink: &mut Sink<'_>) -> Result<()> {
    for (t, frame) in std::mem::take(&mut sink.ready) {
        let out = sink
            .outs
            .get_mut(&t)
            .expect("ready frames belong to open streams");
        let w = out
            .writer
            .take()
            .expect("writers are put back after each frame");
        out.writer = Some(write_frame(w, frame).await?);
    }
    Ok(())
}

/// Dumps the server described by `opts` into `writer` through the replication stream.
pub async fn dump(
    opts: &RedisDumpOptions,
    writer: &ArchiveWriter,
    progress: impl Fn(Progress),
) -> Result<RedisDumpSummary> {
    let mut replica = Replica::connect(&opts.replica).await?;
    let info = replica.server_info().await?;
    let start = replica.start_sync(info).await?;
    if let Some(offset) = start.offset {
        replica.start_acks(offset);
    }
    let total = match start.payload {
        Payload::Length(n) => Some(n),
        Payload::EofMark(_) => None,
    };
    let mut mark = match start.payload {
        Payload::EofMark(m) => Some(MarkMatcher::new(m)),
        Payload::Length(_) => None,
    };
    let mut parser = RdbParser::new();
    let mut sink = Sink {
        archive: writer,
        frame_size: opts.frame_size.clamp(1 << 10, 32 << 20),
        rdb_version: 0,
        outs: BTreeMap::new(),
        dbs: BTreeMap::new(),
        open: None,
        ready: Vec::new(),
        aux: Vec::new(),
        functions: 0,
        module_aux: 0,
        keys: 0,
        types: BTreeMap::new(),
    };
    let mut received: u64 = 0;
    let mut mark_done = false;
    loop {
        let want = match total {
            Some(t) => (t - received).min(opts.read_size as u64) as usize,
            None => opts.read_size,
        };
        if want == 0 || mark_done {
            break;
        }
        let Some(chunk) = replica.read_chunk(want).await? else {
            let of = total.map_or(String::new(), |t| format!(" of {t}"));
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("the master closed the connection after {received}{of} bytes of the RDB"),
            ));
        };
        let mut data: &[u8] = &chunk;
        if let Some(t) = total {
            data = &data[..data.len().min((t - received) as usize)];
        }
        if parser.is_done() {
            // Only the diskless end mark may follow the RDB.
            let m = mark.as_mut().ok_or_else(|| trailing_bytes(received))?;
            mark_done = m.feed(data)?.is_some();
            continue;
        }
        received += data.len() as u64;
        parser.feed(data);
        while let Some(ev) = parser.next_event()? {
            sink.event(ev)?;
        }
        flush_ready(&mut sink).await?;
        if parser.is_done() {
            let trailing = parser.trailing().to_vec();
            received -= trailing.len() as u64;
            match mark.as_mut() {
                Some(m) => mark_done = m.feed(&trailing)?.is_some(),
                None if !trailing.is_empty() => return Err(trailing_bytes(received)),
                None => {}
            }
        }
        progress(Progress {
            rdb_bytes: received,
            rdb_total: total,
            keys: sink.keys,
        });
    }
    if !parser.is_done() {
        parser.finish().map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!("the master's payload ended early: {}", e.message()),
            )
        })?;
    }
    drop(replica);

    // Last frames, then end every stream.
    let targets: Vec<Target> = sink.outs.keys().copied().collect();
    for t in &targets {
        sink.cut(*t, true);
    }
    flush_ready(&mut sink).await?;
    for t in targets {
        let w = sink
            .outs
            .get_mut(&t)
            .and_then(|o| o.writer.take())
            .expect("open");
        tokio::task::spawn_blocking(move || w.finish())
            .await
            .map_err(|e| {
                Error::new(ErrorKind::Archive, format!("ending a stream failed: {e}"))
            })??;
    }

    let aux_str = |k: &str| {
        sink.aux
            .iter()
            .find(|(key, _)| key == k.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    // Valkey 9's RDB says valkey-ver, not redis-ver.
    let valkey = start.server.as_ref().map_or_else(
        || aux_str("valkey-ver").is_some() || super::rdb::is_valkey(sink.rdb_version),
        ServerInfo::is_valkey,
    );
    let server_version = start
        .server
        .as_ref()
        .map(|s| s.version().to_string())
        .or_else(|| aux_str("valkey-ver"))
        .or_else(|| aux_str("redis-ver"));
    let server_name = if valkey { "valkey" } else { "redis" };
    let replication = start.replid.clone().zip(start.offset);
    let dbs: BTreeMap<u64, DbSummary> = sink
        .dbs
        .iter()
        .map(|(&n, d)| {
            (
                n,
                DbSummary {
                    keys: d.keys,
                    digest: coffer_format::hex(&d.digest),
                },
            )
        })
        .collect();
    let aux_json: serde_json::Map<String, serde_json::Value> = sink
        .aux
        .iter()
        .filter(|(k, _)| k != b"lua")
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned().into(),
            )
        })
        .collect();
    let app = json!({
        "source": "redis",
        "record_format": 1,
        "server": server_name,
        "server_version": server_version,
        "rdb_version": sink.rdb_version,
        "rdb_bytes": received,
        "transfer": if total.is_some() { "disk" } else { "diskless" },
        "replication": replication.as_ref().map(|(id, off)| json!({"id": id, "offset": off})),
        "keys": sink.keys,
        "types": sink.types.iter().map(|(t, n)| (t.to_string(), json!(n)))
            .collect::<serde_json::Map<_, _>>(),
        "dbs": dbs.iter().map(|(n, d)| (n.to_string(), json!({
            "stream": format!("db{n}"), "keys": d.keys, "digest": d.digest,
        }))).collect::<serde_json::Map<_, _>>(),
        "digest": "xor of blake3(u64le key length | key | type byte | value) over the keys",
        "functions": sink.functions,
        "module_aux": sink.module_aux,
        "aux": aux_json,
    });
    Ok(RedisDumpSummary {
        server: server_name,
        server_version,
        rdb_version: sink.rdb_version,
        replication,
        rdb_bytes: received,
        dbs,
        functions: sink.functions,
        app,
    })
}

fn trailing_bytes(at: u64) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("unexpected bytes after the RDB's end at byte {at}"),
    )
}
