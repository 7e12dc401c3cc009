//! Just enough MIME for the simulator: `Content-Type` parameters and the first part of a
//! `multipart/related` body (SOAP with Attachments or MTOM, where the envelope comes first).

/// A parsed `Content-Type`: the lower-cased media type and its parameters
/// (names lower-cased, values unquoted).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ContentType {
    pub media_type: String,
    pub params: Vec<(String, String)>,
}

impl ContentType {
    pub fn parse(value: &str) -> ContentType {
        let mut fields = split_params(value).into_iter();
        let media_type = fields
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let params = fields
            .filter_map(|f| {
                let (name, val) = f.split_once('=')?;
                Some((name.trim().to_ascii_lowercase(), unquote(val.trim())))
            })
            .collect();
        ContentType { media_type, params }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits on `;` outside quoted strings (boundaries and `start-info` may contain `;`).
fn split_params(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                cur.push(c);
                quoted = !quoted;
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_string(),
    }
}

/// The first part of a multipart body.
#[derive(Debug)]
pub(crate) struct Part<'a> {
    /// Header names lower-cased, values trimmed (folded lines joined).
    pub headers: Vec<(String, String)>,
    pub content: &'a [u8],
}

impl Part<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Finds the first body part. Only that part is scanned, so large attachments after it cost
/// nothing beyond having been received.
pub(crate) fn first_part<'a>(body: &'a [u8], boundary: &str) -> Result<Part<'a>, String> {
    if boundary.is_empty() || boundary.len() > 200 {
        return Err("invalid multipart boundary".into());
    }
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();

    // The first delimiter starts the body or a line (anything before it is preamble).
    let mut from = 0;
    let start = loop {
        let p = find(body, delim, from).ok_or("multipart body has no boundary delimiter")?;
        if p == 0 || body[p - 1] == b'\n' {
            break p + delim.len();
        }
        from = p + 1;
    };
    let rest = &body[start..];
    if rest.starts_with(b"--") {
        return Err("multipart body has no parts".into());
    }
    // Transport padding, then the line break ending the delimiter line.
    let line_end = find(rest, b"\n", 0).ok_or("truncated multipart body")?;
    if !rest[..line_end]
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r'))
    {
        return Err("garbage after multipart boundary".into());
    }
    let mut pos = line_end + 1;

    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let eol = find(rest, b"\n", pos).ok_or("truncated multipart part headers")?;
        let line = &rest[pos..eol];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos = eol + 1;
        if line.is_empty() {
            break;
        }
        let line = std::str::from_utf8(line).map_err(|_| "multipart part header is not UTF-8")?;
        if line.starts_with([' ', '\t']) {
            // A folded continuation of the previous header.
            match headers.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                None => return Err("malformed multipart part header".into()),
            }
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or("malformed multipart part header")?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        if headers.len() > 100 {
            return Err("too many multipart part headers".into());
        }
    }

    // The line break before the next delimiter belongs to the delimiter (RFC 2046 §5.1.1).
    let mut search = pos;
    let end = loop {
        let p =
            find(rest, delim, search).ok_or("multipart part is not terminated by a boundary")?;
        if p > pos && rest[p - 1] == b'\n' {
            let cut = if p > pos + 1 && rest[p - 2] == b'\r' {
                p - 2
            } else {
                p - 1
            };
            break cut;
        }
        if p == pos {
            break p; // an empty part
        }
        search = p + 1;
    };
    Ok(Part {
        headers,
        content: &rest[pos..end],
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while i + needle.len() <= hay.len() {
        let off = hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        i += off;
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_params() {
        let ct = ContentType::parse(
            r#"Multipart/Related; type="application/xop+xml"; boundary="a;b=c"; start="<root>"; charset=UTF-8"#,
        );
        assert_eq!(ct.media_type, "multipart/related");
        assert_eq!(ct.param("boundary"), Some("a;b=c"));
        assert_eq!(ct.param("start"), Some("<root>"));
        assert_eq!(ct.param("charset"), Some("UTF-8"));
        assert_eq!(ContentType::parse("").media_type, "");
    }

    #[test]
    fn first_part_crlf_and_lf() {
        let body = b"preamble\r\n--b1\r\nContent-Type: text/xml;\r\n  charset=UTF-8\r\n\r\n<a/>\r\n--b1\r\nX: y\r\n\r\natt\r\n--b1--\r\n";
        let p = first_part(body, "b1").unwrap();
        assert_eq!(p.content, b"<a/>");
        assert_eq!(p.header("content-type"), Some("text/xml; charset=UTF-8"));
        let body = b"--b1\nContent-Type: text/xml\n\n<a/>\n--b1--\n";
        assert_eq!(first_part(body, "b1").unwrap().content, b"<a/>");
    }

    #[test]
    fn first_part_errors() {
        for body in [
            &b""[..],
            b"--b1",
            b"--b1--\r\n",
            b"--b1\r\nContent-Type: text/xml\r\n\r\n<a/>",
            b"x--b1\r\n\r\n<a/>\r\n--b1--",
            b"--b1\r\nno colon\r\n\r\n<a/>\r\n--b1--",
        ] {
            assert!(
                first_part(body, "b1").is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(first_part(b"--\r\n\r\n", "").is_err());
    }
}
