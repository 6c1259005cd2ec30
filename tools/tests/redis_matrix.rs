//! The Redis/Valkey version matrix, through the `coffer` binary: for each server of
//! [`coffer_testkit::REDIS_VERSIONS`] (Redis 6.2, 7.0, 8.2, Valkey 9.1), keys of every type
//! in every encoding it has (hash field TTLs on 8.2 and Valkey 9) in several databases are
//! dumped, then restored into a fresh server of the same version three ways (pipelined
//! RESTORE, type commands, a dump.rdb it starts on), and across versions (each archive into
//! each other server, older ones included); each result is compared key by key with the
//! source as the servers' own commands show them (`oracle`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use coffer_testkit::{REDIS_VERSIONS, RedisServer, RespConnection, RespValue};

#[path = "../../engine/tests/redis_common/oracle.rs"]
mod oracle;
use oracle::{Compare, Server, Snapshot, assert_same};

fn coffer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(args)
        .env_remove("COFFER_PASSPHRASE")
        .env_remove("COFFER_REDIS_URL")
        .output()
        .expect("run coffer")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The JSON summary --json prints last on standard error (after any warnings).
fn json_of(o: &Output) -> serde_json::Value {
    let err = String::from_utf8_lossy(&o.stderr);
    let start = err.find("\n{").map_or(0, |i| i + 1);
    serde_json::from_str(&err[start..]).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn cmd(c: &mut RespConnection, args: &[&[u8]]) -> RespValue {
    match c.command(args).expect("redis command") {
        RespValue::Error(e) => panic!("{:?}: {e}", String::from_utf8_lossy(args[0])),
        v => v,
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

/// The RDB version each server writes.
fn rdb_version_of(version: &str) -> u64 {
    match version {
        "6.2" => 9,
        "7.0" => 10,
        "8.2" => 12,
        "valkey-9.1" => 80,
        other => panic!("{other}"),
    }
}

fn start(version: &str) -> RedisServer {
    let mut b = RedisServer::builder()
        .version(version)
        .config("repl-diskless-sync-delay 0");
    if version != "6.2" {
        // (6.2 allows DEBUG without it, and does not know the option)
        b = b.config("enable-debug-command local");
    }
    b.start().unwrap()
}

/// Keys of every type in every encoding `server` has, in databases 0, 1, 5 and 15.
fn load(server: &RedisServer) {
    let mut conn = server.connect().unwrap();
    let c = &mut conn;
    let info = Server::of(c);
    // Strings: empty, integers (int-encoded), LZF-compressible, binary, large.
    cmd(c, &[b"SET", b"str:empty", b""]);
    cmd(c, &[b"SET", b"str:int", b"12345"]);
    cmd(c, &[b"SET", b"str:neg", b"-7"]);
    cmd(c, &[b"SET", b"str:bigint", b"-9223372036854775808"]);
    cmd(c, &[b"SET", b"str:lzf", "abc".repeat(2000).as_bytes()]);
    let all: Vec<u8> = (0..=255).collect();
    cmd(c, &[b"SET", b"bin:\x00\xff\r\n", &all]);
    cmd(c, &[b"SET", b"str:large", &noise(1, 200_000)]);
    cmd(c, &[b"SET", b"12", b"an int-encoded key name"]);
    // Expiries: absolute, and relative (an hour).
    cmd(c, &[b"SET", b"str:ttl", b"v"]);
    let at = EXPIRE_AT.to_string();
    cmd(c, &[b"PEXPIREAT", b"str:ttl", at.as_bytes()]);
    cmd(c, &[b"SET", b"str:ttl-rel", b"w", b"PX", b"3600000"]);
    // Lists: one small node (listpack, ziplist on 6.2); many nodes (quicklist); a plain
    // node (an element over the packed threshold, a 7.0+ debug knob).
    cmd(
        c,
        &[b"RPUSH", b"list:small", b"a", b"", b"7", b"-1", b"\x00"],
    );
    for chunk in 0..15u64 {
        let mut args: Vec<Vec<u8>> = vec![b"RPUSH".to_vec(), b"list:big".to_vec()];
        for i in chunk * 100..(chunk + 1) * 100 {
            args.push(if i % 100 == 0 {
                noise(i, 5000)
            } else {
                i.to_string().into_bytes()
            });
        }
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        cmd(c, &refs);
    }
    // A quicklist whose inner nodes are LZF-compressed (in memory and in the RDB).
    cmd(c, &[b"CONFIG", b"SET", b"list-compress-depth", b"1"]);
    let words = "lorem ipsum dolor sit amet ".repeat(20);
    for i in 0..200u64 {
        let w = format!("{i} {words}");
        cmd(c, &[b"RPUSH", b"list:lzf", w.as_bytes()]);
    }
    cmd(c, &[b"CONFIG", b"SET", b"list-compress-depth", b"0"]);
    if info.v7() {
        cmd(c, &[b"DEBUG", b"QUICKLIST-PACKED-THRESHOLD", b"1000"]);
        // (over 8 KiB, so a quicklist on 7.2+ too)
        let (a, b, d) = (noise(9, 3000), noise(10, 3000), noise(11, 3000));
        cmd(c, &[b"RPUSH", b"list:plain", b"small", &a, &b, &d, b"tail"]);
    }
    // Sets: intset, small strings (listpack on 7.2+), big (hashtable), big integers.
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
    cmd(c, &[b"SADD", b"set:small", b"a", b"b", b"", b"\xff"]);
    let mut big: Vec<Vec<u8>> = vec![b"SADD".to_vec(), b"set:big".to_vec()];
    let mut ints: Vec<Vec<u8>> = vec![b"SADD".to_vec(), b"set:bigint".to_vec()];
    for i in 0..700u64 {
        big.push(format!("member-{i}").into_bytes());
        ints.push((i * 1000).to_string().into_bytes());
    }
    for args in [big, ints] {
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        cmd(c, &refs);
    }
    // Sorted sets: small (listpack, ziplist on 6.2) with special scores, big (skiplist).
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
    let mut z: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), b"zset:big".to_vec()];
    for i in 0..300u64 {
        z.push(format!("{}", (i as f64) * 1.5 - 100.0).into_bytes());
        z.push(format!("m{i}").into_bytes());
    }
    z.extend([
        b"inf".to_vec(),
        b"pinf".to_vec(),
        b"-inf".to_vec(),
        b"ninf".to_vec(),
    ]);
    let refs: Vec<&[u8]> = z.iter().map(Vec::as_slice).collect();
    cmd(c, &refs);
    // Hashes: small (listpack, ziplist on 6.2), big (hashtable), binary; with a key TTL.
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
    let mut h: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"hash:big".to_vec()];
    for i in 0..600u64 {
        h.push(format!("field{i}").into_bytes());
        h.push(noise(i, (i % 50) as usize));
    }
    let refs: Vec<&[u8]> = h.iter().map(Vec::as_slice).collect();
    cmd(c, &refs);
    cmd(c, &[b"HSET", b"hash:bin", b"\x00\x01", b"\xfe\xff"]);
    let at1 = (EXPIRE_AT + 1).to_string();
    cmd(c, &[b"PEXPIREAT", b"hash:big", at1.as_bytes()]);
    // Hash field TTLs (Redis 7.4+, Valkey 9+): small (listpack-ex on Redis), big
    // (hashtable), every field with one (HSETEX), one with a key TTL too.
    if info.field_ttls() {
        cmd(
            c,
            &[b"HSET", b"hfe:small", b"a", b"1", b"b", b"2", b"c", b"3"],
        );
        cmd(
            c,
            &[
                b"HPEXPIREAT",
                b"hfe:small",
                at.as_bytes(),
                b"FIELDS",
                b"1",
                b"a",
            ],
        );
        cmd(
            c,
            &[b"HPEXPIRE", b"hfe:small", b"3600000", b"FIELDS", b"1", b"b"],
        );
        let mut h: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"hfe:big".to_vec()];
        for i in 0..600u64 {
            h.push(format!("field{i}").into_bytes());
            h.push(format!("value {i}").into_bytes());
        }
        let refs: Vec<&[u8]> = h.iter().map(Vec::as_slice).collect();
        cmd(c, &refs);
        for i in 0..20u64 {
            let at = (EXPIRE_AT + i as i64 % 3).to_string();
            let f = format!("field{}", i * 7);
            cmd(
                c,
                &[
                    b"HPEXPIREAT",
                    b"hfe:big",
                    at.as_bytes(),
                    b"FIELDS",
                    b"1",
                    f.as_bytes(),
                ],
            );
        }
        cmd(
            c,
            &[
                b"HSETEX",
                b"hfe:all",
                b"PXAT",
                at1.as_bytes(),
                b"FIELDS",
                b"2",
                b"x",
                b"1",
                b"y",
                b"\xff",
            ],
        );
        cmd(c, &[b"PEXPIREAT", b"hfe:all", at.as_bytes()]);
    }
    // Streams: entries with differing fields, deleted entries (one of them pending),
    // groups, consumers with and without pending entries, deliveries counted; an empty
    // stream with a group; a stream of several nodes.
    for i in 1..=20u64 {
        let id = format!("1700000000000-{i}");
        if i % 3 == 0 {
            let n = i.to_string();
            cmd(
                c,
                &[
                    b"XADD",
                    b"stream:s",
                    id.as_bytes(),
                    b"other",
                    b"x",
                    b"n",
                    n.as_bytes(),
                ],
            );
        } else {
            let m = format!("hello {i}");
            cmd(
                c,
                &[b"XADD", b"stream:s", id.as_bytes(), b"msg", m.as_bytes()],
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
    for (consumer, count) in [(&b"alice"[..], &b"5"[..]), (b"bob", b"3")] {
        cmd(
            c,
            &[
                b"XREADGROUP",
                b"GROUP",
                b"g1",
                consumer,
                b"COUNT",
                count,
                b"STREAMS",
                b"stream:s",
                b">",
            ],
        );
    }
    cmd(c, &[b"XACK", b"stream:s", b"g1", b"1700000000000-1"]);
    // Delivered twice, then deleted while pending.
    cmd(
        c,
        &[
            b"XCLAIM",
            b"stream:s",
            b"g1",
            b"bob",
            b"0",
            b"1700000000000-2",
            b"RETRYCOUNT",
            b"4",
        ],
    );
    cmd(c, &[b"XDEL", b"stream:s", b"1700000000000-3"]);
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
        let n = i.to_string();
        cmd(
            c,
            &[
                b"XADD",
                b"stream:big",
                b"*",
                b"i",
                n.as_bytes(),
                b"pad",
                &noise(i, 40),
            ],
        );
    }
    if info.v7() {
        cmd(c, &[b"FUNCTION", b"LOAD", LIBRARY.as_bytes()]);
    }
    // Other databases.
    cmd(c, &[b"SELECT", b"1"]);
    cmd(c, &[b"SET", b"db1:key", b"one"]);
    cmd(c, &[b"RPUSH", b"db1:list", b"x"]);
    cmd(c, &[b"PEXPIREAT", b"db1:list", at.as_bytes()]);
    cmd(c, &[b"SELECT", b"5"]);
    cmd(c, &[b"SADD", b"db5:set", b"s"]);
    cmd(c, &[b"SELECT", b"15"]);
    cmd(c, &[b"HSET", b"db15:hash", b"k", b"v"]);
    if info.field_ttls() {
        cmd(
            c,
            &[
                b"HSETEX",
                b"db15:hfe",
                b"PX",
                b"7200000",
                b"FIELDS",
                b"1",
                b"k",
                b"v",
            ],
        );
    }
}

/// The source holds every encoding its version has (else the matrix would silently
/// test less).
fn check_encodings(version: &str, snap: &Snapshot) {
    let v62 = version == "6.2";
    let v70 = version == "7.0";
    let compact = if v62 { "ziplist" } else { "listpack" };
    let mut want = vec![
        ("str:int", "int"),
        ("str:lzf", "raw"),
        (
            "list:small",
            if v62 || v70 { "quicklist" } else { "listpack" },
        ),
        ("list:big", "quicklist"),
        ("list:lzf", "quicklist"),
        ("set:int", "intset"),
        (
            "set:small",
            if v62 || v70 { "hashtable" } else { "listpack" },
        ),
        ("set:big", "hashtable"),
        ("set:bigint", "hashtable"),
        ("zset:small", compact),
        ("zset:big", "skiplist"),
        ("hash:small", compact),
        ("hash:big", "hashtable"),
        ("stream:s", "stream"),
    ];
    if !v62 {
        want.push(("list:plain", "quicklist"));
    }
    match version {
        "8.2" => want.extend([
            ("hfe:small", "listpackex"),
            ("hfe:big", "hashtable"),
            ("hfe:all", "listpackex"),
        ]),
        "valkey-9.1" => want.extend([("hfe:small", "hashtable"), ("hfe:big", "hashtable")]),
        _ => {}
    }
    for (key, encoding) in want {
        assert_eq!(snap.encoding(0, key), encoding, "{version}: {key}");
    }
    let field_ttls: usize = snap.keys.values().map(|k| k.field_ttls.len()).sum();
    assert_eq!(
        field_ttls > 0,
        matches!(version, "8.2" | "valkey-9.1"),
        "{version}"
    );
}

/// A loaded source of `version`, its snapshot and its archive (in `dir`).
fn source(version: &str, dir: &Path) -> (RedisServer, Snapshot, PathBuf) {
    let src = start(version);
    load(&src);
    let snap = Snapshot::take(&src);
    check_encodings(version, &snap);
    let path = dir.join(format!("{version}.coffer"));
    let o = coffer(&[
        "dump",
        "redis",
        "--url",
        &src.url(),
        "-f",
        s(&path),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{version}: {}", text(&o));
    let j = json_of(&o);
    assert_eq!(j["rdb_version"], rdb_version_of(version), "{version}: {j}");
    assert_eq!(j["keys"], snap.keys.len() as u64, "{version}: {j}");
    (src, snap, path)
}

fn restore(archive: &Path, target: &RedisServer, extra: &[&str]) -> Output {
    let url = target.url();
    let mut args = vec!["restore", "redis", s(archive), "--url", &url];
    args.extend_from_slice(extra);
    args.push("--json");
    coffer(&args)
}

/// A fresh server of `version` started on the dump.rdb coffer writes of `archive`, when
/// coffer wrote one (exit 0, or 1: something left out); else coffer's output.
fn restore_rdb(
    archive: &Path,
    version: &str,
    extra: &[&str],
) -> Result<(RedisServer, Output), Output> {
    let dir = tempfile::tempdir().unwrap();
    let rdb = dir.path().join("restored.rdb");
    let mut args = vec!["restore", "redis", s(archive), "--rdb", s(&rdb), "--json"];
    args.extend_from_slice(extra);
    let o = coffer(&args);
    if !matches!(o.status.code(), Some(0 | 1)) {
        assert!(!rdb.exists(), "{}", text(&o));
        return Err(o);
    }
    let t = RedisServer::builder()
        .version(version)
        .config(format!("dir {}", s(dir.path())))
        .config("dbfilename restored.rdb")
        .start()
        .unwrap();
    // The server has read the file: the directory may go.
    drop(dir);
    Ok((t, o))
}

/// One server version through the three restore paths.
fn same_version(version: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (_src, snap, archive) = source(version, dir.path());
    let total = snap.keys.len() as u64;
    let functions = u64::from(!snap.functions.is_empty());

    // (a) pipelined RESTORE.
    let t = start(version);
    let o = restore(&archive, &t, &[]);
    assert_eq!(o.status.code(), Some(0), "{version}: {}", text(&o));
    let j = json_of(&o);
    assert_eq!(j["via_restore"], total, "{version}: {j}");
    assert_eq!(j["keys"], total, "{version}: {j}");
    assert_eq!(j["functions"], functions, "{version}: {j}");
    let how = Compare::default();
    assert_same(
        &format!("{version} RESTORE"),
        &snap,
        &Snapshot::take(&t),
        &how,
    );

    // (b) type commands only.
    let t = start(version);
    let o = restore(&archive, &t, &["--no-restore-command"]);
    assert_eq!(o.status.code(), Some(0), "{version}: {}", text(&o));
    let j = json_of(&o);
    assert_eq!(j["via_commands"], total, "{version}: {j}");
    assert_eq!(j["keys"], total, "{version}: {j}");
    let how = Compare {
        streams_by_commands: true,
        ..Compare::default()
    };
    assert_same(
        &format!("{version} commands"),
        &snap,
        &Snapshot::take(&t),
        &how,
    );

    // (c) a dump.rdb a fresh server starts on.
    let (t, o) = restore_rdb(&archive, version, &[])
        .unwrap_or_else(|o| panic!("{version} --rdb: {}", text(&o)));
    assert_eq!(o.status.code(), Some(0), "{version}: {}", text(&o));
    let j = json_of(&o);
    assert_eq!(
        (&j["keys"], &j["reencoded"]),
        (&total.into(), &0.into()),
        "{j}"
    );
    assert_same(
        &format!("{version} --rdb"),
        &snap,
        &Snapshot::take(&t),
        &Compare::default(),
    );
}

#[test]
fn redis_6_2_through_restore_commands_and_rdb() {
    same_version("6.2");
}

#[test]
fn redis_7_0_through_restore_commands_and_rdb() {
    same_version("7.0");
}

#[test]
fn redis_8_2_through_restore_commands_and_rdb() {
    same_version("8.2");
}

#[test]
fn valkey_9_1_through_restore_commands_and_rdb() {
    same_version("valkey-9.1");
}

#[test]
fn every_version_is_in_the_matrix() {
    assert_eq!(REDIS_VERSIONS, ["6.2", "7.0", "8.2", "valkey-9.1"]);
}

/// The oracle itself: a restored copy changed in every way a restore could go wrong
/// shows each change, and only those, in both of its modes.
#[test]
fn the_oracle_sees_every_difference() {
    let dir = tempfile::tempdir().unwrap();
    let (_src, snap, archive) = source("8.2", dir.path());
    let t = start("8.2");
    let o = restore(&archive, &t, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut c = t.connect().unwrap();
    let c = &mut c;
    let later = (EXPIRE_AT + 1000).to_string();
    let changes: [&[&[u8]]; 12] = [
        &[b"SET", b"str:int", b"12346"],
        &[b"PEXPIREAT", b"str:ttl", later.as_bytes()],
        &[
            b"HPEXPIREAT",
            b"hfe:small",
            later.as_bytes(),
            b"FIELDS",
            b"1",
            b"a",
        ],
        &[
            b"XCLAIM",
            b"stream:s",
            b"g1",
            b"alice",
            b"0",
            b"1700000000000-5",
            b"RETRYCOUNT",
            b"9",
        ],
        &[
            b"XGROUP",
            b"CREATECONSUMER",
            b"stream:empty",
            b"g",
            b"newbie",
        ],
        &[b"ZADD", b"zset:small", b"-2.25", b"neg"],
        &[b"LSET", b"list:big", b"3", b"x"],
        &[b"SREM", b"set:big", b"member-1"],
        &[b"HSET", b"hash:big", b"field1", b"changed"],
        &[b"HSET", b"hfe:big", b"field0", b"changed"],
        &[b"SELECT", b"5"],
        &[b"DEL", b"db5:set"],
    ];
    for args in changes {
        cmd(c, args);
    }
    cmd(c, &[b"SELECT", b"1"]);
    cmd(c, &[b"PERSIST", b"db1:list"]);
    cmd(c, &[b"SELECT", b"15"]);
    cmd(c, &[b"SET", b"extra", b"x"]);
    let got = Snapshot::take(&t);
    let want = [
        "db0 \"str:int\"",
        "db0 \"str:ttl\"",
        "db0 \"hfe:small\"",
        "db0 \"stream:s\"",
        "db0 \"stream:empty\"",
        "db0 \"zset:small\"",
        "db0 \"list:big\"",
        "db0 \"set:big\"",
        "db0 \"hash:big\"",
        "db0 \"hfe:big\"",
        "db5 \"db5:set\"",
        "db1 \"db1:list\"",
        "db15 \"extra\"",
    ];
    for how in [
        Compare::default(),
        Compare {
            streams_by_commands: true,
            common_fields_only: true,
            ..Compare::default()
        },
    ] {
        let d = oracle::differences(&snap, &got, &how);
        // Each line starts with the key: `db0 "name": …`.
        let mut named: Vec<&str> = d
            .iter()
            .map(|l| &l[..l.find("\": ").map_or(l.len(), |i| i + 1)])
            .collect();
        named.sort();
        named.dedup();
        let mut w = want.to_vec();
        w.sort();
        assert_eq!(named, w, "{how:?}:\n{}", d.join("\n"));
    }
}

/// Whether a restore of `from`'s streams into `to` rebuilds them with commands: the
/// target reads no RDB as new as the stream's encoding (v1: RDB 9, v2: 10, v3: 11;
/// Valkey reads Redis' up to 11).
fn streams_by_commands(from: &str, to: &str) -> bool {
    let need = match from {
        "6.2" => 9,
        "7.0" => 10,
        _ => 11,
    };
    let reads = match to {
        "6.2" => 9,
        "7.0" => 10,
        "8.2" => 12,
        _ => 11,
    };
    need > reads
}

fn dbsize(server: &RedisServer) -> i64 {
    let mut c = server.connect().unwrap();
    (0..16)
        .map(|db: u32| {
            cmd(&mut c, &[b"SELECT", db.to_string().as_bytes()]);
            match cmd(&mut c, &[b"DBSIZE"]) {
                RespValue::Integer(n) => n,
                other => panic!("{other:?}"),
            }
        })
        .sum()
}

/// The archive of `from` restored into every other server of the matrix, newer and
/// older: by RESTORE where the target reads the value's encoding, else (automatically)
/// by commands; field TTLs into a server without them refused, naming the keys, then
/// dropped with --drop-field-ttl; function libraries into 6.2 reported.
fn across(from: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (_src, snap, archive) = source(from, dir.path());
    let total = snap.keys.len() as u64;
    let ttl_keys: Vec<String> = snap
        .keys
        .iter()
        .filter(|(_, k)| !k.field_ttls.is_empty())
        .map(|((db, k), _)| format!("db{db} {:?}", String::from_utf8_lossy(k)))
        .collect();
    let ttls: usize = snap.keys.values().map(|k| k.field_ttls.len()).sum();
    for to in REDIS_VERSIONS.into_iter().filter(|v| *v != from) {
        let what = format!("{from} → {to}");
        let t = start(to);
        let target = Server::of(&mut t.connect().unwrap());
        let drop_ttls = ttls > 0 && !target.field_ttls();
        let no_functions = !snap.functions.is_empty() && !target.v7();
        if drop_ttls {
            // Refused before anything is written, naming the keys.
            let o = restore(&archive, &t, &[]);
            assert_eq!(o.status.code(), Some(3), "{what}: {}", text(&o));
            let err = text(&o);
            assert!(err.contains("cannot hold hash field TTLs"), "{what}: {err}");
            assert!(err.contains("--drop-field-ttl"), "{what}: {err}");
            for k in &ttl_keys {
                assert!(err.contains(k.as_str()), "{what}: {k} not named: {err}");
            }
            assert_eq!(dbsize(&t), 0, "{what}: something was restored");
        }
        let extra: &[&str] = if drop_ttls {
            &["--drop-field-ttl"]
        } else {
            &[]
        };
        let o = restore(&archive, &t, extra);
        assert_eq!(
            o.status.code(),
            Some(if no_functions { 1 } else { 0 }),
            "{what}: {}",
            text(&o)
        );
        let j = json_of(&o);
        assert_eq!(j["keys"], total, "{what}: {j}");
        assert_eq!(j["restore_refused"], 0, "{what}: {j}");
        assert_eq!(j["failed"], u64::from(no_functions), "{what}: {j}");
        if no_functions {
            let e = j["errors"][0].as_str().unwrap();
            assert!(
                e.contains("cofferlib") && e.contains("no functions"),
                "{what}: {e}"
            );
        }
        if drop_ttls {
            assert_eq!(j["field_ttls_dropped"], ttls as u64, "{what}: {j}");
            assert_eq!(j["field_ttl_keys"], ttl_keys.len() as u64, "{what}: {j}");
        } else {
            assert_eq!(j["field_ttls_dropped"], 0, "{what}: {j}");
        }
        let how = Compare {
            streams_by_commands: streams_by_commands(from, to),
            common_fields_only: true,
            field_ttls_dropped: drop_ttls,
            no_functions,
        };
        assert_same(&what, &snap, &Snapshot::take(&t), &how);

        // A dump.rdb of the target's own RDB version, which it starts on.
        let what = format!("{what} --rdb");
        let v = rdb_version_of(to).to_string();
        let rdb_args = ["--rdb-version", v.as_str()];
        if drop_ttls {
            let o = restore_rdb(&archive, to, &rdb_args)
                .map(|(_, o)| o)
                .unwrap_or_else(|o| o);
            assert_eq!(o.status.code(), Some(3), "{what}: {}", text(&o));
            let err = text(&o);
            assert!(err.contains("--drop-field-ttl"), "{what}: {err}");
            for k in &ttl_keys {
                assert!(err.contains(k.as_str()), "{what}: {k} not named: {err}");
            }
        }
        let mut args = rdb_args.to_vec();
        args.extend_from_slice(extra);
        let (t, o) =
            restore_rdb(&archive, to, &args).unwrap_or_else(|o| panic!("{what}: {}", text(&o)));
        assert_eq!(
            o.status.code(),
            Some(if no_functions { 1 } else { 0 }),
            "{what}: {}",
            text(&o)
        );
        let j = json_of(&o);
        assert_eq!(j["keys"], total, "{what}: {j}");
        // Re-encoded: into an older version; and Redis' field TTLs into Valkey's.
        let older = rdb_version_of(to) < rdb_version_of(from);
        assert_eq!(
            j["reencoded"].as_u64().unwrap() > 0,
            older || (from, to) == ("8.2", "valkey-9.1"),
            "{what}: {j}"
        );
        assert_eq!(
            j["functions_left_out"].as_array().unwrap().len(),
            usize::from(no_functions),
            "{what}: {j}"
        );
        if drop_ttls {
            assert_eq!(j["field_ttls_dropped"], ttls as u64, "{what}: {j}");
            assert_eq!(j["field_ttl_keys"], ttl_keys.len() as u64, "{what}: {j}");
        }
        let how = Compare {
            streams_by_commands: false,
            ..how
        };
        assert_same(&what, &snap, &Snapshot::take(&t), &how);
    }
}

#[test]
fn redis_6_2_archive_into_every_other_server() {
    across("6.2");
}

#[test]
fn redis_7_0_archive_into_every_other_server() {
    across("7.0");
}

#[test]
fn redis_8_2_archive_into_every_other_server() {
    across("8.2");
}

#[test]
fn valkey_9_1_archive_into_every_other_server() {
    across("valkey-9.1");
}

/// A target whose version coffer cannot learn (it has no INFO and no HELLO): RESTORE is
/// tried as for a server like the source; each refusal lowers the payload version, or,
/// at a type's oldest, sends that type as commands; every refused key is rebuilt with
/// commands. (One command in flight at a time, so that each refusal is heard before the
/// next key goes.)
#[test]
fn refused_restores_are_redone_with_commands() {
    use coffer_engine::redis::replica::ReplicaOptions;
    use coffer_engine::redis::restore::{RedisRestoreOptions, restore as engine_restore};
    let src = start("8.2");
    let mut c = src.connect().unwrap();
    for i in 0..30 {
        cmd(
            &mut c,
            &[b"SET", format!("plain:{i}").as_bytes(), b"string"],
        );
    }
    cmd(&mut c, &[b"SADD", b"set:listpack", b"a", b"b", b"c"]);
    cmd(&mut c, &[b"HSET", b"hash", b"f", b"v"]);
    cmd(&mut c, &[b"RPUSH", b"list", b"x", b"y"]);
    cmd(&mut c, &[b"XADD", b"stream", b"1-1", b"f", b"v"]);
    cmd(&mut c, &[b"XGROUP", b"CREATE", b"stream", b"g", b"0"]);
    let snap = Snapshot::take(&src);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.coffer");
    let o = coffer(&["dump", "redis", "--url", &src.url(), "-f", s(&archive)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let a = coffer_format::MappedArchive::open(&archive, None).unwrap();

    // (An ACL user without INFO still has HELLO, which tells: the commands go.)
    let t = RedisServer::builder()
        .version("7.0")
        .config("rename-command INFO \"\"")
        .config("rename-command HELLO \"\"")
        .start()
        .unwrap();
    let opts = RedisRestoreOptions {
        target: ReplicaOptions::from_url(&t.url()).unwrap(),
        window_commands: 1,
        ..RedisRestoreOptions::default()
    };
    let sum = engine_restore(&a, &opts, &|_| {}).unwrap();
    assert_eq!(sum.target_version, None);
    assert_eq!((sum.keys, sum.failed), (34, 0), "{sum:?}");
    // RESTOREs at 12, then at 11, are refused (one key or two each: the next key's
    // version is chosen before the last reply is in), and the listpack set's and the v3
    // stream's at 11, their oldest; then every other key goes at 10.
    assert!((2..=6).contains(&sum.restore_refused), "{sum:?}");
    assert!(sum.via_restore >= 34 - 6, "{sum:?}");
    assert_eq!(sum.via_restore + sum.via_commands, 34, "{sum:?}");
    let how = Compare {
        streams_by_commands: true,
        common_fields_only: true,
        ..Compare::default()
    };
    let got = Snapshot::take_as(&t, Server::redis(7, 0));
    assert_same("8.2 → 7.0 without INFO", &snap, &got, &how);
}

/// A server in cluster mode (one node with every slot) writes slot information into its
/// RDB (Redis 8.2: the SLOT_INFO opcode; Valkey: a `slot-info` AUX field): its dump parses
/// and restores into a plain server of the same version, key by key.
#[test]
fn cluster_mode_rdbs_parse() {
    for version in ["7.0", "8.2", "valkey-9.1"] {
        let src = RedisServer::builder()
            .version(version)
            .config("repl-diskless-sync-delay 0")
            .config("cluster-enabled yes")
            .config("cluster-config-file nodes.conf")
            .start()
            .unwrap();
        let mut c = src.connect().unwrap();
        cmd(&mut c, &[b"CLUSTER", b"ADDSLOTSRANGE", b"0", b"16383"]);
        let ok = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            match cmd(&mut c, &[b"CLUSTER", b"INFO"]) {
                RespValue::Bulk(b) => String::from_utf8_lossy(&b).contains("cluster_state:ok"),
                _ => false,
            }
        });
        assert!(ok, "{version}: the cluster did not come up");
        for i in 0..50 {
            let k = format!("key:{i}");
            cmd(&mut c, &[b"SET", k.as_bytes(), b"v", b"PX", b"3600000"]);
        }
        cmd(&mut c, &[b"HSET", b"{tag}h", b"f", b"v"]);
        cmd(&mut c, &[b"RPUSH", b"{tag}l", b"a", b"b"]);
        cmd(&mut c, &[b"XADD", b"{tag}s", b"1-1", b"f", b"v"]);
        let snap = Snapshot::take(&src);
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("c.coffer");
        let o = coffer(&[
            "dump",
            "redis",
            "--url",
            &src.url(),
            "-f",
            s(&archive),
            "--json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{version}: {}", text(&o));
        assert_eq!(json_of(&o)["keys"], 53, "{version}");
        let t = start(version);
        let o = restore(&archive, &t, &[]);
        assert_eq!(o.status.code(), Some(0), "{version}: {}", text(&o));
        assert_same(
            &format!("{version} cluster"),
            &snap,
            &Snapshot::take(&t),
            &Compare::default(),
        );
    }
}
