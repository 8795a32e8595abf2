/* transit_xdp: XDP on a host's substrate interface (ingress from the substrate).
 *
 * Three steps, as in Cilium's entry programs:
 *   parse  (xdp_parse, here): non-Geneve traffic (anything but UDP to 6081), IP fragments and
 *          frames longer than the MTU (GSO, for transit_decap_tc) go to the kernel untouched.
 *          Geneve must be addressed to this host, version 0, Ethernet payload, TTL above 0 and
 *          carry no unknown critical option; anything else is dropped and counted by reason
 *          (never silently). The source-host option is remembered, and the inner frame's IPv4
 *          or ARP addresses are read.
 *   decide (xdp_decide, lib/transit_path.h): ARP reply, decapsulation to a local endpoint,
 *          forwarding (bouncer, divider), or a counted drop, from the maps alone.
 *   act    (here): answer ARP back to the asking host, with the source-host option naming the
 *          endpoint's host (so the asker learns the direct path); or learn the source-host
 *          option (lib/learn.h), strip the outer headers, set the inner destination MAC to the
 *          endpoint's and redirect to its veth; or rewrite the outer addresses to the next host,
 *          decrement the TTL, recompute the checksum and send it back out.
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
#include "lib/learn.h"
#include "lib/transit_path.h"

#define XDP_PARSED (-1) /* xdp_parse: go on (any other value is the program's verdict) */

/* What xdp_parse found: pointers into the packet (bounds checked) and the option it keeps. */
struct xdp_geneve_pkt {
	void *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;
	void *opts;
	struct ethhdr *ieth;
	struct arp_eth *arp; /* the inner frame is ARP (else IPv4) */
	struct cen_config *cfg;
	__u32 vni;
	__u32 optlen;
	__be32 isrc, idst; /* inner IPv4 saddr/daddr or ARP sender/target */
	int have_src;      /* a source-host option was present: */
	__u32 src_off;     /*   at this offset in the options, */
	__be32 src_host;   /*   naming this host */
	__u8 src_mac[6];
};

static __always_inline int xdp_parse(struct xdp_md *ctx, struct xdp_geneve_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	p->data_end = data_end;

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
	p->eth = eth;
	p->ip = ip;
	p->udp = udp;

	struct cen_config *cfg = cen_config_get();
	if (!cfg)
		return xdp_count(XDP_C_DROP_NO_CONFIG, XDP_DROP);
	p->cfg = cfg;
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
	p->optlen = optlen;
	p->vni = cen_geneve_vni(gnv);

	/* Walk the options: remember the source-host option, refuse unknown critical ones. */
	void *opts = (void *)(gnv + 1);
	p->opts = opts;
	p->have_src = 0;
	__u32 off = 0;
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
			p->have_src = 1;
			p->src_off = off;
			p->src_host = so->host_ip;
			__builtin_memcpy(p->src_mac, so->host_mac, ETH_ALEN);
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
	p->ieth = ieth;
	p->arp = 0;
	if (ieth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iip = (void *)(ieth + 1);
		if ((void *)(iip + 1) > data_end)
			return xdp_count(XDP_C_DROP_MALFORMED, XDP_DROP);
		p->isrc = iip->saddr;
		p->idst = iip->daddr;
	} else if (ieth->h_proto == bpf_htons(ETH_P_ARP)) {
		struct arp_eth *arp = (void *)(ieth + 1);
		if ((void *)(arp + 1) > data_end)
			return xdp_count(XDP_C_DROP_MALFORMED, XDP_DROP);
		p->arp = arp;
		p->isrc = arp->spa;
		p->idst = arp->tpa;
	} else {
		return xdp_count(XDP_C_DROP_BAD_INNER, XDP_DROP);
	}
	return XDP_PARSED;
}

/* Answer the ARP request in place and send it back to the asking host (the option's host, or
 * the outer source when there is no option). */
static __always_inline int xdp_arp_reply(struct xdp_md *ctx, struct xdp_geneve_pkt *p,
					 const struct cen_xdp_verdict *v)
{
	__be32 back_ip = p->ip->saddr;
	__u8 back_mac[6];
	__builtin_memcpy(back_mac, p->eth->h_source, ETH_ALEN);
	if (p->have_src) {
		back_ip = p->src_host;
		__builtin_memcpy(back_mac, p->src_mac, ETH_ALEN);
	}
	arp_reply_inplace(p->ieth, p->arp, v->mac);
	if (p->have_src) {
		struct cen_opt_src_host *so = p->opts + (p->src_off & 0xff);
		if ((void *)(so + 1) > p->data_end)
			return xdp_count(XDP_C_DROP_MALFORMED, XDP_DROP);
		so->host_ip = v->host;
		__builtin_memcpy(so->host_mac, v->host_mac, ETH_ALEN);
	}
	p->ip->ttl = 64;
	outer_retarget(p->eth, p->ip, p->udp, p->cfg, back_ip, back_mac);
	xdp_count(v->reason, 0);
	return cen_send_back(ctx);
}

/* Learn the sender's host, strip the outer headers and hand the inner frame to the endpoint. */
static __always_inline int xdp_decap(struct xdp_md *ctx, struct xdp_geneve_pkt *p, const struct cen_xdp_verdict *v)
{
	if (p->have_src)
		cen_learn(p->cfg, p->vni, p->isrc, p->src_host, p->src_mac);
	int strip = (int)(CEN_OUTER_FIXED_LEN + (p->optlen & 0xff));
	if (bpf_xdp_adjust_head(ctx, strip))
		return xdp_count(XDP_C_DROP_ADJUST, XDP_DROP);
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *deth = data;
	if ((void *)(deth + 1) > data_end)
		return xdp_count(XDP_C_DROP_MALFORMED, XDP_DROP);
	if (deth->h_proto == bpf_htons(ETH_P_IP))
		__builtin_memcpy(deth->h_dest, v->mac, ETH_ALEN);
	xdp_count(v->reason, 0);
	return bpf_redirect(v->ifindex, 0);
}

/* Bounce or divide: on to the next host, one TTL less. */
static __always_inline int xdp_forward(struct xdp_md *ctx, struct xdp_geneve_pkt *p, const struct cen_xdp_verdict *v)
{
	if (p->ip->ttl <= 1)
		return xdp_count(XDP_C_DROP_TTL, XDP_DROP);
	p->ip->ttl -= 1;
	outer_retarget(p->eth, p->ip, p->udp, p->cfg, v->host, v->host_mac);
	xdp_count(v->reason, 0);
	return cen_send_back(ctx);
}

int transit_xdp(struct xdp_md *ctx)
{
	struct xdp_geneve_pkt p;
	int rc = xdp_parse(ctx, &p);
	if (rc != XDP_PARSED)
		return rc;

	struct cen_xdp_verdict v = {};
	xdp_decide(p.cfg, p.vni, p.idst, p.arp != 0, p.arp && p.arp->op == bpf_htons(ARP_OP_REQUEST),
		   cen_flow_hash(p.isrc, p.idst), &v);

	switch (v.action) {
	case XA_ARP_REPLY:
		if (!p.arp)
			break;
		return xdp_arp_reply(ctx, &p, &v);
	case XA_DECAP:
		return xdp_decap(ctx, &p, &v);
	case XA_FORWARD:
		return xdp_forward(ctx, &p, &v);
	}
	return xdp_count(v.reason, XDP_DROP);
}
