/* Small packet helpers shared by the entry programs: checksums, the flow hash used to spread
 * flows over bouncers/dividers, ARP replies, the outer-header rewrite used when a packet is
 * bounced/divided, and config lookup.
 */
#ifndef CEN_HELPERS_H
#define CEN_HELPERS_H

#include "geneve.h"
#include "maps.h"

static __always_inline __u16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Full checksum of a 20-byte IPv4 header (caller checked bounds). */
static __always_inline void ipv4_set_csum(struct iphdr *ip)
{
	__u32 sum = 0;
	__u16 *p = (__u16 *)ip;
	ip->check = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += p[i];
	ip->check = csum_fold32(sum);
}

/* Stable, symmetric hash of (src, dst): both directions of a flow pick the same bouncer.
 * Mirrored in ctl/transit/flowhash.py for the trace tool. */
static __always_inline __u32 cen_flow_hash(__u32 a, __u32 b)
{
	__u32 lo = a < b ? a : b;
	__u32 hi = a < b ? b : a;
	__u32 h = lo * 0x9E3779B1u;
	h ^= hi;
	h ^= h >> 16;
	h *= 0x85EBCA6Bu;
	h ^= h >> 13;
	h *= 0xC2B2AE35u;
	h ^= h >> 16;
	return h;
}

/* hash % n as an index the verifier can bound (the barrier keeps clang from dropping the mask).
 * n is 1..8 (CEN_MAX_BOUNCERS == CEN_MAX_DIVIDERS == 8), checked by the callers. */
static __always_inline __u32 cen_pick(__u32 hash, __u32 n)
{
	__u32 i = hash % n;
	asm volatile("" : "+r"(i));
	return i & 7;
}

/* Geneve source port from the flow hash over the whole ephemeral range 49152..65535. */
static __always_inline __be16 cen_src_port(__u32 h)
{
	return bpf_htons((__u16)(49152 + (h & 0x3fff)));
}

static __always_inline struct cen_config *cen_config_get(void)
{
	u32 zero = 0;
	struct cen_config *cfg = config.lookup(&zero);
	if (cfg && cfg->host_ip == 0)
		return 0;
	return cfg;
}

/* Turn an ARP request for `ip` into the reply from `mac`, in place. */
static __always_inline void arp_reply_inplace(struct ethhdr *eth, struct arp_eth *arp, const __u8 *mac)
{
	__be32 tip = arp->tpa;
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	arp->op = bpf_htons(ARP_OP_REPLY);
	__builtin_memcpy(arp->tha, arp->sha, ETH_ALEN);
	arp->tpa = arp->spa;
	__builtin_memcpy(arp->sha, mac, ETH_ALEN);
	arp->spa = tip;
}

/* Send a frame back out of the interface it came in on. Not XDP_TX: on a native-mode veth,
 * XDP_TX only wakes the peer when the peer has an XDP program of its own, whereas a redirect
 * (ndo_xdp_xmit with flush) is delivered whenever the peer has NAPI (an XDP program or GRO).
 * On a physical NIC both are equivalent. */
static __always_inline int cen_send_back(struct xdp_md *ctx)
{
	return bpf_redirect(ctx->ingress_ifindex, 0);
}

/* Point the outer headers of a Geneve packet at another host; the caller sends it back out. */
static __always_inline void outer_retarget(struct ethhdr *eth, struct iphdr *ip, struct udphdr *udp,
					   const struct cen_config *cfg, __be32 dst_ip, const __u8 *dst_mac)
{
	__builtin_memcpy(eth->h_dest, dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, cfg->host_mac, ETH_ALEN);
	ip->saddr = cfg->host_ip;
	ip->daddr = dst_ip;
	ipv4_set_csum(ip);
	udp->check = 0; /* optional for IPv4; the pseudo header changed */
}

#endif
