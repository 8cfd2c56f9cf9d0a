/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The ABI between the XDP program and user space: every struct and constant
 * both sides read. Fixed-width types only, explicit padding, no bool.
 * The Rust side gets these types from the skeleton (generated from BTF) and
 * crates/dataplane/tests/abi.rs checks sizes and offsets against this file.
 */
#ifndef XDPWALL_ABI_H
#define XDPWALL_ABI_H

#include <linux/types.h>

/* Rule ids are 0..XW_MAX_RULES-1; a class bitmap has one bit per rule. */
#define XW_MAX_RULES 16384
#define XW_BITMAP_WORDS (XW_MAX_RULES / 64)
/* Candidates per class; a longer list sets XW_CLASS_OVERFLOW (full scan). */
#define XW_MAX_CANDS 32
/* A candidate is a rule id, with XW_CAND_COUNT set when the rule is `count`,
 * XW_CAND_DIRECT when the rule's own record holds checks of it (xw_rule.direct),
 * and in its top half the fields still to check with the class bitmaps (the
 * rule's conditions other than the field whose list holds it, which is
 * already known to match, and those checked directly). */
#define XW_CAND_COUNT 0x8000
#define XW_CAND_DIRECT 0x4000
#define XW_CAND_ID_MASK 0x3fff
#define XW_CAND_CHECK_SHIFT 16
#define XW_NO_RULE 0xffffffffu

/* Class flags. */
#define XW_CLASS_OVERFLOW 1u

/* A class id as stored in the field tables carries hints in its top bits, so
 * the program can skip classes without touching their (large) values. */
#define XW_ID_OVERFLOW (1u << 31)   /* the class's candidate list overflowed */
#define XW_ID_TERMINALS (1u << 30)  /* it lists terminal candidates */
#define XW_ID_COUNTS (1u << 29)     /* it lists `count` candidates */
#define XW_ID_TRIE (1u << 28)       /* address directory: look further */
/* With XW_ID_TRIE (IPv4 directory) or alone (/24 node entry): the low bits
 * are a node index (struct xw_node4), not a class. */
#define XW_ID_NODE (1u << 27)
#define XW_ID_MASK ((1u << 27) - 1)
/* With XW_ID_TRIE | XW_ID_NODE (IPv4 directory): the /16 holds one longer
 * prefix only, and the bits below are an index of struct xw_lone4 (node
 * indices never reach this bit). */
#define XW_ID_LONE (1u << 26)
#define XW_LONE_MASK (XW_ID_LONE - 1)

/* Address directories: the class of every address whose first 16 bits are
 * the index, unless some prefix longer than /16 lies there (XW_ID_TRIE).
 * Most addresses are decided by one array load instead of a trie walk. */
#define XW_DIR_BITS 16
#define XW_DIR_ENTRIES (1u << XW_DIR_BITS)

/* Index spaces of the per-field class arrays; the last index of each means
 * "the packet has no such field". */
#define XW_PORT_NONE 65536
#define XW_PORT_ENTRIES 65537
#define XW_PROTO_NONE 256 /* not IP */
#define XW_PROTO_ENTRIES 257
#define XW_TCPF_NONE 256 /* no TCP header */
#define XW_TCPF_ENTRIES 257
/* ICMP index = (ipv6 << 16) | (type << 8) | code */
#define XW_ICMP_NONE 131072
#define XW_ICMP_ENTRIES 131073
#define XW_FAMILY_NONE 0 /* not IP */
#define XW_FAMILY_IPV4 1
#define XW_FAMILY_IPV6 2
#define XW_FAMILY_ENTRIES 3
#define XW_VLAN_NONE 4096 /* untagged (or no second tag) */
#define XW_VLAN_ENTRIES 4097
#define XW_FRAG_NONE 0
#define XW_FRAG_FIRST 1
#define XW_FRAG_NON_FIRST 2
#define XW_FRAG_NOT_IP 3 /* not IP: matches no fragment condition */
#define XW_FRAG_ENTRIES 4

/* Packet fields a rule can constrain; bit i of `used_fields` = field i. */
enum xw_field {
	XW_F_SRC = 0,
	XW_F_DST = 1,
	XW_F_PROTO = 2,
	XW_F_SPORT = 3,
	XW_F_DPORT = 4,
	XW_F_TCPFLAGS = 5,
	XW_F_ICMP = 6,
	XW_F_FAMILY = 7,
	XW_F_VLAN = 8,
	XW_F_FRAG = 9,
	XW_F_MAX = 10,
};

/* Rule actions (xw_rule.action). */
enum xw_action {
	XW_ACT_PASS = 0,
	XW_ACT_DROP = 1,
	XW_ACT_COUNT = 2,
	XW_ACT_REDIRECT = 3,   /* bpf_redirect_map(xw_redirect, rule id) */
	XW_ACT_RATE_LIMIT = 4, /* token bucket: conforming pass, the rest drop */
};

/* Why a packet could not be parsed far enough (xw_malformed index). */
enum xw_malformed_reason {
	XW_MAL_TRUNCATED = 0,
	XW_MAL_BAD_HEADER = 1,
	XW_MAL_EXT_TOO_DEEP = 2,
	XW_MAL_VLAN_TOO_DEEP = 3,
	XW_MAL_MAX = 8,
};

/* Rule counter slots in xw_stats, then the default action's. A rule's slot
 * follows its name across reloads (the map is shared by the old and the new
 * program), so twice the rules: a reload can give every new name a slot the
 * running program does not use. */
#define XW_COUNTER_SLOTS (2 * XW_MAX_RULES)
#define XW_STAT_DEFAULT XW_COUNTER_SLOTS
#define XW_STAT_ENTRIES (XW_COUNTER_SLOTS + 1)

/* Direct checks: a candidate decides conditions on its rule's small fields
 * with a few tests on the rule record it already reads, not a class lookup
 * per field. The protocol, TCP flags, ICMP type and code, family and
 * fragment state sit side by side in the packet's 64-bit key (struct pkt,
 * each at its XW_KEY_* shift, as the field's table indexes it; the fragment
 * state Gray-coded, so "any fragment" is one bit); a rule's conditions on
 * them are one masked compare: (key & key_mask) == key_want. A port
 * condition is a range: (port - lo) <= span, unsigned. */
#define XW_KEY_PROTO 0   /* 9 bits: 0..255, XW_PROTO_NONE */
#define XW_KEY_TCPF 9    /* 9 bits: 0..255, XW_TCPF_NONE */
#define XW_KEY_ICMP 18   /* 18 bits: ..., XW_ICMP_NONE */
#define XW_KEY_FAMILY 36 /* 2 bits */
#define XW_KEY_FRAG 38   /* 2 bits: frag ^ (frag >> 1) */

struct xw_span {
	__u32 lo;
	__u32 span; /* hi - lo */
};

/* A rule's direct checks (fields in xw_rule.direct). */
struct xw_direct {
	__u64 key_mask; /* bits of the packet's key compared */
	__u64 key_want;
	struct xw_span port[2]; /* source and destination port (0 .. ~0: any) */
};

/* A class's first candidate's checks and verdict, copied from its rule:
 * most packets meet one list of one candidate, which this decides from
 * the class record's first bytes, beside the list, without a lookup of
 * the rule's record (one dependent load less for the check and, for a
 * plain drop or pass without events, one for the action). */
struct xw_first {
	struct xw_direct d;
	__u32 action;
	__u32 slot;
};

/*
 * An equivalence class of one field's values: every value mapped to it
 * matches exactly the rules whose bits are set. `cand` lists, ascending, the
 * rules indexed on this field that the class matches: a packet's candidates
 * are the union of its classes' lists, each then checked against all bitmaps.
 */
struct xw_class {
	__u32 ncand;
	__u32 flags;
	struct xw_first first; /* of cand[0], if any */
	__u32 cand[XW_MAX_CANDS];
	__u64 bits[XW_BITMAP_WORDS];
};

/*
 * The fixed-size tables a packet's fields are looked up in, as one map value
 * (xw_tables, one entry). The program looks it up once a packet and then
 * indexes plain arrays: a map lookup costs ~2.3 ns more than a load in a
 * chain of dependent ones (BENCHMARKS.md), and a packet makes up to twelve.
 * Value -> class id, with hint bits (XW_ID_*). The address arrays hold two
 * generations, generation g at [g << XW_DIR_BITS]; `gen` is the one packets
 * use, written last by user space when it switches.
 */
struct xw_tables {
	__u32 gen;
	__u32 proto[XW_PROTO_ENTRIES];
	__u32 sport[XW_PORT_ENTRIES];
	__u32 dport[XW_PORT_ENTRIES];
	__u32 tcpflags[XW_TCPF_ENTRIES];
	__u32 icmp[XW_ICMP_ENTRIES];
	__u32 family[XW_FAMILY_ENTRIES];
	__u32 vlan[XW_VLAN_ENTRIES];
	__u32 frag[XW_FRAG_ENTRIES];
	/* Address directories: the first 16 bits (IPv6: 16 bits too). */
	__u32 src4_dir[2 * XW_DIR_ENTRIES];
	__u32 dst4_dir[2 * XW_DIR_ENTRIES];
	__u32 src6_dir[2 * XW_DIR_ENTRIES];
	__u32 dst6_dir[2 * XW_DIR_ENTRIES];
	/* Per /16: bit k set when prefixes of length XW_LONG4_MIN + k lie
	 * inside (lengths 17..32: 16 bits, which keeps the value under 4 MiB). */
	__u16 src4_lens[2 * XW_DIR_ENTRIES];
	__u16 dst4_lens[2 * XW_DIR_ENTRIES];
};

/* Linux before 6.0 refuses an array map value over KMALLOC_MAX_SIZE (4 MiB
 * with 4 KiB pages), and xdpwall supports 5.18. */
_Static_assert(sizeof(struct xw_tables) <= 4u << 20, "xw_tables must stay within 4 MiB");

/* IPv4 prefixes this long or longer are looked up in the exact-match tables
 * (shorter ones are expanded into the /16 directory). */
#define XW_LONG4_MIN 17

/* An IPv4 multibit-trie node: the class of each of 256 address ranges
 * (a /24 node's entries are /24s, a /32 node's single addresses), or, in a
 * /24 node, XW_ID_NODE | the index of the /32 node below. Prefixes are
 * expanded into them, longer over shorter, so a lookup is two array loads
 * after the directory, whatever the set's size. */
#define XW_NODE_FANOUT 256

struct xw_node4 {
	__u32 c[XW_NODE_FANOUT];
};

/* A /16 that holds exactly one prefix longer than /16 (XW_ID_LONE): the
 * addresses with (a & mask) == want are in class `inside`, the rest of the
 * /16 in `outside`. One load where nodes take two: sparse sets (blocklists
 * of hosts spread over the address space) are mostly such /16s. */
struct xw_lone4 {
	__u32 mask;   /* host order */
	__u32 want;   /* host order, masked */
	__u32 inside;
	__u32 outside;
};

/* LPM trie keys (prefixlen in bits, address in network order); also the
 * keys of the IPv4 exact-match tables (address masked to prefixlen). */
struct xw_lpm4 {
	__u32 prefixlen;
	__u8 addr[4];
};

/* IPv6 LPM key: the table generation is the first data word, so one trie
 * holds both generations (prefixlen counts its 32 bits too). A word, not a
 * byte: the address stays 4-byte aligned, so the program copies it with
 * four loads and four stores instead of sixteen of each. */
struct xw_lpm6 {
	__u32 prefixlen;
	__u32 gen;
	__u8 addr[16];
};

/* The address tables (directories, length masks, exact-match and LPM
 * entries) exist twice; xw_tables.gen says which generation packets use, so a set
 * change is written beside the live one and takes effect with one write.
 * IPv4 exact-match keys carry the generation above the prefix length. */
#define XW_GEN_SHIFT 8

#define XW_NAME_LEN 64

/* xw_rule.flags */
#define XW_RULE_LOG 1u    /* emit events for matches */
#define XW_RULE_SAMPLE 2u /* only one in `sample` matches */
#define XW_RULE_BY_SRC 4u /* rate_limit: one bucket per source address */

/* Rate limits count tokens in nanotokens: a packet costs XW_RL_TOKEN, and
 * a bucket refilling at `pps` gains exactly `pps` nanotokens per ns — no
 * division per packet, exact from 1 pps to XW_RL_MAX_PPS. With burst and
 * pps at most 1e9 a full bucket (burst * XW_RL_TOKEN) fits in 60 bits. */
#define XW_RL_TOKEN 1000000000ull
#define XW_RL_MAX_PPS 1000000000ull
#define XW_RL_MAX_BURST 1000000000ull

/* One rule as the data plane and `stats` see it (index = rule id).
 * What a candidate check and its action read comes first: the action, the
 * counter slot and the protocol and port checks lie within 64 bytes, so a
 * matched rule costs two cache lines at most wherever the kernel starts
 * the array's values (on 6.18 at 56 bytes into a line), not four. 256
 * bytes: a shift indexes it. */
struct xw_rule {
	__u32 action;
	__u32 flags;
	__u32 slot;     /* its counters in xw_stats (< XW_COUNTER_SLOTS) */
	__u32 direct;   /* fields its direct checks decide (1 << XW_F_*) */
	struct xw_direct d;
	__u32 snaplen;  /* packet bytes carried by its events */
	__u32 sample;   /* 1 in N matches emits (with XW_RULE_SAMPLE) */
	__u64 every_ns; /* at most one event per interval (0: no limit) */
	__u64 rl_pps;     /* rate_limit: nanotokens gained per ns */
	__u64 rl_cap;     /* rate_limit: bucket size (burst * XW_RL_TOKEN) */
	__u64 rl_fill_ns; /* rate_limit: ns to fill an empty bucket */
	char name[XW_NAME_LEN];
	__u8 pad[104];  /* to 256 bytes */
};

_Static_assert(sizeof(struct xw_rule) == 256, "xw_rule: a power of two, whole cache lines");
_Static_assert(__builtin_offsetof(struct xw_rule, d) + sizeof(struct xw_direct) <= 64,
	       "xw_rule: action, slot and the direct checks within 64 bytes");

/* Per-rule counters of what an action could not do (xw_actstats, per CPU). */
struct xw_actstat {
	__u64 limited;      /* rate_limit: packets over the limit (dropped) */
	__u64 limited_bytes;
	__u64 redirect_err; /* redirect: no target in xw_redirect (dropped) */
	__u64 redirect_err_bytes;
};

/* Key of a per-source rate-limit bucket (xw_rl_src). */
struct xw_rl_key {
	__u32 rule;
	__u32 family; /* XW_FAMILY_*; XW_FAMILY_NONE: not IP, addr all zero */
	__u8 addr[16];
};

/* ---- Events ---------------------------------------------------------- */

/* Most packet bytes an event carries (a jumbo frame). */
#define XW_MAX_SNAPLEN 9216

/* Event kinds (xw_event.kind). */
#define XW_EV_LOG 1     /* a rule with `log` matched */
#define XW_EV_SAMPLE 2  /* a rule with `sample` matched (1 in N) */
#define XW_EV_CAPTURE 3 /* `xdpwall capture` tapped the packet */

/* Transports (const transport). */
#define XW_TRANSPORT_RINGBUF 0
#define XW_TRANSPORT_PERFBUF 1

/* Ring-buffer wake-up policies (const wakeup_mode). */
#define XW_WAKE_EVERY 0    /* every record */
#define XW_WAKE_BATCH 1    /* one per wakeup_batch records (per CPU) */
#define XW_WAKE_ADAPTIVE 2 /* when the consumer falls behind or a timer passed */

/* The fixed part of every event; cap_len packet bytes follow it. */
struct xw_event {
	__u64 ts_ns;     /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u32 ifindex;
	__u32 rx_queue;
	__u32 cpu;
	__u32 rule;      /* rule id, or XW_NO_RULE */
	__u32 verdict;   /* XDP action */
	__u32 wire_len;  /* whole frame, all fragments */
	__u32 cap_len;   /* bytes that follow */
	__u32 kind;      /* XW_EV_* */
};

/* Event counters (xw_evstats index, per CPU). */
enum xw_evstat {
	XW_EVS_PRODUCED = 0, /* events the program tried to emit */
	XW_EVS_LOST = 1,     /* of those, reserve/output failed: buffer full */
	XW_EVS_WAKEUPS = 2,  /* wake-ups the program asked for */
	XW_EVS_TAP_PRODUCED = 3, /* capture tap: events tried */
	XW_EVS_TAP_LOST = 4,     /* capture tap: did not fit */
	XW_EVS_MAX = 8,
};

/* The capture tap, switched by user space at run time (the global
 * xw_tap_ctl, map .bss.xw_tap).
 * A tap is a lease: it stops by itself at `expires_ns`, so a tapping
 * process that dies without turning it off (kill -9) costs the data plane
 * only until then; a live one renews it. */
struct xw_tap {
	__u32 enabled;
	__u32 snaplen;
	__u32 transport;  /* XW_TRANSPORT_* */
	__u32 flags;      /* XW_TAP_* */
	__u64 expires_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) when it stops */
};

/* xw_tap.flags: tap only packets the program drops (`xdpwall top`). */
#define XW_TAP_DROPS 1u

/* Size of the tap's ring buffer (fixed: the tap is off unless capturing). */
#define XW_TAP_RING_SIZE (2u << 20)

/* Per-CPU wake-up state. */
struct xw_wake {
	__u64 last_ns;  /* last wake-up asked for */
	__u64 pending;  /* records since then */
};

/* Per-CPU packet/byte counter. */
struct xw_counter {
	__u64 packets;
	__u64 bytes;
};

/* Facts about the running instance, for `stats` and `detach` from any
 * process in the same network namespace (xw_info[0]). */
#define XW_INFO_MAGIC 0x7877616c6c303031ull /* "xwall001" */
#define XW_PATH_LEN 256

struct xw_info {
	__u64 magic;
	__u64 pid;
	__u64 loaded_unix_ns;
	__u64 delivered;  /* events the running consumer received (updated by it) */
	__u32 mode;       /* 1 native, 2 generic */
	__u32 transport;  /* 0 ringbuf, 1 perfbuf */
	__u32 default_action;
	__u32 malformed_action;
	__u32 nrules;
	__u32 ifindex;
	char config[XW_PATH_LEN];
};

/* Written by the program when `trace_enabled` (replay): the last verdict. */
struct xw_trace {
	__u32 rule;      /* XW_NO_RULE when the default applied */
	__u32 action;    /* XDP_* verdict */
	__u32 malformed; /* 0, or reason + 1 */
	__u32 flags;     /* XW_TRACE_* */
};

/* ---- XDP errors the kernel reports for our program ------------------- */

/* Slots of xw_xdp_errors (per CPU, __u64), counted by bpf/xdperr.bpf.c from
 * the xdp:xdp_exception and xdp:xdp_redirect_err tracepoints: exceptions by
 * the XDP action that caused them (XDP_ABORTED..XDP_REDIRECT), exceptions
 * for an action the kernel does not know, then failed redirects without and
 * with a map (devmap, cpumap, xskmap). */
#define XW_XERR_EXC_INVALID 5
#define XW_XERR_REDIRECT 6
#define XW_XERR_REDIRECT_MAP 7
#define XW_XERR_MAX 8

/* xw_trace.flags */
#define XW_TRACE_LIMITED 1u      /* a rate_limit rule dropped it: over the limit */
#define XW_TRACE_REDIRECT_ERR 2u /* a redirect rule had no target: dropped */

#endif /* XDPWALL_ABI_H */
