//! `brama submit FILE.json`: posts an eMalyatko application to the router and follows it until
//! every service is delivered or failed.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use serde_json::Value;

use super::send::http_call_with;
use crate::load::tls::TlsSettings;

#[derive(Args)]
pub struct SubmitArgs {
    /// The application (JSON); see examples/applications/.
    pub file: PathBuf,
    /// The HTTPS client listener of the brama that runs the router.
    #[arg(long, default_value = "https://127.0.0.1:8443")]
    pub url: String,
    /// CA certificates (PEM) the server's certificate must chain to.
    #[arg(long, default_value = "certs-test/ca.pem")]
    pub ca: PathBuf,
    /// The information system's certificate (PEM), pinned for the submitting subsystem; the
    /// default is the embedded configuration's DIIA test certificate.
    #[arg(long, default_value = "certs-test/client-diia-is.pem")]
    pub cert: PathBuf,
    /// Its private key (PEM).
    #[arg(long, default_value = "certs-test/client-diia-is.key")]
    pub key: PathBuf,
    /// Print the id and stop, without following the application.
    #[arg(long)]
    pub no_follow: bool,
    /// Stop following after this long (10m, 90s), with exit code 3: still in progress.
    #[arg(long, value_parser = crate::load::parse_duration, default_value = "10m")]
    pub timeout: Duration,
    /// Print the final status as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(a: SubmitArgs) -> ExitCode {
    let body = match std::fs::read(&a.file) {
        Ok(b) => b,
        Err(e) => return fail(format!("{}: {e}", a.file.display())),
    };
    let base = a.url.trim_end_matches('/');
    let tls = TlsSettings {
        ca: Some(a.ca.clone()),
        insecure: false,
        client_cert: Some((a.cert.clone(), a.key.clone())),
    };
    let (status, _, resp) = match http_call_with(
        http::Method::POST,
        &format!("{base}/api/v1/applications"),
        &[],
        Some(("application/json", Bytes::from(body))),
        &tls,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let v: Value = serde_json::from_slice(&resp).unwrap_or(Value::Null);
    if status.as_u16() != 202 {
        eprintln!(
            "refused ({status}): {}",
            v["message"].as_str().unwrap_or("")
        );
        if let Some(fields) = v["fields"].as_array() {
            for f in fields {
                eprintln!(
                    "  {}: {}",
                    f["field"].as_str().unwrap_or(""),
                    f["problem"].as_str().unwrap_or("")
                );
            }
        }
        return ExitCode::from(1);
    }
    let Some(id) = v["id"].as_str() else {
        return fail("the router answered 202 without an id");
    };
    eprintln!("accepted: application {id}");
    if a.no_follow {
        println!("{id}");
        return ExitCode::SUCCESS;
    }
    follow(base, id, a.timeout, a.json, &tls).await
}

async fn follow(
    base: &str,
    id: &str,
    timeout: Duration,
    json: bool,
    tls: &TlsSettings,
) -> ExitCode {
    let tty = std::io::stderr().is_terminal();
    let start = Instant::now();
    let mut last_line = String::new();
    loop {
        let (status, _, body) = match http_call_with(
            http::Method::GET,
            &format!("{base}/api/v1/applications/{id}"),
            &[],
            None,
            tls,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        if !status.is_success() {
            return fail(format!("status query failed: {status}"));
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let line = progress(&v);
        if tty {
            eprint!("\r\x1b[2K{line} · {:.1} s", start.elapsed().as_secs_f64());
        } else if line != last_line {
            // Not a terminal (a log, a pipe): a line when something changed, not per poll.
            eprintln!("{line} · {:.1} s", start.elapsed().as_secs_f64());
        }
        let _ = std::io::stderr().flush();
        last_line = line;
        let overall = v["status"].as_str().unwrap_or("");
        if overall != "in_progress" {
            if tty {
                eprintln!();
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print_summary(&v);
            }
            return if overall == "completed" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
        }
        if start.elapsed() > timeout {
            if tty {
                eprintln!();
            }
            eprintln!("still in progress after {} s", timeout.as_secs_f64());
            return ExitCode::from(3);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `[#####-----] 5/10 delivered · 1 retrying` (the caller adds the time)
fn progress(v: &Value) -> String {
    let services = v["services"].as_array().cloned().unwrap_or_default();
    let count = |s: &str| services.iter().filter(|d| d["state"] == s).count();
    let done = count("delivered");
    let total = services.len().max(1);
    let width = 20;
    let filled = done * width / total;
    let mut parts = vec![format!("{done}/{} delivered", services.len())];
    for s in ["in_flight", "retrying", "failed"] {
        let n = count(s);
        if n > 0 {
            parts.push(format!("{n} {}", s.replace('_', " ")));
        }
    }
    format!(
        "[{}{}] {}",
        "#".repeat(filled),
        "-".repeat(width - filled),
        parts.join(" · ")
    )
}

fn print_summary(v: &Value) {
    println!(
        "application {}: {}",
        v["id"].as_str().unwrap_or(""),
        v["status"].as_str().unwrap_or("")
    );
    for d in v["services"].as_array().into_iter().flatten() {
        let state = d["state"].as_str().unwrap_or("");
        let mut line = format!(
            "  {:<26} {:<8} {:<10} attempts {}",
            d["service"].as_str().unwrap_or(""),
            d["registry"].as_str().unwrap_or(""),
            state,
            d["attempts"]
        );
        if state == "failed" {
            line += &format!(
                "  {}: {}",
                d["lastError"]["code"].as_str().unwrap_or(""),
                d["lastError"]["message"].as_str().unwrap_or("")
            );
        } else if let Some(a) = d["answer"].as_object() {
            let brief: Vec<String> = a
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| format!("{k}={s}")))
                .take(3)
                .collect();
            line += &format!("  {}", brief.join(" "));
        }
        println!("{line}");
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}
