//! SOAP 1.1 fault documents in the exact shape X-Road security servers emit (reference §1.7).

use super::soap::escape;
use super::NS_SOAP_ENV;
use crate::error::Fault;

/// The fault envelope: `faultcode`, `faultstring`, optional `faultactor`, `detail/faultDetail`.
pub fn fault_xml(code: &str, string: &str, actor: Option<&str>, detail: Option<&str>) -> String {
    let mut out = String::with_capacity(320 + string.len());
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?><SOAP-ENV:Envelope xmlns:SOAP-ENV=\"");
    out.push_str(NS_SOAP_ENV);
    out.push_str("\"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>");
    out.push_str(&escape(code));
    out.push_str("</faultcode><faultstring>");
    out.push_str(&escape(string));
    out.push_str("</faultstring>");
    if let Some(actor) = actor {
        out.push_str("<faultactor>");
        out.push_str(&escape(actor));
        out.push_str("</faultactor>");
    }
    if let Some(detail) = detail {
        out.push_str("<detail><faultDetail xmlns=\"\">");
        out.push_str(&escape(detail));
        out.push_str("</faultDetail></detail>");
    }
    out.push_str("</SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>");
    out
}

impl Fault {
    /// This fault as the SOAP document sent to a client: a passed-on fault exactly as the peer
    /// sent it, our own in X-Road's shape.
    pub fn to_soap(&self) -> bytes::Bytes {
        match &self.original {
            Some(doc) => doc.clone(),
            None => fault_xml(&self.code.to_wire(), &self.message, None, Some(&self.id)).into(),
        }
    }
}
