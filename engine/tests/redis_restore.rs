//! Engine-level restores: values cut across many frames are reassembled into one RESTORE
//! payload, and a tiny pipeline window (a few commands, a few bytes in flight) still
//! restores everything, through both RESTORE and type commands.

use coffer_engine::redis::dump::{self, RedisDumpOptions};
use coffer_engine::redis::rdbfile::{self, RdbWriteOptions};
use coffer_engine::redis::replica::ReplicaOptions;
use coffer_engine::redis::restore::{self, RedisRestoreOptions};
use coffer_format::{ArchiveWriter, MappedArchive, WriterOptions};
use coffer_testkit::RedisServer;

mod redis_common;
use redis_common::*;

fn archive_of(server: &RedisServer, dir: &std::path::Path) -> MappedArchive {
    let path = dir.join("r.coffer");
    let writer = ArchiveWriter::create(&path, WriterOptions::default()).unwrap();
    let opts = RedisDumpOptions {
        replica: ReplicaOptions {
            port: server.port(),
            ..ReplicaOptions::default()
        },
        frame_size: 16 << 10,
        read_size: 8 << 10,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let summary = rt.block_on(dump::dump(&opts, &writer, |_| {})).unwrap();
    writer.finish(summary.app).unwrap();
    MappedArchive::open(&path, None).unwrap()
}

#[test]
fn split_values_and_a_tiny_window() {
    let src = RedisServer::builder()
        .config("repl-diskless-sync-delay 0")
        .config("enable-debug-command local")
        .start()
        .unwrap();
    load(&src);
    let dir = tempfile::tempdir().unwrap();
    let a = archive_of(&src, dir.path());
    // Some value really spans frames.
    let db0 = a
        .streams()
        .iter()
        .find(|s| s.descriptor.name == "db0")
        .unwrap();
    assert!(a.data_entries(db0).len() > 20);
    let total = a.manifest().app["keys"].as_u64().unwrap();
    for force_commands in [false, true] {
        let t = RedisServer::start().unwrap();
        let opts = RedisRestoreOptions {
            target: ReplicaOptions {
                port: t.port(),
                ..ReplicaOptions::default()
            },
            force_commands,
            window_commands: 3,
            window_bytes: 1 << 10,
            batch_elements: 7,
            batch_bytes: 100,
            ..RedisRestoreOptions::default()
        };
        let s = restore::restore(&a, &opts, &|_| {}).unwrap();
        assert!(s.complete(), "{s:?}");
        assert_eq!(s.keys, total);
        assert_eq!(check_restored(&t, &a, |d| d) as u64, total);
    }
    // The RDB writer streams pieces: the file parses back to the same keys.
    let rdb = dir.path().join("x.rdb");
    let s = rdbfile::write_rdb(&a, &rdb, &RdbWriteOptions::default()).unwrap();
    assert_eq!(s.keys, total);
    let parsed =
        coffer_engine::redis::rdb::parse_bytes(&std::fs::read(&rdb).unwrap(), 4096).unwrap();
    assert_eq!(parsed.keys.len() as u64, total);
    assert_eq!(parsed.functions, functions(&a));
}

#[test]
fn refused_connection_and_password() {
    let dir = tempfile::tempdir().unwrap();
    let src = RedisServer::builder()
        .config("repl-diskless-sync-delay 0")
        .start()
        .unwrap();
    src.command(&[b"SET", b"k", b"v"]).unwrap();
    let a = archive_of(&src, dir.path());
    let t = RedisServer::builder().password("pw-123").start().unwrap();
    let mut opts = RedisRestoreOptions {
        target: ReplicaOptions {
            port: t.port(),
            ..ReplicaOptions::default()
        },
        ..RedisRestoreOptions::default()
    };
    let e = restore::restore(&a, &opts, &|_| {}).err().unwrap();
    assert_eq!(e.kind(), coffer_engine::ErrorKind::Auth, "{e}");
    opts.target.password = Some("nope-456".into());
    let e = restore::restore(&a, &opts, &|_| {}).err().unwrap();
    assert_eq!(e.kind(), coffer_engine::ErrorKind::Auth, "{e}");
    assert!(!e.to_string().contains("nope-456"), "{e}");
    opts.target.port = coffer_testkit::free_port().unwrap();
    let e = restore::restore(&a, &opts, &|_| {}).err().unwrap();
    assert_eq!(e.kind(), coffer_engine::ErrorKind::Connect, "{e}");
    // A database the server does not have ends the restore.
    opts.target.port = t.port();
    opts.target.password = Some("pw-123".into());
    opts.db_map = coffer_engine::redis::archive::DbMap::All(99);
    let e = restore::restore(&a, &opts, &|_| {}).err().unwrap();
    assert_eq!(e.kind(), coffer_engine::ErrorKind::Server, "{e}");
}
