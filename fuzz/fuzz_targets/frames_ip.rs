//! Raw IP packets (IP medium, as from a TUN device or PPP), time steps, link flaps and
//! application calls against a running stack with every kind of socket open; see
//! `ferronet_integration::fuzz::run_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ferronet_integration::fuzz::run_frames(false, data);
});
