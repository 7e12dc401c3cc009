//! Reloading the configuration of a running server. What can change without a restart, the
//! hosted clients (services, access rights, pinned certificates, connection types), is put in
//! force for the next request, while a request under way finishes with the set it started
//! with; any other change is named as waiting for a restart. Whoever knows the file (the
//! binary, on `SIGHUP` or an admin `POST /reload`) reads and checks it, then calls
//! [`Gateway::replace_hosted`].

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::Gateway;
use crate::config::{HostedClient, ServerConf};
use brama_xroad::identifiers::ClientId;

/// What a reload did: refused with `errors` (nothing changed), or `applied` keys in force and
/// `needs_restart` keys read but waiting for a restart.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ReloadReport {
    pub errors: Vec<String>,
    pub applied: Vec<String>,
    pub needs_restart: Vec<String>,
}

impl ReloadReport {
    pub fn refused(errors: Vec<String>) -> ReloadReport {
        ReloadReport {
            errors,
            ..Default::default()
        }
    }
}

/// A reload asked for, with where its report goes.
pub type ReloadAsk = oneshot::Sender<ReloadReport>;

/// The admin listener's side of the reload channel, open once someone takes the receiver.
#[derive(Default)]
pub(crate) struct Requests(Mutex<Option<mpsc::Sender<ReloadAsk>>>);

impl Gateway {
    /// Reload requests of the admin listener (`POST /reload`), to be served by the caller, which
    /// knows the configuration file. A new call replaces the previous receiver.
    pub fn reload_requests(&self) -> mpsc::Receiver<ReloadAsk> {
        let (tx, rx) = mpsc::channel(4);
        *self.reloads.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    /// Asks for a reload and waits for its report; `None` when no one serves reloads.
    pub(crate) async fn ask_reload(&self) -> Option<ReloadReport> {
        let tx = self
            .reloads
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let (answer, report) = oneshot::channel();
        tx.send(answer).await.ok()?;
        report.await.ok()
    }

    /// Why `next`'s hosted clients cannot be put in force in this process: a member the running
    /// signer holds no key for (keys are read at start).
    pub fn check_hosted(&self, next: &ServerConf) -> Vec<String> {
        let members: std::collections::HashSet<_> =
            self.signer.keys().map(|k| k.member.clone()).collect();
        let mut errors: Vec<String> = next
            .clients
            .keys()
            .map(ClientId::member_id)
            .filter(|m| !members.contains(m))
            .map(|m| {
                format!(
                    "clients: member {m} has no signing key in the running server (keys are \
                     read at start: restart to add one)"
                )
            })
            .collect();
        errors.sort();
        errors.dedup();
        errors
    }

    /// Puts `clients` in force for the next request.
    pub fn replace_hosted(&self, clients: HashMap<ClientId, HostedClient>) {
        self.hosted.replace(clients);
    }
}
