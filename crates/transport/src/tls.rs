//! Mutual TLS between security servers (reference §3.1).
//!
//! X-Road does not use host names: a peer is trusted when its authentication certificate chains
//! to an approved CA of the global configuration and the certificate's hash is registered there
//! for the security server it should be. Both checks run inside the handshake, so a wrong or
//! unregistered certificate never gets a request through.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::DistinguishedName;
use rustls_pki_types::TrustAnchor;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::metrics::Metrics;
use brama_xroad::globalconf::{auth_cert_hash, GlobalConf};
use brama_xroad::identifiers::SecurityServerId;

/// The handshake-signature checks every verifier shares (here and in `brama load`): plain
/// WebPKI verification with the algorithms at `$($f).+`.
#[macro_export]
#[doc(hidden)]
macro_rules! handshake_signatures {
    ($($f:ident).+) => {
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &rustls_pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(m, c, d, &self.$($f).+)
        }

        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &rustls_pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(m, c, d, &self.$($f).+)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.$($f).+.supported_schemes()
        }
    };
}
pub use handshake_signatures;

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS12, &rustls::version::TLS13];

/// What peers are checked against: the approved CAs and the registered authentication
/// certificates of one global configuration. The verifiers read the one in force at each
/// handshake, so a new global configuration applies to the next connection.
pub struct PeerTrust {
    pub trust: Trust,
    pub gc: Arc<GlobalConf>,
}

impl PeerTrust {
    pub fn new(gc: Arc<GlobalConf>) -> PeerTrust {
        PeerTrust {
            trust: Trust::from_globalconf(&gc),
            gc,
        }
    }
}

/// The [`PeerTrust`] in force.
pub type LiveTrust = crate::live::Live<PeerTrust>;

/// Trust anchors (approved CAs) and known intermediates from the global configuration.
pub struct Trust {
    anchors: Vec<TrustAnchor<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Trust({} anchors)", self.anchors.len())
    }
}

impl Trust {
    pub fn from_globalconf(gc: &GlobalConf) -> Trust {
        let mut anchors = Vec::new();
        let mut intermediates = Vec::new();
        for ca in gc.approved_cas() {
            let der = CertificateDer::from(ca.top_ca.cert_der.clone());
            if let Ok(a) = webpki::anchor_from_trusted_cert(&der) {
                anchors.push(a.to_owned());
            }
            intermediates.extend(
                ca.intermediate_cas
                    .iter()
                    .map(|i| CertificateDer::from(i.cert_der.clone())),
            );
        }
        Trust {
            anchors,
            intermediates,
            algorithms: provider().signature_verification_algorithms,
        }
    }

    /// Checks that `ee` chains to an approved CA, for TLS server or client use.
    pub fn verify_chain(
        &self,
        ee: &CertificateDer<'_>,
        presented: &[CertificateDer<'_>],
        now: UnixTime,
        server: bool,
    ) -> Result<(), String> {
        let cert = webpki::EndEntityCert::try_from(ee)
            .map_err(|e| format!("unreadable certificate: {e}"))?;
        let mut inter: Vec<CertificateDer<'_>> = presented.to_vec();
        inter.extend(self.intermediates.iter().cloned());
        let usage = if server {
            webpki::KeyUsage::server_auth()
        } else {
            webpki::KeyUsage::client_auth()
        };
        cert.verify_for_usage(
            self.algorithms.all,
            &self.anchors,
            &inter,
            now,
            usage,
            None,
            None,
        )
        .map(|_| ())
        .map_err(|e| format!("certificate does not chain to an approved CA: {e}"))
    }
}

fn refuse(reason: String) -> rustls::Error {
    rustls::Error::General(reason)
}

/// Verifies a provider security server: a hash registered for that server, an approved CA,
/// both as the global configuration in force says.
#[derive(Debug)]
struct PeerServerVerifier {
    live: LiveTrust,
    server: SecurityServerId,
    algorithms: WebPkiSupportedAlgorithms,
    metrics: Arc<Metrics>,
}

impl ServerCertVerifier for PeerServerVerifier {
    fn verify_server_cert(
        &self,
        ee: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let live = self.live.current();
        let registered = live
            .gc
            .server(&self.server)
            .is_some_and(|s| s.auth_cert_hashes.contains(&auth_cert_hash(ee)));
        let result = if !registered {
            Err(format!(
                "TLS certificate of {} is not registered for it in the global configuration",
                self.server
            ))
        } else {
            live.trust.verify_chain(ee, intermediates, now, true)
        };
        result.map(|_| ServerCertVerified::assertion()).map_err(|r| {
            self.metrics.security_event("tls_peer_refused");
            tracing::warn!(target: "security", peer = %self.server, reason = %r, "refused provider security server");
            refuse(r)
        })
    }

    handshake_signatures!(algorithms);
}

/// TLS client settings for talking to one provider server.
pub fn peer_client_config(
    live: LiveTrust,
    server: SecurityServerId,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    metrics: Arc<Metrics>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let verifier = PeerServerVerifier {
        live,
        server,
        algorithms: provider().signature_verification_algorithms,
        metrics,
    };
    rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(certs, key)
}

/// Verifies calling security servers: approved CA, hash registered for some server. Which server
/// it is, and whether it may speak for the client, is checked per request.
#[derive(Debug)]
struct PeerClientVerifier {
    live: LiveTrust,
    algorithms: WebPkiSupportedAlgorithms,
    metrics: Arc<Metrics>,
}

impl ClientCertVerifier for PeerClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        ee: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let live = self.live.current();
        let result = match live.gc.server_by_auth_cert(ee) {
            None => Err("TLS certificate is not registered for any security server in the global configuration".to_string()),
            Some(_) => live.trust.verify_chain(ee, intermediates, now, false),
        };
        result
            .map(|_| ClientCertVerified::assertion())
            .map_err(|r| {
                self.metrics.security_event("tls_peer_refused");
                tracing::warn!(target: "security", reason = %r, "refused client security server");
                refuse(r)
            })
    }

    handshake_signatures!(algorithms);
}

/// TLS server settings for the server proxy (port 5500): client certificates are mandatory.
pub fn peer_server_config(
    live: LiveTrust,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    metrics: Arc<Metrics>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let verifier = PeerClientVerifier {
        live,
        algorithms: provider().signature_verification_algorithms,
        metrics,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts any information-system client certificate whose handshake signature is valid; the
/// certificate is then compared with the pinned ones of the client it claims to be (SSLAUTH).
#[derive(Debug)]
struct PinnedClientVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    handshake_signatures!(algorithms);
}

/// TLS settings of the information-system facing HTTPS listener.
pub fn internal_server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let verifier = PinnedClientVerifier {
        algorithms: provider().signature_verification_algorithms,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
