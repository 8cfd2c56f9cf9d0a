/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Structs shared between the generator's BPF object and user space. The
 * Rust side uses the skeleton's types, generated from this object's BTF,
 * so no layout is copied by hand.
 */
#ifndef XW_GEN_ABI_H
#define XW_GEN_ABI_H

#include <linux/types.h>

/* What the generator rewrites in every frame. Set before load (.rodata). */
struct gen_cfg {
	__u32 ipv6;        /* 0: IPv4 frame, 1: IPv6 frame */
	__u32 tcp;         /* 0: UDP, 1: TCP */
	__u32 l4_off;      /* offset of the L4 header from the frame start */
	__u32 cpus;        /* stride of the sequence: possible CPUs */
	__u32 src_base;    /* IPv4 address, or the low 32 bits of the IPv6 one (host order) */
	__u32 src_count;   /* addresses in the range (>= 1) */
	__u32 src_step;    /* distance between consecutive addresses (>= 1) */
	__u32 sport_base;  /* first source port */
	__u32 sport_count; /* ports in the range (>= 1) */
	__u32 action;      /* what the program returns: XDP_TX to send */
};

/* Per-CPU counters of one program (the receivers use the first three). */
struct gen_counter {
	__u64 seq;     /* frames this CPU has numbered (generator) */
	__u64 packets; /* frames handled: sent (generator) or seen (receivers) */
	__u64 bytes;   /* their bytes */
	__u64 limit;   /* generator: send nothing once packets reaches it (0: no limit) */
	__u64 gap_ns;  /* generator: pacing, at least this long between frames (0: none) */
	__u64 next_ns; /* generator: when the next frame may go */
	__u64 held;    /* generator: runs that sent nothing (paced, or over the limit) */
};

#endif
