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
  xdpwall stats --iface eth0 --json             # counters of the running instance
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
        /// Take over a tap left on by a capture that was killed.
        #[arg(long)]
        force: bool,
    },
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

/// `--transport` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TransportArg {
    /// BPF ring buffer (one ring for all CPUs).
    Ringbuf,
    /// Perf buffer (one ring per CPU).
    Perfbuf,
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
    /// ns/packet under BPF_PROG_TEST_RUN: 1 rule vs many mixed rules, empty
    /// vs large CIDR set; hitting the last rule and hitting none.
    #[command(
        after_help = "Example:\n  xdpwall bench classify --rules 10000 --set-entries 1000000"
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
    },
    /// Ring buffer vs perf buffer: events/s delivered and lost, latency,
    /// memory, wake-ups and order, for 1 and 2 producer CPUs, 64- and
    /// 1500-byte records, each wake-up policy, epoll and busy polling.
    #[command(
        after_help = "Example:\n  xdpwall bench transport --events 1000000 --json transport.json"
    )]
    Transport {
        /// Events per cell.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Also write the rows as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
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
