/* transit_agent_tc: the same agent as transit_agent, as a TC (cls_bpf) program on the ingress of
 * the host side of an endpoint veth, for TCP-heavy hosts.
 *
 * An XDP program on a veth turns off its peer's TSO/GSO, so the XDP agent sees every MTU-sized
 * segment. At TC the endpoint's frame is still an skb: bpf_skb_adjust_room with the ENCAP flags
 * inserts the outer headers *and* marks the skb as a UDP tunnel, so a 64 KB GSO packet stays one
 * packet through this program and is segmented (outer headers replicated) only where it leaves
 * the host. Decisions are exactly transit_agent's (lib/agent_path.h), the counters are shared.
 * ARP (not adjustable with adjust_room) gets its headroom from bpf_skb_change_head.
 */
#include <uapi/linux/bpf.h>
#include <uapi/linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>

#include "lib/geneve.h"
#include "lib/maps.h"
#include "lib/counters.h"
#include "lib/helpers.h"
#include "lib/agent_path.h"

#define TC_ENCAP_FLAGS                                                                          \
	(BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2_ETH | \
	 BPF_F_ADJ_ROOM_ENCAP_L2(sizeof(struct ethhdr)))

int transit_agent_tc(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct cen_agent_md *md = agent_md.lookup(&ifindex);
	if (!md)
		return agent_count(AGENT_C_PASS_NO_MD, TC_ACT_OK);
	struct cen_config *cfg = cen_config_get();
	if (!cfg)
		return agent_count(AGENT_C_DROP_NO_CONFIG, TC_ACT_SHOT);
	if (bpf_skb_pull_data(skb, sizeof(struct ethhdr) + sizeof(struct arp_eth)) &&
	    bpf_skb_pull_data(skb, sizeof(struct ethhdr) + sizeof(struct iphdr)))
		return agent_count(AGENT_C_DROP_MALFORMED, TC_ACT_SHOT);

	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return agent_count(AGENT_C_DROP_MALFORMED, TC_ACT_SHOT);

	__be32 src, dst;
	int is_arp = 0, arp_request = 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return agent_count(AGENT_C_DROP_MALFORMED, TC_ACT_SHOT);
		src = ip->saddr;
		dst = ip->daddr;
	} else if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		struct arp_eth *arp = (void *)(eth + 1);
		if ((void *)(arp + 1) > data_end)
			return agent_count(AGENT_C_DROP_MALFORMED, TC_ACT_SHOT);
		if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != 6 ||
		    arp->plen != 4)
			return agent_count(AGENT_C_DROP_UNSUPPORTED, TC_ACT_SHOT);
		src = arp->spa;
		dst = arp->tpa;
		is_arp = 1;
		arp_request = arp->op == bpf_htons(ARP_OP_REQUEST);
	} else {
		return agent_count(AGENT_C_DROP_UNSUPPORTED, TC_ACT_SHOT);
	}

	__u32 hash = cen_flow_hash(src, dst);
	struct cen_agent_verdict v = {};
	agent_decide(md, cfg, src, dst, is_arp, arp_request, hash, &v);

	if (v.action == AG_ARP_REPLY) {
		struct arp_eth *arp = (void *)(eth + 1);
		if ((void *)(arp + 1) > data_end)
			return agent_count(AGENT_C_DROP_MALFORMED, TC_ACT_SHOT);
		arp_reply_inplace(eth, arp, v.mac);
		agent_count(v.reason, 0);
		return bpf_redirect(skb->ifindex, 0); /* back out of the veth, to the endpoint */
	}
	if (v.action == AG_LOCAL) {
		__builtin_memcpy(eth->h_dest, v.mac, ETH_ALEN);
		agent_count(v.reason, 0);
		return bpf_redirect(v.ifindex, 0);
	}
	if (v.action != AG_ENCAP)
		return agent_count(v.reason, TC_ACT_SHOT);

	/* Encapsulate. The new layout is [outer 66 bytes][inner Ethernet][payload] either way. */
	struct {
		struct cen_encap_hdr h;
		struct ethhdr inner;
	} __attribute__((packed)) hdr;
	__builtin_memcpy(&hdr.inner, eth, sizeof(struct ethhdr));
	__u32 inner_len = skb->len;
	agent_fill_encap(&hdr.h, cfg, md->vni, v.host, v.mac, hash, inner_len);
	if (is_arp) {
		if (bpf_skb_change_head(skb, CEN_ENCAP_LEN, 0))
			return agent_count(AGENT_C_DROP_ADJUST, TC_ACT_SHOT);
		if (bpf_skb_store_bytes(skb, 0, &hdr.h, CEN_ENCAP_LEN, 0))
			return agent_count(AGENT_C_DROP_ADJUST, TC_ACT_SHOT);
	} else {
		if (bpf_skb_adjust_room(skb, CEN_ENCAP_LEN, BPF_ADJ_ROOM_MAC, TC_ENCAP_FLAGS))
			return agent_count(AGENT_C_DROP_ADJUST, TC_ACT_SHOT);
		if (bpf_skb_store_bytes(skb, 0, &hdr, sizeof(hdr), 0))
			return agent_count(AGENT_C_DROP_ADJUST, TC_ACT_SHOT);
	}
	agent_count(v.reason, 0);
	return bpf_redirect(cfg->substrate_ifindex, 0);
}
