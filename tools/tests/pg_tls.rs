//! TLS to PostgreSQL with libpq's sslmode meanings, against a real server that refuses
//! unencrypted TCP connections (so a dump that succeeds was encrypted).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use coffer_testkit::PgServer;

fn sh(cmd: &str, dir: &Path) {
    let o = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA, a server certificate for DNS name `localhost` only (no IP address) signed by it,
/// and a second, unrelated CA.
fn make_certs(dir: &Path) {
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=coffer-test-ca 2>/dev/null",
        dir,
    );
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other-ca.crt -days 2 -subj /CN=other-ca 2>/dev/null",
        dir,
    );
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null",
        dir,
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
    sh(
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile ext.cnf 2>/dev/null",
        dir,
    );
}

/// The server runs as `nobody` when the tests run as root: it must own its key file.
fn hand_to_server(dir: &Path, pg_data: &Path) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(pg_data).unwrap();
    for f in ["server.key", "server.crt"] {
        std::os::unix::fs::chown(dir.join(f), Some(meta.uid()), Some(meta.gid())).unwrap();
    }
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn dump(pg: &PgServer, host: &str, sslmode: &str, root: Option<&Path>, out: &Path) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_coffer"));
    c.args([
        "dump",
        "pg",
        "-h",
        host,
        "-p",
        &pg.port().to_string(),
        "-U",
        pg.user(),
        "-d",
        "postgres",
        "-f",
    ])
    .arg(out)
    .env("PGSSLMODE", sslmode)
    .env_remove("PGSSLROOTCERT")
    .env("HOME", "/nonexistent");
    if let Some(r) = root {
        c.env("PGSSLROOTCERT", r);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn sslmodes_behave_as_in_libpq() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    // the server must read its key: create the directory first, then start with TLS on
    let probe = PgServer::start().unwrap();
    hand_to_server(certs.path(), probe.data_dir());
    drop(probe);
    let pg = PgServer::builder()
        .setting("ssl", "on")
        .setting(
            "ssl_cert_file",
            certs.path().join("server.crt").to_str().unwrap(),
        )
        .setting(
            "ssl_key_file",
            certs.path().join("server.key").to_str().unwrap(),
        )
        .start()
        .unwrap();
    // refuse unencrypted TCP, keep the Unix socket for the harness
    let hba = pg.data_dir().join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("hostnossl all all all reject\n{old}")).unwrap();
    pg.psql(
        "postgres",
        "SELECT pg_reload_conf(); CREATE TABLE t AS SELECT 1 AS x;",
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.coffer");
    let ca = certs.path().join("ca.crt");
    let other = certs.path().join("other-ca.crt");

    let o = dump(&pg, "127.0.0.1", "disable", None, &out);
    assert_eq!(
        o.status.code(),
        Some(6),
        "plaintext must be refused by this server: {}",
        text(&o)
    );
    for (mode, host, root) in [
        ("prefer", "127.0.0.1", None),
        ("require", "127.0.0.1", None),
        ("verify-ca", "127.0.0.1", Some(ca.as_path())),
        ("verify-full", "localhost", Some(ca.as_path())),
    ] {
        let o = dump(&pg, host, mode, root, &out);
        assert_eq!(
            o.status.code(),
            Some(0),
            "sslmode={mode} host={host}: {}",
            text(&o)
        );
        assert!(out.exists());
        std::fs::remove_file(&out).unwrap();
    }
    // the certificate names localhost, not 127.0.0.1
    let o = dump(&pg, "127.0.0.1", "verify-full", Some(&ca), &out);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(
        text(&o).to_lowercase().contains("certificate"),
        "{}",
        text(&o)
    );
    // a chain to an untrusted root fails verify-ca, and require with that root file too
    for mode in ["verify-ca", "require"] {
        let o = dump(&pg, "127.0.0.1", mode, Some(&other), &out);
        assert_eq!(
            o.status.code(),
            Some(6),
            "sslmode={mode} with the wrong CA: {}",
            text(&o)
        );
    }
    let o = dump(&pg, "127.0.0.1", "verify-full", None, &out);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("PGSSLROOTCERT"), "{}", text(&o));
    assert!(!out.exists() && !dir.path().join("a.coffer.partial").exists());
}

/// A server that authenticates by certificate (`hostssl … cert`): refused without a
/// client certificate, served with one from PGSSLCERT/PGSSLKEY, from `sslcert`/`sslkey` in
/// a URL, or from `~/.postgresql/`; a key file others can read is refused, as libpq does.
#[test]
fn a_server_that_authenticates_by_certificate_gets_the_clients() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let probe = PgServer::start().unwrap();
    hand_to_server(certs.path(), probe.data_dir());
    let user = probe.user().to_string();
    drop(probe);
    // the client's certificate names the database user, signed by the server's CA
    sh(
        &format!(
            "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN={user} 2>/dev/null && printf 'extendedKeyUsage=clientAuth\\n' > client-ext.cnf && openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 -extfile client-ext.cnf 2>/dev/null && chmod 600 client.key"
        ),
        certs.path(),
    );
    let file = |f: &str| certs.path().join(f).display().to_string();
    let pg = PgServer::builder()
        .setting("ssl", "on")
        .setting("ssl_cert_file", file("server.crt"))
        .setting("ssl_key_file", file("server.key"))
        .setting("ssl_ca_file", file("ca.crt"))
        .start()
        .unwrap();
    let hba = pg.data_dir().join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("hostnossl all all all reject\nhostssl all all all cert\n{old}"),
    )
    .unwrap();
    pg.psql("postgres", "SELECT pg_reload_conf();").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.coffer");
    let run = |dbname: &str, env: &[(&str, String)], home: &Path| {
        let _ = std::fs::remove_file(&out);
        let mut c = Command::new(env!("CARGO_BIN_EXE_coffer"));
        c.args([
            "dump",
            "pg",
            "-h",
            "localhost",
            "-p",
            &pg.port().to_string(),
        ])
        .args(["-U", &user, "-d", dbname, "-f"])
        .arg(&out)
        .env("HOME", home);
        for v in ["PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"] {
            c.env_remove(v);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let nowhere = Path::new("/nonexistent");
    let verified = [
        ("PGSSLMODE", "verify-full".to_string()),
        ("PGSSLROOTCERT", file("ca.crt")),
    ];

    let o = run("postgres", &verified, nowhere);
    assert_eq!(
        o.status.code(),
        Some(6),
        "no client certificate: {}",
        text(&o)
    );
    assert!(text(&o).contains("certificate"), "{}", text(&o));

    let mut with_env = verified.to_vec();
    with_env.push(("PGSSLCERT", file("client.crt")));
    with_env.push(("PGSSLKEY", file("client.key")));
    let o = run("postgres", &with_env, nowhere);
    assert_eq!(o.status.code(), Some(0), "PGSSLCERT/PGSSLKEY: {}", text(&o));

    let enc = |f: &str| file(f).replace('/', "%2F");
    let url = format!(
        "postgresql://localhost/postgres?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        enc("ca.crt"),
        enc("client.crt"),
        enc("client.key")
    );
    let o = run(&url, &[], nowhere);
    assert_eq!(
        o.status.code(),
        Some(0),
        "sslcert/sslkey in a URL: {}",
        text(&o)
    );

    let home = tempfile::tempdir().unwrap();
    let dot = home.path().join(".postgresql");
    std::fs::create_dir(&dot).unwrap();
    for (from, to) in [
        ("ca.crt", "root.crt"),
        ("client.crt", "postgresql.crt"),
        ("client.key", "postgresql.key"),
    ] {
        std::fs::copy(certs.path().join(from), dot.join(to)).unwrap();
    }
    let mode = |m: u32| {
        std::fs::set_permissions(
            dot.join("postgresql.key"),
            std::fs::Permissions::from_mode(m),
        )
        .unwrap()
    };
    mode(0o600);
    let sslmode = [("PGSSLMODE", "verify-full".to_string())];
    let o = run("postgres", &sslmode, home.path());
    assert_eq!(o.status.code(), Some(0), "~/.postgresql: {}", text(&o));

    mode(0o644);
    let o = run("postgres", &sslmode, home.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("group or world access"), "{}", text(&o));
    assert!(!out.exists());
}
