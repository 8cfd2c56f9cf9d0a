/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Events (BPF only): records for rules with `log`/`sample`, over the ring
 * buffer (one ring for all CPUs) or the perf buffer (one per CPU). Every
 * record handed over and every one that did not fit is counted per CPU, so
 * loss is never silent.
 */
#ifndef XDPWALL_EVENTS_H
#define XDPWALL_EVENTS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"
#include "maps.h"

static __always_inline void evstat_add(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&xw_evstats, &idx);

	if (v)
		(*v)++;
}

/* Ring-buffer notification flags for the record about to be submitted;
 * `now` is its timestamp (bpf_ktime_get_ns), taken once per record. */
static __always_inline __u64 wake_flags(__u64 now)
{
	__u32 zero = 0;
	struct xw_wake *w;

	if (wakeup_mode == XW_WAKE_EVERY) {
		evstat_add(XW_EVS_WAKEUPS);
		return BPF_RB_FORCE_WAKEUP;
	}
	w = bpf_map_lookup_elem(&xw_wake, &zero);
	if (!w)
		return 0;
	if (wakeup_mode == XW_WAKE_BATCH) {
		if (++w->pending < wakeup_batch)
			return BPF_RB_NO_WAKEUP;
		w->pending = 0;
		evstat_add(XW_EVS_WAKEUPS);
		return BPF_RB_FORCE_WAKEUP;
	}
	/* Adaptive: wake when the last wake-up from this CPU is older than the
	 * interval — so a lone event on a quiet link is delivered at once and
	 * a burst costs one wake-up per interval, not one per record — or,
	 * sooner (but at most 8 times per interval), when the consumer is a
	 * watermark behind and the ring could fill before the timer. A consumer
	 * that is behind is usually awake already: waking it on every record
	 * would only cost the producer. */
	if (now - w->last_ns >= wakeup_interval_ns ||
	    (now - w->last_ns >= wakeup_interval_ns / 8 &&
	     bpf_ringbuf_query(&xw_ring, BPF_RB_AVAIL_DATA) >= wakeup_watermark)) {
		w->last_ns = now;
		evstat_add(XW_EVS_WAKEUPS);
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

/* Ring-buffer flags: the policy of [events] for rule events; the kernel's
 * own (wake only a consumer that had caught up) for the capture tap. */
static __always_inline __u64 ring_flags(int tap, __u64 now)
{
	return tap ? 0 : wake_flags(now);
}

/* Fills and submits a reserved record of `room` packet bytes (a constant
 * per call site): the header, then `cap` packet bytes copied straight from
 * the frame into the ring — one copy, where bpf_ringbuf_output would need
 * them in a bounce buffer first. */
static __always_inline long ring_fill(struct xdp_md *ctx, struct xw_event *r,
				      const struct xw_event *ev, __u32 cap, __u32 room, int tap)
{
	__u64 n = cap, now;

	*r = *ev;
	/* Stamped right after the reservation, before the copy: records reach
	 * the consumer in reservation order, and reservations are serialised,
	 * so the nearer the stamp to its reservation, the fewer records carry
	 * an older stamp than one delivered before them. After a 1.5 KB copy,
	 * whose time varies, two CPUs' records crossed more often. One clock
	 * read serves the wake-up policy too. */
	now = bpf_ktime_get_ns();
	r->ts_ns = now;
	/* The helper needs 1..room, proven on this very register. Barriers
	 * keep clang from dropping the first check (it knows cap != 0) or fusing
	 * both into one range check on n - 1 the verifier cannot map back. */
	asm volatile("" : "+r"(n));
	if (n < 1)
		goto fail;
	asm volatile("" : "+r"(n));
	if (n > room)
		goto fail;
	/* bpf_xdp_load_bytes reads across fragments of a multi-buffer frame. */
	if (bpf_xdp_load_bytes(ctx, 0, (void *)(r + 1), n) < 0)
		goto fail;
	bpf_ringbuf_submit(r, ring_flags(tap, now));
	return 0;
fail:
	/* The tap keeps the kernel's wake-up: records other CPUs committed
	 * behind this one must still wake its reader. */
	bpf_ringbuf_discard(r, tap ? 0 : BPF_RB_NO_WAKEUP);
	return -1;
}

/* One size class: records with up to N packet bytes reserve N. */
#define RING_CLASS(N)                                                                  \
	if (cap <= (N)) {                                                              \
		r = bpf_ringbuf_reserve(ring, sizeof(struct xw_event) + (N), 0);       \
		return r ? ring_fill(ctx, r, ev, cap, (N), tap) : -1;                  \
	}

/* Not inlined: its seventeen reservation sites are the cold path (a rule
 * that logs, a tap that is on), and inlined at every emit site they made
 * the program 3 KiB longer and a dropped packet at 10,000 rules ~5 ns
 * slower without running. A call costs only the packets that emit. */
static __noinline long ringbuf_emit(struct xdp_md *ctx, void *ring, struct xw_event *ev, int tap)
{
	__u32 cap = ev->cap_len;
	struct xw_event *r;
	__u64 now;

	if (cap == 0) {
		/* Fixed size: reserve and commit in place. */
		r = bpf_ringbuf_reserve(ring, sizeof(*r), 0);
		if (!r)
			return -1;
		*r = *ev;
		now = bpf_ktime_get_ns();
		r->ts_ns = now;
		bpf_ringbuf_submit(r, ring_flags(tap, now));
		return 0;
	}
	/* A reservation's size must be a constant: a record takes its capture
	 * rounded up to a size class (up to twice as much below 64 bytes, at
	 * most half again above; user space mirrors the classes in
	 * abi::RING_CLASSES), and the consumer reads cap_len bytes of it. */
	RING_CLASS(16)
	RING_CLASS(32)
	RING_CLASS(64)
	RING_CLASS(96)
	RING_CLASS(128)
	RING_CLASS(192)
	RING_CLASS(256)
	RING_CLASS(384)
	RING_CLASS(512)
	RING_CLASS(768)
	RING_CLASS(1024)
	RING_CLASS(1536)
	RING_CLASS(2048)
	RING_CLASS(3072)
	RING_CLASS(4096)
	RING_CLASS(6144)
	RING_CLASS(XW_MAX_SNAPLEN)
	return -1;
}

#undef RING_CLASS

/* Emits one event to the rule-event buffers (tap = 0) or the capture tap's;
 * counts it as produced, and as lost if it did not fit. */
static __always_inline void emit(struct xdp_md *ctx, __u32 rule, __u32 verdict, __u32 kind,
				 __u32 snaplen, __u64 wire_len, int tap, __u32 use_perf)
{
	struct xw_event ev = {
		.ifindex = ctx->ingress_ifindex,
		.rx_queue = ctx->rx_queue_index,
		.cpu = bpf_get_smp_processor_id(),
		.rule = rule,
		.verdict = verdict,
		.wire_len = (__u32)wire_len,
		.kind = kind,
	};
	long ret;

	ev.cap_len = wire_len < snaplen ? (__u32)wire_len : snaplen;
	if (ev.cap_len > XW_MAX_SNAPLEN)
		ev.cap_len = XW_MAX_SNAPLEN;
	if (use_perf) {
		ev.ts_ns = bpf_ktime_get_ns();
		/* The kernel appends cap_len packet bytes itself (upper 32 bits
		 * of the flags): no bounce buffer. */
		ret = bpf_perf_event_output(ctx, tap ? (void *)&xw_tap_perf : (void *)&xw_perf,
					    BPF_F_CURRENT_CPU | ((__u64)ev.cap_len << 32), &ev,
					    sizeof(ev));
	} else {
		ret = ringbuf_emit(ctx, tap ? (void *)&xw_tap_ring : (void *)&xw_ring, &ev, tap);
	}
	evstat_add(tap ? XW_EVS_TAP_PRODUCED : XW_EVS_PRODUCED);
	if (ret < 0)
		evstat_add(tap ? XW_EVS_TAP_LOST : XW_EVS_LOST);
}

/* Feeds `xdpwall capture` / `xdpwall top` while their tap is on and its
 * lease has not run out (a killed tapper cannot leave it on for good). */
static __always_inline void maybe_tap(struct xdp_md *ctx, __u32 rule, __u32 verdict,
				      __u64 wire_len)
{
	const struct xw_tap *t = &xw_tap_ctl;

	if (xw_likely(!t->enabled))
		return;
	if ((t->flags & XW_TAP_DROPS) && verdict != XDP_DROP)
		return;
	if (bpf_ktime_get_ns() >= t->expires_ns)
		return;
	emit(ctx, rule, verdict, XW_EV_CAPTURE, t->snaplen, wire_len, 1,
	     t->transport == XW_TRANSPORT_PERFBUF);
}

/* Emits an event for `rule` if it logs or samples and its limits allow. */
static __always_inline void maybe_log(struct xdp_md *ctx, __u32 rule, __u32 verdict,
				      __u64 wire_len)
{
	struct xw_rule *r = bpf_map_lookup_elem(&xw_rules, &rule);
	__u32 kind = XW_EV_LOG;
	__u64 *seen, *last, now, old;

	if (!r || !(r->flags & (XW_RULE_LOG | XW_RULE_SAMPLE)))
		return;
	if (r->flags & XW_RULE_SAMPLE) {
		seen = bpf_map_lookup_elem(&xw_sample_seen, &rule);
		if (!seen || r->sample == 0)
			return;
		if (++(*seen) % r->sample != 0)
			return;
		kind = XW_EV_SAMPLE;
	}
	if (r->every_ns) {
		last = bpf_map_lookup_elem(&xw_last_event, &rule);
		if (!last)
			return;
		now = bpf_ktime_get_ns();
		old = *last;
		if (old && now - old < r->every_ns)
			return;
		/* One CPU wins the interval. */
		if (__sync_val_compare_and_swap(last, old, now) != old)
			return;
	}
	emit(ctx, rule, verdict, kind, r->snaplen, wire_len, 0, transport == XW_TRANSPORT_PERFBUF);
}

#endif /* XDPWALL_EVENTS_H */
