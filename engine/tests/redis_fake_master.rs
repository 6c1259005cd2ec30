//! The replica side of the handshake and transfer against a scripted master, for what a
//! real server will not do on demand: keep-alive newlines, an end mark split across
//! reads and followed by the command stream, a refused PSYNC, a corrupt RDB, a transfer
//! cut short, a wrong end mark.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_engine::ErrorKind;
use coffer_engine::redis::dump::{self, RedisDumpOptions};
use coffer_engine::redis::rdb;
use coffer_engine::redis::record::KeyAssembler;
use coffer_engine::redis::replica::ReplicaOptions;
use coffer_format::{ArchiveWriter, MappedArchive, WriterOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn vector(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vectors/rdb-librdb")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "the librdb test vectors are missing ({}): {e}",
            path.display()
        )
    })
}

#[derive(Clone, Default)]
struct Script {
    refuse_psync: bool,
    eof_mark: bool,
    payload: Vec<u8>,
    /// Bytes per write of the payload (with a pause between writes).
    piece: usize,
    /// Close the connection after this many payload bytes.
    cut_at: Option<usize>,
    wrong_mark: bool,
}

const MARK: &[u8; 40] = b"0123456789abcdef0123456789abcdef01234567";
const REPLID: &str = "8a1c7d3e5f60718293a4b5c6d7e8f90123456789";

/// Every command the fake master received.
type Log = Arc<Mutex<Vec<Vec<Vec<u8>>>>>;

/// Parses one RESP array command from the front of `buf`.
fn parse_command(buf: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let i = buf[at..].windows(2).position(|w| w == b"\r\n")?;
        Some((&buf[at..at + i], at + i + 2))
    }
    let (head, mut at) = line(buf, 0)?;
    let n: usize = std::str::from_utf8(&head[1..]).ok()?.parse().ok()?;
    let mut args = Vec::new();
    for _ in 0..n {
        let (len, next) = line(buf, at)?;
        let len: usize = std::str::from_utf8(&len[1..]).ok()?.parse().ok()?;
        let data = buf.get(next..next + len)?;
        args.push(data.to_vec());
        at = next + len + 2;
        if at > buf.len() {
            return None;
        }
    }
    Some((args, at))
}

/// Serves one replica connection by `script`; records every command received.
async fn fake_master(script: Script) -> (u16, Log, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.set_nodelay(true).unwrap();
        let mut buf = Vec::new();
        loop {
            let mut chunk = [0u8; 4096];
            let n = match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            while let Some((args, used)) = parse_command(&buf) {
                buf.drain(..used);
                log.lock().unwrap().push(args.clone());
                let name = String::from_utf8_lossy(&args[0]).to_uppercase();
                let reply: Vec<u8> = match name.as_str() {
                    "PING" => b"+PONG\r\n".to_vec(),
                    "INFO" => {
                        let body = "# Server\r\nredis_version:7.2.4\r\n";
                        format!("${}\r\n{body}\r\n", body.len()).into_bytes()
                    }
                    "REPLCONF" if args[1].eq_ignore_ascii_case(b"ack") => continue,
                    "REPLCONF" | "AUTH" => b"+OK\r\n".to_vec(),
                    "PSYNC" if script.refuse_psync => b"-ERR unknown command 'PSYNC'\r\n".to_vec(),
                    "PSYNC" | "SYNC" => {
                        let mut head = Vec::new();
                        if name == "PSYNC" {
                            head.extend_from_slice(b"\n\n");
                            head.extend_from_slice(
                                format!("+FULLRESYNC {REPLID} 1234\r\n").as_bytes(),
                            );
                        }
                        head.extend_from_slice(b"\n");
                        if script.eof_mark {
                            head.extend_from_slice(b"$EOF:");
                            head.extend_from_slice(MARK);
                            head.extend_from_slice(b"\r\n");
                        } else {
                            head.extend_from_slice(
                                format!("${}\r\n", script.payload.len()).as_bytes(),
                            );
                        }
                        sock.write_all(&head).await.unwrap();
                        let mut body = script.payload.clone();
                        if let Some(cut) = script.cut_at {
                            body.truncate(cut);
                        } else if script.eof_mark {
                            body.extend_from_slice(if script.wrong_mark {
                                &MARK[..]
                            } else {
                                MARK
                            });
                            if script.wrong_mark {
                                let n = body.len();
                                body[n - 1] ^= 1;
                            }
                            // The command stream may follow right behind the mark.
                            body.extend_from_slice(b"*1\r\n$4\r\nping\r\n");
                        }
                        for piece in body.chunks(script.piece.max(1)) {
                            if sock.write_all(piece).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            // Log the ACKs as they come: once the replica hangs up with
                            // bytes unread (the command stream), the kernel drops ours.
                            let mut acks = [0u8; 4096];
                            if let Ok(n) = sock.try_read(&mut acks) {
                                buf.extend_from_slice(&acks[..n]);
                                while let Some((args, used)) = parse_command(&buf) {
                                    buf.drain(..used);
                                    log.lock().unwrap().push(args);
                                }
                            }
                        }
                        if script.cut_at.is_some() {
                            return; // drops the socket: the master "dies"
                        }
                        continue;
                    }
                    _ => b"-ERR unexpected\r\n".to_vec(),
                };
                sock.write_all(&reply).await.unwrap();
            }
        }
    });
    (port, seen, task)
}

fn options(port: u16) -> RedisDumpOptions {
    RedisDumpOptions {
        replica: ReplicaOptions {
            port,
            password: Some("pw".into()),
            ack_interval: Duration::from_millis(40),
            read_timeout: Duration::from_secs(10),
            ..ReplicaOptions::default()
        },
        frame_size: 1 << 10,
        read_size: 512,
    }
}

async fn run(script: Script) -> (coffer_engine::Result<Vec<rdb::RdbKey>>, Vec<Vec<Vec<u8>>>) {
    let (port, seen, task) = fake_master(script).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.coffer");
    let writer = ArchiveWriter::create(&path, WriterOptions::default()).unwrap();
    let result = dump::dump(&options(port), &writer, |_| {}).await;
    let result = match result {
        Err(e) => {
            drop(writer);
            assert_eq!(
                std::fs::read_dir(dir.path()).unwrap().count(),
                0,
                "left files behind"
            );
            Err(e)
        }
        Ok(summary) => {
            writer.finish(summary.app.clone()).unwrap();
            let a = MappedArchive::open(&path, None).unwrap();
            let mut keys = Vec::new();
            for s in a
                .streams()
                .iter()
                .filter(|s| s.descriptor.kind == dump::KIND_DB)
            {
                let mut asm = KeyAssembler::new();
                for e in a.data_entries(s) {
                    asm.push_frame(&a.read_frame(e).unwrap()).unwrap();
                }
                for k in asm.finish().unwrap() {
                    keys.push(rdb::RdbKey {
                        header: rdb::KeyHeader {
                            db: u64::from(k.db),
                            key: k.key,
                            type_byte: k.type_byte,
                            meta: k.meta,
                        },
                        raw: k.value,
                    });
                }
            }
            assert_eq!(a.manifest().app["server_version"], "7.2.4");
            Ok(keys)
        }
    };
    // The master logs what it read until the replica hung up.
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    let seen = seen.lock().unwrap().clone();
    (result, seen)
}

fn expected_keys(name: &str) -> Vec<rdb::RdbKey> {
    let mut keys = rdb::parse_bytes(&vector(name), 4096).unwrap().keys;
    keys.sort_by(|a, b| (a.header.db, &a.header.key).cmp(&(b.header.db, &b.header.key)));
    keys
}

fn sorted(mut keys: Vec<rdb::RdbKey>) -> Vec<rdb::RdbKey> {
    keys.sort_by(|a, b| (a.header.db, &a.header.key).cmp(&(b.header.db, &b.header.key)));
    keys
}

#[tokio::test]
async fn diskless_mark_split_across_reads_and_followed_by_the_stream() {
    for piece in [7, 40, 333] {
        let payload = vector("misc_with_stream.rdb");
        let (keys, seen) = run(Script {
            eof_mark: true,
            payload,
            piece,
            ..Script::default()
        })
        .await;
        assert_eq!(
            sorted(keys.unwrap()),
            expected_keys("misc_with_stream.rdb"),
            "piece {piece}"
        );
        let names: Vec<String> = seen
            .iter()
            .map(|c| String::from_utf8_lossy(&c[0]).to_uppercase())
            .collect();
        assert_eq!(&names[..3], ["PING", "AUTH", "INFO"]);
        let psync = seen.iter().find(|c| c[0] == b"PSYNC").unwrap();
        assert_eq!(psync[1..], [b"?".to_vec(), b"-1".to_vec()]);
        // The slow transfer (about 2 s) saw ACKs carrying the offset.
        assert!(
            piece != 7
                || seen
                    .iter()
                    .any(|c| c.len() == 3 && c[1] == b"ACK" && c[2] == b"1234"),
            "no ACK in {:?}",
            seen.iter()
                .map(|c| String::from_utf8_lossy(&c.concat()).into_owned())
                .collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn psync_refused_falls_back_to_sync() {
    let payload = vector("multiple_dbs.rdb");
    let (keys, seen) = run(Script {
        refuse_psync: true,
        payload,
        piece: 50,
        ..Script::default()
    })
    .await;
    assert_eq!(sorted(keys.unwrap()), expected_keys("multiple_dbs.rdb"));
    assert!(seen.iter().any(|c| c[0] == b"SYNC"));
}

#[tokio::test]
async fn corrupt_rdb_is_rejected_and_nothing_is_sealed() {
    for eof_mark in [false, true] {
        let payload = vector("invalid_chksum_v8.rdb");
        let (r, _) = run(Script {
            payload,
            eof_mark,
            piece: 64,
            ..Script::default()
        })
        .await;
        let err = r.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
    }
}

#[tokio::test]
async fn transfer_cut_short_says_how_much_arrived() {
    let payload = vector("misc_with_stream.rdb");
    let len = payload.len();
    let (r, _) = run(Script {
        payload: payload.clone(),
        cut_at: Some(1000),
        piece: 300,
        ..Script::default()
    })
    .await;
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("after 1000 of {len} bytes")),
        "{err}"
    );
    let (r, _) = run(Script {
        payload,
        cut_at: Some(1000),
        piece: 300,
        eof_mark: true,
        ..Script::default()
    })
    .await;
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains("after 1000 bytes"), "{err}");
}

#[tokio::test]
async fn wrong_end_mark_is_a_protocol_error() {
    let payload = vector("single_key.rdb");
    let (r, _) = run(Script {
        payload,
        eof_mark: true,
        wrong_mark: true,
        piece: 10,
        ..Script::default()
    })
    .await;
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
}
