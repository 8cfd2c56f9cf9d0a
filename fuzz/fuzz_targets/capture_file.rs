//! pcap / pcapng reading as `xdpwall replay` does it (crates/cli/src/
//! capture_file.rs: sniff the magic, read every block/packet until the first
//! error), then the reference classifier on every packet.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
use xdpwall_rules::Config;

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

const CONFIG: &str = r#"
[xdp]
default = "pass"
malformed = "drop"

[sets]
bad = ["198.51.100.0/24", "2001:db8:bad::/48"]

[[rule]]
name = "drop-bad"
src = "@bad"
action = "drop"

[[rule]]
name = "ssh"
proto = "tcp"
dport = 22
action = "drop"

[[rule]]
name = "count-icmp"
proto = "icmp"
action = "count"

[[rule]]
name = "dns"
proto = "udp"
dport = [53, "5000-6000"]
action = "pass"
"#;

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| {
        xdpwall_rules::parse_config(CONFIG, Path::new("fuzz.toml")).expect("fixed config parses")
    })
}

fn classify(cfg: &Config, pkt: &[u8]) {
    let _ = xdpwall_reference::classify(cfg, pkt);
}

fuzz_target!(|data: &[u8]| {
    let cfg = config();
    let Some(magic) = data.get(..4) else {
        return;
    };
    if magic == PCAPNG_MAGIC {
        let Ok(mut rd) = PcapNgReader::new(data) else {
            return;
        };
        while let Some(b) = rd.next_block() {
            match b {
                Ok(Block::EnhancedPacket(p)) => classify(cfg, &p.data),
                Ok(Block::SimplePacket(p)) => classify(cfg, &p.data),
                Ok(Block::Packet(p)) => classify(cfg, &p.data),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    } else if matches!(
        u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]),
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1
    ) {
        let Ok(mut rd) = PcapReader::new(data) else {
            return;
        };
        while let Some(p) = rd.next_packet() {
            match p {
                Ok(p) => classify(cfg, &p.data),
                Err(_) => break,
            }
        }
    }
});
