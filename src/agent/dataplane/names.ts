// What Cirrus owns in a host's kernel, and how it is recognised: interface names with the
// `cv-` prefix, routing tables in a reserved id range, rules at one preference.

/** Host end of a workload's veth: cv- + 11 hex digits of the interface (VMI) uuid. */
export const HOST_IF_PREFIX = 'cv-';

export function hostIfName(vmiUuid: string): string {
  return HOST_IF_PREFIX + vmiUuid.replace(/-/g, '').slice(0, 11);
}

/** Routing tables of virtual networks: TABLE_BASE + the network's id. */
export const TABLE_BASE = 1_000_000;
export const TABLE_MAX = 1_999_999;

export function tableOf(networkId: number): number {
  return TABLE_BASE + networkId;
}

export function isOwnedTable(table: number): boolean {
  return table >= TABLE_BASE && table <= TABLE_MAX;
}

/** Preference of the rules selecting a network's table by packet mark. */
export const NETWORK_RULE_PREF = 10_000;

/**
 * Packets from a workload are marked with their network's table id (nftables, by ingress
 * interface); one rule per network then selects the table. With fwmark_reflect the
 * kernel's own replies (ICMP errors, echo replies from the gateway, TCP resets) carry the
 * mark too, so they find their way back into the network.
 */
export const markOf = (table: number): number => table;

/** The nftables tables Cirrus owns: `ip cirrus` and `arp cirrus` (nft.ts has their layout). */
export const NFT_TABLE = 'cirrus';
export const NFT_FAMILIES = ['ip', 'arp'] as const;
export type NftFamily = (typeof NFT_FAMILIES)[number];

/** An interface name as an nft element key. */
export const ifKey = (name: string): string => `"${name}"`;

/** Routes and neighbours Cirrus installs carry this protocol number ("proto 77"). */
export const CIRRUS_PROTO = 77;

/** Workload MTU: room for VXLAN's 50 bytes on a 1500-byte underlay. */
export const WORKLOAD_MTU = 1450;

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** Linux interface names: 1-15 characters, no slash, colon or space. */
export function isValidIfName(name: string): boolean {
  return IFNAME.test(name) && name !== '.' && name !== '..';
}

const NETNS_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** A namespace is a name under /run/netns or an absolute path (/proc/PID/ns/net, /var/run/netns/X). */
export function isValidNetns(ns: string): boolean {
  if (ns.startsWith('/')) return /^\/[A-Za-z0-9_.\-/]{1,255}$/.test(ns) && !ns.includes('..');
  return NETNS_NAME.test(ns) && ns !== '.' && ns !== '..';
}

/**
 * A device holding the networks' service addresses (gateways, DNS) as /32s: the host
 * answers from them (ping, and the agent's services) only if they are its own addresses; a
 * `local` route alone receives but cannot reply. An empty bridge: kernels without the
 * dummy driver (this one) have bridges.
 */
export const SERVICE_DEV = 'cvsvc';

/** The host's one VXLAN device (external mode: the VNI and remote come from each route). */
export const VXLAN_DEV = 'cvx';
export const VXLAN_PORT = 4789;

/** Rules selecting a network's table for traffic arriving from the overlay, by VNI. */
export const TUNNEL_RULE_PREF = 10_001;

/**
 * The MAC of a host's VXLAN device, derived from its underlay address: every other host
 * knows the inner destination MAC of what it tunnels there. (Hosts need distinct MACs: a
 * VXLAN device drops what arrives with its own MAC as source.)
 */
export function vxlanMac(underlayIp: string): string {
  return ['02', 'cc', ...underlayIp.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

/**
 * The tunnel's own (outer) route lookup inherits the workload's mark, which would select
 * the network's table: this rule sends the host's VXLAN traffic to the underlay's table.
 */
export const UNDERLAY_RULE_PREF = 9_000;
export const MAIN_TABLE = 254;

/** VNIs of networks without a configured one: AUTO_VNI_BASE + network id (configured VNIs are below). */
export const AUTO_VNI_BASE = 1 << 23;
