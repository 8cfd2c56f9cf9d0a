//! pcapng output that opens in tcpdump, tshark and Wireshark.
//!
//! Layout: a Section Header Block (written when the sink is created), then
//! one Interface Description Block per distinct ifindex, written the first
//! time that ifindex appears (name = the event's interface name, link type
//! Ethernet, `if_tsresol` = 9, i.e. nanosecond timestamps), and one Enhanced
//! Packet Block per event with the original length, the captured bytes and
//! an `opt_comment` of `rule=<name> action=<action>` (`rule=-` without rule).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};
use std::time::Duration;

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness, PcapError};

use crate::{EventView, Sink};

/// `if_tsresol` value for nanoseconds (10^-9 s).
const TSRESOL_NANOS: u8 = 9;
/// pcapng option values carry a 16-bit length.
const MAX_OPTION_LEN: usize = u16::MAX as usize;

/// Writes events as pcapng blocks to `W` (usually a buffered file).
pub struct PcapngSink<W: Write> {
    writer: PcapNgWriter<W>,
    /// ifindex → pcapng interface id (index of its IDB in the section).
    interfaces: HashMap<u32, u32>,
    snaplen: u32,
}

impl<W: Write> PcapngSink<W> {
    /// Starts a pcapng section on `out` with no snap length limit.
    pub fn new(out: W) -> io::Result<Self> {
        Self::with_snaplen(out, 0)
    }

    /// Starts a pcapng section on `out`; a `snaplen` above 0 is written to
    /// each IDB and longer captured data is cut to it.
    pub fn with_snaplen(out: W, snaplen: u32) -> io::Result<Self> {
        let section = SectionHeaderBlock {
            endianness: Endianness::native(),
            options: vec![SectionHeaderOption::UserApplication(Cow::Borrowed(
                "xdpwall",
            ))],
            ..Default::default()
        };
        let writer = PcapNgWriter::with_section_header(out, section).map_err(io_error)?;
        Ok(PcapngSink {
            writer,
            interfaces: HashMap::new(),
            snaplen,
        })
    }

    /// Returns the underlying writer (not flushed).
    pub fn into_inner(self) -> W {
        self.writer.into_inner()
    }

    /// The interface id for `ev.ifindex`, writing its IDB the first time.
    /// An interface renamed later keeps the name it first had in the file.
    fn interface_id(&mut self, ev: &EventView<'_>) -> io::Result<u32> {
        if let Some(&id) = self.interfaces.get(&ev.ifindex) {
            return Ok(id);
        }
        let id = u32::try_from(self.writer.interfaces().len()).map_err(io::Error::other)?;
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: self.snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(clip(ev.iface).to_owned())),
                InterfaceDescriptionOption::IfTsResol(TSRESOL_NANOS),
            ],
        };
        self.writer.write_pcapng_block(idb).map_err(io_error)?;
        self.interfaces.insert(ev.ifindex, id);
        Ok(id)
    }

    /// The captured bytes, cut to the snap length when one is set.
    fn captured<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        match usize::try_from(self.snaplen) {
            Ok(n) if n > 0 && data.len() > n => &data[..n],
            _ => data,
        }
    }
}

impl<W: Write> Sink for PcapngSink<W> {
    fn write(&mut self, ev: &EventView<'_>) -> io::Result<()> {
        let interface_id = self.interface_id(ev)?;
        let comment = packet_comment(ev);
        let epb = EnhancedPacketBlock {
            interface_id,
            timestamp: Duration::from_nanos(ev.ts_unix_ns),
            original_len: ev.wire_len,
            data: Cow::Borrowed(self.captured(ev.data)),
            options: vec![EnhancedPacketOption::Comment(Cow::Borrowed(clip(&comment)))],
        };
        self.writer.write_pcapng_block(epb).map_err(io_error)?;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.get_mut().flush()
    }
}

/// `rule=<name> action=<action>`, `rule=-` for the default action.
pub fn packet_comment(ev: &EventView<'_>) -> String {
    format!("rule={} action={}", ev.rule.unwrap_or("-"), ev.action)
}

/// Cuts a string to what a pcapng option can hold, on a char boundary.
fn clip(s: &str) -> &str {
    if s.len() <= MAX_OPTION_LEN {
        return s;
    }
    let mut end = MAX_OPTION_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn io_error(e: PcapError) -> io::Error {
    match e {
        PcapError::IoError(e) => e,
        other => io::Error::other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use pcap_file::pcapng::{Block, PcapNgReader};
    use std::process::Command;

    /// Three events on two interfaces (ifindex 2 "eth0", ifindex 7 "veth-a").
    fn write_three(snaplen: u32) -> (Vec<u8>, Vec<Vec<u8>>) {
        let frames = vec![tcp4_syn(), icmp6_echo_request(), arp_request()];
        let mut sink = PcapngSink::with_snaplen(Vec::new(), snaplen).unwrap();
        let mut e0 = event(&frames[0], Some("ssh-others"), "drop");
        e0.wire_len = 74;
        let mut e1 = event(&frames[1], None, "pass");
        (e1.ifindex, e1.iface, e1.ts_unix_ns) = (7, "veth-a", TS + 1);
        let mut e2 = event(&frames[2], Some("arp"), "tx");
        e2.ts_unix_ns = TS + 1_000_000_001;
        for ev in [e0, e1, e2] {
            sink.write(&ev).unwrap();
        }
        sink.flush().unwrap();
        (sink.into_inner(), frames)
    }

    fn read_blocks(bytes: &[u8]) -> Vec<Block<'static>> {
        let mut reader = PcapNgReader::new(bytes).unwrap();
        let mut blocks = Vec::new();
        while let Some(b) = reader.next_block() {
            blocks.push(b.unwrap().into_owned());
        }
        blocks
    }

    fn idb_name(idb: &InterfaceDescriptionBlock<'_>) -> Option<String> {
        idb.options.iter().find_map(|o| match o {
            InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
            _ => None,
        })
    }

    fn epb_comment(epb: &EnhancedPacketBlock<'_>) -> Option<String> {
        epb.options.iter().find_map(|o| match o {
            EnhancedPacketOption::Comment(c) => Some(c.to_string()),
            _ => None,
        })
    }

    #[test]
    fn three_events_two_interfaces_read_back() {
        let (bytes, frames) = write_three(0);
        let blocks = read_blocks(&bytes);
        let kinds: Vec<&str> = blocks
            .iter()
            .map(|b| match b {
                Block::InterfaceDescription(_) => "idb",
                Block::EnhancedPacket(_) => "epb",
                _ => "other",
            })
            .collect();
        // The reader consumes the SHB itself; IDBs are written lazily.
        assert_eq!(kinds, ["idb", "epb", "idb", "epb", "epb"]);

        let idbs: Vec<_> = blocks
            .iter()
            .filter_map(|b| b.clone().into_interface_description())
            .collect();
        assert_eq!(
            idbs.iter().map(idb_name).collect::<Vec<_>>(),
            [Some("eth0".into()), Some("veth-a".into())]
        );
        for idb in &idbs {
            assert_eq!((idb.linktype, idb.snaplen), (DataLink::ETHERNET, 0));
            assert!(idb
                .options
                .contains(&InterfaceDescriptionOption::IfTsResol(9)));
        }

        let epbs: Vec<_> = blocks
            .iter()
            .filter_map(|b| b.clone().into_enhanced_packet())
            .collect();
        assert_eq!(
            epbs.iter().map(|p| p.interface_id).collect::<Vec<_>>(),
            [0, 1, 0]
        );
        assert_eq!(
            epbs.iter().map(|p| p.original_len).collect::<Vec<_>>(),
            [74, frames[1].len() as u32 + 20, frames[2].len() as u32 + 20]
        );
        for (p, f) in epbs.iter().zip(&frames) {
            assert_eq!(p.data.as_ref(), f.as_slice());
        }
        let comments: Vec<_> = epbs.iter().map(epb_comment).collect();
        assert_eq!(
            comments,
            [
                Some("rule=ssh-others action=drop".into()),
                Some("rule=- action=pass".into()),
                Some("rule=arp action=tx".into())
            ]
        );
        let ts: Vec<u128> = epbs.iter().map(|p| p.timestamp.as_nanos()).collect();
        assert_eq!(
            ts,
            [
                u128::from(TS),
                u128::from(TS) + 1,
                u128::from(TS) + 1_000_000_001
            ]
        );
    }

    #[test]
    fn section_header_comes_first() {
        let sink = PcapngSink::new(Vec::new()).unwrap();
        let bytes = sink.into_inner();
        assert_eq!(&bytes[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
        let reader = PcapNgReader::new(bytes.as_slice()).unwrap();
        assert!(reader
            .section()
            .options
            .contains(&SectionHeaderOption::UserApplication("xdpwall".into())));
    }

    #[test]
    fn snaplen_cuts_data_but_keeps_original_length() {
        let (bytes, frames) = write_three(40);
        let blocks = read_blocks(&bytes);
        let idb = blocks
            .iter()
            .find_map(|b| b.clone().into_interface_description())
            .unwrap();
        assert_eq!(idb.snaplen, 40);
        let epb = blocks
            .iter()
            .find_map(|b| b.clone().into_enhanced_packet())
            .unwrap();
        assert_eq!(
            (epb.data.as_ref(), epb.original_len),
            (&frames[0][..40], 74)
        );
    }

    #[test]
    fn empty_capture_and_huge_names_still_write() {
        let mut sink = PcapngSink::new(Vec::new()).unwrap();
        let long = "é".repeat(40_000);
        let mut ev = event(&[], Some(&long), "drop");
        ev.iface = &long;
        sink.write(&ev).unwrap();
        let blocks = read_blocks(&sink.into_inner());
        let epb = blocks
            .iter()
            .find_map(|b| b.clone().into_enhanced_packet())
            .unwrap();
        assert!(epb.data.is_empty());
        assert!(epb_comment(&epb).unwrap().len() <= MAX_OPTION_LEN);
    }

    /// Runs tshark on `path` with the given comment field name; `None` when
    /// tshark rejects the field name (older versions call it `pkt_comment`).
    fn tshark_fields(path: &std::path::Path, comment_field: &str) -> Option<String> {
        let fields = [
            "frame.len",
            "frame.cap_len",
            "frame.time_epoch",
            "frame.interface_name",
            comment_field,
        ];
        let mut cmd = Command::new("tshark");
        cmd.arg("-r")
            .arg(path)
            .args(["-T", "fields", "-E", "separator=|"]);
        for f in fields {
            cmd.args(["-e", f]);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        for bad in ["damaged", "corrupt", "cut short"] {
            assert!(!stderr.contains(bad), "tshark: {stderr}");
        }
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    }

    #[test]
    fn tshark_reads_the_file() {
        if Command::new("tshark").arg("--version").output().is_err() {
            eprintln!("tshark not installed: skipping the tshark check of the pcapng output");
            return;
        }
        let (bytes, frames) = write_three(0);
        let path =
            std::env::temp_dir().join(format!("xdpwall-sinks-{}.pcapng", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let text =
            tshark_fields(&path, "frame.comment").or_else(|| tshark_fields(&path, "pkt_comment"));
        std::fs::remove_file(&path).unwrap();
        let text = text.expect("tshark failed to read the pcapng file");
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
        let want = [
            (
                "74".to_string(),
                frames[0].len(),
                "1795623171.123456789",
                "eth0",
                "rule=ssh-others action=drop",
            ),
            (
                (frames[1].len() + 20).to_string(),
                frames[1].len(),
                "1795623171.123456790",
                "veth-a",
                "rule=- action=pass",
            ),
            (
                (frames[2].len() + 20).to_string(),
                frames[2].len(),
                "1795623172.123456790",
                "eth0",
                "rule=arp action=tx",
            ),
        ];
        assert_eq!(lines.len(), 3, "{text}");
        for (got, (len, cap, ts, iface, comment)) in lines.iter().zip(want) {
            assert_eq!(got[0], len, "{text}");
            assert_eq!(got[1], cap.to_string(), "{text}");
            assert_eq!(got[2], ts, "{text}");
            assert_eq!(got[3], iface, "{text}");
            assert_eq!(got[4], comment, "{text}");
        }
    }
}
