// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * xdpwall's XDP program: parse, classify, count, decide. Every verdict
 * leaves through one exit so counting and tracing happen in one place.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "abi.h"
#include "maps.h"
#include "parse.h"
#include "classify.h"
#include "events.h"
#include "actions.h"

static __always_inline void count_malformed(__u32 reason, __u64 bytes)
{
	struct xw_counter *c = bpf_map_lookup_elem(&xw_malformed, &reason);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

static __always_inline void trace(__u32 rule, __u32 verdict, __u32 malformed, __u32 flags)
{
	__u32 zero = 0;
	struct xw_trace *t = bpf_map_lookup_elem(&xw_trace, &zero);

	if (t) {
		t->rule = rule;
		t->action = verdict;
		t->malformed = malformed;
		t->flags = flags;
	}
}

/* The kernel's xdp_buff and its flags, as far as wire_len() reads them
 * (CO-RE: matched by name against the running kernel's BTF). */
struct xdp_buff___xw {
	__u32 flags;
} __attribute__((preserve_access_index));

enum xdp_buff_flags___xw {
	XDP_FLAGS_HAS_FRAGS = 1,
};

/* Linux >= 6.2 (has_kern_ctx). Weak: on older kernels libbpf leaves the
 * call unresolved, and the verifier drops it with the has_kern_ctx branch. */
extern void *bpf_cast_to_kern_ctx(void *) __ksym __weak;

/*
 * The frame's length, fragments included. bpf_xdp_get_buff_len() is a
 * helper call, ~10 ns a packet here (a call and a return under the CPU's
 * return-thunk mitigation); a linear frame's length is data_end - data,
 * and the kernel's own flags say whether it has fragments
 * (bpf_cast_to_kern_ctx is inlined by the verifier, so no call).
 */
static __always_inline __u64 wire_len(struct xdp_md *ctx)
{
	if (has_kern_ctx) {
		struct xdp_buff___xw *b = bpf_cast_to_kern_ctx(ctx);

		if (xw_likely(!(b->flags & bpf_core_enum_value(enum xdp_buff_flags___xw,
								XDP_FLAGS_HAS_FRAGS))))
			return (__u32)(ctx->data_end - ctx->data);
	}
	/* 32 bits on both ways, so the verifier sees one range and checks the
	 * rest of the program once, not once per way (that doubled load time). */
	return (__u32)bpf_xdp_get_buff_len(ctx);
}

SEC("xdp.frags")
int xdpwall_main(struct xdp_md *ctx)
{
	struct cursor c = {
		.start = (void *)(long)ctx->data,
		.pos = (void *)(long)ctx->data,
		.end = (void *)(long)ctx->data_end,
	};
	/* Not zeroed (200 bytes, ~7 ns a packet): parsing and classify() write
	 * every field before it is read, except the hit count. The verifier
	 * already demands root (CAP_PERFMON) for the packet parser, which also
	 * lets it accept stack it cannot prove written. */
	struct match_ctx m;
	__u64 bytes = wire_len(ctx);
	__u32 rule = XW_NO_RULE, verdict, malformed = 0, flags = 0;
	int err;

	/* Only events read the hits `count` rules leave. */
	if (has_events)
		m.nhits = 0;

	/* Parsed straight into the classifier's context: no copy. */
	err = xw_likely(fast_parse && parse_fast(&c, &m.p)) ? 0 : parse_packet(&c, &m.p);
	if (xw_unlikely(err)) {
		malformed = (__u32)(-err);
		count_malformed((malformed - 1) & (XW_MAL_MAX - 1), bytes);
		verdict = malformed_verdict;
		goto out;
	}

	rule = classify(bytes, &m);
	if (rule == XW_NO_RULE) {
		bump(XW_STAT_DEFAULT, bytes);
		verdict = default_verdict;
	} else if (rule == m.first_rule && m.first_action <= XW_ACT_DROP) {
		/* Found inline, and a plain drop or pass: the class's copy of
		 * the rule's slot and action, no lookup of its record. */
		bump_at(&m.first_slot, bytes);
		verdict = m.first_action == XW_ACT_DROP ? XDP_DROP : XDP_PASS;
	} else {
		int a;

		a = xw_act(rule, &m.p, bytes);
		verdict = a & 0xffff;
		flags = (__u32)a >> 16;
	}
out:
	if (has_events) {
		if (rule != XW_NO_RULE)
			maybe_log(ctx, rule, verdict, bytes);
#pragma unroll
		for (int i = 0; i < XW_MAX_HITS; i++) {
			if (i >= m.nhits)
				break;
			maybe_log(ctx, m.hits[i], verdict, bytes);
		}
	}
	maybe_tap(ctx, rule, verdict, bytes);
	if (trace_enabled)
		trace(rule, verdict, malformed, flags);
	return verdict;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
