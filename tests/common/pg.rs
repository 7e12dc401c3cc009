//! A throwaway PostgreSQL cluster for a test (`scripts/pg-throwaway.sh`): on loopback, in a
//! temporary directory, stopped and deleted when dropped.

use std::path::PathBuf;
use std::process::Command;

pub struct Pg {
    dir: tempfile::TempDir,
    pub url: String,
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-throwaway.sh");

impl Pg {
    /// `None` (the caller skips, saying so) only where PostgreSQL is not installed; the test
    /// script installs it, so under `CI` its absence fails instead.
    pub fn start() -> Option<Pg> {
        Pg::start_with(None)
    }

    /// [`Pg::start`] serving TLS too, with `server.crt` and `server.key` of `tls_dir`.
    pub fn start_tls(tls_dir: &std::path::Path) -> Option<Pg> {
        Pg::start_with(Some(tls_dir))
    }

    fn start_with(tls_dir: Option<&std::path::Path>) -> Option<Pg> {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("bash");
        cmd.args([SCRIPT, "start"]).arg(dir.path());
        if let Some(tls) = tls_dir {
            cmd.env("PG_TLS_DIR", tls);
        }
        let out = cmd.output().unwrap();
        if out.status.code() == Some(3) && std::env::var_os("CI").is_none() {
            eprintln!(
                "SKIPPED: PostgreSQL is not installed (bash scripts/test.sh installs it): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        assert!(
            out.status.success(),
            "pg-throwaway start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Some(Pg { dir, url })
    }

    fn run(&self, cmd: &str) {
        let out = Command::new("bash")
            .args([SCRIPT, cmd])
            .arg(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg-throwaway {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the database, keeping its data: an outage.
    pub fn halt(&self) {
        self.run("halt");
    }

    /// Starts it again after [`Pg::halt`], on the same port.
    pub fn resume(&self) {
        self.run("resume");
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .args([SCRIPT, "stop"])
            .arg(self.dir.path())
            .output();
    }
}

impl Pg {
    /// The server's main process (its backends are its children), from `postmaster.pid`.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let home = std::fs::read_to_string(self.dir.path().join("cluster")).ok()?;
        let pid =
            std::fs::read_to_string(PathBuf::from(home.trim()).join("data/postmaster.pid")).ok()?;
        pid.lines().next()?.trim().parse().ok()
    }
}
