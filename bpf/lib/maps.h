/* Map layouts shared by the entry programs and the transit daemon.
 *
 * Declared once here: the daemon (agent/transit/) gets the key/value layouts from bcc, which
 * builds ctypes classes from these very structs, so Python never restates them. Every map is
 * pinned under CEN_PIN_DIR (/sys/fs/bpf/centaurus/<host>/ passed by the loader), so a restarted
 * daemon and freshly loaded programs find the same state, and attached programs keep
 * forwarding while no daemon runs.
 *
 * Conventions: IPv4 addresses are __be32 exactly as in the packet; VNIs are host-order __u32.
 */
#ifndef CEN_MAPS_H
#define CEN_MAPS_H

#ifndef CEN_PIN_DIR
#define CEN_PIN_DIR "/sys/fs/bpf/centaurus/default"
#endif
#define CEN_PIN(name) CEN_PIN_DIR "/" #name

#define CEN_MAX_BOUNCERS 8
#define CEN_MAX_DIVIDERS 8

/* config[0]: who this host is on the substrate. */
struct cen_config {
	__be32 host_ip;
	__u8 host_mac[6];
	__u16 pad;
	__u32 substrate_ifindex;
	__u32 mtu;          /* substrate MTU: longer frames (GSO, generic mode) are left to TC */
	__u64 learn_ttl_ns; /* learned direct paths older than this are not used */
};

/* endpoints: (vni, ip) -> where the endpoint lives. Programmed on the endpoint's host and on
 * its subnet's bouncers. Gateway entries (host_ip 0) only answer ARP. */
struct cen_ep_key {
	__u32 vni;
	__be32 ip;
};

#define CEN_EP_F_LOCAL 0x1   /* lives on this host: ifindex is the host-side veth */
#define CEN_EP_F_GATEWAY 0x2 /* subnet gateway: ARP answer only */

struct cen_endpoint {
	__u8 mac[6];
	__u8 host_mac[6];
	__be32 host_ip;
	__u32 ifindex;
	__u32 flags;
};

/* nets: LPM (vni, prefix) -> subnet and its bouncers. prefixlen counts the 32 VNI bits. */
struct cen_net_key {
	__u32 prefixlen;
	__u32 vni;
	__be32 ip;
};

#define CEN_NET_F_BOUNCER 0x1 /* this host is one of the subnet's bouncers */

struct cen_net {
	__be32 cidr_ip;
	__u32 cidr_len;
	__u32 flags;
	__u32 nbouncers;
	__be32 bouncers[CEN_MAX_BOUNCERS];
};

/* vpcs: vni -> the VPC's dividers. */
#define CEN_VPC_F_DIVIDER 0x1 /* this host is one of the VPC's dividers */

struct cen_vpc {
	__u32 flags;
	__u32 ndividers;
	__be32 dividers[CEN_MAX_DIVIDERS];
};

/* substrate: host ip -> host mac (next hop on the substrate). */
struct cen_substrate {
	__u8 mac[6];
	__u16 pad;
};

/* agent_md: host-side veth ifindex -> the endpoint behind it. */
struct cen_agent_md {
	__u32 vni;
	__be32 ip;
	__u8 mac[6];
	__u16 pad;
};

/* ep_cache: (vni, ip) -> host learned from the source-host option (direct path). */
struct cen_ep_cache {
	__be32 host_ip;
	__u8 host_mac[6];
	__u16 pad;
	__u64 ts_ns;
};

BPF_TABLE_PINNED("array", u32, struct cen_config, config, 1, CEN_PIN(config));
BPF_TABLE_PINNED("hash", struct cen_ep_key, struct cen_endpoint, endpoints, 65536, CEN_PIN(endpoints));
BPF_TABLE_PINNED("lpm_trie", struct cen_net_key, struct cen_net, nets, 4096, CEN_PIN(nets), BPF_F_NO_PREALLOC);
BPF_TABLE_PINNED("hash", u32, struct cen_vpc, vpcs, 4096, CEN_PIN(vpcs));
BPF_TABLE_PINNED("hash", __be32, struct cen_substrate, substrate, 4096, CEN_PIN(substrate));
BPF_TABLE_PINNED("hash", u32, struct cen_agent_md, agent_md, 4096, CEN_PIN(agent_md));
BPF_TABLE_PINNED("lru_hash", struct cen_ep_key, struct cen_ep_cache, ep_cache, 65536, CEN_PIN(ep_cache));
#endif
