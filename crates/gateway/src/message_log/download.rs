//! The signed documents an information system or an auditor downloads from the client proxy,
//! as X-Road serves them (reference §6.4):
//!
//! - `GET /asic?queryId=Q&xRoadInstance=I&memberClass=C&memberCode=M[&subsystemCode=S]
//!   [&requestOnly|&responseOnly][&unique][&force]`: the logged, time-stamped containers of the
//!   exchanges with X-Road id `Q` of that client, as a zip of `Q-request-N.asice` /
//!   `Q-response-N.asice`, or the one container itself with `unique`. `force` time-stamps records
//!   still waiting first. Only the client's own information systems may ask (its connection
//!   and pinned certificates, as for its messages).
//! - `GET /verificationconf`: the global configuration a verifier needs, zipped
//!   (`verificationconf/instance-identifier`, `verificationconf/<INSTANCE>/shared-params.xml`);
//!   `brama verify --globalconf` reads it unzipped.

use std::time::Duration;

use bytes::Bytes;

use super::{safe, stamps, timestamper};
use crate::proxy::listener::Response;
use crate::proxy::wire;
use crate::proxy::Gateway;
use brama_sign::asic::{self, MessageIds};
use brama_transport::listener::ConnInfo;
use brama_transport::metrics::Proxy;
use brama_xroad::error::{ErrorCode, Fault, Prefix};
use brama_xroad::identifiers::ClientId;

/// How long `force` waits for the time-stamper.
const FORCE_WAIT: Duration = Duration::from_secs(30);

fn refuse(gw: &Gateway, fault: Fault) -> Response {
    wire::soap_fault(&fault, Proxy::Client, &gw.metrics)
}

fn client_error(code: ErrorCode, m: String) -> Fault {
    Fault::new(Prefix::Client, code, m)
}

/// `GET /asic?…`
pub async fn asic(
    gw: &Gateway,
    req: &http::Request<hyper::body::Incoming>,
    conn: &ConnInfo,
) -> Response {
    match find(gw, req, conn).await {
        Ok(r) => r,
        Err(f) => refuse(gw, f),
    }
}

async fn find(
    gw: &Gateway,
    req: &http::Request<hyper::body::Incoming>,
    conn: &ConnInfo,
) -> Result<Response, Fault> {
    let params = query(req.uri().query().unwrap_or_default());
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let has = |k: &str| params.iter().any(|(n, _)| n == k);
    let need = |k: &str| {
        get(k).filter(|v| !v.is_empty()).ok_or_else(|| {
            client_error(
                ErrorCode::InvalidRequest,
                format!("the '{k}' parameter is missing"),
            )
        })
    };
    let query_id = need("queryId")?;
    let (instance, class, code) = (
        need("xRoadInstance")?,
        need("memberClass")?,
        need("memberCode")?,
    );
    let client = match get("subsystemCode").filter(|s| !s.is_empty()) {
        Some(sub) => ClientId::subsystem(instance, class, code, sub),
        None => ClientId::member(instance, class, code),
    };
    let (request_only, response_only) = (has("requestOnly"), has("responseOnly"));
    if request_only && response_only {
        return Err(client_error(
            ErrorCode::InvalidRequest,
            "requestOnly and responseOnly exclude each other".into(),
        ));
    }
    authorise(gw, &client, conn)?;
    let log = gw.message_log.as_ref().ok_or_else(|| {
        Fault::new(
            Prefix::ClientProxy,
            ErrorCode::NotFound,
            "this server keeps no message log ([log] messages_dir)",
        )
    })?;
    let wanted = |ids: &MessageIds| {
        ids.query_id.as_deref() == Some(query_id)
            && ids.client.as_ref().is_some_and(|c| {
                c == &client || (client.subsystem.is_none() && c.member_id() == client)
            })
            && match ids.response {
                true => !request_only,
                false => !response_only,
            }
    };
    let forced = has("force") && queued(log, query_id, &wanted).await;
    if forced && !timestamper::until_stamped(log, FORCE_WAIT).await {
        return Err(Fault::new(
            Prefix::ClientProxy,
            ErrorCode::TimestampingFailed,
            format!(
                "the records of '{query_id}' could not be time-stamped: {}",
                log.stamping.last_error().unwrap_or_default()
            ),
        ));
    }
    let found = matching(log, query_id, &wanted).await?;
    if found.is_empty() {
        let waiting = queued(log, query_id, &wanted).await;
        return Err(client_error(
            ErrorCode::NotFound,
            match waiting {
                true => {
                    format!("the records of '{query_id}' are not time-stamped yet (add &force)")
                }
                false => format!("no logged message of '{client}' has the id '{query_id}'"),
            },
        ));
    }
    if has("unique") {
        let [(_, one)] = found.as_slice() else {
            return Err(client_error(
                ErrorCode::InvalidRequest,
                format!(
                    "{} records have the id '{query_id}'; leave out unique",
                    found.len()
                ),
            ));
        };
        let name = format!("{}.asice", safe(query_id));
        return Ok(download(
            "application/vnd.etsi.asic-e+zip",
            &name,
            one.clone(),
        ));
    }
    let (mut requests, mut responses) = (0, 0);
    let names: Vec<(String, Bytes)> = found
        .into_iter()
        .map(|(ids, bytes)| {
            let (kind, n) = match ids.response {
                true => ("response", &mut responses),
                false => ("request", &mut requests),
            };
            *n += 1;
            (format!("{}-{kind}-{n}.asice", safe(query_id)), bytes)
        })
        .collect();
    let zip = asic::zip_files(names.iter().map(|(n, b)| (n.clone(), b.as_ref())));
    let name = format!("{}.zip", safe(query_id));
    Ok(download("application/zip", &name, Bytes::from(zip)))
}

/// The client must be hosted here, and the caller one of its information systems.
fn authorise(gw: &Gateway, client: &ClientId, conn: &ConnInfo) -> Result<(), Fault> {
    let clients = gw.hosted();
    let hosted: Vec<_> = clients
        .values()
        .filter(|c| &c.id == client || (client.subsystem.is_none() && c.id.member_id() == *client))
        .collect();
    if hosted.is_empty() {
        return Err(client_error(
            ErrorCode::UnknownMember,
            format!("'{client}' is not a client of this security server"),
        ));
    }
    let mut last = None;
    for c in hosted {
        match crate::proxy::client::authenticate_is(
            gw,
            c.connection,
            &c.is_cert_hashes,
            &c.id,
            conn,
        ) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one hosted client"))
}

/// The containers in the log (loose, stamped in rounds, archived, or in the shared database)
/// whose name starts with the query id and whose message is one `wanted`.
async fn matching(
    log: &super::MessageLog,
    query_id: &str,
    wanted: &(dyn Fn(&MessageIds) -> bool + Sync),
) -> Result<Vec<(MessageIds, Bytes)>, Fault> {
    let prefix = format!("{}-", safe(query_id));
    let ids_of = |bytes: &[u8]| {
        asic::read(bytes)
            .ok()
            .and_then(|c| MessageIds::of(&c.message).ok())
            .filter(|ids| wanted(ids))
    };
    let failed = |e: String| {
        Fault::new(
            Prefix::ClientProxy,
            ErrorCode::IoError,
            format!("message log: {e}"),
        )
    };
    if let Some(db) = &log.shared {
        let found = db.find(&prefix).await.map_err(failed)?;
        return Ok(found
            .into_iter()
            .filter(|f| !f.waits)
            .filter_map(|f| Some((ids_of(&f.bytes)?, Bytes::from(f.bytes))))
            .collect());
    }
    let mut out = Vec::new();
    stamps::each_logged(log.dir(), &|n| n.starts_with(&prefix), &mut |_, bytes| {
        if let Some(ids) = ids_of(&bytes) {
            out.push((ids, Bytes::from(bytes)));
        }
        Ok(())
    })
    .map_err(|e| failed(format!("{}: {e}", log.dir().display())))?;
    Ok(out)
}

/// Whether a record `wanted` waits for its time-stamp.
async fn queued(
    log: &super::MessageLog,
    query_id: &str,
    wanted: &(dyn Fn(&MessageIds) -> bool + Sync),
) -> bool {
    let prefix = format!("{}-", safe(query_id));
    let wanted_container = |b: &[u8]| {
        asic::read(b)
            .ok()
            .is_some_and(|c| MessageIds::of(&c.message).is_ok_and(|ids| wanted(&ids)))
    };
    if let Some(db) = &log.shared {
        return db
            .find(&prefix)
            .await
            .is_ok_and(|found| found.iter().any(|f| f.waits && wanted_container(&f.bytes)));
    }
    log.queue
        .frames()
        .iter()
        .filter(|f| f.name.starts_with(&prefix))
        .filter_map(|f| log.read_waiting(f).ok())
        .any(|b| wanted_container(&b))
}

fn download(content_type: &str, name: &str, body: Bytes) -> Response {
    let mut resp = wire::ok(content_type, body);
    if let Ok(v) = http::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        resp.headers_mut()
            .insert(http::header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// `GET /verificationconf`: every instance's shared parameters in force, zipped.
pub fn verificationconf(gw: &Gateway) -> Response {
    let trusted = gw.trusted();
    let gc = &trusted.gc;
    let mut files: Vec<(String, Vec<u8>)> = vec![(
        "verificationconf/instance-identifier".into(),
        gc.own_instance.as_bytes().to_vec(),
    )];
    for (instance, shared) in &gc.shared {
        files.push((
            format!("verificationconf/{instance}/shared-params.xml"),
            shared.to_xml().into_bytes(),
        ));
    }
    let zip = asic::zip_files(files.iter().map(|(n, b)| (n.clone(), b.as_slice())));
    download("application/zip", "verificationconf.zip", Bytes::from(zip))
}

/// `name=value` pairs of a query string, percent-decoded; a bare `name` has an empty value.
pub(crate) fn query(q: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}
