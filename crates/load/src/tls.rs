//! TLS towards an `https://` client proxy: the server checked against `--ca` (or the system's
//! CA bundle), or not at all with `--insecure`; an optional client certificate for security
//! servers that authenticate information systems by certificate (X-Road's SSLAUTH).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::{read_file, LoadError};

/// Debian's and most distributions' CA bundle, used when `--ca` is not given.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// PEM file of the CA certificates the server's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Accept any server certificate (measuring, not trusting).
    pub insecure: bool,
    /// Client certificate chain and key (PEM).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl TlsSettings {
    /// The client side of TLS these settings describe.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, LoadError> {
        let bad = |e: rustls::Error| LoadError::Target(format!("TLS settings: {e}"));
        let builder = rustls::ClientConfig::builder_with_provider(brama_transport::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(bad)?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServer {
                    algorithms: brama_transport::tls::provider().signature_verification_algorithms,
                }))
        } else {
            let path = self
                .ca
                .clone()
                .unwrap_or_else(|| PathBuf::from(SYSTEM_BUNDLE));
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs(&path)? {
                roots.add(cert).map_err(bad)?;
            }
            builder.with_root_certificates(roots)
        };
        let config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let key = PrivateKeyDer::from_pem_slice(&read_file(key)?).map_err(|e| {
                    LoadError::Target(format!("{}: no private key: {e}", key.display()))
                })?;
                builder
                    .with_client_auth_cert(certs(cert)?, key)
                    .map_err(bad)?
            }
        };
        Ok(Arc::new(config))
    }
}

/// Every certificate of a PEM file; none is an error.
fn certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let pem = read_file(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| LoadError::Target(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(LoadError::Target(format!(
            "{}: no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// `--insecure`: the handshake still runs in full (and is measured), signatures included; only
/// the certificate is not judged.
#[derive(Debug)]
struct AnyServer {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _ee: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    brama_transport::tls::handshake_signatures!(algorithms);
}
