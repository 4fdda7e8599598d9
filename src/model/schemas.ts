// JSON schemas of the property structures Cirrus understands, named after TF's
// vnc_cfg.xsd types. Nested structures accept fields Cirrus does not model (TF's clients
// send many of them, mostly null or empty); the fields listed are type-checked.

import { type TSchema, Type } from '@sinclair/typebox';

const Struct = <T extends Parameters<typeof Type.Object>[0]>(props: T, description?: string) =>
  Type.Object(props, { additionalProperties: true, ...(description ? { description } : {}) });

const Opt = Type.Optional;
const Str = (description?: string) => Type.String(description ? { description } : {});
const Int = (min?: number, max?: number, description?: string) =>
  Type.Integer({ ...(min !== undefined ? { minimum: min } : {}), ...(max !== undefined ? { maximum: max } : {}), ...(description ? { description } : {}) });
const Flag = (description: string) => Type.Boolean({ description });

export const UuidPattern = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
export const Uuid = Type.String({ pattern: UuidPattern, description: 'UUID' });
export const FqName = Type.Array(Type.String({ minLength: 1, maxLength: 255 }), {
  minItems: 1,
  maxItems: 10,
  description: 'Fully qualified name: the parent\'s fq_name and the name, e.g. ["default-domain","admin","red"]',
});

export const SubnetType = Struct(
  {
    ip_prefix: Str('network address, e.g. 192.168.10.0'),
    ip_prefix_len: Int(0, 32, 'prefix length, e.g. 24'),
  },
  'an IPv4 prefix',
);

export const SequenceType = Struct(
  { major: Int(undefined, undefined, 'lower comes first'), minor: Int(undefined, undefined, 'orders equal majors') },
  'position in an ordered list',
);

export const KeyValuePairs = Struct(
  { key_value_pair: Opt(Type.Array(Struct({ key: Str(), value: Opt(Str()) }))) },
  'key-value pairs (a map property: prop-collection-get and prop-collection-update address its elements by key)',
);

export const RouteTableType = Struct(
  { route: Opt(Type.Array(Struct({ prefix: Str('CIDR'), next_hop: Opt(Str('next-hop address')), next_hop_type: Opt(Str('ip-address (the only kind used)')) }))) },
  'routes given to workloads by DHCP (option 121, classless static routes)',
);

export const DhcpOptionsListType = Struct(
  {
    dhcp_option: Opt(
      Type.Array(Struct({ dhcp_option_name: Str('option number or name: 6 (DNS servers), 15 (domain name), 26 (MTU), 51 (lease time)'), dhcp_option_value: Opt(Str('the value as text')), dhcp_option_value_bytes: Opt(Str('unused by Cirrus')) })),
    ),
  },
  "DHCP options the agent serves for the subnet, replacing its defaults (others are ignored)",
);

export const IpamSubnetType = Struct({
  subnet: SubnetType,
  default_gateway: Opt(Str('gateway address; allocated when omitted (.254 or .1 with addr_from_start)')),
  dns_server_address: Opt(Str('DNS/service address; allocated when omitted (.253 or .2)')),
  subnet_uuid: Opt(Type.String({ pattern: UuidPattern, description: 'id of the subnet; assigned when omitted' })),
  subnet_name: Opt(Str('free text')),
  enable_dhcp: Opt(Flag("false: the agent's DHCP service does not answer for this subnet (default true)")),
  dns_nameservers: Opt(Type.Array(Str(), { description: 'stored; not served yet (DNS servers come from dhcp_option_list option 6, else the subnet\'s DNS address)' })),
  allocation_pools: Opt(
    Type.Array(Struct({ start: Str('first address'), end: Str('last address'), vrouter_specific_pool: Opt(Type.Boolean()) }), {
      description: 'ranges automatic allocation draws from (the whole subnet when none)',
    }),
  ),
  addr_from_start: Opt(Flag('allocate upwards from the start of the subnet, with gateway .1 and DNS .2 (default: downwards from the end)')),
  dhcp_option_list: Opt(DhcpOptionsListType),
  host_routes: Opt(RouteTableType),
  alloc_unit: Opt(Int(1)),
});

export const VnSubnetsType = Struct({
  ipam_subnets: Opt(Type.Array(IpamSubnetType, { description: 'the subnets of the network (IPv4, /8 to /29)' })),
  host_routes: Opt(RouteTableType),
});

export const VirtualNetworkPolicyType = Struct({
  sequence: Opt(SequenceType),
  timer: Opt(Struct({}, 'TF: a time window for the policy (stored, not acted on)')),
});

export const PortType = Struct(
  { start_port: Int(-1, 65535, 'first port; -1 for any'), end_port: Int(-1, 65535, 'last port; -1 for up to 65535') },
  'a port range',
);

export const AddressType = Struct({
  virtual_network: Opt(Str('fq_name string of a network, "any", or "local"')),
  subnet: Opt(SubnetType),
  security_group: Opt(Str('fq_name string of a security group, "local" or "any"')),
  network_policy: Opt(Str('fq_name string of a network policy (accepted; Cirrus matches no address with it)')),
  subnet_list: Opt(Type.Array(SubnetType, { description: 'several prefixes' })),
}, 'one end of a rule: exactly one of virtual_network, subnet (or subnet_list), security_group, network_policy');

export const SimpleAction = Type.Union([Type.Literal('pass'), Type.Literal('deny'), Type.Literal('drop'), Type.Literal('reject')]);

export const ActionListType = Struct({
  simple_action: Opt(Type.Union(SimpleAction.anyOf, { description: 'network policies: pass lets the traffic through, deny, drop and reject drop it (default pass); security-group rules only allow' })),
  log: Opt(Type.Boolean()),
  alert: Opt(Type.Boolean()),
});

export const PolicyRuleType = Struct({
  rule_sequence: Opt(SequenceType),
  rule_uuid: Opt(Type.String({ pattern: UuidPattern, description: 'id of the rule; assigned when omitted' })),
  direction: Type.Union([Type.Literal('>'), Type.Literal('<>'), Type.Literal('<')], {
    description: '`>` from source to destination, `<` the other way, `<>` both; replies of an allowed connection pass',
  }),
  protocol: Str('any, tcp, udp, icmp, icmp6 or an IP protocol number'),
  src_addresses: Type.Array(AddressType, { description: 'matches traffic from any of these' }),
  dst_addresses: Type.Array(AddressType, { description: 'matches traffic to any of these' }),
  src_ports: Opt(Type.Array(PortType, { description: 'source port ranges (tcp, udp); none or -1 for any' })),
  dst_ports: Opt(Type.Array(PortType, { description: 'destination port ranges (tcp, udp); none or -1 for any' })),
  action_list: Opt(ActionListType),
  ethertype: Opt(Type.Union([Type.Literal('IPv4'), Type.Literal('IPv6')], { description: 'address family of the rule' })),
});

export const PolicyEntriesType = Struct({ policy_rule: Opt(Type.Array(PolicyRuleType, { description: 'the rules, ordered by rule_sequence (then as listed)' })) });

export const IdPermsType = Struct(
  {
    enable: Opt(Flag('TF: the object is in effect (stored; default true)')),
    description: Opt(Str('free text')),
    user_visible: Opt(Flag('TF: shown to users (stored; default true)')),
  },
  'identity and permissions; the server adds created, last_modified and permissions',
);

export const MacAddressesType = Struct({ mac_address: Opt(Type.Array(Str(), { description: 'MAC addresses of the interface; allocated (02: and the first five bytes of the uuid) when omitted' })) });

export const AllowedAddressPairs = Struct({
  allowed_address_pair: Opt(
    Type.Array(
      Struct({
        ip: SubnetType,
        mac: Opt(Str('MAC address the pair is used with')),
        address_mode: Opt(Type.Union([Type.Literal('active-active'), Type.Literal('active-standby')])),
      }),
    ),
  ),
});

export const VirtualNetworkType = Struct({
  forwarding_mode: Opt(Type.Union([Type.Literal('l2_l3'), Type.Literal('l3'), Type.Literal('l2')], { description: 'TF: bridging and/or routing (stored; Cirrus routes)' })),
  // VNIs from 2^23 up are those of networks without one (2^23 + network id): never shared.
  vxlan_network_identifier: Opt(Type.Integer({ minimum: 1, maximum: 8388607, description: 'VXLAN network identifier, unique (8388608 + the network id when omitted)' })),
  rpf: Opt(Type.Union([Type.Literal('enable'), Type.Literal('disable')], { description: 'TF: reverse-path forwarding check (stored, not acted on)' })),
  allow_transit: Opt(Flag('TF: transit routing between connected networks (stored, not acted on)')),
});

export const RouteTargetList = Struct(
  { route_target: Opt(Type.Array(Type.String({ pattern: '^target:[^:]+:[0-9]+$', description: 'target:ASN:N or target:IP:N' }))) },
  'BGP route targets (stored, not acted on: Cirrus leaks routes by policy)',
);

export const IpamType = Struct({
  ipam_method: Opt(Type.Union([Type.Literal('dhcp'), Type.Literal('fixed')], { description: 'TF: how workloads get their addresses' })),
  ipam_dns_method: Opt(
    Type.Union([
      Type.Literal('none'),
      Type.Literal('default-dns-server'),
      Type.Literal('tenant-dns-server'),
      Type.Literal('virtual-dns-server'),
    ], { description: 'TF: which DNS server the workloads are given' }),
  ),
  dhcp_option_list: Opt(DhcpOptionsListType),
});

export const FloatingIpPoolSubnetType = Struct({
  subnet_uuid: Opt(Type.Array(Uuid, { description: 'subnet_uuids of the parent network to draw from (all of its subnets when none)' })),
});

export const Bool = (description: string): TSchema => Type.Boolean({ description });
export const Text = (description: string): TSchema => Type.String({ description });
export const IntegerField = (description: string, min?: number, max?: number): TSchema =>
  Type.Integer({ description, ...(min !== undefined ? { minimum: min } : {}), ...(max !== undefined ? { maximum: max } : {}) });
