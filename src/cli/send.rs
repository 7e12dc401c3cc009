//! `brama send`: one X-Road SOAP request from identifiers and a body file, or with `--rest` one
//! REST request (`/r1/...` with `X-Road-*` headers, or UXP's with `--uxp`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use brama_transport::{Destination, Pool};
use bytes::Bytes;

use crate::load::tls::TlsSettings;

/// Largest answer read by the command line.
const MAX_ANSWER: usize = 256 * 1024 * 1024;
/// Upper bound on one call; the commands wait less (`--timeout`).
const CALL_LIMIT: Duration = Duration::from_secs(3600);

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
    /// File with the Body's one element (XML), or '-' for standard input. With `--rest`, the
    /// request body (none by default).
    #[arg(long)]
    body: Option<PathBuf>,
    /// Send a REST request instead of SOAP.
    #[arg(long)]
    rest: bool,
    /// REST: the HTTP method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// REST: path and query after the service code, e.g. `?patient=…` or `/items/7`.
    #[arg(long, default_value = "")]
    path: String,
    /// REST: Content-Type of the body.
    #[arg(long, default_value = "application/json")]
    content_type: String,
    /// REST: an extra request header, `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// REST: speak Trembita 2.0's UXP headers (`Uxp-Client`, `Uxp-Service`, `/restapi`).
    #[arg(long)]
    uxp: bool,
    /// The person behind the request (`xrd:userId`), e.g. the citizen's national id.
    #[arg(long)]
    user_id: Option<String>,
    /// The case it belongs to (`xrd:issue`).
    #[arg(long)]
    issue: Option<String>,
    /// Message id; a fresh UUID by default.
    #[arg(long)]
    id: Option<String>,
    /// Target one security server: INSTANCE/CLASS/CODE/SERVER.
    #[arg(long)]
    security_server: Option<String>,
    /// How long to wait for the answer (30s, 500ms, 2m).
    #[arg(long, value_parser = crate::load::parse_duration, default_value = "60s")]
    timeout: Duration,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

pub async fn run(a: SendArgs) -> ExitCode {
    if a.rest {
        return rest(a).await;
    }
    let Some(body_file) = a.body.clone() else {
        return fail("a SOAP request needs --body (the Body's element); REST requests take --rest");
    };
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
    let body = if body_file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(&body_file)
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return fail(format!("cannot read {}: {e}", body_file.display())),
    };
    let xml = build::request(&header, &body);
    let work = post(&a.url, Bytes::from(xml));
    let (status, bytes) = match tokio::time::timeout(a.timeout, work).await {
        Err(_) => {
            return fail(format!(
                "no answer from {} within {} s",
                a.url,
                a.timeout.as_secs_f64()
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

/// One REST request: prints the answer's status and X-Road headers on standard error and its
/// body on standard output; exit 0 on 2xx, 1 otherwise.
async fn rest(a: SendArgs) -> ExitCode {
    let ids =
        ClientId::parse_path(&a.client).and_then(|c| Ok((c, ServiceId::parse_path(&a.service)?)));
    let (client, service) = match ids {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let method = match super::rest_args::method(&a.method) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let target = match super::rest_args::target(&client, &service, &a.path, a.uxp) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let url = format!("{}{}", a.url.trim_end_matches('/'), target.path);
    let mut headers = target.headers;
    let prefix = target.prefix;
    let id_header = target.id_header;
    for (name, value) in [
        (id_header, a.id.clone()),
        (&*format!("{prefix}-userid"), a.user_id.clone()),
        (&*format!("{prefix}-issue"), a.issue.clone()),
        (
            &*format!("{prefix}-security-server"),
            a.security_server.clone(),
        ),
    ] {
        if let Some(v) = value {
            headers.push((name.to_string(), v));
        }
    }
    for h in &a.headers {
        match super::rest_args::header(h) {
            Ok(pair) => headers.push(pair),
            Err(e) => return fail(e),
        }
    }
    let body = match &a.body {
        None => None,
        Some(p) => {
            let read = if p.as_os_str() == "-" {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map(|_| v)
            } else {
                std::fs::read(p)
            };
            match read {
                Ok(b) => Some((a.content_type.as_str(), Bytes::from(b))),
                Err(e) => return fail(format!("cannot read {}: {e}", p.display())),
            }
        }
    };
    let tls = TlsSettings::default();
    let work = http_call_with(method, &url, &headers, body, &tls);
    let resp = match tokio::time::timeout(a.timeout, work).await {
        Err(_) => {
            return fail(format!(
                "no answer from {url} within {} s",
                a.timeout.as_secs_f64()
            ))
        }
        Ok(Err(e)) => return fail(e),
        Ok(Ok(r)) => r,
    };
    let (status, resp_headers, bytes) = resp;
    eprintln!("HTTP {status}");
    for (n, v) in resp_headers.iter() {
        if n.as_str().starts_with("x-road-") || n.as_str().starts_with("uxp-") {
            eprintln!("{n}: {}", String::from_utf8_lossy(v.as_bytes()));
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().write_all(&bytes);
    if !bytes.ends_with(b"\n") && !bytes.is_empty() {
        println!();
    }
    if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
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

/// One HTTP/1.1 exchange with an `http://` URL (or `https://`, the server checked against the
/// system's CA bundle).
pub async fn http_call(
    method: http::Method,
    url: &str,
    body: Option<(&str, Bytes)>,
) -> Result<(http::StatusCode, Bytes), String> {
    let (status, _, bytes) =
        http_call_with(method, url, &[], body, &TlsSettings::default()).await?;
    Ok((status, bytes))
}

/// [`http_call`] with extra request headers and TLS settings for `https://` (the CA to check the
/// server against, a client certificate); also returns the response headers.
pub async fn http_call_with(
    method: http::Method,
    url: &str,
    headers: &[(String, String)],
    body: Option<(&str, Bytes)>,
    tls: &TlsSettings,
) -> Result<(http::StatusCode, http::HeaderMap, Bytes), String> {
    let config = match url.starts_with("https://") {
        true => Some(tls.client_config().map_err(|e| e.to_string())?),
        false => None,
    };
    let (dest, path) = Destination::for_url(url, config)?;
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, dest.key.as_str());
    for (n, v) in headers {
        req = req.header(n.as_str(), v.as_str());
    }
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
    let req = req
        .body(brama_transport::body::full(body))
        .map_err(|e| e.to_string())?;
    // One exchange: the callers bound the time they wait themselves.
    let pool = Pool::new(1, Duration::from_secs(60), Duration::from_secs(10));
    let (parts, bytes) = pool
        .exchange(&dest, req, CALL_LIMIT, MAX_ANSWER)
        .await
        .map_err(|e| e.to_string())?;
    Ok((parts.status, parts.headers, bytes))
}
