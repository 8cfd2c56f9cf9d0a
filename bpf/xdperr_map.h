/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * The XDP error counters (BPF only). The map lives in the main xdpwall
 * object, so it lives as long as the attached program and `stats`/`top` find
 * it by the program's map ids; bpf/xdperr.bpf.c declares the same map and
 * user space makes it reuse this one's fd (the definitions must stay equal).
 */
#ifndef XDPWALL_XDPERR_MAP_H
#define XDPWALL_XDPERR_MAP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, XW_XERR_MAX);
} xw_xdp_errors SEC(".maps");

#endif /* XDPWALL_XDPERR_MAP_H */
