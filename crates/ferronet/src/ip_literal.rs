//! IP address literals (`"192.0.2.1"`, `"2001:db8::1"`, `"::ffff:192.0.2.1"`), for
//! [`Stack::dns_query`](crate::Stack::dns_query).
//!
//! These accept exactly the strings that `core::net`'s `FromStr` for `Ipv4Addr` and `Ipv6Addr`
//! accepts (a differential test below pins it), with a fraction of its code: `core`'s parser is
//! a general backtracking parser of about 2 KB on Cortex-M (opt-level "z") when both address
//! families are enabled; these are straight loops over the bytes.
//!
//! - IPv4: four decimal octets separated by dots, each 1 to 3 digits, at most 255, with no
//!   leading zero (`"0"` itself is fine, `"01"` is not).
//! - IPv6: groups of 1 to 4 hexadecimal digits (either case, leading zeros allowed) separated
//!   by colons; at most one `::`, standing for one or more groups of zeros; the last 32 bits may
//!   be written as an IPv4 address as above. Eight groups without `::`, at most seven with it.
//!   No zone index (`%eth0`), no brackets.

/// A dotted-quad IPv4 address.
#[cfg(feature = "proto-ipv4")]
pub(crate) fn ipv4(s: &str) -> Option<core::net::Ipv4Addr> {
    octets(s.as_bytes()).map(core::net::Ipv4Addr::from)
}

/// A textual IPv6 address.
#[cfg(feature = "proto-ipv6")]
pub(crate) fn ipv6(s: &str) -> Option<core::net::Ipv6Addr> {
    let s = s.as_bytes();
    let mut g = [0u16; 8];
    match s.windows(2).position(|w| w == b"::") {
        None => (groups(s, &mut g, true)? == 8).then_some(())?,
        Some(at) => {
            // The groups before `::` (never an IPv4 part) and after it (in `t`, then moved to
            // the end); `::` stands for at least one group.
            let n = groups(&s[..at], &mut g[..7], false)?;
            let mut t = [0u16; 7];
            let m = groups(&s[at + 2..], &mut t[..7 - n], true)?;
            g[8 - m..].copy_from_slice(&t[..m]);
        }
    }
    Some(core::net::Ipv6Addr::from(g))
}

/// The four octets of a dotted-quad address.
#[cfg(any(feature = "proto-ipv4", feature = "proto-ipv6"))]
fn octets(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut n = 0;
    let (mut value, mut digits) = (0u16, 0u8);
    // The end of the string closes the last octet, as a dot closes the others.
    for i in 0..=s.len() {
        match s.get(i) {
            Some(&c @ b'0'..=b'9') => {
                // At most three digits, and a leading zero only as the whole octet.
                if digits == 3 || (digits == 1 && value == 0) {
                    return None;
                }
                value = value * 10 + u16::from(c - b'0');
                digits += 1;
            }
            None | Some(b'.') => {
                if digits == 0 || value > 255 {
                    return None;
                }
                *out.get_mut(n)? = value as u8;
                n += 1;
                (value, digits) = (0, 0);
            }
            _ => return None,
        }
    }
    (n == 4).then_some(out)
}

/// Parse colon-separated groups into `out`, the last one possibly an IPv4 address (two groups)
/// if `v4`; an empty string has none. Returns how many groups were written.
#[cfg(feature = "proto-ipv6")]
fn groups(s: &[u8], out: &mut [u16], v4: bool) -> Option<usize> {
    if s.is_empty() {
        return Some(0);
    }
    let (mut n, mut rest) = (0, s);
    loop {
        let (piece, more) = match rest.iter().position(|&c| c == b':') {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        if v4 && more.is_none() && piece.contains(&b'.') {
            let [a, b, c, d] = octets(piece)?;
            out.get_mut(n..n + 2)?
                .copy_from_slice(&[u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])]);
            return Some(n + 2);
        }
        if piece.is_empty() || piece.len() > 4 {
            return None;
        }
        let mut value = 0u16;
        for &c in piece {
            value = value << 4 | char::from(c).to_digit(16)? as u16;
        }
        *out.get_mut(n)? = value;
        n += 1;
        match more {
            Some(more) => rest = more,
            None => return Some(n),
        }
    }
}

#[cfg(all(test, feature = "proto-ipv4", feature = "proto-ipv6"))]
mod tests {
    extern crate std;
    use std::string::{String, ToString};
    use std::vec::Vec;

    fn same(s: &str) {
        assert_eq!(super::ipv4(s), s.parse().ok(), "IPv4 {s:?}");
        assert_eq!(super::ipv6(s), s.parse().ok(), "IPv6 {s:?}");
    }

    /// A small deterministic generator (xorshift32).
    struct Rng(u32);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            self.0 as usize % n
        }
    }

    #[test]
    fn examples() {
        assert_eq!(super::ipv4("192.0.2.1"), Some([192, 0, 2, 1].into()));
        assert_eq!(super::ipv4("0.0.0.0"), Some([0, 0, 0, 0].into()));
        assert_eq!(super::ipv4("255.255.255.255"), Some([255; 4].into()));
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4.",
            ".1.2.3",
            "01.2.3.4",
            "256.0.0.1",
            "1..2.3",
        ] {
            assert_eq!(super::ipv4(bad), None, "{bad:?}");
        }
        let v6 = |s: &str| super::ipv6(s).map(|a| a.segments());
        assert_eq!(v6("::"), Some([0; 8]));
        assert_eq!(v6("2001:db8::1"), Some([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]));
        assert_eq!(v6("1:2:3:4:5:6:7::"), Some([1, 2, 3, 4, 5, 6, 7, 0]));
        assert_eq!(
            v6("::ffff:192.0.2.1"),
            Some([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201])
        );
        for bad in [
            "1:2:3:4:5:6:7:8::",
            "1::2::3",
            ":1::",
            "1:::2",
            "12345::",
            "1.2.3.4::",
        ] {
            assert_eq!(v6(bad), None, "{bad:?}");
        }
    }

    /// Every string of up to 6 characters over an alphabet that makes IPv4 addresses, and up
    /// to 5 over one that makes IPv6 addresses: accepted and parsed exactly as by `core`.
    #[test]
    // Millions of parses and no `unsafe`: far too slow under Miri, and nothing for it to check.
    #[cfg_attr(miri, ignore)]
    fn exhaustive_short_strings_match_core() {
        fn all(alphabet: &[u8], len: usize, s: &mut Vec<u8>) {
            same(std::str::from_utf8(s).unwrap());
            if s.len() < len {
                for &c in alphabet {
                    s.push(c);
                    all(alphabet, len, s);
                    s.pop();
                }
            }
        }
        all(b"0125.x", 6, &mut Vec::new());
        all(b"0f:.1", 5, &mut Vec::new());
    }

    /// Real addresses in every form `core` prints them (compressed, with an IPv4 tail), and
    /// random edits of them: accepted and parsed exactly as by `core`.
    #[test]
    // Millions of parses and no `unsafe`: far too slow under Miri, and nothing for it to check.
    #[cfg_attr(miri, ignore)]
    fn addresses_and_their_mutations_match_core() {
        let mut rng = Rng(0x9e37_79b9);
        let alphabet = b"0123456789abcdefABCDEF:.:.g% ";
        for _ in 0..40_000 {
            // Groups that are often zero, so that `::` appears in many places.
            let seg: [u16; 8] = core::array::from_fn(|_| match rng.below(4) {
                0 | 1 => 0,
                2 => rng.below(0x10000) as u16,
                _ => rng.below(300) as u16,
            });
            let v6 = core::net::Ipv6Addr::from(seg);
            let v4 = core::net::Ipv4Addr::from(((seg[6] as u32) << 16) | seg[7] as u32);
            let forms = [
                v6.to_string(),
                std::format!("{v6:?}"),
                std::format!(
                    "{:x}:{:X}:{:x}:{:x}:{:x}:{:x}:{v4}",
                    seg[0],
                    seg[1],
                    seg[2],
                    seg[3],
                    seg[4],
                    seg[5]
                ),
                std::format!("::{:x}:{v4}", seg[5]),
                v4.to_string(),
            ];
            for form in forms {
                same(&form);
                let mut s: Vec<u8> = form.into_bytes();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(s.len() + 1);
                    let c = alphabet[rng.below(alphabet.len())];
                    match rng.below(3) {
                        0 if at < s.len() => {
                            s.remove(at);
                        }
                        1 if at < s.len() => s[at] = c,
                        _ => s.insert(at, c),
                    }
                }
                same(&String::from_utf8(s).unwrap());
            }
        }
    }
}
