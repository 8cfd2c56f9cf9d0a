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
#include "events.h"

#include <bpf/bpf_endian.h>

/* `count` rules per packet whose events we can emit. */
#define XW_MAX_HITS 4

/* The packet and its class per field (ids; the inner VLAN tag's at
 * XW_F_MAX), and the state of the candidate walk. Ids, not pointers: the
 * walks run as bpf_loop callbacks, which the verifier checks once instead of
 * unrolling. Only index fields are looked up ahead; the others lazily, for
 * the candidates that constrain them. */
struct match_ctx {
	struct pkt p;
	__u32 cls[XW_F_MAX + 1];
	__u32 list;  /* class whose candidates are walked */
	__u32 skip;  /* class whose first candidate was checked inline */
	__u32 best;  /* lowest matching terminal rule so far */
	/* The rule first_inline() found, and its class's copy of its action
	 * and counter slot (XW_NO_RULE: none). */
	__u32 first_rule;
	__u32 first_action;
	__u32 first_slot;
	/* Keeps the fields below where they were before the three above
	 * (nhits on an 8-byte boundary): without it the verifier's tracking
	 * of the stack lost precision and the richest rule set took 593,010
	 * instructions processed instead of 268,461. */
	__u32 pad;
	__u32 pass;  /* 0: find the terminal rule, 1: count `count` rules */
	__u32 limit; /* scan: count rules below this id */
	__u32 nhits; /* `count` rules counted (the first XW_MAX_HITS kept) */
	__u32 hits[XW_MAX_HITS];
	__u64 bytes;
};

_Static_assert(__builtin_offsetof(struct match_ctx, nhits) % 8 == 0,
	       "match_ctx: nhits 8-byte aligned (see pad)");

#define USED(F) (used_fields & (1u << (F)))
#define INDEXED(F) (index_fields & (1u << (F)))

static __always_inline struct xw_class *class_by_id(__u32 id)
{
	id &= XW_ID_MASK;
	return bpf_map_lookup_elem(&xw_classes, &id);
}

/* Entry `idx` of a table of `n` (XW_NO_RULE past its end, where a parsed
 * field never points: the bound is for the verifier). */
static __always_inline __u32 entry(const __u32 *tbl, __u32 idx, __u32 n)
{
	return xw_likely(idx < n) ? tbl[idx] : XW_NO_RULE;
}

/* The same for a 16-bit table (0 past its end). */
static __always_inline __u32 entry16(const __u16 *tbl, __u32 idx, __u32 n)
{
	return xw_likely(idx < n) ? tbl[idx] : 0;
}

/* The class of IPv4 address `a` (host order) in a /16 whose directory entry
 * `d` flags longer prefixes: the longest of them that holds `a`, else the
 * class of the /16 itself (the entry without the flag). */
static __always_inline __u32 long4_class(const __u16 *lens4, void *map4, __u32 a, __u32 d,
					 __u32 gen)
{
	__u32 lens = entry16(lens4, gen << 16 | a >> 16, 2 * XW_DIR_ENTRIES);
	struct xw_lpm4 k;
	__u32 *id;

	/* Constant bounds: unrolled, and only the present lengths cost. */
#pragma unroll
	for (int i = 15; i >= 0; i--) {
		if (!(lens & (1u << i)))
			continue;
		k.prefixlen = (XW_LONG4_MIN + i) | gen << XW_GEN_SHIFT;
		*(__u32 *)k.addr = bpf_htonl(a & (~0u << (32 - (XW_LONG4_MIN + i))));
		id = bpf_map_lookup_elem(map4, &k);
		if (id)
			return *id;
	}
	return d & ~XW_ID_TRIE;
}

/* The class of IPv4 address `a` in a /16 whose directory entry `d` points
 * to its /24 node: that node's entry, or the entry of the /32 node it
 * points to. Entries hold expanded prefixes, so no search is needed. */
static __always_inline __u32 node4_class(void *n24, void *n32, __u32 a, __u32 d)
{
	__u32 idx = d & XW_ID_MASK;
	struct xw_node4 *n = bpf_map_lookup_elem(n24, &idx);
	__u32 e;

	if (xw_unlikely(!n))
		return XW_NO_RULE;
	e = n->c[(a >> 8) & (XW_NODE_FANOUT - 1)];
	if (!(e & XW_ID_NODE))
		return e;
	idx = e & XW_ID_MASK;
	n = bpf_map_lookup_elem(n32, &idx);
	if (xw_unlikely(!n))
		return XW_NO_RULE;
	return n->c[a & (XW_NODE_FANOUT - 1)];
}

/* The class of IPv4 address `a` in a /16 whose directory entry `d` points
 * to its one longer prefix (XW_ID_LONE). */
static __always_inline __u32 lone4_class(void *lone, __u32 a, __u32 d)
{
	__u32 idx = d & XW_LONE_MASK;
	struct xw_lone4 *l = bpf_map_lookup_elem(lone, &idx);

	if (xw_unlikely(!l))
		return XW_NO_RULE;
	return (a & l->mask) == l->want ? l->inside : l->outside;
}

/* The tables of one address field: arrays in xw_tables, and maps. */
struct addr_maps {
	const __u32 *dir4, *dir6;
	const __u16 *lens4;
	void *map4, *n24, *n32, *lone, *map6;
};

static __always_inline __u32 addr_class(struct addr_maps *t, struct pkt *p, __u8 *addr,
					__u32 nonip)
{
	__u32 *id = NULL;
	__u32 d, a, gen = p->gen & 1;

	if (p->family == XW_FAMILY_NONE)
		return nonip;
	/* One call site per map keeps each lookup inlined by the verifier. */
	if (p->family == XW_FAMILY_IPV4) {
		/* One aligned load (struct pkt keeps addresses 4-byte aligned). */
		__builtin_memcpy(&a, addr, 4);
		a = bpf_ntohl(a);
		d = entry(t->dir4, gen << 16 | a >> 16, 2 * XW_DIR_ENTRIES);
		if (!(d & XW_ID_TRIE))
			return d;
		if (d & XW_ID_NODE) {
			if (d & XW_ID_LONE)
				return lone4_class(t->lone, a, d);
			return node4_class(t->n24, t->n32, a, d);
		}
		return long4_class(t->lens4, t->map4, a, d, gen);
	}
	d = entry(t->dir6, gen << 16 | ((__u32)addr[0] << 8) | addr[1], 2 * XW_DIR_ENTRIES);
	if (!(d & XW_ID_TRIE))
		return d;
	if (p->family == XW_FAMILY_IPV6) {
		struct xw_lpm6 k = { .prefixlen = 32 + 128, .gen = gen };

		__builtin_memcpy(k.addr, addr, 16);
		id = bpf_map_lookup_elem(t->map6, &k);
	} else {
		return nonip;
	}
	return id ? *id : XW_NO_RULE;
}

/* The class of field `f` (XW_F_MAX: the inner VLAN tag) for the packet. */
static __always_inline __u32 lookup_field(const struct xw_tables *t, struct pkt *p, int f)
{
	switch (f) {
	case XW_F_SRC: {
		struct addr_maps a = { t->src4_dir,    t->src6_dir,  t->src4_lens,
				       &xw_src4,       &xw_src4_n24, &xw_src4_n32,
				       &xw_src4_lone, &xw_src6 };

		return addr_class(&a, p, p->saddr, src_nonip_class);
	}
	case XW_F_DST: {
		struct addr_maps a = { t->dst4_dir,    t->dst6_dir,  t->dst4_lens,
				       &xw_dst4,       &xw_dst4_n24, &xw_dst4_n32,
				       &xw_dst4_lone, &xw_dst6 };

		return addr_class(&a, p, p->daddr, dst_nonip_class);
	}
	case XW_F_PROTO:
		return entry(t->proto, p->proto, XW_PROTO_ENTRIES);
	case XW_F_SPORT:
		return entry(t->sport, p->sport, XW_PORT_ENTRIES);
	case XW_F_DPORT:
		return entry(t->dport, p->dport, XW_PORT_ENTRIES);
	case XW_F_TCPFLAGS:
		return entry(t->tcpflags, p->tcpflags, XW_TCPF_ENTRIES);
	case XW_F_ICMP:
		return entry(t->icmp, p->icmp, XW_ICMP_ENTRIES);
	case XW_F_FAMILY:
		return entry(t->family, p->family, XW_FAMILY_ENTRIES);
	case XW_F_VLAN:
		return entry(t->vlan, p->vlan_outer, XW_VLAN_ENTRIES);
	case XW_F_FRAG:
		return entry(t->frag, p->frag, XW_FRAG_ENTRIES);
	default:
		return entry(t->vlan, p->vlan_inner, XW_VLAN_ENTRIES);
	}
}

/* Whether field `f` (0..XW_F_MAX) is looked up ahead of the walk. */
static __always_inline int ahead(int f)
{
	return f == XW_F_MAX ? INDEXED(XW_F_VLAN) : INDEXED(f);
}

/* The class of field `f`: looked up ahead, or now. */
static __always_inline __u32 field_class(struct match_ctx *m, int f)
{
	return ahead(f) ? m->cls[f] : lookup_field(&xw_tables, &m->p, f);
}

/* What gather_index() found: the union of the classes' hint bits, and the
 * fields whose classes list terminal candidates (bit XW_F_MAX: the inner
 * VLAN tag, when its class differs from the outer tag's). */
struct gathered {
	__u32 hints;
	__u32 terminals;
};

/* Whether the class of field `f` gets a walk of its own: the inner tag's
 * not when both tags are in one class (its `count` rules would count
 * twice). */
static __always_inline int own_list(struct match_ctx *m, int f, __u32 id)
{
	return f != XW_F_MAX || id != m->cls[XW_F_VLAN];
}

/* Looks up the classes of the index fields (a missing one matches nothing)
 * and notes which lists the walk needs, so it tests a register per field
 * instead of loading index_fields again. */
static __always_inline struct gathered gather_index(struct match_ctx *m)
{
	struct gathered g = { always_class, 0 };
	__u32 id;

#pragma unroll
	for (int f = 0; f <= XW_F_MAX; f++) {
		if (!ahead(f))
			continue;
		id = lookup_field(&xw_tables, &m->p, f);
		m->cls[f] = id;
		g.hints |= id;
		if (own_list(m, f, id))
			g.terminals |= ((id & XW_ID_TERMINALS) != 0) << f;
	}
	return g;
}

/* The fields whose classes list `count` candidates: only looked for when
 * some class has them (most packets meet none: no work per field). */
static __always_inline __u32 count_lists(struct match_ctx *m)
{
	__u32 counts = 0;

#pragma unroll
	for (int f = 0; f <= XW_F_MAX; f++) {
		if (ahead(f) && own_list(m, f, m->cls[f]))
			counts |= ((m->cls[f] & XW_ID_COUNTS) != 0) << f;
	}
	return counts;
}

/* Looks up every used field (for the bitmap scan). */
static __always_inline void gather_all(struct match_ctx *m)
{
#pragma unroll
	for (int f = 0; f <= XW_F_MAX; f++) {
		if (f == XW_F_MAX ? USED(XW_F_VLAN) : USED(f))
			m->cls[f] = lookup_field(&xw_tables, &m->p, f);
	}
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

static __always_inline __u64 bit_of(__u32 id, __u32 r)
{
	return (word_of(id, r >> 6) >> (r & 63)) & 1;
}

/* Fields whose values make up the packet's key (XW_KEY_*). */
#define KEY_FIELDS                                                                       \
	((1u << XW_F_PROTO) | (1u << XW_F_TCPFLAGS) | (1u << XW_F_ICMP) | (1u << XW_F_FAMILY) | \
	 (1u << XW_F_FRAG))

/* Whether port `v` lies in `s` (one unsigned compare). */
static __always_inline int in_span(__u32 v, const struct xw_span *s)
{
	return v - s->lo <= s->span;
}

/* Whether the packet meets the direct checks of `rule`: one masked compare
 * for the key, one compare per used port field. Under BPF_PROG_TEST_RUN a
 * test per field (range and mask on each of six) cost ~3 ns a packet on the
 * 10,000-rule set. */
static __always_inline int direct_ok(struct match_ctx *m, const struct xw_direct *d)
{
	if ((used_fields & KEY_FIELDS) && (m->p.key & d->key_mask) != d->key_want)
		return 0;
	if (USED(XW_F_SPORT) && !in_span(m->p.sport, &d->port[0]))
		return 0;
	return !USED(XW_F_DPORT) || in_span(m->p.dport, &d->port[1]);
}

/* The same for rule id `r` (one lookup of the rule). */
static __always_inline int direct_holds(struct match_ctx *m, __u32 r)
{
	const struct xw_rule *rule = bpf_map_lookup_elem(&xw_rules, &r);

	return rule && direct_ok(m, &rule->d);
}

/* One step of bitmaps_hold(): 1 when field `f` and all above it are done, 0
 * when the rule fails on `f`, -1 to go on. */
static __always_inline int bitmap_step(struct match_ctx *m, __u32 r, __u32 check, int inl, int f)
{
	/* Nothing left to check from here on: done (one test instead of one
	 * per remaining field). */
	if (!(check >> f))
		return 1;
	/* The candidate's mask first: USED() is a load, and only lets the
	 * verifier drop the code of unused fields. */
	if (!(check & (1u << f)) || !USED(f))
		return -1;
	if (inl && !ahead(f) && (f == XW_F_SRC || f == XW_F_DST))
		return 0;
	if (f == XW_F_VLAN)
		return (bit_of(field_class(m, f), r) | bit_of(field_class(m, XW_F_MAX), r)) ? -1 : 0;
	return bit_of(field_class(m, f), r) ? -1 : 0;
}

#define BITMAP_STEP(F)                                                                   \
	do {                                                                             \
		int ok_ = bitmap_step(m, r, check, inl, F);                              \
		if (ok_ >= 0)                                                            \
			return ok_;                                                      \
	} while (0)

/* Whether rule `r` holds on every field in `check` (the candidate's mask of
 * fields to check with the class bitmaps). `inl`: the one inline check
 * (first_inline), which never looks an address up itself (its caller makes
 * sure), so it holds no copy of that code. Steps spelled out: clang would
 * not unroll them as a loop beside direct_holds(). */
static __always_inline int bitmaps_hold(struct match_ctx *m, __u32 r, __u32 check, int inl)
{
	BITMAP_STEP(XW_F_SRC);
	BITMAP_STEP(XW_F_DST);
	BITMAP_STEP(XW_F_PROTO);
	BITMAP_STEP(XW_F_SPORT);
	BITMAP_STEP(XW_F_DPORT);
	BITMAP_STEP(XW_F_TCPFLAGS);
	BITMAP_STEP(XW_F_ICMP);
	BITMAP_STEP(XW_F_FAMILY);
	BITMAP_STEP(XW_F_VLAN);
	BITMAP_STEP(XW_F_FRAG);
	return 1;
}

/* Whether candidate `e`'s rule holds: its direct checks, then the class
 * bitmaps of the rest (the walks' check; first_holds() is the inline one). */
static __always_inline int rule_holds(struct match_ctx *m, __u32 e)
{
	__u32 r = e & XW_CAND_ID_MASK;

	if ((e & XW_CAND_DIRECT) && !direct_holds(m, r))
		return 0;
	return bitmaps_hold(m, r, e >> XW_CAND_CHECK_SHIFT, 0);
}

/* The same for a class's first candidate, with the class's copy of its
 * direct checks. */
static __always_inline int first_holds(struct match_ctx *m, const struct xw_class *c, __u32 e)
{
	if ((e & XW_CAND_DIRECT) && !direct_ok(m, &c->first.d))
		return 0;
	return bitmaps_hold(m, e & XW_CAND_ID_MASK, e >> XW_CAND_CHECK_SHIFT, 1);
}

/*
 * Whether candidate `e`'s rule holds, for the walks: a global function, so
 * the verifier checks it once, knowing nothing of its caller. Inlined, its
 * lazy address lookups were checked anew in every list's walk of every
 * pass, against all they could meet: a six-rule set with negated mixed
 * IPv4/IPv6 sets took the verifier past its budget that way. The call costs
 * a candidate ~1 ns; first_inline() keeps the common case inline.
 */
__noinline int xw_rule_matches(struct match_ctx *m, __u32 e)
{
	/* Global functions may be passed NULL, as far as the verifier knows. */
	if (!m)
		return 0;
	return rule_holds(m, e);
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

/* Adds a packet of `bytes` to the counters in slot *slot (a pointer, so a
 * slot already in memory is the lookup's key as it is: no copy to the
 * stack and back on the way to the counter). */
static __always_inline void bump_at(const __u32 *slot, __u64 bytes)
{
	struct xw_counter *c = bpf_map_lookup_elem(&xw_stats, slot);

	if (xw_likely(c)) {
		c->packets++;
		c->bytes += bytes;
	}
}

static __always_inline void bump(__u32 slot, __u64 bytes)
{
	bump_at(&slot, bytes);
}

/* Counts a hit of rule `r` in the rule's slot (see XW_COUNTER_SLOTS). */
static __always_inline void bump_rule(__u32 r, __u64 bytes)
{
	struct xw_rule *rule = bpf_map_lookup_elem(&xw_rules, &r);

	if (rule)
		bump(rule->slot, bytes);
}

/* Counts a `count` rule's hit and remembers it for its events. */
static __always_inline void count_hit(struct match_ctx *m, __u32 r)
{
	bump_rule(r, m->bytes);
	if (!has_events)
		return;
	if (m->nhits < XW_MAX_HITS) {
		m->hits[m->nhits++ & (XW_MAX_HITS - 1)] = r;
	} else {
		/* More logging `count` rules than we keep: say so, never silently. */
		struct xw_rule *rule = bpf_map_lookup_elem(&xw_rules, &r);

		if (rule && (rule->flags & (XW_RULE_LOG | XW_RULE_SAMPLE))) {
			evstat_add(XW_EVS_PRODUCED);
			evstat_add(XW_EVS_LOST);
		}
	}
}

/*
 * One step of a candidate walk (a bpf_loop callback). Pass 0 looks for a
 * terminal rule below m->best; pass 1 counts the `count` rules below the
 * final winner. Lists are sorted, so the walk stops at m->best. The list
 * m->skip starts at its second candidate (first_inline checked the first).
 */
static long walk_step(__u64 i, void *arg)
{
	struct match_ctx *m = arg;
	struct xw_class *list = class_by_id(m->list);
	__u32 e, r;

	i += m->list == m->skip;
	if (!list || i >= list->ncand || i >= XW_MAX_CANDS)
		return 1;
	e = list->cand[i & (XW_MAX_CANDS - 1)];
	r = e & XW_CAND_ID_MASK;
	if (r >= m->best)
		return 1;
	if (m->pass == 0) {
		if (!(e & XW_CAND_COUNT) && xw_rule_matches(m, e)) {
			m->best = r;
			return 1;
		}
	} else if ((e & XW_CAND_COUNT) && xw_rule_matches(m, e)) {
		count_hit(m, r);
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

/* Address fields a candidate's check may need that were not looked up ahead. */
#define LAZY_ADDR                                                                        \
	((USED(XW_F_SRC) && !INDEXED(XW_F_SRC) ? 1u << XW_F_SRC : 0) |                      \
	 (USED(XW_F_DST) && !INDEXED(XW_F_DST) ? 1u << XW_F_DST : 0))

/*
 * The first candidate of the first list, checked inline when it is a
 * terminal rule that needs no address lookup (else the walk has it): most
 * packets meet one list of one candidate, and a bpf_loop step costs ~15 ns
 * here (a call and a return through the CPU's return thunk). Returns the
 * fields whose lists are still to walk; m->skip names a list whose first
 * candidate is done. One inline copy only: more copies cost more in
 * register spills than the calls they save.
 */
static __always_inline __u32 first_inline(struct match_ctx *m, __u32 lists)
{
	struct xw_class *list;
	__u32 f = 0, id = XW_NO_RULE, e, r, check;

	m->skip = XW_NO_RULE;
	if ((always_class & XW_ID_TERMINALS) || !lists)
		return lists;
	/* The lowest field with a list (constant indices: no variable
	 * offsets into the stack for the verifier to reject). */
#pragma unroll
	for (int k = 0; k <= XW_F_MAX; k++) {
		if ((lists & (1u << k)) && ahead(k)) {
			f = k;
			id = m->cls[k];
			break;
		}
	}
	list = class_by_id(id);
	if (xw_unlikely(id == XW_NO_RULE || !list || list->ncand == 0))
		return lists;
	e = list->cand[0];
	r = e & XW_CAND_ID_MASK;
	check = e >> XW_CAND_CHECK_SHIFT;
	if (xw_unlikely((e & XW_CAND_COUNT) || (check & LAZY_ADDR)))
		return lists;
	if (first_holds(m, list, e)) {
		m->best = r; /* the lowest candidate of its list: done with it */
		/* Its verdict too, unless a lower rule matches in another list. */
		m->first_rule = r;
		m->first_action = list->first.action;
		m->first_slot = list->first.slot;
		return lists & ~(1u << f);
	}
	if (list->ncand == 1)
		return lists & ~(1u << f);
	m->skip = id;
	return lists;
}

/* Walks the always class's list and the lists of the fields in `lists`. */
static __always_inline void walk_all(struct match_ctx *m, __u32 pass, __u32 lists)
{
	m->pass = pass;
	walk_list(m, always_class);
	/* Most packets have no list left to walk: one test, not one a field. */
	if (xw_likely(!lists))
		return;
#pragma unroll
	for (int f = 0; f <= XW_F_MAX; f++) {
		/* The register first; ahead() lets the verifier drop the rest. */
		if ((lists & (1u << f)) && ahead(f))
			walk_list(m, m->cls[f]);
	}
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
	count_hit(m, (__u32)i & XW_CAND_ID_MASK);
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

/* Classifies the packet parsed into m->p: the first terminal rule that
 * matches, or XW_NO_RULE; counts `count` hits. */
static __always_inline __u32 classify(__u64 bytes, struct match_ctx *m)
{
	struct gathered g;

	m->best = XW_NO_RULE;
	m->first_rule = XW_NO_RULE;
	m->bytes = bytes;
	/* One read per packet: every address lookup uses this generation
	 * (none when no rule has an address condition). */
	if (USED(XW_F_SRC) || USED(XW_F_DST))
		m->p.gen = xw_tables.gen & 1;
	g = gather_index(m);
	if (xw_unlikely(g.hints & XW_ID_OVERFLOW)) {
		gather_all(m);
		bpf_loop(nwords, scan_step, m, 0);
		return m->best;
	}
	walk_all(m, 0, first_inline(m, g.terminals));
	/* Pass 1 walks every list from its start (the skipped candidate is a
	 * terminal rule, which pass 1 ignores anyway). */
	m->skip = XW_NO_RULE;
	if (has_count_rules && xw_unlikely(g.hints & XW_ID_COUNTS))
		walk_all(m, 1, count_lists(m));
	return m->best;
}

#endif /* XDPWALL_CLASSIFY_H */
