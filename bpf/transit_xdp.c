/* transit_xdp: XDP on a host's substrate interface (ingress from the substrate).
 *
 * Non-Geneve traffic (anything but UDP to 6081) goes to the kernel untouched. Geneve must be
 * addressed to this host, version 0, Ethernet payload, TTL above 0 and carry no unknown critical
 * option; anything else is dropped and counted by reason (never silently). The inner frame is
 * then resolved by its destination (IPv4 daddr or ARP target) in the VNI's endpoints:
 *   - ARP request for a known endpoint: answered here and sent back to the asking host, with the
 *     source-host option naming the endpoint's host (so the asker learns the direct path);
 *   - an endpoint on this host: the source-host option is learned, the outer headers stripped,
 *     the inner destination MAC set to the endpoint's, and the frame redirected to its veth;
 *   - an endpoint on another host (bouncer role): outer addresses rewritten to that host, TTL
 *     decremented, checksum recomputed, sent back out of the substrate interface;
 *   - unknown, in a subnet this host bounces: dropped (unknown endpoint);
 *   - unknown, this host a divider of the VPC: longest-prefix match of the destination in the
 *     VPC's subnets, on to one of that subnet's bouncers (stable hash of src, dst);
 *   - unknown otherwise: on to one of the VPC's dividers.
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

static __always_inline int xdp_forward(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip, struct udphdr *udp,
				       const struct cen_config *cfg, __be32 host, const __u8 *mac, __u32 reason)
{
	if (ip->ttl <= 1)
		return xdp_count(XDP_C_DROP_TTL, XDP_DROP);
	ip->ttl -= 1;
	outer_retarget(eth, ip, udp, cfg, host, mac);
	xdp_count(reason, 0);
	return cen_send_back(ctx);
}

static __always_inline int xdp_forward_host(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip, struct udphdr *udp,
					    const struct cen_config *cfg, __be32 host, __u32 reason)
{
	struct cen_substrate *sub = substrate.lookup(&host);
	if (!sub)
		return xdp_count(XDP_C_DROP_NO_SUBSTRATE, XDP_DROP);
	return xdp_forward(ctx, eth, ip, udp, cfg, host, sub->mac, reason);
}

int transit_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return xdp_count(XDP_C_PASS_NON_GENEVE, XDP_PASS);
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return xdp_count(XDP_C_PASS_NON_GENEVE, XDP_PASS);
	struct udphdr *udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(GENEVE_UDP_PORT))
		return xdp_count(XDP_C_PASS_NON_GENEVE, XDP_PASS);
	if (ip->frag_off & bpf_htons(0x3fff))
		return xdp_count(XDP_C_PASS_FRAGMENT, XDP_PASS);

	struct cen_config *cfg = cen_config_get();
	if (!cfg)
		return xdp_count(XDP_C_DROP_NO_CONFIG, XDP_DROP);
	if (cfg->mtu && data_end - data > cfg->mtu + sizeof(struct ethhdr))
		return xdp_count(XDP_C_PASS_GSO, XDP_PASS);
	if (ip->daddr != cfg->host_ip)
		return xdp_count(XDP_C_DROP_NOT_FOR_HOST, XDP_DROP);
	if (ip->ttl == 0)
		return xdp_count(XDP_C_DROP_TTL, XDP_DROP);

	struct geneve_hdr *gnv = (void *)(udp + 1);
	if ((void *)(gnv + 1) > data_end)
		return xdp_count(XDP_C_DROP_MALFORMED, XDP_DROP);
	if ((gnv->ver_optlen >> 6) != 0 || (gnv->flags & 0x80) || gnv->proto != bpf_htons(GENEVE_PROTO_ETH))
		return xdp_count(XDP_C_DROP_BAD_GENEVE, XDP_DROP);
	__u32 optlen = (gnv->ver_optlen & 0x3f) * 4;
	__u32 vni = ((__u32)gnv->vni[0] << 16) | ((__u32)gnv->vni[1] << 8) | gnv->vni[2];

	/* Walk the options: remember the source-host option, refuse unknown critical ones. */
	void *opts = (void *)(gnv + 1);
	__u32 off = 0, src_off = 0;
	int have_src = 0;
	__be32 src_host = 0;
	__u8 src_mac[6] = {};
	for (int i = 0; i < GENEVE_MAX_OPTS; i++) {
		if (off >= optlen)
			break;
		struct geneve_opt_hdr *oh = opts + (off & 0xff);
		if ((void *)(oh + 1) > data_end)
			return xdp_count(XDP_C_DROP_MALFORMED, XDP_DROP);
		__u32 olen = (oh->len & 0x1f) * 4;
		if (oh->opt_class == bpf_htons(CEN_OPT_CLASS) && (oh->type & 0x7f) == CEN_OPT_TYPE_SRC_HOST &&
		    olen >= 12) {
			struct cen_opt_src_host *so = (void *)oh;
			if ((void *)(so + 1) > data_end)
				return xdp_count(XDP_C_DROP_MALFORMED, XDP_DROP);
			have_src = 1;
			src_off = off;
			src_host = so->host_ip;
			__builtin_memcpy(src_mac, so->host_mac, ETH_ALEN);
		} else if (oh->type & GENEVE_OPT_CRITICAL) {
			return xdp_count(XDP_C_DROP_CRITICAL_OPT, XDP_DROP);
		}
		off += 4 + olen;
	}
	if (off != optlen)
		return xdp_count(XDP_C_DROP_MALFORMED, XDP_DROP);

	struct ethhdr *ieth = opts + (optlen & 0xff);
	if ((void *)(ieth + 1) > data_end)
		return xdp_count(XDP_C_DROP_MALFORMED, XDP_DROP);
	__be32 isrc, idst;
	struct arp_eth *arp = 0;
	if (ieth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iip = (void *)(ieth + 1);
		if ((void *)(iip + 1) > data_end)
			return xdp_count(XDP_C_DROP_MALFORMED, XDP_DROP);
		isrc = iip->saddr;
		idst = iip->daddr;
	} else if (ieth->h_proto == bpf_htons(ETH_P_ARP)) {
		arp = (void *)(ieth + 1);
		if ((void *)(arp + 1) > data_end)
			return xdp_count(XDP_C_DROP_MALFORMED, XDP_DROP);
		isrc = arp->spa;
		idst = arp->tpa;
	} else {
		return xdp_count(XDP_C_DROP_BAD_INNER, XDP_DROP);
	}

	__u32 hash = cen_flow_hash(isrc, idst);
	struct cen_ep_key key = {.vni = vni, .ip = idst};
	struct cen_endpoint *ep = endpoints.lookup(&key);

	if (arp) {
		if (!ep || arp->op != bpf_htons(ARP_OP_REQUEST)) {
			if (!ep || !(ep->flags & CEN_EP_F_LOCAL))
				return xdp_count(XDP_C_DROP_ARP_UNKNOWN, XDP_DROP);
			/* An ARP reply for a local endpoint is delivered like any frame (below). */
		} else {
			/* Answer, and send it back to the asking host. */
			__be32 back_ip = ip->saddr;
			__u8 back_mac[6];
			__builtin_memcpy(back_mac, eth->h_source, ETH_ALEN);
			if (have_src) {
				back_ip = src_host;
				__builtin_memcpy(back_mac, src_mac, ETH_ALEN);
			}
			arp_reply_inplace(ieth, arp, ep->mac);
			if (have_src) {
				struct cen_opt_src_host *so = opts + (src_off & 0xff);
				if ((void *)(so + 1) > data_end)
					return xdp_count(XDP_C_DROP_MALFORMED, XDP_DROP);
				if (ep->host_ip) {
					so->host_ip = ep->host_ip;
					__builtin_memcpy(so->host_mac, ep->host_mac, ETH_ALEN);
				} else {
					so->host_ip = cfg->host_ip;
					__builtin_memcpy(so->host_mac, cfg->host_mac, ETH_ALEN);
				}
			}
			ip->ttl = 64;
			outer_retarget(eth, ip, udp, cfg, back_ip, back_mac);
			xdp_count(XDP_C_TX_ARP_REPLY, 0);
			return cen_send_back(ctx);
		}
	}

	if (ep) {
		if (ep->flags & CEN_EP_F_LOCAL) {
			if (have_src && src_host != cfg->host_ip) {
				struct cen_ep_key sk = {.vni = vni, .ip = isrc};
				struct cen_ep_cache *c = ep_cache.lookup(&sk);
				__u64 now = bpf_ktime_get_ns();
				if (!c || c->host_ip != src_host || now - c->ts_ns > (cfg->learn_ttl_ns >> 2)) {
					struct cen_ep_cache v = {.host_ip = src_host, .ts_ns = now};
					__builtin_memcpy(v.host_mac, src_mac, ETH_ALEN);
					ep_cache.update(&sk, &v);
					xdp_count(XDP_C_INFO_LEARN, 0);
				}
			}
			__u32 ifindex = ep->ifindex;
			__u8 mac[6];
			__builtin_memcpy(mac, ep->mac, ETH_ALEN);
			int strip = (int)(CEN_OUTER_FIXED_LEN + (optlen & 0xff));
			if (bpf_xdp_adjust_head(ctx, strip))
				return xdp_count(XDP_C_DROP_ADJUST, XDP_DROP);
			data = (void *)(long)ctx->data;
			data_end = (void *)(long)ctx->data_end;
			struct ethhdr *deth = data;
			if ((void *)(deth + 1) > data_end)
				return xdp_count(XDP_C_DROP_MALFORMED, XDP_DROP);
			if (deth->h_proto == bpf_htons(ETH_P_IP))
				__builtin_memcpy(deth->h_dest, mac, ETH_ALEN);
			xdp_count(XDP_C_REDIRECT_DECAP, 0);
			return bpf_redirect(ifindex, 0);
		}
		if (ep->host_ip == 0)
			return xdp_count(XDP_C_DROP_NO_ROUTE, XDP_DROP);
		if (ep->host_ip == cfg->host_ip)
			return xdp_count(XDP_C_DROP_UNKNOWN_EP, XDP_DROP);
		return xdp_forward(ctx, eth, ip, udp, cfg, ep->host_ip, ep->host_mac, XDP_C_TX_BOUNCE);
	}

	struct cen_net_key nk = {.prefixlen = 64, .vni = vni, .ip = idst};
	struct cen_net *net = nets.lookup(&nk);
	if (net && (net->flags & CEN_NET_F_BOUNCER))
		return xdp_count(XDP_C_DROP_UNKNOWN_EP, XDP_DROP);
	struct cen_vpc *vpc = vpcs.lookup(&vni);
	if (!vpc)
		return xdp_count(XDP_C_DROP_NO_ROUTE, XDP_DROP);
	if (vpc->flags & CEN_VPC_F_DIVIDER) {
		if (!net || net->nbouncers == 0 || net->nbouncers > CEN_MAX_BOUNCERS)
			return xdp_count(XDP_C_DROP_NO_ROUTE, XDP_DROP);
		__be32 b = net->bouncers[cen_pick(hash, net->nbouncers)];
		if (b == cfg->host_ip)
			return xdp_count(XDP_C_DROP_UNKNOWN_EP, XDP_DROP);
		return xdp_forward_host(ctx, eth, ip, udp, cfg, b, XDP_C_TX_DIVIDE);
	}
	if (vpc->ndividers == 0 || vpc->ndividers > CEN_MAX_DIVIDERS)
		return xdp_count(XDP_C_DROP_NO_ROUTE, XDP_DROP);
	__be32 d = vpc->dividers[cen_pick(hash, vpc->ndividers)];
	if (d == cfg->host_ip)
		return xdp_count(XDP_C_DROP_NO_ROUTE, XDP_DROP);
	return xdp_forward_host(ctx, eth, ip, udp, cfg, d, XDP_C_TX_TO_DIVIDER);
}
