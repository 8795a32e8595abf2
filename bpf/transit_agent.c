/* transit_agent: XDP on the host side of each endpoint's veth (the endpoint's egress).
 *
 * Every frame the endpoint sends (IPv4 and ARP) is resolved by its destination address in the
 * endpoint's VPC (VNI from agent_md, keyed by the veth's ifindex):
 *   1. a known endpoint: ARP is answered on the spot; a same-host endpoint gets the frame
 *      straight on its veth; a programmed remote endpoint is encapsulated to its host;
 *   2. a destination learned from a source-host option (ep_cache, not older than
 *      learn_ttl_ns) is encapsulated directly to its host;
 *   3. otherwise to one of the source subnet's bouncers, chosen by a stable hash of (src, dst);
 *      if that bouncer is this very host, to one of the VPC's dividers instead (and if this host
 *      is also the divider, to a bouncer of the destination subnet).
 * Encapsulation is Geneve (UDP 6081, 0x6558, the VPC's VNI) with one Centaurus "source host"
 * option carrying this host's substrate address, redirected out of the substrate interface.
 */
#include <uapi/linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>

#include "lib/geneve.h"
#include "lib/maps.h"
#include "lib/counters.h"
#include "lib/helpers.h"

static __always_inline int agent_encap(struct xdp_md *ctx, const struct cen_config *cfg, __u32 vni,
				       __be32 dst_host, const __u8 *dst_mac, __u32 hash, __u32 reason)
{
	if (bpf_xdp_adjust_head(ctx, -(int)CEN_ENCAP_LEN))
		return agent_count(AGENT_C_DROP_ADJUST, XDP_DROP);
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct cen_encap_hdr *h = data;
	if ((void *)(h + 1) > data_end)
		return agent_count(AGENT_C_DROP_MALFORMED, XDP_DROP);
	__u16 inner_len = (__u16)(data_end - data - CEN_ENCAP_LEN);

	__builtin_memcpy(h->eth.h_dest, dst_mac, ETH_ALEN);
	__builtin_memcpy(h->eth.h_source, cfg->host_mac, ETH_ALEN);
	h->eth.h_proto = bpf_htons(ETH_P_IP);

	h->ip.version = 4;
	h->ip.ihl = 5;
	h->ip.tos = 0;
	h->ip.tot_len = bpf_htons(inner_len + CEN_ENCAP_LEN - sizeof(struct ethhdr));
	h->ip.id = 0;
	h->ip.frag_off = bpf_htons(0x4000); /* DF */
	h->ip.ttl = 64;
	h->ip.protocol = IPPROTO_UDP;
	h->ip.saddr = cfg->host_ip;
	h->ip.daddr = dst_host;
	ipv4_set_csum(&h->ip);

	h->udp.source = cen_src_port(hash);
	h->udp.dest = bpf_htons(GENEVE_UDP_PORT);
	h->udp.len = bpf_htons(inner_len + CEN_ENCAP_LEN - sizeof(struct ethhdr) - sizeof(struct iphdr));
	h->udp.check = 0;

	h->gnv.ver_optlen = sizeof(struct cen_opt_src_host) / 4;
	h->gnv.flags = 0;
	h->gnv.proto = bpf_htons(GENEVE_PROTO_ETH);
	h->gnv.vni[0] = (vni >> 16) & 0xff;
	h->gnv.vni[1] = (vni >> 8) & 0xff;
	h->gnv.vni[2] = vni & 0xff;
	h->gnv.rsvd = 0;

	h->opt.hdr.opt_class = bpf_htons(CEN_OPT_CLASS);
	h->opt.hdr.type = CEN_OPT_TYPE_SRC_HOST;
	h->opt.hdr.len = (sizeof(struct cen_opt_src_host) - sizeof(struct geneve_opt_hdr)) / 4;
	h->opt.host_ip = cfg->host_ip;
	__builtin_memcpy(h->opt.host_mac, cfg->host_mac, ETH_ALEN);
	h->opt.rsvd = 0;

	agent_count(reason, 0);
	return bpf_redirect(cfg->substrate_ifindex, 0);
}

static __always_inline int agent_to_host(struct xdp_md *ctx, const struct cen_config *cfg, __u32 vni,
					 __be32 host, __u32 hash, __u32 reason)
{
	struct cen_substrate *sub = substrate.lookup(&host);
	if (!sub)
		return agent_count(AGENT_C_DROP_NO_SUBSTRATE, XDP_DROP);
	return agent_encap(ctx, cfg, vni, host, sub->mac, hash, reason);
}

int transit_agent(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->ingress_ifindex;

	struct cen_agent_md *md = agent_md.lookup(&ifindex);
	if (!md)
		return agent_count(AGENT_C_PASS_NO_MD, XDP_PASS);
	struct cen_config *cfg = cen_config_get();
	if (!cfg)
		return agent_count(AGENT_C_DROP_NO_CONFIG, XDP_DROP);

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return agent_count(AGENT_C_DROP_MALFORMED, XDP_DROP);

	__be32 src, dst;
	struct arp_eth *arp = 0;
	struct iphdr *ip = 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return agent_count(AGENT_C_DROP_MALFORMED, XDP_DROP);
		src = ip->saddr;
		dst = ip->daddr;
	} else if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		arp = (void *)(eth + 1);
		if ((void *)(arp + 1) > data_end)
			return agent_count(AGENT_C_DROP_MALFORMED, XDP_DROP);
		if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != 6 ||
		    arp->plen != 4)
			return agent_count(AGENT_C_DROP_UNSUPPORTED, XDP_DROP);
		src = arp->spa;
		dst = arp->tpa;
	} else {
		return agent_count(AGENT_C_DROP_UNSUPPORTED, XDP_DROP);
	}
	if (src != md->ip)
		return agent_count(AGENT_C_DROP_SPOOF, XDP_DROP);
	if (dst == src)
		return agent_count(AGENT_C_DROP_UNSUPPORTED, XDP_DROP);

	__u32 vni = md->vni;
	__u32 hash = cen_flow_hash(src, dst);
	struct cen_ep_key key = {.vni = vni, .ip = dst};

	struct cen_endpoint *ep = endpoints.lookup(&key);
	if (ep) {
		if (arp) {
			if (arp->op != bpf_htons(ARP_OP_REQUEST))
				return agent_count(AGENT_C_DROP_UNSUPPORTED, XDP_DROP);
			arp_reply_inplace(eth, arp, ep->mac);
			agent_count(AGENT_C_TX_ARP_REPLY, 0);
			return cen_send_back(ctx);
		}
		if (ep->flags & CEN_EP_F_LOCAL) {
			__builtin_memcpy(eth->h_dest, ep->mac, ETH_ALEN);
			agent_count(AGENT_C_REDIRECT_LOCAL, 0);
			return bpf_redirect(ep->ifindex, 0);
		}
		if (ep->host_ip == 0)
			return agent_count(AGENT_C_DROP_NO_ROUTE, XDP_DROP);
		return agent_encap(ctx, cfg, vni, ep->host_ip, ep->host_mac, hash, AGENT_C_REDIRECT_DIRECT);
	}

	struct cen_ep_cache *c = ep_cache.lookup(&key);
	if (c && bpf_ktime_get_ns() - c->ts_ns < cfg->learn_ttl_ns)
		return agent_encap(ctx, cfg, vni, c->host_ip, c->host_mac, hash, AGENT_C_REDIRECT_LEARNED);

	/* Via the source subnet's bouncer. */
	struct cen_net_key nk = {.prefixlen = 64, .vni = vni, .ip = src};
	struct cen_net *net = nets.lookup(&nk);
	if (!net || net->nbouncers == 0 || net->nbouncers > CEN_MAX_BOUNCERS)
		return agent_count(AGENT_C_DROP_NO_ROUTE, XDP_DROP);
	__be32 b = net->bouncers[cen_pick(hash, net->nbouncers)];
	if (b != cfg->host_ip)
		return agent_to_host(ctx, cfg, vni, b, hash, AGENT_C_REDIRECT_BOUNCER);

	/* This host is the bouncer and does not know the destination: it is outside the subnet. */
	if (arp)
		return agent_count(AGENT_C_DROP_NO_ROUTE, XDP_DROP);
	struct cen_vpc *vpc = vpcs.lookup(&vni);
	if (!vpc || vpc->ndividers == 0 || vpc->ndividers > CEN_MAX_DIVIDERS)
		return agent_count(AGENT_C_DROP_NO_ROUTE, XDP_DROP);
	__be32 d = vpc->dividers[cen_pick(hash, vpc->ndividers)];
	if (d != cfg->host_ip)
		return agent_to_host(ctx, cfg, vni, d, hash, AGENT_C_REDIRECT_DIVIDER);

	/* And the divider too: straight to a bouncer of the destination subnet. */
	struct cen_net_key dk = {.prefixlen = 64, .vni = vni, .ip = dst};
	struct cen_net *dnet = nets.lookup(&dk);
	if (!dnet || dnet->nbouncers == 0 || dnet->nbouncers > CEN_MAX_BOUNCERS)
		return agent_count(AGENT_C_DROP_NO_ROUTE, XDP_DROP);
	__be32 db = dnet->bouncers[cen_pick(hash, dnet->nbouncers)];
	if (db == cfg->host_ip)
		return agent_count(AGENT_C_DROP_NO_ROUTE, XDP_DROP);
	return agent_to_host(ctx, cfg, vni, db, hash, AGENT_C_REDIRECT_BOUNCER);
}
