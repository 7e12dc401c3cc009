//! The little DER brama needs, in one place: TLVs for hash-chain digest lists and OCSP, public keys
//! from PKCS#11 attributes, and ECDSA signatures between the raw r‖s tokens give and DER.

/// Appends one TLV to `out`.
pub fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_len(out, content.len());
    out.extend_from_slice(content);
}

/// Appends the DER length octets of `len`.
pub(crate) fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// One TLV as a new buffer.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    push_tlv(&mut out, tag, content);
    out
}

// What PKCS#11 tokens need: public keys from their attributes, ECDSA signatures between the
// raw r‖s tokens give and the DER X.509 wants.

pub(crate) const OID_RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
pub(crate) const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// secp256r1 (1.2.840.10045.3.1.7), also the `CKA_EC_PARAMS` value for P-256.
pub(crate) const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// An INTEGER from an unsigned big-endian number.
pub fn der_uint(value: &[u8]) -> Vec<u8> {
    let skip = value.iter().take_while(|b| **b == 0).count();
    let value = &value[skip..];
    match value.first() {
        None => tlv(0x02, &[0]),
        Some(b) if b & 0x80 != 0 => tlv(0x02, &[&[0], value].concat()),
        Some(_) => tlv(0x02, value),
    }
}

/// Splits one TLV off `input`: (tag, content, rest).
pub(crate) fn der_read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// ECDSA-Sig-Value DER → r‖s with `half`-byte halves.
pub(crate) fn ecdsa_der_to_raw(signature: &[u8], half: usize) -> Option<Vec<u8>> {
    let (0x30, body, []) = der_read(signature)? else {
        return None;
    };
    let (0x02, r, body) = der_read(body)? else {
        return None;
    };
    let (0x02, s, []) = der_read(body)? else {
        return None;
    };
    let mut out = Vec::with_capacity(2 * half);
    for int in [r, s] {
        let skip = int.iter().take_while(|b| **b == 0).count();
        let int = &int[skip..];
        if int.len() > half {
            return None;
        }
        out.resize(out.len() + half - int.len(), 0);
        out.extend_from_slice(int);
    }
    Some(out)
}

/// r‖s → ECDSA-Sig-Value DER.
pub(crate) fn ecdsa_raw_to_der(signature: &[u8]) -> Vec<u8> {
    let (r, s) = signature.split_at(signature.len() / 2);
    tlv(0x30, &[der_uint(r), der_uint(s)].concat())
}

/// The uncompressed point from `CKA_EC_POINT`: PKCS#11 says DER OCTET STRING (SoftHSM2 does
/// that), some modules return the bare point.
pub(crate) fn ec_point(value: &[u8]) -> Option<Vec<u8>> {
    if value.len() == 65 && value[0] == 0x04 {
        return Some(value.to_vec());
    }
    match der_read(value)? {
        (0x04, point, []) if point.len() == 65 && point[0] == 0x04 => Some(point.to_vec()),
        _ => None,
    }
}

/// Reads a constructed value's content TLV by TLV, in order. Every read is bounded by the
/// input, so a parser built on it is linear in what it is given.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Der<'a>(pub &'a [u8]);

impl<'a> Der<'a> {
    /// The next TLV's tag and content.
    pub(crate) fn any(&mut self) -> Option<(u8, &'a [u8])> {
        let (tag, content, rest) = der_read(self.0)?;
        self.0 = rest;
        Some((tag, content))
    }

    /// The next TLV's content, which must have `tag`.
    pub(crate) fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match der_read(self.0)? {
            (t, content, rest) if t == tag => {
                self.0 = rest;
                Some(content)
            }
            _ => None,
        }
    }

    /// The next TLV's content when it has `tag` (an OPTIONAL field); nothing is consumed otherwise.
    pub(crate) fn optional(&mut self, tag: u8) -> Option<&'a [u8]> {
        match der_read(self.0) {
            Some((t, content, rest)) if t == tag => {
                self.0 = rest;
                Some(content)
            }
            _ => None,
        }
    }

    /// The next TLV whole, header included (what a signature or a comparison covers).
    pub(crate) fn raw(&mut self) -> Option<&'a [u8]> {
        let (_, _, rest) = der_read(self.0)?;
        let whole = &self.0[..self.0.len() - rest.len()];
        self.0 = rest;
        Some(whole)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A GeneralizedTime's content (`YYYYMMDDHHMMSS[.fff]Z`, as DER requires) as Unix seconds.
pub(crate) fn generalized_time(content: &[u8]) -> Option<i64> {
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        content.get(range)?.iter().try_fold(0i64, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
        })
    };
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(8..10)?, digits(10..12)?, digits(12..14)?);
    let rest = &content[14..];
    let rest = match rest.first() {
        Some(b'.') => {
            let frac = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
            &rest[1 + frac..]
        }
        _ => rest,
    };
    if rest != b"Z" || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Unix seconds as a GeneralizedTime TLV (`YYYYMMDDHHMMSSZ`).
pub fn generalized_time_tlv(unix: i64) -> Vec<u8> {
    tlv(
        0x18,
        format!("{}Z", brama_xroad::time::compact(unix)).as_bytes(),
    )
}
