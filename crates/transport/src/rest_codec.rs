//! REST messages between security servers (reference §3.3): the same `multipart/mixed` layout
//! as SOAP, with the REST header part (`application/x-road-rest-request` / `-response`) in place
//! of the envelope and the body, if any, as `application/x-road-rest-body`.
//!
//! Both directions stream: the encoder writes the body between the header part and the
//! signature as it is read from its spool, and the decoder spools the body part as it arrives
//! (digesting it on the way), so a large body never sits in memory.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use super::codec::{CT_HASH_CHAIN, CT_HASH_CHAIN_RESULT, CT_OCSP, CT_SIGNATURE};
use super::spool::{Spool, SpoolConfig, SpoolError, Spooled};
use crate::body::Body;
use brama_sign::digest::DigestAlgorithm;
use brama_sign::SignatureParts;
use brama_xroad::error::ErrorCode;
use brama_xroad::message::mime::{self, ContentType, MultipartWriter};
use brama_xroad::message::soap::{SoapLimits, SoapMessage};
use brama_xroad::message::MessageError;

pub const CT_REST_REQUEST: &str = "application/x-road-rest-request";
pub const CT_REST_RESPONSE: &str = "application/x-road-rest-response";
pub(crate) const CT_REST_BODY: &str = "application/x-road-rest-body";
pub const HDR_MESSAGE_TYPE: &str = "x-road-message-type";
pub const MESSAGE_TYPE_REST: &str = "REST";

/// Parts other than the body are small; this bounds each of them.
const MAX_SMALL_PART: usize = 4 * 1024 * 1024;

/// Encodes a REST message; returns (Content-Type, streaming body).
pub fn encode(
    ocsp: &[Bytes],
    header_ct: &str,
    header_part: &Bytes,
    body: Option<&Spooled>,
    sig: &SignatureParts,
) -> (String, Body) {
    let mut w = MultipartWriter::new(mime::new_boundary("xtop"), header_part.len() + 1024);
    let ct = format!("multipart/mixed; charset=UTF-8; boundary={}", w.boundary());
    for o in ocsp {
        w.part(CT_OCSP, o);
    }
    w.part(header_ct, header_part);
    let body = body.filter(|b| !b.is_empty());
    if body.is_some() {
        w.open_part(CT_REST_BODY);
    }
    let head = w.take();
    if body.is_some() {
        w.close_part();
    }
    super::codec::write_signature(&mut w, sig);
    let tail = w.finish();
    let out = match body {
        None => {
            let mut all = bytes::BytesMut::with_capacity(head.len() + tail.len());
            all.extend_from_slice(&head);
            all.extend_from_slice(&tail);
            crate::body::full(all.freeze())
        }
        Some(b) => {
            let head = futures_util::stream::once(async move { Ok(Frame::data(head)) });
            let tail = futures_util::stream::once(async move { Ok(Frame::data(tail)) });
            let middle = b.body().into_data_stream();
            let middle = futures_util::StreamExt::map(middle, |r| r.map(Frame::data));
            let all =
                futures_util::StreamExt::chain(futures_util::StreamExt::chain(head, middle), tail);
            StreamBody::new(all).boxed()
        }
    };
    (ct, out)
}

/// A decoded REST transport message.
#[derive(Debug)]
pub struct RestIncoming {
    pub ocsp: Vec<Bytes>,
    pub header_part: Bytes,
    pub body: Option<Spooled>,
    pub signature: SignatureParts,
}

/// What a REST transport body turned out to be.
#[derive(Debug)]
pub enum Decoded {
    Message(Box<RestIncoming>),
    /// A SOAP fault: the whole body (`text/xml`), or the last part (the sender failed while
    /// streaming). X-Road's security servers report errors this way for REST too.
    Fault(Box<SoapMessage>),
}

/// How to decode.
pub struct DecodeLimits<'a> {
    pub spool: &'a SpoolConfig,
    pub soap: &'a SoapLimits,
    pub max_parts: usize,
    /// `x-hash-algorithm` of the message: the body is digested with it while spooled.
    pub digest: DigestAlgorithm,
    /// Where the body's memory part is counted (requests from peers).
    pub budget: Option<&'a std::sync::Arc<crate::body::MemoryBudget>>,
}

fn err(code: ErrorCode, m: impl Into<String>) -> MessageError {
    MessageError::new(code, m)
}

/// Decodes a REST transport message from a streaming body. `header_ct` is the header part type
/// expected (request or response).
pub async fn decode<B>(
    content_type: &str,
    body: B,
    header_ct: &str,
    limits: &DecodeLimits<'_>,
) -> Result<Decoded, MessageError>
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let ct = ContentType::parse(content_type)?;
    if ct.mime == "text/xml" {
        let bytes = http_body_util::Limited::new(body, MAX_SMALL_PART)
            .collect()
            .await
            .map_err(|e| err(ErrorCode::IoError, format!("reading the fault failed: {e}")))?
            .to_bytes();
        return Ok(Decoded::Fault(Box::new(SoapMessage::parse(
            bytes,
            ct.charset(),
            limits.soap,
        )?)));
    }
    if ct.mime != "multipart/mixed" {
        return Err(err(
            ErrorCode::InvalidContentType,
            format!("Invalid transport content type '{}'", ct.mime),
        ));
    }
    let boundary = ct
        .param("boundary")
        .ok_or_else(|| {
            err(
                ErrorCode::InvalidContentType,
                "transport message without boundary",
            )
        })?
        .to_string();
    let body = Arc::new(Mutex::new(body));
    let stream = SharedBody(body.clone());
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limits.spool.max + (limits.max_parts * MAX_SMALL_PART) as u64),
    );
    let mut mp = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mime_err = |e: multer::Error| err(ErrorCode::MimeParsingFailed, e.to_string());

    let mut msg = RestIncoming {
        ocsp: Vec::new(),
        header_part: Bytes::new(),
        body: None,
        signature: SignatureParts::default(),
    };
    let mut seen_header = false;
    let mut parts = 0usize;
    while let Some(mut field) = mp.next_field().await.map_err(mime_err)? {
        parts += 1;
        if parts > limits.max_parts {
            return Err(err(
                ErrorCode::MimeParsingFailed,
                format!("transport message has more than {} parts", limits.max_parts),
            ));
        }
        if msg.signature.signature.is_some() {
            return Err(err(
                ErrorCode::InvalidMessage,
                "Transport message has parts after its signature",
            ));
        }
        let part_ct = field
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("text/plain")
            .to_string();
        let part_type = ContentType::parse(&part_ct)?;
        let mime = part_type.mime.as_str();
        if mime == CT_REST_BODY {
            if !seen_header || msg.body.is_some() {
                return Err(err(
                    ErrorCode::InvalidMessage,
                    "REST body part out of place",
                ));
            }
            let mut spool = Spool::new(limits.spool, limits.digest);
            if let Some(b) = limits.budget {
                spool = spool.with_budget(b);
            }
            while let Some(chunk) = field.chunk().await.map_err(mime_err)? {
                spool.write(&chunk).await.map_err(spool_err)?;
            }
            msg.body = Some(spool.finish().await.map_err(spool_err)?);
            continue;
        }
        let data = small_part(&mut field).await.map_err(mime_err)?;
        match mime {
            CT_OCSP if !seen_header => msg.ocsp.push(data),
            m if m == header_ct && !seen_header => {
                msg.header_part = data;
                seen_header = true;
            }
            CT_HASH_CHAIN_RESULT if seen_header => msg.signature.hash_chain_result = Some(data),
            CT_HASH_CHAIN if seen_header => msg.signature.hash_chain = Some(data),
            CT_SIGNATURE if seen_header => msg.signature.signature = Some(data),
            "text/xml" => {
                return Ok(Decoded::Fault(Box::new(SoapMessage::parse(
                    data,
                    part_type.charset(),
                    limits.soap,
                )?)))
            }
            other => {
                return Err(err(
                    ErrorCode::InvalidMessage,
                    format!("Unexpected part '{other}' in REST transport message"),
                ))
            }
        }
    }
    if !seen_header {
        return Err(err(
            ErrorCode::MissingSoap,
            "transport message has no REST header part",
        ));
    }
    drop(mp);
    read_to_end(&body).await;
    Ok(Decoded::Message(Box::new(msg)))
}

/// The body, shared between multer and the decoder: multer stops at the closing boundary, and
/// the decoder then reads what follows (the chunked terminator, any epilogue) so the connection
/// can carry the next message. A body left unfinished costs a new TLS connection per message.
struct SharedBody<B>(Arc<Mutex<B>>);

impl<B> futures_util::Stream for SharedBody<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    type Item = Result<Bytes, B::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut body = self.0.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            return match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    Err(_) => continue, // trailers carry nothing for us
                },
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

/// Past the closing boundary a well-behaved peer sends nothing more; these bound a peer that does.
const MAX_EPILOGUE: usize = 64 * 1024;
const EPILOGUE_WAIT: Duration = Duration::from_secs(1);

/// Reads the body to its end, discarding at most `MAX_EPILOGUE` bytes for `EPILOGUE_WAIT`; past
/// either the connection is simply not reused.
async fn read_to_end<B>(body: &Mutex<B>)
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut left = MAX_EPILOGUE;
    let drain = std::future::poll_fn(|cx| {
        let mut body = body.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let n = frame.data_ref().map_or(0, Bytes::len);
                    if n > left {
                        return Poll::Ready(());
                    }
                    left -= n;
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    });
    let _ = tokio::time::timeout(EPILOGUE_WAIT, drain).await;
}

fn spool_err(e: SpoolError) -> MessageError {
    match e {
        SpoolError::TooLarge(n) => err(
            ErrorCode::InvalidMessage,
            format!("REST body is larger than the limit of {n} bytes"),
        ),
        SpoolError::Io(e) => err(ErrorCode::IoError, e.to_string()),
        SpoolError::Intake(e) => {
            let f =
                brama_xroad::error::ToFault::to_fault(&e, brama_xroad::error::Prefix::ServerProxy);
            err(ErrorCode::IoError, f.message)
        }
    }
}

async fn small_part(field: &mut multer::Field<'_>) -> Result<Bytes, multer::Error> {
    let mut out = bytes::BytesMut::new();
    while let Some(c) = field.chunk().await? {
        if out.len() + c.len() > MAX_SMALL_PART {
            return Err(multer::Error::FieldSizeExceeded {
                limit: MAX_SMALL_PART as u64,
                field_name: None,
            });
        }
        out.extend_from_slice(&c);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(spool: &SpoolConfig) -> DecodeLimits<'_> {
        static SOAP: std::sync::OnceLock<SoapLimits> = std::sync::OnceLock::new();
        DecodeLimits {
            spool,
            soap: SOAP.get_or_init(SoapLimits::default),
            max_parts: 16,
            digest: DigestAlgorithm::Sha512,
            budget: None,
        }
    }

    fn sig() -> SignatureParts {
        SignatureParts {
            hash_chain_result: Some(Bytes::from_static(b"<result/>")),
            hash_chain: Some(Bytes::from_static(b"<chain/>")),
            signature: Some(Bytes::from_static(b"<sig/>")),
        }
    }

    async fn round_trip(body: Option<Spooled>, spool: &SpoolConfig) -> RestIncoming {
        let header = Bytes::from_static(b"GET\r\n/r1/A/B/C/D/s\r\nx-road-client:A/B/C\r\n");
        let (ct, encoded) = encode(
            &[Bytes::from_static(b"ocsp")],
            CT_REST_REQUEST,
            &header,
            body.as_ref(),
            &sig(),
        );
        match decode(&ct, encoded, CT_REST_REQUEST, &limits(spool))
            .await
            .unwrap()
        {
            Decoded::Message(m) => {
                assert_eq!(m.header_part, header);
                assert_eq!(m.ocsp, vec![Bytes::from_static(b"ocsp")]);
                assert_eq!(m.signature.signature.as_deref(), Some(&b"<sig/>"[..]));
                *m
            }
            Decoded::Fault(f) => panic!("fault {f:?}"),
        }
    }

    #[tokio::test]
    async fn encodes_and_decodes_with_and_without_body() {
        let spool = SpoolConfig {
            memory: 1024,
            ..SpoolConfig::default()
        };
        assert!(round_trip(None, &spool).await.body.is_none());
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 13) as u8).collect();
        let b = Spooled::from_bytes(Bytes::from(data.clone()), DigestAlgorithm::Sha512);
        let got = round_trip(Some(b.clone()), &spool).await.body.unwrap();
        assert!(got.on_disk());
        assert_eq!(got.digest, b.digest);
        assert_eq!(&got.to_bytes().await.unwrap()[..], &data[..]);
    }

    #[tokio::test]
    async fn refuses_misplaced_parts_and_reads_faults() {
        let spool = SpoolConfig::default();
        let bad = "--b\r\nContent-Type: application/x-road-rest-body\r\n\r\nx\r\n--b--\r\n";
        let e = decode(
            "multipart/mixed; boundary=b",
            http_body_util::Full::new(Bytes::from(bad)),
            CT_REST_REQUEST,
            &limits(&spool),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidMessage);
        let fault = brama_xroad::error::Fault::new(
            brama_xroad::error::Prefix::ServerProxy,
            ErrorCode::AccessDenied,
            "no",
        );
        let d = decode(
            "text/xml; charset=UTF-8",
            http_body_util::Full::new(fault.to_soap()),
            CT_REST_RESPONSE,
            &limits(&spool),
        )
        .await
        .unwrap();
        assert!(matches!(d, Decoded::Fault(_)));
    }
}
