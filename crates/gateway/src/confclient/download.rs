//! One download: the anchor's sources in turn until one gives a directory that checks.

use std::time::Duration;

use bytes::Bytes;
use sha2::Digest;

use brama_sign::digest::DigestAlgorithm;
use brama_transport::{Destination, Pool};
use brama_xroad::globalconf::directory::{DirectoryError, SignedDirectory};
use brama_xroad::globalconf::{ConfigurationAnchor, PrivateParams, SharedParams};

/// Largest file a directory may list (the parsers' own limit).
const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;
/// The directory versions asked for, newest first (X-Road's client does the same); brama reads
/// the shared parameters of versions 3 to 5.
const VERSIONS: [u8; 3] = [5, 4, 3];

/// A downloaded, checked global configuration, not yet stored.
#[derive(Clone, Debug)]
pub struct Downloaded {
    pub instance: String,
    /// Paths relative to the configuration directory (`SEVDEIR-TEST/shared-params.xml`), and
    /// the bytes.
    pub files: Vec<(String, Bytes)>,
    /// `Expire-date` of the own instance's directory, as written and as Unix seconds.
    pub expire_date: String,
    pub expires_at: i64,
    /// The directory version the files belong to.
    pub version: u8,
    /// SHA-256 of the files, to tell a changed configuration from the same one.
    pub digest: [u8; 32],
    /// The URL it came from.
    pub source: String,
}

/// Downloads the configuration of `anchor`'s instance. `rotated` are verification
/// certificates learned from a stored configuration (its shared parameters' `source`).
pub async fn download(
    pool: &Pool,
    anchor: &ConfigurationAnchor,
    rotated: &[Vec<u8>],
    timeout: Duration,
) -> Result<Downloaded, String> {
    let own = fetch_instance(pool, anchor, rotated, timeout, true).await?;
    let mut files = own.files.clone();
    // Federated instances: the shared parameters of each anchor the private parameters list.
    let private = files
        .iter()
        .find(|(p, _)| p.ends_with("/private-params.xml"))
        .map(|(_, b)| b.clone());
    if let Some(bytes) = private {
        let private = PrivateParams::parse(&bytes).map_err(|e| e.to_string())?;
        for other in &private.configuration_anchors {
            if other.instance_identifier == anchor.instance_identifier {
                continue;
            }
            match fetch_instance(pool, other, &[], timeout, false).await {
                Ok(d) => files.extend(
                    d.files
                        .into_iter()
                        .filter(|(p, _)| p.ends_with("/shared-params.xml")),
                ),
                Err(e) => tracing::warn!(
                    instance = %other.instance_identifier,
                    error = %e,
                    "federated instance's configuration not downloaded"
                ),
            }
        }
    }
    let mut h = sha2::Sha256::new();
    for (p, b) in &files {
        h.update(p.as_bytes());
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    }
    Ok(Downloaded {
        files,
        digest: h.finalize().into(),
        ..own
    })
}

/// The first source of `anchor` that gives a good directory.
async fn fetch_instance(
    pool: &Pool,
    anchor: &ConfigurationAnchor,
    rotated: &[Vec<u8>],
    timeout: Duration,
    own: bool,
) -> Result<Downloaded, String> {
    let mut errors = Vec::new();
    for source in &anchor.sources {
        let mut certs = source.verification_certs.clone();
        certs.extend(rotated.iter().cloned());
        match fetch_source(
            pool,
            &anchor.instance_identifier,
            &source.download_url,
            &certs,
            timeout,
            own,
        )
        .await
        {
            Ok(d) => return Ok(d),
            Err(e) => errors.push(format!("{}: {e}", source.download_url)),
        }
    }
    if errors.is_empty() {
        errors.push("the anchor lists no source".into());
    }
    Err(errors.join("; "))
}

async fn get(
    pool: &Pool,
    url: &str,
    timeout: Duration,
    max: usize,
) -> Result<(http::StatusCode, Option<String>, Bytes), String> {
    let (dest, path): (Destination, String) = Destination::for_url(url, None)?;
    let req = http::Request::get(path)
        .header(http::header::HOST, dest.key.as_str())
        .body(brama_transport::body::empty())
        .map_err(|e| e.to_string())?;
    let (parts, body) = pool
        .exchange(&dest, req, timeout, max)
        .await
        .map_err(|e| e.to_string())?;
    let ct = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok((parts.status, ct, body))
}

/// `location` against the download URL (`URI.resolve`): absolute paths keep the URL's scheme
/// and authority; full URLs stand; relative ones replace the last path segment.
fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        return format!("{}{location}", &base[..authority_end]);
    }
    let path = base.split('?').next().unwrap_or(base);
    let dir_end = path
        .rfind('/')
        .filter(|&i| i >= authority_end)
        .map_or(path.len(), |i| i + 1);
    format!("{}{location}", &path[..dir_end])
}

async fn fetch_source(
    pool: &Pool,
    instance: &str,
    url: &str,
    certs: &[Vec<u8>],
    timeout: Duration,
    own: bool,
) -> Result<Downloaded, String> {
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut answer = None;
    for v in VERSIONS {
        let (status, ct, body) = get(
            pool,
            &format!("{url}{sep}version={v}"),
            timeout,
            brama_xroad::globalconf::directory::MAX_DIRECTORY_BYTES,
        )
        .await?;
        if status == http::StatusCode::NOT_FOUND {
            continue;
        }
        if status != http::StatusCode::OK {
            return Err(format!("HTTP {status}"));
        }
        answer = Some((v, ct, body));
        break;
    }
    let (asked, ct, body) = answer.ok_or("no directory of version 3 to 5 (HTTP 404)")?;
    let dir = SignedDirectory::parse(&body, ct.as_deref()).map_err(|e| e.to_string())?;
    brama_sign::directory::verify(&dir, certs).map_err(|e| e.to_string())?;
    let listing = dir.listing().map_err(|e| e.to_string())?;
    let now = crate::ocsp::now();
    if own && listing.expires_at < now {
        return Err(DirectoryError::Outdated(listing.expire_date).to_string());
    }
    let version = listing.version.unwrap_or(asked);
    let mut files = Vec::new();
    for entry in &listing.entries {
        let name = match entry.content_identifier.as_str() {
            "SHARED-PARAMETERS" => "shared-params.xml".to_string(),
            "PRIVATE-PARAMETERS" if own => "private-params.xml".to_string(),
            "PRIVATE-PARAMETERS" => continue,
            _ => match entry.location.rsplit('/').next() {
                Some(n)
                    if !n.is_empty()
                        && !n.starts_with('.')
                        && n.len() < 128
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
                {
                    n.to_string()
                }
                _ => continue,
            },
        };
        let alg = DigestAlgorithm::from_uri(&entry.hash_algorithm).ok_or_else(|| {
            format!(
                "{}: unsupported hash algorithm {}",
                entry.location, entry.hash_algorithm
            )
        })?;
        let (status, _, bytes) = get(
            pool,
            &resolve(url, &entry.location),
            timeout,
            MAX_FILE_BYTES,
        )
        .await?;
        if status != http::StatusCode::OK {
            return Err(format!("{}: HTTP {status}", entry.location));
        }
        if alg.digest(&bytes) != entry.hash {
            return Err(DirectoryError::HashMismatch(entry.location.clone()).to_string());
        }
        // What is stored must read: a file that does not is refused with the whole download.
        if name == "shared-params.xml" {
            let shared =
                SharedParams::parse_with_version(&bytes, version).map_err(|e| e.to_string())?;
            if shared.instance_identifier != instance {
                return Err(format!(
                    "the shared parameters are for instance '{}', the anchor for '{instance}'",
                    shared.instance_identifier
                ));
            }
        } else if name == "private-params.xml" {
            PrivateParams::parse(&bytes).map_err(|e| e.to_string())?;
        }
        files.push((format!("{instance}/{name}"), bytes));
    }
    if own && !files.iter().any(|(p, _)| p.ends_with("/shared-params.xml")) {
        return Err("the directory lists no shared parameters".into());
    }
    Ok(Downloaded {
        instance: instance.to_string(),
        files,
        expire_date: listing.expire_date,
        expires_at: listing.expires_at,
        version,
        digest: [0; 32],
        source: url.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn locations_resolve_as_java_uri_does() {
        use super::resolve;
        assert_eq!(
            resolve("http://cs/internalconf", "/V5/1/shared-params.xml"),
            "http://cs/V5/1/shared-params.xml"
        );
        assert_eq!(
            resolve("http://cs:8080/a/internalconf?x=1", "/V5/f.xml"),
            "http://cs:8080/V5/f.xml"
        );
        assert_eq!(
            resolve("http://cs/a/internalconf", "f.xml"),
            "http://cs/a/f.xml"
        );
        assert_eq!(
            resolve("http://cs/internalconf", "http://other/f.xml"),
            "http://other/f.xml"
        );
    }
}
