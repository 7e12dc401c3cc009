//! The PostgreSQL database that brama nodes share (`[store] url`): its connection pool, bounded
//! and with timeouts, whose sessions cannot hold locks when their node stops mid-transaction;
//! and its schema, created and migrated by brama ([`migrations`]).
//!
//! Owns the connection and the schema, not what the tables mean: the router's store
//! (`brama-router`) and the message log's records (`brama-gateway`) each read and write their
//! own tables through it. Depends on no other brama crate.

pub mod migrations;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
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
    let describe = describe(&pg);
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
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
    format!(
        "postgres://{}@{host}:{port}/{}",
        c.get_user().unwrap_or(""),
        c.get_dbname().unwrap_or("")
    )
}
