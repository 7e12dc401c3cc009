//! Typed payloads in and out of X-Road SOAP envelopes.
//!
//! Responses are read by the gateway's one envelope parser ([`SoapMessage`], default limits);
//! only the wrapper's original bytes go to yaserde, with the namespace declarations of Envelope
//! and Body copied onto it so its prefixes still resolve.

use bytes::Bytes;

use super::{ClientError, Operation, Payload, XRoadHeader};
use brama_xroad::message::build::{self, RequestHeader};
use brama_xroad::message::soap::{SoapBody, SoapLimits, SoapMessage};

/// A complete X-Road 4.0 request envelope for operation `O`.
pub fn request_envelope<O: Operation>(
    h: &XRoadHeader,
    req: &O::Request,
) -> Result<Vec<u8>, ClientError> {
    if h.service.service_code != O::NAME {
        return Err(ClientError::Request(format!(
            "the header names service '{}' but the body is {}",
            h.service.service_code,
            O::NAME
        )));
    }
    let body = request_body::<O>(req)?;
    let header = RequestHeader {
        client: h.client.clone(),
        service: h.service.clone(),
        id: h.id.clone(),
        user_id: h.user_id.clone(),
        issue: h.issue.clone(),
        security_server: None,
    };
    Ok(build::request(&header, &body).into_bytes())
}

/// The Body's element of operation `O`'s request, as XML text.
pub fn request_body<O: Operation>(req: &O::Request) -> Result<String, ClientError> {
    let config = yaserde::ser::Config {
        perform_indent: false,
        write_document_declaration: false,
        indent_string: None,
    };
    yaserde::ser::to_string_with_config(req, &config)
        .map_err(|e| ClientError::Request(format!("{}: {e}", O::Request::ELEMENT)))
}

/// Operation `O`'s request as the message the client proxy takes, built from its Body element
/// ([`request_body`]) without parsing it.
pub fn request_message<O: Operation>(h: &RequestHeader, body: &str) -> SoapMessage {
    build::request_message(
        h,
        build::BodyElement {
            xml: body,
            local_name: O::Request::ELEMENT,
            namespace: Some(O::NAMESPACE),
        },
    )
}

/// The typed response of operation `O`, or the SOAP fault it carries.
pub fn parse_response<O: Operation>(xml: &[u8]) -> Result<O::Response, ClientError> {
    let msg = SoapMessage::parse(Bytes::copy_from_slice(xml), None, &SoapLimits::default())
        .map_err(|e| ClientError::Malformed(e.message))?;
    read_response::<O>(&msg)
}

/// [`parse_response`] of a message already parsed (the client proxy's verified answer).
pub fn read_response<O: Operation>(msg: &SoapMessage) -> Result<O::Response, ClientError> {
    let expected = O::Response::ELEMENT;
    match &msg.body {
        SoapBody::Fault {
            code,
            string,
            detail,
        } => {
            // A service's own detail, when it is not X-Road's `faultDetail`, as XML.
            let raw = msg
                .fault_detail_content()
                .map(|d| String::from_utf8_lossy(d).trim().to_string())
                .filter(|d| !d.is_empty());
            Err(ClientError::Fault {
                code: code.clone(),
                string: string.clone(),
                detail: detail.clone().or(raw),
            })
        }
        SoapBody::Element {
            local_name,
            namespace,
        } => {
            if local_name != expected || namespace.as_deref() != Some(O::NAMESPACE) {
                return Err(ClientError::Malformed(format!(
                    "expected {{{}}}{expected} in the Body, got {{{}}}{local_name}",
                    O::NAMESPACE,
                    namespace.as_deref().unwrap_or_default()
                )));
            }
            let xml = msg
                .body_element_standalone()
                .ok_or_else(|| ClientError::Malformed("the Body has no element".into()))?;
            yaserde::de::from_str(&xml)
                .map_err(|e| ClientError::Malformed(format!("{expected}: {e}")))
        }
    }
}
