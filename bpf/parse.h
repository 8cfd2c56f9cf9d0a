/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Header parsing for the XDP program (BPF only). One contract: each helper
 * bounds-checks, advances the cursor, fills `struct pkt`, and returns 0 or a
 * negative malformed reason (-(reason + 1)). Depth limits are named below.
 */
#ifndef XDPWALL_PARSE_H
#define XDPWALL_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi.h"

#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXT 8

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

#define ERR(reason) (-((int)(reason) + 1))

/* What classification needs from a packet; indices of the class arrays. */
struct pkt {
	__u32 family;
	__u32 proto;
	__u32 sport;
	__u32 dport;
	__u32 tcpflags;
	__u32 icmp;
	__u32 vlan_outer;
	__u32 vlan_inner;
	__u32 frag;
	__u32 gen; /* address-table generation (0/1), set by classify() */
	__u8 saddr[16];
	__u8 daddr[16];
	__u64 key; /* the small fields side by side, for direct checks (XW_KEY_*) */
};

/* The packet's key from its fields (each within its width: XW_*_NONE is
 * the largest value of each). */
static __always_inline __u64 pkt_key(const struct pkt *p)
{
	return (__u64)p->proto << XW_KEY_PROTO | (__u64)p->tcpflags << XW_KEY_TCPF |
	       (__u64)p->icmp << XW_KEY_ICMP | (__u64)p->family << XW_KEY_FAMILY |
	       (__u64)(p->frag ^ (p->frag >> 1)) << XW_KEY_FRAG;
}

/* The classifier reads an IPv4 address with one 4-byte load. */
_Static_assert(__builtin_offsetof(struct pkt, saddr) % 4 == 0, "saddr is 4-byte aligned");
_Static_assert(__builtin_offsetof(struct pkt, daddr) % 4 == 0, "daddr is 4-byte aligned");

struct cursor {
	void *start; /* the frame's first byte (ctx->data) */
	void *pos;
	void *end;
};

/* Bounds a header's offset for the verifier; above anything the parser
 * reaches (Ethernet, two tags, IPv6 and MAX_IPV6_EXT headers of at most
 * 2,048 bytes each: 16,446 bytes), so masking never moves the cursor. */
#define XW_HDR_OFF_MASK 0x7fff
#define XW_HDR_OFF_MAX (14 + 4 * MAX_VLAN_TAGS + 40 + MAX_IPV6_EXT * 2048)
_Static_assert(XW_HDR_OFF_MAX <= XW_HDR_OFF_MASK, "the mask would move the cursor");
/* The verifier's packet offsets stop at 0xffff: room for one more extension
 * header and an L4 header after the largest masked offset. */
_Static_assert(XW_HDR_OFF_MASK + 2048 + 60 < 0xffff, "packet offsets past the verifier's");

/*
 * The cursor at the same place, as a fresh pointer: start + (pos - start).
 * A difference of two packet pointers is an unknown number to the verifier,
 * so it forgets how the parser got here: the ways through the VLAN tags,
 * and through the IPv6 extension headers before each one, are checked from
 * here on once, not once per way (the verifier processed about 4 to 12
 * times fewer instructions for small rule sets). The cost at run time is a
 * subtraction, a mask and an addition. The verifier allows a difference of
 * packet pointers only to a loader with CAP_PERFMON, which xdpwall needs
 * anyway (README).
 *
 * Not before the L4 header as well: that made no difference to the
 * verifier, and on one rule set it made this kernel's x86 JIT fail to
 * converge ("bpf_jit: fatal error", the load refused with ENOTSUPP).
 */
static __always_inline void rejoin(struct cursor *c)
{
	void *pos = c->pos;
	__u64 off;

	/* Hide pos from clang: where it knows the offset (no VLAN tag: 14) it
	 * would fold it back into a constant the verifier tracks. */
	asm volatile("" : "+r"(pos));
	off = ((__u64)pos - (__u64)c->start) & XW_HDR_OFF_MASK;
	c->pos = c->start + off;
}

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct sctp_common {
	__be16 source;
	__be16 dest;
	__be32 vtag;
	__be32 checksum;
};

/* The EtherType with one load: struct ethhdr is packed, so clang reads
 * h_proto a byte at a time (three instructions more); frames start
 * 2-byte aligned, and x86 and arm64 load unaligned anyway. */
static __always_inline __be16 eth_type(const struct ethhdr *eth)
{
	return *(const __be16 *)((const __u8 *)eth + __builtin_offsetof(struct ethhdr, h_proto));
}

static __always_inline int parse_eth(struct cursor *c, struct pkt *p, __u16 *type)
{
	struct ethhdr *eth = c->pos;
	__u16 t;

	if ((void *)(eth + 1) > c->end)
		return ERR(XW_MAL_TRUNCATED);
	c->pos = eth + 1;
	t = bpf_ntohs(eth_type(eth));

	/* Up to two tags (802.1Q, 802.1ad); a third one we do not follow. */
#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_hdr *v = c->pos;

		if (t != ETH_P_8021Q && t != ETH_P_8021AD)
			break;
		if ((void *)(v + 1) > c->end)
			return ERR(XW_MAL_TRUNCATED);
		if (i == 0)
			p->vlan_outer = bpf_ntohs(v->tci) & 0x0fff;
		else
			p->vlan_inner = bpf_ntohs(v->tci) & 0x0fff;
		t = bpf_ntohs(v->proto);
		c->pos = v + 1;
	}
	if (t == ETH_P_8021Q || t == ETH_P_8021AD)
		return ERR(XW_MAL_VLAN_TOO_DEEP);
	*type = t;
	return 0;
}

static __always_inline int parse_ipv4(struct cursor *c, struct pkt *p)
{
	struct iphdr *ip = c->pos;
	__u32 hlen;
	__u16 frag;

	if ((void *)(ip + 1) > c->end)
		return ERR(XW_MAL_TRUNCATED);
	if (ip->version != 4 || ip->ihl < 5)
		return ERR(XW_MAL_BAD_HEADER);
	hlen = (ip->ihl * 4) & 0x3c;
	if (c->pos + hlen > c->end)
		return ERR(XW_MAL_TRUNCATED);
	c->pos += hlen;

	p->family = XW_FAMILY_IPV4;
	p->proto = ip->protocol;
	__builtin_memcpy(p->saddr, &ip->saddr, 4);
	__builtin_memcpy(p->daddr, &ip->daddr, 4);

	frag = bpf_ntohs(ip->frag_off);
	if (frag & 0x1fff)
		p->frag = XW_FRAG_NON_FIRST;
	else if (frag & 0x2000)
		p->frag = XW_FRAG_FIRST;
	return 0;
}

static __always_inline int is_ipv6_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH;
}

/* Walks the extension headers; leaves the cursor at the upper layer. */
static __always_inline int parse_ipv6_ext(struct cursor *c, struct pkt *p, __u8 *nexthdr)
{
	__u8 nh = *nexthdr;

#pragma unroll
	for (int i = 0; i < MAX_IPV6_EXT; i++) {
		__u8 *h;
		__u32 len;

		if (!is_ipv6_ext(nh))
			goto done;
		rejoin(c);
		h = c->pos;
		if ((void *)(h + 8) > c->end)
			return ERR(XW_MAL_TRUNCATED);
		if (nh == IPPROTO_FRAGMENT) {
			__u16 off = bpf_ntohs(*(__be16 *)(h + 2));

			if (off & 0xfff8)
				p->frag = XW_FRAG_NON_FIRST;
			else if (off & 1)
				p->frag = XW_FRAG_FIRST;
			len = 8;
		} else if (nh == IPPROTO_AH) {
			len = ((__u32)h[1] + 2) * 4;
		} else {
			len = ((__u32)h[1] + 1) * 8;
		}
		nh = h[0];
		if (c->pos + len > c->end)
			return ERR(XW_MAL_TRUNCATED);
		c->pos += len;
		/* A non-first fragment has no upper-layer header to read. */
		if (p->frag == XW_FRAG_NON_FIRST)
			goto done;
	}
	if (is_ipv6_ext(nh) && p->frag != XW_FRAG_NON_FIRST)
		return ERR(XW_MAL_EXT_TOO_DEEP);
done:
	*nexthdr = nh;
	return 0;
}

static __always_inline int parse_ipv6(struct cursor *c, struct pkt *p)
{
	struct ipv6hdr *ip6 = c->pos;
	__u8 nh;
	int err;

	if ((void *)(ip6 + 1) > c->end)
		return ERR(XW_MAL_TRUNCATED);
	if (ip6->version != 6)
		return ERR(XW_MAL_BAD_HEADER);
	c->pos = ip6 + 1;
	p->family = XW_FAMILY_IPV6;
	__builtin_memcpy(p->saddr, &ip6->saddr, 16);
	__builtin_memcpy(p->daddr, &ip6->daddr, 16);

	nh = ip6->nexthdr;
	err = parse_ipv6_ext(c, p, &nh);
	if (err)
		return err;
	p->proto = nh;
	return 0;
}

static __always_inline int parse_l4(struct cursor *c, struct pkt *p)
{
	if (p->frag == XW_FRAG_NON_FIRST)
		return 0;

	switch (p->proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = c->pos;

		if ((void *)(th + 1) > c->end)
			return ERR(XW_MAL_TRUNCATED);
		if (th->doff < 5)
			return ERR(XW_MAL_BAD_HEADER);
		p->sport = bpf_ntohs(th->source);
		p->dport = bpf_ntohs(th->dest);
		p->tcpflags = ((__u8 *)th)[13];
		return 0;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = c->pos;

		if ((void *)(uh + 1) > c->end)
			return ERR(XW_MAL_TRUNCATED);
		p->sport = bpf_ntohs(uh->source);
		p->dport = bpf_ntohs(uh->dest);
		return 0;
	}
	case IPPROTO_SCTP: {
		struct sctp_common *sh = c->pos;

		if ((void *)(sh + 1) > c->end)
			return ERR(XW_MAL_TRUNCATED);
		p->sport = bpf_ntohs(sh->source);
		p->dport = bpf_ntohs(sh->dest);
		return 0;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		__u8 *ic = c->pos;
		__u32 v6 = p->family == XW_FAMILY_IPV6;

		/* ICMP conditions follow the family: ICMP in v4, ICMPv6 in v6. */
		if ((p->proto == IPPROTO_ICMP) == v6)
			return 0;
		if ((void *)(ic + 4) > c->end)
			return ERR(XW_MAL_TRUNCATED);
		p->icmp = (v6 << 16) | ((__u32)ic[0] << 8) | ic[1];
		return 0;
	}
	}
	return 0;
}

/*
 * The common frame, untagged IPv4 without options carrying TCP or UDP, not
 * a fragment: one bounds check (two for TCP), straight-line loads, and no
 * field written twice. 1 if it parsed the frame, filling struct pkt exactly
 * as parse_packet() would; 0 to leave the frame to parse_packet(), which
 * also judges what is malformed. ~5 ns a packet less for a small rule set.
 */
static __always_inline int parse_fast(struct cursor *c, struct pkt *p)
{
	struct ethhdr *eth = c->start;
	struct iphdr *ip = (void *)(eth + 1);
	__u8 *l4 = (void *)(ip + 1);
	__u32 tcpflags;
	__u8 proto;

	/* UDP's 8 bytes; TCP's 20 are checked below. */
	if ((void *)(l4 + 8) > c->end)
		return 0;
	/* Version 4 and 5 words of header (no options); neither MF nor an
	 * offset. */
	if (eth_type(eth) != bpf_htons(ETH_P_IP) || *(__u8 *)ip != 0x45 ||
	    (ip->frag_off & bpf_htons(0x3fff)))
		return 0;
	proto = ip->protocol;
	if (proto == IPPROTO_TCP) {
		if ((void *)(l4 + 20) > c->end || (l4[12] >> 4) < 5)
			return 0;
		tcpflags = l4[13];
	} else if (proto == IPPROTO_UDP) {
		tcpflags = XW_TCPF_NONE;
	} else {
		return 0;
	}
	p->tcpflags = tcpflags;
	/* pkt_key() with the fields this path knows: two values to place. */
	p->key = (__u64)proto << XW_KEY_PROTO | (__u64)tcpflags << XW_KEY_TCPF |
		 (__u64)XW_ICMP_NONE << XW_KEY_ICMP | (__u64)XW_FAMILY_IPV4 << XW_KEY_FAMILY |
		 (__u64)(XW_FRAG_NONE ^ (XW_FRAG_NONE >> 1)) << XW_KEY_FRAG;
	p->family = XW_FAMILY_IPV4;
	p->proto = proto;
	p->sport = bpf_ntohs(*(__be16 *)l4);
	p->dport = bpf_ntohs(*(__be16 *)(l4 + 2));
	p->icmp = XW_ICMP_NONE;
	p->vlan_outer = XW_VLAN_NONE;
	p->vlan_inner = XW_VLAN_NONE;
	p->frag = XW_FRAG_NONE;
	__builtin_memcpy(p->saddr, &ip->saddr, sizeof(ip->saddr));
	__builtin_memcpy(p->daddr, &ip->daddr, sizeof(ip->daddr));
	return 1;
}

/* Parses as far as classification needs; 0 or ERR(reason). */
static __always_inline int parse_packet(struct cursor *c, struct pkt *p)
{
	__u16 type = 0;
	int err;

	p->family = XW_FAMILY_NONE;
	p->proto = XW_PROTO_NONE;
	p->sport = XW_PORT_NONE;
	p->dport = XW_PORT_NONE;
	p->tcpflags = XW_TCPF_NONE;
	p->icmp = XW_ICMP_NONE;
	p->vlan_outer = XW_VLAN_NONE;
	p->vlan_inner = XW_VLAN_NONE;
	p->frag = XW_FRAG_NONE;

	err = parse_eth(c, p, &type);
	if (err)
		return err;
	rejoin(c);
	if (type == ETH_P_IP)
		err = parse_ipv4(c, p);
	else if (type == ETH_P_IPV6)
		err = parse_ipv6(c, p);
	else {
		/* Not IP: not malformed, classified on L2 fields only. */
		p->frag = XW_FRAG_NOT_IP;
		p->key = pkt_key(p);
		return 0;
	}
	if (err)
		return err;
	err = parse_l4(c, p);
	p->key = pkt_key(p);
	return err;
}

#endif /* XDPWALL_PARSE_H */
