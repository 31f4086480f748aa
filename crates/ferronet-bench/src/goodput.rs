//! The goodput benchmark: TCP transfers over a [`shaped`] link (link rate, fixed delay, device
//! queue of N frames each way, loss) on the virtual clock, ferronet beside embassy-net 0.9.
//!
//! Both stacks run the same workload source ([`crate::on_ferronet::goodput`] and
//! [`crate::on_embassy::goodput`], compiled from `src/workloads.rs`), the same stack at both
//! ends of the link: A (192.0.2.1, the client, which connects) and B (192.0.2.2, the server).
//!
//! - `download`: B sends to A; `upload`: A sends to B; `both`: both at once, on two
//!   connections.
//! - Socket buffers (receive and transmit, both ends) of 4, 8, 16 or 64 KiB.
//! - Every received byte is checked; a wrong byte or length panics. Nothing asserts a time.
//!
//! **Goodput** is payload bytes over the virtual time from the sender's connection being
//! established to the receiver having read the last byte, as a percentage of the link rate
//! (the line rate: a full-sized segment can carry at most 94.9 % of it, see [`shaped`]).
//! As the virtual CPU costs no time, the result depends only on the protocol and the
//! stacks' defaults, and is the same on every run and every machine.
//!
//! **Bound**: what the window and the link allow, min(link, window / RTT); for cells with loss
//! also the Mathis et al. estimate for a standard Reno sender, MSS / RTT x 1.22 / sqrt(p).

use std::fmt::Write as _;

use crate::exec::ExecStats;
use crate::shaped::{self, Shape};
use crate::{StackKind, on_embassy, on_ferronet};

/// What one goodput run measured.
#[derive(Clone, Debug)]
pub struct Run {
    /// Per flow, the virtual microseconds from the sender's established connection to the
    /// receiver's last byte (`None` if it did not finish).
    pub flows: Vec<Option<u64>>,
    /// Bytes each flow carries.
    pub bytes: u64,
    /// The link's counters at the end.
    pub link: shaped::Stats,
    /// What the executor did.
    pub exec: ExecStats,
    /// Virtual time at the end, microseconds.
    pub end_us: u64,
    /// Whether every flow finished within [`LIMIT_S`].
    pub finished: bool,
}

/// The transfers of a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// B sends to A.
    Download,
    /// A sends to B.
    Upload,
    /// Both at once, two connections.
    Both,
}

impl Workload {
    /// All, in table order.
    pub const ALL: [Workload; 3] = [Workload::Download, Workload::Upload, Workload::Both];

    /// The name on the command line and in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Download => "download",
            Workload::Upload => "upload",
            Workload::Both => "both",
        }
    }

    fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }

    /// The flows: for `Both`, the upload first (port 5000) and the download (port 5001).
    pub fn flows(self) -> Vec<crate::on_ferronet::Flow> {
        use crate::on_ferronet::Flow;
        let port = crate::params::PORT;
        match self {
            Workload::Download => vec![Flow {
                a_sends: false,
                port,
            }],
            Workload::Upload => vec![Flow {
                a_sends: true,
                port,
            }],
            Workload::Both => vec![
                Flow {
                    a_sends: true,
                    port,
                },
                Flow {
                    a_sends: false,
                    port: port + 1,
                },
            ],
        }
    }
}

/// One cell of the matrix (everything but the stack).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    /// The transfers.
    pub workload: Workload,
    /// Socket buffer size in bytes.
    pub buf: usize,
    /// The link.
    pub shape: Shape,
    /// Bytes per flow.
    pub bytes: usize,
}

impl Cell {
    /// min(link, window / RTT), and for a lossy link also the Mathis bound, as a fraction of
    /// the link rate.
    pub fn bound(&self) -> f64 {
        let rate = self.shape.rate as f64;
        let rtt = self.shape.rtt_s();
        let mut b = self.shape.ceiling().min(self.buf as f64 * 8.0 / rtt / rate);
        if self.shape.loss > 0.0 {
            let mathis = shaped::MSS as f64 * 8.0 / rtt * 1.22 / self.shape.loss.sqrt();
            b = b.min(mathis / rate);
        }
        b
    }
}

/// Virtual seconds after which a run is reported as not finished.
pub const LIMIT_S: u64 = 900;

/// Runs one cell on one stack.
pub fn run_cell(stack: StackKind, cell: &Cell) -> Run {
    let flows = cell.workload.flows();
    match stack {
        StackKind::Ferronet => {
            on_ferronet::goodput(cell.shape, &flows, cell.buf, cell.bytes, LIMIT_S)
        }
        StackKind::Embassy => {
            let flows: Vec<on_embassy::Flow> = flows
                .iter()
                .map(|f| on_embassy::Flow {
                    a_sends: f.a_sends,
                    port: f.port,
                })
                .collect();
            on_embassy::goodput(cell.shape, &flows, cell.buf, cell.bytes, LIMIT_S)
        }
        StackKind::Ceiling => panic!("goodput: no ceiling run (see Cell::bound)"),
    }
}

/// The result of one cell on one stack, reduced to what the tables show.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Goodput of each flow as a fraction of the link rate (`None`: did not finish).
    pub goodput: Vec<Option<f64>>,
    /// Frames dropped at a device queue (TX or RX ring), both directions.
    pub queue_dropped: u64,
    /// Frames lost on the wire, both directions.
    pub lost: u64,
    /// Retransmitted segments, both directions.
    pub retransmissions: u64,
    /// Time the network stood empty waiting for a retransmission timeout, ms.
    pub wait_rto_ms: f64,
    /// Time the network stood empty waiting for an ACK or window update, ms.
    pub wait_ack_ms: f64,
    /// Frames sent per KiB of goodput (both directions).
    pub frames_per_kib: f64,
    /// The run ended with nothing left to happen (no frame, no timer) before every
    /// connection had delivered its end of stream: a wedged connection.
    pub stalled: bool,
}

impl Outcome {
    /// Reduces a run of `cell`.
    pub fn of(cell: &Cell, run: &Run) -> Outcome {
        let rate = cell.shape.rate as f64;
        let t = run.link.total();
        let payload_kib = (run.bytes as f64 * run.flows.len() as f64) / 1024.0;
        Outcome {
            goodput: run
                .flows
                .iter()
                .map(|f| f.map(|us| run.bytes as f64 * 8.0 / (us.max(1) as f64 / 1e6) / rate))
                .collect(),
            queue_dropped: t.queue_dropped(),
            lost: t.lost,
            retransmissions: t.retransmissions,
            wait_rto_ms: run.link.wait_rto_us as f64 / 1000.0,
            wait_ack_ms: run.link.wait_ack_us as f64 / 1000.0,
            frames_per_kib: t.frames as f64 / payload_kib,
            stalled: run.exec.stalled,
        }
    }

    /// The smallest goodput of the flows (0 for one that did not finish).
    pub fn worst(&self) -> f64 {
        self.goodput
            .iter()
            .map(|g| g.unwrap_or(0.0))
            .fold(f64::MAX, f64::min)
    }

    fn goodput_text(&self) -> String {
        let mut text = self
            .goodput
            .iter()
            .map(|g| match g {
                Some(g) => format!("{:.1}", g * 100.0),
                None => "DNF".into(),
            })
            .collect::<Vec<_>>()
            .join(" / ");
        if self.stalled {
            text.push_str(" (wedged)");
        }
        text
    }
}

/// The matrix to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Workloads.
    pub workloads: Vec<Workload>,
    /// Socket buffer sizes, bytes.
    pub bufs: Vec<usize>,
    /// Link rates, bit/s.
    pub rates: Vec<u64>,
    /// Round-trip propagation delays, microseconds.
    pub rtts_us: Vec<u64>,
    /// Device queue sizes, frames.
    pub queues: Vec<usize>,
    /// Loss probabilities.
    pub losses: Vec<f64>,
    /// Bytes per flow (`None`: by rate, [`default_bytes`]).
    pub bytes: Option<usize>,
    /// Stacks.
    pub stacks: Vec<StackKind>,
    /// Seed of the loss PRNGs.
    pub seed: u64,
    /// Where to write one JSON object per cell and stack, if anywhere.
    pub json: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workloads: Workload::ALL.to_vec(),
            bufs: vec![4 << 10, 8 << 10, 16 << 10, 64 << 10],
            rates: vec![100_000_000, 10_000_000],
            rtts_us: vec![200, 5000],
            queues: vec![4, 8, 32],
            losses: vec![0.0, 0.01],
            bytes: None,
            stacks: vec![StackKind::Ferronet, StackKind::Embassy],
            seed: 1,
            json: None,
        }
    }
}

/// Bytes per flow at `rate`: about 0.7 s of the link at full speed (8 MiB at 100 Mbit/s,
/// 1 MiB at 10 Mbit/s), so that slow start and the handshake weigh little and a 1 % loss hits
/// tens of segments.
pub fn default_bytes(rate: u64) -> usize {
    if rate >= 50_000_000 { 8 << 20 } else { 1 << 20 }
}

/// Usage of the `goodput` binary.
pub const USAGE: &str = "\
usage: goodput [--quick] [--workload download,upload,both] [--buf 4,8,16,64 (KiB)]
               [--rate 100,10 (Mbit/s)] [--rtt 0.2,5 (ms)] [--queue 4,8,32] [--loss 0,1 (%)]
               [--bytes N (per flow)] [--stack ferronet,embassy] [--seed N] [--json FILE]
Runs every combination on the virtual clock and prints a markdown table.
--quick: 256 KiB per flow (a smoke test; slow start weighs heavily).";

fn list<T>(v: &str, f: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    v.split(',')
        .map(|x| f(x.trim()).ok_or_else(|| format!("bad value `{x}`")))
        .collect()
}

impl Options {
    /// Parses the command line (without the program name); `Ok(None)`: help asked for.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
        let mut o = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--quick" => o.bytes = Some(256 << 10),
                "--workload" => o.workloads = list(&value()?, Workload::parse)?,
                "--buf" => o.bufs = list(&value()?, |x| x.parse::<usize>().ok().map(|k| k << 10))?,
                "--rate" => {
                    o.rates = list(&value()?, |x| x.parse::<u64>().ok().map(|m| m * 1_000_000))?
                }
                "--rtt" => {
                    o.rtts_us = list(&value()?, |x| {
                        x.parse::<f64>().ok().map(|ms| (ms * 1000.0).round() as u64)
                    })?
                }
                "--queue" => o.queues = list(&value()?, |x| x.parse().ok())?,
                "--loss" => {
                    o.losses = list(&value()?, |x| x.parse::<f64>().ok().map(|p| p / 100.0))?
                }
                "--bytes" => {
                    let v = value()?;
                    o.bytes = Some(crate::parse_size(&v).map_or_else(
                        || Err(format!("--bytes: bad size `{v}`")),
                        |n| usize::try_from(n).map_err(|_| "--bytes: too large".to_string()),
                    )?)
                }
                "--stack" => o.stacks = list(&value()?, StackKind::parse_stack)?,
                "--seed" => {
                    let v = value()?;
                    o.seed = v.parse().map_err(|_| format!("--seed: bad number `{v}`"))?
                }
                "--json" => o.json = Some(value()?),
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        if o.rates.contains(&0) || o.queues.contains(&0) || o.bufs.contains(&0) {
            return Err("rates, queues and buffers must be non-zero".into());
        }
        if o.losses.iter().any(|p| !(0.0..=1.0).contains(p)) {
            return Err("loss must be in 0..=100 %".into());
        }
        if o.stacks.contains(&StackKind::Ceiling) {
            return Err("goodput: stacks are ferronet and embassy".into());
        }
        Ok(Some(o))
    }

    /// Every cell, in table order.
    pub fn cells(&self) -> Vec<Cell> {
        let mut v = Vec::new();
        for &rate in &self.rates {
            for &rtt in &self.rtts_us {
                for &loss in &self.losses {
                    for &queue in &self.queues {
                        for &workload in &self.workloads {
                            for &buf in &self.bufs {
                                v.push(Cell {
                                    workload,
                                    buf,
                                    shape: Shape {
                                        rate,
                                        delay_us: rtt / 2,
                                        queue,
                                        loss,
                                        seed: self.seed,
                                    },
                                    bytes: self.bytes.unwrap_or_else(|| default_bytes(rate)),
                                });
                            }
                        }
                    }
                }
            }
        }
        v
    }
}

/// One table row: a cell and each stack's outcome.
pub type Row = (Cell, Vec<(StackKind, Outcome)>);

/// Runs the matrix; progress on stderr.
pub fn run(opts: &Options) -> Vec<Row> {
    let _ = crate::pattern::slice(0, 1);
    let cells = opts.cells();
    let mut rows = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let mut outs = Vec::new();
        for &stack in &opts.stacks {
            let run = run_cell(stack, cell);
            outs.push((stack, Outcome::of(cell, &run)));
        }
        eprint!("\rgoodput: {}/{} cells", i + 1, cells.len());
        rows.push((*cell, outs));
    }
    eprintln!();
    rows
}

fn pair<T: ToString>(outs: &[(StackKind, Outcome)], f: impl Fn(&Outcome) -> T) -> String {
    outs.iter()
        .map(|(_, o)| f(o).to_string())
        .collect::<Vec<_>>()
        .join(" / ")
}

/// The results as a markdown table (goodput in % of the link rate; for `both`,
/// upload / download).
pub fn format_table(opts: &Options, rows: &[Row]) -> String {
    let mut out = String::new();
    let names: Vec<&str> = opts.stacks.iter().map(|s| s.name()).collect();
    let _ = writeln!(
        out,
        "Goodput in % of the link rate (line rate; a full-sized segment carries at most {:.1} %), \
         virtual clock, same stack at both ends; `both`: upload / download. \
         Pairs are {}.",
        Shape {
            rate: 1,
            delay_us: 0,
            queue: 1,
            loss: 0.0,
            seed: 0
        }
        .ceiling()
            * 100.0,
        names.join(" / ")
    );
    let _ = writeln!(out);
    let mut header = String::from("| rate | RTT | loss | N | workload | buffer |");
    let mut rule = String::from("|---|---|---|--:|---|--:|");
    for n in &names {
        let _ = write!(header, " {n} |");
        rule.push_str("--:|");
    }
    header.push_str(
        " bound | queue drops | retransmissions | RTO wait, ms | ACK wait, ms | frames/KiB |",
    );
    rule.push_str("--:|--:|--:|--:|--:|--:|");
    let _ = writeln!(out, "{header}\n{rule}");
    for (cell, outs) in rows {
        let s = &cell.shape;
        let _ = write!(
            out,
            "| {} Mbit/s | {} ms | {} % | {} | {} | {} KiB |",
            s.rate / 1_000_000,
            s.delay_us as f64 * 2.0 / 1000.0,
            s.loss * 100.0,
            s.queue,
            cell.workload.name(),
            cell.buf >> 10
        );
        for (_, o) in outs {
            let _ = write!(out, " {} |", o.goodput_text());
        }
        let _ = writeln!(
            out,
            " {:.1} | {} | {} | {} | {} | {} |",
            cell.bound() * 100.0,
            pair(outs, |o| o.queue_dropped),
            pair(outs, |o| o.retransmissions),
            pair(outs, |o| format!("{:.0}", o.wait_rto_ms)),
            pair(outs, |o| format!("{:.0}", o.wait_ack_ms)),
            pair(outs, |o| format!("{:.2}", o.frames_per_kib)),
        );
    }
    out
}

/// One JSON object per row (for the chart).
pub fn format_json(rows: &[Row]) -> String {
    let mut out = String::new();
    for (cell, outs) in rows {
        let s = &cell.shape;
        let _ = write!(
            out,
            "{{\"rate\":{},\"rtt_us\":{},\"loss\":{},\"queue\":{},\"workload\":\"{}\",\"buf\":{},\"bound\":{:.4}",
            s.rate,
            s.delay_us * 2,
            s.loss,
            s.queue,
            cell.workload.name(),
            cell.buf,
            cell.bound()
        );
        for (stack, o) in outs {
            let g: Vec<String> = o
                .goodput
                .iter()
                .map(|g| g.map_or("null".into(), |g| format!("{g:.4}")))
                .collect();
            let _ = write!(
                out,
                ",\"{}\":{{\"goodput\":[{}],\"queue_dropped\":{},\"retransmissions\":{},\"wait_rto_ms\":{:.1},\"wait_ack_ms\":{:.1},\"stalled\":{}}}",
                stack.name(),
                g.join(","),
                o.queue_dropped,
                o.retransmissions,
                o.wait_rto_ms,
                o.wait_ack_ms,
                o.stalled
            );
        }
        out.push_str("}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &str) -> Options {
        Options::parse(args.split(' ').map(String::from))
            .expect("valid options")
            .expect("not --help")
    }

    /// The cell CI runs: every workload on both stacks at 1 % loss, 256 KiB per flow. Every
    /// byte is checked by the workload itself; here: every flow delivered all its bytes and
    /// its end of stream, the loss path was exercised, and a second run gives the same
    /// numbers (the virtual clock makes the benchmark deterministic).
    #[test]
    fn ci_cell_on_both_stacks_is_complete_and_deterministic() {
        let o = opts("--quick --buf 16 --rate 100 --rtt 0.2 --queue 8 --loss 1");
        assert_eq!(o.cells().len(), 3);
        let rows = run(&o);
        for (cell, outs) in &rows {
            assert_eq!(outs.len(), 2);
            for (stack, out) in outs {
                let what = format!("{} {}", stack.name(), cell.workload.name());
                assert_eq!(out.goodput.len(), cell.workload.flows().len(), "{what}");
                assert!(out.goodput.iter().all(Option::is_some), "{what}: {out:?}");
                assert!(!out.stalled, "{what}: a connection wedged: {out:?}");
            }
        }
        assert!(
            rows.iter()
                .flat_map(|(_, outs)| outs)
                .any(|(_, o)| o.lost > 0 && o.retransmissions > 0),
            "1 % loss loses frames and the stacks retransmit"
        );
        assert_eq!(run(&o), rows, "same numbers on a second run");
        let table = format_table(&o, &rows);
        assert_eq!(
            table
                .lines()
                .filter(|l| l.starts_with("| 100 Mbit/s"))
                .count(),
            3
        );
        assert_eq!(format_json(&rows).lines().count(), 3);
    }

    #[test]
    fn options_and_bounds() {
        let o =
            opts("--workload both --buf 4,64 --rate 10 --rtt 5 --queue 4 --loss 0,1 --bytes 1M");
        let cells = o.cells();
        assert_eq!(cells.len(), 4);
        assert!(
            cells
                .iter()
                .all(|c| c.bytes == 1 << 20 && c.shape.delay_us == 2500)
        );
        // 4 KiB per RTT (5 ms + 1.2304 ms + 0.0672 ms of serialisation) at 10 Mbit/s.
        let c = &cells[0];
        assert_eq!((c.buf, c.shape.loss), (4096, 0.0));
        let rtt = c.shape.rtt_s();
        assert!((rtt - 0.006_297_6).abs() < 1e-9, "{rtt}");
        assert!((c.bound() - 4096.0 * 8.0 / rtt / 1e7).abs() < 1e-9);
        // With 1 % loss and 64 KiB the Mathis estimate binds.
        let c = &cells[3];
        let mathis = 1460.0 * 8.0 / rtt * 1.22 / 0.1 / 1e7;
        assert!((c.bound() - mathis.min(c.shape.ceiling())).abs() < 1e-9);
        assert!(Options::parse(["--queue=0".to_string()]).is_err());
        assert!(Options::parse(["--stack=ceiling".to_string()]).is_err());
        assert!(Options::parse(["--bogus".to_string()]).is_err());
        assert_eq!(Options::parse(["-h".to_string()]), Ok(None));
    }
}
