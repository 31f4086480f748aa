//! `core::mem::size_of` of the stack's public types, as compiled for the firmware target.
//!
//! Method: the sizes are computed at compile time into `SIZES`, a `#[used]` static placed in
//! its own section `.bench_sizes`; the entry point reads it with `read_volatile` so that the
//! linker keeps it. measure.sh builds this binary for each configuration and dumps the section
//! with `readelf -x .bench_sizes` (little-endian u32 words, in the order of `NAMES` below,
//! which measure.sh repeats). Nothing is run: the numbers are what rustc laid out for
//! thumbv7em-none-eabihf with the same features as the firmware.
#![no_std]
#![no_main]

#[cfg(feature = "use-embassy")]
use embassy_net as net;
#[cfg(feature = "use-ferronet")]
use ferronet as net;

use core::mem::size_of;

use ferronet_bench_firmware::eth::MmioEth;
use panic_halt as _;

/// Order of the entries of `SIZES` (documentation; measure.sh has the same list).
pub const NAMES: [&str; 9] = [
    "StackResources<1>",
    "StackResources<3>",
    "StackResources<8>",
    "Stack<'static>",
    "Runner<'static, MmioEth>",
    "MmioEth (driver, inside Runner)",
    "TcpSocket<'static>",
    "UdpSocket<'static>",
    "Config",
];

#[used]
#[unsafe(link_section = ".bench_sizes")]
static SIZES: [u32; 9] = [
    size_of::<net::StackResources<1>>() as u32,
    size_of::<net::StackResources<3>>() as u32,
    size_of::<net::StackResources<8>>() as u32,
    size_of::<net::Stack<'static>>() as u32,
    size_of::<net::Runner<'static, MmioEth>>() as u32,
    size_of::<MmioEth>() as u32,
    size_of::<net::tcp::TcpSocket<'static>>() as u32,
    size_of::<net::udp::UdpSocket<'static>>() as u32,
    size_of::<net::Config>() as u32,
];

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut acc = 0u32;
    for v in SIZES.iter() {
        // SAFETY: reading an element of a static.
        acc = acc.wrapping_add(unsafe { core::ptr::read_volatile(v) });
    }
    let _ = NAMES;
    loop {
        cortex_m::asm::nop();
        core::hint::black_box(acc);
    }
}
