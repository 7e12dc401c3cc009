//! `brama store check`: verifies the router's store offline (every page's checksum, every
//! record read), with the server stopped.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::ServerConf;
use crate::router::store::Embedded;

#[derive(Args)]
pub struct StoreCheckArgs {
    /// The store's directory; by default the configuration's `[router] store_dir`.
    pub dir: Option<PathBuf>,
    /// The server's configuration; the embedded default when absent.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

pub fn check(a: StoreCheckArgs) -> ExitCode {
    let dir = match a.dir {
        Some(d) => d,
        None => match ServerConf::load(a.config.as_deref()) {
            Ok(conf) => match conf.router {
                Some(rc) if rc.shared_store.is_some() => {
                    eprintln!(
                        "brama store check: the store is PostgreSQL ([store] url); the database \
                         checks its own pages (initdb --data-checksums) and pg_amcheck verifies them"
                    );
                    return ExitCode::from(2);
                }
                Some(rc) => rc.store_dir,
                None => {
                    eprintln!("brama store check: the configuration has no enabled [router]");
                    return ExitCode::from(2);
                }
            },
            Err(e) => {
                eprintln!("brama store check: {e}");
                return ExitCode::from(2);
            }
        },
    };
    match Embedded::check(&dir) {
        Ok(summary) => {
            println!("ok: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("brama store check: {e}");
            ExitCode::FAILURE
        }
    }
}
