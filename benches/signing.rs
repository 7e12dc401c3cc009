//! Signing costs: hash chains (1 to 4,096 messages), canonical SignedInfo, and the batch signer
//! over a SoftHSM2 token at concurrency 1 to 256 (messages signed per second through the pool,
//! and messages per `C_Sign`). Needs SoftHSM2 (`scripts/test.sh` installs it).

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use brama::identifiers::ClientId;
use brama::sign::batch::{KeySettings, KeyWorker};
use brama::sign::c14n::{self, Method, Select};
use brama::sign::digest::DigestAlgorithm;
use brama::sign::hashchain::{self, Input};
use brama::sign::pkcs11::{KeyRef, Module, ModuleSettings, Pkcs11Key, TokenRef};
use brama::sign::xades::SignerCert;
use brama::xml::XmlLimits;

#[allow(dead_code)] // the tests use the rest
#[path = "../tests/common/softhsm.rs"]
mod softhsm;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn hash_chains(c: &mut Criterion) {
    let alg = DigestAlgorithm::Sha512;
    let mut g = c.benchmark_group("hash_chain");
    for n in [1usize, 16, 256, 4096] {
        let inputs: Vec<Vec<Vec<u8>>> = (0..n)
            .map(|i| vec![alg.digest(format!("message {i}").as_bytes())])
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("build", n), &inputs, |b, inputs| {
            b.iter(|| hashchain::build(alg, black_box(inputs)))
        });
        let built = hashchain::build(alg, &inputs);
        let chain = built.chains[n / 2].clone();
        let digest = inputs[n / 2][0].clone();
        g.bench_with_input(BenchmarkId::new("verify_one", n), &n, |b, _| {
            b.iter(|| {
                let resolve = |uri: &str| {
                    (uri == hashchain::SIG_HASHCHAIN).then_some(Cow::Borrowed(chain.as_slice()))
                };
                hashchain::verify(
                    &built.result,
                    &resolve,
                    &[Input {
                        uri: hashchain::MESSAGE,
                        digest: Some(digest.clone()),
                        compare: false,
                    }],
                    &XmlLimits::DEFAULT,
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

fn c14n_signed_info(c: &mut Criterion) {
    let path = format!("{ROOT}/tests/fixtures/xroad/asic/valid-signed-message.asice");
    let bytes = std::fs::read(path).expect("tests/fixtures/xroad");
    let container = brama::sign::asic::read(&bytes).unwrap();
    let sig = container.signature;
    c.bench_function("c14n_signed_info", |b| {
        b.iter(|| {
            c14n::canonicalize(
                black_box(&sig),
                Select::ByName {
                    ns: "http://www.w3.org/2000/09/xmldsig#",
                    local: "SignedInfo",
                },
                &Method::Inclusive,
                &XmlLimits::DEFAULT,
            )
            .unwrap()
        })
    });
}

/// A SoftHSM2 token in a temporary directory holding the test PKI's DIIA signing key.
fn softhsm_worker(dir: &std::path::Path, sessions: usize) -> Arc<KeyWorker> {
    let key_file = std::path::PathBuf::from(format!("{ROOT}/certs-test/sign-GOV-00000001.key"));
    let conf = softhsm::init_token(dir, &[(&key_file, "diia", "01")]);
    let module = Module::load(&ModuleSettings {
        library: "/usr/lib/softhsm/libsofthsm2.so".into(),
        env: vec![("SOFTHSM2_CONF".into(), conf.display().to_string())],
        mechanism: None,
    })
    .expect("SoftHSM2 loads");
    let key = Pkcs11Key::new(
        module,
        TokenRef {
            label: Some("brama".into()),
            serial: None,
        },
        KeyRef::Label("diia".into()),
        softhsm::PIN.into(),
        None,
    )
    .unwrap();
    let pem = std::fs::read(format!("{ROOT}/certs-test/sign-GOV-00000001.pem")).unwrap();
    let der = rustls_pemfile::certs(&mut &pem[..])
        .next()
        .unwrap()
        .unwrap()
        .to_vec();
    KeyWorker::start(
        Arc::new(key),
        KeySettings {
            member: ClientId::member("SEVDEIR-TEST", "GOV", "00000001"),
            cert: SignerCert::from_der(der, vec![]).unwrap(),
            digest: DigestAlgorithm::Sha512,
            signature_digest: None,
            max_batch: 4096,
            batch_wait: Duration::ZERO,
            timeout: Duration::from_secs(60),
            sessions,
        },
    )
}

fn pool(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let worker = softhsm_worker(dir.path(), 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("softhsm_pool");
    g.measurement_time(Duration::from_secs(5));
    for conc in [1usize, 16, 64, 256] {
        const PER_ITER: usize = 1024;
        g.throughput(Throughput::Elements(PER_ITER as u64));
        let before = (
            worker.stats.sign_calls.load(Ordering::Relaxed),
            worker.stats.messages.load(Ordering::Relaxed),
        );
        g.bench_with_input(BenchmarkId::new("sign", conc), &conc, |b, &conc| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    rt.block_on(async {
                        let mut tasks = Vec::with_capacity(conc);
                        for t in 0..conc {
                            let w = worker.clone();
                            tasks.push(tokio::spawn(async move {
                                let mut i = t;
                                while i < PER_ITER {
                                    let d = DigestAlgorithm::Sha512.digest(&i.to_le_bytes());
                                    w.sign(vec![d], false).await.unwrap();
                                    i += conc;
                                }
                            }));
                        }
                        for t in tasks {
                            t.await.unwrap();
                        }
                    });
                }
                start.elapsed()
            })
        });
        let calls = worker.stats.sign_calls.load(Ordering::Relaxed) - before.0;
        let msgs = worker.stats.messages.load(Ordering::Relaxed) - before.1;
        eprintln!(
            "softhsm_pool/sign/{conc}: {:.1} messages per C_Sign ({msgs} messages, {calls} calls)",
            msgs as f64 / calls.max(1) as f64
        );
    }
    g.finish();
    worker.stop();
}

/// Verifying one P-256 signature over a `SignedInfo` with each digest a peer may use: SHA-256
/// (Trembita's profile, ring) against SHA-512 (X-Road's default, the p256 crate).
fn ecdsa_digests(c: &mut Criterion) {
    use brama_sign::scheme::{verify, EcdsaForm, Scheme};
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let msg = vec![b'x'; 900];
    let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let public = key.verifying_key().to_encoded_point(false);
    let mut g = c.benchmark_group("ecdsa_p256_verify");
    use sha2::Digest;
    for (name, uri, digest) in [
        (
            "sha256",
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
            sha2::Sha256::digest(&msg).to_vec(),
        ),
        (
            "sha512",
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
            sha2::Sha512::digest(&msg).to_vec(),
        ),
    ] {
        let scheme = Scheme::from_xml_uri(uri).unwrap();
        let sig: p256::ecdsa::Signature = key.sign_prehash(&digest).unwrap();
        let sig = sig.to_bytes();
        assert!(verify(
            scheme,
            public.as_bytes(),
            &msg,
            &sig,
            EcdsaForm::Fixed
        ));
        g.bench_function(name, |b| {
            b.iter(|| {
                verify(
                    scheme,
                    public.as_bytes(),
                    black_box(&msg),
                    &sig,
                    EcdsaForm::Fixed,
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, hash_chains, c14n_signed_info, ecdsa_digests, pool);
criterion_main!(benches);
