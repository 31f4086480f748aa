//! Shared pieces of the fault matrix and the soak test: the catalogue of link faults, a
//! virtual-time deadline around every operation, a link flapper, seed selection from the
//! environment, and the checks that an idle runner (link up or down) sleeps.
//!
//! Everything runs on the virtual clock of a ferronet-sim [`Executor`]: a bound of minutes
//! costs no real time, and a future that never completes is caught by its deadline instead of
//! hanging the test.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use embassy_time::{Duration, Instant, Timer, with_deadline};
use ferronet::Stack;
use ferronet_sim::executor::Executor;
use ferronet_sim::link::{LinkConfig, LinkHandle};

/// One column of the fault matrix: a link configuration (its seed is set per run) and whether
/// the link flaps.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Short name, used in test names and messages.
    pub name: &'static str,
    /// The link's faults, latency, jitter and rate.
    pub link: LinkConfig,
    /// Whether a [`spawn_flapper`] takes the link down now and then.
    pub flaps: bool,
}

/// A base link for the matrix: 1 ms of latency each way, so that round trips take time.
const BASE: LinkConfig = LinkConfig {
    latency: Duration::from_millis(1),
    ..LinkConfig::ethernet()
};

/// Every fault alone, then a few combined. Rates are high enough to hit every connection
/// many times, low enough that TCP and the retrying workloads can still make progress.
pub const FAULTS: [Fault; 11] = [
    Fault {
        name: "clean",
        link: BASE,
        flaps: false,
    },
    Fault {
        name: "loss",
        link: LinkConfig { loss: 0.05, ..BASE },
        flaps: false,
    },
    Fault {
        name: "duplicate",
        link: LinkConfig {
            duplicate: 0.1,
            ..BASE
        },
        flaps: false,
    },
    Fault {
        name: "reorder",
        link: LinkConfig {
            reorder: 0.1,
            ..BASE
        },
        flaps: false,
    },
    Fault {
        name: "corrupt",
        link: LinkConfig {
            corrupt: 0.05,
            ..BASE
        },
        flaps: false,
    },
    Fault {
        name: "jitter",
        link: LinkConfig {
            latency: Duration::from_millis(5),
            jitter: Duration::from_millis(40),
            ..BASE
        },
        flaps: false,
    },
    Fault {
        name: "bandwidth",
        // 1 Mbit/s with a 16-frame queue: a full queue is ~200 ms of data.
        link: LinkConfig {
            rate: 1_000_000,
            queue_depth: 16,
            ..BASE
        },
        flaps: false,
    },
    Fault {
        name: "flaps",
        link: BASE,
        flaps: true,
    },
    Fault {
        name: "loss_dup_reorder",
        link: LinkConfig {
            loss: 0.03,
            duplicate: 0.05,
            reorder: 0.05,
            ..BASE
        },
        flaps: false,
    },
    Fault {
        name: "corrupt_jitter_bandwidth",
        link: LinkConfig {
            corrupt: 0.03,
            latency: Duration::from_millis(5),
            jitter: Duration::from_millis(20),
            rate: 2_000_000,
            queue_depth: 32,
            ..BASE
        },
        flaps: false,
    },
    Fault {
        name: "everything",
        link: LinkConfig {
            loss: 0.02,
            duplicate: 0.02,
            reorder: 0.02,
            corrupt: 0.02,
            latency: Duration::from_millis(5),
            jitter: Duration::from_millis(20),
            rate: 2_000_000,
            queue_depth: 32,
            ..BASE
        },
        flaps: true,
    },
];

/// The fault called `name` (panics if there is none: a typo in a test).
pub fn fault(name: &str) -> &'static Fault {
    FAULTS
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fault called {name}"))
}

/// The seeds to run: `FERRONET_FAULT_SEED=n` runs only seed `n` (to reproduce a failure);
/// otherwise `0..FERRONET_FAULT_SEEDS` (default `ci`).
pub fn seeds(ci: u64) -> Vec<u64> {
    if let Some(one) = env_u64("FERRONET_FAULT_SEED") {
        return vec![one];
    }
    (0..env_u64("FERRONET_FAULT_SEEDS").unwrap_or(ci)).collect()
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={value:?} is not a number"),
    }
}

/// Runs `f` with a virtual-time deadline `bound` from now; panics (failing the test) if the
/// deadline, not the operation, finished it. `what` names the operation in the message.
pub async fn within<F: Future>(what: &str, bound: Duration, f: F) -> F::Output {
    let deadline = Instant::now() + bound;
    match with_deadline(deadline, f).await {
        Ok(out) => out,
        Err(_) => panic!(
            "{what}: still pending after {} ms of virtual time: the deadline ended it, not the \
             operation (a future that never completes?)",
            bound.as_millis()
        ),
    }
}

/// A tiny seeded generator (xorshift64*) for test schedules; never returns the same
/// sequence for two seeds that differ.
#[derive(Clone, Debug)]
pub struct TestRng(u64);

impl TestRng {
    /// A generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi` (`lo <= hi`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// While the link is up, the flapper waits 4..12 s; then it takes the link down for
/// 0.5..3 s ([`FLAP_DOWN_MAX`] at most).
pub const FLAP_DOWN_MAX: Duration = Duration::from_millis(3000);

/// Takes `link` down and up again at seeded random times until `stop` is set; leaves the link
/// up when it stops.
pub fn spawn_flapper(ex: &Executor<'_>, link: LinkHandle, seed: u64, stop: Rc<Cell<bool>>) {
    let mut rng = TestRng::new(seed ^ 0xf1a9);
    ex.spawn(async move {
        while !stop.get() {
            Timer::after_millis(rng.range(4000, 12_000)).await;
            if stop.get() {
                break;
            }
            link.set_up(false);
            Timer::after_millis(rng.range(500, FLAP_DOWN_MAX.as_millis())).await;
            link.set_up(true);
        }
        link.set_up(true);
    });
}

/// How long the idle checks watch the runners.
pub const IDLE_WINDOW: Duration = Duration::from_secs(120);

/// Polls an idle runner may make per virtual second with the link up. An idle runner sleeps
/// until smoltcp's next timer (ARP/neighbor expiry, a DHCP renewal, the TIME-WAIT of a closed
/// connection): the matrix saw at most 0.22 polls/s over 1000 seeds. A runner that spins polls
/// thousands of times per second (its 1 ms back-off guard alone would give 1000), and any
/// periodic wake-up of 1 Hz or faster fails this bound.
pub const IDLE_POLLS_PER_SEC: u64 = 1;

/// Polls an idle runner may make per virtual second with the link down: it has nothing to do
/// but wait for the link (at most 0.12 polls/s seen in the matrix); the same bound as link up.
pub const DOWN_POLLS_PER_SEC: u64 = 1;

/// The poll counter of each stack.
fn polls(stacks: &[Stack<'_>]) -> Vec<u64> {
    stacks
        .iter()
        .map(|s| u64::from(s.counters().polls))
        .collect()
}

/// Watches the (idle) `stacks` for [`IDLE_WINDOW`] with the link up, then for as long with it
/// down (`set_link_up` takes the link or switch up or down), and fails if any runner polled more than [`IDLE_POLLS_PER_SEC`] /
/// [`DOWN_POLLS_PER_SEC`] per second. Returns the largest poll rates seen (up, down), in polls
/// per 1000 s, for reports. Leaves the link up.
pub async fn check_idle_polls(
    what: &str,
    stacks: &[Stack<'_>],
    set_link_up: impl Fn(bool),
) -> (u64, u64) {
    let secs = IDLE_WINDOW.as_secs();
    let mut worst = [0u64; 2];
    for (k, (up, bound)) in [(true, IDLE_POLLS_PER_SEC), (false, DOWN_POLLS_PER_SEC)]
        .into_iter()
        .enumerate()
    {
        set_link_up(up);
        let before = polls(stacks);
        Timer::after(IDLE_WINDOW).await;
        for (i, (b, a)) in before.iter().zip(polls(stacks)).enumerate() {
            let n = a - b;
            assert!(
                n <= bound * secs,
                "{what}: stack {i} polled {n} times in {secs} s idle with the link {} \
                 (bound {bound}/s)",
                if up { "up" } else { "down" }
            );
            worst[k] = worst[k].max(n * 1000 / secs);
        }
    }
    set_link_up(true);
    (worst[0], worst[1])
}

/// The four buffers of a UDP socket: 8 datagrams and `N` payload bytes each way.
pub struct UdpBuffers<const N: usize> {
    rx_meta: [ferronet::udp::PacketMetadata; 8],
    rx: [u8; N],
    tx_meta: [ferronet::udp::PacketMetadata; 8],
    tx: [u8; N],
}

impl<const N: usize> UdpBuffers<N> {
    /// Empty buffers.
    pub fn new() -> Self {
        Self {
            rx_meta: [ferronet::udp::PacketMetadata::EMPTY; 8],
            rx: [0; N],
            tx_meta: [ferronet::udp::PacketMetadata::EMPTY; 8],
            tx: [0; N],
        }
    }

    /// A socket on `stack` over these buffers, bound to `port` (0: an ephemeral one); `None`
    /// if the socket table is full.
    pub fn socket<'a>(
        &'a mut self,
        stack: Stack<'a>,
        port: u16,
    ) -> Option<ferronet::udp::UdpSocket<'a>> {
        let mut s = ferronet::udp::UdpSocket::try_new(
            stack,
            &mut self.rx_meta,
            &mut self.rx,
            &mut self.tx_meta,
            &mut self.tx,
        )
        .ok()?;
        s.bind(port).expect("bind a free port");
        Some(s)
    }
}

impl<const N: usize> Default for UdpBuffers<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Closes the sending half of `s`, waits for the peer's end of stream (no byte may come
/// before it) and for the FIN to be acknowledged.
pub async fn close_gracefully(
    s: &mut ferronet::tcp::TcpSocket<'_>,
) -> Result<(), ferronet::tcp::Error> {
    s.close();
    let mut one = [0u8; 1];
    match s.read(&mut one).await? {
        0 => {}
        n => panic!("{n} bytes after the end of the stream"),
    }
    s.flush().await
}
