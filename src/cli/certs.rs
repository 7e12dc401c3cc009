//! `brama certs init`: regenerate the test PKI and the global configuration that trusts it.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::deploy::default_topology;

#[derive(clap::Args)]
pub struct InitArgs {
    /// Where the certificates and keys go.
    #[arg(long, default_value = "certs-test")]
    out: PathBuf,
    /// The global configuration directory to (re)write.
    #[arg(long, default_value = "config/globalconf")]
    globalconf: PathBuf,
    /// The configuration anchor to (re)write: the test central server's certificate, and
    /// where the embedded default downloads the global configuration from. Default:
    /// `anchor.xml` beside the global configuration directory (`config/anchor.xml`).
    #[arg(long)]
    anchor: Option<PathBuf>,
}

/// Where the embedded default's test central server publishes (`config/brama.toml`,
/// `[simulator.central] listen`).
pub const EMBEDDED_CENTRAL_URL: &str = "http://127.0.0.1:8091/internalconf";

pub fn init(a: InitArgs) -> ExitCode {
    let anchor = a.anchor.clone().unwrap_or_else(|| {
        a.globalconf
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("anchor.xml")
    });
    let topology = default_topology();
    let spec = crate::pki::default_spec();
    let result = crate::pki::generate(&spec)
        .map_err(|e| e.to_string())
        .and_then(|pki| {
            pki.write_dir(&a.out).map_err(|e| e.to_string())?;
            topology
                .write_globalconf(&a.globalconf, &pki)
                .map_err(|e| format!("{}: {e}", a.globalconf.display()))?;
            let publisher = crate::test_publish::Publisher::from_dir(
                &a.globalconf,
                &pki.central.cert_pem,
                &pki.central.key_pem,
            )?;
            std::fs::write(&anchor, publisher.anchor_xml(EMBEDDED_CENTRAL_URL))
                .map_err(|e| format!("{}: {e}", anchor.display()))?;
            Ok(pki)
        });
    match result {
        Ok(pki) => {
            println!(
                "wrote the test PKI to {} ({} auth, {} signing certificates), the global configuration to {} and its anchor to {}",
                a.out.display(),
                pki.auth.len(),
                pki.sign.len(),
                a.globalconf.display(),
                anchor.display()
            );
            println!("rebuild (cargo build) so the embedded default picks them up");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
