// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * xdpwall gen: the traffic generator's XDP program, run by
 * BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES. For every frame it
 * takes the next number of a per-CPU sequence, rewrites the source
 * address and port from it (checksums updated incrementally) and returns
 * XDP_TX, which the kernel turns into a transmit on the test run's
 * ingress interface. A run is held back (XDP_DROP, nothing sent, counted
 * as held) when the CPU has sent its limit or is ahead of its pacing, so
 * one long test run can send an exact count at a steady rate.
 *
 * The same object carries two receivers for benchmarks and tests: one
 * that counts and drops every frame (the ceiling of any XDP filter), one
 * that counts and passes every frame (so a veth without a filter of its
 * own still runs native XDP, which frames sent by XDP need).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "gen_abi.h"

/* Offsets inside the L4 header (same for UDP and TCP up to the port). */
#define SPORT_OFF 0
#define UDP_CSUM_OFF 6
#define TCP_CSUM_OFF 16
/*
 * Pacing lets a CPU that fell behind (its thread preempted on a busy
 * machine) catch up by at most this much, sending that backlog at full speed.
 */
#define CATCH_UP_NS 20000000ULL

const volatile struct gen_cfg cfg = {
	.src_count = 1,
	.src_step = 1,
	.sport_count = 1,
	.cpus = 1,
	.action = XDP_TX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_counter);
} gen_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_counter);
} rx_count SEC(".maps");

/* Folds a 32-bit one's-complement sum into 16 bits. */
static __always_inline __u16 fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/*
 * RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for a 32-bit field seen as two
 * 16-bit words. Byte order does not matter as long as all values are
 * taken as they lie in the packet.
 */
static __always_inline __u16 csum_replace4(__u16 check, __u32 from, __u32 to)
{
	__u32 s = (__u16)~check;

	s += (~from & 0xffff) + (~from >> 16);
	s += (to & 0xffff) + (to >> 16);
	return (__u16)~fold(s);
}

static __always_inline __u16 csum_replace2(__u16 check, __u16 from, __u16 to)
{
	__u32 s = (__u16)~check;

	s += (__u16)~from;
	s += to;
	return (__u16)~fold(s);
}

/* The next frame's source address (host order) and port, from the sequence. */
static __always_inline void next_tuple(struct gen_counter *c, __u32 *addr, __u16 *port)
{
	__u64 idx = c->seq * cfg.cpus + bpf_get_smp_processor_id();
	__u32 n_src = cfg.src_count ? cfg.src_count : 1;
	__u32 n_port = cfg.sport_count ? cfg.sport_count : 1;

	c->seq++;
	*addr = cfg.src_base + (__u32)(idx % n_src) * cfg.src_step;
	*port = (__u16)(cfg.sport_base + (idx / n_src) % n_port);
}

/* Writes the new source port and fixes the L4 checksum for port and address. */
static __always_inline int rewrite_l4(void *l4, void *end, __u32 old_addr, __u32 new_addr,
				      __u16 port)
{
	__u16 *sport = l4 + SPORT_OFF;
	__u16 *check;
	__u16 new_port = bpf_htons(port), c;

	if (cfg.tcp) {
		if (l4 + TCP_CSUM_OFF + 2 > end)
			return -1;
		check = l4 + TCP_CSUM_OFF;
	} else {
		if (l4 + UDP_CSUM_OFF + 2 > end)
			return -1;
		check = l4 + UDP_CSUM_OFF;
	}
	c = csum_replace4(*check, old_addr, new_addr);
	c = csum_replace2(c, *sport, new_port);
	/* A UDP checksum of 0 means "none" (IPv4) or is invalid (IPv6). */
	if (!cfg.tcp && c == 0)
		c = 0xffff;
	*check = c;
	*sport = new_port;
	return 0;
}

static __always_inline int rewrite_v4(void *data, void *end, __u32 addr, __u16 port)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	void *l4 = data + cfg.l4_off;
	__u32 old, new = bpf_htonl(addr);

	if ((void *)(ip + 1) > end)
		return -1;
	old = ip->saddr;
	ip->saddr = new;
	ip->check = csum_replace4(ip->check, old, new);
	return rewrite_l4(l4, end, old, new, port);
}

static __always_inline int rewrite_v6(void *data, void *end, __u32 addr, __u16 port)
{
	struct ipv6hdr *ip = data + sizeof(struct ethhdr);
	void *l4 = data + cfg.l4_off;
	__u32 old, new = bpf_htonl(addr);

	if ((void *)(ip + 1) > end)
		return -1;
	/* Only the low 32 bits of the source vary. */
	old = ip->saddr.in6_u.u6_addr32[3];
	ip->saddr.in6_u.u6_addr32[3] = new;
	return rewrite_l4(l4, end, old, new, port);
}

static __always_inline void count(void *map, struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct gen_counter *c = bpf_map_lookup_elem(map, &zero);

	if (c) {
		c->packets++;
		c->bytes += ctx->data_end - ctx->data;
	}
}

/* Whether this CPU may send now: under its limit and not ahead of its pace. */
static __always_inline int may_send(struct gen_counter *c)
{
	__u64 now;

	if (c->limit && c->packets >= c->limit)
		return 0;
	if (!c->gap_ns)
		return 1;
	now = bpf_ktime_get_ns();
	if (now < c->next_ns)
		return 0;
	if (c->next_ns + CATCH_UP_NS < now)
		c->next_ns = now;
	c->next_ns += c->gap_ns;
	return 1;
}

SEC("xdp")
int xw_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0, addr;
	__u16 port;
	struct gen_counter *c = bpf_map_lookup_elem(&gen_count, &zero);
	int err;

	if (!c)
		return XDP_ABORTED;
	if (!may_send(c)) {
		c->held++;
		return XDP_DROP;
	}
	next_tuple(c, &addr, &port);
	err = cfg.ipv6 ? rewrite_v6(data, end, addr, port) : rewrite_v4(data, end, addr, port);
	/* A template too short for its headers: user space never builds one. */
	if (err)
		return XDP_ABORTED;
	c->packets++;
	c->bytes += end - data;
	return cfg.action;
}

SEC("xdp")
int xw_rx_drop(struct xdp_md *ctx)
{
	count(&rx_count, ctx);
	return XDP_DROP;
}

SEC("xdp")
int xw_rx_pass(struct xdp_md *ctx)
{
	count(&rx_count, ctx);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
