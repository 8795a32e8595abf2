/* transit_decap_tc: TC ingress on the substrate interface, for Geneve GSO packets.
 *
 * When the substrate runs XDP in generic mode, a GSO packet (many MTU-sized segments carried
 * as one skb, as transit_agent_tc sends them) cannot be redirected by XDP, so transit_xdp
 * passes anything longer than the MTU. This program decapsulates such a packet to a local
 * endpoint as one skb (bpf_skb_adjust_room with the DECAP flag clears the tunnel GSO state), so
 * a 64 KB TCP send crosses the whole path as one packet. It learns the source-host option with
 * transit_xdp's helper (lib/learn.h). Anything else that reaches it is left to the kernel
 * (TC_ACT_OK).
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
#include "lib/learn.h"

#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#endif

int transit_decap_tc(struct __sk_buff *skb)
{
	struct cen_config *cfg = cen_config_get();
	if (!cfg || !skb->gso_segs || skb->gso_segs < 2)
		return TC_ACT_OK;
	if (bpf_skb_pull_data(skb, CEN_ENCAP_LEN + sizeof(struct ethhdr) + sizeof(struct iphdr)))
		return TC_ACT_OK;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct cen_encap_hdr *h = data;
	struct ethhdr *ieth = (void *)(h + 1);
	struct iphdr *iip = (void *)(ieth + 1);
	if ((void *)(iip + 1) > data_end)
		return TC_ACT_OK;
	if (h->eth.h_proto != bpf_htons(ETH_P_IP) || h->ip.protocol != IPPROTO_UDP || h->ip.ihl != 5 ||
	    h->udp.dest != bpf_htons(GENEVE_UDP_PORT) || h->ip.daddr != cfg->host_ip)
		return TC_ACT_OK;
	/* Only our own layout travels as GSO: one source-host option, Ethernet, IPv4 inside. */
	if (h->gnv.ver_optlen != sizeof(struct cen_opt_src_host) / 4 || h->gnv.proto != bpf_htons(GENEVE_PROTO_ETH) ||
	    h->opt.hdr.opt_class != bpf_htons(CEN_OPT_CLASS) || h->opt.hdr.type != CEN_OPT_TYPE_SRC_HOST ||
	    ieth->h_proto != bpf_htons(ETH_P_IP))
		return xdp_count(XDP_C_DROP_BAD_GENEVE, TC_ACT_SHOT);
	__u32 vni = cen_geneve_vni(&h->gnv);
	struct cen_ep_key key = {.vni = vni, .ip = iip->daddr};
	struct cen_endpoint *ep = endpoints.lookup(&key);
	if (!ep || !(ep->flags & CEN_EP_F_LOCAL))
		return xdp_count(XDP_C_DROP_GSO_NOT_LOCAL, TC_ACT_SHOT);

	cen_learn(cfg, vni, iip->saddr, h->opt.host_ip, h->opt.host_mac);
	struct ethhdr neweth;
	__builtin_memcpy(neweth.h_dest, ep->mac, ETH_ALEN);
	__builtin_memcpy(neweth.h_source, ieth->h_source, ETH_ALEN);
	neweth.h_proto = bpf_htons(ETH_P_IP);
	__u32 ifindex = ep->ifindex;

	/* Remove outer IPv4 + UDP + Geneve + option + inner Ethernet (66 bytes after the outer
	 * Ethernet header) and put the inner Ethernet header in front. */
	if (bpf_skb_adjust_room(skb, -(int)(CEN_ENCAP_LEN), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_DECAP_L3_IPV4))
		return xdp_count(XDP_C_DROP_ADJUST, TC_ACT_SHOT);
	if (bpf_skb_store_bytes(skb, 0, &neweth, sizeof(neweth), 0))
		return xdp_count(XDP_C_DROP_ADJUST, TC_ACT_SHOT);
	xdp_count(XDP_C_REDIRECT_DECAP_GSO, 0);
	return bpf_redirect(ifindex, 0);
}
