//! The runner: the one task that talks to the driver and drives smoltcp.

use core::future::poll_fn;
use core::pin::Pin;
use core::task::{Context, Poll};

use embassy_net_driver::{Driver, LinkState};
use embassy_time::{Instant, Timer};
use smoltcp::iface::PollIngressSingleResult;

use crate::driver_adapter::DriverAdapter;
use crate::stack::{Inner, Shared, to_smoltcp_hardware_address};
use crate::time::{instant_from_smoltcp, instant_to_smoltcp};

/// Frames taken from the driver in one poll before the runner yields to other tasks.
const RX_BUDGET: usize = 32;
/// Egress passes (each sends at most one packet per socket) in one poll before yielding.
const TX_BUDGET: usize = 32;
/// With SLAAC on and no socket deadline, smoltcp 0.14's `poll_at` returns `None` and drops the
/// SLAAC deadline (router solicitation retries, prefix and route expiry): it takes the minimum
/// of two `Option`s, and `None` is the smallest. The runner then checks the SLAAC state at this
/// interval instead.
#[cfg(feature = "slaac")]
const SLAAC_TICK: embassy_time::Duration = embassy_time::Duration::from_secs(1);
/// How long the runner waits before polling again when smoltcp asks to be polled "now" but the
/// previous poll did nothing at all (no frame in or out, no socket change). This breaks any
/// busy loop, whatever its cause.
const IDLE_BACKOFF: embassy_time::Duration = embassy_time::Duration::from_millis(1);

/// What one round of frame processing did.
#[derive(Default)]
struct IoResult {
    /// A frame was received or sent.
    progress: bool,
    /// A budget ran out with work left.
    more: bool,
    /// The driver had no room to transmit.
    tx_exhausted: bool,
}

/// Network stack runner.
///
/// [`Runner::run`] must run in a task for the stack to work. It is the only code that talks to
/// the driver.
pub struct Runner<'d, D: Driver> {
    pub(crate) driver: D,
    pub(crate) shared: &'d Shared,
}

impl<'d, D: Driver> Runner<'d, D> {
    pub(crate) fn new(driver: D, shared: &'d Shared) -> Self {
        Self { driver, shared }
    }

    /// Run the network stack. Never returns.
    ///
    /// The runner sleeps until something needs it: the driver has a frame or room to send
    /// (its waker), a socket or the configuration changed (sockets wake it), or smoltcp's next
    /// timer is due. Each wake-up does a bounded amount of work (at most 32 received frames and
    /// 32 transmit passes) and then yields, so other tasks on the same executor keep running
    /// under load.
    pub async fn run(&mut self) -> ! {
        loop {
            poll_fn(|cx| {
                self.poll(cx);
                Poll::<()>::Pending
            })
            .await;
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) {
        let mut state_changed = false;
        let next = {
            let mut guard = self.shared.inner.borrow_mut();
            let inner: &mut Inner = &mut guard;
            inner.runner_waker.register(cx.waker());
            inner.counters.polls = inner.counters.polls.wrapping_add(1);

            // Follow the driver's hardware address.
            let hw = self.driver.hardware_address();
            if hw != inner.driver_hw {
                inner.driver_hw = hw;
                match to_smoltcp_hardware_address(hw) {
                    Ok((addr, medium)) if medium == inner.medium => {
                        set_iface_hw_addr(&mut inner.iface, addr);
                        inner.hardware_address = addr;
                        info!("hardware address changed");
                        state_changed = true;
                    }
                    _ => warn!("driver changed to an address of another medium; ignored"),
                }
            }

            // Link state. Acted on before any frame moves, so that a DHCP client restarted
            // by a link-up sends exactly one DISCOVER.
            let link_up = self.driver.link_state(cx) == LinkState::Up;
            if link_up != inner.link_up {
                inner.link_up = link_up;
                info!("link up: {}", link_up);
                state_changed = true;
                #[cfg(feature = "dhcpv4")]
                if inner.dhcp_link_changed() {
                    inner.apply_config();
                }
            }

            let now = Instant::now();
            let ts = instant_to_smoltcp(now);
            let io = self.io(cx, inner, ts);

            #[allow(unused_mut)]
            let mut reconfigure = false;
            #[cfg(feature = "dhcpv4")]
            {
                reconfigure |= inner.dhcp_poll();
            }
            #[cfg(feature = "slaac")]
            {
                reconfigure |= inner.slaac_poll(ts);
            }
            if reconfigure {
                inner.apply_config();
                state_changed = true;
            }

            if io.more || reconfigure {
                // Budget used up, or the configuration changed: let other tasks run, then
                // continue.
                cx.waker().wake_by_ref();
                None
            } else {
                match inner.iface.poll_at(ts, &inner.sockets) {
                    // The driver wakes us when it has room again; smoltcp's "now" would
                    // only spin.
                    Some(at) if io.tx_exhausted && at <= ts => None,
                    Some(at) if at <= ts => {
                        if io.progress {
                            cx.waker().wake_by_ref();
                            None
                        } else {
                            Some(now + IDLE_BACKOFF)
                        }
                    }
                    Some(at) => Some(instant_from_smoltcp(at)),
                    #[cfg(feature = "slaac")]
                    None if inner.slaac => Some(now + SLAAC_TICK),
                    None => None,
                }
            }
        };

        if state_changed {
            self.shared.state_waiters.wake_all();
        }

        self.arm_timer(cx, next);
    }

    /// Move frames: up to [`RX_BUDGET`] received frames, then up to [`TX_BUDGET`] egress
    /// passes.
    fn io(
        &mut self,
        cx: &mut Context<'_>,
        inner: &mut Inner,
        ts: smoltcp::time::Instant,
    ) -> IoResult {
        let Inner {
            iface,
            sockets,
            caps,
            counters,
            slots,
            watched,
            #[cfg(feature = "slaac")]
            slaac,
            ..
        } = inner;
        let mut dev = DriverAdapter {
            cx,
            inner: &mut self.driver,
            caps,
            counters,
            tx_exhausted: false,
            rx_seen: false,
        };

        iface.poll_maintenance(ts);

        let mut res = IoResult::default();
        let mut rx_done = false;
        for _ in 0..RX_BUDGET {
            match iface.poll_ingress_single(ts, &mut dev, sockets) {
                PollIngressSingleResult::None => {
                    rx_done = true;
                    break;
                }
                PollIngressSingleResult::PacketProcessed
                | PollIngressSingleResult::SocketStateChanged => res.progress = true,
            }
        }
        // A router advertisement taken in just now is applied to the interface by the
        // maintenance step; do it at once, so the new address and route are visible in this
        // poll instead of at some later wake-up.
        #[cfg(feature = "slaac")]
        if *slaac && res.progress {
            iface.poll_maintenance(ts);
        }

        // Timeouts only fire during egress; note which watched sockets are open now, to tell
        // a timeout apart from a reset (which arrives during ingress).
        #[cfg(feature = "tcp")]
        if *watched > 0 {
            crate::tcp::before_egress(sockets, slots);
        }
        #[cfg(not(feature = "tcp"))]
        let _ = (&slots, &watched);

        let mut egress_done = false;
        for _ in 0..TX_BUDGET {
            match iface.poll_egress(ts, &mut dev, sockets) {
                smoltcp::iface::PollResult::None => {
                    egress_done = true;
                    break;
                }
                smoltcp::iface::PollResult::SocketStateChanged => res.progress = true,
            }
            if dev.tx_exhausted {
                egress_done = true;
                break;
            }
        }
        res.tx_exhausted = dev.tx_exhausted;
        res.more = !rx_done || !egress_done;

        #[cfg(feature = "tcp")]
        if *watched > 0 {
            crate::tcp::after_egress(sockets, slots);
        }
        res
    }

    /// Make sure the runner is woken at `at` (or earlier).
    ///
    /// This registers every time, even when the deadline did not change: embassy-time keeps
    /// one deadline per waker, so a driver that schedules its own wake-up with the runner's
    /// waker (for example to deliver a delayed frame) replaces the earlier registration.
    fn arm_timer(&mut self, cx: &mut Context<'_>, at: Option<Instant>) {
        let Some(at) = at else {
            return;
        };
        let mut timer = Timer::at(at);
        if Pin::new(&mut timer).poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
    }
}

use core::future::Future as _;

/// Give the interface a new hardware address (IP-medium interfaces have none).
fn set_iface_hw_addr(iface: &mut smoltcp::iface::Interface, addr: smoltcp::wire::HardwareAddress) {
    match addr {
        #[cfg(feature = "medium-ip")]
        smoltcp::wire::HardwareAddress::Ip => {}
        #[cfg(any(feature = "medium-ethernet", feature = "medium-ieee802154"))]
        #[allow(unreachable_patterns)]
        _ => iface.set_hardware_addr(addr),
    }
    let _ = iface;
}
