//! `tap`: ferronet or embassy-net 0.9 (the same workload source) on a Linux TAP device, with
//! Linux as the peer, for `scripts/throughput.sh`. See `--help`.

use std::process::ExitCode;

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    use ferronet_bench::tap::{Options, USAGE};
    use ferronet_bench::{StackKind, on_embassy, on_ferronet};
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tap: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let dev = match ferronet_tuntap::TapDevice::open_existing(&opts.tap) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tap: {}: {e}", opts.tap);
            return ExitCode::from(3);
        }
    };
    let result = match opts.stack {
        StackKind::Embassy => on_embassy::tap::run(dev, &opts),
        _ => on_ferronet::tap::run(dev, &opts),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tap: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn main() -> ExitCode {
    eprintln!("tap: Linux only");
    ExitCode::FAILURE
}
