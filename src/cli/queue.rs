//! `brama queue list|show|retry|purge`: the router's store. While the server runs they go
//! through its admin listener (the store allows one process at a time); when it does not, they open
//! the store directly.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Weak};

use clap::{Args, Subcommand};
use serde_json::Value;

use super::send::http_call;
use crate::config::ServerConf;
use crate::router::{api, engine::Engine, store::Store, Router};

#[derive(Args)]
pub struct QueueArgs {
    /// The server's configuration (for its admin address and store); the embedded default
    /// when absent.
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// Admin listener URL; defaults to the configuration's `listeners.admin`.
    #[arg(long, global = true)]
    pub admin: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: QueueCommand,
}

#[derive(Subcommand)]
pub enum QueueCommand {
    /// Applications and the state of their services, oldest first.
    List {
        /// Only applications with a service in this state (pending, in_flight, retrying,
        /// delivered, failed) or with this overall status (in_progress, completed).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::router::api::LIST_STATES))]
        state: Option<String>,
        /// At most this many applications.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One application with every attempt of every service.
    Show {
        /// The application's id (as `submit` printed it).
        id: String,
    },
    /// Start failed deliveries of an application again (all, or one service). Fails when
    /// nothing was restarted.
    Retry {
        /// The application's id.
        id: String,
        /// Only this service (e.g. `dps`), which must be one of the application's.
        #[arg(long)]
        service: Option<String>,
    },
    /// Remove one application by id, or with --all every finished one.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
    Purge {
        /// The application's id.
        id: Option<String>,
        /// Every finished application (every service delivered or failed).
        #[arg(long)]
        all: bool,
        /// Also purge an application that is still being delivered.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(a: QueueArgs) -> ExitCode {
    let conf = match super::server_conf(a.config.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(1);
        }
    };
    let admin = a.admin.clone().or_else(|| {
        conf.file
            .listeners
            .admin
            .as_ref()
            .map(|l| format!("http://{}", l.replace("0.0.0.0", "127.0.0.1")))
    });
    let res = match &admin {
        Some(url) => match remote(url, &a.command).await {
            Err(Remote::Unreachable(e)) => {
                eprintln!("note: {e}; opening the store directly");
                local(&conf, &a.command).await
            }
            Err(Remote::Failed(e)) => Err(e),
            Ok(v) => Ok(v),
        },
        None => local(&conf, &a.command).await,
    };
    // Nothing restarted is a retry that did not happen: say so, and fail.
    let res = res.and_then(|v| match &a.command {
        QueueCommand::Retry { id, .. } if v["restarted"] == 0 => Err(format!(
            "nothing restarted: application {id} has no failed delivery{}",
            match &a.command {
                QueueCommand::Retry {
                    service: Some(s), ..
                } => format!(" of {s}"),
                _ => String::new(),
            }
        )),
        _ => Ok(v),
    });
    match res {
        Ok(v) => {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print(&a.command, &v);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

enum Remote {
    Unreachable(String),
    Failed(String),
}

async fn remote(admin: &str, cmd: &QueueCommand) -> Result<Value, Remote> {
    let base = format!("{}/api/v1/queue", admin.trim_end_matches('/'));
    let (method, url) = match cmd {
        QueueCommand::List { state, limit } => (
            http::Method::GET,
            match state {
                Some(s) => format!("{base}?state={s}&limit={limit}"),
                None => format!("{base}?limit={limit}"),
            },
        ),
        QueueCommand::Show { id } => (http::Method::GET, format!("{base}/{id}")),
        QueueCommand::Retry { id, service } => (
            http::Method::POST,
            match service {
                Some(s) => format!("{base}/{id}/retry?service={s}"),
                None => format!("{base}/{id}/retry"),
            },
        ),
        QueueCommand::Purge { id, force, .. } => {
            let mut q = Vec::new();
            if let Some(id) = id {
                q.push(format!("id={id}"));
            }
            if *force {
                q.push("force=1".into());
            }
            (http::Method::POST, format!("{base}/purge?{}", q.join("&")))
        }
    };
    let (status, body) = http_call(method, &url, None)
        .await
        .map_err(Remote::Unreachable)?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|_| Remote::Failed(format!("{url}: HTTP {status}, not JSON")))?;
    if status.is_success() {
        Ok(v)
    } else if v["type"] == "RouterDisabled" {
        Err(Remote::Failed("the server runs without [router]".into()))
    } else {
        Err(Remote::Failed(
            v["message"].as_str().unwrap_or("failed").to_string(),
        ))
    }
}

async fn local(conf: &ServerConf, cmd: &QueueCommand) -> Result<Value, String> {
    let rc = conf
        .router
        .clone()
        .ok_or("the configuration has no enabled [router]")?;
    let store = match &rc.shared_store {
        // PostgreSQL: read and written beside the running nodes, as they do.
        Some(_) => crate::router::open_store(&rc).await?,
        None => {
            if !rc.store_dir.exists() {
                return Err(format!("no store at {}", rc.store_dir.display()));
            }
            Store::open(&rc.store_dir, rc.store_cache_bytes).map_err(|e| {
                format!(
                    "{}: {e} (a running server holds it: is its admin listener reachable?)",
                    rc.store_dir.display()
                )
            })?
        }
    };
    let rc = Arc::new(rc);
    let router = Router {
        engine: Engine::new(store, rc.clone(), Weak::new()),
        conf: rc,
    };
    let r = match cmd {
        QueueCommand::List { state, limit } => api::list(&router, state.as_deref(), *limit).await,
        QueueCommand::Show { id } => api::describe(&router, id, None).await,
        QueueCommand::Retry { id, service } => router
            .engine
            .retry(id, service.as_deref())
            .await
            .map(|n| serde_json::json!({ "id": id, "restarted": n })),
        QueueCommand::Purge { id, force, .. } => api::purge(&router, id.as_deref(), *force).await,
    };
    r.map_err(|e| e.to_string())
}

fn print(cmd: &QueueCommand, v: &Value) {
    match cmd {
        QueueCommand::List { .. } => {
            let apps = v["applications"].as_array().cloned().unwrap_or_default();
            println!(
                "{:<38} {:<25} {:<12} services",
                "application", "received", "status"
            );
            for a in &apps {
                let services = a["services"].as_array().cloned().unwrap_or_default();
                let states: Vec<String> = services
                    .iter()
                    .map(|s| {
                        format!(
                            "{}={}",
                            s["service"].as_str().unwrap_or(""),
                            s["state"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                println!(
                    "{:<38} {:<25} {:<12} {}",
                    a["id"].as_str().unwrap_or(""),
                    a["receivedAt"].as_str().unwrap_or(""),
                    a["status"].as_str().unwrap_or(""),
                    states.join(" ")
                );
            }
            println!("{} application(s)", apps.len());
            for r in v["registries"].as_array().into_iter().flatten() {
                println!(
                    "registry {:<8} scheduled {:>6}  in flight {:>4}",
                    r["registry"].as_str().unwrap_or(""),
                    r["scheduled"],
                    r["inFlight"]
                );
            }
        }
        QueueCommand::Show { .. } => {
            println!(
                "application {}  received {}  {}",
                v["id"].as_str().unwrap_or(""),
                v["receivedAt"].as_str().unwrap_or(""),
                v["status"].as_str().unwrap_or("")
            );
            for s in v["services"].as_array().into_iter().flatten() {
                // Every attempt made; `attempts` counts those since the last retry.
                let made = s["history"].as_array().map_or(0, Vec::len);
                let since = s["attempts"].as_u64().unwrap_or(0) as usize;
                let attempts = match since < made {
                    true => format!("{made} ({since} since the last retry)"),
                    false => made.max(since).to_string(),
                };
                println!(
                    "  {:<26} {:<8} {:<10} attempts {attempts}  x-road id {}",
                    s["service"].as_str().unwrap_or(""),
                    s["registry"].as_str().unwrap_or(""),
                    s["state"].as_str().unwrap_or(""),
                    s["xroadId"].as_str().unwrap_or("")
                );
                if let Some(w) = s["waitingFor"].as_array() {
                    println!("      waiting for {}", join(w));
                }
                if let Some(t) = s["nextAttemptAt"].as_str() {
                    println!("      next attempt {t}");
                }
                if s["lastError"].is_object() {
                    println!(
                        "      last error {}: {}",
                        s["lastError"]["code"].as_str().unwrap_or(""),
                        s["lastError"]["message"].as_str().unwrap_or("")
                    );
                }
                for h in s["history"].as_array().into_iter().flatten() {
                    println!(
                        "      #{:<3} {} {:<11} {:>6} ms {}",
                        h["number"],
                        api::rfc3339(h["startedAt"].as_u64().unwrap_or(0)),
                        h["outcome"].as_str().unwrap_or(""),
                        h["latencyMs"]
                            .as_u64()
                            .map_or("-".into(), |l| l.to_string()),
                        h["faultCode"].as_str().unwrap_or("")
                    );
                }
            }
        }
        QueueCommand::Retry { id, .. } => {
            println!("{id}: {} delivery(ies) restarted", v["restarted"]);
        }
        QueueCommand::Purge { .. } => {
            let n = v["purged"].as_array().map_or(0, Vec::len);
            println!("{n} application(s) purged");
        }
    }
}

fn join(v: &[Value]) -> String {
    v.iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
