/* Geneve wire format (RFC 8926) and the Centaurus option layout.
 *
 * Everything here is in network byte order on the wire. The Centaurus option class is
 * CEN_OPT_CLASS (0xFFF1, from the IANA "experimental use" range) and is compared with
 * bpf_htons(), never as a host-order integer (Mizar's mistake). The one option we emit,
 * "source host", tells the receiver which substrate host the inner source endpoint lives
 * on, so that it can learn a direct path and stop using the bouncer.
 */
#ifndef CEN_GENEVE_H
#define CEN_GENEVE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>

#define GENEVE_UDP_PORT 6081
#define GENEVE_PROTO_ETH 0x6558 /* Transparent Ethernet Bridging */

#define CEN_OPT_CLASS 0xFFF1
#define CEN_OPT_TYPE_SRC_HOST 0x01 /* not critical: receivers that do not know it skip it */
#define GENEVE_OPT_CRITICAL 0x80   /* high bit of the option type */
#define GENEVE_MAX_OPTS 8          /* options walked per packet (bounded loop) */

/* 8-byte base header. ver_optlen = version (2 bits) | option length in 4-byte words (6 bits). */
struct geneve_hdr {
	__u8 ver_optlen;
	__u8 flags; /* O (0x80) | C (0x40) */
	__be16 proto;
	__u8 vni[3];
	__u8 rsvd;
} __attribute__((packed));

/* The 24-bit VNI as a host-order number (how the maps key it), and back. */
static __always_inline __u32 cen_geneve_vni(const struct geneve_hdr *g)
{
	return ((__u32)g->vni[0] << 16) | ((__u32)g->vni[1] << 8) | g->vni[2];
}

static __always_inline void cen_geneve_set_vni(struct geneve_hdr *g, __u32 vni)
{
	g->vni[0] = (vni >> 16) & 0xff;
	g->vni[1] = (vni >> 8) & 0xff;
	g->vni[2] = vni & 0xff;
}

/* 4-byte option header; len is in 4-byte words and excludes this header. */
struct geneve_opt_hdr {
	__be16 opt_class;
	__u8 type;
	__u8 len; /* low 5 bits */
} __attribute__((packed));

/* The "source host" option: 4 bytes of header + 12 bytes of data (len = 3). */
struct cen_opt_src_host {
	struct geneve_opt_hdr hdr;
	__be32 host_ip;
	__u8 host_mac[6];
	__u16 rsvd;
} __attribute__((packed));

/* Everything transit_agent puts in front of an endpoint's frame: 66 bytes. */
struct cen_encap_hdr {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
	struct geneve_hdr gnv;
	struct cen_opt_src_host opt;
} __attribute__((packed));

#define CEN_ENCAP_LEN (sizeof(struct cen_encap_hdr))
#define CEN_OUTER_FIXED_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct geneve_hdr))

/* ARP for IPv4 over Ethernet. */
struct arp_eth {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__be32 spa;
	__u8 tha[6];
	__be32 tpa;
} __attribute__((packed));

#define ARP_OP_REQUEST 1
#define ARP_OP_REPLY 2

#endif
