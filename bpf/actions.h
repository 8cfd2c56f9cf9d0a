/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Terminal actions (BPF only): the verdict of the rule that decided.
 * `pass`/`drop` are constants; `rate_limit` takes a token from a bucket
 * shared by all CPUs (one per rule, or one per rule and source address);
 * `redirect` hands the frame to the interface in xw_redirect.
 */
#ifndef XDPWALL_ACTIONS_H
#define XDPWALL_ACTIONS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "maps.h"
#include "parse.h"
#include "classify.h" /* bump() */

static __always_inline void act_count(__u32 slot, __u32 what, __u64 bytes)
{
	struct xw_actstat *s = bpf_map_lookup_elem(&xw_actstats, &slot);

	if (!s)
		return;
	if (what == XW_TRACE_LIMITED) {
		s->limited++;
		s->limited_bytes += bytes;
	} else {
		s->redirect_err++;
		s->redirect_err_bytes += bytes;
	}
}

/*
 * Refills `b` for the time since its last refill and takes one packet's
 * worth of tokens: 1 if the packet conforms. Runs under the bucket's lock,
 * so it calls nothing. A CPU that read the clock before another CPU's
 * refill sees no time pass (never a negative interval, never a clock going
 * back). Capping the interval at the fill time keeps `elapsed * pps` below
 * cap + pps, far from overflow.
 */
static __always_inline int bucket_take(struct xw_tb *b, const struct xw_rule *r, __u64 now)
{
	__u64 tokens = b->tokens;

	if (now > b->last_ns) {
		__u64 elapsed = now - b->last_ns;

		if (elapsed >= r->rl_fill_ns)
			tokens = r->rl_cap;
		else
			tokens += elapsed * r->rl_pps;
		if (tokens > r->rl_cap)
			tokens = r->rl_cap;
		b->last_ns = now;
	}
	if (tokens < XW_RL_TOKEN) {
		b->tokens = tokens;
		return 0;
	}
	b->tokens = tokens - XW_RL_TOKEN;
	return 1;
}

/* The lock stripe of a per-source bucket. */
static __always_inline __u32 stripe_of(const struct xw_rl_key *k)
{
	__u32 h = k->rule * 0x9e3779b1u;

#pragma unroll
	for (int i = 0; i < 16; i += 4)
		h = (h ^ ((__u32)k->addr[i] << 24 | (__u32)k->addr[i + 1] << 16 |
			  (__u32)k->addr[i + 2] << 8 | k->addr[i + 3])) * 0x85ebca6bu;
	return (h >> 16) & (XW_RL_STRIPES - 1);
}

/* The bucket of (rule, source): found, or made full minus this packet. */
static __always_inline int take_by_src(__u32 rule, const struct xw_rule *r, struct pkt *p,
				       __u64 now)
{
	struct xw_rl_key k = { .rule = rule, .family = p->family };
	struct xw_stripe *lock;
	struct xw_tb *b;
	__u32 stripe;
	int ok;

	if (p->family == XW_FAMILY_IPV4)
		__builtin_memcpy(k.addr, p->saddr, 4);
	else if (p->family == XW_FAMILY_IPV6)
		__builtin_memcpy(k.addr, p->saddr, 16);
	b = bpf_map_lookup_elem(&xw_rl_src, &k);
	if (!b) {
		struct xw_tb fresh = {
			.tokens = r->rl_cap - XW_RL_TOKEN, /* burst >= 1 */
			.last_ns = now,
		};

		/* NOEXIST: if another CPU made it first, take from that one. */
		if (!bpf_map_update_elem(&xw_rl_src, &k, &fresh, BPF_NOEXIST))
			return 1;
		b = bpf_map_lookup_elem(&xw_rl_src, &k);
		if (!b)
			return 1; /* evicted at once: the table is far too small */
	}
	stripe = stripe_of(&k);
	lock = bpf_map_lookup_elem(&xw_rl_stripes, &stripe);
	if (!lock)
		return 1;
	bpf_spin_lock(&lock->lock);
	ok = bucket_take(b, r, now);
	bpf_spin_unlock(&lock->lock);
	return ok;
}

static __always_inline int rate_conforms(__u32 rule, const struct xw_rule *r, struct pkt *p)
{
	__u64 now = bpf_ktime_get_ns();
	struct xw_bucket *b;
	int ok;

	if (r->flags & XW_RULE_BY_SRC)
		return take_by_src(rule, r, p, now);
	b = bpf_map_lookup_elem(&xw_rl_rule, &rule);
	if (!b)
		return 1;
	bpf_spin_lock(&b->lock);
	ok = bucket_take(&b->tb, r, now);
	bpf_spin_unlock(&b->lock);
	return ok;
}

/*
 * The verdict of terminal rule `rule` for packet `p` of `bytes` bytes, with
 * XW_TRACE_* flags in bits 16 and up. Inlined: as a global function the
 * verifier checked it once instead of once per way parsing can end, but the
 * call cost every matched packet ~15 ns (bench classify: 10,000 rules, a
 * dropped packet 132-140 -> 116 ns); verification time did not change
 * measurably (10,000 rules load in ~2.3 s either way).
 */
static __always_inline int xw_act(__u32 rule, struct pkt *p, __u64 bytes)
{
	struct xw_rule *r = bpf_map_lookup_elem(&xw_rules, &rule);
	__u32 verdict = XDP_PASS, flags = 0;
	long ret;

	if (!r || !p)
		return XDP_PASS;
	/* The winner's counters, in its name slot (one rule lookup for both). */
	bump(r->slot, bytes);
	switch (r->action) {
	case XW_ACT_DROP:
		verdict = XDP_DROP;
		break;
	case XW_ACT_RATE_LIMIT:
		if (!rate_conforms(rule, r, p)) {
			verdict = XDP_DROP;
			flags = XW_TRACE_LIMITED;
		}
		break;
	case XW_ACT_REDIRECT:
		/* An empty slot (the target interface went away) drops, fail
		 * closed, and is counted: the low bits of flags are the
		 * verdict bpf_redirect_map returns when the lookup fails. */
		ret = bpf_redirect_map(&xw_redirect, rule, XDP_DROP);
		verdict = (__u32)ret;
		if (ret != XDP_REDIRECT)
			flags = XW_TRACE_REDIRECT_ERR;
		break;
	default:
		break;
	}
	if (flags)
		act_count(r->slot, flags, bytes);
	return (int)(verdict | flags << 16);
}

#endif /* XDPWALL_ACTIONS_H */
