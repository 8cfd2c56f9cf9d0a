//! Constants of the data-plane ABI (`bpf/abi.h`) that shape compiled tables.
//!
//! These mirror `#define`s of the C header; `crates/dataplane/tests/abi.rs`
//! reads the header and fails if any of them disagree.

/// Rule-id space (bits per class bitmap).
pub const MAX_RULES: usize = crate::model::MAX_RULES;
/// Rule counter slots in `xw_stats` (a rule keeps its slot across reloads).
pub const COUNTER_SLOTS: usize = 2 * MAX_RULES;
/// The default action's counter slot in `xw_stats`.
pub const STAT_DEFAULT: u32 = COUNTER_SLOTS as u32;
/// 64-bit words per class bitmap.
pub const BITMAP_WORDS: usize = MAX_RULES / 64;
/// Candidate slots per class.
pub const MAX_CANDS: usize = 32;
/// Candidate flag: the rule is a `count` rule.
pub const CAND_COUNT: u32 = 0x8000;
/// First field with a direct check: `RuleEntry::checks[f - CHECK_FIRST]`
/// (the compiler's model; the record packs them, see [`KEY_PROTO`]).
pub const CHECK_FIRST: usize = 2;
/// Direct-check slots of a `RuleEntry` (proto .. frag).
pub const CHECKS: usize = 8;
/// Shift of the protocol in the packet's key (`XW_KEY_PROTO`, 9 bits).
pub const KEY_PROTO: u32 = 0;
/// Shift of the TCP flags in the key (`XW_KEY_TCPF`, 9 bits).
pub const KEY_TCPF: u32 = 9;
/// Shift of the ICMP index in the key (`XW_KEY_ICMP`, 18 bits).
pub const KEY_ICMP: u32 = 18;
/// Shift of the family in the key (`XW_KEY_FAMILY`, 2 bits).
pub const KEY_FAMILY: u32 = 36;
/// Shift of the Gray-coded fragment state in the key (`XW_KEY_FRAG`, 2 bits).
pub const KEY_FRAG: u32 = 38;
/// Candidate flag: the rule's record holds direct checks (`xw_rule.direct`).
pub const CAND_DIRECT: u32 = 0x4000;
/// Bits of a candidate that hold the rule id.
pub const CAND_ID_MASK: u32 = 0x3fff;
/// Shift of a candidate's mask of fields still to check.
pub const CAND_CHECK_SHIFT: u32 = 16;
/// Class flag: the candidate list overflowed, use the bitmap scan.
pub const CLASS_OVERFLOW: u32 = 1;

/// Id hint: the class's candidate list overflowed.
pub const ID_OVERFLOW: u32 = 1 << 31;
/// Id hint: the class lists terminal candidates.
pub const ID_TERMINALS: u32 = 1 << 30;
/// Id hint: the class lists `count` candidates.
pub const ID_COUNTS: u32 = 1 << 29;
/// Directory entry: a longer prefix decides within this /16 (the nodes or
/// the exact-match tables).
pub const ID_TRIE: u32 = 1 << 28;
/// With `ID_TRIE` (IPv4 directory) or alone (/24 node entry): the low bits
/// are a node index, not a class.
pub const ID_NODE: u32 = 1 << 27;
/// Bits of the class id proper.
pub const ID_MASK: u32 = (1 << 27) - 1;
/// With `ID_TRIE | ID_NODE` (IPv4 directory): the /16 holds one longer
/// prefix only, and the low bits index its `struct xw_lone4`.
pub const ID_LONE: u32 = 1 << 26;
/// Bits of a lone prefix's index.
pub const LONE_MASK: u32 = ID_LONE - 1;
/// Entries of an IPv4 trie node (`struct xw_node4`).
pub const NODE_FANOUT: usize = 256;
/// Shift of the table generation in an IPv4 exact-match key's prefix length.
pub const GEN_SHIFT: u32 = 8;
/// IPv4 prefixes at least this long go to the exact-match tables.
pub const LONG4_MIN: u8 = 17;
/// Address bits that index the directories.
pub const DIR_BITS: u32 = 16;
/// Entries of an address directory.
pub const DIR_ENTRIES: usize = 1 << DIR_BITS;

/// Index of "no ports" in the port arrays.
pub const PORT_NONE: usize = 65_536;
/// Entries of a port array.
pub const PORT_ENTRIES: usize = 65_537;
/// Index of "not IP" in the protocol array.
pub const PROTO_NONE: usize = 256;
/// Entries of the protocol array.
pub const PROTO_ENTRIES: usize = 257;
/// Index of "no TCP header" in the TCP-flags array.
pub const TCPF_NONE: usize = 256;
/// Entries of the TCP-flags array.
pub const TCPF_ENTRIES: usize = 257;
/// Index of "no ICMP header" in the ICMP array (index = v6<<16 | type<<8 | code).
pub const ICMP_NONE: usize = 131_072;
/// Entries of the ICMP array.
pub const ICMP_ENTRIES: usize = 131_073;
/// Family index: not IP.
pub const FAMILY_NONE: usize = 0;
/// Family index: IPv4.
pub const FAMILY_IPV4: usize = 1;
/// Family index: IPv6.
pub const FAMILY_IPV6: usize = 2;
/// Entries of the family array.
pub const FAMILY_ENTRIES: usize = 3;
/// Index of "untagged" in the VLAN array.
pub const VLAN_NONE: usize = 4096;
/// Entries of the VLAN array.
pub const VLAN_ENTRIES: usize = 4097;
/// Fragment index: not a fragment.
pub const FRAG_NONE: usize = 0;
/// Fragment index: first fragment.
pub const FRAG_FIRST: usize = 1;
/// Fragment index: non-first fragment.
pub const FRAG_NON_FIRST: usize = 2;
/// Fragment index: not IP (matches no fragment condition).
pub const FRAG_NOT_IP: usize = 3;
/// Entries of the fragment array.
pub const FRAG_ENTRIES: usize = 4;

/// Data-plane action codes (`enum xw_action`).
pub const ACT_PASS: u32 = 0;
/// Drop.
pub const ACT_DROP: u32 = 1;
/// Count and continue.
pub const ACT_COUNT: u32 = 2;
/// Redirect to the interface in `xw_redirect[rule]`.
pub const ACT_REDIRECT: u32 = 3;
/// Token bucket: conforming packets pass, the rest drop.
pub const ACT_RATE_LIMIT: u32 = 4;
/// Rule flag: a rate limit with one bucket per source address.
pub const RULE_BY_SRC: u32 = 4;
/// Nanotokens one packet costs.
pub const RL_TOKEN: u64 = 1_000_000_000;
/// Largest `pps` of a rate limit.
pub const RL_MAX_PPS: u64 = 1_000_000_000;
/// Largest `burst` of a rate limit.
pub const RL_MAX_BURST: u64 = 1_000_000_000;
/// Trace flag: a rate limit dropped the packet (over the limit).
pub const TRACE_LIMITED: u32 = 1;
/// Trace flag: a redirect had no target and dropped the packet.
pub const TRACE_REDIRECT_ERR: u32 = 2;

/// Malformed-reason names by index (`enum xw_malformed_reason`).
pub const MALFORMED_REASONS: [&str; 4] =
    ["truncated", "bad_header", "ext_too_deep", "vlan_too_deep"];
/// Slots in the malformed counter map.
pub const MAL_MAX: usize = 8;

/// Bytes of a rule's name in `struct xw_rule`, NUL included.
pub const NAME_LEN: usize = 64;

/// Rule flag: emit events for matches.
pub const RULE_LOG: u32 = 1;
/// Rule flag: only one in `sample` matches emits.
pub const RULE_SAMPLE: u32 = 2;
/// Most packet bytes an event carries.
pub const MAX_SNAPLEN: u32 = 9216;
/// Bytes of the fixed event header (`struct xw_event`).
pub const EVENT_HEADER: u32 = 40;
/// The ring buffer's size classes: a record with packet bytes reserves the
/// header and the first class that holds them (`bpf/events.h`, RING_CLASS:
/// a reservation's size must be a constant). The last is [`MAX_SNAPLEN`].
pub const RING_CLASSES: [u32; 17] = [
    16, 32, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 9216,
];

/// Bytes a ring-buffer record with `cap_len` packet bytes reserves (before
/// the ring's own 8-byte header): the header plus the size class. The
/// program never captures more than [`MAX_SNAPLEN`], so neither does this.
#[must_use]
pub fn ring_record_bytes(cap_len: u32) -> u32 {
    let cap = cap_len.min(MAX_SNAPLEN);
    let room = if cap == 0 {
        0
    } else {
        RING_CLASSES
            .iter()
            .copied()
            .find(|&c| c >= cap)
            .unwrap_or(MAX_SNAPLEN)
    };
    EVENT_HEADER + room
}
/// Event kind: a rule with `log` matched.
pub const EV_LOG: u32 = 1;
/// Event kind: a sampled match.
pub const EV_SAMPLE: u32 = 2;
/// Transport: BPF ring buffer.
pub const TRANSPORT_RINGBUF: u32 = 0;
/// Transport: perf buffer.
pub const TRANSPORT_PERFBUF: u32 = 1;
/// Wake-up on every record.
pub const WAKE_EVERY: u32 = 0;
/// One wake-up per batch of records.
pub const WAKE_BATCH: u32 = 1;
/// Adaptive wake-ups.
pub const WAKE_ADAPTIVE: u32 = 2;
/// Event counter: handed to the transport.
pub const EVS_PRODUCED: u32 = 0;
/// Event counter: did not fit (lost in the kernel).
pub const EVS_LOST: u32 = 1;
/// Event counter: wake-ups asked for.
pub const EVS_WAKEUPS: u32 = 2;
/// Event counter: capture-tap events tried.
pub const EVS_TAP_PRODUCED: u32 = 3;
/// Event counter: capture-tap events that did not fit.
pub const EVS_TAP_LOST: u32 = 4;
/// Slots of the event counter map.
pub const EVS_MAX: u32 = 8;
/// Event kind: tapped by `xdpwall capture`.
pub const EV_CAPTURE: u32 = 3;
/// Size of the capture tap's ring buffer.
pub const TAP_RING_SIZE: u32 = 2 << 20;
/// Tap flag: only packets the program drops.
pub const TAP_DROPS: u32 = 1;
/// XDP error slot: exceptions for an action the kernel does not know (slots
/// 0-4 are exceptions by XDP action).
pub const XERR_EXC_INVALID: u32 = 5;
/// XDP error slot: failed plain redirects.
pub const XERR_REDIRECT: u32 = 6;
/// XDP error slot: failed map redirects.
pub const XERR_REDIRECT_MAP: u32 = 7;
/// Slots of the XDP error map.
pub const XERR_MAX: u32 = 8;
