/* Where a Geneve packet from the substrate goes: the decision of transit_xdp.
 *
 * transit_xdp.c parses the packet (outer headers, Geneve, options, the inner IPv4 or ARP
 * addresses) and carries out the verdict; this file only looks at the maps, as
 * lib/agent_path.h does for the agent programs. By the inner destination in the VNI:
 *   1. an ARP request for a known endpoint: answer it (XA_ARP_REPLY), the option naming the
 *      endpoint's host so that the asker learns the direct path; any other ARP is delivered
 *      only to a local endpoint (an ARP reply), else dropped (drop_arp_unknown);
 *   2. an endpoint on this host: decapsulate to its veth (XA_DECAP);
 *   3. an endpoint on another host (this host bounces its subnet): on to that host (tx_bounce);
 *   4. unknown, in a subnet this host bounces: dropped (drop_unknown_ep);
 *   5. unknown, this host a divider of the VPC: on to a bouncer of the destination's subnet
 *      (longest prefix, stable hash of src, dst: tx_divide);
 *   6. unknown otherwise: on to one of the VPC's dividers (tx_to_divider).
 */
#ifndef CEN_TRANSIT_PATH_H
#define CEN_TRANSIT_PATH_H

#include <linux/if_ether.h>

#include "maps.h"
#include "counters.h"
#include "helpers.h"

enum cen_xdp_action {
	XA_DROP = 0,
	XA_DECAP,     /* strip the outer headers, inner dst MAC = mac, redirect to ifindex */
	XA_FORWARD,   /* outer headers to host/host_mac, TTL - 1, back out of the substrate */
	XA_ARP_REPLY, /* answer with mac; the source-host option then names host/host_mac */
};

struct cen_xdp_verdict {
	__u32 action;
	__u32 reason; /* XDP_C_* */
	__be32 host;
	__u32 ifindex;
	__u8 mac[6];
	__u8 host_mac[6];
};

static __always_inline int xdp_to_host_v(struct cen_xdp_verdict *v, __be32 host, __u32 reason)
{
	struct cen_substrate *sub = substrate.lookup(&host);
	if (!sub) {
		v->reason = XDP_C_DROP_NO_SUBSTRATE;
		return 0;
	}
	v->action = XA_FORWARD;
	v->reason = reason;
	v->host = host;
	__builtin_memcpy(v->host_mac, sub->mac, ETH_ALEN);
	return 0;
}

/* dst: inner IPv4 daddr or ARP target; is_arp/arp_request: the inner frame is ARP (a request). */
static __always_inline int xdp_decide(const struct cen_config *cfg, __u32 vni, __be32 dst, int is_arp,
				      int arp_request, __u32 hash, struct cen_xdp_verdict *v)
{
	v->action = XA_DROP;
	struct cen_ep_key key = {.vni = vni, .ip = dst};
	struct cen_endpoint *ep = endpoints.lookup(&key);

	if (is_arp) {
		if (ep && arp_request) {
			v->action = XA_ARP_REPLY;
			v->reason = XDP_C_TX_ARP_REPLY;
			__builtin_memcpy(v->mac, ep->mac, ETH_ALEN);
			if (ep->host_ip) {
				v->host = ep->host_ip;
				__builtin_memcpy(v->host_mac, ep->host_mac, ETH_ALEN);
			} else { /* a gateway: this host answers for it */
				v->host = cfg->host_ip;
				__builtin_memcpy(v->host_mac, cfg->host_mac, ETH_ALEN);
			}
			return 0;
		}
		if (!ep || !(ep->flags & CEN_EP_F_LOCAL)) {
			v->reason = XDP_C_DROP_ARP_UNKNOWN;
			return 0;
		}
		/* An ARP reply for a local endpoint is delivered like any frame (below). */
	}

	if (ep) {
		if (ep->flags & CEN_EP_F_LOCAL) {
			v->action = XA_DECAP;
			v->reason = XDP_C_REDIRECT_DECAP;
			v->ifindex = ep->ifindex;
			__builtin_memcpy(v->mac, ep->mac, ETH_ALEN);
			return 0;
		}
		if (ep->host_ip == 0) {
			v->reason = XDP_C_DROP_NO_ROUTE;
			return 0;
		}
		if (ep->host_ip == cfg->host_ip) {
			v->reason = XDP_C_DROP_UNKNOWN_EP;
			return 0;
		}
		v->action = XA_FORWARD;
		v->reason = XDP_C_TX_BOUNCE;
		v->host = ep->host_ip;
		__builtin_memcpy(v->host_mac, ep->host_mac, ETH_ALEN);
		return 0;
	}

	struct cen_net_key nk = {.prefixlen = 64, .vni = vni, .ip = dst};
	struct cen_net *net = nets.lookup(&nk);
	if (net && (net->flags & CEN_NET_F_BOUNCER)) {
		v->reason = XDP_C_DROP_UNKNOWN_EP;
		return 0;
	}
	struct cen_vpc *vpc = vpcs.lookup(&vni);
	if (!vpc) {
		v->reason = XDP_C_DROP_NO_ROUTE;
		return 0;
	}
	if (vpc->flags & CEN_VPC_F_DIVIDER) {
		if (!net || net->nbouncers == 0 || net->nbouncers > CEN_MAX_BOUNCERS) {
			v->reason = XDP_C_DROP_NO_ROUTE;
			return 0;
		}
		__be32 b = net->bouncers[cen_pick(hash, net->nbouncers)];
		if (b == cfg->host_ip) {
			v->reason = XDP_C_DROP_UNKNOWN_EP;
			return 0;
		}
		return xdp_to_host_v(v, b, XDP_C_TX_DIVIDE);
	}
	if (vpc->ndividers == 0 || vpc->ndividers > CEN_MAX_DIVIDERS) {
		v->reason = XDP_C_DROP_NO_ROUTE;
		return 0;
	}
	__be32 d = vpc->dividers[cen_pick(hash, vpc->ndividers)];
	if (d == cfg->host_ip) {
		v->reason = XDP_C_DROP_NO_ROUTE;
		return 0;
	}
	return xdp_to_host_v(v, d, XDP_C_TX_TO_DIVIDER);
}

#endif
