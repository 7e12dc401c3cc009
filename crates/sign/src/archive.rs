//! Message-log archives (reference §6.5): zip files of ASiC-E containers with a `linkinginfo`
//! entry whose digests chain every container, and every archive to the one before it, so a
//! changed, removed or reordered file is detected.
//!
//! `linkinginfo` is UTF-8 text. Its first line is `<previous archive's last digest|-> <previous
//! archive's file name|-> SHA-512`; then one line per container, `<d_i> <entry name>`, where
//! `d_i = hex(H(d_{i-1} ‖ hex(H(container_i))))` over the hex strings as UTF-8 and `d_0` is the
//! previous archive's last digest (empty for the first archive).

use std::io::{Read, Write};

use zip::write::SimpleFileOptions;

use crate::digest::DigestAlgorithm;

pub const LINKING_INFO: &str = "linkinginfo";
/// The name the first line gives the digest (X-Road's `message-log.hash-algo-id`).
const ALG_NAME: &str = "SHA-512";
const ALG: DigestAlgorithm = DigestAlgorithm::Sha512;
/// What a hostile archive may make the reader inflate.
const MAX_ENTRIES: usize = 100_000;
const MAX_TOTAL: u64 = 4 * 1024 * 1024 * 1024;

/// Where the chain stands: the last archive's last digest and file name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Link {
    pub digest: String,
    pub file_name: String,
}

/// The next linking digest after `previous` for a container's bytes.
pub fn next_digest(previous: &str, container: &[u8]) -> String {
    let combined = format!("{previous}{}", hex::encode(ALG.digest(container)));
    hex::encode(ALG.digest(combined.as_bytes()))
}

/// Writes an archive of `containers` (entry name, bytes) chained to `previous`; returns the zip
/// and the link the next archive continues from (its `file_name` is left for the caller, who
/// names the file from the last digest).
pub fn write<N: AsRef<str>, B: AsRef<[u8]>>(
    previous: &Link,
    containers: &[(N, B)],
) -> (Vec<u8>, Link) {
    let blank = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let mut info = format!(
        "{} {} {ALG_NAME}\n",
        blank(&previous.digest),
        blank(&previous.file_name)
    );
    let mut last = previous.digest.clone();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // Containers are zips already: stored, not deflated again.
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in containers {
        let (name, bytes) = (name.as_ref(), bytes.as_ref());
        last = next_digest(&last, bytes);
        info.push_str(&format!("{last} {name}\n"));
        zip.start_file(name, stored).expect("in-memory zip");
        zip.write_all(bytes).expect("in-memory zip");
    }
    zip.start_file(LINKING_INFO, SimpleFileOptions::default())
        .expect("in-memory zip");
    zip.write_all(info.as_bytes()).expect("in-memory zip");
    let bytes = zip.finish().expect("in-memory zip").into_inner();
    (
        bytes,
        Link {
            digest: last,
            file_name: String::new(),
        },
    )
}

/// An archive whose chain checks: its containers in order, and its links.
#[derive(Debug)]
pub struct Checked {
    /// The link the archive says it continues (`-` read as empty).
    pub previous: Link,
    /// Its last digest.
    pub last: String,
    pub containers: Vec<(String, Vec<u8>)>,
}

/// Reads an archive and checks its `linkinginfo`: every container listed once, in order, with
/// the digest its bytes give, and nothing else in the zip.
pub fn check(bytes: &[u8]) -> Result<Checked, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a zip archive: {e}"))?;
    if zip.len() > MAX_ENTRIES {
        return Err("too many entries".into());
    }
    let mut total = 0u64;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(|e| e.to_string())?;
        let name = f.name().to_string();
        let mut data = Vec::new();
        (&mut f)
            .take(MAX_TOTAL - total + 1)
            .read_to_end(&mut data)
            .map_err(|e| format!("{name}: {e}"))?;
        total += data.len() as u64;
        if total > MAX_TOTAL {
            return Err("the archive is too large".into());
        }
        entries.push((name, data));
    }
    let info_at = entries
        .iter()
        .position(|(n, _)| n == LINKING_INFO)
        .ok_or("no linkinginfo entry")?;
    let (_, info) = entries.remove(info_at);
    let info = String::from_utf8(info).map_err(|_| "linkinginfo is not UTF-8")?;
    let mut lines = info.lines();
    let first: Vec<&str> = lines
        .next()
        .ok_or("linkinginfo is empty")?
        .split(' ')
        .collect();
    let [prev_digest, prev_name, alg] = first.as_slice() else {
        return Err("linkinginfo's first line is not '<digest> <file> <algorithm>'".into());
    };
    if !matches!(*alg, "SHA-512" | "SHA512") {
        return Err(format!("linkinginfo names the digest '{alg}', not SHA-512"));
    }
    let unblank = |s: &str| {
        if s == "-" {
            String::new()
        } else {
            s.to_string()
        }
    };
    let previous = Link {
        digest: unblank(prev_digest),
        file_name: unblank(prev_name),
    };
    let mut last = previous.digest.clone();
    let mut containers = Vec::with_capacity(entries.len());
    let mut remaining = entries;
    for (n, line) in lines.enumerate() {
        let (digest, name) = line
            .split_once(' ')
            .ok_or_else(|| format!("linkinginfo line {} is not '<digest> <name>'", n + 2))?;
        let at = remaining
            .iter()
            .position(|(e, _)| e == name)
            .ok_or_else(|| format!("'{name}' is listed in linkinginfo but not in the archive"))?;
        let (name, bytes) = remaining.remove(at);
        last = next_digest(&last, &bytes);
        if last != digest {
            return Err(format!(
                "'{name}' does not give the digest linkinginfo lists (changed, or out of order)"
            ));
        }
        containers.push((name, bytes));
    }
    if let Some((name, _)) = remaining.first() {
        return Err(format!("'{name}' is in the archive but not in linkinginfo"));
    }
    Ok(Checked {
        previous,
        last,
        containers,
    })
}

/// The file name X-Road gives an archive: `mlog-<first>-<last>-<16 hex of the last digest>.zip`
/// with the first and last records' times as `yyyyMMddHHmmss` (UTC).
pub fn file_name(first: i64, last: i64, last_digest: &str) -> String {
    use brama_xroad::time::compact;
    let short: String = last_digest.chars().take(16).collect();
    format!("mlog-{}-{}-{short}.zip", compact(first), compact(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn containers(n: usize, tag: &str) -> Vec<(String, Vec<u8>)> {
        (0..n)
            .map(|i| {
                (
                    format!("{tag}-{i}.asice"),
                    format!("container {tag} {i}").into_bytes(),
                )
            })
            .collect()
    }

    /// Archives chain across files; a changed, removed, added or reordered container is found.
    #[test]
    fn archives_chain_and_tampering_is_found() {
        let (first, mut link) = write(&Link::default(), &containers(3, "a"));
        link.file_name = file_name(0, 1, &link.digest);
        let (second, _) = write(&link, &containers(2, "b"));
        let a = check(&first).unwrap();
        assert_eq!(a.previous, Link::default());
        assert_eq!(a.containers.len(), 3);
        let b = check(&second).unwrap();
        assert_eq!(b.previous.digest, a.last);
        assert_eq!(b.previous.file_name, link.file_name);
        // The chain by hand: d1 = H(hex(H(c1))) for the first archive's first container.
        let c1 = b"container a 0";
        assert_eq!(
            next_digest("", c1),
            hex::encode(ALG.digest(hex::encode(ALG.digest(c1)).as_bytes()))
        );

        let mut changed = containers(3, "a");
        changed[1].1.push(b'!');
        let (bytes, _) = write(&Link::default(), &changed);
        // Swap in the original linkinginfo: the changed container no longer matches it.
        let info = |z: &[u8]| {
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(z)).unwrap();
            let mut s = String::new();
            zip.by_name(LINKING_INFO)
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            s
        };
        let forged = rezip(&changed, &info(&first));
        assert!(check(&forged)
            .unwrap_err()
            .contains("does not give the digest"));
        assert!(check(&bytes).is_ok(), "consistent by itself");
        let mut removed = containers(3, "a");
        removed.remove(1);
        assert!(check(&rezip(&removed, &info(&first)))
            .unwrap_err()
            .contains("not in the archive"));
        let mut reordered = containers(3, "a");
        reordered.swap(0, 2);
        // Entry order in the zip does not matter; linkinginfo's order does.
        assert!(check(&rezip(&reordered, &info(&first))).is_ok());
        let mut extra = containers(3, "a");
        extra.push(("x.asice".into(), b"x".to_vec()));
        assert!(check(&rezip(&extra, &info(&first)))
            .unwrap_err()
            .contains("not in linkinginfo"));
        assert_eq!(
            file_name(1_765_000_000, 1_765_000_061, &"ab".repeat(32)),
            "mlog-20251206054640-20251206054741-abababababababab.zip"
        );
    }

    fn rezip(containers: &[(String, Vec<u8>)], info: &str) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (n, b) in containers {
            zip.start_file(n.as_str(), SimpleFileOptions::default())
                .unwrap();
            zip.write_all(b).unwrap();
        }
        zip.start_file(LINKING_INFO, SimpleFileOptions::default())
            .unwrap();
        zip.write_all(info.as_bytes()).unwrap();
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn hostile_archives_are_refused() {
        for bytes in [&b""[..], b"PK\x03\x04", b"not a zip"] {
            assert!(check(bytes).is_err());
        }
        let no_info = {
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            zip.start_file("a", SimpleFileOptions::default()).unwrap();
            zip.finish().unwrap().into_inner()
        };
        assert!(check(&no_info).unwrap_err().contains("no linkinginfo"));
        assert!(check(&rezip(&[], "x y\n")).is_err());
        assert!(check(&rezip(&[], "- - MD5\n")).is_err());
    }
}
