//! Spooling large bodies: a REST body is digested as it arrives and kept in memory up to a
//! threshold, past it in an unlinked temporary file, so a tens-of-megabytes body costs the same
//! memory as a small one. A spooled body can then be streamed out (to the peer, the service or
//! the information system) any number of times.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::io::AsyncWriteExt;

use crate::body::{Body, BudgetExhausted, Intake, IntakeError, MemoryBudget, Paced, Reservation};
use brama_sign::digest::{DigestAlgorithm, Hasher};

/// Limits of spooling.
#[derive(Clone, Debug)]
pub struct SpoolConfig {
    /// Bodies up to this many bytes stay in memory.
    pub memory: usize,
    /// Larger bodies are refused.
    pub max: u64,
    pub dir: PathBuf,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            memory: 1024 * 1024,
            max: 256 * 1024 * 1024,
            dir: std::env::temp_dir(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("body is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("spooling the body to disk failed: {0}")]
    Io(#[from] std::io::Error),
    /// Receiving a request body failed (declared too large, too slow, out of memory budget).
    #[error("{0:?}")]
    Intake(IntakeError),
}

impl From<BudgetExhausted> for SpoolError {
    fn from(e: BudgetExhausted) -> Self {
        SpoolError::Intake(IntakeError::Budget(e))
    }
}

const FILE_CHUNK: usize = 256 * 1024;

/// A body being received.
pub struct Spool {
    cfg: SpoolConfig,
    hasher: Hasher,
    len: u64,
    mem: BytesMut,
    file: Option<tokio::io::BufWriter<tokio::fs::File>>,
    /// Where the memory part is reserved, when it is counted.
    budget: Option<Arc<MemoryBudget>>,
    reservation: Reservation,
}

impl Spool {
    pub fn new(cfg: &SpoolConfig, alg: DigestAlgorithm) -> Spool {
        Spool {
            cfg: cfg.clone(),
            hasher: alg.hasher(),
            len: 0,
            mem: BytesMut::new(),
            file: None,
            budget: None,
            reservation: Reservation::default(),
        }
    }

    /// Counts the memory part in `budget` (what crosses to disk no longer counts).
    pub(crate) fn with_budget(mut self, budget: &Arc<MemoryBudget>) -> Spool {
        self.budget = Some(budget.clone());
        self
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        self.len += chunk.len() as u64;
        if self.len > self.cfg.max {
            return Err(SpoolError::TooLarge(self.cfg.max));
        }
        self.hasher.update(chunk);
        if self.file.is_none() && self.len as usize > self.cfg.memory {
            let std_file = tempfile::tempfile_in(&self.cfg.dir)?;
            let mut f = tokio::io::BufWriter::with_capacity(
                FILE_CHUNK,
                tokio::fs::File::from_std(std_file),
            );
            f.write_all(&self.mem).await?;
            self.mem = BytesMut::new();
            self.reservation = Reservation::default();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write_all(chunk).await?,
            None => {
                if let Some(b) = &self.budget {
                    b.grow(&mut self.reservation, self.len as usize).await?;
                }
                self.mem.extend_from_slice(chunk)
            }
        }
        Ok(())
    }

    /// Receives a request body within `intake`'s limits (a declared length over the limit is
    /// refused before reading), its memory part counted in the intake's budget.
    pub async fn read_request<B>(mut self, body: B, intake: &Intake) -> Result<Spooled, SpoolError>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        self.budget = Some(intake.budget.clone());
        let mut paced = Paced::new(body, intake);
        if let Some(declared) = paced.declared().filter(|&d| d > self.cfg.max) {
            return Err(SpoolError::Intake(IntakeError::Declared {
                declared,
                max: self.cfg.max,
            }));
        }
        while let Some(data) = paced.next().await.map_err(SpoolError::Intake)? {
            self.write(&data).await?;
        }
        self.finish().await
    }

    /// Reads a whole HTTP body into the spool.
    pub async fn read_body<B>(mut self, mut body: B) -> Result<Spooled, SpoolError>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                SpoolError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    e.to_string(),
                ))
            })?;
            if let Ok(data) = frame.into_data() {
                self.write(&data).await?;
            }
        }
        self.finish().await
    }

    pub async fn finish(self) -> Result<Spooled, SpoolError> {
        let data = match self.file {
            None => Data::Memory {
                bytes: self.mem.freeze(),
                _held: Arc::new(self.reservation),
            },
            Some(mut f) => {
                f.flush().await?;
                Data::File(Arc::new(f.into_inner().into_std().await))
            }
        };
        Ok(Spooled {
            len: self.len,
            digest: self.hasher.finish(),
            data,
        })
    }
}

#[derive(Clone, Debug)]
enum Data {
    /// In memory, with its share of the memory budget, given back with the last copy.
    Memory {
        bytes: Bytes,
        _held: Arc<Reservation>,
    },
    File(Arc<std::fs::File>),
}

/// A received body, its length and digest.
#[derive(Clone, Debug)]
pub struct Spooled {
    pub len: u64,
    pub digest: Vec<u8>,
    data: Data,
}

impl Spooled {
    /// A body already in memory (digested here).
    pub fn from_bytes(bytes: Bytes, alg: DigestAlgorithm) -> Spooled {
        Spooled {
            len: bytes.len() as u64,
            digest: alg.digest(&bytes),
            data: Data::Memory {
                bytes,
                _held: Arc::default(),
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the body went to disk.
    pub fn on_disk(&self) -> bool {
        matches!(self.data, Data::File(_))
    }

    /// The whole body in memory (for small answers a caller parses, e.g. JSON).
    pub async fn to_bytes(&self) -> std::io::Result<Bytes> {
        match &self.data {
            Data::Memory { bytes: b, .. } => Ok(b.clone()),
            Data::File(_) => {
                let mut out = BytesMut::with_capacity(self.len as usize);
                let mut body = self.body();
                while let Some(f) = body.frame().await {
                    if let Ok(d) = f?.into_data() {
                        out.extend_from_slice(&d);
                    }
                }
                Ok(out.freeze())
            }
        }
    }

    /// A blocking reader over the body (call it off the runtime): a file spooled to disk is read
    /// in place, never whole into memory.
    pub fn reader(&self) -> Box<dyn std::io::Read + Send> {
        match &self.data {
            Data::Memory { bytes: b, .. } => Box::new(std::io::Cursor::new(b.clone())),
            Data::File(f) => Box::new(FileReader {
                file: f.clone(),
                offset: 0,
                len: self.len,
            }),
        }
    }

    /// The body as a stream (read from the file in chunks when spooled to disk).
    pub fn body(&self) -> Body {
        match &self.data {
            Data::Memory { bytes: b, .. } => crate::body::full(b.clone()),
            Data::File(f) => file_body(f.clone(), self.len),
        }
    }
}

/// Reads a spool file by position, so copies of a body read it independently.
struct FileReader {
    file: Arc<std::fs::File>,
    offset: u64,
    len: u64,
}

impl std::io::Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let left = self.len.saturating_sub(self.offset);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

fn file_body(file: Arc<std::fs::File>, len: u64) -> Body {
    let stream = futures_util::stream::unfold(0u64, move |offset| {
        let file = file.clone();
        async move {
            if offset >= len {
                return None;
            }
            let want = FILE_CHUNK.min((len - offset) as usize);
            let read = tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; want];
                let mut got = 0;
                while got < want {
                    let n = file.read_at(&mut buf[got..], offset + got as u64)?;
                    if n == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "spool file is shorter than written",
                        ));
                    }
                    got += n;
                }
                Ok(Bytes::from(buf))
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            match read {
                Ok(b) => {
                    let next = offset + b.len() as u64;
                    Some((Ok(Frame::data(b)), next))
                }
                // End the stream after an error.
                Err(e) => Some((Err(e), len)),
            }
        }
    });
    StreamBody::new(stream).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_bodies_stay_in_memory_large_ones_go_to_disk() {
        let cfg = SpoolConfig {
            memory: 1000,
            max: 10_000_000,
            dir: std::env::temp_dir(),
        };
        let alg = DigestAlgorithm::Sha512;
        let mut s = Spool::new(&cfg, alg);
        s.write(b"hello").await.unwrap();
        let small = s.finish().await.unwrap();
        assert!(!small.on_disk());
        assert_eq!(small.digest, alg.digest(b"hello"));

        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut s = Spool::new(&cfg, alg);
        for c in data.chunks(7000) {
            s.write(c).await.unwrap();
        }
        let big = s.finish().await.unwrap();
        assert!(big.on_disk());
        assert_eq!(big.len, data.len() as u64);
        assert_eq!(big.digest, alg.digest(&data));
        // Twice, to show it can be streamed again.
        for _ in 0..2 {
            assert_eq!(&big.to_bytes().await.unwrap()[..], &data[..]);
        }

        let mut s = Spool::new(&cfg, alg);
        assert!(matches!(
            s.write(&vec![0u8; 10_000_001]).await,
            Err(SpoolError::TooLarge(_))
        ));
    }
}
