//! A guard against router advertisements that smoltcp 0.14 panics on.
//!
//! smoltcp 0.14's SLAAC checks little of the prefix-information option of a router
//! advertisement, and one such frame from anyone on the link panics the stack:
//!
//! - a prefix length over 128: `Ipv6Cidr::new` asserts that it is at most 128;
//! - a multicast prefix (ff00::/8) of length 64: the address it forms is not unicast, and
//!   `Interface::update_ip_addrs` panics on it.
//!
//! So every received Ethernet frame first goes through [`neutralize`], which gives such an
//! option an unassigned option type (253, for experiments, RFC 4727) that smoltcp skips; the
//! rest of the advertisement still counts. Such options are invalid anyway (RFC 4861, section
//! 4.6.2: the prefix length is 0 to 128; RFC 4862: SLAAC forms unicast addresses).
//!
//! Covered: Ethernet frames carrying IPv6 with at most a hop-by-hop options header before
//! ICMPv6, which is all smoltcp 0.14 processes (it does not reassemble IPv6 fragments here).
//! Not covered: 6LoWPAN (IEEE 802.15.4) frames, whose compressed headers are not parsed here.

/// EtherType of IPv6.
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];
/// Ethernet header length (no VLAN tag: smoltcp takes none).
const ETHERNET_HEADER: usize = 14;
/// IPv6 fixed header length.
const IPV6_HEADER: usize = 40;
/// Next-header values.
const HOP_BY_HOP: u8 = 0;
const ICMPV6: u8 = 58;
/// ICMPv6 router advertisement, and the length of its fixed part.
const ROUTER_ADVERT: u8 = 134;
const ROUTER_ADVERT_LEN: usize = 16;
/// NDISC prefix information option.
const PREFIX_INFO: u8 = 3;
/// Offsets of the prefix length and of the prefix in a prefix information option.
const PREFIX_LEN_AT: usize = 2;
const PREFIX_AT: usize = 16;
/// First byte of a multicast IPv6 address.
const MULTICAST: u8 = 0xff;
/// The option type given to an invalid prefix information option.
const EXPERIMENTAL: u8 = 253;

/// If `frame` is an Ethernet frame with an IPv6 router advertisement, give every prefix
/// information option whose prefix length is over 128 or whose prefix is multicast another
/// option type, so that smoltcp ignores it. Returns whether the frame was changed. Never panics, whatever `frame` holds.
pub(crate) fn neutralize(frame: &mut [u8]) -> bool {
    if frame.get(12..14) != Some(&ETHERTYPE_IPV6[..]) {
        return false;
    }
    let ip = &mut frame[ETHERNET_HEADER..];
    let Some(&next) = ip.get(6) else {
        return false;
    };
    let mut offset = IPV6_HEADER;
    let next = if next == HOP_BY_HOP {
        // Next header, then the header's length in 8-byte units, not counting the first 8.
        let (Some(&after), Some(&len)) = (ip.get(offset), ip.get(offset + 1)) else {
            return false;
        };
        offset += (usize::from(len) + 1) * 8;
        after
    } else {
        next
    };
    if next != ICMPV6 || ip.get(offset) != Some(&ROUTER_ADVERT) {
        return false;
    }
    let mut changed = false;
    let mut option = offset + ROUTER_ADVERT_LEN;
    // Options: type, length in 8-byte units (0 is invalid: smoltcp stops there), data.
    while let (Some(&kind), Some(&len)) = (ip.get(option), ip.get(option + 1)) {
        if len == 0 {
            break;
        }
        let invalid = |at: usize, bad: fn(u8) -> bool| ip.get(option + at).is_some_and(|b| bad(*b));
        if kind == PREFIX_INFO
            && (invalid(PREFIX_LEN_AT, |l| l > 128) || invalid(PREFIX_AT, |b| b == MULTICAST))
        {
            ip[option] = EXPERIMENTAL;
            changed = true;
        }
        option += usize::from(len) * 8;
    }
    changed
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use super::*;

    /// An Ethernet frame with an RA carrying `options`, after a hop-by-hop header if `hbh`.
    fn ra(hbh: bool, options: &[u8]) -> Vec<u8> {
        let mut f = vec![0x33, 0x33, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd];
        let mut ip = vec![
            0x60,
            0,
            0,
            0,
            0,
            0,
            if hbh { HOP_BY_HOP } else { ICMPV6 },
            255,
        ];
        ip.extend([0u8; 32]);
        if hbh {
            ip.extend([ICMPV6, 0, 1, 4, 0, 0, 0, 0]);
        }
        ip.extend([ROUTER_ADVERT, 0, 0, 0, 64, 0, 0x07, 0x08]);
        ip.extend([0u8; 8]);
        ip.extend(options);
        f.extend(ip);
        f
    }

    fn prefix_option(prefix_len: u8) -> Vec<u8> {
        let mut o = vec![PREFIX_INFO, 4, prefix_len, 0xc0];
        o.extend([0u8; 12]);
        o.extend([0x20, 0x01, 0x0d, 0xb8]);
        o.extend([0u8; 12]);
        o
    }

    #[test]
    fn a_multicast_prefix_is_neutralized() {
        let mut option = prefix_option(64);
        option[PREFIX_AT] = MULTICAST;
        let mut frame = ra(false, &option);
        assert!(neutralize(&mut frame));
        assert_eq!(frame[frame.len() - 32], EXPERIMENTAL);
    }

    #[test]
    fn an_invalid_prefix_length_is_neutralized_and_the_rest_kept() {
        for hbh in [false, true] {
            let mut options = vec![1, 1, 2, 0, 0, 0, 0, 2];
            options.extend(prefix_option(200));
            options.extend(prefix_option(64));
            let mut frame = ra(hbh, &options);
            let before = frame.clone();
            assert!(neutralize(&mut frame));
            let diff: Vec<usize> = (0..frame.len())
                .filter(|&i| frame[i] != before[i])
                .collect();
            let at = before.len() - 64;
            assert_eq!(diff, [at]);
            assert_eq!(frame[at], EXPERIMENTAL);
            // A second pass finds nothing more to do.
            assert!(!neutralize(&mut frame));
        }
    }

    #[test]
    fn valid_and_other_frames_are_left_alone() {
        for prefix_len in [0, 64, 128] {
            let mut frame = ra(false, &prefix_option(prefix_len));
            assert!(!neutralize(&mut frame));
        }
        // Not an RA (a router solicitation), not ICMPv6, not IPv6.
        let mut rs = ra(false, &prefix_option(200));
        rs[ETHERNET_HEADER + IPV6_HEADER] = 133;
        assert!(!neutralize(&mut rs));
        let mut udp = ra(false, &prefix_option(200));
        udp[ETHERNET_HEADER + 6] = 17;
        assert!(!neutralize(&mut udp));
        let mut v4 = ra(false, &prefix_option(200));
        v4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert!(!neutralize(&mut v4));
    }

    #[test]
    fn truncated_frames_and_zero_length_options_never_panic() {
        let full = ra(
            true,
            &[&prefix_option(64)[..], &[PREFIX_INFO, 0, 200]].concat(),
        );
        for len in 0..=full.len() {
            let mut frame = full[..len].to_vec();
            assert!(!neutralize(&mut frame));
        }
        // A hop-by-hop length that points past the end.
        let mut frame = ra(true, &prefix_option(200));
        frame[ETHERNET_HEADER + IPV6_HEADER + 1] = 255;
        assert!(!neutralize(&mut frame));
    }
}
