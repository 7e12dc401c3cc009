//! `brama load`: the load generator's flags, turned into a scenario and a plan (`crate::load`).
//! Flags and the JSON summary are described in `docs/load.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};

use crate::identifiers::{ClientId, ServiceId};
use crate::load::http::{Client, Target};
use crate::load::scenario::{AppTemplate, RestTemplate, SoapTemplate};
use crate::load::tls::TlsSettings;
use crate::load::{parse_duration, read_file, LoadError, Model, Plan, Scenario, Stop};

/// The default application: the example with every service.
const APPLICATION: &str = include_str!("../../examples/applications/all-services.json");

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ScenarioArg {
    Soap,
    Rest,
    Application,
}

#[derive(clap::Args)]
pub struct LoadArgs {
    /// What to send: X-Road SOAP requests, REST requests, or router applications followed to
    /// the end.
    #[arg(long, value_enum, default_value = "soap")]
    scenario: ScenarioArg,
    /// Client proxy base URL (http:// or https://).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// soap: a complete X-Road SOAP request (its xrd:id is replaced per request); rest: the
    /// request body; application: the application JSON (default: the all-services example).
    #[arg(long)]
    request: Option<PathBuf>,
    /// soap: build the request from a compiled-in WSDL operation (REGISTRY/OP, see `brama wsdl
    /// list`) with generated data; needs --client and --service.
    #[arg(long, conflicts_with = "request")]
    operation: Option<String>,
    /// Client: INSTANCE/CLASS/CODE[/SUBSYSTEM] (soap with --operation, rest).
    #[arg(long)]
    client: Option<String>,
    /// soap with --operation: the provider INSTANCE/CLASS/CODE/SUBSYSTEM or a whole service
    /// INSTANCE/CLASS/CODE/SUBSYSTEM/CODE[/VERSION]; rest: the service.
    #[arg(long)]
    service: Option<String>,
    /// soap with --operation, rest: the userId header.
    #[arg(long)]
    user_id: Option<String>,
    /// rest: path and query after the service, e.g. `/items/7` or `?patient=…`.
    #[arg(long, default_value = "")]
    path: String,
    /// rest: HTTP method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// rest: an extra request header `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// rest: Content-Type of the --request body.
    #[arg(long, default_value = "application/json")]
    content_type: String,
    /// rest: Trembita 2.0's UXP headers (`/restapi`, `Uxp-Client`, `Uxp-Service`, `Uxp-Queryid`).
    #[arg(long)]
    uxp: bool,
    /// Closed model: this many workers, each sending back to back (default 8).
    #[arg(long, conflicts_with = "rate")]
    concurrency: Option<usize>,
    /// Open model: requests started per second, whatever the answers.
    #[arg(long)]
    rate: Option<f64>,
    /// Open model: arrivals beyond this many outstanding requests are dropped (and counted).
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: usize,
    /// How long to measure after the warm-up (default 10s unless --requests).
    #[arg(long, value_parser = parse_duration, conflicts_with = "requests")]
    duration: Option<Duration>,
    /// How many requests to measure after the warm-up.
    #[arg(long)]
    requests: Option<u64>,
    /// Sent but not recorded, before the measured window.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    warmup: Duration,
    /// Per request; application: submit to completion.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    timeout: Duration,
    /// Keep-alive connections (default: --concurrency, or 64 with --rate).
    #[arg(long)]
    connections: Option<usize>,
    /// Runtime threads of the generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// application: how often to ask for an application's status.
    #[arg(long, value_parser = parse_duration, default_value = "100ms")]
    poll_interval: Duration,
    /// Fail the run (exit code 1, after the summary) when more than this fraction of the
    /// requests fail: 0.01 is 1%, 1 never fails.
    #[arg(long, default_value_t = 0.01, value_name = "FRACTION")]
    max_error_rate: f64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// https: CA certificates (PEM) the server's certificate must chain to (default: the
    /// system's bundle).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// https: accept any server certificate.
    #[arg(long)]
    insecure: bool,
    /// https: client certificate (PEM), for servers that authenticate the information system.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// https: the client certificate's private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
}

const MAX_IN_FLIGHT: usize = 1_000_000;

pub fn run(a: LoadArgs) -> ExitCode {
    let threads = a.threads.clamp(1, 256);
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (json, max_error_rate) = (a.json, a.max_error_rate);
    if !(0.0..=1.0).contains(&max_error_rate) {
        return fail(LoadError::Usage(
            "--max-error-rate is a fraction from 0 to 1".into(),
        ));
    }
    match rt.block_on(start(a, threads)) {
        Ok(summary) => {
            if json {
                println!("{}", summary.to_json());
            } else {
                print!("{}", summary.to_text());
            }
            let rate = summary.errors as f64 / summary.requests.max(1) as f64;
            if rate > max_error_rate {
                eprintln!(
                    "error: error rate {:.1}% is above --max-error-rate {}%",
                    rate * 100.0,
                    max_error_rate * 100.0
                );
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Exit code 2: what the command line gave cannot be used (flags, files, the target).
fn fail(e: LoadError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

async fn start(a: LoadArgs, threads: usize) -> Result<crate::load::Summary, LoadError> {
    let model = match (a.rate, a.concurrency) {
        (Some(r), _) if !(r.is_finite() && r > 0.0) => {
            return Err(LoadError::Usage("--rate must be above 0".into()))
        }
        (Some(rate), _) => Model::Open {
            rate,
            max_in_flight: a.max_in_flight.clamp(1, MAX_IN_FLIGHT),
        },
        (None, c) => Model::Closed {
            concurrency: c.unwrap_or(8).clamp(1, MAX_IN_FLIGHT),
        },
    };
    let stop = match (a.requests, a.duration) {
        (Some(0), _) => return Err(LoadError::Usage("--requests must be above 0".into())),
        (Some(n), _) => Stop::Requests(n),
        (None, d) => Stop::Duration(d.unwrap_or(Duration::from_secs(10))),
    };
    let connections = a
        .connections
        .unwrap_or(match model {
            Model::Closed { concurrency } => concurrency,
            Model::Open { max_in_flight, .. } => max_in_flight.min(64),
        })
        .clamp(1, MAX_IN_FLIGHT);
    let tls = TlsSettings {
        ca: a.ca.clone(),
        insecure: a.insecure,
        client_cert: a.cert.clone().zip(a.key.clone()),
    };
    let target = Target::new(&a.url, &tls).await?;
    let scenario = scenario(&a, &target.base_path)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    tokio::spawn(async move {
        // The first Ctrl-C ends the run early with a summary; the second ends the process.
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
            eprintln!("\ninterrupted: waiting for the requests out (Ctrl-C again to quit)");
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let plan = Plan {
        interrupted,
        model,
        stop,
        warmup: a.warmup,
        timeout: a.timeout,
        progress: !a.quiet,
        threads,
        connections,
    };
    Ok(crate::load::run(scenario, Client::new(target, connections), plan).await)
}

fn scenario(a: &LoadArgs, base_path: &str) -> Result<Scenario, LoadError> {
    let usage = |m: &str| Err(LoadError::Usage(m.into()));
    match a.scenario {
        ScenarioArg::Soap => {
            let xml = match (&a.request, &a.operation) {
                (Some(file), _) => {
                    if a.client.is_some() || a.service.is_some() {
                        return usage("a --request file carries its own client and service; --client and --service go with --operation");
                    }
                    read_file(file)?
                }
                (None, Some(op)) => {
                    let (Some(client), Some(service)) = (&a.client, &a.service) else {
                        return usage("--operation needs --client and --service");
                    };
                    let op = crate::load::operation::find(op)?;
                    let service = crate::load::operation::service(op, service)?;
                    crate::load::operation::request(op, client, service, a.user_id.clone())?
                        .into_bytes()
                }
                (None, None) => {
                    return usage(
                        "the soap scenario needs --request FILE or --operation REGISTRY/OP",
                    )
                }
            };
            Scenario::soap(SoapTemplate::new(&xml)?, base_path)
        }
        ScenarioArg::Rest => rest(a, base_path).map(Scenario::Rest),
        ScenarioArg::Application => {
            let json = match &a.request {
                Some(f) => read_file(f)?,
                None => APPLICATION.as_bytes().to_vec(),
            };
            Scenario::application(AppTemplate::new(&json, a.poll_interval)?, base_path)
        }
    }
}

fn rest(a: &LoadArgs, base_path: &str) -> Result<RestTemplate, LoadError> {
    let usage = |m: String| LoadError::Usage(m);
    let (Some(client), Some(service)) = (&a.client, &a.service) else {
        return Err(usage(
            "the rest scenario needs --client and --service".into(),
        ));
    };
    let client = ClientId::parse_path(client).map_err(|e| usage(format!("--client: {e}")))?;
    let service = ServiceId::parse_path(service).map_err(|e| usage(format!("--service: {e}")))?;
    let method = super::rest_args::method(&a.method).map_err(usage)?;
    let target = super::rest_args::target(&client, &service, &a.path, a.uxp).map_err(usage)?;
    let path = format!("{base_path}{}", target.path);
    let mut pairs = target.headers;
    if let Some(u) = &a.user_id {
        pairs.push((format!("{}-userid", target.prefix), u.clone()));
    }
    for h in &a.headers {
        pairs.push(super::rest_args::header(h).map_err(usage)?);
    }
    let body = match &a.request {
        Some(f) => {
            pairs.push((CONTENT_TYPE.to_string(), a.content_type.clone()));
            Bytes::from(read_file(f)?)
        }
        None => Bytes::new(),
    };
    let mut headers = http::HeaderMap::new();
    for (n, v) in pairs {
        let name = HeaderName::from_bytes(n.as_bytes())
            .map_err(|_| usage(format!("'{n}' is not a header name")))?;
        let value =
            HeaderValue::from_str(&v).map_err(|_| usage(format!("header {n}: bad value")))?;
        headers.append(name, value);
    }
    Ok(RestTemplate {
        method,
        path: path
            .parse()
            .map_err(|e| usage(format!("'{path}' is not a request path: {e}")))?,
        headers,
        id_header: HeaderName::from_static(target.id_header),
        body,
    })
}
