//! Dumping real redis-servers through the replication stream, then reading the archive
//! back and checking every key against the server: byte for byte against `DUMP`, and
//! logically against the type commands.

use std::collections::BTreeSet;
use std::path::Path;

use coffer_engine::ErrorKind;
use coffer_engine::redis::crc64::crc64;
use coffer_engine::redis::dump::{self, Progress, RedisDumpOptions, RedisDumpSummary};
use coffer_engine::redis::rdb::decode_value;
use coffer_engine::redis::record;
use coffer_engine::redis::replica::ReplicaOptions;
use coffer_format::{ArchiveWriter, MappedArchive, WriterOptions};
use coffer_testkit::{RedisServer, RespValue};

mod redis_common;
use redis_common::*;

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
