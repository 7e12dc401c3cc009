//! SoftHSM2 tokens for tests and benches, made with the repository's own script.

use std::path::{Path, PathBuf};
use std::process::Command;

// Distinctive, so a test can tell it never appears in output (random ids contain "1234").
pub const PIN: &str = "pin-never-shown";

/// Creates the token `brama` (PIN [`PIN`]) in `dir/hsm`, importing each (PKCS#8 key file,
/// label, hex id), and writes the PIN to `dir/pin`. Returns the `softhsm2.conf` path.
pub fn init_token(dir: &Path, keys: &[(&Path, &str, &str)]) -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/softhsm-init.sh");
    let hsm = dir.join("hsm");
    let run = |extra: &[&std::ffi::OsStr]| {
        let out = Command::new("bash")
            .arg(script)
            .arg(&hsm)
            .args(["brama", PIN, "123456"])
            .args(extra)
            .output()
            .expect("runs scripts/softhsm-init.sh (needs softhsm2: apt-get install softhsm2)");
        assert!(
            out.status.success(),
            "softhsm-init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    if keys.is_empty() {
        run(&[]);
    }
    for (key, label, id) in keys {
        run(&[
            "--import".as_ref(),
            key.as_os_str(),
            "--key-label".as_ref(),
            label.as_ref(),
            "--id".as_ref(),
            id.as_ref(),
        ]);
    }
    std::fs::write(dir.join("pin"), format!("{PIN}\n")).unwrap();
    hsm.join("softhsm2.conf")
}

/// The `[[signer.tokens]]` entry of that token (`pin_file = "pin"`, relative to `dir`).
pub fn token_toml(conf: &Path) -> String {
    format!(
        r#"
[[signer.tokens]]
name = "hsm"
kind = "pkcs11"
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "brama"
pin_file = "pin"
env = {{ SOFTHSM2_CONF = "{}" }}
"#,
        conf.display()
    )
}
