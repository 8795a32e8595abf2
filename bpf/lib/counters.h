/* Per-program counters, one per verdict/reason.
 *
 * Each name is VERDICT_REASON (pass, redirect, tx, drop, info): the daemon parses these enums
 * from this file to name the counters, so adding a reason is one line here. Both maps are
 * per-CPU arrays (no atomics on the fast path), pinned like every other map.
 */
#ifndef CEN_COUNTERS_H
#define CEN_COUNTERS_H

#include "maps.h"

enum cen_xdp_counter {
	XDP_C_PASS_NON_GENEVE = 0, /* not UDP/6081: the host kernel's business */
	XDP_C_PASS_FRAGMENT,       /* IP fragment: left to the kernel */
	XDP_C_REDIRECT_DECAP,      /* decapsulated to a local endpoint's veth */
	XDP_C_TX_BOUNCE,           /* bouncer: sent on to the endpoint's host */
	XDP_C_TX_DIVIDE,           /* divider: sent on to a bouncer of the target subnet */
	XDP_C_TX_TO_DIVIDER,       /* bouncer: destination outside its subnet, sent to a divider */
	XDP_C_TX_ARP_REPLY,        /* answered ARP for a known endpoint */
	XDP_C_DROP_NOT_FOR_HOST,   /* Geneve whose outer destination is not this host */
	XDP_C_DROP_TTL,            /* outer TTL 0, or would reach 0 when forwarded */
	XDP_C_DROP_BAD_GENEVE,     /* version != 0, OAM, protocol not Ethernet */
	XDP_C_DROP_CRITICAL_OPT,   /* unknown option with the critical bit */
	XDP_C_DROP_MALFORMED,      /* truncated headers or options */
	XDP_C_DROP_BAD_INNER,      /* inner frame neither IPv4 nor ARP */
	XDP_C_DROP_UNKNOWN_EP,     /* destination in a subnet we bounce, but no such endpoint */
	XDP_C_DROP_ARP_UNKNOWN,    /* ARP for an address we do not know */
	XDP_C_DROP_NO_ROUTE,       /* no endpoint, no subnet, no divider for the destination */
	XDP_C_DROP_NO_SUBSTRATE,   /* next hop host has no substrate entry */
	XDP_C_DROP_NO_CONFIG,      /* daemon has not configured this host yet */
	XDP_C_DROP_ADJUST,         /* bpf_xdp_adjust_head failed */
	XDP_C_INFO_LEARN,          /* direct path learned/refreshed from the source-host option */
	XDP_C_PASS_GSO,            /* longer than the MTU (a GSO packet, generic mode): for transit_decap_tc */
	XDP_C_REDIRECT_DECAP_GSO,  /* transit_decap_tc: GSO packet decapsulated to a local endpoint */
	XDP_C_DROP_GSO_NOT_LOCAL,  /* transit_decap_tc: GSO packet for a non-local endpoint */
	XDP_C_MAX
};

enum cen_agent_counter {
	AGENT_C_PASS_NO_MD = 0,     /* veth without agent metadata */
	AGENT_C_REDIRECT_LOCAL,     /* same-host endpoint: straight to its veth */
	AGENT_C_REDIRECT_BOUNCER,   /* encapsulated to a bouncer of the source subnet */
	AGENT_C_REDIRECT_DIRECT,    /* encapsulated to the destination's host (programmed) */
	AGENT_C_REDIRECT_LEARNED,   /* encapsulated to the destination's host (learned) */
	AGENT_C_REDIRECT_DIVIDER,   /* this host bounces the subnet: encapsulated to a divider */
	AGENT_C_TX_ARP_REPLY,       /* ARP for a known endpoint answered on the spot */
	AGENT_C_DROP_SPOOF,         /* source address is not the endpoint's */
	AGENT_C_DROP_UNSUPPORTED,   /* neither IPv4 nor ARP (or gratuitous ARP) */
	AGENT_C_DROP_NO_ROUTE,      /* no subnet/bouncer/divider to send to */
	AGENT_C_DROP_NO_SUBSTRATE,  /* next hop host has no substrate entry */
	AGENT_C_DROP_NO_CONFIG,     /* daemon has not configured this host yet */
	AGENT_C_DROP_MALFORMED,     /* truncated headers */
	AGENT_C_DROP_ADJUST,        /* bpf_xdp_adjust_head failed */
	AGENT_C_MAX
};

BPF_TABLE_PINNED("percpu_array", u32, u64, xdp_counters, XDP_C_MAX, CEN_PIN(xdp_counters));
BPF_TABLE_PINNED("percpu_array", u32, u64, agent_counters, AGENT_C_MAX, CEN_PIN(agent_counters));

static __always_inline int xdp_count(__u32 reason, int verdict)
{
	u64 *v = xdp_counters.lookup(&reason);
	if (v)
		*v += 1;
	return verdict;
}

static __always_inline int agent_count(__u32 reason, int verdict)
{
	u64 *v = agent_counters.lookup(&reason);
	if (v)
		*v += 1;
	return verdict;
}

#endif
