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

/// One body part of a multipart message.
#[derive(Debug)]
pub(crate) struct Part<'a> {
    /// The header lines as received (without line ends), so an echoed attachment keeps its
    /// MIME headers unchanged (PR-MESS §1.6).
    pub raw_headers: Vec<&'a [u8]>,
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

const MAX_PARTS: usize = 1000;
const MAX_PART_HEADERS: usize = 100;

/// Splits a multipart body into its parts (preamble and epilogue dropped). Every part must
/// end at a delimiter; the close delimiter (`--boundary--`) ends the list.
pub(crate) fn parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    if boundary.is_empty() || boundary.len() > 200 {
        return Err("invalid multipart boundary".into());
    }
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();

    // The first delimiter starts the body or a line (anything before it is preamble).
    let mut from = 0;
    let mut pos = loop {
        let p = find(body, delim, from).ok_or("multipart body has no boundary delimiter")?;
        if p == 0 || body[p - 1] == b'\n' {
            break p + delim.len();
        }
        from = p + 1;
    };
    let mut out = Vec::new();
    loop {
        // `pos` is just after a delimiter.
        if body[pos..].starts_with(b"--") {
            break;
        }
        // Transport padding, then the line break ending the delimiter line.
        let line_end = find(body, b"\n", pos).ok_or("truncated multipart body")?;
        if !body[pos..line_end]
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r'))
        {
            return Err("garbage after multipart boundary".into());
        }
        pos = line_end + 1;

        let mut raw_headers = Vec::new();
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let eol = find(body, b"\n", pos).ok_or("truncated multipart part headers")?;
            let raw = &body[pos..eol];
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            pos = eol + 1;
            if raw.is_empty() {
                break;
            }
            let line =
                std::str::from_utf8(raw).map_err(|_| "multipart part header is not UTF-8")?;
            raw_headers.push(raw);
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
            if headers.len() > MAX_PART_HEADERS {
                return Err("too many multipart part headers".into());
            }
        }

        // The line break before the next delimiter belongs to the delimiter (RFC 2046 §5.1.1).
        let mut search = pos;
        let (end, next) = loop {
            let p = find(body, delim, search)
                .ok_or("multipart part is not terminated by a boundary")?;
            if p > pos && body[p - 1] == b'\n' {
                let cut = if p > pos + 1 && body[p - 2] == b'\r' {
                    p - 2
                } else {
                    p - 1
                };
                break (cut, p + delim.len());
            }
            if p == pos {
                break (p, p + delim.len()); // an empty part
            }
            search = p + 1;
        };
        out.push(Part {
            raw_headers,
            headers,
            content: &body[pos..end],
        });
        if out.len() > MAX_PARTS {
            return Err("too many multipart parts".into());
        }
        pos = next;
    }
    if out.is_empty() {
        return Err("multipart body has no parts".into());
    }
    Ok(out)
}

/// A multipart body: the root part with `root_headers`, then `rest` with their header lines as
/// they were received.
pub(crate) fn related(
    boundary: &str,
    root_headers: &[String],
    root: &[u8],
    rest: &[Part<'_>],
) -> Vec<u8> {
    let size = root.len() + rest.iter().map(|p| p.content.len() + 256).sum::<usize>() + 512;
    let mut out = Vec::with_capacity(size);
    let mut part = |headers: &mut dyn Iterator<Item = &[u8]>, content: &[u8]| {
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"\r\n");
        for h in headers {
            out.extend_from_slice(h);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    };
    part(&mut root_headers.iter().map(|h| h.as_bytes()), root);
    for p in rest {
        part(&mut p.raw_headers.iter().copied(), p.content);
    }
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
    out
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
    fn parts_crlf_and_lf() {
        let body = b"preamble\r\n--b1\r\nContent-Type: text/xml;\r\n  charset=UTF-8\r\n\r\n<a/>\r\n--b1\r\nContent-ID: <x>\r\n\r\natt\r\n--b1 \r\n\r\n\r\n--b1--\r\nepilogue";
        let p = parts(body, "b1").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].content, b"<a/>");
        assert_eq!(p[0].header("content-type"), Some("text/xml; charset=UTF-8"));
        assert_eq!(
            p[0].raw_headers,
            vec![&b"Content-Type: text/xml;"[..], b"  charset=UTF-8"]
        );
        assert_eq!(p[1].raw_headers, vec![&b"Content-ID: <x>"[..]]);
        assert_eq!(p[1].content, b"att");
        assert_eq!(p[2].content, b"");
        let body = b"--b1\nContent-Type: text/xml\n\n<a/>\n--b1--\n";
        assert_eq!(parts(body, "b1").unwrap()[0].content, b"<a/>");
    }

    #[test]
    fn parts_errors() {
        for body in [
            &b""[..],
            b"--b1",
            b"--b1--\r\n",
            b"--b1\r\nContent-Type: text/xml\r\n\r\n<a/>",
            b"--b1\r\nContent-Type: text/xml\r\n\r\n<a/>\r\n--b1\r\n\r\nunterminated",
            b"x--b1\r\n\r\n<a/>\r\n--b1--",
            b"--b1\r\nno colon\r\n\r\n<a/>\r\n--b1--",
            b"--b1x\r\n\r\n<a/>\r\n--b1--",
        ] {
            assert!(
                parts(body, "b1").is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(parts(b"--\r\n\r\n", "").is_err());
    }
}
