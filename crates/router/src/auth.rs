//! Who is calling the router's endpoints: the hosted subsystem whose pinned certificate the
//! caller presented over HTTPS (X-Road's SSLAUTH), or, where the configuration allows no
//! authentication (loopback listeners only), the router's own client.

use sha2::{Digest, Sha256};

use super::RouterError;
use brama_gateway::config::router::{Authentication, RouterConf};
use brama_gateway::proxy::Gateway;
use brama_transport::listener::ConnInfo;
use brama_xroad::error::{ErrorCode, Fault, Prefix};
use brama_xroad::identifiers::ClientId;

/// The one of `candidates` the caller authenticates as; anyone else is refused with
/// `Server.ClientProxy.SslAuthenticationFailed` (403) and a counted security event.
pub fn caller(
    gw: &Gateway,
    conf: &RouterConf,
    conn: &ConnInfo,
    candidates: &[&ClientId],
    what: &str,
) -> Result<ClientId, RouterError> {
    if conf.authentication == Authentication::None {
        return Ok(conf.client.clone());
    }
    let refuse = |why: String| {
        gw.metrics().security_event("is_authentication_failed");
        let fault = Fault::new(Prefix::ClientProxy, ErrorCode::SslAuthenticationFailed, why)
            .with_status(403);
        tracing::warn!(target: "security", remote = %conn.remote, error_id = %fault.id, code = %fault.code, "{}", fault.message);
        Err(RouterError::Refused(fault))
    };
    let Some(cert) = conn.peer_cert.as_ref().filter(|_| conn.tls) else {
        return refuse(format!(
            "{what} needs HTTPS with the client certificate of an information system"
        ));
    };
    let hash = Sha256::digest(cert).to_vec();
    let found = candidates.iter().find(|id| {
        gw.hosted()
            .get(id)
            .is_some_and(|c| c.is_cert_hashes.contains(&hash))
    });
    match found {
        Some(id) => Ok((*id).clone()),
        None => refuse(format!(
            "the certificate presented is not pinned for any subsystem allowed to use {what}"
        )),
    }
}
