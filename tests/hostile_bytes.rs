//! Network input never panics: every parser of untrusted bytes is fed mutated real messages
//! (deterministic, so a failure reproduces). The fuzz targets in `fuzz/` do the same without end.

use bytes::Bytes;

use brama::message::soap::SoapLimits;
use brama::message::SoapEnvelope;
use brama::transport::codec::decode;
use brama::xml::XmlLimits;

/// xorshift: a small deterministic generator, no dependency needed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.truncate(i);
            }
            2 => {
                let i = rng.below(v.len() + 1);
                let chunk: Vec<u8> = [
                    &b"<"[..],
                    b">",
                    b"--",
                    b"\r\n",
                    b"&",
                    b"xmlns:a=\"",
                    b"<!DOCTYPE",
                    b"]]>",
                ][rng.below(8)]
                .to_vec();
                v.splice(i..i, chunk);
            }
            3 if v.len() > 2 => {
                let a = rng.below(v.len());
                let b = rng.below(v.len());
                let (a, b) = (a.min(b), a.max(b));
                let copy = v[a..b].to_vec();
                v.splice(a..a, copy);
            }
            _ => v.reverse(),
        }
    }
    v
}

fn seeds(dir: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/tests/fixtures/xroad/{dir}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_dir(path)
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect()
}

#[test]
fn parsers_survive_mutated_messages() {
    let limits = SoapLimits::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let soap = seeds("soap-queries");
    let transport = seeds("transport");
    for _ in 0..3000 {
        let s = &soap[rng.below(soap.len())];
        let m = Bytes::from(mutate(&mut rng, s));
        if let Ok(env) =
            SoapEnvelope::from_http(Some("text/xml; charset=UTF-8"), m.clone(), &limits, 64)
        {
            let _ = env.soap.validate_request();
            let _ = env.soap.with_request_hash("u", "h");
        }
        let _ = SoapEnvelope::from_http(
            Some("multipart/related; boundary=jetty771207119h3h10dty"),
            m,
            &limits,
            64,
        );

        let t = &transport[rng.below(transport.len())];
        let boundary = String::from_utf8_lossy(t.split(|&b| b == b'\n').next().unwrap_or_default())
            .trim()
            .trim_start_matches("--")
            .to_string();
        let m = Bytes::from(mutate(&mut rng, t));
        let _ = decode(
            &format!("multipart/mixed; boundary={boundary}"),
            None,
            m,
            &limits,
            64,
        );
    }
    // The XML reader under limits so small that mutations keep crossing them.
    let tight = XmlLimits {
        max_depth: 6,
        max_elements: 40,
        max_attributes: 3,
        max_namespaces: 2,
        max_namespaces_in_scope: 4,
        max_name_bytes: 24,
        max_attribute_bytes: 48,
        max_text_bytes: 64,
    };
    for _ in 0..2000 {
        let s = &soap[rng.below(soap.len())];
        let m = mutate(&mut rng, s);
        for l in [&tight, &XmlLimits::DEFAULT] {
            let Ok(mut r) = brama::xml::Reader::new(&m, l) else {
                continue;
            };
            while let Ok((_, e)) = r.read_resolved() {
                assert!(r.depth() <= l.max_depth);
                if matches!(e, quick_xml::events::Event::Eof) {
                    break;
                }
            }
        }
    }
    let gc = std::fs::read(format!(
        "{}/tests/fixtures/xroad/globalconf/globalconf_good2_v3/DEV/shared-params.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for _ in 0..500 {
        let _ = brama::globalconf::SharedParams::parse(&mutate(&mut rng, &gc));
    }
}

/// Signature XML, hash chains, canonical XML and ASiC containers: every verdict is an error
/// value, never a panic, whatever the mutation.
#[test]
fn signature_parsers_survive_mutated_input() {
    use brama::sign::verify::{self, At, Part, Signed, TrustStore};
    use brama::sign::{asic, c14n, hashchain};
    use std::borrow::Cow;

    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let trust = TrustStore::default();
    let signatures = seeds("signatures");
    let chains = seeds("hashchain");
    let containers = seeds("asic");
    let methods = [
        c14n::Method::Inclusive,
        c14n::Method::Exclusive {
            inclusive_prefixes: vec!["ds".into()],
        },
    ];
    for round in 0..1500 {
        let pick = |rng: &mut Rng, set: &[Vec<u8>]| {
            let seed = &set[rng.below(set.len())];
            mutate(rng, seed)
        };
        let sig = pick(&mut rng, &signatures);
        let chain = pick(&mut rng, &chains);
        let result = pick(&mut rng, &chains);
        let message = b"<m/>".as_slice();
        let _ = verify::verify(
            Signed {
                signature: &sig,
                hash_chain_result: Some(&result),
                hash_chain: Some(&chain),
            },
            &Part::list(message, []),
            &trust,
            None,
            At::Now,
        );
        let resolve = |_: &str| Some(Cow::Borrowed(chain.as_slice()));
        let _ = hashchain::verify(
            &result,
            &resolve,
            &[hashchain::Input {
                uri: hashchain::MESSAGE,
                digest: None,
                compare: false,
            }],
            &XmlLimits::DEFAULT,
        );
        let m = &methods[round % 2];
        let _ = c14n::canonicalize(
            &sig,
            c14n::Select::ById("signed-properties"),
            m,
            &XmlLimits::DEFAULT,
        );
        let _ = c14n::canonicalize_document(&sig, m, &XmlLimits::DEFAULT);
        if round % 5 == 0 {
            let zip = pick(&mut rng, &containers);
            if let Ok(c) = asic::read(&zip) {
                let _ = asic::verify_container(&c, &trust);
            }
            // The same bytes as a zip of containers (a download, an archive).
            let _ = asic::each_in_zip(std::io::Cursor::new(&zip), &|_| true, &mut |_, bytes| {
                let _ = asic::read(&bytes);
                Ok(())
            });
        }
    }
}

/// Router input from the network: application JSON, wrap-mode bodies, and the simulator's view
/// of registry answers, mutated from the examples.
#[test]
fn router_parsers_survive_mutated_input() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/applications");
    let mut apps: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    apps.push(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/soap/getBirthRecord.plain.xml"
        ))
        .unwrap(),
    );
    for _ in 0..3000 {
        let seed = &apps[rng.below(apps.len())];
        let m = mutate(&mut rng, seed);
        let _ = brama::router::application::parse(&m);
        let _ = brama::router::wrap::body_content(&m, &XmlLimits::DEFAULT, 1 << 20);
    }
}
#[test]
fn rest_parsers_survive_mutated_input() {
    use brama::rest::header_part::{RestRequest, RestResponse};
    use brama::transport::rest_codec;
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let request = RestRequest::build(
        "POST",
        "/r1/SEVDEIR-TEST/GOV/00000006/EHEALTH/declarations/a%20b",
        Some("patient=1&x=%D0%B4"),
        vec![
            (
                "x-road-client".into(),
                "SEVDEIR-TEST/GOV/00000001/DIIA".into(),
            ),
            ("content-type".into(), "application/json".into()),
        ],
        "rid",
    )
    .unwrap();
    let response = b"200\r\nOK\r\ncontent-type:application/json\r\nx-road-id:1\r\nx-road-request-hash:AQID\r\n".to_vec();
    let sig = brama::sign::SignatureParts {
        hash_chain_result: Some(Bytes::from_static(b"<r/>")),
        hash_chain: Some(Bytes::from_static(b"<c/>")),
        signature: Some(Bytes::from_static(b"<s/>")),
    };
    let body = brama::transport::spool::Spooled::from_bytes(
        Bytes::from_static(b"{\"a\":1}"),
        brama::sign::digest::DigestAlgorithm::Sha512,
    );
    let (ct, encoded) = rest_codec::encode(
        &[],
        rest_codec::CT_REST_REQUEST,
        &request.bytes,
        Some(&body),
        &sig,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let transport = rt.block_on(async {
        use http_body_util::BodyExt;
        encoded.collect().await.unwrap().to_bytes().to_vec()
    });
    let boundary = ct.split("boundary=").nth(1).unwrap().to_string();
    let spool = brama::transport::spool::SpoolConfig::default();
    let soap = SoapLimits::default();
    let limits = rest_codec::DecodeLimits {
        spool: &spool,
        soap: &soap,
        max_parts: 16,
        digest: brama::sign::digest::DigestAlgorithm::Sha512,
        budget: None,
    };
    let seeds = [request.bytes.to_vec(), response, transport];
    for _ in 0..3000 {
        let i = rng.below(seeds.len());
        let m = mutate(&mut rng, &seeds[i]);
        let _ = RestRequest::parse(Bytes::from(m.clone()));
        let _ = RestResponse::parse(Bytes::from(m.clone()));
        if let Ok(t) = std::str::from_utf8(&m) {
            let _ = brama::rest::target::parse(t);
            let _ = brama::rest::acl::normalize(t);
        }
        if i == 2 {
            let ct = format!("multipart/mixed; boundary={boundary}");
            let body = http_body_util::Full::new(Bytes::from(m));
            let _ = rt.block_on(rest_codec::decode(
                &ct,
                body,
                rest_codec::CT_REST_REQUEST,
                &limits,
            ));
        }
    }
}

/// Typed response parsing (`brama::wsdl::runtime::parse_response`) of every operation: whatever
/// the bytes, an answer or an error, never a panic.
#[test]
fn typed_response_parsing_survives_mutated_answers() {
    use brama::identifiers::{ClientId, ServiceId};
    use brama::message::build::{request, RequestHeader};
    use brama::wsdl::runtime::{parse_response, Operation, OperationVisitor};

    struct Parse<'a>(&'a [u8]);
    impl OperationVisitor for Parse<'_> {
        fn visit<O: Operation>(&mut self) {
            let _ = parse_response::<O>(self.0);
        }
    }
    struct Seeds(Vec<Vec<u8>>);
    impl OperationVisitor for Seeds {
        fn visit<O: Operation>(&mut self) {
            let h = RequestHeader {
                client: ClientId::subsystem("SEVDEIR-TEST", "GOV", "00000001", "DIIA"),
                service: ServiceId::new(
                    ClientId::subsystem("SEVDEIR-TEST", "GOV", "00000002", "X"),
                    O::NAME,
                    O::VERSION,
                ),
                id: "1".into(),
                user_id: None,
                issue: None,
                security_server: None,
            };
            self.0
                .push(request(&h, &O::INFO.sample_response_xml()).into_bytes());
        }
    }
    let mut seeds = Seeds(vec![brama::message::fault::fault_xml(
        "Server.X",
        "down",
        None,
        Some("id"),
    )
    .into_bytes()]);
    brama::registries::visit_all(&mut seeds);
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    for _ in 0..3000 {
        let seed = &seeds.0[rng.below(seeds.0.len())];
        let m = mutate(&mut rng, seed);
        brama::registries::visit_all(&mut Parse(&m));
    }
}

/// A message log round's file (`stamped-*.stamps`, read by `brama verify DIR` and the archiver),
/// mutated and its checksum made good again so that the fields themselves are read: refused or
/// read, never a panic.
#[test]
fn log_round_files_survive_mutated_input() {
    use brama::message_log::stamps::{self, Stamped};
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let records: Vec<Stamped> = (0..20u8)
        .map(|i| Stamped {
            name: format!("q{i}-r{i}-request.asice"),
            offset: 1000 * u64::from(i) + 30,
            len: 900,
            external: i % 7 == 0,
            digest: vec![i; 64],
        })
        .collect();
    let good = stamps::encode(b"a token's bytes", &records).unwrap();
    let name = "stamped-0000000003-000000000000.stamps";
    assert_eq!(stamps::parse(name, &good).unwrap().records, records);
    for _ in 0..20_000 {
        let mut v = mutate(&mut rng, &good);
        if let Some(n) = v.len().checked_sub(4) {
            let crc = crc32fast::hash(&v[..n]);
            v[n..].copy_from_slice(&crc.to_le_bytes());
        }
        let _ = stamps::parse(name, &v);
    }
}
