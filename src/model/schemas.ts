// JSON schemas of the property structures Cirrus understands, named after TF's
// vnc_cfg.xsd types. Nested structures accept fields Cirrus does not model (TF's clients
// send many of them, mostly null or empty); the fields listed are type-checked.

import { type TSchema, Type } from '@sinclair/typebox';

const Struct = <T extends Parameters<typeof Type.Object>[0]>(props: T, description?: string) =>
  Type.Object(props, { additionalProperties: true, ...(description ? { description } : {}) });

const Opt = Type.Optional;
const Str = (description?: string) => Type.String(description ? { description } : {});
const Int = (min?: number, max?: number) =>
  Type.Integer({ ...(min !== undefined ? { minimum: min } : {}), ...(max !== undefined ? { maximum: max } : {}) });

export const UuidPattern = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
export const Uuid = Type.String({ pattern: UuidPattern, description: 'UUID' });
export const FqName = Type.Array(Type.String({ minLength: 1, maxLength: 255 }), {
  minItems: 1,
  maxItems: 10,
  description: 'Fully qualified name, e.g. ["default-domain","admin","red"]',
});

export const SubnetType = Struct({
  ip_prefix: Str('network address, e.g. 192.168.10.0'),
  ip_prefix_len: Int(0, 32),
});

export const SequenceType = Struct({ major: Int(), minor: Int() });

export const KeyValuePairs = Struct({
  key_value_pair: Opt(Type.Array(Struct({ key: Str(), value: Opt(Str()) }))),
});

export const RouteTableType = Struct({
  route: Opt(Type.Array(Struct({ prefix: Str('CIDR'), next_hop: Opt(Str()), next_hop_type: Opt(Str()) }))),
});

export const DhcpOptionsListType = Struct({
  dhcp_option: Opt(
    Type.Array(Struct({ dhcp_option_name: Str(), dhcp_option_value: Opt(Str()), dhcp_option_value_bytes: Opt(Str()) })),
  ),
});

export const IpamSubnetType = Struct({
  subnet: SubnetType,
  default_gateway: Opt(Str('gateway address; allocated when omitted (.254 or .1 with addr_from_start)')),
  dns_server_address: Opt(Str('DNS/service address; allocated when omitted (.253 or .2)')),
  subnet_uuid: Opt(Uuid),
  subnet_name: Opt(Str()),
  enable_dhcp: Opt(Type.Boolean()),
  dns_nameservers: Opt(Type.Array(Str())),
  allocation_pools: Opt(Type.Array(Struct({ start: Str(), end: Str(), vrouter_specific_pool: Opt(Type.Boolean()) }))),
  addr_from_start: Opt(Type.Boolean()),
  dhcp_option_list: Opt(DhcpOptionsListType),
  host_routes: Opt(RouteTableType),
  alloc_unit: Opt(Int(1)),
});

export const VnSubnetsType = Struct({
  ipam_subnets: Opt(Type.Array(IpamSubnetType)),
  host_routes: Opt(RouteTableType),
});

export const VirtualNetworkPolicyType = Struct({
  sequence: Opt(SequenceType),
  timer: Opt(Struct({})),
});

export const PortType = Struct({ start_port: Int(-1, 65535), end_port: Int(-1, 65535) });

export const AddressType = Struct({
  virtual_network: Opt(Str('fq_name string of a network, "any", or "local"')),
  subnet: Opt(SubnetType),
  security_group: Opt(Str('fq_name string of a security group, "local" or "any"')),
  network_policy: Opt(Str()),
  subnet_list: Opt(Type.Array(SubnetType)),
});

export const SimpleAction = Type.Union([Type.Literal('pass'), Type.Literal('deny'), Type.Literal('drop'), Type.Literal('reject')]);

export const ActionListType = Struct({
  simple_action: Opt(SimpleAction),
  log: Opt(Type.Boolean()),
  alert: Opt(Type.Boolean()),
});

export const PolicyRuleType = Struct({
  rule_sequence: Opt(SequenceType),
  rule_uuid: Opt(Uuid),
  direction: Type.Union([Type.Literal('>'), Type.Literal('<>'), Type.Literal('<')]),
  protocol: Str('any, tcp, udp, icmp, icmp6 or an IP protocol number'),
  src_addresses: Type.Array(AddressType),
  dst_addresses: Type.Array(AddressType),
  src_ports: Opt(Type.Array(PortType)),
  dst_ports: Opt(Type.Array(PortType)),
  action_list: Opt(ActionListType),
  ethertype: Opt(Type.Union([Type.Literal('IPv4'), Type.Literal('IPv6')])),
});

export const PolicyEntriesType = Struct({ policy_rule: Opt(Type.Array(PolicyRuleType)) });

export const IdPermsType = Struct({
  enable: Opt(Type.Boolean()),
  description: Opt(Str()),
  user_visible: Opt(Type.Boolean()),
});

export const MacAddressesType = Struct({ mac_address: Opt(Type.Array(Str())) });

export const AllowedAddressPairs = Struct({
  allowed_address_pair: Opt(
    Type.Array(
      Struct({
        ip: SubnetType,
        mac: Opt(Str()),
        address_mode: Opt(Type.Union([Type.Literal('active-active'), Type.Literal('active-standby')])),
      }),
    ),
  ),
});

export const VirtualNetworkType = Struct({
  forwarding_mode: Opt(Type.Union([Type.Literal('l2_l3'), Type.Literal('l3'), Type.Literal('l2')])),
  // VNIs from 2^23 up are those of networks without one (2^23 + network id): never shared.
  vxlan_network_identifier: Opt(Type.Integer({ minimum: 1, maximum: 8388607, description: 'VXLAN network identifier, 1-8388607 (allocated from 8388608 up when omitted)' })),
  rpf: Opt(Type.Union([Type.Literal('enable'), Type.Literal('disable')])),
  allow_transit: Opt(Type.Boolean()),
});

export const RouteTargetList = Struct({
  route_target: Opt(Type.Array(Type.String({ pattern: '^target:[^:]+:[0-9]+$', description: 'target:ASN:N or target:IP:N' }))),
});

export const IpamType = Struct({
  ipam_method: Opt(Type.Union([Type.Literal('dhcp'), Type.Literal('fixed')])),
  ipam_dns_method: Opt(
    Type.Union([
      Type.Literal('none'),
      Type.Literal('default-dns-server'),
      Type.Literal('tenant-dns-server'),
      Type.Literal('virtual-dns-server'),
    ]),
  ),
  dhcp_option_list: Opt(DhcpOptionsListType),
});

export const FloatingIpPoolSubnetType = Struct({ subnet_uuid: Opt(Type.Array(Uuid)) });

export const Bool = (description: string): TSchema => Type.Boolean({ description });
export const Text = (description: string): TSchema => Type.String({ description });
export const IntegerField = (description: string, min?: number, max?: number): TSchema =>
  Type.Integer({ description, ...(min !== undefined ? { minimum: min } : {}), ...(max !== undefined ? { maximum: max } : {}) });
