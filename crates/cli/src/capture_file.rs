//! Reading packets from pcap and pcapng files (format sniffed from the magic).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};

/// The packets of a capture, plus the error that stopped reading early.
pub struct Capture {
    /// Packet bytes, in capture order.
    pub packets: Vec<Vec<u8>>,
    /// Set when the file is damaged after `packets`.
    pub damage: Option<String>,
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Reads every packet of `path`.
pub fn read(path: &Path) -> Result<Capture> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic).with_context(|| {
        format!(
            "{} is too short to be a pcap or pcapng file",
            path.display()
        )
    })?;
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let r = BufReader::new(f);
    let mut packets = Vec::new();
    let mut damage = None;
    if magic == PCAPNG_MAGIC {
        let mut rd = PcapNgReader::new(r)
            .map_err(|e| anyhow::anyhow!("{}: not a valid pcapng file: {e}", path.display()))?;
        while let Some(b) = rd.next_block() {
            match b {
                Ok(Block::EnhancedPacket(p)) => packets.push(p.data.into_owned()),
                Ok(Block::SimplePacket(p)) => packets.push(p.data.into_owned()),
                Ok(Block::Packet(p)) => packets.push(p.data.into_owned()),
                Ok(_) => {}
                Err(e) => {
                    damage = Some(format!(
                        "{}: damaged after packet {}: {e}",
                        path.display(),
                        packets.len()
                    ));
                    break;
                }
            }
        }
    } else if matches!(
        u32::from_le_bytes(magic),
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1
    ) {
        let mut rd = PcapReader::new(r)
            .map_err(|e| anyhow::anyhow!("{}: not a valid pcap file: {e}", path.display()))?;
        while let Some(p) = rd.next_packet() {
            match p {
                Ok(p) => packets.push(p.data.into_owned()),
                Err(e) => {
                    damage = Some(format!(
                        "{}: damaged after packet {}: {e}",
                        path.display(),
                        packets.len()
                    ));
                    break;
                }
            }
        }
    } else {
        bail!(
            "{} is neither pcap nor pcapng (magic {:02x?})",
            path.display(),
            magic
        );
    }
    Ok(Capture { packets, damage })
}
