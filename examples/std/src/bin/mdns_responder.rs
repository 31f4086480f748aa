//! mDNS responder on a TAP or TUN interface: the stack answers for `NAME.local` and announces
//! DNS-SD services, so that `avahi-resolve -n NAME.local` and `avahi-browse -rt _http._tcp`
//! find it.
//!
//! ```text
//! mdns-responder --tap tap0 --ip 192.0.2.2/24 --name sensor-7 --service "Web:_http._tcp:80" --txt path=/
//! ```

use clap::Parser;
use embassy_executor::Spawner;
use embassy_time::{Duration, Timer};
use ferronet::mdns_responder::{MdnsResponder, Service, State};
use ferronet_examples::app::{self, EXIT_HELP, Failure};
use ferronet_examples::net::{self, NetArgs};

/// mdns-responder: answer multicast DNS queries for NAME.local and announce DNS-SD services.
///
/// The responder runs inside ferronet's runner (cargo feature mdns-responder). It probes for
/// NAME.local, announces it, prints `claimed NAME.local` and then answers queries until
/// --timeout (or forever); it says goodbye (records with TTL 0) before it exits. Exits with
/// status 1 if another host uses the name or a service's instance name.
#[derive(Parser, Debug)]
#[command(
    name = "mdns-responder",
    override_usage = "mdns-responder --tap NAME --ip A.B.C.D/LEN --name HOST [OPTIONS]",
    after_help = EXIT_HELP
)]
struct Args {
    /// The host name to claim, without .local
    #[arg(long, value_name = "HOST")]
    name: String,
    /// Announce a service, e.g. "My web:_http._tcp:80" (up to 4)
    #[arg(long = "service", value_name = "INSTANCE:TYPE:PORT", value_parser = parse_service)]
    services: Vec<(String, String, u16)>,
    /// A TXT entry (KEY=VALUE) of every service (may be repeated)
    #[arg(long, value_name = "KEY=VALUE")]
    txt: Vec<String>,
    /// Stop after SECS (status 0)
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    #[command(flatten)]
    net: NetArgs,
}

fn parse_service(s: &str) -> Result<(String, String, u16), String> {
    let bad = || format!("{s:?} is not INSTANCE:TYPE:PORT");
    let (rest, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let (instance, service_type) = rest.rsplit_once(':').ok_or_else(bad)?;
    Ok((
        instance.to_string(),
        service_type.to_string(),
        port.parse().map_err(|_| bad())?,
    ))
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let args: Args = app::start();
    app::exit::<Args>(run(spawner, args).await).await
}

async fn run(spawner: Spawner, args: Args) -> Result<(), Failure> {
    let stack = net::start(spawner, &args.net).await?;
    let mdns = MdnsResponder::new(stack);
    let txt: Vec<&str> = args.txt.iter().map(String::as_str).collect();
    for (instance, service_type, port) in &args.services {
        let service = Service {
            instance,
            service_type,
            port: *port,
            txt: &txt,
        };
        mdns.add_service(&service)
            .map_err(|e| Failure::usage(format!("--service {instance}: {e}")))?;
    }
    mdns.start(&args.name)
        .map_err(|e| Failure::usage(format!("--name {}: {e}", args.name)))?;
    let serve = async {
        mdns.wait_claimed()
            .await
            .map_err(|c| Failure::failed(format!("name conflict ({c:?}): another host uses it")))?;
        println!("claimed {}.local", args.name);
        // Answer until stopped; a conflict found later ends the program.
        let mut state = mdns.state();
        loop {
            state = mdns.wait_change(state).await;
            log::info!("responder: {state:?}");
            if let State::Conflict(c) = state {
                return Err(Failure::failed(format!("name conflict ({c:?})")));
            }
        }
    };
    let result = match args.timeout {
        None => serve.await,
        Some(secs) => embassy_time::with_timeout(Duration::from_secs(secs), serve)
            .await
            .unwrap_or(Ok(())),
    };
    mdns.stop();
    // The goodbyes leave on the runner's next poll; give it that before the stack stops.
    Timer::after_millis(100).await;
    result
}
