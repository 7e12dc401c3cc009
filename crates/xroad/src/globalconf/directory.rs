//! The signed configuration directory a central server publishes (reference §8.1, PR-GCONF):
//! a `multipart/related` body (its MIME header inside the body, as central servers serve it)
//! with two parts, the directory (`multipart/mixed`: a header-only part with `Expire-date` and
//! `Version`, then one part per file, its body the base64 hash of the file) and the signature
//! over the first part's body bytes exactly as sent.
//!
//! Read in X-Road's order: the signature part first ([`SignedDirectory::parse`]), the listing
//! only once the signature has been checked ([`SignedDirectory::listing`]). Checking the
//! signature and the files' hashes is the caller's (it needs the anchor's certificates and
//! the files); writing one is [`write_directory`]'s.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;

use crate::message::mime::{parse_multipart, ContentType, MultipartWriter, Part};

/// Largest directory accepted: real ones are about a kilobyte.
pub const MAX_DIRECTORY_BYTES: usize = 1024 * 1024;
/// Most files one directory may list.
const MAX_ENTRIES: usize = 64;

/// Why a directory was refused, by X-Road's names for the same (`ConfigurationParser`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("the configuration directory is malformed: {0}")]
    Malformed(String),
    /// `GLOBAL_CONF_MISSING_SIGNED_DATA_EXPIRATION_DATE`: no signature part at all.
    #[error("the configuration directory has no signature part")]
    MissingSignature,
    /// `GLOBAL_CONF_MISSING_VERIFICATION_CERT`.
    #[error("no trusted certificate has the hash the signature names ({0})")]
    UnknownCertificate(String),
    /// `GLOBAL_CONF_SIGNATURE_VERIFICATION_FAILURE`.
    #[error("the configuration directory's signature does not verify: {0}")]
    BadSignature(String),
    /// `GLOBAL_CONF_HEADER_FIELD_MISSING`.
    #[error("the configuration directory has no Expire-date")]
    MissingExpireDate,
    /// `GLOBAL_CONF_OUTDATED`.
    #[error("the configuration directory expired at {0}")]
    Outdated(String),
    /// `GLOBAL_CONF_PART_DOWNLOADED_FILE_INTEGRITY_FAILURE`.
    #[error("{0} does not match the hash the directory lists for it")]
    HashMismatch(String),
}

fn malformed(m: impl Into<String>) -> DirectoryError {
    DirectoryError::Malformed(m.into())
}

/// A directory's signature part and the bytes it signs.
#[derive(Clone, Debug)]
pub struct SignedDirectory {
    /// The first part's body, exactly as sent: what the signature covers.
    pub signed: Bytes,
    /// The first part's `Content-Type` (its `multipart/mixed` boundary).
    pub listing_type: String,
    /// `Signature-algorithm-id`: an XML-DSig signature method URI.
    pub signature_algorithm: String,
    pub signature: Vec<u8>,
    /// `Verification-certificate-hash`: the hash of the signer's certificate (DER) …
    pub cert_hash: Vec<u8>,
    /// … and its `hash-algorithm-id` (an XML-Enc digest URI).
    pub cert_hash_algorithm: String,
}

/// One file the directory lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// `PRIVATE-PARAMETERS`, `SHARED-PARAMETERS`, or another (`MONITORING`, `OCSP-NEXTUPDATE`, …).
    pub content_identifier: String,
    /// The `instance` parameter of `Content-identifier`.
    pub instance: Option<String>,
    /// `Content-location`, resolved against the download URL.
    pub location: String,
    /// `Hash-algorithm-id` (an XML-Enc digest URI) and the hash it names.
    pub hash_algorithm: String,
    pub hash: Vec<u8>,
}

/// The listing, read once the signature holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// `Expire-date` as written (ISO 8601, UTC).
    pub expire_date: String,
    /// The same, as Unix seconds.
    pub expires_at: i64,
    /// `Version`, absent in X-Road's oldest directories.
    pub version: Option<u8>,
    pub entries: Vec<Entry>,
}

fn header<'a>(part: &'a Part, name: &str) -> Option<&'a str> {
    part.header(name)
}

/// A parameter of a header value (`instance='DEV'`, `hash-algorithm-id="…"`), unquoted.
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(name) {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix(['"', '\''])
            .and_then(|v| v.strip_suffix(['"', '\'']))
            .unwrap_or(v);
        Some(v.to_string())
    })
}

fn b64(text: &str, what: &str) -> Result<Vec<u8>, DirectoryError> {
    let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    B64.decode(clean)
        .map_err(|e| malformed(format!("{what} is not base64: {e}")))
}

/// The boundary of a body whose MIME header comes first inside it (as central servers serve
/// the directory), or of the HTTP `Content-Type`; and where the multipart body starts.
fn outer_boundary(
    body: &Bytes,
    http_type: Option<&str>,
) -> Result<(String, usize), DirectoryError> {
    let head = &body[..body.len().min(1024)];
    let starts_with_header = head.len() >= 13 && head[..13].eq_ignore_ascii_case(b"content-type:");
    if starts_with_header {
        let end = head
            .windows(2)
            .position(|w| w == b"\n\n")
            .map(|i| i + 2)
            .into_iter()
            .chain(
                head.windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map(|i| i + 4),
            )
            .min()
            .ok_or_else(|| malformed("the MIME header inside the body does not end"))?;
        let text = std::str::from_utf8(&head[..end]).map_err(|_| malformed("header not UTF-8"))?;
        let line = text.lines().next().unwrap_or_default();
        let value = &line["content-type:".len()..];
        let ct = ContentType::parse(value.trim()).map_err(|e| malformed(e.message))?;
        let boundary = ct
            .param("boundary")
            .ok_or_else(|| malformed("no boundary"))?;
        return Ok((boundary.to_string(), end));
    }
    let ct = ContentType::parse(http_type.unwrap_or_default()).map_err(|e| malformed(e.message))?;
    match ct.param("boundary") {
        Some(b) if ct.mime.starts_with("multipart/") => Ok((b.to_string(), 0)),
        _ => Err(malformed(format!(
            "'{}' is not a multipart configuration directory",
            http_type.unwrap_or_default()
        ))),
    }
}

impl SignedDirectory {
    /// Reads the two parts; the signature part must be there.
    pub fn parse(body: &Bytes, http_type: Option<&str>) -> Result<SignedDirectory, DirectoryError> {
        if body.len() > MAX_DIRECTORY_BYTES {
            return Err(malformed(format!(
                "{} bytes is more than the {MAX_DIRECTORY_BYTES}-byte limit",
                body.len()
            )));
        }
        let (boundary, start) = outer_boundary(body, http_type)?;
        let parts = parse_multipart(&body.slice(start..), &boundary, 2)
            .map_err(|e| malformed(e.message))?;
        let mut parts = parts.into_iter();
        let listing = parts.next().ok_or_else(|| malformed("no directory part"))?;
        let signature = parts.next().ok_or(DirectoryError::MissingSignature)?;
        let algorithm = header(&signature, "Signature-algorithm-id")
            .ok_or_else(|| malformed("no Signature-algorithm-id"))?
            .trim()
            .to_string();
        let hash_header = header(&signature, "Verification-certificate-hash")
            .ok_or_else(|| malformed("no Verification-certificate-hash"))?;
        let cert_hash = b64(
            hash_header.split(';').next().unwrap_or_default(),
            "Verification-certificate-hash",
        )?;
        let cert_hash_algorithm = param(hash_header, "hash-algorithm-id")
            .unwrap_or_else(|| "http://www.w3.org/2001/04/xmlenc#sha512".into());
        let text = std::str::from_utf8(&signature.body)
            .map_err(|_| DirectoryError::BadSignature("the signature is not base64 text".into()))?;
        let value =
            b64(text, "the signature").map_err(|e| DirectoryError::BadSignature(e.to_string()))?;
        if value.is_empty() {
            return Err(DirectoryError::BadSignature(
                "the signature is empty".into(),
            ));
        }
        Ok(SignedDirectory {
            listing_type: header(&listing, "Content-Type")
                .unwrap_or_default()
                .to_string(),
            signed: listing.body,
            signature_algorithm: algorithm,
            signature: value,
            cert_hash,
            cert_hash_algorithm,
        })
    }

    /// The listing, read from the signed bytes.
    pub fn listing(&self) -> Result<Listing, DirectoryError> {
        let ct = ContentType::parse(&self.listing_type).map_err(|e| malformed(e.message))?;
        let boundary = ct
            .param("boundary")
            .ok_or_else(|| malformed("the directory part has no boundary"))?;
        let parts = parse_multipart(&self.signed, boundary, MAX_ENTRIES + 1)
            .map_err(|e| malformed(e.message))?;
        let mut parts = parts.into_iter();
        let first = parts.next().ok_or(DirectoryError::MissingExpireDate)?;
        let expire_date = header(&first, "Expire-date")
            .ok_or(DirectoryError::MissingExpireDate)?
            .trim()
            .to_string();
        let expires_at = time::OffsetDateTime::parse(
            &expire_date,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| malformed(format!("Expire-date '{expire_date}': {e}")))?
        .unix_timestamp();
        let version = match header(&first, "Version") {
            Some(v) => Some(
                v.trim()
                    .parse::<u8>()
                    .map_err(|_| malformed(format!("Version '{v}'")))?,
            ),
            None => None,
        };
        let mut entries = Vec::new();
        for p in parts {
            let id = header(&p, "Content-identifier")
                .ok_or_else(|| malformed("a part has no Content-identifier"))?;
            let location = header(&p, "Content-location")
                .ok_or_else(|| malformed("a part has no Content-location"))?
                .trim()
                .to_string();
            let hash_algorithm = header(&p, "Hash-algorithm-id")
                .ok_or_else(|| malformed("a part has no Hash-algorithm-id"))?
                .trim()
                .to_string();
            let text = std::str::from_utf8(&p.body).map_err(|_| malformed("hash not text"))?;
            entries.push(Entry {
                content_identifier: id.split(';').next().unwrap_or_default().trim().to_string(),
                instance: param(id, "instance"),
                location,
                hash_algorithm,
                hash: b64(text, "a file's hash")?,
            });
        }
        Ok(Listing {
            expire_date,
            expires_at,
            version,
            entries,
        })
    }
}

/// What [`write_directory`] lists for one file.
pub struct WrittenEntry<'a> {
    pub content_identifier: &'a str,
    pub instance: &'a str,
    pub location: &'a str,
    pub hash_algorithm: &'a str,
    pub hash: &'a [u8],
}

/// A directory's first part (the listing) as a central server writes it: returns the listing's
/// `Content-Type` and the bytes to sign.
pub fn write_listing(
    expire_date: &str,
    version: u8,
    entries: &[WrittenEntry<'_>],
) -> (String, Bytes) {
    let boundary = crate::message::mime::new_boundary("xdir");
    let mut out = String::new();
    out.push_str(&format!(
        "--{boundary}\r\nExpire-date: {expire_date}\r\nVersion: {version}\r\n\r\n"
    ));
    for e in entries {
        out.push_str(&format!(
            "--{boundary}\r\nContent-type: application/octet-stream\r\nContent-transfer-encoding: base64\r\n\
             Content-identifier: {}; instance='{}'\r\nContent-location: {}\r\nHash-algorithm-id: {}\r\n\r\n{}\r\n",
            e.content_identifier,
            e.instance,
            e.location,
            e.hash_algorithm,
            B64.encode(e.hash)
        ));
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    (
        format!("multipart/mixed; charset=UTF-8; boundary={boundary}"),
        Bytes::from(out),
    )
}

/// The whole directory as served, its MIME header first inside the body.
pub fn write_directory(
    listing_type: &str,
    signed: &[u8],
    signature_algorithm: &str,
    signature: &[u8],
    cert_hash_algorithm: &str,
    cert_hash: &[u8],
) -> Bytes {
    let mut w = MultipartWriter::new(
        crate::message::mime::new_boundary("xconf"),
        signed.len() + signature.len() * 2 + 512,
    );
    let boundary = w.boundary().to_string();
    w.raw_part(format!("Content-Type: {listing_type}").as_bytes(), signed);
    let sig_headers = format!(
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\
         Signature-Algorithm-Id: {signature_algorithm}\r\n\
         Verification-certificate-hash: {}; hash-algorithm-id=\"{cert_hash_algorithm}\"",
        B64.encode(cert_hash)
    );
    w.raw_part(sig_headers.as_bytes(), B64.encode(signature).as_bytes());
    let body = w.finish();
    let mut out =
        format!("Content-Type: multipart/related; charset=UTF-8; boundary={boundary}\r\n\r\n")
            .into_bytes();
    out.extend_from_slice(&body);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha512};

    const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/xroad/globalconf-download/"
    );

    fn read(rel: &str) -> Bytes {
        Bytes::from(std::fs::read(format!("{DIR}{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}")))
    }

    /// Every directory the central-server code wrote: the signed bytes are the first part's
    /// body (lengths from the vectors' README), the listing names files whose SHA-512 matches.
    #[test]
    fn central_server_directories() {
        for (dir, signed_len, expire, files) in [
            ("public/V6/internalconf", 843, "2035-11-11T03:07:40Z", 2),
            ("public/V5/internalconf", 843, "2035-03-01T14:39:11Z", 2),
            ("public/V5/externalconf", 470, "2035-03-01T14:39:11Z", 1),
            ("public/V4/internalconf", 843, "2034-05-30T06:46:02Z", 2),
            ("public/V3/internalconf", 841, "2034-04-09T00:36:51Z", 2),
            ("public/V2/internalconf", 1214, "2033-06-11T17:13:49Z", 3),
            ("rotated/V6/internalconf", 843, "2035-11-11T03:08:40Z", 2),
        ] {
            let d =
                SignedDirectory::parse(&read(dir), None).unwrap_or_else(|e| panic!("{dir}: {e}"));
            assert_eq!(d.signed.len(), signed_len, "{dir}");
            assert!(d.signed.ends_with(b"--\r\n"), "{dir}");
            assert_eq!(
                d.signature_algorithm,
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
            );
            assert_eq!(d.cert_hash.len(), 64, "{dir}");
            let l = d.listing().unwrap();
            assert_eq!(l.expire_date, expire, "{dir}");
            assert_eq!(l.entries.len(), files, "{dir}");
            let root = dir.split('/').next().unwrap();
            for e in &l.entries {
                if dir == "public/V6/externalconf" {
                    continue;
                }
                let file = read(&format!("{root}{}", e.location));
                assert_eq!(
                    Sha512::digest(&file).as_slice(),
                    e.hash,
                    "{dir} {}",
                    e.location
                );
                assert_eq!(e.hash_algorithm, "http://www.w3.org/2001/04/xmlenc#sha512");
            }
        }
        let v5 = SignedDirectory::parse(&read("public/V5/internalconf"), None).unwrap();
        let l = v5.listing().unwrap();
        assert_eq!(l.version, Some(5));
        assert_eq!(l.entries[0].content_identifier, "PRIVATE-PARAMETERS");
        assert_eq!(l.entries[0].instance.as_deref(), Some("DEV"));
        assert_eq!(l.entries[1].content_identifier, "SHARED-PARAMETERS");
    }

    #[test]
    fn refusals() {
        // Truncated, no signature part: X-Road never reads the listing.
        let e =
            SignedDirectory::parse(&read("handmade/test-conf-malformed.txt"), None).unwrap_err();
        assert!(
            matches!(
                e,
                DirectoryError::MissingSignature | DirectoryError::Malformed(_)
            ),
            "{e}"
        );
        let full = read("public/V5/internalconf");
        for cut in [0, 10, 100, full.len() / 2, full.len() - 10] {
            assert!(
                SignedDirectory::parse(&full.slice(..cut), None).is_err(),
                "cut at {cut}"
            );
        }
        assert!(
            SignedDirectory::parse(&Bytes::from(vec![b'a'; MAX_DIRECTORY_BYTES + 1]), None)
                .is_err()
        );
        // The HTTP Content-Type is used when the body carries no MIME header of its own.
        let start = full.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let ct = std::str::from_utf8(&full[14..start - 4])
            .unwrap()
            .trim()
            .to_string();
        let headless = full.slice(start..);
        SignedDirectory::parse(&headless, Some(&ct)).unwrap();
        assert!(SignedDirectory::parse(&headless, Some("text/plain")).is_err());
    }

    /// What [`write_listing`] and [`write_directory`] produce reads back the same.
    #[test]
    fn written_directories_read_back() {
        let hash = Sha512::digest(b"<conf/>").to_vec();
        let (ct, signed) = write_listing(
            "2030-01-01T00:00:00Z",
            5,
            &[WrittenEntry {
                content_identifier: "SHARED-PARAMETERS",
                instance: "SEVDEIR-TEST",
                location: "/V5/1/shared-params.xml",
                hash_algorithm: "http://www.w3.org/2001/04/xmlenc#sha512",
                hash: &hash,
            }],
        );
        let body = write_directory(
            &ct,
            &signed,
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
            b"sig",
            "http://www.w3.org/2001/04/xmlenc#sha512",
            &[7; 64],
        );
        let d = SignedDirectory::parse(&body, None).unwrap();
        assert_eq!(d.signed, signed);
        assert_eq!(d.signature, b"sig");
        assert_eq!(d.cert_hash, vec![7; 64]);
        let l = d.listing().unwrap();
        assert_eq!(l.expires_at, 1_893_456_000);
        assert_eq!(l.entries[0].instance.as_deref(), Some("SEVDEIR-TEST"));
        assert_eq!(l.entries[0].hash, hash);
    }
}
