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

/* One class per field, plus the inner VLAN tag's at XW_F_MAX. */
struct classes {
	struct xw_class *f[XW_F_MAX + 1];
};

#define USED(F) (used_fields & (1u << (F)))

static __always_inline struct xw_class *class_by_id(__u32 id)
{
	return bpf_map_lookup_elem(&xw_classes, &id);
}

static __always_inline struct xw_class *class_at(void *map, __u32 idx)
{
	__u32 *id = bpf_map_lookup_elem(map, &idx);

	return id ? class_by_id(*id) : NULL;
}

static __always_inline struct xw_class *addr_class(void *map4, void *map6, struct pkt *p,
						   __u8 *addr, __u32 nonip)
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
		return class_by_id(nonip);
	}
	return id ? class_by_id(*id) : NULL;
}

/* Looks up the class of every used field; -1 if the tables are incomplete. */
static __always_inline int gather_classes(struct pkt *p, struct classes *k)
{
	struct xw_class *c;

#define GATHER(F, expr)              \
	if (USED(F)) {               \
		c = (expr);          \
		if (!c)              \
			return -1;   \
		k->f[F] = c;         \
	}
	GATHER(XW_F_SRC, addr_class(&xw_src4, &xw_src6, p, p->saddr, src_nonip_class));
	GATHER(XW_F_DST, addr_class(&xw_dst4, &xw_dst6, p, p->daddr, dst_nonip_class));
	GATHER(XW_F_PROTO, class_at(&xw_proto, p->proto));
	GATHER(XW_F_SPORT, class_at(&xw_sport, p->sport));
	GATHER(XW_F_DPORT, class_at(&xw_dport, p->dport));
	GATHER(XW_F_TCPFLAGS, class_at(&xw_tcpflags, p->tcpflags));
	GATHER(XW_F_ICMP, class_at(&xw_icmp, p->icmp));
	GATHER(XW_F_FAMILY, class_at(&xw_family, p->family));
	GATHER(XW_F_VLAN, class_at(&xw_vlan, p->vlan_outer));
	GATHER(XW_F_FRAG, class_at(&xw_frag, p->frag));
#undef GATHER
	if (USED(XW_F_VLAN)) {
		c = class_at(&xw_vlan, p->vlan_inner);
		if (!c)
			return -1;
		k->f[XW_F_MAX] = c;
	}
	return 0;
}

/* Bitmap word `w` ANDed over all used fields (VLAN: outer OR inner tag). */
static __always_inline __u64 match_word(struct classes *k, __u32 w)
{
	__u64 x = ~0ULL;

	w &= XW_BITMAP_WORDS - 1;
#pragma unroll
	for (int f = 0; f < XW_F_MAX; f++) {
		if (!USED(f))
			continue;
		if (f == XW_F_VLAN)
			x &= k->f[f]->bits[w] | k->f[XW_F_MAX]->bits[w];
		else
			x &= k->f[f]->bits[w];
	}
	return x;
}

static __always_inline int rule_matches(struct classes *k, __u32 r)
{
	return (match_word(k, r >> 6) >> (r & 63)) & 1;
}

static __always_inline __u32 ctz64(__u64 x)
{
	__u32 n = 0;

	if (!(x & 0xffffffffULL)) {
		n += 32;
		x >>= 32;
	}
	if (!(x & 0xffff)) {
		n += 16;
		x >>= 16;
	}
	if (!(x & 0xff)) {
		n += 8;
		x >>= 8;
	}
	if (!(x & 0xf)) {
		n += 4;
		x >>= 4;
	}
	if (!(x & 0x3)) {
		n += 2;
		x >>= 2;
	}
	if (!(x & 0x1))
		n += 1;
	return n;
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
 * Walks one sorted candidate list. Pass 0 looks for a terminal rule below
 * *best; pass 1 counts the `count` rules below *best (the final winner).
 */
static __always_inline void walk_candidates(struct xw_class *list, struct classes *k,
					    __u32 *best, int pass, __u64 bytes)
{
	__u32 n = list->ncand;

	for (__u32 i = 0; i < XW_MAX_CANDS; i++) {
		__u32 e, r;

		if (i >= n)
			break;
		e = list->cand[i];
		r = e & XW_CAND_ID_MASK;
		if (r >= *best)
			break;
		if (pass == 0) {
			if (!(e & XW_CAND_COUNT) && rule_matches(k, r)) {
				*best = r;
				break;
			}
		} else if ((e & XW_CAND_COUNT) && rule_matches(k, r)) {
			bump(r, bytes);
		}
	}
}

static __always_inline int any_overflow(struct classes *k, struct xw_class *always)
{
	__u32 o = always->flags;

#pragma unroll
	for (int f = 0; f <= XW_F_MAX; f++) {
		if (f == XW_F_MAX ? USED(XW_F_VLAN) : USED(f))
			o |= k->f[f]->flags;
	}
	return o & XW_CLASS_OVERFLOW;
}

static __always_inline void walk_all(struct classes *k, struct xw_class *always, __u32 *best,
				     int pass, __u64 bytes)
{
	walk_candidates(always, k, best, pass, bytes);
#pragma unroll
	for (int f = 0; f <= XW_F_MAX; f++) {
		if (f == XW_F_MAX ? USED(XW_F_VLAN) : USED(f))
			walk_candidates(k->f[f], k, best, pass, bytes);
	}
}

/* Counts the `count` rules in word bits `m` below rule id `limit`. */
static __always_inline void count_bits(__u64 m, __u32 base, __u32 limit, __u64 bytes)
{
	for (int i = 0; i < 64; i++) {
		__u32 r;

		if (!m)
			break;
		r = base + ctz64(m);
		if (r >= limit)
			break;
		bump(r & XW_CAND_ID_MASK, bytes);
		m &= m - 1;
	}
}

/* The fallback: AND the bitmaps word by word, in rule order. */
static __always_inline __u32 scan_bitmaps(struct classes *k, __u64 bytes)
{
	struct xw_class *cnt = NULL;

	if (has_count_rules) {
		cnt = class_by_id(count_class);
		if (!cnt)
			return XW_NO_RULE;
	}
	for (__u32 w = 0; w < XW_BITMAP_WORDS; w++) {
		__u64 x, terminal, counts = 0;

		if (w >= nwords)
			break;
		x = match_word(k, w);
		if (!x)
			continue;
		terminal = x;
		if (cnt) {
			counts = x & cnt->bits[w];
			terminal = x & ~counts;
		}
		if (terminal) {
			__u32 r = w * 64 + ctz64(terminal);

			if (cnt)
				count_bits(counts, w * 64, r, bytes);
			return r;
		}
		if (cnt)
			count_bits(counts, w * 64, XW_NO_RULE, bytes);
	}
	return XW_NO_RULE;
}

/* The first terminal rule that matches, or XW_NO_RULE; counts `count` hits. */
static __always_inline __u32 classify(struct pkt *p, __u64 bytes)
{
	struct classes k = {};
	struct xw_class *always;
	__u32 best = XW_NO_RULE;

	if (gather_classes(p, &k))
		return XW_NO_RULE;
	always = class_by_id(always_class);
	if (!always)
		return XW_NO_RULE;
	if (any_overflow(&k, always))
		return scan_bitmaps(&k, bytes);

	walk_all(&k, always, &best, 0, bytes);
	if (has_count_rules)
		walk_all(&k, always, &best, 1, bytes);
	return best;
}

#endif /* XDPWALL_CLASSIFY_H */
