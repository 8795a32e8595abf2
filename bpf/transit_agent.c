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
#include "lib/agent_path.h"

static __always_inline int agent_encap(struct xdp_md *ctx, const struct cen_config *cfg, __u32 vni,
				       const struct cen_agent_verdict *v, __u32 hash)
{
	if (bpf_xdp_adjust_head(ctx, -(int)CEN_ENCAP_LEN))
		return agent_count(AGENT_C_DROP_ADJUST, XDP_DROP);
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct cen_encap_hdr *h = data;
	if ((void *)(h + 1) > data_end)
		return agent_count(AGENT_C_DROP_MALFORMED, XDP_DROP);
	agent_fill_encap(h, cfg, vni, v->host, v->mac, hash, (__u32)(data_end - data - CEN_ENCAP_LEN));
	agent_count(v->reason, 0);
	return bpf_redirect(cfg->substrate_ifindex, 0);
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
	__u32 hash = cen_flow_hash(src, dst);
	struct cen_agent_verdict v = {};
	agent_decide(md, cfg, src, dst, arp != 0, arp && arp->op == bpf_htons(ARP_OP_REQUEST), hash, &v);
	switch (v.action) {
	case AG_ARP_REPLY:
		if (!arp)
			break;
		arp_reply_inplace(eth, arp, v.mac);
		agent_count(v.reason, 0);
		return cen_send_back(ctx);
	case AG_LOCAL:
		__builtin_memcpy(eth->h_dest, v.mac, ETH_ALEN);
		agent_count(v.reason, 0);
		return bpf_redirect(v.ifindex, 0);
	case AG_ENCAP:
		return agent_encap(ctx, cfg, md->vni, &v, hash);
	}
	return agent_count(v.reason, XDP_DROP);
}
