//! SOAP header parse and validate: the first thing every request costs.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

use brama::message::soap::{SoapLimits, SoapMessage};
use brama::message::SoapEnvelope;

const REQUEST: &str = include_str!("../examples/soap/getBirthRecord.xml");

fn bench(c: &mut Criterion) {
    let limits = SoapLimits::default();
    let bytes = Bytes::from_static(REQUEST.as_bytes());
    let mut g = c.benchmark_group("soap_header");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("parse_validate", |b| {
        b.iter(|| {
            let m = SoapMessage::parse(black_box(bytes.clone()), None, &limits).unwrap();
            m.validate_request().unwrap();
            m
        })
    });
    g.bench_function("from_http_text_xml", |b| {
        b.iter(|| {
            SoapEnvelope::from_http(
                Some("text/xml; charset=UTF-8"),
                black_box(bytes.clone()),
                &limits,
                64,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
