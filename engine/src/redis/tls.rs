//! TLS to Redis (`rediss://`), with rustls as for PostgreSQL (no system OpenSSL).
//!
//! The server's certificate chain and host name are always checked, as `redis-cli --tls`
//! does. The trusted roots are the system's (the PEM bundle named by `SSL_CERT_FILE`, else
//! the first of the usual distribution paths that exists), or those of a CA file given
//! with `?cacert=FILE` on the URL or `COFFER_REDIS_CACERT` (`redis-cli --cacert`).
//!
//! A server with `tls-auth-clients yes` (Redis's default once TLS is on) asks for a client
//! certificate: `?cert=FILE&key=FILE` on the URL, or `COFFER_REDIS_CERT` and
//! `COFFER_REDIS_KEY` (`redis-cli --cert --key`), PEM files, given together.
//!
//! A [`Session`] is the rustls state behind a mutex, so a connection's reading and writing
//! halves can live in two threads (or tasks) over one socket: the writer seals plaintext
//! into TLS records and writes them out itself, the reader hands the records it reads to
//! [`Session::open`]. The lock is held for the record work only, never across I/O.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

pub use crate::client_cert::ClientCert;
use crate::{Error, ErrorKind, Result};

/// Environment variable naming a CA file to trust instead of the system's roots.
pub const CACERT_ENV: &str = "COFFER_REDIS_CACERT";

/// System CA bundles, in the order they are tried (Debian/Ubuntu, Fedora/RHEL, openSUSE,
/// Alpine/macOS).
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Environment variables naming the client certificate (chain) and its private key.
pub const CERT_ENV: &str = "COFFER_REDIS_CERT";
pub const KEY_ENV: &str = "COFFER_REDIS_KEY";

/// How to check the server, and how to prove who we are if it asks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Trust only the certificates in this PEM file; `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The client certificate (chain) and its private key, PEM; both or neither.
    pub client: Option<ClientCert>,
}

fn tls_error(addr: &str, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Connect,
        format!("TLS to redis at {addr}: {what}"),
    )
}

/// The roots: the CA file's, else the system bundle's.
fn roots(opts: &TlsOptions) -> Result<RootCertStore> {
    let file = match &opts.ca_file {
        Some(f) => f.clone(),
        None => std::env::var_os("SSL_CERT_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                SYSTEM_BUNDLES
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.exists())
            })
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Usage,
                    format!(
                        "no system CA bundle found (tried SSL_CERT_FILE and {}): give a CA file with ?cacert=FILE or {CACERT_ENV}",
                        SYSTEM_BUNDLES.join(", ")
                    ),
                )
            })?,
    };
    load_roots(&file)
}

fn load_roots(file: &Path) -> Result<RootCertStore> {
    let bad = |d: String| Error::new(ErrorKind::Usage, format!("CA file {}: {d}", file.display()));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(file).map_err(|e| bad(e.to_string()))? {
        // A system bundle may hold a certificate webpki cannot parse: skip it, as
        // OpenSSL does; a bundle with none usable is an error below.
        let _ = roots.add(cert.map_err(|e| bad(e.to_string()))?);
    }
    if roots.is_empty() {
        return Err(bad("no usable certificates in it".into()));
    }
    Ok(roots)
}

/// The client configuration for `opts`.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Usage, format!("TLS setup: {e}")))?
        .with_root_certificates(roots(opts)?);
    let config = match &opts.client {
        None => config.with_no_client_auth(),
        Some(c) => {
            let (chain, key) = c.load()?;
            config
                .with_client_auth_cert(chain, key)
                .map_err(|e| c.mismatch(e))?
        }
    };
    Ok(Arc::new(config))
}

/// One TLS session, shared by a connection's reading and writing halves.
#[derive(Clone)]
pub struct Session {
    conn: Arc<Mutex<ClientConnection>>,
    addr: String,
}

impl Session {
    /// A session to `host` (the name checked against the certificate).
    pub fn new(opts: &TlsOptions, host: &str, addr: &str) -> Result<Session> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| tls_error(addr, format!("bad server name {host:?}: {e}")))?;
        let mut conn =
            ClientConnection::new(client_config(opts)?, name).map_err(|e| tls_error(addr, e))?;
        // The writer drains the records after each write, so rustls need not limit them.
        conn.set_buffer_limit(None);
        Ok(Session {
            conn: Arc::new(Mutex::new(conn)),
            addr: addr.to_string(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientConnection> {
        self.conn.lock().expect("TLS session lock")
    }

    fn handshake_error(&self, e: impl std::fmt::Display) -> Error {
        tls_error(&self.addr, format!("handshake failed: {e}"))
    }

    /// Records to send, if the session has any.
    fn pending(&self, out: &mut Vec<u8>) -> Result<()> {
        let mut c = self.lock();
        while c.wants_write() {
            c.write_tls(out).map_err(|e| tls_error(&self.addr, e))?;
        }
        Ok(())
    }

    /// Whether the handshake is still going on.
    fn handshaking(&self) -> bool {
        self.lock().is_handshaking()
    }

    /// Feeds received bytes during the handshake.
    fn feed_handshake(&self, mut data: &[u8]) -> Result<()> {
        let mut c = self.lock();
        while !data.is_empty() {
            c.read_tls(&mut data).map_err(|e| self.handshake_error(e))?;
            c.process_new_packets()
                .map_err(|e| self.handshake_error(e))?;
        }
        Ok(())
    }

    /// Runs the handshake over a blocking socket.
    pub fn handshake(&self, sock: &mut std::net::TcpStream) -> Result<()> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16 << 10];
        loop {
            out.clear();
            self.pending(&mut out)?;
            if !out.is_empty() {
                sock.write_all(&out).map_err(|e| self.handshake_error(e))?;
            }
            if !self.handshaking() {
                return Ok(());
            }
            let n = sock.read(&mut buf).map_err(|e| self.handshake_error(e))?;
            if n == 0 {
                return Err(self.handshake_error("the server closed the connection"));
            }
            self.feed_handshake(&buf[..n])?;
        }
    }

    /// Runs the handshake over a tokio socket.
    pub async fn handshake_async(&self, sock: &mut tokio::net::TcpStream) -> Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16 << 10];
        loop {
            out.clear();
            self.pending(&mut out)?;
            if !out.is_empty() {
                sock.write_all(&out)
                    .await
                    .map_err(|e| self.handshake_error(e))?;
            }
            if !self.handshaking() {
                return Ok(());
            }
            let n = sock
                .read(&mut buf)
                .await
                .map_err(|e| self.handshake_error(e))?;
            if n == 0 {
                return Err(self.handshake_error("the server closed the connection"));
            }
            self.feed_handshake(&buf[..n])?;
        }
    }

    /// Seals `plain` into TLS records appended to `out` (for the caller to write).
    pub fn seal(&self, plain: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let mut c = self.lock();
        c.writer()
            .write_all(plain)
            .map_err(|e| tls_error(&self.addr, e))?;
        while c.wants_write() {
            c.write_tls(out).map_err(|e| tls_error(&self.addr, e))?;
        }
        Ok(())
    }

    /// The server's alert when it refused our client certificate, or wanted one: with TLS
    /// 1.3 that arrives after the handshake, with the first reply, so it is recognised here.
    fn refused_client(&self, e: &rustls::Error) -> Option<Error> {
        use rustls::AlertDescription as A;
        let rustls::Error::AlertReceived(alert) = e else {
            return None;
        };
        let why = match alert {
            A::CertificateRequired => "the server asks for a client certificate",
            A::BadCertificate | A::UnknownCA | A::CertificateUnknown | A::AccessDenied => {
                "the server refused the client certificate"
            }
            _ => return None,
        };
        Some(Error::new(
            ErrorKind::Connect,
            format!(
                "TLS to redis at {}: {why} ({alert:?}): give one its CA signed with ?cert=FILE&key=FILE or {CERT_ENV} and {KEY_ENV}",
                self.addr
            ),
        ))
    }

    /// Opens received TLS bytes, appending the plaintext to `plain`. Returns `false` when
    /// the server ended the session (close_notify).
    pub fn open(&self, mut data: &[u8], plain: &mut BytesMut) -> Result<bool> {
        let bad = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Protocol,
                format!("TLS from redis at {}: {e}", self.addr),
            )
        };
        let mut c = self.lock();
        let mut tmp = [0u8; 16 << 10];
        loop {
            if !data.is_empty() {
                c.read_tls(&mut data).map_err(|e| bad(&e))?;
                c.process_new_packets()
                    .map_err(|e| self.refused_client(&e).unwrap_or_else(|| bad(&e)))?;
            }
            loop {
                match c.reader().read(&mut tmp) {
                    Ok(0) => return Ok(false),
                    Ok(n) => plain.extend_from_slice(&tmp[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(bad(&e)),
                }
            }
            if data.is_empty() {
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("coffer-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = load_roots(&empty).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(e.to_string().contains("no usable certificates"), "{e}");
        let e = load_roots(&dir.join("missing.pem")).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Usage);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
