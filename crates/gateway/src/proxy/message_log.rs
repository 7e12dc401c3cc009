//! The message log: every signed message the client proxy sends and every verified answer it
//! receives, kept as an ASiC-E container (reference §6.4) in a directory, so the signed record
//! of an exchange can be shown later and checked by any ASiC verifier. Off unless
//! `[log] messages_dir` is set. As in X-Road, a request that cannot be logged is not sent.

use std::path::PathBuf;

use brama_sign::asic::{self, Container};
use brama_sign::SignatureParts;
use brama_transport::spool::Spooled;
use brama_xroad::error::{ErrorCode, Fault, Prefix};

pub struct MessageLog {
    dir: PathBuf,
}

/// Which message of an exchange.
#[derive(Clone, Copy, Debug)]
pub enum Direction {
    Request,
    Response,
}

impl MessageLog {
    pub fn open(dir: PathBuf) -> std::io::Result<MessageLog> {
        std::fs::create_dir_all(&dir)?;
        Ok(MessageLog { dir })
    }

    /// Writes `<request-id>-request.asice` (or `-response`): the message (SOAP envelope or REST
    /// header part), its attachments or REST body, and the signature parts.
    pub async fn record(
        &self,
        request_id: &str,
        direction: Direction,
        message: &[u8],
        attachments: Vec<Vec<u8>>,
        body: Option<&Spooled>,
        sig: &SignatureParts,
    ) -> Result<(), Fault> {
        let fail = |e: String| {
            Fault::new(
                Prefix::ClientProxy,
                ErrorCode::InternalError,
                format!("Message log: {e}"),
            )
        };
        let mut attachments = attachments;
        if let Some(b) = body {
            attachments.push(
                b.to_bytes()
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    .to_vec(),
            );
        }
        let container = Container {
            message: message.to_vec(),
            attachments,
            signature: sig.signature.as_deref().unwrap_or_default().to_vec(),
            hash_chain_result: sig.hash_chain_result.as_ref().map(|b| b.to_vec()),
            hash_chain: sig.hash_chain.as_ref().map(|b| b.to_vec()),
            ..Container::default()
        };
        let safe: String = request_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let suffix = match direction {
            Direction::Request => "request",
            Direction::Response => "response",
        };
        let path = self.dir.join(format!("{safe}-{suffix}.asice"));
        tokio::task::spawn_blocking(move || {
            let tmp = path.with_extension("asice.tmp");
            std::fs::write(&tmp, asic::write(&container))?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|e| fail(e.to_string()))
    }
}
