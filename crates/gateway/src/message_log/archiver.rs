//! Archiving the message log (reference §6.5): every interval, the time-stamped containers (loose,
//! and the records of each time-stamping round) are written into zip archives in `[log] archive_dir`, each with a `linkinginfo` chaining its
//! containers and the archive before it (`brama_sign::archive`), rotated at
//! `archive_max_file_bytes`, named as X-Road names them. An archive is written whole and synced
//! before its containers' files move to `archived/` (still served by `GET /asic`), where they are
//! deleted `keep_archived_s` later. `archive_command`, when set, runs after each run that wrote
//! archives, with `BRAMA_ARCHIVES` naming them. In a shared database the records are archived
//! from there by one node at a time (`super::shared`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{queue, stamps, write_synced};
use crate::proxy::Gateway;
use brama_sign::archive::{self, Link};
use brama_sign::{asic, tsp};

/// Where archived containers wait for their retention to end.
pub(crate) const ARCHIVED: &str = "archived";
/// The chain's end, kept beside the archives: `<last digest> <last archive file name>`.
const LAST: &str = ".linking";

#[derive(Clone, Debug)]
pub struct ArchiveSettings {
    pub dir: PathBuf,
    pub interval: Duration,
    pub max_file_bytes: u64,
    pub command: Option<String>,
    pub keep_archived: Duration,
}

/// Runs until `stop`: an archiving run every interval, then the retention clean-up.
pub async fn run(gw: Arc<Gateway>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(log) = gw.message_log.as_ref() else {
        return;
    };
    let Some(settings) = log.archive.clone() else {
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(settings.interval) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let done = match &log.shared {
            Some(db) => db.archive(&settings).await,
            None => {
                let dir = log.dir.clone();
                let s = settings.clone();
                tokio::task::spawn_blocking(move || {
                    let written = archive_once(&dir, &s)?;
                    clean_archived(&dir, s.keep_archived);
                    Ok::<_, String>(written)
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
            }
        };
        match done {
            Ok(written) if !written.is_empty() => {
                tracing::info!(archives = written.len(), "message log archived");
                if let Some(cmd) = &settings.command {
                    run_command(cmd, &settings.dir, &written).await;
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "archiving the message log failed"),
        }
    }
}

/// Archives every time-stamped container of `log_dir`; returns the archives written.
pub fn archive_once(log_dir: &Path, s: &ArchiveSettings) -> Result<Vec<PathBuf>, String> {
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::create_dir_all(&s.dir).map_err(|e| io(&s.dir, e))?;
    let archived = log_dir.join(ARCHIVED);
    std::fs::create_dir_all(&archived).map_err(|e| io(&archived, e))?;
    let stamped = stamped_containers(log_dir).map_err(|e| io(log_dir, e))?;
    if stamped.is_empty() {
        return Ok(Vec::new());
    }
    let mut link = read_link(&s.dir);
    let mut written = Vec::new();
    let mut chunk: Vec<Unit> = Vec::new();
    let mut size = 0u64;
    let mut flush = |chunk: &mut Vec<Unit>, link: &mut Link| -> Result<(), String> {
        if chunk.is_empty() {
            return Ok(());
        }
        let entries: Vec<(&str, &[u8])> = chunk
            .iter()
            .flat_map(|u| &u.containers)
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
            .collect();
        let (bytes, mut next) = archive::write(link, &entries);
        let first = chunk.iter().map(|c| c.at).min().unwrap_or_default();
        let last = chunk.iter().map(|c| c.at).max().unwrap_or_default();
        let name = archive::file_name(first, last, &next.digest);
        write_synced(&s.dir, &name, &bytes).map_err(|e| io(&s.dir, e))?;
        next.file_name = name.clone();
        write_synced(&s.dir, LAST, format!("{} {}", next.digest, name).as_bytes())
            .map_err(|e| io(&s.dir, e))?;
        sync_dir(&s.dir)?;
        for c in chunk.drain(..) {
            let to = archived.join(c.path.file_name().unwrap_or_default());
            std::fs::rename(&c.path, &to).map_err(|e| io(&c.path, e))?;
            // Retention counts from archiving.
            if let Ok(f) = std::fs::File::options().write(true).open(&to) {
                let _ = f.set_modified(SystemTime::now());
            }
        }
        sync_dir(&archived)?;
        sync_dir(log_dir)?;
        *link = next;
        written.push(s.dir.join(name));
        Ok(())
    };
    for c in stamped {
        // A round stays whole in one archive: its file moves to `archived/` as one.
        let len: u64 = c.containers.iter().map(|(_, b)| b.len() as u64).sum();
        if !chunk.is_empty() && size + len > s.max_file_bytes {
            flush(&mut chunk, &mut link)?;
            size = 0;
        }
        size += len;
        chunk.push(c);
    }
    flush(&mut chunk, &mut link)?;
    Ok(written)
}

/// A stamped container's file, or a round's file (its records).
struct Unit {
    path: PathBuf,
    /// Entry name, bytes.
    containers: Vec<(String, Vec<u8>)>,
    /// The time-stamp's time (Unix seconds).
    at: i64,
}

/// The time-stamped containers directly in `dir`, loose and of rounds, by time-stamp then file
/// name.
fn stamped_containers(dir: &Path) -> std::io::Result<Vec<Unit>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !path.is_file() {
            continue;
        }
        let (containers, at) = if stamps::segment_of(&name).is_some() {
            // A round: its records put together from their segment, its token's time.
            let mut containers = Vec::new();
            let round = stamps::read(&path).and_then(|round| {
                round.each_container(dir, &|_| true, &mut |name, bytes| {
                    containers.push((name.to_string(), bytes));
                    Ok(())
                })?;
                Ok(round)
            });
            match round {
                Ok(round) => {
                    let at = tsp::parse_token(&round.token).ok().map(|t| t.gen_time);
                    (containers, at)
                }
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "a message log round does not read; it is left where it is");
                    continue;
                }
            }
        } else if name.ends_with(".asice") {
            let bytes = std::fs::read(&path)?;
            let at = asic::read(&bytes).ok().and_then(|c| {
                let t = tsp::parse_token(c.timestamp.as_deref()?).ok()?;
                Some(t.gen_time)
            });
            (vec![(name, bytes)], at)
        } else {
            continue;
        };
        let Some(at) = at else {
            continue;
        };
        out.push(Unit {
            path,
            containers,
            at,
        });
    }
    out.sort_by(|a, b| (a.at, &a.path).cmp(&(b.at, &b.path)));
    Ok(out)
}

/// The end of the chain the last run left (none before the first archive).
fn read_link(dir: &Path) -> Link {
    std::fs::read_to_string(dir.join(LAST))
        .ok()
        .and_then(|t| {
            let (digest, file_name) = t.trim().split_once(' ')?;
            Some(Link {
                digest: digest.to_string(),
                file_name: file_name.to_string(),
            })
        })
        .unwrap_or_default()
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Deletes archived containers and rounds older than `keep`, then the stamped segments no round
/// reads from any more.
fn clean_archived(log_dir: &Path, keep: Duration) {
    delete_old(&log_dir.join(ARCHIVED), keep);
    let mut used = std::collections::HashSet::new();
    for dir in [log_dir.to_path_buf(), log_dir.join(ARCHIVED)] {
        for path in stamps::files_in(&dir).unwrap_or_default() {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            used.extend(stamps::segment_of(&name));
        }
    }
    if let Err(e) = queue::delete_unused(log_dir, &|seq| used.contains(&seq)) {
        tracing::error!(dir = %log_dir.display(), error = %e, "deleting archived segments failed");
    }
}

fn delete_old(dir: &Path, keep: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > keep);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `archive_command` after a run: `sh -c`, with `BRAMA_ARCHIVE_DIR` and `BRAMA_ARCHIVES` (the
/// new archives' paths, space-separated).
async fn run_command(cmd: &str, dir: &Path, written: &[PathBuf]) {
    let list: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("BRAMA_ARCHIVE_DIR", dir)
        .env("BRAMA_ARCHIVES", list.join(" "))
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => tracing::error!(
            command = %cmd,
            status = %o.status,
            stderr = %String::from_utf8_lossy(&o.stderr),
            "archive_command failed"
        ),
        Err(e) => tracing::error!(command = %cmd, error = %e, "archive_command did not run"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stamped segment goes once the last round reading from it has passed its retention.
    #[tokio::test]
    async fn retention_deletes_a_segment_with_its_last_round() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue::Queue::open(dir.path(), &|c| Some(c.to_vec())).unwrap();
        q.append("a.asice", b"first", vec![1]).unwrap();
        q.commit().await.unwrap();
        q.roll(1).unwrap();
        let frames = q.frames();
        q.remove_first(1).unwrap();
        let records: Vec<stamps::Stamped> = frames
            .iter()
            .map(|f| stamps::Stamped {
                name: f.name.clone(),
                offset: f.offset,
                len: f.len,
                external: false,
                digest: f.digest.clone(),
            })
            .collect();
        let archived = dir.path().join(ARCHIVED);
        std::fs::create_dir_all(&archived).unwrap();
        let round = archived.join(stamps::file_name(0, 0));
        std::fs::write(&round, stamps::encode(b"token", &records).unwrap()).unwrap();
        let segments = || {
            let mut v: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".queue"))
                .collect();
            v.sort();
            v
        };
        clean_archived(dir.path(), Duration::from_secs(3600));
        assert_eq!(segments(), ["pending.0.queue", "pending.1.queue"]);
        let old = SystemTime::now() - Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(&round)
            .unwrap()
            .set_modified(old)
            .unwrap();
        clean_archived(dir.path(), Duration::from_secs(3600));
        assert!(!round.exists());
        assert_eq!(segments(), ["pending.1.queue"], "the live segment stays");
    }
}
