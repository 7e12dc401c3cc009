//! The default configuration compiled into the binary: `config/`, its global configuration, the
//! test PKI and the WSDLs, keyed by their path in the repository. Only with the `embedded-default`
//! feature (the binary's `sim`): it carries the checked-in test keys, which a production build
//! must not.

#[cfg(feature = "embedded-default")]
macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../", $path)))),*]
    };
}

#[cfg(feature = "embedded-default")]
static FILES: &[(&str, &[u8])] = embed!(
    "config/brama.toml",
    "config/anchor.xml",
    "config/globalconf/instance-identifier",
    "config/globalconf/SEVDEIR-TEST/shared-params.xml",
    "config/globalconf/SEVDEIR-TEST/private-params.xml",
    "certs-test/ca.pem",
    "certs-test/ocsp-responder.pem",
    "certs-test/ocsp-responder.key",
    "certs-test/tsa.pem",
    "certs-test/tsa.key",
    "certs-test/central-server.pem",
    "certs-test/central-server.key",
    "certs-test/ss1-auth.pem",
    "certs-test/ss1-auth.key",
    "certs-test/ss1-internal.pem",
    "certs-test/ss1-internal.key",
    "certs-test/client-diia-is.pem",
    "certs-test/sign-GOV-00000001.pem",
    "certs-test/sign-GOV-00000001.key",
    "certs-test/sign-GOV-00000002.pem",
    "certs-test/sign-GOV-00000002.key",
    "certs-test/sign-GOV-00000003.pem",
    "certs-test/sign-GOV-00000003.key",
    "certs-test/sign-GOV-00000004.pem",
    "certs-test/sign-GOV-00000004.key",
    "certs-test/sign-GOV-00000005.pem",
    "certs-test/sign-GOV-00000005.key",
    "certs-test/sign-GOV-00000006.pem",
    "certs-test/sign-GOV-00000006.key",
    "certs-test/sign-GOV-00000007.pem",
    "certs-test/sign-GOV-00000007.key",
    "certs-test/sign-GOV-00000009.pem",
    "certs-test/sign-GOV-00000009.key",
    "wsdl/dracs.wsdl",
    "wsdl/ehealth.wsdl",
    "wsdl/dms.wsdl",
    "wsdl/dps.wsdl",
    "wsdl/msp.wsdl",
    "wsdl/rtg.wsdl",
    "openapi/ehealth-declarations.yaml",
);

#[cfg(not(feature = "embedded-default"))]
static FILES: &[(&str, &[u8])] = &[];

/// Whether this build carries the embedded default.
pub fn available() -> bool {
    !FILES.is_empty()
}

/// The embedded file at `path` (repository-relative, `/`-separated).
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}
