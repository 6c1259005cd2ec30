//! TLS to PostgreSQL, with libpq's `sslmode` meanings (rustls; no system OpenSSL).
//!
//! | sslmode | encryption | certificate check |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow`, `prefer` | when the server offers it | none |
//! | `require` | always | none, or the chain when a root certificate file exists (as libpq) |
//! | `verify-ca` | always | the chain, against the root certificate file |
//! | `verify-full` | always | the chain and the host name |
//!
//! `allow` tries TLS first, where libpq tries plaintext first: the difference can only make
//! a connection more private. The root certificate file is `PGSSLROOTCERT`, else
//! `~/.postgresql/root.crt`.
//!
//! A client certificate goes to servers that ask for one (the `cert` method, or
//! `clientcert=` in pg_hba.conf): `sslcert`/`PGSSLCERT`, else `~/.postgresql/postgresql.crt`
//! if it exists, with its key `sslkey`/`PGSSLKEY`, else `~/.postgresql/postgresql.key`. As
//! libpq does, a key file readable by group or others is refused (0640 is allowed for a
//! key owned by root).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::client_cert::ClientCert;
use crate::error::{Error, ErrorKind, Result};

/// How certificates are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verify {
    /// No certificate check (`prefer`, `require` without a root file).
    Nothing,
    /// The chain against these roots, not the host name (`verify-ca`, `require` with roots).
    Chain(PathBuf),
    /// The chain and the host name (`verify-full`).
    Full(PathBuf),
}

/// `sslmode` → tokio-postgres's mode and the certificate check. `root` is the root
/// certificate file, if one exists.
pub fn policy(sslmode: &str, root: Option<PathBuf>) -> Result<(SslMode, Verify)> {
    let need_root = |mode: &str| {
        root.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::Usage,
                format!("sslmode={mode} needs a root certificate: set PGSSLROOTCERT, or put it in ~/.postgresql/root.crt"),
            )
        })
    };
    Ok(match sslmode {
        "disable" => (SslMode::Disable, Verify::Nothing),
        "allow" | "prefer" => (SslMode::Prefer, Verify::Nothing),
        "require" => (
            SslMode::Require,
            root.map_or(Verify::Nothing, Verify::Chain),
        ),
        "verify-ca" => (SslMode::Require, Verify::Chain(need_root("verify-ca")?)),
        "verify-full" => (SslMode::Require, Verify::Full(need_root("verify-full")?)),
        other => {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "invalid sslmode {other:?}: use disable, allow, prefer, require, verify-ca or verify-full"
                ),
            ));
        }
    })
}

/// The default root certificate file, when it exists.
pub fn default_root(env_root: Option<String>, home: Option<String>) -> Option<PathBuf> {
    match env_root {
        Some(p) => Some(PathBuf::from(p)),
        None => home
            .map(|h| Path::new(&h).join(".postgresql/root.crt"))
            .filter(|p| p.exists()),
    }
}

/// The client certificate to offer: `cert` (an explicit file must exist), else the
/// default one if it exists; its key is `key`, else the default key file.
pub fn client_cert(
    cert: Option<String>,
    key: Option<String>,
    home: Option<String>,
) -> Result<Option<ClientCert>> {
    let dir = home.map(|h| Path::new(&h).join(".postgresql"));
    let cert = match cert {
        Some(c) => Some(PathBuf::from(c)),
        None => dir
            .as_ref()
            .map(|d| d.join("postgresql.crt"))
            .filter(|p| p.exists()),
    };
    let Some(cert_file) = cert else {
        return Ok(None);
    };
    let key_file = key
        .map(PathBuf::from)
        .or_else(|| dir.map(|d| d.join("postgresql.key")))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Usage,
                format!(
                    "client certificate {} has no key: set sslkey or PGSSLKEY",
                    cert_file.display()
                ),
            )
        })?;
    private_key_is_private(&key_file)?;
    Ok(Some(ClientCert {
        cert_file,
        key_file,
    }))
}

/// libpq's rule for a private key file: no access for group or others (0600), or, owned
/// by root, read access for the group (0640) at most.
fn private_key_is_private(file: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file).map_err(|e| {
        Error::new(
            ErrorKind::Usage,
            format!("client key file {}: {e}", file.display()),
        )
    })?;
    let allowed = if meta.uid() == 0 { 0o640 } else { 0o600 };
    if meta.mode() & 0o777 & !allowed != 0 {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "client key file {} has group or world access; permissions should be u=rw (0600) or less",
                file.display()
            ),
        ));
    }
    Ok(())
}

/// The TLS connector for a verification policy, with the client certificate if any.
pub fn connector(verify: &Verify, client: Option<&ClientCert>) -> Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Usage, format!("TLS setup: {e}")))?;
    let builder = match verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider))),
        Verify::Chain(root) => {
            let inner = webpki_verifier(root, provider)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
        }
        Verify::Full(root) => builder.with_webpki_verifier(webpki_verifier(root, provider)?),
    };
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let (chain, key) = c.load()?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| c.mismatch(e))?
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

fn webpki_verifier(
    root: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>> {
    let bad = |d: String| {
        Error::new(
            ErrorKind::Usage,
            format!("root certificate file {}: {d}", root.display()),
        )
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(root).map_err(|e| bad(e.to_string()))? {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificates in it".into()));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| bad(e.to_string()))
}

/// `prefer` and `require` without a root file: the connection is encrypted, the server is
/// not authenticated (libpq's behaviour). Handshake signatures are still verified.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_are_found_and_their_keys_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let h = || Some(home.path().display().to_string());
        assert_eq!(
            client_cert(None, None, h()).unwrap(),
            None,
            "none by default"
        );
        let dir = home.path().join(".postgresql");
        std::fs::create_dir(&dir).unwrap();
        let (crt, key) = (dir.join("postgresql.crt"), dir.join("postgresql.key"));
        std::fs::write(&crt, "").unwrap();
        std::fs::write(&key, "").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let found = client_cert(None, None, h()).unwrap().unwrap();
        assert_eq!(
            (found.cert_file, found.key_file),
            (crt.clone(), key.clone())
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = client_cert(None, None, h()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(e.to_string().contains("group or world access"), "{e}");
        let e = client_cert(Some("/c.pem".into()), None, None).unwrap_err();
        assert!(e.to_string().contains("PGSSLKEY"), "{e}");
        let e =
            client_cert(Some("/c.pem".into()), Some("/nonexistent.key".into()), None).unwrap_err();
        assert!(e.to_string().contains("/nonexistent.key"), "{e}");
    }

    #[test]
    fn sslmodes_map_as_libpq_documents() {
        let root = Some(PathBuf::from("/r.crt"));
        assert_eq!(
            policy("disable", None).unwrap(),
            (SslMode::Disable, Verify::Nothing)
        );
        assert_eq!(
            policy("prefer", root.clone()).unwrap(),
            (SslMode::Prefer, Verify::Nothing)
        );
        assert_eq!(
            policy("require", None).unwrap(),
            (SslMode::Require, Verify::Nothing)
        );
        assert_eq!(
            policy("require", root.clone()).unwrap().1,
            Verify::Chain("/r.crt".into())
        );
        assert_eq!(
            policy("verify-full", root).unwrap().1,
            Verify::Full("/r.crt".into())
        );
        let e = policy("verify-ca", None).unwrap_err();
        assert!(e.to_string().contains("PGSSLROOTCERT"), "{e}");
        assert!(policy("sometimes", None).is_err());
    }
}
