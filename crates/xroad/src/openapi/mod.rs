//! OpenAPI 3 descriptions of REST services, read into what X-Road needs of them: the title and
//! version, the servers, and the endpoints (method and path) for access rights.
//!
//! X-Road (REST r1) grants access per endpoint: a method and a path glob in which `*` stands for
//! one path segment. An OpenAPI path template segment (`/declarations/{declarationId}`) becomes
//! such a `*` (`/declarations/*`).
//!
//! Input is untrusted (a provider's description, a fuzz target): its size is bounded before
//! parsing, JSON and YAML nesting is bounded by the parsers (128 levels), and the whole document,
//! YAML alias expansions included, is read against a node and text budget (`tree`).

mod tree;

#[cfg(test)]
mod tests;

use serde::de::DeserializeSeed;

use self::tree::{Budget, Node, Seed};

/// Largest description accepted, in bytes.
pub(crate) const MAX_INPUT: usize = 4 * 1024 * 1024;
/// Most endpoints (method and path pairs) one description may declare.
pub const MAX_ENDPOINTS: usize = 10_000;

/// The HTTP methods an OpenAPI path item may describe, in the order X-Road lists them.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One operation of the description, as an X-Road endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Upper case: `GET`, `POST`, ….
    pub method: String,
    /// The path with every templated segment (`{param}`) replaced by `*`.
    pub path: String,
}

/// What brama uses of an OpenAPI description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    /// `info.title`.
    pub title: String,
    /// `info.version` (the API's version, not the OpenAPI version).
    pub version: String,
    /// In document order: paths as written, methods in each path item as written.
    pub endpoints: Vec<Endpoint>,
    /// `servers[].url` as written (relative URLs and `{variables}` included).
    pub servers: Vec<String>,
}

/// Why a description was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenApiError {
    #[error("the description is {size} bytes, more than the {MAX_INPUT}-byte limit")]
    TooLarge { size: usize },
    #[error("the description is not valid {format}: {message}")]
    Syntax {
        format: &'static str,
        message: String,
    },
    #[error("the description expands beyond the size limit (YAML aliases?)")]
    TooComplex,
    #[error("'swagger: {version}' is Swagger 2.0; only OpenAPI 3.x descriptions are accepted (convert it to OpenAPI 3)")]
    Swagger2 { version: String },
    #[error("'{field}' is missing")]
    Missing { field: String },
    #[error("'{field}' is {problem}")]
    Invalid { field: String, problem: String },
    #[error("the description declares more than {MAX_ENDPOINTS} endpoints")]
    TooManyEndpoints,
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> OpenApiError {
    OpenApiError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Reads an OpenAPI 3.x description, JSON (first byte `{`) or YAML.
pub fn parse(bytes: &[u8]) -> Result<Description, OpenApiError> {
    if bytes.len() > MAX_INPUT {
        return Err(OpenApiError::TooLarge { size: bytes.len() });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let doc = read_tree(bytes)?;
    describe(&doc)
}

fn read_tree(bytes: &[u8]) -> Result<Node, OpenApiError> {
    let budget = Budget::new();
    let seed = Seed {
        budget: &budget,
        depth: 0,
    };
    let json = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let read = if json {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        seed.deserialize(&mut de)
            .and_then(|n| de.end().map(|()| n))
            .map_err(|e| ("JSON", e.to_string()))
    } else {
        // One document only: serde_norway refuses a stream of several.
        seed.deserialize(serde_norway::Deserializer::from_slice(bytes))
            .map_err(|e| ("YAML", e.to_string()))
    };
    read.map_err(|(format, message)| {
        if budget.exceeded() {
            OpenApiError::TooComplex
        } else {
            OpenApiError::Syntax { format, message }
        }
    })
}

fn describe(doc: &Node) -> Result<Description, OpenApiError> {
    if !matches!(doc, Node::Map(_)) {
        return Err(invalid(
            "the document",
            format!("{}, not a mapping", doc.kind()),
        ));
    }
    if let Some(v) = doc.get("swagger") {
        return Err(OpenApiError::Swagger2 {
            version: scalar_text(v),
        });
    }
    match doc.get("openapi") {
        None => {
            return Err(OpenApiError::Missing {
                field: "openapi".into(),
            })
        }
        Some(Node::Str(v)) if is_openapi3(v) => {}
        Some(Node::Str(v)) => {
            return Err(invalid(
                "openapi",
                format!("'{v}', not an OpenAPI 3.x version (3.0.3, 3.1.0, …)"),
            ))
        }
        Some(other) => {
            return Err(invalid(
                "openapi",
                format!(
                    "{} ({}); it must be a string such as \"3.0.3\" (quote it in YAML)",
                    other.kind(),
                    scalar_text(other)
                ),
            ))
        }
    }
    let info = doc.get("info").ok_or(OpenApiError::Missing {
        field: "info".into(),
    })?;
    let title = text(info, "info", "title")?;
    let version = text(info, "info", "version")?;
    Ok(Description {
        title,
        version,
        endpoints: endpoints(doc.get("paths"))?,
        servers: servers(doc.get("servers"))?,
    })
}

/// `3.` followed by a minor version and optionally a patch version.
fn is_openapi3(v: &str) -> bool {
    let Some(rest) = v.strip_prefix("3.") else {
        return false;
    };
    let mut parts = rest.splitn(2, '.');
    let minor = parts.next().unwrap_or("");
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    numeric(minor) && parts.next().is_none_or(|patch| !patch.is_empty())
}

/// The string value of `parent.key`.
fn text(parent: &Node, parent_name: &str, key: &str) -> Result<String, OpenApiError> {
    let field = format!("{parent_name}.{key}");
    if !matches!(parent, Node::Map(_)) {
        return Err(invalid(
            parent_name,
            format!("{}, not a mapping", parent.kind()),
        ));
    }
    match parent.get(key) {
        None => Err(OpenApiError::Missing { field }),
        Some(Node::Str(s)) => Ok(s.clone()),
        // A YAML `version: 1.0` is a number; its text is what the author meant.
        Some(Node::Scalar(s)) => Ok(s.clone()),
        Some(other) => Err(invalid(field, format!("{}, not a string", other.kind()))),
    }
}

fn scalar_text(n: &Node) -> String {
    match n {
        Node::Str(s) | Node::Scalar(s) => s.clone(),
        other => other.kind().to_string(),
    }
}

fn servers(node: Option<&Node>) -> Result<Vec<String>, OpenApiError> {
    let items = match node {
        None | Some(Node::Null) => return Ok(Vec::new()),
        Some(Node::Seq(items)) => items,
        Some(other) => return Err(invalid("servers", format!("{}, not a list", other.kind()))),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, s)| text(s, &format!("servers[{i}]"), "url"))
        .collect()
}

fn endpoints(paths: Option<&Node>) -> Result<Vec<Endpoint>, OpenApiError> {
    let entries = match paths {
        // `paths` may be absent in 3.1 (webhooks only) and empty in 3.0.
        None | Some(Node::Null) => return Ok(Vec::new()),
        Some(Node::Map(entries)) => entries,
        Some(other) => return Err(invalid("paths", format!("{}, not a mapping", other.kind()))),
    };
    let mut out = Vec::new();
    for (key, item) in entries {
        let Node::Str(path) = key else {
            return Err(invalid(
                "paths",
                format!("has a key that is {}", key.kind()),
            ));
        };
        if path.starts_with("x-") {
            continue; // a specification extension, not a path
        }
        let glob = endpoint_glob(path)?;
        let methods = match item {
            Node::Map(m) => m,
            Node::Null => continue,
            other => {
                return Err(invalid(
                    format!("paths.{path}"),
                    format!("{}, not a path item", other.kind()),
                ))
            }
        };
        for (method, _) in methods {
            let Node::Str(method) = method else { continue };
            if METHODS.contains(&method.as_str()) {
                if out.len() == MAX_ENDPOINTS {
                    return Err(OpenApiError::TooManyEndpoints);
                }
                out.push(Endpoint {
                    method: method.to_ascii_uppercase(),
                    path: glob.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// The X-Road endpoint path of an OpenAPI path: every segment holding a template (`{id}`,
/// `{id}.json`) matches any one segment, so it becomes `*`.
pub(crate) fn endpoint_glob(path: &str) -> Result<String, OpenApiError> {
    let field = || format!("paths.{path}");
    if !path.starts_with('/') {
        return Err(invalid(field(), "a path that does not start with '/'"));
    }
    let mut segments = Vec::new();
    for segment in path.split('/') {
        let mut open = false;
        let mut templated = false;
        for c in segment.chars() {
            match (c, open) {
                ('{', false) => open = true,
                ('}', true) => {
                    open = false;
                    templated = true;
                }
                ('{', true) | ('}', false) => {
                    return Err(invalid(field(), "a path with unbalanced '{' and '}'"))
                }
                _ => {}
            }
        }
        if open {
            return Err(invalid(field(), "a path with an unclosed '{'"));
        }
        segments.push(if templated { "*" } else { segment });
    }
    Ok(segments.join("/"))
}
