//! The command-line definition (also the source of `--help`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// XDP firewall and packet telemetry.
#[derive(Debug, Parser)]
#[command(name = "xdpwall", version, about, propagate_version = true)]
#[command(after_help = "Examples:
  xdpwall demo                                  # throwaway lab, real traffic, live counters
  xdpwall check rules.toml                      # validate and print the normalised rule table
  xdpwall run rules.toml --iface eth0           # attach and stay in the foreground
  xdpwall reload --iface eth0                   # re-read the config, swap rules atomically
  xdpwall stats --iface eth0 --json             # counters of the running instance
  xdpwall top --iface eth0                      # live view: rates, dropped sources, losses
  xdpwall replay rules.toml capture.pcapng      # verdict for every packet of a capture
  xdpwall detach --iface eth0                   # remove xdpwall from an interface")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a throwaway lab (two namespaces, a veth pair), load an example
    /// rule set, send mixed traffic, show counters, tear everything down.
    #[command(after_help = "Example:\n  sudo xdpwall demo --rounds 5")]
    Demo {
        /// Rounds of traffic to send.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
    /// Validate CONFIG and print the normalised rule table (exit 0, or 2).
    #[command(after_help = "Example:\n  xdpwall check /etc/xdpwall/rules.toml")]
    Check {
        /// The rules file.
        config: PathBuf,
    },
    /// Attach CONFIG's rules and stay in the foreground; SIGHUP re-reads
    /// CONFIG, SIGINT/SIGTERM detach and print the final counters.
    #[command(
        after_help = "Examples:\n  xdpwall run rules.toml --iface eth0\n  xdpwall run rules.toml --iface eth0 --events json | jq .\n  xdpwall run rules.toml --iface eth0 --events drops.pcapng\n  xdpwall run rules.toml --iface eth0 --metrics 127.0.0.1:9477\n  ip netns exec blue xdpwall run rules.toml --iface veth0 --mode generic"
    )]
    Run {
        /// The rules file.
        config: PathBuf,
        /// Interface (overrides [xdp] interface).
        #[arg(short, long)]
        iface: Option<String>,
        /// Attach mode (overrides [xdp] mode).
        #[arg(short, long, value_enum)]
        mode: Option<ModeArg>,
        /// Replace an XDP program that is not xdpwall's.
        #[arg(long)]
        force: bool,
        /// Print the counters every N seconds while running (0: never).
        #[arg(long, default_value_t = 0)]
        interval: u64,
        /// Where events of rules with `log`/`sample` go: `-` (terminal
        /// lines; the default when a rule logs), `json` (JSON lines on
        /// stdout) or FILE.pcapng.
        #[arg(long, value_name = "OUT")]
        events: Option<String>,
        /// Busy-poll the event buffer instead of sleeping (lowest latency,
        /// one CPU spins).
        #[arg(long)]
        busy_poll: bool,
        /// Serve Prometheus metrics at ADDR (HOST:PORT, or a port on
        /// loopback), e.g. 127.0.0.1:9477. Off unless given.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<String>,
    },
    /// Make the running `xdpwall run` re-read its config and swap the rules
    /// atomically (like SIGHUP, but it waits and reports the outcome: exit
    /// 0, or 2 with the config's errors while the old rules stay in force).
    #[command(
        after_help = "Examples:\n  xdpwall reload --iface eth0\n  ip netns exec blue xdpwall reload"
    )]
    Reload {
        /// Interface (default: the only one running xdpwall in this netns).
        #[arg(short, long)]
        iface: Option<String>,
    },
    /// Per-rule packets/bytes, default-action and malformed counts.
    #[command(
        after_help = "Examples:\n  xdpwall stats --iface eth0\n  ip netns exec blue xdpwall stats --json"
    )]
    Stats {
        /// Interface (default: the only one running xdpwall in this netns).
        #[arg(short, long)]
        iface: Option<String>,
        /// One JSON object (stable keys).
        #[arg(long)]
        json: bool,
    },
    /// Live terminal view: per-rule packet/byte rates with history, the
    /// heaviest sources of dropped traffic, event and tap losses, XDP
    /// errors and mode. Keys: q quit, s sort, / filter, p pause, ? help.
    #[command(
        after_help = "Examples:\n  xdpwall top --iface eth0\n  xdpwall top --interval 500\n  ip netns exec blue xdpwall top\n\nSources of drops come from the data plane's capture tap (dropped packets\nonly, 64 bytes each) while top runs; top turns it off on exit, and a\nkilled top's tap turns itself off within 5 s."
    )]
    Top {
        /// Interface (default: the only one running xdpwall in this netns).
        #[arg(short, long)]
        iface: Option<String>,
        /// Sampling interval in milliseconds (100 to 60000).
        #[arg(long, value_name = "MS", default_value_t = 1000)]
        interval: u64,
        /// Take the tap over from a running capture or another top.
        #[arg(long)]
        force: bool,
    },
    /// Run every packet of a capture through the real XDP program
    /// (BPF_PROG_TEST_RUN) and print each verdict and matching rule.
    #[command(
        after_help = "Examples:\n  xdpwall replay rules.toml trace.pcapng\n  xdpwall replay rules.toml trace.pcap --json | jq ."
    )]
    Replay {
        /// The rules file.
        config: PathBuf,
        /// A pcap or pcapng file.
        capture: PathBuf,
        /// JSON lines (one per packet, then totals).
        #[arg(long)]
        json: bool,
        /// Use the pure-Rust reference classifier instead of the XDP
        /// program (no BPF, no root): compare the two on the same capture.
        #[arg(long)]
        reference: bool,
    },
    /// Capture at the XDP hook, like tcpdump: taps the running xdpwall
    /// program, or loads a pass-through one while capturing.
    #[command(
        after_help = "Examples:\n  xdpwall capture --iface eth0 -c 10\n  xdpwall capture --iface eth0 -w trace.pcapng --snaplen 256\n  ip netns exec blue xdpwall capture --iface veth0 --transport perfbuf"
    )]
    Capture {
        /// Interface.
        #[arg(short, long)]
        iface: String,
        /// Write packets to FILE.pcapng instead of printing them.
        #[arg(short = 'w', value_name = "FILE.pcapng")]
        write: Option<PathBuf>,
        /// Stop after N packets.
        #[arg(short = 'c', value_name = "N")]
        count: Option<u64>,
        /// Bytes of each packet to keep.
        #[arg(short = 's', long, default_value_t = 262)]
        snaplen: u32,
        /// Transport of the captured packets.
        #[arg(long, value_enum, default_value = "ringbuf")]
        transport: TransportArg,
        /// Busy-poll instead of sleeping.
        #[arg(long)]
        busy_poll: bool,
        /// Take the tap over from another running capture or top (the tap
        /// of one that was killed turns itself off within 5 s).
        #[arg(long)]
        force: bool,
    },
    /// Traffic generator: XDP live frames (BPF_PROG_TEST_RUN) out of an
    /// interface, one thread per CPU, source addresses and ports walked over
    /// ranges; reports what the generator's counters say it sent. A veth
    /// delivers such frames only when its peer runs a native XDP program.
    #[command(after_help = "Examples:
  xdpwall gen -i veth0 --dst 198.18.0.2 --src 198.18.0.1 --dport 5353 -d 10s
  xdpwall gen -i veth0 --dst 198.18.0.2 --src 198.18.0.0/16 --sport 1024-65535 --rate 1M -c 5000000
  xdpwall gen -i veth0 --dst fd00::2 --src fd00::1000-fd00::1fff --syn --dport 80 --size 1500 --cpus 0
  ip netns exec lab-a xdpwall gen -i xwa --dst 198.18.0.2 --src 198.18.0.1 --dst-mac 02:78:77:00:00:02 --json")]
    Gen(GenOpts),
    /// Benchmarks (ratios against a reference measured in the same run).
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  xdpwall completions bash > /etc/bash_completion.d/xdpwall"
    )]
    Completions {
        /// Shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    #[command(after_help = "Example:\n  xdpwall man | man -l -")]
    Man,
    /// Remove xdpwall from an interface.
    #[command(after_help = "Example:\n  xdpwall detach --iface eth0")]
    Detach {
        /// Interface.
        #[arg(short, long)]
        iface: String,
        /// Also remove an XDP program that is not xdpwall's.
        #[arg(long)]
        force: bool,
    },
}

/// Options of `xdpwall gen`.
#[derive(Debug, clap::Args)]
pub struct GenOpts {
    /// Interface to send from.
    #[arg(short, long)]
    pub iface: String,
    /// Destination address (its family decides IPv4 or IPv6).
    #[arg(long)]
    pub dst: String,
    /// Source addresses: ADDR, ADDR/LEN or FIRST-LAST (IPv6: only the low
    /// 32 bits vary).
    #[arg(long)]
    pub src: String,
    /// Use every N-th address of --src.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub src_step: u32,
    /// Source ports: PORT or FIRST-LAST.
    #[arg(long, default_value = "1024-65535")]
    pub sport: String,
    /// Destination port.
    #[arg(long, default_value_t = 9)]
    pub dport: u16,
    /// Send TCP SYNs instead of UDP.
    #[arg(long)]
    pub syn: bool,
    /// Frame size in bytes, Ethernet header to end of payload, no FCS
    /// (60..=1514; at least the headers: 62 for IPv6 UDP, 74 for IPv6 SYN).
    #[arg(short, long, default_value_t = 64)]
    pub size: usize,
    /// Destination MAC (default ff:ff:ff:ff:ff:ff; give the receiver's for
    /// its IP stack to accept the frames).
    #[arg(long, value_name = "MAC")]
    pub dst_mac: Option<String>,
    /// Source MAC (default: the interface's).
    #[arg(long, value_name = "MAC")]
    pub src_mac: Option<String>,
    /// Frames per second over all CPUs (500k, 2M, …) or `max`.
    #[arg(short, long, default_value = "max")]
    pub rate: String,
    /// Stop after this long (10s, 500ms, 2m); 10s when no --count either.
    #[arg(short, long)]
    pub duration: Option<String>,
    /// Stop after N frames in total.
    #[arg(short, long, value_name = "N")]
    pub count: Option<u64>,
    /// CPUs to send from, one pinned thread each (0,1 or 0-3; default: all
    /// this process may use).
    #[arg(long, value_name = "LIST")]
    pub cpus: Option<String>,
    /// Frames the kernel runs per batch inside one call (1..=256).
    #[arg(long, default_value_t = 64)]
    pub batch: u32,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `--transport` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TransportArg {
    /// BPF ring buffer (one ring for all CPUs).
    Ringbuf,
    /// Perf buffer (one ring per CPU).
    Perfbuf,
}

/// `bench transport --wakeup` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WakeupArg {
    /// A wake-up per record.
    Every,
    /// One wake-up per 64 records.
    Batch,
    /// The program's default policy (ring buffer only).
    Adaptive,
}

/// `bench transport --poll` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PollArg {
    /// Sleep in epoll until woken.
    Epoll,
    /// Spin on the buffer.
    Busy,
}

/// `--mode` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// Native, falling back to generic with a warning.
    Auto,
    /// Driver XDP only.
    Native,
    /// Generic (skb) XDP only.
    Generic,
}

impl From<ModeArg> for xdpwall_rules::Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Auto => xdpwall_rules::Mode::Auto,
            ModeArg::Native => xdpwall_rules::Mode::Native,
            ModeArg::Generic => xdpwall_rules::Mode::Generic,
        }
    }
}

/// `bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Time of `xdpwall reload` for sets of each size against a real `run`
    /// in a lab namespace, then reloads under generated traffic: packets
    /// leaked (passed though every config drops them) and lost, and the RSS
    /// of `run` at idle and under load.
    #[command(
        after_help = "Examples:\n  xdpwall bench reload\n  xdpwall bench reload --entries 1,100000,1000000 --reloads 50 --rate 200000 --json reload.json"
    )]
    Reload {
        /// Set sizes to time (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,100000,1000000")]
        entries: Vec<usize>,
        /// Reloads timed per size.
        #[arg(long, default_value_t = 5)]
        timed: usize,
        /// Reloads under traffic.
        #[arg(long, default_value_t = 50)]
        reloads: usize,
        /// Set size during the traffic run.
        #[arg(long, default_value_t = 100_000)]
        traffic_entries: usize,
        /// Offered frames per second during the traffic run (both flows).
        #[arg(long, default_value_t = 200_000)]
        rate: u64,
        /// Also write the results as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Also draw the reload times as an SVG bar chart.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
    /// ns/packet under BPF_PROG_TEST_RUN: 1, 100 and N mixed rules, IPv4
    /// and IPv6, hitting the first rule, the last rule and the default; a
    /// large CIDR set against a 1-entry and an empty one.
    #[command(
        after_help = "Example:\n  xdpwall bench classify --rules 10000 --set-entries 1000000 --json classify.json"
    )]
    Classify {
        /// Rules in the large rule set.
        #[arg(long, default_value_t = 10_000)]
        rules: usize,
        /// Entries in the large CIDR set.
        #[arg(long, default_value_t = 1_000_000)]
        set_entries: usize,
        /// Repetitions per BPF_PROG_TEST_RUN call.
        #[arg(long, default_value_t = 200_000)]
        repeat: u32,
        /// Calls per cell (min and median reported).
        #[arg(long, default_value_t = 15)]
        runs: usize,
        /// Also write the cells as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Also draw the cells as an SVG bar chart.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
    },
    /// Ring buffer vs perf buffer: events/s delivered and lost, latency,
    /// memory, wake-ups and order, for 1 and 2 producer CPUs, 16-, 128- and
    /// 1500-byte packets per record, each wake-up policy, epoll and busy polling, with
    /// xdpwall's consumer and a minimal C consumer on libbpf; then the
    /// targets (ring with the default wake-up vs the best perf setting,
    /// reorders, Rust vs C consumer) as ratios.
    #[command(
        after_help = "Examples:\n  xdpwall bench transport\n  xdpwall bench transport --events 500000 --reps 3 --json transport.json --svg transport.svg\n  xdpwall bench transport --producers 2 --snaplen 1500 --reps 5 --buffer-mib 32\n  xdpwall bench transport --transport perfbuf --wakeup batch --poll busy --producers 2 --snaplen 1500\n  xdpwall bench transport --from-json transport.json --svg transport.svg"
    )]
    Transport {
        /// Events per cell (all producers together).
        #[arg(long, default_value_t = 500_000)]
        events: u64,
        /// Repetitions per cell (the row is the median by delivered rate).
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Producer counts to measure (1 and/or 2; comma-separated).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "1,2",
            value_name = "LIST"
        )]
        producers: Vec<u32>,
        /// Packet bytes per record (snaplen; comma-separated, 0..=1500).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "16,128,1500",
            value_name = "LIST"
        )]
        snaplen: Vec<u32>,
        /// Transports to measure (comma-separated).
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "ringbuf,perfbuf",
            value_name = "LIST"
        )]
        transport: Vec<TransportArg>,
        /// Wake-up policies to measure (comma-separated; batch is 64
        /// records, adaptive is the ring buffer's own).
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "every,batch,adaptive",
            value_name = "LIST"
        )]
        wakeup: Vec<WakeupArg>,
        /// Consumer waiting strategies to measure (comma-separated).
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "epoll,busy",
            value_name = "LIST"
        )]
        poll: Vec<PollArg>,
        /// Buffer per transport in MiB (`[events] buffer`: the ring, or the
        /// perf buffer split across CPUs); a power of two.
        #[arg(long, default_value_t = 8, value_name = "MIB")]
        buffer_mib: u64,
        /// Drains per transport and record size: a buffer filled while
        /// nobody reads, drained by xdpwall's consumer and by the C one — the
        /// consumers' own speed (0: skip).
        #[arg(long, default_value_t = 9, value_name = "N")]
        drain_reps: usize,
        /// Also write the rows and targets as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Also draw delivered events/s per cell as an SVG bar chart (and
        /// the cross-CPU reorders next to it, FILE with `-order` before `.svg`).
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Measure nothing: print the table and targets (and --svg) of a
        /// result saved with --json.
        #[arg(long, value_name = "FILE", conflicts_with = "json")]
        from_json: Option<PathBuf>,
    },
    /// Receive-side drop rate (Mpps) on a veth pair fed by `xdpwall gen`:
    /// bare XDP_DROP (the ceiling), xdpwall with 1 / 100 / N rules and a
    /// large CIDR set, xdp-filter, nftables netdev ingress, iptables raw
    /// PREROUTING and no filter; each also as a ratio to XDP_DROP. Missing
    /// peers are skipped (`XDPWALL_SETUP_BENCH=1 scripts/setup.sh` installs them).
    #[command(
        after_help = "Examples:\n  xdpwall bench dataplane\n  xdpwall bench dataplane --reps 5 --window 2s --json dp.json --svg dp.svg\n  xdpwall bench dataplane --cpus 0,1 --bpf-stats
  xdpwall bench dataplane --rows '10000 rules,all features' --reps 9\n  xdpwall bench dataplane --from-json dp.json --svg dp.svg"
    )]
    Dataplane {
        /// Repetitions per row (median and min–max over these).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Measured window per repetition (2s, 500ms, …).
        #[arg(long, default_value = "2s")]
        window: String,
        /// Sending before each window opens.
        #[arg(long, default_value = "300ms")]
        warmup: String,
        /// CPUs of the generator, one thread each (the receiver's NAPI runs
        /// on the sending CPU).
        #[arg(long, default_value = "0", value_name = "LIST")]
        cpus: String,
        /// Frame size (Ethernet header to end of payload, 60..=1514).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Rules in the large rule set.
        #[arg(long, default_value_t = 10_000)]
        rules: usize,
        /// Entries in the large CIDR set.
        #[arg(long, default_value_t = 1_000_000)]
        set_entries: usize,
        /// Also measure each program's ns/frame (kernel.bpf_stats_enabled,
        /// on for that pass only, then restored).
        #[arg(long)]
        bpf_stats: bool,
        /// Only the rows whose names contain one of these words
        /// (case-insensitive, comma-separated; the bare XDP_DROP row, the
        /// reference, always runs).
        #[arg(long, value_delimiter = ',', value_name = "LIST")]
        rows: Vec<String>,
        /// Also write the result as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Also draw the result as an SVG bar chart.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Measure nothing: print the table (and --svg) of a result saved with --json.
        #[arg(long, value_name = "FILE", conflicts_with = "json")]
        from_json: Option<PathBuf>,
    },
    /// Accuracy of `rate_limit`: a flood of FACTOR times each limit through
    /// the XDP program (BPF_PROG_TEST_RUN, paced over a wall-clock window);
    /// passed packets against burst + pps x seconds, by rule and by source.
    #[command(
        after_help = "Examples:\n  xdpwall bench ratelimit\n  xdpwall bench ratelimit --rates 1000,10000,100000 --factor 2 --seconds 3"
    )]
    Ratelimit {
        /// Limits to measure, packets per second.
        #[arg(long, value_delimiter = ',', default_values_t = [1_000u64, 10_000, 100_000])]
        rates: Vec<u64>,
        /// Offered load as a multiple of the limit (above 1: a flood).
        #[arg(long, default_value_t = 2.0)]
        factor: f64,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// Print a synthetic config of N mixed-shape rules (the one `bench
    /// classify` uses), to load with `run` or `check`.
    #[command(after_help = "Example:\n  xdpwall bench synth-rules --count 10000 > rules-10k.toml")]
    SynthRules {
        /// Number of rules (the last one is `target`).
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Seed of the shapes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Print a set file of N distinct IPv4 entries.
    #[command(
        after_help = "Example:\n  xdpwall bench synth-set --entries 1000000 > blocklist.txt"
    )]
    SynthSet {
        /// Number of entries.
        #[arg(long, default_value_t = 1_000_000)]
        entries: usize,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}
