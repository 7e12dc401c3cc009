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
}

pub fn init(a: InitArgs) -> ExitCode {
    let topology = default_topology();
    let spec = crate::pki::default_spec();
    let result = crate::pki::generate(&spec)
        .map_err(|e| e.to_string())
        .and_then(|pki| {
            pki.write_dir(&a.out).map_err(|e| e.to_string())?;
            topology
                .write_globalconf(&a.globalconf, &pki)
                .map_err(|e| format!("{}: {e}", a.globalconf.display()))?;
            Ok(pki)
        });
    match result {
        Ok(pki) => {
            println!(
                "wrote the test PKI to {} ({} auth, {} signing certificates) and the global configuration to {}",
                a.out.display(),
                pki.auth.len(),
                pki.sign.len(),
                a.globalconf.display()
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
