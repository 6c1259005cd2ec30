//! Helpers shared by the Redis integration tests (engine/tests/redis_*.rs and, through
//! `#[path]`, tools/tests/redis_*.rs): RESP shorthands, a loader that puts every type in
//! every encoding Redis 7.0 writes into a server, and a logical comparison of a key on a
//! server with a decoded archive value.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use coffer_engine::redis::dump;
use coffer_engine::redis::rdb::Value;
use coffer_engine::redis::record::{self, ArchivedKey, KeyAssembler};
use coffer_format::MappedArchive;
use coffer_testkit::{RedisServer, RespConnection, RespValue};

pub fn cmd(c: &mut RespConnection, args: &[&[u8]]) -> RespValue {
    match c.command(args).expect("redis command") {
        RespValue::Error(e) => panic!("{:?}: {e}", String::from_utf8_lossy(args[0])),
        v => v,
    }
}

pub fn bulk(v: &RespValue) -> Vec<u8> {
    match v {
        RespValue::Bulk(b) => b.clone(),
        RespValue::Simple(s) => s.as_bytes().to_vec(),
        RespValue::Integer(i) => i.to_string().into_bytes(),
        other => panic!("not a bulk string: {other:?}"),
    }
}

pub fn array(v: RespValue) -> Vec<RespValue> {
    match v {
        RespValue::Array(a) => a,
        RespValue::Null => vec![],
        other => panic!("not an array: {other:?}"),
    }
}

/// Deterministic pseudo-random bytes (incompressible enough for LZF).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
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

pub const EXPIRE_AT: i64 = 4_102_444_800_123; // 2100-01-01, with milliseconds

pub const LIBRARY: &str = "#!lua name=cofferlib\nredis.register_function('coffer_echo', function(keys, args) return args[1] end)\n";

/// Every type in several encodings, in three databases.
pub fn load(server: &RedisServer) {
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

pub fn archived_keys(a: &MappedArchive) -> BTreeMap<u32, Vec<ArchivedKey>> {
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

pub fn functions(a: &MappedArchive) -> Vec<Vec<u8>> {
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
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

pub fn pairs(v: RespValue) -> Vec<(Vec<u8>, Vec<u8>)> {
    array(v)
        .chunks(2)
        .map(|p| (bulk(&p[0]), bulk(&p[1])))
        .collect()
}

pub fn info_map(v: RespValue) -> BTreeMap<String, RespValue> {
    array(v)
        .chunks(2)
        .map(|p| (String::from_utf8(bulk(&p[0])).unwrap(), p[1].clone()))
        .collect()
}

pub fn id_of(v: &RespValue) -> String {
    String::from_utf8(bulk(v)).unwrap()
}

/// The key's logical value from the server, compared with the decoded archive value.
pub fn compare_logical(c: &mut RespConnection, key: &[u8], value: &Value) {
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

/// Every key of archive `a` is on `server` (database `db` in `db_map(db)`) with the same
/// logical value and expiry, each database holds nothing else, and the archive's function
/// libraries are loaded.
pub fn check_restored(
    server: &RedisServer,
    a: &MappedArchive,
    db_map: impl Fn(u32) -> u32,
) -> usize {
    let rdb_version = a.manifest().app["rdb_version"].as_u64().unwrap() as u32;
    let keys = archived_keys(a);
    let mut c = server.connect().unwrap();
    let c = &mut c;
    let mut n = 0;
    for (db, keys) in &keys {
        let target = db_map(*db);
        cmd(c, &[b"SELECT", target.to_string().as_bytes()]);
        let RespValue::Integer(size) = cmd(c, &[b"DBSIZE"]) else {
            panic!()
        };
        assert_eq!(size as usize, keys.len(), "db {db} → {target}");
        for k in keys {
            let value = coffer_engine::redis::rdb::decode_value(k.type_byte, &k.value, rdb_version)
                .unwrap();
            compare_logical(c, &k.key, &value);
            let RespValue::Integer(at) = cmd(c, &[b"PEXPIRETIME", &k.key]) else {
                panic!()
            };
            assert_eq!(
                k.meta.expire_ms,
                (at >= 0).then_some(at),
                "expiry of {:?}",
                String::from_utf8_lossy(&k.key)
            );
            n += 1;
        }
    }
    let want: BTreeSet<Vec<u8>> = functions(a).into_iter().collect();
    let got: BTreeSet<Vec<u8>> = array(cmd(c, &[b"FUNCTION", b"LIST", b"WITHCODE"]))
        .into_iter()
        .map(|l| bulk(&info_map(l)["library_code"]))
        .collect();
    assert_eq!(got, want, "function libraries");
    n
}
