// The topology file's structure (docs/topology.md): a TypeBox schema checked with Ajv, so
// that a typo or a wrong type is reported with its place in the file. What the structure
// cannot say (rule syntax, CIDRs, names that must exist) is checked in desired.ts.

import { type Static, Type } from '@sinclair/typebox';

const Name = (what: string) =>
  Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$', description: `${what}: letters, digits, _ . - (up to 63)` });
/** NAME of the file's project, or DOMAIN:PROJECT:NAME of another one. */
const Ref = (what: string) => Type.String({ minLength: 1, description: `${what}: NAME or DOMAIN:PROJECT:NAME` });
const Strict = <T extends Parameters<typeof Type.Object>[0]>(props: T, description: string) =>
  Type.Object(props, { additionalProperties: false, description });

export const SubnetSpec = Type.Union(
  [
    Type.String({ description: 'a CIDR' }),
    Strict(
      {
        cidr: Type.String({ description: 'a.b.c.d/n' }),
        gateway: Type.Optional(Type.String({ description: 'gateway address (default: first address)' })),
        dns: Type.Optional(Type.String({ description: 'DNS/service address (default: second address)' })),
      },
      'a subnet',
    ),
  ],
  { description: 'a CIDR string or {cidr, gateway, dns}' },
);

export const NetworkSpec = Strict(
  {
    name: Name('network name'),
    subnets: Type.Optional(Type.Array(SubnetSpec)),
    vni: Type.Optional(Type.Integer({ minimum: 1, maximum: 8388607, description: 'VXLAN network identifier 1-8388607 (allocated when omitted)' })),
    router_external: Type.Optional(Type.Boolean({ description: 'public network: its floating IPs are reachable from outside' })),
    is_shared: Type.Optional(Type.Boolean({ description: 'usable by other projects' })),
    snat: Type.Optional(Type.Boolean({ description: "workloads reach outside through the gateway's source NAT (network property cirrus_snat)" })),
    policies: Type.Optional(Type.Array(Ref('policy'), { description: 'policies applied to the network, first listed first' })),
  },
  'a network',
);

export const PolicySpec = Strict(
  {
    name: Name('policy name'),
    rules: Type.Array(Type.String({ description: "a rule: 'ACTION PROTOCOL SRC [PORTS] >|<> DST [PORTS]'" }), { minItems: 1 }),
  },
  'a network policy',
);

export const SecurityGroupSpec = Strict(
  {
    name: Name('security group name'),
    rules: Type.Optional(Type.Array(Type.String({ description: "a rule: 'ingress|egress PROTOCOL PEER [PORTS]'" }))),
  },
  'a security group',
);

export const FloatingIpSpec = Strict(
  {
    name: Name('floating IP name'),
    network: Ref('network the address comes from'),
    address: Type.Optional(Type.String({ description: 'the address (allocated when omitted)' })),
    ports: Type.Array(Ref('workload or port'), { minItems: 1, description: 'workloads (or ports) behind the address; several: ECMP' }),
  },
  'a floating IP',
);

export const WorkloadSpec = Strict(
  {
    name: Name('workload name'),
    host: Type.String({ minLength: 1, description: 'lab host (h1..hN)' }),
    network: Ref('network'),
    address: Type.Optional(Type.String({ description: 'fixed address (allocated when omitted)' })),
    security_groups: Type.Optional(Type.Array(Ref('security group'))),
    command: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'a list: a program and its arguments (no shell), kept running in the workload' })),
  },
  'a lab workload',
);

export const TopologySchema = Strict(
  {
    name: Type.Optional(
      Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$', description: 'topology name: lower-case letters, digits, . _ - (default: the file name)' }),
    ),
    project: Type.Optional(Type.String({ pattern: '^[^:]+(:[^:]+)?$', description: 'PROJECT or DOMAIN:PROJECT' })),
    networks: Type.Optional(Type.Array(NetworkSpec)),
    policies: Type.Optional(Type.Array(PolicySpec)),
    security_groups: Type.Optional(Type.Array(SecurityGroupSpec)),
    floating_ips: Type.Optional(Type.Array(FloatingIpSpec)),
    workloads: Type.Optional(Type.Array(WorkloadSpec)),
  },
  'a topology',
);

export type Topology = Static<typeof TopologySchema>;
export type NetworkSpecT = Static<typeof NetworkSpec>;
export type WorkloadSpecT = Static<typeof WorkloadSpec>;
