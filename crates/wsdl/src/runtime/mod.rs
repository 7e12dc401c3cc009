//! What the generated registry code (`brama::registries`) runs on: the operation and payload
//! traits, the X-Road header, request envelopes, response parsing, transports and errors.

mod envelope;
mod error;
mod http;
mod info;
mod validate;

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

pub use crate::model::Builtin;
pub use envelope::{
    parse_response, read_response, request_body, request_envelope, request_message,
};
pub use error::ClientError;
pub use http::HttpTransport;
pub use info::{ElementInfo, FieldInfo, FieldKind, OperationInfo};
pub use validate::{check_choice, check_text, nested, TextRules, Violation};

use brama_xroad::identifiers::{ClientId, ServiceId};

/// The X-Road header of one request. `service` names the provider, the service code (the
/// operation name) and its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XRoadHeader {
    pub client: ClientId,
    pub service: ServiceId,
    /// Message id, unique per request.
    pub id: String,
    pub user_id: Option<String>,
    pub issue: Option<String>,
}

impl XRoadHeader {
    /// A header with a fresh UUID message id.
    pub fn new(client: ClientId, service: ServiceId) -> Self {
        XRoadHeader {
            client,
            service,
            id: uuid::Uuid::new_v4().to_string(),
            user_id: None,
            issue: None,
        }
    }

    /// A header for operation `O` of `provider` (code and version from the WSDL).
    pub fn for_operation<O: Operation>(client: ClientId, provider: ClientId) -> Self {
        XRoadHeader::new(client, ServiceId::new(provider, O::NAME, O::VERSION))
    }
}

/// A wrapper element's struct: a request or a response body.
pub trait Payload:
    Debug
    + Clone
    + Default
    + PartialEq
    + serde::Serialize
    + serde::de::DeserializeOwned
    + yaserde::YaSerialize
    + yaserde::YaDeserialize
    + Send
    + Sync
    + 'static
{
    /// The wrapper element's local name (in the registry namespace).
    const ELEMENT: &'static str;
    /// Enumeration, pattern and length violations, missing required values, unmet choices.
    fn validate(&self) -> Vec<Violation>;
}

/// One WSDL operation: its request and response types and X-Road service metadata.
pub trait Operation: Send + Sync + 'static {
    type Request: Payload;
    type Response: Payload;
    /// The operation name, which is the X-Road service code.
    const NAME: &'static str;
    /// `xrd:version`, the X-Road service version.
    const VERSION: Option<&'static str>;
    /// The registry namespace of the wrapper elements.
    const NAMESPACE: &'static str;
    /// The registry (WSDL file stem, module name).
    const REGISTRY: &'static str;
    /// Titles and field trees, as listed in the module's `OPERATIONS`.
    const INFO: &'static OperationInfo;
}

/// Code that runs once per operation type, e.g. tests over every operation of every registry
/// (`brama::registries::visit_all`).
pub trait OperationVisitor {
    fn visit<O: Operation>(&mut self);
}

/// The future a transport returns; boxed so transports can be used as `dyn SoapTransport`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Carries one SOAP request envelope to a security server (or a service) and returns the
/// response envelope. A SOAP fault answer is returned as bytes, not as an error.
pub trait SoapTransport: Send + Sync {
    fn call(&self, envelope: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, ClientError>>;
}

/// Sends `request` as operation `O` and parses the answer.
pub async fn call<O: Operation, T: SoapTransport + ?Sized>(
    transport: &T,
    header: &XRoadHeader,
    request: &O::Request,
) -> Result<O::Response, ClientError> {
    let envelope = request_envelope::<O>(header, request)?;
    let response = transport.call(envelope).await?;
    parse_response::<O>(&response)
}
