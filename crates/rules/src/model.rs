//! The validated configuration: what `rules.toml` means once parsed.
//!
//! Everything here is already checked: names are unique, sets exist, ports are
//! in range, conditions can match together. The compiler relies on that.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

pub use crate::entries::{SetBuilder, SetEntries};

/// Maximum number of rules in one config (the data plane's rule-id space).
pub const MAX_RULES: usize = 16_384;

/// Default of `[xdp] rate_limit_table`: source addresses tracked at once by
/// all `by = "src"` rate limits together.
pub const DEFAULT_RATE_LIMIT_TABLE: u32 = 65_536;
/// Largest `[xdp] rate_limit_table` (about 100 bytes of kernel memory each).
pub const MAX_RATE_LIMIT_TABLE: u32 = 1 << 22;

/// A whole, validated configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file the config was read from (used in messages and by reload).
    pub path: PathBuf,
    /// `[xdp]`
    pub xdp: XdpSection,
    /// `[events]`
    pub events: EventsSection,
    /// `[sets]`, by name (without the `@`).
    pub sets: BTreeMap<String, IpSet>,
    /// `[[rule]]`, in file order; index = rule id.
    pub rules: Vec<Rule>,
}

/// `[xdp]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpSection {
    /// Interface to attach to; `--iface` overrides it.
    pub interface: Option<String>,
    /// Attach mode.
    pub mode: Mode,
    /// Verdict when no terminal rule matches.
    pub default: Verdict,
    /// Verdict for packets that cannot be parsed far enough.
    pub malformed: Verdict,
    /// Entries of the LRU table of per-source rate-limit buckets (shared by
    /// every `by = "src"` rule; the least recently seen source makes room).
    pub rate_limit_table: u32,
}

impl Default for XdpSection {
    fn default() -> Self {
        Self {
            interface: None,
            mode: Mode::Auto,
            default: Verdict::Pass,
            malformed: Verdict::Pass,
            rate_limit_table: DEFAULT_RATE_LIMIT_TABLE,
        }
    }
}

/// XDP attach mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Native, falling back to generic with a warning.
    Auto,
    /// Driver (native) XDP only.
    Native,
    /// Generic (skb) XDP only.
    Generic,
}

/// A plain verdict (used by `default` and `malformed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// XDP_PASS
    Pass,
    /// XDP_DROP
    Drop,
}

/// `[events]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsSection {
    /// Kernel-to-user transport.
    pub transport: Transport,
    /// Total buffer size in bytes (perfbuf: split across CPUs).
    pub buffer: u64,
    /// Bytes of each logged packet to carry.
    pub snaplen: u32,
    /// Wake-up policy.
    pub wakeup: Wakeup,
}

impl Default for EventsSection {
    fn default() -> Self {
        Self {
            transport: Transport::Ringbuf,
            buffer: 8 << 20,
            snaplen: 128,
            wakeup: Wakeup::Adaptive,
        }
    }
}

/// Event transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// BPF ring buffer (default).
    Ringbuf,
    /// BPF perf event array.
    Perfbuf,
}

/// Event wake-up policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wakeup {
    /// Wake the consumer for every record.
    Every,
    /// One wake-up per N records.
    Batch(u32),
    /// Wake only when the consumer falls behind or a timer passes.
    Adaptive,
}

/// A named set of networks (`[sets]`), inline or from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSet {
    /// Set name without `@`.
    pub name: String,
    /// Networks, normalised (host bits cleared), sorted, deduplicated.
    pub entries: SetEntries,
    /// Where the entries came from.
    pub source: SetSource,
}

/// Origin of a set's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetSource {
    /// Written inline in the config.
    Inline,
    /// Read from this file (path as resolved, relative to the config's dir).
    File(PathBuf),
}

/// One `[[rule]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique name; the identity of the rule across reloads.
    pub name: String,
    /// 1-based line of the `[[rule]]` header in the config, for messages.
    pub line: usize,
    /// Match conditions (all must hold).
    pub cond: Conditions,
    /// What to do on a match.
    pub action: Action,
    /// Emit events for matches (`log = true` or a table).
    pub log: Option<LogSpec>,
    /// Emit one event per N matches (`sample = N`, N >= 1).
    pub sample: Option<u32>,
}

/// Conditions of a rule; `None` means "any".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conditions {
    /// Source address condition.
    pub src: Option<AddrMatch>,
    /// Destination address condition.
    pub dst: Option<AddrMatch>,
    /// IP protocol number (tcp=6, udp=17, icmp=1, icmpv6=58, sctp=132, gre=47 …).
    pub proto: Option<u8>,
    /// Source port ranges (inclusive), union. Only TCP, UDP, SCTP carry ports.
    pub sport: Option<Vec<PortRange>>,
    /// Destination port ranges (inclusive), union.
    pub dport: Option<Vec<PortRange>>,
    /// TCP flags that must be set / clear.
    pub tcp_flags: Option<TcpFlags>,
    /// ICMP/ICMPv6 type (by packet family).
    pub icmp_type: Option<u8>,
    /// ICMP/ICMPv6 code (by packet family).
    pub icmp_code: Option<u8>,
    /// Address family.
    pub family: Option<Family>,
    /// 802.1Q VLAN id, outer or inner tag (0–4095).
    pub vlan: Option<u16>,
    /// Fragment state.
    pub fragment: Option<FragMatch>,
}

/// An address condition: set membership (see DESIGN.md "Address conditions").
///
/// An address matches when it is in some `include` item (or `include` is
/// empty) and in no `exclude` item.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddrMatch {
    /// Plain entries (union).
    pub include: Vec<AddrItem>,
    /// `!` entries (excluded).
    pub exclude: Vec<AddrItem>,
}

/// One entry of an address condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AddrItem {
    /// A network (an address is a /32 or /128), host bits cleared.
    Net(IpNet),
    /// A reference to a named set (name without `@`); it exists in `Config::sets`.
    Set(String),
}

/// An inclusive port range, `lo <= hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// Lowest port.
    pub lo: u16,
    /// Highest port.
    pub hi: u16,
}

/// TCP flag condition as bit masks over the TCP flags byte
/// (FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 URG=0x20 ECE=0x40 CWR=0x80).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpFlags {
    /// Flags that must be set.
    pub set: u8,
    /// Flags that must be clear.
    pub clear: u8,
}

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4
    Ipv4,
    /// IPv6
    Ipv6,
}

/// Fragment condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FragMatch {
    /// Any fragment (first or not).
    Any,
    /// The first fragment (offset 0, more-fragments set).
    First,
    /// A fragment with offset > 0.
    NonFirst,
    /// Not a fragment.
    None,
}

/// A rule's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Terminal: XDP_PASS.
    Pass,
    /// Terminal: XDP_DROP.
    Drop,
    /// Non-terminal: count and continue.
    Count,
    /// Terminal: redirect to an interface.
    Redirect(String),
    /// Terminal: token bucket; over the limit drops, under it passes.
    RateLimit(RateLimit),
}

impl Action {
    /// Whether evaluation stops at this rule.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Action::Count)
    }

    /// The action's name as written in configs and output.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Action::Pass => "pass",
            Action::Drop => "drop",
            Action::Count => "count",
            Action::Redirect(_) => "redirect",
            Action::RateLimit(_) => "rate_limit",
        }
    }
}

/// `rate_limit = { pps, burst, by }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained packets per second.
    pub pps: u64,
    /// Bucket size in packets.
    pub burst: u64,
    /// One bucket per source address, or one for the rule.
    pub by: RateBy,
}

/// Rate-limit bucket key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateBy {
    /// Per source address.
    Src,
    /// One bucket for the whole rule.
    Rule,
}

/// `log = true` or `log = { every, snaplen }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogSpec {
    /// At most one event per this interval for the rule.
    pub every: Option<Duration>,
    /// Bytes of packet to carry (overrides `[events] snaplen`).
    pub snaplen: Option<u32>,
}

impl Verdict {
    /// Name as written in configs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Drop => "drop",
        }
    }
}

impl Mode {
    /// Name as written in configs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Native => "native",
            Mode::Generic => "generic",
        }
    }
}

impl Transport {
    /// Name as written in configs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Transport::Ringbuf => "ringbuf",
            Transport::Perfbuf => "perfbuf",
        }
    }
}
