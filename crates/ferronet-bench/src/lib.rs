//! Side-by-side benchmark of ferronet and embassy-net 0.9.
//!
//! `cargo run --release -p ferronet-bench` runs every workload through both stacks (and a
//! no-stack ceiling) in the same process and prints one table; `callgrind.sh` next to this
//! crate counts instructions per byte / round trip / connection under valgrind; the memory
//! table gives `size_of` of both stacks' types.
//!
//! The `goodput` binary (`cargo run --release -p ferronet-bench --bin goodput`) measures
//! protocol behaviour instead of CPU cost: TCP transfers over a link with a rate, a delay, a
//! device queue of N frames and loss, on a virtual clock; see [`goodput`] and [`shaped`].
//!
//! # Method
//!
//! **Same everything but the stack.** The workloads are written once
//! (`src/workloads.rs`) against the embassy-net 0.9 API and compiled twice, once with
//! `net` = `ferronet` and once with `net` = `embassy_net` (same cargo features: `tcp`, `udp`,
//! `proto-ipv4`, `medium-ethernet`). Both run over the same in-memory Ethernet link
//! ([`link`]: MTU 1514, 64-frame preallocated rings per direction, no per-frame allocation or
//! copy, no faults, no latency, checksums computed in software), the same single-threaded
//! executor ([`exec`]: a poll loop over a fixed task list with one ready flag per task), the
//! same time driver (real clock, microsecond ticks), the same socket buffer sizes and the same
//! application code. Two fresh stacks (192.0.2.1 and 192.0.2.2) are built for every
//! measurement, so no state carries over.
//!
//! **Workloads** (every received byte is checked against a deterministic pattern, see
//! [`pattern`]; a wrong byte, a wrong length or a dropped frame panics):
//!
//! - `tcp_bulk_16k`, `tcp_bulk_64k` (`tcp_bulk` = both): one connection carrying 64 MiB,
//!   with 16 KiB / 64 KiB receive and transmit buffers on both ends; the application writes
//!   and reads in 16 KiB chunks. Reported in MiB/s of payload.
//! - `tcp_rr`: one connection, 20 000 round trips of a 64-byte request echoed back
//!   (4 KiB socket buffers). Reported in round trips per second.
//! - `udp_rr`: the same with UDP datagrams (4 KiB buffers, 4 packet slots).
//! - `tcp_churn`: 2 000 connections one after the other: connect, one byte each way, close
//!   from the client, close from the server, both sockets dropped (smoltcp frees a socket in
//!   TIME-WAIT when it is dropped, so TIME-WAIT holds no resource; local ports are each
//!   stack's own ephemeral choice). Two listening sockets on the server. Reported in
//!   connections per second.
//! - ceiling (`--stack ceiling`, for the bulk and rr workloads): the same payload bytes
//!   through the same link rings, driver API and executor with no stack: see [`ceiling`].
//!
//! **Throughput** is real (wall-clock) time of the timed part of each workload (see each
//! function in the workload modules). A run does `--rounds` rounds (default 5); each round
//! measures ferronet, then embassy-net, then the ceiling, so the stacks alternate and drift
//! hits both alike; the table shows the median of the rounds, the ratio
//! ferronet / embassy-net (above 1: ferronet is faster) and the spread ((max - min) / median)
//! of each stack. A second table gives per-unit link frames and executor polls and the number
//! of timer sleeps (a sleep means the workload waited on a protocol timer, such as a delayed
//! ACK, which would make it a latency test rather than a CPU one; clean runs have none).
//!
//! **Instructions** (`callgrind.sh`): each workload and stack runs alone
//! (`--workload W --stack S --rounds 1`) under `valgrind --tool=callgrind` at two sizes S1 < S2;
//! (Ir(S2) - Ir(S1)) / (S2 - S1) is the cost of one more byte / round trip / connection, with
//! start-up, stack creation, ARP and the connection set-up cancelled out.
//!
//! **Executor order** (`--exec sweep|lifo`): the benchmark's executor polls ready tasks in a
//! fixed order (sweep, the default) or most recently woken first (lifo, as embassy-executor's
//! run queue does). ferronet's runner defers its transmissions after a receive until the
//! woken application has answered, so its figures depend a little on that order; both stacks
//! always run on the same executor and order.
//!
//! **Memory**: `size_of` on x86_64 of each stack's public types and of the futures of the
//! main socket operations. With `--features dns` both stacks also have DNS (its socket and
//! query slots live inside `StackResources`).
//!
//! embassy-net 0.9.1 is built on smoltcp 0.13, ferronet on smoltcp 0.14: the comparison
//! includes whatever changed between those smoltcp versions.
//!
//! **Build it alone** (`-p ferronet-bench`, release). In a workspace-wide build cargo unifies
//! ferronet's features with those the other members ask for (IPv6, SLAAC, DHCP, DNS, `log`,
//! ...), and ferronet then carries work embassy-net does not: the numbers are no longer like
//! for like. The default feature `alloc` exists for such builds (see `Cargo.toml`); it does
//! not change the workloads' code paths but does change `size_of`, so take the memory table
//! from a `--no-default-features` build.
//!
//! # Command line
//!
//! ```text
//! ferronet-bench [--quick] [--workload NAME]... [--stack ferronet|embassy|ceiling]...
//!                [--rounds N] [--size N] [--sizes-only | --no-sizes] [--exec sweep|lifo]
//! ```
//!
//! `--size` is bytes for the bulk workloads (suffixes K, M, G: powers of 1024), round trips
//! for the rr workloads and connections for `tcp_churn`; it applies to every selected
//! workload. `--workload` and `--stack` may be repeated or take comma-separated lists.

pub mod ceiling;
pub mod exec;
pub mod goodput;
pub mod link;
pub mod pattern;
pub mod shaped;
#[cfg(target_os = "linux")]
pub mod tap;

use std::fmt::Write as _;
use std::time::Duration;

// The same source file is compiled once per stack, on purpose.
#[allow(clippy::duplicate_mod)]
pub mod on_embassy;
#[allow(clippy::duplicate_mod)]
pub mod on_ferronet;

/// Parameters shared by every workload, identical for both stacks.
pub mod params {
    /// Socket slots of each `StackResources`.
    pub const SOCKETS: usize = 4;
    /// Host part of stack A's address (192.0.2.1).
    pub const HOST_A: u8 = 1;
    /// Host part of stack B's address (192.0.2.2).
    pub const HOST_B: u8 = 2;
    /// Random seed of stack A.
    pub const SEED_A: u64 = 0x1234_5678;
    /// Random seed of stack B.
    pub const SEED_B: u64 = 0x8765_4321;
    /// TCP port B listens on.
    pub const PORT: u16 = 5000;
    /// UDP port of the rr client.
    pub const UDP_CLIENT_PORT: u16 = 4000;
    /// UDP port of the rr server.
    pub const UDP_SERVER_PORT: u16 = 4001;
    /// Size of the application's reads and writes in `tcp_bulk`.
    pub const APP_CHUNK: usize = 16 * 1024;
    /// Request and response size of the rr workloads.
    pub const RR_MESSAGE: usize = 64;
    /// Receive and transmit buffer size of the rr and churn sockets.
    pub const RR_SOCKET_BUFFER: usize = 4096;
    /// Packet slots of each UDP buffer.
    pub const UDP_PACKETS: usize = 4;
    /// Server tasks (listening sockets) in `tcp_churn`.
    pub const CHURN_LISTENERS: usize = 2;
}

/// One measurement of one workload on one stack.
#[derive(Clone, Copy, Debug)]
pub struct Measurement {
    /// Real time of the timed part.
    pub elapsed: Duration,
    /// Bytes, round trips or connections done.
    pub units: u64,
    /// What crossed the link during the whole run.
    pub link: link::LinkStats,
    /// What the executor did during the whole run.
    pub exec: exec::ExecStats,
}

impl Measurement {
    /// Units per second.
    pub fn rate(&self) -> f64 {
        self.units as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// 64 MiB over one TCP connection, 16 KiB socket buffers.
    TcpBulk16k,
    /// 64 MiB over one TCP connection, 64 KiB socket buffers.
    TcpBulk64k,
    /// 64-byte request/response over TCP.
    TcpRr,
    /// 64-byte request/response over UDP.
    UdpRr,
    /// Connect, one byte each way, close.
    TcpChurn,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 5] = [
        Workload::TcpBulk16k,
        Workload::TcpBulk64k,
        Workload::TcpRr,
        Workload::UdpRr,
        Workload::TcpChurn,
    ];

    /// The name used on the command line and in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Workload::TcpBulk16k => "tcp_bulk_16k",
            Workload::TcpBulk64k => "tcp_bulk_64k",
            Workload::TcpRr => "tcp_rr",
            Workload::UdpRr => "udp_rr",
            Workload::TcpChurn => "tcp_churn",
        }
    }

    /// Workloads named `name` (`tcp_bulk` names both bulk workloads).
    pub fn parse(name: &str) -> Option<Vec<Workload>> {
        if name == "tcp_bulk" {
            return Some(vec![Workload::TcpBulk16k, Workload::TcpBulk64k]);
        }
        Workload::ALL
            .iter()
            .find(|w| w.name() == name)
            .map(|w| vec![*w])
    }

    /// Whether the size is in bytes (else a count).
    pub fn is_bulk(self) -> bool {
        matches!(self, Workload::TcpBulk16k | Workload::TcpBulk64k)
    }

    /// The default size (bytes or count).
    pub fn default_size(self) -> u64 {
        match self {
            Workload::TcpBulk16k | Workload::TcpBulk64k => 64 << 20,
            Workload::TcpRr | Workload::UdpRr => 20_000,
            Workload::TcpChurn => 2_000,
        }
    }

    /// The `--quick` size.
    pub fn quick_size(self) -> u64 {
        match self {
            Workload::TcpBulk16k | Workload::TcpBulk64k => 256 << 10,
            Workload::TcpRr | Workload::UdpRr => 200,
            Workload::TcpChurn => 20,
        }
    }

    /// Unit of the rate column.
    pub fn rate_unit(self) -> &'static str {
        match self {
            Workload::TcpBulk16k | Workload::TcpBulk64k => "MiB/s",
            Workload::TcpRr | Workload::UdpRr => "RT/s",
            Workload::TcpChurn => "conn/s",
        }
    }

    /// Unit of one measured item.
    pub fn item(self) -> &'static str {
        match self {
            Workload::TcpBulk16k | Workload::TcpBulk64k => "byte",
            Workload::TcpRr | Workload::UdpRr => "RT",
            Workload::TcpChurn => "conn",
        }
    }

    fn display_rate(self, rate: f64) -> f64 {
        if self.is_bulk() {
            rate / (1024.0 * 1024.0)
        } else {
            rate
        }
    }

    fn display_size(self, size: u64) -> String {
        if self.is_bulk() {
            format_bytes(size)
        } else {
            format!("{size} {}", self.item())
        }
    }
}

/// What carries a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackKind {
    /// ferronet.
    Ferronet,
    /// embassy-net 0.9.
    Embassy,
    /// No stack: the link and executor alone.
    Ceiling,
}

impl StackKind {
    /// All of them, in measuring order.
    pub const ALL: [StackKind; 3] = [StackKind::Ferronet, StackKind::Embassy, StackKind::Ceiling];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            StackKind::Ferronet => "ferronet",
            StackKind::Embassy => "embassy",
            StackKind::Ceiling => "ceiling",
        }
    }

    /// The stack named `name` (`ceiling` included).
    pub fn parse_stack(name: &str) -> Option<StackKind> {
        Self::parse(name)
    }

    fn parse(name: &str) -> Option<StackKind> {
        match name {
            "ferronet" => Some(StackKind::Ferronet),
            "embassy" | "embassy-net" => Some(StackKind::Embassy),
            "ceiling" | "none" => Some(StackKind::Ceiling),
            _ => None,
        }
    }
}

/// Runs one workload once on one stack; `None` where it does not apply (no churn ceiling).
pub fn measure(workload: Workload, stack: StackKind, size: u64) -> Option<Measurement> {
    let size = usize::try_from(size).expect("size fits in usize");
    Some(match (stack, workload) {
        (StackKind::Ferronet, Workload::TcpBulk16k) => on_ferronet::tcp_bulk(size, 16 << 10),
        (StackKind::Ferronet, Workload::TcpBulk64k) => on_ferronet::tcp_bulk(size, 64 << 10),
        (StackKind::Ferronet, Workload::TcpRr) => on_ferronet::tcp_rr(size),
        (StackKind::Ferronet, Workload::UdpRr) => on_ferronet::udp_rr(size),
        (StackKind::Ferronet, Workload::TcpChurn) => on_ferronet::tcp_churn(size),
        (StackKind::Embassy, Workload::TcpBulk16k) => on_embassy::tcp_bulk(size, 16 << 10),
        (StackKind::Embassy, Workload::TcpBulk64k) => on_embassy::tcp_bulk(size, 64 << 10),
        (StackKind::Embassy, Workload::TcpRr) => on_embassy::tcp_rr(size),
        (StackKind::Embassy, Workload::UdpRr) => on_embassy::udp_rr(size),
        (StackKind::Embassy, Workload::TcpChurn) => on_embassy::tcp_churn(size),
        (StackKind::Ceiling, Workload::TcpBulk16k | Workload::TcpBulk64k) => ceiling::bulk(size),
        (StackKind::Ceiling, Workload::TcpRr | Workload::UdpRr) => ceiling::rr(size),
        (StackKind::Ceiling, Workload::TcpChurn) => return None,
    })
}

/// Whether and how to print the memory table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizesMode {
    /// After the throughput tables.
    Show,
    /// Not at all.
    Skip,
    /// Only the memory table, no workload.
    Only,
}

/// Command-line options.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Workloads to run, in table order.
    pub workloads: Vec<Workload>,
    /// Stacks to run them on.
    pub stacks: Vec<StackKind>,
    /// Rounds per workload.
    pub rounds: usize,
    /// Size for every workload instead of its default.
    pub size: Option<u64>,
    /// `--quick`: one round at tiny sizes (unless `--rounds` / `--size` say otherwise).
    pub quick: bool,
    /// The memory table.
    pub sizes: SizesMode,
    /// The executor's polling order (`--exec`).
    pub exec: exec::Order,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workloads: Workload::ALL.to_vec(),
            stacks: StackKind::ALL.to_vec(),
            rounds: 5,
            size: None,
            quick: false,
            sizes: SizesMode::Show,
            exec: exec::Order::Sweep,
        }
    }
}

/// The usage text.
pub const USAGE: &str = "\
usage: ferronet-bench [options]
  --quick                 one round of each workload at tiny sizes (CI smoke test)
  --workload NAME         tcp_bulk (= tcp_bulk_16k,tcp_bulk_64k), tcp_bulk_16k, tcp_bulk_64k,
                          tcp_rr, udp_rr, tcp_churn; repeatable or comma-separated (default: all)
  --stack NAME            ferronet, embassy, ceiling; repeatable or comma-separated (default: all)
  --rounds N              rounds per workload, median reported (default 5, --quick 1)
  --size N                bytes (bulk; suffix K, M, G = 1024^n), round trips (rr) or
                          connections (churn), for every selected workload
  --sizes-only            print only the memory (size_of) table
  --no-sizes              do not print the memory table
  --exec ORDER            sweep (default): ready tasks polled in a fixed order;
                          lifo: most recently woken first, as embassy-executor
  -h, --help              this text";

/// Parses a size with an optional K, M or G suffix (powers of 1024).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

impl Options {
    /// Parses the command line (without the program name). `Ok(None)`: help was asked for.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
        let mut o = Options::default();
        let mut workloads: Vec<Workload> = Vec::new();
        let mut stacks: Vec<StackKind> = Vec::new();
        let mut rounds = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--quick" => o.quick = true,
                "--sizes-only" => o.sizes = SizesMode::Only,
                "--no-sizes" => o.sizes = SizesMode::Skip,
                "--exec" => {
                    o.exec = match value("--exec")?.as_str() {
                        "sweep" => exec::Order::Sweep,
                        "lifo" => exec::Order::Lifo,
                        v => return Err(format!("--exec: `{v}`: expected sweep or lifo")),
                    }
                }
                "--workload" => {
                    for name in value("--workload")?.split(',') {
                        let w = Workload::parse(name.trim())
                            .ok_or_else(|| format!("unknown workload `{name}`"))?;
                        for w in w {
                            if !workloads.contains(&w) {
                                workloads.push(w);
                            }
                        }
                    }
                }
                "--stack" => {
                    for name in value("--stack")?.split(',') {
                        let s = StackKind::parse(name.trim())
                            .ok_or_else(|| format!("unknown stack `{name}`"))?;
                        if !stacks.contains(&s) {
                            stacks.push(s);
                        }
                    }
                }
                "--rounds" => {
                    let v = value("--rounds")?;
                    let n: usize = v
                        .parse()
                        .map_err(|_| format!("--rounds: not a number: `{v}`"))?;
                    if n == 0 {
                        return Err("--rounds must be at least 1".into());
                    }
                    rounds = Some(n);
                }
                "--size" => {
                    let v = value("--size")?;
                    let n = parse_size(&v).ok_or_else(|| format!("--size: bad size `{v}`"))?;
                    if n == 0 {
                        return Err("--size must be at least 1".into());
                    }
                    o.size = Some(n);
                }
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        if !workloads.is_empty() {
            // Keep table order.
            o.workloads = Workload::ALL
                .into_iter()
                .filter(|w| workloads.contains(w))
                .collect();
        }
        if !stacks.is_empty() {
            o.stacks = StackKind::ALL
                .into_iter()
                .filter(|s| stacks.contains(s))
                .collect();
        }
        o.rounds = rounds.unwrap_or(if o.quick { 1 } else { 5 });
        Ok(Some(o))
    }

    /// The size `workload` runs at.
    pub fn size_of(&self, workload: Workload) -> u64 {
        match (self.size, self.quick) {
            (Some(s), _) => s,
            (None, true) => workload.quick_size(),
            (None, false) => workload.default_size(),
        }
    }
}

/// The measurements of one workload.
#[derive(Clone, Debug)]
pub struct WorkloadResult {
    /// Which workload.
    pub workload: Workload,
    /// Its size.
    pub size: u64,
    /// Per stack (in [`StackKind::ALL`] order, only those run), every round.
    pub runs: Vec<(StackKind, Vec<Measurement>)>,
}

impl WorkloadResult {
    /// The rounds of `stack`, if it ran.
    pub fn of(&self, stack: StackKind) -> Option<&[Measurement]> {
        self.runs
            .iter()
            .find(|(s, _)| *s == stack)
            .map(|(_, m)| m.as_slice())
            .filter(|m| !m.is_empty())
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median rate of the rounds.
pub fn median_rate(m: &[Measurement]) -> f64 {
    median(m.iter().map(Measurement::rate).collect())
}

fn spread(m: &[Measurement]) -> f64 {
    let rates: Vec<f64> = m.iter().map(Measurement::rate).collect();
    let max = rates.iter().copied().fold(f64::MIN, f64::max);
    let min = rates.iter().copied().fold(f64::MAX, f64::min);
    (max - min) / median(rates).max(1e-12)
}

fn format_bytes(b: u64) -> String {
    if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
        format!("{} MiB", b >> 20)
    } else if b >= 1 << 10 && b.is_multiple_of(1 << 10) {
        format!("{} KiB", b >> 10)
    } else {
        format!("{b} B")
    }
}

fn format_rate(w: Workload, rate: f64) -> String {
    let r = w.display_rate(rate);
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// Runs the workloads as `opts` says; returns every measurement. Prints progress on stderr.
pub fn run_workloads(opts: &Options) -> Vec<WorkloadResult> {
    // Build the pattern table before anything is timed.
    let _ = pattern::slice(0, 1);
    let mut results = Vec::new();
    for &w in &opts.workloads {
        let size = opts.size_of(w);
        let mut runs: Vec<(StackKind, Vec<Measurement>)> =
            opts.stacks.iter().map(|s| (*s, Vec::new())).collect();
        eprint!("{:<13} {:>10}:", w.name(), w.display_size(size));
        for round in 0..opts.rounds {
            for (stack, ms) in runs.iter_mut() {
                if let Some(m) = measure(w, *stack, size) {
                    ms.push(m);
                }
            }
            eprint!(" {}", round + 1);
        }
        eprintln!();
        results.push(WorkloadResult {
            workload: w,
            size,
            runs,
        });
    }
    results
}

/// The throughput and diagnostics tables.
pub fn format_results(opts: &Options, results: &[WorkloadResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Throughput: median of {} round(s), real time; ratio = ferronet / embassy-net (> 1: ferronet faster)",
        opts.rounds
    );
    let _ = writeln!(
        out,
        "(link: in-memory Ethernet, MTU {}, {}-frame rings; one poll-loop executor, {} order; spread = (max - min) / median)",
        link::MTU,
        link::QUEUE_DEPTH,
        match opts.exec {
            exec::Order::Sweep => "sweep",
            exec::Order::Lifo => "lifo",
        }
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| workload     | size       | unit   |  ferronet | embassy-net |  ratio |   ceiling | spread f / e  |"
    );
    let _ = writeln!(
        out,
        "|--------------|------------|--------|----------:|------------:|-------:|----------:|---------------|"
    );
    for r in results {
        let w = r.workload;
        let cell = |s: StackKind| {
            r.of(s)
                .map(|m| format_rate(w, median_rate(m)))
                .unwrap_or_else(|| "-".into())
        };
        let ratio = match (r.of(StackKind::Ferronet), r.of(StackKind::Embassy)) {
            (Some(f), Some(e)) => format!("{:.2}", median_rate(f) / median_rate(e)),
            _ => "-".into(),
        };
        let sp = |s: StackKind| {
            r.of(s)
                .map(|m| format!("{:.0}%", spread(m) * 100.0))
                .unwrap_or_else(|| "-".into())
        };
        let _ = writeln!(
            out,
            "| {:<12} | {:<10} | {:<6} | {:>9} | {:>11} | {:>6} | {:>9} | {:>5} / {:<5} |",
            w.name(),
            w.display_size(r.size),
            w.rate_unit(),
            cell(StackKind::Ferronet),
            cell(StackKind::Embassy),
            ratio,
            cell(StackKind::Ceiling),
            sp(StackKind::Ferronet),
            sp(StackKind::Embassy),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Diagnostics (all rounds): link frames and executor polls per unit (per KiB for bulk), timer sleeps"
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| workload     | stack    | frames/unit | polls/unit | sleeps |"
    );
    let _ = writeln!(
        out,
        "|--------------|----------|------------:|-----------:|-------:|"
    );
    for r in results {
        for (stack, ms) in &r.runs {
            if ms.is_empty() {
                continue;
            }
            let per = if r.workload.is_bulk() { 1024.0 } else { 1.0 };
            let units: f64 = ms.iter().map(|m| m.units as f64).sum::<f64>() / per;
            let frames: f64 = ms.iter().map(|m| m.link.frames as f64).sum();
            let polls: f64 = ms.iter().map(|m| m.exec.polls as f64).sum();
            let sleeps: u64 = ms.iter().map(|m| m.exec.sleeps).sum();
            let _ = writeln!(
                out,
                "| {:<12} | {:<8} | {:>11.2} | {:>10.2} | {:>6} |",
                r.workload.name(),
                stack.name(),
                frames / units,
                polls / units,
                sleeps
            );
        }
    }
    out
}

/// The memory table.
pub fn format_sizes() -> String {
    let f = on_ferronet::sizes();
    let e = on_embassy::sizes();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Memory: size_of on {} (bytes); DNS {}; alloc {}",
        std::env::consts::ARCH,
        if cfg!(feature = "dns") {
            "enabled in both stacks (--features dns)"
        } else {
            "disabled (build with --features dns to include it)"
        },
        if cfg!(feature = "alloc") {
            "ON (the default feature `alloc`: smoltcp's ManagedSlice has its Vec variant, \
             which makes socket storage larger than on firmware; build with \
             --no-default-features for no_std-like sizes)"
        } else {
            "off (as on firmware)"
        }
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| type                              | ferronet | embassy-net | difference |"
    );
    let _ = writeln!(
        out,
        "|-----------------------------------|---------:|------------:|-----------:|"
    );
    for (label, fv) in &f {
        let ev = e.iter().find(|(l, _)| l == label).map(|(_, v)| *v);
        let (es, ds) = match ev {
            Some(ev) => (ev.to_string(), format!("{:+}", *fv as i64 - ev as i64)),
            None => ("-".into(), "-".into()),
        };
        let _ = writeln!(out, "| {label:<33} | {fv:>8} | {es:>11} | {ds:>10} |");
    }
    let _ = writeln!(
        out,
        "| {:<33} | {:>8} | {:>11} | {:>10} |",
        "link::BenchDevice (the driver)",
        std::mem::size_of::<link::BenchDevice>(),
        std::mem::size_of::<link::BenchDevice>(),
        "+0"
    );
    out
}

/// Runs everything `opts` asks for and prints the tables on stdout.
pub fn run(opts: &Options) -> Vec<WorkloadResult> {
    exec::set_order(opts.exec);
    let mut results = Vec::new();
    if opts.sizes != SizesMode::Only {
        results = run_workloads(opts);
        println!("{}", format_results(opts, &results));
    }
    if opts.sizes != SizesMode::Skip {
        println!("{}", format_sizes());
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--quick` at even smaller sizes: every workload on every stack, in process.
    #[test]
    fn quick_mode_runs_every_workload_on_every_stack() {
        let opts = Options::parse(["--quick".to_string()])
            .expect("valid options")
            .expect("not --help");
        assert_eq!(opts.rounds, 1);
        assert_eq!(opts.workloads, Workload::ALL);
        let results = run(&opts);
        assert_eq!(results.len(), Workload::ALL.len());
        for r in &results {
            for stack in [StackKind::Ferronet, StackKind::Embassy] {
                let m = r.of(stack).expect("both stacks measured");
                assert_eq!(m.len(), 1);
                assert_eq!(m[0].units, r.workload.quick_size());
                assert!(m[0].link.frames > 0);
            }
            assert_eq!(
                r.of(StackKind::Ceiling).is_some(),
                r.workload != Workload::TcpChurn
            );
        }
        let text = format_results(&opts, &results);
        assert!(text.contains("tcp_churn"));
        assert!(format_sizes().contains("StackResources<4>"));
    }

    /// The last-in-first-out executor runs every workload to the end, every byte checked.
    #[test]
    fn quick_mode_on_the_lifo_executor() {
        let mut opts = Options::parse(["--quick".to_string(), "--exec=lifo".to_string()])
            .expect("valid options")
            .expect("not --help");
        opts.sizes = SizesMode::Skip;
        let results = run(&opts);
        assert_eq!(results.len(), Workload::ALL.len());
        for r in &results {
            for stack in [StackKind::Ferronet, StackKind::Embassy] {
                let m = r.of(stack).expect("both stacks measured");
                assert_eq!(m[0].units, r.workload.quick_size());
            }
        }
        assert!(format_results(&opts, &results).contains("lifo order"));
    }

    #[test]
    fn options_parse() {
        let o = Options::parse(
            "--workload tcp_bulk,udp_rr --stack embassy --rounds=3 --size 4M --no-sizes"
                .split(' ')
                .map(String::from),
        )
        .expect("valid")
        .expect("not help");
        assert_eq!(
            o.workloads,
            [Workload::TcpBulk16k, Workload::TcpBulk64k, Workload::UdpRr]
        );
        assert_eq!(o.stacks, [StackKind::Embassy]);
        assert_eq!(
            (o.rounds, o.size, o.sizes),
            (3, Some(4 << 20), SizesMode::Skip)
        );
        assert!(Options::parse(["--bogus".to_string()]).is_err());
        let lifo = Options::parse(["--exec=lifo".to_string()]).expect("valid");
        assert_eq!(lifo.map(|o| o.exec), Some(exec::Order::Lifo));
        assert!(Options::parse(["--exec=fifo".to_string()]).is_err());
        assert_eq!(Options::parse(["-h".to_string()]), Ok(None));
    }
}
