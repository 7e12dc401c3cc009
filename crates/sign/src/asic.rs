//! ASiC-E containers (reference §6.4): one signed message as X-Road's message log exports it,
//! written by `brama sign` and checked by `brama verify`.

use std::borrow::Cow;
use std::io::{Read, Write};

use zip::write::SimpleFileOptions;

use super::batch::KeyWorker;
use super::digest::DigestAlgorithm;
use super::error::SignError;
use super::hashchain::{self, Input};
pub use super::stored_zip::StoredZip;
use super::tsp;
use super::verify::{self, At, Part, Signed, TrustStore, Verified};
use brama_xroad::identifiers::{ClientId, ServiceId};
use brama_xroad::message::soap::{SoapLimits, SoapMessage};

pub(crate) const MIMETYPE: &str = "application/vnd.etsi.asic-e+zip";
const SIGNATURES: &str = "META-INF/signatures.xml";
const TIMESTAMP: &str = "META-INF/timestamp.tst";
/// Containers are small; these bound what a hostile zip can make us inflate.
const MAX_ENTRIES: usize = 1000;
const MAX_TOTAL: u64 = 256 * 1024 * 1024;
/// A zip of containers holds at most what a zip without zip64 holds.
const MAX_ZIP_ENTRIES: usize = u16::MAX as usize;

/// The files of a container that verification reads.
#[derive(Clone, Debug, Default)]
pub struct Container {
    pub message: Vec<u8>,
    pub attachments: Vec<Vec<u8>>,
    pub signature: Vec<u8>,
    pub hash_chain_result: Option<Vec<u8>>,
    pub hash_chain: Option<Vec<u8>>,
    pub ts_hash_chain_result: Option<Vec<u8>>,
    pub ts_hash_chain: Option<Vec<u8>>,
    /// A batch time-stamp (`META-INF/timestamp.tst`, DER) over `ts_hash_chain_result`; a
    /// single message's is inside the signature.
    pub timestamp: Option<Vec<u8>>,
}

/// A container's files, borrowed: what is written, without copying a message into a
/// [`Container`] first (the message log writes one for every message).
#[derive(Clone, Copy, Debug, Default)]
pub struct Parts<'a> {
    pub message: &'a [u8],
    pub attachments: &'a [Vec<u8>],
    pub signature: &'a [u8],
    pub hash_chain_result: Option<&'a [u8]>,
    pub hash_chain: Option<&'a [u8]>,
    pub ts_hash_chain_result: Option<&'a [u8]>,
    pub ts_hash_chain: Option<&'a [u8]>,
    pub timestamp: Option<&'a [u8]>,
}

impl Container {
    pub fn parts(&self) -> Parts<'_> {
        Parts {
            message: &self.message,
            attachments: &self.attachments,
            signature: &self.signature,
            hash_chain_result: self.hash_chain_result.as_deref(),
            hash_chain: self.hash_chain.as_deref(),
            ts_hash_chain_result: self.ts_hash_chain_result.as_deref(),
            ts_hash_chain: self.ts_hash_chain.as_deref(),
            timestamp: self.timestamp.as_deref(),
        }
    }
}

impl Parts<'_> {
    /// About what the container takes, for sizing a buffer once.
    pub fn size_hint(&self) -> usize {
        let parts = [self.message, self.signature]
            .into_iter()
            .chain(self.attachments.iter().map(Vec::as_slice))
            .chain(self.hash_chain.into_iter().chain(self.hash_chain_result))
            .chain(
                self.ts_hash_chain
                    .into_iter()
                    .chain(self.ts_hash_chain_result),
            )
            .chain(self.timestamp);
        parts.map(<[u8]>::len).sum::<usize>() + 2048
    }

    pub fn to_container(&self) -> Container {
        Container {
            message: self.message.to_vec(),
            attachments: self.attachments.to_vec(),
            signature: self.signature.to_vec(),
            hash_chain_result: self.hash_chain_result.map(<[u8]>::to_vec),
            hash_chain: self.hash_chain.map(<[u8]>::to_vec),
            ts_hash_chain_result: self.ts_hash_chain_result.map(<[u8]>::to_vec),
            ts_hash_chain: self.ts_hash_chain.map(<[u8]>::to_vec),
            timestamp: self.timestamp.map(<[u8]>::to_vec),
        }
    }
}

fn structure(m: impl Into<String>) -> SignError {
    SignError::malformed(m).with_sub("InvalidContainer")
}

/// Reads a container, refusing anything that is not an ASiC-E with a message and a signature.
pub fn read(bytes: &[u8]) -> Result<Container, SignError> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| structure(format!("not a zip container: {e}")))?;
    if zip.len() > MAX_ENTRIES {
        return Err(structure("too many entries"));
    }
    let mut total = 0u64;
    let mut entry = |zip: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
                     name: &str|
     -> Result<Option<Vec<u8>>, SignError> {
        let mut f = match zip.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(structure(format!("{name}: {e}"))),
        };
        let mut buf = Vec::new();
        let n = (&mut f)
            .take(MAX_TOTAL - total + 1)
            .read_to_end(&mut buf)
            .map_err(|e| structure(format!("{name}: {e}")))?;
        total += n as u64;
        if total > MAX_TOTAL {
            return Err(structure("container is too large"));
        }
        Ok(Some(buf))
    };
    match entry(&mut zip, "mimetype")? {
        Some(m) if m.trim_ascii() == MIMETYPE.as_bytes() => {}
        Some(_) => return Err(structure("mimetype is not application/vnd.etsi.asic-e+zip")),
        None => return Err(structure("no mimetype entry")),
    }
    let message = entry(&mut zip, "message.xml")?.ok_or_else(|| structure("no message.xml"))?;
    let signature =
        entry(&mut zip, SIGNATURES)?.ok_or_else(|| structure("no META-INF/signatures.xml"))?;
    let mut attachments = Vec::new();
    while let Some(a) = entry(&mut zip, &format!("attachment{}", attachments.len() + 1))? {
        attachments.push(a);
    }
    Ok(Container {
        message,
        attachments,
        signature,
        hash_chain_result: entry(&mut zip, "sig-hashchainresult.xml")?,
        hash_chain: entry(&mut zip, "sig-hashchain.xml")?,
        ts_hash_chain_result: entry(&mut zip, "ts-hashchainresult.xml")?,
        ts_hash_chain: entry(&mut zip, "ts-hashchain.xml")?,
        timestamp: entry(&mut zip, TIMESTAMP)?,
    })
}

/// Signs messages (each its bytes and attachments) with one key in one batch and returns their
/// containers; `force_chain` gives the hash-chain form even to a lone message.
pub async fn sign_containers(
    key: &KeyWorker,
    messages: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    force_chain: bool,
) -> Vec<Result<Container, SignError>> {
    let digests = messages
        .iter()
        .map(|(m, atts)| {
            std::iter::once(m)
                .chain(atts)
                .map(|p| key.digest().digest(p))
                .collect()
        })
        .collect();
    let signatures = key.sign_many(digests, force_chain).await;
    messages
        .into_iter()
        .zip(signatures)
        .map(|((message, attachments), sig)| {
            let sig = sig?;
            Ok(Container {
                message,
                attachments,
                signature: sig.signature.map(|b| b.to_vec()).unwrap_or_default(),
                hash_chain_result: sig.hash_chain_result.map(|b| b.to_vec()),
                hash_chain: sig.hash_chain.map(|b| b.to_vec()),
                ..Default::default()
            })
        })
        .collect()
}

/// Writes a container: `mimetype` first and stored, as ASiC requires.
pub fn write(c: &Container) -> std::io::Result<Vec<u8>> {
    write_parts(&c.parts())
}

/// [`write()`] from borrowed parts.
pub fn write_parts(p: &Parts) -> std::io::Result<Vec<u8>> {
    write_listing(
        p,
        p.ts_hash_chain_result.is_some(),
        Vec::with_capacity(p.size_hint()),
    )
}

/// Appends to `out` a container whose batch time-stamp is added later ([`append_timestamp`]):
/// its manifest already lists the time-stamp hash-chain files, as the finished container has
/// them. What `out` held before (a frame header) stays in front.
pub fn append_for_stamping(p: &Parts, out: &mut Vec<u8>) -> std::io::Result<()> {
    out.reserve(p.size_hint());
    write_listing(p, true, out).map(drop)
}

/// Refused only past the zip limits (65,534 entries, 4 GiB): larger bodies stream
/// ([`write_streaming`]).
fn write_listing<W: Write>(c: &Parts, ts_listed: bool, out: W) -> std::io::Result<W> {
    // Logged on the hot path: stored, not deflated (deflating costs more CPU than the
    // signature, and a compressor's state per container).
    let mut zip = StoredZip::new(out);
    zip.put("mimetype", MIMETYPE.as_bytes())?;
    zip.put("message.xml", c.message)?;
    for (i, a) in c.attachments.iter().enumerate() {
        zip.put(&format!("attachment{}", i + 1), a)?;
    }
    if let Some(r) = c.hash_chain_result {
        zip.put("sig-hashchainresult.xml", r)?;
    }
    if let Some(h) = c.hash_chain {
        zip.put("sig-hashchain.xml", h)?;
    }
    if let Some(r) = c.ts_hash_chain_result {
        zip.put("ts-hashchainresult.xml", r)?;
    }
    if let Some(h) = c.ts_hash_chain {
        zip.put("ts-hashchain.xml", h)?;
    }
    zip.put(SIGNATURES, c.signature)?;
    if let Some(t) = c.timestamp {
        zip.put(TIMESTAMP, t)?;
        if let Some(r) = c.ts_hash_chain_result {
            zip.put("META-INF/ASiCManifest.xml", asic_manifest(r).as_bytes())?;
        }
    }
    zip.put(
        "META-INF/manifest.xml",
        manifest(c, 0, ts_listed).as_bytes(),
    )?;
    zip.finish()
}

/// Writes a container whose last attachment (a REST body) streams from `body` into `out`, never
/// whole in memory: how a large body is logged. The manifest lists the time-stamp hash-chain
/// files when `ts_listed` (a batch time-stamp is appended later, [`append_timestamp`]).
pub fn write_streaming<W: Write + std::io::Seek>(
    out: W,
    c: &Container,
    body: &mut dyn Read,
    ts_listed: bool,
) -> std::io::Result<W> {
    let mut zip = zip::ZipWriter::new(out);
    let stored = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let put = |zip: &mut zip::ZipWriter<W>, name: &str, data: &mut dyn Read| {
        zip.start_file(name, stored)
            .map_err(std::io::Error::other)?;
        std::io::copy(data, zip).map(|_| ())
    };
    put(&mut zip, "mimetype", &mut MIMETYPE.as_bytes())?;
    put(&mut zip, "message.xml", &mut c.message.as_slice())?;
    for (i, a) in c.attachments.iter().enumerate() {
        put(&mut zip, &format!("attachment{}", i + 1), &mut a.as_slice())?;
    }
    put(
        &mut zip,
        &format!("attachment{}", c.attachments.len() + 1),
        body,
    )?;
    if let Some(r) = &c.hash_chain_result {
        put(&mut zip, "sig-hashchainresult.xml", &mut r.as_slice())?;
    }
    if let Some(h) = &c.hash_chain {
        put(&mut zip, "sig-hashchain.xml", &mut h.as_slice())?;
    }
    put(&mut zip, SIGNATURES, &mut c.signature.as_slice())?;
    // The manifest counts the streamed body among the attachments.
    put(
        &mut zip,
        "META-INF/manifest.xml",
        &mut manifest(&c.parts(), 1, ts_listed).as_bytes(),
    )?;
    zip.finish().map_err(std::io::Error::other)
}

/// Adds a batch time-stamp to a container written by [`append_for_stamping`], in place: the
/// result and this record's chain, the token, and the ASiC manifest naming it. Nothing already
/// in the container is read again or rewritten.
pub fn append_timestamp<F: Read + Write + std::io::Seek>(
    file: &mut F,
    ts_result: &[u8],
    ts_chain: &[u8],
    token: &[u8],
) -> std::io::Result<()> {
    let mut zip = zip::ZipWriter::new_append(&mut *file).map_err(std::io::Error::other)?;
    let deflated = SimpleFileOptions::default();
    for (name, data) in timestamp_entries(ts_result, ts_chain, token) {
        zip.start_file(name, deflated)
            .map_err(std::io::Error::other)?;
        zip.write_all(&data)?;
    }
    zip.finish().map_err(std::io::Error::other)?;
    Ok(())
}

/// [`append_timestamp`] for a container in memory, as the message log's queue holds it: the
/// container continues where its central directory was, without reading its entries again.
pub fn with_timestamp(
    container: Vec<u8>,
    ts_result: &[u8],
    ts_chain: &[u8],
    token: &[u8],
) -> std::io::Result<Vec<u8>> {
    let mut zip = match StoredZip::reopen(container) {
        Ok(zip) => zip,
        Err(other) => {
            let mut c = std::io::Cursor::new(other);
            append_timestamp(&mut c, ts_result, ts_chain, token)?;
            return Ok(c.into_inner());
        }
    };
    for (name, data) in timestamp_entries(ts_result, ts_chain, token) {
        zip.put(name, &data)?;
    }
    zip.finish()
}

/// The entries a batch time-stamp adds to a container.
fn timestamp_entries<'a>(
    ts_result: &'a [u8],
    ts_chain: &'a [u8],
    token: &'a [u8],
) -> [(&'static str, Cow<'a, [u8]>); 4] {
    [
        ("ts-hashchainresult.xml", Cow::Borrowed(ts_result)),
        ("ts-hashchain.xml", Cow::Borrowed(ts_chain)),
        (TIMESTAMP, Cow::Borrowed(token)),
        (
            "META-INF/ASiCManifest.xml",
            Cow::Owned(asic_manifest(ts_result).into_bytes()),
        ),
    ]
}

/// The `.asice` entries of a zip of containers (a `GET /asic` download, an archive)
/// whose names `keep` accepts, in the zip's order, each given to `each` (name, bytes) as it is
/// read: memory holds one container at a time, at most what [`read`] accepts of one, and a zip
/// of more entries than a zip without zip64 holds is refused.
pub fn each_in_zip<R: Read + std::io::Seek>(
    from: R,
    keep: &dyn Fn(&str) -> bool,
    each: &mut dyn FnMut(String, Vec<u8>) -> Result<(), SignError>,
) -> Result<(), SignError> {
    let mut zip = zip::ZipArchive::new(from).map_err(|e| structure(format!("not a zip: {e}")))?;
    if zip.len() > MAX_ZIP_ENTRIES {
        return Err(structure("too many entries"));
    }
    for i in 0..zip.len() {
        let mut f = zip
            .by_index(i)
            .map_err(|e| structure(format!("entry {i}: {e}")))?;
        let name = f.name().to_string();
        if !name.ends_with(".asice") || !keep(&name) {
            continue;
        }
        let mut buf = Vec::new();
        (&mut f)
            .take(MAX_TOTAL + 1)
            .read_to_end(&mut buf)
            .map_err(|e| structure(format!("{name}: {e}")))?;
        if buf.len() as u64 > MAX_TOTAL {
            return Err(structure(format!("{name} is too large")));
        }
        each(name, buf)?;
    }
    Ok(())
}

/// The signature document of a container, read alone (the time-stamper needs only its digest).
pub fn read_signature(bytes: &[u8]) -> Result<Vec<u8>, SignError> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| structure(format!("not a zip container: {e}")))?;
    let mut f = zip
        .by_name(SIGNATURES)
        .map_err(|_| structure("no META-INF/signatures.xml"))?;
    let mut out = Vec::new();
    (&mut f)
        .take(MAX_TOTAL)
        .read_to_end(&mut out)
        .map_err(|e| structure(format!("{SIGNATURES}: {e}")))?;
    Ok(out)
}

/// A plain zip of `entries` (name, bytes), deflated: what `GET /asic` answers with several
/// containers and `GET /verificationconf` with the configuration files.
pub fn zip_files<'a>(entries: impl IntoIterator<Item = (String, &'a [u8])>) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        zip.start_file(name, SimpleFileOptions::default())
            .expect("in-memory zip");
        zip.write_all(data).expect("in-memory zip");
    }
    zip.finish().expect("in-memory zip").into_inner()
}

/// The OpenDocument manifest: the container, then every entry outside `META-INF/`, as X-Road
/// lists them (a reader checks it against the entries).
fn manifest(c: &Parts, more_attachments: usize, ts_listed: bool) -> String {
    let mut m = String::with_capacity(1024);
    m.push_str(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.etsi.asic-e+zip"/>"#,
    );
    // Pushed piece by piece: written for every logged message.
    let mut entry = |path: &dyn std::fmt::Display, media: &str| {
        use std::fmt::Write;
        let _ = write!(
            m,
            r#"<manifest:file-entry manifest:full-path="{path}" manifest:media-type="{media}"/>"#
        );
    };
    entry(&"message.xml", "text/xml");
    for i in 0..c.attachments.len() + more_attachments {
        entry(
            &format_args!("attachment{}", i + 1),
            "application/octet-stream",
        );
    }
    for (name, present) in [
        ("sig-hashchainresult.xml", c.hash_chain_result.is_some()),
        ("sig-hashchain.xml", c.hash_chain.is_some()),
        ("ts-hashchainresult.xml", ts_listed),
        ("ts-hashchain.xml", ts_listed),
    ] {
        if present {
            entry(&name, "text/xml");
        }
    }
    m.push_str("</manifest:manifest>");
    m
}

/// `META-INF/ASiCManifest.xml` of a batch time-stamp: the token and the hash-chain result it
/// covers (ETSI TS 102 918), as X-Road writes it.
fn asic_manifest(ts_result: &[u8]) -> String {
    use base64::Engine;
    let digest =
        base64::engine::general_purpose::STANDARD.encode(DigestAlgorithm::Sha512.digest(ts_result));
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><asic:ASiCManifest xmlns:asic="http://uri.etsi.org/2918/v1.2.1#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><asic:SigReference URI="{TIMESTAMP}" MimeType="vnd.etsi.timestamp-token"/><asic:DataObjectReference URI="ts-hashchainresult.xml" MimeType="text/xml"><ds:DigestMethod Algorithm="{}"/><ds:DigestValue>{digest}</ds:DigestValue></asic:DataObjectReference></asic:ASiCManifest>"#,
        DigestAlgorithm::Sha512.uri()
    )
}

/// Who and what a logged message names: the X-Road `id` (the information system's query id),
/// the client, and whether it is a response (SOAP with `requestHash`, a REST status line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageIds {
    pub query_id: Option<String>,
    pub client: Option<ClientId>,
    pub service: Option<ServiceId>,
    pub response: bool,
}

impl MessageIds {
    /// Reads them from a message: a SOAP envelope or a REST header part.
    pub fn of(message: &[u8]) -> Result<MessageIds, SignError> {
        let first = message.first().copied().unwrap_or(b' ');
        if first.is_ascii_alphanumeric() {
            // A REST header part: a METHOD (request) or STATUS (response) line, then
            // `name:value` lines.
            let text = String::from_utf8_lossy(message);
            let header = |want: &str| {
                text.lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.eq_ignore_ascii_case(want))
                    .map(|(_, v)| v.trim().to_string())
            };
            let bad = |h: &str, e: String| SignError::malformed(format!("{h}: {e}"));
            return Ok(MessageIds {
                query_id: header("x-road-id"),
                client: header("x-road-client")
                    .map(|v| ClientId::parse_path(&v).map_err(|e| bad("x-road-client", e)))
                    .transpose()?,
                service: header("x-road-service")
                    .map(|v| ServiceId::parse_path(&v).map_err(|e| bad("x-road-service", e)))
                    .transpose()?,
                response: first.is_ascii_digit(),
            });
        }
        let soap = SoapMessage::parse(
            bytes::Bytes::copy_from_slice(message),
            None,
            &SoapLimits::default(),
        )
        .map_err(|e| SignError::malformed(format!("message.xml: {e}")))?;
        // Only the identifiers are needed: archived messages need not pass today's validation.
        let h = soap.header;
        Ok(MessageIds {
            query_id: h.id,
            client: h.client,
            service: h.service,
            response: h.request_hash.is_some(),
        })
    }

    /// The member who must have signed it: the client of a request, the service provider of a
    /// response.
    pub fn signer(&self) -> Result<ClientId, SignError> {
        let (member, want) = match self.response {
            true => (
                self.service.as_ref().map(|s| s.provider.member_id()),
                "x-road-service",
            ),
            false => (
                self.client.as_ref().map(ClientId::member_id),
                "x-road-client",
            ),
        };
        member.ok_or_else(|| {
            SignError::malformed(format!(
                "the message names no signer ({want} or its SOAP header)"
            ))
        })
    }
}

/// Verifies a container as X-Road's `AsicContainerVerifier` does: its time-stamp first (a batch
/// one through its own hash chain over `META-INF/signatures.xml`, a single one over the
/// signature value), then the signature with certificates and OCSP checked as of the
/// time-stamp's `genTime`; without a time-stamp, as of the signature's `SigningTime`.
pub fn verify_container(c: &Container, trust: &TrustStore) -> Result<Verified, SignError> {
    let stamped = match (&c.timestamp, &c.ts_hash_chain_result, &c.ts_hash_chain) {
        (Some(token), Some(result), Some(chain)) => {
            let alg =
                DigestAlgorithm::from_uri(&hashchain::parse_result(result, &trust.xml)?.method)
                    .ok_or_else(|| {
                        SignError::malformed("unsupported time-stamp hash chain digest")
                    })?;
            let resolve = |uri: &str| {
                (uri == hashchain::TS_HASHCHAIN).then_some(Cow::Borrowed(chain.as_slice()))
            };
            hashchain::verify(
                result,
                &resolve,
                &[Input {
                    uri: hashchain::SIGNATURES,
                    digest: Some(alg.digest(&c.signature)),
                    compare: true,
                }],
                &trust.xml,
            )?;
            Some(tsp::verify(token, result, &trust.tsa_certs)?)
        }
        (None, None, None) => {
            let sig = crate::xades::parse(&c.signature, &trust.xml)?;
            match &sig.timestamp {
                Some(token) => Some(tsp::verify(token, &sig.signature_value, &trust.tsa_certs)?),
                None => None,
            }
        }
        (None, Some(result), _) => {
            // Checked for what it is, then refused for what is missing.
            hashchain::parse_result(result, &trust.xml)?;
            return Err(structure(
                "a time-stamp hash chain without META-INF/timestamp.tst",
            ));
        }
        _ => {
            return Err(structure(
                "META-INF/timestamp.tst without its ts-hashchain files",
            ))
        }
    };
    let signer = MessageIds::of(&c.message)?.signer()?;
    let parts = Part::list(&c.message, c.attachments.iter().map(Vec::as_slice));
    let at = stamped
        .as_ref()
        .map_or(At::SigningTime, |s| At::Stamped(s.gen_time));
    let mut verified = verify::verify(
        Signed {
            signature: &c.signature,
            hash_chain_result: c.hash_chain_result.as_deref(),
            hash_chain: c.hash_chain.as_deref(),
        },
        &parts,
        trust,
        Some(&signer),
        at,
    )?;
    verified.time_stamped_at = stamped.map(|s| s.gen_time);
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(
        zip: &[u8],
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<(String, Vec<u8>)>, SignError> {
        let mut out = Vec::new();
        each_in_zip(std::io::Cursor::new(zip), keep, &mut |name, bytes| {
            out.push((name, bytes));
            Ok(())
        })?;
        Ok(out)
    }

    fn zipped(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = StoredZip::new(Vec::new());
        for (name, bytes) in entries {
            zip.put(name, bytes).unwrap();
        }
        zip.finish().unwrap()
    }

    #[test]
    fn a_zip_of_containers_gives_them_and_refuses_what_is_not_one() {
        let z = zipped(&[
            ("a.asice", b"one"),
            ("linkinginfo", b"x"),
            ("b.asice", b"two"),
        ]);
        let all = read_all(&z, &|_| true).unwrap();
        assert_eq!(
            all,
            [
                ("a.asice".into(), b"one".to_vec()),
                ("b.asice".into(), b"two".to_vec())
            ]
        );
        let some = read_all(&z, &|n| n.starts_with('b')).unwrap();
        assert_eq!(some.len(), 1);

        // Not a zip, a cut zip, an entry larger than a container may be: refused, no panic.
        for bad in [b"garbage".to_vec(), z[..z.len() - 5].to_vec()] {
            assert!(read_all(&bad, &|_| true).is_err());
        }
        let big = vec![0u8; MAX_TOTAL as usize + 1];
        let z = zipped(&[("big.asice", &big)]);
        let e = read_all(&z, &|_| true).unwrap_err();
        assert!(e.message.contains("too large"), "{e}");
    }
}
