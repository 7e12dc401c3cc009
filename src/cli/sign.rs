//! `brama sign` and `brama verify`: message signatures offline, as ASiC-E containers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::globalconf::GlobalConf;
use crate::identifiers::ClientId;
use crate::sign::asic::{self, Container};
use crate::sign::verify::TrustStore;
use crate::sign::Signer;

#[derive(Args)]
pub struct SignArgs {
    /// The signing member, INSTANCE/CLASS/CODE; its key comes from the server configuration.
    #[arg(long)]
    member: String,
    /// Directory for the `.asice` containers.
    #[arg(long)]
    out: PathBuf,
    /// Server configuration (the embedded default when absent).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Message files (SOAP XML or a REST header part), or directories holding `message.xml`
    /// and `attachment1`, `attachment2`...  More than one file, or attachments, give the batch
    /// (hash chain) form.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Global configuration directory whose approved CAs are trusted (the configured one when
    /// absent).
    #[arg(long)]
    globalconf: Option<PathBuf>,
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// `.asice` containers, or directories (or signature files) with `signatures.xml`,
    /// `message.xml`, attachments and hash chain files side by side.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn read_parts(path: &Path) -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    if !path.is_dir() {
        return Ok((read(path)?, Vec::new()));
    }
    let message = read(&path.join("message.xml"))?;
    let mut attachments = Vec::new();
    loop {
        let a = path.join(format!("attachment{}", attachments.len() + 1));
        if !a.exists() {
            break;
        }
        attachments.push(read(&a)?);
    }
    Ok((message, attachments))
}

pub fn sign(a: SignArgs) -> ExitCode {
    match run_sign(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_sign(a: SignArgs) -> Result<(), String> {
    let member = ClientId::parse_path(&a.member)?;
    let conf = super::server_conf(a.config.as_deref()).map_err(|e| e.join("\n"))?;
    let signer = Signer::start(&conf.signer)?;
    let key = signer
        .key(&member)
        .ok_or_else(|| format!("no signing key is configured for {member}"))?
        .clone();
    let inputs: Vec<(Vec<u8>, Vec<Vec<u8>>)> = a
        .files
        .iter()
        .map(|f| read_parts(f))
        .collect::<Result<_, _>>()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let force = inputs.len() > 1;
    let containers = rt.block_on(asic::sign_containers(&key, inputs, force));
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    for (file, container) in a.files.iter().zip(containers) {
        let container = container.map_err(|e| format!("{}: {e}", file.display()))?;
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "message".into());
        let out = a.out.join(format!("{stem}.asice"));
        std::fs::write(&out, asic::write(&container))
            .map_err(|e| format!("{}: {e}", out.display()))?;
        println!("{}", out.display());
    }
    signer.stop();
    Ok(())
}

pub fn verify(a: VerifyArgs) -> ExitCode {
    let trust = match &a.globalconf {
        Some(dir) => GlobalConf::load_dir(dir)
            .map(|gc| TrustStore::from_globalconf(&gc))
            .map_err(|e| e.to_string()),
        None => super::server_conf(a.config.as_deref())
            .map(|c| TrustStore::from_globalconf(&c.globalconf))
            .map_err(|e| e.join("\n")),
    };
    let trust = match trust {
        Ok(t) if !t.is_empty() => t,
        Ok(_) => {
            eprintln!("error: the global configuration approves no certification authority");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut all_valid = true;
    for f in &a.files {
        let verdict = load_container(f).and_then(|c| asic::verify_container(&c, &trust));
        match verdict {
            Ok(v) => println!(
                "VALID {}: signed by {} ({}){}{}",
                f.display(),
                v.signer
                    .map_or_else(|| v.cert_subject.clone(), |s| s.to_string()),
                if v.batch {
                    "batch signature"
                } else {
                    "plain signature"
                },
                v.signing_time
                    .map(|t| format!(" at {t}"))
                    .unwrap_or_default(),
                match v.time_stamped_at {
                    Some(t) => format!(
                        "; time-stamped by an approved TSA at {}, certificates and OCSP checked as of then",
                        crate::time::rfc3339(t)
                    ),
                    None => "; not time-stamped, certificates and OCSP checked as of the signing time".into(),
                }
            ),
            Err(e) => {
                all_valid = false;
                println!(
                    "INVALID {}: {}: {}",
                    f.display(),
                    e.code_string(),
                    e.message
                );
            }
        }
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// An `.asice` file, or the loose files of one.
fn load_container(path: &Path) -> Result<Container, crate::sign::error::SignError> {
    use crate::sign::error::SignError;
    let io = |p: &Path, e: std::io::Error| SignError::malformed(format!("{}: {e}", p.display()));
    if path.is_file()
        && path
            .extension()
            .is_some_and(|e| e == "asice" || e == "bdoc")
    {
        let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
        return asic::read(&bytes);
    }
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let opt = |name: &str| std::fs::read(dir.join(name)).ok();
    let signature = if path.is_file() {
        std::fs::read(path).map_err(|e| io(path, e))?
    } else {
        opt("signatures.xml")
            .or_else(|| opt("META-INF/signatures.xml"))
            .ok_or_else(|| {
                SignError::malformed(format!("no signatures.xml in {}", dir.display()))
            })?
    };
    let (message, attachments) = read_parts(&dir).map_err(SignError::malformed)?;
    Ok(Container {
        message,
        attachments,
        signature,
        hash_chain_result: opt("sig-hashchainresult.xml"),
        hash_chain: opt("sig-hashchain.xml"),
        ts_hash_chain_result: opt("ts-hashchainresult.xml"),
        ts_hash_chain: opt("ts-hashchain.xml"),
        timestamp: opt("META-INF/timestamp.tst").or_else(|| opt("timestamp.tst")),
    })
}
