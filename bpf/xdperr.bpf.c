// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * XDP errors the kernel reports for xdpwall's program, counted like
 * xdp-monitor does: the xdp:xdp_exception tracepoint (XDP_ABORTED, an
 * invalid action, a failed XDP_TX) and xdp:xdp_redirect_err (a redirect that
 * did not happen). The tracepoints fire for every interface of the machine;
 * these programs count only events of our program on our interface (both
 * set at load) into xw_xdp_errors, a map of the main xdpwall object that
 * user space hands to this object (bpf_map__reuse_fd).
 *
 * tp_btf (BTF-typed raw tracepoints) needs no tracefs and reads the
 * arguments directly; the kernel types below are cut down to the fields we
 * read and relocated by CO-RE (preserve_access_index).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "abi.h"
#include "xdperr_map.h"

struct net_device {
	int ifindex;
} __attribute__((preserve_access_index));

struct bpf_prog_aux {
	__u32 id;
} __attribute__((preserve_access_index));

struct bpf_prog {
	struct bpf_prog_aux *aux;
} __attribute__((preserve_access_index));

/* Set at load: whose errors to count. */
const volatile __u32 target_ifindex = 0;
const volatile __u32 target_prog_id = 0;

static __always_inline int ours(const struct net_device *dev, const struct bpf_prog *prog)
{
	if (!dev || !prog)
		return 0;
	return dev->ifindex == (int)target_ifindex && prog->aux->id == target_prog_id;
}

static __always_inline void bump(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&xw_xdp_errors, &slot);

	if (v)
		(*v)++;
}

SEC("tp_btf/xdp_exception")
int BPF_PROG(xw_xdp_exception, const struct net_device *dev, const struct bpf_prog *xdp, __u32 act)
{
	if (ours(dev, xdp))
		bump(act <= XDP_REDIRECT ? act : XW_XERR_EXC_INVALID);
	return 0;
}

/* A plain bpf_redirect() reports map type UNSPEC; devmap/cpumap/xskmap
 * redirects report their map. */
SEC("tp_btf/xdp_redirect_err")
int BPF_PROG(xw_xdp_redirect_err, const struct net_device *dev, const struct bpf_prog *xdp,
	     const void *tgt, int err, enum bpf_map_type map_type, __u32 map_id, __u32 index)
{
	if (ours(dev, xdp))
		bump(map_type == BPF_MAP_TYPE_UNSPEC ? XW_XERR_REDIRECT : XW_XERR_REDIRECT_MAP);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
