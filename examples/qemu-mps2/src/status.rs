//! What the firmware reports: the lease, link changes, and the status page.

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use embassy_time::Instant;

use crate::net::Stack;
use crate::{info, net_irq};

/// HTTP requests answered since boot.
pub static HTTP_REQUESTS: AtomicU32 = AtomicU32::new(0);

/// The stack's counters as (polls, frames in, frames out, transmit-queue-full events); zeros
/// with embassy-net, which keeps none.
pub fn stack_counters(stack: Stack<'_>) -> [u32; 4] {
    #[cfg(feature = "use-ferronet")]
    {
        let c = stack.counters();
        [c.polls, c.rx_frames, c.tx_frames, c.tx_queue_full]
    }
    #[cfg(not(feature = "use-ferronet"))]
    {
        let _ = stack;
        [0; 4]
    }
}

/// Print the DHCP lease: address, gateway, DNS servers.
pub fn print_lease(stack: Stack<'_>) {
    match stack.config_v4() {
        Some(c) => {
            let mut dns: heapless::String<64> = heapless::String::new();
            for (i, s) in c.dns_servers.iter().enumerate() {
                let _ = write!(dns, "{}{}", if i > 0 { "," } else { "" }, s);
            }
            info!(
                "lease: address={} gateway={} dns={} at_ms={}",
                c.address,
                Gw(c.gateway),
                if dns.is_empty() { "none" } else { dns.as_str() },
                Instant::now().as_millis()
            );
        }
        None => info!("lease: none"),
    }
}

/// An optional gateway, printed as `none` when absent.
struct Gw(Option<crate::net::Ipv4Address>);
impl core::fmt::Display for Gw {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{}", a),
            None => f.write_str("none"),
        }
    }
}

/// Log every link change with the counters (so a test can see that nothing spins meanwhile),
/// and every DHCP lease.
#[embassy_executor::task]
pub async fn link_task(stack: Stack<'static>) {
    loop {
        stack.wait_link_up().await;
        log_link(stack, "up");
        // After every link-up the DHCP client asks again (the stack drops the lease when the
        // link goes down): print each new lease. A link that goes down first is logged too.
        match embassy_futures::select::select(stack.wait_config_up(), stack.wait_link_down()).await
        {
            embassy_futures::select::Either::First(()) => print_lease(stack),
            embassy_futures::select::Either::Second(()) => {
                log_link(stack, "down");
                continue;
            }
        }
        stack.wait_link_down().await;
        log_link(stack, "down");
    }
}

fn log_link(stack: Stack<'_>, state: &str) {
    let [polls, rx, tx, full] = stack_counters(stack);
    info!(
        "link: {} at_ms={} polls={} rx={} tx={} txfull={} driver={:?}",
        state,
        Instant::now().as_millis(),
        polls,
        rx,
        tx,
        full,
        net_irq::STATE.counters()
    );
}

/// Write the status page's body for a request of `path`.
pub fn render(stack: Stack<'_>, path: &str, out: &mut impl Write) -> core::fmt::Result {
    let [polls, rx, tx, full] = stack_counters(stack);
    writeln!(out, "ferronet on QEMU mps2-an385 (Cortex-M3, LAN9118)")?;
    writeln!(out, "path: {}", path)?;
    writeln!(out, "uptime_ms: {}", Instant::now().as_millis())?;
    match stack.config_v4() {
        Some(c) => writeln!(out, "lease: {} gateway {}", c.address, Gw(c.gateway))?,
        None => writeln!(out, "lease: none")?,
    }
    writeln!(
        out,
        "link: {}",
        if stack.is_link_up() { "up" } else { "down" }
    )?;
    writeln!(
        out,
        "http_requests: {}",
        HTTP_REQUESTS.load(Ordering::Relaxed)
    )?;
    writeln!(out, "stack_polls: {}", polls)?;
    writeln!(out, "stack_rx_frames: {}", rx)?;
    writeln!(out, "stack_tx_frames: {}", tx)?;
    writeln!(out, "stack_tx_queue_full: {}", full)?;
    writeln!(out, "driver: {:?}", net_irq::STATE.counters())?;
    writeln!(out, "stack_peak_bytes: {}", crate::stack::peak())
}
