//! Raw Ethernet frames, time steps, link flaps and application calls against a running stack
//! with every kind of socket open (static IPv4 + SLAAC, or DHCPv4 + static IPv6); see
//! `ferronet_integration::fuzz::run_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ferronet_integration::fuzz::run_frames(true, data);
});
