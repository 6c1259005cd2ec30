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

/// The TLS connector for a verification policy.
pub fn connector(verify: &Verify) -> Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Usage, format!("TLS setup: {e}")))?;
    let config = match verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(provider)))
            .with_no_client_auth(),
        Verify::Chain(root) => {
            let inner = webpki_verifier(root, provider)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
                .with_no_client_auth()
        }
        Verify::Full(root) => builder
            .with_webpki_verifier(webpki_verifier(root, provider)?)
            .with_no_client_auth(),
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
