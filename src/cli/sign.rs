//! `brama sign` and `brama verify`: message signatures offline, as ASiC-E containers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::globalconf::GlobalConf;
use crate::identifiers::ClientId;
use crate::sign::asic::{self, Container};
use crate::sign::error::SignError;
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

/// What a verification trusts.
#[derive(Args)]
pub struct TrustArgs {
    /// Global configuration directory whose approved CAs and TSAs are trusted (the configured
    /// one when absent; `GET /verificationconf` gives it, zipped).
    #[arg(long)]
    globalconf: Option<PathBuf>,
    /// The server configuration whose global configuration is trusted (the embedded default
    /// when absent).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    trust: TrustArgs,
    /// `.asice` containers; zips of them (a `GET /asic` download, an archive), each container
    /// checked; a message log directory (`[log] messages_dir`), every container logged and
    /// stamped in it checked; or directories (or signature files) with `signatures.xml`,
    /// `message.xml`, attachments and hash chain files side by side.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// One JSON object per container and line, instead of text.
    #[arg(long)]
    json: bool,
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
        asic::write(&container)
            .and_then(|bytes| std::fs::write(&out, bytes))
            .map_err(|e| format!("{}: {e}", out.display()))?;
        println!("{}", out.display());
    }
    signer.stop();
    Ok(())
}

/// The trust a verification runs under: `--globalconf DIR`, else the configuration's.
fn trust(a: &TrustArgs) -> Result<TrustStore, String> {
    let trust = match &a.globalconf {
        Some(dir) => GlobalConf::load_dir(dir)
            .map(|gc| TrustStore::from_globalconf(&gc))
            .map_err(|e| e.to_string())?,
        None => super::server_conf(a.config.as_deref())
            .map(|c| TrustStore::from_globalconf(&c.globalconf))
            .map_err(|e| e.join("\n"))?,
    };
    if trust.is_empty() {
        return Err("the global configuration approves no certification authority".into());
    }
    Ok(trust)
}

#[derive(clap::Args)]
pub struct ArchiveVerifyArgs {
    #[command(flatten)]
    trust: TrustArgs,
    /// Archive files (`mlog-*.zip`), in chain order; a directory stands for its archives, by name.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(clap::Args)]
pub struct ArchiveExportArgs {
    /// The message log directory (`[log] messages_dir`).
    log_dir: PathBuf,
    /// Where the containers are written, one `.asice` file each (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Only the records of this X-Road id (`queryId`).
    #[arg(long)]
    query_id: Option<String>,
}

/// `brama archive export`: the containers a message log directory holds (loose, of
/// time-stamping rounds, in `archived/`) written out as files, for any ASiC-E verifier.
pub fn archive_export(a: ArchiveExportArgs) -> ExitCode {
    let prefix = a
        .query_id
        .as_deref()
        .map(|q| format!("{}-", crate::message_log::safe(q)));
    let keep = |name: &str| prefix.as_deref().is_none_or(|p| name.starts_with(p));
    let mut written = 0usize;
    let done = std::fs::read_dir(&a.log_dir)
        .and_then(|_| std::fs::create_dir_all(&a.out))
        .and_then(|()| {
            crate::message_log::stamps::each_logged(&a.log_dir, &keep, &mut |name, bytes| {
                std::fs::write(a.out.join(name), bytes)?;
                written += 1;
                Ok(())
            })
        });
    match done {
        Ok(()) => {
            println!("{written} containers written to {}", a.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", a.log_dir.display());
            ExitCode::FAILURE
        }
    }
}

/// `brama archive verify`: each archive's `linkinginfo` chain, its link to the archive before
/// it, and every container in it.
pub fn archive_verify(a: ArchiveVerifyArgs) -> ExitCode {
    let trust = match trust(&a.trust) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Files as given; a directory's archives in chain order (names alone do not order archives
    // made in the same second).
    let mut files: Vec<(PathBuf, Result<crate::sign::archive::Checked, String>)> = Vec::new();
    let load = |p: &Path| {
        std::fs::read(p)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|b| crate::sign::archive::check(&b))
    };
    for f in &a.files {
        if !f.is_dir() {
            files.push((f.clone(), load(f)));
            continue;
        }
        let mut in_dir: Vec<PathBuf> = std::fs::read_dir(f)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "zip"))
            .collect();
        in_dir.sort();
        let loaded: Vec<_> = in_dir.iter().map(|p| (p.clone(), load(p))).collect();
        files.extend(chain_order(loaded));
    }
    let mut ok = true;
    let mut previous: Option<(String, String)> = None;
    for (f, checked) in files {
        let name = file_name_of(&f);
        let c = match checked {
            Ok(c) => c,
            Err(e) => {
                ok = false;
                println!("INVALID {}: {e}", f.display());
                previous = None;
                continue;
            }
        };
        let link = (c.previous.digest.clone(), c.previous.file_name.clone());
        let chained = match &previous {
            Some(p) if *p != link => {
                ok = false;
                println!(
                    "INVALID {}: it does not continue the archive before it ({}): one is missing, changed or out of order",
                    f.display(),
                    p.1
                );
                false
            }
            _ => true,
        };
        let mut bad = 0;
        for (entry, bytes) in &c.containers {
            if let Err(e) = asic::read(bytes).and_then(|k| asic::verify_container(&k, &trust)) {
                bad += 1;
                println!(
                    "INVALID {}/{entry}: {}: {}",
                    f.display(),
                    e.code_string(),
                    e.message
                );
            }
        }
        ok &= bad == 0;
        if chained && bad == 0 {
            println!(
                "VALID {}: {} containers, linked {}",
                f.display(),
                c.containers.len(),
                match c.previous.file_name.as_str() {
                    "" => "as the first archive".to_string(),
                    p => format!("to {p}"),
                }
            );
        }
        previous = Some((c.last, name));
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn file_name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

type Loaded = (PathBuf, Result<crate::sign::archive::Checked, String>);

/// Archives ordered by their links: each chain from an archive whose predecessor is not among
/// them, followed to its end; what no chain reaches (unreadable, or a loop) after, by name.
fn chain_order(loaded: Vec<Loaded>) -> Vec<Loaded> {
    let names: std::collections::HashSet<String> =
        loaded.iter().map(|(p, _)| file_name_of(p)).collect();
    let prev_of = |l: &Loaded| l.1.as_ref().ok().map(|c| c.previous.file_name.clone());
    let mut rest = loaded;
    let mut out = Vec::with_capacity(rest.len());
    while let Some(start) = rest
        .iter()
        .position(|l| prev_of(l).is_some_and(|p| !names.contains(&p)))
    {
        let mut cur = rest.remove(start);
        loop {
            let name = file_name_of(&cur.0);
            out.push(cur);
            match rest
                .iter()
                .position(|l| prev_of(l).as_deref() == Some(name.as_str()))
            {
                Some(next) => cur = rest.remove(next),
                None => break,
            }
        }
    }
    out.extend(rest);
    out
}

pub fn verify(a: VerifyArgs) -> ExitCode {
    let trust = match trust(&a.trust) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut all_valid = true;
    let json = a.json;
    let mut report = |f: &str, container: Result<Container, SignError>| {
        let verdict = container.and_then(|c| asic::verify_container(&c, &trust));
        all_valid &= verdict.is_ok();
        if json {
            let line = match &verdict {
                Ok(v) => serde_json::json!({
                    "file": f,
                    "valid": true,
                    "signer": v.signer.as_ref().map_or_else(|| v.cert_subject.clone(), |s| s.to_string()),
                    "batch": v.batch,
                    "signingTime": v.signing_time.as_ref().map(|t| t.to_string()),
                    "timeStampedAt": v.time_stamped_at.map(crate::time::rfc3339),
                }),
                Err(e) => serde_json::json!({
                    "file": f, "valid": false, "code": e.code_string(), "message": e.message,
                }),
            };
            println!("{line}");
            return;
        }
        match verdict {
            Ok(v) => println!(
                "VALID {}: signed by {} ({}){}{}",
                f,
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
            Err(e) => println!("INVALID {}: {}: {}", f, e.code_string(), e.message),
        }
    };
    let mut unreadable = false;
    for f in &a.files {
        // A name that is not there is a mistake of the command line, not an invalid container.
        if let Err(e) = std::fs::metadata(f) {
            let why = format!("cannot read {}: {e}", f.display());
            match a.json {
                true => println!(
                    "{}",
                    serde_json::json!({"file": f, "valid": false, "error": why})
                ),
                false => eprintln!("error: {why}"),
            }
            unreadable = true;
            continue;
        }
        each_container(f, &mut report);
    }
    if all_valid && !unreadable {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Each container `path` names, to `each` with its name as it is read: a zip of containers (a
/// `GET /asic` download, an archive) gives each of its `.asice` entries as `FILE:ENTRY`, one in
/// memory at a time, and so does a message log directory; anything else is one container.
fn each_container(path: &Path, each: &mut dyn FnMut(&str, Result<Container, SignError>)) {
    let shown = path.display().to_string();
    let loose_parts = ["signatures.xml", "META-INF/signatures.xml"];
    let log_dir = path.is_dir() && !loose_parts.iter().any(|p| path.join(p).exists());
    if !log_dir && path.extension().is_none_or(|e| e != "zip") {
        return each(&shown, load_container(path));
    }
    let mut found = 0;
    let mut one = |name: &str, bytes: Vec<u8>| {
        found += 1;
        each(&format!("{shown}:{name}"), asic::read(&bytes));
    };
    let malformed = |e: &dyn std::fmt::Display| SignError::malformed(format!("{shown}: {e}"));
    let (read, none) = if log_dir {
        let read = crate::message_log::stamps::each_logged(path, &|_| true, &mut |name, bytes| {
            one(name, bytes);
            Ok(())
        });
        (
            read.map_err(|e| malformed(&e)),
            "no logged container in the directory",
        )
    } else {
        let read = std::fs::File::open(path)
            .map_err(|e| malformed(&e))
            .and_then(|f| {
                asic::each_in_zip(f, &|_| true, &mut |name, bytes| {
                    one(&name, bytes);
                    Ok(())
                })
            });
        (read, "the zip holds no .asice container")
    };
    match read {
        Err(e) => each(&shown, Err(e)),
        Ok(()) if found == 0 => each(&shown, Err(SignError::malformed(none))),
        Ok(()) => {}
    }
}

/// An `.asice` file, or the loose files of one.
fn load_container(path: &Path) -> Result<Container, SignError> {
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
