//! What a Redis or Valkey server holds, read with its own commands only (no DUMP, nothing
//! of coffer's decoding): every key of every database with its type, value, expiry and
//! hash field TTLs, and the whole state of its streams (`XINFO STREAM FULL`). Two
//! snapshots are compared key by key ([`differences`]), allowing for what a restore path
//! or an older server cannot keep, as its [`Compare`] says.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use coffer_testkit::{RedisServer, RespConnection, RespValue};

/// The server: its Redis (compatibility) version and, for Valkey, its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub redis: (u32, u32),
    pub valkey: Option<(u32, u32)>,
    pub text: String,
}

impl Server {
    pub fn of(c: &mut RespConnection) -> Server {
        let RespValue::Bulk(info) = c.command(&[b"INFO", b"server"]).unwrap() else {
            panic!("INFO server")
        };
        let info = String::from_utf8_lossy(&info).into_owned();
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        };
        let mm = |v: &str| {
            let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        };
        let redis = field("redis_version").unwrap();
        let valkey = field("valkey_version");
        Server {
            redis: mm(&redis),
            valkey: valkey.as_deref().map(mm),
            text: match &valkey {
                Some(v) => format!("Valkey {v}"),
                None => format!("Redis {redis}"),
            },
        }
    }

    /// A Redis server of `major.minor` (for one without INFO).
    pub fn redis(major: u32, minor: u32) -> Server {
        Server {
            redis: (major, minor),
            valkey: None,
            text: format!("Redis {major}.{minor}"),
        }
    }

    /// It keeps hash field TTLs: Redis 7.4+, Valkey 9+.
    pub fn field_ttls(&self) -> bool {
        match self.valkey {
            Some(v) => v >= (9, 0),
            None => self.redis >= (7, 4),
        }
    }

    /// It has PEXPIRETIME and FUNCTION (7.0+, Valkey).
    pub fn v7(&self) -> bool {
        self.redis >= (7, 0)
    }
}

/// A stream entry's field/value pairs.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// A stream, as `XINFO STREAM key FULL COUNT 0` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamState {
    /// The scalar fields (length, last-generated-id, entries-added…), the radix tree's
    /// sizes left out (they are the encoding's).
    pub info: BTreeMap<String, String>,
    pub entries: Vec<(String, Fields)>,
    pub groups: Vec<GroupState>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupState {
    /// name, last-delivered-id, entries-read, lag, pel-count.
    pub info: BTreeMap<String, String>,
    /// (id, consumer, delivery time, delivery count).
    pub pel: Vec<[String; 4]>,
    pub consumers: Vec<ConsumerState>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConsumerState {
    /// name, seen-time, active-time, pel-count.
    pub info: BTreeMap<String, String>,
    /// (id, delivery time, delivery count).
    pub pel: Vec<[String; 3]>,
}

/// A key's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    String(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
    /// In ZRANGE order, scores parsed.
    ZSet(Vec<(Vec<u8>, f64)>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    Stream(Box<StreamState>),
}

/// An expiry: absolute unix ms, and whether it is exact (PEXPIRETIME) or worked out from
/// PTTL (Redis 6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    pub at_ms: i64,
    pub exact: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    /// TYPE.
    pub kind: String,
    /// OBJECT ENCODING: not compared (a server picks its own), for checking that a
    /// source holds every encoding.
    pub encoding: String,
    pub value: Val,
    pub expire: Option<Expiry>,
    /// Hash fields with a TTL: field → absolute unix ms (HPEXPIRETIME).
    pub field_ttls: BTreeMap<Vec<u8>, i64>,
}

/// Every key of a server, by (database, name); and its function libraries' code.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub server: Server,
    pub keys: BTreeMap<(u32, Vec<u8>), Key>,
    pub functions: BTreeSet<Vec<u8>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn ok(c: &mut RespConnection, args: &[&[u8]]) -> RespValue {
    match c.command(args).expect("redis command") {
        RespValue::Error(e) => panic!("{:?}: {e}", String::from_utf8_lossy(args[0])),
        v => v,
    }
}

fn bytes(v: &RespValue) -> Vec<u8> {
    match v {
        RespValue::Bulk(b) => b.clone(),
        RespValue::Simple(s) => s.as_bytes().to_vec(),
        RespValue::Integer(i) => i.to_string().into_bytes(),
        RespValue::Null => b"(nil)".to_vec(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn text(v: &RespValue) -> String {
    String::from_utf8_lossy(&bytes(v)).into_owned()
}

fn list(v: RespValue) -> Vec<RespValue> {
    match v {
        RespValue::Array(a) => a,
        RespValue::Null => vec![],
        other => panic!("not an array: {other:?}"),
    }
}

fn int(v: &RespValue) -> i64 {
    match v {
        RespValue::Integer(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

/// A RESP2 map (a flat array of names and values).
fn map(v: RespValue) -> Vec<(String, RespValue)> {
    list(v)
        .chunks(2)
        .map(|p| (text(&p[0]), p[1].clone()))
        .collect()
}

fn pairs(v: RespValue) -> Vec<(Vec<u8>, Vec<u8>)> {
    list(v)
        .chunks(2)
        .map(|p| (bytes(&p[0]), bytes(&p[1])))
        .collect()
}

fn stream_state(c: &mut RespConnection, key: &[u8]) -> StreamState {
    let full = map(ok(c, &[b"XINFO", b"STREAM", key, b"FULL", b"COUNT", b"0"]));
    let mut s = StreamState {
        info: BTreeMap::new(),
        entries: Vec::new(),
        groups: Vec::new(),
    };
    for (name, v) in full {
        match name.as_str() {
            "radix-tree-keys" | "radix-tree-nodes" => {}
            "entries" => {
                for e in list(v) {
                    let e = list(e);
                    s.entries.push((text(&e[0]), pairs(e[1].clone())));
                }
            }
            "groups" => {
                for g in list(v) {
                    let mut group = GroupState {
                        info: BTreeMap::new(),
                        pel: Vec::new(),
                        consumers: Vec::new(),
                    };
                    for (name, v) in map(g) {
                        match name.as_str() {
                            "pel" | "pending" => {
                                for p in list(v) {
                                    let p = list(p);
                                    group.pel.push([
                                        text(&p[0]),
                                        text(&p[1]),
                                        text(&p[2]),
                                        text(&p[3]),
                                    ]);
                                }
                            }
                            "consumers" => {
                                for cn in list(v) {
                                    let mut consumer = ConsumerState {
                                        info: BTreeMap::new(),
                                        pel: Vec::new(),
                                    };
                                    for (name, v) in map(cn) {
                                        if name == "pel" || name == "pending" {
                                            for p in list(v) {
                                                let p = list(p);
                                                consumer.pel.push([
                                                    text(&p[0]),
                                                    text(&p[1]),
                                                    text(&p[2]),
                                                ]);
                                            }
                                        } else {
                                            consumer.info.insert(name, text(&v));
                                        }
                                    }
                                    group.consumers.push(consumer);
                                }
                            }
                            _ => {
                                group.info.insert(name, text(&v));
                            }
                        }
                    }
                    s.groups.push(group);
                }
            }
            _ => {
                s.info.insert(name, text(&v));
            }
        }
    }
    s
}

impl Snapshot {
    /// Reads every key of `server` (databases 0–15).
    pub fn take(server: &RedisServer) -> Snapshot {
        let info = Server::of(&mut server.connect().unwrap());
        Self::take_as(server, info)
    }

    /// Reads every key of `server`, which is `info` (it may have no INFO).
    pub fn take_as(server: &RedisServer, info: Server) -> Snapshot {
        let mut c = server.connect().unwrap();
        let c = &mut c;
        let mut keys = BTreeMap::new();
        for db in 0u32..16 {
            if let RespValue::Error(e) = c.command(&[b"SELECT", db.to_string().as_bytes()]).unwrap()
            {
                // Cluster mode: database 0 only ("not allowed in cluster mode", or
                // Valkey's "out of range" of its cluster-databases).
                assert!(db > 0, "SELECT {db}: {e}");
                break;
            }
            let mut names: Vec<Vec<u8>> = list(ok(c, &[b"KEYS", b"*"])).iter().map(bytes).collect();
            names.sort();
            for name in names {
                let key = Self::key(c, &info, &name);
                keys.insert((db, name), key);
            }
        }
        let functions = if info.v7() {
            list(ok(c, &[b"FUNCTION", b"LIST", b"WITHCODE"]))
                .into_iter()
                .filter_map(|l| {
                    map(l)
                        .into_iter()
                        .find(|(n, _)| n == "library_code")
                        .map(|(_, v)| bytes(&v))
                })
                .collect()
        } else {
            BTreeSet::new()
        };
        Snapshot {
            server: info,
            keys,
            functions,
        }
    }

    fn key(c: &mut RespConnection, info: &Server, k: &[u8]) -> Key {
        let kind = text(&ok(c, &[b"TYPE", k]));
        let encoding = text(&ok(c, &[b"OBJECT", b"ENCODING", k]));
        let value = match kind.as_str() {
            "string" => Val::String(bytes(&ok(c, &[b"GET", k]))),
            "list" => Val::List(
                list(ok(c, &[b"LRANGE", k, b"0", b"-1"]))
                    .iter()
                    .map(bytes)
                    .collect(),
            ),
            "set" => Val::Set(list(ok(c, &[b"SMEMBERS", k])).iter().map(bytes).collect()),
            "zset" => Val::ZSet(
                pairs(ok(c, &[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"]))
                    .into_iter()
                    .map(|(m, s)| (m, String::from_utf8(s).unwrap().parse().unwrap()))
                    .collect(),
            ),
            "hash" => Val::Hash(pairs(ok(c, &[b"HGETALL", k])).into_iter().collect()),
            "stream" => Val::Stream(Box::new(stream_state(c, k))),
            other => panic!("{}: type {other}", String::from_utf8_lossy(k)),
        };
        let expire = if info.v7() {
            let at = int(&ok(c, &[b"PEXPIRETIME", k]));
            (at >= 0).then_some(Expiry {
                at_ms: at,
                exact: true,
            })
        } else {
            let ttl = int(&ok(c, &[b"PTTL", k]));
            (ttl >= 0).then(|| Expiry {
                at_ms: now_ms() + ttl,
                exact: false,
            })
        };
        let mut field_ttls = BTreeMap::new();
        if let (Val::Hash(h), true) = (&value, info.field_ttls()) {
            let fields: Vec<&[u8]> = h.keys().map(Vec::as_slice).collect();
            let n = fields.len().to_string();
            let mut args: Vec<&[u8]> = vec![b"HPEXPIRETIME", k, b"FIELDS", n.as_bytes()];
            args.extend(&fields);
            for (f, at) in fields.iter().zip(list(ok(c, &args))) {
                let at = int(&at);
                if at >= 0 {
                    field_ttls.insert(f.to_vec(), at);
                }
            }
        }
        Key {
            kind,
            encoding,
            value,
            expire,
            field_ttls,
        }
    }

    /// The encodings of its keys, by name (db 0 only is enough for the loaders).
    pub fn encoding(&self, db: u32, key: &str) -> &str {
        &self.keys[&(db, key.as_bytes().to_vec())].encoding
    }
}

/// How a restored snapshot is expected to differ from its source.
#[derive(Clone, Copy, Debug, Default)]
pub struct Compare {
    /// Streams were rebuilt with commands: consumers' seen and active times are the
    /// restore's, and pending entries whose stream entry was deleted are gone (XCLAIM
    /// cannot make them).
    pub streams_by_commands: bool,
    /// Another server version: compare only the stream fields both show (an older server
    /// has no entries-added, active-time…).
    pub common_fields_only: bool,
    /// Field TTLs were dropped (--drop-field-ttl): none expected.
    pub field_ttls_dropped: bool,
    /// The target cannot hold function libraries.
    pub no_functions: bool,
}

/// Milliseconds within which an expiry worked out from PTTL must agree.
const PTTL_SLACK_MS: i64 = 2000;

fn show(db: u32, k: &[u8]) -> String {
    format!("db{db} {:?}", String::from_utf8_lossy(k))
}

/// A stream as it should come out of a restore `how`.
fn expected_stream(s: &StreamState, how: &Compare) -> StreamState {
    let mut s = s.clone();
    if how.streams_by_commands {
        let live: BTreeSet<&String> = s.entries.iter().map(|(id, _)| id).collect();
        let live: BTreeSet<String> = live.into_iter().cloned().collect();
        for g in &mut s.groups {
            g.pel.retain(|p| live.contains(&p[0]));
            g.info.insert("pel-count".into(), g.pel.len().to_string());
            for c in &mut g.consumers {
                c.pel.retain(|p| live.contains(&p[0]));
                c.info.insert("pel-count".into(), c.pel.len().to_string());
                c.info.remove("seen-time");
                c.info.remove("active-time");
            }
        }
    }
    s
}

fn without_times(s: &StreamState) -> StreamState {
    let mut s = s.clone();
    for g in &mut s.groups {
        for c in &mut g.consumers {
            c.info.remove("seen-time");
            c.info.remove("active-time");
        }
    }
    s
}

/// Keeps in both maps only the names both have.
fn common(a: &mut BTreeMap<String, String>, b: &mut BTreeMap<String, String>) {
    a.retain(|k, _| b.contains_key(k));
    b.retain(|k, _| a.contains_key(k));
}

fn common_streams(a: &mut StreamState, b: &mut StreamState) {
    common(&mut a.info, &mut b.info);
    for (ga, gb) in a.groups.iter_mut().zip(&mut b.groups) {
        common(&mut ga.info, &mut gb.info);
        for (ca, cb) in ga.consumers.iter_mut().zip(&mut gb.consumers) {
            common(&mut ca.info, &mut cb.info);
        }
    }
}

/// Bytes for a message: text when it is, else escaped; long ones cut.
fn short(b: &[u8]) -> String {
    let t = String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned();
    if b.len() > 40 {
        format!("{t:?}…({} bytes)", b.len())
    } else {
        format!("{t:?}")
    }
}

/// The first few elements in `a` but not in `b`.
fn missing<'x, T: PartialEq>(a: &'x [T], b: &[T]) -> Vec<&'x T> {
    a.iter().filter(|x| !b.contains(x)).take(3).collect()
}

/// How two values differ, briefly.
fn describe(want: &Val, got: &Val) -> String {
    match (want, got) {
        (Val::String(w), Val::String(g)) => {
            format!(
                "string of {} bytes {} instead of {} bytes {}",
                g.len(),
                short(g),
                w.len(),
                short(w)
            )
        }
        (Val::List(w), Val::List(g)) => {
            let at = w.iter().zip(g).position(|(a, b)| a != b);
            format!(
                "list of {} instead of {} elements, first difference at {at:?}",
                g.len(),
                w.len()
            )
        }
        (Val::Set(w), Val::Set(g)) => {
            let w: Vec<String> = w.iter().map(|m| short(m)).collect();
            let g: Vec<String> = g.iter().map(|m| short(m)).collect();
            format!(
                "set of {} instead of {}: missing {:?}, extra {:?}",
                g.len(),
                w.len(),
                missing(&w, &g),
                missing(&g, &w)
            )
        }
        (Val::ZSet(w), Val::ZSet(g)) => {
            let w: Vec<String> = w.iter().map(|(m, s)| format!("{}={s}", short(m))).collect();
            let g: Vec<String> = g.iter().map(|(m, s)| format!("{}={s}", short(m))).collect();
            format!(
                "zset of {} instead of {}: missing {:?}, extra {:?}",
                g.len(),
                w.len(),
                missing(&w, &g),
                missing(&g, &w)
            )
        }
        (Val::Hash(w), Val::Hash(g)) => {
            let w: Vec<String> = w
                .iter()
                .map(|(f, v)| format!("{}={}", short(f), short(v)))
                .collect();
            let g: Vec<String> = g
                .iter()
                .map(|(f, v)| format!("{}={}", short(f), short(v)))
                .collect();
            format!(
                "hash of {} instead of {} fields: missing {:?}, extra {:?}",
                g.len(),
                w.len(),
                missing(&w, &g),
                missing(&g, &w)
            )
        }
        (w, g) => format!("{g:?} instead of {w:?}"),
    }
}

/// Every difference between `want` (a source, as `how` says a restore of it should look)
/// and `got`, one line per key.
pub fn differences(want: &Snapshot, got: &Snapshot, how: &Compare) -> Vec<String> {
    let mut out = Vec::new();
    for ((db, k), w) in &want.keys {
        let name = show(*db, k);
        let Some(g) = got.keys.get(&(*db, k.clone())) else {
            out.push(format!("{name}: missing"));
            continue;
        };
        if w.kind != g.kind {
            out.push(format!("{name}: type {} instead of {}", g.kind, w.kind));
            continue;
        }
        match (&w.value, &g.value) {
            (Val::Stream(ws), Val::Stream(gs)) => {
                let mut ws = expected_stream(ws, how);
                let mut gs = if how.streams_by_commands {
                    without_times(gs)
                } else {
                    (**gs).clone()
                };
                if how.common_fields_only {
                    common_streams(&mut ws, &mut gs);
                }
                if ws != gs {
                    out.push(format!("{name}: stream\n  want {ws:?}\n  got  {gs:?}"));
                }
            }
            (wv, gv) if wv != gv => out.push(format!("{name}: {}", describe(wv, gv))),
            _ => {}
        }
        match (w.expire, g.expire) {
            (None, None) => {}
            (Some(a), Some(b)) if a.exact && b.exact && a.at_ms == b.at_ms => {}
            (Some(a), Some(b))
                if !(a.exact && b.exact) && (a.at_ms - b.at_ms).abs() <= PTTL_SLACK_MS => {}
            (a, b) => out.push(format!("{name}: expiry {b:?} instead of {a:?}")),
        }
        let want_ttls = if how.field_ttls_dropped || !got.server.field_ttls() {
            BTreeMap::new()
        } else {
            w.field_ttls.clone()
        };
        if want_ttls != g.field_ttls {
            let show = |m: &BTreeMap<Vec<u8>, i64>| -> Vec<String> {
                m.iter()
                    .map(|(f, at)| format!("{}@{at}", short(f)))
                    .collect()
            };
            let (w, g) = (show(&want_ttls), show(&g.field_ttls));
            let missing: Vec<&String> = w.iter().filter(|x| !g.contains(x)).take(5).collect();
            let extra: Vec<&String> = g.iter().filter(|x| !w.contains(x)).take(5).collect();
            out.push(format!(
                "{name}: field TTLs differ ({} instead of {}): missing {missing:?}, extra {extra:?}",
                g.len(),
                w.len()
            ));
        }
    }
    for (db, k) in got.keys.keys() {
        if !want.keys.contains_key(&(*db, k.clone())) {
            out.push(format!("{}: not in the source", show(*db, k)));
        }
    }
    if !how.no_functions && got.server.v7() && want.functions != got.functions {
        out.push(format!(
            "function libraries {:?} instead of {:?}",
            got.functions, want.functions
        ));
    }
    out
}

/// Panics listing every difference, if there is any.
pub fn assert_same(what: &str, want: &Snapshot, got: &Snapshot, how: &Compare) {
    let d = differences(want, got, how);
    assert!(
        d.is_empty(),
        "{what}: {} of {} keys differ ({} → {}):\n{}",
        d.len(),
        want.keys.len(),
        want.server.text,
        got.server.text,
        d.join("\n")
    );
}
