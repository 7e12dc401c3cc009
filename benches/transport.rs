//! The security-server-to-security-server message format: SOAP transport multipart encode and
//! decode (with a signature and hash chain), and REST's streamed encode and decode, in memory and
//! with a body spooled to disk.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http_body_util::BodyExt;

use brama::message::soap::SoapLimits;
use brama::message::SoapEnvelope;
use brama::sign::digest::DigestAlgorithm;
use brama::sign::SignatureParts;
use brama::transport::codec;
use brama::transport::rest_codec::{self, DecodeLimits};
use brama::transport::spool::{SpoolConfig, Spooled};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn signature() -> SignatureParts {
    // Sizes of a real batch signature (XAdES with one certificate) and its hash chain.
    SignatureParts {
        hash_chain_result: Some(Bytes::from(vec![b'r'; 400])),
        hash_chain: Some(Bytes::from(vec![b'c'; 900])),
        signature: Some(Bytes::from(vec![b's'; 3500])),
    }
}

fn soap(c: &mut Criterion) {
    let xml = std::fs::read(format!("{ROOT}/examples/soap/getBirthRecord.xml")).unwrap();
    let limits = SoapLimits::default();
    let env = SoapEnvelope::from_http(
        Some("text/xml; charset=UTF-8"),
        Bytes::from(xml),
        &limits,
        64,
    )
    .unwrap();
    let sig = signature();
    let mut g = c.benchmark_group("transport_soap");
    g.bench_function("encode", |b| {
        b.iter(|| codec::encode(black_box(&env), &[], &sig))
    });
    let (ct, body) = codec::encode(&env, &[], &sig);
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| codec::decode(&ct, None, black_box(body.clone()), &limits, 64).unwrap())
    });
    g.finish();
}

fn rest(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let header = brama::rest::header_part::RestRequest::build(
        "POST",
        "/r1/SEVDEIR-TEST/GOV/00000006/EHEALTH/declarations",
        Some("patient=3f2504e0-4f89-41d3-9a0c-0305e82c3301"),
        vec![
            (
                "x-road-client".into(),
                "SEVDEIR-TEST/GOV/00000001/DIIA".into(),
            ),
            ("content-type".into(), "application/json".into()),
        ],
        "3f2504e0-4f89-41d3-9a0c-0305e82c3302",
    )
    .unwrap()
    .bytes;
    let sig = signature();
    let spool = SpoolConfig::default();
    let soap = SoapLimits::default();
    let limits = DecodeLimits {
        spool: &spool,
        soap: &soap,
        max_parts: 64,
        digest: DigestAlgorithm::Sha512,
        budget: None,
    };
    let mut g = c.benchmark_group("transport_rest");
    // 1 KiB stays in memory; 4 MiB goes through a spool file on decode.
    for size in [1024usize, 4 * 1024 * 1024] {
        let body = Spooled::from_bytes(Bytes::from(vec![b'x'; size]), DigestAlgorithm::Sha512);
        let encoded = rt.block_on(async {
            let (ct, b) =
                rest_codec::encode(&[], rest_codec::CT_REST_REQUEST, &header, Some(&body), &sig);
            (ct, b.collect().await.unwrap().to_bytes())
        });
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("encode", size), &size, |b, _| {
            b.iter(|| {
                rt.block_on(async {
                    let (_, s) = rest_codec::encode(
                        &[],
                        rest_codec::CT_REST_REQUEST,
                        &header,
                        Some(&body),
                        &sig,
                    );
                    s.collect().await.unwrap().to_bytes()
                })
            })
        });
        g.bench_with_input(BenchmarkId::new("decode", size), &size, |b, _| {
            b.iter(|| {
                rt.block_on(rest_codec::decode(
                    &encoded.0,
                    http_body_util::Full::new(encoded.1.clone()),
                    rest_codec::CT_REST_REQUEST,
                    &limits,
                ))
                .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = soap, rest
}
criterion_main!(benches);
