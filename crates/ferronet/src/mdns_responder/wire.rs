//! The parts of the DNS message format (RFC 1035 4.1) the responder reads and writes.
//!
//! smoltcp's `DnsPacket` gives the header fields and follows compressed names; its question
//! and record parsers reject the mDNS class bits (unicast-response, cache-flush), so the
//! sections are walked here. Messages are written uncompressed, except that an answer to a
//! legacy unicast query may point at the question it repeats.

use smoltcp::wire::DnsPacket;

/// The class IN.
pub(crate) const CLASS_IN: u16 = 1;
/// The top bit of a question's class: the querier asks for a unicast response (QU).
pub(crate) const UNICAST_RESPONSE: u16 = 0x8000;
/// The top bit of a record's class: caches drop other records of this name and type.
pub(crate) const CACHE_FLUSH: u16 = 0x8000;

/// Record types the responder knows.
pub(crate) const TYPE_A: u16 = 1;
pub(crate) const TYPE_PTR: u16 = 12;
pub(crate) const TYPE_TXT: u16 = 16;
pub(crate) const TYPE_AAAA: u16 = 28;
pub(crate) const TYPE_SRV: u16 = 33;
pub(crate) const TYPE_ANY: u16 = 255;

/// The bytes after the name at the start of `bytes`, or `None` if it is malformed. The name
/// itself is not followed (a pointer ends it).
pub(crate) fn skip_name(mut bytes: &[u8]) -> Option<&[u8]> {
    // At most 128 labels fit in 255 bytes; more means a malformed name.
    for _ in 0..128 {
        let len = *bytes.first()?;
        match len & 0xC0 {
            0x00 if len == 0 => return bytes.get(1..),
            0x00 => bytes = bytes.get(1 + usize::from(len)..)?,
            0xC0 => return bytes.get(2..),
            _ => return None,
        }
    }
    None
}

/// A question of a received message.
pub(crate) struct Question<'a> {
    /// The name as it appears in the message (may end in a pointer).
    pub(crate) name: &'a [u8],
    pub(crate) type_: u16,
    /// The class with the unicast-response bit.
    pub(crate) class: u16,
}

/// A resource record of a received message.
pub(crate) struct Record<'a> {
    /// The name as it appears in the message (may end in a pointer).
    pub(crate) name: &'a [u8],
    pub(crate) type_: u16,
    /// The class with the cache-flush bit.
    pub(crate) class: u16,
    pub(crate) ttl: u32,
    /// The record data as it appears in the message (names in it may hold pointers).
    pub(crate) data: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Read one question from the front of `bytes`; returns it and the rest.
pub(crate) fn question(bytes: &[u8]) -> Option<(Question<'_>, &[u8])> {
    let rest = skip_name(bytes)?;
    let name = &bytes[..bytes.len() - rest.len()];
    let q = Question {
        name,
        type_: u16_at(rest, 0)?,
        class: u16_at(rest, 2)?,
    };
    Some((q, rest.get(4..)?))
}

/// Read one resource record from the front of `bytes`; returns it and the rest.
pub(crate) fn record(bytes: &[u8]) -> Option<(Record<'_>, &[u8])> {
    let rest = skip_name(bytes)?;
    let name = &bytes[..bytes.len() - rest.len()];
    let ttl = u32::from_be_bytes(rest.get(4..8)?.try_into().ok()?);
    let len = usize::from(u16_at(rest, 8)?);
    let data = rest.get(10..10 + len)?;
    let r = Record {
        name,
        type_: u16_at(rest, 0)?,
        class: u16_at(rest, 2)?,
        ttl,
        data,
    };
    Some((r, &rest[10 + len..]))
}

/// Whether the (possibly compressed) name `name` of `packet` is the name made of `labels`,
/// ignoring ASCII case (RFC 6762 16). A malformed name is not equal to anything.
pub(crate) fn name_eq(packet: &DnsPacket<&[u8]>, name: &[u8], labels: &[&[u8]]) -> bool {
    let mut theirs = packet.parse_name(name);
    for ours in labels {
        match theirs.next() {
            Some(Ok(l)) if l.eq_ignore_ascii_case(ours) => {}
            _ => return false,
        }
    }
    theirs.next().is_none()
}

/// Copy the (possibly compressed) name `name` of `packet` into `out` in uncompressed wire
/// form. `None` if it is malformed or longer than `out`.
pub(crate) fn copy_name<const N: usize>(
    packet: &DnsPacket<&[u8]>,
    name: &[u8],
) -> Option<heapless::Vec<u8, N>> {
    let mut out = heapless::Vec::new();
    for label in packet.parse_name(name) {
        let label = label.ok()?;
        out.push(u8::try_from(label.len()).ok()?).ok()?;
        out.extend_from_slice(label).ok()?;
    }
    out.push(0).ok()?;
    Some(out)
}

/// Writes a message, or only counts its length (`buf` of `None`), so that the same code
/// sizes a message and then writes it into exactly that much room.
pub(crate) struct Writer<'a> {
    buf: Option<&'a mut [u8]>,
    pub(crate) len: usize,
    /// A write went past the end of `buf` (it was not done).
    pub(crate) overflow: bool,
}

impl<'a> Writer<'a> {
    /// A writer that only counts.
    pub(crate) fn counter() -> Self {
        Self {
            buf: None,
            len: 0,
            overflow: false,
        }
    }

    /// A writer into `buf`.
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self {
            buf: Some(buf),
            len: 0,
            overflow: false,
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        if let Some(buf) = self.buf.as_deref_mut() {
            match buf.get_mut(self.len..self.len + b.len()) {
                Some(dst) => dst.copy_from_slice(b),
                None => self.overflow = true,
            }
        }
        self.len += b.len();
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    /// Write a name from its labels (each at most 63 bytes, checked by the caller).
    pub(crate) fn name(&mut self, labels: &[&[u8]]) {
        for l in labels {
            self.bytes(&[l.len() as u8]);
            self.bytes(l);
        }
        self.bytes(&[0]);
    }

    /// Overwrite a 16-bit value written earlier at `at` (a count or a length).
    pub(crate) fn patch_u16(&mut self, at: usize, v: u16) {
        if let Some(dst) = self.buf.as_deref_mut().and_then(|b| b.get_mut(at..at + 2)) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_labels_and_pointers() {
        assert_eq!(skip_name(b"\x03abc\x05local\x00rest"), Some(&b"rest"[..]));
        assert_eq!(skip_name(b"\x03abc\xc0\x0crest"), Some(&b"rest"[..]));
        assert_eq!(skip_name(b"\x05ab"), None);
        assert_eq!(skip_name(b"\x80"), None);
        assert_eq!(skip_name(b""), None);
    }

    #[test]
    fn reads_records_with_mdns_class_bits() {
        let msg = b"\x01a\x00\x00\x01\x80\x01\x00\x00\x00\x78\x00\x04\xc0\x00\x02\x05tail";
        let (r, rest) = record(msg).unwrap();
        assert_eq!((r.type_, r.class, r.ttl), (TYPE_A, 0x8001, 120));
        assert_eq!(r.data, &[192, 0, 2, 5]);
        assert_eq!(rest, b"tail");
        // Data shorter than its length.
        assert!(record(&msg[..15]).is_none());
    }

    #[test]
    fn compares_names_without_case() {
        let mut msg = [0u8; 12].to_vec();
        msg.extend_from_slice(b"\x04Host\x05LOCAL\x00");
        let p = DnsPacket::new_unchecked(&msg[..]);
        assert!(name_eq(&p, &msg[12..], &[b"host", b"local"]));
        assert!(!name_eq(&p, &msg[12..], &[b"host"]));
        assert!(!name_eq(&p, &msg[12..], &[b"host", b"local", b"x"]));
        let copy = copy_name::<32>(&p, &msg[12..]).unwrap();
        assert_eq!(&copy[..], b"\x04Host\x05LOCAL\x00");
    }

    #[test]
    fn counts_what_it_writes() {
        let mut c = Writer::counter();
        c.name(&[b"a", b"local"]);
        c.u16(1);
        let mut buf = [0u8; 11];
        let mut w = Writer::new(&mut buf);
        w.name(&[b"a", b"local"]);
        w.u16(1);
        assert_eq!((c.len, w.len, w.overflow), (11, 11, false));
        let mut small = [0u8; 4];
        let mut w = Writer::new(&mut small);
        w.name(&[b"a", b"local"]);
        assert!(w.overflow);
    }
}
