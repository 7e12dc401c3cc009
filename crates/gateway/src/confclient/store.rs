//! Downloaded configurations on disk: each in a generation directory of its own, written and
//! synced whole, checked by reading it back, then put in force by renaming the `current`
//! symbolic link over the previous one (one atomic step: a crash leaves the old or the new,
//! never a mix). The previous generation is kept; older ones are removed.

use std::path::{Path, PathBuf};

use super::{Downloaded, CURRENT};
use brama_xroad::globalconf::GlobalConf;

/// The file in a generation holding its `Expire-date` (RFC 3339), read at start.
const EXPIRE_FILE: &str = "expire-date";
/// The SHA-256 (hex) of its files, to tell the next download's change.
const DIGEST_FILE: &str = "digest";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(io(path))?;
    f.write_all(data).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

fn sync_dir(path: &Path) -> Result<(), String> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

/// Stores `d` under `dir` and puts it in force; returns the configuration as stored.
pub fn store(dir: &Path, d: &Downloaded) -> Result<GlobalConf, String> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let name = format!("gen-{millis}");
    let gen = dir.join(&name);
    let written = (|| {
        std::fs::create_dir_all(&gen).map_err(io(&gen))?;
        write_synced(&gen.join("instance-identifier"), d.instance.as_bytes())?;
        write_synced(&gen.join(EXPIRE_FILE), d.expire_date.as_bytes())?;
        write_synced(&gen.join(DIGEST_FILE), hex::encode(d.digest).as_bytes())?;
        for (rel, bytes) in &d.files {
            let path = gen.join(rel);
            let parent = path.parent().unwrap_or(&gen).to_path_buf();
            std::fs::create_dir_all(&parent).map_err(io(&parent))?;
            write_synced(&path, bytes)?;
            // The sidecar X-Road's configuration client writes: the loader reads the version.
            let meta = serde_json::json!({
                "configurationVersion": d.version.to_string(),
                "expirationDate": d.expire_date,
                "downloadedFrom": d.source,
            });
            let mut sidecar = path.clone().into_os_string();
            sidecar.push(".metadata");
            write_synced(Path::new(&sidecar), meta.to_string().as_bytes())?;
            sync_dir(&parent)?;
        }
        sync_dir(&gen)?;
        GlobalConf::load_dir(&gen)
            .map_err(|e| format!("the downloaded configuration does not read: {e}"))
    })();
    let gc = match written {
        Ok(gc) => gc,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&gen);
            return Err(e);
        }
    };
    let tmp = dir.join(format!(".{CURRENT}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&name, &tmp).map_err(io(&tmp))?;
    std::fs::rename(&tmp, dir.join(CURRENT)).map_err(io(dir))?;
    sync_dir(dir)?;
    prune(dir, &name);
    Ok(gc)
}

/// Removes generations other than `keep` and the one before it.
fn prune(dir: &Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut gens: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("gen-") && n.as_str() != keep)
        .collect();
    gens.sort_by_key(|n| n[4..].parse::<i128>().unwrap_or(0));
    gens.pop(); // the previous generation
    for g in gens {
        let _ = std::fs::remove_dir_all(dir.join(g));
    }
}

/// The configuration in force under `dir`.
pub fn current(dir: &Path) -> PathBuf {
    dir.join(CURRENT)
}

/// The `Expire-date` of the configuration in force (Unix seconds), if one was downloaded.
pub fn expiry(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(current(dir).join(EXPIRE_FILE)).ok()?;
    time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Moves the expiry of the generation in force (a new directory listing the same files).
pub fn extend(dir: &Path, expire_date: &str) -> Result<(), String> {
    let gen = current(dir);
    let tmp = gen.join(format!(".{EXPIRE_FILE}.tmp"));
    write_synced(&tmp, expire_date.as_bytes())?;
    std::fs::rename(&tmp, gen.join(EXPIRE_FILE)).map_err(io(&gen))?;
    sync_dir(&gen)
}

/// The digest of the configuration in force, if one was downloaded.
pub fn digest(dir: &Path) -> Option<String> {
    std::fs::read_to_string(current(dir).join(DIGEST_FILE))
        .ok()
        .map(|d| d.trim().to_string())
}

/// The verification certificates the stored configuration's own shared parameters list
/// (`source/internalVerificationCert`): a central server that rotates its signing key announces
/// the new one there before it signs with it.
pub fn rotated_certs(gc: &GlobalConf) -> Vec<Vec<u8>> {
    gc.own_shared()
        .map(|s| {
            s.sources
                .iter()
                .flat_map(|src| src.internal_verification_certs.iter().cloned())
                .collect()
        })
        .unwrap_or_default()
}
