//! The `brama` command line.

mod certs;
mod globalconf;
mod keys;
mod load;
mod log;
mod queue;
mod reload;
mod rest_args;
mod send;
mod sign;
mod store;
mod submit;
mod wsdl;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::signal::unix::{signal, SignalKind};

use crate::config::ServerConf;

#[derive(Parser)]
#[command(
    name = "brama",
    version = brama_gateway::LONG_VERSION,
    about = "X-Road / Trembita security server and integration gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the security server (the embedded default configuration unless --config is given).
    Serve {
        /// The configuration file (the embedded default when left out).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// What to log, over the configuration's `[log] level`: `error`, `warn`, `info`,
        /// `debug`, or a filter such as `warn,access=info` (`RUST_LOG` wins over both).
        #[arg(long, value_name = "LEVEL")]
        log_level: Option<String>,
        /// How to log, over the configuration's `[log] format`: one line of text per event, or
        /// one JSON object per line.
        #[arg(long, value_name = "FORMAT")]
        log_format: Option<LogFormat>,
    },
    /// Re-read a running server's configuration: hosted clients and the log level go into
    /// force, other changes wait for a restart; a file with errors is refused and the one in
    /// force stays (the same as `kill -HUP`).
    Reload(reload::ReloadArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Build one X-Road request (SOAP, or REST with --rest) and send it to a client proxy; print
    /// the answer or the fault.
    Send(send::SendArgs),
    /// The global configuration: download, verify, show, publish (a test central server).
    Globalconf {
        #[command(subcommand)]
        command: globalconf::GlobalconfCommand,
    },
    /// Certificate status (OCSP) of a running server's own certificates.
    Ocsp {
        #[command(subcommand)]
        command: globalconf::OcspCommand,
    },
    /// Test PKI tools.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Sign message files with a member's configured key; write one ASiC-E container each.
    Sign(sign::SignArgs),
    /// Verify ASiC-E containers (or loose signature files) against a global configuration.
    Verify(sign::VerifyArgs),
    /// Message-log archives: check their chain and every container in them.
    Archive {
        #[command(subcommand)]
        command: ArchiveCommand,
    },
    /// Manage signing keys on a configured token (PKCS#11 or software).
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Load-test a security server (brama or any X-Road one): SOAP, REST or applications,
    /// closed or open model, HDR latency summary (see docs/load.md).
    Load(load::LoadArgs),
    /// Post an eMalyatko application to the router and follow it to the end.
    Submit(submit::SubmitArgs),
    /// The router's delivery queue: list, show, retry, purge (works while the server runs).
    Queue(queue::QueueArgs),
    /// The router's store, offline.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Registry operations from the WSDLs: list, show one, print the generated code.
    Wsdl {
        #[command(subcommand)]
        command: wsdl::WsdlCommand,
    },
    /// Run the registry simulator alone.
    #[cfg(feature = "sim")]
    RegistrySim {
        /// The address it serves on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: String,
        /// Added to every answer, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Fraction of requests answered with a fault (0..1).
        #[arg(long, default_value_t = 0.0)]
        error_rate: f64,
        /// Directory of the WSDLs it serves.
        #[arg(long, default_value = "wsdl")]
        wsdl_dir: PathBuf,
        /// Directory of the OpenAPI descriptions it serves (default: those built in).
        #[arg(long)]
        openapi_dir: Option<PathBuf>,
        /// How long DRACS keeps a birth registration "in progress".
        #[arg(long, default_value_t = 0)]
        dracs_processing_ms: u64,
        /// Also answer OCSP at POST /ocsp for the CA of this PEM certificate (TEST ONLY), signing
        /// with --ocsp-cert and --ocsp-key.
        #[arg(long, requires_all = ["ocsp_cert", "ocsp_key"])]
        ocsp_ca: Option<PathBuf>,
        /// The OCSP responder's certificate (PEM, issued by --ocsp-ca, id-kp-OCSPSigning).
        #[arg(long, requires = "ocsp_ca")]
        ocsp_cert: Option<PathBuf>,
        /// The OCSP responder's key (PKCS#8 PEM).
        #[arg(long, requires = "ocsp_ca")]
        ocsp_key: Option<PathBuf>,
        /// Also time-stamp at POST /tsa (RFC 3161, TEST ONLY), signing with this certificate
        /// (PEM, critical EKU timeStamping) and --tsa-key.
        #[arg(long, requires = "tsa_key")]
        tsa_cert: Option<PathBuf>,
        /// The TSA's key (PKCS#8 PEM).
        #[arg(long, requires = "tsa_cert")]
        tsa_key: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Verify the store with the server stopped: every page against its checksum, every
    /// record read. Exits 1 naming what is damaged.
    Check(store::StoreCheckArgs),
}

#[derive(Subcommand)]
enum ArchiveCommand {
    /// Check archives (`mlog-*.zip`): each `linkinginfo` chain, each archive's link to the one
    /// before it, and every container with full trust (CA path, OCSP and time-stamp).
    Verify(sign::ArchiveVerifyArgs),
    /// Write the containers a message log directory holds (loose, of time-stamping rounds,
    /// archived) as `.asice` files, for any ASiC-E verifier.
    Export(sign::ArchiveExportArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the server configuration and the global configuration; print every error.
    Check {
        /// The configuration file (the embedded default when left out).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print one JSON object (`ok`, and `errors` or what was checked) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Generate the test PKI (CA, auth, TLS and signing certificates) and write the new
    /// certificate hashes into the global configuration.
    Init(certs::InitArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check { config, json },
        } => match load_config(config.as_deref()) {
            Ok(conf) => {
                let services: usize = conf.clients.values().map(|c| c.services.len()).sum();
                match json {
                    true => println!(
                        "{}",
                        serde_json::json!({
                            "ok": true,
                            "server": conf.server_id.to_string(),
                            "clients": conf.clients.len(),
                            "services": services,
                        })
                    ),
                    false => println!(
                        "configuration OK: server {}, {} hosted clients, {services} services",
                        conf.server_id,
                        conf.clients.len(),
                    ),
                }
                ExitCode::SUCCESS
            }
            Err(errors) => {
                match json {
                    true => println!("{}", serde_json::json!({ "ok": false, "errors": errors })),
                    false => {
                        for e in &errors {
                            eprintln!("error: {e}");
                        }
                        eprintln!("{} error(s)", errors.len());
                    }
                }
                ExitCode::from(1)
            }
        },
        Command::Serve {
            config,
            log_level,
            log_format,
        } => {
            let file = crate::config::read_file(config.as_deref()).ok();
            let format = log_format
                .map(LogFormat::name)
                .or(file.as_ref().map(|(f, _)| f.log.format.as_str()));
            let level = log_level
                .as_deref()
                .or(file.as_ref().map(|(f, _)| f.log.level.as_str()));
            let _log = match log::init(format.unwrap_or("text"), level.unwrap_or("info")) {
                Ok(guard) => guard,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let level_overridden = log_level.is_some() || std::env::var_os("RUST_LOG").is_some();
            runtime().block_on(serve(config.as_deref(), level_overridden))
        }
        Command::Reload(args) => reload::run(args),
        Command::Send(args) => runtime().block_on(send::run(args)),
        Command::Wsdl { command } => wsdl::run(command),
        Command::Submit(args) => runtime().block_on(submit::run(args)),
        Command::Load(args) => load::run(args),
        Command::Queue(args) => runtime().block_on(queue::run(args)),
        Command::Store {
            command: StoreCommand::Check(args),
        } => store::check(args),
        Command::Sign(args) => sign::sign(args),
        Command::Verify(args) => sign::verify(args),
        Command::Archive {
            command: ArchiveCommand::Verify(args),
        } => sign::archive_verify(args),
        Command::Archive {
            command: ArchiveCommand::Export(args),
        } => sign::archive_export(args),
        Command::Keys { command } => keys::run(command),
        Command::Globalconf { command } => globalconf::run(command),
        Command::Ocsp { command } => globalconf::run_ocsp(command),
        Command::Certs {
            command: CertsCommand::Init(args),
        } => certs::init(args),
        #[cfg(feature = "sim")]
        Command::RegistrySim {
            listen,
            latency_ms,
            error_rate,
            wsdl_dir,
            openapi_dir,
            dracs_processing_ms,
            ocsp_ca,
            ocsp_cert,
            ocsp_key,
            tsa_cert,
            tsa_key,
        } => {
            let _log = log::init("text", "info");
            let tsa: Option<std::sync::Arc<dyn brama_testkit::tsa::TimeStampAuthority>> =
                match (&tsa_cert, &tsa_key) {
                    (Some(cert), Some(key)) => {
                        let read = |p: &PathBuf| {
                            std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
                        };
                        let made = read(cert)
                            .and_then(|c| brama_testkit::tsa::Tsa::from_pem(&c, &read(key)?));
                        match made {
                            Ok(t) => Some(std::sync::Arc::new(t)),
                            Err(e) => {
                                eprintln!("error: --tsa-*: {e}");
                                return ExitCode::from(1);
                            }
                        }
                    }
                    _ => None,
                };
            let ocsp = match (&ocsp_ca, &ocsp_cert, &ocsp_key) {
                (Some(ca), Some(cert), Some(key)) => {
                    let read = |p: &PathBuf| {
                        std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
                    };
                    let made = read(ca).and_then(|ca| {
                        brama_testkit::ocsp::Responder::from_pem(&ca, &read(cert)?, &read(key)?)
                    });
                    match made {
                        Ok(r) => Some(std::sync::Arc::new(r)),
                        Err(e) => {
                            eprintln!("error: --ocsp-*: {e}");
                            return ExitCode::from(1);
                        }
                    }
                }
                _ => None,
            };
            runtime().block_on(async move {
                let here = std::path::Path::new(".");
                let loaded =
                    crate::sim::load_wsdls(here, &wsdl_dir.to_string_lossy()).and_then(|w| {
                        match &openapi_dir {
                            None => Ok(w),
                            Some(dir) => crate::sim::load_openapi(here, &dir.to_string_lossy())
                                .map(|files| w.with_openapi(files)),
                        }
                    });
                let wsdls = match loaded {
                    Ok(w) => w,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                };
                let listener = match crate::proxy::listener::bind(&listen, 1024).await {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                };
                tracing::info!(%listen, "registry simulator serving");
                let cfg = crate::sim::SimConfig {
                    latency: std::time::Duration::from_millis(latency_ms),
                    error_rate,
                    wsdls,
                    dracs_processing: std::time::Duration::from_millis(dracs_processing_ms),
                    ocsp,
                    tsa,
                    ..Default::default()
                };
                let stats = std::sync::Arc::new(crate::sim::SimStats::default());
                match crate::sim::serve(listener, cfg, stats, shutdown_signal()).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::from(1)
                    }
                }
            })
        }
    }
}

/// The server configuration of `path` (the embedded default when `None`), checked; a global
/// configuration it downloads from an anchor is downloaded first when none is there yet.
pub(crate) fn server_conf(path: Option<&std::path::Path>) -> Result<ServerConf, Vec<String>> {
    crate::serve::prepare_blocking(path).map_err(|e| vec![e])?;
    ServerConf::load(path).map_err(|e| e.0.iter().map(ToString::to_string).collect())
}

/// The server configuration, checked, and its `[router]` checked against the router's flow.
fn load_config(path: Option<&std::path::Path>) -> Result<ServerConf, Vec<String>> {
    let conf = server_conf(path)?;
    if let Some(Err(e)) = conf.router.as_ref().map(crate::router::check) {
        return Err(vec![e]);
    }
    Ok(conf)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}

async fn serve(path: Option<&std::path::Path>, level_overridden: bool) -> ExitCode {
    // A configuration downloaded from an anchor must be there before it is read; the test
    // central server it comes from, if this process runs it, keeps serving until shutdown.
    let central = match crate::serve::prepare(path, std::time::Duration::from_secs(120)).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let conf = match load_config(path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            return ExitCode::from(1);
        }
    };
    warn_if_test_keys(&conf);
    let mut reloader = reload::Reloader::new(path, &conf, level_overridden);
    let running = match crate::serve::start(conf, Default::default()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let gw = running.gateway.clone();
    let mut asked = gw.reload_requests();
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: SIGHUP handler: {e}");
            return ExitCode::from(1);
        }
    };
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                reloader.reload(&gw).await;
            }
            Some(ask) = asked.recv() => {
                let _ = ask.send(reloader.reload(&gw).await);
            }
        }
    }
    tracing::info!("shutting down: draining in-flight requests");
    drop(gw);
    running.shutdown().await;
    drop(central);
    ExitCode::SUCCESS
}

/// Says at start when the server runs on keys whose private halves are public.
fn warn_if_test_keys(conf: &ServerConf) {
    if matches!(conf.source, crate::config::ConfigSource::Embedded) {
        tracing::warn!(
            "running the embedded default configuration: a TEST network ({}) with brama's test \
             keys, whose private keys are public, and the registry simulator, on loopback only; \
             a real server runs with --config and keys of its own (config/README.md)",
            conf.server_id.owner.instance
        );
    } else if conf
        .auth_certs
        .first()
        .is_some_and(|c| crate::config::check::issued_by_checked_in_test_ca(c))
    {
        tracing::warn!(
            "this server's keys are brama's checked-in test keys (certs-test/), whose private \
             keys are public: for tests only"
        );
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    /// Every command and every flag and argument of every command says what it is for.
    #[test]
    fn every_flag_has_help() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && !path.ends_with(" help") {
                missing.push(format!("{path}: the command"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if !["help", "version"].contains(&id) && arg.get_help().is_none() {
                    missing.push(format!("{path}: {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no help for:\n{}", missing.join("\n"));
    }
}
