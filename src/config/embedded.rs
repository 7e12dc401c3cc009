//! The default configuration compiled into the binary: `config/`, its global configuration, the
//! test PKI and the WSDLs, keyed by their path in the repository.

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $path)))),*]
    };
}

static FILES: &[(&str, &[u8])] = embed!(
    "config/brama.toml",
    "config/globalconf/instance-identifier",
    "config/globalconf/SEVDEIR-TEST/shared-params.xml",
    "config/globalconf/SEVDEIR-TEST/private-params.xml",
    "certs-test/ss1-auth.pem",
    "certs-test/ss1-auth.key",
    "certs-test/ss1-internal.pem",
    "certs-test/ss1-internal.key",
    "certs-test/client-diia-is.pem",
    "wsdl/dracs.wsdl",
);

/// The embedded file at `path` (repository-relative, `/`-separated).
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

/// Every embedded file under `dir/`, for directory-shaped settings such as the simulator's WSDLs.
pub fn files_under(dir: &str) -> impl Iterator<Item = (&'static str, &'static [u8])> + '_ {
    FILES
        .iter()
        .filter(move |(p, _)| p.strip_prefix(dir).is_some_and(|r| r.starts_with('/')))
        .map(|(p, b)| (*p, *b))
}
