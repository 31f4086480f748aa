//! `ferronet-bench`: ferronet vs embassy-net 0.9 over the same in-memory link. See the
//! library's documentation (`src/lib.rs`) for the method and `--help` for the options.

use std::process::ExitCode;

fn main() -> ExitCode {
    match ferronet_bench::Options::parse(std::env::args().skip(1)) {
        Ok(Some(opts)) => {
            ferronet_bench::run(&opts);
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("{}", ferronet_bench::USAGE);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferronet-bench: {e}\n{}", ferronet_bench::USAGE);
            ExitCode::from(2)
        }
    }
}
