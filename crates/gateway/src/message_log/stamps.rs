//! What a time-stamping round writes: not its records again, which stay where they were first
//! written (the queue's segment, `pending.<n>.queue`, kept once stamped), but the token and where
//! each record is: `stamped-<segment>-<offset>.stamps`, one file per token, the records of one
//! segment. A record's container is put together when it is read ([`Round::each_container`]):
//! its bytes from the segment (the frame's checksum checked), the batch's result and the record's
//! own chain rebuilt from the digests kept here, and the token; the same bytes the container
//! would have had written whole. Writing every record a second time, stamped, cost the server
//! more than the rest of the message log.
//!
//! The file is `magic, token_len u32 LE, token, count u32 LE`, then per record `offset u64 LE,
//! len u32 LE, external u8, name_len u16 LE, name, digest_len u8, digest`, then `crc32 u32 LE`
//! of everything before it. A record streamed to a file of its own (`external`) is in the list
//! for its place in the tree only; its container was stamped in place.

use std::io::Read;
use std::path::{Path, PathBuf};

use brama_sign::{asic, hashchain};

use super::{queue, timestamper};

const MAGIC: &[u8] = b"brama-stamps 1\n";
const PREFIX: &str = "stamped-";
const SUFFIX: &str = ".stamps";
/// A round's file is at most this large (a token, and `timestamp_records_per_token` records of
/// about a hundred bytes each); a larger one is damage.
const MAX_FILE: u64 = 256 << 20;

/// One stamped record's place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamped {
    pub name: String,
    pub offset: u64,
    pub len: u32,
    pub external: bool,
    pub digest: Vec<u8>,
}

/// A round's file read back.
#[derive(Debug)]
pub struct Round {
    /// The segment holding its records.
    pub segment: u64,
    pub token: Vec<u8>,
    pub records: Vec<Stamped>,
}

/// The file name of the round whose first record is at `offset` of `segment`: a round repeated
/// after a crash writes the same file again.
pub(crate) fn file_name(segment: u64, offset: u64) -> String {
    format!("{PREFIX}{segment:010}-{offset:012}{SUFFIX}")
}

/// The segment a round's file names, if `name` is one.
pub fn segment_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (segment, offset) = rest.split_once('-')?;
    offset.parse::<u64>().ok()?;
    segment.parse().ok()
}

/// The file's bytes.
pub fn encode(token: &[u8], records: &[Stamped]) -> std::io::Result<Vec<u8>> {
    let too_long = || std::io::Error::other("a time-stamping round too large to record");
    let mut out = Vec::with_capacity(64 + token.len() + records.len() * 128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(
        &u32::try_from(token.len())
            .map_err(|_| too_long())?
            .to_le_bytes(),
    );
    out.extend_from_slice(token);
    out.extend_from_slice(
        &u32::try_from(records.len())
            .map_err(|_| too_long())?
            .to_le_bytes(),
    );
    for r in records {
        out.extend_from_slice(&r.offset.to_le_bytes());
        out.extend_from_slice(&r.len.to_le_bytes());
        out.push(u8::from(r.external));
        let name = u16::try_from(r.name.len()).map_err(|_| too_long())?;
        out.extend_from_slice(&name.to_le_bytes());
        out.extend_from_slice(r.name.as_bytes());
        out.push(u8::try_from(r.digest.len()).map_err(|_| too_long())?);
        out.extend_from_slice(&r.digest);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Reads a round's file; damage (a bad checksum, a cut file, a bad field) is an error.
pub fn read(path: &Path) -> std::io::Result<Round> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)?;
    parse(&name, &bytes).map_err(|why| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: damaged ({why})", path.display()),
        )
    })
}

/// A round's file `name` from its bytes: in time linear in them, any bytes refused rather than
/// trusted.
pub fn parse(name: &str, bytes: &[u8]) -> Result<Round, &'static str> {
    let segment = segment_of(name).ok_or("not a round's file name")?;
    if bytes.len() as u64 > MAX_FILE {
        return Err("too large");
    }
    let (body, crc) = bytes.split_last_chunk::<4>().ok_or("too short")?;
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return Err("a bad checksum");
    }
    let mut r = Cursor {
        bytes: body.strip_prefix(MAGIC).ok_or("not a round's file")?,
    };
    let cut = "cut short";
    let token_len = r.u32().ok_or(cut)? as usize;
    let token = r.take(token_len).ok_or(cut)?.to_vec();
    let count = r.u32().ok_or(cut)? as usize;
    // Each record takes at least 16 bytes: the count cannot make memory grow past the file.
    let mut records = Vec::with_capacity(count.min(body.len() / 16));
    for _ in 0..count {
        let offset = r.u64().ok_or(cut)?;
        let len = r.u32().ok_or(cut)?;
        let external = r.take(1).ok_or(cut)?[0] != 0;
        let name_len = r.u16().ok_or(cut)? as usize;
        let name = String::from_utf8_lossy(r.take(name_len).ok_or(cut)?).into_owned();
        let digest_len = r.take(1).ok_or(cut)?[0] as usize;
        let digest = r.take(digest_len).ok_or(cut)?.to_vec();
        records.push(Stamped {
            name,
            offset,
            len,
            external,
            digest,
        });
    }
    if !r.bytes.is_empty() || records.is_empty() {
        return Err("a bad record count");
    }
    Ok(Round {
        segment,
        token,
        records,
    })
}

struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

impl Round {
    /// The stamped containers of the records `keep` names (external ones excepted: they are
    /// files of their own), in order, each put together from `log_dir`'s segment.
    pub fn each_container(
        &self,
        log_dir: &Path,
        keep: &dyn Fn(&str) -> bool,
        each: &mut dyn FnMut(&str, Vec<u8>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let wanted: Vec<usize> = (0..self.records.len())
            .filter(|&i| !self.records[i].external && keep(&self.records[i].name))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let digests: Vec<Vec<u8>> = self.records.iter().map(|r| r.digest.clone()).collect();
        let tree = hashchain::timestamp_tree(timestamper::ALG, &digests);
        let segment = std::fs::File::open(queue::segment_path(log_dir, self.segment))?;
        for i in wanted {
            let r = &self.records[i];
            let bytes = queue::read_checked(&segment, r.offset, r.len, &r.name)?;
            let stamped = asic::with_timestamp(bytes, &tree.result, &tree.chain(i), &self.token)?;
            each(&r.name, stamped)?;
        }
        Ok(())
    }
}

/// The rounds' files in `dir`, by name (oldest first).
pub fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if segment_of(&e.file_name().to_string_lossy()).is_some() {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Every container a message log directory holds, oldest round first: the loose `.asice` files
/// and the stamped records of every round, in `log_dir` and in its `archived/` (for `brama
/// verify DIR` and for tests). `keep` filters by name before anything is read.
pub fn each_logged(
    log_dir: &Path,
    keep: &dyn Fn(&str) -> bool,
    each: &mut dyn FnMut(&str, Vec<u8>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    each_logged_in(log_dir, log_dir, keep, each)?;
    each_logged_in(
        log_dir,
        &log_dir.join(super::archiver::ARCHIVED),
        keep,
        each,
    )
}

/// [`each_logged`] for the containers of one directory, `log_dir` or its `archived/`.
pub fn each_logged_in(
    log_dir: &Path,
    dir: &Path,
    keep: &dyn Fn(&str) -> bool,
    each: &mut dyn FnMut(&str, Vec<u8>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut loose = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                let name = e?.file_name().to_string_lossy().into_owned();
                if name.ends_with(".asice") && keep(&name) {
                    loose.push(name);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    loose.sort();
    // A file moved to `archived/` since the listing is found there.
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    for name in loose {
        match std::fs::read(dir.join(&name)) {
            Ok(bytes) => each(&name, bytes)?,
            Err(e) if gone(&e) => {}
            Err(e) => return Err(e),
        }
    }
    for path in files_in(dir)? {
        match read(&path) {
            Ok(round) => round.each_container(log_dir, keep, each)?,
            Err(e) if gone(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_reads_back_as_written_and_damage_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<Stamped> = (0..5u8)
            .map(|i| Stamped {
                name: format!("q{i}-r-request.asice"),
                offset: 100 * u64::from(i),
                len: 90,
                external: i == 3,
                digest: vec![i; 64],
            })
            .collect();
        let path = dir.path().join(file_name(7, 0));
        std::fs::write(&path, encode(b"token", &records).unwrap()).unwrap();
        let round = read(&path).unwrap();
        assert_eq!((round.segment, &round.token[..]), (7, &b"token"[..]));
        assert_eq!(round.records, records);
        assert_eq!(files_in(dir.path()).unwrap(), std::slice::from_ref(&path));

        let good = std::fs::read(&path).unwrap();
        for at in [0, MAGIC.len() + 2, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            assert!(
                read(&path).unwrap_err().to_string().contains("damaged"),
                "byte {at}"
            );
        }
        std::fs::write(&path, &good[..good.len() - 9]).unwrap();
        assert!(read(&path).is_err());
        assert_eq!(
            segment_of("stamped-0000000007-000000000000.stamps"),
            Some(7)
        );
        assert_eq!(segment_of("stamped-x-1.stamps"), None);
    }
}
