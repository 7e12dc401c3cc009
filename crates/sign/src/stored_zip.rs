//! A zip writer for entries that are stored, not compressed: what the message log writes for
//! every message, so it is a copy and a CRC per entry with no allocation of its own (the general
//! zip writer costs several times more on that path), and what continues a container in memory
//! to add its time-stamp. Readers are the general zip reader and any ASiC verifier.

/// Local file header, central directory header, end of central directory.
const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const END_LEN: usize = 22;
/// Version 2.0: stored entries, no zip64.
const VERSION: u16 = 20;
/// 1980-01-01 00:00 in MS-DOS form, as the general writer (without a clock) writes it.
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;

/// A zip being written into `W`.
pub struct StoredZip<W = Vec<u8>> {
    out: W,
    written: u64,
    central: Vec<u8>,
    entries: u16,
}

fn u16le(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn u32le(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn too_large(what: &str) -> std::io::Error {
    std::io::Error::other(format!("{what}: more than a zip without zip64 holds"))
}

impl StoredZip<Vec<u8>> {
    /// Continues a zip whose last bytes are its central directory and a plain end record (no
    /// comment, no zip64), as [`StoredZip::finish`] and the general writer leave it: new
    /// entries go where the central directory was. Any other zip is given back.
    pub fn reopen(mut bytes: Vec<u8>) -> Result<StoredZip, Vec<u8>> {
        let Some((entries, offset, end)) = layout(&bytes) else {
            return Err(bytes);
        };
        let central = bytes[offset..end].to_vec();
        bytes.truncate(offset);
        Ok(StoredZip {
            written: offset as u64,
            out: bytes,
            central,
            entries,
        })
    }
}

impl<W: std::io::Write> StoredZip<W> {
    pub fn new(out: W) -> StoredZip<W> {
        StoredZip {
            out,
            written: 0,
            central: Vec::with_capacity(1024),
            entries: 0,
        }
    }

    /// Adds an entry (ASCII names, ours). Refused past what a zip without zip64 holds: 65,534
    /// entries, 4 GiB.
    pub fn put(&mut self, name: &str, data: &[u8]) -> std::io::Result<()> {
        let (Ok(size), Ok(offset), Ok(name_len)) = (
            u32::try_from(data.len()),
            u32::try_from(self.written),
            u16::try_from(name.len()),
        ) else {
            return Err(too_large(name));
        };
        if self.entries >= u16::MAX - 1 {
            return Err(too_large("the entries"));
        }
        // The fields the local and the central header share, from "version needed" to the extra
        // field's length.
        let mut fields = [0u8; 26];
        let crc = crc32fast::hash(data);
        for (at, bytes) in [
            (0, &VERSION.to_le_bytes()[..]), // version needed; flags 0; stored
            (6, &DOS_TIME.to_le_bytes()),
            (8, &DOS_DATE.to_le_bytes()),
            (10, &crc.to_le_bytes()),
            (14, &size.to_le_bytes()),
            (18, &size.to_le_bytes()),
            (22, &name_len.to_le_bytes()), // extra field length 0
        ] {
            fields[at..at + bytes.len()].copy_from_slice(bytes);
        }
        self.out.write_all(&LOCAL.to_le_bytes())?;
        self.out.write_all(&fields)?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(data)?;
        self.written += (4 + fields.len() + name.len() + data.len()) as u64;

        let c = &mut self.central;
        u32le(c, CENTRAL);
        u16le(c, VERSION); // made by: MS-DOS, 2.0
        c.extend_from_slice(&fields);
        u16le(c, 0); // comment length
        u16le(c, 0); // disk
        u16le(c, 0); // internal attributes
        u32le(c, 0); // external attributes
        u32le(c, offset);
        c.extend_from_slice(name.as_bytes());
        self.entries += 1;
        Ok(())
    }

    /// Writes the central directory; returns the sink.
    pub fn finish(mut self) -> std::io::Result<W> {
        let (Ok(offset), Ok(size)) = (
            u32::try_from(self.written),
            u32::try_from(self.central.len()),
        ) else {
            return Err(too_large("the zip"));
        };
        let mut end = std::mem::take(&mut self.central);
        u32le(&mut end, END);
        u16le(&mut end, 0); // this disk
        u16le(&mut end, 0); // the central directory's disk
        u16le(&mut end, self.entries);
        u16le(&mut end, self.entries);
        u32le(&mut end, size);
        u32le(&mut end, offset);
        u16le(&mut end, 0); // comment length
        self.out.write_all(&end)?;
        Ok(self.out)
    }
}

/// The entries, where the central directory starts and where it ends, of a zip that ends in a
/// plain end record right after its central directory.
fn layout(bytes: &[u8]) -> Option<(u16, usize, usize)> {
    let end = bytes.len().checked_sub(END_LEN)?;
    let rec = &bytes[end..];
    let word = |i: usize| u32::from_le_bytes([rec[i], rec[i + 1], rec[i + 2], rec[i + 3]]);
    let half = |i: usize| u16::from_le_bytes([rec[i], rec[i + 1]]);
    if word(0) != END || half(20) != 0 || half(4) != 0 || half(6) != 0 {
        return None;
    }
    let (entries, size, offset) = (half(10), word(12) as usize, word(16) as usize);
    if half(8) != entries || entries == u16::MAX || offset.checked_add(size)? != end {
        return None;
    }
    Some((entries, offset, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        (0..z.len())
            .map(|i| {
                let mut f = z.by_index(i).unwrap();
                let mut data = Vec::new();
                f.read_to_end(&mut data).unwrap();
                (f.name().to_string(), data)
            })
            .collect()
    }

    #[test]
    fn the_general_reader_reads_it_and_it_continues() {
        let mut z = StoredZip::new(Vec::new());
        z.put("mimetype", b"application/vnd.etsi.asic-e+zip")
            .unwrap();
        z.put("message.xml", b"<a/>").unwrap();
        z.put("empty", b"").unwrap();
        let first = z.finish().unwrap();
        assert_eq!(entries(&first).len(), 3);
        assert_eq!(entries(&first)[1], ("message.xml".into(), b"<a/>".to_vec()));

        let Ok(mut z) = StoredZip::reopen(first) else {
            panic!("not continued")
        };
        z.put("META-INF/timestamp.tst", &[0, 1, 2]).unwrap();
        let got = entries(&z.finish().unwrap());
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].0, "mimetype");
        assert_eq!(got[3], ("META-INF/timestamp.tst".into(), vec![0, 1, 2]));

        // Not a zip of this form: refused, never misread.
        assert!(StoredZip::reopen(b"not a zip at all, long enough".to_vec()).is_err());
        let mut commented = StoredZip::new(Vec::new()).finish().unwrap();
        commented[END_LEN - 2] = 1;
        commented.push(b'x');
        assert!(StoredZip::reopen(commented).is_err());
    }
}
