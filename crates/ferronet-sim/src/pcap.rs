//! Classic libpcap capture files.
//!
//! [`PcapWriter`] writes the original pcap format (not pcapng) that Wireshark, tshark and
//! tcpdump read: a 24-byte global header (magic `0xa1b2c3d4`, version 2.4, time zone 0,
//! snaplen 65535, link type) followed by one 16-byte record header and the frame bytes per
//! frame. All fields are written little-endian; readers recognise the byte order from the
//! magic number. Timestamps have microsecond resolution.
//!
//! Links and switches can record to a file directly with
//! [`LinkHandle::start_pcap`](crate::link::LinkHandle::start_pcap) and
//! [`Switch::start_pcap`](crate::switch::Switch::start_pcap).

use std::io::{self, Write};

use embassy_time::Instant;

/// The largest number of bytes of one frame stored in a record; longer frames are truncated
/// (the record still carries their original length).
pub const SNAPLEN: u32 = 65_535;

/// The pcap magic number for microsecond timestamps.
pub const MAGIC: u32 = 0xa1b2_c3d4;

/// What the frames in a capture file are, i.e. the pcap `LINKTYPE_*` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): Ethernet II frames starting with the destination MAC, no FCS.
    Ethernet,
    /// `LINKTYPE_RAW` (101): raw IPv4 or IPv6 packets with no link-layer header.
    RawIp,
    /// `LINKTYPE_IEEE802_15_4_NOFCS` (230): IEEE 802.15.4 MAC frames without the FCS.
    Ieee802154NoFcs,
}

impl LinkType {
    /// The numeric link type written to the file header.
    pub const fn code(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
            LinkType::Ieee802154NoFcs => 230,
        }
    }
}

/// Writes frames to a classic pcap stream.
///
/// ```
/// use ferronet_sim::pcap::{LinkType, PcapWriter};
/// use embassy_time::Instant;
///
/// let mut w = PcapWriter::new(Vec::new(), LinkType::Ethernet)?;
/// w.write_frame(Instant::from_micros(1_500_000), &[0xff; 60])?;
/// let bytes = w.into_inner();
/// assert_eq!(bytes.len(), 24 + 16 + 60);
/// assert_eq!(&bytes[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header to `out` and returns a writer for the records.
    pub fn new(mut out: W, link_type: LinkType) -> io::Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // 8..12: thiszone = 0, 12..16: sigfigs = 0.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&link_type.code().to_le_bytes());
        out.write_all(&header)?;
        Ok(Self { out })
    }

    /// Appends one frame captured at `time` (an `embassy-time` instant, so virtual time when
    /// recorded under the [`Executor`](crate::executor::Executor)).
    pub fn write_frame(&mut self, time: Instant, data: &[u8]) -> io::Result<()> {
        self.write_frame_micros(time.as_micros(), data)
    }

    /// Appends one frame with a timestamp in microseconds.
    pub fn write_frame_micros(&mut self, micros: u64, data: &[u8]) -> io::Result<()> {
        let secs = u32::try_from(micros / 1_000_000).unwrap_or(u32::MAX);
        let usecs = (micros % 1_000_000) as u32;
        let orig_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let incl_len = orig_len.min(SNAPLEN);
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&secs.to_le_bytes());
        header[4..8].copy_from_slice(&usecs.to_le_bytes());
        header[8..12].copy_from_slice(&incl_len.to_le_bytes());
        header[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(&data[..incl_len as usize])
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Returns the underlying writer (not flushed: call [`flush`](Self::flush) first if it
    /// buffers).
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut w = PcapWriter::new(Vec::new(), LinkType::RawIp).unwrap();
        w.write_frame(Instant::from_micros(3_000_123), &[1, 2, 3])
            .unwrap();
        let b = w.into_inner();
        assert_eq!(
            &b[..24],
            &[
                0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 101,
                0, 0, 0
            ]
        );
        assert_eq!(
            &b[24..],
            &[3, 0, 0, 0, 123, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 1, 2, 3]
        );
    }

    #[test]
    fn long_frames_are_truncated_to_snaplen() {
        let mut w = PcapWriter::new(Vec::new(), LinkType::Ethernet).unwrap();
        let big = vec![0xabu8; 70_000];
        w.write_frame_micros(0, &big).unwrap();
        let b = w.into_inner();
        assert_eq!(b.len(), 24 + 16 + SNAPLEN as usize);
        assert_eq!(&b[24 + 8..24 + 12], &SNAPLEN.to_le_bytes());
        assert_eq!(&b[24 + 12..24 + 16], &70_000u32.to_le_bytes());
    }
}
