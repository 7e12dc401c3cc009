//! Content-Type parsing and multipart (MIME) reading and writing.
//!
//! Parts are slices of the received buffer (no copies), and each part keeps its header block as
//! received: X-Road forwards attachment MIME headers unchanged. Both CRLF and bare LF line ends are
//! accepted on input; output always uses CRLF.

use bytes::{BufMut, Bytes, BytesMut};

use super::MessageError;
use crate::error::ErrorCode;

/// A parsed `Content-Type` value: lower-case type and its parameters (values unquoted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentType {
    pub mime: String,
    pub params: Vec<(String, String)>,
}

impl ContentType {
    pub fn parse(value: &str) -> Result<Self, MessageError> {
        let mut it = split_params(value).into_iter();
        let mime = it.next().unwrap_or_default().trim().to_ascii_lowercase();
        if mime.is_empty() || !mime.contains('/') {
            return Err(MessageError::new(
                ErrorCode::InvalidContentType,
                format!("Invalid content type '{value}'"),
            ));
        }
        let params = it
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                Some((k.trim().to_ascii_lowercase(), v.to_string()))
            })
            .collect();
        Ok(ContentType { mime, params })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn charset(&self) -> Option<&str> {
        self.param("charset")
    }

    pub fn is_multipart(&self) -> bool {
        self.mime.starts_with("multipart/")
    }
}

/// Splits on `;` outside quotes.
fn split_params(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// One MIME part: its header block as received and its body, both slices of the message.
#[derive(Clone, Debug)]
pub struct Part {
    /// The header lines exactly as received (without the blank line that ends them).
    pub raw_headers: Bytes,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Part {
    /// First header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> Result<ContentType, MessageError> {
        // MIME's default when a part names none.
        ContentType::parse(self.header("content-type").unwrap_or("text/plain"))
    }

    pub fn content_id(&self) -> Option<&str> {
        self.header("content-id")
            .map(|v| v.trim().trim_start_matches('<').trim_end_matches('>'))
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() || needle.is_empty() {
        return None;
    }
    // memmem: boundaries are searched in every part of every message (signatures made the
    // bodies big enough for a naive window scan to show in profiles).
    memchr::memmem::find(&haystack[from..], needle).map(|p| p + from)
}

fn malformed(msg: impl Into<String>) -> MessageError {
    MessageError::new(ErrorCode::InvalidMessage, msg)
}

/// Splits a multipart body into its parts. At most `max_parts` parts are accepted.
pub fn parse_multipart(
    body: &Bytes,
    boundary: &str,
    max_parts: usize,
) -> Result<Vec<Part>, MessageError> {
    if boundary.is_empty() || boundary.len() > 200 {
        return Err(malformed("multipart boundary missing or too long"));
    }
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    // The first delimiter may open the body or follow a preamble line.
    let mut pos = if body.starts_with(delim) {
        0
    } else {
        let nl = find(body, &[b"\n", delim].concat(), 0)
            .ok_or_else(|| malformed("multipart body has no opening boundary"))?;
        nl + 1
    };
    let mut parts = Vec::new();
    loop {
        pos += delim.len();
        if body[pos..].starts_with(b"--") {
            break; // closing delimiter; the epilogue is ignored
        }
        // Rest of the delimiter line (transport padding), then the line end.
        let line_end =
            find(body, b"\n", pos).ok_or_else(|| malformed("truncated multipart part"))?;
        if !body[pos..line_end].iter().all(|b| b" \t\r".contains(b)) {
            return Err(malformed("garbage after multipart boundary"));
        }
        let start = line_end + 1;
        let next = find(body, &[b"\n", delim].concat(), start.saturating_sub(1))
            .ok_or_else(|| malformed("multipart body is not terminated by its closing boundary"))?;
        // The line break before the delimiter belongs to the delimiter.
        let end = if next > start && body[next - 1] == b'\r' {
            next - 1
        } else {
            next
        };
        parts.push(parse_part(body.slice(start..end.max(start)))?);
        if parts.len() > max_parts {
            return Err(malformed(format!("more than {max_parts} multipart parts")));
        }
        pos = next + 1;
    }
    Ok(parts)
}

fn parse_part(raw: Bytes) -> Result<Part, MessageError> {
    // Headers end at the first empty line; a part may also have no headers at all.
    let (header_end, body_start) = if raw.starts_with(b"\r\n") {
        (0, 2)
    } else if raw.starts_with(b"\n") {
        (0, 1)
    } else if let Some(i) =
        find(&raw, b"\r\n\r\n", 0).filter(|&i| find(&raw, b"\n\n", 0).is_none_or(|j| i < j))
    {
        (i, i + 4)
    } else if let Some(i) = find(&raw, b"\n\n", 0) {
        (i, i + 2)
    } else {
        (raw.len(), raw.len())
    };
    let raw_headers = raw.slice(..header_end);
    let text =
        std::str::from_utf8(&raw_headers).map_err(|_| malformed("part headers are not UTF-8"))?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Folded continuation of the previous header.
            let last = headers
                .last_mut()
                .ok_or_else(|| malformed("part header starts folded"))?;
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| malformed(format!("invalid part header line '{line}'")))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(Part {
        raw_headers,
        headers,
        body: raw.slice(body_start..),
    })
}

/// A random boundary with X-Road's prefix style (`xtop…`, `xatt…`).
pub fn new_boundary(prefix: &str) -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("{prefix}{n:016x}")
}

/// Writes a multipart body with CRLF line ends.
pub struct MultipartWriter {
    boundary: String,
    out: BytesMut,
}

impl MultipartWriter {
    pub fn new(boundary: String, capacity: usize) -> Self {
        MultipartWriter {
            boundary,
            out: BytesMut::with_capacity(capacity + 256),
        }
    }

    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    fn delimiter(&mut self) {
        self.out.put_slice(b"--");
        self.out.put_slice(self.boundary.as_bytes());
        self.out.put_slice(b"\r\n");
    }

    /// A part with one `Content-Type` header.
    pub fn part(&mut self, content_type: &str, body: &[u8]) {
        self.delimiter();
        self.out.put_slice(b"Content-Type: ");
        self.out.put_slice(content_type.as_bytes());
        self.out.put_slice(b"\r\n\r\n");
        self.out.put_slice(body);
        self.out.put_slice(b"\r\n");
    }

    /// A part whose header block is copied verbatim (attachments keep their MIME headers).
    pub fn raw_part(&mut self, raw_headers: &[u8], body: &[u8]) {
        self.delimiter();
        for line in raw_headers.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                self.out.put_slice(line);
                self.out.put_slice(b"\r\n");
            }
        }
        self.out.put_slice(b"\r\n");
        self.out.put_slice(body);
        self.out.put_slice(b"\r\n");
    }

    /// Opens a part whose body the caller streams after [`take`](Self::take); close it with
    /// [`close_part`](Self::close_part).
    pub fn open_part(&mut self, content_type: &str) {
        self.delimiter();
        self.out.put_slice(b"Content-Type: ");
        self.out.put_slice(content_type.as_bytes());
        self.out.put_slice(b"\r\n\r\n");
    }

    pub fn close_part(&mut self) {
        self.out.put_slice(b"\r\n");
    }

    /// What has been written so far (the writer goes on from empty).
    pub fn take(&mut self) -> Bytes {
        self.out.split().freeze()
    }

    pub fn finish(mut self) -> Bytes {
        self.out.put_slice(b"--");
        self.out.put_slice(self.boundary.as_bytes());
        self.out.put_slice(b"--\r\n");
        self.out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_params() {
        let ct = ContentType::parse(
            "multipart/related; type=\"application/xop+xml\"; boundary=\"a;b\"; start=\"<root>\"",
        )
        .unwrap();
        assert_eq!(ct.mime, "multipart/related");
        assert_eq!(ct.param("boundary"), Some("a;b"));
        assert_eq!(ct.param("start"), Some("<root>"));
        assert!(ContentType::parse("garbage").is_err());
    }

    #[test]
    fn round_trip_crlf_and_lf() {
        let mut w = MultipartWriter::new("xtop1".into(), 0);
        w.part("text/xml", b"<a/>");
        w.raw_part(b"Content-Type: text/plain\nX-Custom: 1", b"hello\r\nworld");
        let bytes = w.finish();
        let parts = parse_multipart(&bytes, "xtop1", 10).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(&parts[0].body[..], b"<a/>");
        assert_eq!(parts[1].header("x-custom"), Some("1"));
        assert_eq!(&parts[1].body[..], b"hello\r\nworld");

        let lf = Bytes::from_static(b"--b\nContent-Type: text/xml\n\n<x/>\n--b\n\nraw\n--b--\n");
        let parts = parse_multipart(&lf, "b", 10).unwrap();
        assert_eq!(&parts[0].body[..], b"<x/>");
        assert_eq!(&parts[1].body[..], b"raw");
        assert_eq!(parts[1].content_type().unwrap().mime, "text/plain");
    }

    #[test]
    fn refuses_broken_multipart() {
        for bad in [
            &b"no boundary here"[..],
            b"--b\nContent-Type: text/xml\n\n<x/>",
            b"--bxx",
        ] {
            assert!(parse_multipart(&Bytes::copy_from_slice(bad), "b", 10).is_err());
        }
        let many = Bytes::from("--b\n\nx\n".repeat(20) + "--b--");
        assert!(parse_multipart(&many, "b", 5).is_err());
    }
}
