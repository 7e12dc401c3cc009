//! Keeping the configuration fresh while the server runs: a download every
//! `refresh_interval_s`; a failure is retried sooner (1 s, doubling, at most the interval) and
//! never replaces what is in force; a configuration that changed is stored and put in force
//! without a restart; the status is kept for `/health`, `/metrics` and the CLI.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{download, store};
use crate::proxy::Gateway;
use brama_xroad::globalconf::ConfigurationAnchor;

/// Where the configuration comes from and how it is kept.
pub struct ConfClient {
    pub anchor: ConfigurationAnchor,
    pub dir: PathBuf,
    pub interval: Duration,
    pub timeout: Duration,
    state: Mutex<State>,
}

/// What the last attempts did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct State {
    /// Unix seconds of the last download that checked, and its source.
    pub last_success: Option<i64>,
    pub source: Option<String>,
    pub last_error: Option<String>,
    pub failures: u32,
    /// SHA-256 (hex) of the files in force.
    pub digest: Option<String>,
}

impl ConfClient {
    pub fn new(
        anchor: ConfigurationAnchor,
        dir: PathBuf,
        interval: Duration,
        timeout: Duration,
    ) -> ConfClient {
        let state = State {
            digest: store::digest(&dir),
            ..State::default()
        };
        ConfClient {
            anchor,
            dir,
            interval,
            timeout,
            state: Mutex::new(state),
        }
    }

    /// From `[globalconf]` of `conf`, when an anchor is set.
    pub fn from_conf(conf: &crate::config::ServerConf) -> Result<Option<ConfClient>, String> {
        let section = &conf.file.globalconf;
        let Some(anchor) = &section.anchor else {
            return Ok(None);
        };
        let anchor = read_anchor(&conf.source, anchor)?;
        Ok(Some(ConfClient::new(
            anchor,
            conf.source.path(&conf.file.server.globalconf_dir),
            Duration::from_secs(section.refresh_interval_s.max(1)),
            Duration::from_millis(section.timeout_ms.max(1)),
        )))
    }

    pub fn state(&self) -> State {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// One attempt: download, and when the configuration changed, store it and put it in force.
    pub async fn refresh_once(&self, gw: &Gateway) -> Result<bool, String> {
        let trusted = gw.trusted();
        let rotated = store::rotated_certs(&trusted.gc);
        let result = download(&gw.pool, &self.anchor, &rotated, self.timeout).await;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(d) => {
                let digest = hex::encode(d.digest);
                let changed = state.digest.as_deref() != Some(digest.as_str());
                state.failures = 0;
                state.last_error = None;
                state.last_success = Some(crate::ocsp::now());
                state.source = Some(d.source.clone());
                drop(state);
                if changed {
                    let gc = store::store(&self.dir, &d)?;
                    gw.replace_globalconf(gc, Some(d.expires_at));
                    self.state.lock().unwrap_or_else(|p| p.into_inner()).digest = Some(digest);
                } else if trusted.expires_at() != Some(d.expires_at) {
                    // The same files, signed again: only the expiry moves, on disk and in force.
                    store::extend(&self.dir, &d.expire_date)?;
                    trusted.extend(d.expires_at);
                }
                Ok(changed)
            }
            Err(e) => {
                state.failures += 1;
                state.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Runs until `stop`.
    pub async fn run(
        self: Arc<Self>,
        gw: Arc<Gateway>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let wait = match self.refresh_once(&gw).await {
                Ok(_) => self.interval,
                Err(e) => {
                    let failures = self.state().failures;
                    tracing::warn!(error = %e, failures, "global configuration download failed");
                    Duration::from_secs(1u64 << (failures - 1).min(10)).min(self.interval)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

/// The anchor file `rel` of a configuration read from `source`.
fn read_anchor(
    source: &crate::config::ConfigSource,
    rel: &str,
) -> Result<ConfigurationAnchor, String> {
    let bytes = source
        .read(rel)
        .map_err(|e| format!("{}: {e}", source.display(rel)))?;
    ConfigurationAnchor::parse(&bytes).map_err(|e| format!("{}: {e}", source.display(rel)))
}

/// Before a server starts from `file` (read from `source`): when its `[globalconf] anchor` is
/// set and nothing has been downloaded yet, downloads now, retrying for up to `patience` (a
/// server cannot start without a global configuration). Does nothing otherwise.
pub async fn bootstrap_file(
    file: &crate::config::file::ConfigFile,
    source: &crate::config::ConfigSource,
    patience: Duration,
) -> Result<(), String> {
    let Some(anchor) = &file.globalconf.anchor else {
        return Ok(());
    };
    let dir = source.path(&file.server.globalconf_dir);
    if store::current(&dir).join("instance-identifier").is_file() {
        return Ok(());
    }
    let anchor = read_anchor(source, anchor)?;
    let pool = brama_transport::Pool::new(4, Duration::from_secs(5), Duration::from_secs(5));
    let timeout = Duration::from_millis(file.globalconf.timeout_ms.max(1));
    let start = std::time::Instant::now();
    let mut wait = Duration::from_millis(250);
    loop {
        match download(&pool, &anchor, &[], timeout).await {
            Ok(d) => {
                store::store(&dir, &d)?;
                tracing::info!(source = %d.source, expires = %d.expire_date, "global configuration downloaded");
                return Ok(());
            }
            Err(e) if start.elapsed() >= patience => {
                return Err(format!("no global configuration could be downloaded: {e}"))
            }
            Err(e) => {
                tracing::warn!(error = %e, "global configuration download failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// [`bootstrap_file`] for the configuration file at `config`.
pub async fn bootstrap(config: &std::path::Path, patience: Duration) -> Result<(), String> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let file: crate::config::file::ConfigFile =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", config.display()))?;
    let source = crate::config::ConfigSource::Dir(
        config
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
    );
    bootstrap_file(&file, &source, patience).await
}
