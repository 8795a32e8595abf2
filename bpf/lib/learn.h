/* Learning direct paths: what the host that decapsulates a packet remembers about its sender.
 *
 * The Centaurus source-host option names the host where the inner source endpoint lives.
 * transit_xdp (every decapsulated frame) and transit_decap_tc (GSO packets) both record it in
 * ep_cache as (VNI, inner source IP) -> that host, and the agent programs then send replies
 * straight there instead of through a bouncer (lib/agent_path.h). One helper, so both programs
 * learn and refresh by the same rule.
 */
#ifndef CEN_LEARN_H
#define CEN_LEARN_H

#include <linux/if_ether.h>

#include "maps.h"
#include "counters.h"

/* Remember that `src_ip` in `vni` lives on (host_ip, host_mac), unless that host is this one.
 * The entry is only rewritten when the host changed or a quarter of the learn TTL has passed,
 * so a steady flow refreshes it a few times per TTL instead of writing the map per packet. */
static __always_inline void cen_learn(const struct cen_config *cfg, __u32 vni, __be32 src_ip, __be32 host_ip,
				      const __u8 *host_mac)
{
	if (host_ip == cfg->host_ip)
		return;
	struct cen_ep_key sk = {.vni = vni, .ip = src_ip};
	struct cen_ep_cache *c = ep_cache.lookup(&sk);
	__u64 now = bpf_ktime_get_ns();
	if (c && c->host_ip == host_ip && now - c->ts_ns <= (cfg->learn_ttl_ns >> 2))
		return;
	struct cen_ep_cache v = {.host_ip = host_ip, .ts_ns = now};
	__builtin_memcpy(v.host_mac, host_mac, ETH_ALEN);
	ep_cache.update(&sk, &v);
	xdp_count(XDP_C_INFO_LEARN, 0);
}

#endif
