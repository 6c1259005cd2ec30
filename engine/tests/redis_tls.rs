//! `rediss://`: a dump and a restore over TLS against redis-servers listening on a TLS
//! port with a throwaway CA (made with the `openssl` command line), compared with
//! `DEBUG DIGEST`; a server whose certificate does not chain to the given CA, or does not
//! name the host connected to, is refused with a clear error.

use std::path::Path;
use std::process::Command;

use coffer_engine::ErrorKind;
use coffer_engine::redis::dump::{self, RedisDumpOptions};
use coffer_engine::redis::replica::ReplicaOptions;
use coffer_engine::redis::restore::{self, RedisRestoreOptions};
use coffer_format::{ArchiveWriter, MappedArchive, WriterOptions};
use coffer_testkit::{RedisServer, RespValue};

mod redis_common;
use redis_common::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`{name}-ca.crt`) and a server certificate it signed for `localhost` only
/// (`{name}.crt`, `{name}.key`).
fn certificates(dir: &Path, name: &str) {
    let (ca_key, ca_crt) = (format!("{name}-ca.key"), format!("{name}-ca.crt"));
    let mut a = vec!["req", "-x509", "-nodes", "-days", "2"];
    a.extend(EC_KEY);
    a.extend(["-keyout", &ca_key, "-out", &ca_crt, "-subj"]);
    let subj = format!("/CN=coffer test CA {name}");
    a.push(&subj);
    openssl(dir, &a);
    signed(
        dir,
        name,
        name,
        "/CN=localhost",
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
}

/// A client certificate (`{name}.crt`, `{name}.key`) signed by `{ca}-ca.crt`.
fn client_certificate(dir: &Path, ca: &str, name: &str) {
    signed(
        dir,
        ca,
        name,
        &format!("/CN={name}"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
    );
}

const EC_KEY: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

/// A new key (`{name}.key`) and its certificate (`{name}.crt`) for `subject`, signed by
/// `{ca}-ca.crt` with the X.509 extensions `ext`.
fn signed(dir: &Path, ca: &str, name: &str, subject: &str, ext: &str) {
    let (key, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    let mut a = vec!["req", "-nodes"];
    a.extend(EC_KEY);
    a.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
    openssl(dir, &a);
    let ext_file = format!("{name}-ext.cnf");
    std::fs::write(dir.join(&ext_file), ext).unwrap();
    let (ca_crt, ca_key) = (format!("{ca}-ca.crt"), format!("{ca}-ca.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext_file,
            "-out",
            &crt,
        ],
    );
}

/// A server with a TLS port (and its plain port, which the harness uses).
fn tls_server(dir: &Path) -> (RedisServer, u16) {
    tls_server_with(dir, "no")
}

/// The same, asking clients for a certificate signed by its CA when `auth_clients` is
/// `yes` (Redis's default once TLS is on).
fn tls_server_with(dir: &Path, auth_clients: &str) -> (RedisServer, u16) {
    let port = coffer_testkit::free_port().unwrap();
    let path = |f: &str| dir.join(f).display().to_string();
    let s = RedisServer::builder()
        .config("repl-diskless-sync-delay 0")
        .config("enable-debug-command local")
        .config(format!("tls-port {port}"))
        .config(format!("tls-cert-file {}", path("good.crt")))
        .config(format!("tls-key-file {}", path("good.key")))
        .config(format!("tls-ca-cert-file {}", path("good-ca.crt")))
        .config(format!("tls-auth-clients {auth_clients}"))
        .start()
        .unwrap();
    (s, port)
}

fn digest(s: &RedisServer) -> Vec<u8> {
    bulk(&s.command(&[b"DEBUG", b"DIGEST"]).unwrap())
}

#[test]
fn dump_and_restore_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path(), "good");
    certificates(dir.path(), "other");
    let (src, src_tls) = tls_server(dir.path());
    load(&src);
    // A value over several frames, streamed through TLS both ways.
    src.command(&[b"SET", b"big", &noise(3, 3 << 20)]).unwrap();
    let ca = dir.path().join("good-ca.crt");
    let url = |port: u16, ca: &Path| {
        format!(
            "rediss://localhost:{port}?cacert={}",
            ca.display().to_string().replace('/', "%2F")
        )
    };

    let path = dir.path().join("tls.coffer");
    let writer = ArchiveWriter::create(&path, WriterOptions::default()).unwrap();
    let opts = RedisDumpOptions {
        replica: ReplicaOptions::from_url(&url(src_tls, &ca)).unwrap(),
        frame_size: 1 << 20,
        ..RedisDumpOptions::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let summary = rt.block_on(dump::dump(&opts, &writer, |_| {})).unwrap();
    writer.finish(summary.app).unwrap();
    let a = MappedArchive::open(&path, None).unwrap();

    let (dst, dst_tls) = tls_server(dir.path());
    let ropts = RedisRestoreOptions {
        target: ReplicaOptions::from_url(&url(dst_tls, &ca)).unwrap(),
        ..RedisRestoreOptions::default()
    };
    let s = restore::restore(&a, &ropts, &|_| {}).unwrap();
    assert!(s.complete(), "{s:?}");
    assert_eq!(digest(&dst), digest(&src));
    assert_eq!(
        dst.command(&[b"STRLEN", b"big"]).unwrap(),
        RespValue::Integer(3 << 20)
    );

    // A CA that did not sign the server's certificate.
    let other = dir.path().join("other-ca.crt");
    let e = restore::restore(
        &a,
        &RedisRestoreOptions {
            target: ReplicaOptions::from_url(&url(dst_tls, &other)).unwrap(),
            ..RedisRestoreOptions::default()
        },
        &|_| {},
    )
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
    let e = rt
        .block_on(dump::dump(
            &RedisDumpOptions {
                replica: ReplicaOptions::from_url(&url(src_tls, &other)).unwrap(),
                ..RedisDumpOptions::default()
            },
            &ArchiveWriter::create(&dir.path().join("x.coffer"), WriterOptions::default()).unwrap(),
            |_| {},
        ))
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");

    // The right CA, but a host name the certificate does not carry.
    let mut wrong_name = ReplicaOptions::from_url(&url(dst_tls, &ca)).unwrap();
    wrong_name.host = "127.0.0.1".into();
    let e = restore::restore(
        &a,
        &RedisRestoreOptions {
            target: wrong_name,
            ..RedisRestoreOptions::default()
        },
        &|_| {},
    )
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");

    // Plain redis:// to a TLS port is no TLS at all: it fails, it does not hang.
    let mut plain = ReplicaOptions::from_url(&format!("redis://127.0.0.1:{dst_tls}")).unwrap();
    plain.read_timeout = std::time::Duration::from_secs(5);
    assert!(
        restore::restore(
            &a,
            &RedisRestoreOptions {
                target: plain,
                ..RedisRestoreOptions::default()
            },
            &|_| {},
        )
        .is_err()
    );
}

/// A server that asks for a client certificate: refused without one (a clear error, no
/// hang), served with one, for the dump and for the restore.
#[test]
fn a_server_that_asks_for_a_client_certificate_gets_one() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path(), "good");
    client_certificate(dir.path(), "good", "client");
    certificates(dir.path(), "other");
    client_certificate(dir.path(), "other", "stranger");
    let (src, src_tls) = tls_server_with(dir.path(), "yes");
    load(&src);
    let enc = |p: &Path| p.display().to_string().replace('/', "%2F");
    let url = |port: u16, who: Option<&str>| {
        let mut u = format!(
            "rediss://localhost:{port}?cacert={}",
            enc(&dir.path().join("good-ca.crt"))
        );
        if let Some(who) = who {
            u.push_str(&format!(
                "&cert={}&key={}",
                enc(&dir.path().join(format!("{who}.crt"))),
                enc(&dir.path().join(format!("{who}.key")))
            ));
        }
        u
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dump_with = |who: Option<&str>, file: &str| {
        let path = dir.path().join(file);
        let writer = ArchiveWriter::create(&path, WriterOptions::default()).unwrap();
        let mut replica = ReplicaOptions::from_url(&url(src_tls, who)).unwrap();
        replica.read_timeout = std::time::Duration::from_secs(10);
        let opts = RedisDumpOptions {
            replica,
            ..RedisDumpOptions::default()
        };
        let summary = rt.block_on(dump::dump(&opts, &writer, |_| {}))?;
        writer.finish(summary.app).unwrap();
        Ok::<_, coffer_engine::Error>(path)
    };
    for (who, why) in [(None, "no certificate"), (Some("stranger"), "another CA's")] {
        let e = dump_with(who, "refused.coffer")
            .err()
            .unwrap_or_else(|| panic!("{why}"));
        assert_eq!(e.kind(), ErrorKind::Connect, "{why}: {e}");
        assert!(e.to_string().contains("client certificate"), "{why}: {e}");
    }
    let path = dump_with(Some("client"), "ok.coffer").unwrap();
    let a = MappedArchive::open(&path, None).unwrap();
    let (dst, dst_tls) = tls_server_with(dir.path(), "yes");
    let ropts = RedisRestoreOptions {
        target: ReplicaOptions::from_url(&url(dst_tls, Some("client"))).unwrap(),
        ..RedisRestoreOptions::default()
    };
    let s = restore::restore(&a, &ropts, &|_| {}).unwrap();
    assert!(s.complete(), "{s:?}");
    assert_eq!(digest(&dst), digest(&src));
    assert!(
        restore::restore(
            &a,
            &RedisRestoreOptions {
                target: ReplicaOptions::from_url(&url(dst_tls, None)).unwrap(),
                ..RedisRestoreOptions::default()
            },
            &|_| {},
        )
        .is_err()
    );
}
