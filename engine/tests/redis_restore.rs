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

/// `DEBUG DIGEST-VALUE key` on `server`.
fn digest(server: &RedisServer, key: &[u8]) -> Vec<u8> {
    let mut c = server.connect().unwrap();
    let v = array(cmd(&mut c, &[b"DEBUG", b"DIGEST-VALUE", key]));
    bulk(&v[0])
}

/// Strings of 64 MiB, one plain and one LZF-compressed, each over dozens of frames, and
/// collections of several MiB go out streamed (RESTORE with the payload written piece by
/// piece; with type commands, APPENDs of decoded chunks and batches of elements as they
/// are decoded) and come back identical; a big key left out by the pattern is stepped
/// over without losing the keys after it.
#[test]
fn big_strings_stream_through_restore_and_commands() {
    const MIB: usize = 1 << 20;
    let config = |b: coffer_testkit::RedisServerBuilder| {
        b.config("repl-diskless-sync-delay 0")
            .config("enable-debug-command local")
    };
    let src = config(RedisServer::builder()).start().unwrap();
    {
        let mut c = src.connect().unwrap();
        cmd(&mut c, &[b"SET", b"a:before", b"1"]);
        cmd(&mut c, &[b"SET", b"big:noise", &noise(7, 64 * MIB)]);
        let mut text = Vec::with_capacity(64 * MIB);
        let mut i = 0u64;
        while text.len() < 64 * MIB {
            text.extend_from_slice(format!("line {i} of a compressible value\n").as_bytes());
            i += 1;
        }
        text.truncate(64 * MIB);
        cmd(&mut c, &[b"SET", b"big:text", &text]);
        cmd(
            &mut c,
            &[b"PEXPIREAT", b"big:text", EXPIRE_AT.to_string().as_bytes()],
        );
        cmd(&mut c, &[b"RPUSH", b"a:list", b"x", b"y"]);
        // Collections of several MiB each (hashtable, skiplist and quicklist encodings).
        for chunk in 0..200u64 {
            let (mut h, mut z, mut l, mut st) = (
                vec![b"HSET".to_vec(), b"big:hash".to_vec()],
                vec![b"ZADD".to_vec(), b"big:zset".to_vec()],
                vec![b"RPUSH".to_vec(), b"big:list".to_vec()],
                vec![b"SADD".to_vec(), b"big:set".to_vec()],
            );
            for i in chunk * 1000..(chunk + 1) * 1000 {
                h.push(format!("field:{i}").into_bytes());
                h.push(format!("value {i} of a big hash").into_bytes());
                if i % 2 == 0 {
                    z.push(format!("{}", i as f64 * 0.25 - 7.0).into_bytes());
                    z.push(format!("member:{i}").into_bytes());
                }
                l.push(format!("element {i}").into_bytes());
                st.push(format!("m{i}").into_bytes());
            }
            for args in [h, z, l, st] {
                let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                cmd(&mut c, &refs);
            }
        }
        cmd(&mut c, &[b"SET", b"a:after", b"2"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.coffer");
    let writer = ArchiveWriter::create(&path, WriterOptions::default()).unwrap();
    let dump_opts = RedisDumpOptions {
        replica: ReplicaOptions {
            port: src.port(),
            ..ReplicaOptions::default()
        },
        frame_size: 1 << 20,
        ..RedisDumpOptions::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let summary = rt
        .block_on(dump::dump(&dump_opts, &writer, |_| {}))
        .unwrap();
    writer.finish(summary.app).unwrap();
    let a = MappedArchive::open(&path, None).unwrap();
    let db0 = a
        .streams()
        .iter()
        .find(|s| s.descriptor.name == "db0")
        .unwrap();
    assert!(a.data_entries(db0).len() > 64, "the values span frames");
    // One value is stored plain, the other LZF-compressed (encoding 0xC3).
    let ra = coffer_engine::redis::archive::RedisArchive::new(&a).unwrap();
    let mut first_bytes = Vec::new();
    for d in ra.databases().unwrap() {
        ra.keys(&d, &mut |k| {
            if k.key == b"big:noise" || k.key == b"big:text" {
                first_bytes.push((k.key, k.value[0]));
            }
            Ok(())
        })
        .unwrap();
    }
    first_bytes.sort();
    assert_eq!(
        first_bytes,
        vec![(b"big:noise".to_vec(), 0x80), (b"big:text".to_vec(), 0xC3)]
    );

    let big: [&[u8]; 6] = [
        b"big:noise",
        b"big:text",
        b"big:hash",
        b"big:zset",
        b"big:list",
        b"big:set",
    ];
    let want: Vec<Vec<u8>> = big.iter().map(|k| digest(&src, k)).collect();
    for (force_commands, pattern) in [(false, None), (true, None), (false, Some("a:*"))] {
        let t = config(RedisServer::builder()).start().unwrap();
        let opts = RedisRestoreOptions {
            target: ReplicaOptions {
                port: t.port(),
                ..ReplicaOptions::default()
            },
            force_commands,
            pattern: pattern.map(|p| p.as_bytes().to_vec()),
            ..RedisRestoreOptions::default()
        };
        let s = restore::restore(&a, &opts, &|_| {}).unwrap();
        assert!(s.complete(), "{s:?}");
        let mut c = t.connect().unwrap();
        for k in [&b"a:before"[..], b"a:after", b"a:list"] {
            assert_eq!(
                cmd(&mut c, &[b"EXISTS", k]),
                coffer_testkit::RespValue::Integer(1)
            );
        }
        if pattern.is_some() {
            assert_eq!(s.keys, 3, "{s:?}");
            assert_eq!(s.skipped_pattern, 6, "{s:?}");
            assert_eq!(
                cmd(&mut c, &[b"DBSIZE"]),
                coffer_testkit::RespValue::Integer(3)
            );
            continue;
        }
        assert_eq!(s.keys, 9, "{s:?}");
        if force_commands {
            assert_eq!(s.via_commands, 9, "{s:?}");
        } else {
            assert_eq!(s.via_restore, 9, "{s:?}");
        }
        assert_eq!(
            cmd(&mut c, &[b"DBSIZE"]),
            coffer_testkit::RespValue::Integer(9)
        );
        for (k, d) in big.iter().zip(&want) {
            assert_eq!(&digest(&t, k), d, "{}", String::from_utf8_lossy(k));
        }
        for k in &big[..2] {
            assert_eq!(
                cmd(&mut c, &[b"STRLEN", k]),
                coffer_testkit::RespValue::Integer(64 * MIB as i64)
            );
        }
        assert_eq!(
            cmd(&mut c, &[b"PEXPIRETIME", b"big:text"]),
            coffer_testkit::RespValue::Integer(EXPIRE_AT)
        );
    }
}
