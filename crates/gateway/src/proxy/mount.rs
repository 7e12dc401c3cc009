//! Routes another layer mounts on the gateway's listeners (the router's API), so the gateway
//! serves them without naming that layer. The binary mounts them before the listeners start.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Incoming;

use super::listener::{ConnInfo, Response};
use super::Gateway;

/// A response on its way.
pub type Answer = Pin<Box<dyn Future<Output = Response> + Send>>;

/// What a mounted layer serves: the requests whose method and path it owns.
pub trait Mount: Send + Sync + 'static {
    /// Whether a request on a client listener (information systems) is this layer's; asked
    /// before the gateway's own routes.
    fn owns_client(&self, method: &http::Method, path: &str) -> bool;

    /// Answers a client-listener request it owns.
    fn client(
        &self,
        gw: &Arc<Gateway>,
        req: http::Request<Incoming>,
        conn: &Arc<ConnInfo>,
    ) -> Answer;

    /// Whether a request on the admin listener is this layer's.
    fn owns_admin(&self, method: &http::Method, path: &str) -> bool;

    /// Answers an admin-listener request it owns.
    fn admin(&self, gw: &Arc<Gateway>, req: http::Request<Incoming>) -> Answer;

    /// Lines appended to `/metrics` (Prometheus text format).
    fn metrics(&self) -> String;

    /// Why the layer cannot do its work now (`/health` answers 503 with it), if it cannot.
    fn health(&self) -> Result<(), String> {
        Ok(())
    }

    /// For the layer that mounted itself to find its own state again.
    fn as_any(&self) -> &dyn std::any::Any;
}
