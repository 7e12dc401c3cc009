use super::*;

const L: XmlLimits = XmlLimits::DEFAULT;

const HC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/xroad/hashchain/"
);
const SIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/xroad/signatures/"
);

fn file(dir: &str, name: &str) -> Vec<u8> {
    std::fs::read(format!("{dir}{name}")).unwrap_or_else(|e| panic!("{dir}{name}: {e}"))
}

/// Verifies the HashChainResult `result` of `dir`, resolving documents by URI from the files
/// named in `docs`, as X-Road's own verifier test does.
fn check(
    dir: &str,
    result: &str,
    docs: &[(&str, &str)],
    inputs: &[Input<'_>],
) -> Result<(), HashChainError> {
    let resolve = |uri: &str| {
        docs.iter()
            .find(|(u, _)| *u == uri)
            .map(|(_, f)| Cow::Owned(file(dir, f)))
    };
    verify(&file(dir, result), &resolve, inputs, &L)
}

fn detached(uri: &str) -> Input<'_> {
    Input {
        uri,
        digest: None,
        compare: false,
    }
}

fn attached(uri: &str, digest: Vec<u8>) -> Input<'_> {
    Input {
        uri,
        digest: Some(digest),
        compare: false,
    }
}

const HC1: &[(&str, &str)] = &[("/hashchain.xml", "hc-verifier1-hashchain.xml")];

#[test]
fn x_road_vectors_verify() {
    let result1 = "hc-verifier1-hashchainresult.xml";
    // Detached input: resolved and digested by the verifier.
    let docs = [HC1[0], ("/message.xml", "hc-verifier1-message.xml")];
    check(HC, result1, &docs, &[detached(MESSAGE)]).unwrap();

    // Attached input: the verifier's own digest.
    let d = DigestAlgorithm::Sha256.digest(&file(HC, "hc-verifier1-message.xml"));
    check(HC, result1, HC1, &[attached(MESSAGE, d.clone())]).unwrap();

    // Unused inputs.
    let e = check(
        HC,
        result1,
        HC1,
        &[attached(MESSAGE, d), detached("/unused1")],
    )
    .unwrap_err();
    assert_eq!(e.kind, HashChainErrorKind::UnusedInputs);

    // A part whose digest the chain does not state: the received part's digest is what goes
    // into the chain, which then computes to another root (X-Road's `InvalidHashChain`).
    let wrong = DigestAlgorithm::Sha256.digest(&file(HC, "hc-verifier1-hashchain.xml"));
    let e = check(HC, result1, HC1, &[attached(MESSAGE, wrong.clone())]).unwrap_err();
    assert_eq!(e.kind, HashChainErrorKind::InvalidHashChain);
    // An archived part is compared with the chain's stated digest instead.
    let archived = Input {
        compare: true,
        ..attached(MESSAGE, wrong)
    };
    let e = check(HC, result1, HC1, &[archived]).unwrap_err();
    assert_eq!(e.kind, HashChainErrorKind::InvalidHashChainRef);

    // Two chain documents.
    let docs = [
        ("/hashchain.xml", "hc-verifier4-hashchain1.xml"),
        ("/hashchain2.xml", "hc-verifier4-hashchain2.xml"),
        ("/message.xml", "hc-verifier4-message.xml"),
    ];
    check(
        HC,
        "hc-verifier4-hashchainresult.xml",
        &docs,
        &[detached(MESSAGE)],
    )
    .unwrap();

    // Attachments given as digests...
    let docs = [("/hashchain.xml", "hc-verifier2-hashchain.xml")];
    let inputs: Vec<Input> = [
        (MESSAGE, 11u8),
        ("/attachment1", 12),
        ("/attachment2", 13),
        ("/attachment3", 14),
    ]
    .into_iter()
    .map(|(uri, b)| attached(uri, vec![b]))
    .collect();
    let result2 = "hc-verifier2-hashchainresult.xml";
    check(HC, result2, &docs, &inputs).unwrap();
    // ...and unresolvable attachments are taken at their stated digest.
    check(HC, result2, &docs, &[attached(MESSAGE, vec![11])]).unwrap();
}

#[test]
fn x_road_transform_and_schema_vectors() {
    let result = "hc-verifier3-hashchainresult.xml";
    let with_chain = |chain| {
        [
            ("/hashchain.xml", chain),
            ("/message.xml", "hc-verifier3-message.xml"),
        ]
    };
    // The valid chain digests the message after a C14N transform.
    check(
        HC,
        result,
        &with_chain("hc-verifier3-hashchain.xml"),
        &[detached(MESSAGE)],
    )
    .unwrap();

    let docs = with_chain("hc-verifier3-hashchain-invalid.xml");
    let e = check(HC, result, &docs, &[detached(MESSAGE)]).unwrap_err();
    assert_eq!(e.kind, HashChainErrorKind::InvalidHashChainRef);

    let docs = with_chain("hc-verifier5-hashchain-invalid-schema.xml");
    let e = check(HC, result, &docs, &[detached(MESSAGE)]).unwrap_err();
    assert_eq!(e.kind, HashChainErrorKind::Malformed);
}

#[test]
fn x_road_batch_signature_chains() {
    // hash-chain-1.xml: message-1 with one attachment known only by its stated digest.
    let docs = [("/sig-hashchain.xml", "hash-chain-1.xml")];
    let msg = DigestAlgorithm::Sha512.digest(&file(SIG, "message-1.xml"));
    check(
        SIG,
        "hash-chain-result.xml",
        &docs,
        &[attached(MESSAGE, msg.clone())],
    )
    .unwrap();
    // hash-chain-2.xml belongs to another message of the same batch.
    let docs = [("/sig-hashchain.xml", "hash-chain-2.xml")];
    assert!(check(
        SIG,
        "hash-chain-result.xml",
        &docs,
        &[attached(MESSAGE, msg)]
    )
    .is_err());
}

fn parts(i: usize, k: usize) -> Vec<Vec<u8>> {
    (0..k)
        .map(|j| DigestAlgorithm::Sha512.digest(format!("msg {i} part {j}").as_bytes()))
        .collect()
}

fn inputs_of(p: &[Vec<u8>]) -> Vec<Input<'static>> {
    const NAMES: [&str; 4] = [MESSAGE, "/attachment1", "/attachment2", "/attachment3"];
    p.iter()
        .enumerate()
        .map(|(j, d)| Input {
            uri: NAMES[j],
            digest: Some(d.clone()),
            compare: false,
        })
        .collect()
}

#[test]
fn built_chains_verify_for_every_batch_size() {
    for n in 1..=33 {
        let batch: Vec<Vec<Vec<u8>>> = (0..n).map(|i| parts(i, 1 + (i * 7 + n) % 3)).collect();
        let built = build(DigestAlgorithm::Sha512, &batch);
        assert_eq!(built.chains.len(), n);
        for (i, chain) in built.chains.iter().enumerate() {
            let c = chain.clone();
            let r = |uri: &str| (uri == SIG_HASHCHAIN).then_some(Cow::Borrowed(c.as_slice()));
            verify(&built.result, &r, &inputs_of(&batch[i]), &L)
                .unwrap_or_else(|e| panic!("n={n} i={i}: {e}"));

            // Another message's parts do not verify with this chain.
            let other = &batch[(i + 1) % n];
            if n > 1 && other != &batch[i] {
                assert!(verify(&built.result, &r, &inputs_of(other), &L).is_err());
            }
            // An extra, unsigned attachment is refused.
            let mut extra = inputs_of(&batch[i]);
            if extra.len() < 4 {
                let k = extra.len();
                extra.push(Input {
                    uri: ["", "/attachment1", "/attachment2", "/attachment3"][k],
                    digest: Some(vec![1; 64]),
                    compare: false,
                });
                let e = verify(&built.result, &r, &extra, &L).unwrap_err();
                assert_eq!(e.kind, HashChainErrorKind::UnusedInputs, "n={n} i={i}");
            }
        }
    }
}

/// Time-stamp chains (reference §6.3): each record's chain leads from its signature document to
/// the one result the TSA stamps, named as X-Road names them.
#[test]
fn time_stamp_chains_verify_for_every_batch_size() {
    for n in 1..=17 {
        let sigs: Vec<Vec<u8>> = (0..n)
            .map(|i| DigestAlgorithm::Sha512.digest(format!("<signature {i}/>").as_bytes()))
            .collect();
        let built = build_timestamp(DigestAlgorithm::Sha512, &sigs);
        // The tree that writes chains one at a time writes the same bytes.
        let tree = timestamp_tree(DigestAlgorithm::Sha512, &sigs);
        assert_eq!(tree.result, built.result);
        assert_eq!(tree.len(), sigs.len());
        for (i, chain) in built.chains.iter().enumerate() {
            assert_eq!(&tree.chain(i), chain, "chain {i}");
        }
        assert!(String::from_utf8_lossy(&built.result).contains(r#"URI="/ts-hashchain.xml#STEP0""#));
        for (i, chain) in built.chains.iter().enumerate() {
            assert!(String::from_utf8_lossy(chain)
                .contains(r#"<ns2:DataRef URI="/META-INF/signatures.xml">"#));
            let c = chain.clone();
            let r = |uri: &str| (uri == TS_HASHCHAIN).then_some(Cow::Borrowed(c.as_slice()));
            let input = |d: &[u8]| Input {
                uri: SIGNATURES,
                digest: Some(d.to_vec()),
                compare: true,
            };
            verify(&built.result, &r, &[input(&sigs[i])], &L)
                .unwrap_or_else(|e| panic!("n={n} i={i}: {e}"));
            if n > 1 {
                assert!(verify(&built.result, &r, &[input(&sigs[(i + 1) % n])], &L).is_err());
            }
        }
    }
}

#[test]
fn tree_shape_matches_x_road() {
    // n=3: root = S(S(a,b), c); n=5: S(S(S(a,b),S(c,d)), e).
    let alg = DigestAlgorithm::Sha512;
    let leaf: Vec<Vec<u8>> = (0..5).map(|i| parts(i, 1).remove(0)).collect();
    let s = |l: &[u8], r: &[u8]| step_digest(alg, &[l, r]);
    let b3: Vec<Vec<Vec<u8>>> = leaf[..3].iter().map(|d| vec![d.clone()]).collect();
    assert_eq!(build(alg, &b3).root, s(&s(&leaf[0], &leaf[1]), &leaf[2]));
    let b5: Vec<Vec<Vec<u8>>> = leaf.iter().map(|d| vec![d.clone()]).collect();
    let ab_cd = s(&s(&leaf[0], &leaf[1]), &s(&leaf[2], &leaf[3]));
    assert_eq!(build(alg, &b5).root, s(&ab_cd, &leaf[4]));
}

#[test]
fn digest_list_is_der() {
    // One SingleDigest of a 1-byte digest: 30 len 30 len 04 01 0b 0c <uri> 30 00.
    let uri = DigestAlgorithm::Sha256.uri();
    let der = digest_list_der([(&[11u8][..], uri)]);
    let inner = 3 + 2 + uri.len() + 2;
    let mut expected = vec![
        0x30,
        (inner + 2) as u8,
        0x30,
        inner as u8,
        0x04,
        0x01,
        0x0b,
        0x0c,
        uri.len() as u8,
    ];
    expected.extend_from_slice(uri.as_bytes());
    expected.extend_from_slice(&[0x30, 0x00]);
    assert_eq!(der, expected);
    // Long form lengths.
    let big = vec![7u8; 300];
    let der = digest_list_der([(&big[..], uri)]);
    assert_eq!(&der[..2], &[0x30, 0x82]);
}

#[test]
fn hostile_chains_are_refused_without_panic() {
    let result = build(DigestAlgorithm::Sha512, &[parts(0, 1), parts(1, 1)]).result;
    let looping = br##"<ns2:HashChain xmlns="http://www.w3.org/2000/09/xmldsig#" xmlns:ns2="http://cyber.ee/hashchain"><ns2:HashStep id="STEP0"><ns2:StepRef URI="#STEP0"/></ns2:HashStep></ns2:HashChain>"##.to_vec();
    for bad in [
        looping,
        b"<x/>".to_vec(),
        b"".to_vec(),
        b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>".to_vec(),
    ] {
        let r = |_: &str| Some(Cow::Borrowed(bad.as_slice()));
        assert!(verify(&result, &r, &[], &L).is_err());
    }
}

/// X-Road's codes for a chain that breaks: a changed part is `InvalidHashChain`, a result
/// naming a step the chain does not have is `MalformedHashChain`.
#[test]
fn broken_chains_get_x_roads_codes() {
    let batch: Vec<Vec<Vec<u8>>> = (0..3).map(|i| parts(i, 2)).collect();
    let built = build(DigestAlgorithm::Sha512, &batch);
    let c = built.chains[1].clone();
    let r = |uri: &str| (uri == SIG_HASHCHAIN).then_some(Cow::Borrowed(c.as_slice()));
    let mut changed = batch[1].clone();
    changed[1][0] ^= 1;
    let e = verify(&built.result, &r, &inputs_of(&changed), &L).unwrap_err();
    assert_eq!(e.kind, HashChainErrorKind::InvalidHashChain);
    let result = String::from_utf8(built.result.clone()).unwrap();
    assert!(result.contains("#STEP0"), "{result}");
    let missing = result.replace("#STEP0", "#STEP9");
    let e = verify(missing.as_bytes(), &r, &inputs_of(&batch[1]), &L).unwrap_err();
    assert_eq!(e.kind, HashChainErrorKind::Malformed);
}
