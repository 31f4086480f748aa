//! Well-formed messages built from fuzzed fields (TCP segments in the connections' sequence
//! space, DNS answers to the query in flight, DHCP replies, router advertisements, ICMP echo
//! replies and errors, UDP, ARP and neighbor discovery); see
//! `ferronet_integration::fuzz::run_structured`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ferronet_integration::fuzz::run_structured(data);
});
