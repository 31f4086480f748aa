//! mDNS responder on a TAP or TUN interface: the stack answers for `NAME.local` and announces
//! DNS-SD services, so that `avahi-resolve -n NAME.local` and `avahi-browse -rt _http._tcp`
//! find it.
//!
//! ```text
//! mdns-responder --tap tap0 --ip 192.0.2.2/24 --name sensor-7 --service "Web:_http._tcp:80" --txt path=/
//! ```

use std::process::ExitCode;

use embassy_time::Duration;
use ferronet::mdns_responder::{MdnsResponder, Service, State};
use ferronet_examples::cli::{self, Arg, Failure, Parser};
use ferronet_examples::net::{self, NetArgs};

const USAGE: &str = "\
mdns-responder: answer multicast DNS queries for NAME.local and announce DNS-SD services.

Usage: mdns-responder (--tap NAME | --tun NAME) (--ip CIDR | --dhcp | --slaac) --name HOST [options]

Probes for HOST.local, announces it, prints `claimed HOST.local` and then answers queries
until --timeout (or forever). Exits with status 1 if another host already uses the name
or a service's instance name.

Options:
  --name HOST                the host name to claim (without .local)
  --service INSTANCE:TYPE:PORT
                             announce a service, e.g. \"My web:_http._tcp:80\" (up to 4; may
                             be repeated)
  --txt KEY=VALUE            a TXT entry for the last --service (may be repeated)
  --timeout SECS             stop after SECS, saying goodbye (TTL 0) first";

struct ServiceArg {
    instance: String,
    service_type: String,
    port: u16,
    txt: Vec<String>,
}

fn main() -> ExitCode {
    cli::main("mdns-responder", USAGE, body)
}

fn parse_service(s: &str) -> Result<ServiceArg, Failure> {
    let bad = || Failure::usage(format!("--service {s:?}: expected INSTANCE:TYPE:PORT"));
    let (rest, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let (instance, service_type) = rest.rsplit_once(':').ok_or_else(bad)?;
    Ok(ServiceArg {
        instance: instance.to_string(),
        service_type: service_type.to_string(),
        port: port.parse().map_err(|_| bad())?,
        txt: Vec::new(),
    })
}

fn body(mut p: Parser) -> Result<(), Failure> {
    let mut net = NetArgs::default();
    let (mut name, mut timeout) = (None, None);
    let mut services: Vec<ServiceArg> = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Arg::Flag(f) if net.accept(&f, &mut p)? => {}
            Arg::Flag(f) => match f.as_str() {
                "name" => name = Some(p.value(&f)?),
                "service" => services.push(parse_service(&p.value(&f)?)?),
                "txt" => {
                    let entry = p.value(&f)?;
                    services
                        .last_mut()
                        .ok_or_else(|| Failure::usage("--txt must follow a --service"))?
                        .txt
                        .push(entry);
                }
                "timeout" => timeout = Some(Duration::from_secs(p.parse(&f)?)),
                _ => return Err(cli::unknown(&f)),
            },
            Arg::Positional(a) => return Err(Failure::usage(format!("unexpected {a:?}"))),
        }
    }
    let name = name.ok_or_else(|| Failure::usage("give the host name: --name HOST"))?;
    net::run(&net, async |stack| {
        let mdns = MdnsResponder::new(stack);
        for s in &services {
            let txt: Vec<&str> = s.txt.iter().map(String::as_str).collect();
            let service = Service {
                instance: &s.instance,
                service_type: &s.service_type,
                port: s.port,
                txt: &txt,
            };
            mdns.add_service(&service)
                .map_err(|e| Failure::usage(format!("--service {}: {e}", s.instance)))?;
        }
        mdns.start(&name)
            .map_err(|e| Failure::usage(format!("--name {name}: {e}")))?;
        let run = async {
            mdns.wait_claimed().await.map_err(|c| {
                Failure::failed(format!("name conflict ({c:?}): another host uses it"))
            })?;
            println!("claimed {name}.local");
            // Answer until stopped; report a conflict found later.
            let mut state = mdns.state();
            loop {
                state = mdns.wait_change(state).await;
                eprintln!("mdns-responder: {state:?}");
                if let State::Conflict(c) = state {
                    return Err(Failure::failed(format!("name conflict ({c:?})")));
                }
            }
        };
        let result = match timeout {
            None => run.await,
            Some(limit) => embassy_time::with_timeout(limit, run)
                .await
                .unwrap_or(Ok(())),
        };
        mdns.stop();
        // Let the runner send the goodbyes.
        embassy_time::Timer::after(Duration::from_millis(200)).await;
        result
    })
}
