// The resource types Cirrus serves: their place in the hierarchy, properties and
// references, as in TF's schema (REFERENCE.md §1). The API, the OpenAPI document and the
// CLI all derive from this registry.

import { type TSchema, Type } from '@sinclair/typebox';
import * as S from './schemas.js';

export const TYPE_NAMES = [
  'global-system-config',
  'domain',
  'project',
  'network-ipam',
  'virtual-network',
  'virtual-machine',
  'virtual-machine-interface',
  'instance-ip',
  'network-policy',
  'security-group',
  'floating-ip-pool',
  'floating-ip',
  'virtual-router',
  'route-target',
] as const;

export type TypeName = (typeof TYPE_NAMES)[number];
export type ParentName = TypeName | 'config-root';

export interface RefDef {
  /** Field name in bodies, e.g. `virtual_network_refs`. */
  field: string;
  target: TypeName;
  /** Schema of the link's `attr`; links without one carry `attr: null`. */
  attr?: TSchema;
  description: string;
}

export interface TypeDef {
  name: TypeName;
  description: string;
  parents: ParentName[];
  properties: Record<string, TSchema>;
  /** Properties the server fills; clients may send them back unchanged (read-modify-write). */
  serverOwned: string[];
  refs: RefDef[];
}

const ref = (field: string, target: TypeName, description: string, attr?: TSchema): RefDef =>
  attr ? { field, target, description, attr } : { field, target, description };

const DEFS: TypeDef[] = [
  {
    name: 'global-system-config',
    description: 'System-wide settings; parent of virtual-routers (default-global-system-config).',
    parents: ['config-root'],
    properties: { autonomous_system: S.IntegerField('BGP AS number of the control nodes (stored)', 1, 4294967295) },
    serverOwned: [],
    refs: [],
  },
  {
    name: 'domain',
    description: 'Administrative domain; parent of projects.',
    parents: ['config-root'],
    properties: {},
    serverOwned: [],
    refs: [],
  },
  {
    name: 'project',
    description: 'Tenant; owns networks, policies, security groups and interfaces. Gets a `default` security group.',
    parents: ['domain'],
    properties: {},
    serverOwned: [],
    refs: [],
  },
  {
    name: 'network-ipam',
    description: 'IP address management settings shared by the networks that reference it.',
    parents: ['project'],
    properties: { network_ipam_mgmt: S.IpamType },
    serverOwned: [],
    refs: [],
  },
  {
    name: 'virtual-network',
    description: 'A virtual network: an address space, a routing instance and a VNI. Subnets come through network_ipam_refs.',
    parents: ['project'],
    properties: {
      virtual_network_properties: S.VirtualNetworkType,
      route_target_list: S.RouteTargetList,
      import_route_target_list: S.RouteTargetList,
      export_route_target_list: S.RouteTargetList,
      router_external: S.Bool('public network: its floating IPs are reachable from outside through the gateway'),
      cirrus_snat: S.Bool("source NAT: the network's workloads reach the outside through the gateway, masqueraded (Cirrus; TF uses a logical router)"),
      is_shared: S.Bool('usable by other projects'),
      port_security_enabled: S.Bool('default for the interfaces of this network'),
      flood_unknown_unicast: S.Bool('flood unknown unicast (L2)'),
      virtual_network_network_id: S.IntegerField('network id assigned by the server: the smallest free integer from 1', 1),
    },
    serverOwned: ['virtual_network_network_id'],
    refs: [
      ref('network_ipam_refs', 'network-ipam', 'IPAM and the subnets of this network', S.VnSubnetsType),
      ref('network_policy_refs', 'network-policy', 'policies applied to this network, ordered by sequence', S.VirtualNetworkPolicyType),
    ],
  },
  {
    name: 'virtual-machine',
    description: 'A workload (VM, container, pod or process) owning interfaces.',
    parents: ['config-root'],
    properties: { server_type: S.Text('free text, e.g. container or baremetal') },
    serverOwned: [],
    refs: [],
  },
  {
    name: 'virtual-machine-interface',
    description: 'A port of a workload in one virtual network. The MAC is allocated when omitted.',
    parents: ['project', 'virtual-machine'],
    properties: {
      virtual_machine_interface_mac_addresses: S.MacAddressesType,
      virtual_machine_interface_bindings: S.KeyValuePairs,
      virtual_machine_interface_allowed_address_pairs: S.AllowedAddressPairs,
      virtual_machine_interface_device_owner: S.Text('owner kind, e.g. compute:nova or network:router_gateway'),
      virtual_machine_interface_disable_policy: S.Bool('TF: bypass policy for this interface (stored, not acted on)'),
      port_security_enabled: S.Bool('false disables security groups and anti-spoofing'),
    },
    serverOwned: [],
    refs: [
      ref('virtual_network_refs', 'virtual-network', 'the network of this interface (exactly one)'),
      ref('virtual_machine_refs', 'virtual-machine', 'the workload owning this interface'),
      ref('security_group_refs', 'security-group', 'security groups applied to this interface'),
    ],
  },
  {
    name: 'instance-ip',
    description: 'An address of an interface in a network; allocated by IPAM when omitted.',
    parents: ['config-root'],
    properties: {
      instance_ip_address: S.Text('IPv4 address'),
      instance_ip_family: Type.Union([Type.Literal('v4'), Type.Literal('v6')], { description: 'address family (Cirrus allocates IPv4)' }),
      subnet_uuid: Type.String({ pattern: S.UuidPattern, description: 'allocate from this subnet' }),
      instance_ip_mode: Type.Union([Type.Literal('active-active'), Type.Literal('active-standby')], { description: 'TF: how an address shared by several interfaces is used (stored)' }),
      instance_ip_secondary: S.Bool('TF: a secondary address of the interface (stored)'),
    },
    serverOwned: [],
    refs: [
      ref('virtual_network_refs', 'virtual-network', 'the network the address belongs to'),
      ref('virtual_machine_interface_refs', 'virtual-machine-interface', 'the interface(s) holding the address'),
    ],
  },
  {
    name: 'network-policy',
    description: 'Rules deciding which traffic may pass between virtual networks.',
    parents: ['project'],
    properties: { network_policy_entries: S.PolicyEntriesType },
    serverOwned: [],
    refs: [],
  },
  {
    name: 'security-group',
    description: 'Stateful per-interface filter rules (ingress and egress).',
    parents: ['project'],
    properties: {
      security_group_entries: S.PolicyEntriesType,
      security_group_id: S.IntegerField('numeric id assigned by the server, from 8000000 (as TF)', 1),
      configured_security_group_id: S.IntegerField('TF: user-chosen id, 0 = allocate (stored; security_group_id is always allocated)', 0),
    },
    serverOwned: ['security_group_id'],
    refs: [],
  },
  {
    name: 'floating-ip-pool',
    description: 'A pool of floating addresses drawn from its parent network.',
    parents: ['virtual-network'],
    properties: { floating_ip_pool_subnets: S.FloatingIpPoolSubnetType },
    serverOwned: [],
    refs: [],
  },
  {
    name: 'floating-ip',
    description: 'An address of the pool network given to one interface (NAT) or to several (ECMP service address).',
    parents: ['floating-ip-pool'],
    properties: {
      floating_ip_address: S.Text('IPv4 address; allocated when omitted'),
      floating_ip_fixed_ip_address: S.Text('which address of the interface to translate to'),
      floating_ip_address_family: Type.Union([Type.Literal('v4'), Type.Literal('v6')], { description: 'v4 (v6 is refused)' }),
      floating_ip_is_virtual_ip: S.Bool('TF: virtual IP of a load balancer (stored)'),
    },
    serverOwned: [],
    refs: [
      ref('virtual_machine_interface_refs', 'virtual-machine-interface', 'back ends; more than one means ECMP'),
      ref('project_refs', 'project', 'projects using this floating IP'),
    ],
  },
  {
    name: 'virtual-router',
    description: 'A compute host running the Cirrus agent.',
    parents: ['global-system-config'],
    properties: {
      virtual_router_ip_address: S.Text('underlay (tunnel endpoint) address of the host'),
      virtual_router_type: Type.Union([Type.Literal('embedded'), Type.Literal('tor-agent'), Type.Literal('tor-service-node')], { description: 'TF: kind of vRouter (stored)' }),
      virtual_router_dpdk_enabled: S.Bool('unused by Cirrus'),
      cirrus_gateway: S.Bool('the host connects external and SNAT networks to the outside (Cirrus; set by its agent)'),
    },
    serverOwned: [],
    refs: [ref('virtual_machine_refs', 'virtual-machine', 'workloads placed on this host')],
  },
  {
    name: 'route-target',
    description: 'A BGP route target (fq_name ["target:ASN:N"]).',
    parents: ['config-root'],
    properties: {},
    serverOwned: [],
    refs: [],
  },
];

export const TYPES: ReadonlyMap<TypeName, TypeDef> = new Map(DEFS.map((d) => [d.name, d]));

export function isTypeName(name: string): name is TypeName {
  return TYPES.has(name as TypeName);
}

export function typeDef(name: TypeName): TypeDef {
  return TYPES.get(name)!;
}

/** `virtual-network` → `virtual_network`. */
export function underscored(name: string): string {
  return name.replace(/-/g, '_');
}

/** TF's collection path segment: `virtual-network` → `virtual-networks`, `network-policy` → `network-policys`. */
export function plural(name: TypeName): string {
  return `${name}s`;
}

/** Field listing the children of type `child` on their parent: `virtual_networks`. */
export function childrenField(child: TypeName): string {
  return `${underscored(child)}s`;
}

/** Field listing the objects of type `from` referring to an object: `instance_ip_back_refs`. */
export function backRefField(from: TypeName): string {
  return `${underscored(from)}_back_refs`;
}

/** Types that may be children of `parent`. */
export function childTypes(parent: TypeName): TypeName[] {
  return DEFS.filter((d) => d.parents.includes(parent)).map((d) => d.name);
}

/** Properties every type carries. */
export const COMMON_PROPERTIES: Record<string, TSchema> = {
  display_name: S.Text('human-readable name (defaults to the last fq_name element)'),
  id_perms: S.IdPermsType,
  perms2: Type.Object({}, { additionalProperties: true, description: 'ownership and sharing (stored, not enforced)' }),
  annotations: S.KeyValuePairs,
};

/** Map-valued properties (TF's MapProperty): a wrapper list keyed by one member. */
export const MAP_PROPERTIES: Record<string, { list: string; key: string }> = {
  annotations: { list: 'key_value_pair', key: 'key' },
  virtual_machine_interface_bindings: { list: 'key_value_pair', key: 'key' },
};
