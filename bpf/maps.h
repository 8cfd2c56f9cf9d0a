/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Maps and load-time configuration of the XDP program (BPF only).
 * Map sizes marked "set at load" are resized by the loader to the compiled
 * rule set before the object is loaded. Map names are the contract with user
 * space (crates/dataplane/src/maps.rs) and must keep their `xw_` prefix.
 */
#ifndef XDPWALL_MAPS_H
#define XDPWALL_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"

/* Branch hints: clang lays the unlikely side out of line, so the common
 * path runs straight through with few taken jumps (the JIT keeps the
 * order). bench dataplane, 10,000 rules: ~1 ns a frame (BENCHMARKS.md). */
#define xw_likely(x) __builtin_expect(!!(x), 1)
#define xw_unlikely(x) __builtin_expect(!!(x), 0)

/* Load-time configuration (frozen .rodata: the verifier sees constants, so
 * unused fields and features are dead code). */
const volatile __u32 used_fields = 0;    /* bit per enum xw_field */
const volatile __u32 index_fields = 0;   /* fields whose classes list candidates */
const volatile __u32 nwords = 0;         /* bitmap words in use */
const volatile __u64 tail_mask = 0;      /* valid rule bits of the last word */
const volatile __u32 src_nonip_class = 0; /* src class of non-IP frames */
const volatile __u32 dst_nonip_class = 0;
const volatile __u32 always_class = 0;   /* candidates with no condition */
const volatile __u32 count_class = 0;    /* bits = the `count` rules */
const volatile __u32 has_count_rules = 0;
const volatile __u32 default_verdict = XDP_PASS;
const volatile __u32 malformed_verdict = XDP_PASS;
const volatile __u32 trace_enabled = 0;
const volatile __u32 has_events = 0;       /* some rule logs or samples */
/* Untagged IPv4 TCP/UDP through parse_fast() (the loader sets it unless
 * told to use the general parser alone). */
const volatile __u32 fast_parse = 0;
/* The kernel has the bpf_cast_to_kern_ctx kfunc (Linux >= 6.2); the loader
 * looks it up in vmlinux BTF. Not bpf_ksym_exists(): that loads the kfunc's
 * address, which kernels before 6.4 refuse, failing the whole program. */
const volatile __u32 has_kern_ctx = 0;
const volatile __u32 transport = XW_TRANSPORT_RINGBUF;
const volatile __u32 wakeup_mode = XW_WAKE_ADAPTIVE;
const volatile __u32 wakeup_batch = 64;    /* XW_WAKE_BATCH */
const volatile __u64 wakeup_interval_ns = 100000; /* adaptive: timer */
const volatile __u64 wakeup_watermark = 65536;    /* adaptive: bytes behind */
/* Never read: keeps struct xw_event in the BTF the skeleton is generated
 * from (ring records are untyped), so user space and the ABI test see the
 * program's own layout. */
const volatile struct xw_event xw_event_layout = {};

/* Field value -> class id: the fixed-size tables (xw_tables, below), and
 * the address tables whose size depends on the rule set. */

/* IPv4 prefixes longer than /16, by (length, masked address): an exact-match
 * table per length is one hash lookup where an LPM trie walks ~20 nodes of a
 * million-entry set. The directory says which lengths exist in each /16
 * (xw_tables.*4_lens), so a lookup tries only those, longest first. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	/* Room for two generations, allocated only as they fill. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xw_lpm4);
	__type(value, __u32);
	__uint(max_entries, 1); /* set at load */
} xw_src4 SEC(".maps"), xw_dst4 SEC(".maps");

/* IPv4 multibit-trie nodes (struct xw_node4): a /16 whose directory entry
 * says XW_ID_NODE is decided by its /24 node and, where longer prefixes lie
 * in a /24, that /24's /32 node — two array loads whatever the set's size.
 * Both generations' nodes, each in its half; sized at load. /16s that do not
 * fit the node budget use the exact-match tables above instead. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xw_node4);
	__uint(max_entries, 1); /* set at load */
} xw_src4_n24 SEC(".maps"), xw_src4_n32 SEC(".maps"), xw_dst4_n24 SEC(".maps"),
	xw_dst4_n32 SEC(".maps");

/* /16s with one longer prefix (struct xw_lone4), both generations' halves
 * like the nodes'; sized at load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xw_lone4);
	__uint(max_entries, 1); /* set at load */
} xw_src4_lone SEC(".maps"), xw_dst4_lone SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xw_lpm6);
	__type(value, __u32);
	__uint(max_entries, 1); /* set at load */
} xw_src6 SEC(".maps"), xw_dst6 SEC(".maps");

/* Field value -> class id, and the address directories (struct xw_tables).
 * A global in a section of its own, so libbpf makes it a one-entry array map
 * of its own (".bss.xw_tables") that the program addresses directly: no
 * lookup, which costs ~2.3 ns more than a plain load in a packet's chain of
 * dependent loads here (BENCHMARKS.md).
 * Not static: the compiler must not assume it stays zero. */
struct xw_tables xw_tables SEC(".bss.xw_tables");

/* Class id -> rule bitmap and candidate list. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xw_class);
	__uint(max_entries, 1); /* set at load */
} xw_classes SEC(".maps");

/* Rule id -> action and name. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xw_rule);
	__uint(max_entries, 1); /* set at load */
} xw_rules SEC(".maps");

/* Per-rule counters, then the default action's (XW_STAT_DEFAULT). Per-CPU:
 * each CPU owns its slot, so plain increments need no atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xw_counter);
	__uint(max_entries, XW_STAT_ENTRIES);
} xw_stats SEC(".maps");

/* Malformed packets by reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xw_counter);
	__uint(max_entries, XW_MAL_MAX);
} xw_malformed SEC(".maps");

/* Instance facts, written by user space only. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xw_info);
	__uint(max_entries, 1);
} xw_info SEC(".maps");

/* Last verdict, for replay (only written when trace_enabled). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xw_trace);
	__uint(max_entries, 1);
} xw_trace SEC(".maps");

/* ---- Protection actions (rate_limit, redirect) ------------------------ */

/* A token bucket's state: nanotokens (XW_RL_TOKEN per packet) and the
 * bpf_ktime_get_ns() of its last refill. */
struct xw_tb {
	__u64 tokens;
	__u64 last_ns;
};

/* A `by = "rule"` bucket, shared by all CPUs (the limit is global, not per
 * CPU), guarded by its own spin lock. */
struct xw_bucket {
	struct bpf_spin_lock lock;
	__u32 pad;
	struct xw_tb tb;
};

/* Rule id -> its bucket. Zeroed at load: the first packet finds the bucket
 * long unrefilled, so it starts full. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xw_bucket);
	__uint(max_entries, 1); /* set at load: rules */
} xw_rl_rule SEC(".maps");

/* (rule id, source address) -> its bucket, for `by = "src"` limits; the
 * least recently seen sources make room for new ones. The kernel refuses
 * spin locks in LRU values, so these buckets are guarded by striped locks. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct xw_rl_key);
	__type(value, struct xw_tb);
	__uint(max_entries, 1); /* set at load: [xdp] rate_limit_table */
} xw_rl_src SEC(".maps");

#define XW_RL_STRIPES 256

struct xw_stripe {
	struct bpf_spin_lock lock;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xw_stripe);
	__uint(max_entries, XW_RL_STRIPES);
} xw_rl_stripes SEC(".maps");

/* Rule id -> the ifindex a `redirect` rule sends to (set at load). */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1); /* set at load: rules */
} xw_redirect SEC(".maps");

/* Per rule: over-limit and redirect-error counts (per CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xw_actstat);
	/* By counter slot, like xw_stats, and shared across reloads with it. */
	__uint(max_entries, XW_COUNTER_SLOTS);
} xw_actstats SEC(".maps");

/* Events: one ring shared by all CPUs, or the per-CPU perf buffers. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096); /* set at load: [events] buffer */
} xw_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} xw_perf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, XW_EVS_MAX);
} xw_evstats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct xw_wake);
	__uint(max_entries, 1);
} xw_wake SEC(".maps");

/* The capture tap: its switch and its own buffers, so `xdpwall capture`
 * never competes with `run` for the same ring. The switch is a global in a
 * section of its own, like xw_tables: every packet reads it. */
struct xw_tap xw_tap_ctl SEC(".bss.xw_tap");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, XW_TAP_RING_SIZE);
} xw_tap_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} xw_tap_perf SEC(".maps");

/* Per rule: time of its last event (`every`), shared by all CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, XW_MAX_RULES);
} xw_last_event SEC(".maps");

/* Per rule and CPU: matches seen, for `sample`. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, XW_MAX_RULES);
} xw_sample_seen SEC(".maps");

/* XDP errors the kernel reports for this program (bpf/xdperr.bpf.c counts
 * them; they live here so they live as long as the program). */
#include "xdperr_map.h"

#endif /* XDPWALL_MAPS_H */
