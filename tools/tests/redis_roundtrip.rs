//! `coffer dump redis`, `coffer restore redis` and `coffer export redis` end to end, through
//! the binary, against real redis-servers: every type in every encoding Redis writes is
//! dumped (disk-based and diskless), then restored three ways (pipelined RESTORE, type
//! commands, a dump.rdb loaded by a fresh server) and compared key by key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use coffer_format::MappedArchive;
use coffer_testkit::{RedisServer, RespValue};

#[path = "../../engine/tests/redis_common/mod.rs"]
mod redis_common;
use redis_common::*;

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

fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stderr).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn source(diskless: bool) -> RedisServer {
    let server = RedisServer::builder()
        .config(if diskless {
            "repl-diskless-sync yes"
        } else {
            "repl-diskless-sync no"
        })
        .config("repl-diskless-sync-delay 0")
        .config("enable-debug-command local")
        .start()
        .unwrap();
    load(&server);
    server
}

/// Dumps `server` with the CLI into `dir/redis.coffer`.
fn dump(server: &RedisServer, dir: &Path) -> PathBuf {
    let path = dir.join("redis.coffer");
    let o = coffer(&[
        "dump",
        "redis",
        "--url",
        &server.url(),
        "-f",
        s(&path),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j = json_of(&o);
    assert_eq!(j["rdb_version"], 10, "{j}");
    assert!(j["keys"].as_u64().unwrap() > 0, "{j}");
    path
}

fn restore(archive: &Path, target: &RedisServer, extra: &[&str]) -> (Output, serde_json::Value) {
    let url = target.url();
    let mut args = vec!["restore", "redis", s(archive), "--url", &url];
    args.extend_from_slice(extra);
    args.push("--json");
    let o = coffer(&args);
    let j = json_of(&o);
    (o, j)
}

fn round_trip(diskless: bool) {
    let src = source(diskless);
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path());
    let a = MappedArchive::open(&archive, None).unwrap();
    assert_eq!(
        a.manifest().app["transfer"],
        if diskless { "diskless" } else { "disk" }
    );
    let total = a.manifest().app["keys"].as_u64().unwrap();

    // (a) pipelined RESTORE.
    let t = RedisServer::start().unwrap();
    let (o, j) = restore(&archive, &t, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(j["via_restore"], total, "{j}");
    assert_eq!(j["keys"], total, "{j}");
    assert_eq!(j["functions"], 1, "{j}");
    assert_eq!(check_restored(&t, &a, |d| d) as u64, total);

    // (b) type commands only.
    let t = RedisServer::start().unwrap();
    let (o, j) = restore(&archive, &t, &["--no-restore-command"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(j["via_commands"], total, "{j}");
    assert_eq!(j["keys"], total, "{j}");
    check_restored(&t, &a, |d| d);
    // No temporary keys left behind.
    let mut c = t.connect().unwrap();
    for db in ["0", "1", "5"] {
        cmd(&mut c, &[b"SELECT", db.as_bytes()]);
        for k in array(cmd(&mut c, &[b"KEYS", b"*"])) {
            assert!(!bulk(&k).ends_with(b"coffer-restore"), "{k:?}");
        }
    }

    // (c) a dump.rdb that a fresh server loads at start.
    let rdb_dir = tempfile::tempdir().unwrap();
    let rdb = rdb_dir.path().join("restored.rdb");
    let o = coffer(&["restore", "redis", s(&archive), "--rdb", s(&rdb), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(json_of(&o)["keys"], total);
    assert!(!rdb_dir.path().join("restored.rdb.partial").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&rdb).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let t = RedisServer::builder()
        .config(format!("dir {}", s(rdb_dir.path())))
        .config("dbfilename restored.rdb")
        .start()
        .unwrap();
    check_restored(&t, &a, |d| d);
}

#[test]
fn disk_based_dump_restores_three_ways() {
    round_trip(false);
}

#[test]
fn diskless_dump_restores_three_ways() {
    round_trip(true);
}

fn small_source() -> RedisServer {
    let src = RedisServer::builder()
        .config("repl-diskless-sync-delay 0")
        .start()
        .unwrap();
    let mut c = src.connect().unwrap();
    for i in 0..10 {
        cmd(&mut c, &[b"SET", format!("user:{i}").as_bytes(), b"v"]);
    }
    cmd(&mut c, &[b"SET", b"bin", b"\xff\x00\xfe"]);
    cmd(&mut c, &[b"HSET", b"other:h", b"f", b"\xc3\xa9t\xc3\xa9"]);
    cmd(&mut c, &[b"PEXPIREAT", b"other:h", b"4102444800123"]);
    cmd(
        &mut c,
        &[b"ZADD", b"other:z", b"-inf", b"lo", b"2.5", b"mid"],
    );
    cmd(&mut c, &[b"SELECT", b"3"]);
    cmd(&mut c, &[b"SET", b"user:db3", b"x"]);
    src
}

#[test]
fn existing_keys_are_reported_unless_replaced() {
    let src = small_source();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path());
    let t = RedisServer::start().unwrap();
    t.command(&[b"SET", b"user:3", b"old"]).unwrap();
    for extra in [&[][..], &["--no-restore-command"][..]] {
        let (o, j) = restore(&archive, &t, extra);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert_eq!(j["failed"], 0, "{j}");
        assert!(j["existing"].as_u64().unwrap() >= 1, "{j}");
        assert!(
            j["existing_sample"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == "db0 \"user:3\""),
            "{j}"
        );
    }
    assert_eq!(
        t.command(&[b"GET", b"user:3"]).unwrap(),
        RespValue::Bulk(b"old".to_vec())
    );
    // Without --json the names are on stderr.
    let url = t.url();
    let o = coffer(&["restore", "redis", s(&archive), "--url", &url]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("user:3"), "{}", text(&o));
    let (o, j) = restore(&archive, &t, &["--replace"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(j["existing"], 0, "{j}");
    assert_eq!(
        t.command(&[b"GET", b"user:3"]).unwrap(),
        RespValue::Bulk(b"v".to_vec())
    );
}

#[test]
fn flush_needs_confirmation() {
    let src = small_source();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path());
    let t = RedisServer::start().unwrap();
    t.command(&[b"SET", b"stranger", b"1"]).unwrap();
    let url = t.url();
    let o = coffer(&["restore", "redis", s(&archive), "--url", &url, "--flush"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(
        t.command(&[b"EXISTS", b"stranger"]).unwrap(),
        RespValue::Integer(1)
    );
    let (o, _) = restore(&archive, &t, &["--flush", "--yes-i-really-mean-it"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        t.command(&[b"EXISTS", b"stranger"]).unwrap(),
        RespValue::Integer(0)
    );
    let a = MappedArchive::open(&archive, None).unwrap();
    check_restored(&t, &a, |d| d);
}

#[test]
fn pattern_and_db_mapping() {
    let src = small_source();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path());
    let t = RedisServer::start().unwrap();
    let (o, j) = restore(&archive, &t, &["--pattern", "user:*", "--db", "0:7,3:8"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(j["keys"], 11, "{j}");
    let mut c = t.connect().unwrap();
    cmd(&mut c, &[b"SELECT", b"7"]);
    assert_eq!(cmd(&mut c, &[b"DBSIZE"]), RespValue::Integer(10));
    cmd(&mut c, &[b"SELECT", b"8"]);
    assert_eq!(cmd(&mut c, &[b"DBSIZE"]), RespValue::Integer(1));
    cmd(&mut c, &[b"SELECT", b"0"]);
    assert_eq!(cmd(&mut c, &[b"DBSIZE"]), RespValue::Integer(0));
    // Everything into one database, as an RDB file too.
    let rdb = dir.path().join("one.rdb");
    let o = coffer(&[
        "restore",
        "redis",
        s(&archive),
        "--rdb",
        s(&rdb),
        "--db",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = RedisServer::builder()
        .config(format!("dir {}", s(dir.path())))
        .config("dbfilename one.rdb")
        .start()
        .unwrap();
    let mut c = t.connect().unwrap();
    cmd(&mut c, &[b"SELECT", b"2"]);
    assert_eq!(cmd(&mut c, &[b"DBSIZE"]), RespValue::Integer(14));
    // Bad options are usage errors.
    let url = t.url();
    let o = coffer(&["restore", "redis", s(&archive), "--url", &url, "--db", "x"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = coffer(&[
        "dump",
        "redis",
        "--url",
        "ftp://127.0.0.1:1",
        "-f",
        s(&dir.path().join("t")),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("redis://"), "{}", text(&o));
    assert!(!dir.path().join("t").exists());
}

#[test]
fn export_json_lines() {
    let src = small_source();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&src, dir.path());
    let out = dir.path().join("keys.jsonl");
    let o = coffer(&["export", "redis", s(&archive), "--json", "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 14);
    let find = |k: &str| {
        lines
            .iter()
            .find(|l| l["key"] == k)
            .unwrap_or_else(|| panic!("{k}"))
    };
    assert_eq!(find("bin")["value"], serde_json::json!({"base64": "/wD+"}));
    assert_eq!(find("bin")["type"], "string");
    let h = find("other:h");
    assert_eq!(h["type"], "hash");
    assert_eq!(h["value"], serde_json::json!([["f", "été"]]));
    assert_eq!(h["expire_at_ms"], 4102444800123i64);
    assert_eq!(
        find("other:z")["value"],
        serde_json::json!([["lo", "-inf"], ["mid", 2.5]])
    );
    assert_eq!(find("user:db3")["db"], 3);
    assert_eq!(find("user:1")["expire_at_ms"], serde_json::Value::Null);
    // Pattern, to standard output.
    let o = coffer(&[
        "export",
        "redis",
        s(&archive),
        "--json",
        "--pattern",
        "other:*",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
}

#[test]
fn dump_failures_map_to_exit_codes() {
    let server = RedisServer::builder()
        .password("s3cret-pw")
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.coffer");
    let url = format!("redis://:wrong-pw@127.0.0.1:{}", server.port());
    let o = coffer(&["dump", "redis", "--url", &url, "-f", s(&f)]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(!text(&o).contains("wrong-pw"), "{}", text(&o));
    assert!(!f.exists());
    // Nothing listening.
    let port = coffer_testkit::free_port().unwrap();
    let url = format!("redis://127.0.0.1:{port}");
    let o = coffer(&["dump", "redis", "--url", &url, "-f", s(&f)]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    // A user without replication rights.
    let server = RedisServer::builder()
        .config("user reader on >reader-pw ~* &* +@all -psync -sync")
        .start()
        .unwrap();
    let url = format!("redis://reader:reader-pw@127.0.0.1:{}", server.port());
    let o = coffer(&["dump", "redis", "--url", &url, "-f", s(&f)]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    // Unwritable output.
    let server = RedisServer::start().unwrap();
    let o = coffer(&[
        "dump",
        "redis",
        "--url",
        &server.url(),
        "-f",
        "/nonexistent-dir/x.coffer",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    // Encrypted archives need the key to restore.
    let key = dir.path().join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    server.command(&[b"SET", b"k", b"v"]).unwrap();
    let o = coffer(&[
        "--key-file",
        s(&key),
        "dump",
        "redis",
        "--url",
        &server.url(),
        "-f",
        s(&f),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = RedisServer::start().unwrap();
    let url = t.url();
    let o = coffer(&["restore", "redis", s(&f), "--url", &url]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let o = coffer(&[
        "--key-file",
        s(&key),
        "restore",
        "redis",
        s(&f),
        "--url",
        &url,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        t.command(&[b"GET", b"k"]).unwrap(),
        RespValue::Bulk(b"v".to_vec())
    );
}

/// `coffer restore-test` of an archive whose values of every type span several 1 MiB
/// frames (a string LZF-compressed among them): checked in pieces, it passes key by key.
#[test]
fn restore_test_passes_values_spread_over_frames() {
    let server = RedisServer::builder()
        .config("repl-diskless-sync-delay 0")
        .start()
        .unwrap();
    let mut c = server.connect().unwrap();
    // Words drawn at random from a few: LZF halves it, no more.
    let mut x = 88_172_645_463_325_252u64;
    let words: String = (0..1_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ["alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta "][(x % 6) as usize]
        })
        .collect();
    cmd(&mut c, &[b"SET", b"big:text", words.as_bytes()]);
    cmd(&mut c, &[b"SET", b"big:noise", &noise(7, 3 << 20)]);
    cmd(&mut c, &[b"SET", b"small", b"x"]);
    for chunk in 0u32..30 {
        let mut list: Vec<Vec<u8>> = vec![b"RPUSH".to_vec(), b"big:list".to_vec()];
        let mut set: Vec<Vec<u8>> = vec![b"SADD".to_vec(), b"big:set".to_vec()];
        let mut hash: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"big:hash".to_vec()];
        let mut zset: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), b"big:zset".to_vec()];
        for i in chunk * 5000..(chunk + 1) * 5000 {
            // (hex digits, so that LZF cannot shrink the quicklist's nodes below a frame)
            list.push(
                format!("{:016x}", u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)).into_bytes(),
            );
            set.push(format!("member {i}").into_bytes());
            hash.push(format!("field {i}").into_bytes());
            hash.push(format!("value {i}").into_bytes());
            zset.push(format!("{}", f64::from(i) / 3.0).into_bytes());
            zset.push(format!("member {i}").into_bytes());
        }
        for args in [list, set, hash, zset] {
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            cmd(&mut c, &refs);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.coffer");
    let o = coffer(&["dump", "redis", "--url", &server.url(), "-f", s(&path)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Every big value spans frames; the text is LZF-compressed.
    let a = MappedArchive::open(&path, None).unwrap();
    let ra = coffer_engine::redis::archive::RedisArchive::new(&a).unwrap();
    let db0 = ra.databases().unwrap()[0];
    let mut spread = Vec::new();
    ra.db_records(&db0, &mut |r| {
        if let coffer_engine::redis::record::Record::Key {
            key,
            piece,
            more: true,
            ..
        } = r
        {
            spread.push((String::from_utf8_lossy(key).into_owned(), piece[0]));
        }
        Ok(())
    })
    .unwrap();
    spread.sort();
    let names: Vec<&str> = spread.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "big:hash",
            "big:list",
            "big:noise",
            "big:set",
            "big:text",
            "big:zset"
        ]
    );
    assert_eq!(spread[4].1, 0xC3, "the text is LZF-compressed");
    let o = coffer(&["restore-test", s(&path), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["passed"], true, "{j}");
    let db = &j["databases"][0];
    assert_eq!(db["keys"], 7, "{j}");
    assert_eq!(db["live"]["compared"], 7, "{j}");
    assert_eq!(db["live"]["different"], 0, "{j}");
    assert_eq!(db["digest_ok"], true, "{j}");
}
