/* Where an endpoint's frame goes: the decision shared by transit_agent (XDP) and
 * transit_agent_tc (TC). The callers parse the frame and carry out the verdict; this file only
 * looks at the maps. See transit_agent.c for the order of the rules.
 */
#ifndef CEN_AGENT_PATH_H
#define CEN_AGENT_PATH_H

#include "maps.h"
#include "counters.h"
#include "helpers.h"

enum cen_agent_action {
	AG_DROP = 0,
	AG_ENCAP,     /* to host/mac, Geneve */
	AG_LOCAL,     /* redirect to ifindex, inner dst MAC = mac */
	AG_ARP_REPLY, /* answer the ARP request with mac */
};

struct cen_agent_verdict {
	__u32 action;
	__u32 reason; /* AGENT_C_* */
	__be32 host;
	__u32 ifindex;
	__u8 mac[6];
	__u16 pad;
};

static __always_inline int agent_to_host_v(struct cen_agent_verdict *v, __be32 host, __u32 reason)
{
	struct cen_substrate *sub = substrate.lookup(&host);
	if (!sub) {
		v->reason = AGENT_C_DROP_NO_SUBSTRATE;
		return 0;
	}
	v->action = AG_ENCAP;
	v->reason = reason;
	v->host = host;
	__builtin_memcpy(v->mac, sub->mac, ETH_ALEN);
	return 0;
}

/* is_arp: the frame is ARP (arp_request: an ARP request); src/dst: IPv4 or ARP addresses. */
static __always_inline int agent_decide(const struct cen_agent_md *md, const struct cen_config *cfg, __be32 src,
					__be32 dst, int is_arp, int arp_request, __u32 hash,
					struct cen_agent_verdict *v)
{
	v->action = AG_DROP;
	if (src != md->ip) {
		v->reason = AGENT_C_DROP_SPOOF;
		return 0;
	}
	if (dst == src) {
		v->reason = AGENT_C_DROP_UNSUPPORTED;
		return 0;
	}
	__u32 vni = md->vni;
	struct cen_ep_key key = {.vni = vni, .ip = dst};

	struct cen_endpoint *ep = endpoints.lookup(&key);
	if (ep) {
		if (is_arp) {
			if (!arp_request) {
				v->reason = AGENT_C_DROP_UNSUPPORTED;
				return 0;
			}
			v->action = AG_ARP_REPLY;
			v->reason = AGENT_C_TX_ARP_REPLY;
			__builtin_memcpy(v->mac, ep->mac, ETH_ALEN);
			return 0;
		}
		if (ep->flags & CEN_EP_F_LOCAL) {
			v->action = AG_LOCAL;
			v->reason = AGENT_C_REDIRECT_LOCAL;
			v->ifindex = ep->ifindex;
			__builtin_memcpy(v->mac, ep->mac, ETH_ALEN);
			return 0;
		}
		if (ep->host_ip == 0) {
			v->reason = AGENT_C_DROP_NO_ROUTE;
			return 0;
		}
		v->action = AG_ENCAP;
		v->reason = AGENT_C_REDIRECT_DIRECT;
		v->host = ep->host_ip;
		__builtin_memcpy(v->mac, ep->host_mac, ETH_ALEN);
		return 0;
	}

	struct cen_ep_cache *c = ep_cache.lookup(&key);
	if (c && bpf_ktime_get_ns() - c->ts_ns < cfg->learn_ttl_ns) {
		v->action = AG_ENCAP;
		v->reason = AGENT_C_REDIRECT_LEARNED;
		v->host = c->host_ip;
		__builtin_memcpy(v->mac, c->host_mac, ETH_ALEN);
		return 0;
	}

	/* Via the source subnet's bouncer. */
	struct cen_net_key nk = {.prefixlen = 64, .vni = vni, .ip = src};
	struct cen_net *net = nets.lookup(&nk);
	if (!net || net->nbouncers == 0 || net->nbouncers > CEN_MAX_BOUNCERS) {
		v->reason = AGENT_C_DROP_NO_ROUTE;
		return 0;
	}
	__be32 b = net->bouncers[cen_pick(hash, net->nbouncers)];
	if (b != cfg->host_ip)
		return agent_to_host_v(v, b, AGENT_C_REDIRECT_BOUNCER);

	/* This host is the bouncer and does not know the destination: it is outside the subnet. */
	if (is_arp) {
		v->reason = AGENT_C_DROP_NO_ROUTE;
		return 0;
	}
	struct cen_vpc *vpc = vpcs.lookup(&vni);
	if (!vpc || vpc->ndividers == 0 || vpc->ndividers > CEN_MAX_DIVIDERS) {
		v->reason = AGENT_C_DROP_NO_ROUTE;
		return 0;
	}
	__be32 d = vpc->dividers[cen_pick(hash, vpc->ndividers)];
	if (d != cfg->host_ip)
		return agent_to_host_v(v, d, AGENT_C_REDIRECT_DIVIDER);

	/* And the divider too: straight to a bouncer of the destination subnet. */
	struct cen_net_key dk = {.prefixlen = 64, .vni = vni, .ip = dst};
	struct cen_net *dnet = nets.lookup(&dk);
	if (!dnet || dnet->nbouncers == 0 || dnet->nbouncers > CEN_MAX_BOUNCERS) {
		v->reason = AGENT_C_DROP_NO_ROUTE;
		return 0;
	}
	__be32 db = dnet->bouncers[cen_pick(hash, dnet->nbouncers)];
	if (db == cfg->host_ip) {
		v->reason = AGENT_C_DROP_NO_ROUTE;
		return 0;
	}
	return agent_to_host_v(v, db, AGENT_C_REDIRECT_BOUNCER);
}

/* Fill the 66-byte outer header (everything but the inner frame). */
static __always_inline void agent_fill_encap(struct cen_encap_hdr *h, const struct cen_config *cfg, __u32 vni,
					     __be32 dst_host, const __u8 *dst_mac, __u32 hash, __u32 inner_len)
{
	__builtin_memcpy(h->eth.h_dest, dst_mac, ETH_ALEN);
	__builtin_memcpy(h->eth.h_source, cfg->host_mac, ETH_ALEN);
	h->eth.h_proto = bpf_htons(ETH_P_IP);

	__u32 ip_len = inner_len + CEN_ENCAP_LEN - sizeof(struct ethhdr);
	if (ip_len > 0xffff) /* a GSO super-packet: segmentation rewrites the lengths */
		ip_len = 0xffff;
	h->ip.version = 4;
	h->ip.ihl = 5;
	h->ip.tos = 0;
	h->ip.tot_len = bpf_htons(ip_len);
	h->ip.id = 0;
	h->ip.frag_off = bpf_htons(0x4000); /* DF */
	h->ip.ttl = 64;
	h->ip.protocol = IPPROTO_UDP;
	h->ip.saddr = cfg->host_ip;
	h->ip.daddr = dst_host;
	ipv4_set_csum(&h->ip);

	h->udp.source = cen_src_port(hash);
	h->udp.dest = bpf_htons(GENEVE_UDP_PORT);
	h->udp.len = bpf_htons(ip_len - sizeof(struct iphdr));
	h->udp.check = 0;

	h->gnv.ver_optlen = sizeof(struct cen_opt_src_host) / 4;
	h->gnv.flags = 0;
	h->gnv.proto = bpf_htons(GENEVE_PROTO_ETH);
	cen_geneve_set_vni(&h->gnv, vni);
	h->gnv.rsvd = 0;

	h->opt.hdr.opt_class = bpf_htons(CEN_OPT_CLASS);
	h->opt.hdr.type = CEN_OPT_TYPE_SRC_HOST;
	h->opt.hdr.len = (sizeof(struct cen_opt_src_host) - sizeof(struct geneve_opt_hdr)) / 4;
	h->opt.host_ip = cfg->host_ip;
	__builtin_memcpy(h->opt.host_mac, cfg->host_mac, ETH_ALEN);
	h->opt.rsvd = 0;
}

#endif
