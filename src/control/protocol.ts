// The control node ↔ agent protocol over WebSocket (JSON text frames).
//
// A host's desired state is a document of keyed entries: `n/<network>` (a network it
// forwards for), `p/<interface>` (an interface bound to it), `r/<network>/<address>` (an
// address of the network on another host: tunnel to it), `l/<network>/<peer>` (the
// peer network's routes are leaked into the network), `s/<group>` (a security group of
// one of its interfaces) and `a/<network>/<policy>` (a policy's rules as compiled for a
// network: a network's rules are its policies' blocks in order, so that a change of one
// policy travels, and is rendered again, alone). The control node sends the whole
// document on connect (`sync`), then ordered changes (`delta`, seq + 1 each); a gap means
// the agent reconnects and gets a fresh sync.

import { type Static, Type } from '@sinclair/typebox';
import { Ajv } from 'ajv';

export const PROTOCOL_PATH = '/cirrus/v1/agent';

const Ipv4 = Type.String({ pattern: '^(\\d{1,3}\\.){3}\\d{1,3}$' });
const Id = Type.Integer({ minimum: 0, maximum: 0xffffffff });

const Cidr = Type.String({ pattern: '^(\\d{1,3}\\.){3}\\d{1,3}/\\d{1,2}$' });
const PortRange = Type.Tuple([Type.Integer({ minimum: 0, maximum: 65535 }), Type.Integer({ minimum: 0, maximum: 65535 })]);

/** One directional rule of a network's policies (acl.ts): first match wins. */
export const AclRule = Type.Object({
  /** The policy rule it comes from (flow records and counters name it). */
  uuid: Type.String(),
  action: Type.Union([Type.Literal('pass'), Type.Literal('deny')]),
  /** IP protocol number; absent: any. */
  protocol: Type.Optional(Type.Integer({ minimum: 0, maximum: 255 })),
  /** CIDRs; null: any address; empty: nothing matches. */
  src: Type.Union([Type.Array(Cidr), Type.Null()]),
  dst: Type.Union([Type.Array(Cidr), Type.Null()]),
  sports: Type.Optional(Type.Array(PortRange)),
  dports: Type.Optional(Type.Array(PortRange)),
});
export type AclRule = Static<typeof AclRule>;

export const NetworkEntry = Type.Object({
  uuid: Type.String(),
  name: Type.String(),
  id: Id,
  vni: Type.Integer({ minimum: 1, maximum: 0xffffff }),
  subnets: Type.Array(Type.String()),
  /** Addresses the host answers for in this network (gateways, DNS addresses). */
  serviceAddresses: Type.Array(Ipv4),
  /** Its policies in order (uuids; absent: no policy): their rules are the `a/<network>/<policy>` entries. */
  policies: Type.Optional(Type.Array(Type.String())),
  /** router_external: reachable from outside through the gateways. */
  external: Type.Optional(Type.Boolean()),
  /** Its workloads reach the outside through the gateways, masqueraded. */
  snat: Type.Optional(Type.Boolean()),
  /** Underlay addresses of the gateway hosts (external or SNAT networks only). */
  gateways: Type.Optional(Type.Array(Ipv4)),
});
export type NetworkEntry = Static<typeof NetworkEntry>;

/** What the agent's DHCP server gives an interface beyond its address and gateway: from its subnet. */
export const DhcpEntry = Type.Object({
  /** enable_dhcp false: the agent does not answer. */
  disabled: Type.Optional(Type.Literal(true)),
  /** The subnet's DNS (service) address. */
  dns: Type.Optional(Ipv4),
  /** From dhcp_option_list: lease time (51), DNS servers (6), domain name (15), MTU (26). */
  leaseTime: Type.Optional(Type.Integer({ minimum: 1, maximum: 0xffffffff })),
  dnsServers: Type.Optional(Type.Array(Ipv4)),
  domainName: Type.Optional(Type.String({ maxLength: 253 })),
  mtu: Type.Optional(Type.Integer({ minimum: 68, maximum: 65535 })),
  /** host_routes (option 121). */
  routes: Type.Optional(Type.Array(Type.Object({ prefix: Cidr, nextHop: Ipv4 }))),
});
export type DhcpEntry = Static<typeof DhcpEntry>;

export const PortEntry = Type.Object({
  vmiUuid: Type.String(),
  network: Type.String(),
  mac: Type.Optional(Type.String()),
  address: Type.Optional(Ipv4),
  prefixLen: Type.Optional(Type.Integer({ minimum: 0, maximum: 32 })),
  gateway: Type.Optional(Ipv4),
  /** Other sources it may send from (allowed_address_pairs: CIDR, and a MAC or its own). */
  allowedAddressPairs: Type.Optional(Type.Array(Type.Object({ cidr: Cidr, mac: Type.Optional(Type.String()) }))),
  /** Its security groups (uuids; `s/` entries): absent or empty, no security-group filtering. */
  securityGroups: Type.Optional(Type.Array(Type.String())),
  /** false: no anti-spoofing nor security groups (port_security_enabled, the interface's or its network's). */
  portSecurity: Type.Optional(Type.Boolean()),
  /** Its virtual machine and project (for introspect). */
  vm: Type.Optional(Type.Object({ uuid: Type.String(), name: Type.String() })),
  project: Type.Optional(Type.String()),
  /** Why the interface cannot be plumbed yet (its configuration is incomplete). */
  pending: Type.Optional(Type.String()),
  dhcp: Type.Optional(DhcpEntry),
});
export type PortEntry = Static<typeof PortEntry>;

/** A security group: what its members may receive (ingress) and send (egress); rules only allow. */
export const SgEntry = Type.Object({
  uuid: Type.String(),
  name: Type.String(),
  ingress: Type.Array(AclRule),
  egress: Type.Array(AclRule),
});
export type SgEntry = Static<typeof SgEntry>;

/** One policy's rules as compiled for one network (acl.ts), in order. */
export const AclBlockEntry = Type.Object({ network: Type.String(), policy: Type.String(), rules: Type.Array(AclRule) });
export type AclBlockEntry = Static<typeof AclBlockEntry>;

/** `name`: the instance (virtual machine) the address belongs to, for the agents' DNS. */
export const RouteEntry = Type.Object({ network: Type.String(), address: Ipv4, vtep: Ipv4, name: Type.Optional(Type.String()) });
export type RouteEntry = Static<typeof RouteEntry>;

/** A back end of a floating IP: an interface, its address and network, and its host's underlay address. */
export const FloatingBackend = Type.Object({ vmiUuid: Type.String(), address: Ipv4, network: Type.String(), vtep: Type.Optional(Ipv4) });
export type FloatingBackend = Static<typeof FloatingBackend>;

/** A floating IP of `network`: one back end (NAT) or several (ECMP service address). */
export const FloatingEntry = Type.Object({
  uuid: Type.String(),
  network: Type.String(),
  address: Ipv4,
  backends: Type.Array(FloatingBackend),
});
export type FloatingEntry = Static<typeof FloatingEntry>;

export const LeakEntry = Type.Object({ network: Type.String(), peer: Type.String() });
export type LeakEntry = Static<typeof LeakEntry>;

export type EntryValue = NetworkEntry | PortEntry | RouteEntry | LeakEntry | SgEntry | FloatingEntry | AclBlockEntry;
export type Entry = [key: string, value: EntryValue];

const EntrySchema = Type.Tuple([Type.String({ pattern: '^[nprlsfa]/' }), Type.Union([NetworkEntry, PortEntry, RouteEntry, LeakEntry, SgEntry, FloatingEntry, AclBlockEntry])]);

export const netKey = (network: string) => `n/${network}`;
export const portKey = (vmi: string) => `p/${vmi}`;
export const routeKey = (network: string, address: string) => `r/${network}/${address}`;
export const leakKey = (network: string, peer: string) => `l/${network}/${peer}`;
export const sgKey = (sg: string) => `s/${sg}`;
export const floatingKey = (fip: string) => `f/${fip}`;
export const aclKey = (network: string, policy: string) => `a/${network}/${policy}`;

/** Agent → control node, first message: who it is. */
export const Hello = Type.Object({
  type: Type.Literal('hello'),
  host: Type.String({ minLength: 1, maxLength: 255 }),
  underlayIp: Type.Optional(Ipv4),
  /** The host connects external and SNAT networks to the outside. */
  gateway: Type.Optional(Type.Boolean()),
});
export type Hello = Static<typeof Hello>;

/**
 * Agent → control node, after hello and whenever they change: the interfaces registered on
 * the host. An interface without a host binding in the configuration (TF's manual flow:
 * the port is added to the agent, nothing says where) gets bound to this host.
 */
export const Ports = Type.Object({ type: Type.Literal('ports'), vmis: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 100_000 }) });
export type Ports = Static<typeof Ports>;

export const Sync = Type.Object({ type: Type.Literal('sync'), seq: Type.Integer({ minimum: 0 }), node: Type.String(), entries: Type.Array(EntrySchema) });
export type Sync = Static<typeof Sync>;

export const Delta = Type.Object({
  type: Type.Literal('delta'),
  seq: Type.Integer({ minimum: 0 }),
  set: Type.Array(EntrySchema),
  del: Type.Array(Type.String()),
});
export type Delta = Static<typeof Delta>;

export type ControlMessage = Sync | Delta;

const ajv = new Ajv({ strict: false });
const checkHello = ajv.compile<Hello>(Hello);
const checkPorts = ajv.compile<Ports>(Ports);
const checkControl = ajv.compile<ControlMessage>(Type.Union([Sync, Delta]));

function parse<T>(data: string, check: ((v: unknown) => v is T) & { errors?: unknown }, what: string): T {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    throw new Error(`${what}: not JSON`);
  }
  if (!check(v)) throw new Error(`${what}: ${ajv.errorsText(check.errors as never)}`);
  return v;
}

export const parseHello = (data: string): Hello => parse(data, checkHello, 'hello');
export const parsePorts = (data: string): Ports => parse(data, checkPorts, 'ports');
export const parseControlMessage = (data: string): ControlMessage => parse(data, checkControl, 'control message');

/** Entries' serialisations, made once: the same entry (a policy block: hundreds of KB) goes to every host that sees it. Entries are never changed once made. */
const serialised = new WeakMap<EntryValue, string>();
export function entryJson(value: EntryValue): string {
  let json = serialised.get(value);
  if (json === undefined) serialised.set(value, (json = JSON.stringify(value)));
  return json;
}

/** A sync or delta as sent: JSON, each entry written from its serialisation. */
export function encodeControlMessage(msg: ControlMessage): string {
  const entries = (list: Entry[]) => `[${list.map(([key, value]) => `[${JSON.stringify(key)},${entryJson(value)}]`).join(',')}]`;
  return msg.type === 'sync'
    ? `{"type":"sync","seq":${msg.seq},"node":${JSON.stringify(msg.node)},"entries":${entries(msg.entries)}}`
    : `{"type":"delta","seq":${msg.seq},"set":${entries(msg.set)},"del":${JSON.stringify(msg.del)}}`;
}
