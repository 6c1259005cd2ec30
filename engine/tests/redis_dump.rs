//! Dumping real redis-servers through the replication stream, then reading the archive
//! back and checking every key against the server: byte for byte against `DUMP`, and
//! logically against the type commands.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use coffer_engine::ErrorKind;
use coffer_engine::redis::crc64::crc64;
use coffer_engine::redis::dump::{self, Progress, RedisDumpOptions, RedisDumpSummary};
use coffer_engine::redis::rdb::{Value, decode_value};
use coffer_engine::redis::record::{self, ArchivedKey, KeyAssembler};
use coffer_engine::redis::replica::ReplicaOptions;
use coffer_format::{ArchiveWriter, MappedArchive, WriterOptions};
use coffer_testkit::{RedisServer, RespConnection, RespValue};

fn cmd(c: &mut RespConnection, args: &[&[u8]]) -> RespValue {
    match c.command(args).expect("redis command") {
        RespValue::Error(e) => panic!("{:?}: {e}", String::from_utf8_lossy(args[0])),
        v => v,
    }
}

fn bulk(v: &RespValue) -> Vec<u8> {
    match v {
        RespValue::Bulk(b) => b.clone(),
        RespValue::Simple(s) => s.as_bytes().to_vec(),
        RespValue::Integer(i) => i.to_string().into_bytes(),
        other => panic!("not a bulk string: {other:?}"),
    }
}

fn array(v: RespValue) -> Vec<RespValue> {
    match v {
        RespValue::Array(a) => a,
        RespValue::Null => vec![],
        other => panic!("not an array: {other:?}"),
    }
}

/// Deterministic pseudo-random bytes (incompressible enough for LZF).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const EXPIRE_AT: i64 = 4_102_444_800_123; // 2100-01-01, with milliseconds

const LIBRARY: &str = "#!lua name=cofferlib\nredis.register_function('coffer_echo', function(keys, args) return args[1] end)\n";

/// Every type in several encodings, in three databases.
fn load(server: &RedisServer) {
    let mut c = server.connect().unwrap();
    let c = &mut c;
    // Strings.
    cmd(c, &[b"SET", b"str:empty", b""]);
    cmd(c, &[b"SET", b"str:int", b"12345"]);
    cmd(c, &[b"SET", b"str:neg", b"-7"]);
    cmd(c, &[b"SET", b"str:bigint", b"-9223372036854775808"]);
    cmd(c, &[b"SET", b"str:lzf", "abc".repeat(2000).as_bytes()]);
    let all: Vec<u8> = (0..=255).collect();
    cmd(c, &[b"SET", b"bin:\x00\xff\r\n", &all]);
    cmd(c, &[b"SET", b"str:large", &noise(1, 300_000)]);
    cmd(c, &[b"SET", b"str:ttl", b"v"]);
    cmd(
        c,
        &[b"PEXPIREAT", b"str:ttl", EXPIRE_AT.to_string().as_bytes()],
    );
    cmd(c, &[b"SET", b"12", b"int-encoded key"]);
    // Lists: small (one listpack node), big (many nodes, long elements).
    cmd(
        c,
        &[b"RPUSH", b"list:small", b"a", b"", b"7", b"-1", b"\x00"],
    );
    for i in 0..1500u64 {
        let v = if i % 100 == 0 {
            noise(i, 5000)
        } else {
            i.to_string().into_bytes()
        };
        cmd(c, &[b"RPUSH", b"list:big", &v]);
    }
    // A quicklist PLAIN node: an element above the packed threshold (a debug knob).
    cmd(c, &[b"DEBUG", b"QUICKLIST-PACKED-THRESHOLD", b"1000"]);
    cmd(
        c,
        &[b"RPUSH", b"list:plain", b"small", &noise(9, 3000), b"tail"],
    );
    // Sets: intset, small strings, big strings, big ints.
    cmd(
        c,
        &[
            b"SADD",
            b"set:int",
            b"1",
            b"-5",
            b"100000",
            b"9223372036854775807",
        ],
    );
    cmd(c, &[b"SADD", b"set:str", b"a", b"b", b"", b"\xff"]);
    for i in 0..700u64 {
        cmd(c, &[b"SADD", b"set:big", format!("member-{i}").as_bytes()]);
        cmd(
            c,
            &[b"SADD", b"set:bigint", (i * 1000).to_string().as_bytes()],
        );
    }
    // Sorted sets: small (listpack) with special scores, big (skiplist).
    cmd(
        c,
        &[
            b"ZADD",
            b"zset:small",
            b"inf",
            b"top",
            b"-inf",
            b"bottom",
            b"0",
            b"zero",
            b"-2.5",
            b"neg",
            b"3.141592653589793",
            b"pi",
            b"1e300",
            b"huge",
        ],
    );
    for i in 0..300u64 {
        let score = format!("{}", (i as f64) * 1.5 - 100.0);
        cmd(
            c,
            &[
                b"ZADD",
                b"zset:big",
                score.as_bytes(),
                format!("m{i}").as_bytes(),
            ],
        );
    }
    cmd(
        c,
        &[b"ZADD", b"zset:big", b"inf", b"pinf", b"-inf", b"ninf"],
    );
    // Hashes: small (listpack), big (hashtable), binary.
    cmd(
        c,
        &[
            b"HSET",
            b"hash:small",
            b"f1",
            b"v1",
            b"n",
            b"42",
            b"",
            b"empty",
        ],
    );
    for i in 0..600u64 {
        cmd(
            c,
            &[
                b"HSET",
                b"hash:big",
                format!("field{i}").as_bytes(),
                &noise(i, (i % 50) as usize),
            ],
        );
    }
    cmd(c, &[b"HSET", b"hash:bin", b"\x00\x01", b"\xfe\xff"]);
    cmd(
        c,
        &[
            b"PEXPIREAT",
            b"hash:big",
            (EXPIRE_AT + 1).to_string().as_bytes(),
        ],
    );
    // Streams: entries with differing fields, deletions, groups, consumers, PEL.
    for i in 1..=20u64 {
        let id = format!("1700000000000-{i}");
        if i % 3 == 0 {
            cmd(
                c,
                &[
                    b"XADD",
                    b"stream:s",
                    id.as_bytes(),
                    b"other",
                    b"x",
                    b"n",
                    i.to_string().as_bytes(),
                ],
            );
        } else {
            cmd(
                c,
                &[
                    b"XADD",
                    b"stream:s",
                    id.as_bytes(),
                    b"msg",
                    format!("hello {i}").as_bytes(),
                ],
            );
        }
    }
    cmd(
        c,
        &[
            b"XDEL",
            b"stream:s",
            b"1700000000000-4",
            b"1700000000000-20",
        ],
    );
    cmd(c, &[b"XGROUP", b"CREATE", b"stream:s", b"g1", b"0"]);
    cmd(c, &[b"XGROUP", b"CREATE", b"stream:s", b"g2", b"$"]);
    cmd(
        c,
        &[
            b"XREADGROUP",
            b"GROUP",
            b"g1",
            b"alice",
            b"COUNT",
            b"5",
            b"STREAMS",
            b"stream:s",
            b">",
        ],
    );
    cmd(
        c,
        &[
            b"XREADGROUP",
            b"GROUP",
            b"g1",
            b"bob",
            b"COUNT",
            b"3",
            b"STREAMS",
            b"stream:s",
            b">",
        ],
    );
    cmd(c, &[b"XACK", b"stream:s", b"g1", b"1700000000000-1"]);
    cmd(
        c,
        &[b"XGROUP", b"CREATECONSUMER", b"stream:s", b"g2", b"idle"],
    );
    cmd(
        c,
        &[
            b"XGROUP",
            b"CREATE",
            b"stream:empty",
            b"g",
            b"$",
            b"MKSTREAM",
        ],
    );
    for i in 0..300u64 {
        cmd(
            c,
            &[
                b"XADD",
                b"stream:big",
                b"*",
                b"i",
                i.to_string().as_bytes(),
                b"pad",
                &noise(i, 40),
            ],
        );
    }
    // Functions.
    cmd(c, &[b"FUNCTION", b"LOAD", LIBRARY.as_bytes()]);
    // Other databases.
    cmd(c, &[b"SELECT", b"1"]);
    cmd(c, &[b"SET", b"db1:key", b"one"]);
    cmd(c, &[b"RPUSH", b"db1:list", b"x"]);
    cmd(
        c,
        &[b"PEXPIREAT", b"db1:list", EXPIRE_AT.to_string().as_bytes()],
    );
    cmd(c, &[b"SELECT", b"5"]);
    cmd(c, &[b"SADD", b"db5:set", b"s"]);
}

struct Dumped {
    summary: RedisDumpSummary,
    archive: MappedArchive,
}

async fn dump_to(dir: &Path, opts: &RedisDumpOptions) -> coffer_engine::Result<Dumped> {
    let path = dir.join("redis.coffer");
    let writer = ArchiveWriter::create(&path, WriterOptions::default()).unwrap();
    let summary = dump::dump(opts, &writer, |_p: Progress| {}).await?;
    writer.finish(summary.app.clone()).unwrap();
    let archive = MappedArchive::open(&path, None).unwrap();
    Ok(Dumped { summary, archive })
}

fn options(server: &RedisServer) -> RedisDumpOptions {
    RedisDumpOptions {
        replica: ReplicaOptions {
            port: server.port(),
            ..ReplicaOptions::default()
        },
        // Small frames and reads: big values must be cut into pieces across frames.
        frame_size: 64 << 10,
        read_size: 16 << 10,
    }
}

fn archived_keys(a: &MappedArchive) -> BTreeMap<u32, Vec<ArchivedKey>> {
    let mut out = BTreeMap::new();
    for s in a.streams() {
        if s.descriptor.kind != dump::KIND_DB {
            continue;
        }
        let mut asm = KeyAssembler::new();
        for e in a.data_entries(s) {
            asm.push_frame(&a.read_frame(e).unwrap()).unwrap();
        }
        let keys = asm.finish().unwrap();
        let db: u32 = s
            .descriptor
            .name
            .strip_prefix("db")
            .unwrap()
            .parse()
            .unwrap();
        assert!(keys.iter().all(|k| k.db == db));
        out.insert(db, keys);
    }
    out
}

fn functions(a: &MappedArchive) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for s in a
        .streams()
        .iter()
        .filter(|s| s.descriptor.kind == dump::KIND_FUNCTIONS)
    {
        for e in a.data_entries(s) {
            for r in record::parse_frame(&a.read_frame(e).unwrap()).unwrap() {
                if let record::Record::Function(code) = r {
                    out.push(code.to_vec());
                }
            }
        }
    }
    out
}

/// A stream entry's field/value pairs.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

fn pairs(v: RespValue) -> Vec<(Vec<u8>, Vec<u8>)> {
    array(v)
        .chunks(2)
        .map(|p| (bulk(&p[0]), bulk(&p[1])))
        .collect()
}

fn info_map(v: RespValue) -> BTreeMap<String, RespValue> {
    array(v)
        .chunks(2)
        .map(|p| (String::from_utf8(bulk(&p[0])).unwrap(), p[1].clone()))
        .collect()
}

fn id_of(v: &RespValue) -> String {
    String::from_utf8(bulk(v)).unwrap()
}

/// The key's logical value from the server, compared with the decoded archive value.
fn compare_logical(c: &mut RespConnection, key: &[u8], value: &Value) {
    let ctx = String::from_utf8_lossy(key).into_owned();
    match value {
        Value::String(s) => assert_eq!(bulk(&cmd(c, &[b"GET", key])), *s, "{ctx}"),
        Value::List(items) => {
            let got: Vec<Vec<u8>> = array(cmd(c, &[b"LRANGE", key, b"0", b"-1"]))
                .iter()
                .map(bulk)
                .collect();
            assert_eq!(&got, items, "{ctx}");
        }
        Value::Set(members) => {
            let got: BTreeSet<Vec<u8>> = array(cmd(c, &[b"SMEMBERS", key]))
                .iter()
                .map(bulk)
                .collect();
            assert_eq!(&got, members, "{ctx}");
        }
        Value::ZSet(items) => {
            let got: BTreeMap<Vec<u8>, f64> =
                pairs(cmd(c, &[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]))
                    .into_iter()
                    .map(|(m, s)| (m, String::from_utf8(s).unwrap().parse::<f64>().unwrap()))
                    .collect();
            let mine: BTreeMap<Vec<u8>, f64> = items.iter().cloned().collect();
            assert_eq!(mine.len(), items.len(), "{ctx}: duplicate members");
            assert_eq!(got, mine, "{ctx}");
        }
        Value::Hash(fields) => {
            let got: BTreeMap<Vec<u8>, Vec<u8>> =
                pairs(cmd(c, &[b"HGETALL", key])).into_iter().collect();
            let mine: BTreeMap<Vec<u8>, Vec<u8>> = fields
                .iter()
                .map(|f| (f.field.clone(), f.value.clone()))
                .collect();
            assert_eq!(got, mine, "{ctx}");
            assert!(fields.iter().all(|f| f.expire_ms.is_none()));
        }
        Value::Stream(s) => {
            let entries: Vec<(String, Fields)> = array(cmd(c, &[b"XRANGE", key, b"-", b"+"]))
                .into_iter()
                .map(|e| {
                    let e = array(e);
                    (id_of(&e[0]), pairs(e[1].clone()))
                })
                .collect();
            let mine: Vec<(String, Fields)> = s
                .entries
                .iter()
                .map(|e| (e.id.to_string(), e.fields.clone()))
                .collect();
            assert_eq!(entries, mine, "{ctx}");
            let info = info_map(cmd(c, &[b"XINFO", b"STREAM", key]));
            assert_eq!(info["length"], RespValue::Integer(s.length as i64), "{ctx}");
            assert_eq!(
                id_of(&info["last-generated-id"]),
                s.last_id.to_string(),
                "{ctx}"
            );
            assert_eq!(
                id_of(&info["max-deleted-entry-id"]),
                s.max_deleted_id.unwrap().to_string(),
                "{ctx}"
            );
            assert_eq!(
                info["entries-added"],
                RespValue::Integer(s.entries_added.unwrap() as i64),
                "{ctx}"
            );
            assert_eq!(
                id_of(&info["recorded-first-entry-id"]),
                s.first_id.unwrap().to_string(),
                "{ctx}"
            );
            let groups = array(cmd(c, &[b"XINFO", b"GROUPS", key]));
            assert_eq!(groups.len(), s.groups.len(), "{ctx}");
            for (g, mine) in groups.into_iter().map(info_map).zip(&s.groups) {
                assert_eq!(bulk(&g["name"]), mine.name, "{ctx}");
                assert_eq!(
                    id_of(&g["last-delivered-id"]),
                    mine.last_id.to_string(),
                    "{ctx}"
                );
                assert_eq!(
                    g["pending"],
                    RespValue::Integer(mine.pel.len() as i64),
                    "{ctx}"
                );
                assert_eq!(
                    g["consumers"],
                    RespValue::Integer(mine.consumers.len() as i64),
                    "{ctx}"
                );
                match (&g["entries-read"], mine.entries_read) {
                    (RespValue::Null, Some(u64::MAX)) => {}
                    (RespValue::Integer(n), Some(m)) => assert_eq!(*n as u64, m, "{ctx}"),
                    (other, m) => panic!("{ctx}: entries-read {other:?} vs {m:?}"),
                }
                let name = mine.name.clone();
                let pending = array(cmd(c, &[b"XPENDING", key, &name, b"-", b"+", b"1000"]));
                let got: Vec<(String, Vec<u8>, i64)> = pending
                    .into_iter()
                    .map(|p| {
                        let p = array(p);
                        let RespValue::Integer(n) = p[3] else {
                            panic!()
                        };
                        (id_of(&p[0]), bulk(&p[1]), n)
                    })
                    .collect();
                let mut want = Vec::new();
                for e in &mine.pel {
                    let owner = mine
                        .consumers
                        .iter()
                        .find(|cn| cn.pending.contains(&e.id))
                        .expect("owned");
                    want.push((
                        e.id.to_string(),
                        owner.name.clone(),
                        e.delivery_count as i64,
                    ));
                }
                assert_eq!(
                    got,
                    want,
                    "{ctx}: PEL of {}",
                    String::from_utf8_lossy(&name)
                );
                let consumers = array(cmd(c, &[b"XINFO", b"CONSUMERS", key, &name]));
                let got: BTreeSet<Vec<u8>> = consumers
                    .into_iter()
                    .map(|m| bulk(&info_map(m)["name"]))
                    .collect();
                let want: BTreeSet<Vec<u8>> =
                    mine.consumers.iter().map(|cn| cn.name.clone()).collect();
                assert_eq!(got, want, "{ctx}");
            }
        }
        Value::Module { .. } => panic!("{ctx}: no modules are loaded"),
    }
}

/// Every archived key equals the server's: DUMP payload byte for byte, the logical value
/// through the type commands, expiry through PEXPIRETIME; counts and digests agree.
fn check_against_server(server: &RedisServer, d: &Dumped, lfu: bool) {
    let keys = archived_keys(&d.archive);
    let app = &d.archive.manifest().app;
    let mut c = server.connect().unwrap();
    let c = &mut c;
    let mut total = 0;
    let mut types = BTreeSet::new();
    for (db, keys) in &keys {
        cmd(c, &[b"SELECT", db.to_string().as_bytes()]);
        let RespValue::Integer(size) = cmd(c, &[b"DBSIZE"]) else {
            panic!()
        };
        assert_eq!(size as usize, keys.len(), "db {db}");
        assert_eq!(app["dbs"][db.to_string()]["keys"], keys.len(), "db {db}");
        let mut digest = [0u8; 32];
        for k in keys {
            let ctx = String::from_utf8_lossy(&k.key).into_owned();
            let payload = bulk(&cmd(c, &[b"DUMP", &k.key]));
            let (body, footer) = payload.split_at(payload.len() - 10);
            assert_eq!(body[0], k.type_byte, "{ctx}");
            assert!(
                body[1..] == k.value[..],
                "{ctx}: value bytes differ from DUMP"
            );
            assert_eq!(
                u16::from_le_bytes([footer[0], footer[1]]) as u32,
                d.summary.rdb_version
            );
            assert_eq!(
                u64::from_le_bytes(footer[2..].try_into().unwrap()),
                crc64(&payload[..payload.len() - 8])
            );
            let RespValue::Integer(at) = cmd(c, &[b"PEXPIRETIME", &k.key]) else {
                panic!()
            };
            assert_eq!(k.meta.expire_ms, (at >= 0).then_some(at), "{ctx}");
            assert_eq!(k.meta.freq.is_some(), lfu, "{ctx}: LFU counter");
            assert_eq!(k.meta.idle_s, None, "{ctx}");
            let value = decode_value(k.type_byte, &k.value, d.summary.rdb_version).unwrap();
            compare_logical(c, &k.key, &value);
            record::xor_into(
                &mut digest,
                &record::key_digest(&k.key, k.type_byte, &k.value),
            );
            types.insert(k.type_byte);
            if k.key == b"list:plain" {
                assert_eq!(quicklist_containers(&k.value), [2, 1, 2], "{ctx}");
            }
            total += 1;
        }
        assert_eq!(
            app["dbs"][db.to_string()]["digest"],
            coffer_format::hex(&digest),
            "db {db}"
        );
    }
    assert_eq!(app["keys"], total);
    assert_eq!(keys.keys().copied().collect::<Vec<_>>(), vec![0, 1, 5]);
    // Strings, lists, sets (intset and hashtable), zsets (listpack and skiplist), hashes
    // (listpack and hashtable), streams: every encoding Redis 7.0 writes.
    for t in [0u8, 2, 4, 5, 11, 16, 17, 18, 19] {
        assert!(types.contains(&t), "type {t} not exercised: {types:?}");
    }
    // The function library.
    assert_eq!(functions(&d.archive), vec![LIBRARY.as_bytes().to_vec()]);
    let list = array(cmd(c, &[b"FUNCTION", b"LIST", b"WITHCODE"]));
    let lib = info_map(list[0].clone());
    assert_eq!(bulk(&lib["library_code"]), LIBRARY.as_bytes());
    // Manifest details.
    let version = bulk(&info_map_text(
        cmd(c, &[b"INFO", b"server"]),
        "redis_version",
    ));
    assert_eq!(app["server_version"], String::from_utf8(version).unwrap());
    assert_eq!(app["rdb_version"], d.summary.rdb_version);
    assert_eq!(app["replication"]["id"].as_str().unwrap().len(), 40);
}

/// The container kinds (1 PLAIN, 2 PACKED) of a QUICKLIST_2 value's nodes.
fn quicklist_containers(raw: &[u8]) -> Vec<u64> {
    use coffer_engine::redis::rdb::primitives::{plain_length, string_header};
    let (n, mut at) = plain_length(raw, 0).unwrap().unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let (container, used) = plain_length(&raw[at..], 0).unwrap().unwrap();
        at += used;
        let h = string_header(&raw[at..], 0).unwrap().unwrap();
        at += h.header_len + h.body_len as usize;
        out.push(container);
    }
    assert_eq!(at, raw.len());
    out
}

fn info_map_text(v: RespValue, field: &str) -> RespValue {
    let text = String::from_utf8(bulk(&v)).unwrap();
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap()
        .trim()
        .to_string();
    RespValue::Bulk(value.into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_based_sync_round_trips_every_type() {
    let server = RedisServer::builder()
        .config("repl-diskless-sync no")
        .config("enable-debug-command local")
        .start()
        .unwrap();
    load(&server);
    let dir = tempfile::tempdir().unwrap();
    let d = dump_to(dir.path(), &options(&server)).await.unwrap();
    assert_eq!(d.archive.manifest().app["transfer"], "disk");
    check_against_server(&server, &d, false);
    // Big values were cut into pieces: no frame is much bigger than the frame size.
    let db0 = d
        .archive
        .streams()
        .iter()
        .find(|s| s.descriptor.name == "db0")
        .unwrap();
    assert!(d.archive.data_entries(db0).len() > 5);
    for e in d.archive.data_entries(db0) {
        assert!(d.archive.read_frame(e).unwrap().len() <= (64 << 10) + 256);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diskless_sync_round_trips_every_type() {
    let server = RedisServer::builder()
        .config("repl-diskless-sync yes")
        .config("repl-diskless-sync-delay 0")
        .config("enable-debug-command local")
        .config("maxmemory-policy allkeys-lfu")
        .start()
        .unwrap();
    load(&server);
    let dir = tempfile::tempdir().unwrap();
    let d = dump_to(dir.path(), &options(&server)).await.unwrap();
    assert_eq!(d.archive.manifest().app["transfer"], "diskless");
    check_against_server(&server, &d, true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_user_with_replication_rights_can_dump() {
    let server = RedisServer::builder()
        .password("admin-secret")
        .config("user backup on >backup-pw ~* &* +psync +replconf +ping +info")
        .start()
        .unwrap();
    let mut c = server.connect().unwrap();
    cmd(&mut c, &[b"SET", b"k", b"v"]);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&server);
    opts.replica.username = Some("backup".into());
    opts.replica.password = Some("backup-pw".into());
    let d = dump_to(dir.path(), &opts).await.unwrap();
    let keys = archived_keys(&d.archive);
    assert_eq!(keys[&0].len(), 1);
    assert_eq!(keys[&0][0].key, b"k");
}

async fn dump_error(opts: &RedisDumpOptions) -> coffer_engine::Error {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.coffer");
    let writer = ArchiveWriter::create(&path, WriterOptions::default()).unwrap();
    let err = dump::dump(opts, &writer, |_| {}).await.unwrap_err();
    drop(writer);
    eprintln!("{:?}: {err}", err.kind());
    // Nothing sealed, nothing half-written left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_password_is_an_auth_error() {
    let server = RedisServer::builder()
        .password("right-secret")
        .start()
        .unwrap();
    let mut opts = options(&server);
    opts.replica.password = Some("wrong-secret".into());
    let err = dump_error(&opts).await;
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(
        !err.to_string().contains("wrong-secret"),
        "the password leaked: {err}"
    );
    opts.replica.password = None;
    let err = dump_error(&opts).await;
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_without_sync_rights_is_a_permission_error() {
    let server = RedisServer::builder()
        .config("user reader on >reader-pw ~* &* +@all -psync -sync")
        .start()
        .unwrap();
    let mut opts = options(&server);
    opts.replica.username = Some("reader".into());
    opts.replica.password = Some("reader-pw".into());
    let err = dump_error(&opts).await;
    assert_eq!(err.kind(), ErrorKind::Permission, "{err}");
    assert!(err.to_string().contains("\"reader\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_closing_mid_transfer_is_a_protocol_error() {
    let server = RedisServer::builder()
        .config("repl-diskless-sync no")
        .start()
        .unwrap();
    let mut c = server.connect().unwrap();
    // 32 MB of incompressible values: far more than the socket buffers hold.
    for i in 0..32u64 {
        cmd(
            &mut c,
            &[b"SET", format!("big{i}").as_bytes(), &noise(i, 1 << 20)],
        );
    }
    let mut opts = options(&server);
    opts.read_size = 4 << 10;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.coffer");
    let writer = ArchiveWriter::create(&path, WriterOptions::default()).unwrap();
    let killed = std::sync::atomic::AtomicBool::new(false);
    let err = dump::dump(&opts, &writer, |p: Progress| {
        if p.rdb_bytes > 0 && !killed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let mut admin = server.connect().unwrap();
            cmd(&mut admin, &[b"CLIENT", b"KILL", b"TYPE", b"replica"]);
        }
    })
    .await
    .unwrap_err();
    drop(writer);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    eprintln!("{:?}: {err}", err.kind());
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("closed the connection after") && msg.contains(" of "),
        "{msg}"
    );
}
