use super::*;

const DECLARATIONS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../openapi/ehealth-declarations.yaml"
));

fn ep(method: &str, path: &str) -> Endpoint {
    Endpoint {
        method: method.into(),
        path: path.into(),
    }
}

#[test]
fn the_ehealth_declarations_description() {
    let d = parse(DECLARATIONS).unwrap();
    assert!(d.title.starts_with("ЕСОЗ"), "{}", d.title);
    assert_eq!(d.version, "v1");
    assert_eq!(d.servers, ["http://127.0.0.1:8090/ehealth/declarations"]);
    assert_eq!(d.endpoints, [ep("GET", "/"), ep("GET", "/*")]);
}

#[test]
fn json_with_every_method_and_templates() {
    let json = br#"{
      "openapi": "3.1.0",
      "info": {"title": "Pets", "version": "1.2.3"},
      "servers": [{"url": "https://pets.example/v1"}, {"url": "/relative"}],
      "paths": {
        "/pets": {"get": {}, "post": {}, "summary": "not a method", "parameters": []},
        "/pets/{petId}": {"put": {}, "delete": {}, "patch": {}, "options": {}, "head": {}, "trace": {}},
        "/pets/{petId}/photos/{photoId}.jpg": {"get": {"responses": {"200": {"description": "x"}}}},
        "x-internal": {"get": {}}
      },
      "components": {"schemas": {"Pet": {"type": "object", "properties": {"a": {"type": "string"}}}}}
    }"#;
    let d = parse(json).unwrap();
    assert_eq!((d.title.as_str(), d.version.as_str()), ("Pets", "1.2.3"));
    assert_eq!(d.servers, ["https://pets.example/v1", "/relative"]);
    assert_eq!(
        d.endpoints,
        [
            ep("GET", "/pets"),
            ep("POST", "/pets"),
            ep("PUT", "/pets/*"),
            ep("DELETE", "/pets/*"),
            ep("PATCH", "/pets/*"),
            ep("OPTIONS", "/pets/*"),
            ep("HEAD", "/pets/*"),
            ep("TRACE", "/pets/*"),
            ep("GET", "/pets/*/photos/*"),
        ]
    );
}

#[test]
fn yaml_with_anchors_numbers_and_no_paths() {
    let yaml = b"
openapi: 3.0.0
info: {title: Minimal, version: 2.5}
x-common: &common {responses: {'200': {description: ok}}}
paths:
  /a: {get: *common, post: *common}
";
    let d = parse(yaml).unwrap();
    // An unquoted `2.5` is a YAML number; its text is the version the author wrote.
    assert_eq!(d.version, "2.5");
    assert_eq!(d.endpoints, [ep("GET", "/a"), ep("POST", "/a")]);
    assert!(d.servers.is_empty());
    let bare = parse(b"openapi: 3.0.3\ninfo:\n  title: T\n  version: '1'\n").unwrap();
    assert!(bare.endpoints.is_empty());
}

#[test]
fn endpoint_globs() {
    assert_eq!(endpoint_glob("/").unwrap(), "/");
    assert_eq!(endpoint_glob("/a/{b}/c").unwrap(), "/a/*/c");
    assert_eq!(endpoint_glob("/{a}{b}").unwrap(), "/*");
    assert_eq!(endpoint_glob("/files/{name}.json").unwrap(), "/files/*");
    for bad in ["a/b", "/a/{b", "/a/b}", "/a/{{b}}", ""] {
        let e = endpoint_glob(bad).unwrap_err();
        assert!(e.to_string().contains("paths."), "{bad}: {e}");
    }
}

#[test]
fn swagger_2_is_refused_with_a_clear_message() {
    for doc in [
        &br#"{"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {}}"#[..],
        b"swagger: '2.0'\ninfo: {title: t, version: '1'}\npaths: {}\n",
    ] {
        let e = parse(doc).unwrap_err();
        assert!(matches!(e, OpenApiError::Swagger2 { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("Swagger 2.0") && msg.contains("OpenAPI 3"),
            "{msg}"
        );
    }
}

#[test]
fn wrong_versions_and_missing_fields_are_named() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"openapi: 3.0\ninfo: {title: t, version: '1'}\n",
            "'openapi'",
        ),
        (
            b"openapi: '2.0'\ninfo: {title: t, version: '1'}\n",
            "'openapi'",
        ),
        (
            b"openapi: '3.x'\ninfo: {title: t, version: '1'}\n",
            "'openapi'",
        ),
        (
            b"openapi: '4.0.0'\ninfo: {title: t, version: '1'}\n",
            "'openapi'",
        ),
        (b"info: {title: t, version: '1'}\n", "'openapi' is missing"),
        (b"openapi: 3.0.3\n", "'info' is missing"),
        (
            b"openapi: 3.0.3\ninfo: {version: '1'}\n",
            "'info.title' is missing",
        ),
        (
            b"openapi: 3.0.3\ninfo: {title: t}\n",
            "'info.version' is missing",
        ),
        (
            b"openapi: 3.0.3\ninfo: {title: [a], version: '1'}\n",
            "'info.title'",
        ),
        (
            b"openapi: 3.0.3\ninfo: {title: t, version: '1'}\nservers: [{description: x}]\n",
            "'servers[0].url' is missing",
        ),
        (
            b"openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: [a]\n",
            "'paths'",
        ),
        (
            b"openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {pets: {get: {}}}\n",
            "'paths.pets'",
        ),
        (b"- just\n- a list\n", "'the document'"),
    ];
    for (doc, expected) in cases {
        let e = parse(doc).unwrap_err().to_string();
        assert!(
            e.contains(expected),
            "{}: {e}",
            String::from_utf8_lossy(doc)
        );
    }
}

#[test]
fn garbage_is_refused() {
    for doc in [
        &b""[..],
        b"\x00\xff\xfe",
        b"{\"openapi\": \"3.0.3\",",
        b"{\"openapi\": \"3.0.3\"} trailing",
        b"key: [unclosed",
        b"a: 1\n---\nb: 2\n",
        b"openapi: !custom 3.0.3\n",
        b"just a sentence",
    ] {
        assert!(parse(doc).is_err(), "{}", String::from_utf8_lossy(doc));
    }
    let e = parse(b"{\"openapi\": ").unwrap_err();
    assert!(e.to_string().contains("not valid JSON"), "{e}");
    let e = parse(b"a: [b\n").unwrap_err();
    assert!(e.to_string().contains("not valid YAML"), "{e}");
}

#[test]
fn size_limits() {
    let big = vec![b' '; MAX_INPUT + 1];
    assert_eq!(
        parse(&big).unwrap_err(),
        OpenApiError::TooLarge {
            size: MAX_INPUT + 1
        }
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse(deep.as_bytes()).is_err());
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse(deep.as_bytes()).is_err());
}

#[test]
fn yaml_alias_bombs_stop_early() {
    // Nested: each level doubles ten times over (the "billion laughs").
    let mut nested = String::from("openapi: 3.0.3\ninfo: {title: t, version: '1'}\na0: &a0 [x]\n");
    for i in 1..=12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        nested += &format!("a{i}: &a{i} [{refs}]\n");
    }
    // Wide: one large anchored list, aliased many times (few alias jumps, each expanding a lot).
    let mut wide = String::from("openapi: 3.0.3\ninfo: {title: t, version: '1'}\nbig: &big\n");
    for _ in 0..100_000 {
        wide += "  - xxxxxxxxxxxxxxxx\n";
    }
    wide += "copies:\n";
    for _ in 0..100_000 {
        wide += "  - *big\n";
    }
    assert!(wide.len() < MAX_INPUT, "{}", wide.len());
    for doc in [nested, wide] {
        let started = std::time::Instant::now();
        let e = parse(doc.as_bytes()).unwrap_err();
        assert!(
            matches!(e, OpenApiError::TooComplex | OpenApiError::Syntax { .. }),
            "{e:?}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}

#[test]
fn large_descriptions_parse_up_to_the_endpoint_limit() {
    let doc = |n: usize| {
        let paths: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#""/items/{i}/{{id}}": {{"get": {{"responses": {{"200": {{"description": "an item with a longer description, as real ones have"}}}}}}}}"#
                )
            })
            .collect();
        format!(
            r#"{{"openapi": "3.0.3", "info": {{"title": "t", "version": "1"}}, "paths": {{{}}}}}"#,
            paths.join(",")
        )
    };
    let big = doc(MAX_ENDPOINTS);
    assert!(big.len() > 1024 * 1024, "{}", big.len());
    let d = parse(big.as_bytes()).unwrap();
    assert_eq!(d.endpoints.len(), MAX_ENDPOINTS);
    assert_eq!(d.endpoints[7].path, "/items/7/*");
    assert_eq!(
        parse(doc(MAX_ENDPOINTS + 1).as_bytes()).unwrap_err(),
        OpenApiError::TooManyEndpoints
    );
}

#[test]
fn truncated_and_corrupted_descriptions_never_panic() {
    let json = br#"{"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {"/a/{b}": {"get": {}}}}"#;
    for doc in [DECLARATIONS, &json[..]] {
        for cut in (0..doc.len()).step_by(7) {
            let _ = parse(&doc[..cut]);
            let mut flipped = doc.to_vec();
            flipped[cut] ^= 0x20;
            let _ = parse(&flipped);
        }
    }
}
