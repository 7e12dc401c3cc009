//! `brama send`: one X-Road SOAP request from identifiers and a body file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::identifiers::{ClientId, SecurityServerId, ServiceId};
use crate::message::build::{self, RequestHeader};
use crate::message::soap::{SoapBody, SoapLimits, SoapMessage};

#[derive(clap::Args)]
pub struct SendArgs {
    /// Client proxy URL.
    #[arg(long, default_value = "http://127.0.0.1:8080/")]
    url: String,
    /// Client: INSTANCE/CLASS/CODE[/SUBSYSTEM].
    #[arg(long)]
    client: String,
    /// Service: INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE[/VERSION].
    #[arg(long)]
    service: String,
    /// File with the Body's one element (XML), or '-' for standard input.
    #[arg(long)]
    body: PathBuf,
    #[arg(long)]
    user_id: Option<String>,
    #[arg(long)]
    issue: Option<String>,
    /// Message id; a fresh UUID by default.
    #[arg(long)]
    id: Option<String>,
    /// Target one security server: INSTANCE/CLASS/CODE/SERVER.
    #[arg(long)]
    security_server: Option<String>,
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub async fn run(a: SendArgs) -> ExitCode {
    let header = (|| -> Result<RequestHeader, String> {
        Ok(RequestHeader {
            client: ClientId::parse_path(&a.client)?,
            service: ServiceId::parse_path(&a.service)?,
            id: a
                .id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            user_id: a.user_id.clone(),
            issue: a.issue.clone(),
            security_server: a
                .security_server
                .as_deref()
                .map(SecurityServerId::parse_path)
                .transpose()?,
        })
    })();
    let header = match header {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let body = if a.body.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(&a.body)
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return fail(format!("cannot read {}: {e}", a.body.display())),
    };
    let xml = build::request(&header, &body);
    let work = post(&a.url, Bytes::from(xml));
    let (status, bytes) =
        match tokio::time::timeout(Duration::from_secs(a.timeout_secs), work).await {
            Err(_) => {
                return fail(format!(
                    "no answer from {} within {} s",
                    a.url, a.timeout_secs
                ))
            }
            Ok(Err(e)) => return fail(e),
            Ok(Ok(r)) => r,
        };
    println!("{}", String::from_utf8_lossy(&bytes));
    match SoapMessage::parse(bytes, None, &SoapLimits::default()) {
        Ok(m) => match m.body {
            SoapBody::Fault { code, string, .. } => {
                eprintln!("fault: {code}: {string}");
                ExitCode::from(1)
            }
            _ if status.is_success() => ExitCode::SUCCESS,
            _ => ExitCode::from(1),
        },
        // Multipart answers (attachments) are printed as they are.
        Err(_) if status.is_success() => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

/// POSTs `body` as `text/xml` to an `http://` URL.
pub async fn post(url: &str, body: Bytes) -> Result<(http::StatusCode, Bytes), String> {
    http_call(
        http::Method::POST,
        url,
        Some(("text/xml; charset=UTF-8", body)),
    )
    .await
}

/// One HTTP/1.1 exchange with an `http://` URL.
pub async fn http_call(
    method: http::Method,
    url: &str,
    body: Option<(&str, Bytes)>,
) -> Result<(http::StatusCode, Bytes), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("'{url}' is not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("'{url}': only http:// URLs are supported here"));
    }
    let host = uri.host().ok_or("URL without host")?;
    let addr = format!("{host}:{}", uri.port_u16().unwrap_or(80));
    let tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, addr.as_str());
    let body = match body {
        Some((ct, b)) => {
            req = req.header(http::header::CONTENT_TYPE, ct);
            if ct.starts_with("text/xml") {
                req = req.header("SOAPAction", "\"\"");
            }
            b
        }
        None => Bytes::new(),
    };
    let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, bytes))
}
