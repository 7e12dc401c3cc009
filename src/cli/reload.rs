//! Reloading a running server's configuration: `brama reload` asks the server (admin
//! `POST /reload`); the server, on that or on `SIGHUP`, reads and checks its file again. The
//! hosted clients and `[log] level` go into force for the next request; any other change is
//! reported as waiting for a restart; a file with errors is refused whole, every error named, and
//! the configuration in force stays.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::config::ServerConf;
use crate::proxy::reload::ReloadReport;
use crate::proxy::Gateway;

/// What a running server reloads from, and what of it is in force.
pub struct Reloader {
    path: Option<PathBuf>,
    /// The file as in force: as started, with each applied key since.
    in_force: toml::Table,
    /// `--log-level` or `RUST_LOG` chose the level, over the file's.
    level_overridden: bool,
}

impl Reloader {
    pub fn new(path: Option<&Path>, conf: &ServerConf, level_overridden: bool) -> Reloader {
        Reloader {
            path: path.map(Path::to_path_buf),
            in_force: conf.raw.clone(),
            level_overridden,
        }
    }

    /// Reads, checks and applies the file; logs and returns what happened.
    pub async fn reload(&mut self, gw: &Gateway) -> ReloadReport {
        let report = self.apply(gw).await;
        if !report.errors.is_empty() {
            tracing::error!(
                errors = report.errors.len(),
                "configuration reload refused; the configuration in force stays"
            );
            for e in &report.errors {
                tracing::error!("reload: {e}");
            }
        } else if report.needs_restart.is_empty() {
            tracing::info!(applied = %join(&report.applied), "configuration reloaded");
        } else {
            tracing::warn!(
                applied = %join(&report.applied),
                needs_restart = %join(&report.needs_restart),
                "configuration reloaded; some changes wait for a restart"
            );
        }
        report
    }

    async fn apply(&mut self, gw: &Gateway) -> ReloadReport {
        let path = self.path.clone();
        let next =
            match tokio::task::spawn_blocking(move || super::load_config(path.as_deref())).await {
                Ok(Ok(conf)) => conf,
                Ok(Err(errors)) => return ReloadReport::refused(errors),
                Err(e) => return ReloadReport::refused(vec![format!("reading it failed: {e}")]),
            };
        let mut errors = gw.check_hosted(&next);
        let changed = crate::config::changed_keys(&self.in_force, &next.raw);
        let new_level = changed
            .iter()
            .any(|k| k == "log.level")
            .then_some(next.file.log.level.as_str())
            .filter(|_| !self.level_overridden);
        if let Some(level) = new_level {
            if let Err(e) = tracing_subscriber::EnvFilter::try_new(level) {
                errors.push(format!("log.level: {level:?}: {e}"));
            }
        }
        if !errors.is_empty() {
            return ReloadReport::refused(errors);
        }
        let mut report = ReloadReport::default();
        for key in changed {
            match key.as_str() {
                "clients" => gw.replace_hosted(next.clients.clone()),
                "log.level" => match new_level {
                    Some(level) => {
                        let _ = super::log::set_level(level);
                    }
                    // --log-level or RUST_LOG chose the level at start, over the file's.
                    None => {
                        report
                            .needs_restart
                            .push("log.level (--log-level or RUST_LOG wins)".into());
                        continue;
                    }
                },
                _ => {
                    report.needs_restart.push(key);
                    continue;
                }
            }
            copy_key(&mut self.in_force, &next.raw, &key);
            report.applied.push(key);
        }
        report
    }
}

/// `key` (`a` or `a.b`) of `from` copied into `to`, or removed from it when `from` has none.
fn copy_key(to: &mut toml::Table, from: &toml::Table, key: &str) {
    match key.split_once('.') {
        None => match from.get(key) {
            Some(v) => drop(to.insert(key.to_string(), v.clone())),
            None => drop(to.remove(key)),
        },
        Some((table, inner)) => {
            let value = from
                .get(table)
                .and_then(toml::Value::as_table)
                .and_then(|t| t.get(inner));
            let entry = to
                .entry(table)
                .or_insert_with(|| toml::Value::Table(Default::default()));
            if let Some(t) = entry.as_table_mut() {
                match value {
                    Some(v) => drop(t.insert(inner.to_string(), v.clone())),
                    None => drop(t.remove(inner)),
                }
            }
        }
    }
}

fn join(keys: &[String]) -> String {
    match keys.is_empty() {
        true => "nothing".into(),
        false => keys.join(", "),
    }
}

#[derive(Args)]
pub struct ReloadArgs {
    /// The running server's configuration file, for its admin listener (the embedded
    /// default's when left out). The server re-reads the file it was started with.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The admin listener's URL, instead of the one in --config (e.g. http://127.0.0.1:5588).
    #[arg(long, value_name = "URL")]
    admin: Option<String>,
    /// Print the server's report as JSON.
    #[arg(long)]
    json: bool,
}

/// `brama reload`: 0 reloaded, 1 refused (every error printed) or the server unreachable.
pub fn run(args: ReloadArgs) -> ExitCode {
    let report = match super::runtime().block_on(ask(&args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    if !report.errors.is_empty() {
        for e in &report.errors {
            eprintln!("error: {e}");
        }
        eprintln!(
            "reload refused: {} error(s); the configuration in force stays",
            report.errors.len()
        );
        return ExitCode::from(1);
    }
    if !args.json {
        println!("reloaded: applied {}", join(&report.applied));
        if !report.needs_restart.is_empty() {
            println!(
                "changed but waiting for a restart: {}",
                join(&report.needs_restart)
            );
        }
    }
    ExitCode::SUCCESS
}

async fn ask(args: &ReloadArgs) -> Result<ReloadReport, String> {
    let admin = match &args.admin {
        Some(a) => a.clone(),
        None => {
            let table = crate::config::read_table(args.config.as_deref())
                .map_err(|e| format!("{e} (pass --admin to reach the server anyway)"))?;
            let listen = table
                .get("listeners")
                .and_then(|l| l.get("admin"))
                .and_then(toml::Value::as_str)
                .ok_or("the configuration has no admin listener: send the server SIGHUP")?;
            format!("http://{}", listen.replace("0.0.0.0", "127.0.0.1"))
        }
    };
    let url = format!("{}/reload", admin.trim_end_matches('/'));
    let (status, body) = super::send::http_call(http::Method::POST, &url, None)
        .await
        .map_err(|e| format!("{url}: {e} (is the server running?)"))?;
    if status != 200 && status != 422 {
        return Err(format!(
            "{url}: HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}
