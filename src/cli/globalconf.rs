//! `brama globalconf download|verify|show|publish` and `brama ocsp status`: the global
//! configuration and certificate status, for operators and for test networks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use serde_json::Value;

use super::send::http_call;
use crate::globalconf::{ConfigurationAnchor, GlobalConf};

#[derive(Subcommand)]
pub enum GlobalconfCommand {
    /// Download the global configuration from an anchor's sources, check it (directory
    /// signature, every file's hash, expiry) and store it in DIR/current.
    Download {
        /// The configuration anchor (XML) naming the sources and their signing certificates.
        #[arg(long)]
        anchor: PathBuf,
        /// The directory it is stored in (the version in force goes to DIR/current).
        #[arg(long)]
        out: PathBuf,
        /// Time for a source to answer one request (30s, 500ms).
        #[arg(long, value_parser = crate::load::parse_duration, default_value = "30s")]
        timeout: Duration,
    },
    /// Read a stored global configuration (DIR, or DIR/current when downloaded) and say whether
    /// it is usable now.
    Verify {
        /// The stored configuration's directory.
        dir: PathBuf,
    },
    /// The global configuration a running server has in force, and its downloads.
    Show {
        /// The server's configuration (for its admin address); the embedded default when absent.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Admin listener URL; defaults to the configuration's `listeners.admin`.
        #[arg(long)]
        admin: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Publish a directory of global configuration files as a test network's central server:
    /// signed directories at http://LISTEN/internalconf, and the anchor servers are given.
    #[cfg(feature = "sim")]
    Publish {
        /// The configuration to publish (instance-identifier, INSTANCE/shared-params.xml,
        /// INSTANCE/private-params.xml).
        #[arg(long, default_value = "config/globalconf")]
        dir: PathBuf,
        /// The signing certificate and its P-256 key (PEM). TEST ONLY defaults.
        #[arg(long, default_value = "certs-test/ca.pem")]
        cert: PathBuf,
        /// The signing certificate's key (PKCS#8 PEM).
        #[arg(long, default_value = "certs-test/ca.key")]
        key: PathBuf,
        /// The address it serves on.
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: String,
        /// Where the configuration anchor is written.
        #[arg(long, default_value = "configuration-anchor.xml")]
        anchor_out: PathBuf,
        /// Seconds each directory stays valid (X-Road's confExpireIntervalSeconds).
        #[arg(long, default_value_t = 600)]
        expire_s: i64,
    },
}

#[derive(Subcommand)]
pub enum OcspCommand {
    /// Each of a running server's own certificates: its responder, the age of its response,
    /// the next refresh and the freshness left.
    Status {
        /// The server's configuration (for its admin address); the embedded default when absent.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Admin listener URL; defaults to the configuration's `listeners.admin`.
        #[arg(long)]
        admin: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: GlobalconfCommand) -> ExitCode {
    let result = match cmd {
        GlobalconfCommand::Download {
            anchor,
            out,
            timeout,
        } => super::runtime().block_on(download(&anchor, &out, timeout)),
        GlobalconfCommand::Verify { dir } => verify(&dir),
        GlobalconfCommand::Show {
            config,
            admin,
            json,
        } => super::runtime().block_on(async {
            let v = admin_get(config.as_deref(), admin, "/globalconf").await?;
            match json {
                true => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
                false => print_globalconf(&v),
            }
            Ok(())
        }),
        #[cfg(feature = "sim")]
        GlobalconfCommand::Publish {
            dir,
            cert,
            key,
            listen,
            anchor_out,
            expire_s,
        } => super::runtime().block_on(publish(&dir, &cert, &key, &listen, &anchor_out, expire_s)),
    };
    finish(result)
}

pub fn run_ocsp(cmd: OcspCommand) -> ExitCode {
    let OcspCommand::Status {
        config,
        admin,
        json,
    } = cmd;
    finish(super::runtime().block_on(async {
        let v = admin_get(config.as_deref(), admin, "/ocsp").await?;
        match json {
            true => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
            false => print_ocsp(&v),
        }
        Ok(())
    }))
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn download(anchor: &Path, out: &Path, timeout: Duration) -> Result<(), String> {
    let anchor = ConfigurationAnchor::load(anchor).map_err(|e| e.to_string())?;
    let pool = crate::transport::Pool::new(4, Duration::from_secs(5), Duration::from_secs(5));
    let d = crate::confclient::download(&pool, &anchor, &[], timeout).await?;
    let gc = crate::confclient::store::store(out, &d)?;
    println!(
        "downloaded {} from {} (version {}, expires {}): {} file(s), {} instance(s); in force at {}",
        d.instance,
        d.source,
        d.version,
        d.expire_date,
        d.files.len(),
        gc.shared.len(),
        crate::confclient::store::current(out).display()
    );
    Ok(())
}

fn verify(dir: &Path) -> Result<(), String> {
    let (path, expires) = match crate::confclient::store::current(dir).is_dir() {
        true => (
            crate::confclient::store::current(dir),
            crate::confclient::store::expiry(dir),
        ),
        false => (dir.to_path_buf(), None),
    };
    let gc = GlobalConf::load_dir(&path).map_err(|e| e.to_string())?;
    let shared = gc
        .own_shared()
        .ok_or("no shared parameters for the own instance")?;
    println!(
        "{}: instance {}, {} member(s), {} security server(s), {} approved CA(s), {} TSA(s)",
        path.display(),
        gc.own_instance,
        shared.members.len(),
        shared.security_servers.len(),
        shared.approved_cas.len(),
        shared.approved_tsas.len()
    );
    match expires {
        None => println!("not downloaded: no expiry"),
        Some(at) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            if at < now {
                return Err(format!("expired {} s ago (OutdatedGlobalConf)", now - at));
            }
            println!("valid for {} s more", at - now);
        }
    }
    Ok(())
}

async fn admin_get(
    config: Option<&Path>,
    admin: Option<String>,
    path: &str,
) -> Result<Value, String> {
    let admin = match admin {
        Some(a) => a,
        None => {
            let conf = super::server_conf(config).map_err(|e| e.join("\n"))?;
            let listen = conf
                .file
                .listeners
                .admin
                .ok_or("the configuration has no admin listener; pass --admin")?;
            format!("http://{}", listen.replace("0.0.0.0", "127.0.0.1"))
        }
    };
    let url = format!("{}{path}", admin.trim_end_matches('/'));
    let (status, body) = http_call(http::Method::GET, &url, None)
        .await
        .map_err(|e| format!("{url}: {e} (is the server running?)"))?;
    if !status.is_success() {
        return Err(format!("{url}: HTTP {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}

fn print_globalconf(v: &Value) {
    println!("instance:   {}", v["instance"].as_str().unwrap_or_default());
    println!("members:    {}", v["members"]);
    println!("servers:    {}", v["securityServers"]);
    for ca in v["approvedCAs"].as_array().into_iter().flatten() {
        println!(
            "CA:         {} (OCSP: {})",
            ca["name"].as_str().unwrap_or_default(),
            ca["ocsp"]
        );
    }
    match v["expiresInSeconds"].as_i64() {
        Some(s) if s < 0 => println!("EXPIRED:    {} s ago", -s),
        Some(s) => println!("expires in: {s} s"),
        None => println!("expires:    never (read from a directory, not downloaded)"),
    }
    if let Some(d) = v["download"].as_object() {
        println!("sources:    {}", d["sources"]);
        let s = &d["state"];
        println!("last good:  {}", s["last_success"]);
        if let Some(e) = s["last_error"].as_str() {
            println!("last error: {e} ({} failure(s) in a row)", s["failures"]);
        }
    }
}

fn print_ocsp(v: &Value) {
    let certs = v["certificates"].as_array().cloned().unwrap_or_default();
    if certs.is_empty() {
        println!("no certificate of this server has its status checked (no CA names a responder)");
    }
    for c in certs {
        println!(
            "{:<8} {}  {}",
            c["state"].as_str().unwrap_or_default(),
            c["label"].as_str().unwrap_or_default(),
            c["subject"].as_str().unwrap_or_default()
        );
        println!(
            "         responder {}, age {} s, fresh for {} s, next fetch in {} s{}",
            c["responder"].as_str().unwrap_or("-"),
            c["age_s"],
            c["fresh_for_s"],
            c["next_fetch_in_s"],
            c["last_error"]
                .as_str()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default()
        );
    }
}

#[cfg(feature = "sim")]
async fn publish(
    dir: &Path,
    cert: &Path,
    key: &Path,
    listen: &str,
    anchor_out: &Path,
    expire_s: i64,
) -> Result<(), String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let publisher = crate::test_publish::Publisher::from_dir(dir, &read(cert)?, &read(key)?)?;
    *publisher
        .expire_after_s
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = expire_s;
    let l = crate::proxy::listener::bind(listen, 128)
        .await
        .map_err(|e| format!("{listen}: {e}"))?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    let url = format!("http://{addr}/internalconf");
    std::fs::write(anchor_out, publisher.anchor_xml(&url))
        .map_err(|e| format!("{}: {e}", anchor_out.display()))?;
    println!(
        "publishing {} ({}) at {url}; anchor written to {} (give it to servers as [globalconf] anchor)",
        publisher.instance,
        dir.display(),
        anchor_out.display()
    );
    brama_sim::serve_globalconf(l, std::sync::Arc::new(publisher), super::shutdown_signal()).await;
    Ok(())
}
