//! The PostgreSQL database that brama nodes share (`[store] url`): its connection pool, bounded
//! and with timeouts, whose sessions cannot hold locks when their node stops mid-transaction;
//! and its schema, created and migrated by brama ([`migrations`]).
//!
//! TLS to the database goes through rustls (`tls`), checked against the CA the operator names.
//!
//! Owns the connection and the schema, not what the tables mean: the router's store
//! (`brama-router`) and the message log's records (`brama-gateway`) each read and write their
//! own tables through it. Depends on no other brama crate.

pub mod migrations;
mod tls;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::SslMode;
use tokio_postgres::NoTls;

pub use deadpool_postgres::{Object, Pool as ConnectionPool};

/// How a node connects (the checked `[store]`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub url: String,
    /// This node's name, unique in the cluster.
    pub node: String,
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
    /// The CAs the database's certificate must chain to (DER): with them every connection is
    /// TLS, whatever the URL's `sslmode`; without them `sslmode=require` is refused.
    pub tls_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
}

/// A pool of at most `pool_size` connections for `purpose` (named in `pg_stat_activity`), and the
/// database's address for messages. Connects lazily: nothing is reached before the first use.
pub fn pool(s: &Settings, purpose: &str) -> Result<(Pool, String), String> {
    let mut pg = tokio_postgres::Config::from_str(&s.url).map_err(|e| format!("store.url: {e}"))?;
    pg.connect_timeout(s.connect_timeout)
        .application_name(format!("brama {} {purpose}", s.node))
        // A node that stops mid-transaction (frozen, cut off) must not hold its locks.
        .options(format!(
            "-c statement_timeout={} -c idle_in_transaction_session_timeout={}",
            s.statement_timeout.as_millis(),
            s.statement_timeout.as_millis().max(10_000)
        ));
    let config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = if s.tls_roots.is_empty() {
        if pg.get_ssl_mode() == SslMode::Require {
            return Err(
                "store.url asks for TLS (sslmode=require): set store.tls_ca_file to the \
                 CA of the database's certificate"
                    .into(),
            );
        }
        let describe = describe(&pg);
        (Manager::from_config(pg, NoTls, config), describe)
    } else {
        pg.ssl_mode(SslMode::Require);
        let describe = describe(&pg);
        let tls = tls::RustlsConnect::new(&s.tls_roots)?;
        (Manager::from_config(pg, tls, config), describe)
    };
    let (manager, describe) = manager;
    let pool = Pool::builder(manager)
        .max_size(s.pool_size)
        .wait_timeout(Some(s.connect_timeout))
        .create_timeout(Some(s.connect_timeout))
        .recycle_timeout(Some(s.connect_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| e.to_string())?;
    Ok((pool, describe))
}

/// The database's address without its password, for messages.
fn describe(c: &tokio_postgres::Config) -> String {
    let host = c
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_default();
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let tls = match c.get_ssl_mode() {
        SslMode::Require => " (TLS)",
        _ => "",
    };
    format!(
        "postgres://{}@{host}:{port}/{}{tls}",
        c.get_user().unwrap_or(""),
        c.get_dbname().unwrap_or("")
    )
}

/// An error with its causes (a pool's "error creating a connection" says why only in its
/// source: the refused certificate, the unreachable host).
pub fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
