//! Connecting the way libpq users expect: `-d` takes a database name, a `postgres://` URL
//! or a `key=value` conninfo string; `-h -p -U`; the `PG*` environment variables;
//! `~/.pgpass`; `sslmode`, `sslrootcert`, and a client certificate (`sslcert`, `sslkey`,
//! `PGSSLCERT`, `PGSSLKEY`, else `~/.postgresql/postgresql.crt` and `.key`) for servers
//! that authenticate by certificate.
//!
//! Precedence follows libpq's `expand_dbname`: values inside a URL or conninfo given as the
//! database override the separate options, which override the environment, which overrides
//! the defaults. tokio-postgres parses URLs and conninfo strings but reads neither the
//! environment nor `.pgpass`; that part is here. Passwords never reach a message: errors
//! name `user@host:port/db` only.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config};

use super::tls::{self, Verify};
use crate::client_cert::ClientCert;

use crate::error::{Error, ErrorKind, Result};

/// What the user gave on the command line (each `None` falls back to the environment).
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// `-d/--dbname`: a name, a `postgres://` URL or a `key=value` conninfo string.
    pub dbname: Option<String>,
    /// `-h/--host`: a host name, an IP address, or a Unix socket directory.
    pub host: Option<String>,
    /// `-p/--port`.
    pub port: Option<u16>,
    /// `-U/--username`.
    pub user: Option<String>,
}

/// A resolved connection target.
#[derive(Clone)]
pub struct Target {
    config: Config,
    display: String,
    verify: Verify,
    client: Option<ClientCert>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display) // never the password
    }
}

impl Target {
    /// `user@host:port/db`, for messages.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or_default()
    }

    /// The same server, another database (for `--create` and restore tests).
    pub fn with_dbname(&self, dbname: &str) -> Target {
        let mut config = self.config.clone();
        config.dbname(dbname);
        let display = describe(&config);
        Target {
            config,
            display,
            verify: self.verify.clone(),
            client: self.client.clone(),
        }
    }
}

/// The process environment, abstracted so tests can resolve without touching it.
pub trait Env {
    /// Value of an environment variable.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// The connection fields, resolved in precedence order before a `Config` is built (the
/// `Config` builder appends hosts and ports rather than replacing them).
#[derive(Default)]
struct Fields {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    ssl: SslParams,
}

/// The TLS parameters of a URL, conninfo string or the environment; tokio-postgres knows
/// only some sslmode values, and no certificate files, so they are handled here.
#[derive(Default, Debug, PartialEq, Eq)]
struct SslParams {
    mode: Option<String>,
    rootcert: Option<String>,
    cert: Option<String>,
    key: Option<String>,
}

impl Fields {
    /// Overrides every field that `other` sets.
    fn apply(&mut self, other: Fields) {
        self.host = other.host.or(self.host.take());
        self.port = other.port.or(self.port);
        self.user = other.user.or(self.user.take());
        self.password = other.password.or(self.password.take());
        self.dbname = other.dbname.or(self.dbname.take());
        let (ssl, theirs) = (&mut self.ssl, other.ssl);
        ssl.mode = theirs.mode.or(ssl.mode.take());
        ssl.rootcert = theirs.rootcert.or(ssl.rootcert.take());
        ssl.cert = theirs.cert.or(ssl.cert.take());
        ssl.key = theirs.key.or(ssl.key.take());
    }
}

impl ConnectOptions {
    /// Resolves options, environment, defaults and `.pgpass` into a target.
    pub fn resolve(&self, env: &dyn Env) -> Result<Target> {
        let mut f = Fields {
            host: Some(default_host()),
            port: Some(5432),
            user: Some(env.var("USER").unwrap_or_else(|| "postgres".into())),
            ..Fields::default()
        };
        f.apply(Fields {
            host: env.var("PGHOST"),
            port: env
                .var("PGPORT")
                .map(|p| parse_port(&p, "PGPORT"))
                .transpose()?,
            user: env.var("PGUSER"),
            password: env.var("PGPASSWORD"),
            dbname: env.var("PGDATABASE"),
            ssl: SslParams {
                mode: env.var("PGSSLMODE"),
                rootcert: env.var("PGSSLROOTCERT"),
                cert: env.var("PGSSLCERT"),
                key: env.var("PGSSLKEY"),
            },
        });
        f.apply(Fields {
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            ..Fields::default()
        });
        if let Some(d) = &self.dbname {
            if d.starts_with("postgres://") || d.starts_with("postgresql://") || d.contains('=') {
                f.apply(parse_conninfo(d)?);
            } else {
                f.dbname = Some(d.clone());
            }
        }
        // libpq's default is prefer: encrypt when the server offers it
        let root = tls::default_root(f.ssl.rootcert.clone(), env.var("HOME"));
        let (ssl_mode, verify) = tls::policy(f.ssl.mode.as_deref().unwrap_or("prefer"), root)?;
        let client = match ssl_mode {
            SslMode::Disable => None,
            _ => tls::client_cert(f.ssl.cert.take(), f.ssl.key.take(), env.var("HOME"))?,
        };
        let user = f.user.clone().unwrap_or_default();
        let dbname = f.dbname.clone().unwrap_or_else(|| user.clone());
        let host = f.host.clone().unwrap_or_else(default_host);
        let port = f.port.unwrap_or(5432);
        let mut config = Config::new();
        if host.starts_with('/') {
            config.host_path(&host);
        } else {
            config.host(&host);
        }
        config
            .port(port)
            .user(&user)
            .dbname(&dbname)
            .ssl_mode(ssl_mode)
            .application_name("coffer")
            .connect_timeout(Duration::from_secs(
                env.var("PGCONNECT_TIMEOUT")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(30),
            ));
        let password = f.password.or_else(|| {
            let passfile = env
                .var("PGPASSFILE")
                .map(PathBuf::from)
                .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".pgpass")));
            let pg_host = if host.starts_with('/') {
                "localhost"
            } else {
                host.as_str()
            };
            passfile
                .and_then(|file| pgpass_lookup(&file, [pg_host, &port.to_string(), &dbname, &user]))
        });
        if let Some(p) = password {
            config.password(p);
        }
        let display = describe(&config);
        Ok(Target {
            config,
            display,
            verify,
            client,
        })
    }
}

/// libpq's compiled-in default on Debian is the socket directory /var/run/postgresql;
/// where that does not exist, TCP to localhost.
fn default_host() -> String {
    if Path::new("/var/run/postgresql").is_dir() {
        "/var/run/postgresql".into()
    } else {
        "localhost".into()
    }
}

/// The fields a URL or conninfo string sets. The TLS parameters are taken out first
/// ([`SslParams`]).
fn parse_conninfo(s: &str) -> Result<Fields> {
    let (rest, ssl) = take_ssl_params(s);
    // never echo the string: it may hold a password
    let c = Config::from_str(&rest).map_err(|_| {
        Error::new(
            ErrorKind::Usage,
            "invalid connection string or URL given as the database",
        )
    })?;
    Ok(Fields {
        host: c.get_hosts().first().map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        }),
        // tokio-postgres fills in 5432 for a URL host without a port; libpq leaves the port
        // to -p and PGPORT then
        port: c
            .get_ports()
            .first()
            .copied()
            .filter(|_| !rest.contains("://") || url_has_port(&rest)),
        user: c.get_user().map(str::to_string),
        password: c
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        dbname: c.get_dbname().map(str::to_string),
        ssl,
    })
}

/// Whether a `postgres://` URL names a port (`host:port`, `[v6]:port`, in any host of a
/// comma-separated list).
fn url_has_port(url: &str) -> bool {
    let after = url.split_once("://").map_or(url, |(_, a)| a);
    let authority = after.split(['/', '?']).next().unwrap_or("");
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    hosts.split(',').any(|h| match h.rsplit_once(']') {
        Some((_, after_bracket)) => after_bracket.starts_with(':'),
        None => h.contains(':'),
    })
}

/// Removes `sslmode`, `sslrootcert`, `sslcert` and `sslkey` from a URL's query or a
/// conninfo string.
fn take_ssl_params(s: &str) -> (String, SslParams) {
    let mut ssl = SslParams::default();
    let mut take = |key: &str, value: String| {
        let slot = match key {
            "sslmode" => &mut ssl.mode,
            "sslrootcert" => &mut ssl.rootcert,
            "sslcert" => &mut ssl.cert,
            "sslkey" => &mut ssl.key,
            _ => return false,
        };
        *slot = Some(value);
        true
    };
    if s.contains("://") {
        if let Some((base, query)) = s.split_once('?') {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|kv| {
                    !kv.split_once('=')
                        .is_some_and(|(k, v)| take(k, percent_decode(v)))
                })
                .collect();
            let rest = if kept.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{}", kept.join("&"))
            };
            return (rest, ssl);
        }
        return (s.to_string(), ssl);
    }
    let mut kept = Vec::new();
    for token in conninfo_tokens(s) {
        match token.split_once('=') {
            Some((k, v)) if take(k.trim(), v.trim().trim_matches('\'').to_string()) => {}
            _ => kept.push(token),
        }
    }
    (kept.join(" "), ssl)
}

/// Splits a conninfo string on white space outside single quotes.
fn conninfo_tokens(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in s.chars() {
        match c {
            _ if escaped => {
                cur.push(c);
                escaped = false;
            }
            '\\' => {
                cur.push(c);
                escaped = true;
            }
            '\'' => {
                cur.push(c);
                quoted = !quoted;
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `%XX` escapes in a URL query value (a `%` without two hex digits stays as it is).
fn percent_decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v)
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_port(p: &str, what: &str) -> Result<u16> {
    p.parse()
        .map_err(|_| Error::new(ErrorKind::Usage, format!("{what}: invalid port {p:?}")))
}

fn describe(c: &Config) -> String {
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "?".into(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        c.get_user().unwrap_or("?"),
        c.get_dbname().unwrap_or("?")
    )
}

/// Looks up a password in a `.pgpass` file: `host:port:database:user:password`, `*`
/// matching anything, `\:` and `\\` escaped. Like libpq, a file readable by group or
/// others is ignored.
fn pgpass_lookup(path: &Path, want: [&str; 4]) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "password file {} has group or world access; ignored",
            path.display()
        );
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let fields = split_pgpass(line);
            if fields.len() < 5 {
                return None;
            }
            let matches = want.iter().zip(&fields).all(|(w, f)| f == "*" || f == w);
            matches.then(|| fields[4..].join(":"))
        })
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().expect("non-empty").push(n);
                }
            }
            ':' => fields.push(String::new()),
            _ => fields.last_mut().expect("non-empty").push(ch),
        }
    }
    fields
}

/// Opens a connection; the connection task runs on the current tokio runtime.
pub async fn connect(target: &Target) -> Result<Client> {
    let (client, connection) = target
        .config
        .connect(tls::connector(&target.verify, target.client.as_ref())?)
        .await
        .map_err(|e| connect_error(target, e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("connection closed: {e}");
        }
    });
    Ok(client)
}

/// Classifies a connection failure: wrong password, no such database, refused…
fn connect_error(target: &Target, e: tokio_postgres::Error) -> Error {
    use tokio_postgres::error::SqlState;
    let who = target.display();
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let (kind, what) = if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            (ErrorKind::Auth, "authentication failed")
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            // cannot connect: the database is part of the connection target
            (ErrorKind::Connect, "no such database")
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            // e.g. no CONNECT privilege on the database: still a failure to connect
            (ErrorKind::Connect, "permission denied")
        } else {
            (ErrorKind::Connect, "server refused the connection")
        };
        return Error::new(kind, format!("{what} for {who}: {}", db.message()));
    }
    // the cause chain says what failed (TLS: "invalid peer certificate: NotValidForName")
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        msg.push_str(&format!(": {c}"));
        cause = c.source();
    }
    if msg.contains("password missing") {
        return Error::new(
            ErrorKind::Auth,
            format!("{who}: the server asks for a password; set PGPASSWORD or use ~/.pgpass"),
        );
    }
    Error::new(
        ErrorKind::Connect,
        format!("cannot connect to {who}: {msg}"),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct FakeEnv(HashMap<&'static str, String>);
    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    fn env(pairs: &[(&'static str, &str)]) -> FakeEnv {
        FakeEnv(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect())
    }

    #[test]
    fn precedence_url_over_flags_over_env() {
        let e = env(&[
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
        ]);
        let t = ConnectOptions::default().resolve(&e).unwrap();
        assert_eq!(t.display(), "envuser@envhost:6000/envdb");
        let o = ConnectOptions {
            host: Some("flaghost".into()),
            port: Some(7000),
            ..Default::default()
        };
        assert_eq!(
            o.resolve(&e).unwrap().display(),
            "envuser@flaghost:7000/envdb"
        );
        let o = ConnectOptions {
            dbname: Some("postgres://urluser:secret@urlhost:8000/urldb".into()),
            host: Some("flaghost".into()),
            ..Default::default()
        };
        let t = o.resolve(&e).unwrap();
        assert_eq!(t.display(), "urluser@urlhost:8000/urldb");
        assert!(!format!("{t:?}").contains("secret"));
        let o = ConnectOptions {
            dbname: Some("host=/tmp/sock port=9000 dbname=x".into()),
            ..Default::default()
        };
        assert_eq!(o.resolve(&e).unwrap().display(), "envuser@/tmp/sock:9000/x");
    }

    #[test]
    fn dbname_defaults_to_user_and_bad_values_are_clear() {
        let t = ConnectOptions {
            user: Some("alice".into()),
            ..Default::default()
        }
        .resolve(&env(&[]))
        .unwrap();
        assert_eq!(t.dbname(), "alice");
        let err = ConnectOptions::default()
            .resolve(&env(&[("PGPORT", "x")]))
            .unwrap_err();
        assert!(err.to_string().contains("invalid port"), "{err}");
        let err = ConnectOptions::default()
            .resolve(&env(&[("PGSSLMODE", "verify-full")]))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage);
        assert!(err.to_string().contains("root certificate"), "{err}");
    }

    #[test]
    fn a_url_without_a_port_leaves_it_to_the_options() {
        for (url, has) in [
            ("postgres://h/db", false),
            ("postgres://u:p@h:6000/db", true),
            ("postgresql://[::1]/db?x=y", false),
            ("postgresql://[::1]:7/db", true),
            ("postgres://a,b:9/db", true),
            ("postgres:///db", false),
        ] {
            assert_eq!(url_has_port(url), has, "{url}");
        }
        let t = ConnectOptions {
            dbname: Some("postgres://h/db".into()),
            port: Some(6001),
            ..Default::default()
        }
        .resolve(&env(&[]))
        .unwrap();
        assert_eq!(t.display(), "postgres@h:6001/db");
    }

    #[test]
    fn ssl_parameters_are_taken_out_of_urls_and_conninfo() {
        let url =
            "postgres://u:p@h/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fr.crt";
        let (rest, ssl) = take_ssl_params(url);
        assert_eq!(rest, "postgres://u:p@h/db?application_name=x");
        assert_eq!(
            (ssl.mode.as_deref(), ssl.rootcert.as_deref()),
            (Some("verify-full"), Some("/tmp/r.crt"))
        );
        let (rest, ssl) = take_ssl_params(
            "host=h sslmode=require password='a b' sslrootcert='/x y' sslcert=/c sslkey='/k'",
        );
        assert_eq!(rest, "host=h password='a b'");
        assert_eq!(
            ssl,
            SslParams {
                mode: Some("require".into()),
                rootcert: Some("/x y".into()),
                cert: Some("/c".into()),
                key: Some("/k".into()),
            }
        );
        let o = ConnectOptions {
            dbname: Some("postgres://h/db?sslmode=verify-ca&sslrootcert=/r.crt".into()),
            ..Default::default()
        };
        assert!(
            o.resolve(&env(&[])).is_ok(),
            "the root file is read when connecting"
        );
    }

    #[test]
    fn pgpass_matches_with_wildcards_and_escapes_and_refuses_open_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pgpass");
        std::fs::write(
            &f,
            "# comment\nother:5432:*:*:no\nh:5432:*:bob:pa\\:ss\\\\word\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = env(&[("PGPASSFILE", f.to_str().unwrap())]);
        let o = ConnectOptions {
            host: Some("h".into()),
            user: Some("bob".into()),
            ..Default::default()
        };
        assert_eq!(
            o.resolve(&e).unwrap().config.get_password(),
            Some(&b"pa:ss\\word"[..])
        );
        let o = ConnectOptions {
            host: Some("z".into()),
            user: Some("bob".into()),
            ..Default::default()
        };
        assert_eq!(
            o.resolve(&e).unwrap().config.get_password(),
            Some(&b"fallback"[..])
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(o.resolve(&e).unwrap().config.get_password(), None);
    }
}
