//! `goodput`: ferronet vs embassy-net 0.9 over a shaped link on the virtual clock. See
//! `ferronet_bench::goodput` for the method and `--help` for the options.

use std::process::ExitCode;

use ferronet_bench::goodput;

fn main() -> ExitCode {
    let opts = match goodput::Options::parse(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{}", goodput::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("goodput: {e}\n{}", goodput::USAGE);
            return ExitCode::from(2);
        }
    };
    let rows = goodput::run(&opts);
    print!("{}", goodput::format_table(&opts, &rows));
    if let Some(path) = &opts.json
        && let Err(e) = std::fs::write(path, goodput::format_json(&rows))
    {
        eprintln!("goodput: writing {path}: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
