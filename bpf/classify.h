/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Classification (BPF only). Each used field maps the packet's value to an
 * equivalence class: a bitmap of the rules that value satisfies, plus a short
 * sorted list of candidate rules indexed on that field. The first terminal
 * rule is the lowest candidate whose bit is set in every class — so the cost
 * is a few lookups and a few candidate checks, not a walk over the rules.
 * A class whose list overflowed makes us fall back to ANDing the bitmaps.
 */
#ifndef XDPWALL_CLASSIFY_H
#define XDPWALL_CLASSIFY_H

#include "abi.h"
#include "maps.h"
#include "parse.h"

/* The packet's class per field (ids; the inner VLAN tag's at XW_F_MAX) and
 * the state of the candidate walk. Ids, not pointers: the walks run as
 * bpf_loop callbacks, which the verifier checks once instead of unrolling. */
struct match_ctx {
	__u32 cls[XW_F_MAX + 1];
	__u32 list;  /* class whose candidates are walked */
	__u32 best;  /* lowest matching terminal rule so far */
	__u32 pass;  /* 0: find the terminal rule, 1: count `count` rules */
	__u32 limit; /* scan: count rules below this id */
	__u64 bytes;
};

#define USED(F) (used_fields & (1u << (F)))

static __always_inline struct xw_class *class_by_id(__u32 id)
{
	id &= XW_ID_MASK;
	return bpf_map_lookup_elem(&xw_classes, &id);
}

static __always_inline __u32 class_at(void *map, __u32 idx)
{
	__u32 *id = bpf_map_lookup_elem(map, &idx);

	return id ? *id : XW_NO_RULE;
}

static __always_inline __u32 addr_class(void *map4, void *map6, struct pkt *p, __u8 *addr,
					__u32 nonip)
{
	__u32 *id = NULL;

	if (p->family == XW_FAMILY_IPV4) {
		struct xw_lpm4 k = { .prefixlen = 32 };

		__builtin_memcpy(k.addr, addr, 4);
		id = bpf_map_lookup_elem(map4, &k);
	} else if (p->family == XW_FAMILY_IPV6) {
		struct xw_lpm6 k = { .prefixlen = 128 };

		__builtin_memcpy(k.addr, addr, 16);
		id = bpf_map_lookup_elem(map6, &k);
	} else {
		return nonip;
	}
	return id ? *id : XW_NO_RULE;
}

/* Looks up the class of every used field (a missing one matches nothing). */
static __always_inline void gather_classes(struct pkt *p, struct match_ctx *m)
{
	if (USED(XW_F_SRC))
		m->cls[XW_F_SRC] = addr_class(&xw_src4, &xw_src6, p, p->saddr, src_nonip_class);
	if (USED(XW_F_DST))
		m->cls[XW_F_DST] = addr_class(&xw_dst4, &xw_dst6, p, p->daddr, dst_nonip_class);
	if (USED(XW_F_PROTO))
		m->cls[XW_F_PROTO] = class_at(&xw_proto, p->proto);
	if (USED(XW_F_SPORT))
		m->cls[XW_F_SPORT] = class_at(&xw_sport, p->sport);
	if (USED(XW_F_DPORT))
		m->cls[XW_F_DPORT] = class_at(&xw_dport, p->dport);
	if (USED(XW_F_TCPFLAGS))
		m->cls[XW_F_TCPFLAGS] = class_at(&xw_tcpflags, p->tcpflags);
	if (USED(XW_F_ICMP))
		m->cls[XW_F_ICMP] = class_at(&xw_icmp, p->icmp);
	if (USED(XW_F_FAMILY))
		m->cls[XW_F_FAMILY] = class_at(&xw_family, p->family);
	if (USED(XW_F_VLAN)) {
		m->cls[XW_F_VLAN] = class_at(&xw_vlan, p->vlan_outer);
		m->cls[XW_F_MAX] = class_at(&xw_vlan, p->vlan_inner);
	}
	if (USED(XW_F_FRAG))
		m->cls[XW_F_FRAG] = class_at(&xw_frag, p->frag);
}

/* Bitmap word `w` of one field's class (0 when the class is missing). */
static __always_inline __u64 word_of(__u32 id, __u32 w)
{
	struct xw_class *c = class_by_id(id);

	return c ? c->bits[w & (XW_BITMAP_WORDS - 1)] : 0;
}

/* Bitmap word `w` ANDed over all used fields (VLAN: outer OR inner tag). */
static __always_inline __u64 match_word(struct match_ctx *m, __u32 w)
{
	__u64 x = ~0ULL;

#pragma unroll
	for (int f = 0; f < XW_F_MAX; f++) {
		if (!USED(f))
			continue;
		if (f == XW_F_VLAN)
			x &= word_of(m->cls[f], w) | word_of(m->cls[XW_F_MAX], w);
		else
			x &= word_of(m->cls[f], w);
	}
	return x;
}

static __always_inline int rule_matches(struct match_ctx *m, __u32 r)
{
	return (match_word(m, r >> 6) >> (r & 63)) & 1;
}

/* Trailing zeros of a non-zero word, without branches (the verifier would
 * otherwise explore every path): popcount of the bits below the lowest one. */
static __always_inline __u32 ctz64(__u64 x)
{
	__u64 v = (x & -x) - 1;

	v = v - ((v >> 1) & 0x5555555555555555ULL);
	v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
	v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (__u32)((v * 0x0101010101010101ULL) >> 56);
}

static __always_inline void bump(__u32 slot, __u64 bytes)
{
	struct xw_counter *c = bpf_map_lookup_elem(&xw_stats, &slot);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/*
 * One step of a candidate walk (a bpf_loop callback). Pass 0 looks for a
 * terminal rule below m->best; pass 1 counts the `count` rules below the
 * final winner. Lists are sorted, so the walk stops at m->best.
 */
static long walk_step(__u64 i, void *arg)
{
	struct match_ctx *m = arg;
	struct xw_class *list = class_by_id(m->list);
	__u32 e, r;

	if (!list || i >= list->ncand || i >= XW_MAX_CANDS)
		return 1;
	e = list->cand[i & (XW_MAX_CANDS - 1)];
	r = e & XW_CAND_ID_MASK;
	if (r >= m->best)
		return 1;
	if (m->pass == 0) {
		if (!(e & XW_CAND_COUNT) && rule_matches(m, r)) {
			m->best = r;
			return 1;
		}
	} else if ((e & XW_CAND_COUNT) && rule_matches(m, r)) {
		bump(r, m->bytes);
	}
	return 0;
}

/* Walks a class's list if its id says it has candidates for this pass. */
static __always_inline void walk_list(struct match_ctx *m, __u32 id)
{
	if (!(id & (m->pass ? XW_ID_COUNTS : XW_ID_TERMINALS)))
		return;
	m->list = id;
	bpf_loop(XW_MAX_CANDS, walk_step, m, 0);
}

static __always_inline int any_overflow(struct match_ctx *m)
{
	__u32 o = always_class;

#pragma unroll
	for (int f = 0; f < XW_F_MAX; f++) {
		if (USED(f))
			o |= m->cls[f];
	}
	if (USED(XW_F_VLAN))
		o |= m->cls[XW_F_MAX];
	return (o & XW_ID_OVERFLOW) != 0;
}

static __always_inline void walk_all(struct match_ctx *m, __u32 pass)
{
	m->pass = pass;
	walk_list(m, always_class);
#pragma unroll
	for (int f = 0; f < XW_F_MAX; f++) {
		if (USED(f))
			walk_list(m, m->cls[f]);
	}
	/* Both tags in one class: one walk, or count rules would count twice. */
	if (USED(XW_F_VLAN) && m->cls[XW_F_MAX] != m->cls[XW_F_VLAN])
		walk_list(m, m->cls[XW_F_MAX]);
}

/* Counts the `count` rules among word bits `m` below rule id `limit`. */
static long count_step(__u64 i, void *arg)
{
	struct match_ctx *m = arg;
	__u32 w = m->list;
	struct xw_class *cnt = class_by_id(count_class);
	__u64 bits;

	if (!cnt)
		return 1;
	bits = match_word(m, w) & cnt->bits[w & (XW_BITMAP_WORDS - 1)];
	/* Drop the bits already counted (the lowest i). */
	for (int k = 0; k < 64; k++) {
		if (k >= (int)i || !bits)
			break;
		bits &= bits - 1;
	}
	if (!bits)
		return 1;
	i = w * 64 + ctz64(bits);
	if (i >= m->limit)
		return 1;
	bump((__u32)i & XW_CAND_ID_MASK, m->bytes);
	return 0;
}

/* The fallback when a candidate list overflowed: AND the bitmaps word by
 * word, in rule order (a bpf_loop callback per word). */
static long scan_step(__u64 w, void *arg)
{
	struct match_ctx *m = arg;
	struct xw_class *cnt;
	__u64 x, terminal;

	x = match_word(m, (__u32)w);
	/* With no field used every bit is set: keep only real rules. */
	if (w + 1 == nwords)
		x &= tail_mask;
	if (!x)
		return 0;
	terminal = x;
	if (has_count_rules) {
		cnt = class_by_id(count_class);
		if (cnt)
			terminal = x & ~cnt->bits[w & (XW_BITMAP_WORDS - 1)];
	}
	m->list = (__u32)w;
	m->limit = terminal ? (__u32)(w * 64 + ctz64(terminal)) : XW_NO_RULE;
	if (has_count_rules && terminal != x)
		bpf_loop(64, count_step, m, 0);
	if (terminal) {
		m->best = m->limit;
		return 1;
	}
	return 0;
}

/* The first terminal rule that matches, or XW_NO_RULE; counts `count` hits. */
static __always_inline __u32 classify(struct pkt *p, __u64 bytes)
{
	struct match_ctx m = {};

	m.best = XW_NO_RULE;
	m.bytes = bytes;
	gather_classes(p, &m);
	if (any_overflow(&m)) {
		bpf_loop(nwords, scan_step, &m, 0);
		return m.best;
	}
	walk_all(&m, 0);
	if (has_count_rules)
		walk_all(&m, 1);
	return m.best;
}

#endif /* XDPWALL_CLASSIFY_H */
