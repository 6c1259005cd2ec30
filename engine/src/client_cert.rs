//! A TLS client certificate (chain) and its private key, PEM files: what a server that
//! authenticates clients by certificate asks for (PostgreSQL's `cert` method and
//! `clientcert=`, Redis's `tls-auth-clients yes`). Both sources load them here.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, ErrorKind, Result};

/// A client certificate (chain) and its private key, both PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl ClientCert {
    /// From a certificate and a key given separately: both or neither, as a certificate
    /// without its key (or a key alone) proves nothing. `cert_from` and `key_from` say
    /// where the missing half is given, for the error.
    pub fn pair(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        cert_from: &str,
        key_from: &str,
    ) -> Result<Option<ClientCert>> {
        match (cert, key) {
            (None, None) => Ok(None),
            (Some(cert_file), Some(key_file)) => Ok(Some(ClientCert {
                cert_file,
                key_file,
            })),
            (Some(_), None) => Err(Error::new(
                ErrorKind::Usage,
                format!("a client certificate needs its key ({key_from})"),
            )),
            (None, Some(_)) => Err(Error::new(
                ErrorKind::Usage,
                format!("a client key needs its certificate ({cert_from})"),
            )),
        }
    }

    /// The certificate chain and the private key, with errors that name the file.
    pub fn load(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let bad = |file: &Path, what: &str, d: String| {
            Error::new(
                ErrorKind::Usage,
                format!("client {what} file {}: {d}", file.display()),
            )
        };
        let chain = CertificateDer::pem_file_iter(&self.cert_file)
            .map_err(|e| bad(&self.cert_file, "certificate", e.to_string()))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(&self.cert_file, "certificate", e.to_string()))?;
        if chain.is_empty() {
            return Err(bad(
                &self.cert_file,
                "certificate",
                "no certificate in it".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|e| bad(&self.key_file, "key", e.to_string()))?;
        Ok((chain, key))
    }

    /// The error rustls gives when the key does not go with the certificate, or is of a
    /// kind it cannot sign with, said with both files' names.
    pub fn mismatch(&self, e: impl std::fmt::Display) -> Error {
        Error::new(
            ErrorKind::Usage,
            format!(
                "client certificate {} with key {}: {e}",
                self.cert_file.display(),
                self.key_file.display()
            ),
        )
    }
}
