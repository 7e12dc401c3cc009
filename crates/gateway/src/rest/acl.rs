//! REST endpoint access rules (reference §8.3): a right is given per endpoint, a method (`*` for
//! any) and a path glob (`**` for any path, `*` for one segment's worth), matched against the
//! percent-decoded, normalised request path. A path that would climb with `..` is refused.

use serde::Deserialize;

use super::target::decode_segment;
use super::RestError;
use brama_xroad::error::ErrorCode;

/// One endpoint of a REST service.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// `GET`, `POST`, ... or `*`.
    pub method: String,
    /// A glob over the path after the service code: `/declarations/*`, `**`.
    pub path: String,
}

impl Endpoint {
    /// The base endpoint every service has: any method, any path.
    pub fn any() -> Endpoint {
        Endpoint {
            method: "*".into(),
            path: "**".into(),
        }
    }

    pub(crate) fn is_any(&self) -> bool {
        self.method == "*" && self.path == "**"
    }

    /// Whether a request (method, normalised path) falls under this endpoint; SOAP requests
    /// (no method or path) only under the base endpoint.
    pub fn matches(&self, method: Option<&str>, path: Option<&str>) -> bool {
        let method_ok =
            self.method == "*" || method.is_some_and(|m| m.eq_ignore_ascii_case(&self.method));
        let path_ok = self.path == "**" || path.is_some_and(|p| glob(&self.path, p));
        method_ok && path_ok
    }

    /// Checks a configured endpoint.
    pub fn validate(&self) -> Result<(), String> {
        if self.method != "*" && !super::METHODS.contains(&self.method.as_str()) {
            return Err(format!(
                "method '{}' is not one of * {}",
                self.method,
                super::METHODS.join(" ")
            ));
        }
        if self.path != "**" && !self.path.starts_with('/') {
            return Err(format!("path '{}' must be ** or start with /", self.path));
        }
        if self.path.split('/').any(|s| s == "..") {
            return Err(format!("path '{}' must not contain ..", self.path));
        }
        Ok(())
    }
}

/// The path the access rules see: percent-decoded, `.` segments dropped, never empty. Any `..`
/// segment is refused rather than resolved.
pub fn normalize(raw: &str) -> Result<String, RestError> {
    let mut out = String::with_capacity(raw.len() + 1);
    for seg in raw.split('/').skip(1) {
        let seg = decode_segment(seg)?;
        if seg.split('/').any(|s| s == "..") {
            return Err(RestError::new(
                ErrorCode::InvalidRequest,
                format!("Request path '{raw}' contains '..'"),
            ));
        }
        if seg == "." {
            continue;
        }
        out.push('/');
        out.push_str(&seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Glob match: `**` matches anything, `*` anything but `/`, other characters themselves.
/// Linear in pattern × path (no backtracking blow-up on hostile paths).
pub fn glob(pattern: &str, path: &str) -> bool {
    #[derive(Clone, Copy)]
    enum Tok {
        Lit(u8),
        Star,
        DoubleStar,
    }
    let p = pattern.as_bytes();
    let mut toks = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'*' {
            if p.get(i + 1) == Some(&b'*') {
                toks.push(Tok::DoubleStar);
                i += 2;
            } else {
                toks.push(Tok::Star);
                i += 1;
            }
        } else {
            toks.push(Tok::Lit(p[i]));
            i += 1;
        }
    }
    let s = path.as_bytes();
    // reach[j]: the tokens so far can consume exactly s[..j].
    let mut reach = vec![false; s.len() + 1];
    reach[0] = true;
    for t in toks {
        let mut next = vec![false; s.len() + 1];
        match t {
            Tok::Lit(c) => {
                for j in 0..s.len() {
                    if reach[j] && s[j] == c {
                        next[j + 1] = true;
                    }
                }
            }
            Tok::Star | Tok::DoubleStar => {
                let crosses = matches!(t, Tok::DoubleStar);
                let mut on = false;
                for j in 0..=s.len() {
                    on = reach[j] || (on && j > 0 && (crosses || s[j - 1] != b'/'));
                    next[j] = on;
                }
            }
        }
        reach = next;
    }
    reach[s.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("/pets/*", "/pets/7"));
        assert!(!glob("/pets/*", "/pets/7/photos"));
        assert!(glob("/pets/**", "/pets/7/photos"));
        assert!(glob("/pets/*/photos", "/pets/7/photos"));
        assert!(glob("/", "/"));
        assert!(!glob("/pets", "/pets/"));
        assert!(glob("/*", "/"));
        assert!(glob("**", "/anything/at/all"));
        let hostile = "/a".repeat(5000);
        assert!(!glob("/*/*/*/*/*/*/*/*/*/*/*/*b", &hostile));
    }

    #[test]
    fn normalises_and_refuses_climbing() {
        assert_eq!(normalize("").unwrap(), "/");
        assert_eq!(normalize("/a/./b%20c").unwrap(), "/a/b c");
        assert!(normalize("/a/../b").is_err());
        assert!(normalize("/a/%2e%2e/b").is_err());
        assert!(normalize("/a/x%2F..%2Fy").is_err());
    }

    #[test]
    fn endpoints_match_method_and_path() {
        let e = Endpoint {
            method: "GET".into(),
            path: "/declarations/*".into(),
        };
        assert!(e.matches(Some("get"), Some("/declarations/1")));
        assert!(!e.matches(Some("POST"), Some("/declarations/1")));
        assert!(!e.matches(None, None));
        assert!(Endpoint::any().matches(None, None));
        assert!(e.validate().is_ok());
        assert!(Endpoint {
            method: "BREW".into(),
            path: "**".into()
        }
        .validate()
        .is_err());
    }
}
